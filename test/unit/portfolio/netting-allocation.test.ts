import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { splitCents } from '../../../shared/core/ledger/money.js';
import {
  boundWeights,
  covariance,
  riskParity,
  targetWeights,
} from '../../../shared/core/portfolio/allocator.js';
import { rebalanceTransfers } from '../../../shared/core/portfolio/rebalance.js';
import { netLegs, type SessionLeg, splitFill } from '../../../shared/core/trading/session.js';

const leg = (sleeve: number, side: 'buy' | 'sell', qty: number): SessionLeg => ({
  sleeve,
  symbol: 'SPY',
  role: side === 'buy' ? 'entry' : 'exit',
  side,
  qty,
});

describe('netting', () => {
  it('nets buys against sells into one order and crosses the offsetting part', () => {
    const order = netLegs('SPY', [leg(0, 'buy', 100), leg(1, 'sell', 30), leg(2, 'buy', 5)]);
    expect(order).toMatchObject({ side: 'buy', qty: 75, crossQty: 30 });
    const fills = splitFill(order, 100.015, 123, 0);
    // every leg at the fill price; the commission is the broker order's, on the buying legs by quantity
    expect(fills.map((f) => f.price)).toEqual([100.015, 100.015, 100.015]);
    expect(fills.map((f) => f.commission)).toEqual([117, 0, 6]);
    // the legs' cash moves add up to the broker order's notional, to the cent
    const [a, b, c] = fills.map((f) => f.notional) as [number, number, number];
    expect(a - b + c).toBe(Math.round(75 * 100.015 * 100));
    const crossed = netLegs('SPY', [leg(0, 'buy', 10), leg(1, 'sell', 10)]);
    expect(crossed).toMatchObject({ side: null, qty: 0, crossQty: 10 });
    expect(splitFill(crossed, 99.99, 0, 0).map((f) => f.commission)).toEqual([0, 0]);
  });

  it('splits cents exactly', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 1e9 }),
        fc.array(fc.double({ min: 0, max: 1e4, noNaN: true }), { minLength: 1, maxLength: 8 }),
        (total, weights) => {
          const parts = splitCents(total, weights);
          expect(parts.reduce((a, b) => a + b, 0)).toBe(total);
          for (const p of parts) expect(Number.isInteger(p)).toBe(true);
        },
      ),
    );
  });
});

describe('allocation', () => {
  const returnsArb = (n: number) =>
    fc.array(fc.array(fc.double({ min: -0.05, max: 0.05, noNaN: true }), { minLength: n, maxLength: n }), {
      minLength: 0,
      maxLength: 80,
    });
  it('weights sum to 1 within their bounds for every method', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 5 }).chain((n) =>
          fc.tuple(
            fc.constant(n),
            returnsArb(n),
            fc.array(
              fc.tuple(
                fc.double({ min: 0, max: 0.3, noNaN: true }),
                fc.double({ min: 0.3, max: 1, noNaN: true }),
              ),
              {
                minLength: n,
                maxLength: n,
              },
            ),
            fc.constantFrom('fixed', 'inverse-volatility', 'risk-parity') as fc.Arbitrary<
              'fixed' | 'inverse-volatility' | 'risk-parity'
            >,
          ),
        ),
        ([n, history, rawBounds, method]) => {
          const minSum = rawBounds.reduce((a, [lo]) => a + lo, 0);
          const maxSum = rawBounds.reduce((a, [, hi]) => a + hi, 0);
          fc.pre(minSum <= 1 && maxSum >= 1);
          const bounds = rawBounds.map(([min, max]) => ({ min, max }));
          const configured = bounds.map(() => 1 / n);
          const { weights } = targetWeights({ method, lookback: 30 }, configured, bounds, history);
          expect(weights.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 9);
          weights.forEach((w, i) => {
            expect(w).toBeGreaterThanOrEqual((bounds[i]?.min ?? 0) - 1e-9);
            expect(w).toBeLessThanOrEqual((bounds[i]?.max ?? 1) + 1e-9);
          });
        },
      ),
    );
  });

  it('risk parity equalizes the risk contributions; inverse volatility favours the calm sleeve', () => {
    const history = Array.from({ length: 60 }, (_, t) => [
      0.01 * Math.sin(t),
      0.03 * Math.cos(t * 1.3),
      0.02 * Math.sin(t * 0.7 + 1),
    ]);
    const cov = covariance(history, 3);
    const w = riskParity(cov);
    const rc = w.map((wi, i) => wi * (cov[i] as number[]).reduce((a, c, j) => a + c * (w[j] as number), 0));
    for (const r of rc) expect(r / (rc[0] as number)).toBeCloseTo(1, 6);
    const inv = targetWeights(
      { method: 'inverse-volatility', lookback: 60 },
      [1 / 3, 1 / 3, 1 / 3],
      [0, 1, 2].map(() => ({ min: 0, max: 1 })),
      history,
    );
    expect(inv.weights[0]).toBeGreaterThan(inv.weights[2] as number);
    expect(inv.weights[2]).toBeGreaterThan(inv.weights[1] as number);
    expect(inv.inputs.sessions).toBe(60);
    const bounded = boundWeights(
      [0.9, 0.05, 0.05],
      [
        { min: 0, max: 0.5 },
        { min: 0.1, max: 1 },
        { min: 0, max: 1 },
      ],
    );
    [0.5, 0.25, 0.25].forEach((w, i) => {
      expect(bounded[i]).toBeCloseTo(w, 12);
    });
  });

  it('moves free cash only, and the moves sum to zero', () => {
    const transfers = rebalanceTransfers([60_000_00, 40_000_00], [5_000_00, 40_000_00], [0.5, 0.5]);
    expect(transfers).toEqual([-5_000_00, 5_000_00]);
    expect(rebalanceTransfers([70_000_00, 30_000_00], [70_000_00, 0], [0.5, 0.5])).toEqual([
      -20_000_00, 20_000_00,
    ]);
  });
});
