import { Validations } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { afterAll, describe, expect, it } from 'vitest';
import { removeTestOutdirs, synthQuantShift } from './synth.js';

afterAll(removeTestOutdirs);

describe('the stream stack (-c stream=true)', () => {
  let synthesized: ReturnType<typeof build> | undefined;
  const build = () => {
    const stacks = synthQuantShift('paper', { stream: 'true' });
    if (stacks.stream === undefined) throw new Error('expected the stream stack');
    return { ...stacks, stream: stacks.stream, streamTemplate: Template.fromStack(stacks.stream) };
  };
  const synth = () => {
    synthesized ??= build();
    return synthesized;
  };

  it('is absent unless asked for', () => {
    expect(synthQuantShift('paper').stream).toBeUndefined();
  });

  it('runs one Fargate task at most: desired 0, minimum healthy 0 %, maximum 100 %, a public Node image', () => {
    const { streamTemplate } = synth();
    streamTemplate.hasResourceProperties('AWS::ECS::Service', {
      ServiceName: 'quantshift-paper-stream',
      LaunchType: 'FARGATE',
      DesiredCount: 0,
      DeploymentConfiguration: Match.objectLike({ MinimumHealthyPercent: 0, MaximumPercent: 100 }),
    });
    const task = Object.values(streamTemplate.findResources('AWS::ECS::TaskDefinition'))[0] as {
      Properties: {
        ContainerDefinitions: { Image: string; Command: string[]; Environment: { Name: string }[] }[];
        RuntimePlatform: unknown;
      };
    };
    const container = task.Properties.ContainerDefinitions[0];
    expect(container?.Image).toBe('node:22-bookworm-slim');
    expect(container?.Command.slice(0, 3)).toEqual(['node', '--input-type=module', '-e']);
    expect(container?.Command[3]).toContain('AWS4-HMAC-SHA256');
    expect(container?.Environment.map((e) => e.Name)).toEqual(
      expect.arrayContaining([
        'STATE_TABLE',
        'ALPACA_SECRET_ARN',
        'STREAM_BUNDLE_BUCKET',
        'STREAM_BUNDLE_KEY',
        'QUANTSHIFT_CONFIG_YAML',
      ]),
    );
    expect(task.Properties.RuntimePlatform).toEqual({
      CpuArchitecture: 'ARM64',
      OperatingSystemFamily: 'LINUX',
    });
  });

  it('is scaled to one task before the open and to none after the close, New York time, weekdays', () => {
    const { streamTemplate } = synth();
    const schedules = Object.values(streamTemplate.findResources('AWS::Scheduler::Schedule')) as {
      Properties: {
        Name: string;
        ScheduleExpression: string;
        ScheduleExpressionTimezone: string;
        Target: { Arn: unknown; Input: unknown };
      };
    }[];
    const byName = Object.fromEntries(schedules.map((s) => [s.Properties.Name, s.Properties]));
    expect(byName['quantshift-paper-stream-start']).toMatchObject({
      ScheduleExpression: 'cron(20 9 ? * MON-FRI *)',
      ScheduleExpressionTimezone: 'America/New_York',
    });
    const start = byName['quantshift-paper-stream-start'];
    expect(JSON.stringify(start?.Target.Arn)).toContain(':scheduler:::aws-sdk:ecs:updateService');
    expect(byName['quantshift-paper-stream-stop']?.ScheduleExpression).toBe('cron(10 16 ? * MON-FRI *)');
    expect(JSON.stringify(start?.Target.Input)).toContain('DesiredCount\\":1');
    expect(JSON.stringify(byName['quantshift-paper-stream-stop']?.Target.Input)).toContain(
      'DesiredCount\\":0',
    );
  });

  it('may delete only the lease item of the state table', () => {
    const { streamTemplate } = synth();
    const statements = Object.values(streamTemplate.findResources('AWS::IAM::Policy')).flatMap(
      (p) =>
        (
          p as {
            Properties: {
              PolicyDocument: { Statement: { Sid?: string; Action: unknown; Condition?: unknown }[] };
            };
          }
        ).Properties.PolicyDocument.Statement,
    );
    const deletes = statements.filter((s) => JSON.stringify(s.Action).includes('dynamodb:DeleteItem'));
    expect(deletes).toHaveLength(1);
    expect(deletes[0]?.Condition).toEqual({
      'ForAllValues:StringEquals': { 'dynamodb:LeadingKeys': ['STREAM'] },
    });
  });

  it('has the stale-data, disconnect and latency alarms on the alert topic, and a dashboard row', () => {
    const { monitoringTemplate } = synth();
    const alarms = monitoringTemplate.findResources('AWS::CloudWatch::Alarm');
    const byName = Object.fromEntries(
      Object.values(alarms).map((a) => {
        const p = (a as { Properties: Record<string, unknown> }).Properties;
        return [p.AlarmName as string, p];
      }),
    );
    expect(byName['quantshift-paper-stream-stale']).toMatchObject({
      MetricName: 'StreamHeartbeat',
      Namespace: 'QuantShift',
      Statistic: 'Minimum',
      Threshold: 1,
      ComparisonOperator: 'LessThanThreshold',
      EvaluationPeriods: 3,
      TreatMissingData: 'notBreaching',
      Dimensions: expect.arrayContaining([
        { Name: 'service', Value: 'quantshift-stream' },
        { Name: 'stage', Value: 'paper' },
      ]),
    });
    expect(byName['quantshift-paper-stream-disconnected']).toMatchObject({
      MetricName: 'StreamConnected',
      Statistic: 'Minimum',
    });
    expect(byName['quantshift-paper-stream-latency']).toMatchObject({
      MetricName: 'StreamOrderLatencyMs',
      ExtendedStatistic: 'p99',
      Threshold: 100,
      ComparisonOperator: 'GreaterThanThreshold',
    });
    for (const name of ['stale', 'disconnected', 'latency']) {
      const actions = JSON.stringify(byName[`quantshift-paper-stream-${name}`]?.AlarmActions);
      expect(actions).toContain('AlertTopic');
    }
    const body = JSON.stringify(
      Object.values(monitoringTemplate.findResources('AWS::CloudWatch::Dashboard'))[0],
    );
    for (const metric of ['StreamMessages', 'StreamReconnects', 'StreamOrderLatencyMs'])
      expect(body).toContain(metric);
  });

  it('passes cdk-nag with only these acknowledgements, each with a written reason', () => {
    const { app, stream } = synth();
    const report = new AwsSolutionsChecks().validateScope(app);
    expect(report.violations.map((v) => `${v.severity} ${v.ruleName}`)).toEqual([]);
    const acks: { id: string; reason: string }[] = [];
    for (const construct of stream.node.findAll()) {
      for (const entry of construct.node.metadata) {
        if (entry.type !== Validations.ACKNOWLEDGED_RULES_METADATA_KEY) continue;
        for (const [id, reason] of Object.entries(entry.data as Record<string, string>))
          acks.push({ id, reason });
      }
    }
    // The CloudFormation-Validate ones are the CDK's own (its Vpc construct), not this stack's.
    const ours = acks.filter((a) => !a.id.startsWith('CloudFormation-Validate::'));
    for (const ack of ours) expect(ack.reason.length, ack.id).toBeGreaterThan(60);
    expect(ours.map((a) => a.id.replace(/^annotation::/i, '')).sort()).toEqual([
      'AwsSolutions-ECS2',
      'AwsSolutions-ECS4',
    ]);
  });
});
