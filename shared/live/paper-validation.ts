/**
 * Paper-trading validation over a state store (docs/validation.md): reads one sleeve's ledger for
 * the sessions paper traded, runs the shadow backtest over exactly those sessions from the same
 * starting equity, measures (`core/validation/paper.ts`) and records the decision for the live gate.
 * The CLI (`quantshift validate-paper`) runs it on a deployed stage or on a rehearsal's kept state.
 */

import { runBacktest } from '../core/backtest/engine.js';
import { runSleevesBacktest } from '../core/backtest/sleeves.js';
import { liveSleeveIds, type StrategyConfig } from '../core/config/schema.js';
import { UsageError } from '../core/errors.js';
import { orderDateOf } from '../core/live/orders.js';
import { isUnassigned } from '../core/live/reconcile.js';
import type { BarSeries } from '../core/market/types.js';
import type { Metrics } from '../core/metrics/index.js';
import type {
  IntentRecord,
  PaperValidationRecord,
  PositionRecord,
  StateStore,
} from '../core/ports/state-store.js';
import type { BreakerEvent } from '../core/risk/breakers.js';
import type { SleevesState } from '../core/trading/sleeves-close.js';
import {
  type AlertSeen,
  type BrokerFillSeen,
  curvePerformance,
  type PaperLedger,
  type PaperValidation,
  type RollingDivergence,
  rollingDivergence,
  type SessionPrices,
  type ShadowBacktest,
  type SleeveCurve,
  validatePaper,
} from '../core/validation/paper.js';
import { buildBacktestJob } from '../research/job.js';
import { buildSleevesJob } from '../research/sleeves.js';
import type { LiveContext } from './context.js';
import { paperGateHash } from './entry-gate.js';

const DAY_MS = 86_400_000;
const nextDate = (date: string) =>
  new Date(Date.parse(`${date}T00:00:00Z`) + DAY_MS).toISOString().slice(0, 10);

/** The store, with the breaker-event listing the DynamoDB adapter has for operations. */
export type ValidationStore = StateStore & {
  listBreakerEvents?(fromMs: number, toMs: number): Promise<BreakerEvent[]>;
};

/** The sleeve to validate: the one named, else the config's only one. */
export function validatedSleeve(config: StrategyConfig, sleeve: string | undefined): string {
  const ids = liveSleeveIds(config);
  if (sleeve !== undefined) {
    if (!ids.includes(sleeve))
      throw new UsageError(`--sleeve ${sleeve}: the config's sleeves are ${ids.join(', ')}`);
    return sleeve;
  }
  if (ids.length !== 1) throw new UsageError(`give --sleeve: the config has sleeves ${ids.join(', ')}`);
  return ids[0] as string;
}

/**
 * One sleeve's ledger over the sessions paper traded (those with an equity snapshot) between `from`
 * and `to`. Records written before sleeves (no `sleeve`) are the config's only sleeve's.
 */
