/**
 * The close step of a sleeves account, shared by the sleeves backtest's time loop and the live signal
 * step: mark the sleeves at the close (time-weighted returns, NAV), reallocate the capital when the
 * schedule, the drift or a correlation cut says so, and keep what the allocator and the correlation
 * monitor read (the sleeves' daily returns). With the session's books it has a plain-JSON state
 * (`SleevesState`) that live persists between steps and restores: the same numbers, whichever
 * process runs the next close.
 */
import { SleeveLedgerError } from '../errors.js';
import { type Cents, notionalCents, toDollars } from '../ledger/money.js';
import { type AllocationInputs, targetWeights } from '../portfolio/allocator.js';
import type { SleevePosition } from '../portfolio/book.js';
import type { AllocationSettings, SleeveCorrelationSettings } from '../portfolio/config.js';
import { type CorrelationEvent, SleeveCorrelationMonitor } from '../portfolio/correlation.js';
import { isScheduledRebalance, maxDrift, rebalanceTransfers } from '../portfolio/rebalance.js';
import type { Sleeve } from '../portfolio/sleeves.js';
import type { TradingSession } from './session.js';

/** One reallocation, with what it was computed from. */
export interface AllocationEvent {
  readonly time: number;
  readonly reason: 'initial' | 'schedule' | 'drift' | 'correlation';
  /** Each sleeve's share of the account's equity before the move. */
  readonly before: readonly number[];
  readonly weights: readonly number[];
  /** Capital moved into each sleeve (negative: out), dollars; positions are never traded for it. */
  readonly transfers: readonly number[];
  readonly inputs: AllocationInputs;
}

/** One sleeve position as plain JSON (`null` for an absent stop or take-profit, a NaN initial risk). */
export interface SleevePositionState {
  readonly symbol: string;
  readonly side: 1 | -1;
  readonly qty: number;
  readonly entryPrice: number;
  readonly entryTime: number;
  readonly entryNotional: Cents;
  readonly entryCommission: Cents;
  readonly stop: number | null;
  readonly takeProfit: number | null;
  readonly entryRef: number;
  readonly initialRisk: number | null;
  readonly sessionsHeld: number;
}

/** One sleeve's book as plain JSON, money in integer cents. */
export interface SleeveBookState {
  readonly id: string;
  readonly initialCash: Cents;
  readonly cash: Cents;
  readonly transfersIn: Cents;
  readonly costs: Cents;
  readonly positions: readonly SleevePositionState[];
}

/** The allocation's memory between closes. */
export interface AllocationState {
  /** Closes marked so far (the first one is the initial allocation). */
  readonly closes: number;
  readonly weights: readonly number[];
  /** The sleeves' daily returns, oldest first (as many as the allocator and the monitor read). */
  readonly returnHistory: readonly (readonly number[])[];
  /** Each sleeve's equity after the last close's reallocation, cents: the base of the next return. */
  readonly prevEquity: readonly Cents[];
  /** Each sleeve's time-weighted NAV, dollars (starts at its initial capital). */
  readonly nav: readonly number[];
  /** Time (epoch ms) of the last close marked: the schedule compares the next one's month with it. */
  readonly lastCloseTime: number | null;
  /** Time of the last reallocation (null: none yet). */
  readonly lastRebalanceTime: number | null;
  /** Correlation breaches open (sleeve indices), with the weaker sleeve whose weight is cut. */
  readonly breaches: readonly { readonly a: number; readonly b: number; readonly weaker: number }[];
}

/** Everything a sleeves account carries from one close to the next, as plain JSON. */
export interface SleevesState {
  readonly sleeves: readonly string[];
  readonly books: readonly SleeveBookState[];
  /** The account as the broker sees it (the sum of the sleeves, checked at every close). */
  readonly account: {
    readonly cash: Cents;
    readonly positions: readonly { readonly symbol: string; readonly qty: number }[];
  };
  readonly allocation: AllocationState;
  /**
   * The splits applied to the books, by split key (`split:<symbol>:<date>`, its ratio): live
   * applies a split to a state once (a position opened on or after the split's day is in the new
   * shares already). Absent: none applied.
   */
  readonly splits?: Readonly<Record<string, number>>;
}

/** Returns kept in a persisted state: enough for the allocator's lookback and the monitor's window. */
export function historyToKeep(
  allocation: AllocationSettings,
  correlation?: SleeveCorrelationSettings,
): number {
  return Math.max(allocation.lookback, correlation?.window ?? 0, 1);
}

