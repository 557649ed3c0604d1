import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import * as z from 'zod';
import {
  AlpacaMarketData,
  type AlpacaMarketDataOptions,
  type MarketDataRetryEvent,
  sessionDateOf,
} from '../../shared/adapters/alpaca/market-data.js';
import { loadBarsCsv } from '../../shared/adapters/fs/bars.js';
import {
  type LocalAlpaca,
  newYorkMidnight,
  startLocalAlpaca,
} from '../../shared/adapters/local/alpaca-server.js';
import { dataCommand } from '../../shared/cli/data.js';
import {
  ConfigError,
  InsufficientDataError,
  MarketDataAuthError,
  MarketDataError,
  MarketDataResponseError,
  RateLimitedError,
} from '../../shared/core/errors.js';
import type { BarSeries } from '../../shared/core/market/types.js';

const KEY_ID = 'test-key-id';
const SECRET = 'test-secret-key';
const DATA_DIR = 'data';

let server: LocalAlpaca;

beforeAll(async () => {
  server = await startLocalAlpaca({ dataDir: DATA_DIR, port: 0, keyId: KEY_ID, secret: SECRET });
});

afterAll(async () => {
  await server.close();
});

afterEach(() => {
  server.clearFaults();
  server.resetRequests();
});

/** An adapter on the local server, with tiny backoffs so retries cost nothing. */
function client(options: Partial<AlpacaMarketDataOptions> = {}): AlpacaMarketData {
  return new AlpacaMarketData({
    keyId: KEY_ID,
    secret: SECRET,
    baseUrl: server.url,
    retry: { maxRetries: 3, baseDelayMs: 1, maxDelayMs: 20 },
    ...options,
  });
}

/** The bundled file's bars from `from` to `to` (inclusive), as the loader reads them. */
function expectedBars(symbol: string, from = '1900-01-01', to = '2999-12-31'): BarSeries {
  const all = loadBarsCsv(join(DATA_DIR, `${symbol}.csv`));
  const lo = Date.parse(from);
  const hi = Date.parse(to);
  const keep = Array.from(all.time, (t) => t >= lo && t <= hi);
  const pick = (a: Float64Array) => a.filter((_, i) => keep[i]);
  return {
    symbol,
    time: pick(all.time),
    open: pick(all.open),
    high: pick(all.high),
    low: pick(all.low),
    close: pick(all.close),
    volume: pick(all.volume),
    intraday: false,
  };
}

function expectSameBars(actual: BarSeries | undefined, expected: BarSeries): void {
  expect(actual).toBeDefined();
  const a = actual as BarSeries;
  expect(a.symbol).toBe(expected.symbol);
  expect(a.intraday).toBe(false);
  expect(a.time.length).toBeGreaterThan(0);
  expect(a.time).toEqual(expected.time);
  expect(a.open).toEqual(expected.open);
  expect(a.high).toEqual(expected.high);
  expect(a.low).toEqual(expected.low);
  expect(a.close).toEqual(expected.close);
  expect(a.volume).toEqual(expected.volume);
}

async function caught(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a rejection');
}

function sink() {
  let text = '';
  const stream = new Writable({
    write(chunk, _encoding, done) {
      text += String(chunk);
      done();
    },
  });
  return { stream, text: () => text };
}

describe('local Alpaca server', () => {
  it('stamps daily bars at midnight New York: 05:00Z under EST, 04:00Z under EDT', async () => {
    const response = await fetch(
      `${server.url}/v2/stocks/bars?symbols=SPY&timeframe=1Day&start=2021-03-11&end=2021-03-16T23:59:59Z`,
      { headers: { 'APCA-API-KEY-ID': KEY_ID, 'APCA-API-SECRET-KEY': SECRET } },
    );
    expect(response.status).toBe(200);
    const body = (await response.json()) as { bars: Record<string, { t: string }[]> };
    expect(body.bars.SPY?.map((b) => b.t)).toEqual([
      '2021-03-11T05:00:00Z',
      '2021-03-12T05:00:00Z',
      '2021-03-15T04:00:00Z',
      '2021-03-16T04:00:00Z',
    ]);
    expect(newYorkMidnight(Date.UTC(2021, 10, 5))).toBe(Date.parse('2021-11-05T04:00:00Z'));
    expect(newYorkMidnight(Date.UTC(2021, 10, 8))).toBe(Date.parse('2021-11-08T05:00:00Z'));
    expect(sessionDateOf('2021-11-08T05:00:00Z')).toBe(Date.UTC(2021, 10, 8));
    expect(sessionDateOf('2021-07-01T04:00:00Z')).toBe(Date.UTC(2021, 6, 1));
  });

  it('answers 401 without the key headers, and names neither key', async () => {
    const response = await fetch(`${server.url}/v2/stocks/bars?symbols=SPY&timeframe=1Day`, {
      headers: { 'APCA-API-KEY-ID': KEY_ID, 'APCA-API-SECRET-KEY': 'wrong-secret' },
    });
    expect(response.status).toBe(401);
    const text = await response.text();
    expect(text).not.toContain(KEY_ID);
    expect(text).not.toContain('wrong-secret');
  });
});

