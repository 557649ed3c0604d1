import type {
  BacktestOptions,
  EntryDecision,
  ReducedEntry,
  RefusedEntry,
  SkippedEntry,
} from '../backtest/types.js';
import { awayFromMarket } from '../live/order-style.js';
import {
  type BreakerEvent,
  entryBlock,
  type HeatPosition,
  type KellySums,
  kellyEstimate,
  manageStop,
  observeEquity,
  positionHeat,
  type RiskSizingInput,
  type RiskState,
  sizeEntryWithRisk,
} from '../risk/index.js';
import { productQuantity } from '../sizing/increments.js';
import { floorQty, positionCapQty, type SizingInput, sizeAtDecision } from '../sizing/index.js';
import type { EnterIntent, Intent } from '../strategies/types.js';

/** A position as the close-of-day decision sees it (the backtest's book, or live positions as reconciled). */
export interface HeldPosition {
  readonly side: 1 | -1;
  readonly qty: number;
  readonly entryPrice: number;
  /** The decision close the entry was sized at. */
  readonly entryRef: number;
  /** Distance from `entryRef` to the initial stop (one R); NaN without a stop. */
  readonly initialRisk: number;
  /** The protective stop in force, if any. */
  readonly stop: number | undefined;
  /** Sessions since the entry, this one included. */
  readonly sessionsHeld: number;
}

/** One symbol at a close: its bar, its risk ATR, the strategy's intent and the position. */
export interface SymbolAtClose {
  readonly symbol: string;
  /** Whether the symbol has a bar at this close (stops are managed only then). */
  readonly hasBar: boolean;
  readonly close: number;
  /** ATR for the risk rules' default stops and trailing (NaN when not known). */
  readonly atr: number;
  readonly intent: Intent;
  readonly position: HeldPosition | undefined;
  /** The book (sleeve) this row belongs to, an index into `books`; absent: the account's own. */
  readonly book?: number;
}

/**
 * A sleeve's book at the close: sizing and Kelly are per sleeve (its equity, its trades, its sizing
 * and per-trade risk overrides); buying power is capped by the sleeve's cash and the account's.
 */
export interface BookAtClose {
  readonly equity: number;
  readonly buyingPower: number;
  /** Net P&L of the sleeve's closed trades, oldest first. */
  readonly closedPnls: readonly number[];
  readonly sizing?: BacktestOptions['sizing'];
  readonly risk?: {
    readonly riskPerTrade?: number;
    readonly maxPositionFraction?: number;
    readonly kellyFraction?: number;
  };
}

/** Everything the decision at a close depends on. */
export interface CloseDecisionInput {
  readonly time: number;
  /** Trading day `YYYY-MM-DD` (for the daily-loss breaker). */
  readonly day: string;
  readonly equity: number;
  readonly buyingPower: number;
  readonly symbols: readonly SymbolAtClose[];
  /** Net P&L of the strategy's closed trades, oldest first (for the Kelly cap). */
  readonly closedPnls: readonly number[];
  /**
   * The running sums of `closedPnls` (`KellySums`), when the caller keeps them in step with it:
   * the Kelly estimate then skips its loop while its window holds every trade. Same result.
   */
  readonly closedPnlSums?: KellySums;
  readonly riskState: RiskState;
  /**
   * Sleeves: rows with a `book` are sized in that book. Breakers, heat, the cash buffer and the
   * account's buying power stay account-wide (`equity`, `buyingPower`).
   */
  readonly books?: readonly BookAtClose[];
  /** ρ of the daily returns of symbols a and b (indices into `symbols`), NaN when unknown. */
  readonly correlation?: (a: number, b: number) => number;
  /** Annualised volatility of symbol a's daily returns (NaN when unknown), for the volatility cap. */
  readonly volatility?: (a: number) => number;
  readonly options: Pick<
    BacktestOptions,
    'sizing' | 'fractional' | 'cashBuffer' | 'maxPositionFraction' | 'risk' | 'products'
  >;
  /**
   * Backtests only: reset a drawdown halt automatically after this many sessions (standing in for
   * the manual reset live trading requires).
   */
  readonly drawdownAutoReset?: { readonly sessions: number; readonly by: string };
  /**
   * Whether to build the records that explain the entries (`refused`, `reduced`, `skipped`,
   * `entryDecisions`, and the reductions' wording); default true. A parameter sweep, which reads
   * only the decisions, passes false: the decisions are the same, their explanations are left empty.
   */
  readonly explain?: boolean;
}

