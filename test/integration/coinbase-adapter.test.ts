/**
 * The Coinbase adapters against the local Coinbase-compatible server over HTTP: JWT auth with ES256
 * and Ed25519 keys generated here (never a real key), products and increments, every order type,
 * fills with cursor paging, accounts and holds, candles in pages of at most 350, funding rates,
 * every fault mode, and exactly one order per client order id under double, concurrent and
 * timed-out submissions (through the live path's own `sendClaimedIntent`).
 */
import { randomBytes } from 'node:crypto';
import { SignJWT } from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadSigningKey } from '../../shared/adapters/coinbase/auth.js';
import { CoinbaseBroker, type CoinbaseBrokerOptions } from '../../shared/adapters/coinbase/broker.js';
import { CoinbaseMarketData } from '../../shared/adapters/coinbase/market-data.js';
import { loadBarsCsv } from '../../shared/adapters/fs/bars.js';
import {
  generateTestCdpKey,
  type LocalCoinbase,
  startLocalCoinbase,
} from '../../shared/adapters/local/coinbase-server.js';
import {
  BrokerRejectedError,
  BrokerUnavailableError,
  EquitySymbolRefusedError,
  MarketDataError,
  OrderSizeRefusedError,
  RateLimitedError,
} from '../../shared/core/errors.js';
import { fundingAlerts } from '../../shared/core/market/funding.js';
import type { IntentRecord } from '../../shared/core/ports/state-store.js';
import type { LiveContext } from '../../shared/live/context.js';
import { sendClaimedIntent } from '../../shared/live/submit.js';

const es256 = generateTestCdpKey('ES256');
const ed25519 = generateTestCdpKey('EdDSA');
const stranger = generateTestCdpKey('ES256');
let server: LocalCoinbase;
let day = 0;

/** A fresh deterministic client order id per test (the core's shape: qs-tag-SYMBOL-YYYYMMDD-purpose). */
const orderId = (symbol: string, purpose = 'entry') => `qs-cafebabe-${symbol}-20260101-${purpose}-${++day}`;

const broker = (overrides: Partial<CoinbaseBrokerOptions> = {}) =>
  new CoinbaseBroker({
    key: es256.cdpKey,
    baseUrl: server.url,
    retry: { maxRetries: 3, baseDelayMs: 1, maxDelayMs: 20 },
    timeoutMs: 5_000,
    ...overrides,
  });

const posts = () => server.requestLog.filter((r) => r.method === 'POST' && r.path.endsWith('/orders')).length;

beforeAll(async () => {
  server = await startLocalCoinbase({
    dataDir: 'data/crypto',
    keys: [es256, ed25519].map((k) => ({ name: k.cdpKey.name, publicKey: k.publicKey })),
    balances: { USD: 1_000_000 },
    takerFeeBps: 60,
    futures: [
      { productId: 'BIP-20DEC30-CDE', underlying: 'BTC', rate: 0.00001, time: '2026-01-12T15:00:00Z' },
      { productId: 'ETP-20DEC30-CDE', underlying: 'ETH', rate: -0.00002, time: '2026-01-12T15:00:00Z' },
    ],
  });
});
afterAll(async () => {
  await server.close();
});
afterEach(() => {
  server.clearFaults();
  server.setPartialFill(undefined);
});

