/**
 * Benchmarks, printed as one JSON document on stdout:
 * `{ "results": [{ "name", "threads", "bars", "combinations", "seconds", "barStepsPerSecond" }] }`.
 * A bar-step is one bar of one parameter combination. Each entry reports the median of several
 * timed runs after a warm-up run. Progress goes to stderr.
 */
import { loadDataDir } from '../shared/adapters/fs/bars.js';
import { runBacktest } from '../shared/core/backtest/engine.js';
import { type MaPair, sweepMaPairs } from '../shared/core/backtest/ma-sweep.js';
import type { BacktestOptions } from '../shared/core/backtest/types.js';
import { maCrossover } from '../shared/core/strategies/ma-crossover.js';

interface BenchResult {
  name: string;
  threads: number;
  bars: number;
  combinations: number;
  seconds: number;
  barStepsPerSecond: number;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

function measure(runs: number, work: () => unknown): number {
  work();
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
    threads,
    bars,
    combinations,
    seconds,
    barStepsPerSecond: Math.round((bars * combinations) / seconds),
  };
}

const options: BacktestOptions = {
  initialCash: 100_000,
  sizing: { mode: 'atr-risk', risk: 0.02 },
  maxPositionFraction: 0.2,
  cashBuffer: 0.02,
  commission: { perShare: 0.005, perOrder: 0, percent: 0, minimum: 1 },
  slippageBps: 5,
  fractional: false,
  endOfData: 'close',
  riskFreeRate: 0,
};
const base = { ma: 'sma' as const, direction: 'long-only' as const, atrPeriod: 14, atrStop: 2 };
const all = loadDataDir('data', ['SPY', 'QQQ', 'AAPL', 'MSFT']);
const results: BenchResult[] = [];

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
    measure(5, () => {
      for (const series of all) sweepMaPairs(series, base, grid, options);
    }),
  ),
);

process.stdout.write(`${JSON.stringify({ results }, null, 2)}\n`);
