import { describe, expect, it } from 'vitest';
import { InsufficientDataError, InvalidParameterError } from '../../../shared/core/errors.js';
import {
  computeMetrics,
  InvalidMetricsInputError,
  type Metrics,
  type MetricsInput,
} from '../../../shared/core/metrics/index.js';

const DAY = 86_400_000;
const utc = (isoDate: string): number => Date.parse(`${isoDate}T00:00:00Z`);

/** Consecutive calendar days from `start`, one per equity point. */
function dailyInput(
  equity: readonly number[],
  overrides: Partial<MetricsInput> = {},
  start = utc('2024-01-01'),
): MetricsInput {
  return {
    time: Float64Array.from(equity, (_, i) => start + i * DAY),
    equity: Float64Array.from(equity),
    initialEquity: 1000,
    inMarket: new Uint8Array(equity.length).fill(1),
    tradePnls: [],
    buyHoldReturnPct: 0,
    ...overrides,
  };
}

function expectAllFinite(metrics: Metrics): void {
  for (const [key, value] of Object.entries(metrics)) {
    if (value !== null) expect(Number.isFinite(value), key).toBe(true);
  }
}

describe('computeMetrics: hand-worked example', () => {
  // Six daily bars Mon 2024-01-08 .. Fri 2024-01-12, then Mon 2024-01-15 (weekend gap).
  // initialEquity 1000. Equity at each close and the daily returns it implies:
  //   bar  date        equity        r_i
  //   0    Mon 01-08    980          980/1000 − 1        = −0.02   (first bar's mark-to-market counts)
  //   1    Tue 01-09   1029          1029/980 − 1        = +0.05
  //   2    Wed 01-10   1131.9        1131.9/1029 − 1     = +0.10
  //   3    Thu 01-11   1018.71       1018.71/1131.9 − 1  = −0.10
  //   4    Fri 01-12   1059.4584     × 1.04              = +0.04
  //   5    Mon 01-15   1091.242152   × 1.03              = +0.03
  // In market at the close of bars 0..4, flat after bar 5's close.
  // Closed trades: +150, −100, +50.
  const input: MetricsInput = {
    time: Float64Array.from(
      ['2024-01-08', '2024-01-09', '2024-01-10', '2024-01-11', '2024-01-12', '2024-01-15'].map(utc),
    ),
    equity: Float64Array.from([980, 1029, 1131.9, 1018.71, 1059.4584, 1091.242152]),
    initialEquity: 1000,
    inMarket: Uint8Array.from([1, 1, 1, 1, 1, 0]),
    tradePnls: [150, -100, 50],
    buyHoldReturnPct: 7.5,
  };
  const m = computeMetrics(input);
  const sqrt252 = Math.sqrt(252); // ≈ 15.874508

  it('computes the equity and return figures', () => {
    // returnPct = (1091.242152 / 1000 − 1) × 100 = 9.1242152
    expect(m.returnPct).toBeCloseTo(9.1242152, 10);
    expect(m.equityFinal).toBe(1091.242152);
    // peak = max(1000, 980, 1029, 1131.9, 1018.71, 1059.4584, 1091.242152) = 1131.9
    expect(m.equityPeak).toBe(1131.9);
    expect(m.buyHoldReturnPct).toBe(7.5);
  });

  it('computes CAGR over calendar days, counting the first bar as a whole day', () => {
    // span = (01-15 − 01-08) + 1 day = 8 days; years = 8 / 365.25
    // CAGR = 1.091242152^(365.25 / 8) − 1 = 1.091242152^45.65625 − 1 ≈ 52.868731 → 5286.8731 %
    const cagr = (1.091242152 ** (365.25 / 8) - 1) * 100;
    expect(cagr).toBeCloseTo(5286.8731, 3);
    expect(m.cagrPct).toBeCloseTo(cagr, 8);
  });

  it('computes volatility, Sharpe and Sortino from the six daily returns', () => {
    // mean = (−0.02 + 0.05 + 0.10 − 0.10 + 0.04 + 0.03) / 6 = 0.10 / 6 = 1/60 ≈ 0.0166667
    const mean = 0.1 / 6;
    // Σ r² = 0.0004 + 0.0025 + 0.01 + 0.01 + 0.0016 + 0.0009 = 0.0254
    // Σ (r − mean)² = 0.0254 − 6 × (1/60)² = 0.0254 − 0.0016667 = 0.0237333
    // sample variance = 0.0237333 / (6 − 1) = 0.00474667 ; stdev ≈ 0.0688961
    const stdev = Math.sqrt((0.0254 - 6 * mean * mean) / 5);
    expect(stdev).toBeCloseTo(0.0688961, 7);
    // volatility = 0.0688961 × √252 × 100 ≈ 109.3691 %
    expect(m.volatilityPct).toBeCloseTo(stdev * sqrt252 * 100, 9);
    expect(m.volatilityPct).toBeCloseTo(109.3691, 4);
    // Sharpe (rf = 0) = 0.0166667 / 0.0688961 × √252 ≈ 3.840207
    expect(m.sharpe).toBeCloseTo((mean / stdev) * sqrt252, 9);
    expect(m.sharpe).toBeCloseTo(3.840207, 6);
    // downside deviation = √((0.02² + 0.10²) / 6) = √(0.0104 / 6) ≈ 0.0416333 (mean over ALL six returns)
    // Sortino = 0.0166667 / 0.0416333 × √252 ≈ 6.354889
    const downside = Math.sqrt(0.0104 / 6);
    expect(m.sortino).toBeCloseTo((mean / downside) * sqrt252, 9);
    expect(m.sortino).toBeCloseTo(6.354889, 6);
  });

  it('computes drawdown depth, duration in calendar days and Calmar', () => {
    // Running peak: 1000 (initial, dated Sun 01-07) → bar 0 at 980 is 2% under water → bar 1 at 1029
    // recovers (2 days: 01-07 → 01-09) → bar 2 sets a new peak 1131.9 on Wed 01-10 → bar 3 at 1018.71
    // is 1 − 1018.71/1131.9 = 10% under water → never recovers; the last bar is Mon 01-15:
    // 01-10 → 01-15 = 5 calendar days (the weekend counts).
    expect(m.maxDrawdownPct).toBeCloseTo(10, 10);
    expect(m.maxDrawdownDays).toBe(5);
    // Calmar = 5286.8731 / 10 ≈ 528.68731
    expect(m.calmar).toBeCloseTo((1.091242152 ** (365.25 / 8) - 1) * 10, 6);
  });

  it('computes the trade statistics', () => {
    // 3 trades: wins {150, 50}, losses {−100}
    expect(m.trades).toBe(3);
    // win rate = 2/3 × 100 = 66.667 %
    expect(m.winRatePct).toBeCloseTo(200 / 3, 12);
    // profit factor = (150 + 50) / |−100| = 2
    expect(m.profitFactor).toBe(2);
    // avgWin = 200 / 2 = 100 ; avgLoss = −100 / 1 = −100
    expect(m.avgWin).toBe(100);
    expect(m.avgLoss).toBe(-100);
    // expectancy = (150 − 100 + 50) / 3 = 33.333 dollars per trade
    expect(m.expectancy).toBeCloseTo(100 / 3, 12);
    // Kelly: W = 2/3, R = 100 / |−100| = 1 → 2/3 − (1/3) / 1 = 1/3
    expect(m.kelly).toBeCloseTo(1 / 3, 12);
  });

  it('computes exposure as the share of closes with a position open', () => {
    // 5 of 6 closes in the market → 83.333 %
    expect(m.exposurePct).toBeCloseTo(500 / 6, 12);
  });

  it('subtracts the de-annualized risk-free rate from every daily return', () => {
    // rf = 4 % a year → rf_d = 1.04^(1/252) − 1 ≈ 0.000155650 per bar
    const rfDaily = 1.04 ** (1 / 252) - 1;
    expect(rfDaily).toBeCloseTo(0.00015565, 8);
    const withRf = computeMetrics({ ...input, riskFreeRate: 0.04 });
    const mean = 0.1 / 6;
    const stdev = Math.sqrt((0.0254 - 6 * mean * mean) / 5); // unchanged by a constant shift
    // Sharpe = (0.0166667 − 0.00015565) / 0.0688961 × √252 ≈ 3.804344
    expect(withRf.sharpe).toBeCloseTo(((mean - rfDaily) / stdev) * sqrt252, 9);
    // Downside uses r − rf_d: the two negative excess returns are −0.02 − rf_d and −0.10 − rf_d
    const downside = Math.sqrt(((0.02 + rfDaily) ** 2 + (0.1 + rfDaily) ** 2) / 6);
    expect(withRf.sortino).toBeCloseTo(((mean - rfDaily) / downside) * sqrt252, 9);
    // Volatility and every non-ratio figure are unaffected.
    expect(withRf.volatilityPct).toBeCloseTo(m.volatilityPct as number, 12);
    expect(withRf.cagrPct).toBe(m.cagrPct);
  });

  it('annualizes with the given periods per year', () => {
    const weekly = computeMetrics({ ...input, periodsPerYear: 52 });
    expect(weekly.sharpe).toBeCloseTo(((m.sharpe as number) / Math.sqrt(252)) * Math.sqrt(52), 10);
    expect(weekly.volatilityPct).toBeCloseTo(
      ((m.volatilityPct as number) / Math.sqrt(252)) * Math.sqrt(52),
      10,
    );
  });

  it('outputs only finite numbers', () => {
    expectAllFinite(m);
  });
});

