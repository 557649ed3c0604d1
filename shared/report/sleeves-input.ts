import type { SleevesBacktestResult } from '../core/backtest/sleeves.js';
import type { SleevesBacktestDocument } from '../core/backtest/sleeves-document.js';
import { runSleevesJob, type SleevesJob, type SleevesWalkForwardDocument } from '../research/sleeves.js';
import { type ResearchReportInput, renderResearchReport, type SleevesReportInput } from './html.js';
import { num } from './number.js';
import { buyAndHoldCurve, drawdown, monthlyReturns, pick, riskSection } from './research-input.js';
import { ChartCache, loadChartLibraries } from './svg.js';
import { chartTrades } from './trades.js';

/**
 * The research report's input for a sleeves account: the account's backtest (against an equal-weight
 * buy-and-hold of its symbols), the sleeves' walk-forward windows and the account's out-of-sample
 * curve, and the sleeves section (equity and drawdown per sleeve, weights, correlation, attribution).
 * Without the walk-forward (`wf` undefined), the walk-forward parts are empty: what
 * {@link prepareSleevesReport} renders ahead.
 */
function buildSleevesReportInput(
  job: SleevesJob,
  backtest: SleevesBacktestResult,
  doc: SleevesBacktestDocument,
  wf: SleevesWalkForwardDocument | undefined,
): ResearchReportInput {
  const m = backtest.metrics;
  const wfm = wf?.account.outOfSample.metrics;
  const time = doc.equity.map((p) => p.time);
  const initial = job.options.initialCash;
  const sleeves: SleevesReportInput = {
    time,
    sleeves: backtest.sleeves.map((s) => ({
      id: s.id,
      equity: Array.from(s.equity.equity),
      drawdownPct: drawdown(s.equity.nav, s.initialCapital > 0 ? s.initialCapital : 1),
    })),
    weights: backtest.sleeves.map((s, k) => ({
      id: s.id,
      weight: backtest.allocation.weights.map((w) => w[k] as number),
    })),
    correlation: {
      ids: [...doc.correlation.sleeves],
      matrix: doc.correlation.matrix.map((row) => [...row]),
      breaches: doc.correlation.breaches.filter((b) => b.action === 'breach').length,
    },
    attribution: backtest.sleeves.map((s) => ({
      id: s.id,
      strategy: s.strategy,
      pnl: s.netPnl,
      contributionPct: (s.netPnl / initial) * 100,
      trades: s.metrics.trades,
      winRatePct: s.metrics.winRatePct,
      costs: s.costs,
    })),
  };
  const start = job.options.startIndex ?? 0;
  return {
    title: `QuantShift research: ${job.config.name} (${job.sleeves.length} sleeves) on ${backtest.symbols.join(', ')}`,
    generatedAt: wf?.generatedAt ?? '',
    configHash: wf?.configHash ?? '',
    gitCommit: wf?.gitCommit ?? '',
    decision: { proceed: wf?.decision.proceed ?? false, failed: [...(wf?.decision.failed ?? [])] },
    criteria: (wf?.criteria ?? []).map((c) => ({ ...c })),
    summary: [
      { label: 'Sleeves', value: job.sleeves.map((s) => `${s.id} (${s.strategy.name})`).join(', ') },
      {
        label: 'Allocation',
        value: `${doc.allocation.method}, ${doc.allocation.events.length} reallocations`,
      },
      { label: 'Backtest period', value: `${doc.from} .. ${doc.to}` },
      { label: 'Backtest return', value: `${num(m.returnPct)}% (buy & hold ${num(m.buyHoldReturnPct)}%)` },
      { label: 'Backtest CAGR / Sharpe', value: `${num(m.cagrPct)}% / ${num(m.sharpe)}` },
      { label: 'Backtest max drawdown', value: `${num(m.maxDrawdownPct)}% (${m.maxDrawdownDays} days)` },
      { label: 'Backtest trades / win rate', value: `${m.trades} / ${num(m.winRatePct)}%` },
      ...(wf === undefined || wfm === undefined
        ? []
        : [
            {
              label: 'Walk-forward out-of-sample return (account)',
              value: `${num(wfm.returnPct)}% (CAGR ${num(wfm.cagrPct)}%)`,
            },
            {
              label: 'Walk-forward out-of-sample Sharpe / max drawdown',
              value: `${num(wfm.sharpe)} / ${num(wfm.maxDrawdownPct)}%`,
            },
            {
              label: 'Sleeves passing their criteria out of sample',
              value: `${wf.sleeves.filter((s) => s.decision.proceed).length} of ${wf.sleeves.length}`,
            },
          ]),
    ],
    equity: { time, strategy: Array.from(backtest.equity.equity), buyHold: buyAndHoldCurve(job, backtest) },
    drawdownPct: drawdown(backtest.equity.equity, initial),
    symbols: job.series.map((s) => ({
      symbol: s.symbol,
      time: Array.from(s.time.subarray(start), (t) => new Date(t).toISOString().slice(0, 10)),
      close: Array.from(s.close.subarray(start)),
      trades: chartTrades(doc.trades, s.symbol),
    })),
    monthlyReturns: monthlyReturns(backtest, initial),
    walkForward:
      wf === undefined
        ? null
        : {
            windows: wf.sleeves.flatMap((s) =>
              s.windows.map((w) => ({
                symbol: s.id,
                inSample: w.inSample,
                outOfSample: w.outOfSample,
                params: { ...(w.params ?? {}) },
                outOfSampleReturnPct: w.outOfSampleMetrics.returnPct,
              })),
            ),
            efficiency: null,
            efficiencyNote: 'per sleeve: see the per-sleeve table',
            oosEquity: {
              time: wf.account.outOfSample.equity.map((p) => p.time),
              equity: wf.account.outOfSample.equity.map((p) => p.equity),
            },
          },
    parameterSurface: null,
    perSymbol: backtest.sleeves.map((s) => {
      const unit = wf?.sleeves.find((u) => u.id === s.id);
      return {
        symbol: s.id,
        metrics: {
          ...pick(s.metrics),
          oosReturnPct: unit?.outOfSample.metrics.returnPct ?? null,
          wfEfficiency: unit?.efficiency ?? null,
        },
      };
    }),
    risk: riskSection(doc),
    sleeves,
  };
}

