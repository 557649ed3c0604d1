import { liveSleeveIds } from '../core/config/schema.js';
import { UsageError } from '../core/errors.js';
import { orderStyle } from '../core/live/order-style.js';
import { clientOrderId, orderTagOf, sleeveSetTag } from '../core/live/orders.js';
import {
  assignFromBucket,
  isUnassigned,
  reconcilePositions,
  type SymbolReconciliation,
  sleeveRecords,
  unassignedQty,
  withBucket,
} from '../core/live/reconcile.js';
import { ratioText } from '../core/live/split-guard.js';
import type { BrokerActivity, BrokerOrder, BrokerPosition } from '../core/ports/broker.js';
import type {
  AuditRecord,
  BookedFills,
  FillRecord,
  IntentRecord,
  IntentStatus,
  PositionRecord,
  PositionsList,
} from '../core/ports/state-store.js';
import { UNASSIGNED_SLEEVE } from '../core/ports/state-store.js';
import { assignToSleeve } from '../core/trading/sleeves-close.js';
import {
  botAssetClass,
  type LiveContext,
  sessionDate,
  sessionTimeToUtc,
  UnknownStateError,
} from './context.js';
import {
  type DaySplit,
  intentFills,
  listedSplits,
  splitKey,
  splitKeys,
  splitRecords,
  splitsOf,
  splitsToApply,
} from './positions.js';
import { orderState, placeIntentOnce } from './submit.js';

/**
 * Reconciliation (issue 13): at every end of day and before every order step, for each symbol the
 * config trades, the broker's quantity must equal the sum of the sleeves' positions. A difference
 * goes to the UNASSIGNED bucket (records with `sleeve: 'UNASSIGNED'` in the positions list), is
 * alerted once (critical) and blocks new entries in that symbol (see `entryRefusal`) until an
 * operator assigns it to a sleeve or flattens it (`quantshift reconcile`). Never assigned
 * automatically.
 */

/** One reconciliation, as the replay's `reconciliation` JSON keeps it per day. */
export interface ReconciliationResult {
  /** New York trading date. */
  readonly date: string;
  /** When it ran (the step's scheduled time, or the operator's). */
  readonly at: string;
  /** New differences found by this run (each alerted once): 0 on a clean book. */
  readonly mismatches: number;
  /** Symbols whose bucket is not zero after it: their entries are refused. */
  readonly blocked: readonly string[];
  /** Every symbol where the broker, a sleeve or the bucket holds shares. */
  readonly symbols: readonly SymbolReconciliation[];
}

/** The tag of the client order ids of an owner (a sleeve, or the bucket): `qs-<tag>-...`. */
function orderTag(stage: string, owner: string): string {
  return sleeveSetTag(stage, [owner]);
}

/** Whether a client order id is one of the bucket's flattens (never a sleeve's shares). */
export function isBucketOrder(stage: string, id: string): boolean {
  return orderTagOf(id) === orderTag(stage, UNASSIGNED_SLEEVE);
}

/**
 * Whether a client order id is one of this config's sleeves' orders (entries, exits, stops,
 * flattens): its tag is one sleeve's, or a netted order's sleeve set whose tag-to-sleeves map was
 * stored when the order was recorded (every sleeve in it one of the config's). Each tag's answer
 * is kept in `known`, so a day's fills read a stored map once.
 */
async function isSleeveOrder(
  ctx: Pick<LiveContext, 'stage' | 'config' | 'store'>,
  id: string,
  known: Map<string, boolean>,
): Promise<boolean> {
  const tag = orderTagOf(id);
  if (tag === null) return false;
  const cached = known.get(tag);
  if (cached !== undefined) return cached;
  const sleeves = liveSleeveIds(ctx.config);
  let own = sleeves.some((sleeve) => orderTag(ctx.stage, sleeve) === tag);
  if (!own) {
    const set = await ctx.store.getOrderTag(tag);
    own = set !== undefined && set.sleeves.length > 0 && set.sleeves.every((s) => sleeves.includes(s));
  }
  known.set(tag, own);
  return own;
}

/**
 * The fills that are the sleeves' own: the orders of this stage's sleeves (found by their client
 * order id, asked from the broker for a fill whose intent is not among the day's, such as a stop
 * placed on an earlier day). A manual order at the broker and the bucket's flattens are not.
 */
export async function sleeveFills(ctx: LiveContext, fills: readonly FillRecord[]): Promise<FillRecord[]> {
  const unknown = [...new Set(fills.filter((f) => f.clientOrderId === null).map((f) => f.symbol))];
  const ids = new Map<string, string>();
  if (unknown.length > 0) {
    for (const order of await ctx.broker.listOrders({ status: 'all', symbols: unknown })) {
      for (const o of [order, ...order.legs]) ids.set(o.id, o.clientOrderId);
    }
  }
  const own: FillRecord[] = [];
  const known = new Map<string, boolean>();
  for (const f of fills) {
    const id = f.clientOrderId ?? ids.get(f.brokerOrderId);
    if (id !== undefined && !isBucketOrder(ctx.stage, id) && (await isSleeveOrder(ctx, id, known)))
      own.push(f);
  }
  return own;
}

/**
 * Reconciles the broker's positions with the latest positions list: a difference the bucket does
 * not explain yet moves the bucket (written back with the list), raises one critical alert (a
 * bucket that only shrinks, as when its flatten filled, is a notice), is logged with its likely
 * cause and audited. Returns the per-symbol detail and the symbols whose entries are blocked.
 * `readOnly` computes the same and changes nothing (`quantshift reconcile` without an action).
 *
 * A list written before `day` has not seen the day's fills and splits: they are added to it, as the
 * broker reports them (so a run after the open, before the risk check rewrote the list, does not
 * mistake the sleeves' fills for a difference).
 */
