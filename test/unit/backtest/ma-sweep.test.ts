import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { loadDataDir } from '../../../shared/adapters/fs/bars.js';
import { runBacktest } from '../../../shared/core/backtest/engine.js';
import { sweepMaPairs } from '../../../shared/core/backtest/ma-sweep.js';
import type { BacktestOptions } from '../../../shared/core/backtest/types.js';
import type { SizingSpec } from '../../../shared/core/sizing/index.js';
import { maCrossover } from '../../../shared/core/strategies/ma-crossover.js';

const bundled = loadDataDir('data', ['SPY', 'QQQ', 'AAPL', 'MSFT']);

const sizings: SizingSpec[] = [
  { mode: 'all-in' },
  { mode: 'fixed', qty: 150 },
  { mode: 'fraction', fraction: 0.9 },
  { mode: 'atr-risk', risk: 0.02 },
];

describe('the MA sweep kernel equals runBacktest', () => {
  it('on sampled pairs, symbols, sizings, directions, stops and costs of the bundled data', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 3 }),
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 1, max: 120 }),
        fc.constantFrom('sma' as const, 'ema' as const),
        fc.constantFrom('long-only' as const, 'long-short' as const),
        fc.option(fc.constantFrom(1, 2, 3.5), { nil: undefined }),
        fc.integer({ min: 0, max: 3 }),
        fc.record({
          slippageBps: fc.constantFrom(0, 5, 12.5),
          perShare: fc.constantFrom(0, 0.005),
          perOrder: fc.constantFrom(0, 1),
          percent: fc.constantFrom(0, 0.001),
          minimum: fc.constantFrom(0, 1),
          maxPositionFraction: fc.option(fc.constantFrom(0.2, 1), { nil: undefined }),
          fractional: fc.boolean(),
          endOfData: fc.constantFrom('hold' as const, 'close' as const),
          startIndex: fc.constantFrom(0, 200),
        }),
        (symbolIndex, fast, extra, ma, direction, atrStop, sizingIndex, o) => {
          const sizing = sizings[sizingIndex] as SizingSpec;
          if (sizing.mode === 'atr-risk' && atrStop === undefined) return;
          const series = bundled[symbolIndex] as (typeof bundled)[number];
          const slow = fast + extra;
          const options: BacktestOptions = {
            initialCash: 100_000,
            sizing,
            ...(o.maxPositionFraction === undefined ? {} : { maxPositionFraction: o.maxPositionFraction }),
            cashBuffer: 0.02,
            commission: {
              perShare: o.perShare,
              perOrder: o.perOrder,
              percent: o.percent,
              minimum: o.minimum,
            },
            slippageBps: o.slippageBps,
            fractional: o.fractional,
            endOfData: o.endOfData,
            startIndex: o.startIndex,
            riskFreeRate: 0.02,
            direction,
          };
          const base = { ma, atrPeriod: 14, ...(atrStop === undefined ? {} : { atrStop }) };
          // Three pairs: the first two share the two-lane curve pass, the third runs alone.
          const pairs = [
            { fast, slow },
            { fast: slow, slow: slow + fast },
            { fast: Math.max(1, fast - 1), slow: slow + 3 },
          ];
          const kernel = sweepMaPairs(series, base, pairs, options);
          pairs.forEach((pair, i) => {
            const engine = runBacktest({
              series: [series],
              strategy: maCrossover,
              params: { ...base, ...pair },
              options,
            });
            expect(kernel[i]).toEqual(engine.metrics);
          });
        },
      ),
      { numRuns: 200 },
    );
  });

  it('on the benchmark grid sample, with the config defaults', () => {
    const options: BacktestOptions = {
      initialCash: 100_000,
      sizing: { mode: 'atr-risk', risk: 0.02 },
      maxPositionFraction: 0.2,
      cashBuffer: 0.02,
      commission: { perShare: 0, perOrder: 0, percent: 0, minimum: 0 },
      slippageBps: 5,
      fractional: false,
      endOfData: 'close',
      riskFreeRate: 0,
    };
    const base = { ma: 'sma' as const, atrPeriod: 14, atrStop: 2 };
    const pairs = [
      { fast: 5, slow: 20 },
      { fast: 10, slow: 30 },
      { fast: 20, slow: 100 },
      { fast: 50, slow: 200 },
    ];
    for (const series of bundled) {
      const kernel = sweepMaPairs(series, base, pairs, options);
      pairs.forEach((pair, i) => {
        const engine = runBacktest({
          series: [series],
          strategy: maCrossover,
          params: { ...base, ...pair },
          options,
        });
        expect(kernel[i]).toEqual(engine.metrics);
        expect(engine.metrics.trades).toBeGreaterThan(0);
      });
    }
  });

  it('names a bad bar time as computeMetrics does, whichever lane the pair runs in', () => {
    const spy = bundled[0] as (typeof bundled)[number];
    const time = Float64Array.from(spy.time);
    time[300] = time[299] as number;
    const series = { ...spy, time };
    const options: BacktestOptions = {
      initialCash: 100_000,
      sizing: { mode: 'all-in' },
      cashBuffer: 0,
      commission: { perShare: 0, perOrder: 0, percent: 0, minimum: 0 },
      slippageBps: 0,
      fractional: false,
      endOfData: 'hold',
      riskFreeRate: 0,
    };
    const base = { ma: 'sma' as const, atrPeriod: 14 };
    for (const pairs of [
      [{ fast: 5, slow: 20 }],
      [
        { fast: 5, slow: 20 },
        { fast: 10, slow: 30 },
      ],
    ]) {
      expect(() => sweepMaPairs(series, base, pairs, options)).toThrow(
        'metrics input time[300]: must be finite and after time[299]',
      );
    }
    expect(() => sweepMaPairs(spy, base, [{ fast: 5, slow: 20 }], { ...options, riskFreeRate: -1 })).toThrow(
      'metrics input riskFreeRate',
    );
  });
});
