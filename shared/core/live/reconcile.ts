import { ConfigError, UsageError } from '../errors.js';
import { type PositionRecord, UNASSIGNED_SLEEVE } from '../ports/state-store.js';

/**
 * Reconciliation of the broker's positions with the sleeves' ledger (pure). For every symbol, the
 * broker's quantity must equal the sum of the sleeves' positions plus the UNASSIGNED bucket (the
 * shares no sleeve owns). A difference the bucket does not explain yet is a mismatch: the bucket
 * takes it, an operator assigns or flattens it. Nothing here ever moves shares into a sleeve.
 */

/** Quantities closer than this are equal (fractional shares are whole to 1e-9). */
const EPSILON = 1e-9;

/** Rounds away the float noise of sums of fractional quantities. */
const clean = (qty: number): number => (Math.abs(qty) <= EPSILON ? 0 : Math.round(qty * 1e9) / 1e9);

/** Whether a position record is the reconciliation bucket's. */
export function isUnassigned(record: Pick<PositionRecord, 'sleeve'>): boolean {
  return record.sleeve === UNASSIGNED_SLEEVE;
}

/** The sleeves' records of a positions list (the bucket left out). */
export function sleeveRecords(records: readonly PositionRecord[]): PositionRecord[] {
  return records.filter((r) => !isUnassigned(r));
}

/** The bucket's quantity in a symbol (signed; 0 when it holds none). */
export function unassignedQty(records: readonly PositionRecord[] | undefined, symbol: string): number {
  return (records ?? [])
    .filter((r) => isUnassigned(r) && r.symbol === symbol)
    .reduce((sum, r) => sum + r.qty, 0);
}

/** One symbol, as the reconciliation sees it. */
export interface SymbolReconciliation {
  readonly symbol: string;
  /** The broker's signed quantity (0 when it holds none). */
  readonly brokerQty: number;
  /** Σ the sleeves' signed quantities. */
  readonly sleevesQty: number;
  /** The bucket before this reconciliation. */
  readonly unassignedQty: number;
  /** broker − sleeves − bucket: the difference the bucket does not explain yet (0 when clean). */
  readonly mismatch: number;
  /** The bucket after it: broker − sleeves. */
  readonly unassignedAfter: number;
}

/**
 * Per symbol (every symbol the broker or a record holds, sorted): the broker's quantity, the
 * sleeves' sum, the bucket and the mismatch the bucket does not explain yet.
 */
export function reconcilePositions(
  brokerQtyBySymbol: ReadonlyMap<string, number>,
  sleevePositionRecords: readonly PositionRecord[],
): SymbolReconciliation[] {
  const symbols = new Set<string>([
    ...brokerQtyBySymbol.keys(),
    ...sleevePositionRecords.map((r) => r.symbol),
  ]);
  return [...symbols].sort().map((symbol) => {
    const brokerQty = brokerQtyBySymbol.get(symbol) ?? 0;
    if (!Number.isFinite(brokerQty))
      throw new ConfigError(`reconciliation: the broker's quantity of ${symbol} is ${brokerQty}`);
    const sleevesQty = clean(
      sleevePositionRecords
        .filter((r) => r.symbol === symbol && !isUnassigned(r))
        .reduce((sum, r) => sum + r.qty, 0),
    );
    const bucket = clean(unassignedQty(sleevePositionRecords, symbol));
    const mismatch = clean(brokerQty - sleevesQty - bucket);
    return {
      symbol,
      brokerQty,
      sleevesQty,
      unassignedQty: bucket,
      mismatch,
      unassignedAfter: clean(brokerQty - sleevesQty),
    };
  });
}

/**
 * The positions list with the bucket brought to each symbol's `unassignedAfter`: the sleeves'
 * records untouched, one bucket record per symbol where it is not zero (a new one at the broker's
 * average price, or `fallbackPrice`), none where it is.
 */
export function withBucket(
  records: readonly PositionRecord[],
  reconciliation: readonly SymbolReconciliation[],
  opened: { readonly date: string; readonly price: (symbol: string) => number },
): PositionRecord[] {
  const out = sleeveRecords(records);
  for (const line of reconciliation) {
    if (line.unassignedAfter === 0) continue;
    const previous = records.find((r) => isUnassigned(r) && r.symbol === line.symbol);
    out.push({
      symbol: line.symbol,
      qty: line.unassignedAfter,
      avgEntryPrice: previous?.avgEntryPrice ?? opened.price(line.symbol),
      stop: null,
      entryRef: null,
      initialRisk: null,
      sessionsHeld: 0,
      entryDate: previous?.entryDate ?? opened.date,
      sleeve: UNASSIGNED_SLEEVE,
    });
  }
  return out;
}

/** An assignment the operator asked for that the book cannot take. */
export class AssignmentRefusedError extends UsageError {}

