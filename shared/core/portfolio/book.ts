import type { TradeRecord } from '../backtest/types.js';
import { SleeveLedgerError } from '../errors.js';
import { type Cents, notionalCents, toDollars } from '../ledger/money.js';

/** A sleeve's position in one symbol. Cash flows are the sleeve's own legs, in cents. */
export interface SleevePosition {
  readonly side: 1 | -1;
  readonly qty: number;
  readonly entryPrice: number;
  readonly entryTime: number;
  readonly entryNotional: Cents;
  readonly entryCommission: Cents;
  /** The protective stop in force (moved by stop management), if any. */
  stop: number | undefined;
  readonly takeProfit: number | undefined;
  /** The decision close the entry was sized at. */
  readonly entryRef: number;
  /** Distance from `entryRef` to the initial stop (one R); NaN without a stop. */
  readonly initialRisk: number;
  sessionsHeld: number;
}

/** A round trip of one sleeve. */
export interface SleeveTrade extends TradeRecord {
  readonly sleeve: string;
}

/** One leg of a fill as booked to a sleeve: its share of the notional and of the commission, in cents. */
export interface LegFill {
  readonly qty: number;
  readonly price: number;
  readonly notional: Cents;
  readonly commission: Cents;
  readonly time: number;
}

/**
 * One sleeve's ledger: its cash, its positions per symbol, its closed trades. The sleeve's ledger is
 * the truth; the account's positions are the sum of the sleeves'. A sleeve only ever closes what it
 * holds (whole positions), so it can never sell more than it owns.
 */
export class SleeveBook {
  cash: Cents;
  readonly positions = new Map<string, SleevePosition>();
  readonly trades: SleeveTrade[] = [];
  /** Net P&L of the closed trades, dollars, oldest first (for the Kelly cap). */
  readonly closedPnls: number[] = [];
  /** Capital moved in (negative: out) by reallocations, cents. */
  transfersIn: Cents = 0;
  /** Commissions paid, cents. */
  costs: Cents = 0;
  readonly initialCash: Cents;

  constructor(
    readonly id: string,
    readonly strategy: string,
    initialCash: Cents,
  ) {
    this.cash = initialCash;
    this.initialCash = initialCash;
  }

  /** Signed quantity held in a symbol (0 when flat). */
  signedQty(symbol: string): number {
    const p = this.positions.get(symbol);
    return p === undefined ? 0 : p.side * p.qty;
  }

  /** Cash less twice the short value (short proceeds are not spendable), cents. */
  buyingPower(markOf: (symbol: string) => number): Cents {
    let bp = this.cash;
    for (const [symbol, p] of this.positions) {
      if (p.side === -1) bp -= 2 * notionalCents(p.qty, markOf(symbol));
    }
    return bp;
  }

  /** Cash plus positions marked at `markOf`, cents. */
  equity(markOf: (symbol: string) => number): Cents {
    let value = this.cash;
    for (const [symbol, p] of this.positions) value += p.side * notionalCents(p.qty, markOf(symbol));
    return value;
  }

  /** Books an entry leg. */
  open(
    symbol: string,
    side: 1 | -1,
    fill: LegFill,
    plan: { stop: number | undefined; takeProfit: number | undefined; entryRef: number },
  ): void {
    if (this.positions.has(symbol)) {
      throw new SleeveLedgerError(`sleeve ${this.id}: entry in ${symbol} while a position is open`);
    }
    this.cash += side === 1 ? -fill.notional - fill.commission : fill.notional - fill.commission;
    this.costs += fill.commission;
    this.positions.set(symbol, {
      side,
      qty: fill.qty,
      entryPrice: fill.price,
      entryTime: fill.time,
      entryNotional: fill.notional,
      entryCommission: fill.commission,
      stop: plan.stop,
      takeProfit: plan.takeProfit,
      entryRef: plan.entryRef,
      initialRisk: plan.stop === undefined ? Number.NaN : Math.abs(plan.entryRef - plan.stop),
      sessionsHeld: 0,
    });
  }

