import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Redis } from '@upstash/redis';
import { afterEach, describe, expect, it } from 'vitest';
import { AlpacaBroker } from '../../shared/adapters/alpaca/broker.js';
import { LOCAL_KEYS } from '../../shared/adapters/local/live-stack.js';
import { clientOrderId } from '../../shared/core/live/orders.js';
import type { IntentRecord, StateStore } from '../../shared/core/ports/state-store.js';
import type { LiveContext } from '../../shared/live/context.js';
import { endOfDay } from '../../shared/live/end-of-day.js';
import { executeOrders } from '../../shared/live/execute-orders.js';
import { generateSignals } from '../../shared/live/generate-signals.js';
import { killSwitch } from '../../shared/live/kill-switch.js';
import { marketOpenCheck } from '../../shared/live/market-open-check.js';
import { riskCheck, trackOrders } from '../../shared/live/risk-check.js';
import { liveCache } from '../../shared/runtime/live.js';
import {
  exitIntent,
  morningThroughFirstRiskCheck,
  postOrders,
  startLiveStack,
  storeLosingFirstAnswer,
  writesStatus,
} from '../helpers/live-stack.js';

/**
 * The live path under faults, on the real local servers (paper broker over HTTP, dynalite,
 * redis-server behind the Upstash bridge), with DynamoDB and the cache behind links a scenario
 * cuts and restores mid-step. docs/live.md's failure-modes table names each scenario.
 */

// 2021-03-18 (daylight saving time: 09:00 New York = 13:00Z): the config enters SPY, QQQ, AAPL and
// MSFT at this open (decided at the 2021-03-17 close).
const DAY = '2021-03-18';
const at = (hhmm: string, day = DAY) =>
  `${day}T${String(Number(hhmm.slice(0, 2)) + 4).padStart(2, '0')}:${hhmm.slice(3)}:00.000Z`;

type Stack = Awaited<ReturnType<typeof startLiveStack>>;
let stack: Stack | undefined;
afterEach(async () => {
  await stack?.close();
  stack = undefined;
});

/** The context with `hook` run right after an intent's claim (recorded → submitted) is written. */
function onClaim(ctx: LiveContext, hook: (intent: IntentRecord) => Promise<void> | void): LiveContext {
  const store: StateStore = Object.create(ctx.store);
  store.transitionIntent = async (date, id, from, patch, unchanged) => {
    const result = await ctx.store.transitionIntent(date, id, from, patch, unchanged);
    if (patch.status === 'submitted' && !('conflict' in result)) await hook(result);
    return result;
  };
  return { ...ctx, store };
}

let spyEntry: IntentRecord | undefined;

/**
 * Market-open check and signals for DAY (the config enters SPY with 53 shares), and a second
 * entry recorded beside it (QQQ, 10 shares): the recorded entries.
 */
async function signals(s: Stack): Promise<IntentRecord[]> {
  await marketOpenCheck(s.ctx, at('09:00'));
  // The real signal run once per file; the next scenarios record the same intent (it is deterministic).
  let spy: IntentRecord;
  if (spyEntry === undefined) {
    const { intents } = await generateSignals(s.ctx, at('09:10'));
    const found = intents.find((i) => i.symbol === 'SPY');
    if (found === undefined || intents.length !== 1) throw new Error('expected the SPY entry alone');
    spyEntry = found;
    spy = found;
  } else {
    spy = (await s.ctx.store.createIntent(spyEntry)).intent;
  }
  const { intent: qqq } = await s.ctx.store.createIntent({
    ...spy,
    clientOrderId: clientOrderId({
      stage: s.ctx.stage,
      strategy: s.ctx.config.name,
      symbol: 'QQQ',
      date: DAY,
      purpose: 'entry',
    }),
    symbol: 'QQQ',
    qty: 10,
    referencePrice: 312.38,
    protectiveStop: 281.14,
  });
  return [spy, qqq];
}

/** Two entries as execute-orders sends them (by client order id): the first and the second. */
const inSendingOrder = (intents: readonly IntentRecord[]) =>
  [...intents].sort((a, b) => (a.clientOrderId < b.clientOrderId ? -1 : 1)) as [IntentRecord, IntentRecord];

