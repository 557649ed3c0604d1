import { liveSleeveIds, type PaperValidationCriteria, type StrategyConfig } from '../core/config/schema.js';
import { sleeveHash } from '../core/config/sleeve-hash.js';
import { sleeveRecords, unassignedQty } from '../core/live/reconcile.js';
import type { PaperValidationRecord, ValidationRecord } from '../core/ports/state-store.js';
import { entryBlock, sleeveEntryBlock } from '../core/risk/breakers.js';
import type { LiveContext } from './context.js';

/** What the deployed config is, for one sleeve's gate: the file's hash and the sleeve's own. */
export interface DeployedHashes {
  /** SHA-256 of the deployed config file's text (what records written before sleeves carry). */
  readonly configHash: string;
  /** `sleeveHash(config, sleeve)` of the deployed config. */
  readonly sleeveHash: string;
}

/**
 * Why the live stage may not trade a sleeve, or `null` when it may: it needs the walk-forward
 * decision the research pipeline stored for the sleeve (`VALIDATION/<sleeve>`), a passing one,
 * made on the very sleeve the functions run: the record's `sleeveHash` (the sleeve's block plus the
 * account settings it depends on) equals the deployed config's, so editing one sleeve closes only
 * that sleeve's gate. A record written before sleeves has no `sleeveHash`: its `configHash` must
 * equal the SHA-256 of the deployed config file's text. Paper trading needs no record: paper is
 * where a sleeve earns one.
 */
export function validationRefusal(
  stage: 'paper' | 'live',
  sleeve: string,
  deployed: DeployedHashes,
  record: ValidationRecord | undefined,
): string | null {
  if (stage !== 'live') return null;
  if (record === undefined) {
    return `no validation record for sleeve "${sleeve}": run the walk-forward pipeline on this config first`;
  }
  const job = `job ${record.jobId.slice(0, 12)}`;
  if (!record.proceed) {
    return `the walk-forward of "${sleeve}" (${job}, ${record.decidedAt}) did not pass: ${record.failed.join(', ') || 'refine'}`;
  }
  if (record.sleeveHash !== undefined) {
    if (record.sleeveHash !== deployed.sleeveHash) {
      return `the passing walk-forward of "${sleeve}" (${job}) validated sleeve ${record.sleeveHash.slice(0, 12)}, not the deployed sleeve ${deployed.sleeveHash.slice(0, 12)} (its block or an account setting changed)`;
    }
    return null;
  }
  if (record.configHash !== deployed.configHash) {
    return `the passing walk-forward of "${sleeve}" (${job}) validated config ${record.configHash.slice(0, 12)}, not the deployed config ${deployed.configHash.slice(0, 12)}`;
  }
  return null;
}

/**
 * The hash a sleeve's paper validation must have been made on to open the live gate: the sleeve's
 * own (`sleeveHash`: its block plus the account settings it depends on), as the research gate asks,
 * so editing one sleeve closes only that sleeve's gates.
 */
