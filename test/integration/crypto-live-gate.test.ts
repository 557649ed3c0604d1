/**
 * The crypto live gate (docs/crypto.md), on the crypto runtime against the local Coinbase server
 * over HTTP and local DynamoDB, on the shipped sleeves config (trend, breakout, bollinger): in the
 * `live` stage an entry of a sleeve needs a passing research record AND a passing dry-run validation
 * of THAT sleeve's hash (at least 30 UTC days, decisions matching the shadow backtest's at 95% or
 * better, no execution error); another sleeve's records do not open it; exits never ask. The dry
 * run itself, in either stage, never asks the gate.
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
import { statusCommand } from '../../shared/cli/operate.js';
import { liveSleeveIds } from '../../shared/core/config/schema.js';
import { sleeveHash } from '../../shared/core/config/sleeve-hash.js';
import type { IntentRecord, PaperValidationRecord } from '../../shared/core/ports/state-store.js';
import type { LiveContext } from '../../shared/live/context.js';
import { entryRefusal } from '../../shared/live/entry-gate.js';
import { executeOrders } from '../../shared/live/execute-orders.js';
import { marketOpenCheck } from '../../shared/live/market-open-check.js';
import { buildCryptoLiveContext, parseCryptoLiveEnv } from '../../shared/runtime/crypto-live.js';
import { capture } from '../helpers/capture.js';

const key = generateTestCdpKey('EdDSA');
let clock = Date.parse('2026-01-05T00:05:00Z');
let server: LocalCoinbase;
let dynamo: LocalDynamo;
let tables = 0;

/** A crypto context on a fresh table: `live` sends orders, `dryRun` the live stage's dry run. */
async function context(
  dryRun: boolean,
  table = `qs-gate-${++tables}`,
  config = 'config/crypto-strategy.yaml',
): Promise<LiveContext> {
  await createStateTable(dynamo.client, table);
  const built = await buildCryptoLiveContext(
    parseCryptoLiveEnv({
      STAGE: 'live',
      DRY_RUN: String(dryRun),
      STATE_TABLE: table,
      IDEMPOTENCY_TABLE: 'unused',
      QUANTSHIFT_CONFIG: config,
      COINBASE_KEY_NAME: key.cdpKey.name,
      COINBASE_PRIVATE_KEY: key.cdpKey.privateKey,
      COINBASE_BASE_URL: server.url,
      DYNAMODB_ENDPOINT: dynamo.endpoint,
    }),
  );
  return { ...built, notifier: new ListNotifier(), log: { info: () => {}, warn: () => {}, error: () => {} } };
}

/** The research record of one sleeve, passing, on its own hash. */
async function passResearch(ctx: LiveContext, sleeve: string) {
  await ctx.store.putValidation({
    strategy: sleeve,
    configHash: ctx.configHash,
    sleeveHash: sleeveHash(ctx.config, sleeve),
    proceed: true,
    failed: [],
    jobId: 'job-crypto-research-0001',
    decidedAt: '2026-01-01T00:00:00Z',
  });
}

/** A dry-run validation record of a sleeve (a passing one unless overridden). */
function dryRunRecord(
  ctx: LiveContext,
  sleeve: string,
  over: Partial<PaperValidationRecord> = {},
): PaperValidationRecord {
  return {
    sleeve,
    configHash: sleeveHash(ctx.config, sleeve),
    decision: 'go',
    failed: [],
    figures: { minSessions: 30, tradesMatched: 100, executionFailures: 0 },
    sessions: 30,
    from: '2025-12-05',
    to: '2026-01-03',
    decidedAt: '2026-01-04T12:00:00Z',
    ...over,
  };
}

function intent(
  ctx: LiveContext,
  purpose: 'entry' | 'exit',
  symbol: string,
  qty: number,
  sleeve = 'trend',
): IntentRecord {
  return {
    clientOrderId: `qs-gate-${symbol}-20260105-${purpose}`,
    sleeve,
    date: '2026-01-05',
    strategy: ctx.config.name,
    symbol,
    purpose,
    side: purpose === 'entry' ? 'buy' : 'sell',
    qty,
    type: 'market',
    timeInForce: 'ioc',
    referencePrice: 3140,
    status: 'recorded',
    filledQty: 0,
    configHash: ctx.configHash,
    gitCommit: ctx.gitCommit,
    createdAt: '2026-01-05T00:10:00Z',
    updatedAt: '2026-01-05T00:10:00Z',
  };
}

