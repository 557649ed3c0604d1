import { InsufficientDataError } from '../../errors.js';
import {
  adversePrice,
  PROTECTIVE_NONE,
  protectiveFillPrice,
  protectiveHit,
  STOP_AT_OPEN,
  STOP_INTRABAR,
  slippageFraction,
} from '../../execution/fill-rules.js';
import { commissionCents, notionalCents, toDollars } from '../../ledger/money.js';
import { type AlignedCalendar, sharedCalendar } from '../../market/align.js';
import type { BarSeries } from '../../market/types.js';
import { utcDay } from '../../market/utc-day.js';
import { computeMetrics, DEFAULT_PERIODS_PER_YEAR, type Metrics } from '../../metrics/index.js';
import {
  BACKTEST_COOL_OFF,
  type BreakerEvent,
  backtestBreakers,
  breakerPositions,
  breakerSkipTo,
  breakerStep,
  DAILY_LOSS_TRIP,
  breakerEvents as eventsOfStep,
  initialRiskState,
  manageStop,
  positionHeat,
  type RiskState,
  riskStateOf,
  scalarEntryBlock,
  windowCorrelation,
} from '../../risk/index.js';
import { allInFillQty } from '../../sizing/index.js';
import { type EnterIntent, HOLD, type Intent, type StrategyDefinition } from '../../strategies/types.js';
import { IndicatorCache, type VectorRule } from '../../strategies/vector.js';
import {
  CloseDecider,
  type CloseInputAfterBreakers,
  type HeldPosition,
  productStop,
  type SymbolAtClose,
} from '../../trading/decide.js';
import type { Writable } from '../../writable.js';
import { checkDirection, closeOrder, runBacktest, validateOptions } from '../engine.js';
import type {
  BacktestInput,
  BacktestOptions,
  BacktestResult,
  EntryDecision,
  FillRecord,
  OrderRecord,
  OrderRole,
  OrderSide,
  ReducedEntry,
  RefusedEntry,
  SkippedEntry,
  TradeRecord,
} from '../types.js';
import { FastPathUnsupportedError } from './engine.js';

/**
 * What a portfolio's preparation computes from its bars alone, whatever the traded span: the merged
 * calendar, each symbol's indicator cache, each slot's day number and, row-major by slot with one
 * column per symbol, the bar index, the last bar so far and the close-to-close returns.
 */
class PortfolioBars {
  readonly calendar: AlignedCalendar;
  readonly caches: readonly IndicatorCache[];
  readonly dayNumber: Int32Array;
  readonly returns: Float64Array;
  readonly bars: Int32Array;
  readonly lastBar: Int32Array;
  /** `YYYY-MM-DD` of each slot, filled when first asked. */
  readonly days: (string | undefined)[];
  /** Per correlation window, per slot asked for: each pair's ρ (`UNKNOWN_RHO`: not computed yet). */
  private readonly rhos = new Map<number, Map<number, Float64Array>>();
  private rhoSlots = 0;
  private correlationRuns = 0;

  constructor(series: readonly BarSeries[], caches: readonly IndicatorCache[]) {
    this.calendar = sharedCalendar(series);
    this.caches = caches;
    const slots = this.calendar.time.length;
    this.days = new Array<string | undefined>(slots);
    const time = this.calendar.time;
    const n = series.length;
    // The slot rows in one buffer (one allocation, not four): the returns, then the bar numbers.
    const cells = slots * n;
    const buffer = new ArrayBuffer(cells * 16 + slots * 4);
    const returns = new Float64Array(buffer, 0, cells);
    const bars = new Int32Array(buffer, cells * 8, cells);
    const lastBars = new Int32Array(buffer, cells * 12, cells);
    const dayNumber = new Int32Array(buffer, cells * 16, slots);
    for (let slot = 0; slot < slots; slot++)
      dayNumber[slot] = Math.floor((time[slot] as number) / 86_400_000);
    this.dayNumber = dayNumber;
    for (let k = 0; k < n; k++) {
      const index = this.calendar.index[k] as Int32Array;
      const close = (series[k] as BarSeries).close;
      let last = Number.NaN;
      let lastBar = -1;
      for (let slot = 0, at = k; slot < slots; slot++, at += n) {
        const bar = index[slot] as number;
        bars[at] = bar;
        if (bar < 0) {
          lastBars[at] = lastBar;
          returns[at] = Number.NaN;
          continue;
        }
        lastBar = bar;
        lastBars[at] = bar;
        const c = close[bar] as number;
        returns[at] = c / last - 1;
        last = c;
      }
    }
    this.returns = returns;
    this.bars = bars;
    this.lastBar = lastBars;
  }

  /**
   * Whether a run on this preparation reads and keeps its ρs in the memo ({@link correlations}):
   * from the second run on. The first run (all a one-off backtest does) computes each ρ it reads
   * from the returns (`windowCorrelation`) and keeps only its close's; a memo it would not read
   * again is not built.
   */
  memoizesCorrelations(): boolean {
    return this.correlationRuns++ > 0;
  }

  /**
   * The memo of every pair's correlation at `slot` over `window` sessions, row-major by symbol.
   * The reference pushes every slot's returns from the first slot on (warm-up included), so the
   * rolling window at a slot, and each ρ read from it, depends on the bars and the window alone. Bounded
   * in bytes: past `rhoSlotsFor(symbols)` slots held (`RHO_MEMO_BYTES` of memos), the memo starts
   * again empty.
   */
  correlations(window: number, slot: number): Float64Array {
    let bySlot = this.rhos.get(window);
    if (bySlot === undefined) {
      bySlot = new Map();
      this.rhos.set(window, bySlot);
    }
    let memo = bySlot.get(slot);
    if (memo === undefined) {
      const n = this.calendar.index.length;
      if (this.rhoSlots >= rhoSlotsFor(n)) {
        for (const held of this.rhos.values()) held.clear();
        this.rhoSlots = 0;
      }
      memo = new Float64Array(n * n).fill(UNKNOWN_RHO);
      bySlot.set(slot, memo);
      this.rhoSlots++;
    }
    return memo;
  }
}

/** A correlation not computed yet (a correlation is NaN or within [-1, 1]). */
const UNKNOWN_RHO = 2;
/** The bytes of correlation memos a portfolio's preparation holds at most (about). */
const RHO_MEMO_BYTES = 32 * 1024 * 1024;
/**
 * The most slots whose correlations a portfolio of `symbols` symbols keeps: a slot's memo is
 * `symbols`² doubles and its map entry (~128 bytes), so the memos stay near `RHO_MEMO_BYTES` however
 * many symbols (65,536 slots for four; 256 at the least).
 */
export function rhoSlotsFor(symbols: number): number {
  return Math.min(65_536, Math.max(256, Math.floor(RHO_MEMO_BYTES / (8 * symbols * symbols + 128))));
}

/**
 * The budget of a shared indicator cache (one per series, {@link sharedIndicatorCache}), bytes: a
 * backtest reads one parameter set's arrays; past the budget the cache starts again empty.
 */