export async function readPaperLedger(input: {
  readonly store: ValidationStore;
  readonly config: StrategyConfig;
  readonly sleeve: string;
  /** The sleeves the ledger covers (default: `sleeve` alone); every sleeve of a sleeves config. */
  readonly sleeves?: readonly string[];
  readonly from?: string;
  readonly to?: string;
  readonly brokerFills?: readonly (BrokerFillSeen & { readonly clientOrderId: string | null })[];
  readonly alerts?: readonly AlertSeen[] | null;
  /**
   * The daily tracking's light read: intents and fills of the last `lastSessions` sessions only,
   * no positions, closed trades, breaker events or audit (every session's equity still read).
   */
  readonly lastSessions?: number;
}): Promise<SleevesLedger> {
  const { store, config, sleeve } = input;
  const ids = liveSleeveIds(config);
  const defaultSleeve = ids.length === 1 ? ids[0] : undefined;
  // The sleeves covered: the one named, or every sleeve of a sleeves config (`sleeve` is then the
  // config's name, the account's).
  const covered = new Set(input.sleeves ?? [sleeve]);
  const equity = await store.listEquitySnapshots(input.from ?? '0000-01-01', input.to ?? '9999-12-31');
  const dates = equity.map((s) => s.date);
  const first = dates[0];
  const last = dates.at(-1);
  const light = input.lastSessions !== undefined;
  const detailDates = light ? dates.slice(-(input.lastSessions as number)) : dates;
  const intents = (await Promise.all(detailDates.map((d) => store.listIntents(d)))).flat();
  const byId = new Map(intents.map((i) => [i.clientOrderId, i]));
  // A sleeves config's net order carries the legs of its sleeves; any other order is its sleeve's.
  const carries = (intent: IntentRecord | undefined): boolean =>
    intent === undefined
      ? defaultSleeve !== undefined && covered.has(defaultSleeve)
      : intent.legIds !== undefined
        ? intent.legIds.some((id) => covered.has(byId.get(id)?.sleeve ?? ''))
        : covered.has(intent.sleeve ?? defaultSleeve ?? '');
  const ownIntents = intents.filter(carries);
  const ofOrder = (clientOrderId: string | null) =>
    carries(clientOrderId === null ? undefined : byId.get(clientOrderId));
  const dayFills = (await Promise.all(detailDates.map((d) => store.listFills(d)))).flat();
  // A fill in the period of an order recorded before it (a stop resting since its entry, with
  // `--from` after that entry): its intent, by the day in its client order id.
  for (const f of dayFills) {
    const id = f.clientOrderId;
    const date = id === null || byId.has(id) ? null : orderDateOf(id);
    if (id === null || date === null) continue;
    const intent = await store.getIntent(date, id);
    if (intent !== undefined) byId.set(id, intent);
  }
  const fills = dayFills.filter((f) => ofOrder(f.clientOrderId));
  // A sleeves config: each sleeve's trades are its legs (split from the net fills at the fill
  // price, or crossed at the open) and the fills of its own orders (its stops, its exits).
  const sleeveTrades =
    config.sleeves === undefined
      ? undefined
      : [
          ...ownIntents.flatMap((i) =>
            i.leg === true && i.filledQty > 0 && i.sleeve !== undefined
              ? [{ sleeve: i.sleeve, symbol: i.symbol, date: i.date, side: i.side, qty: i.filledQty }]
              : [],
          ),
          ...fills.flatMap((f) => {
            const intent = f.clientOrderId === null ? undefined : byId.get(f.clientOrderId);
            return intent?.sleeve !== undefined && intent.legIds === undefined && intent.leg !== true
              ? [{ sleeve: intent.sleeve, symbol: f.symbol, date: f.date, side: f.side, qty: f.qty }]
              : [];
          }),
        ];
  const positions = (
    await Promise.all(
      (light ? [] : dates).map(async (d) => {
        const record = await store.getLatestPositions(nextDate(d));
        return record?.date === d
          ? {
              date: d,
              positions: record.positions.filter((p) => covered.has(p.sleeve ?? defaultSleeve ?? '')),
            }
          : undefined;
      }),
    )
  ).filter((p) => p !== undefined);
  const start = first === undefined || light ? undefined : await store.getLatestPositions(first);
  const closedTrades =
    first === undefined || last === undefined || light
      ? []
      : (
          await Promise.all(
            // A sleeves config keeps each sleeve's closed trades apart (`TRADES#<sleeve>`).
            (config.sleeves === undefined ? [config.name] : [...covered]).map((s) =>
              store.listClosedTrades(s, 10_000),
            ),
          )
        )
          .flat()
          .filter((t) => t.exitDate >= first && t.exitDate <= last);
  const fromMs = first === undefined ? 0 : Date.parse(`${first}T00:00:00Z`);
  const toMs = last === undefined ? 0 : Date.parse(`${last}T00:00:00Z`) + 2 * DAY_MS;
  const breakerEvents =
    first === undefined || store.listBreakerEvents === undefined || light
      ? []
      : await store.listBreakerEvents(fromMs, toMs);
  const audit =
    first === undefined || light
      ? []
      : await store.listAudit(new Date(fromMs).toISOString(), new Date(toMs).toISOString());
  const firstSnapshot = equity[0];
  const inPeriod = (time: string) => Date.parse(time) >= fromMs && Date.parse(time) < toMs;
  const sleevesStart =
    config.sleeves === undefined || first === undefined || last === undefined || light
      ? undefined
      : await sleevesSnapshots(store, sleeve, [...covered], first, last, dates, input.from !== undefined);
  return {
    sleeve,
    initialEquity: firstSnapshot === undefined ? 0 : firstSnapshot.equity - firstSnapshot.dayPnl,
    equity,
    intents: ownIntents,
    fills,
    ...(sleeveTrades === undefined ? {} : { sleeveTrades }),
    ...(input.brokerFills === undefined
      ? {}
      : { brokerFills: input.brokerFills.filter((f) => ofOrder(f.clientOrderId)) }),
    positions,
    startPositions: (start?.positions ?? []).filter((p) => covered.has(p.sleeve ?? defaultSleeve ?? '')),
    closedTrades,
    breakerEvents,
    audit,
    alerts:
      input.alerts === undefined || input.alerts === null
        ? null
        : input.alerts.filter((a) => inPeriod(a.time)),
    ...(sleevesStart?.curve === undefined ? {} : { curve: sleevesStart.curve }),
    ...(sleevesStart === undefined
      ? {}
      : {
          startSession: sleevesStart.startSession,
          ...(sleevesStart.startState === undefined ? {} : { startState: sleevesStart.startState }),
        }),
  };
}

