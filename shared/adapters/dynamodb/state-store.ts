/**
 * The {@link StateStore} on one DynamoDB table (single-table design; docs/state-store.md has the
 * key schema, the access patterns and the conditional-write rules).
 *
 * Every write that guards money is one conditional write on one item, so nothing needs a
 * transaction (which local DynamoDB, dynalite, does not have):
 * - an intent is created only if its key is free (`attribute_not_exists(PK)`);
 * - an intent moves only from one of the expected statuses;
 * - a fill is appended only if its execution id is not in the ledger;
 * - a closed trade is recorded only if its key (strategy, exit time, symbol) is free;
 * - the risk state is replaced only at the version the writer read (optimistic concurrency); a
 *   write whose answer was lost after it committed is known as the writer's own by its id in the
 *   item's list of recent write ids (`writeIds`).
 *
 * Reads are strongly consistent; every item read back is checked with zod.
 */
import { randomUUID } from 'node:crypto';
import {
  CreateTableCommand,
  DescribeTableCommand,
  type DynamoDBClient,
  type KeySchemaElement,
  type TableDescription,
} from '@aws-sdk/client-dynamodb';
import {
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  type QueryCommandInput,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import * as z from 'zod';
import { StateStoreCorruptError, StateStoreError, StateStoreInputError } from '../../core/errors.js';
import type { DryRunAccount } from '../../core/live/dry-run-account.js';
import type { CryptoStore, DryRunRecord, FundingRecord } from '../../core/ports/crypto-store.js';
import type {
  AuditRecord,
  BookedFills,
  ClosedTradeRecord,
  EquitySnapshot,
  FillRecord,
  IntentRecord,
  IntentStatus,
  IntentUnchanged,
  OrderTagRecord,
  PaperValidationRecord,
  PositionRecord,
  PositionsList,
  SessionRecord,
  SleevesSnapshotRecord,
  SleevesStateRecord,
  StateStore,
  ValidationRecord,
  VersionConflict,
} from '../../core/ports/state-store.js';
import { STATE_SCHEMA_VERSION } from '../../core/ports/state-store.js';
import type { BreakerEvent, RiskState } from '../../core/risk/breakers.js';
import {
  dryRunAccountItemSchema,
  dryRunAccountSchema,
  dryRunRecordSchema,
  fundingRecordSchema,
} from './crypto-records.js';
import {
  auditSchema,
  breakerEventSchema,
  closedTradeSchema,
  dateSchema,
  epochMsSchema,
  equitySnapshotSchema,
  fillSchema,
  idSchema,
  intentPatchSchema,
  intentSchema,
  intentStatusSchema,
  isoTimeSchema,
  issuePath,
  orderTagSchema,
  paperValidationSchema,
  positionsItemSchema,
  riskItemSchema,
  riskStateSchema,
  sessionSchema,
  sleevesItemSchema,
  sleevesRecordSchema,
  sleevesSnapshotSchema,
  validationSchema,
} from './records.js';
import {
  contentHash,
  describeKey,
  ENTITY_ATTRIBUTE,
  type ItemKey,
  isConditionFailed,
  keys,
  RANGE_END,
  stateTableKeySchema,
  stateTtlDays,
  ttlFor,
} from './schema.js';

export { stateTableKeySchema, stateTtlDays } from './schema.js';

/** Options of {@link DynamoStateStore}. */
export interface DynamoStateStoreOptions {
  /**
   * `Limit` of each Query page (default: none, DynamoDB's 1 MB pages). Lists always read every page;
   * tests set a small value to exercise the pagination.
   */
  readonly pageSize?: number;
}

/** How many closed trades one `listClosedTrades` call may ask for. */
const MAX_CLOSED_TRADES = 10_000;
const closedTradeLimitSchema = z
  .number()
  .int('not an integer')
  .min(1, 'not a positive integer')
  .max(MAX_CLOSED_TRADES, `more than ${MAX_CLOSED_TRADES}`);

/** The version a risk-state writer read: 0 when none was stored. */
const stateVersionSchema = z.number().int().min(0);

const CONFLICT: VersionConflict = Object.freeze({ conflict: true });

/**
 * The attribute listing the ids of a versioned item's most recent writes (a fresh id per write,
 * newest first): a lost answer's retry finds its own write in it, even after another writer's.
 */
const WRITE_IDS_ATTRIBUTE = 'writeIds';
/** How many write ids a versioned item keeps: far more writes than one item sees during one SDK retry. */
export const RECENT_WRITE_IDS = 10;
/** The write ids a versioned item holds (`writeId`: the one id items written before the list carried). */
const writeIdsItemSchema = z.object({
  [WRITE_IDS_ATTRIBUTE]: z.array(z.string().min(1)).optional(),
  writeId: z.string().min(1).optional(),
  version: z.number().int().min(1),
});

/** A versioned item's version and recent write ids (older items: `writeId`, the last write's). */
function versionAndWriteIds(stored: z.infer<typeof writeIdsItemSchema>): {
  readonly version: number;
  readonly writeIds: readonly string[];
} {
  return {
    version: stored.version,
    writeIds: stored[WRITE_IDS_ATTRIBUTE] ?? (stored.writeId === undefined ? [] : [stored.writeId]),
  };
}

/** A key as one string (the store's map of versions seen). */
function itemKeyString(key: ItemKey): string {
  return `${String(key.PK)}\u0000${String(key.SK)}`;
}

/** What {@link DynamoStateStore.conditional} answers when the write's condition failed. */
const LOST = Symbol('condition failed');

type Item = Record<string, unknown>;

/** Deep copy without `undefined` values (the port's optional fields), whatever the client's marshalling options. */
function withoutUndefined<T>(value: T): T {
  if (Array.isArray(value)) return value.filter((v) => v !== undefined).map(withoutUndefined) as T;
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value)
        .filter(([, v]) => v !== undefined)
        .map(([k, v]) => [k, withoutUndefined(v)]),
    ) as T;
  }
  return value;
}

