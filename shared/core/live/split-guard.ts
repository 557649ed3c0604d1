import type { PositionRecord } from '../ports/state-store.js';
import { isUnassigned } from './reconcile.js';

/**
 * The unlisted-split guard (pure). A broker applies a split at the open (shares times the ratio,
 * prices divided by it) and may list it in its activities only later: until then the booked
 * records are in the old shares, their stops too, and the market at the new price looks through
 * every one of them. Such a split is evident from the position and the day's fills the booked
 * records do not hold (each in the new shares: the split comes at the open, before every fill).
 *
 * The rule. Let the booked holding be B shares at cost basis C (Σ qty × entry price), the day's
 * fills f_1..f_n in time order (signed: a buy +q at price p, a sell -q), the broker's position Q
 * shares at average entry price A. A split of ratio r gives B·r shares at the same cost C; each
 * fill then moves the holding as the broker books it: a fill on the holding's side (or from flat)
 * adds q shares and q·p of cost; one against it removes q shares at the average entry price (the
 * cost times (shares after)/(shares before), the average unchanged). So
 *   Q = B·r + Σ f_i, i.e. r = (Q - Σ f_i) / B,
 * and the cost the walk from (B·r, C) through the fills ends at must be the broker's Q·A (to
 * {@link costToleranceCents}). A fill that takes the holding to zero or through it ends the walk
 * with no answer: the broker's cost basis starts again from the fills after it (to zero, no cost;
 * through zero, the rest at the fill's price), so it no longer holds C and any r would pass (sleeve
 * 100 @ 50, a sell of 200 @ 60, the broker -90 @ 60: r = 1.1 and the cost -5400 both ways): the
 * guard stands aside that day. A split is r at least {@link MIN_SPLIT_CHANGE} from 1, positive
 * (the same side). Without a split r is 1 and the guard never fires; with no fill of the day it is
 * Q / B and the cost bases must be equal (a split never moves the cost basis, a fill the guard is
 * not told of does). A buy of the day whose price is not known (a fill the activities do not list
 * yet) leaves the cost unknown: no guard. Cash in lieu (the fraction of a share paid in cash:
 * Q = floor(B·r) with the cost basis less the fraction's) is not recognised: r is then not the
 * quotient above, and with the day's buys moving the average it cannot be told from the average
 * alone.
 */

/** Quantities closer than this are equal (fractional shares are whole to 1e-9). */
const EPSILON = 1e-9;

/**
 * The least change of share count a split makes (|ratio - 1|): the smallest a market pays is a 5 %
 * stock dividend (21:20). A position a share or so apart, whose cost bases agree within the
 * tolerance (many shares of a cheap stock), is no split.
 */
export const MIN_SPLIT_CHANGE = 0.04;

/**
 * How far two cost bases may differ and still be the same money, in cents: one cent, plus half a
 * hundredth of a cent per share of the broker's position (an average entry price reported to four
 * decimals, times the shares).
 */
export function costToleranceCents(brokerQty: number): number {
  return 1 + Math.abs(brokerQty) * 0.005;
}

/** The booked side of a symbol: its signed quantity and cost basis (Σ qty × entry price, dollars). */
export interface BookedHolding {
  readonly qty: number;
  readonly cost: number;
}

/** A symbol's booked holding from its position records (every sleeve's and the bucket's). */
export function bookedHolding(
  records: readonly Pick<PositionRecord, 'symbol' | 'qty' | 'avgEntryPrice'>[],
  symbol: string,
): BookedHolding {
  let qty = 0;
  let cost = 0;
  for (const r of records) {
    if (r.symbol !== symbol) continue;
    qty += r.qty;
    cost += r.qty * r.avgEntryPrice;
  }
  return { qty, cost };
}

/** A fill of the day, as the broker booked it (in the new shares of a split of the day). */
export interface DayFill {
  readonly side: 'buy' | 'sell';
  readonly qty: number;
  /** Its price; a buy's must be known (positive) for the guard to weigh its cost. */
  readonly price: number;
}

/**
 * The day's fills the booked holding does not hold, in time order, or `'unknown'` when the caller
 * cannot list them (a fill of the day it cannot see): the guard then stands aside.
 */
export type DayFills = readonly DayFill[] | 'unknown';

/**
 * The cost basis (dollars, signed like the shares) a holding of `qty` shares at `cost` ends at
 * through `fills`, as the broker books them (see the rule above), or null when a fill's price it
 * needs is not known or a fill takes the holding to zero or through it (the cost basis after owes
 * nothing to the holding before: no guard that day).
 */
