import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { BrokerActivity } from '../../../shared/core/ports/broker.js';
import type { IntentRecord, PositionRecord } from '../../../shared/core/ports/state-store.js';
import type { SleevePositionState, SleevesState } from '../../../shared/core/trading/sleeves-close.js';
import {
  applyLateSplit,
  intentFills,
  lateSplitOf,
  parseSplitKey,
  splitKey,
  splitRecord,
  splitRecords,
  splitSleevesState,
  splitsReadFrom,
  splitsToApply,
} from '../../../shared/live/positions.js';
import { bookedByList, fillsAfterList, unexplainedSymbols } from '../../../shared/live/reconcile.js';

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

describe("the split key of a list's booked fills", () => {
  it('parseSplitKey reads back the symbol and date splitKey wrote, for any symbol (a crypto product id, a colon in it too)', () => {
    fc.assert(
      fc.property(
        fc.string({ minLength: 1 }),
        fc.date({ min: new Date('2000-01-01'), max: new Date('2099-12-31'), noInvalidDate: true }),
        (symbol, when) => {
          const date = when.toISOString().slice(0, 10);
          expect(parseSplitKey(splitKey({ symbol, date }))).toEqual({ symbol, date });
        },
      ),
    );
    expect(parseSplitKey('split:BTC-USD:2026-01-05')).toEqual({ symbol: 'BTC-USD', date: '2026-01-05' });
  });

  it('any other key of the booked fills (a broker order id, an unlisted fill) is none', () => {
    for (const key of [
      '61e69015-8549-4bfd-b9c3-01e75843f47d',
      'unlisted:o-1',
      'split',
      'split:',
      'split::2021-03-19',
      'split:SPY:',
      'splits:SPY:2021-03-19',
      'SPY:2021-03-19',
    ])
      expect(parseSplitKey(key)).toBeNull();
  });
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

  it("what a list holds of the day's orders: nothing for an earlier day's, its booked fills for the day's; it cannot say by order otherwise", () => {
    const booked = { o1: 53, [splitKey(split)]: 2 };
    expect(bookedByList({ date: '2021-03-18', bookedFills: { o1: 9 } }, DAY)).toEqual({});
    expect(bookedByList({ date: DAY, bookedFills: booked }, DAY)).toBe(booked);
    // A list of the day with its time only (no booked fills), or one of a later day.
    expect(bookedByList({ date: DAY }, DAY)).toBeUndefined();
    expect(bookedByList({ date: '2021-03-22', bookedFills: booked }, DAY)).toBeUndefined();
    // fillsAfterList by the same rule, with the day's list's time to fall back on.
    const fills = [fill('o1', 'buy', 60), fill('o2', 'sell', 6)];
    expect(fillsAfterList({ date: '2021-03-18' }, DAY, fills)).toEqual(fills);
    expect(fillsAfterList({ date: DAY, bookedFills: booked }, DAY, fills)).toEqual([
      { ...fill('o1', 'buy', 60), qty: 7 },
      fill('o2', 'sell', 6),
    ]);
    expect(fillsAfterList({ date: DAY, writtenAt: `${DAY}T14:00:00.000Z` }, DAY, fills)).toEqual(fills);
    expect(fillsAfterList({ date: DAY, writtenAt: `${DAY}T16:00:00.000Z` }, DAY, fills)).toEqual([]);
    expect(fillsAfterList({ date: DAY }, DAY, fills)).toBeUndefined();
    expect(
      fillsAfterList({ date: '2021-03-22', writtenAt: `${DAY}T14:00:00.000Z` }, DAY, fills),
    ).toBeUndefined();
  });
});

