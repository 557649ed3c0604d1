import { afterEach, describe, expect, it, vi } from 'vitest';
import type { DynamoStateStore } from '../../shared/adapters/dynamodb/state-store.js';
import { BrokerRejectedError } from '../../shared/core/errors.js';
import { clientOrderId } from '../../shared/core/live/orders.js';
import type { IntentRecord } from '../../shared/core/ports/state-store.js';
import type { LiveContext } from '../../shared/live/context.js';
import { endOfDay } from '../../shared/live/end-of-day.js';
import { executeOrders } from '../../shared/live/execute-orders.js';
import { generateSignals, type SignalsResult } from '../../shared/live/generate-signals.js';
import { haltTrading, killSwitch, OperatorInputError, resumeTrading } from '../../shared/live/kill-switch.js';
import { marketOpenCheck } from '../../shared/live/market-open-check.js';
import { flattenBucket } from '../../shared/live/reconcile.js';
import { riskCheck } from '../../shared/live/risk-check.js';
import { placeStop, stopPrice } from '../../shared/live/stops.js';
import { sendRecordedIntent } from '../../shared/live/submit.js';
import {
  anotherWriterSettlesFirst,
  brokerCancels,
  exitIntent,
  postOrders,
  soldByHand,
  startLiveStack,
} from '../helpers/live-stack.js';

// March 30 .. April 8, 2021: New York is on daylight saving time (09:00 = 13:00Z). With the bundled
// bars and this config the strategy enters MSFT on 03-30, exits it on 03-31, enters MSFT again on
// 04-01, QQQ on 04-05 and AAPL on 04-08 (the replay's orders over the same days).
const at = (day: string, hhmm: string) =>
  `${day}T${String(Number(hhmm.slice(0, 2)) + 4).padStart(2, '0')}:${hhmm.slice(3)}:00.000Z`;

type Stack = Awaited<ReturnType<typeof startLiveStack>>;
let stack: Stack | undefined;
afterEach(async () => {
  await stack?.close();
  stack = undefined;
});

const SCHEDULE = [
  ['09:00', marketOpenCheck],
  ['09:10', generateSignals],
  ['09:15', executeOrders],
  ['09:45', riskCheck],
  ['12:00', riskCheck],
  ['15:45', riskCheck],
  ['16:15', endOfDay],
] as const;

/** Runs the day's scheduled steps from `from` up to (not including) `until`, New York time. */
async function runDay(s: Stack, day: string, from = '00:00', until = '24:00') {
  const results = new Map<string, unknown>();
  for (const [time, step] of SCHEDULE) {
    if (time < from || time >= until) continue;
    s.alpaca.setTime(at(day, time));
    results.set(
      time,
      await (step as (ctx: LiveContext, t: string) => Promise<unknown>)(s.ctx, at(day, time)),
    );
  }
  return results;
}

const id = (ctx: LiveContext, symbol: string, day: string, purpose: 'entry' | 'exit' | 'flatten') =>
  clientOrderId({ stage: ctx.stage, strategy: ctx.config.name, symbol, date: day, purpose });

/** The stack started at 08:00 New York on `day` without the cache (closed after the test): the stack and its context. */
async function startOn(day: string) {
  stack = await startLiveStack({ startTime: at(day, '08:00'), withCache: false });
  return { s: stack, ctx: stack.ctx };
}

/** The daily loss alarm's kill switch call at `hhmm` on `day`, with flatten unless told otherwise. */
const dailyLossInput = (day: string, hhmm: string, flatten = true) => ({
  reason: 'daily loss alarm',
  by: 'alarm:quantshift-paper-daily-loss',
  time: at(day, hhmm),
  flatten,
});

/** The broker's clock moved to `hhmm` on `day`, then the daily loss alarm's kill switch with flatten: its result. */
async function dailyLossFlatten(s: Stack, day: string, hhmm: string) {
  s.alpaca.setTime(at(day, hhmm));
  return killSwitch(s.ctx, dailyLossInput(day, hhmm));
}

/** The filled sells of MSFT at the broker (any client order id), in the broker's order. */
const msftSales = async (ctx: LiveContext) =>
  (await ctx.broker.listOrders({ status: 'all', symbols: ['MSFT'] })).filter(
    (o) => o.side === 'sell' && o.filledQty > 0,
  );

/** Expects no position left and no reconciliation difference or unknown state alerted. */
async function expectFlatAndReconciled(s: Stack) {
  expect(await s.ctx.broker.getPositions()).toEqual([]);
  expect(s.notifier.sent.map((m) => m.subject).filter((t) => /Reconciliation|Unknown state/.test(t))).toEqual(
    [],
  );
}

/**
 * Runs `day`'s steps from `from` up to `until`, expecting its risk check at `check` to send the
 * flatten `flattenId` again under `${flattenId}-2`, stored with `fields` (the shares, filled...).
 */
async function expectSentAgainBy(
  s: Stack,
  day: string,
  from: string,
  until: string,
  check: string,
  flattenId: string,
  fields: Partial<IntentRecord>,
) {
  const result = await runDay(s, day, from, until);
  expect((result.get(check) as { exits: string[] }).exits).toEqual([`${flattenId}-2`]);
  expect(await s.ctx.store.getIntent(day, `${flattenId}-2`)).toMatchObject(fields);
}

const writes = (s: Stack) =>
  s.alpaca.requestLog.filter((r) => (r.method === 'POST' && r.path === '/v2/orders') || r.method === 'DELETE')
    .length;

