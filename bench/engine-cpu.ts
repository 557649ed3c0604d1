/**
 * The CPU time of the fast engine alone in one strategy's risk-on sweep as bench/vp-cpu.ts runs it
 * (1,000+ combinations x the four bundled symbols, one thread): the strategy's vectorized rules are
 * made once, in a first pass (each into its own codes buffer), and every later pass replays them in
 * the same order, so the timed passes cost the engine's runs and the metrics, not the codes:
 * `npx tsx bench/engine-cpu.ts [strategy] [passes]`. Prints the trades per run (the closed P&Ls the
 * metrics count) and a hash of the metrics, which must equal vp-cpu.ts's (the same results). CPU time
 * (`process.cpuUsage`) because the development machine is shared (docs/engine.md).
 */
import { createHash } from 'node:crypto';
import { loadDataDir } from '../shared/adapters/fs/bars.js';
import { sweepFast } from '../shared/core/backtest/fast/sweep.js';
import type { BacktestOptions } from '../shared/core/backtest/types.js';
import { expandGrid } from '../shared/core/research/grid.js';
import { defaultRiskRules } from '../shared/core/risk/index.js';
import { strategyRegistry } from '../shared/core/strategies/index.js';
import type { StrategyDefinition } from '../shared/core/strategies/types.js';
import { paddedBytes, type VectorRule } from '../shared/core/strategies/vector.js';
import { BENCH_OPTIONS } from './stats.js';
import { SWEEP_GRIDS } from './strategies.js';

const name = process.argv[2] ?? 'volume-profile';
const passes = Number(process.argv[3] ?? 4);
const all = loadDataDir('data', ['SPY', 'QQQ', 'AAPL', 'MSFT']);
const options: BacktestOptions = { ...BENCH_OPTIONS, direction: 'long-only', risk: defaultRiskRules() };
const strategy = strategyRegistry.get(name) as StrategyDefinition<unknown>;
const vectorize = strategy.vectorize;
if (vectorize === undefined) throw new Error(`${name} has no vectorized rule`);
const combos = expandGrid(SWEEP_GRIDS[name] as never);
const bars = all.reduce((n, s) => n + s.time.length, 0);

// The rules of the first pass, in the order the sweeps asked for them; replayed by the later passes.
const rules: VectorRule[] = [];
let replay = -1;
const replaying: StrategyDefinition<unknown> = {
  ...strategy,
  vectorize: (params, context, cache) => {
    if (replay >= 0) return rules[replay++] as VectorRule;
    const rule = vectorize(params, context, cache, paddedBytes(cache.series.time.length));
    rules.push(rule);
    return rule;
  },
};
const run = () => {
  const out = [];
  for (const series of all) out.push(sweepFast(series, replaying, { atrStop: 2 }, combos, options));
  return out;
};
const hashOf = (metrics: unknown) =>
  createHash('sha256').update(JSON.stringify(metrics)).digest('hex').slice(0, 16);
const firstPass = run();
const trades = firstPass.flat().reduce((n, m) => n + m.trades, 0);
console.log(
  `${name} engine: ${rules.length} runs, ${(trades / rules.length).toFixed(1)} closed trades per run, checksum ${hashOf(firstPass)}`,
);
for (let p = 0; p < passes; p++) {
  replay = 0;
  const c0 = process.cpuUsage();
  const metrics = run();
  const c = process.cpuUsage(c0);
  const sum = hashOf(metrics);
  const s = (c.user + c.system) / 1e6;
  console.log(
    `${name} engine: ${s.toFixed(3)} s CPU, ${((bars * combos.length) / s / 1e6).toFixed(2)} M bar-steps/s, checksum ${sum}`,
  );
}
