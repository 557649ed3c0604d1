/**
 * The bench's `portfolio-one-off` measure (bench/big-sweep.ts) with CPU time: Bollinger (20, 2) over
 * SPY, QQQ, AAPL and MSFT as one portfolio through `backtestPortfolio` with the whole report, on
 * copies of the bars made before each run (series never seen before), 200 warm-ups then 51 timed
 * runs, in this process: `npx tsx bench/oneoff-cpu.ts [runs] [again]`. Prints the median and the
 * fastest run's CPU time (`process.cpuUsage`: the development machine is shared) and wall time, and
 * a digest of the whole report's JSON (two builds must print the same). With `runs` above 51, that
 * many timed runs (a loop to profile); with `again`, the bench's `portfolio-again` instead (the same
 * series in every run).
 */
import { createHash } from 'node:crypto';
import { loadDataDir } from '../shared/adapters/fs/bars.js';
import { backtestPortfolio } from '../shared/core/backtest/fast/portfolio.js';
import { defaultRiskRules } from '../shared/core/risk/index.js';
import { strategyRegistry } from '../shared/core/strategies/index.js';
import type { StrategyDefinition } from '../shared/core/strategies/types.js';
import { BENCH_OPTIONS, copyBars } from './stats.js';

const runs = Number(process.argv[2] ?? 51);
const again = process.argv[3] === 'again';
const all = loadDataDir('data', ['SPY', 'QQQ', 'AAPL', 'MSFT']);
const bollinger = strategyRegistry.get('bollinger') as StrategyDefinition<unknown>;
const input = {
  strategy: bollinger,
  params: { atrStop: 2, period: 20, k: 2 },
  options: { ...BENCH_OPTIONS, direction: 'long-only' as const, risk: defaultRiskRules() },
};
const seriesOfRun = () => (again ? all : all.map(copyBars));
for (let i = 0; i < 200; i++) backtestPortfolio({ ...input, series: seriesOfRun() });
const cpu: number[] = [];
const wall: number[] = [];
for (let i = 0; i < runs; i++) {
  const series = seriesOfRun();
  const c0 = process.cpuUsage();
  const w0 = process.hrtime.bigint();
  backtestPortfolio({ ...input, series });
  const w = Number(process.hrtime.bigint() - w0) / 1e6;
  const c = process.cpuUsage(c0);
  cpu.push((c.user + c.system) / 1e3);
  wall.push(w);
}
const digest = createHash('sha256')
  .update(JSON.stringify(backtestPortfolio({ ...input, series: all.map(copyBars) })))
  .digest('hex')
  .slice(0, 16);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
console.log(
  `${again ? 'again' : 'one-off'}: CPU median ${median(cpu).toFixed(3)} ms, fastest ${Math.min(...cpu).toFixed(3)} ms; wall median ${median(wall).toFixed(3)} ms, fastest ${Math.min(...wall).toFixed(3)} ms; report ${digest}`,
);
