import { aggregateUnit, decideWalkForward, type WindowOutcome } from '../../core/research/walk-forward.js';
import { researchReportHtml } from '../../report/research-artifacts.js';
import { walkForwardDocument } from '../../research/job.js';
import {
  type JobSpec,
  keys,
  type PipelinePorts,
  type PipelineSummary,
  readJson,
  writeJson,
} from '../common.js';
import { parseStoredConfig } from '../config.js';
import { JobContexts, unitSeries } from '../context.js';

/**
 * Aggregate: stitch, decide, write the document, the report and the idempotency record, and
 * record the decision for the live stage's validation gate when there is a `validations` port.
 */
export function createAggregateStep(
  ports: Pick<PipelinePorts, 'store' | 'now' | 'validations'>,
  contexts = new JobContexts(ports.store),
) {
  const { store } = ports;
  return async function aggregate(spec: JobSpec): Promise<PipelineSummary> {
    const ctx = await contexts.get(spec.jobId);
    const trials = ctx.settings.combos.length;
    const units = await Promise.all(
      ctx.plan.map(async (unit, u) => {
        const outcomes = await Promise.all(
          unit.windows.map((_, w) =>
            readJson<WindowOutcome>(store, keys.window({ jobId: spec.jobId, unit: u, window: w })),
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
        params: ctx.job.params,
      },
      ctx.windows,
      ctx.settings.objective,
    );
    await store.putText(
      keys.document(spec.jobId),
      `${JSON.stringify(document, null, 2)}\n`,
      'application/json',
    );
    const html = await researchReportHtml(ctx.job, document, ctx.settings.combos, ctx.settings.objective);
    await store.putText(keys.report(spec.jobId), html, 'text/html');
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
    await writeJson(store, keys.record(spec.jobId), summary);
    return summary;
  };
}