describe('a claimed intent that never reached the broker', () => {
  it('Redis down between the claim and the submit: the lock and the rate limiter fail open, with a warning', async () => {
    stack = await startLiveStack({ startTime: at('08:00'), faultLinks: true });
    const intents = await signals(stack);
    const link = stack.links?.cache;
    if (link === undefined) throw new Error('expected a cache link');
    const ctx = onClaim(stack.ctx, () => link.cut());
    const result = await executeOrders(ctx, at('09:15'));
    expect(result.status).toBe('executed');
    expect(result.intents.map((i) => i.status)).toEqual(intents.map(() => 'accepted'));
    expect(postOrders(stack)).toHaveLength(intents.length);
    expect(stack.logs.filter((l) => l.startsWith('WARN') && /cache unavailable/.test(l))).toHaveLength(1);
    // Still down for the step's retry: nothing is sent twice, nothing is left unsent.
    const retry = await executeOrders(stack.ctx, at('09:15'));
    expect(retry.status).toBe('executed');
    expect(postOrders(stack)).toHaveLength(intents.length);
  });

  it('Redis flushed mid-step: the lock is gone, the DynamoDB claims still send each intent once', async () => {
    stack = await startLiveStack({ startTime: at('08:00') });
    const intents = await signals(stack);
    const redis = new Redis({
      url: stack.env.UPSTASH_REDIS_REST_URL as string,
      token: stack.env.UPSTASH_REDIS_REST_TOKEN as string,
    });
    let flushed = false;
    const ctx = onClaim(stack.ctx, async () => {
      if (flushed) return;
      flushed = true;
      await redis.flushall();
      // A second run starts now: the flushed lock no longer keeps it out.
      await executeOrders(stack?.ctx as LiveContext, at('09:15'));
    });
    await executeOrders(ctx, at('09:15'));
    // The second run may ask for an intent the first one claimed: its client order id keeps it one order.
    expect(await stack.ctx.broker.listOrders({ status: 'all' })).toHaveLength(intents.length);
    for (const intent of intents) {
      expect((await stack.ctx.store.getIntent(DAY, intent.clientOrderId))?.status).toBe('accepted');
    }
  });

  it("an exit superseded (settled skipped on its claim, as a risk check past the senders' lease does) between its claim and its send: execute-orders sends nothing (review kfix B)", async () => {
    stack = await startLiveStack({ startTime: at('08:00'), withCache: false });
    const s = stack;
    await marketOpenCheck(s.ctx, at('09:00'));
    const exit = exitIntent(s.ctx, { symbol: 'SPY', qty: 10, currentPrice: 390 }, DAY, at('09:10'));
    await s.ctx.store.createIntent(exit);
    s.alpaca.setTime(at('09:15'));
    const ctx = onClaim(s.ctx, async (claimed) => {
      const superseded = await s.ctx.store.settleIntent(
        DAY,
        claimed.clientOrderId,
        ['submitted'],
        { status: 'skipped', reason: 'superseded', updatedAt: at('09:15') },
        'a-risk-check',
        { updatedAt: claimed.updatedAt },
      );
      expect(superseded).toMatchObject({ status: 'skipped' });
    });
    await executeOrders(ctx, at('09:15'));
    expect(postOrders(s)).toEqual([]);
    expect(await s.ctx.store.getIntent(DAY, exit.clientOrderId)).toMatchObject({ status: 'skipped' });
    expect(s.logs.filter((l) => l.includes('exit not sent: another writer settled it'))).toHaveLength(1);
  });

  it('a crash between the claim and the submit: expired as not sent after the window, alerted once; every other symbol goes on', async () => {
    stack = await startLiveStack({ startTime: at('08:00'), withCache: false });
    const [kept, lost] = inSendingOrder(await signals(stack));
    const ctx = onClaim(stack.ctx, (intent) => {
      if (intent.clientOrderId === lost.clientOrderId) throw new Error('the process died');
    });
    // The step's retries failed as well: the intent stays claimed, and the broker never saw it.
    await expect(executeOrders(ctx, at('09:15'))).rejects.toThrow('the process died');
    expect(postOrders(stack)).toHaveLength(1);

    stack.alpaca.setTime(at('10:00'));
    const check = await riskCheck(stack.ctx, at('10:00'));
    expect(check.stopsPlaced).toHaveLength(1);
    expect((await stack.ctx.broker.listOrders({ status: 'open' })).map((o) => o.symbol)).toEqual([
      kept.symbol,
    ]);
    const expired = await stack.ctx.store.getIntent(DAY, lost.clientOrderId);
    expect(expired).toMatchObject({ status: 'expired' });
    expect(expired?.reason).toMatch(/not sent/);
    const alerts = () => stack?.notifier.sent.filter((n) => /not sent/i.test(n.subject)) ?? [];
    expect(alerts()).toHaveLength(1);
    expect(alerts()[0]).toMatchObject({ severity: 'critical' });
    expect(alerts()[0]?.text).toContain(lost.clientOrderId);

    await riskCheck(stack.ctx, at('10:15'));
    stack.alpaca.setTime(at('16:15'));
    const report = await endOfDay(stack.ctx, at('16:15'));
    if (!('date' in report)) throw new Error('expected a report');
    expect(report.fills.map((f) => f.clientOrderId)).toEqual([kept.clientOrderId]);
    expect(report.positions.map((p) => [p.symbol, p.stop !== null])).toEqual([[kept.symbol, true]]);
    expect(alerts()).toHaveLength(1);
  });

  it('a crash between the claim and the submit, retried after the 09:28 cutoff: expired as not sent, alerted once', async () => {
    stack = await startLiveStack({ startTime: at('08:00'), withCache: false });
    const [, lost] = inSendingOrder(await signals(stack));
    const ctx = onClaim(stack.ctx, (intent) => {
      if (intent.clientOrderId === lost.clientOrderId) throw new Error('the process died');
    });
    await expect(executeOrders(ctx, at('09:15'))).rejects.toThrow('the process died');
    await executeOrders(stack.ctx, at('09:29'));
    await executeOrders(stack.ctx, at('09:30'));
    expect(postOrders(stack)).toHaveLength(1);
    expect(await stack.ctx.store.getIntent(DAY, lost.clientOrderId)).toMatchObject({ status: 'expired' });
    expect(stack.notifier.sent.filter((n) => /not sent/i.test(n.subject))).toHaveLength(1);
  });

  it('DynamoDB unreachable between the claim and the submit, back before the retry: sent once, by the retry after the claim lease', async () => {
    stack = await startLiveStack({ startTime: at('08:00'), withCache: false, faultLinks: true });
    const intents = await signals(stack);
    const link = stack.links?.dynamo;
    if (link === undefined) throw new Error('expected a DynamoDB link');
    let cut = false;
    const ctx = onClaim(stack.ctx, () => {
      if (cut) return;
      cut = true;
      link.cut();
    });
    await expect(executeOrders(ctx, at('09:15'))).rejects.toThrow(/state store/);
    link.restore();
    // Lambda's first retry, a minute later: the claim (09:15) is younger than the function's
    // timeout, so its run may still be alive: left to it; the other intent is sent.
    stack.alpaca.setTime(at('09:16'));
    await executeOrders(stack.ctx, at('09:15'));
    expect(postOrders(stack)).toHaveLength(intents.length - 1);
    // The second retry, two minutes after the first: the lease is over, the claim is sent once.
    stack.alpaca.setTime(at('09:18'));
    await executeOrders(stack.ctx, at('09:15'));
    expect(postOrders(stack)).toHaveLength(intents.length);
    for (const intent of intents) {
      expect((await stack.ctx.store.getIntent(DAY, intent.clientOrderId))?.status).toBe('accepted');
    }
  });

  it('DynamoDB answer lost after the claim committed: the SDK retry fails the condition on its own claim, and the intent is still sent exactly once', async () => {
    stack = await startLiveStack({ startTime: at('08:00'), withCache: false });
    const intents = await signals(stack);
    // The store as liveStore builds it (the SDK's default retries), its first claim's answer dropped
    // after DynamoDB committed the write: the SDK sends the claim again, and that retry fails its condition.
    const { store, counts, close } = storeLosingFirstAnswer(stack, writesStatus('submitted'));
    try {
      const result = await executeOrders({ ...stack.ctx, store }, at('09:15'));
      expect(counts.dropped).toBe(1);
      expect(counts.writes).toBe(intents.length + 1);
      expect(result.status).toBe('executed');
      expect(result.intents.map((i) => i.status)).toEqual(intents.map(() => 'accepted'));
    } finally {
      close();
    }
    expect(postOrders(stack)).toHaveLength(intents.length);
    expect(await stack.ctx.broker.listOrders({ status: 'all' })).toHaveLength(intents.length);
    for (const intent of intents) {
      expect((await stack.ctx.store.getIntent(DAY, intent.clientOrderId))?.status).toBe('accepted');
    }
    // Nothing left for the risk check to expire as not sent.
    stack.alpaca.setTime(at('10:00'));
    await riskCheck(stack.ctx, at('10:00'));
    expect(stack.notifier.sent.filter((n) => /not sent/i.test(n.subject))).toEqual([]);
  });
});

