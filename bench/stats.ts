/** Small statistics and settings shared by the benchmarks. */

import type { BacktestOptions } from '../shared/core/backtest/types.js';
import type { BarSeries } from '../shared/core/market/types.js';

/** The backtest settings every engine benchmark runs with: the config's costs and ATR-risk sizing. */
export const BENCH_OPTIONS: BacktestOptions = {
  initialCash: 100_000,
  sizing: { mode: 'atr-risk', risk: 0.02 },
  maxPositionFraction: 0.2,
  cashBuffer: 0.02,
  commission: { perShare: 0.005, perOrder: 0, percent: 0, minimum: 1 },
  slippageBps: 5,
  fractional: false,
  endOfData: 'close',
  riskFreeRate: 0,
};

/** The median (the upper one of an even count). */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

/** The nearest-rank percentile `p` (0..100): the smallest value with at least p% of the values at or below it. */
export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1] as number;
}

/** Milliseconds rounded to 0.01 ms, for the JSON document. */
export const roundMs = (ms: number): number => Math.round(ms * 100) / 100;

/** A copy of a series' bars: to the engines, a series never seen before. */
export function copyBars(s: BarSeries): BarSeries {
  return {
    ...s,
    time: s.time.slice(),
    open: s.open.slice(),
    high: s.high.slice(),
    low: s.low.slice(),
    close: s.close.slice(),
    volume: s.volume.slice(),
    ...(s.adjClose === undefined ? {} : { adjClose: s.adjClose.slice() }),
  };
}