/** The account's backtest, and a chart cache holding every chart of the report that does not depend on the walk-forward. */
export interface PreparedSleevesReport {
  readonly result: SleevesBacktestResult;
  readonly doc: SleevesBacktestDocument;
  readonly charts: ChartCache;
}

/**
 * What the sleeves report needs before the walk-forward ends: the account's backtest (the
 * configured parameters; it reads no walk-forward result) and its charts. The research job runs it
 * while the worker threads run the walk-forward's grids, so the report after them only draws the
 * walk-forward's own charts.
 */
export async function prepareSleevesReport(job: SleevesJob): Promise<PreparedSleevesReport> {
  const charts = new ChartCache();
  const libraries = loadChartLibraries();
  const { result, doc } = runSleevesJob(job);
  await libraries;
  await renderResearchReport(buildSleevesReportInput(job, result, doc, undefined), { cache: charts });
  return { result, doc, charts };
}

/**
 * The account's backtest with its sleeves and the report around a sleeves walk-forward (the research
 * job and the pipeline's aggregate step). With `prepared` (from {@link prepareSleevesReport} on the
 * same job), its backtest and charts are reused; the report is the same.
 */
export async function sleevesResearchArtifacts(
  job: SleevesJob,
  wf: SleevesWalkForwardDocument,
  prepared?: PreparedSleevesReport,
): Promise<{ result: SleevesBacktestResult; doc: SleevesBacktestDocument; html: string }> {
  const { result, doc } = prepared ?? runSleevesJob(job);
  const input = buildSleevesReportInput(job, result, doc, wf);
  const html = await renderResearchReport(input, prepared === undefined ? {} : { cache: prepared.charts });
  return { result, doc, html };
}
