import { createHash } from 'node:crypto';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { type BacktestJob, buildBacktestJob } from '../cli/backtest.js';
import { resolveSearch, resolveWindows, walkForwardDocument } from '../cli/research.js';
import {
  configSchema,
  equitySymbol,
  isoDate,
  parseConfig,
  type StrategyConfig,
} from '../core/config/schema.js';
import { ConfigError, QuantShiftError } from '../core/errors.js';
import type { BarSeries } from '../core/market/types.js';
import type { MarketData } from '../core/ports/market-data.js';
import type { Notifier } from '../core/ports/notifier.js';
import type { ObjectStore } from '../core/ports/object-store.js';
import type { StateStore } from '../core/ports/state-store.js';
import { type GridEvaluator, inProcessEvaluator } from '../core/research/evaluate.js';
import {
  aggregateUnit,
  chooseWindowParams,
  decideWalkForward,
  type PlannedUnit,
  planWalkForward,
  runOutOfSample,
  type WindowChoice,
  type WindowOutcome,
  type WindowSettings,
} from '../core/research/walk-forward.js';
import { researchReportHtml } from '../report/research-artifacts.js';

/** The execution input was not valid; the message lists every bad field. */
export class PipelineInputError extends QuantShiftError {
  override readonly name = 'PipelineInputError';
}

/** A pipeline step found its stored state missing or corrupt. */
export class PipelineStateError extends QuantShiftError {}

/** What a user starts an execution with (console or `quantshift pipeline start`). */
export const pipelineInputSchema = z
  .object({
    /** The strategy config as JSON (the YAML config's structure). */
    config: z.record(z.string(), z.unknown()).optional(),
    /** Or the YAML text itself. */
    configYaml: z.string().min(1).optional(),
    /** Overrides the config's watchlist. */
    symbols: z.array(equitySymbol).min(1).optional(),
    /** Data range to fetch; defaults to the config's backtest range, or five years to yesterday. */
    from: isoDate.optional(),
    to: isoDate.optional(),
  })
  .strict()
  .refine((i) => (i.config === undefined) !== (i.configYaml === undefined), {
    message: 'give exactly one of config (JSON) or configYaml (text)',
    path: ['config'],
  });

export type PipelineInput = z.infer<typeof pipelineInputSchema>;

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

/** What the steps reach the world through. */
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