describe('computeMetrics: null cases', () => {
  it('a single bar: no volatility or Sharpe (one return), CAGR over one day', () => {
    const m = computeMetrics(dailyInput([990]));
    expect(m.volatilityPct).toBeNull();
    expect(m.sharpe).toBeNull();
    // r_0 = −0.01 is the only return: downside deviation 0.01, Sortino = −0.01 / 0.01 × √252
    expect(m.sortino).toBeCloseTo(-Math.sqrt(252), 10);
    expect(m.cagrPct).toBeCloseTo((0.99 ** 365.25 - 1) * 100, 10);
    expect(m.returnPct).toBeCloseTo(-1, 12);
    expect(m.maxDrawdownPct).toBeCloseTo(1, 12);
    expect(m.maxDrawdownDays).toBe(1);
  });

  it('a flat curve: zero volatility, null Sharpe, Sortino and Calmar', () => {
    const m = computeMetrics(dailyInput([1000, 1000, 1000, 1000]));
    expect(m.volatilityPct).toBe(0);
    expect(m.sharpe).toBeNull();
    expect(m.sortino).toBeNull();
    expect(m.maxDrawdownPct).toBe(0);
    expect(m.maxDrawdownDays).toBe(0);
    expect(m.cagrPct).toBe(0);
    expect(m.calmar).toBeNull();
  });

  it('a constant-growth curve: round-off does not turn into a Sharpe ratio', () => {
    const equity = Array.from({ length: 30 }, (_, i) => 1000 * 1.001 ** (i + 1));
    const m = computeMetrics(dailyInput(equity));
    expect(m.volatilityPct).toBeCloseTo(0, 9);
    expect(m.sharpe).toBeNull();
    expect(m.sortino).toBeNull();
    expect(m.calmar).toBeNull();
  });

  it('a flat curve with a positive risk-free rate has a negative Sortino but no Sharpe', () => {
    const m = computeMetrics(dailyInput([1000, 1000, 1000], { riskFreeRate: 0.04 }));
    expect(m.sharpe).toBeNull();
    // every excess return is −rf_d, so mean / downside = −1
    expect(m.sortino).toBeCloseTo(-Math.sqrt(252), 10);
  });

  it('no trades: every trade statistic is null', () => {
    const m = computeMetrics(dailyInput([1000, 1010], { tradePnls: [] }));
    expect(m.trades).toBe(0);
    expect(m.winRatePct).toBeNull();
    expect(m.profitFactor).toBeNull();
    expect(m.avgWin).toBeNull();
    expect(m.avgLoss).toBeNull();
    expect(m.expectancy).toBeNull();
    expect(m.kelly).toBeNull();
  });

  it('only winners: no profit factor, average loss or Kelly', () => {
    const m = computeMetrics(dailyInput([1000], { tradePnls: [10, 30] }));
    expect(m.winRatePct).toBe(100);
    expect(m.profitFactor).toBeNull();
    expect(m.avgWin).toBe(20);
    expect(m.avgLoss).toBeNull();
    expect(m.expectancy).toBe(20);
    expect(m.kelly).toBeNull();
  });

  it('only losers: profit factor 0, no average win or Kelly', () => {
    const m = computeMetrics(dailyInput([1000], { tradePnls: [-10, -30] }));
    expect(m.winRatePct).toBe(0);
    expect(m.profitFactor).toBe(0);
    expect(m.avgWin).toBeNull();
    expect(m.avgLoss).toBe(-20);
    expect(m.kelly).toBeNull();
  });

  it('a break-even trade is neither a win nor a loss but counts in the win rate and expectancy', () => {
    const m = computeMetrics(dailyInput([1000], { tradePnls: [40, 0, -20, 0] }));
    expect(m.trades).toBe(4);
    expect(m.winRatePct).toBe(25);
    expect(m.avgWin).toBe(40);
    expect(m.avgLoss).toBe(-20);
    expect(m.expectancy).toBe(5);
    // W = 0.25, R = 40 / 20 = 2 → 0.25 − 0.75 / 2 = −0.125
    expect(m.kelly).toBeCloseTo(-0.125, 12);
  });

  it('final equity at or below zero: no CAGR or Calmar', () => {
    const zero = computeMetrics(dailyInput([500, 0]));
    expect(zero.cagrPct).toBeNull();
    expect(zero.calmar).toBeNull();
    expect(zero.returnPct).toBe(-100);
    expect(zero.maxDrawdownPct).toBe(100);

    const negative = computeMetrics(dailyInput([500, -200]));
    expect(negative.cagrPct).toBeNull();
    expect(negative.maxDrawdownPct).toBeCloseTo(120, 10);
    expectAllFinite(negative);
  });

  it('a return from a non-positive equity is undefined: no volatility, Sharpe or Sortino', () => {
    const m = computeMetrics(dailyInput([500, -100, 300, 900]));
    expect(m.volatilityPct).toBeNull();
    expect(m.sharpe).toBeNull();
    expect(m.sortino).toBeNull();
    expect(m.cagrPct).not.toBeNull();
    expectAllFinite(m);
  });

  it('a CAGR that overflows is null, and so is Calmar', () => {
    // 1000× in one day, annualized: 1000^365.25 overflows a double
    const m = computeMetrics(dailyInput([1_000_000, 900_000]));
    expect(m.cagrPct).toBeNull();
    expect(m.calmar).toBeNull();
    expectAllFinite(m);
  });
});

