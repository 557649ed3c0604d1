import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { UsageError } from '../core/errors.js';
import type { Metrics } from '../core/metrics/index.js';
import { type GridEvaluator, inProcessEvaluator } from '../core/research/evaluate.js';
import type { Combination } from '../core/research/grid.js';
import { type Objective, objectiveValue, rankResults } from '../core/research/objective.js';
import { type WalkForwardResult, walkForward } from '../core/research/walk-forward.js';
import {
  type BacktestJob,
  resolveSearch,
  resolveWindows,
  type WalkForwardDocument,
  walkForwardDocument,
} from '../research/job.js';
import { WorkerPoolEvaluator } from '../research/pool.js';
import type { SleevesWalkForwardDocument } from '../research/sleeves.js';
import { type FlagSpecs, numberFlag, type ParsedFlags, parseFlags, renderHelp, stringFlag } from './args.js';
import { backtestFlags, resolveJob } from './backtest.js';
import { num, renderCriteriaTable, renderDecision, renderTable } from './format.js';
import { jobProvenance, startClock, withProvenance } from './provenance.js';
import {
  optimizeSleeves,
  renderSleevesOptimizeTable,
  renderSleevesWalkForwardTable,
  runSleevesWalkForward,
} from './sleeves-research.js';

// The search and the walk-forward document live in shared/research/job.ts (shared with the pipeline's functions).
export { resolveSearch, type WalkForwardDocument } from '../research/job.js';

type Io = { stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream };

const searchFlags: FlagSpecs = {
  grid: {
    type: 'string',
    multiple: true,
    value: '<name=from:to:step|a,b,c>',
    help: "a parameter to search, repeatable: fast=5:30:5 slow=20:120:10 ma=sma,ema (default: the config's optimize.space)",
  },
  constraint: { type: 'string', multiple: true, value: '<expr>', help: 'e.g. "fast < slow" (repeatable)' },
  objective: {
    type: 'string',
    value: '<metric>',
    help: `metric to maximise (drawdown, volatility: minimise); default sharpe`,
  },
  min: {
    type: 'string',
    multiple: true,
    value: '<metric=value>',
    help: 'a minimum the chosen result must meet, e.g. trades=10',
  },
  workers: { type: 'string', value: '<n>', help: 'worker threads (default: every core; 0 = in-process)' },
};

const commonFlags: FlagSpecs = Object.fromEntries(
  Object.entries(backtestFlags).filter(([name]) => name !== 'help'),
);

/** `--out` of a command that writes `file` there. */
function outFlag(file: string): FlagSpecs[string] {
  return { type: 'string', value: '<dir>', help: `also write ${file} into this folder` };
}

const optimizeFlags: FlagSpecs = {
  ...commonFlags,
  out: outFlag('optimize.json'),
  ...searchFlags,
  help: backtestFlags.help as FlagSpecs[string],
};

export const walkForwardFlags: FlagSpecs = {
  ...commonFlags,
  out: outFlag('walk-forward.json'),
  ...searchFlags,
  mode: {
    type: 'string',
    choices: ['rolling', 'anchored'],
    help: 'rolling windows, or in-sample anchored at the first bar',
  },
  unit: { type: 'string', choices: ['bars', 'months'], help: 'unit of the window lengths (default bars)' },
  'in-sample': { type: 'string', value: '<n>', help: 'in-sample length (default 504 bars)' },
  'out-of-sample': { type: 'string', value: '<n>', help: 'out-of-sample length (default 126 bars)' },
  step: { type: 'string', value: '<n>', help: 'step between windows (default: the out-of-sample length)' },
  engine: {
    type: 'string',
    choices: ['in-process', 'stepfunctions'],
    help: 'stepfunctions: run the synthesized Step Functions definition locally (same results)',
  },
  'state-dir': {
    type: 'string',
    value: '<dir>',
    help: 'with --engine stepfunctions: the folder standing in for the S3 bucket (default: a temp folder)',
  },
  help: backtestFlags.help as FlagSpecs[string],
};

function evaluatorFor(flags: ParsedFlags): GridEvaluator {
  const workers = numberFlag(flags, 'workers', { min: 0, max: 256, integer: true });
  return workers === 0 ? inProcessEvaluator : new WorkerPoolEvaluator(workers);
}

/** The combinations best first by the objective, each with its rank, objective value and metrics. */
export function rankedCombos(
  combos: readonly Combination[],
  results: readonly Metrics[],
  objective: Objective,
) {
  return rankResults(results, objective).map((i, rank) => ({
    rank: rank + 1,
    params: combos[i],
    objective: objectiveValue(results[i] as Metrics, objective),
    metrics: results[i] as Metrics,
  }));
}

/**
 * Runs `run` with the evaluator `--workers` asks for and closes that evaluator afterwards, also
 * when `run` fails.
 */
