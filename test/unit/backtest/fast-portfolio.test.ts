import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SWEEP_GRIDS } from '../../../bench/strategies.js';
import { loadDataDir } from '../../../shared/adapters/fs/bars.js';
import { runBacktest } from '../../../shared/core/backtest/engine.js';
import {
  backtestPortfolio,
  FastPortfolio,
  FastPortfolioScratch,
  runFastPortfolio,
  sweepFastPortfolio,
} from '../../../shared/core/backtest/fast/portfolio.js';
import type { BacktestOptions } from '../../../shared/core/backtest/types.js';
import type { BarSeries } from '../../../shared/core/market/types.js';
import { expandGrid } from '../../../shared/core/research/grid.js';
import { riskRulesSchema } from '../../../shared/core/risk/index.js';
import type { SizingSpec } from '../../../shared/core/sizing/index.js';
import { strategyRegistry } from '../../../shared/core/strategies/index.js';
import type { StrategyDefinition } from '../../../shared/core/strategies/types.js';
import { COSTED_OPTIONS } from '../../helpers/backtest-options.js';

const bundled = loadDataDir('data', ['SPY', 'QQQ', 'AAPL', 'MSFT']);

/** `series` without the bars `drop` names (a symbol with holes in the merged calendar). */
function withHoles(series: BarSeries, drop: (bar: number) => boolean): BarSeries {
  const keep: number[] = [];
  for (let i = 0; i < series.time.length; i++) if (!drop(i)) keep.push(i);
  const pick = (a: Float64Array) => Float64Array.from(keep, (i) => a[i] as number);
  return {
    symbol: series.symbol,
    intraday: series.intraday,
    time: pick(series.time),
    open: pick(series.open),
    high: pick(series.high),
    low: pick(series.low),
    close: pick(series.close),
    volume: pick(series.volume),
  };
}

/** A result as JSON, typed arrays as arrays. */
const json = (value: unknown) =>
  JSON.stringify(value, (_, v) => (ArrayBuffer.isView(v) ? Array.from(v as Float64Array) : v));

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
    correlation: { window: 20, threshold: 0.5, reduction: 0.5 },
    stops: { trailAtr: 1.5, breakEvenAtR: 1, timeStopDays: 15, takeProfitR: 2, atrPeriod: 10 },
  }),
  riskRulesSchema.parse({ maxDrawdown: 0.02, drawdownCoolOffDays: 3, dailyLossLimit: 0.005 }),
];

const optionsArb = fc.record({
  sizingIndex: fc.integer({ min: 0, max: 3 }),
  riskIndex: fc.integer({ min: 0, max: 3 }),
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
    direction: o.direction,
    ...(risk === undefined ? {} : { risk }),
  };
}

/** 2-4 distinct bundled symbols in a drawn order, one of them with holes in the calendar when drawn. */
const portfolioArb = fc.record({
  symbols: fc.shuffledSubarray([0, 1, 2, 3], { minLength: 2, maxLength: 4 }),
  holes: fc.constantFrom(0, 0, 3, 7),
});

function portfolioOf(p: { symbols: number[]; holes: number }): BarSeries[] {
  return p.symbols.map((i, at) => {
    const series = bundled[i] as BarSeries;
    return at === 1 && p.holes > 0 ? withHoles(series, (bar) => bar % p.holes === 1) : series;
  });
}

function comboOf(name: string, index: number, atrStop: number | undefined): Record<string, unknown> {
  const combos = expandGrid(SWEEP_GRIDS[name] as NonNullable<(typeof SWEEP_GRIDS)[string]>);
  return {
    ...(combos[index % combos.length] as Record<string, unknown>),
    ...(atrStop === undefined ? {} : { atrStop }),
  };
}

