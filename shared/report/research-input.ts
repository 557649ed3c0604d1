import { decide, evaluateCriteria } from '../core/backtest/criteria.js';
import { type BacktestDocument, toBacktestDocument } from '../core/backtest/document.js';
import type { BacktestResult } from '../core/backtest/types.js';
import { alignBars } from '../core/market/align.js';
import { PERIODS_PER_YEAR } from '../core/market/asset-class.js';
import { type BarSeries, barAt, formatBarTime } from '../core/market/types.js';
import type { Metrics } from '../core/metrics/index.js';
import type { BacktestJob, WalkForwardDocument } from '../research/job.js';
import type { ResearchReportInput } from './html.js';
import { entryAdjustments } from './labels.js';
import { num } from './number.js';
import { type TradeRow, tradeRows } from './trades.js';

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

/** What a report built without a walk-forward (one backtest) shows in its header. */
export interface ReportProvenance {
  readonly generatedAt: string;
  readonly configHash: string;
  readonly gitCommit: string;
}

/**
 * Builds the report's input from the backtest, the walk-forward (null for a single backtest's
 * report) and the full-span parameter surface. `benchmark` is SPY's bars, for its buy-and-hold
 * line and the strategy's alpha and beta; `provenance` fills the header when there is no
 * walk-forward document to take it from.
 */
export function buildReportInput(
  job: BacktestJob,
  backtest: BacktestResult,
  perSymbol: readonly { symbol: string; metrics: Metrics }[],
  wf: WalkForwardDocument | null,
  surface: ResearchReportInput['parameterSurface'],
  extra: { readonly benchmark?: BarSeries; readonly provenance?: ReportProvenance } = {},
): ResearchReportInput {
  const fmt = (t: number) => formatBarTime(t, backtest.intraday);
  const time = Array.from(backtest.equity.time, fmt);
  const criteria = evaluateCriteria(backtest.metrics, job.criteria);
  const doc = toBacktestDocument(backtest, criteria, decide(criteria));
  const m = backtest.metrics;
  const meta = wf ?? extra.provenance ?? { generatedAt: '', configHash: '', gitCommit: '' };
  const decision = wf?.decision ?? doc.decision;
  const rows = tradeRows(doc);
  const spy =
    extra.benchmark === undefined ? null : benchmarkCurve(extra.benchmark, backtest, job.options.initialCash);
  const basket = `Equal-weight basket (${backtest.symbols.join(', ')}) buy & hold`;
  return {
    title: `QuantShift ${wf === null ? 'backtest' : 'research'}: ${job.config?.name ?? job.strategy.name} on ${backtest.symbols.join(', ')}`,
    generatedAt: meta.generatedAt,
    configHash: meta.configHash,
    gitCommit: meta.gitCommit,
    decision: { proceed: decision.proceed, failed: [...decision.failed] },
    criteria: (wf?.criteria ?? doc.criteria).map((c) => ({ ...c })),
    summary: [
      { label: 'Backtest period', value: `${doc.from} .. ${doc.to}` },
      {
        label: 'Annualisation',
        value:
          backtest.periodsPerYear === PERIODS_PER_YEAR.crypto
            ? `${backtest.periodsPerYear} periods a year (crypto: UTC days, 7 a week, no weekend gaps)`
            : `${backtest.periodsPerYear} periods a year (trading sessions)`,
      },
      { label: 'Backtest return', value: `${num(m.returnPct)}% (buy & hold ${num(m.buyHoldReturnPct)}%)` },
      { label: 'Backtest CAGR / Sharpe', value: `${num(m.cagrPct)}% / ${num(m.sharpe)}` },
      { label: 'Backtest max drawdown', value: `${num(m.maxDrawdownPct)}% (${m.maxDrawdownDays} days)` },
      {
        label: 'Backtest trades / win rate / profit factor',
        value: `${m.trades} / ${num(m.winRatePct)}% / ${num(m.profitFactor)}`,
      },
      { label: 'Sortino / Calmar', value: `${num(m.sortino)} / ${num(m.calmar)}` },
      { label: 'Exposure (days in the market)', value: `${num(m.exposurePct)}%` },
      ...(spy === null
        ? []
        : [
            {
              label: `Alpha / beta against ${extra.benchmark?.symbol} buy & hold`,
              value: `${spy.alphaPct === null ? 'n/a' : `${num(spy.alphaPct)}% a year`} / ${num(spy.beta)}`,
            },
          ]),
      ...walkForwardSummary(wf),
    ],
    equity: {
      time,
      strategy: Array.from(backtest.equity.equity),
      buyHold: buyAndHoldCurve(job, backtest),
      buyHoldName: basket,
      spy: spy === null ? null : { name: `${extra.benchmark?.symbol} buy & hold`, values: spy.values },
    },
    benchmark:
      spy === null
        ? null
        : { against: `${extra.benchmark?.symbol} buy & hold`, alphaPct: spy.alphaPct, beta: spy.beta },
    entryAdjustments: entryAdjustments({
      refused: doc.risk?.refusedEntries ?? [],
      reduced: doc.risk?.reducedEntries ?? [],
      skipped: doc.skippedEntries,
    }),
    drawdownPct: drawdown(backtest.equity.equity, job.options.initialCash),
    symbols: job.series.map((s) => {
      // The first bar of this symbol at or after the first traded day: series may start on
      // different days (SOL-USD years after BTC-USD), so a calendar slot is not a bar index.
      const firstTraded = backtest.equity.time[0] as number;
      const found = s.time.findIndex((t) => t >= firstTraded);
      const from = found < 0 ? s.time.length : found;
      const lines = strategyLines(job, s);
      const symbolTrades = rows.filter((t) => t.symbol === s.symbol);
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
          qty: t.qty,
          returnPct: t.returnPct,
          daysHeld: t.daysHeld,
          exitReason: t.exitReason,
        })),
        overlays: [
          ...lines.indicators.map((o) => ({ name: o.name, values: o.values.slice(from) })),
          ...stopOverlay(s, lines.stops, symbolTrades, fmt, from),
        ],
      };
    }),
    monthlyReturns: monthlyReturns(backtest, job.options.initialCash),
    walkForward:
      wf === null
        ? null
        : {
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
      const unit = wf?.perSymbol.find((u) => u.symbol === p.symbol);
      return {
        symbol: p.symbol,
        metrics: {
          ...pick(p.metrics),
          ...(wf === null
            ? {}
            : {
                oosReturnPct: unit?.outOfSample.metrics.returnPct ?? null,
                wfEfficiency: unit?.efficiency ?? null,
              }),
        },
      };
    }),
    risk: riskSection(doc),
  };
}

