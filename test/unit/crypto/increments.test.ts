import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvalidParameterError } from '../../../shared/core/errors.js';
import {
  floorToIncrement,
  formatBaseSize,
  incrementDecimals,
  productQuantity,
} from '../../../shared/core/sizing/increments.js';

const BTC = { productId: 'BTC-USD', baseIncrement: 0.00000001, baseMinSize: 0.00000001, quoteMinSize: 1 };
const SOL = { productId: 'SOL-USD', baseIncrement: 0.001, baseMinSize: 0.01, quoteMinSize: 1 };

describe('quantities at the product increments', () => {
  it('rounds DOWN to the base increment, exactly on decimal steps', () => {
    expect(floorToIncrement(0.123456789, 0.00000001)).toBe(0.12345678);
    expect(floorToIncrement(1.23999, 0.01)).toBe(1.23);
    expect(floorToIncrement(0.3, 0.1)).toBe(0.3); // 0.3 / 0.1 is 2.9999999999999996 in binary
    expect(floorToIncrement(2.675, 0.001)).toBe(2.675);
    expect(floorToIncrement(7.9, 1)).toBe(7);
    expect(floorToIncrement(0, 0.01)).toBe(0);
    expect(floorToIncrement(Number.NaN, 0.01)).toBe(0);
    expect(incrementDecimals(0.00000001)).toBe(8);
    expect(formatBaseSize(0.1, 0.00000001)).toBe('0.10000000');
    expect(() => floorToIncrement(1, 0)).toThrow(InvalidParameterError);
  });

  it('never rounds up, never loses more than one increment, and lands on the grid (property)', () => {
    fc.assert(
      fc.property(
        fc.double({ min: 0, max: 1e6, noNaN: true }),
        fc.constantFrom(0.00000001, 0.000001, 0.001, 0.01, 0.1, 1),
        (qty, increment) => {
          const rounded = floorToIncrement(qty, increment);
          const decimals = incrementDecimals(increment);
          expect(rounded).toBeLessThanOrEqual(qty + increment * 1e-6);
          expect(qty - rounded).toBeLessThan(increment * (1 + 1e-6));
          const steps = rounded / increment;
          expect(Math.abs(steps - Math.round(steps))).toBeLessThan(1e-6 * Math.max(1, steps));
          expect(Number(rounded.toFixed(decimals))).toBe(rounded);
        },
      ),
    );
  });

  it('refuses under the minimum size or notional with a named reason, never rounding up to it', () => {
    expect(productQuantity(0.1234567891, 50_000, BTC)).toEqual({ qty: 0.12345678, refusal: null });
    const zero = productQuantity(0.000000009, 50_000, BTC);
    expect(zero).toMatchObject({ qty: 0, refusal: 'zero-after-rounding' });
    const small = productQuantity(0.0099, 150, SOL);
    expect(small).toMatchObject({ qty: 0, refusal: 'below-min-size' });
    expect(small.refusal !== null && small.message).toMatch(
      /SOL-USD: quantity 0.009 is under the minimum size 0.01/,
    );
    const notional = productQuantity(0.00001, 50_000, BTC); // $0.50 of bitcoin
    expect(notional).toMatchObject({ qty: 0, refusal: 'below-min-notional' });
    expect(productQuantity(0.0123, 150, SOL)).toEqual({ qty: 0.012, refusal: null });
    expect(() => productQuantity(1, 0, SOL)).toThrow(/SOL-USD: price must be positive/);
  });
});
