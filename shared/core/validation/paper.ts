/**
 * Paper-trading validation (docs/validation.md): what paper trading did, from the ledger the live
 * functions keep, against a shadow backtest over exactly the same sessions, and the go/no-go that
 * the live gate asks for. Pure: the caller reads the state and runs the backtest.
 */
import type { PaperValidationCriteria } from '../config/schema.js';
import { computeMetrics } from '../metrics/index.js';
import type {
  AuditRecord,
  ClosedTradeRecord,
  EquitySnapshot,
  FillRecord,
  IntentRecord,
  PositionRecord,
} from '../ports/state-store.js';
import type { BreakerEvent } from '../risk/breakers.js';
import { RollingCorrelation } from '../risk/correlation.js';
import { positionHeat } from '../risk/sizing.js';

/** A broker fill (its activities), to find the fills the ledger lost. */
export interface BrokerFillSeen {
  readonly id: string;
  readonly symbol: string;
  readonly side: 'buy' | 'sell';
  readonly qty: number;
  readonly time: string;
  readonly date: string;
}

/** An alert the functions published (when the state keeps them). */
export interface AlertSeen {
  readonly time: string;
  readonly severity: string;
  readonly subject: string;
}

/** What paper trading did over the validated sessions, for one sleeve. */
export interface PaperLedger {
  readonly sleeve: string;
  /** Equity at the close before the first session (the shadow backtest's starting cash). */
  readonly initialEquity: number;
  /** One snapshot per traded session, in date order: the sessions validated. */
  readonly equity: readonly EquitySnapshot[];
  /** The sleeve's intents of those sessions. */
  readonly intents: readonly IntentRecord[];
  /** The fill ledger of those sessions (a sleeves config: of the orders carrying the sleeves' legs). */
  readonly fills: readonly FillRecord[];
  /**
   * A sleeves config: each sleeve's trades, from its legs (their filled quantity, on their day) and
   * its own orders' fills (stops, kill-switch exits); absent: the trades are the fills'.
   */
  readonly sleeveTrades?: readonly {
    readonly sleeve: string;
    readonly symbol: string;
    readonly date: string;
    readonly side: 'buy' | 'sell';
    readonly qty: number;
  }[];
  /** The broker's own fills, when known (a kept local state): fills missing from the ledger are lost. */
  readonly brokerFills?: readonly BrokerFillSeen[];
  /** Positions as reconciled at each session's end. */
  readonly positions: readonly { readonly date: string; readonly positions: readonly PositionRecord[] }[];
  /**
   * Positions before the first session: the shadow backtest (single-strategy or sleeves) starts from
   * them; one that starts flat with some here says so in a caveat.
   */
  readonly startPositions: readonly PositionRecord[];
  readonly closedTrades: readonly ClosedTradeRecord[];
  readonly breakerEvents: readonly BreakerEvent[];
  readonly audit: readonly AuditRecord[];
  /** The alerts of the period, or null when the state does not keep them (a deployed stage: Slack has them). */
  readonly alerts: readonly AlertSeen[] | null;
  /**
   * The validated sleeve's own curve (a sleeves config's sleeve, from end-of-day's dated sleeve
   * snapshots): its time-weighted NAV at the close before the first session and at each session's
   * close. Absent: the curves, tracking and paper metrics are the account's equity snapshots'.
   */
  readonly curve?: SleeveCurve;
}

/** A sleeve's own equity curve: its time-weighted NAV (capital moved between sleeves excluded). */
export interface SleeveCurve {
  /** At the close before the first session. */
  readonly initial: number;
  readonly points: readonly {
    readonly date: string;
    readonly equity: number;
    readonly inMarket: boolean;
  }[];
}

/** The shadow backtest over the same sessions, from the same cash. */
export interface ShadowBacktest {
  /** Its fills, by session. */
  readonly fills: readonly {
    /** The sleeve whose trade it is (a sleeves config); absent: the validated sleeve's. */
    readonly sleeve?: string;
    readonly symbol: string;
    readonly side: 'buy' | 'sell';
    readonly qty: number;
    readonly date: string;
    readonly price: number;
  }[];
  /** Equity at each session's close. */
  readonly equity: readonly { readonly date: string; readonly equity: number }[];
  readonly metrics: PerformanceFigures;
  /** The positions it started from (`qty SYMBOL`), when not flat. */
  readonly openingPositions?: readonly string[];
  /** The curve's value at the close before the first session (default: the ledger's initial equity). */
  readonly initial?: number;
  /**
   * A sleeves backtest: each sleeve's own curve over the sessions (its time-weighted NAV, as the
   * paper sleeve's) and its metrics over them, by sleeve id.
   */
  readonly sleeveCurves?: Readonly<Record<string, SleeveCurve & { readonly metrics: PerformanceFigures }>>;
}

