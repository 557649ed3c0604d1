import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { loadBarsCsv, loadDataDir } from '../adapters/fs/bars.js';
import { decide, evaluateCriteria } from '../core/backtest/criteria.js';
import { type BacktestDocument, toBacktestDocument } from '../core/backtest/document.js';
import { backtestPortfolio } from '../core/backtest/fast/portfolio.js';
import type { BacktestResult } from '../core/backtest/types.js';
import { parseConfig, type StrategyConfig } from '../core/config/schema.js';
import { ConfigError, QuantShiftError, UsageError } from '../core/errors.js';
import type { BarSeries } from '../core/market/types.js';
import { strategyRegistry } from '../core/strategies/index.js';
import { BENCHMARK_SYMBOL, backtestReportHtml } from '../report/research-artifacts.js';
import { equityCsv, tradeRows, tradesCsv } from '../report/trades.js';
import { type BacktestJob, buildBacktestJob } from '../research/job.js';
import { buildSleevesJob, type SleevesJob } from '../research/sleeves.js';
import { choiceFlag, type FlagSpecs, type ParsedFlags, parseFlags, renderHelp, stringFlag } from './args.js';
import { num, renderCriteriaTable, renderDecision } from './format.js';
import { jobProvenance, startClock, withProvenance } from './provenance.js';
import { sleevesBacktestCommand } from './sleeves.js';

// The job building moved to shared/research/job.ts (the pipeline's functions use it without CLI code).
export { type BacktestJob, buildBacktestJob, parseCommission } from '../research/job.js';

export const backtestFlags: FlagSpecs = {
  config: {
    type: 'string',
    value: '<yaml>',
    help: 'strategy config (watchlist, strategy, sizing, costs, risk, criteria)',
  },
  data: {
    type: 'string',
    value: '<csv|dir>',
    help: "a bar CSV, or a folder of <SYMBOL>.csv files (default: the config's data.dir)",
  },
  symbol: {
    type: 'string',
    value: '<SYM[,SYM...]>',
    help: 'symbols to load from --data (a file: its name by default)',
  },
  adjusted: {
    type: 'boolean',
    help: 'scale open/high/low/close by Adj Close / Close where a file has Adj Close (config data.adjusted)',
    negatable: 'use the raw prices even when the config says adjusted',
  },
  strategy: {
    type: 'string',
    choices: [...strategyRegistry.keys()],
    help: 'strategy, from the registry (default ma-crossover; see quantshift strategies)',
  },
  param: {
    type: 'string',
    multiple: true,
    value: '<key=value>',
    help: "strategy parameter, repeatable, typed by the strategy's schema: fast=10 slow=30 ma=sma|ema atrStop=2",
  },
  direction: {
    type: 'string',
    choices: ['long-only', 'long-short'],
    help: "the run's direction (default long-only): long-only ignores the strategy's short side",
  },
  sizing: {
    type: 'string',
    value: '<mode>',
    help: 'all-in | fixed:<qty> | fraction:<f> | atr-risk:<f> (default all-in ad hoc)',
  },
  'max-position': {
    type: 'string',
    value: '<f>',
    help: 'cap each position at this fraction of equity (config default 0.2; none ad hoc)',
  },
  'cash-buffer': {
    type: 'string',
    value: '<f>',
    help: 'fraction of buying power entries sized at the decision leave unspent (default 0.02)',
  },
  cash: { type: 'string', value: '<dollars>', help: 'starting cash (default 100000)' },
  commission: {
    type: 'string',
    value: '<spec>',
    help: 'e.g. 0.005/share,min=1 | 1/order | 0.1% (parts add up; default 0)',
  },
  'slippage-bps': {
    type: 'string',
    value: '<bps>',
    help: 'adverse slippage on market and stop fills, basis points (default 0)',
  },
  fractional: { type: 'boolean', help: 'allow fractional shares (whole shares by default)' },
  from: {
    type: 'string',
    value: '<YYYY-MM-DD>',
    help: 'first day traded; earlier bars still warm the indicators up',
  },
  to: { type: 'string', value: '<YYYY-MM-DD>', help: 'last day traded (inclusive)' },
  'end-of-data': {
    type: 'string',
    choices: ['hold', 'close'],
    help: 'keep open positions marked at the last close, or close them there',
  },
  'risk-free': {
    type: 'string',
    value: '<rate>',
    help: 'annual risk-free rate for Sharpe/Sortino, e.g. 0.04 (default 0)',
  },
  risk: {
    type: 'boolean',
    help: 'apply the risk rules (on by default with --config; ad hoc uses the default rules)',
    negatable: 'turn them off, to compare',
  },
  format: {
    type: 'string',
    choices: ['table', 'json'],
    help: 'stdout format (default table); json prints exactly one document',
  },
  out: { type: 'string', value: '<dir>', help: 'also write backtest.json into this folder' },
  report: {
    type: 'string',
    value: '<file.html>',
    help: 'write a self-contained HTML report: equity vs benchmarks, drawdown, prices with trades, trade table, monthly returns',
  },
  'trades-csv': { type: 'string', value: '<file.csv>', help: 'write the trade list as CSV' },
  'equity-csv': { type: 'string', value: '<file.csv>', help: 'write the equity curve (and drawdown) as CSV' },
  help: { type: 'boolean', help: 'show this help' },
};

