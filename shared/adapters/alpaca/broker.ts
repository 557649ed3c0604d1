/**
 * The {@link Broker} port on Alpaca's trading API (v2), through the official SDK v4's raw trading
 * classes (`trading.OrdersApi`, `AccountsApi`, `PositionsApi`, `AccountActivitiesApi`, `ClockApi`,
 * `CalendarApi`) with a `basePath`, so the same adapter drives Alpaca (paper or live keys) and the
 * local paper broker (`shared/adapters/local/alpaca-server.ts`). The SDK carries the transport: the
 * key headers, the per-attempt timeout and client-side rate limiting. This module adds what the
 * port promises:
 *
 * - every response validated with zod (a violation is a {@link BrokerResponseError} naming the field);
 * - retries with backoff on 429 (Retry-After honoured, capped) and 5xx, and on network failures,
 *   **only for idempotent calls** (every GET, and DELETE of an order). The SDK's own retry is off: it
 *   repeats only GETs, and a cancel deserves the same care; a cancel whose first answer was lost and
 *   whose retry hears 422 "already canceled" is a success;
 * - `submitOrder` is sent **once**: a timeout, 5xx, 429 or dropped connection throws
 *   {@link BrokerUnavailableError} and the caller resolves the outcome with
 *   {@link AlpacaBroker.getOrderByClientOrderId}, never by resubmitting blindly;
 * - 422 "client_order_id must be unique" is {@link DuplicateClientOrderIdError}; any other final 4xx
 *   is {@link BrokerRejectedError} with the broker's message, status and code;
 * - the key id and secret are blanked out of every message; the adapter logs nothing.
 *
 * Prices are sent as given: Alpaca refuses sub-penny prices (two decimals from $1, four below), so
 * callers round their limits and stops.
 */
import { ApiError, FetchError, trading } from '@alpacahq/alpaca-trade-api/rest';
import * as z from 'zod';
import {
  BrokerError,
  BrokerRejectedError,
  BrokerResponseError,
  BrokerUnavailableError,
  DuplicateClientOrderIdError,
  InvalidParameterError,
} from '../../core/errors.js';
import { assertAssetClass } from '../../core/market/asset-class.js';
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
import {
  type AlpacaClientOptions,
  type AlpacaRetryEvent,
  type AlpacaRetryOptions,
  DEFAULT_BASE_DELAY_MS,
  DEFAULT_MAX_DELAY_MS,
  DEFAULT_MAX_RETRIES,
  MIN_REDACTED_LENGTH,
} from './options.js';

/** What {@link AlpacaBrokerOptions.onRetry} reports before each retry (never a key). */
export type BrokerRetryEvent = AlpacaRetryEvent & { readonly operation: string };

/** How {@link AlpacaBroker} retries idempotent calls. */
export type BrokerRetryOptions = AlpacaRetryOptions;

/** Construction options of {@link AlpacaBroker}. */
export interface AlpacaBrokerOptions extends AlpacaClientOptions<BrokerRetryEvent> {
  /** Without `baseUrl`: Alpaca's paper trading host (true, the default) or its live one (false). */
  readonly paper?: boolean;
  /** The transport (default the global `fetch`), e.g. `keepAliveFetch()` for a long-running process. */
  readonly fetchApi?: typeof fetch;
}

const DEFAULT_TIMEOUT_MS = 30_000;
/** Alpaca's largest page of orders and of activities. */
const ORDER_PAGE = 500;
const ACTIVITY_PAGE = 100;
const DUPLICATE_MESSAGE = /client_order_id must be unique/i;

// ---------------------------------------------------------------------------------------------
// Wire schemas (Alpaca v2, snake_case; decimals as strings)

/** A decimal as Alpaca writes it (a string; a JSON number is accepted too). */
const decimal = z
  .union([
    z.string().regex(/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/, 'expected a decimal string'),
    z.number(),
  ])
  .transform(Number)
  .pipe(z.number());
/** Quantities and prices: finite and above zero (a lost sign or a zero price is refused, never used). */
const positiveDecimal = decimal.pipe(z.number().positive('must be a positive number'));
const nonNegativeDecimal = decimal.pipe(z.number().nonnegative('must not be negative'));
const instant = z.iso.datetime({ offset: true });
const ORDER_STATUSES = [
  'new',
  'accepted',
  'pending_new',
  'partially_filled',
  'filled',
  'done_for_day',
  'canceled',
  'expired',
  'replaced',
  'pending_cancel',
  'pending_replace',
  'rejected',
  'suspended',
  'stopped',
  'calculated',
  'held',
] as const satisfies readonly BrokerOrderStatus[];