  /** Books an exit leg: the whole position, never more. Returns the trade. */
  close(symbol: string, fill: LegFill, reason: TradeRecord['exitReason']): SleeveTrade {
    const p = this.positions.get(symbol);
    if (p === undefined || fill.qty !== p.qty) {
      throw new SleeveLedgerError(
        `sleeve ${this.id}: exit of ${fill.qty} ${symbol} but it holds ${p === undefined ? 0 : p.qty}`,
      );
    }
    this.cash += p.side === 1 ? fill.notional - fill.commission : -fill.notional - fill.commission;
    this.costs += fill.commission;
    const pnl = p.side * (fill.notional - p.entryNotional) - p.entryCommission - fill.commission;
    const trade: SleeveTrade = {
      sleeve: this.id,
      symbol,
      direction: p.side === 1 ? 'long' : 'short',
      qty: p.qty,
      entryTime: p.entryTime,
      entryPrice: p.entryPrice,
      exitTime: fill.time,
      exitPrice: fill.price,
      pnl: toDollars(pnl),
      commission: toDollars(p.entryCommission + fill.commission),
      exitReason: reason,
    };
    this.trades.push(trade);
    this.closedPnls.push(trade.pnl);
    this.positions.delete(symbol);
    return trade;
  }

  /** Open positions as trades marked at `markOf` (for `endOfData: hold`). */
  openTrades(markOf: (symbol: string) => number): SleeveTrade[] {
    return [...this.positions].map(([symbol, p]) => ({
      sleeve: this.id,
      symbol,
      direction: p.side === 1 ? 'long' : 'short',
      qty: p.qty,
      entryTime: p.entryTime,
      entryPrice: p.entryPrice,
      exitTime: null,
      exitPrice: null,
      pnl: toDollars(p.side * (notionalCents(p.qty, markOf(symbol)) - p.entryNotional) - p.entryCommission),
      commission: toDollars(p.entryCommission),
      exitReason: null,
    }));
  }
}

/**
 * The account as the broker sees it: one net position per symbol and one cash balance, moved only by
 * broker fills (net orders and protective orders). Checked against the sleeves at every close.
 */
export class AccountLedger {
  readonly positions = new Map<string, number>();

  constructor(public cash: Cents) {}

  /** A broker fill: `qty` signed (+ buy, − sell), notional and commission in cents. */
  fill(symbol: string, signedQty: number, notional: Cents, commission: Cents): void {
    this.cash += (signedQty > 0 ? -notional : notional) - commission;
    const next = roundQty((this.positions.get(symbol) ?? 0) + signedQty);
    if (next === 0) this.positions.delete(symbol);
    else this.positions.set(symbol, next);
  }

  /**
   * Asserts that every symbol's position and the cash equal the sums over the sleeves.
   * A difference is a {@link SleeveLedgerError}, never assigned to a sleeve.
   */
  assertMatches(books: readonly SleeveBook[], symbols: readonly string[], when: string): void {
    for (const symbol of symbols) {
      let sum = 0;
      for (const b of books) sum += b.signedQty(symbol);
      const held = this.positions.get(symbol) ?? 0;
      if (roundQty(sum) !== held) {
        throw new SleeveLedgerError(
          `${when}: the account holds ${held} ${symbol} but the sleeves hold ${roundQty(sum)} (UNASSIGNED ${roundQty(held - sum)})`,
        );
      }
    }
    let cash = 0;
    for (const b of books) cash += b.cash;
    if (cash !== this.cash) {
      throw new SleeveLedgerError(
        `${when}: the account's cash is ${toDollars(this.cash)} but the sleeves' sum is ${toDollars(cash)}`,
      );
    }
  }
}

/** Quantities to the 1e-6 share step (fractional trading), so sums compare exactly. */
export function roundQty(qty: number): number {
  return Math.round(qty * 1e6) / 1e6;
}