const backtestHelp = renderHelp(
  'quantshift backtest [--config <yaml>] [flags]',
  "Runs an event-driven backtest: decisions at each bar's close, fills at the next bar's open.\nAd hoc flags override the values from --config.",
  backtestFlags,
  [
    'Examples:',
    '  quantshift backtest --config config/equity-strategy.yaml',
    '  quantshift backtest --data data/SPY.csv --param fast=10 --param slow=30 --sizing all-in --format json',
  ],
);

function loadConfigFile(path: string): StrategyConfig {
  if (!existsSync(path)) throw new ConfigError(`${path}: config file not found`);
  return parseConfig(readFileSync(path, 'utf8'), path);
}

/** `--adjusted` / `--no-adjusted`, else the config's `data.adjusted`, else raw prices. */
function adjustedPrices(flags: ParsedFlags, config: StrategyConfig | undefined): boolean {
  return typeof flags.adjusted === 'boolean' ? flags.adjusted : (config?.data.adjusted ?? false);
}

/** Warns where a single file's name and the symbol given for it disagree (SPY.csv as QQQ). */
function warnOnSymbolMismatch(path: string, symbol: string, warn: (line: string) => void): void {
  const fromName = basename(path, extname(path)).toUpperCase();
  if (fromName !== symbol) {
    warn(
      `warning: --data ${path} is loaded as ${symbol} (--symbol), but its file name says ${fromName}: check that the file holds ${symbol}'s bars`,
    );
  }
}

function loadSeries(
  flags: ParsedFlags,
  config: StrategyConfig | undefined,
  warn: (line: string) => void,
): BarSeries[] {
  const dataFlag = stringFlag(flags, 'data');
  const symbolFlag = stringFlag(flags, 'symbol');
  const symbols = symbolFlag
    ?.split(',')
    .map((s) => s.trim().toUpperCase())
    .filter(Boolean);
  const adjusted = adjustedPrices(flags, config);
  if (dataFlag === undefined) {
    if (config === undefined)
      throw new UsageError('backtest: give --config or --data (see quantshift backtest --help)');
    return loadDataDir(config.data.dir, symbols ?? config.watchlist, { adjusted });
  }
  if (!existsSync(dataFlag)) throw new UsageError(`--data ${dataFlag}: no such file or folder`);
  if (statSync(dataFlag).isDirectory()) {
    const list = symbols ?? config?.watchlist;
    if (list === undefined)
      throw new UsageError(`--data ${dataFlag} is a folder: name the symbols with --symbol`);
    return loadDataDir(dataFlag, list, { adjusted });
  }
  if (symbols !== undefined && symbols.length > 1)
    throw new UsageError('--data is one file: give one --symbol');
  const symbol = symbols?.[0];
  if (symbol !== undefined) warnOnSymbolMismatch(dataFlag, symbol, warn);
  return [loadBarsCsv(dataFlag, { ...(symbol ? { symbol } : {}), adjusted })];
}

/**
 * Resolves flags over an optional config into a runnable job, reading the config once: a sleeves job
 * when the config has a `sleeves:` list, else a single-account job. Warnings go to `warn` (stderr).
 */
