import { AwsSolutionsChecks } from 'cdk-nag';
import { afterAll, describe, expect, it } from 'vitest';
import { LIVE_FUNCTIONS } from '../../lib/trading-stack.js';
import {
  actionsOf,
  type CfnResource,
  grantLines,
  removeTestOutdirs,
  type Statement,
  synthQuantShift,
} from './synth.js';

afterAll(removeTestOutdirs);

const paper = synthQuantShift('paper');
const { monitoring, trading, research } = paper;
const template = paper.monitoringTemplate;
const resources = template.toJSON().Resources as Record<string, CfnResource>;
const alarms = Object.values(resources)
  .filter((r) => r.Type === 'AWS::CloudWatch::Alarm')
  .map((r) => r.Properties as Record<string, unknown>);
const alarm = (name: string) => {
  const found = alarms.find((a) => a.AlarmName === `quantshift-paper-${name}`);
  if (found === undefined) throw new Error(`no alarm ${name}`);
  return found;
};
const localId = (construct: { node: { defaultChild?: unknown } }) =>
  monitoring.getLogicalId(construct.node.defaultChild as never);
const topicRef = JSON.stringify(trading.alertTopic.topicArn); // a cross-stack reference: compared as JSON
const killSwitchArn = { 'Fn::GetAtt': [localId(monitoring.killSwitch), 'Arn'] };
const isAlertTopic = (action: unknown) =>
  JSON.stringify(action).includes('QuantShift-paper-Trading') &&
  JSON.stringify(action).includes('AlertTopic');

