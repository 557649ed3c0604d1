import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { paperValidationCriteriaSchema } from '../../../shared/core/config/schema.js';
import type { EquitySnapshot, FillRecord, IntentRecord } from '../../../shared/core/ports/state-store.js';
import {
  correlationOf,
  dailyReturns,
  type PaperLedger,
  quantile,
  rollingDivergence,
  type ShadowBacktest,
  slippageBps,
  trackingErrorPct,
  validatePaper,
} from '../../../shared/core/validation/paper.js';

const criteria = paperValidationCriteriaSchema.parse({});
const limits = { maxPositionFraction: 0.2, maxPortfolioHeat: 0.1 };

/** 40 sessions of a steadily rising account, from 2021-01-04 on weekdays. */
const DATES = (() => {
  const out: string[] = [];
  for (let t = Date.parse('2021-01-04T00:00:00Z'); out.length < 40; t += 86_400_000) {
    const d = new Date(t);
    if (d.getUTCDay() !== 0 && d.getUTCDay() !== 6) out.push(d.toISOString().slice(0, 10));
  }
  return out;
})();

const snapshot = (date: string, equity: number, previous: number): EquitySnapshot => ({
  date,
  equity,
  cash: equity,
  dayPnl: equity - previous,
  highWaterMark: equity,
  drawdownPct: 0,
  takenAt: `${date}T20:15:00.000Z`,
});

const OPEN = 100;
const prices = { open: () => OPEN, close: () => 101 };

function intent(date: string, side: 'buy' | 'sell', purpose: 'entry' | 'exit', id: string): IntentRecord {
  return {
    clientOrderId: id,
    date,
    strategy: 's',
    symbol: 'SPY',
    purpose,
    side,
    qty: 10,
    type: 'market',
    timeInForce: 'opg',
    referencePrice: 99,
    ...(purpose === 'entry' ? { protectiveStop: 95 } : {}),
    status: 'filled',
    filledQty: 10,
    configHash: 'h',
    gitCommit: 'g',
    createdAt: `${date}T13:10:00.000Z`,
    updatedAt: `${date}T13:30:00.000Z`,
  };
}

const fill = (i: IntentRecord, price: number, n = 0): FillRecord => ({
  executionId: `${i.clientOrderId}-${n}`,
  date: i.date,
  clientOrderId: i.clientOrderId,
  brokerOrderId: `b-${i.clientOrderId}`,
  symbol: i.symbol,
  side: i.side,
  qty: i.qty,
  price,
  time: `${i.date}T13:30:00.000Z`,
});

/** A ledger and its shadow backtest that agree, with `bps` of slippage on each fill. */
function agreeing(bps = 5): { ledger: PaperLedger; backtest: ShadowBacktest } {
  const entry = intent(DATES[2] as string, 'buy', 'entry', 'e1');
  const exit = intent(DATES[20] as string, 'sell', 'exit', 'x1');
  let equity = 100_000;
  const snaps = DATES.map((d, k) => {
    const previous = equity;
    equity *= 1 + (k % 3 === 0 ? 0.004 : 0.001);
    return snapshot(d, equity, previous);
  });
  const ledger: PaperLedger = {
    sleeve: 's',
    initialEquity: 100_000,
    equity: snaps,
    intents: [entry, exit],
    fills: [fill(entry, OPEN * (1 + bps / 1e4)), fill(exit, OPEN * (1 - bps / 1e4))],
    positions: DATES.slice(2, 20).map((d) => ({
      date: d,
      positions: [
        {
          symbol: 'SPY',
          qty: 10,
          avgEntryPrice: 100,
          stop: 95,
          entryRef: 99,
          initialRisk: 4,
          sessionsHeld: 1,
        },
      ],
    })),
    startPositions: [],
    closedTrades: [],
    breakerEvents: [],
    audit: [],
    alerts: [],
  };
  const backtest: ShadowBacktest = {
    fills: [
      { symbol: 'SPY', side: 'buy', qty: 10, date: entry.date, price: 100.05 },
      { symbol: 'SPY', side: 'sell', qty: 10, date: exit.date, price: 99.95 },
    ],
    equity: snaps.map((s) => ({ date: s.date, equity: s.equity * 1.0001 })),
    metrics: { returnPct: 5, sharpe: 3, maxDrawdownPct: 0, winRatePct: 100, profitFactor: null, trades: 1 },
  };
  return { ledger, backtest };
}

