/**
 * A local Coinbase Advanced Trade-compatible HTTP server (node:http) for tests and rehearsal, as
 * the local Alpaca one is for the equity bot (Coinbase's own sandbox is a static mock with no
 * state). It:
 *
 * - verifies each request's JWT: ES256 or EdDSA (Ed25519) with a registered key (header `kid`),
 *   a `nonce` header never seen before, claims `iss: "cdp"`, `sub` = `kid`, `nbf` <= now < `exp`,
 *   a lifetime of at most 120 s, and `uri` = `"<METHOD> <host><path>"` of this very request;
 * - keeps spot accounts (available and hold per currency) and orders idempotent on
 *   `client_order_id` (a second submission returns the first order), moving them
 *   PENDING → OPEN → FILLED / CANCELLED on the requests that follow, with fills and taker fees;
 *   market IOC orders fill at the current price (partial fills on demand: the rest is cancelled),
 *   limit, stop-limit and trigger-bracket orders rest until the price set with
 *   {@link LocalCoinbase.setPrice} reaches them;
 * - serves products (increments, minimum sizes, status, price), daily candles from
 *   `<dataDir>/<PRODUCT>.csv` (at most 350 a request, unix-second `start`/`end`, `ONE_DAY` only),
 *   cursor-paged accounts, orders and fills, and perpetual-style futures with the funding rates
 *   set by {@link LocalCoinbase.setFunding} (no funding history is bundled), and the server time
 *   (`GET /time`: its clock `now`, the bot's clock port);
 * - misbehaves on demand: a status (429 with or without Retry-After, 5xx), a delay, or a dropped
 *   connection before or after handling (an order IS created when dropped after).
 *
 * Fidelity notes: spot only, one portfolio, USD quote; the current price of a product is the close
 * of its last bundled bar at or before the server's clock unless set; candles' volume is the
 * bundled `Vol` (USD) divided by the close, in coins as Coinbase reports it.
 */
