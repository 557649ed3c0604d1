/**
 * What every step of the walk-forward pipeline shares: the job spec and the window items that
 * travel between the states, the summary, the ports, the store's keys and the JSON helpers.
 * Small on purpose: each function's bundle carries it (docs/pipeline.md).
 */
import { createHash } from 'node:crypto';
import { QuantShiftError } from '../core/errors.js';
import type { BarSeries } from '../core/market/types.js';
import type { MarketData } from '../core/ports/market-data.js';
import type { Notifier } from '../core/ports/notifier.js';
import type { ObjectStore } from '../core/ports/object-store.js';
import type { StateStore } from '../core/ports/state-store.js';
import type { GridEvaluator } from '../core/research/evaluate.js';

/** The execution input was not valid; the message lists every bad field. */
export class PipelineInputError extends QuantShiftError {
  override readonly name = 'PipelineInputError';
}

/** A pipeline step found its stored state missing or corrupt. */
export class PipelineStateError extends QuantShiftError {}

/** The validated job every later step works from. Small: the data itself lives in the store. */
export interface JobSpec {
  readonly jobId: string;
  readonly configHash: string;
  /** The config as given (JSON), revalidated by every step. */
  readonly config: Record<string, unknown>;
  readonly symbols: readonly string[];
  readonly from: string;
  readonly to: string;
  readonly gitCommit: string;
  readonly startedAt: string;
}

/** A window of the plan, as the Map states iterate them. */
export interface WindowItem {
  readonly jobId: string;
  readonly unit: number;
  readonly window: number;
}

/** What the execution returns (and what the idempotency record stores). */
export interface PipelineSummary {
  readonly jobId: string;
  readonly decision: { readonly proceed: boolean; readonly failed: readonly string[] };
  readonly documentKey: string;
  readonly reportKey: string;
  readonly outOfSample: {
    returnPct: number;
    cagrPct: number | null;
    sharpe: number | null;
    maxDrawdownPct: number;
  };
  readonly efficiency: number | null;
  readonly windows: number;
}

/**
 * What the steps reach the world through. Each step takes only the ports it uses (a `Pick` of
 * these), so a deployed function builds only those: S3 for the steps on the store, SNS for
 * notify, Secrets Manager and Alpaca for prepare, DynamoDB for aggregate.
 */
export interface PipelinePorts {
  readonly store: ObjectStore;
  /** Built lazily: only the prepare step needs market data (and its keys). */
  readonly marketData: () => Promise<MarketData>;
  readonly notifier: Notifier;
  readonly now: () => Date;
  readonly gitCommit: string;
  /** Above this many backtests (windows × grid), the distributed Map runs the windows. */
  readonly distributedThreshold: number;
  readonly evaluator?: GridEvaluator;
  /**
   * Where the walk-forward decision is recorded for the live stage's validation gate (the trading
   * state table); without it the decision stays in the job's files only.
   */
  readonly validations?: Pick<StateStore, 'putValidation'>;
}

/** The keys of the data bucket (docs/pipeline.md, Payloads). */
export const keys = {
  job: (jobId: string) => `jobs/${jobId}/job.json`,
  series: (jobId: string, symbol: string) => `jobs/${jobId}/series/${symbol}.json`,
  dataCache: (symbol: string, from: string, to: string) => `data/${symbol}/${from}_${to}_all.json`,
  items: (jobId: string) => `jobs/${jobId}/items.json`,
  choice: (item: WindowItem) => `jobs/${item.jobId}/choices/${item.unit}-${item.window}.json`,
  window: (item: WindowItem) => `jobs/${item.jobId}/windows/${item.unit}-${item.window}.json`,
  document: (jobId: string) => `jobs/${jobId}/walk-forward.json`,
  report: (jobId: string) => `jobs/${jobId}/report.html`,
  record: (jobId: string) => `records/${jobId}.json`,
};

export const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/** A stored JSON object; a missing key is a {@link PipelineStateError}. */
export async function readJson<T>(store: ObjectStore, key: string): Promise<T> {
  const text = await store.getText(key);
  if (text === undefined) throw new PipelineStateError(`missing pipeline state: ${key}`);
  return JSON.parse(text) as T;
}

export const writeJson = (store: ObjectStore, key: string, value: unknown) =>
  store.putText(key, JSON.stringify(value));

/** A {@link BarSeries} as stored: its typed arrays as JSON arrays. */
export interface SeriesJson {
  symbol: string;
  intraday: boolean;
  time: number[];
  open: number[];
  high: number[];
  low: number[];
  close: number[];
  volume: number[];
}

export const seriesToJson = (s: BarSeries): SeriesJson => ({
  symbol: s.symbol,
  intraday: s.intraday,
  time: Array.from(s.time),
  open: Array.from(s.open),
  high: Array.from(s.high),
  low: Array.from(s.low),
  close: Array.from(s.close),
  volume: Array.from(s.volume),
});

export const seriesFromJson = (s: SeriesJson): BarSeries => ({
  symbol: s.symbol,
  intraday: s.intraday,
  time: Float64Array.from(s.time),
  open: Float64Array.from(s.open),
  high: Float64Array.from(s.high),
  low: Float64Array.from(s.low),
  close: Float64Array.from(s.close),
  volume: Float64Array.from(s.volume),
});
