/**
 * The crypto dry run on the SHIPPED sleeves config (config/crypto-strategy.yaml: trend, breakout,
 * bollinger), against the local Coinbase server over HTTP and local DynamoDB: the real steps run
 * every UTC day, weekends included. Every day: the sleeves' legs are netted per product into one
 * virtual order (a leg is never an order), each sleeve's position has its own protective stop
 * (tagged with the sleeve, the sleeve's coins), end-of-day books the net fills back to the sleeves
 * and reconciliation against the virtual account finds nothing unassigned. Nothing reaches the
 * exchange. (The single-strategy crypto path: crypto-dry-run.test.ts.)
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createStateTable } from '../../shared/adapters/dynamodb/state-store.js';
import {
  generateTestCdpKey,
  type LocalCoinbase,
  startLocalCoinbase,
} from '../../shared/adapters/local/coinbase-server.js';
import { type LocalDynamo, startLocalDynamo } from '../../shared/adapters/local/dynamodb.js';
import { ListNotifier } from '../../shared/adapters/local/list-notifier.js';
import { liveSleeveIds } from '../../shared/core/config/schema.js';
import { orderTagOf, STOP_ORDER_TYPES, sleeveSetTag } from '../../shared/core/live/orders.js';
import { sleeveRecords } from '../../shared/core/live/reconcile.js';
import type { IntentRecord } from '../../shared/core/ports/state-store.js';
import type { LiveContext } from '../../shared/live/context.js';
import { endOfDay } from '../../shared/live/end-of-day.js';
import { executeOrders } from '../../shared/live/execute-orders.js';
import { generateSignals } from '../../shared/live/generate-signals.js';
import { marketOpenCheck } from '../../shared/live/market-open-check.js';
import { riskCheck } from '../../shared/live/risk-check.js';
import { buildCryptoLiveContext, parseCryptoLiveEnv } from '../../shared/runtime/crypto-live.js';

const FROM = '2025-12-09';
const TO = '2026-01-12';
const TABLE = 'qs-crypto-dry-sleeves';
const key = generateTestCdpKey('ES256');
let clock = Date.parse(`${FROM}T00:00:00Z`);
let server: LocalCoinbase;
let dynamo: LocalDynamo;
let ctx: LiveContext;

const days = (from: string, to: string) => {
  const out: string[] = [];
  for (let t = Date.parse(`${from}T00:00:00Z`); t <= Date.parse(`${to}T00:00:00Z`); t += 86_400_000)
    out.push(new Date(t).toISOString().slice(0, 10));
  return out;
};
const at = (iso: string) => {
  clock = Date.parse(iso);
  return iso;
};

/** What each day showed, for the assertions. */
interface Day {
  readonly day: string;
  readonly intents: readonly IntentRecord[];
  readonly virtualOrderIds: readonly string[];
  /** Per sleeve and symbol: the sleeve's coins, and its resting stops' quantities (by its tag). */
  readonly sleevePositions: readonly {
    sleeve: string;
    symbol: string;
    qty: number;
    stopQtys: readonly number[];
  }[];
  /** Per symbol: the virtual account's coins and the sum of the sleeves' coins at end-of-day. */
  readonly held: readonly { symbol: string; account: number; sleeves: number }[];
  readonly blocked: readonly string[];
  readonly unassigned: number;
}
const seen: Day[] = [];

