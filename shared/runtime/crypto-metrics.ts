/**
 * The crypto bot's own metrics (CloudWatch EMF, namespace `QuantShift`, dimensions `service` =
 * `quantshift-crypto` and `stage`; the funding rate also `underlying`). The crypto stack's alarms
 * and dashboard section import these names. The step metrics (equity, P&L, drawdown, orders) are
 * the equity bot's names (`LIVE_METRICS`) under the crypto `service`.
 */
import type { FundingResult } from '../live/funding-monitor.js';
import type { MetricPoint } from './live-metrics.js';

/** The `service` dimension of the crypto bot's metrics (the equity bot's is `quantshift-live`). */
export const CRYPTO_METRICS_SERVICE = 'quantshift-crypto';

export const CRYPTO_METRICS = {
  /** Per underlying (dimension `underlying`): the funding rate of a new period, in percent a period. */
  fundingRatePct: 'FundingRatePct',
  /** New funding periods recorded by a run (0 when every reading was already recorded). */
  fundingReadings: 'FundingReadings',
  /** Readings whose |rate| exceeded the configured threshold. */
  fundingThresholdAlerts: 'FundingThresholdAlerts',
  /** Readings whose rate changed sign since the previous period. */
  fundingSignFlips: 'FundingSignFlips',
  /** Configured underlyings with no funding listed (a silent monitor is a broken one). */
  fundingMissing: 'FundingMissing',
  /** Dry run: intents recorded with the book, no order sent. */
  dryRunIntents: 'DryRunIntents',
} as const;

/** The dimension of the per-underlying funding metric. */
export const FUNDING_DIMENSION = 'underlying';

/** A funding run's points: the account-wide counts, and the rate of each newly recorded period. */
export function fundingMetricPoints(result: FundingResult): {
  readonly counts: MetricPoint[];
  readonly rates: { readonly underlying: string; readonly point: MetricPoint }[];
} {
  const alerts = result.readings.flatMap((r) => r.alerts);
  return {
    counts: [
      {
        name: CRYPTO_METRICS.fundingReadings,
        unit: 'Count',
        value: result.readings.filter((r) => r.status === 'recorded').length,
      },
      {
        name: CRYPTO_METRICS.fundingThresholdAlerts,
        unit: 'Count',
        value: alerts.filter((a) => a.kind === 'threshold').length,
      },
      {
        name: CRYPTO_METRICS.fundingSignFlips,
        unit: 'Count',
        value: alerts.filter((a) => a.kind === 'sign-flip').length,
      },
      { name: CRYPTO_METRICS.fundingMissing, unit: 'Count', value: result.missing.length },
    ],
    rates: result.readings
      .filter((r) => r.status === 'recorded' && Number.isFinite(r.rate))
      .map((r) => ({
        underlying: r.underlying,
        point: { name: CRYPTO_METRICS.fundingRatePct, unit: 'None' as const, value: r.rate * 100 },
      })),
  };
}
