import { configProducts, singleStrategy, strategyParams } from '../core/config/schema.js';
import { ProductLimitsMismatchError } from '../core/errors.js';
import { Atr } from '../core/indicators/index.js';
import { toDollars } from '../core/ledger/money.js';
import { orderStyle } from '../core/live/order-style.js';
import { clientOrderId } from '../core/live/orders.js';
import { isUnassigned, sleeveRecords, sleevesShare } from '../core/live/reconcile.js';
import { periodsPerYear } from '../core/market/asset-class.js';
import { type BarSeries, barAt } from '../core/market/types.js';
import { utcDay } from '../core/market/utc-day.js';
import type { BrokerPosition } from '../core/ports/broker.js';
import type {
  IntentRecord,
  IntentStatus,
  PositionRecord,
  PositionsList,
  SessionRecord,
} from '../core/ports/state-store.js';
import { initialRiskState, RollingCorrelation } from '../core/risk/index.js';
import { RollingVolatility } from '../core/risk/volatility.js';
import { getStrategy } from '../core/strategies/index.js';
import type { Intent } from '../core/strategies/types.js';
import { type CloseDecisions, decideAtClose, type HeldPosition } from '../core/trading/decide.js';
import {
  botAssetClass,
  type LiveContext,
  NoSessionError,
  StaleDataError,
  sessionDate,
  UnknownStateError,
} from './context.js';
import { listAsOf, listBookedFills } from './reconcile.js';
import { generateSleeveSignals, type SleeveSignals } from './sleeves.js';
import { exitOrdersNow, workingExitQty } from './stops.js';
import { orderState, orderWindowClosed } from './submit.js';

const DAY_MS = 86_400_000;

const shiftDate = (date: string, days: number) => utcDay(Date.parse(`${date}T00:00:00Z`) + days * DAY_MS);

/** The previous trading session before `day`, from the broker's calendar. */
export async function previousSession(ctx: LiveContext, day: string): Promise<string> {
  const calendar = await ctx.broker.getCalendar({ from: shiftDate(day, -15), to: day });
  const earlier = calendar.filter((d) => d.date < day).map((d) => d.date);
  const previous = earlier[earlier.length - 1];
  if (previous === undefined)
    throw new StaleDataError(`no trading session before ${day} in the broker's calendar`);
  return previous;
}

/** Bar cache writes in flight at once. */
const CACHE_WRITERS = 16;

async function dailyBars(
  ctx: LiveContext,
  symbols: readonly string[],
  from: string,
  to: string,
  adjustment: 'all' | 'raw',
): Promise<BarSeries[]> {
  const key = (symbol: string) => `bars:${symbol}:${from}:${to}:${adjustment}`;
  const cached: (BarSeries | undefined)[] = await Promise.all(
    symbols.map(async (symbol) => {
      if (ctx.cache === undefined) return undefined;
      try {
        return await ctx.cache.getBars(key(symbol));
      } catch (error) {
        ctx.log.warn('bar cache read failed; fetching from the market data API', {
          symbol,
          error: String(error),
        });
        return undefined;
      }
    }),
  );
  const missing = symbols.filter((_, i) => cached[i] === undefined);
  const fetched =
    missing.length === 0 ? [] : await ctx.marketData.getDailyBars({ symbols: missing, from, to, adjustment });
  // Cache writes go in parallel, a few at a time: one by one, 500 symbols took seconds.
  const cache = ctx.cache;
  if (cache !== undefined) {
    let next = 0;
    const writer = async () => {
      while (next < fetched.length) {
        const series = fetched[next++] as BarSeries;
        try {
          await cache.putBars(key(series.symbol), series, 6 * 3600);
        } catch (error) {
          ctx.log.warn('bar cache write failed', { symbol: series.symbol, error: String(error) });
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(CACHE_WRITERS, fetched.length) }, writer));
  }
  return symbols.map((symbol, i) => cached[i] ?? (fetched[missing.indexOf(symbol)] as BarSeries));
}

/** The outcome of signal generation for a trading day. */
export interface SignalsResult {
  readonly day: string;
  readonly status: 'closed' | 'decided';
  readonly intents: readonly IntentRecord[];
  readonly decisions?: CloseDecisions;
  readonly outsideWatchlist: readonly string[];
  /** A sleeves config: the reallocation at the close and the sleeves' state decided on. */
  readonly sleeves?: Pick<SleeveSignals, 'reallocation' | 'state'>;
}

/**
 * The crypto bot: each product's limits as the exchange publishes them (base increment, minimum
 * size, quote minimum) must be the config's `products:`, which the backtest sizes on; a difference
 * stops the signal step before any decision (`ProductLimitsMismatchError`, naming each product and
 * figure): the live quantities would no longer be the backtest's. Nothing to check for the equity bot.
 */
