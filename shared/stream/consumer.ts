/**
 * The market-data stream consumer: holds the account's single Alpaca stream connection (protocol
 * v2, JSON over `ws`), authenticates within the server's 10 s, subscribes to trades, quotes and
 * minute bars of the symbols it is given (and their trading statuses), and hands every validated
 * market message to `onMarket` with the instant it was received.
 *
 * - **One connection**: before connecting it takes the connection lease ({@link ConnectionLease});
 *   held by another process, it refuses to connect ({@link StreamLeaseHeldError}). It renews the
 *   lease while it runs and stops (without reconnecting) if the renewal is refused.
 * - **Reconnects** with exponential backoff after any close it did not ask for, and resubscribes
 *   to the current symbol lists. The backoff resets once a connection is subscribed again.
 * - **Errors**: auth refused (401-403) and a subscription the account may not have (405, 409)
 *   are fatal (fail closed, loudly: retrying with the same keys cannot help); an auth timeout
 *   (404) and a slow client (407, the server drops us) reconnect; the connection limit (406) means
 *   another connection is open on the account (an overlapping task, a local run on the same keys):
 *   it reconnects with the longest backoff and gives up after `maxConnectionLimitRetries`.
 * - **Gaps**: minute bars of a symbol must be one minute apart; a later bar that skips minutes has
 *   the missing ones fetched over REST (`backfill`) and delivered, marked `backfilled`, before it.
 *   A duplicate or an out-of-order bar is dropped (counted). A subscribed symbol with no message
 *   for `staleAfterMs` is reported stale once, until a message comes again.
 */
import WebSocket from 'ws';
import { QuantShiftError } from '../core/errors.js';
import { type ConnectionLease, StreamLeaseHeldError } from './lease.js';
import {
  parseFrame,
  STREAM_ERRORS,
  type StreamBar,
  type StreamMessage,
  type StreamQuote,
  type StreamStatus,
  type StreamTrade,
} from './protocol.js';

