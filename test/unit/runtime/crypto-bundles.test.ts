import { join } from 'node:path';
import { build } from 'esbuild';
import { beforeAll, describe, expect, it } from 'vitest';
import { functionBuildOptions } from '../../../lib/constructs/trading-function.js';
import { repoRoot } from '../../../lib/paths.js';

/**
 * The crypto bot's Lambda bundles, built as the CDK builds them: they carry only what the crypto
 * runtime imports (Coinbase over fetch and jose), never the Alpaca SDK (about 370 KB minified),
 * which only the equity runtime (`shared/runtime/equity-live.ts`) imports.
 */
const CRYPTO_FUNCTIONS = [
  'crypto-market-open-check',
  'crypto-generate-signals',
  'crypto-execute-orders',
  'crypto-risk-check',
  'crypto-end-of-day',
  'crypto-funding-rates',
  'crypto-kill-switch',
] as const;

async function bundleInputs(name: string): Promise<string[]> {
  const { metafile } = await build({
    ...functionBuildOptions(
      join(repoRoot, 'functions', name, 'handler.ts'),
      join(repoRoot, 'out', name, 'index.mjs'),
    ),
    write: false,
    logLevel: 'error',
    metafile: true,
  });
  const output = Object.values(metafile.outputs).find((o) => o.entryPoint !== undefined);
  if (output === undefined) throw new Error(`no bundle for ${name}`);
  return Object.entries(output.inputs)
    .filter(([, input]) => input.bytesInOutput > 0)
    .map(([path]) => path);
}

describe('the crypto functions bundle only what the crypto runtime imports', () => {
  const inputs = new Map<string, string[]>();
  beforeAll(async () => {
    for (const name of [...CRYPTO_FUNCTIONS, 'execute-orders']) inputs.set(name, await bundleInputs(name));
  }, 180_000);

  it.each(CRYPTO_FUNCTIONS)('%s: no Alpaca SDK, no Alpaca adapter; the Coinbase adapter', (name) => {
    const files = inputs.get(name) ?? [];
    expect(files.filter((f) => f.includes('node_modules/@alpacahq/'))).toEqual([]);
    expect(files.filter((f) => /shared\/adapters\/alpaca\/(broker|market-data)\.ts$/.test(f))).toEqual([]);
    expect(files.some((f) => f.endsWith('shared/adapters/coinbase/broker.ts'))).toBe(true);
  });

  it('the equity functions still carry it (the check is not vacuous)', () => {
    const files = inputs.get('execute-orders') ?? [];
    expect(files.some((f) => f.includes('node_modules/@alpacahq/'))).toBe(true);
    expect(files.some((f) => f.endsWith('shared/adapters/coinbase/broker.ts'))).toBe(false);
  });
});
