/**
 * Builds a realistic {@link ResearchReportInput} from real backtests on the bundled SPY and QQQ
 * bars: the configured MA crossover under the risk rules, a small walk-forward run and a
 * fast × slow sweep. Test support for the report's end-to-end test, not a research pipeline.
 */
import { loadDataDir } from '../../shared/adapters/fs/bars.js';
import { decide, evaluateCriteria } from '../../shared/core/backtest/criteria.js';
import { toBacktestDocument } from '../../shared/core/backtest/document.js';
import { runBacktest } from '../../shared/core/backtest/engine.js';
import { type MaPair, sweepMaPairs } from '../../shared/core/backtest/ma-sweep.js';
import type { BacktestOptions } from '../../shared/core/backtest/types.js';
import { criteriaSchema } from '../../shared/core/config/schema.js';
import { formatBarTime } from '../../shared/core/market/types.js';
import type { Metrics } from '../../shared/core/metrics/index.js';
import { riskRulesSchema } from '../../shared/core/risk/rules.js';
import { maCrossover } from '../../shared/core/strategies/ma-crossover.js';
import type { ResearchReportInput } from '../../shared/report/html.js';
import { chartTrades } from '../../shared/report/trades.js';

const INITIAL_CASH = 100_000;
const PARAMS = { fast: 10, slow: 30, ma: 'sma', atrPeriod: 14, atrStop: 2 } as const;

const riskRules = riskRulesSchema.parse({
  stops: { atrPeriod: 14, initialAtr: 2, trailAtr: 3, breakEvenAtR: 1 },
});

/** Options of the single-symbol sweeps and walk-forward runs: all-in, no risk rules. */
const sweepOptions: BacktestOptions = {
  initialCash: INITIAL_CASH,
  sizing: { mode: 'all-in' },
  cashBuffer: 0.02,
  commission: { perShare: 0, perOrder: 0, percent: 0, minimum: 0 },
  slippageBps: 5,
  fractional: false,
  endOfData: 'close',
  riskFreeRate: 0,
};
const sweepBase = { ma: 'sma', atrPeriod: 14 } as const;

/** The configured run: ATR-risk sizing with a 20% position cap, under the risk rules. */
const options: BacktestOptions = {
  initialCash: INITIAL_CASH,
  sizing: { mode: 'atr-risk', risk: 0.02 },
  maxPositionFraction: 0.2,
  cashBuffer: 0.02,
  commission: { perShare: 0, perOrder: 0, percent: 0, minimum: 0 },
  slippageBps: 5,
  fractional: false,
  endOfData: 'close',
  riskFreeRate: 0,
  risk: riskRules,
};

const day = (t: number) => formatBarTime(t, false);
const fixed = (value: number | null, digits = 2) => (value === null ? 'n/a' : value.toFixed(digits));