describe("a sleeves state and the day's splits", () => {
  const position = (symbol: string, qty: number, entryDate: string): SleevePositionState => ({
    symbol,
    side: 1,
    qty,
    entryPrice: 360,
    entryTime: Date.parse(`${entryDate}T00:00:00Z`),
    entryNotional: qty * 36_000,
    entryCommission: 100,
    stop: 350,
    takeProfit: 400,
    entryRef: 365,
    initialRisk: 15,
    sessionsHeld: 3,
  });
  const state = (splits?: Record<string, number>): SleevesState => ({
    sleeves: ['a', 'b'],
    books: [
      {
        id: 'a',
        initialCash: 1,
        cash: 1,
        transfersIn: 0,
        costs: 0,
        positions: [position('SPY', 5, '2021-03-15')],
      },
      {
        id: 'b',
        initialCash: 1,
        cash: 1,
        transfersIn: 0,
        costs: 0,
        positions: [position('SPY', 3, '2021-03-16'), position('QQQ', 7, '2021-03-16')],
      },
    ],
    account: {
      cash: 2,
      positions: [
        { symbol: 'SPY', qty: 8 },
        { symbol: 'QQQ', qty: 7 },
      ],
    },
    allocation: {
      closes: 1,
      weights: [0.5, 0.5],
      returnHistory: [],
      prevEquity: [1, 1],
      nav: [1, 1],
      lastCloseTime: null,
      lastRebalanceTime: null,
      breaches: [],
    },
    ...(splits === undefined ? {} : { splits }),
  });
  const four = { symbol: 'SPY', date: DAY, ratio: 4 };

  it("scales every sleeve's shares and prices once, keeps the entry money in cents, and records the key", () => {
    const { state: out, applied } = splitSleevesState(state(), [four, four], DAY);
    expect(applied).toEqual([four]);
    expect(out.books.map((b) => b.positions.map((p) => [p.symbol, p.qty]))).toEqual([
      [['SPY', 20]],
      [
        ['SPY', 12],
        ['QQQ', 7],
      ],
    ]);
    expect(out.books[0]?.positions[0]).toMatchObject({
      entryPrice: 90,
      stop: 87.5,
      takeProfit: 100,
      entryRef: 91.25,
      initialRisk: 3.75,
      entryNotional: 5 * 36_000,
      entryCommission: 100,
      sessionsHeld: 3,
    });
    expect(out.account.positions).toEqual([
      { symbol: 'SPY', qty: 32 },
      { symbol: 'QQQ', qty: 7 },
    ]);
    expect(out.splits).toEqual({ [splitKey(four)]: 4 });
    // Applied once: a second pass (a rerun, the next step) changes nothing.
    expect(splitSleevesState(out, [four], DAY)).toEqual({ state: out, applied: [] });
  });

  it('never scales a position opened on or after the split day (in the new shares already)', () => {
    const s = state();
    const opened = { ...s, books: [s.books[0], { ...s.books[1], positions: [position('SPY', 12, DAY)] }] };
    const out = splitSleevesState(opened as SleevesState, [four], DAY).state;
    expect(out.books.map((b) => b.positions[0]?.qty)).toEqual([20, 12]);
    expect(out.account.positions[0]).toEqual({ symbol: 'SPY', qty: 8 + 15 });
  });

  it('keeps a fractional result as it is (3:2 of 5 shares is 7.5), as a position record keeps it', () => {
    const out = splitSleevesState(state(), [{ symbol: 'SPY', date: DAY, ratio: 1.5 }], DAY).state;
    expect(out.books[0]?.positions[0]?.qty).toBe(7.5);
    expect(splitRecord(record('SPY', 5), 1.5).qty).toBe(7.5);
  });

  it('keeps the account the sum of the sleeves and each position its cost, applied once (any ratio, any entry day)', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.tuple(fc.integer({ min: 1, max: 500 }), fc.constantFrom('2021-03-12', '2021-03-18', DAY)),
          {
            minLength: 1,
            maxLength: 4,
          },
        ),
        fc.constantFrom(2, 3, 4, 1.5, 0.5, 0.1),
        (held, ratio) => {
          const s = state();
          const books = held.map(([qty, date], k) => ({
            ...(s.books[0] as SleevesState['books'][number]),
            id: `s${k}`,
            positions: [position('SPY', qty, date)],
          }));
          const total = held.reduce((sum, [qty]) => sum + qty, 0);
          const input: SleevesState = {
            ...s,
            books,
            account: { cash: 2, positions: [{ symbol: 'SPY', qty: total }] },
          };
          const split = { symbol: 'SPY', date: DAY, ratio };
          const once = splitSleevesState(input, [split], DAY).state;
          const sum = once.books.reduce((acc, b) => acc + (b.positions[0]?.qty ?? 0), 0);
          expect(once.account.positions[0]?.qty).toBeCloseTo(sum, 9);
          once.books.forEach((b, k) => {
            const [qty, date] = held[k] as [number, string];
            const p = b.positions[0] as SleevePositionState;
            expect(p.qty).toBeCloseTo(date < DAY ? qty * ratio : qty, 9);
            expect(p.qty * p.entryPrice).toBeCloseTo(qty * 360, 6);
            expect(p.entryNotional).toBe(qty * 36_000);
          });
          expect(splitSleevesState(once, [split], DAY).state).toBe(once);
        },
      ),
    );
  });

  it('leaves a state without a split untouched, and drops the keys of splits more than 31 days old', () => {
    const s = state();
    expect(splitSleevesState(s, [], DAY).state).toBe(s);
    const old = state({ 'split:SPY:2021-02-01': 2, 'split:QQQ:2021-03-01': 3 });
    expect(splitSleevesState(old, [], DAY).state.splits).toEqual({ 'split:QQQ:2021-03-01': 3 });
  });

  it('never drops the key of a split dated on or after the read that listed it (books long behind): applied once', () => {
    // The books were booked through 03-16 and the day is 05-03 (a paused stage): the read of the
    // activities starts at 03-16 and lists the split of 03-17, more than 31 days before the day.
    const late = { symbol: 'SPY', date: '2021-03-17', ratio: 4 };
    const from = splitsReadFrom('2021-03-16', '2021-05-03');
    expect(from).toBe('2021-03-16');
    const once = splitSleevesState(state({ 'split:QQQ:2021-03-01': 3 }), [late], '2021-05-03', from);
    expect(once.applied).toEqual([late]);
    expect(once.state.books[0]?.positions[0]?.qty).toBe(20);
    // The key stays (the next step reads from the same start and lists it again); one older than
    // both the read and the 31 days goes.
    expect(once.state.splits).toEqual({ [splitKey(late)]: 4 });
    const again = splitSleevesState(once.state, [late], '2021-05-03', from);
    expect(again.applied).toEqual([]);
    expect(again.state.books[0]?.positions[0]?.qty).toBe(20);
  });

  it('reads the splits from the earlier of the day booked through and 31 days before the day', () => {
    // Booked through the previous session: 31 days back, so a split listed sessions late is read.
    expect(splitsReadFrom('2021-03-22', '2021-03-23')).toBe('2021-02-20');
    // Booked long ago: from there.
    expect(splitsReadFrom('2021-01-04', '2021-03-23')).toBe('2021-01-04');
  });
});

