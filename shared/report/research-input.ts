import { decide, evaluateCriteria } from '../core/backtest/criteria.js';
import { toBacktestDocument } from '../core/backtest/document.js';
import type { BacktestResult } from '../core/backtest/types.js';
import { alignBars } from '../core/market/align.js';
import { formatBarTime } from '../core/market/types.js';
import type { Metrics } from '../core/metrics/index.js';
import type { BacktestJob, WalkForwardDocument } from '../research/job.js';
import type { ResearchReportInput } from './html.js';
import { num } from './number.js';

/** Equal-weight buy-and-hold of the symbols over the traded span, in dollars. */
export function buyAndHoldCurve(
  job: Pick<BacktestJob, 'series' | 'options'>,
  result: BacktestResult,
): number[] {
  const calendar = alignBars(job.series);
  const start = job.options.startIndex ?? 0;
  const first = job.series.map((s, k) => {
    for (let slot = start; slot < calendar.time.length; slot++) {
      const bar = (calendar.index[k] as Int32Array)[slot] as number;
      if (bar >= 0) return s.close[bar] as number;
    }
    return Number.NaN;
  });
  const last = first.slice();
  return Array.from(result.equity.time, (_, i) => {
    const slot = start + i;
    let sum = 0;
    job.series.forEach((s, k) => {
      const bar = (calendar.index[k] as Int32Array)[slot] as number;
      if (bar >= 0) last[k] = s.close[bar] as number;
      sum += (last[k] as number) / (first[k] as number);
    });
    return Math.round(((job.options.initialCash * sum) / job.series.length) * 100) / 100;
  });
}

export function monthlyReturns(
  result: BacktestResult,
  initial: number,
): ResearchReportInput['monthlyReturns'] {
  const out: ResearchReportInput['monthlyReturns'] = [];
  let previous = initial;
  const { time, equity } = result.equity;
  for (let i = 0; i < time.length; i++) {
    const d = new Date(time[i] as number);
    const next = i + 1 < time.length ? new Date(time[i + 1] as number) : null;
    if (next !== null && next.getUTCMonth() === d.getUTCMonth()) continue;
    const value = equity[i] as number;
    out.push({
      year: d.getUTCFullYear(),
      month: d.getUTCMonth() + 1,
      returnPct: (value / previous - 1) * 100,
    });
    previous = value;
  }
  return out;
}

export function drawdown(equity: Float64Array, initial: number): number[] {
  let peak = initial;
  return Array.from(equity, (e) => {
    peak = Math.max(peak, e);
    return ((peak - e) / peak) * 100;
  });
}

export const pick = (m: Metrics): Record<string, number | null> => ({
  returnPct: m.returnPct,
  cagrPct: m.cagrPct,
  sharpe: m.sharpe,
  maxDrawdownPct: m.maxDrawdownPct,
  trades: m.trades,
  winRatePct: m.winRatePct,
  profitFactor: m.profitFactor,
  exposurePct: m.exposurePct,
  buyHoldReturnPct: m.buyHoldReturnPct,
});

