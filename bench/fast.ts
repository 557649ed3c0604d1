/**
 * The fast engine's benchmarks (docs/engine.md): for every registered strategy with the risk rules
 * on (the defaults), a one-thread sweep of at least 1,000 combinations over the four bundled symbols
 * (each symbol alone, as the walk-forward's per-symbol units), warm, each strategy in a process of
 * its own; one combination over the four symbols (each alone, and as one portfolio: a one-off, the
 * same series again, and on the reference engine), each in a process of its own;
 * 20,000 combinations on one symbol in a process of its own, with that process's peak RSS
 * (bench/big-sweep.ts); and the same 20,000 combinations on one and on two worker threads (equal
 * results checked, against each other and the child's). A bar-step is one bar of one combination.
 */

import { sweepFast } from '../shared/core/backtest/fast/sweep.js';
import type { BacktestOptions } from '../shared/core/backtest/types.js';
import type { BarSeries } from '../shared/core/market/types.js';
import type { Metrics } from '../shared/core/metrics/index.js';
import { type Combination, expandGrid } from '../shared/core/research/grid.js';
import { defaultRiskRules } from '../shared/core/risk/index.js';
import { strategyRegistry } from '../shared/core/strategies/index.js';
import type { StrategyDefinition } from '../shared/core/strategies/types.js';
import { WorkerPoolEvaluator } from '../shared/research/pool.js';
import {
  type BigSweepReport,
  bigGrid,
  metricsDigest,
  runBacktestInChild,
  runBigSweepInChild,
  runStrategySweepInChild,
  type SingleBacktest,
} from './big-sweep.js';
import { BENCH_OPTIONS } from './stats.js';
import { type StrategySweepResult, SWEEP_GRIDS } from './strategies.js';

/**
 * A fast-engine entry of the bench's `results[]`: `engine: "fast-portfolio"` for the portfolio
 * backtest as `quantshift backtest` runs it (the fast engine's portfolio mode, whole report: on
 * series never seen before, and on the same series again), and
 * `"general"` for the same backtest on the reference engine beside it.
 */
export type FastSweepResult = Omit<StrategySweepResult, 'engine' | 'threads'> & {
  readonly engine: 'fast' | 'fast-portfolio' | 'general';
  readonly threads: number;
  /** The thread entries: the median of their timed sweeps (`seconds` is the fastest), and its rate. */
  readonly medianSeconds?: number;
  readonly medianBarStepsPerSecond?: number;
};

/**
 * The thread entries' timed sweeps per thread count, after the warm-up: `seconds` is the fastest
 * (the run the shared machine disturbed least: on a quiet VM the same pool's runs still spread by
 * up to 1.7x, docs/engine.md "Two threads, the fourth round"), the median beside it.
 */
export const THREAD_RUNS = 7;

/**
 * How many combinations each worker thread runs before the thread entries' clock starts: enough for
 * a fresh isolate's optimized code to settle (measured per thread: docs/engine.md, "Two threads, the
 * third round"), as it has in a long `quantshift optimize` after its first windows.
 */
export const WARM_PER_THREAD = 10_000;

/** `count` combinations of `grid` spread evenly over it (the grid's first ones are its smallest periods only). */
export function spreadOver(grid: readonly Combination[], count: number): Combination[] {
  return Array.from({ length: count }, (_, i) => grid[Math.floor((i * grid.length) / count)] as Combination);
}

const peakRssMb = () => Math.round(process.resourceUsage().maxRSS / 1024);
const seconds = (from: bigint) => Number(process.hrtime.bigint() - from) / 1e9;

