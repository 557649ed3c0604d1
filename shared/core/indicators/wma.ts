import { requirePeriod } from './parameters.js';
import { RollingSum } from './rolling-sum.js';

/**
 * Linearly weighted moving average over the last `period` values, weights 1 (oldest) to
 * `period` (newest), divided by `period * (period + 1) / 2` — TA-Lib's TA_WMA.
 *
 * First value at index `period - 1`; `period = 1` returns the input itself. The weighted
 * sum is updated in O(1) (`weighted += period * value - previousWindowSum`) and, like the
 * plain sum, recomputed from the ring buffer every `period` updates so it cannot drift.
 */
export class Wma {
  /** Index of the first defined output (`period - 1`). */
  readonly warmup: number;
  private readonly window: RollingSum;
  private readonly divisor: number;
  private weightedSum = 0;
  private current = Number.NaN;

  /** @throws InvalidParameterError if `period` is not an integer >= 1. */
  constructor(readonly period: number) {
    requirePeriod('WMA', 'period', period);
    this.warmup = period - 1;
    this.window = new RollingSum(period);
    this.divisor = (period * (period + 1)) / 2;
  }

  /** Adds the next value; returns the average, or NaN during warm-up. */
  update(value: number): number {
    const window = this.window;
    const previousSum = window.sum;
    const wasFull = window.full;
    window.push(value);
    if (window.reanchored) {
      const values = window.values;
      let weighted = 0;
      for (let i = 0; i < values.length; i++) weighted += (i + 1) * (values[i] as number);
      this.weightedSum = weighted;
    } else if (wasFull) {
      this.weightedSum += this.period * value - previousSum;
    }
    this.current = window.full ? this.weightedSum / this.divisor : Number.NaN;
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
 * Weighted moving average of a whole series, computed by running {@link Wma}.
 * @returns one value per input, NaN at indices below `period - 1`.
 * @throws InvalidParameterError if `period` is not an integer >= 1.
 */
export function wma(values: ArrayLike<number>, period: number): Float64Array {
  const indicator = new Wma(period);
  const length = values.length;
  const out = new Float64Array(length);
  for (let i = 0; i < length; i++) out[i] = indicator.update(values[i] as number);
  return out;
}
