import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CurveStats, curveStats, curveStatsPair } from '../../../shared/core/metrics/index.js';

const DAY = 86_400_000;

/** Equity curves with flat stretches (a kernel's flat bars), new peaks, falls, zero and negative equity. */
const curveArb = (length: number) =>
  fc.array(
    fc.oneof(
      fc.constant(Number.NaN), // repeat the previous value
      fc.integer({ min: -2_000_000, max: 20_000_000 }).map((cents) => cents / 100),
    ),
    { minLength: length, maxLength: length },
  );

function fill(values: readonly number[], initial: number): Float64Array {
  const out = new Float64Array(values.length);
  let previous = initial;
  values.forEach((v, i) => {
    previous = Number.isNaN(v) ? previous : v;
    out[i] = previous;
  });
  return out;
}

describe('curveStatsPair', () => {
  it('gives each curve exactly what curveStats gives it alone', () => {
    fc.assert(
      fc.property(
        fc
          .integer({ min: 1, max: 60 })
          .chain((n) =>
            fc.tuple(
              curveArb(n),
              curveArb(n),
              fc.array(fc.integer({ min: 1, max: 4 }), { minLength: n, maxLength: n }),
              fc.constantFrom(0, 0.0001, -0.00002),
            ),
          ),
        fc.constantFrom(100_000, 1, 50_000.5),
        ([a, b, gaps, rf], initial) => {
          const time = new Float64Array(gaps.length);
          let t = Date.parse('2021-01-04T00:00:00Z');
          gaps.forEach((g, i) => {
            t += g * DAY;
            time[i] = t;
          });
          const equityA = fill(a, initial);
          const equityB = fill(b, initial);
          const aloneA = new CurveStats();
          const aloneB = new CurveStats();
          curveStats(time, equityA, time.length, initial, rf, aloneA);
          curveStats(time, equityB, time.length, initial, rf, aloneB);
          const pairA = new CurveStats();
          const pairB = new CurveStats();
          curveStatsPair(time, equityA, equityB, time.length, initial, rf, pairA, pairB);
          expect(pairA).toEqual(aloneA);
          expect(pairB).toEqual(aloneB);
          expect(aloneA.finite).toBe(true);
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe('curveStats: finite', () => {
  it('is false exactly when a point is not finite, alone and in a pair', () => {
    fc.assert(
      fc.property(
        fc
          .integer({ min: 1, max: 40 })
          .chain((n) =>
            fc.tuple(
              fc.array(fc.integer({ min: 1, max: 2_000_000 }), { minLength: n, maxLength: n }),
              fc.option(fc.nat(n - 1), { nil: undefined }),
              fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY),
            ),
          ),
        ([cents, bad, value]) => {
          const time = Float64Array.from(cents, (_, i) => i * DAY);
          const equity = Float64Array.from(cents, (c) => c / 100);
          if (bad !== undefined) equity[bad] = value;
          const alone = new CurveStats();
          curveStats(time, equity, time.length, 10_000, 0, alone);
          expect(alone.finite).toBe(bad === undefined);
          const other = Float64Array.from(cents, (c) => c / 50);
          const [a, b] = [new CurveStats(), new CurveStats()];
          curveStatsPair(time, other, equity, time.length, 10_000, 0, a, b);
          expect(a.finite).toBe(true);
          expect(b.finite).toBe(bad === undefined);
        },
      ),
      { numRuns: 300 },
    );
  });
});
