import { InvalidParameterError } from '../errors.js';
import {
  adversePrice,
  PROTECTIVE_NONE,
  protectiveFillPrice,
  protectiveHit,
  slippageFraction,
} from '../execution/fill-rules.js';
import { atr as atrSeries, ema, sma } from '../indicators/index.js';
import {
  type Cents,
  type CommissionModel,
  commissionCents,
  notionalCents,
  toDollars,
} from '../ledger/money.js';
import type { BarSeries } from '../market/types.js';
import {
  CurveStats,
  computeMetrics,
  curveStats,
  curveStatsPair,
  DEFAULT_PERIODS_PER_YEAR,
  type Metrics,
  metricsOfCurve,
  riskFreePerPeriodOf,
} from '../metrics/index.js';
import { allInQty, decisionQty, floorQty, positionCapQty } from '../sizing/index.js';
import { crossDirection, type MaCrossoverParams } from '../strategies/ma-crossover.js';
import type { BacktestOptions } from './types.js';

/** One point of a parameter sweep: the fast and slow periods. */
export interface MaPair {
  readonly fast: number;
  readonly slow: number;
}

/** What the sweep shares across its pairs: the rest of the MA-crossover parameters. */
export type MaSweepBase = Omit<MaCrossoverParams, 'fast' | 'slow'>;

/**
 * Moving averages, ATR and buy-and-hold for one symbol, computed once and shared by every pair of
 * a sweep. Averages are cached per period.
 */
export class MaSweepData {
  private readonly averages = new Map<number, Float64Array>();
  readonly atr: Float64Array | undefined;
  readonly buyHoldReturnPct: number;
  /** The bar times of the span (a view, not a copy). */
  readonly time: Float64Array;
  /** Whether the span's times are finite and strictly increasing, as `computeMetrics` requires. */
  readonly timeValid: boolean;

  constructor(
    readonly series: BarSeries,
    readonly base: MaSweepBase,
    readonly start: number,
    readonly end: number,
  ) {
    this.atr =
      base.atrStop === undefined
        ? undefined
        : atrSeries(series.high, series.low, series.close, base.atrPeriod);
    this.buyHoldReturnPct = ((series.close[end] as number) / (series.close[start] as number) - 1) * 100;
    this.time = series.time.subarray(start, end + 1);
    let valid = true;
    let previous = Number.NEGATIVE_INFINITY;
    for (const t of this.time) {
      if (!(Number.isFinite(t) && t > previous)) valid = false;
      previous = t;
    }
    this.timeValid = valid;
  }

  average(period: number): Float64Array {
    let values = this.averages.get(period);
    if (values === undefined) {
      values = this.base.ma === 'sma' ? sma(this.series.close, period) : ema(this.series.close, period);
      this.averages.set(period, values);
    }
    return values;
  }
}

/** One pair's run: its curve (marked at each bar's close), closed trades and exposure. */
export class MaSweepLane {
  readonly equity: Float64Array;
  /** The closed trades' net P&L. */
  readonly tradePnls: number[] = [];
  readonly stats = new CurveStats();
  /** Bars with a position open at the close. */
  barsInMarket = 0;

  constructor(span: number) {
    this.equity = new Float64Array(span);
  }
}

/** Reusable buffers, so a sweep allocates nothing per pair but the metrics object. */
export class MaSweepScratch {
  /** Two lanes: pairs run two at a time (see {@link backtestMaPairs}). */
  readonly lanes: readonly [MaSweepLane, MaSweepLane];

  constructor(span: number) {
    this.lanes = [new MaSweepLane(span), new MaSweepLane(span)];
  }
}

/** `cash` after closing `qty` shares of a `side` position at `price`; the trade's P&L goes to `tradePnls`. */
function closePosition(
  cash: Cents,
  side: number,
  qty: number,
  price: number,
  entryNotional: Cents,
  entryCommission: Cents,
  commission: CommissionModel,
  tradePnls: number[],
): Cents {
  const notional = notionalCents(qty, price);
  const exitCommission = commissionCents(commission, qty, notional);
  tradePnls.push(toDollars(side * (notional - entryNotional) - entryCommission - exitCommission));
  return cash + (side === 1 ? notional - exitCommission : -notional - exitCommission);
}