export interface PerformanceFigures {
  readonly returnPct: number;
  readonly sharpe: number | null;
  readonly maxDrawdownPct: number;
  readonly winRatePct: number | null;
  readonly profitFactor: number | null;
  readonly trades: number;
}

/** Market prices the figures are measured against. */
export interface SessionPrices {
  /** The session's official open (what the backtest fills market-on-open orders at, before slippage). */
  open(symbol: string, date: string): number | undefined;
  close(symbol: string, date: string): number | undefined;
}

export interface TradeKey {
  readonly sleeve: string;
  readonly symbol: string;
  readonly session: string;
  readonly side: 'buy' | 'sell';
}

export interface Criterion {
  readonly name: string;
  readonly rule: string;
  readonly value: number | null;
  readonly result: 'pass' | 'fail';
}

export interface Distribution {
  readonly count: number;
  readonly median: number | null;
  readonly p95: number | null;
  readonly mean: number | null;
}

export interface PaperValidation {
  readonly sleeve: string;
  readonly from: string | null;
  readonly to: string | null;
  readonly sessions: number;
  readonly trades: {
    readonly paper: number;
    readonly backtest: number;
    readonly matchedPct: number | null;
    readonly matched: readonly (TradeKey & { readonly paperQty: number; readonly backtestQty: number })[];
    readonly missed: readonly (TradeKey & { readonly qty: number; readonly reason: string })[];
    readonly extra: readonly (TradeKey & { readonly qty: number; readonly reason: string })[];
  };
  /** Market-on-open fills against the session open, bps, worse = positive. */
  readonly slippageBps: Distribution & {
    readonly bySymbol: Readonly<Record<string, Distribution>>;
    readonly bySide: Readonly<Record<string, Distribution>>;
  };
  /** Stop fills against their stop price, bps, worse = positive. */
  readonly stopSlippageBps: Distribution;
  /** Against the decision close (the intent's `referencePrice`). */
  readonly implementationShortfall: {
    readonly bps: Distribution;
    /** Dollars, positive = cost: delay (close to open), execution (open to fill), fees, opportunity (unfilled). */
    readonly delay: number;
    readonly execution: number;
    readonly fees: number;
    readonly opportunity: number;
    readonly total: number;
  };
  readonly execution: {
    readonly marketOnOpenOrders: number;
    /** Fully filled market-on-open orders / those sent, %. */
    readonly fillRatePct: number | null;
    readonly partialFills: number;
    readonly rejected: readonly string[];
    readonly unknown: readonly string[];
    readonly lostFills: readonly string[];
    readonly reconciliationMismatches: number;
    readonly criticalFailures: number;
  };
  readonly tracking: {
    readonly correlation: number | null;
    /** Standard deviation of the daily return difference, annualised, %. */
    readonly trackingErrorPct: number | null;
    /** Paper total return − backtest total return, percentage points. */
    readonly returnGapPct: number | null;
    /** Execution shortfall beyond the cost model's slippage, % of the starting equity. */
    readonly excessCostPct: number;
  };
  readonly paper: PerformanceFigures | null;
  readonly backtest: PerformanceFigures | null;
  /**
   * Realized P&L of the period's closed trades (dollars) by sleeve, symbol and side, with the costs
   * on their own line: commissions (none in the ledger) and slippage (execution shortfall against
   * the open, positive = cost).
   */
  readonly attribution: {
    readonly bySleeve: Readonly<Record<string, number>>;
    readonly bySymbol: Readonly<Record<string, number>>;
    readonly bySide: Readonly<Record<string, number>>;
    readonly costs: { readonly commission: number; readonly slippage: number };
  };
  readonly risk: {
    readonly violations: readonly string[];
    readonly breakerTrips: number;
  };
  readonly alerts: { readonly critical: readonly string[]; readonly total: number } | null;
  readonly caveats: readonly string[];
  readonly criteria: readonly Criterion[];
  readonly failed: readonly string[];
  readonly decision: 'go' | 'no-go';
}

/** Realized P&L in dollars of the trades, summed per key. */
function sumsBy(
  trades: readonly ClosedTradeRecord[],
  key: (t: ClosedTradeRecord) => string,
): Record<string, number> {
  const out: Record<string, number> = {};
  for (const t of trades) out[key(t)] = (out[key(t)] ?? 0) + t.pnlCents / 100;
  return out;
}

const sumBy = (trades: readonly ClosedTradeRecord[], key: (t: ClosedTradeRecord) => string) =>
  Object.values(sumsBy(trades, key)).reduce((a, b) => a + b, 0);

/** Linear-interpolation quantile (q in [0, 1]) of values, null when empty. */
export function quantile(values: readonly number[], q: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  const a = sorted[lo] as number;
  return a + ((sorted[hi] as number) - a) * (pos - lo);
}

