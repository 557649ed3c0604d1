/**
 * Live-path benchmarks on the local stack (paper broker over HTTP, dynalite, redis-server behind
 * the Upstash bridge; `startLocalLiveStack`), all in this process:
 *
 * - `signals`: the market-open check, then generate-signals, for a watchlist of `symbols` synthetic
 *   symbols, through `buildLiveContext` as the handlers build it, with the bar cache empty (the
 *   first run of the day). `seconds` is generate-signals' wall time; `marketDataRequests` counts its
 *   `GET /v2/stocks/bars` requests (the adapter asks for many symbols per request and follows every
 *   page) and `totalBrokerRequests` all of its requests to the local Alpaca server.
 * - `executeOrders`: handler overhead from a stored intent to the order POST. Each sample stores
 *   one recorded market-on-open intent, then invokes the real execute-orders Lambda handler
 *   (`functions/execute-orders/handler.ts`: zod event parsing, the middy chain with Powertools
 *   Logger / Metrics / Tracer (tracing off, as on the local stack) and the DynamoDB idempotency record, the day's lock in Redis, the
 *   session and intent reads, the hard limits, the conditional recorded → submitted claim, the rate
 *   slot) and measures the time from the call until the local broker's HTTP server sees the
 *   request line of `POST /v2/orders` (Node's `http.server.request.start` diagnostics channel, in
 *   this process). The broker's answer and the settle write after it are not included. Each
 *   invocation has its own scheduled time (a new idempotency key); the samples spread over several
 *   trading days so a day holds about as many intents as the default daily order limit (40). The first invocation
 *   (cold: it builds the context and the middy chain) is reported apart as `coldStartMs`.
 *
 * The servers share this process's event loop and CPU with the code measured, so the numbers
 * include the local servers' own work (DynamoDB emulation, JSON of the bar pages): they are an
 * upper bound for the code's share, not the latency to the real Alpaca over the internet.
 * The Powertools log lines and EMF metrics the handlers write to stdout are discarded while the
 * benchmarks run, so stdout keeps only the JSON document.
 */
import { randomUUID } from 'node:crypto';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { localLambdaContext } from '../shared/adapters/local/lambda-context.js';
import { startLocalLiveStack } from '../shared/adapters/local/live-stack.js';
import { RedisServerNotFoundError } from '../shared/core/errors.js';
import { clientOrderId, newYorkToUtc } from '../shared/core/live/orders.js';
import type { Cache } from '../shared/core/ports/cache.js';
import type { IntentRecord } from '../shared/core/ports/state-store.js';
import type { LiveContext } from '../shared/live/context.js';
import { generateSignals, previousSession } from '../shared/live/generate-signals.js';
import { marketOpenCheck } from '../shared/live/market-open-check.js';
import { buildLiveContext } from '../shared/runtime/equity-live.js';
import { parseLiveEnv } from '../shared/runtime/live.js';
import { percentile, roundMs } from './stats.js';

export interface SignalsBenchmark {
  readonly symbols: number;
  readonly day: string;
  readonly seconds: number;
  readonly marketOpenCheckSeconds: number;
  readonly marketDataRequests: number;
  readonly totalBrokerRequests: number;
  readonly intents: number;
  readonly cache: boolean;
  /** Of `seconds`: wall time with at least one bar-cache read in flight (all misses: the day's first run). */
  readonly barCacheReadSeconds: number;
  /** Of `seconds`: wall time with at least one bar-cache write of a fetched series in flight. */
  readonly barCacheWriteSeconds: number;
}

export interface ExecuteOrdersBenchmark {
  readonly samples: number;
  readonly days: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly minMs: number;
  readonly maxMs: number;
  readonly coldStartMs: number;
}

export interface LiveBenchmarks {
  readonly signals: SignalsBenchmark;
  readonly executeOrders: ExecuteOrdersBenchmark;
}

const BASES = ['SPY', 'QQQ', 'AAPL', 'MSFT'] as const;
/**
 * A Monday inside the bundled data (2021-01-11 .. 2026-01-08), 730 days of history before it, after a
 * session (2025-12-05) at which about 90 of the synthetic symbols' moving averages cross: entries to size.
 */
const SIGNAL_DAY = '2025-12-08';
const BARS_PATH = '/v2/stocks/bars';

/** `S` and three letters: `SAAA`, `SAAB`, ... (the config accepts 1-5 letters, no digits). */
export function syntheticSymbol(i: number): string {
  const letter = (n: number) => String.fromCharCode(65 + (n % 26));
  return `S${letter(Math.floor(i / 676))}${letter(Math.floor(i / 26))}${letter(i)}`;
}