describe('monitoring stack: the circuit-breaker alarms', () => {
  it('fires on a daily loss of 5% and a drawdown of 15% from the EMF metrics, notifying and invoking the kill switch', () => {
    for (const [name, metric, threshold] of [
      ['daily-loss', 'DailyLossPct', 5],
      ['drawdown', 'DrawdownPct', 15],
    ] as const) {
      const a = alarm(name);
      expect(a).toMatchObject({
        Namespace: 'QuantShift',
        MetricName: metric,
        Dimensions: expect.arrayContaining([
          { Name: 'service', Value: 'quantshift-live' },
          { Name: 'stage', Value: 'paper' },
        ]),
        Statistic: 'Maximum',
        Threshold: threshold,
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
        TreatMissingData: 'notBreaching',
      });
      const actions = a.AlarmActions as unknown[];
      expect(actions).toHaveLength(2);
      expect(actions.some(isAlertTopic)).toBe(true);
      expect(actions).toContainEqual(killSwitchArn);
      expect((a.OKActions as unknown[]).some(isAlertTopic)).toBe(true);
    }
    void topicRef;
  });

  it('takes the thresholds from the strategy config, so the alarms and the breakers agree', () => {
    expect(trading.config.risk?.dailyLossLimit).toBe(0.05);
    expect(trading.config.risk?.maxDrawdown).toBe(0.15);
  });

  it('lets only these alarms invoke the kill switch', () => {
    const permissions = Object.values(resources).filter(
      (r) =>
        r.Type === 'AWS::Lambda::Permission' &&
        JSON.stringify(r.Properties.FunctionName) === JSON.stringify(killSwitchArn),
    );
    expect(permissions.map((p) => p.Properties.Principal)).toEqual([
      'lambda.alarms.cloudwatch.amazonaws.com',
      'lambda.alarms.cloudwatch.amazonaws.com',
    ]);
    const sources = permissions.map((p) => JSON.stringify(p.Properties.SourceArn));
    expect(sources.some((s) => s.includes(localId(monitoring.breakers.dailyLoss)))).toBe(true);
    expect(sources.some((s) => s.includes(localId(monitoring.breakers.drawdown)))).toBe(true);
  });

  it('alarms "strategy diverging from its backtest" on the end-of-day divergence metric, to the alert topic', () => {
    expect(alarm('backtest-divergence')).toMatchObject({
      MetricName: 'BacktestDivergence',
      Namespace: 'QuantShift',
      Statistic: 'Maximum',
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      TreatMissingData: 'notBreaching',
    });
    expect(String(alarm('backtest-divergence').AlarmDescription)).toMatch(
      /^Strategy diverging from its backtest/,
    );
    expect((alarm('backtest-divergence').AlarmActions as unknown[]).some(isAlertTopic)).toBe(true);
    expect(
      (alarm('backtest-divergence').AlarmActions as unknown[]).some((a) =>
        JSON.stringify(a).includes('KillSwitch'),
      ),
    ).toBe(false);
  });

  it('alarms on a single order rejection', () => {
    expect(alarm('order-rejections')).toMatchObject({
      MetricName: 'OrdersRejected',
      Statistic: 'Sum',
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
    });
    expect((alarm('order-rejections').AlarmActions as unknown[]).some(isAlertTopic)).toBe(true);
  });

  it('alarms on the errors and throttles of every function, the kill switch and the webhook included', () => {
    for (const name of [...LIVE_FUNCTIONS, 'kill-switch', 'slack-notify']) {
      expect(alarm(`${name}-errors`)).toMatchObject({
        Namespace: 'AWS/Lambda',
        MetricName: 'Errors',
        Threshold: 1,
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      });
      expect(alarm(`${name}-throttles`)).toMatchObject({ Namespace: 'AWS/Lambda', MetricName: 'Throttles' });
    }
  });

  it("alarms on any message in a dead-letter queue: the five schedules' and the webhook's", () => {
    for (const name of [...LIVE_FUNCTIONS, 'slack-notify']) {
      expect(alarm(`${name}-dead-letters`)).toMatchObject({
        Namespace: 'AWS/SQS',
        MetricName: 'ApproximateNumberOfMessagesVisible',
        Threshold: 1,
      });
    }
  });

  it('alarms on the weekly validate-paper function like the others: errors, throttles, dead letters, and a run nearing its timeout', () => {
    expect(alarm('validate-paper-errors')).toMatchObject({
      Namespace: 'AWS/Lambda',
      MetricName: 'Errors',
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
    });
    expect(alarm('validate-paper-throttles')).toMatchObject({
      Namespace: 'AWS/Lambda',
      MetricName: 'Throttles',
    });
    expect(alarm('validate-paper-dead-letters')).toMatchObject({
      Namespace: 'AWS/SQS',
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Threshold: 1,
    });
    // 80 % of its 5-minute timeout.
    expect(alarm('validate-paper-duration')).toMatchObject({
      Namespace: 'AWS/Lambda',
      MetricName: 'Duration',
      Statistic: 'Maximum',
      Threshold: 240_000,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
    });
    for (const name of ['errors', 'duration'])
      expect((alarm(`validate-paper-${name}`).AlarmActions as unknown[]).some(isAlertTopic)).toBe(true);
    const fn = JSON.stringify(alarm('validate-paper-errors').Dimensions);
    expect(fn).toContain('ValidatePaperFunction');
    // The live stage has no weekly validation, so no such alarm.
    const live = synthQuantShift('live').monitoringTemplate.toJSON().Resources as Record<string, CfnResource>;
    const liveNames = Object.values(live)
      .filter((r) => r.Type === 'AWS::CloudWatch::Alarm')
      .map((r) => String(r.Properties.AlarmName));
    expect(liveNames.some((n) => n.includes('validate-paper'))).toBe(false);
  });

  it('alarms on a failed, timed-out or aborted walk-forward execution', () => {
    const a = alarm('pipeline-failures');
    const metrics = a.Metrics as {
      Id: string;
      Expression?: string;
      MetricStat?: { Metric: { MetricName: string } };
    }[];
    expect(metrics.find((m) => m.Expression !== undefined)?.Expression).toBe('failed + timedOut + aborted');
    expect(metrics.flatMap((m) => (m.MetricStat ? [m.MetricStat.Metric.MetricName] : [])).sort()).toEqual([
      'ExecutionsAborted',
      'ExecutionsFailed',
      'ExecutionsTimedOut',
    ]);
    expect(JSON.stringify(metrics)).toContain('QuantShift-paper-Research');
  });

  it('alarms on a missing heartbeat without a calendar: weekend hours count as beats, 26 weekday hours without one alarm', () => {
    const a = alarm('missing-heartbeat');
    expect(a).toMatchObject({
      Threshold: 1,
      ComparisonOperator: 'LessThanThreshold',
      EvaluationPeriods: 26,
      DatapointsToAlarm: 26,
      TreatMissingData: 'breaching',
    });
    const metrics = a.Metrics as {
      Id: string;
      Expression?: string;
      ReturnData?: boolean;
      MetricStat?: { Metric: { MetricName: string; Dimensions: unknown[] }; Period: number; Stat: string };
    }[];
    const returned = metrics.find((m) => m.ReturnData !== false);
    expect(returned?.Expression).toMatch(/^IF\(DAY\(\w+\) >= 6, 1, \w+\)$/);
    expect(metrics.find((m) => m.Expression?.includes('FILL'))?.Expression).toMatch(
      /^MAX\(\[FILL\(\w+, 0\), TIME_SERIES\(0\)\]\)$/,
    );
    const beat = metrics.find((m) => m.MetricStat !== undefined)?.MetricStat;
    expect(beat).toMatchObject({ Metric: { MetricName: 'Heartbeat' }, Period: 3600, Stat: 'Sum' });
  });

  it('notifies the alert topic from every alarm, on ALARM and on OK', () => {
    // 5 breakers (backtest-divergence the fifth), errors and throttles of 8 functions (the 5 steps,
    // validate-paper, kill-switch, slack-notify), 7 dead-letter queues, validate-paper's duration,
    // the pipeline's failures.
    expect(alarms.length).toBe(5 + 2 * 8 + 7 + 1 + 1);
    for (const a of alarms) {
      expect((a.AlarmActions as unknown[]).some(isAlertTopic), String(a.AlarmName)).toBe(true);
      expect((a.OKActions as unknown[]).some(isAlertTopic), String(a.AlarmName)).toBe(true);
    }
  });
});

