import { afterEach, describe, expect, it } from 'vitest';
import { clientOrderId } from '../../shared/core/live/orders.js';
import { initialRiskState, setKillSwitch } from '../../shared/core/risk/index.js';
import { endOfDay } from '../../shared/live/end-of-day.js';
import { executeOrders } from '../../shared/live/execute-orders.js';
import { generateSignals } from '../../shared/live/generate-signals.js';
import { marketOpenCheck } from '../../shared/live/market-open-check.js';
import { riskCheck } from '../../shared/live/risk-check.js';
import { startLiveStack } from '../helpers/live-stack.js';

// 2021-03-18 (New York is on daylight saving time: 09:00 = 13:00Z). The backtest of the same config
// enters SPY at this open with 53 shares (decided at the 2021-03-17 close on 100 000 of equity).
const DAY = '2021-03-18';
const at = (hhmm: string) =>
  `${DAY}T${String(Number(hhmm.slice(0, 2)) + 4).padStart(2, '0')}:${hhmm.slice(3)}:00.000Z`;

let stack: Awaited<ReturnType<typeof startLiveStack>> | undefined;
afterEach(async () => {
  await stack?.close();
  stack = undefined;
});

const postOrders = (s: NonNullable<typeof stack>) =>
  s.alpaca.requestLog.filter((r) => r.method === 'POST' && r.path === '/v2/orders');

