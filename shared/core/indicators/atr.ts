import { requirePeriod, requireSameLength } from './parameters.js';

/** One bar's true range: `max(high - low, |high - previousClose|, |low - previousClose|)`. */
function barTrueRange(high: number, low: number, previousClose: number): number {
  let range = high - low;
  const fromHigh = Math.abs(high - previousClose);
  if (fromHigh > range) range = fromHigh;
  const fromLow = Math.abs(low - previousClose);
  if (fromLow > range) range = fromLow;
  return range;
}

/**
 * Wilder's running average after its `ranges`-th true range: the sum up to `period - 1` ranges, the
 * simple mean at `period`, then `(average * (period - 1) + range) / period`.
 */
function wilderStep(average: number, range: number, ranges: number, period: number): number {
  if (ranges < period) return average + range;
  return ranges === period ? (average + range) / period : (average * (period - 1) + range) / period;
}

/**
 * True range: `max(high - low, |high - previousClose|, |low - previousClose|)`.
 * It needs the previous close, so as TA-Lib's TA_TRANGE the first bar yields NaN and the
 * first value is at index 1.
 */
export class TrueRange {
  /** Index of the first defined output (1). */
  readonly warmup = 1;
  private previousClose = Number.NaN;
  private bars = 0;
  private current = Number.NaN;

  /** Adds the next bar; returns its true range, or NaN for the first bar. */
  update(high: number, low: number, close: number): number {
    const previousClose = this.previousClose;
    this.previousClose = close;
    if (this.bars < 2) this.bars++;
    if (this.bars === 1) return this.current;
    const range = barTrueRange(high, low, previousClose);
    this.current = range;
    return range;
  }

  /** The last output (NaN before the second bar). */
  get value(): number {
    return this.current;
  }

  /** True once the output is defined. */
  get ready(): boolean {
    return this.bars === 2;
  }
}

/**
 * Average true range with Wilder smoothing, as TA-Lib's TA_ATR.
 *
 * The true range starts at bar 1, so the first ATR is at index `period`: the simple mean of
 * TR[1..period]. Then `ATR = (ATR * (period - 1) + TR) / period`. With `period = 1` the ATR is
 * the true range itself. A flat series (high = low = close throughout) gives 0. The smoothing
 * carries a NaN input into every later value, so feed finite values.
 */
export class Atr {
  /** Index of the first defined output (`period`). */
  readonly warmup: number;
  private readonly trueRange = new TrueRange();
  private ranges = 0;
  private average = 0;
  private current = Number.NaN;

  /** @throws InvalidParameterError if `period` is not an integer >= 1. */
  constructor(readonly period: number = 14) {
    requirePeriod('ATR', 'period', period);
    this.warmup = period;
  }

  /** Adds the next bar; returns the ATR, or NaN during warm-up. */
  update(high: number, low: number, close: number): number {
    const range = this.trueRange.update(high, low, close);
    if (!this.trueRange.ready) return this.current;
    const period = this.period;
    this.ranges++;
    this.average = wilderStep(this.average, range, this.ranges, period);
    if (this.ranges < period) return this.current;
    this.current = this.average;
    return this.current;
  }

  /** The last output (NaN during warm-up). */
  get value(): number {
    return this.current;
  }

  /** True once the output is defined. */
  get ready(): boolean {
    return this.ranges >= this.period;
  }
}

/**
 * True range of a whole series, computed by running {@link TrueRange}.
 * @returns one value per bar, NaN at index 0.
 * @throws InvalidParameterError if the three arrays differ in length.
 */
export function trueRange(
  high: ArrayLike<number>,
  low: ArrayLike<number>,
  close: ArrayLike<number>,
): Float64Array {
  const length = requireSameLength('TRANGE', high, low, close);
  const indicator = new TrueRange();
  const out = new Float64Array(length);
  for (let i = 0; i < length; i++) {
    out[i] = indicator.update(high[i] as number, low[i] as number, close[i] as number);
  }
  return out;
}

/**
 * ATR of a whole series, bit for bit what {@link Atr} gives bar by bar (the same true range, the
 * same sum of the first `period` ranges and Wilder's smoothing after it), in one loop over locals.
 * @returns one value per bar, NaN at indices below `period`.
 * @throws InvalidParameterError if `period` is not an integer >= 1 or the arrays differ in length.
 */
export function atr(
  high: ArrayLike<number>,
  low: ArrayLike<number>,
  close: ArrayLike<number>,
  period = 14,
): Float64Array {
  requirePeriod('ATR', 'period', period);
  const length = requireSameLength('ATR', high, low, close);
  const out = new Float64Array(length);
  let previousClose = Number.NaN;
  let ranges = 0;
  let average = 0;
  let current = Number.NaN;
  for (let i = 0; i < length; i++) {
    const h = high[i] as number;
    const l = low[i] as number;
    const c = close[i] as number;
    if (i === 0) {
      previousClose = c;
      out[i] = current;
      continue;
    }
    const range = barTrueRange(h, l, previousClose);
    previousClose = c;
    ranges++;
    average = wilderStep(average, range, ranges, period);
    if (ranges >= period) current = average;
    out[i] = current;
  }
  return out;
}
