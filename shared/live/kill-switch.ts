import { randomUUID } from 'node:crypto';
import * as z from 'zod';
import { BrokerRejectedError, QuantShiftError } from '../core/errors.js';
import { orderStyle } from '../core/live/order-style.js';
import {
  clientOrderId,
  newYorkTime,
  orderTagOf,
  STOP_ORDER_TYPES,
  sleeveSetTag,
} from '../core/live/orders.js';
import { isUnassigned, sleeveRecords, sleevesShare } from '../core/live/reconcile.js';
import type { BrokerOrder, BrokerPosition } from '../core/ports/broker.js';
import type { Notification } from '../core/ports/notifier.js';
import type {
  IntentRecord,
  IntentStatus,
  PositionRecord,
  PositionsList,
  SessionRecord,
  StateStore,
} from '../core/ports/state-store.js';
import {
  type BreakerEvent,
  entryBlock,
  type Halt,
  initialRiskState,
  type RiskState,
  resetDrawdown,
  setKillSwitch,
  setSleeveHalt,
} from '../core/risk/index.js';
import { botAssetClass, type LiveContext, sessionDate } from './context.js';
import { haltSymbol, positionConflict } from './positions.js';
import { isBucketOrder } from './reconcile.js';
import { trackOrders } from './risk-check.js';
import { legNetOrders, pendingExitLegs, positionRecords, sleevesDay } from './sleeves.js';
import {
  exitOrdersNow,
  flattenSequence,
  killSwitchFlattenAgain,
  UNSENT,
  WORKING_EXIT,
  workingExitQty,
} from './stops.js';
import { orderWindowClosed, placeIntentOnce, unsentStamp } from './submit.js';

/** The risk state kept changing under a halt or resume: every versioned write lost its race. */
export class RiskStateContentionError extends QuantShiftError {}

/** A halt or resume without who or why (an empty `by` or `reason`, a bad time). */
export class OperatorInputError extends QuantShiftError {}

/** Who and why, for a halt or a resume: both are recorded. */
export interface OperatorAction {
  /** Why: required and non-empty (a resume must say why trading may go on). */
  readonly reason: string;
  /** Who: an operator's name, or `alarm:<name>` for the kill-switch function. */
  readonly by: string;
  /** ISO time of the action: the flag's `since`, the audit record's and the breaker event's time. */
  readonly time: string;
  /** Extra facts for the audit record (the alarm that fired, say). JSON values only. */
  readonly details?: Readonly<Record<string, unknown>>;
}

const actionSchema = z.object({
  reason: z.string().trim().min(1, 'a reason is required'),
  by: z.string().trim().min(1, 'who acts is required'),
  time: z.iso.datetime({ offset: true }),
  details: z.record(z.string(), z.unknown()).optional(),
});

function checkAction(kind: 'halt' | 'resume' | 'drawdown-reset', input: OperatorAction): OperatorAction {
  const parsed = actionSchema.safeParse(input);
  if (!parsed.success) {
    const detail = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new OperatorInputError(`${kind}: ${detail}`, { cause: parsed.error });
  }
  return parsed.data;
}

/** What a halt or resume did to the kill switch. */
export interface KillSwitchChange {
  /** False when the flag already was as asked: nothing was written. */
  readonly changed: boolean;
  /** The kill switch (or the sleeve's halt) before the call (null: off). */
  readonly previous: Halt | null;
  /** The risk state after the call; undefined when none is stored (a resume before any run). */
  readonly state: RiskState | undefined;
  /** The risk state's version after the call (0: none stored). */
  readonly version: number;
}

const MAX_ATTEMPTS = 8;

/** What an attempt of {@link onRiskState} returns when its versioned write met another writer's. */
const CONFLICT = Symbol('risk state conflict');

/**
 * Runs `attempt` (read the risk state, decide, write it by version) again while it meets a version
 * conflict (`CONFLICT`), backing off a little longer each time; `RiskStateContentionError`, naming
 * `what`, after `MAX_ATTEMPTS`.
 */
async function onRiskState<T>(what: string, attempt: () => Promise<T | typeof CONFLICT>): Promise<T> {
  for (let n = 0; n < MAX_ATTEMPTS; n++) {
    const result = await attempt();
    if (result !== CONFLICT) return result;
    await new Promise((resolve) => setTimeout(resolve, 10 * (n + 1)));
  }
  throw new RiskStateContentionError(
    `${what}: the risk state changed under every one of ${MAX_ATTEMPTS} attempts; try again`,
  );
}

/**
 * Sets or clears the account's kill switch, or with `sleeve` that sleeve's halt, by versioned
 * conditional write of the risk state (re-read and re-applied on a conflict), with a breaker event
 * and an audit record (the sleeve in both).
 */
async function changeKillSwitch(
  store: StateStore,
  on: boolean,
  action: OperatorAction,
  seedEquity: () => Promise<number>,
  sleeve?: string,
): Promise<KillSwitchChange> {
  const time = Date.parse(action.time);
  const haltOf = (state: RiskState): Halt | null =>
    sleeve === undefined ? state.killSwitch : (state.sleeveHalts?.[sleeve] ?? null);
  const details = sleeve === undefined ? action.details : { ...action.details, sleeve };
  return onRiskState(
    `${on ? 'halt' : 'resume'}${sleeve === undefined ? '' : ` --sleeve ${sleeve}`}`,
    async () => {
      const stored = await store.getRiskState();
      if (stored === undefined && !on)
        return { changed: false, previous: null, state: undefined, version: 0 };
      const state = stored?.state ?? initialRiskState(await seedEquity());
      const update =
        sleeve === undefined
          ? setKillSwitch(state, on, time, action.by, action.reason)
          : setSleeveHalt(state, sleeve, on, time, action.by, action.reason);
      const same = sameHalt(haltOf(state), action, sleeve);
      const record = () =>
        Promise.all([
          store.appendBreakerEvents(update.events.length > 0 ? update.events : same),
          store.appendAudit({
            time: action.time,
            action: on ? 'halt' : 'resume',
            by: action.by,
            reason: action.reason,
            ...(details === undefined ? {} : { details }),
          }),
        ]);
      if (update.events.length === 0) {
        // The same halt again (a retried invocation that died after its write): its records have
        // deterministic keys, so writing them again completes them without adding anything.
        if (same.length > 0) await record();
        return { changed: false, previous: haltOf(state), state, version: stored?.version ?? 0 };
      }
      const saved = await store.putRiskState(update.state, stored?.version ?? 0);
      if ('conflict' in saved) return CONFLICT;
      await record();
      return { changed: true, previous: haltOf(state), state: update.state, version: saved.version };
    },
  );
}

