/**
 * Performance metrics of one backtest: return, risk, drawdown and trade statistics computed
 * from the marked-to-market equity curve and the closed trades. Pure and allocation-light: the
 * input checks, one pass over the bars (`curveStats`, which sweep kernels call directly on curves
 * they built themselves), one pass over the trades, no arrays allocated. Every definition is
 * written out in `docs/metrics.md`; this file follows it exactly.
 */
import { InsufficientDataError, InvalidParameterError } from '../errors.js';

/** Daily periods a year when none is given: NYSE sessions (crypto uses 365, see docs/metrics.md). */
export const DEFAULT_PERIODS_PER_YEAR = 252;
/** Milliseconds in one calendar day. */
export const MS_PER_DAY = 86_400_000;
/** Days in an average (Julian) calendar year, the unit of CAGR's time span. */
export const DAYS_PER_YEAR = 365.25;
/**
 * A (daily) standard or downside deviation at or below this is treated as zero, so that the
 * round-off of a constant-growth curve does not produce an absurd Sharpe or Sortino ratio.
 */
export const NEGLIGIBLE_DEVIATION = 1e-12;

/** Inputs of {@link computeMetrics}. All arrays are indexed by bar. */
export interface MetricsInput {
  /** Bar timestamps (ms since epoch, daily bars at 00:00 UTC), one per equity point, increasing. */
  time: Float64Array;
  /** Account equity in dollars marked at each bar's close (cash + positions at the close). */
  equity: Float64Array;
  /** Equity before the first bar (the starting cash). */
  initialEquity: number;
  /** 1 when any position was open at that bar's close, else 0. Same length as equity. */
  inMarket: Uint8Array;
  /** Net P&L in dollars (after all costs) of each CLOSED trade, in exit order. */
  tradePnls: readonly number[];
  /** Buy-and-hold return over the same span, in percent, computed by the caller. */
  buyHoldReturnPct: number;
  /** Annual risk-free rate as a fraction (0.04 = 4%), default 0. */
  riskFreeRate?: number;
  /** Periods per year for annualization: 252 (the default) for equities, 365 for crypto. */
  periodsPerYear?: number;
}

/**
 * Performance metrics. Percentages are in percent (12.5 means 12.5%), money in dollars, ratios
 * and `kelly` are plain numbers. Every number is finite; `null` marks a statistic that is
 * undefined for the input (see `docs/metrics.md` for each null case).
 */
export interface Metrics {
  /** Number of closed trades. */
  trades: number;
  /** (final equity / initial equity − 1) × 100. */
  returnPct: number;
  /** Compound annual growth rate over calendar time, in percent. */
  cagrPct: number | null;
  /** Sample standard deviation of the daily returns × √periodsPerYear, in percent. */
  volatilityPct: number | null;
  /** Equity at the last bar's close. */
  equityFinal: number;
  /** Highest equity seen, the initial equity included. */
  equityPeak: number;
  /** Largest fall from a running peak, in percent, positive: 12.5 for a 12.5% fall. */
  maxDrawdownPct: number;
  /** Longest time under water, in calendar days. */
  maxDrawdownDays: number;
  /** Winning trades (pnl > 0) / trades × 100. */
  winRatePct: number | null;
  /** Gross profit / |gross loss|. */
  profitFactor: number | null;
  /** Mean pnl of the winning trades, dollars. */
  avgWin: number | null;
  /** Mean pnl of the losing trades, dollars (negative). */
  avgLoss: number | null;
  /** Mean pnl per closed trade, dollars. */
  expectancy: number | null;
  /** Annualized Sharpe ratio of daily excess returns. */
  sharpe: number | null;
  /** Annualized Sortino ratio of daily excess returns. */
  sortino: number | null;
  /** cagrPct / maxDrawdownPct. */
  calmar: number | null;
  /** Share of bars with a position open at the close, in percent. */
  exposurePct: number;
  /** The caller's buy-and-hold return, in percent, passed through. */
  buyHoldReturnPct: number;
  /** Kelly fraction W − (1 − W) / R. */
  kelly: number | null;
}

/** A {@link MetricsInput} that breaks its contract; `field` names the offending input. */
export class InvalidMetricsInputError extends InvalidParameterError {
  constructor(
    readonly field: string,
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(`metrics input ${field}: ${reason}`, options);
  }
}

