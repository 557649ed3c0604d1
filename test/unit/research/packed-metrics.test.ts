import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Metrics } from '../../../shared/core/metrics/index.js';
import {
  METRIC_FIELDS,
  MetricsPackingError,
  packMetrics,
  unpackMetrics,
} from '../../../shared/research/packed-metrics.js';

const finite = fc.double({ noNaN: true, noDefaultInfinity: true });
const nullable = fc.option(finite, { nil: null });
const metricsArb: fc.Arbitrary<Metrics> = fc.record({
  trades: fc.nat(),
  returnPct: finite,
  cagrPct: nullable,
  volatilityPct: nullable,
  equityFinal: finite,
  equityPeak: finite,
  maxDrawdownPct: finite,
  maxDrawdownDays: finite,
  winRatePct: nullable,
  profitFactor: nullable,
  avgWin: nullable,
  avgLoss: nullable,
  expectancy: nullable,
  sharpe: nullable,
  sortino: nullable,
  calmar: nullable,
  exposurePct: finite,
  buyHoldReturnPct: finite,
  kelly: nullable,
});

describe('packed metrics', () => {
  it('read back equal, field for field (nulls, -0 and extreme values included), in the same key order', () => {
    fc.assert(
      fc.property(fc.array(metricsArb, { maxLength: 20 }), (metrics) => {
        const back = unpackMetrics(packMetrics(metrics));
        expect(back).toEqual(metrics);
        back.forEach((m, i) => {
          for (const field of METRIC_FIELDS) expect(Object.is(m[field], metrics[i]?.[field])).toBe(true);
        });
        expect(JSON.stringify(back)).toBe(JSON.stringify(metrics.map((m) => pick(m))));
      }),
      { numRuns: 300 },
    );
  });

  it('refuses a NaN metric (it would read back as null) and a buffer of the wrong length', () => {
    const m = fc.sample(metricsArb, { numRuns: 1, seed: 7 })[0] as Metrics;
    expect(() => packMetrics([{ ...m, sharpe: Number.NaN }])).toThrow(MetricsPackingError);
    expect(() => packMetrics([{ ...m, sharpe: Number.NaN }])).toThrow(/sharpe/);
    expect(() => unpackMetrics(new Float64Array(METRIC_FIELDS.length + 1))).toThrow(MetricsPackingError);
  });
});

/** The metrics with their keys in METRIC_FIELDS order (the order computeMetrics writes). */
function pick(m: Metrics): Record<string, unknown> {
  return Object.fromEntries(METRIC_FIELDS.map((field) => [field, m[field]]));
}
