/**
 * The crypto bot's dry run, its paper stage (Coinbase has no paper trading): execute-orders hands
 * the day's recorded intents here. Each is checked as the live path checks it (the kill switch and
 * breakers for entries, the hard limits), then placed at the dry-run broker, which books it in a
 * virtual account instead of sending it: a market order fills at the ask (buy) / bid (sell) of the
 * book read for the decision, at the product's base increment, with the config's taker fee; a stop
 * rests until a day's range crosses it. The decision is recorded (`DRYRUN#<date>`) with its book and
 * its virtual fill, and reported. Every other step (risk check, end-of-day) reads the virtual
 * account through the same Broker port, so the fills are booked by the real code: ledger, positions,
 * closed trades, stops, equity. Nothing ever reaches the exchange.
 */
import {
  DuplicateClientOrderIdError,
  OrderSizeRefusedError,
  VirtualOrderRefusedError,
} from '../core/errors.js';
import { type CommissionModel, commissionCents, notionalCents } from '../core/ledger/money.js';
import {
  bookVirtualFill,
  brokerOrderOf,
  type DryRunAccount,
  dryRunEquity,
  openDryRunAccount,
  pruneDryRunAccount,
  restingFill,
  type VirtualOrder,
  virtualOrderId,
} from '../core/live/dry-run-account.js';
import { isAtOpenOrder, orderStyle } from '../core/live/order-style.js';
import { intentLimitViolations } from '../core/live/orders.js';
import { utcSessionDate } from '../core/market/crypto-calendar.js';
import type {
  Broker,
  BrokerAccount,
  BrokerActivity,
  BrokerOrder,
  BrokerPosition,
  OrderRequest,
} from '../core/ports/broker.js';
import type { CryptoStore, DryRunRecord } from '../core/ports/crypto-store.js';
import type { BestBidAsk, BestBidAskSource, MarketData } from '../core/ports/market-data.js';
import type { IntentRecord, IntentStatus } from '../core/ports/state-store.js';
import { productQuantity } from '../core/sizing/increments.js';
import { type LiveContext, type ProductSource, UnknownStateError } from './context.js';
import { checkedAt, cutoffRecheck, cutoffSkippedAlert } from './cutoff.js';
import { entryRefusal } from './entry-gate.js';
import { reconcile } from './reconcile.js';
import { carriesExit, exitingSleeves, netSleeveLegs } from './sleeves.js';
import { cancelRestingStops } from './stops.js';
import { sendRecordedIntent } from './submit.js';

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
export function dryRunRecord(
  intent: IntentRecord,
  quote: BestBidAsk,
  decidedAt: string,
  fill?: DryRunRecord['fill'],
): DryRunRecord {
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
    ...(fill === undefined ? {} : { fill }),
    spreadBps: bps((quote.ask - quote.bid) / mid),
    decidedAt,
  };
}

/**
 * The dry run of execute-orders for `day` (called by it when the context's `crypto.dryRun` is
 * set): every recorded intent is checked as live (the gate and breakers for entries, the hard
 * limits), then placed at the dry-run broker through the same exactly-once path as a real order
 * (`sendRecordedIntent`): a market order fills virtually at the ask (buy) / bid (sell) of the book
 * read here, at the product's base increment, with the taker fee. Each decision is recorded with
 * its book and its virtual fill (`DRYRUN#<date>`) and reported. Nothing reaches the exchange.
 */