/** The breaker event of a halt already stored with exactly this time, who and why (else none). */
function sameHalt(k: Halt | null, action: OperatorAction, sleeve?: string): BreakerEvent[] {
  if (k === null || k.since !== Date.parse(action.time) || k.by !== action.by || k.reason !== action.reason)
    return [];
  return [
    {
      time: k.since,
      breaker: 'kill-switch',
      action: 'trip',
      reason: k.reason,
      by: k.by,
      figures: {},
      ...(sleeve === undefined ? {} : { sleeve }),
    },
  ];
}

/**
 * Skips today's entry intents that are recorded but not yet sent (between generate-signals and
 * execute-orders), by conditional write from `recorded`: an execute-orders run that claims one
 * first sends it, and the kill switch or the next risk check cancels it at the broker.
 */
export async function skipRecordedEntries(
  store: StateStore,
  day: string,
  time: string,
  reason: string,
  only?: SleeveScope,
): Promise<string[]> {
  const skipped: string[] = [];
  const intents = await store.listIntents(day);
  // A sleeve's leg already netted goes with its net order (which is the one refused or cancelled),
  // also one a net intent names before the leg's own mark was written (a run failed in between).
  const netted = legNetOrders(intents);
  for (const intent of intents) {
    if (
      intent.purpose !== 'entry' ||
      intent.status !== 'recorded' ||
      intent.netOrderId !== undefined ||
      netted.has(intent.clientOrderId)
    )
      continue;
    if (only !== undefined && (intent.sleeve ?? only.unlabelled) !== only.sleeve) continue;
    // With a token: a skip whose answer was lost after it committed is still known as ours.
    const result = await store.settleIntent(
      day,
      intent.clientOrderId,
      ['recorded'],
      { status: 'skipped', reason: `kill switch: ${reason}`, updatedAt: time },
      randomUUID(),
    );
    if (!('conflict' in result)) skipped.push(intent.clientOrderId);
  }
  return skipped;
}

/**
 * One sleeve, for a halt or resume of that sleeve: its id, and the sleeve an intent without a
 * `sleeve` (schema 1, written by the single-strategy code) belongs to: a single-strategy config's
 * name (its one sleeve), none for a sleeves config.
 */
export interface SleeveScope {
  readonly sleeve: string;
  readonly unlabelled: string | undefined;
}

/** What a halt did: the flag, and the entry intents it kept from being sent. */
export interface HaltResult extends KillSwitchChange {
  readonly entriesSkipped: readonly string[];
}

/**
 * Sets the kill switch (who and why), with the versioned conditional write of the risk state
 * (re-read and re-applied on a version conflict), a breaker event and an audit record, and skips
 * today's recorded entry intents. New entries are blocked from the next invocation of every step;
 * exits, stops and reconciliation go on. Already halted: nothing changes.
 *
 * With no risk state stored yet (a halt before the first run), the state starts from
 * `seedEquity` (the kill-switch function passes the broker's last equity; the CLI, which has no
 * broker, 0, so the first observed day's daily loss is not measured).
 */
export async function haltTrading(
  store: StateStore,
  input: OperatorAction & {
    readonly seedEquity?: () => Promise<number>;
    /** The session date of `time` (the crypto bot's is the UTC day); default: New York's date. */
    readonly day?: string;
  },
): Promise<HaltResult> {
  const action = checkAction('halt', input);
  const change = await changeKillSwitch(store, true, action, input.seedEquity ?? (async () => 0));
  const day = input.day ?? newYorkTime(action.time).date;
  const entriesSkipped = await skipRecordedEntries(store, day, action.time, action.reason);
  return { ...change, entriesSkipped };
}

/**
 * Halts one sleeve (`quantshift halt --sleeve ID`): its new entries are blocked from the next
 * invocation of every step (`entryRefusal` with the sleeve), and today's recorded entry intents
 * of that sleeve are skipped; the other sleeves keep trading, and the sleeve's exits and stops go
 * on. Stored in the risk state item (`sleeveHalts`, same versioned write as the kill switch), with
 * a breaker event and an audit record naming the sleeve. Already halted: nothing changes.
 */
export async function haltSleeve(
  store: StateStore,
  scope: SleeveScope,
  input: OperatorAction & {
    readonly seedEquity?: () => Promise<number>;
    /** The session date of `time` (the crypto bot's is the UTC day); default: New York's date. */
    readonly day?: string;
  },
): Promise<HaltResult> {
  const action = checkAction('halt', input);
  const change = await changeKillSwitch(
    store,
    true,
    action,
    input.seedEquity ?? (async () => 0),
    scope.sleeve,
  );
  const day = input.day ?? newYorkTime(action.time).date;
  const reason = `sleeve ${scope.sleeve} halted: ${action.reason}`;
  const entriesSkipped = await skipRecordedEntries(store, day, action.time, reason, scope);
  return { ...change, entriesSkipped };
}

/**
 * Resumes one sleeve, recording who and why (a reason is required). `stillBlocked` names what
 * still blocks the account's entries (the kill switch, a breaker), if anything.
 */
export async function resumeSleeve(
  store: StateStore,
  scope: SleeveScope,
  input: OperatorAction & { readonly day?: string },
): Promise<ResumeResult> {
  const action = checkAction('resume', input);
  const change = await changeKillSwitch(store, false, action, async () => 0, scope.sleeve);
  const day = input.day ?? newYorkTime(action.time).date;
  return { ...change, stillBlocked: change.state === undefined ? null : entryBlock(change.state, day) };
}

/** What a resume did, and what still blocks entries today (a breaker, say), if anything. */
export interface ResumeResult extends KillSwitchChange {
  readonly stillBlocked: string | null;
}

/**
 * Clears the kill switch, recording who and why (a reason is required). A resume does not reset
 * the drawdown breaker or a daily-loss trip: `stillBlocked` names what still blocks entries. Not
 * halted: nothing changes. Entries skipped by the halt stay skipped; the next signal run decides.
 */
