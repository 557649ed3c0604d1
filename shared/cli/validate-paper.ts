/**
 * `quantshift validate-paper (--stage S | --state-dir DIR) [--sleeve ID] [--from .. --to ..]
 * [--format json] [--report out.html]`: paper trading against its shadow backtest, execution
 * quality, the risk rules, and the go/no-go the live gate needs (docs/validation.md). Exits 0
 * whatever the decision; non-zero only on an error.
 */

import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { loadDataDir } from '../adapters/fs/bars.js';
import { isoDate, liveSleeveIds, parseConfig, strategyParams } from '../core/config/schema.js';
import { UsageError } from '../core/errors.js';
import { newYorkTime } from '../core/live/orders.js';
import type { PaperValidation, ShadowBacktest } from '../core/validation/paper.js';
import { paperGateHash } from '../live/entry-gate.js';
import {
  paperValidationRecord,
  readPaperLedger,
  SLEEVES_SHADOW_CAVEAT,
  seriesPrices,
  shadowBacktest,
  type ValidationStore,
  validatedSleeve,
  validateLedger,
} from '../live/paper-validation.js';
import { escapeHtml } from '../report/html.js';
import { type FlagSpecs, parseFlags, renderHelp, stringFlag } from './args.js';
import { openStore, tableFlags } from './operate.js';
import { openReplayState } from './paper-state.js';
import { provenance, startClock, withProvenance } from './provenance.js';

type Io = { stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream };
type Env = Readonly<Record<string, string | undefined>>;

const flagSpecs: FlagSpecs = {
  stage: {
    type: 'string',
    choices: ['paper', 'live'],
    value: '<stage>',
    help: "a deployed stage's paper trading (its state table: --table or env STATE_TABLE)",
  },
  'state-dir': { type: 'string', value: '<dir>', help: 'the state a local replay kept (replay --state-dir)' },
  sleeve: {
    type: 'string',
    value: '<id>',
    help: "the sleeve to validate (default: the config's only one; a sleeves config: every sleeve)",
  },
  from: { type: 'string', value: '<YYYY-MM-DD>', help: 'first session (default: the first paper session)' },
  to: { type: 'string', value: '<YYYY-MM-DD>', help: 'last session (default: the last paper session)' },
  config: {
    type: 'string',
    value: '<yaml>',
    help: 'the config paper ran (default: the one the replay kept; config/equity-strategy.yaml for --stage)',
  },
  data: {
    type: 'string',
    value: '<dir>',
    help: "daily bars for the opens and the shadow backtest (default the config's)",
  },
  report: { type: 'string', value: '<file.html>', help: 'also write an HTML report' },
  'record-table': {
    type: 'string',
    value: '<name>',
    help: "where the record goes (default: the state read); the live stage's table to open its gate",
  },
  'no-record': { type: 'boolean', help: 'do not store the result as the sleeve’s paper validation record' },
  ...tableFlags,
  format: { type: 'string', choices: ['table', 'json'], help: 'stdout format (default table)' },
  help: { type: 'boolean', help: 'show this help' },
};

/** One sleeve's own validation in a sleeves config's document (`sleeves`). */
export interface SleeveSummary {
  readonly sleeve: string;
  readonly decision: PaperValidation['decision'];
  readonly failed: readonly string[];
  readonly trades: { readonly matched: number; readonly missed: number; readonly extra: number };
  readonly paper: PaperValidation['paper'];
  readonly backtest: PaperValidation['backtest'];
  readonly tracking: PaperValidation['tracking'];
  readonly criteria: PaperValidation['criteria'];
  readonly caveats: readonly string[];
}

const sleeveSummary = (v: PaperValidation): SleeveSummary => ({
  sleeve: v.sleeve,
  decision: v.decision,
  failed: v.failed,
  trades: { matched: v.trades.matched.length, missed: v.trades.missed.length, extra: v.trades.extra.length },
  paper: v.paper,
  backtest: v.backtest,
  tracking: v.tracking,
  criteria: v.criteria,
  caveats: v.caveats,
});

const fixed = (x: number | null | undefined, digits = 2) =>
  x === null || x === undefined ? 'n/a' : x.toFixed(digits);

