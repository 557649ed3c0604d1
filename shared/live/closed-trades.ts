import { notionalCents } from '../core/ledger/money.js';
import type {
  ClosedTradeRecord,
  FillRecord,
  PositionRecord,
  RealisedPart,
} from '../core/ports/state-store.js';

/** Quantities closer than this are equal (fractional shares are whole to 1e-9). */
const EPSILON = 1e-9;

/** A position being walked through the day's fills: what it cost and what closing it brought in. */
interface Lot {
  readonly side: 1 | -1;
  /** Shares still open. */
  qty: number;
  /** Shares opened over the round trip (its quantity once it is closed). */
  opened: number;
  closed: number;
  /** Σ opening fills' notionals (integer cents; the starting position's at its average entry price). */
  entryCents: number;
  /** Σ closing fills' notionals (integer cents). */
  exitCents: number;
  /** Quantity-weighted average prices of the opening and of the closing fills. */
  entryPrice: number;
  exitPrice: number;
  readonly entryDate: string | null;
}

/** Where the day's fills leave each symbol they touched (and each of the starting positions). */
export interface OpenAfterFills {
  /** Signed quantity (negative: short), 0 when flat. */
  readonly qty: number;
  /** Entry date of what is open, null when flat or unknown. */
  readonly entryDate: string | null;
  /**
   * Average entry price of what is open (the starting position's, then weighted by the day's
   * opening fills), null when flat: the ledger's own figure, for a broker that reports no cost
   * basis (Coinbase).
   */
  readonly entryPrice: number | null;
  /**
   * The part of the round trip closed so far when it is still open (a position reduced without
   * going flat): kept on the position record, the next day's walk resumes the trade from it.
   */
  readonly realised?: RealisedPart;
}

export interface DayTrades {
  /** The round trips the day's fills closed, in the order they closed. */
  readonly trades: readonly ClosedTradeRecord[];
  /** Each symbol's position after the fills, by symbol. */
  readonly open: ReadonlyMap<string, OpenAfterFills>;
}

/**
 * The round trips a trading day's fills closed, walked from the positions at the start of the day
 * (the previous session's reconciled record). A trade is closed when its position is back to zero:
 * its P&L is the backtest's (`side × (exit notional − entry notional) − commissions`, each fill's
 * notional rounded to the cent; the broker's fills carry no commission), its prices the
 * quantity-weighted averages of its opening and closing fills (the starting position's is the
 * broker's average entry price). A fill through zero closes the trade and opens the next with the
 * rest. Splits of the day (applied at the open, before any fill) scale the starting quantity and
 * price; the entry notional stays. Pure: end-of-day checks the result against the broker before
 * recording it.
 */
