import { floorQty } from '../sizing/index.js';
import type { Writable } from '../writable.js';
import type { RiskRules } from './rules.js';
import { volatilityCapFraction } from './volatility.js';

/** An open (or just-decided) position as the heat calculation sees it. */
export interface HeatPosition {
  readonly side: 1 | -1;
  readonly qty: number;
  /** The decision close the entry was sized at. */
  readonly entryRef: number;
  readonly stop: number;
}

/**
 * Portfolio heat in dollars: for each position, quantity × the distance from its entry reference
 * price to its current stop, never below zero, so a stop that trails past the entry adds nothing.
 */
export function portfolioHeat(positions: Iterable<HeatPosition>): number {
  let heat = 0;
  for (const p of positions) heat += positionHeat(p.side, p.qty, p.entryRef, p.stop);
  return heat;
}

/** One position's heat in dollars (its term of `portfolioHeat`). */
export function positionHeat(side: 1 | -1, qty: number, entryRef: number, stop: number): number {
  return qty * Math.max(0, side * (entryRef - stop));
}

/**
 * Running sums of a list of closed trades' P&L, oldest first, as `kellyEstimate` sums them (the
 * same additions in the same order, so the same doubles): a caller that appends a trade here each
 * time it appends one to its list (`add`) lets `kellyEstimate` skip the loop while the window
 * covers the whole list. `count` is how many P&Ls were added since `reset`.
 */
export class KellySums {
  count = 0;
  wins = 0;
  losses = 0;
  /**
   * The sums start at -0, a double (a literal 0 is a small integer): the object's shape then holds
   * doubles from its construction, instead of changing at the first fractional P&L, which gave
   * every later instance another shape and deoptimized the code that had seen the first (a sweep
   * makes new ones per chunk). -0 + x is x, and a sum is read only once something was added.
   */
  winSum = -0;
  lossSum = -0;

  /** Empties the sums (the list was emptied). */
  reset(): void {
    this.count = 0;
    this.wins = 0;
    this.losses = 0;
    this.winSum = 0;
    this.lossSum = 0;
  }

  /** One more P&L, appended to the list too. */
  add(pnl: number): void {
    this.count++;
    if (pnl > 0) {
      this.wins++;
      this.winSum += pnl;
    } else if (pnl < 0) {
      this.losses++;
      this.lossSum -= pnl;
    }
  }
}

/**
 * The Kelly fraction W − (1 − W) / R from the last `window` closed trades' P&L (W: win rate,
 * R: average win / average loss). Null until `minTrades` trades exist. With no losing trade it is W.
 * `sums`, when given, must be the running sums of `pnls` (`KellySums`, kept in step by the caller):
 * while the window holds the whole list they are its sums, and the loop is skipped.
 */
export function kellyEstimate(
  pnls: readonly number[],
  window: number,
  minTrades: number,
  sums?: KellySums,
): number | null {
  const from = Math.max(0, pnls.length - window);
  if (pnls.length - from < minTrades) return null;
  return kellyOfWindow(pnls, from, sums);
}

/**
 * {@link kellyEstimate} with NaN for null (too few trades), which a sizing reads alike (a NaN Kelly
 * cap never binds): a double whichever way, so code that inlines it keeps it unboxed.
 */
export function kellyEstimateOrNaN(
  pnls: readonly number[],
  window: number,
  minTrades: number,
  sums?: KellySums,
): number {
  const from = Math.max(0, pnls.length - window);
  if (pnls.length - from < minTrades) return Number.NaN;
  return kellyOfWindow(pnls, from, sums);
}

/** `kellyEstimate` of the trades from `from` to the end of `pnls`. */
function kellyOfWindow(pnls: readonly number[], from: number, sums: KellySums | undefined): number {
  const n = pnls.length - from;
  if (sums !== undefined && from === 0 && sums.count === n) {
    return kellyOfSums(n, sums.wins, sums.losses, sums.winSum, sums.lossSum);
  }
  let wins = 0;
  let losses = 0;
  let winSum = 0;
  let lossSum = 0;
  for (let i = from; i < pnls.length; i++) {
    const pnl = pnls[i] as number;
    if (pnl > 0) {
      wins++;
      winSum += pnl;
    } else if (pnl < 0) {
      losses++;
      lossSum -= pnl;
    }
  }
  return kellyOfSums(n, wins, losses, winSum, lossSum);
}

