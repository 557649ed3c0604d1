import { randomUUID } from 'node:crypto';
import { CacheError } from '../core/errors.js';
import { isAtOpenOrder, orderStyle } from '../core/live/order-style.js';
import { intentLimitViolations } from '../core/live/orders.js';
import type { BrokerOrder } from '../core/ports/broker.js';
import type { IntentRecord, IntentStatus } from '../core/ports/state-store.js';
import { type LiveContext, NoSessionError, sessionDate } from './context.js';
import { checkedAt, cutoffRecheck, cutoffSkippedAlert } from './cutoff.js';
import { dryRunOrders } from './dry-run.js';
import { entryRefusal } from './entry-gate.js';
import { type ReconciliationResult, reconcile } from './reconcile.js';
import { carriesExit, exitingSleeves, netSleeveLegs } from './sleeves.js';
import { EXECUTE_ORDERS_TIMEOUT_SECONDS } from './steps.js';
import { cancelRestingStops } from './stops.js';
import { expireUnsent, orderState, sendClaimedIntent, stampBeforeSend, unsentStamp } from './submit.js';

/** Statuses that count as an order sent to the broker today (for the orders-per-day limit). */
const SENT: readonly IntentStatus[] = [
  'submitted',
  'accepted',
  'partially_filled',
  'filled',
  'cancelled',
  'expired',
  'unknown',
];

/** What execute-orders did with each intent. */
export interface ExecutionResult {
  readonly day: string;
  readonly status: 'closed' | 'locked' | 'executed' | 'past-cutoff';
  readonly intents: readonly {
    readonly clientOrderId: string;
    readonly status: IntentStatus;
    readonly reason?: string;
  }[];
  /** The reconciliation run before any order (executed runs only). */
  readonly reconciliation?: ReconciliationResult;
}

/**
 * The cache's lock and shared rate limiter for one run, failing OPEN: Redis is an accelerator, so
 * when it cannot be reached the run goes on without them (warned once), and the DynamoDB claims
 * (recorded → submitted, a conditional write) and the deterministic client order ids keep every
 * order exactly once; the broker adapter keeps its own client-side rate limit.
 */
function cacheGuard(ctx: LiveContext) {
  let down = ctx.cache === undefined;
  const failOpen = (operation: string, error: unknown) => {
    if (!(error instanceof CacheError)) throw error;
    if (!down) {
      ctx.log.warn(
        'cache unavailable: going on without the lock and the shared rate limiter; the DynamoDB claims keep each order once',
        { operation, error: error.message },
      );
    }
    down = true;
  };
  return {
    /**
     * The day's lock in `owner`'s name (reentrant for it): a release function, null when another
     * run holds it, a no-op when failing open.
     */
    async lock(name: string, ttlSeconds: number, owner: string): Promise<(() => Promise<void>) | null> {
      if (down || ctx.cache === undefined) return async () => {};
      try {
        return await ctx.cache.acquireLock(name, ttlSeconds, owner);
      } catch (error) {
        failOpen('acquireLock', error);
        return async () => {};
      }
    },
    /** Waits for a slot of the broker's rate limit (200 requests a minute). */
    async rateSlot(): Promise<void> {
      for (let attempt = 0; attempt < 20; attempt++) {
        if (down || ctx.cache === undefined) return;
        let wait: number;
        try {
          wait = await ctx.cache.takeRateSlot('alpaca', ctx.brokerRateLimit ?? 200, 60);
        } catch (error) {
          failOpen('takeRateSlot', error);
          return;
        }
        if (wait === 0) return;
        await new Promise((resolve) => setTimeout(resolve, wait));
      }
    },
  };
}

/**
 * execute-orders: sends today's recorded intents as market-on-open orders, exits first, exactly
 * once each. The intent moves recorded → submitted with a conditional write before the call, so
 * a concurrent or repeated run cannot claim it twice, and a claim another run made less than the
 * function's timeout ago is left to that run to send (the claim lease); the deterministic client
 * order id makes a broker-side duplicate impossible; an unknown outcome (timeout, 5xx, dropped connection) is
 * resolved by asking the broker for the client order id, never by resending blindly.
 */
