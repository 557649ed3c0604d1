/**
 * Event-driven intraday risk on live prices. The stream consumer hands every market message to
 * {@link StreamRiskEngine.onMarket}; for a symbol the account holds, the engine marks it, asks the
 * core ({@link intradayStop}, the risk check's own stop test and the daily path's trailing rules)
 * whether the stop is crossed or the trailing stop ratchets, and feeds the marked equity to the
 * same breakers ({@link observeEquity}). What it then does goes through the paths the scheduled
 * functions use, so the two can never both act:
 *
 * - **Exit**: the intent is recorded first under the risk check's own deterministic client order
 *   id for a flatten (`...-flatten`), the resting stops at the broker are cancelled, and the market
 *   order is sent by `placeIntentOnce`: whichever of the stream and the risk check comes second
 *   finds the intent (or the broker's 422 for the id) and sends nothing. A stop that filled before
 *   it could be cancelled sold the shares: the exit is not sent (its intent `skipped`), the stop
 *   is booked as the broker has it and alerted; one that fills during the sweep after the exit is
 *   booked and alerted the same way (both sold: the position may be reversed).
 * - **Ratchet**: the tighter stop is written to the positions record, then the risk check itself
 *   runs (`riskCheck`), which replaces the resting stop as it always does.
 * - **Entry filled**: a poll of today's open entry intents sees the fill and runs the risk check at
 *   once, which places the protective stop (instead of waiting up to 15 minutes).
 * - **Breaker**: a trip on marked equity is stored (a conditional write on the risk state),
 *   alerted, and flattens when the rules say so; entries are blocked by the stored state as usual.
 *
 * The engine never places an entry.
 */
import { QuantShiftError } from '../core/errors.js';
import { atr as atrSeries } from '../core/indicators/atr.js';
import { clientOrderId, newYorkTime, orderDateOf, STOP_ORDER_TYPES } from '../core/live/orders.js';
import { isUnassigned, sleeveRecords, sleevesShare } from '../core/live/reconcile.js';
import { unlistedSplitOf } from '../core/live/split-guard.js';
import type { Broker, BrokerOrder } from '../core/ports/broker.js';
import type { IntentRecord, IntentStatus, PositionRecord } from '../core/ports/state-store.js';
import { initialRiskState, observeEquity, type RiskState } from '../core/risk/breakers.js';
import { intradayStop } from '../core/risk/intraday.js';
import type { LiveContext } from '../live/context.js';
import {
  type DaySplit,
  intentFills,
  listedSplits,
  splitKeys,
  splitRecords,
  splitsToApply,
} from '../live/positions.js';
import { bookedByList, listAsOf, listBookedFills } from '../live/reconcile.js';
import { riskCheck } from '../live/risk-check.js';
import { bookStopOrder, refusedCancel } from '../live/stops.js';
import { FRESH_EXIT_MS, placeIntentOnce, sendRecordedIntent } from '../live/submit.js';
import type { MarketMessage } from './consumer.js';
import type { LatencyRecorder } from './latency.js';

/**
 * A stream exit that cancelled the resting stop and then failed before its order was sent: the
 * position has no stop at the broker until the next attempt or the risk check.
 */
export class StreamExitIncompleteError extends QuantShiftError {}

const OPEN: readonly IntentStatus[] = ['recorded', 'submitted', 'unknown'];
/** After a failed action, a symbol's next one waits this long (the 15-minute risk check goes on). */
const FAILURE_PAUSE_MS = 30_000;
const WORKING_ENTRY: readonly IntentStatus[] = ['submitted', 'accepted', 'partially_filled', 'unknown'];
/** While a held symbol shows a split its list has not applied, the day's splits are read this often at most. */
const SPLITS_READ_MS = 60_000;

interface Held {
  readonly symbol: string;
  readonly side: 1 | -1;
  readonly qty: number;
  readonly entryPrice: number;
  readonly initialRisk: number;
  readonly sessionsHeld: number;
  stop: number | null;
  atr: number;
  lastPrice: number;
}

export interface StreamEngineOptions {
  readonly ctx: LiveContext;
  /** Wall clock (epoch ms); the local replay drives it from the replayed data. */
  readonly now: () => number;
  readonly latency: LatencyRecorder;
  /** A ratchet is applied when the stop tightens by at least this many ATRs (default 0.25). */
  readonly ratchetStepAtr?: number;
  /** At most one ratchet per symbol in this many ms (default 60 s): the broker's rate limit. */
  readonly ratchetIntervalMs?: number;
  /** Whether the trailing stop ratchets on live prices (default true). */
  readonly intradayTrail?: boolean;
}