/** `kellyEstimate` of `n` trades from their wins, losses and the sums of each. */
function kellyOfSums(n: number, wins: number, losses: number, winSum: number, lossSum: number): number {
  const w = wins / n;
  if (losses === 0) return w;
  if (wins === 0) return -1;
  return w - (1 - w) / (winSum / wins / (lossSum / losses));
}

/** What the risk rules need to size one entry. */
export interface RiskSizingInput {
  /** Quantity from the configured sizing mode (NaN: all-in, which the risk budget sizes instead). */
  readonly requestedQty: number;
  readonly side: 1 | -1;
  /** The decision close: entry reference price. */
  readonly price: number;
  readonly stop: number;
  readonly equity: number;
  /** Heat in dollars of the open positions and of the entries already decided at this close. */
  readonly openHeat: number;
  /**
   * Kelly estimate from the strategy's trade history, or null while the sample is too small (NaN
   * reads the same: a NaN Kelly cap never binds).
   */
  readonly kelly: number | null;
  /** The strongest correlation with an open position: |ρ| and the symbol; null when none is known. */
  readonly correlation: { readonly symbol: string; readonly rho: number } | null;
  readonly fractional: boolean;
  /** Annualised volatility of the symbol's daily returns (NaN or absent: unknown), for `rules.volatilityCap`. */
  readonly annualVolatility?: number | undefined;
  /**
   * Equity the heat cap is a fraction of, when it differs from `equity` (a sleeve sizes from its own
   * equity; the heat cap is the account's). Default: `equity`.
   */
  readonly heatEquity?: number | undefined;
  /**
   * Whether to word the reductions and the refusal (default true); false leaves `reductions` empty and
   * a refusal's reason `UNWORDED_REFUSAL`, the size and whether it is refused the same.
   */
  readonly explain?: boolean;
}

/** The sized entry: a quantity, or a refusal; reductions name every rule that cut the size. */
export interface RiskSizing {
  readonly qty: number;
  readonly refused: string | null;
  readonly reductions: readonly string[];
  /** Fraction of equity risked to the stop, after the Kelly and correlation adjustments. */
  readonly riskFraction: number;
  /** Heat in dollars that this entry adds. */
  readonly heat: number;
}

const pct = (x: number) => `${Math.round(x * 10_000) / 100}%`;

const NO_REDUCTIONS: readonly string[] = Object.freeze([]);

/** The reason of a refusal that is not worded (`explain: false`): the decision does not read it. */
export const UNWORDED_REFUSAL = 'refused';

/** A writable `RiskSizing`, which {@link sizeEntryWithRiskInto} fills. */
export type RiskSizingOut = Writable<RiskSizing>;

/** A fresh output for {@link sizeEntryWithRiskInto} (a caller that sizes many entries keeps one). */
export const riskSizingOut = (): RiskSizingOut => ({
  qty: 0,
  refused: null,
  reductions: NO_REDUCTIONS,
  riskFraction: 0,
  heat: 0,
});

/**
 * Sizes an entry under the risk rules: the risk budget (capped by Kelly, cut for correlation)
 * over the distance to the stop, then the position cap, then the portfolio heat cap. An entry
 * the heat cap leaves no room for is refused. Shared by the backtest and the live functions.
 */
export function sizeEntryWithRisk(input: RiskSizingInput, rules: RiskRules): RiskSizing {
  const out = riskSizingOut();
  sizeEntryWithRiskInto(input, rules, out);
  return out;
}

/** Fills `out` with a refusal for `reason`. */
function refuse(out: RiskSizingOut, reason: string): void {
  out.qty = 0;
  out.refused = reason;
  out.reductions = NO_REDUCTIONS;
  out.riskFraction = 0;
  out.heat = 0;
}

/**
 * `sizeEntryWithRisk` into `out` (every field written), the rules' one implementation: the decision
 * at a close sizes each entry into one reused output. Without wording (`explain: false`) it
 * allocates nothing: no reductions, and a refusal's reason is {@link UNWORDED_REFUSAL}.
 */
