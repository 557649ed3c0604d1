import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  AlpacaBroker,
  type AlpacaBrokerOptions,
  type BrokerRetryEvent,
} from '../../shared/adapters/alpaca/broker.js';
import { loadBarsCsv } from '../../shared/adapters/fs/bars.js';
import { type LocalAlpaca, startLocalAlpaca } from '../../shared/adapters/local/alpaca-server.js';
import {
  CALENDAR_FIRST_YEAR,
  CALENDAR_LAST_YEAR,
  newYorkInstant,
  nyseClosures,
  nyseEarlyCloses,
  tradingDays,
} from '../../shared/adapters/local/nyse-calendar.js';
import type { PaperBrokerOptions } from '../../shared/adapters/local/paper-broker.js';
import {
  BrokerRejectedError,
  BrokerResponseError,
  BrokerUnavailableError,
  DuplicateClientOrderIdError,
  InvalidParameterError,
} from '../../shared/core/errors.js';
import type { BrokerOrder, OrderRequest } from '../../shared/core/ports/broker.js';

const KEY_ID = 'test-key-id';
const SECRET = 'test-secret-key';
const DATA_DIR = 'data';

const spy = loadBarsCsv(join(DATA_DIR, 'SPY.csv'));
const spyDates = Array.from(spy.time, (t) => new Date(t).toISOString().slice(0, 10));

interface Bar {
  readonly date: string;
  readonly open: number;
  readonly high: number;
  readonly low: number;
  readonly close: number;
}

function barAt(i: number): Bar {
  return {
    date: spyDates[i] as string,
    open: spy.open[i] as number,
    high: spy.high[i] as number,
    low: spy.low[i] as number,
    close: spy.close[i] as number,
  };
}

/** Index of the first SPY session on or after `date` for which `test(bar, previous)` holds. */
function findSession(date: string, test: (bar: Bar, previous: Bar) => boolean): number {
  for (
    let i = Math.max(
      1,
      spyDates.findIndex((d) => d >= date),
    );
    i < spyDates.length;
    i++
  ) {
    if (test(barAt(i), barAt(i - 1))) return i;
  }
  throw new Error(`no SPY session after ${date} fits`);
}

/** ISO instant of a New York wall-clock time. */
function ny(date: string, hhmm: string): string {
  return new Date(newYorkInstant(date, hhmm)).toISOString();
}

const cents = (x: number): number => Math.round(x * 100) / 100;
const floorCents = (x: number): number => Math.floor(x * 100) / 100;
const ceilCents = (x: number): number => Math.ceil(x * 100) / 100;

let server: LocalAlpaca | undefined;

afterEach(async () => {
  await server?.close();
  server = undefined;
});

/** A fresh local Alpaca whose paper clock starts at `startTime`, and the adapter on it. */
async function setup(
  startTime: string,
  paper: Omit<PaperBrokerOptions, 'startTime'> = {},
  options: Partial<AlpacaBrokerOptions> = {},
): Promise<{ server: LocalAlpaca; broker: AlpacaBroker }> {
  const started = await startLocalAlpaca({
    dataDir: DATA_DIR,
    port: 0,
    keyId: KEY_ID,
    secret: SECRET,
    paper: { startTime, ...paper },
  });
  server = started;
  return { server: started, broker: adapter(started, options) };
}

/** The adapter on a local server, with tiny backoffs so retries cost nothing. */
function adapter(on: LocalAlpaca, options: Partial<AlpacaBrokerOptions> = {}): AlpacaBroker {
  return new AlpacaBroker({
    keyId: KEY_ID,
    secret: SECRET,
    baseUrl: on.url,
    retry: { maxRetries: 3, baseDelayMs: 1, maxDelayMs: 20 },
    rateLimit: false,
    ...options,
  });
}

function order(clientOrderId: string, fields: Partial<OrderRequest> = {}): OrderRequest {
  return {
    clientOrderId,
    symbol: 'SPY',
    side: 'buy',
    qty: 10,
    type: 'market',
    timeInForce: 'day',
    ...fields,
  };
}

async function caught(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a rejection');
}

async function found(broker: AlpacaBroker, clientOrderId: string): Promise<BrokerOrder> {
  const result = await broker.getOrderByClientOrderId(clientOrderId);
  if (result === null) throw new Error(`order ${clientOrderId} not found`);
  return result;
}

