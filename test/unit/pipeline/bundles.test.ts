import { join } from 'node:path';
import { build } from 'esbuild';
import { beforeAll, describe, expect, it } from 'vitest';
import { PIPELINE_FUNCTIONS, type PipelineFunctionName } from '../../../lib/constructs/backtest-pipeline.js';
import { functionBuildOptions } from '../../../lib/constructs/trading-function.js';
import { repoRoot } from '../../../lib/paths.js';

/** The inputs that put bytes into a function's bundle, built as the CDK builds it (bench/bundles.ts). */
async function bundleInputs(name: PipelineFunctionName): Promise<string[]> {
  const { metafile } = await build({
    ...functionBuildOptions(
      join(repoRoot, 'functions', `pipeline-${name}`, 'handler.ts'),
      join(repoRoot, 'out', `pipeline-${name}`, 'index.mjs'),
    ),
    write: false,
    logLevel: 'error',
    metafile: true,
  });
  const output = Object.values(metafile.outputs).find((o) => o.entryPoint !== undefined);
  if (output === undefined) throw new Error(`no bundle for pipeline-${name}`);
  return Object.entries(output.inputs)
    .filter(([, input]) => input.bytesInOutput > 0)
    .map(([path]) => path);
}

const packageOf = (input: string) => {
  const at = input.lastIndexOf('node_modules/');
  if (at === -1) return undefined;
  const [scope, name] = input.slice(at + 'node_modules/'.length).split('/');
  return scope?.startsWith('@') ? `${scope}/${name}` : scope;
};

/** The packages only some steps may bundle, and which. */
const ONLY_IN: Record<string, readonly PipelineFunctionName[]> = {
  '@alpacahq/alpaca-trade-api': ['prepare'],
  '@aws-sdk/client-secrets-manager': ['prepare'],
  '@aws-sdk/client-sns': ['notify'],
  '@aws-sdk/client-dynamodb': ['aggregate'],
  '@aws-sdk/lib-dynamodb': ['aggregate'],
  'vega-lite': ['aggregate'],
  'vega-scenegraph': ['aggregate'],
  '@aws-sdk/client-s3': ['check-cache', 'prepare', 'optimize-window', 'evaluate-window', 'aggregate'],
  // The config schema parses YAML: the steps that never read a config do not carry it.
  yaml: ['validate', 'prepare', 'optimize-window', 'evaluate-window', 'aggregate'],
  'cli-progress': [],
};

describe('the pipeline functions bundle only what their step uses', () => {
  const inputs = new Map<PipelineFunctionName, string[]>();
  beforeAll(async () => {
    for (const name of PIPELINE_FUNCTIONS) inputs.set(name, await bundleInputs(name));
  }, 120_000);

  it.each(Object.entries(ONLY_IN))('%s: only in the steps that use it', (pkg, steps) => {
    const having = PIPELINE_FUNCTIONS.filter((name) =>
      inputs.get(name)?.some((input) => packageOf(input) === pkg),
    );
    expect(having).toEqual(PIPELINE_FUNCTIONS.filter((name) => steps.includes(name)));
  });

  it.each(PIPELINE_FUNCTIONS.map((name) => [name]))(
    'pipeline-%s: its own step module, no other step, no composition, no CLI code',
    (name) => {
      const own = (inputs.get(name) ?? []).filter((input) => packageOf(input) === undefined);
      expect(own).toContain(`shared/pipeline/steps/${name}.ts`);
      expect(own.filter((input) => input.startsWith('shared/pipeline/steps/'))).toEqual([
        `shared/pipeline/steps/${name}.ts`,
      ]);
      expect(own).not.toContain('shared/pipeline/steps.ts');
      expect(own).not.toContain('shared/pipeline/local-runner.ts');
      expect(own).not.toContain('shared/research/pool.ts');
      expect(own.filter((input) => input.startsWith('shared/cli/'))).toEqual([]);
    },
  );
});
