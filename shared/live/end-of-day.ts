import { orderDateOf } from '../core/live/orders.js';
import { isUnassigned, sleeveRecords, unassignedQty } from '../core/live/reconcile.js';
import { type DayFills, unlistedSplitOf } from '../core/live/split-guard.js';
import type { BrokerActivity, BrokerOrder, BrokerOrderStatus, BrokerPosition } from '../core/ports/broker.js';
import type {
  ClosedTradeRecord,
  EquitySnapshot,
  FillRecord,
  IntentRecord,
  PositionRecord,
  PositionsList,
} from '../core/ports/state-store.js';
import { initialRiskState, observeEquity } from '../core/risk/index.js';
import { attributionLines, type PnlAttribution } from '../core/validation/attribution.js';
import type { RollingDivergence } from '../core/validation/paper.js';
import { periodAttribution } from './attribution.js';
import { closedTradesOfDay, realisedOnRecord } from './closed-trades.js';
import {
  botAssetClass,
  type LiveContext,
  NoSessionError,
  sessionDate,
  sessionTimeToUtc,
  UnknownStateError,
} from './context.js';
import { backtestTracking } from './paper-validation.js';
import {
  applyLateSplit,
  haltSymbol,
  parseSplitKey,
  positionConflict,
  splitKey,
  splitKeys,
  splitRecords,
  splitsToApply,
  withLateSplits,
} from './positions.js';
import {
  asActivityFill,
  assignedOn,
  beyondBooked,
  bookedFillsOf,
  type ReconciliationResult,
  reconcile,
  sleeveFills,
  symbolFillsNotHeld,
} from './reconcile.js';
import { trackOrders } from './risk-check.js';
import {
  type SleeveFigures,
  singleSleeveFigures,
  sleeveReportLines,
  sleevesFigures,
  sleevesSnapshot,
} from './sleeve-report.js';
import { positionRecords, sleevesDay } from './sleeves.js';
import { type WeeklyReport, weeklyReportIfLastSession } from './weekly-report.js';

/** One fill's slippage against the signal's reference price, in basis points (positive = worse). */
export interface FillSlippage {
  readonly clientOrderId: string | null;
  readonly symbol: string;
  readonly side: 'buy' | 'sell';
  readonly qty: number;
  readonly price: number;
  readonly referencePrice: number | null;
  readonly slippageBps: number | null;
}

/** The daily report: what the Notifier sends (Markdown) and what is kept (JSON). */
export interface DailyReport {
  readonly date: string;
  readonly equity: number;
  readonly dayPnl: number;
  readonly drawdownPct: number;
  readonly highWaterMark: number;
  readonly positions: readonly PositionRecord[];
  readonly fills: readonly FillSlippage[];
  /**
   * Fills of earlier days this run added to the ledger (reported late, or missed by an end-of-day
   * that failed): read from the fill watermark.
   */
  readonly backfilled: readonly FillSlippage[];
  /** Today's orders whose filled quantity the ledger does not explain (fills not reported yet). */
  readonly fillGaps: readonly string[];
  /** Round trips closed today (recorded by this run or, on a retry, by an earlier one). */
  readonly closedTrades: readonly ClosedTradeRecord[];
  readonly drift: readonly string[];
  readonly corporateActions: readonly string[];
  readonly outsideWatchlist: readonly string[];
  readonly breakers: readonly string[];
  readonly halted: string | null;
  /** Broker vs sleeves after the day's fills (issue 13): the UNASSIGNED bucket and its alerts. */
  readonly reconciliation: ReconciliationResult;
  /** Per sleeve: equity, day P&L, heat, orders and positions (a single-strategy config: its one sleeve). */
  readonly sleeves: readonly SleeveFigures[];
  /**
   * Rolling tracking against the shadow backtest (docs/validation.md), per sleeve once its window is
   * full; null when it could not be computed (logged). A breach is alerted and emitted as the
   * divergence metric.
   */
  readonly tracking?: readonly (RollingDivergence & { readonly sleeve: string })[] | null;
  /** The week's report, after the last session of a week; otherwise null. */
  readonly weekly?: WeeklyReport | null;
  /**
   * The day's P&L attribution (docs/validation.md, "Attribution"), integer cents: the round trips
   * closed today by sleeve, symbol and side, with the commission and slippage today's fills paid on
   * their own lines; the parts add up to `totalCents`. Null when it could not be computed (logged).
   */
  readonly attribution?: PnlAttribution | null;
  /**
   * A sleeves config: per symbol the sum of the sleeves' positions (what the broker should hold;
   * `reconciliation` has where the broker differs), and the legs the fills did not cover.
   */
  readonly ledger?: {
    readonly bySymbol: Readonly<Record<string, number>>;
    readonly uncovered: readonly { leg: string; qty: number; covered: number }[];
    readonly cash: number;
  };
}

/**
 * end-of-day: orders tracked to completion; the day's fills appended to the ledger (keyed by
 * execution id, so a rerun adds nothing); splits and dividends applied to the position records
 * (a split moves the recorded stop with it, and the next risk check moves the resting order);
 * the sleeve's position kept from its own fills and reconciled with the broker (a difference goes
 * to the UNASSIGNED bucket, alerted once: `reconcile.ts`); each round trip closed today recorded
 * once as a closed trade (the live Kelly cap's history); the equity snapshot, daily P&L, drawdown
 * and breakers; slippage per fill; the daily report through the Notifier.
 */
