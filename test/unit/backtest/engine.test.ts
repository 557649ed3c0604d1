import { describe, expect, it } from 'vitest';
import { runBacktest } from '../../../shared/core/backtest/engine.js';
import type { BacktestOptions } from '../../../shared/core/backtest/types.js';
import type { Intent } from '../../../shared/core/strategies/types.js';
import { baseOptions, type Row, scripted, series } from '../../helpers/series.js';

const run = (rows: readonly Row[], script: Record<string, Intent>, options: Partial<BacktestOptions> = {}) =>
  runBacktest({
    series: [series('TEST', rows)],
    strategy: scripted(script),
    params: {},
    options: { ...baseOptions, ...options },
  });

const long = (extra: Partial<Intent & { action: 'enter' }> = {}): Intent => ({
  action: 'enter',
  side: 'long',
  reason: 'test',
  ...extra,
});
const short = (extra: Partial<Intent & { action: 'enter' }> = {}): Intent => ({
  action: 'enter',
  side: 'short',
  reason: 'test',
  ...extra,
});
const exit: Intent = { action: 'exit', reason: 'test' };

describe('a tiny series worked out by hand', () => {
  const rows: Row[] = [
    ['2024-01-02', 100, 101, 99, 100],
    ['2024-01-03', 101, 103, 100, 102],
    ['2024-01-04', 103, 104, 102, 103.5],
    ['2024-01-05', 104, 106, 103, 105],
    ['2024-01-08', 105, 106, 104, 105.5],
  ];
  // Enter 10 shares at the close of 01-02, exit at the close of 01-04.
  // Slippage 10 bps: buy at 101 × 1.001 = 101.101, sell at 104 × 0.999 = 103.896.
  // Commission 0.01/share + 1/order = 1.10, raised to the 1.50 minimum, on each fill.
  const result = run(
    rows,
    { '2024-01-02': long(), '2024-01-04': exit },
    { slippageBps: 10, commission: { perShare: 0.01, perOrder: 1, percent: 0, minimum: 1.5 } },
  );

  it('fills the entry at the next open with slippage and commission', () => {
    expect(result.fills[0]).toMatchObject({ side: 'buy', qty: 10, notional: 1011.01, commission: 1.5 });
    expect(result.fills[0]?.price).toBeCloseTo(101.101, 12);
    expect(result.fills[0]?.time).toBe(Date.parse('2024-01-03'));
  });

  it('fills the exit at the open after the exit decision', () => {
    expect(result.fills[1]).toMatchObject({ side: 'sell', qty: 10, notional: 1038.96, commission: 1.5 });
    expect(result.fills[1]?.price).toBeCloseTo(103.896, 12);
    expect(result.fills[1]?.time).toBe(Date.parse('2024-01-05'));
  });

  it('books the trade P&L net of both commissions', () => {
    // 1038.96 − 1011.01 − 1.50 − 1.50 = 24.95
    expect(result.trades).toHaveLength(1);
    expect(result.trades[0]).toMatchObject({ direction: 'long', qty: 10, pnl: 24.95, commission: 3 });
  });

  it('marks equity at every close', () => {
    // cash after entry: 10000 − 1011.01 − 1.50 = 8987.49
    expect(Array.from(result.equity.equity)).toEqual([10_000, 10_007.49, 10_022.49, 10_024.95, 10_024.95]);
    expect(Array.from(result.equity.inMarket)).toEqual([0, 1, 1, 0, 0]);
    expect(result.metrics.equityFinal).toBe(10_024.95);
    expect(result.metrics.trades).toBe(1);
  });
});