export async function reconcile(
  ctx: LiveContext,
  day: string,
  when: string,
  options: { readonly readOnly?: boolean } = {},
): Promise<ReconciliationResult> {
  const [brokerPositions, latest] = await Promise.all([
    ctx.broker.getPositions(),
    ctx.store.getLatestPositions(),
  ]);
  const records = latest?.positions ?? [];
  // The broker's fills the list has not seen: all of the day's for a list of an earlier day; for
  // the day's own list, those beyond the fills it booked (a rerun of execute-orders after that
  // morning's fills, before a step rewrote the list, must not take them for a difference), or,
  // for a list written before it kept them, those after the time it was written.
  const since =
    latest === undefined || latest.date < day
      ? await sinceList(ctx, day, when, records)
      : latest.date !== day
        ? undefined
        : latest.bookedFills !== undefined
          ? await sinceList(ctx, day, when, records, { bookedFills: latest.bookedFills })
          : latest.writtenAt !== undefined && Date.parse(latest.writtenAt) < Date.parse(when)
            ? await sinceList(ctx, day, when, records, { writtenAt: latest.writtenAt })
            : undefined;
  const unseen = since?.records ?? [];
  // The symbols this config trades, or that a record holds; other holdings are not its business.
  const inScope = (symbol: string) =>
    ctx.config.watchlist.includes(symbol) || records.some((r) => r.symbol === symbol);
  const held = brokerPositions.filter((p) => p.assetClass === botAssetClass(ctx) && inScope(p.symbol));
  const lines = reconcilePositions(new Map(held.map((p) => [p.symbol, p.qty])), [...records, ...unseen]);
  const changed = options.readOnly === true ? [] : lines.filter((l) => l.mismatch !== 0);
  const result = (symbols: readonly SymbolReconciliation[]): ReconciliationResult => ({
    date: day,
    at: when,
    mismatches: symbols.filter(grew).length,
    blocked: symbols.filter((l) => l.unassignedAfter !== 0).map((l) => l.symbol),
    symbols: symbols.filter((l) => l.brokerQty !== 0 || l.sleevesQty !== 0 || l.unassignedAfter !== 0),
  });
  if (changed.length === 0) return result(lines);

  const price = (symbol: string) =>
    held.find((p) => p.symbol === symbol)?.avgEntryPrice ??
    records.find((r) => r.symbol === symbol)?.avgEntryPrice ??
    0;
  // Written back with the list it corrects (one dated before today stays the list of its day, so a
  // later run still adds today's fills to it).
  // A bucket of a symbol split today is in the new shares (the lines include the split), among
  // records that are not: dated the day, no step scales it again (see `splitsOf`).
  // Its price is in the new shares too: an earlier day's bucket it grows from has the split applied
  // first (the quantity is the line's anyway).
  const splits = since?.splits ?? [];
  const split = new Set(splits.map((x) => x.symbol));
  const base = records.map((r) => (isUnassigned(r) ? (splitRecords([r], splits)[0] as PositionRecord) : r));
  await ctx.store.putPositions(
    latest?.date ?? day,
    withBucket(base, lines, { date: day, price }).map((r) =>
      isUnassigned(r) && split.has(r.symbol) ? { ...r, entryDate: day } : r,
    ),
    latest?.writtenAt,
    latest?.bookedFills,
  );
  const fills = await ctx.store.listFills(day);
  for (const line of changed) {
    const outside = fills.filter((f) => f.symbol === line.symbol && f.clientOrderId === null);
    const cause =
      outside.length > 0
        ? `fills of orders no intent of this stage explains: ${outside.map((f) => `${f.side} ${f.qty} @ ${f.price} (broker order ${f.brokerOrderId})`).join('; ')}`
        : 'a change at the broker outside the trading steps since the last reconciliation (a manual order, a transfer, a corporate action not applied) or fills missing from the ledger';
    const text = `${line.symbol}: the broker holds ${line.brokerQty}, the sleeves ${line.sleevesQty}; UNASSIGNED ${line.unassignedQty} -> ${line.unassignedAfter}`;
    await ctx.store.appendAudit({
      time: when,
      action: 'drift',
      by: 'reconcile',
      reason: `${text}. Cause: ${cause}`,
    });
    if (!grew(line)) {
      ctx.log.info('reconciliation: the UNASSIGNED bucket shrank', { ...line, cause });
      await ctx.notifier.publish({
        subject: `UNASSIGNED ${line.symbol}: ${line.unassignedQty} -> ${line.unassignedAfter}`,
        severity: 'info',
        text: `${text}.${line.unassignedAfter === 0 ? ` New entries in ${line.symbol} are allowed again.` : ''}`,
      });
      continue;
    }
    ctx.log.error('reconciliation mismatch: shares moved to the UNASSIGNED bucket', { ...line, cause });
    await ctx.notifier.publish({
      subject: `Reconciliation: ${line.mismatch > 0 ? '+' : ''}${line.mismatch} ${line.symbol} UNASSIGNED`,
      severity: 'critical',
      kind: 'alert',
      text: `${text}. Likely cause: ${cause}. New entries in ${line.symbol} are refused until an operator assigns or flattens the bucket; exits and stops of the sleeves go on. Nothing is assigned automatically.`,
      fields: [
        { label: 'Symbol', value: line.symbol },
        { label: 'UNASSIGNED', value: String(line.unassignedAfter) },
      ],
      nextSteps: [
        `See the detail: \`npx quantshift reconcile\``,
        `Shares that are a sleeve's: \`npx quantshift reconcile --assign <sleeve> --symbol ${line.symbol} --reason "..." [--stop <price>]\``,
        ...(line.unassignedAfter > 0
          ? [
              `Shares no sleeve wants: \`npx quantshift reconcile --flatten --symbol ${line.symbol} --reason "..."\``,
            ]
          : []),
      ],
    });
  }
  return result(lines);
}

/**
 * What the broker did today that a list written before today has not seen, as records to add to
 * it: the sleeves' own fills of the day (asked from the broker: an intent's filled quantity is only
 * as fresh as the last step that tracked it) and the day's splits the list has not applied (every
 * record, the bucket's too, scaled by the ratio): all of them for a list of an earlier day, those
 * its booked fills do not name for the day's own list (one carried from an earlier day has none).
 */
