/**
 * One trading session of an account that runs several sleeves (strategies with their own capital):
 * feed the close's bars to every sleeve's strategy, decide per sleeve under the account's caps, net
 * the sleeves' orders per symbol into one order, and split the fill back to the sleeves at the fill
 * price. The backtest's sleeves engine is the time loop around it; the live signal step will call the
 * same session. `decide.ts` stays the decision rule over a set of rows (breakers, stops, exits,
 * sizing); this file owns the sleeves' books, the account ledger and the netting.
 */
import type {
  BacktestOptions,
  EntryDecision,
  ReducedEntry,
  RefusedEntry,
  SkippedEntry,
} from '../backtest/types.js';
import { SleeveLedgerError } from '../errors.js';
import { Atr } from '../indicators/index.js';
import {
  type Cents,
  commissionCents,
  notionalCents,
  splitCents,
  toCents,
  toDollars,
} from '../ledger/money.js';
import type { Bar } from '../market/types.js';
import { AccountLedger, type LegFill, roundQty, SleeveBook, type SleeveTrade } from '../portfolio/book.js';
import type { Sleeve } from '../portfolio/sleeves.js';
import { type BreakerEvent, initialRiskState, type RiskState } from '../risk/index.js';
import { allInQty, orderableQty } from '../sizing/index.js';
import { HOLD, type Intent, type StrategyInstance } from '../strategies/types.js';
import { type BookAtClose, decideAtClose, type SymbolAtClose } from './decide.js';

export type LegRole = 'entry' | 'exit' | 'end-of-data';

/** One sleeve's order in one symbol for the next session. */
export interface SessionLeg {
  readonly sleeve: number;
  readonly symbol: string;
  readonly role: LegRole;
  readonly side: 'buy' | 'sell';
  readonly qty: number;
  readonly reason?: string;
  /** For entries: what the position gets. */
  readonly entry?: {
    readonly side: 1 | -1;
    readonly entryRef: number;
    readonly stopLoss: number | undefined;
    readonly takeProfit: number | undefined;
  };
}

/** The sleeves' legs in one symbol netted into one broker order (or none, when they cross fully). */
export interface NetOrder {
  readonly symbol: string;
  /** The broker order's side; null when the legs offset exactly (all crossed internally). */
  readonly side: 'buy' | 'sell' | null;
  /** The broker order's quantity: |buys − sells|. */
  readonly qty: number;
  /** The offsetting part, crossed between sleeves without reaching the broker. */
  readonly crossQty: number;
  readonly legs: readonly SessionLeg[];
}

/** Nets legs of one symbol: buys against sells; the rest is one order. */
export function netLegs(symbol: string, legs: readonly SessionLeg[]): NetOrder {
  let buys = 0;
  let sells = 0;
  for (const leg of legs) {
    if (leg.symbol !== symbol) throw new SleeveLedgerError(`a ${leg.symbol} leg netted into ${symbol}`);
    if (leg.side === 'buy') buys += leg.qty;
    else sells += leg.qty;
  }
  const net = roundQty(buys - sells);
  return {
    symbol,
    side: net > 0 ? 'buy' : net < 0 ? 'sell' : null,
    qty: Math.abs(net),
    crossQty: roundQty(Math.min(buys, sells)),
    legs,
  };
}

/**
 * Splits a net order's fill back to its legs, every leg at the fill price. The broker's notional
 * (cents) is kept exactly: the legs' rounding residue goes to the largest leg on the order's side,
 * so the sleeves' cash moves add up to the account's to the cent. The commission is the broker
 * order's, shared by the legs on its side in proportion to their quantity; the crossed part pays none.
 */
export function splitFill(order: NetOrder, price: number, commission: Cents, time: number): LegFill[] {
  const notionals = order.legs.map((leg) => notionalCents(leg.qty, price));
  const signed = (leg: SessionLeg, n: number) => (leg.side === 'buy' ? n : -n);
  let legSum = 0;
  order.legs.forEach((leg, i) => {
    legSum += signed(leg, notionals[i] as number);
  });
  const brokerSide = order.side ?? 'buy';
  const brokerSigned =
    order.side === null ? 0 : signed({ side: brokerSide } as SessionLeg, notionalCents(order.qty, price));
  const residue = brokerSigned - legSum;
  const onSide = order.legs.map((leg) => leg.side === brokerSide);
  if (residue !== 0) {
    let largest = -1;
    order.legs.forEach((leg, i) => {
      if (onSide[i] && (largest < 0 || leg.qty > (order.legs[largest] as SessionLeg).qty)) largest = i;
    });
    if (largest < 0)
      throw new SleeveLedgerError(`${order.symbol}: a notional residue with no leg to carry it`);
    notionals[largest] = (notionals[largest] as number) + signed(order.legs[largest] as SessionLeg, residue);
  }
  const shares = splitCents(
    order.side === null ? 0 : commission,
    order.legs.map((leg, i) => (onSide[i] ? leg.qty : 0)),
  );
  return order.legs.map((leg, i) => ({
    qty: leg.qty,
    price,
    notional: notionals[i] as number,
    commission: order.side === null ? 0 : (shares[i] as number),
    time,
  }));
}