/**
 * Checks a record or an argument before it is used; the error names the entity and the field
 * (`name` when the value as a whole is wrong).
 */
function checkInput<S extends z.ZodType>(
  entity: string,
  schema: S,
  value: unknown,
  name = 'record',
): z.output<S> {
  const parsed = schema.safeParse(withoutUndefined(value));
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  throw new StateStoreInputError(entity, issuePath(issue?.path ?? [], name), issue?.message ?? 'invalid', {
    cause: parsed.error,
  });
}

/** Checks an item read back; the error names the item's key and the field. */
function checkItem<S extends z.ZodType>(schema: S, item: Item): z.output<S> {
  const parsed = schema.safeParse(item);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  throw new StateStoreCorruptError(
    describeKey(item),
    issuePath(issue?.path ?? [], '(item)'),
    issue?.message ?? 'invalid',
    { cause: parsed.error },
  );
}

/** The item's key must be the one its record fields give (an item copied under another key is corrupt). */
function checkKey(item: Item, expected: ItemKey, field: string): void {
  if (item.PK !== expected.PK || item.SK !== expected.SK) {
    throw new StateStoreCorruptError(
      describeKey(item),
      field,
      `does not match the item's key (expected ${describeKey(expected)})`,
    );
  }
}

const watermarkItemSchema = z.object({ time: isoTimeSchema });

