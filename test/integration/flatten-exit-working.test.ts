import { afterEach, describe, expect, it } from 'vitest';
import { clientOrderId } from '../../shared/core/live/orders.js';
import type { LiveContext } from '../../shared/live/context.js';
import { riskCheck } from '../../shared/live/risk-check.js';
import { exitIntent, morningThroughFirstRiskCheck, startLiveStack } from '../helpers/live-stack.js';

// 2021-03-18, as in stop-withdraw-filled.test.ts: the strategy enters SPY (and others) at this open.
const DAY = '2021-03-18';
const at = (hhmm: string) =>
  `${DAY}T${String(Number(hhmm.slice(0, 2)) + 4).padStart(2, '0')}:${hhmm.slice(3)}:00.000Z`;

let stack: Awaited<ReturnType<typeof startLiveStack>> | undefined;
afterEach(async () => {
  await stack?.close();
  stack = undefined;
});

const idOf = (ctx: LiveContext, purpose: 'exit' | 'flatten') =>
  clientOrderId({ stage: 'paper', strategy: ctx.config.name, symbol: 'SPY', date: DAY, purpose });

/**
 * The morning on the local stack (paper broker over HTTP, dynalite, redis behind the Upstash
 * bridge): SPY bought at the open, its stop placed at 09:31; then the day's exit of `exitQty` SPY
 * is working at the broker (an order that has not filled: a limit far above the market, recorded
 * as the `exit` intent it is, accepted).
 */
async function exitWorking(exitQty: (held: number) => number) {
  stack = await startLiveStack({ startTime: at('08:00') });
  const s = stack;
  const { ctx } = s;
  const spy = await morningThroughFirstRiskCheck(s, at, 'SPY');
  const qty = exitQty(spy.qty);
  const exitId = idOf(ctx, 'exit');
  const order = await ctx.broker.submitOrder({
    clientOrderId: exitId,
    symbol: 'SPY',
    side: 'sell',
    qty,
    type: 'limit',
    timeInForce: 'day',
    limitPrice: Math.round(spy.currentPrice + 100),
  });
  await ctx.store.createIntent({
    clientOrderId: exitId,
    date: DAY,
    strategy: ctx.config.name,
    symbol: 'SPY',
    purpose: 'exit',
    side: 'sell',
    qty,
    type: 'limit',
    timeInForce: 'day',
    limitPrice: Math.round(spy.currentPrice + 100),
    referencePrice: spy.currentPrice,
    status: 'accepted',
    brokerOrderId: order.id,
    filledQty: 0,
    configHash: ctx.configHash,
    gitCommit: ctx.gitCommit,
    createdAt: at('09:40'),
    updatedAt: at('09:40'),
  });
  return { s, ctx, spy, exitId, exitQty: qty };
}

/** SPY's recorded stop moved above the market: the price is through it. */
async function stopAboveMarket(ctx: LiveContext, price: number) {
  const list = await ctx.store.getLatestPositions();
  if (list === undefined) throw new Error('expected a positions list');
  await ctx.store.putPositions(
    list.date,
    list.positions.map((p) => (p.symbol === 'SPY' ? { ...p, stop: price + 50 } : p)),
    list.writtenAt,
    list.bookedFills,
  );
}

async function spyOrders(ctx: LiveContext) {
  return ctx.broker.listOrders({ status: 'all', symbols: ['SPY'] });
}

