import { describe, expect, it } from 'vitest';
import type { BrokerOrder } from '../../../shared/core/ports/broker.js';
import type { IntentRecord, IntentStatus } from '../../../shared/core/ports/state-store.js';
import type { LiveContext } from '../../../shared/live/context.js';
import { exitOrdersNow, type FlattenAgain, supersedeStaleResend } from '../../../shared/live/stops.js';
import { brokerOrder, intentRecord } from '../../helpers/live-records.js';

const base = 'qs-0000abcd-SPY-20210318-flatten';
const NOW = '2021-03-18T15:00:00.000Z';
const SINCE = Date.parse('2021-03-18T14:00:00Z');

/**
 * A context with only what these functions use: the broker's lookup by client order id (`atBroker`,
 * each lookup counted), the store's read and conditional settle over `stored` (the intents as stored
 * now, which another writer may have changed since the caller read them), each settle counted, and
 * the clock port (`clock`; none by default). `racing`: another writer's version of an intent,
 * written once the function has read it again (between its read and its conditional write).
 */
function fakeContext(
  stored: readonly IntentRecord[],
  atBroker: readonly BrokerOrder[] = [],
  options: {
    readonly clock?: string;
    readonly racing?: IntentRecord;
    readonly stampedAtClock?: IntentRecord;
  } = {},
) {
  const intents = new Map(stored.map((i) => [i.clientOrderId, i]));
  const lookups: string[] = [];
  const settles: { id: string; from: readonly IntentStatus[]; patch: Partial<IntentRecord> }[] = [];
  const warnings: string[] = [];
  const ctx = {
    broker: {
      getOrderByClientOrderId: async (id: string) => {
        lookups.push(id);
        return atBroker.find((o) => o.clientOrderId === id) ?? null;
      },
    },
    ...(options.clock === undefined
      ? {}
      : {
          now: async () => {
            // A sender stamping the intent while the clock is asked.
            if (options.stampedAtClock !== undefined)
              intents.set(options.stampedAtClock.clientOrderId, options.stampedAtClock);
            return options.clock;
          },
        }),
    store: {
      getIntent: async (_date: string, id: string) => {
        const current = intents.get(id);
        if (options.racing?.clientOrderId === id) intents.set(id, options.racing);
        return current;
      },
      settleIntent: async (
        _date: string,
        id: string,
        from: readonly IntentStatus[],
        patch: Partial<IntentRecord>,
        by: string,
        unchanged?: { updatedAt: string },
      ) => {
        settles.push({ id, from, patch });
        const current = intents.get(id);
        if (current === undefined || !from.includes(current.status)) return { conflict: true };
        if (unchanged !== undefined && current.updatedAt !== unchanged.updatedAt) return { conflict: true };
        const next = { ...current, ...patch, settledBy: by };
        intents.set(id, next);
        return next;
      },
    },
    log: { info: () => {}, warn: (m: string) => warnings.push(m), error: () => {} },
  } as unknown as LiveContext;
  return { ctx, intents, lookups, settles, warnings };
}

/** The day flatten that ended unfilled and the re-send of it `killSwitchFlattenAgain` picked: `-<sequence>`. */
function againAs(sequence: number, flattenBase = base): FlattenAgain {
  return {
    id: `${flattenBase}-${sequence}`,
    sequence,
    ended: intentRecord({ clientOrderId: flattenBase, status: 'rejected', killSwitchFlatten: SINCE }),
    since: SINCE,
  };
}

/** The stored re-send `-<sequence>` of 10 shares, recorded by a check that died before sending it. */
const staleResend = (sequence: number, over: Partial<IntentRecord> = {}, flattenBase = base) =>
  intentRecord({
    clientOrderId: `${flattenBase}-${sequence}`,
    status: 'recorded',
    qty: 10,
    killSwitchFlatten: SINCE,
    ...over,
  });

