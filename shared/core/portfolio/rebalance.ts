import { type Cents, splitCents } from '../ledger/money.js';

/** When a reallocation happens. */
export type RebalanceSchedule = 'monthly' | 'quarterly' | 'never';

/** Whether the close at `time` is the first of a new period after the close at `previous`. */
export function isScheduledRebalance(schedule: RebalanceSchedule, previous: number, time: number): boolean {
  if (schedule === 'never' || !Number.isFinite(previous)) return false;
  const a = new Date(previous);
  const b = new Date(time);
  const months = (b.getUTCFullYear() - a.getUTCFullYear()) * 12 + b.getUTCMonth() - a.getUTCMonth();
  if (months <= 0) return false;
  if (schedule === 'monthly') return true;
  return Math.floor(b.getUTCMonth() / 3) !== Math.floor(a.getUTCMonth() / 3) || months >= 3;
}

/** The largest gap between a sleeve's share of the account's equity and its target weight. */
export function maxDrift(equity: readonly Cents[], weights: readonly number[]): number {
  const total = equity.reduce((a, b) => a + b, 0);
  if (!(total > 0)) return 0;
  return equity.reduce((m, e, i) => Math.max(m, Math.abs(e / total - (weights[i] as number))), 0);
}

/**
 * Capital moves (cents per sleeve, summing to zero) that bring each sleeve's equity toward its target
 * weight of the account's equity. Positions are never touched: a sleeve gives at most its free cash,
 * and the receivers share what is given in proportion to their shortfall.
 */
export function rebalanceTransfers(
  equity: readonly Cents[],
  cash: readonly Cents[],
  weights: readonly number[],
): Cents[] {
  const total = equity.reduce((a, b) => a + b, 0);
  const gap = equity.map((e, i) => Math.round((weights[i] as number) * total) - e);
  const shortfall = gap.map((g) => Math.max(0, g));
  if (shortfall.reduce((a, g) => a + g, 0) === 0) return equity.map(() => 0);
  const give = gap.map((g, i) => (g < 0 ? Math.min(-g, Math.max(0, cash[i] as number)) : 0));
  const received = splitCents(
    give.reduce((a, b) => a + b, 0),
    shortfall,
  );
  return gap.map((g, i) => (g > 0 ? (received[i] as number) : -(give[i] as number)));
}
