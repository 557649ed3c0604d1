import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { VirtualOrderRefusedError } from '../../../shared/core/errors.js';
import { commissionCents, notionalCents } from '../../../shared/core/ledger/money.js';
import {
  bookVirtualFill,
  type DryRunAccount,
  dryRunEquity,
  openDryRunAccount,
  pruneDryRunAccount,
  restingFill,
  type VirtualOrder,
  virtualOrderId,
} from '../../../shared/core/live/dry-run-account.js';

const taker = { perShare: 0, perOrder: 0, percent: 0.006, minimum: 0 };

function order(over: Partial<VirtualOrder> & Pick<VirtualOrder, 'clientOrderId' | 'side'>): VirtualOrder {
  return {
    id: virtualOrderId(over.clientOrderId),
    symbol: 'BTC-USD',
    type: 'market',
    timeInForce: 'ioc',
    qty: 1,
    filledQty: 0,
    filledAvgPrice: null,
    limitPrice: null,
    stopPrice: null,
    status: 'accepted',
    submittedAt: '2026-01-05T00:15:00.000Z',
    filledAt: null,
    ...over,
  };
}

function book(account: DryRunAccount, o: VirtualOrder, price: number) {
  return bookVirtualFill(
    { ...account, orders: [...account.orders, o] },
    o,
    o.qty,
    price,
    o.submittedAt,
    taker,
  );
}

describe('the dry run virtual account', () => {
  it('a buy then a sell: cash in cents by notional and taker fee, the position and its cost', () => {
    let account = openDryRunAccount(10_000);
    const buy = book(account, order({ clientOrderId: 'b', side: 'buy', qty: 0.05 }), 90_000.01);
    account = buy.account;
    expect(buy.fill.feeCents).toBe(commissionCents(taker, 0.05, notionalCents(0.05, 90_000.01)));
    expect(account.cashCents).toBe(1_000_000 - notionalCents(0.05, 90_000.01) - buy.fill.feeCents);
    expect(account.positions).toEqual([
      { symbol: 'BTC-USD', qty: 0.05, costCents: notionalCents(0.05, 90_000.01) },
    ]);
    expect(account.orders[0]).toMatchObject({ status: 'filled', filledQty: 0.05, filledAvgPrice: 90_000.01 });
    const sell = book(account, order({ clientOrderId: 's', side: 'sell', qty: 0.05 }), 91_000);
    expect(sell.account.positions).toEqual([]);
    expect(sell.account.cashCents).toBe(account.cashCents + notionalCents(0.05, 91_000) - sell.fill.feeCents);
    expect(dryRunEquity(account, () => 100_000)).toBe(
      (account.cashCents + notionalCents(0.05, 100_000)) / 100,
    );
  });

  it('refuses a buy the cash cannot pay and a sell of more than is held (as Coinbase would)', () => {
    const account = openDryRunAccount(1_000);
    expect(() => book(account, order({ clientOrderId: 'b', side: 'buy', qty: 1 }), 1_000)).toThrow(
      VirtualOrderRefusedError,
    );
    expect(() => book(account, order({ clientOrderId: 's', side: 'sell', qty: 0.1 }), 1_000)).toThrow(
      /insufficient balance/,
    );
  });

  it('property: cash = start - buys (notional + fee) + sells (notional - fee); quantities add up; cash never negative', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            buy: fc.boolean(),
            qty: fc.integer({ min: 1, max: 50_000 }).map((n) => n / 10_000),
            price: fc.integer({ min: 100, max: 10_000_000 }).map((n) => n / 100),
          }),
          { maxLength: 30 },
        ),
        (steps) => {
          let account = openDryRunAccount(100_000);
          let expected = 10_000_000;
          let held = 0;
          steps.forEach((step, i) => {
            const o = order({ clientOrderId: `o${i}`, side: step.buy ? 'buy' : 'sell', qty: step.qty });
            try {
              const { account: next, fill } = book(account, o, step.price);
              const notional = notionalCents(step.qty, step.price);
              expected += step.buy ? -notional - fill.feeCents : notional - fill.feeCents;
              held += step.buy ? step.qty : -step.qty;
              account = next;
            } catch (error) {
              expect(error).toBeInstanceOf(VirtualOrderRefusedError);
            }
          });
          expect(account.cashCents).toBe(expected);
          expect(account.cashCents).toBeGreaterThanOrEqual(0);
          const qty = account.positions.reduce((sum, p) => sum + p.qty, 0);
          expect(Math.abs(qty - Math.max(0, held))).toBeLessThan(1e-6);
        },
      ),
    );
  });

  it('a resting stop fills by the fill rules: a gap at the open, the stop in the range (slipped), not reached', () => {
    const stop = order({ clientOrderId: 'st', side: 'sell', type: 'stop', stopPrice: 100 });
    const price = (...args: Parameters<typeof restingFill>) => restingFill(...args).price;
    expect(price(stop, { date: 'd', open: 95, high: 99, low: 90 }, 10)).toBeCloseTo(95 * 0.999, 10);
    expect(price(stop, { date: 'd', open: 105, high: 110, low: 99 }, 10)).toBeCloseTo(100 * 0.999, 10);
    expect(price(stop, { date: 'd', open: 105, high: 110, low: 101 }, 10)).toBeNull();
    // A stop-limit (limit 98): the stop's fill (slipped) within the limit, as the local server fills it.
    const stopLimit = { ...stop, type: 'stop_limit' as const, limitPrice: 98 };
    expect(price(stopLimit, { date: 'd', open: 105, high: 110, low: 99 }, 10)).toBeCloseTo(100 * 0.999, 10);
    expect(price(stopLimit, { date: 'd', open: 99, high: 99.5, low: 95 }, 10)).toBeCloseTo(99 * 0.999, 10);
    // Gapped beyond its limit: no fill at the open; the limit when the range comes back to it.
    expect(restingFill(stopLimit, { date: 'd', open: 97, high: 99, low: 90 }, 10)).toEqual({
      price: 98,
      triggered: true,
    });
    // ... else it rests, triggered, and is a limit on the next day (filled at the open above it).
    const gapped = restingFill(stopLimit, { date: 'd', open: 90, high: 95, low: 85 }, 10);
    expect(gapped).toEqual({ price: null, triggered: true });
    expect(restingFill(stopLimit, { date: 'e', open: 99, high: 100, low: 97 }, 10, gapped.triggered)).toEqual(
      {
        price: 99,
        triggered: true,
      },
    );
    // Not yet triggered, the same day would be judged as a stop again (the trigger is kept).
    expect(
      restingFill(stopLimit, { date: 'e', open: 101, high: 102, low: 100.5 }, 10, false).price,
    ).toBeNull();
    const limit = order({ clientOrderId: 'l', side: 'buy', type: 'limit', limitPrice: 50 });
    expect(price(limit, { date: 'd', open: 55, high: 56, low: 49 }, 10)).toBe(50);
  });

  it('keeps open orders and recent ones; drops done orders and fills older than 14 days', () => {
    let account = book(
      openDryRunAccount(1_000),
      order({ clientOrderId: 'old', side: 'buy', qty: 0.001 }),
      100,
    ).account;
    const resting = order({ clientOrderId: 'rest', side: 'sell', type: 'stop', stopPrice: 90, qty: 0.001 });
    account = { ...account, orders: [...account.orders, resting] };
    const pruned = pruneDryRunAccount(account, '2026-01-25');
    expect(pruned.orders.map((o) => o.clientOrderId)).toEqual(['rest']);
    expect(pruned.fills).toEqual([]);
    expect(pruneDryRunAccount(account, '2026-01-10').orders).toHaveLength(2);
  });
});
