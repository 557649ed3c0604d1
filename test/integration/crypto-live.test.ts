/**
 * The crypto bot's runtime against the local Coinbase server over HTTP and local DynamoDB
 * (dynalite): the context the handlers build (Coinbase, the 24/7 UTC calendar, the dry run), the
 * market-open check on a weekend, the asset-class refusals of both bots, the funding-rate monitor
 * (records, threshold and sign-flip alerts, a period read twice, missing underlyings, the handler
 * through its middy chain) and the dry run of execute-orders (recorded with the best bid/ask, no
 * order sent) after the real generate-signals step.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateTableCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AlpacaBroker } from '../../shared/adapters/alpaca/broker.js';
import { AlpacaMarketData } from '../../shared/adapters/alpaca/market-data.js';
import { CoinbaseBroker } from '../../shared/adapters/coinbase/broker.js';
import { createStateTable, DynamoStateStore } from '../../shared/adapters/dynamodb/state-store.js';
import { startLocalAlpaca } from '../../shared/adapters/local/alpaca-server.js';
import {
  DEFAULT_PRODUCTS,
  generateTestCdpKey,
  type LocalCoinbase,
  startLocalCoinbase,
} from '../../shared/adapters/local/coinbase-server.js';
import { type LocalDynamo, startLocalDynamo } from '../../shared/adapters/local/dynamodb.js';
import { localLambdaContext } from '../../shared/adapters/local/lambda-context.js';
import { ListNotifier } from '../../shared/adapters/local/list-notifier.js';
import { configProducts } from '../../shared/core/config/schema.js';
import {
  ConfigError,
  CryptoSymbolRefusedError,
  EquitySymbolRefusedError,
  ProductLimitsMismatchError,
  VirtualOrderRefusedError,
} from '../../shared/core/errors.js';
import { stopLimitPrice } from '../../shared/core/live/order-style.js';
import type { IntentRecord } from '../../shared/core/ports/state-store.js';
import type { LiveContext } from '../../shared/live/context.js';
import { DryRunBroker } from '../../shared/live/dry-run.js';
import { endOfDay } from '../../shared/live/end-of-day.js';
import { executeOrders } from '../../shared/live/execute-orders.js';
import { fundingMonitor } from '../../shared/live/funding-monitor.js';
import { generateSignals } from '../../shared/live/generate-signals.js';
import { killSwitch } from '../../shared/live/kill-switch.js';
import { marketOpenCheck } from '../../shared/live/market-open-check.js';
import { riskCheck } from '../../shared/live/risk-check.js';
import { legId } from '../../shared/live/sleeves.js';
import {
  buildCryptoLiveContext,
  cryptoFundingHandler,
  parseCryptoLiveEnv,
} from '../../shared/runtime/crypto-live.js';
import { CRYPTO_METRICS } from '../../shared/runtime/crypto-metrics.js';
import { buildLiveContext } from '../../shared/runtime/equity-live.js';
import { parseLiveEnv } from '../../shared/runtime/live.js';
import { stepMetrics } from '../../shared/runtime/live-metrics.js';

const key = generateTestCdpKey('EdDSA');
const BTC_PERP = 'BIP-20DEC30-CDE';
const ETH_PERP = 'ETP-20DEC30-CDE';
let clock = Date.parse('2026-01-05T00:05:00Z');
let server: LocalCoinbase;
let dynamo: LocalDynamo;
let dir: string;
let env: Record<string, string>;

const stateTable = 'quantshift-crypto-test-state';

/** The crypto context as the handlers build it, with a notifier and a log the test reads. */
async function cryptoContext(overrides: Record<string, string> = {}) {
  const notifier = new ListNotifier();
  const logs: string[] = [];
  const built = await buildCryptoLiveContext(parseCryptoLiveEnv({ ...env, ...overrides }));
  const ctx: LiveContext = {
    ...built,
    notifier,
    log: {
      info: (m, f) => logs.push(`INFO ${m} ${JSON.stringify(f ?? {})}`),
      warn: (m, f) => logs.push(`WARN ${m} ${JSON.stringify(f ?? {})}`),
      error: (m, f) => logs.push(`ERROR ${m} ${JSON.stringify(f ?? {})}`),
    },
  };
  return { ctx, notifier, logs };
}

const posts = () => server.requestLog.filter((r) => r.method === 'POST').length;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'qs-crypto-live-'));
  server = await startLocalCoinbase({
    dataDir: 'data/crypto',
    keys: [{ name: key.cdpKey.name, publicKey: key.publicKey }],
    balances: { USD: 100_000 },
    now: () => clock,
    futures: [
      { productId: BTC_PERP, underlying: 'BTC', rate: 0.00001, time: '2026-01-05T00:00:00Z' },
      { productId: ETH_PERP, underlying: 'ETH', rate: 0.0003, time: '2026-01-05T00:00:00Z' },
    ],
  });
  dynamo = await startLocalDynamo();
  await createStateTable(dynamo.client, stateTable);
  await dynamo.client.send(
    new CreateTableCommand({
      TableName: 'quantshift-crypto-test-idempotency',
      KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
      AttributeDefinitions: [{ AttributeName: 'id', AttributeType: 'S' }],
      BillingMode: 'PAY_PER_REQUEST',
    }),
  );
  env = {
    STAGE: 'paper',
    STATE_TABLE: stateTable,
    IDEMPOTENCY_TABLE: 'quantshift-crypto-test-idempotency',
    QUANTSHIFT_CONFIG: 'config/crypto-strategy.yaml',
    COINBASE_KEY_NAME: key.cdpKey.name,
    COINBASE_PRIVATE_KEY: key.cdpKey.privateKey,
    COINBASE_BASE_URL: server.url,
    DYNAMODB_ENDPOINT: dynamo.endpoint,
  };
  // The AWS SDK clients read their region and credentials from the process environment, as in Lambda.
  Object.assign(process.env, {
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'local',
    AWS_SECRET_ACCESS_KEY: 'local',
    POWERTOOLS_TRACE_DISABLED: 'true',
    POWERTOOLS_METRICS_NAMESPACE: 'QuantShift',
  });
});

