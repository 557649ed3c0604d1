import { singleStrategy } from '../core/config/schema.js';
import { isUnassigned } from '../core/live/reconcile.js';
import {
  costThroughFills,
  type DayFill,
  type DayFills,
  ratioText,
  unlistedSplitOf,
} from '../core/live/split-guard.js';
import { utcDay } from '../core/market/utc-day.js';
import type { BrokerPosition } from '../core/ports/broker.js';
import type { IntentRecord, PositionRecord } from '../core/ports/state-store.js';
import type { SleevesState } from '../core/trading/sleeves-close.js';
import {
  botAssetClass,
  type LiveContext,
  sessionTimeToUtc,
  UnknownStateError,
  UnlistedSplitError,
} from './context.js';

/**
 * Why the broker's position in a symbol contradicts what this system holds, or null when it does
 * not: any short in a long-only stage (it never opens one), or a side opposite to the ledger's
 * record. Such a position is an unknown state: no order is derived from it (a "stop" or a flatten
 * of a short would BUY, increasing exposure when the answer is wrong), the symbol halts and alerts.
 */
export function positionConflict(
  ctx: Pick<LiveContext, 'config'>,
  position: Pick<BrokerPosition, 'symbol' | 'qty'>,
  record: Pick<PositionRecord, 'qty'> | undefined,
): UnknownStateError | null {
  const { symbol, qty } = position;
  // Live stages are long-only (assertLiveConfig): a sleeves config's sleeves all are.
  const direction = ctx.config.strategy === undefined ? 'long-only' : singleStrategy(ctx.config).direction;
  if (direction === 'long-only' && qty < 0) {
    return new UnknownStateError(
      `${symbol}: the broker reports a short of ${-qty} shares (ledger ${record?.qty ?? 0}); this long-only stage never opens a short`,
    );
  }
  if (record !== undefined && record.qty !== 0 && Math.sign(record.qty) !== Math.sign(qty)) {
    return new UnknownStateError(
      `${symbol}: the broker reports ${qty} shares, the ledger ${record.qty}: the sides disagree`,
    );
  }
  return null;
}

/**
 * Halts one symbol on an unknown state: alerts (critical) unless its record already carries the
 * same reason (alerted once), and returns the record to keep: the ledger's figures, flagged.
 */
export async function haltSymbol(
  ctx: LiveContext,
  position: BrokerPosition,
  record: PositionRecord | undefined,
  conflict: UnknownStateError,
): Promise<PositionRecord> {
  if (record?.unknownState !== conflict.message) {
    ctx.log.error('unknown position state: symbol halted', {
      error: conflict.name,
      message: conflict.message,
      symbol: position.symbol,
    });
    await ctx.notifier.publish({
      subject: `Unknown state: ${position.symbol} halted`,
      severity: 'critical',
      text: `${conflict.name}: ${conflict.message}. No stop, exit or entry is sent for ${position.symbol} until the broker and the ledger agree again; every other symbol goes on. Check the account.`,
    });
  }
  return {
    sleeve: record?.sleeve ?? ctx.config.name,
    ...(record ?? {
      symbol: position.symbol,
      qty: 0,
      avgEntryPrice: position.avgEntryPrice,
      stop: null,
      entryRef: null,
      initialRisk: null,
      sessionsHeld: 0,
    }),
    unknownState: conflict.message,
  };
}

/**
 * The split the broker's position in a symbol shows and its activities do not list yet, or null
 * (`unlistedSplitRatio`: the quantity less the day's fills apart from the booked one by a ratio,
 * the booked cost basis walked through those fills the broker's). The booked side is the symbol's
 * records with the listed splits applied: the sleeves' alone (a bucket an earlier reconciliation
 * filled with the split's shares left out), or with the bucket; `fills` are the symbol's fills of
 * the day those records do not hold (`'unknown'`: no guard). Alerts (critical, naming the symbol
 * and the apparent ratio) unless `alerted`, the reason the symbol's stored records already carry,
 * is the same: once.
 */
