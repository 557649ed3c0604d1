/**
 * The CPU time of one strategy's risk-on sweep as bench/fast.ts runs it (1,000+ combinations x the
 * four bundled symbols, one thread), a few passes, with a hash of the metrics so two builds can be
 * compared for identical results: `npx tsx bench/vp-cpu.ts [strategy] [passes] [codes]`. CPU time
 * (`process.cpuUsage`) because the development machine is shared (docs/engine.md). With `codes`,
 * only the strategy's vectorized rule (`vectorize` for every combination on each symbol, a fresh
 * indicator cache per symbol and pass, into a codes array padded to words as the engine's) and a
 * hash of its codes.
 */
import { createHash } from 'node:crypto';
import { loadDataDir } from '../shared/adapters/fs/bars.js';
import { sweepFast } from '../shared/core/backtest/fast/sweep.js';
import type { BacktestOptions } from '../shared/core/backtest/types.js';
import { expandGrid } from '../shared/core/research/grid.js';
import { defaultRiskRules } from '../shared/core/risk/index.js';
import { strategyRegistry } from '../shared/core/strategies/index.js';
import type { StrategyDefinition } from '../shared/core/strategies/types.js';
import { IndicatorCache, paddedBytes } from '../shared/core/strategies/vector.js';
import { BENCH_OPTIONS } from './stats.js';
import { SWEEP_GRIDS } from './strategies.js';

const name = process.argv[2] ?? 'volume-profile';
const passes = Number(process.argv[3] ?? 4);
const codesOnly = process.argv[4] === 'codes';
const all = loadDataDir('data', ['SPY', 'QQQ', 'AAPL', 'MSFT']);
const options: BacktestOptions = { ...BENCH_OPTIONS, direction: 'long-only', risk: defaultRiskRules() };
const strategy = strategyRegistry.get(name) as StrategyDefinition<unknown>;
const combos = expandGrid(SWEEP_GRIDS[name] as never);
const bars = all.reduce((n, s) => n + s.time.length, 0);
const run = (cs: typeof combos) => {
  const out = [];
  for (const series of all) out.push(sweepFast(series, strategy, { atrStop: 2 }, cs, options));
  return out;
};
const codes = (cs: typeof combos) => {
  const hash = createHash('sha256');
  const params = cs.map((c) => strategy.params.parse({ atrStop: 2, ...c }));
  for (const series of all) {
    const cache = new IndicatorCache(series);
    // Padded to whole words, as the fast engine's codes array is (`FastScratch.codes`): a rule
    // writes such an array four bars at a time.
    const n = series.time.length;
    const out = paddedBytes(n);
    for (const p of params) {
      const rule = strategy.vectorize?.(p, { direction: 'long-only' }, cache, out);
      if (rule === undefined) throw new Error(`${name} has no vectorized rule`);
      hash.update(rule.codes.subarray(0, n));
    }
  }
  return hash.digest('hex').slice(0, 16);
};
if (codesOnly) codes(combos.slice(0, 20));
else run(combos.slice(0, 20));
for (let p = 0; p < passes; p++) {
  const c0 = process.cpuUsage();
  const sum = codesOnly
    ? codes(combos)
    : createHash('sha256')
        .update(JSON.stringify(run(combos)))
        .digest('hex')
        .slice(0, 16);
  const c = process.cpuUsage(c0);
  const s = (c.user + c.system) / 1e6;
  console.log(
    `${name}${codesOnly ? ' codes' : ''}: ${s.toFixed(3)} s CPU, ${((bars * combos.length) / s / 1e6).toFixed(2)} M bar-steps/s, checksum ${sum}`,
  );
}
