import type { PositionRecord } from '../ports/state-store.js';
import { isUnassigned } from './reconcile.js';

/**
 * The unlisted-split guard (pure). A broker applies a split at the open (shares times the ratio,
 * prices divided by it) and may list it in its activities only later: until then the booked
 * records are in the old shares, their stops too, and the market at the new price looks through
 * every one of them. Such a split is evident from the position alone: the broker's quantity is the
 * booked quantity times a ratio while the broker's cost basis (qty × average entry price) is the
 * booked one, with no fill of the day to explain the difference (a fill changes the cost basis
 * with the shares; a split never does).
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

/**
 * The apparent ratio (new shares per old share) of a split the broker has applied to a symbol and
 * not listed yet, or `null` when the position shows none: no fill of the symbol today, the
 * broker's and the booked quantities on the same side and apart by a ratio at least
 * {@link MIN_SPLIT_CHANGE} from 1, both with a positive cost basis, equal to
 * {@link costToleranceCents}.
 */
export function unlistedSplitRatio(
  broker: { readonly qty: number; readonly avgEntryPrice: number },
  booked: BookedHolding,
  filledToday: boolean,
): number | null {
  if (filledToday) return null;
  if (!(Math.abs(broker.qty) > EPSILON && Math.abs(booked.qty) > EPSILON)) return null;
  const ratio = broker.qty / booked.qty;
  if (!(ratio > 0) || !Number.isFinite(ratio) || Math.abs(ratio - 1) < MIN_SPLIT_CHANGE) return null;
  // A broker that reports no cost basis (a crypto exchange's average entry price is 0) proves
  // nothing: two zero cost bases agree for any quantities.
  if (!(broker.avgEntryPrice > 0 && booked.cost / booked.qty > 0)) return null;
  if (!Number.isFinite(broker.avgEntryPrice) || !Number.isFinite(booked.cost)) return null;
  const brokerCents = broker.qty * broker.avgEntryPrice * 100;
  const bookedCents = booked.cost * 100;
  return Math.abs(brokerCents - bookedCents) <= costToleranceCents(broker.qty) ? ratio : null;
}

/**
 * The split a symbol's broker position shows against its position records ({@link unlistedSplitRatio}),
 * or null: compared with the sleeves' records alone (a bucket an earlier reconciliation filled with
 * the split's new shares left out), then with the bucket too. `booked` is the holding compared with.
 */
export function unlistedSplitOf(
  position: { readonly symbol: string; readonly qty: number; readonly avgEntryPrice: number },
  records: readonly PositionRecord[],
  filledToday: boolean,
): { readonly ratio: number; readonly booked: BookedHolding } | null {
  const sleeves = bookedHolding(
    records.filter((r) => !isUnassigned(r)),
    position.symbol,
  );
  const fromSleeves = unlistedSplitRatio(position, sleeves, filledToday);
  if (fromSleeves !== null) return { ratio: fromSleeves, booked: sleeves };
  const all = bookedHolding(records, position.symbol);
  const ratio = unlistedSplitRatio(position, all, filledToday);
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
