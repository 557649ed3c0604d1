/**
 * Benchmarks, written as one JSON document to `bench/results.json` (progress goes to stderr). The
 * document also goes to stdout when that is clean: under `npm run -s bench` (npm's banner off) or
 * run directly (`node bench/start.mjs > x.json`); under a plain `npm run bench`, npm's banner would
 * make stdout invalid JSON, so only the file is written and the run says where.
 *
 * `npm run bench` runs this file as production runs the code: `bench/start.mjs` imports a cached
 * esbuild bundle of it (rebuilt when a source changed, the build's time on stderr), and the child
 * process and threads the bench starts run bundled too (bench/entries.ts; the research pool's
 * workers run their own bundle). `QUANTSHIFT_BENCH_BUNDLE=0 npm run bench` runs the TypeScript
 * sources through tsx instead (`QUANTSHIFT_WORKER_BUNDLE=0` for the workers too), for debugging;
 * its figures are not the bench's (docs/engine.md, "Speed"). The document:
 *
 * ```
 * {
 *   "results": [{ "name", "strategy", "risk", "threads", "bars", "combinations", "seconds",
 *                 "barStepsPerSecond", "peakRssMb", and for the strategy sweeps also "engine" }],
 *   "live": {
 *     "signals": { "symbols", "day", "seconds", "marketOpenCheckSeconds", "marketDataRequests",
 *                  "totalBrokerRequests", "intents", "cache", "barCacheReadSeconds", "barCacheWriteSeconds" },
 *     "executeOrders": { "samples", "days", "p50Ms", "p99Ms", "minMs", "maxMs", "coldStartMs" }
 *   },
 *   "bundles": [{ "name", "bytes", "gzipBytes", "sourcemapBytes", "coldImportMs",
 *                 "topInputs": [{ "name", "bytes" }] }],
 *   "stream": { "messages", "messagesPerSecond", "messagesPerCpuSecond", "p50DecideMs", "p99DecideMs",
 *               "orderSamples", "p50OrderMs", "p99OrderMs", "firstOrderMs", "orderPhasesMs",
 *               "orderCpuMsPerExit" }
 * }
 * ```
 *
 * `npm run bench -- --only fast` runs only the MA kernel entries and the fast engine's (`results`);
 * `npm run bench -- --only stream` runs only the stream benchmark, to `bench/results-stream.json`.
 *
 * - `results`: the backtest kernels. A bar-step is one bar of one parameter combination. Each entry
 *   reports the median of several timed runs after one or more warm-up runs, except the strategy sweeps
 *   (bench/strategies.ts): for every registered strategy, one timed one-thread sweep of at least
 *   1,000 combinations through the general engine, with its `strategy` name; then the fast engine's
 *   entries (bench/fast.ts, `engine: "fast"`, risk rules on; each sweep and each single backtest
 *   timed warm in a process of its own, bench/big-sweep.ts; see docs/engine.md).
 * - `live` (bench/live.ts): generate-signals for 500 synthetic symbols served by the local broker
 *   (wall time and market-data requests), and the execute-orders handler's time from invocation
 *   to the broker receiving the order POST (p50 / p99 over 200 invocations).
 * - `bundles` (bench/bundles.ts): every `functions/<name>/handler.ts` bundled as the CDK construct
 *   does, its size, and the median time a fresh `node` takes to import it.
 * - `stream` (bench/stream.ts): market messages per second through the stream consumer and its risk
 *   engine, received -> decided, and received -> exit order POST against the local broker; run in
 *   a process of its own (`--only stream`, which also writes bench/results-stream.json).
 *
 * `npm run bench -- --only pipeline` runs only the pipeline benchmark (bench/pipeline.ts, a few
 * minutes: not part of the default run) and writes `{ "pipeline": { ... } }` to
 * `bench/results-pipeline.json`: a walk-forward of a 100,000-combination grid through the local Step
 * Functions path (Distributed Map), its wall time, Lambda invocations and estimated Lambda cost
 * (docs/cost.md). `--combinations <n>` (a multiple of 500) runs a smaller or larger grid.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { loadDataDir } from '../shared/adapters/fs/bars.js';
import { runBacktest } from '../shared/core/backtest/engine.js';
import { type MaPair, sweepMaPairs } from '../shared/core/backtest/ma-sweep.js';
import type { BacktestOptions } from '../shared/core/backtest/types.js';
import { criteriaSchema } from '../shared/core/config/schema.js';
import type { BarSeries } from '../shared/core/market/types.js';
import type { Combination } from '../shared/core/research/grid.js';
import { walkForward, walkForwardSettingsSchema } from '../shared/core/research/walk-forward.js';
import { maCrossover } from '../shared/core/strategies/ma-crossover.js';
import { WorkerPoolEvaluator } from '../shared/research/pool.js';
import { runBundleBenchmarks } from './bundles.js';
import { type FastSweepResult, runFastBenchmarks } from './fast.js';
import { runLiveBenchmarks } from './live.js';
import { runPipelineBenchmark } from './pipeline.js';
import { writeBenchResults } from './results.js';
import { BENCH_OPTIONS, median } from './stats.js';
import { runStrategySweeps, type StrategySweepResult } from './strategies.js';
import { runStreamBenchmark } from './stream.js';

const { values: args } = parseArgs({
  options: { only: { type: 'string' }, combinations: { type: 'string' } },
});
if (args.only !== undefined && !['pipeline', 'fast', 'stream'].includes(args.only)) {
  throw new Error(`bench: --only ${args.only}: the separate benchmarks are "fast", "pipeline" and "stream"`);
}
if (args.combinations !== undefined && args.only !== 'pipeline') {
  throw new Error('bench: --combinations goes with --only pipeline');
}
// `--only stream`: the stream benchmark alone (about 20 s), to bench/results-stream.json.
if (args.only === 'stream') {
  const stream = await runStreamBenchmark();
  writeBenchResults({ stream }, fileURLToPath(new URL('./results-stream.json', import.meta.url)));
  process.exit(0);
}
if (args.only === 'pipeline') {
  const combinations = args.combinations === undefined ? undefined : Number(args.combinations);
  const pipeline = await runPipelineBenchmark((line) => process.stderr.write(`${line}\n`), combinations);
  writeBenchResults({ pipeline }, fileURLToPath(new URL('./results-pipeline.json', import.meta.url)));
  process.exit(0);
}

interface BenchResult {
  name: string;
  strategy: string;
  /** Whether the risk rules applied (not in these entries: the kernel and the walk-forward run without). */
  risk: boolean;
  threads: number;
  bars: number;
  combinations: number;
  seconds: number;
  barStepsPerSecond: number;
  /** The bench process's peak resident set size so far, MiB. */
  peakRssMb: number;
}