export async function dryRunOrders(
  ctx: LiveContext,
  day: string,
  scheduledTime: string,
): Promise<DryRunResult> {
  const crypto = ctx.crypto;
  if (crypto === undefined || !crypto.dryRun || !(ctx.broker instanceof DryRunBroker)) {
    throw new UnknownStateError('dry run asked for a context without the crypto dry run and its broker');
  }
  // As live: reconciliation against the (virtual) account first, so shares no sleeve owns block
  // their symbol's entries; then a sleeves config's legs are netted per symbol into one order each
  // (a leg is never an order: its sleeve's share of the net fill is booked at end-of-day). A virtual
  // market order fills at once, so a rerun of the day after some were placed would see their coins
  // before any positions list has: it leaves reconciliation to end-of-day, which books them.
  const placedToday = (await ctx.store.listIntents(day)).some((i) => i.brokerOrderId !== undefined);
  if (!placedToday) await reconcile(ctx, day, scheduledTime);
  // The same cutoff rule as live (paper-vs-live parity): checked at the later of the scheduled time
  // and the exchange's clock, before netting, and asked again before each order near the cutoff;
  // past it, an order of the daily close is skipped and alerted, never filled virtually.
  const style = orderStyle(ctx.config);
  const at = await checkedAt(ctx, scheduledTime, (t) => style.beforeCutoff(t, day));
  const stillBeforeCutoff = cutoffRecheck(ctx, day, at, style);
  if (ctx.config.sleeves !== undefined) await netSleeveLegs(ctx, day, at);
  const all = await ctx.store.listIntents(day);
  const recorded = all
    .filter((i) => i.leg !== true && i.status === 'recorded')
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
    if ('conflict' in result) return false;
    outcome.push({ clientOrderId: intent.clientOrderId, status, reason });
    return true;
  };
  const symbols = [...new Set(recorded.map((i) => i.symbol))];
  const quotes = new Map((await crypto.quotes.getBestBidAsk(symbols)).map((q) => [q.symbol, q]));
  let counted = 0;
  const skippedLate: string[] = [];
  for (const intent of recorded) {
    if (isAtOpenOrder(style, intent) && !(await stillBeforeCutoff())) {
      if (await transition(intent, 'skipped', `after ${style.cutoffLabel}`))
        skippedLate.push(intent.clientOrderId);
      continue;
    }
    // The same gate as live, per entry (its symbol and sleeve); exits and stops never ask it, nor a
    // net order carrying a sleeve's exit. A net order's legs were each asked for their own sleeve
    // when they were netted: here the account and the symbol are asked again.
    const refusal =
      intent.purpose === 'entry' && !carriesExit(intent)
        ? await entryRefusal(ctx, day, intent.symbol, intent.legIds === undefined ? intent.sleeve : undefined)
        : null;
    if (refusal !== null) {
      await transition(intent, 'skipped', `entry refused: ${refusal}`);
      continue;
    }
    const violations = intentLimitViolations(intent, counted, ctx.config.live.limits);
    if (violations.length > 0) {
      await transition(intent, 'rejected', `hard limit: ${violations.join('; ')}`);
      continue;
    }
    counted++;
    // As live, a resting stop on the coins an exit sells is cancelled first (only the exiting
    // sleeves' own stops for a net order), so the virtual account never sells them twice.
    if (intent.purpose === 'exit' || carriesExit(intent))
      await cancelRestingStops(
        ctx,
        intent,
        async () => {},
        intent.legIds === undefined ? undefined : exitingSleeves(intent, all),
      );
    const quote = quotes.get(intent.symbol) as BestBidAsk;
    const placed = await sendRecordedIntent(ctx, intent, scheduledTime);
    const order =
      placed.brokerOrderId === undefined
        ? null
        : await ctx.broker.getOrderByClientOrderId(intent.clientOrderId);
    const fill =
      order !== null && order.filledQty > 0 && order.filledAvgPrice !== null
        ? {
            qty: order.filledQty,
            price: order.filledAvgPrice,
            feeCents: commissionCents(
              ctx.config.costs.commission,
              order.filledQty,
              notionalCents(order.filledQty, order.filledAvgPrice),
            ),
          }
        : undefined;
    const record = dryRunRecord(intent, quote, scheduledTime, fill);
    if (await crypto.records.putDryRun(record)) records.push(record);
    outcome.push({
      clientOrderId: intent.clientOrderId,
      status: placed.status,
      ...(placed.reason === undefined ? {} : { reason: placed.reason }),
    });
  }
  if (skippedLate.length > 0)
    await ctx.notifier.publish(
      cutoffSkippedAlert(style, day, `The cutoff passed before they were placed: ${skippedLate.join(', ')}`),
    );
  if (outcome.length > 0) {
    const lines = records.map((r) => {
      const vsDecision = bps(
        ((r.wouldPay - r.referencePrice) / r.referencePrice) * (r.side === 'buy' ? 1 : -1),
      );
      const filled =
        r.fill === undefined
          ? 'not filled'
          : `filled virtually ${r.fill.qty} @ ${r.fill.price} (fee ${(r.fill.feeCents / 100).toFixed(2)} USD)`;
      return `${r.side} ${r.qty} ${r.symbol} (${r.purpose}): bid ${r.bid} / ask ${r.ask} (spread ${r.spreadBps} bps), ${filled}, ${vsDecision} bps from the decision close ${r.referencePrice}`;
    });
    const other = outcome
      .filter((o) => o.status !== 'filled' && o.status !== 'accepted')
      .map((o) => `${o.clientOrderId}: ${o.status}${o.reason === undefined ? '' : ` (${o.reason})`}`);
    await ctx.notifier.publish({
      subject: `Crypto dry run on ${day}: ${records.length} intent(s) recorded, filled virtually, no order sent`,
      severity: other.length > 0 ? 'warning' : 'info',
      text: [...lines, ...other].join('\n'),
    });
  }
  return { day, status: 'executed', intents: outcome, dryRun: records };
}

