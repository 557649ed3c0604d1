import * as z from 'zod';
import { type CriterionResult, type Decision, evaluateCriteria } from '../backtest/criteria.js';
import { backtestPortfolio } from '../backtest/fast/portfolio.js';
import type { BacktestOptions, TradeRecord } from '../backtest/types.js';
import type { StrategyConfig } from '../config/schema.js';
import { InsufficientDataError } from '../errors.js';
import { alignBars, indexAtOrAfter } from '../market/align.js';
import { type BarSeries, formatBarTime } from '../market/types.js';
import { computeMetrics, DEFAULT_PERIODS_PER_YEAR, type Metrics } from '../metrics/index.js';
import { getStrategy } from '../strategies/index.js';
import { type DeflatedSharpe, deflatedSharpe, periodReturns } from './deflated-sharpe.js';
import type { GridEvaluator } from './evaluate.js';
import type { Combination, ParameterValue } from './grid.js';
import { type Objective, objectiveValue, rankResults } from './objective.js';

/** How windows are cut: lengths in bars or calendar months. */
export const walkForwardSettingsSchema = z
  .object({
    /** `rolling`: the in-sample span moves with each step; `anchored`: it always starts at the first bar. */
    mode: z.enum(['rolling', 'anchored']).default('rolling'),
    unit: z.enum(['bars', 'months']).default('bars'),
    inSample: z.number().int().positive().default(504),
    outOfSample: z.number().int().positive().default(126),
    /** Defaults to the out-of-sample length, so out-of-sample spans tile without overlap. */
    step: z.number().int().positive().optional(),
  })
  .strict();

export type WalkForwardSettings = z.infer<typeof walkForwardSettingsSchema>;

/** One window as slot indices (inclusive) into a calendar. */
export interface WindowSpan {
  readonly isStart: number;
  readonly isEnd: number;
  readonly oosStart: number;
  readonly oosEnd: number;
}

function addMonths(time: number, months: number): number {
  const d = new Date(time);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + months, d.getUTCDate());
}

/**
 * Cuts the calendar into walk-forward windows. Each out-of-sample span starts the bar after its
 * in-sample span; a last, shorter out-of-sample span is kept when at least half its length remains.
 */
export function buildWindows(time: Float64Array, settings: WalkForwardSettings): WindowSpan[] {
  const n = time.length;
  const step = settings.step ?? settings.outOfSample;
  const windows: WindowSpan[] = [];
  if (settings.unit === 'bars') {
    for (let isStart = 0; ; isStart += step) {
      const anchoredStart = settings.mode === 'anchored' ? 0 : isStart;
      const isEnd = isStart + settings.inSample - 1;
      const oosStart = isEnd + 1;
      if (oosStart >= n) break;
      const oosEnd = Math.min(n - 1, oosStart + settings.outOfSample - 1);
      if (oosEnd - oosStart + 1 < Math.ceil(settings.outOfSample / 2)) break;
      windows.push({ isStart: anchoredStart, isEnd, oosStart, oosEnd });
    }
    return windows;
  }
  const first = time[0] as number;
  for (let k = 0; ; k++) {
    const isFrom = addMonths(first, k * step);
    const oosFrom = addMonths(isFrom, settings.inSample);
    const oosTo = addMonths(oosFrom, settings.outOfSample);
    const isStart = settings.mode === 'anchored' ? 0 : indexAtOrAfter(time, isFrom);
    const oosStart = indexAtOrAfter(time, oosFrom);
    if (oosStart >= n) break;
    const oosEnd = indexAtOrAfter(time, oosTo) - 1;
    const full = oosTo <= (time[n - 1] as number) + 86_400_000;
    if (!full && (time[n - 1] as number) < addMonths(oosFrom, settings.outOfSample / 2)) break;
    windows.push({ isStart, isEnd: oosStart - 1, oosStart, oosEnd: Math.min(oosEnd, n - 1) });
  }
  return windows;
}

