import { InsufficientDataError, InvalidParameterError } from '../errors.js';
import {
  adversePrice,
  type EntryFill,
  fillEntry as fillEntryOrder,
  PROTECTIVE_NONE,
  protectiveFillPrice,
  protectiveHit,
  STOP_AT_OPEN,
  STOP_INTRABAR,
  slippageFraction,
  tighterStop,
  trailingLevel,
} from '../execution/fill-rules.js';
import { Atr } from '../indicators/index.js';
import { type Cents, commissionCents, notionalCents, toDollars } from '../ledger/money.js';
import { sharedCalendar } from '../market/align.js';
import type { BarSeries } from '../market/types.js';
import { utcDay } from '../market/utc-day.js';
import { computeMetrics, DEFAULT_PERIODS_PER_YEAR } from '../metrics/index.js';
import {
  BACKTEST_COOL_OFF,
  type BreakerEvent,
  type HeatPosition,
  initialRiskState,
  portfolioHeat,
  type RiskState,
  RollingCorrelation,
  RollingVolatility,
} from '../risk/index.js';
import { allInFillQty } from '../sizing/index.js';
import type {
  EnterIntent,
  Intent,
  PositionSide,
  StrategyDefinition,
  StrategyInstance,
} from '../strategies/types.js';
import { decideAtClose } from '../trading/decide.js';
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
} from './types.js';

interface Position {
  readonly side: 1 | -1;
  readonly qty: number;
  readonly entryPrice: number;
  readonly entryTime: number;
  readonly entryNotional: Cents;
  readonly entryCommission: Cents;
  /** Protective orders, OCO: the first to fill cancels the others. */
  stopLoss: OrderRecord | undefined;
  takeProfit: OrderRecord | undefined;
  trailing: OrderRecord | undefined;
  trailStop: number;
  trailBest: number;
  /** Calendar slot from which the protective orders are live (an intrabar entry arms them on the next bar). */
  armedFrom: number;
  /** The decision close the entry was sized at. */
  readonly entryRef: number;
  /** Distance from `entryRef` to the initial stop (one R); NaN without a stop. */
  readonly initialRisk: number;
  sessionsHeld: number;
}

interface PendingEntry {
  readonly order: OrderRecord;
  readonly intent: EnterIntent;
  readonly entryRef: number;
  /** The stop the position gets: the strategy's, or the risk rules' default. */
  readonly stopLoss: number | undefined;
  readonly takeProfit: number | undefined;
}

interface SymbolState {
  readonly series: BarSeries;
  readonly slots: Int32Array;
  readonly strategy: StrategyInstance;
  position: Position | undefined;
  pendingExit: OrderRecord | undefined;
  pendingEntry: PendingEntry | undefined;
  lastClose: number;
  intent: Intent;
  /** ATR for the risk rules' stops (present when they apply). */
  readonly riskAtr: Atr | undefined;
  atr: number;
}

const sideName = (side: 1 | -1): PositionSide => (side === 1 ? 'long' : 'short');

/** The strategy trades the options' direction (long-only by default), or an `InvalidParameterError`. */
export function checkDirection(
  strategy: Pick<StrategyDefinition<unknown>, 'name' | 'directions'>,
  options: Pick<BacktestOptions, 'direction'>,
): void {
  const direction = options.direction ?? 'long-only';
  if (!strategy.directions.includes(direction)) {
    throw new InvalidParameterError(
      `direction ${direction}: strategy ${strategy.name} supports ${strategy.directions.join(', ')}`,
    );
  }
}

/** An open order closed unfilled (cancelled, expired or rejected) at `time`, with the reason; a closed one is left. */
export function closeOrder(
  order: OrderRecord | undefined,
  status: 'cancelled' | 'expired' | 'rejected',
  time: number,
  reason: string,
): void {
  if (order === undefined || order.status !== 'open') return;
  order.status = status;
  order.closedTime = time;
  order.reason = reason;
}
/**
 * Runs an event-driven backtest over one portfolio of symbols with shared cash.
 *
 * Each calendar slot t, per symbol with a bar at t, in this order:
 * 1. At the open: signal exits fill at the open; resting protective stops and take-profits that the
 *    open gapped through fill at the open; then entries decided at t-1 fill by their type.
 * 2. Intrabar: live protective orders fill by the bar's range; when one bar touches both the stop and
 *    the take-profit, the stop wins. A trailing stop is checked at its level from the previous bar and
 *    then ratchets with the bar's best price.
 * 3. At the close: positions are marked, then the strategy sees the bar and decides for t+1.
 * See docs/backtest.md for every fill rule.
 */
