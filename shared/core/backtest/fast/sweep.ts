import { InvalidParameterError } from '../../errors.js';
import type { BarSeries } from '../../market/types.js';
import type { Metrics } from '../../metrics/index.js';
import type { StrategyDefinition } from '../../strategies/types.js';
import { runBacktest, validateOptions } from '../engine.js';
import type { BacktestOptions } from '../types.js';
import {
  type FastLane,
  FastPathUnsupportedError,
  FastScratch,
  FastSeries,
  fastMetrics,
  fastMetricsPair,
  runFastCurve,
} from './engine.js';

/**
 * Backtests every parameter combination of one strategy on one symbol with the fast engine and
 * returns the metrics in combination order; they equal `runBacktest`'s. The bars, trading days and
 * the risk rules' ATR are prepared once and the equity buffers are reused, so memory does not grow
 * with the number of combinations. Combinations run two at a time into the scratch's two lanes,
 * then one pass computes both curves' metrics (`fastMetricsPair`). A combination the fast engine
 * cannot run (an entry order type it does not model) runs on the reference engine.
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
  const [laneA, laneB] = scratch.lanes;
  // A combination's run into a lane (undefined: its curve is there), or the reference engine's
  // metrics when the fast engine does not model it.
  const run = (combo: Readonly<Record<string, unknown>>, lane: FastLane): Metrics | undefined => {
    const raw = { ...baseParams, ...combo };
    const params = strategy.params.parse(raw);
    try {
      runFastCurve(data, strategy, params, options, scratch, lane);
      return undefined;
    } catch (error) {
      if (!(error instanceof FastPathUnsupportedError)) throw error;
      return runBacktest({ series: [series], strategy, params: raw, options }).metrics;
    }
  };
  // Two combinations at a time, then one pass over both curves; results (and errors) come in
  // combination order.
  const out: Metrics[] = [];
  for (let i = 0; i < combos.length; i += 2) {
    const a = run(combos[i] as Readonly<Record<string, unknown>>, laneA);
    if (i + 1 === combos.length) {
      out.push(a ?? fastMetrics(data, options, laneA));
      break;
    }
    let b: Metrics | undefined;
    try {
      b = run(combos[i + 1] as Readonly<Record<string, unknown>>, laneB);
    } catch (error) {
      if (a === undefined) fastMetrics(data, options, laneA);
      throw error;
    }
    if (a === undefined && b === undefined) {
      out.push(...fastMetricsPair(data, options, laneA, laneB));
    } else {
      const first = a ?? fastMetrics(data, options, laneA);
      out.push(first, b ?? fastMetrics(data, options, laneB));
    }
  }
  return out;
}