/** A ledger of a sleeves config: where its shadow backtest starts. */
export interface SleevesLedger extends PaperLedger {
  /** The session before the first validated one (null: the first is paper's first session). */
  readonly startSession?: string | null;
  /**
   * The sleeves' booked state at that session's close (its dated snapshot): the shadow backtest
   * starts from it exactly. Absent with a start session: no snapshot was kept that day.
   */
  readonly startState?: SleevesState;
}

/**
 * A sleeves config's dated snapshots (end-of-day's): the one of the session before `first` (the
 * shadow backtest's exact start), and, for one sleeve validated alone, its own curve when every
 * session of the period has a snapshot.
 */
async function sleevesSnapshots(
  store: ValidationStore,
  sleeve: string,
  covered: readonly string[],
  first: string,
  last: string,
  dates: readonly string[],
  from: boolean,
): Promise<{ startSession: string | null; startState?: SleevesState; curve?: SleeveCurve }> {
  // Paper's first session has nothing before it: the backtest starts flat from the same equity.
  const before = from ? await store.getLatestEquitySnapshot(first) : undefined;
  const startSession = before?.date ?? null;
  const snapshots = await store.listSleevesSnapshots(startSession ?? first, last);
  const byDate = new Map(snapshots.map((s) => [s.date, s]));
  const start = startSession === null ? undefined : byDate.get(startSession);
  const own = covered.length === 1 && covered[0] === sleeve;
  const points = dates.flatMap((d) => {
    const figures = byDate.get(d)?.sleeves.find((f) => f.id === sleeve);
    return figures === undefined ? [] : [{ date: d, equity: figures.nav, inMarket: figures.inMarket }];
  });
  const initial = byDate.get(first)?.sleeves.find((f) => f.id === sleeve)?.navBefore;
  const curve =
    own && points.length === dates.length && initial !== undefined ? { initial, points } : undefined;
  return {
    startSession,
    ...(start === undefined ? {} : { startState: start.state }),
    ...(curve === undefined ? {} : { curve }),
  };
}

/** Opens and closes of the bar series by symbol and `YYYY-MM-DD`. */
export function seriesPrices(series: readonly BarSeries[]): SessionPrices {
  const index = new Map<string, { open: number; close: number }>();
  for (const s of series) {
    for (let i = 0; i < s.time.length; i++) {
      const date = new Date(s.time[i] as number).toISOString().slice(0, 10);
      index.set(`${s.symbol}|${date}`, { open: s.open[i] as number, close: s.close[i] as number });
    }
  }
  return {
    open: (symbol, date) => index.get(`${symbol}|${date}`)?.open,
    close: (symbol, date) => index.get(`${symbol}|${date}`)?.close,
  };
}

/**
 * Measures a ledger against its shadow backtest with the config's criteria and limits. A sleeves
 * config's sleeve with its own curve (dated snapshots) is measured on it against the backtest's
 * curve of that sleeve: its own Sharpe, drawdown, win rate, profit factor and tracking.
 */