const wireOrderSchema = z.object({
  id: z.string().min(1),
  client_order_id: z.string().min(1),
  symbol: z.string().min(1),
  side: z.enum(['buy', 'sell']),
  type: z.enum(['market', 'limit', 'stop', 'stop_limit', 'trailing_stop']),
  time_in_force: z.enum(['day', 'gtc', 'opg', 'cls', 'ioc', 'fok']),
  qty: positiveDecimal,
  filled_qty: nonNegativeDecimal,
  filled_avg_price: positiveDecimal.nullable(),
  limit_price: positiveDecimal.nullable().optional(),
  stop_price: positiveDecimal.nullable().optional(),
  status: z.enum(ORDER_STATUSES),
  submitted_at: instant,
  filled_at: instant.nullable().optional(),
  get legs() {
    return z.array(wireOrderSchema).nullable().optional();
  },
});
/** An order answer: its fields, and never more filled than ordered. */
const orderSchema = wireOrderSchema.refine((o) => o.filled_qty <= o.qty, {
  message: 'exceeds qty',
  path: ['filled_qty'],
});
type WireOrder = z.infer<typeof wireOrderSchema>;

const accountSchema = z.object({
  status: z.string().min(1),
  cash: decimal,
  equity: decimal,
  last_equity: decimal,
  buying_power: decimal,
  trading_blocked: z.boolean(),
  account_blocked: z.boolean().optional(),
});

const positionSchema = z
  .object({
    symbol: z.string().min(1),
    qty: decimal.refine((q) => q !== 0, 'a position of 0 shares'),
    // Required: the side is checked against the sign of qty, so a lost minus sign is caught.
    side: z.enum(['long', 'short']),
    avg_entry_price: positiveDecimal,
    market_value: decimal,
    current_price: positiveDecimal,
    asset_class: z.string().min(1),
  })
  .refine((p) => (p.side === 'short') === p.qty < 0, {
    message: 'disagrees with the sign of qty',
    path: ['side'],
  });

const activityDate = z
  .union([z.iso.date(), instant])
  .transform((text) => text.slice(0, 10))
  .pipe(z.iso.date());

const activitySchema = z.discriminatedUnion('activity_type', [
  z.object({
    activity_type: z.literal('FILL'),
    id: z.string().min(1),
    order_id: z.string().min(1),
    symbol: z.string().min(1),
    side: z.enum(['buy', 'sell']),
    qty: positiveDecimal,
    price: positiveDecimal,
    transaction_time: instant,
    type: z.enum(['fill', 'partial_fill']),
  }),
  z.object({
    activity_type: z.literal('DIV'),
    id: z.string().min(1),
    symbol: z.string().min(1),
    date: activityDate,
    per_share_amount: positiveDecimal,
  }),
  z.object({
    activity_type: z.literal('SPLIT'),
    id: z.string().min(1),
    symbol: z.string().min(1),
    date: activityDate,
    qty: decimal.refine((q) => q !== 0, 'must not be 0'),
  }),
]);
type WireActivity = z.infer<typeof activitySchema>;

const clockSchema = z.object({
  timestamp: instant,
  is_open: z.boolean(),
  next_open: instant,
  next_close: instant,
});

const hhmm = z.string().regex(/^\d{2}:\d{2}$/, 'expected HH:MM');
const calendarSchema = z.array(z.object({ date: z.iso.date(), open: hhmm, close: hhmm }));

// ---------------------------------------------------------------------------------------------

/** {@link Broker} on Alpaca's trading REST API (SDK v4, raw trading classes with a `basePath`). */
export class AlpacaBroker implements Broker {
  private readonly ordersApi: trading.OrdersApi;
  private readonly accountsApi: trading.AccountsApi;
  private readonly positionsApi: trading.PositionsApi;
  private readonly activitiesApi: trading.AccountActivitiesApi;
  private readonly clockApi: trading.ClockApi;
  private readonly calendarApi: trading.CalendarApi;
  private readonly maxRetries: number;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly timeoutMs: number;
  private readonly onRetry: ((event: BrokerRetryEvent) => void) | undefined;
  private readonly secrets: readonly string[];

