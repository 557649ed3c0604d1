import type { BreakerEvent, RiskState } from '../risk/breakers.js';
import type { SleevesState } from '../trading/sleeves-close.js';

/**
 * Durable state of the live functions (DynamoDB, single table; docs/state-store.md has the key
 * schema and access patterns). Every write that guards money is a single-item conditional write:
 * no transactions. The broker stays the source of truth; this is the durable record.
 */

/** Today's session, written by the market-open check; a closed day ends the chain. */
export interface SessionRecord {
  /** `YYYY-MM-DD` (New York trading date). */
  readonly date: string;
  readonly isOpen: boolean;
  /** ISO times of the open and close (the close is 13:00 New York on an early-close day). */
  readonly openAt: string | null;
  readonly closeAt: string | null;
  readonly earlyClose: boolean;
  readonly checkedAt: string;
}

export type IntentStatus =
  | 'recorded'
  | 'submitted'
  | 'accepted'
  | 'partially_filled'
  | 'filled'
  | 'cancelled'
  | 'expired'
  | 'rejected'
  | 'skipped'
  | 'unknown';

/** One order intent, recorded before its submission, keyed by its deterministic client order id. */
export interface IntentRecord {
  readonly clientOrderId: string;
  /** The sleeve the intent belongs to (absent on schema-1 items: the config's only sleeve). */
  readonly sleeve?: string;
  /** Trading day the intent is valid for. */
  readonly date: string;
  readonly strategy: string;
  readonly symbol: string;
  /** entry, exit, stop (protective), cancel-stop. */
  readonly purpose: 'entry' | 'exit' | 'stop';
  readonly side: 'buy' | 'sell';
  readonly qty: number;
  readonly type: 'market' | 'limit' | 'stop' | 'stop_limit' | 'trailing_stop';
  readonly timeInForce: 'day' | 'gtc' | 'opg' | 'cls' | 'ioc' | 'fok';
  readonly limitPrice?: number;
  readonly stopPrice?: number;
  /** The decision close (raw dollars): slippage is measured against it. */
  readonly referencePrice: number;
  /** Entries: the protective stop (raw dollars) the position gets once filled. */
  readonly protectiveStop?: number;
  /** Entries: the take-profit (raw dollars), when the strategy or the rules ask for one. */
  readonly takeProfit?: number;
  readonly status: IntentStatus;
  readonly brokerOrderId?: string;
  readonly filledQty: number;
  readonly avgFillPrice?: number;
  /** Why it was skipped, rejected or is unknown. */
  readonly reason?: string;
  /**
   * A sleeve's leg (sleeves config): never sent itself; execute-orders nets the day's legs of a
   * symbol into one broker order and writes that order's client order id here.
   */
  readonly leg?: boolean;
  /** On a leg: the client order id of the net order that carries it. */
  readonly netOrderId?: string;
  /** On a net order: the client order ids of the legs it carries. */
  readonly legIds?: readonly string[];
  /**
   * On the kill switch's flatten of a sleeve: its exit legs of the day whose shares the flatten left
   * to them (not netted yet, or netted and not at the broker yet): execute-orders nets and sends
   * them, never takes them over as sold by this flatten.
   */
  readonly leftLegIds?: readonly string[];
  /**
   * On an exit: the kill switch's flatten (or a risk check's re-send of it, `-<n>` ids), stamped
   * with the `since` of the halt it flattens under (epoch ms), kept whatever its settling writes (a
   * rejection's reason replaces the kill switch's): the risk check sends it again while that very
   * halt is on and it ended unfilled; a resume, then a later plain halt, sends nothing again.
   */
  readonly killSwitchFlatten?: number;
  /**
   * The token of the execute-orders run that claimed it for sending (`recorded` → `submitted`,
   * written in the same conditional write): a run knows its own claim when the write's answer was lost.
   */
  readonly claimedBy?: string;
  /**
   * The token of the write that settled it without the broker (expired as not sent, skipped or
   * cancelled by the kill switch; {@link StateStore.settleIntent}): a writer knows its own write when
   * the answer was lost.
   */
  readonly settledBy?: string;
  readonly configHash: string;
  readonly gitCommit: string;
  readonly createdAt: string;
  readonly updatedAt: string;
}

