import {
  type DescribeExecutionCommand,
  ExecutionAlreadyExists,
  StartExecutionCommand,
} from '@aws-sdk/client-sfn';
import { describe, expect, it } from 'vitest';
import { pipelineCommand, type SfnSender } from '../../../shared/cli/pipeline.js';
import { capture } from '../../helpers/capture.js';

/** Stands in for AWS Step Functions (which cannot run here): remembers execution names. */
class FakeStepFunctions implements SfnSender {
  readonly names = new Set<string>();
  readonly inputs: string[] = [];
  async send(command: StartExecutionCommand | DescribeExecutionCommand): Promise<unknown> {
    if (command instanceof StartExecutionCommand) {
      const name = command.input.name as string;
      if (this.names.has(name)) throw new ExecutionAlreadyExists({ message: 'exists', $metadata: {} });
      this.names.add(name);
      this.inputs.push(command.input.input as string);
      return { executionArn: `arn:aws:states:us-east-1:123456789012:execution:Pipeline:${name}` };
    }
    return { status: 'SUCCEEDED', output: '{"jobId":"x"}' };
  }
}

const arn = 'arn:aws:states:us-east-1:123456789012:stateMachine:Pipeline';

describe('quantshift pipeline start', () => {
  it('names the execution from a hash of the input; a repeated start reports the existing execution', async () => {
    const sfn = new FakeStepFunctions();
    const run = async () => {
      const out = capture();
      await pipelineCommand(
        [
          'start',
          '--config',
          'config/equity-strategy.yaml',
          '--state-machine-arn',
          arn,
          '--from',
          '2021-01-11',
          '--to',
          '2026-01-08',
        ],
        { stdout: out.stream, stderr: capture().stream },
        sfn,
      );
      return JSON.parse(out.text());
    };
    const first = await run();
    expect(first).toMatchObject({ started: true, name: expect.stringMatching(/^wf-[0-9a-f]{32}$/) });
    expect(JSON.parse(sfn.inputs[0] as string)).toMatchObject({
      configYaml: expect.stringContaining('watchlist'),
      from: '2021-01-11',
    });
    const second = await run();
    expect(second).toMatchObject({
      started: false,
      name: first.name,
      status: 'SUCCEEDED',
      output: { jobId: 'x' },
    });
  });

  it('validates the input before starting anything', async () => {
    const sfn = new FakeStepFunctions();
    await expect(
      pipelineCommand(
        ['start', '--config', 'config/equity-strategy.yaml', '--state-machine-arn', arn, '--from', 'soon'],
        { stdout: capture().stream, stderr: capture().stream },
        sfn,
      ),
    ).rejects.toThrow(/from: expected a date/);
    expect(sfn.names.size).toBe(0);
  });
});

describe('the example console input', () => {
  it('is valid pipeline input, and the README shows it', async () => {
    const { readFileSync } = await import('node:fs');
    const { createPipelineSteps } = await import('../../../shared/pipeline/steps.js');
    const text = readFileSync('docs/examples/pipeline-input.json', 'utf8');
    const steps = createPipelineSteps({
      store: { getText: async () => undefined, putText: async () => {} },
      notifier: { publish: async () => {} },
      marketData: async () => {
        throw new Error('not used');
      },
      now: () => new Date('2026-01-09T12:00:00Z'),
      gitCommit: 'test',
      distributedThreshold: 1,
    });
    const spec = await steps.validate(JSON.parse(text));
    expect(spec).toMatchObject({
      symbols: ['SPY', 'QQQ', 'AAPL', 'MSFT'],
      from: '2019-01-01',
      to: '2025-12-31',
    });
    const shown = /```json\n(\{\n {2}"config"[\s\S]*?\n\})\n```/.exec(readFileSync('README.md', 'utf8'));
    expect(JSON.parse(shown?.[1] ?? 'null')).toEqual(JSON.parse(text));
  });
});