  constructor(options: AlpacaBrokerOptions) {
    if (!options.keyId || !options.secret) {
      throw new InvalidParameterError('Alpaca broker: both an API key id and a secret are required');
    }
    this.maxRetries = options.retry?.maxRetries ?? DEFAULT_MAX_RETRIES;
    this.baseDelayMs = options.retry?.baseDelayMs ?? DEFAULT_BASE_DELAY_MS;
    this.maxDelayMs = options.retry?.maxDelayMs ?? DEFAULT_MAX_DELAY_MS;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.onRetry = options.onRetry;
    this.secrets = [options.keyId, options.secret].filter((s) => s.length >= MIN_REDACTED_LENGTH);
    if (!Number.isInteger(this.maxRetries) || this.maxRetries < 0) {
      throw new InvalidParameterError('Alpaca broker: retry.maxRetries must be an integer >= 0');
    }
    for (const [name, value] of [
      ['retry.baseDelayMs', this.baseDelayMs],
      ['retry.maxDelayMs', this.maxDelayMs],
      ['timeoutMs', this.timeoutMs],
    ] as const) {
      if (!(value >= 0) || !Number.isFinite(value)) {
        throw new InvalidParameterError(`Alpaca broker: ${name} must be a finite number >= 0`);
      }
    }
    const rateLimit = options.rateLimit ?? { maxRequests: 200, intervalMs: 60_000 };
    const configuration = new trading.Configuration({
      keyId: options.keyId,
      secret: options.secret,
      ...(options.baseUrl === undefined
        ? { paper: options.paper ?? true }
        : { basePath: options.baseUrl.replace(/\/+$/, '') }),
      timeoutMs: this.timeoutMs,
      ...(rateLimit === false ? {} : { rateLimit }),
      // Retries are this module's (idempotent calls only); the SDK's would repeat GETs alone.
      retry: { maxRetries: 0 },
      ...(options.fetchApi === undefined ? {} : { fetchApi: options.fetchApi }),
    });
    this.ordersApi = new trading.OrdersApi(configuration);
    this.accountsApi = new trading.AccountsApi(configuration);
    this.positionsApi = new trading.PositionsApi(configuration);
    this.activitiesApi = new trading.AccountActivitiesApi(configuration);
    this.clockApi = new trading.ClockApi(configuration);
    this.calendarApi = new trading.CalendarApi(configuration);
  }

  async getAccount(): Promise<BrokerAccount> {
    const what = 'get account';
    const body = await this.read(what, true, () => this.accountsApi.getAccountRaw());
    const account = this.parse(what, accountSchema, body);
    return {
      equity: account.equity,
      lastEquity: account.last_equity,
      cash: account.cash,
      buyingPower: account.buying_power,
      tradingBlocked: account.trading_blocked || account.account_blocked === true,
      status: account.status,
    };
  }

  async getPositions(): Promise<BrokerPosition[]> {
    const what = 'get positions';
    const body = await this.read(what, true, () => this.positionsApi.getAllOpenPositionsRaw());
    return this.parse(what, z.array(positionSchema), body).map((p) => {
      return {
        symbol: p.symbol,
        qty: p.qty,
        avgEntryPrice: p.avg_entry_price,
        marketValue: p.market_value,
        currentPrice: p.current_price,
        assetClass: p.asset_class,
      };
    });
  }

  /** Sent once, never retried: an unknown outcome throws {@link BrokerUnavailableError}. */
  async submitOrder(order: OrderRequest): Promise<BrokerOrder> {
    // The equity bot never trades crypto (Alpaca would take BTC/USD): refused before any request.
    assertAssetClass('equity', order.symbol, `Alpaca broker: submit ${order.clientOrderId}`);
    const request = toPostOrder(order);
    const what = `submit order "${order.clientOrderId}"`;
    const body = await this.read(
      what,
      false,
      () => this.ordersApi.postOrderRaw({ postOrderRequest: request }),
      order.clientOrderId,
    );
    const placed = this.parse(what, orderSchema, body);
    if (placed.client_order_id !== order.clientOrderId) {
      throw new BrokerResponseError(
        this.redact(
          `Alpaca broker: ${what}: the answer is for client order id "${placed.client_order_id}", not "${order.clientOrderId}"`,
        ),
      );
    }
    return toBrokerOrder(placed);
  }