async function sinceList(
  ctx: LiveContext,
  day: string,
  when: string,
  records: readonly PositionRecord[],
  /**
   * The day's own list: the fills it booked (only what the broker filled beyond them is new to
   * it), or, on a list written before it kept them, the time it was written (the fills after it).
   */
  seen?: { readonly bookedFills: BookedFills } | { readonly writtenAt: string },
): Promise<{ readonly records: PositionRecord[]; readonly splits: readonly DaySplit[] }> {
  const writtenAt = seen !== undefined && 'writtenAt' in seen ? seen.writtenAt : undefined;
  const activities = await ctx.broker.getActivities({
    // From the session's start: New York midnight for the equity bot, UTC midnight for the crypto bot.
    after: writtenAt ?? new Date(Date.parse(sessionStart(ctx, day)) - 1).toISOString(),
    until: when,
  });
  const after = writtenAt === undefined ? Number.NEGATIVE_INFINITY : Date.parse(writtenAt);
  const dayFills = activities.flatMap((a) =>
    a.kind === 'fill' && sessionDate(ctx, a.time) === day && Date.parse(a.time) > after ? [a] : [],
  );
  const fills: FillRecord[] = beyondBooked(
    dayFills,
    seen !== undefined && 'bookedFills' in seen ? seen.bookedFills : {},
  ).map((a) => ({
    executionId: a.id,
    date: day,
    clientOrderId: null,
    brokerOrderId: a.orderId,
    symbol: a.symbol,
    side: a.side,
    qty: a.qty,
    price: a.price,
    time: a.time,
  }));
  const line = (symbol: string, qty: number, price: number, sleeve?: string): PositionRecord => ({
    symbol,
    qty,
    avgEntryPrice: price,
    stop: null,
    entryRef: null,
    initialRisk: null,
    sessionsHeld: 0,
    ...(sleeve === undefined ? {} : { sleeve }),
  });
  const out = (await sleeveFills(ctx, fills)).map((f) =>
    line(f.symbol, f.side === 'buy' ? f.qty : -f.qty, f.price),
  );
  // The day's splits the list has not applied (all of them for a list of an earlier day; for the
  // day's own list, those its booked fills do not name; a list without them was read as of its time).
  const splits = splitsToApply(
    seen === undefined
      ? undefined
      : { date: day, ...('bookedFills' in seen ? { bookedFills: seen.bookedFills } : {}) },
    day,
    activities.flatMap((a) => (a.kind === 'split' ? [a] : [])),
  );
  for (const r of records) {
    const ratio = splitsOf(r, splits).reduce((product, x) => product * x.ratio, 1);
    if (ratio !== 1) out.push(line(r.symbol, r.qty * (ratio - 1), r.avgEntryPrice, r.sleeve));
  }
  return { records: out, splits };
}

/** A broker fill, as its activities list it. */
type ActivityFill = Extract<BrokerActivity, { kind: 'fill' }>;

/**
 * The fills beyond those a list booked: per broker order, in time order, what is left once the
 * booked quantity is taken (a fill straddling it counts for its part beyond).
 */
export function beyondBooked(fills: readonly ActivityFill[], booked: BookedFills): ActivityFill[] {
  const left = new Map(Object.entries(booked));
  const out: ActivityFill[] = [];
  for (const fill of [...fills].sort((a, b) => Date.parse(a.time) - Date.parse(b.time))) {
    const covered = Math.min(fill.qty, left.get(fill.orderId) ?? 0);
    left.set(fill.orderId, (left.get(fill.orderId) ?? 0) - covered);
    const qty = fill.qty - covered;
    if (qty > 1e-9) out.push(covered === 0 ? fill : { ...fill, qty });
  }
  return out;
}

/** The booked fills of a set of fills: the filled quantity per broker order id. */
export function bookedFillsOf(
  fills: Iterable<{ readonly orderId: string; readonly qty: number }>,
): Record<string, number> {
  const out: Record<string, number> = {};
  for (const f of fills) if (f.qty > 0) out[f.orderId] = (out[f.orderId] ?? 0) + f.qty;
  return out;
}

/**
 * Reads what a positions list is built from at the broker (its positions) together with the day's
 * fills that read includes: the day's fills are listed before and after it, and when both lists
 * agree the read holds exactly those (none came in between). Read again while they differ, at most
 * three times; after that the fills are not known (`bookedFills` undefined: the list falls back on
 * its time). The booked fills also name the day's splits (`splitKey`): the read has them applied. `tracked`: the day's orders as tracked before the read, whose filled quantity the
 * read includes even where the broker's activities do not list the fill yet (a late report).
 * `stored`: the list the new one follows; where the read's quantity of one of its symbols is not
 * what it plus the listed fills make, the read holds a fill the activities do not list yet, of an
 * order that is not the day's (a resting stop of an earlier day): see {@link unlistedFills}.
 */
