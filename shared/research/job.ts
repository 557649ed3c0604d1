/**
 * A research job resolved from a config (and, on the command line, ad hoc flags over it): the
 * backtest job, the parameter search, the walk-forward windows, and the walk-forward document.
 * No I/O and no CLI code: the CLI commands and the pipeline's steps (the Lambda functions) share
 * it, so that the pipeline runs exactly what `--config` runs on the command line.
 */
import type { BacktestOptions } from '../core/backtest/types.js';
import {
  configProducts,
  criteriaSchema,
  type StrategyConfig,
  strategyParams,
} from '../core/config/schema.js';
import { InsufficientDataError, UsageError } from '../core/errors.js';
import type { CommissionModel } from '../core/ledger/money.js';
import { alignBars } from '../core/market/align.js';
import { periodsPerYear } from '../core/market/asset-class.js';
import { type BarSeries, formatBarTime } from '../core/market/types.js';
import type { Metrics } from '../core/metrics/index.js';
import {
  type Combination,
  expandGrid,
  type ParameterSpace,
  parameterSpaceSchema,
} from '../core/research/grid.js';
import { METRIC_NAMES, type Objective } from '../core/research/objective.js';
import {
  type WalkForwardResult,
  type WalkForwardSettings,
  walkForwardSettingsSchema,
} from '../core/research/walk-forward.js';
import { defaultRiskRules } from '../core/risk/rules.js';
import { parseSizing, type SizingSpec } from '../core/sizing/index.js';
import { parseParamText } from '../core/strategies/describe.js';
import { getStrategy } from '../core/strategies/index.js';
import { DIRECTIONS, type StrategyDefinition } from '../core/strategies/types.js';
import { choiceFlag, dateFlag, numberFlag, type ParsedFlags, parseIsoDate, stringFlag } from './flags.js';

/** Everything a backtest run needs, resolved from the config and the flags. */
export interface BacktestJob {
  readonly series: readonly BarSeries[];
  readonly strategy: StrategyDefinition<unknown>;
  readonly params: Record<string, unknown>;
  readonly options: BacktestOptions;
  readonly criteria: StrategyConfig['criteria'];
  readonly config: StrategyConfig | undefined;
}

/** Parses `0.005/share,min=1`, `1/order`, `0.1%` (parts joined by commas add up). */
export function parseCommission(text: string): CommissionModel {
  const model = { perShare: 0, perOrder: 0, percent: 0, minimum: 0 };
  for (const part of text.split(',').map((p) => p.trim())) {
    const match = /^(min=)?(\d+(?:\.\d+)?)(\/share|\/order|%)?$/.exec(part);
    if (!match || (match[1] && match[3]) || (!match[1] && !match[3] && Number(match[2]) !== 0)) {
      throw new UsageError(`--commission ${text}: "${part}" is not <x>/share, <x>/order, <x>% or min=<x>`);
    }
    const value = Number(match[2]);
    if (match[1]) model.minimum = value;
    else if (match[3] === '/share') model.perShare = value;
    else if (match[3] === '/order') model.perOrder = value;
    else if (match[3] === '%') model.percent = value / 100;
  }
  return model;
}

/** `--param key=value`, typed by the strategy's schema; a key it does not have is named. */
function parseParam(strategy: StrategyDefinition<unknown>, text: string): [string, unknown] {
  const eq = text.indexOf('=');
  if (eq <= 0) throw new UsageError(`--param ${text}: expected key=value`);
  const key = text.slice(0, eq);
  try {
    return [key, parseParamText(strategy, key, text.slice(eq + 1))];
  } catch (error) {
    throw new UsageError(`--param ${(error as Error).message}`, { cause: error });
  }
}

/**
 * Slot range traded for --from/--to (inclusive), keeping earlier bars for warm-up. An empty range
 * names the span asked for and the data's own span, so the user sees which end to move.
 */
function slotRange(
  series: readonly BarSeries[],
  from: { time: number; what: string } | undefined,
  to: { time: number; what: string } | undefined,
) {
  const { time } = alignBars(series);
  const startIndex = from === undefined ? 0 : time.findIndex((t) => t >= from.time);
  const dayEnd = to === undefined ? Number.POSITIVE_INFINITY : to.time + 86_400_000 - 1;
  let endIndex = time.length - 1;
  while (endIndex >= 0 && (time[endIndex] as number) > dayEnd) endIndex--;
  if (startIndex < 0 || endIndex < startIndex) {
    const day = (t: number) => formatBarTime(t, false);
    const asked = [
      from === undefined ? '' : `${from.what} ${day(from.time)}`,
      to === undefined ? '' : `${to.what} ${day(to.time)}`,
    ]
      .filter(Boolean)
      .join(' and ');
    const span =
      time.length === 0
        ? 'the data has no bars'
        : `the data (${series.map((s) => s.symbol).join(', ')}) spans ${day(time[0] as number)}..${day(time[time.length - 1] as number)}`;
    throw new InsufficientDataError(`no bars between ${asked}: ${span}`);
  }
  return { startIndex, endIndex };
}