/** An entry to place for the next session. `qty` is NaN for all-in (sized at the fill). */
export interface PlannedEntry {
  readonly index: number;
  readonly intent: EnterIntent;
  readonly qty: number;
  readonly entryRef: number;
  readonly stopLoss: number | undefined;
  readonly takeProfit: number | undefined;
}

/** What to do at this close, and why. */
export interface CloseDecisions {
  readonly riskState: RiskState;
  readonly events: readonly BreakerEvent[];
  /** Protective stops that move (index into `symbols`, new level). */
  readonly stops: readonly { readonly index: number; readonly stop: number }[];
  /** Positions to close at the next open, in decision order. */
  readonly exits: readonly { readonly index: number; readonly reason: string | undefined }[];
  readonly entries: readonly PlannedEntry[];
  readonly refused: readonly RefusedEntry[];
  readonly reduced: readonly ReducedEntry[];
  readonly skipped: readonly SkippedEntry[];
  readonly entryDecisions: readonly EntryDecision[];
  /** Heat after these decisions, percent of equity (0 without risk rules). */
  readonly heatPct: number;
}

const sideName = (side: 1 | -1) => (side === 1 ? 'long' : 'short');

/** The shared empty list of a decision with nothing of that kind (frozen: never written). */
const NONE: readonly never[] = Object.freeze([]);

/** `item` added to `list`, which is created on the first item. */
function append<T>(list: T[] | undefined, item: T): T[] {
  if (list === undefined) return [item];
  list.push(item);
  return list;
}

/** A writable view of an input type (for the scratch inputs below). */
type Writable<T> = { -readonly [K in keyof T]: T[K] };

/**
 * The inputs `enter` passes to `sizeAtDecision` and `sizeEntryWithRisk`, one object each, filled
 * anew at every call: both functions read their input and keep no reference to it, and nothing
 * runs between the filling and the call, so one object serves every entry (a sweep decides an entry
 * a few dozen times per combination; these two objects and their boxed numbers were about a sixth
 * of its garbage). Every field is written at every call, so no value leaks from one entry to the next.
 */
const sizingScratch: Writable<SizingInput> = {
  equity: 0,
  price: 0,
  stopLoss: undefined,
  fractional: false,
};
const riskSizingScratch: Writable<RiskSizingInput> = {
  requestedQty: 0,
  side: 1,
  price: 0,
  stop: 0,
  equity: 0,
  openHeat: 0,
  kelly: null,
  correlation: null,
  fractional: false,
  annualVolatility: undefined,
  heatEquity: undefined,
  explain: true,
};

/** An entry decided at this close, as the heat and the correlation check see it. */
interface DecidedEntry extends HeatPosition {
  readonly index: number;
}

/**
 * A protective stop of a product (a crypto config's `products:`) as the exchange's stop order
 * carries it: in whole cents, rounded away from the market (a long's stop down, a short's up), so
 * the backtest's stop is the live stop-limit's stop price to the cent (`awayFromMarket`, the live
 * steps' rounding). Equities keep the unrounded level.
 */
export function productStop(stop: number, side: 1 | -1): number {
  return awayFromMarket(stop, side === 1 ? 'sell' : 'buy');
}

/**
 * The decision at a close, shared by the backtest engine and the live functions: breakers, stop
 * management, exits, then entries sized by the sizing mode and the risk rules, capped by buying
 * power less the cash buffer. Pure: the caller applies the result to its book or its broker.
 * Allocation-light (a sweep calls it at every entry): lists are created only when something goes
 * in them, and the explanation records only when `explain` is not false.
 */
export function decideAtClose(input: CloseDecisionInput): CloseDecisions {
  return new CloseDecider(input).decide();
}

