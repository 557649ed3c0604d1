import type { StrategyConfig } from '../core/config/schema.js';
import { notionalCents, toDollars } from '../core/ledger/money.js';
import type {
  ClosedTradeRecord,
  IntentRecord,
  PositionRecord,
  SleevesSnapshotRecord,
} from '../core/ports/state-store.js';
import type { SleevesState } from '../core/trading/sleeves-close.js';

/**
 * One sleeve's figures at the end of a day: what the daily report lists per sleeve and what the
 * end-of-day step emits as EMF metrics with a `Sleeve` dimension (the dashboard's sleeve widgets).
 */
export interface SleeveFigures {
  /** The sleeve id (a single-strategy config's name). */
  readonly id: string;
  /** The sleeve's equity: its cash plus its positions at the day's prices (dollars). */
  readonly equity: number;
  /** The sleeve's P&L of the day (dollars). */
  readonly dayPnl: number;
  /** The sleeve's open risk to its stops, in percent of the account's equity. */
  readonly heatPct: number;
  /** Orders of the sleeve that reached the broker today. */
  readonly orders: number;
  /** Open positions of the sleeve. */
  readonly positions: number;
}

/** Open risk to the stops (dollars): quantity × the distance from the price to the stop, never below zero. */
export function openRisk(
  positions: readonly Pick<PositionRecord, 'symbol' | 'qty' | 'stop'>[],
  price: (symbol: string) => number | undefined,
): number {
  let risk = 0;
  for (const p of positions) {
    const last = price(p.symbol);
    if (p.stop === null || last === undefined || p.qty === 0) continue;
    risk += Math.max(0, (last - p.stop) * Math.sign(p.qty)) * Math.abs(p.qty);
  }
  return risk;
}

/**
 * The figures of a single-strategy config's one sleeve (named after the config) from what the
 * end-of-day step has: the account's equity and day P&L are the sleeve's, its heat is the open
 * risk of the reconciled positions at the broker's prices, its orders are today's intents that
 * reached the broker. A sleeves config gets its figures from the sleeves' own books: none here.
 */
export function singleSleeveFigures(
  config: StrategyConfig,
  day: {
    readonly equity: number;
    readonly dayPnl: number;
    readonly positions: readonly PositionRecord[];
    readonly price: (symbol: string) => number | undefined;
    readonly intents: readonly Pick<IntentRecord, 'brokerOrderId'>[];
  },
): SleeveFigures[] {
  if (config.sleeves !== undefined) return [];
  return [
    {
      id: config.name,
      equity: day.equity,
      dayPnl: day.dayPnl,
      heatPct: day.equity > 0 ? (openRisk(day.positions, day.price) / day.equity) * 100 : 0,
      orders: day.intents.filter((i) => i.brokerOrderId !== undefined).length,
      positions: day.positions.filter((p) => p.qty !== 0).length,
    },
  ];
}

/**
 * A sleeve's book marked at `price` (its entry price where there is none), cents: the one formula
 * of the daily report's figures and the dated snapshot, the sleeves engine's (`Book.equity`).
 */
function bookEquityCents(
  book: SleevesState['books'][number],
  price: (symbol: string) => number | undefined,
): number {
  let equity = book.cash;
  for (const p of book.positions) equity += p.side * notionalCents(p.qty, price(p.symbol) ?? p.entryPrice);
  return equity;
}

/**
 * The figures of a sleeves config's sleeves from their booked books (end-of-day, after the day's
 * fills are split back): equity is the sleeve's cash plus its positions at the broker's prices (the
 * entry price where the broker quotes none), the day's P&L is that less the equity the last close
 * left the sleeve with (after any reallocation, so capital moved is not P&L), heat is its open risk
 * to its stops over the account's equity, and orders count its legs that went out in a net order
 * and its own stop and exit orders that reached the broker.
 */
