import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../shared/core/config/schema.js';
import {
  beforeIocCutoff,
  DEFAULT_STOP_LIMIT_DISTANCE,
  isAtOpenOrder,
  orderStyle,
  stopLimitPrice,
} from '../../../shared/core/live/order-style.js';
import { cryptoCalendar } from '../../../shared/core/market/crypto-calendar.js';
import { orderWindowClosed } from '../../../shared/live/submit.js';

const equity = parseConfig(readFileSync('config/equity-strategy.yaml', 'utf8'), 'equity-strategy.yaml');
const cryptoYaml = readFileSync('config/crypto-strategy.yaml', 'utf8');
const crypto = parseConfig(cryptoYaml, 'crypto-strategy.yaml');

describe('the order style by asset class (one place)', () => {
  it('equity: market-on-open entries and exits, stop-market GTC stops, market day exits in session', () => {
    const style = orderStyle(equity);
    expect(style.atOpen).toEqual({ type: 'market', timeInForce: 'opg' });
    expect(style.immediate).toEqual({ type: 'market', timeInForce: 'day' });
    expect(style.stop(97.5, 'sell')).toEqual({ type: 'stop', timeInForce: 'gtc', stopPrice: 97.5 });
    // The 09:28 New York cutoff (14:28 UTC in winter).
    expect(style.beforeCutoff('2024-01-08T14:27:59Z', '2024-01-08')).toBe(true);
    expect(style.beforeCutoff('2024-01-08T14:28:00Z', '2024-01-08')).toBe(false);
    expect(style.cutoffLabel).toBe('the 09:28 market-on-open cutoff');
  });

  it('crypto: market IOC entries and exits, stop-limit GTC stops with the limit the configured distance beyond', () => {
    expect(crypto.live.stopLimitDistance).toBe(0.02);
    const style = orderStyle(crypto);
    expect(style.atOpen).toEqual({ type: 'market', timeInForce: 'ioc' });
    expect(style.immediate).toEqual({ type: 'market', timeInForce: 'ioc' });
    // A sell stop at 100 has its limit 2% below, a buy stop's 2% above, in whole cents away from the market.
    expect(style.stop(100, 'sell')).toEqual({
      type: 'stop_limit',
      timeInForce: 'gtc',
      stopPrice: 100,
      limitPrice: 98,
    });
    expect(style.stop(100, 'buy')).toMatchObject({ limitPrice: 102 });
    expect(stopLimitPrice(93_456.78, 'sell', 0.02)).toBe(91_587.64);
    expect(stopLimitPrice(1.23, 'buy', 0.05)).toBe(1.3);
    const wider = parseConfig(cryptoYaml.replace('stopLimitDistance: 0.02', 'stopLimitDistance: 0.05'), 'c');
    expect(orderStyle(wider).stop(100, 'sell').limitPrice).toBe(95);
    const absent = parseConfig(cryptoYaml.replace(/^ {2}stopLimitDistance: .*$/m, ''), 'c');
    expect(absent.live.stopLimitDistance).toBeUndefined();
    expect(orderStyle(absent).stop(100, 'sell').limitPrice).toBe(100 * (1 - DEFAULT_STOP_LIMIT_DISTANCE));
  });

  it("an order decided at the close is the style's at-open kind: equity's market-on-open, crypto's market IOC; no stop, limit or other time in force", () => {
    const kinds = [
      { type: 'market', timeInForce: 'opg' },
      { type: 'market', timeInForce: 'ioc' },
      { type: 'market', timeInForce: 'day' },
      { type: 'limit', timeInForce: 'opg' },
      { type: 'limit', timeInForce: 'ioc' },
      { type: 'stop', timeInForce: 'gtc' },
      { type: 'stop_limit', timeInForce: 'gtc' },
    ] as const;
    const atOpen = (config: typeof equity) =>
      kinds.filter((k) => isAtOpenOrder(orderStyle(config), k)).map((k) => `${k.type} ${k.timeInForce}`);
    expect(atOpen(equity)).toEqual(['market opg']);
    expect(atOpen(crypto)).toEqual(['market ioc']);
  });

  it("a crypto stop-limit's limit is always beyond its stop, by at most the distance plus a cent", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 10_000_000 }).map((c) => c / 100),
        fc.double({ min: 0.001, max: 0.2, noNaN: true }),
        fc.constantFrom('buy' as const, 'sell' as const),
        (stop, distance, side) => {
          const limit = stopLimitPrice(stop, side, distance);
          expect(Math.round(limit * 100)).toBeCloseTo(limit * 100, 6);
          if (side === 'sell') {
            expect(limit).toBeLessThan(stop);
            expect(limit).toBeGreaterThanOrEqual(stop * (1 - distance) - 0.0100001);
          } else {
            expect(limit).toBeGreaterThan(stop);
            expect(limit).toBeLessThanOrEqual(stop * (1 + distance) + 0.0100001);
          }
        },
      ),
    );
  });

  it('crypto orders of the daily close go out until 01:00 UTC of their UTC day, never later', () => {
    const style = orderStyle(crypto);
    expect(style.beforeCutoff('2026-01-04T23:59:00Z', '2026-01-05')).toBe(true);
    expect(style.beforeCutoff('2026-01-05T00:15:00Z', '2026-01-05')).toBe(true);
    expect(beforeIocCutoff('2026-01-05T00:59:59.999Z', '2026-01-05')).toBe(true);
    expect(beforeIocCutoff('2026-01-05T01:00:00Z', '2026-01-05')).toBe(false);
    expect(beforeIocCutoff('2026-01-06T00:10:00Z', '2026-01-05')).toBe(false);
    // A Saturday is a session like any other.
    expect(beforeIocCutoff('2026-01-10T00:15:00Z', '2026-01-10')).toBe(true);
    expect(style.cutoffLabel).toBe('the 01:00 UTC cutoff of the daily close orders');
  });

  it('an IOC intent claimed but never sent is over at the cutoff; opg and day windows are unchanged', () => {
    const ioc = { date: '2026-01-05', timeInForce: 'ioc' as const };
    const utc = { calendar: cryptoCalendar };
    expect(orderWindowClosed(utc, ioc, undefined, '2026-01-05T00:20:00Z')).toBe(false);
    expect(orderWindowClosed(utc, ioc, undefined, '2026-01-05T01:00:00Z')).toBe(true);
    const opg = { date: '2024-01-08', timeInForce: 'opg' as const };
    expect(orderWindowClosed({}, opg, undefined, '2024-01-08T14:27:00Z')).toBe(false);
    expect(orderWindowClosed({}, opg, undefined, '2024-01-08T14:28:00Z')).toBe(true);
    expect(
      orderWindowClosed({}, { date: '2024-01-08', timeInForce: 'day' }, undefined, '2024-01-08T18:00:00Z'),
    ).toBe(false);
  });

  it("a non-IOC order's day is the bot's session date: the UTC day on the crypto bot, New York's on the equity bot", () => {
    // A GTC/day intent of UTC day 2026-01-05, looked at 2026-01-06 02:00 UTC (still the 5th in New York).
    const gtc = { date: '2026-01-05', timeInForce: 'gtc' as const };
    const session = {
      date: '2026-01-05',
      isOpen: true,
      openAt: '2026-01-05T00:00:00.000Z',
      closeAt: '2026-01-06T00:00:00.000Z',
      earlyClose: false,
      checkedAt: '2026-01-05T00:05:00.000Z',
    };
    const later = '2026-01-06T02:00:00Z';
    expect(orderWindowClosed({ calendar: cryptoCalendar }, gtc, undefined, later)).toBe(true);
    // Under New York dates the day is not over yet (and no session record of the day says closed).
    expect(orderWindowClosed({}, gtc, undefined, later)).toBe(false);
    // Within the UTC day it is open, and the session's close ends it.
    expect(orderWindowClosed({ calendar: cryptoCalendar }, gtc, session, '2026-01-05T23:59:00Z')).toBe(false);
    expect(orderWindowClosed({ calendar: cryptoCalendar }, gtc, session, '2026-01-06T00:00:00Z')).toBe(true);
  });

  it('the config refuses a stop-limit distance out of (0, 0.2] and the key on an equity config', () => {
    for (const bad of ['0', '-0.01', '0.25', '.nan']) {
      expect(() =>
        parseConfig(cryptoYaml.replace('stopLimitDistance: 0.02', `stopLimitDistance: ${bad}`), 'c.yaml'),
      ).toThrow(/live\.stopLimitDistance/);
    }
    const equityYaml = readFileSync('config/equity-strategy.yaml', 'utf8').replace(
      /^live:\n/m,
      'live:\n  stopLimitDistance: 0.02\n',
    );
    expect(() => parseConfig(equityYaml, 'e.yaml')).toThrow(/live\.stopLimitDistance.*crypto/);
  });
});