describe('authentication (CDP JWT)', () => {
  it('accepts ES256 and Ed25519 keys', async () => {
    for (const key of [es256, ed25519]) {
      const balances = await broker({ key: key.cdpKey }).getBalances();
      expect(balances.find((b) => b.currency === 'USD')?.available).toBeGreaterThan(0);
    }
    expect(loadSigningKey(es256.cdpKey).alg).toBe('ES256');
    expect(loadSigningKey(ed25519.cdpKey).alg).toBe('EdDSA');
  });

  it('refuses an unknown key, an expired token, a wrong uri and a replayed nonce (401, not retried)', async () => {
    await expect(broker({ key: stranger.cdpKey }).getBalances()).rejects.toThrow(
      /HTTP 401: UNAUTHENTICATED: unknown key/,
    );
    await expect(broker({ now: () => Date.now() - 600_000 }).getBalances()).rejects.toThrow(
      /HTTP 401: .*JWT refused/,
    );
    const key = loadSigningKey(es256.cdpKey);
    const host = new URL(server.url).host;
    const sign = (uri: string, nonce: string) => {
      const now = Math.floor(Date.now() / 1000);
      return new SignJWT({ iss: 'cdp', sub: key.name, nbf: now, exp: now + 120, uri })
        .setProtectedHeader({ alg: 'ES256', kid: key.name, nonce, typ: 'JWT' })
        .sign(key.key);
    };
    const get = (jwt: string) =>
      fetch(`${server.url}/api/v3/brokerage/accounts`, { headers: { Authorization: `Bearer ${jwt}` } });
    const wrongUri = await get(
      await sign(`POST ${host}/api/v3/brokerage/accounts`, randomBytes(16).toString('hex')),
    );
    expect(wrongUri.status).toBe(401);
    expect(await wrongUri.text()).toMatch(/uri claim/);
    const token = await sign(`GET ${host}/api/v3/brokerage/accounts`, randomBytes(16).toString('hex'));
    expect((await get(token)).status).toBe(200);
    const replay = await get(token);
    expect(replay.status).toBe(401);
    expect(await replay.text()).toMatch(/nonce already used/);
    expect((await get('not-a-jwt')).status).toBe(401);
  });
});