function measure(runs: number, work: () => unknown, warmups = 1): number {
  for (let i = 0; i < warmups; i++) work();
  const seconds: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    work();
    seconds.push(Number(process.hrtime.bigint() - t0) / 1e9);
  }
  return median(seconds);
}

function entry(
  name: string,
  threads: number,
  bars: number,
  combinations: number,
  seconds: number,
): BenchResult {
  process.stderr.write(`bench: ${name}: ${seconds.toFixed(4)} s\n`);
  return {
    name,
    strategy: 'ma-crossover',
    risk: false,
    threads,
    bars,
    combinations,
    seconds,
    barStepsPerSecond: Math.round((bars * combinations) / seconds),
    peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024),
  };
}

const options: BacktestOptions = BENCH_OPTIONS;
const base = { ma: 'sma' as const, atrPeriod: 14, atrStop: 2 };
const all = loadDataDir('data', ['SPY', 'QQQ', 'AAPL', 'MSFT']);
const results: (BenchResult | StrategySweepResult | FastSweepResult)[] = [];

const pair = all.slice(0, 2);
const pairBars = pair.reduce((n, s) => n + s.time.length, 0);
results.push(
  entry(
    'backtest: ma-crossover engine, SPY+QQQ portfolio',
    1,
    pairBars,
    1,
    measure(20, () =>
      runBacktest({ series: pair, strategy: maCrossover, params: { ...base, fast: 10, slow: 30 }, options }),
    ),
  ),
);