export function sizeEntryWithRiskInto(input: RiskSizingInput, rules: RiskRules, out: RiskSizingOut): void {
  const { side, price, stop, equity, fractional } = input;
  const distance = side * (price - stop);
  // Without wording (`explain: false`) nothing is pushed: the frozen empty list stays empty.
  const explain = input.explain !== false;
  if (!(distance > 0) || !Number.isFinite(stop)) {
    refuse(out, explain ? 'no valid stop: an entry needs a stop on the losing side' : UNWORDED_REFUSAL);
    return;
  }
  if (!(equity > 0)) {
    refuse(out, explain ? 'no equity' : UNWORDED_REFUSAL);
    return;
  }

  const reductions: string[] = explain ? [] : (NO_REDUCTIONS as string[]);
  let riskFraction = rules.riskPerTrade;
  if (input.kelly !== null) {
    const kellyRisk = rules.kellyFraction * input.kelly;
    if (kellyRisk < riskFraction) {
      riskFraction = Math.max(kellyRisk, rules.kellyMinRisk);
      if (explain)
        reductions.push(
          `Kelly cap: ${rules.kellyFraction} × Kelly ${Math.round(input.kelly * 1000) / 1000} → risk ${pct(riskFraction)}`,
        );
    }
  }
  if (input.correlation !== null && Math.abs(input.correlation.rho) >= rules.correlation.threshold) {
    riskFraction *= rules.correlation.reduction;
    if (explain)
      reductions.push(
        `correlated with ${input.correlation.symbol} (ρ = ${Math.round(input.correlation.rho * 100) / 100}): risk × ${rules.correlation.reduction}`,
      );
  }
  const budgetQty = floorQty((riskFraction * equity) / distance, fractional);
  let qty = Number.isNaN(input.requestedQty) ? budgetQty : Math.min(input.requestedQty, budgetQty);
  if (explain && qty < input.requestedQty && reductions.length === 0)
    reductions.push(`risk per trade ${pct(riskFraction)}`);

  const positionCap = floorQty((rules.maxPositionFraction * equity) / price, fractional);
  if (qty > positionCap) {
    qty = positionCap;
    if (explain) reductions.push(`position cap ${pct(rules.maxPositionFraction)} of equity`);
  }
  if (rules.volatilityCap !== undefined) {
    const cap = rules.volatilityCap;
    const volatility = input.annualVolatility ?? Number.NaN;
    if (Number.isNaN(volatility)) {
      refuse(
        out,
        explain ? `volatility cap: the ${cap.window}-day volatility is still warming up` : UNWORDED_REFUSAL,
      );
      return;
    }
    const target = cap.targetVolatility;
    const fraction = volatilityCapFraction(target, volatility, rules.maxPositionFraction);
    const volatilityCap = floorQty((fraction * equity) / price, fractional);
    if (qty > volatilityCap) {
      qty = volatilityCap;
      if (explain)
        reductions.push(
          `volatility cap ${pct(target)} / volatility ${pct(volatility)} = ${pct(fraction)} of equity`,
        );
    }
  }
  // `input.heatEquity ?? equity`, with the given value made a number before the join: joined with a
  // field that may hold undefined, the double `equity` was boxed into a new heap number per entry.
  const givenHeatEquity = input.heatEquity;
  const heatEquity = givenHeatEquity === undefined ? equity : +givenHeatEquity;
  const heatRoom = rules.maxPortfolioHeat * heatEquity - input.openHeat;
  const heatCap = heatRoom > 0 ? floorQty(heatRoom / distance, fractional) : 0;
  if (qty > heatCap) {
    if (heatCap <= 0) {
      refuse(
        out,
        explain
          ? `portfolio heat ${pct(input.openHeat / heatEquity)} leaves no room under the ${pct(rules.maxPortfolioHeat)} cap`
          : UNWORDED_REFUSAL,
      );
      return;
    }
    qty = heatCap;
    if (explain) reductions.push(`portfolio heat cap ${pct(rules.maxPortfolioHeat)}`);
  }
  if (!(qty > 0)) {
    refuse(out, explain ? `size rounds to zero (risk budget ${pct(riskFraction)})` : UNWORDED_REFUSAL);
    return;
  }
  out.qty = qty;
  out.refused = null;
  out.reductions = reductions;
  out.riskFraction = riskFraction;
  out.heat = qty * distance;
}