describe('computeMetrics: drawdown duration', () => {
  it('ends at the bar where equity first returns to the peak (equal counts)', () => {
    // peak 1100 on 01-01; under water 01-02 and 01-03; back to exactly 1100 on 01-04
    const m = computeMetrics(dailyInput([1100, 1000, 1050, 1100, 1200]));
    expect(m.maxDrawdownDays).toBe(3);
    expect(m.maxDrawdownPct).toBeCloseTo((100 / 1100) * 100, 10);
  });

  it('runs to the last bar when equity never recovers', () => {
    const m = computeMetrics(dailyInput([1100, 1000, 1050, 1080]));
    expect(m.maxDrawdownDays).toBe(3);
  });

  it('starts one day before the first bar when the first bar already loses', () => {
    // the initial equity 1000 is the peak; back above it on the third bar
    const m = computeMetrics(dailyInput([950, 990, 1001]));
    expect(m.maxDrawdownDays).toBe(3);
    expect(m.maxDrawdownPct).toBeCloseTo(5, 10);
  });

  it('takes the longest spell, which need not be the deepest', () => {
    // spell 1: 1200 → 900 (25%) for 2 days; spell 2: 1300 → 1270 (2.3%) for 4 days
    const m = computeMetrics(dailyInput([1200, 900, 1250, 1300, 1290, 1280, 1270, 1310]));
    expect(m.maxDrawdownPct).toBeCloseTo(25, 10);
    expect(m.maxDrawdownDays).toBe(4);
  });

  it('counts calendar days, weekends and holidays included', () => {
    const time = Float64Array.from(['2024-03-28', '2024-04-01', '2024-04-02'].map(utc)); // Thu, Mon, Tue
    const m = computeMetrics({ ...dailyInput([1100, 1050, 1100]), time });
    expect(m.maxDrawdownDays).toBe(5);
    // CAGR span: 03-28 → 04-02 plus one day = 6 days
    expect(m.cagrPct).toBeCloseTo((1.1 ** (365.25 / 6) - 1) * 100, 6);
  });

  it('is zero when equity never falls below its running peak', () => {
    const m = computeMetrics(dailyInput([1000, 1010, 1010, 1020]));
    expect(m.maxDrawdownDays).toBe(0);
    expect(m.maxDrawdownPct).toBe(0);
    expect(m.calmar).toBeNull();
  });
});

