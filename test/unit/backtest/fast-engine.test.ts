import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SWEEP_GRIDS } from '../../../bench/strategies.js';
import { loadDataDir } from '../../../shared/adapters/fs/bars.js';
import { runBacktest } from '../../../shared/core/backtest/engine.js';
import {
  FastScratch,
  FastSeries,
  fastMetrics,
  fastMetricsPair,
} from '../../../shared/core/backtest/fast/engine.js';
import { sweepFast } from '../../../shared/core/backtest/fast/sweep.js';
import type { BacktestOptions } from '../../../shared/core/backtest/types.js';
import { utcDay } from '../../../shared/core/market/utc-day.js';
import { computeMetrics } from '../../../shared/core/metrics/index.js';
import { expandGrid } from '../../../shared/core/research/grid.js';
import { riskRulesSchema } from '../../../shared/core/risk/index.js';
import type { SizingSpec } from '../../../shared/core/sizing/index.js';
import { strategyRegistry } from '../../../shared/core/strategies/index.js';
import { HOLD, type StrategyDefinition } from '../../../shared/core/strategies/types.js';
import type { VectorRule } from '../../../shared/core/strategies/vector.js';
import { COSTED_OPTIONS } from '../../helpers/backtest-options.js';
import { fastRecorded } from '../../helpers/fast-run.js';

const bundled = loadDataDir('data', ['SPY', 'QQQ', 'AAPL', 'MSFT']);

const sizings: SizingSpec[] = [
  { mode: 'all-in' },
  { mode: 'fixed', qty: 150 },
  { mode: 'fraction', fraction: 0.9 },
  { mode: 'atr-risk', risk: 0.02 },
];

const riskVariants = [
  undefined,
  riskRulesSchema.parse({}),
  riskRulesSchema.parse({
    maxDrawdown: 0.05,
    drawdownCoolOffDays: 5,
    dailyLossLimit: 0.01,
    flattenOnDailyLoss: true,
    kellyMinTrades: 4,
    maxPortfolioHeat: 0.03,
    kellyWindow: 10,
    stops: { trailAtr: 1.5, breakEvenAtR: 1, timeStopDays: 15, takeProfitR: 2, atrPeriod: 10 },
  }),
  riskRulesSchema.parse({ maxDrawdown: 0.02, drawdownCoolOffDays: 3, dailyLossLimit: 0.005 }),
  // No stop management, so held stretches run in the tight loop: a take-profit and a stop to hit
  // inside them, and daily-loss trips that flatten there.
  riskRulesSchema.parse({
    maxDrawdown: 0.04,
    drawdownCoolOffDays: 4,
    dailyLossLimit: 0.004,
    flattenOnDailyLoss: true,
    stops: { takeProfitR: 1.5, initialAtr: 1.5 },
  }),
];

const optionsArb = fc.record({
  sizingIndex: fc.integer({ min: 0, max: 3 }),
  riskIndex: fc.integer({ min: 0, max: riskVariants.length - 1 }),
  direction: fc.constantFrom('long-only' as const, 'long-short' as const),
  atrStop: fc.option(fc.constantFrom(1, 2, 3.5), { nil: undefined }),
  slippageBps: fc.constantFrom(0, 5, 12.5),
  perShare: fc.constantFrom(0, 0.005),
  perOrder: fc.constantFrom(0, 1),
  percent: fc.constantFrom(0, 0.001),
  minimum: fc.constantFrom(0, 1),
  maxPositionFraction: fc.option(fc.constantFrom(0.2, 1), { nil: undefined }),
  fractional: fc.boolean(),
  endOfData: fc.constantFrom('hold' as const, 'close' as const),
  startIndex: fc.constantFrom(0, 200),
  endIndex: fc.option(fc.constantFrom(900, 1100), { nil: undefined }),
  periodsPerYear: fc.option(fc.constantFrom(252, 365), { nil: undefined }),
});

type Drawn = typeof optionsArb extends fc.Arbitrary<infer T> ? T : never;

