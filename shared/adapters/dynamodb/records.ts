/**
 * zod schemas of everything the state store writes and reads back. Writes are checked before they
 * leave (a record DynamoDB cannot store exactly is refused with the field named) and every item read
 * back is checked against the same schema (a corrupt item fails with its key and field named).
 */
import * as z from 'zod';
import type {
  AuditRecord,
  ClosedTradeRecord,
  EquitySnapshot,
  FillRecord,
  IntentRecord,
  OrderTagRecord,
  PaperValidationRecord,
  PositionRecord,
  RealisedPart,
  SessionRecord,
  SleeveCloseFigures,
  SleevesSnapshotRecord,
  SleevesStateRecord,
  ValidationRecord,
} from '../../core/ports/state-store.js';
import type { BreakerEvent, RiskState } from '../../core/risk/breakers.js';
import type { SleevesState } from '../../core/trading/sleeves-close.js';

/**
 * A number DynamoDB stores exactly and lib-dynamodb converts back to the same JS number: finite,
 * within the safe-integer range (beyond it the SDK wants BigInt), and 0 or at least 1e-130 in
 * magnitude (DynamoDB's smallest positive number).
 */
const num = z
  .number()
  .refine((x) => Number.isFinite(x), 'not a finite number')
  .refine((x) => Math.abs(x) <= Number.MAX_SAFE_INTEGER, 'beyond ±Number.MAX_SAFE_INTEGER')
  .refine((x) => x === 0 || Math.abs(x) >= 1e-130, 'too small for DynamoDB (below 1e-130)');
const nonNegative = num.refine((x) => x >= 0, 'negative');
const positive = num.refine((x) => x > 0, 'not positive');

/** A real calendar date `YYYY-MM-DD`. */
export const dateSchema = z
  .string()
  .regex(/^\d{4}-\d{2}-\d{2}$/, 'not a YYYY-MM-DD date')
  .refine((d) => {
    const t = Date.parse(`${d}T00:00:00Z`);
    return Number.isFinite(t) && new Date(t).toISOString().slice(0, 10) === d;
  }, 'not a calendar date');

/** An ISO 8601 time with a `Z` or an offset. */
export const isoTimeSchema = z.iso.datetime({ offset: true });

/** Epoch milliseconds, as the breakers count time. */
export const epochMsSchema = z.number().int().min(0).max(253_402_300_799_999, 'after the year 9999');

export const idSchema = z.string().min(1, 'empty').max(512, 'longer than 512 characters');

export const sessionSchema = z.object({
  date: dateSchema,
  isOpen: z.boolean(),
  openAt: isoTimeSchema.nullable(),
  closeAt: isoTimeSchema.nullable(),
  earlyClose: z.boolean(),
  checkedAt: isoTimeSchema,
}) satisfies z.ZodType<SessionRecord>;

export const intentStatusSchema = z.enum([
  'recorded',
  'submitted',
  'accepted',
  'partially_filled',
  'filled',
  'cancelled',
  'expired',
  'rejected',
  'skipped',
  'unknown',
]);

const intentFields = {
  clientOrderId: idSchema,
  sleeve: z.string().min(1).optional(),
  date: dateSchema,
  strategy: z.string().min(1),
  symbol: z.string().min(1),
  purpose: z.enum(['entry', 'exit', 'stop']),
  side: z.enum(['buy', 'sell']),
  qty: nonNegative,
  type: z.enum(['market', 'limit', 'stop', 'stop_limit', 'trailing_stop']),
  timeInForce: z.enum(['day', 'gtc', 'opg', 'cls', 'ioc', 'fok']),
  limitPrice: positive.optional(),
  stopPrice: positive.optional(),
  referencePrice: positive,
  protectiveStop: positive.optional(),
  takeProfit: positive.optional(),
  status: intentStatusSchema,
  brokerOrderId: z.string().min(1).optional(),
  filledQty: nonNegative,
  avgFillPrice: positive.optional(),
  reason: z.string().optional(),
  leg: z.boolean().optional(),
  netOrderId: idSchema.optional(),
  legIds: z.array(idSchema).optional(),
  leftLegIds: z.array(idSchema).optional(),
  killSwitchFlatten: z.number().int().nonnegative().optional(),
  claimedBy: idSchema.optional(),
  settledBy: idSchema.optional(),
  configHash: z.string().min(1),
  gitCommit: z.string().min(1),
  createdAt: isoTimeSchema,
  updatedAt: isoTimeSchema,
};

