/** Protective stop orders, placed once, shared by the single-strategy and the sleeves risk checks. */

import { randomUUID } from 'node:crypto';
import { BrokerRejectedError } from '../core/errors.js';
import { awayFromMarket, orderStyle } from '../core/live/order-style.js';
import { clientOrderId, orderTagOf, STOP_ORDER_TYPES, sleeveSetTag } from '../core/live/orders.js';
import type { BrokerOrder } from '../core/ports/broker.js';
import { type IntentRecord, type IntentStatus, UNASSIGNED_SLEEVE } from '../core/ports/state-store.js';
import type { Halt } from '../core/risk/index.js';
import type { LiveContext } from './context.js';
import { SENDER_LEASE_SECONDS } from './steps.js';
import { orderState, orderWindowClosed, placeIntentOnce, senderClock, UNSENT } from './submit.js';

/** Stops are sent in whole cents, rounded away from the market so they never tighten by rounding. */
export function stopPrice(price: number, side: 1 | -1): number {
  // A long's stop sells, a short's buys: the rounding of the stop-limit's limit, away from the market.
  return awayFromMarket(price, side === 1 ? 'sell' : 'buy');
}

const LIVE_STOP: readonly IntentStatus[] = ['recorded', 'submitted', 'unknown', 'accepted'];

/**
 * Places a protective stop once, even when risk checks run concurrently: the day's stop intents
 * of the symbol are read fresh, a live one with the same price and quantity (another check's) is
 * the one placed, and a new one takes the next free sequence number, so concurrent checks that
 * want the same stop compute the same client order id.
 *
 * A stop placed while an exit of the same shares is under way is cancelled again at once (see
 * {@link withdrawIfExiting}): the stream's exit can sell the position between the risk check's
 * read of the positions and its stop.
 */
export async function placeStop(
  ctx: LiveContext,
  day: string,
  symbol: string,
  side: 'buy' | 'sell',
  qty: number,
  price: number,
  referencePrice: number,
  now: string,
  /** A sleeve's own stop (a sleeves config): its id carries the sleeve's tag. */
  sleeve?: string,
): Promise<IntentRecord> {
  const placed = await placeStopOnce(ctx, day, symbol, side, qty, price, referencePrice, now, sleeve);
  return withdrawIfExiting(ctx, placed, now, sleeve);
}

/** The states of an exit intent that may still sell (a filled, cancelled or expired one sells no more). */
export const WORKING_EXIT: readonly IntentStatus[] = [
  'recorded',
  'submitted',
  'unknown',
  'accepted',
  'partially_filled',
];

/** The states of an intent whose order the broker may not have yet (`UNSENT`, submit.ts). */
export { UNSENT };

/** What an exit intent can still sell: its unfilled shares while it works, nothing once finished. */
function leftToSell(intent: IntentRecord): number {
  return WORKING_EXIT.includes(intent.status) ? Math.max(0, intent.qty - intent.filledQty) : 0;
}

/**
 * Closes the race between a risk check's stop and a stream exit (issue 17). The risk check reads
 * the positions, then places its stop; the stream's exit records its intent (the deterministic
 * `...-flatten` id) BEFORE it cancels the resting stops, lists the open orders and sends the
 * order, and sweeps the open stops again after the order. So either the stop reached the broker
 * before the stream's last look (its cancels or its sweep take it away), or after: then the exit
 * intent already exists, and this fresh read of the day's intents, made once the stop is placed,
 * sees it and cancels the stop just placed. An exit of the same shares is an intent with purpose
 * `exit` of the symbol on the stop's side (the stream's or the risk check's flatten, the day's
 * exit) and, for a sleeve's stop, of that sleeve or of the whole symbol (the stream's, with no
 * sleeve). An exit counts only for what it can still sell: one still working (recorded, sent,
 * unknown, partly filled; one not at the broker only while its order window lasts) its unfilled
 * shares, a finished one (filled, cancelled, expired, refused) nothing. The stop is withdrawn
 * when the working exits can sell all its shares (a partial exit leaves shares that keep their
 * stop), or when an exit has sold shares today and the broker now holds fewer than the stop
 * covers (the exit sold them after the risk check read the position). A market-on-open exit that
 * sold part and was cancelled leaves its other shares with their stop. The cost for an ordinary
 * stop is this one read (the session is read only when an exit not at the broker is working, the
 * positions only when an exit of the shares sold some today).
 */