describe('the kill switch on the local stack', () => {
  it('halts: cancels the open entry, keeps the stops, blocks later entries; a second call changes nothing', async () => {
    const { s, ctx } = await startOn('2021-04-01');
    await runDay(s, '2021-04-01');
    await runDay(s, '2021-04-05', '00:00', '09:20');
    const qqqEntry = id(ctx, 'QQQ', '2021-04-05', 'entry');
    expect(await ctx.broker.getOrderByClientOrderId(qqqEntry)).toMatchObject({
      status: 'accepted',
      timeInForce: 'opg',
    });
    const stopsBefore = (await ctx.broker.listOrders({ status: 'open' })).filter((o) => o.type === 'stop');
    expect(stopsBefore.map((o) => o.symbol)).toEqual(['MSFT']);

    s.alpaca.setTime(at('2021-04-05', '09:20'));
    const input = dailyLossInput('2021-04-05', '09:20', false);
    const result = await killSwitch(ctx, input);
    expect(result).toMatchObject({
      day: '2021-04-05',
      halted: true,
      killSwitch: { by: input.by, reason: input.reason, since: Date.parse(input.time) },
      entriesSkipped: [],
      entriesCancelled: [qqqEntry],
      entriesPending: [],
      stopsCancelled: [],
      exits: [],
    });
    expect((await ctx.broker.getOrderByClientOrderId(qqqEntry))?.status).toBe('canceled');
    const stopsAfter = (await ctx.broker.listOrders({ status: 'open' })).filter((o) => o.type === 'stop');
    expect(stopsAfter.map((o) => o.id)).toEqual(stopsBefore.map((o) => o.id));
    const risk = await ctx.store.getRiskState();
    expect(risk?.state.killSwitch).toEqual({
      since: Date.parse(input.time),
      by: input.by,
      reason: input.reason,
    });
    const store = ctx.store as DynamoStateStore;
    const events = await store.listBreakerEvents(Date.parse(input.time), Date.parse(input.time));
    expect(events).toEqual([
      expect.objectContaining({ breaker: 'kill-switch', action: 'trip', by: input.by, reason: input.reason }),
    ]);
    expect(await store.listAudit(input.time, input.time)).toEqual([
      expect.objectContaining({ action: 'halt', by: input.by, reason: input.reason }),
    ]);
    const alert = s.notifier.sent.find((n) => n.subject.startsWith('Kill switch'));
    expect(alert).toMatchObject({
      severity: 'critical',
      subject: `Kill switch: trading halted (${input.by})`,
    });
    expect(alert?.text).toContain(qqqEntry);
    expect(alert?.text).toContain('Positions kept with their protective stops');

    // The alarm fires again: nothing is cancelled or sent, the flag and its records stay as they are.
    const before = writes(s);
    const again = await killSwitch(ctx, { ...input, time: at('2021-04-05', '09:21') });
    expect(again).toMatchObject({ halted: false, entriesCancelled: [], exits: [], stopsCancelled: [] });
    expect(again.killSwitch?.since).toBe(Date.parse(input.time));
    expect(writes(s)).toBe(before);
    expect((await ctx.store.getRiskState())?.version).toBe(risk?.version);
    expect(s.notifier.sent.at(-1)?.subject).toBe(`Kill switch: already halted (${input.by})`);

    // The rest of the day and the next days: stops are still managed, no entry is sent again.
    await runDay(s, '2021-04-05', '09:20');
    const positions = await ctx.broker.getPositions();
    expect(positions.map((p) => p.symbol)).toEqual(['MSFT']);
    await runDay(s, '2021-04-06');
    await runDay(s, '2021-04-07');
    const signals = (await runDay(s, '2021-04-08')).get('09:10') as SignalsResult;
    // Without the halt, AAPL is entered at this open (the replay's order qs-…-AAPL-20210408-entry).
    expect(signals.decisions?.refused).toEqual([
      expect.objectContaining({ symbol: 'AAPL', reason: 'kill switch on (daily loss alarm)' }),
    ]);
    const entries = (await ctx.broker.listOrders({ status: 'all' })).filter(
      (o) => o.side === 'buy' && o.submittedAt >= at('2021-04-05', '09:20'),
    );
    expect(entries).toEqual([]);
    expect(
      (await ctx.store.listIntents('2021-04-08')).filter(
        (i) => i.purpose === 'entry' && i.status !== 'skipped',
      ),
    ).toEqual([]);
    expect(s.notifier.sent.some((n) => n.subject.startsWith('Entries refused'))).toBe(true);
    const msftStop = (await ctx.broker.listOrders({ status: 'open' })).find(
      (o) => o.symbol === 'MSFT' && o.type === 'stop',
    );
    expect(msftStop?.qty).toBe(positions[0]?.qty);
  });

  it('exits still go out while halted; entries come back after a recorded resume', async () => {
    const { s, ctx } = await startOn('2021-03-30');
    await runDay(s, '2021-03-30');
    expect((await ctx.broker.getPositions()).map((p) => p.symbol)).toEqual(['MSFT']);
    await runDay(s, '2021-03-31', '00:00', '09:05');
    s.alpaca.setTime(at('2021-03-31', '09:05'));
    const halted = await killSwitch(ctx, {
      reason: 'drawdown alarm',
      by: 'alarm:quantshift-paper-drawdown',
      time: at('2021-03-31', '09:05'),
      flatten: false,
    });
    expect(halted.halted).toBe(true);

    await runDay(s, '2021-03-31', '09:05');
    const exit = (await ctx.store.listIntents('2021-03-31')).find((i) => i.purpose === 'exit');
    expect(exit).toMatchObject({ symbol: 'MSFT', side: 'sell', status: 'filled' });
    expect(await ctx.broker.getPositions()).toEqual([]);

    await runDay(s, '2021-04-01', '00:00', '09:15');
    expect((await ctx.store.listIntents('2021-04-01')).filter((i) => i.purpose === 'entry')).toEqual([]);

    await expect(
      resumeTrading(ctx.store, { reason: '  ', by: 'ops', time: at('2021-04-01', '17:00') }),
    ).rejects.toThrow(OperatorInputError);
    const resumed = await resumeTrading(ctx.store, {
      reason: 'loss explained: data outage',
      by: 'ops',
      time: at('2021-04-01', '17:00'),
    });
    expect(resumed).toMatchObject({
      changed: true,
      stillBlocked: null,
      previous: { by: halted.killSwitch?.by },
    });
    expect(
      (await ctx.store.listAudit('2021-03-31', '2021-04-01')).map((a) => [a.action, a.by, a.reason]),
    ).toEqual([
      ['halt', 'alarm:quantshift-paper-drawdown', 'drawdown alarm'],
      ['resume', 'ops', 'loss explained: data outage'],
    ]);
    expect(
      (await resumeTrading(ctx.store, { reason: 'again', by: 'ops', time: at('2021-04-01', '17:01') }))
        .changed,
    ).toBe(false);

    await runDay(s, '2021-04-05', '00:00', '09:15');
    expect(
      (await ctx.store.listIntents('2021-04-05')).filter((i) => i.purpose === 'entry').map((i) => i.symbol),
    ).toContain('QQQ');
  });

  it("cancels this strategy's entry orders found by their client order id, and nobody else's orders", async () => {
    const { s, ctx } = await startOn('2021-04-05');
    await runDay(s, '2021-04-05', '00:00', '09:10');
    s.alpaca.setTime(at('2021-04-05', '09:20'));
    const limitBuy = { side: 'buy', qty: 1, type: 'limit', timeInForce: 'gtc', limitPrice: 100 } as const;
    // An entry of this strategy with no intent today (an earlier day's good-till-cancelled order).
    const ours = id(ctx, 'AAPL', '2021-04-01', 'entry');
    await ctx.broker.submitOrder({ ...limitBuy, clientOrderId: ours, symbol: 'AAPL' });
    // Someone else's orders: another strategy's entry, and a manual one.
    const otherStrategy = clientOrderId({
      stage: ctx.stage,
      strategy: 'another-strategy',
      symbol: 'AAPL',
      date: '2021-04-01',
      purpose: 'entry',
    });
    await ctx.broker.submitOrder({ ...limitBuy, clientOrderId: otherStrategy, symbol: 'AAPL' });
    await ctx.broker.submitOrder({ ...limitBuy, clientOrderId: 'manual-1', symbol: 'AAPL' });

    const result = await killSwitch(ctx, {
      reason: 'test',
      by: 'ops',
      time: at('2021-04-05', '09:20'),
      flatten: true,
    });
    expect(result.entriesCancelled).toEqual([ours]);
    expect((await ctx.broker.getOrderByClientOrderId(ours))?.status).toBe('canceled');
    expect((await ctx.broker.getOrderByClientOrderId(otherStrategy))?.status).toBe('accepted');
    expect((await ctx.broker.getOrderByClientOrderId('manual-1'))?.status).toBe('accepted');
  });

  it('a halt between the signals and the orders keeps the recorded entries from being sent', async () => {
    const { s, ctx } = await startOn('2021-04-05');
    await runDay(s, '2021-04-05', '00:00', '09:15');
    const recorded = (await ctx.store.listIntents('2021-04-05')).filter((i) => i.purpose === 'entry');
    expect(recorded.length).toBeGreaterThan(0);
    const halt = await haltTrading(ctx.store, {
      reason: 'manual',
      by: 'ops',
      time: at('2021-04-05', '09:12'),
    });
    expect(halt.entriesSkipped).toEqual(recorded.map((i) => i.clientOrderId));
    await runDay(s, '2021-04-05', '09:15', '10:00');
    expect(postOrders(s)).toEqual([]);
  });

  it('flattens once: stops cancelled first, each position sold exactly once when invoked twice at once and again later', async () => {
    const { s, ctx } = await startOn('2021-04-01');
    await runDay(s, '2021-04-01');
    await runDay(s, '2021-04-05', '00:00', '10:00');
    const held = await ctx.broker.getPositions();
    expect(held.map((p) => p.symbol).sort()).toEqual(['MSFT', 'QQQ']);
    const stops = (await ctx.broker.listOrders({ status: 'open' })).filter((o) => o.type === 'stop');
    expect(stops.map((o) => o.symbol).sort()).toEqual(['MSFT', 'QQQ']);

    s.alpaca.setTime(at('2021-04-05', '10:00'));
    const input = dailyLossInput('2021-04-05', '10:00');
    const logFrom = s.alpaca.requestLog.length;
    const [first, second] = await Promise.all([killSwitch(ctx, input), killSwitch(ctx, input)]);
    // A stop is cancelled before its shares are sold (at Alpaca, the stop holds them).
    const firstWrite = s.alpaca.requestLog
      .slice(logFrom)
      .find((r) => r.method === 'DELETE' || (r.method === 'POST' && r.path === '/v2/orders'));
    expect(firstWrite?.method).toBe('DELETE');
    s.alpaca.setTime(at('2021-04-05', '10:05'));
    const third = await killSwitch(ctx, { ...input, time: at('2021-04-05', '10:05') });
    expect([first.halted, second.halted].sort()).toEqual([false, true]);
    expect(third).toMatchObject({ halted: false, exits: [], stopsCancelled: [] });

    expect(await ctx.broker.getPositions()).toEqual([]);
    const all = await ctx.broker.listOrders({ status: 'all' });
    for (const position of held) {
      const sells = all.filter(
        (o) => o.symbol === position.symbol && o.side === 'sell' && o.type === 'market',
      );
      expect(sells).toHaveLength(1);
      expect(sells[0]).toMatchObject({
        clientOrderId: id(ctx, position.symbol, '2021-04-05', 'flatten'),
        qty: position.qty,
        status: 'filled',
      });
      const intent = await ctx.store.getIntent('2021-04-05', sells[0]?.clientOrderId as string);
      expect(intent).toMatchObject({ purpose: 'exit', status: 'filled', filledQty: position.qty });
    }
    for (const stop of stops) {
      expect(all.find((o) => o.id === stop.id)?.status).toBe('canceled');
    }
    expect(new Set([...first.exits, ...second.exits])).toEqual(
      new Set(held.map((p) => id(ctx, p.symbol, '2021-04-05', 'flatten'))),
    );

    // The risk check after it has nothing to protect, and places nothing.
    const before = writes(s);
    s.alpaca.setTime(at('2021-04-05', '12:00'));
    await riskCheck(ctx, at('2021-04-05', '12:00'));
    expect(writes(s)).toBe(before);
  });
  it("a flatten while the day's market-on-open exit is recorded sells only what the exit leaves: never short", async () => {
    const { s, ctx } = await startOn('2021-03-30');
    await runDay(s, '2021-03-30');
    const held = (await ctx.broker.getPositions()).find((p) => p.symbol === 'MSFT');
    expect(held?.qty).toBeGreaterThan(0);
    await runDay(s, '2021-03-31', '00:00', '09:12');
    const exit = (await ctx.store.listIntents('2021-03-31')).find((i) => i.purpose === 'exit');
    expect(exit).toMatchObject({ symbol: 'MSFT', side: 'sell', qty: held?.qty, status: 'recorded' });
    expect(exit?.timeInForce).toBe('opg');

    const result = await dailyLossFlatten(s, '2021-03-31', '09:12');
    // The recorded exit goes out at 09:15 and sells every share: no second sell of them.
    expect(result.exits).toEqual([]);
    expect(result.exitsAlreadyOpen).toEqual(['MSFT']);
    expect(s.notifier.sent.at(-1)?.text).toContain('exits already on their way for MSFT');
    expect(await ctx.store.getIntent('2021-03-31', id(ctx, 'MSFT', '2021-03-31', 'flatten'))).toBeUndefined();

    await runDay(s, '2021-03-31', '09:12');
    expect(await ctx.broker.getPositions()).toEqual([]);
    const sells = await msftSales(ctx);
    expect(sells.map((o) => [o.clientOrderId, o.filledQty])).toEqual([[exit?.clientOrderId, held?.qty]]);
  });

  it.each(['working', 'cancelled unfilled'] as const)(
    "the kill switch's flatten at 09:05 (%s), then the signals' exit of the same shares: sold once, never short",
    async (flattenState) => {
      const { s, ctx, held } = await msftHeldInto0905();

      const result = await dailyLossFlatten(s, '2021-03-31', '09:05');
      const flattenId = id(ctx, 'MSFT', '2021-03-31', 'flatten');
      expect(result.exits).toEqual([flattenId]);
      const flatten = await ctx.broker.getOrderByClientOrderId(flattenId);
      expect(flatten).toMatchObject({ qty: held, filledQty: 0 });
      if (flattenState === 'cancelled unfilled') await ctx.broker.cancelOrder(flatten?.id as string);

      // 09:10 the strategy decides its exit of MSFT (as it does on this day), 09:15 it goes out.
      await runDay(s, '2021-03-31', '09:05', '09:12');
      // A rerun of the step (a retry) finds its exit recorded: it stays as it is.
      s.alpaca.setTime(at('2021-03-31', '09:12'));
      await generateSignals(ctx, at('2021-03-31', '09:12'));
      await runDay(s, '2021-03-31', '09:12', '10:00');
      expect((await ctx.broker.getPositions()).find((p) => p.symbol === 'MSFT')).toBeUndefined();
      const sold = await msftSales(ctx);
      const exitId = id(ctx, 'MSFT', '2021-03-31', 'exit');
      const exit = await ctx.store.getIntent('2021-03-31', exitId);
      if (flattenState === 'working') {
        // The flatten sells every share; the exit is recorded skipped (taken over), never sent.
        expect(sold.map((o) => [o.clientOrderId, o.filledQty])).toEqual([[flattenId, held]]);
        expect(exit).toMatchObject({ purpose: 'exit', status: 'skipped', filledQty: 0 });
        expect(exit?.reason).toContain(flattenId);
        expect(await ctx.broker.getOrderByClientOrderId(exitId)).toBeNull();
        expect(
          s.notifier.sent.filter((m) => m.subject === "Exits taken over by the day's exits on 2021-03-31"),
        ).toHaveLength(1);
      } else {
        // A flatten cancelled unfilled sells nothing: the exit sells every share at the open.
        expect(sold.map((o) => [o.clientOrderId, o.filledQty])).toEqual([[exitId, held]]);
        expect(exit).toMatchObject({ status: 'filled', qty: held });
      }
      // The rest of the day books one sale of every share: no difference, nothing unassigned.
      await runDay(s, '2021-03-31', '10:00');
      await expectFlatAndReconciled(s);
    },
  );

  it("the kill switch's flatten that took over the day's exit ends unfilled: each risk check sends it again while the kill switch is on (alerted), until the shares are sold", async () => {
    const { s, ctx, held } = await msftHeldInto0905();
    await dailyLossFlatten(s, '2021-03-31', '09:05');
    const flattenId = id(ctx, 'MSFT', '2021-03-31', 'flatten');
    // 09:10 the signals' exit of MSFT is taken over by the flatten (skipped), 09:15 sends nothing.
    await runDay(s, '2021-03-31', '09:05', '09:30');
    const exitId = id(ctx, 'MSFT', '2021-03-31', 'exit');
    expect(await ctx.store.getIntent('2021-03-31', exitId)).toMatchObject({ status: 'skipped' });
    // 09:20 the broker ends the flatten unfilled (cancelled; a reject or an expiry is the same).
    await brokerCancels(s, at('2021-03-31', '09:20'), flattenId);
    const alerts = s.notifier.sent.length;

    // 09:45: the kill switch is on and its flatten sold nothing: sent again (half fills at once).
    s.alpaca.setPartialFill({ MSFT: 0.5 });
    s.alpaca.setTime(at('2021-03-31', '09:45'));
    const first = await riskCheck(ctx, at('2021-03-31', '09:45'));
    s.alpaca.setPartialFill(undefined);
    const again = `${flattenId}-2`;
    expect(first.exits).toEqual([again]);
    const partly = await ctx.broker.getOrderByClientOrderId(again);
    expect(partly).toMatchObject({ side: 'sell', qty: held });
    const sold = partly?.filledQty ?? 0;
    expect(sold).toBeGreaterThan(0);
    expect(sold).toBeLessThan(held);
    const resent = s.notifier.sent
      .slice(alerts)
      .filter((n) => n.subject === 'Kill switch flatten sent again: MSFT');
    expect(resent).toHaveLength(1);
    expect(resent[0]).toMatchObject({ severity: 'critical' });
    expect(resent[0]?.text).toContain(`${flattenId} (cancelled)`);
    // A second check while it works sends nothing more.
    s.alpaca.setTime(at('2021-03-31', '10:00'));
    expect((await riskCheck(ctx, at('2021-03-31', '10:00'))).exits).toEqual([]);
    // 10:05 its rest is cancelled too: 12:00 sends the rest under the next id.
    s.alpaca.setTime(at('2021-03-31', '10:05'));
    await ctx.broker.cancelOrder(partly?.id as string);
    await runDay(s, '2021-03-31', '10:00', '12:01');
    expect(await ctx.store.getIntent('2021-03-31', `${flattenId}-3`)).toMatchObject({
      qty: held - sold,
      status: 'filled',
    });
    expect((await ctx.broker.getPositions()).find((p) => p.symbol === 'MSFT')).toBeUndefined();
    expect(
      s.notifier.sent.slice(alerts).filter((n) => n.subject === 'Kill switch flatten sent again: MSFT'),
    ).toHaveLength(2);
    // The rest of the day books every share sold once: no difference, nothing unassigned.
    await runDay(s, '2021-03-31', '12:01');
    await expectFlatAndReconciled(s);
  });

  it("the kill switch's flatten refused by the broker when sent (its reason replaced by the broker's): the next risk check sends it again", async () => {
    const { s, ctx, held, halted, flattenId } = await msftFlattenRefusedAt1000();
    expect(held).toBeGreaterThan(0);
    // Said as refused, not as an exit on its way.
    expect(halted).toMatchObject({ exits: [], exitsAlreadyOpen: [], exitsUnfilled: [flattenId] });
    expect(s.notifier.sent.at(-1)?.text).toContain(
      `ended unfilled by the broker (the next risk check sends them again while halted): ${flattenId}`,
    );
    const refused = await ctx.store.getIntent('2021-03-30', flattenId);
    expect(refused).toMatchObject({ status: 'rejected', killSwitchFlatten: halted.killSwitch?.since });
    expect(refused?.reason).not.toContain('kill switch');

    await expectSentAgainBy(s, '2021-03-30', '10:00', '12:01', '12:00', flattenId, {
      qty: held,
      status: 'filled',
      killSwitchFlatten: halted.killSwitch?.since,
    });
    expect(s.notifier.sent.filter((n) => n.subject === 'Kill switch flatten sent again: MSFT')).toHaveLength(
      1,
    );
    await runDay(s, '2021-03-30', '12:01');
    await expectFlatAndReconciled(s);
  });

  it('a flatten refused, then a resume keeping the positions, then a plain halt the same day: nothing is sent again', async () => {
    const { s, ctx, held, halted, flattenId } = await msftFlattenRefusedAt1000();
    expect(held).toBeGreaterThan(0);
    expect(halted.exitsUnfilled).toEqual([flattenId]);
    // The flatten is stamped with the halt it belongs to.
    expect((await ctx.store.getIntent('2021-03-30', flattenId))?.killSwitchFlatten).toBe(
      halted.killSwitch?.since,
    );
    // The operator calls the flatten off: resume, keeping the positions.
    await resumeTrading(ctx.store, { reason: 'alarm explained', by: 'ops', time: at('2021-03-30', '10:15') });
    // 11:00 a plain halt (entries only, positions kept).
    await haltTrading(ctx.store, { reason: 'news pending', by: 'ops', time: at('2021-03-30', '11:00') });
    const result = await runDay(s, '2021-03-30', '11:00', '12:01');
    expect((result.get('12:00') as { exits: string[] }).exits).toEqual([]);
    expect(await ctx.store.getIntent('2021-03-30', `${flattenId}-2`)).toBeUndefined();
    expect((await ctx.broker.getPositions()).find((p) => p.symbol === 'MSFT')?.qty).toBe(held);
    expect(s.notifier.sent.filter((n) => n.subject.startsWith('Kill switch flatten sent again'))).toEqual([]);
    // A resume, then the kill switch with flatten again: the spent flatten is this halt's now, sent again.
    await resumeTrading(ctx.store, { reason: 'news out', by: 'ops', time: at('2021-03-30', '12:30') });
    const again = await dailyLossFlatten(s, '2021-03-30', '13:00');
    expect(again.exitsUnfilled).toEqual([flattenId]);
    expect((await ctx.store.getIntent('2021-03-30', flattenId))?.killSwitchFlatten).toBe(
      again.killSwitch?.since,
    );
    await expectSentAgainBy(s, '2021-03-30', '13:00', '16:00', '15:45', flattenId, {
      qty: held,
      status: 'filled',
      killSwitchFlatten: again.killSwitch?.since,
    });
  });

  it("the kill switch's flatten and its re-sends ended unfilled all day (the symbol not tradable): the next day's first risk check sends a flatten under that day's id, alerted once; the account flat", async () => {
    // 2021-04-01: MSFT bought at the open; 10:00 the kill switch with flatten, its flatten refused.
    const { s, ctx, held, halted, flattenId } = await msftFlattenRefusedAt1000('2021-04-01');
    expect(held).toBeGreaterThan(0);
    expect(halted.killSwitch).toMatchObject({ flatten: true });
    // The broker refuses the day's re-sends too (12:00 and 15:45): MSFT is still held at the close.
    s.alpaca.injectFaults({ ...NOT_TRADABLE, times: 2 });
    await runDay(s, '2021-04-01', '10:00');
    expect(await ctx.store.getIntent('2021-04-01', `${flattenId}-3`)).toMatchObject({ status: 'rejected' });
    expect((await ctx.broker.getPositions()).find((p) => p.symbol === 'MSFT')?.qty).toBe(held);
    s.alpaca.clearFaults();
    const alerts = s.notifier.sent.length;

    // 2021-04-05 (04-02 closed): the kill switch is still on; its first risk check flattens MSFT.
    const day = await runDay(s, '2021-04-05', '00:00', '10:00');
    const next = id(ctx, 'MSFT', '2021-04-05', 'flatten');
    expect((day.get('09:45') as { exits: string[] }).exits).toEqual([next]);
    expect(await ctx.store.getIntent('2021-04-05', next)).toMatchObject({
      qty: held,
      status: 'filled',
      killSwitchFlatten: halted.killSwitch?.since,
    });
    expect(
      s.notifier.sent.slice(alerts).filter((n) => n.subject === 'Kill switch flatten sent: MSFT'),
    ).toMatchObject([{ severity: 'critical' }]);
    await runDay(s, '2021-04-05', '10:00');
    await expectFlatAndReconciled(s);
  });

  it("the signals' market-on-open exit of the whole position (so no flatten recorded at 09:12) cancelled by the broker before the open: the next risk check flattens, alerted once; the account flat", async () => {
    const { s, ctx, held, halted, exitId } = await msftExitCancelledAfterHaltAt0912('flatten');
    expect(halted?.exits).toEqual([]);
    expect(halted?.killSwitch).toMatchObject({ flatten: true });
    const alerts = s.notifier.sent.length;
    const day = await runDay(s, '2021-03-31', '09:20', '10:00');
    const flattenId = id(ctx, 'MSFT', '2021-03-31', 'flatten');
    expect((day.get('09:45') as { exits: string[] }).exits).toEqual([flattenId]);
    expect(await ctx.store.getIntent('2021-03-31', exitId)).toMatchObject({
      status: 'cancelled',
      filledQty: 0,
    });
    expect(await ctx.store.getIntent('2021-03-31', flattenId)).toMatchObject({
      qty: held,
      status: 'filled',
      killSwitchFlatten: halted?.killSwitch?.since,
    });
    expect(
      s.notifier.sent.slice(alerts).filter((n) => n.subject === 'Kill switch flatten sent: MSFT'),
    ).toMatchObject([{ severity: 'critical' }]);
    // A later check sends nothing more.
    expect((await runDay(s, '2021-03-31', '10:00', '12:01')).get('12:00')).toMatchObject({ exits: [] });
    await runDay(s, '2021-03-31', '12:01');
    await expectFlatAndReconciled(s);
  });

  it("under the kill switch that flattened, the day's flatten recorded by a check that died, then 3 sold by hand: superseded (skipped), the rest sent as -2, alerted once; never short", async () => {
    const { s, ctx, held, halted, flattenId } = await msftFlattenStaleAt0940();
    const alerts = s.notifier.sent.length;
    const day = await runDay(s, '2021-03-31', '09:40', '10:00');
    expect((day.get('09:45') as { exits: string[] }).exits).toEqual([`${flattenId}-2`]);
    expect(await ctx.store.getIntent('2021-03-31', flattenId)).toMatchObject({
      status: 'skipped',
      reason: expect.stringContaining('superseded'),
    });
    expect(await ctx.store.getIntent('2021-03-31', `${flattenId}-2`)).toMatchObject({
      qty: held - 3,
      status: 'filled',
      killSwitchFlatten: halted?.killSwitch?.since,
    });
    expect(
      s.notifier.sent.slice(alerts).filter((n) => n.subject === 'Kill switch flatten sent: MSFT'),
    ).toHaveLength(1);
    expect((await ctx.broker.getPositions()).find((p) => p.symbol === 'MSFT')).toBeUndefined();
  });

  it("a re-run of the kill-switch function finds the day's flatten recorded by a run that died before sending it, for more than is held (3 sold by hand since): it sends nothing (listed, alerted), the 09:45 check supersedes it past the lease; never short", async () => {
    const { s, ctx, held, flattenId } = await msftFlattenStaleAt0940();
    const alerts = s.notifier.sent.length;
    const again = await killSwitch(ctx, dailyLossInput('2021-03-31', '09:40'));
    expect(again).toMatchObject({ exits: [], flattenStale: [flattenId] });
    expect(await ctx.store.getIntent('2021-03-31', flattenId)).toMatchObject({
      status: 'recorded',
      qty: held,
    });
    expect((await msftSales(ctx)).map((o) => [o.clientOrderId, o.filledQty])).toEqual([
      ['desk-manual-sell', 3],
    ]);
    expect(
      s.notifier.sent
        .slice(alerts)
        .filter((n) => n.text?.includes(`recorded for more than is held: ${flattenId}`)),
    ).toHaveLength(1);
    const day = await runDay(s, '2021-03-31', '09:40', '10:00');
    expect((day.get('09:45') as { exits: string[] }).exits).toEqual([`${flattenId}-2`]);
    expect(await ctx.store.getIntent('2021-03-31', flattenId)).toMatchObject({ status: 'skipped' });
    expect((await ctx.broker.getPositions()).find((p) => p.symbol === 'MSFT')).toBeUndefined();
  });

  it("under the kill switch that flattened, the day's flatten recorded by a run still sending it (09:44 on the broker's clock), then 3 sold by hand: the 09:45 check, inside the senders' lease, sends nothing; the run's send lands, no second sale", async () => {
    const { s, ctx, held, halted } = await msftExitCancelledAfterHaltAt0912('flatten');
    expect(held).toBeGreaterThan(3);
    const flattenId = id(ctx, 'MSFT', '2021-03-31', 'flatten');
    // 09:44 a run (the kill-switch function invoked again, a risk check) records the flatten of every
    // share; its broker lookup and POST are still to come. 09:44 too: 3 sold by hand.
    const sending = await flattenRecordedAt(ctx, '09:44', halted?.killSwitch?.since);
    s.alpaca.setTime(at('2021-03-31', '09:44'));
    await soldByHand(s, 'MSFT', 3);
    const day = await runDay(s, '2021-03-31', '09:44', '10:00');
    // 88 recorded, 85 left: not sent under its id (more than is left), not superseded (its sender may
    // be on its way): nothing this check.
    expect((day.get('09:45') as { exits: string[] }).exits).toEqual([]);
    expect(await ctx.store.getIntent('2021-03-31', flattenId)).toMatchObject({
      status: 'recorded',
      qty: held,
    });
    expect(await ctx.store.getIntent('2021-03-31', `${flattenId}-2`)).toBeUndefined();
    // The first run's POST lands (placeIntentOnce sends a recorded intent with no status re-check).
    const sent = await sendRecordedIntent(ctx, sending, at('2021-03-31', '09:46'));
    expect(sent).toMatchObject({ status: 'filled', filledQty: held });
    // One flatten sold: the hand sale raced it (its 3 are the run's short), the risk check added none.
    expect((await msftSales(ctx)).map((o) => [o.clientOrderId, o.filledQty])).toEqual([
      ['desk-manual-sell', 3],
      [flattenId, held],
    ]);
  });

  it("the kill switch invoked again finds the day's flatten recorded (not sent) for more than is left after a sale by hand: it sends none of it (never the stale quantity); the next risk check supersedes it past the lease; flat, never short", async () => {
    const { s, ctx, held, halted } = await msftExitCancelledAfterHaltAt0912('flatten');
    expect(held).toBeGreaterThan(3);
    const flattenId = id(ctx, 'MSFT', '2021-03-31', 'flatten');
    // 09:35 a check recorded the flatten of every share and died before sending it; 09:40 3 sold by hand.
    await flattenRecordedAt(ctx, '09:35', halted?.killSwitch?.since);
    s.alpaca.setTime(at('2021-03-31', '09:40'));
    await soldByHand(s, 'MSFT', 3);
    // 09:41 the alarm's kill switch again.
    const again = await dailyLossFlatten(s, '2021-03-31', '09:41');
    expect(again.exits).toEqual([]);
    expect((await msftSales(ctx)).map((o) => [o.clientOrderId, o.filledQty])).toEqual([
      ['desk-manual-sell', 3],
    ]);
    const day = await runDay(s, '2021-03-31', '09:41', '10:00');
    expect((day.get('09:45') as { exits: string[] }).exits).toEqual([`${flattenId}-2`]);
    expect((await msftSales(ctx)).map((o) => [o.clientOrderId, o.filledQty])).toEqual([
      ['desk-manual-sell', 3],
      [`${flattenId}-2`, held - 3],
    ]);
    expect((await ctx.broker.getPositions()).find((p) => p.symbol === 'MSFT')).toBeUndefined();
  });

  it.each(['unknown', 'submitted'] as const)(
    "the kill switch's flatten not at the broker and left %s (its answer lost; a claimant that died): the next risk check sends it under its own id, the account flat",
    async (left) => {
      const day = '2021-03-30';
      const { s, ctx, held } = await msftHeldAt1000(day);
      expect(held).toBeGreaterThan(0);
      // 10:00 the flatten's POST is lost before the broker handles it; the lookup finds nothing.
      s.alpaca.setTime(at(day, '10:00'));
      s.alpaca.injectFaults({ kind: 'drop', when: 'before-handling', route: 'POST /v2/orders', times: 1 });
      const halted = await killSwitch(ctx, dailyLossInput(day, '10:00'));
      s.alpaca.clearFaults();
      const flattenId = id(ctx, 'MSFT', day, 'flatten');
      expect(halted.exits).toEqual([]);
      expect(await ctx.store.getIntent(day, flattenId)).toMatchObject({ status: 'unknown', qty: held });
      if (left === 'submitted')
        await ctx.store.transitionIntent(day, flattenId, ['unknown'], {
          status: 'submitted',
          claimedBy: 'a-run-that-died',
          updatedAt: at(day, '10:00'),
        });
      const result = await runDay(s, day, '10:00', '12:01');
      expect((result.get('12:00') as { exits: string[] }).exits).toEqual([flattenId]);
      expect(await ctx.store.getIntent(day, flattenId)).toMatchObject({ status: 'filled', filledQty: held });
      expect((await msftSales(ctx)).map((o) => [o.clientOrderId, o.filledQty])).toEqual([[flattenId, held]]);
      expect((await ctx.broker.getPositions()).find((p) => p.symbol === 'MSFT')).toBeUndefined();
    },
  );

  it.each(['every share', 'part of the shares'] as const)(
    "the kill switch's cancel of a resting stop refused because the stop sold %s after the positions were read: the flatten reads the position again and sells no share twice; never short",
    async (how) => {
      const day = '2021-03-30';
      const { s, ctx, held } = await msftHeldAt1000(day);
      expect(held).toBeGreaterThan(1);
      const resting = await msftRestingStop(ctx);
      expect(resting).toMatchObject({ qty: held, side: 'sell' });
      s.alpaca.setTime(at(day, '10:00'));
      // The stop sells between the kill switch's reads and its cancel, which the broker then refuses
      // (422: the order is done), as Alpaca does.
      const stopSold = how === 'every share' ? held : Math.floor(held / 2);
      const { broker, sold } = stopSellsBeforeItsCancel(ctx.broker, resting?.id as string, stopSold);
      const halted = await killSwitch({ ...ctx, broker }, dailyLossInput(day, '10:00'));
      expect(sold()).toBe(true);
      expect(halted.stopsCancelled).toEqual([]);
      const flattenId = id(ctx, 'MSFT', day, 'flatten');
      expect(halted.exits).toEqual(how === 'every share' ? [] : [flattenId]);
      expect((await msftSales(ctx)).map((o) => [o.clientOrderId, o.filledQty])).toEqual([
        ['desk-stop-fill', stopSold],
        ...(how === 'every share' ? [] : [[flattenId, held - stopSold]]),
      ]);
      expect((await ctx.broker.getPositions()).find((p) => p.symbol === 'MSFT')).toBeUndefined();
    },
  );

  it("the kill switch's cancel of a resting stop refused while the stop still works, the stop filling after the kill switch read the position again: the stops are looked up before the position is read; never short", async () => {
    const day = '2021-03-30';
    const { s, ctx, held } = await msftHeldAt1000(day);
    expect(held).toBeGreaterThan(1);
    const resting = await msftRestingStop(ctx);
    expect(resting).toMatchObject({ qty: held, side: 'sell' });
    s.alpaca.setTime(at(day, '10:00'));
    const { broker, sold } = stopFillsAtItsLookup(ctx.broker, resting?.clientOrderId as string, held);
    const halted = await killSwitch({ ...ctx, broker }, dailyLossInput(day, '10:00'));
    expect(sold()).toBe(true);
    expect(halted.stopsCancelled).toEqual([]);
    expect(halted.exits).toEqual([]);
    expect((await msftSales(ctx)).map((o) => [o.clientOrderId, o.filledQty])).toEqual([
      ['desk-stop-fill', held],
    ]);
    expect((await ctx.broker.getPositions()).find((p) => p.symbol === 'MSFT')).toBeUndefined();
  });

  it('two risk checks at once find the shares with no exit on their way under the kill switch that flattened: one flatten, alerted once; flat, never short', async () => {
    const { s, ctx, held } = await msftExitCancelledAfterHaltAt0912('flatten');
    s.alpaca.setTime(at('2021-03-31', '09:45'));
    const checks = await Promise.all([
      riskCheck(ctx, at('2021-03-31', '09:45')),
      riskCheck(ctx, at('2021-03-31', '09:45')),
    ]);
    const flattenId = id(ctx, 'MSFT', '2021-03-31', 'flatten');
    expect(checks.flatMap((c) => c.exits)).toContain(flattenId);
    expect(s.notifier.sent.filter((n) => n.subject === 'Kill switch flatten sent: MSFT')).toHaveLength(1);
    expect((await msftSales(ctx)).map((o) => [o.clientOrderId, o.filledQty])).toEqual([[flattenId, held]]);
    expect((await ctx.broker.getPositions()).find((p) => p.symbol === 'MSFT')).toBeUndefined();
  });

  it.each(['plain halt', 'resumed'] as const)(
    "the signals' market-on-open exit cancelled before the open after a %s: the risk check sends nothing, the shares keep their stop",
    async (how) => {
      const { s, ctx, held } = await msftExitCancelledAfterHaltAt0912(
        how === 'plain halt' ? 'plain' : 'flatten',
      );
      if (how === 'resumed')
        await resumeTrading(ctx.store, {
          reason: 'alarm explained',
          by: 'ops',
          time: at('2021-03-31', '09:40'),
        });
      const day = await runDay(s, '2021-03-31', '09:20', '12:01');
      for (const check of ['09:45', '12:00']) expect(day.get(check)).toMatchObject({ exits: [] });
      expect(
        await ctx.store.getIntent('2021-03-31', id(ctx, 'MSFT', '2021-03-31', 'flatten')),
      ).toBeUndefined();
      expect((await ctx.broker.getPositions()).find((p) => p.symbol === 'MSFT')?.qty).toBe(held);
      const stops = (await ctx.broker.listOrders({ status: 'open', symbols: ['MSFT'] })).filter(
        (o) => o.side === 'sell' && o.type === 'stop',
      );
      expect(stops.map((o) => o.qty)).toEqual([held]);
      expect(s.notifier.sent.filter((n) => n.subject.startsWith('Kill switch flatten sent'))).toEqual([]);
      if (how === 'plain halt') {
        // The kill switch with flatten finding the plain halt on marks that halt (not replaced) as flattening.
        const plain = (await ctx.store.getRiskState())?.state.killSwitch;
        expect(plain?.flatten).toBeUndefined();
        const flattened = await dailyLossFlatten(s, '2021-03-31', '12:30');
        expect(flattened.killSwitch).toEqual({ ...plain, flatten: true });
        expect((await ctx.store.getRiskState())?.state.killSwitch).toEqual({ ...plain, flatten: true });
      }
    },
  );

  it('a re-send recorded by a check that died, for more than is left after a sale by hand: superseded (skipped), the rest sent under the next number, alerted once; never short', async () => {
    const { s, ctx, held, halted, flattenId } = await msftFlattenRefusedAt1000();
    expect(held).toBeGreaterThan(3);
    expect(halted.exitsUnfilled).toEqual([flattenId]);
    // 10:15 a check recorded the re-send of every share and died before sending it.
    await storeResend(ctx, flattenId, '10:15', {
      status: 'recorded',
      qty: held,
      reason: `kill switch: flatten sent again (${flattenId} rejected)`,
    });
    // 10:30 3 shares sold by hand.
    s.alpaca.setTime(at('2021-03-30', '10:30'));
    await soldByHand(s, 'MSFT', 3);
    const alerts = s.notifier.sent.length;
    await expectResentAtNoonAndFlat(s, flattenId, 3, held - 3, true);
    expect(
      s.notifier.sent.slice(alerts).filter((n) => n.subject === 'Kill switch flatten sent again: MSFT'),
    ).toHaveLength(1);
  });

  it('a re-send recorded by a check that died, for FEWER shares than are left: sent under its own id (never superseded: its sender may be on its way), the rest by the next check under the next number; flat', async () => {
    const { s, ctx, held, flattenId } = await msftFlattenRefusedAt1000();
    expect(held).toBeGreaterThan(3);
    // 10:15 a check recorded the re-send of 3 shares fewer than are held and died before sending it.
    await storeResend(ctx, flattenId, '10:15', {
      status: 'recorded',
      qty: held - 3,
      reason: `kill switch: flatten sent again (${flattenId} rejected)`,
    });
    const result = await runDay(s, '2021-03-30', '10:30', '15:46');
    expect((result.get('12:00') as { exits: string[] }).exits).toEqual([`${flattenId}-2`]);
    expect((result.get('15:45') as { exits: string[] }).exits).toEqual([`${flattenId}-3`]);
    expect((await msftSales(ctx)).map((o) => [o.clientOrderId, o.filledQty])).toEqual([
      [`${flattenId}-2`, held - 3],
      [`${flattenId}-3`, 3],
    ]);
    expect((await ctx.broker.getPositions()).find((p) => p.symbol === 'MSFT')).toBeUndefined();
  });

  it('a re-send superseded (skipped) by a check that failed before recording the next: the next check sends the rest after the highest number', async () => {
    const { s, ctx, held, flattenId } = await msftFlattenRefusedAt1000();
    // 10:15 a check settled the stale re-send skipped and died (a broker error, a timeout) before `-3` existed.
    await storeResend(ctx, flattenId, '10:15', {
      status: 'skipped',
      qty: held + 5,
      reason: `superseded: recorded for ${held + 5}, ${held} left to sell; sent again as -3`,
    });
    await expectResentAtNoonAndFlat(s, flattenId, 3, held);
  });

  it('a kill switch with flatten finds the day\'s flatten spent with nothing working and none to send again (expired with no broker order id): not "on their way", alerted "Exit not sent"', async () => {
    const { s, ctx } = await startOn('2021-03-30');
    await runDay(s, '2021-03-30', '00:00', '10:00');
    const position = (await ctx.broker.getPositions()).find((p) => p.symbol === 'MSFT');
    const held = position?.qty ?? 0;
    expect(held).toBeGreaterThan(3);
    const flattenId = id(ctx, 'MSFT', '2021-03-30', 'flatten');
    // The day's flatten expired with no broker order id (its submit answer lost, the lookup found nothing).
    await ctx.store.createIntent(
      exitIntent(ctx, position as NonNullable<typeof position>, '2021-03-30', at('2021-03-30', '09:50'), {
        clientOrderId: flattenId,
        timeInForce: 'day',
        status: 'expired',
      }),
    );
    const halted = await dailyLossFlatten(s, '2021-03-30', '10:00');
    expect(halted).toMatchObject({
      exits: [],
      exitsAlreadyOpen: [],
      exitsUnfilled: [],
      flattenSpent: [flattenId],
    });
    expect(s.notifier.sent.filter((n) => n.subject === 'Exit not sent: MSFT')).toMatchObject([
      { severity: 'critical' },
    ]);
  });

  it('a kill switch with flatten after the last re-send filled short: the flatten is spent, nothing works; alerted "Exit not sent"', async () => {
    const { s, ctx, held, flattenId } = await msftFlattenRefusedAt1000();
    await storeResend(ctx, flattenId, '10:15', {
      status: 'filled',
      qty: held - 3,
      filledQty: held - 3,
    });
    const again = await dailyLossFlatten(s, '2021-03-30', '10:30');
    expect(again).toMatchObject({
      exits: [],
      exitsAlreadyOpen: [],
      exitsUnfilled: [],
      flattenSpent: [flattenId],
    });
    expect(s.notifier.sent.filter((n) => n.subject === 'Exit not sent: MSFT')).toHaveLength(1);
  });

  it("a resume, then a new kill switch with flatten while the old halt's re-send is recorded and not sent: the re-send is re-stamped with the new since, the next risk check sends it; flat", async () => {
    const { s, ctx, held, flattenId } = await msftFlattenRefusedAt1000();
    // 10:05 a check recorded the re-send of every share under the first halt and died before sending it.
    await storeResend(ctx, flattenId, '10:05', {
      status: 'recorded',
      qty: held,
      reason: `kill switch: flatten sent again (${flattenId} rejected)`,
    });
    await resumeTrading(ctx.store, { reason: 'alarm explained', by: 'ops', time: at('2021-03-30', '10:15') });
    const again = await dailyLossFlatten(s, '2021-03-30', '10:30');
    expect(again).toMatchObject({ exits: [], exitsAlreadyOpen: ['MSFT'] });
    expect((await ctx.store.getIntent('2021-03-30', `${flattenId}-2`))?.killSwitchFlatten).toBe(
      again.killSwitch?.since,
    );
    await expectResentAtNoonAndFlat(s, flattenId, 2, held);
  });

  it("a late kill switch (its alarm's time 10:30) re-stamping the old halt's re-send with its since never lowers the re-send's sender stamp (10:40 on the clock): its lease is not cut short (review kfix D)", async () => {
    const { s, ctx, held, flattenId } = await msftFlattenRefusedAt1000();
    await storeResend(ctx, flattenId, '10:05', {
      status: 'recorded',
      qty: held,
      updatedAt: at('2021-03-30', '10:40'),
      reason: `kill switch: flatten sent again (${flattenId} rejected)`,
    });
    await resumeTrading(ctx.store, { reason: 'alarm explained', by: 'ops', time: at('2021-03-30', '10:15') });
    const again = await dailyLossFlatten(s, '2021-03-30', '10:30');
    expect(await ctx.store.getIntent('2021-03-30', `${flattenId}-2`)).toMatchObject({
      killSwitchFlatten: again.killSwitch?.since,
      updatedAt: at('2021-03-30', '10:40'),
    });
  });

  it("a stale re-send settled by another writer between the check's read and its supersede (the race lost): the check sends nothing and cancels no stop", async () => {
    const { s, ctx, held, flattenId } = await msftFlattenRefusedAt1000();
    expect(held).toBeGreaterThan(3);
    // 10:05 a risk check that read MSFT before the halt places its stop after the kill switch's
    // cancels: it rests (the refused flatten sells nothing).
    s.alpaca.setTime(at('2021-03-30', '10:05'));
    const price = (await ctx.broker.getPositions()).find((p) => p.symbol === 'MSFT')?.currentPrice ?? 0;
    const stop = await placeStop(
      ctx,
      '2021-03-30',
      'MSFT',
      'sell',
      held,
      stopPrice(price * 0.9, 1),
      price,
      at('2021-03-30', '10:05'),
    );
    expect(stop.status).toBe('accepted');
    // 10:15 a check recorded the re-send of 3 shares more than are held and died before sending it.
    await storeResend(ctx, flattenId, '10:15', {
      status: 'recorded',
      qty: held + 3,
      reason: `kill switch: flatten sent again (${flattenId} rejected)`,
    });
    // Another check settles it between this check's read and its conditional write.
    const raced = anotherWriterSettlesFirst(ctx.store, `${flattenId}-2`, at('2021-03-30', '10:30'));
    s.alpaca.setTime(at('2021-03-30', '10:30'));
    const before = writes(s);
    const checked = await riskCheck(ctx, at('2021-03-30', '10:30'));
    expect(raced.mock.calls.filter(([, id]) => id === `${flattenId}-2`)).toHaveLength(1);
    raced.mockRestore();
    expect(checked.exits).toEqual([]);
    // Nothing sent, nothing cancelled: the stop rests on every share.
    expect(writes(s)).toBe(before);
    const open = await ctx.broker.listOrders({ status: 'open', symbols: ['MSFT'] });
    expect(open.map((o) => [o.clientOrderId, o.type, o.qty, o.filledQty])).toEqual([
      [stop.clientOrderId, 'stop', held, 0],
    ]);
    expect(await ctx.store.getIntent('2021-03-30', `${flattenId}-2`)).toMatchObject({
      status: 'skipped',
      settledBy: 'another-check',
    });
    expect(await ctx.store.getIntent('2021-03-30', `${flattenId}-3`)).toBeUndefined();
    expect((await ctx.broker.getPositions()).find((p) => p.symbol === 'MSFT')?.qty).toBe(held);
  });

  it("two risk checks at once find the kill switch's flatten refused: one re-send, alerted once", async () => {
    const { s, ctx } = await msftFlattenRefusedAt1000();
    s.alpaca.setTime(at('2021-03-30', '12:00'));
    await Promise.all([riskCheck(ctx, at('2021-03-30', '12:00')), riskCheck(ctx, at('2021-03-30', '12:00'))]);
    expect(s.notifier.sent.filter((n) => n.subject === 'Kill switch flatten sent again: MSFT')).toHaveLength(
      1,
    );
    expect((await ctx.broker.getPositions()).find((p) => p.symbol === 'MSFT')).toBeUndefined();
  });

  it("the kill switch finds the day's exit id held by a risk check's exit still working: it marks it as its flatten, so when it ends unfilled the next risk check sends it again", async () => {
    const { s, ctx } = await startOn('2021-03-30');
    await runDay(s, '2021-03-30', '00:00', '10:00');
    const position = (await ctx.broker.getPositions()).find((p) => p.symbol === 'MSFT');
    const held = position?.qty ?? 0;
    expect(held).toBeGreaterThan(0);
    // 10:00 an exit of MSFT under the day's exit id rests at the broker (a limit far above the price).
    s.alpaca.setTime(at('2021-03-30', '10:00'));
    const flattenId = id(ctx, 'MSFT', '2021-03-30', 'flatten');
    const limitPrice = Math.round((position?.currentPrice ?? 0) * 200) / 100;
    await ctx.store.createIntent(
      exitIntent(ctx, position as NonNullable<typeof position>, '2021-03-30', at('2021-03-30', '10:00'), {
        clientOrderId: flattenId,
        type: 'limit',
        limitPrice,
        timeInForce: 'day',
        status: 'accepted',
      }),
    );
    const resting = await ctx.broker.submitOrder({
      clientOrderId: flattenId,
      symbol: 'MSFT',
      side: 'sell',
      qty: held,
      type: 'limit',
      limitPrice,
      timeInForce: 'day',
    });
    const halted = await dailyLossFlatten(s, '2021-03-30', '10:30');
    expect(halted).toMatchObject({ exits: [], exitsAlreadyOpen: ['MSFT'] });
    expect((await ctx.store.getIntent('2021-03-30', flattenId))?.killSwitchFlatten).toBe(
      halted.killSwitch?.since,
    );
    // 10:45 the exit is cancelled unfilled: the 12:00 risk check sends the flatten again.
    s.alpaca.setTime(at('2021-03-30', '10:45'));
    await ctx.broker.cancelOrder(resting.id);
    await expectSentAgainBy(s, '2021-03-30', '10:45', '12:01', '12:00', flattenId, {
      qty: held,
      status: 'filled',
    });
    expect((await ctx.broker.getPositions()).find((p) => p.symbol === 'MSFT')).toBeUndefined();
  });

  it("the kill switch finds the day's exit id spent by a risk check's exit the broker refused: it takes it as its own flatten, which the next risk check sends again", async () => {
    const { s, ctx } = await startOn('2021-03-30');
    await runDay(s, '2021-03-30', '00:00', '10:00');
    const position = (await ctx.broker.getPositions()).find((p) => p.symbol === 'MSFT');
    expect(position?.qty).toBeGreaterThan(0);
    const held = position?.qty ?? 0;
    // 10:00 a risk check's market exit of MSFT (through its stop), refused by the broker.
    const flattenId = id(ctx, 'MSFT', '2021-03-30', 'flatten');
    await ctx.store.createIntent(
      exitIntent(ctx, position as NonNullable<typeof position>, '2021-03-30', at('2021-03-30', '10:00'), {
        clientOrderId: flattenId,
        timeInForce: 'day',
        status: 'rejected',
        reason: 'order rejected: symbol not tradable',
      }),
    );
    const halted = await dailyLossFlatten(s, '2021-03-30', '10:30');
    expect(halted).toMatchObject({ exits: [], exitsAlreadyOpen: [], exitsUnfilled: [flattenId] });
    expect(await ctx.store.getIntent('2021-03-30', flattenId)).toMatchObject({
      status: 'rejected',
      killSwitchFlatten: halted.killSwitch?.since,
    });

    await expectSentAgainBy(s, '2021-03-30', '10:30', '12:01', '12:00', flattenId, {
      qty: held,
      status: 'filled',
    });
    expect(await ctx.broker.getPositions()).toEqual([]);
  });

  it("a flatten after the day's exit filled part at the open and the broker cancelled its rest (the store still says accepted): the flatten sells what is left; never short", async () => {
    const { s, ctx, held } = await msftHeldInto0905();
    // 09:10 the strategy decides its exit of MSFT, 09:15 it goes out; half of it fills at the open.
    await runDay(s, '2021-03-31', '09:05', '09:30');
    const exitId = id(ctx, 'MSFT', '2021-03-31', 'exit');
    s.alpaca.setPartialFill({ MSFT: 0.5 });
    s.alpaca.setTime(at('2021-03-31', '09:31'));
    s.alpaca.setPartialFill(undefined);
    const exit = await ctx.broker.getOrderByClientOrderId(exitId);
    const sold = exit?.filledQty ?? 0;
    expect(sold).toBeGreaterThan(0);
    expect(sold).toBeLessThan(held);
    // 09:40 the broker cancels the rest; no risk check has tracked the exit since it was sent.
    s.alpaca.setTime(at('2021-03-31', '09:40'));
    await ctx.broker.cancelOrder(exit?.id as string);
    expect(await ctx.store.getIntent('2021-03-31', exitId)).toMatchObject({
      status: 'accepted',
      filledQty: 0,
    });

    const result = await dailyLossFlatten(s, '2021-03-31', '09:42');
    // The exit's unfilled rest sells nothing: the flatten sells every share left.
    const flattenId = id(ctx, 'MSFT', '2021-03-31', 'flatten');
    expect(result.exits).toEqual([flattenId]);
    expect(await ctx.store.getIntent('2021-03-31', flattenId)).toMatchObject({ qty: held - sold });
    expect((await ctx.broker.getPositions()).find((p) => p.symbol === 'MSFT')).toBeUndefined();
    await runDay(s, '2021-03-31', '09:45');
    await expectFlatAndReconciled(s);
  });

  it('an open sell placed by hand before the signals: their exit sells only what it leaves (warned), never short', async () => {
    const { s, ctx, held } = await msftHeldInto0905();
    expect(held).toBeGreaterThan(10);
    s.alpaca.setTime(at('2021-03-31', '09:05'));
    await soldByHand(s, 'MSFT', 10);
    // The signals' step reads the stored positions and the day's session once each: the exits'
    // check takes the ones the step read (it read each twice before).
    const latestReads = vi.spyOn(ctx.store, 'getLatestPositions');
    const sessionReads = vi.spyOn(ctx.store, 'getSession');
    await runDay(s, '2021-03-31', '09:05', '09:12');
    expect([latestReads.mock.calls.length, sessionReads.mock.calls.length]).toEqual([1, 1]);
    vi.restoreAllMocks();
    await runDay(s, '2021-03-31', '09:12', '10:00');
    const exitId = id(ctx, 'MSFT', '2021-03-31', 'exit');
    expect(await ctx.store.getIntent('2021-03-31', exitId)).toMatchObject({
      status: 'filled',
      qty: held - 10,
      filledQty: held - 10,
    });
    expect((await ctx.broker.getPositions()).find((p) => p.symbol === 'MSFT')).toBeUndefined();
    expect(
      s.notifier.sent.find((m) => m.subject === "Exits taken over by the day's exits on 2021-03-31")?.text,
    ).toContain(
      `${exitId}: sent for ${held - 10} share(s) (10 of its ${held} share(s) sold or selling by open orders)`,
    );
  });

  it.each(['recorded by reconcile --flatten', 'at the broker with no intent of today'])(
    "a flatten while the UNASSIGNED bucket's own flatten is queued (%s) sells all of the sleeve's shares",
    async (how) => {
      const { s, ctx } = await startOn('2021-04-01');
      await runDay(s, '2021-04-01', '00:00', '10:00');
      const sleeve = (await ctx.broker.getPositions()).find((p) => p.symbol === 'MSFT')?.qty ?? 0;
      expect(sleeve).toBeGreaterThan(0);
      s.alpaca.setTime(at('2021-04-01', '10:00'));
      await ctx.broker.submitOrder({
        clientOrderId: 'desk-manual-1',
        symbol: 'MSFT',
        side: 'buy',
        qty: 10,
        type: 'market',
        timeInForce: 'day',
      });
      await runDay(s, '2021-04-01', '10:00');
      expect((await ctx.broker.getPositions()).find((p) => p.symbol === 'MSFT')?.qty).toBe(sleeve + 10);

      s.alpaca.setTime(at('2021-04-05', '08:00'));
      const bucketId = clientOrderId({
        stage: ctx.stage,
        strategy: 'UNASSIGNED',
        symbol: 'MSFT',
        date: '2021-04-05',
        purpose: 'flatten',
      });
      if (how === 'recorded by reconcile --flatten') {
        const bucket = await flattenBucket(ctx, {
          symbol: 'MSFT',
          reason: 'not ours',
          by: 'bob',
          time: at('2021-04-05', '08:00'),
        });
        expect(bucket).toMatchObject({ clientOrderId: bucketId, qty: 10, intentStatus: 'accepted' });
      } else {
        const order = { symbol: 'MSFT', side: 'sell', qty: 10, type: 'market', timeInForce: 'day' } as const;
        await ctx.broker.submitOrder({ clientOrderId: bucketId, ...order });
        expect(await ctx.store.getIntent('2021-04-05', bucketId)).toBeUndefined();
      }
      const result = await dailyLossFlatten(s, '2021-04-05', '08:05');
      const flattenId = id(ctx, 'MSFT', '2021-04-05', 'flatten');
      expect(result.exits).toEqual([flattenId]);
      expect((await ctx.store.getIntent('2021-04-05', flattenId))?.qty).toBe(sleeve);

      await runDay(s, '2021-04-05');
      expect((await ctx.broker.getPositions()).find((p) => p.symbol === 'MSFT')).toBeUndefined();
      const sold = await msftSales(ctx);
      expect(sold.map((o) => [o.clientOrderId, o.filledQty]).sort()).toEqual(
        [
          [bucketId, 10],
          [flattenId, sleeve],
        ].sort(),
      );
    },
  );
});

