import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../shared/core/config/schema.js';
import {
  assertLiveConfig,
  beforeOpgCutoff,
  clientOrderId,
  hardLimitsSchema,
  hardLimitViolations,
  newYorkTime,
  orderTagOf,
  sleeveSetTag,
} from '../../../shared/core/live/orders.js';

describe('client order ids', () => {
  const intent = {
    stage: 'paper',
    strategy: 'ma-crossover-atr',
    symbol: 'SPY',
    date: '2024-03-08',
    purpose: 'entry' as const,
  };
  it('are deterministic per intent and differ between intents', () => {
    expect(clientOrderId(intent)).toBe(clientOrderId({ ...intent }));
    expect(clientOrderId(intent)).toMatch(/^qs-[0-9a-f]{8}-SPY-20240308-entry$/);
    const others = [
      { ...intent, stage: 'live' },
      { ...intent, strategy: 'other' },
      { ...intent, symbol: 'QQQ' },
      { ...intent, date: '2024-03-11' },
      { ...intent, purpose: 'exit' as const },
      { ...intent, sequence: 1 },
    ].map(clientOrderId);
    expect(new Set([clientOrderId(intent), ...others]).size).toBe(7);
    expect(Math.max(...others.map((id) => id.length))).toBeLessThanOrEqual(64);
  });

  it('carry the tag of the sleeve set: stable, order-free, the one sleeve of a single-strategy config unchanged', () => {
    // A single-strategy config is one sleeve named after the config: its ids are the ones it always had.
    expect(clientOrderId({ ...intent, sleeves: ['ma-crossover-atr'] })).toBe(clientOrderId(intent));
    expect(clientOrderId(intent)).toBe(
      `qs-${sleeveSetTag('paper', ['ma-crossover-atr'])}-SPY-20240308-entry`,
    );
    const net = clientOrderId({ ...intent, sleeves: ['trend', 'rsi', 'bollinger'] });
    expect(net).toBe(clientOrderId({ ...intent, sleeves: ['bollinger', 'trend', 'rsi', 'rsi'] }));
    expect(net).not.toBe(clientOrderId({ ...intent, sleeves: ['trend', 'rsi'] }));
    expect(net).not.toBe(clientOrderId({ ...intent, stage: 'live', sleeves: ['trend', 'rsi', 'bollinger'] }));
    expect(net).toMatch(/^qs-[0-9a-f]{8}-SPY-20240308-entry$/);
    expect(orderTagOf(net)).toBe(sleeveSetTag('paper', ['rsi', 'trend', 'bollinger']));
    expect(orderTagOf('someone-else-SPY')).toBeNull();
    const long = clientOrderId({ ...intent, symbol: 'ABCDEFGHIJ', purpose: 'flatten', sequence: 123456 });
    expect(long.length).toBeLessThanOrEqual(64);
    expect(() => clientOrderId({ ...intent, sleeves: [] })).toThrow(/no sleeve/);
  });
});

describe('pre-trade hard limits', () => {
  const limits = hardLimitsSchema.parse({
    maxOrderNotional: 10_000,
    maxOrderQty: 100,
    priceCollarPct: 0.05,
    maxOrdersPerDay: 3,
  });
  it('pass an order within every limit', () => {
    expect(
      hardLimitViolations({ symbol: 'SPY', qty: 10, referencePrice: 500, stopPrice: 480 }, 0, limits),
    ).toEqual([]);
  });
  it('name every limit an order breaks', () => {
    const violations = hardLimitViolations(
      { symbol: 'SPY', qty: 150, referencePrice: 100, limitPrice: 120 },
      3,
      limits,
    );
    expect(violations).toEqual([
      'quantity 150 exceeds the 100-share limit',
      'notional $15000.00 exceeds the $10000 limit',
      'limit price 120 is outside the 5% collar around the last close 100',
      '3 orders today already: the limit is 3',
    ]);
    expect(
      hardLimitViolations({ symbol: 'SPY', qty: Number.NaN, referencePrice: 0 }, 0, limits),
    ).toHaveLength(2);
  });
});

describe('live configuration', () => {
  const config = parseConfig(readFileSync('config/equity-strategy.yaml', 'utf8'), 'cfg');
  it('refuses long-short for the paper and live stages', () => {
    expect(() => assertLiveConfig(config, 'live')).not.toThrow();
    const single = config.strategy as NonNullable<typeof config.strategy>;
    const shorting = { ...config, strategy: { ...single, direction: 'long-short' as const } };
    expect(() => assertLiveConfig(shorting, 'live')).toThrow(
      /strategy\.direction: long-short is refused for the live stage/,
    );
  });
});

describe('New York time and the market-on-open cutoff', () => {
  it('converts across daylight saving time', () => {
    expect(newYorkTime('2024-01-05T14:27:59Z')).toEqual({ date: '2024-01-05', time: '09:27:59' });
    expect(newYorkTime('2024-07-05T13:27:59Z')).toEqual({ date: '2024-07-05', time: '09:27:59' });
    expect(newYorkTime('2024-03-08T03:00:00Z')).toEqual({ date: '2024-03-07', time: '22:00:00' });
  });
  it('allows opg orders only before 09:28 New York on the trading day', () => {
    expect(beforeOpgCutoff('2024-01-05T14:15:00Z', '2024-01-05')).toBe(true);
    expect(beforeOpgCutoff('2024-01-05T14:28:00Z', '2024-01-05')).toBe(false);
    expect(beforeOpgCutoff('2024-07-05T13:27:00Z', '2024-07-05')).toBe(true);
    expect(beforeOpgCutoff('2024-07-05T13:29:00Z', '2024-07-05')).toBe(false);
    expect(beforeOpgCutoff('2024-01-04T22:00:00Z', '2024-01-05')).toBe(true);
    expect(beforeOpgCutoff('2024-01-06T14:00:00Z', '2024-01-05')).toBe(false);
  });
});

describe('newYorkToUtc', () => {
  it('converts New York wall-clock times to UTC across daylight saving time', async () => {
    const { newYorkToUtc } = await import('../../../shared/core/live/orders.js');
    expect(newYorkToUtc('2024-01-05', '09:30')).toBe('2024-01-05T14:30:00.000Z');
    expect(newYorkToUtc('2024-07-05', '09:30')).toBe('2024-07-05T13:30:00.000Z');
    expect(newYorkToUtc('2024-11-29', '13:00')).toBe('2024-11-29T18:00:00.000Z');
    expect(newYorkToUtc('2024-03-11', '16:00')).toBe('2024-03-11T20:00:00.000Z');
  });
});
