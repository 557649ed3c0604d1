import { describe, expect, it } from 'vitest';
import { loadDataDir } from '../../../shared/adapters/fs/bars.js';
import type { BacktestOptions } from '../../../shared/core/backtest/types.js';
import { criteriaSchema } from '../../../shared/core/config/schema.js';
import type { BarSeries } from '../../../shared/core/market/types.js';
import { deflatedSharpe, normalCdf, normalQuantile } from '../../../shared/core/research/deflated-sharpe.js';
import { evaluateCombos, inProcessEvaluator } from '../../../shared/core/research/evaluate.js';
import { expandGrid } from '../../../shared/core/research/grid.js';
import { rankResults } from '../../../shared/core/research/objective.js';
import {
  buildWindows,
  walkForward,
  walkForwardSettingsSchema,
} from '../../../shared/core/research/walk-forward.js';
import { WorkerPoolEvaluator } from '../../../shared/research/pool.js';

const [spy, qqq] = loadDataDir('data', ['SPY', 'QQQ']) as [BarSeries, BarSeries];
const options: BacktestOptions = {
  initialCash: 100_000,
  sizing: { mode: 'fraction', fraction: 0.9 },
  cashBuffer: 0.02,
  commission: { perShare: 0, perOrder: 0, percent: 0, minimum: 0 },
  slippageBps: 5,
  fractional: false,
  endOfData: 'close',
  riskFreeRate: 0,
};
const combos = expandGrid({
  grid: { fast: { from: 5, to: 25, step: 5 }, slow: { from: 20, to: 80, step: 20 } },
  constraints: ['fast < slow'],
});
const settings = walkForwardSettingsSchema.parse({ inSample: 400, outOfSample: 150 });
const objective = { metric: 'sharpe' as const, minimums: { trades: 3 } };
const criteria = criteriaSchema.parse({});

describe('grid', () => {
  it('expands ranges and lists in a fixed order under the constraints', () => {
    expect(combos.slice(0, 3)).toEqual([
      { fast: 5, slow: 20 },
      { fast: 5, slow: 40 },
      { fast: 5, slow: 60 },
    ]);
    expect(combos.every((c) => (c.fast as number) < (c.slow as number))).toBe(true);
    expect(expandGrid({ grid: { ma: ['sma', 'ema'], fast: [1, 2] }, constraints: [] })).toHaveLength(4);
    expect(() => expandGrid({ grid: { fast: [1] }, constraints: ['fast < slow'] })).toThrow(
      /"slow", which is not in the grid/,
    );
  });
});

describe('windows', () => {
  const time = Float64Array.from({ length: 1000 }, (_, i) => Date.UTC(2020, 0, 1) + i * 86_400_000);
  it('rolling windows in bars: out-of-sample spans tile the data after the first in-sample span', () => {
    const w = buildWindows(time, walkForwardSettingsSchema.parse({ inSample: 500, outOfSample: 200 }));
    expect(w).toEqual([
      { isStart: 0, isEnd: 499, oosStart: 500, oosEnd: 699 },
      { isStart: 200, isEnd: 699, oosStart: 700, oosEnd: 899 },
      { isStart: 400, isEnd: 899, oosStart: 900, oosEnd: 999 },
    ]);
  });
  it('anchored windows keep the first bar', () => {
    const w = buildWindows(
      time,
      walkForwardSettingsSchema.parse({ mode: 'anchored', inSample: 500, outOfSample: 250 }),
    );
    expect(w.map((x) => [x.isStart, x.isEnd, x.oosStart, x.oosEnd])).toEqual([
      [0, 499, 500, 749],
      [0, 749, 750, 999],
    ]);
  });
  it('calendar months', () => {
    const w = buildWindows(
      spy.time,
      walkForwardSettingsSchema.parse({ unit: 'months', inSample: 24, outOfSample: 12 }),
    );
    const date = (i: number) => new Date(spy.time[i] as number).toISOString().slice(0, 10);
    expect(date((w[0] as { oosStart: number }).oosStart)).toBe('2023-01-11');
    expect(w.length).toBe(3);
  });
});