export const intentSchema = z.object(intentFields) satisfies z.ZodType<IntentRecord>;

/**
 * A {@link StateStore.transitionIntent} patch: any intent field but the key ones, no unknown key,
 * and `updatedAt` always (the adapter never invents a time).
 */
export const intentPatchSchema = z
  .object(intentFields)
  .omit({ clientOrderId: true, date: true })
  .partial()
  .required({ updatedAt: true })
  .strict();

export const fillSchema = z.object({
  executionId: idSchema,
  date: dateSchema,
  clientOrderId: z.string().min(1).nullable(),
  brokerOrderId: z.string().min(1),
  symbol: z.string().min(1),
  side: z.enum(['buy', 'sell']),
  qty: positive,
  price: positive,
  time: isoTimeSchema,
  /** The crypto dry run's virtual fill. */
  dryRun: z.literal(true).optional(),
}) satisfies z.ZodType<FillRecord>;

export const closedTradeSchema = z.object({
  strategy: z.string().min(1),
  symbol: z.string().min(1),
  side: z.enum(['long', 'short']),
  qty: positive,
  entryDate: dateSchema.nullable(),
  exitDate: dateSchema,
  exitTime: isoTimeSchema,
  entryPrice: positive,
  exitPrice: positive,
  /** Integer cents: zod's int is a safe integer, which DynamoDB and the SDK keep exactly. */
  pnlCents: z.number().int(),
  exitExecutionId: idSchema,
  recordedAt: isoTimeSchema,
  exitReason: z.string().min(1).optional(),
}) satisfies z.ZodType<ClosedTradeRecord>;

export const equitySnapshotSchema = z.object({
  date: dateSchema,
  equity: num,
  cash: num,
  dayPnl: num,
  highWaterMark: num,
  drawdownPct: num,
  takenAt: isoTimeSchema,
}) satisfies z.ZodType<EquitySnapshot>;

/** The closed part of a round trip still open: shares and prices positive, cents whole and not negative. */
const realisedSchema = z.object({
  qty: positive,
  entryCents: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  exitCents: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  entryPrice: positive,
  exitPrice: positive,
}) satisfies z.ZodType<RealisedPart>;

export const positionSchema = z.object({
  symbol: z.string().min(1),
  qty: num,
  avgEntryPrice: num,
  stop: num.nullable(),
  entryRef: num.nullable(),
  initialRisk: num.nullable(),
  sessionsHeld: z.number().int().min(0),
  entryDate: dateSchema.optional(),
  unknownState: z.string().min(1).optional(),
  unlistedSplit: z.string().min(1).optional(),
  sleeve: z.string().min(1).optional(),
  realised: realisedSchema.optional(),
}) satisfies z.ZodType<PositionRecord>;

export const positionsSchema = z
  .array(positionSchema)
  .refine(
    (list) => new Set(list.map((p) => `${p.sleeve ?? ''}|${p.symbol}`)).size === list.length,
    'a (sleeve, symbol) appears twice',
  );

/** The positions item's own fields. */
export const positionsItemSchema = z.object({
  date: dateSchema,
  positions: positionsSchema,
  /** The time the list is as of (absent on lists written before it was kept). */
  writtenAt: z.iso.datetime({ offset: true }).optional(),
  /**
   * The day's broker fills the list accounts for: the filled quantity booked into it per broker
   * order id (absent on lists written before it was kept: the reconciliation compares `writtenAt`).
   */
  bookedFills: z.record(z.string().min(1), nonNegative).optional(),
});

