import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { dryRunRecordSchema, fundingRecordSchema } from '../../../shared/adapters/dynamodb/crypto-records.js';
import { parseConfig } from '../../../shared/core/config/schema.js';
import { ConfigError } from '../../../shared/core/errors.js';
import { cryptoCalendar } from '../../../shared/core/market/crypto-calendar.js';
import type { IntentRecord } from '../../../shared/core/ports/state-store.js';
import { sessionDate, sessionTimeToUtc } from '../../../shared/live/context.js';
import { dryRunRecord } from '../../../shared/live/dry-run.js';
import type { FundingResult } from '../../../shared/live/funding-monitor.js';
import { CRYPTO_METRICS, fundingMetricPoints } from '../../../shared/runtime/crypto-metrics.js';

const crypto = { calendar: cryptoCalendar };
const equity = {};

describe('session dates by calendar', () => {
  it('the crypto bot counts UTC days; the equity bot New York dates', () => {
    // Saturday 00:05 UTC is still Friday evening in New York.
    expect(sessionDate(crypto, '2026-01-03T00:05:00Z')).toBe('2026-01-03');
    expect(sessionDate(equity, '2026-01-03T00:05:00Z')).toBe('2026-01-02');
    expect(sessionDate(crypto, '2026-01-03T23:59:59.999Z')).toBe('2026-01-03');
  });

  it('session times: UTC wall clock for crypto (24:00 is the next midnight), New York for equities', () => {
    expect(sessionTimeToUtc(crypto, '2026-01-03', '00:00')).toBe('2026-01-03T00:00:00.000Z');
    expect(sessionTimeToUtc(crypto, '2026-01-03', '24:00')).toBe('2026-01-04T00:00:00.000Z');
    expect(sessionTimeToUtc(equity, '2026-01-05', '09:30')).toBe('2026-01-05T14:30:00.000Z');
    expect(sessionTimeToUtc(equity, '2026-07-06', '09:30')).toBe('2026-07-06T13:30:00.000Z');
  });

  it('every instant falls in the UTC session its crypto session date names', () => {
    fc.assert(
      fc.property(fc.integer({ min: Date.UTC(2015, 0, 1), max: Date.UTC(2035, 0, 1) }), (ms) => {
        const iso = new Date(ms).toISOString();
        const day = sessionDate(crypto, iso);
        const open = Date.parse(sessionTimeToUtc(crypto, day, '00:00'));
        const close = Date.parse(sessionTimeToUtc(crypto, day, '24:00'));
        return open <= ms && ms < close && close - open === 86_400_000;
      }),
    );
  });
});

const intent = (side: 'buy' | 'sell'): IntentRecord => ({
  clientOrderId: `qs-x-ETH-USD-20260105-${side === 'buy' ? 'entry' : 'exit'}`,
  date: '2026-01-05',
  strategy: 's',
  symbol: 'ETH-USD',
  purpose: side === 'buy' ? 'entry' : 'exit',
  side,
  qty: 1.5,
  type: 'market',
  timeInForce: 'ioc',
  referencePrice: 3000,
  status: 'recorded',
  filledQty: 0,
  configHash: 'h',
  gitCommit: 'c',
  createdAt: '2026-01-05T00:10:00Z',
  updatedAt: '2026-01-05T00:10:00Z',
});
const quote = {
  symbol: 'ETH-USD',
  bid: 2999.5,
  ask: 3000.5,
  bidSize: 10,
  askSize: 10,
  time: '2026-01-05T00:15:00.000Z',
};

describe('dry-run records', () => {
  it('a buy would pay the ask, a sell get the bid; the spread in bps of the mid', () => {
    const buy = dryRunRecord(intent('buy'), quote, '2026-01-05T00:15:00Z');
    expect(buy).toMatchObject({ wouldPay: 3000.5, bid: 2999.5, ask: 3000.5, spreadBps: 3.33, qty: 1.5 });
    expect(dryRunRecord(intent('sell'), quote, '2026-01-05T00:15:00Z').wouldPay).toBe(2999.5);
    expect(dryRunRecordSchema.safeParse(buy).success).toBe(true);
  });

  it('the schema refuses a crossed book, a non-positive or non-finite price, a bad date', () => {
    const buy = dryRunRecord(intent('buy'), quote, '2026-01-05T00:15:00Z');
    expect(dryRunRecordSchema.safeParse({ ...buy, bid: 3001 }).success).toBe(false);
    expect(dryRunRecordSchema.safeParse({ ...buy, ask: Number.NaN }).success).toBe(false);
    expect(dryRunRecordSchema.safeParse({ ...buy, qty: 0 }).success).toBe(false);
    expect(dryRunRecordSchema.safeParse({ ...buy, date: '2026-02-30' }).success).toBe(false);
  });
});