export function costThroughFills(qty: number, cost: number, fills: readonly DayFill[]): number | null {
  let shares = qty;
  let basis = cost;
  for (const fill of fills) {
    const signed = fill.side === 'buy' ? fill.qty : -fill.qty;
    const after = shares + signed;
    if (Math.abs(shares) <= EPSILON || Math.sign(shares) === Math.sign(signed)) {
      if (!(fill.price > 0 && Number.isFinite(fill.price))) return null;
      basis += signed * fill.price;
    } else {
      // To zero or through it: the cost basis starts again from the fills after, whatever the
      // holding was, so it can no longer tell a split from any other difference of shares.
      if (Math.abs(after) <= EPSILON || Math.sign(after) !== Math.sign(shares)) return null;
      basis *= after / shares;
    }
    shares = after;
  }
  return basis;
}

/**
 * The apparent ratio (new shares per old share) of a split the broker has applied to a symbol and
 * not listed yet, or `null` when the position shows none (the rule above): the broker's quantity
 * less the day's fills, over the booked quantity, on the same side and at least
 * {@link MIN_SPLIT_CHANGE} from 1; the booked cost basis walked through the day's fills equal to
 * the broker's to {@link costToleranceCents}; both with a positive average price. `fills` are the
 * symbol's fills of the day the booked holding does not hold.
 */
export function unlistedSplitRatio(
  broker: { readonly qty: number; readonly avgEntryPrice: number },
  booked: BookedHolding,
  fills: DayFills,
): number | null {
  if (fills === 'unknown') return null;
  if (!(Math.abs(broker.qty) > EPSILON && Math.abs(booked.qty) > EPSILON)) return null;
  const net = fills.reduce((sum, f) => sum + (f.side === 'buy' ? f.qty : -f.qty), 0);
  const ratio = (broker.qty - net) / booked.qty;
  // (The quotient of a difference: a 21:20 split may come out a hair under 1.05.)
  if (!(ratio > 0) || !Number.isFinite(ratio) || Math.abs(ratio - 1) < MIN_SPLIT_CHANGE - EPSILON)
    return null;
  // A broker that reports no cost basis (a crypto exchange's average entry price is 0) proves
  // nothing: two zero cost bases agree for any quantities.
  if (!(broker.avgEntryPrice > 0 && booked.cost / booked.qty > 0)) return null;
  if (!Number.isFinite(broker.avgEntryPrice) || !Number.isFinite(booked.cost)) return null;
  const expected = costThroughFills(booked.qty * ratio, booked.cost, fills);
  if (expected === null) return null;
  const brokerCents = broker.qty * broker.avgEntryPrice * 100;
  return Math.abs(brokerCents - expected * 100) <= costToleranceCents(broker.qty) ? ratio : null;
}

/**
 * The split a symbol's broker position shows against its position records ({@link unlistedSplitRatio}),
 * or null: compared with the sleeves' records alone (a bucket an earlier reconciliation filled with
 * the split's new shares left out), then with the bucket too. `booked` is the holding compared with;
 * `fills`, the symbol's fills of the day the records do not hold.
 */
export function unlistedSplitOf(
  position: { readonly symbol: string; readonly qty: number; readonly avgEntryPrice: number },
  records: readonly PositionRecord[],
  fills: DayFills,
): { readonly ratio: number; readonly booked: BookedHolding } | null {
  const sleeves = bookedHolding(
    records.filter((r) => !isUnassigned(r)),
    position.symbol,
  );
  const fromSleeves = unlistedSplitRatio(position, sleeves, fills);
  if (fromSleeves !== null) return { ratio: fromSleeves, booked: sleeves };
  const all = bookedHolding(records, position.symbol);
  const ratio = unlistedSplitRatio(position, all, fills);
  return ratio === null ? null : { ratio, booked: all };
}

/** The ratio as an operator reads it: `4:1`, `3:2`, `1:10` (to two decimals when not simple). */
export function ratioText(ratio: number): string {
  for (let old = 1; old <= 20; old++) {
    const shares = ratio * old;
    if (Math.abs(shares - Math.round(shares)) <= 1e-6 && Math.round(shares) > 0)
      return `${Math.round(shares)}:${old}`;
  }
  return `${Math.round(ratio * 100) / 100}:1`;
}
