/**
 * The {@link MarketData} port on Alpaca's historical stock bars endpoint (`GET /v2/stocks/bars`),
 * through the official SDK v4's raw `marketData.StockApi` class. The SDK carries the transport:
 * the base URL (`basePath`), the key headers, retries with backoff (Retry-After honoured), the
 * per-attempt timeout and client-side rate limiting. This module adds what the port promises:
 * many symbols per request, every page followed, every response validated with zod, bars turned
 * into daily {@link BarSeries}, and each failure mapped to one `MarketDataError` class.
 */
import { ApiError, FetchError, marketData } from '@alpacahq/alpaca-trade-api/rest';
import * as z from 'zod';
import {
  InvalidParameterError,
  MarketDataAuthError,
  MarketDataError,
  MarketDataResponseError,
  QuantShiftError,
  RateLimitedError,
} from '../../core/errors.js';
import { assertAssetClass } from '../../core/market/asset-class.js';
import type { BarSeries } from '../../core/market/types.js';
import type {
  DailyBarsRequest,
  IntradayMarketData,
  MarketData,
  MinuteBar,
  PriceAdjustment,
} from '../../core/ports/market-data.js';
import {
  type AlpacaClientOptions,
  type AlpacaRetryEvent,
  type AlpacaRetryOptions,
  DEFAULT_BASE_DELAY_MS,
  DEFAULT_MAX_DELAY_MS,
  DEFAULT_MAX_RETRIES,
  MIN_REDACTED_LENGTH,
} from './options.js';

/** An Alpaca stock data feed: `iex` (free accounts) or `sip` (all US exchanges, paid for recent data). */
export type AlpacaFeed = 'iex' | 'sip';

/** What {@link AlpacaMarketDataOptions.onRetry} reports before each retry (never a key). */
export type MarketDataRetryEvent = AlpacaRetryEvent;

/** How {@link AlpacaMarketData} retries 429 and 5xx answers (and network failures). */
export type MarketDataRetryOptions = AlpacaRetryOptions;

/** Construction options of {@link AlpacaMarketData}. */
export interface AlpacaMarketDataOptions extends AlpacaClientOptions {
  /** Default `iex`, the feed free accounts have. */
  readonly feed?: AlpacaFeed;
  /** Bars per page, counted across all symbols of the page (1..10000, default 10000). */
  readonly pageLimit?: number;
  /** Symbols per request; longer lists are split (default 100). */
  readonly symbolsPerRequest?: number;
}

const DEFAULT_PAGE_LIMIT = 10_000;
const DEFAULT_SYMBOLS_PER_REQUEST = 100;
const MS_PER_DAY = 86_400_000;
/** 429 and every 5xx; no other 4xx is worth repeating. */
const RETRYABLE_STATUSES = [429, ...Array.from({ length: 100 }, (_, i) => 500 + i)];

const finite = z.number();
const price = finite.positive();

/** One bar as Alpaca sends it. `n` (trade count) and `vw` (VWAP) are not used, only checked when present. */
const wireBarSchema = z
  .object({
    t: z.iso.datetime({ offset: true }),
    o: price,
    h: price,
    l: price,
    c: price,
    v: finite.nonnegative(),
    n: finite.nonnegative().optional(),
    vw: finite.nonnegative().optional(),
  })
  .superRefine((bar, ctx) => {
    if (bar.h < bar.l) ctx.addIssue({ code: 'custom', path: ['h'], message: `high ${bar.h} < low ${bar.l}` });
    for (const key of ['o', 'c'] as const) {
      if (bar[key] < bar.l || bar[key] > bar.h) {
        ctx.addIssue({
          code: 'custom',
          path: [key],
          message: `${bar[key]} is outside [low ${bar.l}, high ${bar.h}]`,
        });
      }
    }
  });