  async getOrderByClientOrderId(clientOrderId: string): Promise<BrokerOrder | null> {
    const what = `get order by client order id "${clientOrderId}"`;
    let body: unknown;
    try {
      body = await this.read(what, true, () => this.ordersApi.getOrderByClientOrderIdRaw({ clientOrderId }));
    } catch (error) {
      if (error instanceof BrokerRejectedError && error.status === 404) return null;
      throw error;
    }
    return toBrokerOrder(this.parse(what, orderSchema, body));
  }

  /** Every matching order, oldest first, bracket legs nested; pages of 500 by submission time. */
  async listOrders(filter: {
    readonly status: 'open' | 'closed' | 'all';
    readonly after?: string;
    readonly symbols?: readonly string[];
  }): Promise<BrokerOrder[]> {
    if (filter.after !== undefined && Number.isNaN(Date.parse(filter.after))) {
      throw new InvalidParameterError(
        `Alpaca broker: list orders: after "${filter.after}" is not an ISO time`,
      );
    }
    const symbols = filter.symbols?.map((s) => s.trim().toUpperCase()).join(',');
    const seen = new Set<string>();
    const orders: BrokerOrder[] = [];
    let after = filter.after;
    for (let page = 1; ; page++) {
      const what = `list orders (page ${page})`;
      const body = await this.read(what, true, () =>
        this.ordersApi.getAllOrdersRaw({
          status: filter.status,
          limit: ORDER_PAGE,
          direction: 'asc',
          nested: true,
          ...(after === undefined ? {} : { after }),
          ...(symbols === undefined || symbols === '' ? {} : { symbols }),
        }),
      );
      const wire = this.parse(what, z.array(orderSchema), body);
      let added = 0;
      for (const order of wire) {
        if (seen.has(order.id)) continue;
        seen.add(order.id);
        orders.push(toBrokerOrder(order));
        added++;
      }
      const last = wire.at(-1);
      if (wire.length < ORDER_PAGE || last === undefined) return orders;
      if (added === 0) {
        throw new BrokerResponseError(
          `Alpaca broker: ${what}: more than ${ORDER_PAGE} orders submitted at ${last.submitted_at}; they cannot be paged by time`,
        );
      }
      // Orders sharing the last one's timestamp may straddle the page: ask again from just before it.
      after = new Date(Date.parse(last.submitted_at) - 1).toISOString();
    }
  }

  /** Idempotent: an order already canceled is not an error; one filled or expired is rejected. */
  async cancelOrder(orderId: string): Promise<void> {
    const what = `cancel order ${orderId}`;
    try {
      await this.read(what, true, () => this.ordersApi.deleteOrderByOrderIDRaw({ orderId }));
    } catch (error) {
      if (!(error instanceof BrokerRejectedError) || error.status !== 422) throw error;
      const body = await this.read(`get order ${orderId}`, true, () =>
        this.ordersApi.getOrderByOrderIDRaw({ orderId }),
      );
      const order = this.parse(`get order ${orderId}`, orderSchema, body);
      if (order.status !== 'canceled') throw error;
    }
  }

  /** Fills, dividends and splits after `after` and before `until`, oldest first, every page followed. */
  async getActivities(filter: {
    readonly after?: string;
    readonly until?: string;
  }): Promise<BrokerActivity[]> {
    const bound = (name: string, text: string | undefined): Date | undefined => {
      if (text === undefined) return undefined;
      const time = Date.parse(text);
      if (Number.isNaN(time)) {
        throw new InvalidParameterError(`Alpaca broker: activities: ${name} "${text}" is not an ISO time`);
      }
      return new Date(time);
    };
    const after = bound('after', filter.after);
    const until = bound('until', filter.until);
    const wire: WireActivity[] = [];
    const tokens = new Set<string>();
    let pageToken: string | undefined;
    for (let page = 1; ; page++) {
      const what = `get activities (page ${page})`;
      const body = await this.read(what, true, () =>
        this.activitiesApi.getAccountActivitiesRaw({
          activityTypes: ['FILL', 'DIV', 'SPLIT'],
          direction: 'asc',
          pageSize: ACTIVITY_PAGE,
          ...(after === undefined ? {} : { after }),
          ...(until === undefined ? {} : { until }),
          ...(pageToken === undefined ? {} : { pageToken }),
        }),
      );
      const items = this.parse(what, z.array(activitySchema), body);
      wire.push(...items);
      const last = items.at(-1);
      if (items.length < ACTIVITY_PAGE || last === undefined) break;
      if (tokens.has(last.id)) {
        throw new BrokerResponseError(
          `Alpaca broker: ${what}: the page ends on an id already seen (${last.id})`,
        );
      }
      tokens.add(last.id);
      pageToken = last.id;
    }
    return this.toActivities(wire);
  }

