import type { Metrics } from '../core/metrics/index.js';
import { type Objective, objectiveValue, rankResults } from '../core/research/objective.js';
import {
  type SleevesWalkForwardResult,
  sleeveCombos,
  sleeveOptions,
  sleeveSeries,
  sleevesWalkForward,
} from '../core/research/sleeves-walk-forward.js';
import type { WalkForwardSettings } from '../core/research/walk-forward.js';
import type { ParsedFlags } from '../research/flags.js';
import { resolveObjective, resolveWindows } from '../research/job.js';
import type { SleevesJob } from '../research/sleeves.js';
import { stringFlag } from './args.js';
import { num, renderTable } from './format.js';
import { configHash, evaluatorFor, formatParams, gitCommit } from './research.js';

type Io = { stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream };

/** `quantshift optimize` on a sleeves config: each sleeve's grid over the span, on its own symbols. */
export async function optimizeSleeves(flags: ParsedFlags, job: SleevesJob, io: Io) {
  const started = performance.now();
  const objective = resolveObjective(flags, job.config);
  const evaluator = evaluatorFor(flags);
  const sleeves = [];
  try {
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
      const order = rankResults(results, objective);
      sleeves.push({
        id: sleeve.id,
        strategy: sleeve.strategy.name,
        symbols: sleeve.symbols,
        trials: combos.length,
        ranked: order.map((i, rank) => ({
          rank: rank + 1,
          params: combos[i],
          objective: objectiveValue(results[i] as Metrics, objective),
          metrics: results[i] as Metrics,
        })),
      });
    }
  } finally {
    await evaluator.close();
  }
  return {
    command: 'optimize',
    generatedAt: new Date().toISOString(),
    elapsedMs: Math.round(performance.now() - started),
    configHash: configHash(stringFlag(flags, 'config'), job.config),
    gitCommit: gitCommit(),
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

/** The sleeves walk-forward document (`quantshift walk-forward --format json` on a sleeves config). */
export function sleevesWalkForwardDocument(
  result: SleevesWalkForwardResult,
  meta: { engine: string; generatedAt: string; elapsedMs: number; configHash: string; gitCommit: string },
  settings: WalkForwardSettings,
  objective: Objective,
) {
  return {
    ...meta,
    settings,
    objective: objective.metric,
    minimums: objective.minimums,
    sleeves: result.sleeves.map((s) => ({
      id: s.id,
      strategy: s.strategy,
      trials: s.trials,
      windows: s.unit.windows,
      outOfSample: s.unit.outOfSample,
      efficiency: s.unit.efficiency,
      efficiencyNote: s.unit.efficiencyNote,
      stability: s.unit.stability,
      multipleTesting: s.unit.multipleTesting,
      criteria: s.criteria,
      decision: s.decision,
    })),
    account: {
      outOfSample: { metrics: result.account.metrics, equity: result.account.equity },
      weights: result.account.weights,
      reallocations: result.account.reallocations,
      correlationEvents: result.account.correlationEvents,
    },
    criteria: result.criteria,
    decision: result.decision,
  };
}

export type SleevesWalkForwardDocument = ReturnType<typeof sleevesWalkForwardDocument>;

/** Runs the sleeves walk-forward of a job (the command and the research job share it). */
export async function runSleevesWalkForward(
  flags: ParsedFlags,
  job: SleevesJob,
  onProgress?: (done: number, total: number) => void,
): Promise<{ result: SleevesWalkForwardResult; document: SleevesWalkForwardDocument }> {
  const started = performance.now();
  const objective = resolveObjective(flags, job.config);
  const settings = resolveWindows(flags, { config: job.config });
  const evaluator = evaluatorFor(flags);
  let result: SleevesWalkForwardResult;
  try {
    result = await sleevesWalkForward({
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
    });
  } finally {
    await evaluator.close();
  }
  const document = sleevesWalkForwardDocument(
    result,
    {
      engine: 'in-process',
      generatedAt: new Date().toISOString(),
      elapsedMs: Math.round(performance.now() - started),
      configHash: configHash(stringFlag(flags, 'config'), job.config),
      gitCommit: gitCommit(),
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
  const criteria = renderTable(
    ['Criterion (account OOS)', 'Rule', 'Value', 'Result'],
    doc.criteria.map((c) => [c.name, `${c.op} ${c.threshold}`, num(c.value), c.pass ? 'PASS' : 'FAIL']),
  );
  const verdict = doc.decision.proceed
    ? 'Decision: PROCEED to paper trading (every criterion passed out of sample)'
    : `Decision: REFINE (failed: ${doc.decision.failed.join(', ')})`;
  return `${units}\n\nAllocation out of sample: ${doc.account.reallocations.length} reallocations\n\n${criteria}\n\n${verdict}\n`;
}
