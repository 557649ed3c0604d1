import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type CommissionModel,
  commissionCents,
  notionalCents,
  toCents,
} from '../../../shared/core/ledger/money.js';
import { allInQty, floorQty, parseSizing, sizeAtDecision } from '../../../shared/core/sizing/index.js';

describe('ledger money', () => {
  it('rounds to cents half away from zero, including binary near-halves', () => {
    expect(toCents(0.285)).toBe(29);
    expect(toCents(-0.285)).toBe(-29);
    expect(toCents(1.005)).toBe(101);
    expect(toCents(10.004)).toBe(1000);
  });

  it('is the sign times the nudged rounding of the magnitude, for every double (zeros keep the sign rule)', () => {
    const nudge = 1 + 8 * Number.EPSILON;
    const reference = (dollars: number) => {
      const scaled = dollars * 100;
      const rounded = Math.round(Math.abs(scaled) * nudge);
      return scaled < 0 ? -rounded : rounded;
    };
    fc.assert(
      fc.property(fc.double(), (dollars) => {
        expect(Object.is(toCents(dollars), reference(dollars))).toBe(true);
      }),
      { numRuns: 20_000 },
    );
    for (const dollars of [0, -0, 0.005, -0.005, 1e-300, -1e-300, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(Object.is(toCents(dollars), reference(dollars))).toBe(true);
    }
  });

  it('rounds as Math.round where its short path adds a half and floors (below 0.5 cents, from 2^52 cents)', () => {
    const nudge = 1 + 8 * Number.EPSILON;
    const reference = (dollars: number) => Math.round(dollars * 100 * nudge);
    // 0.0049999999999999906 × 100 × nudge is 0.49999999999999994, the double under a half: plus 0.5
    // it rounds to 1, so a floor alone gives 1 cent where Math.round gives 0.
    expect((0.0049999999999999906 * 100 * nudge).toString()).toBe('0.49999999999999994');
    expect(toCents(0.0049999999999999906)).toBe(0);
    expect(toCents(0.005)).toBe(1);
    // From 2^52 cents every double is an integer and an odd one plus 0.5 rounds to the even one above.
    const twoTo52 = 2 ** 52;
    const positive = (min: number, max: number) => fc.double({ min, max, noNaN: true });
    fc.assert(
      fc.property(
        fc.oneof(
          positive(twoTo52 / 100 / 1.01, (2 * twoTo52) / 100),
          positive(0.004, 0.006),
          positive(0, 0.01),
          fc.integer({ min: 1, max: 2 ** 53 }).map((c) => c / 100),
        ),
        (dollars) => {
          expect(Object.is(toCents(dollars), reference(dollars))).toBe(true);
        },
      ),
      { numRuns: 20_000 },
    );
    for (let cents = twoTo52 - 4; cents < twoTo52 + 8; cents++) {
      expect(toCents(cents / 100)).toBe(reference(cents / 100));
    }
  });

  it('whole-share notionals at cent prices are exact', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 1_000_000 }),
        fc.integer({ min: 1, max: 10_000_000 }),
        (qty, priceCents) => {
          expect(notionalCents(qty, priceCents / 100)).toBe(qty * priceCents);
        },
      ),
    );
  });

  it('commission: the parts add up, with a minimum', () => {
    const model = { perShare: 0.005, perOrder: 1, percent: 0.001, minimum: 2 };
    // 100 shares at $50: 0.50 + 1 + 5.00 = 6.50
    expect(commissionCents(model, 100, 500_000)).toBe(650);
    // 10 shares at $5: 0.05 + 1 + 0.05 = 1.10 → minimum 2.00
    expect(commissionCents(model, 10, 5_000)).toBe(200);
    expect(commissionCents({ perShare: 0, perOrder: 0, percent: 0, minimum: 5 }, 10, 5_000)).toBe(0);
  });

  it('commission: the same cents as the plain formula, with the minimum given or not', () => {
    // The formula as written before its short paths (no percent part, under the minimum).
    const plain = (m: CommissionModel, qty: number, notional: number) => {
      const raw = m.perShare * Math.abs(qty) + m.perOrder + (m.percent * Math.abs(notional)) / 100;
      return raw <= 0 ? 0 : Math.max(toCents(raw), toCents(m.minimum));
    };
    const money = fc.oneof(
      fc.constantFrom(0, -0, 0.005, 0.01, 1, 1.005, 2.5),
      fc.double({ min: 0, max: 100, noNaN: true }),
    );
    fc.assert(
      fc.property(
        money,
        money,
        fc.oneof(fc.constantFrom(0, -0, 0.001), fc.double({ min: 0, max: 1, noNaN: true })),
        money,
        fc.oneof(fc.integer({ min: -1_000_000, max: 1_000_000 }), fc.double({ min: -1e6, max: 1e6 })),
        fc.oneof(
          fc.integer({ min: -1e12, max: 1e12 }),
          fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY),
        ),
        (perShare, perOrder, percent, minimum, qty, notional) => {
          const model = { perShare, perOrder, percent, minimum };
          const expected = plain(model, qty, notional);
          expect(commissionCents(model, qty, notional)).toBe(expected);
          expect(commissionCents(model, qty, notional, toCents(minimum))).toBe(expected);
        },
      ),
      { numRuns: 5_000 },
    );
  });
});

describe('sizing', () => {
  it('atr-risk: floor(risk × equity / stop distance)', () => {
    expect(
      sizeAtDecision(
        { mode: 'atr-risk', risk: 0.02 },
        { equity: 100_000, price: 50, stopLoss: 47, fractional: false },
      ),
    ).toEqual({ qty: 666 });
    expect(
      sizeAtDecision(
        { mode: 'atr-risk', risk: 0.02 },
        { equity: 100_000, price: 50, stopLoss: undefined, fractional: false },
      ).qty,
    ).toBe(0);
  });

  it('all-in never spends more than the buying power, and one more share would', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 100, max: 10_000_000 }),
        fc.double({ min: 0.5, max: 2000, noNaN: true }),
        fc.constantFrom(0, 0.005),
        fc.constantFrom(0, 1),
        fc.constantFrom(0, 0.001),
        (power, price, perShare, perOrder, percent) => {
          const model = { perShare, perOrder, percent, minimum: 0 };
          const qty = allInQty(power, price, model, false);
          const cost = (q: number) =>
            notionalCents(q, price) + commissionCents(model, q, notionalCents(q, price));
          if (qty > 0) expect(cost(qty)).toBeLessThanOrEqual(power);
          expect(cost(qty + 1)).toBeGreaterThan(power);
        },
      ),
    );
  });

  it('floors quantities to whole shares or 1e-6 steps', () => {
    expect(floorQty(2.9999999999999996, false)).toBe(3);
    expect(floorQty(2.7, false)).toBe(2);
    expect(floorQty(2.1234567, true)).toBe(2.123456);
    expect(floorQty(-1, false)).toBe(0);
  });

  it('parses the CLI sizing forms', () => {
    expect(parseSizing('all-in')).toEqual({ mode: 'all-in' });
    expect(parseSizing('fixed:100')).toEqual({ mode: 'fixed', qty: 100 });
    expect(parseSizing('fraction:0.5')).toEqual({ mode: 'fraction', fraction: 0.5 });
    expect(parseSizing('atr-risk:0.02')).toEqual({ mode: 'atr-risk', risk: 0.02 });
    expect(() => parseSizing('fraction:2')).toThrow(/at most 1/);
    expect(() => parseSizing('kelly:1')).toThrow(/unknown mode/);
  });
});
