import { InsufficientDataError, InvalidParameterError, QuantShiftError } from '../../errors.js';
import {
  adversePrice,
  PROTECTIVE_NONE,
  type ProtectiveHit,
  protectiveFillPrice,
  protectiveHit,
  STOP_AT_OPEN,
  STOP_INTRABAR,
  slippageFraction,
} from '../../execution/fill-rules.js';
import { type Cents, commissionCents, notionalCents, toCents, toDollars } from '../../ledger/money.js';
import type { BarSeries } from '../../market/types.js';
import { utcDay } from '../../market/utc-day.js';
import {
  CurveStats,
  checkMetricsSettings,
  computeMetrics,
  curveStats,
  curveStatsPair,
  DEFAULT_PERIODS_PER_YEAR,
  type Metrics,
  metricsOfCurve,
  NO_FLAT_RUNS,
  riskFreePerPeriodOf,
  timesValid,
} from '../../metrics/index.js';
import {
  type BreakerPositions,
  backtestBreakers,
  breakerBound,
  breakerPositions,
  breakerSkipTo,
  breakerStep,
  DAILY_LOSS_TRIP,
  initialRiskState,
  KellySums,
  MIN_NORMAL,
  manageStop,
  NO_DAY,
  type RiskRules,
  type RiskState,
  riskStateOf,
  safeLimitFactor,
  scalarEntryBlock,
} from '../../risk/index.js';
import { allInFillQty } from '../../sizing/index.js';
import {
  type DecisionContext,
  type EnterIntent,
  HOLD,
  type Intent,
  type StrategyDefinition,
  type StrategyInstance,
} from '../../strategies/types.js';
import { IndicatorCache, paddedBytes, type VectorRule, wordsOf } from '../../strategies/vector.js';
import {
  CloseDecider,
  flatEntryOut,
  type HeldPosition,
  planFlatEntry,
  productStop,
} from '../../trading/decide.js';
import type { BacktestOptions, FillRecord, OrderRole, TradeRecord } from '../types.js';

/** The fast engine cannot run this case (the caller runs the reference engine instead). */
export class FastPathUnsupportedError extends QuantShiftError {}

/**
 * One symbol's data for a sweep, shared by every combination: the bars, the trading days of the
 * breakers, the risk rules' ATR (one array per period) and buy-and-hold over the traded span.
 */
export class FastSeries {
  readonly start: number;
  readonly end: number;
  readonly span: number;
  /** `day`'s cache, one slot per bar (made here, not at the first call: see `day`). */
  private readonly days: (string | undefined)[];
  /** The UTC day number of each bar (days since 1970-01-01): equal numbers, equal trading days. */
  readonly dayNumber: Int32Array;
  /** Indicator arrays shared by every combination (the strategies' `vectorize`, the risk rules' ATR). */
  readonly cache: IndicatorCache;
  /** The breakers' positions of these bars (`breakerPositions`), made once, not per run. */
  readonly positions: BreakerPositions;
  readonly buyHoldReturnPct: number;
  /** The traded bars' times (the equity curve's), shared by every combination. */
  readonly time: Float64Array;
  /** Whether those times pass the metrics' checks (checked once here, not per combination). */
  readonly timesValid: boolean;

  constructor(
    readonly series: BarSeries,
    startIndex: number | undefined,
    endIndex: number | undefined,
  ) {
    const n = series.time.length;
    for (let i = 1; i < n; i++) {
      if (!((series.time[i] as number) > (series.time[i - 1] as number))) {
        throw new InvalidParameterError(
          `${series.symbol}: bar times are not strictly increasing (at bar ${i})`,
        );
      }
    }
    this.start = startIndex ?? 0;
    this.end = endIndex ?? n - 1;
    if (n === 0 || this.start > this.end || this.start < 0 || this.end >= n) {
      throw new InsufficientDataError(
        `no bars to trade in the requested range (slots ${this.start}..${this.end} of ${n})`,
      );
    }
    this.span = this.end - this.start + 1;
    // Made here: made at `day`'s first call, its branch had no type feedback in the code optimized
    // on an earlier series, which then deoptimized at each new series' first day.
    this.days = new Array<string | undefined>(n);
    this.dayNumber = new Int32Array(n);
    for (let i = 0; i < n; i++) this.dayNumber[i] = Math.floor((series.time[i] as number) / 86_400_000);
    this.cache = new IndicatorCache(series);
    this.positions = breakerPositions(this, series.time);
    this.buyHoldReturnPct =
      ((series.close[this.end] as number) / (series.close[this.start] as number) - 1) * 100;
    this.time = series.time.slice(this.start, this.end + 1);
    this.timesValid = timesValid(this.time, this.span);
  }

  /** `YYYY-MM-DD` of a bar (the daily-loss breaker's day), computed once per bar when first asked. */
  day(bar: number): string {
    let day = this.days[bar];
    if (day === undefined) {
      day = utcDay(this.series.time[bar] as number);
      this.days[bar] = day;
    }
    return day;
  }

  /** The risk rules' ATR at each bar, from the same streaming indicator the engine feeds. */
  atr(period: number): Float64Array {
    return this.cache.atr(period);
  }
}

/**
 * Where one combination's run leaves what its metrics need: the equity curve, the in-market flags
 * and their count, the closed trades' P&L, and the pass over the curve (`stats`).
 */
export class FastLane {
  readonly equity: Float64Array;
  readonly inMarket: Uint8Array;
  /**
   * The closed trades' P&L of the combination being run. Made with double elements from the start
   * (`doubleList`): a fresh `[]` holds small integers until its first fractional P&L, and code
   * optimized on an earlier lane's list deoptimized at that first push (a sweep makes new lanes
   * per chunk).
   */
  readonly pnls: number[] = doubleList();
  /** The running sums of `pnls` (the Kelly estimate's, kept in step with it). */
  readonly pnlSums = new KellySums();
  barsInMarket = 0;
  readonly stats = new CurveStats();
  /**
   * The entry decision's decider, reused by every run in this lane (made with `reuse`: its lists
   * and records are kept across calls, and each call starts afresh), instead of one per run.
   */
  readonly decider = new CloseDecider(true);
  /** The entry `planFlatEntry` plans at a flat close (and its inputs), read at once. */
  readonly planned = flatEntryOut();
  /** The position's figures during a run (`P_*` slots), doubles that a variable would box. */
  readonly position = new Float64Array(P_SLOTS);
  /**
   * The flat stretches a sweep's run did not write into `equity` (each point equal to the one
   * before it, which is positive): pairs (first slot, end slot), then an end pair, as `curveStats`
   * takes them (RECORDED RUNS there). A recorded run (`record`) writes every point and no stretch.
   */
  readonly flatRuns: Int32Array;

