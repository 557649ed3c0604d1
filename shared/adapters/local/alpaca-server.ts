/**
 * A local Alpaca-compatible HTTP server (node:http) for tests and offline runs. It serves
 * `GET /v2/stocks/bars` from `<dataDir>/<SYMBOL>.csv` files in Alpaca's wire shape, the trading
 * API of a local paper broker ({@link PaperBroker}: account, positions, orders, activities, clock,
 * calendar) on a simulated clock the caller moves ({@link LocalAlpaca.setTime}), checks the key
 * headers, and can be told to misbehave (429, 5xx, delays, dropped connections, malformed bodies)
 * request by request, for any request or for one route.
 *
 * Routes live in one table ({@link routes}) of method, path pattern (`:name` segments) and handler;
 * state shared by handlers sits in {@link ServerState}.
 *
 * Fidelity notes: daily bars only (`timeframe=1Day`), ascending sort only; `adjustment` is checked
 * but the files are served as they are (the bundled files are already adjusted); `n` (trade count)
 * is 0 and `vw` is the typical price (h + l + c) / 3, since bar files carry neither; a symbol
 * without a file has no bars, as a symbol without data has none at Alpaca.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import { DataFileNotFoundError, InvalidParameterError } from '../../core/errors.js';
import type { BarSeries } from '../../core/market/types.js';
import { loadBarsCsv } from '../fs/bars.js';
import { listenOnLoopback } from './listen.js';
import { newYorkInstant } from './nyse-calendar.js';
import {
  PaperBroker,
  type PaperBrokerOptions,
  PaperBrokerRequestError,
  type PartialFillRule,
} from './paper-broker.js';

/** A wire bar field, as Alpaca names it. */
export type AlpacaBarField = 't' | 'o' | 'h' | 'l' | 'c' | 'v' | 'n' | 'vw';

/**
 * A misbehaviour for the next `times` requests (default 1) that match its `route` (any request when
 * absent; e.g. `'POST /v2/orders'`, `:name` segments allowed). Each request takes the first pending
 * fault that matches it, in the order injected:
 * - `status`: answer with this HTTP status without handling the request (429 carries `Retry-After`,
 *   default 1 second);
 * - `delay`: wait `ms` before handling the request normally (a slow response);
 * - `drop`: destroy the connection without an answer, `before-handling` (nothing happened) or
 *   `after-handling` (the request took effect, e.g. the order IS created, and the client sees a
 *   socket hang-up); logged with status 0;
 * - `malformed-bar`: serve the bars, but with `field` of `symbol`'s first bar removed, or replaced
 *   by the raw JSON token `json` (`"1e999"` parses to Infinity, `null`, `"\"x\""`);
 * - `malformed-field`: handle the request, then remove `field` (a dotted path, e.g. `legs.0.qty`;
 *   in an array body, of its first item unless the path starts with an index) from a 2xx JSON
 *   answer, or replace it by the raw JSON token `json`;
 * - `lagging`: handle the request, then leave out of a 2xx JSON array answer every item whose
 *   `field` equals `value` (a feed that lags behind: a fill the broker has not reported yet).
 */
export type LocalAlpacaFault = { readonly times?: number; readonly route?: string } & (
  | {
      readonly kind: 'status';
      readonly status: number;
      readonly retryAfterSeconds?: number;
      readonly message?: string;
    }
  | { readonly kind: 'delay'; readonly ms: number }
  | { readonly kind: 'drop'; readonly when: 'before-handling' | 'after-handling' }
  | {
      readonly kind: 'malformed-bar';
      readonly symbol: string;
      readonly field: AlpacaBarField;
      readonly json?: string;
    }
  | { readonly kind: 'malformed-field'; readonly field: string; readonly json?: string }
  | { readonly kind: 'lagging'; readonly field: string; readonly value: string }
);

/** Options of {@link startLocalAlpaca}. */
export interface LocalAlpacaOptions {
  /** Folder of `<SYMBOL>.csv` bar files. */
  readonly dataDir: string;
  /** 0 (default) picks a free port. */
  readonly port?: number;
  /** The only credentials accepted (`APCA-API-KEY-ID` / `APCA-API-SECRET-KEY`). */
  readonly keyId: string;
  readonly secret: string;
  /** Faults armed from the start. */
  readonly faults?: readonly LocalAlpacaFault[];
  /** The paper broker: start time, starting cash, partial fills, corporate actions. */
  readonly paper?: PaperBrokerOptions;
}