export function distribution(values: readonly number[]): Distribution {
  return {
    count: values.length,
    median: quantile(values, 0.5),
    p95: quantile(values, 0.95),
    mean: values.length === 0 ? null : values.reduce((s, v) => s + v, 0) / values.length,
  };
}

/** Slippage in bps of a fill against a benchmark price: worse for the side is positive. */
export function slippageBps(side: 'buy' | 'sell', price: number, benchmark: number): number {
  return ((side === 'buy' ? 1 : -1) * (price - benchmark) * 10_000) / benchmark;
}

/** Daily returns of an equity curve from its starting equity. */
export function dailyReturns(start: number, equity: readonly number[]): number[] {
  const out: number[] = [];
  let previous = start;
  for (const e of equity) {
    out.push(e / previous - 1);
    previous = e;
  }
  return out;
}

/** Pearson correlation of two equal-length series, null with fewer than 3 points or no variance. */
export function correlationOf(a: readonly number[], b: readonly number[]): number | null {
  const n = Math.min(a.length, b.length);
  if (n < 3) return null;
  const rolling = new RollingCorrelation(2, n);
  for (let i = 0; i < n; i++) rolling.push([a[i] as number, b[i] as number]);
  const rho = rolling.correlation(0, 1);
  return Number.isFinite(rho) ? rho : null;
}

/** Annualised tracking error in % (sample standard deviation of the return differences). */
export function trackingErrorPct(
  a: readonly number[],
  b: readonly number[],
  periodsPerYear = 252,
): number | null {
  const n = Math.min(a.length, b.length);
  if (n < 2) return null;
  const d = Array.from({ length: n }, (_, i) => (a[i] as number) - (b[i] as number));
  const mean = d.reduce((s, v) => s + v, 0) / n;
  const variance = d.reduce((s, v) => s + (v - mean) ** 2, 0) / (n - 1);
  return Math.sqrt(variance) * Math.sqrt(periodsPerYear) * 100;
}

const keyOf = (k: { sleeve: string; symbol: string; session: string; side: string }) =>
  `${k.session}|${k.sleeve}|${k.symbol}|${k.side}`;

const sideSign = (side: 'buy' | 'sell') => (side === 'buy' ? 1 : -1);

/** Paper metrics from the snapshots and the closed trades, by the backtest's definitions. */
export function paperPerformance(
  ledger: Pick<PaperLedger, 'equity' | 'initialEquity' | 'positions' | 'closedTrades' | 'curve'>,
  periodsPerYear = 252,
): PerformanceFigures | null {
  if (ledger.curve !== undefined) return curvePerformance(ledger.curve, ledger.closedTrades, periodsPerYear);
  if (ledger.equity.length === 0 || !(ledger.initialEquity > 0)) return null;
  const held = new Map(ledger.positions.map((p) => [p.date, p.positions.some((x) => x.qty !== 0)]));
  // The account's curve: its equity snapshots, in market on a day with a position.
  const account: SleeveCurve = {
    initial: ledger.initialEquity,
    points: ledger.equity.map((s) => ({
      date: s.date,
      equity: s.equity,
      inMarket: held.get(s.date) === true,
    })),
  };
  return curvePerformance(account, ledger.closedTrades, periodsPerYear);
}

/**
 * Metrics of a sleeve's own curve (its NAV at each close, from `initial`) and its closed trades, by
 * the backtest's definitions (`computeMetrics`); null without a session or a positive start.
 */
export function curvePerformance(
  curve: SleeveCurve,
  trades: readonly Pick<ClosedTradeRecord, 'pnlCents'>[],
  periodsPerYear = 252,
): PerformanceFigures | null {
  if (curve.points.length === 0 || !(curve.initial > 0)) return null;
  const metrics = computeMetrics({
    time: Float64Array.from(curve.points.map((p) => Date.parse(`${p.date}T00:00:00Z`))),
    equity: Float64Array.from(curve.points.map((p) => p.equity)),
    initialEquity: curve.initial,
    inMarket: Uint8Array.from(curve.points.map((p) => (p.inMarket ? 1 : 0))),
    tradePnls: trades.map((t) => t.pnlCents / 100),
    buyHoldReturnPct: 0,
    periodsPerYear,
  });
  return {
    returnPct: metrics.returnPct,
    sharpe: metrics.sharpe,
    maxDrawdownPct: metrics.maxDrawdownPct,
    winRatePct: metrics.winRatePct,
    profitFactor: metrics.profitFactor,
    trades: metrics.trades,
  };
}

/**
 * Risk-rule checks on the ledger: every position held at a session's end has a protective stop (the
 * first risk check places it after the open, so the end of its first session is after it); entries
 * within the position cap and the portfolio heat cap at their decision (the heat by the decision's
 * own formula, `positionHeat`: entry reference to stop, never the close); no entry filled while a
 * breaker or the kill switch was tripped.
 */
