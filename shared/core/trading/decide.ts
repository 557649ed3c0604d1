import type {
  BacktestOptions,
  EntryDecision,
  ReducedEntry,
  RefusedEntry,
  SkippedEntry,
} from '../backtest/types.js';
import {
  type BreakerEvent,
  entryBlock,
  type HeatPosition,
  kellyEstimate,
  manageStop,
  observeEquity,
  portfolioHeat,
  type RiskState,
  resetDrawdown,
  sizeEntryWithRisk,
} from '../risk/index.js';
import { floorQty, positionCapQty, sizeAtDecision } from '../sizing/index.js';
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
    'sizing' | 'fractional' | 'cashBuffer' | 'maxPositionFraction' | 'risk'
  >;
  /**
   * Backtests only: reset a drawdown halt automatically after this many sessions (standing in for
   * the manual reset live trading requires).
   */
  readonly drawdownAutoReset?: { readonly sessions: number; readonly by: string };
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

/**
 * The decision at a close, shared by the backtest engine and the live functions: breakers, stop
 * management, exits, then entries sized by the sizing mode and the risk rules, capped by buying
 * power less the cash buffer. Pure: the caller applies the result to its book or its broker.
 */
export function decideAtClose(input: CloseDecisionInput): CloseDecisions {
  const { time, day, equity, symbols, options } = input;
  const rules = options.risk;
  let riskState = input.riskState;
  const events: BreakerEvent[] = [];
  const stops: { index: number; stop: number }[] = [];
  const exits: { index: number; reason: string | undefined }[] = [];
  const exiting = new Set<number>();
  const entries: PlannedEntry[] = [];
  const refused: RefusedEntry[] = [];
  const reduced: ReducedEntry[] = [];
  const skipped: SkippedEntry[] = [];
  const entryDecisions: EntryDecision[] = [];
  let power = input.buyingPower;
  const bookPower = (input.books ?? []).map((b) => b.buyingPower);
  const stopOf = new Map<number, number | undefined>();

  const exit = (index: number, reason?: string) => {
    if (exiting.has(index)) return;
    const s = symbols[index] as SymbolAtClose;
    const position = s.position as HeldPosition;
    exiting.add(index);
    exits.push({ index, reason });
    power += position.qty * s.close;
    if (s.book !== undefined) bookPower[s.book] = (bookPower[s.book] as number) + position.qty * s.close;
  };

  let blocked: string | null = null;
  if (rules !== undefined) {
    const observed = observeEquity(riskState, rules, time, day, equity);
    riskState = observed.state;
    events.push(...observed.events);
    const halt = riskState.drawdownHalt;
    const auto = input.drawdownAutoReset;
    if (halt !== null && auto !== undefined && halt.sessions >= auto.sessions) {
      const reset = resetDrawdown(
        riskState,
        time,
        equity,
        auto.by,
        `${halt.sessions} sessions after the trip (stands in for the manual reset)`,
      );
      riskState = reset.state;
      events.push(...reset.events);
    }
    const flatten = rules.flattenOnDailyLoss && observed.events.some((e) => e.breaker === 'daily-loss');
    symbols.forEach((s, index) => {
      const position = s.position;
      if (position === undefined || !s.hasBar) return;
      if (flatten) {
        exit(index, 'daily loss breaker: flatten');
        return;
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
      if (position.stop !== undefined && update.stop !== position.stop) {
        stops.push({ index, stop: update.stop });
        stopOf.set(index, update.stop);
      }
      if (update.exit !== null) exit(index, update.exit);
    });
    blocked = entryBlock(riskState, day);
  }

  symbols.forEach((s, index) => {
    const intent = s.intent;
    if (s.position === undefined) return;
    if (
      intent.action === 'exit' ||
      (intent.action === 'enter' && sideName(s.position.side) !== intent.side)
    ) {
      exit(index);
    }
  });

  const heldHeat = (extra: readonly HeatPosition[]): HeatPosition[] => {
    const out: HeatPosition[] = [];
    symbols.forEach((s, index) => {
      const p = s.position;
      const stop = stopOf.has(index) ? stopOf.get(index) : p?.stop;
      if (p === undefined || exiting.has(index) || stop === undefined) return;
      out.push({ side: p.side, qty: p.qty, entryRef: p.entryRef, stop });
    });
    return [...out, ...extra];
  };
  const decidedHeat: HeatPosition[] = [];
  const decided: number[] = [];
  const strongestCorrelation = (me: number) => {
    if (input.correlation === undefined) return null;
    let best: { symbol: string; rho: number } | null = null;
    symbols.forEach((other, index) => {
      if (index === me) return;
      const held = (other.position !== undefined && !exiting.has(index)) || decided.includes(index);
      if (!held) return;
      const rho = (input.correlation as (a: number, b: number) => number)(me, index);
      if (!Number.isNaN(rho) && (best === null || Math.abs(rho) > Math.abs(best.rho))) {
        best = { symbol: other.symbol, rho };
      }
    });
    return best;
  };
  const kellyOf = (pnls: readonly number[]) =>
    rules === undefined ? null : kellyEstimate(pnls, rules.kellyWindow, rules.kellyMinTrades);
  const kelly = kellyOf(input.closedPnls);
  const bookKelly = (input.books ?? []).map((b) => kellyOf(b.closedPnls));

  symbols.forEach((s, index) => {
    const intent = s.intent;
    if (intent.action !== 'enter') return;
    if (s.position !== undefined && !exiting.has(index)) return;
    const price = s.close;
    const side: 1 | -1 = intent.side === 'long' ? 1 : -1;
    const tag = s.book === undefined ? {} : { book: s.book };
    const refuse = (reason: string) => refused.push({ time, symbol: s.symbol, reason, ...tag });
    if (blocked !== null) {
      refuse(blocked);
      return;
    }
    let stopLoss = intent.stopLoss;
    let takeProfit = intent.takeProfit;
    if (rules !== undefined) {
      if (stopLoss === undefined && s.atr > 0) stopLoss = price - side * rules.stops.initialAtr * s.atr;
      if (stopLoss === undefined || !(stopLoss > 0)) {
        refuse('no stop: the ATR for the default stop is still warming up');
        return;
      }
      if (takeProfit === undefined && rules.stops.takeProfitR !== undefined) {
        takeProfit = price + side * rules.stops.takeProfitR * Math.abs(price - stopLoss);
      }
    }
    const book = s.book === undefined ? undefined : input.books?.[s.book];
    const sizingEquity = book?.equity ?? equity;
    const sized = sizeAtDecision(book?.sizing ?? options.sizing, {
      equity: sizingEquity,
      price,
      stopLoss,
      fractional: options.fractional,
    });
    let qty = sized.qty;
    if (rules !== undefined && stopLoss !== undefined) {
      const risked = sizeEntryWithRisk(
        {
          requestedQty: qty,
          side,
          price,
          stop: stopLoss,
          equity: sizingEquity,
          openHeat: portfolioHeat(heldHeat(decidedHeat)),
          kelly: s.book === undefined ? kelly : (bookKelly[s.book] ?? null),
          correlation: strongestCorrelation(index),
          fractional: options.fractional,
          ...(input.volatility === undefined ? {} : { annualVolatility: input.volatility(index) }),
          ...(book === undefined ? {} : { heatEquity: equity }),
        },
        book?.risk === undefined ? rules : { ...rules, ...book.risk },
      );
      if (risked.refused !== null) {
        refuse(risked.refused);
        return;
      }
      if (risked.reductions.length > 0) {
        reduced.push({
          time,
          symbol: s.symbol,
          requestedQty: qty,
          qty: risked.qty,
          reasons: risked.reductions,
          ...tag,
        });
      }
      qty = risked.qty;
    }
    if (!Number.isNaN(qty)) {
      const requested = qty;
      if (rules === undefined && options.maxPositionFraction !== undefined) {
        const fraction = book?.risk?.maxPositionFraction ?? options.maxPositionFraction;
        qty = Math.min(qty, positionCapQty(fraction, sizingEquity, price, options.fractional));
      }
      const room = s.book === undefined ? power : Math.min(power, bookPower[s.book] as number);
      qty = Math.min(qty, floorQty((room * (1 - options.cashBuffer)) / price, options.fractional));
      if (!(qty > 0)) {
        skipped.push({
          time,
          symbol: s.symbol,
          reason: sized.reason ?? 'size rounds to zero under the caps',
          requestedQty: requested,
          placedQty: 0,
          ...tag,
        });
        return;
      }
      if (qty < requested) {
        skipped.push({
          time,
          symbol: s.symbol,
          reason: 'reduced by the position cap or buying power',
          requestedQty: requested,
          placedQty: qty,
          ...tag,
        });
      }
      power -= qty * price;
      if (s.book !== undefined) bookPower[s.book] = (bookPower[s.book] as number) - qty * price;
    }
    if (rules !== undefined && stopLoss !== undefined) {
      decidedHeat.push({ side, qty, entryRef: price, stop: stopLoss });
      decided.push(index);
      entryDecisions.push({
        time,
        symbol: s.symbol,
        side: intent.side,
        qty,
        price,
        stop: stopLoss,
        equity: sizingEquity,
        heatAfter: portfolioHeat(heldHeat(decidedHeat)),
        ...tag,
      });
    }
    entries.push({ index, intent, qty, entryRef: price, stopLoss, takeProfit });
  });

  const heatPct =
    rules === undefined || !(equity > 0) ? 0 : (portfolioHeat(heldHeat(decidedHeat)) / equity) * 100;
  return { riskState, events, stops, exits, entries, refused, reduced, skipped, entryDecisions, heatPct };
}