/** The broker refusing an order: a 422 on POST /v2/orders, "symbol not tradable" (once unless `times`). */
const NOT_TRADABLE = {
  kind: 'status',
  status: 422,
  route: 'POST /v2/orders',
  message: 'order rejected: symbol not tradable',
} as const;

/**
 * Under the kill switch that flattened at 09:12 on 2021-03-31 (`msftExitCancelledAfterHaltAt0912`),
 * a check recorded the day's flatten of every MSFT share at 09:35 and died before sending it; at
 * 09:40 3 shares sold by hand: the stack, its context, the shares held before the sale, the halt's
 * result and the flatten's id.
 */
async function msftFlattenStaleAt0940() {
  const { s, ctx, held, halted } = await msftExitCancelledAfterHaltAt0912('flatten');
  expect(held).toBeGreaterThan(3);
  await flattenRecordedAt(ctx, '09:35', halted?.killSwitch?.since);
  s.alpaca.setTime(at('2021-03-31', '09:40'));
  await soldByHand(s, 'MSFT', 3);
  return { s, ctx, held, halted, flattenId: id(ctx, 'MSFT', '2021-03-31', 'flatten') };
}

/** MSFT bought on `day` and the day run to 10:00: the stack, its context and the MSFT shares held. */
async function msftHeldAt1000(day: string) {
  const { s, ctx } = await startOn(day);
  await runDay(s, day, '00:00', '10:00');
  const held = (await ctx.broker.getPositions()).find((p) => p.symbol === 'MSFT')?.qty ?? 0;
  return { s, ctx, held };
}

