import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { computeMetrics, type Metrics, type MetricsInput } from '../../../shared/core/metrics/index.js';

const DAY = 86_400_000;
const START = Date.parse('2020-01-06T00:00:00Z');

interface BarStep {
  /** Calendar days since the previous bar (1 on weekdays, 3 over a weekend, more over holidays). */
  gapDays: number;
  /** The bar's return in basis points. */
  returnBp: number;
  inMarket: boolean;
}

const barStep = (minBp: number, maxBp: number) =>
  fc.record({
    gapDays: fc.integer({ min: 1, max: 4 }),
    returnBp: fc.integer({ min: minBp, max: maxBp }),
    inMarket: fc.boolean(),
  });

const pnlsArb = fc.array(
  fc.integer({ min: -100_000, max: 100_000 }).map((cents) => cents / 100),
  { maxLength: 20 },
);

/** A positive equity curve built by compounding the steps' returns from `initialEquity`. */
function curve(initialEquity: number, steps: readonly BarStep[], pnls: readonly number[]): MetricsInput {
  const time = new Float64Array(steps.length);
  const equity = new Float64Array(steps.length);
  const inMarket = new Uint8Array(steps.length);
  let t = START - DAY;
  let e = initialEquity;
  steps.forEach((step, i) => {
    t += step.gapDays * DAY;
    e *= 1 + step.returnBp / 10_000;
    time[i] = t;
    equity[i] = e;
    inMarket[i] = step.inMarket ? 1 : 0;
  });
  return { time, equity, initialEquity, inMarket, tradePnls: pnls, buyHoldReturnPct: 3 };
}

function scaled(input: MetricsInput, factor: number): MetricsInput {
  return {
    ...input,
    equity: input.equity.map((e) => e * factor),
    initialEquity: input.initialEquity * factor,
    tradePnls: input.tradePnls.map((pnl) => pnl * factor),
  };
}

const RATIO_KEYS = [
  'trades',
  'returnPct',
  'cagrPct',
  'volatilityPct',
  'maxDrawdownPct',
  'maxDrawdownDays',
  'winRatePct',
  'profitFactor',
  'sharpe',
  'sortino',
  'calmar',
  'exposurePct',
  'buyHoldReturnPct',
  'kelly',
] as const satisfies readonly (keyof Metrics)[];
const DOLLAR_KEYS = [
  'equityFinal',
  'equityPeak',
  'avgWin',
  'avgLoss',
  'expectancy',
] as const satisfies readonly (keyof Metrics)[];

function expectClose(actual: number | null, expected: number | null, label: string): void {
  if (expected === null || actual === null) {
    expect(actual, label).toBe(expected);
    return;
  }
  const tolerance = 1e-8 * Math.max(1, Math.abs(expected));
  expect(Math.abs(actual - expected), `${label}: ${actual} vs ${expected}`).toBeLessThanOrEqual(tolerance);
}

/** The documented definitions, computed the slow and obvious way (two passes, arrays). */
function reference(input: MetricsInput) {
  const equity = Array.from(input.equity);
  const time = Array.from(input.time);
  const rfDaily = (1 + (input.riskFreeRate ?? 0)) ** (1 / 252) - 1;
  const returns = equity.map((e, i) => e / (i === 0 ? input.initialEquity : (equity[i - 1] as number)) - 1);
  const excess = returns.map((r) => r - rfDaily);
  const mean = excess.reduce((a, b) => a + b, 0) / excess.length;
  const rawMean = returns.reduce((a, b) => a + b, 0) / returns.length;
  const variance =
    returns.length > 1 ? returns.reduce((a, r) => a + (r - rawMean) ** 2, 0) / (returns.length - 1) : null;
  const downside = Math.sqrt(excess.reduce((a, x) => a + Math.min(0, x) ** 2, 0) / excess.length);

  const peaks = [input.initialEquity];
  const peakTimes = [(time[0] as number) - DAY];
  let maxDrawdown = 0;
  let longest = 0;
  for (let i = 0; i < equity.length; i++) {
    const peak = peaks[peaks.length - 1] as number;
    const e = equity[i] as number;
    if (e >= peak) {
      peaks.push(e);
      peakTimes.push(time[i] as number);
    } else {
      maxDrawdown = Math.max(maxDrawdown, 1 - e / peak);
    }
  }
  // Longest spell: for every peak bar, the first later bar at or above it (or the last bar).
  for (let p = 0; p < peaks.length; p++) {
    const start = peakTimes[p] as number;
    const level = peaks[p] as number;
    const firstAfter = time.findIndex((t) => t > start);
    if (firstAfter < 0 || (equity[firstAfter] as number) >= level) continue;
    const recovery = time.findIndex((t, i) => t > start && (equity[i] as number) >= level);
    const end = recovery < 0 ? (time[time.length - 1] as number) : (time[recovery] as number);
    longest = Math.max(longest, (end - start) / DAY);
  }
  return {
    volatilityPct: variance === null ? null : Math.sqrt(variance) * Math.sqrt(252) * 100,
    sharpe:
      variance === null || Math.sqrt(variance) <= 1e-12
        ? null
        : (mean / Math.sqrt(variance)) * Math.sqrt(252),
    sortino: downside <= 1e-12 ? null : (mean / downside) * Math.sqrt(252),
    maxDrawdownPct: maxDrawdown * 100,
    maxDrawdownDays: longest,
  };
}

