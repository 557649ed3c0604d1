import { InvalidParameterError } from '../../errors.js';
import type { BarSeries } from '../../market/types.js';
import type { Metrics } from '../../metrics/index.js';
import type { StrategyDefinition } from '../../strategies/types.js';
import { runBacktest, validateOptions } from '../engine.js';
import type { BacktestOptions } from '../types.js';
import { FastPathUnsupportedError, FastScratch, FastSeries, runFastBacktest } from './engine.js';

/**
 * Backtests every parameter combination of one strategy on one symbol with the fast engine and
 * returns the metrics in combination order; they equal `runBacktest`'s. The bars, trading days and
 * the risk rules' ATR are prepared once and the equity buffers are reused, so memory does not grow
 * with the number of combinations. A combination the fast engine cannot run (an entry order type
 * it does not model) runs on the reference engine.
 */
export function sweepFast<P>(
  series: BarSeries,
  strategy: StrategyDefinition<P>,
  baseParams: Readonly<Record<string, unknown>>,
  combos: readonly Readonly<Record<string, unknown>>[],
  options: BacktestOptions,
): Metrics[] {
  validateOptions(options);
  const direction = options.direction ?? 'long-only';
  if (!strategy.directions.includes(direction)) {
    throw new InvalidParameterError(
      `direction ${direction}: strategy ${strategy.name} supports ${strategy.directions.join(', ')}`,
    );
  }
  const data = new FastSeries(series, options.startIndex, options.endIndex);
  const scratch = new FastScratch(data.span);
  return combos.map((combo) => {
    const raw = { ...baseParams, ...combo };
    const params = strategy.params.parse(raw);
    try {
      return runFastBacktest(data, strategy, params, options, scratch).metrics;
    } catch (error) {
      if (!(error instanceof FastPathUnsupportedError)) throw error;
      return runBacktest({ series: [series], strategy, params: raw, options }).metrics;
    }
  });
}
