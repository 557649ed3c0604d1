import { afterEach, describe, expect, it } from 'vitest';
import { notionalCents } from '../../shared/core/ledger/money.js';
import { clientOrderId } from '../../shared/core/live/orders.js';
import type { ClosedTradeRecord } from '../../shared/core/ports/state-store.js';
import { initialRiskState, setKillSwitch } from '../../shared/core/risk/index.js';
import { endOfDay } from '../../shared/live/end-of-day.js';
import { executeOrders } from '../../shared/live/execute-orders.js';
import { generateSignals } from '../../shared/live/generate-signals.js';
import { marketOpenCheck } from '../../shared/live/market-open-check.js';
import { riskCheck } from '../../shared/live/risk-check.js';
import { postOrders, startLiveStack } from '../helpers/live-stack.js';

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
    const { ctx } = stack;
    const session = await marketOpenCheck(ctx, '2021-04-02T13:00:00.000Z');
    expect(session.isOpen).toBe(false); // Good Friday
    const requests = stack.alpaca.requestLog.length;
    expect((await generateSignals(ctx, '2021-04-02T13:10:00.000Z')).status).toBe('closed');
    expect((await executeOrders(ctx, '2021-04-02T13:15:00.000Z')).status).toBe('closed');
    stack.alpaca.setTime('2021-04-02T16:00:00.000Z');
    const check = await riskCheck(ctx, '2021-04-02T16:00:00.000Z');
    expect(check).toMatchObject({ status: 'closed', stopsPlaced: [], exits: [] });
    expect(check.reason).toMatch(/market is closed on 2021-04-02/);
    stack.alpaca.setTime('2021-04-02T20:15:00.000Z');
    expect(await endOfDay(ctx, '2021-04-02T20:15:00.000Z')).toEqual({ status: 'closed' });
    // Nothing asked of the broker, nothing written but the session record.
    expect(stack.alpaca.requestLog.length).toBe(requests);
    expect(await ctx.store.listIntents('2021-04-02')).toEqual([]);
    expect(await ctx.store.getLatestPositions()).toBeUndefined();
    expect(await ctx.store.getRiskState()).toBeUndefined();
    expect(await ctx.store.listEquitySnapshots('2021-04-02', '2021-04-02')).toEqual([]);
    expect(stack.notifier.sent).toEqual([]);
  });
});