/** A request as the server saw it (no headers, so never a key). */
export interface LocalAlpacaRequest {
  readonly method: string;
  readonly path: string;
  readonly query: Readonly<Record<string, string>>;
  /** 0 when the connection was dropped without an answer. */
  readonly status: number;
}

/** A running local Alpaca. */
export interface LocalAlpaca {
  /** Origin to use as the base URL, e.g. `http://127.0.0.1:54321`. */
  readonly url: string;
  /** Requests received so far (faulted and refused ones included). */
  readonly requests: number;
  /** Every request received, in order. */
  readonly requestLog: readonly LocalAlpacaRequest[];
  /** Arms more faults, after those still pending. */
  injectFaults(...faults: LocalAlpacaFault[]): void;
  /** Disarms every pending fault. */
  clearFaults(): void;
  /** Forgets the request count and log. */
  resetRequests(): void;
  /** The paper broker's simulated time, ISO 8601 UTC. */
  readonly time: string;
  /**
   * Moves the simulated clock forward to `time` (ISO 8601 with `Z` or an offset), running every
   * session open and close it passes: fills, expiries, marks. Never backwards.
   */
  setTime(time: string): void;
  /** Moves the simulated clock forward by `ms`. */
  advance(ms: number): void;
  /** Partial fills from now on: a fraction for every symbol or per symbol; undefined turns them off. */
  setPartialFill(rule: PartialFillRule | undefined): void;
  /** The orders the broker refused at submission as a rehearsal reject (execution realism). */
  refusedOrders(): readonly {
    clientOrderId: string;
    symbol: string;
    side: string;
    qty: number;
    at: number;
  }[];
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// Routing

interface RequestContext {
  readonly method: string;
  readonly path: string;
  readonly query: URLSearchParams;
  readonly params: Readonly<Record<string, string>>;
  readonly body: unknown;
  readonly state: ServerState;
  /** A `malformed-bar` fault to apply to this answer, if one is due. */
  readonly malformed?: Extract<LocalAlpacaFault, { kind: 'malformed-bar' }>;
}

interface Reply {
  readonly status: number;
  /** Undefined for a 204. */
  readonly body: unknown;
  readonly headers?: Readonly<Record<string, string>>;
  /** Already serialised JSON, when a fault had to write a token JSON.stringify cannot. */
  readonly rawJson?: string;
}

type Handler = (ctx: RequestContext) => Reply | Promise<Reply>;

interface Route {
  readonly method: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  /** Path with `:name` segments, e.g. `/v2/orders/:id`. */
  readonly path: string;
  readonly handler: Handler;
}

/** State the handlers share. */
interface ServerState {
  readonly dataDir: string;
  /** Bar files read so far, by symbol, with their Alpaca timestamps; `null` when there is no file. */
  readonly series: Map<string, StampedSeries | null>;
  readonly broker: PaperBroker;
}

/** A bar file and, per bar, its Alpaca timestamp (midnight New York, epoch ms). */
interface StampedSeries {
  readonly series: BarSeries;
  readonly stamps: Float64Array;
}

const ok = (body: unknown): Reply => ({ status: 200, body });

/** Every endpoint the server answers. */
const routes: readonly Route[] = [
  { method: 'GET', path: '/v2/stocks/bars', handler: stockBars },
  { method: 'GET', path: '/v2/account', handler: (ctx) => ok(ctx.state.broker.account()) },
  { method: 'GET', path: '/v2/positions', handler: (ctx) => ok(ctx.state.broker.positionList()) },
  {
    method: 'POST',
    path: '/v2/orders',
    handler: (ctx) =>
      ok(ctx.state.broker.submitOrder(ctx.body, (symbol) => loadSymbol(ctx.state, symbol) !== null)),
  },
  { method: 'GET', path: '/v2/orders', handler: (ctx) => ok(ctx.state.broker.listOrders(ctx.query)) },
  {
    method: 'GET',
    path: '/v2/orders:by_client_order_id',
    handler: (ctx) => {
      const id = ctx.query.get('client_order_id');
      if (!id) return apiError(422, 40010001, 'client_order_id is required');
      return ok(ctx.state.broker.getOrderByClientOrderId(id));
    },
  },
  {
    method: 'GET',
    path: '/v2/orders/:id',
    handler: (ctx) => ok(ctx.state.broker.getOrder(ctx.params.id ?? '')),
  },
  {
    method: 'DELETE',
    path: '/v2/orders/:id',
    handler: (ctx) => {
      ctx.state.broker.cancelOrder(ctx.params.id ?? '');
      return { status: 204, body: undefined };
    },
  },
  {
    method: 'GET',
    path: '/v2/account/activities',
    handler: (ctx) => ok(ctx.state.broker.activities(ctx.query)),
  },
  { method: 'GET', path: '/v2/clock', handler: (ctx) => ok(ctx.state.broker.clockReading()) },
  { method: 'GET', path: '/v2/calendar', handler: (ctx) => ok(ctx.state.broker.calendar(ctx.query)) },
];

/** The `:name` parameters when `path` fits `pattern`, else undefined. */
function matchPath(pattern: string, path: string): Record<string, string> | undefined {
  const parts = pattern.split('/');
  const segments = path.split('/');
  if (parts.length !== segments.length) return undefined;
  const params: Record<string, string> = {};
  const fits = parts.every((part, i) => {
    const segment = segments[i] as string;
    if (part.startsWith(':')) {
      params[part.slice(1)] = decodeURIComponent(segment);
      return segment !== '';
    }
    return part === segment;
  });
  return fits ? params : undefined;
}

function matchRoute(
  method: string,
  path: string,
): { route: Route; params: Record<string, string> } | undefined {
  for (const route of routes) {
    if (route.method !== method) continue;
    const params = matchPath(route.path, path);
    if (params !== undefined) return { route, params };
  }
  return undefined;
}

/** Whether a fault's `route` (`'METHOD /path'` or just `/path`) covers a request. */
export function faultCovers(route: string | undefined, method: string, path: string): boolean {
  if (route === undefined) return true;
  const [first, second] = route.trim().split(/\s+/);
  const [faultMethod, pattern] = second === undefined ? [undefined, first] : [first, second];
  if (faultMethod !== undefined && faultMethod.toUpperCase() !== method) return false;
  return matchPath(pattern ?? '', path) !== undefined;
}

/**
 * The armed route faults of a local server: each request takes the first pending fault whose `route`
 * covers it (in the order armed), which then has one use (`times`, default 1) fewer.
 */
export function routeFaults<F extends { readonly times?: number; readonly route?: string }>(
  initial: readonly F[],
): { arm(faults: readonly F[]): void; take(method: string, path: string): F | undefined; clear(): void } {
  const pending: { fault: F; left: number }[] = [];
  const arm = (faults: readonly F[]): void => {
    for (const fault of faults) pending.push({ fault, left: fault.times ?? 1 });
  };
  arm(initial);
  return {
    arm,
    take: (method, path) => {
      const index = pending.findIndex((p) => faultCovers(p.fault.route, method, path));
      const entry = pending[index];
      if (entry === undefined) return undefined;
      entry.left--;
      if (entry.left <= 0) pending.splice(index, 1);
      return entry.fault;
    },
    clear: () => {
      pending.length = 0;
    },
  };
}

/** A copy of a JSON body with one field removed or replaced by a raw JSON token. */
function malformField(
  body: unknown,
  field: string,
  json: string | undefined,
): Pick<Reply, 'body' | 'rawJson'> {
  const copy: unknown = JSON.parse(JSON.stringify(body));
  const path = field.split('.');
  let target: unknown = Array.isArray(copy) && !/^\d+$/.test(path[0] ?? '') ? copy[0] : copy;
  for (const key of path.slice(0, -1)) {
    target =
      target !== null && typeof target === 'object' ? (target as Record<string, unknown>)[key] : undefined;
  }
  const last = path.at(-1) ?? '';
  if (target === null || typeof target !== 'object') return { body: copy };
  const record = target as Record<string, unknown>;
  if (json === undefined) {
    delete record[last];
    return { body: copy };
  }
  const marker = `__malformed_${randomUUID()}__`;
  record[last] = marker;
  return { body: copy, rawJson: JSON.stringify(copy).replace(`"${marker}"`, json) };
}

/** Alpaca's error envelope. */
function apiError(status: number, code: number, message: string): Reply {
  return { status, body: { code, message } };
}

// ---------------------------------------------------------------------------------------------
// GET /v2/stocks/bars

const MAX_LIMIT = 10_000;
const DEFAULT_LIMIT = 1_000;
const ADJUSTMENTS = new Set(['raw', 'split', 'dividend', 'all']);
const FEEDS = new Set(['iex', 'sip', 'otc', 'boats', 'delayed_sip']);
const DAILY_TIMEFRAMES = new Set(['1Day', '1D', '1day', 'day', 'Day']);

function stockBars(ctx: RequestContext): Reply {
  const q = ctx.query;
  const symbolsText = q.get('symbols');
  if (!symbolsText) return apiError(400, 40010001, 'symbols is required');
  const symbols = [...new Set(symbolsText.split(',').map((s) => s.trim().toUpperCase()))];
  const invalid = symbols.find((s) => !/^[A-Z0-9][A-Z0-9.]*$/.test(s));
  if (invalid !== undefined) return apiError(400, 40010001, `invalid symbol: "${invalid}"`);
  const timeframe = q.get('timeframe');
  if (!timeframe) return apiError(400, 40010001, 'timeframe is required');
  if (!DAILY_TIMEFRAMES.has(timeframe)) {
    return apiError(400, 40010001, `unsupported timeframe "${timeframe}" (the local server serves 1Day)`);
  }
  const start = parseInstant(q.get('start'), Number.NEGATIVE_INFINITY);
  const end = parseInstant(q.get('end'), Number.POSITIVE_INFINITY);
  if (Number.isNaN(start)) return apiError(400, 40010001, `invalid start: "${q.get('start')}"`);
  if (Number.isNaN(end)) return apiError(400, 40010001, `invalid end: "${q.get('end')}"`);
  const limitText = q.get('limit');
  const limit = limitText === null ? DEFAULT_LIMIT : Number(limitText);
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) {
    return apiError(400, 40010001, `invalid limit: "${limitText}" (1..${MAX_LIMIT})`);
  }
  const adjustment = q.get('adjustment') ?? 'raw';
  if (!ADJUSTMENTS.has(adjustment)) return apiError(400, 40010001, `invalid adjustment: "${adjustment}"`);
  const feed = q.get('feed') ?? 'sip';
  if (!FEEDS.has(feed)) return apiError(400, 40010001, `invalid feed: "${feed}"`);
  const sort = q.get('sort') ?? 'asc';
  if (sort !== 'asc')
    return apiError(400, 40010001, `unsupported sort "${sort}" (the local server sorts asc)`);