function describeError(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

/** An ISO time as a sortable sort-key part (UTC, milliseconds). */
function sortableTime(time: string | number): string {
  return new Date(time).toISOString();
}

/**
 * A `listAudit` bound: a `YYYY-MM-DD` date (a UTC day; `to` includes the whole day) or an ISO
 * time (normalized to UTC milliseconds; `to` includes that millisecond).
 */
function timeBound(value: string, which: 'from' | 'to'): string {
  if (dateSchema.safeParse(value).success) return which === 'from' ? value : `${value}${RANGE_END}`;
  if (!isoTimeSchema.safeParse(value).success) {
    throw new StateStoreInputError('audit range', which, 'neither a YYYY-MM-DD date nor an ISO time');
  }
  const time = sortableTime(value);
  return which === 'from' ? time : `${time}${RANGE_END}`;
}

export class DynamoStateStore implements StateStore, CryptoStore {
  private readonly pageSize: number | undefined;
  /**
   * The version and recent write ids of each versioned item as this store last read or wrote it:
   * a write at the version read just before (the callers' read, change, write) carries its list on
   * without reading the item again. Only a hint: the write's condition on the version decides.
   */
  private readonly versionsSeen = new Map<
    string,
    { readonly version: number; readonly writeIds: readonly string[] }
  >();

  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
    options: DynamoStateStoreOptions = {},
  ) {
    if (options.pageSize !== undefined && !(Number.isInteger(options.pageSize) && options.pageSize >= 1)) {
      throw new StateStoreInputError('options', 'pageSize', 'not a positive integer');
    }
    this.pageSize = options.pageSize;
  }

  // --- sessions --------------------------------------------------------------------------------

  async putSession(session: SessionRecord): Promise<void> {
    const record = checkInput('session', sessionSchema, session);
    await this.put('putSession', keys.session(record.date), 'session', record, {
      ttl: ttlFor(record.date, stateTtlDays.session),
    });
  }

  async getSession(date: string): Promise<SessionRecord | undefined> {
    checkInput('session', dateSchema, date, 'date');
    const item = await this.get('getSession', keys.session(date));
    if (!item) return undefined;
    const record = checkItem(sessionSchema, item);
    checkKey(item, keys.session(record.date), 'date');
    return record;
  }

  // --- intents ---------------------------------------------------------------------------------

  async createIntent(
    intent: IntentRecord,
  ): Promise<{ readonly created: boolean; readonly intent: IntentRecord }> {
    const record = checkInput('intent', intentSchema, intent);
    const key = keys.intent(record.date, record.clientOrderId);
    const created = await this.putIfAbsent('createIntent', key, 'intent', record, {
      ttl: ttlFor(record.date, stateTtlDays.intent),
    });
    if (created) return { created: true, intent: record };
    const stored = await this.getIntent(record.date, record.clientOrderId);
    if (!stored) {
      throw new StateStoreError(
        'createIntent',
        `${describeKey(key)}: the put found an intent under this key, but the read that followed did not`,
      );
    }
    return { created: false, intent: stored };
  }

  async getIntent(date: string, clientOrderId: string): Promise<IntentRecord | undefined> {
    checkInput('intent', dateSchema, date, 'date');
    checkInput('intent', idSchema, clientOrderId, 'clientOrderId');
    const item = await this.get('getIntent', keys.intent(date, clientOrderId));
    return item ? this.intentFrom(item) : undefined;
  }

  async transitionIntent(
    date: string,
    clientOrderId: string,
    from: readonly IntentStatus[],
    patch: Partial<Omit<IntentRecord, 'clientOrderId' | 'date'>>,
    unchanged?: IntentUnchanged,
  ): Promise<IntentRecord | VersionConflict> {
    checkInput('intent', dateSchema, date, 'date');
    checkInput('intent', idSchema, clientOrderId, 'clientOrderId');
    const since =
      unchanged === undefined
        ? undefined
        : checkInput('intent transition', isoTimeSchema, unchanged.updatedAt, 'unchanged.updatedAt');
    const statuses = [
      ...new Set(checkInput('intent transition', intentStatusSchema.array().min(1), from, 'from')),
    ];
    const fields = checkInput('intent patch', intentPatchSchema, patch, 'patch');
    const names: Record<string, string> = { '#status': 'status' };
    const values: Record<string, unknown> = {};
    const sets: string[] = [];
    for (const [field, value] of Object.entries(fields)) {
      names[`#${field}`] = field;
      values[`:set_${field}`] = value;
      sets.push(`#${field} = :set_${field}`);
    }
    statuses.forEach((status, i) => {
      values[`:from${i}`] = status;
    });
    // The updatedAt condition, beside the status: no other writer wrote the intent since it was read.
    let unchangedCondition = '';
    if (since !== undefined) {
      names['#updatedAt'] = 'updatedAt';
      values[':if_updatedAt'] = since;
      unchangedCondition = ' AND #updatedAt = :if_updatedAt';
    }
    const outcome = await this.conditional('transitionIntent', () =>
      this.client.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: keys.intent(date, clientOrderId),
          UpdateExpression: `SET ${sets.join(', ')}`,
          ConditionExpression: `attribute_exists(PK) AND #status IN (${statuses.map((_, i) => `:from${i}`).join(', ')})${unchangedCondition}`,
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: values,
          ReturnValues: 'ALL_NEW',
        }),
      ),
    );
    if (outcome === LOST) return CONFLICT;
    if (!outcome.Attributes) {
      throw new StateStoreError(
        'transitionIntent',
        `${describeKey(keys.intent(date, clientOrderId))}: no item returned`,
      );
    }
    return this.intentFrom(outcome.Attributes);
  }

  async claimIntent(
    date: string,
    clientOrderId: string,
    claim: { readonly by: string; readonly at: string },
  ): Promise<IntentRecord | VersionConflict> {
    const by = checkInput('intent claim', idSchema, claim.by, 'by');
    return this.transitionOnce(
      date,
      clientOrderId,
      ['recorded'],
      { status: 'submitted', claimedBy: by, updatedAt: claim.at },
      (stored) => stored.claimedBy === by,
    );
  }

  async settleIntent(
    date: string,
    clientOrderId: string,
    from: readonly IntentStatus[],
    patch: Partial<Omit<IntentRecord, 'clientOrderId' | 'date' | 'settledBy'>> & {
      readonly status: IntentStatus;
    },
    by: string,
    unchanged?: IntentUnchanged,
  ): Promise<IntentRecord | VersionConflict> {
    const token = checkInput('intent settle', idSchema, by, 'by');
    return this.transitionOnce(
      date,
      clientOrderId,
      from,
      { ...patch, settledBy: token },
      (stored) => stored.settledBy === token,
      unchanged,
    );
  }

  /**
   * A transition whose patch carries a token (`ours` recognises it): the write may have committed
   * with its answer lost (a reset or timeout), and the SDK's retry then fails the condition on this
   * very write. Read back (consistent), it is ours when in the patch's status with the token.
   */
  private async transitionOnce(
    date: string,
    clientOrderId: string,
    from: readonly IntentStatus[],
    patch: Partial<Omit<IntentRecord, 'clientOrderId' | 'date'>> & { readonly status: IntentStatus },
    ours: (stored: IntentRecord) => boolean,
    unchanged?: IntentUnchanged,
  ): Promise<IntentRecord | VersionConflict> {
    const written = await this.transitionIntent(date, clientOrderId, from, patch, unchanged);
    if (!('conflict' in written)) return written;
    const stored = await this.getIntent(date, clientOrderId);
    return stored?.status === patch.status && ours(stored) ? stored : CONFLICT;
  }

  async listIntents(date: string): Promise<IntentRecord[]> {
    checkInput('intent', dateSchema, date, 'date');
    const items = await this.queryAll('listIntents', {
      KeyConditionExpression: 'PK = :pk',
      ExpressionAttributeValues: { ':pk': keys.intentPartition(date) },
    });
    return items.map((item) => this.intentFrom(item));
  }

  private intentFrom(item: Item): IntentRecord {
    const record = checkItem(intentSchema, item);
    checkKey(item, keys.intent(record.date, record.clientOrderId), 'clientOrderId');
    return record;
  }

  // --- fills -----------------------------------------------------------------------------------

  async appendFill(fill: FillRecord): Promise<boolean> {
    const record = checkInput('fill', fillSchema, fill);
    return this.putIfAbsent('appendFill', keys.fill(record.date, record.executionId), 'fill', record, {
      ttl: ttlFor(record.date, stateTtlDays.fill),
    });
  }

  async listFills(date: string): Promise<FillRecord[]> {
    checkInput('fill', dateSchema, date, 'date');
    const items = await this.queryAll('listFills', {
      KeyConditionExpression: 'PK = :pk',
      ExpressionAttributeValues: { ':pk': keys.fillPartition(date) },
    });
    return items.map((item) => {
      const record = checkItem(fillSchema, item);
      checkKey(item, keys.fill(record.date, record.executionId), 'executionId');
      return record;
    });
  }

  // --- equity ----------------------------------------------------------------------------------

  async getFillWatermark(): Promise<string | undefined> {
    const item = await this.get('getFillWatermark', keys.fillWatermark);
    return item === undefined ? undefined : checkItem(watermarkItemSchema, item).time;
  }

  /** One conditional put: only forward (times are stored as UTC milliseconds, so they sort as text). */
  async advanceFillWatermark(time: string): Promise<boolean> {
    const at = sortableTime(checkInput('fill watermark', isoTimeSchema, time, 'time'));
    const outcome = await this.conditional('advanceFillWatermark', () =>
      this.client.send(
        new PutCommand({
          TableName: this.tableName,
          Item: this.item(keys.fillWatermark, 'fill-watermark', { time: at }),
          ConditionExpression: 'attribute_not_exists(PK) OR #time < :time',
          ExpressionAttributeNames: { '#time': 'time' },
          ExpressionAttributeValues: { ':time': at },
        }),
      ),
    );
    return outcome !== LOST;
  }

  async putEquitySnapshot(snapshot: EquitySnapshot): Promise<void> {
    const record = checkInput('equity snapshot', equitySnapshotSchema, snapshot);
    await this.put('putEquitySnapshot', keys.equity(record.date), 'equity', record);
  }

  async listEquitySnapshots(from: string, to: string): Promise<EquitySnapshot[]> {
    this.checkRange('equity range', dateSchema, from, to);
    const items = await this.queryBetween('listEquitySnapshots', keys.equityPartition, from, to);
    return items.map((item) => {
      const record = checkItem(equitySnapshotSchema, item);
      checkKey(item, keys.equity(record.date), 'date');
      return record;
    });
  }

  async getLatestEquitySnapshot(before: string): Promise<EquitySnapshot | undefined> {
    checkInput('equity snapshot', dateSchema, before, 'before');
    const item = await this.latestBefore('getLatestEquitySnapshot', keys.equityPartition, before);
    if (item === undefined) return undefined;
    const record = checkItem(equitySnapshotSchema, item);
    checkKey(item, keys.equity(record.date), 'date');
    return record;
  }

  // --- positions -------------------------------------------------------------------------------

  async putPositions(
    date: string,
    positions: readonly PositionRecord[],
    writtenAt?: string,
    bookedFills?: BookedFills,
  ): Promise<void> {
    const record = checkInput('positions', positionsItemSchema, {
      date,
      positions,
      ...(writtenAt === undefined ? {} : { writtenAt }),
      ...(bookedFills === undefined ? {} : { bookedFills }),
    });
    await this.put('putPositions', keys.positions(record.date), 'positions', record, {
      ttl: ttlFor(record.date, stateTtlDays.positions),
    });
  }

  async getLatestPositions(before?: string): Promise<PositionsList | undefined> {
    if (before !== undefined) checkInput('positions', dateSchema, before, 'before');
    const item = await this.latestBefore('getLatestPositions', keys.positionsPartition, before);
    if (!item) return undefined;
    const record = checkItem(positionsItemSchema, item);
    checkKey(item, keys.positions(record.date), 'date');
    return record;
  }

  // --- closed trades ---------------------------------------------------------------------------

  /**
   * Records the trade only if its key (strategy, exit time, symbol) is free: a retried end-of-day
   * finds it there and gets `false`; the stored trade is kept even if the retry computed another.
   */
  async recordClosedTrade(trade: ClosedTradeRecord): Promise<boolean> {
    const record = checkInput('closed trade', closedTradeSchema, trade);
    return this.putIfAbsent('recordClosedTrade', this.closedTradeKey(record), 'closed-trade', record, {
      ttl: ttlFor(record.exitDate, stateTtlDays.closedTrade),
    });
  }

  /**
   * The strategy's `limit` most recent closed trades by exit time, oldest first: a descending Query
   * of the strategy's partition, page after page until `limit` items or the partition's end.
   */
  async listClosedTrades(strategy: string, limit: number): Promise<ClosedTradeRecord[]> {
    checkInput('closed trade', closedTradeSchema.shape.strategy, strategy, 'strategy');
    checkInput('closed trade', closedTradeLimitSchema, limit, 'limit');
    const items: Item[] = [];
    let startKey: Item | undefined;
    do {
      const wanted = limit - items.length;
      const page = await this.call('listClosedTrades', () =>
        this.client.send(
          new QueryCommand({
            TableName: this.tableName,
            KeyConditionExpression: 'PK = :pk',
            ExpressionAttributeValues: { ':pk': keys.tradesPartition(strategy) },
            ScanIndexForward: false,
            ConsistentRead: true,
            Limit: Math.min(wanted, this.pageSize ?? wanted),
            ...(startKey === undefined ? {} : { ExclusiveStartKey: startKey }),
          }),
        ),
      );
      items.push(...(page.Items ?? []).slice(0, wanted));
      startKey = page.LastEvaluatedKey;
    } while (startKey !== undefined && items.length < limit);
    return items.reverse().map((item) => {
      const record = checkItem(closedTradeSchema, item);
      checkKey(item, this.closedTradeKey(record), 'exitTime');
      return record;
    });
  }

  private closedTradeKey(record: ClosedTradeRecord): ItemKey {
    return keys.closedTrade(record.strategy, sortableTime(record.exitTime), record.symbol);
  }

  // --- risk ------------------------------------------------------------------------------------

  async getRiskState(): Promise<{ readonly state: RiskState; readonly version: number } | undefined> {
    const item = await this.get('getRiskState', keys.riskState);
    this.seen(keys.riskState, item);
    return item ? checkItem(riskItemSchema, item) : undefined;
  }

  async putRiskState(
    state: RiskState,
    expectedVersion: number,
  ): Promise<{ readonly version: number } | VersionConflict> {
    const record = checkInput('risk state', riskStateSchema, state);
    const expected = checkInput('risk state', stateVersionSchema, expectedVersion, 'expectedVersion');
    return this.putVersioned('putRiskState', keys.riskState, 'risk-state', { state: record }, expected);
  }

  /**
   * Each event is one item keyed by its time, breaker, action and content: appending the same
   * events again rewrites the same items, so a retried call adds nothing.
   */
  async appendBreakerEvents(events: readonly BreakerEvent[]): Promise<void> {
    const records = checkInput('breaker event', breakerEventSchema.array(), events);
    for (const record of records) {
      const key = keys.breakerEvent(
        sortableTime(record.time),
        record.breaker,
        record.action,
        contentHash(record),
      );
      await this.put('appendBreakerEvents', key, 'breaker-event', record);
    }
  }

  /**
   * Breaker events with `fromMs ≤ time ≤ toMs` (epoch milliseconds), oldest first. Not part of the
   * port: for operations (the dashboard, the runbook) and tests.
   */
  async listBreakerEvents(fromMs: number, toMs: number): Promise<BreakerEvent[]> {
    checkInput('breaker event range', epochMsSchema, fromMs, 'from');
    checkInput('breaker event range', epochMsSchema, toMs, 'to');
    if (fromMs > toMs)
      throw new StateStoreInputError('breaker event range', 'from', `after to (${fromMs} > ${toMs})`);
    const items = await this.queryBetween(
      'listBreakerEvents',
      keys.breakerPartition,
      sortableTime(fromMs),
      `${sortableTime(toMs)}${RANGE_END}`,
    );
    return items.map((item) => checkItem(breakerEventSchema, item));
  }

  // --- audit -----------------------------------------------------------------------------------

  /** Keyed by its time and content: appending the same record again rewrites the same item. */
  async appendAudit(record: AuditRecord): Promise<void> {
    const checked = checkInput('audit record', auditSchema, record);
    await this.put(
      'appendAudit',
      keys.audit(sortableTime(checked.time), contentHash(checked)),
      'audit',
      checked,
    );
  }

  /**
   * Audit records between `from` and `to` inclusive, oldest first. Each bound is a `YYYY-MM-DD`
   * date (a UTC day; `to` includes all of it) or an ISO time.
   */
  async listAudit(from: string, to: string): Promise<AuditRecord[]> {
    const lower = timeBound(from, 'from');
    const upper = timeBound(to, 'to');
    if (lower > upper) throw new StateStoreInputError('audit range', 'from', `after to (${from} > ${to})`);
    const items = await this.queryBetween('listAudit', keys.auditPartition, lower, upper);
    return items.map((item) => checkItem(auditSchema, item));
  }

  // --- validation gate -------------------------------------------------------------------------

  // --- sleeves --------------------------------------------------------------------------------

  async getSleevesState(): Promise<
    { readonly record: SleevesStateRecord; readonly version: number } | undefined
  > {
    const item = await this.get('getSleevesState', keys.sleevesState);
    this.seen(keys.sleevesState, item);
    return item ? checkItem(sleevesItemSchema, item) : undefined;
  }

  async putSleevesState(
    state: SleevesStateRecord,
    expectedVersion: number,
  ): Promise<{ readonly version: number } | VersionConflict> {
    const record = checkInput('sleeves state', sleevesRecordSchema, state);
    const expected = checkInput('sleeves state', stateVersionSchema, expectedVersion, 'expectedVersion');
    return this.putVersioned('putSleevesState', keys.sleevesState, 'sleeves-state', { record }, expected);
  }

  async putSleevesSnapshot(snapshot: SleevesSnapshotRecord): Promise<void> {
    const record = checkInput('sleeves snapshot', sleevesSnapshotSchema, snapshot);
    await this.put('putSleevesSnapshot', keys.sleevesSnapshot(record.date), 'sleeves-snapshot', record);
  }

  async listSleevesSnapshots(from: string, to: string): Promise<SleevesSnapshotRecord[]> {
    this.checkRange('sleeves snapshot range', dateSchema, from, to);
    const items = await this.queryBetween('listSleevesSnapshots', keys.sleevesSnapshotPartition, from, to);
    return items.map((item) => {
      const record = checkItem(sleevesSnapshotSchema, item);
      checkKey(item, keys.sleevesSnapshot(record.date), 'date');
      return record;
    });
  }

  async putOrderTag(tag: OrderTagRecord): Promise<void> {
    const record = checkInput('order tag', orderTagSchema, tag);
    await this.putIfAbsent('putOrderTag', keys.orderTag(record.tag), 'order-tag', record);
  }

  async getOrderTag(tag: string): Promise<OrderTagRecord | undefined> {
    const item = await this.get('getOrderTag', keys.orderTag(tag));
    return item ? checkItem(orderTagSchema, item) : undefined;
  }

  async putValidation(record: ValidationRecord): Promise<void> {
    const checked = checkInput('validation record', validationSchema, record);
    await this.put('putValidation', keys.validation(checked.strategy), 'validation', checked);
  }

  async getValidation(strategy: string): Promise<ValidationRecord | undefined> {
    checkInput('validation record', validationSchema.shape.strategy, strategy, 'strategy');
    const item = await this.get('getValidation', keys.validation(strategy));
    if (!item) return undefined;
    const record = checkItem(validationSchema, item);
    checkKey(item, keys.validation(record.strategy), 'strategy');
    return record;
  }

  // --- crypto bot: funding readings and dry-run decisions ---------------------------------------

  async putFundingReading(record: FundingRecord): Promise<void> {
    const reading = checkInput('funding reading', fundingRecordSchema, record);
    const key = keys.funding(reading.productId, sortableTime(reading.time));
    await this.put('putFundingReading', key, 'funding', reading, {
      ttl: ttlFor(reading.time.slice(0, 10), stateTtlDays.funding),
    });
  }

  async getLatestFundingReading(productId: string): Promise<FundingRecord | undefined> {
    checkInput('funding reading', fundingRecordSchema.shape.productId, productId, 'productId');
    const page = await this.call('getLatestFundingReading', () =>
      this.client.send(
        new QueryCommand({
          TableName: this.tableName,
          KeyConditionExpression: 'PK = :pk',
          ExpressionAttributeValues: { ':pk': keys.fundingPartition(productId) },
          ScanIndexForward: false,
          ConsistentRead: true,
          Limit: 1,
        }),
      ),
    );
    const item = page.Items?.[0];
    return item === undefined ? undefined : this.fundingFrom(item);
  }

  async listFundingReadings(productId: string, from: string, to: string): Promise<FundingRecord[]> {
    checkInput('funding reading', fundingRecordSchema.shape.productId, productId, 'productId');
    this.checkRange('funding reading', isoTimeSchema, from, to);
    const items = await this.queryBetween(
      'listFundingReadings',
      keys.fundingPartition(productId),
      sortableTime(from),
      sortableTime(to),
    );
    return items.map((item) => this.fundingFrom(item));
  }

  private fundingFrom(item: Item): FundingRecord {
    const record = checkItem(fundingRecordSchema, item);
    checkKey(item, keys.funding(record.productId, sortableTime(record.time)), 'time');
    return record;
  }

  async putDryRun(record: DryRunRecord): Promise<boolean> {
    const decision = checkInput('dry run', dryRunRecordSchema, record);
    return this.putIfAbsent(
      'putDryRun',
      keys.dryRun(decision.date, decision.clientOrderId),
      'dry-run',
      decision,
      { ttl: ttlFor(decision.date, stateTtlDays.dryRun) },
    );
  }

  async listDryRuns(date: string): Promise<DryRunRecord[]> {
    checkInput('dry run', dateSchema, date, 'date');
    const items = await this.queryAll('listDryRuns', {
      KeyConditionExpression: 'PK = :pk',
      ExpressionAttributeValues: { ':pk': keys.dryRunPartition(date) },
    });
    return items.map((item) => {
      const record = checkItem(dryRunRecordSchema, item);
      checkKey(item, keys.dryRun(record.date, record.clientOrderId), 'clientOrderId');
      return record;
    });
  }

  async getDryRunAccount(): Promise<
    { readonly account: DryRunAccount; readonly version: number } | undefined
  > {
    const item = await this.get('getDryRunAccount', keys.dryRunAccount);
    this.seen(keys.dryRunAccount, item);
    return item ? checkItem(dryRunAccountItemSchema, item) : undefined;
  }

  async putDryRunAccount(
    account: DryRunAccount,
    expectedVersion: number,
  ): Promise<{ readonly version: number } | VersionConflict> {
    const record = checkInput('dry-run account', dryRunAccountSchema, account);
    const expected = checkInput('dry-run account', stateVersionSchema, expectedVersion, 'expectedVersion');
    return this.putVersioned(
      'putDryRunAccount',
      keys.dryRunAccount,
      'dry-run-account',
      { account: record },
      expected,
    );
  }

  async putPaperValidation(record: PaperValidationRecord): Promise<void> {
    const checked = checkInput('paper validation record', paperValidationSchema, record);
    await this.put('putPaperValidation', keys.paperValidation(checked.sleeve), 'paper-validation', checked);
  }

  async getPaperValidation(sleeve: string): Promise<PaperValidationRecord | undefined> {
    checkInput('paper validation record', paperValidationSchema.shape.sleeve, sleeve, 'sleeve');
    const item = await this.get('getPaperValidation', keys.paperValidation(sleeve));
    if (!item) return undefined;
    const record = checkItem(paperValidationSchema, item);
    checkKey(item, keys.paperValidation(record.sleeve), 'sleeve');
    return record;
  }

  // --- plumbing --------------------------------------------------------------------------------

  /** Every item written carries the schema version (`schemaVersion`; items without one are version 1). */
  private item(key: ItemKey, entity: string, record: object, extra: Record<string, unknown> = {}): Item {
    return withoutUndefined({
      ...record,
      ...extra,
      schemaVersion: STATE_SCHEMA_VERSION,
      [ENTITY_ATTRIBUTE]: entity,
      PK: key.PK,
      SK: key.SK,
    });
  }

  /** An unconditional put (last write wins): records whose key names them completely. */
  private async put(
    operation: string,
    key: ItemKey,
    entity: string,
    record: object,
    extra?: Record<string, unknown>,
  ): Promise<void> {
    await this.call(operation, () =>
      this.client.send(
        new PutCommand({ TableName: this.tableName, Item: this.item(key, entity, record, extra) }),
      ),
    );
  }

  /** A put that only creates: false when an item is already stored under the key (it is kept). */
  private async putIfAbsent(
    operation: string,
    key: ItemKey,
    entity: string,
    record: object,
    extra?: Record<string, unknown>,
  ): Promise<boolean> {
    const outcome = await this.conditional(operation, () =>
      this.client.send(
        new PutCommand({
          TableName: this.tableName,
          Item: this.item(key, entity, record, extra),
          ConditionExpression: 'attribute_not_exists(PK)',
        }),
      ),
    );
    return outcome !== LOST;
  }

  /**
   * A single-item write with optimistic concurrency: `body` is stored with `version` expected + 1
   * only if the stored version is `expected` (0: none stored yet); a conflict otherwise.
   *
   * The item lists the ids of its last {@link RECENT_WRITE_IDS} writes (`writeIds`, newest first; a
   * fresh id per write): the stored item is read first (one consistent read; at another version
   * than `expected` the write is a conflict at once) and its list carried on with this write's id in
   * front. A write that committed but whose answer was lost (a reset connection after the commit) is
   * sent again by the SDK, and that retry fails the version condition on the write's own result, or
   * on a later writer's who committed in between: the failed condition is then checked against the
   * stored item (one consistent read), and an item whose list holds this write's id is this write's
   * success, not a conflict. Without this, a caller that re-reads and re-applies its change after a
   * conflict would apply it on top of itself (an assignment's shares and cash twice).
   */
  private async putVersioned(
    operation: string,
    key: ItemKey,
    entity: string,
    body: object,
    expected: number,
  ): Promise<{ readonly version: number } | VersionConflict> {
    const seen = this.versionsSeen.get(itemKeyString(key));
    const current = seen?.version === expected ? seen : await this.writeIdsOf(operation, key);
    if ((current?.version ?? 0) !== expected) {
      this.versionsSeen.delete(itemKeyString(key));
      return CONFLICT;
    }
    const version = expected + 1;
    const writeId = randomUUID();
    const writeIds = [writeId, ...(current?.writeIds ?? [])].slice(0, RECENT_WRITE_IDS);
    const outcome = await this.conditional(operation, () =>
      this.client.send(
        new PutCommand({
          TableName: this.tableName,
          Item: this.item(key, entity, { ...body, version }, { [WRITE_IDS_ATTRIBUTE]: writeIds }),
          ...(expected === 0
            ? { ConditionExpression: 'attribute_not_exists(PK)' }
            : {
                ConditionExpression: '#version = :expected',
                ExpressionAttributeNames: { '#version': 'version' },
                ExpressionAttributeValues: { ':expected': expected },
              }),
        }),
      ),
    );
    if (outcome !== LOST) {
      this.versionsSeen.set(itemKeyString(key), { version, writeIds });
      return { version };
    }
    const stored = await this.writeIdsOf(operation, key);
    if (stored?.writeIds.includes(writeId)) {
      this.versionsSeen.set(itemKeyString(key), { version, writeIds });
      return { version };
    }
    this.versionsSeen.delete(itemKeyString(key));
    return CONFLICT;
  }

  /** Notes a versioned item's version and write ids as read (none stored: version 0). */
  private seen(key: ItemKey, item: Item | undefined): void {
    if (item === undefined) {
      this.versionsSeen.set(itemKeyString(key), { version: 0, writeIds: [] });
      return;
    }
    const stored = writeIdsItemSchema.safeParse(item);
    if (!stored.success) {
      this.versionsSeen.delete(itemKeyString(key));
      return;
    }
    this.versionsSeen.set(itemKeyString(key), versionAndWriteIds(stored.data));
  }

  /** A versioned item's version and recent write ids (undefined: none stored). */
  private async writeIdsOf(
    operation: string,
    key: ItemKey,
  ): Promise<{ readonly version: number; readonly writeIds: readonly string[] } | undefined> {
    const item = await this.get(operation, key);
    if (item === undefined) return undefined;
    return versionAndWriteIds(checkItem(writeIdsItemSchema, item));
  }

  private async get(operation: string, key: ItemKey): Promise<Item | undefined> {
    const out = await this.call(operation, () =>
      this.client.send(new GetCommand({ TableName: this.tableName, Key: key, ConsistentRead: true })),
    );
    return out.Item;
  }

  /** The item of partition `pk` with the greatest sort key (below `before` when given): one read. */
  private async latestBefore(operation: string, pk: string, before?: string): Promise<Item | undefined> {
    const out = await this.call(operation, () =>
      this.client.send(
        new QueryCommand({
          TableName: this.tableName,
          ...(before === undefined
            ? { KeyConditionExpression: 'PK = :pk', ExpressionAttributeValues: { ':pk': pk } }
            : {
                KeyConditionExpression: 'PK = :pk AND SK < :before',
                ExpressionAttributeValues: { ':pk': pk, ':before': before },
              }),
          ScanIndexForward: false,
          Limit: 1,
          ConsistentRead: true,
        }),
      ),
    );
    return out.Items?.[0];
  }

  /** Every page of a Query on the table, in sort-key order. */
  /** The items of partition `pk` whose sort key is between `from` and `to` inclusive, every page. */
  private queryBetween(operation: string, pk: string, from: string, to: string): Promise<Item[]> {
    return this.queryAll(operation, {
      KeyConditionExpression: 'PK = :pk AND SK BETWEEN :from AND :to',
      ExpressionAttributeValues: { ':pk': pk, ':from': from, ':to': to },
    });
  }

  private async queryAll(
    operation: string,
    input: Pick<QueryCommandInput, 'KeyConditionExpression' | 'ExpressionAttributeValues'>,
  ): Promise<Item[]> {
    const items: Item[] = [];
    let startKey: Item | undefined;
    do {
      const page = await this.call(operation, () =>
        this.client.send(
          new QueryCommand({
            ...input,
            TableName: this.tableName,
            ConsistentRead: true,
            ...(this.pageSize === undefined ? {} : { Limit: this.pageSize }),
            ...(startKey === undefined ? {} : { ExclusiveStartKey: startKey }),
          }),
        ),
      );
      items.push(...(page.Items ?? []));
      startKey = page.LastEvaluatedKey;
    } while (startKey !== undefined);
    return items;
  }

  private checkRange(entity: string, schema: z.ZodType<string>, from: string, to: string): void {
    checkInput(entity, schema, from, 'from');
    checkInput(entity, schema, to, 'to');
    if (from > to) throw new StateStoreInputError(entity, 'from', `after to (${from} > ${to})`);
  }

  private async call<T>(operation: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (error) {
      throw new StateStoreError(operation, `table ${this.tableName}: ${describeError(error)}`, {
        cause: error,
      });
    }
  }

  /** Like {@link call}, but a failed condition is an answer ({@link LOST}), not an error. */
  private async conditional<T>(operation: string, run: () => Promise<T>): Promise<T | typeof LOST> {
    try {
      return await run();
    } catch (error) {
      if (isConditionFailed(error)) return LOST;
      throw new StateStoreError(operation, `table ${this.tableName}: ${describeError(error)}`, {
        cause: error,
      });
    }
  }
}