const SHARED_CACHE_BYTES = 16 * 1024 * 1024;
const sharedCaches = new WeakMap<BarSeries, IndicatorCache>();
const sharedBars = new WeakMap<readonly BarSeries[], PortfolioBars>();
/**
 * The series (and arrays of series) backtested once already: what is kept for a later backtest is
 * kept from the second one on. A kept indicator cache refers to its series, the very key it is kept
 * under, and V8's young-generation collections (scavenges) cannot see through that cycle: a series
 * backtested once and dropped (a one-off backtest, each of a report's) would survive them with its
 * preparation and arrays until the next full collection. A set of keys holds no such value.
 */
const seenSeries = new WeakSet<BarSeries>();
const seenArrays = new WeakSet<readonly BarSeries[]>();

/** Whether `key` was seen before (it is from now on). */
function seenBefore<K extends object>(seen: WeakSet<K>, key: K): boolean {
  if (seen.has(key)) return true;
  seen.add(key);
  return false;
}

/**
 * The indicator cache of a series shared by every backtest of that series object (by identity, as
 * `sharedCalendar` shares the calendar): its arrays depend only on the bars and the parameters in
 * their keys, and a series' bars are never written once built. Held as long as the series is, from
 * the series' second backtest on (the first one's cache is its own: {@link seenSeries}).
 */
function sharedIndicatorCache(series: BarSeries): IndicatorCache {
  let cache = sharedCaches.get(series);
  if (cache === undefined) {
    cache = new IndicatorCache(series, SHARED_CACHE_BYTES);
    if (seenBefore(seenSeries, series)) sharedCaches.set(series, cache);
  }
  return cache;
}

/**
 * A portfolio's data for the fast engine, shared by every combination run on it: the merged
 * calendar (the reference engine's `sharedCalendar`), each symbol's indicator cache, each slot's
 * trading day, the daily returns the correlation rule reads, and buy-and-hold over the traded span.
 * `shared`: the preparation from the bars (everything but the span's buy-and-hold) is the one kept
 * for this array of series and the indicator caches those of its series objects, reused by every
 * later backtest of them (the walk-forward's windows, a report's runs, the same backtest again),
 * kept from the second backtest of them on ({@link seenSeries}); otherwise prepared afresh, its
 * caches dropped with it (a grid's, which may fill them).
 */
export class FastPortfolio {
  readonly calendar: AlignedCalendar;
  readonly start: number;
  readonly end: number;
  readonly span: number;
  /** One indicator cache per symbol (the strategies' `vectorize`, the risk rules' ATR). */
  readonly caches: readonly IndicatorCache[];
  /** The UTC day number of each calendar slot (equal numbers, equal trading days). */
  readonly dayNumber: Int32Array;
  /** Each slot's close-to-close return per symbol (row-major, NaN without a bar), as the engine pushes them. */
  readonly returns: Float64Array;
  /** Row-major by slot, one column per symbol: the symbol's bar at the slot (-1: none). */
  readonly bars: Int32Array;
  /** Row-major by slot: the symbol's last bar at or before the slot (-1: none yet). */
  readonly lastBar: Int32Array;
  readonly buyHoldReturnPct: number;
  private readonly days: (string | undefined)[];
  private readonly prepared: PortfolioBars;

  constructor(
    readonly series: readonly BarSeries[],
    startIndex: number | undefined,
    endIndex: number | undefined,
    shared = false,
  ) {
    if (series.length === 0) throw new InsufficientDataError('no bar series to backtest');
    let prepared = shared ? sharedBars.get(series) : undefined;
    if (prepared === undefined) {
      prepared = new PortfolioBars(
        series,
        series.map((s) => (shared ? sharedIndicatorCache(s) : new IndicatorCache(s))),
      );
      if (shared && seenBefore(seenArrays, series)) sharedBars.set(series, prepared);
    }
    this.calendar = prepared.calendar;
    const slots = this.calendar.time.length;
    this.start = startIndex ?? 0;
    this.end = endIndex ?? slots - 1;
    if (slots === 0 || this.start > this.end || this.start < 0 || this.end >= slots) {
      throw new InsufficientDataError(
        `no bars to trade in the requested range (slots ${this.start}..${this.end} of ${slots})`,
      );
    }
    this.span = this.end - this.start + 1;
    this.caches = prepared.caches;
    this.dayNumber = prepared.dayNumber;
    this.returns = prepared.returns;
    this.bars = prepared.bars;
    this.lastBar = prepared.lastBar;
    this.days = prepared.days;
    this.prepared = prepared;
    // Buy-and-hold: each symbol's first and last bar in the traded span.
    const n = series.length;
    const { start, end, bars } = this;
    let sum = 0;
    let count = 0;
    for (let k = 0; k < n; k++) {
      let first = -1;
      for (let slot = start; slot <= end && first < 0; slot++) first = bars[slot * n + k] as number;
      if (first < 0) continue;
      let last = -1;
      for (let slot = end; last < 0; slot--) last = bars[slot * n + k] as number;
      const close = (series[k] as BarSeries).close;
      sum += (close[last] as number) / (close[first] as number) - 1;
      count++;
    }
    this.buyHoldReturnPct = count === 0 ? 0 : (sum / count) * 100;
  }

  /** Each pair's correlation at `slot` over `window` sessions, as far as asked already (`PortfolioBars.correlations`). */
  correlations(window: number, slot: number): Float64Array {
    return this.prepared.correlations(window, slot);
  }

  /** Whether this run reads and keeps its ρs in the memo (`PortfolioBars.memoizesCorrelations`). */
  memoizesCorrelations(): boolean {
    return this.prepared.memoizesCorrelations();
  }

  /** `YYYY-MM-DD` of a slot (the daily-loss breaker's day), computed once per slot when first asked. */
  day(slot: number): string {
    let day = this.days[slot];
    if (day === undefined) {
      day = utcDay(this.calendar.time[slot] as number);
      this.days[slot] = day;
    }
    return day;
  }
}

/** Buffers reused across the combinations run on one portfolio. */
export class FastPortfolioScratch {
  readonly pnls: number[] = [];
  readonly codes: Uint8Array[];
  private curve: { time: Float64Array; equity: Float64Array; inMarket: Uint8Array } | undefined;

  constructor(private readonly data: FastPortfolio) {
    this.codes = data.series.map((s) => new Uint8Array(s.time.length));
  }

  /** The curve's buffers of an unrecorded run (a recorded run returns its own), made when first asked. */
  get buffers(): { time: Float64Array; equity: Float64Array; inMarket: Uint8Array } {
    if (this.curve === undefined) {
      const span = this.data.span;
      this.curve = {
        time: new Float64Array(span),
        equity: new Float64Array(span),
        inMarket: new Uint8Array(span),
      };
    }
    return this.curve;
  }
}

