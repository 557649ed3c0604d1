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
  kellyEstimateOrNaN,
  manageStop,
  observeEquity,
  positionHeat,
  type RiskRules,
  type RiskSizingInput,
  type RiskState,
  riskSizingOut,
  sizeEntryWithRiskInto,
} from '../risk/index.js';
import { productQuantity } from '../sizing/increments.js';
import {
  decisionQty,
  decisionSizingReason,
  floorQty,
  positionCapQty,
  type SizingInput,
} from '../sizing/index.js';
import type { EnterIntent, Intent } from '../strategies/types.js';
import type { Writable } from '../writable.js';

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

/**
 * The inputs `enter` passes to `decisionQty` and `sizeEntryWithRiskInto`, one object each, filled
 * anew at every call: both functions read their input and keep no reference to it, and nothing
 * runs between the filling and the call, so one object serves every entry (a sweep decides an entry
 * a few dozen times per combination; these two objects and their boxed numbers were about a sixth
 * of its garbage). Every field is written at every call, so no value leaks from one entry to the next.
 */
const sizingScratch: Writable<SizingInput> = {
  equity: 0,
  price: 0,
  // A number (0, then doubles) while every entry has a stop (the risk rules'): a double field.
  stopLoss: 0,
  fractional: false,
};
const riskSizingScratch: Writable<RiskSizingInput> = {
  requestedQty: 0,
  side: 1,
  price: 0,
  stop: 0,
  equity: 0,
  openHeat: 0,
  // NaN stands for null (no estimate): `sizeEntryWithRiskInto` reads both alike (a NaN Kelly cap
  // never binds). A number here keeps the field a double, written in place, not boxed per entry.
  kelly: Number.NaN,
  correlation: null,
  fractional: false,
  annualVolatility: undefined,
  heatEquity: undefined,
  explain: true,
};

/**
 * The risk sizing's input scratch with an entry's request, side, price, stop and sizing equity
 * written (`enter` and `flatEntry`); the caller writes the rest.
 */
function riskInput(
  requestedQty: number,
  side: 1 | -1,
  price: number,
  stop: number,
  equity: number,
): Writable<RiskSizingInput> {
  const risk = riskSizingScratch;
  risk.requestedQty = requestedQty;
  risk.side = side;
  risk.price = price;
  risk.stop = stop;
  risk.equity = equity;
  return risk;
}
/** `sizeEntryWithRiskInto`'s output, read right after each call (as the scratch inputs above). */
const riskSized = riskSizingOut();

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
 * An entry's stop under the risk rules: the intent's, else `stops.initialAtr` ATRs from the decision
 * close (undefined while the ATR is not known); a product's (`product`) in whole cents
 * (`productStop`). Not yet checked to be a positive price.
 */
function ruleStop(
  stop: number | undefined,
  side: 1 | -1,
  price: number,
  atr: number,
  rules: RiskRules,
  product: boolean,
): number | undefined {
  let stopLoss = stop;
  if (stopLoss === undefined && atr > 0) stopLoss = price - side * rules.stops.initialAtr * atr;
  if (stopLoss !== undefined && product) stopLoss = productStop(stopLoss, side);
  return stopLoss;
}

/** An entry's take-profit under the risk rules: the intent's, else `stops.takeProfitR` R from the close. */
function ruleTarget(
  target: number | undefined,
  side: 1 | -1,
  price: number,
  stopLoss: number,
  rules: RiskRules,
): number | undefined {
  if (target !== undefined || rules.stops.takeProfitR === undefined) return target;
  return price + side * rules.stops.takeProfitR * Math.abs(price - stopLoss);
}

/**
 * The entry `flatEntry` plans: its quantity (NaN: all-in, sized at the fill), stop and take-profit;
 * and the close's figures `planFlatEntry` reads (`price`, `atr`, `equity`, `buyingPower`: see there).
 */