export async function unlistedSplit(
  ctx: LiveContext,
  position: Pick<BrokerPosition, 'symbol' | 'qty' | 'avgEntryPrice'>,
  records: readonly PositionRecord[],
  fills: DayFills,
  alerted: string | undefined,
): Promise<UnlistedSplitError | null> {
  const { symbol } = position;
  const found = unlistedSplitOf(position, records, fills);
  if (found === null || fills === 'unknown') return null;
  const { ratio, booked } = found;
  const net = fills.reduce((sum, f) => sum + (f.side === 'buy' ? f.qty : -f.qty), 0);
  const walked = costThroughFills(booked.qty * ratio, booked.cost, fills) ?? booked.cost;
  const split = new UnlistedSplitError(
    fills.length === 0
      ? `${symbol}: the broker holds ${position.qty} shares, the books ${booked.qty} at the same cost basis ($${booked.cost.toFixed(2)}), with no fill today: a ${ratioText(ratio)} split not listed yet?`
      : `${symbol}: the broker holds ${position.qty} shares, the books ${booked.qty} and the day's ${fills.length} fill${fills.length === 1 ? '' : 's'} (${net >= 0 ? '+' : ''}${net} shares) at the same cost basis ($${walked.toFixed(2)} with the fills): a ${ratioText(ratio)} split not listed yet?`,
  );
  if (alerted !== split.message) {
    ctx.log.error('a split the broker has not listed yet: no stop, exit or entry in the symbol', {
      error: split.name,
      message: split.message,
      symbol,
      ratio,
    });
    await ctx.notifier.publish({
      subject: `${symbol}: a ${ratioText(ratio)} split not listed yet?`,
      severity: 'critical',
      text: `${split.name}: ${split.message} Its recorded stops are in the old shares: no crossed-stop exit, no new stop and no entry is sent for ${symbol} (its resting stop orders, which the broker scaled, stay) until the broker lists the split (then it is applied as usual) or an operator acts. Check the account.`,
    });
  }
  return split;
}

/**
 * A symbol's fills of the day from the day's intents (a sleeve's leg left out: its net order is the
 * broker's), for the split guard: each order's filled quantity less what `held` says the booked
 * records hold of it, at its average fill price, in the order the intents last changed; `'unknown'`
 * (no guard) when `held` cannot say (null) or a part has no average fill price. A fill no intent of
 * the day names (a resting stop of an earlier day, an order by hand) is not among them: the cost
 * bases then disagree and the guard finds nothing, as without this.
 */
export function intentFills(
  intents: readonly IntentRecord[],
  symbol: string,
  held: (intent: IntentRecord) => number | null,
): DayFills {
  const filled = intents
    .filter((i) => i.symbol === symbol && i.leg !== true && i.filledQty > 0)
    .sort((a, b) => Date.parse(a.updatedAt) - Date.parse(b.updatedAt));
  const out: DayFill[] = [];
  for (const i of filled) {
    const booked = held(i);
    if (booked === null) return 'unknown';
    const qty = i.filledQty - Math.min(i.filledQty, booked);
    if (qty <= 1e-9) continue;
    if (i.avgFillPrice === undefined) return 'unknown';
    out.push({ side: i.side, qty, price: i.avgFillPrice });
  }
  return out;
}

/** A split of the day, as the broker's activities report it (new shares per old share). */
export interface DaySplit {
  readonly symbol: string;
  readonly date: string;
  readonly ratio: number;
}

/**
 * The key under which a positions list's `bookedFills` records that its quantities and prices have
 * a split of the day applied (never a broker order id): a list read from the broker after the split
 * has it; one carried from an earlier day's list (the signal step's) does not.
 */
export function splitKey(split: Pick<DaySplit, 'symbol' | 'date'>): string {
  return `split:${split.symbol}:${split.date}`;
}

/**
 * The split a {@link splitKey} names (its symbol and its `YYYY-MM-DD` date), or null for any other
 * key (a list's `bookedFills` holds broker order ids too).
 */
