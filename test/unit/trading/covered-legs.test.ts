import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  coveredLegs,
  coveredQuantities,
  netLegs,
  type SessionLeg,
} from '../../../shared/core/trading/session.js';

const entry = (sleeve: number, qty: number): SessionLeg => ({
  sleeve,
  symbol: 'SPY',
  role: 'entry',
  side: 'buy',
  qty,
  entry: { side: 1, entryRef: 100, stopLoss: 90, takeProfit: undefined },
});
const exit = (sleeve: number, qty: number): SessionLeg => ({
  sleeve,
  symbol: 'SPY',
  role: 'exit',
  side: 'sell',
  qty,
});

describe('a net order partly filled: which legs its fill covers (long-only)', () => {
  it('a net buy crosses its exits whole and shares the fill between its entries, the remainder to the largest', () => {
    const order = netLegs('SPY', [exit(0, 30), entry(1, 50), entry(2, 20)]); // buy 40, cross 30
    expect(order).toMatchObject({ side: 'buy', qty: 40, crossQty: 30 });
    // 10 of 40 filled: the entries share 30 + 10 = 40 of their 70 (28.57 / 11.43: 28 + 1 and 11).
    expect(coveredQuantities(order, 10)).toEqual([30, 29, 11]);
    expect(coveredQuantities(order, 40)).toEqual([30, 50, 20]);
    // Nothing filled: the crossed part still crosses (21.43 / 8.57: 21 + 1 and 8).
    expect(coveredQuantities(order, 0)).toEqual([30, 22, 8]);
  });

  it('a net sell closes whole positions as far as the fill goes; an exit it cannot complete stays open', () => {
    const order = netLegs('SPY', [exit(0, 50), exit(1, 30), entry(2, 40)]); // sell 40, cross 40
    expect(order).toMatchObject({ side: 'sell', qty: 40, crossQty: 40 });
    // 20 filled: 60 shares to close whole exits with: the 50 of sleeve 0 (the 30 no longer fits);
    // the entry gets what the closed exits cross beyond the fill: 50 − 20 = 30.
    expect(coveredQuantities(order, 20)).toEqual([50, 0, 30]);
    expect(coveredLegs(order, 20).map((l) => [l.sleeve, l.qty])).toEqual([
      [0, 50],
      [2, 30],
    ]);
  });

  it('the covered legs net to the filled quantity whenever the exits fit whole, and never exceed a leg', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 200 }), { minLength: 0, maxLength: 3 }),
        fc.array(fc.integer({ min: 1, max: 200 }), { minLength: 1, maxLength: 4 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        (exits, entries, part) => {
          const legs = [...exits.map((q, i) => exit(i, q)), ...entries.map((q, i) => entry(10 + i, q))];
          const order = netLegs('SPY', legs);
          if (order.side !== 'buy') return; // a net buy: its exits always cross whole
          const filled = Math.floor(order.qty * part);
          const qtys = coveredQuantities(order, filled);
          qtys.forEach((q, i) => {
            expect(q).toBeGreaterThanOrEqual(0);
            expect(q).toBeLessThanOrEqual((legs[i] as SessionLeg).qty);
            expect(Number.isInteger(q)).toBe(true);
          });
          const net = qtys.reduce((a, q, i) => a + ((legs[i] as SessionLeg).side === 'buy' ? q : -q), 0);
          expect(net).toBe(filled);
          exits.forEach((q, i) => {
            expect(qtys[i]).toBe(q);
          });
        },
      ),
    );
  });
});