/**
 * The allocation side of the close: marks the sleeves, reallocates, remembers the returns. The
 * backtest calls `mark` then `settle` at every close; live restores it from a {@link AllocationState}.
 */
export class SleeveAllocation {
  readonly configured: readonly number[];
  private readonly bounds: readonly { min: number; max: number }[];
  readonly monitor: SleeveCorrelationMonitor | undefined;
  weights: number[];
  readonly returnHistory: number[][] = [];
  prevEquity: Cents[];
  nav: number[];
  closes = 0;
  lastCloseTime: number | null = null;
  lastRebalanceTime: number | null = null;
  readonly events: AllocationEvent[] = [];
  readonly correlationEvents: CorrelationEvent[] = [];

  constructor(
    readonly sleeves: readonly Sleeve[],
    readonly settings: AllocationSettings,
    readonly correlation: SleeveCorrelationSettings | undefined,
    initialCapital: readonly Cents[],
  ) {
    this.configured = sleeves.map((s) => s.weight);
    this.bounds = sleeves.map((s) => ({ min: s.minWeight, max: s.maxWeight }));
    this.monitor =
      correlation === undefined
        ? undefined
        : new SleeveCorrelationMonitor(
            sleeves.map((s) => s.id),
            correlation,
          );
    this.weights = [...this.configured];
    this.prevEquity = [...initialCapital];
    this.nav = initialCapital.map((c) => toDollars(c));
  }

  /**
   * Marks the sleeves at this close: each one's equity (cents) and its time-weighted return since the
   * previous close (capital moved at that close excluded); the NAVs move by the returns.
   */
  mark(session: TradingSession): { equity: Cents[]; returns: number[] } {
    const equity = session.books.map((b) => b.equity(session.mark));
    const returns = equity.map((e, s) => {
      const base = this.prevEquity[s] as number;
      return base > 0 ? e / base - 1 : 0;
    });
    returns.forEach((r, s) => {
      this.nav[s] = (this.nav[s] as number) * (1 + r);
    });
    return { equity, returns };
  }

  /**
   * After the mark: reallocates when due (not at the last close of a backtest), then remembers the
   * returns and the equity the next return is measured from. The weights at a close read the
   * sleeves' returns up to the previous close only.
   */
  settle(
    session: TradingSession,
    time: number,
    marked: { equity: readonly Cents[]; returns: readonly number[] },
    last = false,
  ): AllocationEvent | null {
    const { equity, returns } = marked;
    let event: AllocationEvent | null = null;
    if (!last) {
      const first = this.closes === 0;
      let reason: AllocationEvent['reason'] | null = null;
      if (first) reason = 'initial';
      else if (isScheduledRebalance(this.settings.rebalance, this.lastCloseTime as number, time))
        reason = 'schedule';
      else if (
        this.settings.driftThreshold !== undefined &&
        maxDrift(equity, this.weights) > this.settings.driftThreshold
      )
        reason = 'drift';
      if (this.monitor !== undefined && !first) {
        const check = this.monitor.check(time);
        this.correlationEvents.push(...check.events);
        if (check.changed && reason === null) reason = 'correlation';
      }
      if (reason !== null && (reason !== 'initial' || this.settings.method !== 'fixed'))
        event = this.reallocate(session, time, reason, equity);
    }
    this.returnHistory.push([...returns]);
    this.monitor?.push(returns);
    this.prevEquity = session.books.map((b) => b.equity(session.mark));
    this.lastCloseTime = time;
    this.closes++;
    return event;
  }

  private reallocate(
    session: TradingSession,
    time: number,
    reason: AllocationEvent['reason'],
    equity: readonly Cents[],
  ): AllocationEvent {
    const cuts = this.monitor?.cuts() ?? this.sleeves.map(() => 1);
    const target = targetWeights(this.settings, this.configured, this.bounds, this.returnHistory, cuts);
    const total = equity.reduce((a, b) => a + b, 0);
    const transfers = rebalanceTransfers(
      equity,
      session.books.map((b) => b.cash),
      target.weights,
    );
    session.transfer(transfers);
    this.weights = target.weights;
    this.lastRebalanceTime = time;
    const event: AllocationEvent = {
      time,
      reason,
      before: equity.map((e) => (total > 0 ? e / total : 0)),
      weights: target.weights,
      transfers: transfers.map((t) => toDollars(t) || 0),
      inputs: target.inputs,
    };
    this.events.push(event);
    return event;
  }

