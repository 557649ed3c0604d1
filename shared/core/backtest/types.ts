import type { CommissionModel } from '../ledger/money.js';
import type { BarSeries } from '../market/types.js';
import type { Metrics } from '../metrics/index.js';
import type { BreakerEvent, RiskRules, RiskState } from '../risk/index.js';
import type { ProductTable } from '../sizing/increments.js';
import type { SizingSpec } from '../sizing/index.js';
import type { Direction, StrategyDefinition } from '../strategies/types.js';

export type OrderSide = 'buy' | 'sell';
export type OrderType = 'market' | 'limit' | 'stop' | 'stop-limit' | 'trailing-stop';
/** What an order is for: opening a position, closing it on a signal, or protecting it. */
export type OrderRole = 'entry' | 'exit' | 'stop-loss' | 'take-profit' | 'trailing-stop' | 'end-of-data';
export type OrderStatus = 'open' | 'filled' | 'cancelled' | 'expired' | 'rejected';

/** Every order the engine created, with its outcome. Times are bar timestamps (ms). */
export interface OrderRecord {
  readonly id: number;
  readonly symbol: string;
  readonly side: OrderSide;
  readonly type: OrderType;
  readonly role: OrderRole;
  /** NaN for an all-in entry until it is sized at the fill. */
  qty: number;
  readonly limitPrice?: number;
  /** Mutable for protective stops, which stop management moves (as a live system replaces the order). */
  stopPrice?: number;
  readonly trailAmount?: number;
  readonly trailPercent?: number;
  /** `day` orders live for one session; protective orders are `gtc` until the position closes. */
  readonly timeInForce: 'day' | 'gtc';
  readonly createdTime: number;
  status: OrderStatus;
  closedTime?: number;
  fillPrice?: number;
  /** Why it was rejected, cancelled or expired. */
  reason?: string;
}

/** One execution. Commission and notional are exact cents converted to dollars. */
export interface FillRecord {
  readonly orderId: number;
  readonly symbol: string;
  readonly side: OrderSide;
  readonly qty: number;
  readonly price: number;
  readonly time: number;
  readonly notional: number;
  readonly commission: number;
}

/** A round trip. An open position at the end (`endOfData: 'hold'`) has null exit fields. */
export interface TradeRecord {
  readonly symbol: string;
  readonly direction: 'long' | 'short';
  readonly qty: number;
  readonly entryTime: number;
  readonly entryPrice: number;
  readonly exitTime: number | null;
  readonly exitPrice: number | null;
  /** Net of commissions on both sides, in dollars; for an open trade, marked at the last close. */
  readonly pnl: number;
  readonly commission: number;
  readonly exitReason: OrderRole | null;
}

/** An entry the engine did not place, or placed smaller, and why. */
export interface SkippedEntry {
  readonly time: number;
  readonly symbol: string;
  readonly reason: string;
  readonly requestedQty?: number;
  readonly placedQty?: number;
  /** Sleeves: the index of the sleeve whose entry this was. */
  readonly book?: number;
}

/** How the backtest runs. Money amounts are dollars; the ledger keeps them in cents. */
export interface BacktestOptions {
  readonly initialCash: number;
  readonly sizing: SizingSpec;
  /** Cap on one position's value as a fraction of equity; absent means no cap. */
  readonly maxPositionFraction?: number;
  /** Fraction of buying power left unspent by entries sized at the decision (gap protection). */
  readonly cashBuffer: number;
  readonly commission: CommissionModel;
  /** Adverse slippage on market and stop fills, in basis points of the price. */
  readonly slippageBps: number;
  readonly fractional: boolean;
  /**
   * The products' base increments and minimum sizes by symbol (a crypto config's `products:`): an
   * entry's quantity is rounded down to its increment and refused under its minimums
   * (`orderableQty`). Absent: whole shares, or 1e-6 steps when `fractional`.
   */
  readonly products?: ProductTable;
  /** At the last bar: keep positions open, marked at the close, or close them at the close. */
  readonly endOfData: 'hold' | 'close';
  /**
   * Which sides the run may hold (default `long-only`): `long-only` ignores the strategy's short side,
   * `long-short` takes it as written. The strategy must support it (`directions`).
   */
  readonly direction?: Direction;
  /** First calendar slot that trades (earlier bars only warm the indicators up). Default 0. */
  readonly startIndex?: number;
  /** Last calendar slot, inclusive. Default: the last one. */
  readonly endIndex?: number;
  /** Annual risk-free rate for Sharpe and Sortino, as a fraction. */
  readonly riskFreeRate: number;
  /**
   * Daily periods a year for annualisation (Sharpe, Sortino, volatility, the deflated Sharpe):
   * 252 for equities (the default), 365 for crypto. See `core/market/asset-class.ts`.
   */
  readonly periodsPerYear?: number;
  /**
   * The risk rules (stops on every entry, risk budget, position and heat caps, Kelly, correlation,
   * breakers). Absent: none apply, and `maxPositionFraction` is the only cap.
   */
  readonly risk?: RiskRules;
  /**
   * Positions held when the first traded slot (`startIndex`) begins (a shadow backtest of a later
   * stretch of paper trading, docs/validation.md): booked at that slot's close out of `initialCash`,
   * which stays the starting equity; their protective stops are live from the next slot. The
   * strategies see them from that slot's bar on. Reference engine only.
   */
  readonly openingPositions?: readonly OpeningPosition[];
}

