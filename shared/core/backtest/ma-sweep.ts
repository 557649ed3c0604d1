import { InvalidParameterError } from '../errors.js';
import {
  adversePrice,
  PROTECTIVE_NONE,
  protectiveFillPrice,
  protectiveHit,
  slippageFraction,
} from '../execution/fill-rules.js';
import { atr as atrSeries, ema, sma } from '../indicators/index.js';
import { type Cents, commissionCents, notionalCents, toDollars } from '../ledger/money.js';
import type { BarSeries } from '../market/types.js';
import { computeMetrics, DEFAULT_PERIODS_PER_YEAR, type Metrics } from '../metrics/index.js';
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
  readonly time: Float64Array;
  readonly equity: Float64Array;
  readonly inMarket: Uint8Array;
  readonly tradePnls: number[] = [];

  constructor(span: number) {
    this.time = new Float64Array(span);
    this.equity = new Float64Array(span);
    this.inMarket = new Uint8Array(span);
  }
}

/**
 * Backtests one (fast, slow) pair on one symbol with the MA-crossover strategy, much faster than
 * the event-driven engine and with exactly its results: same fills, same ledger arithmetic in
 * cents, same metrics. It is the engine's logic specialised to this strategy (the crossover rule
 * itself is the strategy's `crossDirection`); tests compare the two on many pairs, and any
 * difference is a bug in the kernel.
 */
export function backtestMaPair(
  data: MaSweepData,
  pair: MaPair,
  options: BacktestOptions,
  scratch: MaSweepScratch,
): Metrics {
  if (
    !(Number.isInteger(pair.fast) && Number.isInteger(pair.slow) && pair.fast >= 1 && pair.fast < pair.slow)
  ) {
    throw new InvalidParameterError(
      `fast ${pair.fast} and slow ${pair.slow}: need integers with 1 <= fast < slow`,
    );
  }
  const { series, start, end } = data;
  const fastMa = data.average(pair.fast);
  const slowMa = data.average(pair.slow);
  const atr = data.atr;
  const k = data.base.atrStop;
  const longShort = options.direction === 'long-short';
  const { open, high, low, close, time } = series;
  const slip = slippageFraction(options.slippageBps);
  const { commission, sizing, fractional, cashBuffer, maxPositionFraction } = options;
  const tradePnls = scratch.tradePnls;
  tradePnls.length = 0;

  let cash: Cents = Math.round(options.initialCash * 100);
  // position: side 0 (flat), 1 (long), -1 (short)
  let side = 0;
  let qty = 0;
  let entryNotional: Cents = 0;
  let entryCommission: Cents = 0;
  let stop = Number.NaN;
  let armedFrom = 0;
  // pending orders decided at the previous close
  let exitPending = false;
  let entrySide = 0;
  let entryQty = 0;
  let entryStop = Number.NaN;

  const closeAt = (price: number) => {
    const notional = notionalCents(qty, price);
    const exitCommission = commissionCents(commission, qty, notional);
    cash += side === 1 ? notional - exitCommission : -notional - exitCommission;
    tradePnls.push(toDollars(side * (notional - entryNotional) - entryCommission - exitCommission));
    side = 0;
  };

  let fastPrev = Number.NaN;
  let slowPrev = Number.NaN;
  for (let i = 0; i <= end; i++) {
    const o = open[i] as number;
    if (i >= start) {
      if (side !== 0) {
        if (exitPending) {
          exitPending = false;
          closeAt(adversePrice(o, side === -1, slip));
        } else if (i >= armedFrom) {
          const hit = protectiveHit(side === 1, o, Number.NaN, Number.NaN, stop, Number.NaN, true);
          if (hit !== PROTECTIVE_NONE)
            closeAt(protectiveFillPrice(hit, side === 1, o, stop, Number.NaN, slip));
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
      if (side !== 0 && i >= armedFrom) {
        const long = side === 1;
        const hit = protectiveHit(long, o, high[i] as number, low[i] as number, stop, Number.NaN, false);
        if (hit !== PROTECTIVE_NONE) closeAt(protectiveFillPrice(hit, long, o, stop, Number.NaN, slip));
      }
    }

    const c = close[i] as number;
    const fast = fastMa[i] as number;
    const slow = slowMa[i] as number;
    const cross = crossDirection(fastPrev, slowPrev, fast, slow);
    fastPrev = fast;
    slowPrev = slow;
    if (i < start) continue;

    const kIndex = i - start;
    scratch.time[kIndex] = time[i] as number;
    scratch.inMarket[kIndex] = side === 0 ? 0 : 1;
    if (i === end) break;
    const positionValue = side === 0 ? 0 : notionalCents(qty, c);
    const equity = toDollars(cash + side * positionValue);
    scratch.equity[kIndex] = equity;
    if (cross === 0) continue;

    // The strategy's decision (see MaCrossover.onBar), then the engine's order placement.
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
    closeAt(adversePrice(last, side === -1, slip));
    last = Number.NaN;
  }
  const span = end - start + 1;
  scratch.equity[span - 1] = toDollars(cash + (side === 0 ? 0 : side * notionalCents(qty, last)));
  return computeMetrics({
    time: scratch.time,
    equity: scratch.equity,
    initialEquity: options.initialCash,
    inMarket: scratch.inMarket,
    tradePnls,
    buyHoldReturnPct: data.buyHoldReturnPct,
    riskFreeRate: options.riskFreeRate,
    periodsPerYear: options.periodsPerYear ?? DEFAULT_PERIODS_PER_YEAR,
  });
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
  const scratch = new MaSweepScratch(end - start + 1);
  return pairs.map((pair) => backtestMaPair(data, pair, options, scratch));
}
