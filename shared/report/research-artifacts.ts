import { backtestPortfolio } from '../core/backtest/fast/portfolio.js';
import type { BacktestResult } from '../core/backtest/types.js';
import { alignBars } from '../core/market/align.js';
import type { BarSeries } from '../core/market/types.js';
import type { Metrics } from '../core/metrics/index.js';
import { evaluateCombos } from '../core/research/evaluate.js';
import type { Combination } from '../core/research/grid.js';
import { type Objective, objectiveValue } from '../core/research/objective.js';
import type { BacktestJob, WalkForwardDocument } from '../research/job.js';
import { type ResearchReportInput, renderResearchReport } from './html.js';
import { buildReportInput, type ReportProvenance } from './research-input.js';

/** What the research report shows besides the walk-forward: the backtests and the parameter surface. */
export interface ResearchArtifacts {
  readonly backtest: BacktestResult;
  readonly perSymbol: readonly { symbol: string; metrics: Metrics }[];
  readonly surface: ResearchReportInput['parameterSurface'];
  readonly html: string;
}

/**
 * Runs the configured backtest (portfolio and each symbol), the objective over the grid on the
 * full span (the parameter surface), and renders the report around a walk-forward document.
 * The research job and the pipeline's aggregate step both call it.
 */
export async function researchArtifacts(
  job: BacktestJob,
  wf: WalkForwardDocument,
  combos: readonly Combination[],
  objective: Objective,
): Promise<ResearchArtifacts> {
  const run = (series: BacktestJob['series'], options = job.options) =>
    backtestPortfolio({ series, strategy: job.strategy, params: job.params, options });
  const backtest = run(job.series);
  // The job's start and end are slots of the symbols' common calendar; one symbol alone has its own
  // bar indices (series may start on different days, SOL-USD years after BTC-USD).
  const calendar = alignBars(job.series).time;
  const firstTime = calendar[job.options.startIndex ?? 0] as number;
  const lastTime = calendar[job.options.endIndex ?? calendar.length - 1] as number;
  const perSymbol = job.series.map((s) => {
    const startIndex = Math.max(
      0,
      s.time.findIndex((t) => t >= firstTime),
    );
    let endIndex = s.time.length - 1;
    while (endIndex > startIndex && (s.time[endIndex] as number) > lastTime) endIndex--;
    return { symbol: s.symbol, metrics: run([s], { ...job.options, startIndex, endIndex }).metrics };
  });
  const names = Object.keys(combos[0] ?? {}).filter((n) => combos.every((c) => typeof c[n] === 'number'));
  let surface: ResearchReportInput['parameterSurface'] = null;
  if (names.length >= 2) {
    const [x, y] = names as [string, string];
    const results = evaluateCombos({
      series: job.series,
      strategy: job.strategy.name,
      baseParams: job.params,
      combos,
      options: job.options,
    });
    surface = {
      objective: objective.metric,
      xName: x,
      yName: y,
      cells: combos.map((c, i) => ({
        x: c[x] as number,
        y: c[y] as number,
        value: objectiveValue(results[i] as Metrics, objective),
      })),
    };
  }
  const benchmark = job.series.find((s) => s.symbol === BENCHMARK_SYMBOL);
  const html = await renderResearchReport(
    buildReportInput(job, backtest, perSymbol, wf, surface, benchmark === undefined ? {} : { benchmark }),
  );
  return { backtest, perSymbol, surface, html };
}

/** The second benchmark the reports draw (buy-and-hold) and regress the strategy on (alpha, beta). */
export const BENCHMARK_SYMBOL = 'SPY';

/**
 * The same self-contained report for one backtest (`quantshift backtest --report`): equity against
 * the equal-weight basket and SPY, drawdown, prices with indicators, stops and trades, the trade
 * table, monthly returns, per-symbol metrics and risk; no walk-forward and no parameter surface.
 */
export async function backtestReportHtml(
  job: BacktestJob,
  backtest: BacktestResult,
  provenance: ReportProvenance,
  benchmark: BarSeries | undefined,
): Promise<string> {
  const perSymbol =
    job.series.length === 1
      ? [{ symbol: backtest.symbols[0] as string, metrics: backtest.metrics }]
      : job.series.map((s) => ({
          symbol: s.symbol,
          metrics: backtestPortfolio({
            series: [s],
            strategy: job.strategy,
            params: job.params,
            options: job.options,
          }).metrics,
        }));
  return renderResearchReport(
    buildReportInput(job, backtest, perSymbol, null, null, {
      provenance,
      ...(benchmark === undefined ? {} : { benchmark }),
    }),
  );
}

/** The report's HTML only. */
export async function researchReportHtml(
  job: BacktestJob,
  wf: WalkForwardDocument,
  combos: readonly Combination[],
  objective: Objective,
): Promise<string> {
  return (await researchArtifacts(job, wf, combos, objective)).html;
}
