import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Match } from 'aws-cdk-lib/assertions';
import { afterAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../../lib/paths.js';
import { LIVE_FUNCTIONS } from '../../lib/trading-stack.js';
import { ConfigError } from '../../shared/core/errors.js';
import {
  actionsOf,
  type CfnResource,
  grantLines,
  removeTestOutdirs,
  type Statement,
  synthQuantShift,
} from './synth.js';

afterAll(() => {
  removeTestOutdirs();
  rmSync(fixtureDir, { recursive: true, force: true });
});

const paper = synthQuantShift('paper');
const live = synthQuantShift('live');
const template = paper.tradingTemplate;
const resources = template.toJSON().Resources as Record<string, CfnResource>;
const ofType = (type: string) => Object.entries(resources).filter(([, r]) => r.Type === type);
const idOf = (construct: { node: { defaultChild?: unknown } }) =>
  paper.trading.getLogicalId(construct.node.defaultChild as never);

const grantsOf = (functionId: string) => grantLines(resources, functionId);

const fixtureDir = join(repoRoot, 'test', 'fixtures', 'tmp-config');

describe('trading stack: the live functions', () => {
  it('is QuantShift-<stage>-Trading, termination-protected in live only', () => {
    expect(paper.trading.stackName).toBe('QuantShift-paper-Trading');
    expect(paper.trading.terminationProtection).toBe(false);
    expect(live.trading.stackName).toBe('QuantShift-live-Trading');
    expect(live.trading.terminationProtection).toBe(true);
  });

  it('has the five step functions on nodejs22.x arm64, each with the bundled config and ARNs, never values', () => {
    for (const step of LIVE_FUNCTIONS) {
      const fn = paper.trading.functions[step];
      const props = (resources[idOf(fn)] as CfnResource).Properties;
      expect(props).toMatchObject({
        Runtime: 'nodejs22.x',
        Architectures: ['arm64'],
        Handler: 'index.handler',
        FunctionName: `quantshift-paper-${step}`,
        TracingConfig: { Mode: 'Active' },
      });
      const env = props.Environment?.Variables as Record<string, unknown>;
      expect(env).toMatchObject({
        STAGE: 'paper',
        QUANTSHIFT_CONFIG: 'config/strategy.yaml',
        POWERTOOLS_SERVICE_NAME: step,
        ALPACA_SECRET_ARN: { Ref: idOf(paper.trading.alpacaTradingSecret) },
        UPSTASH_SECRET_ARN: { Ref: idOf(paper.trading.upstashSecret) },
        TOPIC_ARN: { Ref: idOf(paper.trading.alertTopic) },
        STATE_TABLE: { Ref: idOf(paper.trading.tables.state) },
        IDEMPOTENCY_TABLE: { Ref: idOf(paper.trading.tables.idempotency) },
      });
      expect(JSON.stringify(env.DASHBOARD_URL)).toContain('#dashboards/dashboard/quantshift-paper');
      // No key material in the environment: only names and ARNs.
      for (const key of ['ALPACA_KEY_ID', 'ALPACA_SECRET_KEY', 'UPSTASH_REDIS_REST_TOKEN', 'ALPACA_BASE_URL'])
        expect(env).not.toHaveProperty(key);
    }
  });

  it('grants each function exactly its table items, its idempotency records, its secrets and the alert topic', () => {
    const stateArn = { 'Fn::GetAtt': [idOf(paper.trading.tables.state), 'Arn'] };
    const idempotencyArn = { 'Fn::GetAtt': [idOf(paper.trading.tables.idempotency), 'Arn'] };
    const line = (action: string, resource: unknown) => `${action} on ${JSON.stringify(resource)}`;
    const expected = [
      ...['GetItem', 'PutItem', 'UpdateItem', 'Query'].map((a) => line(`dynamodb:${a}`, stateArn)),
      ...['GetItem', 'PutItem', 'UpdateItem', 'DeleteItem'].map((a) => line(`dynamodb:${a}`, idempotencyArn)),
      ...[paper.trading.alpacaTradingSecret, paper.trading.upstashSecret].flatMap((secret) =>
        ['DescribeSecret', 'GetSecretValue'].map((a) => line(`secretsmanager:${a}`, { Ref: idOf(secret) })),
      ),
      line('sns:Publish', { Ref: idOf(paper.trading.alertTopic) }),
      line('kms:Decrypt', { 'Fn::GetAtt': [idOf(paper.trading.alertKey), 'Arn'] }),
      line('kms:GenerateDataKey', { 'Fn::GetAtt': [idOf(paper.trading.alertKey), 'Arn'] }),
    ];
    for (const step of LIVE_FUNCTIONS) {
      const grants = grantsOf(idOf(paper.trading.functions[step]));
      // The asynchronous invocations' failure destination: the step's own dead-letter queue.
      const dlq = { 'Fn::GetAtt': [idOf(paper.trading.schedules[step].deadLetterQueue), 'Arn'] };
      const destination = ['GetQueueAttributes', 'GetQueueUrl', 'SendMessage'].map((a) =>
        line(`sqs:${a}`, dlq),
      );
      expect(grants).toEqual([...expected, ...destination].sort());
    }
  });

  it('has no wildcard action and no table-wide verbs (scan, delete, batch, admin) on the state table', () => {
    for (const [, policy] of ofType('AWS::IAM::Policy')) {
      for (const s of (policy.Properties.PolicyDocument as { Statement: Statement[] }).Statement) {
        for (const action of actionsOf(s)) {
          expect(action).not.toMatch(/\*/);
          expect(action).not.toMatch(/^dynamodb:(Scan|DeleteTable|BatchWriteItem|CreateTable)/);
        }
      }
    }
  });

  it('refuses at synth a config the live stage would refuse (long-short)', () => {
    mkdirSync(fixtureDir, { recursive: true });
    const file = join(fixtureDir, 'long-short.yaml');
    writeFileSync(
      file,
      readFileSync(join(repoRoot, 'config/equity-strategy.yaml'), 'utf8').replace(
        /direction: long-only/,
        'direction: long-short',
      ),
    );
    expect(() => synthQuantShift('live', { config: 'test/fixtures/tmp-config/long-short.yaml' })).toThrow(
      ConfigError,
    );
    expect(() => synthQuantShift('live', { config: 'test/fixtures/tmp-config/long-short.yaml' })).toThrow(
      /long-only/,
    );
  });
});

describe('trading stack: the schedules', () => {
  const schedules = ofType('AWS::Scheduler::Schedule').map(([, r]) => r.Properties);
  const byStep = (step: string) =>
    schedules.find((s) => JSON.parse((s.Target as { Input: string }).Input).step === step) as Record<
      string,
      unknown
    >;

  it('runs each step in America/New_York, Monday to Friday, at the time of DESIGN.md', () => {
    // The five steps, and the paper stage's weekly paper validation.
    expect(schedules).toHaveLength(6);
    const expected: Record<string, string> = {
      'market-open-check': 'cron(0 9 ? * MON-FRI *)',
      'generate-signals': 'cron(10 9 ? * MON-FRI *)',
      'execute-orders': 'cron(15 9 ? * MON-FRI *)',
      'risk-check': 'cron(0/15 9-15 ? * MON-FRI *)',
      'end-of-day': 'cron(15 16 ? * MON-FRI *)',
    };
    for (const [step, expression] of Object.entries(expected)) {
      expect(byStep(step)).toMatchObject({
        ScheduleExpression: expression,
        ScheduleExpressionTimezone: 'America/New_York',
        FlexibleTimeWindow: { Mode: 'OFF' },
        State: 'ENABLED',
        Name: `quantshift-paper-${step}`,
      });
    }
  });

  it("carries the step and <aws.scheduler.scheduled-time> in the payload: the handlers' idempotency key", () => {
    for (const step of LIVE_FUNCTIONS) {
      const target = byStep(step).Target as { Input: string; Arn: unknown };
      expect(JSON.parse(target.Input)).toEqual({ step, scheduledTime: '<aws.scheduler.scheduled-time>' });
      expect(target.Arn).toEqual({ 'Fn::GetAtt': [idOf(paper.trading.functions[step]), 'Arn'] });
    }
  });

  it('retries, then sends to the step’s own encrypted dead-letter queue, from the scheduler and from Lambda', () => {
    for (const step of LIVE_FUNCTIONS) {
      const queueId = idOf(paper.trading.schedules[step].deadLetterQueue);
      const target = byStep(step).Target as Record<string, unknown>;
      expect(target.RetryPolicy).toMatchObject({ MaximumRetryAttempts: 2 });
      expect(target.DeadLetterConfig).toEqual({ Arn: { 'Fn::GetAtt': [queueId, 'Arn'] } });
      expect((resources[queueId] as CfnResource).Properties).toMatchObject({
        SqsManagedSseEnabled: true,
        MessageRetentionPeriod: 14 * 86_400,
      });
      template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
        FunctionName: { Ref: idOf(paper.trading.functions[step]) },
        MaximumRetryAttempts: 2,
        DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': [queueId, 'Arn'] } } },
      });
    }
    // execute-orders gives up before the 09:28 market-on-open cutoff could pass twice over.
    expect((byStep('execute-orders').Target as { RetryPolicy: Record<string, number> }).RetryPolicy).toEqual({
      MaximumRetryAttempts: 2,
      MaximumEventAgeInSeconds: 13 * 60,
    });
    // Every queue refuses plain HTTP.
    template.resourcePropertiesCountIs(
      'AWS::SQS::QueuePolicy',
      {
        PolicyDocument: {
          Statement: Match.arrayWith([
            Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
          ]),
        },
      },
      6,
    );
  });

  it('runs the weekly paper validation in the paper stage only, Friday 17:30 New York, with the live functions’ environment', () => {
    const weekly = paper.trading.paperValidation;
    if (weekly === undefined) throw new Error('the paper stage has no weekly paper validation');
    expect(byStep('validate-paper')).toMatchObject({
      ScheduleExpression: 'cron(30 17 ? * FRI *)',
      ScheduleExpressionTimezone: 'America/New_York',
      Name: 'quantshift-paper-validate-paper',
    });
    const target = byStep('validate-paper').Target as { Input: string; Arn: unknown };
    expect(JSON.parse(target.Input)).toEqual({
      step: 'validate-paper',
      scheduledTime: '<aws.scheduler.scheduled-time>',
    });
    expect(target.Arn).toEqual({ 'Fn::GetAtt': [idOf(weekly.function), 'Arn'] });
    const props = (resources[idOf(weekly.function)] as CfnResource).Properties;
    expect(props).toMatchObject({ FunctionName: 'quantshift-paper-validate-paper', Runtime: 'nodejs22.x' });
    expect(props.Environment?.Variables).toMatchObject({
      STAGE: 'paper',
      STATE_TABLE: { Ref: idOf(paper.trading.tables.state) },
      TOPIC_ARN: { Ref: idOf(paper.trading.alertTopic) },
    });
    expect(live.trading.paperValidation).toBeUndefined();
    const liveSchedules = Object.values(
      live.tradingTemplate.toJSON().Resources as Record<string, CfnResource>,
    ).filter((r) => r.Type === 'AWS::Scheduler::Schedule');
    expect(liveSchedules).toHaveLength(5);
  });
});

