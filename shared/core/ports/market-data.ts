import type { BarSeries } from '../market/types.js';

/** Which corporate actions the prices are adjusted for: `all` (splits and dividends) or `raw` (none). */
export type PriceAdjustment = 'all' | 'raw';

/** A request for the daily bars of several symbols over an inclusive date range. */
export interface DailyBarsRequest {
  /** Tickers, upper case; the answer has one series per entry, in this order. */
  readonly symbols: readonly string[];
  /** First session date, `YYYY-MM-DD` (inclusive). */
  readonly from: string;
  /** Last session date, `YYYY-MM-DD` (inclusive). */
  readonly to: string;
  /** Defaults to `all`. */
  readonly adjustment?: PriceAdjustment;
}

/**
 * Daily bars for many symbols, adjusted for splits and dividends. Each series holds the session
 * dates at 00:00 UTC (as {@link BarSeries} requires), strictly increasing; a symbol without bars
 * in the range gets an empty series. Failures are `MarketDataError`s.
 */
export interface MarketData {
  getDailyBars(request: DailyBarsRequest): Promise<BarSeries[]>;
}

/** The best bid and ask of one product at one instant (the top of its order book). */
export interface BestBidAsk {
  readonly symbol: string;
  /** Highest bid and lowest ask, in quote currency; ask >= bid > 0. */
  readonly bid: number;
  readonly ask: number;
  /** Sizes at those prices, in base units. */
  readonly bidSize: number;
  readonly askSize: number;
  /** ISO time of the book. */
  readonly time: string;
}

/** The top of the book of several products (one answer per symbol, in order). Failures are `MarketDataError`s. */
export interface BestBidAskSource {
  getBestBidAsk(symbols: readonly string[]): Promise<BestBidAsk[]>;
}

/** One minute bar (raw dollars), stamped with the minute's start (ISO). */
export interface MinuteBar {
  readonly symbol: string;
  readonly time: string;
  readonly open: number;
  readonly high: number;
  readonly low: number;
  readonly close: number;
  readonly volume: number;
}

/**
 * Minute bars over REST: the stream consumer backfills the minutes it missed with them. `from` and
 * `to` are ISO instants (inclusive); the answer is oldest first. Failures are `MarketDataError`s.
 */
export interface IntradayMarketData {
  getMinuteBars(request: {
    readonly symbol: string;
    readonly from: string;
    readonly to: string;
  }): Promise<MinuteBar[]>;
}
