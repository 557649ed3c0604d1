import { describe, expect, it } from 'vitest';
import { loadReplayBars, synthesizeMinuteBars } from '../../../shared/adapters/local/minute-bars.js';

describe('minute bars for the local stream', () => {
  it('synthesises a session that reproduces the daily bar exactly, the same for the same seed', () => {
    const day = { open: 100, high: 104.5, low: 97.25, close: 103, volume: 390_000 };
    const bars = synthesizeMinuteBars('SPY', '2021-03-18', day, 7);
    expect(bars).toHaveLength(390);
    expect(bars[0]).toMatchObject({ t: '2021-03-18T13:30:00.000Z', o: 100 });
    expect(bars.at(-1)).toMatchObject({ t: '2021-03-18T19:59:00.000Z', c: 103 });
    expect(Math.max(...bars.map((b) => b.h))).toBe(104.5);
    expect(Math.min(...bars.map((b) => b.l))).toBe(97.25);
    for (const b of bars) {
      expect(b.l).toBeLessThanOrEqual(Math.min(b.o, b.c));
      expect(b.h).toBeGreaterThanOrEqual(Math.max(b.o, b.c));
    }
    expect(synthesizeMinuteBars('SPY', '2021-03-18', day, 7)).toEqual(bars);
    // An early close has 210 minutes.
    expect(synthesizeMinuteBars('SPY', '2021-11-26', day, 7)).toHaveLength(210);
  });

  it('reads the bundled minute sample as New York time, moved to a session with a date', () => {
    const bars = loadReplayBars('data/intraday/2006-01-02-min.csv', { symbol: 'ES', date: '2021-03-18' });
    expect(bars).toHaveLength(584);
    expect(bars[0]).toMatchObject({
      S: 'ES',
      t: '2021-03-18T13:01:00.000Z',
      o: 3602,
      h: 3603,
      l: 3597,
      c: 3599,
      v: 5699,
    });
    expect(() => loadReplayBars('data/SPY.csv', { symbol: 'SPY' })).toThrow(/give the session --date/);
  });
});