export async function readWithFills(
  ctx: LiveContext,
  day: string,
  tracked: readonly IntentRecord[],
  read: () => Promise<BrokerPosition[]>,
  stored?: PositionsList,
): Promise<{
  readonly value: BrokerPosition[];
  readonly bookedFills?: BookedFills;
  /** The day's splits the read includes (listed with its fills). */
  readonly splits: readonly DaySplit[];
  /**
   * The day's fills the read includes, listed or not yet (those of the day's orders the activities
   * do not list: at price 0, last); absent when the reads never agreed.
   */
  readonly fills?: readonly ActivityFill[];
}> {
  const dayActivities = async () =>
    (
      await ctx.broker.getActivities({
        after: new Date(Date.parse(sessionStart(ctx, day)) - 1).toISOString(),
      })
    ).filter((a) => a.kind !== 'fill' || sessionDate(ctx, a.time) === day);
  const fillsOf = (activities: readonly BrokerActivity[]) =>
    activities.flatMap((a) => (a.kind === 'fill' ? [a] : []));
  const ids = (activities: readonly BrokerActivity[]) =>
    activities
      .filter((a) => a.kind !== 'dividend')
      .map((a) => a.id)
      .sort()
      .join('\n');
  let value: BrokerPosition[] | undefined;
  let splits: DaySplit[] = [];
  for (let attempt = 0; attempt < 3; attempt++) {
    const before = await dayActivities();
    value = await read();
    const activities = await dayActivities();
    const after = fillsOf(activities);
    splits = activities.flatMap((a) => (a.kind === 'split' && a.date === day ? [a] : []));
    if (ids(before) !== ids(activities)) continue;
    // The read has the day's splits applied: the list says so (see `splitsToApply`).
    const booked: Record<string, number> = { ...bookedFillsOf(after), ...splitKeys(day, splits) };
    // The day's orders' fills the activities do not list yet, as fills (their time: unknown, last).
    const known: ActivityFill[] = [...after];
    for (const i of tracked) {
      const listed = i.brokerOrderId === undefined ? 0 : (booked[i.brokerOrderId] ?? 0);
      if (i.brokerOrderId === undefined || i.filledQty <= listed) continue;
      booked[i.brokerOrderId] = i.filledQty;
      known.push(unlistedFill(i.brokerOrderId, i.symbol, i.side, i.filledQty - listed));
    }
    if (stored === undefined) return { value, bookedFills: booked, splits, fills: known };
    // The fills the stored list of the day booked stay booked: those an earlier run found unlisted
    // (see below) are in the read, and the activities may not list them yet.
    const carry = () => {
      if (stored.date !== day || stored.bookedFills === undefined) return booked;
      const out: Record<string, number> = { ...booked };
      for (const [id, qty] of Object.entries(stored.bookedFills)) out[id] = Math.max(out[id] ?? 0, qty);
      return out;
    };
    const unexplained = unexplainedSymbols(stored, day, value, known, splits);
    if (unexplained === undefined || unexplained.length === 0)
      return { value, bookedFills: carry(), splits, fills: known };
    const found = await unlistedFills(ctx, day, stored, unexplained, after, booked);
    // The orders are listed after the read: a fill landing in between is among the found ones but
    // not in the read. Read again; at the last attempt, book only the found fills of the symbols
    // they explain (the others' are the reconciliation's to find: the bucket, alerted).
    const left = unexplainedSymbols(stored, day, value, [...known, ...found], splits) ?? [];
    if (left.some((symbol) => found.some((f) => f.symbol === symbol)) && attempt < 2) continue;
    for (const fill of found) {
      if (!left.includes(fill.symbol)) booked[fill.orderId] = (booked[fill.orderId] ?? 0) + fill.qty;
    }
    if (left.length > 0) {
      ctx.log.warn('the broker holds quantities no listed or found fill explains', { day, symbols: left });
    }
    return { value, bookedFills: carry(), splits, fills: [...known, ...found] };
  }
  ctx.log.warn('the fills in the broker positions read are not known: the list falls back on its time', {
    day,
  });
  return { value: value as BrokerPosition[], splits };
}

/** A fill the activities do not list (yet), booked from its order. */
function unlistedFill(orderId: string, symbol: string, side: 'buy' | 'sell', qty: number): ActivityFill {
  return {
    kind: 'fill',
    id: `unlisted:${orderId}`,
    orderId,
    symbol,
    side,
    qty,
    price: 0,
    time: '9999-12-31T00:00:00.000Z',
    partial: false,
  };
}

/**
 * What a stored list holds of the day's broker orders, by order (filled quantity per broker order
 * id): nothing for a list of an earlier day, its `bookedFills` for one of the day; undefined when it
 * cannot say by order (a list of the day without `bookedFills`, which says by its `writtenAt` only;
 * a list of a later day). The rule of {@link fillsAfterList}, and of the stream's split guard, which
 * weighs the day's orders (its intents) and so has no fill times to fall back on.
 */
export function bookedByList(
  stored: Pick<PositionsList, 'date' | 'bookedFills'>,
  day: string,
): BookedFills | undefined {
  if (stored.date < day) return {};
  return stored.date === day ? stored.bookedFills : undefined;
}

/**
 * The day's fills a stored list does not hold: all of them for a list of an earlier day; for one of
 * the day, those beyond its `bookedFills` ({@link bookedByList}), else those after its `writtenAt`;
 * undefined when the list cannot say (neither, or a list of a later day).
 */
export function fillsAfterList(
  stored: Pick<PositionsList, 'date' | 'bookedFills' | 'writtenAt'>,
  day: string,
  fills: readonly ActivityFill[],
): ActivityFill[] | undefined {
  const booked = bookedByList(stored, day);
  if (booked !== undefined) return beyondBooked(fills, booked);
  if (stored.date !== day || stored.writtenAt === undefined) return undefined;
  const writtenAt = Date.parse(stored.writtenAt);
  return fills.filter((f) => Date.parse(f.time) > writtenAt);
}

/**
 * A symbol's fills of the day a stored list does not hold, in time order, for the split guard:
 * all of them for a record an earlier check kept in the old shares (flagged `unlistedSplit`: it
 * holds none) or no list, else those after the list ({@link fillsAfterList}); undefined when the
 * list cannot say.
 */
export function symbolFillsNotHeld(
  stored: Pick<PositionsList, 'date' | 'bookedFills' | 'writtenAt' | 'positions'> | undefined,
  day: string,
  symbol: string,
  fills: readonly ActivityFill[],
): ActivityFill[] | undefined {
  const flagged = stored?.positions.some((r) => r.symbol === symbol && r.unlistedSplit !== undefined);
  const unseen = stored === undefined || flagged === true ? fills : fillsAfterList(stored, day, fills);
  return unseen?.filter((f) => f.symbol === symbol).sort((a, b) => Date.parse(a.time) - Date.parse(b.time));
}

/** A fill of the ledger as the broker's activities list it (not partial). */
export function asActivityFill(f: FillRecord): ActivityFill {
  return {
    kind: 'fill',
    id: f.executionId,
    orderId: f.brokerOrderId,
    symbol: f.symbol,
    side: f.side,
    qty: f.qty,
    price: f.price,
    time: f.time,
    partial: false,
  };
}

/**
 * The symbols of a stored list whose quantity at the broker is not what the list and the day's
 * fills it has not booked make (with the day's splits it has not applied, see `splitsToApply`);
 * undefined when the list cannot say which fills it booked (neither `bookedFills` nor `writtenAt`).
 */