describe('funding records and metrics', () => {
  const record = {
    productId: 'BIP-20DEC30-CDE',
    underlying: 'BTC',
    rate: -0.00002,
    time: '2026-01-05T01:00:00Z',
    recordedAt: '2026-01-05T01:05:00Z',
  };
  it('a rate is a finite fraction of either sign, at most 100% a period', () => {
    expect(fundingRecordSchema.safeParse(record).success).toBe(true);
    for (const rate of [Number.NaN, Number.POSITIVE_INFINITY, 1.5, -2])
      expect(fundingRecordSchema.safeParse({ ...record, rate }).success).toBe(false);
  });

  it('emits the rate in percent per underlying for new periods only, and the alert counts', () => {
    const result: FundingResult = {
      scheduledTime: '2026-01-05T01:05:00Z',
      threshold: 0.0001,
      missing: ['SOL'],
      readings: [
        {
          ...record,
          status: 'recorded',
          alerts: [{ kind: 'sign-flip', productId: record.productId, rate: -0.00002, message: '' }],
        },
        { productId: 'ETP', underlying: 'ETH', rate: 0.0003, time: record.time, status: 'seen', alerts: [] },
      ],
    };
    const { counts, rates } = fundingMetricPoints(result);
    expect(rates).toEqual([
      { underlying: 'BTC', point: { name: CRYPTO_METRICS.fundingRatePct, unit: 'None', value: -0.002 } },
    ]);
    expect(Object.fromEntries(counts.map((p) => [p.name, p.value]))).toEqual({
      [CRYPTO_METRICS.fundingReadings]: 1,
      [CRYPTO_METRICS.fundingThresholdAlerts]: 0,
      [CRYPTO_METRICS.fundingSignFlips]: 1,
      [CRYPTO_METRICS.fundingMissing]: 1,
    });
  });
});

describe('the funding config block', () => {
  const cryptoYaml = readFileSync('config/crypto-strategy.yaml', 'utf8');
  it('is read from the crypto config with its defaults', () => {
    expect(parseConfig(cryptoYaml, 'c.yaml').funding).toEqual({
      threshold: 0.0001,
      underlyings: ['BTC', 'ETH'],
    });
    const defaults = cryptoYaml.replace(
      /funding:\n {2}threshold: .*\n {2}underlyings: .*\n/,
      'funding: {}\n',
    );
    expect(parseConfig(defaults, 'c.yaml').funding).toEqual({
      threshold: 0.0001,
      underlyings: ['BTC', 'ETH'],
    });
  });

  it('refuses a threshold out of (0, 0.01], a bad underlying, and the block on an equity config', () => {
    expect(() => parseConfig(cryptoYaml.replace('threshold: 0.0001', 'threshold: 0'), 'c.yaml')).toThrow(
      /c\.yaml: funding\.threshold/,
    );
    expect(() => parseConfig(cryptoYaml.replace('threshold: 0.0001', 'threshold: .nan'), 'c.yaml')).toThrow(
      /funding\.threshold/,
    );
    expect(() =>
      parseConfig(cryptoYaml.replace('underlyings: [BTC, ETH]', 'underlyings: [BTC-USD]'), 'c.yaml'),
    ).toThrow(/funding\.underlyings\.0/);
    const equityYaml = `${readFileSync('config/equity-strategy.yaml', 'utf8')}\nfunding:\n  threshold: 0.001\n`;
    expect(() => parseConfig(equityYaml, 'e.yaml')).toThrow(ConfigError);
    expect(() => parseConfig(equityYaml, 'e.yaml')).toThrow(
      /e\.yaml: funding: funding-rate monitoring is for the crypto bot/,
    );
  });
});