export async function runFastBenchmarks(
  all: readonly BarSeries[],
  log: (line: string) => void,
): Promise<FastSweepResult[]> {
  const options: BacktestOptions = { ...BENCH_OPTIONS, direction: 'long-only', risk: defaultRiskRules() };
  const baseParams = { atrStop: 2 };
  const allBars = all.reduce((n, s) => n + s.time.length, 0);
  const results: FastSweepResult[] = [];
  const push = (
    r: Omit<FastSweepResult, 'engine' | 'risk' | 'barStepsPerSecond' | 'peakRssMb'>,
    engine: FastSweepResult['engine'] = 'fast',
    rssMb = peakRssMb(),
  ) => {
    const full: FastSweepResult = {
      ...r,
      engine,
      risk: true,
      barStepsPerSecond: Math.round((r.bars * r.combinations) / r.seconds),
      peakRssMb: rssMb,
    };
    log(
      `bench: ${full.name}: ${full.seconds.toFixed(4)} s, ${(full.barStepsPerSecond / 1e6).toFixed(2)} M bar-steps/s`,
    );
    results.push(full);
  };
  /** A one-thread sweep run in a child process: its time and that process's peak RSS. */
  const pushSweep = (name: string, strategy: string, child: BigSweepReport) =>
    push(
      {
        name,
        strategy,
        threads: 1,
        bars: child.bars,
        combinations: child.combinations,
        seconds: child.seconds,
      },
      'fast',
      child.peakRssMb,
    );
  const sweepDigest = (strategy: StrategyDefinition<unknown>, combos: readonly Combination[]) => {
    const metrics: Metrics[] = [];
    for (const series of all) metrics.push(...sweepFast(series, strategy, baseParams, combos, options));
    return metricsDigest(metrics);
  };

  // Each strategy's sweep in a process of its own, as a research worker runs a sweep (bench/big-sweep.ts):
  // the same grid and symbols; the results' digest checked against the same sweep run here.
  for (const [name, definition] of strategyRegistry) {
    const space = SWEEP_GRIDS[name];
    if (space === undefined) throw new Error(`bench: no sweep grid for the strategy ${name}`);
    const strategy = definition as StrategyDefinition<unknown>;
    const combos = expandGrid(space);
    const child = await runStrategySweepInChild(name);
    pushSweep(
      `sweep: ${name} fast engine, ${combos.length} combinations x SPY/QQQ/AAPL/MSFT, one thread, risk rules on (its own process)`,
      name,
      child,
    );
    if (sweepDigest(strategy, combos) !== child.digest) {
      throw new Error(`bench: the ${name} sweep gave other results in its own process than here`);
    }
  }

  // The single backtests, each in a process of its own (bench/big-sweep.ts, `runBacktestInChild`):
  // Bollinger (20, 2) with the default risk rules, the median of 51 runs after 200 warm-ups. One
  // combination on each of the four symbols alone (the walk-forward's and the sweep's unit: the
  // series prepared, its indicators computed, the backtest run); what `quantshift backtest` runs for
  // the four symbols: ONE portfolio (shared cash, heat and breakers across the symbols) through the
  // fast engine's portfolio mode, building the whole report (orders, fills, trades, the risk
  // report), first as a one-off backtest (series it has never seen in every run: copies of the bars,
  // made outside the timed region, so the calendar, the preparation and the indicators are computed
  // from the bars each time), then on the same series again, whose preparation and indicators are
  // those kept for them (docs/engine.md, "A backtest of the same series again"), as for the
  // walk-forward's windows; then the same backtest on the reference engine, which it equals.
  const single = (kind: SingleBacktest) => runBacktestInChild(kind);
  const one = {
    strategy: 'bollinger',
    threads: 1,
    bars: allBars,
    combinations: 1,
  };
  const eachAlone = await single('each-alone');
  push(
    {
      name: 'backtest: bollinger fast engine, one combination x SPY/QQQ/AAPL/MSFT (each alone), risk rules on',
      ...one,
      seconds: eachAlone.seconds,
    },
    'fast',
    eachAlone.peakRssMb,
  );
  const oneOff = await single('portfolio-one-off');
  push(
    {
      name: 'backtest: bollinger fast engine portfolio mode, one combination, SPY+QQQ+AAPL+MSFT portfolio (as quantshift backtest, whole report, series never seen before), risk rules on',
      ...one,
      seconds: oneOff.seconds,
    },
    'fast-portfolio',
    oneOff.peakRssMb,
  );
  const again = await single('portfolio-again');
  push(
    {
      name: 'backtest: bollinger fast engine portfolio mode, one combination, SPY+QQQ+AAPL+MSFT portfolio (same series again, its preparation reused), risk rules on',
      ...one,
      seconds: again.seconds,
    },
    'fast-portfolio',
    again.peakRssMb,
  );
  const onReference = await single('reference');
  push(
    {
      name: 'backtest: bollinger reference engine, one combination, SPY+QQQ+AAPL+MSFT portfolio, risk rules on',
      ...one,
      seconds: onReference.seconds,
    },
    'general',
    onReference.peakRssMb,
  );

  // 20,000 combinations on SPY, in a process of its own: its peak RSS is the sweep's (memory stays
  // flat: buffers are reused across combinations), not this process's, which holds every entry above.
  const spy = all[0] as BarSeries;
  const big = bigGrid();
  const child = await runBigSweepInChild();
  pushSweep(
    `sweep: bollinger fast engine, ${child.combinations} combinations x SPY, one thread, risk rules on (its own process, that process's peak RSS)`,
    'bollinger',
    child,
  );

  // A user's real sweep on one and on two worker threads: the same 20,000 combinations (as above),
  // the same results. Each thread is warmed alike before the clock starts (its copy of the bars, its
  // JIT): WARM_PER_THREAD combinations each, spread over the whole grid. Each isolate compiles its own
  // code, and a fresh one takes several thousand combinations to settle: with 2,000 each, the timed
  // run still paid that settling once per thread, so twice with two (docs/engine.md, "Two threads,
  // the third round"). V8's compiler and GC threads run beside the sweep: with one worker on the idle
  // second core, with two on the cores the workers need.
  const task = { series: [spy], strategy: 'bollinger', baseParams, combos: big, options };
  let reference: string | undefined;
  for (const threads of [1, 2]) {
    const pool = new WorkerPoolEvaluator(threads);
    await pool.evaluate({ ...task, combos: spreadOver(big, WARM_PER_THREAD * threads) });
    const times: number[] = [];
    for (let run = 0; run < THREAD_RUNS; run++) {
      const started = process.hrtime.bigint();
      const metrics = await pool.evaluate(task);
      times.push(seconds(started));
      const digest = metricsDigest(metrics);
      reference ??= digest;
      if (digest !== reference)
        throw new Error(`bench: ${threads} worker threads gave other results than one`);
      if (digest !== child.digest) {
        throw new Error(
          `bench: ${threads} worker thread(s) gave other results than the sweep in its own process`,
        );
      }
    }
    await pool.close();
    times.sort((a, b) => a - b);
    const median = times[Math.floor(times.length / 2)] as number;
    log(
      `bench: ${threads} worker thread(s), ${THREAD_RUNS} timed sweeps: ${times.map((t) => t.toFixed(3)).join(', ')} s`,
    );
    push({
      name: `sweep: bollinger fast engine, ${task.combos.length} combinations x SPY, ${threads} worker thread(s), risk rules on (fastest of ${THREAD_RUNS})`,
      strategy: 'bollinger',
      threads,
      bars: spy.time.length,
      combinations: task.combos.length,
      seconds: times[0] as number,
      medianSeconds: median,
      medianBarStepsPerSecond: Math.round((spy.time.length * task.combos.length) / median),
    });
  }
  return results;
}
