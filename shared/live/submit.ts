import { randomUUID } from 'node:crypto';
import {
  BrokerRejectedError,
  BrokerResponseError,
  BrokerUnavailableError,
  DuplicateClientOrderIdError,
  InvalidParameterError,
} from '../core/errors.js';
import { beforeIocCutoff } from '../core/live/order-style.js';
import { beforeOpgCutoff } from '../core/live/orders.js';
import type { BrokerOrder } from '../core/ports/broker.js';
import type { IntentRecord, IntentStatus, SessionRecord } from '../core/ports/state-store.js';
import { type LiveContext, sessionDate } from './context.js';

/**
 * Whether the order window of an intent is over at `now`: for a market-on-open order the 09:28
 * cutoff of its day; for a crypto market IOC order the 01:00 UTC cutoff of its UTC day (an
 * immediate order: the broker fills it at once or never, so a claim it never saw is stale once
 * the orders of the daily close may no longer go out); for any other the close of its session
 * (or its day, once the day is past: the bot's session date, New York's for the equity bot, the
 * UTC day for the crypto bot, `sessionDate`).
 * An intent claimed for sending that the broker has not seen by then never will be.
 */
export function orderWindowClosed(
  ctx: Pick<LiveContext, 'calendar'>,
  intent: Pick<IntentRecord, 'date' | 'timeInForce'>,
  session: SessionRecord | undefined,
  now: string,
): boolean {
  if (intent.timeInForce === 'opg') return !beforeOpgCutoff(now, intent.date);
  if (intent.timeInForce === 'ioc') return !beforeIocCutoff(now, intent.date);
  if (sessionDate(ctx, now) > intent.date) return true;
  return (
    session?.date === intent.date &&
    session.closeAt !== null &&
    Date.parse(now) >= Date.parse(session.closeAt)
  );
}

/**
 * Settles an intent claimed for sending (`submitted`, or `unknown` after a lost answer) that the
 * broker has never seen, or one still `recorded` (never claimed: no run got to send it), once its
 * order window is over: recorded as `expired` (not sent) by a conditional write carrying a token
 * of this call, and alerted by the one caller whose write wins, so it is said once: a write whose
 * answer was lost after it committed is still known as ours by its token (`settleIntent`), so the
 * alert is not lost with it. Every other intent and symbol goes on. Returns the stored intent, or
 * null when another run settled it.
 */
export async function expireUnsent(
  ctx: LiveContext,
  intent: IntentRecord,
  now: string,
): Promise<IntentRecord | null> {
  const recorded = intent.status === 'recorded';
  const from: IntentStatus[] = recorded ? ['recorded'] : ['submitted', 'unknown'];
  const reason = recorded
    ? 'not sent: still recorded, no run sent it before its order window closed'
    : `not sent: claimed for sending as ${intent.status}, but the broker never received it before its order window closed`;
  const result = await ctx.store.settleIntent(
    intent.date,
    intent.clientOrderId,
    from,
    { status: 'expired', reason, updatedAt: now },
    randomUUID(),
  );
  if ('conflict' in result) return null;
  ctx.log.warn('intent never reached the broker before its order window closed: expired', {
    clientOrderId: intent.clientOrderId,
    symbol: intent.symbol,
    status: intent.status,
  });
  await ctx.notifier.publish({
    subject: `Order not sent: ${intent.symbol} ${intent.purpose}`,
    severity: 'critical',
    text: `${intent.clientOrderId} (${intent.side} ${intent.qty} ${intent.symbol}, ${intent.timeInForce}) ${recorded ? 'was recorded but no execute-orders run sent it' : 'was claimed for sending but the broker has no such order'}, and its order window is over: recorded as expired, not sent. Every other symbol goes on. Decide whether the ${intent.purpose} is still wanted.`,
  });
  return result;
}

/**
 * An intent's state as its broker order reports it, working or done: status, order id, fills. The
 * one mapping of broker statuses to intent statuses, for every step that settles an intent from its
 * order (the submission's answer, a duplicate or unknown outcome resolved by the client order id,
 * the risk check's tracking, a stop booked after a refused cancel, a flatten looked up again): a
 * canceled, expired or partly filled order is never recorded as working.
 */
export function orderState(
  order: BrokerOrder,
): Pick<IntentRecord, 'status' | 'brokerOrderId' | 'filledQty'> &
  Partial<Pick<IntentRecord, 'avgFillPrice'>> {
  return {
    status: intentStatusOf(order),
    brokerOrderId: order.id,
    filledQty: order.filledQty,
    ...(order.filledAvgPrice === null ? {} : { avgFillPrice: order.filledAvgPrice }),
  };
}

function intentStatusOf(order: BrokerOrder): IntentStatus {
  if (order.qty > 0 && order.filledQty >= order.qty) return 'filled';
  switch (order.status) {
    case 'filled':
      return 'filled';
    case 'partially_filled':
      return 'partially_filled';
    case 'canceled':
    case 'replaced':
      // A replaced order no longer works (its replacement is another order): as `refusedCancel` says.
      return 'cancelled';
    case 'expired':
    case 'done_for_day':
      return 'expired';
    case 'rejected':
      return 'rejected';
    default:
      return 'accepted';
  }
}

