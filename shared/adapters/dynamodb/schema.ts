/**
 * The state table's key schema, item keys and TTLs (docs/state-store.md). Free of the AWS SDK so
 * the CDK stack can import it to define the table the adapter expects.
 *
 * One table, string keys `PK` (partition) and `SK` (sort), no secondary index: every access
 * pattern of the {@link StateStore} port is a GetItem on a full key or a Query on one partition
 * with a sort-key condition. Expiring items carry `ttl` (epoch seconds).
 */
import { canonicalJson, sha256Hex } from '../../core/canonical-json.js';

/** The table definition the adapter relies on: the CDK stack builds the real table from it. */
export const stateTableKeySchema = {
  partitionKey: { name: 'PK', type: 'S' },
  sortKey: { name: 'SK', type: 'S' },
  /** The attribute DynamoDB's TTL must be enabled on (the CDK's `timeToLiveAttribute`). */
  timeToLiveAttribute: 'ttl',
  /** No GSI: no access pattern needs one. */
  globalSecondaryIndexes: [],
} as const;

/** Attribute naming the kind of record an item holds (diagnostics; `type` is an intent field). */
export const ENTITY_ATTRIBUTE = 'entity';

/**
 * Days after an item's trading date at which DynamoDB may delete it. Entities not listed never
 * expire (equity snapshots, risk state, breaker events, audit, validation records).
 * - intents are idempotency records: they matter on their day and for the yearly reports after it;
 * - fills are the trade ledger: kept seven years, the usual retention for trade records; so are the
 *   closed trades derived from them;
 * - sessions and reconciled positions are only read for the latest days.
 */
export const stateTtlDays = {
  session: 400,
  intent: 400,
  fill: 2557,
  closedTrade: 2557,
  positions: 400,
  /** Funding readings (crypto bot): a year of history for the dashboard and the sign-flip check. */
  funding: 400,
  dryRun: 400,
} as const;

const DAY_SECONDS = 86_400;

/** Expiry (epoch seconds) of an item of trading date `date` (`YYYY-MM-DD`) kept `days` days. */
export function ttlFor(date: string, days: number): number {
  return Math.floor(Date.parse(`${date}T00:00:00Z`) / 1000) + days * DAY_SECONDS;
}

/** A table key. */
export interface ItemKey {
  readonly PK: string;
  readonly SK: string;
}

/**
 * Upper-bound suffix for sort-key ranges: `~` sorts after every character the sort keys use
 * (digits, letters, `-`, `:`, `.`, `#`), so `bound + '~'` includes everything that starts with `bound`.
 */
export const RANGE_END = '~';

/** The item keys, one builder per entity. */
export const keys = {
  session: (date: string): ItemKey => ({ PK: 'SESSION', SK: date }),
  intentPartition: (date: string): string => `INTENTS#${date}`,
  intent: (date: string, clientOrderId: string): ItemKey => ({ PK: `INTENTS#${date}`, SK: clientOrderId }),
  fillPartition: (date: string): string => `FILLS#${date}`,
  fill: (date: string, executionId: string): ItemKey => ({ PK: `FILLS#${date}`, SK: executionId }),
  tradesPartition: (strategy: string): string => `TRADES#${strategy}`,
  /** Exit time first (sortable: the most recent trades are a descending Query), then the symbol. */
  closedTrade: (strategy: string, isoExitTime: string, symbol: string): ItemKey => ({
    PK: `TRADES#${strategy}`,
    SK: `${isoExitTime}#${symbol}`,
  }),
  equityPartition: 'EQUITY',
  equity: (date: string): ItemKey => ({ PK: 'EQUITY', SK: date }),
  positionsPartition: 'POSITIONS',
  positions: (date: string): ItemKey => ({ PK: 'POSITIONS', SK: date }),
  riskState: { PK: 'RISK', SK: 'STATE' } as ItemKey,
  fillWatermark: { PK: 'LEDGER', SK: 'WATERMARK' } as ItemKey,
  breakerPartition: 'BREAKER_EVENTS',
  /** Time first (sortable), then the breaker and action (readable), then a content hash (unique). */
  breakerEvent: (isoTime: string, breaker: string, action: string, contentHash: string): ItemKey => ({
    PK: 'BREAKER_EVENTS',
    SK: `${isoTime}#${breaker}#${action}#${contentHash}`,
  }),
  auditPartition: 'AUDIT',
  audit: (isoTime: string, contentHash: string): ItemKey => ({
    PK: 'AUDIT',
    SK: `${isoTime}#${contentHash}`,
  }),
  validation: (strategy: string): ItemKey => ({ PK: 'VALIDATION', SK: strategy }),
  sleevesState: { PK: 'SLEEVES', SK: 'STATE' } as ItemKey,
  sleevesSnapshotPartition: 'SLEEVES_SNAPSHOT',
  /** A sleeves config's dated snapshot of a session (end-of-day). */
  sleevesSnapshot: (date: string): ItemKey => ({ PK: 'SLEEVES_SNAPSHOT', SK: date }),
  orderTag: (tag: string): ItemKey => ({ PK: 'ORDER_TAGS', SK: tag }),
  /** Crypto bot: one partition per futures product, sorted by funding time (UTC, milliseconds). */
  fundingPartition: (productId: string): string => `FUNDING#${productId}`,
  funding: (productId: string, isoTime: string): ItemKey => ({ PK: `FUNDING#${productId}`, SK: isoTime }),
  /** Crypto bot: the dry run's decisions of a day, by client order id. */
  dryRunPartition: (date: string): string => `DRYRUN#${date}`,
  dryRunAccount: { PK: 'DRYRUN', SK: 'ACCOUNT' } as ItemKey,
  dryRun: (date: string, clientOrderId: string): ItemKey => ({ PK: `DRYRUN#${date}`, SK: clientOrderId }),
  paperValidation: (sleeve: string): ItemKey => ({ PK: 'PAPER_VALIDATION', SK: sleeve }),
} as const;

/** `PK=… SK=…`, the way errors name an item. */
export function describeKey(key: Partial<ItemKey> | Record<string, unknown>): string {
  return `PK=${String(key.PK)} SK=${String(key.SK)}`;
}

/**
 * 16 hex digits of the SHA-256 of a record's canonical JSON: the same record always gets the same
 * key (appending it again rewrites the same item), two different records never share one.
 */
export function contentHash(value: unknown): string {
  return sha256Hex(canonicalJson(value)).slice(0, 16);
}

/** Whether a DynamoDB call failed on its condition (a conditional write that lost). */
export function isConditionFailed(error: unknown): boolean {
  return error instanceof Error && error.name === 'ConditionalCheckFailedException';
}
