import { describe, expect, it } from 'vitest';
import { runBacktest } from '../../../shared/core/backtest/engine.js';
import type { BacktestOptions } from '../../../shared/core/backtest/types.js';
import { riskRulesSchema } from '../../../shared/core/risk/rules.js';
import type { Intent } from '../../../shared/core/strategies/types.js';
import { baseOptions, type Row, scripted, series } from '../../helpers/series.js';

const long = (extra: Partial<Intent & { action: 'enter' }> = {}): Intent => ({
  action: 'enter',
  side: 'long',
  reason: 'test',
  ...extra,
});

/** Bars of range ±1 around the close: the true range is 2 while closes move by less than 1. */
function flat(days: number, from = 1, price = 100): Row[] {
  return Array.from({ length: days }, (_, i) => {
    const date = new Date(Date.UTC(2024, 0, from + i)).toISOString().slice(0, 10);
    return [date, price, price + 1, price - 1, price] as const;
  });
}

const withRisk = (overrides: Record<string, unknown> = {}): Partial<BacktestOptions> => ({
  initialCash: 100_000,
  sizing: { mode: 'all-in' },
  risk: riskRulesSchema.parse({ stops: { atrPeriod: 3, initialAtr: 2 }, ...overrides }),
});

const run = (rows: readonly Row[], script: Record<string, Intent>, options: Partial<BacktestOptions>) =>
  runBacktest({
    series: [series('TEST', rows)],
    strategy: scripted(script),
    params: {},
    options: { ...baseOptions, ...options },
  });

