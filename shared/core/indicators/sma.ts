import { requirePeriod } from './parameters.js';
import { RollingSum } from './rolling-sum.js';

/**
 * Simple moving average: the mean of the last `period` values.
 *
 * Warm-up as TA-Lib's TA_SMA: the first value is at index `period - 1`; `period = 1` returns
 * the input itself. The window lives in a preallocated ring buffer; the running sum is
 * recomputed from the buffer every `period` updates so it cannot drift (see
 * {@link RollingSum}). Inputs should be finite: a NaN yields NaN until the first re-anchor after
 * it has left the window (at most `2 × period − 1` updates).
 */
export class Sma {
  /** Index of the first defined output (`period - 1`). */
  readonly warmup: number;
  private readonly window: RollingSum;
  private current = Number.NaN;

  /** @throws InvalidParameterError if `period` is not an integer >= 1. */
  constructor(readonly period: number) {
    requirePeriod('SMA', 'period', period);
    this.warmup = period - 1;
    this.window = new RollingSum(period);
  }

  /** Adds the next value; returns the average, or NaN during warm-up. */
  update(value: number): number {
    const window = this.window;
    window.push(value);
    this.current = window.full ? window.sum / this.period : Number.NaN;
    return this.current;
  }

  /** The last output (NaN during warm-up). */
  get value(): number {
    return this.current;
  }

  /** True once the output is defined. */
  get ready(): boolean {
    return this.window.full;
  }
}

/**
 * Simple moving average of a whole series, computed by running {@link Sma}.
 * @returns one value per input, NaN at indices below `period - 1`.
 * @throws InvalidParameterError if `period` is not an integer >= 1.
 */
export function sma(values: ArrayLike<number>, period: number): Float64Array {
  const indicator = new Sma(period);
  const length = values.length;
  const out = new Float64Array(length);
  for (let i = 0; i < length; i++) out[i] = indicator.update(values[i] as number);
  return out;
}