describe('the fast engine portfolio mode equals the reference engine (runBacktest)', () => {
  for (const name of strategyRegistry.keys()) {
    it(`${name}: the whole report on random portfolios and settings, with and without the risk rules`, () => {
      const strategy = strategyRegistry.get(name) as StrategyDefinition<unknown>;
      let trades = 0;
      let riskTrades = 0;
      let breakerEvents = 0;
      let stopMoves = 0;
      fc.assert(
        fc.property(fc.nat(100_000), portfolioArb, optionsArb, (comboIndex, p, o) => {
          const options = optionsOf(o);
          if (!strategy.directions.includes(options.direction ?? 'long-only')) return;
          const series = portfolioOf(p);
          const params = comboOf(name, comboIndex, o.atrStop);
          const reference = runBacktest({ series, strategy, params, options });
          const data = new FastPortfolio(series, options.startIndex, options.endIndex);
          const scratch = new FastPortfolioScratch(data);
          const parsed = strategy.params.parse(params);
          const fast = runFastPortfolio(data, strategy, parsed, options, scratch, true);
          expect(fast).toEqual(reference);
          // The CLI's JSON document too: the same keys in the same order.
          expect(json(fast)).toBe(json(reference));
          // Unrecorded (what a grid reads): the same metrics, buffers reused.
          expect(runFastPortfolio(data, strategy, parsed, options, scratch).metrics).toEqual(
            reference.metrics,
          );
          // What `quantshift backtest` runs: the preparation and indicator caches shared with every
          // earlier run on the same series objects (other portfolios, parameters and spans).
          expect(backtestPortfolio({ series, strategy, params, options })).toEqual(reference);
          trades += reference.trades.length;
          if (reference.risk !== undefined) {
            riskTrades += reference.trades.length;
            breakerEvents += reference.risk.breakerEvents.length;
            stopMoves += reference.risk.stopMoves;
          }
        }),
        { numRuns: 30 },
      );
      // Not vacuous: the drawn settings trade, breakers trip and stops move.
      expect(trades).toBeGreaterThan(100);
      expect(riskTrades).toBeGreaterThan(20);
      expect(breakerEvents).toBeGreaterThan(0);
      expect(stopMoves).toBeGreaterThan(0);
    });
  }

  it('breakers tripping and resetting, flatten on a daily loss, on daily and intraday calendars', () => {
    const rules = riskRulesSchema.parse({
      maxDrawdown: 0.02,
      drawdownCoolOffDays: 3,
      dailyLossLimit: 0.005,
      flattenOnDailyLoss: true,
      stops: { trailAtr: 2, timeStopDays: 10 },
    });
    const day0 = Date.UTC(2020, 0, 1);
    const intraday = (s: BarSeries): BarSeries => ({
      ...s,
      intraday: true,
      time: s.time.map((_, i) => day0 + Math.floor(i / 4) * 86_400_000 + (i % 4) * 3_600_000),
    });
    let trips = 0;
    let resets = 0;
    for (const series of [bundled, bundled.map(intraday)]) {
      for (const name of strategyRegistry.keys()) {
        const strategy = strategyRegistry.get(name) as StrategyDefinition<unknown>;
        const options: BacktestOptions = {
          ...COSTED_OPTIONS,
          startIndex: 100,
          risk: rules,
        };
        const params = comboOf(name, 11, 2);
        const reference = runBacktest({ series, strategy, params, options });
        expect(backtestPortfolio({ series, strategy, params, options })).toEqual(reference);
        for (const e of reference.risk?.breakerEvents ?? []) {
          if (e.action === 'trip') trips++;
          else resets++;
        }
      }
    }
    expect(trips).toBeGreaterThan(10);
    expect(resets).toBeGreaterThan(5);
  });

  it('backtests of the same series share their preparation: every span, order and parameter set equals the reference', () => {
    const options: BacktestOptions = {
      ...COSTED_OPTIONS,
    };
    // One array backtested over several spans (the walk-forward's windows), then its series in
    // another order (the same series objects, so the same indicator caches, in other columns);
    // the default rules and the aggressive ones alternate (correlation windows of 60 and 20).
    const reversed = [...bundled].reverse();
    const spans = [{}, { startIndex: 300, endIndex: 700 }, { startIndex: 50 }, { endIndex: 400 }];
    let runs = 0;
    let reduced = 0;
    for (const series of [bundled, reversed, bundled]) {
      for (const name of strategyRegistry.keys()) {
        const strategy = strategyRegistry.get(name) as StrategyDefinition<unknown>;
        for (const [at, span] of spans.entries()) {
          const input = {
            series,
            strategy,
            params: comboOf(name, 7 * at + runs, 2),
            options: { ...options, ...span, risk: riskVariants[1 + (runs % 2)] },
          };
          const reference = runBacktest(input);
          expect(backtestPortfolio(input)).toEqual(reference);
          reduced +=
            reference.risk?.reducedEntries.filter((e) => e.reasons.some((r) => /correlat/i.test(r))).length ??
            0;
          runs++;
        }
      }
    }
    // Not vacuous: entries reduced for their correlation with a held symbol.
    expect(reduced).toBeGreaterThan(0);
  });

  it('a grid on one portfolio returns the reference metrics in combination order', () => {
    const strategy = strategyRegistry.get('rsi-reversion') as StrategyDefinition<unknown>;
    const combos = expandGrid(
      SWEEP_GRIDS['rsi-reversion'] as NonNullable<(typeof SWEEP_GRIDS)[string]>,
    ).slice(0, 12);
    const series = bundled.slice(1);
    const options: BacktestOptions = {
      ...COSTED_OPTIONS,
      initialCash: 50_000,
      sizing: { mode: 'fraction', fraction: 0.5 },
      endOfData: 'hold',
      startIndex: 150,
      risk: riskRulesSchema.parse({}),
    };
    const base = { atrStop: 2 };
    const reference = combos.map(
      (combo) => runBacktest({ series, strategy, params: { ...base, ...combo }, options }).metrics,
    );
    expect(sweepFastPortfolio(series, strategy, base, combos, options)).toEqual(reference);
  });

  it('falls back to the reference engine where the fast engine does not model the run', () => {
    const strategy = strategyRegistry.get('breakout') as StrategyDefinition<unknown>;
    const options: BacktestOptions = {
      ...COSTED_OPTIONS,
      risk: riskRulesSchema.parse({ volatilityCap: { targetVolatility: 0.3, window: 20 } }),
    };
    const input = { series: bundled.slice(0, 3), strategy, params: { atrStop: 2 }, options };
    const reference = runBacktest(input);
    expect(reference.trades.length).toBeGreaterThan(0);
    expect(backtestPortfolio(input)).toEqual(reference);
  });
});