export async function endOfDay(
  ctx: LiveContext,
  scheduledTime: string,
): Promise<DailyReport | { status: 'closed' }> {
  const day = sessionDate(ctx, scheduledTime);
  const session = await ctx.store.getSession(day);
  if (session === undefined)
    throw new NoSessionError(`no session record for ${day}: the market-open check did not run`);
  if (!session.isOpen) return { status: 'closed' };
  const { config } = ctx;

  const intents = await trackOrders(ctx, day, await ctx.store.listIntents(day), scheduledTime, session);
  const byOrderId = new Map(
    intents.filter((i) => i.brokerOrderId).map((i) => [i.brokerOrderId as string, i]),
  );
  // From the last reconciled point, not from today's midnight: a fill reported late, or one a
  // failed end-of-day never recorded, is read again (the ledger is keyed by execution id).
  const watermark = (await ctx.store.getFillWatermark()) ?? sessionTimeToUtc(ctx, day, '00:00');
  const readFrom = Math.min(Date.parse(watermark), Date.parse(sessionTimeToUtc(ctx, day, '00:00')));
  const read = await ctx.broker.getActivities({
    after: new Date(readFrom - 1).toISOString(),
    until: scheduledTime,
  });
  // Every order that can have fills from `readFrom` on, today's or not (a stop resting since an
  // earlier day): the watermark never passes one still working, nor one whose fills are unreported.
  const sweep = await sweepOrders(ctx, readFrom, read, new Set(intents.map((i) => i.brokerOrderId)));
  // Splits and dividends are applied by the run of their own day.
  const activities = read.filter((a) => a.kind === 'fill' || a.date >= day);
  // A backfilled fill's intent is among the intents of its own day.
  const earlier = new Map<string, Promise<IntentRecord[]>>();
  const earlierIntent = async (orderId: string, time: string) => {
    const date = sessionDate(ctx, time);
    if (date >= day) return undefined;
    if (!earlier.has(date)) earlier.set(date, ctx.store.listIntents(date));
    return (await earlier.get(date))?.find((i) => i.brokerOrderId === orderId);
  };
  // An earlier day's order of this stage (a resting stop): its intent, by the day in its client
  // order id (a manual order has none: its fill stays without one).
  const sweptIntent = async (orderId: string) => {
    const id = sweep.clientOrderIds.get(orderId);
    const date = id === undefined ? null : orderDateOf(id);
    return id === undefined || date === null ? undefined : ctx.store.getIntent(date, id);
  };
  const fills: FillSlippage[] = [];
  const backfilled: FillSlippage[] = [];
  const ledger: FillRecord[] = [];
  // Every fill read of an earlier day (backfilled now or by an earlier run of today).
  const earlierFills: FillRecord[] = [];
  const corporateActions: string[] = [];
  const filledSymbols = new Set<string>();
  for (const activity of activities) {
    if (activity.kind !== 'fill') {
      corporateActions.push(`${activity.kind} ${activity.symbol} ${activity.ratio} (${activity.date})`);
      continue;
    }
    const intent =
      byOrderId.get(activity.orderId) ??
      (await earlierIntent(activity.orderId, activity.time)) ??
      (await sweptIntent(activity.orderId));
    const fill: FillRecord = {
      executionId: activity.id,
      date: sessionDate(ctx, activity.time),
      clientOrderId: intent?.clientOrderId ?? null,
      brokerOrderId: activity.orderId,
      symbol: activity.symbol,
      side: activity.side,
      qty: activity.qty,
      price: activity.price,
      time: activity.time,
      // The crypto dry run's virtual fill, booked as a real one (docs/crypto.md).
      ...(activity.dryRun === true ? { dryRun: true as const } : {}),
    };
    const added = await ctx.store.appendFill(fill);
    if (fill.date < day) earlierFills.push(fill);
    if (fill.date < day && !added) continue; // recorded by an earlier run
    const reference = intent?.referencePrice ?? null;
    (fill.date < day ? backfilled : fills).push({
      clientOrderId: fill.clientOrderId,
      symbol: fill.symbol,
      side: fill.side,
      qty: fill.qty,
      price: fill.price,
      referencePrice: reference,
      slippageBps:
        reference === null
          ? null
          : ((fill.side === 'buy' ? 1 : -1) * (fill.price - reference) * 10_000) / reference,
    });
    if (fill.date < day) continue;
    ledger.push(fill);
    filledSymbols.add(activity.symbol);
  }

  // The ledger must explain what the broker says each of today's orders filled, and the broker's
  // activities what it says its other orders filled since the watermark.
  const recorded = await ctx.store.listFills(day);
  const inLedger = (i: IntentRecord) =>
    recorded.filter((f) => f.brokerOrderId === i.brokerOrderId).reduce((sum, f) => sum + f.qty, 0);
  const fillGaps = [
    ...intents
      .filter((i) => i.brokerOrderId !== undefined)
      .flatMap((i) =>
        Math.abs(inLedger(i) - i.filledQty) > 1e-9
          ? [
              `${i.clientOrderId}: the broker reports ${i.filledQty} ${i.symbol} filled, the ledger has ${inLedger(i)}`,
            ]
          : [],
      ),
    ...sweep.gaps.map((g) => g.text),
  ];
  // Awaiting fills (a late fill report): what the broker's orders say they filled and its
  // activities do not list yet, booked on the sleeve now from the order's own figures (as the
  // sleeves path books a net order), so the shares never fall to the UNASSIGNED bucket and the
  // sleeve keeps its stop and its exit. The ledger records the fill when it is listed (the
  // watermark stays); that backfill is not walked again.
  // The part not listed is priced at what the order's average leaves after its listed fills, not at
  // that average (20 listed @ 400 and 33 not @ 410: 33 @ 410, not @ 406.23), so the sleeve's trade
  // has the broker's P&L and the listing, backfilled later, corrects nothing.
  const awaiting: FillRecord[] = [
    ...intents.flatMap((i) => {
      const qty = i.filledQty - inLedger(i);
      const listed = recorded.filter((f) => f.brokerOrderId === i.brokerOrderId);
      return i.brokerOrderId !== undefined && qty > 1e-9 && i.avgFillPrice !== undefined
        ? [
            awaitingFill(
              ctx,
              i.brokerOrderId,
              i.clientOrderId,
              i.symbol,
              i.side,
              qty,
              unlistedPrice(i.filledQty, i.avgFillPrice, listed, qty),
              sweep.orders.get(i.brokerOrderId)?.filledAt ?? scheduledTime,
            ),
          ]
        : [];
    }),
    ...sweep.gaps.flatMap((g) => {
      const listed = read.flatMap((a) => (a.kind === 'fill' && a.orderId === g.order.id ? [a] : []));
      return g.order.filledAvgPrice === null
        ? []
        : [
            awaitingFill(
              ctx,
              g.order.id,
              g.order.clientOrderId,
              g.order.symbol,
              g.order.side,
              g.qty,
              unlistedPrice(g.order.filledQty, g.order.filledAvgPrice, listed, g.qty),
              g.order.filledAt ?? scheduledTime,
            ),
          ];
    }),
  ];
  for (const fill of awaiting) filledSymbols.add(fill.symbol);

  const [brokerPositions, storedRead, startOfDayRead, account, riskRecord] = await Promise.all([
    ctx.broker.getPositions(),
    ctx.store.getLatestPositions(),
    ctx.store.getLatestPositions(day),
    ctx.broker.getAccount(),
    ctx.store.getRiskState(),
  ]);
  const outsideWatchlist = brokerPositions
    .filter((p) => p.assetClass !== botAssetClass(ctx) || !config.watchlist.includes(p.symbol))
    .map((p) => p.symbol);
  // An awaiting fill of an order the start-of-day list booked already (an earlier end-of-day walked
  // its awaiting fill, or a risk check's list read the position with it) is in that list's
  // positions: walked again it would count twice at every end-of-day while the report lags. One it
  // did not book is walked, whatever its date (a fill of a day whose end-of-day failed). (The late
  // splits below leave the list's `bookedFills` as they are.)
  const bookedBefore = startOfDayRead?.bookedFills ?? {};
  const unbooked = awaiting.filter((f) => bookedBefore[f.brokerOrderId] === undefined);
  // A single-strategy config: the splits the activities list late (dated before the day) that the
  // lists have not applied, each once (see `lateSplits`).
  const { stored, startOfDay, lateApplied } =
    config.sleeves === undefined
      ? await lateSplits(ctx, day, scheduledTime, brokerPositions, storedRead, startOfDayRead, (symbol) =>
          lateSplitFills(storedRead, day, [...ledger, ...unbooked], earlierFills, symbol),
        )
      : { stored: storedRead, startOfDay: startOfDayRead, lateApplied: {} };
  // The sleeve's records (the UNASSIGNED bucket is reconciled below, never walked as a sleeve's).
  const records = new Map(sleeveRecords(stored?.positions ?? []).map((p) => [p.symbol, p]));
  const splits = activities.flatMap((a) => (a.kind === 'split' ? [a] : []));
  const drift: string[] = [];

  if (config.sleeves !== undefined) {
    // A sleeves config: the day's net fills split back to the sleeves' legs, each sleeve's stops,
    // closed trades per sleeve, the state persisted; the sleeves' sums against the broker.
    const booked = await sleevesDay(ctx, day, intents, scheduledTime, true);
    if (booked !== null) {
      // The session's dated snapshot (exact cash, positions, each sleeve's equity and NAV): a
      // validation from a later session starts from it; each sleeve's own curve is drawn from them.
      await ctx.store.putSleevesSnapshot(
        sleevesSnapshot(
          day,
          booked.state,
          (symbol) => brokerPositions.find((p) => p.symbol === symbol)?.currentPrice,
          scheduledTime,
        ),
      );
      return finish(
        positionRecords(booked.state),
        booked.recorded,
        {
          bySymbol: Object.fromEntries(booked.bySymbol),
          uncovered: booked.uncovered,
          cash: booked.state.account.cash / 100,
        },
        sleevesFigures(booked.state, {
          accountEquity: account.equity,
          price: (symbol) => brokerPositions.find((p) => p.symbol === symbol)?.currentPrice,
          intents,
        }),
      );
    }
  }

  // Round trips closed today: walked from the previous session's positions through today's own
  // fills (a manual order at the broker is not the sleeve's), and recorded only where the walk ends
  // at what the broker holds less the UNASSIGNED bucket (else the ledger cannot explain it).
  const traded = (symbol: string) => config.watchlist.includes(symbol) && !outsideWatchlist.includes(symbol);
  // Listed fills of earlier days the start-of-day list does not hold (an end-of-day that failed
  // before any list of its day held them): walked today, or their shares would fall to the bucket.
  const unlisted = notInList(startOfDay, earlierFills);
  for (const fill of unlisted) filledSymbols.add(fill.symbol);
  const own = await sleeveFills(ctx, [...unlisted, ...ledger, ...unbooked]);
  // A split the broker applied today and does not list yet (see `inOldShares`): the walk takes the
  // symbol's fills of the day in the old shares, as its records are.
  const oldShares = inOldShares(
    brokerPositions.filter((p) => traded(p.symbol) && filledSymbols.has(p.symbol)),
    startOfDay === undefined
      ? undefined
      : splitRecords(startOfDay.positions, splitsToApply(startOfDay, day, splits)),
    [...ledger, ...unbooked],
    unlisted,
    day,
  );
  const walk = closedTradesOfDay({
    strategy: config.name,
    recordedAt: scheduledTime,
    opening: sleeveRecords(startOfDay?.positions ?? []).filter((p) => traded(p.symbol)),
    splits: splits.filter((s) => traded(s.symbol)),
    fills: own
      .filter((f) => traded(f.symbol))
      .map((f) => {
        const ratio = oldShares.get(f.symbol);
        return ratio === undefined ? f : { ...f, qty: f.qty / ratio, price: f.price * ratio };
      }),
  });
  // The sleeve's quantity: the walk, plus what an operator assigned to it today from the bucket.
  const assigned = await assignedOn(ctx, day);
  const sleeveQty = (symbol: string) =>
    (walk.open.get(symbol)?.qty ?? (startOfDay === undefined ? (records.get(symbol)?.qty ?? 0) : 0)) +
    assigned.filter((a) => a.symbol === symbol).reduce((sum, a) => sum + a.qty, 0);
  const brokerQty = (symbol: string) => brokerPositions.find((p) => p.symbol === symbol)?.qty ?? 0;
  const explained = (symbol: string) =>
    Math.abs(sleeveQty(symbol) + unassignedQty(stored?.positions, symbol) - brokerQty(symbol)) <= 1e-9;
  // (A difference alone is the reconciliation's to alert; here only the trades it keeps unrecorded.)
  const closing = (symbol: string) => walk.trades.some((t) => t.symbol === symbol);
  for (const symbol of [...filledSymbols].filter((s) => traded(s) && !explained(s) && closing(s))) {
    drift.push(
      `${symbol}: the fills from the ${startOfDay?.date ?? '(none)'} positions end at ${walk.open.get(symbol)?.qty ?? 0}, broker ${brokerQty(symbol)}; no closed trade recorded`,
    );
  }
  const closedTrades = walk.trades.filter((t) => explained(t.symbol));
  // The part of a round trip still open that the walk closed (on earlier days and today), kept on
  // its record: the next end-of-day resumes the trade from it (a list without a walk of the day
  // keeps the stored record's).
  const realisedKept = (symbol: string, avgEntryPrice: number, record: PositionRecord | undefined) =>
    walk.open.has(symbol)
      ? realisedOnRecord(walk.open.get(symbol), avgEntryPrice)
      : startOfDay === undefined
        ? record?.realised
        : undefined;
  // A round trip an earlier run of the day closed with a fill not listed then (its closing execution
  // `awaiting:<broker order>`, dated by the order's fill time or the run's) is the one a listed fill
  // of that order closes now: recorded once, whatever time each gives the closing fill.
  const closingOrder = new Map(own.map((f) => [f.executionId, f.brokerOrderId]));
  const recent = closedTrades.some((t) => !t.exitExecutionId.startsWith(AWAITING))
    ? await ctx.store.listClosedTrades(config.name, RECENT_TRADES)
    : [];
  const dayTrades: ClosedTradeRecord[] = [];
  for (const trade of closedTrades) {
    const awaitingId = `${AWAITING}${closingOrder.get(trade.exitExecutionId)}`;
    const same = recent.find(
      (t) => t.symbol === trade.symbol && t.exitDate === trade.exitDate && t.exitExecutionId === awaitingId,
    );
    if (same !== undefined && same.exitExecutionId !== trade.exitExecutionId) {
      ctx.log.info('closed trade already recorded from its fill not listed then', {
        symbol: trade.symbol,
        exitTime: same.exitTime,
        exitExecutionId: trade.exitExecutionId,
      });
      dayTrades.push(same);
      continue;
    }
    const recorded = await ctx.store.recordClosedTrade(trade);
    if (!recorded)
      ctx.log.info('closed trade already recorded', { symbol: trade.symbol, exitTime: trade.exitTime });
    dayTrades.push(trade);
  }

  const reconciled: PositionRecord[] = [];
  for (const position of brokerPositions.filter((p) => !outsideWatchlist.includes(p.symbol))) {
    const conflict = positionConflict(ctx, position, records.get(position.symbol));
    if (conflict !== null) {
      // Not reconciled to the broker: the symbol stays halted on the ledger's figures.
      reconciled.push(await haltSymbol(ctx, position, records.get(position.symbol), conflict));
      continue;
    }
    // The day's splits the stored list has not applied yet (a list the risk check read after the
    // split has them): its stop and prices in the new shares.
    const held = records.get(position.symbol);
    const record =
      held === undefined ? undefined : splitRecords([held], splitsToApply(stored, day, splits))[0];
    // The sleeve keeps what its own fills say; a difference with the broker is the
    // reconciliation's (the UNASSIGNED bucket, below), never absorbed here.
    const qty = sleeveQty(position.symbol);
    if (qty === 0) continue;
    const entryDate = walk.open.get(position.symbol)?.entryDate ?? record?.entryDate;
    // The broker's average when it has one for exactly the sleeve's quantity; else the ledger's
    // (Coinbase reports no cost basis: its average is 0).
    const avgEntryPrice =
      qty === position.qty && position.avgEntryPrice > 0
        ? position.avgEntryPrice
        : (walk.open.get(position.symbol)?.entryPrice ?? record?.avgEntryPrice ?? position.avgEntryPrice);
    const realised = realisedKept(position.symbol, avgEntryPrice, record);
    reconciled.push({
      // Schema 2: the single-strategy config's one sleeve is the config's name.
      sleeve: config.name,
      symbol: position.symbol,
      qty,
      avgEntryPrice,
      stop: record?.stop ?? null,
      entryRef: record?.entryRef ?? null,
      initialRisk: record?.initialRisk ?? null,
      sessionsHeld: (record?.sessionsHeld ?? 0) + 1,
      ...(entryDate === undefined ? {} : { entryDate }),
      ...(realised === undefined ? {} : { realised }),
    });
  }
  // A sleeve's position the broker no longer holds (sold outside): kept; the bucket goes negative.
  for (const record of records.values()) {
    const qty = sleeveQty(record.symbol);
    if (brokerPositions.some((p) => p.symbol === record.symbol) || qty === 0) continue;
    const { realised: _, ...rest } = record;
    const realised = realisedKept(record.symbol, record.avgEntryPrice, record);
    reconciled.push({
      ...rest,
      qty,
      sessionsHeld: record.sessionsHeld + 1,
      ...(realised ? { realised } : {}),
    });
  }
  // The bucket as last reconciled; the reconciliation brings it up to date and alerts a difference.
  reconciled.push(
    ...splitRecords((stored?.positions ?? []).filter(isUnassigned), splitsToApply(stored, day, splits)),
  );
  // The list accounts for the day's fills the walk booked (a later one is new to it), and for the
  // awaiting fills it holds, walked today or by an earlier list (the next end-of-day walks neither).
  const walked = bookedFillsOf(
    own
      .filter((f) => (f.date === day || f.executionId.startsWith(AWAITING)) && traded(f.symbol))
      .map((f) => ({ orderId: f.brokerOrderId, qty: f.qty })),
  );
  for (const f of awaiting) {
    const qty = bookedBefore[f.brokerOrderId];
    if (qty !== undefined && traded(f.symbol))
      walked[f.brokerOrderId] = Math.max(walked[f.brokerOrderId] ?? 0, qty);
  }
  const bookedFills = {
    ...walked,
    // The walk applied the day's splits, and those listed late.
    ...splitKeys(day, splits),
    ...lateApplied,
  };
  await ctx.store.putPositions(day, reconciled, scheduledTime, bookedFills);
  return finish(reconciled, dayTrades);

  async function finish(
    reconciled: readonly PositionRecord[],
    closedTrades: readonly ClosedTradeRecord[],
    ledger?: DailyReport['ledger'],
    figures?: readonly SleeveFigures[],
  ): Promise<DailyReport> {
    // Broker against the sleeves (and the UNASSIGNED bucket), after the day's fills are booked.
    const reconciliation = await reconcile(ctx, day, scheduledTime);
    for (const item of drift) {
      await ctx.store.appendAudit({ time: scheduledTime, action: 'drift', by: 'end-of-day', reason: item });
    }

    const observed = observeEquity(
      riskRecord?.state ?? initialRiskState(account.lastEquity),
      config.risk,
      Date.parse(scheduledTime),
      day,
      account.equity,
    );
    const saved = await ctx.store.putRiskState(observed.state, riskRecord?.version ?? 0);
    if ('conflict' in saved)
      throw new UnknownStateError('the risk state changed during the end-of-day step; refusing to guess');
    await ctx.store.appendBreakerEvents(observed.events);
    const state = observed.state;
    const snapshot: EquitySnapshot = {
      date: day,
      equity: account.equity,
      cash: account.cash,
      dayPnl: account.equity - account.lastEquity,
      highWaterMark: state.highWaterMark,
      drawdownPct: ((state.highWaterMark - account.equity) / state.highWaterMark) * 100,
      takenAt: scheduledTime,
    };
    await ctx.store.putEquitySnapshot(snapshot);
    const halted =
      state.killSwitch !== null
        ? `kill switch: ${state.killSwitch.reason}`
        : state.drawdownHalt !== null
          ? `drawdown halt since ${state.drawdownHalt.day}`
          : null;
    const report: DailyReport = {
      date: day,
      reconciliation,
      equity: account.equity,
      dayPnl: snapshot.dayPnl,
      drawdownPct: snapshot.drawdownPct,
      highWaterMark: state.highWaterMark,
      positions: reconciled,
      fills,
      backfilled,
      fillGaps,
      closedTrades,
      drift,
      corporateActions,
      outsideWatchlist,
      breakers: observed.events.map((e) => `${e.breaker} ${e.action}: ${e.reason}`),
      halted,
      sleeves:
        figures ??
        singleSleeveFigures(config, {
          equity: account.equity,
          dayPnl: snapshot.dayPnl,
          positions: reconciled,
          price: (symbol) => brokerPositions.find((p) => p.symbol === symbol)?.currentPrice,
          intents,
        }),
      ...(ledger === undefined ? {} : { ledger }),
      tracking: await trackingOrNull(ctx, day),
      attribution: await periodAttribution(ctx, [day], closedTrades),
    };
    const drawdownLimitPct = (config.risk?.maxDrawdown ?? 0.15) * 100;
    await ctx.notifier.publish({
      subject: `Daily report ${day}: ${report.dayPnl >= 0 ? '+' : ''}${report.dayPnl.toFixed(2)}`,
      severity: drift.length > 0 || report.breakers.length > 0 ? 'warning' : 'info',
      kind: 'report',
      text: dailyReportMarkdown(report),
      figures: [
        { label: 'Equity', value: report.equity, unit: '$' },
        { label: 'Day P&L', value: report.dayPnl, unit: '$' },
        {
          label: 'Drawdown',
          value: report.drawdownPct,
          limit: drawdownLimitPct,
          unit: '%',
          limitKind: 'cap',
        },
        { label: 'Fills', value: report.fills.length, unit: 'count' },
      ],
    });
    const diverging = (report.tracking ?? []).filter((t) => t.breaches.length > 0);
    if (diverging.length > 0) {
      await ctx.notifier.publish({
        subject: `Strategy diverging from its backtest on ${day}`,
        severity: 'warning',
        text: diverging.map((t) => `${t.sleeve}: ${t.breaches.join('; ')}`).join('\n'),
      });
    }
    const weekly = await weeklyReportIfLastSession(ctx, day, drawdownLimitPct, report.sleeves);
    if (backfilled.length > 0) {
      await ctx.notifier.publish({
        subject: `Fills backfilled on ${day}`,
        severity: 'warning',
        text: `Earlier fills added to the ledger now (reported late, or an end-of-day failed):\n${backfilled
          .map((f) => `${f.side} ${f.qty} ${f.symbol} @ ${f.price} (${f.clientOrderId ?? 'no intent'})`)
          .join('\n')}`,
      });
    }
    if (fillGaps.length > 0) {
      await ctx.notifier.publish({
        subject: `Fills missing from the broker's activities on ${day}`,
        severity: 'critical',
        text: `The ledger and the broker disagree; the next end-of-day reads the fills again from ${watermark}:\n${fillGaps.join('\n')}`,
      });
    } else {
      // Everything up to this run is in the ledger: the next run reads from here, or from the
      // submission of the oldest order still working (its fills may come, and be reported, later).
      await ctx.store.advanceFillWatermark(
        sweep.holdAt !== null && Date.parse(sweep.holdAt) < Date.parse(scheduledTime)
          ? sweep.holdAt
          : scheduledTime,
      );
    }
    if (drift.length > 0) {
      await ctx.notifier.publish({
        subject: `Position drift on ${day}`,
        severity: 'critical',
        text: `No closed trade recorded for these (the reconciliation alerts the difference):\n${drift.join('\n')}`,
      });
    }
    return { ...report, weekly };
  }
}