export function resolveJob(
  flags: ParsedFlags,
  warn: (line: string) => void,
): { sleeves: SleevesJob; single?: undefined } | { sleeves?: undefined; single: BacktestJob } {
  const configPath = stringFlag(flags, 'config');
  const config = configPath === undefined ? undefined : loadConfigFile(configPath);
  const series = loadSeries(flags, config, warn);
  if (config?.sleeves !== undefined) {
    return { sleeves: buildSleevesJob(flags, config, series, configPath) };
  }
  return { single: buildBacktestJob(flags, config, series) };
}

/** Renders the human summary: metrics, criteria with PASS/FAIL, and the decision. */
function renderBacktestTable(result: BacktestResult, doc: ReturnType<typeof toBacktestDocument>): string {
  const m = result.metrics;
  const money = (v: number | null) => num(v, 2);
  const metricRows: [string, string][] = [
    ['Period', `${doc.from} .. ${doc.to}`],
    ['Symbols', result.symbols.join(', ')],
    ['Annualisation [periods/year]', String(doc.periodsPerYear)],
    ['Trades (closed)', String(m.trades)],
    ['Return [%]', num(m.returnPct)],
    ['CAGR [%]', num(m.cagrPct)],
    ['Volatility (ann.) [%]', num(m.volatilityPct)],
    ['Equity final [$]', money(m.equityFinal)],
    ['Equity peak [$]', money(m.equityPeak)],
    ['Max drawdown [%]', num(m.maxDrawdownPct)],
    ['Max drawdown duration [days]', String(m.maxDrawdownDays)],
    ['Sharpe', num(m.sharpe)],
    ['Sortino', num(m.sortino)],
    ['Calmar', num(m.calmar)],
    ['Win rate [%]', num(m.winRatePct)],
    ['Profit factor', num(m.profitFactor)],
    ['Average win [$]', money(m.avgWin)],
    ['Average loss [$]', money(m.avgLoss)],
    ['Expectancy [$/trade]', money(m.expectancy)],
    ['Exposure [%]', num(m.exposurePct)],
    ['Buy & hold return [%]', num(m.buyHoldReturnPct)],
    ['Kelly fraction', num(m.kelly, 3)],
    [
      'Orders placed / filled / rejected',
      `${doc.orders.placed} / ${doc.orders.filled} / ${doc.orders.rejected}`,
    ],
    ['Entries skipped or reduced', String(result.skippedEntries.length)],
  ];
  const risk = doc.risk;
  if (risk !== undefined) {
    const trips = risk.breakerTrips.map((t) => `${t.time} ${t.breaker}`).join(', ');
    metricRows.push(
      ['Risk: peak heat [%]', num(risk.peakHeatPct)],
      [
        'Risk: breaker trips',
        risk.breakerTrips.length === 0 ? '0' : `${risk.breakerTrips.length} (${trips})`,
      ],
      ['Risk: entries refused', String(risk.refusedEntries.length)],
      ['Risk: entries reduced', String(risk.reducedEntries.length)],
      ['Risk: stop moves', String(risk.stopMoves)],
    );
  } else {
    metricRows.push(['Risk rules', 'off']);
  }
  const width = Math.max(...metricRows.map(([k]) => k.length));
  const metrics = metricRows.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n');
  const criteria = renderCriteriaTable('Criterion', doc.criteria);
  const verdict = renderDecision(doc.decision, 'every criterion passed');
  return `${metrics}\n\n${criteria}\n\n${verdict}\n`;
}

/** The backtest document as the CLI writes it: the provenance first (docs/research.md), then the result. */
export function backtestJsonDocument(
  clock: { readonly startedMs: number },
  flags: ParsedFlags,
  job: BacktestJob,
  doc: BacktestDocument,
) {
  return withProvenance(jobProvenance(clock, flags, job), { command: 'backtest', ...doc });
}

/** `--out <dir>`: writes the backtest document (single-account or sleeves) to `<dir>/backtest.json`. */
export function writeBacktestJson(
  flags: ParsedFlags,
  document: object,
  io: { stderr: NodeJS.WritableStream },
): void {
  const out = stringFlag(flags, 'out');
  if (out !== undefined) {
    mkdirSync(out, { recursive: true });
    const path = join(out, 'backtest.json');
    writeFileSync(path, `${JSON.stringify(document, null, 2)}\n`);
    io.stderr.write(`backtest: wrote ${resolve(path)}\n`);
  }
}

