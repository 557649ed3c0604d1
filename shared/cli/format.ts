import type { CriterionResult } from '../core/backtest/criteria.js';
import { num } from '../report/number.js';

/** Renders rows as an aligned text table; numbers are right-aligned. */
export function renderTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const numeric = header.map((_, i) => rows.every((r) => /^[-+]?[\d.,]+%?$|^-$|^n\/a$/.test(r[i] ?? '')));
  const line = (cells: readonly string[]) =>
    cells.map((c, i) => (numeric[i] ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/** The criteria as a table: name, rule, value and PASS or FAIL; `title` heads the first column. */
export function renderCriteriaTable(title: string, criteria: readonly CriterionResult[]): string {
  return renderTable(
    [title, 'Rule', 'Value', 'Result'],
    criteria.map((c) => [c.name, `${c.op} ${c.threshold}`, num(c.value), c.pass ? 'PASS' : 'FAIL']),
  );
}

/** The decision line under the criteria: PROCEED (with why, when given) or REFINE with what failed. */
export function renderDecision(
  decision: { readonly proceed: boolean; readonly failed: readonly string[] },
  why?: string,
): string {
  if (!decision.proceed) return `Decision: REFINE (failed: ${decision.failed.join(', ')})`;
  return why === undefined
    ? 'Decision: PROCEED to paper trading'
    : `Decision: PROCEED to paper trading (${why})`;
}

export { num };