describe('AlpacaMarketData on the local server', () => {
  it('fetches many symbols in one request, in request order, equal to the CSV bars in every field', async () => {
    const symbols = ['SPY', 'QQQ', 'AAPL', 'MSFT'];
    const series = await client().getDailyBars({ symbols, from: '2021-01-01', to: '2026-12-31' });
    expect(series.map((s) => s.symbol)).toEqual(symbols);
    for (const [i, symbol] of symbols.entries()) expectSameBars(series[i], expectedBars(symbol));
    expect(server.requests).toBe(1);
    const query = server.requestLog[0]?.query;
    expect(query?.symbols?.split(',')).toEqual(symbols);
    expect(query).toMatchObject({ timeframe: '1Day', adjustment: 'all', feed: 'iex' });
  });

  it('keeps only the sessions from..to, both inclusive', async () => {
    const [spy] = await client().getDailyBars({ symbols: ['spy'], from: '2022-01-03', to: '2022-01-31' });
    expectSameBars(spy, expectedBars('SPY', '2022-01-03', '2022-01-31'));
    expect(spy?.time[0]).toBe(Date.UTC(2022, 0, 3));
    expect(spy?.time.at(-1)).toBe(Date.UTC(2022, 0, 31));
  });

  it('follows next_page_token across pages whose limit counts bars over all symbols', async () => {
    const limit = 40;
    const from = '2023-01-01';
    const to = '2023-06-30';
    const series = await client({ pageLimit: limit }).getDailyBars({ symbols: ['QQQ', 'AAPL'], from, to });
    const aapl = expectedBars('AAPL', from, to);
    const qqq = expectedBars('QQQ', from, to);
    expectSameBars(series[0], qqq);
    expectSameBars(series[1], aapl);
    const total = aapl.time.length + qqq.time.length;
    expect(total % limit).not.toBe(0);
    expect(server.requests).toBe(Math.ceil(total / limit));
    // A page that ends inside AAPL carries the rest of it and the start of QQQ.
    expect(aapl.time.length % limit).not.toBe(0);
    const tokens = server.requestLog.map((r) => r.query.page_token);
    expect(tokens[0]).toBeUndefined();
    expect(new Set(tokens.slice(1)).size).toBe(server.requests - 1);
  });

  it('gives an empty series for a symbol without bars', async () => {
    const [spy, none] = await client().getDailyBars({
      symbols: ['SPY', 'NODATA'],
      from: '2024-01-01',
      to: '2024-01-31',
    });
    expectSameBars(spy, expectedBars('SPY', '2024-01-01', '2024-01-31'));
    expect(none?.symbol).toBe('NODATA');
    expect(none?.time.length).toBe(0);
  });

  it('retries a 429, waiting what Retry-After says, then succeeds', async () => {
    server.injectFaults({ kind: 'status', status: 429, times: 2, retryAfterSeconds: 0 });
    const retries: MarketDataRetryEvent[] = [];
    const [spy] = await client({
      retry: { maxRetries: 3, baseDelayMs: 5 },
      onRetry: (e) => retries.push(e),
    }).getDailyBars({
      symbols: ['SPY'],
      from: '2021-01-01',
      to: '2021-03-31',
    });
    expectSameBars(spy, expectedBars('SPY', '2021-01-01', '2021-03-31'));
    expect(server.requestLog.map((r) => r.status)).toEqual([429, 429, 200]);
    // Retry-After: 0 overrides the backoff (which would be 4..12 ms here).
    expect(retries).toEqual([
      { attempt: 1, maxRetries: 3, delayMs: 0, status: 429 },
      { attempt: 2, maxRetries: 3, delayMs: 0, status: 429 },
    ]);
  });

  it('retries a 500 with backoff, then succeeds', async () => {
    server.injectFaults({ kind: 'status', status: 500 });
    const retries: MarketDataRetryEvent[] = [];
    const [qqq] = await client({ onRetry: (e) => retries.push(e) }).getDailyBars({
      symbols: ['QQQ'],
      from: '2021-01-01',
      to: '2021-03-31',
    });
    expectSameBars(qqq, expectedBars('QQQ', '2021-01-01', '2021-03-31'));
    expect(server.requestLog.map((r) => r.status)).toEqual([500, 200]);
    expect(retries.map((e) => e.status)).toEqual([500]);
  });

  it('gives up on a persistent 500 after the bounded retries with a MarketDataError naming the status', async () => {
    server.injectFaults({ kind: 'status', status: 500, times: 100 });
    const error = await caught(
      client().getDailyBars({ symbols: ['SPY'], from: '2021-01-01', to: '2021-01-31' }),
    );
    expect(error).toBeInstanceOf(MarketDataError);
    expect((error as MarketDataError).status).toBe(500);
    expect(error.message).toContain('HTTP 500 after 3 retries');
    expect(server.requests).toBe(4);
  });

  it('gives up on a persistent 429 with a RateLimitedError', async () => {
    server.injectFaults({ kind: 'status', status: 429, times: 100, retryAfterSeconds: 0 });
    const error = await caught(
      client().getDailyBars({ symbols: ['SPY'], from: '2021-01-01', to: '2021-01-31' }),
    );
    expect(error).toBeInstanceOf(RateLimitedError);
    expect(error.message).toContain('HTTP 429');
    expect(server.requests).toBe(4);
  });

  it('does not retry a 4xx other than 429', async () => {
    server.injectFaults({ kind: 'status', status: 422, message: 'invalid start', times: 100 });
    const error = await caught(
      client().getDailyBars({ symbols: ['SPY'], from: '2021-01-01', to: '2021-01-31' }),
    );
    expect(error).toBeInstanceOf(MarketDataError);
    expect((error as MarketDataError).status).toBe(422);
    expect(error.message).toContain('HTTP 422: invalid start');
    expect(server.requests).toBe(1);
  });

  it('reports refused keys as a MarketDataAuthError that names no key, without retrying', async () => {
    const badKey = 'not-the-key-id';
    const badSecret = 'not-the-secret-key';
    const error = await caught(
      client({ keyId: badKey, secret: badSecret }).getDailyBars({
        symbols: ['SPY'],
        from: '2021-01-01',
        to: '2021-01-31',
      }),
    );
    expect(error).toBeInstanceOf(MarketDataAuthError);
    expect((error as MarketDataAuthError).status).toBe(401);
    expect(error.message).toMatch(/HTTP 401.*key id and secret were refused/);
    for (const text of [error.message, String(error.stack)]) {
      expect(text).not.toContain(badKey);
      expect(text).not.toContain(badSecret);
    }
    expect(server.requests).toBe(1);
  });

  it('rejects a bar with a missing field: a zod error naming the field and the symbol', async () => {
    server.injectFaults({ kind: 'malformed-bar', symbol: 'QQQ', field: 'c' });
    const error = await caught(
      client().getDailyBars({ symbols: ['SPY', 'QQQ'], from: '2021-01-01', to: '2021-01-31' }),
    );
    expect(error).toBeInstanceOf(MarketDataResponseError);
    expect(error.cause).toBeInstanceOf(z.ZodError);
    expect(error.message).toContain('QQQ bar 0 (2021-01-11T05:00:00Z): field "c" (close)');
  });

  it('rejects a bar with a non-finite field', async () => {
    server.injectFaults({ kind: 'malformed-bar', symbol: 'SPY', field: 'v', json: '1e999' });
    const error = await caught(
      client().getDailyBars({ symbols: ['SPY'], from: '2021-01-01', to: '2021-01-31' }),
    );
    expect(error).toBeInstanceOf(MarketDataResponseError);
    expect(error.cause).toBeInstanceOf(z.ZodError);
    expect(error.message).toMatch(/SPY bar 0 .*field "v" \(volume\).*Infinity/);
  });

  it('turns a response slower than the timeout into a MarketDataError', async () => {
    server.injectFaults({ kind: 'delay', ms: 5_000 });
    const error = await caught(
      client({ timeoutMs: 50 }).getDailyBars({ symbols: ['SPY'], from: '2021-01-01', to: '2021-01-31' }),
    );
    expect(error).toBeInstanceOf(MarketDataError);
    expect(error.message).toContain('no answer within 50 ms');
  });
});

