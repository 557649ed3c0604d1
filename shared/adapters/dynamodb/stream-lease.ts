import { DeleteCommand, type DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import * as z from 'zod';
import { StateStoreCorruptError, StateStoreError } from '../../core/errors.js';
import type { ConnectionLease } from '../../stream/lease.js';
import { ENTITY_ATTRIBUTE, isConditionFailed } from './schema.js';

/** The lease item's key in the state table (docs/state-store.md). */
export const STREAM_LEASE_KEY = { PK: 'STREAM', SK: 'LEASE#market-data' } as const;

const leaseItemSchema = z.object({
  holder: z.string().min(1),
  expiresAt: z.number().int().nonnegative(),
});

/**
 * The stream's connection lease as one item of the state table, taken and renewed by a single-item
 * conditional write: it succeeds only when the item is absent, expired or already this holder's.
 * `ttl` (epoch seconds, a day after the expiry) lets DynamoDB clean up a lease nobody released.
 */
export class DynamoStreamLease implements ConnectionLease {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  async acquire(holder: string, now: number, ttlMs: number): Promise<boolean> {
    if (!(Number.isFinite(now) && Number.isFinite(ttlMs) && ttlMs > 0)) {
      throw new StateStoreError('acquireLease', `bad lease time ${now} + ${ttlMs} ms`);
    }
    const expiresAt = Math.round(now + ttlMs);
    try {
      await this.client.send(
        new PutCommand({
          TableName: this.tableName,
          Item: {
            ...STREAM_LEASE_KEY,
            [ENTITY_ATTRIBUTE]: 'stream-lease',
            holder,
            expiresAt,
            ttl: Math.floor(expiresAt / 1000) + 86_400,
          },
          ConditionExpression: 'attribute_not_exists(PK) OR expiresAt < :now OR holder = :holder',
          ExpressionAttributeValues: { ':now': Math.round(now), ':holder': holder },
        }),
      );
      return true;
    } catch (error) {
      if (isConditionFailed(error)) return false;
      throw new StateStoreError('acquireLease', `stream lease: ${(error as Error).message}`, {
        cause: error,
      });
    }
  }

  async release(holder: string): Promise<void> {
    try {
      await this.client.send(
        new DeleteCommand({
          TableName: this.tableName,
          Key: STREAM_LEASE_KEY,
          ConditionExpression: 'holder = :holder',
          ExpressionAttributeValues: { ':holder': holder },
        }),
      );
    } catch (error) {
      if (isConditionFailed(error)) return;
      throw new StateStoreError('releaseLease', `stream lease: ${(error as Error).message}`, {
        cause: error,
      });
    }
  }

  async read(): Promise<{ holder: string; expiresAt: number } | undefined> {
    const { Item } = await this.client.send(
      new GetCommand({ TableName: this.tableName, Key: STREAM_LEASE_KEY, ConsistentRead: true }),
    );
    if (Item === undefined) return undefined;
    const parsed = leaseItemSchema.safeParse(Item);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new StateStoreCorruptError(
        `${STREAM_LEASE_KEY.PK}/${STREAM_LEASE_KEY.SK}`,
        issue?.path.join('.') ?? 'item',
        issue?.message ?? 'invalid',
        { cause: parsed.error },
      );
    }
    return parsed.data;
  }
}
