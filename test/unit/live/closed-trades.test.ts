import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { notionalCents } from '../../../shared/core/ledger/money.js';
import type { FillRecord, PositionRecord } from '../../../shared/core/ports/state-store.js';
import { closedTradesOfDay, realisedCarried, realisedOnRecord } from '../../../shared/live/closed-trades.js';
import { splitRecord } from '../../../shared/live/positions.js';

const DAY = '2021-03-19';
let executions = 0;
function fill(symbol: string, side: 'buy' | 'sell', qty: number, price: number, hhmm: string): FillRecord {
  executions += 1;
  return {
    executionId: `exec-${String(executions).padStart(3, '0')}`,
    date: DAY,
    clientOrderId: null,
    brokerOrderId: `order-${executions}`,
    symbol,
    side,
    qty,
    price,
    time: `${DAY}T${hhmm}:00.000Z`,
  };
}
function held(symbol: string, qty: number, avgEntryPrice: number, entryDate?: string): PositionRecord {
  return {
    symbol,
    qty,
    avgEntryPrice,
    stop: null,
    entryRef: null,
    initialRisk: null,
    sessionsHeld: 1,
    ...(entryDate === undefined ? {} : { entryDate }),
  };
}
const walk = (input: Partial<Parameters<typeof closedTradesOfDay>[0]>) =>
  closedTradesOfDay({
    strategy: 'ma-crossover-atr',
    recordedAt: `${DAY}T20:15:00.000Z`,
    opening: [],
    splits: [],
    fills: [],
    ...input,
  });