describe("supersedeStaleResend: a stale re-send of the kill switch's flatten never goes out", () => {
  it('one not at the broker for MORE than is left, its last sender write older than the lease: settled skipped from its own state, the next number returned', async () => {
    for (const status of ['recorded', 'submitted', 'unknown'] as const) {
      for (const left of [4, 9]) {
        const stale = staleResend(2, { status });
        const f = fakeContext([stale]);
        const next = await supersedeStaleResend(f.ctx, againAs(2), [stale], left, NOW);
        expect(next).toEqual({ ...againAs(2), id: `${base}-3`, sequence: 3 });
        // The broker was asked first: an order it has is no longer ours to change.
        expect(f.lookups).toEqual([`${base}-2`]);
        expect(f.settles).toEqual([
          {
            id: `${base}-2`,
            from: [status],
            patch: {
              status: 'skipped',
              reason: `superseded: recorded for 10, ${left} left to sell; sent again as -3`,
              updatedAt: NOW,
            },
          },
        ]);
        expect(f.intents.get(`${base}-2`)).toMatchObject({ status: 'skipped', qty: 10 });
        expect(f.warnings).toEqual(["a stale re-send of the kill switch's flatten superseded"]);
      }
    }
  });

  it('one recorded for what is left or fewer (recorded, claimed, unknown) is sent under its own id: no lookup, no write', async () => {
    for (const status of ['recorded', 'submitted', 'unknown'] as const) {
      for (const left of [10, 13]) {
        const stale = staleResend(2, { status });
        const f = fakeContext([stale]);
        expect(await supersedeStaleResend(f.ctx, againAs(2), [stale], left, NOW)).toEqual(againAs(2));
        expect(f.lookups).toEqual([]);
        expect(f.settles).toEqual([]);
      }
    }
  });

  it("one for more than is left whose sender may still be on its way (stamped less than the lease ago on the clock port's time, not the step's): null, nothing written", async () => {
    const stamped = '2021-03-18T14:50:00.000Z';
    // [the step's time, the clock port's time (none: the step's), superseded]
    const cases = [
      ['2021-03-18T14:52:00.000Z', undefined, false],
      // A retried run carries its scheduled time: the clock says the sender may still be alive.
      ['2021-03-18T14:40:00.000Z', '2021-03-18T14:53:29.000Z', false],
      ['2021-03-18T14:53:30.000Z', undefined, true],
      ['2021-03-18T14:40:00.000Z', '2021-03-18T14:53:30.000Z', true],
    ] as const;
    for (const [now, clock, superseded] of cases) {
      for (const status of ['recorded', 'submitted', 'unknown'] as const) {
        const stale = staleResend(2, { status, updatedAt: stamped });
        const f = fakeContext([stale], [], clock === undefined ? {} : { clock });
        const next = await supersedeStaleResend(f.ctx, againAs(2), [stale], 4, now);
        expect(next).toEqual(superseded ? { ...againAs(2), id: `${base}-3`, sequence: 3 } : null);
        expect(f.settles).toHaveLength(superseded ? 1 : 0);
        expect(f.intents.get(`${base}-2`)?.status).toBe(superseded ? 'skipped' : status);
      }
    }
  });

  it('a re-send not recorded yet, or one the broker got or finished (accepted, partly filled, filled, ended): returned as it is', async () => {
    const none = fakeContext([]);
    expect(await supersedeStaleResend(none.ctx, againAs(2), [], 4, NOW)).toEqual(againAs(2));
    // The series' ended flatten (another id) is no stale re-send.
    const ended = intentRecord({ clientOrderId: base, status: 'rejected', qty: 10 });
    expect(await supersedeStaleResend(none.ctx, againAs(2), [ended], 4, NOW)).toEqual(againAs(2));
    for (const status of [
      'accepted',
      'partially_filled',
      'filled',
      'cancelled',
      'rejected',
      'skipped',
    ] as const) {
      const sent = staleResend(2, { status });
      const f = fakeContext([sent]);
      expect(await supersedeStaleResend(f.ctx, againAs(2), [sent], 4, NOW)).toEqual(againAs(2));
      expect(f.settles).toEqual([]);
    }
    expect(none.lookups).toEqual([]);
    expect(none.settles).toEqual([]);
  });

  it('one the broker has (sent, its answer lost) goes on at its quantity: nothing written', async () => {
    const stale = staleResend(2, { status: 'submitted' });
    const f = fakeContext([stale], [brokerOrder({ clientOrderId: `${base}-2`, status: 'accepted' })]);
    expect(await supersedeStaleResend(f.ctx, againAs(2), [stale], 4, NOW)).toEqual(againAs(2));
    expect(f.lookups).toEqual([`${base}-2`]);
    expect(f.settles).toEqual([]);
    expect(f.intents.get(`${base}-2`)?.status).toBe('submitted');
  });

  it('another writer settled, claimed or took it up to send (its stamp renewed) since the read: null (send nothing), nothing written over it', async () => {
    const read = staleResend(2);
    const settled = staleResend(2, { status: 'skipped', reason: 'superseded by another check' });
    const claimed = staleResend(2, { status: 'submitted', claimedBy: 'another-check' });
    const renewed = staleResend(2, { updatedAt: '2021-03-18T14:59:00.000Z' });
    for (const now of [settled, claimed, renewed]) {
      // Before the function reads it again: nothing tried.
      const f = fakeContext([now]);
      expect(await supersedeStaleResend(f.ctx, againAs(2), [read], 4, NOW)).toBeNull();
      expect(f.settles).toEqual([]);
      expect(f.intents.get(`${base}-2`)).toEqual(now);
      expect(f.warnings).toEqual([]);
    }
    for (const now of [settled, claimed, renewed]) {
      // Between that read and the conditional write: tried once, from the state it read (its status
      // and its stamp: a sender's stamp in between wins, review kfix A), and lost.
      const g = fakeContext([read], [], { racing: now });
      expect(await supersedeStaleResend(g.ctx, againAs(2), [read], 4, NOW)).toBeNull();
      expect(g.settles.map((x) => x.from)).toEqual([['recorded']]);
      expect(g.intents.get(`${base}-2`)).toEqual(now);
      expect(g.warnings).toEqual([]);
    }
  });

  it('a sender stamping it while the check asks the clock (a broker request): the clock is read before the intent is read again, so the stamp is seen: null, nothing written (review kfix A)', async () => {
    const read = staleResend(2);
    const renewed = staleResend(2, { updatedAt: '2021-03-18T14:59:59.000Z' });
    const f = fakeContext([read], [], { clock: NOW, stampedAtClock: renewed });
    expect(await supersedeStaleResend(f.ctx, againAs(2), [read], 4, NOW)).toBeNull();
    expect(f.settles).toEqual([]);
    expect(f.intents.get(`${base}-2`)).toEqual(renewed);
  });

  it('the next number follows the stale one whatever its digits, and the base keeps a sleeve-tagged id whole', async () => {
    const stale = staleResend(9);
    const f = fakeContext([stale]);
    expect(await supersedeStaleResend(f.ctx, againAs(9), [stale], 4, NOW)).toMatchObject({
      id: `${base}-10`,
      sequence: 10,
    });
    const tagged = 'qs-1f2e3d4c-QQQ-20210318-flatten';
    const staleTagged = staleResend(12, { symbol: 'QQQ' }, tagged);
    const g = fakeContext([staleTagged]);
    expect(await supersedeStaleResend(g.ctx, againAs(12, tagged), [staleTagged], 4, NOW)).toMatchObject({
      id: `${tagged}-13`,
      sequence: 13,
    });
    expect(g.settles[0]?.patch.reason).toBe('superseded: recorded for 10, 4 left to sell; sent again as -13');
  });
});

