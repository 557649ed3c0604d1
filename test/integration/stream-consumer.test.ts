import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { AlpacaMarketData } from '../../shared/adapters/alpaca/market-data.js';
import { type LocalStream, startLocalStream } from '../../shared/adapters/local/alpaca-stream-server.js';
import type { ReplayBar } from '../../shared/adapters/local/minute-bars.js';
import {
  type ConsumerEvent,
  type MarketMessage,
  StreamConsumer,
  StreamFatalError,
} from '../../shared/stream/consumer.js';
import { MemoryLease, StreamLeaseHeldError } from '../../shared/stream/lease.js';
import { minuteBarsBackfill } from '../../shared/stream/run.js';

const KEYS = { keyId: 'stream-key', secret: 'stream-secret-0123456789' };
const bar = (minute: number, price = 100, S = 'SPY'): ReplayBar => ({
  S,
  t: new Date(Date.UTC(2025, 5, 2, 13, 30 + minute)).toISOString(),
  o: price,
  h: price + 1,
  l: price - 1,
  c: price + 0.5,
  v: 1000,
});

const until = async (check: () => boolean, what: string) => {
  for (let i = 0; i < 500; i++) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
};

let server: LocalStream | undefined;
const consumers: StreamConsumer[] = [];
afterEach(async () => {
  for (const c of consumers.splice(0)) await c.stop();
  await server?.close();
  server = undefined;
});

function consumer(
  url: string,
  options: {
    lease?: MemoryLease;
    holder?: string;
    keys?: typeof KEYS;
    now?: () => number;
    staleAfterMs?: number;
    maxConnectionLimitRetries?: number;
    authTimeoutMs?: number;
  } = {},
) {
  const received: { message: MarketMessage; backfilled: boolean }[] = [];
  const events: ConsumerEvent[] = [];
  const marketData = new AlpacaMarketData({
    ...KEYS,
    baseUrl: server?.httpUrl as string,
    rateLimit: false,
    retry: { maxRetries: 0 },
  });
  const c = new StreamConsumer({
    url,
    ...(options.keys ?? KEYS),
    subscriptions: () => ({ trades: ['SPY'], quotes: ['SPY'], bars: ['SPY', 'QQQ'] }),
    onMarket: (message, _at, backfilled) => received.push({ message, backfilled }),
    onEvent: (e) => events.push(e),
    backfill: minuteBarsBackfill(marketData),
    lease: options.lease ?? new MemoryLease(),
    holder: options.holder ?? 'test-1',
    backoff: { initialMs: 20, maxMs: 100 },
    staleAfterMs: options.staleAfterMs ?? 60_000,
    ...(options.now === undefined ? {} : { now: options.now }),
    ...(options.authTimeoutMs === undefined ? {} : { authTimeoutMs: options.authTimeoutMs }),
    ...(options.maxConnectionLimitRetries === undefined
      ? {}
      : { maxConnectionLimitRetries: options.maxConnectionLimitRetries }),
  });
  consumers.push(c);
  return { c, received, events };
}

const bars = (received: { message: MarketMessage; backfilled: boolean }[]) =>
  received
    .filter((r) => r.message.T === 'b')
    .map((r) => `${r.message.t.slice(11, 16)}${r.backfilled ? '*' : ''}`);