describe('paper broker: fills by the backtest rules', () => {
  it('fills a day market order at the open and reports positions, cash, equity and last equity', async () => {
    const i = findSession('2024-03-01', () => true);
    const d1 = barAt(i);
    const d2 = barAt(i + 1);
    const { server, broker } = await setup(ny(d1.date, '09:00'));
    const placed = await broker.submitOrder(order('buy-1'));
    expect(placed).toMatchObject({ status: 'accepted', filledQty: 0, filledAvgPrice: null, qty: 10 });

    server.setTime(ny(d1.date, '10:00'));
    const filled = await found(broker, 'buy-1');
    expect(filled).toMatchObject({ status: 'filled', filledQty: 10, filledAvgPrice: d1.open });
    expect(filled.filledAt).toBe(ny(d1.date, '09:30'));
    const cash = cents(100_000 - cents(10 * d1.open));
    expect(await broker.getPositions()).toEqual([
      {
        symbol: 'SPY',
        qty: 10,
        avgEntryPrice: d1.open,
        marketValue: expect.closeTo(10 * d1.open, 6),
        currentPrice: d1.open,
        assetClass: 'us_equity',
      },
    ]);
    let account = await broker.getAccount();
    expect(account).toMatchObject({ cash, lastEquity: 100_000, tradingBlocked: false, status: 'ACTIVE' });
    expect(account.equity).toBeCloseTo(cash + 10 * d1.open, 2);

    // After the close the position is marked at the close; the next morning that is last_equity.
    server.setTime(ny(d1.date, '16:30'));
    const equityAtClose = cents(cash + 10 * d1.close);
    account = await broker.getAccount();
    expect(account.equity).toBeCloseTo(equityAtClose, 2);
    expect(account.lastEquity).toBe(100_000);
    expect((await broker.getPositions())[0]?.currentPrice).toBe(d1.close);

    server.setTime(ny(d2.date, '08:00'));
    await broker.submitOrder(order('sell-1', { side: 'sell', qty: 4 }));
    server.setTime(ny(d2.date, '12:00'));
    account = await broker.getAccount();
    expect(account.lastEquity).toBeCloseTo(equityAtClose, 2);
    expect(account.cash).toBeCloseTo(cents(cash + cents(4 * d2.open)), 2);
    const [position] = await broker.getPositions();
    expect(position).toMatchObject({ qty: 6, avgEntryPrice: d1.open, currentPrice: d2.open });

    const fills = await broker.getActivities({ after: ny(d1.date, '00:00') });
    expect(fills.map((f) => (f.kind === 'fill' ? [f.side, f.qty, f.price, f.partial] : f.kind))).toEqual([
      ['buy', 10, d1.open, false],
      ['sell', 4, d2.open, false],
    ]);
    expect(await broker.getActivities({ after: ny(d2.date, '00:00') })).toHaveLength(1);
    expect(await broker.getActivities({ until: ny(d2.date, '00:00') })).toHaveLength(1);
  });

  it('fills an opg order at the open of the next session, not before', async () => {
    const i = findSession('2024-03-01', (bar) => new Date(`${bar.date}T12:00:00Z`).getUTCDay() === 5);
    const friday = barAt(i);
    const monday = barAt(i + 1);
    const { server, broker } = await setup(ny(friday.date, '20:00'));
    await broker.submitOrder(order('opg-1', { timeInForce: 'opg' }));
    server.setTime(ny(monday.date, '09:29'));
    expect(await found(broker, 'opg-1')).toMatchObject({ status: 'accepted', filledQty: 0 });
    server.setTime(ny(monday.date, '09:30'));
    const filled = await found(broker, 'opg-1');
    expect(filled).toMatchObject({ status: 'filled', filledQty: 10, filledAvgPrice: monday.open });
    expect(filled.filledAt).toBe(ny(monday.date, '09:30'));
  });

  it('with slippageBps, market and stop fills move against the order as in the backtest; limits do not', async () => {
    const i = findSession('2024-03-01', (bar) => bar.low < bar.open - 0.5);
    const day = barAt(i);
    const next = barAt(i + 1);
    const { server, broker } = await setup(ny(day.date, '09:00'), { slippageBps: 5 });
    await broker.submitOrder(order('buy'));
    const limit = cents(day.open - 0.5);
    await broker.submitOrder(order('limit', { type: 'limit', limitPrice: limit, qty: 1 }));
    server.setTime(ny(day.date, '16:30'));
    expect((await found(broker, 'buy')).filledAvgPrice).toBeCloseTo(day.open * 1.0005, 9);
    expect((await found(broker, 'limit')).filledAvgPrice).toBe(limit);
    const stop = cents(next.high + 1);
    await broker.submitOrder(order('stop', { side: 'sell', type: 'stop', stopPrice: stop, qty: 2 }));
    await broker.submitOrder(order('sell', { side: 'sell', qty: 3 }));
    server.setTime(ny(next.date, '16:30'));
    // A sell stop above the market fills at once at the open, slipped down like a market sell.
    expect((await found(broker, 'stop')).filledAvgPrice).toBeCloseTo(next.open * 0.9995, 9);
    expect((await found(broker, 'sell')).filledAvgPrice).toBeCloseTo(next.open * 0.9995, 9);
    const account = await broker.getAccount();
    const paid = cents(10 * day.open * 1.0005) + cents(limit);
    const received = cents(2 * next.open * 0.9995) + cents(3 * next.open * 0.9995);
    expect(account.cash).toBeCloseTo(100_000 - paid + received, 2);
  });

  it('refuses an opg order from 09:28 New York on a trading day, with the broker message', async () => {
    const day = barAt(findSession('2024-03-04', () => true)).date;
    const { server, broker } = await setup(ny(day, '09:27'));
    await broker.submitOrder(order('opg-early', { timeInForce: 'opg' }));
    server.setTime(ny(day, '09:28'));
    const error = await caught(broker.submitOrder(order('opg-late', { timeInForce: 'opg' })));
    expect(error).toBeInstanceOf(BrokerRejectedError);
    expect((error as BrokerRejectedError).status).toBe(422);
    expect(error.message).toContain('opg orders are accepted only before 09:28');
    expect(await broker.getOrderByClientOrderId('opg-late')).toBeNull();
  });

  it('fills a stop the open gapped through at the open, not at the stop', async () => {
    const i = findSession('2023-01-01', (bar, previous) => previous.close - bar.open > 1);
    const before = barAt(i - 1);
    const gap = barAt(i);
    const stop = cents((before.close + gap.open) / 2);
    expect(stop).toBeGreaterThan(gap.open);
    expect(stop).toBeLessThan(before.close);
    const { server, broker } = await setup(ny(before.date, '09:00'));
    await broker.submitOrder(order('entry'));
    server.setTime(ny(before.date, '17:00'));
    await broker.submitOrder(
      order('stop', { side: 'sell', type: 'stop', stopPrice: stop, timeInForce: 'gtc' }),
    );
    server.setTime(ny(gap.date, '09:45'));
    expect(await found(broker, 'stop')).toMatchObject({
      status: 'filled',
      filledAvgPrice: gap.open,
      stopPrice: stop,
    });
    expect(await broker.getPositions()).toEqual([]);
  });

  it('fills the stop-loss of a bracket whose bar reaches both legs: the stop wins', async () => {
    const legs = (bar: Bar) => ({
      takeProfitLimit: floorCents((bar.open + bar.high) / 2),
      stopLoss: ceilCents((bar.open + bar.low) / 2),
    });
    const i = findSession('2023-01-01', (bar, previous) => {
      const { takeProfitLimit, stopLoss } = legs(bar);
      return (
        takeProfitLimit > bar.open + 0.5 &&
        stopLoss < bar.open - 0.5 &&
        previous.close < takeProfitLimit - 0.01 &&
        previous.close > stopLoss + 0.01
      );
    });
    const bar = barAt(i);
    const bracket = legs(bar);
    const { server, broker } = await setup(ny(bar.date, '08:00'));
    const placed = await broker.submitOrder(order('bracket', { timeInForce: 'gtc', bracket }));
    expect(placed.legs.map((l) => [l.type, l.side, l.status])).toEqual([
      ['limit', 'sell', 'held'],
      ['stop', 'sell', 'held'],
    ]);
    server.setTime(ny(bar.date, '12:00'));
    const open = await found(broker, 'bracket');
    expect(open.status).toBe('filled');
    expect(open.legs.map((l) => l.status)).toEqual(['new', 'new']);
    // A filled entry whose legs still work is listed as open, legs nested.
    expect((await broker.listOrders({ status: 'open' })).map((o) => o.clientOrderId)).toEqual(['bracket']);

    server.setTime(ny(bar.date, '16:00'));
    const done = await found(broker, 'bracket');
    expect(done.filledAvgPrice).toBe(bar.open);
    const [takeProfit, stopLoss] = done.legs;
    expect(takeProfit).toMatchObject({
      status: 'canceled',
      filledQty: 0,
      limitPrice: bracket.takeProfitLimit,
    });
    expect(stopLoss).toMatchObject({ status: 'filled', filledAvgPrice: bracket.stopLoss, filledQty: 10 });
    expect(await broker.getPositions()).toEqual([]);
    expect((await broker.getAccount()).cash).toBeCloseTo(
      cents(100_000 - cents(10 * bar.open) + cents(10 * bracket.stopLoss)),
      2,
    );
  });

  it('fills a fresh bracket stop-loss that the open gapped through at the open, as the entry', async () => {
    const i = findSession('2023-01-01', (bar, previous) => previous.close - bar.open > 2);
    const [before, gap] = [barAt(i - 1), barAt(i)];
    const bracket = { takeProfitLimit: ceilCents(before.close + 5), stopLoss: floorCents(before.close - 1) };
    expect(bracket.stopLoss).toBeGreaterThan(gap.open);
    const { server, broker } = await setup(ny(before.date, '17:00'));
    await broker.submitOrder(order('gapped', { timeInForce: 'gtc', bracket }));
    server.setTime(ny(gap.date, '09:30'));
    const done = await found(broker, 'gapped');
    expect(done).toMatchObject({ status: 'filled', filledAvgPrice: gap.open });
    expect(done.legs.map((l) => [l.status, l.filledAvgPrice, l.filledAt])).toEqual([
      ['canceled', null, null],
      ['filled', gap.open, ny(gap.date, '09:30')],
    ]);
    expect(await broker.getPositions()).toEqual([]);
  });

  it('expires a day limit that was never reached at the close, holding buying power until then', async () => {
    const bar = barAt(findSession('2024-05-01', () => true));
    const limit = Math.floor(bar.low - 1);
    const { server, broker } = await setup(ny(bar.date, '08:00'));
    await broker.submitOrder(order('limit', { type: 'limit', limitPrice: limit }));
    server.setTime(ny(bar.date, '12:00'));
    expect(await found(broker, 'limit')).toMatchObject({ status: 'new', filledQty: 0 });
    expect((await broker.getAccount()).buyingPower).toBeCloseTo(100_000 - 10 * limit, 2);
    expect((await broker.listOrders({ status: 'open' })).map((o) => o.clientOrderId)).toEqual(['limit']);
    server.setTime(ny(bar.date, '16:00'));
    expect(await found(broker, 'limit')).toMatchObject({ status: 'expired', filledQty: 0 });
    expect(await broker.listOrders({ status: 'open' })).toEqual([]);
    expect((await broker.listOrders({ status: 'closed' })).map((o) => o.clientOrderId)).toEqual(['limit']);
    expect(await broker.getAccount()).toMatchObject({ buyingPower: 100_000, cash: 100_000 });
  });

  it('fills a limit at the limit when the bar reaches it after the open', async () => {
    const i = findSession('2024-06-01', (bar) => bar.open - bar.low > 1);
    const bar = barAt(i);
    const limit = ceilCents(bar.low + 0.25);
    const { server, broker } = await setup(ny(bar.date, '08:00'));
    await broker.submitOrder(order('limit', { type: 'limit', limitPrice: limit, timeInForce: 'day' }));
    server.setTime(ny(bar.date, '16:00'));
    expect(await found(broker, 'limit')).toMatchObject({ status: 'filled', filledAvgPrice: limit });
  });

  it('fills a trailing stop at its level from the earlier bars, the level ratcheting with the highs', async () => {
    const start = findSession('2024-01-02', () => true);
    const entry = barAt(start);
    const percent = 2;
    // The backtest's rule, replayed on the bars: check at the level, then ratchet with the high.
    let best = entry.close;
    let level = best * (1 - percent / 100);
    let expected: { date: string; price: number } | undefined;
    for (let i = start + 1; expected === undefined; i++) {
      const bar = barAt(i);
      if (bar.open <= level) expected = { date: bar.date, price: bar.open };
      else if (bar.low <= level) expected = { date: bar.date, price: level };
      else {
        best = Math.max(best, bar.high);
        level = Math.max(level, best * (1 - percent / 100));
      }
    }
    const { server, broker } = await setup(ny(entry.date, '09:00'));
    await broker.submitOrder(order('entry'));
    server.setTime(ny(entry.date, '17:00'));
    await broker.submitOrder(
      order('trail', { side: 'sell', type: 'trailing_stop', trailPercent: percent, timeInForce: 'gtc' }),
    );
    server.setTime(ny(expected.date, '17:00'));
    const trail = await found(broker, 'trail');
    expect(trail.status).toBe('filled');
    expect(trail.filledAvgPrice).toBeCloseTo(expected.price, 9);
    expect(trail.filledAt?.slice(0, 10)).toBe(expected.date);
  });

  it('fills part of an order at the open and the rest at the close when partial fills are on', async () => {
    const i = findSession('2024-03-01', () => true);
    const bar = barAt(i);
    const { server, broker } = await setup(ny(bar.date, '09:00'), { partialFill: { SPY: 0.5 } });
    await broker.submitOrder(order('partial', { qty: 11 }));
    server.setTime(ny(bar.date, '11:00'));
    expect(await found(broker, 'partial')).toMatchObject({
      status: 'partially_filled',
      filledQty: 5,
      filledAvgPrice: bar.open,
    });
    expect((await broker.getPositions())[0]?.qty).toBe(5);
    server.setTime(ny(bar.date, '16:00'));
    const done = await found(broker, 'partial');
    expect(done).toMatchObject({ status: 'filled', filledQty: 11 });
    expect(done.filledAvgPrice).toBeCloseTo((5 * bar.open + 6 * bar.close) / 11, 9);
    const fills = await broker.getActivities({});
    expect(fills.map((f) => (f.kind === 'fill' ? [f.qty, f.price, f.partial, f.time] : f.kind))).toEqual([
      [5, bar.open, true, ny(bar.date, '09:30')],
      [6, bar.close, false, ny(bar.date, '16:00')],
    ]);
    // Off again: whole fills.
    server.setPartialFill(undefined);
    await broker.submitOrder(order('whole', { qty: 3 }));
    server.setTime(ny(barAt(i + 1).date, '09:30'));
    expect(await found(broker, 'whole')).toMatchObject({ status: 'filled', filledQty: 3 });
  });

  it('applies dividends and splits at the open and reports them as activities', async () => {
    const i = findSession('2024-03-01', () => true);
    const [d0, d1, d2] = [barAt(i), barAt(i + 1), barAt(i + 2)];
    const { server, broker } = await setup(ny(d0.date, '09:00'), {
      corporateActions: [
        { kind: 'dividend', symbol: 'SPY', date: d1.date, amount: 1.25 },
        { kind: 'split', symbol: 'spy', date: d2.date, ratio: 2 },
      ],
    });
    await broker.submitOrder(order('entry'));
    server.setTime(ny(d2.date, '10:00'));
    const activities = await broker.getActivities({});
    expect(activities.map((a) => [a.kind, a.kind === 'fill' ? a.qty : a.ratio])).toEqual([
      ['fill', 10],
      ['dividend', 1.25],
      ['split', 2],
    ]);
    expect(activities[2]).toMatchObject({ symbol: 'SPY', date: d2.date });
    expect(await broker.getPositions()).toMatchObject([{ qty: 20, avgEntryPrice: d0.open / 2 }]);
    expect((await broker.getAccount()).cash).toBeCloseTo(cents(100_000 - cents(10 * d0.open) + 12.5), 2);
  });
  it('lists a split reported late (listedOn) only from that day on; the position changes at its own open', async () => {
    const i = findSession('2024-03-01', () => true);
    const [d0, d1, d2] = [barAt(i), barAt(i + 1), barAt(i + 2)];
    const { server, broker } = await setup(ny(d0.date, '09:00'), {
      corporateActions: [{ kind: 'split', symbol: 'SPY', date: d1.date, ratio: 4, listedOn: d2.date }],
    });
    await broker.submitOrder(order('entry'));
    server.setTime(ny(d1.date, '16:15'));
    expect((await broker.getActivities({})).map((a) => a.kind)).toEqual(['fill']);
    expect(await broker.getPositions()).toMatchObject([{ qty: 40, avgEntryPrice: d0.open / 4 }]);
    server.setTime(ny(d2.date, '00:01'));
    const activities = await broker.getActivities({});
    expect(activities.map((a) => a.kind)).toEqual(['fill', 'split']);
    expect(activities[1]).toMatchObject({ symbol: 'SPY', date: d1.date, ratio: 4 });
  });

  it('refuses a split listed before its date', async () => {
    const i = findSession('2024-03-01', () => true);
    const [d0, d1] = [barAt(i), barAt(i + 1)];
    await expect(
      setup(ny(d0.date, '09:00'), {
        corporateActions: [{ kind: 'split', symbol: 'SPY', date: d1.date, ratio: 2, listedOn: d0.date }],
      }),
    ).rejects.toThrow(/listedOn/);
  });
});