/** MSFT's resting stop at the broker (undefined: none). */
async function msftRestingStop(ctx: LiveContext) {
  return (await ctx.broker.listOrders({ status: 'open', symbols: ['MSFT'] })).find((o) => o.type === 'stop');
}

/**
 * MSFT bought on `day` (2021-03-30 by default) and the day run to 10:00; at 10:00 the broker
 * refuses the next order (422 on POST /v2/orders, "symbol not tradable") and the daily loss alarm's
 * kill switch with flatten is called, so its flatten of MSFT is refused: the stack (halted, MSFT
 * still held), its context, the MSFT shares held, the kill switch's result and the flatten's id.
 */
async function msftFlattenRefusedAt1000(day = '2021-03-30') {
  const { s, ctx, held } = await msftHeldAt1000(day);
  s.alpaca.setTime(at(day, '10:00'));
  s.alpaca.injectFaults(NOT_TRADABLE);
  const halted = await killSwitch(ctx, dailyLossInput(day, '10:00'));
  return { s, ctx, held, halted, flattenId: id(ctx, 'MSFT', day, 'flatten') };
}

/**
 * MSFT held into 2021-03-31, whose signals decide its market-on-open exit of every share at 09:10;
 * at 09:12 a halt (`flatten`: the daily loss alarm's kill switch with flatten, which records no
 * flatten, the exit selling every share; `plain`: `quantshift halt`); 09:15 the exit is sent, and
 * 09:20 the broker cancels it unfilled: the stack, its context, the shares, the halt and the exit's id.
 */
