import { readFileSync } from 'node:fs';
import { Aws, CfnOutput, Duration, Stack, type StackProps, TimeZone, Validations } from 'aws-cdk-lib';
import { Alarm, ComparisonOperator, MathExpression, TreatMissingData } from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import { Effect, type IGrantable, PolicyStatement } from 'aws-cdk-lib/aws-iam';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import { type CfnSecret, Secret } from 'aws-cdk-lib/aws-secretsmanager';
import type { ITopic } from 'aws-cdk-lib/aws-sns';
import type { Construct } from 'constructs';
import { parseConfig, type StrategyConfig } from '../shared/core/config/schema.js';
import { ConfigError } from '../shared/core/errors.js';
import { assertLiveConfig } from '../shared/core/live/orders.js';
import { CRYPTO_STEPS, type CryptoStep } from '../shared/live/crypto-steps.js';
import { EXECUTE_ORDERS_TIMEOUT_SECONDS } from '../shared/live/steps.js';
import {
  CRYPTO_METRICS,
  CRYPTO_METRICS_SERVICE,
  FUNDING_DIMENSION,
} from '../shared/runtime/crypto-metrics.js';
import { CircuitBreakers, liveMetric } from './constructs/circuit-breakers.js';
import { LiveSchedule, type StepTiming } from './constructs/live-schedule.js';
import { StateTables } from './constructs/state-tables.js';
import { dashboardUrlOf } from './constructs/trading-dashboard.js';
import { TradingFunction } from './constructs/trading-function.js';
import { repoPath } from './paths.js';
import type { StageConfig } from './stage.js';
import { BUNDLED_CONFIG_PATH } from './trading-stack.js';

/**
 * When each crypto step runs, in UTC, every day of the week. The UTC daily bar closes at 00:00:
 * the session check, the signals and the orders follow it; the risk check and the funding monitor
 * run every hour; the end-of-day report closes the UTC day.
 */
export const CRYPTO_STEP_TIMINGS = {
  'market-open-check': { minute: '5', hour: '0', maxEventAge: Duration.minutes(5) },
  'generate-signals': { minute: '10', hour: '0', maxEventAge: Duration.minutes(5) },
  // No auction to meet: a late retry still trades (or dry-runs) the day's intents, within the hour.
  'execute-orders': { minute: '15', hour: '0', maxEventAge: Duration.minutes(45) },
  'risk-check': { minute: '30', hour: '*', maxEventAge: Duration.minutes(50) },
  'end-of-day': { minute: '50', hour: '23', maxEventAge: Duration.hours(2) },
  // Coinbase's funding accrues hourly: read a few minutes after the hour.
  'funding-rates': { minute: '5', hour: '*', maxEventAge: Duration.minutes(50) },
} as const satisfies Record<CryptoStep, StepTiming>;

const SIZING: Record<CryptoStep, { memorySize: number; timeout: Duration }> = {
  'market-open-check': { memorySize: 512, timeout: Duration.seconds(30) },
  'generate-signals': { memorySize: 1024, timeout: Duration.minutes(2) },
  'execute-orders': { memorySize: 512, timeout: Duration.seconds(EXECUTE_ORDERS_TIMEOUT_SECONDS) },
  'risk-check': { memorySize: 512, timeout: Duration.minutes(2) },
  'end-of-day': { memorySize: 512, timeout: Duration.minutes(5) },
  'funding-rates': { memorySize: 256, timeout: Duration.seconds(60) },
};

/** Properties of a {@link CryptoStack}. */
export interface CryptoStackProps extends StackProps {
  readonly stage: StageConfig;
  /** The crypto strategy config (repository-relative), checked at synth. */
  readonly configFile: string;
  /**
   * Whether the functions dry-run (`DRY_RUN`). `false` only on the live stage (`-c cryptoDryRun=false`):
   * orders are then sent, entries behind the crypto live gate (docs/crypto.md).
   * @default true
   */
  readonly dryRun?: boolean;
  readonly commit: string;
  /** The stage dashboard's name (alerts link to it; the crypto section is added to it). */
  readonly dashboardName: string;
  /** The trading stack's alert topic and its key: the same Slack path as the equity bot. */
  readonly alertTopic: ITopic;
  readonly alertKey: IKey;
  /** The stage's Upstash secret (the cache, under the `qs:crypto:<stage>:` prefix). */
  readonly upstashSecret: Secret;
}