/**
 * Computes the performance metrics of one backtest, following the definitions in
 * `docs/metrics.md`.
 *
 * @throws InsufficientDataError when `equity` is empty.
 * @throws InvalidMetricsInputError when array lengths differ, `time` is not strictly increasing,
 *   a value is not finite, `initialEquity` is not positive, `riskFreeRate` ≤ −1 or
 *   `periodsPerYear` ≤ 0.
 */
export function computeMetrics(input: MetricsInput): Metrics {
  const { time, equity, initialEquity, inMarket, tradePnls, buyHoldReturnPct } = input;
  const riskFreeRate = input.riskFreeRate ?? 0;
  const periodsPerYear = input.periodsPerYear ?? DEFAULT_PERIODS_PER_YEAR;
  const barCount = equity.length;

  if (barCount === 0) {
    throw new InsufficientDataError('metrics need at least one equity point; the equity curve is empty');
  }
  if (time.length !== barCount) {
    throw new InvalidMetricsInputError('time', `has ${time.length} points, equity has ${barCount}`);
  }
  if (inMarket.length !== barCount) {
    throw new InvalidMetricsInputError('inMarket', `has ${inMarket.length} points, equity has ${barCount}`);
  }
  checkMetricsSettings(initialEquity, riskFreeRate, periodsPerYear, buyHoldReturnPct);

  let previousTime = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < barCount; i++) {
    const t = time[i] as number;
    const e = equity[i] as number;
    // One branch for both checks (x − x is 0 only for a finite x); the error says which failed.
    if (!(t > previousTime && t - t === 0 && e - e === 0)) throw invalidPoint(t, e, i, previousTime);
    previousTime = t;
  }
  let barsInMarket = 0;
  for (let i = 0; i < barCount; i++) if (inMarket[i] !== 0) barsInMarket++;

  const stats = new CurveStats();
  curveStats(time, equity, barCount, initialEquity, riskFreePerPeriodOf(riskFreeRate, periodsPerYear), stats);
  return metricsOfCurve(stats, barsInMarket, tradePnls, initialEquity, buyHoldReturnPct, periodsPerYear);
}

/**
 * The checks {@link computeMetrics} makes on its settings (after the arrays' lengths, before the
 * points), with the same errors: a sweep makes them once per run and checks its shared bar times
 * once ({@link timesValid}), then runs {@link curveStats} alone.
 */
export function checkMetricsSettings(
  initialEquity: number,
  riskFreeRate: number,
  periodsPerYear: number,
  buyHoldReturnPct: number,
): void {
  if (!(Number.isFinite(initialEquity) && initialEquity > 0)) {
    throw new InvalidMetricsInputError(
      'initialEquity',
      `must be a positive finite number, got ${initialEquity}`,
    );
  }
  if (!(Number.isFinite(riskFreeRate) && riskFreeRate > -1)) {
    throw new InvalidMetricsInputError(
      'riskFreeRate',
      `must be a finite fraction above -1, got ${riskFreeRate}`,
    );
  }
  if (!(Number.isFinite(periodsPerYear) && periodsPerYear > 0)) {
    throw new InvalidMetricsInputError(
      'periodsPerYear',
      `must be positive and finite, got ${periodsPerYear}`,
    );
  }
  if (!Number.isFinite(buyHoldReturnPct)) {
    throw new InvalidMetricsInputError('buyHoldReturnPct', `must be finite, got ${buyHoldReturnPct}`);
  }
}

/**
 * Whether bar times pass {@link computeMetrics}' checks on them: finite and strictly increasing.
 * A sweep whose combinations share the times checks them once.
 */
export function timesValid(time: Float64Array, count: number): boolean {
  let previousTime = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < count; i++) {
    const t = time[i] as number;
    if (!(t > previousTime && t - t === 0)) return false;
    previousTime = t;
  }
  return true;
}

/** The per-period risk-free return of an annual rate: (1 + rate)^(1 / periodsPerYear) − 1. */
export function riskFreePerPeriodOf(riskFreeRate: number, periodsPerYear: number): number {
  return (1 + riskFreeRate) ** (1 / periodsPerYear) - 1;
}

/**
 * No recorded runs for {@link curveStats} (RECORDED RUNS there): the end pair alone. Shared by every
 * call (and copied into a lane's list to empty it): read only, never written.
 */