/**
 * Covers `room` shares with legs of one side: exits first, each whole, in leg order, as far as the
 * shares go (a sleeve only closes a whole position); entries share the rest in proportion to their
 * quantity (whole shares unless `fractional`; the remainder to the largest).
 */
function coverSide(legs: readonly SessionLeg[], room: number, fractional: boolean): Map<SessionLeg, number> {
  const covered = new Map<SessionLeg, number>();
  let left = roundQty(room);
  for (const leg of legs.filter((l) => l.role !== 'entry')) {
    if (leg.qty <= left + 1e-9) {
      covered.set(leg, leg.qty);
      left = roundQty(left - leg.qty);
    }
  }
  const entries = legs.filter((l) => l.role === 'entry');
  const wanted = entries.reduce((a, l) => a + l.qty, 0);
  if (entries.length === 0 || !(left > 0)) return covered;
  if (left >= wanted - 1e-9) {
    for (const leg of entries) covered.set(leg, leg.qty);
    return covered;
  }
  const step = fractional ? 1e-6 : 1;
  const floor = (x: number) => roundQty(Math.floor(x / step + 1e-9) * step);
  const shares = entries.map((l) => Math.min(l.qty, floor((left * l.qty) / wanted)));
  let rest = roundQty(left - shares.reduce((a, b) => a + b, 0));
  const largestFirst = entries
    .map((_, i) => i)
    .sort((a, b) => (entries[b] as SessionLeg).qty - (entries[a] as SessionLeg).qty);
  for (const i of largestFirst) {
    const add = Math.min(rest, roundQty((entries[i] as SessionLeg).qty - (shares[i] as number)));
    shares[i] = roundQty((shares[i] as number) + add);
    rest = roundQty(rest - add);
  }
  entries.forEach((leg, i) => {
    if ((shares[i] as number) > 0) covered.set(leg, shares[i] as number);
  });
  return covered;
}

/**
 * The legs a net order's fill covers when the broker filled `filledQty` of its `qty` (a partial
 * fill, or none). The legs on the order's side get the filled shares plus the crossed part
 * (`crossQty`), the legs against it what those legs cross minus the filled shares, each side
 * covered by {@link coverSide}'s rule (exits whole first, entries pro rata). Long-only, a net buy
 * always crosses its exits whole and shares the fill between its entries; a net sell closes whole
 * positions as far as the fill goes, and an exit it cannot complete stays open (the broker then
 * holds more than the sleeves' books say is sold: reconciliation reports it). Returns the covered
 * legs with their quantities, in the order's order; a full fill covers every leg.
 */
export function coveredLegs(order: NetOrder, filledQty: number, fractional = false): SessionLeg[] {
  const qtys = coveredQuantities(order, filledQty, fractional);
  return order.legs.flatMap((leg, i) => {
    const qty = qtys[i] as number;
    return qty > 0 ? [qty === leg.qty ? leg : { ...leg, qty }] : [];
  });
}

/** {@link coveredLegs}' quantities, one per leg of the order (0: not covered). */
export function coveredQuantities(order: NetOrder, filledQty: number, fractional = false): number[] {
  if (!(filledQty >= 0) || filledQty > order.qty + 1e-9)
    throw new SleeveLedgerError(`${order.symbol}: a fill of ${filledQty} on a net order of ${order.qty}`);
  if (order.side === null || roundQty(filledQty) === order.qty) return order.legs.map((l) => l.qty);
  const onSide = coverSide(
    order.legs.filter((l) => l.side === order.side),
    order.crossQty + filledQty,
    fractional,
  );
  let coveredOn = 0;
  for (const qty of onSide.values()) coveredOn += qty;
  const against = coverSide(
    order.legs.filter((l) => l.side !== order.side),
    Math.max(0, coveredOn - filledQty),
    fractional,
  );
  return order.legs.map((leg) => onSide.get(leg) ?? against.get(leg) ?? 0);
}

