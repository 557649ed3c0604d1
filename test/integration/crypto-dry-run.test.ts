/**
 * The crypto dry run's virtual fills, against the real local servers: the local Coinbase server
 * over HTTP, local DynamoDB (dynalite) and redis-server behind the Upstash bridge. The real steps
 * run day by day (market-open check, generate-signals, execute-orders, risk check, end-of-day);
 * the dry-run broker books every order in its virtual account, and the steps book its fills with
 * their own code: the ledger (marked `dryRun`), positions and stops, closed trades, the equity
 * snapshot, cash in cents. No order ever reaches the exchange.
 *
 * This file runs the SINGLE-strategy crypto path (a fixture: the shipped config as one strategy);
 * the shipped sleeves config's dry run (netted orders, per-sleeve stops) is
 * crypto-dry-run-sleeves.test.ts and the e2e crypto-dry-run-validation.test.ts.
 */
import { CreateTableCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { handler as cryptoKillSwitch } from '../../functions/crypto-kill-switch/handler.js';
import { createStateTable } from '../../shared/adapters/dynamodb/state-store.js';
import {
  generateTestCdpKey,
  type LocalCoinbase,
  startLocalCoinbase,
} from '../../shared/adapters/local/coinbase-server.js';
import { type LocalDynamo, startLocalDynamo } from '../../shared/adapters/local/dynamodb.js';
import { localLambdaContext } from '../../shared/adapters/local/lambda-context.js';
import { ListNotifier } from '../../shared/adapters/local/list-notifier.js';
import { type LocalRedisServer, startRedisServer } from '../../shared/adapters/local/redis-server.js';
import { startUpstashBridge, type UpstashBridge } from '../../shared/adapters/local/upstash-bridge.js';
import { commissionCents, notionalCents } from '../../shared/core/ledger/money.js';
import type { IntentRecord } from '../../shared/core/ports/state-store.js';
import type { LiveContext } from '../../shared/live/context.js';
import { endOfDay } from '../../shared/live/end-of-day.js';
import { executeOrders } from '../../shared/live/execute-orders.js';
import { generateSignals } from '../../shared/live/generate-signals.js';
import { killSwitch } from '../../shared/live/kill-switch.js';
import { marketOpenCheck } from '../../shared/live/market-open-check.js';
import { riskCheck } from '../../shared/live/risk-check.js';
import { buildCryptoLiveContext, parseCryptoLiveEnv } from '../../shared/runtime/crypto-live.js';

/** The shipped crypto config as one strategy (the single-strategy path). */
const SINGLE_STRATEGY = 'test/fixtures/crypto-single-strategy.yaml';
const key = generateTestCdpKey('ES256');
let clock = Date.parse('2026-01-05T00:05:00Z');
let server: LocalCoinbase;
let dynamo: LocalDynamo;
let redis: LocalRedisServer;
let bridge: UpstashBridge;
let ctx: LiveContext;
let env: Record<string, string>;
const notifier = new ListNotifier();

const at = (iso: string) => {
  clock = Date.parse(iso);
  return iso;
};
const posts = () => server.requestLog.filter((r) => r.method === 'POST').length;

beforeAll(async () => {
  server = await startLocalCoinbase({
    dataDir: 'data/crypto',
    keys: [{ name: key.cdpKey.name, publicKey: key.publicKey }],
    balances: { USD: 100_000 },
    now: () => clock,
  });
  dynamo = await startLocalDynamo();
  await createStateTable(dynamo.client, 'qs-dry-state');
  await dynamo.client.send(
    new CreateTableCommand({
      TableName: 'qs-dry-idempotency',
      KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
      AttributeDefinitions: [{ AttributeName: 'id', AttributeType: 'S' }],
      BillingMode: 'PAY_PER_REQUEST',
    }),
  );
  redis = await startRedisServer();
  bridge = await startUpstashBridge({ redisUrl: redis.url, token: 'local-upstash-token-0123456789' });
  Object.assign(process.env, {
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'local',
    AWS_SECRET_ACCESS_KEY: 'local',
  });
  env = {
    STAGE: 'paper',
    STATE_TABLE: 'qs-dry-state',
    IDEMPOTENCY_TABLE: 'qs-dry-idempotency',
    QUANTSHIFT_CONFIG: SINGLE_STRATEGY,
    COINBASE_KEY_NAME: key.cdpKey.name,
    COINBASE_PRIVATE_KEY: key.cdpKey.privateKey,
    COINBASE_BASE_URL: server.url,
    DYNAMODB_ENDPOINT: dynamo.endpoint,
    UPSTASH_REDIS_REST_URL: bridge.url,
    UPSTASH_REDIS_REST_TOKEN: bridge.token,
  };
  const built = await buildCryptoLiveContext(parseCryptoLiveEnv(env));
  ctx = { ...built, notifier, log: { info: () => {}, warn: () => {}, error: () => {} } };
});

afterAll(async () => {
  await server?.close();
  await bridge?.close();
  await redis?.close();
  await dynamo?.close();
});

/** The virtual account as stored. */
async function account() {
  const stored = await ctx.crypto?.records.getDryRunAccount();
  if (stored === undefined) throw new Error('no dry-run account stored');
  return stored.account;
}

describe('the dry run fills virtually and books the fills as real ones', () => {
  it('an entry fills at the recorded ask, at the base increment, with the taker fee; twice run concurrently, once', async () => {
    expect(ctx.cache).toBeDefined();
    await marketOpenCheck(ctx, at('2026-01-05T00:05:00Z'));
    const signals = await generateSignals(ctx, at('2026-01-05T00:10:00Z'));
    const eth = signals.intents.find((i) => i.symbol === 'ETH-USD' && i.purpose === 'entry');
    expect(eth).toBeDefined();

    const before = posts();
    const now = at('2026-01-05T00:15:00Z');
    // Two runs at once (a retried schedule): each order is booked once.
    await Promise.all([executeOrders(ctx, now), executeOrders(ctx, now)]);
    expect(posts()).toBe(before);
    expect(server.orders).toEqual([]);

    const records = (await ctx.crypto?.records.listDryRuns('2026-01-05')) ?? [];
    const record = records.find((r) => r.clientOrderId === eth?.clientOrderId);
    expect(record?.fill?.price).toBe(record?.ask);
    // ETH-USD's base increment is 1e-8: the quantity rounded down to it.
    const qty = Math.floor(((eth?.qty ?? 0) + 1e-12) * 1e8) / 1e8;
    expect(record?.fill?.qty).toBeCloseTo(qty, 8);
    const notional = notionalCents(record?.fill?.qty ?? 0, record?.ask ?? 0);
    const fee = commissionCents(ctx.config.costs.commission, record?.fill?.qty ?? 0, notional);
    expect(fee).toBe(Math.round(notional * 0.006));
    expect(record?.fill?.feeCents).toBe(fee);

    const virtual = await account();
    expect(virtual.orders.filter((o) => o.clientOrderId === eth?.clientOrderId)).toHaveLength(1);
    expect(virtual.fills.filter((f) => f.orderId === `dryrun-${eth?.clientOrderId}`)).toHaveLength(1);
    // Cash in cents: the start less every buy's notional and fee.
    const spent = virtual.fills.reduce(
      (sum, f) => sum + (f.side === 'buy' ? 1 : -1) * notionalCents(f.qty, f.price) + f.feeCents,
      0,
    );
    expect(virtual.cashCents).toBe(10_000_000 - spent);
    expect((await ctx.store.getIntent('2026-01-05', eth?.clientOrderId as string))?.status).toBe('filled');
  });

  it('the risk check places the protective stop virtually; end-of-day books the fill, the position and the equity', async () => {
    const risk = await riskCheck(ctx, at('2026-01-05T00:30:00Z'));
    expect(risk.stopsPlaced.some((id) => id.includes('ETH-USD'))).toBe(true);
    const resting = (await ctx.broker.listOrders({ status: 'open', symbols: ['ETH-USD'] }))[0];
    // Coinbase has no stop-market order: the protective stop is a stop-limit (docs/crypto.md, "Orders").
    expect(resting).toMatchObject({ type: 'stop_limit', side: 'sell', status: 'accepted' });
    expect(resting?.id.startsWith('dryrun-')).toBe(true);

    const report = await endOfDay(ctx, at('2026-01-05T23:50:00Z'));
    if (!('date' in report)) throw new Error('no report');
    const fills = await ctx.store.listFills('2026-01-05');
    const ethFill = fills.find((f) => f.symbol === 'ETH-USD');
    expect(ethFill).toMatchObject({ side: 'buy', dryRun: true });
    expect(ethFill?.executionId.startsWith('dryrun-')).toBe(true);
    const position = report.positions.find((p) => p.symbol === 'ETH-USD');
    expect(position?.qty).toBe(ethFill?.qty);
    expect(position?.stop).toBeCloseTo(resting?.stopPrice ?? 0, 2);
    expect(report.reconciliation.blocked).toEqual([]);
    expect(report.fillGaps).toEqual([]);
    const virtual = await account();
    const [snapshot] = await ctx.store.listEquitySnapshots('2026-01-05', '2026-01-05');
    expect(snapshot?.cash).toBe(virtual.cashCents / 100);
    // Equity: the cash and each coin at its book's mid (the day's close on the local server).
    const books = (await ctx.crypto?.quotes.getBestBidAsk(virtual.positions.map((p) => p.symbol))) ?? [];
    const mid = (symbol: string) => {
      const b = books.find((q) => q.symbol === symbol);
      return b === undefined ? 0 : (b.bid + b.ask) / 2;
    };
    const held = virtual.positions.reduce((sum, p) => sum + p.qty * mid(p.symbol), 0);
    expect(snapshot?.equity).toBeCloseTo(virtual.cashCents / 100 + held, 0);
    expect(server.orders).toEqual([]);
  });

  it('the next day holds what it bought (no second entry); a stop the day crosses exits at end-of-day as a closed trade', async () => {
    for (const day of ['2026-01-06', '2026-01-07']) {
      await marketOpenCheck(ctx, at(`${day}T00:05:00Z`));
      const signals = await generateSignals(ctx, at(`${day}T00:10:00Z`));
      expect(signals.intents.filter((i) => i.symbol === 'ETH-USD' && i.purpose === 'entry')).toEqual([]);
      await executeOrders(ctx, at(`${day}T00:15:00Z`));
      if (day === '2026-01-07') {
        // A tighter stop (3150) inside the day's range (low 3126.55, open 3295.91).
        const latest = await ctx.store.getLatestPositions();
        await ctx.store.putPositions(
          day,
          (latest?.positions ?? []).map((p) => (p.symbol === 'ETH-USD' ? { ...p, stop: 3150 } : p)),
        );
      }
      await riskCheck(ctx, at(`${day}T00:30:00Z`));
      const report = await endOfDay(ctx, at(`${day}T23:50:00Z`));
      if (!('date' in report)) throw new Error('no report');
      if (day === '2026-01-06') {
        expect(report.positions.some((p) => p.symbol === 'ETH-USD')).toBe(true);
        continue;
      }
      expect(report.positions.some((p) => p.symbol === 'ETH-USD')).toBe(false);
      const exit = (await ctx.store.listFills(day)).find((f) => f.symbol === 'ETH-USD');
      // The stop-limit's fill rule (`stopLimitFill`, core/execution/fill-rules.ts, the local
      // server's too): the range reached 3150 from above (its limit 2% lower was never in the way),
      // filled at the backtest's stop price, the stop slipped by the config's 10 bps.
      expect(exit).toMatchObject({ side: 'sell', dryRun: true, time: `${day}T00:30:00.000Z` });
      expect(exit?.price).toBeCloseTo(3150 * 0.999, 9);
      const trade = report.closedTrades.find((t) => t.symbol === 'ETH-USD');
      expect(trade).toMatchObject({ side: 'long', entryDate: '2026-01-05', exitDate: day });
      const entry = (await ctx.store.listFills('2026-01-05')).find((f) => f.symbol === 'ETH-USD');
      expect(trade?.pnlCents).toBe(
        notionalCents(exit?.qty ?? 0, exit?.price ?? 0) - notionalCents(entry?.qty ?? 0, entry?.price ?? 0),
      );
      expect(report.reconciliation.blocked).toEqual([]);
    }
    expect(server.orders).toEqual([]);
    const virtual = await account();
    expect(virtual.positions.some((p) => p.symbol === 'ETH-USD')).toBe(false);
    const net = virtual.fills.reduce(
      (sum, f) => sum - (f.side === 'buy' ? 1 : -1) * notionalCents(f.qty, f.price) - f.feeCents,
      0,
    );
    expect(virtual.cashCents).toBe(10_000_000 + net);
  });

  it('a triggered stop for coins no longer held is cancelled, as the exchange would, and reads go on', async () => {
    at('2026-01-07T23:55:00Z');
    const order = await ctx.broker.submitOrder({
      clientOrderId: 'qs-test-ETH-USD-20260107-stop-orphan',
      symbol: 'ETH-USD',
      side: 'sell',
      qty: 0.1,
      type: 'stop',
      timeInForce: 'gtc',
      stopPrice: 3100,
    });
    expect(order.status).toBe('accepted');
    // 2026-01-08's range (low 3052.51) crosses it: nothing to sell, so it is cancelled.
    at('2026-01-08T00:01:00Z');
    expect((await ctx.broker.getPositions()).some((p) => p.symbol === 'ETH-USD')).toBe(false);
    expect(await ctx.broker.getOrderByClientOrderId('qs-test-ETH-USD-20260107-stop-orphan')).toMatchObject({
      status: 'canceled',
      filledQty: 0,
    });
  });

  it('the crypto kill switch (its alarm handler) halts the dry run entries in its own table', async () => {
    const day = '2026-01-08';
    await marketOpenCheck(ctx, at(`${day}T00:05:00Z`));
    Object.assign(process.env, env, {
      POWERTOOLS_TRACE_DISABLED: 'true',
      POWERTOOLS_METRICS_NAMESPACE: 'QuantShift',
    });
    const time = '2026-01-08T00:12:00.000+0000';
    const alarmName = 'quantshift-paper-crypto-daily-loss';
    const result = await cryptoKillSwitch(
      {
        source: 'aws.cloudwatch',
        alarmArn: `arn:aws:cloudwatch:us-east-1:111122223333:alarm:${alarmName}`,
        accountId: '111122223333',
        time,
        region: 'us-east-1',
        alarmData: {
          alarmName,
          state: { value: 'ALARM', reason: 'Threshold Crossed: daily loss 5.2 >= 5', timestamp: time },
          previousState: {
            value: 'OK',
            reason: 'Threshold Crossed',
            timestamp: '2026-01-07T00:00:00.000+0000',
          },
          configuration: { description: 'crypto daily loss', metrics: [] },
        },
      },
      localLambdaContext('crypto-kill-switch', 'req-kill-1'),
    );
    expect(result).toMatchObject({ action: 'halt', alarmName });
    const risk = await ctx.store.getRiskState();
    expect(risk?.state.killSwitch?.reason).toMatch(/quantshift-paper-crypto-daily-loss/);

    const intent = (symbol: string, purpose: 'entry' | 'exit', side: 'buy' | 'sell'): IntentRecord => ({
      clientOrderId: `qs-kill-${symbol}-20260108-${purpose}`,
      date: day,
      strategy: ctx.config.name,
      symbol,
      purpose,
      side,
      qty: 1,
      type: 'market',
      timeInForce: 'ioc',
      referencePrice: 140,
      status: 'recorded',
      filledQty: 0,
      configHash: ctx.configHash,
      gitCommit: ctx.gitCommit,
      createdAt: `${day}T00:10:00Z`,
      updatedAt: `${day}T00:10:00Z`,
    });
    await ctx.store.createIntent(intent('SOL-USD', 'entry', 'buy'));
    const out = await executeOrders(ctx, at(`${day}T00:15:00Z`));
    const entry = out.intents.find((i) => i.clientOrderId === 'qs-kill-SOL-USD-20260108-entry');
    expect(entry).toMatchObject({ status: 'skipped' });
    expect(entry?.reason).toMatch(/kill switch/);
    expect(server.orders).toEqual([]);
  });

  it("the crypto kill switch acts on the UTC day's entries in the order window (still the previous day in New York)", async () => {
    const day = '2026-01-09';
    const entry: IntentRecord = {
      clientOrderId: 'qs-kill-ETH-USD-20260109-entry',
      date: day,
      strategy: ctx.config.name,
      symbol: 'ETH-USD',
      purpose: 'entry',
      side: 'buy',
      qty: 1,
      type: 'market',
      timeInForce: 'ioc',
      referencePrice: 3000,
      status: 'recorded',
      filledQty: 0,
      configHash: ctx.configHash,
      gitCommit: ctx.gitCommit,
      createdAt: `${day}T00:05:00Z`,
      updatedAt: `${day}T00:05:00Z`,
    };
    await ctx.store.createIntent(entry);
    const result = await killSwitch(ctx, {
      time: `${day}T00:20:00.000Z`,
      reason: 'crypto daily loss in the order window',
      by: 'alarm:quantshift-paper-crypto-daily-loss',
      flatten: false,
    });
    expect(result.day).toBe(day);
    expect(result.entriesSkipped).toContain(entry.clientOrderId);
    expect(await ctx.store.getIntent(day, entry.clientOrderId)).toMatchObject({ status: 'skipped' });
  });
});