const run = (ledger: PaperLedger, backtest: ShadowBacktest | null, modelSlippageBps = 5) =>
  validatePaper({ ledger, backtest, prices, criteria, modelSlippageBps, limits });

describe('paper validation: the figures', () => {
  it('slippage is signed so that a worse fill is positive, for both sides', () => {
    expect(slippageBps('buy', 100.12, 100)).toBeCloseTo(12, 9);
    expect(slippageBps('sell', 99.88, 100)).toBeCloseTo(12, 9);
    expect(slippageBps('sell', 100.1, 100)).toBeCloseTo(-10, 9);
  });

  it('quantile interpolates linearly and stays within the data (property)', () => {
    expect(quantile([], 0.5)).toBeNull();
    expect(quantile([1, 2, 3, 4], 0.5)).toBe(2.5);
    expect(quantile([5, 1, 3], 0.5)).toBe(3);
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: -1e6, max: 1e6, noNaN: true }), { minLength: 1, maxLength: 50 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        (values, q) => {
          const x = quantile(values, q) as number;
          return x >= Math.min(...values) - 1e-9 && x <= Math.max(...values) + 1e-9;
        },
      ),
    );
  });

  it('identical return series correlate at 1 with no tracking error; the error grows with the gap', () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: -0.05, max: 0.05, noNaN: true }), { minLength: 5, maxLength: 60 }),
        (r) => {
          const rho = correlationOf(r, r);
          const variance = r.some((x) => Math.abs(x - (r[0] as number)) > 1e-9);
          return (
            (trackingErrorPct(r, r) as number) < 1e-9 && (!variance || Math.abs((rho as number) - 1) < 1e-6)
          );
        },
      ),
    );
    const [up, down] = dailyReturns(100, [110, 99]);
    expect(up).toBeCloseTo(0.1, 12);
    expect(down).toBeCloseTo(-0.1, 12);
    expect(trackingErrorPct([0.01, -0.01, 0.02], [0, 0, 0]) as number).toBeGreaterThan(
      trackingErrorPct([0.005, -0.005, 0.01], [0, 0, 0]) as number,
    );
  });
});