export function unexplainedSymbols(
  stored: PositionsList,
  day: string,
  positions: readonly Pick<BrokerPosition, 'symbol' | 'qty'>[],
  fills: readonly ActivityFill[],
  splits: readonly DaySplit[],
): string[] | undefined {
  const unseen = fillsAfterList(stored, day, fills);
  if (unseen === undefined) return undefined;
  // A halted symbol's record keeps the ledger's quantity, not the broker's: no fill explains it
  // (the halt alerted it; the symbol resumes when the two agree again).
  const halted = new Set(stored.positions.flatMap((p) => (p.unknownState === undefined ? [] : [p.symbol])));
  const symbols = [...new Set(stored.positions.map((p) => p.symbol))].filter((symbol) => !halted.has(symbol));
  const toApply = splitsToApply(stored, day, splits);
  return symbols.filter((symbol) => {
    let qty = splitRecords(
      stored.positions.filter((p) => p.symbol === symbol),
      toApply,
    ).reduce((sum, p) => sum + p.qty, 0);
    for (const f of unseen) if (f.symbol === symbol) qty += f.side === 'buy' ? f.qty : -f.qty;
    const held = positions.filter((p) => p.symbol === symbol).reduce((sum, p) => sum + p.qty, 0);
    return Math.abs(qty - held) > 1e-9;
  });
}

/**
 * The fills of the day the broker's orders report and its activities do not list yet, of the
 * orders of `symbols` sent since their positions opened (the earliest `entryDate` of each symbol's
 * records: an earlier day's resting stop is among them), beyond what `booked` holds of each; an
 * order sent before the day counts what it filled beyond its fills listed before the day. A symbol
 * with a record without `entryDate` (no bound to search from) is left out, logged. One order list
 * and at most one activities read for all the symbols.
 */
async function unlistedFills(
  ctx: LiveContext,
  day: string,
  stored: PositionsList,
  symbols: readonly string[],
  listed: readonly ActivityFill[],
  booked: BookedFills,
): Promise<ActivityFill[]> {
  const start = sessionStart(ctx, day);
  // Per symbol: the start of the session its position opened (the earliest of its records).
  const since = new Map<string, number>();
  for (const symbol of symbols) {
    const dates = sleeveRecords(stored.positions.filter((p) => p.symbol === symbol)).map((p) => p.entryDate);
    // Held only in the bucket: no strategy's order to search for (its changes are the
    // reconciliation's to report).
    if (dates.length === 0) continue;
    if (dates.some((d) => d === undefined)) {
      ctx.log.warn('a position record has no entry date: its unlisted fills are not searched', {
        day,
        symbol,
      });
      continue;
    }
    since.set(symbol, Date.parse(sessionStart(ctx, (dates as string[]).sort()[0] as string)));
  }
  if (since.size === 0) return [];
  const orders = (
    await ctx.broker.listOrders({
      status: 'all',
      symbols: [...since.keys()],
      after: new Date(Math.min(...since.values()) - 1).toISOString(),
    })
  )
    .flatMap((o): BrokerOrder[] => [o, ...o.legs])
    .filter((o) => {
      const from = since.get(o.symbol);
      return (
        from !== undefined &&
        Date.parse(o.submittedAt) >= from &&
        o.filledQty > 0 &&
        (o.status === 'partially_filled' || (o.filledAt !== null && sessionDate(ctx, o.filledAt) === day))
      );
    });
  const earlier = orders.filter((o) => Date.parse(o.submittedAt) < Date.parse(start));
  const before =
    earlier.length === 0
      ? []
      : (
          await ctx.broker.getActivities({
            after: new Date(Math.min(...earlier.map((o) => Date.parse(o.submittedAt))) - 1).toISOString(),
            until: start,
          })
        ).flatMap((a) => (a.kind === 'fill' ? [a] : []));
  const out: ActivityFill[] = [];
  for (const order of orders) {
    const sum = (fills: readonly ActivityFill[]) =>
      fills.filter((f) => f.orderId === order.id).reduce((total, f) => total + f.qty, 0);
    const today = order.filledQty - sum(before);
    const beyond = today - Math.max(sum(listed), booked[order.id] ?? 0);
    if (beyond > 1e-9) out.push(unlistedFill(order.id, order.symbol, order.side, beyond));
  }
  return out;
}

/** The start of a session (ISO): New York midnight for the equity bot, UTC midnight for the crypto bot. */
function sessionStart(ctx: Pick<LiveContext, 'calendar'>, day: string): string {
  return sessionTimeToUtc(ctx, day, '00:00');
}

/**
 * The `writtenAt` of a positions list rewritten for `day` from the latest list, without reading
 * the broker: the latest's own when it is the day's, else the session's start (a list of an
 * earlier day has seen none of the day's fills).
 */
export function listAsOf(
  ctx: Pick<LiveContext, 'calendar'>,
  latest: { readonly date: string; readonly writtenAt?: string } | undefined,
  day: string,
): string | undefined {
  return latest?.date === day ? latest.writtenAt : sessionStart(ctx, day);
}

/**
 * The `bookedFills` of a positions list rewritten for `day` from the latest list, without reading
 * the broker (as {@link listAsOf}): the latest's own when it is the day's, else none (a list of an
 * earlier day has booked none of the day's fills).
 */
export function listBookedFills(
  latest: { readonly date: string; readonly bookedFills?: BookedFills } | undefined,
  day: string,
): BookedFills | undefined {
  return latest?.date === day ? latest.bookedFills : {};
}

/** A bucket that appeared, grew or changed side: a new difference (alerted); one that only shrinks is not. */
function grew(line: SymbolReconciliation): boolean {
  const before = line.unassignedQty;
  const after = line.unassignedAfter;
  if (line.mismatch === 0) return false;
  return Math.sign(after) !== Math.sign(before) ? after !== 0 : Math.abs(after) > Math.abs(before);
}

/**
 * An operator's `--assign` on a sleeves config on the day of a split of the symbol the stored sleeves
 * state has not applied ({@link splitsNotBooked}: all the split day; the risk check's booking is
 * provisional, end-of-day keeps the day's decided books in the old shares): a later booking from
 * them scales every position opened before the day, the shares assigned now in the new shares
 * included (a `--stop` of 90 would become 22.50). Refused: wait for the next session.
 */
export class SplitNotBookedError extends UsageError {}

/**
 * The day's splits of `symbol` the broker's activities list (up to `until`) that a stored positions
 * list has not applied yet ({@link splitsToApply}: all of the day's for a list of an earlier day,
 * those its `bookedFills` does not name for the day's own, none for one without `bookedFills`), and
 * only while the broker's position shows them against the list (its quantity, less the day's fills
 * the list does not hold, from the day's intents, is the list's times their ratio): a list whose
 * shares are in the new shares already though it names no split is not split again (none then;
 * none either when a fill of the day has no average price). `listed`: the activities' splits when
 * already read.
 */