export async function withEvaluator<T>(
  flags: ParsedFlags,
  run: (evaluator: GridEvaluator) => Promise<T>,
): Promise<T> {
  const evaluator = evaluatorFor(flags);
  try {
    return await run(evaluator);
  } finally {
    await evaluator.close();
  }
}

/** Writes a file atomically: a temp file in the same folder, then a rename. */
export function writeAtomic(path: string, text: string): void {
  const temp = `${path}.tmp-${process.pid}`;
  writeFileSync(temp, text);
  renameSync(temp, path);
}

function writeOut(flags: ParsedFlags, name: string, document: unknown, io: Io): void {
  const out = stringFlag(flags, 'out');
  if (out === undefined) return;
  mkdirSync(out, { recursive: true });
  const path = join(out, name);
  writeAtomic(path, `${JSON.stringify(document, null, 2)}\n`);
  io.stderr.write(`wrote ${resolve(path)}\n`);
}

export function formatParams(params: Combination | null): string {
  return params === null
    ? '(none qualified)'
    : Object.entries(params)
        .map(([k, v]) => `${k}=${v}`)
        .join(' ');
}

/** `quantshift optimize`: a grid search over the span, ranked by the objective, with the objective surface. */
export async function optimizeCommand(argv: readonly string[], io: Io): Promise<number> {
  const flags = parseFlags('optimize', argv, optimizeFlags);
  if (flags.help) {
    io.stdout.write(
      renderHelp(
        'quantshift optimize [--config <yaml>] [flags]',
        'Grid search of strategy parameters over the data span, ranked by an objective.',
        optimizeFlags,
      ),
    );
    return 0;
  }
  const clock = startClock();
  const format = stringFlag(flags, 'format') ?? 'table';
  const { sleeves, single: job } = resolveJob(flags, (line) => io.stderr.write(`${line}\n`));
  if (sleeves !== undefined) {
    const document = await optimizeSleeves(flags, sleeves, io);
    writeOut(flags, 'optimize.json', document, io);
    io.stdout.write(
      format === 'json' ? `${JSON.stringify(document)}\n` : renderSleevesOptimizeTable(document),
    );
    return 0;
  }
  const { combos, objective } = resolveSearch(flags, job);
  const results: Metrics[] = await withEvaluator(flags, (evaluator) => {
    io.stderr.write(
      `optimize: ${combos.length} combinations on ${job.series.map((s) => s.symbol).join(', ')}\n`,
    );
    return evaluator.evaluate({
      series: job.series,
      strategy: job.strategy.name,
      baseParams: job.params,
      combos,
      options: job.options,
    });
  });
  const names = Object.keys(combos[0] as Combination);
  const numeric = names.filter((n) => combos.every((c) => typeof c[n] === 'number'));
  const document = withProvenance(jobProvenance(clock, flags, job), {
    command: 'optimize',
    symbols: job.series.map((s) => s.symbol),
    objective: objective.metric,
    minimums: objective.minimums,
    trials: combos.length,
    ranked: rankedCombos(combos, results, objective),
    surface:
      numeric.length >= 2
        ? {
            xName: numeric[0],
            yName: numeric[1],
            cells: combos.map((c, i) => ({
              x: c[numeric[0] as string],
              y: c[numeric[1] as string],
              value: objectiveValue(results[i] as Metrics, objective),
            })),
          }
        : null,
  });
  writeOut(flags, 'optimize.json', document, io);
  if (format === 'json') {
    io.stdout.write(`${JSON.stringify(document)}\n`);
    return 0;
  }
  const top = document.ranked.slice(0, 20);
  io.stdout.write(
    `${renderTable(
      ['Rank', 'Params', objective.metric, 'Return %', 'Max DD %', 'Trades', 'Win %'],
      top.map((r) => [
        String(r.rank),
        formatParams(r.params as Combination),
        num(r.objective),
        num(r.metrics?.returnPct),
        num(r.metrics?.maxDrawdownPct),
        String(r.metrics?.trades ?? ''),
        num(r.metrics?.winRatePct),
      ]),
    )}\n\n${combos.length} combinations; ${results.filter((m) => objectiveValue(m, objective) !== null).length} met the minimums.\n`,
  );
  return 0;
}

/** Runs the walk-forward of a resolved job (shared by the command and the research job). */
export async function runWalkForward(
  flags: ParsedFlags,
  job: BacktestJob,
  onProgress?: (done: number, total: number) => void,
): Promise<{ result: WalkForwardResult; document: WalkForwardDocument }> {
  const clock = startClock();
  const { combos, objective } = resolveSearch(flags, job);
  const settings = resolveWindows(flags, job);
  const result: WalkForwardResult = await withEvaluator(flags, (evaluator) =>
    walkForward({
      series: job.series,
      strategy: job.strategy.name,
      baseParams: job.params,
      combos,
      objective,
      options: job.options,
      settings,
      criteria: job.criteria,
      evaluator,
      ...(onProgress ? { onProgress } : {}),
    }),
  );
  const document = walkForwardDocument(
    result,
    { engine: 'in-process', ...jobProvenance(clock, flags, job) },
    settings,
    objective,
  );
  return { result, document };
}

