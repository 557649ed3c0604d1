/**
 * The {@link Broker} port on Coinbase Advanced Trade (spot), over the thin REST client
 * (`http.ts`), so the same adapter drives Coinbase and the local Coinbase-compatible server
 * (`shared/adapters/local/coinbase-server.ts`). What it adds to the wire:
 *
 * - symbols are Coinbase product ids (`BTC-USD`); an equity ticker is refused
 *   ({@link EquitySymbolRefusedError}) before anything is sent;
 * - quantities are rounded DOWN to the product's base increment and refused under its minimum size
 *   or notional ({@link OrderSizeRefusedError}); products are read once and cached;
 * - orders: `market` + `ioc` → `market_market_ioc` (entries and exits), `limit` + `gtc` →
 *   `limit_limit_gtc`, `stop_limit` + `gtc` → `stop_limit_stop_limit_gtc` (the protective stop;
 *   a sell stops DOWN, a buy stops UP), a sell `limit` + `gtc` with a `bracket` →
 *   `trigger_bracket_gtc` (take-profit limit and stop trigger on a held position). Anything else is
 *   refused: Coinbase has no stop-market, market-on-open or trailing order;
 * - `client_order_id` is the caller's deterministic id, sent as is. Coinbase is idempotent on it: a
 *   second submission returns the first order. A submission is sent ONCE: a timeout, 5xx, 429 or
 *   dropped connection throws {@link BrokerUnavailableError} and the caller resolves the outcome
 *   with {@link CoinbaseBroker.getOrderByClientOrderId} (`shared/live/submit.ts`), never by resending;
 * - every answer validated with zod; reads retried with backoff (Retry-After honoured);
 * - the calendar and clock are the 24/7 UTC calendar (the market never closes).
 */
import {
  BrokerRejectedError,
  BrokerResponseError,
  BrokerUnavailableError,
  InvalidParameterError,
  OrderSizeRefusedError,
} from '../../core/errors.js';
import { assertAssetClass } from '../../core/market/asset-class.js';
import { cryptoCalendar } from '../../core/market/crypto-calendar.js';
import type { FundingReading } from '../../core/market/funding.js';
import type {
  Broker,
  BrokerAccount,
  BrokerActivity,
  BrokerOrder,
  BrokerOrderStatus,
  BrokerPosition,
  MarketClock,
  OrderRequest,
  TradingDay,
} from '../../core/ports/broker.js';
import { formatBaseSize, type ProductIncrements, productQuantity } from '../../core/sizing/increments.js';
import { CoinbaseClient, type CoinbaseClientOptions, type FailureFactory } from './http.js';
import {
  accountsPageSchema,
  cancelSchema,
  createOrderSchema,
  fillsPageSchema,
  orderEnvelopeSchema,
  ordersPageSchema,
  productSchema,
  productsSchema,
  serverTimeSchema,
  type WireFill,
  type WireOrder,
  type WireProduct,
} from './schemas.js';

export const brokerFailures: FailureFactory = {
  unavailable: (message, status, cause) => new BrokerUnavailableError(message, status, { cause }),
  rejected: (message, status, cause) => new BrokerRejectedError(message, status, undefined, { cause }),
  malformed: (message, cause) => new BrokerResponseError(message, undefined, { cause }),
};

export interface CoinbaseBrokerOptions extends CoinbaseClientOptions {
  /** The quote currency of the account's cash and products (default USD). */
  readonly quoteCurrency?: string;
  /** Items per page of accounts, orders and fills, 1..250 (default 250). */
  readonly pageSize?: number;
}

/** A currency's balance: available to trade, and on hold for open orders. */
export interface CoinbaseBalance {
  readonly currency: string;
  readonly available: number;
  readonly hold: number;
  /** Whether Coinbase has the account active (an inactive cash account blocks trading). */
  readonly active: boolean;
}

/** A product's trading limits and state. */
export interface CoinbaseProduct extends ProductIncrements {
  readonly price: number | null;
  readonly quoteIncrement: number;
  readonly status: string;
  readonly tradingDisabled: boolean;
}