async function withdrawIfExiting(
  ctx: LiveContext,
  placed: IntentRecord,
  now: string,
  sleeve: string | undefined,
): Promise<IntentRecord> {
  if (placed.status !== 'accepted' || placed.brokerOrderId === undefined) return placed;
  const exits = (await ctx.store.listIntents(placed.date)).filter(
    (i) =>
      i.purpose === 'exit' &&
      i.symbol === placed.symbol &&
      i.side === placed.side &&
      // A sleeve's stop: that sleeve's exit, or a symbol-wide one (no sleeve: the stream's exit
      // sells every sleeve's shares of the symbol).
      (sleeve === undefined || i.sleeve === undefined || i.sleeve === sleeve),
  );
  let working = exits.filter((i) => leftToSell(i) > 0);
  if (working.some((i) => UNSENT.includes(i.status))) {
    // One not at the broker that can no longer be sent (a market-on-open exit after 09:28) never sells.
    const session = await ctx.store.getSession(placed.date);
    working = working.filter((i) => !UNSENT.includes(i.status) || !orderWindowClosed(ctx, i, session, now));
  }
  const sold = exits.filter((i) => i.filledQty > 0);
  let exit: IntentRecord | undefined;
  if (working.reduce((sum, i) => sum + leftToSell(i), 0) >= placed.qty) exit = working[0];
  else if (sold.length > 0 && (await heldNow(ctx, placed)) < placed.qty) exit = sold[0];
  if (exit === undefined) return placed;
  try {
    await ctx.broker.cancelOrder(placed.brokerOrderId);
  } catch (error) {
    return bookUncancellableStop(ctx, placed, exit, error, now);
  }
  const reason = `cancelled at once: the exit ${exit.clientOrderId} (${exit.status}) sells the same shares`;
  ctx.log.warn('a stop placed during an exit of the same shares was cancelled', {
    clientOrderId: placed.clientOrderId,
    symbol: placed.symbol,
    exit: exit.clientOrderId,
    exitStatus: exit.status,
  });
  const result = await ctx.store.transitionIntent(placed.date, placed.clientOrderId, ['accepted'], {
    status: 'cancelled',
    reason,
    updatedAt: now,
  });
  // Another run settled the intent meanwhile: it is returned as stored.
  if ('conflict' in result) return (await ctx.store.getIntent(placed.date, placed.clientOrderId)) ?? placed;
  return result;
}

/** The shares of the stop's symbol the broker holds now on the side the stop sells (0 when none). */
async function heldNow(ctx: LiveContext, stop: IntentRecord): Promise<number> {
  const position = (await ctx.broker.getPositions()).find((p) => p.symbol === stop.symbol);
  if (position === undefined) return 0;
  return Math.max(0, stop.side === 'sell' ? position.qty : -position.qty);
}

/** Which of today's exits count against a position, for {@link workingExitQty}. */
export interface WorkingExitOptions {
  /**
   * The exit the caller sends itself (the day's `flatten` id): its intent counts only while its
   * order works at the broker; recorded or claimed and not there, it is the caller's to send
   * (`placeIntentOnce` looks it up and sends it at most once), as before.
   */
  readonly ownId: string;
  /** Whether an intent not at the broker may still be sent (its order window is not over). */
  readonly maySend: (intent: IntentRecord) => boolean;
  /**
   * How much of a working exit's unfilled shares sell these shares (a sleeves config: its own, a
   * symbol-wide one, a net order's exit legs of that sleeve); all of them by default.
   */
  readonly share?: (exit: IntentRecord, left: number) => number;
}

/**
 * What today's exits of a position can still sell, before a market exit of it is sent (a crossed
 * stop, a daily-loss flatten), as the kill switch subtracts the exits on their way: the open
 * orders of the symbol on the exit side that are not stops (their unfilled shares, as the broker
 * has them), and today's `exit` intents still working ({@link leftToSell}: recorded, sent,
 * unknown or partly filled; a finished one sells no more) whose order is not among them (just
 * done, or not at the broker yet and still sendable: an unsent market-on-open exit after 09:28
 * never will be). The day's entries, the net orders' legs (never sent; their net order is) and
 * the UNASSIGNED bucket's flattens (its shares are no sleeve's) never count; an open order no
 * intent of today knows (placed by hand) counts in full: a second sell could take the account short.
 */