export function runBacktest<P>(input: BacktestInput<P>): BacktestResult {
  const { options } = input;
  validateOptions(options);
  if (input.series.length === 0) throw new InsufficientDataError('no bar series to backtest');
  const params = input.strategy.params.parse(input.params);
  checkDirection(input.strategy, options);
  const calendar = sharedCalendar(input.series);
  const slotCount = calendar.time.length;
  const start = options.startIndex ?? 0;
  const end = options.endIndex ?? slotCount - 1;
  if (slotCount === 0 || start > end || start < 0 || end >= slotCount) {
    throw new InsufficientDataError(
      `no bars to trade in the requested range (slots ${start}..${end} of ${slotCount})`,
    );
  }

  const symbols: SymbolState[] = input.series.map((series, k) => ({
    series,
    slots: calendar.index[k] as Int32Array,
    strategy: input.strategy.create(params, { direction: options.direction ?? 'long-only' }),
    position: undefined,
    pendingExit: undefined,
    pendingEntry: undefined,
    lastClose: Number.NaN,
    intent: { action: 'hold' },
    riskAtr: options.risk === undefined ? undefined : new Atr(options.risk.stops.atrPeriod),
    atr: Number.NaN,
  }));

  const rules = options.risk;
  let riskState: RiskState = initialRiskState(options.initialCash);
  const breakerEvents: BreakerEvent[] = [];
  const refusedEntries: RefusedEntry[] = [];
  const reducedEntries: ReducedEntry[] = [];
  const entryDecisions: EntryDecision[] = [];
  const closedPnls: number[] = [];
  let stopMoves = 0;
  const correlation =
    rules === undefined ? undefined : new RollingCorrelation(symbols.length, rules.correlation.window);
  const volatility =
    rules?.volatilityCap === undefined
      ? undefined
      : new RollingVolatility(
          symbols.length,
          rules.volatilityCap.window,
          options.periodsPerYear ?? DEFAULT_PERIODS_PER_YEAR,
        );
  const dailyReturns = new Float64Array(symbols.length);

  const orders: OrderRecord[] = [];
  const fills: FillRecord[] = [];
  const trades: TradeRecord[] = [];
  const skippedEntries: SkippedEntry[] = [];
  const slip = slippageFraction(options.slippageBps);
  let cash: Cents = Math.round(options.initialCash * 100);

  const span = end - start + 1;
  const equityTime = new Float64Array(span);
  const equityValue = new Float64Array(span);
  const inMarket = new Uint8Array(span);
  const heatPct = new Float64Array(span);

  const newOrder = (fields: Omit<OrderRecord, 'id' | 'status'>): OrderRecord => {
    const order: OrderRecord = { ...fields, id: orders.length + 1, status: 'open' };
    orders.push(order);
    return order;
  };
  const adverse = (price: number, side: OrderSide) => adversePrice(price, side === 'buy', slip);

  /** Short positions tie up their value twice in cash terms: buying power = cash − 2 × short value. */
  const buyingPower = (priceOf: (s: SymbolState) => number): Cents => {
    let bp = cash;
    for (const s of symbols) {
      if (s.position?.side === -1) bp -= 2 * notionalCents(s.position.qty, priceOf(s));
    }
    return bp;
  };
  const equityAt = (priceOf: (s: SymbolState) => number): Cents => {
    let value = cash;
    for (const s of symbols) {
      if (s.position !== undefined) value += s.position.side * notionalCents(s.position.qty, priceOf(s));
    }
    return value;
  };

  const execute = (
    s: SymbolState,
    order: OrderRecord,
    qty: number,
    price: number,
    time: number,
  ): FillRecord => {
    const notional = notionalCents(qty, price);
    const commission = commissionCents(options.commission, qty, notional);
    cash += order.side === 'buy' ? -notional - commission : notional - commission;
    order.status = 'filled';
    order.closedTime = time;
    order.fillPrice = price;
    order.qty = qty;
    const fill: FillRecord = {
      orderId: order.id,
      symbol: s.series.symbol,
      side: order.side,
      qty,
      price,
      time,
      notional: toDollars(notional),
      commission: toDollars(commission),
    };
    fills.push(fill);
    return fill;
  };

  const closePosition = (s: SymbolState, order: OrderRecord, price: number, time: number) => {
    const position = s.position as Position;
    const notional = notionalCents(position.qty, price);
    const exitCommission = commissionCents(options.commission, position.qty, notional);
    execute(s, order, position.qty, price, time);
    const pnl =
      position.side * (notional - position.entryNotional) - position.entryCommission - exitCommission;
    trades.push({
      symbol: s.series.symbol,
      direction: position.side === 1 ? 'long' : 'short',
      qty: position.qty,
      entryTime: position.entryTime,
      entryPrice: position.entryPrice,
      exitTime: time,
      exitPrice: price,
      pnl: toDollars(pnl),
      commission: toDollars(position.entryCommission + exitCommission),
      exitReason: order.role,
    });
    closedPnls.push(toDollars(pnl));
    for (const protective of [position.stopLoss, position.takeProfit, position.trailing]) {
      if (protective !== order) closeOrder(protective, 'cancelled', time, 'position closed');
    }
    s.position = undefined;
  };

  const openPosition = (
    s: SymbolState,
    pending: PendingEntry,
    qty: number,
    price: number,
    slot: number,
    armedNow: boolean,
  ) => {
    const { order, intent } = pending;
    const time = calendar.time[slot] as number;
    const fill = execute(s, order, qty, price, time);
    const side: 1 | -1 = intent.side === 'long' ? 1 : -1;
    const exitSide: OrderSide = side === 1 ? 'sell' : 'buy';
    const position: Position = {
      side,
      qty,
      entryPrice: price,
      entryTime: time,
      entryNotional: notionalCents(qty, price),
      entryCommission: Math.round(fill.commission * 100),
      stopLoss: undefined,
      takeProfit: undefined,
      trailing: undefined,
      trailStop: Number.NaN,
      trailBest: price,
      armedFrom: armedNow ? slot : slot + 1,
      entryRef: pending.entryRef,
      initialRisk:
        pending.stopLoss === undefined ? Number.NaN : Math.abs(pending.entryRef - pending.stopLoss),
      sessionsHeld: 0,
    };
    const protective = {
      symbol: s.series.symbol,
      side: exitSide,
      qty,
      timeInForce: 'gtc' as const,
      createdTime: time,
    };
    if (pending.stopLoss !== undefined) {
      position.stopLoss = newOrder({
        ...protective,
        type: 'stop',
        role: 'stop-loss',
        stopPrice: pending.stopLoss,
      });
    }
    if (pending.takeProfit !== undefined) {
      position.takeProfit = newOrder({
        ...protective,
        type: 'limit',
        role: 'take-profit',
        limitPrice: pending.takeProfit,
      });
    }
    if (intent.trailingStop !== undefined) {
      const trail = intent.trailingStop;
      position.trailing = newOrder({
        ...protective,
        type: 'trailing-stop',
        role: 'trailing-stop',
        ...('amount' in trail ? { trailAmount: trail.amount } : { trailPercent: trail.percent }),
      });
      position.trailStop = trailLevel(position, price);
    }
    s.position = position;
  };

  const trailLevel = (position: Position, best: number): number => {
    const order = position.trailing as OrderRecord;
    return trailingLevel(position.side === 1, best, order.trailAmount ?? null, order.trailPercent ?? null);
  };

  /** The protective stop level in force: the tighter of the stop-loss and the trailing stop. */
  const stopLevel = (position: Position): number => {
    const fixed = position.stopLoss?.stopPrice;
    const trailing = position.trailing === undefined ? undefined : position.trailStop;
    if (fixed === undefined) return trailing ?? Number.NaN;
    if (trailing === undefined) return fixed;
    return position.side === 1 ? Math.max(fixed, trailing) : Math.min(fixed, trailing);
  };
  const stopOrder = (position: Position): OrderRecord => {
    if (position.trailing === undefined) return position.stopLoss as OrderRecord;
    if (position.stopLoss === undefined) return position.trailing;
    const fixed = position.stopLoss.stopPrice as number;
    const tighter = position.side === 1 ? position.trailStop > fixed : position.trailStop < fixed;
    return tighter ? position.trailing : position.stopLoss;
  };

  /** Protective orders against one bar. `gapOnly` checks the open alone (before entries fill). */
  const checkProtective = (s: SymbolState, slot: number, bar: number, gapOnly: boolean) => {
    const position = s.position;
    if (position === undefined || slot < position.armedFrom) return;
    const { open, high, low } = s.series;
    const o = open[bar] as number;
    const h = high[bar] as number;
    const l = low[bar] as number;
    const long = position.side === 1;
    const stop = stopLevel(position);
    const target = position.takeProfit?.limitPrice ?? Number.NaN;
    const hit = protectiveHit(long, o, h, l, stop, target, gapOnly);
    if (hit !== PROTECTIVE_NONE) {
      const order =
        hit === STOP_AT_OPEN || hit === STOP_INTRABAR
          ? stopOrder(position)
          : (position.takeProfit as OrderRecord);
      closePosition(
        s,
        order,
        protectiveFillPrice(hit, long, o, stop, target, slip),
        calendar.time[slot] as number,
      );
      return;
    }
    if (gapOnly || position.trailing === undefined) return;
    const best = long ? Math.max(position.trailBest, h) : Math.min(position.trailBest, l);
    position.trailBest = best;
    position.trailStop = tighterStop(long, position.trailStop, trailLevel(position, best));
  };

  const entryFill: EntryFill = { price: Number.NaN, atOpen: false };

  const skip = (time: number, s: SymbolState, reason: string, requestedQty?: number, placedQty?: number) => {
    skippedEntries.push({
      time,
      symbol: s.series.symbol,
      reason,
      ...(requestedQty === undefined ? {} : { requestedQty }),
      ...(placedQty === undefined ? {} : { placedQty }),
    });
  };

  const fillEntry = (s: SymbolState, slot: number, bar: number) => {
    const pending = s.pendingEntry as PendingEntry;
    s.pendingEntry = undefined;
    const { order, intent } = pending;
    const time = calendar.time[slot] as number;
    if (s.position !== undefined) {
      closeOrder(order, 'cancelled', time, 'position still open');
      return;
    }
    const { open, high, low } = s.series;
    const { price, atOpen } = fillEntryOrder(
      intent.order ?? { type: 'market' },
      order.side === 'buy',
      open[bar] as number,
      high[bar] as number,
      low[bar] as number,
      slip,
      entryFill,
    );
    if (Number.isNaN(price)) {
      closeOrder(order, 'expired', time, 'not filled in its session');
      return;
    }
    const markAtOpen = (x: SymbolState) => (x === s ? price : x.lastClose);
    const power = buyingPower(markAtOpen);
    let qty = order.qty;
    if (Number.isNaN(qty)) {
      const capEquity = options.maxPositionFraction === undefined ? 0 : toDollars(equityAt(markAtOpen));
      qty = allInFillQty(
        power,
        price,
        options.commission,
        options,
        capEquity,
        options.products?.[s.series.symbol],
      );
      if (!(qty > 0)) {
        order.qty = 0;
        closeOrder(order, 'rejected', time, 'no buying power at the fill');
        skip(time, s, 'no buying power at the fill', 0, 0);
        return;
      }
    }
    const notional = notionalCents(qty, price);
    const cost = notional + commissionCents(options.commission, qty, notional);
    if (cost > power) {
      const reason = `insufficient buying power: needs ${toDollars(cost)}, has ${toDollars(power)}`;
      closeOrder(order, 'rejected', time, reason);
      skip(time, s, reason, qty, 0);
      return;
    }
    openPosition(s, pending, qty, price, slot, atOpen);
  };

  const heatPositions = (): HeatPosition[] =>
    symbols.flatMap((s) => {
      const p = s.position;
      const stop = p?.stopLoss?.stopPrice;
      return p === undefined || stop === undefined
        ? []
        : [{ side: p.side, qty: p.qty, entryRef: p.entryRef, stop }];
    });

  let heatNow = 0;
  /** The close's decisions (shared with the live functions), applied to the book as orders. */
  const decide = (slot: number) => {
    const time = calendar.time[slot] as number;
    const markAtClose = (x: SymbolState) => x.lastClose;
    for (const s of symbols) {
      if (s.position !== undefined && (s.slots[slot] as number) >= 0) s.position.sessionsHeld++;
    }
    // Without risk rules, a close where every strategy holds decides nothing.
    if (rules === undefined && symbols.every((s) => s.intent.action === 'hold')) {
      heatNow = 0;
      return;
    }
    const decisions = decideAtClose({
      time,
      day: utcDay(time),
      equity: toDollars(equityAt(markAtClose)),
      buyingPower: toDollars(buyingPower(markAtClose)),
      symbols: symbols.map((s) => ({
        symbol: s.series.symbol,
        hasBar: (s.slots[slot] as number) >= 0,
        close: s.lastClose,
        atr: s.atr,
        intent: s.intent,
        position:
          s.position === undefined
            ? undefined
            : {
                side: s.position.side,
                qty: s.position.qty,
                entryPrice: s.position.entryPrice,
                entryRef: s.position.entryRef,
                initialRisk: s.position.initialRisk,
                stop: s.position.stopLoss?.stopPrice,
                sessionsHeld: s.position.sessionsHeld,
              },
      })),
      closedPnls,
      riskState,
      ...(correlation === undefined
        ? {}
        : { correlation: (a: number, b: number) => correlation.correlation(a, b) }),
      ...(volatility === undefined ? {} : { volatility: (a: number) => volatility.volatility(a) }),
      options,
      ...(rules === undefined
        ? {}
        : { drawdownAutoReset: { sessions: rules.drawdownCoolOffDays, by: BACKTEST_COOL_OFF } }),
    });
    riskState = decisions.riskState;
    breakerEvents.push(...decisions.events);
    for (const { index, stop } of decisions.stops) {
      const order = (symbols[index] as SymbolState).position?.stopLoss;
      if (order !== undefined) {
        order.stopPrice = stop;
        stopMoves++;
      }
    }
    for (const { index, reason } of decisions.exits) {
      const s = symbols[index] as SymbolState;
      const position = s.position as Position;
      s.pendingExit = newOrder({
        symbol: s.series.symbol,
        side: position.side === 1 ? 'sell' : 'buy',
        type: 'market',
        role: 'exit',
        qty: position.qty,
        timeInForce: 'day',
        createdTime: time,
        ...(reason === undefined ? {} : { reason }),
      });
    }
    refusedEntries.push(...decisions.refused);
    reducedEntries.push(...decisions.reduced);
    skippedEntries.push(...decisions.skipped);
    entryDecisions.push(...decisions.entryDecisions);
    for (const entry of decisions.entries) {
      const s = symbols[entry.index] as SymbolState;
      const { intent } = entry;
      const order = intent.order ?? { type: 'market' as const };
      s.pendingEntry = {
        intent,
        entryRef: entry.entryRef,
        stopLoss: entry.stopLoss,
        takeProfit: entry.takeProfit,
        order: newOrder({
          symbol: s.series.symbol,
          side: intent.side === 'long' ? 'buy' : 'sell',
          type: order.type,
          role: 'entry',
          qty: entry.qty,
          timeInForce: 'day',
          createdTime: time,
          ...('limitPrice' in order ? { limitPrice: order.limitPrice } : {}),
          ...('stopPrice' in order ? { stopPrice: order.stopPrice } : {}),
        }),
      };
    }
    heatNow = decisions.heatPct;
  };

  /**
   * The opening positions, at the first traded slot before its open: paid for at that slot's close
   * (so the equity at that close is `initialCash`), stops live from the next slot.
   */
  const seedOpening = () => {
    for (const o of options.openingPositions ?? []) {
      const s = symbols.find((x) => x.series.symbol === o.symbol);
      const bar = s === undefined ? -1 : (s.slots[start] as number);
      if (s === undefined || bar < 0)
        throw new InsufficientDataError(`opening position ${o.symbol}: no bar at the first traded slot`);
      if (!(o.qty > 0 && Number.isFinite(o.entryPrice) && o.entryPrice > 0))
        throw new InvalidParameterError(`opening position ${o.symbol}: qty and entryPrice must be positive`);
      const side: 1 | -1 = o.side === 'long' ? 1 : -1;
      cash -= side * notionalCents(o.qty, s.series.close[bar] as number);
      const entryRef = o.entryRef ?? o.entryPrice;
      const position: Position = {
        side,
        qty: o.qty,
        entryPrice: o.entryPrice,
        entryTime: o.entryTime,
        entryNotional: notionalCents(o.qty, o.entryPrice),
        entryCommission: 0,
        stopLoss: undefined,
        takeProfit: undefined,
        trailing: undefined,
        trailStop: Number.NaN,
        trailBest: o.entryPrice,
        armedFrom: start + 1,
        entryRef,
        initialRisk: o.initialRisk ?? Number.NaN,
        sessionsHeld: o.sessionsHeld ?? 0,
      };
      if (o.stop !== undefined)
        position.stopLoss = newOrder({
          symbol: o.symbol,
          side: side === 1 ? 'sell' : 'buy',
          qty: o.qty,
          timeInForce: 'gtc',
          createdTime: calendar.time[start] as number,
          type: 'stop',
          role: 'stop-loss',
          stopPrice: o.stop,
        });
      s.position = position;
    }
  };

  const barScratch = { time: 0, open: 0, high: 0, low: 0, close: 0, volume: 0 };
  for (let slot = 0; slot <= end; slot++) {
    const time = calendar.time[slot] as number;
    const trading = slot >= start;
    if (slot === start) seedOpening();
    if (trading) {
      for (const s of symbols) {
        const bar = s.slots[slot] as number;
        if (bar < 0 || s.position === undefined) continue;
        if (s.pendingExit !== undefined) {
          const order = s.pendingExit;
          s.pendingExit = undefined;
          closePosition(s, order, adverse(s.series.open[bar] as number, order.side), time);
        } else {
          checkProtective(s, slot, bar, true);
        }
      }
      for (const s of symbols) {
        const bar = s.slots[slot] as number;
        if (bar >= 0 && s.pendingEntry !== undefined) fillEntry(s, slot, bar);
      }
      for (const s of symbols) {
        const bar = s.slots[slot] as number;
        if (bar >= 0) checkProtective(s, slot, bar, false);
      }
    }
    let anyOpen = 0;
    for (let index = 0; index < symbols.length; index++) {
      const s = symbols[index] as SymbolState;
      const bar = s.slots[slot] as number;
      if (bar >= 0) {
        const series = s.series;
        dailyReturns[index] = (series.close[bar] as number) / s.lastClose - 1;
        s.lastClose = series.close[bar] as number;
        if (s.riskAtr !== undefined) {
          s.atr = s.riskAtr.update(series.high[bar] as number, series.low[bar] as number, s.lastClose);
        }
        barScratch.time = series.time[bar] as number;
        barScratch.open = series.open[bar] as number;
        barScratch.high = series.high[bar] as number;
        barScratch.low = series.low[bar] as number;
        barScratch.close = s.lastClose;
        barScratch.volume = series.volume[bar] as number;
        s.intent = s.strategy.onBar(barScratch, {
          position: s.position ? sideName(s.position.side) : 'flat',
        });
      } else {
        s.intent = { action: 'hold' };
        dailyReturns[index] = Number.NaN;
      }
      if (s.position !== undefined) anyOpen = 1;
    }
    correlation?.push(dailyReturns);
    volatility?.push(dailyReturns);
    if (!trading) continue;
    const k = slot - start;
    equityTime[k] = time;
    inMarket[k] = anyOpen;
    if (slot < end) {
      equityValue[k] = toDollars(equityAt((x) => x.lastClose));
      decide(slot);
      heatPct[k] = heatNow;
    }
  }

  const endTime = calendar.time[end] as number;
  for (const s of symbols) {
    closeOrder(s.pendingExit, 'cancelled', endTime, 'end of data');
    closeOrder(s.pendingEntry?.order, 'cancelled', endTime, 'end of data');
    s.pendingExit = undefined;
    s.pendingEntry = undefined;
    if (s.position === undefined || options.endOfData === 'hold') continue;
    const position = s.position;
    const order = newOrder({
      symbol: s.series.symbol,
      side: position.side === 1 ? 'sell' : 'buy',
      type: 'market',
      role: 'end-of-data',
      qty: position.qty,
      timeInForce: 'day',
      createdTime: endTime,
    });
    closePosition(s, order, adverse(s.lastClose, order.side), endTime);
  }
  equityValue[span - 1] = toDollars(equityAt((x) => x.lastClose));
  const finalEquity = equityValue[span - 1] as number;
  heatPct[span - 1] =
    rules === undefined || !(finalEquity > 0) ? 0 : (portfolioHeat(heatPositions()) / finalEquity) * 100;
  for (const s of symbols) {
    const position = s.position;
    if (position === undefined) continue;
    for (const protective of [position.stopLoss, position.takeProfit, position.trailing]) {
      closeOrder(protective, 'cancelled', endTime, 'end of data');
    }
    const marked = notionalCents(position.qty, s.lastClose);
    trades.push({
      symbol: s.series.symbol,
      direction: position.side === 1 ? 'long' : 'short',
      qty: position.qty,
      entryTime: position.entryTime,
      entryPrice: position.entryPrice,
      exitTime: null,
      exitPrice: null,
      pnl: toDollars(position.side * (marked - position.entryNotional) - position.entryCommission),
      commission: toDollars(position.entryCommission),
      exitReason: null,
    });
  }

  const closed = trades.filter((t) => t.exitTime !== null);
  const metrics = computeMetrics({
    time: equityTime,
    equity: equityValue,
    initialEquity: options.initialCash,
    inMarket,
    tradePnls: closed.map((t) => t.pnl),
    buyHoldReturnPct: buyHoldReturnPct(symbols, start, end),
    riskFreeRate: options.riskFreeRate,
    periodsPerYear: options.periodsPerYear ?? DEFAULT_PERIODS_PER_YEAR,
  });
  return {
    symbols: symbols.map((s) => s.series.symbol),
    orders,
    fills,
    trades: [...closed, ...trades.filter((t) => t.exitTime === null)],
    skippedEntries,
    equity: { time: equityTime, equity: equityValue, inMarket },
    metrics,
    periodsPerYear: options.periodsPerYear ?? DEFAULT_PERIODS_PER_YEAR,
    intraday: input.series.some((s) => s.intraday),
    ...(rules === undefined
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
            finalState: riskState,
            correlation: (correlation as RollingCorrelation).matrix(),
          },
        }),
  };
}

