import { describe, expect, it } from 'vitest';
import { BrokerUnavailableError } from '../../../shared/core/errors.js';
import type { OrderRequest } from '../../../shared/core/ports/broker.js';
import type { IntentRecord, IntentStatus, IntentUnchanged } from '../../../shared/core/ports/state-store.js';
import type { LiveContext } from '../../../shared/live/context.js';
import { type FlattenAgain, supersedeStaleResend } from '../../../shared/live/stops.js';
import { placeIntentOnce, sendRecordedIntent } from '../../../shared/live/submit.js';
import { brokerOrder, intentRecord } from '../../helpers/live-records.js';

const base = 'qs-0000abcd-SPY-20210318-flatten';
const SINCE = Date.parse('2021-03-18T14:00:00Z');
const STAMPED = '2021-03-18T14:50:00.000Z';
/** Past the senders' lease (210 s) after STAMPED. */
const LATER = '2021-03-18T14:54:00.000Z';

/**
 * A context with the store's intent calls over a map (conditional on the status and, given, on
 * `updatedAt`, as the DynamoDB adapter's), a broker that has no order until one is POSTed (each POST
 * recorded), and a clock port (`clock.at`, settable). `afterNextRead`: run once, right after the
 * next `getIntent` answered (another run acting between that read and the caller's next write).
 */
function fakeContext() {
  const intents = new Map<string, IntentRecord>();
  const posted: OrderRequest[] = [];
  /** The intent's `updatedAt` as stored when each POST went out. */
  const stampsAtPost: string[] = [];
  const clock = { at: STAMPED };
  let afterNextRead: (() => Promise<void>) | undefined;
  const write = (
    id: string,
    from: readonly IntentStatus[],
    patch: Partial<IntentRecord>,
    unchanged?: IntentUnchanged,
  ) => {
    const current = intents.get(id);
    if (current === undefined || !from.includes(current.status)) return { conflict: true } as const;
    if (unchanged !== undefined && current.updatedAt !== unchanged.updatedAt)
      return { conflict: true } as const;
    const next = { ...current, ...patch };
    intents.set(id, next);
    return next;
  };
  const ctx = {
    now: async () => clock.at,
    broker: {
      getOrderByClientOrderId: async (id: string) => {
        const order = posted.find((o) => o.clientOrderId === id);
        return order === undefined
          ? null
          : brokerOrder({ clientOrderId: id, qty: order.qty, status: 'accepted' });
      },
      submitOrder: async (order: OrderRequest) => {
        posted.push(order);
        stampsAtPost.push(intents.get(order.clientOrderId)?.updatedAt ?? '');
        return brokerOrder({ clientOrderId: order.clientOrderId, qty: order.qty, status: 'accepted' });
      },
    },
    store: {
      createIntent: async (intent: IntentRecord) => {
        const stored = intents.get(intent.clientOrderId);
        if (stored !== undefined) return { created: false, intent: stored };
        intents.set(intent.clientOrderId, intent);
        return { created: true, intent };
      },
      getIntent: async (_date: string, id: string) => {
        const current = intents.get(id);
        const hook = afterNextRead;
        afterNextRead = undefined;
        if (hook !== undefined) await hook();
        return current;
      },
      transitionIntent: async (
        _date: string,
        id: string,
        from: readonly IntentStatus[],
        patch: Partial<IntentRecord>,
        unchanged?: IntentUnchanged,
      ) => write(id, from, patch, unchanged),
      settleIntent: async (
        _date: string,
        id: string,
        from: readonly IntentStatus[],
        patch: Partial<IntentRecord>,
        by: string,
        unchanged?: IntentUnchanged,
      ) => write(id, from, { ...patch, settledBy: by }, unchanged),
    },
    notifier: { publish: async () => {} },
    log: { info: () => {}, warn: () => {}, error: () => {} },
  } as unknown as LiveContext;
  return {
    ctx,
    intents,
    posted,
    stampsAtPost,
    clock,
    afterNextRead: (hook: () => Promise<void>) => {
      afterNextRead = hook;
    },
  };
}

/** The kill switch's re-send `-2` of 10 shares, recorded and not sent. */
const resend = (over: Partial<IntentRecord> = {}) =>
  intentRecord({
    clientOrderId: `${base}-2`,
    status: 'recorded',
    qty: 10,
    killSwitchFlatten: SINCE,
    createdAt: STAMPED,
    updatedAt: STAMPED,
    ...over,
  });

const again: FlattenAgain = {
  id: `${base}-2`,
  sequence: 2,
  ended: intentRecord({ clientOrderId: base, status: 'rejected', killSwitchFlatten: SINCE }),
  since: SINCE,
};

/** What the broker was sent, per client order id. */
const sold = (posted: readonly OrderRequest[]) => posted.map((o) => [o.clientOrderId, o.qty]);