describe('intrabar rules', () => {
  const rows: Row[] = [
    ['2024-01-02', 100, 101, 99, 100],
    ['2024-01-03', 100, 102, 99, 101],
    ['2024-01-04', 100, 111, 94, 100],
    ['2024-01-05', 100, 101, 99, 100],
  ];

  it('a bracket whose stop and target fall in one bar exits at the stop', () => {
    const result = run(rows, { '2024-01-02': long({ stopLoss: 95, takeProfit: 110 }) });
    expect(result.trades[0]).toMatchObject({
      exitPrice: 95,
      exitTime: Date.parse('2024-01-04'),
      exitReason: 'stop-loss',
    });
    expect(result.trades[0]?.pnl).toBe(-50);
    const takeProfit = result.orders.find((o) => o.role === 'take-profit');
    expect(takeProfit).toMatchObject({ status: 'cancelled', reason: 'position closed' });
  });

  it('a take-profit alone fills at its limit', () => {
    const result = run(rows, { '2024-01-02': long({ takeProfit: 110 }) });
    expect(result.trades[0]).toMatchObject({ exitPrice: 110, exitReason: 'take-profit', pnl: 100 });
  });

  it('a gap through a stop fills at the open, not at the stop', () => {
    const gap: Row[] = [
      ['2024-01-02', 100, 101, 99, 100],
      ['2024-01-03', 100, 102, 99, 101],
      ['2024-01-04', 90, 92, 89, 91],
    ];
    const result = run(gap, { '2024-01-02': long({ stopLoss: 95 }) }, { slippageBps: 10 });
    // stop market order: the open 90 less 10 bps slippage
    expect(result.trades[0]).toMatchObject({ exitReason: 'stop-loss' });
    expect(result.trades[0]?.exitPrice).toBeCloseTo(89.91, 12);
  });

  it('a gap through a take-profit fills at the better open', () => {
    const gap: Row[] = [
      ['2024-01-02', 100, 101, 99, 100],
      ['2024-01-03', 100, 102, 99, 101],
      ['2024-01-04', 115, 116, 112, 113],
    ];
    const result = run(gap, { '2024-01-02': long({ stopLoss: 95, takeProfit: 110 }) });
    expect(result.trades[0]).toMatchObject({ exitPrice: 115, exitReason: 'take-profit' });
  });

  it('a stop is live on the bar of a market-on-open entry', () => {
    const result = run(rows, { '2024-01-03': long({ stopLoss: 97 }) });
    // entry at the 01-04 open (100); the same bar trades down to 94
    expect(result.trades[0]).toMatchObject({
      entryPrice: 100,
      exitPrice: 97,
      exitTime: Date.parse('2024-01-04'),
    });
  });

  it('short positions: a stop above, a target below', () => {
    const result = run(rows, { '2024-01-02': short({ stopLoss: 105, takeProfit: 95 }) });
    // 01-04 trades 94..111: both touched, the stop wins
    expect(result.trades[0]).toMatchObject({ direction: 'short', entryPrice: 100, exitPrice: 105, pnl: -50 });
  });
});

describe('entry order types', () => {
  const rows: Row[] = [
    ['2024-01-02', 100, 101, 99, 100],
    ['2024-01-03', 100, 104, 97, 103],
    ['2024-01-04', 103, 104, 102, 103],
  ];
  const entry = (order: NonNullable<(Intent & { action: 'enter' })['order']>) =>
    run(rows, { '2024-01-02': long({ order }) }).fills[0];

  it('limit buy fills at the limit when the low reaches it', () => {
    expect(entry({ type: 'limit', limitPrice: 98 })?.price).toBe(98);
  });
  it('limit buy fills at the open when the open is already below the limit', () => {
    expect(entry({ type: 'limit', limitPrice: 100.5 })?.price).toBe(100);
  });
  it('limit buy that is not reached expires at the end of its session', () => {
    const result = run(rows, { '2024-01-02': long({ order: { type: 'limit', limitPrice: 90 } }) });
    expect(result.fills).toHaveLength(0);
    expect(result.orders[0]).toMatchObject({ status: 'expired' });
  });
  it('stop buy fills at the stop when the high reaches it', () => {
    expect(entry({ type: 'stop', stopPrice: 102 })?.price).toBe(102);
  });
  it('stop buy gapped through fills at the open', () => {
    expect(entry({ type: 'stop', stopPrice: 99 })?.price).toBe(100);
  });
  it('stop-limit buy fills at the stop when the stop is within the limit', () => {
    expect(entry({ type: 'stop-limit', stopPrice: 102, limitPrice: 102.5 })?.price).toBe(102);
  });
  it('stop-limit buy with the limit below the stop fills at the limit if the bar comes back', () => {
    expect(entry({ type: 'stop-limit', stopPrice: 102, limitPrice: 98 })?.price).toBe(98);
  });
  it('stop-limit buy that never triggers expires', () => {
    const result = run(rows, {
      '2024-01-02': long({ order: { type: 'stop-limit', stopPrice: 110, limitPrice: 111 } }),
    });
    expect(result.orders[0]?.status).toBe('expired');
  });
  it('an intrabar entry arms its stop from the next bar', () => {
    const result = run(rows, {
      '2024-01-02': long({ order: { type: 'limit', limitPrice: 98 }, stopLoss: 97.5 }),
    });
    // the entry bar's low (97) is below the stop, but the order sequence inside the bar is unknown
    expect(result.trades[0]?.exitTime).toBeNull();
  });
});