/** The report input of the configured strategy on SPY and QQQ, with every section filled in. */
export function buildRealisticReportInput(): ResearchReportInput {
  const series = loadDataDir('data', ['SPY', 'QQQ']);
  const result = runBacktest({ series, strategy: maCrossover, params: PARAMS, options });
  const criteria = evaluateCriteria(result.metrics, criteriaSchema.parse({}));
  const decision = decide(criteria);
  const doc = toBacktestDocument(result, criteria, decision);
  const m = result.metrics;

  const equityTime = Array.from(result.equity.time);
  const strategy = Array.from(result.equity.equity);
  const first = equityTime[0] as number;

  const buyHold = new Array<number>(equityTime.length).fill(0);
  for (const s of series) {
    const closeAt = new Map(Array.from(s.time, (t, i) => [t, s.close[i] as number]));
    let last = closeAt.get(first) as number;
    const shares = INITIAL_CASH / series.length / last;
    equityTime.forEach((t, i) => {
      last = closeAt.get(t) ?? last;
      buyHold[i] = (buyHold[i] as number) + shares * last;
    });
  }

  let peak = INITIAL_CASH;
  const drawdownPct = strategy.map((e) => {
    peak = Math.max(peak, e);
    return ((peak - e) / peak) * 100;
  });

  return {
    title: 'QuantShift research report: MA crossover 10/30 with ATR stops on SPY, QQQ',
    generatedAt: '2026-01-09T12:00:00Z',
    configHash: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    gitCommit: '8862540',
    decision: { proceed: decision.proceed, failed: [...decision.failed] },
    criteria: criteria.map((c) => ({
      name: c.name,
      op: c.op,
      threshold: c.threshold,
      value: c.value,
      pass: c.pass,
    })),
    summary: [
      { label: 'Period', value: `${doc.from} .. ${doc.to}` },
      { label: 'Return', value: `${fixed(m.returnPct)}%` },
      { label: 'CAGR', value: `${fixed(m.cagrPct)}%` },
      { label: 'Buy & hold', value: `${fixed(m.buyHoldReturnPct)}%` },
      { label: 'Max drawdown', value: `${fixed(m.maxDrawdownPct)}%` },
      { label: 'Sharpe', value: fixed(m.sharpe) },
      { label: 'Trades', value: String(m.trades) },
      { label: 'Win rate', value: `${fixed(m.winRatePct, 1)}%` },
      { label: 'Profit factor', value: fixed(m.profitFactor) },
      { label: 'Exposure', value: `${fixed(m.exposurePct, 1)}%` },
    ],
    equity: { time: equityTime.map(day), strategy, buyHold },
    drawdownPct,
    symbols: series.map((s) => {
      const startBar = s.time.findIndex((t) => t >= first);
      return {
        symbol: s.symbol,
        time: Array.from(s.time.subarray(startBar), day),
        close: Array.from(s.close.subarray(startBar)),
        trades: chartTrades(doc.trades, s.symbol),
      };
    }),
    monthlyReturns: monthlyReturns(equityTime, strategy),
    walkForward: walkForward(series),
    parameterSurface: parameterSurface(series[0] as (typeof series)[number]),
    perSymbol: series.map((s) => {
      const alone = runBacktest({ series: [s], strategy: maCrossover, params: PARAMS, options });
      return { symbol: s.symbol, metrics: pickMetrics(alone.metrics) };
    }),
    risk:
      doc.risk === undefined
        ? null
        : {
            peakHeatPct: doc.risk.peakHeatPct,
            breakerTrips: doc.risk.breakerTrips.map((b) => ({
              time: b.time,
              breaker: b.breaker,
              reason: b.reason,
            })),
            refusedEntries: doc.risk.refusedEntries.length,
            reducedEntries: doc.risk.reducedEntries.length,
            heat: { time: doc.risk.heat.map((h) => h.time), heatPct: doc.risk.heat.map((h) => h.heatPct) },
          },
  };
}

function pickMetrics(m: Metrics): Record<string, number | null> {
  return {
    trades: m.trades,
    returnPct: m.returnPct,
    cagrPct: m.cagrPct,
    maxDrawdownPct: m.maxDrawdownPct,
    sharpe: m.sharpe,
    sortino: m.sortino,
    winRatePct: m.winRatePct,
    profitFactor: m.profitFactor,
    exposurePct: m.exposurePct,
  };
}

/** Each calendar month's return, from the previous month's last equity (the starting cash first). */
function monthlyReturns(time: readonly number[], equity: readonly number[]) {
  const months: { year: number; month: number; returnPct: number }[] = [];
  let base = INITIAL_CASH;
  time.forEach((t, i) => {
    const date = new Date(t);
    const next = time[i + 1];
    const lastOfMonth = next === undefined || new Date(next).getUTCMonth() !== date.getUTCMonth();
    if (!lastOfMonth) return;
    const value = equity[i] as number;
    months.push({
      year: date.getUTCFullYear(),
      month: date.getUTCMonth() + 1,
      returnPct: (value / base - 1) * 100,
    });
    base = value;
  });
  return months;
}

