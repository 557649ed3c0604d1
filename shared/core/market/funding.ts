/**
 * Funding-rate monitoring of the perpetual-style futures (Coinbase's BTC and ETH "PERP" contracts):
 * informational, the bot trades spot. A reading is one product's funding rate (a fraction per
 * funding period, hourly on Coinbase) at a time; an alert is raised when |rate| exceeds the
 * configured threshold or when the rate changes sign from the previous reading of the product.
 */

/** One funding-rate reading of one futures product. */
export interface FundingReading {
  readonly productId: string;
  /** The underlying (`BTC`, `ETH`). */
  readonly underlying: string;
  /** Funding rate as a fraction per period (0.0001 = 0.01%); positive: longs pay shorts. */
  readonly rate: number;
  /** ISO 8601 time of the funding the rate applies to. */
  readonly time: string;
}

export type FundingAlertKind = 'threshold' | 'sign-flip';

export interface FundingAlert {
  readonly kind: FundingAlertKind;
  readonly productId: string;
  readonly rate: number;
  readonly message: string;
}

const pct = (x: number) => `${(x * 100).toFixed(4)}%`;

/**
 * The alerts of `current` given the product's `previous` reading (undefined: the first one):
 * `threshold` when |rate| > `threshold`, `sign-flip` when the rate changed sign (a zero rate is
 * neither sign and never flips). Pure; NaN or a negative threshold are refused by the caller's schema.
 */
export function fundingAlerts(
  previous: FundingReading | undefined,
  current: FundingReading,
  threshold: number,
): FundingAlert[] {
  const alerts: FundingAlert[] = [];
  if (Math.abs(current.rate) > threshold) {
    alerts.push({
      kind: 'threshold',
      productId: current.productId,
      rate: current.rate,
      message: `${current.productId} funding ${pct(current.rate)} at ${current.time}: |rate| above the ${pct(threshold)} threshold (${current.rate > 0 ? 'longs pay shorts' : 'shorts pay longs'})`,
    });
  }
  if (previous !== undefined && previous.rate * current.rate < 0) {
    alerts.push({
      kind: 'sign-flip',
      productId: current.productId,
      rate: current.rate,
      message: `${current.productId} funding flipped sign: ${pct(previous.rate)} at ${previous.time} → ${pct(current.rate)} at ${current.time}`,
    });
  }
  return alerts;
}
