import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { synthesizePipelineDefinition } from '../../lib/pipeline-definition.js';
import { createStateTable, DynamoStateStore } from '../../shared/adapters/dynamodb/state-store.js';
import { FolderMarketData } from '../../shared/adapters/fs/market-data.js';
import { startLocalDynamo } from '../../shared/adapters/local/dynamodb.js';
import { FolderObjectStore } from '../../shared/adapters/local/folder-store.js';
import { ListNotifier } from '../../shared/adapters/local/list-notifier.js';
import { walkForwardCommand } from '../../shared/cli/research.js';
import { parseConfig } from '../../shared/core/config/schema.js';
import { sleeveHash } from '../../shared/core/config/sleeve-hash.js';
import { PipelineExecutionError, runPipelineLocally } from '../../shared/pipeline/local-runner.js';
import { createPipelineSteps } from '../../shared/pipeline/steps.js';
import { capture } from '../helpers/capture.js';

const dir = mkdtempSync(join(tmpdir(), 'qs-pipeline-'));
const configPath = join(dir, 'small.yaml');
writeFileSync(
  configPath,
  readFileSync('config/equity-strategy.yaml', 'utf8')
    .replace('dir: data ', `dir: ${resolve('data')} `)
    .replace('[SPY, QQQ, AAPL, MSFT]', '[SPY, QQQ]')
    .replace('fast: { from: 5, to: 30, step: 5 }', 'fast: { from: 5, to: 15, step: 5 }')
    .replace('slow: { from: 20, to: 120, step: 10 }', 'slow: { from: 20, to: 60, step: 20 }'),
);

let definition: object;
beforeAll(async () => {
  definition = await synthesizePipelineDefinition();
});

async function walkForwardJson(extra: string[]) {
  const stdout = capture();
  const stderr = capture();
  await walkForwardCommand(['--config', configPath, '--format', 'json', ...extra], {
    stdout: stdout.stream,
    stderr: stderr.stream,
  });
  return JSON.parse(stdout.text());
}

function localSteps(stateDir: string, validations?: DynamoStateStore) {
  const notifier = new ListNotifier();
  const steps = createPipelineSteps({
    ...(validations === undefined ? {} : { validations }),
    store: new FolderObjectStore(stateDir),
    notifier,
    now: () => new Date(),
    gitCommit: 'test-commit',
    distributedThreshold: Number.POSITIVE_INFINITY,
    marketData: async () => new FolderMarketData('data'),
  });
  return { steps, notifier };
}

describe('the walk-forward pipeline, run locally on the synthesized state machine', () => {
  it('gives exactly the in-process result: the documents differ only in engine, generatedAt and elapsedMs', async () => {
    const inProcess = await walkForwardJson([]);
    const local = await walkForwardJson([
      '--engine',
      'stepfunctions',
      '--state-dir',
      join(dir, 'state-parity'),
    ]);
    expect(local.engine).toBe('stepfunctions');
    expect(inProcess.engine).toBe('in-process');
    const strip = ({ engine, generatedAt, elapsedMs, ...rest }: Record<string, unknown>) => rest;
    expect(strip(local)).toEqual(strip(inProcess));
    expect(local.windows.length).toBeGreaterThan(6);
  });

  it('keeps every state output far below the 256 KB limit, and a repeated input returns the stored result', async () => {
    const dynamo = await startLocalDynamo();
    await createStateTable(dynamo.client, 'state');
    const validations = new DynamoStateStore(dynamo.client, 'state');
    const { steps, notifier } = localSteps(join(dir, 'state-sizes'), validations);
    const configYaml = readFileSync(configPath, 'utf8');
    const input = { configYaml, from: '2021-01-11', to: '2026-01-08' };
    const first = await runPipelineLocally(definition, input, steps);
    // The decision is recorded for the live stage's gate, on the hash of the config text it ran.
    const summary = first.output as { jobId: string; decision: { proceed: boolean; failed: string[] } };
    expect(await validations.getValidation('ma-crossover-atr')).toMatchObject({
      configHash: createHash('sha256').update(configYaml).digest('hex'),
      // The live gate compares the sleeve hash: the config's one sleeve, named after it.
      sleeveHash: sleeveHash(parseConfig(configYaml, configPath), 'ma-crossover-atr'),
      proceed: summary.decision.proceed,
      failed: summary.decision.failed,
      jobId: summary.jobId,
    });
    await dynamo.close();
    const largest = Math.max(...first.stateOutputs.map((s) => s.bytes));
    expect(largest).toBeLessThan(16 * 1024);
    expect(first.stateOutputs.map((s) => s.state)).toEqual(
      expect.arrayContaining([
        'ValidateInput',
        'CheckCache',
        'PrepareData',
        'OptimizeWindow',
        'EvaluateWindow',
        'Aggregate',
      ]),
    );
    const again = await runPipelineLocally(definition, input, steps);
    expect(again.output).toEqual(first.output);
    expect(again.stateOutputs.map((s) => s.state)).not.toContain('PrepareData');
    expect(notifier.sent).toHaveLength(1);
    expect(notifier.sent[0]?.subject).toMatch(/^Walk-forward [0-9a-f]{8}: (proceed|refine)$/);
  });

  it('caches market data across jobs: a second job on the same symbols and span fetches nothing', async () => {
    let fetches = 0;
    const steps = createPipelineSteps({
      store: new FolderObjectStore(join(dir, 'state-cache')),
      notifier: new ListNotifier(),
      now: () => new Date(),
      gitCommit: 'test-commit',
      distributedThreshold: Number.POSITIVE_INFINITY,
      marketData: async () => {
        fetches++;
        return new FolderMarketData('data');
      },
    });
    const yaml = readFileSync(configPath, 'utf8');
    const span = { from: '2021-01-11', to: '2026-01-08' };
    const first = await steps.validate({ configYaml: yaml, ...span });
    const second = await steps.validate({
      configYaml: yaml.replace('slippageBps: 5', 'slippageBps: 6'),
      ...span,
    });
    expect(second.jobId).not.toBe(first.jobId);
    const a = await steps.prepare(first);
    const b = await steps.prepare(second);
    expect(fetches).toBe(1);
    expect(b.itemCount).toBe(a.itemCount);
  });

  it('fails bad input at ValidateInput with every bad field, and notifies', async () => {
    const { steps, notifier } = localSteps(join(dir, 'state-bad'));
    const error = await runPipelineLocally(
      definition,
      { configYaml: 'name: x\nwatchlist: [BTC/USD]\n', from: '2021-13-01', extra: 1 },
      steps,
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PipelineExecutionError);
    const message = (error as PipelineExecutionError).message;
    expect(message).toMatch(/from: expected a date/);
    expect(message).toMatch(/Unrecognized key: "extra"|extra/);
    expect(message).toMatch(/config\.watchlist\.0: crypto symbols are not allowed/);
    expect(message).toMatch(/config\.strategy/);
    expect((error as PipelineExecutionError).error).toBe('PipelineInputError');
    expect(notifier.sent.map((n) => n.severity)).toEqual(['critical']);
  });
});
