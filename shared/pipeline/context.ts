import type { BarSeries } from '../core/market/types.js';
import type { ObjectStore } from '../core/ports/object-store.js';
import type { Objective } from '../core/research/objective.js';
import { planSleeves, sleeveWindowSettings } from '../core/research/sleeves-walk-forward.js';
import {
  type PlannedUnit,
  planWalkForward,
  type WalkForwardSettings,
  type WindowSettings,
} from '../core/research/walk-forward.js';
import {
  type BacktestJob,
  buildBacktestJob,
  resolveObjective,
  resolveSearch,
  resolveWindows,
} from '../research/job.js';
import { buildSleevesJob, type SleevesJob } from '../research/sleeves.js';
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

/**
 * Everything a window step needs, rebuilt from the store (and kept per warm container). A
 * single-strategy job has `job` and `settings` (its units: each symbol and the portfolio); a sleeves
 * job has `sleeves` (its units: the sleeves). `unitSettings` is what each planned unit's windows run.
 */
export type JobContext = {
  readonly spec: JobSpec;
  readonly series: readonly BarSeries[];
  readonly plan: PlannedUnit[];
  readonly unitSettings: readonly WindowSettings[];
  readonly windows: WalkForwardSettings;
  readonly objective: Objective;
} & (
  | { readonly kind: 'single'; readonly job: BacktestJob; readonly settings: WindowSettings }
  | { readonly kind: 'sleeves'; readonly sleeves: SleevesJob }
);

/** The job's context from its spec and bars: the same job, search and windows as `--config` on the CLI. */
export function buildJobContext(spec: JobSpec, series: readonly BarSeries[]): JobContext {
  const where = `job ${spec.jobId} config`;
  const config = parseStoredConfig(spec.config, where);
  if (config.sleeves !== undefined) {
    const sleeves = buildSleevesJob({}, config, series, where);
    const objective = resolveObjective({}, config);
    const windows = resolveWindows({}, { config });
    return {
      kind: 'sleeves',
      spec,
      series,
      sleeves,
      plan: planSleeves(series, sleeves.sleeves, windows),
      unitSettings: sleeves.sleeves.map((s) => sleeveWindowSettings(s, objective, sleeves.options)),
      windows,
      objective,
    };
  }
  const job = buildBacktestJob({}, config, series);
  const { combos, objective } = resolveSearch({}, job);
  const windows = resolveWindows({}, job);
  const settings: WindowSettings = {
    strategy: job.strategy.name,
    baseParams: job.params,
    combos,
    objective,
    options: job.options,
  };
  const plan = planWalkForward(series, windows);
  return {
    kind: 'single',
    spec,
    series,
    job,
    plan,
    windows,
    objective,
    settings,
    unitSettings: plan.map(() => settings),
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
  ctx.series.filter((s) => unit.symbols.includes(s.symbol));

/** The planned unit and window of an item; an item outside the plan is a {@link PipelineStateError}. */
export function plannedWindow(ctx: JobContext, item: WindowItem) {
  const unit = ctx.plan[item.unit];
  const window = unit?.windows[item.window];
  const settings = ctx.unitSettings[item.unit];
  if (unit === undefined || window === undefined || settings === undefined) {
    throw new PipelineStateError(
      `window ${item.unit}-${item.window} is not in the plan of job ${item.jobId}`,
    );
  }
  return { unit, window, settings };
}