const grid: MaPair[] = [];
for (let fast = 2; fast <= 51; fast++) for (let slow = 60; slow <= 250; slow += 10) grid.push({ fast, slow });
const allBars = all.reduce((n, s) => n + s.time.length, 0);
results.push(
  entry(
    'sweep: ma-crossover kernel, 1000 pairs x SPY/QQQ/AAPL/MSFT',
    1,
    allBars,
    grid.length,
    // Three warm-up sweeps (the JIT compiles the kernel over the first two), then the median of nine.
    measure(
      9,
      () => {
        for (const series of all) sweepMaPairs(series, base, grid, options);
      },
      3,
    ),
  ),
);

// `--only fast`: the two kernels above and the fast engine's entries, without the rest (minutes shorter).
if (args.only === 'fast') {
  results.push(...(await runFastBenchmarks(all, (line) => process.stderr.write(`${line}\n`))));
  writeBenchResults({ results });
  process.exit(0);
}

// Walk-forward: 1,000 combinations, 6 rolling windows (504 in-sample / 126 out-of-sample bars), each of
// the four symbols alone (sweep kernel) and the four-symbol portfolio (engine), on every core. Risk rules
// off: with them, every combination runs on the event-driven engine.
const wfGrid: Combination[] = grid.map((p) => ({ fast: p.fast, slow: p.slow }));
const threads = availableParallelism();
const pool = new WorkerPoolEvaluator(threads);
await pool.evaluate({
  series: [all[0] as BarSeries],
  strategy: 'ma-crossover',
  baseParams: base,
  combos: wfGrid.slice(0, 8),
  options,
});
const wfStarted = process.hrtime.bigint();
const wf = await walkForward({
  series: all,
  strategy: 'ma-crossover',
  baseParams: base,
  combos: wfGrid,
  objective: { metric: 'sharpe', minimums: { trades: 10 } },
  options,
  settings: walkForwardSettingsSchema.parse({ inSample: 504, outOfSample: 126 }),
  criteria: criteriaSchema.parse({}),
  evaluator: pool,
});
const wfSeconds = Number(process.hrtime.bigint() - wfStarted) / 1e9;
await pool.close();
const windowBars = [...wf.perSymbol, wf.portfolio].reduce(
  (n, unit) => n + unit.windows.length * 504 * (unit.symbol === 'PORTFOLIO' ? all.length : 1),
  0,
);
results.push(
  entry(
    'walk-forward: 1000 pairs x SPY/QQQ/AAPL/MSFT + portfolio, in-sample bar-steps',
    threads,
    windowBars,
    wfGrid.length,
    wfSeconds,
  ),
);

results.push(...runStrategySweeps(all[0] as BarSeries, (line) => process.stderr.write(`${line}\n`)));
results.push(...(await runFastBenchmarks(all, (line) => process.stderr.write(`${line}\n`))));

const live = await runLiveBenchmarks();
const bundles = await runBundleBenchmarks();
// The stream benchmark in a process of its own (what `--only stream` runs; it also writes
// bench/results-stream.json), as the consumer runs in production: its own task, not a process whose
// heap holds the minutes of entries above (in this process its slowest 1 % met major GC pauses of
// about 10 ms: p99 13.6 ms against 8.4-9.4 ms alone, 2026-12-07).
const stream = await streamInChild();

writeBenchResults({ results, live, bundles, stream });

/**
 * `npm run bench -- --only stream` in a child process (its progress on stderr): the `stream` of the
 * document it writes to bench/results-stream.json.
 */
function streamInChild(): Promise<Awaited<ReturnType<typeof runStreamBenchmark>>> {
  const start = fileURLToPath(new URL('./start.mjs', import.meta.url));
  const written = fileURLToPath(new URL('./results-stream.json', import.meta.url));
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [start, '--only', 'stream'], {
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) {
        reject(new Error(`bench: the stream benchmark's process exited with ${code}`));
        return;
      }
      resolve(
        (
          JSON.parse(readFileSync(written, 'utf8')) as {
            stream: Awaited<ReturnType<typeof runStreamBenchmark>>;
          }
        ).stream,
      );
    });
  });
}