export function workingExitQty(
  symbol: string,
  side: 'buy' | 'sell',
  intents: readonly IntentRecord[],
  openOrders: readonly BrokerOrder[],
  options: WorkingExitOptions,
): number {
  const known = new Set(intents.map((i) => i.clientOrderId));
  const exiting = (o: BrokerOrder) =>
    o.symbol === symbol && o.side === side && !STOP_ORDER_TYPES.has(o.type) && stillWorking(o);
  let qty = 0;
  for (const order of openOrders) {
    if (exiting(order) && !known.has(order.clientOrderId)) qty += order.qty - order.filledQty;
  }
  for (const intent of intents) {
    if (
      intent.purpose !== 'exit' ||
      intent.leg === true ||
      intent.symbol !== symbol ||
      intent.side !== side ||
      intent.sleeve === UNASSIGNED_SLEEVE
    )
      continue;
    const order = openOrders.find((o) => o.clientOrderId === intent.clientOrderId);
    const left =
      order !== undefined
        ? exiting(order)
          ? order.qty - order.filledQty
          : 0
        : intent.clientOrderId === options.ownId ||
            (UNSENT.includes(intent.status) && !options.maySend(intent))
          ? 0
          : leftToSell(intent);
    if (left > 0) qty += Math.min(left, options.share?.(intent, left) ?? left);
  }
  return qty;
}

/** Intent states in which an exit is settled in the store: its order sells nothing more. */
const SETTLED: readonly IntentStatus[] = ['filled', 'cancelled', 'expired', 'rejected', 'skipped'];

/**
 * The orders {@link workingExitQty} counts today's exits by: the open orders `open` and, for each
 * exit of `intents` the store does not hold settled (a sleeve's leg is never sent: its net order
 * is) whose order the broker no longer lists as open, that order as the broker has it now, asked
 * for by its client order id: one that ended unfilled since the store last heard of it (cancelled,
 * rejected, expired: a run that died after its send leaves it `submitted`, a risk check not run yet
 * leaves it `accepted`) then counts nothing, one partly filled only what it sold (its unfilled
 * rest sells nothing), instead of its stale stored state counting as still selling. None is added
 * for an exit the broker never got (in flight: counted while it may still be sent). Read BEFORE
 * the positions: an exit that fills in between is counted twice at worst (too little sold), never
 * missed (a second sale, a short).
 */
export async function exitOrdersNow(
  ctx: LiveContext,
  open: readonly BrokerOrder[],
  intents: readonly IntentRecord[],
): Promise<BrokerOrder[]> {
  const orders = [...open];
  for (const intent of intents) {
    if (
      intent.purpose !== 'exit' ||
      intent.leg === true ||
      SETTLED.includes(intent.status) ||
      open.some((o) => o.clientOrderId === intent.clientOrderId)
    )
      continue;
    const order = await ctx.broker.getOrderByClientOrderId(intent.clientOrderId);
    if (order !== null) orders.push(order);
  }
  return orders;
}

/**
 * What {@link killSwitchFlattenAgain} or {@link killSwitchFlattenDue} finds: the flatten to send
 * now, and the one of its series that last ended.
 */
export interface FlattenAgain {
  /** The client order id to send under (the day's `flatten` id, or `<flatten id>-<n>`). */
  readonly id: string;
  /** Its sequence number (1: the day's id; 2 for the first re-send). */
  readonly sequence: number;
  /**
   * The kill switch's flatten of these shares that last ended without selling them all; with
   * `due`, the day's flatten series' last member (any exit under it), null when there is none.
   */
  readonly ended: IntentRecord | null;
  /** The `since` of the halt it flattens under: the re-send's `killSwitchFlatten` stamp. */
  readonly since: number;
  /**
   * Found by {@link killSwitchFlattenDue}: the kill switch that flattened is on and no flatten of
   * its own is to be sent again; sent only for what no exit on its way covers.
   */
  readonly due?: true;
}

/**
 * The reason a risk check's exit of a position carries (single-strategy and sleeves alike): the
 * kill switch's flatten sent again (`resend`), the daily-loss breaker's flatten, or the price
 * through the stop.
 */
