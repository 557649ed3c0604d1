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
  DEFAULT_PERIODS_PER_YEAR,
  type Metrics,
  metricsOfCurve,
  riskFreePerPeriodOf,
} from '../metrics/index.js';
import { allInQty, floorQty, positionCapQty, sizeAtDecision } from '../sizing/index.js';
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

/** Reusable buffers, so a sweep allocates nothing per pair but the metrics object. */
export class MaSweepScratch {
  /** The equity curve of the pair being run (marked at each bar's close). */
  readonly equity: Float64Array;
  /** The closed trades' net P&L of the pair being run. */
  readonly tradePnls: number[] = [];
  readonly stats = new CurveStats();
  /** Bars with a position open at the close, of the pair being run. */
  barsInMarket = 0;

  constructor(span: number) {
    this.equity = new Float64Array(span);
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
 * Runs one (fast, slow) pair on one symbol: fills `scratch.equity` (the curve marked at each bar's
 * close), `scratch.tradePnls` and `scratch.barsInMarket`, and returns false when a mark is not
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
  scratch: MaSweepScratch,
): boolean {
  const { series, start, end, atr } = data;
  const k = data.base.atrStop;
  const longShort = options.direction === 'long-short';
  const { open, high, low, close } = series;
  const slip = slippageFraction(options.slippageBps);
  const { commission, sizing, fractional, cashBuffer, maxPositionFraction } = options;
  const tradePnls = scratch.tradePnls;
  tradePnls.length = 0;
  const curve = scratch.equity;

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
      // Flat, nothing pending: the next bar that can decide is the next crossover that opens a position.
      let fastPrev = i > 0 ? (fastMa[i - 1] as number) : Number.NaN;
      let slowPrev = i > 0 ? (slowMa[i - 1] as number) : Number.NaN;
      let j = i;
      for (; j < end; j++) {
        const f = fastMa[j] as number;
        const sl = slowMa[j] as number;
        if (fastPrev < slowPrev ? f > sl : longShort && fastPrev > slowPrev && f < sl) break;
        fastPrev = f;
        slowPrev = sl;
      }
      equity = toDollars(cash);
      notFinite += equity * 0;
      for (let b = i - start, last = j - start; b < last; b++) curve[b] = equity;
      if (j === end) break;
      i = j;
      curve[i - start] = equity;
      cross = crossDirection(fastPrev, slowPrev, fastMa[i] as number, slowMa[i] as number);
    } else {
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
    let q = sizeAtDecision(sizing, { equity, price: c, stopLoss, fractional }).qty;
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
  scratch.barsInMarket = barsInMarket;
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
 * The metrics of the pair just simulated into `scratch` whose curve pass is already in
 * `scratch.stats`; when the curve, the times or a setting break `computeMetrics`' contract, the
 * reference `computeMetrics` runs instead and names the offending input.
 */
function pairMetrics(
  data: MaSweepData,
  options: BacktestOptions,
  scratch: MaSweepScratch,
  checked: boolean,
): Metrics {
  const periodsPerYear = options.periodsPerYear ?? DEFAULT_PERIODS_PER_YEAR;
  if (!checked) {
    return computeMetrics({
      time: data.time,
      equity: scratch.equity,
      initialEquity: options.initialCash,
      inMarket: new Uint8Array(scratch.equity.length),
      tradePnls: scratch.tradePnls,
      buyHoldReturnPct: data.buyHoldReturnPct,
      riskFreeRate: options.riskFreeRate,
      periodsPerYear,
    });
  }
  return metricsOfCurve(
    scratch.stats,
    scratch.barsInMarket,
    scratch.tradePnls,
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
 * Backtests one (fast, slow) pair on one symbol with the MA-crossover strategy, much faster than
 * the event-driven engine and with exactly its results: same fills, same ledger arithmetic in
 * cents, same metrics (the pass of `computeMetrics` over the curve, `curveStats`). It is the
 * engine's logic specialised to this strategy (the crossover rule itself is the strategy's
 * `crossDirection`); tests compare the two on many pairs, and any difference is a bug in the kernel.
 */
export function backtestMaPair(
  data: MaSweepData,
  pair: MaPair,
  options: BacktestOptions,
  scratch: MaSweepScratch,
): Metrics {
  return backtestMaPairs(data, [pair], options, scratch)[0] as Metrics;
}

/**
 * Backtests pairs on one symbol; results in pair order. Two pairs at a time share the pass over
 * their curves (`curveStatsPair`), so the divisions of one curve's running mean overlap the
 * other's.
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
  const out: Metrics[] = [];
  for (const pair of pairs) {
    const finite = simulatePair(data, data.average(pair.fast), data.average(pair.slow), options, scratch);
    const checked = valid && finite;
    if (checked) curveStats(data.time, scratch.equity, span, options.initialCash, rf, scratch.stats);
    out.push(pairMetrics(data, options, scratch, checked));
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