/** One window's outcome, as in the walk-forward document. */
export interface WindowResult {
  readonly symbol: string;
  readonly index: number;
  readonly inSample: { readonly from: string; readonly to: string };
  readonly outOfSample: { readonly from: string; readonly to: string };
  /** Null when no combination met the minimums in-sample: the out-of-sample span stays flat. */
  readonly params: Combination | null;
  readonly objective: number | null;
  readonly inSampleMetrics: Metrics | null;
  readonly outOfSampleMetrics: Metrics;
}

/** Numeric parameters across windows: how much the chosen value moves. */
export interface ParameterStability {
  readonly name: string;
  readonly values: readonly ParameterValue[];
  readonly mean: number | null;
  readonly stdev: number | null;
  /** stdev / |mean|: 0 is perfectly stable. */
  readonly coefficientOfVariation: number | null;
  /** Share of windows choosing the most frequent value, in percent. */
  readonly modeSharePct: number;
}

/** The walk-forward of one unit: a symbol alone, or the portfolio of all symbols. */
export interface UnitResult {
  readonly symbol: string;
  readonly windows: readonly WindowResult[];
  readonly outOfSample: {
    readonly metrics: Metrics;
    readonly equity: readonly { time: string; equity: number }[];
  };
  /** Annualised out-of-sample return / mean annualised in-sample return of the chosen parameters. */
  readonly efficiency: number | null;
  readonly efficiencyNote: string | null;
  readonly stability: readonly ParameterStability[];
  readonly multipleTesting: DeflatedSharpe | null;
  readonly trades: readonly TradeRecord[];
}

/** Everything a walk-forward needs. */
export interface WalkForwardInput {
  readonly series: readonly BarSeries[];
  readonly strategy: string;
  readonly baseParams: Readonly<Record<string, unknown>>;
  readonly combos: readonly Combination[];
  readonly objective: Objective;
  readonly options: BacktestOptions;
  readonly settings: WalkForwardSettings;
  readonly criteria: StrategyConfig['criteria'];
  readonly evaluator: GridEvaluator;
  /** Called after each window, for progress bars: (done, total). */
  readonly onProgress?: (done: number, total: number) => void;
}

export interface WalkForwardResult {
  readonly perSymbol: readonly UnitResult[];
  readonly portfolio: UnitResult;
  readonly trials: number;
  readonly criteria: readonly CriterionResult[];
  readonly decision: Decision;
}

export const PORTFOLIO = 'PORTFOLIO';

/** One unit of a walk-forward plan: a symbol alone, or the portfolio of all symbols. */
export interface PlannedUnit {
  readonly symbol: string;
  /** Symbols of the unit, in the order of the input series. */
  readonly symbols: readonly string[];
  readonly windows: readonly WindowSpan[];
}

/** Every unit and window of a walk-forward, decided before any backtest runs. */
export function planWalkForward(series: readonly BarSeries[], settings: WalkForwardSettings): PlannedUnit[] {
  const units = [...series.map((s) => [s]), ...(series.length > 1 ? [series] : [])];
  return units.map((members) => {
    const symbol = members.length > 1 ? PORTFOLIO : (members[0] as BarSeries).symbol;
    const time = alignBars(members).time;
    const windows = buildWindows(time, settings);
    if (windows.length === 0) {
      throw new InsufficientDataError(
        `${symbol}: ${time.length} bars are too few for one window of ${settings.inSample} + ${settings.outOfSample} ${settings.unit}`,
      );
    }
    return { symbol, symbols: members.map((m) => m.symbol), windows };
  });
}

/** What one window produced; plain JSON, so that a pipeline step can store it and another read it. */
export interface WindowOutcome extends WindowChoice {
  readonly index: number;
  readonly outOfSample: {
    readonly metrics: Metrics;
    readonly time: readonly number[];
    readonly equity: readonly number[];
    readonly inMarket: readonly number[];
    readonly trades: readonly TradeRecord[];
  };
}

