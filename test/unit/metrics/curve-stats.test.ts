import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CurveStats, curveStats, curveStatsPair, NO_FLAT_RUNS } from '../../../shared/core/metrics/index.js';

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

/**
 * The runs `curveStats` may skip in `equity` (each point equal to a positive one before it), chosen
 * by `pick` (the point is in a run) and `split` (it starts a new run, touching the last): pairs
 * (first point, end) and the end pair.
 */
function recordedRuns(equity: Float64Array, pick: readonly boolean[], split: readonly boolean[]): Int32Array {
  const runs: number[] = [];
  for (let i = 1; i < equity.length; i++) {
    const skippable = pick[i] === true && equity[i] === equity[i - 1] && (equity[i - 1] as number) > 0;
    if (!skippable) continue;
    if (runs.length > 0 && runs[runs.length - 1] === i && split[i] !== true) runs[runs.length - 1] = i + 1;
    else runs.push(i, i + 1);
  }
  return Int32Array.from([...runs, ...NO_FLAT_RUNS]);
}

describe('curveStats: recorded flat runs', () => {
  it('gives exactly the filled curve figures without reading a recorded run, alone and in a pair', () => {
    fc.assert(
      fc.property(
        fc
          .integer({ min: 1, max: 80 })
          .chain((n) =>
            fc.tuple(
              curveArb(n),
              curveArb(n),
              fc.array(fc.boolean(), { minLength: n, maxLength: n }),
              fc.array(fc.boolean(), { minLength: n, maxLength: n }),
              fc.array(fc.integer({ min: 1, max: 4 }), { minLength: n, maxLength: n }),
              fc.constantFrom(0, 0.0001, -0.00002),
            ),
          ),
        fc.constantFrom(100_000, 1, 50_000.5),
        ([a, b, pick, split, gaps, rf], initial) => {
          const time = new Float64Array(gaps.length);
          let t = Date.parse('2021-01-04T00:00:00Z');
          gaps.forEach((g, i) => {
            t += g * DAY;
            time[i] = t;
          });
          const filledA = fill(a, initial);
          const filledB = fill(b, initial);
          const runsA = recordedRuns(filledA, pick, split);
          const runsB = recordedRuns(filledB, split, pick);
          // The recorded points overwritten (NaN, the point before them, another value by turns): a
          // pass that reads one, or scans through one without skipping it, gives other figures.
          const holed = (filled: Float64Array, runs: Int32Array) => {
            const out = filled.slice();
            for (let r = 0; (runs[r] as number) < out.length; r += 2) {
              const before = filled[(runs[r] as number) - 1] as number;
              const value = [Number.NaN, before, before + 0.01][(r / 2) % 3] as number;
              out.fill(value, runs[r] as number, runs[r + 1] as number);
            }
            return out;
          };
          const expectedA = new CurveStats();
          const expectedB = new CurveStats();
          curveStats(time, filledA, time.length, initial, rf, expectedA);
          curveStats(time, filledB, time.length, initial, rf, expectedB);
          const aloneA = new CurveStats();
          curveStats(time, holed(filledA, runsA), time.length, initial, rf, aloneA, runsA);
          expect(aloneA).toEqual(expectedA);
          const pairA = new CurveStats();
          const pairB = new CurveStats();
          curveStatsPair(
            time,
            holed(filledA, runsA),
            holed(filledB, runsB),
            time.length,
            initial,
            rf,
            pairA,
            pairB,
            runsA,
            runsB,
          );
          expect(pairA).toEqual(expectedA);
          expect(pairB).toEqual(expectedB);
        },
      ),
      { numRuns: 3_000 },
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
 * The pass as `docs/metrics.md` defines it, written plainly: the excess returns grouped into steps
 * (a maximal run of points equal to the previous, positive one is one step of k equal values; any
 * other point a step of one), each merged into (n, mean, M2) by the pairwise update
 * w = k / (n + k), δ = x − mean, mean += δ × w, M2 += δ × δ × (n × w); the drawdown bar by bar.
 * `curveStats` and `curveStatsPair` must give exactly its figures.
 */
function referenceStats(
  time: Float64Array,
  equity: Float64Array,
  initial: number,
  rf: number,
): Omit<CurveStats, 'finite'> {
  const steps: { value: number; k: number }[] = [];
  let returnsDefined = true;
  let previous = initial;
  let flat = false;
  for (let i = 0; i < equity.length; i++) {
    const e = equity[i] as number;
    const isFlat = e === previous && previous > 0;
    if (previous > 0) {
      const excess = e / previous - 1 - rf;
      const last = steps[steps.length - 1];
      if (isFlat && flat && last !== undefined) last.k++;
      else steps.push({ value: excess, k: 1 });
    } else {
      returnsDefined = false;
    }
    flat = isFlat;
    previous = e;
  }
  let returnCount = 0;
  let excessMean = 0;
  let excessSquaredDeviations = 0;
  let downsideSquares = 0;
  for (const { value, k } of steps) {
    const n = returnCount;
    returnCount = n + k;
    const w = k / returnCount;
    const delta = value - excessMean;
    excessMean += delta * w;
    excessSquaredDeviations += delta * delta * (n * w);
    const downside = Math.min(value, 0);
    downsideSquares += k * (downside * downside);
  }
  let peak = initial;
  let peakTime = (time[0] as number) - DAY;
  let underwater = false;
  let maxDrawdown = 0;
  let maxUnderwaterMs = 0;
  for (let i = 0; i < equity.length; i++) {
    const t = time[i] as number;
    const e = equity[i] as number;
    if (e >= peak) {
      if (underwater && t - peakTime > maxUnderwaterMs) maxUnderwaterMs = t - peakTime;
      underwater = false;
      peak = e;
      peakTime = t;
    } else {
      underwater = true;
      maxDrawdown = Math.max(maxDrawdown, (peak - e) / peak);
    }
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
  it('gives exactly the figures of the steps as docs/metrics.md defines them, alone and in a pair, on curves mostly flat', () => {
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

// ---- Accuracy of the merged runs against exact rational arithmetic ----

const BITS = new Float64Array(1);
const WORDS = new BigUint64Array(BITS.buffer);
const ULP = 2 ** -53;

/** x as m × 2^e with m a BigInt (exact). */
function decompose(x: number): [bigint, number] {
  BITS[0] = x;
  const bits = WORDS[0] as bigint;
  const exponent = Number((bits >> 52n) & 0x7ffn);
  const fraction = bits & ((1n << 52n) - 1n);
  const magnitude = exponent === 0 ? fraction : fraction | (1n << 52n);
  return [bits >> 63n === 1n ? -magnitude : magnitude, exponent === 0 ? -1074 : exponent - 1075];
}

/** num / den as a double (BigInts of any size). */
function quotient(num: bigint, den: bigint): number {
  const negative = num < 0n !== den < 0n;
  const a = num < 0n ? -num : num;
  const d = den < 0n ? -den : den;
  const shift = BigInt(Math.max(0, 64 - (a.toString(2).length - d.toString(2).length)));
  const q = Number((a << shift) / d) / 2 ** Number(shift);
  return negative ? -q : q;
}

/**
 * The errors of a computed mean and M2 of the excess returns `values` (value i repeated `ks[i]`
 * times), against their exact values in rational arithmetic (every double scaled to one BigInt
 * grid): M2's relative error, and the mean's error relative to the exact standard deviation.
 */
function exactErrors(
  values: readonly number[],
  ks: readonly number[],
  mean: number,
  m2: number,
): { m2: number; mean: number } {
  const parts = values.map(decompose);
  let scale = 0;
  for (const [m, e] of parts) if (m !== 0n) scale = Math.max(scale, -e);
  let sum = 0n;
  let squares = 0n;
  let count = 0n;
  parts.forEach(([m, e], i) => {
    const x = m << BigInt(scale + e);
    const k = BigInt(ks[i] as number);
    sum += k * x;
    squares += k * x * x;
    count += k;
  });
  // Exact M2 = (count × squares − sum²) / (count × 2^(2 scale)); exact mean = sum / (count × 2^scale).
  const m2Scaled = count * squares - sum * sum;
  const [mm, me] = decompose(m2);
  let computed = mm * count;
  let exact = m2Scaled;
  const z = me + 2 * scale;
  if (z >= 0) computed <<= BigInt(z);
  else exact <<= BigInt(-z);
  const m2Error =
    exact === 0n
      ? computed === 0n
        ? 0
        : Number.POSITIVE_INFINITY
      : Math.abs(quotient(computed - exact, exact));
  const [am, ae] = decompose(mean);
  let meanComputed = am * count;
  let meanExact = sum;
  const y = ae + scale;
  const extra = y >= 0 ? 0 : -y;
  if (y >= 0) meanComputed <<= BigInt(y);
  else meanExact <<= BigInt(-y);
  // (computed − exact mean) = difference / (count × 2^(scale + extra)); the deviation's square:
  const variance = quotient(m2Scaled, count * (count - 1n) * (1n << BigInt(2 * scale)));
  const difference = quotient(meanComputed - meanExact, count << BigInt(scale + extra));
  const meanError =
    variance === 0
      ? difference === 0
        ? 0
        : Number.POSITIVE_INFINITY
      : Math.abs(difference) / Math.sqrt(variance);
  return { m2: m2Error, mean: meanError };
}

/** Welford's running mean and M2, point by point (the pass before flat runs were merged). */
function welford(values: readonly number[]): { mean: number; m2: number } {
  let n = 0;
  let mean = 0;
  let m2 = 0;
  for (const x of values) {
    n++;
    const delta = x - mean;
    mean += delta / n;
    m2 += delta * (x - mean);
  }
  return { mean, m2 };
}

/** The excess returns of a positive curve, one per point, as the pass computes them. */
function excessReturns(equity: Float64Array, initial: number, rf: number): number[] {
  const out: number[] = [];
  let previous = initial;
  for (const e of equity) {
    out.push(e / previous - 1 - rf);
    previous = e;
  }
  return out;
}

describe('curveStats: accuracy of the merged flat runs', () => {
  const RATES = [0, 0.0001, -0.00002, 1.04 ** (1 / 252) - 1];

  it('keeps M2 and the mean within a few ulps of the exact figures, as Welford does, on random curves with flat runs', () => {
    // The relative errors of M2 summed over the curves drawn: the merged runs' and Welford's.
    let sumBlock = 0;
    let sumWelford = 0;
    fc.assert(
      fc.property(
        fc
          .integer({ min: 2, max: 1_500 })
          .chain((n) =>
            fc.tuple(
              fc.array(fc.integer({ min: -400, max: 400 }), { minLength: n, maxLength: n }),
              fc.array(fc.integer({ min: 0, max: 99 }), { minLength: n, maxLength: n }),
              fc.double({ min: 0, max: 0.95, noNaN: true }),
            ),
          ),
        fc.constantFrom(...RATES),
        fc.constantFrom(100_000, 1_000, 25_000.75),
        ([moves, gates, flatShare], rf, initial) => {
          const n = moves.length;
          const time = Float64Array.from(moves, (_, i) => i * DAY);
          const equity = new Float64Array(n);
          let previous: number = initial;
          for (let i = 0; i < n; i++) {
            // Flat with a chance of `flatShare` (up to 95 %), else a move of up to ±4 % in cents.
            const flat = (gates[i] as number) < 100 * flatShare;
            if (!flat)
              previous = Math.max(
                0.01,
                Math.round(previous * (1 + (moves[i] as number) / 10_000) * 100) / 100,
              );
            equity[i] = previous;
          }
          const stats = new CurveStats();
          curveStats(time, equity, n, initial, rf, stats);
          const values = excessReturns(equity, initial, rf);
          const ones = values.map(() => 1);
          const block = exactErrors(values, ones, stats.excessMean, stats.excessSquaredDeviations);
          const old = welford(values);
          const point = exactErrors(values, ones, old.mean, old.m2);
          sumBlock += block.m2;
          sumWelford += point.m2;
          // M2 is a sum of N rounded terms, so its rounding grows like √N ulps: the worst measured
          // over 8,000 such curves was 0.63 √N ulps for both (a drawn curve of 1,400 points: 37
          // ulps, 1.0 √N); the mean within 1.05 ulps of the standard deviation (Welford 1.28).
          expect(block.m2).toBeLessThanOrEqual((8 + 2 * Math.sqrt(n)) * ULP);
          expect(block.mean).toBeLessThanOrEqual(4 * ULP);
        },
      ),
      { numRuns: 200 },
    );
    // At least Welford's quality on the whole: measured, the merged runs' sum was 0.91-0.99 of
    // Welford's in ten runs of this test (0.85-0.87 in 40 groups of 200 curves of another
    // generator): fewer steps on flat runs, about the same on the rest.
    expect(sumBlock).toBeLessThanOrEqual(1.25 * sumWelford + 8 * ULP);
  });

  it('is as accurate as Welford on a curve of one million points, 75 % of them flat', () => {
    const n = 1_000_000;
    const time = Float64Array.from({ length: n }, (_, i) => i * DAY);
    const equity = new Float64Array(n);
    let seed = 20_261_207;
    const random = () => {
      seed = (Math.imul(seed, 1_103_515_245) + 12_345) >>> 0;
      return seed / 2 ** 32;
    };
    let previous = 100_000;
    for (let i = 0; i < n; i++) {
      if (random() < 0.25)
        previous = Math.max(1, Math.round(previous * (1 + (random() - 0.5) * 0.04) * 100) / 100);
      equity[i] = previous;
    }
    for (const rf of [0, 1.04 ** (1 / 252) - 1]) {
      const stats = new CurveStats();
      curveStats(time, equity, n, 100_000, rf, stats);
      // The excess returns grouped into (value, multiplicity) for the exact sums.
      const values: number[] = [];
      const ks: number[] = [];
      const all = excessReturns(equity, 100_000, rf);
      for (const x of all) {
        if (values.length > 0 && values[values.length - 1] === x)
          ks[ks.length - 1] = (ks[ks.length - 1] as number) + 1;
        else {
          values.push(x);
          ks.push(1);
        }
      }
      const block = exactErrors(values, ks, stats.excessMean, stats.excessSquaredDeviations);
      const old = welford(all);
      const point = exactErrors(values, ks, old.mean, old.m2);
      expect(block.m2).toBeLessThanOrEqual(Math.max(point.m2, 64 * ULP));
      expect(block.mean).toBeLessThanOrEqual(Math.max(point.mean, 4 * ULP));
    }
  });
});