function optionsOf(o: Drawn): BacktestOptions {
  const risk = riskVariants[o.riskIndex];
  return {
    initialCash: 100_000,
    sizing: sizings[o.sizingIndex] as SizingSpec,
    ...(o.maxPositionFraction === undefined ? {} : { maxPositionFraction: o.maxPositionFraction }),
    cashBuffer: 0.02,
    commission: { perShare: o.perShare, perOrder: o.perOrder, percent: o.percent, minimum: o.minimum },
    slippageBps: o.slippageBps,
    fractional: o.fractional,
    endOfData: o.endOfData,
    startIndex: o.startIndex,
    ...(o.endIndex === undefined ? {} : { endIndex: o.endIndex }),
    riskFreeRate: 0.02,
    ...(o.periodsPerYear === undefined ? {} : { periodsPerYear: o.periodsPerYear }),
    direction: o.direction,
    ...(risk === undefined ? {} : { risk }),
  };
}

/** The fast engine against the reference engine, `runBacktest`, for one drawn setting. */
function compare(name: string, comboIndex: number, symbolIndex: number, o: Drawn) {
  const strategy = strategyRegistry.get(name) as StrategyDefinition<unknown>;
  const combos = expandGrid(SWEEP_GRIDS[name] as NonNullable<(typeof SWEEP_GRIDS)[string]>);
  const combo = combos[comboIndex % combos.length] as Record<string, unknown>;
  const raw = { ...combo, ...(o.atrStop === undefined ? {} : { atrStop: o.atrStop }) };
  const series = bundled[symbolIndex] as (typeof bundled)[number];
  const options = optionsOf(o);
  if (!strategy.directions.includes(options.direction ?? 'long-only')) return undefined;
  const reference = runBacktest({ series: [series], strategy, params: raw, options });
  const fast = fastRecorded(series, strategy, raw, options);
  return { reference, fast, series, strategy, raw, options };
}