/** One execution, append-only, keyed by the broker's execution id (a replayed fill is a no-op). */
export interface FillRecord {
  readonly executionId: string;
  readonly date: string;
  readonly clientOrderId: string | null;
  readonly brokerOrderId: string;
  readonly symbol: string;
  readonly side: 'buy' | 'sell';
  readonly qty: number;
  readonly price: number;
  readonly time: string;
  /** A virtual fill of the crypto dry run (booked as a real one, never sent to the exchange). */
  readonly dryRun?: true;
}

export interface EquitySnapshot {
  readonly date: string;
  readonly equity: number;
  readonly cash: number;
  readonly dayPnl: number;
  readonly highWaterMark: number;
  readonly drawdownPct: number;
  readonly takenAt: string;
}

export interface PositionRecord {
  readonly symbol: string;
  readonly qty: number;
  readonly avgEntryPrice: number;
  /** The protective stop in force (raw dollars), when one is placed. */
  readonly stop: number | null;
  readonly entryRef: number | null;
  readonly initialRisk: number | null;
  readonly sessionsHeld: number;
  /**
   * Trading date of the fill that opened the position (New York). Absent on records written before
   * entry dates were kept; the end-of-day step carries it into the closed trade.
   */
  readonly entryDate?: string;
  /**
   * Set while the broker's position contradicts this record (a short where the ledger holds a long,
   * or any short in a long-only stage): the symbol is halted (no stop, exit or entry is sent for it)
   * until they agree again. The text says why; it was alerted once when set.
   */
  readonly unknownState?: string;
  /**
   * Set while the broker's position shows a split its activities do not list yet (see
   * `core/live/split-guard.ts`): the record stays in the old shares, no stop or exit is derived from
   * it and no entry is sent in the symbol until the split is listed. The text says why; it was
   * alerted once when set.
   */
  readonly unlistedSplit?: string;
  /**
   * The sleeve that owns this position (schema version 2). A positions list holds one record per
   * (sleeve, symbol); `UNASSIGNED_SLEEVE` is the reconciliation bucket (broker shares no sleeve
   * owns). Absent on items written before sleeves (schema version 1): read as the config's only
   * sleeve (`liveSleeveIds(config)[0]`).
   */
  readonly sleeve?: string;
  /**
   * The part of this position's round trip already closed on earlier days (a position reduced
   * without going flat): the next end-of-day resumes the trade from it, so the closed trade counts
   * every share it opened and every exit's P&L. Absent when nothing of it is closed yet.
   */
  readonly realised?: RealisedPart;
}

/**
 * The closed part of a round trip still open (see {@link PositionRecord.realised}): money in integer
 * cents, prices in the same shares as the position (a split scales them with it).
 */
export interface RealisedPart {
  /** Shares closed so far (the position's `qty` is what is still open). */
  readonly qty: number;
  /** Their share of the round trip's entry notional (integer cents). */
  readonly entryCents: number;
  /** Σ the closing fills' notionals (integer cents, each fill rounded to the cent). */
  readonly exitCents: number;
  /** The round trip's average entry price when they closed. */
  readonly entryPrice: number;
  /** Quantity-weighted average price of the closing fills. */
  readonly exitPrice: number;
}

/** The schema version every item the live functions write carries (`schemaVersion`); absent = 1. */
export const STATE_SCHEMA_VERSION = 2;

/** The reconciliation bucket: broker shares that no sleeve owns, until an operator assigns or flattens them. */
export const UNASSIGNED_SLEEVE = 'UNASSIGNED';

/**
 * The day's broker fills a positions list accounts for: the filled quantity booked into it per
 * broker order id. A fill of an order beyond its booked quantity is one the list has not seen.
 */
export type BookedFills = Readonly<Record<string, number>>;

/** A stored positions list. */
export interface PositionsList {
  readonly date: string;
  readonly positions: PositionRecord[];
  /** The time the list is as of (absent on lists written before it was kept). */
  readonly writtenAt?: string;
  /** The day's fills it accounts for (absent on lists written before it was kept). */
  readonly bookedFills?: BookedFills;
}

/**
 * One round trip of a strategy in one symbol, recorded by end-of-day when the position it opened is
 * back to zero: from the first opening fill to the fill that closed it. Keyed by strategy, exit time
 * and symbol, and written by conditional put, so a retried end-of-day records it once. Its P&L
 * feeds the live Kelly cap (`decideAtClose`'s `closedPnls`), as the backtest's closed trades do.
 */