describe('a split the activities list late (single strategy)', () => {
  const D3 = '2021-03-22';
  const late = { symbol: 'SPY', date: DAY, ratio: 4 };
  const sleeve: PositionRecord = { ...record('SPY', 53), sleeve: 'trend', entryDate: '2021-03-18' };
  // The split day's reconciliation put the new shares in the bucket (dated that day).
  const bucket: PositionRecord = { ...record('SPY', 159), sleeve: 'UNASSIGNED', entryDate: DAY, stop: null };
  const broker = { symbol: 'SPY', qty: 212, avgEntryPrice: 90 };

  it('is found when the broker shows its ratio and the list does not name it; never twice', () => {
    expect(lateSplitOf(broker, [sleeve, bucket], [], {}, D3, [late])).toEqual(late);
    // The list names it, or the day's fills not known, or no such split listed, or a split of the day: none.
    expect(lateSplitOf(broker, [sleeve, bucket], [], { [splitKey(late)]: 4 }, D3, [late])).toBeNull();
    expect(lateSplitOf(broker, [sleeve, bucket], 'unknown', {}, D3, [late])).toBeNull();
    // The listing day's fills in the symbol (sold 20 new shares; bought 10 at 88): found with them.
    const sold = { ...broker, qty: 192 };
    expect(
      lateSplitOf(sold, [sleeve, bucket], [{ side: 'sell', qty: 20, price: 91 }], {}, D3, [late]),
    ).toEqual(late);
    expect(lateSplitOf(sold, [sleeve, bucket], [], {}, D3, [late])).toBeNull();
    const bought = { ...broker, qty: 222, avgEntryPrice: (212 * 90 + 10 * 88) / 222 };
    expect(
      lateSplitOf(bought, [sleeve, bucket], [{ side: 'buy', qty: 10, price: 88 }], {}, D3, [late]),
    ).toEqual(late);
    expect(lateSplitOf(broker, [sleeve, bucket], [], {}, D3, [{ ...late, ratio: 2 }])).toBeNull();
    expect(lateSplitOf(broker, [sleeve, bucket], [], {}, DAY, [late])).toBeNull();
    // More than SPLIT_KEYS_KEPT_DAYS days before the day: none.
    expect(lateSplitOf(broker, [sleeve, bucket], [], {}, '2021-04-20', [late])).toBeNull();
    // Applied, the broker's position shows no split any more.
    const applied = applyLateSplit([sleeve, bucket], late);
    expect(lateSplitOf(broker, applied, [], {}, D3, [late])).toBeNull();
  });

  it('scales the records opened before it and empties the bucket the split day wrote', () => {
    const opened: PositionRecord = { ...record('SPY', 10), sleeve: 'trend', entryDate: D3 };
    const other = { ...record('QQQ', 5), sleeve: 'trend' };
    const out = applyLateSplit([sleeve, bucket, other], late);
    expect(out).toEqual([splitRecord(sleeve, 4), other]);
    // A record opened after the split is in the new shares; a bucket of an earlier day is split.
    const older: PositionRecord = { ...bucket, qty: 3, entryDate: '2021-03-17' };
    expect(applyLateSplit([sleeve, opened, older], late)).toEqual([
      splitRecord(sleeve, 4),
      opened,
      splitRecord(older, 4),
    ]);
    // A bucket holding more than the split's shares keeps the rest.
    expect(applyLateSplit([sleeve, { ...bucket, qty: 164 }], late)).toEqual([
      splitRecord(sleeve, 4),
      { ...bucket, qty: 5 },
    ]);
  });
});