/**
 * `QuantShift-<stage>-Crypto`: the crypto bot on Coinbase Advanced Trade. Six functions on
 * EventBridge Scheduler in UTC, every day of the week (the session check, signals and orders after
 * the UTC daily close, hourly risk checks and funding-rate readings, the end-of-day report); its
 * own state and idempotency tables (the equity bot's items use fixed keys such as `SESSION` and
 * `RISK`, so the bots cannot share a partition of one table); its own secret (the CDP key, created
 * empty); circuit-breaker and funding alarms to the trading stack's alert topic (Slack), the
 * daily-loss and drawdown alarms also invoking its own kill-switch function.
 * The paper stage dry-runs (every order filled virtually, nothing sent); the live stage too unless
 * deployed with `-c cryptoDryRun=false`, then its entries wait for the crypto live gate (docs/crypto.md).
 */
export class CryptoStack extends Stack {
  readonly tables: StateTables;
  readonly functions: Readonly<Record<CryptoStep, TradingFunction>>;
  readonly schedules: Readonly<Record<CryptoStep, LiveSchedule>>;
  readonly coinbaseSecret: Secret;
  readonly breakers: CircuitBreakers;
  /**
   * The crypto bot's kill switch (`quantshift-<stage>-crypto-kill-switch`), invoked by its daily-loss
   * and drawdown alarms: halts its entries in its own table, as the monitoring stack's does for the
   * equity bot.
   */
  readonly killSwitch: TradingFunction;
  /** Per underlying: |funding rate| above the configured threshold. */
  readonly fundingRateAlarms: Readonly<Record<string, Alarm>>;
  /** A funding rate changed sign. */
  readonly fundingSignFlipAlarm: Alarm;
  /** No funding reading for 3 hours, or a configured underlying not listed. */
  readonly fundingMissingAlarm: Alarm;
  readonly config: StrategyConfig;
  readonly stageName: StageConfig['name'];
  /** Whether the functions dry-run (paper always; live unless `-c cryptoDryRun=false`). */
  readonly dryRun: boolean;

