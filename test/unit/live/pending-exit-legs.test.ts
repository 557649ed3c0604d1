import { describe, expect, it } from 'vitest';
import type { IntentRecord } from '../../../shared/core/ports/state-store.js';
import { legId, pendingExitLegs } from '../../../shared/live/sleeves.js';
import { brokerOrder, intentRecord } from '../../helpers/live-records.js';

const DAY = '2021-03-18';
const always = () => true;

/** A sleeve's market-on-open leg of SPY recorded by the signals (not netted), with `over` on top. */
const leg = (sleeve: string, purpose: 'entry' | 'exit', qty: number, over: Partial<IntentRecord> = {}) =>
  intentRecord({
    clientOrderId: legId(sleeve, over.symbol ?? 'SPY', DAY, purpose),
    leg: true,
    sleeve,
    strategy: sleeve,
    purpose,
    side: purpose === 'entry' ? 'buy' : 'sell',
    qty,
    timeInForce: 'opg',
    status: 'recorded',
    createdAt: `${DAY}T13:10:00.000Z`,
    ...over,
  });

/** A net market-on-open order of SPY naming `legs`, recorded at 09:15 (`minute`), with `over` on top. */
const net = (id: string, legs: readonly IntentRecord[], over: Partial<IntentRecord> = {}) =>
  intentRecord({
    clientOrderId: id,
    sleeve: legs.map((l) => l.sleeve).join('+'),
    strategy: 'multi-strategy',
    legIds: legs.map((l) => l.clientOrderId),
    qty: legs.reduce((sum, l) => sum + (l.side === 'sell' ? l.qty : -l.qty), 0),
    timeInForce: 'opg',
    status: 'recorded',
    createdAt: `${DAY}T13:15:00.000Z`,
    ...over,
  });

/** The result as plain data: each sleeve's pending quantity and leg ids, and the pending nets. */
const plain = (r: ReturnType<typeof pendingExitLegs>) => ({
  bySleeve: Object.fromEntries(
    [...r.bySleeve].map(([sleeve, l]) => [sleeve, { qty: l.qty, ids: [...l.ids] }]),
  ),
  nets: [...r.nets],
});

