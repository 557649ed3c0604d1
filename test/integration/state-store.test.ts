import { CreateTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createStateTable,
  DynamoStateStore,
  RECENT_WRITE_IDS,
  stateTableKeySchema,
  stateTtlDays,
} from '../../shared/adapters/dynamodb/state-store.js';
import { type LocalDynamo, startLocalDynamo } from '../../shared/adapters/local/dynamodb.js';
import { StateStoreCorruptError, StateStoreError, StateStoreInputError } from '../../shared/core/errors.js';
import type {
  AuditRecord,
  ClosedTradeRecord,
  EquitySnapshot,
  FillRecord,
  IntentRecord,
  PaperValidationRecord,
  PositionRecord,
  SleeveCloseFigures,
  ValidationRecord,
} from '../../shared/core/ports/state-store.js';
import { type BreakerEvent, initialRiskState, type RiskState } from '../../shared/core/risk/breakers.js';
import type { SleevesState } from '../../shared/core/trading/sleeves-close.js';
import { sleevesSnapshot } from '../../shared/live/sleeve-report.js';

let local: LocalDynamo;
let tables = 0;

beforeAll(async () => {
  local = await startLocalDynamo();
});

afterAll(async () => {
  await local?.close();
});

/** A store on a fresh table, so tests never see each other's items. */
async function freshStore(pageSize?: number): Promise<{ store: DynamoStateStore; table: string }> {
  tables += 1;
  const table = `state-test-${tables}`;
  await createStateTable(local.client, table);
  return { store: new DynamoStateStore(local.client, table, pageSize ? { pageSize } : {}), table };
}

async function rawItem(table: string, PK: string, SK: string) {
  return (await local.client.send(new GetCommand({ TableName: table, Key: { PK, SK } }))).Item;
}

async function putRaw(table: string, item: Record<string, unknown>) {
  await local.client.send(new PutCommand({ TableName: table, Item: item }));
}

function intent(overrides: Partial<IntentRecord> = {}): IntentRecord {
  return {
    clientOrderId: 'sma-SPY-2024-03-04-entry',
    date: '2024-03-04',
    strategy: 'sma-cross',
    symbol: 'SPY',
    purpose: 'entry',
    side: 'buy',
    qty: 10,
    type: 'market',
    timeInForce: 'opg',
    referencePrice: 512.34,
    protectiveStop: 487.22,
    status: 'recorded',
    filledQty: 0,
    configHash: 'c0ffee',
    gitCommit: 'abc1234',
    createdAt: '2024-03-04T14:10:00.000Z',
    updatedAt: '2024-03-04T14:10:00.000Z',
    ...overrides,
  };
}

function fill(overrides: Partial<FillRecord> = {}): FillRecord {
  return {
    executionId: 'exec-1',
    date: '2024-03-04',
    clientOrderId: 'sma-SPY-2024-03-04-entry',
    brokerOrderId: 'broker-1',
    symbol: 'SPY',
    side: 'buy',
    qty: 10,
    price: 512.5,
    time: '2024-03-04T14:30:01.000Z',
    ...overrides,
  };
}

function snapshot(date: string, overrides: Partial<EquitySnapshot> = {}): EquitySnapshot {
  return {
    date,
    equity: 100_000,
    cash: 50_000,
    dayPnl: 0,
    highWaterMark: 100_000,
    drawdownPct: 0,
    takenAt: `${date}T21:15:00.000Z`,
    ...overrides,
  };
}

function position(symbol: string, overrides: Partial<PositionRecord> = {}): PositionRecord {
  return {
    symbol,
    qty: 10,
    avgEntryPrice: 100,
    stop: 95,
    entryRef: 100,
    initialRisk: 5,
    sessionsHeld: 1,
    ...overrides,
  };
}

function trade(exitTime: string, overrides: Partial<ClosedTradeRecord> = {}): ClosedTradeRecord {
  return {
    strategy: 'sma-cross',
    symbol: 'SPY',
    side: 'long',
    qty: 10,
    entryDate: '2024-03-01',
    exitDate: exitTime.slice(0, 10),
    exitTime,
    entryPrice: 500,
    exitPrice: 512.5,
    pnlCents: 12_500,
    exitExecutionId: `exec-${exitTime}`,
    recordedAt: `${exitTime.slice(0, 10)}T20:15:00.000Z`,
    ...overrides,
  };
}

function audit(time: string, overrides: Partial<AuditRecord> = {}): AuditRecord {
  return { time, action: 'halt', by: 'ops@example.com', reason: 'maintenance', ...overrides };
}

describe('table', () => {
  it('exports the key schema the CDK stack reuses', () => {
    expect(stateTableKeySchema.partitionKey).toEqual({ name: 'PK', type: 'S' });
    expect(stateTableKeySchema.sortKey).toEqual({ name: 'SK', type: 'S' });
    expect(stateTableKeySchema.timeToLiveAttribute).toBe('ttl');
  });

  it('creating an existing table with the same key schema is a no-op', async () => {
    const { store, table } = await freshStore();
    await store.putValidation({
      strategy: 's',
      configHash: 'h',
      proceed: true,
      failed: [],
      jobId: 'j',
      decidedAt: '2024-03-01T00:00:00Z',
    });
    await createStateTable(local.client, table);
    expect(await store.getValidation('s')).toBeDefined();
  });

  it('refuses an existing table with another key schema', async () => {
    await local.client.send(
      new CreateTableCommand({
        TableName: 'state-other-schema',
        KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
        AttributeDefinitions: [{ AttributeName: 'id', AttributeType: 'S' }],
        BillingMode: 'PAY_PER_REQUEST',
      }),
    );
    await expect(createStateTable(local.client, 'state-other-schema')).rejects.toThrow(
      /exists with the key schema \[id:HASH\]/,
    );
  });

  it('wraps AWS failures in StateStoreError with the cause', async () => {
    const store = new DynamoStateStore(local.client, 'no-such-table');
    const error = await store.getSession('2024-03-04').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StateStoreError);
    expect((error as StateStoreError).operation).toBe('getSession');
    expect((error as Error).message).toContain('no-such-table');
    expect(((error as Error).cause as Error).name).toBe('ResourceNotFoundException');
  });
});

