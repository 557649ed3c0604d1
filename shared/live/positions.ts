import { singleStrategy } from '../core/config/schema.js';
import type { BrokerPosition } from '../core/ports/broker.js';
import type { PositionRecord } from '../core/ports/state-store.js';
import { type LiveContext, UnknownStateError } from './context.js';

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
