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
export type MutableBarSeries = { -readonly [K in keyof BarSeries]: BarSeries[K] };

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

/** The first millisecond of the year 10000, where ISO dates stop having four-digit years. */
const YEAR_10000 = 253_402_300_800_000;

/**
 * The UTC calendar date `YYYY-MM-DD` of a time (ms since the epoch), exactly
 * `new Date(time).toISOString().slice(0, 10)`, computed with integer arithmetic (days to a civil
 * date) for times from 1970 to the year 9999: about five times faster, for the engine's per-close
 * trading day. Other times (and NaN, which throws) go through `Date`.
 */
export function isoDate(time: number): string {
  if (!(time >= 0 && time < YEAR_10000)) return new Date(time).toISOString().slice(0, 10);
  const z = Math.floor(time / 86_400_000) + 719_468;
  const era = Math.floor(z / 146_097);
  const dayOfEra = z - era * 146_097;
  const yearOfEra = Math.floor(
    (dayOfEra -
      Math.floor(dayOfEra / 1460) +
      Math.floor(dayOfEra / 36_524) -
      Math.floor(dayOfEra / 146_096)) /
      365,
  );
  const dayOfYear = dayOfEra - (365 * yearOfEra + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100));
  const monthFromMarch = Math.floor((5 * dayOfYear + 2) / 153);
  const day = dayOfYear - Math.floor((153 * monthFromMarch + 2) / 5) + 1;
  const month = monthFromMarch < 10 ? monthFromMarch + 3 : monthFromMarch - 9;
  const year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0);
  return `${year}-${month < 10 ? '0' : ''}${month}-${day < 10 ? '0' : ''}${day}`;
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