/**
 * The fills of earlier days a start-of-day list (of day L) does not hold: those after L, and those
 * of L beyond the fills it booked (per broker order, its earliest fills are the booked ones; a list
 * without `bookedFills` holds L's fills up to its `writtenAt`, one without either all of them). No
 * list at all: every one (the read starts at the watermark, after the last end-of-day that wrote one).
 */
function notInList(list: PositionsList | undefined, fills: readonly FillRecord[]): FillRecord[] {
  if (list === undefined) return [...fills];
  const after = fills.filter((f) => f.date > list.date);
  const ofList = new Map(fills.filter((f) => f.date === list.date).map((f) => [f.executionId, f]));
  const asListed = [...ofList.values()].map(asActivityFill);
  const beyond =
    list.bookedFills !== undefined
      ? beyondBooked(asListed, list.bookedFills).flatMap((a) => {
          const fill = ofList.get(a.id);
          return fill === undefined ? [] : [{ ...fill, qty: a.qty }];
        })
      : list.writtenAt !== undefined
        ? [...ofList.values()].filter((f) => Date.parse(f.time) > Date.parse(list.writtenAt as string))
        : [];
  return [...beyond, ...after];
}

/** The execution id prefix of an awaiting fill (see {@link awaitingFill}). */
const AWAITING = 'awaiting:';