describe('products, accounts and orders', () => {
  it('reads products: increments, minimum sizes, status and price', async () => {
    const sol = await broker().getProduct('SOL-USD');
    expect(sol).toMatchObject({
      productId: 'SOL-USD',
      baseIncrement: 0.001,
      baseMinSize: 0.001,
      quoteMinSize: 1,
      status: 'online',
      tradingDisabled: false,
    });
    expect(sol.price).toBeGreaterThan(0);
  });

  it('places a market IOC entry rounded DOWN to the base increment; fills, fees, balances and holds follow', async () => {
    const b = broker();
    const usdBefore = server.balance('USD').available;
    const id = orderId('SOL-USD');
    const order = await b.submitOrder({
      clientOrderId: id,
      symbol: 'SOL-USD',
      side: 'buy',
      qty: 10.12345,
      type: 'market',
      timeInForce: 'ioc',
    });
    expect(order).toMatchObject({
      clientOrderId: id,
      symbol: 'SOL-USD',
      qty: 10.123,
      filledQty: 10.123,
      status: 'filled',
      type: 'market',
      timeInForce: 'ioc',
    });
    const fills = await b.listFills({ orderId: order.id });
    expect(fills).toHaveLength(1);
    const fill = fills[0] as (typeof fills)[number];
    expect(fill.commission).toBeCloseTo(fill.size * fill.price * 0.006, 6);
    expect(server.balance('SOL').available).toBeCloseTo(10.123, 9);
    expect(server.balance('USD').available).toBeCloseTo(
      usdBefore - fill.size * fill.price - fill.commission,
      4,
    );
    expect(server.balance('USD').hold).toBe(0);
    const positions = await b.getPositions();
    expect(positions.find((p) => p.symbol === 'SOL-USD')).toMatchObject({
      qty: 10.123,
      assetClass: 'crypto',
    });
    const account = await b.getAccount();
    expect(account).toMatchObject({ tradingBlocked: false, status: 'ACTIVE' });
    expect(account.equity).toBeCloseTo(account.cash + positions.reduce((a, p) => a + p.marketValue, 0), 6);
  });

  it('refuses under the minimum size or notional with OrderSizeRefusedError, sending nothing', async () => {
    const b = broker();
    const before = posts();
    const tiny = b.submitOrder({
      clientOrderId: orderId('SOL-USD'),
      symbol: 'SOL-USD',
      side: 'buy',
      qty: 0.0009,
      type: 'market',
      timeInForce: 'ioc',
    });
    await expect(tiny).rejects.toBeInstanceOf(OrderSizeRefusedError);
    await expect(
      b.submitOrder({
        clientOrderId: orderId('BTC-USD'),
        symbol: 'BTC-USD',
        side: 'buy',
        qty: 0.000001,
        type: 'market',
        timeInForce: 'ioc',
      }),
    ).rejects.toMatchObject({ refusal: 'below-min-notional' });
    expect(posts()).toBe(before);
  });

  it('the crypto bot refuses an equity ticker with EquitySymbolRefusedError, sending nothing', async () => {
    const before = server.requestLog.length;
    await expect(
      broker().submitOrder({
        clientOrderId: orderId('SPY'),
        symbol: 'SPY',
        side: 'buy',
        qty: 1,
        type: 'market',
        timeInForce: 'ioc',
      }),
    ).rejects.toBeInstanceOf(EquitySymbolRefusedError);
    await expect(
      new CoinbaseMarketData({ key: es256.cdpKey, baseUrl: server.url }).getDailyBars({
        symbols: ['SPY'],
        from: '2025-01-01',
        to: '2025-01-31',
      }),
    ).rejects.toBeInstanceOf(EquitySymbolRefusedError);
    expect(server.requestLog.length).toBe(before);
  });

  it('places a protective stop_limit (stop DOWN for a sell) that rests, triggers and fills; cancels are idempotent', async () => {
    const b = broker();
    await b.submitOrder({
      clientOrderId: orderId('ETH-USD'),
      symbol: 'ETH-USD',
      side: 'buy',
      qty: 2,
      type: 'market',
      timeInForce: 'ioc',
    });
    server.setPrice('ETH-USD', 3000);
    const stop = await b.submitOrder({
      clientOrderId: orderId('ETH-USD', 'stop'),
      symbol: 'ETH-USD',
      side: 'sell',
      qty: 1,
      type: 'stop_limit',
      timeInForce: 'gtc',
      stopPrice: 2700.004,
      limitPrice: 2650,
    });
    expect(stop).toMatchObject({
      type: 'stop_limit',
      timeInForce: 'gtc',
      stopPrice: 2700,
      limitPrice: 2650,
      status: 'new',
    });
    expect(server.balance('ETH').hold).toBe(1);
    expect(server.orders.find((o) => o.order_id === stop.id)?.order_configuration).toEqual({
      stop_limit_stop_limit_gtc: {
        base_size: '1.00000000',
        limit_price: '2650.00',
        stop_price: '2700.00',
        stop_direction: 'STOP_DIRECTION_STOP_DOWN',
      },
    });
    server.setPrice('ETH-USD', 2690);
    expect(await b.getOrder(stop.id)).toMatchObject({ status: 'filled', filledQty: 1, filledAvgPrice: 2690 });

    const second = await b.submitOrder({
      clientOrderId: orderId('ETH-USD', 'stop'),
      symbol: 'ETH-USD',
      side: 'sell',
      qty: 1,
      type: 'stop_limit',
      timeInForce: 'gtc',
      stopPrice: 2000,
      limitPrice: 1950,
    });
    const open = await b.listOrders({ status: 'open', symbols: ['ETH-USD'] });
    expect(open.map((o) => o.id)).toEqual([second.id]);
    await b.cancelOrder(second.id);
    await b.cancelOrder(second.id); // already cancelled: still fine
    expect((await b.getOrder(second.id)).status).toBe('canceled');
    expect(server.balance('ETH').hold).toBe(0);
    const closed = await b.listOrders({ status: 'closed', symbols: ['ETH-USD'] });
    expect(closed.map((o) => o.id)).toContain(second.id);
  });

  it('places a trigger bracket (take-profit limit and stop trigger) on a held position', async () => {
    const b = broker();
    server.setPrice('BTC-USD', 50_000);
    await b.submitOrder({
      clientOrderId: orderId('BTC-USD'),
      symbol: 'BTC-USD',
      side: 'buy',
      qty: 0.1,
      type: 'market',
      timeInForce: 'ioc',
    });
    const bracket = await b.submitOrder({
      clientOrderId: orderId('BTC-USD', 'stop'),
      symbol: 'BTC-USD',
      side: 'sell',
      qty: 0.1,
      type: 'limit',
      timeInForce: 'gtc',
      bracket: { takeProfitLimit: 60_000, stopLoss: 45_000 },
    });
    expect(bracket).toMatchObject({ status: 'new', limitPrice: 60_000, stopPrice: 45_000 });
    server.setPrice('BTC-USD', 61_000);
    expect(await b.getOrder(bracket.id)).toMatchObject({ status: 'filled', filledAvgPrice: 61_000 });
    await expect(
      b.submitOrder({
        clientOrderId: orderId('BTC-USD'),
        symbol: 'BTC-USD',
        side: 'buy',
        qty: 0.1,
        type: 'stop',
        timeInForce: 'gtc',
        stopPrice: 40_000,
      }),
    ).rejects.toThrow(/Coinbase has no stop order/);
    await expect(
      b.submitOrder({
        clientOrderId: orderId('BTC-USD'),
        symbol: 'BTC-USD',
        side: 'buy',
        qty: 0.1,
        type: 'market',
        timeInForce: 'opg',
      }),
    ).rejects.toThrow(/immediate-or-cancel/);
  });

  it('lists fills with cursor paging, oldest first, and reports them as activities', async () => {
    const b = broker({ pageSize: 2 });
    server.setPrice('SOL-USD', 100);
    for (let i = 0; i < 3; i++) {
      await b.submitOrder({
        clientOrderId: orderId('SOL-USD'),
        symbol: 'SOL-USD',
        side: 'buy',
        qty: 1,
        type: 'market',
        timeInForce: 'ioc',
      });
    }
    const all = await broker().listFills();
    const paged = await b.listFills();
    expect(paged.map((f) => f.entryId)).toEqual(all.map((f) => f.entryId));
    expect(paged.length).toBeGreaterThanOrEqual(5);
    const times = paged.map((f) => f.time);
    expect([...times].sort()).toEqual(times);
    const fillPages = server.requestLog.filter((r) => r.path.endsWith('/orders/historical/fills')).length;
    expect(fillPages).toBeGreaterThanOrEqual(4);
    const activities = await b.getActivities({});
    expect(activities).toHaveLength(paged.length);
    expect(activities[0]).toMatchObject({ kind: 'fill', partial: false });
    expect((await b.getBalances()).length).toBeGreaterThanOrEqual(3); // accounts paged by 2
  });

  it('fills a market order in part when told to: the IOC rest is cancelled, the fill is partial', async () => {
    const b = broker();
    server.setPartialFill(0.4);
    const order = await b.submitOrder({
      clientOrderId: orderId('SOL-USD'),
      symbol: 'SOL-USD',
      side: 'buy',
      qty: 5,
      type: 'market',
      timeInForce: 'ioc',
    });
    expect(order).toMatchObject({ qty: 5, filledQty: 2, status: 'canceled' });
    const activity = (await b.getActivities({})).find((a) => a.kind === 'fill' && a.orderId === order.id);
    expect(activity).toMatchObject({ qty: 2, partial: true });
    expect(server.balance('USD').hold).toBe(0);
  });

  it("reads the exchange's clock (GET /time): the local server's, not the signing clock", async () => {
    // The signing clock a minute off: the server time is still the server's (its machine clock).
    const b = broker({ now: () => Date.now() - 60_000 });
    const before = Date.now();
    const time = await b.getServerTime();
    expect(time).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
    expect(Date.parse(time)).toBeGreaterThanOrEqual(before);
    expect(Date.parse(time)).toBeLessThanOrEqual(Date.now());
  });

  it('answers the clock and calendar of a market that never closes', async () => {
    const b = broker({ now: () => Date.parse('2026-01-10T13:00:00Z') });
    expect(await b.getClock()).toMatchObject({ isOpen: true, nextClose: '2026-01-11T00:00:00.000Z' });
    expect((await b.getCalendar({ from: '2026-01-10', to: '2026-01-11' })).map((d) => d.date)).toEqual([
      '2026-01-10',
      '2026-01-11',
    ]);
  });
});