const PAIRS: MaPair[] = [5, 10, 15, 20].flatMap((fast) => [30, 50, 100].map((slow) => ({ fast, slow })));

/** Rolling walk-forward: two years in sample (best Sharpe), six months out of sample, per symbol. */
function walkForward(series: ReturnType<typeof loadDataDir>): ResearchReportInput['walkForward'] {
  const inSampleBars = 504;
  const outOfSampleBars = 126;
  const windows: NonNullable<ResearchReportInput['walkForward']>['windows'] = [];
  const oosTime: number[] = [];
  const oosEquity: number[] = [];
  let inSampleCagr = 0;
  let outOfSampleCagr = 0;
  series.forEach((s, symbolIndex) => {
    let capital = INITIAL_CASH / series.length;
    let point = 0;
    for (let start = 0; start + inSampleBars + outOfSampleBars <= s.time.length; start += outOfSampleBars) {
      const inEnd = start + inSampleBars - 1;
      const outStart = inEnd + 1;
      const outEnd = outStart + outOfSampleBars - 1;
      const scores = sweepMaPairs(s, sweepBase, PAIRS, {
        ...sweepOptions,
        startIndex: start,
        endIndex: inEnd,
      });
      let best = 0;
      scores.forEach((score, i) => {
        if ((score.sharpe ?? -Infinity) > ((scores[best] as Metrics).sharpe ?? -Infinity)) best = i;
      });
      const pair = PAIRS[best] as MaPair;
      const oos = runBacktest({
        series: [s],
        strategy: maCrossover,
        params: { ...sweepBase, ...pair },
        options: { ...sweepOptions, initialCash: capital, startIndex: outStart, endIndex: outEnd },
      });
      inSampleCagr += (scores[best] as Metrics).cagrPct ?? 0;
      outOfSampleCagr += oos.metrics.cagrPct ?? 0;
      oos.equity.equity.forEach((value, i) => {
        if (symbolIndex === 0) {
          oosTime.push(oos.equity.time[i] as number);
          oosEquity.push(value);
        } else {
          oosEquity[point] = (oosEquity[point] as number) + value;
        }
        point++;
      });
      capital = oos.metrics.equityFinal;
      windows.push({
        symbol: s.symbol,
        inSample: { from: day(s.time[start] as number), to: day(s.time[inEnd] as number) },
        outOfSample: { from: day(s.time[outStart] as number), to: day(s.time[outEnd] as number) },
        params: { fast: pair.fast, slow: pair.slow, ma: 'sma' },
        outOfSampleReturnPct: oos.metrics.returnPct,
      });
    }
  });
  return {
    windows,
    efficiency: inSampleCagr === 0 ? null : outOfSampleCagr / inSampleCagr,
    efficiencyNote: 'mean out-of-sample CAGR / mean in-sample CAGR of the chosen parameters',
    oosEquity: { time: oosTime.map(day), equity: oosEquity },
  };
}

/** Sharpe over fast × slow on one symbol; pairs with fast ≥ slow have no value. */
function parameterSurface(
  s: ReturnType<typeof loadDataDir>[number],
): ResearchReportInput['parameterSurface'] {
  const fasts = [5, 10, 15, 20, 25, 30, 40, 50, 60, 80];
  const slows = [20, 30, 40, 50, 60, 80, 100, 120, 150, 200];
  const grid = fasts.flatMap((x) => slows.map((y) => ({ x, y })));
  const valid = grid.filter((c) => c.x < c.y);
  const scores = sweepMaPairs(
    s,
    sweepBase,
    valid.map((c) => ({ fast: c.x, slow: c.y })),
    sweepOptions,
  );
  const byCell = new Map(valid.map((c, i) => [`${c.x}/${c.y}`, (scores[i] as Metrics).sharpe]));
  return {
    objective: `Sharpe (${s.symbol})`,
    xName: 'fast',
    yName: 'slow',
    cells: grid.map((c) => ({ x: c.x, y: c.y, value: byCell.get(`${c.x}/${c.y}`) ?? null })),
  };
}