/** Wraps a broker so the instant each order POST is issued is known (the latency's last stage). */
function timedBroker(broker: Broker, sent: Map<string, number>): Broker {
  return new Proxy(broker, {
    get(target, property, receiver) {
      if (property === 'submitOrder') {
        return (order: Parameters<Broker['submitOrder']>[0]) => {
          sent.set(order.clientOrderId, performance.now());
          return target.submitOrder(order);
        };
      }
      const value = Reflect.get(target, property, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

export class StreamRiskEngine {
  private readonly ctx: LiveContext;
  private readonly sent = new Map<string, number>();
  private readonly held = new Map<string, Held>();
  private readonly busy = new Set<string>();
  private readonly lastRatchet = new Map<string, number>();
  /** When an action for a symbol last failed (it waits {@link FAILURE_PAUSE_MS} before the next). */
  private readonly failedAt = new Map<string, number>();
  private readonly atrByDay = new Map<string, number>();
  private readonly inFlight = new Set<Promise<unknown>>();
  /**
   * The stop orders resting at the broker per symbol, as the last refresh listed them (and less
   * those the engine cancelled since): an exit cancels them at once, while its intent is written.
   */
  private readonly resting = new Map<string, readonly BrokerOrder[]>();
  /** Symbols with a flatten intent today (recorded by anyone, settled or not). */
  private readonly flattened = new Set<string>();
  /** Symbols whose unlisted split the stream has logged today (emptied at a new day). */
  private readonly unlistedLogged = new Set<string>();
  /**
   * The day's splits the broker's activities list, as last read (only while a held symbol's position
   * shows a split its list has not applied: see {@link load}), and when (epoch ms): read at most
   * once a {@link SPLITS_READ_MS}.
   */
  private listedToday: readonly DaySplit[] = [];
  /**
   * The list `load` last applied the day's listed splits to (its date and `writtenAt`) and those
   * splits: a ratchet applies them only to that same list (one written since has its own shares).
   */
  private splitApplied: {
    readonly date: string;
    readonly writtenAt: string | undefined;
    readonly splits: DaySplit[];
  } | null = null;
  private splitsReadAt = Number.NEGATIVE_INFINITY;
  private day: string | null = null;
  private active = false;
  private cash = 0;
  /** Sum of side x qty x last price over the held positions, kept as prices move. */
  private positionValue = 0;
  private risk: { state: RiskState; version: number } | undefined;
  private workingEntries = 0;
  /** Exits between their decision and their order POST (see {@link exiting}). */
  private exitsBeforeOrder = 0;
  /** What the engine did, for metrics and tests. */
  readonly counts = { decisions: 0, exits: 0, stopsPlaced: 0, ratchets: 0, breakerTrips: 0, errors: 0 };
  /** Exits sent: client order id -> the reason. */
  readonly exits = new Map<string, string>();

  constructor(private readonly options: StreamEngineOptions) {
    this.ctx = { ...options.ctx, broker: timedBroker(options.ctx.broker, this.sent) };
  }

  /** The symbols held now (subscribe their trades and quotes). */
  heldSymbols(): string[] {
    return [...this.held.keys()];
  }

  /** Whether the session is open and the engine acts on prices. */
  get isActive(): boolean {
    return this.active;
  }

  /**
   * Reloads the day's session, the positions (broker), their stops (the positions record, or the
   * filled entry's protective stop), cash and the risk state; runs the risk check at once when a
   * working entry has filled since the last look (the protective stop goes on immediately).
   */
  async refresh(): Promise<void> {
    const { ctx } = this;
    const nowIso = new Date(this.options.now()).toISOString();
    const day = newYorkTime(nowIso).date;
    if (this.day !== day) {
      this.flattened.clear();
      this.unlistedLogged.clear();
      this.listedToday = [];
      this.splitApplied = null;
      this.splitsReadAt = Number.NEGATIVE_INFINITY;
    }
    this.day = day;
    // Send times of orders the engine did not time itself (the risk check's stops): keep a minute.
    const horizon = performance.now() - 60_000;
    for (const [id, at] of this.sent) if (at < horizon) this.sent.delete(id);
    const session = await ctx.store.getSession(day);
    const now = Date.parse(nowIso);
    this.active =
      session?.isOpen === true &&
      session.openAt !== null &&
      session.closeAt !== null &&
      now >= Date.parse(session.openAt) &&
      now < Date.parse(session.closeAt);
    if (!this.active) {
      this.held.clear();
      return;
    }
    const intents = await ctx.store.listIntents(day);
    const working = intents.filter((i) => i.purpose === 'entry' && WORKING_ENTRY.includes(i.status));
    let filledSince = false;
    for (const intent of working) {
      const order = await ctx.broker.getOrderByClientOrderId(intent.clientOrderId);
      if (order !== null && order.filledQty > intent.filledQty) filledSince = true;
    }
    this.workingEntries = working.length;
    if (filledSince) {
      const result = await riskCheck(ctx, nowIso);
      this.counts.stopsPlaced += result.stopsPlaced.length;
    }
    await this.load(day, filledSince ? await ctx.store.listIntents(day) : intents);
  }

  private async load(day: string, intents: readonly IntentRecord[]): Promise<void> {
    const { ctx } = this;
    const [positions, stored, account, risk, open] = await Promise.all([
      ctx.broker.getPositions(),
      ctx.store.getLatestPositions(),
      ctx.broker.getAccount(),
      ctx.store.getRiskState(),
      ctx.broker.listOrders({ status: 'open', symbols: ctx.config.watchlist }),
    ]);
    this.resting.clear();
    for (const order of open) {
      if (!STOP_ORDER_TYPES.has(order.type)) continue;
      this.resting.set(order.symbol, [...(this.resting.get(order.symbol) ?? []), order]);
    }
    for (const intent of intents) {
      if (intent.clientOrderId === this.flattenId(intent.symbol, day)) this.flattened.add(intent.symbol);
    }
    this.cash = account.cash;
    this.risk = risk ?? { state: initialRiskState(account.lastEquity), version: 0 };
    const entries = new Map(
      intents.filter((i) => i.purpose === 'entry' && i.filledQty > 0).map((i) => [i.symbol, i]),
    );
    const held = positions.filter(
      (p) => p.assetClass === 'us_equity' && ctx.config.watchlist.includes(p.symbol),
    );
    // A split the broker applied at the open: the guard (below) sees it in a list still in the old
    // shares. One the activities list that the list has not applied yet (before the day's risk
    // check) is applied to the records here, once, as the risk check applies it (`splitsToApply`,
    // `splitRecords`: shares times the ratio, stop and prices divided; the bucket too), so the
    // stream's stops, exits and the sleeves' share of the position are in the new shares.
    const guard = (records: readonly PositionRecord[], p: (typeof positions)[number]) =>
      unlistedSplitOf(
        // The broker's whole position (the bucket's shares too) against every record.
        p,
        records,
        // The day's fills of its orders the list does not hold: all of them for a list of an
        // earlier day (or none), those beyond its `bookedFills` for one of the day (else unknown:
        // no guard).
        intentFills(intents, p.symbol, (i) => {
          const booked = stored === undefined ? {} : bookedByList(stored, day);
          return booked === undefined ? null : (booked[i.brokerOrderId ?? ''] ?? 0);
        }),
      ) !== null;
    let listed = stored?.positions ?? [];
    if (stored !== undefined && held.some((p) => guard(listed, p))) {
      const now = this.options.now();
      if (now - this.splitsReadAt >= SPLITS_READ_MS) {
        this.listedToday = await listedSplits(ctx, day, new Date(now).toISOString());
        this.splitsReadAt = now;
      }
      const splits = splitsToApply(stored, day, this.listedToday);
      listed = splitRecords(stored.positions, splits);
      this.splitApplied =
        splits.length === 0 ? null : { date: stored.date, writtenAt: stored.writtenAt, splits };
    } else this.splitApplied = null;
    const records = new Map<string, PositionRecord>(sleeveRecords(listed).map((p) => [p.symbol, p]));
    // The sleeves' shares only: the UNASSIGNED bucket's are left to the operator (reconcile).
    const mine = held
      .map((p) => ({ ...p, qty: sleevesShare(p.qty, listed, p.symbol) }))
      .filter((p) => p.qty !== 0);
    await this.loadAtr(
      day,
      mine.map((p) => p.symbol),
    );
    const next = new Map<string, Held>();
    for (const p of mine) {
      const record = records.get(p.symbol);
      const entry = entries.get(p.symbol);
      // A split the broker applied and does not list yet (the risk check flags it and alerts): the
      // recorded stop is in the old shares, so the stream decides nothing on it (no exit, no ratchet).
      const unlisted =
        record?.unlistedSplit !== undefined || guard(listed, held.find((x) => x.symbol === p.symbol) ?? p);
      if (unlisted && !this.unlistedLogged.has(p.symbol)) {
        this.unlistedLogged.add(p.symbol);
        ctx.log.warn('a split the broker has not listed yet: the stream leaves the symbol alone', {
          symbol: p.symbol,
        });
      }
      const stop = unlisted ? null : (record?.stop ?? entry?.protectiveStop ?? null);
      const before = this.held.get(p.symbol);
      next.set(p.symbol, {
        symbol: p.symbol,
        side: p.qty > 0 ? 1 : -1,
        qty: Math.abs(p.qty),
        entryPrice: p.avgEntryPrice,
        initialRisk:
          record?.initialRisk ??
          (entry?.protectiveStop === undefined ? 0 : Math.abs(entry.referencePrice - entry.protectiveStop)),
        sessionsHeld: record?.sessionsHeld ?? 0,
        stop,
        atr: this.atrByDay.get(`${day}|${p.symbol}`) ?? Number.NaN,
        lastPrice: before?.lastPrice ?? p.currentPrice,
      });
    }
    this.held.clear();
    this.positionValue = 0;
    for (const [k, v] of next) {
      this.held.set(k, v);
      this.positionValue += v.side * v.qty * v.lastPrice;
    }
  }

  /** ATR of the daily bars up to the previous session, once per symbol and day (the trailing stop's unit). */
  private async loadAtr(day: string, symbols: readonly string[]): Promise<void> {
    const missing = symbols.filter((s) => !this.atrByDay.has(`${day}|${s}`));
    if (missing.length === 0) return;
    const period = this.ctx.config.risk.stops.atrPeriod;
    const from = new Date(Date.parse(`${day}T00:00:00Z`) - (period * 3 + 20) * 86_400_000)
      .toISOString()
      .slice(0, 10);
    const to = new Date(Date.parse(`${day}T00:00:00Z`) - 86_400_000).toISOString().slice(0, 10);
    const series = await this.ctx.marketData.getDailyBars({ symbols: missing, from, to, adjustment: 'raw' });
    for (const s of series) {
      const values = atrSeries(s.high, s.low, s.close, period);
      this.atrByDay.set(`${day}|${s.symbol}`, values[values.length - 1] ?? Number.NaN);
    }
  }

  /** Working entry intents seen at the last refresh (the poll runs faster while there are some). */
  get hasWorkingEntries(): boolean {
    return this.workingEntries > 0;
  }

  /** Account equity marked at the latest stream prices. */
  markedEquity(): number {
    return this.cash + this.positionValue;
  }

  /** Whether an exit is waiting for its calls (intent, cancels, list) before its order is sent. */
  get exiting(): boolean {
    return this.exitsBeforeOrder > 0;
  }

  /** Waits until every action started so far has finished (tests, shutdown). */
  async settled(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  /**
   * One market message: trades and quotes (the bid for a long, the ask for a short) decide; bars
   * only mark. Backfilled bars are history: they mark, never act.
   */
  onMarket(message: MarketMessage, receivedAt: number, backfilled: boolean): void {
    if (!this.active || message.T === 's') return;
    const held = this.held.get(message.S);
    if (held === undefined) return;
    let price: number;
    if (message.T === 't') price = message.p;
    else if (message.T === 'q') price = held.side === 1 ? message.bp : message.ap;
    else price = message.c;
    if (!(price > 0)) return;
    this.positionValue += held.side * held.qty * (price - held.lastPrice);
    held.lastPrice = price;
    if (message.T !== 'b' && message.T !== 'u' && message.T !== 'd' && !backfilled) {
      this.options.latency.record('exchangeToReceived', this.options.now() - Date.parse(message.t));
      this.decide(held, price, receivedAt);
    }
    this.checkEquity();
  }

  private decide(held: Held, price: number, receivedAt: number): void {
    this.counts.decisions++;
    const failed = this.failedAt.get(held.symbol);
    const resting = failed !== undefined && this.options.now() - failed < FAILURE_PAUSE_MS;
    if (held.stop === null || this.busy.has(held.symbol) || resting) {
      this.options.latency.record('decide', performance.now() - receivedAt);
      return;
    }
    const rules = this.ctx.config.risk.stops;
    const trail = this.options.intradayTrail !== false && Number.isFinite(held.atr) && held.atr > 0;
    const decision = intradayStop(
      {
        side: held.side,
        entryPrice: held.entryPrice,
        initialRisk: held.initialRisk,
        stop: held.stop,
        sessionsHeld: held.sessionsHeld,
      },
      price,
      trail ? held.atr : 0,
      trail ? rules : { ...rules, trailAtr: undefined, breakEvenAtR: undefined },
      trail ? (this.options.ratchetStepAtr ?? 0.25) * held.atr : Number.POSITIVE_INFINITY,
    );
    this.options.latency.record('decide', performance.now() - receivedAt);
    if (decision.action === 'exit') {
      this.act(held.symbol, () =>
        this.exit(held, price, receivedAt, `price ${price} is through the stop ${held.stop}`),
      );
    } else if (decision.action === 'ratchet') {
      const last = this.lastRatchet.get(held.symbol) ?? Number.NEGATIVE_INFINITY;
      if (this.options.now() - last >= (this.options.ratchetIntervalMs ?? 60_000)) {
        this.lastRatchet.set(held.symbol, this.options.now());
        this.act(held.symbol, () => this.ratchet(held, decision.stop));
      }
    }
  }

  /** Runs one action per symbol at a time; its failure is logged and alerted, never thrown into the stream. */
  private act(symbol: string, work: () => Promise<void>): void {
    this.busy.add(symbol);
    const run = work()
      .catch(async (error: unknown) => {
        this.counts.errors++;
        // No retry storm (nor an alert per trade): the symbol rests before its next attempt.
        this.failedAt.set(symbol, this.options.now());
        const message = error instanceof Error ? error.message : String(error);
        this.ctx.log.error('stream action failed', { symbol, error: message });
        await this.ctx.notifier
          .publish({ subject: `Stream action failed: ${symbol}`, severity: 'critical', text: message })
          .catch(() => {});
      })
      .finally(() => {
        this.busy.delete(symbol);
        this.inFlight.delete(run);
      });
    this.inFlight.add(run);
  }

  /** The deterministic id of a symbol's exit at market today, the risk check's own. */
  private flattenId(symbol: string, day: string): string {
    return clientOrderId({
      stage: this.ctx.stage,
      strategy: this.ctx.config.name,
      symbol,
      date: day,
      purpose: 'flatten',
    });
  }

  /** Cancels the orders together; says which were cancelled and which failed (and why). */
  private async cancelAll(orders: readonly BrokerOrder[]): Promise<{
    cancelled: Set<string>;
    failed: { order: BrokerOrder; error: unknown }[];
  }> {
    const results = await Promise.allSettled(orders.map((o) => this.ctx.broker.cancelOrder(o.id)));
    const cancelled = new Set<string>();
    const failed: { order: BrokerOrder; error: unknown }[] = [];
    results.forEach((result, i) => {
      const order = orders[i] as BrokerOrder;
      if (result.status === 'fulfilled') cancelled.add(order.id);
      else failed.push({ order, error: result.reason });
    });
    return { cancelled, failed };
  }

  private stopsOf(orders: readonly BrokerOrder[], held: Held): BrokerOrder[] {
    const exitSide = held.side === 1 ? 'sell' : 'buy';
    return orders.filter(
      (o) => o.symbol === held.symbol && o.side === exitSide && STOP_ORDER_TYPES.has(o.type),
    );
  }

  /**
   * The exit at market: the intent recorded, the resting stops cancelled, then the order, exactly
   * once. Three calls start together: the intent write, the cancel of the stops the last refresh
   * saw resting ({@link resting}), and a fresh list of the symbol's open orders. The POST waits
   * for all three, and for the cancel of any stop the fresh list shows that the refresh had not
   * seen (one a risk check placed since): no stop is left resting when the exit is sent.
   */
  private async exit(held: Held, price: number, receivedAt: number, reason: string): Promise<void> {
    const { ctx } = this;
    const day = this.day as string;
    const nowIso = new Date(this.options.now()).toISOString();
    // Before the exit's creation, on the monotonic clock: how long its send comes after it.
    const builtAt = performance.now();
    const id = this.flattenId(held.symbol, day);
    const intent: IntentRecord = {
      clientOrderId: id,
      date: day,
      strategy: ctx.config.name,
      symbol: held.symbol,
      purpose: 'exit',
      side: held.side === 1 ? 'sell' : 'buy',
      qty: held.qty,
      type: 'market',
      timeInForce: 'day',
      referencePrice: price,
      status: 'recorded',
      filledQty: 0,
      reason: `stream: ${reason}`,
      configHash: ctx.configHash,
      gitCommit: ctx.gitCommit,
      createdAt: nowIso,
      updatedAt: nowIso,
    };
    // A flatten already recorded today (by the risk check, or an earlier stream event) may be settled
    // without a sale (rejected, skipped): its stops are cancelled only once its intent is read.
    const early = this.flattened.has(held.symbol)
      ? []
      : this.stopsOf(this.resting.get(held.symbol) ?? [], held);
    this.flattened.add(held.symbol);
    this.resting.delete(held.symbol);
    this.exitsBeforeOrder++;
    let beforeOrder = true;
    const orderSent = () => {
      if (beforeOrder) this.exitsBeforeOrder--;
      beforeOrder = false;
    };
    const cancelling = this.cancelAll(early);
    let placed: IntentRecord | null;
    try {
      placed = await this.exitAfterCancel(held, intent, builtAt, cancelling, early, orderSent);
    } catch (error) {
      orderSent();
      const { cancelled } = await cancelling;
      if (cancelled.size === 0) throw error;
      throw new StreamExitIncompleteError(
        `${held.symbol}: its resting stop was cancelled but the exit was not sent (${(error as Error).message}); the next trade through the stop (after the pause) or the risk check exits it, or places the stop again`,
        { cause: error },
      );
    }
    orderSent();
    if (placed === null) return;
    const sentAt = this.sent.get(id);
    if (sentAt !== undefined) this.options.latency.record('order', sentAt - receivedAt);
    this.sent.delete(id);
    this.held.delete(held.symbol);
    if (!['accepted', 'partially_filled', 'filled'].includes(placed.status)) {
      ctx.log.warn('stream exit not placed', {
        clientOrderId: id,
        status: placed.status,
        reason: placed.reason,
      });
      return;
    }
    this.counts.exits++;
    this.exits.set(id, reason);
    // A risk check running at the same moment may have put a stop back after the cancel: sweep it.
    // One placed after this sweep is cancelled by the risk check itself (placeStop reads the
    // intents again once its stop is placed, and this exit's intent is recorded by now).
    // A stop of that sweep that filled before its cancel sold too: booked and alerted (the position
    // may be reversed); one the broker still has working fails the action, as before.
    const swept = await this.cancelAll(
      this.stopsOf(await ctx.broker.listOrders({ status: 'open', symbols: [held.symbol] }), held),
    );
    const { filled, failure } = await this.refusedStops(swept.failed);
    if (filled.length > 0) await this.stopFilledDuringExit(held, placed, filled, true, nowIso);
    if (failure !== undefined) throw failure;
    await ctx.notifier.publish({
      subject: `Stream exit at market: ${held.symbol}`,
      severity: 'warning',
      text: `${id}: ${reason}`,
    });
  }

  /**
   * The rest of {@link exit} once its cancels are under way, up to the order sent: the intent as
   * stored afterwards, or null when there was nothing to send.
   */
  private async exitAfterCancel(
    held: Held,
    intent: IntentRecord,
    /** `performance.now()` before the intent's creation. */
    builtAt: number,
    cancelling: ReturnType<StreamRiskEngine['cancelAll']>,
    early: readonly BrokerOrder[],
    /** Called as the order is sent: the consumer stops yielding to the exit's calls. */
    orderSent: () => void,
  ): Promise<IntentRecord | null> {
    const { ctx } = this;
    const day = intent.date;
    const id = intent.clientOrderId;
    const nowIso = intent.createdAt;
    const [{ created, intent: stored }, open, first] = await Promise.all([
      ctx.store.createIntent(intent),
      ctx.broker.listOrders({ status: 'open', symbols: [held.symbol] }),
      cancelling,
    ]);
    if (!OPEN.includes(stored.status)) {
      // The risk check (or an earlier stream event) already settled this exit.
      if (early.length > 0) {
        ctx.log.warn('stream: stops cancelled for an exit already settled', {
          clientOrderId: id,
          status: stored.status,
        });
      }
      this.held.delete(held.symbol);
      return null;
    }
    const late = this.stopsOf(open, held).filter((o) => !first.cancelled.has(o.id));
    // Refused cancels: of the stops the fresh list showed, and of those the refresh saw that the
    // list no longer shows (cancelled or replaced by a risk check, harmless, or filled).
    const refused = [
      ...(await this.cancelAll(late)).failed,
      ...first.failed.filter((f) => !late.some((o) => o.id === f.order.id)),
    ];
    const { filled, failure } = await this.refusedStops(refused);
    if (filled.length > 0) {
      // The stop sold first: the position is closed (or smaller): the exit is not sent. A stop still
      // working whose cancel was refused rests on, as the exit it was to make way for is withdrawn.
      const what = filled
        .map(
          ({ order }) => `${order.clientOrderId} filled ${order.filledQty} at ${order.filledAvgPrice ?? '?'}`,
        )
        .join('; ');
      const skipped = await ctx.store.transitionIntent(day, id, OPEN, {
        status: 'skipped',
        reason: `stream: not sent, the resting stop filled before it could be cancelled (${what})`,
        updatedAt: nowIso,
      });
      this.held.delete(held.symbol);
      const exitNow = 'conflict' in skipped ? await ctx.store.getIntent(day, id) : skipped;
      await this.stopFilledDuringExit(held, exitNow ?? intent, filled, false, nowIso);
      return null;
    }
    if (failure !== undefined) throw failure;
    // Created just now, the id is new to the broker: send it (a 422 duplicate is still settled by
    // asking the broker). Found already recorded (the risk check got there first): look it up first.
    // Either stamps the exit on the clock immediately before its POST, on the updatedAt read at its
    // creation (`stampBeforeSend`): a risk check that superseded it meanwhile (the cancels and their
    // lookups above can take minutes) wins, and nothing is sent. Except an exit this one created
    // less than FRESH_EXIT_MS ago (the usual case: milliseconds): no supersede can have taken it
    // yet (the senders' lease is minutes), so it goes without the stamp (two round trips fewer
    // before the POST). The rare placeIntentOnce (the intent found recorded) asks the broker first.
    const fresh = created && performance.now() - builtAt < FRESH_EXIT_MS;
    orderSent();
    return created ? sendRecordedIntent(ctx, stored, nowIso, fresh) : placeIntentOnce(ctx, stored, nowIso);
  }

  /**
   * Stops whose cancel failed, as the broker has them now (looked up by client order id): those
   * that filled (some or all: they sold), and the first failure not explained by the order being
   * gone without a fill (cancelled or replaced by a risk check meanwhile: harmless).
   */
  private async refusedStops(refused: readonly { order: BrokerOrder; error: unknown }[]): Promise<{
    filled: { order: BrokerOrder; error: unknown }[];
    failure: unknown;
  }> {
    const filled: { order: BrokerOrder; error: unknown }[] = [];
    let failure: unknown;
    for (const f of refused) {
      const order = await this.ctx.broker.getOrderByClientOrderId(f.order.clientOrderId);
      const outcome = refusedCancel(order);
      if (outcome === 'sold' && order !== null) filled.push({ order, error: f.error });
      else if (outcome === 'working') failure ??= f.error;
    }
    return { filled, failure };
  }

  /**
   * Stops of a held symbol that filled before the stream's exit could cancel them: each one's
   * intent (the risk check's, found by the day in its client order id) is booked as the broker has
   * it, as the risk check tracks any order (the fill ledger takes the fill at the reconciliation; a
   * stop with no intent is left to it), and the fill is alerted critically, with the exit's state:
   * not sent (the stop closed the position), or sent too (both sold: the position may be reversed).
   */
  private async stopFilledDuringExit(
    held: Held,
    exit: IntentRecord,
    filled: readonly { order: BrokerOrder; error: unknown }[],
    exitSent: boolean,
    nowIso: string,
  ): Promise<void> {
    const { ctx } = this;
    for (const { order, error } of filled) {
      const message = error instanceof Error ? error.message : String(error);
      const date = orderDateOf(order.clientOrderId);
      const stop = date === null ? undefined : await ctx.store.getIntent(date, order.clientOrderId);
      if (
        stop !== undefined &&
        stop.purpose === 'stop' &&
        !['filled', 'cancelled', 'expired', 'rejected'].includes(stop.status)
      ) {
        await bookStopOrder(
          ctx,
          stop,
          order,
          [stop.status],
          `not cancelled (${message}): the broker has the stop ${order.status}, during the stream exit ${exit.clientOrderId}`,
          nowIso,
        );
      }
      ctx.log.error('stream: a stop filled before the exit could cancel it', {
        symbol: held.symbol,
        stop: order.clientOrderId,
        filledQty: order.filledQty,
        avgFillPrice: order.filledAvgPrice,
        exit: exit.clientOrderId,
        exitStatus: exit.status,
        exitSent,
        error: message,
      });
    }
    const position = (await ctx.broker.getPositions()).find((p) => p.symbol === held.symbol);
    const now = position === undefined ? 'no position' : `a position of ${position.qty}`;
    const stops = filled
      .map(
        ({ order }) =>
          `${order.clientOrderId} (${order.side} ${order.qty}) filled ${order.filledQty} at ${order.filledAvgPrice ?? '?'}`,
      )
      .join('; ');
    await ctx.notifier.publish({
      subject: `Stop filled during an exit: ${held.symbol}`,
      severity: 'critical',
      text: exitSent
        ? `${stops} before the stream could cancel it, after its exit ${exit.clientOrderId} (${held.qty} shares, ${exit.status}) was sent: both sold, the position may be reversed (the broker has ${now} of ${held.symbol}): check the account.`
        : `${stops} before the stream could cancel it: the exit ${exit.clientOrderId} was not sent (${exit.status}). The broker has ${now} of ${held.symbol}; shares left keep no stop until the next risk check places one.`,
    });
  }

  /** The tighter stop goes to the positions record, then the risk check replaces the resting stop. */
  private async ratchet(held: Held, stop: number): Promise<void> {
    const { ctx } = this;
    const day = this.day as string;
    const latest = await ctx.store.getLatestPositions();
    // The day's listed splits the list has not applied (see `load`): applied to the list written,
    // which names them (`splitKey`), so the stop (in the new shares) goes with records in the same
    // shares and no step applies the split again.
    // Only to the list `load` applied them to (same date and `writtenAt`), behind the split guard:
    // a list written since (a risk check's, in the new shares) is taken as it stands.
    const applied = this.splitApplied;
    const splits =
      latest === undefined ||
      applied === null ||
      latest.date !== applied.date ||
      latest.writtenAt !== applied.writtenAt
        ? []
        : splitsToApply(latest, day, applied.splits);
    const positions = splitRecords(latest?.positions ?? [], splits);
    const record = positions.find((p) => p.symbol === held.symbol && !isUnassigned(p));
    // Before the risk check has recorded the position there is no record to tighten.
    if (latest === undefined || record === undefined || record.stop === null) return;
    if (held.side * (stop - record.stop) <= 0) return;
    const booked = listBookedFills(latest, day);
    await ctx.store.putPositions(
      day,
      positions.map((p) => (p === record ? { ...p, stop } : p)),
      listAsOf(ctx, latest, day),
      splits.length === 0 ? booked : { ...booked, ...splitKeys(day, splits) },
    );
    held.stop = stop;
    const result = await riskCheck(ctx, new Date(this.options.now()).toISOString());
    this.counts.ratchets++;
    this.counts.stopsPlaced += result.stopsPlaced.length;
    ctx.log.info('stream ratcheted a stop', { symbol: held.symbol, stop, stopsPlaced: result.stopsPlaced });
  }

  /** The breakers on marked equity; a trip is stored, alerted and (when configured) flattens. */
  private checkEquity(): void {
    if (this.risk === undefined || this.day === null) return;
    const now = this.options.now();
    const observed = observeEquity(this.risk.state, this.ctx.config.risk, now, this.day, this.markedEquity());
    this.risk = { state: observed.state, version: this.risk.version };
    if (observed.events.length === 0) return;
    const trips = observed.events.filter((e) => e.action === 'trip');
    this.counts.breakerTrips += trips.length;
    const flatten = this.ctx.config.risk.flattenOnDailyLoss && trips.some((e) => e.breaker === 'daily-loss');
    this.act('*breakers', async () => {
      const { ctx } = this;
      const current = this.risk as { state: RiskState; version: number };
      const saved = await ctx.store.putRiskState(current.state, current.version);
      if ('conflict' in saved) {
        // The risk check wrote first: take its state and judge again with the marked equity.
        const stored = await ctx.store.getRiskState();
        if (stored === undefined) throw new Error('the risk state vanished during a stream breaker write');
        const again = observeEquity(
          stored.state,
          ctx.config.risk,
          now,
          this.day as string,
          this.markedEquity(),
        );
        this.risk = { state: again.state, version: stored.version };
        if (again.events.length === 0) return;
        const retry = await ctx.store.putRiskState(again.state, stored.version);
        if ('conflict' in retry)
          throw new Error('the risk state changed twice during a stream breaker write');
        this.risk.version = retry.version;
      } else {
        this.risk = { state: current.state, version: saved.version };
      }
      await ctx.store.appendBreakerEvents(observed.events);
      for (const event of observed.events) {
        await ctx.notifier.publish({
          subject: `Breaker ${event.action} (stream, marked equity): ${event.breaker}`,
          severity: event.action === 'trip' ? 'critical' : 'info',
          text: `${event.reason}\n${JSON.stringify(event.figures)}`,
        });
      }
      if (flatten) {
        for (const held of [...this.held.values()]) {
          if (!this.busy.has(held.symbol)) {
            this.act(held.symbol, () =>
              this.exit(held, held.lastPrice, performance.now(), 'daily loss breaker: flatten'),
            );
          }
        }
      }
    });
  }
}
