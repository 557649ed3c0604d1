/**
 * A sleeves job resolved from a config (and flags over it): the sleeves, the account's options, the
 * allocation and the correlation monitor. A config with one `strategy:` block is one sleeve on the
 * whole watchlist. No I/O and no CLI code.
 */
import { decide, evaluateCriteria } from '../core/backtest/criteria.js';
import {
  runSleevesBacktest,
  type SleevesBacktestInput,
  type SleevesBacktestResult,
} from '../core/backtest/sleeves.js';
import { type SleevesBacktestDocument, toSleevesDocument } from '../core/backtest/sleeves-document.js';
import type { StrategyConfig } from '../core/config/schema.js';
import type { BarSeries } from '../core/market/types.js';
import type { SleeveConfig } from '../core/portfolio/config.js';
import { resolveSleeves } from '../core/portfolio/sleeves.js';
import type { Objective } from '../core/research/objective.js';
import type { SleevesWalkForwardResult } from '../core/research/sleeves-walk-forward.js';
import type { WalkForwardSettings } from '../core/research/walk-forward.js';
import type { ParsedFlags } from './flags.js';
import { resolveOptions } from './job.js';

/** Everything a sleeves backtest needs, resolved from a config, with the config and its criteria. */
export interface SleevesJob extends SleevesBacktestInput {
  readonly criteria: StrategyConfig['criteria'];
  readonly config: StrategyConfig;
}

/** The config's sleeves; a single `strategy:` block is one sleeve (id: the strategy's name) on the watchlist. */
export function configSleeves(config: StrategyConfig): SleeveConfig[] {
  if (config.sleeves !== undefined) return config.sleeves;
  const single = config.strategy as NonNullable<StrategyConfig['strategy']>;
  return [
    {
      id: single.name.toLowerCase().replace(/[^a-z0-9-]/g, '-'),
      strategy: single.name,
      direction: single.direction,
      params: single.params,
      symbols: config.watchlist,
      weight: 1,
      minWeight: 0,
      maxWeight: 1,
    },
  ];
}

/** Builds the sleeves job; `file` names the config in errors. */
export function buildSleevesJob(
  flags: ParsedFlags,
  config: StrategyConfig,
  series: readonly BarSeries[],
  file: string = config.name,
): SleevesJob {
  const options = resolveOptions(flags, config, series);
  const sleeves = resolveSleeves(configSleeves(config), config.watchlist, file, config.risk.riskPerTrade);
  return {
    series,
    sleeves,
    options,
    ...(config.allocation === undefined ? {} : { allocation: config.allocation }),
    ...(config.sleeveCorrelation === undefined ? {} : { correlation: config.sleeveCorrelation }),
    criteria: config.criteria,
    config,
  };
}

/** The sleeves walk-forward document (`quantshift walk-forward --format json` on a sleeves config). */
export function sleevesWalkForwardDocument(
  result: SleevesWalkForwardResult,
  meta: {
    engine: string;
    generatedAt: string;
    elapsedMs: number;
    configHash: string;
    gitCommit: string;
    params?: Readonly<Record<string, unknown>>;
  },
  settings: WalkForwardSettings,
  objective: Objective,
) {
  return {
    ...meta,
    settings,
    objective: objective.metric,
    minimums: objective.minimums,
    sleeves: result.sleeves.map((s) => ({
      id: s.id,
      strategy: s.strategy,
      trials: s.trials,
      windows: s.unit.windows,
      outOfSample: s.unit.outOfSample,
      efficiency: s.unit.efficiency,
      efficiencyNote: s.unit.efficiencyNote,
      stability: s.unit.stability,
      multipleTesting: s.unit.multipleTesting,
      criteria: s.criteria,
      decision: s.decision,
    })),
    account: {
      outOfSample: { metrics: result.account.metrics, equity: result.account.equity },
      weights: result.account.weights,
      reallocations: result.account.reallocations,
      correlationEvents: result.account.correlationEvents,
    },
    criteria: result.criteria,
    decision: result.decision,
  };
}

export type SleevesWalkForwardDocument = ReturnType<typeof sleevesWalkForwardDocument>;

/** Runs a sleeves job and builds its document (criteria per sleeve and for the account). */
export function runSleevesJob(job: SleevesJob): {
  result: SleevesBacktestResult;
  doc: SleevesBacktestDocument;
} {
  const result = runSleevesBacktest({
    series: job.series,
    sleeves: job.sleeves,
    options: job.options,
    ...(job.allocation === undefined ? {} : { allocation: job.allocation }),
    ...(job.correlation === undefined ? {} : { correlation: job.correlation }),
  });
  const criteria = evaluateCriteria(result.metrics, job.criteria);
  const doc = toSleevesDocument(result, criteria, decide(criteria), (metrics) => {
    const c = evaluateCriteria(metrics, job.criteria);
    return { criteria: c, decision: decide(c) };
  });
  return { result, doc };
}
