import { formatBarTime } from '../market/types.js';
import type { Metrics } from '../metrics/index.js';
import type { CriterionResult, Decision } from './criteria.js';
import type { BacktestResult, SkippedEntry } from './types.js';

/** The machine-readable backtest result (`quantshift backtest --format json`). */
export interface BacktestDocument {
  readonly symbols: readonly string[];
  readonly from: string;
  readonly to: string;
  readonly metrics: Metrics;
  /** Daily periods a year the metrics are annualised with: 252 (equities) or 365 (crypto). */
  readonly periodsPerYear: number;
  readonly trades: readonly {
    symbol: string;
    direction: 'long' | 'short';
    qty: number;
    entryTime: string;
    entryPrice: number;
    exitTime: string | null;
    exitPrice: number | null;
    pnl: number;
    commission: number;
    exitReason: string | null;
  }[];
  readonly equity: readonly { time: string; equity: number }[];
  readonly criteria: readonly CriterionResult[];
  readonly decision: Decision;
  readonly skippedEntries: readonly (Omit<SkippedEntry, 'time'> & { time: string })[];
  readonly orders: { readonly placed: number; readonly filled: number; readonly rejected: number };
  /** Present when the risk rules applied. */
  readonly risk?: RiskDocument;
}

/** What the risk rules did, in the backtest document. */
export interface RiskDocument {
  readonly peakHeatPct: number;
  readonly breakerTrips: readonly {
    time: string;
    breaker: string;
    reason: string;
    figures: Record<string, number>;
  }[];
  readonly breakerResets: readonly { time: string; breaker: string; reason: string; by: string | null }[];
  readonly refusedEntries: readonly { time: string; symbol: string; reason: string }[];
  readonly reducedEntries: readonly {
    time: string;
    symbol: string;
    requestedQty: number | null;
    qty: number;
    reasons: readonly string[];
  }[];
  readonly stopMoves: number;
  readonly heat: readonly { time: string; heatPct: number }[];
  readonly correlation: {
    readonly symbols: readonly string[];
    readonly matrix: readonly (readonly (number | null)[])[];
  };
}

/** Builds the JSON document from a result; timestamps become `YYYY-MM-DD` (or date-times for intraday bars). */
export function toBacktestDocument(
  result: BacktestResult,
  criteria: readonly CriterionResult[],
  decision: Decision,
): BacktestDocument {
  const fmt = (t: number) => formatBarTime(t, result.intraday);
  const times = result.equity.time;
  return {
    symbols: result.symbols,
    from: fmt(times[0] as number),
    to: fmt(times[times.length - 1] as number),
    metrics: result.metrics,
    periodsPerYear: result.periodsPerYear,
    trades: result.trades.map((t) => toTradeDocument(t, fmt)),
    equity: Array.from(times, (t, i) => ({ time: fmt(t), equity: result.equity.equity[i] as number })),
    criteria,
    decision,
    skippedEntries: result.skippedEntries.map((s) => ({ ...s, time: fmt(s.time) })),
    orders: {
      placed: result.orders.length,
      filled: result.orders.filter((o) => o.status === 'filled').length,
      rejected: result.orders.filter((o) => o.status === 'rejected').length,
    },
    ...(result.risk === undefined ? {} : { risk: toRiskDocument(result, fmt) }),
  };
}

/** One trade as the document shows it, its times formatted with `fmt`. */
export function toTradeDocument(
  t: BacktestResult['trades'][number],
  fmt: (t: number) => string,
): BacktestDocument['trades'][number] {
  return {
    symbol: t.symbol,
    direction: t.direction,
    qty: t.qty,
    entryTime: fmt(t.entryTime),
    entryPrice: t.entryPrice,
    exitTime: t.exitTime === null ? null : fmt(t.exitTime),
    exitPrice: t.exitPrice,
    pnl: t.pnl,
    commission: t.commission,
    exitReason: t.exitReason,
  };
}

function toRiskDocument(result: BacktestResult, fmt: (t: number) => string): RiskDocument {
  const risk = result.risk as NonNullable<BacktestResult['risk']>;
  const round = (x: number) => Math.round(x * 10_000) / 10_000;
  return {
    peakHeatPct: round(risk.peakHeatPct),
    breakerTrips: risk.breakerEvents
      .filter((e) => e.action === 'trip')
      .map((e) => ({ time: fmt(e.time), breaker: e.breaker, reason: e.reason, figures: { ...e.figures } })),
    breakerResets: risk.breakerEvents
      .filter((e) => e.action === 'reset')
      .map((e) => ({ time: fmt(e.time), breaker: e.breaker, reason: e.reason, by: e.by ?? null })),
    refusedEntries: risk.refusedEntries.map((r) => ({ ...r, time: fmt(r.time) })),
    reducedEntries: risk.reducedEntries.map((r) => ({
      ...r,
      time: fmt(r.time),
      requestedQty: Number.isNaN(r.requestedQty) ? null : r.requestedQty,
    })),
    stopMoves: risk.stopMoves,
    heat: Array.from(result.equity.time, (t, i) => ({
      time: fmt(t),
      heatPct: round(risk.heatPct[i] as number),
    })),
    correlation: {
      symbols: result.symbols,
      matrix: risk.correlation.map((row) => row.map((x) => (Number.isNaN(x) ? null : round(x)))),
    },
  };
}