/** Builds the report's input from the backtest, the walk-forward and the full-span parameter surface. */
export function buildReportInput(
  job: BacktestJob,
  backtest: BacktestResult,
  perSymbol: readonly { symbol: string; metrics: Metrics }[],
  wf: WalkForwardDocument,
  surface: ResearchReportInput['parameterSurface'],
): ResearchReportInput {
  const fmt = (t: number) => formatBarTime(t, backtest.intraday);
  const time = Array.from(backtest.equity.time, fmt);
  const doc = toBacktestDocument(backtest, evaluateCriteria(backtest.metrics, job.criteria), decide([]));
  const m = backtest.metrics;
  const wfm = wf.outOfSample.metrics;
  const start = job.options.startIndex ?? 0;
  return {
    title: `QuantShift research: ${job.config?.name ?? job.strategy.name} on ${backtest.symbols.join(', ')}`,
    generatedAt: wf.generatedAt,
    configHash: wf.configHash,
    gitCommit: wf.gitCommit,
    decision: { proceed: wf.decision.proceed, failed: [...wf.decision.failed] },
    criteria: wf.criteria.map((c) => ({ ...c })),
    summary: [
      { label: 'Backtest period', value: `${doc.from} .. ${doc.to}` },
      { label: 'Backtest return', value: `${num(m.returnPct)}% (buy & hold ${num(m.buyHoldReturnPct)}%)` },
      { label: 'Backtest CAGR / Sharpe', value: `${num(m.cagrPct)}% / ${num(m.sharpe)}` },
      { label: 'Backtest max drawdown', value: `${num(m.maxDrawdownPct)}% (${m.maxDrawdownDays} days)` },
      {
        label: 'Backtest trades / win rate / profit factor',
        value: `${m.trades} / ${num(m.winRatePct)}% / ${num(m.profitFactor)}`,
      },
      {
        label: 'Walk-forward out-of-sample return',
        value: `${num(wfm.returnPct)}% (CAGR ${num(wfm.cagrPct)}%)`,
      },
      {
        label: 'Walk-forward out-of-sample Sharpe / max drawdown',
        value: `${num(wfm.sharpe)} / ${num(wfm.maxDrawdownPct)}%`,
      },
      {
        label: 'Walk-forward efficiency',
        value: wf.efficiency === null ? `n/a (${wf.efficiencyNote})` : num(wf.efficiency),
      },
      {
        label: 'Deflated Sharpe ratio (trials per window)',
        value: `${wf.multipleTesting === null ? 'n/a' : num(wf.multipleTesting.deflatedSharpe, 3)} (${wf.trials})`,
      },
    ],
    equity: { time, strategy: Array.from(backtest.equity.equity), buyHold: buyAndHoldCurve(job, backtest) },
    drawdownPct: drawdown(backtest.equity.equity, job.options.initialCash),
    symbols: job.series.map((s) => {
      const from = Math.max(0, start);
      const symbolTrades = doc.trades.filter((t) => t.symbol === s.symbol);
      return {
        symbol: s.symbol,
        time: Array.from(s.time.subarray(from), fmt),
        close: Array.from(s.close.subarray(from)),
        trades: symbolTrades.map((t) => ({
          direction: t.direction,
          entryTime: t.entryTime,
          entryPrice: t.entryPrice,
          exitTime: t.exitTime,
          exitPrice: t.exitPrice,
          pnl: t.pnl,
        })),
      };
    }),
    monthlyReturns: monthlyReturns(backtest, job.options.initialCash),
    walkForward: {
      windows: wf.windows.map((w) => ({
        symbol: w.symbol,
        inSample: w.inSample,
        outOfSample: w.outOfSample,
        params: { ...(w.params ?? {}) },
        outOfSampleReturnPct: w.outOfSampleMetrics.returnPct,
      })),
      efficiency: wf.efficiency,
      efficiencyNote: wf.efficiencyNote,
      oosEquity: {
        time: wf.outOfSample.equity.map((p) => p.time),
        equity: wf.outOfSample.equity.map((p) => p.equity),
      },
    },
    parameterSurface: surface,
    perSymbol: perSymbol.map((p) => {
      const unit = wf.perSymbol.find((u) => u.symbol === p.symbol);
      return {
        symbol: p.symbol,
        metrics: {
          ...pick(p.metrics),
          oosReturnPct: unit?.outOfSample.metrics.returnPct ?? null,
          wfEfficiency: unit?.efficiency ?? null,
        },
      };
    }),
    risk:
      doc.risk === undefined
        ? null
        : {
            peakHeatPct: doc.risk.peakHeatPct,
            breakerTrips: doc.risk.breakerTrips.map((t) => ({
              time: t.time,
              breaker: t.breaker,
              reason: t.reason,
            })),
            refusedEntries: doc.risk.refusedEntries.length,
            reducedEntries: doc.risk.reducedEntries.length,
            heat: { time: doc.risk.heat.map((h) => h.time), heatPct: doc.risk.heat.map((h) => h.heatPct) },
          },
  };
}