describe('sessions', () => {
  it('puts, gets and overwrites a session; a missing one is undefined', async () => {
    const { store, table } = await freshStore();
    expect(await store.getSession('2024-03-04')).toBeUndefined();
    const session = {
      date: '2024-03-04',
      isOpen: true,
      openAt: '2024-03-04T09:30:00-05:00',
      closeAt: '2024-03-04T16:00:00-05:00',
      earlyClose: false,
      checkedAt: '2024-03-04T14:00:00.000Z',
    };
    await store.putSession(session);
    expect(await store.getSession('2024-03-04')).toEqual(session);
    const closed = { ...session, isOpen: false, openAt: null, closeAt: null };
    await store.putSession(closed);
    expect(await store.getSession('2024-03-04')).toEqual(closed);
    expect((await rawItem(table, 'SESSION', '2024-03-04'))?.ttl).toBe(
      Date.parse('2024-03-04T00:00:00Z') / 1000 + stateTtlDays.session * 86_400,
    );
  });
});

describe('intents', () => {
  it('creates an intent once; a duplicate returns the stored one', async () => {
    const { store } = await freshStore();
    const first = intent();
    expect(await store.createIntent(first)).toEqual({ created: true, intent: first });
    const again = await store.createIntent(intent({ qty: 99, createdAt: '2024-03-04T14:11:00.000Z' }));
    expect(again).toEqual({ created: false, intent: first });
    expect(await store.getIntent('2024-03-04', first.clientOrderId)).toEqual(first);
    expect(await store.getIntent('2024-03-04', 'other')).toBeUndefined();
    expect(await store.getIntent('2024-03-05', first.clientOrderId)).toBeUndefined();
  });

  it('10 concurrent creates of the same id: exactly one is created, all see the same intent', async () => {
    const { store } = await freshStore();
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) => store.createIntent(intent({ qty: i + 1 }))),
    );
    expect(results.filter((r) => r.created)).toHaveLength(1);
    const winner = results.find((r) => r.created)?.intent;
    for (const r of results) expect(r.intent).toEqual(winner);
    expect(await store.listIntents('2024-03-04')).toEqual([winner]);
  });

  it('removes undefined fields and stores a ttl', async () => {
    const { store, table } = await freshStore();
    await store.createIntent(intent({ limitPrice: undefined, reason: undefined }));
    const item = await rawItem(table, 'INTENTS#2024-03-04', 'sma-SPY-2024-03-04-entry');
    expect(item).toBeDefined();
    expect(Object.keys(item ?? {})).not.toContain('limitPrice');
    expect(Object.keys(item ?? {})).not.toContain('reason');
    expect(item?.ttl).toBe(Date.parse('2024-03-04T00:00:00Z') / 1000 + stateTtlDays.intent * 86_400);
  });

  it('works through a document client without removeUndefinedValues', async () => {
    const { table } = await freshStore();
    const base = new DynamoDBClient({
      endpoint: local.endpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    });
    try {
      const store = new DynamoStateStore(DynamoDBDocumentClient.from(base), table);
      const created = await store.createIntent(intent({ stopPrice: undefined }));
      expect(created.created).toBe(true);
      expect(await store.getIntent('2024-03-04', 'sma-SPY-2024-03-04-entry')).toEqual(intent());
    } finally {
      base.destroy();
    }
  });

  it('transitions from an expected status and sets updatedAt from the patch', async () => {
    const { store } = await freshStore();
    await store.createIntent(intent());
    const submitted = await store.transitionIntent('2024-03-04', 'sma-SPY-2024-03-04-entry', ['recorded'], {
      status: 'submitted',
      brokerOrderId: 'broker-1',
      updatedAt: '2024-03-04T14:15:00.000Z',
    });
    expect(submitted).toEqual(
      intent({ status: 'submitted', brokerOrderId: 'broker-1', updatedAt: '2024-03-04T14:15:00.000Z' }),
    );
    const filled = await store.transitionIntent(
      '2024-03-04',
      'sma-SPY-2024-03-04-entry',
      ['submitted', 'accepted', 'partially_filled'],
      { status: 'filled', filledQty: 10, avgFillPrice: 512.5, updatedAt: '2024-03-04T14:30:02.000Z' },
    );
    expect(filled).toMatchObject({ status: 'filled', filledQty: 10, avgFillPrice: 512.5 });
    expect(await store.getIntent('2024-03-04', 'sma-SPY-2024-03-04-entry')).toEqual(filled);
  });

  it('a transition from a wrong status, or of a missing intent, is a conflict and changes nothing', async () => {
    const { store } = await freshStore();
    await store.createIntent(intent());
    const patch = { status: 'cancelled', updatedAt: '2024-03-04T15:00:00.000Z' } as const;
    expect(
      await store.transitionIntent(
        '2024-03-04',
        'sma-SPY-2024-03-04-entry',
        ['submitted', 'accepted'],
        patch,
      ),
    ).toEqual({ conflict: true });
    expect(await store.getIntent('2024-03-04', 'sma-SPY-2024-03-04-entry')).toEqual(intent());
    expect(await store.transitionIntent('2024-03-04', 'missing', ['recorded'], patch)).toEqual({
      conflict: true,
    });
    expect(await store.getIntent('2024-03-04', 'missing')).toBeUndefined();
  });

  it('of concurrent transitions from the same status exactly one wins', async () => {
    const { store } = await freshStore();
    await store.createIntent(intent());
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        store.transitionIntent('2024-03-04', 'sma-SPY-2024-03-04-entry', ['recorded'], {
          status: 'submitted',
          brokerOrderId: `broker-${i}`,
          updatedAt: '2024-03-04T14:15:00.000Z',
        }),
      ),
    );
    expect(results.filter((r) => !('conflict' in r))).toHaveLength(1);
  });

  it('a claim writes its token; the same claim again (an SDK retry after a lost answer) is still its own, another token is a conflict', async () => {
    const { store } = await freshStore();
    await store.createIntent(intent());
    const id = 'sma-SPY-2024-03-04-entry';
    const claim = { by: 'run-a', at: '2024-03-04T14:15:00.000Z' };
    const claimed = intent({ status: 'submitted', claimedBy: 'run-a', updatedAt: claim.at });
    expect(await store.claimIntent('2024-03-04', id, claim)).toEqual(claimed);
    // The write committed, its answer was lost: the retry fails the condition, the token says it is ours.
    expect(await store.claimIntent('2024-03-04', id, claim)).toEqual(claimed);
    expect(
      await store.claimIntent('2024-03-04', id, { by: 'run-b', at: '2024-03-04T14:15:01.000Z' }),
    ).toEqual({ conflict: true });
    expect(await store.getIntent('2024-03-04', id)).toEqual(claimed);
    // Moved on since (sent and accepted, or cancelled by the kill switch): no longer a claim to send.
    await store.transitionIntent('2024-03-04', id, ['submitted'], {
      status: 'accepted',
      updatedAt: '2024-03-04T14:15:02.000Z',
    });
    expect(await store.claimIntent('2024-03-04', id, claim)).toEqual({ conflict: true });
    expect(await store.claimIntent('2024-03-04', 'missing', claim)).toEqual({ conflict: true });
    await expect(store.claimIntent('2024-03-04', id, { ...claim, by: '' })).rejects.toThrow(/by/);
  });

  it('a settle writes its token; the same settle again (an SDK retry after a lost answer) is still its own, another token or status is a conflict', async () => {
    const { store } = await freshStore();
    await store.createIntent(intent());
    const id = 'sma-SPY-2024-03-04-entry';
    const patch = { status: 'expired', reason: 'not sent', updatedAt: '2024-03-04T14:15:00.000Z' } as const;
    const expired = intent({ ...patch, settledBy: 'settle-a' });
    expect(await store.settleIntent('2024-03-04', id, ['recorded'], patch, 'settle-a')).toEqual(expired);
    // The write committed, its answer was lost: the retry fails the condition, the token says it is ours.
    expect(await store.settleIntent('2024-03-04', id, ['recorded'], patch, 'settle-a')).toEqual(expired);
    expect(await store.settleIntent('2024-03-04', id, ['recorded'], patch, 'settle-b')).toEqual({
      conflict: true,
    });
    expect(
      await store.settleIntent('2024-03-04', id, ['recorded'], { ...patch, status: 'skipped' }, 'settle-a'),
    ).toEqual({ conflict: true });
    expect(await store.getIntent('2024-03-04', id)).toEqual(expired);
    expect(await store.settleIntent('2024-03-04', 'missing', ['recorded'], patch, 'settle-a')).toEqual({
      conflict: true,
    });
    await expect(store.settleIntent('2024-03-04', id, ['recorded'], patch, '')).rejects.toThrow(/by/);
  });

  it('a transition or settle with an updatedAt condition wins only while updatedAt is still the one read: of a sender stamping it and a supersede settling it on the same read, exactly one wins', async () => {
    const { store } = await freshStore();
    const id = 'sma-SPY-2024-03-04-entry';
    const read = intent();
    await store.createIntent(read);
    const stamp = { updatedAt: '2024-03-04T14:20:00.000Z' };
    const stale = { updatedAt: '2024-03-04T14:00:00.000Z' };
    expect(await store.transitionIntent('2024-03-04', id, ['recorded'], stamp, stale)).toEqual({
      conflict: true,
    });
    expect(await store.getIntent('2024-03-04', id)).toEqual(read);
    const skip = { status: 'skipped', reason: 'superseded', updatedAt: '2024-03-04T14:21:00.000Z' } as const;
    // Both on the same read, any order: exactly one wins.
    for (const senderFirst of [true, false]) {
      const day = senderFirst ? '2024-03-05' : '2024-03-06';
      const mine = intent({ date: day });
      await store.createIntent(mine);
      const unchanged = { updatedAt: mine.updatedAt };
      const sender = () => store.transitionIntent(day, id, ['recorded'], stamp, unchanged);
      const supersede = () => store.settleIntent(day, id, ['recorded'], skip, 'supersede-a', unchanged);
      const [first, second] = senderFirst
        ? [await sender(), await supersede()]
        : [await supersede(), await sender()];
      expect(first).not.toHaveProperty('conflict');
      expect(second).toEqual({ conflict: true });
      expect((await store.getIntent(day, id))?.status).toBe(senderFirst ? 'recorded' : 'skipped');
    }
    // A settle whose answer was lost is still its own under the condition (its token).
    const day = '2024-03-07';
    const mine = intent({ date: day });
    await store.createIntent(mine);
    const settled = await store.settleIntent(day, id, ['recorded'], skip, 'supersede-b', {
      updatedAt: mine.updatedAt,
    });
    expect(
      await store.settleIntent(day, id, ['recorded'], skip, 'supersede-b', { updatedAt: mine.updatedAt }),
    ).toEqual(settled);
    await expect(
      store.transitionIntent('2024-03-04', id, ['recorded'], stamp, { updatedAt: 'yesterday' }),
    ).rejects.toThrow(/unchanged/);
  });

  it('of concurrent claims of one intent exactly one wins', async () => {
    const { store } = await freshStore();
    await store.createIntent(intent());
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        store.claimIntent('2024-03-04', 'sma-SPY-2024-03-04-entry', {
          by: `run-${i}`,
          at: '2024-03-04T14:15:00.000Z',
        }),
      ),
    );
    expect(results.filter((r) => !('conflict' in r))).toHaveLength(1);
  });

  it('refuses a patch without updatedAt, with a key field or with an empty from', async () => {
    const { store } = await freshStore();
    await store.createIntent(intent());
    const id = 'sma-SPY-2024-03-04-entry';
    await expect(
      store.transitionIntent('2024-03-04', id, ['recorded'], { status: 'submitted' }),
    ).rejects.toThrow(/invalid updatedAt/);
    await expect(
      store.transitionIntent('2024-03-04', id, ['recorded'], {
        updatedAt: '2024-03-04T14:15:00.000Z',
        clientOrderId: 'x',
      } as never),
    ).rejects.toBeInstanceOf(StateStoreInputError);
    await expect(
      store.transitionIntent('2024-03-04', id, [], { updatedAt: '2024-03-04T14:15:00.000Z' }),
    ).rejects.toThrow(/invalid from/);
  });

  it('lists the intents of one date across pages, in client order id order', async () => {
    const { store } = await freshStore(2);
    const ids = ['e', 'a', 'g', 'c', 'b', 'f', 'd'];
    for (const id of ids) await store.createIntent(intent({ clientOrderId: id }));
    await store.createIntent(intent({ clientOrderId: 'z', date: '2024-03-05' }));
    await store.createIntent(intent({ clientOrderId: 'y', date: '2024-03-03' }));
    const listed = await store.listIntents('2024-03-04');
    expect(listed.map((i) => i.clientOrderId)).toEqual([...ids].sort());
    expect(await store.listIntents('2024-03-06')).toEqual([]);
  });
});