/** The shared settings of every window of a walk-forward. */
export type WindowSettings = Pick<
  WalkForwardInput,
  'strategy' | 'baseParams' | 'combos' | 'objective' | 'options'
>;

/** The in-sample choice of one window. */
export interface WindowChoice {
  readonly params: Combination | null;
  readonly objective: number | null;
  readonly inSampleMetrics: Metrics | null;
  /** Variance across the grid of the in-sample per-period Sharpe ratios (for the deflated Sharpe ratio). */
  readonly sharpeVariance: number;
}

/**
 * Chooses a window's parameters on its in-sample span only: the bars before the span warm the
 * indicators up and no bar after it is read.
 */
export async function chooseWindowParams(
  settings: WindowSettings,
  series: readonly BarSeries[],
  window: WindowSpan,
  evaluator: GridEvaluator,
): Promise<WindowChoice> {
  const inSample = await evaluator.evaluate({
    series,
    strategy: settings.strategy,
    baseParams: settings.baseParams,
    combos: settings.combos,
    options: { ...settings.options, startIndex: window.isStart, endIndex: window.isEnd, endOfData: 'close' },
  });
  const best = rankResults(inSample, settings.objective)[0];
  const bestValue = best === undefined ? null : objectiveValue(inSample[best] as Metrics, settings.objective);
  const params = best === undefined || bestValue === null ? null : (settings.combos[best] as Combination);
  return {
    params,
    objective: bestValue,
    inSampleMetrics: params === null ? null : (inSample[best as number] as Metrics),
    sharpeVariance: perPeriodSharpeVariance(inSample, settings.options.periodsPerYear),
  };
}

/**
 * Runs a window's chosen parameters on its out-of-sample span: flat at its start, with fresh
 * breakers, closing at its end. With no qualifying parameters the span is sat out, flat.
 */
export function runOutOfSample(
  settings: WindowSettings,
  series: readonly BarSeries[],
  window: WindowSpan,
  index: number,
  choice: WindowChoice,
): WindowOutcome {
  const { params } = choice;
  const oos = backtestPortfolio({
    series,
    strategy: getStrategy(settings.strategy),
    params: { ...settings.baseParams, ...(params ?? {}) },
    options: {
      ...settings.options,
      startIndex: window.oosStart,
      endIndex: window.oosEnd,
      endOfData: 'close',
      ...(params === null ? { sizing: { mode: 'fixed', qty: 0 }, risk: undefined } : {}),
    },
  });
  return {
    index,
    ...choice,
    outOfSample: {
      metrics: oos.metrics,
      time: Array.from(oos.equity.time),
      equity: Array.from(oos.equity.equity),
      inMarket: Array.from(oos.equity.inMarket),
      trades: oos.trades,
    },
  };
}

/**
 * Walk-forward analysis: per window, the parameters are chosen on the in-sample span only (the
 * bars before it warm the indicators up; nothing after it is seen), then run on the out-of-sample
 * span, flat at its start, with fresh breakers, closing at its end. The out-of-sample spans are
 * stitched into one equity curve. Done per symbol and for the portfolio of all symbols.
 */
export async function walkForward(input: WalkForwardInput): Promise<WalkForwardResult> {
  const plan = planWalkForward(input.series, input.settings);
  const total = plan.reduce((n, u) => n + u.windows.length, 0);
  let done = 0;
  const units: UnitResult[] = [];
  for (const unit of plan) {
    const series = input.series.filter((s) => unit.symbols.includes(s.symbol));
    const outcomes: WindowOutcome[] = [];
    for (const [index, window] of unit.windows.entries()) {
      const choice = await chooseWindowParams(input, series, window, input.evaluator);
      outcomes.push(runOutOfSample(input, series, window, index, choice));
      input.onProgress?.(++done, total);
    }
    units.push(aggregateUnit(unit, series, outcomes, input.options, input.combos.length));
  }
  return decideWalkForward(units, input.combos.length, input.criteria);
}

