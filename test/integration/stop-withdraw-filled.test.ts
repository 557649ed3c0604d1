import { afterEach, describe, expect, it } from 'vitest';
import { clientOrderId } from '../../shared/core/live/orders.js';
import type { Broker } from '../../shared/core/ports/broker.js';
import { riskCheck } from '../../shared/live/risk-check.js';
import { placeStop } from '../../shared/live/stops.js';
import { exitIntent, morningThroughFirstRiskCheck, startLiveStack } from '../helpers/live-stack.js';

// 2021-03-18, as in stream-risk.test.ts: the strategy enters SPY (and others) at this open.
const DAY = '2021-03-18';
const at = (hhmm: string) =>
  `${DAY}T${String(Number(hhmm.slice(0, 2)) + 4).padStart(2, '0')}:${hhmm.slice(3)}:00.000Z`;

let stack: Awaited<ReturnType<typeof startLiveStack>> | undefined;
afterEach(async () => {
  await stack?.close();
  stack = undefined;
});

/**
 * The risk check's broker, with the race of issue 17 forced: before the re-check's cancel of the
 * SPY stop the check has just placed reaches the local paper broker, the market falls through that
 * stop (the paper clock moves past the session's close, whose range reaches it): the stop fills,
 * and the paper broker refuses the cancel (422, the order is filled), as Alpaca does.
 */