export async function checkProductLimits(ctx: LiveContext): Promise<void> {
  const table = configProducts(ctx.config);
  const source = ctx.crypto?.products;
  if (table === undefined || source === undefined) return;
  const same = (a: number, b: number) => Math.abs(a - b) <= 1e-12 * Math.max(1, Math.abs(a), Math.abs(b));
  const differences: string[] = [];
  for (const want of Object.values(table)) {
    const got = await source.getProduct(want.productId);
    const figures: [string, number, number][] = [
      ['baseIncrement', want.baseIncrement, got.baseIncrement],
      ['minSize', want.baseMinSize, got.baseMinSize],
      ['quoteMinSize', want.quoteMinSize ?? 0, got.quoteMinSize ?? 0],
    ];
    for (const [name, config, exchange] of figures) {
      if (!same(config, exchange))
        differences.push(`${want.productId} ${name}: ${config} in the config, ${exchange} at the exchange`);
    }
  }
  if (differences.length > 0) {
    throw new ProductLimitsMismatchError(
      `products: the exchange's limits differ from the config's (${differences.join('; ')}); update products: in the config (the backtest sizes on it) and validate again`,
    );
  }
}

/** Intent states in which an order sells nothing more and never did unless it has fills. */
const GONE: readonly IntentStatus[] = ['cancelled', 'expired', 'rejected', 'skipped'];

/**
 * The exits decided at the close, less the shares the day's exits of the same position already
 * sell or sold: the kill switch's flatten (or a crossed stop's exit) sent before the signals, an
 * open sell placed by hand, counted by the kill switch's and the risk check's rule
 * ({@link workingExitQty}: what they still sell at the broker; a flatten cancelled or failed
 * unfilled sells nothing, and what one filled is no longer in the broker's position). The open
 * orders are read BEFORE the positions: a fill in between is subtracted twice at worst (an exit
 * too small, which the next session's signals finish), never missed (a second sale).
 * An exit left with no share is recorded `skipped` (taken over; never sent), one left with some
 * sells only those; either is warned ("Exits taken over by the day's exits").
 */
async function leftByTheDaysExits(
  ctx: LiveContext,
  day: string,
  now: string,
  exits: readonly IntentRecord[],
  /** The stored positions list and the day's session the caller read already. */
  stored: PositionsList | undefined,
  session: SessionRecord,
): Promise<IntentRecord[]> {
  if (exits.length === 0) return [];
  const symbols = exits.map((e) => e.symbol);
  const open = await ctx.broker.listOrders({ status: 'open', symbols });
  const todays = (await ctx.store.listIntents(day)).filter(
    (i) => i.purpose === 'exit' && symbols.includes(i.symbol),
  );
  // An exit the broker had and no longer lists as open (filled, cancelled, expired) is asked for
  // by its id, so that its stored state, maybe stale, is not counted as still selling.
  const orders = await exitOrdersNow(
    ctx,
    open,
    todays.filter((i) => !exits.some((e) => e.clientOrderId === i.clientOrderId)),
  );
  const positions = await ctx.broker.getPositions();
  const out: IntentRecord[] = [];
  const takenOver: string[] = [];
  for (const exit of exits) {
    // Already recorded (a rerun of the step): it stays as it is.
    if (todays.some((i) => i.clientOrderId === exit.clientOrderId)) {
      out.push(exit);
      continue;
    }
    const broker = positions.find((p) => p.symbol === exit.symbol)?.qty ?? 0;
    const heldNow = Math.max(
      0,
      sleevesShare(broker, stored?.positions, exit.symbol) * (exit.side === 'sell' ? 1 : -1),
    );
    const working = workingExitQty(exit.symbol, exit.side, todays, orders, {
      ownId: exit.clientOrderId,
      maySend: (i) => !orderWindowClosed(ctx, i, session, now),
    });
    const left = Math.min(exit.qty, heldNow - working);
    if (left >= exit.qty) {
      out.push(exit);
      continue;
    }
    // Named: the day's exits of these shares that sold or still sell some (as the broker has them).
    const by = todays
      .filter((i) => {
        if (i.clientOrderId === exit.clientOrderId || i.symbol !== exit.symbol || i.side !== exit.side)
          return false;
        const order = orders.find((o) => o.clientOrderId === i.clientOrderId);
        return order === undefined
          ? i.filledQty > 0 || !GONE.includes(i.status)
          : order.filledQty > 0 || !GONE.includes(orderState(order).status);
      })
      .map((i) => i.clientOrderId);
    const names = `${exit.qty - Math.max(0, left)} of its ${exit.qty} share(s) sold or selling by ${by.length > 0 ? by.join(', ') : 'open orders'}`;
    if (left <= 0) {
      out.push({ ...exit, status: 'skipped', reason: `taken over by the day's exits (${names})` });
      takenOver.push(`${exit.clientOrderId} (${names})`);
    } else {
      out.push({ ...exit, qty: left });
      takenOver.push(`${exit.clientOrderId}: sent for ${left} share(s) (${names})`);
    }
  }
  if (takenOver.length > 0) {
    ctx.log.warn("exits taken over by the day's exits of the same shares", { day, exits: takenOver });
    await ctx.notifier.publish({
      subject: `Exits taken over by the day's exits on ${day}`,
      severity: 'warning',
      text: `Not sent, or sent for the rest only (the exits named sell their shares): ${takenOver.join(', ')}`,
    });
  }
  return out;
}

