import { requirePeriod, requirePositiveFinite } from './parameters.js';
import { RollingSum } from './rolling-sum.js';

/** The three Bollinger bands of a whole series, index-aligned with the input. */
export interface BollingerBands {
  readonly middle: Float64Array;
  readonly upper: Float64Array;
  readonly lower: Float64Array;
}

/**
 * Bollinger Bands as TA-Lib's TA_BBANDS with an SMA middle: middle = SMA(period),
 * upper/lower = middle ± k × σ, where σ is the POPULATION standard deviation (divide by
 * `period`) of the same window. First value at index `period - 1`.
 *
 * The middle band is computed exactly as {@link Sma} computes it (bit for bit). The sum of
 * squared deviations is updated in O(1) per value with the sliding-window Welford update and
 * recomputed from the ring buffer every `period` updates (two-pass, shifted by the oldest
 * value), so it cannot drift and a flat window gives σ = 0 exactly.
 */
export class Bollinger {
  /** Index of the first defined output (`period - 1`). */
  readonly warmup: number;
  private readonly window: RollingSum;
  private squaredDeviations = 0;
  private mean = Number.NaN;
  private deviation = Number.NaN;
  private upperBand = Number.NaN;
  private lowerBand = Number.NaN;

  /** @throws InvalidParameterError if `period` is not an integer >= 1 or `k` is not finite and > 0. */
  constructor(
    readonly period: number = 20,
    readonly k: number = 2,
  ) {
    requirePeriod('BBANDS', 'period', period);
    requirePositiveFinite('BBANDS', 'k', k);
    this.warmup = period - 1;
    this.window = new RollingSum(period);
  }

  /** Adds the next value; returns the middle band, or NaN during warm-up. */
  update(value: number): number {
    const window = this.window;
    const period = this.period;
    const wasFull = window.full;
    const previousMean = this.mean;
    const leaving = window.push(value);
    if (!window.full) return this.mean;
    const mean = window.sum / period;
    if (window.reanchored) {
      const values = window.values;
      const shift = values[0] as number;
      let sum = 0;
      let sumOfSquares = 0;
      for (let i = 0; i < values.length; i++) {
        const d = (values[i] as number) - shift;
        sum += d;
        sumOfSquares += d * d;
      }
      this.squaredDeviations = sumOfSquares - (sum * sum) / period;
    } else if (wasFull) {
      this.squaredDeviations += (value - leaving) * (value - mean + leaving - previousMean);
    }
    const variance = this.squaredDeviations > 0 ? this.squaredDeviations / period : 0;
    const deviation = Math.sqrt(variance);
    const width = this.k * deviation;
    this.mean = mean;
    this.deviation = deviation;
    this.upperBand = mean + width;
    this.lowerBand = mean - width;
    return mean;
  }

  /** The middle band (SMA) of the last update; NaN during warm-up. */
  get value(): number {
    return this.mean;
  }

  /** The middle band (SMA) of the last update; NaN during warm-up. */
  get middle(): number {
    return this.mean;
  }

  /** middle + k × σ of the last update; NaN during warm-up. */
  get upper(): number {
    return this.upperBand;
  }

  /** middle − k × σ of the last update; NaN during warm-up. */
  get lower(): number {
    return this.lowerBand;
  }

  /** Population standard deviation σ of the current window; NaN during warm-up. */
  get standardDeviation(): number {
    return this.deviation;
  }

  /** True once the output is defined. */
  get ready(): boolean {
    return this.window.full;
  }
}

/**
 * Bollinger Bands of a whole series, computed by running {@link Bollinger}.
 * @returns three arrays, one value per input each, NaN at indices below `period - 1`.
 * @throws InvalidParameterError if `period` is not an integer >= 1 or `k` is not finite and > 0.
 */
export function bollinger(values: ArrayLike<number>, period = 20, k = 2): BollingerBands {
  const indicator = new Bollinger(period, k);
  const length = values.length;
  const middle = new Float64Array(length);
  const upper = new Float64Array(length);
  const lower = new Float64Array(length);
  for (let i = 0; i < length; i++) {
    middle[i] = indicator.update(values[i] as number);
    upper[i] = indicator.upper;
    lower[i] = indicator.lower;
  }
  return { middle, upper, lower };
}
