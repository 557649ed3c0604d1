import { Duration } from 'aws-cdk-lib';
import {
  Alarm,
  ComparisonOperator,
  type IAlarmAction,
  MathExpression,
  Metric,
  TreatMissingData,
} from 'aws-cdk-lib/aws-cloudwatch';
import { LambdaAction, SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import type { ITopic } from 'aws-cdk-lib/aws-sns';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import type { IStateMachine } from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import {
  LIVE_METRICS,
  LIVE_METRICS_NAMESPACE,
  LIVE_METRICS_SERVICE,
} from '../../shared/runtime/live-metrics.js';

/** Properties of {@link CircuitBreakers}. */
export interface CircuitBreakersProps {
  /** `paper` or `live`: the `stage` dimension of the live metrics, and the alarm name prefix. */
  readonly stage: string;
  /** Prefix of the alarm names, e.g. `quantshift-paper`. */
  readonly namePrefix: string;
  /** Every alarm notifies this topic (on ALARM and on OK). */
  readonly alertTopic: ITopic;
  /**
   * Invoked by the loss and drawdown alarms: halts entries (and flattens when configured).
   * @default - none: the alarms only notify (the bot's own breakers halt its entries)
   */
  readonly killSwitch?: IFunction;
  /**
   * The `service` dimension of the live metrics the alarms watch.
   * @default LIVE_METRICS_SERVICE (the equity bot)
   */
  readonly service?: string;
  /**
   * Whether the market-open check beats every day (the 24/7 crypto bot): then every hour without
   * a beat counts, weekends included.
   * @default false (weekdays only: weekend hours count as beats)
   */
  readonly everyDay?: boolean;
  /**
   * Daily loss, in percent of the day's start equity, at which the loss alarm fires.
   * @default 5
   */
  readonly dailyLossPct?: number;
  /**
   * Drawdown from the high-water mark, in percent, at which the drawdown alarm fires.
   * @default 15
   */
  readonly drawdownPct?: number;
  /** Functions whose errors and throttles alarm, by a short name used in the alarm's name. */
  readonly functions: Readonly<Record<string, IFunction>>;
  /**
   * Functions whose run time alarms when it nears their timeout (the weekly validation, whose work
   * grows with every paper session), by the short name used in the alarm's name.
   * @default - none
   */
  readonly durations?: Readonly<Record<string, { readonly fn: IFunction; readonly timeout: Duration }>>;
  /** Dead-letter queues whose depth alarms, by step. */
  readonly deadLetterQueues: Readonly<Record<string, IQueue>>;
  /** The walk-forward state machine: a failed, timed-out or aborted execution alarms. */
  readonly stateMachine?: IStateMachine;
}

/**
 * The alarms that are QuantShift's circuit breakers on AWS. Each notifies the alert topic; the
 * daily-loss and drawdown alarms also invoke the kill switch. The thresholds come from the
 * strategy config's risk rules, so the alarms and the functions' own breakers agree.
 */
export class CircuitBreakers extends Construct {
  readonly dailyLoss: Alarm;
  readonly drawdown: Alarm;
  readonly rejections: Alarm;
  readonly missingHeartbeat: Alarm;
  /** The end-of-day's rolling tracking breached its limits: the strategy diverges from its backtest. */
  readonly backtestDivergence: Alarm;
  readonly functionErrors: Readonly<Record<string, Alarm>>;
  readonly functionThrottles: Readonly<Record<string, Alarm>>;
  /** Per function of `durations`: its longest run of the hour reached 80 % of its timeout. */
  readonly functionDurations: Readonly<Record<string, Alarm>>;
  readonly deadLetters: Readonly<Record<string, Alarm>>;
  readonly pipelineFailures?: Alarm;
  /** Every alarm, for the dashboard's alarm status widget. */
  readonly all: readonly Alarm[];

  constructor(scope: Construct, id: string, props: CircuitBreakersProps) {
    super(scope, id);
    const notify = new SnsAction(props.alertTopic);
    const all: Alarm[] = [];
    const alarm = (alarmId: string, name: string, options: AlarmOptions, extra: IAlarmAction[] = []) => {
      const created = new Alarm(this, alarmId, {
        alarmName: `${props.namePrefix}-${name}`,
        ...options,
      });
      created.addAlarmAction(notify, ...extra);
      created.addOkAction(notify);
      all.push(created);
      return created;
    };
    const live = (metricName: string, statistic: string, period = Duration.minutes(5)) =>
      liveMetric(props.stage, metricName, statistic, period, props.service);

    const killSwitch = props.killSwitch === undefined ? [] : [new LambdaAction(props.killSwitch)];
    const halts =
      props.killSwitch === undefined
        ? 'the risk checks halt new entries'
        : 'the kill switch halts new entries';
    const dailyLossPct = props.dailyLossPct ?? 5;
    this.dailyLoss = alarm(
      'DailyLoss',
      'daily-loss',
      {
        alarmDescription: `Daily loss reached ${dailyLossPct}% of the day's start equity: ${halts}.`,
        metric: live(LIVE_METRICS.dailyLossPct, 'Maximum'),
        threshold: dailyLossPct,
        comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 1,
        treatMissingData: TreatMissingData.NOT_BREACHING,
      },
      killSwitch,
    );
    const drawdownPct = props.drawdownPct ?? 15;
    this.drawdown = alarm(
      'Drawdown',
      'drawdown',
      {
        alarmDescription: `Drawdown reached ${drawdownPct}% below the high-water mark: ${halts}.`,
        metric: live(LIVE_METRICS.drawdownPct, 'Maximum'),
        threshold: drawdownPct,
        comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 1,
        treatMissingData: TreatMissingData.NOT_BREACHING,
      },
      killSwitch,
    );
    this.rejections = alarm('Rejections', 'order-rejections', {
      alarmDescription: 'An order was refused by a hard limit or rejected by the broker.',
      metric: live(LIVE_METRICS.ordersRejected, 'Sum'),
      threshold: 1,
      comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: TreatMissingData.NOT_BREACHING,
    });

    // The market-open check beats every weekday, holidays included (its schedule knows no
    // calendar), so the alarm needs none either: weekend hours (UTC) count as beats, and a
    // missing beat is 26 weekday hours without one (one scheduled beat plus slack).
    // The 24/7 bot beats every day: every hour counts.
    const beats = live(LIVE_METRICS.heartbeat, 'Sum', Duration.hours(1));
    const dense = new MathExpression({
      expression: 'MAX([FILL(beats, 0), TIME_SERIES(0)])',
      usingMetrics: { beats },
      period: Duration.hours(1),
      ...(props.everyDay === true ? { label: 'Heartbeats' } : {}),
    });
    this.missingHeartbeat = alarm('MissingHeartbeat', 'missing-heartbeat', {
      alarmDescription: `No market-open check heartbeat for 26 ${props.everyDay === true ? '' : 'weekday '}hours: the schedule, the function or its secrets are broken. Nothing trades.`,
      metric:
        props.everyDay === true
          ? dense
          : new MathExpression({
              expression: 'IF(DAY(dense) >= 6, 1, dense)',
              usingMetrics: { dense },
              period: Duration.hours(1),
              label: 'Heartbeats (weekends count as 1)',
            }),
      threshold: 1,
      comparisonOperator: ComparisonOperator.LESS_THAN_THRESHOLD,
      evaluationPeriods: 26,
      datapointsToAlarm: 26,
      treatMissingData: TreatMissingData.BREACHING,
    });

    this.backtestDivergence = alarm('BacktestDivergence', 'backtest-divergence', {
      alarmDescription:
        "Strategy diverging from its backtest: the end-of-day's rolling tracking against the shadow backtest (return gap, correlation or slippage drift) breached its limits (docs/validation.md).",
      metric: live(LIVE_METRICS.backtestDivergence, 'Maximum', Duration.hours(1)),
      threshold: 1,
      comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: TreatMissingData.NOT_BREACHING,
    });

    const functionErrors: Record<string, Alarm> = {};
    const functionThrottles: Record<string, Alarm> = {};
    for (const [name, fn] of Object.entries(props.functions)) {
      functionErrors[name] = alarm(`${pascal(name)}Errors`, `${name}-errors`, {
        alarmDescription: `The ${name} function failed (after its retries the event goes to the dead-letter queue).`,
        metric: fn.metricErrors({ period: Duration.minutes(5), statistic: 'Sum' }),
        threshold: 1,
        comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 1,
        treatMissingData: TreatMissingData.NOT_BREACHING,
      });
      functionThrottles[name] = alarm(`${pascal(name)}Throttles`, `${name}-throttles`, {
        alarmDescription: `The ${name} function was throttled: the account's concurrency ran out.`,
        metric: fn.metricThrottles({ period: Duration.minutes(5), statistic: 'Sum' }),
        threshold: 1,
        comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 1,
        treatMissingData: TreatMissingData.NOT_BREACHING,
      });
    }
    this.functionErrors = functionErrors;
    this.functionThrottles = functionThrottles;

    const functionDurations: Record<string, Alarm> = {};
    for (const [name, { fn, timeout }] of Object.entries(props.durations ?? {})) {
      const limitMs = Math.round(timeout.toMilliseconds() * 0.8);
      functionDurations[name] = alarm(`${pascal(name)}Duration`, `${name}-duration`, {
        alarmDescription: `A ${name} run took ${limitMs / 1000} s or more, 80 % of its ${timeout.toSeconds()} s timeout: it will soon time out (its work grows with the sessions it covers).`,
        metric: fn.metricDuration({ period: Duration.hours(1), statistic: 'Maximum' }),
        threshold: limitMs,
        comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 1,
        treatMissingData: TreatMissingData.NOT_BREACHING,
      });
    }
    this.functionDurations = functionDurations;

    const deadLetters: Record<string, Alarm> = {};
    for (const [name, queue] of Object.entries(props.deadLetterQueues)) {
      deadLetters[name] = alarm(`${pascal(name)}DeadLetters`, `${name}-dead-letters`, {
        alarmDescription: `A scheduled ${name} run could not be delivered or kept failing: see its dead-letter queue.`,
        metric: queue.metricApproximateNumberOfMessagesVisible({
          period: Duration.minutes(5),
          statistic: 'Maximum',
        }),
        threshold: 1,
        comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 1,
        treatMissingData: TreatMissingData.NOT_BREACHING,
      });
    }
    this.deadLetters = deadLetters;

    if (props.stateMachine !== undefined) {
      const sm = props.stateMachine;
      const period = Duration.minutes(5);
      this.pipelineFailures = alarm('PipelineFailures', 'pipeline-failures', {
        alarmDescription: 'A walk-forward pipeline execution failed, timed out or was aborted.',
        metric: new MathExpression({
          expression: 'failed + timedOut + aborted',
          usingMetrics: {
            failed: sm.metricFailed({ period, statistic: 'Sum' }),
            timedOut: sm.metricTimedOut({ period, statistic: 'Sum' }),
            aborted: sm.metricAborted({ period, statistic: 'Sum' }),
          },
          period,
          label: 'Failed executions',
        }),
        threshold: 1,
        comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 1,
        treatMissingData: TreatMissingData.NOT_BREACHING,
      });
    }
    this.all = all;
  }
}

type AlarmOptions = Omit<ConstructorParameters<typeof Alarm>[2], 'alarmName'>;

/** A live metric (EMF, namespace `QuantShift`, dimensions service and stage). */
export function liveMetric(
  stage: string,
  metricName: string,
  statistic: string,
  period: Duration,
  service: string = LIVE_METRICS_SERVICE,
): Metric {
  return new Metric({
    namespace: LIVE_METRICS_NAMESPACE,
    metricName,
    dimensionsMap: { service, stage },
    statistic,
    period,
  });
}

function pascal(name: string): string {
  return name.replace(/(^|-)([a-z])/g, (_, __, c: string) => c.toUpperCase());
}