/** `quantshift backtest`: returns the process exit code. */
export async function backtestCommand(
  argv: readonly string[],
  io: { stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream },
): Promise<number> {
  const flags = parseFlags('backtest', argv, backtestFlags);
  if (flags.help) {
    io.stdout.write(backtestHelp);
    return 0;
  }
  const clock = startClock();
  const format = choiceFlag(flags, 'format', ['table', 'json'] as const) ?? 'table';
  const warn = (line: string) => io.stderr.write(`${line}\n`);
  const resolved = resolveJob(flags, warn);
  if (resolved.sleeves !== undefined)
    return sleevesBacktestCommand(flags, resolved.sleeves, format, io, clock);
  const job = resolved.single;
  const bars = job.series.reduce((n, s) => n + s.time.length, 0);
  io.stderr.write(
    `backtest: ${job.strategy.name} on ${job.series.map((s) => s.symbol).join(', ')} (${bars} bars)\n`,
  );
  let result: BacktestResult;
  try {
    // The fast engine's portfolio mode: runBacktest's report, exactly; the reference engine runs
    // what it does not model (docs/engine.md).
    result = backtestPortfolio({
      series: job.series,
      strategy: job.strategy,
      params: job.params,
      options: job.options,
    });
  } catch (error) {
    if (error instanceof QuantShiftError) throw error;
    throw new QuantShiftError(`backtest failed: ${(error as Error).message}`, { cause: error });
  }
  const criteria = evaluateCriteria(result.metrics, job.criteria);
  const doc = toBacktestDocument(result, criteria, decide(criteria));
  const document = backtestJsonDocument(clock, flags, job, doc);
  writeBacktestJson(flags, document, io);
  await writeBacktestArtifacts(flags, job, result, document, io);
  io.stdout.write(format === 'json' ? `${JSON.stringify(document)}\n` : renderBacktestTable(result, doc));
  return 0;
}

/** Writes a file, creating its folder, and says so on stderr. */
function writeArtifact(path: string, text: string, io: { stderr: NodeJS.WritableStream }): void {
  mkdirSync(dirname(resolve(path)), { recursive: true });
  writeFileSync(path, text);
  io.stderr.write(`backtest: wrote ${resolve(path)}\n`);
}

/** SPY's bars for the report's benchmark: from the run when it trades SPY, else from the data folder. */
function benchmarkSeries(flags: ParsedFlags, job: BacktestJob): BarSeries | undefined {
  const traded = job.series.find((s) => s.symbol === BENCHMARK_SYMBOL);
  if (traded !== undefined) return traded;
  const dataFlag = stringFlag(flags, 'data');
  const dir =
    dataFlag === undefined
      ? job.config?.data.dir
      : statSync(dataFlag).isDirectory()
        ? dataFlag
        : dirname(dataFlag);
  const path = dir === undefined ? undefined : join(dir, `${BENCHMARK_SYMBOL}.csv`);
  if (path === undefined || !existsSync(path)) return undefined;
  return loadBarsCsv(path, { symbol: BENCHMARK_SYMBOL, adjusted: adjustedPrices(flags, job.config) });
}

/** `--report`, `--trades-csv` and `--equity-csv`. */
async function writeBacktestArtifacts(
  flags: ParsedFlags,
  job: BacktestJob,
  result: BacktestResult,
  document: ReturnType<typeof backtestJsonDocument>,
  io: { stderr: NodeJS.WritableStream },
): Promise<void> {
  const tradesPath = stringFlag(flags, 'trades-csv');
  if (tradesPath !== undefined) writeArtifact(tradesPath, tradesCsv(tradeRows(document)), io);
  const equityPath = stringFlag(flags, 'equity-csv');
  if (equityPath !== undefined) writeArtifact(equityPath, equityCsv(document), io);
  const reportPath = stringFlag(flags, 'report');
  if (reportPath !== undefined) {
    const provenance = {
      generatedAt: document.generatedAt,
      configHash: document.configHash ?? '',
      gitCommit: document.gitCommit,
    };
    const html = await backtestReportHtml(job, result, provenance, benchmarkSeries(flags, job));
    writeArtifact(reportPath, html, io);
  }
}
