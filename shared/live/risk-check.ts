import { orderStyle } from '../core/live/order-style.js';
import { clientOrderId, newYorkTime, STOP_ORDER_TYPES } from '../core/live/orders.js';
import { isUnassigned, sleeveRecords, sleevesShare, unassignedQty } from '../core/live/reconcile.js';
import type { DayFills } from '../core/live/split-guard.js';
import type { BrokerPosition } from '../core/ports/broker.js';
import type {
  IntentRecord,
  IntentStatus,
  PositionRecord,
  RealisedPart,
  SessionRecord,
} from '../core/ports/state-store.js';
import { entryBlock, initialRiskState, observeEquity } from '../core/risk/index.js';
import { stopCrossed } from '../core/risk/stops.js';
import { realisedCarried } from './closed-trades.js';
import {
  botAssetClass,
  type LiveContext,
  NoSessionError,
  sessionDate,
  UnknownStateError,
} from './context.js';
import {
  haltSymbol,
  positionConflict,
  splitKey,
  splitRecords,
  splitsToApply,
  unlistedSplit,
  withLateSplits,
} from './positions.js';
import { flattenedToday, readWithFills, symbolFillsNotHeld } from './reconcile.js';
import { sleeveStops } from './sleeves.js';
import {
  alertFlattenAgain,
  type FlattenAgain,
  killSwitchFlattenToSend,
  placeStop,
  riskExitReason,
  stopPrice,
  supersedeStaleResend,
  workingExitQty,
} from './stops.js';
import { expireUnsent, orderState, orderWindowClosed, placeIntentOnce } from './submit.js';

/** What a risk check did. */
export interface RiskCheckResult {
  readonly day: string;
  readonly status: 'closed' | 'outside-session' | 'checked';
  readonly stopsPlaced: readonly string[];
  readonly exits: readonly string[];
  readonly breakerTrips: readonly string[];
  readonly entriesCancelled: readonly string[];
  /** Why nothing was checked (`closed`, `outside-session`): the market's closed day or hours. */
  readonly reason?: string;
  /** The account as this check saw it (the dashboard's and the loss alarms' figures). */
  readonly figures?: RiskFigures;
}

/** Intraday figures of a risk check, in percent of equity where a percentage. */
export interface RiskFigures {
  readonly equity: number;
  readonly dayPnl: number;
  /** Loss since the day's start equity, 0 on a gain. */
  readonly dailyLossPct: number;
  /** Below the high-water mark. */
  readonly drawdownPct: number;
  /** Open risk to the stops (qty × distance to the stop, summed) over equity. */
  readonly heatPct: number;
}

const OPEN_STATES: readonly IntentStatus[] = ['submitted', 'accepted', 'partially_filled', 'unknown'];

/**
 * risk-check, every ~15 minutes in session: tracks today's orders to completion (partial fills
 * included), evaluates the daily-loss and drawdown breakers on intraday account equity (a trip
 * cancels open entry orders and may flatten), and makes sure every position has its protective
 * stop at the broker: placed after the open (market-on-open entries cannot carry one), replaced
 * when the stop moved, and turned into a market exit when the market is already through it.
 * Breakers block entries only: stops and exits go on.
 */