  constructor(span: number) {
    this.equity = new Float64Array(span);
    this.inMarket = new Uint8Array(span);
    // At most one stretch per two points (a stretch starts after a written point), and the end pair.
    this.flatRuns = new Int32Array(span + 4);
    this.flatRuns.set(NO_FLAT_RUNS);
  }

  /** Writes the recorded flat stretches into `equity` (for a reader of the whole curve) and forgets them. */
  fillFlatRuns(): void {
    const runs = this.flatRuns;
    const equity = this.equity;
    for (let r = 0; (runs[r] as number) < equity.length; r += 2) {
      const from = runs[r] as number;
      equity.fill(equity[from - 1] as number, from, runs[r + 1] as number);
    }
    runs.set(NO_FLAT_RUNS);
  }
}

// `FastLane.position`'s slots: the open position's entry price, stop, take-profit, entry reference
// and initial risk, and the pending entry's quantity (NaN: all in), stop, take-profit (NaN: none)
// and reference.
const P_ENTRY_PRICE = 0;
const P_STOP_PRICE = 1;
const P_TARGET_PRICE = 2;
const P_ENTRY_REF = 3;
const P_INITIAL_RISK = 4;
const P_ENTRY_QTY = 5;
const P_ENTRY_STOP = 6;
const P_ENTRY_TARGET = 7;
const P_ENTRY_REF_PENDING = 8;
const P_SLOTS = 9;

/** An empty array whose elements are doubles (its kind stays when it is emptied). */
function doubleList(): number[] {
  const list = [0.5];
  list.length = 0;
  return list;
}

/**
 * Buffers reused across the combinations of a sweep: two lanes, so a sweep runs two combinations
 * and then the passes over both curves in one call (`curveStatsPair`).
 */
export class FastScratch {
  readonly lanes: readonly [FastLane, FastLane];

  private codesBuffer: Uint8Array | undefined;

  constructor(span: number) {
    this.lanes = [new FastLane(span), new FastLane(span)];
  }

  /**
   * The first lane's equity curve (what a single run writes), its flat stretches written in first
   * (a sweep's run records them as runs only: `FastLane.flatRuns`).
   */
  get equity(): Float64Array {
    this.lanes[0].fillFlatRuns();
    return this.lanes[0].equity;
  }

  /** The first lane's in-market flags. */
  get inMarket(): Uint8Array {
    return this.lanes[0].inMarket;
  }

  /** The first lane's closed P&Ls. */
  get pnls(): number[] {
    return this.lanes[0].pnls;
  }

  /** The array a vectorized rule writes its codes into (one element per bar), reused by every combination. */
  codes(bars: number): Uint8Array {
    if (this.codesBuffer?.length !== bars) {
      // Padded to whole 32-bit words (`paddedBytes`), so the codes can be read four at a time.
      this.codesBuffer = paddedBytes(bars);
    }
    return this.codesBuffer;
  }
}

/** What the fast engine returns: the reference engine's trades, fills, equity and metrics. */
export interface FastResult {
  readonly metrics: Metrics;
  /** Present when recorded (`record: true`). */
  readonly trades?: readonly TradeRecord[];
  readonly fills?: readonly FillRecord[];
  /** The breakers' state at the end (the reference's `risk.finalState`), when recorded with risk rules. */
  readonly finalRiskState?: RiskState;
  readonly equity?: {
    readonly time: Float64Array;
    readonly equity: Float64Array;
    readonly inMarket: Uint8Array;
  };
}

const FLAT: DecisionContext = Object.freeze({ position: 'flat' });
const LONG: DecisionContext = Object.freeze({ position: 'long' });
const SHORT: DecisionContext = Object.freeze({ position: 'short' });

/**
 * Backtests one strategy with one parameter set on one symbol, with exactly the reference engine's
 * semantics (`runBacktest`: fills, costs, sizing, risk rules, metrics), without its generality: one
 * symbol, no per-bar objects, positions as scalars, the close's decision taken only where it can do
 * something, and the breakers' bookkeeping inlined on flat closes. The strategy runs through its
 * own instance (`create`), the same code the engine and the live functions run. Entries with a
 * non-market order type or a trailing stop, and the volatility cap (`risk.volatilityCap`), throw
 * `FastPathUnsupportedError`. See docs/engine.md.
 */
export function runFastBacktest<P>(
  data: FastSeries,
  strategy: StrategyDefinition<P>,
  params: P,
  options: BacktestOptions,
  scratch: FastScratch,
  record = false,
): FastResult {
  if (!record) {
    const lane = scratch.lanes[0];
    simulate(data, strategy, params, options, scratch, lane, false);
    return { metrics: fastMetrics(data, options, lane) };
  }
  const lane = new FastLane(data.span);
  const recorded = simulate(data, strategy, params, options, scratch, lane, true) as Recorded;
  return {
    metrics: fastMetrics(data, options, lane),
    trades: recorded.trades,
    fills: recorded.fills,
    equity: { time: data.time.slice(), equity: lane.equity, inMarket: lane.inMarket },
    ...(recorded.finalRiskState === undefined ? {} : { finalRiskState: recorded.finalRiskState }),
  };
}

/**
 * Runs one combination into `lane` (its equity curve, in-market flags and closed P&Ls) without
 * its metrics: a sweep runs two lanes, then `fastMetricsPair` (or `fastMetrics` for one).
 */