/** Renders the walk-forward summary: windows, per-symbol and portfolio results, criteria and decision. */
function renderWalkForwardTable(document: WalkForwardDocument): string {
  const windows = renderTable(
    ['Symbol', '#', 'In-sample', 'Out-of-sample', 'Params', 'IS objective', 'OOS return %'],
    document.windows.map((w) => [
      w.symbol,
      String(w.index + 1),
      `${w.inSample.from}..${w.inSample.to}`,
      `${w.outOfSample.from}..${w.outOfSample.to}`,
      formatParams(w.params),
      num(w.objective),
      num(w.outOfSampleMetrics.returnPct),
    ]),
  );
  const units = renderTable(
    [
      'Unit',
      'OOS return %',
      'OOS CAGR %',
      'Sharpe',
      'Max DD %',
      'Trades',
      'WF efficiency',
      'Deflated Sharpe',
    ],
    [...document.perSymbol, document.portfolio].map((u) => [
      u.symbol,
      num(u.outOfSample.metrics.returnPct),
      num(u.outOfSample.metrics.cagrPct),
      num(u.outOfSample.metrics.sharpe),
      num(u.outOfSample.metrics.maxDrawdownPct),
      String(u.outOfSample.metrics.trades),
      u.efficiency === null ? 'n/a' : num(u.efficiency),
      u.multipleTesting === null ? 'n/a' : num(u.multipleTesting.deflatedSharpe, 3),
    ]),
  );
  const criteria = renderCriteriaTable('Criterion (portfolio OOS)', document.criteria);
  const verdict = renderDecision(document.decision, 'every criterion passed out of sample');
  const notes = [...document.perSymbol, document.portfolio]
    .filter((u) => u.efficiencyNote !== null)
    .map((u) => `  ${u.symbol}: efficiency n/a: ${u.efficiencyNote}`);
  return [
    windows,
    '',
    units,
    ...(notes.length ? ['', ...notes] : []),
    '',
    `Trials per window: ${document.trials} (deflated Sharpe accounts for them)`,
    '',
    criteria,
    '',
    verdict,
    '',
  ].join('\n');
}

/** `quantshift walk-forward`. */
export async function walkForwardCommand(argv: readonly string[], io: Io): Promise<number> {
  const flags = parseFlags('walk-forward', argv, walkForwardFlags);
  if (flags.help) {
    io.stdout.write(
      renderHelp(
        'quantshift walk-forward [--config <yaml>] [flags]',
        'Walk-forward analysis: choose parameters in-sample, run them out-of-sample, stitch the out-of-sample spans.\nPer symbol and for the portfolio of all symbols; decides "proceed to paper trading" or "refine".',
        walkForwardFlags,
      ),
    );
    return 0;
  }
  const format = stringFlag(flags, 'format') ?? 'table';
  const { sleeves, single: job } = resolveJob(flags, (line) => io.stderr.write(`${line}\n`));
  if (sleeves !== undefined) {
    const document =
      stringFlag(flags, 'engine') === 'stepfunctions'
        ? await (await import('./pipeline.js')).walkForwardOnLocalPipeline<SleevesWalkForwardDocument>(
            flags,
            sleeves,
            io,
          )
        : (
            await runSleevesWalkForward(flags, sleeves, (done, total) => {
              io.stderr.write(`\rwalk-forward: window ${done}/${total}`);
              if (done === total) io.stderr.write('\n');
            })
          ).document;
    writeOut(flags, 'walk-forward.json', document, io);
    io.stdout.write(
      format === 'json' ? `${JSON.stringify(document)}\n` : renderSleevesWalkForwardTable(document),
    );
    return 0;
  }
  if (job.config === undefined && flags.grid === undefined) {
    throw new UsageError('walk-forward needs a search grid: --config with an optimize section, or --grid');
  }
  io.stderr.write(`walk-forward: ${job.series.map((s) => s.symbol).join(', ')}\n`);
  const engine = stringFlag(flags, 'engine') ?? 'in-process';
  const document =
    engine === 'stepfunctions'
      ? await (await import('./pipeline.js')).walkForwardOnLocalPipeline(flags, job, io)
      : (
          await runWalkForward(flags, job, (done, total) => {
            io.stderr.write(`\rwalk-forward: window ${done}/${total}`);
            if (done === total) io.stderr.write('\n');
          })
        ).document;
  writeOut(flags, 'walk-forward.json', document, io);
  io.stdout.write(format === 'json' ? `${JSON.stringify(document)}\n` : renderWalkForwardTable(document));
  return 0;
}