/** One page of `GET /v2/stocks/bars`. */
const barsPageSchema = z.object({
  bars: z.record(z.string(), z.array(wireBarSchema)).nullable(),
  next_page_token: z.string().nullable().optional(),
  currency: z.string().optional(),
});

type WireBar = z.infer<typeof wireBarSchema>;

const FIELD_NAMES: Readonly<Record<string, string>> = {
  t: 'timestamp',
  o: 'open',
  h: 'high',
  l: 'low',
  c: 'close',
  v: 'volume',
  n: 'trade count',
  vw: 'vwap',
};

const newYorkDate = new Intl.DateTimeFormat('en-CA', {
  timeZone: 'America/New_York',
  year: 'numeric',
  month: '2-digit',
  day: '2-digit',
});

/**
 * The session date of an Alpaca daily bar as 00:00 UTC of that date. Alpaca stamps daily bars at
 * midnight New York (04:00Z in summer, 05:00Z in winter), so the New York calendar date is the
 * session's.
 */
export function sessionDateOf(timestamp: string): number {
  const instant = Date.parse(timestamp);
  const parts = newYorkDate.formatToParts(instant);
  const part = (type: string): number => Number(parts.find((p) => p.type === type)?.value);
  return Date.UTC(part('year'), part('month') - 1, part('day'));
}

/** Strict `YYYY-MM-DD` to 00:00 UTC of that date; NaN when it is not a calendar date. */
function parseDay(text: string): number {
  const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text);
  if (!match) return Number.NaN;
  const time = Date.UTC(Number(match[1]), Number(match[2]) - 1, Number(match[3]));
  return new Date(time).toISOString().slice(0, 10) === text ? time : Number.NaN;
}

/** Columns of one symbol, filled page by page. */
interface Accumulator {
  time: number[];
  open: number[];
  high: number[];
  low: number[];
  close: number[];
  volume: number[];
}

/** {@link MarketData} on Alpaca's market-data REST API (SDK v4, raw `StockApi` with a `basePath`). */
export class AlpacaMarketData implements MarketData, IntradayMarketData {
  private readonly api: marketData.StockApi;
  private readonly feed: AlpacaFeed;
  private readonly pageLimit: number;
  private readonly symbolsPerRequest: number;
  private readonly maxRetries: number;
  private readonly timeoutMs: number;
  private readonly secrets: readonly string[];

  constructor(options: AlpacaMarketDataOptions) {
    if (!options.keyId || !options.secret) {
      throw new InvalidParameterError('Alpaca market data: both an API key id and a secret are required');
    }
    this.feed = options.feed ?? 'iex';
    this.pageLimit = options.pageLimit ?? DEFAULT_PAGE_LIMIT;
    this.symbolsPerRequest = options.symbolsPerRequest ?? DEFAULT_SYMBOLS_PER_REQUEST;
    this.maxRetries = options.retry?.maxRetries ?? DEFAULT_MAX_RETRIES;
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.secrets = [options.keyId, options.secret].filter((s) => s.length >= MIN_REDACTED_LENGTH);
    if (!Number.isInteger(this.pageLimit) || this.pageLimit < 1 || this.pageLimit > 10_000) {
      throw new InvalidParameterError(`Alpaca market data: pageLimit ${this.pageLimit} is not in 1..10000`);
    }
    if (!Number.isInteger(this.symbolsPerRequest) || this.symbolsPerRequest < 1) {
      throw new InvalidParameterError('Alpaca market data: symbolsPerRequest must be a positive integer');
    }
    if (!Number.isInteger(this.maxRetries) || this.maxRetries < 0) {
      throw new InvalidParameterError('Alpaca market data: retry.maxRetries must be an integer >= 0');
    }
    const onRetry = options.onRetry;
    const rateLimit = options.rateLimit ?? { maxRequests: 200, intervalMs: 60_000 };
    const configuration = new marketData.Configuration({
      keyId: options.keyId,
      secret: options.secret,
      ...(options.baseUrl === undefined ? {} : { basePath: options.baseUrl.replace(/\/+$/, '') }),
      timeoutMs: this.timeoutMs,
      ...(rateLimit === false ? {} : { rateLimit }),
      retry: {
        maxRetries: this.maxRetries,
        retryDelayMs: options.retry?.baseDelayMs ?? DEFAULT_BASE_DELAY_MS,
        maxDelayMs: options.retry?.maxDelayMs ?? DEFAULT_MAX_DELAY_MS,
        retryableStatuses: RETRYABLE_STATUSES,
        respectRetryAfter: true,
        ...(onRetry === undefined
          ? {}
          : {
              onRetry: (event) =>
                onRetry({
                  attempt: event.attempt,
                  maxRetries: event.maxRetries,
                  delayMs: Math.round(event.delayMs),
                  ...(event.status === undefined ? {} : { status: event.status }),
                }),
            }),
      },
    });
    this.api = new marketData.StockApi(configuration);
  }

