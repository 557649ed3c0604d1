/**
 * Walk-forward of a sleeves account. Each sleeve's grid is searched on its own in-sample spans (its
 * strategy on its symbols, with its direction, sizing and risk overrides), the chosen parameters run
 * out of sample, and each sleeve's out-of-sample spans are stitched. The allocation is then applied
 * out of sample to the stitched sleeve returns (weights at t from returns up to t−1 only, rebalanced
 * on the schedule or on drift, correlation cuts included): that is the account's out-of-sample curve.
 * The decision covers each sleeve and the account.
 */
import { type CriterionResult, type Decision, decide, evaluateCriteria } from '../backtest/criteria.js';
import type { BacktestOptions } from '../backtest/types.js';
import type { StrategyConfig } from '../config/schema.js';
import { alignBars } from '../market/align.js';
import { type BarSeries, formatBarTime } from '../market/types.js';
import { computeMetrics, type Metrics } from '../metrics/index.js';
import { targetWeights } from '../portfolio/allocator.js';
import {
  type AllocationSettings,
  defaultAllocation,
  type SleeveCorrelationSettings,
} from '../portfolio/config.js';
import { type CorrelationEvent, SleeveCorrelationMonitor } from '../portfolio/correlation.js';
import { isScheduledRebalance, maxDrift } from '../portfolio/rebalance.js';
import type { Sleeve } from '../portfolio/sleeves.js';
import type { GridEvaluator } from './evaluate.js';
import { type Combination, expandGrid } from './grid.js';
import type { Objective } from './objective.js';
import {
  aggregateUnit,
  buildWindows,
  chooseWindowParams,
  type PlannedUnit,
  runOutOfSample,
  type UnitResult,
  type WalkForwardSettings,
  type WindowOutcome,
  type WindowSettings,
} from './walk-forward.js';

/** The backtest options one sleeve runs with on its own: the account's, with its direction, sizing and risk overrides. */
export function sleeveOptions(sleeve: Sleeve, options: BacktestOptions): BacktestOptions {
  const { risk } = options;
  return {
    ...options,
    direction: sleeve.direction,
    ...(sleeve.sizing === undefined ? {} : { sizing: sleeve.sizing }),
    ...(risk === undefined || sleeve.risk === undefined ? {} : { risk: { ...risk, ...sleeve.risk } }),
    ...(sleeve.risk?.maxPositionFraction === undefined
      ? {}
      : { maxPositionFraction: sleeve.risk.maxPositionFraction }),
  };
}

/** A sleeve's grid (the sleeve's `optimize.space`); without one, its configured parameters alone. */
export function sleeveCombos(sleeve: Sleeve): Combination[] {
  return sleeve.space === undefined ? [{}] : expandGrid(sleeve.space);
}

/** The series a sleeve trades, in the account's order. */
export function sleeveSeries(sleeve: Sleeve, series: readonly BarSeries[]): BarSeries[] {
  return series.filter((s) => sleeve.symbols.includes(s.symbol));
}

export interface SleevesWalkForwardInput {
  readonly series: readonly BarSeries[];
  readonly sleeves: readonly Sleeve[];
  readonly objective: Objective;
  readonly options: BacktestOptions;
  readonly settings: WalkForwardSettings;
  readonly criteria: StrategyConfig['criteria'];
  readonly allocation?: AllocationSettings;
  readonly correlation?: SleeveCorrelationSettings;
  readonly evaluator: GridEvaluator;
  readonly onProgress?: (done: number, total: number) => void;
}

/** One sleeve's walk-forward, with its own verdict. */
export interface SleeveWalkForward {
  readonly id: string;
  readonly strategy: string;
  readonly trials: number;
  readonly unit: UnitResult;
  readonly criteria: readonly CriterionResult[];
  readonly decision: Decision;
}

/** The account's out-of-sample result: the allocation applied to the stitched sleeve returns. */
export interface AccountWalkForward {
  readonly metrics: Metrics;
  readonly equity: readonly { time: string; equity: number }[];
  /** Weights in force after each close of the stitched span. */
  readonly weights: readonly { time: string; weights: Record<string, number> }[];
  readonly reallocations: readonly { time: string; reason: string; weights: Record<string, number> }[];
  readonly correlationEvents: readonly (Omit<CorrelationEvent, 'time'> & { time: string })[];
}

export interface SleevesWalkForwardResult {
  readonly sleeves: readonly SleeveWalkForward[];
  readonly account: AccountWalkForward;
  readonly criteria: readonly CriterionResult[];
  readonly decision: Decision;
}

