/**
 * The {@link MarketData} port on Coinbase Advanced Trade candles
 * (`GET /products/{id}/candles?start&end&granularity=ONE_DAY`, unix seconds, at most 350 candles a
 * request): each product's range is split into windows of at most 350 UTC days, every answer is
 * validated with zod (positive finite prices, high >= low, open/close inside), candles are sorted
 * oldest first, and a daily {@link BarSeries} comes out with one bar per UTC day. The volume is
 * turned into quote currency (candle volume in coins × close), like the bundled files' `Vol`
 * column (24 h volume in USD). Coinbase candles are raw prices: there are no corporate actions.
 */
import {
  InvalidParameterError,
  MarketDataAuthError,
  MarketDataError,
  MarketDataResponseError,
  RateLimitedError,
} from '../../core/errors.js';
import { assertAssetClass } from '../../core/market/asset-class.js';
import type { BarSeries } from '../../core/market/types.js';
import type {
  BestBidAsk,
  BestBidAskSource,
  DailyBarsRequest,
  MarketData,
} from '../../core/ports/market-data.js';
import { CoinbaseClient, type CoinbaseClientOptions, type FailureFactory } from './http.js';
import { bestBidAskSchema, candlesSchema } from './schemas.js';

/** Coinbase's limit of candles per request. */
export const MAX_CANDLES_PER_REQUEST = 350;
/** The granularity enum, with each candle's length in seconds. */
export const GRANULARITY_SECONDS = {
  ONE_MINUTE: 60,
  FIVE_MINUTE: 300,
  FIFTEEN_MINUTE: 900,
  THIRTY_MINUTE: 1800,
  ONE_HOUR: 3600,
  TWO_HOUR: 7200,
  SIX_HOUR: 21_600,
  ONE_DAY: 86_400,
} as const;
export type Granularity = keyof typeof GRANULARITY_SECONDS;

const DAY_SECONDS = 86_400;

const marketDataFailures: FailureFactory = {
  unavailable: (message, status, cause) =>
    status === 429
      ? new RateLimitedError(message, status, { cause })
      : new MarketDataError(message, status, { cause }),
  rejected: (message, status, cause) =>
    status === 401 || status === 403
      ? new MarketDataAuthError(message, status, { cause })
      : new MarketDataError(message, status, { cause }),
  malformed: (message, cause) => new MarketDataResponseError(message, undefined, { cause }),
};

export interface CoinbaseMarketDataOptions extends CoinbaseClientOptions {
  /** Candles per request, 1..350 (default 350). */
  readonly candlesPerRequest?: number;
}

export class CoinbaseMarketData implements MarketData, BestBidAskSource {
  private readonly client: CoinbaseClient;
  private readonly perRequest: number;

  constructor(options: CoinbaseMarketDataOptions) {
    this.client = new CoinbaseClient(options, 'Coinbase market data', marketDataFailures);
    this.perRequest = options.candlesPerRequest ?? MAX_CANDLES_PER_REQUEST;
    if (
      !(
        Number.isInteger(this.perRequest) &&
        this.perRequest >= 1 &&
        this.perRequest <= MAX_CANDLES_PER_REQUEST
      )
    ) {
      throw new InvalidParameterError(
        `Coinbase market data: candlesPerRequest must be an integer in 1..${MAX_CANDLES_PER_REQUEST}`,
      );
    }
  }

  async getDailyBars(request: DailyBarsRequest): Promise<BarSeries[]> {
    const from = utcDaySeconds(request.from, 'from');
    const to = utcDaySeconds(request.to, 'to');
    if (from > to)
      throw new InvalidParameterError(`Coinbase market data: from ${request.from} is after to ${request.to}`);
    const out: BarSeries[] = [];
    for (const raw of request.symbols) {
      const productId = raw.trim().toUpperCase();
      assertAssetClass('crypto', productId, 'Coinbase market data');
      out.push(await this.daily(productId, from, to));
    }
    return out;
  }

