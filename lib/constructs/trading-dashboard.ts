import { Duration, type Stack } from 'aws-cdk-lib';
import {
  type Alarm,
  AlarmStatusWidget,
  Dashboard,
  GraphWidget,
  type HorizontalAnnotation,
  type IWidget,
  LogQueryVisualizationType,
  LogQueryWidget,
  Metric,
  PeriodOverride,
  SingleValueWidget,
  TextWidget,
} from 'aws-cdk-lib/aws-cloudwatch';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import type { ILogGroup } from 'aws-cdk-lib/aws-logs';
import type { IStateMachine } from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import {
  LIVE_METRICS,
  LIVE_METRICS_NAMESPACE,
  LIVE_METRICS_SERVICE,
  SLEEVE_DIMENSION,
  SLEEVE_METRICS,
} from '../../shared/runtime/live-metrics.js';
import { liveMetric } from './circuit-breakers.js';

/** Properties of {@link TradingDashboard}. */
export interface TradingDashboardProps {
  /** The dashboard's name (one per stage), e.g. `quantshift-paper`. */
  readonly dashboardName: string;
  /** `paper` or `live`: the `stage` dimension of the live metrics. */
  readonly stage: string;
  /** The drawdown limit in percent, drawn as a line on the drawdown graph. */
  readonly drawdownLimitPct: number;
  /** The daily loss limit in percent, drawn on the daily P&L graph. */
  readonly dailyLossLimitPct: number;
  /** The live functions (durations and errors), by step. */
  readonly functions: Readonly<Record<string, IFunction>>;
  /** Their log groups: the "last successful run" table reads their `step succeeded` lines. */
  readonly logGroups: readonly ILogGroup[];
  /** The walk-forward state machine. */
  readonly stateMachine?: IStateMachine;
  /** The circuit-breaker alarms, shown with their state. */
  readonly alarms: readonly Alarm[];
  /**
   * The sleeve ids of the config the functions trade (`liveSleeveIds`): a row of per-sleeve
   * equity, day P&L, heat and orders from the metrics with the `Sleeve` dimension.
   */
  readonly sleeveIds?: readonly string[];
}

/**
 * The stage's dashboard: equity, daily P&L and drawdown against their limits, heat, orders
 * placed/filled/rejected and slippage, equity, day P&L, heat and orders per sleeve, the last successful run of each step, function durations
 * and errors, pipeline executions, and every alarm's state.
 */
export class TradingDashboard extends Construct {
  readonly dashboard: Dashboard;