describe('the engine under the risk rules', () => {
  it('gives every entry a stop: the default k × ATR when the strategy has none', () => {
    const result = run(flat(8), { '2024-01-05': long() }, withRisk());
    // ATR(3) of bars with range 2 is 2: stop 100 − 2 × 2 = 96
    const stop = result.orders.find((o) => o.role === 'stop-loss');
    expect(stop?.stopPrice).toBe(96);
    // risk 2% × 100 000 / 4 = 500 shares = $50 000, capped at 20%: 200 shares
    expect(result.fills[0]?.qty).toBe(200);
    expect(result.risk?.reducedEntries[0]?.reasons).toEqual(['position cap 20% of equity']);
    expect(result.risk?.peakHeatPct).toBeCloseTo((200 * 4 * 100) / 100_000, 10);
  });

  it('refuses an entry while the ATR for its default stop is still warming up', () => {
    const result = run(flat(8), { '2024-01-02': long() }, withRisk());
    expect(result.fills).toHaveLength(0);
    expect(result.risk?.refusedEntries[0]?.reason).toMatch(/no stop/);
  });

  it('ratchets the stop from daily closes and fills at the moved level', () => {
    const rows: Row[] = [
      ...flat(5),
      ['2024-01-06', 100, 105, 99, 104], // entry filled at 100 on this open; close 104
      ['2024-01-07', 104, 108, 103, 107],
      ['2024-01-08', 107, 107.5, 100, 101], // trails to 107 − 3 × ATR; low 100 hits it
    ];
    const result = run(
      rows,
      { '2024-01-05': long() },
      withRisk({ stops: { atrPeriod: 3, initialAtr: 2, trailAtr: 1 } }),
    );
    const trade = result.trades[0];
    expect(trade?.exitReason).toBe('stop-loss');
    expect(trade?.exitPrice).toBeGreaterThan(100); // the initial stop was 96
    expect(result.risk?.stopMoves).toBeGreaterThan(0);
  });

  it('a daily-loss trip blocks entries that day; exits and stops go on', () => {
    const rows: Row[] = [
      ...flat(5),
      ['2024-01-06', 100, 101, 99, 100],
      ['2024-01-07', 100, 101, 60, 61], // the held position (bought at the 01-06 open) falls: daily loss
      ['2024-01-08', 61, 62, 60, 61],
      ['2024-01-09', 61, 62, 60, 61],
    ];
    const result = runBacktest({
      series: [series('AAA', rows), series('BBB', flat(9))],
      strategy: scripted(
        {
          '2024-01-05': [long({ stopLoss: 50 }), undefined],
          '2024-01-07': [{ action: 'exit', reason: 'test' }, long()],
          '2024-01-08': [undefined, long()],
        },
        2,
      ),
      params: {},
      options: {
        ...baseOptions,
        initialCash: 100_000,
        sizing: { mode: 'fraction', fraction: 0.2 },
        risk: riskRulesSchema.parse({
          stops: { atrPeriod: 3 },
          riskPerTrade: 0.5,
          dailyLossLimit: 0.05,
          maxDrawdown: 0.5,
        }),
      },
    });
    const risk = result.risk;
    expect(risk?.breakerEvents.map((e) => [e.breaker, e.action])).toEqual([['daily-loss', 'trip']]);
    expect(risk?.refusedEntries).toEqual([
      {
        time: Date.parse('2024-01-07'),
        symbol: 'BBB',
        reason: 'daily loss breaker tripped today (2024-01-07)',
      },
    ]);
    // the exit decided on the trip day still fills at the next open
    expect(result.trades[0]).toMatchObject({
      symbol: 'AAA',
      exitTime: Date.parse('2024-01-08'),
      exitReason: 'exit',
    });
    // the next day, entries are allowed again
    expect(result.fills.some((f) => f.symbol === 'BBB' && f.time === Date.parse('2024-01-09'))).toBe(true);
  });

  it('a drawdown trip halts entries until the cool-off reset, which the report lists', () => {
    const rows: Row[] = [
      ...flat(5),
      ['2024-01-06', 100, 101, 99, 100],
      ['2024-01-07', 100, 100, 40, 40],
      ...flat(8, 8, 40),
    ];
    const result = run(
      rows,
      {
        '2024-01-05': long({ stopLoss: 30 }),
        '2024-01-07': { action: 'exit', reason: 'test' },
        '2024-01-08': long(),
        '2024-01-10': long(),
        '2024-01-13': long(),
      },
      withRisk({
        maxDrawdown: 0.05,
        drawdownCoolOffDays: 4,
        riskPerTrade: 1,
        maxPositionFraction: 1,
        maxPortfolioHeat: 1,
      }),
    );
    const events = result.risk?.breakerEvents ?? [];
    expect(events.map((e) => [new Date(e.time).toISOString().slice(0, 10), e.breaker, e.action])).toEqual([
      ['2024-01-07', 'daily-loss', 'trip'],
      ['2024-01-07', 'drawdown', 'trip'],
      ['2024-01-11', 'drawdown', 'reset'],
    ]);
    expect(events[2]?.by).toBe('backtest cool-off');
    expect(result.risk?.refusedEntries.map((r) => new Date(r.time).toISOString().slice(0, 10))).toEqual([
      '2024-01-08',
      '2024-01-10',
    ]);
    expect(result.risk?.entryDecisions.map((d) => new Date(d.time).toISOString().slice(0, 10))).toEqual([
      '2024-01-05',
      '2024-01-13',
    ]);
  });

  it('flattens on a daily-loss trip when configured', () => {
    const rows: Row[] = [
      ...flat(5),
      ['2024-01-06', 100, 101, 99, 100],
      ['2024-01-07', 100, 100, 80, 80],
      ...flat(2, 8, 80),
    ];
    const result = run(
      rows,
      { '2024-01-05': long({ stopLoss: 50 }) },
      withRisk({ flattenOnDailyLoss: true, maxPositionFraction: 1, riskPerTrade: 0.5, maxPortfolioHeat: 1 }),
    );
    expect(result.trades[0]).toMatchObject({ exitTime: Date.parse('2024-01-08'), exitReason: 'exit' });
    expect(result.orders.find((o) => o.role === 'exit')?.reason).toBe('daily loss breaker: flatten');
  });

  it('without risk rules nothing is reported and nothing is added', () => {
    const result = run(flat(8), { '2024-01-02': long() }, { sizing: { mode: 'fixed', qty: 1 } });
    expect(result.risk).toBeUndefined();
    expect(result.orders.some((o) => o.role === 'stop-loss')).toBe(false);
  });
});
