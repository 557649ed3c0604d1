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
 * Bollinger Bands of a whole series: {@link bollingerMeanDeviation}'s middle band ± k × σ, what
 * {@link Bollinger} gives value by value.
 * @returns three arrays, one value per input each, NaN at indices below `period - 1`.
 * @throws InvalidParameterError if `period` is not an integer >= 1 or `k` is not finite and > 0.
 */
export function bollinger(values: ArrayLike<number>, period = 20, k = 2): BollingerBands {
  requirePeriod('BBANDS', 'period', period);
  requirePositiveFinite('BBANDS', 'k', k);
  const length = values.length;
  const middle = new Float64Array(length);
  const deviation = new Float64Array(length);
  bollingerMeanDeviation(values, period, middle, deviation);
  const upper = new Float64Array(length);
  const lower = new Float64Array(length);
  for (let i = 0; i < length; i++) {
    const width = k * (deviation[i] as number);
    upper[i] = (middle[i] as number) + width;
    lower[i] = (middle[i] as number) - width;
  }
  return { middle, upper, lower };
}

/**
 * The middle band (the SMA) and σ of a whole series into `mean` and `deviation` (NaN below
 * `period - 1`), bit for bit what {@link Bollinger}'s `middle` and `standardDeviation` give value
 * by value: the same ring of the window, its sum recomputed every `period` values as `RollingSum`
 * does, the same sliding update of the squared deviations and the same recomputation from the ring.
 * One loop over plain locals (a backtest's preparation computes every bar's bands at once).
 * @throws InvalidParameterError if `period` is not an integer >= 1.
 */
export function bollingerMeanDeviation(
  values: ArrayLike<number>,
  period: number,
  mean: Float64Array,
  deviation: Float64Array,
): void {
  requirePeriod('BBANDS', 'period', period);
  const ring = new Float64Array(period);
  const length = values.length;
  let sum = 0;
  let next = 0;
  let full = false;
  let squaredDeviations = 0;
  let previousMean = Number.NaN;
  for (let i = 0; i < length; i++) {
    const value = values[i] as number;
    const wasFull = full;
    let leaving = Number.NaN;
    if (full) {
      leaving = ring[next] as number;
      sum += value - leaving;
    } else {
      sum += value;
    }
    ring[next] = value;
    let reanchored = false;
    if (next + 1 === period) {
      next = 0;
      full = true;
      reanchored = true;
      let fresh = 0;
      for (let j = 0; j < period; j++) fresh += ring[j] as number;
      sum = fresh;
    } else {
      next++;
    }
    if (!full) {
      mean[i] = Number.NaN;
      deviation[i] = Number.NaN;
      continue;
    }
    const m = sum / period;
    if (reanchored) {
      const shift = ring[0] as number;
      let shifted = 0;
      let sumOfSquares = 0;
      for (let j = 0; j < period; j++) {
        const d = (ring[j] as number) - shift;
        shifted += d;
        sumOfSquares += d * d;
      }
      squaredDeviations = sumOfSquares - (shifted * shifted) / period;
    } else if (wasFull) {
      squaredDeviations += (value - leaving) * (value - m + leaving - previousMean);
    }
    mean[i] = m;
    deviation[i] = Math.sqrt(squaredDeviations > 0 ? squaredDeviations / period : 0);
    previousMean = m;
  }
}