/** The human summary. */
export function formatValidation(
  v: PaperValidation & { readonly sleeves?: readonly SleeveSummary[] },
): string {
  const t = v.trades;
  return [
    `paper validation of sleeve ${v.sleeve}: ${v.from ?? '-'} .. ${v.to ?? '-'}, ${v.sessions} sessions`,
    `trades: ${t.matched.length} matched, ${t.missed.length} missed, ${t.extra.length} extra (${fixed(t.matchedPct, 1)}% matched)`,
    ...t.missed.map((m) => `  missed ${m.session} ${m.side} ${m.qty} ${m.symbol}: ${m.reason}`),
    ...t.extra.map((m) => `  extra  ${m.session} ${m.side} ${m.qty} ${m.symbol}: ${m.reason}`),
    `slippage vs the open (market-on-open, bps, worse > 0): median ${fixed(v.slippageBps.median)}, p95 ${fixed(v.slippageBps.p95)} over ${v.slippageBps.count} fills`,
    `stop fills vs the stop (bps): median ${fixed(v.stopSlippageBps.median)} over ${v.stopSlippageBps.count} fills`,
    `implementation shortfall vs the decision close: median ${fixed(v.implementationShortfall.bps.median)} bps; $ delay ${fixed(v.implementationShortfall.delay)}, execution ${fixed(v.implementationShortfall.execution)}, fees ${fixed(v.implementationShortfall.fees)}, opportunity ${fixed(v.implementationShortfall.opportunity)}, total ${fixed(v.implementationShortfall.total)}`,
    `execution: fill rate ${fixed(v.execution.fillRatePct, 1)}% of ${v.execution.marketOnOpenOrders} market-on-open orders, ${v.execution.partialFills} partial, ${v.execution.rejected.length} rejected, ${v.execution.unknown.length} unknown, ${v.execution.lostFills.length} lost fills, ${v.execution.reconciliationMismatches} reconciliation mismatches`,
    `tracking: correlation ${fixed(v.tracking.correlation, 3)}, tracking error ${fixed(v.tracking.trackingErrorPct)}%, return gap ${fixed(v.tracking.returnGapPct)} pts (excess execution cost ${fixed(v.tracking.excessCostPct, 3)}%)`,
    `paper:    return ${fixed(v.paper?.returnPct)}%, Sharpe ${fixed(v.paper?.sharpe)}, max drawdown ${fixed(v.paper?.maxDrawdownPct)}%, win rate ${fixed(v.paper?.winRatePct, 1)}%, profit factor ${fixed(v.paper?.profitFactor)}`,
    `backtest: return ${fixed(v.backtest?.returnPct)}%, Sharpe ${fixed(v.backtest?.sharpe)}, max drawdown ${fixed(v.backtest?.maxDrawdownPct)}%, win rate ${fixed(v.backtest?.winRatePct, 1)}%, profit factor ${fixed(v.backtest?.profitFactor)}`,
    `attribution (realized P&L): ${
      Object.entries(v.attribution.bySymbol)
        .map(([s, p]) => `${s} ${fixed(p)}`)
        .join(', ') || 'no closed trade'
    }; by side ${
      Object.entries(v.attribution.bySide)
        .map(([s, p]) => `${s} ${fixed(p)}`)
        .join(', ') || '-'
    }; costs: commission ${fixed(v.attribution.costs.commission)}, slippage ${fixed(v.attribution.costs.slippage)}`,
    `risk rules: ${v.risk.violations.length === 0 ? 'no breach' : v.risk.violations.join('; ')} (${v.risk.breakerTrips} breaker trips)`,
    v.alerts === null
      ? 'alerts: not in this state (see the Slack channel)'
      : `alerts: ${v.alerts.total}, critical ${v.alerts.critical.length}${v.alerts.critical.length > 0 ? `: ${v.alerts.critical.join('; ')}` : ''}`,
    ...(v.sleeves ?? []).map(
      (x) =>
        `sleeve ${x.sleeve}: ${x.decision.toUpperCase()}, Sharpe ${fixed(x.paper?.sharpe)} (backtest ${fixed(x.backtest?.sharpe)}), max drawdown ${fixed(x.paper?.maxDrawdownPct)}%, win rate ${fixed(x.paper?.winRatePct, 1)}%, profit factor ${fixed(x.paper?.profitFactor)}, correlation ${fixed(x.tracking.correlation, 3)}, tracking error ${fixed(x.tracking.trackingErrorPct)}%${x.failed.length > 0 ? ` (failed: ${x.failed.join(', ')})` : ''}`,
    ),
    ...v.caveats.map((c) => `note: ${c}`),
    'criteria:',
    ...v.criteria.map(
      (c) => `  ${c.result === 'pass' ? 'PASS' : 'FAIL'}  ${c.name}: ${fixed(c.value)} (${c.rule})`,
    ),
    `decision: ${v.decision.toUpperCase()}${v.failed.length > 0 ? ` (failed: ${v.failed.join(', ')})` : ''}`,
  ].join('\n');
}