/**
 * How many of the strategy's most recent closed trades a run looks through for one an earlier run
 * of the day recorded from an awaiting fill (a rerun of the day after the fill is listed).
 */
const RECENT_TRADES = 100;

/**
 * The part of a broker order's fills its activities do not list yet (awaiting a late report), as
 * a fill to walk on the sleeve: at the order's average fill price, keyed `awaiting:<broker order>`
 * (never written to the ledger; the listed fill is, when it comes).
 */
function awaitingFill(
  ctx: LiveContext,
  brokerOrderId: string,
  clientOrderId: string,
  symbol: string,
  side: 'buy' | 'sell',
  qty: number,
  price: number,
  time: string,
): FillRecord {
  return {
    executionId: `${AWAITING}${brokerOrderId}`,
    date: sessionDate(ctx, time),
    clientOrderId,
    brokerOrderId,
    symbol,
    side,
    qty,
    price,
    time,
  };
}

/**
 * The average price of an order's fills its activities do not list yet (`qty` shares): what the
 * order's filled quantity at its average price leaves after its listed fills, over those shares.
 * The order's average when no listed fill is known, or when what the listed fills leave is no price
 * (a broker's figures that do not add up).
 */
export function unlistedPrice(
  filledQty: number,
  avgFillPrice: number,
  listed: readonly { readonly qty: number; readonly price: number }[],
  qty: number,
): number {
  if (listed.length === 0) return avgFillPrice;
  const price = (filledQty * avgFillPrice - listed.reduce((sum, f) => sum + f.qty * f.price, 0)) / qty;
  return Number.isFinite(price) && price > 0 ? price : avgFillPrice;
}