async function msftExitCancelledAfterHaltAt0912(halt: 'flatten' | 'plain') {
  const { s, ctx, held } = await msftHeldInto0905();
  await runDay(s, '2021-03-31', '09:05', '09:12');
  const exitId = id(ctx, 'MSFT', '2021-03-31', 'exit');
  expect(await ctx.store.getIntent('2021-03-31', exitId)).toMatchObject({ qty: held, status: 'recorded' });
  s.alpaca.setTime(at('2021-03-31', '09:12'));
  const halted = halt === 'flatten' ? await killSwitch(ctx, dailyLossInput('2021-03-31', '09:12')) : null;
  if (halt === 'plain')
    await haltTrading(ctx.store, { reason: 'news', by: 'ops', time: at('2021-03-31', '09:12') });
  await runDay(s, '2021-03-31', '09:12', '09:20');
  expect(await ctx.broker.getOrderByClientOrderId(exitId)).toMatchObject({ qty: held, filledQty: 0 });
  await brokerCancels(s, at('2021-03-31', '09:20'), exitId);
  return { s, ctx, held, halted, exitId };
}

/**
 * The day run from 10:30 to 12:01: the 12:00 risk check sends the flatten again as
 * `<flattenId>-<n>`, which fills for `qty` shares; MSFT is flat. With `superseded`, the stored
 * re-send before it (`-<n - 1>`) was settled skipped as superseded.
 */