/**
 * Runs one (fast, slow) pair on one symbol: fills the lane's curve (marked at each bar's close),
 * closed trades and bars in the market, and returns false when a mark is not
 * finite (the caller then lets `computeMetrics` name it). A flat position with no order pending
 * does no per-bar work: the kernel scans the two averages for the next crossover that opens a
 * position and fills the curve up to it with the cash; only bars in the market (and the bar after a
 * decision) run the fill rules and mark the position.
 */
function simulatePair(
  data: MaSweepData,
  fastMa: Float64Array,
  slowMa: Float64Array,
  options: BacktestOptions,
  lane: MaSweepLane,
): boolean {
  const { series, start, end, atr } = data;
  const k = data.base.atrStop;
  const longShort = options.direction === 'long-short';
  const { open, high, low, close } = series;
  const slip = slippageFraction(options.slippageBps);
  const { commission, sizing, fractional, cashBuffer, maxPositionFraction } = options;
  const tradePnls = lane.tradePnls;
  tradePnls.length = 0;
  const curve = lane.equity;

  let cash: Cents = Math.round(options.initialCash * 100);
  // position: side 0 (flat), 1 (long), -1 (short)
  let side = 0;
  let qty = 0;
  let entryNotional: Cents = 0;
  let entryCommission: Cents = 0;
  let stop = Number.NaN;
  let armedFrom = 0;
  // orders decided at the previous close
  let exitPending = false;
  let entrySide = 0;
  let entryQty = 0;
  let entryStop = Number.NaN;
  let barsInMarket = 0;
  // 0 while every mark is finite (x * 0 is NaN for an infinite or NaN x)
  let notFinite = 0;

  for (let i = start; i <= end; i++) {
    let cross = 0;
    let positionValue: Cents = 0;
    let equity = 0;
    if (side === 0 && entrySide === 0) {
      // Flat, nothing pending: the next bar that can decide is the next crossover that opens a
      // position; the bars before it are marked at the cash.
      equity = toDollars(cash);
      notFinite += equity * 0;
      let fastPrev = i > 0 ? (fastMa[i - 1] as number) : Number.NaN;
      let slowPrev = i > 0 ? (slowMa[i - 1] as number) : Number.NaN;
      for (; i < end; i++) {
        const f = fastMa[i] as number;
        const sl = slowMa[i] as number;
        if (fastPrev < slowPrev ? f > sl : longShort && fastPrev > slowPrev && f < sl) break;
        fastPrev = f;
        slowPrev = sl;
        curve[i - start] = equity;
      }
      if (i === end) break;
      curve[i - start] = equity;
      cross = crossDirection(fastPrev, slowPrev, fastMa[i] as number, slowMa[i] as number);
    } else {
      if (side !== 0 && !exitPending && entrySide === 0 && i >= armedFrom) {
        // Holding, nothing pending: the bars before the next one where the stop is reached or the
        // crossover turns against the position only mark it (the bar itself runs the full path).
        const long = side === 1;
        let fastPrev = fastMa[i - 1] as number;
        let slowPrev = slowMa[i - 1] as number;
        for (; i < end; i++) {
          const o = open[i] as number;
          if (long ? o <= stop || (low[i] as number) <= stop : o >= stop || (high[i] as number) >= stop)
            break;
          const f = fastMa[i] as number;
          const sl = slowMa[i] as number;
          if (long ? fastPrev > slowPrev && f < sl : fastPrev < slowPrev && f > sl) break;
          fastPrev = f;
          slowPrev = sl;
          const marked = toDollars(cash + side * notionalCents(qty, close[i] as number));
          notFinite += marked * 0;
          curve[i - start] = marked;
          barsInMarket++;
        }
      }
      const o = open[i] as number;
      if (side !== 0) {
        let exitPrice = Number.NaN;
        if (exitPending) {
          exitPending = false;
          exitPrice = adversePrice(o, side === -1, slip);
        } else if (i >= armedFrom) {
          const hit = protectiveHit(side === 1, o, Number.NaN, Number.NaN, stop, Number.NaN, true);
          if (hit !== PROTECTIVE_NONE)
            exitPrice = protectiveFillPrice(hit, side === 1, o, stop, Number.NaN, slip);
        }
        if (!Number.isNaN(exitPrice)) {
          cash = closePosition(
            cash,
            side,
            qty,
            exitPrice,
            entryNotional,
            entryCommission,
            commission,
            tradePnls,
          );
          side = 0;
        }
      }
      if (entrySide !== 0) {
        const buy = entrySide === 1;
        const price = adversePrice(o, buy, slip);
        const power = cash;
        let q = entryQty;
        let rejected = false;
        if (Number.isNaN(q)) {
          q = allInQty(power, price, commission, fractional);
          if (maxPositionFraction !== undefined) {
            q = Math.min(q, positionCapQty(maxPositionFraction, toDollars(cash), price, fractional));
          }
          rejected = !(q > 0);
        }
        if (!rejected) {
          const notional = notionalCents(q, price);
          const fee = commissionCents(commission, q, notional);
          if (notional + fee <= power) {
            cash += buy ? -notional - fee : notional - fee;
            side = entrySide;
            qty = q;
            entryNotional = notional;
            entryCommission = fee;
            stop = entryStop;
            armedFrom = i;
          }
        }
        entrySide = 0;
      }
      if (side !== 0) {
        if (i >= armedFrom) {
          const long = side === 1;
          const hit = protectiveHit(long, o, high[i] as number, low[i] as number, stop, Number.NaN, false);
          if (hit !== PROTECTIVE_NONE) {
            const price = protectiveFillPrice(hit, long, o, stop, Number.NaN, slip);
            cash = closePosition(
              cash,
              side,
              qty,
              price,
              entryNotional,
              entryCommission,
              commission,
              tradePnls,
            );
            side = 0;
          }
        }
        if (side !== 0) barsInMarket++;
      }
      if (i === end) break;
      const c = close[i] as number;
      positionValue = side === 0 ? 0 : notionalCents(qty, c);
      equity = toDollars(cash + side * positionValue);
      notFinite += equity * 0;
      curve[i - start] = equity;
      if (i > 0) {
        cross = crossDirection(
          fastMa[i - 1] as number,
          slowMa[i - 1] as number,
          fastMa[i] as number,
          slowMa[i] as number,
        );
      }
    }
    if (cross === 0) continue;

    // The strategy's decision (see MaCrossover.onBar), then the engine's order placement.
    const c = close[i] as number;
    let wantExit = false;
    let want = 0;
    if (cross === 1) {
      if (side === -1 && !longShort) wantExit = true;
      else if (side !== 1) want = 1;
    } else if (side !== -1) {
      if (longShort) want = -1;
      else if (side === 1) wantExit = true;
    }
    let stopLoss: number | undefined;
    if (want !== 0 && k !== undefined) {
      const a = (atr as Float64Array)[i] as number;
      if (!(a > 0)) want = 0;
      else {
        stopLoss = want === 1 ? c - k * a : c + k * a;
        if (!(stopLoss > 0)) want = 0;
      }
    }
    let power = toDollars(cash - (side === -1 ? 2 * positionValue : 0));
    if (side !== 0 && (wantExit || (want !== 0 && want !== side))) {
      exitPending = true;
      power += qty * c;
    }
    if (want === 0 || (side !== 0 && !exitPending)) continue;
    let q = decisionQty(sizing, { equity, price: c, stopLoss, fractional });
    if (!Number.isNaN(q)) {
      if (maxPositionFraction !== undefined)
        q = Math.min(q, positionCapQty(maxPositionFraction, equity, c, fractional));
      q = Math.min(q, floorQty((power * (1 - cashBuffer)) / c, fractional));
      if (!(q > 0)) continue;
    }
    entrySide = want;
    entryQty = q;
    entryStop = stopLoss ?? Number.NaN;
  }

  let last = close[end] as number;
  if (side !== 0 && options.endOfData === 'close') {
    cash = closePosition(
      cash,
      side,
      qty,
      adversePrice(last, side === -1, slip),
      entryNotional,
      entryCommission,
      commission,
      tradePnls,
    );
    side = 0;
    last = Number.NaN;
  }
  const final = toDollars(cash + (side === 0 ? 0 : side * notionalCents(qty, last)));
  notFinite += final * 0;
  curve[end - start] = final;
  lane.barsInMarket = barsInMarket;
  return notFinite === 0;
}