export async function resumeTrading(
  store: StateStore,
  input: OperatorAction & { readonly day?: string },
): Promise<ResumeResult> {
  const action = checkAction('resume', input);
  const change = await changeKillSwitch(store, false, action, async () => 0);
  const day = input.day ?? newYorkTime(action.time).date;
  return { ...change, stillBlocked: change.state === undefined ? null : entryBlock(change.state, day) };
}

/**
 * The alert of an operator's halt or resume (the account's, or with `sleeve` one sleeve's), as
 * `quantshift halt` / `resume` publish it to the alert topic: critical for a halt, info for a
 * resume. Null when nothing changed (a repeated command alerts once).
 */
export function operatorAlert(
  kind: 'halt' | 'resume',
  action: OperatorAction,
  result: KillSwitchChange & {
    readonly entriesSkipped?: readonly string[];
    readonly stillBlocked?: string | null;
  },
  sleeve?: string,
): Notification | null {
  if (!result.changed) return null;
  const what = sleeve === undefined ? 'trading' : `sleeve ${sleeve}`;
  const halt = kind === 'halt';
  return {
    subject: `${halt ? 'Halted' : 'Resumed'}: ${what} (${action.by})`,
    severity: halt ? 'critical' : 'info',
    kind: 'alert',
    text: [
      `Reason: ${action.reason}`,
      halt
        ? `New entries${sleeve === undefined ? '' : ` of sleeve ${sleeve}`} are blocked until \`quantshift resume${sleeve === undefined ? '' : ` --sleeve ${sleeve}`} --reason "..."\`; exits, stops and reconciliation go on${sleeve === undefined ? '' : '; the other sleeves keep trading'}.`
        : `New entries${sleeve === undefined ? '' : ` of sleeve ${sleeve}`} are allowed again${result.stillBlocked ? `, but still blocked: ${result.stillBlocked}` : ''}.`,
      ...(result.entriesSkipped !== undefined && result.entriesSkipped.length > 0
        ? [`Entry intents not sent: ${result.entriesSkipped.join(', ')}.`]
        : []),
    ].join('\n'),
    fields: [
      { label: 'By', value: action.by },
      { label: 'Scope', value: sleeve === undefined ? 'account' : `sleeve ${sleeve}` },
    ],
  };
}

/** What a drawdown reset did. */
export interface DrawdownResetResult {
  /** False when the drawdown breaker was not holding: nothing was written. */
  readonly changed: boolean;
  /** The trip that was cleared (null when none held). */
  readonly previous: RiskState['drawdownHalt'];
  /** The high-water mark before and after (the last observed equity becomes the new mark). */
  readonly highWaterMark: { readonly before: number; readonly after: number } | null;
  /** What still blocks entries after the reset (the kill switch, a daily-loss trip), or null. */
  readonly stillBlocked: string | null;
}

/**
 * The explicit, recorded reset of the drawdown breaker, which only an operator clears: the high-water
 * mark becomes the last observed equity (the risk check's or end of day's), the trip is cleared, and
 * a breaker event and an audit record say who and why. Not holding: nothing changes.
 */
export async function resetDrawdownHalt(
  store: StateStore,
  input: OperatorAction & { readonly day?: string },
): Promise<DrawdownResetResult> {
  const action = checkAction('drawdown-reset', input);
  const time = Date.parse(action.time);
  const day = input.day ?? newYorkTime(action.time).date;
  return onRiskState('drawdown reset', async () => {
    const stored = await store.getRiskState();
    if (stored === undefined || stored.state.drawdownHalt === null) {
      return {
        changed: false,
        previous: null,
        highWaterMark: null,
        stillBlocked: stored === undefined ? null : entryBlock(stored.state, day),
      };
    }
    const { state } = stored;
    const update = resetDrawdown(state, time, state.lastEquity, action.by, action.reason);
    const saved = await store.putRiskState(update.state, stored.version);
    if ('conflict' in saved) return CONFLICT;
    await Promise.all([
      store.appendBreakerEvents(update.events),
      store.appendAudit({
        time: action.time,
        action: 'drawdown-reset',
        by: action.by,
        reason: action.reason,
        details: {
          ...action.details,
          trippedOn: state.drawdownHalt?.day ?? null,
          previousHighWaterMark: state.highWaterMark,
          newHighWaterMark: update.state.highWaterMark,
        },
      }),
    ]);
    return {
      changed: true,
      previous: state.drawdownHalt,
      highWaterMark: { before: state.highWaterMark, after: update.state.highWaterMark },
      stillBlocked: entryBlock(update.state, day),
    };
  });
}

/** What the kill-switch function did. */
export interface KillSwitchResult {
  /** The session date of the action (New York's for equities, the UTC day for crypto). */
  readonly day: string;
  /** True when this call set the flag; false when it was already set. */
  readonly halted: boolean;
  /** Who set the flag in force and why (this call's or an earlier one's). */
  readonly killSwitch: RiskState['killSwitch'];
  /** Today's entry intents that were recorded and are now skipped, never sent. */
  readonly entriesSkipped: readonly string[];
  /** Client order ids of the open entry orders cancelled at the broker. */
  readonly entriesCancelled: readonly string[];
  /**
   * Entry intents the kill switch could not settle (claimed, not at the broker, and changed by
   * another writer meanwhile): the next risk check and the per-entry check of execute-orders stop them.
   */
  readonly entriesPending: readonly string[];
  /** Broker order ids of the resting stops cancelled before flattening (flatten only). */
  readonly stopsCancelled: readonly string[];
  /** Client order ids of the market exits that flatten the positions (flatten only). */
  readonly exits: readonly string[];
  /**
   * Symbols left alone by the flatten because exits for all their shares are already on their way
   * (open at the broker, or recorded and still to be sent before their cutoff).
   */
  readonly exitsAlreadyOpen: readonly string[];
  /**
   * Client order ids of today's flattens the broker refused, or ended without selling every share
   * (this call's, or an earlier one's found so): not on their way. The next risk check sends them
   * again while the kill switch is on.
   */
  readonly exitsUnfilled: readonly string[];
  /**
   * Client order ids of today's flattens spent without selling every share with nothing of their
   * series working and none to be sent again (a last re-send that filled short; an expiry or cancel
   * with no broker order id, possibly filled): not on their way; alerted "Exit not sent".
   */
  readonly flattenSpent: readonly string[];
  /**
   * Client order ids of today's flattens an earlier run recorded and did not get to the broker, for
   * more shares than are held now (some sold since): not sent (they would sell too many); the next
   * risk check supersedes them past the senders' lease and flattens what is left under the next
   * number. Said in the kill switch's alert.
   */
  readonly flattenStale: readonly string[];
  /** Symbols left alone by the flatten because the broker's position contradicts the ledger (alerted). */
  readonly unknownState: readonly string[];
}

