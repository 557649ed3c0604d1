import { liveSleeveIds } from '../core/config/schema.js';
import { utcDay } from '../core/market/utc-day.js';
import type { ClosedTradeRecord, EquitySnapshot } from '../core/ports/state-store.js';
import { attributionLines, type PnlAttribution } from '../core/validation/attribution.js';
import { periodAttribution } from './attribution.js';
import type { LiveContext } from './context.js';
import {
  type SleeveFigures,
  type SleeveWeek,
  sleeveWeekLines,
  summarizeSleeveWeeks,
} from './sleeve-report.js';

const DAY_MS = 86_400_000;
const dayMs = (date: string) => Date.parse(`${date}T00:00:00Z`);

/** The Monday (`YYYY-MM-DD`) of a date's ISO week. */
export function mondayOf(date: string): string {
  const weekday = (new Date(dayMs(date)).getUTCDay() + 6) % 7; // Monday 0 ... Sunday 6
  return utcDay(dayMs(date) - weekday * DAY_MS);
}

/** The week's summary, sent after the last session of each week. */
export interface WeeklyReport {
  readonly weekOf: string;
  readonly lastSession: string;
  readonly sessions: number;
  readonly startEquity: number;
  readonly endEquity: number;
  readonly weekPnl: number;
  readonly weekReturnPct: number;
  readonly worstDrawdownPct: number;
  readonly closedTrades: number;
  readonly winners: number;
  readonly closedPnl: number;
  /** Per sleeve: its closed trades and P&L of the week, its equity at the last session. */
  readonly sleeves?: readonly SleeveWeek[];
  /** The week's P&L attribution (docs/validation.md, "Attribution"), cents; null if not computed. */
  readonly attribution?: PnlAttribution | null;
}

/** Summarizes the week's snapshots (oldest first) and the trades closed in it. */
export function summarizeWeek(
  day: string,
  snapshots: readonly EquitySnapshot[],
  trades: readonly ClosedTradeRecord[],
): WeeklyReport | null {
  const first = snapshots[0];
  const last = snapshots.at(-1);
  if (first === undefined || last === undefined) return null;
  const startEquity = first.equity - first.dayPnl;
  const closedCents = trades.reduce((sum, t) => sum + t.pnlCents, 0);
  return {
    weekOf: mondayOf(day),
    lastSession: last.date,
    sessions: snapshots.length,
    startEquity,
    endEquity: last.equity,
    weekPnl: last.equity - startEquity,
    weekReturnPct: startEquity > 0 ? ((last.equity - startEquity) / startEquity) * 100 : 0,
    worstDrawdownPct: Math.max(...snapshots.map((s) => s.drawdownPct)),
    closedTrades: trades.length,
    winners: trades.filter((t) => t.pnlCents > 0).length,
    closedPnl: closedCents / 100,
  };
}

/**
 * After the last session of a week (the next session, per the broker's calendar, falls in
 * another week: a Friday, or a Thursday before a Good Friday), the week's report through the
 * Notifier, like the daily one. Returns it, or `null` on other days.
 */
export async function weeklyReportIfLastSession(
  ctx: LiveContext,
  day: string,
  drawdownLimitPct: number,
  lastSession: readonly SleeveFigures[] = [],
): Promise<WeeklyReport | null> {
  const ahead = await ctx.broker.getCalendar({
    from: utcDay(dayMs(day) + DAY_MS),
    to: utcDay(dayMs(day) + 8 * DAY_MS),
  });
  const next = ahead.map((d) => d.date).find((d) => d > day);
  if (next !== undefined && mondayOf(next) === mondayOf(day)) return null;
  const monday = mondayOf(day);
  const snapshots = await ctx.store.listEquitySnapshots(monday, day);
  // Each sleeve's closed trades (TRADES#<sleeve>; a single-strategy config's one sleeve is its name).
  const bySleeve = new Map<string, ClosedTradeRecord[]>();
  for (const sleeve of liveSleeveIds(ctx.config)) {
    bySleeve.set(
      sleeve,
      (await ctx.store.listClosedTrades(sleeve, 500)).filter(
        (t) => t.exitDate >= monday && t.exitDate <= day,
      ),
    );
  }
  const trades = [...bySleeve.values()].flat();
  const summary = summarizeWeek(day, snapshots, trades);
  if (summary === null) return null;
  const report: WeeklyReport = {
    ...summary,
    sleeves: summarizeSleeveWeeks(bySleeve, lastSession),
    attribution: await periodAttribution(
      ctx,
      snapshots.map((s) => s.date),
      trades,
    ),
  };
  const money = (x: number) => x.toLocaleString('en-US', { style: 'currency', currency: 'USD' });
  await ctx.notifier.publish({
    subject: `Weekly report, week of ${report.weekOf}: ${report.weekPnl >= 0 ? '+' : ''}${report.weekPnl.toFixed(2)}`,
    severity: 'info',
    kind: 'report',
    text: [
      `*QuantShift weekly report, week of ${report.weekOf}* (${report.sessions} sessions)`,
      `Equity ${money(report.startEquity)} → ${money(report.endEquity)} (${report.weekPnl >= 0 ? '+' : ''}${money(report.weekPnl)}, ${report.weekReturnPct.toFixed(2)}%)`,
      `Closed trades ${report.closedTrades} (${report.winners} winners), P&L ${money(report.closedPnl)}`,
      `Worst drawdown of the week ${report.worstDrawdownPct.toFixed(2)}%`,
      ...sleeveWeekLines(report.sleeves ?? []),
      ...(report.attribution == null ? [] : ['', ...attributionLines(report.attribution)]),
    ].join('\n'),
    figures: [
      { label: 'Week P&L', value: report.weekPnl, unit: '$' },
      { label: 'Week return', value: report.weekReturnPct, unit: '%' },
      {
        label: 'Worst drawdown',
        value: report.worstDrawdownPct,
        limit: drawdownLimitPct,
        unit: '%',
        limitKind: 'cap',
      },
      { label: 'Closed trades', value: report.closedTrades, unit: 'count' },
    ],
  });
  return report;
}
