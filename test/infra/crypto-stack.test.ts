import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Template } from 'aws-cdk-lib/assertions';
import { afterAll, describe, expect, it } from 'vitest';
import { CRYPTO_STEP_TIMINGS } from '../../lib/crypto-stack.js';
import { repoRoot } from '../../lib/paths.js';
import { ConfigError } from '../../shared/core/errors.js';
import { CRYPTO_STEPS } from '../../shared/live/crypto-steps.js';
import { CRYPTO_METRICS, CRYPTO_METRICS_SERVICE } from '../../shared/runtime/crypto-metrics.js';
import { type CfnResource, grantLines, removeTestOutdirs, synthQuantShift } from './synth.js';

const fixtureDir = join(repoRoot, 'test', 'fixtures', 'tmp-crypto-config');
afterAll(() => {
  removeTestOutdirs();
  rmSync(fixtureDir, { recursive: true, force: true });
});

const paper = synthQuantShift('paper');
const live = synthQuantShift('live');
const template = Template.fromStack(paper.crypto);
const resources = template.toJSON().Resources as Record<string, CfnResource>;
const ofType = (type: string) => Object.values(resources).filter((r) => r.Type === type);
const idOf = (construct: { node: { defaultChild?: unknown } }) =>
  paper.crypto.getLogicalId(construct.node.defaultChild as never);
const tradingRef = (construct: { node: { defaultChild?: unknown } }) =>
  paper.trading.getLogicalId(construct.node.defaultChild as never);
/** A cross-stack reference from the crypto stack to a trading-stack output, as the template holds it. */
const imported = (value: unknown) => {
  const text = JSON.stringify(value);
  return /Fn::(GetStackOutput|ImportValue)/.test(text) && text.includes('QuantShift-paper-Trading');
};

describe('crypto stack: QuantShift-<stage>-Crypto', () => {
  it('is named per stage, termination-protected in live only, and deployed after the trading stack', () => {
    expect(paper.crypto.stackName).toBe('QuantShift-paper-Crypto');
    expect(live.crypto.stackName).toBe('QuantShift-live-Crypto');
    expect(paper.crypto.terminationProtection).toBe(false);
    expect(live.crypto.terminationProtection).toBe(true);
    expect(paper.crypto.dependencies).toContain(paper.trading);
  });

  it('has one function per crypto step, on nodejs22.x arm64, with names and ARNs in the environment, never a key', () => {
    // One per step, and the kill switch.
    expect(ofType('AWS::Lambda::Function')).toHaveLength(CRYPTO_STEPS.length + 1);
    for (const step of CRYPTO_STEPS) {
      const props = (resources[idOf(paper.crypto.functions[step])] as CfnResource).Properties;
      expect(props).toMatchObject({
        Runtime: 'nodejs22.x',
        Architectures: ['arm64'],
        FunctionName: `quantshift-paper-crypto-${step}`,
      });
      const env = props.Environment?.Variables as Record<string, unknown>;
      expect(env).toMatchObject({
        STAGE: 'paper',
        DRY_RUN: 'true',
        QUANTSHIFT_CONFIG: 'config/strategy.yaml',
        COINBASE_SECRET_ARN: { Ref: idOf(paper.crypto.coinbaseSecret) },
        STATE_TABLE: { Ref: idOf(paper.crypto.tables.state) },
        IDEMPOTENCY_TABLE: { Ref: idOf(paper.crypto.tables.idempotency) },
      });
      // The alert topic and the Upstash secret are the trading stack's (the same Slack path).
      expect(imported(env.TOPIC_ARN)).toBe(true);
      expect(imported(env.UPSTASH_SECRET_ARN)).toBe(true);
      for (const key of [
        'COINBASE_KEY_NAME',
        'COINBASE_PRIVATE_KEY',
        'COINBASE_BASE_URL',
        'ALPACA_SECRET_ARN',
      ])
        expect(env).not.toHaveProperty(key);
    }
  });

  it('dry-runs in both stages by default', () => {
    const liveTemplate = Template.fromStack(live.crypto);
    const liveFns = Object.values(liveTemplate.toJSON().Resources as Record<string, CfnResource>).filter(
      (r) => r.Type === 'AWS::Lambda::Function',
    );
    expect(liveFns).toHaveLength(CRYPTO_STEPS.length + 1);
    for (const fn of liveFns) expect(fn.Properties.Environment?.Variables?.DRY_RUN).toBe('true');
  });

  it('sends orders on the live stage only with -c cryptoDryRun=false (entries then behind the crypto live gate)', () => {
    const sending = synthQuantShift('live', { cryptoDryRun: 'false' });
    const fns = Object.values(
      Template.fromStack(sending.crypto).toJSON().Resources as Record<string, CfnResource>,
    ).filter((r) => r.Type === 'AWS::Lambda::Function');
    expect(fns).toHaveLength(CRYPTO_STEPS.length + 1);
    for (const fn of fns) expect(fn.Properties.Environment?.Variables?.DRY_RUN).toBe('false');
    expect(() => synthQuantShift('paper', { cryptoDryRun: 'false' })).toThrow(/only the live stage/);
    expect(() => synthQuantShift('live', { cryptoDryRun: 'maybe' })).toThrow(/expected true or false/);
  });
});