export function parseSplitKey(key: string): Pick<DaySplit, 'symbol' | 'date'> | null {
  if (!key.startsWith('split:')) return null;
  const cut = key.lastIndexOf(':');
  const symbol = key.slice('split:'.length, cut);
  const date = key.slice(cut + 1);
  return symbol.length > 0 && /^\d{4}-\d{2}-\d{2}$/.test(date) ? { symbol, date } : null;
}

/**
 * The day's splits a positions list has not applied yet: every one for a list of an earlier day;
 * for the day's own list, those its `bookedFills` does not name (none when it has no `bookedFills`:
 * such a list was read from the broker, as of its time).
 */
export function splitsToApply(
  list: { readonly date: string; readonly bookedFills?: Readonly<Record<string, number>> } | undefined,
  day: string,
  splits: readonly DaySplit[],
): DaySplit[] {
  const ofDay = splits.filter((s) => s.date === day);
  if (list === undefined || list.date < day) return ofDay;
  if (list.date > day || list.bookedFills === undefined) return [];
  const booked = list.bookedFills;
  return ofDay.filter((s) => booked[splitKey(s)] === undefined);
}

/** A position record with a split applied: the quantity times the ratio, its prices divided by it. */
export function splitRecord(record: PositionRecord, ratio: number): PositionRecord {
  return {
    ...record,
    qty: record.qty * ratio,
    avgEntryPrice: record.avgEntryPrice / ratio,
    stop: record.stop === null ? null : record.stop / ratio,
    entryRef: record.entryRef === null ? null : record.entryRef / ratio,
    initialRisk: record.initialRisk === null ? null : record.initialRisk / ratio,
    // The round trip's closed part in the same shares (its cents unchanged).
    ...(record.realised === undefined
      ? {}
      : {
          realised: {
            ...record.realised,
            qty: record.realised.qty * ratio,
            entryPrice: record.realised.entryPrice / ratio,
            exitPrice: record.realised.exitPrice / ratio,
          },
        }),
  };
}

/** The split keys of the day's splits (for a list that has them applied). */
export function splitKeys(day: string, splits: readonly DaySplit[]): Record<string, number> {
  return Object.fromEntries(splits.filter((s) => s.date === day).map((s) => [splitKey(s), s.ratio]));
}

/**
 * The splits that apply to a record: those of its symbol, except one on the record's `entryDate`
 * (a split takes effect at the open, so a position opened that day, or a bucket the day's
 * reconciliation wrote, is in the new shares already).
 */
export function splitsOf(
  record: Pick<PositionRecord, 'symbol' | 'entryDate'>,
  splits: readonly DaySplit[],
): DaySplit[] {
  return splits.filter((x) => x.symbol === record.symbol && x.date !== record.entryDate);
}

/** Records with splits applied, each by the splits that apply to it ({@link splitsOf}). */
export function splitRecords(
  records: readonly PositionRecord[],
  splits: readonly DaySplit[],
): PositionRecord[] {
  return records.map((r) => splitsOf(r, splits).reduce((record, x) => splitRecord(record, x.ratio), r));
}

/**
 * How long a sleeves state keeps a split's key at least (days): a read of the activities goes back
 * this far, or to the day the state was booked through when that is earlier ({@link splitsReadFrom}).
 */
export const SPLIT_KEYS_KEPT_DAYS = 31;

/** The date `days` calendar days before `day` (both YYYY-MM-DD). */
function daysBefore(day: string, days: number): string {
  return new Date(Date.parse(`${day}T00:00:00Z`) - days * 86_400_000).toISOString().slice(0, 10);
}

/**
 * The session a sleeves state's read of the split activities starts at, for `day`: the earlier of
 * the day the state was booked through and {@link SPLIT_KEYS_KEPT_DAYS} days before `day`, so a
 * split the broker lists (by its effective date) two or more sessions late is still read; the
 * state's keys keep it from being applied twice.
 */
