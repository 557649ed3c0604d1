import { afterEach, describe, expect, it } from 'vitest';
import { type LocalStream, startLocalStream } from '../../shared/adapters/local/alpaca-stream-server.js';
import { StreamConsumer } from '../../shared/stream/consumer.js';
import { MemoryLease } from '../../shared/stream/lease.js';

const KEYS = { keyId: 'stream-key', secret: 'stream-secret-0123456789' };
const trade = (i: number) => ({
  T: 't',
  S: 'SPY',
  i,
  x: 'V',
  p: 100,
  s: 100,
  c: ['@'],
  t: '2025-06-02T14:00:00.000Z',
  z: 'C',
});

const until = async (check: () => boolean, what: string) => {
  for (let i = 0; i < 500; i++) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
};

let server: LocalStream | undefined;
let consumer: StreamConsumer | undefined;
afterEach(async () => {
  await consumer?.stop();
  consumer = undefined;
  await server?.close();
  server = undefined;
});

/**
 * The consumer yields to an exit's calls (`yieldWhile`): each frame of a burst is handled in a turn
 * of the event loop of its own, so an answer that arrives with the burst is handled after one frame,
 * not after all of them. Each handled trade schedules a marker for the next turn (`setImmediate`,
 * as an I/O callback waiting behind the frames would run): yielding, the marker comes before the
 * next frame's trade.
 */
async function burst(yielding: () => boolean, frames: number) {
  server = await startLocalStream(KEYS);
  const log: string[] = [];
  consumer = new StreamConsumer({
    url: server.url,
    ...KEYS,
    subscriptions: () => ({ trades: ['SPY'], quotes: [], bars: [] }),
    onMarket: (message) => {
      if (message.T !== 't') return;
      log.push(`trade ${message.i}`);
      setImmediate(() => log.push(`turn after ${message.i}`));
    },
    lease: new MemoryLease(),
    holder: 'yield-test',
    yieldWhile: yielding,
  });
  await consumer.start();
  await until(() => server?.actions.some((a) => a.action === 'subscribe') === true, 'the subscription');
  for (let i = 1; i <= frames; i++) server.sendRaw(JSON.stringify([trade(i), trade(100 + i)]));
  await until(() => log.filter((l) => l.startsWith('turn after')).length === 2 * frames, 'the frames');
  return log;
}

describe('the stream consumer yielding to an exit', () => {
  it('while an exit waits, handles each frame of a burst in its own turn, in order', async () => {
    const log = await burst(() => true, 3);
    expect(log).toEqual([
      'trade 1',
      'trade 101',
      'turn after 1',
      'turn after 101',
      'trade 2',
      'trade 102',
      'turn after 2',
      'turn after 102',
      'trade 3',
      'trade 103',
      'turn after 3',
      'turn after 103',
    ]);
  });
});