const DONE = new Set(['filled', 'canceled', 'expired', 'rejected', 'replaced', 'done_for_day']);
const SENT_OR_UNKNOWN: readonly IntentStatus[] = ['submitted', 'accepted', 'partially_filled', 'unknown'];

/** Whether a client order id is an entry of this stage and strategy (`qs-<tag>-<SYM>-<date>-entry[-n]`). */
function entryOrderMatcher(stage: string, strategy: string): (id: string) => boolean {
  const sample = clientOrderId({ stage, strategy, symbol: 'X', date: '2000-01-01', purpose: 'entry' });
  const tag = sample.split('-')[1] as string;
  const pattern = new RegExp(`^qs-${tag}-[A-Z.]+-\\d{8}-entry(-\\d+)?$`);
  return (id) => pattern.test(id);
}

/** Cancels a working order; false when it finished (filled, cancelled) before the cancel arrived. */
async function cancel(ctx: LiveContext, order: BrokerOrder): Promise<boolean> {
  try {
    await ctx.broker.cancelOrder(order.id);
    return true;
  } catch (error) {
    if (!(error instanceof BrokerRejectedError)) throw error;
    ctx.log.warn('order finished before it could be cancelled', {
      orderId: order.id,
      clientOrderId: order.clientOrderId,
      error: error.message,
    });
    return false;
  }
}

/**
 * The kill switch, as the loss and drawdown alarms invoke it: sets the halt flag (who and why,
 * audited), skips today's entry intents not yet sent, cancels open entry orders at the broker
 * (today's entry intents and this strategy's entry client order ids; protective stops are never
 * touched), and when `flatten` is true sells every watchlist position at market after cancelling
 * its resting stops (so the shares are not sold twice), through the intent path with the day's
 * deterministic `flatten` client order id: exactly once per symbol and day (a sleeves config: one
 * per sleeve, each of its own shares as booked up to now, less its exit legs still to be sent:
 * {@link sleevesNow}, {@link pendingExitLegs}, {@link cappedSleeveOwners}). Then it reports
 * (critical). Invoked again, it changes nothing: the flag is set, the entries are gone and the
 * exit's client order id is taken.
 */
