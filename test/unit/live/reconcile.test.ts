import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  AssignmentRefusedError,
  assignFromBucket,
  isUnassigned,
  reconcilePositions,
  sleeveRecords,
  sleevesShare,
  unassignedQty,
  withBucket,
} from '../../../shared/core/live/reconcile.js';
import { type PositionRecord, UNASSIGNED_SLEEVE } from '../../../shared/core/ports/state-store.js';

const SYMBOLS = ['AAPL', 'MSFT', 'QQQ', 'SPY'] as const;
const SLEEVES = ['rsi-1', 'trend-1'] as const;

function record(symbol: string, qty: number, sleeve?: string, stop: number | null = 90): PositionRecord {
  return {
    symbol,
    qty,
    avgEntryPrice: 100,
    stop,
    entryRef: 100,
    initialRisk: 10,
    sessionsHeld: 1,
    ...(sleeve === undefined ? {} : { sleeve }),
  };
}

const qty = fc.integer({ min: -500, max: 500 });
/** A book: sleeve records (one per sleeve and symbol at most), maybe a bucket, and the broker's quantities. */
const book = fc
  .record({
    sleeves: fc.array(
      fc.record({ symbol: fc.constantFrom(...SYMBOLS), sleeve: fc.constantFrom(...SLEEVES), qty }),
      { maxLength: 8 },
    ),
    buckets: fc.array(fc.record({ symbol: fc.constantFrom(...SYMBOLS), qty }), { maxLength: 4 }),
    broker: fc.array(fc.record({ symbol: fc.constantFrom(...SYMBOLS), qty }), { maxLength: 4 }),
  })
  .map(({ sleeves, buckets, broker }) => {
    const unique = <T extends { symbol: string }>(list: T[], key: (t: T) => string) => [
      ...new Map(list.map((t) => [key(t), t])).values(),
    ];
    return {
      records: [
        ...unique(sleeves, (s) => `${s.sleeve}|${s.symbol}`).map((s) => record(s.symbol, s.qty, s.sleeve)),
        ...unique(buckets, (b) => b.symbol)
          .filter((b) => b.qty !== 0)
          .map((b) => record(b.symbol, b.qty, UNASSIGNED_SLEEVE, null)),
      ],
      broker: new Map(unique(broker, (b) => b.symbol).map((b) => [b.symbol, b.qty])),
    };
  });

const opened = { date: '2024-03-04', price: () => 101 };

describe('reconcilePositions (properties)', () => {
  it('after the bucket takes the mismatch, broker = sleeves + UNASSIGNED for every symbol, and a second pass finds nothing', () => {
    fc.assert(
      fc.property(book, ({ records, broker }) => {
        const lines = reconcilePositions(broker, records);
        const after = withBucket(records, lines, opened);
        for (const symbol of SYMBOLS) {
          const sleeves = sleeveRecords(after)
            .filter((r) => r.symbol === symbol)
            .reduce((sum, r) => sum + r.qty, 0);
          expect(sleeves + unassignedQty(after, symbol)).toBe(broker.get(symbol) ?? 0);
        }
        expect(reconcilePositions(broker, after).every((l) => l.mismatch === 0)).toBe(true);
        // At most one bucket record per symbol, and none that is empty.
        const buckets = after.filter(isUnassigned);
        expect(new Set(buckets.map((b) => b.symbol)).size).toBe(buckets.length);
        expect(buckets.every((b) => b.qty !== 0)).toBe(true);
      }),
    );
  });

  it('never assigns anything to a sleeve: the sleeves’ records come out exactly as they went in', () => {
    fc.assert(
      fc.property(book, ({ records, broker }) => {
        const after = withBucket(records, reconcilePositions(broker, records), opened);
        expect(sleeveRecords(after)).toEqual(sleeveRecords(records));
      }),
    );
  });

  it('a clean book (broker = sleeves + bucket) has no mismatch and keeps its bucket', () => {
    fc.assert(
      fc.property(book, ({ records }) => {
        const clean = new Map<string, number>();
        for (const r of records) clean.set(r.symbol, (clean.get(r.symbol) ?? 0) + r.qty);
        const lines = reconcilePositions(clean, records);
        expect(lines.every((l) => l.mismatch === 0)).toBe(true);
        expect(lines.every((l) => l.unassignedAfter === l.unassignedQty)).toBe(true);
      }),
    );
  });

  it('the mismatch is what the bucket does not explain yet', () => {
    const lines = reconcilePositions(new Map([['SPY', 63]]), [
      record('SPY', 53, 'rsi-1'),
      record('SPY', 4, UNASSIGNED_SLEEVE, null),
    ]);
    expect(lines).toEqual([
      { symbol: 'SPY', brokerQty: 63, sleevesQty: 53, unassignedQty: 4, mismatch: 6, unassignedAfter: 10 },
    ]);
    // Shares sold outside: the bucket goes negative.
    expect(reconcilePositions(new Map([['SPY', 40]]), [record('SPY', 53)])[0]).toMatchObject({
      mismatch: -13,
      unassignedAfter: -13,
    });
    // A record the broker no longer holds is reconciled too.
    expect(reconcilePositions(new Map(), [record('QQQ', 7)])[0]).toMatchObject({
      brokerQty: 0,
      mismatch: -7,
    });
  });

  it('refuses a non-finite broker quantity', () => {
    expect(() => reconcilePositions(new Map([['SPY', Number.NaN]]), [])).toThrow(/SPY is NaN/);
  });
});