/**
 * An HTTP hop in front of the Upstash bridge that, once, lets a command on the key `match` reach
 * Redis and drops its successful answer (the connection reset before a byte comes back): a write
 * that committed but whose answer was lost.
 */
async function dropOneAnswer(target: string, match: string) {
  let dropped = 0;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(req.headers)) {
        if (typeof value === 'string' && !['host', 'connection', 'content-length'].includes(name))
          headers[name] = value;
      }
      const upstream = await fetch(new URL(req.url ?? '/', target), {
        method: req.method ?? 'POST',
        headers,
        ...(req.method === 'GET' ? {} : { body }),
      });
      const text = await upstream.text();
      if (dropped === 0 && body.includes(match) && text.includes('"result"')) {
        dropped++;
        req.socket.resetAndDestroy();
        return;
      }
      res.writeHead(upstream.status, {
        'content-type': upstream.headers.get('content-type') ?? 'application/json',
      });
      res.end(text);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    dropped: () => dropped,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe('the execute-orders lock and the 09:28 cutoff', () => {
  const lockName = `execute-orders:${DAY}`;
  const notSent = (s: Stack) => s.notifier.sent.filter((n) => /not sent/i.test(n.subject));

  it('Redis answer lost on the lock: the client retry finds the lock its own, and the run sends each order once', async () => {
    stack = await startLiveStack({ startTime: at('08:00') });
    const intents = await signals(stack);
    const hop = await dropOneAnswer(stack.env.UPSTASH_REDIS_REST_URL as string, `lock:${lockName}`);
    try {
      // The cache as the functions build it (the Upstash client retries once), reached through the hop.
      const cache = await liveCache(
        { UPSTASH_REDIS_REST_URL: hop.url, UPSTASH_REDIS_REST_TOKEN: stack.env.UPSTASH_REDIS_REST_TOKEN },
        `qs:${stack.ctx.stage}:`,
      );
      if (cache === undefined) throw new Error('expected a cache');
      const result = await executeOrders({ ...stack.ctx, cache }, at('09:15'));
      expect(hop.dropped()).toBe(1);
      expect(result.status).toBe('executed');
      expect(postOrders(stack)).toHaveLength(intents.length);
      for (const intent of intents) {
        expect((await stack.ctx.store.getIntent(DAY, intent.clientOrderId))?.status).toBe('accepted');
      }
    } finally {
      await hop.close();
    }
  });

  it('a retry after a timeout finds the lock held: the retry of the same scheduled run goes on, each order sent once', async () => {
    stack = await startLiveStack({ startTime: at('08:00') });
    const intents = await signals(stack);
    // The 09:15 attempt stalls after its first claim until Lambda's 3-minute limit ends it: its
    // `finally` never runs, so its lock stays for the 300 seconds.
    let claimed: () => void = () => {};
    const firstClaim = new Promise<void>((resolve) => {
      claimed = resolve;
    });
    const stalled = onClaim(stack.ctx, () => {
      claimed();
      return new Promise<void>(() => {});
    });
    void executeOrders(stalled, at('09:15'));
    await firstClaim;
    expect(postOrders(stack)).toHaveLength(0);
    // Lambda's asynchronous retry, with the same event, a few minutes later.
    stack.alpaca.setTime(at('09:19'));
    const retry = await executeOrders(stack.ctx, at('09:15'));
    expect(retry.status).toBe('executed');
    expect(postOrders(stack)).toHaveLength(intents.length);
    for (const intent of intents) {
      expect((await stack.ctx.store.getIntent(DAY, intent.clientOrderId))?.status).toBe('accepted');
    }
  });

  it('another run holding the lock: the intents it leaves recorded are expired and alerted by the risk check past 09:28', async () => {
    stack = await startLiveStack({ startTime: at('08:00') });
    const intents = await signals(stack);
    // A run of another scheduled time holds the day's lock (and dies without sending).
    expect(await stack.ctx.cache?.acquireLock(lockName, 300, 'execute-orders@another-run')).not.toBeNull();
    expect((await executeOrders(stack.ctx, at('09:15'))).status).toBe('locked');
    expect(postOrders(stack)).toHaveLength(0);

    stack.alpaca.setTime(at('09:31'));
    await riskCheck(stack.ctx, at('09:31'));
    for (const intent of intents) {
      const stored = await stack.ctx.store.getIntent(DAY, intent.clientOrderId);
      expect(stored).toMatchObject({ status: 'expired' });
      expect(stored?.reason).toMatch(/not sent: still recorded/);
    }
    expect(notSent(stack)).toHaveLength(intents.length);
    for (const intent of intents) {
      const alert = notSent(stack).find((n) => n.text.includes(intent.clientOrderId));
      expect(alert).toMatchObject({ severity: 'critical' });
    }
    // Said once: the next checks and end-of-day find them settled; nothing is ever sent.
    await riskCheck(stack.ctx, at('09:45'));
    stack.alpaca.setTime(at('16:15'));
    await endOfDay(stack.ctx, at('16:15'));
    expect(notSent(stack)).toHaveLength(intents.length);
    expect(postOrders(stack)).toHaveLength(0);
  });

  it('a sleeve’s leg never netted (the run locked out) is expired and alerted past 09:28; a netted leg is left to its net order', async () => {
    stack = await startLiveStack({ startTime: at('08:00'), withCache: false });
    await marketOpenCheck(stack.ctx, at('09:00'));
    const session = await stack.ctx.store.getSession(DAY);
    if (session === undefined) throw new Error('expected the session');
    const leg = (sleeve: string, netOrderId?: string): IntentRecord => ({
      clientOrderId: `qs-t-${sleeve}-SPY-20210318-entry`,
      sleeve,
      leg: true,
      ...(netOrderId === undefined ? {} : { netOrderId }),
      date: DAY,
      strategy: sleeve,
      symbol: 'SPY',
      purpose: 'entry',
      side: 'buy',
      qty: 5,
      type: 'market',
      timeInForce: 'opg',
      referencePrice: 390,
      status: 'recorded',
      filledQty: 0,
      configHash: 'h',
      gitCommit: 'c',
      createdAt: at('09:10'),
      updatedAt: at('09:10'),
    });
    const unnetted = (await stack.ctx.store.createIntent(leg('trend'))).intent;
    const netted = (await stack.ctx.store.createIntent(leg('rsi', 'qs-t-net-SPY-20210318-entry'))).intent;
    const before = await trackOrders(stack.ctx, DAY, [unnetted, netted], at('09:20'), session);
    expect(before.map((i) => i.status)).toEqual(['recorded', 'recorded']);
    const after = await trackOrders(stack.ctx, DAY, [unnetted, netted], at('09:31'), session);
    expect(after.map((i) => i.status)).toEqual(['expired', 'recorded']);
    expect(notSent(stack)).toHaveLength(1);
    expect(notSent(stack)[0]?.text).toContain(unnetted.clientOrderId);
  });

  it('a retry of the 09:15 run that starts after 09:28 on the clock sends no market-on-open order: skipped and alerted', async () => {
    stack = await startLiveStack({ startTime: at('08:00'), withCache: false });
    const intents = await signals(stack);
    stack.alpaca.setTime(at('09:29'));
    const result = await executeOrders(stack.ctx, at('09:15'));
    expect(postOrders(stack)).toHaveLength(0);
    expect(result.intents.map((i) => i.status)).toEqual(intents.map(() => 'skipped'));
    for (const intent of intents) {
      expect(await stack.ctx.store.getIntent(DAY, intent.clientOrderId)).toMatchObject({
        status: 'skipped',
        reason: 'after the 09:28 market-on-open cutoff',
      });
    }
    const skipped = stack.notifier.sent.filter((n) => /market-on-open orders skipped/i.test(n.subject));
    expect(skipped).toHaveLength(1);
    expect(skipped[0]).toMatchObject({ severity: 'critical' });
  });

  it('a claimed intent retried by the 09:15 run after 09:28 on the clock is expired as not sent, never sent late', async () => {
    stack = await startLiveStack({ startTime: at('08:00'), withCache: false });
    const [, lost] = inSendingOrder(await signals(stack));
    const ctx = onClaim(stack.ctx, (intent) => {
      if (intent.clientOrderId === lost.clientOrderId) throw new Error('the process died');
    });
    await expect(executeOrders(ctx, at('09:15'))).rejects.toThrow('the process died');
    expect(postOrders(stack)).toHaveLength(1);
    stack.alpaca.setTime(at('09:29'));
    await executeOrders(stack.ctx, at('09:15'));
    expect(postOrders(stack)).toHaveLength(1);
    expect(await stack.ctx.store.getIntent(DAY, lost.clientOrderId)).toMatchObject({ status: 'expired' });
    expect(notSent(stack)).toHaveLength(1);
  });

  it('a run checked at 09:27:59 whose broker clock passes 09:28 before its second send: that one skipped and alerted, never sent late', async () => {
    stack = await startLiveStack({ startTime: at('08:00'), withCache: false });
    const s = stack;
    const [first, second] = inSendingOrder(await signals(s));
    s.alpaca.setTime(`${DAY}T13:27:59.000Z`);
    // The broker's clock reads 09:28:01 once the first order's answer is written.
    const store: StateStore = Object.create(s.ctx.store);
    store.transitionIntent = async (date, id, from, patch, unchanged) => {
      const result = await s.ctx.store.transitionIntent(date, id, from, patch, unchanged);
      if (id === first.clientOrderId && patch.status !== 'submitted')
        s.alpaca.setTime(`${DAY}T13:28:01.000Z`);
      return result;
    };
    const result = await executeOrders({ ...s.ctx, store }, at('09:15'));
    expect(postOrders(s)).toHaveLength(1);
    expect(result.intents.find((i) => i.clientOrderId === second.clientOrderId)).toMatchObject({
      status: 'skipped',
      reason: 'after the 09:28 market-on-open cutoff',
    });
    expect(await s.ctx.store.getIntent(DAY, second.clientOrderId)).toMatchObject({ status: 'skipped' });
    expect((await s.ctx.store.getIntent(DAY, first.clientOrderId))?.brokerOrderId).toBeDefined();
    const skipped = s.notifier.sent.filter((n) => /market-on-open orders skipped/i.test(n.subject));
    expect(skipped).toHaveLength(1);
    expect(skipped[0]).toMatchObject({ severity: 'critical' });
    expect(skipped[0]?.text).toContain(second.clientOrderId);
  });

  it('the broker clock passes 09:28 between the claim of an intent and its send: expired as not sent, never sent late', async () => {
    stack = await startLiveStack({ startTime: at('08:00'), withCache: false });
    const s = stack;
    const [, second] = inSendingOrder(await signals(s));
    s.alpaca.setTime(`${DAY}T13:27:59.000Z`);
    const ctx = onClaim(s.ctx, (intent) => {
      if (intent.clientOrderId === second.clientOrderId) s.alpaca.setTime(`${DAY}T13:28:01.000Z`);
    });
    await executeOrders(ctx, at('09:15'));
    expect(postOrders(s)).toHaveLength(1);
    expect(await s.ctx.store.getIntent(DAY, second.clientOrderId)).toMatchObject({ status: 'expired' });
    expect(notSent(s)).toHaveLength(1);
  });
});

