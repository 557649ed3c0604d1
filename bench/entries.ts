/**
 * The scripts the bench starts besides its own (bench/start.mjs): each the cached esbuild bundle of
 * its TypeScript entry, as production runs the code, rebuilt when a source changed (the build's
 * time is logged); under `QUANTSHIFT_BENCH_BUNDLE=0`, or without esbuild, the sources through tsx.
 * The research pool's worker threads run their own bundle (shared/research/worker-bundle.ts,
 * `QUANTSHIFT_WORKER_BUNDLE=0` for tsx).
 */
import { sourceBundle } from '../shared/research/bundle-cache.mjs';
import { bundledScript, type WorkerScript, withoutTsxLoader } from '../shared/research/worker-bundle.js';

const DISABLED_BY = 'QUANTSHIFT_BENCH_BUNDLE';
const log = (line: string) => process.stderr.write(`bench: ${line}\n`);

let bigSweep: Promise<WorkerScript> | undefined;
let streamServers: Promise<WorkerScript> | undefined;

/** The 20,000-combination sweep's child process (bench/big-sweep.ts, run with `--child`). */
export function bigSweepScript(): Promise<WorkerScript> {
  bigSweep ??= bundledScript(
    sourceBundle('bench-big-sweep', 'bench/big-sweep.ts'),
    DISABLED_BY,
    {
      url: new URL('./big-sweep.ts', import.meta.url),
      execArgv: [...withoutTsxLoader(process.execArgv), '--import', 'tsx'],
      bundled: false,
    },
    log,
  );
  return bigSweep;
}

/** The stream benchmark's server threads (bench/stream-servers.ts): both start on one build. */
export function streamServersScript(): Promise<WorkerScript> {
  streamServers ??= bundledScript(
    sourceBundle('bench-stream-servers', 'bench/stream-servers.ts'),
    DISABLED_BY,
    { url: new URL('./stream-servers-entry.mjs', import.meta.url), execArgv: undefined, bundled: false },
    log,
  );
  return streamServers;
}