export interface ClosedTradeRecord {
  readonly strategy: string;
  readonly symbol: string;
  readonly side: 'long' | 'short';
  /** Shares opened, and closed, by the round trip. */
  readonly qty: number;
  /** Trading date of the first opening fill; null when the position's record predates entry dates. */
  readonly entryDate: string | null;
  /** Trading date (New York) of the fill that closed it. */
  readonly exitDate: string;
  /** Time of the fill that closed it (ISO): with the strategy and the symbol, the trade's key. */
  readonly exitTime: string;
  /** Average entry price (raw dollars): entry notional / qty. */
  readonly entryPrice: number;
  /** Average exit price (raw dollars): exit notional / qty. */
  readonly exitPrice: number;
  /**
   * Realized P&L in integer cents, as the backtest defines it: side × (exit notional − entry
   * notional) − commissions, each fill's notional rounded to the cent. The broker's fills carry no
   * commission (Alpaca charges none on US equities), so live it is the notional difference.
   */
  readonly pnlCents: number;
  /** Execution id of the fill that closed it. */
  readonly exitExecutionId: string;
  /** When end-of-day recorded it (its scheduled time). */
  readonly recordedAt: string;
  /** A sleeve's trade: why it closed (`exit`, `stop-loss`, ...), as the backtest's trades say. */
  readonly exitReason?: string;
}

/**
 * The walk-forward decision that gates live trading for a sleeve (`VALIDATION/<sleeve>`): a
 * sleeves config's sleeve id, or a single-strategy config's name (its one sleeve).
 */
export interface ValidationRecord {
  /** The sleeve id the record is keyed by (a single-strategy config's name). */
  readonly strategy: string;
  /** SHA-256 of the config the job ran (records written before sleeves: of the config file's text). */
  readonly configHash: string;
  /**
   * The sleeve's hash (`sleeveHash(config, sleeve)`: its own block plus the account settings it
   * depends on) the decision was made on. Absent on records written before sleeves: the gate then
   * compares `configHash` with the deployed config file's.
   */
  readonly sleeveHash?: string;
  readonly proceed: boolean;
  readonly failed: readonly string[];
  readonly jobId: string;
  readonly decidedAt: string;
}

/**
 * The paper-trading validation of a sleeve (`quantshift validate-paper`, docs/validation.md): its
 * go/no-go with the figures it was decided on. The live gate asks for a passing one made on the
 * hash it checks (the sleeve's own, `sleeveHash`: see `paperGateHash`).
 */
export interface PaperValidationRecord {
  readonly sleeve: string;
  readonly configHash: string;
  readonly decision: 'go' | 'no-go';
  readonly failed: readonly string[];
  /** Each criterion's value (null where it could not be measured). */
  readonly figures: Readonly<Record<string, number | null>>;
  readonly sessions: number;
  readonly from: string;
  readonly to: string;
  readonly decidedAt: string;
}

/**
 * An operator action: halt, resume, drawdown reset, an assignment or a flatten of the UNASSIGNED
 * bucket (`quantshift reconcile`), with who and why; and the differences the steps found.
 */
export interface AuditRecord {
  readonly time: string;
  readonly action:
    | 'halt'
    | 'resume'
    | 'drawdown-reset'
    | 'drift'
    | 'breaker'
    | 'reconcile-assign'
    | 'reconcile-flatten';
  readonly by: string;
  readonly reason: string;
  readonly details?: Readonly<Record<string, unknown>>;
}

/**
 * The sleeves' ledger of a sleeves config (one item, versioned like the risk state): `booked` is the
 * state after the fills of `bookedThrough` (written by end-of-day); `decided` is the state after the
 * close step of the session before `decided.day` (mark, reallocation, stops moved), written by
 * generate-signals for that trading day. A rerun of generate-signals recomputes from `booked`.
 */
export interface SleevesStateRecord {
  readonly bookedThrough: string | null;
  readonly booked: SleevesState;
  readonly decided: { readonly day: string; readonly state: SleevesState } | null;
}