/** A broker order's states after which it fills no more. */
const SETTLED: ReadonlySet<BrokerOrderStatus> = new Set([
  'filled',
  'canceled',
  'expired',
  'replaced',
  'rejected',
]);

/**
 * The fill watermark's sweep (docs/live.md, failure modes): the watchlist's orders submitted since
 * `readFrom` and those still working (legs included). An order other than today's (`today`, by
 * broker order id) whose filled quantity the activities read since `readFrom` do not explain is a
 * gap (its fill is reported late): the watermark stays. An order submitted before `readFrom` (a
 * state kept before this sweep) is a gap only when it filled since and none of its fills is listed.
 * `holdAt`: the submission of the oldest order still working, where the watermark must stop; null
 * when none works.
 */
async function sweepOrders(
  ctx: LiveContext,
  readFrom: number,
  read: readonly BrokerActivity[],
  today: ReadonlySet<string | undefined>,
): Promise<{
  gaps: { text: string; order: BrokerOrder; qty: number }[];
  holdAt: string | null;
  clientOrderIds: Map<string, string>;
  orders: Map<string, BrokerOrder>;
}> {
  const symbols = ctx.config.watchlist;
  const [recent, open] = await Promise.all([
    ctx.broker.listOrders({ status: 'all', after: new Date(readFrom - 1).toISOString(), symbols }),
    ctx.broker.listOrders({ status: 'open', symbols }),
  ]);
  const orders = new Map<string, BrokerOrder>();
  for (const order of [...recent, ...open]) for (const o of [order, ...order.legs]) orders.set(o.id, o);
  const listed = new Map<string, number>();
  for (const a of read) if (a.kind === 'fill') listed.set(a.orderId, (listed.get(a.orderId) ?? 0) + a.qty);
  const gaps: { text: string; order: BrokerOrder; qty: number }[] = [];
  let holdAt: string | null = null;
  for (const o of orders.values()) {
    if (!SETTLED.has(o.status) && (holdAt === null || Date.parse(o.submittedAt) < Date.parse(holdAt)))
      holdAt = o.submittedAt;
    if (today.has(o.id) || !(o.filledQty > 0)) continue;
    const seen = listed.get(o.id) ?? 0;
    const unexplained =
      Date.parse(o.submittedAt) >= readFrom
        ? seen < o.filledQty - 1e-9
        : seen === 0 && o.filledAt !== null && Date.parse(o.filledAt) >= readFrom;
    if (unexplained)
      gaps.push({
        text: `${o.clientOrderId} (submitted ${o.submittedAt}): the broker reports ${o.filledQty} ${o.symbol} filled, its activities list ${seen}`,
        order: o,
        qty: o.filledQty - seen,
      });
  }
  return {
    gaps,
    holdAt,
    clientOrderIds: new Map([...orders.values()].map((o) => [o.id, o.clientOrderId])),
    orders,
  };
}