describe('the live steps against the local stack', () => {
  it('decide at the previous close and send one market-on-open order per intent, exactly once', async () => {
    stack = await startLiveStack({ startTime: at('08:00') });
    const { ctx } = stack;
    const session = await marketOpenCheck(ctx, at('09:00'));
    expect(session).toMatchObject({
      date: DAY,
      isOpen: true,
      earlyClose: false,
      openAt: `${DAY}T13:30:00.000Z`,
    });

    const signals = await generateSignals(ctx, at('09:10'));
    const spy = signals.intents.find((i) => i.symbol === 'SPY');
    expect(spy).toMatchObject({
      purpose: 'entry',
      side: 'buy',
      qty: 53,
      type: 'market',
      timeInForce: 'opg',
      status: 'recorded',
    });
    expect(spy?.clientOrderId).toBe(
      clientOrderId({
        stage: 'paper',
        strategy: ctx.config.name,
        symbol: 'SPY',
        date: DAY,
        purpose: 'entry',
      }),
    );
    expect(spy?.protectiveStop).toBeLessThan(spy?.referencePrice as number);

    // A second signal run records nothing new.
    const again = await generateSignals(ctx, at('09:10'));
    expect(again.intents.map((i) => i.clientOrderId)).toEqual(signals.intents.map((i) => i.clientOrderId));

    // Ten concurrent executions send each intent once.
    await Promise.all(Array.from({ length: 10 }, () => executeOrders(ctx, at('09:15'))));
    expect(postOrders(stack)).toHaveLength(signals.intents.length);
    const stored = await ctx.store.getIntent(DAY, spy?.clientOrderId as string);
    expect(stored?.status).toBe('accepted');

    stack.alpaca.setTime(at('10:00'));
    const order = await ctx.broker.getOrderByClientOrderId(spy?.clientOrderId as string);
    expect(order).toMatchObject({ status: 'filled', filledQty: 53, timeInForce: 'opg' });
    const positions = await ctx.broker.getPositions();
    expect(positions.find((p) => p.symbol === 'SPY')?.qty).toBe(53);

    // After the open, the risk check places each new position's protective stop, once.
    const check = await riskCheck(ctx, at('10:00'));
    expect(check.status).toBe('checked');
    expect(check.stopsPlaced.length).toBe(signals.intents.length);
    const stops = (await ctx.broker.listOrders({ status: 'open' })).filter((o) => o.type === 'stop');
    const spyStop = stops.find((o) => o.symbol === 'SPY');
    expect(spyStop).toMatchObject({ side: 'sell', qty: 53, timeInForce: 'gtc' });
    expect(spyStop?.stopPrice).toBe(Math.floor((spy?.protectiveStop as number) * 100) / 100);
    await riskCheck(ctx, at('10:15'));
    expect((await ctx.broker.listOrders({ status: 'open' })).filter((o) => o.type === 'stop')).toHaveLength(
      stops.length,
    );
    const records = await ctx.store.getLatestPositions();
    expect(records?.positions.find((p) => p.symbol === 'SPY')).toMatchObject({
      qty: 53,
      stop: spy?.protectiveStop,
    });
    expect((await ctx.store.getIntent(DAY, spy?.clientOrderId as string))?.status).toBe('filled');

    // At the end of the day: the fills go to the ledger once, the equity snapshot and the report.
    stack.alpaca.setTime(at('16:15'));
    const report = await endOfDay(ctx, at('16:15'));
    if (!('date' in report)) throw new Error('expected a report');
    expect(report.fills.find((f) => f.symbol === 'SPY')).toMatchObject({
      side: 'buy',
      qty: 53,
      clientOrderId: spy?.clientOrderId,
    });
    expect(report.drift).toEqual([]);
    expect((await ctx.store.listFills(DAY)).length).toBe(report.fills.length);
    await endOfDay(ctx, at('16:15'));
    expect((await ctx.store.listFills(DAY)).length).toBe(report.fills.length);
    expect(stack.notifier.sent.some((n) => n.subject.startsWith(`Daily report ${DAY}`))).toBe(true);
    expect((await ctx.store.listEquitySnapshots(DAY, DAY))[0]?.equity).toBe(report.equity);
  });

  it('resolves a dropped connection after the broker accepted the order by asking for its client order id', async () => {
    stack = await startLiveStack({ startTime: at('08:00'), withCache: false });
    const { ctx } = stack;
    await marketOpenCheck(ctx, at('09:00'));
    const signals = await generateSignals(ctx, at('09:10'));
    stack.alpaca.injectFaults({ kind: 'drop', when: 'after-handling', route: 'POST /v2/orders', times: 10 });
    const result = await executeOrders(ctx, at('09:15'));
    expect(result.intents.every((i) => i.status === 'accepted')).toBe(true);
    expect(postOrders(stack)).toHaveLength(signals.intents.length);
    expect(postOrders(stack).every((r) => r.status === 0)).toBe(true); // every answer was dropped
    const open = await ctx.broker.listOrders({ status: 'all' });
    expect(open).toHaveLength(signals.intents.length);
  });

  it('skips market-on-open orders after the 09:28 cutoff and alerts, sending nothing', async () => {
    stack = await startLiveStack({ startTime: at('08:00'), withCache: false });
    const { ctx } = stack;
    await marketOpenCheck(ctx, at('09:00'));
    await generateSignals(ctx, at('09:10'));
    const result = await executeOrders(ctx, at('09:29'));
    expect(result.intents.length).toBeGreaterThan(0);
    expect(result.intents.every((i) => i.status === 'skipped')).toBe(true);
    expect(postOrders(stack)).toHaveLength(0);
    expect(stack.notifier.sent.some((n) => n.severity === 'critical' && /skipped/.test(n.subject))).toBe(
      true,
    );
  });

  it('a kill switch set in the store blocks every new entry from the next invocation on', async () => {
    stack = await startLiveStack({ startTime: at('08:00'), withCache: false });
    const { ctx } = stack;
    await marketOpenCheck(ctx, at('09:00'));
    const halted = setKillSwitch(
      initialRiskState(100_000),
      true,
      Date.parse(at('08:30')),
      'ops',
      'broker incident',
    );
    expect(await ctx.store.putRiskState(halted.state, 0)).toEqual({ version: 1 });
    const signals = await generateSignals(ctx, at('09:10'));
    expect(signals.intents.filter((i) => i.purpose === 'entry')).toEqual([]);
    expect(signals.decisions?.refused.map((r) => r.reason)).toContain('kill switch on (broker incident)');
    expect(stack.notifier.sent.some((n) => n.subject.startsWith('Entries refused'))).toBe(true);
  });

  it('does nothing on a closed day', async () => {
    stack = await startLiveStack({ startTime: '2021-04-02T12:00:00.000Z', withCache: false });
    const session = await marketOpenCheck(stack.ctx, '2021-04-02T13:00:00.000Z');
    expect(session.isOpen).toBe(false); // Good Friday
    expect((await generateSignals(stack.ctx, '2021-04-02T13:10:00.000Z')).status).toBe('closed');
    expect((await executeOrders(stack.ctx, '2021-04-02T13:15:00.000Z')).status).toBe('closed');
  });
});