describe('computeMetrics properties', () => {
  it('keeps the max drawdown within [0, 100] % and under-water time within the span for positive equity', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 10_000_000 }),
        fc.array(barStep(-9_999, 5_000), { minLength: 1, maxLength: 80 }),
        (initialEquity, steps) => {
          const input = curve(initialEquity, steps, []);
          const m = computeMetrics(input);
          expect(m.maxDrawdownPct).toBeGreaterThanOrEqual(0);
          expect(m.maxDrawdownPct).toBeLessThanOrEqual(100);
          const spanDays = ((input.time.at(-1) as number) - (input.time[0] as number)) / DAY + 1;
          expect(m.maxDrawdownDays).toBeGreaterThanOrEqual(0);
          expect(m.maxDrawdownDays).toBeLessThanOrEqual(spanDays);
          expect(m.exposurePct).toBeGreaterThanOrEqual(0);
          expect(m.exposurePct).toBeLessThanOrEqual(100);
          expect(m.equityPeak).toBeGreaterThanOrEqual(Math.max(initialEquity, m.equityFinal));
        },
      ),
    );
  });

  it('agrees with a straightforward two-pass implementation of the documented formulas', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 100, max: 1_000_000 }),
        fc.array(barStep(-3_000, 3_000), { minLength: 1, maxLength: 60 }),
        fc.constantFrom(0, 0.02, 0.05),
        (initialEquity, steps, riskFreeRate) => {
          const input = { ...curve(initialEquity, steps, []), riskFreeRate };
          const m = computeMetrics(input);
          const expected = reference(input);
          expectClose(m.volatilityPct, expected.volatilityPct, 'volatilityPct');
          expectClose(m.sharpe, expected.sharpe, 'sharpe');
          expectClose(m.sortino, expected.sortino, 'sortino');
          expectClose(m.maxDrawdownPct, expected.maxDrawdownPct, 'maxDrawdownPct');
          expect(m.maxDrawdownDays).toBe(expected.maxDrawdownDays);
        },
      ),
    );
  });

  it('leaves every ratio unchanged, and scales every dollar figure, when money is scaled by a power of two', () => {
    // Multiplying by 2^k is exact in floating point, so the ratios must be bit-for-bit identical.
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 1_000_000 }),
        fc.array(barStep(-5_000, 5_000), { minLength: 1, maxLength: 60 }),
        pnlsArb,
        fc.integer({ min: -30, max: 30 }),
        (initialEquity, steps, pnls, exponent) => {
          const factor = 2 ** exponent;
          const input = curve(initialEquity, steps, pnls);
          const base = computeMetrics(input);
          const scaledMetrics = computeMetrics(scaled(input, factor));
          for (const key of RATIO_KEYS) expect(scaledMetrics[key], key).toBe(base[key]);
          for (const key of DOLLAR_KEYS) {
            const value = base[key];
            expect(scaledMetrics[key], key).toBe(value === null ? null : value * factor);
          }
        },
      ),
    );
  });

  it('leaves the ratios unchanged, up to round-off, for any positive scale factor', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 1_000_000 }),
        fc.array(barStep(-1_500, 1_500), { minLength: 1, maxLength: 60 }),
        pnlsArb,
        fc.double({ min: 0.001, max: 1000, noNaN: true }),
        (initialEquity, steps, pnls, factor) => {
          const input = curve(initialEquity, steps, pnls);
          const base = computeMetrics(input);
          const other = computeMetrics(scaled(input, factor));
          // Calmar and the drawdown duration can flip when round-off moves a bar from "exactly back at
          // the peak" to one ulp below it; the exact power-of-two property covers them.
          for (const key of RATIO_KEYS) {
            if (key === 'calmar' || key === 'maxDrawdownDays') continue;
            expectClose(other[key], base[key], key);
          }
          for (const key of DOLLAR_KEYS) {
            const value = base[key];
            expectClose(other[key], value === null ? null : value * factor, key);
          }
        },
      ),
    );
  });

  it('never outputs NaN or Infinity, whatever the sign and size of the equity', () => {
    fc.assert(
      fc.property(
        fc.double({ min: 0.01, max: 1e9, noNaN: true }),
        fc.array(
          fc.record({
            equity: fc.double({ min: -1e9, max: 1e9, noNaN: true }),
            inMarket: fc.boolean(),
          }),
          { minLength: 1, maxLength: 40 },
        ),
        fc.array(fc.double({ min: -1e9, max: 1e9, noNaN: true }), { maxLength: 10 }),
        fc.double({ min: -0.5, max: 0.5, noNaN: true }),
        (initialEquity, bars, pnls, riskFreeRate) => {
          const m = computeMetrics({
            time: Float64Array.from(bars, (_, i) => START + i * DAY),
            equity: Float64Array.from(bars, (bar) => bar.equity),
            initialEquity,
            inMarket: Uint8Array.from(bars, (bar) => (bar.inMarket ? 1 : 0)),
            tradePnls: pnls,
            buyHoldReturnPct: 0,
            riskFreeRate,
          });
          for (const [key, value] of Object.entries(m)) {
            if (value !== null) expect(Number.isFinite(value), `${key} = ${value}`).toBe(true);
          }
        },
      ),
    );
  });
});