describe('fills', () => {
  it('appends a fill once; a replay is false and changes nothing', async () => {
    const { store, table } = await freshStore();
    expect(await store.appendFill(fill())).toBe(true);
    expect(await store.appendFill(fill({ price: 999 }))).toBe(false);
    expect(await store.listFills('2024-03-04')).toEqual([fill()]);
    expect((await rawItem(table, 'FILLS#2024-03-04', 'exec-1'))?.ttl).toBe(
      Date.parse('2024-03-04T00:00:00Z') / 1000 + stateTtlDays.fill * 86_400,
    );
  });

  it('concurrent replays of one execution append it once', async () => {
    const { store } = await freshStore();
    const results = await Promise.all(Array.from({ length: 6 }, () => store.appendFill(fill())));
    expect(results.filter(Boolean)).toHaveLength(1);
  });

  it('lists the fills of one date across pages', async () => {
    const { table } = await freshStore();
    const counted = DynamoDBDocumentClient.from(local.client);
    let queries = 0;
    counted.middlewareStack.add(
      (next, context) => (args) => {
        if (context.commandName === 'QueryCommand') queries += 1;
        return next(args);
      },
      { step: 'initialize' },
    );
    const store = new DynamoStateStore(counted, table, { pageSize: 3 });
    for (let i = 0; i < 10; i += 1) {
      await store.appendFill(
        fill({ executionId: `exec-${String(i).padStart(2, '0')}`, clientOrderId: null }),
      );
    }
    await store.appendFill(fill({ executionId: 'exec-other-day', date: '2024-03-05' }));
    const listed = await store.listFills('2024-03-04');
    expect(listed).toHaveLength(10);
    expect(listed[0]).toEqual(fill({ executionId: 'exec-00', clientOrderId: null }));
    expect(queries).toBeGreaterThanOrEqual(4);
    expect(await store.listFills('2024-03-05')).toHaveLength(1);
  });
});

