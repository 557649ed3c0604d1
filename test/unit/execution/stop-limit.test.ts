import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  limitMarketable,
  PROTECTIVE_NONE,
  protectiveFillPrice,
  protectiveHit,
  STOP_AT_OPEN,
  stopLimitFill,
} from '../../../shared/core/execution/fill-rules.js';

/**
 * The crypto bot's protective stop-limit, one rule for the local Coinbase server and the dry run's
 * virtual account (`stopLimitFill`): the backtest's stop fill when within the limit; a gap beyond
 * the limit never fills at the open (the exchange leaves it resting as a limit).
 */
const bar = fc
  .record({
    open: fc.double({ min: 50, max: 150, noNaN: true }),
    a: fc.double({ min: 50, max: 150, noNaN: true }),
    b: fc.double({ min: 50, max: 150, noNaN: true }),
  })
  .map(({ open, a, b }) => ({ open, high: Math.max(open, a, b), low: Math.min(open, a, b) }));

describe('stopLimitFill: the protective stop-limit of the crypto bot', () => {
  it("fills as the backtest's protective stop whenever that price is within the limit; never at an open beyond the limit (property)", () => {
    let gaps = 0;
    let same = 0;
    fc.assert(
      fc.property(
        bar,
        fc.double({ min: 60, max: 140, noNaN: true }),
        fc.double({ min: 0, max: 0.1, noNaN: true }),
        (b, stop, distance) => {
          const limit = stop * (1 - distance);
          const slip = 0.001;
          const fill = stopLimitFill(true, false, b.open, b.high, b.low, stop, limit, slip);
          const hit = protectiveHit(true, b.open, b.high, b.low, stop, Number.NaN, false);
          if (hit === PROTECTIVE_NONE) {
            expect(fill).toEqual({ price: Number.NaN, triggered: false });
            return;
          }
          expect(fill.triggered).toBe(true);
          const backtest = protectiveFillPrice(hit, true, b.open, stop, Number.NaN, slip);
          if (limitMarketable(false, backtest, limit)) {
            same++;
            expect(fill.price).toBe(backtest);
          } else {
            // A sell never below its limit: at the limit when the range comes back to it, else none.
            if (hit === STOP_AT_OPEN && b.open < limit) gaps++;
            if (Number.isNaN(fill.price)) expect(b.high).toBeLessThan(limit);
            else expect(fill.price).toBe(limit);
          }
        },
      ),
      { numRuns: 3000 },
    );
    expect(gaps).toBeGreaterThan(10);
    expect(same).toBeGreaterThan(10);
  });

  it('a gap beyond the limit rests triggered; on a later day it is a limit order', () => {
    // Sell stop 100, limit 98: the day opens at 90 and never trades back to 98.
    const gapped = stopLimitFill(true, false, 90, 95, 85, 100, 98, 0.001);
    expect(gapped).toEqual({ price: Number.NaN, triggered: true });
    expect(stopLimitFill(true, true, 97, 99, 96, 100, 98, 0.001)).toEqual({ price: 98, triggered: true });
    expect(stopLimitFill(true, true, 99, 101, 97, 100, 98, 0.001)).toEqual({ price: 99, triggered: true });
    // A buy stop-limit (protecting a short) mirrors it.
    expect(stopLimitFill(false, false, 110, 112, 101, 100, 102, 0.001)).toEqual({
      price: 102,
      triggered: true,
    });
  });
});