/** Per-symbol numbers of the book, one typed array each (no per-bar objects, no boxed doubles). */
class Book {
  readonly side: Int8Array;
  readonly qty: Float64Array;
  readonly entryPrice: Float64Array;
  readonly entryTime: Float64Array;
  readonly entryNotional: Float64Array;
  readonly entryCommission: Float64Array;
  /** Order id of the protective stop (0: none) and its level (NaN without one). */
  readonly stopId: Int32Array;
  readonly stopPrice: Float64Array;
  readonly targetId: Int32Array;
  readonly targetPrice: Float64Array;
  readonly armedFrom: Int32Array;
  readonly entryRef: Float64Array;
  readonly initialRisk: Float64Array;
  readonly sessionsHeld: Int32Array;
  /** The orders for the next session of the symbol (id 0: none). */
  readonly exitId: Int32Array;
  readonly entryId: Int32Array;
  readonly entryQty: Float64Array;
  readonly entrySide: Int8Array;
  readonly entryHasStop: Uint8Array;
  readonly entryStop: Float64Array;
  readonly entryHasTarget: Uint8Array;
  readonly entryTarget: Float64Array;
  readonly entryRefPending: Float64Array;
  readonly lastClose: Float64Array;
  /** The symbol's last bar so far (-1: none yet). */
  readonly lastBar: Int32Array;
  readonly exiting: Uint8Array;
  /** [cash in cents, closes' heat in dollars]. */
  readonly money = new Float64Array(2);

  constructor(n: number) {
    this.side = new Int8Array(n);
    this.qty = new Float64Array(n);
    this.entryPrice = new Float64Array(n);
    this.entryTime = new Float64Array(n);
    this.entryNotional = new Float64Array(n);
    this.entryCommission = new Float64Array(n);
    this.stopId = new Int32Array(n);
    this.stopPrice = new Float64Array(n).fill(Number.NaN);
    this.targetId = new Int32Array(n);
    this.targetPrice = new Float64Array(n).fill(Number.NaN);
    this.armedFrom = new Int32Array(n);
    this.entryRef = new Float64Array(n);
    this.initialRisk = new Float64Array(n).fill(Number.NaN);
    this.sessionsHeld = new Int32Array(n);
    this.exitId = new Int32Array(n);
    this.entryId = new Int32Array(n);
    this.entryQty = new Float64Array(n);
    this.entrySide = new Int8Array(n);
    this.entryHasStop = new Uint8Array(n);
    this.entryStop = new Float64Array(n);
    this.entryHasTarget = new Uint8Array(n);
    this.entryTarget = new Float64Array(n);
    this.entryRefPending = new Float64Array(n);
    this.lastClose = new Float64Array(n).fill(Number.NaN);
    this.lastBar = new Int32Array(n).fill(-1);
    this.exiting = new Uint8Array(n);
  }
}

/** What the portfolio mode returns without recording: the metrics, equal to `runBacktest`'s. */
export interface FastPortfolioMetrics {
  readonly metrics: Metrics;
}

const DAILY_LOSS_FLATTEN = 'daily loss breaker: flatten';

/**
 * Backtests one strategy with one parameter set over a portfolio of symbols (shared cash, heat,
 * correlation and breakers), with exactly the reference engine's semantics (`runBacktest`): the same
 * merged calendar, fill rules, ledger in cents, sizing and the shared `decideAtClose`. The fast
 * engine's ways apply (docs/engine.md): each symbol's vectorized rule decides only where it can
 * fire, positions are scalars per symbol, and a close where no strategy enters runs the breakers,
 * stop management and exits on scalars instead of `decideAtClose`. `record: true` also builds the
 * reference's whole report (orders, fills, trades, skipped entries, the risk report); without it
 * only the metrics. Entry orders other than market, trailing stops, the volatility cap, opening
 * positions and strategies without `vectorize` throw `FastPathUnsupportedError`.
 */
