/**
 * One-thread parameter sweeps of every registered strategy through the general event-driven engine
 * (`runBacktest`, one run per combination, as `optimize` and `walk-forward` run every strategy but the
 * crossover's kernel). Each sweep has at least 1,000 combinations over the bundled SPY bars, with the
 * config's costs, ATR-risk sizing and a 2 × ATR strategy stop, long-only. The risk rules are off: the
 * engine's per-close risk layer dominates its time today (making it fast is the fast-engine issue's
 * work), and with it the five sweeps would not fit the bench's time budget. A bar-step is one bar of
 * one combination.
 */

import { runBacktest } from '../shared/core/backtest/engine.js';
import type { BacktestOptions } from '../shared/core/backtest/types.js';
import type { BarSeries } from '../shared/core/market/types.js';
import { type Combination, expandGrid, type ParameterSpace } from '../shared/core/research/grid.js';
import { strategyRegistry } from '../shared/core/strategies/index.js';
import type { StrategyDefinition } from '../shared/core/strategies/types.js';
import { BENCH_OPTIONS } from './stats.js';

/** A strategy sweep's figures, in the bench's `results[]`. */
export interface StrategySweepResult {
  readonly name: string;
  readonly strategy: string;
  readonly engine: 'general';
  readonly threads: 1;
  /** Whether the risk rules applied. */
  readonly risk: boolean;
  readonly bars: number;
  readonly combinations: number;
  readonly seconds: number;
  readonly barStepsPerSecond: number;
  /** The process's peak resident set size after the sweep, MiB. */
  readonly peakRssMb: number;
}

const range = (from: number, to: number, step: number) => ({ from, to, step });

/** The grid swept per strategy: every one has at least 1,000 combinations. */
export const SWEEP_GRIDS: Readonly<Record<string, ParameterSpace>> = {
  'ma-crossover': { grid: { fast: range(2, 51, 1), slow: range(60, 250, 10) }, constraints: [] },
  'rsi-reversion': {
    grid: { period: range(2, 26, 1), entry: range(10, 48, 2), exit: [50, 60] },
    constraints: [],
  },
  breakout: { grid: { entry: range(5, 54, 1), exit: range(2, 21, 1) }, constraints: [] },
  bollinger: { grid: { period: range(5, 54, 1), k: range(1, 2.9, 0.1) }, constraints: [] },
  'volume-profile': {
    grid: { lookback: range(10, 59, 1), bins: [12, 24], valueArea: range(0.5, 0.95, 0.05) },
    constraints: [],
  },
};

/** Runs every strategy's sweep on one thread and reports each. */
export function runStrategySweeps(series: BarSeries, log: (line: string) => void): StrategySweepResult[] {
  const bars = series.time.length;
  const options: BacktestOptions = { ...BENCH_OPTIONS, direction: 'long-only' };
  const results: StrategySweepResult[] = [];
  for (const [name, definition] of strategyRegistry) {
    const space = SWEEP_GRIDS[name];
    if (space === undefined) throw new Error(`bench: no sweep grid for the strategy ${name}`);
    const strategy = definition as StrategyDefinition<unknown>;
    const combos: Combination[] = expandGrid(space);
    const run = (combo: Combination) =>
      runBacktest({ series: [series], strategy, params: { ...combo, atrStop: 2 }, options }).metrics.trades;
    // Warm-up: a few runs so the JIT sees the strategy before the timed sweep.
    for (const combo of combos.slice(0, 20)) run(combo);
    const started = process.hrtime.bigint();
    let trades = 0;
    for (const combo of combos) trades += run(combo);
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const peakRssMb = Math.round(process.resourceUsage().maxRSS / 1024);
    log(
      `bench: sweep ${name}: ${combos.length} combinations x ${bars} bars in ${seconds.toFixed(2)} s (${trades} trades)`,
    );
    results.push({
      name: `sweep: ${name} engine, ${combos.length} combinations x ${series.symbol} (${bars} bars), one thread, risk rules off`,
      strategy: name,
      engine: 'general',
      threads: 1,
      risk: false,
      bars,
      combinations: combos.length,
      seconds,
      barStepsPerSecond: Math.round((bars * combos.length) / seconds),
      peakRssMb,
    });
  }
  return results;
}
