import { mkdirSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import type { Metrics } from '../core/metrics/index.js';
import {
  type SleevesWalkForwardResult,
  sleeveCombos,
  sleeveOptions,
  sleeveSeries,
  sleevesWalkForward,
} from '../core/research/sleeves-walk-forward.js';
import { prepareSleevesReport, sleevesResearchArtifacts } from '../report/sleeves-input.js';
import type { ParsedFlags } from '../research/flags.js';
import { resolveObjective, resolveWindows } from '../research/job.js';
import {
  type SleevesJob,
  type SleevesWalkForwardDocument,
  sleevesWalkForwardDocument,
} from '../research/sleeves.js';
import { num, renderCriteriaTable, renderDecision, renderTable } from './format.js';
import { sleevesProvenance, startClock, withProvenance } from './provenance.js';
import { formatParams, rankedCombos, withEvaluator, writeAtomic } from './research.js';

type Io = { stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream };

/** `quantshift optimize` on a sleeves config: each sleeve's grid over the span, on its own symbols. */
export async function optimizeSleeves(flags: ParsedFlags, job: SleevesJob, io: Io) {
  const clock = startClock();
  const objective = resolveObjective(flags, job.config);
  const sleeves = await withEvaluator(flags, async (evaluator) => {
    const ranked = [];
    for (const sleeve of job.sleeves) {
      const combos = sleeveCombos(sleeve);
      const series = sleeveSeries(sleeve, job.series);
      io.stderr.write(
        `optimize: ${sleeve.id}: ${combos.length} combinations on ${series.map((s) => s.symbol).join(', ')}\n`,
      );
      const results: Metrics[] = await evaluator.evaluate({
        series,
        strategy: sleeve.strategy.name,
        baseParams: sleeve.params as Record<string, unknown>,
        combos,
        options: sleeveOptions(sleeve, job.options),
      });
      ranked.push({
        id: sleeve.id,
        strategy: sleeve.strategy.name,
        symbols: sleeve.symbols,
        trials: combos.length,
        ranked: rankedCombos(combos, results, objective),
      });
    }
    return ranked;
  });
  return {
    ...sleevesProvenance(clock, flags, job),
    command: 'optimize',
    symbols: job.series.map((s) => s.symbol),
    objective: objective.metric,
    minimums: objective.minimums,
    sleeves,
  };
}

export type SleevesOptimizeDocument = Awaited<ReturnType<typeof optimizeSleeves>>;

/** The optimize table: the top combinations of each sleeve. */
export function renderSleevesOptimizeTable(doc: SleevesOptimizeDocument, top = 5): string {
  return `${renderTable(
    ['Sleeve', 'Rank', 'Params', doc.objective, 'Return %', 'Max DD %', 'Trades', 'Win %'],
    doc.sleeves.flatMap((s) =>
      s.ranked
        .slice(0, top)
        .map((r) => [
          s.id,
          String(r.rank),
          formatParams(r.params ?? null),
          num(r.objective),
          num(r.metrics.returnPct),
          num(r.metrics.maxDrawdownPct),
          String(r.metrics.trades),
          num(r.metrics.winRatePct),
        ]),
    ),
  )}\n\n${doc.sleeves.map((s) => `${s.id}: ${s.trials} combinations`).join('; ')}\n`;
}

/** Runs the sleeves walk-forward of a job (the command and the research job share it). */
export async function runSleevesWalkForward(
  flags: ParsedFlags,
  job: SleevesJob,
  onProgress?: (done: number, total: number) => void,
): Promise<{ result: SleevesWalkForwardResult; document: SleevesWalkForwardDocument }> {
  const clock = startClock();
  const objective = resolveObjective(flags, job.config);
  const settings = resolveWindows(flags, { config: job.config });
  const result: SleevesWalkForwardResult = await withEvaluator(flags, (evaluator) =>
    sleevesWalkForward({
      series: job.series,
      sleeves: job.sleeves,
      objective,
      options: job.options,
      settings,
      criteria: job.criteria,
      ...(job.allocation === undefined ? {} : { allocation: job.allocation }),
      ...(job.correlation === undefined ? {} : { correlation: job.correlation }),
      evaluator,
      ...(onProgress ? { onProgress } : {}),
    }),
  );
  const document = sleevesWalkForwardDocument(
    result,
    {
      engine: 'in-process',
      ...sleevesProvenance(clock, flags, job),
    },
    settings,
    objective,
  );
  return { result, document };
}

/** The walk-forward table: one row per sleeve and the account, then the account's criteria. */
export function renderSleevesWalkForwardTable(doc: SleevesWalkForwardDocument): string {
  const row = (
    name: string,
    strategy: string,
    m: Metrics,
    efficiency: number | null,
    trials: string,
    verdict: string,
  ) => [
    name,
    strategy,
    num(m.returnPct),
    num(m.cagrPct),
    num(m.sharpe),
    num(m.maxDrawdownPct),
    String(m.trades),
    efficiency === null ? 'n/a' : num(efficiency),
    trials,
    verdict,
  ];
  const units = renderTable(
    [
      'Sleeve',
      'Strategy',
      'OOS return %',
      'OOS CAGR %',
      'Sharpe',
      'Max DD %',
      'Trades',
      'WF efficiency',
      'Trials',
      'Decision',
    ],
    [
      ...doc.sleeves.map((s) =>
        row(
          s.id,
          s.strategy,
          s.outOfSample.metrics,
          s.efficiency,
          String(s.trials),
          s.decision.proceed ? 'PROCEED' : 'REFINE',
        ),
      ),
      row(
        'ACCOUNT',
        '',
        doc.account.outOfSample.metrics,
        null,
        '',
        doc.decision.proceed ? 'PROCEED' : 'REFINE',
      ),
    ],
  );
  const criteria = renderCriteriaTable('Criterion (account OOS)', doc.criteria);
  const verdict = renderDecision(doc.decision, 'every criterion passed out of sample');
  return `${units}\n\nAllocation out of sample: ${doc.account.reallocations.length} reallocations\n\n${criteria}\n\n${verdict}\n`;
}

/**
 * `quantshift research` on a sleeves config (what `npm start` runs): the sleeves walk-forward, the
 * account's backtest with its sleeves, and one HTML report. Returns the summary for stdout.
 */
export async function researchSleeves(
  flags: ParsedFlags,
  job: SleevesJob,
  outDir: string,
  onProgress: (stage: string, done: number, total: number) => void,
): Promise<{ readonly table: string; readonly document: object }> {
  const clock = startClock();
  const walkForward = runSleevesWalkForward(flags, job, (done, total) =>
    onProgress(`walk-forward window ${done}/${total}`, done, total),
  );
  // The account's backtest and its charts read no walk-forward result: they run on this thread
  // while the worker threads run the grids (once those have their first chunks).
  const prepared = new Promise<void>((resolve) => setImmediate(resolve)).then(() =>
    prepareSleevesReport(job),
  );
  const [{ document: wf }, ready] = await Promise.all([walkForward, prepared]);
  const artifacts = await sleevesResearchArtifacts(job, wf, ready);
  const { html } = artifacts;
  const doc = withProvenance(sleevesProvenance(clock, flags, job), artifacts.doc);
  mkdirSync(outDir, { recursive: true });
  const reportPath = join(outDir, 'research-report.html');
  writeAtomic(join(outDir, 'backtest.json'), `${JSON.stringify(doc, null, 2)}\n`);
  writeAtomic(join(outDir, 'walk-forward.json'), `${JSON.stringify(wf, null, 2)}\n`);
  writeAtomic(reportPath, html);
  const shown = relative(process.cwd(), resolve(reportPath)) || reportPath;
  const rows = [
    ...doc.sleeves.map((s) => {
      const unit = wf.sleeves.find((u) => u.id === s.id);
      return [
        s.id,
        s.strategy,
        num(s.metrics.returnPct),
        num(s.metrics.sharpe),
        num(unit?.outOfSample.metrics.returnPct),
        num(unit?.outOfSample.metrics.sharpe),
        num(unit?.outOfSample.metrics.maxDrawdownPct),
        unit?.efficiency === null || unit === undefined ? 'n/a' : num(unit.efficiency),
        unit?.decision.proceed ? 'PROCEED' : 'REFINE',
      ];
    }),
    [
      'ACCOUNT',
      '',
      num(doc.metrics.returnPct),
      num(doc.metrics.sharpe),
      num(wf.account.outOfSample.metrics.returnPct),
      num(wf.account.outOfSample.metrics.sharpe),
      num(wf.account.outOfSample.metrics.maxDrawdownPct),
      'n/a',
      wf.decision.proceed ? 'PROCEED' : 'REFINE',
    ],
  ];
  const table = renderTable(
    [
      'Sleeve',
      'Strategy',
      'Backtest return %',
      'Backtest Sharpe',
      'OOS return %',
      'OOS Sharpe',
      'OOS max DD %',
      'WF efficiency',
      'Decision',
    ],
    rows,
  );
  const criteria = renderCriteriaTable('Criterion (account, walk-forward out of sample)', wf.criteria);
  const verdict = renderDecision(wf.decision);
  const document = withProvenance(sleevesProvenance(clock, flags, job), {
    command: 'research',
    report: shown,
    decision: wf.decision,
    criteria: wf.criteria,
    backtest: doc,
    walkForward: wf,
  });
  return { table: `${table}\n\n${criteria}\n\n${verdict}\n\nReport: ${shown}\n`, document };
}
