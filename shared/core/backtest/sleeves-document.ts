import { formatBarTime } from '../market/types.js';
import type { Metrics } from '../metrics/index.js';
import type { CriterionResult, Decision } from './criteria.js';
import { type BacktestDocument, toBacktestDocument, toTradeDocument } from './document.js';
import type { SleevesBacktestResult } from './sleeves.js';

type TradeDoc = BacktestDocument['trades'][number];

/** The sleeves backtest's JSON: the account's document, each trade with its sleeve, plus sleeves, allocation and correlation. */
export interface SleevesBacktestDocument extends Omit<BacktestDocument, 'trades'> {
  readonly trades: readonly (TradeDoc & { sleeve: string })[];
  readonly sleeves: readonly {
    id: string;
    strategy: string;
    symbols: readonly string[];
    initialCapital: number;
    netPnl: number;
    costs: number;
    metrics: Metrics;
    criteria: readonly CriterionResult[];
    decision: Decision;
    trades: readonly (TradeDoc & { sleeve: string })[];
    equity: readonly { time: string; equity: number; nav: number }[];
  }[];
  readonly allocation: {
    readonly method: string;
    readonly weights: readonly { time: string; weights: Record<string, number> }[];
    readonly events: readonly {
      time: string;
      reason: string;
      before: Record<string, number>;
      weights: Record<string, number>;
      transfers: Record<string, number>;
      inputs: {
        method: string;
        sessions: number;
        volatility: Record<string, number | null>;
        cuts: Record<string, number>;
      };
    }[];
  };
  readonly correlation: {
    readonly sleeves: readonly string[];
    readonly matrix: readonly (readonly (number | null)[])[];
    readonly breaches: readonly {
      time: string;
      action: string;
      a: string;
      b: string;
      rho: number;
      weaker: string;
    }[];
  };
}

const round = (x: number, digits = 6) => Math.round(x * 10 ** digits) / 10 ** digits;

/** Builds the document; `verdicts` gives each sleeve's criteria and decision (same rules as the account's). */
export function toSleevesDocument(
  result: SleevesBacktestResult,
  criteria: readonly CriterionResult[],
  decision: Decision,
  verdict: (metrics: Metrics) => { criteria: readonly CriterionResult[]; decision: Decision },
): SleevesBacktestDocument {
  const base = toBacktestDocument(result, criteria, decision);
  const fmt = (t: number) => formatBarTime(t, result.intraday);
  const ids = result.sleeves.map((s) => s.id);
  const byId = (values: readonly (number | null)[]) =>
    Object.fromEntries(ids.map((id, i) => [id, values[i] === null ? null : round(values[i] as number)]));
  const money = (values: readonly number[]) =>
    Object.fromEntries(ids.map((id, i) => [id, values[i] as number]));
  const tradeDoc = (t: SleevesBacktestResult['trades'][number]) => ({
    sleeve: t.sleeve,
    ...toTradeDocument(t, fmt),
  });
  return {
    ...base,
    trades: result.trades.map(tradeDoc),
    sleeves: result.sleeves.map((s) => ({
      id: s.id,
      strategy: s.strategy,
      symbols: s.symbols,
      initialCapital: s.initialCapital,
      netPnl: s.netPnl,
      costs: s.costs,
      metrics: s.metrics,
      ...verdict(s.metrics),
      trades: s.trades.map(tradeDoc),
      equity: Array.from(result.equity.time, (t, i) => ({
        time: fmt(t),
        equity: s.equity.equity[i] as number,
        nav: round(s.equity.nav[i] as number, 4),
      })),
    })),
    allocation: {
      method: result.allocation.method,
      weights: result.allocation.weights.map((w, i) => ({
        time: fmt(result.equity.time[i] as number),
        weights: byId(w) as Record<string, number>,
      })),
      events: result.allocation.events.map((e) => ({
        time: fmt(e.time),
        reason: e.reason,
        before: byId(e.before) as Record<string, number>,
        weights: byId(e.weights) as Record<string, number>,
        transfers: money(e.transfers),
        inputs: {
          method: e.inputs.method,
          sessions: e.inputs.sessions,
          volatility: byId(e.inputs.volatility),
          cuts: byId(e.inputs.cuts) as Record<string, number>,
        },
      })),
    },
    correlation: {
      sleeves: result.correlation.ids,
      matrix: result.correlation.matrix.map((row) => row.map((x) => (Number.isNaN(x) ? null : round(x, 4)))),
      breaches: result.correlation.events.map((e) => ({ ...e, time: fmt(e.time), rho: round(e.rho, 4) })),
    },
  };
}