describe('trading stack: state, secrets and the alert topic', () => {
  it('has the state table of the adapter: PK/SK, TTL on ttl, on demand, encrypted, point-in-time recovery', () => {
    expect((resources[idOf(paper.trading.tables.state)] as CfnResource).Properties).toEqual(
      expect.objectContaining({
        KeySchema: [
          { AttributeName: 'PK', KeyType: 'HASH' },
          { AttributeName: 'SK', KeyType: 'RANGE' },
        ],
        BillingMode: 'PAY_PER_REQUEST',
        SSESpecification: { SSEEnabled: true },
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
        TimeToLiveSpecification: { AttributeName: 'ttl', Enabled: true },
        DeletionProtectionEnabled: false,
      }),
    );
    expect((resources[idOf(paper.trading.tables.idempotency)] as CfnResource).Properties).toMatchObject({
      KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
      TimeToLiveSpecification: { AttributeName: 'expiration', Enabled: true },
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      SSESpecification: { SSEEnabled: true },
    });
    template.allResources('AWS::DynamoDB::Table', { DeletionPolicy: 'Retain' });
  });

  it('protects the live tables from deletion', () => {
    live.tradingTemplate.allResourcesProperties('AWS::DynamoDB::Table', { DeletionProtectionEnabled: true });
  });

  it('creates the secrets empty, named per stage: live never reads the paper keys', () => {
    const names = (t: typeof template) =>
      Object.values(t.findResources('AWS::SecretsManager::Secret')).map((r) => {
        expect(r.Properties).not.toHaveProperty('GenerateSecretString');
        expect(r.Properties).not.toHaveProperty('SecretString');
        return r.Properties.Name as string;
      });
    expect(names(template).sort()).toEqual(['quantshift/paper/alpaca-trading', 'quantshift/paper/upstash']);
    expect(names(live.tradingTemplate).sort()).toEqual([
      'quantshift/live/alpaca-trading',
      'quantshift/live/upstash',
    ]);
  });

  it('encrypts the alert topic with a rotated key that CloudWatch alarms may use, and enforces TLS', () => {
    const keyId = idOf(paper.trading.alertKey);
    expect((resources[keyId] as CfnResource).Properties.EnableKeyRotation).toBe(true);
    template.hasResourceProperties('AWS::SNS::Topic', {
      TopicName: 'quantshift-paper-alerts',
      KmsMasterKeyId: { 'Fn::GetAtt': [keyId, 'Arn'] },
    });
    const statements = (
      (resources[keyId] as CfnResource).Properties.KeyPolicy as { Statement: Record<string, unknown>[] }
    ).Statement;
    expect(statements).toContainEqual(
      expect.objectContaining({
        Sid: 'AllowCloudWatchAlarmsToPublish',
        Principal: { Service: 'cloudwatch.amazonaws.com' },
        Action: ['kms:Decrypt', 'kms:GenerateDataKey*'],
      }),
    );
    template.hasResourceProperties('AWS::SNS::TopicPolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        ]),
      },
    });
  });

  it('outputs the table name, the topic and the secrets with their put-secret-value commands', () => {
    const outputs = template.toJSON().Outputs as Record<string, { Description: string }>;
    expect(Object.keys(outputs)).toEqual(
      expect.arrayContaining([
        'StateTableName',
        'AlertTopicArn',
        'AlpacaTradingSecretArn',
        'UpstashSecretArn',
        ...['MarketOpenCheck', 'GenerateSignals', 'ExecuteOrders', 'RiskCheck', 'EndOfDay'].map(
          (step) => `${step}DeadLetterQueueUrl`,
        ),
      ]),
    );
    expect(outputs.AlpacaTradingSecretArn?.Description).toContain(
      'aws secretsmanager put-secret-value --secret-id quantshift/paper/alpaca-trading',
    );
  });
});