export async function riskCheck(ctx: LiveContext, scheduledTime: string): Promise<RiskCheckResult> {
  const day = sessionDate(ctx, scheduledTime);
  const empty = { stopsPlaced: [], exits: [], breakerTrips: [], entriesCancelled: [] };
  const session = await ctx.store.getSession(day);
  if (session === undefined)
    throw new NoSessionError(`no session record for ${day}: the market-open check did not run`);
  if (!session.isOpen) {
    const reason = `the market is closed on ${day}; nothing to check`;
    ctx.log.info('risk check: market closed today, nothing done', { day, scheduledTime, reason });
    return { day, status: 'closed', reason, ...empty };
  }
  // Instants, not strings: a scheduled time may carry an offset or no milliseconds.
  const now = Date.parse(scheduledTime);
  const openAt = session.openAt === null ? Number.NaN : Date.parse(session.openAt);
  const closeAt = session.closeAt === null ? Number.NaN : Date.parse(session.closeAt);
  if (!(now >= openAt && now < closeAt)) {
    const nyTime = (iso: string | null) =>
      iso === null ? 'an unknown time' : newYorkTime(iso).time.slice(0, 5);
    const reason =
      now >= closeAt
        ? `the session closed at ${nyTime(session.closeAt)} New York${session.earlyClose ? ' (early close)' : ''}; nothing to check`
        : `the session opens at ${nyTime(session.openAt)} New York; nothing to check yet`;
    ctx.log.info('risk check outside the session, nothing done', {
      day,
      scheduledTime,
      earlyClose: session.earlyClose,
      reason,
    });
    return { day, status: 'outside-session', reason, ...empty };
  }
  const { config } = ctx;
  const rules = config.risk;

  // 1. Today's orders, to completion.
  const intents = await ctx.store.listIntents(day);
  const tracked = await trackOrders(ctx, day, intents, scheduledTime, session);
  const filledEntries = new Map<string, IntentRecord>(
    tracked.filter((i) => i.purpose === 'entry' && i.filledQty > 0).map((i) => [i.symbol, i]),
  );

  // 2. Breakers on intraday equity.
  const account = await ctx.broker.getAccount();
  // The breakers, written with the versioned conditional write; a concurrent check that wrote first
  // is re-read and observed again (its events are its own to alert).
  let observed: ReturnType<typeof observeEquity> | undefined;
  for (let attempt = 0; attempt < 8 && observed === undefined; attempt++) {
    const riskRecord = await ctx.store.getRiskState();
    const seen = observeEquity(
      riskRecord?.state ?? initialRiskState(account.lastEquity),
      rules,
      Date.parse(scheduledTime),
      day,
      account.equity,
    );
    if (seen.events.length === 0 && riskRecord !== undefined) {
      observed = seen;
      break;
    }
    const saved = await ctx.store.putRiskState(seen.state, riskRecord?.version ?? 0);
    if (!('conflict' in saved)) observed = seen;
  }
  if (observed === undefined)
    throw new UnknownStateError('the risk state kept changing during the risk check; refusing to guess');
  const breakerTrips = observed.events.filter((e) => e.action === 'trip').map((e) => e.breaker);
  if (observed.events.length > 0) {
    await ctx.store.appendBreakerEvents(observed.events);
    for (const event of observed.events) {
      await ctx.notifier.publish({
        subject: `Breaker ${event.action}: ${event.breaker}`,
        severity: event.action === 'trip' ? 'critical' : 'info',
        text: `${event.reason}\n${JSON.stringify(event.figures)}`,
      });
    }
  }
  const entriesCancelled: string[] = [];
  if (entryBlock(observed.state, day) !== null) {
    for (const intent of intents.filter((i) => i.purpose === 'entry' && OPEN_STATES.includes(i.status))) {
      const order = await ctx.broker.getOrderByClientOrderId(intent.clientOrderId);
      if (
        order !== null &&
        order.filledQty < order.qty &&
        !['filled', 'canceled', 'expired', 'rejected'].includes(order.status)
      ) {
        await ctx.broker.cancelOrder(order.id);
        entriesCancelled.push(intent.clientOrderId);
      }
    }
  }
  const flatten = rules.flattenOnDailyLoss && breakerTrips.includes('daily-loss');
  const figuresOf = (openRisk: number): RiskFigures => {
    const { dayStartEquity, highWaterMark } = (observed as NonNullable<typeof observed>).state;
    return {
      equity: account.equity,
      dayPnl: account.equity - dayStartEquity,
      dailyLossPct:
        dayStartEquity > 0 ? Math.max(0, ((dayStartEquity - account.equity) / dayStartEquity) * 100) : 0,
      drawdownPct:
        highWaterMark > 0 ? Math.max(0, ((highWaterMark - account.equity) / highWaterMark) * 100) : 0,
      heatPct: account.equity > 0 ? (openRisk / account.equity) * 100 : 0,
    };
  };

  if (config.sleeves !== undefined) {
    // A sleeves config: each sleeve's position has its own stop (sleeve-tagged id, its shares).
    const done = await sleeveStops(
      ctx,
      day,
      tracked,
      scheduledTime,
      flatten,
      session,
      observed.state.killSwitch,
    );
    const figures = figuresOf(done.openRisk);
    ctx.log.info('risk check', { day, ...done, breakerTrips, entriesCancelled, figures });
    return {
      day,
      status: 'checked',
      stopsPlaced: done.stopsPlaced,
      exits: done.exits,
      breakerTrips,
      entriesCancelled,
      figures,
    };
  }

  // 3. Every position has its protective stop.
  // With the day's fills the read includes: the list says which fills it accounts for (an earlier
  // day's stop that filled included, when the activities do not list it yet).
  const stored = await ctx.store.getLatestPositions();
  const read = await readWithFills(ctx, day, tracked, () => ctx.broker.getPositions(), stored);
  const positions = read.value.filter(
    (p) => p.assetClass === botAssetClass(ctx) && config.watchlist.includes(p.symbol),
  );
  // The list's records as of the read: with the day's splits it has not applied yet (a list carried
  // from an earlier day by the signal step), shares times the ratio, its stops and prices divided.
  // A split the activities list late (dated before the day), which the list has not applied and the
  // broker's position shows: applied once, to the records opened before it (see `lateSplitOf`).
  // The split guard weighs a symbol's fills of the day its records do not hold (the read's): all of
  // them for a record an earlier check kept in the old shares (flagged `unlistedSplit`: it holds
  // none), else those the list has not booked; when the read cannot say, a symbol with a fill of
  // the day gets no guard ('unknown').
  const filledToday = (symbol: string) => tracked.some((i) => i.symbol === symbol && i.filledQty > 0);
  const dayFills = (symbol: string): DayFills =>
    (read.fills === undefined ? undefined : symbolFillsNotHeld(stored, day, symbol, read.fills)) ??
    (filledToday(symbol) ? 'unknown' : []);
  const late = await withLateSplits(
    ctx,
    day,
    scheduledTime,
    positions,
    splitRecords(stored?.positions ?? [], splitsToApply(stored, day, read.splits)),
    dayFills,
    stored?.bookedFills,
  );
  const storedPositions = late.records;
  const lateApplied = Object.fromEntries(late.splits.map((x) => [splitKey(x), x.ratio]));
  const records = new Map<string, PositionRecord>(sleeveRecords(storedPositions).map((p) => [p.symbol, p]));
  const openOrders = await ctx.broker.listOrders({ status: 'open', symbols: config.watchlist });
  const stopsPlaced: string[] = [];
  const exits: string[] = [];
  let openRisk = 0;
  const nextRecords: PositionRecord[] = [];
  // The UNASSIGNED bucket is kept as reconciled, and its shares are no sleeve's: no stop, no exit
  // (less what its flatten sold today, which the next reconciliation takes out of it).
  nextRecords.push(...storedPositions.filter(isUnassigned));
  const bucket = [...storedPositions.filter(isUnassigned), ...flattenedToday(tracked)];
  for (const record of records.values()) {
    const gone = !positions.some((p) => p.symbol === record.symbol);
    if (gone && unassignedQty(storedPositions, record.symbol) !== 0) nextRecords.push(record);
  }
  for (const brokerPosition of positions) {
    const record = records.get(brokerPosition.symbol);
    const conflict = positionConflict(ctx, brokerPosition, record);
    if (conflict !== null) {
      nextRecords.push(await haltSymbol(ctx, brokerPosition, record, conflict));
      continue;
    }
    // A split the broker applied and does not list yet: the record's stop is in the old shares (the
    // market at the new price looks through it). The record is kept as it is, flagged (the next
    // check sees the same, the entry gate refuses the symbol): no exit, no stop in the old shares.
    const split = await unlistedSplit(
      ctx,
      brokerPosition,
      storedPositions,
      dayFills(brokerPosition.symbol),
      record?.unlistedSplit,
    );
    if (split !== null) {
      if (record !== undefined) nextRecords.push({ ...record, unlistedSplit: split.message });
      continue;
    }
    const position = {
      ...brokerPosition,
      qty: sleevesShare(brokerPosition.qty, bucket, brokerPosition.symbol),
    };
    if (position.qty === 0) continue;
    if (record?.unknownState !== undefined) {
      ctx.log.info('the broker and the ledger agree again: symbol resumed', { symbol: position.symbol });
    }
    const side: 1 | -1 = position.qty > 0 ? 1 : -1;
    const qty = Math.abs(position.qty);
    const entry = filledEntries.get(position.symbol);
    const wanted = record?.stop ?? entry?.protectiveStop ?? null;
    nextRecords.push({
      sleeve: config.name,
      symbol: position.symbol,
      qty: position.qty,
      avgEntryPrice: position.avgEntryPrice,
      stop: wanted,
      entryRef: record?.entryRef ?? entry?.referencePrice ?? null,
      initialRisk:
        record?.initialRisk ??
        (entry?.protectiveStop === undefined ? null : Math.abs(entry.referencePrice - entry.protectiveStop)),
      sessionsHeld: record?.sessionsHeld ?? 0,
      ...(record?.entryDate !== undefined
        ? { entryDate: record.entryDate }
        : entry !== undefined && record === undefined
          ? { entryDate: day }
          : {}),
      // The closed part of a round trip still open, kept for the next end-of-day's walk (which
      // starts from this list when the day's end-of-day failed), rebased to the broker's average.
      ...carried(
        record === undefined ? undefined : realisedCarried(record, position.qty, position.avgEntryPrice),
      ),
    });
    const exitSide = side === 1 ? 'sell' : 'buy';
    const resting = openOrders.filter(
      (o) => o.symbol === position.symbol && o.side === exitSide && STOP_ORDER_TYPES.has(o.type),
    );
    if (wanted !== null) openRisk += Math.max(0, (position.currentPrice - wanted) * side) * qty;
    const crossed = wanted !== null && stopCrossed(side, position.currentPrice, wanted);
    const exitId = clientOrderId({
      stage: ctx.stage,
      strategy: config.name,
      symbol: position.symbol,
      date: day,
      purpose: 'flatten',
    });
    // The kill switch's flatten of these shares ended unfilled today, the kill switch still on: sent
    // again; or the kill switch that flattened is on and no flatten of its own is to be sent again
    // (a later day, none recorded): a flatten of what no exit on its way covers.
    const halt = observed.state.killSwitch;
    const again = killSwitchFlattenToSend(tracked, exitId, halt);
    if (flatten || crossed || again !== null) {
      // Exits of these shares still working (the day's market-on-open exit, a stream exit on its
      // way) sell them already: only what they leave is sold here, as the kill switch does. When
      // they sell everything, nothing is sent and the day's exit id stays free for a later run
      // (should they end without selling); a resting stop would sell the shares a second time.
      const left =
        qty -
        workingExitQty(position.symbol, exitSide, tracked, openOrders, {
          ownId: again?.id ?? exitId,
          maySend: (i) => !orderWindowClosed(ctx, i, session, scheduledTime),
        });
      if (left <= 0) {
        for (const order of resting) await ctx.broker.cancelOrder(order.id);
        ctx.log.info('an exit of these shares is working: no second exit sent', {
          symbol: position.symbol,
          qty,
          reason: riskExitReason(again, flatten, position.currentPrice, wanted),
          stopsCancelled: resting.map((o) => o.clientOrderId),
        });
        continue;
      }
      // The day's exit id already spent without selling these shares (a stream exit skipped because
      // the resting stop filled part of them first): no second exit can go under it today, so the
      // resting stops stay (the rest of the position keeps its protection) and the operator is told.
      const spent = again === null ? await spentExit(ctx, day, position.symbol) : null;
      if (spent !== null) {
        await ctx.notifier.publish({
          subject: `Exit not sent: ${position.symbol}`,
          severity: 'critical',
          text: `${left} of ${position.symbol} are ${flatten ? 'to be flattened' : `through the stop ${wanted}`}, but today's exit ${spent.clientOrderId} is ${spent.status}${spent.reason === undefined ? '' : ` (${spent.reason})`}: no second exit is sent today; its resting stops stay. Close the position by hand if it must go now.`,
        });
        continue;
      }
      // A flatten recorded and not at the broker, for more than is left now: superseded (next
      // number) once past the senders' lease only; inside it nothing is sent (`supersedeStaleResend`).
      const resend =
        again === null ? null : await supersedeStaleResend(ctx, again, tracked, left, scheduledTime);
      if (again !== null && resend === null) continue;
      for (const order of resting) await ctx.broker.cancelOrder(order.id);
      const id = await exitAtMarket(
        ctx,
        day,
        { ...position, qty: side * left },
        scheduledTime,
        riskExitReason(resend, flatten, position.currentPrice, wanted),
        resend ?? undefined,
        // Alerted by the check that records the re-send, once, not by a concurrent one.
        resend === null ? undefined : () => alertFlattenAgain(ctx, resend, position.symbol, left),
      );
      if (id !== null) exits.push(id);
      continue;
    }
    if (wanted === null) {
      await ctx.notifier.publish({
        subject: `Position without a stop: ${position.symbol}`,
        severity: 'critical',
        text: `${qty} shares of ${position.symbol} have no recorded stop; set one or close the position.`,
      });
      continue;
    }
    const price = stopPrice(wanted, side);
    if (resting.some((o) => o.stopPrice === price && o.qty === qty)) continue;
    for (const order of resting) await ctx.broker.cancelOrder(order.id);
    const placed = await placeStop(
      ctx,
      day,
      position.symbol,
      exitSide,
      qty,
      price,
      position.currentPrice,
      scheduledTime,
    );
    if (placed.status === 'accepted') stopsPlaced.push(placed.clientOrderId);
  }
  // Built from the broker's positions read by this run: as of its time and the fills that read holds.
  // Reads that never agreed hold fills not known: the list keeps no `bookedFills` (as of its time;
  // `{}` would say it booked none of the day's fills and applied none of its splits).
  await ctx.store.putPositions(
    day,
    nextRecords,
    scheduledTime,
    read.bookedFills === undefined ? undefined : { ...read.bookedFills, ...lateApplied },
  );
  const figures = figuresOf(openRisk);
  ctx.log.info('risk check', { day, stopsPlaced, exits, breakerTrips, entriesCancelled, figures });
  return { day, status: 'checked', stopsPlaced, exits, breakerTrips, entriesCancelled, figures };
}