describe('faults: retries and exactly one order per client order id', () => {
  it('retries a 429 honouring Retry-After (capped), and without it backs off', async () => {
    const events: { delayMs: number; status?: number }[] = [];
    const b = broker({ onRetry: (e) => events.push(e) });
    server.injectFaults({
      kind: 'status',
      status: 429,
      retryAfterSeconds: 7,
      route: 'GET /api/v3/brokerage/accounts',
    });
    await b.getBalances();
    expect(events).toEqual([expect.objectContaining({ status: 429, delayMs: 20, attempt: 1 })]); // 7 s capped at 20 ms
    events.length = 0;
    server.injectFaults({
      kind: 'status',
      status: 429,
      retryAfterSeconds: null,
      times: 2,
      route: 'GET /api/v3/brokerage/accounts',
    });
    await b.getBalances();
    expect(events.map((e) => e.status)).toEqual([429, 429]);
    expect(events.every((e) => e.delayMs <= 20)).toBe(true);
    server.injectFaults({ kind: 'status', status: 429, times: 10, retryAfterSeconds: 0 });
    await expect(b.getBalances()).rejects.toThrow(/HTTP 429 \(rate limited\) after 3 retries/);
    server.clearFaults();
    server.injectFaults({ kind: 'status', status: 429, times: 10, retryAfterSeconds: 0 });
    const md = new CoinbaseMarketData({
      key: es256.cdpKey,
      baseUrl: server.url,
      retry: { maxRetries: 1, baseDelayMs: 1, maxDelayMs: 5 },
    });
    await expect(
      md.getDailyBars({ symbols: ['BTC-USD'], from: '2025-01-01', to: '2025-01-05' }),
    ).rejects.toBeInstanceOf(RateLimitedError);
  });

  it('retries 5xx and dropped connections on reads; gives up with BrokerUnavailableError', async () => {
    const b = broker();
    server.injectFaults({ kind: 'status', status: 503 }, { kind: 'drop', when: 'before-handling' });
    expect((await b.getProduct('BTC-USD', true)).productId).toBe('BTC-USD');
    server.injectFaults({ kind: 'status', status: 500, times: 10 });
    const error = await b.getProduct('ETH-USD', true).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BrokerUnavailableError);
    expect((error as Error).message).toMatch(/HTTP 500 after 3 retries/);
  });

  it('never resends a submission: a 5xx on POST /orders is an unknown outcome, reported once', async () => {
    const b = broker();
    await b.getProduct('SOL-USD');
    const before = posts();
    server.injectFaults({ kind: 'status', status: 503, route: 'POST /api/v3/brokerage/orders' });
    const error = await b
      .submitOrder({
        clientOrderId: orderId('SOL-USD'),
        symbol: 'SOL-USD',
        side: 'buy',
        qty: 1,
        type: 'market',
        timeInForce: 'ioc',
      })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BrokerUnavailableError);
    expect((error as Error).message).toMatch(/resolve it by client order id/);
    expect(posts()).toBe(before + 1);
  });

  it('double and concurrent submissions of one client order id make one order', async () => {
    const b = broker();
    const request = {
      clientOrderId: orderId('BTC-USD'),
      symbol: 'BTC-USD',
      side: 'buy' as const,
      qty: 0.01,
      type: 'market' as const,
      timeInForce: 'ioc' as const,
    };
    const first = await b.submitOrder(request);
    const again = await b.submitOrder(request);
    expect(again.id).toBe(first.id);
    const concurrent = { ...request, clientOrderId: orderId('BTC-USD') };
    const results = await Promise.all(Array.from({ length: 6 }, () => broker().submitOrder(concurrent)));
    expect(new Set(results.map((o) => o.id)).size).toBe(1);
    expect(server.orders.filter((o) => o.client_order_id === concurrent.clientOrderId)).toHaveLength(1);
    expect(server.orders.filter((o) => o.client_order_id === request.clientOrderId)).toHaveLength(1);
  });

  const intentFor = (clientOrderId: string): IntentRecord => ({
    clientOrderId,
    date: '2026-01-01',
    strategy: 'ma-crossover',
    symbol: 'ETH-USD',
    purpose: 'entry',
    side: 'buy',
    qty: 0.5,
    type: 'market',
    timeInForce: 'ioc',
    referencePrice: 3000,
    status: 'submitted',
    filledQty: 0,
    configHash: 'x',
    gitCommit: 'x',
    createdAt: '2026-01-01T00:00:00Z',
    updatedAt: '2026-01-01T00:00:00Z',
  });
  const liveContext = (b: CoinbaseBroker, alerts: string[]) =>
    ({
      broker: b,
      notifier: { publish: async (m: { subject: string }) => void alerts.push(m.subject) },
    }) as unknown as LiveContext;

  it('a connection dropped after the order was accepted is resolved by client order id, not resent', async () => {
    const b = broker();
    await b.getProduct('ETH-USD');
    const id = orderId('ETH-USD');
    server.injectFaults({ kind: 'drop', when: 'after-handling', route: 'POST /api/v3/brokerage/orders' });
    const patches: Partial<IntentRecord>[] = [];
    const alerts: string[] = [];
    const before = posts();
    await sendClaimedIntent(liveContext(b, alerts), intentFor(id), async (p) => void patches.push(p));
    expect(posts()).toBe(before + 1);
    expect(patches).toEqual([expect.objectContaining({ status: 'filled', filledQty: 0.5 })]);
    expect(alerts).toEqual([]);
    expect(server.orders.filter((o) => o.client_order_id === id)).toHaveLength(1);
  });

  it('a timeout after submit stays unknown until the lookup finds the order; nothing is resent', async () => {
    const b = broker({ timeoutMs: 150 });
    await b.getProduct('ETH-USD');
    const id = orderId('ETH-USD');
    server.injectFaults({ kind: 'delay', ms: 600, route: 'POST /api/v3/brokerage/orders' });
    const patches: Partial<IntentRecord>[] = [];
    const alerts: string[] = [];
    const before = posts();
    await sendClaimedIntent(liveContext(b, alerts), intentFor(id), async (p) => void patches.push(p));
    expect(patches[0]?.status).toBe('unknown');
    expect(alerts).toEqual(['Order outcome unknown: ETH-USD']);
    // The server takes the late request; the next run asks by client order id and settles it.
    await expect
      .poll(() => server.orders.some((o) => o.client_order_id === id), { timeout: 10_000 })
      .toBe(true);
    const found = await b.getOrderByClientOrderId(id);
    expect(found).toMatchObject({ clientOrderId: id, status: 'filled' });
    expect(posts()).toBe(before + 1);
    expect(server.orders.filter((o) => o.client_order_id === id)).toHaveLength(1);
    expect(await b.getOrderByClientOrderId(orderId('ETH-USD'))).toBeNull();
  });

  it('a final 4xx is a rejection with the server message', async () => {
    const b = broker();
    server.injectFaults({ kind: 'status', status: 404, route: 'GET /api/v3/brokerage/products/:id' });
    await expect(b.getProduct('BTC-USD', true)).rejects.toBeInstanceOf(BrokerRejectedError);
  });
});