export function riskExitReason(
  resend: FlattenAgain | null,
  flatten: boolean,
  price: number,
  stop: number | null,
): string {
  if (resend?.due === true)
    return `kill switch: flatten, no exit on its way covers the shares${resend.ended === null ? '' : ` (${resend.ended.clientOrderId} ${resend.ended.status})`}`;
  if (resend !== null)
    return `kill switch: flatten sent again (${resend.ended?.clientOrderId} ${resend.ended?.status})`;
  return flatten ? 'daily loss breaker: flatten' : `price ${price} is through the stop ${stop}`;
}

/**
 * The number of `id` in the day's flatten series of `base` (the day's `flatten` id): 1 for `base`
 * itself, `n` for a re-send `<base>-<n>` (n >= 2, digits only); null for any other id.
 */
export function flattenSequence(id: string, base: string): number | null {
  if (id === base) return 1;
  if (!id.startsWith(`${base}-`)) return null;
  const digits = id.slice(base.length + 1);
  return /^[1-9]\d*$/.test(digits) && Number(digits) >= 2 ? Number(digits) : null;
}

/** Intent states of an order the broker ended without filling it whole. */
const ENDED_UNFILLED: readonly IntentStatus[] = ['cancelled', 'rejected', 'expired'];

/**
 * Whether a flatten surely ended at the broker without selling all its shares: refused (`rejected`),
 * or cancelled or expired with the broker's order id known. One `expired` (or `cancelled`) with no
 * broker order id had its submit answer lost and the broker's lookup find nothing, which on a paged
 * lookup (Coinbase) can be an order that filled: never taken as unsold (a second sale, a short).
 */
function endedUnfilled(intent: IntentRecord): boolean {
  return (
    ENDED_UNFILLED.includes(intent.status) &&
    intent.filledQty < intent.qty &&
    (intent.status === 'rejected' || intent.brokerOrderId !== undefined)
  );
}

/**
 * The day's flatten series of `base` in `intents` (its exits numbered by {@link flattenSequence};
 * `stampedOnly`: those marked `killSwitchFlatten` only): `next`, the number after the highest taken
 * (a superseded, `skipped`, re-send's too), and `live`, the members in order without the superseded
 * ones (a re-send settled `skipped` never went out: the series stands at the one before it, its
 * successor may not exist yet when the check died after the settle; the day's id itself is kept).
 */
function flattenSeries(
  intents: readonly IntentRecord[],
  base: string,
  stampedOnly: boolean,
): { readonly next: number; readonly live: readonly { sequence: number; intent: IntentRecord }[] } {
  const series: { sequence: number; intent: IntentRecord }[] = [];
  for (const intent of intents) {
    if (intent.purpose !== 'exit' || (stampedOnly && intent.killSwitchFlatten === undefined)) continue;
    const sequence = flattenSequence(intent.clientOrderId, base);
    if (sequence !== null) series.push({ sequence, intent });
  }
  series.sort((a, b) => a.sequence - b.sequence);
  return {
    next: (series.at(-1)?.sequence ?? 0) + 1,
    live: series.filter((s) => s.sequence === 1 || s.intent.status !== 'skipped'),
  };
}

/**
 * The kill switch wants its positions flat. When today's flatten of a position by the kill switch
 * (`base`, the day's `flatten` id, marked `killSwitchFlatten`), or its last re-send
 * (`<base>-2`, `-3`, ...), ended at the broker without selling all its shares (rejected; cancelled
 * or expired with its broker order id known; partly filled or not) and the kill switch is still on, the risk check sends
 * it again, once per check, under the next number: this says under which id (the re-send a check
 * recorded and did not get to the broker, when it died, is sent under its own). Only under the
 * halt it flattened under: `since`, the kill switch's current `since` (null: off), must be the
 * flatten's stamp (`killSwitchFlatten`), so a resume and a later plain halt (entries only, a new
 * `since`) send nothing again. Null when the kill switch is off or is another halt, it flattened
 * nothing of these shares today, or its last flatten works or filled. `intents`: today's, tracked
 * to their broker state.
 */
