import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createStateTable, DynamoStateStore } from '../../shared/adapters/dynamodb/state-store.js';
import { type LocalDynamo, startLocalDynamo } from '../../shared/adapters/local/dynamodb.js';
import type { EquitySnapshot } from '../../shared/core/ports/state-store.js';

let local: LocalDynamo;
beforeAll(async () => {
  local = await startLocalDynamo();
});
afterAll(async () => {
  await local?.close();
});

const snapshot = (date: string, equity: number): EquitySnapshot => ({
  date,
  equity,
  cash: equity,
  dayPnl: 0,
  highWaterMark: equity,
  drawdownPct: 0,
  takenAt: `${date}T21:15:00.000Z`,
});

describe('the latest equity snapshot before a date (the start of validate-paper --from)', () => {
  it('is the one dated just before it, found with one request however many snapshots precede it', async () => {
    await createStateTable(local.client, 'equity-latest');
    let requests = 0;
    const counting = new Proxy(local.client, {
      get(target, property, receiver) {
        if (property === 'send') {
          return (command: Parameters<DynamoDBDocumentClient['send']>[0]) => {
            requests += 1;
            return target.send(command);
          };
        }
        const value = Reflect.get(target, property, receiver);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    }) as typeof local.client;
    // One item a page: a listing of the earlier snapshots would take a request for each of them.
    const store = new DynamoStateStore(counting, 'equity-latest', { pageSize: 1 });
    const dates = Array.from({ length: 30 }, (_, i) =>
      new Date(Date.UTC(2024, 0, 1 + i)).toISOString().slice(0, 10),
    );
    for (const [i, date] of dates.entries()) await store.putEquitySnapshot(snapshot(date, 100_000 + i));

    requests = 0;
    expect(await store.getLatestEquitySnapshot('2024-01-20')).toEqual(snapshot('2024-01-19', 100_018));
    expect(requests).toBe(1);
    expect((await store.getLatestEquitySnapshot('2024-02-15'))?.date).toBe('2024-01-30');
    expect(await store.getLatestEquitySnapshot('2024-01-01')).toBeUndefined();
    expect(requests).toBe(3);
    await expect(store.getLatestEquitySnapshot('2024-1-5')).rejects.toThrow(/before/);
  });
});