/** The daily report as Markdown for Slack. */
export function dailyReportMarkdown(report: DailyReport): string {
  const money = (x: number) => x.toLocaleString('en-US', { style: 'currency', currency: 'USD' });
  const lines = [
    `*QuantShift daily report ${report.date}*`,
    `Equity ${money(report.equity)} (day ${report.dayPnl >= 0 ? '+' : ''}${money(report.dayPnl)}), drawdown ${report.drawdownPct.toFixed(2)}% from ${money(report.highWaterMark)}`,
    report.halted === null ? 'Trading: active' : `Trading: HALTED (${report.halted})`,
    '',
    `*Positions* (${report.positions.length})`,
    ...report.positions.map(
      (p) => `• ${p.symbol} ${p.qty} @ ${p.avgEntryPrice.toFixed(2)}, stop ${p.stop?.toFixed(2) ?? 'none'}`,
    ),
    '',
    `*Fills* (${report.fills.length})`,
    ...report.fills.map(
      (f) =>
        `• ${f.side} ${f.qty} ${f.symbol} @ ${f.price.toFixed(2)}${f.slippageBps === null ? '' : `, slippage ${f.slippageBps.toFixed(1)} bps`}`,
    ),
  ];
  if (report.closedTrades.length > 0) {
    lines.push(
      '',
      `*Closed trades* (${report.closedTrades.length})`,
      ...report.closedTrades.map(
        (t) =>
          `• ${t.symbol} ${t.side} ${t.qty} from ${t.entryDate ?? '?'} @ ${t.entryPrice.toFixed(2)} to ${t.exitPrice.toFixed(2)}: ${money(t.pnlCents / 100)}`,
      ),
    );
  }
  if (report.backfilled.length > 0)
    lines.push(
      '',
      `*Backfilled fills of earlier days* (${report.backfilled.length})`,
      ...report.backfilled.map((f) => `• ${f.side} ${f.qty} ${f.symbol} @ ${f.price.toFixed(2)}`),
    );
  if (report.fillGaps.length > 0)
    lines.push(
      '',
      '*Fills missing (the ledger and the broker disagree)*',
      ...report.fillGaps.map((g) => `• ${g}`),
    );
  lines.push(...sleeveReportLines(report.sleeves));
  if (report.attribution != null) lines.push('', ...attributionLines(report.attribution));
  if (report.breakers.length > 0) lines.push('', '*Breakers*', ...report.breakers.map((b) => `• ${b}`));
  if (report.drift.length > 0)
    lines.push('', '*Drift (no closed trade recorded)*', ...report.drift.map((d) => `• ${d}`));
  if (report.reconciliation.blocked.length > 0)
    lines.push(
      '',
      '*UNASSIGNED (entries blocked; `quantshift reconcile`)*',
      ...report.reconciliation.symbols
        .filter((l) => l.unassignedAfter !== 0)
        .map(
          (l) =>
            `• ${l.symbol}: broker ${l.brokerQty}, sleeves ${l.sleevesQty}, UNASSIGNED ${l.unassignedAfter}`,
        ),
    );
  if (report.corporateActions.length > 0)
    lines.push('', '*Corporate actions*', ...report.corporateActions.map((c) => `• ${c}`));
  if (report.outsideWatchlist.length > 0)
    lines.push('', `Not traded here: ${report.outsideWatchlist.join(', ')}`);
  return lines.join('\n');
}