export function sleevesFigures(
  state: SleevesState,
  day: {
    readonly accountEquity: number;
    readonly price: (symbol: string) => number | undefined;
    readonly intents: readonly Pick<IntentRecord, 'sleeve' | 'leg' | 'netOrderId' | 'brokerOrderId'>[];
  },
): SleeveFigures[] {
  return state.books.map((book, k) => {
    const positions = book.positions.map((p) => ({
      symbol: p.symbol,
      qty: p.side * p.qty,
      stop: p.stop,
    }));
    const equity = toDollars(bookEquityCents(book, day.price));
    const previous = state.allocation.prevEquity[k];
    return {
      id: book.id,
      equity,
      dayPnl: previous === undefined ? 0 : equity - toDollars(previous),
      heatPct: day.accountEquity > 0 ? (openRisk(positions, day.price) / day.accountEquity) * 100 : 0,
      orders: day.intents.filter(
        (i) =>
          i.sleeve === book.id &&
          (i.leg === true ? i.netOrderId !== undefined : i.brokerOrderId !== undefined),
      ).length,
      positions: positions.filter((p) => p.qty !== 0).length,
    };
  });
}

/**
 * The dated snapshot end-of-day keeps of a sleeves config's session (docs/state-store.md): the
 * booked state after the day's fills, and each sleeve's cash, equity at the day's prices (as the
 * close step marks a book: cash + side × notional at the price, the entry price where none is
 * quoted) and time-weighted NAV (the previous close's NAV moved by equity over the equity that
 * close's reallocation left the sleeve, as `SleeveAllocation.mark` moves it).
 */
export function sleevesSnapshot(
  date: string,
  state: SleevesState,
  price: (symbol: string) => number | undefined,
  takenAt: string,
): SleevesSnapshotRecord {
  return {
    date,
    state,
    sleeves: state.books.map((book, k) => {
      const equity = bookEquityCents(book, price);
      const base = state.allocation.prevEquity[k] ?? 0;
      const navBefore = state.allocation.nav[k] ?? toDollars(book.initialCash);
      return {
        id: book.id,
        cashCents: book.cash,
        equity: toDollars(equity),
        nav: navBefore * (1 + (base > 0 ? equity / base - 1 : 0)),
        navBefore,
        inMarket: book.positions.length > 0,
      };
    }),
    takenAt,
  };
}

const money = (x: number) => x.toLocaleString('en-US', { style: 'currency', currency: 'USD' });
const signed = (x: number) => `${x >= 0 ? '+' : ''}${money(x)}`;

/** The daily report's per-sleeve lines (Markdown); none without figures. */
export function sleeveReportLines(sleeves: readonly SleeveFigures[]): string[] {
  if (sleeves.length === 0) return [];
  return [
    '',
    `*Sleeves* (${sleeves.length})`,
    ...sleeves.map(
      (s) =>
        `• ${s.id}: equity ${money(s.equity)} (day ${signed(s.dayPnl)}), heat ${s.heatPct.toFixed(2)}%, orders ${s.orders}, positions ${s.positions}`,
    ),
  ];
}

/** One sleeve's week: its closed trades and their P&L, and its equity at the week's last session when known. */
export interface SleeveWeek {
  readonly id: string;
  readonly closedTrades: number;
  readonly winners: number;
  /** Realized P&L of the trades closed in the week (dollars). */
  readonly closedPnl: number;
  /** The sleeve's equity at the end of the week's last session, when the end-of-day gave it. */
  readonly endEquity: number | null;
}

/** The week per sleeve, from each sleeve's closed trades of the week and the last session's figures. */
export function summarizeSleeveWeeks(
  trades: ReadonlyMap<string, readonly ClosedTradeRecord[]>,
  lastSession: readonly SleeveFigures[],
): SleeveWeek[] {
  return [...trades].map(([id, list]) => ({
    id,
    closedTrades: list.length,
    winners: list.filter((t) => t.pnlCents > 0).length,
    closedPnl: list.reduce((sum, t) => sum + t.pnlCents, 0) / 100,
    endEquity: lastSession.find((s) => s.id === id)?.equity ?? null,
  }));
}

/** The weekly report's per-sleeve lines (Markdown). */
export function sleeveWeekLines(weeks: readonly SleeveWeek[]): string[] {
  if (weeks.length === 0) return [];
  return [
    '',
    `*Sleeves* (${weeks.length})`,
    ...weeks.map(
      (w) =>
        `• ${w.id}: closed trades ${w.closedTrades} (${w.winners} winners), P&L ${money(w.closedPnl)}${w.endEquity === null ? '' : `, equity ${money(w.endEquity)}`}`,
    ),
  ];
}