/** A (sleeve, symbol) pair the session decides for. */
interface Row {
  readonly sleeve: number;
  readonly symbol: number;
  readonly strategy: StrategyInstance;
  intent: Intent;
}

/** What the session decided at a close. */
export interface CloseOutcome {
  /** The next session's legs per symbol (exits and entries), in decision order. */
  readonly legs: readonly SessionLeg[];
  readonly events: readonly BreakerEvent[];
  readonly refused: readonly (RefusedEntry & { sleeve: string })[];
  readonly reduced: readonly (ReducedEntry & { sleeve: string })[];
  readonly skipped: readonly (SkippedEntry & { sleeve: string })[];
  readonly entryDecisions: readonly (EntryDecision & { sleeve: string })[];
  readonly stopMoves: number;
  readonly heatPct: number;
}

/** The options the session reads (the account's; sleeves override sizing and per-trade risk). */
export type SessionOptions = Pick<
  BacktestOptions,
  'sizing' | 'fractional' | 'cashBuffer' | 'maxPositionFraction' | 'risk' | 'commission' | 'products'
>;

/**
 * The sleeves of one account and their state between closes: the books, the account ledger, the
 * strategy instances per (sleeve, symbol), the risk state and the last closes.
 */
export class TradingSession {
  readonly books: SleeveBook[];
  readonly account: AccountLedger;
  private readonly rows: Row[] = [];
  private readonly lastClose: Float64Array;
  private readonly atr: Float64Array;
  private readonly riskAtr: (Atr | undefined)[];
  private readonly hasBar: Uint8Array;
  riskState: RiskState;

  constructor(
    readonly sleeves: readonly Sleeve[],
    readonly symbols: readonly string[],
    readonly options: SessionOptions,
    initialCapital: readonly Cents[],
    /** Account equity at the start (dollars), for the breakers' high-water mark. */
    initialEquity: number,
  ) {
    this.books = sleeves.map((s, i) => new SleeveBook(s.id, s.strategy.name, initialCapital[i] as number));
    this.account = new AccountLedger(initialCapital.reduce((a, b) => a + b, 0));
    sleeves.forEach((sleeve, k) => {
      for (const symbol of sleeve.symbols) {
        const index = symbols.indexOf(symbol);
        if (index < 0) throw new SleeveLedgerError(`sleeve ${sleeve.id}: no bars for ${symbol}`);
        this.rows.push({
          sleeve: k,
          symbol: index,
          strategy: sleeve.strategy.create(sleeve.params, { direction: sleeve.direction }),
          intent: HOLD,
        });
      }
    });
    this.lastClose = new Float64Array(symbols.length).fill(Number.NaN);
    this.atr = new Float64Array(symbols.length).fill(Number.NaN);
    this.riskAtr = symbols.map(() =>
      options.risk === undefined ? undefined : new Atr(options.risk.stops.atrPeriod),
    );
    this.hasBar = new Uint8Array(symbols.length);
    this.riskState = initialRiskState(initialEquity);
  }

  /** The last close of a symbol (NaN before its first bar). */
  mark = (symbol: string): number => this.lastClose[this.symbols.indexOf(symbol)] as number;

  /** The account's equity marked at the last closes, cents (the sum of the sleeves'). */
  accountEquity(): Cents {
    let value = this.account.cash;
    for (const [symbol, qty] of this.account.positions) value += notionalCents(qty, this.mark(symbol));
    return value;
  }

  /** Feeds one close's bars (undefined: no bar for that symbol) to the strategies; no decision yet. */
  feed(bars: readonly (Bar | undefined)[]): void {
    bars.forEach((bar, j) => {
      this.hasBar[j] = bar === undefined ? 0 : 1;
      if (bar === undefined) return;
      this.lastClose[j] = bar.close;
      const atr = this.riskAtr[j];
      if (atr !== undefined) this.atr[j] = atr.update(bar.high, bar.low, bar.close);
    });
    for (const row of this.rows) {
      const bar = bars[row.symbol];
      const book = this.books[row.sleeve] as SleeveBook;
      const position = book.positions.get(this.symbols[row.symbol] as string);
      if (bar === undefined) {
        row.intent = HOLD;
        continue;
      }
      if (position !== undefined) position.sessionsHeld++;
      row.intent = row.strategy.onBar(bar, {
        position: position === undefined ? 'flat' : position.side === 1 ? 'long' : 'short',
      });
    }
  }