describe('closed trades and the live Kelly cap', () => {
  const NEXT = '2021-03-19';
  const next = (hhmm: string) => at(hhmm).replace(DAY, NEXT);

  it('end-of-day records a closed round trip once, however often it runs', async () => {
    stack = await startLiveStack({ startTime: at('08:00'), withCache: false });
    const { ctx } = stack;
    // Day 1: SPY bought at the open (53 shares, as the backtest), its stop placed, the day closed.
    await marketOpenCheck(ctx, at('09:00'));
    await generateSignals(ctx, at('09:10'));
    await executeOrders(ctx, at('09:15'));
    stack.alpaca.setTime(at('10:00'));
    await riskCheck(ctx, at('10:00'));
    stack.alpaca.setTime(at('16:15'));
    const day1 = await endOfDay(ctx, at('16:15'));
    if (!('date' in day1)) throw new Error('expected a report');
    expect(day1.closedTrades).toEqual([]);
    expect(day1.positions.find((p) => p.symbol === 'SPY')).toMatchObject({ qty: 53, entryDate: DAY });
    const entry = (await ctx.store.listFills(DAY)).find((f) => f.symbol === 'SPY');
    if (entry === undefined) throw new Error('expected the SPY entry fill');

    // Day 2: the recorded stop is raised above the market, so the risk check exits SPY at market.
    stack.alpaca.setTime(next('08:00'));
    await marketOpenCheck(ctx, next('09:00'));
    const held = await ctx.store.getLatestPositions();
    await ctx.store.putPositions(
      NEXT,
      (held?.positions ?? []).map((p) => (p.symbol === 'SPY' ? { ...p, stop: entry.price * 1.09 } : p)),
    );
    stack.alpaca.setTime(next('10:00'));
    const check = await riskCheck(ctx, next('10:00'));
    expect(check.exits).toHaveLength(1);
    stack.alpaca.setTime(next('16:15'));
    const report = await endOfDay(ctx, next('16:15'));
    if (!('date' in report)) throw new Error('expected a report');
    const exit = (await ctx.store.listFills(NEXT)).find((f) => f.symbol === 'SPY' && f.side === 'sell');
    if (exit === undefined) throw new Error('expected the SPY exit fill');
    const expected: ClosedTradeRecord = {
      strategy: ctx.config.name,
      symbol: 'SPY',
      side: 'long',
      qty: 53,
      entryDate: DAY,
      exitDate: NEXT,
      exitTime: exit.time,
      entryPrice: entry.price,
      exitPrice: exit.price,
      // The backtest's P&L: exit notional − entry notional, each rounded to the cent (no commission).
      pnlCents: notionalCents(53, exit.price) - notionalCents(53, entry.price),
      exitExecutionId: exit.executionId,
      recordedAt: next('16:15'),
    };
    expect(report.closedTrades).toEqual([expected]);
    expect(report.drift).toEqual([]);
    expect(report.positions.some((p) => p.symbol === 'SPY')).toBe(false);

    // A retried end-of-day (same scheduled time) and a later rerun record nothing more.
    const retry = await endOfDay(ctx, next('16:15'));
    if (!('date' in retry)) throw new Error('expected a report');
    expect(retry.closedTrades).toEqual([expected]);
    stack.alpaca.setTime(next('16:30'));
    await endOfDay(ctx, next('16:30'));
    expect(await ctx.store.listClosedTrades(ctx.config.name, 50)).toEqual([expected]);
    expect(stack.logs.filter((l) => l.startsWith('INFO closed trade already recorded'))).toHaveLength(2);
  });

  it('generate-signals caps entries by Kelly from the recorded trades (the last kellyWindow of them)', async () => {
    stack = await startLiveStack({ startTime: at('08:00'), withCache: false });
    const { ctx } = stack;
    const { kellyWindow, kellyFraction } = ctx.config.risk;
    expect(kellyWindow).toBe(50);
    await marketOpenCheck(ctx, at('09:00'));
    // 30 old big winners, then the 50 most recent: 20 wins of $100 and 30 losses of $100. Over the
    // window Kelly = 0.4 − 0.6 / 1 = −0.2 (no edge: the risk falls to kellyMinRisk); over all 80
    // trades it would be 0.566 and cap nothing.
    const trade = (i: number, pnlCents: number): ClosedTradeRecord => {
      const exitTime = new Date(Date.parse('2020-06-01T20:00:00.000Z') + i * 86_400_000).toISOString();
      return {
        strategy: ctx.config.name,
        symbol: 'QQQ',
        side: 'long',
        qty: 1,
        entryDate: null,
        exitDate: exitTime.slice(0, 10),
        exitTime,
        entryPrice: 300,
        exitPrice: 300 + pnlCents / 100,
        pnlCents,
        exitExecutionId: `seed-${i}`,
        recordedAt: exitTime,
      };
    };
    for (let i = 0; i < 80; i++) {
      const pnl = i < 30 ? 100_000 : (i - 30) % 5 < 2 ? 10_000 : -10_000;
      expect(await ctx.store.recordClosedTrade(trade(i, pnl))).toBe(true);
    }
    // Another strategy's trades are not this one's history.
    await ctx.store.recordClosedTrade({ ...trade(100, 500_000), strategy: 'another-strategy' });

    const signals = await generateSignals(ctx, at('09:10'));
    const spy = signals.intents.find((i) => i.symbol === 'SPY' && i.purpose === 'entry');
    // Without the history (closedPnls: []) SPY is 53 shares at 2% risk (the first test).
    expect(spy?.qty).toBeGreaterThan(0);
    expect(spy?.qty).toBeLessThan(53);
    const reasons = signals.decisions?.reduced.find((r) => r.symbol === 'SPY')?.reasons ?? [];
    expect(reasons.join('; ')).toContain(`Kelly cap: ${kellyFraction} × Kelly -0.2 → risk 0.25%`);
    expect(
      stack.logs.some((l) => l.startsWith('INFO signals decided') && l.includes('"closedTrades":50')),
    ).toBe(true);
  });
});

