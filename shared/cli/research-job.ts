import { mkdirSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import cliProgress from 'cli-progress';
import { decide, evaluateCriteria } from '../core/backtest/criteria.js';
import { toBacktestDocument } from '../core/backtest/document.js';
import { UsageError } from '../core/errors.js';
import { researchArtifacts } from '../report/research-artifacts.js';
import { type FlagSpecs, parseFlags, renderHelp, stringFlag } from './args.js';
import { backtestJsonDocument, resolveJob } from './backtest.js';
import { num, renderCriteriaTable, renderTable } from './format.js';
import { jobProvenance, startClock, withProvenance } from './provenance.js';
import { resolveSearch, runWalkForward, walkForwardFlags, writeAtomic } from './research.js';
import { researchSleeves } from './sleeves-research.js';

type Io = { stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream & { isTTY?: boolean } };

/** The walk-forward flags, less the engine (the research job runs in-process). */
const { engine: _engine, 'state-dir': _stateDir, ...researchWalkForwardFlags } = walkForwardFlags;

const researchFlags: FlagSpecs = {
  ...researchWalkForwardFlags,
  format: {
    type: 'string',
    choices: ['table', 'json'],
    help: 'stdout format (default table); json prints exactly one document (the report path, backtest and walk-forward)',
  },
  out: {
    type: 'string',
    value: '<dir>',
    help: 'where the report and the JSON documents go (default reports/)',
  },
};

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
  const clock = startClock();
  const format = stringFlag(flags, 'format') ?? 'table';
  const warn = (line: string) => io.stderr.write(`${line}\n`);
  const outDir = stringFlag(flags, 'out') ?? 'reports';
  const { sleeves, single: job } = resolveJob(flags, warn);
  const search = job === undefined ? undefined : resolveSearch(flags, job);

  const bar = new cliProgress.SingleBar(
    {
      format: 'research [{bar}] {percentage}% | {stage}',
      stream: io.stderr,
      noTTYOutput: !io.stderr.isTTY,
      notTTYSchedule: 2000,
    },
    cliProgress.Presets.shades_classic,
  );
  let total = 2;
  bar.start(total, 0, { stage: 'walk-forward' });
  let windowsSeen = 0;
  if (sleeves !== undefined) {
    const { table, document } = await researchSleeves(flags, sleeves, outDir, (stage, done, windows) => {
      if (windowsSeen === 0) {
        total += windows;
        bar.setTotal(total);
      }
      windowsSeen = done;
      bar.increment(1, { stage });
    });
    bar.update(total, { stage: 'done' });
    bar.stop();
    io.stdout.write(format === 'json' ? `${JSON.stringify(document)}\n` : table);
    return 0;
  }
  if (job === undefined || search === undefined) throw new UsageError('research: no job');
  const { combos, objective } = search;
  const { document: wf } = await runWalkForward(flags, job, (done, windows) => {
    if (windowsSeen === 0) {
      total += windows;
      bar.setTotal(total);
    }
    windowsSeen = done;
    bar.increment(1, { stage: `walk-forward window ${done}/${windows}` });
  });
  bar.increment(1, { stage: 'backtest, parameter surface and report' });
  const { backtest, perSymbol, html } = await researchArtifacts(job, wf, combos, objective);
  mkdirSync(outDir, { recursive: true });
  const reportPath = join(outDir, 'research-report.html');
  const criteria = evaluateCriteria(backtest.metrics, job.criteria);
  const backtestDocument = backtestJsonDocument(
    clock,
    flags,
    job,
    toBacktestDocument(backtest, criteria, decide(criteria)),
  );
  writeAtomic(join(outDir, 'backtest.json'), `${JSON.stringify(backtestDocument, null, 2)}\n`);
  writeAtomic(join(outDir, 'walk-forward.json'), `${JSON.stringify(wf, null, 2)}\n`);
  writeAtomic(reportPath, html);
  bar.update(total, { stage: 'done' });
  bar.stop();
  const shown = relative(process.cwd(), resolve(reportPath)) || reportPath;
  if (format === 'json') {
    const document = withProvenance(jobProvenance(clock, flags, job), {
      command: 'research',
      report: shown,
      decision: wf.decision,
      criteria: wf.criteria,
      backtest: backtestDocument,
      walkForward: wf,
    });
    io.stdout.write(`${JSON.stringify(document)}\n`);
    return 0;
  }

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
  const criteriaTable = renderCriteriaTable('Criterion (walk-forward, out of sample)', wf.criteria);
  const verdict = wf.decision.proceed
    ? 'Decision: PROCEED to paper trading'
    : `Decision: REFINE (failed: ${wf.decision.failed.join(', ')})`;
  io.stdout.write(`${table}\n\n${criteriaTable}\n\n${verdict}\n\nReport: ${shown}\n`);
  return 0;
}