export const NO_FLAT_RUNS: Int32Array = Int32Array.of(0x7fffffff, 0x7fffffff);

/**
 * What {@link computeMetrics}' one pass over the bars gathers from an equity curve: the running
 * mean and sum of squared deviations of the excess returns (one pairwise-update step per point
 * that changes and one per flat run: FLAT RUNS at {@link curveStats}), the downside squares, the
 * drawdown and the time under water. Mutable, so a sweep reuses one per lane.
 */
export class CurveStats {
  returnCount = 0;
  excessMean = 0;
  excessSquaredDeviations = 0;
  downsideSquares = 0;
  returnsDefined = true;
  peak = 0;
  maxDrawdown = 0;
  maxUnderwaterMs = 0;
  equityFinal = 0;
  firstTime = 0;
  lastTime = 0;
  barCount = 0;
  /** Whether every equity point was finite (else the figures are meaningless: `computeMetrics` names the point). */
  finite = true;
}

/**
 * The pass of {@link computeMetrics} over `count` points of a curve whose times are finite and
 * increasing and whose equities are finite (the caller checked). The initial equity is the first
 * peak, marked one day before the first bar. The excess return of a bar is e / e₋₁ − 1 − rf.
 *
 * FLAT RUNS: a maximal run of k points each equal to the previous one, which is positive (a
 * strategy's warm-up, its waits out of the market: 61-83 % of the points of the bench's sweeps),
 * has k equal excess returns c = 1 − 1 − rf (e / e₋₁ is exactly 1). The run is merged into the
 * running figures in ONE step, the pairwise update of Chan, Golub and LeVeque for a block of k
 * values c (its own mean c, its own squared deviations 0), with n the returns before it:
 *
 *     w = k / (n + k);  δ = c − mean;  mean += δ × w;  M2 += δ × δ × (n × w);  downside += k × min(c, 0)²
 *
 * A point that changes is a block of one (k = 1, its own excess return x in place of c; its
 * downside square min(x, 0)²): one rule for every step. w and n × w do not wait on the running
 * mean, so the mean's chain is a subtraction, a multiplication and an addition per step instead
 * of Welford's subtraction, division and addition per point (the pass's floor before), and the
 * flat points cost only the run's scan. With n = 0 (a curve that starts flat) w is exactly 1, the
 * mean exactly c and M2 exactly 0, so a flat curve has a variance of exactly 0; M2's term is never
 * negative. The drawdown does not move on a flat run (the point equals the previous one); at a
 * peak the run's last point becomes the peak's time, under water nothing changes. A non-finite
 * point never starts a run (NaN is not equal to itself; after an infinite one `finite` is false,
 * and then no figure of the pass is used). Every caller (the reference engine and the portfolio
 * mode through `computeMetrics`, the fast engine, the MA kernel) runs this one function, alone or
 * through {@link curveStatsPair}, so they agree to the bit. Its accuracy against exact rational
 * arithmetic (`curve-stats.test.ts`): the mean within a few ulps of the standard deviation, M2
 * within about √N ulps, as Welford's, and about ten times closer on a curve of a million points
 * (fewer steps). Measured: docs/engine.md, "The metrics' pass on
 * flat runs (the thirteenth round)".
 *
 * RECORDED RUNS: `runs` lists stretches of points the caller did not write, each equal to the point
 * before it, which is positive: pairs (first point, end: the point after the last), in increasing
 * order, ended by a pair whose first point is at least `count` (`NO_FLAT_RUNS`: none). The fast
 * engine records its flat stretches so instead of filling them (`FastLane.flatRuns`). The pass
 * takes such a run's points as equal to the point before without reading them, so the figures are
 * those of the filled curve: the maximal run that holds it is found and merged as above.
 *
 * INITIAL EQUITY AS A NUMBER: the peak and the previous point start at the initial equity and take
 * the curve's points after. Started from the parameter itself (of no known type to the optimizing
 * compiler), those loop variables were kept as tagged values, and each new peak or point stored in
 * them allocated a heap number: about 3.2 KB of garbage per curve of the bench's sweeps (about a
 * fifth of a Bollinger combination's). `+initialEquity` (the same number, its bits unchanged) makes
 * them doubles in registers.
 */
