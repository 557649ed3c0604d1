/**
 * The crypto bot's dry run, its paper stage (Coinbase has no paper trading): execute-orders hands
 * the day's recorded intents here instead of sending them. Each is checked as the live path checks
 * it (the kill switch and breakers for entries, the hard limits), then recorded in the bot's table
 * with the best bid and ask at that moment and what a market order would have paid, marked
 * `skipped` with the reason `dry run`, and reported through the Notifier. No order is sent: the
 * dry-run broker refuses any order that would reach the exchange (a risk check's stop, a kill
 * switch's exit) with `DryRunOrderRefusedError`.
 */
import { DryRunOrderRefusedError } from '../core/errors.js';
import { intentLimitViolations } from '../core/live/orders.js';
import type { Broker, BrokerOrder, OrderRequest } from '../core/ports/broker.js';
import type { DryRunRecord } from '../core/ports/crypto-store.js';
import type { BestBidAsk } from '../core/ports/market-data.js';
import type { IntentRecord, IntentStatus } from '../core/ports/state-store.js';
import { type LiveContext, UnknownStateError } from './context.js';
import { entryRefusal } from './entry-gate.js';

/** The reason every dry-run intent is skipped with (a prefix: the book follows). */
export const DRY_RUN_REASON = 'dry run: not sent';

/** What the dry run did with the day's intents (the shape of execute-orders' result, plus the records). */
export interface DryRunResult {
  readonly day: string;
  readonly status: 'executed';
  readonly intents: readonly {
    readonly clientOrderId: string;
    readonly status: IntentStatus;
    readonly reason?: string;
  }[];
  /** The decisions recorded by this run (a retried run records none twice). */
  readonly dryRun: readonly DryRunRecord[];
}

const bps = (x: number) => Math.round(x * 1e4 * 100) / 100;

/** The decision as it would have met the book: a buy pays the ask, a sell gets the bid. */
export function dryRunRecord(intent: IntentRecord, quote: BestBidAsk, decidedAt: string): DryRunRecord {
  const mid = (quote.bid + quote.ask) / 2;
  return {
    date: intent.date,
    clientOrderId: intent.clientOrderId,
    symbol: intent.symbol,
    purpose: intent.purpose,
    side: intent.side,
    qty: intent.qty,
    type: intent.type,
    ...(intent.stopPrice === undefined ? {} : { stopPrice: intent.stopPrice }),
    ...(intent.limitPrice === undefined ? {} : { limitPrice: intent.limitPrice }),
    referencePrice: intent.referencePrice,
    bid: quote.bid,
    ask: quote.ask,
    quoteTime: quote.time,
    wouldPay: intent.side === 'buy' ? quote.ask : quote.bid,
    spreadBps: bps((quote.ask - quote.bid) / mid),
    decidedAt,
  };
}

/**
 * The dry run of execute-orders for `day` (called by it when the context's `crypto.dryRun` is
 * set): records and reports every recorded intent with the best bid/ask, sends nothing.
 */