  // Alpaca's order: by symbol, then by time; the limit counts bars over all symbols of the page.
  const ordered = [...symbols].sort();
  let cursor: { symbol: string; time: number } | undefined;
  const token = q.get('page_token');
  if (token) {
    cursor = decodePageToken(token);
    if (cursor === undefined) return apiError(400, 40010001, 'invalid page_token');
  }

  const bars: Record<string, Record<string, number | string>[]> = {};
  let last: { symbol: string; time: number } | undefined;
  let next: string | null = null;
  let taken = 0;
  outer: for (const symbol of ordered) {
    if (cursor !== undefined && symbol < cursor.symbol) continue;
    const loaded = loadSymbol(ctx.state, symbol);
    if (loaded === null) continue;
    const { series, stamps } = loaded;
    for (let i = 0; i < stamps.length; i++) {
      const stamp = stamps[i] as number;
      if (stamp < start || stamp > end) continue;
      if (cursor !== undefined && symbol === cursor.symbol && stamp <= cursor.time) continue;
      if (taken === limit && last !== undefined) {
        next = encodePageToken(last.symbol, last.time);
        break outer;
      }
      const list = bars[symbol] ?? [];
      bars[symbol] = list;
      list.push(wireBar(series, i, stamp));
      last = { symbol, time: stamp };
      taken++;
    }
  }

