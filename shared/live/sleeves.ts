/**
 * The sleeves trading path of the live functions (a config with `sleeves:`), on the same trading
 * session and close step as the sleeves backtest (`core/trading/session.ts`, `sleeves-close.ts`):
 * - generate-signals restores the sleeves' state as of the previous session's close, feeds the
 *   strategies the history, runs the close step (mark, reallocate) and decides; each (sleeve,
 *   symbol, purpose) leg is recorded as an intent with its sleeve (`leg: true`, never sent itself);
 * - execute-orders nets each symbol's legs into one broker order (`netSleeveLegs`), recorded as an
 *   intent before it is sent, with a client order id tagged by the order's sleeve set;
 * - end-of-day splits the net orders' fills back to the legs at the fill price, books each sleeve's
 *   own stop fills, records closed trades per sleeve and persists the state (`bookSleevesDay`);
 * - risk-check places and moves each sleeve's own protective stop (`sleeveStops`).
 */

import { randomUUID } from 'node:crypto';
import { configProducts, isoDate as isoDateSchema, type StrategyConfig } from '../core/config/schema.js';
import { SleeveLedgerError } from '../core/errors.js';
import {
  type Cents,
  commissionCents,
  notionalCents,
  splitCents,
  toCents,
  toDollars,
} from '../core/ledger/money.js';
import { orderStyle } from '../core/live/order-style.js';
import { clientOrderId, orderTagOf, STOP_ORDER_TYPES, sleeveSetTag } from '../core/live/orders.js';
import { isUnassigned, sleevesShare } from '../core/live/reconcile.js';
import type { DayFills } from '../core/live/split-guard.js';
import { alignBars, barAtSlot } from '../core/market/align.js';
import { periodsPerYear } from '../core/market/asset-class.js';
import type { BarSeries } from '../core/market/types.js';
import { utcDay } from '../core/market/utc-day.js';
import type { SleeveTrade } from '../core/portfolio/book.js';
import { defaultAllocation } from '../core/portfolio/config.js';
import { resolveSleeves, type Sleeve } from '../core/portfolio/sleeves.js';
import type { BrokerOrder } from '../core/ports/broker.js';
import type {
  BookedFills,
  ClosedTradeRecord,
  IntentRecord,
  PositionRecord,
  PositionsList,
  SessionRecord,
  SleevesStateRecord,
} from '../core/ports/state-store.js';
import { UNASSIGNED_SLEEVE } from '../core/ports/state-store.js';
import { type Halt, initialRiskState, RollingCorrelation, RollingVolatility } from '../core/risk/index.js';
import { stopCrossed } from '../core/risk/stops.js';
import { productQuantity } from '../core/sizing/increments.js';
import {
  coveredLegs,
  coveredQuantities,
  netLegs,
  type SessionLeg,
  type SessionOptions,
  TradingSession,
} from '../core/trading/session.js';
import {
  type AllocationEvent,
  restoreSleevesState,
  SleeveAllocation,
  type SleevesState,
  sleevesPositionsBySymbol,
  sleevesState,
} from '../core/trading/sleeves-close.js';
import {
  botAssetClass,
  type LiveContext,
  StaleDataError,
  sessionDate,
  sessionTimeToUtc,
  UnknownStateError,
} from './context.js';
import { entryRefusal } from './entry-gate.js';
import {
  type DaySplit,
  intentFills,
  listedSplits,
  parseSplitKey,
  splitKey,
  splitRecords,
  splitSleevesState,
  splitsReadFrom,
  splitsToApply,
  unlistedSplit,
} from './positions.js';
import { listAsOf, listBookedFills } from './reconcile.js';
import {
  alertFlattenAgain,
  type FlattenAgain,
  flattenSequence,
  killSwitchFlattenToSend,
  placeStop,
  riskExitReason,
  stopPrice,
  supersedeStaleResend,
  workingExitQty,
} from './stops.js';
import { orderWindowClosed, placeIntentOnce, UNSENT } from './submit.js';

/** The session's time as the backtest counts it: the date's UTC midnight. */
const dayTime = (date: string) => Date.parse(`${isoDateSchema.parse(date)}T00:00:00Z`);

/** The config's sleeves, resolved (strategies, validated parameters, weights). */
export function liveSleeves(config: StrategyConfig): Sleeve[] {
  if (config.sleeves === undefined) throw new SleeveLedgerError(`${config.name}: not a sleeves config`);
  return resolveSleeves(config.sleeves, config.watchlist, config.name, config.risk.riskPerTrade);
}

/** The session options of the live stage: the account's rules, as the backtest reads them from the config. */
function sessionOptions(config: StrategyConfig): SessionOptions {
  const rules = config.risk;
  const products = configProducts(config);
  return {
    sizing:
      config.sizing.mode === 'atr-risk'
        ? { mode: 'atr-risk', risk: config.sizing.risk ?? rules.riskPerTrade }
        : config.sizing,
    fractional: config.backtest.fractional,
    ...(products === undefined ? {} : { products }),
    cashBuffer: rules.cashBuffer,
    maxPositionFraction: rules.maxPositionFraction,
    risk: rules,
    commission: config.costs.commission,
  };
}

/** A session and allocation for the config's sleeves, with `state`'s capital (books not restored). */
function build(config: StrategyConfig, sleeves: readonly Sleeve[], state: SleevesState) {
  const capital = state.books.map((b) => b.initialCash);
  const session = new TradingSession(
    sleeves,
    config.watchlist,
    sessionOptions(config),
    capital,
    toDollars(capital.reduce((a, b) => a + b, 0)),
  );
  const allocation = new SleeveAllocation(
    sleeves,
    config.allocation ?? defaultAllocation(),
    config.sleeveCorrelation,
    capital,
  );
  return { session, allocation };
}

/** The state of a stage that starts trading sleeves: the account's cash split by the sleeves' weights. */
export function initialSleevesState(config: StrategyConfig, sleeves: readonly Sleeve[], cash: Cents) {
  const capital = splitCents(
    cash,
    sleeves.map((s) => s.weight),
  );
  const session = new TradingSession(
    sleeves,
    config.watchlist,
    sessionOptions(config),
    capital,
    toDollars(cash),
  );
  const allocation = new SleeveAllocation(
    sleeves,
    config.allocation ?? defaultAllocation(),
    config.sleeveCorrelation,
    capital,
  );
  return sleevesState(session, allocation);
}

/** The id of a sleeve's leg intent (never sent to the broker: execute-orders nets the legs). */
export function legId(sleeve: string, symbol: string, date: string, purpose: 'entry' | 'exit'): string {
  return `leg-${sleeve}-${symbol}-${date.replaceAll('-', '')}-${purpose}`;
}

/** The sleeve of a leg id. */
function legSleeve(leg: IntentRecord): string {
  return leg.sleeve as string;
}

/** The per-sleeve position records (the durable per-sleeve ledger) of a state. */
export function positionRecords(state: SleevesState): PositionRecord[] {
  return state.books.flatMap((book) =>
    book.positions.map((p) => ({
      symbol: p.symbol,
      qty: p.side * p.qty,
      avgEntryPrice: p.entryPrice,
      stop: p.stop,
      entryRef: p.entryRef,
      initialRisk: p.initialRisk,
      sessionsHeld: p.sessionsHeld,
      entryDate: utcDay(p.entryTime),
      sleeve: book.id,
    })),
  );
}

/**
 * Writes the positions list of a day from the sleeves' state, keeping the reconciliation's
 * UNASSIGNED records (broker shares no sleeve owns, until an operator assigns or flattens them).
 */