export function splitsReadFrom(bookedThrough: string, day: string): string {
  const kept = lateSplitsReadFrom(day);
  return bookedThrough < kept ? bookedThrough : kept;
}

/**
 * A split the broker's activities list late (dated before `day`, within
 * {@link SPLIT_KEYS_KEPT_DAYS} days) that a single-strategy positions list has not applied yet:
 * its key is not among the list's `bookedFills` (`applied`) and the broker's position shows it
 * (`unlistedSplitOf`: the quantity the sleeve's records' times the split's ratio plus the day's
 * fills they do not hold, `fills`; the cost basis likewise). A list that has it applied shows no
 * split, so it is never applied twice (reruns, the next days). Null when there is none.
 */
export function lateSplitOf(
  position: Pick<BrokerPosition, 'symbol' | 'qty' | 'avgEntryPrice'>,
  records: readonly PositionRecord[],
  fills: DayFills,
  applied: Readonly<Record<string, number>> | undefined,
  day: string,
  listed: readonly DaySplit[],
): DaySplit | null {
  const found = unlistedSplitOf(position, records, fills);
  if (found === null) return null;
  const kept = lateSplitsReadFrom(day);
  return (
    listed.find(
      (x) =>
        x.symbol === position.symbol &&
        x.date < day &&
        x.date >= kept &&
        applied?.[splitKey(x)] === undefined &&
        Math.abs(x.ratio - found.ratio) <= 1e-9 * x.ratio,
    ) ?? null
  );
}

/**
 * Records with a split listed late applied once: every sleeve's record in the symbol opened before
 * the split's day ({@link splitRecord}: shares times the ratio, prices and `realised` divided); the
 * UNASSIGNED bucket, when an earlier reconciliation wrote it on or after the split's day (its
 * quantity includes the split's new shares, which are the sleeve's), less the shares the split adds
 * to the sleeves (dropped at zero), else (a bucket in the old shares) split as well.
 */
export function applyLateSplit(records: readonly PositionRecord[], split: DaySplit): PositionRecord[] {
  const before = (r: PositionRecord) =>
    r.symbol === split.symbol && (r.entryDate === undefined || r.entryDate < split.date);
  const added = records
    .filter((r) => !isUnassigned(r) && before(r))
    .reduce((sum, r) => sum + r.qty * (split.ratio - 1), 0);
  return records.flatMap((r) => {
    if (r.symbol !== split.symbol) return [r];
    if (before(r)) return [splitRecord(r, split.ratio)];
    if (!isUnassigned(r)) return [r];
    const qty = r.qty - added;
    return Math.abs(qty) <= 1e-9 ? [] : [{ ...r, qty }];
  });
}

/**
 * The splits the broker's activities list from the start of the session `from` until `until`
 * (none for the crypto bot: only the equity broker reports splits).
 */
export async function listedSplits(ctx: LiveContext, from: string, until: string): Promise<DaySplit[]> {
  if (botAssetClass(ctx) === 'crypto') return [];
  const activities = await ctx.broker.getActivities({
    after: new Date(Date.parse(sessionTimeToUtc(ctx, from, '00:00')) - 1).toISOString(),
    until,
  });
  return activities.flatMap((a) =>
    a.kind === 'split' ? [{ symbol: a.symbol, date: a.date, ratio: a.ratio }] : [],
  );
}

/**
 * `records` with the splits the broker's activities list late applied, once each
 * ({@link lateSplitOf}, {@link applyLateSplit}): for each broker position that shows a split the
 * records have not applied (the activities read from {@link lateSplitsReadFrom}, only then), and
 * the splits applied. `applied` is the list's `bookedFills` (the split keys it names); `fillsOf`
 * gives a symbol's fills of the day the records do not hold.
 */
