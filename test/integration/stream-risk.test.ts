import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { afterEach, describe, expect, it } from 'vitest';
import { stateStoreDocumentClient } from '../../shared/adapters/dynamodb/state-store.js';
import { DynamoStreamLease } from '../../shared/adapters/dynamodb/stream-lease.js';
import { type LocalStream, startLocalStream } from '../../shared/adapters/local/alpaca-stream-server.js';
import { LOCAL_KEYS } from '../../shared/adapters/local/live-stack.js';
import { clientOrderId } from '../../shared/core/live/orders.js';
import type { Broker, OrderRequest } from '../../shared/core/ports/broker.js';
import type { PositionRecord } from '../../shared/core/ports/state-store.js';
import { endOfDay } from '../../shared/live/end-of-day.js';
import { executeOrders } from '../../shared/live/execute-orders.js';
import { generateSignals } from '../../shared/live/generate-signals.js';
import { marketOpenCheck } from '../../shared/live/market-open-check.js';
import { riskCheck } from '../../shared/live/risk-check.js';
import { placeStop } from '../../shared/live/stops.js';
import { placeIntentOnce } from '../../shared/live/submit.js';
import { StreamLeaseHeldError } from '../../shared/stream/lease.js';
import { type StreamRun, startStream } from '../../shared/stream/run.js';
import { splitBarsDir, startLiveStack } from '../helpers/live-stack.js';

// 2021-03-18, as in live-steps.test.ts: the strategy enters SPY (and others) at this open.
const DAY = '2021-03-18';
const at = (hhmm: string) =>
  `${DAY}T${String(Number(hhmm.slice(0, 2)) + 4).padStart(2, '0')}:${hhmm.slice(3)}:00.000Z`;

let stack: Awaited<ReturnType<typeof startLiveStack>> | undefined;
let server: LocalStream | undefined;
const runs: StreamRun[] = [];
afterEach(async () => {
  for (const run of runs.splice(0)) await run.stop();
  await server?.close();
  server = undefined;
  await stack?.close();
  stack = undefined;
});