describe('the fast engine equals the reference engine (runBacktest)', () => {
  for (const name of strategyRegistry.keys()) {
    it(`${name}: trades, fills, equity and metrics on random settings, with and without the risk rules`, () => {
      let trades = 0;
      let riskTrades = 0;
      let breakerEvents = 0;
      fc.assert(
        fc.property(
          fc.nat(100_000),
          fc.integer({ min: 0, max: 3 }),
          optionsArb,
          (comboIndex, symbolIndex, o) => {
            const run = compare(name, comboIndex, symbolIndex, o);
            if (run === undefined) return;
            const { reference, fast } = run;
            trades += reference.trades.length;
            if (reference.risk !== undefined) {
              riskTrades += reference.trades.length;
              breakerEvents += reference.risk.breakerEvents.filter((e) => e.action === 'reset').length;
              expect(fast.finalRiskState).toEqual(reference.risk.finalState);
            }
            expect(fast.trades).toEqual(reference.trades);
            expect(fast.fills).toEqual(reference.fills);
            expect(fast.equity).toEqual(reference.equity);
            expect(fast.metrics).toEqual(reference.metrics);
          },
        ),
        { numRuns: 120 },
      );
      // The comparison is not vacuous: the drawn settings trade.
      expect(trades).toBeGreaterThan(100);
      expect(riskTrades).toBeGreaterThan(20);
      expect(breakerEvents).toBeGreaterThan(0);
    });
  }

  it('the sweep returns the reference metrics in combination order', () => {
    const strategy = strategyRegistry.get('bollinger') as StrategyDefinition<unknown>;
    const combos = expandGrid(SWEEP_GRIDS.bollinger as NonNullable<(typeof SWEEP_GRIDS)[string]>).slice(
      0,
      30,
    );
    const series = bundled[1] as (typeof bundled)[number];
    const options = optionsOf({
      sizingIndex: 3,
      riskIndex: 1,
      direction: 'long-short',
      atrStop: 2,
      slippageBps: 5,
      perShare: 0.005,
      perOrder: 0,
      percent: 0,
      minimum: 1,
      maxPositionFraction: undefined,
      fractional: false,
      endOfData: 'close',
      startIndex: 200,
      endIndex: undefined,
      periodsPerYear: undefined,
    });
    const swept = sweepFast(series, strategy, { atrStop: 2 }, combos, options);
    const reference = combos.map(
      (combo) =>
        runBacktest({ series: [series], strategy, params: { atrStop: 2, ...combo }, options }).metrics,
    );
    expect(swept).toEqual(reference);
  });

  it('the sweep (two combinations per curve pass) equals the reference on random settings, every strategy', () => {
    let trades = 0;
    fc.assert(
      fc.property(
        fc.constantFrom(...strategyRegistry.keys()),
        fc.nat(100_000),
        fc.integer({ min: 1, max: 5 }),
        fc.integer({ min: 0, max: 3 }),
        optionsArb,
        (name, first, count, symbolIndex, o) => {
          const strategy = strategyRegistry.get(name) as StrategyDefinition<unknown>;
          const options = optionsOf(o);
          if (!strategy.directions.includes(options.direction ?? 'long-only')) return;
          const grid = expandGrid(SWEEP_GRIDS[name] as NonNullable<(typeof SWEEP_GRIDS)[string]>);
          const combos = Array.from({ length: count }, (_, i) => grid[(first + i * 7919) % grid.length]);
          const base = o.atrStop === undefined ? {} : { atrStop: o.atrStop };
          const series = bundled[symbolIndex] as (typeof bundled)[number];
          const reference = combos.map(
            (combo) =>
              runBacktest({ series: [series], strategy, params: { ...base, ...combo }, options }).metrics,
          );
          for (const m of reference) trades += m.trades;
          expect(sweepFast(series, strategy, base, combos as Record<string, unknown>[], options)).toEqual(
            reference,
          );
        },
      ),
      { numRuns: 60 },
    );
    expect(trades).toBeGreaterThan(100);
  });

  it('the same combinations swept again (other symbols, other base parameters) give the reference metrics', () => {
    const strategy = strategyRegistry.get('breakout') as StrategyDefinition<unknown>;
    const combos = expandGrid(SWEEP_GRIDS.breakout as NonNullable<(typeof SWEEP_GRIDS)[string]>).slice(
      40,
      45,
    );
    const options: BacktestOptions = {
      ...COSTED_OPTIONS,
      risk: riskRulesSchema.parse({}),
    };
    const reference = (series: (typeof bundled)[number], base: Record<string, unknown>) =>
      combos.map(
        (combo) =>
          runBacktest({ series: [series], strategy, params: { ...base, ...combo }, options }).metrics,
      );
    const tight = { atrStop: 1 };
    const wide = { atrStop: 3.5 };
    for (const series of bundled.slice(0, 2)) {
      expect(sweepFast(series, strategy, tight, combos, options)).toEqual(reference(series, tight));
      // The same array with other base parameters: parsed again, not read from the first sweep.
      const swept = sweepFast(series, strategy, wide, combos, options);
      expect(swept).toEqual(reference(series, wide));
      expect(swept).not.toEqual(reference(series, tight));
    }
  });

  it('a curve or bar time the metrics reject gets the reference error, alone or in a pair', () => {
    const base = bundled[0] as (typeof bundled)[number];
    const options: BacktestOptions = {
      initialCash: 100_000,
      sizing: { mode: 'all-in' },
      cashBuffer: 0,
      commission: { perShare: 0, perOrder: 0, percent: 0, minimum: 0 },
      slippageBps: 0,
      fractional: false,
      endOfData: 'close',
      riskFreeRate: 0,
    };
    const data = new FastSeries(base, 0, 99);
    const scratch = new FastScratch(data.span);
    const [a, b] = scratch.lanes;
    a.equity.fill(100_000);
    b.equity.fill(100_000);
    b.equity[40] = Number.POSITIVE_INFINITY;
    const reference = () =>
      computeMetrics({
        time: data.time,
        equity: b.equity,
        initialEquity: 100_000,
        inMarket: b.inMarket,
        tradePnls: [],
        buyHoldReturnPct: data.buyHoldReturnPct,
      });
    expect(reference).toThrow(/equity\[40\]/);
    expect(() => fastMetrics(data, options, b)).toThrow(/equity\[40\]/);
    expect(() => fastMetricsPair(data, options, a, b)).toThrow(/equity\[40\]/);
    expect(fastMetrics(data, options, a).equityFinal).toBe(100_000);
    // A last bar time that is not finite: checked once per series, named as computeMetrics names it.
    const time = Float64Array.from(base.time.slice(0, 100));
    time[99] = Number.POSITIVE_INFINITY;
    const bad = new FastSeries({ ...base, time }, 0, 99);
    expect(bad.timesValid).toBe(false);
    expect(() => fastMetrics(bad, options, a)).toThrow(/time\[99\]/);
    expect(() => fastMetricsPair(bad, options, a, a)).toThrow(/time\[99\]/);
  });

  it('with a volatility cap the sweep returns the reference metrics (the fast engine leaves it to the engine)', () => {
    const strategy = strategyRegistry.get('breakout') as StrategyDefinition<unknown>;
    const combos = expandGrid(SWEEP_GRIDS.breakout as NonNullable<(typeof SWEEP_GRIDS)[string]>).slice(0, 6);
    const series = bundled[0] as (typeof bundled)[number];
    const options: BacktestOptions = {
      ...optionsOf({
        sizingIndex: 0,
        riskIndex: 0,
        direction: 'long-only',
        atrStop: undefined,
        slippageBps: 0,
        perShare: 0,
        perOrder: 0,
        percent: 0,
        minimum: 0,
        maxPositionFraction: undefined,
        fractional: false,
        endOfData: 'close',
        startIndex: 0,
        endIndex: undefined,
        periodsPerYear: undefined,
      }),
      risk: riskRulesSchema.parse({ volatilityCap: { targetVolatility: 0.1, window: 20 } }),
    };
    const reference = combos.map(
      (combo) => runBacktest({ series: [series], strategy, params: combo, options }).metrics,
    );
    expect(reference.some((m) => m.trades > 0)).toBe(true);
    expect(sweepFast(series, strategy, {}, combos, options)).toEqual(reference);
  });

  it('skips flat stretches exactly: breakers tripping and resetting inside them, daily and intraday bars', () => {
    // Aggressive breakers: drawdown halts that reset (after the cool-off) while flat, daily-loss
    // trips; on daily bars and on the same bars four to a day (a day change inside a stretch).
    const rules = riskRulesSchema.parse({ maxDrawdown: 0.02, drawdownCoolOffDays: 3, dailyLossLimit: 0.005 });
    const day0 = Date.UTC(2020, 0, 1);
    let resetsWhileFlat = 0;
    let runs = 0;
    for (const base of bundled.slice(0, 2)) {
      const intraday = {
        ...base,
        intraday: true,
        time: base.time.map((_, i) => day0 + Math.floor(i / 4) * 86_400_000 + (i % 4) * 3_600_000),
      };
      for (const series of [base, intraday]) {
        for (const name of strategyRegistry.keys()) {
          const strategy = strategyRegistry.get(name) as StrategyDefinition<unknown>;
          const combos = expandGrid(SWEEP_GRIDS[name] as NonNullable<(typeof SWEEP_GRIDS)[string]>);
          for (const direction of ['long-only', 'long-short'] as const) {
            if (!strategy.directions.includes(direction)) continue;
            const raw = { ...(combos[(runs * 37) % combos.length] as Record<string, unknown>), atrStop: 2 };
            const options: BacktestOptions = {
              ...COSTED_OPTIONS,
              direction,
              startIndex: 100,
              risk: rules,
            };
            runs++;
            const reference = runBacktest({ series: [series], strategy, params: raw, options });
            const fast = fastRecorded(series, strategy, raw, options);
            expect(fast.trades).toEqual(reference.trades);
            expect(fast.equity).toEqual(reference.equity);
            expect(fast.metrics).toEqual(reference.metrics);
            expect(fast.finalRiskState).toEqual(reference.risk?.finalState);
            // Resets at a close that is flat, after a flat close: inside a stretch the engine skips.
            const { time, inMarket } = reference.equity;
            for (const e of reference.risk?.breakerEvents ?? []) {
              const k = time.indexOf(e.time);
              if (e.action === 'reset' && k > 0 && inMarket[k] === 0 && inMarket[k - 1] === 0) {
                resetsWhileFlat++;
              }
            }
          }
        }
      }
    }
    expect(resetsWhileFlat).toBeGreaterThan(10);
  });

  it('a rule whose codes flag held closes where it holds: the held stretch stops there, the close runs with its decision', () => {
    // The codes may flag a close where the rule does not act (its decision there is HOLD): every
    // fifth close is flagged for a held position here, so held stretches stop at closes whose
    // decision is HOLD (and, long-short, at closes where the rule enters the other way).
    let runs = 0;
    let trades = 0;
    for (const name of ['bollinger', 'rsi-reversion', 'volume-profile', 'ma-crossover']) {
      const base = strategyRegistry.get(name) as StrategyDefinition<unknown>;
      const vectorize = base.vectorize;
      if (vectorize === undefined) throw new Error(`${name} has no vectorized rule`);
      const flagged: StrategyDefinition<unknown> = {
        ...base,
        vectorize: (params, context, cache, out) => {
          const rule = vectorize(params, context, cache, out);
          const own = Uint8Array.from(rule.codes);
          const codes = Uint8Array.from(rule.codes, (c, i) =>
            i % 5 === 2 ? c | rule.longMask | rule.shortMask : c,
          );
          const maskOf = (p: string) =>
            p === 'flat' ? rule.flatMask : p === 'long' ? rule.longMask : rule.shortMask;
          const wrapped: VectorRule = {
            codes,
            flatMask: rule.flatMask,
            longMask: rule.longMask,
            shortMask: rule.shortMask,
            decide: (bar, position) =>
              ((own[bar] as number) & maskOf(position)) === 0 ? HOLD : rule.decide(bar, position),
          };
          return wrapped;
        },
      };
      const combos = expandGrid(SWEEP_GRIDS[name] as NonNullable<(typeof SWEEP_GRIDS)[string]>);
      for (const riskIndex of [0, 1, 3, 4]) {
        for (const direction of ['long-only', 'long-short'] as const) {
          if (!base.directions.includes(direction)) continue;
          const raw = { ...(combos[(runs * 53) % combos.length] as Record<string, unknown>), atrStop: 2 };
          const risk = riskVariants[riskIndex];
          const options: BacktestOptions = {
            ...COSTED_OPTIONS,
            direction,
            ...(risk === undefined ? {} : { risk }),
          };
          const series = bundled[runs % bundled.length] as (typeof bundled)[number];
          runs++;
          const reference = runBacktest({ series: [series], strategy: base, params: raw, options });
          const fast = fastRecorded(series, flagged, raw, options);
          trades += reference.trades.length;
          expect(fast.trades).toEqual(reference.trades);
          expect(fast.fills).toEqual(reference.fills);
          expect(fast.equity).toEqual(reference.equity);
          expect(fast.metrics).toEqual(reference.metrics);
          expect(fast.finalRiskState).toEqual(reference.risk?.finalState);
        }
      }
    }
    expect(trades).toBeGreaterThan(100);
  });

  it('the comparison fails when one fill rule differs (mutation check)', () => {
    const run = compare('ma-crossover', 3, 0, {
      sizingIndex: 1,
      riskIndex: 1,
      direction: 'long-only',
      atrStop: 2,
      slippageBps: 5,
      perShare: 0.005,
      perOrder: 0,
      percent: 0,
      minimum: 1,
      maxPositionFraction: undefined,
      fractional: false,
      endOfData: 'close',
      startIndex: 0,
      endIndex: undefined,
      periodsPerYear: undefined,
    });
    if (run === undefined) throw new Error('unreachable: ma-crossover supports long-only');
    expect(run.fast.fills).toEqual(run.reference.fills);
    // One more basis point of slippage in the fast engine alone: every fill price moves.
    const mutated = fastRecorded(run.series, run.strategy, run.raw, { ...run.options, slippageBps: 6 });
    expect(() => expect(mutated.fills).toEqual(run.reference.fills)).toThrow();
    expect(() => expect(mutated.metrics).toEqual(run.reference.metrics)).toThrow();
  });

  it("the breakers' trading day equals the engine's (the ISO date of the bar time)", () => {
    fc.assert(
      fc.property(fc.integer({ min: -40_000_000_000_000, max: 8_000_000_000_000 }), (time) => {
        expect(utcDay(time)).toBe(new Date(time).toISOString().slice(0, 10));
      }),
      { numRuns: 5000 },
    );
    for (const time of [0, -1, 86_399_999, 86_400_000, Date.UTC(2000, 1, 29), Date.UTC(2100, 2, 1) - 1]) {
      expect(utcDay(time)).toBe(new Date(time).toISOString().slice(0, 10));
    }
  });
});
