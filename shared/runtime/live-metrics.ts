/**
 * The business metrics of the live functions (CloudWatch EMF, namespace `QuantShift`, dimensions
 * `service` and `stage`), derived from each step's result. The monitoring stack's alarms and
 * dashboard import these names, so a rename cannot silently orphan an alarm.
 */
import type { Metrics } from '@aws-lambda-powertools/metrics';
import type { DailyReport } from '../live/end-of-day.js';
import type { ExecutionResult } from '../live/execute-orders.js';
import type { RiskCheckResult } from '../live/risk-check.js';
import type { SleeveFigures } from '../live/sleeve-report.js';
import { CRYPTO_METRICS } from './crypto-metrics.js';

/** The metric names, shared by the functions and the CDK monitoring stack. */
export const LIVE_METRICS = {
  /** 1 per market-open check, every weekday, holidays included: the missing-heartbeat alarm. */
  heartbeat: 'Heartbeat',
  /** 1 per successful step: `<step>.success` (the dashboard's "last successful run"). */
  stepSuccess: (step: string) => `${step}.success`,
  equity: 'Equity',
  dayPnl: 'DayPnl',
  /** Percent lost since the day's start equity (0 on a gain): the daily-loss alarm. */
  dailyLossPct: 'DailyLossPct',
  /** Percent below the high-water mark: the drawdown alarm. */
  drawdownPct: 'DrawdownPct',
  /** Open risk to the stops in percent of equity. */
  heatPct: 'HeatPct',
  ordersPlaced: 'OrdersPlaced',
  ordersFilled: 'OrdersFilled',
  /** Refused by a hard limit or rejected by the broker: the rejection alarm. */
  ordersRejected: 'OrdersRejected',
  /** Entries refused by the kill switch, a breaker or the validation gate. */
  entriesRefused: 'EntriesRefused',
  /** Per fill: fill price against the signal's reference price, in basis points (adverse > 0). */
  slippageBps: 'SlippageBps',
  /**
   * End-of-day: 1 when the rolling tracking against the shadow backtest breaches its limits, else 0
   * (none before the window is full): the "strategy diverging from its backtest" alarm.
   */
  backtestDivergence: 'BacktestDivergence',
} as const;

/** The namespace and the dimensions every live metric carries. */
export const LIVE_METRICS_NAMESPACE = 'QuantShift';
export const LIVE_METRICS_SERVICE = 'quantshift-live';

/** One data point. */
export interface MetricPoint {
  readonly name: string;
  readonly unit: 'Count' | 'Percent' | 'None';
  readonly value: number;
}

const PLACED = new Set(['submitted', 'accepted', 'partially_filled', 'filled']);