export async function killSwitch(
  ctx: LiveContext,
  input: OperatorAction & { readonly flatten: boolean },
): Promise<KillSwitchResult> {
  const { config } = ctx;
  const { time, reason } = input;
  // The session's date: the crypto bot's sessions are UTC days (its order window is 00:00-01:00 UTC,
  // still the previous day in New York).
  const day = sessionDate(ctx, checkAction('halt', input).time);
  const halt = await haltTrading(ctx.store, {
    ...input,
    day,
    seedEquity: async () => (await ctx.broker.getAccount()).lastEquity,
  });

  // Open entry orders: today's entry intents, and anything carrying this strategy's entry id format.
  const intents = await ctx.store.listIntents(day);
  const entryIntents = new Map<string, IntentRecord>(
    intents.filter((i) => i.purpose === 'entry').map((i) => [i.clientOrderId, i]),
  );
  const isEntryId = entryOrderMatcher(ctx.stage, config.name);
  // Every symbol: an entry in a symbol since dropped from the watchlist is still this strategy's.
  const open = await ctx.broker.listOrders({ status: 'open' });
  const entriesCancelled: string[] = [];
  for (const order of open) {
    if (STOP_ORDER_TYPES.has(order.type) || DONE.has(order.status)) continue;
    if (!entryIntents.has(order.clientOrderId) && !isEntryId(order.clientOrderId)) continue;
    if (await cancel(ctx, order)) entriesCancelled.push(order.clientOrderId);
  }
  const entriesPending: string[] = [];
  for (const intent of entryIntents.values()) {
    if (!SENT_OR_UNKNOWN.includes(intent.status) || entriesCancelled.includes(intent.clientOrderId)) continue;
    const order = await ctx.broker.getOrderByClientOrderId(intent.clientOrderId);
    if (order !== null) {
      if (!DONE.has(order.status) && (await cancel(ctx, order))) entriesCancelled.push(intent.clientOrderId);
      continue;
    }
    // Claimed but not at the broker (yet): cancelled at once in the store, so it is never sent; an
    // execute-orders run whose order is already on its way loses its settling write and cancels it.
    // With a token: a cancel whose answer was lost after it committed is still known as ours.
    const cancelled = await ctx.store.settleIntent(
      day,
      intent.clientOrderId,
      ['submitted', 'unknown'],
      { status: 'cancelled', reason: `kill switch: ${reason} (claimed, not sent)`, updatedAt: time },
      randomUUID(),
    );
    if (!('conflict' in cancelled)) {
      entriesCancelled.push(intent.clientOrderId);
      continue;
    }
    // It reached the broker meanwhile: cancel it there.
    const arrived = await ctx.broker.getOrderByClientOrderId(intent.clientOrderId);
    if (arrived !== null && !DONE.has(arrived.status) && (await cancel(ctx, arrived)))
      entriesCancelled.push(intent.clientOrderId);
    else if (arrived === null) entriesPending.push(intent.clientOrderId);
  }

  const stopsCancelled: string[] = [];
  const exits: string[] = [];
  const exitsAlreadyOpen: string[] = [];
  const exitsUnfilled: string[] = [];
  const flattenSpent: string[] = [];
  const flattenStale: string[] = [];
  const unknownState: string[] = [];
  const flatten = input.flatten;
  // The halt this flatten belongs to: its intents are stamped with its `since`, and a risk check
  // sends one that ended unfilled again only while this very halt is on.
  const since = halt.state?.killSwitch?.since;
  // The halt records that it flattened (`flatten: true`, also on a plain halt found on), before any
  // flatten is sent: while it holds, each risk check sends a flatten of the shares no exit on its
  // way covers (a flatten the broker ended unfilled on an earlier day, an exit refused at the open).
  const killSwitchNow =
    flatten && since !== undefined
      ? await markHaltFlattening(ctx.store, since)
      : (halt.state?.killSwitch ?? null);
  if (flatten && since !== undefined) {
    // The UNASSIGNED bucket's flattens (`quantshift reconcile --flatten`) sell the bucket's shares,
    // never a sleeve's: they are no exit of what is flattened here.
    const notBucket = (id: string) => !isBucketOrder(ctx.stage, id);
    const listed = await ctx.store.listIntents(day);
    // The open orders, and today's exits the broker no longer lists as open as it has them now (one
    // that ended unfilled while the store still says sent or accepted sells nothing), read before
    // the positions (`exitOrdersNow`).
    const working = await exitOrdersNow(
      ctx,
      (await ctx.broker.listOrders({ status: 'open', symbols: config.watchlist })).filter((o) =>
        notBucket(o.clientOrderId),
      ),
      listed.filter((i) => config.watchlist.includes(i.symbol) && notBucket(i.clientOrderId)),
    );
    const positions = (await ctx.broker.getPositions()).filter(
      (p) => p.assetClass === botAssetClass(ctx) && config.watchlist.includes(p.symbol) && p.qty !== 0,
    );
    const stored = await ctx.store.getLatestPositions();
    const session = await ctx.store.getSession(day);
    // A sleeves config: sized from the sleeves' day booked up to now (the day's stop and net fills
    // no risk check may have booked yet), on today's orders tracked to their broker state.
    const { intents: todays, records } =
      config.sleeves === undefined
        ? { intents: listed, records: stored?.positions ?? [] }
        : await sleevesNow(ctx, day, time, session, stored, listed);
    const maySend = (i: IntentRecord) => !orderWindowClosed(ctx, i, session, time);
    for (const read of positions) {
      let position = read;
      const record = sleeveRecords(records).find((p) => p.symbol === position.symbol);
      const conflict = positionConflict(ctx, position, record);
      if (conflict !== null) {
        // Never flatten what may not exist: a wrong short would be "flattened" by buying.
        await haltSymbol(ctx, position, record, conflict);
        unknownState.push(position.symbol);
        continue;
      }
      const exitSide = position.qty > 0 ? 'sell' : 'buy';
      const mine = working.filter(
        (o) => o.symbol === position.symbol && o.side === exitSide && !DONE.has(o.status),
      );
      const refused: BrokerOrder[] = [];
      for (const order of mine.filter((o) => STOP_ORDER_TYPES.has(o.type))) {
        if (await cancel(ctx, order)) stopsCancelled.push(order.id);
        else refused.push(order);
      }
      // A stop whose cancel the broker refused (it filled or triggered after the orders were read)
      // may have sold shares since the positions were read: the flatten never sells them again.
      let stopsSelling = 0;
      if (refused.length > 0) {
        const again = await stopRefusedCancel(ctx, position, refused);
        if (again === null) continue;
        position = again.position;
        stopsSelling = again.selling;
      }
      // Exits already on their way at the broker (a market-on-open exit, this flatten from an earlier call).
      const exiting = mine.filter((o) => !STOP_ORDER_TYPES.has(o.type));
      const flattenId = (sleeve: string) =>
        clientOrderId({
          stage: ctx.stage,
          strategy: sleeve,
          symbol: position.symbol,
          date: day,
          purpose: 'flatten',
        });
      // A sleeves config: each sleeve's shares go in that sleeve's own flatten order (tagged with
      // the sleeve), so end-of-day books each fill to its sleeve; a single-strategy config's one
      // sleeve is the config itself.
      const legs = pendingExitLegs(todays, position.symbol, exitSide, maySend, working);
      const owners =
        config.sleeves === undefined
          ? [
              {
                sleeve: config.name,
                // The UNASSIGNED bucket's shares are left to the operator (`quantshift reconcile --flatten`).
                // Only what the exits that may still sell these shares leave is sold, by the risk
                // check's rule: their open orders, and today's exit intents not at the broker yet that
                // may still be sent (a recorded market-on-open exit before 09:28 goes out at the open).
                qty:
                  Math.abs(sleevesShare(position.qty, stored?.positions, position.symbol)) -
                  workingExitQty(position.symbol, exitSide, todays, working, {
                    ownId: flattenId(config.name),
                    maySend,
                  }) -
                  stopsSelling,
              },
            ]
          : await cappedSleeveOwners(
              ctx,
              position,
              records,
              exiting,
              // Each sleeve's exit legs still to be sent keep their shares (recorded and not netted
              // yet, or netted in a net exit not at the broker yet): execute-orders nets and sends
              // them (a market-on-open exit before 09:28); the flatten sells the rest.
              new Map([...legs.bySleeve].map(([sleeve, l]) => [sleeve, l.qty])),
              // As the single-strategy path: the sleeves' flattens together sell no more than the
              // broker holds, less the bucket's shares and the exits on their way (these
              // flattens themselves, recorded and not at the broker yet, are the ones sent here;
              // the net exits not at the broker yet count as their sleeves' legs instead).
              (sleeve) => flattenId(sleeve),
              (ownIds) =>
                workingExitQty(
                  position.symbol,
                  exitSide,
                  todays.filter((i) => !ownIds.has(i.clientOrderId) && !legs.nets.has(i.clientOrderId)),
                  working,
                  { ownId: flattenId(config.name), maySend },
                ) + stopsSelling,
            );
      for (const owner of owners) {
        const id = flattenId(owner.sleeve);
        // The legs this flatten leaves their shares to: netted and sent, never taken over by it.
        const left = legs.bySleeve.get(owner.sleeve)?.ids ?? [];
        if (exiting.some((o) => o.clientOrderId === id) || owner.qty <= 0) {
          // An exit holding the day's flatten id still works (a crossed stop's market exit, an
          // earlier flatten), or a re-send of it (`<id>-2`, an earlier halt's, working or recorded
          // and not sent): marked as this halt's flatten, so it is sent (again) under this halt.
          for (const member of workingMembers(id, todays, working))
            await markFlatten(ctx, member, since, time);
          if (!exitsAlreadyOpen.includes(position.symbol)) exitsAlreadyOpen.push(position.symbol);
          continue;
        }
        // The day's flatten recorded by an earlier run and not at the broker, for MORE than is held
        // now (shares sold since: by hand, a stop): sent as stored it would sell too many (a
        // short), and it may not be changed under its id. Nothing is sent: the next risk check
        // supersedes it past the senders' lease and sends what is left under the next number
        // (`supersedeStaleResend`). Listed and said in the kill switch's alert.
        const earlier = await ctx.store.getIntent(day, id);
        if (
          earlier !== undefined &&
          UNSENT.includes(earlier.status) &&
          earlier.qty > owner.qty &&
          (await ctx.broker.getOrderByClientOrderId(id)) === null
        ) {
          ctx.log.warn(
            "kill switch: the day's flatten recorded for more than is held and not at the broker: not sent, the next risk check supersedes it",
            { clientOrderId: id, status: earlier.status, qty: earlier.qty, held: owner.qty },
          );
          flattenStale.push(id);
          continue;
        }
        const placed = await placeIntentOnce(
          ctx,
          {
            clientOrderId: id,
            sleeve: owner.sleeve,
            date: day,
            strategy: config.name,
            symbol: position.symbol,
            purpose: 'exit',
            side: exitSide,
            qty: owner.qty,
            ...(left.length > 0 ? { leftLegIds: left } : {}),
            killSwitchFlatten: since,
            ...orderStyle(config).immediate,
            referencePrice: position.currentPrice,
            status: 'recorded',
            filledQty: 0,
            reason: `kill switch: ${reason}`,
            configHash: ctx.configHash,
            gitCommit: ctx.gitCommit,
            createdAt: time,
            updatedAt: time,
          },
          time,
        );
        if (
          placed.status === 'accepted' ||
          placed.status === 'filled' ||
          placed.status === 'partially_filled'
        ) {
          // Another run's exit under this id (a crossed stop's): this halt's flatten from now on.
          await markFlatten(ctx, placed, since, time);
          exits.push(id);
        } else if (await spentUnsold(ctx, placed, todays, time, since)) exitsUnfilled.push(id);
        else if (!UNSENT.includes(placed.status) && workingMembers(id, todays, working).length === 0) {
          // Spent, nothing of it working, and not to be sent again: no exit of these shares is on
          // its way; said, as the risk check says a spent exit id ("Exit not sent"). The next risk
          // check flattens what the broker still holds (`killSwitchFlattenDue`, this halt marked).
          flattenSpent.push(id);
          const of = config.sleeves === undefined ? position.symbol : `${position.symbol} (${owner.sleeve})`;
          await ctx.notifier.publish({
            subject: `Exit not sent: ${of}`,
            severity: 'critical',
            text: `${owner.qty} of ${of} are to be flattened by the kill switch, but today's flatten ${id} is ${placed.status}${placed.reason === undefined ? '' : ` (${placed.reason})`} and no re-send of it works or is to be sent (the last filled, or ended with no broker order id: it may have filled): no exit of them is on its way now. While this kill switch is on, the next risk check sends a flatten of the shares the broker still holds under the next number; close the position by hand if it must go sooner.`,
          });
        } else {
          // On its way: a re-send of an earlier halt's still working is this halt's from now on.
          for (const member of workingMembers(id, todays, working))
            await markFlatten(ctx, member, since, time);
          if (!exitsAlreadyOpen.includes(position.symbol)) exitsAlreadyOpen.push(position.symbol);
        }
      }
    }
  }

  const result: KillSwitchResult = {
    day,
    halted: halt.changed,
    killSwitch: killSwitchNow,
    entriesSkipped: halt.entriesSkipped,
    entriesCancelled,
    entriesPending,
    stopsCancelled,
    exits,
    exitsAlreadyOpen,
    exitsUnfilled,
    flattenSpent,
    flattenStale,
    unknownState,
  };
  ctx.log.info('kill switch', { ...result });
  await ctx.notifier.publish({
    subject: halt.changed
      ? `Kill switch: trading halted (${input.by})`
      : `Kill switch: already halted (${input.by})`,
    severity: 'critical',
    kind: 'alert',
    text: killSwitchText(result, input.reason, flatten),
    fields: [
      { label: 'Strategy', value: config.name },
      { label: 'By', value: input.by },
      { label: 'Flatten', value: flatten ? 'yes' : 'no' },
    ],
    figures: [
      { label: 'Entries cancelled', value: entriesCancelled.length, unit: 'count' },
      { label: 'Exits sent', value: exits.length, unit: 'count' },
    ],
    nextSteps: [
      'Find out why the alarm fired (the dashboard, the daily report, `npx quantshift status`)',
      'Once it is understood: `npx quantshift resume --reason "..."` (a resume is recorded with who and why)',
    ],
  });
  return result;
}