/** A fill with its fee. */
export interface CoinbaseFill {
  readonly entryId: string;
  readonly tradeId: string;
  readonly orderId: string;
  readonly productId: string;
  readonly side: 'buy' | 'sell';
  readonly size: number;
  readonly price: number;
  readonly commission: number;
  readonly time: string;
}

const PAGE = 250;
const MAX_PAGES = 1000;
const UNKNOWN_OUTCOME =
  'the order may or may not exist: resolve it by client order id before anything is resent';

export class CoinbaseBroker implements Broker {
  private readonly client: CoinbaseClient;
  private readonly quote: string;
  private readonly now: () => number;
  private readonly products = new Map<string, CoinbaseProduct>();
  private readonly page: number;

  constructor(options: CoinbaseBrokerOptions) {
    this.client = new CoinbaseClient(options, 'Coinbase broker', brokerFailures);
    this.quote = options.quoteCurrency ?? 'USD';
    this.now = options.now ?? Date.now;
    this.page = options.pageSize ?? PAGE;
    if (!(Number.isInteger(this.page) && this.page >= 1 && this.page <= PAGE)) {
      throw new InvalidParameterError(`Coinbase broker: pageSize must be an integer in 1..${PAGE}`);
    }
  }

  // --- accounts and holds -----------------------------------------------------------------------

  /** Every account's balance, available and on hold (cursor-paged). */
  async getBalances(): Promise<CoinbaseBalance[]> {
    const balances: CoinbaseBalance[] = [];
    let cursor: string | undefined;
    for (let page = 1; page <= MAX_PAGES; page++) {
      const body = await this.client.call(
        `list accounts (page ${page})`,
        'GET',
        '/accounts',
        accountsPageSchema,
        {
          query: { limit: this.page, cursor },
          idempotent: true,
        },
      );
      for (const a of body.accounts) {
        balances.push({
          currency: a.currency,
          available: a.available_balance.value,
          hold: a.hold.value,
          active: a.active,
        });
      }
      if (!body.has_next || body.cursor === '') return balances;
      cursor = body.cursor;
    }
    throw new BrokerResponseError(`Coinbase broker: list accounts: more than ${MAX_PAGES} pages`);
  }

  /**
   * Equity = quote cash (available + hold) + every coin at its product's price. Coinbase reports
   * no previous-close equity: `lastEquity` is today's, and the crypto bot records its UTC-day
   * starting equity itself.
   */
  async getAccount(): Promise<BrokerAccount> {
    const balances = await this.getBalances();
    const cash = balances.find((b) => b.currency === this.quote);
    let equity = cash === undefined ? 0 : cash.available + cash.hold;
    for (const p of await this.positionsFrom(balances)) equity += p.marketValue;
    return {
      equity,
      lastEquity: equity,
      cash: cash === undefined ? 0 : cash.available + cash.hold,
      buyingPower: cash?.available ?? 0,
      tradingBlocked: cash === undefined || !cash.active,
      status: cash === undefined ? `no ${this.quote} account` : cash.active ? 'ACTIVE' : 'INACTIVE',
    };
  }

  /** Coin balances as long positions in `<COIN>-<QUOTE>` (Coinbase keeps no cost basis: avgEntryPrice 0). */
  async getPositions(): Promise<BrokerPosition[]> {
    return this.positionsFrom(await this.getBalances());
  }

  private async positionsFrom(balances: readonly CoinbaseBalance[]): Promise<BrokerPosition[]> {
    const positions: BrokerPosition[] = [];
    for (const b of balances) {
      const qty = b.available + b.hold;
      if (b.currency === this.quote || !(qty > 0)) continue;
      const symbol = `${b.currency}-${this.quote}`;
      const product = await this.getProduct(symbol, true);
      const price = product.price ?? 0;
      positions.push({
        symbol,
        qty,
        avgEntryPrice: 0,
        marketValue: qty * price,
        currentPrice: price,
        assetClass: 'crypto',
      });
    }
    return positions;
  }

