import { sleeveRecords, unassignedQty } from '../core/live/reconcile.js';
import type { ValidationRecord } from '../core/ports/state-store.js';
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
 * Why new entries are refused today, or `null`: the kill switch and the breakers (read fresh from
 * the risk state, so a halt set after the signals were generated still stops the entries), and in
 * the live stage the validation gate; with `symbol`, also a halt of that symbol (an unknown
 * position state, see `positions.ts`) and an UNASSIGNED bucket in it (reconciliation, see
 * `reconcile.ts`). Exits, stops and reconciliation never ask this.
 */
export async function entryRefusal(
  ctx: LiveContext,
  day: string,
  symbol?: string,
  /** The sleeve of the entry (a sleeves config): its validation record is its own. */
  sleeve?: string,
): Promise<string | null> {
  const risk = await ctx.store.getRiskState();
  const blocked = risk === undefined ? null : entryBlock(risk.state, day);
  if (blocked !== null) return blocked;
  if (symbol !== undefined) {
    const positions = (await ctx.store.getLatestPositions())?.positions;
    const halted = sleeveRecords(positions ?? []).find((p) => p.symbol === symbol)?.unknownState;
    if (halted !== undefined) return `${symbol} is halted: ${halted}`;
    // Reconciliation (issue 13): shares no sleeve owns block new entries in the symbol.
    const unassigned = unassignedQty(positions, symbol);
    if (unassigned !== 0) return unassignedRefusal(symbol, unassigned);
  }
  const gated = sleeve ?? ctx.config.name;
  const record = ctx.stage === 'live' ? await ctx.store.getValidation(gated) : undefined;
  return validationRefusal(ctx.stage, gated, ctx.configHash, record);
}

/** The refusal of an entry in a symbol whose UNASSIGNED bucket is not empty: what and how to clear it. */
export function unassignedRefusal(symbol: string, qty: number): string {
  return `${symbol} has ${qty} UNASSIGNED shares (the broker and the sleeves disagree): run \`quantshift reconcile --assign <sleeve> --symbol ${symbol} --reason "..."\` or \`quantshift reconcile --flatten --symbol ${symbol} --reason "..."\``;
}
