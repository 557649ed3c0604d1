/**
 * The stream benchmark (`stream` in `npm run bench`). The local stream server runs in this process
 * (its work counts against the consumer's); the paper broker and dynalite run in a worker thread
 * each (bench/stream-servers.ts), as Alpaca and DynamoDB run elsewhere in production:
 *
 * - `messagesPerSecond`: market messages (trades and quotes, 100 a frame as Alpaca batches them,
 *   for `symbols` held synthetic symbols) through the real `ws` connection, the zod validation of
 *   every message, and the engine's decision for each (the core's stop test and the breakers on
 *   marked equity; prices above the stops, so nothing is sent), from the first frame sent to the
 *   last message handled; `messagesPerCpuSecond` divides by this process's CPU time instead (stream
 *   server and consumer together; the broker threads are idle meanwhile), the one-core rate when
 *   the machine is shared. The symbols held are those the paper account's $100,000 buys, a share each.
 * - `p50DecideMs` / `p99DecideMs`: per message, received (the frame's arrival) -> decided.
 * - `p50OrderMs` / `p99OrderMs`: per exit, received (the consumer's arrival time of the frame) ->
 *   the order POST issued to the local broker: one trade through the stop of each held symbol in
 *   turn, each position with its protective stop resting at the broker, so the exit records its
 *   intent in dynalite, cancels the stop and lists the open orders (together), then sends the order.
 *   The first {@link WARM_UP_EXITS} exits warm the path and are not counted (`firstOrderMs` is the
 *   very first, cold).
 */
import { rmSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { keepAliveFetch } from '../shared/adapters/alpaca/keep-alive-fetch.js';
import { startLocalStream } from '../shared/adapters/local/alpaca-stream-server.js';
import { LOCAL_KEYS } from '../shared/adapters/local/live-stack.js';
import { BrokerRejectedError } from '../shared/core/errors.js';
import { newYorkToUtc } from '../shared/core/live/orders.js';
import { marketOpenCheck } from '../shared/live/market-open-check.js';
import { buildLiveContext } from '../shared/runtime/equity-live.js';
import { parseLiveEnv } from '../shared/runtime/live.js';
import { MemoryLease } from '../shared/stream/lease.js';
import { startStream } from '../shared/stream/run.js';
import { streamServersScript } from './entries.js';
import { writeSyntheticWorkspace } from './live.js';
import { roundMs } from './stats.js';

export interface StreamBenchmark {
  readonly messages: number;
  readonly messagesPerSecond: number;
  /** Messages per second of this process's CPU time (server and consumer): one core's rate on a busy machine. */
  readonly messagesPerCpuSecond: number;
  readonly p50DecideMs: number;
  readonly p99DecideMs: number;
  readonly orderSamples: number;
  readonly p50OrderMs: number;
  readonly p99OrderMs: number;
  /** The first exit's received -> order POST, before the path is warm (not in the percentiles). */
  readonly firstOrderMs: number;
}

const DAY = '2025-12-08';

/** One of the servers' worker threads (bench/stream-servers.ts), driven by messages. */
async function startServerThread(options: {
  role: 'broker' | 'state';
  dataDir: string;
  startTime: string;
  configPath: string;
}) {
  const script = await streamServersScript();
  const worker = new Worker(script.url, {
    workerData: options,
    ...(script.execArgv === undefined ? {} : { execArgv: script.execArgv }),
  });
  type Reply =
    | { kind: 'ready'; env: Record<string, string> }
    | { kind: 'done' }
    | { kind: 'failed'; message: string };
  const next = () =>
    new Promise<Reply>((resolve, reject) => {
      worker.once('message', (reply: Reply) =>
        reply.kind === 'failed'
          ? reject(new Error(`bench: stream servers (${options.role}): ${reply.message}`))
          : resolve(reply),
      );
      worker.once('error', reject);
    });
  const ready = await next();
  if (ready.kind !== 'ready') throw new Error(`bench: stream servers (${options.role}): no environment`);
  const command = async (message: { kind: 'setTime'; time: string } | { kind: 'close' }) => {
    const reply = next();
    worker.postMessage(message);
    await reply;
  };
  return {
    env: ready.env,
    setTime: (time: string) => command({ kind: 'setTime', time }),
    async close() {
      await command({ kind: 'close' });
      await worker.terminate();
    },
  };
}

/** The paper broker and dynalite, each in its own worker thread. */
async function startServersThreads(options: { dataDir: string; startTime: string; configPath: string }) {
  const [broker, state] = await Promise.all([
    startServerThread({ ...options, role: 'broker' }),
    startServerThread({ ...options, role: 'state' }),
  ]);
  return {
    env: { ...state.env, ...broker.env },
    setTime: (time: string) => broker.setTime(time),
    async close() {
      await broker.close();
      await state.close();
    },
  };
}
/** Exits that warm the path before the order latency is measured. */
const WARM_UP_EXITS = 20;

export async function runStreamBenchmark(
  options: { symbols?: number; messages?: number } = {},
): Promise<StreamBenchmark> {
  const count = options.symbols ?? 200;
  const total = options.messages ?? 300_000;
  const { dir, dataDir, configPath, symbols } = writeSyntheticWorkspace('qs-bench-stream-', count);
  const stdoutWrite = process.stdout.write;
  const stack = await startServersThreads({ dataDir, startTime: newYorkToUtc(DAY, '08:00'), configPath });
  const server = await startLocalStream(LOCAL_KEYS);
  const brokerFetch = keepAliveFetch();
  try {
    process.stdout.write = (() => true) as typeof process.stdout.write;
    Object.assign(process.env, stack.env);
    const ctx = {
      // The broker transport of the stream task (shared/stream/main.ts).
      ...(await buildLiveContext(parseLiveEnv(process.env), { brokerFetch })),
      log: { info() {}, warn() {}, error() {} },
    };
    await marketOpenCheck(ctx, newYorkToUtc(DAY, '09:00'));
    const now = newYorkToUtc(DAY, '10:00');
    await stack.setTime(now);
    // One share of each symbol the paper account's cash buys (a refused buy is skipped), bought in
    // session, with a stop 5% under its price.
    for (const [i, symbol] of symbols.entries()) {
      await ctx.broker
        .submitOrder({
          clientOrderId: `bench-${i}`,
          symbol,
          side: 'buy',
          qty: 1,
          type: 'market',
          timeInForce: 'day',
        })
        .catch((error: unknown) => {
          if (!(error instanceof BrokerRejectedError)) throw error;
        });
    }
    const positions = await ctx.broker.getPositions();
    const held = positions.map((p) => p.symbol);
    const price = new Map(positions.map((p) => [p.symbol, p.currentPrice]));
    const stopOf = (p: { currentPrice: number }) => Math.floor(p.currentPrice * 95) / 100;
    // Each position's protective stop rests at the broker, as the risk check leaves it: an exit
    // cancels it before the order is sent.
    for (const [i, p] of positions.entries()) {
      await ctx.broker.submitOrder({
        clientOrderId: `bench-stop-${i}`,
        symbol: p.symbol,
        side: 'sell',
        qty: p.qty,
        type: 'stop',
        stopPrice: stopOf(p),
        timeInForce: 'gtc',
      });
    }
    await ctx.store.putPositions(
      DAY,
      positions.map((p) => ({
        symbol: p.symbol,
        qty: p.qty,
        avgEntryPrice: p.avgEntryPrice,
        stop: stopOf(p),
        entryRef: p.avgEntryPrice,
        initialRisk: p.currentPrice * 0.05,
        sessionsHeld: 1,
      })),
    );
    const run = await startStream({
      ctx,
      url: server.url,
      ...LOCAL_KEYS,
      lease: new MemoryLease(),
      holder: 'bench',
      now: () => Date.parse(now),
      pollMs: 3_600_000,
      flushMs: 3_600_000,
      emit: () => {},
      // Every price is a decision; with the trailing stop off, none of them ratchets a stop.
      engine: { intradayTrail: false },
    });

    // Throughput: frames of 100 trades and quotes above the stops.
    const frames: string[] = [];
    const t = new Date(Date.parse(now)).toISOString();
    for (let f = 0; f < total / 100; f++) {
      const frame = [];
      for (let k = 0; k < 100; k++) {
        const symbol = held[(f * 100 + k) % held.length] as string;
        const p = Math.round((price.get(symbol) as number) * 100) / 100;
        frame.push(
          k % 2 === 0
            ? { T: 't', S: symbol, i: f * 100 + k, x: 'V', p, s: 100, c: ['@'], t, z: 'C' }
            : { T: 'q', S: symbol, bx: 'V', bp: p, bs: 1, ax: 'V', ap: p + 0.01, as: 1, c: ['R'], t, z: 'C' },
        );
      }
      frames.push(JSON.stringify(frame));
    }
    const before = run.consumer.counts.messages;
    const cpuBefore = process.cpuUsage();
    const started = performance.now();
    for (let i = 0; i < frames.length; i++) {
      server.sendRaw(frames[i] as string);
      // Yield now and then so the consumer reads while the server writes (one event loop).
      if (i % 50 === 49) await new Promise((resolve) => setImmediate(resolve));
    }
    while (run.consumer.counts.messages - before < total)
      await new Promise((resolve) => setImmediate(resolve));
    const seconds = (performance.now() - started) / 1000;
    const cpu = process.cpuUsage(cpuBefore);
    const cpuSeconds = (cpu.user + cpu.system) / 1e6;
    const throughput = run.summary();

    // Exits: one trade through the stop per symbol, one at a time. The first WARM_UP_EXITS warm the
    // path (the exit code compiled, each client's sockets open), as in a consumer running all day,
    // and are not counted; the very first one is reported alone (`firstOrderMs`).
    let firstOrderMs = Number.NaN;
    for (const [i, symbol] of held.entries()) {
      const p = Math.round((price.get(symbol) as number) * 90) / 100;
      server.publish([{ T: 't', S: symbol, i: 10_000_000 + i, x: 'V', p, s: 100, c: ['@'], t, z: 'C' }]);
      // The wait sleeps (a timer, not a spin of the event loop): the process is idle between
      // exits, as a consumer waiting for the market is, so the scheduler does not treat it as busy.
      while (run.engine.counts.exits + run.engine.counts.errors <= i)
        await new Promise((resolve) => setTimeout(resolve, 2));
      await run.engine.settled();
      if (i === 0) firstOrderMs = run.summary().order.max;
      else if (i === WARM_UP_EXITS - 1) run.summary();
    }
    if (run.engine.counts.errors > 0)
      throw new Error(`bench: ${run.engine.counts.errors} stream exits failed`);
    const resting = (await ctx.broker.listOrders({ status: 'open' })).filter((o) => o.type === 'stop');
    if (resting.length > 0) throw new Error(`bench: ${resting.length} stops still rest after the exits`);
    const orders = run.summary();
    await run.stop('bench finished');
    const result: StreamBenchmark = {
      messages: total,
      messagesPerSecond: Math.round(total / seconds),
      messagesPerCpuSecond: Math.round(total / cpuSeconds),
      p50DecideMs: roundMs(throughput.decide.p50),
      p99DecideMs: roundMs(throughput.decide.p99),
      orderSamples: orders.order.count,
      p50OrderMs: roundMs(orders.order.p50),
      p99OrderMs: roundMs(orders.order.p99),
      firstOrderMs: roundMs(firstOrderMs),
    };
    process.stderr.write(
      `bench: stream ${result.messagesPerSecond} messages/s (${result.messagesPerCpuSecond} per CPU second), decide p50 ${result.p50DecideMs} ms p99 ${result.p99DecideMs} ms, ` +
        `received to order POST p50 ${result.p50OrderMs} ms p99 ${result.p99OrderMs} ms (${result.orderSamples} exits after ${WARM_UP_EXITS} to warm up; the first ${result.firstOrderMs} ms)\n`,
    );
    return result;
  } finally {
    process.stdout.write = stdoutWrite;
    await server.close();
    brokerFetch.close();
    await stack.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