async function expectResentAtNoonAndFlat(
  s: Awaited<ReturnType<typeof msftFlattenRefusedAt1000>>['s'],
  flattenId: string,
  n: number,
  qty: number,
  superseded = false,
) {
  const result = await runDay(s, '2021-03-30', '10:30', '12:01');
  expect((result.get('12:00') as { exits: string[] }).exits).toEqual([`${flattenId}-${n}`]);
  if (superseded)
    expect(await s.ctx.store.getIntent('2021-03-30', `${flattenId}-${n - 1}`)).toMatchObject({
      status: 'skipped',
      reason: expect.stringContaining('superseded'),
    });
  expect(await s.ctx.store.getIntent('2021-03-30', `${flattenId}-${n}`)).toMatchObject({
    qty,
    status: 'filled',
  });
  expect((await s.ctx.broker.getPositions()).find((p) => p.symbol === 'MSFT')).toBeUndefined();
}

/**
 * A re-send `<flattenId>-2` stored on 2021-03-30 at `hhmm` as a risk check would have left it (the
 * refused day flatten's record with `fields` over it), without sending anything.
 */
async function storeResend(
  ctx: Awaited<ReturnType<typeof msftFlattenRefusedAt1000>>['ctx'],
  flattenId: string,
  hhmm: string,
  fields: Partial<IntentRecord>,
) {
  const refused = (await ctx.store.getIntent('2021-03-30', flattenId)) as IntentRecord;
  await ctx.store.createIntent({
    ...refused,
    clientOrderId: `${flattenId}-2`,
    createdAt: at('2021-03-30', hhmm),
    updatedAt: at('2021-03-30', hhmm),
    ...fields,
  });
}

