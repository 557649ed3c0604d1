/**
 * Rolling correlation of the symbols' daily returns over the last `window` sessions. Returns go in
 * one row per session (NaN where a symbol has no return); a pair's correlation uses the sessions
 * where both have one, and needs at least half a window of them.
 */
export class RollingCorrelation {
  private readonly rows: Float64Array;
  private count = 0;

  constructor(
    readonly symbols: number,
    readonly window: number,
  ) {
    this.rows = new Float64Array(symbols * window).fill(Number.NaN);
  }

  /** Adds one session's returns, one per symbol. */
  push(returns: ArrayLike<number>): void {
    const slot = this.count % this.window;
    for (let s = 0; s < this.symbols; s++) this.rows[slot * this.symbols + s] = returns[s] as number;
    this.count++;
  }

  /** Pearson's ρ of symbols a and b over the window, or NaN when too few sessions overlap. */
  correlation(a: number, b: number): number {
    return windowCorrelation(this.rows, this.symbols, this.window, Math.min(this.count, this.window), a, b);
  }

  /** The full matrix (NaN where undefined), for reports. */
  matrix(): number[][] {
    return Array.from({ length: this.symbols }, (_, a) =>
      Array.from({ length: this.symbols }, (_, b) => (a === b ? 1 : this.correlation(a, b))),
    );
  }
}

/**
 * Pearson's ρ of symbols a and b as {@link RollingCorrelation.correlation} gives it after `count`
 * sessions' rows were pushed into a window of `window` sessions, read from `rows`: row-major, one
 * column per symbol, the session `s` at row `s`, or (a window's own ring, `count` at most `window`)
 * its rows. The sums run in the ring's order (its position `s % window` first), so the figure is
 * the rolling window's to the bit; NaN when fewer than `max(3, window / 2)` sessions have both.
 */
export function windowCorrelation(
  rows: ArrayLike<number>,
  symbols: number,
  window: number,
  count: number,
  a: number,
  b: number,
): number {
  const n = Math.min(count, window);
  // The window's first session, and where the ring wraps: its positions 0..wrap-1 hold the
  // sessions base + window.., the positions wrap..n-1 the sessions base + wrap...
  const first = count - n;
  const wrap = first % window;
  const base = first - wrap;
  let k = 0;
  let sa = 0;
  let sb = 0;
  let saa = 0;
  let sbb = 0;
  let sab = 0;
  for (let r = 0; r < n; r++) {
    const row = (r < wrap ? base + window + r : base + r) * symbols;
    const x = rows[row + a] as number;
    const y = rows[row + b] as number;
    if (Number.isNaN(x) || Number.isNaN(y)) continue;
    k++;
    sa += x;
    sb += y;
    saa += x * x;
    sbb += y * y;
    sab += x * y;
  }
  if (k < Math.max(3, window / 2)) return Number.NaN;
  const cov = sab - (sa * sb) / k;
  const va = saa - (sa * sa) / k;
  const vb = sbb - (sb * sb) / k;
  if (!(va > 0 && vb > 0)) return Number.NaN;
  return Math.max(-1, Math.min(1, cov / Math.sqrt(va * vb)));
}