/** A `--from`/`--to` flag, else the config's `backtest.from`/`backtest.to`, with what set it. */
function dateBound(flags: ParsedFlags, name: 'from' | 'to', fromConfig: string | undefined) {
  const flag = dateFlag(flags, name);
  if (flag !== undefined) return { time: flag, what: `--${name}` };
  if (fromConfig === undefined) return undefined;
  return { time: parseIsoDate(fromConfig, `backtest.${name}`), what: `backtest.${name}` };
}

/** `--sizing`: a bad spec is a usage error (exit 2) naming the flag. */
function sizingFlag(text: string): SizingSpec {
  try {
    return parseSizing(text);
  } catch (error) {
    throw new UsageError((error as Error).message, { cause: error });
  }
}

/**
 * Builds the job from flags over a config, for bars already loaded. No I/O: the pipeline's steps
 * call it with no flags, so that they run exactly what `--config` runs on the command line.
 */
export function buildBacktestJob(
  flags: ParsedFlags,
  config: StrategyConfig | undefined,
  series: readonly BarSeries[],
): BacktestJob {
  const strategyName = stringFlag(flags, 'strategy') ?? config?.strategy?.name ?? 'ma-crossover';
  let strategy: StrategyDefinition<unknown>;
  try {
    strategy = getStrategy(strategyName);
  } catch (error) {
    throw new UsageError(`--strategy: ${(error as Error).message}`, { cause: error });
  }
  const params: Record<string, unknown> =
    config?.strategy && strategyName === config.strategy.name ? strategyParams(config) : {};
  for (const p of (flags.param as string[] | undefined) ?? []) {
    const [key, value] = parseParam(strategy, p);
    params[key] = value;
  }
  const direction = choiceFlag(flags, 'direction', DIRECTIONS) ?? config?.strategy?.direction ?? 'long-only';
  if (!strategy.directions.includes(direction)) {
    throw new UsageError(
      `--direction ${direction}: ${strategy.name} supports ${strategy.directions.join(', ')}`,
    );
  }
  const checked = strategy.params.safeParse(params);
  if (!checked.success) {
    const detail = checked.error.issues
      .map((i) => `${i.path.join('.') || 'params'}: ${i.message}`)
      .join('; ');
    throw new UsageError(`--param: ${detail}`, { cause: checked.error });
  }

  const options = { ...resolveOptions(flags, config, series), direction };
  return {
    series,
    strategy,
    params: checked.data as Record<string, unknown>,
    options,
    criteria: config?.criteria ?? criteriaSchema.parse({}),
    config,
  };
}

/**
 * The account's options from the flags over a config: sizing, costs, cash, the traded range and the
 * risk rules. Written once for a single strategy and for sleeves.
 */
