import { describe, expect, it } from 'vitest';
import type { BrokerActivity } from '../../../shared/core/ports/broker.js';
import type { PositionRecord } from '../../../shared/core/ports/state-store.js';
import { splitKey, splitRecord, splitRecords, splitsToApply } from '../../../shared/live/positions.js';
import { unexplainedSymbols } from '../../../shared/live/reconcile.js';

const DAY = '2021-03-19';
const split = { symbol: 'SPY', date: DAY, ratio: 2 };
const record = (symbol: string, qty: number): PositionRecord => ({
  symbol,
  qty,
  avgEntryPrice: 360,
  stop: 350,
  entryRef: 365,
  initialRisk: 15,
  sessionsHeld: 1,
});
const fill = (
  orderId: string,
  side: 'buy' | 'sell',
  qty: number,
): Extract<BrokerActivity, { kind: 'fill' }> => ({
  kind: 'fill',
  id: `${orderId}-1`,
  orderId,
  symbol: 'SPY',
  side,
  qty,
  price: 180,
  time: `${DAY}T15:00:00.000Z`,
  partial: false,
});

describe("a positions list and the day's splits", () => {
  it('applies every split of the day to a list of an earlier day, only those it does not name to the day’s own', () => {
    const other = { symbol: 'QQQ', date: DAY, ratio: 3 };
    const yesterday = { symbol: 'SPY', date: '2021-03-18', ratio: 4 };
    expect(splitsToApply({ date: '2021-03-18' }, DAY, [split, other, yesterday])).toEqual([split, other]);
    expect(splitsToApply(undefined, DAY, [split])).toEqual([split]);
    expect(splitsToApply({ date: DAY, bookedFills: { [splitKey(split)]: 2 } }, DAY, [split, other])).toEqual([
      other,
    ]);
    expect(splitsToApply({ date: DAY, bookedFills: {} }, DAY, [split])).toEqual([split]);
    // A list of the day without booked fills was read from the broker as of its time.
    expect(splitsToApply({ date: DAY }, DAY, [split])).toEqual([]);
  });

  it('scales shares by the ratio and every price by its inverse', () => {
    expect(splitRecord(record('SPY', 53), 2)).toMatchObject({
      qty: 106,
      avgEntryPrice: 180,
      stop: 175,
      entryRef: 182.5,
      initialRisk: 7.5,
    });
    expect(splitRecords([record('SPY', 53), record('QQQ', 10)], [split]).map((r) => r.qty)).toEqual([
      106, 10,
    ]);
  });

  it('never scales a record opened on the split day (in the new shares already): a sleeves list, a bucket of the day', () => {
    const today = { ...record('SPY', 30), entryDate: DAY };
    const before = { ...record('SPY', 53), entryDate: '2021-03-18' };
    expect(splitRecords([before, today], [split]).map((r) => r.qty)).toEqual([106, 30]);
    // A list of the day without the split's key (the sleeves' booking writes none): its record of the
    // day is not taken for old shares; the one carried from the day before is.
    const list = { date: DAY, positions: [before, today], bookedFills: {} };
    expect(unexplainedSymbols(list, DAY, [{ symbol: 'SPY', qty: 136 }], [], [split])).toEqual([]);
    expect(unexplainedSymbols(list, DAY, [{ symbol: 'SPY', qty: 166 }], [], [split])).toEqual(['SPY']);
  });

  it('finds the symbols whose broker quantity the list, its unbooked fills and its unapplied splits do not make', () => {
    const list = {
      date: DAY,
      positions: [record('SPY', 106)],
      bookedFills: { o1: 53, [splitKey(split)]: 2 },
    };
    // Booked already: o1's fill and the split.
    expect(
      unexplainedSymbols(list, DAY, [{ symbol: 'SPY', qty: 106 }], [fill('o1', 'buy', 53)], [split]),
    ).toEqual([]);
    // A sell the activities list beyond the booked: explained.
    expect(
      unexplainedSymbols(
        list,
        DAY,
        [{ symbol: 'SPY', qty: 100 }],
        [fill('o1', 'buy', 53), fill('o2', 'sell', 6)],
        [split],
      ),
    ).toEqual([]);
    // The broker holds fewer and no listed fill says why (a fill not listed yet).
    expect(unexplainedSymbols(list, DAY, [], [fill('o1', 'buy', 53)], [split])).toEqual(['SPY']);
    // An earlier day's list: the day's split and every fill of the day apply.
    const earlier = { date: '2021-03-18', positions: [record('SPY', 53)] };
    expect(
      unexplainedSymbols(earlier, DAY, [{ symbol: 'SPY', qty: 100 }], [fill('o2', 'sell', 6)], [split]),
    ).toEqual([]);
    // Neither booked fills nor a time: it cannot say.
    expect(unexplainedSymbols({ date: DAY, positions: [] }, DAY, [], [], [])).toBeUndefined();
  });
});