/** The window plan of every sleeve (on its own symbols' calendar), decided before any backtest runs. */
export function planSleeves(
  series: readonly BarSeries[],
  sleeves: readonly Sleeve[],
  settings: WalkForwardSettings,
): PlannedUnit[] {
  return sleeves.map((sleeve) => {
    const own = sleeveSeries(sleeve, series);
    return {
      symbol: sleeve.id,
      symbols: own.map((s) => s.symbol),
      windows: buildWindows(alignBars(own).time, settings),
    };
  });
}

/** What every window of one sleeve runs with: its strategy, parameters, grid and options. */
export function sleeveWindowSettings(
  sleeve: Sleeve,
  objective: Objective,
  options: BacktestOptions,
): WindowSettings {
  return {
    strategy: sleeve.strategy.name,
    baseParams: sleeve.params as Record<string, unknown>,
    combos: sleeveCombos(sleeve),
    objective,
    options: sleeveOptions(sleeve, options),
  };
}

/** Runs one sleeve's window: its grid in sample, the choice out of sample. */
export async function runSleeveWindow(
  sleeve: Sleeve,
  input: Pick<SleevesWalkForwardInput, 'series' | 'objective' | 'options'>,
  unit: PlannedUnit,
  index: number,
  evaluator: GridEvaluator,
): Promise<WindowOutcome> {
  const own = sleeveSeries(sleeve, input.series);
  const settings = sleeveWindowSettings(sleeve, input.objective, input.options);
  const window = unit.windows[index] as PlannedUnit['windows'][number];
  const choice = await chooseWindowParams(settings, own, window, evaluator);
  return runOutOfSample(settings, own, window, index, choice);
}

/** Walk-forward of every sleeve, then the allocation over their stitched out-of-sample returns. */
export async function sleevesWalkForward(input: SleevesWalkForwardInput): Promise<SleevesWalkForwardResult> {
  const plan = planSleeves(input.series, input.sleeves, input.settings);
  const total = plan.reduce((n, u) => n + u.windows.length, 0);
  let done = 0;
  // Every (sleeve, window) is independent: they all go to the evaluator at once, so its threads
  // stay busy while the calling thread runs the out-of-sample spans; the order of results is fixed.
  const outcomes = await Promise.all(
    input.sleeves.map((sleeve, k) => {
      const unit = plan[k] as PlannedUnit;
      return Promise.all(
        unit.windows.map(async (_, index) => {
          const outcome = await runSleeveWindow(sleeve, input, unit, index, input.evaluator);
          input.onProgress?.(++done, total);
          return outcome;
        }),
      );
    }),
  );
  return combineSleeves(input, plan, outcomes);
}

/** From each sleeve's window outcomes: the stitched units, the allocated account and the verdicts. */
export function combineSleeves(
  input: Pick<
    SleevesWalkForwardInput,
    'series' | 'sleeves' | 'options' | 'criteria' | 'allocation' | 'correlation'
  >,
  plan: readonly PlannedUnit[],
  outcomes: readonly (readonly WindowOutcome[])[],
): SleevesWalkForwardResult {
  const sleeves: SleeveWalkForward[] = input.sleeves.map((sleeve, k) => {
    const trials = sleeveCombos(sleeve).length;
    const unit = aggregateUnit(
      plan[k] as PlannedUnit,
      sleeveSeries(sleeve, input.series),
      outcomes[k] as WindowOutcome[],
      sleeveOptions(sleeve, input.options),
      trials,
    );
    const criteria = evaluateCriteria(unit.outOfSample.metrics, input.criteria);
    return {
      id: sleeve.id,
      strategy: sleeve.strategy.name,
      trials,
      unit,
      criteria,
      decision: decide(criteria),
    };
  });
  const account = allocateOutOfSample(input, sleeves, outcomes);
  const positive = sleeves.filter((s) => s.unit.outOfSample.metrics.returnPct > 0).length;
  const share = (positive / sleeves.length) * 100;
  const criteria: CriterionResult[] = [
    ...evaluateCriteria(account.metrics, input.criteria),
    {
      name: 'sleevesPositivePct',
      metric: 'returnPct',
      op: '>=',
      threshold: input.criteria.minSymbolsPositivePct,
      value: share,
      pass: share >= input.criteria.minSymbolsPositivePct,
    },
  ];
  return { sleeves, account, criteria, decision: decide(criteria) };
}

/**
 * The account's out-of-sample curve: each sleeve's stitched daily returns, weighted by the allocation
 * (weights at t from returns up to t−1), rebalanced on the schedule or on drift.
 */