/** A position the backtest starts with (see `BacktestOptions.openingPositions`). */
export interface OpeningPosition {
  readonly symbol: string;
  readonly side: 'long' | 'short';
  readonly qty: number;
  /** Average entry price, raw dollars (the trade's P&L is measured from it). */
  readonly entryPrice: number;
  /** When it was entered (epoch ms): the trade's entry time. */
  readonly entryTime: number;
  /** The protective stop, if it has one. */
  readonly stop?: number;
  /** The decision close the entry was sized at (default: the entry price). */
  readonly entryRef?: number;
  /** One R: the distance from `entryRef` to the initial stop (default: none). */
  readonly initialRisk?: number;
  /** Sessions held so far. */
  readonly sessionsHeld?: number;
}

/** An entry the risk rules refused. */
export interface RefusedEntry {
  readonly time: number;
  readonly symbol: string;
  readonly reason: string;
  /** Sleeves: the index of the sleeve whose entry this was. */
  readonly book?: number;
}

/** An entry the risk rules made smaller, with every rule that cut it. */
export interface ReducedEntry {
  readonly time: number;
  readonly symbol: string;
  readonly requestedQty: number;
  readonly qty: number;
  readonly reasons: readonly string[];
  /** Sleeves: the index of the sleeve whose entry this was. */
  readonly book?: number;
}

/** An entry the risk rules let through, with the figures they checked it against. */
export interface EntryDecision {
  readonly time: number;
  readonly symbol: string;
  readonly side: 'long' | 'short';
  readonly qty: number;
  /** Decision close: the entry reference price. */
  readonly price: number;
  readonly stop: number;
  readonly equity: number;
  /** Portfolio heat in dollars once this entry is counted. */
  readonly heatAfter: number;
  /** Sleeves: the index of the sleeve whose entry this was. */
  readonly book?: number;
}

/** What the risk rules did during a backtest. */
export interface RiskReport {
  /** Highest heat at a close, after that close's decisions, as a percent of equity. */
  readonly peakHeatPct: number;
  /** Heat after each close's decisions, percent of equity, aligned with the equity curve. */
  readonly heatPct: Float64Array;
  /** Every breaker trip and reset, in order. */
  readonly breakerEvents: readonly BreakerEvent[];
  readonly refusedEntries: readonly RefusedEntry[];
  readonly reducedEntries: readonly ReducedEntry[];
  readonly entryDecisions: readonly EntryDecision[];
  /** How many times stop management moved a stop. */
  readonly stopMoves: number;
  readonly finalState: RiskState;
  /** Rolling correlation of daily returns at the end, symbols in result order (NaN: undefined). */
  readonly correlation: readonly (readonly number[])[];
}

/** Everything a backtest needs. */
export interface BacktestInput<P = unknown> {
  /** One series per symbol; they are aligned on the union of their timestamps. */
  readonly series: readonly BarSeries[];
  readonly strategy: StrategyDefinition<P>;
  /** Raw parameters; validated with the strategy's schema. */
  readonly params: unknown;
  readonly options: BacktestOptions;
}

/** Everything a backtest produced. */
export interface BacktestResult {
  readonly symbols: readonly string[];
  readonly orders: readonly OrderRecord[];
  readonly fills: readonly FillRecord[];
  readonly trades: readonly TradeRecord[];
  readonly skippedEntries: readonly SkippedEntry[];
  /** Equity marked at each traded close (after end-of-data closing on the last one). */
  readonly equity: {
    readonly time: Float64Array;
    readonly equity: Float64Array;
    readonly inMarket: Uint8Array;
  };
  readonly metrics: Metrics;
  /** The annualisation the metrics used (252 equities, 365 crypto). */
  readonly periodsPerYear: number;
  readonly intraday: boolean;
  /** Present when the risk rules applied. */
  readonly risk?: RiskReport;
}
