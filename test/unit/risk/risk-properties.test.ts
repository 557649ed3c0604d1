import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import * as z from 'zod';
import { runBacktest } from '../../../shared/core/backtest/engine.js';
import type { BarSeries } from '../../../shared/core/market/types.js';
import { riskRulesSchema } from '../../../shared/core/risk/rules.js';
import type { Intent, StrategyDefinition } from '../../../shared/core/strategies/types.js';
import { baseOptions } from '../../helpers/series.js';

const DAY = 86_400_000;

/** A daily path with fat-tailed moves, so that breakers trip. */
function path(symbol: string, moves: readonly number[]): BarSeries {
  const n = moves.length;
  const cols = {
    open: new Float64Array(n),
    high: new Float64Array(n),
    low: new Float64Array(n),
    close: new Float64Array(n),
  };
  let price = 100;
  for (let i = 0; i < n; i++) {
    const gap = (moves[(i * 7) % n] as number) / 3;
    const o = Math.max(1, price * (1 + gap));
    const c = Math.max(1, o * (1 + (moves[i] as number)));
    cols.open[i] = o;
    cols.close[i] = c;
    cols.high[i] = Math.max(o, c) * 1.01;
    cols.low[i] = Math.min(o, c) * 0.99;
    price = c;
  }
  const time = Float64Array.from({ length: n }, (_, i) => Date.UTC(2022, 0, 3) + i * DAY);
  return { symbol, time, ...cols, volume: new Float64Array(n).fill(1), intraday: false };
}

/** A strategy that follows a random script of signals, with or without stops of its own. */
function randomSignals(script: readonly (readonly number[])[]): StrategyDefinition<Record<string, never>> {
  let created = 0;
  return {
    name: 'random',
    description: 'random signals',
    params: z.object({}) as unknown as z.ZodType<Record<string, never>>,
    directions: ['long-only', 'long-short'],
    create() {
      const codes = script[created++ % script.length] as readonly number[];
      let i = 0;
      return {
        warmup: 0,
        onBar(bar): Intent {
          const code = codes[i++ % codes.length] as number;
          if (code === 1) return { action: 'enter', side: 'long', reason: 'random' };
          if (code === 2)
            return { action: 'enter', side: 'short', reason: 'random', stopLoss: bar.close * 1.15 };
          if (code === 3)
            return { action: 'enter', side: 'long', reason: 'random', stopLoss: bar.close * 0.85 };
          if (code === 4) return { action: 'exit', reason: 'random' };
          return { action: 'hold' };
        },
      };
    },
  };
}

const rules = riskRulesSchema.parse({
  riskPerTrade: 0.1,
  maxPositionFraction: 0.7,
  maxPortfolioHeat: 0.15,
  maxDrawdown: 0.06,
  drawdownCoolOffDays: 5,
  dailyLossLimit: 0.015,
  kellyMinTrades: 5,
  kellyWindow: 10,
  stops: { atrPeriod: 3, initialAtr: 4, trailAtr: 5, breakEvenAtR: 1 },
  correlation: { window: 10, threshold: 0.5, reduction: 0.5 },
});

const move = fc.oneof(
  { weight: 6, arbitrary: fc.double({ min: -0.03, max: 0.03, noNaN: true }) },
  { weight: 1, arbitrary: fc.double({ min: -0.2, max: 0.1, noNaN: true }) },
);

describe('risk rules over random price paths and random signals', () => {
  it('hold every invariant', () => {
    fc.assert(
      fc.property(
        fc.array(fc.array(move, { minLength: 80, maxLength: 80 }), { minLength: 3, maxLength: 3 }),
        fc.array(fc.array(fc.integer({ min: 0, max: 6 }), { minLength: 13, maxLength: 13 }), {
          minLength: 3,
          maxLength: 3,
        }),
        (paths, script) => {
          const series = paths.map((moves, k) => path(`S${k}`, moves));
          const result = runBacktest({
            series,
            strategy: randomSignals(script),
            params: {},
            options: {
              ...baseOptions,
              initialCash: 100_000,
              sizing: { mode: 'all-in' },
              cashBuffer: 0.02,
              risk: rules,
            },
          });
          const risk = result.risk;
          if (risk === undefined) throw new Error('risk report missing');
          const dayOf = (t: number) => new Date(t).toISOString().slice(0, 10);

          for (const d of risk.entryDecisions) {
            // heat never exceeds its cap
            expect(d.heatAfter).toBeLessThanOrEqual(rules.maxPortfolioHeat * d.equity + 1e-6);
            // no position ever exceeds its cap
            expect(d.qty * d.price).toBeLessThanOrEqual(rules.maxPositionFraction * d.equity + 1e-6);
            // the stop is on the losing side
            expect(d.side === 'long' ? d.stop < d.price : d.stop > d.price).toBe(true);
          }
          // no entry happens without a stop
          for (const entry of result.orders.filter((o) => o.role === 'entry' && o.status === 'filled')) {
            const stop = result.orders.find(
              (o) =>
                o.role === 'stop-loss' && o.symbol === entry.symbol && o.createdTime === entry.closedTime,
            );
            expect(stop, `entry ${entry.id} has a stop`).toBeDefined();
          }
          const events = risk.breakerEvents;
          for (const trip of events.filter((e) => e.action === 'trip')) {
            if (trip.breaker === 'drawdown') {
              // after a drawdown trip, no entry until the reset
              const reset = events.find(
                (e) => e.breaker === 'drawdown' && e.action === 'reset' && e.time >= trip.time,
              );
              const until = reset?.time ?? Number.POSITIVE_INFINITY;
              const during = risk.entryDecisions.filter((d) => d.time >= trip.time && d.time < until);
              expect(during).toEqual([]);
            }
            if (trip.breaker === 'daily-loss') {
              // after a daily-loss trip, no entry happens on the same day
              const sameDay = risk.entryDecisions.filter(
                (d) => d.time >= trip.time && dayOf(d.time) === dayOf(trip.time),
              );
              expect(sameDay).toEqual([]);
            }
          }
          expect(Number.isFinite(result.metrics.equityFinal)).toBe(true);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('the random paths do trip the breakers (the properties above are not vacuous)', () => {
    let trips = 0;
    let decisions = 0;
    fc.assert(
      fc.property(
        fc.array(fc.array(move, { minLength: 80, maxLength: 80 }), { minLength: 3, maxLength: 3 }),
        (paths) => {
          const result = runBacktest({
            series: paths.map((moves, k) => path(`S${k}`, moves)),
            strategy: randomSignals([
              [1, 0, 3, 4, 2, 0, 1],
              [3, 1, 0, 0, 4],
              [2, 0, 4, 1],
            ]),
            params: {},
            options: { ...baseOptions, initialCash: 100_000, sizing: { mode: 'all-in' }, risk: rules },
          });
          trips += result.risk?.breakerEvents.filter((e) => e.action === 'trip').length ?? 0;
          decisions += result.risk?.entryDecisions.length ?? 0;
        },
      ),
      { numRuns: 50 },
    );
    expect(trips).toBeGreaterThan(10);
    expect(decisions).toBeGreaterThan(100);
  });
});