/** A self-contained HTML page of the validation: the criteria, the trades, the execution figures. */
export function validationHtml(v: PaperValidation & { readonly sleeves?: readonly SleeveSummary[] }): string {
  const row = (cells: readonly (string | number | null)[]) =>
    `<tr>${cells.map((c) => `<td>${escapeHtml(c === null ? 'n/a' : String(c))}</td>`).join('')}</tr>`;
  const table = (head: readonly string[], rows: readonly (readonly (string | number | null)[])[]) =>
    `<table><thead><tr>${head.map((h) => `<th>${escapeHtml(h)}</th>`).join('')}</tr></thead><tbody>${rows.map(row).join('')}</tbody></table>`;
  const trades = [
    ...v.trades.matched.map((m) => [
      m.session,
      m.symbol,
      m.side,
      'matched',
      `${m.paperQty} / ${m.backtestQty}`,
      '',
    ]),
    ...v.trades.missed.map((m) => [m.session, m.symbol, m.side, 'missed', m.qty, m.reason]),
    ...v.trades.extra.map((m) => [m.session, m.symbol, m.side, 'extra', m.qty, m.reason]),
  ].sort((a, b) => String(a[0]).localeCompare(String(b[0])));
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Paper validation: ${escapeHtml(v.sleeve)}</title>
<style>body{font-family:system-ui,sans-serif;margin:2rem;max-width:70rem}table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #ccc;padding:.25rem .5rem;text-align:left}.go{color:#0a0}.no-go{color:#c00}</style>
</head><body>
<h1>Paper validation of ${escapeHtml(v.sleeve)}: <span class="${v.decision}">${v.decision.toUpperCase()}</span></h1>
<p>${escapeHtml(`${v.from ?? '-'} .. ${v.to ?? '-'}, ${v.sessions} sessions`)}</p>
<h2>Criteria</h2>
${table(
  ['criterion', 'rule', 'value', 'result'],
  v.criteria.map((c) => [c.name, c.rule, c.value === null ? null : Number(c.value.toFixed(4)), c.result]),
)}
<h2>Summary</h2>
<pre>${escapeHtml(formatValidation(v))}</pre>
<h2>Trades</h2>
${table(['session', 'symbol', 'side', 'outcome', 'qty (paper / backtest)', 'reason'], trades)}
<h2>Slippage by symbol (bps vs the open)</h2>
${table(
  ['symbol', 'fills', 'median', 'p95'],
  Object.entries(v.slippageBps.bySymbol).map(([s, d]) => [
    s,
    d.count,
    d.median === null ? null : Number(d.median.toFixed(3)),
    d.p95 === null ? null : Number(d.p95.toFixed(3)),
  ]),
)}
</body></html>
`;
}

/** `quantshift validate-paper`. */
export async function validatePaperCommand(
  argv: readonly string[],
  io: Io,
  env: Env = process.env,
): Promise<number> {
  const flags = parseFlags('validate-paper', argv, flagSpecs);
  if (flags.help) {
    io.stdout.write(
      renderHelp(
        'quantshift validate-paper (--stage <stage> | --state-dir <dir>) [flags]',
        'Paper trading against its shadow backtest: trades, execution quality, tracking, risk rules, and the go/no-go of the live gate. Exits 0 whatever the decision.',
        flagSpecs,
      ),
    );
    return 0;
  }
  const clock = startClock();
  const stage = stringFlag(flags, 'stage');
  const stateDir = stringFlag(flags, 'state-dir');
  if ((stage === undefined) === (stateDir === undefined))
    throw new UsageError('give either --stage <stage> or --state-dir <dir>');
  for (const name of ['from', 'to'] as const) {
    const value = stringFlag(flags, name);
    if (value !== undefined && !isoDate.safeParse(value).success)
      throw new UsageError(`--${name}: give a date as YYYY-MM-DD`);
  }
  const from = stringFlag(flags, 'from');
  const to = stringFlag(flags, 'to');
  if (from !== undefined && to !== undefined && from > to) throw new UsageError('--from is after --to');
  const format = stringFlag(flags, 'format') ?? 'table';

  const kept = stateDir === undefined ? undefined : await openReplayState(stateDir);
  const opened = kept === undefined ? openStore(flags, env) : undefined;
  try {
    const store = (kept?.store ?? opened?.store) as ValidationStore;
    const configFlag = stringFlag(flags, 'config');
    const configPath = configFlag ?? kept?.meta.configPath ?? 'config/equity-strategy.yaml';
    let configText: string;
    if (configFlag === undefined && kept !== undefined) configText = kept.meta.configText;
    else {
      if (!existsSync(configPath)) throw new UsageError(`--config ${configPath}: no such file`);
      configText = readFileSync(configPath, 'utf8');
    }
    const config = parseConfig(configText, configPath);
    // A sleeves config without --sleeve: every sleeve, its trades matched per sleeve.
    const allSleeves = config.sleeves !== undefined && stringFlag(flags, 'sleeve') === undefined;
    const sleeve = allSleeves ? config.name : validatedSleeve(config, stringFlag(flags, 'sleeve'));
    const covered = allSleeves ? liveSleeveIds(config) : [sleeve];
    const orderIds = new Map((kept?.broker.orders ?? []).map((o) => [o.id, o.clientOrderId]));
    const readLedger = (sleeve: string, sleeves: readonly string[]) =>
      readPaperLedger({
        store,
        config,
        sleeve,
        sleeves,
        ...(from === undefined ? {} : { from }),
        ...(to === undefined ? {} : { to }),
        ...(kept === undefined
          ? {}
          : {
              brokerFills: kept.broker.activities.flatMap((a) =>
                a.kind === 'fill'
                  ? [
                      {
                        id: a.id,
                        symbol: a.symbol,
                        side: a.side,
                        qty: a.qty,
                        time: a.time,
                        date: newYorkTime(a.time).date,
                        clientOrderId: orderIds.get(a.orderId) ?? null,
                      },
                    ]
                  : [],
              ),
              alerts: kept.alerts,
            }),
      });
    const ledger = await readLedger(sleeve, covered);
    const first = ledger.equity[0]?.date;
    const last = ledger.equity.at(-1)?.date;
    const keptData = kept?.meta.options.dataDir;
    const dataDir = stringFlag(flags, 'data') ?? (typeof keptData === 'string' ? keptData : config.data.dir);
    let shadow: ShadowBacktest | null = null;
    let series: ReturnType<typeof loadDataDir> = [];
    const notes: string[] = [];
    if (first !== undefined && last !== undefined) {
      series = loadDataDir(dataDir, config.watchlist, { adjusted: config.data.adjusted });
      shadow = shadowBacktest(
        config,
        series,
        first,
        last,
        ledger.initialEquity,
        covered,
        ledger.startPositions,
        ledger.startState,
      );
      if (shadow === null) notes.push(SLEEVES_SHADOW_CAVEAT);
    }
    const prices = seriesPrices(series);
    const measured = validateLedger(ledger, shadow, config, prices);
    // Every sleeve validated together: each one on its own ledger, curve and figures too.
    const perSleeve =
      allSleeves && first !== undefined
        ? await Promise.all(
            covered.map(async (id) =>
              validateLedger(
                await readLedger(id, [id]),
                shadow === null ? null : { ...shadow, fills: shadow.fills.filter((f) => f.sleeve === id) },
                config,
                prices,
              ),
            ),
          )
        : [];
    const result: PaperValidation & { readonly sleeves?: readonly SleeveSummary[] } = {
      ...measured,
      caveats: [...measured.caveats, ...notes],
      ...(perSleeve.length === 0 ? {} : { sleeves: perSleeve.map(sleeveSummary) }),
    };
    if (flags['no-record'] !== true && first !== undefined) {
      // One record per sleeve, on the sleeve's own hash (`paperGateHash`), the one the live gate
      // checks; every sleeve's own figures when all were validated together.
      const decidedAt = new Date().toISOString();
      const records = allSleeves
        ? perSleeve.map((own) => paperValidationRecord(own, paperGateHash({ config }, own.sleeve), decidedAt))
        : [paperValidationRecord(result, paperGateHash({ config }, sleeve), decidedAt)];
      const recordTable = stringFlag(flags, 'record-table');
      if (recordTable === undefined) {
        for (const record of records) await store.putPaperValidation(record);
        await kept?.save();
      } else {
        const target = openStore({ ...flags, table: recordTable }, env);
        try {
          for (const record of records) await target.store.putPaperValidation(record);
        } finally {
          target.close();
        }
      }
    }
    const report = stringFlag(flags, 'report');
    if (report !== undefined) writeFileSync(report, validationHtml(result));
    if (format === 'json') {
      const meta = provenance(clock, {
        configPath,
        params: config.strategy === undefined ? {} : strategyParams(config),
      });
      io.stdout.write(
        `${JSON.stringify(withProvenance(meta, { command: 'validate-paper', ...(stage === undefined ? {} : { stage }), ...result }))}\n`,
      );
    } else io.stdout.write(`${formatValidation(result)}\n`);
    return 0;
  } finally {
    opened?.close();
    await kept?.close();
  }
}