  // --- products ---------------------------------------------------------------------------------

  /** A product's increments, minimums, status and price; cached unless `fresh` (the price moves). */
  async getProduct(productId: string, fresh = false): Promise<CoinbaseProduct> {
    const cached = this.products.get(productId);
    if (cached !== undefined && !fresh) return cached;
    const wire = await this.client.call(
      `get product ${productId}`,
      'GET',
      `/products/${encodeURIComponent(productId)}`,
      productSchema,
      { idempotent: true },
    );
    const product = toProduct(wire);
    this.products.set(productId, product);
    return product;
  }

  /** Funding rates of the BTC and ETH perpetual-style futures (`GET /products?product_type=FUTURE`). */
  async getFundingRates(underlyings: readonly string[] = ['BTC', 'ETH']): Promise<FundingReading[]> {
    const body = await this.client.call('list futures products', 'GET', '/products', productsSchema, {
      query: { product_type: 'FUTURE' },
      idempotent: true,
    });
    const readings: FundingReading[] = [];
    for (const p of body.products) {
      const details = p.future_product_details;
      const underlying = details?.contract_root_unit;
      if (details == null || underlying === undefined || !underlyings.includes(underlying)) continue;
      const rate = details.funding_rate ?? details.perpetual_details?.funding_rate;
      const time = details.funding_time ?? details.perpetual_details?.funding_time;
      if (rate === undefined || rate === '' || time === undefined || time === '') continue;
      readings.push({ productId: p.product_id, underlying, rate, time: new Date(time).toISOString() });
    }
    return readings;
  }

  // --- orders -----------------------------------------------------------------------------------

  async submitOrder(order: OrderRequest): Promise<BrokerOrder> {
    assertAssetClass('crypto', order.symbol, `Coinbase broker: submit ${order.clientOrderId}`);
    const product = await this.getProduct(order.symbol);
    if (product.tradingDisabled || !['online', 'ONLINE'].includes(product.status)) {
      throw new BrokerRejectedError(
        `Coinbase broker: submit ${order.clientOrderId}: ${order.symbol} is not trading (status ${product.status})`,
      );
    }
    const reference = order.limitPrice ?? order.stopPrice ?? order.bracket?.stopLoss ?? product.price;
    if (reference === null || reference === undefined) {
      throw new BrokerRejectedError(
        `Coinbase broker: submit ${order.clientOrderId}: ${order.symbol} has no price`,
      );
    }
    const sized = productQuantity(order.qty, reference, product);
    if (sized.refusal !== null) {
      throw new OrderSizeRefusedError(
        order.symbol,
        sized.refusal,
        `Coinbase broker: submit ${order.clientOrderId}: ${sized.message}`,
      );
    }
    const body = {
      client_order_id: order.clientOrderId,
      product_id: order.symbol,
      side: order.side === 'buy' ? 'BUY' : 'SELL',
      order_configuration: orderConfiguration(
        order,
        formatBaseSize(sized.qty, product.baseIncrement),
        product,
      ),
    };
    const what = `submit ${order.clientOrderId}`;
    const created = await this.client.call(what, 'POST', '/orders', createOrderSchema, {
      body,
      idempotent: false,
      unknownOutcomeNote: UNKNOWN_OUTCOME,
    });
    if (!created.success || created.success_response === undefined) {
      const e = created.error_response;
      const reason =
        [e?.error, e?.message, e?.preview_failure_reason].filter(Boolean).join(': ') || 'refused';
      throw new BrokerRejectedError(`Coinbase broker: ${what}: ${reason}`);
    }
    return this.getOrder(created.success_response.order_id);
  }

  /** One order by Coinbase's order id. */
  async getOrder(orderId: string): Promise<BrokerOrder> {
    const body = await this.client.call(
      `get order ${orderId}`,
      'GET',
      `/orders/historical/${encodeURIComponent(orderId)}`,
      orderEnvelopeSchema,
      { idempotent: true },
    );
    return toBrokerOrder(body.order);
  }