  constructor(scope: Construct, id: string, props: CryptoStackProps) {
    super(scope, id, {
      description: `QuantShift ${props.stage.name}: the crypto bot (Coinbase), its schedules, state, secret and alarms`,
      ...props,
    });
    const { stage } = props;
    this.stageName = stage.name;
    this.config = parseConfig(readFileSync(repoPath(props.configFile), 'utf8'), props.configFile);
    if (this.config.assetClass !== 'crypto') {
      throw new ConfigError(
        `${props.configFile}: the crypto stack needs a config with assetClass: crypto (got ${this.config.assetClass})`,
      );
    }
    if (this.config.funding === undefined) {
      throw new ConfigError(`${props.configFile}: funding: the crypto stack needs a funding block`);
    }
    assertLiveConfig(this.config, stage.name);
    this.dryRun = props.dryRun ?? true;
    if (!this.dryRun && stage.name !== 'live') {
      throw new ConfigError(
        'the crypto paper stage is a dry run (Coinbase has no paper trading): dryRun false is refused',
      );
    }

    this.tables = new StateTables(this, 'Tables', { deletionProtection: stage.protectData });
    this.coinbaseSecret = new Secret(this, 'CoinbaseSecret', {
      secretName: stage.coinbaseSecretName,
      description: `Coinbase CDP API key of the ${stage.name} crypto bot: JSON {"name": "organizations/{org}/apiKeys/{id}", "privateKey": "..."}`,
    });
    // Created without a value (the L2 would generate one): an operator puts the key in.
    (this.coinbaseSecret.node.defaultChild as CfnSecret).addPropertyDeletionOverride('GenerateSecretString');
    Validations.of(this.coinbaseSecret).acknowledge({
      id: 'AwsSolutions-SMG4',
      reason:
        'A Coinbase CDP key is created in the Coinbase Developer Platform, which has no API a rotation function ' +
        'could call; it is rotated by hand (a new key there, then put-secret-value), see docs/crypto.md.',
    });

    const dashboardUrl = dashboardUrlOf(this, props.dashboardName);
    /** What every crypto function (and the kill switch) gets: ARNs and names, never values. */
    const cryptoEnvironment = {
      STAGE: stage.name,
      STATE_TABLE: this.tables.state.tableName,
      IDEMPOTENCY_TABLE: this.tables.idempotency.tableName,
      QUANTSHIFT_CONFIG: BUNDLED_CONFIG_PATH,
      TOPIC_ARN: props.alertTopic.topicArn,
      COINBASE_SECRET_ARN: this.coinbaseSecret.secretArn,
      UPSTASH_SECRET_ARN: props.upstashSecret.secretArn,
      DASHBOARD_URL: dashboardUrl,
    };
    const functions = {} as Record<CryptoStep, TradingFunction>;
    const schedules = {} as Record<CryptoStep, LiveSchedule>;
    for (const step of CRYPTO_STEPS) {
      const name = `crypto-${step}`;
      const fn = new TradingFunction(this, `${pascal(name)}Function`, {
        entry: repoPath('functions', name, 'handler.ts'),
        ...SIZING[step],
        functionName: `${stage.resourcePrefix}-${name}`,
        logRetention: stage.logRetention,
        logLevel: stage.logLevel,
        commit: props.commit,
        bundledFiles: [{ source: props.configFile, target: BUNDLED_CONFIG_PATH }],
        environment: { ...cryptoEnvironment, DRY_RUN: String(this.dryRun) },
      });
      this.grantCryptoFunction(fn, props);
      functions[step] = fn;
      schedules[step] = new LiveSchedule(this, `${pascal(name)}Schedule`, {
        step,
        target: fn,
        timing: CRYPTO_STEP_TIMINGS[step],
        scheduleName: `${stage.resourcePrefix}-${name}`,
        timeZone: TimeZone.ETC_UTC,
        weekDay: '*',
      });
    }
    this.functions = functions;
    this.schedules = schedules;

    // The kill switch: no schedule, invoked by the loss and drawdown alarms (lib/trading-stack.ts's model).
    this.killSwitch = new TradingFunction(this, 'CryptoKillSwitchFunction', {
      entry: repoPath('functions', 'crypto-kill-switch', 'handler.ts'),
      memorySize: 512,
      timeout: Duration.minutes(2),
      functionName: `${stage.resourcePrefix}-crypto-kill-switch`,
      logRetention: stage.logRetention,
      logLevel: stage.logLevel,
      commit: props.commit,
      bundledFiles: [{ source: props.configFile, target: BUNDLED_CONFIG_PATH }],
      environment: { ...cryptoEnvironment, DRY_RUN: String(this.dryRun) },
    });
    this.grantCryptoFunction(this.killSwitch, props);

    const risk = this.config.risk;
    this.breakers = new CircuitBreakers(this, 'Breakers', {
      stage: stage.name,
      namePrefix: `${stage.resourcePrefix}-crypto`,
      alertTopic: props.alertTopic,
      service: CRYPTO_METRICS_SERVICE,
      everyDay: true,
      dailyLossPct: round2(risk.dailyLossLimit * 100),
      drawdownPct: round2(risk.maxDrawdown * 100),
      // The loss and drawdown alarms invoke the crypto kill switch (and still notify).
      killSwitch: this.killSwitch,
      functions: { ...functions, 'kill-switch': this.killSwitch },
      deadLetterQueues: Object.fromEntries(
        Object.entries(schedules).map(([step, schedule]) => [step, schedule.deadLetterQueue]),
      ),
    });

    const notify = new SnsAction(props.alertTopic);
    const alarm = (alarmId: string, name: string, options: ConstructorParameters<typeof Alarm>[2]) => {
      const created = new Alarm(this, alarmId, {
        ...options,
        alarmName: `${stage.resourcePrefix}-crypto-${name}`,
      });
      created.addAlarmAction(notify);
      created.addOkAction(notify);
      return created;
    };
    const hour = Duration.hours(1);
    const metric = (name: string, statistic: string) =>
      liveMetric(stage.name, name, statistic, hour, CRYPTO_METRICS_SERVICE);
    const thresholdPct = this.config.funding.threshold * 100;
    const fundingRateAlarms: Record<string, Alarm> = {};
    for (const underlying of this.config.funding.underlyings) {
      const rate = liveMetric(
        stage.name,
        CRYPTO_METRICS.fundingRatePct,
        'Average',
        hour,
        CRYPTO_METRICS_SERVICE,
      ).with({
        dimensionsMap: {
          service: CRYPTO_METRICS_SERVICE,
          stage: stage.name,
          [FUNDING_DIMENSION]: underlying,
        },
      });
      fundingRateAlarms[underlying] = alarm(
        `Funding${pascal(underlying.toLowerCase())}Rate`,
        `funding-${underlying.toLowerCase()}`,
        {
          alarmDescription: `${underlying} perpetual funding |rate| above ${thresholdPct}% a period (funding.threshold). Informational: the bot trades spot.`,
          metric: new MathExpression({
            expression: 'ABS(rate)',
            usingMetrics: { rate },
            period: hour,
            label: `|${underlying} funding| (% a period)`,
          }),
          threshold: thresholdPct,
          comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
          evaluationPeriods: 1,
          treatMissingData: TreatMissingData.NOT_BREACHING,
        },
      );
    }
    this.fundingRateAlarms = fundingRateAlarms;
    this.fundingSignFlipAlarm = alarm('FundingSignFlip', 'funding-sign-flip', {
      alarmDescription:
        'A perpetual funding rate changed sign since the previous period. Informational: the bot trades spot.',
      metric: metric(CRYPTO_METRICS.fundingSignFlips, 'Sum'),
      threshold: 1,
      comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: TreatMissingData.NOT_BREACHING,
    });
    // A monitor that stopped reading is as bad as no monitor: 3 hours without a recorded period of
    // any underlying, or an underlying Coinbase no longer lists, alarm.
    this.fundingMissingAlarm = alarm('FundingMissing', 'funding-missing', {
      alarmDescription:
        'No new funding period recorded for 3 hours, or a configured underlying has no perpetual funding listed.',
      metric: new MathExpression({
        expression: 'IF(FILL(missing, 0) > 0, 0, FILL(readings, 0))',
        usingMetrics: {
          missing: metric(CRYPTO_METRICS.fundingMissing, 'Sum'),
          readings: metric(CRYPTO_METRICS.fundingReadings, 'Sum'),
        },
        period: hour,
        label: 'Funding periods recorded (0 while an underlying is missing)',
      }),
      threshold: 1,
      comparisonOperator: ComparisonOperator.LESS_THAN_THRESHOLD,
      evaluationPeriods: 3,
      datapointsToAlarm: 3,
      treatMissingData: TreatMissingData.BREACHING,
    });

    new CfnOutput(this, 'CryptoStateTableName', {
      description: 'The crypto bot state table (quantshift halt/resume --table ...)',
      value: this.tables.state.tableName,
    });
    new CfnOutput(this, 'CoinbaseSecretArn', {
      description: `Fill with: aws secretsmanager put-secret-value --secret-id ${stage.coinbaseSecretName} --secret-string '{"name":"organizations/.../apiKeys/...","privateKey":"..."}'`,
      value: this.coinbaseSecret.secretArn,
    });
  }