export function resolveOptions(
  flags: ParsedFlags,
  config: StrategyConfig | undefined,
  series: readonly BarSeries[],
): BacktestOptions {
  const sizingText = stringFlag(flags, 'sizing');
  let sizing: SizingSpec;
  if (sizingText !== undefined) sizing = sizingFlag(sizingText);
  else if (config === undefined) sizing = { mode: 'all-in' };
  else if (config.sizing.mode === 'atr-risk')
    sizing = { mode: 'atr-risk', risk: config.sizing.risk ?? config.risk.riskPerTrade };
  else sizing = config.sizing;

  const from = dateBound(flags, 'from', config?.backtest.from);
  const to = dateBound(flags, 'to', config?.backtest.to);
  if (from !== undefined && to !== undefined && from.time > to.time)
    throw new UsageError(`${from.what} is after ${to.what}`);
  const { startIndex, endIndex } = slotRange(series, from, to);

  const riskOn = typeof flags.risk === 'boolean' ? flags.risk : config !== undefined;
  const positionFlag = numberFlag(flags, 'max-position', { min: 0.0001, max: 1 });
  const baseRisk = config?.risk ?? defaultRiskRules();
  const risk = riskOn
    ? { ...baseRisk, ...(positionFlag === undefined ? {} : { maxPositionFraction: positionFlag }) }
    : undefined;
  const commissionText = stringFlag(flags, 'commission');
  const products = config === undefined ? undefined : configProducts(config);
  const maxPosition =
    numberFlag(flags, 'max-position', { min: 0.0001, max: 1 }) ?? config?.risk.maxPositionFraction;
  return {
    initialCash: numberFlag(flags, 'cash', { min: 1 }) ?? config?.backtest.initialCash ?? 100_000,
    sizing,
    ...(maxPosition === undefined ? {} : { maxPositionFraction: maxPosition }),
    cashBuffer: numberFlag(flags, 'cash-buffer', { min: 0, max: 0.99 }) ?? config?.risk.cashBuffer ?? 0.02,
    commission:
      commissionText === undefined
        ? (config?.costs.commission ?? { perShare: 0, perOrder: 0, percent: 0, minimum: 0 })
        : parseCommission(commissionText),
    slippageBps: numberFlag(flags, 'slippage-bps', { min: 0, max: 1000 }) ?? config?.costs.slippageBps ?? 0,
    fractional: flags.fractional === true || (config?.backtest.fractional ?? false),
    ...(products === undefined ? {} : { products }),
    endOfData:
      choiceFlag(flags, 'end-of-data', ['hold', 'close'] as const) ?? config?.backtest.endOfData ?? 'hold',
    startIndex,
    endIndex,
    riskFreeRate: numberFlag(flags, 'risk-free', { min: 0, max: 0.25 }) ?? config?.backtest.riskFreeRate ?? 0,
    periodsPerYear: periodsPerYear(config?.assetClass ?? 'equity'),
    ...(risk === undefined ? {} : { risk }),
  };
}

function parseGridFlag(text: string): [string, ParameterSpace['grid'][string]] {
  const eq = text.indexOf('=');
  if (eq <= 0) throw new UsageError(`--grid ${text}: expected name=from:to:step or name=a,b,c`);
  const name = text.slice(0, eq);
  const body = text.slice(eq + 1);
  if (body.includes(':')) {
    const parts = body.split(':');
    if (parts.length !== 3)
      throw new UsageError(
        `--grid ${text}: a range is from:to:step (three numbers), got ${parts.length} parts`,
      );
    const [from, to, step] = parts.map((part, i) => {
      const value = Number(part);
      if (part.trim() === '' || !Number.isFinite(value)) {
        const role = ['from', 'to', 'step'][i];
        throw new UsageError(`--grid ${text}: ${role} "${part}" is not a number`);
      }
      return value;
    }) as [number, number, number];
    return [name, { from, to, step }];
  }
  const list = body
    .split(',')
    .map((v) => (v.trim() !== '' && Number.isFinite(Number(v)) ? Number(v) : v.trim()));
  if (list.some((v) => v === '')) throw new UsageError(`--grid ${text}: empty value in the list`);
  return [name, list];
}