describe('trailing stop', () => {
  it('ratchets with the best price and never loosens', () => {
    const rows: Row[] = [
      ['2024-01-02', 100, 101, 99, 100],
      ['2024-01-03', 100, 105, 99.5, 104], // entry at 100, trail 5 → 95, best 105 → 100
      ['2024-01-04', 104, 110, 103, 109], // best 110 → 105
      ['2024-01-05', 109, 109.5, 106, 107], // still above 105; best stays 110
      ['2024-01-08', 107, 108, 104, 104.5], // low 104 ≤ 105: out at 105
    ];
    const result = run(rows, { '2024-01-02': long({ trailingStop: { amount: 5 } }) });
    expect(result.trades[0]).toMatchObject({
      exitPrice: 105,
      exitReason: 'trailing-stop',
      exitTime: Date.parse('2024-01-08'),
    });
  });

  it('a percent trail on a short', () => {
    const rows: Row[] = [
      ['2024-01-02', 100, 101, 99, 100],
      ['2024-01-03', 100, 100.5, 90, 91], // short at 100, best 90 → stop 90 × 1.1 = 99
      ['2024-01-04', 95, 99.5, 94, 99], // high 99.5 ≥ 99
    ];
    const result = run(rows, { '2024-01-02': short({ trailingStop: { percent: 10 } }) });
    expect(result.trades[0]?.exitPrice).toBeCloseTo(99, 10);
    expect(result.trades[0]?.pnl).toBeCloseTo(10, 2);
  });
});

describe('positions, sizing and cash', () => {
  const rows: Row[] = [
    ['2024-01-02', 100, 101, 99, 100],
    ['2024-01-03', 100, 102, 99, 101],
    ['2024-01-04', 102, 103, 101, 102],
    ['2024-01-05', 103, 104, 102, 103],
  ];

  it('all-in buys as many whole shares as the cash at the fill buys, net of commission', () => {
    const result = run(
      rows,
      { '2024-01-02': long() },
      {
        sizing: { mode: 'all-in' },
        commission: { perShare: 0, perOrder: 5, percent: 0, minimum: 0 },
      },
    );
    // (10000 − 5) / 100 = 99.95 → 99 shares
    expect(result.fills[0]).toMatchObject({ qty: 99, price: 100 });
  });

  it('fraction sizing is fixed at the decision close and capped by max position', () => {
    const result = run(
      rows,
      { '2024-01-02': long() },
      { sizing: { mode: 'fraction', fraction: 0.5 }, maxPositionFraction: 0.2 },
    );
    // 0.5 × 10000 / 100 = 50, cap 0.2 × 10000 / 100 = 20
    expect(result.fills[0]?.qty).toBe(20);
    expect(result.skippedEntries[0]).toMatchObject({ requestedQty: 50, placedQty: 20 });
  });

  it('atr-risk sizing risks the fraction of equity to the stop', () => {
    const result = run(
      rows,
      { '2024-01-02': long({ stopLoss: 96 }) },
      { sizing: { mode: 'atr-risk', risk: 0.02 } },
    );
    // 0.02 × 10000 / (100 − 96) = 50 shares
    expect(result.fills[0]?.qty).toBe(50);
  });

  it('an entry the cash cannot pay for at the fill is rejected and recorded', () => {
    const gapUp: Row[] = [
      ['2024-01-02', 100, 101, 99, 100],
      ['2024-01-03', 120, 121, 119, 120],
    ];
    const result = run(gapUp, { '2024-01-02': long() }, { sizing: { mode: 'fraction', fraction: 1 } });
    expect(result.fills).toHaveLength(0);
    expect(result.orders[0]?.status).toBe('rejected');
    expect(result.skippedEntries[0]?.reason).toMatch(/insufficient buying power/);
  });

  it('stop and reverse: exit and opposite entry at the same open', () => {
    const result = run(rows, { '2024-01-02': long(), '2024-01-03': short() });
    expect(result.fills.map((f) => [f.side, f.qty, f.price])).toEqual([
      ['buy', 10, 100],
      ['sell', 10, 102],
      ['sell', 10, 102],
    ]);
    expect(result.trades[0]).toMatchObject({ direction: 'long', pnl: 20 });
    expect(result.trades[1]).toMatchObject({ direction: 'short', exitTime: null });
  });

  it('end of data: hold marks the open trade last; close sells at the last close', () => {
    const held = run(rows, { '2024-01-02': long() });
    expect(held.trades).toEqual([expect.objectContaining({ exitTime: null, exitPrice: null, pnl: 30 })]);
    expect(held.metrics.trades).toBe(0);
    const closed = run(rows, { '2024-01-02': long() }, { endOfData: 'close' });
    expect(closed.trades[0]).toMatchObject({ exitPrice: 103, exitReason: 'end-of-data', pnl: 30 });
    expect(closed.metrics.trades).toBe(1);
  });

  it('fractional shares on request', () => {
    const result = run(
      rows,
      { '2024-01-02': long() },
      { sizing: { mode: 'fraction', fraction: 0.333 }, fractional: true },
    );
    expect(result.fills[0]?.qty).toBeCloseTo(33.3, 6);
  });

  it('a portfolio shares one cash balance across symbols', () => {
    const a = series('AAA', rows);
    const b = series('BBB', rows);
    const result = runBacktest({
      series: [a, b],
      strategy: scripted({ '2024-01-02': [long(), long()] }, 2),
      params: {},
      options: { ...baseOptions, sizing: { mode: 'fraction', fraction: 0.6 } },
    });
    // AAA takes 60 shares (6000); BBB is capped by the 4000 left: 40 shares
    expect(result.fills.map((f) => [f.symbol, f.qty])).toEqual([
      ['AAA', 60],
      ['BBB', 40],
    ]);
  });
});