/** Equal-weight buy-and-hold over the traded span: each symbol's first traded close to its last close. */
function buyHoldReturnPct(symbols: readonly SymbolState[], start: number, end: number): number {
  let sum = 0;
  let count = 0;
  for (const s of symbols) {
    let first = -1;
    let last = -1;
    for (let slot = start; slot <= end; slot++) {
      const bar = s.slots[slot] as number;
      if (bar < 0) continue;
      if (first < 0) first = bar;
      last = bar;
    }
    if (first < 0) continue;
    sum += (s.series.close[last] as number) / (s.series.close[first] as number) - 1;
    count++;
  }
  return count === 0 ? 0 : (sum / count) * 100;
}

export function validateOptions(options: BacktestOptions): void {
  const positive = (name: string, value: number) => {
    if (!(Number.isFinite(value) && value > 0))
      throw new InvalidParameterError(`${name} must be a positive number`);
  };
  const nonNegative = (name: string, value: number) => {
    if (!(Number.isFinite(value) && value >= 0))
      throw new InvalidParameterError(`${name} must be zero or more`);
  };
  positive('initialCash', options.initialCash);
  nonNegative('slippageBps', options.slippageBps);
  if (!(options.cashBuffer >= 0 && options.cashBuffer < 1)) {
    throw new InvalidParameterError('cashBuffer must be in [0, 1)');
  }
  if (
    options.maxPositionFraction !== undefined &&
    !(options.maxPositionFraction > 0 && options.maxPositionFraction <= 1)
  ) {
    throw new InvalidParameterError('maxPositionFraction must be in (0, 1]');
  }
  for (const key of ['perShare', 'perOrder', 'percent', 'minimum'] as const) {
    nonNegative(`commission.${key}`, options.commission[key]);
  }
}

export type { OrderRole };