describe('computeMetrics: invalid input', () => {
  it('throws InsufficientDataError for an empty curve', () => {
    expect(() => computeMetrics(dailyInput([]))).toThrow(InsufficientDataError);
  });

  it('throws InvalidMetricsInputError (an InvalidParameterError) for broken contracts', () => {
    const valid = dailyInput([1000, 1010]);
    const broken: Array<[string, MetricsInput]> = [
      ['time', { ...valid, time: new Float64Array(1) }],
      ['inMarket', { ...valid, inMarket: new Uint8Array(3) }],
      ['time[1]', { ...valid, time: Float64Array.from([utc('2024-01-02'), utc('2024-01-01')]) }],
      ['time[1]', { ...valid, time: Float64Array.from([utc('2024-01-02'), utc('2024-01-02')]) }],
      ['equity[1]', { ...valid, equity: Float64Array.from([1000, Number.NaN]) }],
      ['initialEquity', { ...valid, initialEquity: 0 }],
      ['riskFreeRate', { ...valid, riskFreeRate: -1 }],
      ['periodsPerYear', { ...valid, periodsPerYear: 0 }],
      ['buyHoldReturnPct', { ...valid, buyHoldReturnPct: Number.POSITIVE_INFINITY }],
      ['tradePnls[1]', { ...valid, tradePnls: [5, Number.NaN] }],
    ];
    for (const [field, input] of broken) {
      let caught: unknown;
      try {
        computeMetrics(input);
      } catch (error) {
        caught = error;
      }
      expect(caught, field).toBeInstanceOf(InvalidMetricsInputError);
      expect(caught, field).toBeInstanceOf(InvalidParameterError);
      expect((caught as InvalidMetricsInputError).field).toBe(field);
    }
  });
});