export function validateLedger(
  ledger: SleevesLedger,
  backtest: ShadowBacktest | null,
  config: StrategyConfig,
  prices: SessionPrices,
): PaperValidation {
  const own = ledger.curve === undefined ? undefined : backtest?.sleeveCurves?.[ledger.sleeve];
  const { curve, ...account } = ledger;
  const measured = validatePaper({
    ledger: own === undefined ? account : ledger,
    backtest:
      backtest === null || own === undefined
        ? backtest
        : { ...backtest, equity: own.points, initial: own.initial, metrics: own.metrics },
    prices,
    criteria: config.validation,
    modelSlippageBps: config.costs.slippageBps,
    limits: {
      maxPositionFraction: config.risk.maxPositionFraction,
      maxPortfolioHeat: config.risk.maxPortfolioHeat,
    },
    periodsPerYear: config.assetClass === 'crypto' ? 365 : 252,
    // The crypto bot's paper stage is a dry run: its own criteria (docs/crypto.md).
    dryRun: config.assetClass === 'crypto',
  });
  const notes = sleevesCaveats(config, ledger, backtest, own !== undefined);
  return notes.length === 0 ? measured : { ...measured, caveats: [...measured.caveats, ...notes] };
}

/** What a sleeves config's validation could not measure exactly, in words (none otherwise). */
function sleevesCaveats(
  config: StrategyConfig,
  ledger: SleevesLedger,
  backtest: ShadowBacktest | null,
  ownCurve: boolean,
): string[] {
  if (config.sleeves === undefined || backtest === null) return [];
  const notes: string[] = [];
  if (ledger.sleeve === config.name) notes.push(SLEEVES_CURVE_CAVEAT);
  else if (!ownCurve)
    notes.push(
      `no dated sleeves snapshot for every session of the period (end-of-day keeps one per session): ${ledger.sleeve}'s curves, tracking and metrics are the account's`,
    );
  if (ledger.startSession != null && ledger.startState === undefined)
    notes.push(
      `no sleeves snapshot of ${ledger.startSession} (the session before the first): each sleeve's starting cash is estimated (its configured share of the equity less what its positions cost)`,
    );
  return notes;
}

/** The record the live gate reads: the decision with each criterion's figure. */
export function paperValidationRecord(
  result: PaperValidation,
  configHash: string,
  decidedAt: string,
): PaperValidationRecord {
  return {
    sleeve: result.sleeve,
    configHash,
    decision: result.decision,
    failed: [...result.failed],
    figures: Object.fromEntries(
      result.criteria.map((c) => [c.name, c.value === null || !Number.isFinite(c.value) ? null : c.value]),
    ),
    sessions: result.sessions,
    from: result.from ?? '',
    to: result.to ?? '',
    decidedAt,
  };
}

/**
 * The shadow backtest over the sessions `from..to` (bars before only warm the indicators up), its
 * first decision at the close before `from` (where paper's first signal step decided), starting from
 * `cash` of equity, holding what is open at the end. A single-strategy config starts from the
 * `opening` positions paper held then (bought at that close out of the same equity, their stops live
 * from `from`); a sleeves config's sleeves backtest starts from each sleeve's `opening` positions. Null for a config with neither
 * a strategy nor sleeves.
 */
export function shadowBacktest(
  config: StrategyConfig,
  series: readonly BarSeries[],
  from: string,
  to: string,
  cash: number,
  /** A sleeves config: the sleeves whose trades are compared (default every one). */
  sleeves?: readonly string[],
  /** The positions held before `from` (the ledger's, at that close). */
  opening?: readonly PositionRecord[],
  /**
   * A sleeves config: the sleeves' booked state at the close before `from` (its dated snapshot):
   * the sleeves backtest starts from it exactly, and `opening` is not used.
   */
  openingState?: SleevesState,
): ShadowBacktest | null {
  const held = (opening ?? []).filter((p) => p.qty !== 0 && p.unknownState === undefined);
  if (config.sleeves !== undefined)
    return sleevesShadowBacktest(config, series, from, to, cash, sleeves, held, openingState);
  if (config.strategy === undefined) return null;
  const start = sessionBefore(series, from) ?? from;
  const job = buildBacktestJob(
    { from: start, to, 'end-of-data': 'hold', cash: String(cash) },
    config,
    series,
  );
  const result = runBacktest({
    series: job.series,
    strategy: job.strategy,
    params: job.params,
    options: {
      ...job.options,
      openingPositions: held.map((p) => ({
        symbol: p.symbol,
        side: p.qty > 0 ? 'long' : 'short',
        qty: Math.abs(p.qty),
        entryPrice: p.avgEntryPrice,
        entryTime: Date.parse(`${p.entryDate ?? start}T00:00:00Z`),
        ...(p.stop === null ? {} : { stop: p.stop }),
        ...(p.entryRef === null ? {} : { entryRef: p.entryRef }),
        ...(p.initialRisk === null ? {} : { initialRisk: p.initialRisk }),
        sessionsHeld: p.sessionsHeld,
      })),
    },
  });
  const date = (t: number) => new Date(t).toISOString().slice(0, 10);
  return {
    fills: result.fills.map((f) => ({
      symbol: f.symbol,
      side: f.side,
      qty: f.qty,
      price: f.price,
      date: date(f.time),
    })),
    equity: Array.from(result.equity.time, (t, i) => ({
      date: date(t),
      equity: result.equity.equity[i] as number,
    })).filter((e) => e.date >= from),
    ...(held.length === 0 ? {} : { openingPositions: held.map((p) => `${p.qty} ${p.symbol}`) }),
    metrics: shadowMetrics(result.metrics),
  };
}

