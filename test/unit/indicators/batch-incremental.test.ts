/**
 * Property tests (fast-check): every batch function returns, bit for bit, what its incremental
 * class returns update by update; the incremental state (`value`, `ready`, `warmup`) is consistent;
 * and the O(1) rolling updates agree with naive recomputation over the window.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  Atr,
  atr,
  Bollinger,
  bollinger,
  bollingerMeanDeviation,
  Ema,
  ema,
  Highest,
  highest,
  Lowest,
  lowest,
  Macd,
  macd,
  Rsi,
  rsi,
  Sma,
  sma,
  TrueRange,
  trueRange,
  Wma,
  wma,
} from '../../../shared/core/indicators/index.js';

const price = fc.double({ min: -1e6, max: 1e6, noNaN: true, noDefaultInfinity: true });
const series = fc.array(price, { maxLength: 150 });
const period = fc.integer({ min: 1, max: 40 });
const bars = fc.array(fc.tuple(price, price, price), { maxLength: 150 });

/** Bit-for-bit equality of two arrays (NaN equals NaN, 0 differs from -0). */
function expectIdentical(actual: ArrayLike<number>, expected: ArrayLike<number>): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    if (!Object.is(actual[i], expected[i])) {
      expect.fail(`index ${i}: ${String(actual[i])} !== ${String(expected[i])}`);
    }
  }
}

interface Incremental {
  readonly warmup: number;
  readonly value: number;
  readonly ready: boolean;
}

/** Runs `step` per index and checks the incremental contract; returns the outputs. */
function runIncremental<T extends Incremental>(length: number, indicator: T, step: (i: number) => number) {
  const out = new Float64Array(length);
  for (let i = 0; i < length; i++) {
    const result = step(i);
    out[i] = result;
    expect(Object.is(indicator.value, result)).toBe(true);
    expect(indicator.ready).toBe(i >= indicator.warmup);
    expect(Number.isNaN(result)).toBe(i < indicator.warmup);
  }
  return out;
}

describe('batch equals incremental, bit for bit', () => {
  const singleInput = [
    ['sma', sma, (p: number) => new Sma(p)],
    ['ema', ema, (p: number) => new Ema(p)],
    ['wma', wma, (p: number) => new Wma(p)],
    ['rsi', rsi, (p: number) => new Rsi(p)],
    ['highest', highest, (p: number) => new Highest(p)],
    ['lowest', lowest, (p: number) => new Lowest(p)],
  ] as const;

  it.each(singleInput)('%s', (_, batch, create) => {
    fc.assert(
      fc.property(series, period, (values, p) => {
        const indicator = create(p);
        const incremental = runIncremental(values.length, indicator, (i) =>
          indicator.update(values[i] as number),
        );
        expectIdentical(batch(values, p), incremental);
      }),
    );
  });

  it('trueRange and atr', () => {
    fc.assert(
      fc.property(bars, period, (rows, p) => {
        const high = rows.map((r) => r[0]);
        const low = rows.map((r) => r[1]);
        const close = rows.map((r) => r[2]);
        const range = new TrueRange();
        const average = new Atr(p);
        const ranges = runIncremental(rows.length, range, (i) =>
          range.update(high[i] as number, low[i] as number, close[i] as number),
        );
        const averages = runIncremental(rows.length, average, (i) =>
          average.update(high[i] as number, low[i] as number, close[i] as number),
        );
        expectIdentical(trueRange(high, low, close), ranges);
        expectIdentical(atr(high, low, close, p), averages);
      }),
    );
  });

  it('bollinger', () => {
    fc.assert(
      fc.property(series, period, fc.double({ min: 0.1, max: 4, noNaN: true }), (values, p, k) => {
        const indicator = new Bollinger(p, k);
        const upper: number[] = [];
        const lower: number[] = [];
        const deviations: number[] = [];
        const middle = runIncremental(values.length, indicator, (i) => {
          const result = indicator.update(values[i] as number);
          upper.push(indicator.upper);
          lower.push(indicator.lower);
          deviations.push(indicator.standardDeviation);
          expect(Object.is(indicator.middle, result)).toBe(true);
          return result;
        });
        const bands = bollinger(values, p, k);
        expectIdentical(bands.middle, middle);
        expectIdentical(bands.upper, upper);
        expectIdentical(bands.lower, lower);
        const mean = new Float64Array(values.length);
        const deviation = new Float64Array(values.length);
        bollingerMeanDeviation(values, p, mean, deviation);
        expectIdentical(mean, middle);
        expectIdentical(deviation, deviations);
      }),
    );
  });

  it('macd', () => {
    const periods = fc
      .tuple(
        fc.integer({ min: 1, max: 20 }),
        fc.integer({ min: 1, max: 20 }),
        fc.integer({ min: 1, max: 15 }),
      )
      .map(([a, b, signal]) => [Math.min(a, b), Math.max(a, b), signal] as const);
    fc.assert(
      fc.property(series, periods, (values, [fast, slow, signal]) => {
        const indicator = new Macd(fast, slow, signal);
        const signals: number[] = [];
        const histograms: number[] = [];
        const lines = runIncremental(values.length, indicator, (i) => {
          const result = indicator.update(values[i] as number);
          signals.push(indicator.signal);
          histograms.push(indicator.histogram);
          expect(Object.is(indicator.macd, result)).toBe(true);
          return result;
        });
        const result = macd(values, fast, slow, signal);
        expectIdentical(result.macd, lines);
        expectIdentical(result.signal, signals);
        expectIdentical(result.histogram, histograms);
      }),
    );
  });
});

