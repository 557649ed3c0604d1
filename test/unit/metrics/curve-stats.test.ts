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

/**
 * The pass as `docs/metrics.md` defines it, bar by bar with no shortcut (the code before flat bars
 * took their shorter path): `curveStats` and `curveStatsPair` must give exactly its figures.
 */
function referenceStats(
  time: Float64Array,
  equity: Float64Array,
  initial: number,
  rf: number,
): Omit<CurveStats, 'finite'> {
  let returnCount = 0;
  let excessMean = 0;
  let excessSquaredDeviations = 0;
  let downsideSquares = 0;
  let returnsDefined = true;
  let peak = initial;
  let peakTime = (time[0] as number) - DAY;
  let underwater = false;
  let maxDrawdown = 0;
  let maxUnderwaterMs = 0;
  let previous = initial;
  for (let i = 0; i < equity.length; i++) {
    const t = time[i] as number;
    const e = equity[i] as number;
    if (previous > 0) {
      const excess = e / previous - 1 - rf;
      returnCount++;
      const delta = excess - excessMean;
      excessMean += delta / returnCount;
      excessSquaredDeviations += delta * (excess - excessMean);
      const downside = Math.min(excess, 0);
      downsideSquares += downside * downside;
    } else {
      returnsDefined = false;
    }
    if (e >= peak) {
      if (underwater && t - peakTime > maxUnderwaterMs) maxUnderwaterMs = t - peakTime;
      underwater = false;
      peak = e;
      peakTime = t;
    } else {
      underwater = true;
      maxDrawdown = Math.max(maxDrawdown, (peak - e) / peak);
    }
    previous = e;
  }
  const lastTime = time[equity.length - 1] as number;
  if (underwater && lastTime - peakTime > maxUnderwaterMs) maxUnderwaterMs = lastTime - peakTime;
  return {
    returnCount,
    excessMean,
    excessSquaredDeviations,
    downsideSquares,
    returnsDefined,
    peak,
    maxDrawdown,
    maxUnderwaterMs,
    equityFinal: previous,
    firstTime: time[0] as number,
    lastTime,
    barCount: equity.length,
  };
}

describe('curveStats: flat bars', () => {
  it('gives exactly the bar-by-bar figures, alone and in a pair, on curves mostly flat (the pair shortcut)', () => {
    // Long flat stretches (a repeat is three times as likely as a new value), at a peak, under
    // water, at zero and below; the same curves' figures with every rate the tests use.
    const flatCurve = (n: number) =>
      fc.array(
        fc.oneof(
          { arbitrary: fc.constant(Number.NaN), weight: 3 },
          { arbitrary: fc.integer({ min: -500_000, max: 20_000_000 }).map((c) => c / 100), weight: 1 },
          { arbitrary: fc.constant(0), weight: 1 },
        ),
        { minLength: n, maxLength: n },
      );
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 80 }).chain((n) => fc.tuple(flatCurve(n), flatCurve(n))),
        fc.constantFrom(0, 0.0001, -0.00002),
        fc.constantFrom(100_000, 1, 50_000.5, 0),
        ([a, b], rf, initial) => {
          const time = Float64Array.from(a, (_, i) => Date.parse('2021-01-04T00:00:00Z') + i * DAY);
          const equityA = fill(a, initial);
          const equityB = fill(b, initial);
          const alone = new CurveStats();
          curveStats(time, equityA, time.length, initial, rf, alone);
          const { finite, ...figures } = alone;
          expect(finite).toBe(true);
          expect(figures).toEqual(referenceStats(time, equityA, initial, rf));
          const [pairA, pairB] = [new CurveStats(), new CurveStats()];
          curveStatsPair(time, equityA, equityB, time.length, initial, rf, pairA, pairB);
          expect(pairA).toEqual(alone);
          curveStats(time, equityB, time.length, initial, rf, alone);
          expect(pairB).toEqual(alone);
          const { finite: finiteB, ...figuresB } = pairB;
          expect(finiteB).toBe(true);
          expect(figuresB).toEqual(referenceStats(time, equityB, initial, rf));
        },
      ),
      { numRuns: 1_000 },
    );
  });
});