describe('an exit the cutoff keeps back after its resting stops were cancelled', () => {
  it('is expired, its symbol alerted as unprotected, and the next risk check places the stop again', async () => {
    stack = await startLiveStack({ startTime: at('08:00'), withCache: false });
    const s = stack;
    const spy = await morningThroughFirstRiskCheck(s, (hhmm) => at(hhmm), 'SPY');
    const D2 = '2021-03-19';
    s.alpaca.setTime(at('08:00', D2));
    await marketOpenCheck(s.ctx, at('09:00', D2));
    const exit = exitIntent(s.ctx, spy, D2, at('09:10', D2));
    const exitId = exit.clientOrderId;
    await s.ctx.store.createIntent(exit);
    const stopsOf = async () =>
      (await s.ctx.broker.listOrders({ status: 'open', symbols: ['SPY'] })).filter((o) => o.type === 'stop');
    expect(await stopsOf()).toHaveLength(1);
    s.alpaca.setTime(`${D2}T13:27:59.000Z`);
    // The broker's clock passes 09:28 once the exit is claimed (its stop already cancelled).
    const ctx = onClaim(s.ctx, (intent) => {
      if (intent.clientOrderId === exitId) s.alpaca.setTime(`${D2}T13:28:01.000Z`);
    });
    const posted = postOrders(s).length;
    await executeOrders(ctx, at('09:15', D2));
    expect(postOrders(s)).toHaveLength(posted);
    expect(await s.ctx.store.getIntent(D2, exitId)).toMatchObject({ status: 'expired' });
    expect(await stopsOf()).toEqual([]);
    const unprotected = s.notifier.sent.filter(
      (n) => n.subject === 'Stops cancelled for an exit not sent: SPY',
    );
    expect(unprotected).toHaveLength(1);
    expect(unprotected[0]).toMatchObject({ severity: 'critical' });
    s.alpaca.setTime(at('10:00', D2));
    await riskCheck(s.ctx, at('10:00', D2));
    expect((await stopsOf()).map((o) => o.qty)).toEqual([spy.qty]);
  });
});