/** One call of `decideAtClose`: its running state as fields (no per-call closures). */
class CloseDecider {
  private readonly rules: CloseDecisionInput['options']['risk'];
  private readonly explain: boolean;
  private power: number;
  private bookPowers: number[] | undefined;
  private exiting: Set<number> | undefined;
  private stopOf: Map<number, number> | undefined;
  private decided: DecidedEntry[] | undefined;
  private kelly: number | null | undefined;
  private bookKelly: (number | null)[] | undefined;
  private stops: { index: number; stop: number }[] | undefined;
  private exits: { index: number; reason: string | undefined }[] | undefined;
  private entries: PlannedEntry[] | undefined;
  private refused: RefusedEntry[] | undefined;
  private reduced: ReducedEntry[] | undefined;
  private skipped: SkippedEntry[] | undefined;
  private entryDecisions: EntryDecision[] | undefined;

  constructor(private readonly input: CloseDecisionInput) {
    this.rules = input.options.risk;
    this.explain = input.explain !== false;
    this.power = input.buyingPower;
  }

  /** Each book's buying power left at this close, made when a row with a book first reads it. */
  private get bookPower(): number[] {
    this.bookPowers ??= this.input.books === undefined ? [] : this.input.books.map((b) => b.buyingPower);
    return this.bookPowers;
  }

  decide(): CloseDecisions {
    const { time, day, equity, symbols, options } = this.input;
    const rules = this.rules;
    let riskState = this.input.riskState;
    let events: readonly BreakerEvent[] = NONE;
    let blocked: string | null = null;
    if (rules !== undefined) {
      const observed = observeEquity(riskState, rules, time, day, equity, this.input.drawdownAutoReset);
      riskState = observed.state;
      events = observed.events;
      let flatten = false;
      if (rules.flattenOnDailyLoss) {
        for (const e of observed.events) if (e.breaker === 'daily-loss') flatten = true;
      }
      for (let index = 0; index < symbols.length; index++) {
        const s = symbols[index] as SymbolAtClose;
        const position = s.position;
        if (position === undefined || !s.hasBar) continue;
        if (flatten) {
          this.exit(index, 'daily loss breaker: flatten');
          continue;
        }
        const update = manageStop(
          {
            side: position.side,
            entryPrice: position.entryPrice,
            initialRisk: position.initialRisk,
            stop: position.stop ?? Number.NaN,
            sessionsHeld: position.sessionsHeld,
          },
          s.close,
          s.atr,
          rules.stops,
        );
        // A product's stop is in whole cents, as the exchange's stop order is sent (`productStop`).
        const moved =
          options.products?.[s.symbol] === undefined ? update.stop : productStop(update.stop, position.side);
        if (position.stop !== undefined && moved !== position.stop) {
          this.stops = append(this.stops, { index, stop: moved });
          this.stopOf ??= new Map();
          this.stopOf.set(index, moved);
        }
        if (update.exit !== null) this.exit(index, update.exit);
      }
      blocked = entryBlock(riskState, day);
    }

    for (let index = 0; index < symbols.length; index++) {
      const s = symbols[index] as SymbolAtClose;
      const intent = s.intent;
      if (s.position === undefined) continue;
      if (
        intent.action === 'exit' ||
        (intent.action === 'enter' && sideName(s.position.side) !== intent.side)
      ) {
        this.exit(index);
      }
    }

    for (let index = 0; index < symbols.length; index++) {
      const s = symbols[index] as SymbolAtClose;
      if (s.intent.action === 'enter') this.enter(index, s, s.intent, blocked);
    }

    const heatPct = rules === undefined || !(equity > 0) ? 0 : (this.heat() / equity) * 100;
    return {
      riskState,
      events,
      stops: this.stops ?? NONE,
      exits: this.exits ?? NONE,
      entries: this.entries ?? NONE,
      refused: this.refused ?? NONE,
      reduced: this.reduced ?? NONE,
      skipped: this.skipped ?? NONE,
      entryDecisions: this.entryDecisions ?? NONE,
      heatPct,
    };
  }

  private exit(index: number, reason?: string): void {
    if (this.exiting?.has(index)) return;
    const s = this.input.symbols[index] as SymbolAtClose;
    const position = s.position as HeldPosition;
    this.exiting ??= new Set();
    this.exiting.add(index);
    this.exits = append(this.exits, { index, reason });
    this.power += position.qty * s.close;
    if (s.book !== undefined) {
      this.bookPower[s.book] = (this.bookPower[s.book] as number) + position.qty * s.close;
    }
  }