describe('rolling updates agree with naive recomputation over the window', () => {
  const windowOf = (values: number[], i: number, p: number) => values.slice(i - p + 1, i + 1);
  const scale = (window: number[]) => Math.max(1, ...window.map(Math.abs));
  // Rolling sums are recomputed from the window every `period` updates, so their round-off
  // reflects every value seen since the last recompute: up to two windows back.
  const recentScale = (values: number[], i: number, p: number) =>
    scale(values.slice(Math.max(0, i - 2 * p + 1), i + 1));

  it('sma is the window mean', () => {
    fc.assert(
      fc.property(series, period, (values, p) => {
        sma(values, p).forEach((value, i) => {
          if (i < p - 1) return;
          const window = windowOf(values, i, p);
          const mean = window.reduce((a, b) => a + b, 0) / p;
          expect(Math.abs(value - mean)).toBeLessThanOrEqual(1e-12 * p * recentScale(values, i, p));
        });
      }),
    );
  });

  it('wma is the linearly weighted window mean, newest weight = period', () => {
    fc.assert(
      fc.property(series, period, (values, p) => {
        wma(values, p).forEach((value, i) => {
          if (i < p - 1) return;
          const window = windowOf(values, i, p);
          const weighted = window.reduce((sum, x, k) => sum + (k + 1) * x, 0) / ((p * (p + 1)) / 2);
          expect(Math.abs(value - weighted)).toBeLessThanOrEqual(1e-12 * p * p * recentScale(values, i, p));
        });
      }),
    );
  });

  it('highest and lowest are the exact window extremes', () => {
    fc.assert(
      fc.property(series, period, (values, p) => {
        const highs = highest(values, p);
        const lows = lowest(values, p);
        for (let i = p - 1; i < values.length; i++) {
          const window = windowOf(values, i, p);
          expect(highs[i]).toBe(Math.max(...window));
          expect(lows[i]).toBe(Math.min(...window));
        }
      }),
    );
  });

  it('bollinger: middle is sma bit for bit, σ is the two-pass population deviation', () => {
    fc.assert(
      fc.property(series, period, (values, p) => {
        const bands = bollinger(values, p, 2);
        expectIdentical(bands.middle, sma(values, p));
        for (let i = p - 1; i < values.length; i++) {
          const window = windowOf(values, i, p);
          const mean = window.reduce((a, b) => a + b, 0) / p;
          const sigma = Math.sqrt(window.reduce((sum, x) => sum + (x - mean) ** 2, 0) / p);
          const middle = bands.middle[i] as number;
          expect(Math.abs(((bands.upper[i] as number) - middle) / 2 - sigma)).toBeLessThanOrEqual(
            1e-6 * recentScale(values, i, p),
          );
          expect(Math.abs((middle - (bands.lower[i] as number)) / 2 - sigma)).toBeLessThanOrEqual(
            1e-6 * recentScale(values, i, p),
          );
        }
      }),
    );
  });

  it('rsi stays within [0, 100] and atr is never negative', () => {
    fc.assert(
      fc.property(bars, period, (rows, p) => {
        const close = rows.map((r) => r[2]);
        for (const value of rsi(close, p))
          if (!Number.isNaN(value)) expect(value >= 0 && value <= 100).toBe(true);
        const high = rows.map((r) => Math.max(r[0], r[1]));
        const low = rows.map((r) => Math.min(r[0], r[1]));
        for (const value of atr(high, low, close, p))
          if (!Number.isNaN(value)) expect(value).toBeGreaterThanOrEqual(0);
      }),
    );
  });
});
