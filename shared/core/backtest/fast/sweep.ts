import * as z from 'zod';
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
  const parse = comboParser<P>(strategy, baseParams);
  const run = (index: number, lane: FastLane): Metrics | undefined => {
    const combo = combos[index] as Readonly<Record<string, unknown>>;
    // Parsed from this very object (an element replaced since is parsed again).
    let params = parsed.from[index] === combo ? (parsed.params[index] as P) : undefined;
    if (params === undefined) {
      params = parse(combo);
      parsed.params[index] = params;
      parsed.from[index] = combo;
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
  {
    readonly strategy: object;
    readonly baseParams: object;
    /** The base's own values when they were all primitives (a copy), else undefined. */
    readonly baseValues: Readonly<Record<string, unknown>> | undefined;
    readonly params: unknown[];
    /** The combination object each entry of `params` was parsed from. */
    readonly from: unknown[];
  }
>();

/**
 * The parameters parsed so far for these combinations of this strategy and base parameters (filled
 * as each is first parsed): a sweep of the same combinations over several symbols (the bench, a
 * walk-forward's windows) parses each combination once. Keyed by the combinations array and the
 * strategy themselves, which a sweep reads as immutable, and by the base parameters' values: a
 * base of primitives only counts as the same when it holds the same keys and values (`Object.is`)
 * in the same order as when the parse started, whether it is the same object (a caller may make a new one per sweep,
 * or change one between sweeps) or not; any other base by the object itself. Each entry is kept with
 * the combination object it was parsed from: an element of the array replaced between sweeps is
 * parsed again. A combination object changed in place is not seen (a sweep's combinations are
 * read-only: `expandGrid` makes new objects, a worker's chunk arrives as new ones).
 */
function parsedParams(
  strategy: object,
  baseParams: Readonly<Record<string, unknown>>,
  combos: readonly Readonly<Record<string, unknown>>[],
): { readonly params: unknown[]; readonly from: unknown[] } {
  const known = parsedByCombos.get(combos);
  if (
    known !== undefined &&
    known.strategy === strategy &&
    (known.baseValues === undefined
      ? known.baseParams === baseParams
      : sameValues(known.baseValues, baseParams))
  ) {
    return known;
  }
  const entry = {
    strategy,
    baseParams,
    baseValues: primitiveValues(baseParams),
    params: new Array(combos.length),
    from: new Array(combos.length),
  };
  parsedByCombos.set(combos, entry);
  return entry;
}

/** A copy of `record`'s own enumerable values when every one is a primitive; else undefined. */
function primitiveValues(
  record: Readonly<Record<string, unknown>>,
): Readonly<Record<string, unknown>> | undefined {
  const copy: Record<string, unknown> = {};
  for (const key of Object.keys(record)) {
    const v = record[key];
    if ((typeof v === 'object' && v !== null) || typeof v === 'function') return undefined;
    copy[key] = v;
  }
  return copy;
}

/** Whether `record`'s own enumerable keys are `values`' in the same order, with the same values (`Object.is`). */
function sameValues(
  values: Readonly<Record<string, unknown>>,
  record: Readonly<Record<string, unknown>>,
): boolean {
  const keys = Object.keys(record);
  const known = Object.keys(values);
  if (keys.length !== known.length) return false;
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i] as string;
    if (key !== known[i] || !Object.is(values[key], record[key])) return false;
  }
  return true;
}

/**
 * `strategy.params.parse({ ...baseParams, ...combo })` for each combination of a sweep, with the
 * same result (and, for a combination it rejects, the same error: that parse runs then), for less
 * work: when the schema is a plain object schema (no checks on the object as a whole, such as
 * ma-crossover's fast < slow) and the base parameters pass it alone, the base is parsed once and
 * each combination's own fields go through their field schemas only. A grid varies two or three
 * fields of five or more, and a whole object's parse cost about 2.5 µs and 1.1 KB of garbage per
 * combination, which a sweep whose combinations come in new arrays (a worker thread's chunks)
 * paid for each. Any other case (a combination's key the shape does not have, a field it
 * rejects, another kind of schema) runs the whole parse. Lazy: the base is parsed at the first
 * call, so a sweep whose every combination is parsed already (`parsedParams`) parses nothing.
 */
export function comboParser<P>(
  strategy: StrategyDefinition<P>,
  baseParams: Readonly<Record<string, unknown>>,
): (combo: Readonly<Record<string, unknown>>) => P {
  let parse: ((combo: Readonly<Record<string, unknown>>) => P) | undefined;
  return (combo) => {
    parse ??= eagerComboParser(strategy, baseParams);
    return parse(combo);
  };
}

/** `comboParser`'s parser, the base parsed now. */
function eagerComboParser<P>(
  strategy: StrategyDefinition<P>,
  baseParams: Readonly<Record<string, unknown>>,
): (combo: Readonly<Record<string, unknown>>) => P {
  const schema: unknown = strategy.params;
  const whole = (combo: Readonly<Record<string, unknown>>): P =>
    strategy.params.parse({ ...baseParams, ...combo });
  if (!(schema instanceof z.ZodObject) || (schema.def.checks?.length ?? 0) > 0) return whole;
  const base = schema.safeParse(baseParams);
  // Values of the base shared by every combination's parameters are primitives only (a whole parse
  // makes new objects for each).
  if (!base.success || Object.values(base.data).some((v) => typeof v === 'object' && v !== null)) {
    return whole;
  }
  const parsedBase = base.data as Record<string, unknown>;
  const shape = schema.shape as Readonly<Record<string, z.ZodType>>;
  return (combo) => {
    const params: Record<string, unknown> = { ...parsedBase };
    for (const key in combo) {
      if (!Object.hasOwn(combo, key)) continue;
      // A key the parsed base lacks would come last here, in the shape's order in a whole parse.
      const field = Object.hasOwn(shape, key) && Object.hasOwn(parsedBase, key) ? shape[key] : undefined;
      const result = field?.safeParse(combo[key]);
      if (result === undefined || !result.success) return whole(combo);
      params[key] = result.data;
    }
    return params as P;
  };
}