export interface DryRunBrokerOptions {
  /** The exchange: reads only (the clock, the calendar, the starting cash). Never sent an order. */
  readonly inner: Broker;
  /** The top of the book: market orders fill at its ask (buys) / bid (sells). */
  readonly quotes: BestBidAskSource;
  /** Daily bars: a resting stop fills when a day's range crosses it (the backtest's fill rules). */
  readonly bars: MarketData;
  /** The products' base increments and minimum sizes (absent: quantities as asked). */
  readonly products?: ProductSource;
  /** Where the virtual account is kept (the bot's table). */
  readonly store: CryptoStore;
  /** The config's costs: the taker fee (the commission's percent) and the stop slippage. */
  readonly costs: { readonly commission: CommissionModel; readonly slippageBps: number };
  /** A product whose book's time is the clock when nothing is held or resting (the watchlist's first). */
  readonly clockSymbol: string;
}

const dayStartIso = (date: string) => `${date}T00:00:00.000Z`;

/**
 * The broker of a dry run (the crypto bot's paper stage: Coinbase has no paper trading). Nothing
 * reaches the exchange: an order is booked in a virtual account kept in the bot's table
 * (`DRYRUN/ACCOUNT`, `core/live/dry-run-account.ts`). A market order fills at once at the ask (buy)
 * or the bid (sell) of the book read for the decision (the one recorded, see {@link getBestBidAsk}),
 * at the product's base increment and minimum size, with the config's taker fee; a stop, stop-limit
 * or limit rests until a day's bar crosses it (the backtest's fill rules), checked at every read, so
 * at the risk check and at end-of-day. Positions, the account, orders and fills (activities) are the
 * virtual account's, so every live step books the virtual fills with its real code. Its ids start
 * with `dryrun-`. An order Coinbase would refuse (no cash, more coins than held, a trailing stop) is
 * refused with {@link VirtualOrderRefusedError}.
 */
export class DryRunBroker implements Broker, BestBidAskSource {
  /** The books read by this instance (one run): a market order fills at the one recorded. */
  private readonly books = new Map<string, BestBidAsk>();

  constructor(private readonly options: DryRunBrokerOptions) {}

  /** The top of each book, remembered: the decision's record and its virtual fill use the same one. */
  async getBestBidAsk(symbols: readonly string[]): Promise<BestBidAsk[]> {
    const quotes = await this.options.quotes.getBestBidAsk(symbols);
    for (const q of quotes) this.books.set(q.symbol, q);
    return quotes;
  }

  async getAccount(): Promise<BrokerAccount> {
    const { account, now } = await this.settled(true);
    const marks = await this.marks(account);
    const equity = dryRunEquity(account, (s) => marks.get(s));
    return {
      equity,
      lastEquity: account.dayStart?.date === utcSessionDate(now) ? account.dayStart.equity : equity,
      cash: account.cashCents / 100,
      buyingPower: account.cashCents / 100,
      tradingBlocked: false,
      status: 'ACTIVE',
    };
  }

  async getPositions(): Promise<BrokerPosition[]> {
    const { account } = await this.settled();
    const marks = await this.marks(account);
    return account.positions.map((p) => {
      const currentPrice = marks.get(p.symbol) ?? p.costCents / 100 / p.qty;
      return {
        symbol: p.symbol,
        qty: p.qty,
        avgEntryPrice: p.costCents / 100 / p.qty,
        marketValue: p.qty * currentPrice,
        currentPrice,
        assetClass: 'crypto',
      };
    });
  }