describe('paper broker: rehearsal realism (off by default)', () => {
  it('fills market-on-open orders exactly N bps worse than the open with openSlippageBps; other fills keep the cost model', async () => {
    const i = findSession('2024-03-01', (bar) => new Date(`${bar.date}T12:00:00Z`).getUTCDay() === 2);
    const day = barAt(i);
    const { server, broker } = await setup(ny(day.date, '09:00'), {
      slippageBps: 5,
      realism: { openSlippageBps: 12 },
    });
    await broker.submitOrder(order('opg-buy', { timeInForce: 'opg', qty: 20 }));
    await broker.submitOrder(order('day-buy', { qty: 1 }));
    server.setTime(ny(day.date, '19:30'));
    await broker.submitOrder(order('opg-sell', { timeInForce: 'opg', side: 'sell', qty: 5 }));
    server.setTime(ny(barAt(i + 1).date, '09:31'));
    expect((await found(broker, 'opg-buy')).filledAvgPrice).toBeCloseTo(day.open * 1.0012, 9);
    expect((await found(broker, 'day-buy')).filledAvgPrice).toBeCloseTo(day.open * 1.0005, 9);
    expect((await found(broker, 'opg-sell')).filledAvgPrice).toBeCloseTo(barAt(i + 1).open * (1 - 0.0012), 9);
  });

  it('adds seeded jitter in [-J, +J] bps, the same for the same seed and order', async () => {
    const i = findSession('2024-03-04', () => true);
    const day = barAt(i);
    const fillsWith = async (seed: number) => {
      const started = await setup(ny(day.date, '09:00'), {
        realism: { openSlippageBps: 12, slippageJitterBps: 4, seed },
      });
      const broker = started.broker;
      for (let k = 0; k < 20; k++) await broker.submitOrder(order(`j-${k}`, { timeInForce: 'opg', qty: 1 }));
      started.server.setTime(ny(day.date, '09:31'));
      const bps: number[] = [];
      for (let k = 0; k < 20; k++)
        bps.push((((await found(broker, `j-${k}`)).filledAvgPrice as number) / day.open - 1) * 10_000);
      await started.server.close();
      server = undefined;
      return bps;
    };
    const a = await fillsWith(7);
    expect(await fillsWith(7)).toEqual(a);
    expect(await fillsWith(8)).not.toEqual(a);
    for (const b of a) expect(b).toBeGreaterThanOrEqual(8 - 1e-6);
    for (const b of a) expect(b).toBeLessThanOrEqual(16 + 1e-6);
    expect(new Set(a.map((b) => b.toFixed(6))).size).toBeGreaterThan(10);
  });

  it('refuses a market-on-open order with the reject rate (BrokerRejectedError), never a day order', async () => {
    const day = barAt(findSession('2024-03-04', () => true));
    const { broker } = await setup(ny(day.date, '09:00'), { realism: { rejectRate: 1 } });
    const error = await caught(broker.submitOrder(order('opg-r', { timeInForce: 'opg' })));
    expect(error).toBeInstanceOf(BrokerRejectedError);
    expect(error.message).toMatch(/rehearsal reject/);
    expect(await broker.getOrderByClientOrderId('opg-r')).toBeNull();
    await broker.submitOrder(order('day-ok'));
    expect((await found(broker, 'day-ok')).status).toBe('accepted');
  });

  it("reports a late fill's activity only from the next session's close, with its own time", async () => {
    const i = findSession('2024-03-04', () => true);
    const day = barAt(i);
    const next = barAt(i + 1);
    const { server, broker } = await setup(ny(day.date, '09:00'), { realism: { lateFillRate: 1 } });
    await broker.submitOrder(order('late', { timeInForce: 'opg' }));
    server.setTime(ny(day.date, '16:15'));
    expect((await found(broker, 'late')).status).toBe('filled');
    expect(await broker.getActivities({})).toEqual([]);
    server.setTime(ny(next.date, '15:59'));
    expect(await broker.getActivities({})).toEqual([]);
    server.setTime(ny(next.date, '16:15'));
    const [fill] = await broker.getActivities({});
    expect(fill).toMatchObject({ kind: 'fill', symbol: 'SPY', qty: 10, time: ny(day.date, '09:30') });
  });
});

