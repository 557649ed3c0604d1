/**
 * The research report: one self-contained HTML file (inline CSS, inline SVG charts rendered in
 * Node with Vega-Lite and Vega, nothing loaded from the network; one inline script, allowed by its
 * hash, sorts the trade table), built from a
 * {@link ResearchReportInput}. Rendering is deterministic: the same input gives the same bytes.
 */
import { createHash } from 'node:crypto';
import type { TopLevelSpec } from 'vega-lite';
import {
  CHART_WIDTH,
  COLORS,
  correlationHeatmapChart,
  drawdownChart,
  equityChart,
  type MonthCell,
  monthlyReturnsChart,
  multiSeriesChart,
  parameterSurfaceChart,
  priceChart,
  type TimePoint,
  type TradeMarker,
  timeSeriesChart,
  type WindowLabel,
  type WindowSpan,
  walkForwardChart,
} from './charts.js';
import { InvalidReportInputError } from './errors.js';
import { metricLabel } from './labels.js';
import { type ChartCache, renderSvg } from './svg.js';
import { type TradeRow, tradesCsv } from './trades.js';

export { InvalidReportInputError } from './errors.js';

/** A closed (or still open: exit fields null) trade on one symbol's price chart. */
export interface ReportTrade {
  direction: 'long' | 'short';
  entryTime: string;
  entryPrice: number;
  exitTime: string | null;
  exitPrice: number | null;
  pnl: number;
  /** Shares (absent in reports built before these columns). */
  qty?: number;
  /** P&L over the entry notional, in percent. */
  returnPct?: number;
  /** Calendar days from entry to exit (to the last bar for an open trade). */
  daysHeld?: number;
  /** What closed it: exit (signal), stop-loss, take-profit, trailing-stop, end-of-data; null while open. */
  exitReason?: string | null;
}

/** One walk-forward window: the spans it optimized on and traded, what it chose, how it did. */
export interface ReportWalkForwardWindow {
  symbol: string;
  inSample: { from: string; to: string };
  outOfSample: { from: string; to: string };
  params: Record<string, number | string>;
  outOfSampleReturnPct: number | null;
}

/**
 * Everything the research report shows. Times are ISO dates (`YYYY-MM-DD`) or date-times; a
 * date-time without a zone is read as UTC. Arrays that share a time axis have its length.
 */
export interface ResearchReportInput {
  title: string;
  /** ISO time of the run, passed in (the renderer reads no clock). */
  generatedAt: string;
  /** sha256 of the config file. */
  configHash: string;
  /** Commit of the code that produced the results. */
  gitCommit: string;
  decision: { proceed: boolean; failed: string[] };
  criteria: {
    name: string;
    op: '>' | '<' | '>=' | '<=';
    threshold: number;
    value: number | null;
    pass: boolean;
  }[];
  /** Key figures, already formatted. */
  summary: { label: string; value: string }[];
  /** Portfolio value in dollars, daily, for the strategy and for buy-and-hold. */
  equity: {
    time: string[];
    strategy: number[];
    buyHold: number[];
    /** What `buyHold` is, e.g. "Equal-weight basket (SPY, QQQ) buy & hold". */
    buyHoldName?: string;
    /** A second benchmark (SPY buy & hold), aligned with `time`. */
    spy?: { name: string; values: number[] } | null;
  };
  /** The strategy's daily returns regressed on the SPY benchmark's; null without one. */
  benchmark?: { against: string; alphaPct: number | null; beta: number | null } | null;
  /** Reduced, refused and skipped entries by kind, with what each kind means. */
  entryAdjustments?: {
    kind: string;
    effect: 'reduced' | 'refused' | 'skipped';
    count: number;
    explanation: string;
    example: string;
  }[];
  /** Drawdown from the running peak in percent (positive), aligned with `equity.time`. */
  drawdownPct: number[];
  symbols: {
    symbol: string;
    time: string[];
    close: number[];
    trades: ReportTrade[];
    /** Indicator and stop lines drawn over the price, aligned with `time`. */
    overlays?: { name: string; values: (number | null)[] }[];
  }[];
  /** Calendar-month returns in percent; `month` is 1..12. */
  monthlyReturns: { year: number; month: number; returnPct: number }[];
  /** Null when no walk-forward analysis ran. */
  walkForward: {
    windows: ReportWalkForwardWindow[];
    efficiency: number | null;
    efficiencyNote: string | null;
    oosEquity: { time: string[]; equity: number[] } | null;
  } | null;
  /** Null when no parameter sweep ran; a cell's null value is drawn blank. */
  parameterSurface: {
    objective: string;
    xName: string;
    yName: string;
    cells: { x: number; y: number; value: number | null }[];
  } | null;
  perSymbol: { symbol: string; metrics: Record<string, number | null> }[];
  /** Null when the risk rules were off. */
  risk: {
    peakHeatPct: number;
    breakerTrips: { time: string; breaker: string; reason: string }[];
    refusedEntries: number;
    reducedEntries: number;
    heat: { time: string[]; heatPct: number[] };
  } | null;
  /** Present for a sleeves account: each sleeve's curves, the weights, the correlation and the attribution. */
  sleeves?: SleevesReportInput | null;
}