describe('equity snapshots', () => {
  it('lists an inclusive date range across pages, oldest first; a day has one snapshot', async () => {
    const { store, table } = await freshStore(2);
    const dates = ['2024-03-01', '2024-03-04', '2024-03-05', '2024-03-06', '2024-03-07', '2024-03-08'];
    for (const date of dates) await store.putEquitySnapshot(snapshot(date));
    await store.putEquitySnapshot(snapshot('2024-03-05', { equity: 101_000 }));
    const listed = await store.listEquitySnapshots('2024-03-04', '2024-03-07');
    expect(listed.map((s) => s.date)).toEqual(['2024-03-04', '2024-03-05', '2024-03-06', '2024-03-07']);
    expect(listed[1]?.equity).toBe(101_000);
    expect(await store.listEquitySnapshots('2024-03-09', '2024-12-31')).toEqual([]);
    expect((await store.listEquitySnapshots('2024-03-08', '2024-03-08')).map((s) => s.date)).toEqual([
      '2024-03-08',
    ]);
    expect(Object.keys((await rawItem(table, 'EQUITY', '2024-03-04')) ?? {})).not.toContain('ttl');
    await expect(store.listEquitySnapshots('2024-03-08', '2024-03-01')).rejects.toBeInstanceOf(
      StateStoreInputError,
    );
  });

  it('round-trips numbers exactly', async () => {
    const { store } = await freshStore();
    const values = [
      0.1 + 0.2,
      1e-9,
      123456789.123456,
      -0.000001234,
      Number.MAX_SAFE_INTEGER,
      -98765.4321,
      1 / 3,
    ];
    for (const [i, value] of values.entries()) {
      const date = `2024-04-${String(i + 1).padStart(2, '0')}`;
      await store.putEquitySnapshot(
        snapshot(date, { equity: value, dayPnl: -value, drawdownPct: value / 7 }),
      );
    }
    const listed = await store.listEquitySnapshots('2024-04-01', '2024-04-30');
    expect(listed).toHaveLength(values.length);
    for (const [i, value] of values.entries()) {
      expect(Object.is(listed[i]?.equity, value)).toBe(true);
      expect(Object.is(listed[i]?.dayPnl, -value)).toBe(true);
      expect(Object.is(listed[i]?.drawdownPct, value / 7)).toBe(true);
    }
  });

  it('refuses numbers DynamoDB cannot store exactly, naming the field', async () => {
    const { store } = await freshStore();
    await expect(store.putEquitySnapshot(snapshot('2024-03-04', { equity: Number.NaN }))).rejects.toThrow(
      /invalid equity/,
    );
    await expect(store.putEquitySnapshot(snapshot('2024-03-04', { cash: 2 ** 60 }))).rejects.toThrow(
      /invalid cash/,
    );
    await expect(store.putEquitySnapshot(snapshot('2024-02-30'))).rejects.toThrow(/invalid date/);
  });
});