/**
 * `broker` with the race of a resting stop that fills after the kill switch read the orders and the
 * positions: when the stop `stopId` is to be cancelled, `qty` shares are sold at the market first
 * (by hand, under `desk-stop-fill`, standing in for the stop's fill: the paper broker's price does
 * not move within a session), the stop itself is taken off, and the cancel is refused (422: the
 * order is done). `sold()`: whether that happened.
 */
function stopSellsBeforeItsCancel(broker: LiveContext['broker'], stopId: string, qty: number) {
  let done = false;
  const proxied = new Proxy(broker, {
    get(target, property, receiver) {
      if (property === 'cancelOrder')
        return async (orderId: string) => {
          if (orderId !== stopId || done) return target.cancelOrder(orderId);
          done = true;
          const stop = await target.getOrderByClientOrderId(
            (await target.listOrders({ status: 'open' })).find((o) => o.id === stopId)?.clientOrderId ?? '',
          );
          await target.submitOrder({
            clientOrderId: 'desk-stop-fill',
            symbol: stop?.symbol ?? 'MSFT',
            side: 'sell',
            qty,
            type: 'market',
            timeInForce: 'day',
          });
          await target.cancelOrder(orderId);
          throw new BrokerRejectedError('order is already in "filled" state', 422, 42210000);
        };
      const value = Reflect.get(target, property, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return { broker: proxied, sold: () => done };
}

/**
 * `broker` with the race of a resting stop that fills while the kill switch deals with its refused
 * cancel: the cancel of the stop (client order id `stopId`) is refused (422) with the stop still
 * working (it triggered: Alpaca refuses to cancel an order on its way); when the kill switch then
 * looks the stop up by its client order id, `qty` shares are sold at the market first (by hand,
 * under `desk-stop-fill`, standing in for the stop's fill) and the stop is taken off, so the lookup
 * finds it done. `sold()`: whether that happened.
 */
function stopFillsAtItsLookup(broker: LiveContext['broker'], stopId: string, qty: number) {
  let refused = false;
  let done = false;
  const proxied = new Proxy(broker, {
    get(target, property, receiver) {
      if (property === 'cancelOrder')
        return async (orderId: string) => {
          const stop = (await target.listOrders({ status: 'open' })).find((o) => o.id === orderId);
          if (stop?.clientOrderId !== stopId || refused) return target.cancelOrder(orderId);
          refused = true;
          throw new BrokerRejectedError('order is not cancelable: it is being filled', 422, 42210000);
        };
      if (property === 'getOrderByClientOrderId')
        return async (id: string) => {
          if (id === stopId && refused && !done) {
            done = true;
            const stop = await target.getOrderByClientOrderId(id);
            await target.submitOrder({
              clientOrderId: 'desk-stop-fill',
              symbol: stop?.symbol ?? 'MSFT',
              side: 'sell',
              qty,
              type: 'market',
              timeInForce: 'day',
            });
            await target.cancelOrder(stop?.id as string);
          }
          return target.getOrderByClientOrderId(id);
        };
      const value = Reflect.get(target, property, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return { broker: proxied, sold: () => done };
}

/**
 * The day's flatten of every MSFT share on 2021-03-31 recorded at `hhmm` (as the kill switch or a
 * risk check records it before its broker lookup and send), stamped with the halt's `since`; not
 * sent: the stored intent.
 */
async function flattenRecordedAt(ctx: LiveContext, hhmm: string, since: number | undefined) {
  const position = (await ctx.broker.getPositions()).find((p) => p.symbol === 'MSFT');
  const { intent } = await ctx.store.createIntent(
    exitIntent(ctx, position as NonNullable<typeof position>, '2021-03-31', at('2021-03-31', hhmm), {
      clientOrderId: id(ctx, 'MSFT', '2021-03-31', 'flatten'),
      timeInForce: 'day',
      ...(since === undefined ? {} : { killSwitchFlatten: since }),
    }),
  );
  return intent;
}

/**
 * MSFT bought on 2021-03-30 and held; 2021-03-31 run through its 09:05 steps (the signals not yet):
 * the stack, its context and the MSFT shares held.
 */
async function msftHeldInto0905() {
  const { s, ctx } = await startOn('2021-03-30');
  await runDay(s, '2021-03-30');
  const held = (await ctx.broker.getPositions()).find((p) => p.symbol === 'MSFT')?.qty ?? 0;
  expect(held).toBeGreaterThan(0);
  await runDay(s, '2021-03-31', '00:00', '09:05');
  return { s, ctx, held };
}
