import { describe, expect, it } from 'vitest';
import { parseFrame, StreamProtocolError } from '../../../shared/stream/protocol.js';

const trade = {
  T: 't',
  S: 'SPY',
  i: 7,
  x: 'V',
  p: 412.5,
  s: 100,
  c: ['@'],
  t: '2021-03-18T14:00:01.123456789Z',
  z: 'B',
};

describe('the stream protocol (zod per message)', () => {
  it('reads a frame of control and market messages', () => {
    const messages = parseFrame(
      JSON.stringify([
        { T: 'success', msg: 'authenticated' },
        trade,
        {
          T: 'q',
          S: 'SPY',
          bx: 'V',
          bp: 412.4,
          bs: 1,
          ax: 'V',
          ap: 412.6,
          as: 2,
          c: ['R'],
          t: trade.t,
          z: 'B',
        },
        { T: 'b', S: 'SPY', o: 1, h: 2, l: 0.5, c: 1.5, v: 10, t: '2021-03-18T14:00:00Z', n: 3, vw: 1.2 },
        { T: 's', S: 'SPY', sc: 'H', sm: 'Trading Halt', rc: 'T1', rm: 'News', t: trade.t, z: 'B' },
        { T: 'error', code: 406, msg: 'connection limit exceeded' },
      ]),
    );
    expect(messages.map((m) => m.T)).toEqual(['success', 't', 'q', 'b', 's', 'error']);
  });

  it('refuses a bad field, naming the message, the symbol and the field', () => {
    const bad = (message: Record<string, unknown>, pattern: RegExp) =>
      expect(() => parseFrame(JSON.stringify([{ T: 'success', msg: 'connected' }, message]))).toThrow(
        pattern,
      );
    bad({ ...trade, p: -1 }, /message 1 T=t \(SPY\): field "p"/);
    bad({ ...trade, p: null }, /field "p"/);
    bad({ ...trade, t: 'yesterday' }, /field "t"/);
    bad({ ...trade, S: 'spy' }, /field "S"/);
    bad(
      { T: 'b', S: 'SPY', o: 3, h: 2, l: 1, c: 1.5, v: 1, t: trade.t },
      /T=b \(SPY\): field "h": open or close outside/,
    );
    bad({ T: 'x', S: 'SPY' }, /unknown type T="x"/);
  });

  it('refuses what is not a JSON array', () => {
    expect(() => parseFrame('{"T":"success"}')).toThrow(StreamProtocolError);
    expect(() => parseFrame('[{"T":"t",')).toThrow(/not JSON/);
  });
});