  /** Daily bars of every requested symbol, one series each, in request order. */
  async getDailyBars(request: DailyBarsRequest): Promise<BarSeries[]> {
    const symbols = request.symbols.map((s) => s.trim().toUpperCase());
    if (symbols.length === 0) throw new InvalidParameterError('Alpaca market data: no symbols requested');
    for (const [i, symbol] of symbols.entries()) {
      if (!/^[A-Z0-9][A-Z0-9./-]*$/.test(symbol)) {
        throw new InvalidParameterError(`Alpaca market data: invalid symbol "${request.symbols[i]}"`);
      }
      assertAssetClass('equity', symbol, 'Alpaca market data');
    }
    const from = parseDay(request.from);
    const to = parseDay(request.to);
    if (Number.isNaN(from))
      throw new InvalidParameterError(`Alpaca market data: from "${request.from}" is not YYYY-MM-DD`);
    if (Number.isNaN(to))
      throw new InvalidParameterError(`Alpaca market data: to "${request.to}" is not YYYY-MM-DD`);
    if (from > to)
      throw new InvalidParameterError(`Alpaca market data: from ${request.from} is after to ${request.to}`);

    const unique = [...new Set(symbols)];
    const columns = new Map<string, Accumulator>(
      unique.map((s) => [s, { time: [], open: [], high: [], low: [], close: [], volume: [] }]),
    );
    for (let i = 0; i < unique.length; i += this.symbolsPerRequest) {
      const chunk = unique.slice(i, i + this.symbolsPerRequest);
      await this.fetchAllPages(chunk, from, to, request.adjustment ?? 'all', columns);
    }
    return symbols.map((symbol) => {
      const c = columns.get(symbol) as Accumulator;
      return {
        symbol,
        time: Float64Array.from(c.time),
        open: Float64Array.from(c.open),
        high: Float64Array.from(c.high),
        low: Float64Array.from(c.low),
        close: Float64Array.from(c.close),
        volume: Float64Array.from(c.volume),
        intraday: false,
      };
    });
  }

