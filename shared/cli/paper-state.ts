/**
 * The state a local rehearsal keeps (`quantshift replay --state-dir DIR`) and reads back
 * (`quantshift validate-paper --state-dir DIR`):
 *
 * - `state.json`: every item of the local state table (DynamoDB document items, as scanned);
 * - `broker.json`: the paper broker's orders and fill activities (the broker port's shapes) and the
 *   orders it refused at submission;
 * - `alerts.json`: the notifications the functions published (time, severity, subject);
 * - `replay.json`: what was replayed (from, to, the config's path and text, the realism flags).
 *
 * Reading back loads `state.json` into a fresh in-memory DynamoDB (dynalite) and reads it through
 * the same state store adapter the functions use, so the items are checked as in production.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BatchWriteCommand, type DynamoDBDocumentClient, ScanCommand } from '@aws-sdk/lib-dynamodb';
import * as z from 'zod';
import { createStateTable, DynamoStateStore } from '../adapters/dynamodb/state-store.js';
import { startLocalDynamo } from '../adapters/local/dynamodb.js';
import type { LocalLiveStack } from '../adapters/local/live-stack.js';
import { UsageError } from '../core/errors.js';
import type { BrokerActivity, BrokerOrder } from '../core/ports/broker.js';
import type { StateStore } from '../core/ports/state-store.js';

/** One published notification, as the rehearsal captured it. */
export interface CapturedAlert {
  readonly time: string;
  readonly severity: string;
  readonly subject: string;
}

/** What the rehearsal was. */
export interface ReplayMeta {
  readonly from: string;
  readonly to: string;
  readonly configPath: string;
  readonly configText: string;
  readonly options: Readonly<Record<string, number | string | boolean>>;
}

const STATE_TABLE = 'quantshift-local-state';

/** Writes the local stack's state into `dir` (created if needed). */
export async function saveReplayState(
  dir: string,
  stack: LocalLiveStack,
  input: {
    readonly orders: readonly BrokerOrder[];
    readonly activities: readonly BrokerActivity[];
    readonly alerts: readonly CapturedAlert[];
    readonly meta: ReplayMeta;
  },
): Promise<void> {
  mkdirSync(dir, { recursive: true });
  await saveTable(dir, stack.dynamo, STATE_TABLE);
  const write = (name: string, value: unknown) =>
    writeFileSync(join(dir, name), `${JSON.stringify(value, null, 1)}\n`);
  write('broker.json', {
    orders: input.orders,
    activities: input.activities,
    refused: stack.alpaca.refusedOrders().map((r) => ({ ...r, at: new Date(r.at).toISOString() })),
  });
  write('alerts.json', input.alerts);
  write('replay.json', input.meta);
}

/** Writes every item of `table` to `dir/state.json`. */
async function saveTable(dir: string, client: DynamoDBDocumentClient, table: string): Promise<void> {
  const items: Record<string, unknown>[] = [];
  let startKey: Record<string, unknown> | undefined;
  do {
    const page = await client.send(
      new ScanCommand({
        TableName: table,
        ConsistentRead: true,
        ...(startKey === undefined ? {} : { ExclusiveStartKey: startKey }),
      }),
    );
    items.push(...((page.Items ?? []) as Record<string, unknown>[]));
    startKey = page.LastEvaluatedKey as Record<string, unknown> | undefined;
  } while (startKey !== undefined);
  writeFileSync(join(dir, 'state.json'), `${JSON.stringify({ table, items }, null, 1)}\n`);
}