function checkPair(pair: MaPair): void {
  if (
    !(Number.isInteger(pair.fast) && Number.isInteger(pair.slow) && pair.fast >= 1 && pair.fast < pair.slow)
  ) {
    throw new InvalidParameterError(
      `fast ${pair.fast} and slow ${pair.slow}: need integers with 1 <= fast < slow`,
    );
  }
}

/**
 * The metrics of the pair just simulated into `lane` whose curve pass is already in `lane.stats`;
 * when the curve, the times or a setting break `computeMetrics`' contract (`checked` false), the
 * reference `computeMetrics` runs instead and names the offending input.
 */
function laneMetrics(
  data: MaSweepData,
  options: BacktestOptions,
  lane: MaSweepLane,
  checked: boolean,
): Metrics {
  const periodsPerYear = options.periodsPerYear ?? DEFAULT_PERIODS_PER_YEAR;
  if (!checked) {
    return computeMetrics({
      time: data.time,
      equity: lane.equity,
      initialEquity: options.initialCash,
      inMarket: new Uint8Array(lane.equity.length),
      tradePnls: lane.tradePnls,
      buyHoldReturnPct: data.buyHoldReturnPct,
      riskFreeRate: options.riskFreeRate,
      periodsPerYear,
    });
  }
  return metricsOfCurve(
    lane.stats,
    lane.barsInMarket,
    lane.tradePnls,
    options.initialCash,
    data.buyHoldReturnPct,
    periodsPerYear,
  );
}