describe('paper broker: orders, ids and refusals', () => {
  it('refuses a second order with the same client order id: DuplicateClientOrderIdError', async () => {
    const { broker } = await setup(ny('2024-03-01', '08:00'));
    await broker.submitOrder(order('same-id'));
    const error = await caught(broker.submitOrder(order('same-id', { qty: 1 })));
    expect(error).toBeInstanceOf(DuplicateClientOrderIdError);
    expect((error as DuplicateClientOrderIdError).clientOrderId).toBe('same-id');
    expect(error.message).toContain('client_order_id must be unique');
    const all = await broker.listOrders({ status: 'all' });
    expect(all.map((o) => [o.clientOrderId, o.qty])).toEqual([['same-id', 10]]);
  });

  it('answers null for an unknown client order id', async () => {
    const { broker } = await setup(ny('2024-03-01', '08:00'));
    expect(await broker.getOrderByClientOrderId('never-sent')).toBeNull();
  });

  it('rejects what Alpaca rejects, with its message: unknown asset, sub-penny price, no buying power', async () => {
    const { broker } = await setup(ny('2024-03-01', '08:00'));
    const unknown = await caught(broker.submitOrder(order('a', { symbol: 'NOPE' })));
    expect(unknown).toBeInstanceOf(BrokerRejectedError);
    expect(unknown.message).toContain('asset "NOPE" not found');
    const subPenny = await caught(broker.submitOrder(order('b', { type: 'limit', limitPrice: 100.123 })));
    expect(subPenny).toBeInstanceOf(BrokerRejectedError);
    expect(subPenny.message).toContain('sub-penny increment');
    const tooBig = await caught(broker.submitOrder(order('c', { qty: 1000 })));
    expect(tooBig).toBeInstanceOf(BrokerRejectedError);
    expect(tooBig).toMatchObject({ status: 403, code: 40310000 });
    expect(tooBig.message).toContain('insufficient buying power');
  });

  it('cancels an open order idempotently, and refuses to cancel a filled one', async () => {
    const { server, broker } = await setup(ny('2024-03-01', '08:00'));
    const limit = await broker.submitOrder(
      order('limit', { type: 'limit', limitPrice: 1, timeInForce: 'gtc' }),
    );
    const market = await broker.submitOrder(order('market', { qty: 1 }));
    await broker.cancelOrder(limit.id);
    await broker.cancelOrder(limit.id);
    expect(await found(broker, 'limit')).toMatchObject({ status: 'canceled' });
    server.setTime(ny('2024-03-01', '10:00'));
    const error = await caught(broker.cancelOrder(market.id));
    expect(error).toBeInstanceOf(BrokerRejectedError);
    expect(error.message).toContain('order is already in "filled" state');
    const missing = await caught(broker.cancelOrder('00000000-0000-4000-8000-000000000000'));
    expect(missing).toMatchObject({ status: 404 });
  });

  it('lists orders by status, symbol and submission time, paging past 500, and pages activities', async () => {
    const day = '2024-03-01';
    const { server, broker } = await setup(ny(day, '10:00'), { initialCash: 1_000_000 });
    for (let n = 0; n < 501; n++) {
      await broker.submitOrder(order(`m-${n}`, { qty: 1, side: n % 2 === 0 ? 'buy' : 'sell' }));
      server.advance(1000);
    }
    await broker.submitOrder(
      order('qqq', { symbol: 'QQQ', qty: 1, type: 'limit', limitPrice: 1, timeInForce: 'gtc' }),
    );
    server.resetRequests();
    const all = await broker.listOrders({ status: 'all' });
    expect(all).toHaveLength(502);
    expect(all.map((o) => o.clientOrderId).slice(0, 3)).toEqual(['m-0', 'm-1', 'm-2']);
    expect(new Set(all.map((o) => o.id)).size).toBe(502);
    expect(server.requestLog.filter((r) => r.path === '/v2/orders')).toHaveLength(2);
    expect((await broker.listOrders({ status: 'open' })).map((o) => o.clientOrderId)).toEqual(['qqq']);
    expect(await broker.listOrders({ status: 'closed', symbols: ['QQQ'] })).toEqual([]);
    const later = await broker.listOrders({ status: 'all', after: ny(day, '10:08') });
    // `after` is exclusive: m-480, submitted at 10:08:00 exactly, is not after it.
    expect(later.map((o) => o.clientOrderId)).toEqual([
      ...Array.from({ length: 20 }, (_, n) => `m-${n + 481}`),
      'qqq',
    ]);

    server.resetRequests();
    const fills = await broker.getActivities({});
    expect(fills).toHaveLength(501);
    expect(new Set(fills.map((f) => f.id)).size).toBe(501);
    expect(fills.map((f) => (f.kind === 'fill' ? f.side : f.kind)).slice(0, 3)).toEqual([
      'buy',
      'sell',
      'buy',
    ]);
    expect(server.requestLog.filter((r) => r.path === '/v2/account/activities')).toHaveLength(6);
  });

  it('lists as open exactly the working orders and legs of the whole history, nested or flat, by symbol', async () => {
    const day = '2024-03-01';
    const bar = barAt(spyDates.indexOf(day));
    const { server, broker } = await setup(ny(day, '08:00'), { initialCash: 1_000_000 });
    const wire = async (query: string): Promise<{ client_order_id: string; status: string }[]> => {
      const response = await fetch(`${server.url}/v2/orders?${query}`, {
        headers: { 'APCA-API-KEY-ID': KEY_ID, 'APCA-API-SECRET-KEY': SECRET },
      });
      return (await response.json()) as { client_order_id: string; status: string }[];
    };
    const working = new Set(['accepted', 'new', 'held', 'partially_filled']);
    const check = async () => {
      for (const nested of ['true', 'false']) {
        for (const symbols of ['', '&symbols=SPY', '&symbols=QQQ']) {
          const all = await wire(`status=all&limit=500&direction=asc&nested=${nested}${symbols}`);
          const open = await wire(`status=open&limit=500&direction=asc&nested=${nested}${symbols}`);
          const expected =
            nested === 'true'
              ? all.filter(
                  (o) =>
                    working.has(o.status) ||
                    ((o as { legs?: { status: string }[] }).legs ?? []).some((l) => working.has(l.status)),
                )
              : all.filter((o) => working.has(o.status));
          expect(open.map((o) => o.client_order_id)).toEqual(expected.map((o) => o.client_order_id));
        }
      }
    };
    // Market orders that fill, stops and limits that rest, one cancelled, and a bracket whose legs
    // are held, then working after its entry fills, then done.
    for (let n = 0; n < 6; n++) await broker.submitOrder(order(`m-${n}`, { qty: 1 }));
    const stops = [];
    for (let n = 0; n < 4; n++) {
      stops.push(
        await broker.submitOrder(
          order(`stop-${n}`, {
            side: 'sell',
            qty: 1,
            type: 'stop',
            stopPrice: floorCents(bar.low * 0.5),
            timeInForce: 'gtc',
          }),
        ),
      );
    }
    await broker.submitOrder(
      order('qqq', { symbol: 'QQQ', qty: 1, type: 'limit', limitPrice: 1, timeInForce: 'gtc' }),
    );
    await broker.submitOrder(
      order('bracket', {
        qty: 1,
        timeInForce: 'gtc',
        bracket: { takeProfitLimit: ceilCents(bar.high * 2), stopLoss: floorCents(bar.low * 0.5) },
      }),
    );
    await broker.cancelOrder((stops[1] as BrokerOrder).id);
    await check();
    server.setTime(ny(day, '12:00'));
    expect((await found(broker, 'bracket')).legs.map((l) => l.status)).toEqual(['new', 'new']);
    await broker.cancelOrder((stops[2] as BrokerOrder).id);
    await check();
    await broker.cancelOrder((await found(broker, 'bracket')).legs[0]?.id as string);
    await check();
    expect((await wire('status=open&nested=true&symbols=SPY')).map((o) => o.client_order_id).sort()).toEqual([
      'stop-0',
      'stop-3',
    ]);
  });
});