  async getClock(): Promise<MarketClock> {
    const what = 'get clock';
    const body = await this.read(what, true, () => this.clockApi.legacyClockRaw());
    const clock = this.parse(what, clockSchema, body);
    return {
      timestamp: clock.timestamp,
      isOpen: clock.is_open,
      nextOpen: clock.next_open,
      nextClose: clock.next_close,
    };
  }

  async getCalendar(range: { readonly from: string; readonly to: string }): Promise<TradingDay[]> {
    const start = parseDay(range.from);
    const end = parseDay(range.to);
    if (Number.isNaN(start))
      throw new InvalidParameterError(`Alpaca broker: calendar: from "${range.from}" is not YYYY-MM-DD`);
    if (Number.isNaN(end))
      throw new InvalidParameterError(`Alpaca broker: calendar: to "${range.to}" is not YYYY-MM-DD`);
    const what = `get calendar ${range.from}..${range.to}`;
    const body = await this.read(what, true, () =>
      this.calendarApi.legacyCalendarRaw({ start: new Date(start), end: new Date(end) }),
    );
    return this.parse(what, calendarSchema, body)
      .filter((d) => d.date >= range.from && d.date <= range.to)
      .map((d) => ({ date: d.date, open: d.open, close: d.close }));
  }

  // -------------------------------------------------------------------------------------------

  /**
   * One call's body as parsed JSON (undefined for an empty body). Idempotent calls are retried on
   * 429, 5xx and network failures; every failure left becomes a {@link BrokerError}.
   */
  private async read(
    what: string,
    idempotent: boolean,
    call: () => Promise<{ raw: Response }>,
    clientOrderId?: string,
  ): Promise<unknown> {
    let text: string;
    for (let attempt = 0; ; attempt++) {
      try {
        const response = await call();
        text = await response.raw.text();
        break;
      } catch (error) {
        const status = error instanceof ApiError ? error.status : undefined;
        const retryable =
          idempotent &&
          (status === undefined
            ? isNetworkFailure(error)
            : status === 429 || status === 408 || (status >= 500 && status < 600));
        if (!retryable || attempt >= this.maxRetries) {
          throw this.failure(what, error, idempotent ? attempt : undefined, clientOrderId);
        }
        const delayMs = this.retryDelay(error, attempt);
        this.onRetry?.({
          operation: what,
          attempt: attempt + 1,
          maxRetries: this.maxRetries,
          delayMs: Math.round(delayMs),
          ...(status === undefined ? {} : { status }),
        });
        await sleep(delayMs);
      }
    }
    if (text === '') return undefined;
    try {
      return JSON.parse(text);
    } catch (error) {
      throw new BrokerResponseError(
        this.redact(`Alpaca broker: ${what}: the response is not JSON`),
        undefined,
        {
          cause: error,
        },
      );
    }
  }

  private retryDelay(error: unknown, attempt: number): number {
    const retryAfter = error instanceof ApiError ? error.retryAfterMs : undefined;
    if (retryAfter !== undefined) return Math.min(retryAfter, this.maxDelayMs);
    const backoff = Math.min(this.baseDelayMs * 2 ** attempt, this.maxDelayMs);
    return Math.min(backoff * (0.8 + Math.random() * 0.4), this.maxDelayMs);
  }

