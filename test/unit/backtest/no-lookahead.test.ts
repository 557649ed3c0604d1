import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { runBacktest } from '../../../shared/core/backtest/engine.js';
import type { BacktestResult } from '../../../shared/core/backtest/types.js';
import type { BarSeries } from '../../../shared/core/market/types.js';
import { maCrossover } from '../../../shared/core/strategies/ma-crossover.js';
import { baseOptions } from '../../helpers/series.js';

/** A random-walk daily series with consistent OHLC. */
function walk(steps: readonly number[], start = 100): BarSeries {
  const n = steps.length;
  const time = new Float64Array(n);
  const open = new Float64Array(n);
  const high = new Float64Array(n);
  const low = new Float64Array(n);
  const close = new Float64Array(n);
  let price = start;
  for (let i = 0; i < n; i++) {
    const o = price;
    const c = Math.max(1, o * (1 + (steps[i] as number)));
    time[i] = Date.UTC(2020, 0, 1) + i * 86_400_000;
    open[i] = o;
    close[i] = c;
    high[i] = Math.max(o, c) * 1.005;
    low[i] = Math.min(o, c) * 0.995;
    price = c * (1 + (steps[(i + 7) % n] as number) / 4);
  }
  return { symbol: 'RW', time, open, high, low, close, volume: new Float64Array(n).fill(1), intraday: false };
}

/** Bars after index t replaced by another path (same shape rules). */
function alterAfter(series: BarSeries, t: number, steps: readonly number[]): BarSeries {
  const other = walk(steps, (series.close[t] as number) * 1.3);
  const pick = (a: Float64Array, b: Float64Array) =>
    Float64Array.from(a, (v, i) => (i <= t ? v : (b[i] as number)));
  return {
    ...series,
    open: pick(series.open, other.open),
    high: pick(series.high, other.high),
    low: pick(series.low, other.low),
    close: pick(series.close, other.close),
  };
}

const decisionsUpTo = (result: BacktestResult, time: number) =>
  result.orders
    .filter((o) => o.createdTime <= time)
    .map((o) => ({
      ...o,
      status: undefined,
      closedTime: undefined,
      fillPrice: undefined,
      reason: undefined,
      qty: o.createdTime < time ? o.qty : undefined,
    }));
const fillsUpTo = (result: BacktestResult, time: number) => result.fills.filter((f) => f.time <= time);

describe('no look-ahead', () => {
  it('changing any bar after t changes no decision or fill up to t', () => {
    const step = fc.double({ min: -0.04, max: 0.04, noNaN: true });
    fc.assert(
      fc.property(
        fc.array(step, { minLength: 120, maxLength: 120 }),
        fc.array(step, { minLength: 120, maxLength: 120 }),
        fc.integer({ min: 20, max: 118 }),
        fc.constantFrom('sma', 'ema'),
        fc.constantFrom('long-only' as const, 'long-short' as const),
        (steps, otherSteps, t, ma, direction) => {
          const original = walk(steps);
          const altered = alterAfter(original, t, otherSteps);
          const run = (s: BarSeries) =>
            runBacktest({
              series: [s],
              strategy: maCrossover,
              params: { fast: 3, slow: 8, ma, atrStop: 1.5, atrPeriod: 5 },
              options: {
                ...baseOptions,
                sizing: { mode: 'atr-risk', risk: 0.02 },
                slippageBps: 5,
                direction,
              },
            });
          const a = run(original);
          const b = run(altered);
          const time = original.time[t] as number;
          expect(decisionsUpTo(b, time)).toEqual(decisionsUpTo(a, time));
          expect(fillsUpTo(b, time)).toEqual(fillsUpTo(a, time));
          expect(Array.from(b.equity.equity.subarray(0, t + 1))).toEqual(
            Array.from(a.equity.equity.subarray(0, t + 1)),
          );
        },
      ),
      { numRuns: 150 },
    );
  });
});
