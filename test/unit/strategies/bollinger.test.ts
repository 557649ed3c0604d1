import { describe, expect, it } from 'vitest';
import type { BarSeries } from '../../../shared/core/market/types.js';
import { bollinger } from '../../../shared/core/strategies/bollinger.js';
import type { PositionSide } from '../../../shared/core/strategies/types.js';
import {
  engineRun,
  instanceDecisions,
  itMatchesTheReference,
  type RuleDecision,
  seriesWithVolume,
} from '../../helpers/strategy-sim.js';

const closes = [10, 10, 10, 7, 8, 9, 12, 11, 10, 10, 9, 9.5];
const hand = seriesWithVolume(
  'X',
  closes.map((c, i) => [`2024-05-${String(i + 1).padStart(2, '0')}`, c - 0.25, c + 0.5, c - 0.5, c, 1000]),
);
const date = (t: number) => `2024-05-${String(t + 1).padStart(2, '0')}`;

describe('bollinger on a hand-worked series (period 3, k 1; population sd over closes t-2 .. t)', () => {
  // t  window         middle   sd      lower    upper
  // 2  10 10 10       10       0       10       10       the first bar the bands exist: 10 is inside
  // 3  10 10 7        9        1.4142  7.5858   10.4142  7 < lower
  // 4  10 7 8         8.3333   1.2472  7.0861   9.5806
  // 5  7 8 9          8        0.8165  7.1835   8.8165   9 > middle
  // 6  8 9 12         9.6667   1.6997  7.9670   11.3664  12 > upper
  // 7  9 12 11        10.6667  1.2472  9.4195   11.9139
  // 8  12 11 10       11       0.8165  10.1835  11.8165  10 < lower; 10 < middle
  // 9  11 10 10       10.3333  0.4714  9.8619   10.8047
  // 10 10 10 9        9.6667   0.4714  9.1953   10.1381  9 < lower
  const params = { period: 3, k: 1 };

  it('long-only: long below the lower band, out above the middle', () => {
    expect(instanceDecisions(bollinger, params, hand, 'long-only')).toEqual([
      [3, 'enter', 'long'],
      [5, 'exit'], // t=4: 8 is not above 8.33
      [8, 'enter', 'long'], // t=6: 12 above the upper band is the short side: ignored
      // t=9: 10 is not above 10.33; t=10: 9 is not above 9.67; closed at the last close
    ]);
    const run = engineRun(bollinger, params, hand, 'long-only');
    expect(run.trades).toEqual([
      ['long', date(4), 7.75, date(6), 11.75],
      ['long', date(9), 9.75, date(11), 9.5],
    ]);
  });

  it('long-short: short above the upper band, out below the middle', () => {
    expect(instanceDecisions(bollinger, params, hand, 'long-short')).toEqual([
      [3, 'enter', 'long'],
      [5, 'exit'],
      [6, 'enter', 'short'],
      [8, 'exit'], // 10 < middle 11 (and below the lower band: the long waits)
      [10, 'enter', 'long'], // t=9: 10 is inside the bands
    ]);
    const run = engineRun(bollinger, params, hand, 'long-short');
    expect(run.decisions).toEqual([
      [date(3), 'entry', 'buy'],
      [date(5), 'exit', 'sell'],
      [date(6), 'entry', 'sell'],
      [date(8), 'exit', 'buy'],
      [date(10), 'entry', 'buy'],
    ]);
    expect(run.trades).toEqual([
      ['long', date(4), 7.75, date(6), 11.75],
      ['short', date(7), 10.75, date(9), 9.75],
      ['long', date(11), 9.25, date(11), 9.5],
    ]);
  });

  it('has the documented defaults and a strict schema', () => {
    expect(bollinger.params.parse({})).toEqual({ period: 20, k: 2, atrPeriod: 14 });
    expect(bollinger.params.safeParse({ k: 0 }).error?.issues[0]?.path).toEqual(['k']);
    expect(bollinger.params.safeParse({ std: 2 }).success).toBe(false);
  });
});

const SCALE = 20;
/** A double as an exact decimal integer scaled by 10^20 (prices print in at most 20 decimals). */
function exact(x: number): bigint {
  const [whole, fraction = ''] = String(x).split('.');
  if (fraction.length > SCALE || /e/i.test(String(x))) throw new Error(`cannot scale ${x}`);
  return BigInt(`${whole}${fraction.padEnd(SCALE, '0')}`);
}

/**
 * The rule in exact decimal arithmetic, independent of the engine's floating-point bands: with
 * S = sum, Q = sum of squares over the window, mean = S / n and sd = sqrt(nQ - S²) / n, so
 * close < mean - k·sd ⇔ S - n·c > 0 and (S - n·c)² > k² (nQ - S²), and the mirror for the upper band.
 */
function referenceRule(series: BarSeries, period: number, k: number) {
  const closes = Array.from(series.close, exact);
  const kExact = exact(k);
  const unit = exact(1);
  return (t: number, position: PositionSide): RuleDecision => {
    if (t < period - 1) return null;
    const n = BigInt(period);
    let sum = 0n;
    let squares = 0n;
    for (let i = t - period + 1; i <= t; i++) {
      const x = closes[i] as bigint;
      sum += x;
      squares += x * x;
    }
    const c = closes[t] as bigint;
    const below = sum - n * c; // > 0: the close is under the mean
    const spread = n * squares - sum * sum; // (n · sd)²
    const beyond = (d: bigint) => d > 0n && d * d * unit * unit > kExact * kExact * spread;
    if (position === 'long') return below < 0n ? 'exit' : null;
    if (position === 'short') return below > 0n ? 'exit' : null;
    if (beyond(below)) return 'long';
    if (beyond(-below)) return 'short';
    return null;
  };
}

describe('bollinger against an independent reimplementation', () => {
  const cases = [
    { period: 20, k: 2 },
    { period: 10, k: 1.5 },
    { period: 50, k: 1 },
  ];
  itMatchesTheReference(bollinger, cases, (series, p) => referenceRule(series, p.period, p.k));
});
