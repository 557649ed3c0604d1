import { afterEach, describe, expect, it } from 'vitest';
import { type LocalStream, startLocalStream } from '../../shared/adapters/local/alpaca-stream-server.js';
import type { Broker } from '../../shared/core/ports/broker.js';
import type { StateStore } from '../../shared/core/ports/state-store.js';
import { executeOrders } from '../../shared/live/execute-orders.js';
import { generateSignals } from '../../shared/live/generate-signals.js';
import { marketOpenCheck } from '../../shared/live/market-open-check.js';
import { riskCheck } from '../../shared/live/risk-check.js';
import { StreamConsumer } from '../../shared/stream/consumer.js';
import { MemoryLease } from '../../shared/stream/lease.js';
import { type StreamRun, startStream } from '../../shared/stream/run.js';
import { startLiveStack } from '../helpers/live-stack.js';

const KEYS = { keyId: 'stream-key', secret: 'stream-secret-0123456789' };
const trade = (i: number) => ({
  T: 't',
  S: 'SPY',
  i,
  x: 'V',
  p: 100,
  s: 100,
  c: ['@'],
  t: '2025-06-02T14:00:00.000Z',
  z: 'C',
});

const until = async (check: () => boolean, what: string) => {
  for (let i = 0; i < 500; i++) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
};

let server: LocalStream | undefined;
let consumer: StreamConsumer | undefined;
let run: StreamRun | undefined;
let stack: Awaited<ReturnType<typeof startLiveStack>> | undefined;
afterEach(async () => {
  await consumer?.stop();
  consumer = undefined;
  await run?.stop();
  run = undefined;
  await server?.close();
  server = undefined;
  await stack?.close();
  stack = undefined;
});

/**
 * The consumer yields to an exit's calls (`yieldWhile`): each frame of a burst is handled in a turn
 * of the event loop of its own, so an answer that arrives with the burst is handled after one frame,
 * not after all of them. Each handled trade schedules a marker for the next turn (`setImmediate`,
 * as an I/O callback waiting behind the frames would run): yielding, the marker comes before the
 * next frame's trade.
 */
async function burst(yielding: () => boolean, frames: number) {
  server = await startLocalStream(KEYS);
  const log: string[] = [];
  consumer = new StreamConsumer({
    url: server.url,
    ...KEYS,
    subscriptions: () => ({ trades: ['SPY'], quotes: [], bars: [] }),
    onMarket: (message) => {
      if (message.T !== 't') return;
      log.push(`trade ${message.i}`);
      setImmediate(() => log.push(`turn after ${message.i}`));
    },
    lease: new MemoryLease(),
    holder: 'yield-test',
    yieldWhile: yielding,
  });
  await consumer.start();
  await until(() => server?.actions.some((a) => a.action === 'subscribe') === true, 'the subscription');
  for (let i = 1; i <= frames; i++) server.sendRaw(JSON.stringify([trade(i), trade(100 + i)]));
  await until(() => log.filter((l) => l.startsWith('turn after')).length === 2 * frames, 'the frames');
  return log;
}

describe('the stream consumer yielding to an exit', () => {
  it('while an exit waits, handles each frame of a burst in its own turn, in order', async () => {
    const log = await burst(() => true, 3);
    expect(log).toEqual([
      'trade 1',
      'trade 101',
      'turn after 1',
      'turn after 101',
      'trade 2',
      'trade 102',
      'turn after 2',
      'turn after 102',
      'trade 3',
      'trade 103',
      'turn after 3',
      'turn after 103',
    ]);
  });
});

// 2021-03-18, as in stream-risk.test.ts: the strategy enters SPY at this open.
const DAY = '2021-03-18';
const at = (hhmm: string) =>
  `${DAY}T${String(Number(hhmm.slice(0, 2)) + 4).padStart(2, '0')}:${hhmm.slice(3)}:00.000Z`;

describe("the engine's exit and the consumer's yielding", () => {
  it('yields from the exit decision until its order is sent, and not after', async () => {
    stack = await startLiveStack({ startTime: at('08:00') });
    const { ctx } = stack;
    await marketOpenCheck(ctx, at('09:00'));
    await generateSignals(ctx, at('09:10'));
    await executeOrders(ctx, at('09:15'));
    stack.alpaca.setTime(at('09:31'));
    await riskCheck(ctx, at('09:31'));
    const spy = (await ctx.broker.getPositions()).find((p) => p.symbol === 'SPY');
    if (spy === undefined) throw new Error('expected a SPY position');
    // SPY's stop above its price: the next trade at the price crosses it.
    const latest = await ctx.store.getLatestPositions();
    await ctx.store.putPositions(
      DAY,
      (latest?.positions ?? []).map((p) =>
        p.symbol === 'SPY' ? { ...p, stop: Math.round((spy.currentPrice + 1) * 100) / 100 } : p,
      ),
    );
    // What the engine says (yielding or not) as the exit's intent is written and its order sent.
    const seen: string[] = [];
    const exiting = () => (run?.engine.exiting ? 'yielding' : 'not yielding');
    const store = new Proxy(ctx.store, {
      get(target, property, receiver) {
        const value = Reflect.get(target, property, receiver);
        if (typeof value !== 'function') return value;
        return (...args: unknown[]) => {
          if (property === 'createIntent') seen.push(`createIntent: ${exiting()}`);
          return value.apply(target, args);
        };
      },
    }) as StateStore;
    const broker = new Proxy(ctx.broker, {
      get(target, property, receiver) {
        const value = Reflect.get(target, property, receiver);
        if (typeof value !== 'function') return value;
        return (...args: unknown[]) => {
          if (property === 'submitOrder') seen.push(`submitOrder: ${exiting()}`);
          return value.apply(target, args);
        };
      },
    }) as Broker;
    server = await startLocalStream(KEYS);
    run = await startStream({
      ctx: { ...ctx, store, broker },
      url: server.url,
      ...KEYS,
      lease: new MemoryLease(),
      holder: 'yield-test',
      now: () => Date.parse(at('10:00')),
      pollMs: 60_000,
      flushMs: 60_000,
      emit: () => {},
    });
    expect(run.engine.exiting).toBe(false);
    server.publish([{ ...trade(1), p: spy.currentPrice, t: at('10:00') }]);
    await until(() => (run?.engine.exits.size ?? 0) + (run?.engine.counts.errors ?? 0) > 0, 'the exit');
    await run.engine.settled();
    expect(run.engine.counts.errors).toBe(0);
    expect(seen).toEqual(['createIntent: yielding', 'submitOrder: not yielding']);
    expect(run.engine.exiting).toBe(false);
  });
});
