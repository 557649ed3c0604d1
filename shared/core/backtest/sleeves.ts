/**
 * The sleeves backtest: the time loop around the trading session (`core/trading/session.ts`). Each
 * calendar slot: at the open, protective stops that the open gapped through fill, then each symbol's
 * sleeve legs are netted into one order that fills at the open and is split back to the sleeves at
 * the fill price; intrabar, each sleeve's own stop and take-profit fill by the bar's range. At the
 * close: the strategies see the bar, the sleeves' equity is marked, capital is reallocated when the
 * schedule, the drift or a correlation cut says so, the ledger is checked, and the session decides.
 */
import { InsufficientDataError, InvalidParameterError } from '../errors.js';
import {
  adversePrice,
  PROTECTIVE_NONE,
  protectiveFillPrice,
  protectiveHit,
  STOP_AT_OPEN,
  STOP_INTRABAR,
  slippageFraction,
} from '../execution/fill-rules.js';
import { type Cents, commissionCents, notionalCents, splitCents, toDollars } from '../ledger/money.js';
import { alignBars, barAtSlot } from '../market/align.js';
import type { Bar, BarSeries } from '../market/types.js';
import { computeMetrics, DEFAULT_PERIODS_PER_YEAR, type Metrics } from '../metrics/index.js';
import type { SleeveTrade } from '../portfolio/book.js';
import {
  type AllocationSettings,
  defaultAllocation,
  type SleeveCorrelationSettings,
} from '../portfolio/config.js';
import type { CorrelationEvent } from '../portfolio/correlation.js';
import type { Sleeve } from '../portfolio/sleeves.js';
import {
  BACKTEST_COOL_OFF,
  type BreakerEvent,
  RollingCorrelation,
  RollingVolatility,
} from '../risk/index.js';
import { allInQty, orderableQty } from '../sizing/index.js';
import { netLegs, type SessionLeg, TradingSession } from '../trading/session.js';
import {
  type AllocationEvent,
  assignToSleeve,
  restoreSleevesState,
  SleeveAllocation,
  type SleevesState,
  sleevesState,
} from '../trading/sleeves-close.js';
import type {
  BacktestOptions,
  BacktestResult,
  EntryDecision,
  FillRecord,
  OrderRecord,
  ReducedEntry,
  RefusedEntry,
  SkippedEntry,
} from './types.js';

/** Everything a sleeves backtest needs. */
export interface SleevesBacktestInput {
  /** One series per symbol of the account (every sleeve's symbols among them). */
  readonly series: readonly BarSeries[];
  readonly sleeves: readonly Sleeve[];
  /** The account's options (costs, cash, the risk rules); sleeves override sizing and per-trade risk. */
  readonly options: BacktestOptions;
  readonly allocation?: AllocationSettings;
  readonly correlation?: SleeveCorrelationSettings;
  /**
   * Positions each sleeve holds before the first slot (a shadow backtest from the middle of held
   * positions): booked as bought at `price` out of that sleeve's capital (as an operator's
   * assignment books shares), with their stops live from the first slot.
   */
  readonly opening?: readonly SleevesOpeningPosition[];
  /**
   * The sleeves' exact state at the first slot (a shadow backtest from the middle of a paper run:
   * end-of-day's dated snapshot of that session, its fills booked): restored after that slot's open
   * (whose fills it holds already), before its close, as the live signal step restores it, so the
   * first close's mark, reallocation and decision start from its cash, positions and allocation. The
   * books' capital is the state's. Not with `opening`.
   */
  readonly openingState?: SleevesState;
}

/** A position a sleeve holds before the sleeves backtest's first slot. */
export interface SleevesOpeningPosition {
  readonly sleeve: string;
  readonly symbol: string;
  /** Signed quantity (negative: short). */
  readonly qty: number;
  readonly price: number;
  readonly entryTime: number;
  readonly stop: number | null;
  readonly entryRef: number | null;
  readonly initialRisk: number | null;
  readonly sessionsHeld: number;
}

export type { AllocationEvent } from '../trading/sleeves-close.js';