export function riskViolations(
  ledger: PaperLedger,
  limits: { readonly maxPositionFraction: number; readonly maxPortfolioHeat: number },
): string[] {
  const violations: string[] = [];
  for (const { date, positions } of ledger.positions) {
    for (const p of positions) {
      if (p.qty > 0 && p.stop === null) violations.push(`${date} ${p.symbol}: position without a stop`);
    }
  }
  const equityBefore = new Map<string, number>();
  let previous = ledger.initialEquity;
  for (const s of ledger.equity) {
    equityBefore.set(s.date, previous);
    previous = s.equity;
  }
  const positionsBefore = (date: string) => {
    let found: readonly PositionRecord[] = ledger.startPositions;
    for (const p of ledger.positions) if (p.date < date) found = p.positions;
    return found;
  };
  // A net order's entries are its legs' (a sleeves config): counted once, as the legs.
  const entries = ledger.intents.filter(
    (i) => i.purpose === 'entry' && i.filledQty > 0 && i.legIds === undefined,
  );
  const byDate = new Map<string, IntentRecord[]>();
  for (const e of entries) byDate.set(e.date, [...(byDate.get(e.date) ?? []), e]);
  const slack = 1 + 1e-6;
  for (const [date, dayEntries] of byDate) {
    const equity = equityBefore.get(date);
    if (equity === undefined) continue;
    // The heat the decision summed (`portfolioHeat`): each held position that stays (not exited at
    // that close; a record without a sleeve is the validated sleeve's) from its entry reference to
    // its stop as the close left it (a stop moved at the close is on the entry day's record), then
    // each entry from its decision close to its stop.
    const exited = new Set(
      ledger.intents
        .filter((i) => i.purpose === 'exit' && i.date === date && i.legIds === undefined)
        .map((i) => `${i.sleeve ?? ledger.sleeve}|${i.symbol}`),
    );
    const dayRecord = ledger.positions.find((p) => p.date === date)?.positions ?? [];
    let heat = 0;
    for (const p of positionsBefore(date)) {
      const key = `${p.sleeve ?? ledger.sleeve}|${p.symbol}`;
      if (p.qty === 0 || exited.has(key)) continue;
      const stop = dayRecord.find((q) => `${q.sleeve ?? ledger.sleeve}|${q.symbol}` === key)?.stop ?? p.stop;
      if (stop === null) continue;
      heat += positionHeat(p.qty > 0 ? 1 : -1, Math.abs(p.qty), p.entryRef ?? p.avgEntryPrice, stop);
    }
    for (const e of dayEntries) {
      const notional = e.qty * e.referencePrice;
      if (notional > limits.maxPositionFraction * equity * slack)
        violations.push(
          `${date} ${e.symbol}: entry of $${notional.toFixed(2)} above the position cap ($${(limits.maxPositionFraction * equity).toFixed(2)})`,
        );
      if (e.protectiveStop !== undefined)
        heat += positionHeat(e.side === 'buy' ? 1 : -1, e.qty, e.referencePrice, e.protectiveStop);
    }
    if (heat > limits.maxPortfolioHeat * equity * slack)
      violations.push(
        `${date}: portfolio heat $${heat.toFixed(2)} above the cap ($${(limits.maxPortfolioHeat * equity).toFixed(2)})`,
      );
  }
  // Breakers: an entry claimed while a breaker or the kill switch was tripped and not reset.
  const events = [...ledger.breakerEvents].sort((a, b) => a.time - b.time);
  for (const e of entries) {
    const at = Date.parse(e.createdAt);
    const active = new Map<string, BreakerEvent>();
    for (const ev of events) {
      if (ev.time > at) break;
      if (ev.action === 'trip') active.set(ev.breaker, ev);
      else active.delete(ev.breaker);
    }
    for (const [breaker, trip] of active) {
      // The daily-loss breaker blocks entries for the trading day it tripped on only.
      if (breaker === 'daily-loss' && new Date(trip.time).toISOString().slice(0, 10) !== e.date) continue;
      violations.push(`${e.date} ${e.symbol}: entry while the ${breaker} breaker was tripped`);
    }
  }
  return violations;
}

/** The criteria a crypto dry run is decided on (the crypto live gate's). */
export const DRY_RUN_CRITERIA: readonly string[] = ['minSessions', 'tradesMatched', 'executionFailures'];