export interface FlatEntry {
  qty: number;
  stopLoss: number;
  /** Whether the entry has a take-profit (`takeProfit`). */
  hasTakeProfit: boolean;
  takeProfit: number;
  /** `planFlatEntry`'s inputs, written by its caller before each call. */
  price: number;
  atr: number;
  equity: number;
  buyingPower: number;
}

/** A fresh output for {@link flatEntry} (a caller keeps one). Every field a double from the start. */
export const flatEntryOut = (): FlatEntry => ({
  qty: Number.NaN,
  stopLoss: Number.NaN,
  hasTakeProfit: false,
  takeProfit: Number.NaN,
  price: Number.NaN,
  atr: Number.NaN,
  equity: Number.NaN,
  buyingPower: Number.NaN,
});

/**
 * The decision at a close of ONE symbol held flat, with the risk rules, no sleeve, no product and
 * no explanation, on scalars: the entry `CloseDecider` plans there (`decideAfterBreakers`, its
 * `enter`), by the same rules and functions (`ruleStop`, `ruleTarget`, `decisionQty`,
 * `kellyEstimate`, `sizeEntryWithRiskInto`, the buying power's cap less the cash buffer), without a
 * decider's input objects, lists and records: with no position and no other entry at this close the
 * heat is 0 and nothing correlates. The single-symbol fast engine's entering close when flat (every
 * trade's; about 100 ns less per trade than the decider). `blocked`: the breakers' block (no entry).
 * `closedPnlSums` must be the running sums of `closedPnls` (`KellySums`). Fills `out` and returns
 * true when an entry is planned; false when none (blocked, no stop, refused, sized to nothing).
 * `test/unit/trading/decide-after-breakers.test.ts` pins it to `decideAfterBreakers`.
 */
export function flatEntry(
  intent: EnterIntent,
  blocked: boolean,
  price: number,
  atr: number,
  equity: number,
  buyingPower: number,
  closedPnls: readonly number[],
  closedPnlSums: KellySums,
  options: CloseInputAfterBreakers['options'] & { readonly risk: RiskRules },
  out: FlatEntry,
): boolean {
  out.price = price;
  out.atr = atr;
  out.equity = equity;
  out.buyingPower = buyingPower;
  return planFlatEntry(intent, blocked, closedPnls, closedPnlSums, options, out);
}

/**
 * {@link flatEntry} with the close's price, ATR, equity and buying power read from `io` (written by
 * the caller), the plan written there too. A double passed to a call V8 does not inline is boxed
 * into a new heap number; written into a double field of an object the caller keeps, it is not (the
 * single-symbol fast engine's entering close: three boxed numbers less per trade).
 */
export function planFlatEntry(
  intent: EnterIntent,
  blocked: boolean,
  closedPnls: readonly number[],
  closedPnlSums: KellySums,
  options: CloseInputAfterBreakers['options'] & { readonly risk: RiskRules },
  io: FlatEntry,
): boolean {
  if (blocked) return false;
  const out = io;
  const price = io.price;
  const atr = io.atr;
  const equity = io.equity;
  const buyingPower = io.buyingPower;
  const rules = options.risk;
  const side: 1 | -1 = intent.side === 'long' ? 1 : -1;
  const stopLoss = ruleStop(intent.stopLoss, side, price, atr, rules, false);
  if (stopLoss === undefined || !(stopLoss > 0)) return false;
  const takeProfit = ruleTarget(intent.takeProfit, side, price, stopLoss, rules);
  const fractional = options.fractional;
  const sizing = sizingScratch;
  sizing.equity = equity;
  sizing.price = price;
  sizing.stopLoss = stopLoss;
  sizing.fractional = fractional;
  const requested = decisionQty(options.sizing, sizing);
  // NaN for no estimate (as null reads): a double all the way, never boxed.
  const kelly = kellyEstimateOrNaN(closedPnls, rules.kellyWindow, rules.kellyMinTrades, closedPnlSums);
  const risk = riskInput(requested, side, price, stopLoss, equity);
  risk.openHeat = 0;
  risk.kelly = kelly;
  risk.correlation = null;
  risk.fractional = fractional;
  risk.annualVolatility = undefined;
  risk.heatEquity = undefined;
  risk.explain = false;
  const risked = riskSized;
  sizeEntryWithRiskInto(risk, rules, risked);
  if (risked.refused !== null) return false;
  let qty = risked.qty;
  if (!Number.isNaN(qty)) {
    qty = Math.min(qty, floorQty((buyingPower * (1 - options.cashBuffer)) / price, fractional));
    if (!(qty > 0)) return false;
  }
  out.qty = qty;
  out.stopLoss = stopLoss;
  out.hasTakeProfit = takeProfit !== undefined;
  out.takeProfit = takeProfit ?? Number.NaN;
  return true;
}

