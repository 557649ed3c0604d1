import type { BreakerEvent, RiskState } from '../risk/breakers.js';

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
}

/** The walk-forward decision that gates live trading for a strategy (issue: the validation gate). */
export interface ValidationRecord {
  readonly strategy: string;
  readonly configHash: string;
  readonly proceed: boolean;
  readonly failed: readonly string[];
  readonly jobId: string;
  readonly decidedAt: string;
}

/** An operator action: halt, resume, drawdown reset, with who and why. */
export interface AuditRecord {
  readonly time: string;
  readonly action: 'halt' | 'resume' | 'drawdown-reset' | 'drift' | 'breaker';
  readonly by: string;
  readonly reason: string;
  readonly details?: Readonly<Record<string, unknown>>;
}

/** A conditional write lost: someone else changed the item first. Callers re-read and decide. */
export interface VersionConflict {
  readonly conflict: true;
}

export interface StateStore {
  putSession(session: SessionRecord): Promise<void>;
  getSession(date: string): Promise<SessionRecord | undefined>;

  /** Creates the intent only if no intent with that client order id exists; returns the stored one either way. */
  createIntent(intent: IntentRecord): Promise<{ readonly created: boolean; readonly intent: IntentRecord }>;
  getIntent(date: string, clientOrderId: string): Promise<IntentRecord | undefined>;
  /** Updates fields only if the intent's status is one of `from`; returns the new record or a conflict. */
  transitionIntent(
    date: string,
    clientOrderId: string,
    from: readonly IntentStatus[],
    patch: Partial<Omit<IntentRecord, 'clientOrderId' | 'date'>>,
  ): Promise<IntentRecord | VersionConflict>;
  listIntents(date: string): Promise<IntentRecord[]>;

  /** Appends a fill; false when that execution id is already in the ledger. */
  appendFill(fill: FillRecord): Promise<boolean>;
  listFills(date: string): Promise<FillRecord[]>;

  putEquitySnapshot(snapshot: EquitySnapshot): Promise<void>;
  listEquitySnapshots(from: string, to: string): Promise<EquitySnapshot[]>;

  /** Positions as last reconciled with the broker. */
  putPositions(date: string, positions: readonly PositionRecord[]): Promise<void>;
  getLatestPositions(): Promise<{ readonly date: string; readonly positions: PositionRecord[] } | undefined>;

  /** Risk state with optimistic concurrency: `version` 0 means none stored yet. */
  getRiskState(): Promise<{ readonly state: RiskState; readonly version: number } | undefined>;
  putRiskState(
    state: RiskState,
    expectedVersion: number,
  ): Promise<{ readonly version: number } | VersionConflict>;
  appendBreakerEvents(events: readonly BreakerEvent[]): Promise<void>;

  appendAudit(record: AuditRecord): Promise<void>;
  listAudit(from: string, to: string): Promise<AuditRecord[]>;

  putValidation(record: ValidationRecord): Promise<void>;
  getValidation(strategy: string): Promise<ValidationRecord | undefined>;
}
