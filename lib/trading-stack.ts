import { readFileSync } from 'node:fs';
import { Aws, CfnOutput, Duration, Stack, type StackProps, Validations } from 'aws-cdk-lib';
import { Effect, type IGrantable, PolicyStatement, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Key } from 'aws-cdk-lib/aws-kms';
import { type CfnSecret, Secret } from 'aws-cdk-lib/aws-secretsmanager';
import { Topic } from 'aws-cdk-lib/aws-sns';
import type { Construct } from 'constructs';
import { parseConfig, type StrategyConfig } from '../shared/core/config/schema.js';
import { assertLiveConfig } from '../shared/core/live/orders.js';
import { EXECUTE_ORDERS_TIMEOUT_SECONDS, LIVE_STEPS, type LiveStep } from '../shared/live/steps.js';
import { LIVE_STEP_TIMINGS, LiveSchedule, PAPER_VALIDATION_TIMING } from './constructs/live-schedule.js';
import { StateTables } from './constructs/state-tables.js';
import { dashboardUrlOf } from './constructs/trading-dashboard.js';
import { TradingFunction } from './constructs/trading-function.js';
import { repoPath } from './paths.js';
import type { StageConfig } from './stage.js';

/** The live steps, in schedule order (each is `functions/<step>/handler.ts`). */
export const LIVE_FUNCTIONS = LIVE_STEPS;
export type LiveFunctionName = LiveStep;

const SIZING: Record<LiveFunctionName, { memorySize: number; timeout: Duration }> = {
  'market-open-check': { memorySize: 512, timeout: Duration.seconds(30) },
  // Hundreds of symbols of daily bars and the strategy over them.
  'generate-signals': { memorySize: 1024, timeout: Duration.minutes(2) },
  // Waits for the rate limiter's slots; must finish well before the 09:28 cutoff. Its claim lease
  // is this timeout (shared/live/steps.ts).
  'execute-orders': { memorySize: 512, timeout: Duration.seconds(EXECUTE_ORDERS_TIMEOUT_SECONDS) },
  'risk-check': { memorySize: 512, timeout: Duration.minutes(2) },
  'end-of-day': { memorySize: 512, timeout: Duration.minutes(5) },
};

/** Where the bundled strategy config sits inside every live bundle (`QUANTSHIFT_CONFIG`). */
export const BUNDLED_CONFIG_PATH = 'config/strategy.yaml';

/** Properties of a {@link TradingStack}. */
export interface TradingStackProps extends StackProps {
  /** The stage. */
  readonly stage: StageConfig;
  /** The strategy config file the functions trade (repository-relative), checked at synth. */
  readonly configFile: string;
  /** The code's commit, given to every function. */
  readonly commit: string;
  /** The dashboard's name: alerts link to it (the monitoring stack builds the dashboard). */
  readonly dashboardName: string;
}

/** The weekly paper validation's timeout (its duration alarm fires at 80 % of it). */
export const PAPER_VALIDATION_TIMEOUT = Duration.minutes(5);

/**
 * `QuantShift-<stage>-Trading`: the live trading day. Five functions on EventBridge Scheduler
 * (America/New_York, weekdays), the state and idempotency tables, the stage's secrets (created
 * empty: an operator fills them) and the alert topic every function and alarm publishes to.
 */
export class TradingStack extends Stack {
  readonly tables: StateTables;
  readonly functions: Readonly<Record<LiveFunctionName, TradingFunction>>;
  readonly schedules: Readonly<Record<LiveFunctionName, LiveSchedule>>;
  /** The paper stage's weekly paper validation (docs/validation.md); absent in the live stage. */
  readonly paperValidation?: { readonly function: TradingFunction; readonly schedule: LiveSchedule };
  readonly alertTopic: Topic;
  readonly alertKey: Key;
  readonly alpacaTradingSecret: Secret;
  readonly upstashSecret: Secret;
  /** The strategy config the functions trade, as validated at synth. */
  readonly config: StrategyConfig;
  /** `paper` or `live`. */
  readonly stageName: StageConfig['name'];