export async function withLateSplits(
  ctx: LiveContext,
  day: string,
  until: string,
  brokerPositions: readonly Pick<BrokerPosition, 'symbol' | 'qty' | 'avgEntryPrice'>[],
  records: readonly PositionRecord[],
  fillsOf: (symbol: string) => DayFills,
  applied: Readonly<Record<string, number>> | undefined,
): Promise<{ readonly records: PositionRecord[]; readonly splits: readonly DaySplit[] }> {
  let out = [...records];
  const splits: DaySplit[] = [];
  let listed: DaySplit[] | undefined;
  for (const position of brokerPositions) {
    const filled = fillsOf(position.symbol);
    if (unlistedSplitOf(position, out, filled) === null) continue;
    listed ??= await listedSplits(ctx, lateSplitsReadFrom(day), until);
    const late = lateSplitOf(position, out, filled, applied, day, listed);
    if (late === null) continue;
    out = applyLateSplit(out, late);
    splits.push(late);
    ctx.log.info('a split the broker listed late applied to the positions', { day, split: splitKey(late) });
  }
  return { records: out, splits };
}

/** The first day a read of the splits listed late starts at, for `day` ({@link SPLIT_KEYS_KEPT_DAYS}). */
function lateSplitsReadFrom(day: string): string {
  return daysBefore(day, SPLIT_KEYS_KEPT_DAYS);
}

/**
 * A sleeves state with the splits it has not applied yet (its `splits` keys name those it has),
 * each applied once: every sleeve's position in the symbol opened before the split's day has its
 * shares times the ratio (a fractional result kept as it is, as {@link splitRecord} keeps it) and
 * its prices (entry, stop, take-profit, entry reference, initial risk) divided by it; its entry
 * notional and commission (integer cents) stay, so its P&L does not move; the account's shares
 * follow. A position opened on or after the split's day is in the new shares already. Keys of
 * splits more than {@link SPLIT_KEYS_KEPT_DAYS} days before `day` are dropped, but never one dated
 * on or after `readFrom` (the start of the read that listed `splits`): a read that goes back further
 * (books long behind) lists it again. Pure.
 */
export function splitSleevesState(
  state: SleevesState,
  splits: readonly DaySplit[],
  day: string,
  readFrom?: string,
): { readonly state: SleevesState; readonly applied: readonly DaySplit[] } {
  const applied = splits.filter(
    (x, k) =>
      state.splits?.[splitKey(x)] === undefined && splits.findIndex((y) => splitKey(y) === splitKey(x)) === k,
  );
  const oldest = readFrom === undefined ? lateSplitsReadFrom(day) : splitsReadFrom(readFrom, day);
  const keys = Object.fromEntries(
    [...Object.entries(state.splits ?? {}), ...applied.map((x) => [splitKey(x), x.ratio] as const)].filter(
      ([key]) => (key.split(':').at(-1) as string) >= oldest,
    ),
  );
  if (applied.length === 0) {
    const same = Object.keys(keys).length === Object.keys(state.splits ?? {}).length;
    return { state: same ? state : { ...state, splits: keys }, applied };
  }
  const added = new Map<string, number>();
  const books = state.books.map((book) => ({
    ...book,
    positions: book.positions.map((p) => {
      const ratio = applied
        .filter((x) => x.symbol === p.symbol && utcDay(p.entryTime) < x.date)
        .reduce((product, x) => product * x.ratio, 1);
      if (ratio === 1) return p;
      added.set(p.symbol, (added.get(p.symbol) ?? 0) + p.side * p.qty * (ratio - 1));
      return {
        ...p,
        qty: p.qty * ratio,
        entryPrice: p.entryPrice / ratio,
        stop: p.stop === null ? null : p.stop / ratio,
        takeProfit: p.takeProfit === null ? null : p.takeProfit / ratio,
        entryRef: p.entryRef / ratio,
        initialRisk: p.initialRisk === null ? null : p.initialRisk / ratio,
      };
    }),
  }));
  const account = {
    ...state.account,
    positions: state.account.positions.map((p) => ({ ...p, qty: p.qty + (added.get(p.symbol) ?? 0) })),
  };
  return { state: { ...state, books, account, splits: keys }, applied };
}