/** Both entries filled at the open and protected by the 10:00 risk check. */
async function filledAndProtected(s: Stack) {
  const intents = await signals(s);
  await executeOrders(s.ctx, at('09:15'));
  s.alpaca.setTime(at('10:00'));
  const check = await riskCheck(s.ctx, at('10:00'));
  expect(check.stopsPlaced).toHaveLength(2);
  return intents;
}

/** The broker's positions answer with its first item (QQQ, by symbol) replaced by `item`. */
async function positionsWithFirst(s: Stack, item: (p: Record<string, string>) => Record<string, string>) {
  const [qqq] = (await s.ctx.broker.getPositions()).filter((p) => p.symbol === 'QQQ');
  if (qqq === undefined) throw new Error('expected a QQQ position');
  const wire = {
    symbol: 'QQQ',
    qty: String(qqq.qty),
    side: 'long',
    avg_entry_price: String(qqq.avgEntryPrice),
    market_value: String(qqq.marketValue),
    current_price: String(qqq.currentPrice),
    asset_class: 'us_equity',
  };
  s.alpaca.injectFaults({
    kind: 'malformed-field',
    route: 'GET /v2/positions',
    field: '0',
    json: JSON.stringify(item(wire)),
    times: 100,
  });
}

const ordersAfter = (s: Stack, from: number) =>
  postOrders(s)
    .slice(from)
    .map((r) => r.path);

describe('a malformed or contradicting positions answer', () => {
  it('a negative quantity without a side is refused by the adapter: the risk check fails, no order is sent', async () => {
    stack = await startLiveStack({ startTime: at('08:00'), withCache: false });
    await filledAndProtected(stack);
    await positionsWithFirst(stack, ({ side: _side, ...p }) => ({ ...p, qty: '-10' }));
    const sent = postOrders(stack).length;
    stack.alpaca.setTime(at('10:15'));
    await expect(riskCheck(stack.ctx, at('10:15'))).rejects.toThrow(/get positions.*item 0.*side/);
    expect(ordersAfter(stack, sent)).toEqual([]);
  });

  it('a side that disagrees with the quantity is refused by the adapter', async () => {
    stack = await startLiveStack({ startTime: at('08:00'), withCache: false });
    await filledAndProtected(stack);
    await positionsWithFirst(stack, (p) => ({ ...p, qty: '-10', side: 'long' }));
    await expect(stack.ctx.broker.getPositions()).rejects.toThrow(
      /get positions: invalid response: item 0: field "side": disagrees with the sign of qty/,
    );
  });

  it('a short the ledger holds long is an unknown state: that symbol halts and alerts once, never an order; the others go on', async () => {
    stack = await startLiveStack({ startTime: at('08:00'), withCache: false });
    await filledAndProtected(stack);
    // The market is far below QQQ's stop for a short: a check reading it as one would buy to cover.
    await positionsWithFirst(stack, (p) => ({
      ...p,
      qty: '-10',
      side: 'short',
      current_price: String(Number(p.current_price) * 1.5),
    }));
    const sent = postOrders(stack).length;
    for (const time of ['10:15', '10:30']) {
      stack.alpaca.setTime(at(time));
      const check = await riskCheck(stack.ctx, at(time));
      expect(check.exits).toEqual([]);
    }
    expect(ordersAfter(stack, sent)).toEqual([]);
    const alerts = stack.notifier.sent.filter((n) => /unknown state/i.test(n.subject));
    expect(alerts).toHaveLength(1);
    expect(alerts[0]).toMatchObject({ severity: 'critical' });
    expect(alerts[0]?.subject).toContain('QQQ');
    const records = await stack.ctx.store.getLatestPositions();
    expect(records?.positions.find((p) => p.symbol === 'QQQ')).toMatchObject({ qty: 10 });
    expect(records?.positions.find((p) => p.symbol === 'QQQ')?.unknownState).toMatch(/short/);
    expect(records?.positions.find((p) => p.symbol === 'SPY')?.unknownState).toBeUndefined();
  });

  it('the kill switch never flattens a short in a long-only stage by buying', async () => {
    stack = await startLiveStack({ startTime: at('08:00'), withCache: false });
    await filledAndProtected(stack);
    await positionsWithFirst(stack, (p) => ({ ...p, qty: '-10', side: 'short' }));
    const sent = postOrders(stack).length;
    const result = await killSwitch(stack.ctx, {
      flatten: true,
      by: 'ops',
      reason: 'rehearsal',
      time: at('10:20'),
    });
    expect(result.exits).toHaveLength(1); // SPY, sold
    const sides = (await stack.ctx.broker.listOrders({ status: 'all' }))
      .filter((o) => o.type === 'market' && o.timeInForce === 'day')
      .map((o) => [o.symbol, o.side]);
    expect(sides).toEqual([['SPY', 'sell']]);
    expect(postOrders(stack).length - sent).toBe(1);
    expect(stack.notifier.sent.some((n) => /unknown state/i.test(n.subject) && /QQQ/.test(n.subject))).toBe(
      true,
    );
  });
});

