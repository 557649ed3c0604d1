import { afterEach, describe, expect, it, vi } from 'vitest';
import { loadDataDir } from '../../../shared/adapters/fs/bars.js';
import { backtestPortfolio } from '../../../shared/core/backtest/fast/portfolio.js';
import type { BarSeries } from '../../../shared/core/market/types.js';
import { riskRulesSchema } from '../../../shared/core/risk/index.js';
import { strategyRegistry } from '../../../shared/core/strategies/index.js';
import type { StrategyDefinition } from '../../../shared/core/strategies/types.js';
import { IndicatorCache } from '../../../shared/core/strategies/vector.js';
import { COSTED_OPTIONS } from '../../helpers/backtest-options.js';

const bundled = loadDataDir('data', ['SPY', 'QQQ', 'AAPL', 'MSFT']);
const input = {
  strategy: strategyRegistry.get('bollinger') as StrategyDefinition<unknown>,
  params: { period: 20, k: 2, atrStop: 2 },
  options: { ...COSTED_OPTIONS, risk: riskRulesSchema.parse({}) },
};

/** How many indicator arrays (Bollinger's bands, the ATR) each backtest computes from the bars. */
function computedPerBacktest(runs: readonly (readonly BarSeries[])[]): number[] {
  let computed = 0;
  const get = IndicatorCache.prototype.get;
  const spy = vi.spyOn(IndicatorCache.prototype, 'get').mockImplementation(function (
    this: IndicatorCache,
    key,
    compute,
    bytes,
  ) {
    const counted = () => {
      computed++;
      return compute();
    };
    return get.call(this, key, counted, bytes);
  });
  const counts = runs.map((series) => {
    computed = 0;
    backtestPortfolio({ ...input, series });
    return computed;
  });
  spy.mockRestore();
  return counts;
}

afterEach(() => vi.restoreAllMocks());

describe("a one-off portfolio backtest's preparation", () => {
  it('is kept for the same series from their second backtest on, not after their first', () => {
    const copies = bundled.map((s) => ({ ...s }));
    const counts = computedPerBacktest([copies, copies, copies, copies]);
    // Bollinger's bands and the ATR for each of the four symbols, in the first two backtests only.
    expect(counts).toEqual([8, 8, 0, 0]);
  });

  it('keeps the indicators per series object: from their second backtest on, in whatever array', () => {
    const copies = bundled.map((s) => ({ ...s }));
    const counts = computedPerBacktest([copies, [...copies].reverse(), [...copies].reverse(), copies]);
    expect(counts).toEqual([8, 8, 0, 0]);
  });

  it('series never seen before compute everything, every time, and report the same', () => {
    const runs = [0, 1, 2].map(() => bundled.map((s) => ({ ...s })));
    expect(computedPerBacktest(runs)).toEqual([8, 8, 8]);
    const reports = runs.map((series) => JSON.stringify(backtestPortfolio({ ...input, series })));
    expect(new Set(reports).size).toBe(1);
  });
});