/** One sleeve at a session's close, as end-of-day's dated snapshot keeps it. */
export interface SleeveCloseFigures {
  readonly id: string;
  /** The sleeve's cash after the day's fills, integer cents. */
  readonly cashCents: number;
  /** Its equity at the close: cash plus its positions at the day's prices (dollars). */
  readonly equity: number;
  /**
   * Its time-weighted NAV at the close (dollars; capital moved between sleeves excluded): the NAV
   * of the previous close (`state.allocation.nav`) times equity over the equity the previous
   * close's reallocation left it (`state.allocation.prevEquity`), as the close step marks it.
   */
  readonly nav: number;
  /** Its NAV at the previous close (the base of this session's return). */
  readonly navBefore: number;
  /** Whether it held a position at the close. */
  readonly inMarket: boolean;
}

/**
 * A sleeves config's dated snapshot of one session (`SLEEVES_SNAPSHOT`/`<date>`, written by
 * end-of-day, a rerun rewrites the same item): the sleeves' booked state after the day's fills
 * (exact cash in cents, positions, allocation: what the next session's signal step starts from)
 * and each sleeve's figures at the close. The validation starts a shadow backtest from the one of
 * the session before its first, and draws each sleeve's own curve from them.
 */
export interface SleevesSnapshotRecord {
  readonly date: string;
  readonly state: SleevesState;
  readonly sleeves: readonly SleeveCloseFigures[];
  readonly takenAt: string;
}

/** The sleeves behind a client order id's tag (written once per tag). */
export interface OrderTagRecord {
  readonly tag: string;
  readonly stage: string;
  readonly sleeves: readonly string[];
}

/** A conditional write lost: someone else changed the item first. Callers re-read and decide. */
export interface VersionConflict {
  readonly conflict: true;
}

/**
 * A condition of an intent's conditional write besides its status: the intent's `updatedAt` as the
 * writer read it. The write wins only when no other writer wrote the intent since (each write that
 * must exclude another, a sender's stamp before its send and a supersede's settle, moves it).
 */
export interface IntentUnchanged {
  readonly updatedAt: string;
}

export interface StateStore {
  putSession(session: SessionRecord): Promise<void>;
  getSession(date: string): Promise<SessionRecord | undefined>;

  /** Creates the intent only if no intent with that client order id exists; returns the stored one either way. */
  createIntent(intent: IntentRecord): Promise<{ readonly created: boolean; readonly intent: IntentRecord }>;
  getIntent(date: string, clientOrderId: string): Promise<IntentRecord | undefined>;
  /**
   * Updates fields only if the intent's status is one of `from` (and, given `unchanged`, its
   * `updatedAt` is still `unchanged.updatedAt`: no other writer wrote it since the caller read it);
   * returns the new record or a conflict.
   */
  transitionIntent(
    date: string,
    clientOrderId: string,
    from: readonly IntentStatus[],
    patch: Partial<Omit<IntentRecord, 'clientOrderId' | 'date'>>,
    unchanged?: IntentUnchanged,
  ): Promise<IntentRecord | VersionConflict>;
  /**
   * Claims a recorded intent for sending: `recorded` → `submitted` with `claimedBy: claim.by` and
   * `updatedAt: claim.at`, one conditional write. Returns the claimed intent, or a conflict when
   * another run or writer changed it first. A claim that committed but whose answer was lost (the
   * SDK's retry then fails the condition on this very claim) is still returned as claimed: the intent
   * is re-read, `submitted` with this token.
   */
  claimIntent(
    date: string,
    clientOrderId: string,
    claim: { readonly by: string; readonly at: string },
  ): Promise<IntentRecord | VersionConflict>;
  /**
   * A transition that carries a token: `patch` with `settledBy: by`, one conditional write from
   * `from`, as {@link transitionIntent}. A write that committed but whose answer was lost (the SDK's
   * retry then fails the condition on this very write) is still returned as written: the intent is
   * re-read, in the patch's status with this token. So the one writer whose write won, and only it,
   * says so (an alert, a result list) even when DynamoDB's answer never came back. `unchanged`: a
   * condition on `updatedAt` beside the status, as {@link transitionIntent}'s.
   */
  settleIntent(
    date: string,
    clientOrderId: string,
    from: readonly IntentStatus[],
    patch: Partial<Omit<IntentRecord, 'clientOrderId' | 'date' | 'settledBy'>> & {
      readonly status: IntentStatus;
    },
    by: string,
    unchanged?: IntentUnchanged,
  ): Promise<IntentRecord | VersionConflict>;
  listIntents(date: string): Promise<IntentRecord[]>;