/** The rolling tracking, or null (logged) when the bars or the backtest fail: the report goes on. */
async function trackingOrNull(ctx: LiveContext, day: string) {
  try {
    return await backtestTracking(ctx, day);
  } catch (error) {
    ctx.log.warn('backtest tracking not computed', {
      error: error instanceof Error ? error.message : String(error),
    });
    return null;
  }
}

/**
 * The symbols whose broker position shows a split applied today and not listed (`unlistedSplitOf`:
 * the start-of-day records, in the old shares with the day's listed splits applied, against the
 * broker's position and the day's fills, all new to those records), with its apparent ratio. The
 * walk takes their fills of the day in the old shares (quantity divided by the ratio, price times
 * it: the same notional), so the sleeve's records stay in the old shares, as on a day without a
 * fill (the split's new shares go to the bucket, alerted; the split, once listed, is applied to the
 * records as to any) and a part sold closes at its price in those shares, not at a quarter of it.
 * A symbol with a fill of an earlier day the start-of-day list does not hold (`unlisted`, or an
 * awaiting fill dated before `day`: a sweep's gap, a day whose end-of-day failed) is left out: those
 * fills are in the old shares, and weighed as the day's they would give a wrong ratio.
 */
function inOldShares(
  positions: readonly BrokerPosition[],
  opening: readonly PositionRecord[] | undefined,
  dayFills: readonly FillRecord[],
  unlisted: readonly FillRecord[],
  day: string,
): Map<string, number> {
  const out = new Map<string, number>();
  if (opening === undefined) return out;
  for (const position of positions) {
    const earlier = (f: FillRecord) => f.symbol === position.symbol && f.date < day;
    if (unlisted.some((f) => f.symbol === position.symbol) || dayFills.some(earlier)) continue;
    const fills = dayFills
      .filter((f) => f.symbol === position.symbol)
      .sort((a, b) => Date.parse(a.time) - Date.parse(b.time));
    const found = unlistedSplitOf(position, opening, fills);
    if (found !== null) out.set(position.symbol, found.ratio);
  }
  return out;
}

