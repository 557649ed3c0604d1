/**
 * The volatility-scaled position cap: a position's value is capped at
 * `targetVolatility / annualised volatility` of equity, so that a product twice as volatile gets
 * half the room (crypto: SOL's cap is smaller than BTC's). The volatility is the sample standard
 * deviation of the last `window` daily close-to-close returns × √periodsPerYear (365 for crypto).
 */

/** Annualised volatility of the last `window` returns of `closes`; NaN when fewer than `window + 1` closes. */
export function annualizedVolatility(
  closes: ArrayLike<number>,
  window: number,
  periodsPerYear: number,
): number {
  const n = closes.length;
  if (!(window >= 2) || n < window + 1) return Number.NaN;
  const returns = new Float64Array(window);
  for (let k = 0; k < window; k++) {
    const i = n - window + k;
    returns[k] = (closes[i] as number) / (closes[i - 1] as number) - 1;
  }
  return sampleSd(returns, 0, 1, window) * Math.sqrt(periodsPerYear);
}

/** Sample standard deviation (Welford) of `count` values of `values`, from `start` every `stride`. */
function sampleSd(values: ArrayLike<number>, start: number, stride: number, count: number): number {
  let mean = 0;
  let m2 = 0;
  for (let k = 0; k < count; k++) {
    const r = values[start + k * stride] as number;
    const delta = r - mean;
    mean += delta / (k + 1);
    m2 += delta * (r - mean);
  }
  return Math.sqrt(m2 / (count - 1));
}

/** The cap as a fraction of equity: `min(maxFraction, target / volatility)`; `maxFraction` when the volatility is zero. */
export function volatilityCapFraction(
  targetVolatility: number,
  volatility: number,
  maxFraction: number,
): number {
  if (!(volatility > 0)) return maxFraction;
  return Math.min(maxFraction, targetVolatility / volatility);
}

/**
 * Rolling annualised volatility of several symbols' daily returns (the backtest's view;
 * {@link annualizedVolatility} gives the same figure from one series of closes). A symbol needs
 * `window` returns in a row.
 */
export class RollingVolatility {
  private readonly rows: Float64Array;
  private readonly filled: Int32Array;
  private count = 0;

  constructor(
    readonly symbols: number,
    readonly window: number,
    readonly periodsPerYear: number,
  ) {
    this.rows = new Float64Array(symbols * window).fill(Number.NaN);
    this.filled = new Int32Array(symbols);
  }

  /** Adds one session's returns, one per symbol (NaN: no return; it restarts that symbol's count). */
  push(returns: ArrayLike<number>): void {
    const slot = this.count % this.window;
    for (let s = 0; s < this.symbols; s++) {
      const r = returns[s] as number;
      this.rows[slot * this.symbols + s] = r;
      this.filled[s] = Number.isNaN(r) ? 0 : (this.filled[s] as number) + 1;
    }
    this.count++;
  }

  /** Annualised volatility of symbol `a` over the window; NaN until it has `window` returns in a row. */
  volatility(a: number): number {
    if ((this.filled[a] as number) < this.window) return Number.NaN;
    return sampleSd(this.rows, a, this.symbols, this.window) * Math.sqrt(this.periodsPerYear);
  }
}