describe('crypto stack: schedules in UTC, every day of the week', () => {
  const schedules = ofType('AWS::Scheduler::Schedule').map((r) => r.Properties);
  const byStep = (step: string) =>
    schedules.find((s) => JSON.parse((s.Target as { Input: string }).Input).step === step) as Record<
      string,
      unknown
    >;

  it('runs signals and orders after the UTC daily close, risk and funding hourly, the report before midnight', () => {
    expect(schedules).toHaveLength(CRYPTO_STEPS.length);
    const expected: Record<string, string> = {
      'market-open-check': 'cron(5 0 ? * * *)',
      'generate-signals': 'cron(10 0 ? * * *)',
      'execute-orders': 'cron(15 0 ? * * *)',
      'risk-check': 'cron(30 * ? * * *)',
      'end-of-day': 'cron(50 23 ? * * *)',
      'funding-rates': 'cron(5 * ? * * *)',
    };
    for (const [step, expression] of Object.entries(expected)) {
      expect(byStep(step)).toMatchObject({
        ScheduleExpression: expression,
        ScheduleExpressionTimezone: 'Etc/UTC',
        FlexibleTimeWindow: { Mode: 'OFF' },
        State: 'ENABLED',
        Name: `quantshift-paper-crypto-${step}`,
      });
      // Every day: no weekday restriction in the day-of-week field.
      expect(String(byStep(step).ScheduleExpression)).not.toMatch(/MON|FRI|SAT|SUN/);
    }
  });

  it('carries the step and the scheduled time (the idempotency key) and retries into its own dead-letter queue', () => {
    for (const step of CRYPTO_STEPS) {
      const target = byStep(step).Target as Record<string, unknown>;
      expect(JSON.parse(target.Input as string)).toEqual({
        step,
        scheduledTime: '<aws.scheduler.scheduled-time>',
      });
      expect(target.Arn).toEqual({ 'Fn::GetAtt': [idOf(paper.crypto.functions[step]), 'Arn'] });
      expect(target.RetryPolicy).toEqual({
        MaximumRetryAttempts: 2,
        MaximumEventAgeInSeconds: CRYPTO_STEP_TIMINGS[step].maxEventAge.toSeconds(),
      });
      expect(target.DeadLetterConfig).toEqual({
        Arn: { 'Fn::GetAtt': [idOf(paper.crypto.schedules[step].deadLetterQueue), 'Arn'] },
      });
    }
  });
});