describe('positions', () => {
  it('returns the latest positions by date; a date is overwritten', async () => {
    const { store } = await freshStore();
    expect(await store.getLatestPositions()).toBeUndefined();
    await store.putPositions('2024-03-04', [position('SPY'), position('QQQ', { stop: null, qty: 0.5 })]);
    await store.putPositions('2024-03-06', [position('AAPL', { avgEntryPrice: 123456789.123456 })]);
    await store.putPositions('2024-03-05', [position('MSFT')]);
    expect(await store.getLatestPositions()).toEqual({
      date: '2024-03-06',
      positions: [position('AAPL', { avgEntryPrice: 123456789.123456 })],
    });
    await store.putPositions('2024-03-06', []);
    expect(await store.getLatestPositions()).toEqual({ date: '2024-03-06', positions: [] });
  });

  it('returns the latest positions dated before a day; entry dates round-trip', async () => {
    const { store } = await freshStore();
    await store.putPositions('2024-03-04', [position('SPY', { entryDate: '2024-03-01' })]);
    await store.putPositions('2024-03-05', [position('QQQ')]);
    expect(await store.getLatestPositions('2024-03-04')).toBeUndefined();
    expect(await store.getLatestPositions('2024-03-05')).toEqual({
      date: '2024-03-04',
      positions: [position('SPY', { entryDate: '2024-03-01' })],
    });
    expect((await store.getLatestPositions('2024-03-06'))?.date).toBe('2024-03-05');
    expect((await store.getLatestPositions())?.date).toBe('2024-03-05');
    await expect(store.getLatestPositions('2024-3-6')).rejects.toBeInstanceOf(StateStoreInputError);
    await expect(
      store.putPositions('2024-03-04', [position('SPY', { entryDate: '2024-02-30' })]),
    ).rejects.toThrow(/invalid positions\.0\.entryDate/);
  });

  it('keeps the fills a list booked (per broker order) and its time; a list without them reads as before', async () => {
    const { store } = await freshStore();
    // A list written before either was kept.
    await store.putPositions('2024-03-04', [position('SPY')]);
    expect(await store.getLatestPositions()).toEqual({ date: '2024-03-04', positions: [position('SPY')] });
    await store.putPositions('2024-03-05', [position('SPY')], '2024-03-05T14:00:00.000Z', {
      'order-1': 53,
      'order-2': 0.25,
    });
    expect(await store.getLatestPositions()).toEqual({
      date: '2024-03-05',
      positions: [position('SPY')],
      writtenAt: '2024-03-05T14:00:00.000Z',
      bookedFills: { 'order-1': 53, 'order-2': 0.25 },
    });
    await expect(
      store.putPositions('2024-03-05', [position('SPY')], '2024-03-05T14:00:00.000Z', { 'order-1': -1 }),
    ).rejects.toThrow(/bookedFills\.order-1/);
    await expect(
      store.putPositions('2024-03-05', [position('SPY')], '2024-03-05T14:00:00.000Z', {
        'order-1': Number.NaN,
      }),
    ).rejects.toThrow(/bookedFills\.order-1/);
  });

  it('refuses a (sleeve, symbol) listed twice; two sleeves, and a sleeve and the UNASSIGNED bucket, may hold one symbol', async () => {
    const { store } = await freshStore();
    await expect(store.putPositions('2024-03-04', [position('SPY'), position('SPY')])).rejects.toThrow(
      /invalid positions: a \(sleeve, symbol\) appears twice/,
    );
    const two = [position('SPY', { sleeve: 'trend' }), position('SPY', { sleeve: 'rsi', qty: 3 })];
    await store.putPositions('2024-03-04', two);
    expect((await store.getLatestPositions())?.positions).toEqual(two);
    await store.putPositions('2024-03-04', [
      position('SPY'),
      { ...position('SPY'), qty: 5, sleeve: 'UNASSIGNED' },
    ]);
    expect((await store.getLatestPositions())?.positions.map((p) => [p.sleeve ?? null, p.qty])).toEqual([
      [null, position('SPY').qty],
      ['UNASSIGNED', 5],
    ]);
  });
});

describe('closed trades', () => {
  it('records a trade once under its key; a retry is false and keeps the first', async () => {
    const { store, table } = await freshStore();
    const first = trade('2024-03-04T14:30:00.000Z');
    expect(await store.recordClosedTrade(first)).toBe(true);
    expect(
      await store.recordClosedTrade({ ...first, pnlCents: -1, recordedAt: '2024-03-05T20:15:00.000Z' }),
    ).toBe(false);
    // The same instant written with an offset is the same key.
    expect(await store.recordClosedTrade({ ...first, exitTime: '2024-03-04T09:30:00-05:00' })).toBe(false);
    expect(await store.listClosedTrades('sma-cross', 50)).toEqual([first]);
    const item = await rawItem(table, 'TRADES#sma-cross', '2024-03-04T14:30:00.000Z#SPY');
    expect(item).toMatchObject({ entity: 'closed-trade', pnlCents: 12_500 });
    expect(item?.ttl).toBe(Date.parse('2024-03-04T00:00:00Z') / 1000 + stateTtlDays.closedTrade * 86_400);
  });

  it('of concurrent records of one trade exactly one is written', async () => {
    const { store } = await freshStore();
    const results = await Promise.all(
      Array.from({ length: 8 }, () => store.recordClosedTrade(trade('2024-03-04T21:00:00.000Z'))),
    );
    expect(results.filter(Boolean)).toHaveLength(1);
    expect(await store.listClosedTrades('sma-cross', 10)).toHaveLength(1);
  });

  it('lists the most recent N of a strategy by exit time, oldest first, across pages', async () => {
    const { store } = await freshStore(3);
    const days = Array.from({ length: 12 }, (_, i) => `2024-03-${String(i + 1).padStart(2, '0')}`);
    // Written out of order; two symbols close at the same open on the last day.
    for (const day of [...days].reverse()) {
      await store.recordClosedTrade(trade(`${day}T14:30:00.000Z`, { pnlCents: Number(day.slice(8)) }));
    }
    await store.recordClosedTrade(trade('2024-03-12T14:30:00.000Z', { symbol: 'AAPL', pnlCents: -7 }));
    await store.recordClosedTrade(trade('2024-03-12T20:00:00.000Z', { symbol: 'QQQ', pnlCents: 99 }));
    await store.recordClosedTrade(trade('2024-03-13T14:30:00.000Z', { strategy: 'other', pnlCents: 5 }));
    const recent = await store.listClosedTrades('sma-cross', 5);
    expect(recent.map((t) => [t.exitTime.slice(0, 10), t.symbol, t.pnlCents])).toEqual([
      ['2024-03-10', 'SPY', 10],
      ['2024-03-11', 'SPY', 11],
      ['2024-03-12', 'AAPL', -7],
      ['2024-03-12', 'SPY', 12],
      ['2024-03-12', 'QQQ', 99],
    ]);
    expect(await store.listClosedTrades('sma-cross', 100)).toHaveLength(14);
    expect(await store.listClosedTrades('other', 50)).toHaveLength(1);
    expect(await store.listClosedTrades('nothing-yet', 50)).toEqual([]);
  });

  it('refuses a bad trade or limit, naming the field; a corrupt item names its key', async () => {
    const { store, table } = await freshStore();
    await expect(
      store.recordClosedTrade(trade('2024-03-04T14:30:00.000Z', { pnlCents: 12.5 })),
    ).rejects.toThrow(/invalid pnlCents/);
    await expect(store.recordClosedTrade(trade('2024-03-04T14:30:00.000Z', { qty: 0 }))).rejects.toThrow(
      /invalid qty/,
    );
    await expect(store.listClosedTrades('sma-cross', 0)).rejects.toBeInstanceOf(StateStoreInputError);
    await expect(store.listClosedTrades('sma-cross', 2.5)).rejects.toThrow(/invalid limit/);
    await putRaw(table, {
      ...trade('2024-03-04T14:30:00.000Z'),
      PK: 'TRADES#sma-cross',
      SK: '2024-03-05T14:30:00.000Z#SPY',
    });
    await expect(store.listClosedTrades('sma-cross', 5)).rejects.toThrow(
      /SK=2024-03-05T14:30:00.000Z#SPY: corrupt field exitTime/,
    );
  });
});