async function putSleevePositions(
  ctx: LiveContext,
  day: string,
  state: SleevesState,
  /** The time the state has booked the broker's fills through (`putPositions`). */
  writtenAt: string,
  /** The day's broker fills the state has booked (`putPositions`). */
  bookedFills: BookedFills | undefined,
  /** The UNASSIGNED records of the list `writtenAt` and `bookedFills` come from, when read already. */
  unassigned?: readonly PositionRecord[],
  /** Per symbol, the split the broker applied and does not list yet (its sleeves' records flagged). */
  unlistedSplits?: ReadonlyMap<string, string>,
): Promise<void> {
  const kept = unassigned ?? bucketOf(await ctx.store.getLatestPositions(), day, bookedFills);
  const records = positionRecords(state).map((r) => {
    const split = unlistedSplits?.get(r.symbol);
    return split === undefined ? r : { ...r, unlistedSplit: split };
  });
  await ctx.store.putPositions(day, [...records, ...kept], writtenAt, bookedFills);
}

/** The reconciliation's UNASSIGNED records of a positions list. */
function unassignedOf(list: PositionsList | undefined): PositionRecord[] {
  return (list?.positions ?? []).filter((p) => p.sleeve === UNASSIGNED_SLEEVE);
}

/**
 * The UNASSIGNED records of a positions list, for a list of `day` that names `bookedFills`' split
 * keys: with the day's splits it names that the list read has not applied ({@link splitsToApply}:
 * all for a list of an earlier day) applied to them (a bucket of N old shares, 4N in a 4:1; one
 * dated the split's day is in the new shares already), so the list written is in one kind of
 * shares and no step applies the split to the bucket again.
 */
function bucketOf(
  list: PositionsList | undefined,
  day: string,
  bookedFills: BookedFills | undefined,
): PositionRecord[] {
  return splitRecords(unassignedOf(list), splitsToApply(list, day, daySplits(bookedFills, day)));
}

/** The splits of `day` a map keyed by {@link splitKey} names (with their ratios); other keys left out. */
function daySplits(byKey: Readonly<Record<string, number>> | undefined, day: string): DaySplit[] {
  return Object.entries(byKey ?? {}).flatMap(([key, ratio]) => {
    const split = parseSplitKey(key);
    return split?.date === day ? [{ ...split, ratio }] : [];
  });
}

/**
 * A stored sleeves state with the splits the broker lists up to `through` (a date) that it has not
 * applied yet, each once (`splitSleevesState`), logged; the state as it is when there is none.
 */
async function withSplits(
  ctx: LiveContext,
  state: SleevesState,
  bookedThrough: string | null,
  day: string,
  through: string,
  until: string,
): Promise<SleevesState> {
  // Only the equity broker reports splits: the crypto bot reads nothing more.
  if (bookedThrough === null || botAssetClass(ctx) === 'crypto') return state;
  // From the earlier of the day booked through and the keys' span: a split the broker lists two or
  // more sessions late (by its effective date) is read; the state's keys keep it from applying twice.
  const from = splitsReadFrom(bookedThrough, day);
  const listed = (await listedSplits(ctx, from, until)).filter((x) => x.date <= through);
  const { state: split, applied } = splitSleevesState(state, listed, day, from);
  if (applied.length > 0)
    ctx.log.info("splits applied to the sleeves' books", { day, splits: applied.map((x) => splitKey(x)) });
  return split;
}

/** Scales a series by a constant (adjusted bars to the raw prices orders are placed at). */
function scaled(series: BarSeries, ratio: number): BarSeries {
  if (ratio === 1) return series;
  const times = (a: Float64Array) => a.map((x) => x * ratio);
  return {
    ...series,
    open: times(series.open),
    high: times(series.high),
    low: times(series.low),
    close: times(series.close),
  };
}

/** What the sleeves' signal step decided. */
export interface SleeveSignals {
  readonly legs: readonly IntentRecord[];
  readonly reallocation: AllocationEvent | null;
  readonly state: SleevesState;
}

/**
 * generate-signals for a sleeves config: the state as of the previous session's close (end-of-day's
 * `booked`, or a first state splitting the account's cash), the strategies fed the history (bars
 * scaled to raw prices), the close step and the decision; one leg intent per (sleeve, symbol,
 * purpose). A rerun recomputes the same from `booked`.
 */
export async function generateSleeveSignals(
  ctx: LiveContext,
  day: string,
  previous: string,
  adjusted: readonly BarSeries[],
  raw: readonly BarSeries[],
  now: string,
): Promise<SleeveSignals> {
  const { config } = ctx;
  const sleeves = liveSleeves(config);
  const [account, stored, riskRecord] = await Promise.all([
    ctx.broker.getAccount(),
    ctx.store.getSleevesState(),
    ctx.store.getRiskState(),
  ]);
  const bookedThrough = stored?.record.bookedThrough ?? null;
  if (stored !== undefined && bookedThrough !== null && bookedThrough >= day) {
    // The day is booked already (end-of-day ran): its decision stands; nothing is recomputed.
    const legs = (await ctx.store.listIntents(day)).filter((i) => i.leg === true);
    ctx.log.warn('signals asked for a day already booked: the recorded legs stand', { day, bookedThrough });
    return { legs, reallocation: null, state: stored.record.decided?.state ?? stored.record.booked };
  }
  // A split up to the previous session (the bars end there, in its shares) the booked state has not
  // applied (one the activities listed after its day's end-of-day) is applied first; the day's own
  // split takes effect at the open, after the decision (the day's booking applies it).
  const base =
    stored === undefined
      ? initialSleevesState(config, sleeves, toCents(account.cash))
      : await withSplits(ctx, stored.record.booked, bookedThrough, day, previous, now);
  const series = adjusted.map((s, k) => {
    const rawClose = raw[k]?.close[(raw[k]?.close.length ?? 1) - 1];
    const adjClose = s.close[s.time.length - 1] as number;
    if (rawClose === undefined || !(rawClose > 0))
      throw new StaleDataError(`${s.symbol}: no raw close for ${previous}`);
    return scaled(s, rawClose / adjClose);
  });
  const { session, allocation } = build(config, sleeves, base);
  const calendar = alignBars(series);
  const last = calendar.time.length - 1;
  if (last < 0 || utcDay(calendar.time[last] as number) !== previous)
    throw new StaleDataError(`the bars do not end at the previous session ${previous}`);
  const symbols = config.watchlist;
  const correlation = new RollingCorrelation(symbols.length, config.risk.correlation.window);
  // The volatility cap reads the same daily returns, as the sleeves backtest's does.
  const cap = config.risk.volatilityCap;
  const volatility =
    cap === undefined
      ? undefined
      : new RollingVolatility(symbols.length, cap.window, periodsPerYear(config.assetClass));
  const returns = new Float64Array(symbols.length);
  for (let slot = 0; slot <= last; slot++) {
    const bars = series.map((_, k) => barAtSlot(series, calendar, k, slot));
    // The history is fed flat; the books (positions held) come in for the last close, as the
    // single-strategy signal step feeds its strategy.
    if (slot === last) restoreSleevesState(session, allocation, base);
    bars.forEach((bar, j) => {
      returns[j] = bar === undefined ? Number.NaN : bar.close / session.mark(symbols[j] as string) - 1;
    });
    session.feed(bars);
    correlation.push(returns);
    volatility?.push(returns);
  }
  const time = calendar.time[last] as number;
  session.assertLedger(previous);
  let reallocation: AllocationEvent | null = null;
  if (allocation.lastCloseTime === null || allocation.lastCloseTime < time) {
    reallocation = allocation.settle(session, time, allocation.mark(session));
  }
  // Kelly per sleeve: each sleeve's own closed trades (TRADES#<sleeve>).
  const histories = await Promise.all(
    sleeves.map((s) => ctx.store.listClosedTrades(s.id, config.risk.kellyWindow)),
  );
  histories.forEach((trades, k) => {
    (session.books[k] as (typeof session.books)[number]).closedPnls.push(
      ...trades.map((t) => toDollars(t.pnlCents)),
    );
  });
  session.riskState = riskRecord?.state ?? initialRiskState(account.lastEquity);
  const outcome = session.decide(
    time,
    previous,
    (a, b) => correlation.correlation(a, b),
    undefined,
    volatility === undefined ? undefined : (a) => volatility.volatility(a),
  );
  const decided = { ...sleevesState(session, allocation), ...splitsKept(base) };
  const saved = await ctx.store.putSleevesState(
    { bookedThrough: stored?.record.bookedThrough ?? null, booked: base, decided: { day, state: decided } },
    stored?.version ?? 0,
  );
  if ('conflict' in saved)
    throw new UnknownStateError('the sleeves state changed while signals were generated; refusing to guess');
  const risk = await ctx.store.putRiskState(session.riskState, riskRecord?.version ?? 0);
  if ('conflict' in risk)
    throw new UnknownStateError('the risk state changed while signals were generated; refusing to guess');
  if (outcome.events.length > 0) {
    await ctx.store.appendBreakerEvents(outcome.events);
    for (const event of outcome.events) {
      await ctx.notifier.publish({
        subject: `Breaker ${event.action}: ${event.breaker}`,
        severity: event.action === 'trip' ? 'critical' : 'info',
        text: `${event.reason}\n${JSON.stringify(event.figures)}`,
      });
    }
  }
  if (outcome.refused.length > 0) {
    await ctx.notifier.publish({
      subject: `Entries refused on ${day}`,
      severity: 'warning',
      text: outcome.refused.map((r) => `${r.sleeve} ${r.symbol}: ${r.reason}`).join('\n'),
    });
  }
  // The state decided on was booked by an earlier day's steps: none of the day's fills are in it.
  await putSleevePositions(ctx, day, decided, sessionTimeToUtc(ctx, day, '00:00'), {});
  const legs: IntentRecord[] = [];
  for (const leg of outcome.legs) {
    const sleeve = sleeves[leg.sleeve] as Sleeve;
    const purpose = leg.role === 'entry' ? 'entry' : 'exit';
    const intent: IntentRecord = {
      clientOrderId: legId(sleeve.id, leg.symbol, day, purpose),
      leg: true,
      sleeve: sleeve.id,
      date: day,
      strategy: sleeve.strategy.name,
      symbol: leg.symbol,
      purpose,
      side: leg.side,
      qty: leg.qty,
      ...orderStyle(ctx.config).atOpen,
      referencePrice: leg.entry?.entryRef ?? session.mark(leg.symbol),
      ...(leg.entry?.stopLoss === undefined ? {} : { protectiveStop: leg.entry.stopLoss }),
      ...(leg.entry?.takeProfit === undefined ? {} : { takeProfit: leg.entry.takeProfit }),
      ...(leg.reason === undefined ? {} : { reason: leg.reason }),
      status: 'recorded',
      filledQty: 0,
      configHash: ctx.configHash,
      gitCommit: ctx.gitCommit,
      createdAt: now,
      updatedAt: now,
    };
    const { created, intent: kept } = await ctx.store.createIntent(intent);
    if (!created) ctx.log.info('leg already recorded', { clientOrderId: intent.clientOrderId });
    legs.push(kept);
  }
  ctx.log.info('sleeve signals decided', {
    day,
    previous,
    legs: legs.map((l) => ({ id: l.clientOrderId, side: l.side, qty: l.qty })),
    reallocation: reallocation?.reason ?? null,
  });
  return { legs, reallocation, state: decided };
}