const until = async (check: () => boolean | Promise<boolean>, what: string) => {
  for (let i = 0; i < 500; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
};

/** The day's entries sent before the open and filled at 09:30. */
async function morning(
  options: Pick<Parameters<typeof startLiveStack>[0], 'corporateActions' | 'dataDir'> = {},
) {
  stack = await startLiveStack({ startTime: at('08:00'), ...options });
  const { ctx } = stack;
  await marketOpenCheck(ctx, at('09:00'));
  const signals = await generateSignals(ctx, at('09:10'));
  await executeOrders(ctx, at('09:15'));
  stack.alpaca.setTime(at('09:31'));
  server = await startLocalStream(LOCAL_KEYS);
  return { ctx, entries: signals.intents.filter((i) => i.purpose === 'entry') };
}

/** SPY splits 4:1 at day 2's open (2021-03-19), listed that day; the bars from day 2 in the new shares. */
const spySplit4to1OnDay2 = () => ({
  corporateActions: [{ kind: 'split' as const, symbol: 'SPY', date: '2021-03-19', ratio: 4 }],
  dataDir: splitBarsDir('SPY', '2021-03-19', 4),
});

/**
 * SPY held into day 2, the day of its 4:1 split (listed), and day 1's list (old shares) written
 * again with SPY's stop far below the price (0.04: the next trade ratchets it): the stack's
 * context, day 2, its times, the broker's SPY position and day 1's list as it was.
 */
async function spySplitDayStopFarBelow() {
  const { ctx, day2, at2 } = await heldIntoDay2(spySplit4to1OnDay2());
  const spy = (await ctx.broker.getPositions()).find((p) => p.symbol === 'SPY');
  if (spy === undefined) throw new Error('expected a SPY position');
  const d1 = await ctx.store.getLatestPositions();
  if (d1 === undefined) throw new Error('expected a positions list');
  await ctx.store.putPositions(
    d1.date,
    d1.positions.map((p) => (p.symbol === 'SPY' ? { ...p, stop: 0.04 } : p)),
    d1.writtenAt,
    d1.bookedFills,
  );
  return { ctx, day2, at2, spy, d1 };
}

/**
 * The morning's SPY entry held through day 1 (a risk check at 09:31, end-of-day), then day 2's
 * market-open check, the broker's clock at 09:45 of day 2.
 */
async function heldIntoDay2(options: Parameters<typeof morning>[0] = {}, bucket = 0) {
  const { ctx } = await morning(options);
  await riskCheck(ctx, at('09:31'));
  // Shares bought by hand on day 1: day 1's end-of-day puts them in the UNASSIGNED bucket.
  if (bucket > 0) {
    await ctx.broker.submitOrder({
      clientOrderId: 'desk-manual-stream',
      symbol: 'SPY',
      side: 'buy',
      qty: bucket,
      type: 'market',
      timeInForce: 'day',
    });
  }
  (stack as NonNullable<typeof stack>).alpaca.setTime(at('16:15'));
  await endOfDay(ctx, at('16:15'));
  const day2 = '2021-03-19';
  const at2 = (hhmm: string) => at(hhmm).replace(DAY, day2);
  (stack as NonNullable<typeof stack>).alpaca.setTime(at2('09:00'));
  await marketOpenCheck(ctx, at2('09:00'));
  (stack as NonNullable<typeof stack>).alpaca.setTime(at2('09:45'));
  return { ctx, day2, at2 };
}

/**
 * Day 2's positions list as a 4:1 split the broker applied and does not list leaves it: SPY in the
 * old shares (a quarter of the shares at four times the price, the same cost basis; its stop four
 * times the new one), written at `at` when given.
 */
async function spyListInOldShares(ctx: NonNullable<typeof stack>['ctx'], day2: string, at?: string) {
  const latest = await ctx.store.getLatestPositions();
  const list = (latest?.positions ?? []).map((p) =>
    p.symbol === 'SPY'
      ? { ...p, qty: p.qty / 4, avgEntryPrice: p.avgEntryPrice * 4, stop: (p.stop as number) * 4 }
      : p,
  );
  if (at === undefined) await ctx.store.putPositions(day2, list);
  else await ctx.store.putPositions(day2, list, at, {});
}

/**
 * The stream started at day 2's 10:00 and fed one SPY trade at `price`: it decides on it without an
 * error, sells nothing, and leaves SPY's broker quantity (`qty`) and its resting stops (`before`) as
 * they were, logging once that it leaves the symbol alone.
 */
async function expectStreamLeavesSpyAlone(
  ctx: NonNullable<typeof stack>['ctx'],
  at2: (hhmm: string) => string,
  price: number,
  qty: number,
  before: Awaited<ReturnType<typeof stopsAt>>,
) {
  const run = await stream(ctx, at2('10:00'));
  server?.publish([{ T: 't', S: 'SPY', i: 1, x: 'V', p: price, s: 100, c: ['@'], t: at2('10:00'), z: 'A' }]);
  await until(() => run.engine.counts.decisions > 0, 'the decision on the trade');
  await run.engine.settled();
  expect(run.engine.counts.errors).toBe(0);
  expect(await marketSells(ctx)).toEqual([]);
  expect((await ctx.broker.getPositions()).find((p) => p.symbol === 'SPY')?.qty).toBe(qty);
  expect((await stopsAt(ctx, 'SPY')).map((o) => o.id)).toEqual(before.map((o) => o.id));
  expect(stack?.logs.filter((l) => l.includes('the stream leaves the symbol alone'))).toHaveLength(1);
}

/** The lease on the stack's state table (dynalite), as the ECS task takes it. */
const dynamoLease = () =>
  new DynamoStreamLease(
    stateStoreDocumentClient(new DynamoDBClient({ endpoint: process.env.DYNAMODB_ENDPOINT as string })),
    process.env.STATE_TABLE as string,
  );

async function stream(ctx: NonNullable<typeof stack>['ctx'], time: string, holder = 'test-task') {
  const lease = dynamoLease();
  const run = await startStream({
    ctx,
    url: (server as LocalStream).url,
    ...LOCAL_KEYS,
    lease,
    holder,
    now: () => Date.parse(time),
    pollMs: 60_000,
    flushMs: 60_000,
    emit: () => {},
  });
  runs.push(run);
  return run;
}

const stopsAt = async (ctx: NonNullable<typeof stack>['ctx'], symbol?: string) =>
  (await ctx.broker.listOrders({ status: 'open' })).filter(
    (o) => o.type === 'stop' && (symbol === undefined || o.symbol === symbol),
  );

/** The broker with every call's start and end written to `log` (cancels with the order id, orders with theirs). */
function recording(broker: Broker, log: string[]): Broker {
  return new Proxy(broker, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver);
      if (typeof value !== 'function') return value;
      return async (...args: unknown[]) => {
        const what =
          property === 'submitOrder'
            ? `submitOrder ${(args[0] as OrderRequest).clientOrderId}`
            : property === 'cancelOrder'
              ? `cancelOrder ${String(args[0])}`
              : String(property);
        log.push(`start ${what}`);
        try {
          return await value.apply(target, args);
        } finally {
          log.push(`end ${what}`);
        }
      };
    },
  });
}

/** SPY's stop moved above its price (as a ratchet would): the next trade at the price crosses it. */
async function stopAboveSpy(ctx: NonNullable<typeof stack>['ctx']) {
  const spy = (await ctx.broker.getPositions()).find((p) => p.symbol === 'SPY');
  if (spy === undefined) throw new Error('expected a SPY position');
  const latest = await ctx.store.getLatestPositions();
  const stop = Math.round((spy.currentPrice + 1) * 100) / 100;
  await ctx.store.putPositions(
    DAY,
    (latest?.positions ?? []).map((p) => (p.symbol === 'SPY' ? { ...p, stop } : p)),
  );
  const trade = {
    T: 't',
    S: 'SPY',
    i: 1,
    x: 'V',
    p: spy.currentPrice,
    s: 100,
    c: ['@'],
    t: at('10:00'),
    z: 'A',
  };
  return { spy, trade };
}

