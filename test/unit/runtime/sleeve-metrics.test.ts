import { Metrics } from '@aws-lambda-powertools/metrics';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  emitSleeveMetrics,
  LIVE_METRICS_NAMESPACE,
  LIVE_METRICS_SERVICE,
  SLEEVE_DIMENSION,
  SLEEVE_METRICS,
  stepSleeveFigures,
} from '../../../shared/runtime/live-metrics.js';

afterEach(() => {
  vi.restoreAllMocks();
});

const sleeves = [
  { id: 'trend', equity: 40_000, dayPnl: 120.5, heatPct: 1.25, orders: 2, positions: 3 },
  { id: 'rsi', equity: 20_000, dayPnl: -80, heatPct: 0.5, orders: 0, positions: 1 },
];

/** The EMF records Powertools writes to stdout while `run` runs. */
function emitted(run: () => void): Record<string, unknown>[] {
  const lines: string[] = [];
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    lines.push(String(chunk));
    return true;
  });
  run();
  vi.restoreAllMocks();
  return lines
    .join('')
    .split('\n')
    .filter((l) => l.includes('"_aws"'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe('the per-sleeve EMF metrics', () => {
  it('emits each sleeve’s equity, P&L, heat, orders and positions with a Sleeve dimension beside service and stage', () => {
    const metrics = new Metrics({ namespace: LIVE_METRICS_NAMESPACE, serviceName: LIVE_METRICS_SERVICE });
    metrics.setDefaultDimensions({ stage: 'paper' });
    const records = emitted(() => emitSleeveMetrics(metrics, sleeves));
    expect(records).toHaveLength(10);
    for (const record of records) {
      const aws = record._aws as { CloudWatchMetrics: { Namespace: string; Dimensions: string[][] }[] };
      expect(aws.CloudWatchMetrics[0]?.Namespace).toBe('QuantShift');
      expect(aws.CloudWatchMetrics[0]?.Dimensions[0]).toEqual(
        expect.arrayContaining(['service', 'stage', SLEEVE_DIMENSION]),
      );
      expect(record).toMatchObject({ service: 'quantshift-live', stage: 'paper' });
    }
    const value = (sleeve: string, name: string) =>
      records.find((r) => r[SLEEVE_DIMENSION] === sleeve && name in r)?.[name];
    expect(value('trend', SLEEVE_METRICS.equity)).toBe(40_000);
    expect(value('trend', SLEEVE_METRICS.dayPnl)).toBe(120.5);
    expect(value('trend', SLEEVE_METRICS.heatPct)).toBe(1.25);
    expect(value('trend', SLEEVE_METRICS.orders)).toBe(2);
    expect(value('rsi', SLEEVE_METRICS.dayPnl)).toBe(-80);
    expect(value('rsi', SLEEVE_METRICS.positions)).toBe(1);
    // The step's own buffered metrics keep their dimensions: no Sleeve on them.
    metrics.addMetric('Equity', 'None', 60_000);
    const [account] = emitted(() => metrics.publishStoredMetrics());
    expect(account).not.toHaveProperty(SLEEVE_DIMENSION);
  });

  it('takes the figures from the end-of-day report only', () => {
    expect(stepSleeveFigures('end-of-day', { date: '2026-03-02', sleeves })).toEqual(sleeves);
    expect(stepSleeveFigures('risk-check', { sleeves })).toEqual([]);
    expect(stepSleeveFigures('end-of-day', { status: 'closed' })).toEqual([]);
  });
});