/** A stream error that retrying cannot fix (refused keys, a subscription the plan does not allow). */
export class StreamFatalError extends QuantShiftError {
  constructor(
    readonly code: number | null,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** A market message as delivered to the consumer's handler. */
export type MarketMessage = StreamTrade | StreamQuote | StreamBar | StreamStatus;

/** What the consumer reports about its connection (logs, metrics, alerts). */
export type ConsumerEvent =
  | { readonly kind: 'connected' | 'authenticated' | 'subscribed'; readonly attempt: number }
  | { readonly kind: 'disconnected'; readonly code: number; readonly reason: string }
  | { readonly kind: 'reconnecting'; readonly attempt: number; readonly delayMs: number }
  | { readonly kind: 'server-error'; readonly code: number; readonly message: string }
  | { readonly kind: 'protocol-error'; readonly message: string }
  | {
      readonly kind: 'gap';
      readonly symbol: string;
      readonly from: string;
      readonly to: string;
      readonly missing: number;
      readonly backfilled: number;
    }
  | { readonly kind: 'backfill-failed'; readonly symbol: string; readonly message: string }
  | {
      readonly kind: 'dropped';
      readonly symbol: string;
      readonly why: 'duplicate' | 'out-of-order';
      readonly t: string;
    }
  | { readonly kind: 'stale' | 'fresh'; readonly symbol: string; readonly silentMs: number }
  | { readonly kind: 'stopped'; readonly reason: string };

export interface Subscriptions {
  readonly trades: readonly string[];
  readonly quotes: readonly string[];
  readonly bars: readonly string[];
}

export interface StreamConsumerOptions {
  /** `wss://.../v2/iex` (or the local fake server's URL). */
  readonly url: string;
  readonly keyId: string;
  readonly secret: string;
  /** The symbols to subscribe, asked again at every (re)subscription. */
  readonly subscriptions: () => Subscriptions;
  /** Every market message, with `performance.now()` at receipt; `backfilled` for REST-filled bars. */
  readonly onMarket: (message: MarketMessage, receivedAt: number, backfilled: boolean) => void;
  readonly onEvent?: (event: ConsumerEvent) => void;
  /** Minute bars of `symbol` from `from` to `to` (inclusive, ISO), over REST. */
  readonly backfill?: (symbol: string, from: string, to: string) => Promise<StreamBar[]>;
  readonly lease: ConnectionLease;
  /** This process's name in the lease (task id, host and pid). */
  readonly holder: string;
  /** Wall clock, epoch ms (the lease and staleness); injected so tests can move it. */
  readonly now?: () => number;
  readonly leaseTtlMs?: number;
  readonly authTimeoutMs?: number;
  readonly backoff?: { readonly initialMs: number; readonly maxMs: number };
  readonly staleAfterMs?: number;
  readonly maxConnectionLimitRetries?: number;
  /**
   * REST backfills allowed per minute (default 10): a thin symbol on the IEX feed has minutes
   * without trades, hence without bars, and every such gap must not spend the account's REST budget.
   * Gaps beyond it are reported with `backfilled: 0`.
   */
  readonly maxBackfillsPerMinute?: number;
  /**
   * While this says true (an exit waits for its calls before its order), every inbound frame is
   * handled in a turn of the event loop of its own (`setImmediate`), in arrival order: the answers
   * of the exit's calls then wait behind one frame, not behind every frame of a burst (`ws` hands
   * all the frames of one socket read over at once).
   */
  readonly yieldWhile?: () => boolean;
}

const MINUTE = 60_000;

export class StreamConsumer {
  private socket: WebSocket | undefined;
  private stopping = false;
  private attempt = 0;
  private connectionLimitHits = 0;
  private readonly lastBar = new Map<string, number>();
  private readonly lastSeen = new Map<string, number>();
  private readonly stale = new Set<string>();
  private timers = new Set<NodeJS.Timeout>();
  private authTimer: NodeJS.Timeout | undefined;
  private finished: Promise<void>;
  private finish!: (error?: unknown) => void;
  /** Frames received while yielding, waiting their turn ({@link StreamConsumerOptions.yieldWhile}). */
  private readonly backlog: { socket: WebSocket; text: string; receivedAt: number }[] = [];
  private draining = false;
  /** Counters for metrics and tests. */
  readonly counts = { messages: 0, reconnects: 0, gaps: 0, backfilled: 0, dropped: 0, serverErrors: 0 };
  private readonly now: () => number;
  private readonly leaseTtlMs: number;
  private readonly authTimeoutMs: number;
  private readonly backoff: { initialMs: number; maxMs: number };
  private readonly staleAfterMs: number;
  private readonly maxLimitRetries: number;
  private subscribed = false;
  /** What this connection subscribed to last (a new connection starts from nothing). */
  private sentSubscriptions:
    | { trades: string[]; quotes: string[]; bars: string[]; statuses: string[] }
    | undefined;
  private backfillWindow = { start: 0, used: 0 };

  constructor(private readonly options: StreamConsumerOptions) {
    this.now = options.now ?? Date.now;
    this.leaseTtlMs = options.leaseTtlMs ?? 60_000;
    this.authTimeoutMs = options.authTimeoutMs ?? 10_000;
    this.backoff = { ...(options.backoff ?? { initialMs: 500, maxMs: 30_000 }) };
    this.staleAfterMs = options.staleAfterMs ?? 120_000;
    this.maxLimitRetries = options.maxConnectionLimitRetries ?? 10;
    this.finished = new Promise<void>((resolve, reject) => {
      this.finish = (error?: unknown) => (error === undefined ? resolve() : reject(error));
    });
    this.finished.catch(() => {});
  }

  /** Whether the connection is open, authenticated and subscribed. */
  get streaming(): boolean {
    return this.subscribed;
  }

  /**
   * Takes the lease and connects. Rejects with {@link StreamLeaseHeldError} when another process
   * holds the lease (no connection is opened). Resolves once the first connection is subscribed.
   */
  async start(): Promise<void> {
    const taken = await this.options.lease.acquire(this.options.holder, this.now(), this.leaseTtlMs);
    if (!taken) {
      const held = await this.options.lease.read();
      throw new StreamLeaseHeldError(
        `the market-data stream lease is held by ${held?.holder ?? 'another process'} until ${
          held === undefined ? 'it expires' : new Date(held.expiresAt).toISOString()
        }: refusing to open a second connection (Alpaca allows one per account)`,
      );
    }
    this.every(Math.max(1_000, Math.floor(this.leaseTtlMs / 3)), () => void this.renewLease());
    this.every(Math.max(250, Math.min(5_000, Math.floor(this.staleAfterMs / 4))), () => this.checkStale());
    const first = new Promise<void>((resolve, reject) => {
      this.onFirstSubscribed = resolve;
      this.finished.catch(reject);
    });
    this.connect();
    await first;
  }

  /** Resolves when the consumer stops; rejects with the fatal error that stopped it. */
  done(): Promise<void> {
    return this.finished;
  }

  /** Closes the connection for good and releases the lease. */
  async stop(reason = 'stopped'): Promise<void> {
    if (this.stopping) return this.finished.catch(() => {});
    await this.shutdown(reason);
  }

  /** Sends the current subscriptions again (after the held symbols changed). */
  resubscribe(): void {
    if (this.subscribed) this.sendSubscribe();
  }

  private onFirstSubscribed: () => void = () => {};

  private every(ms: number, run: () => void): void {
    const timer = setInterval(run, ms);
    timer.unref();
    this.timers.add(timer);
  }

  private later(ms: number, run: () => void): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      run();
    }, ms);
    this.timers.add(timer);
  }

  private async renewLease(): Promise<void> {
    if (this.stopping) return;
    try {
      const ok = await this.options.lease.acquire(this.options.holder, this.now(), this.leaseTtlMs);
      if (!ok) {
        await this.fail(
          new StreamLeaseHeldError('the stream lease was taken by another process: closing this connection'),
        );
      }
    } catch (error) {
      // A failed renewal is retried at the next tick; the lease outlives two missed renewals.
      this.emit({ kind: 'protocol-error', message: `lease renewal failed: ${(error as Error).message}` });
    }
  }

  private emit(event: ConsumerEvent): void {
    this.options.onEvent?.(event);
  }

  private connect(): void {
    if (this.stopping) return;
    this.subscribed = false;
    this.sentSubscriptions = undefined;
    const socket = new WebSocket(this.options.url, { perMessageDeflate: false });
    this.socket = socket;
    socket.on('message', (data) => {
      const receivedAt = performance.now();
      if (this.backlog.length > 0 || this.options.yieldWhile?.() === true) {
        this.backlog.push({ socket, text: data.toString(), receivedAt });
        this.drainLater();
      } else {
        this.onFrame(socket, data.toString(), receivedAt);
      }
    });
    socket.on('close', (code, reason) => {
      if (this.authTimer !== undefined) clearTimeout(this.authTimer);
      this.subscribed = false;
      if (this.socket !== socket) return;
      this.socket = undefined;
      this.emit({ kind: 'disconnected', code, reason: reason.toString() });
      this.scheduleReconnect();
    });
    socket.on('error', (error) => {
      // 'close' follows; the reconnect happens there.
      this.emit({ kind: 'protocol-error', message: `socket: ${error.message}` });
    });
  }

  private scheduleReconnect(extraFloorMs = 0): void {
    if (this.stopping) return;
    this.attempt++;
    this.counts.reconnects++;
    const delay = Math.max(
      extraFloorMs,
      Math.min(this.backoff.maxMs, this.backoff.initialMs * 2 ** Math.min(20, this.attempt - 1)),
    );
    this.emit({ kind: 'reconnecting', attempt: this.attempt, delayMs: delay });
    this.later(delay, () => this.connect());
  }

  /** Handles the oldest waiting frame in the next turn, or all of them once nothing needs yielding. */
  private drainLater(): void {
    if (this.draining) return;
    this.draining = true;
    setImmediate(() => {
      this.draining = false;
      // Stopped meanwhile: what was waiting is dropped with the connection.
      if (this.stopping) this.backlog.length = 0;
      do {
        const next = this.backlog.shift();
        if (next === undefined) return;
        this.onFrame(next.socket, next.text, next.receivedAt);
      } while (this.options.yieldWhile?.() !== true);
      if (this.backlog.length > 0) this.drainLater();
    });
  }

  private onFrame(socket: WebSocket, text: string, receivedAt: number): void {
    let messages: StreamMessage[];
    try {
      messages = parseFrame(text);
    } catch (error) {
      // A frame that breaks the protocol is logged and skipped; its symbols' gaps are backfilled.
      this.emit({ kind: 'protocol-error', message: (error as Error).message });
      return;
    }
    for (const message of messages) {
      switch (message.T) {
        case 'success':
          if (message.msg === 'connected') {
            this.emit({ kind: 'connected', attempt: this.attempt });
            socket.send(
              JSON.stringify({ action: 'auth', key: this.options.keyId, secret: this.options.secret }),
            );
            this.authTimer = setTimeout(() => {
              this.emit({
                kind: 'server-error',
                code: STREAM_ERRORS.authTimeout,
                message: 'no auth answer in time',
              });
              socket.terminate();
            }, this.authTimeoutMs);
          } else if (message.msg === 'authenticated') {
            if (this.authTimer !== undefined) clearTimeout(this.authTimer);
            this.emit({ kind: 'authenticated', attempt: this.attempt });
            this.sendSubscribe();
          }
          break;
        case 'subscription':
          if (!this.subscribed) {
            this.subscribed = true;
            this.emit({ kind: 'subscribed', attempt: this.attempt });
            this.attempt = 0;
            this.connectionLimitHits = 0;
            this.onFirstSubscribed();
          }
          break;
        case 'error':
          this.onServerError(socket, message.code, message.msg);
          break;
        default:
          this.onMarketMessage(message, receivedAt);
      }
    }
  }

  private sendSubscribe(): void {
    const subs = this.options.subscriptions();
    const all = [...new Set([...subs.trades, ...subs.quotes, ...subs.bars])];
    // What this connection had and no longer needs (an exited position's trades and quotes).
    const before = this.sentSubscriptions;
    if (before !== undefined) {
      const gone = (was: readonly string[], now: readonly string[]) => was.filter((x) => !now.includes(x));
      const removed = {
        trades: gone(before.trades, subs.trades),
        quotes: gone(before.quotes, subs.quotes),
        bars: gone(before.bars, subs.bars),
        statuses: gone(before.statuses, all),
      };
      if (Object.values(removed).some((list) => list.length > 0)) {
        this.socket?.send(JSON.stringify({ action: 'unsubscribe', ...removed }));
        for (const symbol of removed.statuses) {
          this.lastSeen.delete(symbol);
          this.stale.delete(symbol);
        }
      }
    }
    this.sentSubscriptions = {
      trades: [...subs.trades],
      quotes: [...subs.quotes],
      bars: [...subs.bars],
      statuses: all,
    };
    this.socket?.send(
      JSON.stringify({
        action: 'subscribe',
        trades: subs.trades,
        quotes: subs.quotes,
        bars: subs.bars,
        statuses: all,
      }),
    );
    const now = this.now();
    for (const symbol of all) if (!this.lastSeen.has(symbol)) this.lastSeen.set(symbol, now);
  }

  private onServerError(socket: WebSocket, code: number, text: string): void {
    this.counts.serverErrors++;
    this.emit({ kind: 'server-error', code, message: text });
    switch (code) {
      case STREAM_ERRORS.notAuthenticated:
      case STREAM_ERRORS.authFailed:
      case STREAM_ERRORS.alreadyAuthenticated:
      case STREAM_ERRORS.symbolLimit:
      case STREAM_ERRORS.insufficientSubscription:
        void this.fail(new StreamFatalError(code, `market-data stream refused: ${code} ${text}`));
        return;
      case STREAM_ERRORS.connectionLimit: {
        this.connectionLimitHits++;
        if (this.connectionLimitHits > this.maxLimitRetries) {
          void this.fail(
            new StreamFatalError(
              code,
              `market-data stream: connection limit (406) ${this.connectionLimitHits} times: another connection is open on this account`,
            ),
          );
          return;
        }
        // Another connection holds the account's slot: wait the longest backoff before trying again.
        this.socket = undefined;
        socket.terminate();
        this.emit({ kind: 'disconnected', code, reason: text });
        this.scheduleReconnect(this.backoff.maxMs);
        return;
      }
      default:
        // 407 (slow client) and 404 (auth timeout): the server closes the socket; 'close' reconnects.
        socket.terminate();
    }
  }

  private onMarketMessage(message: MarketMessage, receivedAt: number): void {
    this.counts.messages++;
    const now = this.now();
    this.lastSeen.set(message.S, now);
    if (this.stale.delete(message.S)) this.emit({ kind: 'fresh', symbol: message.S, silentMs: 0 });
    if (message.T === 'b') {
      const t = Date.parse(message.t);
      const last = this.lastBar.get(message.S);
      if (last !== undefined && t <= last) {
        this.counts.dropped++;
        this.emit({
          kind: 'dropped',
          symbol: message.S,
          why: t === last ? 'duplicate' : 'out-of-order',
          t: message.t,
        });
        return;
      }
      this.lastBar.set(message.S, t);
      if (last !== undefined && t - last > MINUTE) {
        this.counts.gaps++;
        void this.fillGap(message, last + MINUTE, t - MINUTE, receivedAt);
        return;
      }
    }
    this.options.onMarket(message, receivedAt, false);
  }

  /** Fetches the missing minutes, delivers them (oldest first), then the bar that showed the gap. */
  private async fillGap(bar: StreamBar, from: number, to: number, receivedAt: number): Promise<void> {
    const missing = Math.round((to - from) / MINUTE) + 1;
    const fromIso = new Date(from).toISOString();
    const toIso = new Date(to).toISOString();
    let filled: StreamBar[] = [];
    const now = this.now();
    if (now - this.backfillWindow.start >= MINUTE) this.backfillWindow = { start: now, used: 0 };
    const allowed = this.backfillWindow.used < (this.options.maxBackfillsPerMinute ?? 10);
    if (this.options.backfill !== undefined && allowed) {
      this.backfillWindow.used++;
      try {
        filled = (await this.options.backfill(bar.S, fromIso, toIso))
          .filter((b) => {
            const t = Date.parse(b.t);
            return t >= from && t <= to;
          })
          .sort((a, b) => Date.parse(a.t) - Date.parse(b.t));
      } catch (error) {
        this.emit({ kind: 'backfill-failed', symbol: bar.S, message: (error as Error).message });
      }
    }
    this.counts.backfilled += filled.length;
    this.emit({ kind: 'gap', symbol: bar.S, from: fromIso, to: toIso, missing, backfilled: filled.length });
    for (const b of filled) this.options.onMarket(b, receivedAt, true);
    this.options.onMarket(bar, receivedAt, false);
  }

  private checkStale(): void {
    if (!this.subscribed) return;
    const now = this.now();
    const subs = this.options.subscriptions();
    for (const symbol of new Set([...subs.trades, ...subs.quotes, ...subs.bars])) {
      const seen = this.lastSeen.get(symbol) ?? now;
      if (now - seen >= this.staleAfterMs && !this.stale.has(symbol)) {
        this.stale.add(symbol);
        this.emit({ kind: 'stale', symbol, silentMs: now - seen });
      }
    }
  }

  /** Symbols silent for `staleAfterMs` or more. */
  get staleSymbols(): readonly string[] {
    return [...this.stale];
  }

  /** Milliseconds since the last market message of any subscribed symbol (0 when none subscribed). */
  silentMs(): number {
    const seen = [...this.lastSeen.values()];
    return seen.length === 0 ? 0 : this.now() - Math.max(...seen);
  }

  private async fail(error: unknown): Promise<void> {
    await this.shutdown(error instanceof Error ? error.message : String(error), error);
  }

  private async shutdown(reason: string, error?: unknown): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.subscribed = false;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    if (this.authTimer !== undefined) clearTimeout(this.authTimer);
    const socket = this.socket;
    this.socket = undefined;
    if (socket !== undefined) {
      await new Promise<void>((resolve) => {
        if (socket.readyState === WebSocket.CLOSED) return resolve();
        socket.once('close', () => resolve());
        socket.close(1000, 'consumer stopping');
        setTimeout(() => {
          socket.terminate();
          resolve();
        }, 1_000).unref();
      });
    }
    await this.options.lease.release(this.options.holder).catch(() => {});
    this.emit({ kind: 'stopped', reason });
    this.finish(error);
  }
}