describe('negative and mistyped broker fields', () => {
  it('a negative quantity in the submit answer is never recorded as filled: the outcome is resolved by client order id', async () => {
    stack = await startLiveStack({ startTime: at('08:00'), withCache: false });
    const intents = await signals(stack);
    stack.alpaca.injectFaults({
      kind: 'malformed-field',
      route: 'POST /v2/orders',
      field: 'qty',
      json: '"-53"',
    });
    const result = await executeOrders(stack.ctx, at('09:15'));
    expect(result.intents.map((i) => i.status)).toEqual(intents.map(() => 'accepted'));
    expect(postOrders(stack)).toHaveLength(intents.length);
    stack.alpaca.setTime(at('10:00'));
    const check = await riskCheck(stack.ctx, at('10:00'));
    expect(check.stopsPlaced).toHaveLength(intents.length);
  });

  it('a negative, zero, non-finite or mistyped order or position field fails the risk check naming it, and sends nothing', async () => {
    stack = await startLiveStack({ startTime: at('08:00'), withCache: false });
    await filledAndProtected(stack);
    const sent = postOrders(stack).length;
    stack.alpaca.setTime(at('10:15'));
    for (const [route, field, json] of [
      ['GET /v2/orders:by_client_order_id', 'filled_qty', '"-1"'],
      ['GET /v2/orders:by_client_order_id', 'filled_qty', '"54"'],
      ['GET /v2/orders:by_client_order_id', 'filled_avg_price', '"0"'],
      ['GET /v2/orders:by_client_order_id', 'qty', 'true'],
      ['GET /v2/positions', 'avg_entry_price', '"-400.1"'],
      ['GET /v2/positions', 'current_price', '"NaN"'],
      ['GET /v2/positions', 'qty', '"1e999"'],
    ] as const) {
      stack.alpaca.injectFaults({ kind: 'malformed-field', route, field, json, times: 100 });
      await expect(riskCheck(stack.ctx, at('10:15')), `${route} ${field}=${json}`).rejects.toThrow(
        new RegExp(`field "${field}"`),
      );
      stack.alpaca.clearFaults();
    }
    expect(ordersAfter(stack, sent)).toEqual([]);
  });

  it('a negative fill price or quantity in the activities fails end-of-day naming the field; nothing is written to the ledger', async () => {
    stack = await startLiveStack({ startTime: at('08:00'), withCache: false });
    await filledAndProtected(stack);
    stack.alpaca.setTime(at('16:15'));
    for (const field of ['price', 'qty']) {
      stack.alpaca.injectFaults({
        kind: 'malformed-field',
        route: 'GET /v2/account/activities',
        field,
        json: '"-410.5"',
        times: 100,
      });
      await expect(endOfDay(stack.ctx, at('16:15'))).rejects.toThrow(new RegExp(`item 0: field "${field}"`));
      stack.alpaca.clearFaults();
      expect(await stack.ctx.store.listFills(DAY)).toEqual([]);
    }
  });
});

describe('the kill switch during execute-orders', () => {
  const halt = (ctx: LiveContext, time: string) =>
    killSwitch(ctx, { flatten: false, by: 'alarm:daily-loss', reason: 'rehearsal', time });

  it('a halt that lands between one entry and the next stops every entry not yet at the broker', async () => {
    stack = await startLiveStack({ startTime: at('08:00'), withCache: false });
    const [first, second] = inSendingOrder(await signals(stack));
    let result: Awaited<ReturnType<typeof halt>> | undefined;
    const ctx = onClaim(stack.ctx, async (intent) => {
      if (intent.clientOrderId === first.clientOrderId)
        result = await halt(stack?.ctx as LiveContext, at('09:15'));
    });
    await executeOrders(ctx, at('09:15'));
    expect(postOrders(stack)).toEqual([]);
    expect(result?.entriesCancelled).toEqual([first.clientOrderId]);
    expect(result?.entriesSkipped).toEqual([second.clientOrderId]);
    expect((await stack.ctx.store.getIntent(DAY, first.clientOrderId))?.status).toBe('cancelled');
    expect((await stack.ctx.store.getIntent(DAY, second.clientOrderId))?.status).toBe('skipped');
  });

  it('a halt while the entry is on its way to the broker: whoever comes second cancels it at once', async () => {
    stack = await startLiveStack({ startTime: at('08:00'), withCache: false });
    const [first] = inSendingOrder(await signals(stack));
    const broker = Object.create(stack.ctx.broker) as LiveContext['broker'];
    let halted = false;
    broker.submitOrder = async (order) => {
      if (!halted) {
        halted = true;
        // The halt lands after the last check and before the order arrives.
        await halt(stack?.ctx as LiveContext, at('09:15'));
      }
      return stack?.ctx.broker.submitOrder(order) as ReturnType<LiveContext['broker']['submitOrder']>;
    };
    await executeOrders({ ...stack.ctx, broker }, at('09:15'));
    expect(postOrders(stack)).toHaveLength(1);
    const order = await stack.ctx.broker.getOrderByClientOrderId(first.clientOrderId);
    expect(order?.status).toBe('canceled');
    stack.alpaca.setTime(at('10:00'));
    expect(await stack.ctx.broker.getPositions()).toEqual([]);
  });

  it('a halt after the broker accepted the entry cancels it before the open', async () => {
    stack = await startLiveStack({ startTime: at('08:00'), withCache: false });
    const intents = await signals(stack);
    await executeOrders(stack.ctx, at('09:15'));
    const result = await halt(stack.ctx, at('09:20'));
    expect([...result.entriesCancelled].sort()).toEqual(intents.map((i) => i.clientOrderId).sort());
    stack.alpaca.setTime(at('10:00'));
    expect(await stack.ctx.broker.getPositions()).toEqual([]);
  });
});

