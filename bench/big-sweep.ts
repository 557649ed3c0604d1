/**
 * The bench's sweeps that run in a process of their own (bench/fast.ts), one thread, the default
 * risk rules, the settings of the other fast-engine entries:
 * - the 20,000-combination sweep (`runBigSweepInChild`): 20,000 Bollinger combinations on SPY, so
 *   that its peak RSS is the sweep's, not the bench process's (which holds every earlier entry's
 *   data and garbage): the issue asks 20,000 combinations under 300 MB;
 * - each strategy's sweep of its bench grid over the four symbols (`runStrategySweepInChild`), as a
 *   research worker runs a sweep: in an isolate that runs nothing else. In the bench process the
 *   reference engine's entries run first and feed the shared code (the decision, the breakers, the
 *   strategies) other object shapes, which made the fast engine's sweeps there cost 1.5 times the
 *   CPU time of the same sweep in a fresh process; no `quantshift` sweep runs that way.
 */
import { fork } from 'node:child_process';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import * as z from 'zod';
import { loadDataDir } from '../shared/adapters/fs/bars.js';
import { runBacktest } from '../shared/core/backtest/engine.js';
import { backtestPortfolio } from '../shared/core/backtest/fast/portfolio.js';
import { sweepFast } from '../shared/core/backtest/fast/sweep.js';
import type { BacktestOptions } from '../shared/core/backtest/types.js';
import type { BarSeries } from '../shared/core/market/types.js';
import type { Metrics } from '../shared/core/metrics/index.js';
import { type Combination, expandGrid } from '../shared/core/research/grid.js';
import { defaultRiskRules } from '../shared/core/risk/index.js';
import { strategyRegistry } from '../shared/core/strategies/index.js';
import type { StrategyDefinition } from '../shared/core/strategies/types.js';
import { bigSweepScript } from './entries.js';
import { BENCH_OPTIONS, copyBars } from './stats.js';
import { SWEEP_GRIDS } from './strategies.js';

/** The fast-engine entries' settings: the config's costs and sizing, long-only, the default risk rules. */
export const FAST_OPTIONS: BacktestOptions = {
  ...BENCH_OPTIONS,
  direction: 'long-only',
  risk: defaultRiskRules(),
};
export const FAST_BASE_PARAMS = { atrStop: 2 } as const;

/** The 20,000 Bollinger combinations: 50 periods x 400 band widths. */
export function bigGrid(): Combination[] {
  return expandGrid({
    grid: { period: { from: 5, to: 54, step: 1 }, k: { from: 1, to: 2.995, step: 0.005 } },
    constraints: [],
  });
}

/** A digest of a sweep's metrics, to check that two runs of the same work gave the same results. */
export function metricsDigest(metrics: readonly Metrics[]): string {
  const hash = createHash('sha256');
  for (const m of metrics) hash.update(JSON.stringify(m));
  return hash.digest('hex');
}

/** What the child process reports. */
const childReportSchema = z.object({
  bars: z.number().int().positive(),
  combinations: z.number().int().positive(),
  seconds: z.number().positive(),
  peakRssMb: z.number().positive(),
  digest: z.string().length(64),
});
export type BigSweepReport = z.infer<typeof childReportSchema>;

/**
 * Runs the sweep in a child process (bundled as the bench is: bench/entries.ts) after a warm-up of
 * 500 combinations, and returns its time, its peak RSS and its results' digest.
 */
export function runBigSweepInChild(): Promise<BigSweepReport> {
  return runInChild(['--child'], 'the 20,000-combination child', childReportSchema);
}

/**
 * One strategy's bench sweep (its `SWEEP_GRIDS` grid over SPY, QQQ, AAPL and MSFT) in a child
 * process, warm (the median of three sweeps after a first one): its time, peak RSS and results' digest.
 */
export function runStrategySweepInChild(strategy: string): Promise<BigSweepReport> {
  return runInChild(['--child', '--strategy', strategy], `the ${strategy} sweep's child`, childReportSchema);
}

/** The single backtests the bench times, each in a process of its own (`runBacktestInChild`). */
export const SINGLE_BACKTESTS = ['each-alone', 'portfolio-one-off', 'portfolio-again', 'reference'] as const;
export type SingleBacktest = (typeof SINGLE_BACKTESTS)[number];
const backtestReportSchema = z.object({
  seconds: z.number().positive(),
  peakRssMb: z.number().positive(),
});

/**
 * One Bollinger (20, 2) combination over SPY, QQQ, AAPL and MSFT with the default risk rules, timed
 * in a child process as the median of 51 runs after 200 warm-ups: `each-alone`, each symbol alone
 * through the fast engine (a sweep's unit); `portfolio-one-off`, the four as one portfolio with the
 * whole report as `quantshift backtest` runs it, on series never seen before in every run (copies of
 * the bars made outside the timed region: the calendar, preparation and indicators computed each
 * time); `portfolio-again`, the same series in every run (their preparation reused, as the
 * walk-forward's windows); `reference`, the same portfolio on the reference engine.
 */
export function runBacktestInChild(kind: SingleBacktest) {
  return runInChild(['--child', '--backtest', kind], `the ${kind} backtest's child`, backtestReportSchema);
}