const stateFileSchema = z.object({
  table: z.string(),
  items: z.array(z.record(z.string(), z.unknown()).and(z.object({ PK: z.string(), SK: z.string() }))),
});
const num = z.number().finite();
const positive = num.positive();
const orderSchema: z.ZodType<BrokerOrder> = z.lazy(() =>
  z.object({
    id: z.string(),
    clientOrderId: z.string(),
    symbol: z.string(),
    side: z.enum(['buy', 'sell']),
    type: z.enum(['market', 'limit', 'stop', 'stop_limit', 'trailing_stop']),
    timeInForce: z.enum(['day', 'gtc', 'opg', 'cls', 'ioc', 'fok']),
    qty: positive,
    filledQty: num.nonnegative(),
    filledAvgPrice: positive.nullable(),
    limitPrice: positive.nullable(),
    stopPrice: positive.nullable(),
    status: z.string(),
    submittedAt: z.string(),
    filledAt: z.string().nullable(),
    legs: z.array(orderSchema),
  }),
) as z.ZodType<BrokerOrder>;
const activitySchema = z.union([
  z.object({
    kind: z.literal('fill'),
    id: z.string(),
    orderId: z.string(),
    symbol: z.string(),
    side: z.enum(['buy', 'sell']),
    qty: positive,
    price: positive,
    time: z.string(),
    partial: z.boolean(),
  }),
  z.object({ kind: z.enum(['split', 'dividend']) }).passthrough(),
]);
const brokerFileSchema = z.object({
  orders: z.array(orderSchema),
  activities: z.array(activitySchema),
  refused: z.array(
    z.object({
      clientOrderId: z.string(),
      symbol: z.string(),
      side: z.string(),
      qty: positive,
      at: z.string(),
    }),
  ),
});
const alertsFileSchema = z.array(z.object({ time: z.string(), severity: z.string(), subject: z.string() }));
const metaFileSchema = z.object({
  from: z.string(),
  to: z.string(),
  configPath: z.string(),
  configText: z.string(),
  options: z.record(z.string(), z.union([z.number(), z.string(), z.boolean()])),
});

/** The broker's side of a kept state. */
export type KeptBroker = z.output<typeof brokerFileSchema>;

/** A kept state, read back: the store over a fresh local DynamoDB loaded with its items. */
export interface OpenedReplayState {
  readonly store: StateStore;
  readonly broker: KeptBroker;
  readonly alerts: readonly CapturedAlert[];
  readonly meta: ReplayMeta;
  /** Writes the store's items back to `state.json` (a paper validation record stored in it, say). */
  save(): Promise<void>;
  close(): Promise<void>;
}

function readJson<T>(dir: string, name: string, schema: z.ZodType<T>): T {
  const path = join(dir, name);
  if (!existsSync(path))
    throw new UsageError(`--state-dir ${dir}: no ${name} (keep one with quantshift replay --state-dir)`);
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new UsageError(`${path}: not JSON (${error instanceof Error ? error.message : error})`);
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new UsageError(`${path}: ${issue?.path.join('.') || '(root)'}: ${issue?.message}`);
  }
  return parsed.data;
}

/** Opens a kept state: its files checked, its items loaded into a fresh local DynamoDB. */
export async function openReplayState(dir: string): Promise<OpenedReplayState> {
  const state = readJson(dir, 'state.json', stateFileSchema);
  const broker = readJson(dir, 'broker.json', brokerFileSchema);
  const alerts = readJson(dir, 'alerts.json', alertsFileSchema);
  const meta = readJson(dir, 'replay.json', metaFileSchema);
  const dynamo = await startLocalDynamo();
  try {
    await createStateTable(dynamo.client, state.table);
    for (let i = 0; i < state.items.length; i += 25) {
      let pending: Record<string, unknown>[] = state.items
        .slice(i, i + 25)
        .map((Item) => ({ PutRequest: { Item } }));
      while (pending.length > 0) {
        const out = await dynamo.client.send(
          new BatchWriteCommand({ RequestItems: { [state.table]: pending as never } }),
        );
        pending = (out.UnprocessedItems?.[state.table] ?? []) as Record<string, unknown>[];
      }
    }
  } catch (error) {
    await dynamo.close();
    throw error;
  }
  return {
    store: new DynamoStateStore(dynamo.client, state.table),
    broker,
    alerts,
    meta,
    save: () => saveTable(dir, dynamo.client, state.table),
    close: () => dynamo.close(),
  };
}