describe('exitOrdersNow: the orders the working exits are counted by, as the broker has them now', () => {
  it('the open orders, then each exit not settled and not open, as the broker has it (ended unfilled, partly filled)', async () => {
    const open = [
      brokerOrder({ clientOrderId: 'open-exit' }),
      brokerOrder({ clientOrderId: 'manual', qty: 3 }),
    ];
    const cancelled = brokerOrder({ clientOrderId: 'net-exit', status: 'canceled' });
    const partly = brokerOrder({ clientOrderId: 'day-exit', status: 'canceled', filledQty: 4 });
    const intents = [
      intentRecord({ clientOrderId: 'open-exit', status: 'accepted' }),
      // The store still says sent / accepted: a run died after its send, no risk check since.
      intentRecord({ clientOrderId: 'net-exit', status: 'submitted' }),
      intentRecord({ clientOrderId: 'day-exit', status: 'accepted' }),
    ];
    const f = fakeContext([], [...open, cancelled, partly]);
    const orders = await exitOrdersNow(f.ctx, open, intents);
    expect(orders).toEqual([...open, cancelled, partly]);
    // An order among the open ones is not asked for again.
    expect(f.lookups).toEqual(['net-exit', 'day-exit']);
  });

  it('asks for every working state (recorded, submitted, unknown, accepted, partly filled); none for a settled exit, an entry, a stop or a leg', async () => {
    const working: IntentStatus[] = ['recorded', 'submitted', 'unknown', 'accepted', 'partially_filled'];
    const settled: IntentStatus[] = ['filled', 'cancelled', 'expired', 'rejected', 'skipped'];
    const intents = [
      ...working.map((status) => intentRecord({ clientOrderId: `w-${status}`, status })),
      ...settled.map((status) => intentRecord({ clientOrderId: `s-${status}`, status })),
      intentRecord({ clientOrderId: 'entry', purpose: 'entry', side: 'buy' }),
      intentRecord({ clientOrderId: 'stop', purpose: 'stop', type: 'stop', stopPrice: 90 }),
      intentRecord({ clientOrderId: 'leg', leg: true, status: 'recorded' }),
    ];
    const atBroker = intents.map((i) => brokerOrder({ clientOrderId: i.clientOrderId }));
    const f = fakeContext([], atBroker);
    const orders = await exitOrdersNow(f.ctx, [], intents);
    expect(f.lookups).toEqual(working.map((s) => `w-${s}`));
    expect(orders.map((o) => o.clientOrderId)).toEqual(working.map((s) => `w-${s}`));
  });

  it('an exit the broker never got (in flight) adds nothing; the open list given is not changed', async () => {
    const open = [brokerOrder({ clientOrderId: 'manual' })];
    const f = fakeContext([]);
    const orders = await exitOrdersNow(f.ctx, open, [
      intentRecord({ clientOrderId: 'in-flight', status: 'recorded' }),
    ]);
    expect(f.lookups).toEqual(['in-flight']);
    expect(orders).toEqual(open);
    expect(orders).not.toBe(open);
    expect(await exitOrdersNow(f.ctx, [], [])).toEqual([]);
  });
});
