import { describe, expect, it } from 'vitest';
import { retryAfterMs } from '../../../shared/adapters/coinbase/http.js';
import {
  candleSchema,
  fillSchema,
  productSchema,
  serverTimeSchema,
} from '../../../shared/adapters/coinbase/schemas.js';

const candle = {
  start: '1735689600',
  low: '90000',
  high: '95000',
  open: '91000',
  close: '94000',
  volume: '1234.5',
};
const fill = {
  entry_id: 'e1',
  trade_id: 't1',
  order_id: 'o1',
  trade_time: '2025-01-01T00:00:00Z',
  price: '94000.01',
  size: '0.01',
  commission: '5.64',
  product_id: 'BTC-USD',
  side: 'BUY',
  size_in_quote: false,
};
const product = {
  product_id: 'BTC-USD',
  price: '94000',
  base_increment: '0.00000001',
  quote_increment: '0.01',
  base_min_size: '0.00000001',
  quote_min_size: '1',
  status: 'online',
  trading_disabled: false,
};

describe('Coinbase answers are validated', () => {
  it('reads decimal strings as numbers', () => {
    expect(candleSchema.parse(candle)).toEqual({
      start: 1735689600,
      low: 90000,
      high: 95000,
      open: 91000,
      close: 94000,
      volume: 1234.5,
    });
    expect(fillSchema.parse(fill).size).toBe(0.01);
    expect(productSchema.parse({ ...product, price: '' }).price).toBeNull();
  });

  it('rejects NaN, non-finite, non-decimal and wrongly signed numbers, naming the field', () => {
    for (const bad of ['NaN', 'Infinity', '1e999', '', 'abc', '0x10']) {
      const result = candleSchema.safeParse({ ...candle, close: bad });
      expect(result.success, bad).toBe(false);
      expect(result.error?.issues[0]?.path).toEqual(['close']);
    }
    expect(fillSchema.safeParse({ ...fill, size: '-0.01' }).success).toBe(false);
    expect(fillSchema.safeParse({ ...fill, commission: '-1' }).success).toBe(false);
    expect(fillSchema.safeParse({ ...fill, price: '0' }).success).toBe(false);
    expect(productSchema.safeParse({ ...product, base_increment: '0' }).success).toBe(false);
    expect(candleSchema.safeParse({ ...candle, high: '80000' }).success).toBe(false); // high < low
    expect(candleSchema.safeParse({ ...candle, start: '-5' }).success).toBe(false);
  });

  it('reads the server time as one ISO instant; refuses one whose fields disagree or are not numbers', () => {
    const at = Date.parse('2026-01-05T01:05:00.123Z');
    const time = {
      iso: '2026-01-05T01:05:00.123Z',
      epochSeconds: String(at / 1000),
      epochMillis: String(at),
    };
    expect(serverTimeSchema.parse(time)).toBe('2026-01-05T01:05:00.123Z');
    expect(serverTimeSchema.parse({ ...time, iso: '2026-01-05T01:05:00.123+00:00' })).toBe(
      '2026-01-05T01:05:00.123Z',
    );
    // The iso in whole seconds (the exchange's documented example) or in nanoseconds: the same instant.
    expect(serverTimeSchema.parse({ ...time, iso: '2026-01-05T01:05:00Z' })).toBe('2026-01-05T01:05:00.123Z');
    expect(serverTimeSchema.parse({ ...time, iso: '2026-01-05T01:05:00.123456789Z' })).toBe(
      '2026-01-05T01:05:00.123Z',
    );
    for (const [bad, field] of [
      [{ ...time, iso: '2026-01-05T00:15:00.000Z' }, 'iso'],
      [{ ...time, iso: '2026-01-05T01:05:01.200Z' }, 'iso'],
      [{ ...time, epochMillis: 'NaN' }, 'epochMillis'],
      [{ ...time, epochMillis: '-1' }, 'epochMillis'],
      [{ ...time, epochMillis: '1e12' }, 'epochMillis'],
      [{ ...time, iso: 'soon' }, 'iso'],
    ] as const) {
      const parsed = serverTimeSchema.safeParse(bad);
      expect(parsed.success).toBe(false);
      expect(parsed.error?.issues[0]?.path).toEqual([field]);
    }
  });

  it('reads Retry-After as seconds or an HTTP date', () => {
    expect(retryAfterMs('2', 0)).toBe(2000);
    expect(retryAfterMs(null, 0)).toBeUndefined();
    expect(retryAfterMs('soon', 0)).toBeUndefined();
    expect(retryAfterMs('Thu, 01 Jan 2026 00:00:05 GMT', Date.parse('2026-01-01T00:00:00Z'))).toBe(5000);
  });
});
