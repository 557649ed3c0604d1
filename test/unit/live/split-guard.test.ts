import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  bookedHolding,
  costThroughFills,
  type DayFill,
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
          const found = unlistedSplitRatio(broker, { qty, cost: qty * price }, []);
          expect(found).toBeCloseTo(ratio, 9);
          // A fill of the day the guard cannot list: no guard.
          expect(unlistedSplitRatio(broker, { qty, cost: qty * price }, 'unknown')).toBeNull();
        },
      ),
    );
  });

  /** The broker's position after a split of `ratio` and the day's fills, as the paper broker books it. */
  const brokerAfter = (booked: { qty: number; price: number }, ratio: number, fills: readonly DayFill[]) => {
    let qty = booked.qty * ratio;
    let avg = booked.price / ratio;
    for (const f of fills) {
      const signed = f.side === 'buy' ? f.qty : -f.qty;
      const after = qty + signed;
      if (qty === 0 || Math.sign(qty) === Math.sign(signed))
        avg += (f.price - avg) * (f.qty / Math.abs(after));
      else if (Math.abs(signed) > Math.abs(qty)) avg = f.price;
      qty = Math.abs(after) < 1e-9 ? 0 : after;
      if (qty === 0) avg = 0;
    }
    // Reported to four decimals.
    return { qty, avgEntryPrice: Math.round(avg * 10_000) / 10_000 };
  };
  type Step = { buy: boolean; part: number; cents: number };
  /**
   * The day's fills of a long holding: buys, and sells of part of what is held, never all of it
   * (at least a share, or what is under one, stays: the walk never reaches zero).
   */
  const dayFills = (start: number, steps: readonly Step[]) => {
    let held = start;
    const fills: DayFill[] = [];
    for (const { buy, part, cents } of steps) {
      // The most whole shares a sell may take and leave some (a hair over a whole number counts as it).
      const sellable = Math.ceil(held - 1e-6) - 1;
      const sell = !buy && sellable >= 1;
      const qty = sell
        ? Math.min(sellable, Math.max(1, Math.floor(part * held)))
        : Math.max(1, Math.round(part * 500));
      fills.push({ side: sell ? 'sell' : 'buy', qty, price: cents / 100 });
      held += sell ? -qty : qty;
    }
    return fills;
  };
  /**
   * The day's fills of a long holding with one that takes it to zero or through it (a sell of all of
   * it, or `over` shares more) at step `at`, the others as {@link dayFills}'s (before and after it).
   */
  const crossingFills = (start: number, steps: readonly Step[], at: number, over: number, cents: number) => {
    const before = dayFills(start, steps.slice(0, at));
    const held = before.reduce((sum, f) => sum + (f.side === 'buy' ? f.qty : -f.qty), start);
    const crossing: DayFill = { side: 'sell', qty: held + over, price: cents / 100 };
    // After it, any buys and sells (through zero again or not).
    const after = steps.slice(at).map(
      (s): DayFill => ({
        side: s.buy ? 'buy' : 'sell',
        qty: Math.max(1, Math.round(s.part * 500)),
        price: s.cents / 100,
      }),
    );
    return [...before, crossing, ...after];
  };
  const steps = fc.array(
    fc.record({
      buy: fc.boolean(),
      part: fc.double({ min: 0.01, max: 1, noNaN: true }),
      cents: fc.integer({ min: 100, max: 200_000 }),
    }),
    { maxLength: 6 },
  );
  const ratios = fc.oneof(
    fc.double({ min: 1.04, max: 20, noNaN: true }),
    // A reverse split at least MIN_SPLIT_CHANGE from 1: at most 0.96 (1/1.04 is 3.8 % from 1).
    fc.double({ min: 1 / 0.96, max: 20, noNaN: true }).map((r) => 1 / r),
    fc.constantFrom(2, 3, 4, 10, 1.5, 0.5, 0.1, 1.05),
  );

  it("finds the ratio of a split with the day's fills (buys add their notional, sells remove shares at the average)", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 5000 }),
        fc.integer({ min: 100, max: 200_000 }),
        ratios,
        steps,
        (qty, cents, ratio, moves) => {
          const price = cents / 100;
          const fills = dayFills(qty * ratio, moves);
          const broker = brokerAfter({ qty, price }, ratio, fills);
          fc.pre(broker.qty > 1e-9);
          const found = unlistedSplitRatio(broker, { qty, cost: qty * price }, fills);
          expect(found).not.toBeNull();
          expect(found as number).toBeCloseTo(ratio, 6);
          expect(unlistedSplitRatio(broker, { qty, cost: qty * price }, 'unknown')).toBeNull();
        },
      ),
      { numRuns: 500 },
    );
  });

  it('never fires on a day whose fills take the holding to zero or through it, split or not', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 5000 }),
        fc.integer({ min: 100, max: 200_000 }),
        fc.oneof(ratios, fc.constant(1)),
        steps,
        fc.nat({ max: 6 }),
        fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 5000 })),
        fc.integer({ min: 100, max: 200_000 }),
        (qty, cents, ratio, moves, at, over, sellCents) => {
          const price = cents / 100;
          const fills = crossingFills(qty * ratio, moves, Math.min(at, moves.length), over, sellCents);
          const broker = brokerAfter({ qty, price }, ratio, fills);
          expect(unlistedSplitRatio(broker, { qty, cost: qty * price }, fills)).toBeNull();
          expect(costThroughFills(qty * ratio, qty * price, fills)).toBeNull();
        },
      ),
      { numRuns: 500 },
    );
  });

  it("never fires without a split, whatever the day's fills", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 5000 }),
        fc.integer({ min: 100, max: 200_000 }),
        steps,
        (qty, cents, moves) => {
          const price = cents / 100;
          for (const fills of [
            dayFills(qty, moves),
            crossingFills(qty, moves, moves.length >> 1, 7, cents),
          ]) {
            const broker = brokerAfter({ qty, price }, 1, fills);
            expect(unlistedSplitRatio(broker, { qty, cost: qty * price }, fills)).toBeNull();
            // The fills left out (the guard not told of them): no split either.
            expect(unlistedSplitRatio(broker, { qty, cost: qty * price }, [])).toBeNull();
          }
        },
      ),
      { numRuns: 500 },
    );
  });

  it("walks a cost basis through the day's fills as the broker books them", () => {
    // 212 at 91.4375 (19,384.75), buy 20 at 90: +1,800; sell 116 at the average: half the shares left.
    const fills: DayFill[] = [
      { side: 'buy', qty: 20, price: 90 },
      { side: 'sell', qty: 116, price: 95 },
    ];
    expect(costThroughFills(212, 19_384.75, fills)).toBeCloseTo((19_384.75 + 1800) / 2, 9);
    // Sold out, then bought back: the cost basis after owes nothing to the one before (no answer).
    expect(
      costThroughFills(212, 19_384.75, [
        { side: 'sell', qty: 212, price: 95 },
        { side: 'buy', qty: 10, price: 96 },
      ]),
    ).toBeNull();
    expect(costThroughFills(212, 19_384.75, [{ side: 'sell', qty: 300, price: 95 }])).toBeNull();
    // A walk from flat (no booked holding) adds each buy's notional.
    expect(costThroughFills(0, 0, [{ side: 'buy', qty: 10, price: 96 }])).toBe(960);
    // A buy whose price is not known (a fill not listed yet): the cost cannot be told.
    expect(costThroughFills(212, 19_384.75, [{ side: 'buy', qty: 20, price: 0 }])).toBeNull();
    // A sell needs no price: it removes shares at the average.
    expect(costThroughFills(212, 19_384.75, [{ side: 'sell', qty: 53, price: 0 }])).toBeCloseTo(
      (19_384.75 * 159) / 212,
      9,
    );
    // A 4:1 split (53 at 365.75) and a sell of 20 new shares: the guard finds it; without the fill, not.
    const broker = { qty: 192, avgEntryPrice: 91.4375 };
    const booked = { qty: 53, cost: 53 * 365.75 };
    expect(unlistedSplitRatio(broker, booked, [{ side: 'sell', qty: 20, price: 90 }])).toBe(4);
    expect(unlistedSplitRatio(broker, booked, [])).toBeNull();
  });

  it('finds no split in a day that sells a long holding and its bucket short (the cost basis starts again)', () => {
    // Sleeve 100 @ 50, the UNASSIGNED bucket +10 @ 50; the day sells 200 @ 60: the broker -90 @ 60.
    // Against the sleeve alone the shares say 1.1 ((-90 + 200) / 100) and the cost through the sell
    // (-90 x 60) is the broker's: no "11:10 split" (stops held, entries refused, the day's fills
    // divided by 1.1 at end-of-day) for a flip to short.
    const records = [record(100, 50, 'main'), record(10, 50, 'UNASSIGNED')];
    const sold: DayFill[] = [{ side: 'sell', qty: 200, price: 60 }];
    const broker = { symbol: 'SPY', qty: -90, avgEntryPrice: 60 };
    expect(unlistedSplitOf(broker, records, sold)).toBeNull();
    expect(unlistedSplitRatio(broker, { qty: 100, cost: 5000 }, sold)).toBeNull();
    // A real 11:10 split of the sleeve's 100 @ 50 and a sell of 50 new shares @ 60: found.
    expect(
      unlistedSplitOf(
        { symbol: 'SPY', qty: 60, avgEntryPrice: 50 / 1.1 },
        [record(100, 50, 'main')],
        [{ side: 'sell', qty: 50, price: 60 }],
      )?.ratio,
    ).toBeCloseTo(1.1, 9);
  });

  it('finds none when the shares agree, or the cost basis moved with them (a buy, a partial stop fill)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 5000 }),
        fc.integer({ min: 1, max: 500 }),
        fc.double({ min: 1, max: 2000, noNaN: true }),
        (qty, more, price) => {
          const booked = { qty, cost: qty * price };
          expect(unlistedSplitRatio({ qty, avgEntryPrice: price }, booked, [])).toBeNull();
          // Bought more at a price 1% away: the cost basis grew with the shares.
          const bought = {
            qty: qty + more,
            avgEntryPrice: (qty * price + more * price * 1.01) / (qty + more),
          };
          expect(unlistedSplitRatio(bought, booked, [])).toBeNull();
          // Sold part (a stop's partial fill): the same average price, a smaller cost basis.
          if (qty > 1)
            expect(unlistedSplitRatio({ qty: qty - 1, avgEntryPrice: price }, booked, [])).toBeNull();
        },
      ),
    );
  });

  it('finds none across sides, or with nothing on either side', () => {
    expect(unlistedSplitRatio({ qty: -200, avgEntryPrice: -100 }, { qty: 50, cost: 20_000 }, [])).toBeNull();
    expect(unlistedSplitRatio({ qty: 0, avgEntryPrice: 100 }, { qty: 50, cost: 5000 }, [])).toBeNull();
    expect(unlistedSplitRatio({ qty: 50, avgEntryPrice: 100 }, { qty: 0, cost: 0 }, [])).toBeNull();
  });

  it('finds none where the broker reports no cost basis (a crypto exchange), or the shares moved by less than any split', () => {
    // A stop-limit of an earlier day partly filled in a crash, at an exchange whose average entry
    // price is 0 (both cost bases 0): no split, the stop's exit goes on.
    expect(unlistedSplitRatio({ qty: 0.6, avgEntryPrice: 0 }, { qty: 1, cost: 0 }, [])).toBeNull();
    expect(unlistedSplitRatio({ qty: 4, avgEntryPrice: 25 }, { qty: 1, cost: 0 }, [])).toBeNull();
    // 10,000 shares of a $0.40 stock one share apart: the cost bases agree to the tolerance.
    expect(
      unlistedSplitRatio({ qty: 10_001, avgEntryPrice: 0.4 }, { qty: 10_000, cost: 4000.4 }, []),
    ).toBeNull();
    expect(
      unlistedSplitRatio({ qty: 10_500, avgEntryPrice: 0.4 / 1.05 }, { qty: 10_000, cost: 4000 }, []),
    ).toBeCloseTo(1.05, 9);
  });

  it('tolerates a cent and the rounding of an average price to four decimals, not more', () => {
    // 212 shares at 91.4375 (a quarter of 365.75): the broker's price rounded to 91.4375 → exact.
    expect(unlistedSplitRatio({ qty: 212, avgEntryPrice: 91.4375 }, { qty: 53, cost: 53 * 365.75 }, [])).toBe(
      4,
    );
    expect(
      unlistedSplitRatio({ qty: 212, avgEntryPrice: 91.43755 }, { qty: 53, cost: 53 * 365.75 }, []),
    ).toBe(4);
    // Ten cents apart on 212 shares: another position, not a split.
    expect(
      unlistedSplitRatio(
        { qty: 212, avgEntryPrice: 91.4375 + 0.1 / 212 },
        { qty: 53, cost: 53 * 365.75 },
        [],
      ),
    ).toBeNull();
  });

  it("compares with the sleeves' records alone (a bucket that took the split's shares) and with the bucket", () => {
    // The split day's end-of-day put the 3x new shares in the bucket, at the new price.
    const afterBucket = [record(53, 365.75, 'main'), record(159, 91.4375, 'UNASSIGNED')];
    expect(
      unlistedSplitOf({ symbol: 'SPY', qty: 212, avgEntryPrice: 91.4375 }, afterBucket, []),
    ).toMatchObject({
      ratio: 4,
      booked: { qty: 53 },
    });
    // A bucket of an earlier day (7 at 350): the split of all 60 shows only with it.
    const withBucket = [record(53, 365.75, 'main'), record(7, 350, 'UNASSIGNED')];
    const cost = 53 * 365.75 + 7 * 350;
    expect(
      unlistedSplitOf({ symbol: 'SPY', qty: 240, avgEntryPrice: cost / 240 }, withBucket, []),
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