describe('closedTradesOfDay', () => {
  it('closes a position held from an earlier day: P&L in cents as the backtest computes it', () => {
    const exit = fill('SPY', 'sell', 53, 391.17, '13:30');
    const { trades, open } = walk({ opening: [held('SPY', 53, 389.83, '2021-03-18')], fills: [exit] });
    // side × (toCents(53 × 391.17) − toCents(53 × 389.83)) = 2 073 201 − 2 066 099
    expect(trades).toEqual([
      {
        strategy: 'ma-crossover-atr',
        symbol: 'SPY',
        side: 'long',
        qty: 53,
        entryDate: '2021-03-18',
        exitDate: DAY,
        exitTime: exit.time,
        entryPrice: 389.83,
        exitPrice: 391.17,
        pnlCents: 7102,
        exitExecutionId: exit.executionId,
        recordedAt: `${DAY}T20:15:00.000Z`,
      },
    ]);
    expect(open.get('SPY')).toEqual({ qty: 0, entryDate: null, entryPrice: null });
  });

  it('a round trip within the day, partial exits, fills in any order', () => {
    const buy = fill('QQQ', 'buy', 10, 100, '13:30');
    const sell1 = fill('QQQ', 'sell', 4, 99.5, '15:00');
    const sell2 = fill('QQQ', 'sell', 6, 98.25, '20:00');
    const { trades, open } = walk({ fills: [sell2, buy, sell1] });
    expect(trades).toHaveLength(1);
    expect(trades[0]).toMatchObject({
      side: 'long',
      qty: 10,
      entryDate: DAY,
      entryPrice: 100,
      exitPrice: (39_800 + 58_950) / 10 / 100,
      pnlCents: 39_800 + 58_950 - 100_000,
      exitTime: sell2.time,
      exitExecutionId: sell2.executionId,
    });
    expect(open.get('QQQ')?.qty).toBe(0);
  });

  it('a position still open is no trade; what is open carries its entry date and average entry price', () => {
    const add = fill('AAPL', 'buy', 5, 120, '13:30');
    const more = fill('MSFT', 'buy', 1, 250, '13:30');
    const { trades, open } = walk({ opening: [held('MSFT', 3, 230)], fills: [add, more] });
    expect(trades).toEqual([]);
    expect(open.get('AAPL')).toEqual({ qty: 5, entryDate: DAY, entryPrice: 120 });
    // The ledger's own average (a broker like Coinbase reports none): (3 x 230 + 1 x 250) / 4.
    expect(open.get('MSFT')).toEqual({ qty: 4, entryDate: null, entryPrice: 235 });
  });

  it('a split scales the starting shares, not what they cost; an unknown entry date stays null', () => {
    const exit = fill('AAPL', 'sell', 40, 130, '13:30');
    const { trades } = walk({
      opening: [held('AAPL', 10, 500)],
      splits: [{ symbol: 'AAPL', ratio: 4 }],
      fills: [exit],
    });
    expect(trades[0]).toMatchObject({
      qty: 40,
      entryPrice: 125,
      exitPrice: 130,
      pnlCents: 20_000,
      entryDate: null,
    });
  });

  it('a fill through zero closes the trade and opens the next with the rest', () => {
    const flip = fill('SPY', 'sell', 15, 100, '13:30');
    const cover = fill('SPY', 'buy', 5, 90, '20:00');
    const { trades, open } = walk({ opening: [held('SPY', 10, 95, '2021-03-01')], fills: [flip, cover] });
    expect(trades.map((t) => [t.side, t.qty, t.pnlCents, t.entryDate])).toEqual([
      ['long', 10, 5_000, '2021-03-01'],
      ['short', 5, 5_000, DAY],
    ]);
    expect(open.get('SPY')?.qty).toBe(0);
  });

  it('a round trip reduced on one day and closed the next is one trade of all its shares (the closed part kept on the record)', () => {
    const first = fill('SPY', 'sell', 20, 400.07, '14:00');
    const day1 = walk({ opening: [held('SPY', 53, 389.83, '2021-03-18')], fills: [first] });
    expect(day1.trades).toEqual([]);
    const open = day1.open.get('SPY');
    expect(open?.qty).toBe(33);
    // The broker keeps its average entry price on a sale: the record's.
    const realised = realisedOnRecord(open, 389.83);
    expect(realised).toEqual({
      qty: 20,
      entryCents: notionalCents(53, 389.83) - notionalCents(33, 389.83),
      exitCents: notionalCents(20, 400.07),
      entryPrice: 389.83,
      exitPrice: 400.07,
    });
    const last = { ...fill('SPY', 'sell', 33, 401.13, '14:00'), date: '2021-03-22' };
    const day2 = walk({
      opening: [{ ...held('SPY', 33, 389.83, '2021-03-18'), ...(realised ? { realised } : {}) }],
      fills: [last],
    });
    const once = walk({ opening: [held('SPY', 53, 389.83, '2021-03-18')], fills: [first, last] });
    expect(day2.trades).toEqual(once.trades);
    expect(day2.trades[0]).toMatchObject({
      qty: 53,
      pnlCents: notionalCents(20, 400.07) + notionalCents(33, 401.13) - notionalCents(53, 389.83),
    });
    // Flat: nothing is carried.
    expect(realisedOnRecord(day2.open.get('SPY'), 389.83)).toBeUndefined();
  });

  it('a split on the closing day scales the closed part’s shares and prices with the open ones; its cents stay', () => {
    const realised = {
      qty: 20,
      entryCents: 779_660,
      exitCents: 800_140,
      entryPrice: 389.83,
      exitPrice: 400.07,
    };
    const exit = fill('SPY', 'sell', 66, 200.5, '14:00');
    const { trades } = walk({
      opening: [{ ...held('SPY', 33, 389.83, '2021-03-18'), realised }],
      splits: [{ symbol: 'SPY', ratio: 2 }],
      fills: [exit],
    });
    expect(trades).toHaveLength(1);
    expect(trades[0]).toMatchObject({
      qty: 106,
      pnlCents: 800_140 + notionalCents(66, 200.5) - (779_660 + notionalCents(33, 389.83)),
    });
    expect(trades[0]?.entryPrice).toBeCloseTo(389.83 / 2, 9);
    expect(trades[0]?.exitPrice).toBeCloseTo((40 * 200.035 + 66 * 200.5) / 106, 9);
  });

  it('walking a round trip day by day from the records gives the trades of one walk over all its fills', () => {
    const price = fc.integer({ min: 100, max: 100_000 }).map((c) => c / 100);
    // Fills of one symbol, each tagged with the day (0..3) it falls on, in time order.
    const fills = fc.array(
      fc.record({
        side: fc.constantFrom<'buy' | 'sell'>('buy', 'sell'),
        qty: fc.integer({ min: 1, max: 60 }),
        price,
      }),
      { minLength: 1, maxLength: 12 },
    );
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 80 }),
        price,
        fills,
        fc.array(fc.integer({ min: 0, max: 3 })),
        (qty0, p0, raw, cuts) => {
          const all = raw.map((f, i) => ({
            ...fill(
              'QQQ',
              f.side,
              f.qty,
              f.price,
              `${String(13 + Math.floor(i / 6)).padStart(2, '0')}:${String((i % 6) * 10).padStart(2, '0')}`,
            ),
            executionId: `prop-${String(i).padStart(3, '0')}`,
          }));
          const opening = held('QQQ', qty0, p0, '2021-03-01');
          const once = walk({ opening: [opening], fills: all });
          // The same fills over days: each day starts from the record the previous one left.
          const bounds = [...new Set(cuts.map((c) => Math.min(c * 3, all.length)))].sort((a, b) => a - b);
          let record: PositionRecord | undefined = opening;
          const trades = [];
          let from = 0;
          for (const to of [...bounds, all.length]) {
            if (to < from) continue;
            const day = walk({ opening: record === undefined ? [] : [record], fills: all.slice(from, to) });
            trades.push(...day.trades);
            const open = day.open.get('QQQ');
            if (open === undefined || open.qty === 0 || open.entryPrice === null) record = undefined;
            else {
              const realised = realisedOnRecord(open, open.entryPrice);
              record = {
                ...held('QQQ', open.qty, open.entryPrice, open.entryDate ?? undefined),
                ...(realised === undefined ? {} : { realised }),
              };
            }
            from = to;
          }
          expect(trades.map((t) => [t.side, t.qty, t.pnlCents, t.exitExecutionId])).toEqual(
            once.trades.map((t) => [t.side, t.qty, t.pnlCents, t.exitExecutionId]),
          );
          for (const [i, t] of trades.entries()) {
            expect(t.entryPrice).toBeCloseTo(once.trades[i]?.entryPrice as number, 6);
            expect(t.exitPrice).toBeCloseTo(once.trades[i]?.exitPrice as number, 6);
          }
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe('a closed part carried onto a later list', () => {
  // 53 bought at 390, 20 sold at 400 on an earlier day: 33 open, the closed part on the record.
  const partly = (): PositionRecord => {
    const day = walk({
      opening: [held('SPY', 53, 390, '2021-03-17')],
      fills: [fill('SPY', 'sell', 20, 400, '14:00')],
    });
    const open = day.open.get('SPY');
    const realised = realisedOnRecord(open, 390);
    if (open === undefined || realised === undefined) throw new Error('expected a closed part');
    return { ...held('SPY', 33, 390, '2021-03-17'), realised };
  };
  const closeAt = (record: PositionRecord, qty: number, price: number) =>
    walk({ opening: [record], fills: [fill('SPY', 'sell', qty, price, '15:00')] }).trades;

  it("split by splitRecord walks to the trade the day's split gives: its closed part in the new shares", () => {
    for (const ratio of [2, 4, 1.5]) {
      const record = partly();
      const viaWalk = walk({
        opening: [record],
        splits: [{ symbol: 'SPY', ratio }],
        fills: [fill('SPY', 'sell', 33 * ratio, 410 / ratio, '15:00')],
      }).trades;
      const viaRecord = closeAt(splitRecord(record, ratio), 33 * ratio, 410 / ratio);
      expect(viaRecord.map((t) => [t.qty, t.pnlCents])).toEqual(viaWalk.map((t) => [t.qty, t.pnlCents]));
      expect(viaRecord[0]?.qty).toBe(53 * ratio);
      expect(viaRecord[0]?.entryPrice).toBeCloseTo(viaWalk[0]?.entryPrice as number, 9);
      expect(viaRecord[0]?.exitPrice).toBeCloseTo(viaWalk[0]?.exitPrice as number, 9);
    }
  });

  it('rebased to another average price, walks to the same trade; not carried onto a larger or reversed position', () => {
    const record = partly();
    const carried = realisedCarried(record, 33, 391.37);
    if (carried === undefined) throw new Error('expected the closed part carried');
    const rebased = closeAt({ ...record, avgEntryPrice: 391.37, realised: carried }, 33, 410);
    expect(rebased.map((t) => [t.qty, t.pnlCents])).toEqual(
      closeAt(record, 33, 410).map((t) => [t.qty, t.pnlCents]),
    );
    expect(rebased[0]?.qty).toBe(53);
    expect(realisedCarried(record, 40, 390)).toBeUndefined();
    expect(realisedCarried(record, -33, 390)).toBeUndefined();
    expect(realisedCarried(record, 0, 390)).toBeUndefined();
    expect(realisedCarried({ ...record, realised: undefined }, 33, 390)).toBeUndefined();
  });
});