/**
 * Writes `count` bar files into `dir`: symbol i is a scaled convex mix of two of the bundled
 * series (all four share one date column), so the symbols differ in level and shape while every
 * bar keeps low <= open, close <= high.
 */
export function writeSyntheticData(dir: string, count: number): string[] {
  const parsed = BASES.map((symbol) => {
    const lines = readFileSync(join('data', `${symbol}.csv`), 'utf8')
      .trim()
      .split('\n');
    const header = lines[0] as string;
    if (header.trim() !== 'Date,Close,High,Low,Open,Volume') {
      throw new Error(`bench: data/${symbol}.csv: unexpected header "${header}"`);
    }
    return lines.slice(1).map((line) => {
      const [date, ...values] = line.split(',');
      return { date: date as string, values: values.map(Number) };
    });
  });
  const symbols: string[] = [];
  for (let i = 0; i < count; i++) {
    const a = parsed[i % 4] as (typeof parsed)[number];
    const b = parsed[(i + 1 + (Math.floor(i / 4) % 3)) % 4] as (typeof parsed)[number];
    const w = 0.2 + ((i * 37) % 61) / 100;
    const scale = 0.1 + ((i * 7919) % 1000) / 400;
    const rows = a.map((row, r) => {
      const other = (b[r] as (typeof b)[number]).values;
      const mixed = row.values.map((v, c) => w * v + (1 - w) * (other[c] as number));
      const prices = mixed.slice(0, 4).map((v) => (v * scale).toFixed(4));
      return `${row.date},${prices.join(',')},${Math.round(mixed[4] as number)}`;
    });
    const symbol = syntheticSymbol(i);
    writeFileSync(join(dir, `${symbol}.csv`), `Date,Close,High,Low,Open,Volume\n${rows.join('\n')}\n`);
    symbols.push(symbol);
  }
  return symbols;
}

/** A fresh temporary folder with `count` synthetic bar files in `data/` and a `config.yaml` watching them. */
export function writeSyntheticWorkspace(
  prefix: string,
  count: number,
  log?: (line: string) => void,
): { dir: string; dataDir: string; configPath: string; symbols: string[] } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const dataDir = join(dir, 'data');
  mkdirSync(dataDir);
  log?.(`bench: writing ${count} synthetic bar files to ${dataDir}\n`);
  const symbols = writeSyntheticData(dataDir, count);
  const configPath = join(dir, 'config.yaml');
  writeConfig(configPath, symbols);
  return { dir, dataDir, configPath, symbols };
}

/** The bundled config with the synthetic watchlist and room for the benchmark's orders. */
export function writeConfig(path: string, symbols: readonly string[]): void {
  let text = readFileSync('config/equity-strategy.yaml', 'utf8');
  const replace = (pattern: RegExp, replacement: string) => {
    if (!pattern.test(text)) throw new Error(`bench: config/equity-strategy.yaml has no ${pattern}`);
    text = text.replace(pattern, replacement);
  };
  replace(/^watchlist: .*$/m, `watchlist: [${symbols.join(', ')}]`);
  replace(/^( {4}maxOrdersPerDay:) \d+/m, '$1 1000');
  writeFileSync(path, text);
}