  /**
   * Heat in dollars: the held positions that stay (symbol order, at their stop after this close's
   * moves), then the entries decided so far (decision order), as `portfolioHeat` sums them.
   */
  private heat(): number {
    const symbols = this.input.symbols;
    let heat = 0;
    for (let index = 0; index < symbols.length; index++) {
      const p = (symbols[index] as SymbolAtClose).position;
      if (p === undefined || this.exiting?.has(index)) continue;
      const stop = this.stopOf?.has(index) ? this.stopOf.get(index) : p.stop;
      if (stop === undefined) continue;
      heat += positionHeat(p.side, p.qty, p.entryRef, stop);
    }
    if (this.decided !== undefined) {
      for (const d of this.decided) heat += positionHeat(d.side, d.qty, d.entryRef, d.stop);
    }
    return heat;
  }

  /** The open position (or entry decided at this close) most correlated with symbol `me`. */
  private strongestCorrelation(me: number): { symbol: string; rho: number } | null {
    const correlation = this.input.correlation;
    if (correlation === undefined) return null;
    const symbols = this.input.symbols;
    let best: { symbol: string; rho: number } | null = null;
    for (let index = 0; index < symbols.length; index++) {
      if (index === me) continue;
      const other = symbols[index] as SymbolAtClose;
      const held =
        (other.position !== undefined && !this.exiting?.has(index)) ||
        this.decided?.some((d) => d.index === index) === true;
      if (!held) continue;
      const rho = correlation(me, index);
      if (!Number.isNaN(rho) && (best === null || Math.abs(rho) > Math.abs(best.rho))) {
        best = { symbol: other.symbol, rho };
      }
    }
    return best;
  }

  private kellyOf(book: number | undefined): number | null {
    const rules = this.rules;
    if (rules === undefined) return null;
    if (book === undefined) {
      if (this.kelly === undefined) {
        this.kelly = kellyEstimate(
          this.input.closedPnls,
          rules.kellyWindow,
          rules.kellyMinTrades,
          this.input.closedPnlSums,
        );
      }
      return this.kelly;
    }
    const books = this.input.books ?? NONE;
    this.bookKelly ??= new Array<number | null>(books.length);
    let kelly = this.bookKelly[book];
    if (kelly === undefined) {
      const b = books[book];
      kelly = b === undefined ? null : kellyEstimate(b.closedPnls, rules.kellyWindow, rules.kellyMinTrades);
      this.bookKelly[book] = kelly;
    }
    return kelly;
  }

  private refuse(s: SymbolAtClose, reason: string): void {
    if (!this.explain) return;
    const time = this.input.time;
    this.refused = append(
      this.refused,
      s.book === undefined
        ? { time, symbol: s.symbol, reason }
        : { time, symbol: s.symbol, reason, book: s.book },
    );
  }

  private skip(s: SymbolAtClose, reason: string, requestedQty: number, placedQty: number): void {
    if (!this.explain) return;
    const entry: SkippedEntry = { time: this.input.time, symbol: s.symbol, reason, requestedQty, placedQty };
    this.skipped = append(this.skipped, s.book === undefined ? entry : { ...entry, book: s.book });
  }

