import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SWEEP_GRIDS } from '../../../bench/strategies.js';
import { loadDataDir } from '../../../shared/adapters/fs/bars.js';
import { expandGrid } from '../../../shared/core/research/grid.js';
import { strategyRegistry } from '../../../shared/core/strategies/index.js';
import type { PositionSide, StrategyDefinition } from '../../../shared/core/strategies/types.js';
import { IndicatorCache, paddedBytes } from '../../../shared/core/strategies/vector.js';

const bundled = loadDataDir('data', ['SPY', 'QQQ', 'AAPL', 'MSFT']);
const POSITIONS: readonly PositionSide[] = ['flat', 'long', 'short'];

/**
 * A strategy's vectorized rule (the fast engine's form) against its instance fed every bar in order
 * (the form the engine and the live functions run): at every bar, for a position drawn per bar, the
 * same intent; and the rule's masks never hide a bar where the instance acts.
 */
describe('vectorize equals the strategy instance, bar by bar', () => {
  for (const [name, definition] of strategyRegistry) {
    it(`${name}: same intent at every bar, for random parameters, positions and directions`, () => {
      const strategy = definition as StrategyDefinition<unknown>;
      const combos = expandGrid(SWEEP_GRIDS[name] as NonNullable<(typeof SWEEP_GRIDS)[string]>);
      let acted = 0;
      fc.assert(
        fc.property(
          fc.nat(combos.length - 1),
          fc.integer({ min: 0, max: 3 }),
          fc.option(fc.constantFrom(1, 2.5), { nil: undefined }),
          fc.constantFrom('long-only' as const, 'long-short' as const),
          fc.integer({ min: 1, max: 2 ** 30 }),
          (comboIndex, symbolIndex, atrStop, direction, seed) => {
            const raw = { ...combos[comboIndex], ...(atrStop === undefined ? {} : { atrStop }) };
            const params = strategy.params.parse(raw);
            const series = bundled[symbolIndex] as (typeof bundled)[number];
            const cache = new IndicatorCache(series);
            // The cache is shared: a second rule from it must read the same arrays.
            const first = strategy.vectorize?.(params, { direction }, cache);
            const vector = strategy.vectorize?.(params, { direction }, cache);
            expect(vector).toBeDefined();
            if (vector === undefined) return;
            expect(vector.codes).toEqual(first?.codes);
            // A reused codes array (a sweep's) gets every element written: the same codes.
            const reused = new Uint8Array(series.time.length).fill(0xff);
            expect(strategy.vectorize?.(params, { direction }, cache, reused).codes).toEqual(vector.codes);
            const instance = strategy.create(params, { direction });
            let state = seed;
            for (let i = 0; i < series.time.length; i++) {
              state = (state * 1_103_515_245 + 12_345) % 2_147_483_648;
              const position = POSITIONS[state % 3] as PositionSide;
              const expected = instance.onBar(
                {
                  time: series.time[i] as number,
                  open: series.open[i] as number,
                  high: series.high[i] as number,
                  low: series.low[i] as number,
                  close: series.close[i] as number,
                  volume: series.volume[i] as number,
                },
                { position },
              );
              const mask =
                position === 'flat'
                  ? vector.flatMask
                  : position === 'long'
                    ? vector.longMask
                    : vector.shortMask;
              const code = (vector.codes[i] as number) & mask;
              if (code === 0) {
                expect(expected, `bar ${i}`).toEqual({ action: 'hold' });
              } else {
                expect(vector.decide(i, position), `bar ${i}`).toEqual(expected);
              }
              if (expected.action !== 'hold') acted++;
            }
          },
        ),
        { numRuns: 25 },
      );
      expect(acted).toBeGreaterThan(0);
    });
  }
});

/**
 * A cache shared by a sweep's combinations in any order (rsi-reversion keeps a period's entry bits
 * for the last `entry` asked): each combination's codes equal those from a cache of its own.
 */
describe('vectorize with a cache shared across combinations', () => {
  for (const [name, definition] of strategyRegistry) {
    it(`${name}: the codes of a random sequence of combinations equal a fresh cache's`, () => {
      const strategy = definition as StrategyDefinition<unknown>;
      const combos = expandGrid(SWEEP_GRIDS[name] as NonNullable<(typeof SWEEP_GRIDS)[string]>);
      fc.assert(
        fc.property(
          fc.array(fc.nat(combos.length - 1), { minLength: 2, maxLength: 12 }),
          fc.integer({ min: 0, max: 3 }),
          fc.boolean(),
          (indices, symbolIndex, padded) => {
            const series = bundled[symbolIndex] as (typeof bundled)[number];
            const shared = new IndicatorCache(series);
            const n = series.time.length;
            // A sweep's codes array (padded to whole words) or a plain one.
            const out = padded ? paddedBytes(n) : new Uint8Array(n);
            for (const index of indices) {
              const params = strategy.params.parse(combos[index]);
              out.fill(0xff);
              const codes = strategy.vectorize?.(params, { direction: 'long-short' }, shared, out)?.codes;
              const fresh = strategy.vectorize?.(
                params,
                { direction: 'long-short' },
                new IndicatorCache(series),
              )?.codes;
              expect(codes).toEqual(fresh);
            }
          },
        ),
        { numRuns: 15 },
      );
    });
  }
});

describe('IndicatorCache.find', () => {
  it('returns what get stored under the key, and nothing for a key not stored or once the cache is emptied', () => {
    const series = bundled[0] as (typeof bundled)[number];
    const cache = new IndicatorCache(series, 1000);
    expect(cache.find<Float64Array>('a')).toBeUndefined();
    const a = cache.get(
      'a',
      () => new Float64Array(50),
      (x) => x.byteLength,
    );
    expect(cache.find<Float64Array>('a')).toBe(a);
    expect(cache.find<Float64Array>('b')).toBeUndefined();
    // 400 + 800 bytes exceed the budget: the cache is emptied before 'b' goes in.
    const b = cache.get(
      'b',
      () => new Float64Array(100),
      (x) => x.byteLength,
    );
    expect(cache.find<Float64Array>('a')).toBeUndefined();
    expect(cache.find<Float64Array>('b')).toBe(b);
  });

  it('atr: one array per period, found again until the cache is emptied, the same values after', () => {
    const series = bundled[1] as (typeof bundled)[number];
    const bytes = 8 * series.time.length;
    // Room for two arrays: a third empties the cache.
    const cache = new IndicatorCache(series, 2 * bytes + 1);
    const a14 = cache.atr(14);
    const a5 = cache.atr(5);
    expect(cache.atr(14)).toBe(a14);
    expect(cache.atr(5)).toBe(a5);
    expect(a14).not.toEqual(a5);
    const a7 = cache.atr(7);
    expect(cache.atr(7)).toBe(a7);
    const again = cache.atr(14);
    expect(again).not.toBe(a14);
    expect(again).toEqual(a14);
    expect(new IndicatorCache(series).atr(7)).toEqual(a7);
  });
});