/**
 * A document client with the marshalling the store expects: `undefined` fields removed, numbers
 * converted to and from JS numbers (no `wrapNumbers`).
 */
export function stateStoreDocumentClient(client: DynamoDBClient): DynamoDBDocumentClient {
  return DynamoDBDocumentClient.from(client, {
    marshallOptions: { removeUndefinedValues: true, convertEmptyValues: false },
    unmarshallOptions: { wrapNumbers: false },
  });
}

const keySchema: KeySchemaElement[] = [
  { AttributeName: stateTableKeySchema.partitionKey.name, KeyType: 'HASH' },
  { AttributeName: stateTableKeySchema.sortKey.name, KeyType: 'RANGE' },
];

/**
 * Creates the state table (on-demand) for local runs and tests, and waits until it is active. A
 * table of that name with the same key schema is left as it is; one with another key schema is an
 * error. TTL is not set (dynalite has no UpdateTimeToLive; on AWS the CDK stack enables it).
 */
export async function createStateTable(
  client: DynamoDBDocumentClient,
  tableName: string,
  options: { readonly timeoutMs?: number; readonly pollMs?: number } = {},
): Promise<void> {
  try {
    await client.send(
      new CreateTableCommand({
        TableName: tableName,
        KeySchema: keySchema,
        AttributeDefinitions: [
          {
            AttributeName: stateTableKeySchema.partitionKey.name,
            AttributeType: stateTableKeySchema.partitionKey.type,
          },
          {
            AttributeName: stateTableKeySchema.sortKey.name,
            AttributeType: stateTableKeySchema.sortKey.type,
          },
        ],
        BillingMode: 'PAY_PER_REQUEST',
      }),
    );
  } catch (error) {
    if (!(error instanceof Error && error.name === 'ResourceInUseException')) {
      throw new StateStoreError('createTable', `table ${tableName}: ${describeError(error)}`, {
        cause: error,
      });
    }
  }
  const timeoutMs = options.timeoutMs ?? 30_000;
  const pollMs = options.pollMs ?? 20;
  const deadline = Date.now() + timeoutMs;
  const expected = keySchema.map((k) => `${k.AttributeName}:${k.KeyType}`).join(',');
  for (;;) {
    let table: TableDescription | undefined;
    try {
      table = (await client.send(new DescribeTableCommand({ TableName: tableName }))).Table;
    } catch (error) {
      throw new StateStoreError('describeTable', `table ${tableName}: ${describeError(error)}`, {
        cause: error,
      });
    }
    const found = (table?.KeySchema ?? []).map((k) => `${k.AttributeName}:${k.KeyType}`).join(',');
    if (found !== expected) {
      throw new StateStoreError(
        'createTable',
        `table ${tableName} exists with the key schema [${found}], not [${expected}]`,
      );
    }
    if (table?.TableStatus === 'ACTIVE') return;
    if (Date.now() > deadline) {
      throw new StateStoreError(
        'createTable',
        `table ${tableName} still ${table?.TableStatus} after ${timeoutMs} ms`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
}