export function killSwitchFlattenAgain(
  intents: readonly IntentRecord[],
  base: string,
  since: number | null,
): FlattenAgain | null {
  if (since === null) return null;
  const { next, live } = flattenSeries(intents, base, true);
  const last = live.at(-1);
  if (last === undefined || last.intent.killSwitchFlatten !== since) return null;
  if (endedUnfilled(last.intent)) return { id: `${base}-${next}`, sequence: next, ended: last.intent, since };
  const ended = live.at(-2)?.intent;
  return last.sequence > 1 && UNSENT.includes(last.intent.status) && ended !== undefined
    ? { id: last.intent.clientOrderId, sequence: last.sequence, ended, since }
    : null;
}

/**
 * The kill switch that flattened (`killSwitch.flatten`, written by the kill-switch function under
 * the halt it flattened under) is on, and {@link killSwitchFlattenAgain} found no flatten of its
 * own to send again (a later day: the flatten and its re-sends ended unfilled on an earlier one;
 * no flatten recorded: the day's market-on-open exit covered the whole position, then the broker
 * refused or cancelled it; the day's id spent by another exit, or the series' last filled short):
 * the flatten to send for what no exit on its way covers (the caller subtracts them:
 * `workingExitQty`, and sends nothing when they cover every share). Under the day's `flatten` id
 * when nothing of its series exists; under the series' last member when the broker does not have it
 * (recorded, claimed or `unknown`: a run that died before or while sending it, its answer lost, or
 * a run still sending it: `placeIntentOnce` looks it up and sends it, once; one for more than is
 * left is superseded past the senders' lease only, {@link supersedeStaleResend}); else under the
 * next number after the highest taken. Stamped with the halt's `since`. Null when the kill switch is off (a
 * resume) or is a halt that did not flatten (`quantshift halt`). `intents`: today's, tracked to
 * their broker state.
 */
export function killSwitchFlattenDue(
  intents: readonly IntentRecord[],
  base: string,
  killSwitch: Halt | null,
): FlattenAgain | null {
  if (killSwitch === null || killSwitch.flatten !== true) return null;
  const since = killSwitch.since;
  const { next, live } = flattenSeries(intents, base, false);
  const last = live.at(-1);
  if (last === undefined) return { id: base, sequence: 1, ended: null, since, due: true };
  // Not at the broker when tracked (recorded: a run that died before sending it, or one still
  // sending it; `unknown`: its answer lost and the lookup found nothing; claimed by a run that may
  // have died): sent under its own id, which is always safe (`placeIntentOnce` looks it up first and
  // the broker refuses a second order under one id). Counted as in flight instead, an `unknown` or
  // dead claim would block the check (nothing sent, the stops cancelled) with nothing resending it.
  if (UNSENT.includes(last.intent.status))
    return {
      id: last.intent.clientOrderId,
      sequence: last.sequence,
      ended: live.at(-2)?.intent ?? null,
      since,
      due: true,
    };
  return { id: `${base}-${next}`, sequence: next, ended: last.intent, since, due: true };
}

/**
 * The kill switch's flatten a risk check sends now for the shares of `base` (the day's `flatten` id)
 * under the kill switch `halt` (null: off): its own flatten that ended unfilled today, sent again
 * ({@link killSwitchFlattenAgain}), else, under the kill switch that flattened, a flatten of what no
 * exit on its way covers ({@link killSwitchFlattenDue}); null: none.
 */
export function killSwitchFlattenToSend(
  intents: readonly IntentRecord[],
  base: string,
  halt: Halt | null,
): FlattenAgain | null {
  return (
    killSwitchFlattenAgain(intents, base, halt?.since ?? null) ?? killSwitchFlattenDue(intents, base, halt)
  );
}

/**
 * The kill switch's flatten to place now for `left` shares, when its id (`again.id`) is taken by an
 * intent not at the broker yet (recorded, claimed or unknown: a run that died before sending it, or
 * one still sending it). Sent under that same id whenever its stored quantity is at most `left`
 * (`placeIntentOnce` looks it up first and the broker refuses a second order under one id: never a
 * second sale; shares it leaves, a later check flattens under the next number). One recorded for
 * MORE than is left (the position shrank since: a sale by hand, a stop) is settled `skipped`
 * (superseded) and the next number is used only when the broker does not have it and its last
 * sender write (`updatedAt`, stamped on the clock at its creation, by execute-orders' claim, and by
 * every sender immediately before its send, `stampBeforeSend`) is older than
 * `SENDER_LEASE_SECONDS` on the clock ({@link senderClock}, read before the intent is read again):
 * no run that recorded or took it up can still be sending it. The settle is conditional on its
 * status AND that `updatedAt`, as a sender's stamp is: of a sender stamping it and this supersede,
 * exactly one write wins, so never both orders go out. Inside that lease, or when another writer
 * changed it since this check read it, null: this check sends nothing for these shares, a later one
 * decides. Null too when another writer settled or stamped it first.
 */