/** The report's risk section from a backtest document's risk part; null when the risk rules were off. */
export function riskSection(doc: Pick<BacktestDocument, 'risk'>): ResearchReportInput['risk'] {
  const risk = doc.risk;
  if (risk === undefined) return null;
  return {
    peakHeatPct: risk.peakHeatPct,
    breakerTrips: risk.breakerTrips.map((t) => ({
      time: t.time,
      breaker: t.breaker,
      reason: t.reason,
    })),
    refusedEntries: risk.refusedEntries.length,
    reducedEntries: risk.reducedEntries.length,
    heat: { time: risk.heat.map((h) => h.time), heatPct: risk.heat.map((h) => h.heatPct) },
  };
}

function walkForwardSummary(wf: WalkForwardDocument | null): { label: string; value: string }[] {
  if (wf === null) return [];
  const wfm = wf.outOfSample.metrics;
  return [
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
  ];
}

/** The indicator lines of the strategy over a series, and the stop each bar's entry decision set. */
function strategyLines(job: BacktestJob, series: BarSeries) {
  const instance = job.strategy.create(job.params, { direction: job.options.direction ?? 'long-only' });
  const n = series.time.length;
  const byName = new Map<string, (number | null)[]>();
  const stops: (number | null)[] = new Array(n).fill(null);
  for (let i = 0; i < n; i++) {
    const intent = instance.onBar(barAt(series, i), { position: 'flat' });
    if (intent.action === 'enter' && intent.stopLoss !== undefined) stops[i] = intent.stopLoss;
    for (const [name, value] of Object.entries(instance.indicators?.() ?? {})) {
      let values = byName.get(name);
      if (values === undefined) {
        values = new Array(n).fill(null);
        byName.set(name, values);
      }
      values[i] = Number.isFinite(value) ? value : null;
    }
  }
  return { indicators: [...byName].map(([name, values]) => ({ name, values })), stops };
}

/**
 * The initial protective stop of each trade, drawn from its entry to its exit: the stop its entry
 * decision (the bar before the fill) set. No line without stops.
 */
function stopOverlay(
  series: BarSeries,
  stops: readonly (number | null)[],
  trades: readonly TradeRow[],
  fmt: (t: number) => string,
  from: number,
): { name: string; values: (number | null)[] }[] {
  const times = Array.from(series.time, fmt);
  const values: (number | null)[] = new Array(times.length).fill(null);
  let any = false;
  for (const t of trades) {
    const entry = times.indexOf(t.entryTime);
    const stop = entry > 0 ? stops[entry - 1] : null;
    if (stop === null || stop === undefined) continue;
    const exit = t.exitTime === null ? times.length - 1 : times.indexOf(t.exitTime);
    for (let i = entry; i <= (exit < 0 ? times.length - 1 : exit); i++) values[i] = stop;
    any = true;
  }
  return any ? [{ name: 'Initial stop', values: values.slice(from) }] : [];
}

/**
 * Buy-and-hold of the benchmark (SPY) over the backtest's days, in dollars, and the strategy's
 * alpha (annualized, percent) and beta from daily returns by least squares.
 */
function benchmarkCurve(benchmark: BarSeries, backtest: BacktestResult, initialCash: number) {
  const closeAt = new Map<number, number>();
  for (let i = 0; i < benchmark.time.length; i++)
    closeAt.set(benchmark.time[i] as number, benchmark.close[i] as number);
  const times = Array.from(backtest.equity.time);
  let last = Number.NaN;
  const closes = times.map((t) => {
    last = closeAt.get(t) ?? last;
    return last;
  });
  const first = closes.find((c) => Number.isFinite(c)) ?? Number.NaN;
  const values = closes.map((c) =>
    Number.isFinite(c) ? Math.round((initialCash * c * 100) / first) / 100 : initialCash,
  );
  const equity = backtest.equity.equity;
  const rs: number[] = [];
  const rb: number[] = [];
  for (let i = 1; i < times.length; i++) {
    const b0 = closes[i - 1] as number;
    const b1 = closes[i] as number;
    if (!(Number.isFinite(b0) && Number.isFinite(b1))) continue;
    rs.push((equity[i] as number) / (equity[i - 1] as number) - 1);
    rb.push(b1 / b0 - 1);
  }
  const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  if (rs.length < 2) return { values, alphaPct: null, beta: null };
  const ms = mean(rs);
  const mb = mean(rb);
  let cov = 0;
  let varB = 0;
  rs.forEach((r, i) => {
    cov += (r - ms) * ((rb[i] as number) - mb);
    varB += ((rb[i] as number) - mb) ** 2;
  });
  if (!(varB > 0)) return { values, alphaPct: null, beta: null };
  const beta = cov / varB;
  return { values, alphaPct: (ms - beta * mb) * 252 * 100, beta };
}