/** The sleeve index of a sleeve id. */
function sleeveIndex(sleeves: readonly Sleeve[], id: string): number {
  const k = sleeves.findIndex((s) => s.id === id);
  if (k < 0) throw new SleeveLedgerError(`no sleeve "${id}" in the config`);
  return k;
}

/** A leg intent as the session's leg. */
function sessionLeg(sleeves: readonly Sleeve[], leg: IntentRecord, qty = leg.qty): SessionLeg {
  return {
    sleeve: sleeveIndex(sleeves, legSleeve(leg)),
    symbol: leg.symbol,
    role: leg.purpose === 'entry' ? 'entry' : 'exit',
    side: leg.side,
    qty,
    ...(leg.purpose === 'entry'
      ? {
          entry: {
            side: leg.side === 'buy' ? 1 : -1,
            entryRef: leg.referencePrice,
            stopLoss: leg.protectiveStop,
            takeProfit: leg.takeProfit,
          },
        }
      : {}),
  };
}

/** Whether a net order carries an exit leg (exits never wait for the gate or a halt). */
export function carriesExit(intent: IntentRecord): boolean {
  return intent.legIds?.some((id) => id.endsWith('-exit')) ?? false;
}

/** The sleeves whose exit legs a net order carries (their resting stops are cancelled before it). */
export function exitingSleeves(intent: IntentRecord, all: readonly IntentRecord[]): string[] {
  const ids = new Set(intent.legIds ?? []);
  return all.filter((i) => ids.has(i.clientOrderId) && i.purpose === 'exit').map(legSleeve);
}

/**
 * The net order of each leg a day's net intents name (leg id → net order id): the first recorded
 * (then the lowest id) where several name it. A leg a net intent names belongs to that net order
 * from the net intent's write on, whether or not the leg's own mark (`netOrderId`) was written.
 */
export function legNetOrders(intents: readonly IntentRecord[]): Map<string, string> {
  const owner = new Map<string, string>();
  const nets = intents
    .filter((i) => i.leg !== true && i.legIds !== undefined)
    .sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.clientOrderId.localeCompare(b.clientOrderId));
  for (const net of nets)
    for (const id of net.legIds ?? []) if (!owner.has(id)) owner.set(id, net.clientOrderId);
  return owner;
}

/**
 * Per sleeve, what its exit legs of `symbol` on the exit side recorded today will still sell, and
 * their ids: the legs not netted yet (no net intent names them), which execute-orders nets and sends
 * while `maySend` (a market-on-open exit before 09:28; after it they are skipped, never sent, and
 * count nothing); and the exit legs of a net exit not at the broker yet (`recorded`, or claimed and
 * unknown to the broker: a 09:15 run in flight, or one that died before its send and is retried)
 * while `maySend`, counted as its sleeves' legs, not as a total: `nets`, the ids of those net
 * exits. A net exit the broker has is pending only while it works there, for its open quantity
 * (counted among the working exits, not here): one it ended unfilled (cancelled, rejected,
 * expired), also while the store still says `submitted`, sells nothing. `orders`: the open orders
 * and the day's exits' orders as the broker has them now ({@link exitOrdersNow}).
 */
export function pendingExitLegs(
  intents: readonly IntentRecord[],
  symbol: string,
  side: 'buy' | 'sell',
  maySend: (intent: IntentRecord) => boolean,
  orders: readonly BrokerOrder[],
): {
  readonly bySleeve: ReadonlyMap<string, { readonly qty: number; readonly ids: readonly string[] }>;
  readonly nets: ReadonlySet<string>;
} {
  const netted = legNetOrders(intents);
  const bySleeve = new Map<string, { qty: number; ids: string[] }>();
  const add = (leg: IntentRecord) => {
    if (leg.sleeve === undefined) return;
    const mine = bySleeve.get(leg.sleeve) ?? { qty: 0, ids: [] };
    mine.qty += leg.qty;
    mine.ids.push(leg.clientOrderId);
    bySleeve.set(leg.sleeve, mine);
  };
  const exitLeg = (leg: IntentRecord) =>
    leg.leg === true && leg.purpose === 'exit' && leg.symbol === symbol && leg.side === side;
  for (const leg of intents) {
    if (
      !exitLeg(leg) ||
      leg.status !== 'recorded' ||
      leg.netOrderId !== undefined ||
      netted.has(leg.clientOrderId) ||
      !maySend(leg)
    )
      continue;
    add(leg);
  }
  const nets = new Set<string>();
  for (const net of intents) {
    if (
      net.leg === true ||
      net.legIds === undefined ||
      net.purpose !== 'exit' ||
      net.symbol !== symbol ||
      net.side !== side ||
      !UNSENT.includes(net.status) ||
      orders.some((o) => o.clientOrderId === net.clientOrderId) ||
      !maySend(net)
    )
      continue;
    nets.add(net.clientOrderId);
    for (const leg of intents)
      if (exitLeg(leg) && netted.get(leg.clientOrderId) === net.clientOrderId) add(leg);
  }
  return { bySleeve, nets };
}