export function runFastPortfolio<P>(
  data: FastPortfolio,
  strategy: StrategyDefinition<P>,
  params: P,
  options: BacktestOptions,
  scratch: FastPortfolioScratch,
  record: true,
): BacktestResult;
export function runFastPortfolio<P>(
  data: FastPortfolio,
  strategy: StrategyDefinition<P>,
  params: P,
  options: BacktestOptions,
  scratch: FastPortfolioScratch,
  record?: false,
): FastPortfolioMetrics;
export function runFastPortfolio<P>(
  data: FastPortfolio,
  strategy: StrategyDefinition<P>,
  params: P,
  options: BacktestOptions,
  scratch: FastPortfolioScratch,
  record = false,
): BacktestResult | FastPortfolioMetrics {
  const direction = options.direction ?? 'long-only';
  const rules = options.risk;
  if (rules?.volatilityCap !== undefined) {
    throw new FastPathUnsupportedError(`${strategy.name}: the volatility cap (risk.volatilityCap)`);
  }
  if (options.openingPositions !== undefined && options.openingPositions.length > 0) {
    throw new FastPathUnsupportedError(`${strategy.name}: opening positions`);
  }
  if (strategy.vectorize === undefined) {
    throw new FastPathUnsupportedError(`${strategy.name}: no vectorized rule`);
  }
  const { series, calendar, start, end, span } = data;
  const n = series.length;
  const vectors: VectorRule[] = perSymbol(n, (k) =>
    (strategy.vectorize as NonNullable<typeof strategy.vectorize>)(
      params,
      { direction },
      data.caches[k] as IndicatorCache,
      scratch.codes[k],
    ),
  );
  const bars = data.bars;
  const opens = perSymbol(n, (k) => (series[k] as BarSeries).open);
  const highs = perSymbol(n, (k) => (series[k] as BarSeries).high);
  const lows = perSymbol(n, (k) => (series[k] as BarSeries).low);
  const closes = perSymbol(n, (k) => (series[k] as BarSeries).close);
  const calendarTime = calendar.time;
  const symbolNames = perSymbol(n, (k) => (series[k] as BarSeries).symbol);
  const slip = slippageFraction(options.slippageBps);
  const commission = options.commission;
  const atrs: (Float64Array | undefined)[] = perSymbol(n, (k) =>
    rules === undefined ? undefined : (data.caches[k] as IndicatorCache).atr(rules.stops.atrPeriod),
  );
  const stopRules = rules?.stops;
  const manages =
    stopRules !== undefined &&
    (stopRules.trailAtr !== undefined ||
      stopRules.breakEvenAtR !== undefined ||
      stopRules.timeStopDays !== undefined);

  const b = new Book(n);
  const money = b.money;
  money[0] = Math.round(options.initialCash * 100);
  let nextOrderId = 1;
  const closedPnls: number[] = record ? [] : scratch.pnls;
  closedPnls.length = 0;

  // The report, built only when recorded.
  const orders: OrderRecord[] = [];
  const fills: FillRecord[] = [];
  const trades: TradeRecord[] = [];
  const skippedEntries: SkippedEntry[] = [];
  const breakerEvents: BreakerEvent[] = [];
  const refusedEntries: RefusedEntry[] = [];
  const reducedEntries: ReducedEntry[] = [];
  const entryDecisions: EntryDecision[] = [];
  let stopMoves = 0;
  const exitOrder = perSymbol<OrderRecord | undefined>(n, () => undefined);
  const entryOrder = perSymbol<OrderRecord | undefined>(n, () => undefined);
  const stopOrder = perSymbol<OrderRecord | undefined>(n, () => undefined);
  const targetOrder = perSymbol<OrderRecord | undefined>(n, () => undefined);
  // Orders are built as object literals with the reference's keys in its order (its JSON is the
  // same); an object spread here cost more than the rest of a recorded run.
  /** A market order (an entry, an exit or the end of data's close), recorded with the next id. */
  const marketOrder = (
    k: number,
    side: OrderSide,
    role: OrderRole,
    qty: number,
    time: number,
    reason: string | undefined,
  ): OrderRecord => {
    const symbol = symbolNames[k] as string;
    const order: OrderRecord =
      reason === undefined
        ? {
            symbol,
            side,
            type: 'market',
            role,
            qty,
            timeInForce: 'day',
            createdTime: time,
            id: nextOrderId++,
            status: 'open',
          }
        : {
            symbol,
            side,
            type: 'market',
            role,
            qty,
            timeInForce: 'day',
            createdTime: time,
            reason,
            id: nextOrderId++,
            status: 'open',
          };
    orders.push(order);
    return order;
  };
  /** A protective order of a new position: its stop-loss, or its take-profit (a limit). */
  const protectiveOrder = (
    k: number,
    side: OrderSide,
    qty: number,
    time: number,
    stop: boolean,
    price: number,
  ) => {
    const symbol = symbolNames[k] as string;
    const order: OrderRecord = stop
      ? {
          symbol,
          side,
          qty,
          timeInForce: 'gtc',
          createdTime: time,
          type: 'stop',
          role: 'stop-loss',
          stopPrice: price,
          id: nextOrderId++,
          status: 'open',
        }
      : {
          symbol,
          side,
          qty,
          timeInForce: 'gtc',
          createdTime: time,
          type: 'limit',
          role: 'take-profit',
          limitPrice: price,
          id: nextOrderId++,
          status: 'open',
        };
    orders.push(order);
    return order;
  };

  const execute = (
    k: number,
    order: OrderRecord | undefined,
    buy: boolean,
    q: number,
    price: number,
    time: number,
  ) => {
    const notional = notionalCents(q, price);
    const fee = commissionCents(commission, q, notional);
    money[0] = (money[0] as number) + (buy ? -notional - fee : notional - fee);
    if (record) {
      const o = order as OrderRecord;
      o.status = 'filled';
      o.closedTime = time;
      o.fillPrice = price;
      o.qty = q;
      fills.push({
        orderId: o.id,
        symbol: symbolNames[k] as string,
        side: buy ? 'buy' : 'sell',
        qty: q,
        price,
        time,
        notional: toDollars(notional),
        commission: toDollars(fee),
      });
    }
    return fee;
  };

  const closePosition = (
    k: number,
    order: OrderRecord | undefined,
    role: OrderRole,
    price: number,
    time: number,
  ) => {
    const side = b.side[k] as number;
    const qty = b.qty[k] as number;
    const notional = notionalCents(qty, price);
    const exitCommission = execute(k, order, side === -1, qty, price, time);
    const entryCommission = b.entryCommission[k] as number;
    const pnl = side * (notional - (b.entryNotional[k] as number)) - entryCommission - exitCommission;
    if (record) {
      trades.push({
        symbol: symbolNames[k] as string,
        direction: side === 1 ? 'long' : 'short',
        qty,
        entryTime: b.entryTime[k] as number,
        entryPrice: b.entryPrice[k] as number,
        exitTime: time,
        exitPrice: price,
        pnl: toDollars(pnl),
        commission: toDollars(entryCommission + exitCommission),
        exitReason: role,
      });
      const stop = stopOrder[k];
      const target = targetOrder[k];
      if (stop !== order) closeOrder(stop, 'cancelled', time, 'position closed');
      if (target !== order) closeOrder(target, 'cancelled', time, 'position closed');
      stopOrder[k] = undefined;
      targetOrder[k] = undefined;
    }
    closedPnls.push(toDollars(pnl));
    b.side[k] = 0;
    b.stopId[k] = 0;
    b.stopPrice[k] = Number.NaN;
    b.targetId[k] = 0;
    b.targetPrice[k] = Number.NaN;
  };

  /** Resting stop and take-profit of symbol k against its bar (`gapOnly`: the open alone). */
  const checkProtective = (k: number, slot: number, gapOnly: boolean) => {
    const side = b.side[k] as number;
    if (side === 0 || slot < (b.armedFrom[k] as number)) return;
    const bar = bars[slot * n + k] as number;
    const o = (opens[k] as Float64Array)[bar] as number;
    const long = side === 1;
    const stop = b.stopPrice[k] as number;
    const target = b.targetPrice[k] as number;
    const hit = protectiveHit(
      long,
      o,
      (highs[k] as Float64Array)[bar] as number,
      (lows[k] as Float64Array)[bar] as number,
      stop,
      target,
      gapOnly,
    );
    if (hit === PROTECTIVE_NONE) return;
    const stopHit = hit === STOP_AT_OPEN || hit === STOP_INTRABAR;
    closePosition(
      k,
      stopHit ? stopOrder[k] : targetOrder[k],
      stopHit ? 'stop-loss' : 'take-profit',
      protectiveFillPrice(hit, long, o, stop, target, slip),
      calendarTime[slot] as number,
    );
  };

  const skip = (time: number, k: number, reason: string, requestedQty: number, placedQty: number) => {
    skippedEntries.push({ time, symbol: symbolNames[k] as string, reason, requestedQty, placedQty });
  };

  /** The entry of symbol k decided at the previous close, at this bar's open (market orders only). */
  const fillEntry = (k: number, slot: number) => {
    b.entryId[k] = 0;
    const order = entryOrder[k];
    entryOrder[k] = undefined;
    const time = calendarTime[slot] as number;
    if ((b.side[k] as number) !== 0) {
      if (record) closeOrder(order, 'cancelled', time, 'position still open');
      return;
    }
    const buy = (b.entrySide[k] as number) === 1;
    const price = adversePrice((opens[k] as Float64Array)[bars[slot * n + k] as number] as number, buy, slip);
    if (Number.isNaN(price)) {
      if (record) closeOrder(order, 'expired', time, 'not filled in its session');
      return;
    }
    // Buying power and equity with the other symbols marked at their last close.
    let power = money[0] as number;
    let equity = power;
    for (let x = 0; x < n; x++) {
      const side = b.side[x] as number;
      if (side === 0) continue;
      const value = notionalCents(b.qty[x] as number, b.lastClose[x] as number);
      if (side === -1) power -= 2 * value;
      equity += side * value;
    }
    let q = b.entryQty[k] as number;
    if (Number.isNaN(q)) {
      q = allInFillQty(
        power,
        price,
        commission,
        options,
        toDollars(equity),
        options.products?.[symbolNames[k] as string],
      );
      if (!(q > 0)) {
        if (record) {
          (order as OrderRecord).qty = 0;
          closeOrder(order, 'rejected', time, 'no buying power at the fill');
          skip(time, k, 'no buying power at the fill', 0, 0);
        }
        return;
      }
    }
    const notional = notionalCents(q, price);
    const cost = notional + commissionCents(commission, q, notional);
    if (cost > power) {
      if (record) {
        const reason = `insufficient buying power: needs ${toDollars(cost)}, has ${toDollars(power)}`;
        closeOrder(order, 'rejected', time, reason);
        skip(time, k, reason, q, 0);
      }
      return;
    }
    const fee = execute(k, order, buy, q, price, time);
    const side = b.entrySide[k] as 1 | -1;
    b.side[k] = side;
    b.qty[k] = q;
    b.entryPrice[k] = price;
    b.entryTime[k] = time;
    b.entryNotional[k] = notional;
    b.entryCommission[k] = Math.round(toDollars(fee) * 100);
    b.armedFrom[k] = slot;
    const ref = b.entryRefPending[k] as number;
    b.entryRef[k] = ref;
    b.initialRisk[k] = b.entryHasStop[k] ? Math.abs(ref - (b.entryStop[k] as number)) : Number.NaN;
    b.sessionsHeld[k] = 0;
    const exitSide: OrderSide = side === 1 ? 'sell' : 'buy';
    if (b.entryHasStop[k]) {
      b.stopPrice[k] = b.entryStop[k] as number;
      b.stopId[k] = placeProtective(k, exitSide, q, time, true, b.entryStop[k] as number);
    }
    if (b.entryHasTarget[k]) {
      b.targetPrice[k] = b.entryTarget[k] as number;
      b.targetId[k] = placeProtective(k, exitSide, q, time, false, b.entryTarget[k] as number);
    }
  };
  /** A protective order placed at an entry's fill (`stop`, else the take-profit): its id, its record kept when recording. */
  const placeProtective = (
    k: number,
    exitSide: OrderSide,
    q: number,
    time: number,
    stop: boolean,
    price: number,
  ) => {
    if (!record) return nextOrderId++;
    const o = protectiveOrder(k, exitSide, q, time, stop, price);
    (stop ? stopOrder : targetOrder)[k] = o;
    return o.id;
  };

  // The breakers' state as scalars (`breakerStep`'s, keyed by day number, a day's position its
  // calendar slot), materialized as a `RiskState` only for the report.
  const dayNumber = data.dayNumber;
  const initialState = initialRiskState(options.initialCash);
  const bk = backtestBreakers(rules, initialState.highWaterMark);
  const slots = breakerPositions(data, calendarTime);
  const killSwitch = initialState.killSwitch;
  const materialize = (): RiskState => riskStateOf(bk, slots, killSwitch);

  /**
   * The breakers' bookkeeping of a close (`breakerStep`: `observeEquity`'s rules and the backtest's
   * drawdown auto-reset, what `decideAtClose` does first); returns whether the daily-loss breaker
   * tripped. Recorded, a close where a breaker trips or resets records the shared functions' events.
   */
  const observe = (slot: number, equity: number): boolean => {
    const bits = breakerStep(bk, dayNumber[slot] as number, slot, equity);
    if (record && bits !== 0) {
      breakerEvents.push(...eventsOfStep(bits, bk, calendarTime[slot] as number, equity, BACKTEST_COOL_OFF));
    }
    return (bits & DAILY_LOSS_TRIP) !== 0;
  };

  const exitOrderFor = (k: number, time: number, reason: string | undefined) => {
    if (!record) {
      b.exitId[k] = nextOrderId++;
      return;
    }
    const side: OrderSide = (b.side[k] as number) === 1 ? 'sell' : 'buy';
    const o = marketOrder(k, side, 'exit', b.qty[k] as number, time, reason);
    exitOrder[k] = o;
    b.exitId[k] = o.id;
  };

  /**
   * A close where no strategy enters, with the risk rules: what `decideAtClose` does there (the
   * breakers, flatten on a daily-loss trip, `manageStop`, the strategies' exits, the heat), on scalars.
   */
  const riskClose = (slot: number, equity: number, intents: readonly Intent[]) => {
    const rulesNow = rules as NonNullable<typeof rules>;
    const time = calendarTime[slot] as number;
    const flatten = observe(slot, equity) && rulesNow.flattenOnDailyLoss;
    for (let k = 0; k < n; k++) {
      b.exiting[k] = 0;
      const side = b.side[k] as number;
      if (side === 0 || (bars[slot * n + k] as number) < 0) continue;
      if (flatten) {
        b.exiting[k] = 1;
        exitOrderFor(k, time, DAILY_LOSS_FLATTEN);
        continue;
      }
      if (!manages) continue;
      const hasStop = (b.stopId[k] as number) !== 0;
      const bar = b.lastBar[k] as number;
      const update = manageStop(
        {
          side: side as 1 | -1,
          entryPrice: b.entryPrice[k] as number,
          initialRisk: b.initialRisk[k] as number,
          stop: hasStop ? (b.stopPrice[k] as number) : Number.NaN,
          sessionsHeld: b.sessionsHeld[k] as number,
        },
        b.lastClose[k] as number,
        (atrs[k] as Float64Array)[bar] as number,
        rulesNow.stops,
      );
      // A product's stop is in whole cents, as `decideAtClose` moves it (`productStop`).
      const moved =
        options.products?.[symbolNames[k] as string] === undefined
          ? update.stop
          : productStop(update.stop, side as 1 | -1);
      if (hasStop && moved !== b.stopPrice[k]) {
        b.stopPrice[k] = moved;
        if (record) {
          (stopOrder[k] as OrderRecord).stopPrice = moved;
          stopMoves++;
        }
      }
      if (update.exit !== null) {
        b.exiting[k] = 1;
        exitOrderFor(k, time, update.exit);
      }
    }
    // The strategies' exits, and (recorded) the heat of what stays open: a symbol's heat depends on
    // its own exit alone, so one loop does both.
    let heat = 0;
    for (let k = 0; k < n; k++) {
      const side = b.side[k] as number;
      if (side === 0 || b.exiting[k]) continue;
      if ((intents[k] as Intent).action === 'exit') {
        b.exiting[k] = 1;
        exitOrderFor(k, time, undefined);
        continue;
      }
      if (!record || (b.stopId[k] as number) === 0) continue;
      heat += positionHeat(
        side as 1 | -1,
        b.qty[k] as number,
        b.entryRef[k] as number,
        b.stopPrice[k] as number,
      );
    }
    if (record) money[1] = equity > 0 ? (heat / equity) * 100 : 0;
  };

  // The close's input to the decider, rewritten at each close. The decider keeps it until its next
  // call (the decisions' lazy `heatPct` reads it), so it is left as is until the decisions are read.
  const held: HeldPosition[] = perSymbol(n, () => ({
    side: 1,
    qty: 0,
    entryPrice: 0,
    entryRef: 0,
    initialRisk: Number.NaN,
    stop: undefined,
    sessionsHeld: 0,
  }));
  const rows = perSymbol(n, (k) => ({
    symbol: symbolNames[k] as string,
    hasBar: true,
    close: 0,
    atr: Number.NaN,
    intent: HOLD as Intent,
    position: undefined as HeldPosition | undefined,
  }));
  // The correlation rule's window: the reference pushes every slot's returns into its rolling
  // window from the first slot on, so a ρ at a slot is read from the preparation's returns, the
  // window's sessions up to that slot (`windowCorrelation`), nothing pushed.
  const correlationWindow = rules?.correlation.window ?? 0;
  const returns = data.returns;
  // The portfolio's memo from a preparation's second run on; the first keeps only the close's ρs.
  const memoized = rules !== undefined && data.memoizesCorrelations();
  const closeMemo = new Float64Array(n * n);
  let memoSlot = -1;
  let memo: Float64Array = closeMemo;
  /** ρ of symbols a and c after slot `slot`'s returns (as `RollingCorrelation.correlation`). */
  const rho = (slot: number, a: number, c: number): number => {
    // A close reads several pairs at one slot: its memo looked up once.
    if (slot !== memoSlot) {
      memo = memoized ? data.correlations(correlationWindow, slot) : closeMemo.fill(UNKNOWN_RHO);
      memoSlot = slot;
    }
    const at = a * n + c;
    let value = memo[at] as number;
    if (value === UNKNOWN_RHO) {
      value = windowCorrelation(returns, n, correlationWindow, slot + 1, a, c);
      memo[at] = value;
    }
    return value;
  };
  let decisionSlot = 0;
  const closeInput: Writable<CloseInputAfterBreakers> = {
    time: 0,
    equity: 0,
    buyingPower: 0,
    symbols: rows as SymbolAtClose[],
    closedPnls,
    options,
    explain: record,
    ...(rules === undefined ? {} : { correlation: (a: number, c: number) => rho(decisionSlot, a, c) }),
  };
  // One decider for the run: its decisions are read before its next call.
  const decider = new CloseDecider(true);
  /**
   * A close where a strategy enters (or any close without risk rules): the breakers on the scalars
   * (`observe`, recording their events), then the shared decision after them (`decideAfterBreakers`:
   * what `decideAtClose` does once `observeEquity` has run).
   */
  const decide = (slot: number, equity: number, intents: readonly Intent[]) => {
    const time = calendarTime[slot] as number;
    let power = money[0] as number;
    for (let k = 0; k < n; k++) {
      const row = rows[k] as (typeof rows)[number];
      const side = b.side[k] as number;
      const bar = b.lastBar[k] as number;
      row.hasBar = (bars[slot * n + k] as number) >= 0;
      row.close = b.lastClose[k] as number;
      const atr = atrs[k];
      row.atr = atr === undefined || bar < 0 ? Number.NaN : (atr[bar] as number);
      row.intent = intents[k] as Intent;
      if (side === 0) {
        row.position = undefined;
        continue;
      }
      if (side === -1) power -= 2 * notionalCents(b.qty[k] as number, b.lastClose[k] as number);
      const h = held[k] as Writable<HeldPosition>;
      h.side = side as 1 | -1;
      h.qty = b.qty[k] as number;
      h.entryPrice = b.entryPrice[k] as number;
      h.entryRef = b.entryRef[k] as number;
      h.initialRisk = b.initialRisk[k] as number;
      h.stop = (b.stopId[k] as number) === 0 ? undefined : (b.stopPrice[k] as number);
      h.sessionsHeld = b.sessionsHeld[k] as number;
      row.position = h;
    }
    closeInput.time = time;
    closeInput.equity = equity;
    closeInput.buyingPower = toDollars(power);
    decisionSlot = slot;
    let tripped = false;
    let blocked: string | null = null;
    if (rules !== undefined) {
      tripped = observe(slot, equity);
      blocked = scalarEntryBlock(bk, slot, slots, killSwitch, record);
    }
    const decisions = decider.decideAfterBreakers(closeInput, blocked, tripped);
    if (record) {
      append(refusedEntries, decisions.refused);
      append(reducedEntries, decisions.reduced);
      append(skippedEntries, decisions.skipped);
      append(entryDecisions, decisions.entryDecisions);
    }
    for (const { index, stop } of decisions.stops) {
      if ((b.stopId[index] as number) === 0) continue;
      b.stopPrice[index] = stop;
      if (record) {
        (stopOrder[index] as OrderRecord).stopPrice = stop;
        stopMoves++;
      }
    }
    for (const { index, reason } of decisions.exits) exitOrderFor(index, time, reason);
    for (const entry of decisions.entries) {
      const k = entry.index;
      const enter: EnterIntent = entry.intent;
      if ((enter.order !== undefined && enter.order.type !== 'market') || enter.trailingStop !== undefined) {
        throw new FastPathUnsupportedError(`${strategy.name}: entry orders other than market at the open`);
      }
      b.entryQty[k] = entry.qty;
      b.entrySide[k] = enter.side === 'long' ? 1 : -1;
      b.entryHasStop[k] = entry.stopLoss === undefined ? 0 : 1;
      b.entryStop[k] = entry.stopLoss ?? Number.NaN;
      b.entryHasTarget[k] = entry.takeProfit === undefined ? 0 : 1;
      b.entryTarget[k] = entry.takeProfit ?? Number.NaN;
      b.entryRefPending[k] = entry.entryRef;
      if (record) {
        const o = marketOrder(k, enter.side === 'long' ? 'buy' : 'sell', 'entry', entry.qty, time, undefined);
        entryOrder[k] = o;
        b.entryId[k] = o.id;
      } else {
        b.entryId[k] = nextOrderId++;
      }
    }
    // The heat is read (and computed) only for the record.
    if (record) money[1] = decisions.heatPct;
  };

  /** Every symbol flat, with no order pending. */
  const idle = (): boolean => {
    for (let x = 0; x < n; x++) {
      if ((b.side[x] as number) !== 0 || (b.entryId[x] as number) !== 0 || (b.exitId[x] as number) !== 0) {
        return false;
      }
    }
    return true;
  };
  const codesOf = perSymbol(n, (k) => (vectors[k] as VectorRule).codes);
  const flatMasks = new Int32Array(n);
  const longMasks = new Int32Array(n);
  const shortMasks = new Int32Array(n);
  for (let x = 0; x < n; x++) {
    const v = vectors[x] as VectorRule;
    flatMasks[x] = v.flatMask;
    longMasks[x] = v.longMask;
    shortMasks[x] = v.shortMask;
  }
  // Flat stretches are skipped only where the breakers cannot trip at a constant equity.
  const skipFlat = rules === undefined || (bk.dailyLossLimit > 0 && bk.maxDrawdown > 0);
  /**
   * Closes `from`..`to`, every symbol flat with nothing pending and every rule holding, at the
   * equity of the close before `from` (observed): the curve, the symbols' last bars and the
   * breakers' bookkeeping. While a drawdown halt holds, each close
   * runs the per-close code (the cool-off counts the days and resets the halt); after it, at a
   * constant equity, a day change only makes the day's start equity that equity (no loss, no new
   * drawdown, as both limits are positive), so the rest is one step to the last close's day.
   */
  const flatStretch = (from: number, to: number, equity: number) => {
    for (let slot = from; slot <= to; slot++) {
      const k = slot - start;
      equityTime[k] = calendarTime[slot] as number;
      equityValue[k] = equity;
      inMarket[k] = 0;
    }
    for (let x = 0; x < n; x++) {
      const bar = data.lastBar[to * n + x] as number;
      if (bar < 0) continue;
      b.lastBar[x] = bar;
      b.lastClose[x] = (series[x] as BarSeries).close[bar] as number;
    }
    if (rules === undefined) return;
    let slot = from;
    for (; slot <= to && bk.haltSessions >= 0; slot++) {
      riskClose(slot, equity, intents);
      if (heatPct !== undefined) heatPct[slot - start] = money[1] as number;
    }
    if (slot > to) return;
    breakerSkipTo(bk, dayNumber[to] as number, to);
  };

  const curve = record
    ? { time: new Float64Array(span), equity: new Float64Array(span), inMarket: new Uint8Array(span) }
    : scratch.buffers;
  const equityTime = curve.time;
  const equityValue = curve.equity;
  const inMarket = curve.inMarket;
  const heatPct = record && rules !== undefined ? new Float64Array(span) : undefined;
  const intents = perSymbol<Intent>(n, () => HOLD);

  // Warm-up slots: no trading, the strategies' arrays need no feed; only each symbol's last bar moves.
  if (start > 0) {
    for (let k = 0; k < n; k++) {
      const bar = data.lastBar[(start - 1) * n + k] as number;
      if (bar < 0) continue;
      b.lastBar[k] = bar;
      b.lastClose[k] = (closes[k] as Float64Array)[bar] as number;
    }
  }

  // The book's arrays as locals of the slot loop (the closures above read them through `b`).
  const { side: sides, exitId: exitIds, entryId: entryIds, lastBar: lastBars, lastClose: lastCloses } = b;
  const { qty: qtys, sessionsHeld } = b;
  for (let slot = start; slot <= end; slot++) {
    const time = calendarTime[slot] as number;
    // The open: signal exits, then stops and targets the open gapped through; then the entries;
    // then the protective orders against the bars' ranges.
    const row0 = slot * n;
    for (let k = 0; k < n; k++) {
      if ((bars[row0 + k] as number) < 0 || (sides[k] as number) === 0) continue;
      if ((exitIds[k] as number) !== 0) {
        exitIds[k] = 0;
        const order = exitOrder[k];
        exitOrder[k] = undefined;
        const side = sides[k] as number;
        const open = (opens[k] as Float64Array)[bars[row0 + k] as number] as number;
        closePosition(k, order, 'exit', adversePrice(open, side === -1, slip), time);
      } else {
        checkProtective(k, slot, true);
      }
    }
    for (let k = 0; k < n; k++) {
      if ((bars[row0 + k] as number) >= 0 && (entryIds[k] as number) !== 0) fillEntry(k, slot);
    }
    for (let k = 0; k < n; k++) {
      if ((bars[row0 + k] as number) >= 0) checkProtective(k, slot, false);
    }
    // The close: marks, then each symbol's rule where it can fire.
    let anyOpen = 0;
    let allHold = true;
    let anyEnter = false;
    for (let k = 0; k < n; k++) {
      const bar = bars[row0 + k] as number;
      const side = sides[k] as number;
      if (bar >= 0) {
        lastBars[k] = bar;
        lastCloses[k] = (closes[k] as Float64Array)[bar] as number;
        const code =
          ((codesOf[k] as Uint8Array)[bar] as number) &
          ((side === 0 ? flatMasks[k] : side === 1 ? longMasks[k] : shortMasks[k]) as number);
        const intent =
          code === 0
            ? HOLD
            : (vectors[k] as VectorRule).decide(bar, side === 0 ? 'flat' : side === 1 ? 'long' : 'short');
        intents[k] = intent;
        if (intent.action !== 'hold') {
          allHold = false;
          if (intent.action === 'enter') anyEnter = true;
        }
      } else {
        intents[k] = HOLD;
      }
      if (side !== 0) anyOpen = 1;
    }
    const k = slot - start;
    equityTime[k] = time;
    inMarket[k] = anyOpen;
    if (slot === end) break;
    let equityCents = money[0] as number;
    for (let x = 0; x < n; x++) {
      const side = sides[x] as number;
      if (side === 0) continue;
      equityCents += side * notionalCents(qtys[x] as number, lastCloses[x] as number);
      if ((bars[row0 + x] as number) >= 0) sessionsHeld[x] = (sessionsHeld[x] as number) + 1;
    }
    const equity = toDollars(equityCents);
    equityValue[k] = equity;
    money[1] = 0;
    if (rules === undefined) {
      if (!allHold) decide(slot, equity, intents);
    } else if (anyEnter) {
      decide(slot, equity, intents);
    } else {
      riskClose(slot, equity, intents);
    }
    if (heatPct !== undefined) heatPct[k] = money[1] as number;
    // Every symbol flat with nothing pending: every close up to the next one where a symbol's rule
    // can enter holds at this equity (docs/engine.md); they are filled in one step.
    if (skipFlat && idle()) {
      let next = slot + 1;
      for (; next < end; next++) {
        let fires = false;
        for (let x = 0; x < n && !fires; x++) {
          const bar = bars[next * n + x] as number;
          fires = bar >= 0 && (((codesOf[x] as Uint8Array)[bar] as number) & (flatMasks[x] as number)) !== 0;
        }
        if (fires) break;
      }
      if (next > slot + 1) {
        flatStretch(slot + 1, next - 1, equity);
        slot = next - 1;
      }
    }
  }

  // End of data: pending orders lapse; positions close at the last close unless held.
  const endTime = calendarTime[end] as number;
  for (let k = 0; k < n; k++) {
    if (record) {
      closeOrder(exitOrder[k], 'cancelled', endTime, 'end of data');
      closeOrder(entryOrder[k], 'cancelled', endTime, 'end of data');
      exitOrder[k] = undefined;
      entryOrder[k] = undefined;
    }
    b.exitId[k] = 0;
    b.entryId[k] = 0;
    const side = b.side[k] as number;
    if (side === 0 || options.endOfData === 'hold') continue;
    let order: OrderRecord | undefined;
    if (record) {
      order = marketOrder(
        k,
        side === 1 ? 'sell' : 'buy',
        'end-of-data',
        b.qty[k] as number,
        endTime,
        undefined,
      );
    } else {
      nextOrderId++;
    }
    closePosition(
      k,
      order,
      'end-of-data',
      adversePrice(b.lastClose[k] as number, side === -1, slip),
      endTime,
    );
  }
  let finalCents = money[0] as number;
  for (let k = 0; k < n; k++) {
    const side = b.side[k] as number;
    if (side !== 0) finalCents += side * notionalCents(b.qty[k] as number, b.lastClose[k] as number);
  }
  equityValue[span - 1] = toDollars(finalCents);
  const finalEquity = equityValue[span - 1] as number;
  const periodsPerYear = options.periodsPerYear ?? DEFAULT_PERIODS_PER_YEAR;
  const metrics = computeMetrics({
    time: equityTime,
    equity: equityValue,
    initialEquity: options.initialCash,
    inMarket,
    tradePnls: closedPnls,
    buyHoldReturnPct: data.buyHoldReturnPct,
    riskFreeRate: options.riskFreeRate,
    periodsPerYear,
  });
  if (!record) return { metrics };

  if (heatPct !== undefined) {
    let heat = 0;
    for (let k = 0; k < n; k++) {
      const side = b.side[k] as number;
      if (side === 0 || stopOrder[k] === undefined) continue;
      heat += positionHeat(
        side as 1 | -1,
        b.qty[k] as number,
        b.entryRef[k] as number,
        (stopOrder[k] as OrderRecord).stopPrice as number,
      );
    }
    heatPct[span - 1] = finalEquity > 0 ? (heat / finalEquity) * 100 : 0;
  }
  const open: TradeRecord[] = [];
  for (let k = 0; k < n; k++) {
    const side = b.side[k] as number;
    if (side === 0) continue;
    closeOrder(stopOrder[k], 'cancelled', endTime, 'end of data');
    closeOrder(targetOrder[k], 'cancelled', endTime, 'end of data');
    const entryCommission = b.entryCommission[k] as number;
    const marked = notionalCents(b.qty[k] as number, b.lastClose[k] as number);
    open.push({
      symbol: symbolNames[k] as string,
      direction: side === 1 ? 'long' : 'short',
      qty: b.qty[k] as number,
      entryTime: b.entryTime[k] as number,
      entryPrice: b.entryPrice[k] as number,
      exitTime: null,
      exitPrice: null,
      pnl: toDollars(side * (marked - (b.entryNotional[k] as number)) - entryCommission),
      commission: toDollars(entryCommission),
      exitReason: null,
    });
  }
  return {
    symbols: symbolNames,
    orders,
    fills,
    trades: [...trades, ...open],
    skippedEntries,
    equity: { time: equityTime, equity: equityValue, inMarket },
    metrics,
    periodsPerYear,
    intraday: series.some((s) => s.intraday),
    ...(rules === undefined || heatPct === undefined
      ? {}
      : {
          risk: {
            peakHeatPct: peakOf(heatPct),
            heatPct,
            breakerEvents,
            refusedEntries,
            reducedEntries,
            entryDecisions,
            stopMoves,
            finalState: materialize(),
            correlation: correlationMatrix(n, (a, c) => rho(end, a, c)),
          },
        }),
  };
}