describe('quantshift data fetch', () => {
  const env = { APCA_API_KEY_ID: KEY_ID, APCA_API_SECRET_KEY: SECRET };
  let out: string;

  beforeAll(() => {
    out = mkdtempSync(join(tmpdir(), 'quantshift-data-'));
  });

  afterAll(() => {
    rmSync(out, { recursive: true, force: true });
  });

  function run(argv: string[], runEnv: Record<string, string | undefined> = env) {
    const stdout = sink();
    const stderr = sink();
    const result = dataCommand(argv, { stdout: stdout.stream, stderr: stderr.stream, env: runEnv });
    return { result, stdout: stdout.text, stderr: stderr.text };
  }

  it('writes one CSV per symbol that loadBarsCsv reads back identically', async () => {
    const dir = join(out, 'fetch');
    const { result, stderr } = run([
      'fetch',
      '--symbols',
      'SPY,qqq',
      '--from',
      '2021-01-01',
      '--to',
      '2025-12-31',
      '--out',
      dir,
      '--feed',
      'iex',
      '--base-url',
      server.url,
    ]);
    expect(await result).toBe(0);
    expect(readdirSync(dir).sort()).toEqual(['QQQ.csv', 'SPY.csv']);
    for (const symbol of ['SPY', 'QQQ']) {
      const path = join(dir, `${symbol}.csv`);
      expect(readFileSync(path, 'utf8').split('\n')[0]).toBe('Date,Open,High,Low,Close,Volume');
      expectSameBars(loadBarsCsv(path), expectedBars(symbol, '2021-01-01', '2025-12-31'));
      expect(stderr()).toMatch(
        new RegExp(`data: ${symbol}: \\d+ bars 2021-01-11\\.\\.2025-12-31 -> .*${symbol}\\.csv`),
      );
    }
    expect(stderr()).not.toContain(SECRET);
  });

  it('writes nothing when any symbol fails', async () => {
    const dir = join(out, 'partial');
    const { result } = run([
      'fetch',
      '--symbols',
      'SPY,NODATA',
      '--from',
      '2021-01-01',
      '--to',
      '2021-12-31',
      '--out',
      dir,
      '--base-url',
      server.url,
    ]);
    await expect(result).rejects.toThrow(InsufficientDataError);
    await expect(result).rejects.toThrow('no bars for NODATA');
    expect(existsSync(dir) ? readdirSync(dir) : []).toEqual([]);
  });

  it('writes nothing when the request fails', async () => {
    const dir = join(out, 'failing');
    server.injectFaults({ kind: 'status', status: 422, message: 'invalid feed' });
    const { result } = run([
      'fetch',
      '--symbols',
      'SPY,QQQ',
      '--from',
      '2021-01-01',
      '--to',
      '2021-01-31',
      '--out',
      dir,
      '--base-url',
      server.url,
    ]);
    await expect(result).rejects.toThrow(/HTTP 422: invalid feed/);
    expect(existsSync(dir) ? readdirSync(dir) : []).toEqual([]);
  });

  it('names both environment variables when the keys are missing', async () => {
    const { result } = run(
      ['fetch', '--symbols', 'SPY', '--from', '2021-01-01', '--base-url', server.url],
      {},
    );
    await expect(result).rejects.toThrow(ConfigError);
    await expect(result).rejects.toThrow(/APCA_API_KEY_ID and APCA_API_SECRET_KEY/);
    expect(server.requests).toBe(0);
  });

  it('prints help', async () => {
    const { result, stdout } = run(['--help']);
    expect(await result).toBe(0);
    expect(stdout()).toContain('quantshift data fetch');
    expect(stdout()).toContain('--base-url');
  });
});