/** Wall time during which at least one call is in flight (concurrent calls count once). */
class BusyClock {
  #inFlight = 0;
  #since = 0;
  #ms = 0;
  async time<T>(call: () => Promise<T>): Promise<T> {
    if (this.#inFlight++ === 0) this.#since = performance.now();
    try {
      return await call();
    } finally {
      if (--this.#inFlight === 0) this.#ms += performance.now() - this.#since;
    }
  }
  get seconds(): number {
    return Math.round(this.#ms) / 1000;
  }
}

/** The cache with its bar reads and writes timed: the share of the signal step they take. */
function timedBarCache(cache: Cache) {
  const reads = new BusyClock();
  const writes = new BusyClock();
  const timed: Cache = {
    getBars: (key) => reads.time(() => cache.getBars(key)),
    putBars: (key, series, ttlSeconds) => writes.time(() => cache.putBars(key, series, ttlSeconds)),
    acquireLock: (name, ttlSeconds, owner) => cache.acquireLock(name, ttlSeconds, owner),
    takeRateSlot: (key, limit, windowSeconds) => cache.takeRateSlot(key, limit, windowSeconds),
    putSnapshot: (key, value, ttlSeconds) => cache.putSnapshot(key, value, ttlSeconds),
    getSnapshot: (key) => cache.getSnapshot(key),
  };
  return { cache: timed, reads, writes };
}

const at = (day: string, time: string) => newYorkToUtc(day, time);
const secondsSince = (t0: number) => (performance.now() - t0) / 1000;

async function benchSignals(
  ctx: LiveContext,
  alpaca: { readonly requestLog: readonly { method: string; path: string }[] },
  symbols: readonly string[],
): Promise<{ result: SignalsBenchmark; closes: Map<string, number> }> {
  // The local server reads each bar file on first use; read them all now (5 small requests), so
  // the timed run measures the function, not the local server's CSV parsing.
  const previous = await previousSession(ctx, SIGNAL_DAY);
  const last = await ctx.marketData.getDailyBars({
    symbols,
    from: previous,
    to: previous,
    adjustment: 'raw',
  });
  const closes = new Map(last.map((s) => [s.symbol, s.close[s.close.length - 1] as number]));

  let t0 = performance.now();
  await marketOpenCheck(ctx, at(SIGNAL_DAY, '09:00'));
  const marketOpenCheckSeconds = secondsSince(t0);

  if (ctx.cache === undefined) throw new Error('bench: the local stack runs without its cache');
  const timed = timedBarCache(ctx.cache);
  const before = alpaca.requestLog.length;
  t0 = performance.now();
  const signals = await generateSignals({ ...ctx, cache: timed.cache }, at(SIGNAL_DAY, '09:10'));
  const seconds = secondsSince(t0);
  const requests = alpaca.requestLog.slice(before);
  const result: SignalsBenchmark = {
    symbols: symbols.length,
    day: SIGNAL_DAY,
    seconds: Math.round(seconds * 1000) / 1000,
    marketOpenCheckSeconds: Math.round(marketOpenCheckSeconds * 1000) / 1000,
    marketDataRequests: requests.filter((r) => r.method === 'GET' && r.path === BARS_PATH).length,
    totalBrokerRequests: requests.length,
    intents: signals.intents.length,
    cache: true,
    barCacheReadSeconds: timed.reads.seconds,
    barCacheWriteSeconds: timed.writes.seconds,
  };
  process.stderr.write(
    `bench: generate-signals, ${symbols.length} symbols: ${result.seconds} s, ` +
      `${result.marketDataRequests} bar requests, ${result.totalBrokerRequests} broker requests; ` +
      `bar cache reads ${result.barCacheReadSeconds} s, writes ${result.barCacheWriteSeconds} s\n`,
  );
  return { result, closes };
}

type Handler = (event: unknown, context: ReturnType<typeof localLambdaContext>) => Promise<unknown>;

async function benchExecuteOrders(
  ctx: LiveContext,
  alpaca: { setTime(time: string): void },
  symbols: readonly string[],
  closes: ReadonlyMap<string, number>,
  samples: number,
  perDay: number,
): Promise<ExecuteOrdersBenchmark> {
  const open = (await import('../functions/market-open-check/handler.js')).handler as Handler;
  const execute = (await import('../functions/execute-orders/handler.js')).handler as Handler;
  const endOfDay = (await import('../functions/end-of-day/handler.js')).handler as Handler;
  const calendar = await ctx.broker.getCalendar({
    from: SIGNAL_DAY,
    to: new Date(Date.parse(`${SIGNAL_DAY}T00:00:00Z`) + 40 * 86_400_000).toISOString().slice(0, 10),
  });
  const days = calendar
    .map((d) => d.date)
    .filter((d) => d > SIGNAL_DAY)
    .slice(0, Math.ceil((samples + 1) / perDay));
  if (days.length * perDay < samples + 1)
    throw new Error('bench: not enough trading days after the signal day');

  // One share of the cheapest symbols: the paper account's 100 000 of cash must cover every day's
  // market-on-open buys, which fill at each next open.
  const cheapest = [...symbols].sort((a, b) => (closes.get(a) ?? 0) - (closes.get(b) ?? 0)).slice(0, perDay);
  let posts: number[] = [];
  const onRequest = (message: unknown) => {
    const { request } = message as { request: IncomingMessage };
    if (request.method === 'POST' && request.url === '/v2/orders') posts.push(performance.now());
  };
  subscribe('http.server.request.start', onRequest);
  const latencies: number[] = [];
  try {
    let n = 0;
    for (const day of days) {
      alpaca.setTime(at(day, '08:00'));
      await open(
        { step: 'market-open-check', scheduledTime: at(day, '09:00') },
        localLambdaContext('market-open-check', randomUUID()),
      );
      for (let j = 0; j < perDay && n <= samples; j++, n++) {
        const symbol = cheapest[j % cheapest.length] as string;
        const price = closes.get(symbol) ?? 100;
        const created = at(day, '09:10');
        const intent: IntentRecord = {
          clientOrderId: clientOrderId({
            stage: ctx.stage,
            strategy: ctx.config.name,
            symbol,
            date: day,
            purpose: 'entry',
          }),
          date: day,
          strategy: ctx.config.name,
          symbol,
          purpose: 'entry',
          side: 'buy',
          qty: 1,
          type: 'market',
          timeInForce: 'opg',
          referencePrice: price,
          protectiveStop: Math.round(price * 95) / 100,
          status: 'recorded',
          filledQty: 0,
          configHash: ctx.configHash,
          gitCommit: ctx.gitCommit,
          createdAt: created,
          updatedAt: created,
        };
        await ctx.store.createIntent(intent);
        const second = 15 * 60 + j;
        const time = `09:${String(Math.floor(second / 60)).padStart(2, '0')}:${String(second % 60).padStart(2, '0')}`;
        posts = [];
        const t0 = performance.now();
        const result = (await execute(
          { step: 'execute-orders', scheduledTime: at(day, time) },
          localLambdaContext('execute-orders', randomUUID()),
        )) as { status: string; intents: { status: string }[] };
        const post = posts[0];
        if (result.status !== 'executed' || result.intents[0]?.status !== 'accepted' || post === undefined) {
          throw new Error(
            `bench: execute-orders on ${day} ${time} did not send its order: ${JSON.stringify(result)}`,
          );
        }
        latencies.push(post - t0);
      }
      // The day ends as scheduled: end-of-day books the fills, so the next morning's reconciliation
      // finds the broker's shares in the strategy's positions (not a difference to block entries on).
      alpaca.setTime(at(day, '16:15'));
      await endOfDay(
        { step: 'end-of-day', scheduledTime: at(day, '16:15') },
        localLambdaContext('end-of-day', randomUUID()),
      );
    }
  } finally {
    unsubscribe('http.server.request.start', onRequest);
  }
  const [coldStartMs, ...warm] = latencies;
  const result: ExecuteOrdersBenchmark = {
    samples: warm.length,
    days: days.length,
    p50Ms: roundMs(percentile(warm, 50)),
    p99Ms: roundMs(percentile(warm, 99)),
    minMs: roundMs(Math.min(...warm)),
    maxMs: roundMs(Math.max(...warm)),
    coldStartMs: roundMs(coldStartMs as number),
  };
  process.stderr.write(
    `bench: execute-orders handler to order POST: p50 ${result.p50Ms} ms, p99 ${result.p99Ms} ms ` +
      `(${result.samples} samples; cold start ${result.coldStartMs} ms)\n`,
  );
  return result;
}

/** Runs both live benchmarks on one local stack, then stops it and removes its files. */
export async function runLiveBenchmarks(
  options: { symbols?: number; samples?: number; perDay?: number } = {},
): Promise<LiveBenchmarks> {
  const count = options.symbols ?? 500;
  const { dir, dataDir, configPath, symbols } = writeSyntheticWorkspace('qs-bench-live-', count, (line) =>
    process.stderr.write(line),
  );

  const stdoutWrite = process.stdout.write;
  const stack = await startLocalLiveStack({
    dataDir,
    startTime: at(SIGNAL_DAY, '08:00'),
    configPath,
    withCache: true,
  }).catch((error: unknown) => {
    // `npm run bench` installs redis-server first (prebench); run directly, say what is missing.
    rmSync(dir, { recursive: true, force: true });
    if (!(error instanceof RedisServerNotFoundError)) throw error;
    process.stderr.write(`bench: ${error.message}\n`);
    process.exit(1);
  });
  try {
    process.stdout.write = (() => true) as typeof process.stdout.write;
    // The AWS SDK clients and the handlers read the environment, as in Lambda.
    Object.assign(process.env, stack.env);
    const ctx = await buildLiveContext(parseLiveEnv(process.env));
    const { result: signals, closes } = await benchSignals(ctx, stack.alpaca, symbols);
    const executeOrders = await benchExecuteOrders(
      ctx,
      stack.alpaca,
      symbols,
      closes,
      options.samples ?? 200,
      options.perDay ?? 40,
    );
    return { signals, executeOrders };
  } finally {
    process.stdout.write = stdoutWrite;
    await stack.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