export async function executeOrders(ctx: LiveContext, scheduledTime: string): Promise<ExecutionResult> {
  const day = sessionDate(ctx, scheduledTime);
  const session = await ctx.store.getSession(day);
  if (session === undefined)
    throw new NoSessionError(`no session record for ${day}: the market-open check did not run`);
  if (!session.isOpen) return { day, status: 'closed', intents: [] };
  // The crypto bot's paper stage: every intent recorded with the best bid/ask, no order sent.
  if (ctx.crypto?.dryRun === true) return dryRunOrders(ctx, day, scheduledTime);

  const cache = cacheGuard(ctx);
  const rateSlot = () => cache.rateSlot();
  // Held in the name of this scheduled run: its retry (after a timeout that never released it) and
  // the client's retry of a lock whose answer was lost get it again, and so does a concurrent run
  // of the same schedule (it leaves the intents this one claimed to it: the claim lease); another
  // run is kept out (and what it leaves recorded past the cutoff, the risk check expires and alerts).
  const release = await cache.lock(`execute-orders:${day}`, 300, `execute-orders@${scheduledTime}`);
  if (release === null) {
    ctx.log.warn('another execute-orders run holds the lock for the day', { day, scheduledTime });
    return { day, status: 'locked', intents: [] };
  }
  try {
    // Reconciliation before any order: a difference goes to the UNASSIGNED bucket and its symbol's
    // entries are refused below (entryRefusal); exits and stops go on.
    const reconciliation = await reconcile(ctx, day, scheduledTime);
    const style = orderStyle(ctx.config);
    // The cutoff is checked at the later of the scheduled time and the clock: a retry of the 09:15
    // run carries 09:15 whenever it starts. Asked before netting, so the legs are netted (or
    // skipped) by the broker's clock too.
    const at = await checkedAt(ctx, scheduledTime, (t) => style.beforeCutoff(t, day));
    // A sleeves config: the day's legs are netted per symbol into one order intent first.
    if (ctx.config.sleeves !== undefined) await netSleeveLegs(ctx, day, at);
    const all = await ctx.store.listIntents(day);
    const pending = all
      .filter((i) => i.leg !== true)
      .filter((i) => i.status === 'recorded' || i.status === 'submitted' || i.status === 'unknown')
      .sort((a, b) => (a.purpose === 'exit' ? 0 : 1) - (b.purpose === 'exit' ? 0 : 1));
    const outcome: { clientOrderId: string; status: IntentStatus; reason?: string }[] = [];
    const now = () => at;
    // Near the cutoff the clock is asked again before each send (the sends come later in the run),
    // each ask in a slot of the shared rate limit.
    const stillBeforeCutoff = cutoffRecheck(ctx, day, at, style, rateSlot);
    const transition = async (
      intent: IntentRecord,
      from: readonly IntentStatus[],
      patch: Partial<IntentRecord>,
      /** The sender's stamp on the intent: never lowered while it stays unsent (`unsentStamp`). */
      stamp?: string,
    ) => {
      const result = await ctx.store.transitionIntent(day, intent.clientOrderId, from, {
        ...patch,
        updatedAt: stamp === undefined ? now() : unsentStamp(patch.status, stamp, now()),
      });
      if ('conflict' in result) return null;
      outcome.push({
        clientOrderId: intent.clientOrderId,
        status: result.status,
        ...(result.reason ? { reason: result.reason } : {}),
      });
      return result;
    };

    // Orders decided at the close (equity: market-on-open; crypto: market IOC) go out before the
    // session's cutoff only: after it, skipped and alerted, never sent late (core/live/order-style.ts).
    const pastCutoff = !style.beforeCutoff(at, day);
    if (pastCutoff) {
      for (const intent of pending.filter((i) => i.status === 'recorded' && isAtOpenOrder(style, i))) {
        await transition(intent, ['recorded'], {
          status: 'skipped',
          reason: `after ${style.cutoffLabel}`,
        });
      }
      if (outcome.length > 0) {
        await ctx.notifier.publish(
          cutoffSkippedAlert(
            style,
            day,
            `The cutoff passed before they were sent: ${outcome.map((o) => o.clientOrderId).join(', ')}`,
          ),
        );
      }
      // Intents already submitted are still resolved below.
    }

    // A net order that carries a sleeve's exit is never refused (exits never wait).
    const refusable = (i: IntentRecord) => i.purpose === 'entry' && !carriesExit(i);
    const refusal = pending.some((i) => refusable(i) && i.status === 'recorded')
      ? await entryRefusal(ctx, day)
      : null;
    if (refusal !== null) {
      const refused: string[] = [];
      for (const intent of pending.filter((i) => refusable(i) && i.status === 'recorded')) {
        if (
          await transition(intent, ['recorded'], { status: 'skipped', reason: `entry refused: ${refusal}` })
        )
          refused.push(intent.clientOrderId);
      }
      if (refused.length > 0) {
        await ctx.notifier.publish({
          subject: `Entries refused on ${day}`,
          severity: 'critical',
          text: `${refusal}
Not sent (exits and stops go on): ${refused.join(', ')}`,
        });
      }
    }

    let sentToday = all.filter((i) => SENT.includes(i.status)).length;
    const accept = (intent: IntentRecord, order: BrokerOrder) =>
      transition(intent, ['submitted', 'unknown', 'recorded'], orderState(order));
    const lookUp = async (intent: IntentRecord): Promise<BrokerOrder | null> => {
      await rateSlot();
      return ctx.broker.getOrderByClientOrderId(intent.clientOrderId);
    };

    const lateRefusals: string[] = [];
    const lateSkips: string[] = [];
    // Exits whose resting stops this run cancelled, and the symbols of those the cutoff then kept back.
    const stopsCancelled: IntentRecord[] = [];
    const unprotected: string[] = [];
    const claimToken = randomUUID();
    for (const intent of pending) {
      // The intent as this run last read or wrote it (its claim, once claimed).
      let sending = intent;
      if (leasedToAnotherRun(intent, now())) {
        // Its claimant may still be on its way to the broker (a concurrent run of the same schedule
        // gets past the lock, reentrant for it): the claim is its own to send.
        ctx.log.info('intent claimed by another run less than the function timeout ago: left to it', {
          clientOrderId: intent.clientOrderId,
          claimedBy: intent.claimedBy ?? null,
          claimedAt: intent.updatedAt,
        });
        continue;
      }
      if (intent.status !== 'recorded') {
        // A run died between recording the submission and hearing back: ask the broker first.
        const existing = await lookUp(intent);
        if (existing !== null) {
          await accept(intent, existing);
          continue;
        }
        if (pastCutoff && isAtOpenOrder(style, intent)) {
          const expired = await expireUnsent(ctx, intent, now());
          if (expired !== null) outcome.push({ clientOrderId: intent.clientOrderId, status: expired.status });
          continue;
        }
      } else if (pastCutoff && isAtOpenOrder(style, intent)) {
        continue;
      }
      if (intent.status === 'recorded') {
        if (refusal !== null && refusable(intent)) continue;
        if (isAtOpenOrder(style, intent) && !(await stillBeforeCutoff())) {
          // The cutoff passed while the run went on: skipped and alerted, as past-cutoff intents are.
          const skipped = await transition(intent, ['recorded'], {
            status: 'skipped',
            reason: `after ${style.cutoffLabel}`,
          });
          if (skipped !== null) lateSkips.push(intent.clientOrderId);
          continue;
        }
        const violations = intentLimitViolations(intent, sentToday, ctx.config.live.limits);
        if (violations.length > 0) {
          await transition(intent, ['recorded'], {
            status: 'rejected',
            reason: `hard limit: ${violations.join('; ')}`,
          });
          await ctx.notifier.publish({
            subject: `Order refused by a hard limit: ${intent.symbol}`,
            severity: 'critical',
            text: `${intent.clientOrderId}: ${violations.join('; ')}`,
          });
          continue;
        }
        if (intent.purpose === 'exit' || carriesExit(intent)) {
          await cancelRestingStops(
            ctx,
            intent,
            rateSlot,
            intent.legIds === undefined ? undefined : exitingSleeves(intent, all),
          );
          stopsCancelled.push(intent);
        }
        // Claimed with this run's token: a claim whose answer was lost is still known as ours.
        const claimed = await ctx.store.claimIntent(day, intent.clientOrderId, { by: claimToken, at: now() });
        if ('conflict' in claimed) continue; // another run or writer changed it first
        sending = claimed;
      }
      if (refusable(intent)) {
        // The halt is asked again before EACH entry: a kill switch that lands mid-run stops the rest.
        // A net order's legs were each asked for their own sleeve when they were netted (a refused
        // entry leg was dropped then): here the account and the symbol are asked again.
        const late = await entryRefusal(
          ctx,
          day,
          intent.symbol,
          intent.legIds === undefined ? intent.sleeve : undefined,
        );
        if (late !== null) {
          const skipped = await transition(intent, ['submitted', 'unknown'], {
            status: 'skipped',
            reason: `entry refused: ${late}`,
          });
          if (skipped !== null) lateRefusals.push(`${intent.clientOrderId} (${late})`);
          continue;
        }
      }
      // The rate slot is taken before the clock is asked again, so no wait for it comes between the
      // last check and the POST (the send's first call then takes none).
      let slotTaken = false;
      if (isAtOpenOrder(style, intent)) {
        await rateSlot();
        slotTaken = true;
        if (!(await stillBeforeCutoff())) {
          // Claimed (by this run or an earlier one) and the cutoff passed before its send: never sent late.
          const claimed: IntentRecord =
            intent.status === 'recorded' ? { ...intent, status: 'submitted' } : intent;
          const expired = await expireUnsent(ctx, claimed, now());
          if (expired !== null) outcome.push({ clientOrderId: intent.clientOrderId, status: expired.status });
          if (stopsCancelled.includes(intent)) unprotected.push(intent.symbol);
          continue;
        }
      }
      if (intent.purpose === 'exit') {
        // Stamped on the clock immediately before the send, on the updatedAt this run read or
        // claimed (`stampBeforeSend`): a risk check that superseded it since wins, nothing is sent.
        const stamped = await stampBeforeSend(ctx, sending, now());
        if ('stored' in stamped) {
          ctx.log.info('exit not sent: another writer settled it or is sending it', {
            clientOrderId: intent.clientOrderId,
            status: stamped.stored.status,
          });
          continue;
        }
        sending = stamped.send;
      }
      sentToday++;
      let lost = false;
      await sendClaimedIntent(
        ctx,
        intent,
        async (patch) => {
          lost =
            (await transition(intent, ['submitted', 'unknown', 'recorded'], patch, sending.updatedAt)) ===
            null;
        },
        async () => {
          if (slotTaken) slotTaken = false;
          else await rateSlot();
        },
      );
      if (lost && intent.purpose === 'entry') await cancelIfHalted(ctx, intent);
    }
    if (unprotected.length > 0) {
      // The exit's resting stops were cancelled for it, and the cutoff then kept it from being sent.
      await ctx.notifier.publish({
        subject: `Stops cancelled for an exit not sent: ${unprotected.join(', ')}`,
        severity: 'critical',
        text: `The cutoff passed between cancelling the resting stops of ${unprotected.join(', ')} and sending the exit: no stop rests for these shares until the next risk check places one. Check the positions.`,
      });
    }
    if (lateSkips.length > 0) {
      await ctx.notifier.publish(
        cutoffSkippedAlert(
          style,
          day,
          `The cutoff passed while execute-orders ran, before they were sent: ${lateSkips.join(', ')}`,
        ),
      );
    }
    if (lateRefusals.length > 0) {
      await ctx.notifier.publish({
        subject: `Entries refused on ${day}`,
        severity: 'critical',
        text: `A halt landed while execute-orders ran. Not sent (exits and stops go on): ${lateRefusals.join(', ')}`,
      });
    }
    return { day, status: 'executed', intents: outcome, reconciliation };
  } finally {
    await release();
  }
}