/** Whether the settings pass `computeMetrics`' checks (so the kernel may skip them per pair). */
function settingsValid(data: MaSweepData, options: BacktestOptions): boolean {
  const riskFreeRate = options.riskFreeRate ?? 0;
  const periodsPerYear = options.periodsPerYear ?? DEFAULT_PERIODS_PER_YEAR;
  return (
    data.timeValid &&
    Number.isFinite(options.initialCash) &&
    options.initialCash > 0 &&
    Number.isFinite(riskFreeRate) &&
    riskFreeRate > -1 &&
    Number.isFinite(periodsPerYear) &&
    periodsPerYear > 0 &&
    Number.isFinite(data.buyHoldReturnPct)
  );
}

/**
 * Backtests (fast, slow) pairs on one symbol with the MA-crossover strategy, much faster than the
 * event-driven engine and with exactly its results: same fills, same ledger arithmetic in cents,
 * same metrics (`computeMetrics`' pass over the curve). It is the engine's logic specialised to
 * this strategy (the crossover rule itself is the strategy's `crossDirection`); tests compare the
 * two on many pairs, and any difference is a bug in the kernel. Results in pair order. Two pairs at
 * a time end in one call of the pass over their curves (`curveStatsPair`: each curve's pass, its
 * flat runs merged in one step; see docs/engine.md).
 */
export function backtestMaPairs(
  data: MaSweepData,
  pairs: readonly MaPair[],
  options: BacktestOptions,
  scratch: MaSweepScratch,
): Metrics[] {
  for (const pair of pairs) checkPair(pair);
  const valid = settingsValid(data, options);
  const rf = valid
    ? riskFreePerPeriodOf(options.riskFreeRate ?? 0, options.periodsPerYear ?? DEFAULT_PERIODS_PER_YEAR)
    : 0;
  const span = data.end - data.start + 1;
  const [a, b] = scratch.lanes;
  // Whether the pair's run may skip computeMetrics' checks (the settings and its curve pass them).
  const run = (pair: MaPair, lane: MaSweepLane) =>
    simulatePair(data, data.average(pair.fast), data.average(pair.slow), options, lane) && valid;
  const out: Metrics[] = [];
  let p = 0;
  for (; p + 1 < pairs.length; p += 2) {
    const checkedA = run(pairs[p] as MaPair, a);
    const checkedB = run(pairs[p + 1] as MaPair, b);
    if (checkedA && checkedB) {
      curveStatsPair(data.time, a.equity, b.equity, span, options.initialCash, rf, a.stats, b.stats);
    } else {
      if (checkedA) curveStats(data.time, a.equity, span, options.initialCash, rf, a.stats);
      if (checkedB) curveStats(data.time, b.equity, span, options.initialCash, rf, b.stats);
    }
    out.push(laneMetrics(data, options, a, checkedA), laneMetrics(data, options, b, checkedB));
  }
  if (p < pairs.length) {
    const checked = run(pairs[p] as MaPair, a);
    if (checked) curveStats(data.time, a.equity, span, options.initialCash, rf, a.stats);
    out.push(laneMetrics(data, options, a, checked));
  }
  return out;
}

/** Backtests every pair on one symbol; results in pair order. */
export function sweepMaPairs(
  series: BarSeries,
  base: MaSweepBase,
  pairs: readonly MaPair[],
  options: BacktestOptions,
): Metrics[] {
  const start = options.startIndex ?? 0;
  const end = options.endIndex ?? series.time.length - 1;
  const data = new MaSweepData(series, base, start, end);
  return backtestMaPairs(data, pairs, options, new MaSweepScratch(end - start + 1));
}
