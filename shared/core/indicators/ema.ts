import { requirePeriod } from './parameters.js';

/**
 * Exponential moving average with `alpha = 2 / (period + 1)`, TA-Lib's default ("classic")
 * seeding: the first value, at index `period - 1`, is the simple average of the first
 * `period` inputs (summed oldest-first from 0, then divided); after that
 * `ema = (value - ema) * alpha + ema`, the arithmetic order of TA_EMA.
 * `period = 1` returns the input itself, exactly. The recursion carries a NaN input into every
 * later value, so feed finite values.
 */
export class Ema {
  /** Index of the first defined output (`period - 1`). */
  readonly warmup: number;
  /** Smoothing factor `2 / (period + 1)`. */
  readonly alpha: number;
  private seedSum = 0;
  private seen = 0;
  private current = Number.NaN;

  /** @throws InvalidParameterError if `period` is not an integer >= 1. */
  constructor(readonly period: number) {
    requirePeriod('EMA', 'period', period);
    this.warmup = period - 1;
    this.alpha = 2 / (period + 1);
  }

  /** Adds the next value; returns the average, or NaN during warm-up. */
  update(value: number): number {
    const period = this.period;
    if (this.seen < period) {
      this.seen++;
      this.seedSum += value;
      if (this.seen === period) this.current = this.seedSum / period;
    } else if (period === 1) {
      this.current = value;
    } else {
      this.current = (value - this.current) * this.alpha + this.current;
    }
    return this.current;
  }

  /** The last output (NaN during warm-up). */
  get value(): number {
    return this.current;
  }

  /** True once the output is defined. */
  get ready(): boolean {
    return this.seen === this.period;
  }
}

/**
 * Exponential moving average of a whole series, computed by running {@link Ema}.
 * @returns one value per input, NaN at indices below `period - 1`.
 * @throws InvalidParameterError if `period` is not an integer >= 1.
 */
export function ema(values: ArrayLike<number>, period: number): Float64Array {
  const indicator = new Ema(period);
  const length = values.length;
  const out = new Float64Array(length);
  for (let i = 0; i < length; i++) out[i] = indicator.update(values[i] as number);
  return out;
}