describe('monitoring stack: the kill-switch function', () => {
  it('runs with the live environment and the bundled config, and the live functions’ grants', () => {
    const props = (resources[localId(monitoring.killSwitch)] as CfnResource).Properties;
    expect(props).toMatchObject({
      Runtime: 'nodejs22.x',
      Architectures: ['arm64'],
      FunctionName: 'quantshift-paper-kill-switch',
    });
    const env = props.Environment?.Variables as Record<string, unknown>;
    for (const key of [
      'STAGE',
      'STATE_TABLE',
      'IDEMPOTENCY_TABLE',
      'QUANTSHIFT_CONFIG',
      'TOPIC_ARN',
      'ALPACA_SECRET_ARN',
      'UPSTASH_SECRET_ARN',
    ])
      expect(env, key).toHaveProperty(key);
    expect(env.QUANTSHIFT_CONFIG).toBe('config/strategy.yaml');
  });
});

describe('monitoring stack: grants and logs', () => {
  const line = (action: string, resource: unknown) => `${action} on ${JSON.stringify(resource)}`;

  it('gives the kill switch the live functions’ grants: table items, idempotency, its secrets, the alert topic', () => {
    const grants = grantLines(resources, localId(monitoring.killSwitch));
    const actions = grants.map((g) => g.split(' on ')[0]);
    expect([...new Set(actions)].sort()).toEqual(
      [
        'dynamodb:DeleteItem',
        'dynamodb:GetItem',
        'dynamodb:PutItem',
        'dynamodb:Query',
        'dynamodb:UpdateItem',
        'kms:Decrypt',
        'kms:GenerateDataKey',
        'secretsmanager:DescribeSecret',
        'secretsmanager:GetSecretValue',
        'sns:Publish',
      ].sort(),
    );
    // Query and DeleteItem on different tables: the state table has no delete, idempotency no query.
    const deletes = grants.filter((g) => g.startsWith('dynamodb:DeleteItem'));
    const queries = grants.filter((g) => g.startsWith('dynamodb:Query'));
    expect(deletes).toHaveLength(1);
    expect(queries).toHaveLength(1);
    expect(deletes[0]).toContain('TablesIdempotency');
    expect(queries[0]).toContain('TablesState');
  });

  it('lets the webhook function read its own secret only', () => {
    const fn = monitoring.slack.webhookFunction;
    const secret = monitoring.slack.webhookSecret;
    const dlq = monitoring.slack.deadLetterQueue;
    if (fn === undefined || secret === undefined || dlq === undefined)
      throw new Error('expected the webhook path');
    const queueArn = { 'Fn::GetAtt': [localId(dlq), 'Arn'] };
    expect(grantLines(resources, localId(fn))).toEqual(
      [
        line('secretsmanager:DescribeSecret', { Ref: localId(secret) }),
        line('secretsmanager:GetSecretValue', { Ref: localId(secret) }),
        ...['GetQueueAttributes', 'GetQueueUrl', 'SendMessage'].map((a) => line(`sqs:${a}`, queueArn)),
      ].sort(),
    );
  });

  it('has no wildcard action in any policy of the three stacks, and a retention on every log group', () => {
    for (const t of [paper.tradingTemplate, paper.template, template]) {
      for (const policy of Object.values(t.findResources('AWS::IAM::Policy'))) {
        for (const s of (policy.Properties.PolicyDocument as { Statement: Statement[] }).Statement)
          for (const action of actionsOf(s)) expect(action).not.toContain('*');
      }
      for (const group of Object.values(t.findResources('AWS::Logs::LogGroup')))
        expect(group.Properties.RetentionInDays).toBeGreaterThan(0);
    }
  });
});