describe('late and missing fills', () => {
  const NEXT = '2021-03-19';

  /** Day 2 up to its end-of-day: the market-open check, then end-of-day at 16:15. */
  async function nextEndOfDay(s: Stack) {
    s.alpaca.setTime(at('08:00', NEXT));
    await marketOpenCheck(s.ctx, at('09:00', NEXT));
    s.alpaca.setTime(at('16:15', NEXT));
    const report = await endOfDay(s.ctx, at('16:15', NEXT));
    if (!('date' in report)) throw new Error('expected a report');
    return report;
  }

  it('a fill the broker reports late is alerted as missing, then backfilled by the next end-of-day', async () => {
    stack = await startLiveStack({ startTime: at('08:00'), withCache: false });
    const [late] = inSendingOrder(await filledAndProtected(stack));
    const order = await stack.ctx.broker.getOrderByClientOrderId(late.clientOrderId);
    stack.alpaca.setTime(at('16:15'));
    stack.alpaca.injectFaults({
      kind: 'lagging',
      route: 'GET /v2/account/activities',
      field: 'order_id',
      value: order?.id as string,
    });
    const report = await endOfDay(stack.ctx, at('16:15'));
    if (!('date' in report)) throw new Error('expected a report');
    expect(report.fills).toHaveLength(1);
    const gap = stack.notifier.sent.filter((n) => /fills missing/i.test(n.subject));
    expect(gap).toHaveLength(1);
    expect(gap[0]).toMatchObject({ severity: 'critical' });
    expect(gap[0]?.text).toContain(late.clientOrderId);

    const next = await nextEndOfDay(stack);
    expect(next.backfilled.map((f) => f.clientOrderId)).toEqual([late.clientOrderId]);
    expect((await stack.ctx.store.listFills(DAY)).map((f) => f.symbol).sort()).toEqual(['QQQ', 'SPY']);
    expect(stack.notifier.sent.filter((n) => /fills missing/i.test(n.subject))).toHaveLength(1);
  });

  /** The end-of-day of `day`, after its market-open check (the first day's has run). */
  async function endOfDayOn(s: Stack, day: string) {
    if (day !== DAY) {
      s.alpaca.setTime(at('08:00', day));
      await marketOpenCheck(s.ctx, at('09:00', day));
    }
    s.alpaca.setTime(at('16:15', day));
    const report = await endOfDay(s.ctx, at('16:15', day));
    if (!('date' in report)) throw new Error('expected a report');
    return report;
  }

  it.each([2, 3])(
    'a fill listed only after %i end-of-days is booked on the sleeve once: its position stays, no bucket',
    async (lagging) => {
      stack = await startLiveStack({ startTime: at('08:00'), withCache: false });
      const [late] = inSendingOrder(await filledAndProtected(stack));
      const order = await stack.ctx.broker.getOrderByClientOrderId(late.clientOrderId);
      if (order === null) throw new Error('expected the order');
      stack.alpaca.injectFaults({
        kind: 'lagging',
        route: 'GET /v2/account/activities',
        field: 'order_id',
        value: order.id,
        times: 1_000,
      });
      const days = [DAY, NEXT, '2021-03-22', '2021-03-23'];
      for (const [n, day] of days.slice(0, lagging + 1).entries()) {
        if (n === lagging) stack.alpaca.clearFaults();
        const report = await endOfDayOn(stack, day);
        expect(report.positions.find((p) => p.symbol === late.symbol)?.qty, day).toBe(order.filledQty);
        const line = report.reconciliation.symbols.find((l) => l.symbol === late.symbol);
        expect(line?.unassignedAfter ?? 0, day).toBe(0);
        expect(report.fillGaps.length > 0, day).toBe(n < lagging);
      }
      expect(order.filledQty).toBeGreaterThan(0);
      expect(stack.notifier.sent.filter((n) => /UNASSIGNED|reconciliation/i.test(n.subject))).toEqual([]);
      expect((await stack.ctx.store.listFills(DAY)).filter((f) => f.symbol === late.symbol)).toHaveLength(1);
    },
  );

  it('a fill of a day whose end-of-day failed, listed only later: the next end-of-day books it once', async () => {
    stack = await startLiveStack({ startTime: at('08:00'), withCache: false });
    // No risk check after the fill: no list of the day books it. (Only the lagging order's symbol is
    // checked: the other entry's fill, listed, is backfilled on the next day and not walked.)
    const [late] = inSendingOrder(await signals(stack));
    await executeOrders(stack.ctx, at('09:15'));
    stack.alpaca.setTime(at('16:15'));
    const order = await stack.ctx.broker.getOrderByClientOrderId(late.clientOrderId);
    if (order === null) throw new Error('expected the order');
    stack.alpaca.injectFaults({
      kind: 'malformed-field',
      route: 'GET /v2/account/activities',
      field: 'price',
      json: '"-1"',
      times: 1_000,
    });
    await expect(endOfDay(stack.ctx, at('16:15'))).rejects.toThrow(/price/);
    stack.alpaca.clearFaults();
    stack.alpaca.injectFaults({
      kind: 'lagging',
      route: 'GET /v2/account/activities',
      field: 'order_id',
      value: order.id,
      times: 1_000,
    });
    for (const [n, day] of [NEXT, '2021-03-22', '2021-03-23'].entries()) {
      if (n === 2) stack.alpaca.clearFaults();
      const report = await endOfDayOn(stack, day);
      expect(report.positions.find((p) => p.symbol === late.symbol)?.qty, day).toBe(order.filledQty);
      const line = report.reconciliation.symbols.find((l) => l.symbol === late.symbol);
      expect(line?.unassignedAfter ?? 0, day).toBe(0);
    }
    expect(order.filledQty).toBeGreaterThan(0);
    const alerts = stack.notifier.sent.filter((n) => /UNASSIGNED/.test(n.subject));
    expect(alerts.filter((n) => n.subject.includes(late.symbol))).toEqual([]);
  });

  it('an end-of-day that fails for a whole day loses no fill: the next one backfills them', async () => {
    stack = await startLiveStack({ startTime: at('08:00'), withCache: false });
    await filledAndProtected(stack);
    stack.alpaca.setTime(at('16:15'));
    stack.alpaca.injectFaults({
      kind: 'malformed-field',
      route: 'GET /v2/account/activities',
      field: 'price',
      json: '"-1"',
      times: 1_000,
    });
    for (const time of ['16:15', '16:30', '17:00']) {
      await expect(endOfDay(stack.ctx, at(time))).rejects.toThrow(/price/);
    }
    stack.alpaca.clearFaults();
    const next = await nextEndOfDay(stack);
    expect(next.backfilled.map((f) => f.symbol).sort()).toEqual(['QQQ', 'SPY']);
    expect((await stack.ctx.store.listFills(DAY)).map((f) => f.symbol).sort()).toEqual(['QQQ', 'SPY']);
    expect(next.drift).toEqual([]);
    expect(stack.notifier.sent.filter((n) => /fills missing/i.test(n.subject))).toEqual([]);
  });
});

