import { describe, expect, it } from 'vitest';
import { runBacktest } from '../../../shared/core/backtest/engine.js';
import { crossDirection, maCrossover } from '../../../shared/core/strategies/ma-crossover.js';
import type { Direction, Intent } from '../../../shared/core/strategies/types.js';
import { baseOptions, type Row, series } from '../../helpers/series.js';

const closes = [10, 10, 10, 9, 8, 9, 11, 12, 12, 11, 9, 8, 8, 9, 10];
const rows: Row[] = closes.map((c, i) => [
  `2024-02-${String(i + 1).padStart(2, '0')}`,
  c,
  c + 0.5,
  c - 0.5,
  c,
]);

function intents(
  params: Record<string, unknown>,
  position: 'flat' | 'long' | 'short' = 'flat',
): (Intent | string)[] {
  const { direction = 'long-only', ...rest } = params as { direction?: Direction };
  const instance = maCrossover.create(maCrossover.params.parse(rest), { direction });
  const s = series('X', rows);
  return closes.map((_, i) => {
    const intent = instance.onBar(
      {
        time: s.time[i] as number,
        open: s.open[i] as number,
        high: s.high[i] as number,
        low: s.low[i] as number,
        close: s.close[i] as number,
        volume: 1,
      },
      { position },
    );
    return intent.action === 'hold' ? '-' : intent;
  });
}

describe('crossDirection', () => {
  it('needs a strict cross: fast[t-1] < slow[t-1] and fast[t] > slow[t]', () => {
    expect(crossDirection(1, 2, 3, 2)).toBe(1);
    expect(crossDirection(3, 2, 1, 2)).toBe(-1);
    expect(crossDirection(2, 2, 3, 2)).toBe(0); // touching before is not a cross
    expect(crossDirection(1, 2, 2, 2)).toBe(0); // touching after is not a cross
    expect(crossDirection(Number.NaN, 2, 3, 2)).toBe(0);
  });
});

describe('ma-crossover', () => {
  // fast = price (period 1), slow = SMA(3):
  // t:      0   1   2     3     4     5     6     7     8     9     10    11    12    13    14
  // close: 10  10  10     9     8     9    11    12    12    11     9     8     8     9    10
  // sma3:   -   -  10  9.67  9.00  8.67  9.33 10.67 11.67 11.67 10.67  9.33  8.33  8.33  9.00
  // cross:                -           up                    down                    up
  // (t=3 is no cross: at t=2 the price equals the average, and a cross must be strict on both bars)
  it('enters long on a cross up and exits on a cross down (long-only)', () => {
    const flat = intents({ fast: 1, slow: 3 });
    expect(flat[3]).toBe('-');
    expect(flat[9]).toBe('-'); // cross down while flat: nothing in long-only
    expect(flat[5]).toMatchObject({ action: 'enter', side: 'long' });
    expect(flat[13]).toMatchObject({ action: 'enter', side: 'long' });
    expect(flat.filter((x) => x !== '-')).toHaveLength(2);
    const held = intents({ fast: 1, slow: 3 }, 'long');
    expect(held[9]).toMatchObject({ action: 'exit', reason: 'cross down' });
    expect(held.filter((x) => x !== '-')).toHaveLength(1);
  });

  it('reverses in long-short', () => {
    const flat = intents({ fast: 1, slow: 3, direction: 'long-short' });
    expect(flat[5]).toMatchObject({ action: 'enter', side: 'long' });
    expect(flat[9]).toMatchObject({ action: 'enter', side: 'short' });
    expect(flat[13]).toMatchObject({ action: 'enter', side: 'long' });
  });

  it('puts the stop k × ATR from the close and holds while the ATR warms up', () => {
    const out = intents({ fast: 1, slow: 3, atrStop: 2, atrPeriod: 3 });
    // bars are close ± 0.5; true ranges TR1..TR5 = 1, 1, 1.5, 1.5, 1.5
    // ATR3 = (1 + 1 + 1.5) / 3 = 7/6; ATR4 = (7/6 × 2 + 1.5) / 3; ATR5 = (ATR4 × 2 + 1.5) / 3
    const atr4 = ((7 / 6) * 2 + 1.5) / 3;
    const atr5 = (atr4 * 2 + 1.5) / 3;
    const entry = out[5] as Intent & { action: 'enter' };
    expect(entry).toMatchObject({ action: 'enter', side: 'long' });
    expect(entry.atr).toBeCloseTo(atr5, 12);
    expect(entry.stopLoss).toBeCloseTo(9 - 2 * atr5, 12);
    const early = intents({ fast: 1, slow: 2, atrStop: 2, atrPeriod: 10 });
    expect(early.slice(0, 10).every((x) => x === '-')).toBe(true); // crosses before the ATR exists are not taken
  });

  it('refuses fast >= slow with a named parameter', () => {
    const parsed = maCrossover.params.safeParse({ fast: 30, slow: 10 });
    expect(parsed.success).toBe(false);
    expect(parsed.error?.issues[0]?.path).toEqual(['fast']);
  });

  it('trades the crosses in a backtest: fills at the next open', () => {
    const result = runBacktest({
      series: [series('X', rows)],
      strategy: maCrossover,
      params: { fast: 1, slow: 3 },
      options: { ...baseOptions, sizing: { mode: 'fixed', qty: 100 } },
    });
    expect(result.trades.map((t) => [t.entryPrice, t.exitPrice])).toEqual([
      [11, 9], // cross up at t=5 → buy the t=6 open; cross down at t=9 → sell the t=10 open
      [10, null],
    ]);
  });
});
