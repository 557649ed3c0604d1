import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import * as z from 'zod';
import { runSleevesBacktest } from '../../../shared/core/backtest/sleeves.js';
import type { BarSeries } from '../../../shared/core/market/types.js';
import type { Sleeve } from '../../../shared/core/portfolio/sleeves.js';
import { riskRulesSchema } from '../../../shared/core/risk/rules.js';
import type { Intent, StrategyDefinition } from '../../../shared/core/strategies/types.js';
import { type SleevesState, sleevesState } from '../../../shared/core/trading/sleeves-close.js';
import { baseOptions } from '../../helpers/series.js';

const DAY = 86_400_000;

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
    const o = Math.max(1, price * (1 + (((i * 7) % 5) - 2) / 300));
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

/** Random signals per instance; long-only scripts never ask for a short. */
function randomSignals(
  script: readonly (readonly number[])[],
  longOnly: boolean,
): StrategyDefinition<unknown> {
  let created = 0;
  return {
    name: 'random',
    description: 'random signals',
    directions: ['long-only', 'long-short'],
    params: z.object({}) as unknown as z.ZodType<unknown>,
    create() {
      const codes = script[created++ % script.length] as readonly number[];
      let i = 0;
      return {
        warmup: 0,
        onBar(bar): Intent {
          const code = codes[i++ % codes.length] as number;
          if (code === 1) return { action: 'enter', side: 'long', reason: 'random' };
          if (code === 2 && !longOnly)
            return { action: 'enter', side: 'short', reason: 'random', stopLoss: bar.close * 1.15 };
          if (code === 3)
            return { action: 'enter', side: 'long', reason: 'random', stopLoss: bar.close * 0.9 };
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
  maxPortfolioHeat: 0.3,
  maxDrawdown: 0.1,
  drawdownCoolOffDays: 5,
  dailyLossLimit: 0.03,
  kellyMinTrades: 5,
  kellyWindow: 10,
  stops: { atrPeriod: 3, initialAtr: 4, trailAtr: 5, breakEvenAtR: 1 },
  correlation: { window: 10, threshold: 0.5, reduction: 0.5 },
});

const move = fc.oneof(
  { weight: 6, arbitrary: fc.double({ min: -0.03, max: 0.03, noNaN: true }) },
  { weight: 1, arbitrary: fc.double({ min: -0.15, max: 0.1, noNaN: true }) },
);
const SYMBOLS = ['S0', 'S1', 'S2'];

const sleeveArb = fc.record({
  script: fc.array(fc.array(fc.integer({ min: 0, max: 6 }), { minLength: 11, maxLength: 11 }), {
    minLength: 3,
    maxLength: 3,
  }),
  symbols: fc.subarray(SYMBOLS, { minLength: 1 }),
  weight: fc.double({ min: 0.1, max: 1, noNaN: true }),
  sizing: fc.constantFrom(
    { mode: 'all-in' } as const,
    { mode: 'fraction', fraction: 0.3 } as const,
    { mode: 'fixed', qty: 7 } as const,
  ),
});

interface SleeveSpec {
  readonly script: readonly (readonly number[])[];
  readonly symbols: readonly string[];
  readonly weight: number;
  readonly sizing: Sleeve['sizing'];
}

function sleevesOf(specs: readonly SleeveSpec[], longOnly: boolean): Sleeve[] {
  const sum = specs.reduce((a, s) => a + s.weight, 0);
  return specs.map((s, k) => ({
    id: `s${k}`,
    strategy: randomSignals(s.script, longOnly),
    params: {},
    direction: longOnly ? 'long-only' : 'long-short',
    symbols: s.symbols,
    weight: s.weight / sum,
    minWeight: 0,
    maxWeight: 1,
    ...(s.sizing === undefined ? {} : { sizing: s.sizing }),
  }));
}

describe('sleeves over random paths and random signals', () => {
  it('keep the ledger: account = sum of sleeves at every close, no sleeve short in long-only, P&L to the cent', () => {
    fc.assert(
      fc.property(
        fc.array(fc.array(move, { minLength: 90, maxLength: 90 }), { minLength: 3, maxLength: 3 }),
        fc.array(sleeveArb, { minLength: 1, maxLength: 4 }),
        fc.boolean(),
        fc.boolean(),
        fc.constantFrom('fixed', 'inverse-volatility', 'risk-parity') as fc.Arbitrary<
          'fixed' | 'inverse-volatility' | 'risk-parity'
        >,
        (paths, specs, longOnly, withRisk, method) => {
          const series = paths.map((moves, k) => path(SYMBOLS[k] as string, moves));
          const sleeves = sleevesOf(specs, longOnly);
          let closes = 0;
          const result = runSleevesBacktest(
            {
              series,
              sleeves,
              options: {
                ...baseOptions,
                initialCash: 100_000,
                sizing: { mode: 'all-in' },
                cashBuffer: 0.02,
                commission: { perShare: 0.005, perOrder: 1, percent: 0, minimum: 1 },
                slippageBps: 7,
                endOfData: 'close',
                ...(withRisk ? { risk: rules } : {}),
              },
              allocation: { method, lookback: 20, rebalance: 'monthly', driftThreshold: 0.05 },
              correlation: { window: 15, threshold: 0.6, cut: 0.5 },
            },
            (session) => {
              closes++;
              // account position = sum of the sleeves' positions, symbol by symbol, at every close
              for (const symbol of SYMBOLS) {
                const sum = session.books.reduce((a, b) => a + b.signedQty(symbol), 0);
                expect(session.account.positions.get(symbol) ?? 0).toBeCloseTo(sum, 9);
              }
              expect(session.account.cash).toBe(session.books.reduce((a, b) => a + b.cash, 0));
              if (longOnly) {
                for (const book of session.books) {
                  for (const p of book.positions.values()) {
                    expect(p.side).toBe(1);
                    expect(p.qty).toBeGreaterThan(0);
                  }
                }
              }
            },
          );
          expect(closes).toBe(90);
          // sum of the sleeves' net P&L = the account's, to the cent
          const sleevesPnl = result.sleeves.reduce((a, s) => a + Math.round(s.netPnl * 100), 0);
          const accountPnl = Math.round(result.metrics.equityFinal * 100) - 100_000_00;
          expect(sleevesPnl).toBe(accountPnl);
          // with everything closed at the end, each sleeve's trades add up to its P&L
          for (const s of result.sleeves) {
            expect(s.trades.reduce((a, t) => a + Math.round(t.pnl * 100), 0)).toBe(
              Math.round(s.netPnl * 100),
            );
            for (const t of s.trades) expect(t.sleeve).toBe(s.id);
          }
          expect(result.trades.length).toBe(result.sleeves.reduce((a, s) => a + s.trades.length, 0));
          // every trade is in one of its sleeve's symbols
          for (const t of result.trades) {
            expect(sleeves.find((s) => s.id === t.sleeve)?.symbols).toContain(t.symbol);
          }
          // weights sum to 1 at every close
          for (const w of result.allocation.weights) expect(w.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 9);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('weights at a close never read a return from that close or later', () => {
    fc.assert(
      fc.property(
        fc.array(fc.array(move, { minLength: 120, maxLength: 120 }), { minLength: 3, maxLength: 3 }),
        fc.array(fc.array(move, { minLength: 40, maxLength: 40 }), { minLength: 3, maxLength: 3 }),
        fc.array(sleeveArb, { minLength: 2, maxLength: 3 }),
        fc.constantFrom('inverse-volatility', 'risk-parity') as fc.Arbitrary<
          'inverse-volatility' | 'risk-parity'
        >,
        (paths, tails, specs, method) => {
          const cut = 88; // 2022-04-01: the first close of a month, so a scheduled reallocation happens there
          const run = (alter: boolean) =>
            runSleevesBacktest({
              series: paths.map((moves, k) =>
                path(
                  SYMBOLS[k] as string,
                  alter ? [...moves.slice(0, cut), ...(tails[k] as number[])] : moves,
                ),
              ),
              sleeves: sleevesOf(specs, true),
              options: {
                ...baseOptions,
                initialCash: 100_000,
                sizing: { mode: 'all-in' },
                endOfData: 'close',
              },
              allocation: { method, lookback: 20, rebalance: 'monthly' },
              correlation: { window: 15, threshold: 0.6, cut: 0.5 },
            });
          const a = run(false);
          const b = run(true);
          // Bars up to slot cut−1 are identical and differ from `cut` on: the weights decided at the
          // close of `cut` (a scheduled reallocation) may read returns up to cut−1 only, so they agree.
          const limit = Date.UTC(2022, 0, 3) + cut * DAY;
          const weightsUpTo = (r: typeof a) =>
            r.allocation.events
              .filter((e) => e.time <= limit)
              .map((e) => [e.time, e.reason, e.weights, e.inputs]);
          expect(a.allocation.events.some((e) => e.time === limit && e.reason === 'schedule')).toBe(true);
          expect(weightsUpTo(b)).toEqual(weightsUpTo(a));
          expect(b.allocation.weights.slice(0, cut + 1)).toEqual(a.allocation.weights.slice(0, cut + 1));
        },
      ),
      { numRuns: 25 },
    );
  });
});

describe('a sleeves backtest started from a state (a shadow backtest from the middle of a run)', () => {
  it('trades exactly as the run the state was taken from, from that close on', () => {
    fc.assert(
      fc.property(
        fc.array(fc.array(move, { minLength: 90, maxLength: 90 }), { minLength: 3, maxLength: 3 }),
        fc.array(sleeveArb, { minLength: 1, maxLength: 4 }),
        fc.constantFrom('fixed', 'inverse-volatility', 'risk-parity') as fc.Arbitrary<
          'fixed' | 'inverse-volatility' | 'risk-parity'
        >,
        fc.integer({ min: 20, max: 70 }),
        (paths, specs, method, k) => {
          const series = paths.map((moves, j) => path(SYMBOLS[j] as string, moves));
          // Fresh strategies for each run (the scripted ones count their instances).
          const input = {
            series,
            sleeves: sleevesOf(specs, true),
            options: {
              ...baseOptions,
              initialCash: 100_000,
              sizing: { mode: 'all-in' as const },
              cashBuffer: 0.02,
              commission: { perShare: 0.005, perOrder: 1, percent: 0, minimum: 1 },
              slippageBps: 7,
              endOfData: 'close' as const,
            },
            allocation: { method, lookback: 20, rebalance: 'monthly' as const, driftThreshold: 0.05 },
            correlation: { window: 15, threshold: 0.6, cut: 0.5 },
          };
          const at = Date.UTC(2022, 0, 3) + k * DAY;
          // The state at close k, its fills booked (the observer sees it before the close step settles).
          let state: SleevesState | undefined;
          const full = runSleevesBacktest(input, (session, time, allocation) => {
            if (time === at) state = sleevesState(session, allocation);
          });
          if (state === undefined) throw new Error('no close at k');
          // As end-of-day books it: before this close's bar counted a session held (the NAV, marked
          // already, is reported only and decides nothing).
          const booked: SleevesState = {
            ...state,
            books: state.books.map((b) => ({
              ...b,
              positions: b.positions.map((p) => ({ ...p, sessionsHeld: p.sessionsHeld - 1 })),
            })),
          };
          const restarted = runSleevesBacktest({
            ...input,
            sleeves: sleevesOf(specs, true),
            options: { ...input.options, startIndex: k },
            openingState: booked,
          });
          const key = (t: (typeof full.trades)[number]) =>
            `${t.sleeve} ${t.symbol} ${t.entryTime} ${t.qty} ${t.entryPrice} ${t.exitTime} ${t.exitPrice} ${t.pnl}`;
          const fromK = (r: typeof full) =>
            r.trades
              .filter((t) => t.exitTime === null || t.exitTime > at)
              .map(key)
              .sort();
          expect(fromK(restarted)).toEqual(fromK(full));
          // The account ends where the full run's ends.
          expect(restarted.metrics.equityFinal).toBeCloseTo(full.metrics.equityFinal, 6);
        },
      ),
      { numRuns: 40 },
    );
  });

  it('refuses opening positions together with a state', () => {
    const series = SYMBOLS.map((s) =>
      path(
        s,
        Array.from({ length: 30 }, () => 0.001),
      ),
    );
    const sleeves = sleevesOf(
      [{ script: [[0]], symbols: ['S0'], weight: 1, sizing: { mode: 'all-in' } }],
      true,
    );
    const options = { ...baseOptions, initialCash: 100_000, sizing: { mode: 'all-in' as const } };
    let state: SleevesState | undefined;
    runSleevesBacktest({ series, sleeves, options }, (session, _time, allocation) => {
      state ??= sleevesState(session, allocation);
    });
    expect(() =>
      runSleevesBacktest({
        series,
        sleeves,
        options,
        openingState: state as SleevesState,
        opening: [
          {
            sleeve: 's0',
            symbol: 'S0',
            qty: 1,
            price: 100,
            entryTime: 0,
            stop: null,
            entryRef: null,
            initialRisk: null,
            sessionsHeld: 0,
          },
        ],
      }),
    ).toThrow(/opening positions or a state, not both/);
  });
});