// 2021-11-26, the day after Thanksgiving: NYSE closes at 13:00 New York (EST: 18:00Z).
const EARLY = '2021-11-26';
const est = (hhmm: string) =>
  `${EARLY}T${String(Number(hhmm.slice(0, 2)) + 5).padStart(2, '0')}:${hhmm.slice(3)}:00.000Z`;

describe('an early-close day', () => {
  it('the risk check runs at 12:00 and does nothing from the 13:00 close on', async () => {
    stack = await startLiveStack({ startTime: est('08:00'), withCache: false });
    const { ctx } = stack;
    const session = await marketOpenCheck(ctx, est('09:00'));
    expect(session).toMatchObject({ isOpen: true, earlyClose: true, closeAt: est('13:00') });

    // A position opened at the open, with its stop recorded but not yet at the broker.
    stack.alpaca.setTime(est('09:15'));
    await ctx.broker.submitOrder({
      clientOrderId: 'test-spy-entry',
      symbol: 'SPY',
      side: 'buy',
      qty: 10,
      type: 'market',
      timeInForce: 'opg',
    });
    stack.alpaca.setTime(est('12:00'));
    const spy = (await ctx.broker.getPositions()).find((p) => p.symbol === 'SPY');
    if (spy === undefined) throw new Error('expected a SPY position');
    const stop = Math.floor(spy.currentPrice * 0.95 * 100) / 100;
    await ctx.store.putPositions(EARLY, [
      {
        symbol: 'SPY',
        qty: 10,
        avgEntryPrice: spy.avgEntryPrice,
        stop,
        entryRef: spy.avgEntryPrice,
        initialRisk: spy.avgEntryPrice - stop,
        sessionsHeld: 0,
        entryDate: EARLY,
      },
    ]);

    // 12:00, in session: the check runs and places the protective stop.
    const noon = await riskCheck(ctx, est('12:00'));
    expect(noon.status).toBe('checked');
    expect(noon.stopsPlaced).toHaveLength(1);
    const placed = (await ctx.broker.listOrders({ status: 'open' })).filter((o) => o.type === 'stop');
    expect(placed).toMatchObject([{ symbol: 'SPY', side: 'sell', qty: 10, stopPrice: stop }]);
    // The stop disappears from the broker: a check that ran would place it again.
    for (const order of placed) await ctx.broker.cancelOrder(order.id);

    // From the 13:00 early close on, whatever form the scheduled time takes: nothing happens.
    stack.alpaca.setTime(est('13:15'));
    const before = {
      requests: stack.alpaca.requestLog.length,
      intents: await ctx.store.listIntents(EARLY),
      positions: await ctx.store.getLatestPositions(),
      risk: await ctx.store.getRiskState(),
      notes: stack.notifier.sent.length,
    };
    // 15:45 with an offset compares as text between the open and the close (14:30Z..18:00Z): the
    // session bounds are compared as instants.
    for (const at of [est('13:00'), est('13:15'), est('15:45'), `${EARLY}T15:45:00-05:00`]) {
      const late = await riskCheck(ctx, at);
      expect(late).toMatchObject({
        day: EARLY,
        status: 'outside-session',
        stopsPlaced: [],
        exits: [],
        breakerTrips: [],
        entriesCancelled: [],
      });
      expect(late.reason).toBe('the session closed at 13:00 New York (early close); nothing to check');
    }
    expect(stack.alpaca.requestLog.length).toBe(before.requests); // not one broker request
    expect(await ctx.store.listIntents(EARLY)).toEqual(before.intents);
    expect(await ctx.store.getLatestPositions()).toEqual(before.positions);
    expect(await ctx.store.getRiskState()).toEqual(before.risk);
    expect(stack.notifier.sent.length).toBe(before.notes);
    expect((await ctx.broker.listOrders({ status: 'open' })).filter((o) => o.type === 'stop')).toEqual([]);
    expect(
      stack.logs.filter((l) => l.startsWith('INFO risk check outside the session, nothing done')),
    ).toHaveLength(4);
  });
});
