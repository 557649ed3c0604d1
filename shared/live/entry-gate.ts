import { liveSleeveIds } from '../core/config/schema.js';
import type { PaperValidationRecord, ValidationRecord } from '../core/ports/state-store.js';
import { entryBlock } from '../core/risk/breakers.js';
import type { LiveContext } from './context.js';

/**
 * Why the live stage may not trade a strategy, or `null` when it may: it needs the walk-forward
 * decision the research pipeline stored for the strategy, a passing one, made on the very config
 * the functions run (the SHA-256 of the config file's text: start the pipeline with `configYaml`
 * set to that file). Paper trading needs no record: paper is where a strategy earns one.
 */
export function validationRefusal(
  stage: 'paper' | 'live',
  strategy: string,
  configHash: string,
  record: ValidationRecord | undefined,
): string | null {
  if (stage !== 'live') return null;
  if (record === undefined) {
    return `no validation record for strategy "${strategy}": run the walk-forward pipeline on this config first`;
  }
  if (!record.proceed) {
    return `the walk-forward of "${strategy}" (job ${record.jobId.slice(0, 12)}, ${record.decidedAt}) did not pass: ${record.failed.join(', ') || 'refine'}`;
  }
  if (record.configHash !== configHash) {
    return `the passing walk-forward of "${strategy}" (job ${record.jobId.slice(0, 12)}) validated config ${record.configHash.slice(0, 12)}, not the deployed config ${configHash.slice(0, 12)}`;
  }
  return null;
}

/**
 * The hash a sleeve's paper validation must have been made on to open the live gate: today the
 * config's (`ctx.configHash`, the SHA-256 of the config file's text). The one place to switch to a
 * per-sleeve hash.
 */
export function paperGateHash(ctx: Pick<LiveContext, 'configHash'>, _sleeve: string): string {
  return ctx.configHash;
}

/**
 * Why the live stage may not open entries for a sleeve on its paper record, or `null`: it needs a
 * passing paper validation (`quantshift validate-paper`, decision `go`) made on the same hash.
 * Paper trading needs none: paper is where a sleeve earns one.
 */
export function paperValidationRefusal(
  stage: 'paper' | 'live',
  sleeve: string,
  hash: string,
  record: PaperValidationRecord | undefined,
): string | null {
  if (stage !== 'live') return null;
  if (record === undefined) {
    return `no paper validation for sleeve "${sleeve}": run quantshift validate-paper on its paper trading first`;
  }
  if (record.decision !== 'go') {
    return `the paper validation of "${sleeve}" (${record.from}..${record.to}, ${record.decidedAt}) did not pass: ${record.failed.join(', ')}`;
  }
  if (record.configHash !== hash) {
    return `the passing paper validation of "${sleeve}" validated config ${record.configHash.slice(0, 12)}, not the deployed config ${hash.slice(0, 12)}`;
  }
  return null;
}

/**
 * Why new entries are refused today, or `null`: the kill switch and the breakers (read fresh from
 * the risk state, so a halt set after the signals were generated still stops the entries), and in
 * the live stage the validation gate; with `symbol`, also a halt of that symbol (an unknown
 * position state, see `positions.ts`). Exits, stops and reconciliation never ask this.
 */
export async function entryRefusal(
  ctx: LiveContext,
  day: string,
  symbol?: string,
  sleeve?: string,
): Promise<string | null> {
  const risk = await ctx.store.getRiskState();
  const blocked = risk === undefined ? null : entryBlock(risk.state, day);
  if (blocked !== null) return blocked;
  if (symbol !== undefined) {
    const halted = (await ctx.store.getLatestPositions())?.positions.find(
      (p) => p.symbol === symbol,
    )?.unknownState;
    if (halted !== undefined) return `${symbol} is halted: ${halted}`;
  }
  if (ctx.stage !== 'live') return null;
  const record = await ctx.store.getValidation(ctx.config.name);
  const research = validationRefusal(ctx.stage, ctx.config.name, ctx.configHash, record);
  if (research !== null) return research;
  // Both gates: the research record above and the paper validation of the sleeve (without a
  // sleeve named, of every sleeve the config runs).
  for (const id of sleeve === undefined ? liveSleeveIds(ctx.config) : [sleeve]) {
    const paper = paperValidationRefusal(
      ctx.stage,
      id,
      paperGateHash(ctx, id),
      await ctx.store.getPaperValidation(id),
    );
    if (paper !== null) return paper;
  }
  return null;
}