export function curveStats(
  time: Float64Array,
  equity: Float64Array,
  count: number,
  initialEquity: number,
  riskFreePerPeriod: number,
  out: CurveStats,
  runs: Int32Array = NO_FLAT_RUNS,
): void {
  // A number from here on (see INITIAL EQUITY AS A NUMBER below).
  const initial = +initialEquity;
  const flatExcess = 1 - 1 - riskFreePerPeriod;
  const flatDownside = Math.min(flatExcess, 0);
  const flatDownsideSquare = flatDownside * flatDownside;
  let returnCount = 0;
  let excessMean = 0;
  let excessSquaredDeviations = 0;
  let downsideSquares = 0;
  let returnsDefined = true;
  let peak = initial;
  let peakTime = (time[0] as number) - MS_PER_DAY;
  let underwater = false;
  let maxDrawdown = 0;
  let maxUnderwaterMs = 0;
  let previousEquity = initial;
  // e − e is 0 for a finite e and NaN otherwise: the sum is 0 only when every point is finite.
  let nonFinite = 0;
  // The next recorded run (RECORDED RUNS above): its first point and the slot of its end.
  let run = 0;
  let runFrom = runs[0] as number;
  let i = 0;
  while (i < count) {
    // A recorded run's points are not read: each is the point before it.
    const e = i === runFrom ? previousEquity : (equity[i] as number);
    if (e === previousEquity && e > 0) {
      // A flat run (FLAT RUNS above), merged in one step; a recorded run inside it is skipped whole.
      let end = i === runFrom ? i : i + 1;
      for (;;) {
        if (end === runFrom) {
          end = runs[run + 1] as number;
          run += 2;
          runFrom = runs[run] as number;
        }
        const stop = runFrom < count ? runFrom : count;
        const limit = stop - 3;
        while (
          end < limit &&
          equity[end] === e &&
          equity[end + 1] === e &&
          equity[end + 2] === e &&
          equity[end + 3] === e
        )
          end += 4;
        while (end < stop && equity[end] === e) end++;
        if (end !== runFrom) break;
      }
      const k = end - i;
      const n = returnCount;
      returnCount = n + k;
      const w = k / returnCount;
      const delta = flatExcess - excessMean;
      excessMean += delta * w;
      excessSquaredDeviations += delta * delta * (n * w);
      downsideSquares += k * flatDownsideSquare;
      if (!underwater) peakTime = time[end - 1] as number;
      i = end;
      continue;
    }
    const t = time[i] as number;
    nonFinite += e - e;
    if (previousEquity > 0) {
      const excess = e / previousEquity - 1 - riskFreePerPeriod;
      const n = returnCount;
      returnCount = n + 1;
      const w = 1 / returnCount;
      const delta = excess - excessMean;
      excessMean += delta * w;
      excessSquaredDeviations += delta * delta * (n * w);
      // min(excess, 0)² adds +0 when the excess is not negative: the same sum, without a branch.
      const downside = Math.min(excess, 0);
      downsideSquares += downside * downside;
    } else {
      returnsDefined = false;
    }
    if (e >= peak) {
      // Computed at every peak, not only after an underwater stretch: a subtraction first run
      // after the function was optimized (a curve's first recovery) deoptimized it, and V8 then
      // entered it through the interpreter for the rest of the process (same result either way).
      const stretch = t - peakTime;
      if (underwater && stretch > maxUnderwaterMs) maxUnderwaterMs = stretch;
      underwater = false;
      peak = e;
      peakTime = t;
    } else {
      underwater = true;
      const drawdown = (peak - e) / peak;
      if (drawdown > maxDrawdown) maxDrawdown = drawdown;
    }
    previousEquity = e;
    i++;
  }
  const lastTime = time[count - 1] as number;
  // The open spell's length is computed whether or not the curve ends under water, so that this
  // subtraction and comparison get type feedback on every call (see primeCurvePasses).
  const openSpell = lastTime - peakTime;
  if (openSpell > maxUnderwaterMs && underwater) maxUnderwaterMs = openSpell;
  out.returnCount = returnCount;
  out.excessMean = excessMean;
  out.excessSquaredDeviations = excessSquaredDeviations;
  out.downsideSquares = downsideSquares;
  out.returnsDefined = returnsDefined;
  out.peak = peak;
  out.maxDrawdown = maxDrawdown;
  out.maxUnderwaterMs = maxUnderwaterMs;
  out.equityFinal = previousEquity;
  out.firstTime = time[0] as number;
  out.lastTime = lastTime;
  out.barCount = count;
  out.finite = nonFinite === 0;
}