beforeAll(async () => {
  server = await startLocalCoinbase({
    dataDir: 'data/crypto',
    keys: [{ name: key.cdpKey.name, publicKey: key.publicKey }],
    balances: { USD: 100_000 },
    now: () => clock,
  });
  dynamo = await startLocalDynamo();
  await createStateTable(dynamo.client, TABLE);
  Object.assign(process.env, {
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'local',
    AWS_SECRET_ACCESS_KEY: 'local',
  });
  const built = await buildCryptoLiveContext(
    parseCryptoLiveEnv({
      STAGE: 'paper',
      STATE_TABLE: TABLE,
      IDEMPOTENCY_TABLE: 'unused',
      QUANTSHIFT_CONFIG: 'config/crypto-strategy.yaml',
      COINBASE_KEY_NAME: key.cdpKey.name,
      COINBASE_PRIVATE_KEY: key.cdpKey.privateKey,
      COINBASE_BASE_URL: server.url,
      DYNAMODB_ENDPOINT: dynamo.endpoint,
    }),
  );
  ctx = { ...built, notifier: new ListNotifier(), log: { info: () => {}, warn: () => {}, error: () => {} } };
  const tags = new Map(liveSleeveIds(ctx.config).map((id) => [sleeveSetTag(ctx.stage, [id]), id]));
  for (const day of days(FROM, TO)) {
    await marketOpenCheck(ctx, at(`${day}T00:05:00Z`));
    await generateSignals(ctx, at(`${day}T00:10:00Z`));
    await executeOrders(ctx, at(`${day}T00:15:00Z`));
    await riskCheck(ctx, at(`${day}T00:30:00Z`));
    // The sleeves' stops as the risk check left them, against the sleeves' positions.
    const open = await ctx.broker.listOrders({ status: 'open', symbols: ctx.config.watchlist });
    const positions = sleeveRecords((await ctx.store.getLatestPositions())?.positions ?? []);
    const sleevePositions = positions
      .filter((p) => p.qty !== 0)
      .map((p) => ({
        sleeve: p.sleeve as string,
        symbol: p.symbol,
        qty: p.qty,
        stopQtys: open
          .filter(
            (o) =>
              o.symbol === p.symbol &&
              STOP_ORDER_TYPES.has(o.type) &&
              tags.get(orderTagOf(o.clientOrderId) ?? '') === p.sleeve,
          )
          .map((o) => o.qty),
      }));
    const report = await endOfDay(ctx, at(`${day}T23:50:00Z`));
    if (!('date' in report)) throw new Error(`no end-of-day report on ${day}`);
    const account = (await ctx.crypto?.records.getDryRunAccount())?.account;
    const latest = (await ctx.store.getLatestPositions())?.positions ?? [];
    const owned = sleeveRecords(latest);
    seen.push({
      day,
      intents: await ctx.store.listIntents(day),
      virtualOrderIds: (account?.orders ?? []).map((o) => o.clientOrderId),
      sleevePositions,
      held: ctx.config.watchlist.map((symbol) => ({
        symbol,
        account: account?.positions.find((p) => p.symbol === symbol)?.qty ?? 0,
        sleeves: owned.filter((p) => p.symbol === symbol).reduce((sum, p) => sum + p.qty, 0),
      })),
      blocked: report.reconciliation.blocked,
      unassigned: latest.length - owned.length,
    });
  }
}, 600_000);

afterAll(async () => {
  await server?.close();
  await dynamo?.close();
});

describe('the crypto dry run on the shipped sleeves config', () => {
  it('nets the sleeves legs into one virtual order per product; a leg is never an order', () => {
    const legs = seen.flatMap((d) => d.intents.filter((i) => i.leg === true));
    const nets = seen.flatMap((d) => d.intents.filter((i) => i.legIds !== undefined && i.leg !== true));
    expect(legs.length).toBeGreaterThan(0);
    expect(nets.length).toBeGreaterThan(0);
    const sleevesTraded = new Set(legs.map((l) => l.sleeve));
    expect(sleevesTraded.size).toBeGreaterThanOrEqual(2);
    // Every order the virtual account held on any day (it prunes old done orders).
    const ordered = new Set(seen.flatMap((d) => d.virtualOrderIds));
    for (const leg of legs) {
      expect(ordered.has(leg.clientOrderId)).toBe(false);
      // Every leg that went out was netted into its day's net order of its product, and booked.
      if (leg.status === 'filled') {
        const net = nets.find((n) => n.clientOrderId === leg.netOrderId);
        expect(net?.symbol).toBe(leg.symbol);
        expect(net?.legIds).toContain(leg.clientOrderId);
      }
    }
    // One net order per product and day, and every filled one was a virtual order.
    for (const d of seen) {
      const dayNets = d.intents.filter((i) => i.legIds !== undefined && i.leg !== true);
      expect(new Set(dayNets.map((n) => n.symbol)).size).toBe(dayNets.length);
    }
    for (const net of nets.filter((n) => n.status === 'filled'))
      expect(ordered.has(net.clientOrderId)).toBe(true);
    expect(nets.some((n) => n.status === 'filled')).toBe(true);
    expect(server.orders).toEqual([]);
  });

  it("gives each sleeve's position its own protective stop, on the sleeve's coins", () => {
    const held = seen.flatMap((d) => d.sleevePositions);
    expect(new Set(held.map((p) => p.sleeve)).size).toBeGreaterThanOrEqual(2);
    for (const p of held) expect(p.stopQtys).toEqual([p.qty]);
  });

  it('reconciles against the virtual account every day: the sleeves own every coin it holds', () => {
    for (const d of seen) {
      expect(d.blocked, d.day).toEqual([]);
      expect(d.unassigned, d.day).toBe(0);
      for (const h of d.held) expect(h.sleeves, `${d.day} ${h.symbol}`).toBeCloseTo(h.account, 8);
    }
    expect(seen.some((d) => d.held.some((h) => h.account > 0))).toBe(true);
  });
});