async function pendingSplits(
  ctx: LiveContext,
  latest: PositionsList | undefined,
  day: string,
  until: string,
  symbol: string,
  listed?: readonly DaySplit[],
): Promise<DaySplit[]> {
  const pending = splitsToApply(latest, day, listed ?? (await listedSplits(ctx, day, until))).filter(
    (x) => x.symbol === symbol,
  );
  if (pending.length === 0 || latest === undefined) return [];
  const position = (await ctx.broker.getPositions()).find((p) => p.symbol === symbol);
  if (position === undefined) return [];
  const booked = bookedByList(latest, day);
  const fills = intentFills(await ctx.store.listIntents(day), symbol, (i) =>
    booked === undefined ? null : (booked[i.brokerOrderId ?? ''] ?? 0),
  );
  if (fills === 'unknown') return [];
  // The quantities only: the broker's, less the day's fills the list does not hold, against the
  // list's records of the symbol (the bucket's too). (The guard's cost-basis check is left out: a
  // sleeves list keeps the books' prices, not the broker's, and would never show it.)
  const net = fills.reduce((sum, f) => sum + (f.side === 'buy' ? f.qty : -f.qty), 0);
  const held = latest.positions.filter((r) => r.symbol === symbol).reduce((sum, r) => sum + r.qty, 0);
  const ratio = pending.reduce((product, x) => product * x.ratio, 1);
  return Math.abs(held) > 1e-9 && Math.abs((position.qty - net) / held - ratio) <= 1e-6 * ratio
    ? pending
    : [];
}

/**
 * The day's splits of `symbol` the broker's activities list (`listed`) that the stored sleeves state
 * has not applied: those whose key (`splitKey`) its `booked` books or the day's `decided` books do
 * not name (all of them without a stored state). The risk check books the day provisionally
 * (nothing stored) and end-of-day stores the booked books split but keeps the day's `decided` books
 * (which a rerun books from, applying the split then) in the old shares: shares assigned into
 * either in the new shares would be split again. So on the split day this is every listed split
 * of the symbol; the next session's signal step decides from the booked (split) books.
 */
async function splitsNotBooked(
  ctx: LiveContext,
  day: string,
  symbol: string,
  listed: readonly DaySplit[],
): Promise<DaySplit[]> {
  const ofDay = listed.filter((x) => x.symbol === symbol && x.date === day);
  if (ofDay.length === 0) return [];
  const record = (await ctx.store.getSleevesState())?.record;
  const named = (splits: Readonly<Record<string, number>> | undefined) => (x: DaySplit) =>
    splits?.[splitKey(x)] !== undefined;
  return ofDay.filter(
    (x) =>
      record === undefined ||
      !named(record.booked.splits)(x) ||
      (record.decided?.day === day && !named(record.decided.state.splits)(x)),
  );
}

/** Who did an operator action, and why. */
export interface OperatorInput {
  readonly by: string;
  readonly reason: string;
  /** When (ISO): the New York date of it is the action's day. */
  readonly time: string;
}

/**
 * `reconcile --assign`: moves the bucket's shares of a symbol (all, or `qty`) into a sleeve's
 * position, after a fresh reconciliation, recorded with who and why. The new shares keep the
 * sleeve's stop, or take `stop` (required when the sleeve holds no stop for them); the next risk
 * check resizes the resting stop order to the sleeve's new quantity. The assignment is written to
 * the latest positions list and to the list the next end-of-day starts from, so its walk of the
 * sleeve's fills keeps it.
 */
export async function assignBucket(
  ctx: LiveContext,
  input: OperatorInput & {
    readonly sleeve: string;
    readonly symbol: string;
    readonly qty?: number;
    readonly stop?: number;
  },
): Promise<{
  readonly reconciliation: ReconciliationResult;
  readonly qty: number;
  readonly sleeveQty: number;
}> {
  const day = sessionDate(ctx, input.time);
  const latest = await ctx.store.getLatestPositions();
  if (latest === undefined)
    throw new UsageError(`${input.symbol}: no positions list stored: nothing to assign`);
  const request = {
    symbol: input.symbol,
    sleeve: input.sleeve,
    sleeves: liveSleeveIds(ctx.config),
    date: day,
    ...(input.qty === undefined ? {} : { qty: input.qty }),
    ...(input.stop === undefined ? {} : { stop: input.stop }),
  };
  // A split of the symbol the list has not applied yet (the day's risk check has not run), which
  // the broker's position shows: applied first, once, as the risk check does (every record of the
  // symbol opened before the day: shares times the ratio, prices and stop divided), so the shares
  // moved and the stop are in the new shares, as the broker and the reconciliation have them; the
  // list written names the split (`splitKey`), so no step applies it again. A sleeves config
  // refuses on the split day, whatever the list says (see `splitsNotBooked`).
  // The day's splits are read only for a bucket that holds shares (an empty one is refused below
  // whatever they are, even with the broker's activities endpoint down).
  const listed =
    unassignedQty(latest.positions, input.symbol) === 0 ? [] : await listedSplits(ctx, day, input.time);
  if (ctx.config.sleeves !== undefined) {
    const unbooked = await splitsNotBooked(ctx, day, input.symbol, listed);
    if (unbooked.length > 0)
      throw new SplitNotBookedError(
        `${input.symbol}: a ${unbooked.map((x) => ratioText(x.ratio)).join(' and ')} split today, and the sleeves' stored books (booked, and the day's decided state an end-of-day rerun books from) are still in the old shares: the risk check's booking is provisional, end-of-day keeps the day's decided state as it was. Wait for the next session (after its signal step), then assign`,
      );
  }
  const splits = await pendingSplits(ctx, latest, day, input.time, input.symbol, listed);
  const assigned = assignFromBucket(splitRecords(latest.positions, splits), request);
  if (ctx.config.sleeves !== undefined) {
    // A sleeves config: the sleeves' ledger (the books the trading path restores) takes the shares too.
    const bucket = latest.positions.find((r) => isUnassigned(r) && r.symbol === input.symbol);
    await assignInSleevesState(ctx, {
      sleeve: input.sleeve,
      symbol: input.symbol,
      qty: assigned.qty,
      price: bucket?.avgEntryPrice ?? Number.NaN,
      stop: input.stop ?? null,
      time: Date.parse(input.time),
    });
  }
  // Written as the day's list: the list the next end-of-day starts from stays as it was, and that
  // end-of-day adds the day's assignments (`assignedOn`) to its walk of the sleeves' fills.
  const booked = listBookedFills(latest, day);
  await ctx.store.putPositions(
    day,
    assigned.records,
    listAsOf(ctx, latest, day),
    splits.length === 0 ? booked : { ...booked, ...splitKeys(day, splits) },
  );
  await audit(ctx, {
    time: input.time,
    action: 'reconcile-assign',
    by: input.by,
    reason: input.reason,
    details: {
      symbol: input.symbol,
      sleeve: input.sleeve,
      qty: assigned.qty,
      sleeveQty: assigned.sleeveQty,
      ...(input.stop === undefined ? {} : { stop: input.stop }),
    },
  });
  await ctx.notifier.publish({
    subject: `UNASSIGNED ${input.symbol}: ${assigned.qty} assigned to ${input.sleeve} (${input.by})`,
    severity: 'info',
    text: `${input.by} assigned ${assigned.qty} ${input.symbol} from the UNASSIGNED bucket to sleeve ${input.sleeve} (now ${assigned.sleeveQty}): ${input.reason}`,
  });
  return {
    reconciliation: await reconcile(ctx, day, input.time, { readOnly: true }),
    qty: assigned.qty,
    sleeveQty: assigned.sleeveQty,
  };
}