describe("pendingExitLegs: what each sleeve's exit legs still to be sent will sell", () => {
  it('the exit legs not netted yet, per sleeve (quantities summed, ids named); no net', () => {
    const rsi = leg('rsi', 'exit', 5);
    const trend = leg('trend', 'exit', 10);
    const rsiAgain = leg('rsi', 'exit', 2, { clientOrderId: 'leg-rsi-SPY-20210318-exit-2' });
    expect(plain(pendingExitLegs([rsi, trend, rsiAgain], 'SPY', 'sell', always, []))).toEqual({
      bySleeve: {
        rsi: { qty: 7, ids: [rsi.clientOrderId, rsiAgain.clientOrderId] },
        trend: { qty: 10, ids: [trend.clientOrderId] },
      },
      nets: [],
    });
  });

  it('never an entry leg, another symbol or side, a leg no longer recorded, one without a sleeve, a plain exit, nor one that may no longer be sent', () => {
    const late = leg('late', 'exit', 4);
    const intents = [
      leg('rsi', 'entry', 5),
      leg('rsi', 'exit', 5, { symbol: 'QQQ' }),
      leg('short', 'exit', 5, { side: 'buy' }),
      leg('skipped', 'exit', 5, { status: 'skipped' }),
      leg('cancelled', 'exit', 5, { status: 'cancelled' }),
      leg('none', 'exit', 5, { sleeve: undefined }),
      intentRecord({ clientOrderId: 'qs-flatten', status: 'recorded', sleeve: 'rsi' }),
      late,
    ];
    const maySend = (i: IntentRecord) => i.clientOrderId !== late.clientOrderId;
    expect(plain(pendingExitLegs(intents, 'SPY', 'sell', maySend, []))).toEqual({ bySleeve: {}, nets: [] });
    expect(plain(pendingExitLegs([late], 'SPY', 'sell', always, [])).bySleeve).toEqual({
      late: { qty: 4, ids: [late.clientOrderId] },
    });
  });

  it("a net exit not at the broker yet (recorded, or claimed and unknown to it) counts its exit legs as their sleeves', named in nets; its entry legs count nothing", () => {
    const rsi = leg('rsi', 'exit', 5, { netOrderId: 'qs-net-exit' });
    const trend = leg('trend', 'exit', 10, { netOrderId: 'qs-net-exit' });
    const bollinger = leg('bollinger', 'entry', 3, { netOrderId: 'qs-net-exit' });
    for (const status of ['recorded', 'submitted', 'unknown'] as const) {
      const order = net('qs-net-exit', [rsi, trend, bollinger], { status });
      expect(plain(pendingExitLegs([rsi, trend, bollinger, order], 'SPY', 'sell', always, []))).toEqual({
        bySleeve: {
          rsi: { qty: 5, ids: [rsi.clientOrderId] },
          trend: { qty: 10, ids: [trend.clientOrderId] },
        },
        nets: ['qs-net-exit'],
      });
    }
  });

  it("a leg a net intent names belongs to it, with or without the leg's own mark (a run died between the two writes)", () => {
    const unmarked = leg('rsi', 'exit', 5);
    const atBroker = net('qs-net-exit', [unmarked], { status: 'submitted' });
    const open = [brokerOrder({ clientOrderId: 'qs-net-exit', timeInForce: 'opg', status: 'accepted' })];
    // Its net at the broker: the leg is not pending on its own either.
    expect(plain(pendingExitLegs([unmarked, atBroker], 'SPY', 'sell', always, open))).toEqual({
      bySleeve: {},
      nets: [],
    });
    // Its net not at the broker yet: pending once, through the net.
    expect(plain(pendingExitLegs([unmarked, atBroker], 'SPY', 'sell', always, []))).toEqual({
      bySleeve: { rsi: { qty: 5, ids: [unmarked.clientOrderId] } },
      nets: ['qs-net-exit'],
    });
  });

  it('a net exit the broker has sells nothing here: working (counted among the working exits), or ended unfilled while the store still says submitted; nor one accepted, settled, or past its window', () => {
    const rsi = leg('rsi', 'exit', 5, { netOrderId: 'qs-net-exit' });
    const submitted = net('qs-net-exit', [rsi], { status: 'submitted' });
    for (const status of ['accepted', 'canceled', 'rejected', 'expired'] as const) {
      const orders = [brokerOrder({ clientOrderId: 'qs-net-exit', timeInForce: 'opg', status })];
      expect(plain(pendingExitLegs([rsi, submitted], 'SPY', 'sell', always, orders))).toEqual({
        bySleeve: {},
        nets: [],
      });
    }
    for (const status of ['accepted', 'partially_filled', 'filled', 'cancelled', 'skipped'] as const) {
      const stored = net('qs-net-exit', [rsi], { status });
      expect(plain(pendingExitLegs([rsi, stored], 'SPY', 'sell', always, []))).toEqual({
        bySleeve: {},
        nets: [],
      });
    }
    const closed = (i: IntentRecord) => i.clientOrderId !== 'qs-net-exit';
    expect(plain(pendingExitLegs([rsi, submitted], 'SPY', 'sell', closed, []))).toEqual({
      bySleeve: {},
      nets: [],
    });
  });

  it("a net order of another symbol, side or purpose is not this position's", () => {
    const rsi = leg('rsi', 'exit', 5, { netOrderId: 'qs-net' });
    for (const over of [{ symbol: 'QQQ' }, { side: 'buy' as const }, { purpose: 'entry' as const }]) {
      const other = net('qs-net', [rsi], over);
      expect(plain(pendingExitLegs([rsi, other], 'SPY', 'sell', always, []))).toEqual({
        bySleeve: {},
        nets: [],
      });
    }
  });

  it('a leg two net intents name counts under the first recorded only', () => {
    const rsi = leg('rsi', 'exit', 5);
    const first = net('qs-b-net', [rsi], { createdAt: `${DAY}T13:15:00.000Z`, status: 'accepted' });
    const second = net('qs-a-net', [rsi], { createdAt: `${DAY}T13:16:00.000Z` });
    const open = [brokerOrder({ clientOrderId: 'qs-b-net', timeInForce: 'opg' })];
    // The second is pending, but the leg is the first's, which the broker has: nothing pending.
    expect(plain(pendingExitLegs([second, rsi, first], 'SPY', 'sell', always, open))).toEqual({
      bySleeve: {},
      nets: ['qs-a-net'],
    });
    const firstPending = net('qs-b-net', [rsi], { createdAt: `${DAY}T13:15:00.000Z` });
    expect(plain(pendingExitLegs([second, rsi, firstPending], 'SPY', 'sell', always, []))).toEqual({
      bySleeve: { rsi: { qty: 5, ids: [rsi.clientOrderId] } },
      nets: ['qs-a-net', 'qs-b-net'],
    });
  });
});