const flattenId = (ctx: NonNullable<typeof stack>['ctx']) =>
  clientOrderId({ stage: 'paper', strategy: ctx.config.name, symbol: 'SPY', date: DAY, purpose: 'flatten' });

const marketSells = async (ctx: NonNullable<typeof stack>['ctx']) =>
  (await ctx.broker.listOrders({ status: 'all', symbols: ['SPY'] })).filter(
    (o) => o.side === 'sell' && o.type === 'market',
  );

describe('the stream on the local stack', () => {
  it('places the protective stops as soon as the entries fill, without waiting for the risk check', async () => {
    const { ctx, entries } = await morning();
    expect(entries.length).toBeGreaterThan(0);
    expect(await stopsAt(ctx)).toHaveLength(0);
    const run = await stream(ctx, at('09:31'));
    expect(run.engine.counts.stopsPlaced).toBe(entries.length);
    const stops = await stopsAt(ctx);
    expect(stops.map((o) => o.symbol).sort()).toEqual(entries.map((e) => e.symbol).sort());
    // The held symbols' trades and quotes are subscribed, and the watchlist's bars.
    const subscribe = server?.actions.filter((a) => a.action === 'subscribe').at(-1);
    expect(subscribe).toMatchObject({ trades: expect.arrayContaining(entries.map((e) => e.symbol)) });
    expect(subscribe).toMatchObject({ bars: expect.arrayContaining(ctx.config.watchlist) });
    // The scheduled risk check that follows finds every stop in place and sends nothing.
    const check = await riskCheck(ctx, at('09:45'));
    expect(check.stopsPlaced).toEqual([]);
  });

  it('a stop crossed by a trade exits once, even with the risk check running at the same moment', async () => {
    const { ctx } = await morning();
    await riskCheck(ctx, at('09:31'));
    const spy = (await ctx.broker.getPositions()).find((p) => p.symbol === 'SPY');
    if (spy === undefined) throw new Error('expected a SPY position');
    // The stop moved above the price (as a ratchet would): both the stream and the check see it crossed.
    const latest = await ctx.store.getLatestPositions();
    const stop = Math.round((spy.currentPrice + 1) * 100) / 100;
    await ctx.store.putPositions(
      DAY,
      (latest?.positions ?? []).map((p) => (p.symbol === 'SPY' ? { ...p, stop } : p)),
    );
    const run = await stream(ctx, at('10:00'));
    const trade = {
      T: 't',
      S: 'SPY',
      i: 1,
      x: 'V',
      p: spy.currentPrice,
      s: 100,
      c: ['@'],
      t: at('10:00'),
      z: 'A',
    };
    server?.publish([trade]);
    const check = riskCheck(ctx, at('10:00'));
    await until(
      () => run.engine.counts.exits + run.engine.counts.errors > 0 || run.engine.exits.size > 0,
      'the stream exit',
    );
    await check;
    await run.engine.settled();
    expect(run.engine.counts.errors).toBe(0);

    const id = clientOrderId({
      stage: 'paper',
      strategy: ctx.config.name,
      symbol: 'SPY',
      date: DAY,
      purpose: 'flatten',
    });
    const sells = (await ctx.broker.listOrders({ status: 'all', symbols: ['SPY'] })).filter(
      (o) => o.side === 'sell' && o.type === 'market',
    );
    expect(sells.map((o) => o.clientOrderId)).toEqual([id]);
    expect((await ctx.broker.getPositions()).find((p) => p.symbol === 'SPY')).toBeUndefined();
    expect(await stopsAt(ctx, 'SPY')).toEqual([]);
    expect((await ctx.store.getIntent(DAY, id))?.status).toBe('filled');
    // More trades through the stop change nothing.
    server?.publish([{ ...trade, i: 2 }]);
    await riskCheck(ctx, at('10:15'));
    await run.engine.settled();
    expect(
      (await ctx.broker.listOrders({ status: 'all', symbols: ['SPY'] })).filter(
        (o) => o.side === 'sell' && o.type === 'market',
      ),
    ).toHaveLength(1);
  });

  it('acts on no stop of a symbol whose broker position shows a split the activities do not list (the list in the old shares)', async () => {
    // The next day, no fill in SPY.
    const { ctx, day2, at2 } = await heldIntoDay2();
    const spy = (await ctx.broker.getPositions()).find((p) => p.symbol === 'SPY');
    if (spy === undefined) throw new Error('expected a SPY position');
    const restingBefore = await stopsAt(ctx, 'SPY');
    expect(restingBefore).toHaveLength(1);
    // The broker's 4:1 split, seen from a list in the old shares: a quarter of the shares at four
    // times the price (the same cost basis), its stop four times the new one: the price is far
    // below it.
    await spyListInOldShares(ctx, day2);
    await expectStreamLeavesSpyAlone(ctx, at2, spy.currentPrice, spy.qty, restingBefore);
  });

  it('acts on no stop of a symbol whose broker position shows a split the activities do not list, on a day with a fill in it (the fill weighed)', async () => {
    const { ctx, day2, at2 } = await heldIntoDay2();
    const start = (await ctx.broker.getPositions()).find((p) => p.symbol === 'SPY');
    if (start === undefined) throw new Error('expected a SPY position');
    // The list as the broker's 4:1 split would leave it (old shares, its stop four times the new),
    // with no fill of the day booked; then the config buys 20 more SPY.
    await spyListInOldShares(ctx, day2, at2('09:40'));
    const id = clientOrderId({
      stage: ctx.stage,
      strategy: ctx.config.name,
      symbol: 'SPY',
      date: day2,
      purpose: 'entry',
    });
    const bought = await placeIntentOnce(
      ctx,
      {
        clientOrderId: id,
        sleeve: ctx.config.name,
        date: day2,
        strategy: ctx.config.name,
        symbol: 'SPY',
        purpose: 'entry',
        side: 'buy',
        qty: 20,
        type: 'market',
        timeInForce: 'day',
        referencePrice: start.currentPrice,
        status: 'recorded',
        filledQty: 0,
        configHash: ctx.configHash,
        gitCommit: ctx.gitCommit,
        createdAt: at2('09:45'),
        updatedAt: at2('09:45'),
      },
      at2('09:45'),
    );
    expect(bought.status).toBe('filled');
    const spy = (await ctx.broker.getPositions()).find((p) => p.symbol === 'SPY');
    expect(spy?.qty).toBe(start.qty + 20);
    const restingBefore = await stopsAt(ctx, 'SPY');
    await expectStreamLeavesSpyAlone(ctx, at2, start.currentPrice, start.qty + 20, restingBefore);
  });

  it("applies a split the activities list that the day's list has not applied yet (before the risk check): its stop and exit in the new shares, the bucket's shares left", async () => {
    const { ctx, at2 } = await heldIntoDay2(spySplit4to1OnDay2(), 5);
    const spy = (await ctx.broker.getPositions()).find((p) => p.symbol === 'SPY');
    if (spy === undefined) throw new Error('expected a SPY position');
    // Day 1's list, in the old shares (a quarter of the broker's: the sleeve's and the bucket's 5),
    // its stop moved to four times a cent above the new price: in the new shares the next trade at
    // the price crosses it.
    const d1 = await ctx.store.getLatestPositions();
    if (d1 === undefined) throw new Error('expected a positions list');
    const old = d1.positions.find((p) => p.symbol === 'SPY' && p.sleeve === ctx.config.name);
    expect(d1.positions.find((p) => p.symbol === 'SPY' && p.sleeve === 'UNASSIGNED')?.qty).toBe(5);
    expect(old?.qty).toBe(spy.qty / 4 - 5);
    const stop = Math.round((spy.currentPrice + 0.01) * 100) / 100;
    await ctx.store.putPositions(
      d1.date,
      d1.positions.map((p) => (p === old ? { ...p, stop: stop * 4 } : p)),
      d1.writtenAt,
      d1.bookedFills,
    );
    const run = await stream(ctx, at2('10:00'));
    server?.publish([
      { T: 't', S: 'SPY', i: 1, x: 'V', p: spy.currentPrice, s: 100, c: ['@'], t: at2('10:00'), z: 'A' },
    ]);
    await until(async () => (await marketSells(ctx)).length > 0, 'the stream exit');
    await run.engine.settled();
    expect(run.engine.counts.errors).toBe(0);
    // The sleeve's shares in the new shares (4 x its own), the bucket's 20 left to the operator.
    expect((await marketSells(ctx)).map((o) => o.qty)).toEqual([spy.qty - 20]);
    expect([...run.engine.exits.values()]).toEqual([`price ${spy.currentPrice} is through the stop ${stop}`]);
    expect(stack?.logs.filter((l) => l.includes('the stream leaves the symbol alone'))).toEqual([]);
  });

  it("a ratchet on the day of a listed split the list has not applied: the list written in the new shares naming the split, the risk check's stop not divided again", async () => {
    // Day 1's list (old shares), SPY's stop far below the price: the next trade ratchets it.
    const { ctx, day2, at2, spy } = await spySplitDayStopFarBelow();
    const run = await stream(ctx, at2('10:00'));
    server?.publish([
      { T: 't', S: 'SPY', i: 1, x: 'V', p: spy.currentPrice, s: 100, c: ['@'], t: at2('10:00'), z: 'A' },
    ]);
    await until(() => run.engine.counts.ratchets > 0, 'the ratchet');
    await run.engine.settled();
    expect(run.engine.counts.errors).toBe(0);
    expect(await marketSells(ctx)).toEqual([]);
    const listed = await ctx.store.getLatestPositions();
    expect(listed?.date).toBe(day2);
    expect(listed?.bookedFills?.['split:SPY:2021-03-19']).toBe(4);
    const record = listed?.positions.find((p) => p.symbol === 'SPY');
    expect(record?.qty).toBe(spy.qty);
    // The ratcheted stop, in the new shares: below the price, well above a quarter of it.
    const stop = record?.stop as number;
    expect(stop).toBeLessThan(spy.currentPrice);
    expect(stop).toBeGreaterThan(spy.currentPrice / 4);
    const resting = await stopsAt(ctx, 'SPY');
    expect(resting.map((o) => o.qty)).toEqual([spy.qty]);
    expect(Math.abs((resting[0]?.stopPrice as number) - stop)).toBeLessThanOrEqual(0.01);
  });

  it('a ratchet after a list of the day in the new shares that names no split replaced the one the stream split: the split is not applied again (entry reference and initial risk not divided twice)', async () => {
    // The stream loads day 1's list (old shares, SPY's stop far below the price) and applies the
    // listed split to it.
    const { ctx, day2, at2, spy, d1 } = await spySplitDayStopFarBelow();
    const run = await stream(ctx, at2('10:00'));
    // Then a list of the day in the new shares that names no split (as a risk check whose reads
    // never agreed wrote it before: bookedFills {}), SPY's stop far below the price.
    const split = d1.positions.map((p) =>
      p.symbol === 'SPY'
        ? {
            ...p,
            qty: p.qty * 4,
            avgEntryPrice: p.avgEntryPrice / 4,
            stop: 0.01,
            entryRef: p.entryRef === null ? null : p.entryRef / 4,
            initialRisk: p.initialRisk === null ? null : p.initialRisk / 4,
          }
        : p,
    );
    await ctx.store.putPositions(day2, split, at2('10:00'), {});
    const before = split.find((p) => p.symbol === 'SPY');
    expect(before?.qty).toBe(spy.qty);
    expect(before?.entryRef).not.toBeNull();
    // The lists written from here on (the ratchet's first, then its risk check's).
    const written: PositionRecord[][] = [];
    const put = ctx.store.putPositions.bind(ctx.store);
    ctx.store.putPositions = (date, positions, ...rest) => {
      written.push([...positions]);
      return put(date, positions, ...rest);
    };
    server?.publish([
      { T: 't', S: 'SPY', i: 1, x: 'V', p: spy.currentPrice, s: 100, c: ['@'], t: at2('10:00'), z: 'A' },
    ]);
    await until(() => run.engine.counts.ratchets > 0, 'the ratchet');
    await run.engine.settled();
    expect(run.engine.counts.errors).toBe(0);
    ctx.store.putPositions = put;
    // The ratchet's list: the SPY record as it stood, its stop tightened (not split a second time).
    const record = written[0]?.find((p) => p.symbol === 'SPY');
    expect(record?.qty).toBe(spy.qty);
    expect(record?.entryRef).toBeCloseTo(before?.entryRef as number, 9);
    expect(record?.initialRisk ?? null).toEqual(before?.initialRisk ?? null);
    const stop = record?.stop as number;
    expect(stop).toBeLessThan(spy.currentPrice);
    expect(stop).toBeGreaterThan(spy.currentPrice / 4);
  });

  it('cancels every resting stop before the exit is sent, a stop placed after its last look included', async () => {
    const { ctx } = await morning();
    await riskCheck(ctx, at('09:31'));
    const { spy, trade } = await stopAboveSpy(ctx);
    const [seen] = await stopsAt(ctx, 'SPY');
    if (seen === undefined) throw new Error('expected the risk check to leave a SPY stop');
    const log: string[] = [];
    const run = await stream({ ...ctx, broker: recording(ctx.broker, log) }, at('10:00'));
    // Behind the stream's back (as a risk check replacing the stop would): the stop it saw is
    // cancelled and another one rests in its place.
    await ctx.broker.cancelOrder(seen.id);
    const replacement = await ctx.broker.submitOrder({
      clientOrderId: 'replacement-stop-spy',
      symbol: 'SPY',
      side: 'sell',
      qty: spy.qty,
      type: 'stop',
      stopPrice: seen.stopPrice as number,
      timeInForce: 'gtc',
    });
    log.length = 0;
    server?.publish([trade]);
    await until(() => run.engine.exits.size + run.engine.counts.errors > 0, 'the stream exit');
    await run.engine.settled();
    expect(run.engine.counts.errors).toBe(0);

    const sent = log.indexOf(`start submitOrder ${flattenId(ctx)}`);
    expect(sent).toBeGreaterThan(0);
    // The stop it knew was cancelled at once (already gone: a success), the new one before the POST.
    expect(log.indexOf(`end cancelOrder ${seen.id}`)).toBeGreaterThanOrEqual(0);
    expect(log.indexOf(`end cancelOrder ${seen.id}`)).toBeLessThan(sent);
    expect(log.indexOf(`end cancelOrder ${replacement.id}`)).toBeGreaterThanOrEqual(0);
    expect(log.indexOf(`end cancelOrder ${replacement.id}`)).toBeLessThan(sent);
    expect((await marketSells(ctx)).map((o) => o.clientOrderId)).toEqual([flattenId(ctx)]);
    expect(await stopsAt(ctx, 'SPY')).toEqual([]);
    expect((await ctx.broker.getPositions()).find((p) => p.symbol === 'SPY')).toBeUndefined();
  });

  it('a stop a risk check places after the stream exit and its sweep is cancelled at once; one placed before rests', async () => {
    const { ctx } = await morning();
    await riskCheck(ctx, at('09:31'));
    const { spy, trade } = await stopAboveSpy(ctx);
    // Before any exit today, a stop placed (a risk check tightening it) is left resting.
    const kept = await placeStop(ctx, DAY, 'SPY', 'sell', spy.qty, 1, spy.currentPrice, at('09:59'));
    expect(kept.status).toBe('accepted');
    expect((await stopsAt(ctx, 'SPY')).map((o) => o.clientOrderId)).toContain(kept.clientOrderId);
    const run = await stream(ctx, at('10:00'));
    server?.publish([trade]);
    await until(() => run.engine.exits.size + run.engine.counts.errors > 0, 'the stream exit');
    await run.engine.settled();
    expect(run.engine.counts.errors).toBe(0);
    expect(await stopsAt(ctx, 'SPY')).toEqual([]);

    // The interleaving of the race, forced: a risk check that read SPY as held before the exit
    // filled places its tighter stop only now, after the stream's last look at the open orders.
    const late = await placeStop(ctx, DAY, 'SPY', 'sell', spy.qty, 2, spy.currentPrice, at('10:00'));
    expect(late.status).toBe('cancelled');
    expect(late.reason).toContain(flattenId(ctx));
    expect(await stopsAt(ctx, 'SPY')).toEqual([]);
    expect((await ctx.store.getIntent(DAY, late.clientOrderId))?.status).toBe('cancelled');
  });

  it("leaves the stop resting when the day's flatten of the symbol is already settled without a sale", async () => {
    const { ctx } = await morning();
    await riskCheck(ctx, at('09:31'));
    const { spy, trade } = await stopAboveSpy(ctx);
    const now = at('09:50');
    await ctx.store.createIntent({
      clientOrderId: flattenId(ctx),
      date: DAY,
      strategy: ctx.config.name,
      symbol: 'SPY',
      purpose: 'exit',
      side: 'sell',
      qty: spy.qty,
      type: 'market',
      timeInForce: 'day',
      referencePrice: spy.currentPrice,
      status: 'rejected',
      filledQty: 0,
      reason: 'refused by the broker earlier today',
      configHash: ctx.configHash,
      gitCommit: ctx.gitCommit,
      createdAt: now,
      updatedAt: now,
    });
    const run = await stream(ctx, at('10:00'));
    server?.publish([trade]);
    await until(() => run.engine.counts.decisions > 0, 'the decision');
    await run.engine.settled();
    expect(run.engine.counts.errors).toBe(0);
    expect(await marketSells(ctx)).toEqual([]);
    expect(await stopsAt(ctx, 'SPY')).toHaveLength(1);
    // A refused exit with nothing sold is no exit: a risk check's new stop for SPY stays.
    const kept = await placeStop(ctx, DAY, 'SPY', 'sell', spy.qty, 1, spy.currentPrice, at('10:00'));
    expect(kept.status).toBe('accepted');
    expect((await stopsAt(ctx, 'SPY')).map((o) => o.clientOrderId)).toContain(kept.clientOrderId);
  });

  it('an exit the broker refuses is alerted once, and the symbol rests instead of retrying on every trade', async () => {
    const { ctx } = await morning();
    await riskCheck(ctx, at('09:31'));
    const spy = (await ctx.broker.getPositions()).find((p) => p.symbol === 'SPY');
    if (spy === undefined) throw new Error('expected a SPY position');
    const latest = await ctx.store.getLatestPositions();
    await ctx.store.putPositions(
      DAY,
      (latest?.positions ?? []).map((p) => (p.symbol === 'SPY' ? { ...p, stop: spy.currentPrice + 1 } : p)),
    );
    const run = await stream(ctx, at('10:00'));
    stack?.alpaca.injectFaults({ kind: 'status', status: 403, route: 'GET /v2/orders', times: 100 });
    const trade = {
      T: 't',
      S: 'SPY',
      i: 1,
      x: 'V',
      p: spy.currentPrice,
      s: 100,
      c: ['@'],
      t: at('10:00'),
      z: 'A',
    };
    server?.publish([trade]);
    await until(() => run.engine.counts.errors === 1, 'the failed exit');
    await run.engine.settled();
    server?.publish([{ ...trade, i: 2 }]);
    server?.publish([{ ...trade, i: 3 }]);
    await until(() => run.engine.counts.decisions >= 3, 'three decisions');
    await run.engine.settled();
    stack?.alpaca.clearFaults();
    expect(run.engine.counts.errors).toBe(1);
    const alerts = stack?.notifier.sent.filter((n) => n.subject === 'Stream action failed: SPY') ?? [];
    expect(alerts).toHaveLength(1);
    // The stop it knew was cancelled while the intent was written; the alert says SPY has none now.
    expect(alerts[0]?.text).toContain('SPY: its resting stop was cancelled but the exit was not sent');
    const sells = (await ctx.broker.listOrders({ status: 'all', symbols: ['SPY'] })).filter(
      (o) => o.side === 'sell' && o.type === 'market',
    );
    expect(sells).toEqual([]);
  });

  it('trips the daily-loss breaker on marked equity and stores it', async () => {
    const { ctx } = await morning();
    await riskCheck(ctx, at('09:31'));
    const positions = await ctx.broker.getPositions();
    // Quotes far below the stops are not trades: the bid marks the position.
    const run = await stream(ctx, at('10:00'));
    const equity = run.engine.markedEquity();
    server?.publish(
      positions.map((p) => ({
        T: 'b',
        S: p.symbol,
        o: p.currentPrice * 0.5,
        h: p.currentPrice * 0.5,
        l: p.currentPrice * 0.5,
        c: p.currentPrice * 0.5,
        v: 100,
        t: at('10:00'),
      })),
    );
    await until(
      async () => (await ctx.store.getRiskState())?.state.dailyLossTrippedOn === DAY,
      'the stored trip',
    );
    await run.engine.settled();
    expect(run.engine.markedEquity()).toBeLessThan(equity);
    expect(
      stack?.notifier.sent.some((n) => n.subject === 'Breaker trip (stream, marked equity): daily-loss'),
    ).toBe(true);
  });

  it('refuses to open a second connection while the first holds the DynamoDB lease', async () => {
    const { ctx } = await morning();
    await stream(ctx, at('09:31'), 'task-a');
    await expect(stream(ctx, at('09:31'), 'task-b')).rejects.toBeInstanceOf(StreamLeaseHeldError);
    expect(server?.connections).toBe(1);
    expect(await dynamoLease().read()).toMatchObject({ holder: 'task-a' });
    // Once the first stops, its lease is released and another task may connect.
    await runs.splice(0)[0]?.stop();
    await stream(ctx, at('09:31'), 'task-b');
    expect(server?.connections).toBe(2);
  });
});

