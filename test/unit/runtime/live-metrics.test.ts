import { describe, expect, it } from 'vitest';
import { LIVE_METRICS, stepMetrics } from '../../../shared/runtime/live-metrics.js';

const byName = (points: ReturnType<typeof stepMetrics>) =>
  Object.fromEntries(points.map((p) => [p.name, p.value]));

describe('the live metrics of a step result', () => {
  it('counts placed, rejected and refused orders of execute-orders', () => {
    const points = stepMetrics('execute-orders', {
      day: '2026-03-02',
      status: 'executed',
      intents: [
        { clientOrderId: 'a', status: 'accepted' },
        { clientOrderId: 'b', status: 'filled' },
        { clientOrderId: 'c', status: 'rejected', reason: 'hard limit: notional' },
        { clientOrderId: 'd', status: 'skipped', reason: 'entry refused: kill switch on (x)' },
        { clientOrderId: 'e', status: 'skipped', reason: 'after the 09:28 market-on-open cutoff' },
      ],
    });
    expect(byName(points)).toEqual({
      [LIVE_METRICS.ordersPlaced]: 2,
      [LIVE_METRICS.ordersRejected]: 1,
      [LIVE_METRICS.entriesRefused]: 1,
    });
  });

  it('reports the account figures of a risk check, for the loss and drawdown alarms', () => {
    const points = stepMetrics('risk-check', {
      day: '2026-03-02',
      status: 'checked',
      stopsPlaced: ['s1'],
      exits: [],
      breakerTrips: [],
      entriesCancelled: [],
      figures: { equity: 94_000, dayPnl: -6_000, dailyLossPct: 6, drawdownPct: 7.5, heatPct: 3.2 },
    });
    expect(byName(points)).toMatchObject({
      Equity: 94_000,
      DailyLossPct: 6,
      DrawdownPct: 7.5,
      HeatPct: 3.2,
      OrdersPlaced: 1,
    });
    expect(points.find((p) => p.name === 'DailyLossPct')?.unit).toBe('Percent');
  });

  it('derives the daily loss from the end-of-day report, and one slippage point per fill', () => {
    const points = stepMetrics('end-of-day', {
      date: '2026-03-02',
      equity: 95_000,
      dayPnl: -5_000,
      drawdownPct: 12,
      highWaterMark: 108_000,
      positions: [],
      fills: [
        { slippageBps: 4.5, symbol: 'SPY' },
        { slippageBps: null, symbol: 'QQQ' },
        { slippageBps: -2, symbol: 'AAPL' },
      ],
      drift: [],
      corporateActions: [],
      outsideWatchlist: [],
      breakers: [],
      halted: null,
    });
    expect(byName(points)).toMatchObject({ DailyLossPct: 5, DrawdownPct: 12, OrdersFilled: 3 });
    expect(points.filter((p) => p.name === 'SlippageBps').map((p) => p.value)).toEqual([4.5, -2]);
  });

  it('emits BacktestDivergence 1 on a tracking breach, 0 without, none before the window is full', () => {
    const report = (tracking: unknown) =>
      byName(
        stepMetrics('end-of-day', {
          date: '2026-03-02',
          equity: 100_000,
          dayPnl: 0,
          drawdownPct: 0,
          highWaterMark: 100_000,
          fills: [],
          tracking,
        }),
      )[LIVE_METRICS.backtestDivergence];
    const clean = {
      sleeve: 's',
      sessions: 20,
      returnGapPct: 0.1,
      correlation: 0.99,
      slippageDriftBps: 0,
      breaches: [],
    };
    expect(report([clean])).toBe(0);
    expect(report([clean, { ...clean, sleeve: 't', breaches: ['return gap 3.00 pts'] }])).toBe(1);
    expect(report([])).toBeUndefined();
    expect(report(null)).toBeUndefined();
  });

  it('emits nothing for a closed day, and drops non-finite values', () => {
    expect(stepMetrics('risk-check', { day: 'x', status: 'closed', stopsPlaced: [], exits: [] })).toEqual([]);
    expect(stepMetrics('end-of-day', { day: 'x', status: 'closed' })).toEqual([]);
    const nan = stepMetrics('risk-check', {
      stopsPlaced: [],
      exits: [],
      figures: { equity: 0, dayPnl: 0, dailyLossPct: Number.NaN, drawdownPct: 0, heatPct: 0 },
    });
    expect(nan.map((p) => p.name)).not.toContain('DailyLossPct');
  });
});