/**
 * A symbol's fills of the day the stored list does not hold, for the late-split guard (as the risk
 * check's): all of them for a record an earlier check kept in the old shares (flagged), else those
 * the list has not booked (`fillsAfterList`); `'unknown'` (no guard) when the list cannot say and
 * the symbol has a fill of the day, or it has a fill of an earlier day read now or an awaiting one
 * dated before the day (in the old shares). `dayFills` are the ledger's of the day and the awaiting
 * ones the start-of-day list has not booked (those it booked would count twice).
 */
function lateSplitFills(
  stored: PositionsList | undefined,
  day: string,
  dayFills: readonly FillRecord[],
  earlierFills: readonly FillRecord[],
  symbol: string,
): DayFills {
  const own = dayFills.filter((f) => f.symbol === symbol).map(asActivityFill);
  if (own.length === 0) return [];
  const earlier = (f: FillRecord) => f.symbol === symbol && f.date < day;
  if (stored === undefined || earlierFills.some(earlier) || dayFills.some(earlier)) return 'unknown';
  return symbolFillsNotHeld(stored, day, symbol, own) ?? 'unknown';
}

/**
 * End-of-day's lists with the splits the broker's activities list late applied, once
 * (`lateSplitOf`, `applyLateSplit`): the stored list (the day's risk check may have applied one
 * already: its `bookedFills` names it, and the broker's position no longer shows it), and the
 * start-of-day list the walk starts from (a split applied to the day's list, not to it). The
 * applied splits' keys are for the list end-of-day writes.
 */
async function lateSplits(
  ctx: LiveContext,
  day: string,
  until: string,
  brokerPositions: readonly BrokerPosition[],
  stored: PositionsList | undefined,
  startOfDay: PositionsList | undefined,
  fillsOf: (symbol: string) => DayFills,
): Promise<{
  readonly stored: PositionsList | undefined;
  readonly startOfDay: PositionsList | undefined;
  readonly lateApplied: Record<string, number>;
}> {
  const { records: positions, splits: applied } = await withLateSplits(
    ctx,
    day,
    until,
    brokerPositions.filter(
      (p) => ctx.config.watchlist.includes(p.symbol) && p.assetClass === botAssetClass(ctx),
    ),
    stored?.positions ?? [],
    fillsOf,
    stored?.bookedFills,
  );
  // The late splits the day's list has applied (by a risk check of the day, or just now).
  const late = new Map(applied.map((x) => [splitKey(x), x]));
  if (stored?.date === day) {
    for (const [key, ratio] of Object.entries(stored.bookedFills ?? {})) {
      const split = parseSplitKey(key);
      if (split !== null && split.date < day && !late.has(key)) late.set(key, { ...split, ratio });
    }
  }
  const toOpening = [...late.values()].filter((x) => startOfDay?.bookedFills?.[splitKey(x)] === undefined);
  return {
    stored: stored === undefined || applied.length === 0 ? stored : { ...stored, positions },
    startOfDay:
      startOfDay === undefined || toOpening.length === 0
        ? startOfDay
        : { ...startOfDay, positions: toOpening.reduce(applyLateSplit, startOfDay.positions) },
    lateApplied: Object.fromEntries([...late.values()].map((x) => [splitKey(x), x.ratio])),
  };
}