/**
 * The broker with hooks before a cancel and before an order POST (the race of issue 17 forced: the
 * market falls through a stop on the local paper broker just before the cancel of it arrives).
 */
function hooked(
  broker: Broker,
  hooks: { beforeCancel?: (id: string) => void; beforeSubmit?: (order: OrderRequest) => Promise<void> },
): Broker {
  return new Proxy(broker, {
    get(target, property, receiver) {
      if (property === 'cancelOrder') {
        return async (id: string) => {
          hooks.beforeCancel?.(id);
          return target.cancelOrder(id);
        };
      }
      if (property === 'submitOrder') {
        return async (order: OrderRequest) => {
          await hooks.beforeSubmit?.(order);
          return target.submitOrder(order);
        };
      }
      const value = Reflect.get(target, property, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

/**
 * SPY's resting stop tightened to 365.00 by a risk check (the session's open, 365.44, is above it,
 * the day's low, 364.76, below: moving the paper clock past the close fills it), and its stop in
 * the positions record above the price, so the stream's next SPY trade is an exit.
 */
async function spyStopThatFills(ctx: NonNullable<typeof stack>['ctx']) {
  const latest = await ctx.store.getLatestPositions();
  await ctx.store.putPositions(
    DAY,
    (latest?.positions ?? []).map((p) => (p.symbol === 'SPY' ? { ...p, stop: 365 } : p)),
  );
  await riskCheck(ctx, at('09:40'));
  const [resting] = await stopsAt(ctx, 'SPY');
  if (resting?.stopPrice !== 365) throw new Error('expected the SPY stop at 365 resting');
  return { resting, ...(await stopAboveSpy(ctx)) };
}

const fallThrough = () => stack?.alpaca.setTime(at('16:01'));

describe('the stream exit when a stop fills before the stream can cancel it (issue 17)', () => {
  it('cancel refused before the POST: the exit is not sent (skipped), the stop is booked filled and alerted', async () => {
    const { ctx } = await morning();
    await riskCheck(ctx, at('09:31'));
    const { resting, spy, trade } = await spyStopThatFills(ctx);
    const broker = hooked(ctx.broker, { beforeCancel: (id) => id === resting.id && fallThrough() });
    const run = await stream({ ...ctx, broker }, at('10:00'));
    server?.publish([trade]);
    await until(() => run.engine.counts.decisions > 0, 'the decision');
    await run.engine.settled();

    expect(run.engine.counts.errors).toBe(0);
    expect(run.engine.exits.size).toBe(0);
    expect(await marketSells(ctx)).toEqual([]);
    const exit = await ctx.store.getIntent(DAY, flattenId(ctx));
    expect(exit?.status).toBe('skipped');
    expect(exit?.reason).toContain(resting.clientOrderId);
    const stop = await ctx.store.getIntent(DAY, resting.clientOrderId);
    expect(stop).toMatchObject({ status: 'filled', filledQty: spy.qty, brokerOrderId: resting.id });
    expect(stop?.avgFillPrice).toBeGreaterThan(0);
    expect(stop?.reason).toContain(flattenId(ctx));
    const alerts = stack?.notifier.sent.filter((n) => n.subject === 'Stop filled during an exit: SPY') ?? [];
    expect(alerts).toHaveLength(1);
    expect(alerts[0]?.severity).toBe('critical');
    expect(alerts[0]?.text).toContain('was not sent');
    expect(stack?.notifier.sent.map((n) => n.subject)).not.toContain('Stream action failed: SPY');
    // The stop sold the position; nothing else did.
    expect((await ctx.broker.getPositions()).find((p) => p.symbol === 'SPY')).toBeUndefined();
    // Later trades through the stop find the exit settled and send nothing.
    server?.publish([{ ...trade, i: 2 }]);
    await run.engine.settled();
    expect(await marketSells(ctx)).toEqual([]);
  });

  it('a stop filled during the sweep after the POST: booked, alerted (both sold), the exit stands', async () => {
    const { ctx } = await morning();
    await riskCheck(ctx, at('09:31'));
    const { spy, trade } = await stopAboveSpy(ctx);
    // A risk check's tighter stop reaches the broker after the stream's last look before its POST
    // (its intent recorded as the risk check records it): the sweep after the exit finds it, and the
    // market falls through it before the sweep's cancel arrives.
    const lateId = clientOrderId({
      stage: 'paper',
      strategy: ctx.config.name,
      symbol: 'SPY',
      date: DAY,
      purpose: 'stop',
      sequence: 9,
    });
    let late: string | undefined;
    const broker = hooked(ctx.broker, {
      beforeCancel: (id) => id === late && fallThrough(),
      beforeSubmit: async (order) => {
        if (order.clientOrderId !== flattenId(ctx)) return;
        const now = at('10:00');
        const placed = await ctx.broker.submitOrder({
          clientOrderId: lateId,
          symbol: 'SPY',
          side: 'sell',
          qty: spy.qty,
          type: 'stop',
          stopPrice: 365,
          timeInForce: 'gtc',
        });
        late = placed.id;
        await ctx.store.createIntent({
          clientOrderId: lateId,
          sleeve: ctx.config.name,
          date: DAY,
          strategy: ctx.config.name,
          symbol: 'SPY',
          purpose: 'stop',
          side: 'sell',
          qty: spy.qty,
          type: 'stop',
          stopPrice: 365,
          timeInForce: 'gtc',
          referencePrice: spy.currentPrice,
          status: 'accepted',
          brokerOrderId: placed.id,
          filledQty: 0,
          configHash: ctx.configHash,
          gitCommit: ctx.gitCommit,
          createdAt: now,
          updatedAt: now,
        });
      },
    });
    const run = await stream({ ...ctx, broker }, at('10:00'));
    server?.publish([trade]);
    await until(() => run.engine.exits.size + run.engine.counts.errors > 0, 'the stream exit');
    await run.engine.settled();

    expect(late).toBeDefined();
    expect(run.engine.counts.errors).toBe(0);
    expect(run.engine.exits.has(flattenId(ctx))).toBe(true);
    expect((await marketSells(ctx)).map((o) => o.clientOrderId)).toEqual([flattenId(ctx)]);
    const stop = await ctx.store.getIntent(DAY, lateId);
    expect(stop).toMatchObject({ status: 'filled', filledQty: spy.qty });
    expect(stop?.reason).toContain(flattenId(ctx));
    const subjects = stack?.notifier.sent.map((n) => n.subject) ?? [];
    expect(subjects).toContain('Stream exit at market: SPY');
    expect(subjects).not.toContain('Stream action failed: SPY');
    const alerts = stack?.notifier.sent.filter((n) => n.subject === 'Stop filled during an exit: SPY') ?? [];
    expect(alerts).toHaveLength(1);
    expect(alerts[0]?.severity).toBe('critical');
    expect(alerts[0]?.text).toContain('both sold');
    expect(await stopsAt(ctx, 'SPY')).toEqual([]);
  });
});