describe('assignFromBucket', () => {
  const list = [record('SPY', 53, 'rsi-1'), record('SPY', 10, UNASSIGNED_SLEEVE, null)];
  const request = { symbol: 'SPY', sleeves: [...SLEEVES], date: '2024-03-05' };

  it('moves the bucket into the sleeve (weighted price, the sleeve’s stop) and empties the bucket', () => {
    const bucketAt = list.map((r) => (isUnassigned(r) ? { ...r, avgEntryPrice: 111 } : r));
    const out = assignFromBucket(bucketAt, { ...request, sleeve: 'rsi-1' });
    expect(out.qty).toBe(10);
    expect(out.sleeveQty).toBe(63);
    expect(out.records).toEqual([
      { ...record('SPY', 63, 'rsi-1'), avgEntryPrice: (53 * 100 + 10 * 111) / 63 },
    ]);
  });

  it('takes part of the bucket, and a sleeve without a position needs a stop', () => {
    expect(() => assignFromBucket(list, { ...request, sleeve: 'trend-1', qty: 4 })).toThrow(/--stop/);
    const out = assignFromBucket(list, { ...request, sleeve: 'trend-1', qty: 4, stop: 95 });
    expect(out.records.find((r) => r.sleeve === 'trend-1')).toMatchObject({
      qty: 4,
      stop: 95,
      entryDate: '2024-03-05',
    });
    expect(unassignedQty(out.records, 'SPY')).toBe(6);
  });

  it('a schema-1 record (no sleeve) is the config’s first sleeve', () => {
    const out = assignFromBucket([record('SPY', 53), record('SPY', 10, UNASSIGNED_SLEEVE, null)], {
      ...request,
      sleeves: ['equity'],
      sleeve: 'equity',
    });
    expect(out.records).toEqual([{ ...record('SPY', 63) }]);
  });

  it('charges shares sold outside (a negative bucket) to the sleeve that held them', () => {
    const out = assignFromBucket([record('SPY', 53, 'rsi-1'), record('SPY', -13, UNASSIGNED_SLEEVE, null)], {
      ...request,
      sleeve: 'rsi-1',
    });
    expect(out.records).toEqual([record('SPY', 40, 'rsi-1')]);
    expect(() =>
      assignFromBucket([record('SPY', 5, 'rsi-1'), record('SPY', -13, UNASSIGNED_SLEEVE, null)], {
        ...request,
        sleeve: 'rsi-1',
      }),
    ).toThrow(/cannot be charged/);
  });

  it('refuses an unknown sleeve, an empty bucket and a quantity beyond the bucket or of the other sign', () => {
    const refused = (r: Parameters<typeof assignFromBucket>[1], records = list) => {
      expect(() => assignFromBucket(records, r)).toThrow(AssignmentRefusedError);
    };
    refused({ ...request, sleeve: 'nope' });
    refused({ ...request, sleeve: UNASSIGNED_SLEEVE, sleeves: [UNASSIGNED_SLEEVE] });
    refused({ ...request, sleeve: 'rsi-1' }, [record('SPY', 53, 'rsi-1')]);
    refused({ ...request, sleeve: 'rsi-1', qty: 11 });
    refused({ ...request, sleeve: 'rsi-1', qty: -1 });
    refused({ ...request, sleeve: 'rsi-1', qty: Number.NaN });
    refused({ ...request, sleeve: 'rsi-1', stop: -1 });
  });

  it('property: an assignment keeps broker = sleeves + bucket and changes no other sleeve or symbol', () => {
    fc.assert(
      fc.property(
        book,
        fc.constantFrom(...SYMBOLS),
        fc.constantFrom(...SLEEVES),
        ({ records, broker }, symbol, sleeve) => {
          const reconciled = withBucket(records, reconcilePositions(broker, records), opened);
          const bucket = unassignedQty(reconciled, symbol);
          let out: ReturnType<typeof assignFromBucket>;
          try {
            out = assignFromBucket(reconciled, { ...request, symbol, sleeve, stop: 1 });
          } catch (error) {
            expect(error).toBeInstanceOf(AssignmentRefusedError);
            return;
          }
          expect(out.qty).toBe(bucket);
          expect(reconcilePositions(broker, out.records).every((l) => l.mismatch === 0)).toBe(true);
          const untouched = (rs: readonly PositionRecord[]) =>
            rs.filter((r) => r.symbol !== symbol || (r.sleeve !== sleeve && !isUnassigned(r)));
          expect(untouched(out.records)).toEqual(untouched(reconciled));
        },
      ),
    );
  });
});

describe('sleevesShare', () => {
  it('is the broker’s shares less the bucket, never beyond what the broker holds nor below zero', () => {
    const list = [record('SPY', 10, UNASSIGNED_SLEEVE, null)];
    expect(sleevesShare(63, list, 'SPY')).toBe(53);
    expect(sleevesShare(63, [], 'SPY')).toBe(63);
    expect(sleevesShare(5, list, 'SPY')).toBe(0);
    expect(sleevesShare(40, [record('SPY', -13, UNASSIGNED_SLEEVE, null)], 'SPY')).toBe(40);
    fc.assert(
      fc.property(qty, qty, (broker, bucket) => {
        const share = sleevesShare(broker, [record('X', bucket, UNASSIGNED_SLEEVE, null)], 'X');
        expect(Math.abs(share)).toBeLessThanOrEqual(Math.abs(broker));
        expect(share === 0 || Math.sign(share) === Math.sign(broker)).toBe(true);
      }),
    );
  });
});