describe('sizing parity with the live step: decided at the close, blind to the fill', () => {
  const rows: Row[] = [
    ['2024-01-02', 100, 101, 99, 100],
    ['2024-01-03', 103, 104, 102, 103],
    ['2024-01-04', 103, 104, 102, 103],
  ];
  const entryQty = (
    sizing: BacktestOptions['sizing'],
    slippageBps: number,
    extra: Partial<BacktestOptions> = {},
  ) => run(rows, { '2024-01-02': long({ stopLoss: 95 }) }, { sizing, slippageBps, ...extra }).fills[0]?.qty;

  it.each([
    ['fixed', { mode: 'fixed', qty: 37 }, 37],
    ['fraction', { mode: 'fraction', fraction: 0.5 }, 50], // 0.5 × 10000 / close 100
    ['atr-risk', { mode: 'atr-risk', risk: 0.02 }, 40], // 0.02 × 10000 / (100 − 95)
  ] as const)(
    '%s: the quantity comes from the decision close, whatever the slippage or the gap',
    (_m, sizing, qty) => {
      for (const bps of [0, 5, 100]) expect(entryQty(sizing, bps)).toBe(qty);
    },
  );

  it('all-in is sized at the fill: what the cash buys at the slipped open', () => {
    expect(entryQty({ mode: 'all-in' }, 0)).toBe(Math.floor(10_000 / 103));
    expect(entryQty({ mode: 'all-in' }, 100)).toBe(Math.floor(10_000 / (103 * 1.01)));
  });
});

describe('opening positions (a shadow backtest of a later stretch)', () => {
  const rows: Row[] = [
    ['2024-01-02', 100, 101, 99, 100],
    ['2024-01-03', 101, 103, 100, 102],
    ['2024-01-04', 103, 104, 96, 97],
    ['2024-01-05', 97, 99, 96, 98],
  ];
  const opening = {
    symbol: 'TEST',
    side: 'long' as const,
    qty: 10,
    entryPrice: 95,
    entryTime: Date.parse('2023-12-28'),
    stop: 98,
  };

  it('starts from the position bought at the first close out of the starting equity, and its stop exits it', () => {
    const result = run(rows, {}, { openingPositions: [opening] });
    // Equity 10 000 at the first close (cash 9 000 + 10 × 100), 10 020 at the next, then the stop
    // at 98 fills on 01-04 (its range reaches it): cash 9 000 + 980.
    expect(Array.from(result.equity.equity)).toEqual([10_000, 10_020, 9_980, 9_980]);
    expect(result.fills).toEqual([expect.objectContaining({ side: 'sell', qty: 10, price: 98 })]);
    // The trade's P&L runs from the paper entry price.
    expect(result.trades[0]).toMatchObject({ qty: 10, entryPrice: 95, pnl: 30, exitReason: 'stop-loss' });
    expect(result.trades[0]?.entryTime).toBe(opening.entryTime);
  });

  it('its stop is not live on the first slot: that range belongs to the session before the stretch', () => {
    const low = run(
      [['2024-01-02', 100, 101, 90, 100], ...rows.slice(1)],
      {},
      { openingPositions: [opening] },
    );
    expect(low.fills[0]?.time).toBe(Date.parse('2024-01-04'));
  });

  it('the strategy exits it like any position it holds', () => {
    const result = run(rows, { '2024-01-03': exit }, { openingPositions: [{ ...opening, stop: 50 }] });
    expect(result.fills).toEqual([
      expect.objectContaining({ side: 'sell', qty: 10, time: Date.parse('2024-01-04') }),
    ]);
  });

  it('refuses an opening position without a bar or with a bad quantity', () => {
    expect(() => run(rows, {}, { openingPositions: [{ ...opening, symbol: 'NOPE' }] })).toThrow(/NOPE/);
    expect(() => run(rows, {}, { openingPositions: [{ ...opening, qty: 0 }] })).toThrow(/qty/);
  });
});