  /**
   * The order with this client order id, or null. Coinbase has no lookup by client order id: the
   * orders are listed (cursor-paged) from the day before the id's date (`...-YYYYMMDD-...`) when
   * it carries one.
   */
  async getOrderByClientOrderId(clientOrderId: string): Promise<BrokerOrder | null> {
    const day = /-(\d{4})(\d{2})(\d{2})-/.exec(clientOrderId);
    const after =
      day === null
        ? undefined
        : new Date(Date.UTC(Number(day[1]), Number(day[2]) - 1, Number(day[3]) - 1)).toISOString();
    const found = await this.pageOrders(
      `find order ${clientOrderId}`,
      { start_date: after },
      (o) => o.client_order_id === clientOrderId,
    );
    return found[0] === undefined ? null : toBrokerOrder(found[0]);
  }

  async listOrders(filter: {
    readonly status: 'open' | 'closed' | 'all';
    readonly after?: string;
    readonly symbols?: readonly string[];
  }): Promise<BrokerOrder[]> {
    if (filter.after !== undefined && Number.isNaN(Date.parse(filter.after))) {
      throw new InvalidParameterError(
        `Coinbase broker: list orders: after "${filter.after}" is not an ISO time`,
      );
    }
    const wire = await this.pageOrders(
      'list orders',
      {
        ...(filter.status === 'open' ? { order_status: ['OPEN'] } : {}),
        ...(filter.symbols === undefined ? {} : { product_ids: filter.symbols }),
        start_date: filter.after,
      },
      (o) => filter.status !== 'closed' || !['OPEN', 'PENDING', 'QUEUED'].includes(o.status),
    );
    return wire.map(toBrokerOrder).sort((a, b) => a.submittedAt.localeCompare(b.submittedAt));
  }

  private async pageOrders(
    what: string,
    query: Record<string, string | readonly string[] | undefined>,
    keep: (order: WireOrder) => boolean,
  ): Promise<WireOrder[]> {
    const kept: WireOrder[] = [];
    let cursor: string | undefined;
    for (let page = 1; page <= MAX_PAGES; page++) {
      const body = await this.client.call(
        `${what} (page ${page})`,
        'GET',
        '/orders/historical/batch',
        ordersPageSchema,
        {
          query: { ...query, limit: this.page, cursor },
          idempotent: true,
        },
      );
      kept.push(...body.orders.filter(keep));
      if (!body.has_next || body.cursor === '') return kept;
      cursor = body.cursor;
    }
    throw new BrokerResponseError(`Coinbase broker: ${what}: more than ${MAX_PAGES} pages`);
  }

  /** Cancels an order; one already cancelled or done counts as cancelled. Retried: cancelling twice is harmless. */
  async cancelOrder(orderId: string): Promise<void> {
    const body = await this.client.call(`cancel ${orderId}`, 'POST', '/orders/batch_cancel', cancelSchema, {
      body: { order_ids: [orderId] },
      idempotent: true,
    });
    const result = body.results.find((r) => r.order_id === orderId);
    if (result === undefined) {
      throw new BrokerResponseError(`Coinbase broker: cancel ${orderId}: no result for the order`);
    }
    if (!result.success && result.failure_reason !== 'DUPLICATE_CANCEL_REQUEST') {
      const order = await this.getOrder(orderId);
      if (order.status === 'canceled') return;
      throw new BrokerRejectedError(
        `Coinbase broker: cancel ${orderId}: ${result.failure_reason ?? 'refused'} (order ${order.status})`,
      );
    }
  }

  // --- fills ------------------------------------------------------------------------------------

