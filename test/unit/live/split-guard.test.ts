import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  bookedHolding,
  ratioText,
  unlistedSplitOf,
  unlistedSplitRatio,
} from '../../../shared/core/live/split-guard.js';
import type { PositionRecord } from '../../../shared/core/ports/state-store.js';

const record = (qty: number, avgEntryPrice: number, sleeve?: string): PositionRecord => ({
  symbol: 'SPY',
  qty,
  avgEntryPrice,
  stop: avgEntryPrice * 0.9,
  entryRef: avgEntryPrice,
  initialRisk: avgEntryPrice * 0.1,
  sessionsHeld: 1,
  ...(sleeve === undefined ? {} : { sleeve }),
});

describe('the unlisted-split guard', () => {
  it('finds the ratio of any split the broker applied: the shares times it, the same cost basis', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 5000 }),
        fc.double({ min: 1, max: 2000, noNaN: true }),
        fc.constantFrom(2, 3, 4, 10, 1.5, 0.5, 0.1, 1.05),
        (qty, price, ratio) => {
          const broker = { qty: qty * ratio, avgEntryPrice: price / ratio };
          const found = unlistedSplitRatio(broker, { qty, cost: qty * price }, false);
          expect(found).toBeCloseTo(ratio, 9);
          // A fill of the day explains a difference: no guard.
          expect(unlistedSplitRatio(broker, { qty, cost: qty * price }, true)).toBeNull();
        },
      ),
    );
  });

  it('finds none when the shares agree, or the cost basis moved with them (a buy, a partial stop fill)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 5000 }),
        fc.integer({ min: 1, max: 500 }),
        fc.double({ min: 1, max: 2000, noNaN: true }),
        (qty, more, price) => {
          const booked = { qty, cost: qty * price };
          expect(unlistedSplitRatio({ qty, avgEntryPrice: price }, booked, false)).toBeNull();
          // Bought more at a price 1% away: the cost basis grew with the shares.
          const bought = {
            qty: qty + more,
            avgEntryPrice: (qty * price + more * price * 1.01) / (qty + more),
          };
          expect(unlistedSplitRatio(bought, booked, false)).toBeNull();
          // Sold part (a stop's partial fill): the same average price, a smaller cost basis.
          if (qty > 1)
            expect(unlistedSplitRatio({ qty: qty - 1, avgEntryPrice: price }, booked, false)).toBeNull();
        },
      ),
    );
  });

  it('finds none across sides, or with nothing on either side', () => {
    expect(
      unlistedSplitRatio({ qty: -200, avgEntryPrice: -100 }, { qty: 50, cost: 20_000 }, false),
    ).toBeNull();
    expect(unlistedSplitRatio({ qty: 0, avgEntryPrice: 100 }, { qty: 50, cost: 5000 }, false)).toBeNull();
    expect(unlistedSplitRatio({ qty: 50, avgEntryPrice: 100 }, { qty: 0, cost: 0 }, false)).toBeNull();
  });

  it('finds none where the broker reports no cost basis (a crypto exchange), or the shares moved by less than any split', () => {
    // A stop-limit of an earlier day partly filled in a crash, at an exchange whose average entry
    // price is 0 (both cost bases 0): no split, the stop's exit goes on.
    expect(unlistedSplitRatio({ qty: 0.6, avgEntryPrice: 0 }, { qty: 1, cost: 0 }, false)).toBeNull();
    expect(unlistedSplitRatio({ qty: 4, avgEntryPrice: 25 }, { qty: 1, cost: 0 }, false)).toBeNull();
    // 10,000 shares of a $0.40 stock one share apart: the cost bases agree to the tolerance.
    expect(
      unlistedSplitRatio({ qty: 10_001, avgEntryPrice: 0.4 }, { qty: 10_000, cost: 4000.4 }, false),
    ).toBeNull();
    expect(
      unlistedSplitRatio({ qty: 10_500, avgEntryPrice: 0.4 / 1.05 }, { qty: 10_000, cost: 4000 }, false),
    ).toBeCloseTo(1.05, 9);
  });

  it('tolerates a cent and the rounding of an average price to four decimals, not more', () => {
    // 212 shares at 91.4375 (a quarter of 365.75): the broker's price rounded to 91.4375 → exact.
    expect(
      unlistedSplitRatio({ qty: 212, avgEntryPrice: 91.4375 }, { qty: 53, cost: 53 * 365.75 }, false),
    ).toBe(4);
    expect(
      unlistedSplitRatio({ qty: 212, avgEntryPrice: 91.43755 }, { qty: 53, cost: 53 * 365.75 }, false),
    ).toBe(4);
    // Ten cents apart on 212 shares: another position, not a split.
    expect(
      unlistedSplitRatio(
        { qty: 212, avgEntryPrice: 91.4375 + 0.1 / 212 },
        { qty: 53, cost: 53 * 365.75 },
        false,
      ),
    ).toBeNull();
  });

  it("compares with the sleeves' records alone (a bucket that took the split's shares) and with the bucket", () => {
    // The split day's end-of-day put the 3x new shares in the bucket, at the new price.
    const afterBucket = [record(53, 365.75, 'main'), record(159, 91.4375, 'UNASSIGNED')];
    expect(
      unlistedSplitOf({ symbol: 'SPY', qty: 212, avgEntryPrice: 91.4375 }, afterBucket, false),
    ).toMatchObject({
      ratio: 4,
      booked: { qty: 53 },
    });
    // A bucket of an earlier day (7 at 350): the split of all 60 shows only with it.
    const withBucket = [record(53, 365.75, 'main'), record(7, 350, 'UNASSIGNED')];
    const cost = 53 * 365.75 + 7 * 350;
    expect(
      unlistedSplitOf({ symbol: 'SPY', qty: 240, avgEntryPrice: cost / 240 }, withBucket, false),
    ).toMatchObject({
      ratio: 4,
      booked: { qty: 60 },
    });
    expect(bookedHolding(withBucket, 'QQQ')).toEqual({ qty: 0, cost: 0 });
  });

  it('writes the ratio as an operator reads it', () => {
    expect([4, 1.5, 0.1, 10, 0.5, 1.2345].map(ratioText)).toEqual([
      '4:1',
      '3:2',
      '1:10',
      '10:1',
      '1:2',
      '1.23:1',
    ]);
  });
});