  const body = { bars, next_page_token: next, currency: 'USD' };
  const fault = ctx.malformed;
  const target = fault === undefined ? undefined : bars[fault.symbol.toUpperCase()]?.[0];
  if (fault === undefined || target === undefined) return { status: 200, body };
  if (fault.json === undefined) {
    delete target[fault.field];
    return { status: 200, body };
  }
  const marker = `__malformed_${randomUUID()}__`;
  target[fault.field] = marker;
  return { status: 200, body, rawJson: JSON.stringify(body).replace(`"${marker}"`, fault.json) };
}

function wireBar(series: BarSeries, i: number, stamp: number): Record<string, number | string> {
  const h = series.high[i] as number;
  const l = series.low[i] as number;
  const c = series.close[i] as number;
  return {
    t: `${new Date(stamp).toISOString().slice(0, 19)}Z`,
    o: series.open[i] as number,
    h,
    l,
    c,
    v: series.volume[i] as number,
    n: 0,
    vw: (h + l + c) / 3,
  };
}

function encodePageToken(symbol: string, time: number): string {
  return Buffer.from(`${symbol}|${time}`, 'utf8').toString('base64url');
}

function decodePageToken(token: string): { symbol: string; time: number } | undefined {
  const text = Buffer.from(token, 'base64url').toString('utf8');
  const match = /^([A-Z0-9.]+)\|(-?\d+)$/.exec(text);
  return match ? { symbol: match[1] as string, time: Number(match[2]) } : undefined;
}