  /** Every alarm of the crypto bot (breakers and funding), for the dashboard's status widget. */
  get alarms(): readonly Alarm[] {
    return [
      ...this.breakers.all,
      ...Object.values(this.fundingRateAlarms),
      this.fundingSignFlipAlarm,
      this.fundingMissingAlarm,
    ];
  }

  /**
   * What a crypto function may do: items of its state table (no scan, no delete, no index), its
   * idempotency records, read the CDP and Upstash secrets, publish to the alert topic.
   */
  private grantCryptoFunction(grantee: IGrantable, props: CryptoStackProps): void {
    const policy = (statement: PolicyStatement) => grantee.grantPrincipal.addToPrincipalPolicy(statement);
    policy(
      new PolicyStatement({
        sid: 'CryptoStateTableItems',
        effect: Effect.ALLOW,
        actions: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:Query'],
        resources: [this.tables.state.tableArn],
      }),
    );
    policy(
      new PolicyStatement({
        sid: 'IdempotencyRecords',
        effect: Effect.ALLOW,
        actions: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem'],
        resources: [this.tables.idempotency.tableArn],
      }),
    );
    this.coinbaseSecret.grantRead(grantee);
    props.upstashSecret.grantRead(grantee);
    policy(
      new PolicyStatement({
        sid: 'PublishAlerts',
        effect: Effect.ALLOW,
        actions: ['sns:Publish'],
        resources: [props.alertTopic.topicArn],
      }),
    );
    policy(
      new PolicyStatement({
        sid: 'EncryptAlerts',
        effect: Effect.ALLOW,
        actions: ['kms:GenerateDataKey', 'kms:Decrypt'],
        resources: [props.alertKey.keyArn],
        conditions: { StringEquals: { 'kms:ViaService': `sns.${Aws.REGION}.amazonaws.com` } },
      }),
    );
  }
}

const round2 = (x: number) => Math.round(x * 100) / 100;

/** `crypto-execute-orders` → `CryptoExecuteOrders`. */
function pascal(name: string): string {
  return name.replace(/(^|-)([a-z])/g, (_, __, c: string) => c.toUpperCase());
}
