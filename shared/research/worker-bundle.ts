/**
 * The grid workers' code as one plain JavaScript file, so that a worker thread starts without the
 * TypeScript loader. Run through tsx, every module of a worker is compiled with esbuild's
 * `keepNames`, which wraps each function and closure the engine creates per bar in a `__name(...)`
 * call (`Object.defineProperty` at run time): about a quarter of a worker's CPU time in the
 * research job. Each worker also inherited tsx's loader flags, and with them a module-hooks
 * thread of its own.
 *
 * The bundle (`shared/research/worker.ts` and everything it imports, dependencies included) is
 * built once with esbuild and cached in `node_modules/.cache/quantshift/` (`bundle-cache.mjs`),
 * keyed by the sha256 of every input file: a changed source file rebuilds it on the next start, so
 * the workers never run stale code. Without esbuild, or when the cache cannot be written, or with
 * `QUANTSHIFT_WORKER_BUNDLE=0`, the workers load the TypeScript sources through tsx
 * (`worker-entry.mjs`), with the same results.
 */
import { pathToFileURL } from 'node:url';
import { type BundleSpec, bundledUrl, bundleFor, loadEsbuild } from './bundle-cache.mjs';

/** How a worker thread is started: its script, and the node flags it runs with. */
export interface WorkerScript {
  readonly url: URL;
  readonly execArgv: string[] | undefined;
  /** True when the script is the cached bundle, false for the tsx entry. */
  readonly bundled: boolean;
}

/** The workers' bundle: `shared/research/worker.ts` and everything it imports. */
const WORKER_BUNDLE: BundleSpec = { name: 'research-worker', entry: 'shared/research/worker.ts', format: 2 };
const TSX_ENTRY = new URL('./worker-entry.mjs', import.meta.url);

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
    const file = bundleFor(esbuild, WORKER_BUNDLE);
    return { url: pathToFileURL(file), execArgv: bundleExecArgv(process.execArgv), bundled: true };
  } catch {
    // A read-only or missing cache folder, or a failed build: the tsx entry runs the same code.
    return fallback;
  }
}

/**
 * How to start a child process or thread on the cached bundle of `spec` (the parent's node flags
 * less tsx's loader), or on `fallback` (its TypeScript sources through tsx) when `disabledBy` is `0`
 * or the bundle cannot be built (see `bundledUrl`; `report` hears a build's time or failure).
 */
export async function bundledScript(
  spec: BundleSpec,
  disabledBy: string,
  fallback: WorkerScript,
  report?: (line: string) => void,
): Promise<WorkerScript> {
  const url = await bundledUrl(spec, disabledBy, report);
  if (url === undefined) return fallback;
  return { url, execArgv: bundleExecArgv(process.execArgv), bundled: true };
}

/**
 * The node flags a bundled child or thread gets: undefined (the parent's, inherited) unless the
 * parent runs tsx's loader, then the parent's per-thread flags less the loader. A worker thread refuses V8 and
 * process-wide flags given explicitly (`ERR_WORKER_INVALID_EXEC_ARGV`: `node --max-old-space-size=4096`
 * or `--single-threaded-gc` made every worker fail) but inherits them.
 */
export function bundleExecArgv(execArgv: readonly string[]): string[] | undefined {
  const kept = withoutTsxLoader(execArgv);
  if (kept.length === execArgv.length) return undefined;
  // Given explicitly, only the flags a thread accepts: V8's and the process's would fail it (the
  // thread then runs with the process's heap limits and V8 settings, which it shares anyway).
  return kept.filter(threadAccepts);
}

/** Node's per-thread flags a bundled thread may be given (and their values), the rest dropped. */
function threadAccepts(arg: string, index: number, args: readonly string[]): boolean {
  const name = arg.startsWith('--') ? (arg.split('=')[0] as string) : arg;
  if (THREAD_FLAGS.has(name) || name.startsWith('--experimental-')) return true;
  // The value of a kept flag given as its own argument (`--require ./hook.cjs`, `--conditions x`).
  const previous = index > 0 ? (args[index - 1] as string) : '';
  return !arg.startsWith('-') && THREAD_FLAGS_WITH_VALUE.has(previous);
}

const THREAD_FLAGS_WITH_VALUE = new Set(['--require', '-r', '--import', '--conditions', '-C']);
const THREAD_FLAGS = new Set([
  ...THREAD_FLAGS_WITH_VALUE,
  '--enable-source-maps',
  '--no-warnings',
  '--trace-warnings',
  '--trace-uncaught',
  '--no-deprecation',
  '--trace-deprecation',
  '--throw-deprecation',
]);

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