/** RFC-3339 or `YYYY-MM-DD` (read as 00:00 UTC) to epoch ms; `fallback` when absent, NaN when invalid. */
function parseInstant(text: string | null, fallback: number): number {
  if (text === null || text === '') return fallback;
  if (!/^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2}))?$/.test(text)) return Number.NaN;
  return Date.parse(text);
}

function loadSymbol(state: ServerState, symbol: string): StampedSeries | null {
  const cached = state.series.get(symbol);
  if (cached !== undefined) return cached;
  let loaded: StampedSeries | null;
  try {
    const series = loadBarsCsv(join(state.dataDir, `${symbol}.csv`), { symbol });
    loaded = { series, stamps: series.time.map(newYorkMidnight) };
  } catch (error) {
    if (!(error instanceof DataFileNotFoundError)) throw error;
    loaded = null;
  }
  state.series.set(symbol, loaded);
  return loaded;
}

/**
 * Midnight New York of a session date (given as 00:00 UTC of that date), as Alpaca stamps daily
 * bars: 05:00Z under EST, 04:00Z under EDT.
 */
export function newYorkMidnight(sessionDate: number): number {
  return newYorkInstant(new Date(sessionDate).toISOString().slice(0, 10), '00:00');
}

// ---------------------------------------------------------------------------------------------
// Server

