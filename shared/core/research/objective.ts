import type { Metrics } from '../metrics/index.js';

/** Every metric an objective or a minimum can name. */
export const METRIC_NAMES = [
  'trades',
  'returnPct',
  'cagrPct',
  'volatilityPct',
  'equityFinal',
  'equityPeak',
  'maxDrawdownPct',
  'maxDrawdownDays',
  'winRatePct',
  'profitFactor',
  'avgWin',
  'avgLoss',
  'expectancy',
  'sharpe',
  'sortino',
  'calmar',
  'exposurePct',
  'buyHoldReturnPct',
  'kelly',
] as const satisfies readonly (keyof Metrics)[];

/** Metrics where smaller is better; every other objective is maximised. */
const LOWER_IS_BETTER: ReadonlySet<keyof Metrics> = new Set([
  'maxDrawdownPct',
  'maxDrawdownDays',
  'volatilityPct',
]);

/** What the optimizer maximises (or minimises), and the minimums a result must meet to count. */
export interface Objective {
  readonly metric: keyof Metrics;
  /** Metric → minimum value (for lower-is-better metrics: maximum). */
  readonly minimums: Readonly<Partial<Record<keyof Metrics, number>>>;
}

/** The objective's value for a result, or null when a minimum fails or the metric is undefined. */
export function objectiveValue(metrics: Metrics, objective: Objective): number | null {
  for (const [key, bound] of Object.entries(objective.minimums) as [keyof Metrics, number][]) {
    const value = metrics[key] as number | null;
    if (value === null) return null;
    if (LOWER_IS_BETTER.has(key) ? value > bound : value < bound) return null;
  }
  return metrics[objective.metric] as number | null;
}

/**
 * Indices of the results ranked best first. Results without an objective value come last; ties
 * keep grid order, so the ranking is the same whatever the evaluation order.
 */
export function rankResults(results: readonly Metrics[], objective: Objective): number[] {
  const lower = LOWER_IS_BETTER.has(objective.metric);
  const values = results.map((m) => objectiveValue(m, objective));
  return results
    .map((_, i) => i)
    .sort((a, b) => {
      const va = values[a] as number | null;
      const vb = values[b] as number | null;
      if (va === null || vb === null) return va === null ? (vb === null ? a - b : 1) : -1;
      if (va !== vb) return lower ? va - vb : vb - va;
      return a - b;
    });
}
