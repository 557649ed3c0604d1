/**
 * Ledger arithmetic. Cash, notionals, commissions and realized P&L are integer cents held in
 * plain numbers (exact up to 2^53 cents, about 90 trillion dollars). Prices and quantities stay
 * floating point; every conversion to cents rounds once, half away from zero.
 */
export type Cents = number;

const HALF_NUDGE = 1 + 8 * Number.EPSILON;
/** 2^52: from here on every double is an integer, and one plus a half is a tie. */
const TWO_52 = 4_503_599_627_370_496;

/** Rounds a dollar amount to whole cents, half away from zero. */
export function toCents(dollars: number): Cents {
  const scaled = dollars * 100;
  // The nudge of a few ulps makes binary near-halves such as 28.499999999999996 (0.285 * 100) round as
  // the decimal half they stand for. A positive amount (the usual case) takes the short path, which
  // the hot loops of the backtests compile best; it gives the same value as the general one.
  const nudged = scaled * HALF_NUDGE;
  // `Math.round(nudged)` as `Math.floor(nudged + 0.5)`, two instructions instead of V8's five (ceil,
  // then a correction): equal in [0.5, 2^52), where the addition is exact or rounds only past a power
  // of two with nothing to floor away. Below 0.5 (0.49999999999999994 + 0.5 rounds to 1) and from
  // 2^52 cents (an odd integer + 0.5 rounds to the even one above) the general path rounds.
  if (nudged >= 0.5 && nudged < TWO_52) return Math.floor(nudged + 0.5);
  const rounded = Math.round(Math.abs(scaled) * HALF_NUDGE);
  return scaled < 0 ? -rounded : rounded;
}

/** Cents to dollars, for reports and metrics (not for further ledger arithmetic). */
export function toDollars(cents: Cents): number {
  return cents / 100;
}

/** The cash value of `qty` shares at `price`, in cents. */
export function notionalCents(qty: number, price: number): Cents {
  return toCents(qty * price);
}

/**
 * Commission schedule. The parts add up (per share + per order + percent of notional), and the
 * total is at least `minimum` whenever the order has a commission at all.
 */
export interface CommissionModel {
  /** Dollars per share traded. */
  readonly perShare: number;
  /** Dollars per filled order. */
  readonly perOrder: number;
  /** Fraction of notional (0.001 = 0.1%). */
  readonly percent: number;
  /** Dollars; the floor for a non-zero commission. */
  readonly minimum: number;
}

export const NO_COMMISSION: CommissionModel = { perShare: 0, perOrder: 0, percent: 0, minimum: 0 };

/**
 * Commission for one fill, in cents. `minimumCents` is `toCents(model.minimum)` (its default), which
 * a caller that prices many fills with one model computes once.
 */
export function commissionCents(
  model: CommissionModel,
  qty: number,
  notional: Cents,
  minimumCents: Cents = toCents(model.minimum),
): Cents {
  const percent = model.percent;
  // Without a percent part the term is 0 × |notional| (±0, or NaN), which the division by 100 keeps.
  const ofNotional = percent === 0 ? percent * Math.abs(notional) : (percent * Math.abs(notional)) / 100;
  const raw = model.perShare * Math.abs(qty) + model.perOrder + ofNotional;
  if (raw <= 0) return 0;
  // `toCents` never decreases: an amount under the minimum rounds to at most the minimum's cents.
  if (raw < model.minimum) return minimumCents;
  return Math.max(toCents(raw), minimumCents);
}

/** Splits `total` cents over weights by the largest remainder, so the parts sum to it exactly. */
export function splitCents(total: Cents, weights: readonly number[]): Cents[] {
  const sum = weights.reduce((a, b) => a + b, 0);
  if (!(sum > 0)) return weights.map((_, i) => (i === 0 ? total : 0));
  const raw = weights.map((w) => (total * w) / sum);
  const parts = raw.map((x) => Math.floor(x));
  let rest = total - parts.reduce((a, b) => a + b, 0);
  const order = raw.map((x, i) => [x - Math.floor(x), i] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  for (let k = 0; rest > 0; k = (k + 1) % order.length, rest--) {
    const i = (order[k] as readonly [number, number])[1];
    parts[i] = (parts[i] as number) + 1;
  }
  return parts;
}