beforeAll(async () => {
  server = await startLocalCoinbase({
    dataDir: 'data/crypto',
    keys: [{ name: key.cdpKey.name, publicKey: key.publicKey }],
    balances: { USD: 100_000, SOL: 5 },
    now: () => clock,
  });
  dynamo = await startLocalDynamo();
  Object.assign(process.env, {
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'local',
    AWS_SECRET_ACCESS_KEY: 'local',
  });
});

afterAll(async () => {
  await server?.close();
  await dynamo?.close();
});

describe('the crypto live gate', () => {
  it('refuses entries without a dry-run record, with 29 days, with a match under 95%, with an execution error; accepts a passing one', async () => {
    const ctx = await context(false);
    const day = '2026-01-05';
    expect(liveSleeveIds(ctx.config)).toEqual(['trend', 'breakout', 'bollinger']);
    const name = 'trend';
    await passResearch(ctx, name);
    expect(await entryRefusal(ctx, day, 'ETH-USD', name)).toMatch(/no dry-run validation for sleeve "trend"/);

    await ctx.store.putPaperValidation(
      dryRunRecord(ctx, name, {
        sessions: 29,
        figures: { minSessions: 29, tradesMatched: 100, executionFailures: 0 },
      }),
    );
    expect(await entryRefusal(ctx, day, 'ETH-USD', name)).toMatch(/covers 29 UTC days, fewer than 30/);

    await ctx.store.putPaperValidation(
      dryRunRecord(ctx, name, { figures: { minSessions: 30, tradesMatched: 94.4, executionFailures: 0 } }),
    );
    expect(await entryRefusal(ctx, day, 'ETH-USD', name)).toMatch(/matched 94\.4% .* under 95%/);

    await ctx.store.putPaperValidation(
      dryRunRecord(ctx, name, { figures: { minSessions: 30, tradesMatched: 100, executionFailures: 1 } }),
    );
    expect(await entryRefusal(ctx, day, 'ETH-USD', name)).toMatch(/had 1 execution errors/);

    await ctx.store.putPaperValidation(
      dryRunRecord(ctx, name, { decision: 'no-go', failed: ['tradesMatched'] }),
    );
    expect(await entryRefusal(ctx, day, 'ETH-USD', name)).toMatch(/did not pass: tradesMatched/);

    // A record of another sleeve hash (the sleeve was edited since, or another sleeve's): refused.
    await ctx.store.putPaperValidation(dryRunRecord(ctx, name, { configHash: 'f'.repeat(64) }));
    expect(await entryRefusal(ctx, day, 'ETH-USD', name)).toMatch(/not the deployed sleeve/);
    await ctx.store.putPaperValidation(
      dryRunRecord(ctx, name, { configHash: sleeveHash(ctx.config, 'breakout') }),
    );
    expect(await entryRefusal(ctx, day, 'ETH-USD', name)).toMatch(/not the deployed sleeve/);

    await ctx.store.putPaperValidation(dryRunRecord(ctx, name));
    expect(await entryRefusal(ctx, day, 'ETH-USD', name)).toBeNull();

    // Per sleeve: trend's records open trend only; breakout and bollinger stay closed.
    expect(await entryRefusal(ctx, day, 'ETH-USD', 'breakout')).toMatch(
      /no validation record for sleeve "breakout"/,
    );
    await passResearch(ctx, 'bollinger');
    expect(await entryRefusal(ctx, day, 'ETH-USD', 'bollinger')).toMatch(
      /no dry-run validation for sleeve "bollinger"/,
    );
    await ctx.store.putPaperValidation(dryRunRecord(ctx, 'bollinger'));
    expect(await entryRefusal(ctx, day, 'ETH-USD', 'bollinger')).toBeNull();
    // The config's name is no sleeve of a sleeves config.
    expect(await entryRefusal(ctx, day, 'ETH-USD', ctx.config.name)).toMatch(
      /unknown sleeve "crypto-sleeves"/,
    );
  });

  it('asks the research record too: a passing dry run alone does not open the gate', async () => {
    const ctx = await context(false);
    await ctx.store.putPaperValidation(dryRunRecord(ctx, 'breakout'));
    expect(await entryRefusal(ctx, '2026-01-05', 'ETH-USD', 'breakout')).toMatch(
      /no validation record for sleeve "breakout"/,
    );
  });

  it('a single-strategy crypto config: its one sleeve is its name, and its two records open it', async () => {
    const ctx = await context(false, undefined, 'test/fixtures/crypto-single-strategy.yaml');
    const name = ctx.config.name;
    expect(liveSleeveIds(ctx.config)).toEqual([name]);
    await passResearch(ctx, name);
    expect(await entryRefusal(ctx, '2026-01-05', 'ETH-USD')).toMatch(/no dry-run validation for sleeve/);
    await ctx.store.putPaperValidation(dryRunRecord(ctx, name, { sessions: 29 }));
    expect(await entryRefusal(ctx, '2026-01-05', 'ETH-USD')).toMatch(/covers 29 UTC days, fewer than 30/);
    await ctx.store.putPaperValidation(dryRunRecord(ctx, name));
    expect(await entryRefusal(ctx, '2026-01-05', 'ETH-USD')).toBeNull();
    expect(await entryRefusal(ctx, '2026-01-05', 'ETH-USD', name)).toBeNull();
  });

  it('execute-orders in the live stage: the entry is refused without the records, the exit is sent regardless', async () => {
    const ctx = await context(false);
    await marketOpenCheck(ctx, '2026-01-05T00:05:00Z');
    clock = Date.parse('2026-01-05T00:15:00Z');
    await ctx.store.createIntent(intent(ctx, 'entry', 'ETH-USD', 0.5));
    await ctx.store.createIntent(intent(ctx, 'exit', 'SOL-USD', 5));
    const result = await executeOrders(ctx, '2026-01-05T00:15:00Z');
    const byId = new Map(result.intents.map((i) => [i.clientOrderId, i]));
    expect(byId.get('qs-gate-ETH-USD-20260105-entry')).toMatchObject({ status: 'skipped' });
    expect(byId.get('qs-gate-ETH-USD-20260105-entry')?.reason).toMatch(/no validation record/);
    // The exit reached the exchange; the entry did not.
    expect(server.orders.map((o) => o.client_order_id)).toEqual(['qs-gate-SOL-USD-20260105-exit']);
  });

  it('with both records passing, the live stage sends the entry', async () => {
    const ctx = await context(false);
    await passResearch(ctx, 'trend');
    await ctx.store.putPaperValidation(dryRunRecord(ctx, 'trend'));
    await marketOpenCheck(ctx, '2026-01-05T00:05:00Z');
    await ctx.store.createIntent({
      ...intent(ctx, 'entry', 'ETH-USD', 0.5),
      clientOrderId: 'qs-gate2-ETH-USD-20260105-entry',
    });
    const result = await executeOrders(ctx, '2026-01-05T00:15:00Z');
    expect(
      result.intents.find((i) => i.clientOrderId === 'qs-gate2-ETH-USD-20260105-entry')?.status,
    ).not.toBe('skipped');
    expect(server.orders.map((o) => o.client_order_id)).toContain('qs-gate2-ETH-USD-20260105-entry');
  });

  it('the dry run never asks the gate, even on the live stage (it is where a sleeve earns the record)', async () => {
    const ctx = await context(true);
    expect(ctx.crypto?.dryRun).toBe(true);
    for (const sleeve of liveSleeveIds(ctx.config))
      expect(await entryRefusal(ctx, '2026-01-05', 'ETH-USD', sleeve)).toBeNull();
  });

  it('quantshift status shows the dry-run record per sleeve, in UTC days, and why the gate stays closed', async () => {
    const table = 'qs-gate-status';
    const ctx = await context(false, table);
    const status = async () => {
      const out = capture();
      const args = [
        '--table',
        table,
        '--endpoint',
        dynamo.endpoint,
        '--config',
        'config/crypto-strategy.yaml',
      ];
      expect(await statusCommand(args, { stdout: out.stream, stderr: capture().stream }, {})).toBe(0);
      return out.text();
    };
    const before = await status();
    for (const sleeve of ['trend', 'breakout', 'bollinger']) {
      expect(before).toContain(`  research ${sleeve}: none recorded`);
      expect(before).toContain(`  dry run ${sleeve}: none recorded`);
    }
    await passResearch(ctx, 'trend');
    await ctx.store.putPaperValidation(dryRunRecord(ctx, 'trend'));
    const after = await status();
    expect(after).toMatch(/ {2}research trend: PASS on this sleeve, job job-crypto-r/);
    expect(after).toContain(
      'dry run trend: GO on this sleeve, 30 UTC days 2025-12-05..2026-01-03, 2026-01-04T12:00:00Z',
    );
    expect(after).toContain('  dry run breakout: none recorded');
    // A record made on another sleeve's hash is shown as another version.
    await ctx.store.putPaperValidation(
      dryRunRecord(ctx, 'bollinger', { configHash: sleeveHash(ctx.config, 'trend') }),
    );
    expect(await status()).toMatch(/ {2}dry run bollinger: GO on another version \(/);
    await ctx.store.putPaperValidation(
      dryRunRecord(ctx, 'trend', { figures: { minSessions: 30, tradesMatched: 90, executionFailures: 0 } }),
    );
    expect(await status()).toMatch(/dry run trend: GO .*; gate closed: .*matched 90\.0% .* under 95%/);
  });
});