/**
 * The kill switch could not cancel some of a position's resting stops (`refused`: the broker
 * answered that the order is done, or refused for any other reason): a stop that filled after the
 * positions were read sold shares the flatten would otherwise sell again (a short). What each
 * refused stop can still sell, as the broker has it now (its unfilled shares while it works;
 * unknown to the broker: all its unfilled shares), counts as on its way; then the position is read
 * again (every fill of the stop up to its lookup is in it). Warned in the log. Null when the broker no longer holds
 * the position on the same side (the stop sold it all): nothing to flatten.
 */
async function stopRefusedCancel(
  ctx: LiveContext,
  read: BrokerPosition,
  refused: readonly BrokerOrder[],
): Promise<{ position: BrokerPosition; selling: number } | null> {
  // The stops first, then the position: a fill landing between the two is in the position read
  // and may still count as on its way (an undersale, never a second sale); read the other way
  // round, a stop that filled after the position was read would be counted by neither (a short).
  let selling = 0;
  for (const stop of refused) {
    const order = await ctx.broker.getOrderByClientOrderId(stop.clientOrderId);
    const now = order ?? stop;
    if (!DONE.has(now.status)) selling += Math.max(0, now.qty - now.filledQty);
  }
  const position = (await ctx.broker.getPositions()).find((p) => p.symbol === read.symbol);
  ctx.log.warn(
    "kill switch: a resting stop's cancel was refused: the position read again before the flatten",
    {
      symbol: read.symbol,
      stops: refused.map((o) => o.clientOrderId),
      qtyRead: read.qty,
      qtyNow: position?.qty ?? 0,
      stopsStillSelling: selling,
    },
  );
  if (position === undefined || Math.sign(position.qty) !== Math.sign(read.qty)) return null;
  return { position, selling };
}