export async function supersedeStaleResend(
  ctx: LiveContext,
  again: FlattenAgain,
  intents: readonly IntentRecord[],
  left: number,
  now: string,
): Promise<FlattenAgain | null> {
  const stale = intents.find((i) => i.clientOrderId === again.id);
  if (stale === undefined || !UNSENT.includes(stale.status) || stale.qty <= left) return again;
  // At the broker already (sent, its answer lost): it is no longer ours to change.
  if ((await ctx.broker.getOrderByClientOrderId(stale.clientOrderId)) !== null) return again;
  // The clock first, then the intent read again (a sender that took it up since this check's read
  // stamped it anew): a stamp written after the re-read is caught by the settle's condition below.
  const clock = Date.parse(await senderClock(ctx, now));
  const fresh = await ctx.store.getIntent(stale.date, stale.clientOrderId);
  if (fresh === undefined || fresh.status !== stale.status || fresh.updatedAt !== stale.updatedAt)
    return null;
  const age = clock - Date.parse(fresh.updatedAt);
  if (!(age >= SENDER_LEASE_SECONDS * 1000)) {
    ctx.log.info(
      "the kill switch's flatten recorded for more than is left may still be on its way: nothing sent",
      {
        id: stale.clientOrderId,
        status: stale.status,
        qty: stale.qty,
        left,
        stampedAt: fresh.updatedAt,
      },
    );
    return null;
  }
  const settled = await ctx.store.settleIntent(
    stale.date,
    stale.clientOrderId,
    [stale.status],
    {
      status: 'skipped',
      reason: `superseded: recorded for ${stale.qty}, ${left} left to sell; sent again as -${again.sequence + 1}`,
      updatedAt: now,
    },
    randomUUID(),
    // Only when no sender stamped it since the re-read (`stampBeforeSend` writes on the same
    // condition): exactly one of the two writes wins, never both orders out.
    { updatedAt: fresh.updatedAt },
  );
  if ('conflict' in settled) return null;
  ctx.log.warn("a stale re-send of the kill switch's flatten superseded", {
    id: stale.clientOrderId,
    qty: stale.qty,
    left,
  });
  // The day's id itself (a flatten recorded and not sent, {@link killSwitchFlattenDue}) is its own base.
  const base =
    again.sequence === 1
      ? stale.clientOrderId
      : stale.clientOrderId.slice(0, stale.clientOrderId.length - `-${again.sequence}`.length);
  return { ...again, id: `${base}-${again.sequence + 1}`, sequence: again.sequence + 1 };
}

/**
 * The critical alert of a kill-switch flatten sent again ({@link killSwitchFlattenAgain}): the
 * one that ended unfilled, and what is sent now. Once per re-send: by the run that created its
 * intent (`placeIntentOnce`'s `onCreated`), never by a concurrent check that found it recorded.
 */
