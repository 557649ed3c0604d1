import type { BacktestOptions } from '../../shared/core/backtest/types.js';

/** The backtest settings the engine tests share: $100,000, ATR-risk sizing, per-share commission and slippage, closed at the end. */
export const COSTED_OPTIONS: BacktestOptions = {
  initialCash: 100_000,
  sizing: { mode: 'atr-risk', risk: 0.02 },
  cashBuffer: 0.02,
  commission: { perShare: 0.005, perOrder: 0, percent: 0, minimum: 1 },
  slippageBps: 5,
  fractional: false,
  endOfData: 'close',
  riskFreeRate: 0,
};