describe('stream consumer against the local stream server', () => {
  it('authenticates, subscribes to trades, quotes, bars and statuses, and receives validated messages', async () => {
    server = await startLocalStream(KEYS);
    const { c, received } = consumer(server.url);
    await c.start();
    server.replayBar(bar(0));
    await until(() => received.length === 6, 'one replayed minute');
    expect(received.map((r) => r.message.T)).toEqual(['q', 't', 't', 't', 't', 'b']);
    const subscribe = server.actions.find((a) => a.action === 'subscribe');
    expect(subscribe).toMatchObject({
      trades: ['SPY'],
      quotes: ['SPY'],
      bars: ['SPY', 'QQQ'],
      statuses: ['SPY', 'QQQ'],
    });
    expect(server.actions[0]).toMatchObject({ action: 'auth', key: '[redacted]' });
  });

  it('unsubscribes what it no longer needs when the held symbols change', async () => {
    server = await startLocalStream(KEYS);
    let held = ['SPY', 'QQQ'];
    const c = new StreamConsumer({
      url: server.url,
      ...KEYS,
      subscriptions: () => ({ trades: held, quotes: held, bars: ['SPY', 'QQQ'] }),
      onMarket: () => {},
      lease: new MemoryLease(),
      holder: 'test-1',
    });
    consumers.push(c);
    await c.start();
    held = ['SPY'];
    c.resubscribe();
    await until(() => server?.actions.some((a) => a.action === 'unsubscribe') === true, 'the unsubscribe');
    expect(server.actions.find((a) => a.action === 'unsubscribe')).toEqual({
      action: 'unsubscribe',
      trades: ['QQQ'],
      quotes: ['QQQ'],
      bars: [],
      statuses: [],
    });
  });

  it('reconnects after a dropped connection and resubscribes', async () => {
    server = await startLocalStream(KEYS);
    const { c, received, events } = consumer(server.url);
    await c.start();
    server.injectFaults({ kind: 'drop' });
    server.replayBar(bar(0));
    await until(() => events.filter((e) => e.kind === 'subscribed').length === 2, 'the second subscription');
    expect(server.connections).toBe(2);
    expect(server.actions.filter((a) => a.action === 'subscribe')).toHaveLength(2);
    server.replayBar(bar(1));
    await until(() => received.some((r) => r.message.T === 'b'), 'a bar after the reconnect');
    expect(c.counts.reconnects).toBe(1);
  });

  it('backfills missed minute bars over REST, and drops duplicates and out-of-order bars', async () => {
    server = await startLocalStream(KEYS);
    const { c, received, events } = consumer(server.url);
    await c.start();
    server.replayBar(bar(0));
    server.injectFaults({ kind: 'skip', bars: 2 });
    server.replayBar(bar(1));
    server.replayBar(bar(2));
    server.replayBar(bar(3));
    await until(() => bars(received).length === 4, 'four bars');
    expect(bars(received)).toEqual(['13:30', '13:31*', '13:32*', '13:33']);
    expect(events).toContainEqual(
      expect.objectContaining({ kind: 'gap', symbol: 'SPY', missing: 2, backfilled: 2 }),
    );
    server.injectFaults({ kind: 'duplicate' });
    server.replayBar(bar(4));
    server.injectFaults({ kind: 'out-of-order' });
    server.replayBar(bar(5));
    server.replayBar(bar(6));
    await until(() => bars(received).length === 7, 'seven bars');
    // 13:36 came before 13:35: the gap it showed is backfilled, and the late 13:35 is dropped.
    expect(bars(received)).toEqual(['13:30', '13:31*', '13:32*', '13:33', '13:34', '13:35*', '13:36']);
    expect(c.counts.dropped).toBe(2);
    expect(events.filter((e) => e.kind === 'dropped').map((e) => (e as { why: string }).why)).toEqual([
      'duplicate',
      'out-of-order',
    ]);
  });

  it('reports a subscribed symbol that goes silent as stale, once, and fresh when it speaks again', async () => {
    server = await startLocalStream(KEYS);
    let now = Date.UTC(2025, 5, 2, 14);
    const { c, events } = consumer(server.url, { now: () => now, staleAfterMs: 1_000 });
    await c.start();
    now += 5_000;
    await until(() => events.filter((e) => e.kind === 'stale').length === 2, 'two stale symbols');
    expect([...c.staleSymbols].sort()).toEqual(['QQQ', 'SPY']);
    server.replayBar(bar(0));
    await until(() => events.some((e) => e.kind === 'fresh'), 'SPY fresh again');
    expect(c.staleSymbols).toEqual(['QQQ']);
    expect(events.filter((e) => e.kind === 'stale')).toHaveLength(2);
  });

  it('refuses to open a second connection while another process holds the lease', async () => {
    server = await startLocalStream(KEYS);
    const lease = new MemoryLease();
    const first = consumer(server.url, { lease, holder: 'task-a' });
    await first.c.start();
    const second = consumer(server.url, { lease, holder: 'task-b' });
    await expect(second.c.start()).rejects.toBeInstanceOf(StreamLeaseHeldError);
    expect(server.connections).toBe(1);
    await first.c.stop();
    expect(await lease.read()).toBeUndefined();
    await second.c.start();
    expect(server.connections).toBe(2);
  });

  it('stops on refused keys (402) and does not retry them', async () => {
    server = await startLocalStream(KEYS);
    const { c } = consumer(server.url, { keys: { keyId: 'wrong', secret: 'wrong-secret-0123456789' } });
    await expect(c.start()).rejects.toBeInstanceOf(StreamFatalError);
    await expect(c.done()).rejects.toThrow(/402/);
    expect(server.connections).toBe(1);
  });

  it('reconnects when the server does not answer the auth in time (404), and authenticates on the next connection', async () => {
    server = await startLocalStream(KEYS);
    // A front that says "connected" and never answers the first connection's auth; later
    // connections are passed through to the local server.
    const front = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise((resolve) => front.once('listening', resolve));
    let connections = 0;
    front.on('connection', (client) => {
      connections++;
      if (connections === 1) {
        client.send(JSON.stringify([{ T: 'success', msg: 'connected' }]));
        return;
      }
      const upstream = new WebSocket((server as LocalStream).url);
      const queued: string[] = [];
      client.on('message', (data) =>
        upstream.readyState === WebSocket.OPEN ? upstream.send(String(data)) : queued.push(String(data)),
      );
      upstream.on('open', () => {
        for (const text of queued.splice(0)) upstream.send(text);
      });
      upstream.on('message', (data) => client.send(String(data)));
      client.on('close', () => upstream.close());
    });
    try {
      const { c, events } = consumer(`ws://127.0.0.1:${(front.address() as AddressInfo).port}`, {
        authTimeoutMs: 1_500,
      });
      await c.start();
      expect(events).toContainEqual(expect.objectContaining({ kind: 'server-error', code: 404 }));
      expect(events.filter((e) => e.kind === 'authenticated')).toHaveLength(1);
      expect(connections).toBe(2);
      await c.stop();
    } finally {
      for (const client of front.clients) client.terminate();
      await new Promise((resolve) => front.close(resolve));
    }
  });

  it('gives up after the allowed connection-limit (406) retries: another connection holds the account', async () => {
    server = await startLocalStream({ ...KEYS, faults: [{ kind: 'connection-limit', times: 3 }] });
    const { c, events } = consumer(server.url, { maxConnectionLimitRetries: 2 });
    const started = c.start().catch((error: unknown) => error);
    await expect(c.done()).rejects.toBeInstanceOf(StreamFatalError);
    await expect(c.done()).rejects.toThrow(/connection limit \(406\) 3 times/);
    await started;
    expect(events.filter((e) => e.kind === 'server-error' && e.code === 406)).toHaveLength(3);
    expect(server.connections).toBe(3);
  });

  it('waits and reconnects after a connection limit (406) and a slow-client error (407)', async () => {
    server = await startLocalStream({ ...KEYS, faults: [{ kind: 'connection-limit' }] });
    const { c, events, received } = consumer(server.url);
    await c.start();
    expect(events).toContainEqual(expect.objectContaining({ kind: 'server-error', code: 406 }));
    server.injectFaults({ kind: 'slow-client' });
    server.replayBar(bar(0));
    await until(() => events.filter((e) => e.kind === 'subscribed').length === 2, 'resubscribed after 407');
    expect(events).toContainEqual(expect.objectContaining({ kind: 'server-error', code: 407 }));
    server.replayBar(bar(1));
    await until(() => received.some((r) => r.message.T === 'b'), 'a bar after 407');
    expect(server.connections).toBe(3);
  });
});
