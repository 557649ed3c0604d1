import type { Writable } from '../writable.js';

/**
 * OHLCV bars of one symbol, stored column-wise in typed arrays so that indicators and the
 * backtest loop run without allocating. Index `i` of every array is the same bar.
 */
export interface BarSeries {
  /** Ticker, upper case (for example `SPY`). */
  readonly symbol: string;
  /**
   * Bar timestamps in milliseconds since the Unix epoch. Daily bars are the session date at
   * 00:00 UTC; intraday bars hold the exchange-local wall-clock time read as if it were UTC
   * (files carry no time zone). Strictly increasing.
   */
  readonly time: Float64Array;
  readonly open: Float64Array;
  readonly high: Float64Array;
  readonly low: Float64Array;
  readonly close: Float64Array;
  readonly volume: Float64Array;
  /** The file's `Adj Close` column when it has one; otherwise absent. */
  readonly adjClose?: Float64Array;
  /** True when the bars carry a time of day (minute bars), false for daily and longer bars. */
  readonly intraday: boolean;
}

/** A {@link BarSeries} under construction (loaders fill it, then hand it out as read-only). */
export type MutableBarSeries = Writable<BarSeries>;

/** One bar, as the live path receives it and as strategies see it. */
export interface Bar {
  readonly time: number;
  readonly open: number;
  readonly high: number;
  readonly low: number;
  readonly close: number;
  readonly volume: number;
}

/** Formats a bar timestamp: `YYYY-MM-DD` for daily bars, ISO 8601 UTC `YYYY-MM-DDTHH:MM:SSZ` for intraday ones. */
export function formatBarTime(time: number, intraday: boolean): string {
  const iso = new Date(time).toISOString();
  return intraday ? `${iso.slice(0, 19)}Z` : iso.slice(0, 10);
}

/** The number of bars in a series. */
export function barCount(series: BarSeries): number {
  return series.time.length;
}

/** The bar at index `i` as a plain object (for the live path and tests, not hot loops). */
export function barAt(series: BarSeries, i: number): Bar {
  return {
    time: series.time[i] as number,
    open: series.open[i] as number,
    high: series.high[i] as number,
    low: series.low[i] as number,
    close: series.close[i] as number,
    volume: series.volume[i] as number,
  };
}
