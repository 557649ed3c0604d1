import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import * as z from 'zod';
import { BENCH_OPTIONS } from '../../../bench/stats.js';
import { SWEEP_GRIDS } from '../../../bench/strategies.js';
import { loadDataDir } from '../../../shared/adapters/fs/bars.js';
import { comboParser, sweepFast } from '../../../shared/core/backtest/fast/sweep.js';
import type { BacktestOptions } from '../../../shared/core/backtest/types.js';
import { expandGrid } from '../../../shared/core/research/grid.js';
import { defaultRiskRules } from '../../../shared/core/risk/index.js';
import { strategyRegistry } from '../../../shared/core/strategies/index.js';
import type { StrategyDefinition } from '../../../shared/core/strategies/types.js';

/** What the whole parse gives: the parameters (keys in order) or the error's issues. */
function outcome(parse: () => unknown): unknown {
  try {
    const params = parse() as Record<string, unknown>;
    return { keys: Object.keys(params), params };
  } catch (error) {
    if (!(error instanceof z.ZodError)) throw error;
    return { issues: error.issues };
  }
}

const value = fc.oneof(
  fc.integer({ min: -5, max: 300 }),
  fc.double({ min: -2, max: 5, noNaN: true }),
  fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, undefined, null, '12', true, 1.5),
);

describe("a sweep's parameters (comboParser)", () => {
  it('equal the whole parse of base and combination, or its error, for every strategy', () => {
    for (const [name, definition] of strategyRegistry) {
      const strategy = definition as StrategyDefinition<unknown>;
      const grid = SWEEP_GRIDS[name];
      if (grid === undefined) throw new Error(`no grid for ${name}`);
      const keys = Object.keys(strategy.params.parse({}) as object);
      const gridCombos = expandGrid(grid);
      fc.assert(
        fc.property(
          fc.constantFrom({}, { atrStop: 2 }, { atrStop: 1.5, atrPeriod: 10 }, { atrStop: -1 }, { nope: 1 }),
          fc.oneof(
            fc.constantFrom(...gridCombos.slice(0, 50), ...gridCombos.slice(-50)),
            fc.dictionary(fc.constantFrom(...keys, 'unknownKey'), value, { maxKeys: 3 }),
          ),
          (base, combo) => {
            const parse = comboParser(strategy, base);
            expect(outcome(() => parse(combo))).toEqual(
              outcome(() => strategy.params.parse({ ...base, ...combo })),
            );
          },
        ),
        { numRuns: 300 },
      );
    }
  });

  it('checks the object as a whole where the schema does (ma-crossover: fast below slow)', () => {
    const strategy = strategyRegistry.get('ma-crossover') as StrategyDefinition<unknown>;
    const parse = comboParser(strategy, {});
    expect(() => parse({ fast: 50, slow: 20 })).toThrow(/fast must be less than slow/);
    expect(parse({ fast: 10, slow: 20 })).toEqual(strategy.params.parse({ fast: 10, slow: 20 }));
  });

  it("gives each combination its own object, the base's values in it", () => {
    const strategy = strategyRegistry.get('bollinger') as StrategyDefinition<unknown>;
    const parse = comboParser(strategy, { atrStop: 3 });
    const a = parse({ period: 10 }) as Record<string, unknown>;
    const b = parse({ period: 11 }) as Record<string, unknown>;
    expect(a).not.toBe(b);
    expect([a.period, b.period, a.atrStop, b.atrStop]).toEqual([10, 11, 3, 3]);
  });

  it('parses the base at its first call only (a sweep whose combinations are all parsed parses none)', () => {
    let checked = 0;
    const counted = z.number().refine(() => {
      checked++;
      return true;
    });
    const strategy = {
      params: z.object({ a: counted, b: counted }),
    } as unknown as StrategyDefinition<unknown>;
    const parse = comboParser(strategy, { a: 1, b: 2 });
    expect(checked).toBe(0);
    expect(parse({ a: 3 })).toEqual({ a: 3, b: 2 });
    // The base's two fields, then the combination's one.
    expect(checked).toBe(3);
    expect(parse({ a: 4 })).toEqual({ a: 4, b: 2 });
    expect(checked).toBe(4);
  });
});

describe("a sweep's parsed parameters kept across sweeps of the same combinations", () => {
  const [spy] = loadDataDir('data', ['SPY']);
  const series = spy as NonNullable<typeof spy>;
  const options: BacktestOptions = { ...BENCH_OPTIONS, direction: 'long-only', risk: defaultRiskRules() };
  const strategy = strategyRegistry.get('bollinger') as StrategyDefinition<unknown>;
  const combos = [
    { period: 10, k: 1.5 },
    { period: 20, k: 2 },
    { period: 30, k: 2.5 },
  ];
  const shape = (strategy.params as unknown as z.ZodObject).shape as Record<string, z.ZodType>;

  it('parses nothing again for a base with the same values in a new object', () => {
    const list = combos.map((c) => ({ ...c }));
    const counted = vi.spyOn(shape.period as z.ZodType, 'safeParse');
    try {
      const first = sweepFast(series, strategy, { atrStop: 2 }, list, options);
      const parsed = counted.mock.calls.length;
      expect(parsed).toBe(list.length);
      const second = sweepFast(series, strategy, { atrStop: 2 }, list, options);
      expect(counted.mock.calls.length).toBe(parsed);
      expect(second).toEqual(first);
      // Another value, or another key, parses again.
      sweepFast(series, strategy, { atrStop: 3 }, list, options);
      expect(counted.mock.calls.length).toBe(2 * parsed);
      sweepFast(series, strategy, { atrStop: 3, k: 2 }, list, options);
      expect(counted.mock.calls.length).toBe(3 * parsed);
    } finally {
      counted.mockRestore();
    }
  });

  it('parses again when the same base object was changed between sweeps', () => {
    const list = combos.map((c) => ({ ...c }));
    const base: Record<string, unknown> = { atrStop: 2 };
    sweepFast(series, strategy, base, list, options);
    base.atrStop = 3.5;
    const changed = sweepFast(series, strategy, base, list, options);
    const fresh = sweepFast(
      series,
      strategy,
      { atrStop: 3.5 },
      combos.map((c) => ({ ...c })),
      options,
    );
    expect(changed).toEqual(fresh);
  });

  it('parses again a combination replaced in the same array between sweeps', () => {
    const list = combos.map((c) => ({ ...c }));
    const before = sweepFast(series, strategy, { atrStop: 2 }, list, options);
    list[0] = { period: 40, k: 1.5 };
    const after = sweepFast(series, strategy, { atrStop: 2 }, list, options);
    const fresh = sweepFast(
      series,
      strategy,
      { atrStop: 2 },
      list.map((c) => ({ ...c })),
      options,
    );
    expect(after).toEqual(fresh);
    expect(after[0]).not.toEqual(before[0]);
    expect(after.slice(1)).toEqual(before.slice(1));
  });
});