/** The figures of a shadow backtest's metrics the validation compares (single and sleeves alike). */
function shadowMetrics(m: Metrics): ShadowBacktest['metrics'] {
  return {
    returnPct: m.returnPct,
    sharpe: m.sharpe,
    maxDrawdownPct: m.maxDrawdownPct,
    winRatePct: m.winRatePct,
    profitFactor: m.profitFactor,
    trades: m.trades,
  };
}

/** The last session (a bar of any series) before `date`, or undefined. */
function sessionBefore(series: readonly BarSeries[], date: string): string | undefined {
  let found: string | undefined;
  for (const s of series)
    for (const t of s.time) {
      const d = new Date(t).toISOString().slice(0, 10);
      if (d < date && (found === undefined || d > found)) found = d;
    }
  return found;
}

/**
 * The shadow backtest of a sleeves config: the sleeves backtest (`core/backtest/sleeves.ts`, the
 * session the live functions call) over the sessions `from..to`, its first decision at the close
 * before `from` (where paper's first signal step decided), from `cash`; each sleeve's trades as its
 * fills (entry and exit on their sessions), the account's curve and metrics.
 */
function sleevesShadowBacktest(
  config: StrategyConfig,
  series: readonly BarSeries[],
  from: string,
  to: string,
  cash: number,
  sleeves: readonly string[] | undefined,
  /** Each sleeve's positions held before `from` (the ledger's, at that close; the bucket's left out). */
  held: readonly PositionRecord[],
  /** The sleeves' exact state at that close (its dated snapshot), when kept. */
  openingState: SleevesState | undefined,
): ShadowBacktest {
  const date = (t: number) => new Date(t).toISOString().slice(0, 10);
  const start = sessionBefore(series, from) ?? from;
  const job = buildSleevesJob({ from: start, to, 'end-of-data': 'hold', cash: String(cash) }, config, series);
  // Without the state of that close, each sleeve's positions are booked out of its configured share.
  const opening =
    openingState === undefined ? held.filter((p) => p.sleeve !== undefined && !isUnassigned(p)) : [];
  const result = runSleevesBacktest({
    series: job.series,
    sleeves: job.sleeves,
    options: job.options,
    ...(openingState === undefined ? {} : { openingState }),
    opening: opening.map((p) => ({
      sleeve: p.sleeve as string,
      symbol: p.symbol,
      qty: p.qty,
      price: p.avgEntryPrice,
      entryTime: Date.parse(`${p.entryDate ?? start}T00:00:00Z`),
      stop: p.stop,
      entryRef: p.entryRef,
      initialRisk: p.initialRisk,
      sessionsHeld: p.sessionsHeld,
    })),
    ...(job.allocation === undefined ? {} : { allocation: job.allocation }),
    ...(job.correlation === undefined ? {} : { correlation: job.correlation }),
  });
  const wanted = (id: string) => sleeves === undefined || sleeves.includes(id);
  const inPeriod = (d: string) => d >= from && d <= to;
  const fills: ShadowBacktest['fills'][number][] = [];
  for (const sleeve of result.sleeves.filter((s) => wanted(s.id))) {
    for (const t of sleeve.trades) {
      const entry = date(t.entryTime);
      const side = t.direction === 'long' ? 'buy' : 'sell';
      if (inPeriod(entry))
        fills.push({
          sleeve: sleeve.id,
          symbol: t.symbol,
          side,
          qty: t.qty,
          price: t.entryPrice,
          date: entry,
        });
      if (t.exitTime !== null && t.exitPrice !== null && inPeriod(date(t.exitTime)))
        fills.push({
          sleeve: sleeve.id,
          symbol: t.symbol,
          side: side === 'buy' ? 'sell' : 'buy',
          qty: t.qty,
          price: t.exitPrice,
          date: date(t.exitTime),
        });
    }
  }
  // Each sleeve's own curve: its NAV at each close of the period, from the one before the first.
  const periodsPerYear = config.assetClass === 'crypto' ? 365 : 252;
  const dates = Array.from(result.equity.time, (t) => date(t));
  const sleeveCurves = Object.fromEntries(
    result.sleeves.map((sleeve) => {
      const nav = sleeve.equity.nav;
      const firstIn = dates.findIndex(inPeriod);
      const initial = firstIn > 0 ? (nav[firstIn - 1] as number) : sleeve.initialCapital;
      const points = dates.flatMap((d, i) =>
        inPeriod(d) ? [{ date: d, equity: nav[i] as number, inMarket: sleeve.equity.inMarket[i] === 1 }] : [],
      );
      const closed = sleeve.trades.flatMap((t) =>
        t.exitTime !== null && inPeriod(date(t.exitTime)) ? [{ pnlCents: Math.round(t.pnl * 100) }] : [],
      );
      const metrics = curvePerformance({ initial, points }, closed, periodsPerYear);
      return [sleeve.id, { initial, points, metrics: metrics ?? EMPTY_FIGURES }];
    }),
  );
  const startHeld = (openingState?.books ?? []).flatMap((b) =>
    b.positions.map((p) => `${b.id}: ${p.side * p.qty} ${p.symbol}`),
  );
  return {
    fills,
    equity: Array.from(result.equity.time, (t, i) => ({
      date: date(t),
      equity: result.equity.equity[i] as number,
    })).filter((e) => inPeriod(e.date)),
    ...(opening.length === 0 && startHeld.length === 0
      ? {}
      : {
          openingPositions:
            startHeld.length > 0 ? startHeld : opening.map((p) => `${p.sleeve}: ${p.qty} ${p.symbol}`),
        }),
    metrics: shadowMetrics(result.metrics),
    sleeveCurves,
  };
}

