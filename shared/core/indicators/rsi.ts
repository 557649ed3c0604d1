import { requirePeriod } from './parameters.js';

/**
 * Relative strength index with Wilder smoothing, as TA-Lib's TA_RSI (default compatibility).
 *
 * - Index 0 has no change, so the first RSI is at index `period`: the average gain and
 *   average loss are the simple means of the first `period` changes.
 * - Then `avg = (avg * (period - 1) + current) / period` for both, and
 *   `RSI = 100 * avgGain / (avgGain + avgLoss)`.
 * - No movement at all in the smoothed window (`avgGain + avgLoss === 0`, e.g. a flat
 *   series): RSI is 0/0. TA-Lib outputs 0 there (for any sum within its epsilon of zero),
 *   which reads as "maximally oversold" and would trigger oversold rules on a halted symbol.
 *   This implementation outputs the neutral 50 instead, and only for an exact zero.
 * - `period = 1` is accepted (TA-Lib rejects it): RSI is 100 after a rise, 0 after a fall.
 * - The smoothing carries a NaN input into every later value, so feed finite values.
 */
export class Rsi {
  /** Index of the first defined output (`period`). */
  readonly warmup: number;
  private previous = Number.NaN;
  private changes = -1;
  private averageGain = 0;
  private averageLoss = 0;
  private current = Number.NaN;

  /** @throws InvalidParameterError if `period` is not an integer >= 1. */
  constructor(readonly period: number = 14) {
    requirePeriod('RSI', 'period', period);
    this.warmup = period;
  }

  /** Adds the next value; returns the RSI in [0, 100], or NaN during warm-up. */
  update(value: number): number {
    const period = this.period;
    const change = value - this.previous;
    this.previous = value;
    this.changes++;
    if (this.changes === 0) return this.current;
    const gain = Math.max(change, 0);
    const loss = Math.max(-change, 0);
    if (this.changes < period) {
      this.averageGain += gain;
      this.averageLoss += loss;
      return this.current;
    }
    if (this.changes === period) {
      this.averageGain = (this.averageGain + gain) / period;
      this.averageLoss = (this.averageLoss + loss) / period;
    } else {
      this.averageGain = (this.averageGain * (period - 1) + gain) / period;
      this.averageLoss = (this.averageLoss * (period - 1) + loss) / period;
    }
    const total = this.averageGain + this.averageLoss;
    this.current = total === 0 ? 50 : 100 * (this.averageGain / total);
    return this.current;
  }

  /** The last output (NaN during warm-up). */
  get value(): number {
    return this.current;
  }

  /** True once the output is defined. */
  get ready(): boolean {
    return this.changes >= this.period;
  }
}

/**
 * RSI of a whole series, computed by running {@link Rsi}.
 * @returns one value per input, NaN at indices below `period`.
 * @throws InvalidParameterError if `period` is not an integer >= 1.
 */
export function rsi(values: ArrayLike<number>, period = 14): Float64Array {
  const indicator = new Rsi(period);
  const length = values.length;
  const out = new Float64Array(length);
  for (let i = 0; i < length; i++) out[i] = indicator.update(values[i] as number);
  return out;
}
