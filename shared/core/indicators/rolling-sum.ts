/**
 * A fixed-length window over the last `size` values in a preallocated ring buffer, with
 * their running sum. Internal building block of {@link Sma}, {@link Wma} and
 * {@link Bollinger}; not exported from the package index.
 *
 * Drift control: the sum is updated by `sum += value - leaving` and recomputed from the
 * buffer each time the write position wraps to slot 0, that is every `size` pushes. At that
 * moment the buffer is in chronological order (slot 0 is the oldest value), so the fresh
 * sum adds the window oldest-first from 0 — the same order TA-Lib uses for its first SMA.
 * Rounding can therefore accumulate over at most `size` updates and never across windows,
 * and a NaN or a huge outlier stops affecting the sum one re-anchor after it has left the
 * window. The cost is one extra addition per update, amortised.
 */
export class RollingSum {
  /** Window contents; chronological from slot 0 right after a push that {@link reanchored}. */
  readonly values: Float64Array;
  /** Sum of the values currently in the window. */
  sum = 0;
  /** True once `size` values have been pushed. */
  full = false;
  /** True when the last push wrapped the ring and recomputed {@link sum} from the buffer. */
  reanchored = false;
  private next = 0;

  constructor(readonly size: number) {
    this.values = new Float64Array(size);
  }

  /** Adds `value`; returns the value that left the window, or NaN while the window fills. */
  push(value: number): number {
    const values = this.values;
    const next = this.next;
    let leaving = Number.NaN;
    if (this.full) {
      leaving = values[next] as number;
      this.sum += value - leaving;
    } else {
      this.sum += value;
    }
    values[next] = value;
    if (next + 1 === this.size) {
      this.next = 0;
      this.full = true;
      this.reanchored = true;
      let fresh = 0;
      for (let i = 0; i < values.length; i++) fresh += values[i] as number;
      this.sum = fresh;
    } else {
      this.next = next + 1;
      this.reanchored = false;
    }
    return leaving;
  }
}