/**
 * The claim lease: an intent another run claimed for sending (`submitted`, listed before this run
 * claimed anything) less than execute-orders' timeout ago, by the claim's time (`updatedAt`, written
 * with the claim) against this run's: its claimant may still be alive and about to send it. From the
 * timeout on, no run that claimed it can be (a retry after a timeout, or after a failure once the
 * lease ran out, sends it after asking the broker). `unknown` is never leased: its sender is done
 * with it and left it to the next run.
 */
function leasedToAnotherRun(intent: IntentRecord, now: string): boolean {
  if (intent.status !== 'submitted') return false;
  const age = Date.parse(now) - Date.parse(intent.updatedAt);
  return Number.isFinite(age) && age < EXECUTE_ORDERS_TIMEOUT_SECONDS * 1000;
}

/**
 * An entry whose answer came back after the kill switch cancelled its claim (the halt landed while
 * the order was on its way): the second to arrive cancels, so the order is cancelled at once.
 */
async function cancelIfHalted(ctx: LiveContext, intent: IntentRecord): Promise<void> {
  const stored = await ctx.store.getIntent(intent.date, intent.clientOrderId);
  if (stored === undefined || (stored.status !== 'cancelled' && stored.status !== 'skipped')) return;
  const order = await ctx.broker.getOrderByClientOrderId(intent.clientOrderId);
  if (order === null || ['filled', 'canceled', 'expired', 'rejected'].includes(order.status)) return;
  await ctx.broker.cancelOrder(order.id);
  ctx.log.warn('entry cancelled at the broker: the kill switch cancelled its claim while it was sent', {
    clientOrderId: intent.clientOrderId,
    orderId: order.id,
  });
}