/**
 * Brings today's open intents up to date with their broker orders (partial fills included) and
 * returns every intent as it now stands. An intent claimed for sending that the broker has never
 * seen is left to the sending step while its order window lasts, and expired (not sent, alerted
 * once) after it; it never stops the other intents. So is a market-on-open order still `recorded`
 * after its 09:28 cutoff, or a sleeve's leg of one never netted: no execute-orders run sent it (a
 * run locked out, or one that timed out before it), and it is never left silently. (The crypto
 * bot's market IOC orders are also its in-session exits, sent again by the step that recorded
 * them: left as they are.)
 */
export async function trackOrders(
  ctx: LiveContext,
  day: string,
  intents: readonly IntentRecord[],
  now: string,
  session: SessionRecord,
): Promise<IntentRecord[]> {
  const out: IntentRecord[] = [];
  for (const intent of intents) {
    let current = intent;
    if (
      intent.status === 'recorded' &&
      // A sleeve's leg netted into a net order is settled with it (end-of-day books its share).
      (intent.leg !== true || intent.netOrderId === undefined) &&
      intent.type === 'market' &&
      intent.timeInForce === 'opg' &&
      orderWindowClosed(ctx, intent, session, now)
    ) {
      current =
        (await expireUnsent(ctx, intent, now)) ??
        ((await ctx.store.getIntent(day, intent.clientOrderId)) as IntentRecord);
    } else if (OPEN_STATES.includes(intent.status)) {
      const order = await ctx.broker.getOrderByClientOrderId(intent.clientOrderId);
      if (order === null) {
        if (intent.status === 'accepted' || intent.status === 'partially_filled') {
          // The broker accepted it once and no longer knows it: that cannot be settled here.
          ctx.log.error('an accepted order is gone from the broker', { clientOrderId: intent.clientOrderId });
          await ctx.notifier.publish({
            subject: `Order missing at the broker: ${intent.symbol}`,
            severity: 'critical',
            text: `${intent.clientOrderId} is ${intent.status} (broker order ${intent.brokerOrderId ?? '?'}) but the broker has no such order. Check the account.`,
          });
        } else if (orderWindowClosed(ctx, intent, session, now)) {
          current =
            (await expireUnsent(ctx, intent, now)) ??
            ((await ctx.store.getIntent(day, intent.clientOrderId)) as IntentRecord);
        } else {
          ctx.log.info('intent claimed but not at the broker yet: left to the sending step', {
            clientOrderId: intent.clientOrderId,
          });
        }
      } else {
        const patch = orderState(order);
        if (patch.status !== intent.status || order.filledQty !== intent.filledQty) {
          const updated = await ctx.store.transitionIntent(day, intent.clientOrderId, [intent.status], {
            ...patch,
            updatedAt: now,
          });
          // Lost to a concurrent check: what it wrote is the intent now, never the stale copy (a
          // stale `accepted` with no fill would leave the position without its stop).
          current =
            'conflict' in updated
              ? ((await ctx.store.getIntent(day, intent.clientOrderId)) ?? intent)
              : updated;
        }
      }
    }
    out.push(current);
  }
  return out;
}