describe('paper validation: the decision', () => {
  it('goes when paper and its shadow backtest agree', () => {
    const { ledger, backtest } = agreeing();
    const v = run(ledger, backtest);
    expect(v.trades.matched).toHaveLength(2);
    expect(v.trades.matchedPct).toBe(100);
    expect(v.slippageBps.median).toBeCloseTo(5, 9);
    expect(v.execution.fillRatePct).toBe(100);
    expect(v.implementationShortfall.delay).toBeCloseTo(10 * 1 - 10 * 1, 9);
    expect(v.failed).toEqual([]);
    expect(v.decision).toBe('go');
  });

  it('fails medianSlippage above the cost model plus the tolerance, and names its figure', () => {
    const { ledger, backtest } = agreeing(11);
    const v = run(ledger, backtest);
    expect(v.failed).toEqual(['medianSlippage']);
    expect(v.criteria.find((c) => c.name === 'medianSlippage')?.value).toBeCloseTo(11, 9);
  });

  it('fails minSessions below 30 sessions', () => {
    const { ledger, backtest } = agreeing();
    const v = run({ ...ledger, equity: ledger.equity.slice(0, 29) }, backtest);
    expect(v.failed).toContain('minSessions');
  });

  it('lists a missed trade with its intent status and fails tradesMatched', () => {
    const { ledger, backtest } = agreeing();
    const [entry, exit] = ledger.intents as [IntentRecord, IntentRecord];
    const v = run(
      {
        ...ledger,
        intents: [{ ...entry, status: 'rejected', filledQty: 0, reason: 'refused' }, exit],
        fills: ledger.fills.slice(1),
      },
      backtest,
    );
    expect(v.trades.missed).toEqual([
      expect.objectContaining({ symbol: 'SPY', side: 'buy', reason: 'entry rejected: refused' }),
    ]);
    expect(v.failed).toEqual(expect.arrayContaining(['tradesMatched', 'executionFailures']));
    expect(v.execution.rejected).toEqual(['e1']);
  });

  it('finds a lost fill (the intent filled more than the ledger holds)', () => {
    const { ledger, backtest } = agreeing();
    const v = run(
      { ...ledger, fills: [ledger.fills[0] as FillRecord] },
      { ...backtest, fills: backtest.fills.slice(0, 1) },
    );
    expect(v.execution.lostFills).toEqual(['x1: 10 filled, 0 in the ledger']);
    expect(v.failed).toContain('executionFailures');
  });

  it('flags a position without a stop and an entry above the position cap as risk-rule breaches', () => {
    const { ledger, backtest } = agreeing();
    const [entry, exit] = ledger.intents as [IntentRecord, IntentRecord];
    const positions = ledger.positions.map((p, k) =>
      k === 3 ? { ...p, positions: p.positions.map((x) => ({ ...x, stop: null })) } : p,
    );
    const v = run(
      { ...ledger, positions, intents: [{ ...entry, qty: 300, referencePrice: 99 }, exit] },
      backtest,
    );
    expect(v.risk.violations).toEqual([
      expect.stringMatching(/position without a stop/),
      expect.stringMatching(/above the position cap/),
    ]);
    expect(v.failed).toContain('riskRules');
  });

  it('measures a held position that rose from its entry reference to its stop, as the decision did, not from the close', () => {
    const { ledger, backtest } = agreeing();
    const day = DATES[10] as string;
    // 1,000 QQQ bought at a 100 reference with a stop at 95: 5,000 of heat however far QQQ rose.
    const held = {
      symbol: 'QQQ',
      qty: 1000,
      avgEntryPrice: 100,
      stop: 95,
      entryRef: 100,
      initialRisk: 5,
      sessionsHeld: 3,
    };
    const positions = ledger.positions.map((p) => ({ ...p, positions: [...p.positions, held] }));
    const entry = (qty: number): IntentRecord => ({
      ...intent(day, 'buy', 'entry', 'e2'),
      symbol: 'AAPL',
      qty,
      referencePrice: 100,
      protectiveStop: 90,
    });
    // QQQ closed at 130 the day before: measured from the close it would be 35,000 of heat.
    const rose = { open: () => OPEN, close: (symbol: string) => (symbol === 'QQQ' ? 130 : 101) };
    const qqqExit: IntentRecord = { ...intent(day, 'sell', 'exit', 'x2'), symbol: 'QQQ', qty: 1000 };
    const check = (qty: number, exits: readonly IntentRecord[] = []) =>
      validatePaper({
        ledger: { ...ledger, positions, intents: [...ledger.intents, ...exits, entry(qty)] },
        backtest,
        prices: rose,
        criteria,
        modelSlippageBps: 5,
        limits: { maxPositionFraction: 1, maxPortfolioHeat: 0.1 },
      }).risk.violations;
    // 5,000 (QQQ) + 40 (SPY: 10 x (99 - 95)) + 400 x 10 (the entry) = 9,040, under 10 % of ~101,000.
    expect(check(400)).toEqual([]);
    // QQQ exited at that close: it is no heat of the decision, so 600 shares fit (6,040).
    expect(check(600, [qqqExit])).toEqual([]);
    // 600 shares: 11,040, above the cap: still a breach.
    expect(check(600)).toEqual([
      expect.stringMatching(new RegExp(`^${day}: portfolio heat \\$11040\\.00 above the cap`)),
    ]);
  });

  it('fails sharpe and maxDrawdown on a losing, falling paper account', () => {
    const { ledger, backtest } = agreeing();
    let equity = 100_000;
    const falling = ledger.equity.map((s, k) => {
      const previous = equity;
      equity *= k % 2 === 0 ? 0.985 : 0.999;
      return snapshot(s.date, equity, previous);
    });
    const v = run({ ...ledger, equity: falling }, backtest);
    expect(v.failed).toEqual(expect.arrayContaining(['sharpe', 'maxDrawdown']));
    expect(v.tracking.returnGapPct as number).toBeLessThan(0);
  });
});

