/**
 * The grid workers' code as one plain JavaScript file, so that a worker thread starts without the
 * TypeScript loader. Run through tsx, every module of a worker is compiled with esbuild's
 * `keepNames`, which wraps each function and closure the engine creates per bar in a `__name(...)`
 * call (`Object.defineProperty` at run time): about a quarter of a worker's CPU time in the
 * research job. Each worker also inherited tsx's loader flags, and with them a module-hooks
 * thread of its own.
 *
 * The bundle (`shared/research/worker.ts` and everything it imports, dependencies included) is
 * built once with esbuild and cached in `node_modules/.cache/quantshift/`, keyed by the sha256 of
 * every input file: a changed source file rebuilds it on the next start, so the workers never run
 * stale code. Without esbuild, or when the cache cannot be written, or with
 * `QUANTSHIFT_WORKER_BUNDLE=0`, the workers load the TypeScript sources through tsx
 * (`worker-entry.mjs`), with the same results.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** Bumped when the build options change, so that an older cached bundle is not reused. */
const BUILD_FORMAT = 1;

/** How a worker thread is started: its script, and the node flags it runs with. */
export interface WorkerScript {
  readonly url: URL;
  readonly execArgv: string[] | undefined;
  /** True when the script is the cached bundle, false for the tsx entry. */
  readonly bundled: boolean;
}

interface Manifest {
  readonly format: number;
  readonly esbuild: string;
  readonly bundle: string;
  /** Input path (relative to the project root) → sha256 of its bytes. */
  readonly inputs: Readonly<Record<string, string>>;
}

interface EsbuildApi {
  readonly version: string;
  buildSync(options: Record<string, unknown>): {
    outputFiles?: { contents: Uint8Array }[];
    metafile?: { inputs: Record<string, unknown> };
  };
}

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SOURCE = fileURLToPath(new URL('./worker.ts', import.meta.url));
const TSX_ENTRY = new URL('./worker-entry.mjs', import.meta.url);
const CACHE_DIR = join(ROOT, 'node_modules', '.cache', 'quantshift');
const MANIFEST = join(CACHE_DIR, 'research-worker.json');

let resolved: WorkerScript | undefined;

/**
 * The script the pool's workers run: the cached bundle (rebuilt when any input changed), else the
 * tsx entry. Resolved once per process.
 */
export function workerScript(): WorkerScript {
  resolved ??= resolveWorkerScript();
  return resolved;
}

function resolveWorkerScript(): WorkerScript {
  const fallback: WorkerScript = { url: TSX_ENTRY, execArgv: undefined, bundled: false };
  if (process.env.QUANTSHIFT_WORKER_BUNDLE === '0') return fallback;
  const esbuild = loadEsbuild();
  if (esbuild === undefined) return fallback;
  try {
    const file = cachedBundle(esbuild) ?? buildBundle(esbuild);
    return { url: pathToFileURL(file), execArgv: withoutTsxLoader(process.execArgv), bundled: true };
  } catch {
    // A read-only or missing cache folder, or a failed build: the tsx entry runs the same code.
    return fallback;
  }
}

function loadEsbuild(): EsbuildApi | undefined {
  try {
    return createRequire(import.meta.url)('esbuild') as EsbuildApi;
  } catch {
    return undefined;
  }
}

function sha256(bytes: Uint8Array | string): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** The cached bundle when its manifest matches this esbuild and every input's current bytes. */
function cachedBundle(esbuild: EsbuildApi): string | undefined {
  let manifest: Manifest;
  try {
    manifest = JSON.parse(readFileSync(MANIFEST, 'utf8')) as Manifest;
  } catch {
    return undefined;
  }
  if (manifest.format !== BUILD_FORMAT || manifest.esbuild !== esbuild.version) return undefined;
  for (const [input, hash] of Object.entries(manifest.inputs)) {
    try {
      if (sha256(readFileSync(join(ROOT, input))) !== hash) return undefined;
    } catch {
      return undefined;
    }
  }
  const file = join(CACHE_DIR, manifest.bundle);
  return existsSync(file) ? file : undefined;
}

/** Builds the bundle, writes it under a name made from its content, then the manifest that points to it. */
function buildBundle(esbuild: EsbuildApi): string {
  const result = esbuild.buildSync({
    entryPoints: [SOURCE],
    absWorkingDir: ROOT,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: `node${process.versions.node}`,
    write: false,
    metafile: true,
    outfile: join(CACHE_DIR, 'research-worker.mjs'),
    logLevel: 'silent',
    legalComments: 'none',
  });
  const contents = result.outputFiles?.[0]?.contents;
  if (contents === undefined || result.metafile === undefined) throw new Error('esbuild wrote no bundle');
  const inputs: Record<string, string> = {};
  for (const input of Object.keys(result.metafile.inputs)) {
    inputs[input] = sha256(readFileSync(join(ROOT, input)));
  }
  const bundle = `research-worker-${sha256(contents).slice(0, 16)}.mjs`;
  mkdirSync(CACHE_DIR, { recursive: true });
  writeAtomically(join(CACHE_DIR, bundle), contents);
  const manifest: Manifest = { format: BUILD_FORMAT, esbuild: esbuild.version, bundle, inputs };
  writeAtomically(MANIFEST, `${JSON.stringify(manifest, null, 1)}\n`);
  removeStaleBundles(bundle);
  return join(CACHE_DIR, bundle);
}

/** Writes through a unique temporary file and a rename, so a concurrent reader never sees half a file. */
function writeAtomically(file: string, contents: Uint8Array | string): void {
  const temporary = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  writeFileSync(temporary, contents);
  renameSync(temporary, file);
}

function removeStaleBundles(current: string): void {
  for (const name of readdirSync(CACHE_DIR)) {
    if (/^research-worker-[0-9a-f]{16}\.mjs$/.test(name) && name !== current) {
      rmSync(join(CACHE_DIR, name), { force: true });
    }
  }
}

/**
 * The parent's node flags less tsx's loader (`--import .../tsx/...`, `--require .../tsx/...`): a
 * worker inherits them by default, and the bundle needs no loader.
 */
export function withoutTsxLoader(execArgv: readonly string[]): string[] {
  const loaderFlags = new Set(['--import', '--require', '-r', '--loader', '--experimental-loader']);
  const isTsx = (value: string) => /[\\/]tsx[\\/]/.test(value) || value === 'tsx' || value.startsWith('tsx/');
  const kept: string[] = [];
  for (let i = 0; i < execArgv.length; i++) {
    const arg = execArgv[i] as string;
    const eq = arg.indexOf('=');
    if (eq > 0 && loaderFlags.has(arg.slice(0, eq)) && isTsx(arg.slice(eq + 1))) continue;
    if (loaderFlags.has(arg) && i + 1 < execArgv.length && isTsx(execArgv[i + 1] as string)) {
      i++;
      continue;
    }
    kept.push(arg);
  }
  return kept;
}