describe("the day's fills of a symbol from its intents (the split guard's)", () => {
  const intent = (
    id: string,
    side: 'buy' | 'sell',
    filledQty: number,
    avgFillPrice: number | undefined,
    updatedAt: string,
    extra: Partial<IntentRecord> = {},
  ): IntentRecord => ({
    clientOrderId: id,
    brokerOrderId: `b-${id}`,
    date: DAY,
    strategy: 'trend',
    symbol: 'SPY',
    purpose: side === 'buy' ? 'entry' : 'exit',
    side,
    qty: filledQty,
    type: 'market',
    timeInForce: 'day',
    referencePrice: 90,
    status: 'filled',
    filledQty,
    ...(avgFillPrice === undefined ? {} : { avgFillPrice }),
    configHash: 'h',
    gitCommit: 'g',
    createdAt: updatedAt,
    updatedAt,
    ...extra,
  });
  const intents = [
    intent('sell', 'sell', 20, 91, '2021-03-19T14:30:00.000Z'),
    intent('buy', 'buy', 8, 90, '2021-03-19T13:31:00.000Z'),
    intent('leg', 'buy', 2, 360, '2021-03-19T13:31:00.000Z', { leg: true }),
    intent('qqq', 'buy', 5, 300, '2021-03-19T13:31:00.000Z', { symbol: 'QQQ' }),
    intent('none', 'buy', 0, undefined, '2021-03-19T13:31:00.000Z'),
  ];

  it('lists each order of the symbol (no leg) less what the records hold, in the order they last changed', () => {
    expect(intentFills(intents, 'SPY', () => 0)).toEqual([
      { side: 'buy', qty: 8, price: 90 },
      { side: 'sell', qty: 20, price: 91 },
    ]);
    expect(intentFills(intents, 'SPY', (i) => (i.clientOrderId === 'sell' ? 15 : 8))).toEqual([
      { side: 'sell', qty: 5, price: 91 },
    ]);
  });

  it('is unknown when the records cannot say what they hold, or a part has no price', () => {
    expect(intentFills(intents, 'SPY', () => null)).toBe('unknown');
    expect(intentFills([intent('x', 'buy', 3, undefined, '2021-03-19T13:31:00.000Z')], 'SPY', () => 0)).toBe(
      'unknown',
    );
    // No fill of the symbol: nothing to weigh, whatever the records say.
    expect(intentFills(intents, 'IWM', () => null)).toEqual([]);
  });
});