  /**
   * The decision at this close over every (sleeve, symbol): breakers, heat, buying power and the cash
   * buffer are the account's; sizing and Kelly are each sleeve's. Moves stops in the books and
   * returns the next session's legs. `correlation` is ρ between two symbols' daily returns;
   * `volatility` a symbol's annualised volatility of daily returns (the volatility cap's input).
   */
  decide(
    time: number,
    day: string,
    correlation?: (a: number, b: number) => number,
    drawdownAutoReset?: { sessions: number; by: string },
    volatility?: (symbol: number) => number,
  ): CloseOutcome {
    const { options } = this;
    const markOf = this.mark;
    const books: BookAtClose[] = this.books.map((book, k) => {
      const sleeve = this.sleeves[k] as Sleeve;
      return {
        equity: toDollars(book.equity(markOf)),
        buyingPower: toDollars(book.buyingPower(markOf)),
        closedPnls: book.closedPnls,
        ...(sleeve.sizing === undefined ? {} : { sizing: sleeve.sizing }),
        ...(sleeve.risk === undefined ? {} : { risk: sleeve.risk }),
      };
    });
    let accountPower = 0;
    for (const book of this.books) accountPower += book.buyingPower(markOf);
    const rows: SymbolAtClose[] = this.rows.map((row) => {
      const symbol = this.symbols[row.symbol] as string;
      const p = (this.books[row.sleeve] as SleeveBook).positions.get(symbol);
      return {
        symbol,
        hasBar: this.hasBar[row.symbol] === 1,
        close: this.lastClose[row.symbol] as number,
        atr: this.atr[row.symbol] as number,
        intent: row.intent,
        book: row.sleeve,
        position:
          p === undefined
            ? undefined
            : {
                side: p.side,
                qty: p.qty,
                entryPrice: p.entryPrice,
                entryRef: p.entryRef,
                initialRisk: p.initialRisk,
                stop: p.stop,
                sessionsHeld: p.sessionsHeld,
              },
      };
    });
    const decisions = decideAtClose({
      time,
      day,
      equity: toDollars(this.accountEquity()),
      buyingPower: toDollars(accountPower),
      symbols: rows,
      closedPnls: [],
      riskState: this.riskState,
      books,
      ...(correlation === undefined
        ? {}
        : {
            correlation: (a: number, b: number) =>
              correlation((this.rows[a] as Row).symbol, (this.rows[b] as Row).symbol),
          }),
      ...(volatility === undefined
        ? {}
        : { volatility: (a: number) => volatility((this.rows[a] as Row).symbol) }),
      options,
      ...(drawdownAutoReset === undefined ? {} : { drawdownAutoReset }),
    });
    this.riskState = decisions.riskState;
    for (const { index, stop } of decisions.stops) {
      const row = this.rows[index] as Row;
      const p = (this.books[row.sleeve] as SleeveBook).positions.get(this.symbols[row.symbol] as string);
      if (p !== undefined) p.stop = stop;
    }
    const legs: SessionLeg[] = [];
    for (const { index, reason } of decisions.exits) {
      const row = this.rows[index] as Row;
      const symbol = this.symbols[row.symbol] as string;
      const p = (this.books[row.sleeve] as SleeveBook).positions.get(symbol);
      if (p === undefined) continue;
      legs.push({
        sleeve: row.sleeve,
        symbol,
        role: 'exit',
        side: p.side === 1 ? 'sell' : 'buy',
        qty: p.qty,
        ...(reason === undefined ? {} : { reason }),
      });
    }
    const skipped: (SkippedEntry & { sleeve: string })[] = [];
    // All-in entries are sized here, at the decision close, from the sleeve's buying power less the
    // cash buffer (a netted order needs every leg's quantity before the open).
    const powerLeft = books.map((b) => toCents(b.buyingPower));
    // An exit frees its value at the close: a long's proceeds, or a short's doubled margin less the cover.
    for (const { index } of decisions.exits) {
      const row = this.rows[index] as Row;
      const symbol = this.symbols[row.symbol] as string;
      const p = (this.books[row.sleeve] as SleeveBook).positions.get(symbol);
      if (p !== undefined) {
        powerLeft[row.sleeve] =
          (powerLeft[row.sleeve] as number) + notionalCents(p.qty, this.lastClose[row.symbol] as number);
      }
    }
    for (const entry of decisions.entries) {
      const row = this.rows[entry.index] as Row;
      const symbol = this.symbols[row.symbol] as string;
      const id = (this.sleeves[row.sleeve] as Sleeve).id;
      if ((entry.intent.order ?? { type: 'market' }).type !== 'market') {
        skipped.push({
          time,
          symbol,
          sleeve: id,
          reason: 'sleeves place market entries at the next open only',
        });
        continue;
      }
      let qty = entry.qty;
      if (Number.isNaN(qty)) {
        const room = Math.floor((powerLeft[row.sleeve] as number) * (1 - options.cashBuffer));
        qty = orderableQty(
          allInQty(room, entry.entryRef, options.commission, options.fractional),
          entry.entryRef,
          options.products?.[symbol],
        );
        if (!(qty > 0)) {
          skipped.push({
            time,
            symbol,
            sleeve: id,
            reason: 'no buying power in the sleeve',
            requestedQty: 0,
            placedQty: 0,
          });
          continue;
        }
      }
      powerLeft[row.sleeve] = (powerLeft[row.sleeve] as number) - notionalCents(qty, entry.entryRef);
      const side: 1 | -1 = entry.intent.side === 'long' ? 1 : -1;
      legs.push({
        sleeve: row.sleeve,
        symbol,
        role: 'entry',
        side: side === 1 ? 'buy' : 'sell',
        qty,
        reason: entry.intent.reason,
        entry: { side, entryRef: entry.entryRef, stopLoss: entry.stopLoss, takeProfit: entry.takeProfit },
      });
    }
    const withSleeve = <T extends { book?: number }>(list: readonly T[]) =>
      list.map(({ book, ...x }) => ({ ...x, sleeve: (this.sleeves[book ?? 0] as Sleeve).id }));
    return {
      legs,
      events: decisions.events,
      refused: withSleeve(decisions.refused),
      reduced: withSleeve(decisions.reduced),
      skipped: [...withSleeve(decisions.skipped), ...skipped],
      entryDecisions: withSleeve(decisions.entryDecisions),
      stopMoves: decisions.stops.length,
      heatPct: decisions.heatPct,
    };
  }