/**
 * A reusing decider's decisions: one object, rewritten at each call; the heat is computed when read
 * (a sweep does not read it).
 */
class ReusedDecisions implements DecisionsAfterBreakers {
  stops: DecisionsAfterBreakers['stops'] = NONE;
  exits: DecisionsAfterBreakers['exits'] = NONE;
  entries: DecisionsAfterBreakers['entries'] = NONE;
  refused: DecisionsAfterBreakers['refused'] = NONE;
  reduced: DecisionsAfterBreakers['reduced'] = NONE;
  skipped: DecisionsAfterBreakers['skipped'] = NONE;
  entryDecisions: DecisionsAfterBreakers['entryDecisions'] = NONE;
  constructor(private readonly decider: CloseDecider) {}
  get heatPct(): number {
    return this.decider.heatPercent();
  }
}

/**
 * What the decision at a close depends on once the breakers have run, for a caller that runs them
 * on its own state (`CloseDecider.decideAfterBreakers`, the fast engines).
 */
export type CloseInputAfterBreakers = Omit<CloseDecisionInput, 'day' | 'riskState' | 'drawdownAutoReset'>;

/** The decisions of `decideAfterBreakers`: `CloseDecisions` but the breakers' state and events. */
export type DecisionsAfterBreakers = Omit<CloseDecisions, 'riskState' | 'events'>;

/**
 * The decision at a close, shared by the backtest engine and the live functions: breakers, stop
 * management, exits, then entries sized by the sizing mode and the risk rules, capped by buying
 * power less the cash buffer. Pure: the caller applies the result to its book or its broker.
 * Allocation-light: lists are created only when something goes in them, and the explanation
 * records only when `explain` is not false.
 */
export function decideAtClose(input: CloseDecisionInput): CloseDecisions {
  return new CloseDecider(false).decide(input);
}

/**
 * An empty array of records: its elements kind is already objects', where a fresh `[]` holds small
 * integers until its first push, whose change of kind deoptimized the code that had pushed into an
 * earlier decider's lists (a fast engine makes a decider per lane, and new lanes per chunk).
 */
function recordList<T extends object>(): T[] {
  const list: object[] = [NONE];
  list.pop();
  return list as T[];
}

/** Empties a reused list: pops (an inlined builtin; setting `length` is a runtime call, slower here). */
function empty(list: unknown[] | undefined): void {
  if (list !== undefined) while (list.length > 0) list.pop();
}

/**
 * The decision at a close: `decide` (what `decideAtClose` calls: the breakers on the `RiskState`,
 * then the rest), or `decideAfterBreakers` for a caller that ran the breakers itself (`breakerStep`
 * on its scalars: the fast engines) and gives their outcome. Both run the same stop management,
 * exits, sizing and caps (`run`). A decider made with `reuse` keeps its lists and records from call
 * to call: its decisions hold until its next call, and with `explain: false` a call allocates
 * nothing (the single-symbol fast engine keeps one per lane, the portfolio mode one per run);
 * without, each call's decisions are its own.
 */
