import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { BrokerActivity } from '../../../shared/core/ports/broker.js';
import { beyondBooked, bookedFillsOf } from '../../../shared/live/reconcile.js';

type Fill = Extract<BrokerActivity, { kind: 'fill' }>;

const fill = (id: string, orderId: string, qty: number, time: string): Fill => ({
  kind: 'fill',
  id,
  orderId,
  symbol: 'SPY',
  side: 'buy',
  qty,
  price: 100,
  time,
  partial: false,
});

describe('the fills beyond those a positions list booked', () => {
  it('takes each order’s booked quantity from its earliest fills; a fill straddling it counts for its part beyond', () => {
    const fills = [
      fill('e3', 'o1', 4, '2026-01-05T00:15:09Z'),
      fill('e1', 'o1', 5, '2026-01-05T00:15:01Z'),
      fill('e2', 'o1', 5, '2026-01-05T00:15:05Z'),
      fill('e4', 'o2', 2, '2026-01-05T00:15:02Z'),
    ];
    expect(beyondBooked(fills, { o1: 7 }).map((f) => [f.id, f.qty])).toEqual([
      ['e4', 2],
      ['e2', 3],
      ['e3', 4],
    ]);
    expect(beyondBooked(fills, { o1: 14, o2: 2 })).toEqual([]);
    expect(beyondBooked(fills, {}).map((f) => f.id)).toEqual(['e1', 'e4', 'e2', 'e3']);
    // Booked more than listed (a fill the activities do not list yet): nothing beyond, never negative.
    expect(beyondBooked(fills, { o1: 20, o2: 9 })).toEqual([]);
  });

  it('the booked fills of a set of fills: the quantity per order', () => {
    expect(
      bookedFillsOf([
        { orderId: 'o1', qty: 5 },
        { orderId: 'o2', qty: 0.5 },
        { orderId: 'o1', qty: 2 },
        { orderId: 'o3', qty: 0 },
      ]),
    ).toEqual({ o1: 7, o2: 0.5 });
  });

  it('booked plus beyond is every fill, per order (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ order: fc.constantFrom('a', 'b', 'c'), qty: fc.integer({ min: 1, max: 50 }) }), {
          maxLength: 20,
        }),
        fc.dictionary(fc.constantFrom('a', 'b', 'c'), fc.integer({ min: 0, max: 200 })),
        (raw, booked) => {
          const fills = raw.map((r, i) =>
            fill(`e${i}`, r.order, r.qty, new Date(Date.UTC(2026, 0, 5, 0, 15, i)).toISOString()),
          );
          const beyond = beyondBooked(fills, booked);
          for (const order of ['a', 'b', 'c']) {
            const total = fills.filter((f) => f.orderId === order).reduce((s, f) => s + f.qty, 0);
            const left = beyond.filter((f) => f.orderId === order).reduce((s, f) => s + f.qty, 0);
            expect(left).toBe(Math.max(0, total - (booked[order] ?? 0)));
          }
        },
      ),
    );
  });
});
