import type { StrategyConfig } from '../config/schema.js';
import type { Metrics } from '../metrics/index.js';

/** One success criterion checked against a metric. */
export interface CriterionResult {
  readonly name: string;
  readonly metric: keyof Metrics;
  readonly op: '>' | '<' | '>=';
  readonly threshold: number;
  readonly value: number | null;
  readonly pass: boolean;
}

/** The overall verdict: proceed when every criterion passes. */
export interface Decision {
  readonly proceed: boolean;
  readonly failed: readonly string[];
}

/**
 * Checks the config's success criteria. A metric that is undefined (null: no trades, no losses to
 * divide by...) fails its criterion, except a profit factor with no losing trade, which passes only
 * when there was at least one winner.
 */
export function evaluateCriteria(metrics: Metrics, criteria: StrategyConfig['criteria']): CriterionResult[] {
  const check = (name: string, metric: keyof Metrics, op: '>' | '<', threshold: number): CriterionResult => {
    const value = metrics[metric] as number | null;
    let pass = value !== null && (op === '>' ? value > threshold : value < threshold);
    if (metric === 'profitFactor' && value === null)
      pass = (metrics.avgWin ?? 0) > 0 && metrics.avgLoss === null;
    return { name, metric, op, threshold, value, pass };
  };
  return [
    check('sharpe', 'sharpe', '>', criteria.minSharpe),
    check('maxDrawdownPct', 'maxDrawdownPct', '<', criteria.maxDrawdownPct),
    check('winRatePct', 'winRatePct', '>', criteria.minWinRatePct),
    check('profitFactor', 'profitFactor', '>', criteria.minProfitFactor),
    check('annualReturnPct', 'cagrPct', '>', criteria.minAnnualReturnPct),
  ];
}

/** "proceed to paper trading" when every criterion passes, otherwise "refine" with what failed. */
export function decide(results: readonly CriterionResult[]): Decision {
  const failed = results.filter((r) => !r.pass).map((r) => r.name);
  return { proceed: failed.length === 0, failed };
}