function allocateOutOfSample(
  input: Pick<SleevesWalkForwardInput, 'sleeves' | 'options' | 'allocation' | 'correlation' | 'series'>,
  sleeves: readonly SleeveWalkForward[],
  outcomes: readonly (readonly WindowOutcome[])[],
): AccountWalkForward {
  const allocation = input.allocation ?? defaultAllocation();
  const intraday = input.series.some((s) => s.intraday);
  const fmt = (t: number) => formatBarTime(t, intraday);
  const ids = input.sleeves.map((s) => s.id);
  // Each sleeve's stitched out-of-sample daily returns, by time.
  const byTime = new Map<number, number[]>();
  const inMarketAt = new Map<number, number>();
  const trades: { time: number; sleeve: number; pnl: number; equity: number }[] = [];
  outcomes.forEach((list, k) => {
    let previous = input.options.initialCash;
    for (const outcome of list) {
      const oos = outcome.outOfSample;
      const scale = previous / input.options.initialCash;
      let last = input.options.initialCash;
      oos.time.forEach((t, i) => {
        const value = oos.equity[i] as number;
        const row = byTime.get(t) ?? ids.map(() => 0);
        row[k] = value / last - 1;
        byTime.set(t, row);
        inMarketAt.set(t, Math.max(inMarketAt.get(t) ?? 0, oos.inMarket[i] as number));
        last = value;
      });
      for (const trade of oos.trades) {
        if (trade.exitTime !== null)
          trades.push({ time: trade.exitTime, sleeve: k, pnl: trade.pnl * scale, equity: previous });
      }
      previous *= last / input.options.initialCash;
    }
  });
  const times = [...byTime.keys()].sort((a, b) => a - b);
  const configured = input.sleeves.map((s) => s.weight);
  const bounds = input.sleeves.map((s) => ({ min: s.minWeight, max: s.maxWeight }));
  const monitor =
    input.correlation === undefined ? undefined : new SleeveCorrelationMonitor(ids, input.correlation);
  const history: number[][] = [];
  let weights = targetWeights(allocation, configured, bounds, history).weights;
  let capital = weights.map((w) => w * input.options.initialCash);
  const equity = new Float64Array(times.length);
  const inMarket = new Uint8Array(times.length);
  const weightRows: AccountWalkForward['weights'][number][] = [];
  const reallocations: AccountWalkForward['reallocations'][number][] = [];
  const correlationEvents: AccountWalkForward['correlationEvents'][number][] = [];
  const named = (ws: readonly number[]) =>
    Object.fromEntries(ids.map((id, i) => [id, Math.round((ws[i] as number) * 1e6) / 1e6]));
  let previousTime = Number.NaN;
  const pnls: number[] = [];
  let tradeAt = 0;
  const sortedTrades = trades.sort((a, b) => a.time - b.time);
  times.forEach((t, i) => {
    const returns = byTime.get(t) as number[];
    // The sleeves' capital grows with their returns; trade P&L scales with the capital the sleeve had.
    const before = [...capital];
    capital = capital.map((c, k) => c * (1 + (returns[k] as number)));
    while (tradeAt < sortedTrades.length && (sortedTrades[tradeAt] as (typeof trades)[number]).time <= t) {
      const trade = sortedTrades[tradeAt++] as (typeof trades)[number];
      pnls.push(
        trade.pnl *
          ((before[trade.sleeve] as number) / (input.options.initialCash * 1)) *
          (input.options.initialCash / trade.equity),
      );
    }
    const total = capital.reduce((a, b) => a + b, 0);
    equity[i] = total;
    inMarket[i] = inMarketAt.get(t) ?? 0;
    let reason: string | null = null;
    if (isScheduledRebalance(allocation.rebalance, previousTime, t)) reason = 'schedule';
    else if (
      allocation.driftThreshold !== undefined &&
      maxDrift(capital, weights) > allocation.driftThreshold
    )
      reason = 'drift';
    if (monitor !== undefined && i > 0) {
      const check = monitor.check(t);
      correlationEvents.push(...check.events.map((e) => ({ ...e, time: fmt(e.time) })));
      if (check.changed && reason === null) reason = 'correlation';
    }
    if (reason !== null) {
      weights = targetWeights(allocation, configured, bounds, history, monitor?.cuts()).weights;
      capital = weights.map((w) => w * total);
      reallocations.push({ time: fmt(t), reason, weights: named(weights) });
    }
    history.push(returns);
    monitor?.push(returns);
    weightRows.push({ time: fmt(t), weights: named(weights) });
    previousTime = t;
  });
  const metrics = computeMetrics({
    time: Float64Array.from(times),
    equity,
    initialEquity: input.options.initialCash,
    inMarket,
    tradePnls: pnls,
    buyHoldReturnPct:
      sleeves.reduce((a, s) => a + s.unit.outOfSample.metrics.buyHoldReturnPct, 0) /
      Math.max(1, sleeves.length),
    riskFreeRate: input.options.riskFreeRate,
  });
  return {
    metrics,
    equity: times.map((t, i) => ({ time: fmt(t), equity: Math.round((equity[i] as number) * 100) / 100 })),
    weights: weightRows,
    reallocations,
    correlationEvents,
  };
}
