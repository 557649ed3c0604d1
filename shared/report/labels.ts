/**
 * Human labels for the report: metric names with their units, and the kinds of entries the sizing
 * and risk rules reduced or refused, each with what it means and how often it happened.
 */

/** Metric and criterion keys as people read them, with units. */
const LABELS: Readonly<Record<string, string>> = {
  trades: 'Closed trades',
  returnPct: 'Total return [%]',
  cagrPct: 'CAGR [% a year]',
  annualReturnPct: 'Annual return (CAGR) [% a year]',
  volatilityPct: 'Volatility, annualized [%]',
  equityFinal: 'Final equity [$]',
  equityPeak: 'Peak equity [$]',
  maxDrawdownPct: 'Max drawdown [%]',
  maxDrawdownDays: 'Max drawdown duration [days]',
  winRatePct: 'Win rate [% of trades]',
  profitFactor: 'Profit factor [gross win / gross loss]',
  avgWin: 'Average win [$]',
  avgLoss: 'Average loss [$]',
  expectancy: 'Expectancy [$ per trade]',
  sharpe: 'Sharpe ratio (annualized)',
  sortino: 'Sortino ratio (annualized)',
  calmar: 'Calmar ratio [CAGR / max drawdown]',
  exposurePct: 'Exposure [% of days in the market]',
  buyHoldReturnPct: 'Buy & hold return [%]',
  kelly: 'Kelly fraction',
  oosReturnPct: 'Walk-forward out-of-sample return [%]',
  wfEfficiency: 'Walk-forward efficiency [OOS / IS CAGR]',
  minSymbolsPositivePct: 'Symbols with a positive OOS return [%]',
};

/** The label of a metric or criterion key; unknown keys are shown as they are. */
export function metricLabel(key: string): string {
  return LABELS[key] ?? key;
}

/** One kind of reduced or refused entry: what it means and how many entries it touched. */
export interface EntryAdjustmentKind {
  readonly kind: string;
  readonly effect: 'reduced' | 'refused' | 'skipped';
  readonly count: number;
  readonly explanation: string;
  /** One reason as the engine wrote it, for reference. */
  readonly example: string;
}

const KINDS: readonly { kind: string; test: RegExp; explanation: string }[] = [
  {
    kind: 'Kelly cap',
    test: /^Kelly cap/,
    explanation:
      'The fractional Kelly estimate from the recent closed trades was below the risk-per-trade budget, so the risk per trade was cut to it (never below kellyMinRisk). This is why the full budget is rarely used once trades have a mixed record.',
  },
  {
    kind: 'Correlation cut',
    test: /^correlated with/,
    explanation:
      'The symbol moved closely with a position already held or decided (|ρ| at or above the threshold), so its risk was multiplied by the correlation reduction.',
  },
  {
    kind: 'Risk-per-trade budget',
    test: /^risk per trade/,
    explanation:
      'The size asked for would have lost more than the risk budget at the stop, so it was cut to risk budget × equity / stop distance.',
  },
  {
    kind: 'Position cap',
    test: /^position cap|reduced by the position cap/,
    explanation:
      "The position's value would have exceeded the position cap's share of equity, or the cash left.",
  },
  {
    kind: 'Portfolio heat cap',
    test: /^portfolio heat cap/,
    explanation:
      'The open risk of all positions (their distance to their stops) would have exceeded the portfolio heat cap, so the entry got only the room left.',
  },
  {
    kind: 'No heat room',
    test: /leaves no room/,
    explanation: 'The open positions already used the whole portfolio heat cap: the entry was refused.',
  },
  {
    kind: 'Rounds to zero',
    test: /rounds to zero/,
    explanation: 'After the caps, the size was under one share (whole shares only).',
  },
  {
    kind: 'No stop',
    test: /no stop|no valid stop/,
    explanation: 'Every entry needs a protective stop; this one had none yet (its ATR was still warming up).',
  },
  {
    kind: 'Buying power',
    test: /buying power/,
    explanation: 'The cash left (less the cash buffer) could not pay for the entry at the fill.',
  },
  {
    kind: 'Breaker or halt',
    test: /drawdown|daily loss|kill switch|halt|breaker/i,
    explanation: 'A tripped breaker or an operator halt blocked new entries that day.',
  },
];

function kindOf(reason: string): { kind: string; explanation: string } {
  return (
    KINDS.find((k) => k.test.test(reason)) ?? { kind: 'Other', explanation: 'See the reason as written.' }
  );
}

/**
 * Groups the reduced, refused and skipped entries of a backtest by kind, with counts. An entry
 * reduced for several reasons counts once under each of them.
 */
export function entryAdjustments(input: {
  readonly refused: readonly { reason: string }[];
  readonly reduced: readonly { reasons: readonly string[] }[];
  readonly skipped: readonly { reason: string; placedQty?: number }[];
}): EntryAdjustmentKind[] {
  const counts = new Map<string, EntryAdjustmentKind>();
  const add = (effect: EntryAdjustmentKind['effect'], reasons: readonly string[]) => {
    const seen = new Set<string>();
    for (const reason of reasons) {
      const { kind, explanation } = kindOf(reason);
      const key = `${effect}/${kind}`;
      if (seen.has(key)) continue;
      seen.add(key);
      const before = counts.get(key);
      counts.set(key, {
        kind,
        effect,
        count: (before?.count ?? 0) + 1,
        explanation,
        example: before?.example ?? reason,
      });
    }
  };
  for (const r of input.refused) add('refused', [r.reason]);
  for (const r of input.reduced) add('reduced', r.reasons);
  for (const s of input.skipped)
    add(s.placedQty !== undefined && s.placedQty > 0 ? 'reduced' : 'skipped', [s.reason]);
  return [...counts.values()].sort((a, b) => b.count - a.count || a.kind.localeCompare(b.kind));
}