export async function alertFlattenAgain(
  ctx: LiveContext,
  again: FlattenAgain,
  symbol: string,
  qty: number,
  sleeve?: string,
): Promise<void> {
  const { ended } = again;
  const of = sleeve === undefined ? symbol : `${symbol} (${sleeve})`;
  if (again.due === true || ended === null) {
    ctx.log.warn('the kill switch flattened and no exit covers the shares: flatten sent', {
      symbol,
      ...(sleeve === undefined ? {} : { sleeve }),
      last: ended?.clientOrderId,
      status: ended?.status,
      id: again.id,
      qty,
    });
    await ctx.notifier.publish({
      subject: `Kill switch flatten sent: ${of}`,
      severity: 'critical',
      text: `The kill switch that flattened is on (since ${new Date(again.since).toISOString()}) and no exit on its way covers ${qty} of ${of}${ended === null ? '' : ` (the day's last flatten of them, ${ended.clientOrderId}, is ${ended.status}${ended.reason === undefined ? '' : `: ${ended.reason}`})`}: sent at market as ${again.id}. Each risk check sends one while the kill switch is on and shares are held with no exit working for them (a flatten the broker ended unfilled on an earlier day; an exit it refused or cancelled); find out why and close the position by hand if it must go now.`,
    });
    return;
  }
  ctx.log.warn("the kill switch's flatten ended unfilled: sent again", {
    symbol,
    ended: ended.clientOrderId,
    status: ended.status,
    id: again.id,
    qty,
  });
  await ctx.notifier.publish({
    subject: `Kill switch flatten sent again: ${of}`,
    severity: 'critical',
    text: `The kill switch is on and its flatten ${ended.clientOrderId} (${ended.status}) sold ${ended.filledQty} of ${ended.qty}${ended.reason === undefined ? '' : ` (${ended.reason})`}: ${qty} of ${of} sent again at market as ${again.id}. Each risk check sends it again while the kill switch is on and it ends unfilled; find out why the broker ends it (a halted symbol, a rejection) and close the position by hand if it must go now.`,
  });
}

/** Order states in which a stop no longer works at the broker (nothing left to cancel). */
const GONE: ReadonlySet<BrokerOrder['status']> = new Set([
  'canceled',
  'replaced',
  'expired',
  'rejected',
  'done_for_day',
]);

/** A stop with shares left that still works at the broker (nothing says it is done). */
function stillWorking(order: BrokerOrder): boolean {
  return order.filledQty < order.qty && order.status !== 'filled' && !GONE.has(order.status);
}

/**
 * What a refused cancel of a stop means, from its order as the broker has it now (looked up by its
 * client order id after the refusal): the one rule of the risk check ({@link placeStop}'s
 * withdrawal) and of the stream's exit. `sold`: it filled, all or PART of its shares (working on
 * or not): it sold them; booked as it stands and alerted. `gone`: nothing filled and it no longer
 * works (cancelled, replaced, expired, rejected): harmless. `working`: nothing filled and still
 * working, or unknown to the broker: the refusal stands (the caller's original error).
 */
export function refusedCancel(order: BrokerOrder | null): 'sold' | 'gone' | 'working' {
  if (order !== null && order.filledQty > 0) return 'sold';
  return order !== null && GONE.has(order.status) ? 'gone' : 'working';
}

/**
 * A stop's intent booked as its broker order stands ({@link orderState}: status, fills, price),
 * with the reason, from the given statuses; the intent as stored afterwards (another run's, when
 * it settled the intent first).
 */
export async function bookStopOrder(
  ctx: LiveContext,
  stop: IntentRecord,
  order: BrokerOrder,
  from: readonly IntentStatus[],
  reason: string,
  now: string,
): Promise<IntentRecord> {
  const result = await ctx.store.transitionIntent(stop.date, stop.clientOrderId, from, {
    ...orderState(order),
    reason,
    updatedAt: now,
  });
  if ('conflict' in result) return (await ctx.store.getIntent(stop.date, stop.clientOrderId)) ?? stop;
  return result;
}

/**
 * The broker refused to cancel the stop {@link withdrawIfExiting} had just placed (a 422: it
 * triggered and filled meanwhile, the market being through it). The order is looked up by its
 * client order id and judged by {@link refusedCancel}, the stream exit's rule too: one that sold
 * (all or part of its shares) or is gone is booked as it stands, as the risk check tracks any order
 * (status, filled quantity and price; the fill ledger takes it at the end of the day's
 * reconciliation), and the run goes on. A fill is alerted: the exit of the same shares may sell
 * them too (the stream's exit, if it had not sent its order yet, finds the stop filled and sends
 * none). A refusal of a stop still working with nothing filled is the original error.
 */
async function bookUncancellableStop(
  ctx: LiveContext,
  placed: IntentRecord,
  exit: IntentRecord,
  error: unknown,
  now: string,
): Promise<IntentRecord> {
  if (!(error instanceof BrokerRejectedError)) throw error;
  const order = await ctx.broker.getOrderByClientOrderId(placed.clientOrderId);
  if (order === null || refusedCancel(order) === 'working') throw error;
  ctx.log.warn(
    'a stop placed during an exit of the same shares could not be cancelled: booked as the broker has it',
    {
      clientOrderId: placed.clientOrderId,
      symbol: placed.symbol,
      orderStatus: order.status,
      filledQty: order.filledQty,
      exit: exit.clientOrderId,
      exitStatus: exit.status,
      error: error.message,
    },
  );
  const booked = await bookStopOrder(
    ctx,
    placed,
    order,
    ['accepted'],
    `not cancelled (${error.message}): the broker has the stop ${order.status}, during the exit ${exit.clientOrderId}`,
    now,
  );
  if (order.filledQty > 0) {
    await ctx.notifier.publish({
      subject: `Stop filled during an exit: ${placed.symbol}`,
      severity: 'critical',
      text: `${placed.clientOrderId} (${placed.side} ${placed.qty} ${placed.symbol}) filled ${order.filledQty} at ${order.filledAvgPrice ?? '?'} before it could be cancelled, while the exit ${exit.clientOrderId} (${exit.status}) sells the same shares.${
        stillWorking(order)
          ? ` Its other ${order.qty - order.filledQty} still rest at the broker (${order.status}, the cancel refused): cancel them by hand, or they may sell too.`
          : ''
      } If both sold, the position is reversed: check the account.`,
    });
  }
  return booked;
}

async function placeStopOnce(
  ctx: LiveContext,
  day: string,
  symbol: string,
  side: 'buy' | 'sell',
  qty: number,
  price: number,
  referencePrice: number,
  now: string,
  /** A sleeve's own stop (a sleeves config): its id carries the sleeve's tag. */
  sleeve?: string,
): Promise<IntentRecord> {
  const mine = (await ctx.store.listIntents(day)).filter(
    (i) => i.purpose === 'stop' && i.symbol === symbol && (sleeve === undefined || i.sleeve === sleeve),
  );
  const same = (i: IntentRecord) => i.stopPrice === price && i.qty === qty && i.side === side;
  const live = mine.find((i) => same(i) && LIVE_STOP.includes(i.status));
  if (live !== undefined) return placeIntentOnce(ctx, live, now);
  for (let sequence = mine.length + 1; ; sequence++) {
    const intent: IntentRecord = {
      clientOrderId: clientOrderId({
        stage: ctx.stage,
        strategy: ctx.config.name,
        symbol,
        date: day,
        purpose: 'stop',
        ...(sleeve === undefined ? {} : { sleeves: [sleeve] }),
        sequence,
      }),
      sleeve: sleeve ?? ctx.config.name,
      date: day,
      strategy: ctx.config.name,
      symbol,
      purpose: 'stop',
      side,
      qty,
      // Equity: a stop-market order; crypto: a stop-limit with its limit beyond the stop.
      ...orderStyle(ctx.config).stop(price, side),
      referencePrice,
      status: 'recorded',
      filledQty: 0,
      configHash: ctx.configHash,
      gitCommit: ctx.gitCommit,
      createdAt: now,
      updatedAt: now,
    };
    const { created, intent: stored } = await ctx.store.createIntent(intent);
    // Taken by an earlier stop (another price, or one since cancelled): the next number.
    if (created || (same(stored) && LIVE_STOP.includes(stored.status)) || sequence > mine.length + 20)
      return placeIntentOnce(ctx, stored, now);
  }
}

/**
 * A resting stop on the same shares is cancelled before an exit sells them (the market-on-open or
 * market IOC exit, and the crypto dry run's virtual one), as execute-orders and the dry run both do.
 */
export async function cancelRestingStops(
  ctx: LiveContext,
  intent: IntentRecord,
  rateSlot: () => Promise<void>,
  /** A net order of sleeves: only these exiting sleeves' own stops (by their tag) are cancelled. */
  sleeves?: readonly string[],
): Promise<void> {
  await rateSlot();
  const open = await ctx.broker.listOrders({ status: 'open', symbols: [intent.symbol] });
  const tags = sleeves === undefined ? undefined : new Set(sleeves.map((s) => sleeveSetTag(ctx.stage, [s])));
  const exitSide = sleeves === undefined ? intent.side : 'sell';
  for (const order of open) {
    if (tags !== undefined && !tags.has(orderTagOf(order.clientOrderId) ?? '')) continue;
    if (order.side === exitSide && STOP_ORDER_TYPES.has(order.type)) {
      await rateSlot();
      await ctx.broker.cancelOrder(order.id);
      ctx.log.info('cancelled a resting stop before the exit', {
        orderId: order.id,
        symbol: intent.symbol,
      });
    }
  }
}