/**
 * One element per symbol, pushed into an array literal: the array has the same map whichever tier
 * of V8 runs this (an `Array.prototype.map` the optimizing compiler inlines makes an array of
 * another elements kind than the builtin's, and every closure optimized on the one deoptimizes on
 * the other: a cascade of deoptimizations some thirty runs in, while the engine warms up).
 */
function perSymbol<T>(n: number, f: (k: number) => T): T[] {
  const out: T[] = [];
  for (let k = 0; k < n; k++) out.push(f(k));
  return out;
}

/** The largest element of a curve, at least 0 (a NaN element makes it NaN, as `Math.max` does). */
function peakOf(values: Float64Array): number {
  let peak = 0;
  for (let i = 0; i < values.length; i++) peak = Math.max(peak, values[i] as number);
  return peak;
}

/** The n x n matrix of `rho` (1 on the diagonal), as `RollingCorrelation.matrix` gives it. */
function correlationMatrix(n: number, rho: (a: number, c: number) => number): number[][] {
  const matrix: number[][] = [];
  for (let a = 0; a < n; a++) {
    const row: number[] = [];
    for (let c = 0; c < n; c++) row.push(a === c ? 1 : rho(a, c));
    matrix.push(row);
  }
  return matrix;
}

/** Appends `from` to `to` (no spread call for the usual empty list). */
function append<T>(to: T[], from: readonly T[]): void {
  for (let i = 0; i < from.length; i++) to.push(from[i] as T);
}

