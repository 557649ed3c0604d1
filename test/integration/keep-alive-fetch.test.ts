import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { AlpacaBroker } from '../../shared/adapters/alpaca/broker.js';
import { keepAliveFetch } from '../../shared/adapters/alpaca/keep-alive-fetch.js';
import { type LocalAlpaca, startLocalAlpaca } from '../../shared/adapters/local/alpaca-server.js';
import { LOCAL_KEYS } from '../../shared/adapters/local/live-stack.js';
import { BrokerUnavailableError, DuplicateClientOrderIdError } from '../../shared/core/errors.js';

const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

/** The local paper broker in session (2021-03-18 10:00 New York) and the adapter on the keep-alive transport. */
async function broker(timeoutMs = 30_000) {
  const server: LocalAlpaca = await startLocalAlpaca({
    dataDir: 'data',
    ...LOCAL_KEYS,
    paper: { startTime: '2021-03-18T14:00:00.000Z' },
  });
  const transport = keepAliveFetch();
  cleanup.push(
    () => server.close(),
    () => transport.close(),
  );
  const adapter = new AlpacaBroker({
    ...LOCAL_KEYS,
    baseUrl: server.url,
    retry: { maxRetries: 1, baseDelayMs: 1, maxDelayMs: 5 },
    rateLimit: false,
    timeoutMs,
    fetchApi: transport,
  });
  return { server, adapter, transport };
}

describe('the keep-alive transport of the broker (the stream task)', () => {
  it('carries every call the stream makes: order POST, a duplicate id, lookups, lists and a 204 cancel', async () => {
    const { adapter } = await broker();
    const stop = await adapter.submitOrder({
      clientOrderId: 'ka-stop',
      symbol: 'SPY',
      side: 'sell',
      qty: 1,
      type: 'stop',
      stopPrice: 1,
      timeInForce: 'gtc',
    });
    expect(stop).toMatchObject({ clientOrderId: 'ka-stop', type: 'stop', status: 'new' });
    await expect(
      adapter.submitOrder({
        clientOrderId: 'ka-stop',
        symbol: 'SPY',
        side: 'sell',
        qty: 1,
        type: 'stop',
        stopPrice: 1,
        timeInForce: 'gtc',
      }),
    ).rejects.toBeInstanceOf(DuplicateClientOrderIdError);
    expect((await adapter.listOrders({ status: 'open', symbols: ['SPY'] })).map((o) => o.id)).toEqual([
      stop.id,
    ]);
    expect(await adapter.getOrderByClientOrderId('ka-unknown')).toBeNull();
    await adapter.cancelOrder(stop.id);
    // A second cancel hears 422 "already canceled": done, as with the global fetch.
    await adapter.cancelOrder(stop.id);
    expect(await adapter.listOrders({ status: 'open', symbols: ['SPY'] })).toEqual([]);
    expect((await adapter.getAccount()).cash).toBeGreaterThan(0);
  });

  it('reports a dropped connection and a timed-out call as BrokerUnavailableError', async () => {
    const { server, adapter, transport } = await broker(300);
    server.injectFaults({ kind: 'drop', when: 'before-handling', route: 'GET /v2/account', times: 2 });
    await expect(adapter.getAccount()).rejects.toBeInstanceOf(BrokerUnavailableError);
    server.injectFaults({ kind: 'delay', ms: 3_000, route: 'GET /v2/account', times: 2 });
    await expect(adapter.getAccount()).rejects.toBeInstanceOf(BrokerUnavailableError);
    server.clearFaults();
    // The same transport (its sockets cut or abandoned above) carries the next call, with the default timeout.
    const again = new AlpacaBroker({
      ...LOCAL_KEYS,
      baseUrl: server.url,
      rateLimit: false,
      fetchApi: transport,
    });
    expect((await again.getAccount()).cash).toBeGreaterThan(0);
  });

  it('keeps one socket for calls one after another', async () => {
    let connections = 0;
    const server = http.createServer((request, response) => {
      request.resume();
      request.on('end', () => response.end(JSON.stringify({ path: request.url })));
    });
    server.on('connection', () => connections++);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const transport = keepAliveFetch();
    cleanup.push(
      () => new Promise((resolve) => server.close(resolve)),
      () => transport.close(),
    );
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    for (const path of ['/a', '/b', '/c']) {
      const response = await transport(`${url}${path}`, { method: 'POST', body: '{}' });
      expect(response.status).toBe(200);
      expect(await response.json()).toEqual({ path });
    }
    expect(connections).toBe(1);
  });
});