/**
 * execute-orders' first step for a sleeves config: today's legs not netted yet are netted per symbol
 * into one net order intent, recorded (conditional write, deterministic id) before anything is sent.
 * Entry legs the gate refuses (`entryRefusal` per symbol and sleeve) are skipped before netting;
 * exits never ask. Legs that cancel out completely make a net intent of quantity 0 that is never
 * sent (`skipped`: the sleeves cross at the session's official open). A run that failed between a
 * net intent's write and its legs' marks is finished first: the legs a net intent of the day names
 * are marked to it (never asked again, never netted again), and only the legs no net intent names
 * are netted, so a retry records no second net order for them whatever it sees.
 */
export async function netSleeveLegs(ctx: LiveContext, day: string, now: string): Promise<void> {
  const all = await ctx.store.listIntents(day);
  const owners = legNetOrders(all);
  const unmarked = all.filter((i) => i.leg === true && i.status === 'recorded' && i.netOrderId === undefined);
  for (const leg of unmarked) {
    const netOrderId = owners.get(leg.clientOrderId);
    if (netOrderId === undefined) continue;
    await ctx.store.transitionIntent(day, leg.clientOrderId, ['recorded'], { netOrderId, updatedAt: now });
    ctx.log.info('sleeve leg marked to its recorded net order', { leg: leg.clientOrderId, netOrderId });
  }
  let legs = unmarked.filter((i) => !owners.has(i.clientOrderId));
  if (legs.length === 0) return;
  const sleeves = liveSleeves(ctx.config);
  const style = orderStyle(ctx.config);
  if (!style.beforeCutoff(now, day)) {
    for (const leg of legs) {
      await ctx.store.transitionIntent(day, leg.clientOrderId, ['recorded'], {
        status: 'skipped',
        reason: `after ${style.cutoffLabel}`,
        updatedAt: now,
      });
    }
    await ctx.notifier.publish({
      subject: `${style.assetClass === 'crypto' ? 'Daily close orders' : 'Market-on-open orders'} skipped on ${day}`,
      severity: 'critical',
      text: `The cutoff passed before the sleeves' legs were netted and sent: ${legs.map((l) => l.clientOrderId).join(', ')}`,
    });
    return;
  }
  const refused: string[] = [];
  const kept: IntentRecord[] = [];
  // Settled in this run's name: a skip whose answer was lost is still known as ours (and alerted).
  const token = randomUUID();
  for (const leg of legs) {
    const why = leg.purpose === 'entry' ? await entryRefusal(ctx, day, leg.symbol, leg.sleeve) : null;
    if (why === null) {
      kept.push(leg);
      continue;
    }
    const result = await ctx.store.settleIntent(
      day,
      leg.clientOrderId,
      ['recorded'],
      { status: 'skipped', reason: `entry refused: ${why}`, updatedAt: now },
      token,
    );
    if (!('conflict' in result)) refused.push(`${leg.clientOrderId} (${why})`);
  }
  if (refused.length > 0) {
    await ctx.notifier.publish({
      subject: `Entries refused on ${day}`,
      severity: 'critical',
      text: `Not netted, not sent (exits and stops go on): ${refused.join(', ')}`,
    });
  }
  legs = kept;
  // An exit leg whose shares the day's market exit of its sleeve (the kill switch's flatten, a
  // crossed stop's exit; or the symbol-wide one) already sells or sold is taken over by it: skipped,
  // never netted, so the shares are not sold a second time (a kill switch before the legs were
  // recorded). A leg the exit names as left its shares (`leftLegIds`: a kill switch after the leg
  // was recorded sold only the rest) is not taken over: it is netted and sent as any other.
  const takenOver: string[] = [];
  const selling = new Set<string>();
  for (const leg of legs.filter((l) => l.purpose === 'exit')) {
    const flatten = (sleeves?: string[]) =>
      clientOrderId({
        stage: ctx.stage,
        strategy: ctx.config.name,
        symbol: leg.symbol,
        date: day,
        purpose: 'flatten',
        ...(sleeves === undefined ? {} : { sleeves }),
      });
    const ids = [flatten([legSleeve(leg)]), flatten()];
    // The kill switch's flatten sent again by a risk check (`<id>-2`, `-3`, ...) sells them too.
    const resent = (i: IntentRecord) =>
      i.killSwitchFlatten !== undefined && ids.some((id) => (flattenSequence(i.clientOrderId, id) ?? 0) >= 2);
    const exit = all.find(
      (i) =>
        (ids.includes(i.clientOrderId) || resent(i)) &&
        i.side === leg.side &&
        !(i.leftLegIds?.includes(leg.clientOrderId) ?? false) &&
        (i.filledQty > 0 || !['skipped', 'expired', 'rejected', 'cancelled'].includes(i.status)),
    );
    if (exit === undefined) continue;
    // Never netted, whoever settles it (a conflict: another writer settled it first).
    selling.add(leg.clientOrderId);
    const result = await ctx.store.settleIntent(
      day,
      leg.clientOrderId,
      ['recorded'],
      {
        status: 'skipped',
        reason: `taken over by the day's exit ${exit.clientOrderId} (${exit.status})`,
        updatedAt: now,
      },
      token,
    );
    if (!('conflict' in result)) takenOver.push(`${leg.clientOrderId} (by ${exit.clientOrderId})`);
  }
  if (takenOver.length > 0) {
    await ctx.notifier.publish({
      subject: `Exit legs taken over by the day's exits on ${day}`,
      severity: 'warning',
      text: `Not netted, not sent (the exit named sells their shares): ${takenOver.join(', ')}`,
    });
  }
  legs = legs.filter((l) => !selling.has(l.clientOrderId));
  for (const symbol of [...new Set(legs.map((l) => l.symbol))].sort()) {
    const mine = legs.filter((l) => l.symbol === symbol);
    const order = netLegs(
      symbol,
      mine.map((l) => sessionLeg(sleeves, l)),
    );
    const set = [...new Set(mine.map(legSleeve))].sort();
    const purpose = mine.every((l) => l.purpose === 'exit')
      ? 'exit'
      : mine.every((l) => l.purpose === 'entry')
        ? 'entry'
        : order.side === 'sell'
          ? 'exit'
          : 'entry';
    const id = clientOrderId({
      stage: ctx.stage,
      strategy: ctx.config.name,
      symbol,
      date: day,
      purpose,
      sleeves: set,
    });
    await ctx.store.putOrderTag({ tag: sleeveSetTag(ctx.stage, set), stage: ctx.stage, sleeves: set });
    const reference = mine[0] as IntentRecord;
    const { intent: net } = await ctx.store.createIntent({
      clientOrderId: id,
      sleeve: set.join('+'),
      date: day,
      strategy: ctx.config.name,
      symbol,
      purpose,
      side: order.side ?? (reference.side as 'buy' | 'sell'),
      qty: order.qty,
      ...orderStyle(ctx.config).atOpen,
      referencePrice: reference.referencePrice,
      status: order.side === null ? 'skipped' : 'recorded',
      ...(order.side === null
        ? { reason: 'the legs cancel out: crossed between the sleeves at the official open, no broker order' }
        : {}),
      legIds: mine.map((l) => l.clientOrderId),
      filledQty: 0,
      configHash: ctx.configHash,
      gitCommit: ctx.gitCommit,
      createdAt: now,
      updatedAt: now,
    });
    // The net order recorded first (this run's or an earlier one's) is the one its legs belong to.
    for (const leg of mine.filter((l) => net.legIds?.includes(l.clientOrderId))) {
      await ctx.store.transitionIntent(day, leg.clientOrderId, ['recorded'], {
        netOrderId: net.clientOrderId,
        updatedAt: now,
      });
    }
    ctx.log.info('sleeve legs netted', {
      symbol,
      clientOrderId: net.clientOrderId,
      side: net.side,
      qty: net.qty,
      crossQty: order.crossQty,
      legs: mine.map((l) => `${l.sleeve} ${l.side} ${l.qty}`),
    });
  }
}

