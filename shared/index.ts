/**
 * QuantShift's public library API, for users who script backtests and research in TypeScript.
 *
 * @example
 * ```ts
 * import { loadBarsCsv, runBacktest, strategyRegistry, sma } from './shared/index.js';
 * const spy = loadBarsCsv('data/SPY.csv');
 * const fast = sma(spy.close, 10);
 * ```
 */
export { loadBarsCsv, loadDataDir } from './adapters/fs/bars.js';
export { decide, evaluateCriteria } from './core/backtest/criteria.js';
export { type BacktestDocument, toBacktestDocument } from './core/backtest/document.js';
export { runBacktest } from './core/backtest/engine.js';
export { type MaPair, sweepMaPairs } from './core/backtest/ma-sweep.js';
export type * from './core/backtest/types.js';
export { parseConfig, type StrategyConfig } from './core/config/schema.js';
export * from './core/errors.js';
export {
  Atr,
  atr,
  Bollinger,
  bollinger,
  Ema,
  ema,
  highest,
  lowest,
  Macd,
  macd,
  Rsi,
  rsi,
  Sma,
  sma,
  trueRange,
  Wma,
  wma,
} from './core/indicators/index.js';
export { alignBars, parseBarsCsv } from './core/market/index.js';
export type { Bar, BarSeries } from './core/market/types.js';
export { computeMetrics, type Metrics, type MetricsInput } from './core/metrics/index.js';
export { parseSizing, type SizingSpec } from './core/sizing/index.js';
export { getStrategy, maCrossover, strategyRegistry } from './core/strategies/index.js';
export type { Intent, StrategyDefinition, StrategyInstance } from './core/strategies/types.js';