  constructor(scope: Construct, id: string, props: TradingDashboardProps) {
    super(scope, id);
    const m = (name: string, statistic: string, label: string, period = Duration.minutes(15)) =>
      liveMetric(props.stage, name, statistic, period).with({ label });
    const day = Duration.days(1);

    this.dashboard = new Dashboard(this, 'Dashboard', {
      dashboardName: props.dashboardName,
      defaultInterval: Duration.days(30),
      periodOverride: PeriodOverride.AUTO,
    });
    this.dashboard.addWidgets(
      new TextWidget({
        markdown: `# QuantShift ${props.stage}\nEquity and risk from the risk checks (every 15 min in session) and the end-of-day report. Halt: \`quantshift halt --reason ...\` (one sleeve: \`--sleeve ID\`); resume: \`quantshift resume --reason ...\`.`,
        width: 24,
        height: 2,
      }),
    );
    this.dashboard.addWidgets(
      new GraphWidget({
        title: 'Equity ($)',
        left: [m(LIVE_METRICS.equity, 'Average', 'Equity')],
        width: 8,
      }),
      new GraphWidget({
        title: 'Daily P&L ($) and daily loss (%) against its limit',
        left: [m(LIVE_METRICS.dayPnl, 'Average', 'Day P&L', day)],
        right: [m(LIVE_METRICS.dailyLossPct, 'Maximum', 'Daily loss %')],
        rightAnnotations: [limit(props.dailyLossLimitPct, 'Daily loss limit')],
        width: 8,
      }),
      new GraphWidget({
        title: 'Drawdown (%) against its limit',
        left: [m(LIVE_METRICS.drawdownPct, 'Maximum', 'Drawdown %')],
        leftAnnotations: [limit(props.drawdownLimitPct, 'Drawdown limit')],
        leftYAxis: { min: 0 },
        width: 8,
      }),
    );
    this.dashboard.addWidgets(
      new GraphWidget({
        title: 'Heat: open risk to the stops (% of equity)',
        left: [m(LIVE_METRICS.heatPct, 'Maximum', 'Heat %')],
        leftYAxis: { min: 0 },
        width: 8,
      }),
      new GraphWidget({
        title: 'Orders per day',
        left: [
          m(LIVE_METRICS.ordersPlaced, 'Sum', 'Placed', day),
          m(LIVE_METRICS.ordersFilled, 'Sum', 'Filled', day),
          m(LIVE_METRICS.ordersRejected, 'Sum', 'Rejected', day),
          m(LIVE_METRICS.entriesRefused, 'Sum', 'Entries refused', day),
        ],
        width: 8,
      }),
      new GraphWidget({
        title: 'Slippage per fill (bps, adverse > 0)',
        left: [
          m(LIVE_METRICS.slippageBps, 'Average', 'Average', day),
          m(LIVE_METRICS.slippageBps, 'Maximum', 'Worst', day),
        ],
        width: 8,
      }),
    );
    const sleeves = props.sleeveIds ?? [];
    if (sleeves.length > 0) {
      const perSleeve = (name: string, statistic: string, period = day) =>
        sleeves.map((id) =>
          new Metric({
            namespace: LIVE_METRICS_NAMESPACE,
            metricName: name,
            dimensionsMap: { service: LIVE_METRICS_SERVICE, stage: props.stage, [SLEEVE_DIMENSION]: id },
            statistic,
            period,
          }).with({ label: id }),
        );
      this.dashboard.addWidgets(
        new GraphWidget({
          title: 'Equity per sleeve ($)',
          left: perSleeve(SLEEVE_METRICS.equity, 'Average'),
          width: 6,
        }),
        new GraphWidget({
          title: 'Day P&L per sleeve ($)',
          left: perSleeve(SLEEVE_METRICS.dayPnl, 'Average'),
          width: 6,
        }),
        new GraphWidget({
          title: 'Heat per sleeve (% of account equity)',
          left: perSleeve(SLEEVE_METRICS.heatPct, 'Maximum'),
          leftYAxis: { min: 0 },
          width: 6,
        }),
        new GraphWidget({
          title: 'Orders per sleeve per day',
          left: perSleeve(SLEEVE_METRICS.orders, 'Sum'),
          width: 6,
        }),
      );
    }
    this.dashboard.addWidgets(
      new LogQueryWidget({
        title: 'Last successful run of each step',
        logGroupNames: props.logGroups.map((g) => g.logGroupName),
        queryLines: [
          'fields @timestamp, step',
          "filter message = 'step succeeded'",
          'stats max(@timestamp) as lastSuccess, count(*) as runs by step',
          'sort step asc',
        ],
        view: LogQueryVisualizationType.TABLE,
        width: 8,
        height: 6,
      }),
      new GraphWidget({
        title: 'Function duration p99 (ms)',
        left: Object.entries(props.functions).map(([name, fn]) =>
          fn.metricDuration({ statistic: 'p99', period: Duration.minutes(15), label: name }),
        ),
        width: 8,
        height: 6,
      }),
      new GraphWidget({
        title: 'Function errors and throttles',
        left: Object.entries(props.functions).map(([name, fn]) =>
          fn.metricErrors({ statistic: 'Sum', period: Duration.hours(1), label: `${name} errors` }),
        ),
        right: Object.entries(props.functions).map(([name, fn]) =>
          fn.metricThrottles({ statistic: 'Sum', period: Duration.hours(1), label: `${name} throttles` }),
        ),
        width: 8,
        height: 6,
      }),
    );
    const bottom: IWidget[] = [
      new AlarmStatusWidget({ title: 'Circuit breakers', alarms: [...props.alarms], width: 12, height: 6 }),
    ];
    if (props.stateMachine !== undefined) {
      const sm = props.stateMachine;
      bottom.unshift(
        new SingleValueWidget({
          title: 'Walk-forward pipeline executions (30 days)',
          metrics: [
            sm.metricStarted({ statistic: 'Sum', period: Duration.days(30), label: 'Started' }),
            sm.metricSucceeded({ statistic: 'Sum', period: Duration.days(30), label: 'Succeeded' }),
            sm.metricFailed({ statistic: 'Sum', period: Duration.days(30), label: 'Failed' }),
          ],
          width: 12,
          height: 6,
        }),
      );
    }
    this.dashboard.addWidgets(...bottom);
  }
}

function limit(value: number, label: string): HorizontalAnnotation {
  return { value, label, color: '#d62728' };
}

/** The console URL of a dashboard in the stack's region (a token, resolved at deploy). */
export function dashboardUrlOf(stack: Stack, dashboardName: string): string {
  return `https://${stack.region}.console.aws.amazon.com/cloudwatch/home?region=${stack.region}#dashboards/dashboard/${dashboardName}`;
}