/** The verdict over the units: the portfolio's criteria plus consistency across symbols. */
export function decideWalkForward(
  units: readonly UnitResult[],
  trials: number,
  criteria: StrategyConfig['criteria'],
): WalkForwardResult {
  const portfolio = units.find((r) => r.symbol === PORTFOLIO) ?? (units[0] as UnitResult);
  const perSymbol = units.filter((r) => r.symbol !== PORTFOLIO);
  const results = [
    ...evaluateCriteria(portfolio.outOfSample.metrics, criteria),
    consistency(perSymbol, criteria),
  ];
  const failed = results.filter((c) => !c.pass).map((c) => c.name);
  return {
    perSymbol,
    portfolio,
    trials,
    criteria: results,
    decision: { proceed: failed.length === 0, failed },
  };
}

function consistency(
  perSymbol: readonly UnitResult[],
  criteria: StrategyConfig['criteria'],
): CriterionResult {
  const positive = perSymbol.filter((u) => u.outOfSample.metrics.returnPct > 0).length;
  const value = perSymbol.length === 0 ? null : (positive / perSymbol.length) * 100;
  const threshold = criteria.minSymbolsPositivePct;
  return {
    name: 'symbolsPositivePct',
    metric: 'returnPct',
    op: '>=',
    threshold,
    value,
    pass: value !== null && value >= threshold,
  };
}

/** Stitches a unit's windows: the out-of-sample curve, efficiency, stability, deflated Sharpe ratio. */
export function aggregateUnit(
  unit: PlannedUnit,
  series: readonly BarSeries[],
  outcomes: readonly WindowOutcome[],
  options: BacktestOptions,
  trials: number,
): UnitResult {
  const { symbol, windows } = unit;
  const time = alignBars(series).time;
  const intraday = series.some((s) => s.intraday);
  const fmt = (slot: number) => formatBarTime(time[slot] as number, intraday);
  const stitchedTime: number[] = [];
  const stitchedEquity: number[] = [];
  const stitchedInMarket: number[] = [];
  const stitchedPnls: number[] = [];
  const trades: TradeRecord[] = [];
  const initial = options.initialCash;
  let capital = initial;
  const windowResults: WindowResult[] = outcomes.map((outcome) => {
    const w = windows[outcome.index] as WindowSpan;
    const oos = outcome.outOfSample;
    const scale = capital / initial;
    for (let i = 0; i < oos.time.length; i++) {
      stitchedTime.push(oos.time[i] as number);
      stitchedEquity.push((oos.equity[i] as number) * scale);
      stitchedInMarket.push(oos.inMarket[i] as number);
    }
    for (const t of oos.trades) {
      if (t.exitTime !== null) stitchedPnls.push(t.pnl * scale);
      trades.push(t);
    }
    capital = stitchedEquity[stitchedEquity.length - 1] as number;
    return {
      symbol,
      index: outcome.index,
      inSample: { from: fmt(w.isStart), to: fmt(w.isEnd) },
      outOfSample: { from: fmt(w.oosStart), to: fmt(w.oosEnd) },
      params: outcome.params,
      objective: outcome.objective,
      inSampleMetrics: outcome.inSampleMetrics,
      outOfSampleMetrics: oos.metrics,
    };
  });

  const first = windows[0] as WindowSpan;
  const last = windows[windows.length - 1] as WindowSpan;
  const equity = Float64Array.from(stitchedEquity);
  const metrics = computeMetrics({
    time: Float64Array.from(stitchedTime),
    equity,
    initialEquity: initial,
    inMarket: Uint8Array.from(stitchedInMarket),
    tradePnls: stitchedPnls,
    buyHoldReturnPct: buyAndHold(series, time, first.oosStart, last.oosEnd),
    riskFreeRate: options.riskFreeRate,
    periodsPerYear: options.periodsPerYear ?? DEFAULT_PERIODS_PER_YEAR,
  });
  const isCagr = windowResults
    .map((w) => w.inSampleMetrics?.cagrPct ?? null)
    .filter((x): x is number => x !== null);
  const meanIsCagr = isCagr.length === 0 ? null : isCagr.reduce((a, b) => a + b, 0) / isCagr.length;
  let efficiency: number | null = null;
  let efficiencyNote: string | null = null;
  if (meanIsCagr === null) efficiencyNote = 'no window had in-sample parameters that met the minimums';
  else if (!(meanIsCagr > 0))
    efficiencyNote = `the mean in-sample annual return (${round(meanIsCagr)}%) is not positive`;
  else if (metrics.cagrPct === null) efficiencyNote = 'the out-of-sample annual return is undefined';
  else efficiency = metrics.cagrPct / meanIsCagr;
  const meanVariance = outcomes.reduce((a, o) => a + o.sharpeVariance, 0) / Math.max(1, outcomes.length);
  return {
    symbol,
    windows: windowResults,
    outOfSample: {
      metrics,
      equity: stitchedTime.map((t, i) => ({
        time: formatBarTime(t, intraday),
        equity: round(equity[i] as number, 2),
      })),
    },
    efficiency,
    efficiencyNote,
    stability: stability(windowResults),
    multipleTesting: deflatedSharpe(periodReturns(initial, equity), trials, meanVariance),
    trades,
  };
}