/** The net orders' legs and the sleeves' own protective orders booked on a day. */
export interface SleevesBooking {
  readonly state: SleevesState;
  readonly trades: readonly SleeveTrade[];
  /** Per symbol, the sum of the sleeves' signed positions: what the broker should hold. */
  readonly bySymbol: ReadonlyMap<string, number>;
  /** Legs the fills did not cover (a partial or missing fill), with the covered quantity. */
  readonly uncovered: readonly { readonly leg: string; readonly qty: number; readonly covered: number }[];
  /** Leg fills: the leg, its quantity and price (every leg at its net order's fill price). */
  readonly legFills: readonly { readonly leg: string; readonly qty: number; readonly price: number }[];
  /**
   * Net orders the broker filled over their legs' quantity (a split of the day the activities do not
   * list yet: the broker scaled the order at the open, the legs are in the old shares): their legs
   * are not booked (see {@link bookSleevesDay}).
   */
  readonly overfilled: readonly {
    readonly symbol: string;
    readonly order: string;
    readonly qty: number;
    readonly filledQty: number;
  }[];
  /**
   * The broker's fills booked on the sleeves (filled quantity per broker order id): what the
   * positions list written from the state accounts for. For a day booked by an earlier run, those
   * of the list that booking wrote (see `writtenAt`).
   */
  readonly bookedFills?: BookedFills;
  /**
   * A day booked by an earlier run: the time the list it wrote is as of (the state is as of that
   * booking, not of the run that reads it). Absent when this run booked the day.
   */
  readonly writtenAt?: string;
}

/**
 * Books a trading day on the sleeves (pure apart from the reads): from the state `base` (the state
 * generate-signals decided on for `day`), each net order's fill split back to its legs at the fill
 * price (`coveredLegs` for a partial fill or none: the crossed part at the official open), then
 * each sleeve's own stop and market exits filled that day. The account ledger moves with the broker
 * orders only; the result says per symbol what the broker should hold. A net order filled over its
 * legs' quantity (a split of the day not listed: its fill in the new shares, the legs in the old) is
 * not booked at all (`overfilled`): its price is not the legs' share price.
 */
export function bookSleevesDay(input: {
  readonly config: StrategyConfig;
  readonly stage: string;
  readonly sleeves: readonly Sleeve[];
  readonly day: string;
  readonly base: SleevesState;
  readonly intents: readonly IntentRecord[];
  /** The day's broker orders of the sleeves' own stops and exits (filled or not). */
  readonly protective: readonly BrokerOrder[];
  /** The session's official open per symbol (the price crossed legs fill at). */
  readonly open: (symbol: string) => number | undefined;
  /**
   * The day's splits (`base` has them applied): the day's legs, decided before the open, are in the
   * old shares, and the broker's net order in the new ones: each leg is booked times the ratio.
   */
  readonly splits?: readonly DaySplit[];
}): SleevesBooking {
  const { config, sleeves, day, base } = input;
  const { session, allocation } = build(config, sleeves, base);
  restoreSleevesState(session, allocation, base);
  const time = dayTime(day);
  const trades: SleeveTrade[] = [];
  const uncovered: { leg: string; qty: number; covered: number }[] = [];
  const legFills: { leg: string; qty: number; price: number }[] = [];
  const overfilled: { symbol: string; order: string; qty: number; filledQty: number }[] = [];
  const bookedFills: Record<string, number> = {};
  const bookFill = (orderId: string | undefined, qty: number) => {
    if (orderId !== undefined && qty > 0) bookedFills[orderId] = (bookedFills[orderId] ?? 0) + qty;
  };
  const byId = new Map(input.intents.map((i) => [i.clientOrderId, i]));
  for (const net of input.intents.filter((i) => i.legIds !== undefined && i.leg !== true)) {
    const ratio = (input.splits ?? [])
      .filter((x) => x.symbol === net.symbol && x.date === day)
      .reduce((product, x) => product * x.ratio, 1);
    const legs = (net.legIds ?? []).flatMap((id) => {
      const leg = byId.get(id);
      return leg !== undefined && leg.netOrderId === net.clientOrderId ? [inNewShares(leg, ratio)] : [];
    });
    if (legs.length === 0) continue;
    const order = netLegs(
      net.symbol,
      legs.map((l) => sessionLeg(sleeves, l)),
    );
    // (A rounding of a fractional quantity's last digits is no over-fill.)
    if (order.side !== null && net.filledQty > order.qty + 1e-6) {
      // Booked at its price, the legs' shares would enter or exit at a fraction of their value.
      overfilled.push({
        symbol: net.symbol,
        order: net.brokerOrderId ?? net.clientOrderId,
        qty: order.qty,
        filledQty: net.filledQty,
      });
      // Its fill is accounted for (the list does not take it again): the broker's difference goes
      // to the bucket whole, against the sleeves' books as they stand.
      bookFill(net.brokerOrderId, net.filledQty);
      continue;
    }
    const filled = order.side === null ? 0 : Math.min(net.filledQty, order.qty);
    const price = filled > 0 ? net.avgFillPrice : input.open(net.symbol);
    if (price === undefined) {
      if (order.crossQty > 0 || filled > 0)
        throw new StaleDataError(`${net.symbol}: no official open for ${day} to cross the sleeves at`);
      continue;
    }
    const qtys = coveredQuantities(order, filled, config.backtest.fractional);
    const covered = coveredLegs(order, filled, config.backtest.fractional);
    legs.forEach((leg, i) => {
      const qty = qtys[i] as number;
      if (qty > 0) legFills.push({ leg: leg.clientOrderId, qty, price });
      if (qty < leg.qty) uncovered.push({ leg: leg.clientOrderId, qty: leg.qty, covered: qty });
    });
    if (covered.length === 0) continue;
    bookFill(net.brokerOrderId, filled);
    // The broker order's commission, as the sleeves backtest charges it (the config's cost model on
    // the net quantity; the crossed part pays none), split back to the legs by the session.
    const booked = netLegs(net.symbol, covered);
    const commission =
      booked.side === null
        ? 0
        : commissionCents(config.costs.commission, booked.qty, notionalCents(booked.qty, price));
    trades.push(...session.bookNetFill(booked, price, commission, time));
  }
  const tags = new Map(sleeves.map((s, k) => [sleeveSetTag(input.stage, [s.id]), k]));
  const done = [...input.protective].sort(
    (a, b) => Date.parse(a.filledAt ?? a.submittedAt) - Date.parse(b.filledAt ?? b.submittedAt),
  );
  for (const order of done) {
    const k = tags.get(orderTagOf(order.clientOrderId) ?? '');
    if (k === undefined || order.status !== 'filled' || order.filledAvgPrice === null) continue;
    const book = session.books[k] as (typeof session.books)[number];
    const p = book.positions.get(order.symbol);
    if (p === undefined || p.qty !== order.filledQty) continue;
    bookFill(order.id, order.filledQty);
    trades.push(session.bookProtectiveFill(k, order.symbol, order.filledAvgPrice, time, 'stop-loss'));
  }
  const state = { ...sleevesState(session, allocation), ...splitsKept(base) };
  return {
    state,
    trades,
    bySymbol: sleevesPositionsBySymbol(state),
    uncovered,
    legFills,
    overfilled,
    bookedFills,
  };
}

