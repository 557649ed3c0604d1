/**
 * Quantities an exchange accepts for a product: a multiple of its base increment (Coinbase's
 * `base_increment`, e.g. 0.00000001 BTC), at least its minimum size (`base_min_size`) and, when it
 * has one, a notional of at least its quote minimum (`quote_min_size`, dollars). Sized fractions
 * are rounded DOWN to the increment (never up: that would spend more than the risk budget) and an
 * order under the minimum is refused with a named reason, never rounded up to it.
 */
import { InvalidParameterError } from '../errors.js';

/** A product's trading limits, as the exchange publishes them. */
export interface ProductIncrements {
  readonly productId: string;
  /** Smallest step of the base quantity, > 0 (a power of ten on Coinbase). */
  readonly baseIncrement: number;
  /** Smallest base quantity an order may have, >= 0. */
  readonly baseMinSize: number;
  /** Smallest notional (quote currency) an order may have; absent or 0: none. */
  readonly quoteMinSize?: number;
}

/** Products' limits by product id (a crypto config's `products:`). */
export type ProductTable = Readonly<Record<string, ProductIncrements>>;

/** Why a quantity cannot be ordered. */
export type QuantityRefusal = 'below-min-size' | 'below-min-notional' | 'zero-after-rounding';

export type ProductQuantity =
  | { readonly qty: number; readonly refusal: null }
  | { readonly qty: 0; readonly refusal: QuantityRefusal; readonly message: string };

/** Decimal places of an increment: 0.00000001 → 8, 0.01 → 2, 1 → 0, 0.5 → 1. */
export function incrementDecimals(increment: number): number {
  if (!(increment > 0) || !Number.isFinite(increment)) {
    throw new InvalidParameterError(`base increment must be a positive finite number, got ${increment}`);
  }
  for (let d = 0; d <= 12; d++) {
    const scaled = increment * 10 ** d;
    if (Math.abs(scaled - Math.round(scaled)) < 1e-9 * Math.max(1, scaled)) return d;
  }
  throw new InvalidParameterError(`base increment ${increment} has more than 12 decimals`);
}

/**
 * `qty` rounded DOWN to a multiple of `increment`, computed in integer steps so that binary
 * fractions do not round a valid quantity one step down (0.3 / 0.1 is 2.9999999999999996).
 */
export function floorToIncrement(qty: number, increment: number): number {
  const decimals = incrementDecimals(increment);
  if (!(qty > 0) || !Number.isFinite(qty)) return 0;
  const scale = 10 ** decimals;
  const unit = Math.round(increment * scale);
  // The tolerance keeps 0.3 at 0.3; the check after it keeps a quantity a hair under a step from
  // rounding up to that step.
  let units = Math.floor(Math.round(qty * scale * 1e3) / 1e3 / unit) * unit;
  if (units / scale > qty) units -= unit;
  return Number((units / scale).toFixed(decimals));
}

/** The quantity as the product's base increment, formatted as the exchange wants it (no exponent). */
export function formatBaseSize(qty: number, increment: number): string {
  return qty.toFixed(incrementDecimals(increment));
}

/**
 * The orderable quantity for a sized `qty` at `price`: rounded down to the base increment, then
 * refused when it is zero, under the minimum size, or its notional under the quote minimum.
 */
export function productQuantity(qty: number, price: number, product: ProductIncrements): ProductQuantity {
  if (!(price > 0) || !Number.isFinite(price)) {
    throw new InvalidParameterError(`${product.productId}: price must be positive and finite, got ${price}`);
  }
  const rounded = floorToIncrement(qty, product.baseIncrement);
  if (!(rounded > 0)) {
    return {
      qty: 0,
      refusal: 'zero-after-rounding',
      message: `${product.productId}: quantity ${qty} rounds down to zero at the base increment ${product.baseIncrement}`,
    };
  }
  if (rounded < product.baseMinSize) {
    return {
      qty: 0,
      refusal: 'below-min-size',
      message: `${product.productId}: quantity ${rounded} is under the minimum size ${product.baseMinSize}`,
    };
  }
  const quoteMin = product.quoteMinSize ?? 0;
  if (rounded * price < quoteMin) {
    return {
      qty: 0,
      refusal: 'below-min-notional',
      message: `${product.productId}: notional ${(rounded * price).toFixed(2)} is under the minimum ${quoteMin}`,
    };
  }
  return { qty: rounded, refusal: null };
}
