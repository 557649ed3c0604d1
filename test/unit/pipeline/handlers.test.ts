import { readFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { PIPELINE_FUNCTIONS } from '../../../lib/constructs/backtest-pipeline.js';
import { parsePipelineEnv } from '../../../shared/runtime/pipeline.js';

/** A fresh import of a handler: its step is built once per module instance (a cold start). */
async function freshHandler(name: string) {
  vi.resetModules();
  const module = (await import(`../../../functions/pipeline-${name}/handler.ts`)) as {
    handler: (event: unknown) => Promise<unknown>;
  };
  return module.handler;
}

const example = JSON.parse(readFileSync('docs/examples/pipeline-input.json', 'utf8')) as unknown;

beforeEach(() => {
  for (const name of [
    'DATA_BUCKET',
    'TOPIC_ARN',
    'ALPACA_SECRET_ARN',
    'QUANTSHIFT_COMMIT',
    'PIPELINE_DISTRIBUTED_THRESHOLD',
    'STATE_TABLE',
  ])
    vi.stubEnv(name, undefined);
});
afterEach(() => {
  vi.unstubAllEnvs();
});

describe('the pipeline handlers', () => {
  it.each(PIPELINE_FUNCTIONS.map((name) => [name]))(
    'pipeline-%s: importing builds nothing (no environment needed until the first event)',
    async (name) => {
      expect(typeof (await freshHandler(name))).toBe('function');
    },
  );

  it('validate: fails on a bad environment, then builds once per cold start from the fixed one', async () => {
    const handler = await freshHandler('validate');
    await expect(handler(example)).rejects.toMatchObject({
      name: 'ConfigError',
      message: expect.stringMatching(/^pipeline function environment: DATA_BUCKET: /),
    });
    vi.stubEnv('DATA_BUCKET', 'bucket');
    vi.stubEnv('QUANTSHIFT_COMMIT', 'cafe123');
    await expect(handler(example)).resolves.toMatchObject({
      gitCommit: 'cafe123',
      symbols: ['SPY', 'QQQ', 'AAPL', 'MSFT'],
      from: '2019-01-01',
      to: '2025-12-31',
    });
    vi.stubEnv('QUANTSHIFT_COMMIT', 'other');
    await expect(handler(example)).resolves.toMatchObject({ gitCommit: 'cafe123' });
  });

  it('validate: a bad input fails with PipelineInputError (what the state machine catches)', async () => {
    vi.stubEnv('DATA_BUCKET', 'bucket');
    const handler = await freshHandler('validate');
    await expect(handler({ configYaml: 'x', from: 'soon' })).rejects.toMatchObject({
      name: 'PipelineInputError',
      message: expect.stringMatching(/^invalid pipeline input: .*from: /),
    });
  });

  it('notify: without TOPIC_ARN, publishing fails with a ConfigError', async () => {
    vi.stubEnv('DATA_BUCKET', 'bucket');
    const handler = await freshHandler('notify');
    await expect(handler({ ok: false, error: { Error: 'E', Cause: 'c' } })).rejects.toMatchObject({
      name: 'ConfigError',
      message: 'pipeline notify: TOPIC_ARN is not set',
    });
  });

  it('parsePipelineEnv: the environment with its defaults, a bad variable named', () => {
    expect(parsePipelineEnv({ DATA_BUCKET: 'b' })).toEqual({
      DATA_BUCKET: 'b',
      QUANTSHIFT_COMMIT: 'unknown',
      PIPELINE_DISTRIBUTED_THRESHOLD: 50_000,
    });
    expect(() => parsePipelineEnv({ DATA_BUCKET: 'b', TOPIC_ARN: 'topic' })).toThrow(
      /^pipeline function environment: TOPIC_ARN: /,
    );
  });
});