  /** Fills (cursor-paged), oldest first, optionally of one order or product, after an ISO time. */
  async listFills(
    filter: {
      readonly orderId?: string;
      readonly productId?: string;
      readonly after?: string;
      readonly until?: string;
    } = {},
  ): Promise<CoinbaseFill[]> {
    const fills: CoinbaseFill[] = [];
    let cursor: string | undefined;
    for (let page = 1; page <= MAX_PAGES; page++) {
      const body = await this.client.call(
        `list fills (page ${page})`,
        'GET',
        '/orders/historical/fills',
        fillsPageSchema,
        {
          query: {
            limit: this.page,
            cursor,
            ...(filter.orderId === undefined ? {} : { order_ids: [filter.orderId] }),
            ...(filter.productId === undefined ? {} : { product_ids: [filter.productId] }),
            ...(filter.after === undefined ? {} : { start_sequence_timestamp: filter.after }),
            ...(filter.until === undefined ? {} : { end_sequence_timestamp: filter.until }),
          },
          idempotent: true,
        },
      );
      fills.push(...body.fills.map(toFill));
      if (body.cursor === '') break;
      cursor = body.cursor;
      if (page === MAX_PAGES)
        throw new BrokerResponseError(`Coinbase broker: list fills: more than ${MAX_PAGES} pages`);
    }
    return fills.sort((a, b) => a.time.localeCompare(b.time) || a.entryId.localeCompare(b.entryId));
  }

  /** Fills as broker activities (Coinbase spot has no splits or dividends). */
  async getActivities(filter: {
    readonly after?: string;
    readonly until?: string;
  }): Promise<BrokerActivity[]> {
    const fills = await this.listFills({
      ...(filter.after === undefined ? {} : { after: filter.after }),
      ...(filter.until === undefined ? {} : { until: filter.until }),
    });
    const done = new Map<string, boolean>();
    const activities: BrokerActivity[] = [];
    for (const f of fills) {
      if (!done.has(f.orderId)) done.set(f.orderId, (await this.getOrder(f.orderId)).status === 'filled');
      activities.push({
        kind: 'fill',
        id: f.entryId,
        orderId: f.orderId,
        symbol: f.productId,
        side: f.side,
        qty: f.size,
        price: f.price,
        time: f.time,
        partial: done.get(f.orderId) !== true,
      });
    }
    return activities;
  }

  // --- calendar ---------------------------------------------------------------------------------

  /**
   * The exchange's clock (`GET /time`), as an ISO instant: the crypto bot's clock port, which
   * execute-orders checks the 01:00 UTC cutoff against (a late retry carries its scheduled time).
   */
  async getServerTime(): Promise<string> {
    return this.client.call('get the server time', 'GET', '/time', serverTimeSchema, { idempotent: true });
  }

  async getClock(): Promise<MarketClock> {
    return cryptoCalendar.clock(this.now());
  }

  async getCalendar(range: { readonly from: string; readonly to: string }): Promise<TradingDay[]> {
    return cryptoCalendar.sessions(range.from, range.to);
  }
}

function toProduct(p: WireProduct): CoinbaseProduct {
  return {
    productId: p.product_id,
    price: p.price,
    baseIncrement: p.base_increment,
    baseMinSize: p.base_min_size,
    quoteIncrement: p.quote_increment,
    ...(p.quote_min_size === undefined ? {} : { quoteMinSize: p.quote_min_size }),
    status: p.status,
    tradingDisabled: p.trading_disabled,
  };
}

/** A price at the product's quote increment, as a decimal string. */
function priceString(price: number, product: CoinbaseProduct): string {
  const decimals = Math.max(0, Math.round(-Math.log10(product.quoteIncrement)));
  return price.toFixed(decimals);
}

