import { ConfigError } from '../core/errors.js';
import { type FundingAlert, fundingAlerts } from '../core/market/funding.js';
import type { FundingRecord } from '../core/ports/crypto-store.js';
import type { LiveContext } from './context.js';

/** One product's reading this hour and what it raised. */
export interface FundingOutcome {
  readonly productId: string;
  readonly underlying: string;
  readonly rate: number;
  readonly time: string;
  /** `recorded`: a new funding period; `seen`: this period was already recorded (no new alert). */
  readonly status: 'recorded' | 'seen';
  readonly alerts: readonly FundingAlert[];
}

/** What a funding-rate run did. */
export interface FundingResult {
  readonly scheduledTime: string;
  readonly threshold: number;
  readonly readings: readonly FundingOutcome[];
  /** Configured underlyings Coinbase listed no perpetual funding for. */
  readonly missing: readonly string[];
}

/**
 * funding-rates (crypto bot, hourly): reads the funding rate of the configured underlyings'
 * perpetual-style futures (`future_product_details.funding_rate`, `funding_time`), records each new
 * funding period in the bot's table (Coinbase keeps no history), and alerts when |rate| exceeds the
 * config's `funding.threshold` or the rate changed sign since the previous recorded period.
 * Informational: the bot trades spot, so nothing here touches an order. A period read again (a
 * retried or early run) is not recorded or alerted twice.
 */
export async function fundingMonitor(ctx: LiveContext, scheduledTime: string): Promise<FundingResult> {
  const crypto = ctx.crypto;
  if (crypto === undefined)
    throw new ConfigError('funding-rates: only the crypto bot monitors funding rates');
  const settings = ctx.config.funding;
  if (settings === undefined) {
    throw new ConfigError(
      `${ctx.config.name}: funding: the config has no funding block (threshold, underlyings)`,
    );
  }
  const readings = await crypto.funding.getFundingRates(settings.underlyings);
  const outcomes: FundingOutcome[] = [];
  for (const reading of readings) {
    const previous = await crypto.records.getLatestFundingReading(reading.productId);
    const seen = previous !== undefined && Date.parse(previous.time) >= Date.parse(reading.time);
    if (seen) {
      outcomes.push({ ...reading, status: 'seen', alerts: [] });
      continue;
    }
    const alerts = fundingAlerts(previous, reading, settings.threshold);
    const record: FundingRecord = { ...reading, recordedAt: scheduledTime };
    await crypto.records.putFundingReading(record);
    outcomes.push({ ...reading, status: 'recorded', alerts });
  }
  const covered = new Set(readings.map((r) => r.underlying));
  const missing = settings.underlyings.filter((u) => !covered.has(u));
  const alerts = outcomes.flatMap((o) => o.alerts);
  if (alerts.length > 0) {
    await ctx.notifier.publish({
      subject: `Funding rate alert: ${[...new Set(alerts.map((a) => a.productId))].join(', ')}`,
      severity: 'warning',
      text: `${alerts.map((a) => a.message).join('\n')}\nInformational: the bot trades spot; no order was changed.`,
    });
  }
  if (missing.length > 0) {
    ctx.log.warn('no perpetual funding listed for some underlyings', { missing });
    await ctx.notifier.publish({
      subject: `Funding rates missing: ${missing.join(', ')}`,
      severity: 'warning',
      text: `Coinbase listed no perpetual-style future with a funding rate for ${missing.join(', ')} at ${scheduledTime}.`,
    });
  }
  ctx.log.info('funding rates read', {
    readings: outcomes.map((o) => ({ productId: o.productId, rate: o.rate, time: o.time, status: o.status })),
    alerts: alerts.length,
  });
  return { scheduledTime, threshold: settings.threshold, readings: outcomes, missing };
}
