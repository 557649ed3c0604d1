import { Duration } from 'aws-cdk-lib';
import {
  Alarm,
  ComparisonOperator,
  type Dashboard,
  GraphWidget,
  type HorizontalAnnotation,
  Metric,
  TextWidget,
  TreatMissingData,
} from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import type { ITopic } from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import { LIVE_METRICS_NAMESPACE } from '../../shared/runtime/live-metrics.js';
import {
  STREAM_METRICS,
  STREAM_METRICS_SERVICE,
  STREAM_ORDER_LATENCY_TARGET_MS,
} from '../../shared/runtime/stream-metrics.js';

export interface StreamAlarmsProps {
  readonly stage: string;
  /** e.g. `quantshift-paper`: the alarms are `<prefix>-stream-stale`, `-stream-disconnected`, `-stream-latency`. */
  readonly namePrefix: string;
  /** The alert topic (SNS -> Slack). */
  readonly alertTopic: ITopic;
}

/**
 * The stream's alarms, on the metrics the task emits once a minute while it runs (the task runs in
 * session only, so missing data is not breaching: out of hours there is none):
 * - `stream-stale`: the heartbeat (1 while subscribed with a market message in the staleness
 *   window) is 0 for 3 minutes running;
 * - `stream-disconnected`: the connection is down for 2 minutes running;
 * - `stream-latency`: p99 from a received price to the order POST above the 100 ms target over 5 minutes.
 * Each notifies the alert topic on ALARM and on OK.
 */
export class StreamAlarms extends Construct {
  readonly stale: Alarm;
  readonly disconnected: Alarm;
  readonly latency: Alarm;
  readonly all: readonly Alarm[];

  constructor(scope: Construct, id: string, props: StreamAlarmsProps) {
    super(scope, id);
    const notify = new SnsAction(props.alertTopic);
    const alarm = (alarmId: string, name: string, options: ConstructorParameters<typeof Alarm>[2]) => {
      const created = new Alarm(this, alarmId, { ...options, alarmName: `${props.namePrefix}-${name}` });
      created.addAlarmAction(notify);
      created.addOkAction(notify);
      return created;
    };
    this.stale = alarm('Stale', 'stream-stale', {
      alarmDescription:
        'No market data from the stream for 3 minutes while it should be subscribed (docs/streaming.md, "stream-stale").',
      metric: streamMetric(props.stage, STREAM_METRICS.heartbeat, 'Minimum', 1),
      threshold: 1,
      comparisonOperator: ComparisonOperator.LESS_THAN_THRESHOLD,
      evaluationPeriods: 3,
      datapointsToAlarm: 3,
      treatMissingData: TreatMissingData.NOT_BREACHING,
    });
    this.disconnected = alarm('Disconnected', 'stream-disconnected', {
      alarmDescription:
        'The market-data stream connection is down for 2 minutes (reconnecting, refused, or another connection holds the account).',
      metric: streamMetric(props.stage, STREAM_METRICS.connected, 'Minimum', 1),
      threshold: 1,
      comparisonOperator: ComparisonOperator.LESS_THAN_THRESHOLD,
      evaluationPeriods: 2,
      datapointsToAlarm: 2,
      treatMissingData: TreatMissingData.NOT_BREACHING,
    });
    this.latency = alarm('Latency', 'stream-latency', {
      alarmDescription: `p99 from a received price to the order POST above ${STREAM_ORDER_LATENCY_TARGET_MS} ms over 5 minutes.`,
      metric: streamMetric(props.stage, STREAM_METRICS.orderLatency, 'p99', 5),
      threshold: STREAM_ORDER_LATENCY_TARGET_MS,
      comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: TreatMissingData.NOT_BREACHING,
    });
    this.all = [this.stale, this.disconnected, this.latency];
  }

  /** The dashboard's stream row: message rate, reconnects and gaps, latency. */
  addWidgets(dashboard: Dashboard, stage: string): void {
    const m = (name: string, statistic: string) => streamMetric(stage, name, statistic, 1);
    dashboard.addWidgets(
      new TextWidget({ markdown: '## Market-data stream (docs/streaming.md)', width: 24, height: 1 }),
      new GraphWidget({
        title: 'Stream: messages a minute, heartbeat, connected',
        left: [m(STREAM_METRICS.messages, 'Sum')],
        right: [m(STREAM_METRICS.heartbeat, 'Minimum'), m(STREAM_METRICS.connected, 'Minimum')],
        width: 8,
      }),
      new GraphWidget({
        title: 'Stream: reconnects, gaps, backfilled bars, stale symbols',
        left: [
          m(STREAM_METRICS.reconnects, 'Sum'),
          m(STREAM_METRICS.gaps, 'Sum'),
          m(STREAM_METRICS.backfilledBars, 'Sum'),
          m(STREAM_METRICS.staleSymbols, 'Maximum'),
        ],
        width: 8,
      }),
      new GraphWidget({
        title: 'Stream latency (ms): received -> order POST p99, decide p50/p99',
        left: [
          streamMetric(stage, STREAM_METRICS.orderLatency, 'p99', 5),
          streamMetric(stage, STREAM_METRICS.orderLatency, 'p50', 5),
          m(STREAM_METRICS.decideP50, 'Average'),
          m(STREAM_METRICS.decideP99, 'Maximum'),
          m(STREAM_METRICS.exchangeToReceivedP99, 'Maximum'),
        ],
        leftAnnotations: [
          {
            value: STREAM_ORDER_LATENCY_TARGET_MS,
            label: 'target',
            color: '#d62728',
          } satisfies HorizontalAnnotation,
        ],
        width: 8,
      }),
    );
  }
}

function streamMetric(stage: string, name: string, statistic: string, minutes: number): Metric {
  return new Metric({
    namespace: LIVE_METRICS_NAMESPACE,
    metricName: name,
    dimensionsMap: { service: STREAM_METRICS_SERVICE, stage },
    statistic,
    period: Duration.minutes(minutes),
  });
}