/** A leg decided in the shares before a split of `ratio`, in the new shares (prices divided). */
function inNewShares(leg: IntentRecord, ratio: number): IntentRecord {
  if (ratio === 1) return leg;
  return {
    ...leg,
    qty: leg.qty * ratio,
    referencePrice: leg.referencePrice / ratio,
    ...(leg.protectiveStop === undefined ? {} : { protectiveStop: leg.protectiveStop / ratio }),
    ...(leg.takeProfit === undefined ? {} : { takeProfit: leg.takeProfit / ratio }),
  };
}

/** The day's filled or open orders of the sleeves' own stops and market exits (by their tags). */
async function protectiveOrders(ctx: LiveContext, day: string, sleeves: readonly Sleeve[]) {
  const tags = new Set(sleeves.map((s) => sleeveSetTag(ctx.stage, [s.id])));
  const orders = await ctx.broker.listOrders({ status: 'all', symbols: ctx.config.watchlist });
  return orders.filter((o) => {
    const tag = orderTagOf(o.clientOrderId);
    if (tag === null || !tags.has(tag)) return false;
    // The fill's session: a New York date for the equity bot, a UTC day for the crypto bot's.
    const filledDay = o.filledAt === null ? null : sessionDate(ctx, o.filledAt);
    return filledDay === day && (STOP_ORDER_TYPES.has(o.type) || o.clientOrderId.includes('-flatten'));
  });
}

/** The session's official open per symbol (raw daily bar of the day), undefined where there is none. */
async function officialOpens(ctx: LiveContext, day: string, symbols: readonly string[]) {
  if (symbols.length === 0) return () => undefined;
  try {
    const bars = await ctx.marketData.getDailyBars({ symbols, from: day, to: day, adjustment: 'raw' });
    const opens = new Map(
      bars.flatMap((s) =>
        s.time.length > 0 && utcDay(s.time[0] as number) === day ? [[s.symbol, s.open[0] as number]] : [],
      ),
    );
    return (symbol: string) => opens.get(symbol);
  } catch (error) {
    ctx.log.warn('no official open for the day yet', { day, error: String(error) });
    return () => undefined;
  }
}

/** The split keys of a state, to carry into a state built from it. */
function splitsKept(state: SleevesState): Pick<SleevesState, 'splits'> {
  return state.splits === undefined ? {} : { splits: state.splits };
}

/** The state a day is booked from, and whether the booking already happened (a rerun). */
function baseOf(record: SleevesStateRecord, day: string): SleevesState {
  if (record.decided?.day === day) return record.decided.state;
  return record.booked;
}

/**
 * Books the day on the sleeves (see {@link bookSleevesDay}) from the stored state; with `persist`
 * (end-of-day) the result becomes `booked`, by a conditional write, and each sleeve's closed trades
 * are recorded once (`TRADES#<sleeve>`). Risk-check books provisionally (nothing written).
 */
export async function sleevesDay(
  ctx: LiveContext,
  day: string,
  intents: readonly IntentRecord[],
  now: string,
  persist: boolean,
): Promise<
  | (SleevesBooking & {
      readonly recorded: readonly ClosedTradeRecord[];
      /** The day booked already: the UNASSIGNED records of the list read for `writtenAt`. */
      readonly unassigned?: readonly PositionRecord[];
      /** The day booked already: the positions list read for `writtenAt` (null: there is none). */
      readonly latest?: PositionsList | null;
    })
  | null
> {
  const stored = await ctx.store.getSleevesState();
  if (stored === undefined) return null;
  const sleeves = liveSleeves(ctx.config);
  if (stored.record.bookedThrough === day && stored.record.decided?.day !== day) {
    // Booked already and no decision of the day to book from again: the stored books are the day's,
    // as of the list that booking wrote (its time and the fills it booked), never of this run: a
    // list rewritten from them keeps those, so a later reconciliation neither counts a fill the
    // booking took again nor takes one after it as seen.
    const state = stored.record.booked;
    const latest = await ctx.store.getLatestPositions();
    const writtenAt = listAsOf(ctx, latest, day);
    const bookedFills = listBookedFills(latest, day);
    return {
      state,
      trades: [],
      bySymbol: sleevesPositionsBySymbol(state),
      uncovered: [],
      legFills: [],
      overfilled: [],
      recorded: [],
      unassigned: unassignedOf(latest),
      latest: latest ?? null,
      ...(writtenAt === undefined ? {} : { writtenAt }),
      ...(bookedFills === undefined ? {} : { bookedFills }),
    };
  }
  const crossing = intents.filter((i) => i.legIds !== undefined).map((i) => i.symbol);
  const open = await officialOpens(ctx, day, [...new Set(crossing)]);
  // The splits up to the day the state has not applied (the day's own, effective at the open,
  // before any fill), once: the books, their stops and the list written from them in the new shares.
  const base = await withSplits(ctx, baseOf(stored.record, day), stored.record.bookedThrough, day, day, now);
  const booked = bookSleevesDay({
    config: ctx.config,
    stage: ctx.stage,
    sleeves,
    day,
    base,
    intents,
    protective: await protectiveOrders(ctx, day, sleeves),
    open,
    // The day's splits the base has applied (the signal step never applies the day's own).
    splits: daySplits(base.splits, day),
  });
  for (const o of booked.overfilled) {
    await ctx.notifier.publish({
      subject: `Net order over-filled: ${o.symbol} (a split not listed?)`,
      severity: 'critical',
      text: `Net order over-filled: a split not listed? ${o.order} filled ${o.filledQty} ${o.symbol} for legs of ${o.qty} on ${day}: its legs are not booked (the sleeves keep their ${o.symbol} as before the day; the broker's difference goes to the UNASSIGNED bucket). Check the account and correct the sleeves' ${o.symbol} books before the next open (an exit leg not booked would sell the shares again).`,
    });
  }
  // The list names the day's splits its books have applied: no reconciliation adds them again.
  const booking = {
    ...booked,
    bookedFills: {
      ...booked.bookedFills,
      ...Object.fromEntries(daySplits(base.splits, day).map((x) => [splitKey(x), x.ratio])),
    },
  };
  if (!persist) return { ...booking, recorded: [] };
  // The list first: the booking is pure, so a run that dies before the state is written books the
  // day again and rewrites the same list; the state written first would let a rerun take the day as
  // booked with the list of before the booking (its fills then counted again).
  await putSleevePositions(ctx, day, booking.state, now, booking.bookedFills);
  const saved = await ctx.store.putSleevesState(
    { bookedThrough: day, booked: booking.state, decided: stored.record.decided },
    stored.version,
  );
  if ('conflict' in saved)
    throw new UnknownStateError('the sleeves state changed during the end-of-day step; refusing to guess');
  const recorded: ClosedTradeRecord[] = [];
  for (const t of booking.trades) {
    const record: ClosedTradeRecord = {
      strategy: t.sleeve,
      symbol: t.symbol,
      side: t.direction,
      qty: t.qty,
      entryDate: utcDay(t.entryTime),
      exitDate: day,
      exitTime: new Date(t.exitTime as number).toISOString(),
      entryPrice: t.entryPrice,
      exitPrice: t.exitPrice as number,
      pnlCents: toCents(t.pnl),
      // Split from a net order (or a sleeve's own stop): the sleeve's share, keyed per sleeve and day.
      exitExecutionId: `${t.sleeve}:${t.symbol}:${day}`,
      recordedAt: now,
      ...(t.exitReason === null ? {} : { exitReason: t.exitReason }),
    };
    if (await ctx.store.recordClosedTrade(record)) recorded.push(record);
  }
  for (const fill of booking.legFills) {
    await ctx.store.transitionIntent(day, fill.leg, ['recorded'], {
      status: 'filled',
      filledQty: fill.qty,
      avgFillPrice: fill.price,
      updatedAt: now,
    });
  }
  return { ...booking, recorded };
}