/** The figures of a curve without a session. */
const EMPTY_FIGURES: ShadowBacktest['metrics'] = {
  returnPct: 0,
  sharpe: null,
  maxDrawdownPct: 0,
  winRatePct: null,
  profitFactor: null,
  trades: 0,
};

/**
 * One sleeve's ledger up to `day` and its shadow backtest on the broker's raw daily bars (the opens
 * the orders met, the prices the live functions size with); null before the first session.
 */
async function measureSleeve(
  ctx: LiveContext,
  sleeve: string,
  day: string,
  lastSessions?: number,
  sleeves: readonly string[] = [sleeve],
) {
  const { config } = ctx;
  const ledger = await readPaperLedger({
    store: ctx.store as ValidationStore,
    config,
    sleeve,
    sleeves,
    to: day,
    ...(lastSessions === undefined ? {} : { lastSessions }),
  });
  const first = ledger.equity[0]?.date;
  const last = ledger.equity.at(-1)?.date;
  if (first === undefined || last === undefined) return null;
  // The tracking's window is not full yet: no bars, no backtest.
  if (lastSessions !== undefined && ledger.equity.length < lastSessions) return null;
  const warmFrom =
    config.live.historyFrom ??
    new Date(Date.parse(`${first}T00:00:00Z`) - config.live.lookbackDays * DAY_MS).toISOString().slice(0, 10);
  const series = await ctx.marketData.getDailyBars({
    symbols: config.watchlist,
    from: warmFrom,
    to: last,
    adjustment: 'raw',
  });
  return {
    ledger,
    shadow: shadowBacktest(
      config,
      series,
      first,
      last,
      ledger.initialEquity,
      sleeves,
      ledger.startPositions,
      ledger.startState,
    ),
    prices: seriesPrices(series),
  };
}

/**
 * The daily report's rolling tracking against the shadow backtest (docs/validation.md), per sleeve
 * with a full window; a breach names what diverged. A sleeves config is tracked once, for the
 * account (its equity snapshots are the account's), against the sleeves backtest.
 */