  /** Raw (unadjusted) minute bars of one symbol, `from`..`to` inclusive, every page followed. */
  async getMinuteBars(request: {
    readonly symbol: string;
    readonly from: string;
    readonly to: string;
  }): Promise<MinuteBar[]> {
    const symbol = request.symbol.trim().toUpperCase();
    const from = Date.parse(request.from);
    const to = Date.parse(request.to);
    if (!/^[A-Z0-9][A-Z0-9./-]*$/.test(symbol))
      throw new InvalidParameterError(`Alpaca market data: invalid symbol "${request.symbol}"`);
    if (Number.isNaN(from) || Number.isNaN(to) || from > to)
      throw new InvalidParameterError(
        `Alpaca market data: bad minute range ${request.from} .. ${request.to}`,
      );
    const what = `Alpaca minute bars for ${symbol}`;
    const out: MinuteBar[] = [];
    const seenTokens = new Set<string>();
    let pageToken: string | undefined;
    for (let page = 1; ; page++) {
      const body = await this.requestPage(what, {
        symbols: symbol,
        timeframe: '1Min',
        start: new Date(from),
        end: new Date(to),
        limit: this.pageLimit,
        adjustment: 'raw',
        feed: this.feed,
        sort: 'asc',
        ...(pageToken === undefined ? {} : { pageToken }),
      });
      const parsed = barsPageSchema.safeParse(body);
      if (!parsed.success) throw this.schemaError(what, page, body, parsed.error);
      for (const [name, bars] of Object.entries(parsed.data.bars ?? {})) {
        if (name !== symbol)
          throw new MarketDataResponseError(
            `${what}: page ${page} has bars for "${name}", which was not requested`,
          );
        for (const bar of bars) {
          const previous = out[out.length - 1];
          if (previous !== undefined && Date.parse(bar.t) <= Date.parse(previous.time)) {
            throw new MarketDataResponseError(`${what}: bar at ${bar.t} is not after ${previous.time}`);
          }
          out.push({
            symbol,
            time: new Date(Date.parse(bar.t)).toISOString(),
            open: bar.o,
            high: bar.h,
            low: bar.l,
            close: bar.c,
            volume: bar.v,
          });
        }
      }
      const next = parsed.data.next_page_token;
      if (next === null || next === undefined || next === '') return out;
      if (seenTokens.has(next))
        throw new MarketDataResponseError(`${what}: page ${page} repeats an earlier next_page_token`);
      seenTokens.add(next);
      pageToken = next;
    }
  }

  /** Follows `next_page_token` until the last page of one multi-symbol request. */
  private async fetchAllPages(
    symbols: readonly string[],
    from: number,
    to: number,
    adjustment: PriceAdjustment,
    columns: Map<string, Accumulator>,
  ): Promise<void> {
    const what = `Alpaca daily bars for ${symbols.join(',')}`;
    const seenTokens = new Set<string>();
    let pageToken: string | undefined;
    for (let page = 1; ; page++) {
      const body = await this.requestPage(what, {
        symbols: symbols.join(','),
        timeframe: '1Day',
        start: new Date(from),
        end: new Date(to + MS_PER_DAY - 1000),
        limit: this.pageLimit,
        adjustment,
        feed: this.feed,
        sort: 'asc',
        ...(pageToken === undefined ? {} : { pageToken }),
      });
      const parsed = barsPageSchema.safeParse(body);
      if (!parsed.success) throw this.schemaError(what, page, body, parsed.error);
      for (const [symbol, bars] of Object.entries(parsed.data.bars ?? {})) {
        const target = columns.get(symbol);
        if (target === undefined || !symbols.includes(symbol)) {
          throw new MarketDataResponseError(
            `${what}: page ${page} has bars for "${symbol}", which was not requested`,
          );
        }
        this.append(what, symbol, bars, target);
      }
      const next = parsed.data.next_page_token;
      if (next === null || next === undefined || next === '') return;
      if (seenTokens.has(next)) {
        throw new MarketDataResponseError(`${what}: page ${page} repeats an earlier next_page_token`);
      }
      seenTokens.add(next);
      pageToken = next;
    }
  }

  private append(what: string, symbol: string, bars: readonly WireBar[], target: Accumulator): void {
    for (const bar of bars) {
      const time = sessionDateOf(bar.t);
      const previous = target.time[target.time.length - 1];
      if (previous !== undefined && time <= previous) {
        throw new MarketDataResponseError(
          `${what}: ${symbol} bar at ${bar.t} is not after the previous session ${new Date(previous).toISOString().slice(0, 10)}`,
        );
      }
      target.time.push(time);
      target.open.push(bar.o);
      target.high.push(bar.h);
      target.low.push(bar.l);
      target.close.push(bar.c);
      target.volume.push(bar.v);
    }
  }