function round(x: number, digits = 4): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/**
 * Variance across the grid of the per-period (daily) Sharpe ratios, for the deflated Sharpe ratio:
 * the annualised ratios divided by the square root of the periods a year they were annualised with.
 */
function perPeriodSharpeVariance(
  results: readonly Metrics[],
  periodsPerYear = DEFAULT_PERIODS_PER_YEAR,
): number {
  const values = results
    .map((m) => m.sharpe)
    .filter((x): x is number => x !== null)
    .map((s) => s / Math.sqrt(periodsPerYear));
  if (values.length < 2) return 0;
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  return values.reduce((a, b) => a + (b - mean) ** 2, 0) / (values.length - 1);
}

function buyAndHold(series: readonly BarSeries[], time: Float64Array, from: number, to: number): number {
  let sum = 0;
  for (const s of series) {
    const a = s.time.indexOf(time[from] as number);
    const b = s.time.indexOf(time[to] as number);
    if (a >= 0 && b >= 0) sum += (s.close[b] as number) / (s.close[a] as number) - 1;
  }
  return (sum / series.length) * 100;
}

function stability(windows: readonly WindowResult[]): ParameterStability[] {
  const chosen = windows.map((w) => w.params).filter((p): p is Combination => p !== null);
  const names = [...new Set(chosen.flatMap((p) => Object.keys(p)))];
  return names.map((name) => {
    const values = chosen.map((p) => p[name] as ParameterValue);
    const counts = new Map<ParameterValue, number>();
    for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
    const modeSharePct = values.length === 0 ? 0 : (Math.max(...counts.values()) / values.length) * 100;
    const numeric = values.every((v) => typeof v === 'number') ? (values as number[]) : null;
    if (numeric === null || numeric.length === 0) {
      return { name, values, mean: null, stdev: null, coefficientOfVariation: null, modeSharePct };
    }
    const mean = numeric.reduce((a, b) => a + b, 0) / numeric.length;
    const stdev = Math.sqrt(numeric.reduce((a, b) => a + (b - mean) ** 2, 0) / numeric.length);
    return {
      name,
      values,
      mean: round(mean),
      stdev: round(stdev),
      coefficientOfVariation: mean === 0 ? null : round(stdev / Math.abs(mean)),
      modeSharePct: round(modeSharePct, 2),
    };
  });
}