describe('risk state', () => {
  const state: RiskState = initialRiskState(100_000);

  it('versions the sleeves state; a stale version is a conflict; every item carries schemaVersion 2', async () => {
    const { store, table } = await freshStore();
    const book = (id: string, cash: number) => ({
      id,
      initialCash: 5_000_000,
      cash,
      transfersIn: 0,
      costs: 0,
      positions:
        id === 'trend'
          ? [
              {
                symbol: 'SPY',
                side: 1 as const,
                qty: 10,
                entryPrice: 400.5,
                entryTime: Date.UTC(2024, 2, 4),
                entryNotional: 400_500,
                entryCommission: 0,
                stop: 390,
                takeProfit: null,
                entryRef: 401,
                initialRisk: 11,
                sessionsHeld: 2,
              },
            ]
          : [],
    });
    const sleeves = {
      sleeves: ['trend', 'rsi'],
      books: [book('trend', 4_599_500), book('rsi', 5_000_000)],
      account: { cash: 9_599_500, positions: [{ symbol: 'SPY', qty: 10 }] },
      allocation: {
        closes: 3,
        weights: [0.5, 0.5],
        returnHistory: [
          [0.01, -0.002],
          [0, 0.003],
        ],
        prevEquity: [5_010_000, 5_000_000],
        nav: [50_100, 50_000],
        lastCloseTime: Date.UTC(2024, 2, 4),
        lastRebalanceTime: null,
        breaches: [],
      },
    };
    expect(await store.getSleevesState()).toBeUndefined();
    const record = { bookedThrough: '2024-03-04', booked: sleeves, decided: null };
    expect(await store.putSleevesState(record, 0)).toEqual({ version: 1 });
    expect(await store.putSleevesState(record, 0)).toEqual({ conflict: true });
    expect(await store.getSleevesState()).toEqual({ record, version: 1 });
    await expect(
      store.putSleevesState(
        { ...record, booked: { ...sleeves, account: { ...sleeves.account, cash: 1.5 } } },
        1,
      ),
    ).rejects.toThrow(/booked\.account\.cash: not whole cents/);
    await store.putOrderTag({ tag: '0a1b2c3d', stage: 'paper', sleeves: ['rsi', 'trend'] });
    await store.putOrderTag({ tag: '0a1b2c3d', stage: 'paper', sleeves: ['other'] });
    expect(await store.getOrderTag('0a1b2c3d')).toEqual({
      tag: '0a1b2c3d',
      stage: 'paper',
      sleeves: ['rsi', 'trend'],
    });
    const raw = await local.client.send(
      new GetCommand({ TableName: table, Key: { PK: 'ORDER_TAGS', SK: '0a1b2c3d' } }),
    );
    expect(raw.Item?.schemaVersion).toBe(2);
  });

  it('keeps one dated sleeves snapshot per session: a rerun rewrites the day, a range lists across pages, in date order', async () => {
    const { store, table } = await freshStore(1);
    const state: SleevesState = {
      sleeves: ['trend', 'rsi'],
      books: [
        {
          id: 'trend',
          initialCash: 5_000_000,
          cash: 4_599_500,
          transfersIn: 0,
          costs: 0,
          positions: [
            {
              symbol: 'SPY',
              side: 1,
              qty: 10,
              entryPrice: 400.5,
              entryTime: Date.UTC(2024, 2, 4),
              entryNotional: 400_500,
              entryCommission: 0,
              stop: 390,
              takeProfit: null,
              entryRef: 401,
              initialRisk: 11,
              sessionsHeld: 2,
            },
          ],
        },
        { id: 'rsi', initialCash: 5_000_000, cash: 5_000_000, transfersIn: 0, costs: 0, positions: [] },
      ],
      account: { cash: 9_599_500, positions: [{ symbol: 'SPY', qty: 10 }] },
      allocation: {
        closes: 3,
        weights: [0.5, 0.5],
        returnHistory: [[0.01, -0.002]],
        prevEquity: [5_000_000, 5_000_000],
        nav: [50_100, 50_000],
        lastCloseTime: Date.UTC(2024, 2, 4),
        lastRebalanceTime: null,
        breaches: [],
      },
    };
    // SPY at 410: trend is worth 45,995 + 4,100 = 50,095, a return of 0.19 % on the 50,000 its
    // last close left it, so its NAV moves from 50,100 by the same.
    const snap = (date: string, price: number) =>
      sleevesSnapshot(date, state, () => price, `${date}T21:15:00.000Z`);
    const first = snap('2024-03-05', 410);
    expect(first.sleeves[0]).toEqual({
      id: 'trend',
      cashCents: 4_599_500,
      equity: 50_095,
      nav: 50_100 * (5_009_500 / 5_000_000),
      navBefore: 50_100,
      inMarket: true,
    });
    expect(first.sleeves[1]).toMatchObject({ id: 'rsi', equity: 50_000, nav: 50_000, inMarket: false });
    await store.putSleevesSnapshot(first);
    await store.putSleevesSnapshot(snap('2024-03-06', 420));
    await store.putSleevesSnapshot(snap('2024-03-07', 430));
    // A rerun of 2024-03-06 rewrites its item.
    const rerun = snap('2024-03-06', 421);
    await store.putSleevesSnapshot(rerun);
    const listed = await store.listSleevesSnapshots('2024-03-05', '2024-03-06');
    expect(listed).toEqual([first, rerun]);
    expect((await store.listSleevesSnapshots('2024-03-01', '2024-03-31')).map((s) => s.date)).toEqual([
      '2024-03-05',
      '2024-03-06',
      '2024-03-07',
    ]);
    expect((await rawItem(table, 'SLEEVES_SNAPSHOT', '2024-03-07'))?.schemaVersion).toBe(2);
    await expect(
      store.putSleevesSnapshot({
        ...first,
        sleeves: [{ ...(first.sleeves[0] as SleeveCloseFigures), cashCents: 0.5 }],
      }),
    ).rejects.toThrow(/sleeves\.0\.cashCents: not whole cents/);
    await expect(store.listSleevesSnapshots('2024-03-07', '2024-03-05')).rejects.toThrow(
      StateStoreInputError,
    );
  });

  it('versions the risk state; a stale version is a conflict', async () => {
    const { store } = await freshStore();
    expect(await store.getRiskState()).toBeUndefined();
    expect(await store.putRiskState(state, 0)).toEqual({ version: 1 });
    expect(await store.putRiskState(state, 0)).toEqual({ conflict: true });
    const tripped: RiskState = {
      ...state,
      day: '2024-03-04',
      lastEquity: 97_000.01,
      dailyLossTrippedOn: '2024-03-04',
      drawdownHalt: { since: 1_709_571_600_000, day: '2024-03-04', sessions: 0 },
      killSwitch: { since: 1_709_571_600_000, reason: 'test', by: 'ops' },
    };
    expect(await store.putRiskState(tripped, 1)).toEqual({ version: 2 });
    expect(await store.putRiskState(state, 1)).toEqual({ conflict: true });
    expect(await store.putRiskState(state, 5)).toEqual({ conflict: true });
    expect(await store.getRiskState()).toEqual({ state: tripped, version: 2 });
  });

  it("a versioned item lists its last RECENT_WRITE_IDS write ids, newest first; an older item's writeId is carried on", async () => {
    const { store, table } = await freshStore();
    // An item written before the list: its one writeId.
    await putRaw(table, { PK: 'RISK', SK: 'STATE', version: 1, state, writeId: 'older-write' });
    expect(await store.putRiskState(state, 1)).toEqual({ version: 2 });
    const writeIds = async () => ((await rawItem(table, 'RISK', 'STATE'))?.writeIds ?? []) as string[];
    const second = await writeIds();
    expect(second).toHaveLength(2);
    expect(second[1]).toBe('older-write');
    expect((await rawItem(table, 'RISK', 'STATE'))?.writeId).toBeUndefined();
    const ids: string[] = [...second].reverse();
    for (let version = 2; version < 2 + RECENT_WRITE_IDS; version++) {
      expect(await store.putRiskState({ ...state, lastEquity: version }, version)).toEqual({
        version: version + 1,
      });
      ids.push((await writeIds())[0] as string);
    }
    const stored = await writeIds();
    expect(new Set(ids).size).toBe(RECENT_WRITE_IDS + 2);
    expect(stored).toEqual(ids.slice(-RECENT_WRITE_IDS).reverse());
    // A list that is not one of ids is a corrupt item, named.
    await putRaw(table, { PK: 'RISK', SK: 'STATE', version: 20, state, writeIds: 'x' });
    await expect(store.putRiskState(state, 20)).rejects.toThrow(/RISK.*writeIds/);
  });

  it('a write at the version the store just read or wrote reads nothing more; at another, its condition decides', async () => {
    const { table } = await freshStore();
    const counted = DynamoDBDocumentClient.from(local.client);
    let gets = 0;
    counted.middlewareStack.add(
      (next, context) => (args) => {
        if (context.commandName === 'GetItemCommand') gets += 1;
        return next(args);
      },
      { step: 'initialize' },
    );
    const store = new DynamoStateStore(counted, table);
    expect(await store.getRiskState()).toBeUndefined();
    expect(await store.putRiskState(state, 0)).toEqual({ version: 1 });
    expect(gets).toBe(1);
    expect(await store.putRiskState({ ...state, lastEquity: 1 }, 1)).toEqual({ version: 2 });
    expect(await store.getRiskState()).toMatchObject({ version: 2 });
    expect(await store.putRiskState({ ...state, lastEquity: 2 }, 2)).toEqual({ version: 3 });
    expect(gets).toBe(2);
    // Another writer moves the item on: the write at the version this store saw is a conflict.
    const other = new DynamoStateStore(DynamoDBDocumentClient.from(local.client), table);
    expect(await other.putRiskState({ ...state, lastEquity: 3 }, 3)).toEqual({ version: 4 });
    expect(await store.putRiskState({ ...state, lastEquity: 4 }, 3)).toEqual({ conflict: true });
    expect(await store.getRiskState()).toEqual({ state: { ...state, lastEquity: 3 }, version: 4 });
    expect(await store.putRiskState({ ...state, lastEquity: 5 }, 4)).toEqual({ version: 5 });
    const ids = ((await rawItem(table, 'RISK', 'STATE'))?.writeIds ?? []) as string[];
    expect(ids).toHaveLength(5);
    expect(new Set(ids).size).toBe(5);
  });

  it('of concurrent writes at the same expected version exactly one wins', async () => {
    const { store } = await freshStore();
    await store.putRiskState(state, 0);
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) => store.putRiskState({ ...state, lastEquity: 90_000 + i }, 1)),
    );
    const winners = results.flatMap((r, i) => ('version' in r ? [i] : []));
    expect(winners).toHaveLength(1);
    expect(await store.getRiskState()).toEqual({
      state: { ...state, lastEquity: 90_000 + (winners[0] ?? -1) },
      version: 2,
    });
  });

  it('refuses a negative or fractional expected version', async () => {
    const { store } = await freshStore();
    await expect(store.putRiskState(state, -1)).rejects.toThrow(/invalid expectedVersion/);
    await expect(store.putRiskState(state, 0.5)).rejects.toThrow(/invalid expectedVersion/);
  });

  it('appends breaker events idempotently and lists them by time', async () => {
    const { store } = await freshStore(2);
    const events: BreakerEvent[] = [
      {
        time: 1_709_571_600_000,
        breaker: 'daily-loss',
        action: 'trip',
        reason: 'daily loss 3% ≥ limit 3%',
        figures: { dayStartEquity: 100_000, equity: 97_000, lossPct: 3, limitPct: 3 },
      },
      {
        time: 1_709_571_600_000,
        breaker: 'drawdown',
        action: 'trip',
        reason: 'drawdown',
        figures: { drawdownPct: 10.01 },
      },
      {
        time: 1_709_830_800_000,
        breaker: 'drawdown',
        action: 'reset',
        reason: 'cool-off over',
        by: 'ops',
        figures: { equity: 0.1 + 0.2 },
      },
    ];
    await store.appendBreakerEvents(events);
    await store.appendBreakerEvents(events);
    await store.appendBreakerEvents([]);
    const all = await store.listBreakerEvents(0, 2_000_000_000_000);
    expect(all).toHaveLength(3);
    expect(all).toEqual(expect.arrayContaining(events));
    expect(all[2]).toEqual(events[2]);
    expect(await store.listBreakerEvents(1_709_571_600_000, 1_709_571_600_000)).toHaveLength(2);
    expect(await store.listBreakerEvents(1_709_571_600_001, 1_709_830_799_999)).toEqual([]);
  });
});