/** One sleeve's result. */
export interface SleeveResult {
  readonly id: string;
  readonly strategy: string;
  readonly symbols: readonly string[];
  readonly initialCapital: number;
  /** Final equity − initial capital − capital moved in, dollars (exact cents). */
  readonly netPnl: number;
  /** Commissions paid, dollars. */
  readonly costs: number;
  readonly trades: readonly SleeveTrade[];
  /** The sleeve's equity at each close (its capital, transfers included) and its time-weighted NAV. */
  readonly equity: {
    readonly equity: Float64Array;
    readonly nav: Float64Array;
    readonly inMarket: Uint8Array;
  };
  /** Metrics of the NAV (transfers excluded), scaled to the initial capital. */
  readonly metrics: Metrics;
  /** Positions per symbol at each close (signed), for the ledger checks. */
}

/** The sleeves backtest's result: the account's (as a single backtest) plus sleeves, allocation, correlation. */
export interface SleevesBacktestResult extends BacktestResult {
  readonly trades: readonly SleeveTrade[];
  readonly sleeves: readonly SleeveResult[];
  readonly allocation: {
    readonly method: AllocationSettings['method'];
    /** Target weights after each close (aligned with the equity curve). */
    readonly weights: readonly (readonly number[])[];
    readonly events: readonly AllocationEvent[];
  };
  readonly correlation: {
    readonly ids: readonly string[];
    readonly matrix: readonly (readonly number[])[];
    readonly events: readonly CorrelationEvent[];
  };
}

/** Observes the state at every close (tests assert the ledger invariants through it). */
export type CloseObserver = (session: TradingSession, time: number, allocation: SleeveAllocation) => void;