describe('concurrent risk checks', () => {
  it('ten at once: no false "Position without a stop", no failure, one stop per position', async () => {
    stack = await startLiveStack({ startTime: at('08:00'), withCache: false });
    const intents = await signals(stack);
    await executeOrders(stack.ctx, at('09:15'));
    stack.alpaca.setTime(at('10:00'));
    const checks = await Promise.allSettled(
      Array.from({ length: 10 }, () => riskCheck(stack?.ctx as LiveContext, at('10:00'))),
    );
    expect(checks.filter((c) => c.status === 'rejected')).toEqual([]);
    expect(stack.notifier.sent.filter((n) => /without a stop/.test(n.subject))).toEqual([]);
    const stops = (await stack.ctx.broker.listOrders({ status: 'open' })).filter((o) => o.type === 'stop');
    expect(stops.map((o) => o.symbol).sort()).toEqual(intents.map((i) => i.symbol).sort());
  });
});

describe('timeouts and 5xx storms at the broker', () => {
  /** The context with its own broker adapter on the same local server: a short timeout, quick retries. */
  function impatient(s: Stack): LiveContext {
    return {
      ...s.ctx,
      broker: new AlpacaBroker({
        ...LOCAL_KEYS,
        baseUrl: s.alpaca.url,
        timeoutMs: 150,
        retry: { maxRetries: 2, baseDelayMs: 5, maxDelayMs: 20 },
        rateLimit: false,
      }),
    };
  }
  const brokerHas = async (s: Stack, id: string) => {
    for (let i = 0; i < 200; i++) {
      if ((await s.ctx.broker.getOrderByClientOrderId(id)) !== null) return;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    throw new Error(`the broker never got ${id}`);
  };

  it('a timeout after the broker accepted: unknown and alerted, resolved by client order id on the retry, never resent', async () => {
    stack = await startLiveStack({ startTime: at('08:00'), withCache: false });
    const intents = await signals(stack);
    stack.alpaca.injectFaults({ kind: 'delay', ms: 400, route: 'POST /v2/orders', times: intents.length });
    const ctx = impatient(stack);
    const first = await executeOrders(ctx, at('09:15'));
    // Unknown (alerted) unless the broker had already created it when the lookup came.
    const unknown = first.intents.filter((i) => i.status === 'unknown');
    expect(unknown.length + first.intents.filter((i) => i.status === 'accepted').length).toBe(intents.length);
    expect(unknown.length).toBeGreaterThan(0);
    expect(stack.notifier.sent.filter((n) => /outcome unknown/.test(n.subject))).toHaveLength(unknown.length);
    for (const intent of intents) await brokerHas(stack, intent.clientOrderId);
    await executeOrders(ctx, at('09:16'));
    for (const intent of intents)
      expect((await stack.ctx.store.getIntent(DAY, intent.clientOrderId))?.status).toBe('accepted');
    expect(postOrders(stack)).toHaveLength(intents.length);
  });

  it('503 on every submit and 502 on every lookup: unknown and alerted; once they stop, each intent is sent exactly once', async () => {
    stack = await startLiveStack({ startTime: at('08:00'), withCache: false });
    const intents = await signals(stack);
    stack.alpaca.injectFaults(
      { kind: 'status', status: 503, route: 'POST /v2/orders', times: 1_000 },
      { kind: 'status', status: 502, route: 'GET /v2/orders:by_client_order_id', times: 1_000 },
    );
    const ctx = impatient(stack);
    const storm = await executeOrders(ctx, at('09:15'));
    expect(storm.intents.map((i) => i.status)).toEqual(intents.map(() => 'unknown'));
    // Still storming: the retry cannot tell either, and sends nothing blindly.
    await expect(executeOrders(ctx, at('09:16'))).rejects.toThrow(/HTTP 502/);
    expect(await stack.ctx.broker.listOrders({ status: 'all' })).toEqual([]);
    stack.alpaca.clearFaults();
    const after = await executeOrders(ctx, at('09:17'));
    expect(after.intents.map((i) => i.status)).toEqual(intents.map(() => 'accepted'));
    expect(await stack.ctx.broker.listOrders({ status: 'all' })).toHaveLength(intents.length);
  });

  it('a dropped answer to the submit and 502 on the lookups: unknown, then accepted once the lookups answer', async () => {
    stack = await startLiveStack({ startTime: at('08:00'), withCache: false });
    const intents = await signals(stack);
    stack.alpaca.injectFaults(
      { kind: 'drop', when: 'after-handling', route: 'POST /v2/orders', times: intents.length },
      { kind: 'status', status: 502, route: 'GET /v2/orders:by_client_order_id', times: 1_000 },
    );
    const ctx = impatient(stack);
    const storm = await executeOrders(ctx, at('09:15'));
    expect(storm.intents.map((i) => i.status)).toEqual(intents.map(() => 'unknown'));
    stack.alpaca.clearFaults();
    const after = await executeOrders(ctx, at('09:16'));
    expect(after.intents.map((i) => i.status)).toEqual(intents.map(() => 'accepted'));
    expect(postOrders(stack)).toHaveLength(intents.length);
  });
});