/** The sleeves part of the research report. Curves share `time`. */
export interface SleevesReportInput {
  time: string[];
  /** Each sleeve's equity (its capital, dollars) and drawdown from its NAV's running peak (percent). */
  sleeves: { id: string; equity: number[]; drawdownPct: number[] }[];
  /** Target weights after each close, 0..1, per sleeve. */
  weights: { id: string; weight: number[] }[];
  correlation: { ids: string[]; matrix: (number | null)[][]; breaches: number };
  attribution: {
    id: string;
    strategy: string;
    pnl: number;
    /** The sleeve's P&L as a share of the account's initial capital, percent. */
    contributionPct: number;
    trades: number;
    winRatePct: number | null;
    costs: number;
  }[];
}

/**
 * Renders the whole research report as one HTML document.
 *
 * @throws InvalidReportInputError when a time is not an ISO date, series lengths disagree, or a
 *   monthly return or walk-forward window is malformed.
 * @throws ChartRenderError when Vega-Lite or Vega fails on a chart.
 */
export async function renderResearchReport(
  input: ResearchReportInput,
  options: { readonly cache?: ChartCache } = {},
): Promise<string> {
  const charts = new ChartSequence(options.cache);
  const sections = [
    renderHeader(input),
    renderSummary(input),
    await renderEquity(input, charts),
    await renderDrawdown(input, charts),
    await renderSymbols(input, charts),
    renderTrades(input),
    await renderMonthlyReturns(input, charts),
    await renderWalkForward(input, charts),
    await renderParameterSurface(input, charts),
    renderPerSymbol(input),
    await renderRisk(input, charts),
    ...(input.sleeves ? [await renderSleeves(input.sleeves, charts)] : []),
  ];
  return [
    '<!DOCTYPE html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src '${SORT_SCRIPT_HASH}'">`,
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${escapeHtml(input.title)}</title>`,
    `<style>${STYLE}</style>`,
    '</head>',
    '<body>',
    '<main>',
    ...sections,
    '</main>',
    `<script>${SORT_SCRIPT}</script>`,
    '</body>',
    '</html>',
    '',
  ].join('\n');
}

/**
 * The report's only script: sorts a `table.sortable` by the clicked column (numbers by their
 * `data-sort` value). Inline, allowed by the Content-Security-Policy through its hash.
 */
const SORT_SCRIPT = [
  "document.querySelectorAll('table.sortable').forEach(function (t) {",
  "  t.querySelectorAll('th').forEach(function (th, i) {",
  "    th.addEventListener('click', function () {",
  "      var asc = th.getAttribute('aria-sort') !== 'ascending';",
  "      t.querySelectorAll('th').forEach(function (h) { h.removeAttribute('aria-sort'); });",
  "      th.setAttribute('aria-sort', asc ? 'ascending' : 'descending');",
  '      var body = t.tBodies[0];',
  '      var key = function (r) { var c = r.cells[i]; var v = c.getAttribute("data-sort");',
  '        return v === null ? c.textContent : v === "" ? -Infinity : Number(v); };',
  '      Array.prototype.slice.call(body.rows).sort(function (x, y) {',
  '        var a = key(x), b = key(y);',
  "        var d = typeof a === 'number' ? (a === b ? 0 : a < b ? -1 : 1) : String(a).localeCompare(String(b));",
  '        return asc ? d : -d;',
  '      }).forEach(function (r) { body.appendChild(r); });',
  '    });',
  '  });',
  '});',
].join('\n');

const SORT_SCRIPT_HASH = `sha256-${createHash('sha256').update(SORT_SCRIPT).digest('base64')}`;

/** Escapes text for HTML element content and quoted attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => HTML_ENTITIES[c] as string);
}

const HTML_ENTITIES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/** Numbers charts in document order, which namespaces each SVG's ids. */
class ChartSequence {
  private count = 0;

  constructor(private readonly cache?: ChartCache) {}

  async render(name: string, spec: TopLevelSpec): Promise<string> {
    this.count++;
    const svg = await renderSvg(name, spec, `qs-chart${this.count}`, this.cache);
    return `<figure class="chart" data-chart="${escapeHtml(name)}">${svg}</figure>`;
  }
}

const NOT_RUN = (what: string) => `<p class="not-run">${escapeHtml(what)}: not run.</p>`;

function section(id: string, title: string, body: string): string {
  return `<section id="${id}">\n<h2>${escapeHtml(title)}</h2>\n${body}\n</section>`;
}

function renderHeader(input: ResearchReportInput): string {
  const meta: [string, string][] = [
    ['Generated at', input.generatedAt],
    ['Config hash (sha256)', input.configHash],
    ['Git commit', input.gitCommit],
  ];
  const items = meta
    .map(
      ([label, value]) =>
        `<div><dt>${escapeHtml(label)}</dt><dd><code>${escapeHtml(value)}</code></dd></div>`,
    )
    .join('');
  const nav = [
    ['summary', 'Summary'],
    ['equity', 'Equity'],
    ['drawdown', 'Drawdown'],
    ['symbols', 'Prices'],
    ['trades', 'Trades'],
    ['monthly-returns', 'Monthly returns'],
    ['walk-forward', 'Walk-forward'],
    ['parameter-surface', 'Parameters'],
    ['per-symbol', 'Per symbol'],
    ['risk', 'Risk'],
    ...(input.sleeves ? [['sleeves', 'Sleeves']] : []),
  ]
    .map(([id, label]) => `<a href="#${id}">${label}</a>`)
    .join('');
  return `<header id="header">\n<h1>${escapeHtml(input.title)}</h1>\n<dl class="meta">${items}</dl>\n<nav>${nav}</nav>\n</header>`;
}

function renderSummary(input: ResearchReportInput): string {
  const figures =
    input.summary.length === 0
      ? ''
      : `<dl class="figures">${input.summary
          .map((f) => `<div><dt>${escapeHtml(f.label)}</dt><dd>${escapeHtml(f.value)}</dd></div>`)
          .join('')}</dl>`;
  const rows = input.criteria.map((c) => [
    escapeHtml(metricLabel(c.name)),
    `${escapeHtml(c.op)} ${formatNumber(c.threshold, 4, true)}`,
    formatNumber(c.value),
    c.pass ? '<span class="badge pass">PASS</span>' : '<span class="badge fail">FAIL</span>',
  ]);
  const criteria =
    rows.length === 0
      ? '<p class="empty">No success criteria.</p>'
      : table(['Criterion', 'Rule', 'Value', 'Result'], rows, [false, false, true, false]);
  const decision = input.decision.proceed
    ? '<p class="decision proceed">Decision: <strong>Proceed to paper trading</strong> (every criterion passed)</p>'
    : `<p class="decision refine">Decision: <strong>Refine</strong>${
        input.decision.failed.length === 0
          ? ''
          : ` (failed: ${input.decision.failed.map((f) => escapeHtml(f)).join(', ')})`
      }</p>`;
  return section('summary', 'Summary', `${figures}\n${decision}\n${criteria}`);
}

async function renderEquity(input: ResearchReportInput, charts: ChartSequence): Promise<string> {
  const { time, strategy, buyHold } = input.equity;
  requireLength('equity.strategy', strategy, time.length);
  requireLength('equity.buyHold', buyHold, time.length);
  if (time.length === 0) return section('equity', 'Equity', '<p class="empty">No equity curve.</p>');
  const t = parseTimes('equity.time', time);
  const spy = input.equity.spy ?? null;
  if (spy !== null) requireLength('equity.spy.values', spy.values, time.length);
  const buyHoldName = input.equity.buyHoldName ?? 'Buy & hold';
  const chart = await charts.render(
    'equity',
    equityChart(points(t, strategy), points(t, buyHold), {
      buyHold: buyHoldName,
      ...(spy === null ? {} : { extra: { name: spy.name, points: points(t, spy.values) } }),
    }),
  );
  const b = input.benchmark ?? null;
  const stats =
    b === null
      ? ''
      : `<p class="caption">Against ${escapeHtml(b.against)}: alpha ${formatPercent(b.alphaPct)} a year, beta ${formatNumber(b.beta)} (daily returns, least squares; alpha annualized over 252 sessions).</p>`;
  return section(
    'equity',
    `Equity: strategy against ${spy === null ? 'buy-and-hold' : 'the benchmarks'}`,
    `${chart}\n${stats}`,
  );
}

async function renderDrawdown(input: ResearchReportInput, charts: ChartSequence): Promise<string> {
  const { time } = input.equity;
  requireLength('drawdownPct', input.drawdownPct, time.length);
  if (time.length === 0) return section('drawdown', 'Drawdown', '<p class="empty">No equity curve.</p>');
  const t = parseTimes('equity.time', time);
  const chart = await charts.render('drawdown', drawdownChart(points(t, input.drawdownPct)));
  return section('drawdown', 'Drawdown', chart);
}

async function renderSymbols(input: ResearchReportInput, charts: ChartSequence): Promise<string> {
  if (input.symbols.length === 0) {
    return section('symbols', 'Prices and trades', '<p class="empty">No symbols.</p>');
  }
  const parts: string[] = [];
  for (const [i, s] of input.symbols.entries()) {
    const field = `symbols[${i}]`;
    requireLength(`${field}.close`, s.close, s.time.length);
    const t = parseTimes(`${field}.time`, s.time);
    const markers: TradeMarker[] = [];
    for (const [k, trade] of s.trades.entries()) {
      markers.push({
        t: parseTime(`${field}.trades[${k}].entryTime`, trade.entryTime),
        price: trade.entryPrice,
        marker: trade.direction === 'long' ? 'long entry' : 'short entry',
      });
      if (trade.exitTime !== null && trade.exitPrice !== null) {
        markers.push({
          t: parseTime(`${field}.trades[${k}].exitTime`, trade.exitTime),
          price: trade.exitPrice,
          marker: trade.direction === 'long' ? 'long exit' : 'short exit',
        });
      }
    }
    const overlays = (s.overlays ?? []).map((o, k) => {
      requireLength(`${field}.overlays[${k}].values`, o.values, s.time.length);
      return { name: o.name, points: t.map((time, j) => ({ t: time, value: o.values[j] ?? null })) };
    });
    const chart =
      s.time.length === 0
        ? '<p class="empty">No bars.</p>'
        : await charts.render(`price-${s.symbol}`, priceChart(points(t, s.close), markers, overlays));
    parts.push(
      `<article class="symbol">\n<h3>${escapeHtml(s.symbol)}</h3>\n<p class="caption">${tradeSummary(s.trades)}</p>\n${chart}\n${tradeTable(s.trades)}\n</article>`,
    );
  }
  return section('symbols', 'Prices and trades', parts.join('\n'));
}

function tradeSummary(trades: readonly ReportTrade[]): string {
  const longs = trades.filter((t) => t.direction === 'long').length;
  const open = trades.filter((t) => t.exitTime === null).length;
  const pnl = trades.reduce((sum, t) => sum + t.pnl, 0);
  const counts = `${trades.length} trade${trades.length === 1 ? '' : 's'} (${longs} long, ${trades.length - longs} short${open > 0 ? `, ${open} open` : ''})`;
  return `${counts}, net P&amp;L ${formatMoney(pnl)}. Filled triangles mark entries, hollow circles exits; green long, red short.`;
}

function tradeTable(trades: readonly ReportTrade[]): string {
  if (trades.length === 0) return '';
  const rows = trades.map((t) => [
    escapeHtml(t.direction),
    escapeHtml(t.entryTime),
    formatPrice(t.entryPrice),
    t.exitTime === null ? 'open' : escapeHtml(t.exitTime),
    formatPrice(t.exitPrice),
    signedClass(t.pnl, formatMoney(t.pnl)),
  ]);
  const body = table(['Side', 'Entry', 'Entry price', 'Exit', 'Exit price', 'P&amp;L'], rows, [
    false,
    false,
    true,
    false,
    true,
    true,
  ]);
  return `<details><summary>Trades (${trades.length})</summary>\n${body}\n</details>`;
}

/** Every trade of every symbol in one sortable table, with a CSV download of the same rows. */
function renderTrades(input: ResearchReportInput): string {
  const rows = input.symbols.flatMap((s) => s.trades.map((t) => ({ symbol: s.symbol, ...t })));
  if (rows.length === 0) return section('trades', 'Trades', '<p class="empty">No trades.</p>');
  const csvRows: TradeRow[] = rows.map((t) => ({
    symbol: t.symbol,
    direction: t.direction,
    qty: t.qty ?? Number.NaN,
    entryTime: t.entryTime,
    entryPrice: t.entryPrice,
    exitTime: t.exitTime,
    exitPrice: t.exitPrice,
    pnl: t.pnl,
    returnPct: t.returnPct ?? Number.NaN,
    daysHeld: t.daysHeld ?? Number.NaN,
    exitReason: t.exitReason ?? null,
    commission: Number.NaN,
  }));
  const csv = tradesCsv(csvRows).replace(/,NaN/g, ',');
  const cell = (html: string, sort?: number | string | null) =>
    sort === undefined
      ? `<td>${html}</td>`
      : `<td class="num" data-sort="${sort === null || (typeof sort === 'number' && !Number.isFinite(sort)) ? '' : escapeHtml(String(sort))}">${html}</td>`;
  const body = rows
    .map(
      (t) =>
        `<tr>${[
          cell(escapeHtml(t.symbol)),
          cell(escapeHtml(t.direction)),
          cell(formatNumber(t.qty ?? null, 6, true), t.qty ?? null),
          cell(escapeHtml(t.entryTime)),
          cell(formatPrice(t.entryPrice), t.entryPrice),
          cell(t.exitTime === null ? 'open' : escapeHtml(t.exitTime)),
          cell(formatPrice(t.exitPrice), t.exitPrice),
          cell(signedClass(t.pnl, formatMoney(t.pnl)), t.pnl),
          cell(signedClass(t.returnPct ?? null, formatPercent(t.returnPct ?? null)), t.returnPct ?? null),
          cell(formatNumber(t.daysHeld ?? null), t.daysHeld ?? null),
          cell(escapeHtml(t.exitReason ?? (t.exitTime === null ? 'open' : '—'))),
        ].join('')}</tr>`,
    )
    .join('\n');
  const headers = [
    ['Symbol', false],
    ['Side', false],
    ['Qty [shares]', true],
    ['Entry', false],
    ['Entry price [$]', true],
    ['Exit', false],
    ['Exit price [$]', true],
    ['P&amp;L [$]', true],
    ['Return [%]', true],
    ['Days held', true],
    ['Exit reason', false],
  ] as const;
  const head = headers
    .map(([h, num]) => `<th${num ? ' class="num"' : ''} title="Click to sort">${h}</th>`)
    .join('');
  const download = `<p><a class="download" download="trades.csv" href="data:text/csv;charset=utf-8,${encodeURIComponent(csv)}">Download the trades as CSV</a> · click a column to sort; P&amp;L is net of commissions, return is P&amp;L over the entry notional.</p>`;
  return section(
    'trades',
    `Trades (${rows.length})`,
    `${download}\n<div class="scroll"><table class="sortable" id="trade-table">\n<thead><tr>${head}</tr></thead>\n<tbody>\n${body}\n</tbody>\n</table></div>`,
  );
}

/** Monthly returns as a table: a row per year, a column per month and the year's compounded return. */
function monthlyTable(cells: readonly MonthCell[]): string {
  const years = [...new Set(cells.map((c) => c.year))].sort((a, b) => a - b);
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  const rows = years.map((year) => {
    const ofYear = cells.filter((c) => c.year === year);
    const yearly = (ofYear.reduce((g, c) => g * (1 + c.returnPct / 100), 1) - 1) * 100;
    return [
      String(year),
      ...months.map((_, m) => {
        const cell = ofYear.find((c) => c.month === m + 1);
        return cell === undefined ? '' : signedClass(cell.returnPct, formatNumber(cell.returnPct, 1));
      }),
      `<strong>${signedClass(yearly, formatNumber(yearly, 1))}</strong>`,
    ];
  });
  return `<div class="scroll compact">${table(['Year', ...months, 'Year'], rows, [false, ...months.map(() => true), true])}</div>`;
}

async function renderMonthlyReturns(input: ResearchReportInput, charts: ChartSequence): Promise<string> {
  const cells: MonthCell[] = input.monthlyReturns.map((m, i) => {
    const field = `monthlyReturns[${i}]`;
    if (!Number.isInteger(m.year))
      throw new InvalidReportInputError(`${field}.year`, `not a year: ${m.year}`);
    if (!(Number.isInteger(m.month) && m.month >= 1 && m.month <= 12)) {
      throw new InvalidReportInputError(`${field}.month`, `must be 1..12, got ${m.month}`);
    }
    if (!Number.isFinite(m.returnPct)) {
      throw new InvalidReportInputError(`${field}.returnPct`, `must be finite, got ${m.returnPct}`);
    }
    return { year: m.year, month: m.month, returnPct: m.returnPct };
  });
  const body =
    cells.length === 0
      ? '<p class="empty">No monthly returns.</p>'
      : `${await charts.render('monthly-returns', monthlyReturnsChart(cells))}\n<p class="caption">Strategy return per calendar month, in percent; the table adds each year's compounded return.</p>\n${monthlyTable(cells)}`;
  return section('monthly-returns', 'Monthly returns (%)', body);
}

async function renderWalkForward(input: ResearchReportInput, charts: ChartSequence): Promise<string> {
  const wf = input.walkForward;
  if (wf === null) return section('walk-forward', 'Walk-forward analysis', NOT_RUN('Walk-forward analysis'));
  const efficiency = `<p><strong>Walk-forward efficiency:</strong> ${formatNumber(wf.efficiency)}${
    wf.efficiencyNote === null ? '' : ` <span class="note">${escapeHtml(wf.efficiencyNote)}</span>`
  }</p>`;
  const spans: WindowSpan[] = [];
  const labels: WindowLabel[] = [];
  const perSymbol = new Map<string, number>();
  const rows = wf.windows.map((w, i) => {
    const field = `walkForward.windows[${i}]`;
    const number = (perSymbol.get(w.symbol) ?? 0) + 1;
    perSymbol.set(w.symbol, number);
    const row = `${w.symbol} #${number}`;
    const inFrom = parseTime(`${field}.inSample.from`, w.inSample.from);
    const inTo = parseTime(`${field}.inSample.to`, w.inSample.to);
    const outFrom = parseTime(`${field}.outOfSample.from`, w.outOfSample.from);
    const outTo = parseTime(`${field}.outOfSample.to`, w.outOfSample.to);
    if (inTo < inFrom || outTo < outFrom) {
      throw new InvalidReportInputError(field, 'a span ends before it starts');
    }
    const params = formatParams(w.params);
    const text = `${params} → OOS ${formatPercent(w.outOfSampleReturnPct)}`;
    const span = (phase: WindowSpan['phase'], from: string, to: string) =>
      `${row} ${phase.toLowerCase()} ${from} to ${to}`;
    spans.push({
      row,
      phase: 'In-sample',
      from: inFrom,
      to: inTo,
      description: span('In-sample', w.inSample.from, w.inSample.to),
    });
    spans.push({
      row,
      phase: 'Out-of-sample',
      from: outFrom,
      to: outTo,
      description: span('Out-of-sample', w.outOfSample.from, w.outOfSample.to),
    });
    labels.push({ row, from: inFrom, text, description: `${row}: ${text}` });
    return [
      escapeHtml(w.symbol),
      String(number),
      `${escapeHtml(w.inSample.from)} – ${escapeHtml(w.inSample.to)}`,
      `${escapeHtml(w.outOfSample.from)} – ${escapeHtml(w.outOfSample.to)}`,
      `<code>${escapeHtml(params)}</code>`,
      signedClass(w.outOfSampleReturnPct, formatPercent(w.outOfSampleReturnPct)),
    ];
  });
  const windows =
    rows.length === 0
      ? '<p class="empty">No windows.</p>'
      : [
          await charts.render('walk-forward-windows', walkForwardChart(spans, labels)),
          '<p class="caption">Each row is one window: the in-sample span the parameters were chosen on, then the out-of-sample span they traded. Labels: chosen parameters and out-of-sample return.</p>',
          table(['Symbol', 'Window', 'In-sample', 'Out-of-sample', 'Parameters', 'OOS return'], rows, [
            false,
            true,
            false,
            false,
            false,
            true,
          ]),
        ].join('\n');
  let stitched: string;
  if (wf.oosEquity === null) {
    stitched = '<p class="not-run">Stitched out-of-sample equity: not available.</p>';
  } else {
    requireLength('walkForward.oosEquity.equity', wf.oosEquity.equity, wf.oosEquity.time.length);
    const t = parseTimes('walkForward.oosEquity.time', wf.oosEquity.time);
    stitched =
      t.length === 0
        ? '<p class="empty">Stitched out-of-sample equity: no points.</p>'
        : await charts.render(
            'walk-forward-equity',
            timeSeriesChart({
              points: points(t, wf.oosEquity.equity),
              yTitle: 'Out-of-sample equity ($)',
              yFormat: '$,.0f',
              color: COLORS.strategy,
              kind: 'line',
              height: 220,
              zero: false,
            }),
          );
  }
  return section(
    'walk-forward',
    'Walk-forward analysis',
    `${efficiency}\n${windows}\n<h3>Stitched out-of-sample equity</h3>\n${stitched}`,
  );
}

async function renderParameterSurface(input: ResearchReportInput, charts: ChartSequence): Promise<string> {
  const surface = input.parameterSurface;
  const title = 'Parameter surface';
  if (surface === null) return section('parameter-surface', title, NOT_RUN('Parameter sweep'));
  if (surface.cells.length === 0) {
    return section('parameter-surface', title, '<p class="empty">No parameter cells.</p>');
  }
  for (const [i, c] of surface.cells.entries()) {
    if (!(Number.isFinite(c.x) && Number.isFinite(c.y))) {
      throw new InvalidReportInputError(`parameterSurface.cells[${i}]`, 'x and y must be finite');
    }
  }
  const cells = surface.cells.map((c) => ({
    x: c.x,
    y: c.y,
    value: c.value !== null && Number.isFinite(c.value) ? c.value : null,
  }));
  const chart = await charts.render(
    'parameter-surface',
    parameterSurfaceChart(cells, { x: surface.xName, y: surface.yName, objective: surface.objective }),
  );
  const blanks = cells.filter((c) => c.value === null).length;
  const caption = `<p class="caption">${escapeHtml(surface.objective)} over ${escapeHtml(surface.xName)} × ${escapeHtml(surface.yName)}${
    blanks > 0 ? `; ${blanks} blank cell${blanks === 1 ? '' : 's'} had no value` : ''
  }.</p>`;
  const inSample =
    '<p class="note in-sample"><strong>In-sample:</strong> every cell is a backtest over the whole span, the same bars the parameters are judged on. It shows how sensitive the objective is to the parameters, not how they do out of sample (the walk-forward does).</p>';
  return section(
    'parameter-surface',
    `${title} (in-sample): ${surface.objective}`,
    `${inSample}\n${chart}\n${caption}`,
  );
}

function renderPerSymbol(input: ResearchReportInput): string {
  if (input.perSymbol.length === 0) {
    return section('per-symbol', 'Per-symbol metrics', '<p class="empty">No per-symbol metrics.</p>');
  }
  const keys: string[] = [];
  for (const s of input.perSymbol)
    for (const key of Object.keys(s.metrics)) if (!keys.includes(key)) keys.push(key);
  // One row per metric and one column per symbol: a watchlist is shorter than the list of metrics.
  const rows = keys.map((key) => [
    `${escapeHtml(metricLabel(key))} <code>${escapeHtml(key)}</code>`,
    ...input.perSymbol.map((s) => formatNumber(s.metrics[key] ?? null)),
  ]);
  const headers = ['Metric', ...input.perSymbol.map((s) => escapeHtml(s.symbol))];
  const numeric = headers.map((_, i) => i > 0);
  return section(
    'per-symbol',
    'Per-symbol metrics',
    `<div class="scroll compact">${table(headers, rows, numeric)}</div>`,
  );
}

/** Reduced and refused entries by kind: what each kind means and how many entries it touched. */
function entryAdjustmentTable(input: ResearchReportInput): string {
  const kinds = input.entryAdjustments ?? [];
  if (kinds.length === 0) return '<p class="empty">No entry was reduced, refused or skipped.</p>';
  return table(
    ['Kind', 'Effect', 'Entries', 'What it means', 'Example'],
    kinds.map((k) => [
      escapeHtml(k.kind),
      escapeHtml(k.effect),
      String(k.count),
      escapeHtml(k.explanation),
      `<code>${escapeHtml(k.example)}</code>`,
    ]),
    [false, false, true, false, false],
  );
}

async function renderRisk(input: ResearchReportInput, charts: ChartSequence): Promise<string> {
  const risk = input.risk;
  const adjustments = `<h3>Reduced and refused entries, by kind</h3>\n${entryAdjustmentTable(input)}`;
  if (risk === null) return section('risk', 'Risk', `${NOT_RUN('Risk rules')}\n${adjustments}`);
  const figures = `<dl class="figures">${[
    ['Peak heat', `${formatNumber(risk.peakHeatPct)}%`],
    ['Breaker trips', String(risk.breakerTrips.length)],
    ['Entries refused', String(risk.refusedEntries)],
    ['Entries reduced', String(risk.reducedEntries)],
  ]
    .map(([label, value]) => `<div><dt>${label}</dt><dd>${escapeHtml(value as string)}</dd></div>`)
    .join('')}</dl>`;
  requireLength('risk.heat.heatPct', risk.heat.heatPct, risk.heat.time.length);
  const t = parseTimes('risk.heat.time', risk.heat.time);
  const heat =
    t.length === 0
      ? '<p class="empty">No heat series.</p>'
      : await charts.render(
          'risk-heat',
          timeSeriesChart({
            points: points(t, risk.heat.heatPct),
            yTitle: 'Heat (% of equity)',
            yFormat: '.1f',
            color: COLORS.heat,
            kind: 'area',
            height: 170,
            zero: true,
          }),
        );
  const trips =
    risk.breakerTrips.length === 0
      ? '<p class="empty">No breaker trips.</p>'
      : table(
          ['Time', 'Breaker', 'Reason'],
          risk.breakerTrips.map((b) => [escapeHtml(b.time), escapeHtml(b.breaker), escapeHtml(b.reason)]),
          [false, false, false],
        );
  return section(
    'risk',
    'Risk',
    `${figures}\n<h3>Heat over time</h3>\n${heat}\n<h3>Breaker trips</h3>\n${trips}\n${adjustments}`,
  );
}

async function renderSleeves(input: SleevesReportInput, charts: ChartSequence): Promise<string> {
  const t = parseTimes('sleeves.time', input.time);
  input.sleeves.forEach((s, i) => {
    requireLength(`sleeves.sleeves[${i}].equity`, s.equity, t.length);
    requireLength(`sleeves.sleeves[${i}].drawdownPct`, s.drawdownPct, t.length);
  });
  input.weights.forEach((w, i) => {
    requireLength(`sleeves.weights[${i}].weight`, w.weight, t.length);
  });
  const equity = await charts.render(
    'sleeve-equity',
    multiSeriesChart({
      series: input.sleeves.map((s) => ({ name: s.id, points: points(t, s.equity) })),
      yTitle: 'Sleeve capital ($)',
      yFormat: '$,.0f',
      height: 260,
      kind: 'line',
    }),
  );
  const drawdown = await charts.render(
    'sleeve-drawdown',
    multiSeriesChart({
      series: input.sleeves.map((s) => ({
        name: s.id,
        points: points(
          t,
          s.drawdownPct.map((d) => -d),
        ),
      })),
      yTitle: 'Drawdown (%)',
      yFormat: '.1f',
      height: 200,
      kind: 'line',
    }),
  );
  const weights = await charts.render(
    'sleeve-weights',
    multiSeriesChart({
      series: input.weights.map((w) => ({ name: w.id, points: points(t, w.weight) })),
      yTitle: 'Weight',
      yFormat: '.0%',
      height: 200,
      kind: 'stacked-area',
    }),
  );
  const heatmap =
    input.correlation.ids.length < 2
      ? '<p class="empty">One sleeve: no correlation.</p>'
      : await charts.render(
          'sleeve-correlation',
          correlationHeatmapChart(input.correlation.ids, input.correlation.matrix),
        );
  const rows = input.attribution.map((a) => [
    escapeHtml(a.id),
    escapeHtml(a.strategy),
    signedClass(a.pnl, formatMoney(a.pnl)),
    signedClass(a.contributionPct, formatPercent(a.contributionPct)),
    formatNumber(a.trades),
    formatNumber(a.winRatePct),
    formatMoney(a.costs),
  ]);
  const attribution = table(
    ['Sleeve', 'Strategy', 'P&amp;L', 'Return contribution', 'Trades', 'Win rate %', 'Costs'],
    rows,
    [false, false, true, true, true, true, true],
  );
  return section(
    'sleeves',
    'Sleeves',
    [
      '<h3>Attribution</h3>',
      attribution,
      '<h3>Equity per sleeve</h3>',
      equity,
      '<h3>Drawdown per sleeve</h3>',
      drawdown,
      '<h3>Allocation weights over time</h3>',
      weights,
      `<h3>Correlation of the sleeves' daily returns</h3>`,
      `<p class="caption">Last rolling window; ${input.correlation.breaches} breach${input.correlation.breaches === 1 ? '' : 'es'} of the threshold over the run.</p>`,
      heatmap,
    ].join('\n'),
  );
}

/** An HTML table; cells are HTML already escaped by the caller. */
function table(
  headers: readonly string[],
  rows: readonly (readonly string[])[],
  numeric: readonly boolean[],
): string {
  const cls = (i: number) => (numeric[i] ? ' class="num"' : '');
  const head = headers.map((h, i) => `<th${cls(i)}>${h}</th>`).join('');
  const body = rows.map((r) => `<tr>${r.map((c, i) => `<td${cls(i)}>${c}</td>`).join('')}</tr>`).join('\n');
  return `<table>\n<thead><tr>${head}</tr></thead>\n<tbody>\n${body}\n</tbody>\n</table>`;
}

function signedClass(value: number | null, html: string): string {
  if (value === null || value === 0 || !Number.isFinite(value)) return html;
  return `<span class="${value > 0 ? 'up' : 'down'}">${html}</span>`;
}

const numberFormats = new Map<string, Intl.NumberFormat>();

/**
 * en-US with grouping: integers as they are, other numbers with `digits` decimals (at most
 * `digits` when `trim`); null or non-finite: an em dash.
 */
function formatNumber(value: number | null, digits = 2, trim = false): string {
  if (value === null || !Number.isFinite(value)) return '—';
  if (Number.isInteger(value) && Math.abs(value) < 1e15) return value.toLocaleString('en-US');
  const key = `${digits}/${trim}`;
  let format = numberFormats.get(key);
  if (format === undefined) {
    format = new Intl.NumberFormat('en-US', {
      minimumFractionDigits: trim ? 0 : digits,
      maximumFractionDigits: digits,
    });
    numberFormats.set(key, format);
  }
  return format.format(value);
}

const twoDecimals = new Intl.NumberFormat('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 });

/** Two decimals always, grouped; null or non-finite: an em dash. */
function formatPrice(value: number | null): string {
  return value === null || !Number.isFinite(value) ? '—' : twoDecimals.format(value);
}

function formatMoney(value: number): string {
  return `${value < 0 ? '−' : ''}$${formatPrice(Math.abs(value))}`;
}

function formatPercent(value: number | null): string {
  if (value === null || !Number.isFinite(value)) return 'n/a';
  return `${value > 0 ? '+' : value < 0 ? '−' : ''}${Math.abs(value).toFixed(2)}%`;
}

function formatParams(params: Record<string, number | string>): string {
  const entries = Object.entries(params);
  return entries.length === 0 ? '(defaults)' : entries.map(([k, v]) => `${k}=${v}`).join(', ');
}

const ISO_TIME = /^(\d{4}-\d{2}-\d{2})(?:[T ](\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)(Z|[+-]\d{2}:?\d{2})?)?$/;

/** An ISO date or date-time as ms since epoch; a date-time without a zone is UTC. */
function parseTime(field: string, text: string): number {
  const match = ISO_TIME.exec(text);
  const normalized =
    match === null
      ? null
      : match[2] === undefined
        ? `${match[1]}T00:00:00Z`
        : `${match[1]}T${match[2]}${match[3] ?? 'Z'}`;
  const time = normalized === null ? Number.NaN : Date.parse(normalized);
  if (!Number.isFinite(time)) {
    throw new InvalidReportInputError(field, `not an ISO date or date-time: ${JSON.stringify(text)}`);
  }
  return time;
}

function parseTimes(field: string, texts: readonly string[]): number[] {
  return texts.map((text, i) => parseTime(`${field}[${i}]`, text));
}

function requireLength(field: string, values: readonly unknown[], expected: number): void {
  if (values.length !== expected) {
    throw new InvalidReportInputError(field, `has ${values.length} points, its time axis has ${expected}`);
  }
}

function points(times: readonly number[], values: readonly number[]): TimePoint[] {
  return times.map((t, i) => {
    const value = values[i] as number;
    return { t, value: Number.isFinite(value) ? value : null };
  });
}

const STYLE = `
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; background: #f4f5f7; color: #1d2330;
  font: 14px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: ${CHART_WIDTH + 140}px; margin: 0 auto; padding: 24px 20px 48px; }
header, section { background: #fff; border: 1px solid #e1e4ea; border-radius: 8px; padding: 18px 22px; margin-bottom: 18px; }
h1 { font-size: 24px; margin: 0 0 10px; }
h2 { font-size: 18px; margin: 0 0 12px; padding-bottom: 6px; border-bottom: 1px solid #eef0f3; }
h3 { font-size: 15px; margin: 18px 0 6px; }
code { font: 12px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; word-break: break-all; }
dl.meta { display: grid; grid-template-columns: repeat(auto-fit, minmax(260px, 1fr)); gap: 6px 18px; margin: 0 0 12px; }
dl.meta dt, dl.figures dt { font-size: 12px; color: #667085; }
dl.meta dd, dl.figures dd { margin: 0; }
nav { display: flex; flex-wrap: wrap; gap: 6px 14px; font-size: 13px; }
nav a { color: #1f6fb4; text-decoration: none; }
dl.figures { display: grid; grid-template-columns: repeat(auto-fill, minmax(150px, 1fr)); gap: 10px; margin: 0 0 14px; }
dl.figures div { background: #f7f8fa; border: 1px solid #eceef2; border-radius: 6px; padding: 8px 10px; }
dl.figures dd { font-size: 16px; font-weight: 600; font-variant-numeric: tabular-nums; }
table { border-collapse: collapse; width: 100%; font-size: 13px; margin: 6px 0; }
th, td { padding: 5px 10px; border-bottom: 1px solid #eceef2; text-align: left; vertical-align: top; }
th { background: #f7f8fa; font-weight: 600; white-space: nowrap; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tbody tr:nth-child(even) { background: #fbfbfc; }
.scroll { overflow-x: auto; }
.compact table { width: auto; min-width: 480px; }
.compact td.num, .compact th.num { min-width: 100px; }
.badge { display: inline-block; min-width: 44px; text-align: center; padding: 1px 8px; border-radius: 10px; font-size: 12px; font-weight: 700; }
.badge.pass { background: #e3f4e8; color: #17663a; }
.badge.fail { background: #fde7e6; color: #a3221d; }
.decision { padding: 10px 14px; border-radius: 6px; margin: 0 0 12px; }
.decision.proceed { background: #e3f4e8; color: #17663a; border: 1px solid #b7e1c3; }
.decision.refine { background: #fff4e0; color: #8a4b00; border: 1px solid #f3d39a; }
.up { color: #17663a; }
.down { color: #a3221d; }
figure.chart { margin: 8px 0; overflow-x: auto; }
figure.chart svg { display: block; max-width: 100%; height: auto; }
.caption, .note { color: #667085; font-size: 12.5px; }
.not-run, .empty { color: #667085; font-style: italic; }
details { margin: 6px 0; }
summary { cursor: pointer; color: #1f6fb4; font-size: 13px; }
table.sortable th { cursor: pointer; }
table.sortable th[aria-sort="ascending"]::after { content: " ▲"; }
table.sortable th[aria-sort="descending"]::after { content: " ▼"; }
a.download { color: #1f6fb4; }
.in-sample { background: #fff4e0; border: 1px solid #f3d39a; border-radius: 6px; padding: 6px 10px; color: #8a4b00; }
article.symbol + article.symbol { border-top: 1px solid #eef0f3; margin-top: 14px; }
`;
