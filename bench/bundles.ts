/**
 * Bundle size and cold import time of every Lambda function (`functions/<name>/handler.ts`, found by
 * listing the folder, so new functions are included).
 *
 * Each handler is bundled with esbuild's JS API with the options the CDK construct gives
 * `NodejsFunction` (`lib/constructs/trading-function.ts`): ESM, target node22, platform node, minify,
 * main fields module/main, the ESM `require` banner, `LOCAL_ONLY_MODULES` external, keepNames, an
 * external source map without sources content, to `index.mjs` as CDK names it. `bytes` and
 * `gzipBytes` are those of `index.mjs` (the map is shipped beside it: `sourcemapBytes`);
 * `topInputs` are the packages (or `(own code)`) that put the most bytes into the bundle.
 *
 * `coldImportMs` is the median over fresh `node` processes of the time `await import()` of the
 * bundle takes, measured inside the child with `process.hrtime` (process start-up excluded), with
 * `--enable-source-maps` as the functions run (`NODE_OPTIONS` in the construct: Node then reads and
 * parses the map at load). The handlers build their clients lazily, on the first invocation, so
 * importing needs only harmless Powertools variables; nothing is invoked.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build, type Metafile } from 'esbuild';
import { functionBuildOptions } from '../lib/constructs/trading-function.js';
import { repoRoot } from '../lib/paths.js';
import { median, roundMs } from './stats.js';

export interface BundleBenchmark {
  readonly name: string;
  readonly bytes: number;
  readonly gzipBytes: number;
  readonly sourcemapBytes: number;
  readonly coldImportMs: number;
  readonly topInputs: readonly { readonly name: string; readonly bytes: number }[];
}

/** Bundles above this size get their dominant inputs listed on stderr. */
const LARGE_BYTES = 1.5 * 1024 * 1024;

/** The package an esbuild input path belongs to (`@aws-sdk/client-dynamodb`), or `(own code)`. */
function packageOf(input: string): string {
  const at = input.lastIndexOf('node_modules/');
  if (at === -1) return '(own code)';
  const parts = input.slice(at + 'node_modules/'.length).split('/');
  return parts[0]?.startsWith('@') ? `${parts[0]}/${parts[1]}` : (parts[0] as string);
}

function bytesByPackage(metafile: Metafile, outfile: string): { name: string; bytes: number }[] {
  const output = Object.entries(metafile.outputs).find(([path]) => path.endsWith(outfile))?.[1];
  if (output === undefined) throw new Error(`bench: no ${outfile} in the esbuild metafile`);
  const totals = new Map<string, number>();
  for (const [path, input] of Object.entries(output.inputs)) {
    const name = packageOf(path);
    totals.set(name, (totals.get(name) ?? 0) + input.bytesInOutput);
  }
  return [...totals].map(([name, bytes]) => ({ name, bytes })).sort((a, b) => b.bytes - a.bytes);
}

/** The child: imports the bundle once and prints the milliseconds it took. */
const CHILD = [
  'const t0 = process.hrtime.bigint();',
  'await import(process.env.BENCH_BUNDLE_URL);',
  'process.stdout.write(String(Number(process.hrtime.bigint() - t0) / 1e6));',
].join('\n');

function coldImportMs(file: string, serviceName: string, runs: number): number {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const child = spawnSync(process.execPath, ['--enable-source-maps', '--input-type=module', '-e', CHILD], {
      encoding: 'utf8',
      env: {
        PATH: process.env.PATH ?? '',
        BENCH_BUNDLE_URL: pathToFileURL(file).href,
        AWS_REGION: 'us-east-1',
        POWERTOOLS_SERVICE_NAME: serviceName,
        POWERTOOLS_METRICS_NAMESPACE: 'QuantShift',
        POWERTOOLS_LOG_LEVEL: 'INFO',
        POWERTOOLS_TRACE_DISABLED: 'true',
        QUANTSHIFT_COMMIT: 'bench',
      },
    });
    const ms = Number(child.stdout);
    if (child.status !== 0 || !Number.isFinite(ms)) {
      throw new Error(
        `bench: importing the ${serviceName} bundle failed (exit ${child.status}): ${child.stderr}`,
      );
    }
    times.push(ms);
  }
  return median(times);
}

/** Bundles every function into a temp folder, measures it, and removes the folder. */
export async function runBundleBenchmarks(options: { runs?: number } = {}): Promise<BundleBenchmark[]> {
  const functionsDir = join(repoRoot, 'functions');
  const names = readdirSync(functionsDir)
    .filter((name) => statSync(join(functionsDir, name, 'handler.ts'), { throwIfNoEntry: false })?.isFile())
    .sort();
  const outDir = mkdtempSync(join(tmpdir(), 'qs-bench-bundles-'));
  const results: BundleBenchmark[] = [];
  try {
    for (const name of names) {
      const outfile = join(outDir, name, 'index.mjs');
      const built = await build({
        ...functionBuildOptions(join(functionsDir, name, 'handler.ts'), outfile),
        sourcemap: true,
        sourcesContent: false,
        logLevel: 'warning',
        metafile: true,
      });
      const code = readFileSync(outfile);
      const packages = bytesByPackage(built.metafile, relative(repoRoot, outfile));
      const result: BundleBenchmark = {
        name,
        bytes: code.length,
        gzipBytes: gzipSync(code).length,
        sourcemapBytes: statSync(`${outfile}.map`).size,
        coldImportMs: roundMs(coldImportMs(outfile, name, options.runs ?? 5)),
        topInputs: packages.slice(0, 3),
      };
      results.push(result);
      process.stderr.write(
        `bench: bundle ${name}: ${(result.bytes / 1024).toFixed(0)} KiB ` +
          `(${(result.gzipBytes / 1024).toFixed(0)} KiB gzip), cold import ${result.coldImportMs} ms\n`,
      );
      if (result.bytes > LARGE_BYTES) {
        const top = packages
          .slice(0, 8)
          .map((p) => `${p.name} ${(p.bytes / 1024).toFixed(0)} KiB`)
          .join(', ');
        process.stderr.write(`bench:   over 1.5 MB; largest inputs by package: ${top}\n`);
      }
    }
  } finally {
    rmSync(outDir, { recursive: true, force: true });
  }
  return results;
}