export function runFastCurve<P>(
  data: FastSeries,
  strategy: StrategyDefinition<P>,
  params: P,
  options: BacktestOptions,
  scratch: FastScratch,
  lane: FastLane,
): void {
  simulate(data, strategy, params, options, scratch, lane, false);
}

/** What a recorded run keeps besides its lane. */
interface Recorded {
  readonly trades: TradeRecord[];
  readonly fills: FillRecord[];
  readonly finalRiskState: RiskState | undefined;
}

/**
 * The metrics of the run in `lane`, exactly `computeMetrics`' (the reference engine's call): the
 * settings checked, the bar times checked once per series (`FastSeries.timesValid`), one pass over
 * the curve. A curve or setting that breaks the metrics' contract goes to `computeMetrics`, which
 * names it.
 */
export function fastMetrics(data: FastSeries, options: BacktestOptions, lane: FastLane): Metrics {
  const rf = metricsRiskFree(data, options);
  if (rf === undefined) return laneComputeMetrics(data, options, lane);
  curveStats(data.time, lane.equity, data.span, options.initialCash, rf, lane.stats, lane.flatRuns);
  return laneMetrics(data, options, lane);
}

/**
 * `fastMetrics` of two lanes (in that order), their curves' passes in one call (`curveStatsPair`:
 * each curve's single pass, the same arithmetic as `fastMetrics`).
 */
export function fastMetricsPair(
  data: FastSeries,
  options: BacktestOptions,
  a: FastLane,
  b: FastLane,
): [Metrics, Metrics] {
  const rf = metricsRiskFree(data, options);
  if (rf === undefined) return [laneComputeMetrics(data, options, a), laneComputeMetrics(data, options, b)];
  curveStatsPair(
    data.time,
    a.equity,
    b.equity,
    data.span,
    options.initialCash,
    rf,
    a.stats,
    b.stats,
    a.flatRuns,
    b.flatRuns,
  );
  return [laneMetrics(data, options, a), laneMetrics(data, options, b)];
}

const periodsPerYearOf = (options: BacktestOptions) => options.periodsPerYear ?? DEFAULT_PERIODS_PER_YEAR;

/** The per-period risk-free return after the settings' checks; undefined when the times break them. */
function metricsRiskFree(data: FastSeries, options: BacktestOptions): number | undefined {
  const riskFreeRate = options.riskFreeRate ?? 0;
  const periodsPerYear = periodsPerYearOf(options);
  checkMetricsSettings(options.initialCash, riskFreeRate, periodsPerYear, data.buyHoldReturnPct);
  return data.timesValid ? riskFreePerPeriodOf(riskFreeRate, periodsPerYear) : undefined;
}

/** The metrics of a lane whose pass is in `lane.stats`; a non-finite point goes to `computeMetrics`. */
function laneMetrics(data: FastSeries, options: BacktestOptions, lane: FastLane): Metrics {
  if (!lane.stats.finite) return laneComputeMetrics(data, options, lane);
  return metricsOfCurve(
    lane.stats,
    lane.barsInMarket,
    lane.pnls,
    options.initialCash,
    data.buyHoldReturnPct,
    periodsPerYearOf(options),
  );
}

function laneComputeMetrics(data: FastSeries, options: BacktestOptions, lane: FastLane): Metrics {
  lane.fillFlatRuns();
  return computeMetrics({
    time: data.time,
    equity: lane.equity,
    initialEquity: options.initialCash,
    inMarket: lane.inMarket,
    tradePnls: lane.pnls,
    buyHoldReturnPct: data.buyHoldReturnPct,
    riskFreeRate: options.riskFreeRate,
    periodsPerYear: periodsPerYearOf(options),
  });
}