describe("a sender's stamp immediately before its send and the risk check's supersede: exactly one wins (review kfix B)", () => {
  it('a sender slow between its creation stamp and its send (the alert, the stream cancelling stops) while a check supersedes it past the lease: the sender sends nothing', async () => {
    const f = fakeContext();
    // The check, 3 sold by hand meanwhile: 7 left, the stamp more than the lease old.
    const supersede = async () => {
      f.clock.at = LATER;
      const stored = [...f.intents.values()];
      const next = await supersedeStaleResend(f.ctx, again, stored, 7, LATER);
      expect(next?.id).toBe(`${base}-3`);
    };
    const placed = await placeIntentOnce(f.ctx, resend(), STAMPED, supersede);
    expect(placed.status).toBe('skipped');
    expect(sold(f.posted)).toEqual([]);
  });

  it("the stream's exit, created and then sent after its stop cancels (sendRecordedIntent on what it created), superseded meanwhile: nothing sent", async () => {
    const f = fakeContext();
    const { intent: created } = await f.ctx.store.createIntent(resend());
    f.clock.at = LATER;
    expect((await supersedeStaleResend(f.ctx, again, [created], 7, LATER))?.id).toBe(`${base}-3`);
    const placed = await sendRecordedIntent(f.ctx, created, STAMPED);
    expect(placed.status).toBe('skipped');
    expect(sold(f.posted)).toEqual([]);
  });

  it("an exit its own run created moments ago (`fresh`, the stream's usual exit): sent without the clock's ask or the stamp's write; the same exit not fresh is stamped first", async () => {
    const f = fakeContext();
    let asked = 0;
    const now = async () => {
      asked += 1;
      return f.clock.at;
    };
    const ctx = { ...f.ctx, now } as LiveContext;
    const { intent: created } = await f.ctx.store.createIntent(resend());
    const placed = await sendRecordedIntent(ctx, created, STAMPED, true);
    expect(placed.status).toBe('accepted');
    expect(sold(f.posted)).toEqual([[`${base}-2`, 10]]);
    expect(asked).toBe(0);
    expect(f.stampsAtPost).toEqual([STAMPED]);
    const g = fakeContext();
    const { intent: again2 } = await g.ctx.store.createIntent(resend());
    g.clock.at = '2021-03-18T14:50:01.000Z';
    await sendRecordedIntent(g.ctx, again2, STAMPED);
    expect(g.stampsAtPost).toEqual(['2021-03-18T14:50:01.000Z']);
  });

  it("a sender stamping it between the check's re-read and its settle: the sender sends, the check sends nothing", async () => {
    const f = fakeContext();
    const { intent: stored } = await f.ctx.store.createIntent(resend());
    f.clock.at = LATER;
    f.afterNextRead(async () => {
      await sendRecordedIntent(f.ctx, stored, STAMPED);
    });
    expect(await supersedeStaleResend(f.ctx, again, [stored], 7, LATER)).toBeNull();
    expect(sold(f.posted)).toEqual([[`${base}-2`, 10]]);
    expect(f.intents.get(`${base}-2`)?.status).toBe('accepted');
  });

  it('a sender stamps on the clock right before its POST; never earlier than the stored stamp, and always a new value', async () => {
    const f = fakeContext();
    const { intent: stored } = await f.ctx.store.createIntent(resend());
    f.clock.at = '2021-03-18T14:51:00.000Z';
    await sendRecordedIntent(f.ctx, stored, STAMPED);
    expect(f.stampsAtPost).toEqual(['2021-03-18T14:51:00.000Z']);
  });

  it("a send whose answer is lost (left unknown) by a retried run carrying an earlier scheduled time: its stamp is kept, never lowered to the step's time (review kfix D)", async () => {
    const f = fakeContext();
    const { intent: stored } = await f.ctx.store.createIntent(resend());
    f.clock.at = '2021-03-18T14:51:00.000Z';
    const lost = f.ctx.broker as unknown as Record<string, unknown>;
    lost.submitOrder = async () => {
      throw new BrokerUnavailableError('connection reset');
    };
    const placed = await sendRecordedIntent(f.ctx, stored, '2021-03-18T14:40:00.000Z');
    expect(placed).toMatchObject({ status: 'unknown', updatedAt: '2021-03-18T14:51:00.000Z' });
  });

  it('a stored stamp later than the clock: the sender stamps one millisecond after it', async () => {
    const f = fakeContext();
    const { intent: stored } = await f.ctx.store.createIntent(resend({ updatedAt: LATER }));
    await sendRecordedIntent(f.ctx, stored, STAMPED);
    expect(f.stampsAtPost).toEqual(['2021-03-18T14:54:00.001Z']);
    expect(sold(f.posted)).toEqual([[`${base}-2`, 10]]);
  });
});