describe('paper broker: faults', () => {
  it('retries a GET after 429s, waiting what Retry-After says, then succeeds', async () => {
    const { server } = await setup(ny('2024-03-01', '08:00'));
    const retries: BrokerRetryEvent[] = [];
    const broker = adapter(server, {
      retry: { maxRetries: 3, baseDelayMs: 5, maxDelayMs: 20 },
      onRetry: (e) => retries.push(e),
    });
    server.injectFaults({
      kind: 'status',
      status: 429,
      times: 2,
      retryAfterSeconds: 0,
      route: 'GET /v2/account',
    });
    expect(await broker.getAccount()).toMatchObject({ cash: 100_000 });
    expect(retries.map((r) => [r.operation, r.attempt, r.status, r.delayMs])).toEqual([
      ['get account', 1, 429, 0],
      ['get account', 2, 429, 0],
    ]);
    expect(server.requestLog.map((r) => r.status)).toEqual([429, 429, 200]);
  });

  it('gives up on a GET after the allowed retries with BrokerUnavailableError', async () => {
    const { server, broker } = await setup(
      ny('2024-03-01', '08:00'),
      {},
      { retry: { maxRetries: 2, baseDelayMs: 1 } },
    );
    server.injectFaults({ kind: 'status', status: 503, times: 5 });
    const error = await caught(broker.getClock());
    expect(error).toBeInstanceOf(BrokerUnavailableError);
    expect(error.message).toContain('HTTP 503 after 2 retries');
    expect(server.requests).toBe(3);
  });

  it('does not retry a submission that got a 500 or a 429: BrokerUnavailableError, no order created', async () => {
    const { server, broker } = await setup(ny('2024-03-01', '08:00'));
    server.injectFaults({ kind: 'status', status: 500, route: 'POST /v2/orders' });
    const error = await caught(broker.submitOrder(order('five-hundred')));
    expect(error).toBeInstanceOf(BrokerUnavailableError);
    expect((error as BrokerUnavailableError).status).toBe(500);
    expect(error.message).toContain('resolve it by client order id');
    server.injectFaults({ kind: 'status', status: 429, route: 'POST /v2/orders' });
    expect(await caught(broker.submitOrder(order('rate-limited')))).toBeInstanceOf(BrokerUnavailableError);
    expect(server.requestLog.filter((r) => r.method === 'POST')).toHaveLength(2);
    expect(await broker.getOrderByClientOrderId('five-hundred')).toBeNull();
    expect(await broker.getOrderByClientOrderId('rate-limited')).toBeNull();
  });

  it('reports a connection dropped after the order was accepted as BrokerUnavailableError; the order is found by client order id', async () => {
    const { server, broker } = await setup(ny('2024-03-01', '08:00'));
    server.injectFaults({ kind: 'drop', when: 'after-handling', route: 'POST /v2/orders' });
    const error = await caught(broker.submitOrder(order('dropped')));
    expect(error).toBeInstanceOf(BrokerUnavailableError);
    expect(error.message).toContain('the connection failed');
    expect(server.requestLog.filter((r) => r.method === 'POST').map((r) => r.status)).toEqual([0]);
    const resolved = await found(broker, 'dropped');
    expect(resolved).toMatchObject({ clientOrderId: 'dropped', status: 'accepted', qty: 10 });
    const retried = await caught(broker.submitOrder(order('dropped')));
    expect(retried).toBeInstanceOf(DuplicateClientOrderIdError);
  });

  it('retries a cancel (DELETE) after a 500, and after a dropped answer treats "already canceled" as done', async () => {
    const { server, broker } = await setup(ny('2024-03-01', '08:00'));
    const first = await broker.submitOrder(
      order('first', { type: 'limit', limitPrice: 1, timeInForce: 'gtc' }),
    );
    const second = await broker.submitOrder(
      order('second', { type: 'limit', limitPrice: 1, timeInForce: 'gtc' }),
    );
    server.injectFaults({ kind: 'status', status: 500, route: 'DELETE /v2/orders/:id' });
    await broker.cancelOrder(first.id);
    server.injectFaults({ kind: 'drop', when: 'after-handling', route: 'DELETE /v2/orders/:id' });
    await broker.cancelOrder(second.id);
    expect(server.requestLog.filter((r) => r.method === 'DELETE').map((r) => r.status)).toEqual([
      500, 204, 0, 422,
    ]);
    expect((await broker.listOrders({ status: 'all' })).map((o) => o.status)).toEqual([
      'canceled',
      'canceled',
    ]);
  });

  it('names the field of a malformed response, and never a key', async () => {
    const { server, broker } = await setup(ny('2024-03-01', '08:00'));
    server.injectFaults({ kind: 'malformed-field', field: 'equity', route: 'GET /v2/account' });
    const missing = await caught(broker.getAccount());
    expect(missing).toBeInstanceOf(BrokerResponseError);
    expect(missing.message).toContain('field "equity"');
    await broker.submitOrder(
      order('bracket', { timeInForce: 'gtc', bracket: { takeProfitLimit: 900, stopLoss: 100 } }),
    );
    server.injectFaults({ kind: 'malformed-field', field: 'legs.1.qty', json: '"ten"' });
    const leg = await caught(broker.listOrders({ status: 'open' }));
    expect(leg).toBeInstanceOf(BrokerResponseError);
    expect(leg.message).toContain('item 0: field "legs.1.qty"');

    const wrong = new AlpacaBroker({
      keyId: KEY_ID,
      secret: 'wrong-secret-key',
      baseUrl: server.url,
      rateLimit: false,
    });
    const refused = await caught(wrong.getPositions());
    expect(refused).toBeInstanceOf(BrokerRejectedError);
    expect(refused).toMatchObject({ status: 401 });
    for (const error of [missing, leg, refused]) {
      expect(error.message).not.toContain(KEY_ID);
      expect(error.message).not.toContain(SECRET);
      expect(error.message).not.toContain('wrong-secret-key');
    }
  });
});

