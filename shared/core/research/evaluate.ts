import { sweepFastPortfolio } from '../backtest/fast/portfolio.js';
import { sweepFast } from '../backtest/fast/sweep.js';
import { backtestMaPairs, type MaPair, MaSweepData, MaSweepScratch } from '../backtest/ma-sweep.js';
import type { BacktestOptions } from '../backtest/types.js';
import type { BarSeries } from '../market/types.js';
import type { Metrics } from '../metrics/index.js';
import { getStrategy, maCrossover, maCrossoverParams } from '../strategies/index.js';
import type { Combination } from './grid.js';

/** One batch of backtests: the same data span, strategy and options, many parameter combinations. */
export interface EvaluationTask {
  readonly series: readonly BarSeries[];
  readonly strategy: string;
  /** Parameters every combination shares; a combination's own values override them. */
  readonly baseParams: Readonly<Record<string, unknown>>;
  readonly combos: readonly Combination[];
  readonly options: BacktestOptions;
}

/** Runs evaluation tasks: in-process, or spread over worker threads with identical results. */
export interface GridEvaluator {
  evaluate(task: EvaluationTask): Promise<Metrics[]>;
  close(): Promise<void>;
}

/**
 * Backtests every combination of a task and returns the metrics in combination order. On one
 * symbol, every strategy runs on the fast engine (`sweepFast`, equal to the engine), except the MA
 * crossover without risk rules, which runs on its sweep kernel (faster still, also equal); a
 * portfolio of several symbols runs on the fast engine's portfolio mode (`sweepFastPortfolio`, equal
 * to the engine too). See docs/engine.md.
 */
export function evaluateCombos(task: EvaluationTask): Metrics[] {
  const strategy = getStrategy(task.strategy);
  const single = task.series.length === 1;
  const kernel = strategy === maCrossover && single && task.options.risk === undefined;
  if (single && !kernel) {
    return sweepFast(task.series[0] as BarSeries, strategy, task.baseParams, task.combos, task.options);
  }
  if (!kernel) {
    return sweepFastPortfolio(task.series, strategy, task.baseParams, task.combos, task.options);
  }
  const series = task.series[0] as BarSeries;
  const start = task.options.startIndex ?? 0;
  const end = task.options.endIndex ?? series.time.length - 1;
  const scratch = new MaSweepScratch(end - start + 1);
  // Combinations that share the rest of the parameters share the averages and run as one batch.
  const groups = new Map<string, { data: MaSweepData; pairs: MaPair[]; at: number[] }>();
  task.combos.forEach((combo, at) => {
    const params = maCrossoverParams.parse({ ...task.baseParams, ...combo });
    const { fast, slow, ...base } = params;
    const key = JSON.stringify(base);
    let group = groups.get(key);
    if (group === undefined) {
      group = { data: new MaSweepData(series, base, start, end), pairs: [], at: [] };
      groups.set(key, group);
    }
    group.pairs.push({ fast, slow });
    group.at.push(at);
  });
  const results: Metrics[] = new Array(task.combos.length);
  for (const { data, pairs, at } of groups.values()) {
    backtestMaPairs(data, pairs, task.options, scratch).forEach((metrics, k) => {
      results[at[k] as number] = metrics;
    });
  }
  return results;
}

/** The evaluator that runs everything on the calling thread. */
export const inProcessEvaluator: GridEvaluator = {
  evaluate: async (task) => evaluateCombos(task),
  close: async () => {},
};
