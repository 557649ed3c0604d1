import { afterEach, describe, expect, it } from 'vitest';
import { notionalCents } from '../../shared/core/ledger/money.js';
import type { Broker } from '../../shared/core/ports/broker.js';
import type { FillRecord } from '../../shared/core/ports/state-store.js';
import { endOfDay } from '../../shared/live/end-of-day.js';
import { executeOrders } from '../../shared/live/execute-orders.js';
import { generateSignals } from '../../shared/live/generate-signals.js';
import { marketOpenCheck } from '../../shared/live/market-open-check.js';
import { riskCheck } from '../../shared/live/risk-check.js';
import { morningThroughFirstRiskCheck, startLiveStack } from '../helpers/live-stack.js';

// 2021-03-18: the strategy enters SPY at the open with 53 shares (live-steps.test.ts). New York is
// on daylight saving time (09:00 = 13:00Z).
const DAYS = ['2021-03-18', '2021-03-19', '2021-03-22', '2021-03-23'] as const;
const on = (day: string) => (hhmm: string) =>
  `${day}T${String(Number(hhmm.slice(0, 2)) + 4).padStart(2, '0')}:${hhmm.slice(3)}:00.000Z`;

let stack: Awaited<ReturnType<typeof startLiveStack>> | undefined;
afterEach(async () => {
  await stack?.close();
  stack = undefined;
});

/** The day's SPY fills of one side, as the ledger has them. */
async function spyFills(
  s: NonNullable<typeof stack>,
  day: string,
  side: 'buy' | 'sell',
): Promise<FillRecord[]> {
  return (await s.ctx.store.listFills(day)).filter((f) => f.symbol === 'SPY' && f.side === side);
}

/**
 * The stored SPY stop raised above the market on `day`: the risk check at 10:00 exits SPY at market
 * (its `flatten` order of the day).
 */
async function exitSpyAt10(s: NonNullable<typeof stack>, day: string, stop: number) {
  const at = on(day);
  s.alpaca.setTime(at('08:00'));
  await marketOpenCheck(s.ctx, at('09:00'));
  const held = await s.ctx.store.getLatestPositions();
  await s.ctx.store.putPositions(
    day,
    (held?.positions ?? []).map((p) => (p.symbol === 'SPY' ? { ...p, stop } : p)),
  );
  s.alpaca.setTime(at('10:00'));
  const check = await riskCheck(s.ctx, at('10:00'));
  expect(check.exits).toHaveLength(1);
}

/** Day 1: 53 SPY bought at the open, its stop placed, the day closed; the entry fill. */
async function enteredOnDay1(s: NonNullable<typeof stack>, ctx = s.ctx): Promise<FillRecord> {
  const d1 = DAYS[0];
  const spy = await morningThroughFirstRiskCheck(s, on(d1), 'SPY');
  expect(spy.qty).toBe(53);
  s.alpaca.setTime(on(d1)('16:15'));
  await endOfDay(ctx, on(d1)('16:15'));
  const [entry] = await spyFills(s, d1, 'buy');
  if (entry === undefined) throw new Error('expected the SPY entry fill');
  return entry;
}

/**
 * Day 2: the exit at market sells 20 of the 53 (a partial fill) and the rest of the order is
 * cancelled: 33 stay held. Returns the exit orders' [filled, ordered] before the cancel.
 */
async function soldPartOnDay2(s: NonNullable<typeof stack>, entry: FillRecord): Promise<number[][]> {
  s.alpaca.setPartialFill({ SPY: 0.38 });
  await exitSpyAt10(s, DAYS[1], entry.price * 1.09);
  s.alpaca.setPartialFill(undefined);
  const working = (await s.ctx.broker.listOrders({ status: 'open', symbols: ['SPY'] })).filter(
    (o) => o.side === 'sell' && o.type === 'market',
  );
  for (const o of working) await s.ctx.broker.cancelOrder(o.id);
  return working.map((o) => [o.filledQty, o.qty]);
}

