/**
 * A crypto config's `products:` (base increment, minimums) in the fast engines: an all-in entry sized
 * at its fill is rounded down to the increment and refused under the minimums (`orderableQty`), and
 * a stop moved by the stop management is whole cents (`productStop`), exactly as the reference
 * engine (through `decideAtClose`) does. Both fast engines against `runBacktest` on the bundled coins.
 */
import { describe, expect, it } from 'vitest';
import { SWEEP_GRIDS } from '../../../bench/strategies.js';
import { loadDataDir } from '../../../shared/adapters/fs/bars.js';
import { runBacktest } from '../../../shared/core/backtest/engine.js';
import { backtestPortfolio } from '../../../shared/core/backtest/fast/portfolio.js';
import type { BacktestOptions } from '../../../shared/core/backtest/types.js';
import { expandGrid } from '../../../shared/core/research/grid.js';
import { riskRulesSchema } from '../../../shared/core/risk/index.js';
import type { ProductIncrements } from '../../../shared/core/sizing/increments.js';
import type { SizingSpec } from '../../../shared/core/sizing/index.js';
import { strategyRegistry } from '../../../shared/core/strategies/index.js';
import type { StrategyDefinition } from '../../../shared/core/strategies/types.js';
import { fastRecorded } from '../../helpers/fast-run.js';

const coins = loadDataDir('data/crypto', ['BTC-USD', 'ETH-USD', 'SOL-USD']);
// Coarse increments and minimums, so that the rounding and the refusals bite often.
const product = (productId: string, baseIncrement: number, baseMinSize: number): ProductIncrements => ({
  productId,
  baseIncrement,
  baseMinSize,
  quoteMinSize: 10,
});
const products = {
  'BTC-USD': product('BTC-USD', 0.01, 0.05),
  'ETH-USD': product('ETH-USD', 0.1, 0.5),
  'SOL-USD': product('SOL-USD', 1, 5),
};
const managed = riskRulesSchema.parse({ stops: { trailAtr: 4, breakEvenAtR: 1.5 } });
const sizings: SizingSpec[] = [{ mode: 'all-in' }, { mode: 'atr-risk', risk: 0.01 }];

const optionsOf = (sizing: SizingSpec): BacktestOptions => ({
  initialCash: 100_000,
  sizing,
  cashBuffer: 0.02,
  commission: { perShare: 0, perOrder: 0, percent: 0.006, minimum: 0 },
  slippageBps: 5,
  fractional: true,
  endOfData: 'close',
  riskFreeRate: 0,
  periodsPerYear: 365,
  startIndex: 60,
  risk: managed,
  products,
});

const comboOf = (name: string, i: number) => {
  const combos = expandGrid(SWEEP_GRIDS[name] as NonNullable<(typeof SWEEP_GRIDS)[string]>);
  return { ...(combos[(i * 97) % combos.length] as Record<string, unknown>), atrStop: 3 };
};

describe('the fast engines apply a product table as the reference engine does', () => {
  for (const name of strategyRegistry.keys()) {
    it(`${name}: one coin on the fast engine and the three as a portfolio equal runBacktest`, () => {
      const strategy = strategyRegistry.get(name) as StrategyDefinition<unknown>;
      let trades = 0;
      for (const sizing of sizings) {
        const options = optionsOf(sizing);
        for (let i = 0; i < 3; i++) {
          const params = comboOf(name, i);
          const portfolio = runBacktest({ series: coins, strategy, params, options });
          expect(backtestPortfolio({ series: coins, strategy, params, options })).toEqual(portfolio);
          trades += portfolio.trades.length;
          for (const series of coins) {
            const reference = runBacktest({ series: [series], strategy, params, options });
            const fast = fastRecorded(series, strategy, params, options);
            expect(fast.metrics).toEqual(reference.metrics);
            expect(fast.trades).toEqual(reference.trades);
            for (const f of reference.fills) {
              const inc = products[f.symbol as keyof typeof products].baseIncrement;
              expect(Math.abs(f.qty / inc - Math.round(f.qty / inc))).toBeLessThan(1e-6);
            }
          }
        }
      }
      expect(trades).toBeGreaterThan(0);
    });
  }
});
