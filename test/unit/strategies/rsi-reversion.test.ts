import { describe, expect, it } from 'vitest';
import type { BarSeries } from '../../../shared/core/market/types.js';
import { rsiReversion } from '../../../shared/core/strategies/rsi-reversion.js';
import type { PositionSide } from '../../../shared/core/strategies/types.js';
import {
  engineRun,
  instanceDecisions,
  itMatchesTheReference,
  type RuleDecision,
  seriesWithVolume,
} from '../../helpers/strategy-sim.js';

const closes = [10, 11, 12, 11, 10, 9, 10, 11, 12, 13, 12, 11];
const hand = seriesWithVolume(
  'X',
  closes.map((c, i) => [`2024-03-${String(i + 1).padStart(2, '0')}`, c - 0.25, c + 0.5, c - 0.5, c, 1000]),
);
const date = (t: number) => `2024-03-${String(t + 1).padStart(2, '0')}`;

describe('rsi-reversion on a hand-worked series (period 2, entry 30, exit 50)', () => {
  // changes:       +1 +1 -1 -1 -1 +1 +1 +1 +1 -1 -1
  // Wilder RSI(2), first at t=2: avg gain/loss = means of the first two changes, then (avg + x) / 2:
  // t:     2    3    4     5      6       7        8         9          10          11
  // RSI: 100   50   25  12.5  56.25  78.125  89.0625  94.53125  47.265625  23.6328125
  const params = { period: 2, entry: 30, exit: 50 };

  it('long-only: long below 30, out above 50; the short side is ignored', () => {
    expect(instanceDecisions(rsiReversion, params, hand, 'long-only')).toEqual([
      [4, 'enter', 'long'], // RSI 25 < 30
      [6, 'exit'], // RSI 56.25 > 50 (t=5, RSI 12.5, holds)
      [11, 'enter', 'long'], // RSI 23.6 < 30 at the last bar: no next open, no trade
    ]);
    const run = engineRun(rsiReversion, params, hand, 'long-only');
    expect(run.decisions).toEqual([
      [date(4), 'entry', 'buy'],
      [date(6), 'exit', 'sell'],
    ]);
    expect(run.trades).toEqual([['long', date(5), 8.75, date(7), 10.75]]);
  });

  it('long-short: takes the short side; an exit and an entry never share a bar', () => {
    expect(instanceDecisions(rsiReversion, params, hand, 'long-short')).toEqual([
      [2, 'enter', 'short'], // RSI 100 > 70: the first bar the RSI exists
      // t=3: RSI 50 is not below 100 - 50: the short holds
      [4, 'exit'], // RSI 25 < 50; also below 30, but the entry waits for the next bar
      [5, 'enter', 'long'], // RSI 12.5 < 30
      [6, 'exit'], // RSI 56.25 > 50
      [7, 'enter', 'short'], // RSI 78.125 > 70
      [10, 'exit'], // RSI 47.27 < 50
      [11, 'enter', 'long'], // the last bar: no trade
    ]);
    const run = engineRun(rsiReversion, params, hand, 'long-short');
    expect(run.trades).toEqual([
      ['short', date(3), 10.75, date(5), 8.75],
      ['long', date(6), 9.75, date(7), 10.75],
      ['short', date(8), 11.75, date(11), 10.75],
    ]);
  });

  it('refuses an entry above 50 and keys not in its schema, naming them', () => {
    expect(rsiReversion.params.safeParse({ entry: 60 }).error?.issues[0]?.path).toEqual(['entry']);
    const unknown = rsiReversion.params.safeParse({ direction: 'long-short' });
    expect(unknown.success).toBe(false);
    expect(JSON.stringify(unknown.error?.issues)).toContain('direction');
    expect(rsiReversion.params.parse({})).toEqual({ period: 14, entry: 30, exit: 50, atrPeriod: 14 });
  });
});

/** Wilder's RSI written out again: simple means of the first `period` changes, then smoothing. */
function referenceRsi(close: Float64Array, period: number): number[] {
  const out: number[] = new Array(close.length).fill(Number.NaN);
  let gain = 0;
  let loss = 0;
  for (let t = 1; t < close.length; t++) {
    const change = (close[t] as number) - (close[t - 1] as number);
    const up = change > 0 ? change : 0;
    const down = change < 0 ? -change : 0;
    if (t < period) {
      gain += up;
      loss += down;
      continue;
    }
    if (t === period) {
      gain = (gain + up) / period;
      loss = (loss + down) / period;
    } else {
      gain = (gain * (period - 1) + up) / period;
      loss = (loss * (period - 1) + down) / period;
    }
    out[t] = gain + loss === 0 ? 50 : 100 * (gain / (gain + loss));
  }
  return out;
}

function referenceRule(series: BarSeries, period: number, entry: number, exit: number) {
  const rsi = referenceRsi(series.close, period);
  return (t: number, position: PositionSide): RuleDecision => {
    const r = rsi[t] as number;
    if (Number.isNaN(r)) return null;
    if (position === 'long') return r > exit ? 'exit' : null;
    if (position === 'short') return r < 100 - exit ? 'exit' : null;
    if (r < entry) return 'long';
    if (r > 100 - entry) return 'short';
    return null;
  };
}

describe('rsi-reversion against an independent reimplementation', () => {
  const cases = [
    { period: 14, entry: 30, exit: 50 },
    { period: 5, entry: 25, exit: 60 },
    { period: 2, entry: 10, exit: 40 },
  ];
  itMatchesTheReference(rsiReversion, cases, (series, p) => referenceRule(series, p.period, p.entry, p.exit));
});
