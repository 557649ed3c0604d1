/**
 * `quantshift halt` / `resume` on the crypto bot's state table: the day of the action is the UTC
 * day (the crypto bot's session date), not New York's. In the crypto order window (00:00-01:00 UTC)
 * New York is still on the previous date: a halt there must skip the UTC day's entry intents.
 * Against local DynamoDB (dynalite) over HTTP, through the CLI's entry.
 */
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createStateTable, DynamoStateStore } from '../../shared/adapters/dynamodb/state-store.js';
import { type LocalDynamo, startLocalDynamo } from '../../shared/adapters/local/dynamodb.js';
import { runCli } from '../../shared/cli/main.js';
import type { IntentRecord, SessionRecord } from '../../shared/core/ports/state-store.js';

let dynamo: LocalDynamo;
let bare: NodeJS.ProcessEnv;

beforeAll(async () => {
  dynamo = await startLocalDynamo();
  bare = Object.fromEntries(
    Object.entries(process.env).filter(
      ([k]) =>
        !k.startsWith('AWS_') &&
        k !== 'STATE_TABLE' &&
        k !== 'DYNAMODB_ENDPOINT' &&
        k !== 'QUANTSHIFT_CONFIG',
    ),
  );
});
afterAll(async () => {
  await dynamo.close();
});

async function quantshift(args: readonly string[], env: NodeJS.ProcessEnv = bare) {
  let stdout = '';
  let stderr = '';
  const sink = (add: (text: string) => void) =>
    new Writable({
      write(chunk, _encoding, done) {
        add(String(chunk));
        done();
      },
    });
  const code = await runCli(
    args,
    { stdout: sink((t) => (stdout += t)), stderr: sink((t) => (stderr += t)) },
    env,
  );
  return { code, stdout, stderr };
}

const intent = (date: string, symbol: string): IntentRecord => ({
  clientOrderId: `qs-paper-crypto-${symbol}-${date.replaceAll('-', '')}-entry`,
  date,
  strategy: 'crypto-sleeves',
  sleeve: 'trend',
  symbol,
  purpose: 'entry',
  side: 'buy',
  qty: 0.5,
  type: 'market',
  timeInForce: 'ioc',
  referencePrice: 140,
  status: 'recorded',
  filledQty: 0,
  configHash: 'h',
  gitCommit: 'c',
  createdAt: `${date}T00:10:00.000Z`,
  updatedAt: `${date}T00:10:00.000Z`,
});

/** The crypto bot's session record of a UTC day (as its market-open check writes it). */
const utcSession = (date: string): SessionRecord => ({
  date,
  isOpen: true,
  openAt: `${date}T00:00:00.000Z`,
  closeAt: new Date(Date.parse(`${date}T00:00:00Z`) + 86_400_000).toISOString(),
  earlyClose: false,
  checkedAt: `${date}T00:05:00.000Z`,
});

