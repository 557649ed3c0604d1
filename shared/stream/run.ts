/**
 * Wires the stream: the risk engine loaded from the live state, the consumer subscribed to the held
 * symbols' trades and quotes and the watchlist's minute bars, a poll that reloads positions (and
 * sees entries fill), and the metrics flushed once a minute as EMF lines.
 */
import type { IntradayMarketData, MarketData } from '../core/ports/market-data.js';
import type { LiveContext } from '../live/context.js';
import { STREAM_METRICS_SERVICE, streamEmf } from '../runtime/stream-metrics.js';
import { type ConsumerEvent, StreamConsumer } from './consumer.js';
import { type StreamEngineOptions, StreamRiskEngine } from './engine.js';
import { LatencyRecorder, type LatencyStage, type LatencySummary } from './latency.js';
import type { ConnectionLease } from './lease.js';
import type { StreamBar } from './protocol.js';

/** The consumer's backfill over the REST minute bars of the market-data port. */
export function minuteBarsBackfill(marketData: IntradayMarketData) {
  return async (symbol: string, from: string, to: string): Promise<StreamBar[]> =>
    (await marketData.getMinuteBars({ symbol, from, to })).map((b) => ({
      T: 'b' as const,
      S: b.symbol,
      t: b.time,
      o: b.open,
      h: b.high,
      l: b.low,
      c: b.close,
      v: b.volume,
    }));
}

/** Whether a market-data adapter also serves minute bars (the Alpaca one does). */
export function hasMinuteBars(marketData: MarketData): marketData is MarketData & IntradayMarketData {
  return typeof (marketData as Partial<IntradayMarketData>).getMinuteBars === 'function';
}

export interface StreamRunOptions {
  readonly ctx: LiveContext;
  readonly url: string;
  readonly keyId: string;
  readonly secret: string;
  readonly lease: ConnectionLease;
  readonly holder: string;
  readonly intraday?: IntradayMarketData;
  readonly now?: () => number;
  /** Positions and entry fills are reloaded this often (default 5 s). */
  readonly pollMs?: number;
  /** Metrics are flushed this often (default 60 s). */
  readonly flushMs?: number;
  readonly staleAfterMs?: number;
  readonly backoff?: { readonly initialMs: number; readonly maxMs: number };
  /** Where the EMF lines go (default stdout). */
  readonly emit?: (line: string) => void;
  readonly onEvent?: (event: ConsumerEvent) => void;
  /** Engine settings (the trailing stop on live prices, its step and pace). */
  readonly engine?: Pick<StreamEngineOptions, 'intradayTrail' | 'ratchetStepAtr' | 'ratchetIntervalMs'>;
}

export interface StreamRun {
  readonly consumer: StreamConsumer;
  readonly engine: StreamRiskEngine;
  /** Latency of everything since the start (the CLI's summary). */
  summary(): Record<LatencyStage, LatencySummary>;
  /** Emits the current minute's metrics now. */
  flush(): void;
  stop(reason?: string): Promise<void>;
}

export async function startStream(options: StreamRunOptions): Promise<StreamRun> {
  const { ctx } = options;
  const now = options.now ?? Date.now;
  const latency = new LatencyRecorder();
  const total = new LatencyRecorder();
  const recorder = {
    record: (stage: LatencyStage, ms: number) => {
      latency.record(stage, ms);
      total.record(stage, ms);
    },
  } as LatencyRecorder;
  const engine = new StreamRiskEngine({ ...options.engine, ctx, now, latency: recorder });
  await engine.refresh();
  let held = engine.heldSymbols().sort().join(',');
  const minute = { reconnects: 0, gaps: 0, backfilled: 0 };
  const consumer = new StreamConsumer({
    url: options.url,
    keyId: options.keyId,
    secret: options.secret,
    subscriptions: () => {
      const symbols = engine.heldSymbols();
      return { trades: symbols, quotes: symbols, bars: [...new Set([...ctx.config.watchlist, ...symbols])] };
    },
    onMarket: (message, receivedAt, backfilled) => engine.onMarket(message, receivedAt, backfilled),
    // An exit's calls before its order are answered ahead of a burst of market frames.
    yieldWhile: () => engine.exiting,
    onEvent: (event) => {
      if (event.kind === 'reconnecting') minute.reconnects++;
      if (event.kind === 'gap') {
        minute.gaps++;
        minute.backfilled += event.backfilled;
      }
      const level =
        event.kind === 'server-error' || event.kind === 'backfill-failed' || event.kind === 'stale'
          ? 'warn'
          : 'info';
      // `message` is a reserved key of the logger: the event's text goes under `detail`.
      const { kind, ...fields } = event as ConsumerEvent & { message?: string };
      const { message, ...rest } = fields;
      ctx.log[level](`stream ${kind}`, { ...rest, ...(message === undefined ? {} : { detail: message }) });
      options.onEvent?.(event);
    },
    ...(options.intraday === undefined ? {} : { backfill: minuteBarsBackfill(options.intraday) }),
    lease: options.lease,
    holder: options.holder,
    now,
    ...(options.staleAfterMs === undefined ? {} : { staleAfterMs: options.staleAfterMs }),
    ...(options.backoff === undefined ? {} : { backoff: options.backoff }),
  });
  await consumer.start();
  const emit = options.emit ?? ((line: string) => process.stdout.write(`${line}\n`));
  let lastCounts = { messages: 0, exits: 0, stopsPlaced: 0, ratchets: 0 };
  const flush = () => {
    const counts = {
      messages: consumer.counts.messages,
      exits: engine.counts.exits,
      stopsPlaced: engine.counts.stopsPlaced,
      ratchets: engine.counts.ratchets,
    };
    for (const line of streamEmf(
      {
        connected: consumer.streaming,
        fresh: consumer.silentMs() < (options.staleAfterMs ?? 120_000),
        messages: counts.messages - lastCounts.messages,
        reconnects: minute.reconnects,
        gaps: minute.gaps,
        backfilledBars: minute.backfilled,
        staleSymbols: consumer.staleSymbols.length,
        exits: counts.exits - lastCounts.exits,
        stopsPlaced: counts.stopsPlaced - lastCounts.stopsPlaced,
        ratchets: counts.ratchets - lastCounts.ratchets,
        latency: latency.flush(),
      },
      ctx.stage,
      now(),
    )) {
      emit(line);
    }
    lastCounts = counts;
    minute.reconnects = 0;
    minute.gaps = 0;
    minute.backfilled = 0;
  };
  let polling = false;
  const poll = setInterval(() => {
    if (polling) return;
    polling = true;
    engine
      .refresh()
      .then(() => {
        const next = engine.heldSymbols().sort().join(',');
        if (next !== held) {
          held = next;
          consumer.resubscribe();
        }
      })
      .catch((error: unknown) => ctx.log.error('stream refresh failed', { error: (error as Error).message }))
      .finally(() => {
        polling = false;
      });
  }, options.pollMs ?? 5_000);
  const flushTimer = setInterval(flush, options.flushMs ?? 60_000);
  ctx.log.info('stream started', { metricsService: STREAM_METRICS_SERVICE, held, url: options.url });
  return {
    consumer,
    engine,
    summary: () => total.flush(),
    flush,
    async stop(reason = 'stopped') {
      clearInterval(poll);
      clearInterval(flushTimer);
      await consumer.stop(reason);
      await engine.settled();
      flush();
    },
  };
}
