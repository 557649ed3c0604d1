import { App, Stack, Validations } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import { Bucket } from 'aws-cdk-lib/aws-s3';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { IConstruct } from 'constructs';
import { afterAll, describe, expect, it } from 'vitest';
import { removeTestOutdirs, synthQuantShift, testOutdir } from './synth.js';

afterAll(removeTestOutdirs);

/** Every acknowledgement in the tree: rule id (as cdk-nag matches it), construct path, reason. */
function acknowledgements(root: IConstruct) {
  const found: { id: string; path: string; reason: string }[] = [];
  for (const construct of root.node.findAll()) {
    for (const entry of construct.node.metadata) {
      if (entry.type !== Validations.ACKNOWLEDGED_RULES_METADATA_KEY) continue;
      for (const [id, reason] of Object.entries(entry.data as Record<string, string>)) {
        found.push({ id: id.replace(/^annotation::/i, ''), path: construct.node.path, reason });
      }
    }
  }
  return found;
}

describe('cdk-nag (AWS Solutions)', () => {
  for (const stage of ['paper', 'live'] as const) {
    it(`${stage}: the app synthesizes with the checks on, with no violation left`, () => {
      // synthQuantShift synthesizes with the plugin registered: an unacknowledged error would throw.
      const { app, research } = synthQuantShift(stage);
      const report = new AwsSolutionsChecks().validateScope(app);
      expect(report.violations.map((v) => `${v.severity} ${v.ruleName}`)).toEqual([]);
      expect(report.success).toBe(true);
      expect(
        Annotations.fromStack(research).findError('*', Match.stringLikeRegexp('AwsSolutions-.*')),
      ).toEqual([]);
      // Six stacks synthesized and checked twice: on 2 shared cores this can pass 30 s.
    }, 120_000);
  }

  it('does see the tree: an unencrypted, unlogged bucket fails the same checks and the synthesis', () => {
    const app = new App({ outdir: testOutdir() });
    Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
    const stack = new Stack(app, 'Control');
    new Bucket(stack, 'Careless');
    const report = new AwsSolutionsChecks().validateScope(app);
    expect(report.violations.map((v) => v.ruleName)).toEqual(
      expect.arrayContaining(['AwsSolutions-S1', 'AwsSolutions-S10']),
    );
    expect(() => Template.fromStack(stack)).toThrow(/AwsSolutions-S10/);
  });

  it('acknowledges only these findings, each with a written reason', () => {
    const { app } = synthQuantShift('paper');
    const acks = acknowledgements(app);
    for (const ack of acks) expect(ack.reason.length, ack.id).toBeGreaterThan(60);
    const ids = [...new Set(acks.map((a) => a.id.replace(/<[A-Za-z0-9]+(\.Arn)?>/g, '<id>')))].sort();
    expect(ids).toEqual(
      [
        'AwsSolutions-L1',
        'AwsSolutions-SMG4',
        'AwsSolutions-SQS3',
        'AwsSolutions-IAM5[Resource::*]',
        'AwsSolutions-IAM5[Resource::<id>/data/*]',
        'AwsSolutions-IAM5[Resource::<id>/jobs/*]',
        'AwsSolutions-IAM5[Resource::<id>/records/*]',
        'AwsSolutions-IAM5[Resource::<id>:*]',
        'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::<id>/*]',
        'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:{"Fn::Select":[6,{"Fn::Split":[":",{"Ref":"WalkForwardStateMachineAB97872B"}]}]}:*]',
        'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:{"Fn::Select":[6,{"Fn::Split":[":",{"Ref":"WalkForwardStateMachineAB97872B"}]}]}/*:*]',
      ].sort(),
    );
    // Granular: no acknowledgement of a whole rule that has findings (IAM5 always names its resource).
    expect(acks.filter((a) => a.id === 'AwsSolutions-IAM5')).toEqual([]);
    // Each on the narrowest construct: a function, its role, a secret, a queue, a role or policy.
    for (const ack of acks) {
      expect(ack.path).toMatch(
        /^QuantShift-paper-(Research\/WalkForward\/\w+|Trading\/\w+|Crypto\/\w+|Monitoring\/\w+)/,
      );
      expect(ack.path).not.toMatch(/^QuantShift-paper-\w+$/);
    }
    // The SQS3 acknowledgements are on dead-letter queues only: the schedules' (the weekly paper
    // validation's included) and the webhook function's.
    expect(acks.filter((a) => a.id === 'AwsSolutions-SQS3').map((a) => a.path)).toEqual([
      ...[
        'MarketOpenCheck',
        'GenerateSignals',
        'ExecuteOrders',
        'RiskCheck',
        'EndOfDay',
        'ValidatePaper',
      ].map((step) => `QuantShift-paper-Trading/${step}Schedule/DeadLetterQueue`),
      ...['MarketOpenCheck', 'GenerateSignals', 'ExecuteOrders', 'RiskCheck', 'EndOfDay', 'FundingRates'].map(
        (step) => `QuantShift-paper-Crypto/Crypto${step}Schedule/DeadLetterQueue`,
      ),
      'QuantShift-paper-Monitoring/Slack/DeadLetterQueue',
    ]);
  });
});