  /**
   * The best bid and ask of each product (`GET /best_bid_ask?product_ids=...`), in the order asked.
   * A product missing from the answer, an empty side or a crossed book (bid > ask) is refused.
   */
  async getBestBidAsk(symbols: readonly string[]): Promise<BestBidAsk[]> {
    const ids = symbols.map((raw) => {
      const productId = raw.trim().toUpperCase();
      assertAssetClass('crypto', productId, 'Coinbase market data');
      return productId;
    });
    if (ids.length === 0) return [];
    const what = `best bid/ask ${ids.join(',')}`;
    const body = await this.client.call(what, 'GET', '/best_bid_ask', bestBidAskSchema, {
      query: { product_ids: ids },
      idempotent: true,
    });
    return ids.map((productId) => {
      const book = body.pricebooks.find((b) => b.product_id === productId);
      const bid = book?.bids[0];
      const ask = book?.asks[0];
      if (book === undefined || bid === undefined || ask === undefined) {
        throw new MarketDataResponseError(`Coinbase market data: ${what}: no bid and ask for ${productId}`);
      }
      if (bid.price > ask.price) {
        throw new MarketDataResponseError(
          `Coinbase market data: ${what}: ${productId} book is crossed (bid ${bid.price} > ask ${ask.price})`,
        );
      }
      return {
        symbol: productId,
        bid: bid.price,
        ask: ask.price,
        bidSize: bid.size,
        askSize: ask.size,
        time: new Date(book.time).toISOString(),
      };
    });
  }

  /** One product's daily candles from `from` to `to` (UTC day starts, unix seconds, inclusive). */
  private async daily(productId: string, from: number, to: number): Promise<BarSeries> {
    const byStart = new Map<
      number,
      { open: number; high: number; low: number; close: number; volume: number }
    >();
    for (let start = from; start <= to; start += this.perRequest * DAY_SECONDS) {
      // `end` is exclusive at Coinbase: one window holds at most perRequest candles.
      const end = Math.min(start + this.perRequest * DAY_SECONDS, to + DAY_SECONDS);
      const what = `candles ${productId} ${iso(start)}..${iso(end - DAY_SECONDS)}`;
      const body = await this.client.call(
        what,
        'GET',
        `/products/${encodeURIComponent(productId)}/candles`,
        candlesSchema,
        {
          query: { start: String(start), end: String(end), granularity: 'ONE_DAY' },
          idempotent: true,
        },
      );
      if (body.candles.length > this.perRequest) {
        throw new MarketDataResponseError(
          `Coinbase market data: ${what}: ${body.candles.length} candles for at most ${this.perRequest}`,
        );
      }
      for (const c of body.candles) {
        if (c.start % DAY_SECONDS !== 0) {
          throw new MarketDataResponseError(
            `Coinbase market data: ${what}: candle start ${c.start} is not a UTC midnight`,
          );
        }
        if (c.start < from || c.start > to) continue;
        byStart.set(c.start, {
          open: c.open,
          high: c.high,
          low: c.low,
          close: c.close,
          volume: c.volume * c.close,
        });
      }
    }
    const starts = [...byStart.keys()].sort((a, b) => a - b);
    const column = (
      pick: (bar: { open: number; high: number; low: number; close: number; volume: number }) => number,
    ) => Float64Array.from(starts, (s) => pick(byStart.get(s) as never));
    return {
      symbol: productId,
      time: Float64Array.from(starts, (s) => s * 1000),
      open: column((b) => b.open),
      high: column((b) => b.high),
      low: column((b) => b.low),
      close: column((b) => b.close),
      volume: column((b) => b.volume),
      intraday: false,
    };
  }
}

function utcDaySeconds(date: string, what: string): number {
  const ms = Date.parse(`${date}T00:00:00Z`);
  if (
    !/^\d{4}-\d{2}-\d{2}$/.test(date) ||
    Number.isNaN(ms) ||
    new Date(ms).toISOString().slice(0, 10) !== date
  ) {
    throw new InvalidParameterError(`Coinbase market data: ${what} "${date}" is not YYYY-MM-DD`);
  }
  return ms / 1000;
}

function iso(seconds: number): string {
  return new Date(seconds * 1000).toISOString().slice(0, 10);
}