  /** The allocation's state as plain JSON, the return history cut to what the next closes read. */
  toState(): AllocationState {
    const keep = historyToKeep(this.settings, this.correlation);
    return {
      closes: this.closes,
      weights: [...this.weights],
      returnHistory: this.returnHistory
        .slice(Math.max(0, this.returnHistory.length - keep))
        .map((r) => [...r]),
      prevEquity: [...this.prevEquity],
      nav: [...this.nav],
      lastCloseTime: this.lastCloseTime,
      lastRebalanceTime: this.lastRebalanceTime,
      breaches: this.monitor?.openBreaches() ?? [],
    };
  }

  /** Restores a state written by {@link toState} (the monitor re-reads the kept returns). */
  restore(state: AllocationState): void {
    const n = this.sleeves.length;
    const sized = (list: readonly unknown[], what: string) => {
      if (list.length !== n)
        throw new SleeveLedgerError(`sleeves state: ${what} has ${list.length} entries for ${n} sleeves`);
    };
    sized(state.weights, 'allocation.weights');
    sized(state.prevEquity, 'allocation.prevEquity');
    sized(state.nav, 'allocation.nav');
    this.closes = state.closes;
    this.weights = [...state.weights];
    this.returnHistory.length = 0;
    for (const r of state.returnHistory) {
      sized(r, 'allocation.returnHistory');
      this.returnHistory.push([...r]);
      this.monitor?.push(r);
    }
    this.prevEquity = [...state.prevEquity];
    this.nav = [...state.nav];
    this.lastCloseTime = state.lastCloseTime;
    this.lastRebalanceTime = state.lastRebalanceTime;
    this.monitor?.restoreBreaches(state.breaches);
  }
}

const positionState = (symbol: string, p: SleevePosition): SleevePositionState => ({
  symbol,
  side: p.side,
  qty: p.qty,
  entryPrice: p.entryPrice,
  entryTime: p.entryTime,
  entryNotional: p.entryNotional,
  entryCommission: p.entryCommission,
  stop: p.stop ?? null,
  takeProfit: p.takeProfit ?? null,
  entryRef: p.entryRef,
  initialRisk: Number.isNaN(p.initialRisk) ? null : p.initialRisk,
  sessionsHeld: p.sessionsHeld,
});

/** The session's books and account ledger, with the allocation, as plain JSON. */
export function sleevesState(session: TradingSession, allocation: SleeveAllocation): SleevesState {
  return {
    sleeves: session.sleeves.map((s) => s.id),
    books: session.books.map((b) => ({
      id: b.id,
      initialCash: b.initialCash,
      cash: b.cash,
      transfersIn: b.transfersIn,
      costs: b.costs,
      positions: [...b.positions].map(([symbol, p]) => positionState(symbol, p)),
    })),
    account: {
      cash: session.account.cash,
      positions: [...session.account.positions].map(([symbol, qty]) => ({ symbol, qty })),
    },
    allocation: allocation.toState(),
  };
}

/**
 * Puts a state's books and account into a fresh session (built with the state's initial capital) and
 * its allocation into `allocation`. The sleeves must be the state's, in its order.
 */
export function restoreSleevesState(
  session: TradingSession,
  allocation: SleeveAllocation,
  state: SleevesState,
): void {
  const ids = session.sleeves.map((s) => s.id);
  if (ids.join(',') !== state.sleeves.join(',')) {
    throw new SleeveLedgerError(
      `sleeves state: written for sleeves ${state.sleeves.join(', ')}, the config has ${ids.join(', ')}`,
    );
  }
  state.books.forEach((saved, k) => {
    const book = session.books[k];
    if (book === undefined || book.id !== saved.id)
      throw new SleeveLedgerError(`sleeves state: book ${k} is ${saved.id}, not ${book?.id}`);
    book.cash = saved.cash;
    book.transfersIn = saved.transfersIn;
    book.costs = saved.costs;
    book.positions.clear();
    for (const p of saved.positions) {
      book.positions.set(p.symbol, {
        side: p.side,
        qty: p.qty,
        entryPrice: p.entryPrice,
        entryTime: p.entryTime,
        entryNotional: p.entryNotional,
        entryCommission: p.entryCommission,
        stop: p.stop ?? undefined,
        takeProfit: p.takeProfit ?? undefined,
        entryRef: p.entryRef,
        initialRisk: p.initialRisk ?? Number.NaN,
        sessionsHeld: p.sessionsHeld,
      });
    }
  });
  session.account.cash = state.account.cash;
  session.account.positions.clear();
  for (const { symbol, qty } of state.account.positions) session.account.positions.set(symbol, qty);
  allocation.restore(state.allocation);
}