export function paperGateHash(ctx: Pick<LiveContext, 'config'>, sleeve: string): string {
  return sleeveHash(ctx.config, sleeve);
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
 * The crypto live gate's second record (docs/crypto.md): a passing validation of the sleeve's dry
 * run (`quantshift validate-paper --config <crypto config>`) made on the same hash, over at least
 * `minSessions` UTC days, with decisions matching the shadow backtest's at `minTradesMatchedPct` or
 * better and at most `maxCriticalFailures` execution errors: checked here on the record's figures,
 * so a record made with laxer criteria (they are not in the hash) does not open the gate.
 */
export function dryRunValidationRefusal(
  stage: 'paper' | 'live',
  sleeve: string,
  hash: string,
  record: PaperValidationRecord | undefined,
  criteria: Pick<PaperValidationCriteria, 'minSessions' | 'minTradesMatchedPct' | 'maxCriticalFailures'>,
): string | null {
  if (stage !== 'live') return null;
  if (record === undefined) {
    return `no dry-run validation for sleeve "${sleeve}": run quantshift validate-paper on at least ${criteria.minSessions} days of its dry run first`;
  }
  const made = `the dry-run validation of "${sleeve}" (${record.from}..${record.to}, ${record.decidedAt})`;
  if (record.decision !== 'go') return `${made} did not pass: ${record.failed.join(', ')}`;
  if (record.configHash !== hash) {
    return `${made} validated sleeve ${record.configHash.slice(0, 12)}, not the deployed sleeve ${hash.slice(0, 12)}`;
  }
  if (record.sessions < criteria.minSessions) {
    return `${made} covers ${record.sessions} UTC days, fewer than ${criteria.minSessions}`;
  }
  const matched = record.figures.tradesMatched;
  if (matched !== undefined && matched !== null && matched < criteria.minTradesMatchedPct) {
    return `${made} matched ${matched.toFixed(1)}% of the shadow backtest's decisions, under ${criteria.minTradesMatchedPct}%`;
  }
  const failures = record.figures.executionFailures;
  if (failures === undefined || failures === null || failures > criteria.maxCriticalFailures) {
    return `${made} had ${failures ?? 'an unknown number of'} execution errors (at most ${criteria.maxCriticalFailures})`;
  }
  return null;
}

/**
 * Why new entries are refused today, or `null`: the kill switch and the breakers (read fresh from
 * the risk state, so a halt set after the signals were generated still stops the entries); with
 * `symbol`, also a halt of that symbol (an unknown position state or a split the broker has not
 * listed yet, see `positions.ts`) and an
 * UNASSIGNED bucket in it (reconciliation, see `reconcile.ts`); then, per sleeve, the sleeve's own halt (`quantshift halt --sleeve ID`) and in the live stage its
 * validation gate.
 *
 * With `sleeve`, that sleeve is asked (an id the config does not have is refused). Without it, a
 * single-strategy config's one sleeve (its `name`) is asked; a sleeves config is refused only when
 * every one of its sleeves is (a check before any entry: an entry of one sleeve passes its id).
 * Exits, stops and reconciliation never ask this.
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
    const halted = sleeveRecords(positions ?? []).find(
      (p) => p.symbol === symbol && p.unknownState !== undefined,
    )?.unknownState;
    if (halted !== undefined) return `${symbol} is halted: ${halted}`;
    // A split the broker applied and does not list yet (the risk check's guard, `positions.ts`).
    const split = (positions ?? []).find(
      (p) => p.symbol === symbol && p.unlistedSplit !== undefined,
    )?.unlistedSplit;
    if (split !== undefined) return split;
    // Reconciliation (issue 13): shares no sleeve owns block new entries in the symbol.
    const unassigned = unassignedQty(positions, symbol);
    if (unassigned !== 0) return unassignedRefusal(symbol, unassigned);
  }
  // The crypto dry run is where a sleeve earns its records: it never asks the gate, in either stage.
  const stage = ctx.stage === 'live' && ctx.crypto?.dryRun !== true ? 'live' : 'paper';
  const known = liveSleeveIds(ctx.config);
  const asked = sleeve === undefined ? known : [sleeve];
  const refusals: string[] = [];
  for (const id of asked) {
    let refusal: string | null;
    if (!known.includes(id))
      refusal = `unknown sleeve "${id}" (the config's sleeves are ${known.join(', ')})`;
    else {
      const hash = paperGateHash(ctx, id);
      // Live asks both records (read together); paper needs neither.
      const [research, paper] =
        stage === 'live'
          ? await Promise.all([ctx.store.getValidation(id), ctx.store.getPaperValidation(id)])
          : [undefined, undefined];
      refusal =
        (risk === undefined ? null : sleeveEntryBlock(risk.state, id)) ??
        sleeveGateRefusal(
          stage,
          id,
          ctx.config,
          { configHash: ctx.configHash, sleeveHash: hash },
          research,
          paper,
        );
    }
    if (refusal === null) return null;
    refusals.push(refusal);
  }
  return refusals.join('; ');
}

/**
 * A sleeve's validation gate from its two records (null: open): the research record, and the
 * paper-trading validation (docs/validation.md) or, for the crypto bot, its dry run's
 * (docs/crypto.md), each on the sleeve's own hash. Live needs both; paper needs neither.
 * `entryRefusal` and `quantshift status` both ask it.
 */
export function sleeveGateRefusal(
  stage: 'paper' | 'live',
  sleeve: string,
  config: StrategyConfig,
  /** The deployed file's hash and the sleeve's (`sleeveHash`, the paper record's too). */
  deployed: DeployedHashes,
  research: ValidationRecord | undefined,
  paper: PaperValidationRecord | undefined,
): string | null {
  const hash = deployed.sleeveHash;
  return (
    validationRefusal(stage, sleeve, deployed, research) ??
    (config.assetClass === 'crypto'
      ? dryRunValidationRefusal(stage, sleeve, hash, paper, config.validation)
      : paperValidationRefusal(stage, sleeve, hash, paper))
  );
}

/** The refusal of an entry in a symbol whose UNASSIGNED bucket is not empty: what and how to clear it. */
export function unassignedRefusal(symbol: string, qty: number): string {
  return `${symbol} has ${qty} UNASSIGNED shares (the broker and the sleeves disagree): run \`quantshift reconcile --assign <sleeve> --symbol ${symbol} --reason "..."\` or \`quantshift reconcile --flatten --symbol ${symbol} --reason "..."\``;
}