export class CloseDecider {
  private input: CloseInputAfterBreakers | undefined;
  private rules: CloseDecisionInput['options']['risk'];
  private explain = true;
  private power = 0;
  private bookPowers: number[] | undefined;
  /** This call's number: a symbol exits at this close when its `exitMark` is it (no set to clear). */
  private call = 0;
  private exitMark: number[] | undefined;
  /** The stop a symbol moves to at this close, when its `stopMark` is this call's number. */
  private stopMark: number[] | undefined;
  private stopMoved: number[] | undefined;
  private decided: Writable<DecidedEntry>[] | undefined;
  /** This call's Kelly estimate (NaN: none), when `kellyCall` is this call's number. */
  private kelly = Number.NaN;
  private kellyCall = 0;
  private bookKelly: (number | null)[] | undefined;
  private best: { symbol: string; rho: number } | undefined;
  private stops: Writable<CloseDecisions['stops'][number]>[] | undefined;
  private exits: Writable<CloseDecisions['exits'][number]>[] | undefined;
  private entries: Writable<PlannedEntry>[] | undefined;
  private refused: RefusedEntry[] | undefined;
  private reduced: ReducedEntry[] | undefined;
  private skipped: SkippedEntry[] | undefined;
  private entryDecisions: EntryDecision[] | undefined;
  /** Reused: the records of the lists above, kept past their lists' emptying (by position). */
  private readonly pool:
    | {
        decided: Writable<DecidedEntry>[];
        stops: Writable<CloseDecisions['stops'][number]>[];
        exits: Writable<CloseDecisions['exits'][number]>[];
        entries: Writable<PlannedEntry>[];
      }
    | undefined;
  private readonly out: ReusedDecisions | undefined;

  constructor(reuse: boolean) {
    this.pool = reuse
      ? { decided: recordList(), stops: recordList(), exits: recordList(), entries: recordList() }
      : undefined;
    this.out = reuse ? new ReusedDecisions(this) : undefined;
  }

  /** The breakers on `input.riskState` (`observeEquity`, `entryBlock`), then the rest (`run`). */
  decide(input: CloseDecisionInput): CloseDecisions {
    this.begin(input);
    const rules = this.rules;
    let riskState = input.riskState;
    let events: readonly BreakerEvent[] = NONE;
    let blocked: string | null = null;
    let flatten = false;
    if (rules !== undefined) {
      const observed = observeEquity(
        riskState,
        rules,
        input.time,
        input.day,
        input.equity,
        input.drawdownAutoReset,
      );
      riskState = observed.state;
      events = observed.events;
      if (rules.flattenOnDailyLoss) {
        for (const e of observed.events) if (e.breaker === 'daily-loss') flatten = true;
      }
      blocked = entryBlock(riskState, input.day);
    }
    const d = this.run(blocked, flatten);
    return {
      riskState,
      events,
      stops: d.stops,
      exits: d.exits,
      entries: d.entries,
      refused: d.refused,
      reduced: d.reduced,
      skipped: d.skipped,
      entryDecisions: d.entryDecisions,
      heatPct: d.heatPct,
    };
  }

  /**
   * The decision after breakers the caller ran on its own state (`breakerStep` at this close): why
   * entries are blocked (`entryBlock`'s reason, `scalarEntryBlock`), and whether the daily-loss
   * breaker tripped at this observation (flatten, with `flattenOnDailyLoss`). Without risk rules
   * the two are null and false.
   */
  decideAfterBreakers(
    input: CloseInputAfterBreakers,
    blocked: string | null,
    dailyLossTripped: boolean,
  ): DecisionsAfterBreakers {
    this.begin(input);
    return this.run(blocked, dailyLossTripped && this.rules?.flattenOnDailyLoss === true);
  }

  private begin(input: CloseInputAfterBreakers): void {
    this.input = input;
    this.rules = input.options.risk;
    this.explain = input.explain !== false;
    this.power = input.buyingPower;
    this.bookPowers = undefined;
    this.call++;
    this.bookKelly = undefined;
    if (this.pool === undefined) {
      // Not reusing: fresh lists for this call, so an earlier call's decisions stay its own.
      this.decided = undefined;
      this.stops = undefined;
      this.exits = undefined;
      this.entries = undefined;
    } else {
      empty(this.decided);
      empty(this.stops);
      empty(this.exits);
      empty(this.entries);
    }
    this.refused = undefined;
    this.reduced = undefined;
    this.skipped = undefined;
    this.entryDecisions = undefined;
  }