describe('monitoring stack: Slack', () => {
  it('without Chatbot ids: a webhook function subscribed to the alert and pipeline topics, reading its URL secret', () => {
    const fn = monitoring.slack.webhookFunction;
    if (fn === undefined) throw new Error('expected the webhook function');
    const props = (resources[localId(fn)] as CfnResource).Properties;
    expect(props.Environment?.Variables).toMatchObject({
      SLACK_WEBHOOK_SECRET_ARN: { Ref: localId(monitoring.slack.webhookSecret as never) },
    });
    expect(props.Timeout).toBe(60);
    const subscriptions = Object.values(resources).filter((r) => r.Type === 'AWS::SNS::Subscription');
    expect(subscriptions).toHaveLength(2);
    const topics = subscriptions.map((s) => JSON.stringify(s.Properties.TopicArn));
    expect(topics.some((t) => t.includes('QuantShift-paper-Trading'))).toBe(true);
    expect(topics.some((t) => t.includes('QuantShift-paper-Research'))).toBe(true);
    for (const s of subscriptions) expect(s.Properties.Protocol).toBe('lambda');
    template.hasResourceProperties('AWS::SecretsManager::Secret', { Name: 'quantshift/paper/slack-webhook' });
    template.resourceCountIs('AWS::Chatbot::SlackChannelConfiguration', 0);
  });

  it('with -c slackWorkspaceId and slackChannelId: AWS Chatbot on both topics, and no webhook', () => {
    const chatbot = synthQuantShift('paper', { slackWorkspaceId: 'T0123ABCD', slackChannelId: 'C0123ABCD' });
    const t = chatbot.monitoringTemplate;
    const configs = Object.values(t.findResources('AWS::Chatbot::SlackChannelConfiguration'));
    expect(configs).toHaveLength(1);
    expect(configs[0]?.Properties).toMatchObject({
      SlackWorkspaceId: 'T0123ABCD',
      SlackChannelId: 'C0123ABCD',
    });
    const topics = JSON.stringify(configs[0]?.Properties.SnsTopicArns);
    expect(topics).toContain('QuantShift-paper-Trading');
    expect(topics).toContain('QuantShift-paper-Research');
    t.resourceCountIs('AWS::SNS::Subscription', 0);
    t.resourceCountIs('AWS::SecretsManager::Secret', 0);
    expect(chatbot.monitoring.slack.webhookFunction).toBeUndefined();
    const report = new AwsSolutionsChecks().validateScope(chatbot.app);
    expect(report.violations.map((v) => v.ruleName)).toEqual([]);
  });

  it('refuses one Chatbot id without the other', () => {
    expect(() => synthQuantShift('paper', { slackWorkspaceId: 'T0123ABCD' })).toThrow(/both/);
  });
});

describe('monitoring stack: the dashboard', () => {
  const dashboard = Object.values(resources).find((r) => r.Type === 'AWS::CloudWatch::Dashboard');
  const body = JSON.stringify(dashboard?.Properties.DashboardBody);

  it('is one per stage, named after it, with its URL as an output', () => {
    expect(dashboard?.Properties.DashboardName).toBe('quantshift-paper');
    const outputs = template.toJSON().Outputs as Record<string, { Value: unknown }>;
    expect(JSON.stringify(outputs.DashboardUrl?.Value)).toContain('#dashboards/dashboard/quantshift-paper');
  });

  it('shows equity, daily P&L, drawdown against its limit, heat, orders, slippage, last runs, durations, errors, pipeline executions', () => {
    for (const needle of [
      'Equity',
      'DayPnl',
      'DailyLossPct',
      'DrawdownPct',
      'Drawdown limit',
      'HeatPct',
      'OrdersPlaced',
      'OrdersFilled',
      'OrdersRejected',
      'SlippageBps',
      "filter message = 'step succeeded'",
      'Duration',
      'Errors',
      'Throttles',
      'ExecutionsFailed',
      'ExecutionsSucceeded',
    ]) {
      expect(body, needle).toContain(needle);
    }
    // The drawdown limit line sits at the config's 15 %.
    expect(body).toMatch(/\\"value\\":15,\\"label\\":\\"Drawdown limit/);
    void research;
  });
});