  private enter(index: number, s: SymbolAtClose, intent: EnterIntent, blocked: string | null): void {
    if (s.position !== undefined && !this.exiting?.has(index)) return;
    const { time, equity, options } = this.input;
    const rules = this.rules;
    const price = s.close;
    const side: 1 | -1 = intent.side === 'long' ? 1 : -1;
    if (blocked !== null) {
      this.refuse(s, blocked);
      return;
    }
    let stopLoss = intent.stopLoss;
    let takeProfit = intent.takeProfit;
    if (rules !== undefined) {
      if (stopLoss === undefined && s.atr > 0) stopLoss = price - side * rules.stops.initialAtr * s.atr;
      if (stopLoss !== undefined && options.products?.[s.symbol] !== undefined) {
        stopLoss = productStop(stopLoss, side);
      }
      if (stopLoss === undefined || !(stopLoss > 0)) {
        this.refuse(s, 'no stop: the ATR for the default stop is still warming up');
        return;
      }
      if (takeProfit === undefined && rules.stops.takeProfitR !== undefined) {
        takeProfit = price + side * rules.stops.takeProfitR * Math.abs(price - stopLoss);
      }
    }
    const book = s.book === undefined ? undefined : this.input.books?.[s.book];
    const sizingEquity = book?.equity ?? equity;
    const sizing = sizingScratch;
    sizing.equity = sizingEquity;
    sizing.price = price;
    sizing.stopLoss = stopLoss;
    sizing.fractional = options.fractional;
    const sized = sizeAtDecision(book?.sizing ?? options.sizing, sizing);
    let qty = sized.qty;
    if (rules !== undefined && stopLoss !== undefined) {
      const volatility = this.input.volatility;
      // The calls that fill it (heat, Kelly, correlation, volatility) run before the scratch is written.
      const openHeat = this.heat();
      const kelly = this.kellyOf(s.book);
      const correlation = this.strongestCorrelation(index);
      const annualVolatility = volatility === undefined ? undefined : volatility(index);
      const risk = riskSizingScratch;
      risk.requestedQty = qty;
      risk.side = side;
      risk.price = price;
      risk.stop = stopLoss;
      risk.equity = sizingEquity;
      risk.openHeat = openHeat;
      risk.kelly = kelly;
      risk.correlation = correlation;
      risk.fractional = options.fractional;
      risk.annualVolatility = annualVolatility;
      risk.heatEquity = book === undefined ? undefined : equity;
      risk.explain = this.explain;
      const risked = sizeEntryWithRisk(risk, book?.risk === undefined ? rules : { ...rules, ...book.risk });
      if (risked.refused !== null) {
        this.refuse(s, risked.refused);
        return;
      }
      if (this.explain && risked.reductions.length > 0) {
        const entry: ReducedEntry = {
          time,
          symbol: s.symbol,
          requestedQty: qty,
          qty: risked.qty,
          reasons: risked.reductions,
        };
        this.reduced = append(this.reduced, s.book === undefined ? entry : { ...entry, book: s.book });
      }
      qty = risked.qty;
    }
    if (!Number.isNaN(qty)) {
      const requested = qty;
      if (rules === undefined && options.maxPositionFraction !== undefined) {
        const fraction = book?.risk?.maxPositionFraction ?? options.maxPositionFraction;
        qty = Math.min(qty, positionCapQty(fraction, sizingEquity, price, options.fractional));
      }
      const room = s.book === undefined ? this.power : Math.min(this.power, this.bookPower[s.book] as number);
      qty = Math.min(qty, floorQty((room * (1 - options.cashBuffer)) / price, options.fractional));
      if (!(qty > 0)) {
        this.skip(s, sized.reason ?? 'size rounds to zero under the caps', requested, 0);
        return;
      }
      if (qty < requested) this.skip(s, 'reduced by the position cap or buying power', requested, qty);
      const product = options.products?.[s.symbol];
      if (product !== undefined) {
        // The product's base increment and minimums (`orderableQty`), after every cap.
        const orderable = productQuantity(qty, price, product);
        if (orderable.refusal !== null) {
          if (this.explain) this.skip(s, `${orderable.refusal}: ${orderable.message}`, requested, 0);
          return;
        }
        qty = orderable.qty;
      }
      this.power -= qty * price;
      if (s.book !== undefined) this.bookPower[s.book] = (this.bookPower[s.book] as number) - qty * price;
    }
    if (rules !== undefined && stopLoss !== undefined) {
      this.decided = append(this.decided, { index, side, qty, entryRef: price, stop: stopLoss });
      if (this.explain) {
        const decision: EntryDecision = {
          time,
          symbol: s.symbol,
          side: intent.side,
          qty,
          price,
          stop: stopLoss,
          equity: sizingEquity,
          heatAfter: this.heat(),
        };
        this.entryDecisions = append(
          this.entryDecisions,
          s.book === undefined ? decision : { ...decision, book: s.book },
        );
      }
    }
    this.entries = append(this.entries, { index, intent, qty, entryRef: price, stopLoss, takeProfit });
  }
}
