import type { AllocationSettings } from './config.js';

/** Weight bounds of one sleeve. */
export interface WeightBounds {
  readonly min: number;
  readonly max: number;
}

/** A daily-return floor for volatility, so a sleeve sitting in cash has a finite inverse volatility. */
const MIN_VOL = 1e-4;

/**
 * Scales raw weights into the bounds so that they sum to 1: finds λ with Σ clip(λ·wᵢ, minᵢ, maxᵢ) = 1
 * by bisection (the sum is monotone in λ). Needs Σ min ≤ 1 ≤ Σ max, which the config check ensures.
 */
export function boundWeights(raw: readonly number[], bounds: readonly WeightBounds[]): number[] {
  const n = raw.length;
  const positive = raw.map((w) => (Number.isFinite(w) && w > 0 ? w : 1e-12));
  const at = (lambda: number) =>
    positive.map((w, i) => {
      const b = bounds[i] as WeightBounds;
      return Math.min(b.max, Math.max(b.min, lambda * w));
    });
  const total = (ws: readonly number[]) => ws.reduce((a, b) => a + b, 0);
  let lo = 0;
  let hi = 1;
  while (total(at(hi)) < 1 && hi < 1e300) hi *= 2;
  for (let k = 0; k < 200; k++) {
    const mid = (lo + hi) / 2;
    if (total(at(mid)) < 1) lo = mid;
    else hi = mid;
  }
  const weights = at(hi);
  // Put the bisection's last rounding on a sleeve strictly inside its bounds.
  const residue = 1 - total(weights);
  for (let i = 0; i < n && residue !== 0; i++) {
    const b = bounds[i] as WeightBounds;
    const next = (weights[i] as number) + residue;
    if (next >= b.min && next <= b.max) {
      weights[i] = next;
      break;
    }
  }
  return weights;
}

/** Sample covariance matrix of the columns of `returns` (rows: sessions, one column per sleeve). */
export function covariance(returns: readonly (readonly number[])[], n: number): number[][] {
  const rows = returns.length;
  const mean = new Array<number>(n).fill(0);
  for (const r of returns)
    for (let i = 0; i < n; i++) mean[i] = (mean[i] as number) + (r[i] as number) / rows;
  const cov = Array.from({ length: n }, () => new Array<number>(n).fill(0));
  for (const r of returns) {
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        const row = cov[i] as number[];
        row[j] =
          (row[j] as number) +
          ((r[i] as number) - (mean[i] as number)) * ((r[j] as number) - (mean[j] as number));
      }
    }
  }
  const d = Math.max(1, rows - 1);
  return cov.map((row) => row.map((x) => x / d));
}

/** Inverse-volatility weights (before bounds): 1/σᵢ over the sum, σ floored at 1e-4 per day. */
export function inverseVolatility(cov: readonly (readonly number[])[]): number[] {
  const inv = cov.map((row, i) => 1 / Math.max(MIN_VOL, Math.sqrt(Math.max(0, row[i] as number))));
  const sum = inv.reduce((a, b) => a + b, 0);
  return inv.map((x) => x / sum);
}

/**
 * Equal-risk-contribution weights (before bounds): each sleeve's wᵢ·(Σw)ᵢ is the same. Solved by the
 * multiplicative fixed point wᵢ ← wᵢ·√(mean RC / RCᵢ) from the inverse-volatility start; the diagonal
 * is floored like the volatility so that a sleeve in cash does not take all the weight.
 */
export function riskParity(cov: readonly (readonly number[])[]): number[] {
  const n = cov.length;
  const c = cov.map((row, i) => row.map((x, j) => (i === j ? Math.max(x, MIN_VOL * MIN_VOL) : x)));
  let w = inverseVolatility(c);
  for (let iter = 0; iter < 2000; iter++) {
    const sigmaW = c.map((row) => row.reduce((acc, x, j) => acc + x * (w[j] as number), 0));
    const rc = w.map((wi, i) => wi * (sigmaW[i] as number));
    const mean = rc.reduce((a, b) => a + b, 0) / n;
    let change = 0;
    const next = w.map((wi, i) => {
      const ratio = (rc[i] as number) > 0 ? mean / (rc[i] as number) : 2;
      const v = wi * Math.sqrt(ratio);
      change = Math.max(change, Math.abs(v - wi));
      return v;
    });
    const sum = next.reduce((a, b) => a + b, 0);
    w = next.map((x) => x / sum);
    if (change < 1e-12) break;
  }
  return w;
}

/** The inputs a reallocation used, kept with its event. */
export interface AllocationInputs {
  readonly method: AllocationSettings['method'];
  /** Sessions of returns read (the last one is the session before the reallocation). */
  readonly sessions: number;
  /** Each sleeve's daily volatility over them (null for `fixed` or too little history). */
  readonly volatility: readonly (number | null)[];
  /** Multipliers from correlation cuts (1: none). */
  readonly cuts: readonly number[];
}

/**
 * Target weights from the sleeves' daily returns strictly before the reallocation (the caller passes
 * returns up to t−1 only). `fixed` uses the configured weights; the others fall back to them until
 * there are 5 sessions of history. Correlation cuts multiply, then the bounds apply.
 */
export function targetWeights(
  settings: Pick<AllocationSettings, 'method' | 'lookback'>,
  configured: readonly number[],
  bounds: readonly WeightBounds[],
  history: readonly (readonly number[])[],
  cuts: readonly number[] = configured.map(() => 1),
): { weights: number[]; inputs: AllocationInputs } {
  const n = configured.length;
  const window = history.slice(Math.max(0, history.length - settings.lookback));
  let raw: number[] = [...configured];
  let volatility: (number | null)[] = configured.map(() => null);
  if (settings.method !== 'fixed' && window.length >= 5) {
    const cov = covariance(window, n);
    volatility = cov.map((row, i) => Math.sqrt(Math.max(0, row[i] as number)));
    raw = settings.method === 'inverse-volatility' ? inverseVolatility(cov) : riskParity(cov);
  }
  const cut = raw.map((w, i) => w * (cuts[i] ?? 1));
  return {
    weights: boundWeights(cut, bounds),
    inputs: {
      method: settings.method,
      sessions: settings.method === 'fixed' ? 0 : window.length,
      volatility,
      cuts: [...cuts],
    },
  };
}