describe('walk-forward', () => {
  it('chooses each window on in-sample data only: changing bars after the in-sample span changes no choice', async () => {
    const base = await walkForward({
      series: [spy],
      strategy: 'ma-crossover',
      baseParams: {},
      combos,
      objective,
      options,
      settings,
      criteria,
      evaluator: inProcessEvaluator,
    });
    const windows = buildWindows(spy.time, settings);
    const cut = (windows[0] as { isEnd: number }).isEnd;
    const scramble = (a: Float64Array) =>
      Float64Array.from(a, (v, i) => (i > cut ? v * (1 + 0.05 * Math.sin(i)) : v));
    const altered: BarSeries = {
      ...spy,
      open: scramble(spy.open),
      high: Float64Array.from(spy.high, (v, i) => (i > cut ? v * 1.06 : v)),
      low: Float64Array.from(spy.low, (v, i) => (i > cut ? v * 0.94 : v)),
      close: scramble(spy.close),
    };
    const changed = await walkForward({
      series: [altered],
      strategy: 'ma-crossover',
      baseParams: {},
      combos,
      objective,
      options,
      settings,
      criteria,
      evaluator: inProcessEvaluator,
    });
    const first = (r: typeof base) => r.portfolio.windows[0];
    expect(first(changed)?.params).toEqual(first(base)?.params);
    expect(first(changed)?.inSampleMetrics).toEqual(first(base)?.inSampleMetrics);
    expect(first(changed)?.outOfSampleMetrics).not.toEqual(first(base)?.outOfSampleMetrics);
  });

  it('stitches out-of-sample spans, reports efficiency, stability and the deflated Sharpe ratio, per symbol and portfolio', async () => {
    const result = await walkForward({
      series: [spy, qqq],
      strategy: 'ma-crossover',
      baseParams: {},
      combos,
      objective,
      options,
      settings,
      criteria,
      evaluator: inProcessEvaluator,
    });
    expect(result.perSymbol.map((u) => u.symbol)).toEqual(['SPY', 'QQQ']);
    expect(result.portfolio.symbol).toBe('PORTFOLIO');
    const unit = result.perSymbol[0] as (typeof result.perSymbol)[number];
    const oosBars = unit.windows.reduce(
      (n, w) =>
        n +
        buildWindows(spy.time, settings)
          .filter((_, i) => i === w.index)
          .reduce((m, x) => m + x.oosEnd - x.oosStart + 1, 0),
      0,
    );
    expect(unit.outOfSample.equity).toHaveLength(oosBars);
    expect(unit.outOfSample.equity[0]?.time).toBe(unit.windows[0]?.outOfSample.from);
    // the stitched curve compounds the windows: its final equity is the product of the window returns
    const compounded = unit.windows.reduce((e, w) => e * (1 + w.outOfSampleMetrics.returnPct / 100), 100_000);
    expect(unit.outOfSample.metrics.equityFinal).toBeCloseTo(compounded, 6);
    expect(unit.stability.map((s) => s.name)).toEqual(['fast', 'slow']);
    expect(result.trials).toBe(combos.length);
    expect(unit.multipleTesting?.trials).toBe(combos.length);
    if (unit.efficiency === null) expect(unit.efficiencyNote).toMatch(/in-sample/);
    expect(result.criteria.map((c) => c.name)).toContain('symbolsPositivePct');
    expect(result.decision.proceed).toBe(result.criteria.every((c) => c.pass));
  });

  it('gives identical results whatever the number of workers', async () => {
    const task = {
      series: [spy, qqq],
      strategy: 'ma-crossover',
      baseParams: { atrStop: 2 },
      combos,
      options,
    };
    const reference = evaluateCombos(task);
    for (const size of [1, 2, 3]) {
      const pool = new WorkerPoolEvaluator(size);
      try {
        expect(await pool.evaluate(task)).toEqual(reference);
      } finally {
        await pool.close();
      }
    }
    expect(rankResults(reference, objective)).toHaveLength(combos.length);
  });
});

describe('deflated Sharpe ratio', () => {
  it('normal CDF and quantile', () => {
    expect(normalCdf(0)).toBeCloseTo(0.5, 7);
    expect(normalCdf(1.959963985)).toBeCloseTo(0.975, 6);
    expect(normalQuantile(0.975)).toBeCloseTo(1.959963985, 7);
    expect(normalQuantile(0.01)).toBeCloseTo(-2.326347874, 7);
  });

  it('more trials deflate the same track record more', () => {
    const returns = Float64Array.from({ length: 500 }, (_, i) => 0.001 + 0.01 * Math.sin(i * 1.7));
    const one = deflatedSharpe(returns, 1, 0.0004);
    const many = deflatedSharpe(returns, 1000, 0.0004);
    expect(one?.expectedMaxSharpe).toBe(0);
    expect(many?.expectedMaxSharpe).toBeGreaterThan(0);
    expect(many?.deflatedSharpe).toBeLessThan(one?.deflatedSharpe as number);
    // with one trial it is the probabilistic Sharpe ratio against zero
    expect(one?.deflatedSharpe).toBeGreaterThan(0.9);
  });
});