/** The day's market exit of `symbol` (the `flatten` id) when it is settled without having sold. */
async function spentExit(ctx: LiveContext, day: string, symbol: string): Promise<IntentRecord | null> {
  const id = clientOrderId({
    stage: ctx.stage,
    strategy: ctx.config.name,
    symbol,
    date: day,
    purpose: 'flatten',
  });
  const intent = await ctx.store.getIntent(day, id);
  if (intent === undefined || intent.filledQty > 0) return null;
  return ['skipped', 'rejected', 'expired', 'cancelled'].includes(intent.status) ? intent : null;
}

/** An exit at market now (a crossed stop, or flattening), recorded as an intent first. */
async function exitAtMarket(
  ctx: LiveContext,
  day: string,
  position: BrokerPosition,
  now: string,
  reason: string,
  /** The kill switch's flatten ({@link killSwitchFlattenAgain}, {@link killSwitchFlattenDue}): its id and stamp; none: the day's id. */
  again?: FlattenAgain,
  /** Runs once this call recorded the exit's intent, before its send ({@link placeIntentOnce}). */
  onCreated?: () => Promise<void>,
): Promise<string | null> {
  // Belt and braces: an exit reduces a position; in a long-only stage it only ever sells.
  const conflict = positionConflict(ctx, position, undefined);
  if (conflict !== null) throw conflict;
  // The day's id, or the kill switch's flatten's (the day's id again, or `<id>-<n>`).
  const id =
    again?.id ??
    clientOrderId({
      stage: ctx.stage,
      strategy: ctx.config.name,
      symbol: position.symbol,
      date: day,
      purpose: 'flatten',
    });
  const placed = await placeIntentOnce(
    ctx,
    {
      clientOrderId: id,
      sleeve: ctx.config.name,
      date: day,
      strategy: ctx.config.name,
      symbol: position.symbol,
      purpose: 'exit',
      side: position.qty > 0 ? 'sell' : 'buy',
      qty: Math.abs(position.qty),
      ...(again === undefined ? {} : { killSwitchFlatten: again.since }),
      ...orderStyle(ctx.config).immediate,
      referencePrice: position.currentPrice,
      status: 'recorded',
      filledQty: 0,
      reason,
      configHash: ctx.configHash,
      gitCommit: ctx.gitCommit,
      createdAt: now,
      updatedAt: now,
    },
    now,
    onCreated,
  );
  // A market exit in session can come back already filled (the local paper broker fills it at once).
  if (!['accepted', 'partially_filled', 'filled'].includes(placed.status)) return null;
  await ctx.notifier.publish({
    subject: `Exit at market: ${position.symbol}`,
    severity: 'warning',
    text: `${id}: ${reason}`,
  });
  return id;
}

/** A record's `realised` field when there is one. */
function carried(realised: RealisedPart | undefined): { realised?: RealisedPart } {
  return realised === undefined ? {} : { realised };
}