/**
 * A symbol's fills of the day the booked sleeves do not hold, for the split guard (`unlistedSplit`):
 * of each of the day's orders in it (not a leg), what the booking did not book of its fill: all of
 * an over-filled net order's (a split not listed: its legs are not booked), else its fill beyond
 * the booking's `bookedFills` (`intentFills`). `'unknown'` (no guard) for a day booked by an
 * earlier run (its over-filled orders are not known) with a fill in the symbol.
 */
function unbookedFills(
  intents: readonly IntentRecord[],
  booking: Pick<SleevesBooking, 'overfilled' | 'bookedFills' | 'writtenAt'>,
  symbol: string,
): DayFills {
  return intentFills(intents, symbol, (i) => {
    if (booking.writtenAt !== undefined) return null;
    const id = i.brokerOrderId ?? i.clientOrderId;
    return booking.overfilled.some((o) => o.order === id) ? 0 : (booking.bookedFills?.[id] ?? 0);
  });
}

/** The reason on a kill-switch flatten of a leftover the exchange refuses for its size (the day's marker). */
const LEFTOVER_NOT_SENT = 'not sent: the leftover is under the size the exchange accepts';

/**
 * The kill switch's flatten of a sleeve's leftover (`left`) that the exchange refuses for its size
 * (`productQuantity`: under the product's minimum size or notional, or below its increment): not
 * sent. Once a day per sleeve and symbol, a `skipped` intent under the flatten's id records it
 * ({@link LEFTOVER_NOT_SENT}) and the check whose write created it alerts (critical "Kill switch
 * flatten not sent"); the later checks of the day find it in the day's series and only log. The
 * resting stops are left as they are (a flatten of the leftover would sell them no sooner).
 */
async function leftoverNotSent(
  ctx: LiveContext,
  again: FlattenAgain,
  intents: readonly IntentRecord[],
  base: string,
  leftover: {
    readonly day: string;
    readonly sleeve: string;
    readonly symbol: string;
    readonly side: 'buy' | 'sell';
    readonly qty: number;
    readonly price: number;
    readonly why: string;
    readonly now: string;
  },
): Promise<void> {
  const { sleeve, symbol, qty, why, now } = leftover;
  const said = intents.some(
    (i) =>
      flattenSequence(i.clientOrderId, base) !== null &&
      i.status === 'skipped' &&
      i.reason?.startsWith(LEFTOVER_NOT_SENT) === true,
  );
  ctx.log.warn("the kill switch's flatten of a leftover the exchange refuses for its size: not sent", {
    sleeve,
    symbol,
    qty,
    why,
    alerted: !said,
  });
  if (said) return;
  const { created } = await ctx.store.createIntent({
    clientOrderId: again.id,
    sleeve,
    date: leftover.day,
    strategy: ctx.config.name,
    symbol,
    purpose: 'exit',
    side: leftover.side,
    qty,
    killSwitchFlatten: again.since,
    ...orderStyle(ctx.config).immediate,
    referencePrice: leftover.price,
    status: 'skipped',
    filledQty: 0,
    reason: `${LEFTOVER_NOT_SENT} (${why})`,
    configHash: ctx.configHash,
    gitCommit: ctx.gitCommit,
    createdAt: now,
    updatedAt: now,
  });
  if (!created) return;
  await ctx.notifier.publish({
    subject: `Kill switch flatten not sent: ${symbol} (${sleeve})`,
    severity: 'critical',
    text: `The kill switch that flattened is on and ${qty} of ${symbol} (${sleeve}) are left, which the exchange refuses to sell for its size (${why}): no flatten is sent for them (one would be refused at every check). Said once a day. Sell the leftover by hand, or reconcile it into the UNASSIGNED bucket.`,
  });
}

/**
 * risk-check for a sleeves config: each sleeve's position (the day booked provisionally on the
 * stored state) has its own protective stop at the broker, tagged with the sleeve (`stop` id, the
 * sleeve's shares), so a stop fill belongs to exactly one sleeve; a stop the market is through
 * becomes that sleeve's market exit (`flatten` id); `flatten` exits every sleeve's position.
 */
