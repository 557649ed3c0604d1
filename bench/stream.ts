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
 *   the machine is shared. A share of each of the 128 synthetic symbols is held (the bench's paper
 *   account starts with $1,000,000, so that none is refused).
 * - `p50DecideMs` / `p99DecideMs`: per message, received (the frame's arrival) -> decided.
 * - `p50OrderMs` / `p99OrderMs`: per exit, received (the consumer's arrival time of the frame) ->
 *   the order POST issued to the local broker: one trade through the stop of each held symbol in
 *   turn, each position with its protective stop resting at the broker, so the exit records its
 *   intent in dynalite, cancels the stop and lists the open orders (together), then sends the order.
 *   The exits run in rounds, one session each (the day's exit id is spent once a symbol exits):
 *   between rounds, outside the timed path, the next session is opened and the positions and their
 *   stops are put back, until {@link ORDER_SAMPLES} exits are counted (the p99 of 1,000 is the
 *   tenth slowest, not the second as with the 124 of one round). The first {@link WARM_UP_EXITS}
 *   exits warm the path and are not counted (`firstOrderMs` is the very first, cold).
 *   `orderPhasesMs` says when each of the exit's calls ended (see {@link ExitPhases}).
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { PerformanceObserver } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { keepAliveFetch } from '../shared/adapters/alpaca/keep-alive-fetch.js';
import { startLocalStream } from '../shared/adapters/local/alpaca-stream-server.js';
import { LOCAL_KEYS } from '../shared/adapters/local/live-stack.js';
import { BrokerRejectedError } from '../shared/core/errors.js';
import { newYorkToUtc } from '../shared/core/live/orders.js';
import type { Notification } from '../shared/core/ports/notifier.js';
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
  /**
   * Where received -> order POST goes: per call of the exit (the intent write, the first cancel,
   * the order list), the ms from the frame's arrival to its end (`start`: to the exit's first
   * call; `post`: to the POST itself); `gc`: the consumer thread's garbage-collection pauses in
   * between. For the median exit (`p50`) and on average over the exits at or above the p99 (`slowest`).
   */
  readonly orderPhasesMs: Record<string, { p50: number; slowest: number }>;
  /**
   * CPU time per exit over the exits (the bench's waits included): the whole process (consumer,
   * stream server, broker and dynalite threads) and the consumer's thread alone (Linux; NaN elsewhere).
   */
  readonly orderCpuMsPerExit: { process: number; consumerThread: number };
}

/** CPU time of this thread in ms (10 ms resolution), from /proc (Linux); NaN where it cannot be read. */
function threadCpuMs(): number {
  try {
    const fields = (readFileSync('/proc/thread-self/stat', 'utf8').split(') ')[1] ?? '').split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return Number.NaN;
  }
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
      const onError = (error: Error) => {
        worker.off('message', onMessage);
        reject(error);
      };
      const onMessage = (reply: Reply) => {
        worker.off('error', onError);
        if (reply.kind === 'failed')
          reject(new Error(`bench: stream servers (${options.role}): ${reply.message}`));
        else resolve(reply);
      };
      worker.once('message', onMessage);
      worker.once('error', onError);
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
/** Exits counted in the order latency's percentiles, at least (a p99 of 1,000 is the 10th slowest). */
const ORDER_SAMPLES = 1_000;

/** The weekday after `day` (YYYY-MM-DD): the next session of the bench's December weeks, which have no holiday. */
function nextWeekday(day: string): string {
  let t = Date.parse(`${day}T12:00:00Z`);
  do t += 86_400_000;
  while ([0, 6].includes(new Date(t).getUTCDay()));
  return new Date(t).toISOString().slice(0, 10);
}

/** Waits (sleeping on a timer, 1 ms a look) until `done()`; fails after 30 s. */
async function until(done: () => boolean): Promise<void> {
  const deadline = performance.now() + 30_000;
  while (!done()) {
    if (performance.now() > deadline) throw new Error('bench: stream: a wait timed out after 30 s');
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

/** `promise`, or a failure after 30 s. */
async function withTimeout<T>(promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('bench: stream: an exit did not end within 30 s')), 30_000);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Runs `work` over the items, eight at a time (the bench's set-up, outside the timed path). */
async function inBatches<T>(items: readonly T[], work: (item: T, index: number) => Promise<unknown>) {
  for (let i = 0; i < items.length; i += 8) {
    await Promise.all(items.slice(i, i + 8).map((item, k) => work(item, i + k)));
  }
}

/** The calls of an exit the bench times (the first of each during one exit), and the POST. */
type ExitCall = 'intent' | 'cancel' | 'list' | 'post';

/**
 * When each call of an exit started and ended: where the received -> order POST time goes
 * (`stream.orderPhasesMs`). Only the first call of each kind per exit is timed (the sweep's list
 * after the POST is not).
 */
class ExitPhases {
  private current = new Map<ExitCall, { start: number; end: number }>();
  private readonly rows: Map<ExitCall, { start: number; end: number }>[] = [];
  /** Wraps a port so the named methods are timed (the bench's context; the engine's calls go through it). */
  wrap<T extends object>(target: T, calls: Partial<Record<keyof T & string, ExitCall>>): T {
    return new Proxy(target, {
      get: (object, property, receiver) => {
        const value = Reflect.get(object, property, receiver);
        const call = calls[property as keyof T & string];
        if (typeof value !== 'function') return value;
        if (call === undefined) return value.bind(object);
        return (...args: unknown[]) => {
          const start = performance.now();
          const first = !this.current.has(call);
          if (first) this.current.set(call, { start, end: start });
          const result = (value as (...a: unknown[]) => Promise<unknown>).apply(object, args);
          if (!first || call === 'post') return result;
          return result.finally(() => {
            const row = this.current.get(call);
            if (row !== undefined) row.end = performance.now();
          });
        };
      },
    });
  }
  /** Ends the exit's row (kept when `counted`) and starts the next. */
  next(counted: boolean): void {
    if (counted) this.rows.push(this.current);
    this.current = new Map();
  }
  /**
   * Per call, the ms from the frame's arrival (the POST's time less the exit's order latency) to
   * its end (`start`: to the exit's first call; `post`: to the POST); `gc`: the ms of this thread's
   * garbage-collection pauses between the two. Each for the median exit, and the mean over the
   * exits whose latency is at or above the p99.
   */
  summary(latencies: readonly number[], p99: number, gc: readonly { start: number; end: number }[]) {
    if (latencies.length !== this.rows.length) throw new Error('bench: exit phases and latencies disagree');
    const out: Record<string, { p50: number; slowest: number }> = {};
    for (const call of ['start', 'cancel', 'list', 'intent', 'post', 'gc'] as const) {
      const all: number[] = [];
      const slow: number[] = [];
      this.rows.forEach((row, i) => {
        const post = row.get('post');
        const latency = latencies[i] as number;
        if (post === undefined) return;
        const received = post.start - latency;
        const at =
          call === 'gc'
            ? gc.reduce(
                (sum, g) => sum + Math.max(0, Math.min(g.end, post.start) - Math.max(g.start, received)),
                0,
              )
            : call === 'start'
              ? Math.min(...[...row.values()].map((r) => r.start)) - received
              : call === 'post'
                ? latency
                : (row.get(call)?.end ?? Number.NaN) - received;
        if (!Number.isFinite(at)) return;
        all.push(at);
        if (latency >= p99) slow.push(at);
      });
      all.sort((a, b) => a - b);
      out[call] = {
        p50: roundMs(all[Math.floor(all.length / 2)] ?? Number.NaN),
        slowest: roundMs(slow.reduce((a, b) => a + b, 0) / slow.length),
      };
    }
    return out;
  }
}

export async function runStreamBenchmark(
  options: { symbols?: number; messages?: number } = {},
): Promise<StreamBenchmark> {
  const count = options.symbols ?? 128;
  const total = options.messages ?? 300_000;
  const { dir, dataDir, configPath, symbols } = writeSyntheticWorkspace('qs-bench-stream-', count);
  // Cash for a share of every symbol (the bundled config's $100,000 buys fewer than 150 of 200).
  const config = readFileSync(configPath, 'utf8');
  if (!/^ {2}initialCash: \d+$/m.test(config)) throw new Error(`bench: ${configPath} has no initialCash`);
  writeFileSync(configPath, config.replace(/^( {2}initialCash:) \d+$/m, '$1 1000000'));
  const stdoutWrite = process.stdout.write;
  const stack = await startServersThreads({ dataDir, startTime: newYorkToUtc(DAY, '08:00'), configPath });
  const server = await startLocalStream(LOCAL_KEYS);
  const brokerFetch = keepAliveFetch();
  try {
    process.stdout.write = (() => true) as typeof process.stdout.write;
    Object.assign(process.env, stack.env);
    const built = await buildLiveContext(parseLiveEnv(process.env), { brokerFetch });
    const phases = new ExitPhases();
    let exitAlerted = () => {};
    const ctx = {
      // The broker transport of the stream task (shared/stream/main.ts).
      ...built,
      broker: phases.wrap(built.broker, { cancelOrder: 'cancel', listOrders: 'list', submitOrder: 'post' }),
      store: phases.wrap(built.store, { createIntent: 'intent' }),
      // An exit's last step is its alert (or the failure's): the bench waits for it without polling.
      notifier: {
        async publish(notification: Notification) {
          await built.notifier.publish(notification);
          if (/^Stream (exit at market|action failed)/.test(notification.subject)) exitAlerted();
        },
      },
      log: { info() {}, warn() {}, error() {} },
    };
    // One session: the market-open check, one share bought of each symbol (a refused buy is
    // skipped), its protective stop 5% under its price resting at the broker, as the
    // risk check leaves it, and the positions record. Each round of exits runs on a session of its
    // own, as the exit's client order id is the day's (one flatten per symbol and day).
    const stopOf = (p: { currentPrice: number }) => Math.floor(p.currentPrice * 95) / 100;
    let clock = Date.parse(newYorkToUtc(DAY, '10:00'));
    const openSession = async (day: string, round: number) => {
      await stack.setTime(newYorkToUtc(day, '08:00'));
      await marketOpenCheck(ctx, newYorkToUtc(day, '09:00'));
      const now = newYorkToUtc(day, '10:00');
      await stack.setTime(now);
      clock = Date.parse(now);
      await inBatches(symbols, (symbol, i) =>
        ctx.broker
          .submitOrder({
            clientOrderId: `bench-${round}-${i}`,
            symbol,
            side: 'buy',
            qty: 1,
            type: 'market',
            timeInForce: 'day',
          })
          .catch((error: unknown) => {
            if (!(error instanceof BrokerRejectedError)) throw error;
          }),
      );
      const positions = await ctx.broker.getPositions();
      await inBatches(positions, (p, i) =>
        ctx.broker.submitOrder({
          clientOrderId: `bench-stop-${round}-${i}`,
          symbol: p.symbol,
          side: 'sell',
          qty: p.qty,
          type: 'stop',
          stopPrice: stopOf(p),
          timeInForce: 'gtc',
        }),
      );
      await ctx.store.putPositions(
        day,
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
      return positions;
    };
    let positions = await openSession(DAY, 0);
    const held = positions.map((p) => p.symbol);
    const price = new Map(positions.map((p) => [p.symbol, p.currentPrice]));
    const run = await startStream({
      ctx,
      url: server.url,
      ...LOCAL_KEYS,
      lease: new MemoryLease(),
      holder: 'bench',
      now: () => clock,
      pollMs: 3_600_000,
      flushMs: 3_600_000,
      emit: () => {},
      // Every price is a decision; with the trailing stop off, none of them ratchets a stop.
      engine: { intradayTrail: false },
    });

    // Throughput: frames of 100 trades and quotes above the stops.
    const frames: string[] = [];
    const t = new Date(clock).toISOString();
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

    // Exits: one trade through the stop per held symbol, one at a time, in rounds of one session
    // each (the positions bought again and their stops placed between rounds, outside the timed
    // path) until ORDER_SAMPLES exits are counted. The first WARM_UP_EXITS warm the path (the exit
    // code compiled, each client's sockets open), as in a consumer running all day, and are not
    // counted; the very first one is reported alone (`firstOrderMs`).
    let firstOrderMs = Number.NaN;
    let exitsDone = 0;
    // The consumer thread's garbage-collection pauses (inside an exit, they delay it).
    const gcPauses: { start: number; end: number }[] = [];
    const gcWatch = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) gcPauses.push({ start: e.startTime, end: e.startTime + e.duration });
    });
    gcWatch.observe({ entryTypes: ['gc'] });
    let exitCpu = 0;
    let exitThreadCpu = 0;
    let day = DAY;
    for (let round = 0; exitsDone - WARM_UP_EXITS < ORDER_SAMPLES; round++) {
      if (round > 0) {
        day = nextWeekday(day);
        positions = await openSession(day, round);
        await run.engine.refresh();
        // The consumer subscribes to the trades of the symbols held now.
        const actions = server.actions.length;
        run.consumer.resubscribe();
        await until(() => server.actions.length > actions && server.actions.at(-1)?.action === 'subscribe');
      }
      if (positions.length === 0) throw new Error(`bench: no position bought on ${day}`);
      const at = new Date(clock).toISOString();
      const cpuAtStart = process.cpuUsage();
      const threadAtStart = threadCpuMs();
      for (const p of positions) {
        phases.next(false);
        const alerted = new Promise<void>((resolve) => {
          exitAlerted = resolve;
        });
        const through = Math.round(p.currentPrice * 90) / 100;
        server.publish([
          {
            T: 't',
            S: p.symbol,
            i: 10_000_000 + exitsDone,
            x: 'V',
            p: through,
            s: 100,
            c: ['@'],
            t: at,
            z: 'C',
          },
        ]);
        // The wait sleeps until the exit's alert (no timer polls the event loop meanwhile): the
        // process is idle between exits, as a consumer waiting for the market is.
        await withTimeout(alerted);
        await run.engine.settled();
        if (run.engine.counts.exits + run.engine.counts.errors <= exitsDone)
          throw new Error(`bench: the exit of ${p.symbol} alerted before it was counted`);
        phases.next(exitsDone >= WARM_UP_EXITS);
        if (exitsDone === 0) firstOrderMs = run.summary().order.max;
        else if (exitsDone === WARM_UP_EXITS - 1) run.summary();
        exitsDone++;
      }
      const used = process.cpuUsage(cpuAtStart);
      exitCpu += (used.user + used.system) / 1000;
      exitThreadCpu += threadCpuMs() - threadAtStart;
    }
    if (run.engine.counts.errors > 0)
      throw new Error(`bench: ${run.engine.counts.errors} stream exits failed`);
    const resting = (await ctx.broker.listOrders({ status: 'open' })).filter((o) => o.type === 'stop');
    if (resting.length > 0) throw new Error(`bench: ${resting.length} stops still rest after the exits`);
    const orders = run.summary();
    gcWatch.disconnect();
    const orderPhasesMs = phases.summary(orders.order.samples, orders.order.p99, gcPauses);
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
      orderPhasesMs,
      orderCpuMsPerExit: {
        process: roundMs(exitCpu / exitsDone),
        consumerThread: roundMs(exitThreadCpu / exitsDone),
      },
    };
    process.stderr.write(
      `bench: stream ${result.messagesPerSecond} messages/s (${result.messagesPerCpuSecond} per CPU second), decide p50 ${result.p50DecideMs} ms p99 ${result.p99DecideMs} ms, ` +
        `received to order POST p50 ${result.p50OrderMs} ms p99 ${result.p99OrderMs} ms (${result.orderSamples} exits after ${WARM_UP_EXITS} to warm up; the first ${result.firstOrderMs} ms); ` +
        `after the frame's arrival (ms, median exit / slowest 1 %): ${Object.entries(orderPhasesMs)
          .map(([call, { p50, slowest }]) => `${call} ${p50} / ${slowest}`)
          .join(
            ', ',
          )}; CPU per exit ${result.orderCpuMsPerExit.process} ms (consumer thread ${result.orderCpuMsPerExit.consumerThread} ms)\n`,
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
