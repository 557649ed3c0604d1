import { InvalidParameterError } from '../errors.js';
import {
  type Cents,
  type CommissionModel,
  commissionCents,
  notionalCents,
  toDollars,
} from '../ledger/money.js';
import { type ProductIncrements, productQuantity } from './increments.js';

/**
 * How many shares an entry takes.
 * - `all-in`: as many shares as the buying power at the fill buys at the fill price (sized at the fill).
 * - `fixed`: a fixed quantity.
 * - `fraction`: a fixed fraction of equity at the decision close.
 * - `atr-risk`: risk `risk` × equity with the stop `k × ATR` away: qty = floor(risk × equity / |close − stop|).
 */
export type SizingSpec =
  | { readonly mode: 'all-in' }
  | { readonly mode: 'fixed'; readonly qty: number }
  | { readonly mode: 'fraction'; readonly fraction: number }
  | { readonly mode: 'atr-risk'; readonly risk: number };

/** Rounds a quantity down to what can be traded: whole shares, or 1e-6 share steps when fractional. */
export function floorQty(qty: number, fractional: boolean): number {
  if (!(qty > 0)) return 0;
  return fractional ? Math.floor(qty * 1e6 + 1e-6) / 1e6 : Math.floor(qty + 1e-9);
}

/**
 * The quantity an exchange product takes: `qty` rounded DOWN to the product's base increment, or 0
 * when that is under its minimum size or notional (`productQuantity` says which). Without a product
 * (equities), `qty` as sized. The last step of every entry's sizing, at the decision
 * (`decideAtClose`) and at a fill sized there (all-in, a sleeve short of cash), in the backtests
 * and the live signal step alike; the Coinbase broker rounds its orders with the same rule.
 */
export function orderableQty(qty: number, price: number, product: ProductIncrements | undefined): number {
  if (product === undefined || !(qty > 0)) return qty;
  return productQuantity(qty, price, product).qty;
}

/** Inputs to a sizing decision at a bar's close. */
export interface SizingInput {
  readonly equity: number;
  readonly price: number;
  /** Protective stop price of the entry, when it has one. */
  readonly stopLoss: number | undefined;
  readonly fractional: boolean;
}

/** The result of sizing: a quantity, or zero with the reason. */
export interface SizingResult {
  readonly qty: number;
  readonly reason?: string;
}

/**
 * The quantity an entry takes at the decision, before the caps (position fraction, buying power)
 * that the caller applies. `all-in` returns NaN: it is sized at the fill.
 */
export function sizeAtDecision(spec: SizingSpec, input: SizingInput): SizingResult {
  const qty = decisionQty(spec, input);
  const reason = decisionSizingReason(spec, input);
  return reason === undefined ? { qty } : { qty, reason };
}

/**
 * `sizeAtDecision`'s quantity alone (no result object: the decision at a close calls it per entry,
 * and reads the reason, {@link decisionSizingReason}, only to explain a skipped entry).
 */
export function decisionQty(spec: SizingSpec, input: SizingInput): number {
  switch (spec.mode) {
    case 'all-in':
      return Number.NaN;
    case 'fixed':
      return floorQty(spec.qty, input.fractional);
    case 'fraction':
      return floorQty((spec.fraction * input.equity) / input.price, input.fractional);
    case 'atr-risk': {
      if (input.stopLoss === undefined) return 0;
      const distance = Math.abs(input.price - input.stopLoss);
      if (!(distance > 0)) return 0;
      return floorQty((spec.risk * input.equity) / distance, input.fractional);
    }
  }
}

/** Why `decisionQty` is zero whatever the equity (an `atr-risk` entry without a usable stop), or undefined. */
export function decisionSizingReason(spec: SizingSpec, input: SizingInput): string | undefined {
  if (spec.mode !== 'atr-risk') return undefined;
  if (input.stopLoss === undefined) return 'atr-risk sizing needs a stop';
  if (!(Math.abs(input.price - input.stopLoss) > 0)) return 'stop distance is zero';
  return undefined;
}

/** The largest quantity whose position value stays within `fraction` of equity. */
export function positionCapQty(fraction: number, equity: number, price: number, fractional: boolean): number {
  return floorQty((fraction * equity) / price, fractional);
}

/**
 * Parses the CLI form of a sizing spec: `all-in`, `fixed:<qty>`, `fraction:<f>` or `atr-risk:<f>`.
 */
export function parseSizing(text: string): SizingSpec {
  const [mode, value, ...rest] = text.split(':');
  const number = value === undefined ? Number.NaN : Number(value);
  const bad = (what: string) =>
    new InvalidParameterError(
      `--sizing ${text}: ${what} (use all-in, fixed:<qty>, fraction:<f> or atr-risk:<f>)`,
    );
  if (rest.length > 0) throw bad('too many parts');
  if (mode === 'all-in') {
    if (value !== undefined) throw bad('all-in takes no value');
    return { mode: 'all-in' };
  }
  if (!(Number.isFinite(number) && number > 0)) throw bad('the value must be a positive number');
  if (mode === 'fixed') return { mode: 'fixed', qty: number };
  if (mode === 'fraction' || mode === 'atr-risk') {
    if (number > 1) throw bad('the fraction must be at most 1');
    return mode === 'fraction' ? { mode, fraction: number } : { mode, risk: number };
  }
  throw bad(`unknown mode "${mode}"`);
}

/**
 * All-in: the most shares whose cost, commission included, fits in `power` (cents) at `price`.
 * Starts from the estimate and steps to the largest quantity whose exact cost in cents fits.
 */
export function allInQty(
  power: Cents,
  price: number,
  commission: CommissionModel,
  fractional: boolean,
): number {
  const step = fractional ? 1e-6 : 1;
  const fits = (qty: number) => {
    const notional = notionalCents(qty, price);
    return notional + commissionCents(commission, qty, notional) <= power;
  };
  let qty = floorQty(toDollars(power) / (price * (1 + commission.percent) + commission.perShare), fractional);
  while (qty > 0 && !fits(qty)) qty = floorQty(qty - step, fractional);
  // Rounding each notional to the cent can leave room for one more step than the estimate says.
  while (fits(floorQty(qty + step, fractional))) qty = floorQty(qty + step, fractional);
  return qty;
}

/**
 * An all-in entry's quantity at its fill: {@link allInQty} of the buying power, capped by
 * `maxPositionFraction` of `capEquity` (dollars; used only when the cap is set) and made orderable
 * on the product ({@link orderableQty}). 0: nothing can be bought. The reference engine and the fast
 * engine's single-symbol and portfolio modes size every all-in fill with it.
 */
export function allInFillQty(
  power: Cents,
  price: number,
  commission: CommissionModel,
  options: { readonly fractional: boolean; readonly maxPositionFraction?: number | undefined },
  capEquity: number,
  product: ProductIncrements | undefined,
): number {
  let qty = allInQty(power, price, commission, options.fractional);
  if (options.maxPositionFraction !== undefined) {
    qty = Math.min(qty, positionCapQty(options.maxPositionFraction, capEquity, price, options.fractional));
  }
  return orderableQty(qty, price, product);
}