export function closedTradesOfDay(input: {
  readonly strategy: string;
  /** When the trades are recorded (end-of-day's scheduled time). */
  readonly recordedAt: string;
  /** Positions at the start of the day. */
  readonly opening: readonly PositionRecord[];
  /** The day's splits: new shares per old share. */
  readonly splits: readonly { readonly symbol: string; readonly ratio: number }[];
  /** The day's fills, in any order (walked by time, then execution id). */
  readonly fills: readonly FillRecord[];
}): DayTrades {
  const lots = new Map<string, Lot | undefined>();
  for (const position of input.opening) {
    if (Math.abs(position.qty) <= EPSILON) continue;
    const qty = Math.abs(position.qty);
    // A round trip reduced on earlier days resumes with its closed part: every share it opened,
    // every exit's notional (the open part's entry notional at the position's average price).
    const realised = position.realised;
    const closed = realised?.qty ?? 0;
    lots.set(position.symbol, {
      side: position.qty > 0 ? 1 : -1,
      qty,
      opened: qty + closed,
      closed,
      entryCents: notionalCents(qty, position.avgEntryPrice) + (realised?.entryCents ?? 0),
      exitCents: realised?.exitCents ?? 0,
      entryPrice:
        realised === undefined
          ? position.avgEntryPrice
          : position.avgEntryPrice +
            ((realised.entryPrice - position.avgEntryPrice) * closed) / (qty + closed),
      exitPrice: realised?.exitPrice ?? 0,
      entryDate: position.entryDate ?? null,
    });
  }
  for (const split of input.splits) {
    const lot = lots.get(split.symbol);
    if (lot === undefined) continue;
    lot.qty *= split.ratio;
    lot.opened *= split.ratio;
    lot.closed *= split.ratio;
    lot.entryPrice /= split.ratio;
    lot.exitPrice /= split.ratio;
  }

  const trades: ClosedTradeRecord[] = [];
  const fills = [...input.fills].sort(
    (a, b) =>
      Date.parse(a.time) - Date.parse(b.time) ||
      (a.executionId < b.executionId ? -1 : a.executionId > b.executionId ? 1 : 0),
  );
  for (const fill of fills) {
    const direction: 1 | -1 = fill.side === 'buy' ? 1 : -1;
    let rest = fill.qty;
    const lot = lots.get(fill.symbol);
    if (lot !== undefined && lot.side !== direction) {
      const closing = Math.min(rest, lot.qty);
      lot.qty -= closing;
      lot.closed += closing;
      lot.exitCents += notionalCents(closing, fill.price);
      lot.exitPrice += ((fill.price - lot.exitPrice) * closing) / lot.closed;
      rest -= closing;
      if (lot.qty <= EPSILON) {
        trades.push({
          strategy: input.strategy,
          symbol: fill.symbol,
          side: lot.side === 1 ? 'long' : 'short',
          qty: lot.closed,
          entryDate: lot.entryDate,
          exitDate: fill.date,
          exitTime: fill.time,
          entryPrice: lot.entryPrice,
          exitPrice: lot.exitPrice,
          pnlCents: lot.side * (lot.exitCents - lot.entryCents),
          exitExecutionId: fill.executionId,
          recordedAt: input.recordedAt,
        });
        lots.set(fill.symbol, undefined);
      }
    }
    if (rest <= EPSILON) continue;
    const current = lots.get(fill.symbol);
    if (current === undefined) {
      lots.set(fill.symbol, {
        side: direction,
        qty: rest,
        opened: rest,
        closed: 0,
        entryCents: notionalCents(rest, fill.price),
        exitCents: 0,
        entryPrice: fill.price,
        exitPrice: 0,
        entryDate: fill.date,
      });
    } else {
      current.qty += rest;
      current.opened += rest;
      current.entryCents += notionalCents(rest, fill.price);
      current.entryPrice += ((fill.price - current.entryPrice) * rest) / current.opened;
    }
  }

  const open = new Map<string, OpenAfterFills>();
  for (const [symbol, lot] of lots) {
    open.set(
      symbol,
      lot === undefined
        ? { qty: 0, entryDate: null, entryPrice: null }
        : {
            qty: lot.side * lot.qty,
            entryDate: lot.entryDate,
            entryPrice: lot.entryPrice,
            ...(lot.closed > EPSILON ? { realised: realisedOf(lot) } : {}),
          },
    );
  }
  return { trades, open };
}

/**
 * A lot's closed part (it is still open): its shares, their exits, and their share of the entry
 * notional, which is what the open part's own notional at the average entry price leaves of the
 * whole, so the next day's walk (the open part at the record's average price plus this) sums to the
 * round trip's entry notional to the cent.
 */
function realisedOf(lot: Lot): RealisedPart {
  return {
    qty: lot.closed,
    entryCents: Math.max(0, lot.entryCents - notionalCents(lot.qty, lot.entryPrice)),
    exitCents: lot.exitCents,
    entryPrice: lot.entryPrice,
    exitPrice: lot.exitPrice,
  };
}

/**
 * The closed part to keep on a position record written with `avgEntryPrice` (the broker's average,
 * or the walk's): the walk's (`open.realised`) with its entry notional rebased, so that the next
 * day's walk, which starts the open shares at the record's average price, sums to the round trip's
 * entry notional to the cent. Undefined when nothing of the round trip is closed.
 */
export function realisedOnRecord(
  open: OpenAfterFills | undefined,
  avgEntryPrice: number,
): RealisedPart | undefined {
  const realised = open?.realised;
  if (open === undefined || realised === undefined || open.entryPrice === null) return undefined;
  const qty = Math.abs(open.qty);
  const whole = realised.entryCents + notionalCents(qty, open.entryPrice);
  return { ...realised, entryCents: Math.max(0, whole - notionalCents(qty, avgEntryPrice)) };
}

/**
 * A list's closed part carried onto a list written later with the position at `qty` shares (same
 * side) and `avgEntryPrice` (the broker's average, as the risk check writes it): its entry notional
 * rebased so that the next walk, which starts the open shares at the new list's average, still sums
 * to the round trip's entry notional to the cent. Undefined when the record has none, or when the
 * position is no longer the same round trip (gone, on the other side, or larger: shares bought
 * since, which no end-of-day has walked). Shares sold since the record (a fill the later list books
 * and no end-of-day walked) are not in it: the record then keeps the part it had.
 */
export function realisedCarried(
  record: Pick<PositionRecord, 'qty' | 'avgEntryPrice' | 'realised'>,
  qty: number,
  avgEntryPrice: number,
): RealisedPart | undefined {
  const realised = record.realised;
  if (realised === undefined || qty === 0 || Math.sign(qty) !== Math.sign(record.qty)) return undefined;
  const open = Math.abs(qty);
  if (open > Math.abs(record.qty)) return undefined;
  const whole = realised.entryCents + notionalCents(open, record.avgEntryPrice);
  return { ...realised, entryCents: Math.max(0, whole - notionalCents(open, avgEntryPrice)) };
}
