import type { SleevesBacktestDocument } from '../core/backtest/sleeves-document.js';
import type { ParsedFlags } from '../research/flags.js';
import { runSleevesJob, type SleevesJob } from '../research/sleeves.js';
import { writeBacktestJson } from './backtest.js';
import { num, renderCriteriaTable, renderDecision, renderTable } from './format.js';
import { sleevesProvenance, type startClock, withProvenance } from './provenance.js';

/** The table: one row per sleeve and one for the account, then the account's criteria and decision. */
function renderSleevesTable(doc: SleevesBacktestDocument): string {
  const last = doc.allocation.weights[doc.allocation.weights.length - 1]?.weights ?? {};
  const row = (
    name: string,
    strategy: string,
    symbols: readonly string[],
    m: SleevesBacktestDocument['metrics'],
    pnl: number,
    costs: number,
    weight: string,
    verdict: string,
  ) => [
    name,
    strategy,
    symbols.join(','),
    String(m.trades),
    num(pnl),
    num(m.returnPct),
    num(m.sharpe),
    num(m.maxDrawdownPct),
    num(m.winRatePct),
    num(costs),
    weight,
    verdict,
  ];
  const accountCosts = doc.sleeves.reduce((a, s) => a + s.costs, 0);
  const rows = [
    ...doc.sleeves.map((s) =>
      row(
        s.id,
        s.strategy,
        s.symbols,
        s.metrics,
        s.netPnl,
        s.costs,
        num((last[s.id] ?? 0) * 100, 1),
        s.decision.proceed ? 'PROCEED' : 'REFINE',
      ),
    ),
    row(
      'ACCOUNT',
      '',
      doc.symbols,
      doc.metrics,
      Math.round((doc.metrics.equityFinal - doc.sleeves.reduce((a, s) => a + s.initialCapital, 0)) * 100) /
        100,
      Math.round(accountCosts * 100) / 100,
      '100.0',
      doc.decision.proceed ? 'PROCEED' : 'REFINE',
    ),
  ];
  const table = renderTable(
    [
      'Sleeve',
      'Strategy',
      'Symbols',
      'Trades',
      'Net P&L [$]',
      'Return [%]',
      'Sharpe',
      'Max DD [%]',
      'Win [%]',
      'Costs [$]',
      'Weight [%]',
      'Decision',
    ],
    rows,
  );
  const criteria = renderCriteriaTable('Criterion (account)', doc.criteria);
  const breaches = doc.correlation.breaches.filter((b) => b.action === 'breach').length;
  const notes = [
    `Period ${doc.from} .. ${doc.to}; allocation ${doc.allocation.method}, ${doc.allocation.events.length} reallocations; ${breaches} correlation breaches`,
  ];
  const verdict = renderDecision(doc.decision, 'every criterion passed');
  return `${table}\n\n${notes.join('\n')}\n\n${criteria}\n\n${verdict}\n`;
}

/** `quantshift backtest --config <sleeves config>`: returns the exit code. */
export function sleevesBacktestCommand(
  flags: ParsedFlags,
  job: SleevesJob,
  format: 'table' | 'json',
  io: { stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream },
  clock: ReturnType<typeof startClock>,
): number {
  io.stderr.write(
    `backtest: ${job.sleeves.map((s) => `${s.id} (${s.strategy.name})`).join(', ')} on ${job.series.map((s) => s.symbol).join(', ')}\n`,
  );
  const doc = withProvenance(sleevesProvenance(clock, flags, job), runSleevesJob(job).doc);
  writeBacktestJson(flags, doc, io);
  io.stdout.write(format === 'json' ? `${JSON.stringify(doc)}\n` : renderSleevesTable(doc));
  return 0;
}