/** Starts the server on 127.0.0.1; resolves once it listens. */
export async function startLocalAlpaca(options: LocalAlpacaOptions): Promise<LocalAlpaca> {
  const state: ServerState = {
    dataDir: options.dataDir,
    series: new Map(),
    broker: new PaperBroker((symbol) => loadSymbol(state, symbol)?.series ?? null, options.paper),
  };
  const faults = routeFaults<LocalAlpacaFault>(options.faults ?? []);
  const log: LocalAlpacaRequest[] = [];
  const timers = new Set<NodeJS.Timeout>();
  let received = 0;

  const wait = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      const timer = setTimeout(() => {
        timers.delete(timer);
        resolve();
      }, ms);
      timers.add(timer);
    });

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    received++;
    const url = new URL(req.url ?? '/', 'http://localhost');
    const method = (req.method ?? 'GET').toUpperCase();
    const bodyText = await readBody(req);
    const record = (status: number): void => {
      log.push({ method, path: url.pathname, query: Object.fromEntries(url.searchParams), status });
    };
    const send = (reply: Reply): void => {
      record(reply.status);
      if (reply.status === 204) {
        res.writeHead(204, { 'X-Request-ID': randomUUID(), ...reply.headers });
        res.end();
        return;
      }
      const json = reply.rawJson ?? JSON.stringify(reply.body);
      res.writeHead(reply.status, {
        'Content-Type': 'application/json; charset=utf-8',
        'X-Request-ID': randomUUID(),
        ...reply.headers,
      });
      res.end(json);
    };
    const drop = (): void => {
      record(0);
      res.destroy();
    };

    let fault = faults.take(method, url.pathname);
    if (fault?.kind === 'delay') {
      await wait(fault.ms);
      fault = undefined;
    }
    if (fault?.kind === 'drop' && fault.when === 'before-handling') {
      drop();
      return;
    }
    if (fault?.kind === 'status') {
      const headers: Record<string, string> =
        fault.status === 429 ? { 'Retry-After': String(fault.retryAfterSeconds ?? 1) } : {};
      const message =
        fault.message ?? (fault.status === 429 ? 'too many requests.' : 'internal server error');
      send({ status: fault.status, body: { code: fault.status * 100_000, message }, headers });
      return;
    }

    if (
      req.headers['apca-api-key-id'] !== options.keyId ||
      req.headers['apca-api-secret-key'] !== options.secret
    ) {
      send(apiError(401, 40110000, 'request is not authorized'));
      return;
    }
    const matched = matchRoute(method, url.pathname);
    if (matched === undefined) {
      send(apiError(404, 40410000, `endpoint not found: ${method} ${url.pathname}`));
      return;
    }
    let body: unknown;
    try {
      body = bodyText === '' ? undefined : JSON.parse(bodyText);
    } catch {
      send(apiError(400, 40010000, 'request body is not valid JSON'));
      return;
    }
    let reply: Reply;
    try {
      reply = await matched.route.handler({
        method,
        path: url.pathname,
        query: url.searchParams,
        params: matched.params,
        body,
        state,
        ...(fault?.kind === 'malformed-bar' ? { malformed: fault } : {}),
      });
    } catch (error) {
      reply =
        error instanceof PaperBrokerRequestError
          ? apiError(error.status, error.code, error.message)
          : apiError(500, 50010000, `local server error: ${(error as Error).message}`);
    }
    if (fault?.kind === 'drop') {
      drop();
      return;
    }
    if (
      fault?.kind === 'malformed-field' &&
      reply.status >= 200 &&
      reply.status < 300 &&
      reply.body !== undefined
    ) {
      reply = { ...reply, ...malformField(reply.body, fault.field, fault.json) };
    }
    if (fault?.kind === 'lagging' && Array.isArray(reply.body)) {
      const { field, value } = fault;
      reply = {
        ...reply,
        body: reply.body.filter(
          (item: unknown) => String((item as Record<string, unknown> | null)?.[field]) !== value,
        ),
      };
    }
    send(reply);
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      res.writeHead(500, { 'Content-Type': 'application/json; charset=utf-8' });
      res.end(JSON.stringify({ code: 50000000, message: `local server error: ${(error as Error).message}` }));
    });
  });

  const port = await listenOnLoopback(server, options.port);

  return {
    url: `http://127.0.0.1:${port}`,
    get requests() {
      return received;
    },
    get requestLog() {
      return log;
    },
    injectFaults: (...more) => faults.arm(more),
    clearFaults: () => faults.clear(),
    refusedOrders: () => [...state.broker.refused],
    resetRequests: () => {
      received = 0;
      log.length = 0;
    },
    get time() {
      return new Date(state.broker.now).toISOString();
    },
    setTime: (time) => {
      if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(time)) {
        throw new InvalidParameterError(`local Alpaca: time "${time}" is not ISO 8601 with Z or an offset`);
      }
      state.broker.setTime(Date.parse(time));
    },
    advance: (ms) => {
      if (!(ms >= 0) || !Number.isFinite(ms)) {
        throw new InvalidParameterError(`local Alpaca: advance(${ms}): ms must be a finite number >= 0`);
      }
      state.broker.setTime(state.broker.now + ms);
    },
    setPartialFill: (rule) => state.broker.setPartialFill(rule),
    close: () =>
      new Promise<void>((resolve, reject) => {
        for (const timer of timers) clearTimeout(timer);
        timers.clear();
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      }),
  };
}

export function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}