  constructor(scope: Construct, id: string, props: TradingStackProps) {
    super(scope, id, {
      description: `QuantShift ${props.stage.name}: the live trading functions, their schedules, state and secrets`,
      ...props,
    });
    const { stage } = props;
    this.stageName = stage.name;
    // The synth refuses a config the functions would refuse at their first run (long-short live, ...).
    this.config = parseConfig(readFileSync(repoPath(props.configFile), 'utf8'), props.configFile);
    assertLiveConfig(this.config, stage.name);

    this.tables = new StateTables(this, 'Tables', { deletionProtection: stage.protectData });

    this.alertKey = new Key(this, 'AlertKey', {
      description: `${stage.resourcePrefix}: encrypts the alert topic`,
      enableKeyRotation: true,
    });
    // CloudWatch alarms publish to the encrypted topic: the key must let CloudWatch use it.
    this.alertKey.addToResourcePolicy(
      new PolicyStatement({
        sid: 'AllowCloudWatchAlarmsToPublish',
        effect: Effect.ALLOW,
        principals: [new ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
        resources: ['*'],
        conditions: { StringEquals: { 'aws:SourceAccount': Aws.ACCOUNT_ID } },
      }),
    );
    this.alertTopic = new Topic(this, 'AlertTopic', {
      topicName: `${stage.resourcePrefix}-alerts`,
      displayName: `QuantShift ${stage.name} alerts and reports`,
      masterKey: this.alertKey,
      enforceSSL: true,
    });

    const secret = (id: string, secretName: string, description: string) => {
      const created = new Secret(this, id, { secretName, description });
      // Created without a value (the L2 would generate one): an operator puts the keys in.
      (created.node.defaultChild as CfnSecret).addPropertyDeletionOverride('GenerateSecretString');
      return created;
    };
    this.alpacaTradingSecret = secret(
      'AlpacaTradingSecret',
      stage.alpacaTradingSecretName,
      `Alpaca ${stage.name} trading keys: JSON {"keyId": "...", "secret": "..."}`,
    );
    this.upstashSecret = secret(
      'UpstashSecret',
      stage.upstashSecretName,
      'Upstash Redis REST endpoint: JSON {"url": "https://...", "token": "..."}',
    );

    const functions = {} as Record<LiveFunctionName, TradingFunction>;
    const schedules = {} as Record<LiveFunctionName, LiveSchedule>;
    for (const name of LIVE_FUNCTIONS) {
      const fn = new TradingFunction(this, `${pascal(name)}Function`, {
        entry: repoPath('functions', name, 'handler.ts'),
        ...SIZING[name],
        functionName: `${stage.resourcePrefix}-${name}`,
        logRetention: stage.logRetention,
        logLevel: stage.logLevel,
        commit: props.commit,
        bundledFiles: [{ source: props.configFile, target: BUNDLED_CONFIG_PATH }],
        environment: liveFunctionEnvironment(this, dashboardUrlOf(this, props.dashboardName)),
      });
      this.grantLiveFunction(fn);
      functions[name] = fn;
      schedules[name] = new LiveSchedule(this, `${pascal(name)}Schedule`, {
        step: name,
        target: fn,
        timing: LIVE_STEP_TIMINGS[name],
        scheduleName: `${stage.resourcePrefix}-${name}`,
      });
    }
    this.functions = functions;
    this.schedules = schedules;

    if (stage.name === 'paper') {
      // Weekly: every paper session so far against its shadow backtest; the go/no-go is stored for
      // the live gate and sent to the alert topic.
      const fn = new TradingFunction(this, 'ValidatePaperFunction', {
        entry: repoPath('functions', 'validate-paper', 'handler.ts'),
        memorySize: 1024,
        timeout: PAPER_VALIDATION_TIMEOUT,
        functionName: `${stage.resourcePrefix}-validate-paper`,
        logRetention: stage.logRetention,
        logLevel: stage.logLevel,
        commit: props.commit,
        bundledFiles: [{ source: props.configFile, target: BUNDLED_CONFIG_PATH }],
        environment: liveFunctionEnvironment(this, dashboardUrlOf(this, props.dashboardName)),
      });
      this.grantLiveFunction(fn);
      this.paperValidation = {
        function: fn,
        schedule: new LiveSchedule(this, 'ValidatePaperSchedule', {
          step: 'validate-paper',
          target: fn,
          timing: PAPER_VALIDATION_TIMING,
          scheduleName: `${stage.resourcePrefix}-validate-paper`,
        }),
      };
    }

    this.acknowledgeNagFindings();

    new CfnOutput(this, 'StateTableName', {
      description: 'The state table (quantshift halt/resume --table ...)',
      value: this.tables.state.tableName,
    });
    new CfnOutput(this, 'AlertTopicArn', {
      description: 'Alerts and reports (subscribe Slack, e-mail, ...)',
      value: this.alertTopic.topicArn,
    });
    new CfnOutput(this, 'AlpacaTradingSecretArn', {
      description: `Fill with: aws secretsmanager put-secret-value --secret-id ${stage.alpacaTradingSecretName} --secret-string '{"keyId":"...","secret":"..."}'`,
      value: this.alpacaTradingSecret.secretArn,
    });
    for (const name of LIVE_FUNCTIONS) {
      new CfnOutput(this, `${pascal(name)}DeadLetterQueueUrl`, {
        description: `Failed ${name} runs (the event, to re-run with aws lambda invoke; see docs/operations.md)`,
        value: this.schedules[name].deadLetterQueue.queueUrl,
      });
    }
    new CfnOutput(this, 'UpstashSecretArn', {
      description: `Fill with: aws secretsmanager put-secret-value --secret-id ${stage.upstashSecretName} --secret-string '{"url":"https://...","token":"..."}'`,
      value: this.upstashSecret.secretArn,
    });
  }

  /**
   * What a live function may do: items of the state table (no scan, no delete, no index, no
   * table administration), its idempotency records, read the stage's trading and Upstash
   * secrets, publish alerts. The same for the kill-switch function of the monitoring stack.
   */
  grantLiveFunction(fn: TradingFunction): void {
    this.grantStateItems(fn);
    fn.addToRolePolicy(
      new PolicyStatement({
        sid: 'IdempotencyRecords',
        effect: Effect.ALLOW,
        actions: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem'],
        resources: [this.tables.idempotency.tableArn],
      }),
    );
    this.grantSecretsAndAlerts(fn);
  }

  /** Items of the state table: get, put, update and query (no scan, no delete, no index). */
  grantStateItems(grantee: IGrantable): void {
    grantee.grantPrincipal.addToPrincipalPolicy(
      new PolicyStatement({
        sid: 'StateTableItems',
        effect: Effect.ALLOW,
        actions: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:Query'],
        resources: [this.tables.state.tableArn],
      }),
    );
  }

  /** Read the stage's trading and Upstash secrets; publish to the (KMS-encrypted) alert topic. */
  grantSecretsAndAlerts(grantee: IGrantable): void {
    this.alpacaTradingSecret.grantRead(grantee);
    this.upstashSecret.grantRead(grantee);
    grantee.grantPrincipal.addToPrincipalPolicy(
      new PolicyStatement({
        sid: 'PublishAlerts',
        effect: Effect.ALLOW,
        actions: ['sns:Publish'],
        resources: [this.alertTopic.topicArn],
      }),
    );
    grantee.grantPrincipal.addToPrincipalPolicy(
      new PolicyStatement({
        sid: 'EncryptAlerts',
        effect: Effect.ALLOW,
        actions: ['kms:GenerateDataKey', 'kms:Decrypt'],
        resources: [this.alertKey.keyArn],
        conditions: { StringEquals: { 'kms:ViaService': `sns.${Aws.REGION}.amazonaws.com` } },
      }),
    );
  }

  private acknowledgeNagFindings(): void {
    for (const secret of [this.alpacaTradingSecret, this.upstashSecret]) {
      Validations.of(secret).acknowledge({
        id: 'AwsSolutions-SMG4',
        reason:
          'Alpaca and Upstash issue these keys in their own dashboards and have no API a rotation function could ' +
          'call; they are rotated by hand (new keys there, then put-secret-value), see the runbook in the README.',
      });
    }
  }
}

/** The environment every live function (and the kill switch) gets: ARNs and names, never values. */
export function liveFunctionEnvironment(stack: TradingStack, dashboardUrl: string): Record<string, string> {
  return {
    STAGE: stack.stageName,
    STATE_TABLE: stack.tables.state.tableName,
    IDEMPOTENCY_TABLE: stack.tables.idempotency.tableName,
    QUANTSHIFT_CONFIG: BUNDLED_CONFIG_PATH,
    TOPIC_ARN: stack.alertTopic.topicArn,
    ALPACA_SECRET_ARN: stack.alpacaTradingSecret.secretArn,
    UPSTASH_SECRET_ARN: stack.upstashSecret.secretArn,
    DASHBOARD_URL: dashboardUrl,
  };
}

/** `execute-orders` → `ExecuteOrders`. */
function pascal(name: string): string {
  return name.replace(/(^|-)([a-z])/g, (_, __, c: string) => c.toUpperCase());
}