/**
 * {@link curveStats} of two curves of the same times (`outA` of `equityA`, `outB` of `equityB`):
 * the single pass run on each. Before flat runs were merged (FLAT RUNS, at `curveStats`), this was
 * one loop over both curves, so that their running means' chains of divisions overlapped; with the
 * runs merged, that loop (each curve's runs kept apart, so the figures stay the single pass's)
 * was slower than two single passes on the bench's curves (docs/engine.md, "The metrics' pass on
 * flat runs (the thirteenth round)"), which scan a run in a tight loop of their own. Kept as the
 * sweeps' entry point for two lanes.
 */
export function curveStatsPair(
  time: Float64Array,
  equityA: Float64Array,
  equityB: Float64Array,
  count: number,
  initialEquity: number,
  riskFreePerPeriod: number,
  outA: CurveStats,
  outB: CurveStats,
  runsA: Int32Array = NO_FLAT_RUNS,
  runsB: Int32Array = NO_FLAT_RUNS,
): void {
  curveStats(time, equityA, count, initialEquity, riskFreePerPeriod, outA, runsA);
  curveStats(time, equityB, count, initialEquity, riskFreePerPeriod, outB, runsB);
}

/**
 * Gives every operation of both curve passes type feedback, with the kinds of values a sweep
 * brings (epoch-millisecond times, fractional equities from an integer initial equity, the rate
 * of `riskFreePerPeriodOf`), before a sweep's first long curve. V8 allocates a function's feedback
 * vector only after it has used some budget (about eight runs' worth of its bytecode): a single
 * call on a short curve recorded nothing. Without it, whether the code after the loop (the spell
 * left open at the end) had feedback when V8 first optimized a pass depended on timing; when it had
 * none, the optimized code left for the interpreter there, the next long call compiled the loop on
 * the stack (OSR), and every later call of the process ran through that OSR code: the MA kernel's
 * bimodal slow mode (docs/engine.md, the MA sweep kernel). So the primer runs each pass six times
 * (about 1 ms of CPU at load) on 64-point curves that rise, fall, recover and end both at a peak
 * and under water. Pure: nothing is kept.
 */
function primeCurvePasses(): void {
  const count = 64;
  const time = new Float64Array(count);
  const rising = new Float64Array(count);
  const falling = new Float64Array(count);
  for (let i = 0; i < count; i++) {
    time[i] = 1_700_000_000_000 + i * MS_PER_DAY;
    // Waves around 100,000 in fractional dollars: new peaks, drawdowns and recoveries. Points 3 to
    // 7 of every eight repeat point 2 (flat runs of five, at a peak and under water); `rising`
    // starts with six points at the initial equity and ends at a new peak, `falling` ends under
    // water in a flat run of 12 (FLAT RUNS: every branch of the run's scan and merge).
    const at = i % 8 > 2 ? i - (i % 8) + 2 : i;
    const wave = 100_000 + 2_500.25 * Math.sin(at / 3) + at * 37.5;
    rising[i] = i < 6 ? 100_000 : i === count - 1 ? wave + 10_000.5 : wave;
    falling[i] = i === count - 12 ? wave - 10_000.5 : i > count - 12 ? (falling[i - 1] as number) : wave;
  }
  const rf = riskFreePerPeriodOf(0, DEFAULT_PERIODS_PER_YEAR);
  const statsA = new CurveStats();
  const statsB = new CurveStats();
  for (let round = 0; round < 6; round++) {
    const [a, b] = round % 2 === 0 ? [rising, falling] : [falling, rising];
    curveStatsPair(time, a, b, count, 100_000, rf, statsA, statsB);
    curveStats(time, a, count, 100_000, rf, statsA);
  }
}
primeCurvePasses();

/**
 * The metrics of a curve's {@link CurveStats} and its closed trades, as {@link computeMetrics}
 * returns them (`barsInMarket`: the points with a position open at the close).
 */