/** Applies an assignment to the stored sleeves' ledger (booked, and the day's decided books), one versioned write. */
async function assignInSleevesState(
  ctx: LiveContext,
  request: Parameters<typeof assignToSleeve>[1],
): Promise<void> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const stored = await ctx.store.getSleevesState();
    if (stored === undefined) return; // Not trading yet: the first signal run starts from the broker.
    const { record } = stored;
    const saved = await ctx.store.putSleevesState(
      {
        ...record,
        booked: assignToSleeve(record.booked, request),
        decided:
          record.decided === null
            ? null
            : { ...record.decided, state: assignToSleeve(record.decided.state, request) },
      },
      stored.version,
    );
    if (!('conflict' in saved)) return;
  }
  throw new UnknownStateError('the sleeves state kept changing under the assignment; run it again');
}

/** One assignment an operator made: `qty` shares of `symbol` moved from the bucket into `sleeve`. */
export interface Assignment {
  readonly sleeve: string;
  readonly symbol: string;
  readonly qty: number;
}

/**
 * The assignments made on a New York trading day (read from the audit): end-of-day walks each
 * sleeve from the list before its day through its own fills, and adds these.
 */
export async function assignedOn(ctx: LiveContext, day: string): Promise<Assignment[]> {
  const from = new Date(Date.parse(`${day}T00:00:00Z`) - 86_400_000).toISOString();
  const to = new Date(Date.parse(`${day}T00:00:00Z`) + 2 * 86_400_000).toISOString();
  return (await ctx.store.listAudit(from, to)).flatMap((a) => {
    if (a.action !== 'reconcile-assign' || sessionDate(ctx, a.time) !== day) return [];
    const { sleeve, symbol, qty } = a.details ?? {};
    return typeof sleeve === 'string' && typeof symbol === 'string' && typeof qty === 'number'
      ? [{ sleeve, symbol, qty }]
      : [];
  });
}

/** Intent states of a flatten still on its way (not to be sent again). */
const OPEN: readonly IntentStatus[] = ['recorded', 'submitted', 'unknown', 'accepted', 'partially_filled'];

/** What `reconcile --flatten` did. */
export interface FlattenResult {
  /**
   * `sent`: this run sent the order; `already-sent`: an earlier run's is on its way (resolved with
   * the broker, never sent again); `already-flattened`: one filled today already (one a symbol and
   * day); `empty`: the bucket holds nothing.
   */
  readonly status: 'sent' | 'already-sent' | 'already-flattened' | 'empty';
  readonly clientOrderId: string | null;
  readonly intentStatus: IntentStatus | null;
  readonly qty: number;
  /** Whether this run cleared the bucket (its order filled and this run recorded the fill). */
  readonly cleared: boolean;
  readonly reconciliation: ReconciliationResult;
}

/**
 * `reconcile --flatten`: sells the bucket's shares of a symbol at market through the exactly-once
 * submit path: the intent (sleeve `UNASSIGNED`, purpose exit) is recorded first under a
 * deterministic client order id (the bucket's own tag, the symbol, the day, `flatten`), so a second
 * run, or a concurrent one, finds it and never sends a second order; at most one flatten a symbol
 * fills per day (one refused or expired unfilled is followed by the next sequence number). The run
 * that records its fill clears the bucket; a fill first seen by a step is cleared by the next
 * reconciliation (end-of-day). A negative bucket (the broker holds fewer shares than the sleeves)
 * has nothing to sell: assign it. Recorded with who and why.
 */