/** The search: grid, constraints and objective, from the flags over the config's optimize section. */
export function resolveSearch(
  flags: ParsedFlags,
  job: BacktestJob,
): { combos: Combination[]; objective: Objective } {
  const gridFlags = (flags.grid as string[] | undefined) ?? [];
  const constraintFlags = (flags.constraint as string[] | undefined) ?? [];
  const base = job.config?.optimize;
  let space: ParameterSpace;
  if (gridFlags.length > 0) {
    const parsed = parameterSpaceSchema.safeParse({
      grid: Object.fromEntries(gridFlags.map(parseGridFlag)),
      constraints: constraintFlags.length > 0 ? constraintFlags : (base?.space?.constraints ?? []),
    });
    if (!parsed.success) {
      throw new UsageError(
        `--grid/--constraint: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
      );
    }
    space = parsed.data;
  } else if (base?.space !== undefined) {
    space = constraintFlags.length > 0 ? { ...base.space, constraints: constraintFlags } : base.space;
  } else {
    throw new UsageError('give a search grid with --grid (or a config with an optimize section)');
  }
  let combos: Combination[];
  try {
    combos = expandGrid(space);
  } catch (error) {
    throw new UsageError(`--grid: ${(error as Error).message}`, { cause: error });
  }
  if (combos.length === 0) throw new UsageError('the grid has no combination that meets the constraints');
  for (const combo of combos.slice(0, 1)) {
    const checked = job.strategy.params.safeParse({ ...job.params, ...combo });
    if (!checked.success) {
      throw new UsageError(
        `--grid: ${checked.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
      );
    }
  }
  return { combos, objective: resolveObjective(flags, job.config) };
}

/** The objective and the minimums, from the flags over the config's optimize section. */
export function resolveObjective(flags: ParsedFlags, config: StrategyConfig | undefined): Objective {
  const base = config?.optimize;
  const objectiveName = stringFlag(flags, 'objective') ?? base?.objective ?? 'sharpe';
  if (!(METRIC_NAMES as readonly string[]).includes(objectiveName)) {
    throw new UsageError(`--objective ${objectiveName}: expected one of ${METRIC_NAMES.join(', ')}`);
  }
  const minimums: Record<string, number> = { ...(base?.minimums ?? { trades: 10 }) };
  for (const text of (flags.min as string[] | undefined) ?? []) {
    const match = /^(\w+)=(-?[\d.]+)$/.exec(text);
    if (!match || !(METRIC_NAMES as readonly string[]).includes(match[1] as string)) {
      throw new UsageError(
        `--min ${text}: expected <metric>=<number> with a metric of ${METRIC_NAMES.join(', ')}`,
      );
    }
    minimums[match[1] as string] = Number(match[2]);
  }
  return { metric: objectiveName as keyof Metrics, minimums };
}

export function resolveWindows(flags: ParsedFlags, job: Pick<BacktestJob, 'config'>): WalkForwardSettings {
  const fromConfig = job.config?.walkForward ?? walkForwardSettingsSchema.parse({});
  const raw = {
    ...fromConfig,
    ...(stringFlag(flags, 'mode') === undefined ? {} : { mode: stringFlag(flags, 'mode') }),
    ...(stringFlag(flags, 'unit') === undefined ? {} : { unit: stringFlag(flags, 'unit') }),
    ...(stringFlag(flags, 'in-sample') === undefined
      ? {}
      : { inSample: numberFlag(flags, 'in-sample', { min: 1, integer: true }) }),
    ...(stringFlag(flags, 'out-of-sample') === undefined
      ? {}
      : { outOfSample: numberFlag(flags, 'out-of-sample', { min: 1, integer: true }) }),
    ...(stringFlag(flags, 'step') === undefined
      ? {}
      : { step: numberFlag(flags, 'step', { min: 1, integer: true }) }),
  };
  const parsed = walkForwardSettingsSchema.safeParse(raw);
  if (!parsed.success) {
    throw new UsageError(
      `walk-forward windows: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    );
  }
  return parsed.data;
}

/** The provenance a walk-forward document starts with (the CLI's and the pipeline's alike). */
export interface WalkForwardMeta {
  readonly engine: string;
  readonly generatedAt: string;
  readonly elapsedMs: number;
  readonly configHash: string;
  readonly gitCommit: string;
  /** The resolved strategy parameters the search starts from (each window's choice is in `windows`). */
  readonly params: Readonly<Record<string, unknown>>;
}

/** The walk-forward JSON document (`quantshift walk-forward --format json`). */
export function walkForwardDocument(
  result: WalkForwardResult,
  meta: WalkForwardMeta,
  settings: WalkForwardSettings,
  objective: Objective,
) {
  const unit = (u: WalkForwardResult['portfolio']) => ({
    symbol: u.symbol,
    outOfSample: u.outOfSample,
    efficiency: u.efficiency,
    efficiencyNote: u.efficiencyNote,
    stability: u.stability,
    multipleTesting: u.multipleTesting,
  });
  return {
    ...meta,
    settings,
    objective: objective.metric,
    minimums: objective.minimums,
    trials: result.trials,
    windows: [...result.perSymbol, result.portfolio].flatMap((u) =>
      u.windows.map((w) => ({
        symbol: w.symbol,
        index: w.index,
        inSample: w.inSample,
        outOfSample: w.outOfSample,
        params: w.params,
        objective: w.objective,
        inSampleMetrics: w.inSampleMetrics,
        outOfSampleMetrics: w.outOfSampleMetrics,
      })),
    ),
    outOfSample: result.portfolio.outOfSample,
    efficiency: result.portfolio.efficiency,
    efficiencyNote: result.portfolio.efficiencyNote,
    stability: result.portfolio.stability,
    multipleTesting: result.portfolio.multipleTesting,
    perSymbol: result.perSymbol.map(unit),
    portfolio: unit(result.portfolio),
    criteria: result.criteria,
    decision: result.decision,
  };
}

export type WalkForwardDocument = ReturnType<typeof walkForwardDocument>;
