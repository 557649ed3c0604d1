/**
 * A fake Alpaca market-data stream (protocol v2, JSON over `ws`) and the minute-bars REST endpoint
 * behind it, for tests, the bench and `quantshift stream --local`. It speaks what the consumer
 * relies on: `[{"T":"success","msg":"connected"}]` on connect, `auth` (the one key pair it was
 * given; 402 otherwise), `subscribe` / `unsubscribe` answered with the `subscription` lists, and
 * market messages (trades, quotes, minute bars, statuses) sent only to the clients subscribed to
 * their symbol (or `*`). It keeps one connection per account as Alpaca does: a second
 * authenticated connection gets 406.
 *
 * Replay: each minute bar becomes a quote and four trades inside its minute (open, then the low
 * and the high in the order the bar's direction suggests, then the close) and then the bar itself.
 * `GET /v2/stocks/bars?timeframe=1Min` serves every bar the server knows (the replay's, skipped ones
 * included), so a consumer can backfill a gap.
 *
 * Faults, each armed once (`times` for more), applied to the next occasion they fit:
 * `auth-failure` (402 to the next auth), `connection-limit` (406 at the next connect), `slow-client`
 * (407 then close, at the next market message), `drop` (the socket is cut without a close frame),
 * `stall` (nothing is sent for `ms`), `duplicate` (the next bar twice), `out-of-order` (the next two
 * bars swapped), `skip` (the next `bars` bars are not sent: a gap).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { type WebSocket, WebSocketServer } from 'ws';
import { type ClientAction, clientActionSchema } from '../../stream/protocol.js';
import { listenOnLoopback } from './listen.js';
import type { ReplayBar } from './minute-bars.js';

export type StreamFault =
  | {
      readonly kind:
        | 'auth-failure'
        | 'connection-limit'
        | 'slow-client'
        | 'drop'
        | 'duplicate'
        | 'out-of-order';
      readonly times?: number;
    }
  | { readonly kind: 'stall'; readonly ms: number; readonly times?: number }
  | { readonly kind: 'skip'; readonly bars: number; readonly times?: number };

export interface LocalStreamOptions {
  readonly keyId: string;
  readonly secret: string;
  /** Bars the replay plays and the REST endpoint serves. */
  readonly bars?: readonly ReplayBar[];
  readonly faults?: readonly StreamFault[];
  /** 0 (default): a free port. */
  readonly port?: number;
}

export interface LocalStream {
  /** `ws://127.0.0.1:<port>/v2/iex`. */
  readonly url: string;
  /** The REST origin (minute bars), `http://127.0.0.1:<port>`. */
  readonly httpUrl: string;
  /** Connections accepted so far (refused ones included). */
  readonly connections: number;
  /** Every client action received, in order (keys redacted). */
  readonly actions: readonly ClientAction[];
  /** Clients currently authenticated. */
  readonly authenticated: number;
  injectFaults(...faults: StreamFault[]): void;
  /** Sends a frame, already serialised, to every authenticated client as it is (the bench). */
  sendRaw(frame: string): void;
  /** Sends raw market messages (one frame) to the subscribed clients. */
  publish(messages: readonly Record<string, unknown>[]): void;
  /** Replays one bar (quote, trades, bar), honouring the faults; the bar joins the REST data. */
  replayBar(bar: ReplayBar): void;
  /** Replays the loaded bars, one minute per `60_000 / speed` ms; resolves when done or stopped. */
  play(options?: { readonly speed?: number; readonly signal?: AbortSignal }): Promise<number>;
  /** Resolves once a client is subscribed to something. */
  waitForSubscriber(): Promise<void>;
  close(): Promise<void>;
}

interface Client {
  readonly socket: WebSocket;
  authenticated: boolean;
  trades: Set<string>;
  quotes: Set<string>;
  bars: Set<string>;
  statuses: Set<string>;
}

