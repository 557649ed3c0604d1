/**
 * The deflated Sharpe ratio (Bailey and López de Prado, 2014): the probability that the true
 * Sharpe ratio exceeds what the best of N independent trials would show by luck alone, given
 * the sample's length, skewness and kurtosis. All Sharpe ratios here are per period (not annualised).
 */
export interface DeflatedSharpe {
  /** Number of trials (parameter combinations tried). */
  readonly trials: number;
  /** Observed per-period Sharpe ratio of the chosen strategy. */
  readonly sharpe: number;
  /** Expected maximum per-period Sharpe ratio of N trials under the null (SR₀). */
  readonly expectedMaxSharpe: number;
  /** Probability in [0, 1]; above 0.95 is the usual bar. */
  readonly deflatedSharpe: number;
}

const EULER_GAMMA = 0.5772156649015329;

/** Standard normal CDF (Abramowitz–Stegun 7.1.26 via erf; absolute error < 1.5e-7). */
export function normalCdf(x: number): number {
  const z = Math.abs(x) / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * z);
  const poly =
    t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
  const erf = 1 - poly * Math.exp(-z * z);
  return x >= 0 ? 0.5 * (1 + erf) : 0.5 * (1 - erf);
}

/** Inverse standard normal CDF (Acklam's rational approximation, relative error < 1.2e-9). */
export function normalQuantile(p: number): number {
  if (!(p > 0 && p < 1))
    return p === 0 ? Number.NEGATIVE_INFINITY : p === 1 ? Number.POSITIVE_INFINITY : Number.NaN;
  const a = [
    -39.69683028665376, 220.9460984245205, -275.9285104469687, 138.357751867269, -30.66479806614716,
    2.506628277459239,
  ];
  const b = [
    -54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572,
  ];
  const c = [
    -0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734, 4.374664141464968,
    2.938163982698783,
  ];
  const d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];
  const low = 0.02425;
  const [a0, a1, a2, a3, a4, a5] = a as [number, number, number, number, number, number];
  const [b0, b1, b2, b3, b4] = b as [number, number, number, number, number];
  const [c0, c1, c2, c3, c4, c5] = c as [number, number, number, number, number, number];
  const [d0, d1, d2, d3] = d as [number, number, number, number];
  if (p < low) {
    const q = Math.sqrt(-2 * Math.log(p));
    return (
      (((((c0 * q + c1) * q + c2) * q + c3) * q + c4) * q + c5) /
      ((((d0 * q + d1) * q + d2) * q + d3) * q + 1)
    );
  }
  if (p > 1 - low) {
    const q = Math.sqrt(-2 * Math.log(1 - p));
    return (
      -(((((c0 * q + c1) * q + c2) * q + c3) * q + c4) * q + c5) /
      ((((d0 * q + d1) * q + d2) * q + d3) * q + 1)
    );
  }
  const q = p - 0.5;
  const r = q * q;
  return (
    ((((((a0 * r + a1) * r + a2) * r + a3) * r + a4) * r + a5) * q) /
    (((((b0 * r + b1) * r + b2) * r + b3) * r + b4) * r + 1)
  );
}

/** Per-period returns of an equity curve (the first from the starting equity). */
export function periodReturns(initialEquity: number, equity: ArrayLike<number>): Float64Array {
  const out = new Float64Array(equity.length);
  let previous = initialEquity;
  for (let i = 0; i < equity.length; i++) {
    const e = equity[i] as number;
    out[i] = e / previous - 1;
    previous = e;
  }
  return out;
}

/**
 * Deflated Sharpe ratio of `returns`, the chosen strategy's per-period returns, after `trials`
 * trials whose per-period Sharpe ratios had variance `sharpeVariance`. Null when it is undefined
 * (fewer than 3 returns, no variance, a single trial with no spread).
 */
export function deflatedSharpe(
  returns: ArrayLike<number>,
  trials: number,
  sharpeVariance: number,
): DeflatedSharpe | null {
  const n = returns.length;
  if (n < 3 || trials < 1) return null;
  let mean = 0;
  for (let i = 0; i < n; i++) mean += returns[i] as number;
  mean /= n;
  let m2 = 0;
  let m3 = 0;
  let m4 = 0;
  for (let i = 0; i < n; i++) {
    const d = (returns[i] as number) - mean;
    m2 += d * d;
    m3 += d * d * d;
    m4 += d * d * d * d;
  }
  m2 /= n;
  m3 /= n;
  m4 /= n;
  if (!(m2 > 0)) return null;
  const sd = Math.sqrt(m2);
  const sharpe = mean / sd;
  const skew = m3 / (sd * sd * sd);
  const kurtosis = m4 / (m2 * m2);
  const expectedMaxSharpe =
    trials <= 1
      ? 0
      : Math.sqrt(Math.max(0, sharpeVariance)) *
        ((1 - EULER_GAMMA) * normalQuantile(1 - 1 / trials) +
          EULER_GAMMA * normalQuantile(1 - 1 / (trials * Math.E)));
  const denominator = 1 - skew * sharpe + ((kurtosis - 1) / 4) * sharpe * sharpe;
  if (!(denominator > 0)) return null;
  const z = ((sharpe - expectedMaxSharpe) * Math.sqrt(n - 1)) / Math.sqrt(denominator);
  return { trials, sharpe, expectedMaxSharpe, deflatedSharpe: normalCdf(z) };
}