export async function flattenBucket(
  ctx: LiveContext,
  input: OperatorInput & { readonly symbol: string },
): Promise<FlattenResult> {
  const day = sessionDate(ctx, input.time);
  const { symbol, time } = input;
  // The bucket in the broker's shares: with a split of the day the list has not applied yet (before
  // the day's risk check) applied, as the reconciliation applies it (a 4:1 split: four times the
  // old shares; a bucket the day's reconciliation wrote is in the new shares already).
  const latest = await ctx.store.getLatestPositions();
  // (Read only for a bucket the list holds: an empty one has nothing to split or clear.)
  const listed = unassignedQty(latest?.positions, symbol) === 0 ? [] : await listedSplits(ctx, day, time);
  const bucket = unassignedQty(
    splitRecords(latest?.positions ?? [], await pendingSplits(ctx, latest, day, time, symbol, listed)),
    symbol,
  );
  const sequenceId = (sequence: number) =>
    clientOrderId({
      stage: ctx.stage,
      strategy: UNASSIGNED_SLEEVE,
      symbol,
      date: day,
      purpose: 'flatten',
      sequence,
    });
  const earlier: IntentRecord[] = [];
  for (let sequence = 0; ; sequence++) {
    const stored = await ctx.store.getIntent(day, sequenceId(sequence));
    if (stored === undefined) break;
    earlier.push(stored);
  }
  const done = async (
    status: FlattenResult['status'],
    intent: IntentRecord | undefined,
    cleared: boolean,
  ): Promise<FlattenResult> => ({
    status,
    clientOrderId: intent?.clientOrderId ?? null,
    intentStatus: intent?.status ?? null,
    qty: intent?.qty ?? 0,
    cleared,
    reconciliation: await reconcile(ctx, day, time, { readOnly: true }),
  });

  const open = earlier.find((i) => OPEN.includes(i.status));
  if (open !== undefined) {
    const order = await ctx.broker.getOrderByClientOrderId(open.clientOrderId);
    if (order === null) return done('already-sent', await placeIntentOnce(ctx, open, time), false);
    const settled = await ctx.store.transitionIntent(day, open.clientOrderId, [open.status], {
      ...orderState(order),
      updatedAt: time,
    });
    if ('conflict' in settled) return done('already-sent', open, false);
    if (OPEN.includes(settled.status) || settled.filledQty > 0)
      return done('already-sent', settled, await clearOnFill(ctx, settled, time, listed));
    // Done at the broker without a fill (cancelled, expired, rejected): the next sequence number.
    earlier[earlier.indexOf(open)] = settled;
  }
  const filled = earlier.find((i) => i.filledQty > 0);
  if (filled !== undefined) return done('already-flattened', filled, false);
  if (bucket === 0) return done('empty', undefined, false);
  if (bucket < 0)
    throw new UsageError(
      `${symbol}: the broker holds ${-bucket} shares fewer than the sleeves (UNASSIGNED ${bucket}): nothing to sell; charge the shortfall to the sleeve whose shares were sold with --assign <sleeve>`,
    );
  const position = (await ctx.broker.getPositions()).find((p) => p.symbol === symbol);
  if (position === undefined || position.qty < bucket)
    throw new UsageError(
      `${symbol}: the broker holds ${position?.qty ?? 0}, fewer than the bucket's ${bucket}`,
    );
  const intent: IntentRecord = {
    clientOrderId: sequenceId(earlier.length),
    sleeve: UNASSIGNED_SLEEVE,
    date: day,
    strategy: ctx.config.name,
    symbol,
    purpose: 'exit',
    side: 'sell',
    qty: bucket,
    ...orderStyle(ctx.config).immediate,
    referencePrice: position.currentPrice,
    status: 'recorded',
    filledQty: 0,
    reason: `reconcile --flatten by ${input.by}: ${input.reason}`,
    configHash: ctx.configHash,
    gitCommit: ctx.gitCommit,
    createdAt: time,
    updatedAt: time,
  };
  const { created, intent: stored } = await ctx.store.createIntent(intent);
  const placed = await placeIntentOnce(ctx, stored, time);
  if (!created) return done('already-sent', placed, false);
  await audit(ctx, {
    time,
    action: 'reconcile-flatten',
    by: input.by,
    reason: input.reason,
    details: { symbol, qty: bucket, clientOrderId: placed.clientOrderId, status: placed.status },
  });
  await ctx.notifier.publish({
    subject: `UNASSIGNED ${symbol}: flatten of ${bucket} sent (${input.by})`,
    severity: 'warning',
    text: `${placed.clientOrderId}: sell ${bucket} ${symbol} at market (${placed.status}): ${input.reason}`,
  });
  return done('sent', placed, await clearOnFill(ctx, placed, time, listed));
}

/**
 * Takes a filled flatten's shares out of the bucket (by the one run that recorded the fill). The
 * flatten sold them in the broker's shares: a bucket the list holds in the old shares of a split of
 * the day it has not applied (`listed`: the day's splits the activities list) is split first and
 * dated the day, as the reconciliation writes such a bucket, so no step scales it again.
 */
async function clearOnFill(
  ctx: LiveContext,
  intent: IntentRecord,
  time: string,
  listed: readonly DaySplit[],
): Promise<boolean> {
  if (intent.status !== 'filled' || intent.filledQty <= 0) return false;
  const latest = await ctx.store.getLatestPositions();
  if (latest === undefined) return false;
  const splits = await pendingSplits(ctx, latest, intent.date, time, intent.symbol, listed);
  const records = latest.positions.flatMap((r) => {
    if (!(isUnassigned(r) && r.symbol === intent.symbol)) return [r];
    const split: PositionRecord =
      splitsOf(r, splits).length === 0
        ? r
        : { ...(splitRecords([r], splits)[0] as PositionRecord), entryDate: intent.date };
    const left = Math.round((split.qty - intent.filledQty) * 1e9) / 1e9;
    return left === 0 ? [] : [{ ...split, qty: left }];
  });
  await ctx.store.putPositions(latest.date, records, latest.writtenAt, latest.bookedFills);
  ctx.log.info('flatten filled: the UNASSIGNED bucket is cleared', {
    symbol: intent.symbol,
    qty: intent.filledQty,
    clientOrderId: intent.clientOrderId,
    time,
  });
  return true;
}

/**
 * The bucket's own filled sells of the day as bucket records (negative): a step that sees the broker
 * without those shares before the next reconciliation cleared the bucket counts them as gone
 * (`sleevesShare` clamps a bucket the sleeves cannot owe).
 */
export function flattenedToday(intents: readonly IntentRecord[]): PositionRecord[] {
  return intents
    .filter((i) => i.sleeve === UNASSIGNED_SLEEVE && i.filledQty > 0)
    .map((i) => ({
      symbol: i.symbol,
      qty: i.side === 'sell' ? -i.filledQty : i.filledQty,
      avgEntryPrice: i.avgFillPrice ?? i.referencePrice,
      stop: null,
      entryRef: null,
      initialRisk: null,
      sessionsHeld: 0,
      sleeve: UNASSIGNED_SLEEVE,
    }));
}

async function audit(ctx: LiveContext, record: AuditRecord): Promise<void> {
  await ctx.store.appendAudit(record);
}