  /** One page as parsed JSON; the SDK retries 429/5xx, every failure left becomes a MarketDataError. */
  private async requestPage(what: string, params: marketData.StockBarsRequest): Promise<unknown> {
    let text: string;
    try {
      const response = await this.api.stockBarsRaw(params);
      text = await response.raw.text();
    } catch (error) {
      throw this.transportError(what, error);
    }
    try {
      return JSON.parse(text);
    } catch (error) {
      throw new MarketDataResponseError(this.redact(`${what}: the response is not JSON`), undefined, {
        cause: error,
      });
    }
  }

  private transportError(what: string, error: unknown): QuantShiftError {
    if (error instanceof QuantShiftError) return error;
    if (error instanceof ApiError) {
      const status = error.status;
      const detail = this.redact(error.message);
      if (status === 401 || status === 403) {
        return new MarketDataAuthError(
          `${what}: HTTP ${status}: the API key id and secret were refused (${detail})`,
          status,
          { cause: error },
        );
      }
      const retried = RETRYABLE_STATUSES.includes(status)
        ? ` after ${this.maxRetries} ${this.maxRetries === 1 ? 'retry' : 'retries'}`
        : '';
      if (status === 429) {
        return new RateLimitedError(`${what}: HTTP 429 (rate limited)${retried}: ${detail}`, status, {
          cause: error,
        });
      }
      return new MarketDataError(`${what}: HTTP ${status}${retried}: ${detail}`, status, { cause: error });
    }
    if (error instanceof FetchError) {
      const cause = error.cause as { name?: string; message?: string } | undefined;
      if (cause?.name === 'TimeoutError') {
        return new MarketDataError(`${what}: no answer within ${this.timeoutMs} ms`, undefined, {
          cause: error,
        });
      }
      if (cause?.name === 'AbortError') {
        return new MarketDataError(`${what}: the request was aborted`, undefined, { cause: error });
      }
      const reason = this.redact(describeNetworkFailure(cause));
      return new MarketDataError(
        `${what}: the server could not be reached after ${this.maxRetries} retries (${reason})`,
        undefined,
        { cause: error },
      );
    }
    const message = error instanceof Error ? error.message : String(error);
    return new MarketDataError(`${what}: ${this.redact(message)}`, undefined, { cause: error });
  }

  /** Names the symbol, bar, field and timestamp of the first schema violation. */
  private schemaError(what: string, page: number, body: unknown, error: z.ZodError): MarketDataResponseError {
    const issue = error.issues[0];
    const path = issue?.path ?? [];
    let where: string;
    if (path[0] === 'bars' && typeof path[1] === 'string' && typeof path[2] === 'number') {
      const symbol = path[1];
      const index = path[2];
      const bar = (body as { bars: Record<string, unknown[]> }).bars[symbol]?.[index] as
        | { t?: unknown }
        | undefined;
      const at = typeof bar?.t === 'string' ? ` (${bar.t})` : '';
      const field = path[3];
      const fieldText =
        field === undefined
          ? 'the bar'
          : `field "${String(field)}" (${FIELD_NAMES[String(field)] ?? 'unknown'})`;
      where = `${symbol} bar ${index}${at}: ${fieldText}`;
    } else {
      where = path.length === 0 ? 'the body' : `field "${path.map(String).join('.')}"`;
    }
    return new MarketDataResponseError(
      this.redact(`${what}: invalid response on page ${page}: ${where}: ${issue?.message ?? error.message}`),
      undefined,
      { cause: error },
    );
  }

  /** Blanks the key id and secret out of any text that may reach a message. */
  private redact(text: string): string {
    let out = text;
    for (const secret of this.secrets) out = out.split(secret).join('[redacted]');
    return out;
  }
}

function describeNetworkFailure(cause: { message?: string; cause?: unknown } | undefined): string {
  const inner = cause?.cause as { code?: string; message?: string } | undefined;
  return inner?.code ?? inner?.message ?? cause?.message ?? 'network failure';
}
