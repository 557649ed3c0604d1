import type { BarSeries } from '../core/market/types.js';
import type { ObjectStore } from '../core/ports/object-store.js';
import {
  type PlannedUnit,
  planWalkForward,
  type WalkForwardSettings,
  type WindowSettings,
} from '../core/research/walk-forward.js';
import { type BacktestJob, buildBacktestJob, resolveSearch, resolveWindows } from '../research/job.js';
import {
  type JobSpec,
  keys,
  PipelineStateError,
  readJson,
  type SeriesJson,
  seriesFromJson,
  type WindowItem,
} from './common.js';
import { parseStoredConfig } from './config.js';

/** Everything a window step needs, rebuilt from the store (and kept per warm container). */
export interface JobContext {
  readonly spec: JobSpec;
  readonly job: BacktestJob;
  readonly plan: PlannedUnit[];
  readonly settings: WindowSettings;
  readonly windows: WalkForwardSettings;
}

/** The job's context from its spec and bars: the same job, search and windows as `--config` on the CLI. */
export function buildJobContext(spec: JobSpec, series: readonly BarSeries[]): JobContext {
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
}

/**
 * The job contexts a process has built, by job id: a warm container reads a job's spec and
 * bars once for all the windows it runs. The local runner shares one between its steps, so
 * that the windows reuse the context prepare built.
 */
export class JobContexts {
  private readonly contexts = new Map<string, Promise<JobContext>>();

  constructor(private readonly store: ObjectStore) {}

  /** Keeps a context just built (by prepare). */
  set(context: JobContext): void {
    this.contexts.set(context.spec.jobId, Promise.resolve(context));
  }

  /** The job's context, from the store on first use (a failed read is not kept). */
  get(jobId: string): Promise<JobContext> {
    let cached = this.contexts.get(jobId);
    if (cached === undefined) {
      cached = (async () => {
        const spec = await readJson<JobSpec>(this.store, keys.job(jobId));
        const series = await Promise.all(
          spec.symbols.map(async (symbol) =>
            seriesFromJson(await readJson<SeriesJson>(this.store, keys.series(jobId, symbol))),
          ),
        );
        return buildJobContext(spec, series);
      })();
      this.contexts.set(jobId, cached);
      cached.catch(() => this.contexts.delete(jobId));
    }
    return cached;
  }
}

/** The bars of a planned unit (one symbol, or the portfolio's). */
export const unitSeries = (ctx: JobContext, unit: PlannedUnit) =>
  ctx.job.series.filter((s) => unit.symbols.includes(s.symbol));

/** The planned unit and window of an item; an item outside the plan is a {@link PipelineStateError}. */
export function plannedWindow(ctx: JobContext, item: WindowItem) {
  const unit = ctx.plan[item.unit];
  const window = unit?.windows[item.window];
  if (unit === undefined || window === undefined) {
    throw new PipelineStateError(
      `window ${item.unit}-${item.window} is not in the plan of job ${item.jobId}`,
    );
  }
  return { unit, window };
}