/**
 * Records on the kill switch `since` that the kill-switch function flattened under it
 * (`flatten: true`), by versioned conditional write of the risk state (re-read on a conflict): while
 * it holds, each risk check sends a flatten of the shares no exit on its way covers
 * (`killSwitchFlattenDue`). A halt resumed or replaced meanwhile is left as it is. The kill switch
 * as stored afterwards.
 */
async function markHaltFlattening(store: StateStore, since: number): Promise<Halt | null> {
  return onRiskState('kill switch: recording its flatten', async () => {
    const stored = await store.getRiskState();
    const halt = stored?.state.killSwitch ?? null;
    if (stored === undefined || halt === null || halt.since !== since || halt.flatten === true) return halt;
    const marked: Halt = { ...halt, flatten: true };
    const saved = await store.putRiskState({ ...stored.state, killSwitch: marked }, stored.version);
    return 'conflict' in saved ? CONFLICT : marked;
  });
}

/**
 * Whether the day's flatten id of a position is spent without having sold it all (`placed`, as
 * stored: this call's flatten refused, or an earlier one's, or a risk check's own market exit,
 * ended unfilled) and no re-send of it works or filled. Such a flatten is marked as the kill
 * switch's under this halt (`killSwitchFlatten: since`, when a risk check's exit holds the id, or
 * it was stamped by an earlier halt the operator resumed), so the next risk check sends it again
 * while this halt is on ({@link killSwitchFlattenAgain}).
 */
async function spentUnsold(
  ctx: LiveContext,
  placed: IntentRecord,
  todays: readonly IntentRecord[],
  time: string,
  since: number,
): Promise<boolean> {
  const stamp = (i: IntentRecord): IntentRecord => ({ ...i, killSwitchFlatten: since });
  const series = todays.map((i) =>
    i.clientOrderId === placed.clientOrderId
      ? stamp(placed)
      : i.killSwitchFlatten === undefined
        ? i
        : stamp(i),
  );
  if (!series.some((i) => i.clientOrderId === placed.clientOrderId)) series.push(stamp(placed));
  const again = killSwitchFlattenAgain(series, placed.clientOrderId, since);
  if (again === null) return false;
  // The day's flatten, the one that ended and a re-send recorded and not sent: this halt's now.
  const mark = [
    placed,
    ...(again.ended === null ? [] : [again.ended]),
    ...todays.filter((i) => i.clientOrderId === again.id),
  ].filter((intent, n, all) => all.findIndex((i) => i.clientOrderId === intent.clientOrderId) === n);
  for (const intent of mark)
    await markFlatten(ctx, intent.clientOrderId === placed.clientOrderId ? placed : intent, since, time);
  return true;
}

/**
 * The members of the day's flatten `id` series (`id`, `<id>-2`, ...) that still work: their order
 * as the broker has it now (`orders`: the open ones and today's exits as they stand) not done, or,
 * not among them, their intent recorded, sent or accepted and not settled.
 */
function workingMembers(
  id: string,
  todays: readonly IntentRecord[],
  orders: readonly BrokerOrder[],
): IntentRecord[] {
  return todays.filter((i) => {
    if (i.purpose !== 'exit' || flattenSequence(i.clientOrderId, id) === null) return false;
    const order = orders.find((o) => o.clientOrderId === i.clientOrderId);
    return order !== undefined ? !DONE.has(order.status) : WORKING_EXIT.includes(i.status);
  });
}

/**
 * Marks an exit as the kill switch's flatten under the halt `since` (`killSwitchFlatten`), unless
 * it already is: by conditional write on its status as read (an intent settled since keeps its
 * state; a concurrent mark is harmless), so the risk check sends it again if it ends unfilled.
 */
async function markFlatten(
  ctx: LiveContext,
  intent: IntentRecord,
  since: number,
  time: string,
): Promise<void> {
  if (intent.killSwitchFlatten === since) return;
  // Never lowering a sender's stamp on an unsent member (`unsentStamp`): a late kill switch's time
  // would make a live sender's member look past the senders' lease.
  const marked = await ctx.store.transitionIntent(intent.date, intent.clientOrderId, [intent.status], {
    killSwitchFlatten: since,
    updatedAt: unsentStamp(intent.status, intent.updatedAt, time),
  });
  if (!('conflict' in marked)) return;
  // It changed state meanwhile (tracked, settled): marked in its new state.
  const now = await ctx.store.getIntent(intent.date, intent.clientOrderId);
  if (now !== undefined && now.killSwitchFlatten !== since)
    await ctx.store.transitionIntent(now.date, now.clientOrderId, [now.status], {
      killSwitchFlatten: since,
      updatedAt: unsentStamp(now.status, now.updatedAt, time),
    });
}