describe('audit', () => {
  it('lists records in a date or time range, oldest first; a replayed record is kept once', async () => {
    const { store } = await freshStore(2);
    const records = [
      audit('2024-03-04T15:00:00.000Z'),
      audit('2024-03-04T15:00:00.000Z', {
        action: 'resume',
        reason: 'done',
        details: { ticket: 42, ok: true },
      }),
      audit('2024-03-05T10:00:00-05:00', {
        action: 'drawdown-reset',
        details: { nested: { list: [1, 'x', null] } },
      }),
      audit('2024-03-06T09:00:00Z', { action: 'drift', by: 'reconciler' }),
      audit('2024-03-07T23:59:59.999Z'),
    ];
    for (const record of records) await store.appendAudit(record);
    await store.appendAudit(records[0] as AuditRecord);
    expect(await store.listAudit('2024-03-01', '2024-03-31')).toHaveLength(5);
    const day = await store.listAudit('2024-03-04', '2024-03-04');
    expect(day).toHaveLength(2);
    expect(day).toEqual(expect.arrayContaining([records[0], records[1]]));
    expect(await store.listAudit('2024-03-05T15:00:00.000Z', '2024-03-06T09:00:00.000Z')).toEqual([
      records[2],
      records[3],
    ]);
    expect(await store.listAudit('2024-03-07', '2024-03-07')).toEqual([records[4]]);
    await expect(store.listAudit('2024-03-07', '2024-03-01')).rejects.toBeInstanceOf(StateStoreInputError);
    await expect(store.listAudit('yesterday', '2024-03-01')).rejects.toThrow(/invalid from/);
  });
});

