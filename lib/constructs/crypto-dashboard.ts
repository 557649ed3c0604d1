import { Duration } from 'aws-cdk-lib';
import {
  type Alarm,
  AlarmStatusWidget,
  type Dashboard,
  GraphWidget,
  type IMetric,
  TextWidget,
} from 'aws-cdk-lib/aws-cloudwatch';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';
import { CRYPTO_METRICS, FUNDING_DIMENSION } from '../../shared/runtime/crypto-metrics.js';
import { LIVE_METRICS } from '../../shared/runtime/live-metrics.js';
import { liveMetric } from './circuit-breakers.js';

/** Properties of {@link CryptoDashboardSection}. */
export interface CryptoDashboardSectionProps {
  /** The stage dashboard the section is added to. */
  readonly dashboard: Dashboard;
  readonly stage: string;
  /** The crypto functions' metrics `service` dimension. */
  readonly service: string;
  /** The funding underlyings (`BTC`, `ETH`) and the alert threshold, a fraction per period. */
  readonly fundingUnderlyings: readonly string[];
  readonly fundingThreshold: number;
  readonly drawdownLimitPct: number;
  readonly dryRun: boolean;
  readonly functions: Readonly<Record<string, IFunction>>;
  readonly alarms: readonly Alarm[];
}

/**
 * The crypto bot's rows of the stage dashboard: equity and drawdown, the funding rate of each
 * perpetual against the ± threshold, the dry run's recorded intents and the orders, the crypto
 * functions' errors, and the crypto alarms' state.
 */
export class CryptoDashboardSection extends Construct {
  constructor(scope: Construct, id: string, props: CryptoDashboardSectionProps) {
    super(scope, id);
    const { dashboard, stage, service } = props;
    const m = (name: string, statistic: string, label: string, period: Duration): IMetric =>
      liveMetric(stage, name, statistic, period, service).with({ label });
    const hour = Duration.hours(1);
    const day = Duration.days(1);
    const thresholdPct = props.fundingThreshold * 100;
    dashboard.addWidgets(
      new TextWidget({
        markdown: `# Crypto bot (Coinbase, UTC days, every day)\n${props.dryRun ? '**Dry run**: every intent is recorded with the best bid/ask at the decision and filled virtually (at the ask/bid, taker fee, stops on the day range); no order is sent. ' : ''}Funding rates are informational (the bot trades spot). See docs/crypto.md.`,
        width: 24,
        height: 2,
      }),
    );
    dashboard.addWidgets(
      new GraphWidget({
        title: 'Crypto equity ($) and drawdown (%)',
        left: [m(LIVE_METRICS.equity, 'Average', 'Equity', hour)],
        right: [m(LIVE_METRICS.drawdownPct, 'Maximum', 'Drawdown %', hour)],
        rightAnnotations: [{ value: props.drawdownLimitPct, label: 'Drawdown limit', color: '#d62728' }],
        width: 8,
      }),
      new GraphWidget({
        title: 'Perpetual funding rate (% per period)',
        left: props.fundingUnderlyings.map((underlying) =>
          liveMetric(stage, CRYPTO_METRICS.fundingRatePct, 'Average', hour, service).with({
            label: underlying,
            dimensionsMap: { service, stage, [FUNDING_DIMENSION]: underlying },
          }),
        ),
        leftAnnotations: [
          { value: thresholdPct, label: 'Threshold', color: '#d62728' },
          { value: -thresholdPct, label: '-Threshold', color: '#d62728' },
        ],
        width: 8,
      }),
      new GraphWidget({
        title: 'Crypto intents per day: dry run and orders',
        left: [
          m(CRYPTO_METRICS.dryRunIntents, 'Sum', 'Dry-run intents', day),
          m(LIVE_METRICS.ordersPlaced, 'Sum', 'Orders placed', day),
          m(LIVE_METRICS.ordersRejected, 'Sum', 'Rejected', day),
          m(LIVE_METRICS.entriesRefused, 'Sum', 'Entries refused', day),
        ],
        width: 8,
      }),
    );
    dashboard.addWidgets(
      new GraphWidget({
        title: 'Crypto function errors',
        left: Object.entries(props.functions).map(([name, fn]) =>
          fn.metricErrors({ statistic: 'Sum', period: hour, label: name }),
        ),
        width: 12,
        height: 6,
      }),
      new AlarmStatusWidget({ title: 'Crypto alarms', alarms: [...props.alarms], width: 12, height: 6 }),
    );
  }
}