import { createPublicKey, generateKeyPairSync, type KeyObject, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import { decodeProtectedHeader, jwtVerify } from 'jose';
import * as z from 'zod';
import { DataFileNotFoundError, InvalidParameterError } from '../../core/errors.js';
import {
  adversePrice,
  limitMarketable,
  limitReached,
  PROTECTIVE_NONE,
  protectiveFillPrice,
  protectiveHit,
  slippageFraction,
  stopLimitFill,
} from '../../core/execution/fill-rules.js';
import type { BarSeries } from '../../core/market/types.js';
import {
  floorToIncrement,
  formatBaseSize,
  incrementDecimals,
  type ProductTable,
} from '../../core/sizing/increments.js';
import type { CdpKey } from '../coinbase/auth.js';
import { loadBarsCsv } from '../fs/bars.js';
import { readBody, routeFaults } from './alpaca-server.js';
import { listenOnLoopback } from './listen.js';

const BROKERAGE = '/api/v3/brokerage';
const DAY_SECONDS = 86_400;
const MAX_CANDLES = 350;

/** A product the server trades. */
export interface LocalCoinbaseProduct {
  readonly productId: string;
  readonly baseIncrement: string;
  readonly quoteIncrement: string;
  readonly baseMinSize: string;
  readonly quoteMinSize: string;
  readonly status?: 'online' | 'offline';
}

/** Coinbase's spot increments for the bundled products. */
export const DEFAULT_PRODUCTS: readonly LocalCoinbaseProduct[] = [
  {
    productId: 'BTC-USD',
    baseIncrement: '0.00000001',
    quoteIncrement: '0.01',
    baseMinSize: '0.00000001',
    quoteMinSize: '1',
  },
  {
    productId: 'ETH-USD',
    baseIncrement: '0.00000001',
    quoteIncrement: '0.01',
    baseMinSize: '0.00000001',
    quoteMinSize: '1',
  },
  {
    productId: 'SOL-USD',
    baseIncrement: '0.001',
    quoteIncrement: '0.01',
    baseMinSize: '0.001',
    quoteMinSize: '1',
  },
];

/** A decimal string without an exponent (0.00000001, not 1e-8), as Coinbase writes its numbers. */
const plainDecimal = (x: number) => (Number.isInteger(x) ? String(x) : x.toFixed(12).replace(/0+$/, ''));

/**
 * The server's products from a config's `products:` (`configProducts`): the increments and minimums
 * the backtest sizes on are the ones the server enforces (quote increment 0.01).
 */
export function localProducts(table: ProductTable): LocalCoinbaseProduct[] {
  return Object.values(table).map((p) => ({
    productId: p.productId,
    baseIncrement: plainDecimal(p.baseIncrement),
    quoteIncrement: '0.01',
    baseMinSize: plainDecimal(p.baseMinSize),
    quoteMinSize: plainDecimal(p.quoteMinSize ?? 0),
  }));
}

/** A perpetual-style future whose funding rate the server reports. */
export interface LocalCoinbaseFuture {
  readonly productId: string;
  readonly underlying: string;
  readonly rate: number;
  readonly time: string;
}

export type LocalCoinbaseFault = { readonly times?: number; readonly route?: string } & (
  | {
      readonly kind: 'status';
      readonly status: number;
      /** 429: seconds in `Retry-After`; null sends no header. Default 1 for a 429, none otherwise. */
      readonly retryAfterSeconds?: number | null;
    }
  | { readonly kind: 'delay'; readonly ms: number }
  | { readonly kind: 'drop'; readonly when: 'before-handling' | 'after-handling' }
);

export interface LocalCoinbaseOptions {
  /** Folder of `<PRODUCT>.csv` daily bars (the bundled `data/crypto`). */
  readonly dataDir: string;
  /** The CDP keys accepted: their names and public keys. */
  readonly keys: readonly { readonly name: string; readonly publicKey: KeyObject }[];
  readonly port?: number;
  readonly products?: readonly LocalCoinbaseProduct[];
  /** Starting balances per currency, e.g. `{ USD: 100000 }`. */
  readonly balances?: Readonly<Record<string, number>>;
  readonly takerFeeBps?: number;
  readonly makerFeeBps?: number;
  /** Spread of the best bid/ask around the current price, in bps (default 2). */
  readonly spreadBps?: number;
  /** The server's market clock (epoch ms: prices, candles, order times); default the machine's. */
  readonly now?: () => number;
  /**
   * The clock JWTs are checked against (`nbf`, `exp`); default the machine's, as at Coinbase: a
   * rehearsal moves the market clock `now` while its clients sign with the real time.
   */
  readonly authNow?: () => number;
  readonly futures?: readonly LocalCoinbaseFuture[];
  readonly faults?: readonly LocalCoinbaseFault[];
  /**
   * The daily model of a replay (off by default): the server trades the bundled daily bars as the
   * backtest does, on the market clock `now`. See {@link LocalCoinbaseDailyModel}.
   */
  readonly daily?: LocalCoinbaseDailyModel;
}

/**
 * The daily model (`quantshift replay` of a crypto config): each UTC day D of a product's bars is
 * two events, as the backtest's fill rules (`core/execution/fill-rules.ts`) see its bar:
 *
 * - **from 00:00 UTC** (the open): a market IOC order fills at the day's open, moved against it by
 *   `slippageBps` (the backtest's market fill at the next bar's open). Until the close event the
 *   mark (product price, account value, best bid/ask) is the last close the clock has passed, the
 *   price the backtest decides on; candles are served up to that close.
 * - **at `closeAt` UTC** (default `23:45`, before the bot's 23:50 end-of-day: the day's range is
 *   known then): resting orders created before it are checked against the day's open, high and low.
 *   A stop-limit triggers as the backtest's protective stop (a gap through it at the open, then the
 *   range: `protectiveHit`) and fills at the backtest's stop price (the open or the stop, slipped:
 *   `protectiveFillPrice`) when that price is within its limit; else at its limit when the range
 *   reaches it (the stop-limit rule of `fillEntry`), else it rests as a limit. A limit fills at the
 *   open when marketable there, else at the limit when the range reaches it. The mark becomes the
 *   day's close.
 */
export interface LocalCoinbaseDailyModel {
  /** Adverse slippage of market fills and triggered stops, in bps (the config's `costs.slippageBps`). */
  readonly slippageBps: number;
  /** UTC wall-clock time `HH:MM` of the day's close event (default `23:45`). */
  readonly closeAt?: string;
}

export interface LocalCoinbaseRequest {
  readonly method: string;
  readonly path: string;
  readonly status: number;
}

export interface LocalCoinbase {
  /** Base URL, e.g. `http://127.0.0.1:54321`. */
  readonly url: string;
  readonly requestLog: readonly LocalCoinbaseRequest[];
  /** Orders as stored (wire shape), oldest first. */
  readonly orders: readonly WireServerOrder[];
  injectFaults(...faults: LocalCoinbaseFault[]): void;
  clearFaults(): void;
  /** Sets a product's current price (dollars). */
  setPrice(productId: string, price: number): void;
  /** Fills market orders only in part from now on (fraction of the size, rounded to the increment); undefined: whole. */
  setPartialFill(fraction: number | undefined): void;
  /** Sets a future's funding rate and time. */
  setFunding(productId: string, rate: number, time: string): void;
  /** A currency's balance. */
  balance(currency: string): { available: number; hold: number };
  close(): Promise<void>;
}

type Status = 'PENDING' | 'OPEN' | 'FILLED' | 'CANCELLED' | 'FAILED';

interface ServerOrder {
  orderId: string;
  clientOrderId: string;
  productId: string;
  side: 'BUY' | 'SELL';
  kind: 'market' | 'limit' | 'stop_limit' | 'bracket';
  configuration: Record<string, Record<string, unknown>>;
  size: number;
  limitPrice: number | null;
  stopPrice: number | null;
  stopDirection: 'STOP_DIRECTION_STOP_UP' | 'STOP_DIRECTION_STOP_DOWN' | null;
  triggered: boolean;
  status: Status;
  filled: number;
  notional: number;
  fees: number;
  /** Quote (buy) or base (sell) amount on hold. */
  held: number;
  createdTime: string;
  lastFillTime: string | null;
}

export type WireServerOrder = ReturnType<typeof wireOrder>;

interface Fill {
  entry_id: string;
  trade_id: string;
  order_id: string;
  trade_time: string;
  trade_type: 'FILL';
  price: string;
  size: string;
  commission: string;
  product_id: string;
  sequence_timestamp: string;
  liquidity_indicator: 'TAKER' | 'MAKER';
  size_in_quote: false;
  user_id: string;
  side: 'BUY' | 'SELL';
}

class Refusal extends Error {
  constructor(
    readonly status: number,
    readonly error: string,
    message: string,
  ) {
    super(message);
  }
}

const decimalString = z.string().regex(/^\d+(\.\d+)?$/, 'expected a positive decimal string');
const createOrderBody = z
  .object({
    client_order_id: z.string().min(1).max(128),
    product_id: z.string().min(1),
    side: z.enum(['BUY', 'SELL']),
    order_configuration: z
      .object({
        market_market_ioc: z.object({ base_size: decimalString }).strict().optional(),
        limit_limit_gtc: z
          .object({ base_size: decimalString, limit_price: decimalString, post_only: z.boolean().optional() })
          .strict()
          .optional(),
        stop_limit_stop_limit_gtc: z
          .object({
            base_size: decimalString,
            limit_price: decimalString,
            stop_price: decimalString,
            stop_direction: z.enum(['STOP_DIRECTION_STOP_UP', 'STOP_DIRECTION_STOP_DOWN']),
          })
          .strict()
          .optional(),
        trigger_bracket_gtc: z
          .object({ base_size: decimalString, limit_price: decimalString, stop_trigger_price: decimalString })
          .strict()
          .optional(),
      })
      .strict()
      .refine((c) => Object.keys(c).length === 1, 'exactly one order configuration'),
  })
  .strict();

/**
 * A throwaway CDP key for tests and rehearsal, generated on the spot (never a real key): ES256 as
 * an `EC PRIVATE KEY` PEM, or Ed25519 as base64 of seed + public key, as Coinbase hands them out.
 */
export function generateTestCdpKey(
  alg: 'ES256' | 'EdDSA',
  name = `organizations/local/apiKeys/${randomUUID()}`,
): {
  readonly cdpKey: CdpKey;
  readonly publicKey: KeyObject;
} {
  if (alg === 'ES256') {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    return {
      cdpKey: { name, privateKey: privateKey.export({ format: 'pem', type: 'sec1' }).toString() },
      publicKey,
    };
  }
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const jwk = privateKey.export({ format: 'jwk' });
  const raw = Buffer.concat([
    Buffer.from(jwk.d as string, 'base64url'),
    Buffer.from(jwk.x as string, 'base64url'),
  ]);
  return { cdpKey: { name, privateKey: raw.toString('base64') }, publicKey };
}

export async function startLocalCoinbase(options: LocalCoinbaseOptions): Promise<LocalCoinbase> {
  const now = options.now ?? Date.now;
  const takerFee = (options.takerFeeBps ?? 60) / 10_000;
  const keys = new Map(
    options.keys.map((k) => [
      k.name,
      k.publicKey.type === 'public' ? k.publicKey : createPublicKey(k.publicKey),
    ]),
  );
  const nonces = new Set<string>();
  const products = new Map((options.products ?? DEFAULT_PRODUCTS).map((p) => [p.productId, p]));
  const series = new Map<string, BarSeries | null>();
  const prices = new Map<string, number>();
  const futures = new Map((options.futures ?? []).map((f) => [f.productId, { ...f }]));
  const balances = new Map<string, { available: number; hold: number }>();
  for (const [currency, amount] of Object.entries(options.balances ?? { USD: 100_000 })) {
    balances.set(currency, { available: amount, hold: 0 });
  }
  const orders = new Map<string, ServerOrder>();
  const byClientId = new Map<string, string>();
  const fills: Fill[] = [];
  const log: LocalCoinbaseRequest[] = [];
  const faults = routeFaults<LocalCoinbaseFault>(options.faults ?? []);
  let partial: number | undefined;

  const bars = (productId: string): BarSeries | null => {
    if (!series.has(productId)) {
      try {
        series.set(productId, loadBarsCsv(join(options.dataDir, `${productId}.csv`), { symbol: productId }));
      } catch (error) {
        if (!(error instanceof DataFileNotFoundError)) throw error;
        series.set(productId, null);
      }
    }
    return series.get(productId) ?? null;
  };
  const daily = options.daily;
  const slip = slippageFraction(daily?.slippageBps ?? 0);
  /** The daily model's close event of a bar, as an offset from its UTC midnight (ms). */
  const closeOffset = (() => {
    if (daily === undefined) return 0;
    const match = /^(\d{2}):(\d{2})$/.exec(daily.closeAt ?? '23:45');
    const minutes = match === null ? Number.NaN : Number(match[1]) * 60 + Number(match[2]);
    if (!(minutes >= 0 && minutes < 24 * 60))
      throw new InvalidParameterError(`local Coinbase: closeAt ${daily.closeAt} is not HH:MM within the day`);
    return minutes * 60_000;
  })();
  /** Whether bar time `t` is known at `at`: its start (default), or its close event (daily model). */
  const known = (t: number, at: number) => t + closeOffset <= at;
  const priceOf = (productId: string): number | null => {
    const set = prices.get(productId);
    if (set !== undefined) return set;
    const s = bars(productId);
    if (s === null) return null;
    let last: number | null = null;
    for (let i = 0; i < s.time.length && known(s.time[i] as number, now()); i++) last = s.close[i] as number;
    return last;
  };
  /** The daily model: the bar of the UTC day of `at`, when the clock is before its close event. */
  const openBar = (productId: string, at: number) => {
    const s = bars(productId);
    if (s === null) return null;
    const day = Math.floor(at / (DAY_SECONDS * 1000)) * DAY_SECONDS * 1000;
    for (let i = s.time.length - 1; i >= 0; i--) {
      const t = s.time[i] as number;
      if (t < day) return null;
      if (t === day) {
        return at < t + closeOffset
          ? {
              open: s.open[i] as number,
              high: s.high[i] as number,
              low: s.low[i] as number,
              close: s.close[i] as number,
            }
          : null;
      }
    }
    return null;
  };
  const wallet = (currency: string) => {
    let b = balances.get(currency);
    if (b === undefined) {
      b = { available: 0, hold: 0 };
      balances.set(currency, b);
    }
    return b;
  };
  const round = (x: number, decimals: number) => Number(x.toFixed(decimals));

  // --- order lifecycle ------------------------------------------------------------------------

  const fill = (order: ServerOrder, size: number, price: number, at = new Date(now()).toISOString()) => {
    const product = products.get(order.productId) as LocalCoinbaseProduct;
    const [base, quote] = order.productId.split('-') as [string, string];
    const notional = round(size * price, 8);
    const fee = round(notional * takerFee, 8);
    if (order.side === 'BUY') {
      const cost = round(notional + fee, 8);
      wallet(quote).hold = round(wallet(quote).hold - Math.min(order.held, cost), 8);
      const fromAvailable = cost - Math.min(order.held, cost);
      wallet(quote).available = round(wallet(quote).available - fromAvailable, 8);
      order.held = round(order.held - Math.min(order.held, cost), 8);
      wallet(base).available = round(wallet(base).available + size, 8);
    } else {
      wallet(base).hold = round(wallet(base).hold - size, 8);
      order.held = round(order.held - size, 8);
      wallet(quote).available = round(wallet(quote).available + notional - fee, 8);
    }
    order.filled = round(order.filled + size, incrementDecimals(Number(product.baseIncrement)));
    order.notional += size * price;
    order.fees += fee;
    const time = at;
    order.lastFillTime = time;
    fills.push({
      entry_id: randomUUID(),
      trade_id: randomUUID(),
      order_id: order.orderId,
      trade_time: time,
      trade_type: 'FILL',
      price: String(price),
      size: formatBaseSize(size, Number(product.baseIncrement)),
      commission: fee.toFixed(8),
      product_id: order.productId,
      sequence_timestamp: time,
      liquidity_indicator: 'TAKER',
      size_in_quote: false,
      user_id: 'local',
      side: order.side,
    });
  };
  const release = (order: ServerOrder) => {
    const [base, quote] = order.productId.split('-') as [string, string];
    const w = wallet(order.side === 'BUY' ? quote : base);
    w.hold = round(w.hold - order.held, 8);
    w.available = round(w.available + order.held, 8);
    order.held = 0;
  };
  /**
   * The daily model's close events the clock has passed since the last request, in order: each
   * resting order created before the event is checked against that day's bar (see
   * {@link LocalCoinbaseDailyModel}).
   */
  let lastEvent = Number.NEGATIVE_INFINITY;
  const closeEvents = () => {
    if (daily === undefined) return;
    const dayMs = DAY_SECONDS * 1000;
    const at = now();
    let event =
      lastEvent === Number.NEGATIVE_INFINITY
        ? Math.floor((at - closeOffset) / dayMs) * dayMs + closeOffset
        : lastEvent + dayMs;
    if (lastEvent === Number.NEGATIVE_INFINITY) {
      // The first request: nothing rested before it.
      lastEvent = event;
      return;
    }
    for (; event <= at; event += dayMs) {
      lastEvent = event;
      const dayStart = event - closeOffset;
      for (const order of orders.values()) {
        if (order.status !== 'OPEN' || order.kind === 'market') continue;
        if (Date.parse(order.createdTime) >= event) continue;
        const bar = openBar(order.productId, dayStart);
        if (bar === null) continue;
        const buy = order.side === 'BUY';
        const limit = order.limitPrice as number;
        let price = Number.NaN;
        if (order.kind === 'stop_limit') {
          // A sell stop protects a long position: the shared stop-limit rule (fill-rules.ts).
          const filled = stopLimitFill(
            !buy,
            order.triggered === true,
            bar.open,
            bar.high,
            bar.low,
            order.stopPrice as number,
            limit,
            slip,
          );
          if (!filled.triggered) continue;
          order.triggered = true;
          price = filled.price;
        } else if (order.kind === 'limit') {
          if (limitMarketable(buy, bar.open, limit)) price = bar.open;
          else if (limitReached(buy, bar.high, bar.low, limit)) price = limit;
        } else if (order.kind === 'bracket') {
          const hit = protectiveHit(
            true,
            bar.open,
            bar.high,
            bar.low,
            order.stopPrice as number,
            limit,
            false,
          );
          if (hit !== PROTECTIVE_NONE)
            price = protectiveFillPrice(hit, true, bar.open, order.stopPrice as number, limit, slip);
        }
        if (Number.isNaN(price)) continue;
        const time = new Date(event).toISOString();
        fill(order, order.size - order.filled, price, time);
        order.status = 'FILLED';
        release(order);
      }
    }
  };

  /** Moves every live order one step: PENDING → OPEN (markets fill), OPEN → FILLED when the price reaches it. */
  const tick = () => {
    closeEvents();
    for (const order of orders.values()) {
      const price = priceOf(order.productId);
      if (order.status === 'PENDING') {
        order.status = 'OPEN';
        if (order.kind === 'market' && price !== null) {
          const product = products.get(order.productId) as LocalCoinbaseProduct;
          const size =
            partial === undefined
              ? order.size
              : floorToIncrement(order.size * partial, Number(product.baseIncrement));
          // The daily model: the day's open (or the mark after the close event), slipped.
          const at =
            daily === undefined
              ? price
              : adversePrice(
                  openBar(order.productId, Date.parse(order.createdTime))?.open ?? price,
                  order.side === 'BUY',
                  slip,
                );
          if (size > 0) fill(order, size, at);
          order.status = order.filled >= order.size ? 'FILLED' : 'CANCELLED';
          release(order); // what the hold kept beyond the cost, or the unfilled rest
        }
        continue;
      }
      if (order.status !== 'OPEN' || price === null || daily !== undefined) continue;
      const remaining = order.size - order.filled;
      if (order.kind === 'stop_limit') {
        const up = order.stopDirection === 'STOP_DIRECTION_STOP_UP';
        if (
          !order.triggered &&
          (up ? price >= (order.stopPrice as number) : price <= (order.stopPrice as number))
        ) {
          order.triggered = true;
        }
        const limit = order.limitPrice as number;
        if (order.triggered && (order.side === 'SELL' ? price >= limit : price <= limit)) {
          fill(order, remaining, price);
          order.status = 'FILLED';
          release(order);
        }
      } else if (order.kind === 'limit') {
        const limit = order.limitPrice as number;
        if (order.side === 'SELL' ? price >= limit : price <= limit) {
          fill(order, remaining, price);
          order.status = 'FILLED';
          release(order);
        }
      } else if (order.kind === 'bracket') {
        if (price >= (order.limitPrice as number) || price <= (order.stopPrice as number)) {
          fill(order, remaining, price);
          order.status = 'FILLED';
          release(order);
        }
      }
    }
  };

  const createOrder = (raw: unknown) => {
    const parsed = createOrderBody.safeParse(raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0] as z.core.$ZodIssue;
      throw new Refusal(400, 'INVALID_ARGUMENT', `${issue.path.join('.') || 'body'}: ${issue.message}`);
    }
    const body = parsed.data;
    const existing = byClientId.get(body.client_order_id);
    if (existing !== undefined) {
      const order = orders.get(existing) as ServerOrder;
      if (order.productId !== body.product_id || order.side !== body.side) {
        return failure(
          'INVALID_ARGUMENT',
          `client_order_id ${body.client_order_id} was used for another order`,
        );
      }
      return success(order); // idempotent: the first order again
    }
    const product = products.get(body.product_id);
    if (product === undefined) return failure('INVALID_ARGUMENT', `unknown product ${body.product_id}`);
    if (product.status === 'offline') return failure('INVALID_ARGUMENT', `${body.product_id} is not trading`);
    const [kind, config] = Object.entries(body.order_configuration)[0] as [string, Record<string, string>];
    const size = Number(config.base_size);
    const increment = Number(product.baseIncrement);
    if (floorToIncrement(size, increment) !== size) {
      return failure(
        'INVALID_SIZE_PRECISION',
        `base_size ${config.base_size} is not a multiple of ${product.baseIncrement}`,
      );
    }
    if (size < Number(product.baseMinSize)) {
      return failure(
        'INVALID_LIMIT_PRICE_POST_ONLY',
        `base_size ${config.base_size} is under the minimum ${product.baseMinSize}`,
      );
    }
    const price = priceOf(body.product_id);
    const reference = Number(config.limit_price ?? price ?? 0);
    if (!(reference > 0)) return failure('INVALID_ARGUMENT', `${body.product_id} has no price`);
    if (size * reference < Number(product.quoteMinSize)) {
      return failure('INVALID_ARGUMENT', `order notional under the minimum ${product.quoteMinSize}`);
    }
    const [base, quote] = body.product_id.split('-') as [string, string];
    const held = body.side === 'BUY' ? round(size * reference * (1 + takerFee), 8) : size;
    const w = wallet(body.side === 'BUY' ? quote : base);
    if (w.available < held)
      return failure('INSUFFICIENT_FUND', `insufficient ${body.side === 'BUY' ? quote : base} funds`);
    w.available = round(w.available - held, 8);
    w.hold = round(w.hold + held, 8);
    const order: ServerOrder = {
      orderId: randomUUID(),
      clientOrderId: body.client_order_id,
      productId: body.product_id,
      side: body.side,
      kind:
        kind === 'market_market_ioc'
          ? 'market'
          : kind === 'limit_limit_gtc'
            ? 'limit'
            : kind === 'stop_limit_stop_limit_gtc'
              ? 'stop_limit'
              : 'bracket',
      configuration: { [kind]: { ...config } },
      size,
      limitPrice: config.limit_price === undefined ? null : Number(config.limit_price),
      stopPrice:
        config.stop_price !== undefined
          ? Number(config.stop_price)
          : config.stop_trigger_price !== undefined
            ? Number(config.stop_trigger_price)
            : null,
      stopDirection: (config.stop_direction as ServerOrder['stopDirection']) ?? null,
      triggered: false,
      status: 'PENDING',
      filled: 0,
      notional: 0,
      fees: 0,
      held,
      createdTime: new Date(now()).toISOString(),
      lastFillTime: null,
    };
    orders.set(order.orderId, order);
    byClientId.set(order.clientOrderId, order.orderId);
    return success(order);
  };

  // --- routes ---------------------------------------------------------------------------------

  const route = (method: string, path: string, query: URLSearchParams, body: unknown): unknown => {
    const productMatch = /^\/products\/([^/]+)(\/candles)?$/.exec(path);
    if (method === 'GET' && path === '/accounts') {
      const all = [...balances.entries()].map(([currency, b]) => ({
        uuid: `local-${currency}`,
        name: `${currency} Wallet`,
        currency,
        available_balance: { value: b.available.toFixed(8), currency },
        default: true,
        active: true,
        created_at: '2020-01-01T00:00:00Z',
        updated_at: new Date(now()).toISOString(),
        deleted_at: null,
        type: currency === 'USD' ? 'ACCOUNT_TYPE_FIAT' : 'ACCOUNT_TYPE_CRYPTO',
        ready: true,
        hold: { value: b.hold.toFixed(8), currency },
      }));
      const page = paginate(all, query);
      return { accounts: page.items, has_next: page.hasNext, cursor: page.cursor, size: page.items.length };
    }
    if (method === 'GET' && path === '/products') {
      const type = query.get('product_type') ?? 'SPOT';
      if (type === 'FUTURE') {
        return {
          products: [...futures.values()].map((f) => ({
            product_id: f.productId,
            price: '0',
            base_increment: '1',
            quote_increment: '5',
            base_min_size: '1',
            quote_min_size: '0',
            status: 'online',
            trading_disabled: false,
            product_type: 'FUTURE',
            future_product_details: {
              contract_root_unit: f.underlying,
              contract_expiry_type: 'PERPETUAL',
              funding_rate: String(f.rate),
              funding_time: f.time,
            },
          })),
          num_products: futures.size,
        };
      }
      return { products: [...products.keys()].map(productWire), num_products: products.size };
    }
    if (method === 'GET' && productMatch !== null) {
      const productId = decodeURIComponent(productMatch[1] as string);
      if (!products.has(productId)) throw new Refusal(404, 'NOT_FOUND', `product ${productId} not found`);
      if (productMatch[2] === undefined) return productWire(productId);
      return candles(productId, query);
    }
    if (method === 'GET' && path === '/best_bid_ask') return bestBidAsk(query.getAll('product_ids'));
    if (method === 'GET' && path === '/time') {
      const at = now();
      return {
        iso: new Date(at).toISOString(),
        epochSeconds: String(Math.floor(at / 1000)),
        epochMillis: String(at),
      };
    }
    if (method === 'POST' && path === '/orders') return createOrder(body);
    if (method === 'GET' && path === '/orders/historical/batch') {
      const statuses = query.getAll('order_status');
      const ids = query.getAll('product_ids');
      const start = query.get('start_date');
      const list = [...orders.values()]
        .filter((o) => statuses.length === 0 || statuses.includes(o.status))
        .filter((o) => ids.length === 0 || ids.includes(o.productId))
        .filter((o) => start === null || o.createdTime >= new Date(start).toISOString())
        .reverse() // newest first, as Coinbase lists them
        .map(wireOrder);
      const page = paginate(list, query);
      return { orders: page.items, has_next: page.hasNext, cursor: page.cursor, sequence: '0' };
    }
    const orderMatch = /^\/orders\/historical\/([^/]+)$/.exec(path);
    if (method === 'GET' && path === '/orders/historical/fills') {
      const ids = query.getAll('order_ids');
      const productIds = query.getAll('product_ids');
      const after = query.get('start_sequence_timestamp');
      const until = query.get('end_sequence_timestamp');
      const list = fills
        .filter((f) => ids.length === 0 || ids.includes(f.order_id))
        .filter((f) => productIds.length === 0 || productIds.includes(f.product_id))
        .filter((f) => after === null || f.trade_time > new Date(after).toISOString())
        .filter((f) => until === null || f.trade_time <= new Date(until).toISOString())
        .reverse();
      const page = paginate(list, query);
      return { fills: page.items, cursor: page.hasNext ? page.cursor : '' };
    }
    if (method === 'GET' && orderMatch !== null) {
      const order = orders.get(decodeURIComponent(orderMatch[1] as string));
      if (order === undefined) throw new Refusal(404, 'NOT_FOUND', 'order not found');
      return { order: wireOrder(order) };
    }
    if (method === 'POST' && path === '/orders/batch_cancel') {
      const parsed = z
        .object({ order_ids: z.array(z.string()).min(1).max(100) })
        .strict()
        .safeParse(body);
      if (!parsed.success) throw new Refusal(400, 'INVALID_ARGUMENT', 'order_ids: expected 1..100 order ids');
      return {
        results: parsed.data.order_ids.map((id) => {
          const order = orders.get(id);
          if (order === undefined)
            return { success: false, failure_reason: 'UNKNOWN_CANCEL_ORDER', order_id: id };
          if (order.status === 'CANCELLED')
            return { success: false, failure_reason: 'DUPLICATE_CANCEL_REQUEST', order_id: id };
          if (order.status !== 'OPEN' && order.status !== 'PENDING') {
            return { success: false, failure_reason: 'UNKNOWN_CANCEL_FAILURE_REASON', order_id: id };
          }
          order.status = 'CANCELLED';
          release(order);
          return { success: true, failure_reason: 'UNKNOWN_CANCEL_FAILURE_REASON', order_id: id };
        }),
      };
    }
    throw new Refusal(404, 'NOT_FOUND', `endpoint not found: ${method} ${BROKERAGE}${path}`);
  };

  const productWire = (productId: string) => {
    const p = products.get(productId) as LocalCoinbaseProduct;
    const [base, quote] = productId.split('-') as [string, string];
    const price = priceOf(productId);
    return {
      product_id: productId,
      price: price === null ? '' : String(price),
      base_increment: p.baseIncrement,
      quote_increment: p.quoteIncrement,
      base_min_size: p.baseMinSize,
      base_max_size: '1000000',
      quote_min_size: p.quoteMinSize,
      status: p.status ?? 'online',
      trading_disabled: p.status === 'offline',
      product_type: 'SPOT',
      base_currency_id: base,
      quote_currency_id: quote,
    };
  };

  /** The top of the book: the current price +- half the spread, on the quote increment. */
  const bestBidAsk = (productIds: readonly string[]) => {
    const halfSpread = (options.spreadBps ?? 2) / 20_000;
    const pricebooks = productIds.map((productId) => {
      const p = products.get(productId);
      if (p === undefined) throw new Refusal(404, 'NOT_FOUND', `product ${productId} not found`);
      const price = priceOf(productId);
      if (price === null) throw new Refusal(404, 'NOT_FOUND', `product ${productId} has no price yet`);
      const step = Number(p.quoteIncrement);
      // Steps counted to 1e-6 first, so a price already on the increment is not moved by float error.
      const on = (x: number, round: (y: number) => number) =>
        (round(Math.round((x / step) * 1e6) / 1e6) * step).toFixed(8);
      return {
        product_id: productId,
        bids: [{ price: on(price * (1 - halfSpread), Math.floor), size: '10' }],
        asks: [{ price: on(price * (1 + halfSpread), Math.ceil), size: '10' }],
        time: new Date(now()).toISOString(),
      };
    });
    return { pricebooks };
  };

  const candles = (productId: string, query: URLSearchParams) => {
    const granularity = query.get('granularity');
    if (granularity !== 'ONE_DAY') {
      throw new Refusal(
        400,
        'INVALID_ARGUMENT',
        `granularity ${granularity}: the local server serves ONE_DAY only`,
      );
    }
    const start = Number(query.get('start'));
    const end = Number(query.get('end'));
    if (!(Number.isInteger(start) && Number.isInteger(end) && start >= 0 && end > start)) {
      throw new Refusal(400, 'INVALID_ARGUMENT', 'start and end must be unix seconds with start < end');
    }
    if (Math.ceil((end - start) / DAY_SECONDS) > MAX_CANDLES) {
      throw new Refusal(
        400,
        'INVALID_ARGUMENT',
        `number of candles requested should be less than ${MAX_CANDLES + 1}`,
      );
    }
    const s = bars(productId);
    const out: Record<string, string>[] = [];
    if (s !== null) {
      for (let i = s.time.length - 1; i >= 0; i--) {
        const t = (s.time[i] as number) / 1000;
        if (t < start || t >= end || (daily !== undefined && !known(s.time[i] as number, now()))) continue;
        const close = s.close[i] as number;
        out.push({
          start: String(t),
          low: String(s.low[i]),
          high: String(s.high[i]),
          open: String(s.open[i]),
          close: String(close),
          volume: String((s.volume[i] as number) / close),
        });
      }
    }
    return { candles: out };
  };

  // --- authentication -------------------------------------------------------------------------

  const authenticate = async (req: IncomingMessage, method: string, path: string): Promise<string | null> => {
    const header = req.headers.authorization ?? '';
    const token = /^Bearer (.+)$/.exec(header)?.[1];
    if (token === undefined) return 'missing Bearer token';
    let kid: string | undefined;
    let nonce: unknown;
    try {
      const protectedHeader = decodeProtectedHeader(token);
      kid = protectedHeader.kid;
      nonce = protectedHeader.nonce;
    } catch {
      return 'malformed JWT';
    }
    const key = kid === undefined ? undefined : keys.get(kid);
    if (key === undefined) return `unknown key ${kid ?? '(no kid)'}`;
    if (typeof nonce !== 'string' || nonce.length < 8) return 'missing nonce';
    if (nonces.has(nonce)) return 'nonce already used (a replayed JWT)';
    const algorithms = key.asymmetricKeyType === 'ed25519' ? ['EdDSA', 'Ed25519'] : ['ES256'];
    try {
      const { payload } = await jwtVerify(token, key, {
        issuer: 'cdp',
        subject: kid,
        algorithms,
        currentDate: new Date((options.authNow ?? Date.now)()),
        requiredClaims: ['nbf', 'exp', 'uri'],
        clockTolerance: 5,
      });
      if ((payload.exp as number) - (payload.nbf as number) > 120) return 'JWT lifetime above 120 s';
      const expected = `${method} ${req.headers.host}${path}`;
      if (payload.uri !== expected) return `uri claim "${String(payload.uri)}" is not "${expected}"`;
    } catch (error) {
      return `JWT refused: ${(error as Error).message}`;
    }
    nonces.add(nonce);
    return null;
  };

  // --- server ---------------------------------------------------------------------------------

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const method = (req.method ?? 'GET').toUpperCase();
    const bodyText = await readBody(req);
    const send = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      log.push({ method, path: url.pathname, status });
      res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', ...headers });
      res.end(JSON.stringify(body));
    };
    const drop = () => {
      log.push({ method, path: url.pathname, status: 0 });
      res.destroy();
    };
    let fault = faults.take(method, url.pathname);
    if (fault?.kind === 'delay') {
      await new Promise((resolve) => setTimeout(resolve, fault?.kind === 'delay' ? fault.ms : 0));
      fault = undefined;
    }
    if (fault?.kind === 'drop' && fault.when === 'before-handling') return drop();
    if (fault?.kind === 'status') {
      const retryAfter =
        fault.retryAfterSeconds === undefined ? (fault.status === 429 ? 1 : null) : fault.retryAfterSeconds;
      return send(
        fault.status,
        {
          error: fault.status === 429 ? 'RATE_LIMIT_EXCEEDED' : 'INTERNAL',
          message: fault.status === 429 ? 'Too many requests' : 'internal error',
        },
        retryAfter === null ? {} : { 'Retry-After': String(retryAfter) },
      );
    }
    if (!url.pathname.startsWith(BROKERAGE)) return send(404, { error: 'NOT_FOUND', message: 'not found' });
    const refused = await authenticate(req, method, url.pathname);
    if (refused !== null) return send(401, { error: 'UNAUTHENTICATED', message: refused });
    let body: unknown;
    try {
      body = bodyText === '' ? undefined : JSON.parse(bodyText);
    } catch {
      return send(400, { error: 'INVALID_ARGUMENT', message: 'the body is not JSON' });
    }
    tick();
    let status = 200;
    let answer: unknown;
    try {
      answer = route(method, url.pathname.slice(BROKERAGE.length), url.searchParams, body);
    } catch (error) {
      if (!(error instanceof Refusal)) throw error;
      status = error.status;
      answer = { error: error.error, message: error.message };
    }
    if (fault?.kind === 'drop') return drop();
    send(status, answer);
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (res.headersSent) return void res.destroy();
      res.writeHead(500, { 'Content-Type': 'application/json; charset=utf-8' });
      res.end(
        JSON.stringify({ error: 'INTERNAL', message: `local server error: ${(error as Error).message}` }),
      );
    });
  });
  const port = await listenOnLoopback(server, options.port);
  return {
    url: `http://127.0.0.1:${port}`,
    get requestLog() {
      return log;
    },
    get orders() {
      return [...orders.values()].map(wireOrder);
    },
    injectFaults: (...more) => faults.arm(more),
    clearFaults: () => faults.clear(),
    setPrice: (productId, price) => {
      if (!products.has(productId))
        throw new InvalidParameterError(`local Coinbase: unknown product ${productId}`);
      if (!(price > 0) || !Number.isFinite(price))
        throw new InvalidParameterError(`local Coinbase: price ${price} must be positive`);
      prices.set(productId, price);
    },
    setPartialFill: (fraction) => {
      if (fraction !== undefined && !(fraction > 0 && fraction < 1)) {
        throw new InvalidParameterError(
          `local Coinbase: partial fill fraction ${fraction} must be in (0, 1)`,
        );
      }
      partial = fraction;
    },
    setFunding: (productId, rate, time) => {
      const future = futures.get(productId);
      if (future === undefined)
        throw new InvalidParameterError(`local Coinbase: unknown future ${productId}`);
      if (!Number.isFinite(rate))
        throw new InvalidParameterError(`local Coinbase: funding rate ${rate} is not finite`);
      futures.set(productId, { ...future, rate, time });
    },
    balance: (currency) => ({ ...wallet(currency) }),
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      }),
  };
}