export async function dryRunOrders(
  ctx: LiveContext,
  day: string,
  scheduledTime: string,
): Promise<DryRunResult> {
  const crypto = ctx.crypto;
  if (crypto === undefined || !crypto.dryRun) {
    throw new UnknownStateError('dry run asked for a context without the crypto dry run');
  }
  const recorded = (await ctx.store.listIntents(day))
    .filter((i) => i.status === 'recorded')
    .sort((a, b) => (a.purpose === 'exit' ? 0 : 1) - (b.purpose === 'exit' ? 0 : 1));
  const outcome: DryRunResult['intents'][number][] = [];
  const records: DryRunRecord[] = [];
  if (recorded.length === 0) return { day, status: 'executed', intents: outcome, dryRun: records };

  const transition = async (intent: IntentRecord, status: IntentStatus, reason: string) => {
    const result = await ctx.store.transitionIntent(day, intent.clientOrderId, ['recorded'], {
      status,
      reason,
      updatedAt: scheduledTime,
    });
    if (!('conflict' in result)) outcome.push({ clientOrderId: intent.clientOrderId, status, reason });
  };
  const refusal = recorded.some((i) => i.purpose === 'entry') ? await entryRefusal(ctx, day) : null;
  const symbols = [...new Set(recorded.map((i) => i.symbol))];
  const quotes = new Map((await crypto.quotes.getBestBidAsk(symbols)).map((q) => [q.symbol, q]));
  let counted = 0;
  for (const intent of recorded) {
    if (refusal !== null && intent.purpose === 'entry') {
      await transition(intent, 'skipped', `entry refused: ${refusal}`);
      continue;
    }
    const violations = intentLimitViolations(intent, counted, ctx.config.live.limits);
    if (violations.length > 0) {
      await transition(intent, 'rejected', `hard limit: ${violations.join('; ')}`);
      continue;
    }
    const quote = quotes.get(intent.symbol) as BestBidAsk;
    const record = dryRunRecord(intent, quote, scheduledTime);
    if (await crypto.records.putDryRun(record)) records.push(record);
    counted++;
    await transition(
      intent,
      'skipped',
      `${DRY_RUN_REASON} (bid ${quote.bid}, ask ${quote.ask} at ${quote.time})`,
    );
  }
  if (records.length > 0 || outcome.some((o) => o.status !== 'skipped')) {
    const lines = records.map((r) => {
      const vsDecision = bps(
        ((r.wouldPay - r.referencePrice) / r.referencePrice) * (r.side === 'buy' ? 1 : -1),
      );
      return `${r.side} ${r.qty} ${r.symbol} (${r.purpose}): bid ${r.bid} / ask ${r.ask} (spread ${r.spreadBps} bps), would pay ${r.wouldPay}, ${vsDecision} bps from the decision close ${r.referencePrice}`;
    });
    const other = outcome
      .filter((o) => !o.reason?.startsWith(DRY_RUN_REASON))
      .map((o) => `${o.clientOrderId}: ${o.reason}`);
    await ctx.notifier.publish({
      subject: `Crypto dry run on ${day}: ${records.length} intent(s) recorded, no order sent`,
      severity: other.length > 0 ? 'warning' : 'info',
      text: [...lines, ...other].join('\n'),
    });
  }
  return { day, status: 'executed', intents: outcome, dryRun: records };
}

/**
 * The broker of a dry run: reads go to the exchange, an order submission or cancellation is
 * refused with {@link DryRunOrderRefusedError} before anything is sent.
 */
export class DryRunBroker implements Broker {
  constructor(private readonly inner: Broker) {}
  getAccount() {
    return this.inner.getAccount();
  }
  getPositions() {
    return this.inner.getPositions();
  }
  async submitOrder(order: OrderRequest): Promise<BrokerOrder> {
    throw new DryRunOrderRefusedError(
      `dry run: order ${order.clientOrderId} (${order.side} ${order.qty} ${order.symbol}) not sent: the crypto bot's paper stage sends no order`,
    );
  }
  getOrderByClientOrderId(clientOrderId: string) {
    return this.inner.getOrderByClientOrderId(clientOrderId);
  }
  listOrders(filter: Parameters<Broker['listOrders']>[0]) {
    return this.inner.listOrders(filter);
  }
  async cancelOrder(orderId: string): Promise<void> {
    throw new DryRunOrderRefusedError(
      `dry run: cancel of order ${orderId} not sent: the crypto bot's paper stage sends nothing`,
    );
  }
  getActivities(filter: Parameters<Broker['getActivities']>[0]) {
    return this.inner.getActivities(filter);
  }
  getClock() {
    return this.inner.getClock();
  }
  getCalendar(range: Parameters<Broker['getCalendar']>[0]) {
    return this.inner.getCalendar(range);
  }
}
