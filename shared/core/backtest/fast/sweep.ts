import type { BarSeries } from '../../market/types.js';
import type { Metrics } from '../../metrics/index.js';
import type { StrategyDefinition } from '../../strategies/types.js';
import { checkDirection, runBacktest, validateOptions } from '../engine.js';
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
  checkDirection(strategy, options);
  const data = new FastSeries(series, options.startIndex, options.endIndex);
  const scratch = new FastScratch(data.span);
  const [laneA, laneB] = scratch.lanes;
  // A combination's run into a lane (undefined: its curve is there), or the reference engine's
  // metrics when the fast engine does not model it.
  const parsed = parsedParams(strategy, baseParams, combos);
  const run = (index: number, lane: FastLane): Metrics | undefined => {
    const combo = combos[index] as Readonly<Record<string, unknown>>;
    let params = parsed[index] as P | undefined;
    if (params === undefined) {
      params = strategy.params.parse({ ...baseParams, ...combo });
      parsed[index] = params;
    }
    try {
      runFastCurve(data, strategy, params, options, scratch, lane);
      return undefined;
    } catch (error) {
      if (!(error instanceof FastPathUnsupportedError)) throw error;
      return runBacktest({ series: [series], strategy, params: { ...baseParams, ...combo }, options })
        .metrics;
    }
  };
  // Two combinations at a time, then one pass over both curves; results (and errors) come in
  // combination order.
  const out: Metrics[] = [];
  for (let i = 0; i < combos.length; i += 2) {
    const a = run(i, laneA);
    if (i + 1 === combos.length) {
      out.push(a ?? fastMetrics(data, options, laneA));
      break;
    }
    let b: Metrics | undefined;
    try {
      b = run(i + 1, laneB);
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

/** The parsed parameters of a combinations array, kept while the array lives (see `parsedParams`). */
const parsedByCombos = new WeakMap<
  readonly Readonly<Record<string, unknown>>[],
  { readonly strategy: object; readonly baseParams: object; readonly params: unknown[] }
>();

/**
 * The parameters parsed so far for these combinations of this strategy and base parameters (filled
 * as each is first parsed): a sweep of the same combinations over several symbols (the bench, a
 * walk-forward's windows) parses each combination once. Keyed by the arrays and objects
 * themselves, which a sweep reads as immutable.
 */
function parsedParams(
  strategy: object,
  baseParams: object,
  combos: readonly Readonly<Record<string, unknown>>[],
): unknown[] {
  const known = parsedByCombos.get(combos);
  if (known !== undefined && known.strategy === strategy && known.baseParams === baseParams) {
    return known.params;
  }
  const params: unknown[] = new Array(combos.length);
  parsedByCombos.set(combos, { strategy, baseParams, params });
  return params;
}
