import { Duration, type RemovalPolicy, Validations } from 'aws-cdk-lib';
import { LoggingLevel, SlackChannelConfiguration } from 'aws-cdk-lib/aws-chatbot';
import { SqsDestination } from 'aws-cdk-lib/aws-lambda-destinations';
import type { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { type CfnSecret, Secret } from 'aws-cdk-lib/aws-secretsmanager';
import type { ITopic } from 'aws-cdk-lib/aws-sns';
import { LambdaSubscription } from 'aws-cdk-lib/aws-sns-subscriptions';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { repoPath } from '../paths.js';
import { TradingFunction } from './trading-function.js';

/** Properties of {@link SlackDelivery}. */
export interface SlackDeliveryProps {
  /** Prefix of names unique per account and region, e.g. `quantshift-paper`. */
  readonly namePrefix: string;
  /** The topics whose messages go to Slack (alerts and reports; pipeline outcomes). */
  readonly topics: readonly ITopic[];
  /**
   * The Slack workspace (team) id, from the AWS Chatbot console after authorizing the workspace.
   * With {@link slackChannelId}, messages go through AWS Chatbot; otherwise through the webhook function.
   * @default - no Chatbot: the webhook function
   */
  readonly slackWorkspaceId?: string;
  /**
   * The Slack channel id (e.g. `C0123456789`), with {@link slackWorkspaceId}.
   * @default - no Chatbot: the webhook function
   */
  readonly slackChannelId?: string;
  /**
   * Name of the secret the webhook function reads its URL from (JSON `{ "url": "https://hooks.slack.com/..." }`).
   * @default `${namePrefix}/slack-webhook`
   */
  readonly webhookSecretName?: string;
  /** The dashboard's URL, linked from every message the webhook function posts. */
  readonly dashboardUrl: string;
  /** The code's commit. */
  readonly commit: string;
  /**
   * How long the webhook function's logs are kept.
   * @default - the TradingFunction default
   */
  readonly logRetention?: RetentionDays;
  /**
   * What happens to the webhook secret when removed from the stack.
   * @default - the secret's default (retain)
   */
  readonly removalPolicy?: RemovalPolicy;
}

/**
 * Alerts and reports to Slack, one of two ways: AWS Chatbot (a `SlackChannelConfiguration` on
 * the topics) when a workspace and channel are given, otherwise a function subscribed to the
 * topics that posts each message, formatted for people, to an incoming webhook whose URL lives
 * in Secrets Manager.
 */
export class SlackDelivery extends Construct {
  /** The Chatbot channel configuration, when Chatbot delivers. */
  readonly chatbot?: SlackChannelConfiguration;
  /** The webhook function, when no Chatbot channel is given. */
  readonly webhookFunction?: TradingFunction;
  /** The secret holding the webhook URL, when no Chatbot channel is given. */
  readonly webhookSecret?: Secret;
  /** Messages the webhook function could not deliver, when no Chatbot channel is given. */
  readonly deadLetterQueue?: Queue;

  constructor(scope: Construct, id: string, props: SlackDeliveryProps) {
    super(scope, id);
    const { slackWorkspaceId, slackChannelId } = props;
    if ((slackWorkspaceId === undefined) !== (slackChannelId === undefined)) {
      throw new Error(
        'Slack through AWS Chatbot needs both -c slackWorkspaceId=... and -c slackChannelId=... (or neither, for the webhook)',
      );
    }
    if (slackWorkspaceId !== undefined && slackChannelId !== undefined) {
      this.chatbot = new SlackChannelConfiguration(this, 'Chatbot', {
        slackChannelConfigurationName: `${props.namePrefix}-alerts`,
        slackWorkspaceId,
        slackChannelId,
        notificationTopics: [...props.topics],
        loggingLevel: LoggingLevel.ERROR,
      });
      return;
    }

    const secretName = props.webhookSecretName ?? `${props.namePrefix}/slack-webhook`;
    this.webhookSecret = new Secret(this, 'WebhookSecret', {
      secretName,
      description: 'Slack incoming webhook: JSON {"url": "https://hooks.slack.com/services/..."}',
      ...(props.removalPolicy === undefined ? {} : { removalPolicy: props.removalPolicy }),
    });
    (this.webhookSecret.node.defaultChild as CfnSecret).addPropertyDeletionOverride('GenerateSecretString');
    Validations.of(this.webhookSecret).acknowledge({
      id: 'AwsSolutions-SMG4',
      reason:
        'A Slack incoming webhook URL is issued in the Slack app settings and cannot be rotated through an API; ' +
        'a new one is made there and put in with put-secret-value (runbook in the README).',
    });

    this.webhookFunction = new TradingFunction(this, 'WebhookFunction', {
      entry: repoPath('functions', 'slack-notify', 'handler.ts'),
      functionName: `${props.namePrefix}-slack-notify`,
      // One message may take ~50 s in the worst case (4 attempts of 5 s, plus Retry-After waits).
      timeout: Duration.seconds(60),
      commit: props.commit,
      ...(props.logRetention === undefined ? {} : { logRetention: props.logRetention }),
      environment: {
        SLACK_WEBHOOK_SECRET_ARN: this.webhookSecret.secretArn,
        DASHBOARD_URL: props.dashboardUrl,
      },
    });
    this.webhookSecret.grantRead(this.webhookFunction);
    // SNS invokes asynchronously: a message Slack keeps refusing is retried, then kept here.
    this.deadLetterQueue = new Queue(this, 'DeadLetterQueue', {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    Validations.of(this.deadLetterQueue).acknowledge({
      id: 'AwsSolutions-SQS3',
      reason:
        "This queue is itself the dead-letter queue of the webhook function's asynchronous invocations; cdk-nag only " +
        "recognizes queues named as another queue's DLQ. An alarm watches its depth.",
    });
    this.webhookFunction.configureAsyncInvoke({
      retryAttempts: 2,
      maxEventAge: Duration.hours(1),
      onFailure: new SqsDestination(this.deadLetterQueue),
    });
    for (const topic of props.topics) topic.addSubscription(new LambdaSubscription(this.webhookFunction));
  }
}