  /** Maps a transport failure to the port's errors; `retries` is how many were made (idempotent calls). */
  private failure(
    what: string,
    error: unknown,
    retries: number | undefined,
    clientOrderId?: string,
  ): BrokerError {
    if (error instanceof BrokerError) return error;
    const prefix = `Alpaca broker: ${what}`;
    const after =
      retries === undefined || retries === 0
        ? ''
        : ` after ${retries} ${retries === 1 ? 'retry' : 'retries'}`;
    const unknownOutcome =
      clientOrderId === undefined
        ? ''
        : '; the order may or may not exist: resolve it by client order id before anything is resent';
    if (error instanceof ApiError) {
      const status = error.status;
      const detail = this.redact(error.message);
      const code = typeof error.code === 'number' ? error.code : Number(error.code);
      if (status === 422 && clientOrderId !== undefined && DUPLICATE_MESSAGE.test(error.message)) {
        return new DuplicateClientOrderIdError(clientOrderId, this.redact(`${prefix}: HTTP 422: ${detail}`), {
          cause: error,
        });
      }
      if (status === 429 || status === 408 || status >= 500) {
        const kind = status === 429 ? ' (rate limited)' : '';
        return new BrokerUnavailableError(
          this.redact(`${prefix}: HTTP ${status}${kind}${after}: ${detail}${unknownOutcome}`),
          status,
          { cause: error },
        );
      }
      return new BrokerRejectedError(
        this.redact(`${prefix}: HTTP ${status}: ${detail}`),
        status,
        Number.isFinite(code) ? code : undefined,
        { cause: error },
      );
    }
    if (error instanceof FetchError) {
      const cause = error.cause as { name?: string; message?: string; cause?: unknown } | undefined;
      const reason =
        cause?.name === 'TimeoutError'
          ? `no answer within ${this.timeoutMs} ms`
          : cause?.name === 'AbortError'
            ? 'the request was aborted'
            : `the connection failed (${describeNetworkFailure(cause)})`;
      return new BrokerUnavailableError(
        this.redact(`${prefix}: ${reason}${after}${unknownOutcome}`),
        undefined,
        {
          cause: error,
        },
      );
    }
    const message = error instanceof Error ? error.message : String(error);
    return new BrokerUnavailableError(this.redact(`${prefix}: ${message}${unknownOutcome}`), undefined, {
      cause: error,
    });
  }

  private parse<S extends z.ZodType>(what: string, schema: S, body: unknown): z.output<S> {
    const parsed = schema.safeParse(body);
    if (parsed.success) return parsed.data;
    const issue = parsed.error.issues[0];
    const path = issue?.path ?? [];
    const where =
      path.length === 0
        ? 'the body'
        : typeof path[0] === 'number'
          ? path.length === 1
            ? `item ${path[0]}`
            : `item ${path[0]}: field "${path.slice(1).map(String).join('.')}"`
          : `field "${path.map(String).join('.')}"`;
    throw new BrokerResponseError(
      this.redact(`Alpaca broker: ${what}: invalid response: ${where}: ${issue?.message ?? 'invalid'}`),
      undefined,
      { cause: parsed.error },
    );
  }

  /** Activities in port shape: Alpaca's REMOVE/ADD pair of SPLIT entries becomes one split with its ratio. */
  private toActivities(wire: readonly WireActivity[]): BrokerActivity[] {
    const splits = new Map<string, Extract<WireActivity, { activity_type: 'SPLIT' }>[]>();
    for (const a of wire) {
      if (a.activity_type !== 'SPLIT') continue;
      const key = `${a.symbol}|${a.date}`;
      splits.set(key, [...(splits.get(key) ?? []), a]);
    }
    const out: BrokerActivity[] = [];
    const emitted = new Set<string>();
    for (const a of wire) {
      switch (a.activity_type) {
        case 'FILL':
          out.push({
            kind: 'fill',
            id: a.id,
            orderId: a.order_id,
            symbol: a.symbol,
            side: a.side,
            qty: a.qty,
            price: a.price,
            time: a.transaction_time,
            partial: a.type === 'partial_fill',
          });
          break;
        case 'DIV':
          out.push({ kind: 'dividend', id: a.id, symbol: a.symbol, ratio: a.per_share_amount, date: a.date });
          break;
        case 'SPLIT': {
          const key = `${a.symbol}|${a.date}`;
          if (emitted.has(key)) break;
          emitted.add(key);
          const group = splits.get(key) ?? [];
          const removed = group.filter((s) => s.qty < 0);
          const added = group.filter((s) => s.qty > 0);
          const [remove] = removed;
          const [add] = added;
          if (group.length !== 2 || remove === undefined || add === undefined) {
            throw new BrokerResponseError(
              `Alpaca broker: get activities: the SPLIT entries of ${a.symbol} on ${a.date} are not one REMOVE and one ADD (${group.length} entries)`,
            );
          }
          out.push({
            kind: 'split',
            id: add.id,
            symbol: a.symbol,
            ratio: add.qty / -remove.qty,
            date: a.date,
          });
          break;
        }
      }
    }
    return out;
  }

