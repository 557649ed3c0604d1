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
    const n = Math.min(this.count, this.window);
    let k = 0;
    let sa = 0;
    let sb = 0;
    let saa = 0;
    let sbb = 0;
    let sab = 0;
    for (let r = 0; r < n; r++) {
      const x = this.rows[r * this.symbols + a] as number;
      const y = this.rows[r * this.symbols + b] as number;
      if (Number.isNaN(x) || Number.isNaN(y)) continue;
      k++;
      sa += x;
      sb += y;
      saa += x * x;
      sbb += y * y;
      sab += x * y;
    }
    if (k < Math.max(3, this.window / 2)) return Number.NaN;
    const cov = sab - (sa * sb) / k;
    const va = saa - (sa * sa) / k;
    const vb = sbb - (sb * sb) / k;
    if (!(va > 0 && vb > 0)) return Number.NaN;
    return Math.max(-1, Math.min(1, cov / Math.sqrt(va * vb)));
  }

  /** The full matrix (NaN where undefined), for reports. */
  matrix(): number[][] {
    return Array.from({ length: this.symbols }, (_, a) =>
      Array.from({ length: this.symbols }, (_, b) => (a === b ? 1 : this.correlation(a, b))),
    );
  }
}