  /**
   * Books a net order's fill: the account ledger takes the broker order, each sleeve its leg at the
   * fill price. Returns the sleeves' closed trades.
   */
  bookNetFill(order: NetOrder, price: number, commission: Cents, time: number): SleeveTrade[] {
    if (order.side !== null) {
      this.account.fill(
        order.symbol,
        order.side === 'buy' ? order.qty : -order.qty,
        notionalCents(order.qty, price),
        commission,
      );
    }
    const fills = splitFill(order, price, commission, time);
    const trades: SleeveTrade[] = [];
    order.legs.forEach((leg, i) => {
      const book = this.books[leg.sleeve] as SleeveBook;
      const fill = fills[i] as LegFill;
      if (leg.role === 'entry') {
        const plan = leg.entry as NonNullable<SessionLeg['entry']>;
        book.open(leg.symbol, plan.side, fill, {
          stop: plan.stopLoss,
          takeProfit: plan.takeProfit,
          entryRef: plan.entryRef,
        });
      } else {
        trades.push(book.close(leg.symbol, fill, leg.role));
      }
    });
    return trades;
  }

  /** Books one sleeve's own protective order (its stop or take-profit) filled at the broker. */
  bookProtectiveFill(
    sleeve: number,
    symbol: string,
    price: number,
    time: number,
    reason: 'stop-loss' | 'take-profit',
  ): SleeveTrade {
    const book = this.books[sleeve] as SleeveBook;
    const p = book.positions.get(symbol);
    if (p === undefined)
      throw new SleeveLedgerError(`sleeve ${book.id}: a ${reason} fill in ${symbol} with no position`);
    const notional = notionalCents(p.qty, price);
    const commission = commissionCents(this.options.commission, p.qty, notional);
    this.account.fill(symbol, -p.side * p.qty, notional, commission);
    return book.close(symbol, { qty: p.qty, price, notional, commission, time }, reason);
  }

  /** Asserts the account equals the sum of the sleeves (positions per symbol and cash). */
  assertLedger(when: string): void {
    this.account.assertMatches(this.books, this.symbols, when);
  }

  /** Moves capital between sleeves (cents per sleeve, summing to zero); the account is unchanged. */
  transfer(amounts: readonly Cents[]): void {
    const sum = amounts.reduce((a, b) => a + b, 0);
    if (sum !== 0) throw new SleeveLedgerError(`a reallocation that does not sum to zero (${sum} cents)`);
    amounts.forEach((amount, k) => {
      const book = this.books[k] as SleeveBook;
      book.cash += amount;
      book.transfersIn += amount;
    });
  }
}