export function metricsOfCurve(
  stats: CurveStats,
  barsInMarket: number,
  tradePnls: readonly number[],
  initialEquity: number,
  buyHoldReturnPct: number,
  periodsPerYear: number,
): Metrics {
  const { returnCount, excessMean, excessSquaredDeviations, downsideSquares, returnsDefined } = stats;
  const { peak, maxDrawdown, maxUnderwaterMs, equityFinal, firstTime, lastTime, barCount } = stats;
  const returnPct = (equityFinal / initialEquity - 1) * 100;
  const maxDrawdownPct = maxDrawdown * 100;
  if (!(Number.isFinite(returnPct) && Number.isFinite(maxDrawdownPct))) {
    throw new InvalidMetricsInputError(
      'equity',
      'equity relative to initialEquity overflows double precision',
    );
  }

  const spanDays = (lastTime - firstTime + MS_PER_DAY) / MS_PER_DAY;
  const cagrPct =
    spanDays >= 1 && equityFinal > 0
      ? finiteOrNull(((equityFinal / initialEquity) ** (DAYS_PER_YEAR / spanDays) - 1) * 100)
      : null;

  const annualizer = Math.sqrt(periodsPerYear);
  const stdev =
    returnsDefined && returnCount >= 2 ? Math.sqrt(excessSquaredDeviations / (returnCount - 1)) : null;
  const volatilityPct = stdev === null ? null : finiteOrNull(stdev * annualizer * 100);
  const sharpe =
    stdev !== null && stdev > NEGLIGIBLE_DEVIATION ? finiteOrNull((excessMean / stdev) * annualizer) : null;
  const downsideDeviation = returnsDefined ? Math.sqrt(downsideSquares / returnCount) : 0;
  const sortino =
    downsideDeviation > NEGLIGIBLE_DEVIATION
      ? finiteOrNull((excessMean / downsideDeviation) * annualizer)
      : null;
  const calmar = cagrPct !== null && maxDrawdownPct > 0 ? finiteOrNull(cagrPct / maxDrawdownPct) : null;

  const tradeCount = tradePnls.length;
  let wins = 0;
  let losses = 0;
  let grossProfit = 0;
  let grossLoss = 0;
  for (let i = 0; i < tradeCount; i++) {
    const pnl = tradePnls[i] as number;
    if (!Number.isFinite(pnl)) {
      throw new InvalidMetricsInputError(`tradePnls[${i}]`, `must be finite, got ${pnl}`);
    }
    if (pnl > 0) {
      wins++;
      grossProfit += pnl;
    } else if (pnl < 0) {
      losses++;
      grossLoss += pnl;
    }
  }

  const winRate = tradeCount > 0 ? wins / tradeCount : null;
  const avgWin = wins > 0 ? finiteOrNull(grossProfit / wins) : null;
  const avgLoss = losses > 0 ? finiteOrNull(grossLoss / losses) : null;
  const kelly =
    winRate !== null && avgWin !== null && avgLoss !== null
      ? finiteOrNull(winRate - (1 - winRate) / (avgWin / -avgLoss))
      : null;

  return {
    trades: tradeCount,
    returnPct,
    cagrPct,
    volatilityPct,
    equityFinal,
    equityPeak: peak,
    maxDrawdownPct,
    maxDrawdownDays: maxUnderwaterMs / MS_PER_DAY,
    winRatePct: winRate === null ? null : winRate * 100,
    profitFactor: grossLoss < 0 ? finiteOrNull(grossProfit / -grossLoss) : null,
    avgWin,
    avgLoss,
    expectancy: tradeCount > 0 ? finiteOrNull((grossProfit + grossLoss) / tradeCount) : null,
    sharpe,
    sortino,
    calmar,
    exposurePct: (barsInMarket / barCount) * 100,
    buyHoldReturnPct,
    kelly,
  };
}

/** The error for point `i`: its time (not finite, or not after the previous one) first, else its equity. */
function invalidPoint(t: number, e: number, i: number, previousTime: number): InvalidMetricsInputError {
  if (!(Number.isFinite(t) && t > previousTime)) {
    return new InvalidMetricsInputError(`time[${i}]`, `must be finite and after time[${i - 1}], got ${t}`);
  }
  return new InvalidMetricsInputError(`equity[${i}]`, `must be finite, got ${e}`);
}

function finiteOrNull(value: number): number | null {
  return Number.isFinite(value) ? value : null;
}