/** The data points a step's result yields (none for a closed day or a run that did nothing). */
export function stepMetrics(step: string, result: unknown): MetricPoint[] {
  if (result === null || typeof result !== 'object') return [];
  const points: MetricPoint[] = [];
  const account = (figures: {
    equity: number;
    dayPnl: number;
    dailyLossPct: number;
    drawdownPct: number;
  }) => {
    points.push(
      { name: LIVE_METRICS.equity, unit: 'None', value: figures.equity },
      { name: LIVE_METRICS.dayPnl, unit: 'None', value: figures.dayPnl },
      { name: LIVE_METRICS.dailyLossPct, unit: 'Percent', value: figures.dailyLossPct },
      { name: LIVE_METRICS.drawdownPct, unit: 'Percent', value: figures.drawdownPct },
    );
  };
  if (step === 'execute-orders' && 'intents' in result) {
    const { intents } = result as ExecutionResult;
    points.push(
      {
        name: LIVE_METRICS.ordersPlaced,
        unit: 'Count',
        value: intents.filter((i) => PLACED.has(i.status)).length,
      },
      {
        name: LIVE_METRICS.ordersRejected,
        unit: 'Count',
        value: intents.filter((i) => i.status === 'rejected').length,
      },
      {
        name: LIVE_METRICS.entriesRefused,
        unit: 'Count',
        value: intents.filter((i) => i.reason?.startsWith('entry refused') === true).length,
      },
    );
    // The crypto bot's dry run: the intents it recorded with the book instead of sending them.
    const dryRun = (result as { dryRun?: readonly unknown[] }).dryRun;
    if (Array.isArray(dryRun))
      points.push({ name: CRYPTO_METRICS.dryRunIntents, unit: 'Count', value: dryRun.length });
  } else if (step === 'risk-check' && 'figures' in result) {
    const check = result as RiskCheckResult;
    if (check.figures !== undefined) {
      account(check.figures);
      points.push(
        { name: LIVE_METRICS.heatPct, unit: 'Percent', value: check.figures.heatPct },
        {
          name: LIVE_METRICS.ordersPlaced,
          unit: 'Count',
          value: check.stopsPlaced.length + check.exits.length,
        },
      );
    }
  } else if (step === 'end-of-day' && 'equity' in result && 'highWaterMark' in result) {
    const report = result as DailyReport;
    const dayStart = report.equity - report.dayPnl;
    account({
      equity: report.equity,
      dayPnl: report.dayPnl,
      dailyLossPct: dayStart > 0 ? Math.max(0, (-report.dayPnl / dayStart) * 100) : 0,
      drawdownPct: Math.max(0, report.drawdownPct),
    });
    points.push({ name: LIVE_METRICS.ordersFilled, unit: 'Count', value: report.fills.length });
    for (const fill of report.fills) {
      if (fill.slippageBps !== null)
        points.push({ name: LIVE_METRICS.slippageBps, unit: 'None', value: fill.slippageBps });
    }
    if (report.tracking !== undefined && report.tracking !== null && report.tracking.length > 0)
      points.push({
        name: LIVE_METRICS.backtestDivergence,
        unit: 'Count',
        value: report.tracking.some((t) => t.breaches.length > 0) ? 1 : 0,
      });
  }
  return points.filter((p) => Number.isFinite(p.value));
}

/**
 * The per-sleeve metrics: the same namespace, `service` and `stage`, plus the dimension `Sleeve`
 * (the sleeve id). Their own dimension set keeps them apart from the account's metrics, which the
 * alarms watch (alarms stay account-wide).
 */
export const SLEEVE_DIMENSION = 'Sleeve';
export const SLEEVE_METRICS = {
  equity: 'SleeveEquity',
  dayPnl: 'SleeveDayPnl',
  heatPct: 'SleeveHeatPct',
  orders: 'SleeveOrders',
  positions: 'SleevePositions',
} as const;

/** The data points of one sleeve's figures (non-finite values left out). */
export function sleeveMetricPoints(sleeve: SleeveFigures): MetricPoint[] {
  const points: MetricPoint[] = [
    { name: SLEEVE_METRICS.equity, unit: 'None', value: sleeve.equity },
    { name: SLEEVE_METRICS.dayPnl, unit: 'None', value: sleeve.dayPnl },
    { name: SLEEVE_METRICS.heatPct, unit: 'Percent', value: sleeve.heatPct },
    { name: SLEEVE_METRICS.orders, unit: 'Count', value: sleeve.orders },
    { name: SLEEVE_METRICS.positions, unit: 'Count', value: sleeve.positions },
  ];
  return points.filter((p) => Number.isFinite(p.value));
}

/** The per-sleeve figures a step's result carries (the end-of-day report's `sleeves`), else none. */
export function stepSleeveFigures(step: string, result: unknown): readonly SleeveFigures[] {
  if (step !== 'end-of-day' || result === null || typeof result !== 'object' || !('sleeves' in result))
    return [];
  const sleeves = (result as { sleeves: unknown }).sleeves;
  return Array.isArray(sleeves) ? (sleeves as SleeveFigures[]) : [];
}

/**
 * Emits the per-sleeve figures as EMF metrics (Powertools Metrics) with the `Sleeve` dimension
 * besides the instance's default ones (`service`, `stage`): one single-metric record per sleeve
 * and figure, written at once, so the step's own buffered metrics keep their dimensions.
 */
export function emitSleeveMetrics(
  metrics: Pick<Metrics, 'singleMetric'>,
  sleeves: readonly SleeveFigures[],
): void {
  for (const sleeve of sleeves) {
    for (const point of sleeveMetricPoints(sleeve)) {
      metrics
        .singleMetric()
        .addDimension(SLEEVE_DIMENSION, sleeve.id)
        .addMetric(point.name, point.unit, point.value);
    }
  }
}