  /**
   * The heat after this call's decisions, percent of equity (0 without risk rules): `heatPct`, read
   * by a reusing decider's caller only if it needs it, before the decider's next call.
   */
  heatPercent(): number {
    const equity = (this.input as CloseInputAfterBreakers).equity;
    return this.rules === undefined || !(equity > 0) ? 0 : (this.heat() / equity) * 100;
  }

  /** Stop management (with the risk rules), the exits, the entries; the lists made. */
  private run(blocked: string | null, flatten: boolean): DecisionsAfterBreakers {
    const { symbols, options } = this.input as CloseInputAfterBreakers;
    const rules = this.rules;
    if (rules !== undefined) {
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
          this.pushStop(index, moved);
          this.stopMark ??= [];
          this.stopMark[index] = this.call;
          this.stopMoved ??= [];
          this.stopMoved[index] = moved;
        }
        if (update.exit !== null) this.exit(index, update.exit);
      }
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

    const stops = this.stops === undefined || this.stops.length === 0 ? NONE : this.stops;
    const exits = this.exits === undefined || this.exits.length === 0 ? NONE : this.exits;
    const entries = this.entries === undefined || this.entries.length === 0 ? NONE : this.entries;
    const out = this.out;
    if (out === undefined) {
      return {
        stops,
        exits,
        entries,
        refused: this.refused ?? NONE,
        reduced: this.reduced ?? NONE,
        skipped: this.skipped ?? NONE,
        entryDecisions: this.entryDecisions ?? NONE,
        heatPct: this.heatPercent(),
      };
    }
    out.stops = stops;
    out.exits = exits;
    out.entries = entries;
    out.refused = this.refused ?? NONE;
    out.reduced = this.reduced ?? NONE;
    out.skipped = this.skipped ?? NONE;
    out.entryDecisions = this.entryDecisions ?? NONE;
    return out;
  }

  // The lists' pushes: a reusing decider's records come from its pool (by position), else new.
  private pushStop(index: number, stop: number): void {
    this.stops ??= recordList();
    const list = this.stops;
    const pool = this.pool?.stops;
    let r = pool?.[list.length];
    if (r === undefined) {
      // Made with a double field (NaN), then written: see `pushEntry`.
      r = { index, stop: Number.NaN };
      pool?.push(r);
    }
    r.index = index;
    r.stop = stop;
    list.push(r);
  }

  private pushExit(index: number, reason: string | undefined): void {
    this.exits ??= recordList();
    const list = this.exits;
    const pool = this.pool?.exits;
    let r = pool?.[list.length];
    if (r === undefined) {
      r = { index, reason };
      pool?.push(r);
    } else {
      r.index = index;
      r.reason = reason;
    }
    list.push(r);
  }

  private pushDecided(index: number, side: 1 | -1, qty: number, entryRef: number, stop: number): void {
    this.decided ??= recordList();
    const list = this.decided;
    const pool = this.pool?.decided;
    let r = pool?.[list.length];
    if (r === undefined) {
      // Made with double fields (NaN), then written: see `pushEntry`.
      r = { index, side, qty: Number.NaN, entryRef: Number.NaN, stop: Number.NaN };
      pool?.push(r);
    }
    r.index = index;
    r.side = side;
    r.qty = qty;
    r.entryRef = entryRef;
    r.stop = stop;
    list.push(r);
  }

  private pushEntry(
    index: number,
    intent: EnterIntent,
    qty: number,
    entryRef: number,
    stopLoss: number | undefined,
    takeProfit: number | undefined,
  ): void {
    this.entries ??= recordList();
    const list = this.entries;
    const pool = this.pool?.entries;
    let r = pool?.[list.length];
    if (r === undefined) {
      // A pooled record lives across calls (and a fast engine's runs): made with its numbers as
      // doubles (NaN), then written, so a quantity or price that is first a small integer and later
      // fractional does not change its fields' representation (the code that had seen the first
      // deoptimized at the change). The take-profit, often absent, starts absent.
      r = {
        index,
        intent,
        qty: Number.NaN,
        entryRef: Number.NaN,
        stopLoss: Number.NaN,
        takeProfit: undefined,
      };
      pool?.push(r);
    }
    r.index = index;
    r.intent = intent;
    r.qty = qty;
    r.entryRef = entryRef;
    r.stopLoss = stopLoss;
    r.takeProfit = takeProfit;
    list.push(r);
  }

  private exiting(index: number): boolean {
    return this.exitMark !== undefined && this.exitMark[index] === this.call;
  }

  /** Each book's buying power left at this close, made when a row with a book first reads it. */
  private get bookPower(): number[] {
    const books = (this.input as CloseInputAfterBreakers).books;
    this.bookPowers ??= books === undefined ? [] : books.map((b) => b.buyingPower);
    return this.bookPowers;
  }

  private exit(index: number, reason?: string): void {
    if (this.exiting(index)) return;
    const s = (this.input as CloseInputAfterBreakers).symbols[index] as SymbolAtClose;
    const position = s.position as HeldPosition;
    this.exitMark ??= [];
    this.exitMark[index] = this.call;
    this.pushExit(index, reason);
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
    const symbols = (this.input as CloseInputAfterBreakers).symbols;
    let heat = 0;
    for (let index = 0; index < symbols.length; index++) {
      const p = (symbols[index] as SymbolAtClose).position;
      if (p === undefined || this.exiting(index)) continue;
      const stop =
        this.stopMark !== undefined && this.stopMark[index] === this.call
          ? (this.stopMoved as number[])[index]
          : p.stop;
      if (stop === undefined) continue;
      heat += positionHeat(p.side, p.qty, p.entryRef, stop);
    }
    const decided = this.decided;
    if (decided !== undefined) {
      for (let i = 0; i < decided.length; i++) {
        const d = decided[i] as DecidedEntry;
        heat += positionHeat(d.side, d.qty, d.entryRef, d.stop);
      }
    }
    return heat;
  }

  /** Whether an entry was decided for symbol `index` at this close. */
  private decidedFor(index: number): boolean {
    const decided = this.decided;
    if (decided === undefined) return false;
    for (let i = 0; i < decided.length; i++) if ((decided[i] as DecidedEntry).index === index) return true;
    return false;
  }

  /**
   * The open position (or entry decided at this close) most correlated with symbol `me`: the
   * decider's one record of it, read before the next call of this.
   */
  private strongestCorrelation(me: number): { symbol: string; rho: number } | null {
    const input = this.input as CloseInputAfterBreakers;
    const correlation = input.correlation;
    if (correlation === undefined) return null;
    const symbols = input.symbols;
    let found = false;
    let bestSymbol = '';
    let bestRho = 0;
    for (let index = 0; index < symbols.length; index++) {
      if (index === me) continue;
      const other = symbols[index] as SymbolAtClose;
      const held = (other.position !== undefined && !this.exiting(index)) || this.decidedFor(index);
      if (!held) continue;
      const rho = correlation(me, index);
      if (!Number.isNaN(rho) && (!found || Math.abs(rho) > Math.abs(bestRho))) {
        found = true;
        bestSymbol = other.symbol;
        bestRho = rho;
      }
    }
    if (!found) return null;
    this.best ??= { symbol: bestSymbol, rho: bestRho };
    const best = this.best;
    best.symbol = bestSymbol;
    best.rho = bestRho;
    return best;
  }

  /** The Kelly estimate of the account's trades or of a book's, NaN while there is none (null). */
  private kellyOf(book: number | undefined): number {
    const rules = this.rules;
    if (rules === undefined) return Number.NaN;
    const input = this.input as CloseInputAfterBreakers;
    if (book === undefined) {
      if (this.kellyCall !== this.call) {
        this.kellyCall = this.call;
        this.kelly =
          kellyEstimate(input.closedPnls, rules.kellyWindow, rules.kellyMinTrades, input.closedPnlSums) ??
          Number.NaN;
      }
      return this.kelly;
    }
    const books = input.books ?? NONE;
    this.bookKelly ??= new Array<number | null>(books.length);
    let kelly = this.bookKelly[book];
    if (kelly === undefined) {
      const b = books[book];
      kelly = b === undefined ? null : kellyEstimate(b.closedPnls, rules.kellyWindow, rules.kellyMinTrades);
      this.bookKelly[book] = kelly;
    }
    return kelly ?? Number.NaN;
  }

  private refuse(s: SymbolAtClose, reason: string): void {
    if (!this.explain) return;
    const time = (this.input as CloseInputAfterBreakers).time;
    this.refused ??= [];
    this.refused.push(
      s.book === undefined
        ? { time, symbol: s.symbol, reason }
        : { time, symbol: s.symbol, reason, book: s.book },
    );
  }

  private skip(s: SymbolAtClose, reason: string, requestedQty: number, placedQty: number): void {
    if (!this.explain) return;
    const time = (this.input as CloseInputAfterBreakers).time;
    const entry: SkippedEntry = { time, symbol: s.symbol, reason, requestedQty, placedQty };
    this.skipped ??= [];
    this.skipped.push(s.book === undefined ? entry : { ...entry, book: s.book });
  }

  private enter(index: number, s: SymbolAtClose, intent: EnterIntent, blocked: string | null): void {
    if (s.position !== undefined && !this.exiting(index)) return;
    const input = this.input as CloseInputAfterBreakers;
    const { time, equity, options } = input;
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
      stopLoss = ruleStop(stopLoss, side, price, s.atr, rules, options.products?.[s.symbol] !== undefined);
      if (stopLoss === undefined || !(stopLoss > 0)) {
        this.refuse(s, 'no stop: the ATR for the default stop is still warming up');
        return;
      }
      takeProfit = ruleTarget(takeProfit, side, price, stopLoss, rules);
    }
    const book = s.book === undefined ? undefined : input.books?.[s.book];
    const sizingEquity = book?.equity ?? equity;
    const sizing = sizingScratch;
    sizing.equity = sizingEquity;
    sizing.price = price;
    sizing.stopLoss = stopLoss;
    sizing.fractional = options.fractional;
    const spec = book?.sizing ?? options.sizing;
    let qty = decisionQty(spec, sizing);
    if (rules !== undefined && stopLoss !== undefined) {
      const volatility = input.volatility;
      // The calls that fill it (heat, Kelly, correlation, volatility) run before the scratch is written.
      const openHeat = this.heat();
      const kelly = this.kellyOf(s.book);
      const correlation = this.strongestCorrelation(index);
      const annualVolatility = volatility === undefined ? undefined : volatility(index);
      const risk = riskInput(qty, side, price, stopLoss, sizingEquity);
      risk.openHeat = openHeat;
      risk.kelly = kelly;
      risk.correlation = correlation;
      risk.fractional = options.fractional;
      risk.annualVolatility = annualVolatility;
      risk.heatEquity = book === undefined ? undefined : equity;
      risk.explain = this.explain;
      const risked = riskSized;
      sizeEntryWithRiskInto(risk, book?.risk === undefined ? rules : { ...rules, ...book.risk }, risked);
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
        this.reduced ??= [];
        this.reduced.push(s.book === undefined ? entry : { ...entry, book: s.book });
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
        if (this.explain) {
          const reason = decisionSizingReason(spec, sizing) ?? 'size rounds to zero under the caps';
          this.skip(s, reason, requested, 0);
        }
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
      this.pushDecided(index, side, qty, price, stopLoss);
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
        this.entryDecisions ??= [];
        this.entryDecisions.push(s.book === undefined ? decision : { ...decision, book: s.book });
      }
    }
    this.pushEntry(index, intent, qty, price, stopLoss, takeProfit);
  }
}