  async submitOrder(order: OrderRequest): Promise<BrokerOrder> {
    if (order.type === 'trailing_stop' || order.bracket !== undefined) {
      throw new VirtualOrderRefusedError(
        `dry run: ${order.clientOrderId}: Coinbase takes no ${order.bracket === undefined ? 'trailing stop' : 'bracket entry'}`,
      );
    }
    const book = this.books.get(order.symbol) ?? (await this.getBestBidAsk([order.symbol]))[0];
    if (book === undefined) throw new UnknownStateError(`dry run: no book for ${order.symbol}`);
    const buy = order.side === 'buy';
    const marketPrice = buy ? book.ask : book.bid;
    let qty = order.qty;
    if (this.options.products !== undefined) {
      const product = await this.options.products.getProduct(order.symbol);
      const sized = productQuantity(order.qty, order.stopPrice ?? order.limitPrice ?? marketPrice, product);
      if (sized.refusal !== null) {
        throw new OrderSizeRefusedError(
          order.symbol,
          sized.refusal,
          `dry run: ${order.clientOrderId}: ${sized.message}`,
        );
      }
      qty = sized.qty;
    }
    const placed = await this.update(async (account) => {
      if (account.orders.some((o) => o.clientOrderId === order.clientOrderId)) {
        throw new DuplicateClientOrderIdError(
          order.clientOrderId,
          `dry run: client order id ${order.clientOrderId} already used`,
        );
      }
      const virtual: VirtualOrder = {
        id: virtualOrderId(order.clientOrderId),
        clientOrderId: order.clientOrderId,
        symbol: order.symbol,
        side: order.side,
        type: order.type,
        timeInForce: order.timeInForce,
        qty,
        filledQty: 0,
        filledAvgPrice: null,
        limitPrice: order.limitPrice ?? null,
        stopPrice: order.stopPrice ?? null,
        status: 'accepted',
        submittedAt: book.time,
        filledAt: null,
      };
      const added = { ...account, orders: [...account.orders, virtual] };
      if (order.type !== 'market') return { account: added, result: virtual };
      const booked = bookVirtualFill(
        added,
        virtual,
        qty,
        marketPrice,
        book.time,
        this.options.costs.commission,
      );
      return { account: booked.account, result: booked.account.orders.find((o) => o.id === virtual.id) };
    });
    return brokerOrderOf(placed as VirtualOrder);
  }

  async getOrderByClientOrderId(clientOrderId: string): Promise<BrokerOrder | null> {
    const { account } = await this.settled();
    const order = account.orders.find((o) => o.clientOrderId === clientOrderId);
    return order === undefined ? null : brokerOrderOf(order);
  }

  async listOrders(filter: Parameters<Broker['listOrders']>[0]): Promise<BrokerOrder[]> {
    const { account } = await this.settled();
    return account.orders
      .filter(
        (o) =>
          (filter.status === 'all' || (filter.status === 'open') === (o.status === 'accepted')) &&
          (filter.after === undefined || o.submittedAt > filter.after) &&
          (filter.symbols === undefined || filter.symbols.includes(o.symbol)),
      )
      .map(brokerOrderOf);
  }

  async cancelOrder(orderId: string): Promise<void> {
    await this.update(async (account) => {
      const order = account.orders.find((o) => o.id === orderId);
      if (order === undefined) throw new VirtualOrderRefusedError(`dry run: no order ${orderId} to cancel`);
      if (order.status !== 'accepted') return { account, result: undefined };
      return {
        account: {
          ...account,
          orders: account.orders.map((o) => (o.id === orderId ? { ...o, status: 'canceled' as const } : o)),
        },
        result: undefined,
      };
    });
  }