/** Everything the validation measures, and the decision. */
export function validatePaper(input: {
  readonly ledger: PaperLedger;
  readonly backtest: ShadowBacktest | null;
  readonly prices: SessionPrices;
  readonly criteria: PaperValidationCriteria;
  /** The cost model's slippage (config `costs.slippageBps`). */
  readonly modelSlippageBps: number;
  readonly limits: { readonly maxPositionFraction: number; readonly maxPortfolioHeat: number };
  readonly periodsPerYear?: number;
  /**
   * The crypto dry run (docs/crypto.md): decided on {@link DRY_RUN_CRITERIA} only (the other
   * figures are reported; a month of virtual fills says little about Sharpe or drawdown).
   */
  readonly dryRun?: boolean;
}): PaperValidation {
  const { ledger, backtest, prices, criteria } = input;
  const sleeve = ledger.sleeve;
  const sessions = ledger.equity.map((s) => s.date);
  const intentById = new Map(ledger.intents.map((i) => [i.clientOrderId, i]));
  // What was sent to the broker: a sleeve's leg is never sent itself (its net order is).
  const orders = ledger.intents.filter((i) => i.leg !== true);

  // --- trades ----------------------------------------------------------------------------------
  type Trade = TradeKey & { qty: number };
  // Trades on (sleeve, symbol, session, side): a fill without a sleeve is the validated sleeve's.
  const tradesOf = (
    fills: readonly { sleeve?: string; symbol: string; date: string; side: 'buy' | 'sell'; qty: number }[],
  ) => {
    const out = new Map<string, Trade>();
    for (const f of fills) {
      const key = { sleeve: f.sleeve ?? sleeve, symbol: f.symbol, session: f.date, side: f.side };
      const t = out.get(keyOf(key)) ?? { ...key, qty: 0 };
      t.qty += f.qty;
      out.set(keyOf(key), t);
    }
    return out;
  };
  // The last session's orders the broker reports filled and its activities do not list yet (a
  // late fill report: the next end-of-day records it) traded all the same.
  const lastSessionOf = ledger.equity.at(-1)?.date;
  const awaitingListing =
    ledger.sleeveTrades !== undefined
      ? []
      : orders.flatMap((i) => {
          const listed = ledger.fills
            .filter((f) => f.clientOrderId === i.clientOrderId)
            .reduce((sum, f) => sum + f.qty, 0);
          return i.date === lastSessionOf && i.filledQty > listed + 1e-9
            ? [{ symbol: i.symbol, date: i.date, side: i.side, qty: i.filledQty - listed }]
            : [];
        });
  const paperTrades = tradesOf([...(ledger.sleeveTrades ?? ledger.fills), ...awaitingListing]);
  const backtestTrades = tradesOf(backtest?.fills ?? []);
  const intentFor = (k: TradeKey) =>
    ledger.intents.filter(
      (i) =>
        i.symbol === k.symbol &&
        i.date === k.session &&
        i.side === k.side &&
        (i.sleeve ?? sleeve) === k.sleeve,
    );
  const matched: PaperValidation['trades']['matched'][number][] = [];
  const missed: PaperValidation['trades']['missed'][number][] = [];
  const extra: PaperValidation['trades']['extra'][number][] = [];
  for (const [k, b] of [...backtestTrades].sort(([x], [y]) => x.localeCompare(y))) {
    const p = paperTrades.get(k);
    const key = { sleeve: b.sleeve, symbol: b.symbol, session: b.session, side: b.side };
    if (p !== undefined) matched.push({ ...key, paperQty: p.qty, backtestQty: b.qty });
    else {
      const intents = intentFor(key);
      // An exit (or entry) whose opposite trade in the symbol was missed before it: paper had no
      // position to close (or still held one).
      const earlierMiss = missed.findLast(
        (m) => m.sleeve === b.sleeve && m.symbol === b.symbol && m.side !== b.side,
      );
      const reason =
        intents.length > 0
          ? intents.map((i) => `${i.purpose} ${i.status}${i.reason ? `: ${i.reason}` : ''}`).join('; ')
          : earlierMiss !== undefined
            ? `no intent recorded: it follows the missed ${earlierMiss.side} of ${earlierMiss.session}`
            : 'no intent recorded: the signal step did not decide it';
      missed.push({ ...key, qty: b.qty, reason });
    }
  }
  for (const [k, p] of paperTrades) {
    if (backtestTrades.has(k)) continue;
    const intents = intentFor(p);
    const reason =
      intents.length === 0
        ? 'a fill without an intent of that session (a late or manual fill)'
        : `${intents.map((i) => i.purpose).join(', ')} the backtest did not make`;
    extra.push({ sleeve: p.sleeve, symbol: p.symbol, session: p.session, side: p.side, qty: p.qty, reason });
  }
  const tradeCount = matched.length + missed.length + extra.length;

  // --- execution quality -----------------------------------------------------------------------
  const moo: number[] = [];
  const bySymbol = new Map<string, number[]>();
  const bySide = new Map<string, number[]>();
  const stops: number[] = [];
  const shortfallBps: number[] = [];
  let delay = 0;
  let executionCost = 0;
  let modelCost = 0;
  for (const f of ledger.fills) {
    const intent = f.clientOrderId === null ? undefined : intentById.get(f.clientOrderId);
    if (intent === undefined) continue;
    const sign = sideSign(f.side);
    if (intent.timeInForce === 'opg' && intent.type === 'market') {
      const open = prices.open(f.symbol, f.date);
      if (open !== undefined) {
        const bps = slippageBps(f.side, f.price, open);
        moo.push(bps);
        bySymbol.set(f.symbol, [...(bySymbol.get(f.symbol) ?? []), bps]);
        bySide.set(f.side, [...(bySide.get(f.side) ?? []), bps]);
        delay += sign * (open - intent.referencePrice) * f.qty;
        executionCost += sign * (f.price - open) * f.qty;
        modelCost += (input.modelSlippageBps / 10_000) * open * f.qty;
      }
    } else if (intent.stopPrice !== undefined && (intent.type === 'stop' || intent.purpose === 'stop')) {
      stops.push(slippageBps(f.side, f.price, intent.stopPrice));
    }
    if (intent.referencePrice > 0) shortfallBps.push(slippageBps(f.side, f.price, intent.referencePrice));
  }
  let opportunity = 0;
  for (const i of orders) {
    const unfilled = i.qty - i.filledQty;
    if (unfilled <= 0 || i.purpose === 'stop' || ['recorded', 'submitted', 'accepted'].includes(i.status))
      continue;
    const close = prices.close(i.symbol, i.date);
    if (close !== undefined) opportunity += sideSign(i.side) * (close - i.referencePrice) * unfilled;
  }
  const fees = 0; // the ledger's fills carry no commission (Alpaca charges none on US equities)

  const mooIntents = orders.filter(
    (i) =>
      i.timeInForce === 'opg' && i.type === 'market' && i.status !== 'skipped' && i.status !== 'recorded',
  );
  const filledMoo = mooIntents.filter((i) => i.filledQty >= i.qty && i.qty > 0).length;
  const fillsPerOrder = new Map<string, number>();
  for (const f of ledger.fills)
    if (f.clientOrderId !== null)
      fillsPerOrder.set(f.clientOrderId, (fillsPerOrder.get(f.clientOrderId) ?? 0) + 1);
  const partialFills = orders.filter(
    (i) => i.status === 'partially_filled' || (fillsPerOrder.get(i.clientOrderId) ?? 0) > 1,
  ).length;
  const rejected = orders.filter((i) => i.status === 'rejected').map((i) => i.clientOrderId);
  const unknown = orders.filter((i) => i.status === 'unknown').map((i) => i.clientOrderId);
  const ledgerIds = new Set(ledger.fills.map((f) => f.executionId));
  const ledgerQty = new Map<string, number>();
  for (const f of ledger.fills)
    if (f.clientOrderId !== null)
      ledgerQty.set(f.clientOrderId, (ledgerQty.get(f.clientOrderId) ?? 0) + f.qty);
  const lost = new Set<string>();
  const lastSession = sessions.at(-1);
  for (const f of ledger.brokerFills ?? []) {
    // A fill of the last session is the next end-of-day's to record.
    if (
      !ledgerIds.has(f.id) &&
      lastSession !== undefined &&
      f.date < lastSession &&
      sessions.includes(f.date)
    )
      lost.add(`fill ${f.id} (${f.side} ${f.qty} ${f.symbol} ${f.date}) not in the ledger`);
  }
  for (const i of orders) {
    const recorded = ledgerQty.get(i.clientOrderId) ?? 0;
    if (i.filledQty > recorded + 1e-9 && i.date !== lastSession)
      lost.add(`${i.clientOrderId}: ${i.filledQty} filled, ${recorded} in the ledger`);
  }
  const mismatches = ledger.audit.filter((a) => a.action === 'drift').length;
  const criticalFailures = rejected.length + unknown.length + lost.size + mismatches;

  // --- curves and metrics ----------------------------------------------------------------------
  const periods = input.periodsPerYear ?? 252;
  const paper = paperPerformance(ledger, periods);
  const backtestEquity = new Map((backtest?.equity ?? []).map((e) => [e.date, e.equity]));
  // The validated sleeve's own curve when it has one (a sleeves config), else the account's.
  const paperCurve = ledger.curve?.points ?? ledger.equity;
  const aligned = paperCurve.filter((s) => backtestEquity.has(s.date));
  const paperReturns = dailyReturns(
    ledger.curve?.initial ?? ledger.initialEquity,
    aligned.map((s) => s.equity),
  );
  const backtestReturns = dailyReturns(
    backtest?.initial ?? ledger.initialEquity,
    aligned.map((s) => backtestEquity.get(s.date) as number),
  );
  const tracking = {
    correlation: correlationOf(paperReturns, backtestReturns),
    trackingErrorPct: trackingErrorPct(paperReturns, backtestReturns, periods),
    returnGapPct: paper === null || backtest === null ? null : paper.returnPct - backtest.metrics.returnPct,
    excessCostPct: ledger.initialEquity > 0 ? ((executionCost - modelCost) / ledger.initialEquity) * 100 : 0,
  };

  // --- risk and alerts -------------------------------------------------------------------------
  const violations = riskViolations(ledger, input.limits);
  const alerts =
    ledger.alerts === null
      ? null
      : {
          critical: ledger.alerts
            .filter((a) => a.severity === 'critical')
            .map((a) => `${a.time} ${a.subject}`),
          total: ledger.alerts.length,
        };
  const caveats: string[] = [];
  if (ledger.startPositions.some((p) => p.qty !== 0) && backtest?.openingPositions === undefined)
    caveats.push(
      `paper held ${ledger.startPositions
        .filter((p) => p.qty !== 0)
        .map((p) => `${p.qty} ${p.symbol}`)
        .join(', ')} before the first session; the shadow backtest starts flat with the same equity in cash`,
    );

  // --- criteria --------------------------------------------------------------------------------
  const slippage = distribution(moo);
  const matchedPct = tradeCount === 0 ? null : (matched.length / tradeCount) * 100;
  const slippageCap = input.modelSlippageBps + criteria.slippageToleranceBps;
  const list: Criterion[] = [
    {
      name: 'minSessions',
      rule: `sessions >= ${criteria.minSessions}`,
      value: sessions.length,
      result: sessions.length >= criteria.minSessions ? 'pass' : 'fail',
    },
    {
      name: 'sharpe',
      rule: `paper Sharpe > ${criteria.minSharpe}`,
      value: paper?.sharpe ?? null,
      result: paper?.sharpe != null && paper.sharpe > criteria.minSharpe ? 'pass' : 'fail',
    },
    {
      name: 'maxDrawdown',
      rule: `paper max drawdown < ${criteria.maxDrawdownPct}%`,
      value: paper?.maxDrawdownPct ?? null,
      result: paper !== null && paper.maxDrawdownPct < criteria.maxDrawdownPct ? 'pass' : 'fail',
    },
    {
      name: 'executionFailures',
      rule: `critical execution failures (rejected, unknown, lost fills, reconciliation mismatches) <= ${criteria.maxCriticalFailures}`,
      value: criticalFailures,
      result: criticalFailures <= criteria.maxCriticalFailures ? 'pass' : 'fail',
    },
    {
      name: 'riskRules',
      rule: 'no heat, position-cap or breaker breach; every position has a stop',
      value: violations.length,
      result: violations.length === 0 ? 'pass' : 'fail',
    },
    {
      name: 'tradesMatched',
      rule: `trades matched >= ${criteria.minTradesMatchedPct}%`,
      value: matchedPct,
      // No trade on either side matches trivially.
      result: matchedPct === null || matchedPct >= criteria.minTradesMatchedPct ? 'pass' : 'fail',
    },
    {
      name: 'medianSlippage',
      rule: `median market-on-open slippage <= ${slippageCap} bps (cost model ${input.modelSlippageBps} + tolerance ${criteria.slippageToleranceBps})`,
      value: slippage.median,
      result: slippage.median === null || slippage.median <= slippageCap ? 'pass' : 'fail',
    },
  ];
  // The crypto dry run's gate asks days, matching decisions and no execution error only.
  const gated = input.dryRun === true ? list.filter((c) => DRY_RUN_CRITERIA.includes(c.name)) : list;
  if (input.dryRun === true)
    caveats.push(
      `crypto dry run: decided on ${DRY_RUN_CRITERIA.join(', ')} (sessions are UTC days); Sharpe, drawdown, risk rules and slippage are reported, not gated`,
    );
  const failed = gated.filter((c) => c.result === 'fail').map((c) => c.name);
  const groups = (m: Map<string, number[]>) =>
    Object.fromEntries([...m].sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => [k, distribution(v)]));
  return {
    sleeve,
    from: sessions[0] ?? null,
    to: sessions.at(-1) ?? null,
    sessions: sessions.length,
    trades: {
      paper: paperTrades.size,
      backtest: backtestTrades.size,
      matchedPct,
      matched,
      missed,
      extra,
    },
    slippageBps: { ...slippage, bySymbol: groups(bySymbol), bySide: groups(bySide) },
    stopSlippageBps: distribution(stops),
    implementationShortfall: {
      bps: distribution(shortfallBps),
      delay,
      execution: executionCost,
      fees,
      opportunity,
      total: delay + executionCost + fees + opportunity,
    },
    execution: {
      marketOnOpenOrders: mooIntents.length,
      fillRatePct: mooIntents.length === 0 ? null : (filledMoo / mooIntents.length) * 100,
      partialFills,
      rejected,
      unknown,
      lostFills: [...lost],
      reconciliationMismatches: mismatches,
      criticalFailures,
    },
    tracking,
    paper,
    backtest: backtest?.metrics ?? null,
    attribution: {
      bySleeve: { [sleeve]: sumBy(ledger.closedTrades, () => sleeve) },
      bySymbol: sumsBy(ledger.closedTrades, (t) => t.symbol),
      bySide: sumsBy(ledger.closedTrades, (t) => t.side),
      costs: { commission: fees, slippage: executionCost },
    },
    risk: { violations, breakerTrips: ledger.breakerEvents.filter((e) => e.action === 'trip').length },
    alerts,
    caveats,
    criteria: gated,
    failed,
    decision: failed.length === 0 ? 'go' : 'no-go',
  };
}