  /** Blanks the key id and secret out of any text that may reach a message. */
  private redact(text: string): string {
    let out = text;
    for (const secret of this.secrets) out = out.split(secret).join('[redacted]');
    return out;
  }
}

/** The port's order request as the SDK's `PostOrderRequest` (amounts as decimal strings). */
function toPostOrder(order: OrderRequest): trading.PostOrderRequest {
  const symbol = order.symbol.trim().toUpperCase();
  if (!/^[A-Z0-9][A-Z0-9./-]*$/.test(symbol)) {
    throw new InvalidParameterError(`Alpaca broker: submit order: invalid symbol "${order.symbol}"`);
  }
  if (!(order.qty > 0) || !Number.isFinite(order.qty)) {
    throw new InvalidParameterError(
      `Alpaca broker: submit order: qty ${order.qty} must be a finite number > 0`,
    );
  }
  if (order.clientOrderId.length === 0 || order.clientOrderId.length > 128) {
    throw new InvalidParameterError('Alpaca broker: submit order: clientOrderId must have 1..128 characters');
  }
  const amount = (name: string, value: number | undefined): string | undefined => {
    if (value === undefined) return undefined;
    if (!(value > 0) || !Number.isFinite(value)) {
      throw new InvalidParameterError(
        `Alpaca broker: submit order: ${name} ${value} must be a finite number > 0`,
      );
    }
    return decimalString(value);
  };
  const request: trading.PostOrderRequest = {
    symbol,
    qty: amount('qty', order.qty),
    side: order.side,
    type: order.type,
    timeInForce: order.timeInForce,
    clientOrderId: order.clientOrderId,
  };
  const limitPrice = amount('limitPrice', order.limitPrice);
  const stopPrice = amount('stopPrice', order.stopPrice);
  const trailPrice = amount('trailPrice', order.trailPrice);
  const trailPercent = amount('trailPercent', order.trailPercent);
  if (limitPrice !== undefined) request.limitPrice = limitPrice;
  if (stopPrice !== undefined) request.stopPrice = stopPrice;
  if (trailPrice !== undefined) request.trailPrice = trailPrice;
  if (trailPercent !== undefined) request.trailPercent = trailPercent;
  if (order.bracket !== undefined) {
    request.orderClass = 'bracket';
    request.takeProfit = { limitPrice: amount('bracket.takeProfitLimit', order.bracket.takeProfitLimit) };
    request.stopLoss = { stopPrice: amount('bracket.stopLoss', order.bracket.stopLoss) as string };
  }
  return request;
}

function toBrokerOrder(order: WireOrder): BrokerOrder {
  return {
    id: order.id,
    clientOrderId: order.client_order_id,
    symbol: order.symbol,
    side: order.side,
    type: order.type,
    timeInForce: order.time_in_force,
    qty: order.qty,
    filledQty: order.filled_qty,
    filledAvgPrice: order.filled_avg_price,
    limitPrice: order.limit_price ?? null,
    stopPrice: order.stop_price ?? null,
    status: order.status,
    submittedAt: order.submitted_at,
    filledAt: order.filled_at ?? null,
    legs: (order.legs ?? []).map(toBrokerOrder),
  };
}

/** A positive finite number as a plain decimal string (no exponent). */
function decimalString(value: number): string {
  const text = String(value);
  if (!/e/i.test(text)) return text;
  return value.toFixed(12).replace(/0+$/, '').replace(/\.$/, '');
}

/** Strict `YYYY-MM-DD` to 00:00 UTC of that date; NaN when it is not a calendar date. */
function parseDay(text: string): number {
  const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text);
  if (!match) return Number.NaN;
  const time = Date.UTC(Number(match[1]), Number(match[2]) - 1, Number(match[3]));
  return new Date(time).toISOString().slice(0, 10) === text ? time : Number.NaN;
}

function isNetworkFailure(error: unknown): boolean {
  if (!(error instanceof FetchError)) return false;
  return (error.cause as { name?: string } | undefined)?.name !== 'AbortError';
}

function describeNetworkFailure(cause: { message?: string; cause?: unknown } | undefined): string {
  const inner = cause?.cause as { code?: string; message?: string } | undefined;
  return inner?.code ?? inner?.message ?? cause?.message ?? 'network failure';
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