describe('a round trip closed over two days', () => {
  it('is one closed trade of all its shares and the P&L of both days’ exits', async () => {
    const [d1, d2, d3] = DAYS;
    stack = await startLiveStack({ startTime: on(d1)('08:00'), withCache: false });
    const s = stack;
    const { ctx } = s;
    const entry = await enteredOnDay1(s);
    // Day 2: 20 of the 53 sold, 33 held overnight.
    expect(await soldPartOnDay2(s, entry)).toEqual([[20, 53]]);
    s.alpaca.setTime(on(d2)('16:15'));
    const day2 = await endOfDay(ctx, on(d2)('16:15'));
    if (!('date' in day2)) throw new Error('expected a report');
    expect(day2.closedTrades).toEqual([]);
    expect(day2.positions.find((p) => p.symbol === 'SPY')).toMatchObject({ qty: 33, entryDate: d1 });
    const firstExit = await spyFills(s, d2, 'sell');
    expect(firstExit.reduce((sum, f) => sum + f.qty, 0)).toBe(20);

    // Day 3: the other 33 sold at market.
    await exitSpyAt10(s, d3, entry.price * 1.2);
    s.alpaca.setTime(on(d3)('16:15'));
    const day3 = await endOfDay(ctx, on(d3)('16:15'));
    if (!('date' in day3)) throw new Error('expected a report');
    const lastExit = await spyFills(s, d3, 'sell');
    expect(lastExit.reduce((sum, f) => sum + f.qty, 0)).toBe(33);
    const exits = [...firstExit, ...lastExit];
    const exitCents = exits.reduce((sum, f) => sum + notionalCents(f.qty, f.price), 0);
    const close = lastExit[lastExit.length - 1] as FillRecord;
    const trade = {
      strategy: ctx.config.name,
      symbol: 'SPY',
      side: 'long',
      qty: 53,
      entryDate: d1,
      exitDate: d3,
      exitTime: close.time,
      entryPrice: entry.price,
      exitPrice: expect.closeTo(exits.reduce((sum, f) => sum + f.qty * f.price, 0) / 53, 9),
      // The backtest's P&L over the whole round trip: every exit fill's notional less the entry's.
      pnlCents: exitCents - notionalCents(53, entry.price),
      exitExecutionId: close.executionId,
      recordedAt: on(d3)('16:15'),
    };
    expect(day3.closedTrades.filter((t) => t.symbol === 'SPY')).toEqual([trade]);
    expect(day3.drift).toEqual([]);
    expect(day3.positions.some((p) => p.symbol === 'SPY')).toBe(false);
    // The Kelly history reads the same one trade; a rerun records nothing more.
    await endOfDay(ctx, on(d3)('16:15'));
    expect((await ctx.store.listClosedTrades(ctx.config.name, 50)).filter((t) => t.symbol === 'SPY')).toEqual(
      [trade],
    );
  });
});

describe('a round trip closed over two days with a missed end-of-day between', () => {
  it('the risk check keeps the closed part on its list: the next end-of-day records the one trade of 53', async () => {
    const [d1, d2, d3, d4] = DAYS;
    stack = await startLiveStack({ startTime: on(d1)('08:00'), withCache: false });
    const s = stack;
    const { ctx } = s;
    const entry = await enteredOnDay1(s);
    // Day 2: 20 of the 53 sold, the rest of the order cancelled; the end-of-day keeps the closed part.
    await soldPartOnDay2(s, entry);
    s.alpaca.setTime(on(d2)('16:15'));
    await endOfDay(ctx, on(d2)('16:15'));
    // Day 3: a risk check writes the day's list (the stop back under the market); its end-of-day
    // never runs, so day 4's walks from the risk check's list.
    s.alpaca.setTime(on(d3)('08:00'));
    await marketOpenCheck(ctx, on(d3)('09:00'));
    const held = await ctx.store.getLatestPositions();
    await ctx.store.putPositions(
      d3,
      (held?.positions ?? []).map((p) => (p.symbol === 'SPY' ? { ...p, stop: entry.price * 0.8 } : p)),
    );
    s.alpaca.setTime(on(d3)('10:00'));
    const check = await riskCheck(ctx, on(d3)('10:00'));
    expect(check.exits).toEqual([]);
    expect((await ctx.store.getLatestPositions())?.positions.find((p) => p.symbol === 'SPY')).toMatchObject({
      qty: 33,
      realised: { qty: 20 },
    });
    // Day 4: the other 33 sold; the trade is all 53 shares.
    await exitSpyAt10(s, d4, entry.price * 1.2);
    s.alpaca.setTime(on(d4)('16:15'));
    const day4 = await endOfDay(ctx, on(d4)('16:15'));
    if (!('date' in day4)) throw new Error('expected a report');
    const exits = [...(await spyFills(s, d2, 'sell')), ...(await spyFills(s, d4, 'sell'))];
    expect(exits.reduce((sum, f) => sum + f.qty, 0)).toBe(53);
    const exitCents = exits.reduce((sum, f) => sum + notionalCents(f.qty, f.price), 0);
    expect(day4.closedTrades.filter((t) => t.symbol === 'SPY')).toMatchObject([
      { qty: 53, entryDate: d1, exitDate: d4, pnlCents: exitCents - notionalCents(53, entry.price) },
    ]);
  });
});

