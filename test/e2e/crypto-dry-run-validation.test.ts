/**
 * A crypto dry run validated as the live gate asks (docs/crypto.md): the real steps run every UTC
 * day, weekends included, against the local Coinbase server over HTTP and local DynamoDB; the
 * dry-run broker fills virtually, so the dry run holds what it bought and its later decisions are
 * the backtest's. `quantshift validate-paper --stage paper --config config/crypto-strategy.yaml`
 * then measures it against the shadow backtest with the crypto criteria and stores the record the
 * live stage's gate reads, one per sleeve of the shipped sleeves config (trend, breakout,
 * bollinger): each sleeve's legs are netted per product into one virtual order, each sleeve has
 * its own protective stop, and reconciliation runs against the virtual account.
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
import { validatePaperCommand } from '../../shared/cli/validate-paper.js';
import { liveSleeveIds } from '../../shared/core/config/schema.js';
import { sleeveHash } from '../../shared/core/config/sleeve-hash.js';
import type { PaperValidation } from '../../shared/core/validation/paper.js';
import type { LiveContext } from '../../shared/live/context.js';
import { endOfDay } from '../../shared/live/end-of-day.js';
import { dryRunValidationRefusal } from '../../shared/live/entry-gate.js';
import { executeOrders } from '../../shared/live/execute-orders.js';
import { generateSignals } from '../../shared/live/generate-signals.js';
import { marketOpenCheck } from '../../shared/live/market-open-check.js';
import { riskCheck } from '../../shared/live/risk-check.js';
import { buildCryptoLiveContext, parseCryptoLiveEnv } from '../../shared/runtime/crypto-live.js';
import { capture } from '../helpers/capture.js';

const FROM = '2025-12-09';
const TO = '2026-01-12';
const TABLE = 'qs-crypto-dry-validation';
const key = generateTestCdpKey('EdDSA');
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

async function validate(...argv: string[]): Promise<PaperValidation> {
  const out = capture();
  const env = { ...process.env, DYNAMODB_ENDPOINT: dynamo.endpoint };
  const code = await validatePaperCommand(
    [
      '--stage',
      'paper',
      '--table',
      TABLE,
      '--config',
      'config/crypto-strategy.yaml',
      ...argv,
      '--format',
      'json',
    ],
    { stdout: out.stream, stderr: capture().stream },
    env,
  );
  expect(code).toBe(0);
  return JSON.parse(out.text()) as PaperValidation;
}

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
  const step = async (time: string, run: (c: LiveContext, t: string) => Promise<unknown>) => {
    clock = Date.parse(time);
    await run(ctx, time);
  };
  for (const day of days(FROM, TO)) {
    await step(`${day}T00:05:00Z`, marketOpenCheck);
    await step(`${day}T00:10:00Z`, generateSignals);
    await step(`${day}T00:15:00Z`, executeOrders);
    await step(`${day}T00:30:00Z`, riskCheck);
    await step(`${day}T23:50:00Z`, endOfDay);
  }
}, 600_000);

afterAll(async () => {
  await server?.close();
  await dynamo?.close();
});

describe('the crypto dry run validated for the live gate', () => {
  it('matches the shadow backtest decision for decision over every UTC day, and passes the crypto criteria', async () => {
    const result = await validate();
    expect(result.sessions).toBe(days(FROM, TO).length);
    expect(result.trades.paper).toBeGreaterThan(0);
    expect(result.trades.missed).toEqual([]);
    expect(result.trades.extra).toEqual([]);
    expect(result.trades.matchedPct).toBe(100);
    expect(result.execution.criticalFailures).toBe(0);
    expect(result.criteria.map((c) => c.name).sort()).toEqual([
      'executionFailures',
      'minSessions',
      'tradesMatched',
    ]);
    expect(result.decision).toBe('go');
    expect(server.orders).toEqual([]);
    // The records the live gate reads: one per sleeve of the shipped config, each on ITS sleeve's
    // hash, with its own figures (its trades matched against its own shadow trades).
    const ids = liveSleeveIds(ctx.config);
    expect(ids).toEqual(['trend', 'breakout', 'bollinger']);
    for (const id of ids) {
      const record = await ctx.store.getPaperValidation(id);
      expect(record).toMatchObject({
        sleeve: id,
        decision: 'go',
        sessions: result.sessions,
        configHash: sleeveHash(ctx.config, id),
      });
      expect(record?.figures.executionFailures).toBe(0);
      // The live gate of each sleeve accepts its record (the research record aside).
      expect(
        dryRunValidationRefusal('live', id, sleeveHash(ctx.config, id), record, ctx.config.validation),
      ).toBeNull();
    }
    expect(await ctx.store.getPaperValidation(ctx.config.name)).toBeUndefined();
  });

  it('29 UTC days fail minSessions', async () => {
    const to = days(FROM, TO)[28] as string;
    const result = await validate('--from', FROM, '--to', to, '--no-record');
    expect(result.sessions).toBe(29);
    expect(result.failed).toContain('minSessions');
    expect(result.decision).toBe('no-go');
  });
});
