import { describe, expect, it } from 'vitest';
import type { BrokerOrder } from '../../../shared/core/ports/broker.js';
import { refusedCancel } from '../../../shared/live/stops.js';
import { orderState } from '../../../shared/live/submit.js';

const order = (status: BrokerOrder['status'], filledQty = 0): BrokerOrder => ({
  id: 'o1',
  clientOrderId: 'c1',
  symbol: 'SPY',
  side: 'sell',
  type: 'stop',
  timeInForce: 'gtc',
  qty: 10,
  filledQty,
  filledAvgPrice: filledQty > 0 ? 100 : null,
  limitPrice: null,
  stopPrice: 99,
  status,
  submittedAt: '2021-03-18T14:00:00.000Z',
  filledAt: null,
  legs: [],
});

describe("one mapping of the broker's order statuses", () => {
  it('an order replaced at the broker no longer works: its intent is cancelled, as refusedCancel calls it gone', () => {
    expect(refusedCancel(order('replaced'))).toBe('gone');
    expect(orderState(order('replaced'))).toMatchObject({ status: 'cancelled', filledQty: 0 });
    expect(orderState(order('replaced', 4))).toMatchObject({ status: 'cancelled', filledQty: 4 });
  });

  it('every status the broker calls done maps to a final intent status; a working one stays open', () => {
    expect(orderState(order('canceled')).status).toBe('cancelled');
    expect(orderState(order('expired')).status).toBe('expired');
    expect(orderState(order('done_for_day')).status).toBe('expired');
    expect(orderState(order('rejected')).status).toBe('rejected');
    expect(orderState(order('filled', 10)).status).toBe('filled');
    expect(orderState(order('partially_filled', 3)).status).toBe('partially_filled');
    expect(orderState(order('new')).status).toBe('accepted');
  });
});