/**
 * Sends the order of an intent already claimed for submission and records the outcome through
 * `settle`. A 422 duplicate counts as placed; a timeout, 5xx or dropped connection is resolved by
 * asking the broker for the client order id, and stays `unknown` (alerted) when the broker cannot
 * say (so is an answer that breaks its schema: a negative quantity is never recorded); a rejection is recorded and alerted. Nothing is ever resent blindly.
 */
export async function sendClaimedIntent(
  ctx: LiveContext,
  intent: IntentRecord,
  settle: (patch: Partial<IntentRecord>) => Promise<unknown>,
  beforeCall: () => Promise<void> = async () => {},
): Promise<void> {
  const lookUp = async () => {
    await beforeCall();
    return ctx.broker.getOrderByClientOrderId(intent.clientOrderId);
  };
  try {
    await beforeCall();
    const order = await ctx.broker.submitOrder({
      clientOrderId: intent.clientOrderId,
      symbol: intent.symbol,
      side: intent.side,
      qty: intent.qty,
      type: intent.type,
      timeInForce: intent.timeInForce,
      ...(intent.limitPrice === undefined ? {} : { limitPrice: intent.limitPrice }),
      ...(intent.stopPrice === undefined ? {} : { stopPrice: intent.stopPrice }),
    });
    await settle(orderState(order));
  } catch (error) {
    if (error instanceof DuplicateClientOrderIdError) {
      const existing = await lookUp();
      await settle(existing === null ? { status: 'unknown', reason: error.message } : orderState(existing));
      return;
    }
    if (error instanceof BrokerRejectedError) {
      await settle({ status: 'rejected', reason: error.message });
      await ctx.notifier.publish({
        subject: `Order rejected by the broker: ${intent.symbol}`,
        severity: 'critical',
        text: `${intent.clientOrderId}: ${error.message}`,
      });
      return;
    }
    // A malformed answer says nothing reliable about the order: its outcome is unknown, like a lost one.
    if (error instanceof BrokerUnavailableError || error instanceof BrokerResponseError) {
      const existing = await lookUp().catch(() => null);
      if (existing !== null) {
        await settle(orderState(existing));
        return;
      }
      await settle({ status: 'unknown', reason: error.message });
      await ctx.notifier.publish({
        subject: `Order outcome unknown: ${intent.symbol}`,
        severity: 'critical',
        text: `${intent.clientOrderId}: ${error.message}. The next run asks the broker by client order id before anything is resent.`,
      });
      return;
    }
    throw error;
  }
}

/**
 * The time a sender stamps on an exit it is about to send (and a risk check judges another
 * sender's stamp by): the later of the step's time `now` (its scheduled time, which a retried run
 * carries long after it) and the clock port's (`ctx.now`: the broker's clock, the exchange's for
 * the crypto bot); `now` when the context has no clock.
 */
export async function senderClock(ctx: Pick<LiveContext, 'now'>, now: string): Promise<string> {
  if (ctx.now === undefined) return now;
  const clock = Date.parse(await ctx.now());
  if (!Number.isFinite(clock))
    throw new InvalidParameterError('sender clock: the clock port answered a time that is not an instant');
  return clock > Date.parse(now) ? new Date(clock).toISOString() : now;
}

/**
 * Records an intent and makes sure its order exists at the broker exactly once, whatever happened
 * to an earlier attempt: a stored intent that is not settled is first looked up by its client order
 * id, and only sent when the broker has never seen it. Returns the intent as stored afterwards.
 * `onCreated` runs once this call's write created the intent (before its send), never for an
 * intent another run recorded.
 *
 * An exit is stamped on the clock ({@link senderClock}, `updatedAt`) at its creation, and again
 * immediately before its send by {@link sendRecordedIntent} (a conditional write on the `updatedAt`
 * read: lost to a writer that settled or superseded it since, nothing is sent). While that stamp is
 * younger than `SENDER_LEASE_SECONDS` this run may still be sending it, and a risk check never
 * supersedes it under another number (`supersedeStaleResend`).
 */
export async function placeIntentOnce(
  ctx: LiveContext,
  intent: IntentRecord,
  now: string,
  onCreated?: () => Promise<void>,
): Promise<IntentRecord> {
  const exit = intent.purpose === 'exit';
  const stamp = exit ? await senderClock(ctx, now) : now;
  const { intent: stored, created } = await ctx.store.createIntent(
    exit ? { ...intent, updatedAt: stamp } : intent,
  );
  if (created && onCreated !== undefined) await onCreated();
  if (!UNSENT.includes(stored.status)) return stored;
  const existing = await ctx.broker.getOrderByClientOrderId(stored.clientOrderId);
  if (existing !== null) return settleIntent(ctx, stored, orderState(existing), now);
  return sendRecordedIntent(ctx, stored, now);
}

/** The states of an intent whose order the broker may not have yet (not settled). */
export const UNSENT: readonly IntentStatus[] = ['recorded', 'submitted', 'unknown'];

/** How many times a sender's stamp is written again after another sender's stamp won. */
const STAMP_ATTEMPTS = 3;