/**
 * generate-signals: daily bars up to the previous session's close (adjusted for the signals, raw
 * for quantities and stops), the strategy over them, then the shared close decision (breakers,
 * stop management, risk-sized entries). Every resulting order is recorded as an intent, keyed by
 * its deterministic client order id, before anything is sent.
 */
export async function generateSignals(ctx: LiveContext, scheduledTime: string): Promise<SignalsResult> {
  const day = sessionDate(ctx, scheduledTime);
  const session = await ctx.store.getSession(day);
  if (session === undefined) {
    throw new NoSessionError(`no session record for ${day}: the market-open check did not run`);
  }
  if (!session.isOpen) return { day, status: 'closed', intents: [], outsideWatchlist: [] };

  const { config } = ctx;
  const symbols = config.watchlist;
  await checkProductLimits(ctx);
  const previous = await previousSession(ctx, day);
  const historyFrom = config.live.historyFrom ?? shiftDate(previous, -config.live.lookbackDays);
  const [adjusted, raw] = await Promise.all([
    dailyBars(ctx, symbols, historyFrom, previous, 'all'),
    dailyBars(ctx, symbols, previous, previous, 'raw'),
  ]);
  for (const series of adjusted) {
    const last = series.time[series.time.length - 1];
    if (last === undefined || utcDay(last) !== previous) {
      throw new StaleDataError(
        `${series.symbol}: bars end at ${last === undefined ? 'nothing' : utcDay(last)}, not at the previous session ${previous}`,
      );
    }
  }

  if (config.sleeves !== undefined) {
    // A sleeves config: the same trading session and close step as the sleeves backtest.
    const signals = await generateSleeveSignals(ctx, day, previous, adjusted, raw, scheduledTime);
    return {
      day,
      status: 'decided',
      intents: signals.legs,
      outsideWatchlist: [],
      sleeves: { reallocation: signals.reallocation, state: signals.state },
    };
  }

  const [account, brokerPositions, stored, riskRecord, history] = await Promise.all([
    ctx.broker.getAccount(),
    ctx.broker.getPositions(),
    ctx.store.getLatestPositions(),
    ctx.store.getRiskState(),
    // The Kelly cap's sample: the strategy's most recent closed trades, as end-of-day recorded them.
    ctx.store.listClosedTrades(config.name, config.risk.kellyWindow),
  ]);
  const outsideWatchlist = brokerPositions
    .filter((p) => p.assetClass !== botAssetClass(ctx) || !symbols.includes(p.symbol))
    .map((p) => p.symbol);
  const byBroker = new Map<string, BrokerPosition>(
    brokerPositions.filter((p) => !outsideWatchlist.includes(p.symbol)).map((p) => [p.symbol, p]),
  );
  const records = new Map<string, PositionRecord>(
    sleeveRecords(stored?.positions ?? []).map((p) => [p.symbol, p]),
  );

  const definition = getStrategy(singleStrategy(config).name);
  const params = definition.params.parse(strategyParams(config));
  const rules = config.risk;
  const correlation = new RollingCorrelation(symbols.length, rules.correlation.window);
  // The volatility cap reads the same daily returns, as the backtest's engine does.
  const volatility =
    rules.volatilityCap === undefined
      ? undefined
      : new RollingVolatility(symbols.length, rules.volatilityCap.window, periodsPerYear(config.assetClass));
  const returns = new Float64Array(symbols.length);
  const n = Math.max(...adjusted.map((s) => s.time.length));
  const intents: Intent[] = [];
  const atrs: number[] = [];
  const ratios: number[] = [];
  adjusted.forEach((series, k) => {
    const instance = definition.create(params, { direction: singleStrategy(config).direction });
    const atr = new Atr(rules.stops.atrPeriod);
    const position = byBroker.get(series.symbol);
    const side = position === undefined ? 'flat' : position.qty > 0 ? 'long' : 'short';
    let intent: Intent = { action: 'hold' };
    let atrValue = Number.NaN;
    for (let i = 0; i < series.time.length; i++) {
      const bar = barAt(series, i);
      atrValue = atr.update(bar.high, bar.low, bar.close);
      intent = instance.onBar(bar, { position: i === series.time.length - 1 ? side : 'flat' });
    }
    const rawClose = raw[k]?.close[raw[k].close.length - 1];
    const adjClose = series.close[series.time.length - 1] as number;
    if (rawClose === undefined || !(rawClose > 0)) {
      throw new StaleDataError(`${series.symbol}: no raw close for ${previous}`);
    }
    ratios.push(rawClose / adjClose);
    atrs.push(atrValue);
    intents.push(intent);
  });
  // The rolling correlation sees the same daily returns the backtest would (aligned by bar index from the end).
  for (let i = 1; i < n; i++) {
    adjusted.forEach((series, k) => {
      const j = series.time.length - n + i;
      returns[k] = j >= 1 ? (series.close[j] as number) / (series.close[j - 1] as number) - 1 : Number.NaN;
    });
    correlation.push(returns);
    volatility?.push(returns);
  }

  const held = (symbol: string): HeldPosition | undefined => {
    const broker = byBroker.get(symbol);
    if (broker === undefined) return undefined;
    // The UNASSIGNED bucket's shares are no sleeve's: an exit never sells them.
    const position = { ...broker, qty: sleevesShare(broker.qty, stored?.positions, symbol) };
    if (position.qty === 0) return undefined;
    const record = records.get(symbol);
    if (record === undefined || record.qty !== position.qty) {
      ctx.log.warn('position differs from the durable record (reconciliation settles it at end-of-day)', {
        symbol,
        brokerQty: position.qty,
        recordQty: record?.qty,
      });
    }
    return {
      side: position.qty > 0 ? 1 : -1,
      qty: Math.abs(position.qty),
      // Coinbase reports no cost basis (0): the durable record's average entry price then.
      entryPrice: position.avgEntryPrice > 0 ? position.avgEntryPrice : (record?.avgEntryPrice ?? 0),
      entryRef: record?.entryRef ?? position.avgEntryPrice,
      initialRisk: record?.initialRisk ?? Number.NaN,
      stop: record?.stop ?? undefined,
      sessionsHeld: (record?.sessionsHeld ?? 0) + 1,
    };
  };
  /** Signals come from adjusted bars; prices that become orders are raw: scale by raw / adjusted close. */
  const toRaw = (intent: Intent, ratio: number): Intent => {
    if (intent.action !== 'enter' || ratio === 1) return intent;
    return {
      ...intent,
      ...(intent.stopLoss === undefined ? {} : { stopLoss: intent.stopLoss * ratio }),
      ...(intent.takeProfit === undefined ? {} : { takeProfit: intent.takeProfit * ratio }),
      ...(intent.atr === undefined ? {} : { atr: intent.atr * ratio }),
    };
  };

  const riskState = riskRecord?.state ?? initialRiskState(account.lastEquity);
  const products = configProducts(config);
  const sizing =
    config.sizing.mode === 'atr-risk'
      ? ({ mode: 'atr-risk', risk: config.sizing.risk ?? rules.riskPerTrade } as const)
      : config.sizing;
  const atSymbols = symbols.map((symbol, k) => ({
    symbol,
    hasBar: true,
    close: (adjusted[k]?.close[(adjusted[k]?.time.length ?? 1) - 1] as number) * (ratios[k] as number),
    atr: (atrs[k] as number) * (ratios[k] as number),
    intent: toRaw(intents[k] as Intent, ratios[k] as number),
    position: held(symbol),
  }));
  const decisions = decideAtClose({
    time: Date.parse(`${previous}T00:00:00Z`),
    day: previous,
    equity: account.equity,
    buyingPower: account.cash,
    symbols: atSymbols,
    closedPnls: history.map((trade) => toDollars(trade.pnlCents)),
    riskState,
    correlation: (a, b) => correlation.correlation(a, b),
    ...(volatility === undefined ? {} : { volatility: (a: number) => volatility.volatility(a) }),
    options: {
      sizing,
      fractional: config.backtest.fractional,
      ...(products === undefined ? {} : { products }),
      cashBuffer: rules.cashBuffer,
      maxPositionFraction: rules.maxPositionFraction,
      risk: rules,
    },
  });

  const now = scheduledTime;
  const base = {
    sleeve: config.name,
    date: day,
    strategy: config.name,
    ...orderStyle(config).atOpen,
    status: 'recorded' as const,
    filledQty: 0,
    configHash: ctx.configHash,
    gitCommit: ctx.gitCommit,
    createdAt: now,
    updatedAt: now,
  };
  const planned: IntentRecord[] = [];
  const exits = decisions.exits.map((exit) => {
    const s = atSymbols[exit.index] as (typeof atSymbols)[number];
    const position = s.position as HeldPosition;
    const intent: IntentRecord = {
      ...base,
      clientOrderId: clientOrderId({
        stage: ctx.stage,
        strategy: config.name,
        symbol: s.symbol,
        date: day,
        purpose: 'exit',
      }),
      symbol: s.symbol,
      purpose: 'exit',
      side: position.side === 1 ? 'sell' : 'buy',
      qty: position.qty,
      referencePrice: s.close,
      ...(exit.reason === undefined ? {} : { reason: exit.reason }),
    };
    return intent;
  });
  planned.push(...(await leftByTheDaysExits(ctx, day, scheduledTime, exits, stored, session)));
  for (const entry of decisions.entries) {
    const s = atSymbols[entry.index] as (typeof atSymbols)[number];
    // Live orders are sized at the decision: all-in takes the buying power less the buffer here.
    const qty = Number.isNaN(entry.qty)
      ? Math.floor((account.cash * (1 - rules.cashBuffer)) / s.close)
      : entry.qty;
    if (!(qty > 0)) continue;
    planned.push({
      ...base,
      clientOrderId: clientOrderId({
        stage: ctx.stage,
        strategy: config.name,
        symbol: s.symbol,
        date: day,
        purpose: 'entry',
      }),
      symbol: s.symbol,
      purpose: 'entry',
      side: entry.intent.side === 'long' ? 'buy' : 'sell',
      qty,
      referencePrice: entry.entryRef,
      ...(entry.stopLoss === undefined ? {} : { protectiveStop: entry.stopLoss }),
      ...(entry.takeProfit === undefined ? {} : { takeProfit: entry.takeProfit }),
    });
  }

  const recorded: IntentRecord[] = [];
  for (const intent of planned) {
    const { created, intent: stored } = await ctx.store.createIntent(intent);
    if (!created) ctx.log.info('intent already recorded', { clientOrderId: intent.clientOrderId });
    recorded.push(stored);
  }
  if (decisions.stops.length > 0) {
    const moved = new Map(decisions.stops.map((m) => [atSymbols[m.index]?.symbol as string, m.stop]));
    // The UNASSIGNED bucket is carried as it is (no sleeve's stop covers it; entries stay blocked).
    const positions = [
      ...[...records.values()].map((r) =>
        moved.has(r.symbol)
          ? { ...r, sleeve: r.sleeve ?? config.name, stop: moved.get(r.symbol) ?? r.stop }
          : { ...r, sleeve: r.sleeve ?? config.name },
      ),
      ...(stored?.positions ?? []).filter(isUnassigned),
    ];
    await ctx.store.putPositions(day, positions, listAsOf(ctx, stored, day), listBookedFills(stored, day));
  }
  const saved = await ctx.store.putRiskState(decisions.riskState, riskRecord?.version ?? 0);
  if ('conflict' in saved) {
    throw new UnknownStateError('the risk state changed while signals were generated; refusing to guess');
  }
  if (decisions.events.length > 0) {
    await ctx.store.appendBreakerEvents(decisions.events);
    for (const event of decisions.events) {
      await ctx.notifier.publish({
        subject: `Breaker ${event.action}: ${event.breaker}`,
        severity: event.action === 'trip' ? 'critical' : 'info',
        text: `${event.reason}\n${JSON.stringify(event.figures)}`,
      });
    }
  }
  if (decisions.refused.length > 0) {
    await ctx.notifier.publish({
      subject: `Entries refused on ${day}`,
      severity: 'warning',
      text: decisions.refused.map((r) => `${r.symbol}: ${r.reason}`).join('\n'),
    });
  }
  if (outsideWatchlist.length > 0) {
    ctx.log.warn('positions outside the equity watchlist are not traded here', { symbols: outsideWatchlist });
  }
  ctx.log.info('signals decided', {
    day,
    previous,
    intents: recorded.map((i) => ({ id: i.clientOrderId, side: i.side, qty: i.qty })),
    refused: decisions.refused.length,
    closedTrades: history.length,
  });
  return { day, status: 'decided', intents: recorded, decisions, outsideWatchlist };
}