const haltSchema = z.object({
  since: epochMsSchema,
  reason: z.string(),
  by: z.string(),
  /** The kill-switch function flattened under this halt; absent: entries only (and on older items). */
  flatten: z.literal(true).optional(),
});

export const riskStateSchema = z.object({
  highWaterMark: num,
  day: dateSchema.nullable(),
  dayStartEquity: num,
  lastEquity: num,
  dailyLossTrippedOn: dateSchema.nullable(),
  drawdownHalt: z
    .object({ since: epochMsSchema, day: dateSchema, sessions: z.number().int().min(0) })
    .nullable(),
  killSwitch: haltSchema.nullable(),
  /** Per-sleeve halts; absent on items written before sleeves (none halted). */
  sleeveHalts: z.record(z.string().min(1), haltSchema).optional(),
}) satisfies z.ZodType<RiskState>;

/** The risk-state item's own fields: the state and its optimistic-concurrency version (≥ 1). */
export const riskItemSchema = z.object({ version: z.number().int().min(1), state: riskStateSchema });

export const breakerEventSchema = z.object({
  time: epochMsSchema,
  breaker: z.enum(['daily-loss', 'drawdown', 'kill-switch']),
  action: z.enum(['trip', 'reset']),
  reason: z.string(),
  figures: z.record(z.string(), num),
  by: z.string().optional(),
  sleeve: z.string().min(1).optional(),
}) satisfies z.ZodType<BreakerEvent>;

const cents = z
  .number()
  .int('not whole cents')
  .refine((x) => Math.abs(x) <= Number.MAX_SAFE_INTEGER, 'too large');
const sleevePositionSchema = z.object({
  symbol: z.string().min(1),
  side: z.union([z.literal(1), z.literal(-1)]),
  qty: positive,
  entryPrice: positive,
  entryTime: epochMsSchema,
  entryNotional: cents,
  entryCommission: cents,
  stop: positive.nullable(),
  takeProfit: positive.nullable(),
  entryRef: positive,
  initialRisk: num.nullable(),
  sessionsHeld: z.number().int().min(0),
});
export const sleevesStateSchema = z.object({
  sleeves: z.array(z.string().min(1)).min(1),
  books: z.array(
    z.object({
      id: z.string().min(1),
      initialCash: cents,
      cash: cents,
      transfersIn: cents,
      costs: cents,
      positions: z.array(sleevePositionSchema),
    }),
  ),
  account: z.object({
    cash: cents,
    positions: z.array(z.object({ symbol: z.string().min(1), qty: num })),
  }),
  allocation: z.object({
    closes: z.number().int().min(0),
    weights: z.array(num),
    returnHistory: z.array(z.array(num)),
    prevEquity: z.array(cents),
    nav: z.array(num),
    lastCloseTime: epochMsSchema.nullable(),
    lastRebalanceTime: epochMsSchema.nullable(),
    breaches: z.array(
      z.object({ a: z.number().int().min(0), b: z.number().int().min(0), weaker: z.number().int().min(0) }),
    ),
  }),
  splits: z
    .record(z.string().regex(/^split:[^:]+:\d{4}-\d{2}-\d{2}$/, 'not a split key'), positive)
    .optional(),
}) satisfies z.ZodType<SleevesState>;

export const sleevesRecordSchema = z.object({
  bookedThrough: dateSchema.nullable(),
  booked: sleevesStateSchema,
  decided: z.object({ day: dateSchema, state: sleevesStateSchema }).nullable(),
}) satisfies z.ZodType<SleevesStateRecord>;

export const sleevesSnapshotSchema = z.object({
  date: dateSchema,
  state: sleevesStateSchema,
  sleeves: z.array(
    z.object({
      id: z.string().min(1),
      cashCents: cents,
      equity: num,
      nav: num,
      navBefore: num,
      inMarket: z.boolean(),
    }),
  ),
  takenAt: isoTimeSchema,
}) satisfies z.ZodType<SleevesSnapshotRecord>;

/** The sleeves item's own fields: the record and its optimistic-concurrency version (≥ 1). */
export const sleevesItemSchema = z.object({ version: z.number().int().min(1), record: sleevesRecordSchema });