/** Per symbol, the sum of the sleeves' signed quantities (what the broker should hold). */
export function sleevesPositionsBySymbol(state: Pick<SleevesState, 'books'>): Map<string, number> {
  const sums = new Map<string, number>();
  for (const book of state.books)
    for (const p of book.positions)
      sums.set(p.symbol, Math.round(((sums.get(p.symbol) ?? 0) + p.side * p.qty) * 1e6) / 1e6);
  return sums;
}

/**
 * An operator's assignment of UNASSIGNED shares to a sleeve (`quantshift reconcile --assign`) in the
 * sleeves' ledger: the shares join the sleeve's position in `symbol` (a new one, or added at the
 * averaged entry price) and the sleeve's cash pays their notional, as the account's cash paid for
 * them when they were bought outside; the account ledger takes the shares. So the sleeves still
 * add up to the account to the cent. A negative `qty` (shares sold outside, charged to the sleeve)
 * takes them out of the position and credits the proceeds.
 */
export function assignToSleeve(
  state: SleevesState,
  request: {
    readonly sleeve: string;
    readonly symbol: string;
    readonly qty: number;
    /** Price per share the assigned shares are booked at (the bucket's average). */
    readonly price: number;
    readonly stop: number | null;
    readonly time: number;
  },
): SleevesState {
  const { sleeve, symbol, qty, price } = request;
  if (!(Number.isFinite(qty) && qty !== 0))
    throw new SleeveLedgerError(`assign ${symbol}: the quantity ${qty} is not a non-zero number`);
  if (!(Number.isFinite(price) && price > 0))
    throw new SleeveLedgerError(`assign ${symbol}: the price ${price} is not a positive number`);
  const k = state.books.findIndex((b) => b.id === sleeve);
  if (k < 0) throw new SleeveLedgerError(`assign ${symbol}: no sleeve ${sleeve} in the ledger`);
  const book = state.books[k] as SleeveBookState;
  const notional = notionalCents(Math.abs(qty), price);
  const current = book.positions.find((p) => p.symbol === symbol);
  const after = (current === undefined ? 0 : current.side * current.qty) + qty;
  if (current !== undefined && after !== 0 && Math.sign(after) !== current.side)
    throw new SleeveLedgerError(`assign ${symbol}: ${qty} would turn sleeve ${sleeve}'s position over`);
  if (current === undefined && qty < 0)
    throw new SleeveLedgerError(`assign ${symbol}: sleeve ${sleeve} holds none to take ${-qty} from`);
  let positions = book.positions.filter((p) => p.symbol !== symbol);
  if (after !== 0) {
    const held = current?.qty ?? 0;
    const added = Math.abs(after) - held;
    positions = [
      ...positions,
      current === undefined
        ? {
            symbol,
            side: after > 0 ? 1 : -1,
            qty: Math.abs(after),
            entryPrice: price,
            entryTime: request.time,
            entryNotional: notional,
            entryCommission: 0,
            stop: request.stop,
            takeProfit: null,
            entryRef: price,
            initialRisk: request.stop === null ? null : Math.abs(price - request.stop),
            sessionsHeld: 0,
          }
        : {
            ...current,
            qty: Math.abs(after),
            entryPrice:
              added > 0 ? (held * current.entryPrice + added * price) / Math.abs(after) : current.entryPrice,
            entryNotional:
              added > 0
                ? current.entryNotional + notional
                : Math.round((current.entryNotional * Math.abs(after)) / held),
            stop: request.stop ?? current.stop,
          },
    ];
  }
  const cash = book.cash - Math.sign(qty) * notional;
  const accountQty = (state.account.positions.find((p) => p.symbol === symbol)?.qty ?? 0) + qty;
  return {
    ...state,
    books: state.books.map((b, i) => (i === k ? { ...book, cash, positions } : b)),
    account: {
      cash: state.account.cash - Math.sign(qty) * notional,
      positions: [
        ...state.account.positions.filter((p) => p.symbol !== symbol),
        ...(accountQty === 0 ? [] : [{ symbol, qty: accountQty }]),
      ],
    },
  };
}
