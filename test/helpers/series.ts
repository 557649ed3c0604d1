import * as z from 'zod';
import type { BarSeries } from '../../shared/core/market/types.js';
import type { Intent, StrategyDefinition } from '../../shared/core/strategies/types.js';

/** A bar row for tests: [date, open, high, low, close]. */
export type Row = readonly [string, number, number, number, number];

/** Builds a daily series from rows; volume is 1000 on every bar. */
export function series(symbol: string, rows: readonly Row[]): BarSeries {
  const col = (k: number) => Float64Array.from(rows, (r) => r[k] as number);
  return {
    symbol,
    time: Float64Array.from(rows, (r) => Date.parse(`${r[0]}T00:00:00Z`)),
    open: col(1),
    high: col(2),
    low: col(3),
    close: col(4),
    volume: new Float64Array(rows.length).fill(1000),
    intraday: false,
  };
}

/**
 * A strategy that returns the given intent at the close of the given date, else hold. With several
 * symbols, give an array per date: one intent (or undefined) per symbol, in series order.
 */
export function scripted(
  script: Record<string, Intent | readonly (Intent | undefined)[]>,
  symbolCount = 1,
): StrategyDefinition<Record<string, never>> {
  let instances = 0;
  return {
    name: 'scripted',
    description: 'test script',
    params: z.object({}).strict() as unknown as z.ZodType<Record<string, never>>,
    directions: ['long-only', 'long-short'],
    create() {
      const symbolIndex = instances++ % symbolCount;
      return {
        warmup: 0,
        onBar(bar) {
          const date = new Date(bar.time).toISOString().slice(0, 10);
          const entry = script[date];
          if (entry === undefined) return { action: 'hold' };
          if (!Array.isArray(entry)) return entry as Intent;
          return entry[symbolIndex] ?? { action: 'hold' };
        },
      };
    },
  };
}

export const noCosts = { perShare: 0, perOrder: 0, percent: 0, minimum: 0 };

export const baseOptions = {
  initialCash: 10_000,
  sizing: { mode: 'fixed', qty: 10 } as const,
  cashBuffer: 0,
  commission: noCosts,
  slippageBps: 0,
  fractional: false,
  endOfData: 'hold' as const,
  riskFreeRate: 0,
};