  /** Appends a fill; false when that execution id is already in the ledger. */
  appendFill(fill: FillRecord): Promise<boolean>;
  listFills(date: string): Promise<FillRecord[]>;
  /**
   * The fill ledger's watermark (ISO time): every broker fill before it is in the ledger, so
   * end-of-day reads the broker's fills from it (and a later run backfills what an earlier one missed).
   */
  getFillWatermark(): Promise<string | undefined>;
  /** Moves the watermark to `time` only if none is stored or the stored one is earlier (one conditional write); false otherwise. */
  advanceFillWatermark(time: string): Promise<boolean>;

  putEquitySnapshot(snapshot: EquitySnapshot): Promise<void>;
  listEquitySnapshots(from: string, to: string): Promise<EquitySnapshot[]>;
  /** The latest equity snapshot dated strictly before `before` (`YYYY-MM-DD`): one bounded read. */
  getLatestEquitySnapshot(before: string): Promise<EquitySnapshot | undefined>;

  /** Positions as last reconciled with the broker. */
  /**
   * Writes the positions list of `date`. `writtenAt` (ISO): the time the list is as of (the step's
   * time). `bookedFills`: the day's broker fills the list accounts for (filled quantity per broker
   * order id): a reconciliation later on the same day adds the broker's fills beyond them (a fill
   * the list has not seen is no difference); a list without it, the fills after `writtenAt`.
   */
  putPositions(
    date: string,
    positions: readonly PositionRecord[],
    writtenAt?: string,
    bookedFills?: BookedFills,
  ): Promise<void>;
  /**
   * The latest positions record; with `before` (`YYYY-MM-DD`), the latest dated strictly before
   * that day (end-of-day reads the previous session's as the start of today's trades).
   */
  getLatestPositions(before?: string): Promise<PositionsList | undefined>;

  /** Records a closed trade once; false when a trade with that key is already recorded. */
  recordClosedTrade(trade: ClosedTradeRecord): Promise<boolean>;
  /** The strategy's `limit` most recent closed trades (by exit time), oldest first. */
  listClosedTrades(strategy: string, limit: number): Promise<ClosedTradeRecord[]>;

  /** Risk state with optimistic concurrency: `version` 0 means none stored yet. */
  getRiskState(): Promise<{ readonly state: RiskState; readonly version: number } | undefined>;
  putRiskState(
    state: RiskState,
    expectedVersion: number,
  ): Promise<{ readonly version: number } | VersionConflict>;
  appendBreakerEvents(events: readonly BreakerEvent[]): Promise<void>;

  appendAudit(record: AuditRecord): Promise<void>;
  listAudit(from: string, to: string): Promise<AuditRecord[]>;

  /** The sleeves' ledger with optimistic concurrency: `version` 0 means none stored yet. */
  getSleevesState(): Promise<{ readonly record: SleevesStateRecord; readonly version: number } | undefined>;
  putSleevesState(
    record: SleevesStateRecord,
    expectedVersion: number,
  ): Promise<{ readonly version: number } | VersionConflict>;
  /** Stores a session's sleeves snapshot (one item per date: a rerun of the day rewrites it). */
  putSleevesSnapshot(record: SleevesSnapshotRecord): Promise<void>;
  /** The sleeves snapshots dated `from`..`to` inclusive, in date order. */
  listSleevesSnapshots(from: string, to: string): Promise<SleevesSnapshotRecord[]>;
  /** Stores a tag's sleeves once (a second put of the same tag keeps the first). */
  putOrderTag(record: OrderTagRecord): Promise<void>;
  getOrderTag(tag: string): Promise<OrderTagRecord | undefined>;

  putValidation(record: ValidationRecord): Promise<void>;
  getValidation(strategy: string): Promise<ValidationRecord | undefined>;

  /** The latest paper validation of a sleeve (one item per sleeve, last write wins). */
  putPaperValidation(record: PaperValidationRecord): Promise<void>;
  getPaperValidation(sleeve: string): Promise<PaperValidationRecord | undefined>;
}