export async function sleeveStops(
  ctx: LiveContext,
  day: string,
  intents: readonly IntentRecord[],
  now: string,
  flatten: boolean,
  /** The day's session: whether an exit not at the broker may still be sent. */
  session?: SessionRecord,
  /**
   * The kill switch (null: off): its flatten of a sleeve's shares under this very halt that ended
   * unfilled today is sent again; when it flattened (`flatten`), a sleeve's shares no exit on its
   * way covers are flattened ({@link killSwitchFlattenDue}).
   */
  killSwitch: Halt | null = null,
): Promise<{ stopsPlaced: string[]; exits: string[]; openRisk: number }> {
  const booking = await sleevesDay(ctx, day, intents, now, false);
  const out = { stopsPlaced: [] as string[], exits: [] as string[], openRisk: 0 };
  if (booking === null) return out;
  const positions = await ctx.broker.getPositions();
  const openOrders = await ctx.broker.listOrders({ status: 'open', symbols: ctx.config.watchlist });
  // A split the broker applied and does not list yet (positions.ts `unlistedSplit`): the sleeves'
  // stops are in the old shares; none of the symbol's is acted on, its records are flagged (the
  // entry gate refuses the symbol), alerted once.
  // The list the booking read already (the day booked), else read once here, for the list written too.
  const latest =
    booking.latest === undefined ? await ctx.store.getLatestPositions() : (booking.latest ?? undefined);
  // The bucket in the shares of the list written (the day's splits the booking names applied).
  const unassigned = booking.unassigned ?? bucketOf(latest, day, booking.bookedFills);
  const booked = [...positionRecords(booking.state), ...unassigned];
  const unlisted = new Map<string, string>();
  for (const position of positions) {
    if (position.qty <= 0 || !booked.some((r) => r.symbol === position.symbol && !isUnassigned(r))) continue;
    const split = await unlistedSplit(
      ctx,
      position,
      booked,
      unbookedFills(intents, booking, position.symbol),
      latest?.positions.find((r) => r.symbol === position.symbol && r.unlistedSplit !== undefined)
        ?.unlistedSplit,
    );
    if (split !== null) unlisted.set(position.symbol, split.message);
  }
  // What the exits this check places sell, per symbol (for the next sleeve's re-send cap).
  const sentNow = new Map<string, number>();
  for (const book of booking.state.books) {
    const tag = sleeveSetTag(ctx.stage, [book.id]);
    for (const p of book.positions) {
      const position = positions.find((x) => x.symbol === p.symbol);
      if (position === undefined || position.qty <= 0) continue; // reconciliation's case, not a stop's
      if (unlisted.has(p.symbol)) continue;
      const exitSide = p.side === 1 ? 'sell' : 'buy';
      const resting = openOrders.filter(
        (o) =>
          o.symbol === p.symbol &&
          o.side === exitSide &&
          STOP_ORDER_TYPES.has(o.type) &&
          orderTagOf(o.clientOrderId) === tag,
      );
      const wanted = p.stop;
      if (wanted !== null) out.openRisk += Math.max(0, (position.currentPrice - wanted) * p.side) * p.qty;
      const flattenId = clientOrderId({
        stage: ctx.stage,
        strategy: ctx.config.name,
        symbol: p.symbol,
        date: day,
        purpose: 'flatten',
        sleeves: [book.id],
      });
      // As the single-strategy risk check: the kill switch's flatten of this sleeve's shares ended
      // unfilled today, the kill switch still on: sent again under the next number; or the kill
      // switch that flattened is on and none of its own is to be sent again: a flatten of what no
      // exit on its way covers.
      const again = killSwitchFlattenToSend(intents, flattenId, killSwitch);
      if (
        flatten ||
        again !== null ||
        (wanted !== null && stopCrossed(p.side, position.currentPrice, wanted))
      ) {
        // As the single-strategy risk check: exits of this sleeve's shares still working (its own,
        // a symbol-wide one, a net order carrying its exit leg) sell them already; only what they
        // leave is sold, and nothing (the day's exit id kept free) when they sell it all.
        const id = again?.id ?? flattenId;
        const maySend = (i: IntentRecord) => !orderWindowClosed(ctx, i, session, now);
        // A re-send, as the kill switch's flatten: the sleeve's exit legs still to be sent (not
        // netted yet, or netted in a net exit not at the broker yet) keep their shares, named on
        // it (`leftLegIds`) so netting sends them and never takes them over as sold by it.
        const legs =
          again === null ? null : pendingExitLegs(intents, p.symbol, exitSide, maySend, openOrders);
        const pending = legs?.bySleeve.get(book.id);
        const own =
          p.qty -
          (pending?.qty ?? 0) -
          workingExitQty(
            p.symbol,
            exitSide,
            legs === null ? intents : intents.filter((i) => !legs.nets.has(i.clientOrderId)),
            openOrders,
            {
              ownId: id,
              maySend,
              share: (exit, remaining) =>
                exit.legIds !== undefined
                  ? intents
                      .filter(
                        (l) =>
                          exit.legIds?.includes(l.clientOrderId) &&
                          l.purpose === 'exit' &&
                          l.sleeve === book.id,
                      )
                      .reduce((sum, l) => sum + l.qty, 0)
                  : exit.sleeve === undefined || exit.sleeve === book.id
                    ? remaining
                    : 0,
            },
          );
        // A re-send sized from the ledger is capped, as the kill switch's flattens
        // (`cappedSleeveOwners`), at what the broker holds for the sleeves (the UNASSIGNED bucket's
        // shares left out) less every exit on its way, every sleeve's legs still to be sent and every
        // exit this check placed earlier in the symbol (another sleeve's re-send, crossed stop or
        // breaker flatten, none in the intents read before): a ledger above the broker never sells short.
        const left =
          legs === null
            ? own
            : Math.min(
                own,
                Math.abs(sleevesShare(position.qty, booked, p.symbol)) -
                  workingExitQty(
                    p.symbol,
                    exitSide,
                    intents.filter((i) => !legs.nets.has(i.clientOrderId)),
                    openOrders,
                    { ownId: id, maySend },
                  ) -
                  [...legs.bySleeve.values()].reduce((sum, l) => sum + l.qty, 0) -
                  (sentNow.get(p.symbol) ?? 0),
              );
        if (left < own)
          ctx.log.warn("a re-send of the kill switch's flatten capped at what the broker holds", {
            sleeve: book.id,
            symbol: p.symbol,
            ledger: own,
            sent: Math.max(0, left),
          });
        if (left <= 0) {
          for (const order of resting) await ctx.broker.cancelOrder(order.id);
          ctx.log.info('an exit of these shares is working: no second exit sent', {
            sleeve: book.id,
            symbol: p.symbol,
            qty: p.qty,
            stopsCancelled: resting.map((o) => o.clientOrderId),
          });
          continue;
        }
        // A crypto leftover the exchange refuses for its size (under the product's minimum or
        // increment): no order sells it, and one sent would be refused and alerted at every check.
        if (again !== null) {
          const product = configProducts(ctx.config)?.[p.symbol];
          const sized = product === undefined ? null : productQuantity(left, position.currentPrice, product);
          if (sized !== null && sized.refusal !== null) {
            await leftoverNotSent(ctx, again, intents, flattenId, {
              day,
              sleeve: book.id,
              symbol: p.symbol,
              side: exitSide,
              qty: left,
              price: position.currentPrice,
              why: sized.message,
              now,
            });
            continue;
          }
        }
        // A flatten recorded and not at the broker, for more than is left now: superseded (next
        // number) once past the senders' lease only. Inside it, or another writer settled or sent it
        // first: this check leaves the shares and their stops to it (as the single-strategy risk
        // check), cancelling nothing.
        const resend = again === null ? null : await supersedeStaleResend(ctx, again, intents, left, now);
        if (again !== null && resend === null) continue;
        for (const order of resting) await ctx.broker.cancelOrder(order.id);
        const sendId = resend?.id ?? id;
        const placed = await placeIntentOnce(
          ctx,
          {
            clientOrderId: sendId,
            sleeve: book.id,
            date: day,
            strategy: ctx.config.name,
            symbol: p.symbol,
            purpose: 'exit',
            side: exitSide,
            qty: left,
            ...(pending === undefined || pending.ids.length === 0 ? {} : { leftLegIds: pending.ids }),
            ...(resend === null ? {} : { killSwitchFlatten: resend.since }),
            ...orderStyle(ctx.config).immediate,
            referencePrice: position.currentPrice,
            status: 'recorded',
            filledQty: 0,
            reason: riskExitReason(resend, flatten, position.currentPrice, wanted),
            configHash: ctx.configHash,
            gitCommit: ctx.gitCommit,
            createdAt: now,
            updatedAt: now,
          },
          now,
          // Alerted by the check that records the re-send, once, not by a concurrent one.
          resend === null ? undefined : () => alertFlattenAgain(ctx, resend, p.symbol, left, book.id),
        );
        // An exit this check recorded (not in the intents read before, which count the others as on
        // their way) sells its shares unless the broker refused it or it was never sent.
        if (
          !intents.some((i) => i.clientOrderId === sendId) &&
          placed.status !== 'rejected' &&
          placed.status !== 'skipped'
        )
          sentNow.set(p.symbol, (sentNow.get(p.symbol) ?? 0) + placed.qty);
        if (['accepted', 'partially_filled', 'filled'].includes(placed.status)) {
          out.exits.push(sendId);
          // As the single-strategy risk check: a stop the price is through (a stop-limit gapped
          // beyond its limit rests unfilled at the exchange) is replaced by this market exit, said.
          await ctx.notifier.publish({
            subject: `Exit at market: ${p.symbol} (${book.id})`,
            severity: 'warning',
            text: `${sendId}: ${placed.reason ?? riskExitReason(resend, flatten, position.currentPrice, wanted)}${resting.length > 0 ? `; its resting stop order(s) cancelled: ${resting.map((o) => o.clientOrderId).join(', ')}` : ''}`,
          });
        }
        continue;
      }
      if (wanted === null) {
        await ctx.notifier.publish({
          subject: `Position without a stop: ${p.symbol} (${book.id})`,
          severity: 'critical',
          text: `${p.qty} shares of ${p.symbol} in sleeve ${book.id} have no recorded stop; set one or close the position.`,
        });
        continue;
      }
      const price = stopPrice(wanted, p.side);
      if (resting.some((o) => o.stopPrice === price && o.qty === p.qty)) continue;
      for (const order of resting) await ctx.broker.cancelOrder(order.id);
      await ctx.store.putOrderTag({ tag, stage: ctx.stage, sleeves: [book.id] });
      const placed = await placeStop(
        ctx,
        day,
        p.symbol,
        exitSide,
        p.qty,
        price,
        position.currentPrice,
        now,
        book.id,
      );
      if (placed.status === 'accepted') out.stopsPlaced.push(placed.clientOrderId);
    }
  }
  await putSleevePositions(
    ctx,
    day,
    booking.state,
    booking.writtenAt ?? now,
    booking.bookedFills,
    unassigned,
    unlisted,
  );
  return out;
}