/** One combination's run into `lane`; the trades, fills and final breaker state when `record`. */
function simulate<P>(
  data: FastSeries,
  strategy: StrategyDefinition<P>,
  params: P,
  options: BacktestOptions,
  scratch: FastScratch,
  lane: FastLane,
  record: boolean,
): Recorded | undefined {
  const direction = options.direction ?? 'long-only';
  // The strategy's vectorized rule over the series when it has one (indicator arrays shared across
  // the grid, decided only at bars where the rule can fire), else its instance fed every bar.
  const vector: VectorRule | undefined = strategy.vectorize?.(
    params,
    { direction },
    data.cache,
    scratch.codes(data.series.time.length),
  );
  const instance: StrategyInstance | undefined =
    vector === undefined ? strategy.create(params, { direction }) : undefined;
  const { series, start, end, span } = data;
  const symbol = series.symbol;
  const product = options.products?.[symbol];
  const { time: timeOf, open, high, low, close, volume } = series;
  const rules = options.risk;
  if (rules?.volatilityCap !== undefined) {
    // The cap reads a rolling volatility the fast engine does not keep: without it every entry is refused.
    throw new FastPathUnsupportedError(`${strategy.name}: the volatility cap (risk.volatilityCap)`);
  }
  const riskAtr = rules === undefined ? undefined : data.atr(rules.stops.atrPeriod);
  const slip = slippageFraction(options.slippageBps);
  const commission = options.commission;
  // The commission's floor in cents, rounded once per run (`commissionCents`' default).
  const minimumFee = toCents(commission.minimum);
  // Read here, at every run (see `closeAtEnd`): read only where a position was open at the end of
  // the data, its first such run after `simulate` was optimized deoptimized it.
  const holdAtEnd = options.endOfData === 'hold';
  const riskState: RiskState = initialRiskState(options.initialCash);
  // Without trailing, break-even and time stop, `manageStop` leaves the stop and never exits.
  const stopRules = rules?.stops;
  const manages =
    stopRules !== undefined &&
    (stopRules.trailAtr !== undefined ||
      stopRules.breakEvenAtR !== undefined ||
      stopRules.timeStopDays !== undefined);

  const fills: FillRecord[] | undefined = record ? [] : undefined;
  // Trades and fills are recorded only when asked for; the closed P&Ls (Kelly, metrics) always.
  const trades: TradeRecord[] | undefined = record ? [] : undefined;
  const closedPnls = lane.pnls;
  closedPnls.length = 0;
  const pnlSums = lane.pnlSums;
  pnlSums.reset();
  let nextOrderId = 1;
  let cash: Cents = Math.round(options.initialCash * 100);

  // The position (side 0: flat) and its protective orders.
  let side: 0 | 1 | -1 = 0;
  let qty = 0;
  // The entry's bar (its time is read for the records only).
  let entryBar = 0;
  let entryNotional = 0;
  let entryCommission = 0;
  let stopId = 0;
  let targetId = 0;
  let armedFrom = 0;
  let sessionsHeld = 0;
  // Orders for the next session (id 0: none).
  let exitId = 0;
  let entryId = 0;
  let entrySide: 1 | -1 = 1;
  let entryHasStop = false;
  let entryHasTarget = false;
  // The position's and the pending entry's doubles (`P_*`; NaN: no stop, target or risk), in the
  // lane's typed array rather than in variables the closures capture (each write of a double
  // there would box it).
  const pos = lane.position;
  pos.fill(Number.NaN);
  pos[P_ENTRY_PRICE] = 0;
  pos[P_ENTRY_REF] = 0;
  pos[P_ENTRY_QTY] = 0;
  pos[P_ENTRY_REF_PENDING] = 0;

  // Doubles written at every close live in typed arrays or object fields, never in variables the
  // closures below capture: V8 boxes each such write into a new heap number. So does a call of a
  // closure it does not inline (`fillEntry`, `decide`, `closePosition`) for each double argument:
  // they take the bar (a small integer) and read its time themselves.
  const atrAt = (bar: number): number => (riskAtr === undefined ? Number.NaN : (riskAtr[bar] as number));
  let intent: Intent = { action: 'hold' };

  const adverse = (price: number, buy: boolean) => adversePrice(price, buy, slip);

  /**
   * A fill of `q` at `price` at `bar`, whose notional and commission (`fee`) the caller computed
   * already. It takes the bar, not its time: the time (a double) is read only when recording, where
   * passing it to a call V8 does not inline boxed it at every fill.
   */
  const execute = (
    orderId: number,
    buy: boolean,
    q: number,
    price: number,
    bar: number,
    notional: Cents,
    fee: Cents,
  ): void => {
    cash += buy ? -notional - fee : notional - fee;
    fills?.push({
      orderId,
      symbol,
      side: buy ? 'buy' : 'sell',
      qty: q,
      price,
      time: timeOf[bar] as number,
      notional: toDollars(notional),
      commission: toDollars(fee),
    });
  };

  const closePosition = (orderId: number, role: OrderRole, price: number, bar: number) => {
    const notional = notionalCents(qty, price);
    const exitCommission = commissionCents(commission, qty, notional, minimumFee);
    execute(orderId, side === -1, qty, price, bar, notional, exitCommission);
    const pnl = side * (notional - entryNotional) - entryCommission - exitCommission;
    trades?.push({
      symbol,
      direction: side === 1 ? 'long' : 'short',
      qty,
      entryTime: timeOf[entryBar] as number,
      entryPrice: pos[P_ENTRY_PRICE] as number,
      exitTime: timeOf[bar] as number,
      exitPrice: price,
      pnl: toDollars(pnl),
      commission: toDollars(entryCommission + exitCommission),
      exitReason: role,
    });
    const closed = toDollars(pnl);
    closedPnls.push(closed);
    pnlSums.add(closed);
    side = 0;
  };

  /**
   * The end of data's close of a position (when `closing`). Called at every run, closing or not: a
   * run that first closed there after `simulate` was optimized deoptimized it (its operations had
   * no type feedback), and a sweep's first runs often end flat.
   */
  const closeAtEnd = (closing: boolean, price: number) => {
    if (closing) closePosition(nextOrderId++, 'end-of-data', price, end);
  };

  /** Resting stop and take-profit against one bar (`gapOnly`: the open alone). */
  const checkProtective = (bar: number, gapOnly: boolean) => {
    if (side === 0 || bar < armedFrom) return;
    const o = open[bar] as number;
    const long = side === 1;
    const hit = protectiveHit(
      long,
      o,
      high[bar] as number,
      low[bar] as number,
      pos[P_STOP_PRICE] as number,
      pos[P_TARGET_PRICE] as number,
      gapOnly,
    );
    if (hit !== PROTECTIVE_NONE) closeProtective(hit, bar);
  };
  /** The close of the position by its stop or target (`hit`, `protectiveHit`'s) at `bar`. */
  const closeProtective = (hit: ProtectiveHit, bar: number) => {
    const stopHit = hit === STOP_AT_OPEN || hit === STOP_INTRABAR;
    closePosition(
      stopHit ? stopId : targetId,
      stopHit ? 'stop-loss' : 'take-profit',
      protectiveFillPrice(
        hit,
        side === 1,
        open[bar] as number,
        pos[P_STOP_PRICE] as number,
        pos[P_TARGET_PRICE] as number,
        slip,
      ),
      bar,
    );
  };

  const fillEntry = (bar: number) => {
    const id = entryId;
    entryId = 0;
    if (side !== 0) return;
    const buy = entrySide === 1;
    const price = adverse(open[bar] as number, buy);
    const power = cash;
    let q = pos[P_ENTRY_QTY] as number;
    if (Number.isNaN(q)) {
      q = allInFillQty(power, price, commission, options, toDollars(cash), product);
      if (!(q > 0)) return;
    }
    const notional = notionalCents(q, price);
    const fee = commissionCents(commission, q, notional, minimumFee);
    if (notional + fee > power) return;
    execute(id, buy, q, price, bar, notional, fee);
    side = entrySide;
    qty = q;
    pos[P_ENTRY_PRICE] = price;
    entryBar = bar;
    entryNotional = notional;
    // In cents already (a whole number: `commissionCents`), as the reference engine keeps it.
    entryCommission = fee;
    armedFrom = bar;
    pos[P_ENTRY_REF] = pos[P_ENTRY_REF_PENDING] as number;
    pos[P_INITIAL_RISK] = !entryHasStop
      ? Number.NaN
      : Math.abs((pos[P_ENTRY_REF_PENDING] as number) - (pos[P_ENTRY_STOP] as number));
    sessionsHeld = 0;
    stopId = 0;
    pos[P_STOP_PRICE] = Number.NaN;
    targetId = 0;
    pos[P_TARGET_PRICE] = Number.NaN;
    if (entryHasStop) {
      stopId = nextOrderId++;
      pos[P_STOP_PRICE] = pos[P_ENTRY_STOP] as number;
    }
    if (entryHasTarget) {
      targetId = nextOrderId++;
      pos[P_TARGET_PRICE] = pos[P_ENTRY_TARGET] as number;
    }
  };

  // The breakers' state as scalars (`breakerStep`'s, keyed by day number, a day's position its bar),
  // materialized as a `RiskState` only for the report.
  const dayNumber = data.dayNumber;
  const bk = backtestBreakers(rules, riskState.highWaterMark);
  const bars = data.positions;
  const killSwitch = riskState.killSwitch;
  const materialize = (): RiskState => riskStateOf(bk, bars, killSwitch);

  /**
   * A close where the strategy does not enter, with the risk rules: what `decideAtClose` does there
   * (`observeEquity`, the backtest's drawdown auto-reset, flatten on a daily-loss trip, `manageStop`,
   * the strategy's exit), on scalars. The oracle test pins it to the shared functions.
   */
  const riskClose = (bar: number, k: number) => {
    const tripped = breakersClose(bar, k);
    if (side !== 0) positionClose(bar, tripped);
  };
  /**
   * The breakers' bookkeeping of a close (`breakerStep`: `observeEquity`'s rules and the backtest's
   * drawdown auto-reset) at the equity in `equityValue[k]`; returns whether the daily-loss breaker tripped.
   */
  const breakersClose = (bar: number, k: number): boolean =>
    (breakerStep(bk, dayNumber[bar] as number, bar, equityValue[k] as number) & DAILY_LOSS_TRIP) !== 0;
  /**
   * The held position at a close after the breakers: the strategy's exit, flatten on a daily-loss
   * trip (`tripped`), `manageStop`. With the intent HOLD and no stop management it does nothing
   * unless `tripped`.
   */
  const positionClose = (bar: number, tripped: boolean) => {
    const rulesNow = rules as NonNullable<typeof rules>;
    let exiting = intent.action === 'exit';
    if (rulesNow.flattenOnDailyLoss && tripped) {
      exiting = true;
    } else if (manages) {
      const update = manageStop(
        {
          side: side as 1 | -1,
          entryPrice: pos[P_ENTRY_PRICE] as number,
          initialRisk: pos[P_INITIAL_RISK] as number,
          stop: stopId === 0 ? Number.NaN : (pos[P_STOP_PRICE] as number),
          sessionsHeld,
        },
        close[bar] as number,
        atrAt(bar),
        rulesNow.stops,
      );
      // A product's stop is in whole cents, as `decideAtClose` moves it (`productStop`).
      const moved = product === undefined ? update.stop : productStop(update.stop, side as 1 | -1);
      if (stopId !== 0 && moved !== (pos[P_STOP_PRICE] as number)) pos[P_STOP_PRICE] = moved;
      if (update.exit !== null) exiting = true;
    }
    if (exiting) exitId = nextOrderId++;
  };

  // The close's input to the decider, rewritten at each close. The decider keeps it until its next
  // call (the decisions' lazy `heatPct` reads it), so it is left as is until the decisions are read.
  const held = {
    side: 1 as 1 | -1,
    qty: 0,
    entryPrice: 0,
    entryRef: 0,
    initialRisk: Number.NaN,
    stop: undefined as number | undefined,
    sessionsHeld: 0,
  };
  const row = {
    symbol,
    hasBar: true,
    close: 0,
    atr: Number.NaN,
    intent: HOLD as Intent,
    position: undefined as HeldPosition | undefined,
  };
  const closeInput = {
    time: 0,
    equity: 0,
    buyingPower: 0,
    symbols: [row],
    closedPnls,
    closedPnlSums: pnlSums,
    options,
    // A sweep reads the decisions only: their explanations (refusals, reductions) are not built.
    explain: false,
  };
  // The lane's decider: its decisions are read before its next call.
  const decider = lane.decider;
  /** Throws for an entry the fast engine does not model (an order other than market at the open). */
  const checkMarket = (enter: EnterIntent) => {
    if ((enter.order !== undefined && enter.order.type !== 'market') || enter.trailingStop !== undefined) {
      throw new FastPathUnsupportedError(`${strategy.name}: entry orders other than market at the open`);
    }
  };
  // Entries decided on scalars when flat (`planFlatEntry`): with the risk rules and no product.
  const scalarEntries = rules !== undefined && product === undefined;
  const riskOptions = options as BacktestOptions & { readonly risk: RiskRules };
  const planned = lane.planned;
  /**
   * A close where the strategy enters (or any close without risk rules): the breakers on the
   * scalars (`breakersClose`, as `riskClose` runs them), then the shared decision after them
   * (`decideAfterBreakers`: what `decideAtClose` does once `observeEquity` has run).
   */
  const decide = (bar: number, equityCents: Cents) => {
    let tripped = false;
    let blocked: string | null = null;
    if (rules !== undefined) {
      tripped = breakersClose(bar, bar - start);
      blocked = scalarEntryBlock(bk, bar, bars, killSwitch, false);
    }
    if (side === 0 && scalarEntries && intent.action === 'enter') {
      // Flat, with the risk rules and no product: the entry on scalars (`planFlatEntry`, what the
      // decider plans there), without the decider's input objects and lists.
      const enter = intent;
      const price = close[bar] as number;
      // Flat: the equity is the cash, which is the buying power too. The close's figures go in
      // `planned`'s fields, not as arguments (a call not inlined would box each).
      const equity = toDollars(equityCents);
      planned.price = price;
      planned.atr = atrAt(bar);
      planned.equity = equity;
      planned.buyingPower = equity;
      if (planFlatEntry(enter, blocked !== null, closedPnls, pnlSums, riskOptions, planned)) {
        checkMarket(enter);
        entryId = nextOrderId++;
        pos[P_ENTRY_QTY] = planned.qty;
        entrySide = enter.side === 'long' ? 1 : -1;
        entryHasStop = true;
        pos[P_ENTRY_STOP] = planned.stopLoss;
        entryHasTarget = planned.hasTakeProfit;
        pos[P_ENTRY_TARGET] = planned.takeProfit;
        pos[P_ENTRY_REF_PENDING] = price;
      }
      return;
    }
    closeInput.time = timeOf[bar] as number;
    closeInput.equity = toDollars(equityCents);
    closeInput.buyingPower = toDollars(
      side === -1 ? cash - 2 * notionalCents(qty, close[bar] as number) : cash,
    );
    row.close = close[bar] as number;
    row.atr = atrAt(bar);
    row.intent = intent;
    if (side === 0) {
      row.position = undefined;
    } else {
      held.side = side;
      held.qty = qty;
      held.entryPrice = pos[P_ENTRY_PRICE] as number;
      held.entryRef = pos[P_ENTRY_REF] as number;
      held.initialRisk = pos[P_INITIAL_RISK] as number;
      held.stop = stopId === 0 ? undefined : (pos[P_STOP_PRICE] as number);
      held.sessionsHeld = sessionsHeld;
      row.position = held;
    }
    const decisions = decider.decideAfterBreakers(closeInput, blocked, tripped);
    // Indexed loops: the lists are often the decision's frozen empty one, which for-of iterates slowly.
    const { stops, entries } = decisions;
    for (let i = 0; i < stops.length; i++) {
      if (stopId !== 0) pos[P_STOP_PRICE] = (stops[i] as (typeof stops)[number]).stop;
    }
    if (decisions.exits.length > 0) exitId = nextOrderId++;
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i] as (typeof entries)[number];
      const enter: EnterIntent = entry.intent;
      checkMarket(enter);
      entryId = nextOrderId++;
      pos[P_ENTRY_QTY] = entry.qty;
      entrySide = enter.side === 'long' ? 1 : -1;
      entryHasStop = entry.stopLoss !== undefined;
      pos[P_ENTRY_STOP] = entry.stopLoss ?? Number.NaN;
      entryHasTarget = entry.takeProfit !== undefined;
      pos[P_ENTRY_TARGET] = entry.takeProfit ?? Number.NaN;
      pos[P_ENTRY_REF_PENDING] = entry.entryRef;
    }
  };

  /**
   * Closes `from`..`to` (holds, flat, nothing pending, equity as at the close before `from`, which
   * was observed): the breakers' bookkeeping over them. While a drawdown halt holds, each close
   * runs the per-bar code (the cool-off counts the days and resets the halt); after it, at a
   * constant equity, a day change only makes the day's start equity that equity (no loss, no new
   * drawdown, as the limits are positive), so the rest is one step to the last close's day.
   */
  const flatStretch = (from: number, to: number) => {
    let bar = from;
    for (; bar <= to && bk.haltSessions >= 0; bar++) riskClose(bar, bar - start);
    if (bar > to) return;
    breakerSkipTo(bk, dayNumber[to] as number, to);
  };

  const equityValue = lane.equity;
  const inMarket = lane.inMarket;
  inMarket.fill(0);
  // The flat stretches not written into `equityValue` (`FastLane.flatRuns`), the end pair after the
  // last at every step: a run that throws leaves its own stretches so far, never an earlier run's.
  const runs = lane.flatRuns;
  const runsEnd = NO_FLAT_RUNS[0] as number;
  let runCount = 0;
  runs[0] = runsEnd;
  runs[1] = runsEnd;
  let barsInMarket = 0;
  const bar = { time: 0, open: 0, high: 0, low: 0, close: 0, volume: 0 };
  const codes = vector?.codes;
  const masks = vector === undefined ? [0, 0, 0] : [vector.flatMask, vector.longMask, vector.shortMask];
  const flatMask = masks[0] as number;
  // The codes four at a time, for the scan of a flat stretch (`flatMask` in every byte).
  const words = codes === undefined ? undefined : wordsOf(codes);
  const flatWord = flatMask * 0x01010101;
  const longMask = masks[1] as number;
  const shortMask = masks[2] as number;
  // Flat stretches are skipped only where the breakers cannot trip at a constant equity.
  const skipFlat =
    codes !== undefined && (rules === undefined || (bk.dailyLossLimit > 0 && bk.maxDrawdown > 0));
  // Held stretches run in a tight loop when no stop management can move the stop or exit.
  const holdFast = codes !== undefined && !manages;
  // The breakers' pre-tests of the held stretches (`safeLimitFactor`: NaN, none, unless both limits are in (0, 1)).
  const lossFactor = safeLimitFactor(bk.dailyLossLimit);
  const drawdownFactor = safeLimitFactor(bk.maxDrawdown);
  const preTests = rules !== undefined && !Number.isNaN(lossFactor) && !Number.isNaN(drawdownFactor);
  // The close whose intent a held stretch decided (it stopped there: the rule does not exit); -1: none.
  let decidedAt = -1;
  /**
   * Held with nothing pending, from `from`: each close where neither the protective orders
   * (`protectiveHit`) nor the rule (`codes & mask`) can act, as the per-bar code runs it (the
   * position marked at the close, the breakers' bookkeeping in `riskClose`), with the position's
   * figures in locals; with the risk rules, the trade's end too (docs/engine.md, "A trade as one
   * path"): a stop or target is closed at its bar, which is returned (the per-bar code runs its
   * close, flat); at a close where the rule's bits are set (the stop and target checked first), an
   * exit is run as a held close that places the exit order, and the next bar is returned; another
   * decision stops the stretch there (`decidedAt`). Also returns the bar after a close where the
   * breakers flatten; without risk rules, the bar where the rule can act.
   *
   * The breakers' state is kept in locals too, and a close runs `breakerStep` itself only where a
   * pre-test without a division (`safeLimitFactor`: the equity at or above a bound of the day's
   * start and one of the high-water mark, each a product made when they change) cannot tell that
   * neither breaker trips; elsewhere the close does what `breakerStep` does when nothing trips (a new
   * day starts from the last equity, the high-water mark follows the equity). While a drawdown halt
   * holds (its sessions counted and reset by `breakerStep`) the closes run `holdStretchStepped`.
   */
  const holdStretch = (from: number): number => {
    intent = HOLD;
    const rulesOn = rules !== undefined;
    if (rulesOn && !(preTests && bk.haltSessions < 0)) return holdStretchStepped(from);
    const long = side === 1;
    const mask = long ? longMask : shortMask;
    const sign = side;
    const held = qty;
    const base = cash;
    const stop = pos[P_STOP_PRICE] as number;
    const target = pos[P_TARGET_PRICE] as number;
    const armed = armedFrom;
    const flags = codes as Uint8Array;
    let day = bk.day;
    let dayAt = bk.dayAt;
    let dayStart = bk.dayStartEquity;
    let last = bk.lastEquity;
    let peak = bk.highWaterMark;
    let lossDay = bk.lossDay;
    // NaN (every close runs the exact step) unless the reference is normal, positive and finite.
    let lossBound = breakerBound(dayStart, lossFactor);
    let peakBound = breakerBound(peak, drawdownFactor);
    let at = from;
    // The stop's or the target's hit that ends the stretch (closed here, at `at`, after the loop).
    let hit: ProtectiveHit = PROTECTIVE_NONE;
    while (at < end) {
      // The close where the rule exits (no stop or target acting first) is the stretch's last.
      let exits = false;
      const flagged = ((flags[at] as number) & mask) !== 0;
      // Without the risk rules the per-bar code runs a flagged close.
      if (flagged && !rulesOn) break;
      if (at >= armed) {
        hit = protectiveHit(
          long,
          open[at] as number,
          high[at] as number,
          low[at] as number,
          stop,
          target,
          false,
        );
        if (hit !== PROTECTIVE_NONE) break;
      }
      if (flagged) {
        const decided = (vector as VectorRule).decide(at, long ? 'long' : 'short');
        intent = decided;
        if (decided.action !== 'exit') {
          // Decided here: the per-bar code runs this close with this intent.
          decidedAt = at;
          break;
        }
        exits = true;
      }
      const k = at - start;
      inMarket[k] = 1;
      const equity = toDollars(base + sign * notionalCents(held, close[at] as number));
      equityValue[k] = equity;
      at++;
      if (!rulesOn) continue;
      // `riskClose`: with the intent HOLD and no stop management, the position's part acts only
      // on a daily-loss trip.
      const d = dayNumber[at - 1] as number;
      const newDay = d !== day;
      let start0 = dayStart;
      let bound = lossBound;
      if (newDay) {
        if (day !== NO_DAY) start0 = last;
        // `breakerBound(start0, lossFactor)`, written out: this runs at most closes, and the
        // call is not inlined into this closure (2-3 % of a sweep's engine CPU).
        bound = start0 >= MIN_NORMAL && start0 < Number.POSITIVE_INFINITY ? start0 * lossFactor : Number.NaN;
      }
      if ((lossDay === d || equity >= bound) && equity >= peakBound) {
        // Neither breaker trips: what `breakerStep` does then.
        if (newDay) {
          day = d;
          dayAt = at - 1;
          dayStart = start0;
          lossBound = bound;
        }
        if (equity > peak) {
          peak = equity;
          // `breakerBound(peak, drawdownFactor)`, written out (as above).
          peakBound =
            peak >= MIN_NORMAL && peak < Number.POSITIVE_INFINITY ? peak * drawdownFactor : Number.NaN;
        }
        last = equity;
        if (exits) {
          // `positionClose` with the intent EXIT (no trip, no stop management).
          exitId = nextOrderId++;
          break;
        }
        continue;
      }
      bk.day = day;
      bk.dayAt = dayAt;
      bk.dayStartEquity = dayStart;
      bk.lastEquity = last;
      bk.highWaterMark = peak;
      const tripped = (breakerStep(bk, d, at - 1, equity) & DAILY_LOSS_TRIP) !== 0;
      if (tripped || exits) {
        positionClose(at - 1, tripped);
        if (exitId !== 0) return at;
      }
      if (bk.haltSessions >= 0) return holdStretchStepped(at);
      day = bk.day;
      dayAt = bk.dayAt;
      dayStart = bk.dayStartEquity;
      last = bk.lastEquity;
      peak = bk.highWaterMark;
      lossDay = bk.lossDay;
      lossBound = breakerBound(dayStart, lossFactor);
      peakBound = breakerBound(peak, drawdownFactor);
    }
    if (rulesOn) {
      bk.day = day;
      bk.dayAt = dayAt;
      bk.dayStartEquity = dayStart;
      bk.lastEquity = last;
      bk.highWaterMark = peak;
    }
    if (hit !== PROTECTIVE_NONE) closeProtective(hit, at);
    return at;
  };
  /** `holdStretch` with `breakerStep` run at every close (a drawdown halt holds, or no pre-test). */
  const holdStretchStepped = (from: number): number => {
    const rulesOn = rules !== undefined;
    const long = side === 1;
    const mask = long ? longMask : shortMask;
    const sign = side;
    const held = qty;
    const base = cash;
    const stop = pos[P_STOP_PRICE] as number;
    const target = pos[P_TARGET_PRICE] as number;
    const armed = armedFrom;
    const flags = codes as Uint8Array;
    let at = from;
    while (at < end) {
      if (((flags[at] as number) & mask) !== 0) break;
      if (
        at >= armed &&
        protectiveHit(
          long,
          open[at] as number,
          high[at] as number,
          low[at] as number,
          stop,
          target,
          false,
        ) !== PROTECTIVE_NONE
      ) {
        break;
      }
      const k = at - start;
      inMarket[k] = 1;
      equityValue[k] = toDollars(base + sign * notionalCents(held, close[at] as number));
      at++;
      if (rulesOn && breakersClose(at - 1, k)) {
        positionClose(at - 1, true);
        if (exitId !== 0) break;
      }
    }
    return at;
  };
  // A vectorized rule needs no warm-up feed: its arrays hold every earlier bar already.
  for (let slot = vector === undefined ? 0 : start; slot <= end; slot++) {
    const trading = slot >= start;
    if (trading) {
      if (side !== 0) {
        if (exitId !== 0) {
          const id = exitId;
          exitId = 0;
          closePosition(id, 'exit', adverse(open[slot] as number, side === -1), slot);
        } else if (entryId === 0) {
          // Nothing fills in between: the gap check and the range check are one check.
          checkProtective(slot, false);
        } else {
          checkProtective(slot, true);
        }
      }
      if (entryId !== 0) {
        fillEntry(slot);
        if (side !== 0) checkProtective(slot, false);
        // Filled, not stopped out, and the rule silent at this close: the close is a held
        // stretch's (the position marked, the breakers' bookkeeping), so the stretch starts here.
        if (
          holdFast &&
          side !== 0 &&
          slot < end &&
          ((codes[slot] as number) & (side === 1 ? longMask : shortMask)) === 0
        ) {
          const next = holdStretch(slot);
          barsInMarket += next - slot;
          sessionsHeld += next - slot;
          slot = next - 1;
          continue;
        }
      }
    }
    const lastClose = close[slot] as number;
    if (codes !== undefined) {
      // (At `decidedAt`, a held stretch's last close, the intent is the rule's decision there already.)
      if (slot !== decidedAt) {
        const code = (codes[slot] as number) & (side === 0 ? flatMask : side === 1 ? longMask : shortMask);
        intent =
          code === 0
            ? HOLD
            : (vector as VectorRule).decide(slot, side === 0 ? 'flat' : side === 1 ? 'long' : 'short');
      }
    } else {
      bar.time = timeOf[slot] as number;
      bar.open = open[slot] as number;
      bar.high = high[slot] as number;
      bar.low = low[slot] as number;
      bar.close = lastClose;
      bar.volume = volume[slot] as number;
      intent = (instance as StrategyInstance).onBar(bar, side === 0 ? FLAT : side === 1 ? LONG : SHORT);
    }
    if (!trading) continue;
    const k = slot - start;
    if (side !== 0) {
      inMarket[k] = 1;
      barsInMarket++;
    }
    if (slot < end) {
      const equityCents = side === 0 ? cash : cash + side * notionalCents(qty, lastClose);
      equityValue[k] = toDollars(equityCents);
      if (side !== 0) sessionsHeld++;
      if (intent.action === 'hold') {
        if (rules !== undefined) riskClose(slot, k);
      } else if (rules === undefined || intent.action === 'enter') {
        decide(slot, equityCents);
      } else {
        riskClose(slot, k);
      }
      // Flat with nothing pending: every close up to the next one where the rule can enter holds
      // at this equity (docs/engine.md); they are filled in one step.
      if (skipFlat && side === 0 && entryId === 0 && exitId === 0) {
        let next = slot + 1;
        if (words !== undefined) {
          // To a word boundary, then four codes a step, then the word where one can enter.
          while (next < end && (next & 3) !== 0 && ((codes[next] as number) & flatMask) === 0) next++;
          if ((next & 3) === 0)
            while (next < end && ((words[next >> 2] as number) & flatWord) === 0) next += 4;
          if (next > end) next = end;
        }
        while (next < end && ((codes[next] as number) & flatMask) === 0) next++;
        if (next > slot + 1) {
          const flat = equityValue[k] as number;
          if (!record && flat > 0 && (rules === undefined || bk.haltSessions < 0)) {
            // Recorded, not written (`curveStats` takes the points as equal to this one): no
            // reader needs them (`flatStretch` reads the equity only while a drawdown halt holds).
            runs[runCount++] = k + 1;
            runs[runCount++] = next - start;
            runs[runCount] = runsEnd;
            runs[runCount + 1] = runsEnd;
          } else if (next - slot > 32) {
            // A short stretch in a loop, a long one with `fill` (a builtin call: about 25 ns, then faster per element).
            equityValue.fill(flat, k + 1, next - start);
          } else {
            for (let j = k + 1; j < next - start; j++) equityValue[j] = flat;
          }
          if (rules !== undefined) flatStretch(slot + 1, next - 1);
          slot = next - 1;
        }
      }
      // Held with nothing pending: the closes up to the next one where the stop, the target or
      // the rule can act run in a tight loop (docs/engine.md).
      if (holdFast && side !== 0 && entryId === 0 && exitId === 0) {
        const next = holdStretch(slot + 1);
        barsInMarket += next - slot - 1;
        sessionsHeld += next - slot - 1;
        slot = next - 1;
      }
    }
  }

  // End of data: pending orders lapse; the position closes at the last close unless held.
  const lastClose = close[end] as number;
  exitId = 0;
  entryId = 0;
  // (TypeScript does not see the closures' writes of `side`: it takes it for 0 here.)
  closeAtEnd(side !== 0 && !holdAtEnd, adverse(lastClose, (side as 0 | 1 | -1) === -1));
  equityValue[span - 1] = toDollars(side === 0 ? cash : cash + side * notionalCents(qty, lastClose));
  if (side !== 0 && trades !== undefined) {
    const marked = notionalCents(qty, lastClose);
    trades.push({
      symbol,
      direction: side === 1 ? 'long' : 'short',
      qty,
      entryTime: timeOf[entryBar] as number,
      entryPrice: pos[P_ENTRY_PRICE] as number,
      exitTime: null,
      exitPrice: null,
      pnl: toDollars(side * (marked - entryNotional) - entryCommission),
      commission: toDollars(entryCommission),
      exitReason: null,
    });
  }
  lane.barsInMarket = barsInMarket;
  if (!record) return undefined;
  return {
    trades: trades as TradeRecord[],
    fills: fills as FillRecord[],
    finalRiskState: rules === undefined ? undefined : materialize(),
  };
}