async function runInChild<T>(args: string[], what: string, schema: z.ZodType<T>): Promise<T> {
  const script = await bigSweepScript();
  return new Promise((resolve, reject) => {
    const child = fork(fileURLToPath(script.url), args, {
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
      ...(script.execArgv === undefined ? {} : { execArgv: script.execArgv }),
    });
    let report: T | undefined;
    child.on('message', (message) => {
      const parsed = schema.safeParse(message);
      if (parsed.success) report = parsed.data;
      else reject(new Error(`bench: ${what} sent ${JSON.stringify(message)}`));
    });
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code === 0 && report !== undefined) resolve(report);
      else reject(new Error(`bench: ${what} exited with ${code} and no report`));
    });
  });
}

function send(message: unknown): void {
  (process.send as (message: unknown, callback: () => void) => boolean)(message, () => process.disconnect());
}

/**
 * The median of 51 timed runs after 200 warm-ups (warm, as the sweeps: in a fresh process V8 is
 * still optimizing the backtest's functions for the first few dozen runs); `prepare` makes each
 * run's input outside the timed region.
 */
function medianSeconds<T>(run: (input: T) => void, prepare: () => T = () => undefined as T): number {
  for (let i = 0; i < 200; i++) run(prepare());
  const times: number[] = [];
  for (let i = 0; i < 51; i++) {
    const input = prepare();
    const started = process.hrtime.bigint();
    run(input);
    times.push(Number(process.hrtime.bigint() - started) / 1e9);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)] as number;
}

function runBacktestChild(kind: SingleBacktest): void {
  const all = loadDataDir('data', ['SPY', 'QQQ', 'AAPL', 'MSFT']);
  const bollinger = strategyRegistry.get('bollinger') as StrategyDefinition<unknown>;
  const one = [{ period: 20, k: 2 }];
  const params = { ...FAST_BASE_PARAMS, ...one[0] };
  const input = { strategy: bollinger, params, options: FAST_OPTIONS };
  const seconds =
    kind === 'each-alone'
      ? medianSeconds(() => {
          for (const series of all) sweepFast(series, bollinger, FAST_BASE_PARAMS, one, FAST_OPTIONS);
        })
      : kind === 'portfolio-one-off'
        ? medianSeconds(
            (series: BarSeries[]) => backtestPortfolio({ ...input, series }),
            () => all.map(copyBars),
          )
        : kind === 'portfolio-again'
          ? medianSeconds(() => backtestPortfolio({ ...input, series: all }))
          : medianSeconds(() => runBacktest({ ...input, series: all }));
  send({ seconds, peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024) });
}

function report(bars: number, combinations: number, seconds: number, metrics: readonly Metrics[]): void {
  const done: BigSweepReport = {
    bars,
    combinations,
    seconds,
    peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024),
    digest: metricsDigest(metrics),
  };
  send(done);
}

function runStrategyChild(name: string): void {
  const all = loadDataDir('data', ['SPY', 'QQQ', 'AAPL', 'MSFT']);
  const strategy = strategyRegistry.get(name) as StrategyDefinition<unknown> | undefined;
  const space = SWEEP_GRIDS[name];
  if (strategy === undefined || space === undefined) throw new Error(`bench: no sweep grid for ${name}`);
  const combos = expandGrid(space);
  const sweepAll = (list: readonly Combination[]) => {
    const metrics: Metrics[] = [];
    for (const series of all)
      metrics.push(...sweepFast(series, strategy, FAST_BASE_PARAMS, list, FAST_OPTIONS));
    return metrics;
  };
  // Warm, as vectorbt's figure is: the whole sweep once (V8 compiles the engine's code on its first
  // few hundred combinations, concurrently), then the median of three timed sweeps.
  sweepAll(combos);
  const times: number[] = [];
  let metrics: Metrics[] = [];
  for (let i = 0; i < 3; i++) {
    const started = process.hrtime.bigint();
    metrics = sweepAll(combos);
    times.push(Number(process.hrtime.bigint() - started) / 1e9);
  }
  const seconds = times.sort((a, b) => a - b)[1] as number;
  report(
    all.reduce((n, s) => n + s.time.length, 0),
    combos.length,
    seconds,
    metrics,
  );
}

function runChild(): void {
  const spy = loadDataDir('data', ['SPY'])[0];
  if (spy === undefined) throw new Error('bench: no SPY bars in data/');
  const bollinger = strategyRegistry.get('bollinger') as StrategyDefinition<unknown>;
  const combos = bigGrid();
  sweepFast(spy, bollinger, FAST_BASE_PARAMS, combos.slice(0, 500), FAST_OPTIONS);
  const started = process.hrtime.bigint();
  const metrics = sweepFast(spy, bollinger, FAST_BASE_PARAMS, combos, FAST_OPTIONS);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  report(spy.time.length, combos.length, seconds, metrics);
}

if (process.argv[2] === '--child' && process.send !== undefined) {
  if (process.argv[3] === '--strategy') runStrategyChild(process.argv[4] as string);
  else if (process.argv[3] === '--backtest') runBacktestChild(process.argv[4] as SingleBacktest);
  else runChild();
}