export async function backtestTracking(
  ctx: LiveContext,
  day: string,
): Promise<readonly (RollingDivergence & { readonly sleeve: string })[]> {
  const out: (RollingDivergence & { readonly sleeve: string })[] = [];
  const ids = liveSleeveIds(ctx.config);
  const tracked =
    ctx.config.sleeves === undefined
      ? ids.map((id) => [id, [id]] as const)
      : [[ctx.config.name, ids] as const];
  for (const [sleeve, sleeves] of tracked) {
    const measured = await measureSleeve(ctx, sleeve, day, ctx.config.validation.divergence.window, sleeves);
    if (measured === null || measured.shadow === null) continue;
    const rolling = rollingDivergence({
      ledger: measured.ledger,
      backtest: measured.shadow,
      prices: measured.prices,
      modelSlippageBps: ctx.config.costs.slippageBps,
      limits: ctx.config.validation.divergence,
    });
    if (rolling !== null) out.push({ ...rolling, sleeve });
  }
  return out;
}

/** A caveat for a config whose shadow backtest is not run. */
export const SLEEVES_SHADOW_CAVEAT =
  'the shadow backtest of a sleeves config is not run yet: no trade can match';

/** A sleeves config validated as a whole: the document's curves are the account's; each sleeve's record has its own. */
export const SLEEVES_CURVE_CAVEAT =
  "a sleeves config: trades are matched per sleeve; this document's curves, tracking and metrics are the account's (every sleeve together) against the sleeves backtest's account; each sleeve's own are in `sleeves` and in its record";

/** What the weekly run did, per sleeve. */
export interface WeeklyPaperValidation {
  readonly status: 'validated' | 'not-paper';
  readonly sleeves: readonly {
    readonly sleeve: string;
    readonly sessions: number;
    readonly decision: 'go' | 'no-go' | null;
    readonly failed: readonly string[];
  }[];
}

/**
 * The weekly paper validation (scheduled in the paper stage, Friday after the close): every paper
 * session so far, per sleeve, against its shadow backtest on the broker's daily bars; the record
 * stored for the live gate (on {@link paperGateHash}) and the decision sent to the alert topic. In
 * another stage it does nothing.
 */
export async function weeklyPaperValidation(
  ctx: LiveContext,
  scheduledTime: string,
): Promise<WeeklyPaperValidation> {
  if (ctx.stage !== 'paper') return { status: 'not-paper', sleeves: [] };
  const { config } = ctx;
  const day = scheduledTime.slice(0, 10);
  const out: WeeklyPaperValidation['sleeves'][number][] = [];
  for (const sleeve of liveSleeveIds(config)) {
    const measuredSleeve = await measureSleeve(ctx, sleeve, day);
    if (measuredSleeve === null) {
      out.push({ sleeve, sessions: 0, decision: null, failed: [] });
      continue;
    }
    const { ledger, shadow, prices } = measuredSleeve;
    const measured = validateLedger(ledger, shadow, config, prices);
    const result =
      shadow === null ? { ...measured, caveats: [...measured.caveats, SLEEVES_SHADOW_CAVEAT] } : measured;
    await ctx.store.putPaperValidation(
      paperValidationRecord(result, paperGateHash(ctx, sleeve), scheduledTime),
    );
    const failedFigures = result.criteria
      .filter((c) => c.result === 'fail')
      .map((c) => `${c.name} ${c.value === null ? 'n/a' : c.value.toFixed(2)} (${c.rule})`);
    await ctx.notifier.publish({
      subject: `Paper validation of ${sleeve}: ${result.decision.toUpperCase()} (${result.sessions} sessions)`,
      severity: result.decision === 'go' ? 'info' : 'warning',
      text: [
        `${result.from} .. ${result.to}: ${result.trades.matched.length} trades matched, ${result.trades.missed.length} missed, ${result.trades.extra.length} extra`,
        `median slippage ${result.slippageBps.median?.toFixed(2) ?? 'n/a'} bps (p95 ${result.slippageBps.p95?.toFixed(2) ?? 'n/a'}), tracking correlation ${result.tracking.correlation?.toFixed(3) ?? 'n/a'}`,
        ...(failedFigures.length === 0
          ? ['every criterion passed']
          : failedFigures.map((f) => `failed: ${f}`)),
        ...result.caveats.map((c) => `note: ${c}`),
      ].join('\n'),
    });
    out.push({ sleeve, sessions: result.sessions, decision: result.decision, failed: result.failed });
  }
  return { status: 'validated', sleeves: out };
}