/**
 * The broker as the end-of-day step reads it, except that the order `orderId()` reports no fill
 * time (`filled_at` null: a broker whose order says nothing of when it filled), so the part of it
 * not listed yet is dated by the step's own time, not by its fill's.
 */
function withoutFillTime(broker: Broker, orderId: () => string | undefined): Broker {
  return new Proxy(broker, {
    get(target, property, receiver) {
      if (property === 'listOrders') {
        return async (...args: Parameters<Broker['listOrders']>) =>
          (await target.listOrders(...args)).map((o) => (o.id === orderId() ? { ...o, filledAt: null } : o));
      }
      const value = Reflect.get(target, property, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

describe('an exit whose last fill the broker lists late', () => {
  /**
   * 53 SPY held from day 1; on day 2 the exit at market sells 20 at 10:00 and the other 33 at the
   * close, and the broker's activities do not list that second fill at the end-of-day (16:15).
   */
  async function exitListedLate(options: { fillTimeUnknown: boolean }) {
    const [d1, d2] = DAYS;
    stack = await startLiveStack({ startTime: on(d1)('08:00'), withCache: false });
    const s = stack;
    let exitOrder: string | undefined;
    const ctx = options.fillTimeUnknown
      ? { ...s.ctx, broker: withoutFillTime(s.ctx.broker, () => exitOrder) }
      : s.ctx;
    const entry = await enteredOnDay1(s, ctx);
    s.alpaca.setPartialFill({ SPY: 0.38 });
    await exitSpyAt10(s, d2, entry.price * 1.09);
    s.alpaca.setPartialFill(undefined);
    s.alpaca.setTime(on(d2)('16:15'));
    const sells = (
      await ctx.broker.getActivities({ after: on(d2)('00:00'), until: on(d2)('16:15') })
    ).flatMap((a) => (a.kind === 'fill' && a.symbol === 'SPY' && a.side === 'sell' ? [a] : []));
    expect(sells.map((f) => f.qty)).toEqual([20, 33]);
    const [first, last] = sells as [(typeof sells)[0], (typeof sells)[0]];
    // The two fills are at different prices: the order's average is neither.
    expect(first.price).not.toBe(last.price);
    exitOrder = last.orderId;
    s.alpaca.injectFaults({
      kind: 'lagging',
      route: 'GET /v2/account/activities',
      field: 'id',
      value: last.id,
      times: 1_000,
    });
    const report = await endOfDay(ctx, on(d2)('16:15'));
    if (!('date' in report)) throw new Error('expected a report');
    expect(report.fillGaps).toHaveLength(1);
    return { s, ctx, entry, first, last, report };
  }

  it('books the unlisted part at its own price, not the whole order’s average: the trade’s P&L is both fills’', async () => {
    const { s, ctx, entry, first, last, report } = await exitListedLate({ fillTimeUnknown: false });
    const [, d2, d3] = DAYS;
    const pnlCents =
      notionalCents(20, first.price) + notionalCents(33, last.price) - notionalCents(53, entry.price);
    const spy = report.closedTrades.filter((t) => t.symbol === 'SPY');
    expect(spy).toMatchObject([{ qty: 53, pnlCents, exitTime: last.time }]);
    expect(spy[0]?.exitPrice).toBeCloseTo((20 * first.price + 33 * last.price) / 53, 9);
    const recorded = await ctx.store.listClosedTrades(ctx.config.name, 50);
    expect(recorded.filter((t) => t.symbol === 'SPY')).toEqual(spy);

    // Listed now: a rerun of the day and the next day's end-of-day correct nothing and record nothing more.
    s.alpaca.clearFaults();
    s.alpaca.setTime(on(d2)('16:30'));
    await endOfDay(ctx, on(d2)('16:30'));
    s.alpaca.setTime(on(d3)('08:00'));
    await marketOpenCheck(ctx, on(d3)('09:00'));
    s.alpaca.setTime(on(d3)('16:15'));
    const next = await endOfDay(ctx, on(d3)('16:15'));
    if (!('date' in next)) throw new Error('expected a report');
    expect(next.fillGaps).toEqual([]);
    expect((await spyFills(s, d2, 'sell')).map((f) => [f.qty, f.price])).toEqual([
      [20, first.price],
      [33, last.price],
    ]);
    expect((await ctx.store.listClosedTrades(ctx.config.name, 50)).filter((t) => t.symbol === 'SPY')).toEqual(
      spy,
    );
  });

  it('a rerun of the day after the listing records the trade once, though its closing fill’s time was unknown before', async () => {
    const { s, ctx, last, report } = await exitListedLate({ fillTimeUnknown: true });
    const [, d2] = DAYS;
    const spy = report.closedTrades.filter((t) => t.symbol === 'SPY');
    expect(spy).toMatchObject([{ qty: 53 }]);
    // Dated by the step (the fill's time unknown), not by the fill.
    expect(spy[0]?.exitTime).not.toBe(last.time);
    s.alpaca.clearFaults();
    s.alpaca.setTime(on(d2)('16:30'));
    const rerun = await endOfDay(ctx, on(d2)('16:30'));
    if (!('date' in rerun)) throw new Error('expected a report');
    expect(rerun.fillGaps).toEqual([]);
    expect((await ctx.store.listClosedTrades(ctx.config.name, 50)).filter((t) => t.symbol === 'SPY')).toEqual(
      spy,
    );
    expect(rerun.closedTrades.filter((t) => t.symbol === 'SPY')).toEqual(spy);
  });
});

describe('an end-of-day that failed before any list of its day held its fills', () => {
  it('the next end-of-day books that day’s fills on the sleeve: no share to the UNASSIGNED bucket', async () => {
    const [d1, d2] = DAYS;
    stack = await startLiveStack({ startTime: on(d1)('08:00'), withCache: false });
    const s = stack;
    const { ctx } = s;
    // Day 1: entries filled at the open, no risk check after them, and every end-of-day fails.
    await marketOpenCheck(ctx, on(d1)('09:00'));
    await generateSignals(ctx, on(d1)('09:10'));
    await executeOrders(ctx, on(d1)('09:15'));
    s.alpaca.setTime(on(d1)('16:15'));
    const held = await ctx.broker.getPositions();
    expect(held.find((p) => p.symbol === 'SPY')?.qty).toBe(53);
    s.alpaca.injectFaults({
      kind: 'malformed-field',
      route: 'GET /v2/account/activities',
      field: 'price',
      json: '"-1"',
      times: 1_000,
    });
    await expect(endOfDay(ctx, on(d1)('16:15'))).rejects.toThrow(/price/);
    s.alpaca.clearFaults();

    s.alpaca.setTime(on(d2)('08:00'));
    await marketOpenCheck(ctx, on(d2)('09:00'));
    s.alpaca.setTime(on(d2)('16:15'));
    const report = await endOfDay(ctx, on(d2)('16:15'));
    if (!('date' in report)) throw new Error('expected a report');
    expect(report.backfilled.map((f) => f.symbol).sort()).toEqual(held.map((p) => p.symbol).sort());
    const sleeve = report.positions.filter((p) => p.sleeve === ctx.config.name);
    expect(sleeve.map((p) => [p.symbol, p.qty, p.entryDate]).sort()).toEqual(
      held.map((p) => [p.symbol, p.qty, d1]).sort(),
    );
    expect(report.reconciliation.symbols.filter((l) => l.unassignedAfter !== 0)).toEqual([]);
    expect(s.notifier.sent.filter((n) => /UNASSIGNED|reconciliation/i.test(n.subject))).toEqual([]);
  });
});
