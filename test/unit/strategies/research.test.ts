import { describe, expect, it } from 'vitest';
import { SWEEP_GRIDS } from '../../../bench/strategies.js';
import { loadDataDir } from '../../../shared/adapters/fs/bars.js';
import type { BacktestOptions } from '../../../shared/core/backtest/types.js';
import { criteriaSchema } from '../../../shared/core/config/schema.js';
import type { BarSeries } from '../../../shared/core/market/types.js';
import { inProcessEvaluator } from '../../../shared/core/research/evaluate.js';
import { expandGrid, type ParameterSpace } from '../../../shared/core/research/grid.js';
import { walkForward, walkForwardSettingsSchema } from '../../../shared/core/research/walk-forward.js';
import { getStrategy, strategyRegistry } from '../../../shared/core/strategies/index.js';
import { WorkerPoolEvaluator } from '../../../shared/research/pool.js';

const [spy, qqq] = loadDataDir('data', ['SPY', 'QQQ']) as [BarSeries, BarSeries];
const options: BacktestOptions = {
  initialCash: 100_000,
  sizing: { mode: 'fraction', fraction: 0.45 },
  cashBuffer: 0.02,
  commission: { perShare: 0, perOrder: 0, percent: 0, minimum: 0 },
  slippageBps: 5,
  fractional: false,
  endOfData: 'close',
  riskFreeRate: 0,
  direction: 'long-short',
};
const grids: Record<string, ParameterSpace> = {
  'rsi-reversion': { grid: { period: [7, 14], entry: [25, 30] }, constraints: [] },
  breakout: { grid: { entry: [20, 40], exit: [10, 20] }, constraints: ['exit < entry'] },
  bollinger: { grid: { period: [10, 20], k: [1.5, 2] }, constraints: [] },
  'volume-profile': { grid: { lookback: [10, 20], bins: [12, 24] }, constraints: [] },
};
const run = (strategy: string, evaluator = inProcessEvaluator) =>
  walkForward({
    series: [spy, qqq],
    strategy,
    baseParams: { atrStop: 2 },
    combos: expandGrid(grids[strategy] as ParameterSpace),
    objective: { metric: 'sharpe', minimums: { trades: 3 } },
    options,
    settings: walkForwardSettingsSchema.parse({ inSample: 504, outOfSample: 126 }),
    criteria: criteriaSchema.parse({}),
    evaluator,
  });

describe('walk-forward runs every strategy, in the run direction', () => {
  it.each(Object.keys(grids))('%s', async (strategy) => {
    const result = await run(strategy);
    const combos = expandGrid(grids[strategy] as ParameterSpace);
    const windows = [...result.perSymbol, result.portfolio].flatMap((u) => u.windows);
    expect(windows.length).toBeGreaterThan(5);
    for (const w of windows) if (w.params !== null) expect(combos).toContainEqual(w.params);
    expect(result.portfolio.trades.length).toBeGreaterThan(0);
    // the long-short run takes the short side out of sample
    const all = [...result.perSymbol, result.portfolio].flatMap((u) => u.trades);
    expect(all.some((t) => t.direction === 'short')).toBe(true);
  });

  it('gives the same result on worker threads as in-process', async () => {
    const pool = new WorkerPoolEvaluator(2);
    try {
      const threaded = await run('volume-profile', pool);
      const inProcess = await run('volume-profile');
      expect(threaded.portfolio.windows).toEqual(inProcess.portfolio.windows);
      expect(threaded.perSymbol.map((u) => u.outOfSample)).toEqual(
        inProcess.perSymbol.map((u) => u.outOfSample),
      );
    } finally {
      await pool.close();
    }
  });
});

describe('the bench sweeps', () => {
  it.each([...strategyRegistry.keys()])('%s has a grid of at least 1,000 valid combinations', (name) => {
    const combos = expandGrid(SWEEP_GRIDS[name] as ParameterSpace);
    expect(combos.length).toBeGreaterThanOrEqual(1000);
    const schema = getStrategy(name).params;
    for (const combo of combos) expect(schema.safeParse({ ...combo, atrStop: 2 }).success).toBe(true);
  });
});
