import { InvalidParameterError } from '../errors.js';
import { Ema } from './ema.js';
import { requirePeriod } from './parameters.js';

/** MACD line, signal line and histogram of a whole series, index-aligned with the input. */
export interface MacdSeries {
  readonly macd: Float64Array;
  readonly signal: Float64Array;
  readonly histogram: Float64Array;
}

/**
 * Moving average convergence/divergence, following TA-Lib's TA_MACD (default compatibility):
 *
 * - MACD line = EMA(fast) − EMA(slow), both EMAs seeded with a simple average
 *   ({@link Ema}). The fast EMA is seeded so that it lines up with the slow one: its seed
 *   window is the last `fast` values of the slow seed window, i.e. it starts at index
 *   `slow - fast` and both EMAs produce their first value at index `slow - 1`.
 * - Signal = EMA(signal) of the MACD line, seeded with the simple average of the first
 *   `signal` MACD-line values (indices `slow - 1` … `slow + signal - 2`).
 * - Histogram = MACD − signal.
 * - Like TA-Lib, all three outputs start at the same index,
 *   `warmup = (slow - 1) + (signal - 1)` (33 for 12/26/9). The MACD line is computed
 *   internally from index `slow - 1` (it feeds the signal seed) but is reported as NaN until
 *   the signal exists, exactly as TA_MACD's `outBegIdx` does.
 *
 * Differences from TA-Lib: `fast > slow` throws instead of being silently swapped, and
 * periods of 1 are accepted (TA-Lib requires fast and slow >= 2).
 */
export class Macd {
  /** Index of the first defined output (`slow + signal - 2`). */
  readonly warmup: number;
  /** Period of the fast EMA. */
  readonly fastPeriod: number;
  /** Period of the slow EMA. */
  readonly slowPeriod: number;
  /** Period of the signal EMA. */
  readonly signalPeriod: number;
  private readonly fastEma: Ema;
  private readonly slowEma: Ema;
  private readonly signalEma: Ema;
  private readonly fastStart: number;
  private seen = 0;
  private line = Number.NaN;
  private signalLine = Number.NaN;
  private histogramValue = Number.NaN;

  /** @throws InvalidParameterError if a period is not an integer >= 1 or `fast > slow`. */
  constructor(fast = 12, slow = 26, signal = 9) {
    requirePeriod('MACD', 'fast', fast);
    requirePeriod('MACD', 'slow', slow);
    requirePeriod('MACD', 'signal', signal);
    if (fast > slow) {
      throw new InvalidParameterError(`MACD: fast (${fast}) must not exceed slow (${slow})`);
    }
    this.fastPeriod = fast;
    this.slowPeriod = slow;
    this.signalPeriod = signal;
    this.fastEma = new Ema(fast);
    this.slowEma = new Ema(slow);
    this.signalEma = new Ema(signal);
    this.fastStart = slow - fast;
    this.warmup = slow - 1 + (signal - 1);
  }

  /** Adds the next value; returns the MACD line, or NaN during warm-up. */
  update(value: number): number {
    const index = this.seen;
    if (index <= this.warmup) this.seen = index + 1;
    const slowValue = this.slowEma.update(value);
    if (index < this.fastStart) return this.line;
    const fastValue = this.fastEma.update(value);
    if (!this.slowEma.ready) return this.line;
    const line = fastValue - slowValue;
    const signal = this.signalEma.update(line);
    if (!this.signalEma.ready) return this.line;
    this.line = line;
    this.signalLine = signal;
    this.histogramValue = line - signal;
    return line;
  }

  /** The MACD line of the last update (NaN during warm-up). */
  get value(): number {
    return this.line;
  }

  /** The MACD line of the last update (NaN during warm-up). */
  get macd(): number {
    return this.line;
  }

  /** The signal line (EMA of the MACD line) of the last update (NaN during warm-up). */
  get signal(): number {
    return this.signalLine;
  }

  /** MACD − signal of the last update (NaN during warm-up). */
  get histogram(): number {
    return this.histogramValue;
  }

  /** True once the outputs are defined. */
  get ready(): boolean {
    return this.signalEma.ready;
  }
}

/**
 * MACD of a whole series, computed by running {@link Macd}.
 * @returns three arrays, one value per input each, NaN at indices below `slow + signal - 2`.
 * @throws InvalidParameterError if a period is not an integer >= 1 or `fast > slow`.
 */
export function macd(values: ArrayLike<number>, fast = 12, slow = 26, signal = 9): MacdSeries {
  const indicator = new Macd(fast, slow, signal);
  const length = values.length;
  const macdLine = new Float64Array(length);
  const signalLine = new Float64Array(length);
  const histogram = new Float64Array(length);
  for (let i = 0; i < length; i++) {
    macdLine[i] = indicator.update(values[i] as number);
    signalLine[i] = indicator.signal;
    histogram[i] = indicator.histogram;
  }
  return { macd: macdLine, signal: signalLine, histogram };
}
