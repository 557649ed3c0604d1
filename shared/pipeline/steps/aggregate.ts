import { combineSleeves } from '../../core/research/sleeves-walk-forward.js';
import { aggregateUnit, decideWalkForward, type WindowOutcome } from '../../core/research/walk-forward.js';
import { researchReportHtml } from '../../report/research-artifacts.js';
import { sleevesResearchArtifacts } from '../../report/sleeves-input.js';
import { walkForwardDocument } from '../../research/job.js';
import { sleevesWalkForwardDocument } from '../../research/sleeves.js';
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
    const outcomes = await Promise.all(
      ctx.plan.map((unit, u) =>
        Promise.all(
          unit.windows.map((_, w) =>
            readJson<WindowOutcome>(store, keys.window({ jobId: spec.jobId, unit: u, window: w })),
          ),
        ),
      ),
    );
    const now = ports.now();
    const meta = {
      engine: 'stepfunctions',
      generatedAt: now.toISOString(),
      elapsedMs: now.getTime() - Date.parse(spec.startedAt),
      configHash: spec.configHash,
      gitCommit: spec.gitCommit,
    };
    let summary: PipelineSummary;
    let html: string;
    let decision: PipelineSummary['decision'];
    if (ctx.kind === 'sleeves') {
      const job = ctx.sleeves;
      const result = combineSleeves(job, ctx.plan, outcomes);
      const params = Object.fromEntries(job.sleeves.map((s) => [s.id, s.params]));
      const document = sleevesWalkForwardDocument(result, { ...meta, params }, ctx.windows, ctx.objective);
      await writeDocument(store, spec.jobId, document);
      html = (await sleevesResearchArtifacts(job, document)).html;
      decision = document.decision;
      summary = pipelineSummary(
        spec.jobId,
        decision,
        document.account.outOfSample.metrics,
        null,
        document.sleeves.reduce((n, s) => n + s.windows.length, 0),
      );
    } else {
      const trials = ctx.settings.combos.length;
      const units = ctx.plan.map((unit, u) =>
        aggregateUnit(unit, unitSeries(ctx, unit), outcomes[u] as WindowOutcome[], ctx.job.options, trials),
      );
      const result = decideWalkForward(units, trials, ctx.job.criteria);
      const document = walkForwardDocument(
        result,
        { ...meta, params: ctx.job.params },
        ctx.windows,
        ctx.settings.objective,
      );
      await writeDocument(store, spec.jobId, document);
      html = await researchReportHtml(ctx.job, document, ctx.settings.combos, ctx.settings.objective);
      decision = document.decision;
      summary = pipelineSummary(
        spec.jobId,
        decision,
        document.outOfSample.metrics,
        document.efficiency,
        document.windows.length,
      );
    }
    await store.putText(keys.report(spec.jobId), html, 'text/html');
    await ports.validations?.putValidation({
      strategy: parseStoredConfig(spec.config, `job ${spec.jobId} config`).name,
      configHash: spec.configHash,
      proceed: decision.proceed,
      failed: decision.failed,
      jobId: spec.jobId,
      decidedAt: now.toISOString(),
    });
    await writeJson(store, keys.record(spec.jobId), summary);
    return summary;
  };
}

/** Writes the research document as the pretty-printed JSON the local engine writes too. */
async function writeDocument(store: PipelinePorts['store'], jobId: string, document: unknown): Promise<void> {
  await store.putText(keys.document(jobId), `${JSON.stringify(document, null, 2)}\n`, 'application/json');
}

/** The summary both job kinds return and record: the decision, the keys and the out-of-sample figures. */
function pipelineSummary(
  jobId: string,
  decision: PipelineSummary['decision'],
  m: PipelineSummary['outOfSample'],
  efficiency: PipelineSummary['efficiency'],
  windows: number,
): PipelineSummary {
  return {
    jobId,
    decision,
    documentKey: keys.document(jobId),
    reportKey: keys.report(jobId),
    outOfSample: {
      returnPct: m.returnPct,
      cagrPct: m.cagrPct,
      sharpe: m.sharpe,
      maxDrawdownPct: m.maxDrawdownPct,
    },
    efficiency,
    windows,
  };
}
