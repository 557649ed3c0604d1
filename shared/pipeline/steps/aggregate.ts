import { liveSleeveIds, type StrategyConfig } from '../../core/config/schema.js';
import { sleeveHash } from '../../core/config/sleeve-hash.js';
import type { ValidationRecord } from '../../core/ports/state-store.js';
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
    /** A sleeves job's decision per sleeve (each sleeve's own criteria); none for one strategy. */
    const sleeveDecisions = new Map<string, PipelineSummary['decision']>();
    if (ctx.kind === 'sleeves') {
      const job = ctx.sleeves;
      const result = combineSleeves(job, ctx.plan, outcomes);
      const params = Object.fromEntries(job.sleeves.map((s) => [s.id, s.params]));
      const document = sleevesWalkForwardDocument(result, { ...meta, params }, ctx.windows, ctx.objective);
      await writeDocument(store, spec.jobId, document);
      html = (await sleevesResearchArtifacts(job, document)).html;
      decision = document.decision;
      for (const sleeve of document.sleeves) sleeveDecisions.set(sleeve.id, sleeve.decision);
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
    if (ports.validations !== undefined) {
      const config = parseStoredConfig(spec.config, `job ${spec.jobId} config`);
      for (const record of validationRecords(config, spec, decision, sleeveDecisions, now.toISOString()))
        await ports.validations.putValidation(record);
    }
    await writeJson(store, keys.record(spec.jobId), summary);
    return summary;
  };
}

/**
 * The validation records of a job, one per sleeve (a single-strategy config is one sleeve named
 * after it), keyed by the sleeve id and carrying its sleeve hash, so the live gate of each sleeve
 * asks its own: a sleeves job records each sleeve's own decision (its criteria), a single-strategy
 * job its one decision.
 */
export function validationRecords(
  config: StrategyConfig,
  spec: Pick<JobSpec, 'jobId' | 'configHash'>,
  decision: PipelineSummary['decision'],
  sleeveDecisions: ReadonlyMap<string, PipelineSummary['decision']>,
  decidedAt: string,
): ValidationRecord[] {
  return liveSleeveIds(config).map((sleeve) => {
    const own = sleeveDecisions.get(sleeve) ?? decision;
    return {
      strategy: sleeve,
      configHash: spec.configHash,
      sleeveHash: sleeveHash(config, sleeve),
      proceed: own.proceed,
      failed: own.failed,
      jobId: spec.jobId,
      decidedAt,
    };
  });
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