function success(order: ServerOrder) {
  return {
    success: true,
    success_response: {
      order_id: order.orderId,
      product_id: order.productId,
      side: order.side,
      client_order_id: order.clientOrderId,
    },
    order_configuration: order.configuration,
  };
}

function failure(error: string, message: string) {
  return { success: false, error_response: { error, message, error_details: message } };
}

function wireOrder(o: ServerOrder) {
  return {
    order_id: o.orderId,
    client_order_id: o.clientOrderId,
    product_id: o.productId,
    side: o.side,
    status: o.status,
    order_configuration: o.configuration,
    filled_size: String(o.filled),
    average_filled_price: o.filled > 0 ? String(o.notional / o.filled) : '0',
    total_fees: o.fees.toFixed(8),
    created_time: o.createdTime,
    last_fill_time: o.lastFillTime,
    order_type:
      o.kind === 'market'
        ? 'MARKET'
        : o.kind === 'limit'
          ? 'LIMIT'
          : o.kind === 'stop_limit'
            ? 'STOP_LIMIT'
            : 'BRACKET',
    time_in_force: o.kind === 'market' ? 'IMMEDIATE_OR_CANCEL' : 'GOOD_UNTIL_CANCELLED',
  };
}

/** Offset cursor paging: `limit` (default 100) from `cursor` (an offset). */
function paginate<T>(
  items: readonly T[],
  query: URLSearchParams,
): { items: T[]; hasNext: boolean; cursor: string } {
  const limit = Math.max(1, Math.min(1000, Number(query.get('limit') ?? 100) || 100));
  const offset = Number(query.get('cursor') ?? 0) || 0;
  const page = items.slice(offset, offset + limit);
  const hasNext = offset + limit < items.length;
  return { items: page, hasNext, cursor: hasNext ? String(offset + limit) : '' };
}
