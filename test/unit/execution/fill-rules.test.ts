import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  adversePrice,
  type EntryFill,
  fillEntry,
  PROTECTIVE_NONE,
  protectiveFillPrice,
  protectiveHit,
  STOP_AT_OPEN,
  STOP_INTRABAR,
  slips,
  TARGET_AT_OPEN,
  TARGET_INTRABAR,
  tighterStop,
  trailingLevel,
} from '../../../shared/core/execution/fill-rules.js';

const out = (): EntryFill => ({ price: 0, atOpen: false });
const bar = fc
  .tuple(
    fc.double({ min: 1, max: 500, noNaN: true }),
    fc.double({ min: 1, max: 500, noNaN: true }),
    fc.double({ min: 1, max: 500, noNaN: true }),
  )
  .map(([a, b, c]) => {
    const [low, open, high] = [a, b, c].sort((x, y) => x - y) as [number, number, number];
    return { open, high, low };
  });

describe('the fill rules (docs/backtest.md)', () => {
  it('slippage moves market and stop fills against the order; limit-priced fills do not slip', () => {
    expect(adversePrice(100, true, 0.001)).toBeCloseTo(100.1, 10);
    expect(adversePrice(100, false, 0.001)).toBeCloseTo(99.9, 10);
    expect(['market', 'stop', 'trailing-stop', 'trailing_stop'].every(slips)).toBe(true);
    expect(['limit', 'stop-limit', 'stop_limit'].some(slips)).toBe(false);
  });

  it('entries: market at the open, limit at the open or the limit, stop at the open on a gap or the stop', () => {
    const b = { open: 100, high: 104, low: 97 };
    const fill = (order: Parameters<typeof fillEntry>[0], buy: boolean) => ({
      ...fillEntry(order, buy, b.open, b.high, b.low, 0.01, out()),
    });
    expect(fill({ type: 'market' }, true)).toEqual({ price: 101, atOpen: true });
    expect(fill({ type: 'limit', limitPrice: 101 }, true)).toEqual({ price: 100, atOpen: true });
    expect(fill({ type: 'limit', limitPrice: 98 }, true)).toEqual({ price: 98, atOpen: false });
    expect(fill({ type: 'limit', limitPrice: 96 }, true).price).toBeNaN();
    expect(fill({ type: 'stop', stopPrice: 99 }, true)).toEqual({ price: 101, atOpen: true });
    expect(fill({ type: 'stop', stopPrice: 103 }, true)).toEqual({ price: 103 * 1.01, atOpen: false });
    expect(fill({ type: 'stop', stopPrice: 105 }, true).price).toBeNaN();
    expect(fill({ type: 'stop', stopPrice: 98 }, false)).toEqual({ price: 98 * 0.99, atOpen: false });
    // Stop-limit triggered intrabar at 102 with the limit above it: the stop price, no slippage.
    expect(fill({ type: 'stop-limit', stopPrice: 102, limitPrice: 103 }, true)).toEqual({
      price: 102,
      atOpen: false,
    });
    // Triggered at the open (gap) but the open is above the limit: the limit when the low reaches it.
    expect(fill({ type: 'stop-limit', stopPrice: 99, limitPrice: 98 }, true)).toEqual({
      price: 98,
      atOpen: false,
    });
  });

  it('protective orders: the open before the range, and the stop wins when one bar reaches both', () => {
    fc.assert(
      fc.property(
        bar,
        fc.double({ min: 1, max: 500, noNaN: true }),
        fc.double({ min: 1, max: 500, noNaN: true }),
        fc.boolean(),
        (b, stop, target, long) => {
          const hit = protectiveHit(long, b.open, b.high, b.low, stop, target, false);
          const stopReached = long ? b.low <= stop : b.high >= stop;
          const stopAtOpen = long ? b.open <= stop : b.open >= stop;
          if (stopAtOpen) expect(hit).toBe(STOP_AT_OPEN);
          else if (hit === TARGET_AT_OPEN) expect(long ? b.open >= target : b.open <= target).toBe(true);
          else if (stopReached) expect(hit).toBe(STOP_INTRABAR);
          else if (long ? b.high >= target : b.low <= target) expect(hit).toBe(TARGET_INTRABAR);
          else expect(hit).toBe(PROTECTIVE_NONE);
          // The gap-only check never fills in the range.
          const gap = protectiveHit(long, b.open, b.high, b.low, stop, target, true);
          expect([PROTECTIVE_NONE, STOP_AT_OPEN, TARGET_AT_OPEN]).toContain(gap);
          if (hit !== PROTECTIVE_NONE) {
            const price = protectiveFillPrice(hit, long, b.open, stop, target, 0.001);
            // A stop slips against the exit; a take-profit gets its price or better.
            if (hit === STOP_AT_OPEN) expect(price).toBe(adversePrice(b.open, !long, 0.001));
            if (hit === STOP_INTRABAR) expect(price).toBe(adversePrice(stop, !long, 0.001));
            if (hit === TARGET_AT_OPEN || hit === TARGET_INTRABAR)
              expect(long ? price >= target : price <= target).toBe(true);
          }
        },
      ),
    );
  });

  it('an absent stop or target (NaN) never fills', () => {
    expect(protectiveHit(true, 100, 110, 90, Number.NaN, Number.NaN, false)).toBe(PROTECTIVE_NONE);
  });

  it('a trailing stop sits its distance from the best price and never loosens', () => {
    expect(trailingLevel(true, 110, 5, null)).toBe(105);
    expect(trailingLevel(false, 90, null, 10)).toBe(99);
    expect(tighterStop(true, 105, 103)).toBe(105);
    expect(tighterStop(false, 99, 97)).toBe(97);
  });
});