export const orderTagSchema = z.object({
  tag: z.string().regex(/^[0-9a-f]{8}$/, 'not an 8-hex-digit tag'),
  stage: z.string().min(1),
  sleeves: z.array(z.string().min(1)).min(1),
}) satisfies z.ZodType<OrderTagRecord>;

/** JSON values DynamoDB stores as they are (finite numbers only). */
const jsonValue: z.ZodType<unknown> = z.lazy(() =>
  z.union([z.string(), num, z.boolean(), z.null(), z.array(jsonValue), z.record(z.string(), jsonValue)]),
);

export const auditSchema = z.object({
  time: isoTimeSchema,
  action: z.enum([
    'halt',
    'resume',
    'drawdown-reset',
    'drift',
    'breaker',
    'reconcile-assign',
    'reconcile-flatten',
  ]),
  by: z.string().min(1),
  reason: z.string(),
  details: z.record(z.string(), jsonValue).optional(),
}) satisfies z.ZodType<AuditRecord>;

export const validationSchema = z.object({
  strategy: z.string().min(1),
  configHash: z.string().min(1),
  sleeveHash: z
    .string()
    .regex(/^[0-9a-f]{64}$/, 'not a SHA-256 hex digest')
    .optional(),
  proceed: z.boolean(),
  failed: z.array(z.string()),
  jobId: z.string().min(1),
  decidedAt: isoTimeSchema,
}) satisfies z.ZodType<ValidationRecord>;

export const paperValidationSchema = z.object({
  sleeve: z.string().min(1),
  configHash: z.string().min(1),
  decision: z.enum(['go', 'no-go']),
  failed: z.array(z.string()),
  figures: z.record(z.string(), z.number().finite().nullable()),
  sessions: z.number().int().min(0),
  from: z.string(),
  to: z.string(),
  decidedAt: isoTimeSchema,
}) satisfies z.ZodType<PaperValidationRecord>;

/**
 * Compile-time check that a schema has exactly the fields of its port type: an object schema drops
 * unknown keys, so a field added to the port but not here would be lost silently on every write.
 */
type SameKeys<A, B> = [keyof A] extends [keyof B] ? ([keyof B] extends [keyof A] ? true : false) : false;
type Check<T extends true> = T;
export type SchemasMatchThePort = Check<
  | SameKeys<z.output<typeof sessionSchema>, SessionRecord>
  | SameKeys<z.output<typeof intentSchema>, IntentRecord>
  | SameKeys<z.output<typeof fillSchema>, FillRecord>
  | SameKeys<z.output<typeof closedTradeSchema>, ClosedTradeRecord>
  | SameKeys<z.output<typeof equitySnapshotSchema>, EquitySnapshot>
  | SameKeys<z.output<typeof positionSchema>, PositionRecord>
  | SameKeys<z.output<typeof riskStateSchema>, RiskState>
  | SameKeys<
      NonNullable<z.output<typeof riskStateSchema>['drawdownHalt']>,
      NonNullable<RiskState['drawdownHalt']>
    >
  | SameKeys<
      NonNullable<z.output<typeof riskStateSchema>['killSwitch']>,
      NonNullable<RiskState['killSwitch']>
    >
  | SameKeys<z.output<typeof breakerEventSchema>, BreakerEvent>
  | SameKeys<z.output<typeof auditSchema>, AuditRecord>
  | SameKeys<z.output<typeof validationSchema>, ValidationRecord>
  | SameKeys<z.output<typeof paperValidationSchema>, PaperValidationRecord>
  | SameKeys<z.output<typeof sleevesSnapshotSchema>, SleevesSnapshotRecord>
  | SameKeys<z.output<typeof sleevesSnapshotSchema>['sleeves'][number], SleeveCloseFigures>
>;

/** `a.b.0.c`, or `whole` for the value as a whole. */
export function issuePath(path: readonly PropertyKey[], whole: string): string {
  return path.length === 0 ? whole : path.map(String).join('.');
}