/** The checks `runBacktest` makes before it runs, so the fast path fails where and as it does. */
function checkInput<P>(input: BacktestInput<P>): P {
  validateOptions(input.options);
  if (input.series.length === 0) throw new InsufficientDataError('no bar series to backtest');
  const params = input.strategy.params.parse(input.params);
  checkDirection(input.strategy, input.options);
  return params;
}

/**
 * `runBacktest` through the fast engine's portfolio mode (the whole report, equal to the
 * reference's), or on the reference engine for what the fast engine does not model. What
 * `quantshift backtest` runs.
 */
export function backtestPortfolio<P>(input: BacktestInput<P>): BacktestResult {
  const params = checkInput(input);
  const { options } = input;
  const data = new FastPortfolio(input.series, options.startIndex, options.endIndex, true);
  try {
    return runFastPortfolio(data, input.strategy, params, options, new FastPortfolioScratch(data), true);
  } catch (error) {
    if (!(error instanceof FastPathUnsupportedError)) throw error;
    return runBacktest(input);
  }
}

/**
 * The metrics of every parameter combination on one portfolio, in combination order, equal to
 * `runBacktest`'s: the portfolio prepared once, the buffers reused; a combination the fast engine
 * does not model runs on the reference engine.
 */
export function sweepFastPortfolio<P>(
  series: readonly BarSeries[],
  strategy: StrategyDefinition<P>,
  baseParams: Readonly<Record<string, unknown>>,
  combos: readonly Readonly<Record<string, unknown>>[],
  options: BacktestOptions,
): Metrics[] {
  validateOptions(options);
  checkDirection(strategy, options);
  const data = new FastPortfolio(series, options.startIndex, options.endIndex);
  const scratch = new FastPortfolioScratch(data);
  return combos.map((combo) => {
    const raw = { ...baseParams, ...combo };
    const params = strategy.params.parse(raw);
    try {
      return runFastPortfolio(data, strategy, params, options, scratch).metrics;
    } catch (error) {
      if (!(error instanceof FastPathUnsupportedError)) throw error;
      return runBacktest({ series, strategy, params: raw, options }).metrics;
    }
  });
}