const keys = {
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

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/** Canonical JSON: object keys sorted, so equal inputs hash equally. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) =>
      a < b ? -1 : a > b ? 1 : 0,
    );
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

function parseStoredConfig(raw: Record<string, unknown>, where: string): StrategyConfig {
  return parseConfig(JSON.stringify(raw), where);
}

interface SeriesJson {
  symbol: string;
  intraday: boolean;
  time: number[];
  open: number[];
  high: number[];
  low: number[];
  close: number[];
  volume: number[];
}

const toJson = (s: BarSeries): SeriesJson => ({
  symbol: s.symbol,
  intraday: s.intraday,
  time: Array.from(s.time),
  open: Array.from(s.open),
  high: Array.from(s.high),
  low: Array.from(s.low),
  close: Array.from(s.close),
  volume: Array.from(s.volume),
});

const fromJson = (s: SeriesJson): BarSeries => ({
  symbol: s.symbol,
  intraday: s.intraday,
  time: Float64Array.from(s.time),
  open: Float64Array.from(s.open),
  high: Float64Array.from(s.high),
  low: Float64Array.from(s.low),
  close: Float64Array.from(s.close),
  volume: Float64Array.from(s.volume),
});

/** Everything a window step needs, rebuilt from the store (and kept per warm container). */
interface JobContext {
  readonly spec: JobSpec;
  readonly job: BacktestJob;
  readonly plan: PlannedUnit[];
  readonly settings: WindowSettings;
  readonly windows: ReturnType<typeof resolveWindows>;
}

/**
 * The pipeline's steps, one per Task state, over ports. Deployed handlers build the ports from
 * S3, SNS and Alpaca; the local runner from a folder, a list and the bundled data.
 */
export function createPipelineSteps(ports: PipelinePorts) {
  const evaluator = ports.evaluator ?? inProcessEvaluator;
  const contexts = new Map<string, Promise<JobContext>>();

  const readJson = async <T>(key: string): Promise<T> => {
    const text = await ports.store.getText(key);
    if (text === undefined) throw new PipelineStateError(`missing pipeline state: ${key}`);
    return JSON.parse(text) as T;
  };
  const writeJson = (key: string, value: unknown) => ports.store.putText(key, JSON.stringify(value));

  const buildContext = (spec: JobSpec, series: readonly BarSeries[]): JobContext => {
    const config = parseStoredConfig(spec.config, `job ${spec.jobId} config`);
    const job = buildBacktestJob({}, config, series);
    const { combos, objective } = resolveSearch({}, job);
    const windows = resolveWindows({}, job);
    return {
      spec,
      job,
      plan: planWalkForward(series, windows),
      windows,
      settings: {
        strategy: job.strategy.name,
        baseParams: job.params,
        combos,
        objective,
        options: job.options,
      },
    };
  };

  const context = (jobId: string): Promise<JobContext> => {
    let cached = contexts.get(jobId);
    if (cached === undefined) {
      cached = (async () => {
        const spec = await readJson<JobSpec>(keys.job(jobId));
        const series = await Promise.all(
          spec.symbols.map(async (symbol) =>
            fromJson(await readJson<SeriesJson>(keys.series(jobId, symbol))),
          ),
        );
        return buildContext(spec, series);
      })();
      contexts.set(jobId, cached);
      cached.catch(() => contexts.delete(jobId));
    }
    return cached;
  };

  const unitSeries = (ctx: JobContext, unit: PlannedUnit) =>
    ctx.job.series.filter((s) => unit.symbols.includes(s.symbol));
  const planned = (ctx: JobContext, item: WindowItem) => {
    const unit = ctx.plan[item.unit];
    const window = unit?.windows[item.window];
    if (unit === undefined || window === undefined) {
      throw new PipelineStateError(
        `window ${item.unit}-${item.window} is not in the plan of job ${item.jobId}`,
      );
    }
    return { unit, window };
  };

  return {
    /** ValidateInput: the execution input → a job spec, or a failure listing every bad field. */
    async validate(raw: unknown): Promise<JobSpec> {
      const problems: string[] = [];
      const parsed = pipelineInputSchema.safeParse(raw);
      if (!parsed.success) {
        for (const issue of parsed.error.issues)
          problems.push(`${issue.path.join('.') || '(input)'}: ${issue.message}`);
      }
      // Check the config too, even when other fields are bad, so that one failure lists every bad field.
      const given = (raw !== null && typeof raw === 'object' ? raw : {}) as Partial<PipelineInput>;
      let configRaw: Record<string, unknown> = {};
      let configHash = '';
      if (typeof given.configYaml === 'string') {
        configHash = sha256(given.configYaml);
        try {
          configRaw = (parseYaml(given.configYaml) ?? {}) as Record<string, unknown>;
        } catch (error) {
          problems.push(`configYaml: not valid YAML: ${(error as Error).message.split('\n')[0]}`);
        }
      } else if (given.config !== null && typeof given.config === 'object') {
        configRaw = given.config as Record<string, unknown>;
        configHash = sha256(canonical(configRaw));
      }
      const checked = configSchema.safeParse(configRaw);
      if (!checked.success) {
        for (const issue of checked.error.issues)
          problems.push(`config.${issue.path.join('.')}: ${issue.message}`);
      } else {
        try {
          parseStoredConfig(configRaw, 'config');
        } catch (error) {
          if (!(error instanceof ConfigError)) throw error;
          problems.push(error.message.replace(/^config: /, 'config.'));
        }
        if (checked.data.optimize === undefined)
          problems.push('config.optimize: the pipeline needs a search grid');
      }
      const dates = parsed.success ? parsed.data : {};
      if (dates.from !== undefined && dates.to !== undefined && dates.from > dates.to)
        problems.push('from: is after to');
      if (problems.length > 0 || !parsed.success || !checked.success) {
        throw new PipelineInputError(`invalid pipeline input: ${problems.join('; ')}`);
      }
      const input = parsed.data;
      const config = checked.data;
      const today = ports.now();
      const yesterday = new Date(today.getTime() - 86_400_000).toISOString().slice(0, 10);
      const to = input.to ?? config.backtest.to ?? yesterday;
      const from = input.from ?? config.backtest.from ?? `${Number(to.slice(0, 4)) - 5}${to.slice(4)}`;
      const symbols = input.symbols ?? config.watchlist;
      const jobId = sha256(canonical({ configHash, symbols, from, to, gitCommit: ports.gitCommit }));
      return {
        jobId,
        configHash,
        config: configRaw,
        symbols,
        from,
        to,
        gitCommit: ports.gitCommit,
        startedAt: today.toISOString(),
      };
    },

    /** CheckCache: a job already run returns its stored summary. */
    async checkCache(spec: JobSpec): Promise<{ job: JobSpec; cached: boolean; result?: PipelineSummary }> {
      const record = await ports.store.getText(keys.record(spec.jobId));
      if (record === undefined) return { job: spec, cached: false };
      return { job: spec, cached: true, result: JSON.parse(record) as PipelineSummary };
    },

    /**
     * PrepareData: fetch the bars into the store (from the data cache when another job already
     * fetched the same symbol and span), plan the windows, list the Map items.
     */
    async prepare(spec: JobSpec) {
      const cached = await Promise.all(
        spec.symbols.map(async (symbol) => ports.store.getText(keys.dataCache(symbol, spec.from, spec.to))),
      );
      const missing = spec.symbols.filter((_, i) => cached[i] === undefined);
      const fetched =
        missing.length === 0
          ? []
          : await (await ports.marketData()).getDailyBars({ symbols: missing, from: spec.from, to: spec.to });
      await Promise.all(
        fetched.map((s) => writeJson(keys.dataCache(s.symbol, spec.from, spec.to), toJson(s))),
      );
      const series = spec.symbols.map((symbol, i) => {
        const text = cached[i];
        if (text !== undefined) return fromJson(JSON.parse(text) as SeriesJson);
        return fetched[missing.indexOf(symbol)] as BarSeries;
      });
      await Promise.all(series.map((s) => writeJson(keys.series(spec.jobId, s.symbol), toJson(s))));
      await writeJson(keys.job(spec.jobId), spec);
      const ctx = buildContext(spec, series);
      contexts.set(spec.jobId, Promise.resolve(ctx));
      const items: WindowItem[] = ctx.plan.flatMap((unit, u) =>
        unit.windows.map((_, w) => ({ jobId: spec.jobId, unit: u, window: w })),
      );
      await writeJson(keys.items(spec.jobId), items);
      const distributed = items.length * ctx.settings.combos.length > ports.distributedThreshold;
      return {
        job: spec,
        items: distributed ? [] : items,
        itemsKey: keys.items(spec.jobId),
        itemCount: items.length,
        distributed,
      };
    },

    /** OptimizeWindow: choose the window's parameters in-sample. */
    async optimizeWindow(item: WindowItem): Promise<WindowItem & { choiceKey: string }> {
      const ctx = await context(item.jobId);
      const { unit, window } = planned(ctx, item);
      const choice = await chooseWindowParams(ctx.settings, unitSeries(ctx, unit), window, evaluator);
      const choiceKey = keys.choice(item);
      await writeJson(choiceKey, choice);
      return { jobId: item.jobId, unit: item.unit, window: item.window, choiceKey };
    },

    /** EvaluateWindow: run the chosen parameters out-of-sample. */
    async evaluateWindow(
      item: WindowItem & { choiceKey: string },
    ): Promise<WindowItem & { resultKey: string }> {
      const ctx = await context(item.jobId);
      const { unit, window } = planned(ctx, item);
      const choice = await readJson<WindowChoice>(item.choiceKey);
      const outcome = runOutOfSample(ctx.settings, unitSeries(ctx, unit), window, item.window, choice);
      const resultKey = keys.window(item);
      await writeJson(resultKey, outcome);
      return { jobId: item.jobId, unit: item.unit, window: item.window, resultKey };
    },

    /** Aggregate: stitch, decide, write the document, the report and the idempotency record. */
    async aggregate(spec: JobSpec): Promise<PipelineSummary> {
      const ctx = await context(spec.jobId);
      const trials = ctx.settings.combos.length;
      const units = await Promise.all(
        ctx.plan.map(async (unit, u) => {
          const outcomes = await Promise.all(
            unit.windows.map((_, w) =>
              readJson<WindowOutcome>(keys.window({ jobId: spec.jobId, unit: u, window: w })),
            ),
          );
          return aggregateUnit(unit, unitSeries(ctx, unit), outcomes, ctx.job.options, trials);
        }),
      );
      const result = decideWalkForward(units, trials, ctx.job.criteria);
      const now = ports.now();
      const document = walkForwardDocument(
        result,
        {
          engine: 'stepfunctions',
          generatedAt: now.toISOString(),
          elapsedMs: now.getTime() - Date.parse(spec.startedAt),
          configHash: spec.configHash,
          gitCommit: spec.gitCommit,
        },
        ctx.windows,
        ctx.settings.objective,
      );
      await ports.store.putText(
        keys.document(spec.jobId),
        `${JSON.stringify(document, null, 2)}\n`,
        'application/json',
      );
      const html = await researchReportHtml(ctx.job, document, ctx.settings.combos, ctx.settings.objective);
      await ports.store.putText(keys.report(spec.jobId), html, 'text/html');
      const m = document.outOfSample.metrics;
      const summary: PipelineSummary = {
        jobId: spec.jobId,
        decision: document.decision,
        documentKey: keys.document(spec.jobId),
        reportKey: keys.report(spec.jobId),
        outOfSample: {
          returnPct: m.returnPct,
          cagrPct: m.cagrPct,
          sharpe: m.sharpe,
          maxDrawdownPct: m.maxDrawdownPct,
        },
        efficiency: document.efficiency,
        windows: document.windows.length,
      };
      await ports.validations?.putValidation({
        strategy: parseStoredConfig(spec.config, `job ${spec.jobId} config`).name,
        configHash: spec.configHash,
        proceed: document.decision.proceed,
        failed: document.decision.failed,
        jobId: spec.jobId,
        decidedAt: now.toISOString(),
      });
      await writeJson(keys.record(spec.jobId), summary);
      return summary;
    },

    /** NotifySuccess / NotifyFailure. */
    async notify(event: {
      ok: boolean;
      summary?: PipelineSummary;
      error?: { Error?: string; Cause?: string };
    }) {
      if (event.ok && event.summary !== undefined) {
        const s = event.summary;
        const verdict = s.decision.proceed
          ? 'PROCEED to paper trading'
          : `REFINE (failed: ${s.decision.failed.join(', ')})`;
        await ports.notifier.publish({
          subject: `Walk-forward ${s.jobId.slice(0, 8)}: ${s.decision.proceed ? 'proceed' : 'refine'}`,
          severity: 'info',
          text: [
            `Decision: ${verdict}`,
            `Out-of-sample return ${s.outOfSample.returnPct.toFixed(2)}%, Sharpe ${s.outOfSample.sharpe?.toFixed(2) ?? 'n/a'}, max drawdown ${s.outOfSample.maxDrawdownPct.toFixed(2)}%`,
            `Walk-forward efficiency ${s.efficiency?.toFixed(2) ?? 'n/a'} over ${s.windows} windows`,
            `Report: ${s.reportKey}`,
          ].join('\n'),
        });
      } else {
        await ports.notifier.publish({
          subject: 'Walk-forward pipeline failed',
          severity: 'critical',
          text: `${event.error?.Error ?? 'Error'}: ${event.error?.Cause ?? 'no cause given'}`,
        });
      }
      return { published: true };
    },
  };
}

export type PipelineSteps = ReturnType<typeof createPipelineSteps>;