function killSwitchText(result: KillSwitchResult, reason: string, flatten: boolean): string {
  const list = (ids: readonly string[]) => (ids.length === 0 ? 'none' : ids.join(', '));
  const k = result.killSwitch;
  return [
    `Reason: ${reason}`,
    k === null
      ? 'The kill switch is off.'
      : `Halted since ${new Date(k.since).toISOString()} by ${k.by}: ${k.reason}.`,
    'New entries are blocked until `quantshift resume --reason "..."`; exits, stops and reconciliation go on.',
    `Entry intents not sent: ${list(result.entriesSkipped)}.`,
    `Entry orders cancelled: ${list(result.entriesCancelled)}.`,
    ...(result.entriesPending.length > 0
      ? [
          `Entry intents not settled (changed while the kill switch ran; check them): ${list(result.entriesPending)}.`,
        ]
      : []),
    flatten
      ? `Flatten: stops cancelled ${list(result.stopsCancelled)}; exits at market ${list(result.exits)}${
          result.exitsAlreadyOpen.length > 0
            ? `; exits already on their way for ${list(result.exitsAlreadyOpen)}`
            : ''
        }${
          result.exitsUnfilled.length > 0
            ? `; exits refused or ended unfilled by the broker (the next risk check sends them again while halted): ${list(result.exitsUnfilled)}`
            : ''
        }${
          result.flattenSpent.length > 0
            ? `; flattens spent with nothing working and none sent again (NOT on their way, see the alert): ${list(result.flattenSpent)}`
            : ''
        }${
          result.flattenStale.length > 0
            ? `; NOT sent, an earlier run's flatten recorded for more than is held: ${list(result.flattenStale)} (the next risk check replaces it with one for what is left)`
            : ''
        }${result.unknownState.length > 0 ? `; NOT flattened (unknown state, see the alert): ${list(result.unknownState)}` : ''}.`
      : 'Positions kept with their protective stops (live.killSwitch.flatten is off).',
  ].join('\n');
}

/**
 * A sleeves config's positions as the kill switch sizes its flattens from them: today's orders
 * tracked to their broker state (the risk check's `trackOrders`, from the session's open) and the
 * day booked on the sleeves' stored state (`sleevesDay`, provisionally: nothing written), so a
 * sleeve's stop or net order that filled since the last risk check is booked (its shares are no
 * longer the sleeve's to sell); before the open, the stored state without the day's net orders
 * (nothing has filled yet); the UNASSIGNED bucket's records as stored. When that fails (no official open
 * yet to cross the day's legs at, a broker error), the stored positions list and today's intents
 * as stored, alerted: the flattens' total stays capped at what the broker holds.
 */
async function sleevesNow(
  ctx: LiveContext,
  day: string,
  time: string,
  session: SessionRecord | undefined,
  stored: PositionsList | undefined,
  /** Today's intents as the flatten read them (before the orders and the positions): read once. */
  listed: readonly IntentRecord[],
): Promise<{ readonly intents: readonly IntentRecord[]; readonly records: readonly PositionRecord[] }> {
  const opened =
    session?.isOpen === true && session.openAt !== null && Date.parse(time) >= Date.parse(session.openAt);
  try {
    const intents = opened ? await trackOrders(ctx, day, listed, time, session) : listed;
    // Before the open nothing of the day has filled: its net orders are not booked (their crossed
    // legs cross at the official open, which is not known yet).
    const booked = opened ? intents : intents.filter((i) => i.legIds === undefined);
    const booking = await sleevesDay(ctx, day, booked, time, false);
    if (booking !== null)
      return {
        intents,
        records: [...positionRecords(booking.state), ...(stored?.positions ?? []).filter(isUnassigned)],
      };
    return { intents, records: stored?.positions ?? [] };
  } catch (error) {
    const cause = error instanceof Error ? error : new Error(String(error));
    ctx.log.error('kill switch: the sleeves day not booked; flattens sized from the stored positions', {
      error: cause.name,
      message: cause.message,
    });
    await ctx.notifier.publish({
      subject: "Kill switch: the sleeves' day not booked before the flatten",
      severity: 'critical',
      text: `${cause.name}: ${cause.message}. The flattens are sized from the last stored positions (their total capped at what the broker holds); a fill since the last risk check may be sold under the wrong sleeve. Check the account and reconcile.`,
    });
    return { intents: listed, records: stored?.positions ?? [] };
  }
}

/**
 * {@link sleeveOwners}, their flattens together capped at what the broker holds of the symbol for
 * the sleeves (the UNASSIGNED bucket's shares, the exits on their way and the sleeves' exit legs
 * still to be sent left out): in the order the owners are listed, each sized min(its quantity less
 * its own legs', what is left). A total above what the broker holds (what the booking cannot
 * explain) is alerted (critical), naming the symbol: selling every quantity would take the account short.
 */
async function cappedSleeveOwners(
  ctx: LiveContext,
  position: { readonly symbol: string; readonly qty: number },
  records: readonly PositionRecord[],
  exiting: readonly BrokerOrder[],
  legs: ReadonlyMap<string, number>,
  flattenId: (sleeve: string) => string,
  workingQty: (ownIds: ReadonlySet<string>) => number,
): Promise<{ readonly sleeve: string; readonly qty: number }[]> {
  const owners = await sleeveOwners(ctx, position.symbol, records, exiting);
  const held = Math.abs(sleevesShare(position.qty, records, position.symbol));
  const storedQty = sleeveRecords(records)
    .filter((r) => r.symbol === position.symbol && r.sleeve !== undefined)
    .reduce((sum, r) => sum + Math.abs(r.qty), 0);
  if (storedQty > held) {
    ctx.log.error('kill switch: the sleeves hold more than the broker', {
      symbol: position.symbol,
      stored: storedQty,
      broker: held,
    });
    await ctx.notifier.publish({
      subject: `Kill switch: the sleeves' ${position.symbol} exceeds the broker's`,
      severity: 'critical',
      text: `${position.symbol}: the sleeves hold ${storedQty} shares (booked up to now), the broker ${held} (the UNASSIGNED bucket's left out). The flatten sells at most what the broker holds, less the exits on their way; check the account and reconcile.`,
    });
  }
  let left =
    held -
    workingQty(new Set(owners.map((o) => flattenId(o.sleeve)))) -
    [...legs.values()].reduce((sum, q) => sum + q, 0);
  return owners.map((o) => {
    const qty = Math.max(0, Math.min(o.qty - (legs.get(o.sleeve) ?? 0), left));
    left -= qty;
    return { sleeve: o.sleeve, qty };
  });
}

/**
 * The sleeves holding `symbol` and the shares each flattens: its own position, or none while an
 * exit of an order whose sleeve set includes it is still working at the broker (a netted
 * market-on-open exit, or its own flatten from an earlier call): that exit is on its way, and a
 * second sell could take the account short. The next call flattens what is left.
 */
async function sleeveOwners(
  ctx: LiveContext,
  symbol: string,
  records: readonly PositionRecord[],
  exiting: readonly BrokerOrder[],
): Promise<{ readonly sleeve: string; readonly qty: number }[]> {
  const busy = new Set<string>();
  for (const order of exiting) {
    const tag = orderTagOf(order.clientOrderId);
    if (tag === null) continue;
    const single = sleeveRecords(records).find((r) => sleeveSetTag(ctx.stage, [r.sleeve ?? '']) === tag);
    if (single?.sleeve !== undefined) busy.add(single.sleeve);
    for (const sleeve of (await ctx.store.getOrderTag(tag))?.sleeves ?? []) busy.add(sleeve);
  }
  return sleeveRecords(records)
    .filter((r) => r.symbol === symbol && r.qty !== 0 && r.sleeve !== undefined)
    .map((r) => ({ sleeve: r.sleeve as string, qty: busy.has(r.sleeve as string) ? 0 : Math.abs(r.qty) }));
}
