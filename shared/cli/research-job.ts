import { mkdirSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import cliProgress from 'cli-progress';
import { decide, evaluateCriteria } from '../core/backtest/criteria.js';
import { toBacktestDocument } from '../core/backtest/document.js';
import { runBacktest } from '../core/backtest/engine.js';
import type { BacktestResult } from '../core/backtest/types.js';
import { UsageError } from '../core/errors.js';
import { alignBars } from '../core/market/align.js';
import { formatBarTime } from '../core/market/types.js';
import type { Metrics } from '../core/metrics/index.js';
import { evaluateCombos } from '../core/research/evaluate.js';
import { objectiveValue } from '../core/research/objective.js';
import { type ResearchReportInput, renderResearchReport } from '../report/html.js';
import { type FlagSpecs, parseFlags, renderHelp, stringFlag } from './args.js';
import { type BacktestJob, resolveBacktestJob } from './backtest.js';
import { num, renderTable } from './format.js';
import {
  resolveSearch,
  runWalkForward,
  type WalkForwardDocument,
  walkForwardFlags,
  writeAtomic,
} from './research.js';

type Io = { stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream & { isTTY?: boolean } };

export const researchFlags: FlagSpecs = {
  ...walkForwardFlags,
  out: {
    type: 'string',
    value: '<dir>',
    help: 'where the report and the JSON documents go (default reports/)',
  },
};

/** Equal-weight buy-and-hold of the symbols over the traded span, in dollars. */
function buyAndHoldCurve(job: BacktestJob, result: BacktestResult): number[] {
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

function monthlyReturns(result: BacktestResult, initial: number): ResearchReportInput['monthlyReturns'] {
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

function drawdown(equity: Float64Array, initial: number): number[] {
  let peak = initial;
  return Array.from(equity, (e) => {
    peak = Math.max(peak, e);
    return ((peak - e) / peak) * 100;
  });
}

const pick = (m: Metrics): Record<string, number | null> => ({
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

/**
 * `quantshift research` (what `npm start` runs): the configured backtest, the walk-forward
 * analysis per symbol and for the portfolio, the parameter surface, and one self-contained HTML
 * report. Progress goes to stderr; the summary table and the report's path to stdout.
 */
export async function researchCommand(argv: readonly string[], io: Io): Promise<number> {
  const flags = parseFlags('research', argv, researchFlags);
  if (flags.help) {
    io.stdout.write(
      renderHelp(
        'quantshift research --config <yaml> [flags]',
        'The whole research job: backtest, walk-forward, parameter surface and an HTML report.',
        researchFlags,
      ),
    );
    return 0;
  }
  if (stringFlag(flags, 'config') === undefined)
    throw new UsageError('research: give --config (see quantshift research --help)');
  const job = resolveBacktestJob(flags);
  const { combos, objective } = resolveSearch(flags, job);
  const outDir = stringFlag(flags, 'out') ?? 'reports';

  const bar = new cliProgress.SingleBar(
    {
      format: 'research [{bar}] {percentage}% | {stage}',
      stream: io.stderr,
      noTTYOutput: !io.stderr.isTTY,
      notTTYSchedule: 2000,
    },
    cliProgress.Presets.shades_classic,
  );
  let total = 3;
  bar.start(total, 0, { stage: 'backtest' });
  const backtest = runBacktest({
    series: job.series,
    strategy: job.strategy,
    params: job.params,
    options: job.options,
  });
  const perSymbol = job.series.map((s) => ({
    symbol: s.symbol,
    metrics: runBacktest({ series: [s], strategy: job.strategy, params: job.params, options: job.options })
      .metrics,
  }));
  bar.increment(1, { stage: 'walk-forward' });
  let windowsSeen = 0;
  const { document: wf } = await runWalkForward(flags, job, (done, windows) => {
    if (windowsSeen === 0) {
      total += windows;
      bar.setTotal(total);
    }
    windowsSeen = done;
    bar.increment(1, { stage: `walk-forward window ${done}/${windows}` });
  });
  bar.increment(1, { stage: 'parameter surface' });
  const names = Object.keys(combos[0] ?? {}).filter((n) => combos.every((c) => typeof c[n] === 'number'));
  let surface: ResearchReportInput['parameterSurface'] = null;
  if (names.length >= 2) {
    const results = evaluateCombos({
      series: job.series,
      strategy: job.strategy.name,
      baseParams: job.params,
      combos,
      options: job.options,
    });
    surface = {
      objective: objective.metric,
      xName: names[0] as string,
      yName: names[1] as string,
      cells: combos.map((c, i) => ({
        x: c[names[0] as string] as number,
        y: c[names[1] as string] as number,
        value: objectiveValue(results[i] as Metrics, objective),
      })),
    };
  }
  bar.increment(1, { stage: 'report' });
  const html = await renderResearchReport(buildReportInput(job, backtest, perSymbol, wf, surface));
  mkdirSync(outDir, { recursive: true });
  const reportPath = join(outDir, 'research-report.html');
  const criteria = evaluateCriteria(backtest.metrics, job.criteria);
  writeAtomic(
    join(outDir, 'backtest.json'),
    `${JSON.stringify(toBacktestDocument(backtest, criteria, decide(criteria)), null, 2)}\n`,
  );
  writeAtomic(join(outDir, 'walk-forward.json'), `${JSON.stringify(wf, null, 2)}\n`);
  writeAtomic(reportPath, html);
  bar.update(total, { stage: 'done' });
  bar.stop();

  const units = [...wf.perSymbol, wf.portfolio];
  const table = renderTable(
    [
      'Unit',
      'Backtest return %',
      'Backtest Sharpe',
      'OOS return %',
      'OOS Sharpe',
      'OOS max DD %',
      'WF efficiency',
    ],
    units.map((u) => {
      const bt =
        u.symbol === 'PORTFOLIO' ? backtest.metrics : perSymbol.find((p) => p.symbol === u.symbol)?.metrics;
      return [
        u.symbol,
        num(bt?.returnPct),
        num(bt?.sharpe),
        num(u.outOfSample.metrics.returnPct),
        num(u.outOfSample.metrics.sharpe),
        num(u.outOfSample.metrics.maxDrawdownPct),
        u.efficiency === null ? 'n/a' : num(u.efficiency),
      ];
    }),
  );
  const criteriaTable = renderTable(
    ['Criterion (walk-forward, out of sample)', 'Rule', 'Value', 'Result'],
    wf.criteria.map((c) => [c.name, `${c.op} ${c.threshold}`, num(c.value), c.pass ? 'PASS' : 'FAIL']),
  );
  const verdict = wf.decision.proceed
    ? 'Decision: PROCEED to paper trading'
    : `Decision: REFINE (failed: ${wf.decision.failed.join(', ')})`;
  const shown = relative(process.cwd(), resolve(reportPath)) || reportPath;
  io.stdout.write(`${table}\n\n${criteriaTable}\n\n${verdict}\n\nReport: ${shown}\n`);
  return 0;
}
