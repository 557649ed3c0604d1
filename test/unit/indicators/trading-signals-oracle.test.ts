/**
 * Independent oracle: the `trading-signals` package (a separate implementation with its own
 * conventions). Where both libraries define a value with the same warm-up and seeding, every such
 * value is compared. Where trading-signals seeds differently, values are compared only once the
 * seed has decayed (noted per case):
 * - its EMA starts from the first price (ours: SMA of the first `period` values, as TA-Lib),
 *   so EMA and MACD are compared from bar 10 × period on, within 1e-6 relative;
 * - its TR uses high − low on the first bar (ours: NaN, as TA-Lib), so its ATR is seeded one bar
 *   earlier from a different first range; compared from bar 20 × period on, within 1e-6 relative
 *   (Wilder smoothing decays as (1 − 1/period)^n, slower than an EMA).
 * - its RSI returns 100 when the average loss is 0, including a flat window (ours: 50, see Rsi);
 *   the random series below never has a flat window.
 */
import { ATR, BollingerBands, EMA, MACD, Period, RSI, SMA, TR, WMA } from 'trading-signals';
import { describe, expect, it } from 'vitest';
import {
  atr,
  bollinger,
  ema,
  highest,
  lowest,
  macd,
  rsi,
  sma,
  trueRange,
  wma,
} from '../../../shared/core/indicators/index.js';
import { loadTaLibSeries, randomBars, type TaLibSeries } from './ta-lib-data.js';

const datasets: readonly (readonly [string, TaLibSeries])[] = [
  ['TA-Lib 252-bar series', loadTaLibSeries()],
  ['random walk, 3000 bars', randomBars(3000, 20240607)],
];

/** |actual − expected| ≤ tolerance × max(1, |expected|). */
function expectClose(actual: number, expected: number, tolerance: number, where: string): void {
  const error = Math.abs(actual - expected);
  if (!(error <= tolerance * Math.max(1, Math.abs(expected)))) {
    expect.fail(`${where}: ${actual} vs trading-signals ${expected} (|diff| ${error})`);
  }
}

/**
 * Feeds trading-signals one value per bar; `oracle(i)` returns its result for bar i or null.
 * Compares every bar from `from` where both are defined, and checks that there is at least one.
 */
function compareSeries(
  ours: Float64Array,
  oracle: (i: number) => number | null,
  from: number,
  tolerance: number,
  name: string,
): void {
  let compared = 0;
  for (let i = 0; i < ours.length; i++) {
    const theirs = oracle(i);
    const value = ours[i] as number;
    if (i < from || theirs === null || Number.isNaN(value)) continue;
    expectClose(value, theirs, tolerance, `${name} bar ${i}`);
    compared++;
  }
  expect(compared).toBeGreaterThan(0);
}

describe.each(datasets)('against trading-signals on the %s', (_, bars) => {
  const { high, low, close } = bars;
  const candle = (i: number) => ({
    high: high[i] as number,
    low: low[i] as number,
    close: close[i] as number,
  });

  it.each([1, 2, 5, 14, 30])('SMA(%i): every value where both are defined', (period) => {
    const oracle = new SMA(period);
    compareSeries(sma(close, period), (i) => oracle.add(close[i] as number), 0, 1e-12, 'SMA');
  });

  it.each([1, 2, 5, 14, 30])('WMA(%i): every value where both are defined', (period) => {
    const oracle = new WMA(period);
    compareSeries(wma(close, period), (i) => oracle.add(close[i] as number), 0, 1e-12, 'WMA');
  });

  // Converged comparisons only for periods whose convergence bar lies inside the data set.
  const converging = (periods: number[], barsPerPeriod: number) =>
    periods.filter((period) => barsPerPeriod * period < close.length);

  it.each(converging([2, 5, 14, 30], 10))(
    'EMA(%i): from bar 10 × period (trading-signals seeds with the first price)',
    (period) => {
      const oracle = new EMA(period);
      compareSeries(ema(close, period), (i) => oracle.add(close[i] as number), 10 * period, 1e-6, 'EMA');
    },
  );

  it.each([2, 5, 14, 30])('RSI(%i): every value where both are defined (same Wilder seeding)', (period) => {
    const oracle = new RSI(period);
    compareSeries(rsi(close, period), (i) => oracle.add(close[i] as number), 0, 1e-9, 'RSI');
  });

  it('true range: every bar from 1 (trading-signals gives high − low on bar 0, ours NaN)', () => {
    const oracle = new TR();
    const ours = trueRange(high, low, close);
    expect(ours[0]).toBeNaN();
    compareSeries(ours, (i) => oracle.add(candle(i)), 1, 0, 'TR');
  });

  it.each(converging([5, 14], 20))(
    'ATR(%i): from bar 20 × period (different first true range and seed bar)',
    (period) => {
      const oracle = new ATR(period);
      compareSeries(atr(high, low, close, period), (i) => oracle.add(candle(i)), 20 * period, 1e-6, 'ATR');
    },
  );

  it.each([
    [20, 2],
    [5, 1],
    [10, 1.5],
  ])('Bollinger(%i, %d): every band value where both are defined (population σ)', (period, k) => {
    const oracle = new BollingerBands(period, k);
    const ours = bollinger(close, period, k);
    const results = Array.from(close, (price) => oracle.add(price));
    compareSeries(ours.middle, (i) => results[i]?.middle ?? null, 0, 1e-12, 'middle');
    compareSeries(ours.upper, (i) => results[i]?.upper ?? null, 0, 1e-9, 'upper');
    compareSeries(ours.lower, (i) => results[i]?.lower ?? null, 0, 1e-9, 'lower');
  });

  it.each([2, 14, 30])('highest/lowest(%i): every value, exactly (trading-signals Period)', (period) => {
    const oracle = new Period(period);
    const results = Array.from(close, (price) => oracle.add(price));
    compareSeries(highest(close, period), (i) => results[i]?.highest ?? null, 0, 0, 'highest');
    compareSeries(lowest(close, period), (i) => results[i]?.lowest ?? null, 0, 0, 'lowest');
  });

  const macdCases = [
    [12, 26, 9],
    [3, 6, 4],
  ].filter(([, slow, signal]) => 10 * ((slow as number) + (signal as number)) < close.length);
  it.each(macdCases)(
    'MACD(%i, %i, %i): from bar 10 × (slow + signal) (trading-signals seeds its EMAs with the first value)',
    (fast, slow, signal) => {
      const oracle = new MACD(new EMA(fast), new EMA(slow), new EMA(signal));
      const ours = macd(close, fast, slow, signal);
      const results = Array.from(close, (price) => oracle.add(price));
      const from = 10 * (slow + signal);
      compareSeries(ours.macd, (i) => results[i]?.macd ?? null, from, 1e-6, 'macd');
      compareSeries(ours.signal, (i) => results[i]?.signal ?? null, from, 1e-6, 'signal');
      compareSeries(ours.histogram, (i) => results[i]?.histogram ?? null, from, 1e-6, 'histogram');
    },
  );
});