describe('crypto stack: state, secret and grants', () => {
  it('has its own state table (the equity keys SESSION, RISK, ... are fixed) and idempotency table, PITR and encrypted', () => {
    const tables = ofType('AWS::DynamoDB::Table');
    expect(tables).toHaveLength(2);
    expect((resources[idOf(paper.crypto.tables.state)] as CfnResource).Properties).toMatchObject({
      KeySchema: [
        { AttributeName: 'PK', KeyType: 'HASH' },
        { AttributeName: 'SK', KeyType: 'RANGE' },
      ],
      BillingMode: 'PAY_PER_REQUEST',
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      SSESpecification: { SSEEnabled: true },
      TimeToLiveSpecification: { AttributeName: 'ttl', Enabled: true },
    });
    const liveTables = Object.values(
      Template.fromStack(live.crypto).toJSON().Resources as Record<string, CfnResource>,
    )
      .filter((r) => r.Type === 'AWS::DynamoDB::Table')
      .map((r) => r.Properties.DeletionProtectionEnabled);
    expect(liveTables).toEqual([true, true]);
  });

  it('creates the CDP key secret empty, named per stage', () => {
    const props = (resources[idOf(paper.crypto.coinbaseSecret)] as CfnResource).Properties;
    expect(props.Name).toBe('quantshift/paper/coinbase-cdp');
    expect(props).not.toHaveProperty('GenerateSecretString');
    expect(props).not.toHaveProperty('SecretString');
    expect(String(props.Description)).toMatch(/privateKey/);
    const liveSecret = Object.values(
      Template.fromStack(live.crypto).toJSON().Resources as Record<string, CfnResource>,
    ).find((r) => r.Type === 'AWS::SecretsManager::Secret');
    expect(liveSecret?.Properties.Name).toBe('quantshift/live/coinbase-cdp');
  });

  it('grants each function its table items, its idempotency records, the CDP and Upstash secrets and the alert topic, nothing else', () => {
    for (const step of CRYPTO_STEPS) {
      const lines = grantLines(resources, idOf(paper.crypto.functions[step]));
      const state = JSON.stringify({ 'Fn::GetAtt': [idOf(paper.crypto.tables.state), 'Arn'] });
      const idempotency = JSON.stringify({ 'Fn::GetAtt': [idOf(paper.crypto.tables.idempotency), 'Arn'] });
      const secret = JSON.stringify({ Ref: idOf(paper.crypto.coinbaseSecret) });
      const dlq = JSON.stringify({
        'Fn::GetAtt': [idOf(paper.crypto.schedules[step].deadLetterQueue), 'Arn'],
      });
      const mine = [
        ...['GetItem', 'PutItem', 'UpdateItem', 'Query'].map((a) => `dynamodb:${a} on ${state}`),
        ...['GetItem', 'PutItem', 'UpdateItem', 'DeleteItem'].map((a) => `dynamodb:${a} on ${idempotency}`),
        ...['DescribeSecret', 'GetSecretValue'].map((a) => `secretsmanager:${a} on ${secret}`),
        ...['GetQueueAttributes', 'GetQueueUrl', 'SendMessage'].map((a) => `sqs:${a} on ${dlq}`),
      ];
      for (const line of mine) expect(lines).toContain(line);
      const rest = lines.filter((l) => !mine.includes(l));
      // The rest: the trading stack's Upstash secret, alert topic and alert key, imported.
      expect(rest.map((l) => l.split(' on ')[0]).sort()).toEqual(
        [
          'kms:Decrypt',
          'kms:GenerateDataKey',
          'secretsmanager:DescribeSecret',
          'secretsmanager:GetSecretValue',
          'sns:Publish',
        ].sort(),
      );
      for (const line of rest) expect(imported(line.split(' on ')[1])).toBe(true);
      expect(lines.join('\n')).not.toMatch(/dynamodb:(Scan|DeleteTable|BatchWriteItem)|\*"/);
    }
  });
});

describe('crypto stack: alarms to the same Slack path', () => {
  const killSwitchArn = { 'Fn::GetAtt': [idOf(paper.crypto.killSwitch), 'Arn'] };
  const alarms = ofType('AWS::CloudWatch::Alarm').map((r) => r.Properties);
  const named = (name: string) => alarms.find((a) => a.AlarmName === `quantshift-paper-crypto-${name}`);

  it('every alarm notifies the trading stack alert topic on ALARM and on OK', () => {
    expect(alarms.length).toBeGreaterThan(10);
    for (const alarm of alarms) {
      expect(imported(alarm.AlarmActions)).toBe(true);
      expect(JSON.stringify(alarm.AlarmActions)).toContain(tradingRef(paper.trading.alertTopic));
      // OK notifies only: the kill switch acts on ALARM.
      expect(alarm.OKActions).toEqual(
        (alarm.AlarmActions as unknown[]).filter((a) => JSON.stringify(a) !== JSON.stringify(killSwitchArn)),
      );
    }
  });

  it('invokes the crypto kill switch on the daily-loss and drawdown alarms only, and lets only those invoke it', () => {
    for (const name of ['daily-loss', 'drawdown']) {
      expect(named(name)?.AlarmActions).toContainEqual(killSwitchArn);
      expect(String(named(name)?.AlarmDescription)).toMatch(/the kill switch halts new entries/);
    }
    const invoking = alarms.filter((a) =>
      JSON.stringify(a.AlarmActions).includes(JSON.stringify(killSwitchArn)),
    );
    expect(invoking.map((a) => a.AlarmName).sort()).toEqual([
      'quantshift-paper-crypto-daily-loss',
      'quantshift-paper-crypto-drawdown',
    ]);
    const permissions = ofType('AWS::Lambda::Permission').filter(
      (r) => JSON.stringify(r.Properties.FunctionName) === JSON.stringify(killSwitchArn),
    );
    expect(permissions).toHaveLength(2);
    for (const permission of permissions) {
      expect(permission.Properties).toMatchObject({
        Action: 'lambda:InvokeFunction',
        Principal: 'lambda.alarms.cloudwatch.amazonaws.com',
      });
      expect(JSON.stringify(permission.Properties.SourceArn)).toMatch(
        /daily-loss|drawdown|DailyLoss|Drawdown/,
      );
    }
  });

  it('has the breakers on the crypto metrics (its own service dimension) with the crypto risk limits', () => {
    const dims = [
      { Name: 'service', Value: CRYPTO_METRICS_SERVICE },
      { Name: 'stage', Value: 'paper' },
    ];
    expect(named('daily-loss')).toMatchObject({ MetricName: 'DailyLossPct', Threshold: 5, Dimensions: dims });
    expect(named('drawdown')).toMatchObject({ MetricName: 'DrawdownPct', Threshold: 20, Dimensions: dims });
    expect(named('order-rejections')).toMatchObject({ MetricName: 'OrdersRejected', Dimensions: dims });
    // The 24/7 heartbeat: every hour counts, weekends included (no DAY() exemption).
    const heartbeat = JSON.stringify(named('missing-heartbeat'));
    expect(heartbeat).toContain('Heartbeat');
    expect(heartbeat).not.toContain('DAY(');
    for (const step of CRYPTO_STEPS) {
      expect(named(`${step}-errors`)).toBeDefined();
      expect(named(`${step}-dead-letters`)).toBeDefined();
    }
  });

  it('alarms on |funding rate| above the threshold per underlying, on a sign flip, and on missing readings', () => {
    for (const underlying of ['btc', 'eth']) {
      const alarm = named(`funding-${underlying}`) as Record<string, unknown>;
      expect(alarm).toMatchObject({ Threshold: 0.01, ComparisonOperator: 'GreaterThanThreshold' });
      const text = JSON.stringify(alarm.Metrics);
      expect(text).toContain('ABS(rate)');
      expect(text).toContain(CRYPTO_METRICS.fundingRatePct);
      expect(text).toContain(`"Value":"${underlying.toUpperCase()}"`);
    }
    expect(named('funding-sign-flip')).toMatchObject({
      MetricName: CRYPTO_METRICS.fundingSignFlips,
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
    });
    expect(named('funding-missing')).toMatchObject({ EvaluationPeriods: 3, TreatMissingData: 'breaching' });
  });

  it('adds a crypto section with the funding chart to the stage dashboard', () => {
    const dashboards = Object.values(
      paper.monitoringTemplate.toJSON().Resources as Record<string, CfnResource>,
    ).filter((r) => r.Type === 'AWS::CloudWatch::Dashboard');
    expect(dashboards).toHaveLength(1);
    const body = JSON.stringify(dashboards[0]?.Properties.DashboardBody);
    expect(body).toContain('Crypto bot');
    expect(body).toContain('Perpetual funding rate');
    expect(body).toContain(CRYPTO_METRICS.fundingRatePct);
    expect(body).toContain('Crypto alarms');
  });
});

describe('crypto stack: the config', () => {
  it('refuses at synth a crypto config without assetClass: crypto', () => {
    mkdirSync(fixtureDir, { recursive: true });
    writeFileSync(
      join(fixtureDir, 'equity.yaml'),
      readFileSync(join(repoRoot, 'config/equity-strategy.yaml'), 'utf8'),
    );
    expect(() =>
      synthQuantShift('paper', { cryptoConfig: 'test/fixtures/tmp-crypto-config/equity.yaml' }),
    ).toThrow(ConfigError);
  });
});

describe('crypto stack: the kill-switch function', () => {
  it('is the crypto bot own function: its config, table, secret and dry run, no schedule, the same grants as its steps', () => {
    const props = (resources[idOf(paper.crypto.killSwitch)] as CfnResource).Properties;
    expect(props).toMatchObject({
      Runtime: 'nodejs22.x',
      Architectures: ['arm64'],
      FunctionName: 'quantshift-paper-crypto-kill-switch',
    });
    const env = props.Environment?.Variables as Record<string, unknown>;
    const step = (resources[idOf(paper.crypto.functions['risk-check'])] as CfnResource).Properties.Environment
      ?.Variables as Record<string, unknown>;
    expect(env).toEqual({ ...step, POWERTOOLS_SERVICE_NAME: 'crypto-kill-switch' });
    const targets = ofType('AWS::Scheduler::Schedule').map((r) => JSON.stringify(r.Properties.Target));
    for (const target of targets) expect(target).not.toContain(idOf(paper.crypto.killSwitch));
    const lines = grantLines(resources, idOf(paper.crypto.killSwitch));
    const riskCheck = grantLines(resources, idOf(paper.crypto.functions['risk-check'])).filter(
      (l) => !l.startsWith('sqs:'),
    );
    expect([...lines].sort()).toEqual([...riskCheck].sort());
    // Its errors and throttles alarm like every function's.
    const alarmNames = ofType('AWS::CloudWatch::Alarm').map((r) => r.Properties.AlarmName);
    expect(alarmNames).toContain('quantshift-paper-crypto-kill-switch-errors');
  });
});