/** Runs the sleeves of one account over the bars. See the file header for the order of events. */
export function runSleevesBacktest(
  input: SleevesBacktestInput,
  observe?: CloseObserver,
): SleevesBacktestResult {
  const { options, sleeves } = input;
  const periodsPerYear = options.periodsPerYear ?? DEFAULT_PERIODS_PER_YEAR;
  if (sleeves.length === 0) throw new InvalidParameterError('a sleeves backtest needs at least one sleeve');
  if (input.series.length === 0) throw new InsufficientDataError('no bar series to backtest');
  const allocation = input.allocation ?? defaultAllocation();
  const symbols = input.series.map((s) => s.symbol);
  const calendar = alignBars(input.series);
  const slotCount = calendar.time.length;
  const start = options.startIndex ?? 0;
  const end = options.endIndex ?? slotCount - 1;
  if (slotCount === 0 || start > end || start < 0 || end >= slotCount) {
    throw new InsufficientDataError(
      `no bars to trade in the requested range (slots ${start}..${end} of ${slotCount})`,
    );
  }
  const slip = slippageFraction(options.slippageBps);
  const adverse = (price: number, side: 'buy' | 'sell') => adversePrice(price, side === 'buy', slip);
  const configured = sleeves.map((s) => s.weight);
  const initialCash: Cents = Math.round(options.initialCash * 100);
  const openingState = input.openingState;
  if (openingState !== undefined && (input.opening?.length ?? 0) > 0)
    throw new InvalidParameterError('a sleeves backtest starts from opening positions or a state, not both');
  const initialCapital =
    openingState === undefined
      ? splitCents(initialCash, configured)
      : sleeves.map((s) => openingState.books.find((b) => b.id === s.id)?.initialCash ?? 0);
  const session = new TradingSession(sleeves, symbols, options, initialCapital, options.initialCash);
  const books = session.books;
  // The close step (mark, reallocate, remember the returns) is the live signal step's too.
  const alloc = new SleeveAllocation(sleeves, allocation, input.correlation, initialCapital);
  if (input.opening !== undefined && input.opening.length > 0) {
    let state = sleevesState(session, alloc);
    for (const p of input.opening) {
      state = assignToSleeve(state, {
        sleeve: p.sleeve,
        symbol: p.symbol,
        qty: p.qty,
        price: p.price,
        stop: p.stop,
        time: p.entryTime,
      });
      // The ledger's entry reference, initial risk and sessions held (the exit rules read them).
      state = {
        ...state,
        books: state.books.map((b) =>
          b.id !== p.sleeve
            ? b
            : {
                ...b,
                positions: b.positions.map((q) =>
                  q.symbol !== p.symbol
                    ? q
                    : {
                        ...q,
                        entryRef: p.entryRef ?? q.entryRef,
                        initialRisk: p.initialRisk ?? q.initialRisk,
                        sessionsHeld: p.sessionsHeld,
                      },
                ),
              },
        ),
      };
    }
    restoreSleevesState(session, alloc, state);
  }
  const rules = options.risk;
  const symbolCorrelation =
    rules === undefined ? undefined : new RollingCorrelation(symbols.length, rules.correlation.window);
  // The volatility cap reads the same daily returns, as the single-strategy engine's does.
  const symbolVolatility =
    rules?.volatilityCap === undefined
      ? undefined
      : new RollingVolatility(symbols.length, rules.volatilityCap.window, periodsPerYear);
  const dailyReturns = new Float64Array(symbols.length);

  const orders: OrderRecord[] = [];
  const fills: FillRecord[] = [];
  const skippedEntries: (SkippedEntry & { sleeve?: string })[] = [];
  const refusedEntries: (RefusedEntry & { sleeve: string })[] = [];
  const reducedEntries: (ReducedEntry & { sleeve: string })[] = [];
  const entryDecisions: (EntryDecision & { sleeve: string })[] = [];
  const breakerEvents: BreakerEvent[] = [];
  let stopMoves = 0;
  const span = end - start + 1;
  const equityTime = new Float64Array(span);
  const equityValue = new Float64Array(span);
  const inMarket = new Uint8Array(span);
  const heatPct = new Float64Array(span);
  const sleeveEquity = sleeves.map(() => new Float64Array(span));
  const sleeveNav = sleeves.map(() => new Float64Array(span));
  const sleeveInMarket = sleeves.map(() => new Uint8Array(span));
  const weightsOverTime: number[][] = [];
  const allocationEvents: AllocationEvent[] = alloc.events;
  const correlationEvents: CorrelationEvent[] = alloc.correlationEvents;
  let pending: SessionLeg[] = [];

  const record = (
    symbol: string,
    side: 'buy' | 'sell',
    qty: number,
    price: number,
    time: number,
    role: OrderRecord['role'],
    commission: Cents,
    type: OrderRecord['type'] = 'market',
  ) => {
    const order: OrderRecord = {
      id: orders.length + 1,
      symbol,
      side,
      type,
      role,
      qty,
      timeInForce: type === 'market' ? 'day' : 'gtc',
      createdTime: time,
      status: 'filled',
      closedTime: time,
      fillPrice: price,
    };
    orders.push(order);
    const notional = notionalCents(qty, price);
    fills.push({
      orderId: order.id,
      symbol,
      side,
      qty,
      price,
      time,
      notional: toDollars(notional),
      commission: toDollars(commission),
    });
  };

  const protective = (
    sleeve: number,
    symbol: string,
    price: number,
    time: number,
    reason: 'stop-loss' | 'take-profit',
  ) => {
    const p = books[sleeve]?.positions.get(symbol);
    if (p === undefined) return;
    const trade = session.bookProtectiveFill(sleeve, symbol, price, time, reason);
    const notional = notionalCents(trade.qty, price);
    record(
      symbol,
      p.side === 1 ? 'sell' : 'buy',
      trade.qty,
      price,
      time,
      reason,
      commissionCents(options.commission, trade.qty, notional),
      reason === 'stop-loss' ? 'stop' : 'limit',
    );
  };

  /** A sleeve's protective orders against one bar: the open first, then (unless `gapOnly`) the range. */
  const checkProtective = (k: number, symbol: string, bar: Bar, time: number, gapOnly: boolean) => {
    const p = books[k]?.positions.get(symbol);
    if (p === undefined) return;
    const long = p.side === 1;
    const stop = p.stop ?? Number.NaN;
    const target = p.takeProfit ?? Number.NaN;
    const hit = protectiveHit(long, bar.open, bar.high, bar.low, stop, target, gapOnly);
    if (hit === PROTECTIVE_NONE) return;
    const price = protectiveFillPrice(hit, long, bar.open, stop, target, slip);
    protective(
      k,
      symbol,
      price,
      time,
      hit === STOP_AT_OPEN || hit === STOP_INTRABAR ? 'stop-loss' : 'take-profit',
    );
  };

  /** Fills a net order of one symbol at `reference` (the open, or the last close at the end). */
  const fillNet = (symbol: string, legs: readonly SessionLeg[], reference: number, time: number) => {
    if (legs.length === 0) return;
    const order = netLegs(symbol, legs);
    const price = order.side === null ? reference : adverse(reference, order.side);
    const notional = notionalCents(order.qty, price);
    const commission = order.side === null ? 0 : commissionCents(options.commission, order.qty, notional);
    session.bookNetFill(order, price, commission, time);
    if (order.side !== null) {
      const role = legs.some((l) => l.role === 'end-of-data')
        ? 'end-of-data'
        : legs.every((l) => l.role === 'exit')
          ? 'exit'
          : 'entry';
      record(symbol, order.side, order.qty, price, time, role, commission);
    }
  };

  const barOf = (k: number, slot: number): Bar | undefined => barAtSlot(input.series, calendar, k, slot);

  const atOpen = (slot: number, bars: readonly (Bar | undefined)[]) => {
    const time = calendar.time[slot] as number;
    const exiting = new Set(pending.filter((l) => l.role === 'exit').map((l) => `${l.sleeve}|${l.symbol}`));
    // 1. Protective orders the open gapped through (positions without a signal exit).
    bars.forEach((bar, j) => {
      if (bar === undefined) return;
      const symbol = symbols[j] as string;
      books.forEach((_, k) => {
        if (!exiting.has(`${k}|${symbol}`)) checkProtective(k, symbol, bar, time, true);
      });
    });
    // 2. Each sleeve's buying power after its exits, at the open; entries that no longer fit shrink.
    const markAtOpen = (symbol: string) => {
      const bar = bars[symbols.indexOf(symbol)];
      return bar === undefined ? session.mark(symbol) : bar.open;
    };
    const power = books.map((b) => b.buyingPower(markAtOpen));
    const today: SessionLeg[] = [];
    const tomorrow: SessionLeg[] = [];
    for (const leg of pending) {
      if (bars[symbols.indexOf(leg.symbol)] === undefined) {
        // No bar for the symbol: a day order cannot fill; exits wait for the next bar, entries expire.
        if (leg.role === 'exit') tomorrow.push(leg);
        continue;
      }
      today.push(leg);
      if (leg.role === 'exit')
        power[leg.sleeve] = (power[leg.sleeve] as number) + notionalCents(leg.qty, markAtOpen(leg.symbol));
    }
    const legs: SessionLeg[] = [];
    for (const leg of today) {
      if (leg.role !== 'entry') {
        legs.push(leg);
        continue;
      }
      const price = adverse(markAtOpen(leg.symbol), leg.side);
      const notional = notionalCents(leg.qty, price);
      const cost = notional + commissionCents(options.commission, leg.qty, notional);
      let qty = leg.qty;
      if (cost > (power[leg.sleeve] as number)) {
        qty = orderableQty(
          allInQty(power[leg.sleeve] as number, price, options.commission, options.fractional),
          price,
          options.products?.[leg.symbol],
        );
        const sleeve = sleeves[leg.sleeve] as Sleeve;
        skippedEntries.push({
          time,
          symbol: leg.symbol,
          sleeve: sleeve.id,
          reason:
            qty > 0
              ? 'reduced at the fill: the sleeve lacks buying power'
              : 'no buying power in the sleeve at the fill',
          requestedQty: leg.qty,
          placedQty: qty,
        });
        if (!(qty > 0)) continue;
      }
      const placed = notionalCents(qty, price);
      power[leg.sleeve] =
        (power[leg.sleeve] as number) - placed - commissionCents(options.commission, qty, placed);
      legs.push(qty === leg.qty ? leg : { ...leg, qty });
    }
    bars.forEach((bar, j) => {
      if (bar === undefined) return;
      const symbol = symbols[j] as string;
      fillNet(
        symbol,
        legs.filter((l) => l.symbol === symbol),
        bar.open,
        time,
      );
    });
    pending = tomorrow;
    // 3. Intrabar: each sleeve's own stop (first) and take-profit; a new entry's too.
    bars.forEach((bar, j) => {
      if (bar === undefined) return;
      const symbol = symbols[j] as string;
      books.forEach((_, k) => {
        checkProtective(k, symbol, bar, time, false);
      });
    });
  };

  for (let slot = 0; slot <= end; slot++) {
    const time = calendar.time[slot] as number;
    const bars = symbols.map((_, k) => barOf(k, slot));
    const trading = slot >= start;
    // A state given for the first slot holds that slot's fills: restored in place of its open.
    if (trading && slot === start && openingState !== undefined)
      restoreSleevesState(session, alloc, openingState);
    else if (trading) atOpen(slot, bars);
    bars.forEach((bar, j) => {
      const last = session.mark(symbols[j] as string);
      dailyReturns[j] = bar === undefined ? Number.NaN : bar.close / last - 1;
    });
    session.feed(bars);
    symbolCorrelation?.push(dailyReturns);
    symbolVolatility?.push(dailyReturns);
    if (!trading) continue;
    const k = slot - start;
    const last = slot === end;
    // Exposure counts the positions open at the close, before the end-of-data closing (as the engine does).
    inMarket[k] = books.some((b) => b.positions.size > 0) ? 1 : 0;
    books.forEach((book, s) => {
      (sleeveInMarket[s] as Uint8Array)[k] = book.positions.size > 0 ? 1 : 0;
    });
    if (last) {
      for (const leg of pending) {
        skippedEntries.push({
          time,
          symbol: leg.symbol,
          reason: `${leg.role} cancelled: end of data`,
          sleeve: (sleeves[leg.sleeve] as Sleeve).id,
        });
      }
      pending = [];
      if (options.endOfData === 'close') {
        symbols.forEach((symbol) => {
          const legs: SessionLeg[] = [];
          books.forEach((book, s) => {
            const p = book.positions.get(symbol);
            if (p !== undefined)
              legs.push({
                sleeve: s,
                symbol,
                role: 'end-of-data',
                side: p.side === 1 ? 'sell' : 'buy',
                qty: p.qty,
              });
          });
          fillNet(symbol, legs, session.mark(symbol), time);
        });
      }
    }
    // Mark the sleeves; their time-weighted returns exclude the capital moved at the previous close.
    const marked = alloc.mark(session);
    equityTime[k] = time;
    equityValue[k] = toDollars(session.accountEquity());
    books.forEach((_, s) => {
      (sleeveNav[s] as Float64Array)[k] = alloc.nav[s] as number;
      (sleeveEquity[s] as Float64Array)[k] = toDollars(marked.equity[s] as number);
    });
    session.assertLedger(new Date(time).toISOString().slice(0, 10));
    observe?.(session, time, alloc);
    // Weights at t read the sleeves' returns up to t−1 (see SleeveAllocation.settle).
    alloc.settle(session, time, marked, last);
    weightsOverTime.push([...alloc.weights]);
    if (!last) {
      const outcome = session.decide(
        time,
        new Date(time).toISOString().slice(0, 10),
        symbolCorrelation === undefined ? undefined : (a, b) => symbolCorrelation.correlation(a, b),
        rules === undefined ? undefined : { sessions: rules.drawdownCoolOffDays, by: BACKTEST_COOL_OFF },
        symbolVolatility === undefined ? undefined : (a) => symbolVolatility.volatility(a),
      );
      pending = [...pending, ...outcome.legs];
      breakerEvents.push(...outcome.events);
      refusedEntries.push(...outcome.refused);
      reducedEntries.push(...outcome.reduced);
      skippedEntries.push(...outcome.skipped);
      entryDecisions.push(...outcome.entryDecisions);
      stopMoves += outcome.stopMoves;
      heatPct[k] = outcome.heatPct;
    }
  }

  const allTrades: SleeveTrade[] = [];
  const sleeveResults: SleeveResult[] = sleeves.map((sleeve, s) => {
    const book = books[s] as (typeof books)[number];
    const trades = [...book.trades, ...book.openTrades(session.mark)];
    allTrades.push(...trades);
    const capital = toDollars(initialCapital[s] as number);
    const base = capital > 0 ? capital : 1;
    const navScaled = (sleeveNav[s] as Float64Array).map((v) => (capital > 0 ? v : base * (1 + v)));
    return {
      id: sleeve.id,
      strategy: sleeve.strategy.name,
      symbols: sleeve.symbols,
      initialCapital: capital,
      netPnl: toDollars(book.equity(session.mark) - (initialCapital[s] as number) - book.transfersIn),
      costs: toDollars(book.costs),
      trades,
      equity: {
        equity: sleeveEquity[s] as Float64Array,
        nav: navScaled,
        inMarket: sleeveInMarket[s] as Uint8Array,
      },
      metrics: computeMetrics({
        time: equityTime,
        equity: navScaled,
        initialEquity: base,
        inMarket: sleeveInMarket[s] as Uint8Array,
        tradePnls: book.trades.map((t) => t.pnl),
        buyHoldReturnPct: buyHoldPct(input.series, calendar.index, sleeve.symbols, start, end),
        riskFreeRate: options.riskFreeRate,
        periodsPerYear,
      }),
    };
  });
  const closed = allTrades
    .filter((t) => t.exitTime !== null)
    .sort((a, b) => (a.exitTime as number) - (b.exitTime as number));
  const open = allTrades.filter((t) => t.exitTime === null);
  const metrics = computeMetrics({
    time: equityTime,
    equity: equityValue,
    initialEquity: options.initialCash,
    inMarket,
    tradePnls: closed.map((t) => t.pnl),
    buyHoldReturnPct: buyHoldPct(input.series, calendar.index, symbols, start, end),
    riskFreeRate: options.riskFreeRate,
    periodsPerYear,
  });
  return {
    symbols,
    orders,
    fills,
    trades: [...closed, ...open],
    skippedEntries,
    equity: { time: equityTime, equity: equityValue, inMarket },
    metrics,
    periodsPerYear,
    intraday: input.series.some((s) => s.intraday),
    ...(rules === undefined || symbolCorrelation === undefined
      ? {}
      : {
          risk: {
            peakHeatPct: heatPct.reduce((a, b) => Math.max(a, b), 0),
            heatPct,
            breakerEvents,
            refusedEntries,
            reducedEntries,
            entryDecisions,
            stopMoves,
            finalState: session.riskState,
            correlation: symbolCorrelation.matrix(),
          },
        }),
    sleeves: sleeveResults,
    allocation: { method: allocation.method, weights: weightsOverTime, events: allocationEvents },
    correlation: {
      ids: sleeves.map((s) => s.id),
      matrix: alloc.monitor?.matrix() ?? [],
      events: correlationEvents,
    },
  };
}

/** Equal-weight buy-and-hold of the given symbols over the traded span. */
function buyHoldPct(
  series: readonly BarSeries[],
  index: readonly Int32Array[],
  symbols: readonly string[],
  start: number,
  end: number,
): number {
  let sum = 0;
  let count = 0;
  series.forEach((s, k) => {
    if (!symbols.includes(s.symbol)) return;
    const slots = index[k] as Int32Array;
    let first = -1;
    let last = -1;
    for (let slot = start; slot <= end; slot++) {
      const bar = slots[slot] as number;
      if (bar < 0) continue;
      if (first < 0) first = bar;
      last = bar;
    }
    if (first < 0) return;
    sum += (s.close[last] as number) / (s.close[first] as number) - 1;
    count++;
  });
  return count === 0 ? 0 : (sum / count) * 100;
}
