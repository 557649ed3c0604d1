import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { synthesizePipeline } from '../../lib/pipeline-definition.js';
import { FolderMarketData } from '../../shared/adapters/fs/market-data.js';
import { FolderObjectStore } from '../../shared/adapters/local/folder-store.js';
import { ListNotifier } from '../../shared/adapters/local/list-notifier.js';
import {
  itemReaderStateName,
  PipelineExecutionError,
  runPipelineLocally,
  withLocalItemReaders,
} from '../../shared/pipeline/local-runner.js';
import { createPipelineSteps } from '../../shared/pipeline/steps.js';

const dir = mkdtempSync(join(tmpdir(), 'qs-pipeline-distributed-'));
const configPath = join(dir, 'small.yaml');
writeFileSync(
  configPath,
  readFileSync('config/equity-strategy.yaml', 'utf8')
    .replace('dir: data ', `dir: ${resolve('data')} `)
    .replace('[SPY, QQQ, AAPL, MSFT]', '[SPY, QQQ]')
    .replace('fast: { from: 5, to: 30, step: 5 }', 'fast: { from: 5, to: 15, step: 5 }')
    .replace('slow: { from: 20, to: 120, step: 10 }', 'slow: { from: 20, to: 60, step: 20 }'),
);
const input = { configYaml: readFileSync(configPath, 'utf8'), from: '2021-01-11', to: '2026-01-08' };

let pipeline: Awaited<ReturnType<typeof synthesizePipeline>>;
beforeAll(async () => {
  pipeline = await synthesizePipeline();
});

function steps(state: string, distributedThreshold: number) {
  const store = new FolderObjectStore(join(dir, state));
  return {
    store,
    steps: createPipelineSteps({
      store,
      notifier: new ListNotifier(),
      now: () => new Date(),
      gitCommit: 'test-commit',
      distributedThreshold,
      marketData: async () => new FolderMarketData('data'),
    }),
  };
}

describe('the pipeline’s Distributed Map branch, run locally', () => {
  it('reads the items the ItemReader would read and gives the inline branch’s document', async () => {
    const inline = steps('inline', Number.POSITIVE_INFINITY);
    const inlineRun = await runPipelineLocally(pipeline.definition, input, inline.steps);
    const distributed = steps('distributed', 0);
    const keysRead: string[] = [];
    const run = await runPipelineLocally(pipeline.definition, input, distributed.steps, {
      readItems: async (key) => {
        keysRead.push(key);
        return JSON.parse((await distributed.store.getText(key)) as string) as unknown[];
      },
    });
    const states = run.stateOutputs.map((s) => s.state);
    expect(states).toEqual(
      expect.arrayContaining([itemReaderStateName('DistributedWindows'), 'DistributedWindows', 'Aggregate']),
    );
    expect(states).not.toContain('InlineWindows');
    expect(inlineRun.stateOutputs.map((s) => s.state)).toContain('InlineWindows');
    expect(keysRead).toEqual([expect.stringMatching(/^jobs\/[0-9a-f]+\/items\.json$/)]);
    const document = async (store: FolderObjectStore, output: unknown) => {
      const { generatedAt, elapsedMs, ...rest } = JSON.parse(
        (await store.getText((output as { documentKey: string }).documentKey)) as string,
      ) as Record<string, unknown>;
      return rest;
    };
    const expected = await document(inline.store, inlineRun.output);
    expect(await document(distributed.store, run.output)).toEqual(expected);
    expect((expected.windows as unknown[]).length).toBeGreaterThan(6);
  });

  it('puts the reader in front of the Map, keeps its processor, concurrency and catchers, and names the functions’ memory', () => {
    const { definition } = withLocalItemReaders(pipeline.definition, async () => []);
    const states = (definition as { States: Record<string, Record<string, unknown>> }).States;
    const original = (pipeline.definition as { States: Record<string, Record<string, unknown>> }).States;
    const reader = states[itemReaderStateName('DistributedWindows')];
    expect(reader).toMatchObject({ Type: 'Task', ResultPath: '$.items', Next: 'DistributedWindows' });
    expect(reader?.Catch).toEqual(original.DistributedWindows?.Catch);
    expect(states.DistributedWindows).toMatchObject({ ItemsPath: '$.items', MaxConcurrency: 100 });
    expect(states.DistributedWindows?.ItemReader).toBeUndefined();
    expect(JSON.stringify(states.UseDistributedMap)).toContain(itemReaderStateName('DistributedWindows'));
    // the synthesized definition itself is left as it was
    expect(original.DistributedWindows?.ItemReader).toBeDefined();
    const optimize = Object.entries(pipeline.functions).find(([id]) =>
      id.startsWith('WalkForwardOptimizeWindowFunction'),
    );
    expect(optimize?.[1]).toMatchObject({ memorySize: 1769, architectures: ['arm64'] });
  });

  it('fails the execution when the items key is missing from the state', async () => {
    const { definition, handlers } = withLocalItemReaders(pipeline.definition, async () => []);
    expect(Object.keys(handlers)).toEqual([itemReaderStateName('DistributedWindows')]);
    await expect(handlers[itemReaderStateName('DistributedWindows')]?.({})).rejects.toBeInstanceOf(
      PipelineExecutionError,
    );
    expect(definition).not.toBe(pipeline.definition);
  });
});