describe("the risk check's market exit while the day's exit of the same shares is working", () => {
  it('a crossed stop while the day exit is working sends no second exit', async () => {
    const { s, ctx, spy, exitId } = await exitWorking((held) => held);
    await stopAboveMarket(ctx, spy.currentPrice);
    s.alpaca.setTime(at('09:45'));

    const result = await riskCheck(ctx, at('09:45'));

    expect(result.exits).toEqual([]);
    // No flatten intent: the day's exit id stays free should the working exit end without selling.
    expect(await ctx.store.getIntent(DAY, idOf(ctx, 'flatten'))).toBeUndefined();
    expect((await spyOrders(ctx)).filter((o) => o.type === 'market' && o.side === 'sell')).toEqual([]);
    // The shares are still held, the exit still works for all of them, and no stop rests to sell them twice.
    expect((await ctx.broker.getPositions()).find((p) => p.symbol === 'SPY')?.qty).toBe(spy.qty);
    const exit = await ctx.broker.getOrderByClientOrderId(exitId);
    expect(exit?.filledQty).toBe(0);
    expect(['new', 'accepted']).toContain(exit?.status);
    expect((await ctx.broker.listOrders({ status: 'open', symbols: ['SPY'] })).map((o) => o.type)).toEqual([
      'limit',
    ]);
    expect(s.notifier.sent.map((m) => m.subject)).not.toContain('Exit at market: SPY');

    // The exit ends without selling (cancelled): the next check sells the shares under the day's exit id.
    await ctx.broker.cancelOrder(exit?.id as string);
    s.alpaca.setTime(at('10:00'));
    const next = await riskCheck(ctx, at('10:00'));
    expect(next.exits).toEqual([idOf(ctx, 'flatten')]);
    expect((await ctx.store.getIntent(DAY, idOf(ctx, 'flatten')))?.qty).toBe(spy.qty);
    expect((await ctx.broker.getPositions()).find((p) => p.symbol === 'SPY')).toBeUndefined();
  });

  it('a crossed stop while a partial exit is working sells only the shares it leaves', async () => {
    const { s, ctx, spy, exitId, exitQty } = await exitWorking((held) => Math.floor(held / 3));
    await stopAboveMarket(ctx, spy.currentPrice);
    s.alpaca.setTime(at('09:45'));

    const result = await riskCheck(ctx, at('09:45'));

    expect(result.exits).toEqual([idOf(ctx, 'flatten')]);
    const flatten = await ctx.store.getIntent(DAY, idOf(ctx, 'flatten'));
    expect(flatten?.qty).toBe(spy.qty - exitQty);
    expect(flatten?.status).toBe('filled');
    // What is left is what the working exit sells: never short.
    expect((await ctx.broker.getPositions()).find((p) => p.symbol === 'SPY')?.qty).toBe(exitQty);
    expect((await ctx.broker.getOrderByClientOrderId(exitId))?.filledQty).toBe(0);
  });

  it('the daily-loss flatten while the day exit is working sends no second exit of those shares', async () => {
    const { s, ctx, spy, exitId } = await exitWorking((held) => held);
    const flattening: LiveContext = {
      ...ctx,
      config: { ...ctx.config, risk: { ...ctx.config.risk, flattenOnDailyLoss: true } },
    };
    // The day started with far more equity: the daily loss breaker trips at this check.
    const risk = await ctx.store.getRiskState();
    if (risk === undefined) throw new Error('expected a risk state');
    await ctx.store.putRiskState(
      { ...risk.state, day: DAY, dayStartEquity: risk.state.lastEquity * 2 },
      risk.version,
    );
    s.alpaca.setTime(at('09:45'));

    const result = await riskCheck(flattening, at('09:45'));

    expect(result.breakerTrips).toContain('daily-loss');
    // SPY (the only position) is left to the exit already selling its shares.
    expect(result.exits).toEqual([]);
    expect(await ctx.store.getIntent(DAY, idOf(ctx, 'flatten'))).toBeUndefined();
    expect((await ctx.broker.getPositions()).map((p) => [p.symbol, p.qty])).toEqual([['SPY', spy.qty]]);
    expect((await ctx.broker.getOrderByClientOrderId(exitId))?.filledQty).toBe(0);
  });

  it('an exit that can no longer be sent, or the flatten left recorded by a run that died, does not hold back the exit', async () => {
    stack = await startLiveStack({ startTime: at('08:00') });
    const s = stack;
    const { ctx } = s;
    const spy = await morningThroughFirstRiskCheck(s, at, 'SPY');
    // A market-on-open exit recorded and never sent (past 09:28 it never will be), and the day's
    // flatten recorded by a run that died before sending it: neither is at the broker.
    for (const [purpose, timeInForce] of [
      ['exit', 'opg'],
      ['flatten', 'day'],
    ] as const) {
      await ctx.store.createIntent(
        exitIntent(ctx, spy, DAY, at('09:10'), { clientOrderId: idOf(ctx, purpose), timeInForce }),
      );
    }
    await stopAboveMarket(ctx, spy.currentPrice);
    s.alpaca.setTime(at('09:45'));

    const result = await riskCheck(ctx, at('09:45'));

    // The recorded flatten is sent, once, as the crossed stop's exit.
    expect(result.exits).toEqual([idOf(ctx, 'flatten')]);
    expect((await ctx.store.getIntent(DAY, idOf(ctx, 'flatten')))?.status).toBe('filled');
    expect(await ctx.broker.getOrderByClientOrderId(idOf(ctx, 'exit'))).toBeNull();
    expect((await ctx.broker.getPositions()).find((p) => p.symbol === 'SPY')).toBeUndefined();
  });
});