  async getActivities(filter: Parameters<Broker['getActivities']>[0]): Promise<BrokerActivity[]> {
    const { account } = await this.settled();
    return account.fills
      .filter(
        (f) =>
          (filter.after === undefined || f.time > filter.after) &&
          (filter.until === undefined || f.time <= filter.until),
      )
      .sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : a.id < b.id ? -1 : 1))
      .map((f) => {
        const order = account.orders.find((o) => o.id === f.orderId);
        return {
          kind: 'fill' as const,
          id: f.id,
          orderId: f.orderId,
          symbol: f.symbol,
          side: f.side,
          qty: f.qty,
          price: f.price,
          time: f.time,
          partial: order !== undefined && order.filledQty < order.qty,
          dryRun: true as const,
        };
      });
  }

  getClock() {
    return this.options.inner.getClock();
  }

  getCalendar(range: Parameters<Broker['getCalendar']>[0]) {
    return this.options.inner.getCalendar(range);
  }

  /** The mid of each held coin's book (read fresh). */
  private async marks(account: DryRunAccount): Promise<Map<string, number>> {
    const symbols = account.positions.map((p) => p.symbol);
    if (symbols.length === 0) return new Map();
    const quotes = await this.getBestBidAsk(symbols);
    return new Map(quotes.map((q) => [q.symbol, (q.bid + q.ask) / 2]));
  }

  /**
   * The virtual account read, its resting orders checked against the daily bars since they were
   * placed (a fill on the first bar that crosses one, at the time `max(placed, that day's start)`),
   * and with `dayStart`, the day's starting equity noted at the first account read of a UTC day.
   */
  private async settled(dayStart = false): Promise<{ account: DryRunAccount; now: number }> {
    let now = Number.NaN;
    const account = await this.update(async (current) => {
      const resting = current.orders.filter((o) => o.status === 'accepted');
      const symbols = [
        ...new Set([...resting.map((o) => o.symbol), ...current.positions.map((p) => p.symbol)]),
      ];
      const books = symbols.length === 0 ? [] : await this.getBestBidAsk(symbols);
      now = books.length === 0 ? Number.NaN : Math.max(...books.map((b) => Date.parse(b.time)));
      if (Number.isNaN(now)) {
        const [book] = await this.getBestBidAsk([this.options.clockSymbol]);
        now = Date.parse(book?.time ?? '');
      }
      const today = utcSessionDate(now);
      let next = current;
      if (resting.length > 0) {
        const from = resting.map((o) => utcSessionDate(Date.parse(o.submittedAt))).sort()[0] as string;
        const series = await this.options.bars.getDailyBars({
          symbols: [...new Set(resting.map((o) => o.symbol))],
          from,
          to: today,
        });
        for (const order of resting) {
          const bars = series.find((s) => s.symbol === order.symbol);
          if (bars === undefined) continue;
          const placedOn = utcSessionDate(Date.parse(order.submittedAt));
          // A stop-limit gapped beyond its limit rests triggered, as a limit, on the next days.
          let triggered = false;
          for (let i = 0; i < bars.time.length; i++) {
            const date = utcSessionDate(bars.time[i] as number);
            if (date < placedOn || date > today) continue;
            const bar = {
              date,
              open: bars.open[i] as number,
              high: bars.high[i] as number,
              low: bars.low[i] as number,
            };
            const fill = restingFill(order, bar, this.options.costs.slippageBps, triggered);
            triggered = fill.triggered;
            const price = fill.price;
            if (price === null) continue;
            const at = order.submittedAt > dayStartIso(date) ? order.submittedAt : dayStartIso(date);
            const live = next.orders.find((o) => o.id === order.id) as VirtualOrder;
            try {
              next = bookVirtualFill(
                next,
                live,
                live.qty - live.filledQty,
                price,
                at,
                this.options.costs.commission,
              ).account;
            } catch (error) {
              if (!(error instanceof VirtualOrderRefusedError)) throw error;
              // The exchange cancels a triggered order it cannot fill (the coins are gone): so does
              // the dry run, rather than failing every later read.
              next = {
                ...next,
                orders: next.orders.map((o) =>
                  o.id === order.id ? { ...o, status: 'canceled' as const } : o,
                ),
              };
            }
            break;
          }
        }
      }
      if (dayStart && next.dayStart?.date !== today) {
        const marks = await this.marks(next);
        next = { ...next, dayStart: { date: today, equity: dryRunEquity(next, (s) => marks.get(s)) } };
      }
      if (next !== current) next = pruneDryRunAccount(next, today);
      return { account: next, result: next };
    });
    return { account, now };
  }

  /**
   * A change of the virtual account with the versioned write: the account read (opened with the
   * exchange account's equity in cash at the first read), changed, written if nobody wrote it
   * meanwhile, else read and changed again. An unchanged account is not written.
   */
  private async update<T>(
    change: (account: DryRunAccount) => Promise<{ account: DryRunAccount; result: T }>,
  ): Promise<T> {
    for (let attempt = 0; attempt < 8; attempt++) {
      const stored = await this.options.store.getDryRunAccount();
      const current = stored?.account ?? openDryRunAccount((await this.options.inner.getAccount()).equity);
      const { account, result } = await change(current);
      if (stored !== undefined && account === current) return result;
      const saved = await this.options.store.putDryRunAccount(account, stored?.version ?? 0);
      if (!('conflict' in saved)) return result;
    }
    throw new UnknownStateError('the dry run account kept changing; refusing to guess');
  }
}