describe('attribution', () => {
  it('sums the realized P&L of the closed trades by sleeve, symbol and side, with the costs apart', () => {
    const { ledger, backtest } = agreeing(5);
    const trade = (symbol: string, pnlCents: number) => ({
      strategy: 's',
      symbol,
      side: 'long' as const,
      qty: 10,
      entryDate: DATES[2] as string,
      exitDate: DATES[20] as string,
      exitTime: `${DATES[20]}T13:30:00.000Z`,
      entryPrice: 100,
      exitPrice: 101,
      pnlCents,
      exitExecutionId: `x-${symbol}`,
      recordedAt: `${DATES[20]}T20:15:00.000Z`,
    });
    const v = run(
      { ...ledger, closedTrades: [trade('SPY', 1250), trade('QQQ', -500), trade('SPY', 100)] },
      backtest,
    );
    expect(v.attribution.bySymbol).toEqual({ SPY: 13.5, QQQ: -5 });
    expect(v.attribution.bySide).toEqual({ long: 8.5 });
    expect(v.attribution.bySleeve).toEqual({ s: 8.5 });
    // 5 bps on a $100 open, 10 shares, twice: $1 of slippage against the open.
    expect(v.attribution.costs.slippage).toBeCloseTo(1, 9);
    expect(v.attribution.costs.commission).toBe(0);
  });
});

describe('rolling divergence (the daily report)', () => {
  const limits = { window: 20, maxReturnGapPct: 2, minCorrelation: 0.8, maxSlippageDriftBps: 5 };
  it('is null before the window is full, and clean when paper tracks its backtest', () => {
    const { ledger, backtest } = agreeing();
    expect(
      rollingDivergence({
        ledger: { ...ledger, equity: ledger.equity.slice(0, 19) },
        backtest,
        prices,
        modelSlippageBps: 5,
        limits,
      }),
    ).toBeNull();
    const r = rollingDivergence({ ledger, backtest, prices, modelSlippageBps: 5, limits });
    expect(r?.breaches).toEqual([]);
    expect(r?.correlation as number).toBeGreaterThan(0.99);
    expect(Math.abs(r?.returnGapPct as number)).toBeLessThan(0.01);
  });

  it('names a return gap, a broken correlation and a slippage drift over the last window', () => {
    const { ledger, backtest } = agreeing(15);
    let equity = ledger.equity[19]?.equity as number;
    const diverged = ledger.equity.map((s, k) => {
      if (k < 20) return s;
      const previous = equity;
      equity *= k % 2 === 0 ? 0.99 : 1.002;
      return snapshot(s.date, equity, previous);
    });
    // The window's last 20 sessions start at index 20: the exit (index 20) is in it, with 15 bps.
    const r = rollingDivergence({
      ledger: { ...ledger, equity: diverged },
      backtest,
      prices,
      modelSlippageBps: 5,
      limits,
    });
    expect(r?.breaches).toEqual([
      expect.stringMatching(/^return gap -\d+\.\d\d pts over 20 sessions/),
      expect.stringMatching(/^daily-return correlation/),
      expect.stringMatching(/^median slippage 10\.00 bps above the cost model/),
    ]);
  });
});