export async function startLocalStream(options: LocalStreamOptions): Promise<LocalStream> {
  const pending: { fault: StreamFault; left: number }[] = [];
  const arm = (faults: readonly StreamFault[]) => {
    for (const fault of faults) pending.push({ fault, left: fault.times ?? 1 });
  };
  arm(options.faults ?? []);
  const take = (kind: StreamFault['kind']): StreamFault | undefined => {
    const entry = pending.find((p) => p.fault.kind === kind && p.left > 0);
    if (entry === undefined) return undefined;
    entry.left--;
    if (entry.left === 0) pending.splice(pending.indexOf(entry), 1);
    return entry.fault;
  };
  const known = new Map<string, ReplayBar[]>();
  const remember = (bar: ReplayBar) => {
    const list = known.get(bar.S) ?? [];
    if (!list.some((b) => b.t === bar.t)) list.push(bar);
    known.set(bar.S, list);
  };
  for (const bar of options.bars ?? []) remember(bar);
  const clients = new Set<Client>();
  const actions: ClientAction[] = [];
  let connections = 0;
  let stalledUntil = 0;
  const stallQueue: string[] = [];
  let heldBar: ReplayBar | undefined;
  let skipLeft = 0;
  let tradeId = 1;
  let subscriberWaiters: (() => void)[] = [];

  const http = createServer((req, res) => serveBars(req, res));
  const wss = new WebSocketServer({ server: http, path: '/v2/iex', perMessageDeflate: false });

  const send = (socket: WebSocket, messages: readonly unknown[]) => socket.send(JSON.stringify(messages));

  wss.on('connection', (socket) => {
    connections++;
    const client: Client = {
      socket,
      authenticated: false,
      trades: new Set(),
      quotes: new Set(),
      bars: new Set(),
      statuses: new Set(),
    };
    if (take('connection-limit') !== undefined) {
      send(socket, [{ T: 'error', code: 406, msg: 'connection limit exceeded' }]);
      socket.close(1008, 'connection limit exceeded');
      return;
    }
    clients.add(client);
    socket.on('close', () => clients.delete(client));
    socket.on('error', () => clients.delete(client));
    send(socket, [{ T: 'success', msg: 'connected' }]);
    socket.on('message', (data) => {
      let action: ClientAction;
      try {
        const parsed = clientActionSchema.safeParse(JSON.parse(data.toString()));
        if (!parsed.success) throw new Error(parsed.error.issues[0]?.message ?? 'invalid');
        action = parsed.data;
      } catch {
        send(socket, [{ T: 'error', code: 400, msg: 'invalid syntax' }]);
        return;
      }
      actions.push(
        action.action === 'auth' ? { ...action, key: '[redacted]', secret: '[redacted]' } : action,
      );
      if (action.action === 'auth') {
        if (client.authenticated) {
          send(socket, [{ T: 'error', code: 403, msg: 'already authenticated' }]);
          return;
        }
        if (
          take('auth-failure') !== undefined ||
          action.key !== options.keyId ||
          action.secret !== options.secret
        ) {
          send(socket, [{ T: 'error', code: 402, msg: 'auth failed' }]);
          socket.close(1008, 'auth failed');
          return;
        }
        if ([...clients].some((c) => c !== client && c.authenticated)) {
          send(socket, [{ T: 'error', code: 406, msg: 'connection limit exceeded' }]);
          socket.close(1008, 'connection limit exceeded');
          return;
        }
        client.authenticated = true;
        send(socket, [{ T: 'success', msg: 'authenticated' }]);
        return;
      }
      if (!client.authenticated) {
        send(socket, [{ T: 'error', code: 401, msg: 'not authenticated' }]);
        return;
      }
      const lists = ['trades', 'quotes', 'bars', 'statuses'] as const;
      for (const list of lists) {
        for (const s of action[list] ?? []) {
          if (action.action === 'subscribe') client[list].add(s);
          else client[list].delete(s);
        }
      }
      send(socket, [
        {
          T: 'subscription',
          trades: [...client.trades],
          quotes: [...client.quotes],
          bars: [...client.bars],
          updatedBars: [],
          dailyBars: [],
          statuses: [...client.statuses],
          lulds: [],
        },
      ]);
      if (client.trades.size + client.quotes.size + client.bars.size > 0) {
        for (const w of subscriberWaiters) w();
        subscriberWaiters = [];
      }
    });
  });

  const wants = (client: Client, message: Record<string, unknown>) => {
    const list =
      message.T === 't'
        ? client.trades
        : message.T === 'q'
          ? client.quotes
          : message.T === 'b'
            ? client.bars
            : client.statuses;
    return client.authenticated && (list.has(String(message.S)) || list.has('*'));
  };

  const deliver = (frame: readonly Record<string, unknown>[]) => {
    if (take('slow-client') !== undefined) {
      for (const c of clients) {
        send(c.socket, [{ T: 'error', code: 407, msg: 'slow client' }]);
        c.socket.close(1008, 'slow client');
      }
      return;
    }
    if (take('drop') !== undefined) {
      for (const c of clients) c.socket.terminate();
      return;
    }
    const stall = take('stall');
    if (stall !== undefined && stall.kind === 'stall') stalledUntil = Date.now() + stall.ms;
    for (const c of clients) {
      const mine = frame.filter((m) => wants(c, m));
      if (mine.length === 0) continue;
      const text = JSON.stringify(mine);
      if (Date.now() < stalledUntil) {
        stallQueue.push(text);
        setTimeout(flushStall, stalledUntil - Date.now()).unref();
      } else c.socket.send(text);
    }
  };
  const flushStall = () => {
    if (Date.now() < stalledUntil) return;
    for (const text of stallQueue.splice(0))
      for (const c of clients) if (c.authenticated) c.socket.send(text);
  };

  const barMessage = (bar: ReplayBar) => ({
    T: 'b',
    ...bar,
    n: 4,
    vw: Math.round(((bar.o + bar.h + bar.l + bar.c) / 4) * 100) / 100,
  });

  const replayBar = (bar: ReplayBar) => {
    remember(bar);
    if (skipLeft > 0) {
      skipLeft--;
      return;
    }
    const skip = take('skip');
    if (skip !== undefined && skip.kind === 'skip') {
      skipLeft = skip.bars - 1;
      return;
    }
    const start = Date.parse(bar.t);
    const at = (s: number) => new Date(start + s * 1000).toISOString();
    const path = bar.c >= bar.o ? [bar.o, bar.l, bar.h, bar.c] : [bar.o, bar.h, bar.l, bar.c];
    const frame: Record<string, unknown>[] = [
      {
        T: 'q',
        S: bar.S,
        bx: 'V',
        bp: Math.round((bar.o - 0.01) * 100) / 100,
        bs: 1,
        ax: 'V',
        ap: Math.round((bar.o + 0.01) * 100) / 100,
        as: 1,
        c: ['R'],
        t: at(0.5),
        z: 'A',
      },
      ...path.map((p, k) => ({
        T: 't',
        S: bar.S,
        i: tradeId++,
        x: 'V',
        p,
        s: 100,
        c: ['@'],
        t: at(1 + k * 15),
        z: 'A',
      })),
    ];
    deliver(frame);
    if (take('out-of-order') !== undefined && heldBar === undefined) {
      heldBar = bar;
      return;
    }
    const bars = [barMessage(bar)];
    if (heldBar !== undefined) {
      bars.push(barMessage(heldBar));
      heldBar = undefined;
    }
    if (take('duplicate') !== undefined) bars.push(barMessage(bar));
    deliver(bars);
  };

  const serveBars = (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://local');
    const reply = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (
      req.headers['apca-api-key-id'] !== options.keyId ||
      req.headers['apca-api-secret-key'] !== options.secret
    ) {
      return reply(401, { code: 40110000, message: 'request is not authorized' });
    }
    if (req.method !== 'GET' || url.pathname !== '/v2/stocks/bars')
      return reply(404, { message: 'not found' });
    if (url.searchParams.get('timeframe') !== '1Min') {
      return reply(400, { code: 40010001, message: 'the local stream server serves timeframe=1Min only' });
    }
    const symbols = (url.searchParams.get('symbols') ?? '').split(',').filter((s) => s !== '');
    const start = Date.parse(url.searchParams.get('start') ?? '');
    const end = Date.parse(url.searchParams.get('end') ?? '');
    if (symbols.length === 0 || Number.isNaN(start) || Number.isNaN(end)) {
      return reply(400, { code: 40010001, message: 'symbols, start and end are required' });
    }
    const bars: Record<string, unknown[]> = {};
    for (const symbol of symbols) {
      bars[symbol] = (known.get(symbol) ?? [])
        .filter((b) => Date.parse(b.t) >= start && Date.parse(b.t) <= end)
        .sort((a, b) => Date.parse(a.t) - Date.parse(b.t))
        .map(({ S: _s, ...rest }) => ({ ...rest, n: 4, vw: rest.c }));
    }
    return reply(200, { bars, next_page_token: null });
  };

  const port = await listenOnLoopback(http, options.port);

  return {
    url: `ws://127.0.0.1:${port}/v2/iex`,
    httpUrl: `http://127.0.0.1:${port}`,
    get connections() {
      return connections;
    },
    get actions() {
      return actions;
    },
    get authenticated() {
      return [...clients].filter((c) => c.authenticated).length;
    },
    injectFaults: (...faults) => arm(faults),
    publish: (messages) => deliver(messages),
    sendRaw: (frame) => {
      for (const c of clients) if (c.authenticated) c.socket.send(frame);
    },
    replayBar,
    async play(opts = {}) {
      const step = 60_000 / (opts.speed ?? 60);
      let played = 0;
      for (const bar of [...known.values()].flat().sort((a, b) => Date.parse(a.t) - Date.parse(b.t))) {
        if (opts.signal?.aborted) break;
        replayBar(bar);
        played++;
        await new Promise((resolve) => setTimeout(resolve, step));
      }
      return played;
    },
    waitForSubscriber: () =>
      [...clients].some((c) => c.authenticated && c.trades.size + c.quotes.size + c.bars.size > 0)
        ? Promise.resolve()
        : new Promise<void>((resolve) => subscriberWaiters.push(resolve)),
    async close() {
      for (const c of clients) c.socket.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      await new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };
}