describe('quantshift halt / resume on the crypto table: the UTC day', () => {
  it("halt in the 00:00-01:00 UTC order window skips the UTC day's entries (the table's sessions say crypto)", async () => {
    const table = 'qs-crypto-cli-state';
    await createStateTable(dynamo.client, table);
    const store = new DynamoStateStore(dynamo.client, table);
    // Tuesday 2026-01-06 00:30 UTC is Monday 19:30 in New York.
    await store.putSession(utcSession('2026-01-05'));
    await store.putSession(utcSession('2026-01-06'));
    await store.createIntent(intent('2026-01-06', 'SOL-USD'));
    await store.createIntent(intent('2026-01-05', 'BTC-USD'));
    const local = ['--endpoint', dynamo.endpoint, '--table', table, '--time', '2026-01-06T00:30:00Z'];
    const halt = await quantshift(['halt', '--reason', 'exchange incident', '--format', 'json', ...local]);
    expect(halt.stderr).toBe('');
    expect(halt.code).toBe(0);
    const doc = JSON.parse(halt.stdout) as { entriesSkipped: string[] };
    expect(doc.entriesSkipped).toEqual(['qs-paper-crypto-SOL-USD-20260106-entry']);
    expect((await store.getIntent('2026-01-06', 'qs-paper-crypto-SOL-USD-20260106-entry'))?.status).toBe(
      'skipped',
    );
    expect((await store.getIntent('2026-01-05', 'qs-paper-crypto-BTC-USD-20260105-entry'))?.status).toBe(
      'recorded',
    );
    const resume = await quantshift(['resume', '--reason', 'fixed', ...local]);
    expect(resume.code).toBe(0);
    expect((await store.getRiskState())?.state.killSwitch).toBeNull();
  });

  it('with --config naming the crypto config, the UTC day even before any session record exists', async () => {
    const table = 'qs-crypto-cli-state-2';
    await createStateTable(dynamo.client, table);
    const store = new DynamoStateStore(dynamo.client, table);
    await store.createIntent(intent('2026-01-06', 'ETH-USD'));
    const args = ['--endpoint', dynamo.endpoint, '--table', table, '--time', '2026-01-06T00:20:00Z'];
    const halt = await quantshift([
      'halt',
      '--reason',
      'x',
      '--format',
      'json',
      '--config',
      'config/crypto-strategy.yaml',
      ...args,
    ]);
    expect(halt.code).toBe(0);
    expect((JSON.parse(halt.stdout) as { entriesSkipped: string[] }).entriesSkipped).toEqual([
      'qs-paper-crypto-ETH-USD-20260106-entry',
    ]);
  });

  it("the table's sessions win over the shell's config, and an unreadable config never stops a halt", async () => {
    const table = 'qs-crypto-cli-state-3';
    await createStateTable(dynamo.client, table);
    const store = new DynamoStateStore(dynamo.client, table);
    await store.putSession(utcSession('2026-01-06'));
    await store.createIntent(intent('2026-01-06', 'SOL-USD'));
    const args = ['--endpoint', dynamo.endpoint, '--table', table, '--time', '2026-01-06T00:30:00Z'];
    // The operator's shell names the equity config: the crypto table's sessions still say the UTC day.
    const halt = await quantshift(['halt', '--reason', 'x', '--format', 'json', ...args], {
      ...bare,
      QUANTSHIFT_CONFIG: 'config/equity-strategy.yaml',
    });
    expect(halt.code).toBe(0);
    expect((JSON.parse(halt.stdout) as { entriesSkipped: string[] }).entriesSkipped).toEqual([
      'qs-paper-crypto-SOL-USD-20260106-entry',
    ]);
    // No session yet and a config that cannot be read: the halt is still set.
    const empty = 'qs-crypto-cli-state-4';
    await createStateTable(dynamo.client, empty);
    const bad = await quantshift(
      [
        'halt',
        '--reason',
        'x',
        '--endpoint',
        dynamo.endpoint,
        '--table',
        empty,
        '--time',
        '2026-01-06T00:30:00Z',
      ],
      { ...bare, QUANTSHIFT_CONFIG: 'config/no-such-file.yaml' },
    );
    expect(bad.stderr).toBe('');
    expect(bad.code).toBe(0);
    expect(
      (await new DynamoStateStore(dynamo.client, empty).getRiskState())?.state.killSwitch,
    ).not.toBeNull();
  });

  it("an equity table's sessions keep New York's date", async () => {
    const table = 'qs-equity-cli-state';
    await createStateTable(dynamo.client, table);
    const store = new DynamoStateStore(dynamo.client, table);
    await store.putSession({
      date: '2026-01-05',
      isOpen: true,
      openAt: '2026-01-05T14:30:00.000Z',
      closeAt: '2026-01-05T21:00:00.000Z',
      earlyClose: false,
      checkedAt: '2026-01-05T14:00:00.000Z',
    });
    await store.createIntent({ ...intent('2026-01-05', 'SPY'), timeInForce: 'opg' });
    await store.createIntent({ ...intent('2026-01-06', 'QQQ'), timeInForce: 'opg' });
    const args = ['--endpoint', dynamo.endpoint, '--table', table, '--time', '2026-01-06T00:30:00Z'];
    const halt = await quantshift(['halt', '--reason', 'x', '--format', 'json', ...args]);
    expect(halt.code).toBe(0);
    expect((JSON.parse(halt.stdout) as { entriesSkipped: string[] }).entriesSkipped).toEqual([
      'qs-paper-crypto-SPY-20260105-entry',
    ]);
  });
});