describe('paper broker: clock and calendar', () => {
  it('has a bar for every session of the calendar in the bundled data, and a session for every bar', async () => {
    const { broker } = await setup(ny('2024-03-01', '08:00'));
    const first = spyDates[0] as string;
    const last = spyDates.at(-1) as string;
    const calendar = await broker.getCalendar({ from: first, to: last });
    const sessions = calendar.map((d) => d.date);
    for (const symbol of ['SPY', 'QQQ', 'AAPL', 'MSFT']) {
      const dates = readFileSync(join(DATA_DIR, `${symbol}.csv`), 'utf8')
        .trim()
        .split('\n')
        .slice(1)
        .map((line) => line.split(',')[0]);
      const inData = new Set(dates);
      const inCalendar = new Set(sessions);
      expect({ symbol, notSessions: dates.filter((d) => !inCalendar.has(d as string)) }).toEqual({
        symbol,
        notSessions: [],
      });
      expect({ symbol, withoutBar: sessions.filter((d) => !inData.has(d)) }).toEqual({
        symbol,
        withoutBar: [],
      });
    }
    expect(calendar.every((d) => d.open === '09:30' && (d.close === '16:00' || d.close === '13:00'))).toBe(
      true,
    );
  });

  it('closes at 13:00 on an early-close day: calendar, clock and day-order expiry', async () => {
    const day = '2024-11-29';
    const { server, broker } = await setup(ny(day, '08:00'));
    expect(await broker.getCalendar({ from: '2024-11-27', to: '2024-12-02' })).toEqual([
      { date: '2024-11-27', open: '09:30', close: '16:00' },
      { date: '2024-11-29', open: '09:30', close: '13:00' },
      { date: '2024-12-02', open: '09:30', close: '16:00' },
    ]);
    await broker.submitOrder(order('limit', { type: 'limit', limitPrice: 1 }));
    server.setTime(ny(day, '12:59'));
    expect(await broker.getClock()).toEqual({
      timestamp: '2024-11-29T12:59:00.000-05:00',
      isOpen: true,
      nextOpen: '2024-12-02T09:30:00.000-05:00',
      nextClose: '2024-11-29T13:00:00.000-05:00',
    });
    server.advance(60_000);
    expect((await broker.getClock()).isOpen).toBe(false);
    const expired = await found(broker, 'limit');
    expect(expired.status).toBe('expired');
    expect(server.time).toBe('2024-11-29T18:00:00.000Z');
  });

  it('reads a summer clock with the EDT offset, and never moves the clock backwards', async () => {
    const { server, broker } = await setup(ny('2024-07-03', '09:00'));
    expect(await broker.getClock()).toEqual({
      timestamp: '2024-07-03T09:00:00.000-04:00',
      isOpen: false,
      nextOpen: '2024-07-03T09:30:00.000-04:00',
      nextClose: '2024-07-03T13:00:00.000-04:00',
    });
    expect(() => server.setTime(ny('2024-07-02', '09:00'))).toThrow(InvalidParameterError);
    expect(() => server.setTime('2024-07-03 10:00')).toThrow(InvalidParameterError);
  });

  it('finds a New York instant the same when asked again (remembered), and refuses a DST gap each time', () => {
    for (let n = 0; n < 2; n++) {
      expect(new Date(newYorkInstant('2024-03-10', '01:59')).toISOString()).toBe('2024-03-10T06:59:00.000Z');
      expect(new Date(newYorkInstant('2024-03-10', '03:00')).toISOString()).toBe('2024-03-10T07:00:00.000Z');
      expect(new Date(newYorkInstant('2024-11-03', '00:00')).toISOString()).toBe('2024-11-03T04:00:00.000Z');
      expect(new Date(newYorkInstant('2024-11-04', '00:00')).toISOString()).toBe('2024-11-04T05:00:00.000Z');
      expect(() => newYorkInstant('2024-03-10', '02:30')).toThrow(InvalidParameterError);
      expect(() => newYorkInstant('2024-02-30', '09:30')).toThrow(InvalidParameterError);
    }
  });

  it('holds the holiday and early-close tables to the exchange rules, 2015..2027', () => {
    const iso = (t: number) => new Date(t).toISOString().slice(0, 10);
    const day = (y: number, m: number, d: number) => Date.UTC(y, m - 1, d);
    const weekday = (t: number) => new Date(t).getUTCDay();
    const nth = (y: number, m: number, wd: number, n: number) => {
      let t = day(y, m, 1);
      while (weekday(t) !== wd) t += 86_400_000;
      return t + (n - 1) * 7 * 86_400_000;
    };
    const lastOf = (y: number, m: number, wd: number) => {
      let t = day(y, m + 1, 1) - 86_400_000;
      while (weekday(t) !== wd) t -= 86_400_000;
      return t;
    };
    const observed = (t: number) =>
      weekday(t) === 6 ? t - 86_400_000 : weekday(t) === 0 ? t + 86_400_000 : t;
    const easter = (y: number) => {
      const a = y % 19;
      const b = Math.floor(y / 100);
      const c = y % 100;
      const d = Math.floor(b / 4);
      const e = b % 4;
      const f = Math.floor((b + 8) / 25);
      const g = Math.floor((b - f + 1) / 3);
      const h = (19 * a + b - d - g + 15) % 30;
      const i = Math.floor(c / 4);
      const k = c % 4;
      const l = (32 + 2 * e + 2 * i - h - k) % 7;
      const m = Math.floor((a + 11 * h + 22 * l) / 451);
      const month = Math.floor((h + l - 7 * m + 114) / 31);
      return day(y, month, ((h + l - 7 * m + 114) % 31) + 1);
    };
    const closures: string[] = ['2018-12-05', '2025-01-09'];
    const early: string[] = [];
    for (let y = CALENDAR_FIRST_YEAR; y <= CALENDAR_LAST_YEAR; y++) {
      if (weekday(day(y, 1, 1)) !== 6) closures.push(iso(observed(day(y, 1, 1))));
      closures.push(iso(nth(y, 1, 1, 3)), iso(nth(y, 2, 1, 3)), iso(easter(y) - 2 * 86_400_000));
      closures.push(iso(lastOf(y, 5, 1)));
      if (y >= 2022) closures.push(iso(observed(day(y, 6, 19))));
      closures.push(iso(observed(day(y, 7, 4))), iso(nth(y, 9, 1, 1)), iso(nth(y, 11, 4, 4)));
      closures.push(iso(observed(day(y, 12, 25))));
      if (weekday(day(y, 7, 3)) >= 1 && weekday(day(y, 7, 3)) <= 4) early.push(iso(day(y, 7, 3)));
      early.push(iso(nth(y, 11, 4, 4) + 86_400_000));
      if (weekday(day(y, 12, 24)) >= 1 && weekday(day(y, 12, 24)) <= 4) early.push(iso(day(y, 12, 24)));
    }
    expect(nyseClosures()).toEqual(closures.sort());
    expect(nyseEarlyCloses()).toEqual(early.sort());
    expect(tradingDays('2021-12-30', '2022-01-03').map((d) => d.date)).toEqual([
      '2021-12-30',
      '2021-12-31',
      '2022-01-03',
    ]);
  });
});