afterAll(async () => {
  await server?.close();
  await dynamo?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('the crypto runtime', () => {
  it('builds the crypto context: Coinbase behind the dry-run broker, the 24/7 UTC calendar, the dry run on', async () => {
    // Its own table: the virtual order below must not be held by the other tests' account.
    await createStateTable(dynamo.client, 'quantshift-crypto-test-context');
    const { ctx } = await cryptoContext({ STATE_TABLE: 'quantshift-crypto-test-context' });
    expect(ctx.config.assetClass).toBe('crypto');
    expect(ctx.calendar?.timeZone).toBe('UTC');
    expect(ctx.crypto?.dryRun).toBe(true);
    expect(ctx.broker).toBeInstanceOf(DryRunBroker);
    // Reads reach the exchange; an order never does: it fills in the virtual account.
    expect((await ctx.broker.getAccount()).cash).toBe(100_000);
    const before = posts();
    const order = await ctx.broker.submitOrder({
      clientOrderId: 'qs-test-BTC-USD-20260105-entry',
      symbol: 'BTC-USD',
      side: 'buy',
      qty: 0.01,
      type: 'market',
      timeInForce: 'ioc',
    });
    expect(order).toMatchObject({
      id: 'dryrun-qs-test-BTC-USD-20260105-entry',
      status: 'filled',
      filledQty: 0.01,
    });
    await expect(ctx.broker.cancelOrder('any')).rejects.toBeInstanceOf(VirtualOrderRefusedError);
    expect(posts()).toBe(before);
    expect(server.orders).toEqual([]);
  });

  it('refuses DRY_RUN=false on the paper stage (Coinbase has no paper trading)', () => {
    expect(() => parseCryptoLiveEnv({ ...env, DRY_RUN: 'false' })).toThrow(ConfigError);
    expect(() => parseCryptoLiveEnv({ ...env, DRY_RUN: 'false' })).toThrow(/DRY_RUN/);
    expect(parseCryptoLiveEnv({ ...env, STAGE: 'live', DRY_RUN: 'false' }).DRY_RUN).toBe(false);
  });

  it('the market-open check says open on every UTC day, weekends included, 00:00 to 24:00 UTC', async () => {
    const { ctx } = await cryptoContext();
    // Saturday and Sunday 00:05 UTC: the New York date would still be Friday and Saturday.
    for (const [time, day] of [
      ['2026-01-03T00:05:00Z', '2026-01-03'],
      ['2026-01-04T00:05:00Z', '2026-01-04'],
      ['2026-01-05T00:05:00Z', '2026-01-05'],
    ] as const) {
      const session = await marketOpenCheck(ctx, time);
      expect(session).toEqual({
        date: day,
        isOpen: true,
        openAt: `${day}T00:00:00.000Z`,
        closeAt: new Date(Date.parse(`${day}T00:00:00Z`) + 86_400_000).toISOString(),
        earlyClose: false,
        checkedAt: time,
      });
      expect(await ctx.store.getSession(day)).toEqual(session);
    }
  });
});

describe('the best bid/ask read (GET /best_bid_ask)', () => {
  it('reads the top of each book in the order asked, on the quote increment, around the price', async () => {
    const { ctx } = await cryptoContext();
    server.setPrice('BTC-USD', 90_000);
    server.setPrice('SOL-USD', 140);
    const [sol, btc] = (await ctx.crypto?.quotes.getBestBidAsk(['SOL-USD', 'btc-usd'])) ?? [];
    expect(sol).toMatchObject({ symbol: 'SOL-USD', bid: 139.98, ask: 140.02 });
    expect(btc).toMatchObject({ symbol: 'BTC-USD', bid: 89_991, ask: 90_009 });
    expect(btc?.time).toBe(new Date(clock).toISOString());
  });

  it('refuses an equity ticker before any request, and names an unknown product', async () => {
    const { ctx } = await cryptoContext();
    const requests = server.requestLog.length;
    await expect(ctx.crypto?.quotes.getBestBidAsk(['SPY'])).rejects.toBeInstanceOf(EquitySymbolRefusedError);
    expect(server.requestLog.length).toBe(requests);
    await expect(ctx.crypto?.quotes.getBestBidAsk(['DOGE-USD'])).rejects.toThrow(/DOGE-USD/);
  });
});

describe('each bot refuses the other asset class with one named error', () => {
  it('the crypto bot refuses SPY (EquitySymbolRefusedError), before any adapter is built', async () => {
    const error = await buildCryptoLiveContext(
      parseCryptoLiveEnv({ ...env, QUANTSHIFT_CONFIG: 'config/equity-strategy.yaml' }),
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EquitySymbolRefusedError);
    expect((error as EquitySymbolRefusedError).symbol).toBe('SPY');
    expect((error as Error).message).toMatch(
      /config\/equity-strategy\.yaml: watchlist\.0 \(the crypto bot\)/,
    );
  });

  it('the Alpaca adapters refuse a crypto symbol (CryptoSymbolRefusedError) before any request', async () => {
    const alpaca = await startLocalAlpaca({
      dataDir: 'data',
      keyId: 'local-paper-key',
      secret: 'local-paper-secret',
      paper: { startTime: '2025-06-02T13:00:00Z', initialCash: 100_000 },
    });
    try {
      const options = { keyId: 'local-paper-key', secret: 'local-paper-secret', baseUrl: alpaca.url };
      const order = {
        clientOrderId: 'qs-test-BTC-USD-20250602-entry',
        symbol: 'BTC-USD',
        side: 'buy' as const,
        qty: 1,
        type: 'market' as const,
        timeInForce: 'opg' as const,
      };
      await expect(
        new AlpacaBroker({ ...options, rateLimit: false }).submitOrder(order),
      ).rejects.toBeInstanceOf(CryptoSymbolRefusedError);
      await expect(
        new AlpacaBroker({ ...options, rateLimit: false }).submitOrder({ ...order, symbol: 'BTC/USD' }),
      ).rejects.toBeInstanceOf(CryptoSymbolRefusedError);
      await expect(
        new AlpacaMarketData(options).getDailyBars({
          symbols: ['SPY', 'ETH-USD'],
          from: '2025-05-01',
          to: '2025-05-30',
        }),
      ).rejects.toBeInstanceOf(CryptoSymbolRefusedError);
      expect(alpaca.requestLog).toEqual([]);
    } finally {
      await alpaca.close();
    }
  });

  it('the equity bot refuses BTC-USD (CryptoSymbolRefusedError), before any adapter is built', async () => {
    const equityEnv = parseLiveEnv({
      STAGE: 'paper',
      STATE_TABLE: stateTable,
      IDEMPOTENCY_TABLE: 'quantshift-crypto-test-idempotency',
      QUANTSHIFT_CONFIG: 'config/crypto-strategy.yaml',
      ALPACA_KEY_ID: 'local-paper-key',
      ALPACA_SECRET_KEY: 'local-paper-secret',
      DYNAMODB_ENDPOINT: dynamo.endpoint,
    });
    const error = await buildLiveContext(equityEnv).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CryptoSymbolRefusedError);
    expect((error as CryptoSymbolRefusedError).symbol).toBe('BTC-USD');
    expect((error as Error).message).toMatch(/watchlist\.0 \(the equity bot\)/);
  });
});

describe('funding-rate monitoring', () => {
  it('records each new period, alerts above the threshold, and does not record or alert a period twice', async () => {
    const { ctx, notifier } = await cryptoContext();
    const first = await fundingMonitor(ctx, '2026-01-05T00:05:00Z');
    expect(first.threshold).toBe(0.0001);
    expect(first.missing).toEqual([]);
    expect(first.readings.map((r) => [r.productId, r.rate, r.status, r.alerts.map((a) => a.kind)])).toEqual([
      [BTC_PERP, 0.00001, 'recorded', []],
      [ETH_PERP, 0.0003, 'recorded', ['threshold']],
    ]);
    expect(notifier.sent.map((n) => n.subject)).toEqual([`Funding rate alert: ${ETH_PERP}`]);
    expect(await ctx.crypto?.records.getLatestFundingReading(ETH_PERP)).toEqual({
      productId: ETH_PERP,
      underlying: 'ETH',
      rate: 0.0003,
      time: '2026-01-05T00:00:00.000Z',
      recordedAt: '2026-01-05T00:05:00Z',
    });

    // The same period again (a retried run): seen, neither recorded nor alerted again.
    const again = await fundingMonitor(ctx, '2026-01-05T00:35:00Z');
    expect(again.readings.map((r) => r.status)).toEqual(['seen', 'seen']);
    expect(notifier.sent).toHaveLength(1);
  });

  it('alerts a sign flip against the previous recorded period, and keeps the history in order', async () => {
    const { ctx, notifier } = await cryptoContext();
    server.setFunding(BTC_PERP, -0.00002, '2026-01-05T01:00:00Z');
    server.setFunding(ETH_PERP, 0.00005, '2026-01-05T01:00:00Z');
    const result = await fundingMonitor(ctx, '2026-01-05T01:05:00Z');
    expect(result.readings.map((r) => [r.productId, r.alerts.map((a) => a.kind)])).toEqual([
      [BTC_PERP, ['sign-flip']],
      [ETH_PERP, []],
    ]);
    expect(notifier.sent).toHaveLength(1);
    expect(notifier.sent[0]?.text).toMatch(/flipped sign/);
    const history = await ctx.crypto?.records.listFundingReadings(
      BTC_PERP,
      '2026-01-05T00:00:00Z',
      '2026-01-05T23:59:59Z',
    );
    expect(history?.map((r) => [r.time, r.rate])).toEqual([
      ['2026-01-05T00:00:00.000Z', 0.00001],
      ['2026-01-05T01:00:00.000Z', -0.00002],
    ]);
  });

  it('names a configured underlying with no perpetual listed, and alerts it', async () => {
    const configPath = join(dir, 'with-sol.yaml');
    writeFileSync(
      configPath,
      readFileSync('config/crypto-strategy.yaml', 'utf8').replace(
        'underlyings: [BTC, ETH]',
        'underlyings: [BTC, ETH, SOL]',
      ),
    );
    const { ctx, notifier } = await cryptoContext({ QUANTSHIFT_CONFIG: configPath });
    const result = await fundingMonitor(ctx, '2026-01-05T01:35:00Z');
    expect(result.missing).toEqual(['SOL']);
    expect(notifier.sent.map((n) => n.subject)).toEqual(['Funding rates missing: SOL']);
  });

  it('runs as the hourly handler (middy chain, idempotent on step and scheduled time) with its metrics', async () => {
    server.setFunding(BTC_PERP, 0.0002, '2026-01-05T02:00:00Z');
    Object.assign(process.env, env);
    const handler = cryptoFundingHandler();
    const event = { step: 'funding-rates', scheduledTime: '2026-01-05T02:05:00Z' };
    const result = await handler(event, localLambdaContext('crypto-funding-rates', 'req-1'));
    const btc = result.readings.find((r) => r.productId === BTC_PERP);
    expect(btc).toMatchObject({ status: 'recorded', rate: 0.0002 });
    // Above the threshold, and positive after the previous period's negative rate.
    expect(btc?.alerts.map((a) => a.kind)).toEqual(['threshold', 'sign-flip']);
    // The same scheduled run again returns the first result (the idempotency record), reading nothing.
    const requests = server.requestLog.length;
    expect(await handler(event, localLambdaContext('crypto-funding-rates', 'req-2'))).toEqual(result);
    expect(server.requestLog.length).toBe(requests);
    await expect(handler({ ...event, step: 'risk-check' }, localLambdaContext('x', 'req-3'))).rejects.toThrow(
      ConfigError,
    );
    const store = new DynamoStateStore(dynamo.client, stateTable);
    expect((await store.getLatestFundingReading(BTC_PERP))?.rate).toBe(0.0002);
  });
});

describe('the dry run (the paper stage)', () => {
  it('generate-signals decides on the UTC day; execute-orders records every intent with the best bid/ask and sends nothing', async () => {
    // 2026-01-05: the crypto backtest enters ETH-USD at this day's open (signal at the 2026-01-04 close).
    clock = Date.parse('2026-01-05T00:10:00Z');
    const { ctx, notifier } = await cryptoContext();
    await marketOpenCheck(ctx, '2026-01-05T00:05:00Z');
    const signals = await generateSignals(ctx, '2026-01-05T00:10:00Z');
    expect(signals.day).toBe('2026-01-05');
    expect(signals.status).toBe('decided');
    const entries = signals.intents.filter((i) => i.purpose === 'entry');
    expect(entries.map((i) => i.symbol)).toContain('ETH-USD');

    clock = Date.parse('2026-01-05T00:15:00Z');
    const before = posts();
    const result = await executeOrders(ctx, '2026-01-05T00:15:00Z');
    expect(posts()).toBe(before);
    expect(server.orders).toEqual([]);
    const dryRun = (result as typeof result & { dryRun: unknown[] }).dryRun as {
      clientOrderId: string;
      bid: number;
      ask: number;
      wouldPay: number;
      side: string;
    }[];
    // The shipped config is a sleeves config: the signals are the sleeves' legs, netted per product
    // into one order each (as live); the dry run records and fills the net orders, never a leg.
    expect(signals.intents.every((i) => i.leg === true)).toBe(true);
    const all = await ctx.store.listIntents('2026-01-05');
    const nets = all.filter((i) => i.leg !== true);
    expect(nets.map((n) => n.symbol).sort()).toEqual(
      [...new Set(signals.intents.map((i) => i.symbol))].sort(),
    );
    for (const leg of all.filter((i) => i.leg === true)) {
      const net = nets.find((n) => n.clientOrderId === leg.netOrderId);
      expect(net?.legIds).toContain(leg.clientOrderId);
    }
    expect(dryRun.map((r) => r.clientOrderId).sort()).toEqual(
      nets
        .filter((n) => n.status !== 'skipped')
        .map((n) => n.clientOrderId)
        .sort(),
    );
    for (const record of dryRun) {
      expect(record.ask).toBeGreaterThan(record.bid);
      expect(record.wouldPay).toBe(record.side === 'buy' ? record.ask : record.bid);
    }
    const stored = await ctx.crypto?.records.listDryRuns('2026-01-05');
    expect(stored?.map((r) => r.clientOrderId).sort()).toEqual(dryRun.map((r) => r.clientOrderId).sort());
    const intents = (await ctx.store.listIntents('2026-01-05')).filter(
      (i) => i.leg !== true && i.status !== 'skipped',
    );
    expect(intents.length).toBeGreaterThan(0);
    for (const intent of intents) {
      // Filled virtually (the dry run's order id), never sent.
      expect(intent.status).toBe('filled');
      expect(intent.brokerOrderId).toBe(`dryrun-${intent.clientOrderId}`);
    }
    expect(notifier.sent.map((n) => n.subject)).toEqual([
      `Crypto dry run on 2026-01-05: ${dryRun.length} intent(s) recorded, filled virtually, no order sent`,
    ]);
    expect(notifier.sent[0]?.text).toMatch(/ETH-USD \(entry\): bid [\d.]+ \/ ask [\d.]+/);
    expect(stepMetrics('execute-orders', result)).toContainEqual({
      name: CRYPTO_METRICS.dryRunIntents,
      unit: 'Count',
      value: dryRun.length,
    });

    // A second run of the same day finds nothing recorded: nothing recorded or reported twice.
    const again = await executeOrders(ctx, '2026-01-05T00:20:00Z');
    expect((again as typeof again & { dryRun: unknown[] }).dryRun).toEqual([]);
    expect(notifier.sent).toHaveLength(1);
  });

  it("sees the account's coins as crypto positions; the dry run holds only its virtual ones, from the account's equity in cash", async () => {
    const holder = await startLocalCoinbase({
      dataDir: 'data/crypto',
      keys: [{ name: key.cdpKey.name, publicKey: key.publicKey }],
      balances: { USD: 50_000, BTC: 0.25 },
      now: () => clock,
    });
    try {
      const day = '2026-01-08';
      clock = Date.parse(`${day}T00:10:00Z`);
      // Its own table: this account's state must not leak into the other tests'.
      await createStateTable(dynamo.client, 'quantshift-crypto-test-holder');
      const { ctx } = await cryptoContext({
        COINBASE_BASE_URL: holder.url,
        STATE_TABLE: 'quantshift-crypto-test-holder',
      });
      const exchange = new CoinbaseBroker({ key: key.cdpKey, baseUrl: holder.url });
      expect(await exchange.getPositions()).toMatchObject([
        { symbol: 'BTC-USD', qty: 0.25, assetClass: 'crypto' },
      ]);
      const equity = (await exchange.getAccount()).equity;
      // The dry run's account: the exchange account's equity, in cash; no coin until it buys one.
      expect(await ctx.broker.getPositions()).toEqual([]);
      expect((await ctx.broker.getAccount()).cash).toBeCloseTo(equity, 2);
      await marketOpenCheck(ctx, `${day}T00:05:00Z`);
      const signals = await generateSignals(ctx, `${day}T00:10:00Z`);
      expect(signals.outsideWatchlist).toEqual([]);
    } finally {
      await holder.close();
    }
  });

  it('applies the kill switch and the hard limits as the live path does, without sending', async () => {
    const { ctx } = await cryptoContext();
    const day = '2026-01-06';
    clock = Date.parse(`${day}T00:15:00Z`);
    await marketOpenCheck(ctx, `${day}T00:05:00Z`);
    const intent = (symbol: string, qty: number, purpose: IntentRecord['purpose']): IntentRecord => ({
      clientOrderId: `qs-test-${symbol}-20260106-${purpose}`,
      date: day,
      strategy: ctx.config.name,
      symbol,
      purpose,
      side: purpose === 'entry' ? 'buy' : 'sell',
      qty,
      type: 'market',
      timeInForce: 'ioc',
      referencePrice: symbol === 'BTC-USD' ? 93_000 : 140,
      status: 'recorded',
      filledQty: 0,
      configHash: ctx.configHash,
      gitCommit: ctx.gitCommit,
      createdAt: `${day}T00:10:00Z`,
      updatedAt: `${day}T00:10:00Z`,
    });
    // Above the config's 25 000 $ per order: a hard limit refuses it, as it would live.
    await ctx.store.createIntent(intent('BTC-USD', 1, 'entry'));
    await ctx.store.createIntent(intent('SOL-USD', 10, 'entry'));
    const result = await executeOrders(ctx, `${day}T00:15:00Z`);
    const byId = new Map(result.intents.map((i) => [i.clientOrderId, i]));
    expect(byId.get('qs-test-BTC-USD-20260106-entry')).toMatchObject({ status: 'rejected' });
    expect(byId.get('qs-test-BTC-USD-20260106-entry')?.reason).toMatch(/^hard limit: /);
    expect(byId.get('qs-test-SOL-USD-20260106-entry')).toMatchObject({ status: 'filled' });
    expect((await ctx.crypto?.records.listDryRuns(day))?.map((r) => r.symbol)).toEqual(['SOL-USD']);
    expect(server.orders).toEqual([]);
  });
});

describe('live crypto order types (a local rehearsal: the orders reach the local Coinbase server)', () => {
  /**
   * A context that sends (paper stage, LOCAL_REHEARSAL against the loopback server: the suite's, or
   * `exchange` when given), on its own table.
   */
  const sending = async (table: string, exchange?: LocalCoinbase) => {
    await createStateTable(dynamo.client, table);
    return cryptoContext({
      DRY_RUN: 'false',
      LOCAL_REHEARSAL: 'true',
      STATE_TABLE: table,
      ...(exchange === undefined ? {} : { COINBASE_BASE_URL: exchange.url }),
    });
  };
  /** A local exchange of its own (an account of 100,000 USD, the suite's clock), `options` over that. */
  const freshExchange = (options: Partial<Parameters<typeof startLocalCoinbase>[0]> = {}) =>
    startLocalCoinbase({
      dataDir: 'data/crypto',
      keys: [{ name: key.cdpKey.name, publicKey: key.publicKey }],
      balances: { USD: 100_000 },
      now: () => clock,
      ...options,
    });
  /**
   * The UTC day's first steps: the open check (00:05) and the signals (00:10), execute-orders at
   * 00:15 (the entries filled), the risk check at 00:30 (the stops placed); the clock moved along. The
   * risk check's result.
   */
  const entriesAndStops = async (ctx: LiveContext, day: string) => {
    clock = Date.parse(`${day}T00:10:00Z`);
    await marketOpenCheck(ctx, `${day}T00:05:00Z`);
    await generateSignals(ctx, `${day}T00:10:00Z`);
    clock = Date.parse(`${day}T00:15:00Z`);
    await executeOrders(ctx, `${day}T00:15:00Z`);
    clock = Date.parse(`${day}T00:30:00Z`);
    return riskCheck(ctx, `${day}T00:30:00Z`);
  };

  it('refuses LOCAL_REHEARSAL against anything but a loopback address', () => {
    expect(parseCryptoLiveEnv({ ...env, DRY_RUN: 'false', LOCAL_REHEARSAL: 'true' }).DRY_RUN).toBe(false);
    expect(() =>
      parseCryptoLiveEnv({
        ...env,
        DRY_RUN: 'false',
        LOCAL_REHEARSAL: 'true',
        COINBASE_BASE_URL: 'https://example.invalid',
      }),
    ).toThrow(/LOCAL_REHEARSAL.*loopback/);
  });

  it('sends the entries as market IOC right after the UTC close, then each protective stop as a stop-limit GTC', async () => {
    const { ctx } = await sending('quantshift-crypto-test-live');
    expect(ctx.crypto?.dryRun).toBe(false);
    expect(ctx.broker).not.toBeInstanceOf(DryRunBroker);
    const day = '2026-01-05';
    clock = Date.parse(`${day}T00:10:00Z`);
    await marketOpenCheck(ctx, `${day}T00:05:00Z`);
    const signals = await generateSignals(ctx, `${day}T00:10:00Z`);
    const entries = signals.intents.filter((i) => i.purpose === 'entry');
    expect(entries.map((i) => i.symbol)).toContain('ETH-USD');
    for (const entry of entries) expect(entry).toMatchObject({ type: 'market', timeInForce: 'ioc' });

    clock = Date.parse(`${day}T00:15:00Z`);
    await executeOrders(ctx, `${day}T00:15:00Z`);
    // The sleeves' legs are netted per product into one order each, sent as market IOC and filled.
    const net = (await ctx.store.listIntents(day)).filter((i) => i.leg !== true && i.status !== 'skipped');
    expect(net.map((i) => i.symbol).sort()).toEqual([...new Set(entries.map((e) => e.symbol))].sort());
    for (const intent of net) {
      expect(intent).toMatchObject({ type: 'market', timeInForce: 'ioc', status: 'filled' });
      const order = server.orders.find((o) => o.client_order_id === intent.clientOrderId);
      expect(Object.keys(order?.order_configuration ?? {})).toEqual(['market_market_ioc']);
      expect(order?.status).toBe('FILLED');
    }

    clock = Date.parse(`${day}T00:30:00Z`);
    const risk = await riskCheck(ctx, `${day}T00:30:00Z`);
    expect(risk.stopsPlaced.length).toBeGreaterThanOrEqual(net.length);
    const stops = server.orders.filter((o) => risk.stopsPlaced.includes(o.client_order_id));
    expect(stops).toHaveLength(risk.stopsPlaced.length);
    for (const stop of stops) {
      const config = stop.order_configuration.stop_limit_stop_limit_gtc as Record<string, string>;
      expect(Object.keys(stop.order_configuration)).toEqual(['stop_limit_stop_limit_gtc']);
      expect(stop.side).toBe('SELL');
      expect(config.stop_direction).toBe('STOP_DIRECTION_STOP_DOWN');
      expect(Number(config.limit_price)).toBe(stopLimitPrice(Number(config.stop_price), 'sell', 0.02));
      const entry = entries.find((e) => e.symbol === stop.product_id) as IntentRecord;
      expect(Number(config.stop_price)).toBeLessThan(entry.referencePrice);
    }
    expect([...new Set(stops.map((s) => s.product_id))].sort()).toEqual(net.map((i) => i.symbol).sort());
  });

  it("a second execute-orders the same UTC day takes that morning's IOC fills as the sleeves', not as a difference", async () => {
    // Its own account and table. The positions list of the day is written by the signals at 00:10,
    // before the IOC fills at 00:15; a rerun at 00:45 (a retry, a late delivery) reconciles again.
    const fresh = await freshExchange();
    try {
      const { ctx, notifier } = await sending('quantshift-crypto-test-rerun', fresh);
      const day = '2026-01-05';
      clock = Date.parse(`${day}T00:10:00Z`);
      await marketOpenCheck(ctx, `${day}T00:05:00Z`);
      await generateSignals(ctx, `${day}T00:10:00Z`);
      const listed = await ctx.store.getLatestPositions();
      expect(listed?.date).toBe(day);
      expect(listed?.writtenAt).toBe(`${day}T00:00:00.000Z`);
      clock = Date.parse(`${day}T00:15:00Z`);
      const first = await executeOrders(ctx, `${day}T00:15:00Z`);
      expect(first.reconciliation?.mismatches).toBe(0);
      const filled = (await ctx.store.listIntents(day)).filter(
        (i) => i.leg !== true && i.status === 'filled',
      );
      expect(filled.length).toBeGreaterThan(0);
      expect(fresh.requestLog.filter((r) => r.method === 'POST').length).toBe(filled.length);

      clock = Date.parse(`${day}T00:45:00Z`);
      const again = await executeOrders(ctx, `${day}T00:45:00Z`);
      expect(again.status).toBe('executed');
      expect(again.reconciliation?.mismatches).toBe(0);
      expect(again.reconciliation?.blocked).toEqual([]);
      for (const line of again.reconciliation?.symbols ?? []) {
        expect(line.unassignedAfter, line.symbol).toBe(0);
        expect(line.sleevesQty, line.symbol).toBe(line.brokerQty);
      }
      expect(notifier.sent.map((n) => n.subject).filter((s) => /Reconciliation|UNASSIGNED/.test(s))).toEqual(
        [],
      );
      const positions = (await ctx.store.getLatestPositions())?.positions ?? [];
      expect(positions.filter((p) => p.sleeve === 'UNASSIGNED')).toEqual([]);
      // Nothing sent again.
      expect(fresh.requestLog.filter((r) => r.method === 'POST').length).toBe(filled.length);
    } finally {
      await fresh.close();
    }
  });

  /**
   * A fresh exchange and table: the first UTC day's entries and stops, its end-of-day; the next
   * day's 00:06 kill switch with flatten, its flattens refused by the exchange (400).
   */
  async function flattenRefusedNextDay(table: string) {
    const fresh = await freshExchange();
    const { ctx } = await sending(table, fresh);
    const d1 = '2026-01-05';
    const d2 = '2026-01-06';
    await entriesAndStops(ctx, d1);
    clock = Date.parse(`${d1}T23:50:00Z`);
    await endOfDay(ctx, `${d1}T23:50:00Z`);

    // The next UTC day, 00:06: the kill switch's flattens are refused by the exchange.
    clock = Date.parse(`${d2}T00:05:00Z`);
    await marketOpenCheck(ctx, `${d2}T00:05:00Z`);
    clock = Date.parse(`${d2}T00:06:00Z`);
    fresh.injectFaults({ kind: 'status', status: 400, route: 'POST /api/v3/brokerage/orders' });
    const halted = await killSwitch(ctx, {
      reason: 'daily loss alarm',
      by: 'ops',
      time: `${d2}T00:06:00Z`,
      flatten: true,
    });
    fresh.clearFaults();
    const refused = (await ctx.store.listIntents(d2)).filter((i) =>
      halted.exitsUnfilled.includes(i.clientOrderId),
    );
    expect(refused.length).toBeGreaterThan(0);
    const first = refused[0] as IntentRecord;
    expect(first).toMatchObject({ status: 'rejected', filledQty: 0 });
    return { fresh, ctx, d2, first };
  }

  /** A sleeve's exit leg of `qty` as generate-signals records it at `time`. */
  function exitLegOf(ctx: LiveContext, of: IntentRecord, qty: number, time: string): IntentRecord {
    return {
      clientOrderId: legId(of.sleeve as string, of.symbol, of.date, 'exit'),
      leg: true,
      sleeve: of.sleeve as string,
      date: of.date,
      strategy: of.sleeve as string,
      symbol: of.symbol,
      purpose: 'exit',
      side: 'sell',
      qty,
      type: 'market',
      timeInForce: 'ioc',
      referencePrice: of.referencePrice,
      status: 'recorded',
      filledQty: 0,
      configHash: ctx.configHash,
      gitCommit: ctx.gitCommit,
      createdAt: time,
      updatedAt: time,
    };
  }

  it("the kill switch's flatten refused, a sleeve's exit leg recorded and not netted by the 00:30 risk check: the re-send leaves the leg its coins, the late netting sells them once", async () => {
    const { fresh, ctx, d2, first } = await flattenRefusedNextDay('quantshift-crypto-test-resend');
    try {
      // 00:10 the signals record that sleeve's exit of its whole holding, as a leg; the 00:15
      // execute-orders dies before netting it (retried later).
      const exitLeg = exitLegOf(ctx, first, first.qty, `${d2}T00:10:00.000Z`);
      await ctx.store.createIntent(exitLeg);
      // 00:30 the risk check sends the refused flattens again: not this sleeve's (its leg sells it all).
      clock = Date.parse(`${d2}T00:30:00Z`);
      const risk = await riskCheck(ctx, `${d2}T00:30:00Z`);
      expect(risk.exits).not.toContain(`${first.clientOrderId}-2`);
      expect(await ctx.store.getIntent(d2, `${first.clientOrderId}-2`)).toBeUndefined();
      // 00:40 the retried execute-orders nets the leg and sells the coins once.
      clock = Date.parse(`${d2}T00:40:00Z`);
      await executeOrders(ctx, `${d2}T00:40:00Z`);
      expect((await ctx.store.getIntent(d2, exitLeg.clientOrderId))?.status).not.toBe('skipped');
      const sold = fresh.orders.filter(
        (o) => o.product_id === first.symbol && o.side === 'SELL' && o.status === 'FILLED',
      );
      expect(sold.reduce((sum, o) => sum + Number(o.filled_size), 0)).toBeCloseTo(first.qty, 8);
      expect((await ctx.broker.getPositions()).find((p) => p.symbol === first.symbol)).toBeUndefined();
    } finally {
      await fresh.close();
    }
  });

  it("a sleeve's exit leg recorded after the kill switch's refused flatten was sent again (`-2`, a retried signal run): the late netting takes it over, never sold twice", async () => {
    const { fresh, ctx, d2, first } = await flattenRefusedNextDay('quantshift-crypto-test-takeover');
    try {
      clock = Date.parse(`${d2}T00:30:00Z`);
      const risk = await riskCheck(ctx, `${d2}T00:30:00Z`);
      expect(risk.exits).toContain(`${first.clientOrderId}-2`);
      expect(await ctx.store.getIntent(d2, `${first.clientOrderId}-2`)).toMatchObject({
        qty: first.qty,
        status: 'filled',
      });
      // 00:35 a retried signal run records that sleeve's exit of the same coins; 00:40 the netting.
      const exitLeg = exitLegOf(ctx, first, first.qty, `${d2}T00:35:00.000Z`);
      await ctx.store.createIntent(exitLeg);
      clock = Date.parse(`${d2}T00:40:00Z`);
      await executeOrders(ctx, `${d2}T00:40:00Z`);
      expect(await ctx.store.getIntent(d2, exitLeg.clientOrderId)).toMatchObject({
        status: 'skipped',
        reason: expect.stringContaining(`${first.clientOrderId}-2`),
      });
      const sold = fresh.orders.filter(
        (o) => o.product_id === first.symbol && o.side === 'SELL' && o.status === 'FILLED',
      );
      expect(sold.reduce((sum, o) => sum + Number(o.filled_size), 0)).toBeCloseTo(first.qty, 8);
    } finally {
      await fresh.close();
    }
  });

  it("the kill switch's flatten and its re-sends refused all day: the next UTC day's first risk check flattens the sleeve's coins under that day's id (alerted once); none left", async () => {
    const { fresh, ctx, d2, first } = await flattenRefusedNextDay('quantshift-crypto-test-next-day');
    try {
      // The exchange refuses the day's re-sends too (the 00:30 and 12:00 risk checks).
      fresh.injectFaults({ kind: 'status', status: 400, route: 'POST /api/v3/brokerage/orders', times: 2 });
      for (const time of [`${d2}T00:30:00Z`, `${d2}T12:00:00Z`]) {
        clock = Date.parse(time);
        await riskCheck(ctx, time);
      }
      fresh.clearFaults();
      expect(await ctx.store.getIntent(d2, `${first.clientOrderId}-3`)).toMatchObject({ status: 'rejected' });
      clock = Date.parse(`${d2}T23:50:00Z`);
      await endOfDay(ctx, `${d2}T23:50:00Z`);
      const held = (await ctx.broker.getPositions()).find((p) => p.symbol === first.symbol)?.qty ?? 0;
      expect(held).toBeGreaterThan(0);

      const d3 = '2026-01-07';
      clock = Date.parse(`${d3}T00:05:00Z`);
      await marketOpenCheck(ctx, `${d3}T00:05:00Z`);
      const sent = (ctx.notifier as ListNotifier).sent;
      const alerts = sent.length;
      clock = Date.parse(`${d3}T00:30:00Z`);
      const risk = await riskCheck(ctx, `${d3}T00:30:00Z`);
      const next = first.clientOrderId.replace(d2.replaceAll('-', ''), d3.replaceAll('-', ''));
      expect(risk.exits).toContain(next);
      expect(await ctx.store.getIntent(d3, next)).toMatchObject({ sleeve: first.sleeve, status: 'filled' });
      expect(
        sent
          .slice(alerts)
          .filter((n) => n.subject === `Kill switch flatten sent: ${first.symbol} (${first.sleeve})`),
      ).toMatchObject([{ severity: 'critical' }]);
      expect((await ctx.broker.getPositions()).find((p) => p.symbol === first.symbol)).toBeUndefined();
    } finally {
      await fresh.close();
    }
  });

  it("the kill switch's flatten refused, then all but a leftover under the product's minimum sold by hand: the risk checks send no order the exchange refuses for its size; skipped, alerted once a day", async () => {
    const { fresh, ctx, d2, first } = await flattenRefusedNextDay('quantshift-crypto-test-dust');
    try {
      const position = (await ctx.broker.getPositions()).find((p) => p.symbol === first.symbol);
      const increment = configProducts(ctx.config)?.[first.symbol]?.baseIncrement as number;
      // Left: coins worth 0.50 USD, under the product's minimum notional (1 USD).
      const dust = Math.floor(0.5 / (position?.currentPrice as number) / increment) * increment;
      expect(dust).toBeGreaterThan(0);
      clock = Date.parse(`${d2}T00:20:00Z`);
      await ctx.broker.submitOrder({
        clientOrderId: 'desk-manual-sell',
        symbol: first.symbol,
        side: 'sell',
        qty: (position?.qty as number) - dust,
        type: 'market',
        timeInForce: 'ioc',
      });
      const left = (await ctx.broker.getPositions()).find((p) => p.symbol === first.symbol)?.qty ?? 0;
      expect(left).toBeGreaterThan(0);
      expect(left * (position?.currentPrice as number)).toBeLessThan(1);
      const sent = (ctx.notifier as ListNotifier).sent;
      const alerts = sent.length;
      const posts = () =>
        fresh.requestLog.filter((r) => r.method === 'POST' && r.path === '/api/v3/brokerage/orders').length;
      const before = posts();
      for (const time of [`${d2}T00:30:00Z`, `${d2}T01:30:00Z`, `${d2}T02:30:00Z`]) {
        clock = Date.parse(time);
        const risk = await riskCheck(ctx, time);
        expect(risk.exits).toEqual([]);
      }
      // No order the exchange refuses for its size, no "sent again" alert at each check.
      expect(posts()).toBe(before);
      const subjects = sent.slice(alerts).map((n) => n.subject);
      expect(subjects.filter((t) => t.startsWith('Kill switch flatten sent'))).toEqual([]);
      expect(subjects.filter((t) => t.startsWith('Order rejected'))).toEqual([]);
      expect(
        subjects.filter((t) => t === `Kill switch flatten not sent: ${first.symbol} (${first.sleeve})`),
      ).toHaveLength(1);
      expect((await ctx.broker.getPositions()).find((p) => p.symbol === first.symbol)?.qty).toBe(left);
    } finally {
      await fresh.close();
    }
  });

  it("counts a fill between a step's scheduled time and its read of the exchange once: the list names the fills it booked", async () => {
    // The risk check is scheduled at 00:15:00 and reads the exchange at 00:15:03, after the IOC
    // fills of 00:15:02: the list it writes (as of 00:15:00) holds those fills. A rerun of
    // execute-orders at 00:45 must not add them again (the time comparison did: a false UNASSIGNED).
    const fresh = await freshExchange();
    try {
      const { ctx, notifier } = await sending('quantshift-crypto-test-interleave', fresh);
      const day = '2026-01-05';
      clock = Date.parse(`${day}T00:10:00Z`);
      await marketOpenCheck(ctx, `${day}T00:05:00Z`);
      await generateSignals(ctx, `${day}T00:10:00Z`);
      clock = Date.parse(`${day}T00:15:02Z`);
      const first = await executeOrders(ctx, `${day}T00:15:02Z`);
      expect(first.reconciliation?.mismatches).toBe(0);
      const net = (await ctx.store.listIntents(day)).filter((i) => i.leg !== true && i.status === 'filled');
      expect(net.length).toBeGreaterThan(0);
      const fillTimes = fresh.orders
        .filter((o) => net.some((i) => i.clientOrderId === o.client_order_id))
        .map((o) => o.last_fill_time);
      expect(fillTimes.length).toBe(net.length);
      for (const t of fillTimes)
        expect(Date.parse(t as string)).toBeGreaterThan(Date.parse(`${day}T00:15:00Z`));

      // The interleaving: scheduled before the fills, reading after them.
      clock = Date.parse(`${day}T00:15:03Z`);
      await riskCheck(ctx, `${day}T00:15:00Z`);
      const listed = await ctx.store.getLatestPositions();
      expect(listed?.writtenAt).toBe(`${day}T00:15:00Z`);
      expect(listed?.bookedFills).toEqual(
        Object.fromEntries(net.map((i) => [i.brokerOrderId as string, i.filledQty])),
      );

      clock = Date.parse(`${day}T00:45:00Z`);
      const again = await executeOrders(ctx, `${day}T00:45:00Z`);
      expect(again.reconciliation?.mismatches).toBe(0);
      expect(again.reconciliation?.blocked).toEqual([]);
      for (const line of again.reconciliation?.symbols ?? []) {
        expect(line.unassignedAfter, line.symbol).toBe(0);
        expect(line.sleevesQty, line.symbol).toBe(line.brokerQty);
      }
      expect(notifier.sent.map((n) => n.subject).filter((s) => /Reconciliation|UNASSIGNED/.test(s))).toEqual(
        [],
      );
      expect(
        ((await ctx.store.getLatestPositions())?.positions ?? []).filter((p) => p.sleeve === 'UNASSIGNED'),
      ).toEqual([]);
    } finally {
      await fresh.close();
    }
  });

  it("stops the signal step when the exchange's product limits differ from the config's products:", async () => {
    // SOL-USD at the exchange in 0.01 steps, the config (what the backtest sized on) says 0.001.
    const fresh = await freshExchange({
      products: DEFAULT_PRODUCTS.map((p) =>
        p.productId === 'SOL-USD' ? { ...p, baseIncrement: '0.01', baseMinSize: '0.01' } : p,
      ),
    });
    try {
      const { ctx } = await sending('quantshift-crypto-test-products', fresh);
      const day = '2026-01-05';
      clock = Date.parse(`${day}T00:10:00Z`);
      await marketOpenCheck(ctx, `${day}T00:05:00Z`);
      const error = await generateSignals(ctx, `${day}T00:10:00Z`).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ProductLimitsMismatchError);
      expect((error as Error).message).toBe(
        "products: the exchange's limits differ from the config's (SOL-USD baseIncrement: 0.001 in the config, 0.01 at the exchange; SOL-USD minSize: 0.001 in the config, 0.01 at the exchange); update products: in the config (the backtest sizes on it) and validate again",
      );
      expect(await ctx.store.listIntents(day)).toEqual([]);
      // The exchange's limits as the config's: the step decides.
      const { ctx: same } = await cryptoContext({
        DRY_RUN: 'false',
        LOCAL_REHEARSAL: 'true',
        STATE_TABLE: 'quantshift-crypto-test-products',
        COINBASE_BASE_URL: server.url,
      });
      expect((await generateSignals(same, `${day}T00:10:00Z`)).status).toBe('decided');
    } finally {
      await fresh.close();
    }
  });

  it('a stop-limit gapped through its limit rests at the exchange; the next risk check cancels it and exits at market IOC, alerting', async () => {
    const fresh = await freshExchange();
    try {
      const { ctx, notifier } = await sending('quantshift-crypto-test-gap', fresh);
      const day = '2026-01-05';
      const placed = await entriesAndStops(ctx, day);
      const stop = fresh.orders.find((o) => placed.stopsPlaced.includes(o.client_order_id));
      if (stop === undefined) throw new Error('no stop placed');
      const config = stop.order_configuration.stop_limit_stop_limit_gtc as Record<string, string>;
      const product = stop.product_id;
      // The price gaps 5% below the stop, beyond its limit (2% below): the stop-limit does not fill.
      fresh.setPrice(product, Number(config.stop_price) * 0.95);
      clock = Date.parse(`${day}T01:30:00Z`);
      expect((await ctx.broker.getPositions()).some((p) => p.symbol === product)).toBe(true);
      expect(fresh.orders.find((o) => o.order_id === stop.order_id)?.status).toBe('OPEN');

      const risk = await riskCheck(ctx, `${day}T01:30:00Z`);
      expect(risk.exits.length).toBeGreaterThan(0);
      expect(fresh.orders.find((o) => o.order_id === stop.order_id)?.status).toBe('CANCELLED');
      const exit = fresh.orders.find(
        (o) => risk.exits.includes(o.client_order_id) && o.product_id === product,
      );
      expect(Object.keys(exit?.order_configuration ?? {})).toEqual(['market_market_ioc']);
      expect(exit?.status).toBe('FILLED');
      expect((await ctx.broker.getPositions()).some((p) => p.symbol === product)).toBe(false);
      const alert = notifier.sent.find((n) => n.subject.startsWith(`Exit at market: ${product} (`));
      expect(alert?.severity).toBe('warning');
      expect(alert?.text).toContain(`is through the stop`);
      expect(alert?.text).toContain(stop.client_order_id);
    } finally {
      await fresh.close();
    }
  });

  // Run at 01:05, or the 00:15 run retried at 01:05 (it carries its scheduled time: the cutoff is
  // checked at the later of that and the exchange's clock, GET /time); the dry run (the paper stage)
  // keeps the same rule, so its late retry fills nothing virtually that live would skip.
  it.each([
    ['run after 01:00 UTC', '01:05', 'false'],
    ['00:15 run retried after 01:00 UTC by the exchange clock', '00:15', 'false'],
    ['dry run: 00:15 run retried after 01:00 UTC by the exchange clock', '00:15', 'true'],
  ])(
    'skips the orders of the daily close of a %s (alerted), never sending them late',
    async (name, scheduled, dryRun) => {
      // Its own account (cash only) and table: the tests before bought on the shared one.
      const fresh = await freshExchange();
      try {
        const table = `quantshift-crypto-test-late-${scheduled.replace(':', '')}${dryRun === 'true' ? '-dry' : ''}`;
        await createStateTable(dynamo.client, table);
        const { ctx, notifier } = await cryptoContext({
          DRY_RUN: dryRun,
          LOCAL_REHEARSAL: 'true',
          STATE_TABLE: table,
          COINBASE_BASE_URL: fresh.url,
        });
        const day = '2026-01-05';
        clock = Date.parse(`${day}T00:10:00Z`);
        await marketOpenCheck(ctx, `${day}T00:05:00Z`);
        const signals = await generateSignals(ctx, `${day}T00:10:00Z`);
        expect(signals.intents.length).toBeGreaterThan(0);
        clock = Date.parse(`${day}T01:05:00Z`);
        const result = await executeOrders(ctx, `${day}T${scheduled}:00Z`);
        expect(result.status).toBe('executed');
        expect(fresh.requestLog.filter((r) => r.method === 'POST')).toEqual([]);
        expect(fresh.orders).toEqual([]);
        const intents = await ctx.store.listIntents(day);
        expect(intents.length).toBeGreaterThanOrEqual(signals.intents.length);
        // Each intent is skipped: a sleeve's leg before netting (the retry nets at the exchange's
        // clock too, so no net order is recorded), or a leg netted into a net order that is skipped.
        const settledBy = (i: IntentRecord) =>
          i.leg === true && i.netOrderId !== undefined
            ? intents.find((n) => n.clientOrderId === i.netOrderId)
            : i;
        for (const intent of intents) {
          expect(settledBy(intent)).toMatchObject({
            status: 'skipped',
            reason: 'after the 01:00 UTC cutoff of the daily close orders',
          });
        }
        expect(notifier.sent.map((n) => n.subject)).toContain(`Daily close orders skipped on ${day}`);
        if (name.startsWith('dry run')) {
          expect(ctx.crypto?.dryRun).toBe(true);
          expect(await ctx.crypto?.records.listDryRuns(day)).toEqual([]);
        }
      } finally {
        await fresh.close();
      }
    },
  );
});