/**
 * The positions list after an operator moved `qty` shares (signed like the bucket; default all of
 * it) of a symbol from the bucket into `sleeve`: the sleeve's record grows (a positive bucket: at the
 * bucket's average price, weighted; with `stop` when given) or shrinks (a negative one: shares sold
 * outside are charged to it), the bucket shrinks by as much. Refused (named) when the bucket is
 * empty, the quantity has the other sign or exceeds it, the sleeve is not one of `sleeves`, or the
 * sleeve would get new shares without any stop.
 */
export function assignFromBucket(
  records: readonly PositionRecord[],
  request: {
    readonly symbol: string;
    readonly sleeve: string;
    readonly sleeves: readonly string[];
    readonly qty?: number;
    readonly stop?: number;
    readonly date: string;
  },
): { readonly records: PositionRecord[]; readonly qty: number; readonly sleeveQty: number } {
  const { symbol, sleeve } = request;
  if (!request.sleeves.includes(sleeve) || sleeve === UNASSIGNED_SLEEVE)
    throw new AssignmentRefusedError(
      `--assign ${sleeve}: not a sleeve of this config (sleeves: ${request.sleeves.join(', ')})`,
    );
  const bucket = clean(unassignedQty(records, symbol));
  if (bucket === 0) throw new AssignmentRefusedError(`${symbol}: the UNASSIGNED bucket holds no shares`);
  const qty = request.qty ?? bucket;
  if (
    !Number.isFinite(qty) ||
    qty === 0 ||
    Math.sign(qty) !== Math.sign(bucket) ||
    Math.abs(qty) > Math.abs(bucket) + EPSILON
  )
    throw new AssignmentRefusedError(
      `--qty ${qty}: the UNASSIGNED bucket holds ${bucket} ${symbol}; give a quantity of the same sign, at most that`,
    );
  if (request.stop !== undefined && !(Number.isFinite(request.stop) && request.stop > 0))
    throw new AssignmentRefusedError(`--stop ${request.stop}: not a positive price`);
  const bucketRecord = records.find((r) => isUnassigned(r) && r.symbol === symbol) as PositionRecord;
  // A record without a sleeve (schema 1) is the config's first (only) sleeve's.
  const current = records.find(
    (r) => !isUnassigned(r) && r.symbol === symbol && (r.sleeve ?? request.sleeves[0]) === sleeve,
  );
  const held = current?.qty ?? 0;
  const after = clean(held + qty);
  if (qty < 0 && (held <= 0 || after < 0))
    throw new AssignmentRefusedError(
      `${symbol}: sleeve ${sleeve} holds ${held}; it cannot be charged with ${-qty} shares sold outside`,
    );
  const stop = request.stop ?? current?.stop ?? null;
  if (qty > 0 && stop === null)
    throw new AssignmentRefusedError(
      `${symbol}: sleeve ${sleeve} holds no stop for it; give --stop <price> (no position without a stop)`,
    );
  if (held !== 0 && after !== 0 && Math.sign(after) !== Math.sign(held))
    throw new AssignmentRefusedError(
      `${symbol}: assigning ${qty} to sleeve ${sleeve} (holding ${held}) would turn its position to the other side`,
    );
  const avgEntryPrice =
    qty > 0 && after !== 0
      ? (held * (current?.avgEntryPrice ?? 0) + qty * bucketRecord.avgEntryPrice) / after
      : (current?.avgEntryPrice ?? bucketRecord.avgEntryPrice);
  const out: PositionRecord[] = [];
  for (const record of records) {
    if (record === bucketRecord) {
      const left = clean(record.qty - qty);
      if (left !== 0) out.push({ ...record, qty: left });
    } else if (record === current) {
      if (after !== 0) out.push({ ...record, qty: after, avgEntryPrice, stop });
    } else out.push(record);
  }
  if (current === undefined && after !== 0) {
    out.push({
      symbol,
      qty: after,
      avgEntryPrice,
      stop,
      entryRef: avgEntryPrice,
      initialRisk: stop === null ? null : Math.abs(avgEntryPrice - stop),
      sessionsHeld: 0,
      entryDate: bucketRecord.entryDate ?? request.date,
      sleeve,
    });
  }
  return { records: out, qty, sleeveQty: after };
}

/**
 * The quantity of a broker position its sleeves own (the bucket's shares left out), for the orders
 * derived from it (stops, exits, flattens): long-only, so never below 0 nor above what the broker holds.
 */
export function sleevesShare(
  brokerQty: number,
  records: readonly PositionRecord[] | undefined,
  symbol: string,
): number {
  const own = clean(brokerQty - unassignedQty(records, symbol));
  return brokerQty >= 0 ? Math.min(brokerQty, Math.max(0, own)) : Math.max(brokerQty, Math.min(0, own));
}
