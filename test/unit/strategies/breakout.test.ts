import { describe, expect, it } from 'vitest';
import type { BarSeries } from '../../../shared/core/market/types.js';
import { breakout } from '../../../shared/core/strategies/breakout.js';
import type { PositionSide } from '../../../shared/core/strategies/types.js';
import {
  engineRun,
  instanceDecisions,
  itMatchesTheReference,
  type RuleDecision,
  seriesWithVolume,
} from '../../helpers/strategy-sim.js';

// [high, low, close]; the open is the close - 0.25.
const bars: [number, number, number][] = [
  [11, 9, 10], // 0
  [12, 10, 11], // 1
  [11, 9, 10], // 2
  [13, 11, 12.5], // 3
  [13, 11, 12], // 4
  [12, 10, 10.5], // 5
  [11, 8, 8.5], // 6
  [9, 7, 7.5], // 7
  [10, 8, 9.5], // 8
  [10.5, 9, 10], // 9
  [11, 9.5, 10.8], // 10
  [12, 10, 11.5], // 11
];
const hand = seriesWithVolume(
  'X',
  bars.map(([h, l, c], i) => [`2024-04-${String(i + 1).padStart(2, '0')}`, c - 0.25, h, l, c, 1000]),
);
const date = (t: number) => `2024-04-${String(t + 1).padStart(2, '0')}`;

describe('breakout on a hand-worked series (entry 3, exit 2; channels over the previous bars only)', () => {
  const params = { entry: 3, exit: 2 };

  it('long-only', () => {
    // t=2: the exit channel exists but not the entry one: no decision before t=3.
    // t=3: upper(3) = max(11, 12, 11) = 12 < 12.5 → long (bar 3's own high, 13, is not in its channel)
    // t=4: lower(2) = min(9, 11) = 9; 12 holds.  t=5: lower(2) = min(11, 11) = 11 > 10.5 → exit
    // t=6: flat, 8.5 < lower(3) = 10 is the short side: ignored.  t=7..9: inside the channel
    // t=10: upper(3) = max(9, 10, 10.5) = 10.5 < 10.8 → long; closed at the last close (end of data)
    expect(instanceDecisions(breakout, params, hand, 'long-only')).toEqual([
      [3, 'enter', 'long'],
      [5, 'exit'],
      [10, 'enter', 'long'],
    ]);
    const run = engineRun(breakout, params, hand, 'long-only');
    expect(run.decisions).toEqual([
      [date(3), 'entry', 'buy'],
      [date(5), 'exit', 'sell'],
      [date(10), 'entry', 'buy'],
    ]);
    expect(run.trades).toEqual([
      ['long', date(4), 11.75, date(6), 8.25],
      ['long', date(11), 11.25, date(11), 11.5],
    ]);
  });

  it('long-short: the short exits on the exit channel, and does not reverse on the same bar', () => {
    // t=6: 8.5 < lower(3) = min(11, 11, 10) = 10 → short
    // t=7: upper(2) = max(12, 11) = 12.  t=8: upper(2) = max(11, 9) = 11.
    // t=9: upper(2) = max(9, 10) = 10, and 10 is not above 10 (strict): holds
    // t=10: upper(2) = max(10, 10.5) = 10.5 < 10.8 → exit (the long breakout waits for the next bar)
    // t=11: flat, 11.5 > upper(3) = 11 → long, but it is the last bar: no trade
    expect(instanceDecisions(breakout, params, hand, 'long-short')).toEqual([
      [3, 'enter', 'long'],
      [5, 'exit'],
      [6, 'enter', 'short'],
      [10, 'exit'],
      [11, 'enter', 'long'],
    ]);
    const run = engineRun(breakout, params, hand, 'long-short');
    expect(run.trades).toEqual([
      ['long', date(4), 11.75, date(6), 8.25],
      ['short', date(7), 7.25, date(11), 11.25],
    ]);
  });

  it('has the documented defaults and a strict schema', () => {
    expect(breakout.params.parse({})).toEqual({ entry: 20, exit: 10, atrPeriod: 14 });
    expect(breakout.params.safeParse({ period: 20 }).success).toBe(false);
    expect(breakout.params.safeParse({ entry: 0 }).error?.issues[0]?.path).toEqual(['entry']);
  });
});

function referenceRule(series: BarSeries, entry: number, exit: number) {
  const upper = (t: number, n: number) => Math.max(...series.high.subarray(t - n, t));
  const lower = (t: number, n: number) => Math.min(...series.low.subarray(t - n, t));
  return (t: number, position: PositionSide): RuleDecision => {
    if (t < Math.max(entry, exit)) return null;
    const c = series.close[t] as number;
    if (position === 'long') return c < lower(t, exit) ? 'exit' : null;
    if (position === 'short') return c > upper(t, exit) ? 'exit' : null;
    if (c > upper(t, entry)) return 'long';
    if (c < lower(t, entry)) return 'short';
    return null;
  };
}

describe('breakout against an independent reimplementation', () => {
  const cases = [
    { entry: 20, exit: 10 },
    { entry: 55, exit: 20 },
    { entry: 5, exit: 8 },
  ];
  itMatchesTheReference(breakout, cases, (series, p) => referenceRule(series, p.entry, p.exit));
});