describe('market data: candles', () => {
  it('pages a long range in requests of at most 350 daily candles, matching the bundled bars', async () => {
    const md = new CoinbaseMarketData({ key: ed25519.cdpKey, baseUrl: server.url });
    const before = server.requestLog.filter((r) => r.path.endsWith('/candles')).length;
    const [btc] = await md.getDailyBars({ symbols: ['BTC-USD'], from: '2024-01-01', to: '2025-06-30' });
    const requests = server.requestLog.filter((r) => r.path.endsWith('/candles')).length - before;
    expect(requests).toBe(2); // 547 days: 350 + 197
    const file = loadBarsCsv('data/crypto/BTC-USD.csv');
    const from = file.time.indexOf(Date.UTC(2024, 0, 1));
    expect(btc?.time.length).toBe(547);
    expect(Array.from(btc?.close ?? [])).toEqual(Array.from(file.close.subarray(from, from + 547)));
    expect(Array.from(btc?.time ?? [])).toEqual(Array.from(file.time.subarray(from, from + 547)));
    expect(btc?.volume[0]).toBeCloseTo(file.volume[from] as number, 0); // coins × close = the USD volume
    const small = new CoinbaseMarketData({
      key: ed25519.cdpKey,
      baseUrl: server.url,
      candlesPerRequest: 100,
    });
    const [eth] = await small.getDailyBars({ symbols: ['ETH-USD'], from: '2025-01-01', to: '2025-12-31' });
    expect(eth?.time.length).toBe(365);
    expect(
      () => new CoinbaseMarketData({ key: ed25519.cdpKey, baseUrl: server.url, candlesPerRequest: 351 }),
    ).toThrow(/1\.\.350/);
  });

  it('the server refuses more than 350 candles and other granularities (a final 4xx)', async () => {
    const key = loadSigningKey(es256.cdpKey);
    const host = new URL(server.url).host;
    const path = '/api/v3/brokerage/products/BTC-USD/candles';
    const get = async (query: string) => {
      const now = Math.floor(Date.now() / 1000);
      const jwt = await new SignJWT({
        iss: 'cdp',
        sub: key.name,
        nbf: now,
        exp: now + 120,
        uri: `GET ${host}${path}`,
      })
        .setProtectedHeader({ alg: 'ES256', kid: key.name, nonce: randomBytes(16).toString('hex') })
        .sign(key.key);
      return fetch(`${server.url}${path}?${query}`, { headers: { Authorization: `Bearer ${jwt}` } });
    };
    const start = Date.UTC(2025, 0, 1) / 1000;
    expect((await get(`start=${start}&end=${start + 351 * 86_400}&granularity=ONE_DAY`)).status).toBe(400);
    expect((await get(`start=${start}&end=${start + 350 * 86_400}&granularity=ONE_DAY`)).status).toBe(200);
    expect((await get(`start=${start}&end=${start + 86_400}&granularity=ONE_HOUR`)).status).toBe(400);
    server.injectFaults({ kind: 'status', status: 403, route: '/api/v3/brokerage/products/:id/candles' });
    const md = new CoinbaseMarketData({ key: es256.cdpKey, baseUrl: server.url });
    await expect(
      md.getDailyBars({ symbols: ['BTC-USD'], from: '2025-01-01', to: '2025-01-02' }),
    ).rejects.toBeInstanceOf(MarketDataError);
  });
});

describe('funding rates of the perpetual-style futures', () => {
  it('reads BTC and ETH funding and flags |rate| over the threshold and a sign flip', async () => {
    const b = broker();
    const first = await b.getFundingRates();
    expect(first).toEqual([
      { productId: 'BIP-20DEC30-CDE', underlying: 'BTC', rate: 0.00001, time: '2026-01-12T15:00:00.000Z' },
      { productId: 'ETP-20DEC30-CDE', underlying: 'ETH', rate: -0.00002, time: '2026-01-12T15:00:00.000Z' },
    ]);
    server.setFunding('BIP-20DEC30-CDE', -0.0005, '2026-01-12T16:00:00Z');
    const second = await b.getFundingRates(['BTC']);
    const alerts = fundingAlerts(first[0], second[0] as (typeof second)[number], 0.0001);
    expect(alerts.map((a) => a.kind)).toEqual(['threshold', 'sign-flip']);
    expect(alerts[1]?.message).toMatch(/BIP-20DEC30-CDE funding flipped sign: 0\.0010% .* → -0\.0500%/);
    expect(fundingAlerts(first[1], first[1] as (typeof first)[number], 0.0001)).toEqual([]);
  });
});
