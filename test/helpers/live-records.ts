import type { BrokerOrder } from '../../shared/core/ports/broker.js';
import type { IntentRecord } from '../../shared/core/ports/state-store.js';

/** A SPY sell order of 10 at market as the broker lists it (`new`, nothing filled), with `over` on top. */
export const brokerOrder = (over: Partial<BrokerOrder>): BrokerOrder => ({
  id: `o-${over.clientOrderId ?? 'x'}`,
  clientOrderId: 'x',
  symbol: 'SPY',
  side: 'sell',
  type: 'market',
  timeInForce: 'day',
  qty: 10,
  filledQty: 0,
  filledAvgPrice: null,
  limitPrice: null,
  stopPrice: null,
  status: 'new',
  submittedAt: '2021-03-18T14:00:00.000Z',
  filledAt: null,
  legs: [],
  ...over,
});

/** An accepted exit intent of 10 SPY at market (sleeve `main`, 2021-03-18), with `over` on top. */
export const intentRecord = (over: Partial<IntentRecord>): IntentRecord => ({
  clientOrderId: 'i',
  sleeve: 'main',
  date: '2021-03-18',
  strategy: 'main',
  symbol: 'SPY',
  purpose: 'exit',
  side: 'sell',
  qty: 10,
  type: 'market',
  timeInForce: 'day',
  referencePrice: 100,
  status: 'accepted',
  filledQty: 0,
  configHash: 'h',
  gitCommit: 'c',
  createdAt: '2021-03-18T13:10:00.000Z',
  updatedAt: '2021-03-18T13:10:00.000Z',
  ...over,
});