function orderConfiguration(
  order: OrderRequest,
  baseSize: string,
  product: CoinbaseProduct,
): Record<string, unknown> {
  const refuse = (why: string) =>
    new BrokerRejectedError(`Coinbase broker: submit ${order.clientOrderId}: ${why}`);
  if (order.type === 'market') {
    if (order.timeInForce !== 'ioc') throw refuse('a market order is immediate-or-cancel (timeInForce ioc)');
    return { market_market_ioc: { base_size: baseSize } };
  }
  if (order.timeInForce !== 'gtc')
    throw refuse(`${order.type} orders are good-till-cancelled (timeInForce gtc)`);
  if (order.type === 'limit' && order.bracket !== undefined) {
    if (order.side !== 'sell') throw refuse('a trigger bracket protects a held position: it sells');
    return {
      trigger_bracket_gtc: {
        base_size: baseSize,
        limit_price: priceString(order.bracket.takeProfitLimit, product),
        stop_trigger_price: priceString(order.bracket.stopLoss, product),
      },
    };
  }
  if (order.type === 'limit') {
    if (order.limitPrice === undefined) throw refuse('a limit order needs limitPrice');
    return {
      limit_limit_gtc: {
        base_size: baseSize,
        limit_price: priceString(order.limitPrice, product),
        post_only: false,
      },
    };
  }
  if (order.type === 'stop_limit') {
    if (order.limitPrice === undefined || order.stopPrice === undefined) {
      throw refuse('a stop_limit order needs stopPrice and limitPrice');
    }
    return {
      stop_limit_stop_limit_gtc: {
        base_size: baseSize,
        limit_price: priceString(order.limitPrice, product),
        stop_price: priceString(order.stopPrice, product),
        stop_direction: order.side === 'sell' ? 'STOP_DIRECTION_STOP_DOWN' : 'STOP_DIRECTION_STOP_UP',
      },
    };
  }
  throw refuse(
    `Coinbase has no ${order.type} order (use market ioc, limit, stop_limit or a trigger bracket)`,
  );
}

const STATUS: Readonly<Record<WireOrder['status'], BrokerOrderStatus>> = {
  PENDING: 'pending_new',
  QUEUED: 'pending_new',
  OPEN: 'new',
  FILLED: 'filled',
  CANCELLED: 'canceled',
  CANCEL_QUEUED: 'pending_cancel',
  EXPIRED: 'expired',
  FAILED: 'rejected',
  UNKNOWN_ORDER_STATUS: 'held',
};

export function toBrokerOrder(o: WireOrder): BrokerOrder {
  const c = o.order_configuration;
  const market = c.market_market_ioc;
  const limit = c.limit_limit_gtc;
  const stop = c.stop_limit_stop_limit_gtc;
  const bracket = c.trigger_bracket_gtc;
  const qty = market?.base_size ?? limit?.base_size ?? stop?.base_size ?? bracket?.base_size;
  if (qty === undefined) {
    throw new BrokerResponseError(`Coinbase broker: order ${o.order_id}: no known order_configuration`);
  }
  let status = STATUS[o.status];
  if (status === 'new' && o.filled_size > 0) status = 'partially_filled';
  return {
    id: o.order_id,
    clientOrderId: o.client_order_id,
    symbol: o.product_id,
    side: o.side === 'BUY' ? 'buy' : 'sell',
    type: market !== undefined ? 'market' : stop !== undefined ? 'stop_limit' : 'limit',
    timeInForce: market !== undefined ? 'ioc' : 'gtc',
    qty,
    filledQty: o.filled_size,
    filledAvgPrice: o.filled_size > 0 ? o.average_filled_price : null,
    limitPrice: limit?.limit_price ?? stop?.limit_price ?? bracket?.limit_price ?? null,
    stopPrice: stop?.stop_price ?? bracket?.stop_trigger_price ?? null,
    status,
    submittedAt: o.created_time,
    filledAt: o.status === 'FILLED' ? (o.last_fill_time ?? null) : null,
    legs: [],
  };
}

function toFill(f: WireFill): CoinbaseFill {
  if (f.size_in_quote) {
    // Size in quote currency (an order sized by notional): the base quantity is size / price.
    return { ...baseFill(f), size: f.size / f.price };
  }
  return baseFill(f);
}

function baseFill(f: WireFill): CoinbaseFill {
  return {
    entryId: f.entry_id,
    tradeId: f.trade_id,
    orderId: f.order_id,
    productId: f.product_id,
    side: f.side === 'BUY' ? 'buy' : 'sell',
    size: f.size,
    price: f.price,
    commission: f.commission,
    time: new Date(f.trade_time).toISOString(),
  };
}