/**
 * The sender's stamp of an exit, written IMMEDIATELY before its send: `updatedAt` set to the clock
 * ({@link senderClock}; never earlier than the stored stamp, and always a new value: at least one
 * millisecond after it) by a conditional write on the intent's status AND on the `updatedAt` read.
 * A risk check supersedes an unsent flatten (`supersedeStaleResend`) by a settle conditional on the
 * same two, so exactly one of the two writes wins: the sender's (the supersede sends nothing) or the
 * supersede's (the sender sends nothing). The lease then covers one request (this send), however
 * long the sender took to get here. Returns the intent to send, or `{ stored }` when it must not be
 * sent: settled or superseded by another writer (as stored now), or still stamped again and again
 * by other senders (one of which sends it).
 */
export async function stampBeforeSend(
  ctx: Pick<LiveContext, 'store' | 'now'>,
  intent: IntentRecord,
  now: string,
): Promise<{ readonly send: IntentRecord } | { readonly stored: IntentRecord }> {
  let current = intent;
  for (let attempt = 0; attempt < STAMP_ATTEMPTS; attempt++) {
    const clock = Date.parse(await senderClock(ctx, now));
    const stamp = new Date(Math.max(clock, Date.parse(current.updatedAt) + 1)).toISOString();
    const stamped = await ctx.store.transitionIntent(
      current.date,
      current.clientOrderId,
      [current.status],
      { updatedAt: stamp },
      { updatedAt: current.updatedAt },
    );
    if (!('conflict' in stamped)) return { send: stamped };
    const fresh = await ctx.store.getIntent(current.date, current.clientOrderId);
    if (fresh === undefined || !UNSENT.includes(fresh.status)) return { stored: fresh ?? current };
    current = fresh;
  }
  return { stored: current };
}

/**
 * The `updatedAt` to write on an intent stamped `stamp` whose write leaves it `status`: `now`, but
 * never earlier than its stamp while it stays unsent (`recorded`, `submitted`, `unknown`): a
 * retried run's step time is earlier than the clock its sender stamped, and a lower stamp would
 * make a risk check take the intent as past the senders' lease too soon (`supersedeStaleResend`).
 */
export function unsentStamp(status: IntentStatus | undefined, stamp: string, now: string): string {
  if (status === undefined || !UNSENT.includes(status)) return now;
  return Date.parse(stamp) > Date.parse(now) ? stamp : now;
}

/**
 * Writes an outcome onto an intent not settled yet (a conditional write from `recorded`,
 * `submitted` or `unknown`) and returns the intent as stored: the other writer's version when it
 * settled the intent first. `updatedAt` is `now`, never lower than its stamp when it stays unsent
 * ({@link unsentStamp}).
 */
async function settleIntent(
  ctx: LiveContext,
  intent: IntentRecord,
  patch: Partial<IntentRecord>,
  now: string,
): Promise<IntentRecord> {
  const result = await ctx.store.transitionIntent(intent.date, intent.clientOrderId, UNSENT, {
    ...patch,
    updatedAt: unsentStamp(patch.status, intent.updatedAt, now),
  });
  return 'conflict' in result
    ? ((await ctx.store.getIntent(intent.date, intent.clientOrderId)) ?? intent)
    : result;
}

/**
 * How long after it created an exit (its creation stamp on its own clock) a run may send it without
 * the stamp before its POST (`sendRecordedIntent`'s `fresh`): far inside the senders' lease
 * (`SENDER_LEASE_SECONDS`, 210 s), so no risk check can have judged the exit past the lease and
 * superseded it meanwhile unless its clock runs ahead of the sender's by more than the difference
 * (three minutes; the hosts' and the broker's clocks agree within a second). The stream's exit,
 * sent within milliseconds of its creation, saves the two round trips (the clock, the stamp's write).
 */
export const FRESH_EXIT_MS = 30_000;

/**
 * Sends the order of an intent already recorded and not yet at the broker (see
 * `sendClaimedIntent`), stores the outcome, and returns the intent as stored afterwards. An exit is
 * first stamped ({@link stampBeforeSend}): when that write loses (settled or superseded since the
 * caller read it) nothing is sent and the intent is returned as stored. `fresh`: the caller created
 * this exit itself less than {@link FRESH_EXIT_MS} ago (measured on its own monotonic clock from
 * before its creation): no stamp, as no supersede can have taken it yet.
 */
export async function sendRecordedIntent(
  ctx: LiveContext,
  intent: IntentRecord,
  now: string,
  fresh = false,
): Promise<IntentRecord> {
  let toSend = intent;
  if (intent.purpose === 'exit' && !fresh) {
    const stamped = await stampBeforeSend(ctx, intent, now);
    if ('stored' in stamped) {
      ctx.log.info('exit not sent: another writer settled it or is sending it', {
        clientOrderId: intent.clientOrderId,
        status: stamped.stored.status,
      });
      return stamped.stored;
    }
    toSend = stamped.send;
  }
  let latest = toSend;
  await sendClaimedIntent(ctx, toSend, async (patch) => {
    latest = await settleIntent(ctx, toSend, patch, now);
  });
  return latest;
}
