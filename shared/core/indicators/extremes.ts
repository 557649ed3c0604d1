import { requirePeriod } from './parameters.js';

/**
 * Rolling maximum of `sign × value` over the last `period` values; `sign = 1` gives the
 * highest value, `sign = -1` the lowest (negation is exact). Internal to {@link Highest}
 * and {@link Lowest}.
 *
 * Van Herk / Gil-Werman, made incremental: the input is cut into blocks of `period` values
 * that line up with the ring buffer. Within the current block a running prefix maximum is
 * kept; when a block completes, the buffer is turned in place into the suffix maxima of that
 * block. The window ending at slot `j` is slots `j+1…period-1` of the previous block plus
 * slots `0…j` of the current one, so its maximum is `max(suffix[j + 1], prefix)`. Writing
 * slot `j` only overwrites a suffix entry that is no longer needed. O(1) amortised per
 * update with no data-dependent branches, one preallocated Float64Array, and a NaN in the
 * input yields NaN exactly while it is inside the window.
 */
class RollingExtreme {
  readonly warmup: number;
  private readonly slots: Float64Array;
  private next = 0;
  private full = false;
  private prefix = Number.NaN;
  private current = Number.NaN;

  constructor(
    readonly period: number,
    private readonly sign: 1 | -1,
  ) {
    this.warmup = period - 1;
    this.slots = new Float64Array(period);
  }

  update(value: number): number {
    const period = this.period;
    const slots = this.slots;
    const slot = this.next;
    const signed = this.sign * value;
    const suffixAfter = slots[slot + 1] as number;
    slots[slot] = signed;
    const prefix = slot === 0 ? signed : Math.max(this.prefix, signed);
    this.prefix = prefix;
    if (slot + 1 === period) {
      let running = signed;
      for (let k = period - 2; k >= 0; k--) {
        running = Math.max(running, slots[k] as number);
        slots[k] = running;
      }
      this.next = 0;
      this.full = true;
      this.current = this.sign * prefix;
    } else {
      this.next = slot + 1;
      if (this.full) this.current = this.sign * Math.max(suffixAfter, prefix);
    }
    return this.current;
  }

  get value(): number {
    return this.current;
  }

  get ready(): boolean {
    return this.full;
  }
}

/** The rolling highest or lowest as an indicator: warm-up, value and readiness. */
abstract class RollingExtremeIndicator {
  /** Index of the first defined output (`period - 1`). */
  readonly warmup: number;
  private readonly extreme: RollingExtreme;

  protected constructor(
    readonly period: number,
    taLibName: 'MAX' | 'MIN',
    sign: 1 | -1,
  ) {
    requirePeriod(taLibName, 'period', period);
    this.warmup = period - 1;
    this.extreme = new RollingExtreme(period, sign);
  }

  /** Adds the next value; returns the extreme of the window, or NaN during warm-up. */
  update(value: number): number {
    return this.extreme.update(value);
  }

  /** The last output (NaN during warm-up). */
  get value(): number {
    return this.extreme.value;
  }

  /** True once the output is defined. */
  get ready(): boolean {
    return this.extreme.ready;
  }
}

/**
 * Highest value over the last `period` values (TA-Lib's TA_MAX). First value at index
 * `period - 1`. A NaN input gives NaN while it is inside the window.
 */
export class Highest extends RollingExtremeIndicator {
  /** @throws InvalidParameterError if `period` is not an integer >= 1. */
  constructor(period: number) {
    super(period, 'MAX', 1);
  }
}

/**
 * Lowest value over the last `period` values (TA-Lib's TA_MIN). First value at index
 * `period - 1`. A NaN input gives NaN while it is inside the window.
 */
export class Lowest extends RollingExtremeIndicator {
  /** @throws InvalidParameterError if `period` is not an integer >= 1. */
  constructor(period: number) {
    super(period, 'MIN', -1);
  }
}

/**
 * Rolling highest value of a whole series, computed by running {@link Highest}.
 * @returns one value per input, NaN at indices below `period - 1`.
 * @throws InvalidParameterError if `period` is not an integer >= 1.
 */
export function highest(values: ArrayLike<number>, period: number): Float64Array {
  const indicator = new Highest(period);
  const length = values.length;
  const out = new Float64Array(length);
  for (let i = 0; i < length; i++) out[i] = indicator.update(values[i] as number);
  return out;
}

/**
 * Rolling lowest value of a whole series, computed by running {@link Lowest}.
 * @returns one value per input, NaN at indices below `period - 1`.
 * @throws InvalidParameterError if `period` is not an integer >= 1.
 */
export function lowest(values: ArrayLike<number>, period: number): Float64Array {
  const indicator = new Lowest(period);
  const length = values.length;
  const out = new Float64Array(length);
  for (let i = 0; i < length; i++) out[i] = indicator.update(values[i] as number);
  return out;
}