/** Thresholds of the daily live-vs-backtest tracking (config `validation.divergence`). */
export interface DivergenceLimits {
  /** Sessions in the rolling window. */
  readonly window: number;
  /** |paper − backtest| compounded return over the window, percentage points. */
  readonly maxReturnGapPct: number;
  /** Daily-return correlation over the window must stay at or above this. */
  readonly minCorrelation: number;
  /** Median market-on-open slippage over the window minus the cost model's, bps. */
  readonly maxSlippageDriftBps: number;
}

/** The rolling tracking of the last `window` sessions, and what breaches its limits. */
export interface RollingDivergence {
  readonly sessions: number;
  readonly returnGapPct: number;
  readonly correlation: number | null;
  readonly slippageDriftBps: number | null;
  readonly breaches: readonly string[];
}

/**
 * Live (or paper) against its shadow backtest over the last `window` sessions: the compounded
 * return gap, the daily-return correlation and the drift of the median market-on-open slippage
 * from the cost model. Null until the window is full.
 */
export function rollingDivergence(input: {
  readonly ledger: Pick<PaperLedger, 'equity' | 'initialEquity' | 'fills' | 'intents'>;
  readonly backtest: ShadowBacktest;
  readonly prices: SessionPrices;
  readonly modelSlippageBps: number;
  readonly limits: DivergenceLimits;
}): RollingDivergence | null {
  const { ledger, backtest, limits } = input;
  const backtestEquity = new Map(backtest.equity.map((e) => [e.date, e.equity]));
  const aligned = ledger.equity.filter((s) => backtestEquity.has(s.date));
  if (aligned.length < limits.window) return null;
  const paperAll = dailyReturns(
    ledger.initialEquity,
    aligned.map((s) => s.equity),
  );
  const backtestAll = dailyReturns(
    ledger.initialEquity,
    aligned.map((s) => backtestEquity.get(s.date) as number),
  );
  const paper = paperAll.slice(-limits.window);
  const shadow = backtestAll.slice(-limits.window);
  const compound = (r: readonly number[]) => r.reduce((g, x) => g * (1 + x), 1);
  const returnGapPct = (compound(paper) - compound(shadow)) * 100;
  const correlation = correlationOf(paper, shadow);
  const since = aligned[aligned.length - limits.window]?.date as string;
  const intents = new Map(ledger.intents.map((i) => [i.clientOrderId, i]));
  const recent = ledger.fills.flatMap((f) => {
    const intent = f.clientOrderId === null ? undefined : intents.get(f.clientOrderId);
    const open = input.prices.open(f.symbol, f.date);
    return f.date >= since && intent?.timeInForce === 'opg' && intent.type === 'market' && open !== undefined
      ? [slippageBps(f.side, f.price, open)]
      : [];
  });
  const median = quantile(recent, 0.5);
  const slippageDriftBps = median === null ? null : median - input.modelSlippageBps;
  const breaches = [
    ...(Math.abs(returnGapPct) > limits.maxReturnGapPct
      ? [
          `return gap ${returnGapPct.toFixed(2)} pts over ${limits.window} sessions (limit ${limits.maxReturnGapPct})`,
        ]
      : []),
    ...(correlation !== null && correlation < limits.minCorrelation
      ? [`daily-return correlation ${correlation.toFixed(3)} (minimum ${limits.minCorrelation})`]
      : []),
    ...(slippageDriftBps !== null && slippageDriftBps > limits.maxSlippageDriftBps
      ? [
          `median slippage ${slippageDriftBps.toFixed(2)} bps above the cost model (limit ${limits.maxSlippageDriftBps})`,
        ]
      : []),
  ];
  return { sessions: limits.window, returnGapPct, correlation, slippageDriftBps, breaches };
}