describe('validation records', () => {
  it('puts, gets and replaces the decision of a strategy', async () => {
    const { store } = await freshStore();
    const record: ValidationRecord = {
      strategy: 'sma-cross',
      configHash: 'c0ffee',
      proceed: false,
      failed: ['wfe', 'max-drawdown'],
      jobId: 'job-1',
      decidedAt: '2024-03-01T12:00:00.000Z',
    };
    expect(await store.getValidation('sma-cross')).toBeUndefined();
    await store.putValidation(record);
    expect(await store.getValidation('sma-cross')).toEqual(record);
    const passed = { ...record, proceed: true, failed: [], jobId: 'job-2' };
    await store.putValidation(passed);
    expect(await store.getValidation('sma-cross')).toEqual(passed);
  });
});

describe('paper validation records', () => {
  it('puts, gets and replaces the paper validation of a sleeve, and refuses a non-finite figure', async () => {
    const { store } = await freshStore();
    const record: PaperValidationRecord = {
      sleeve: 'ma-crossover-atr',
      configHash: 'c0ffee',
      decision: 'no-go',
      failed: ['minSessions'],
      figures: { minSessions: 12, sharpe: null },
      sessions: 12,
      from: '2024-03-01',
      to: '2024-03-18',
      decidedAt: '2024-03-19T12:00:00.000Z',
    };
    expect(await store.getPaperValidation('ma-crossover-atr')).toBeUndefined();
    await store.putPaperValidation(record);
    expect(await store.getPaperValidation('ma-crossover-atr')).toEqual(record);
    const passed = { ...record, decision: 'go' as const, failed: [], sessions: 31 };
    await store.putPaperValidation(passed);
    expect(await store.getPaperValidation('ma-crossover-atr')).toEqual(passed);
    expect(await store.getPaperValidation('other')).toBeUndefined();
    await expect(
      store.putPaperValidation({ ...record, figures: { sharpe: Number.POSITIVE_INFINITY } }),
    ).rejects.toThrow(/figures/);
  });
});

describe('corrupt items', () => {
  it('an intent with a bad field fails with its key and field named', async () => {
    const { store, table } = await freshStore();
    await putRaw(table, {
      ...intent(),
      PK: 'INTENTS#2024-03-04',
      SK: 'sma-SPY-2024-03-04-entry',
      qty: 'ten',
    });
    const error = await store.getIntent('2024-03-04', 'sma-SPY-2024-03-04-entry').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StateStoreCorruptError);
    expect((error as StateStoreCorruptError).field).toBe('qty');
    expect((error as Error).message).toContain('PK=INTENTS#2024-03-04 SK=sma-SPY-2024-03-04-entry');
    await expect(store.listIntents('2024-03-04')).rejects.toThrow(/corrupt field qty/);
  });

  it('a nested bad field is named by its path', async () => {
    const { store, table } = await freshStore();
    await putRaw(table, {
      PK: 'RISK',
      SK: 'STATE',
      version: 3,
      state: { ...initialRiskState(1), drawdownHalt: { since: 1, day: '2024-13-01', sessions: 0 } },
    });
    await expect(store.getRiskState()).rejects.toThrow(/corrupt field state\.drawdownHalt\.day/);
  });

  it('a missing field and an item under a key its fields do not give are corrupt', async () => {
    const { store, table } = await freshStore();
    const { referencePrice: _dropped, ...withoutPrice } = intent();
    await putRaw(table, { ...withoutPrice, PK: 'INTENTS#2024-03-04', SK: 'sma-SPY-2024-03-04-entry' });
    await expect(store.getIntent('2024-03-04', 'sma-SPY-2024-03-04-entry')).rejects.toThrow(
      /corrupt field referencePrice/,
    );
    await putRaw(table, { ...fill(), PK: 'FILLS#2024-03-04', SK: 'exec-copied' });
    await expect(store.listFills('2024-03-04')).rejects.toThrow(/SK=exec-copied: corrupt field executionId/);
    await putRaw(table, {
      PK: 'POSITIONS',
      SK: '2024-03-04',
      date: '2024-03-04',
      positions: [{ symbol: 'X' }],
    });
    await expect(store.getLatestPositions()).rejects.toThrow(/corrupt field positions\.0\.qty/);
  });
});

describe('the fill watermark', () => {
  it('moves forward only, with one conditional write, and names a bad time', async () => {
    const { store } = await freshStore();
    expect(await store.getFillWatermark()).toBeUndefined();
    expect(await store.advanceFillWatermark('2021-03-18T20:15:00Z')).toBe(true);
    expect(await store.getFillWatermark()).toBe('2021-03-18T20:15:00.000Z');
    // An earlier or equal time (a retried or late run) leaves it where it is.
    expect(await store.advanceFillWatermark('2021-03-18T04:00:00.000Z')).toBe(false);
    expect(await store.advanceFillWatermark('2021-03-18T16:15:00-04:00')).toBe(false);
    expect(await store.getFillWatermark()).toBe('2021-03-18T20:15:00.000Z');
    expect(await store.advanceFillWatermark('2021-03-19T20:15:00.000Z')).toBe(true);
    expect(await store.getFillWatermark()).toBe('2021-03-19T20:15:00.000Z');
    await expect(store.advanceFillWatermark('yesterday')).rejects.toThrow(/fill watermark: invalid time/);
  });
});
