import { CfnOutput, Duration, Stack, type StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import { liveSleeveIds } from '../shared/core/config/schema.js';
import { CircuitBreakers } from './constructs/circuit-breakers.js';
import { SlackDelivery } from './constructs/slack-delivery.js';
import { StreamAlarms } from './constructs/stream-alarms.js';
import { dashboardUrlOf, TradingDashboard } from './constructs/trading-dashboard.js';
import { TradingFunction } from './constructs/trading-function.js';
import { repoPath } from './paths.js';
import type { ResearchStack } from './research-stack.js';
import type { StageConfig } from './stage.js';
import {
  BUNDLED_CONFIG_PATH,
  liveFunctionEnvironment,
  PAPER_VALIDATION_TIMEOUT,
  type TradingStack,
} from './trading-stack.js';

/** Properties of a {@link MonitoringStack}. */
export interface MonitoringStackProps extends StackProps {
  readonly stage: StageConfig;
  readonly trading: TradingStack;
  readonly research: ResearchStack;
  /** The strategy config file (repository-relative) the kill switch loads, as the live functions do. */
  readonly configFile: string;
  readonly commit: string;
  /** The dashboard's name: its URL is built from it (and handed to the functions' alerts). */
  readonly dashboardName: string;
  /** Slack through AWS Chatbot: both ids, or neither (then the webhook function). */
  readonly slackWorkspaceId?: string;
  readonly slackChannelId?: string;
  /** Whether the stage runs the stream (`-c stream=true`): its alarms and dashboard row. */
  readonly stream?: boolean;
}

/**
 * `QuantShift-<stage>-Monitoring`: the circuit-breaker alarms (the loss and drawdown ones invoke
 * the kill-switch function), Slack delivery of alerts and reports, and the stage's dashboard.
 */
export class MonitoringStack extends Stack {
  readonly killSwitch: TradingFunction;
  readonly breakers: CircuitBreakers;
  readonly slack: SlackDelivery;
  readonly dashboard: TradingDashboard;
  readonly streamAlarms?: StreamAlarms;

  constructor(scope: Construct, id: string, props: MonitoringStackProps) {
    super(scope, id, {
      description: `QuantShift ${props.stage.name}: circuit-breaker alarms, the kill switch, Slack alerts and the dashboard`,
      ...props,
    });
    const { stage, trading, research } = props;
    const dashboardUrl = dashboardUrlOf(this, props.dashboardName);

    this.killSwitch = new TradingFunction(this, 'KillSwitchFunction', {
      entry: repoPath('functions', 'kill-switch', 'handler.ts'),
      functionName: `${stage.resourcePrefix}-kill-switch`,
      memorySize: 512,
      timeout: Duration.minutes(2),
      logRetention: stage.logRetention,
      logLevel: stage.logLevel,
      commit: props.commit,
      bundledFiles: [{ source: props.configFile, target: BUNDLED_CONFIG_PATH }],
      environment: liveFunctionEnvironment(trading, dashboardUrl),
    });
    trading.grantLiveFunction(this.killSwitch);

    this.slack = new SlackDelivery(this, 'Slack', {
      namePrefix: stage.resourcePrefix,
      topics: [trading.alertTopic, research.pipeline.topic],
      webhookSecretName: stage.slackWebhookSecretName,
      dashboardUrl,
      commit: props.commit,
      logRetention: stage.logRetention,
      ...(props.slackWorkspaceId === undefined ? {} : { slackWorkspaceId: props.slackWorkspaceId }),
      ...(props.slackChannelId === undefined ? {} : { slackChannelId: props.slackChannelId }),
    });

    const risk = trading.config.risk;
    const dailyLossPct = round2((risk?.dailyLossLimit ?? 0.05) * 100);
    const drawdownPct = round2((risk?.maxDrawdown ?? 0.15) * 100);
    // The paper stage's weekly validation: its errors, throttles, dead letters and run time alarm too.
    const validation = trading.paperValidation;
    this.breakers = new CircuitBreakers(this, 'Breakers', {
      stage: stage.name,
      namePrefix: stage.resourcePrefix,
      alertTopic: trading.alertTopic,
      killSwitch: this.killSwitch,
      dailyLossPct,
      drawdownPct,
      functions: {
        ...trading.functions,
        ...(validation === undefined ? {} : { 'validate-paper': validation.function }),
        'kill-switch': this.killSwitch,
        ...(this.slack.webhookFunction === undefined ? {} : { 'slack-notify': this.slack.webhookFunction }),
      },
      deadLetterQueues: {
        ...Object.fromEntries(
          Object.entries(trading.schedules).map(([step, schedule]) => [step, schedule.deadLetterQueue]),
        ),
        ...(validation === undefined ? {} : { 'validate-paper': validation.schedule.deadLetterQueue }),
        ...(this.slack.deadLetterQueue === undefined ? {} : { 'slack-notify': this.slack.deadLetterQueue }),
      },
      ...(validation === undefined
        ? {}
        : {
            durations: {
              'validate-paper': { fn: validation.function, timeout: PAPER_VALIDATION_TIMEOUT },
            },
          }),
      stateMachine: research.pipeline.stateMachine,
    });

    this.dashboard = new TradingDashboard(this, 'Dashboard', {
      dashboardName: props.dashboardName,
      stage: stage.name,
      drawdownLimitPct: drawdownPct,
      dailyLossLimitPct: dailyLossPct,
      functions: trading.functions,
      logGroups: Object.values(trading.functions).map((fn) => fn.logGroup),
      stateMachine: research.pipeline.stateMachine,
      alarms: this.breakers.all,
      sleeveIds: liveSleeveIds(trading.config),
    });

    if (props.stream === true) {
      this.streamAlarms = new StreamAlarms(this, 'StreamAlarms', {
        stage: stage.name,
        namePrefix: stage.resourcePrefix,
        alertTopic: trading.alertTopic,
      });
      this.streamAlarms.addWidgets(this.dashboard.dashboard, stage.name);
    }

    new CfnOutput(this, 'DashboardUrl', { description: 'The stage dashboard', value: dashboardUrl });
    new CfnOutput(this, 'KillSwitchFunctionName', {
      description: 'The kill switch (also: quantshift halt / resume)',
      value: this.killSwitch.functionName,
    });
    if (this.slack.webhookSecret !== undefined) {
      new CfnOutput(this, 'SlackWebhookSecretArn', {
        description: `Fill with: aws secretsmanager put-secret-value --secret-id ${stage.slackWebhookSecretName} --secret-string '{"url":"https://hooks.slack.com/services/..."}'`,
        value: this.slack.webhookSecret.secretArn,
      });
    }
  }
}

const round2 = (x: number) => Math.round(x * 100) / 100;