function stopFillsBeforeItsCancel(broker: Broker, fallThrough: () => void): Broker & { stopId(): string } {
  let stopId: string | undefined;
  return Object.assign(
    new Proxy(broker, {
      get(target, property, receiver) {
        if (property === 'submitOrder') {
          return async (order: Parameters<Broker['submitOrder']>[0]) => {
            const placed = await target.submitOrder(order);
            if (order.symbol === 'SPY' && order.type === 'stop') stopId = placed.id;
            return placed;
          };
        }
        if (property === 'cancelOrder') {
          return async (id: string) => {
            if (id === stopId) fallThrough();
            return target.cancelOrder(id);
          };
        }
        const value = Reflect.get(target, property, receiver);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    }),
    {
      stopId: () => {
        if (stopId === undefined) throw new Error('no SPY stop was placed');
        return stopId;
      },
    },
  );
}

describe("placeStop's re-check when the stop filled before it could be cancelled", () => {
  it('books the stop as filled and the risk check goes on, instead of failing on the refused cancel', async () => {
    stack = await startLiveStack({ startTime: at('08:00') });
    const { ctx } = stack;
    const spy = await morningThroughFirstRiskCheck(stack, at, 'SPY');
    // The stream's exit of SPY is under way: its intent is recorded, its order not sent yet.
    const exitId = clientOrderId({
      stage: 'paper',
      strategy: ctx.config.name,
      symbol: 'SPY',
      date: DAY,
      purpose: 'flatten',
    });
    await ctx.store.createIntent({
      clientOrderId: exitId,
      date: DAY,
      strategy: ctx.config.name,
      symbol: 'SPY',
      purpose: 'exit',
      side: 'sell',
      qty: spy.qty,
      type: 'market',
      timeInForce: 'day',
      referencePrice: spy.currentPrice,
      status: 'recorded',
      filledQty: 0,
      reason: 'stream: price through the stop',
      configHash: ctx.configHash,
      gitCommit: ctx.gitCommit,
      createdAt: at('09:40'),
      updatedAt: at('09:40'),
    });
    // A risk check that read SPY as held tightens its stop to 365.00: it replaces the resting one.
    // The session's last price (its open, 365.44) is above it, the day's low (364.76) below.
    const latest = await ctx.store.getLatestPositions();
    await ctx.store.putPositions(
      DAY,
      (latest?.positions ?? []).map((p) => (p.symbol === 'SPY' ? { ...p, stop: 365 } : p)),
    );
    const broker = stopFillsBeforeItsCancel(ctx.broker, () => stack?.alpaca.setTime(at('16:01')));

    const result = await riskCheck({ ...ctx, broker }, at('09:40'));

    expect(result.status).toBe('checked');
    const stop = (await ctx.store.listIntents(DAY)).find(
      (i) => i.purpose === 'stop' && i.symbol === 'SPY' && i.brokerOrderId === broker.stopId(),
    );
    expect(stop?.status).toBe('filled');
    expect(stop?.stopPrice).toBe(365);
    expect(stop?.filledQty).toBe(spy.qty);
    expect(stop?.avgFillPrice).toBeGreaterThan(0);
    expect(stop?.reason).toContain(exitId);
    expect(result.stopsPlaced).not.toContain(stop?.clientOrderId);
    // The position is sold by the stop; the alert says the exit may sell it again.
    expect((await ctx.broker.getPositions()).find((p) => p.symbol === 'SPY')).toBeUndefined();
    expect(stack.notifier.sent.map((m) => m.subject)).toContain('Stop filled during an exit: SPY');
    // The run went to its end (its summary is logged last) and left no stop resting.
    expect(stack.logs.filter((l) => l.startsWith('INFO risk check '))).toHaveLength(2);
    expect((await ctx.broker.listOrders({ status: 'open' })).filter((o) => o.type === 'stop')).toEqual([]);
  });
});

describe("the risk check when today's exit id is spent without selling", () => {
  it('a position through its stop whose flatten intent was skipped keeps its resting stop and is alerted, no exit sent', async () => {
    stack = await startLiveStack({ startTime: at('08:00') });
    const s = stack;
    const { ctx } = s;
    const spy = await morningThroughFirstRiskCheck(s, at, 'SPY');
    // The stream's exit of the day was skipped (its stop filled part of the shares first).
    const exitId = clientOrderId({
      stage: 'paper',
      strategy: ctx.config.name,
      symbol: 'SPY',
      date: DAY,
      purpose: 'flatten',
    });
    await ctx.store.createIntent({
      clientOrderId: exitId,
      date: DAY,
      strategy: ctx.config.name,
      symbol: 'SPY',
      purpose: 'exit',
      side: 'sell',
      qty: spy.qty,
      type: 'market',
      timeInForce: 'day',
      referencePrice: spy.currentPrice,
      status: 'skipped',
      filledQty: 0,
      reason: 'stream: not sent, the resting stop filled before it could be cancelled',
      configHash: ctx.configHash,
      gitCommit: ctx.gitCommit,
      createdAt: at('09:40'),
      updatedAt: at('09:40'),
    });
    // SPY's stop above the market: the price is through it.
    const list = await ctx.store.getLatestPositions();
    if (list === undefined) throw new Error('expected a positions list');
    await ctx.store.putPositions(
      list.date,
      list.positions.map((p) => (p.symbol === 'SPY' ? { ...p, stop: spy.currentPrice + 50 } : p)),
      list.writtenAt,
      list.bookedFills,
    );
    const restingBefore = (await ctx.broker.listOrders({ status: 'open', symbols: ['SPY'] })).map(
      (o) => o.id,
    );
    expect(restingBefore.length).toBeGreaterThan(0);
    s.alpaca.setTime(at('09:45'));
    await riskCheck(ctx, at('09:45'));
    const alerts = s.notifier.sent.filter((n) => n.subject === 'Exit not sent: SPY');
    expect(alerts).toHaveLength(1);
    expect(alerts[0]?.severity).toBe('critical');
    expect((await ctx.broker.listOrders({ status: 'open', symbols: ['SPY'] })).map((o) => o.id)).toEqual(
      restingBefore,
    );
    expect((await ctx.broker.getPositions()).find((p) => p.symbol === 'SPY')?.qty).toBe(spy.qty);
  });
});

describe('the risk check after a partial exit that is finished', () => {
  it('a market-on-open exit that sold part and was cancelled leaves the rest with a stop that rests', async () => {
    stack = await startLiveStack({ startTime: at('08:00') });
    const s = stack;
    const { ctx } = s;
    const spy = await morningThroughFirstRiskCheck(s, at, 'SPY');
    // The day's exit of every SPY share sold only part of them, and the rest of it was cancelled:
    // its order (the exit's id) sold `sold` shares; its intent is finished, `cancelled`.
    for (const order of await ctx.broker.listOrders({ status: 'open', symbols: ['SPY'] }))
      await ctx.broker.cancelOrder(order.id);
    const sold = Math.floor(spy.qty / 3);
    const exitId = clientOrderId({
      stage: 'paper',
      strategy: ctx.config.name,
      symbol: 'SPY',
      date: DAY,
      purpose: 'exit',
    });
    const order = await ctx.broker.submitOrder({
      clientOrderId: exitId,
      symbol: 'SPY',
      side: 'sell',
      qty: sold,
      type: 'market',
      timeInForce: 'day',
    });
    await ctx.store.createIntent({
      clientOrderId: exitId,
      date: DAY,
      strategy: ctx.config.name,
      symbol: 'SPY',
      purpose: 'exit',
      side: 'sell',
      qty: spy.qty,
      type: 'market',
      timeInForce: 'opg',
      referencePrice: spy.currentPrice,
      status: 'cancelled',
      brokerOrderId: order.id,
      filledQty: sold,
      avgFillPrice: spy.currentPrice,
      configHash: ctx.configHash,
      gitCommit: ctx.gitCommit,
      createdAt: at('09:15'),
      updatedAt: at('09:40'),
    });
    const left = spy.qty - sold;
    expect((await ctx.broker.getPositions()).find((p) => p.symbol === 'SPY')?.qty).toBe(left);

    s.alpaca.setTime(at('09:45'));
    const first = await riskCheck(ctx, at('09:45'));
    s.alpaca.setTime(at('10:00'));
    const second = await riskCheck(ctx, at('10:00'));

    // One stop for the shares left, placed once and resting: the finished exit sells nothing more.
    const stops = (await ctx.store.listIntents(DAY)).filter(
      (i) => i.purpose === 'stop' && i.symbol === 'SPY' && i.qty === left,
    );
    expect(stops).toHaveLength(1);
    expect(stops[0]?.status).toBe('accepted');
    expect(first.stopsPlaced).toEqual([stops[0]?.clientOrderId]);
    expect(second.stopsPlaced).toEqual([]);
    const resting = (await ctx.broker.listOrders({ status: 'open', symbols: ['SPY'] })).filter(
      (o) => o.type === 'stop',
    );
    expect(resting.map((o) => [o.clientOrderId, o.qty])).toEqual([[stops[0]?.clientOrderId, left]]);
    expect(
      s.logs.some((l) => l.includes('a stop placed during an exit of the same shares was cancelled')),
    ).toBe(false);
  });

  it('a market-on-open exit recorded and never sent (past 09:28 it never will be) leaves the stop resting', async () => {
    stack = await startLiveStack({ startTime: at('08:00') });
    const s = stack;
    const { ctx } = s;
    const spy = await morningThroughFirstRiskCheck(s, at, 'SPY');
    await ctx.store.createIntent(exitIntent(ctx, spy, DAY, at('09:10')));
    // A tighter stop (a risk check moving it): placed, and it rests.
    const placed = await placeStop(ctx, DAY, 'SPY', 'sell', spy.qty, 1, spy.currentPrice, at('09:45'));
    expect(placed.status).toBe('accepted');
    expect(
      (await ctx.broker.listOrders({ status: 'open', symbols: ['SPY'] })).map((o) => o.clientOrderId),
    ).toContain(placed.clientOrderId);
  });
});
