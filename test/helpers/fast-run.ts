import { FastScratch, FastSeries, runFastBacktest } from '../../shared/core/backtest/fast/engine.js';
import type { BacktestOptions } from '../../shared/core/backtest/types.js';
import type { BarSeries } from '../../shared/core/market/types.js';
import type { StrategyDefinition } from '../../shared/core/strategies/types.js';

/**
 * One recorded fast-engine run (trades, fills, equity and the breakers' final state) of `strategy`
 * on `series` with the raw parameters `raw` (parsed by the strategy's schema), as the oracle tests
 * compare it with the reference engine's.
 */
export function fastRecorded<P>(
  series: BarSeries,
  strategy: StrategyDefinition<P>,
  raw: unknown,
  options: BacktestOptions,
) {
  const data = new FastSeries(series, options.startIndex, options.endIndex);
  return runFastBacktest(
    data,
    strategy,
    strategy.params.parse(raw),
    options,
    new FastScratch(data.span),
    true,
  );
}
