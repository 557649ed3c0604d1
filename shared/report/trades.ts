/**
 * The trade list and the equity curve as rows and CSV, shared by the report's trade table (and its
 * CSV download) and `quantshift backtest --trades-csv / --equity-csv`.
 */
import type { BacktestDocument } from '../core/backtest/document.js';
import type { ReportTrade } from './html.js';

/** One trade with the figures a quant reads first. */
export interface TradeRow {
  readonly symbol: string;
  readonly direction: 'long' | 'short';
  readonly qty: number;
  readonly entryTime: string;
  readonly entryPrice: number;
  readonly exitTime: string | null;
  readonly exitPrice: number | null;
  /** Net of commissions, dollars; an open trade's is marked at the last close. */
  readonly pnl: number;
  /** P&L over the entry notional, percent. */
  readonly returnPct: number;
  /** Calendar days from entry to exit, or to the last bar while open. */
  readonly daysHeld: number;
  readonly exitReason: string | null;
  readonly commission: number;
}

const DAY_MS = 86_400_000;

/** A symbol's trades as its price chart marks them: direction, entry, exit and P&L. */
export function chartTrades(trades: BacktestDocument['trades'], symbol: string): ReportTrade[] {
  return trades
    .filter((t) => t.symbol === symbol)
    .map((t) => ({
      direction: t.direction,
      entryTime: t.entryTime,
      entryPrice: t.entryPrice,
      exitTime: t.exitTime,
      exitPrice: t.exitPrice,
      pnl: t.pnl,
    }));
}

/** The document's trades as rows; `lastTime` (the last bar) ends the days held of open trades. */
export function tradeRows(doc: Pick<BacktestDocument, 'trades' | 'to'>): TradeRow[] {
  return doc.trades.map((t) => {
    const notional = t.qty * t.entryPrice;
    const end = Date.parse(t.exitTime ?? doc.to);
    return {
      symbol: t.symbol,
      direction: t.direction,
      qty: t.qty,
      entryTime: t.entryTime,
      entryPrice: t.entryPrice,
      exitTime: t.exitTime,
      exitPrice: t.exitPrice,
      pnl: t.pnl,
      returnPct: notional > 0 ? (t.pnl / notional) * 100 : 0,
      daysHeld: Math.max(0, Math.round((end - Date.parse(t.entryTime)) / DAY_MS)),
      exitReason: t.exitReason,
      commission: t.commission,
    };
  });
}

const TRADE_COLUMNS = [
  'symbol',
  'direction',
  'qty',
  'entryTime',
  'entryPrice',
  'exitTime',
  'exitPrice',
  'pnl',
  'returnPct',
  'daysHeld',
  'exitReason',
  'commission',
] as const satisfies readonly (keyof TradeRow)[];

/** A CSV field: quoted when it holds a comma, a quote or a line break. */
function field(value: string | number | null): string {
  if (value === null) return '';
  const text = typeof value === 'number' ? String(Math.round(value * 1e8) / 1e8) : value;
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** The trades as CSV with a header row (empty exit fields for open trades). */
export function tradesCsv(rows: readonly TradeRow[]): string {
  const lines = [
    TRADE_COLUMNS.join(','),
    ...rows.map((r) => TRADE_COLUMNS.map((c) => field(r[c])).join(',')),
  ];
  return `${lines.join('\n')}\n`;
}

/** The equity curve as CSV: time, equity, and the drawdown from the running peak in percent. */
export function equityCsv(doc: Pick<BacktestDocument, 'equity'>): string {
  let peak = Number.NEGATIVE_INFINITY;
  const lines = ['time,equity,drawdownPct'];
  for (const p of doc.equity) {
    peak = Math.max(peak, p.equity);
    lines.push([p.time, field(p.equity), field(peak > 0 ? ((peak - p.equity) / peak) * 100 : 0)].join(','));
  }
  return `${lines.join('\n')}\n`;
}
