/**
 * A local Upstash REST bridge (node:http + ioredis) in front of a real `redis-server`, so that
 * `@upstash/redis` runs unchanged in tests and offline runs. It serves the part of the Upstash
 * REST protocol that the client uses:
 *
 * - `POST /` with one command as a JSON array (`["SET", "k", "v", "EX", 60]`) → `{ "result": ... }`;
 * - `POST /pipeline` with an array of commands → `[{ "result": ... } | { "error": "..." }, ...]`,
 *   run in order on one connection, not atomically (each command succeeds or fails on its own);
 * - `POST /multi-exec` with an array of commands → the same array shape, run as MULTI/EXEC
 *   (atomically); a command Redis refuses while queueing aborts the whole transaction (400);
 * - `Authorization: Bearer <token>` (or `?_token=`) checked on every request: 401 otherwise;
 * - `Upstash-Encoding: base64`: every string reply (bulk or status, nested in arrays too) is sent
 *   base64-encoded, except the status `OK`, which stays plain, as the real service does; the
 *   client decodes both. Without the header strings are sent as UTF-8 text. Integers are JSON
 *   numbers, nil is `null`, arrays stay arrays (so HGETALL is a flat `[field, value, ...]` array).
 *
 * Errors are `{ "error": "<Redis message>" }`: 400 for a command Redis refuses (`ERR ...`,
 * `NOSCRIPT ...`, `WRONGTYPE ...`) or a malformed request, 401 for a bad token, 404 for an unknown
 * path, 405 for a method other than POST, 503 when Redis cannot be reached. `NOSCRIPT` passes
 * through unchanged, which is what `@upstash/redis` scripts (`createScript`, EVALSHA first, EVAL on
 * NOSCRIPT) rely on; EVAL, EVALSHA and SCRIPT LOAD are plain commands here.
 *
 * Not served (the client does not need them here): the URL-path form (`GET /set/k/v`), pub/sub
 * and monitor streams, and commands that change connection state (SELECT, WATCH, MULTI ...);
 * those answer 400 `ERR command is not allowed`.
 */
import { timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Redis as IORedis } from 'ioredis';
import * as z from 'zod';
import { InvalidParameterError, UpstashBridgeStartError } from '../../core/errors.js';

/** Options of {@link startUpstashBridge}. */
export interface UpstashBridgeOptions {
  /** The Redis behind the bridge, e.g. `redis://127.0.0.1:6379`. */
  readonly redisUrl: string;
  /** The only bearer token accepted (a fake one such as `test-token`). */
  readonly token: string;
  /** 0 (default) picks a free port. */
  readonly port?: number;
  /** Largest request body accepted, in bytes (default 16 MiB). */
  readonly maxBodyBytes?: number;
}

/** A running bridge: pass `url` and `token` to `new Redis({ url, token })` from `@upstash/redis`. */
export interface UpstashBridge {
  /** Origin, e.g. `http://127.0.0.1:54321`. */
  readonly url: string;
  readonly token: string;
  /** Stops accepting requests, lets running ones finish, closes the Redis connection. */
  close(): Promise<void>;
}

const HOST = '127.0.0.1';

/** Commands that would change the state of the shared connection, or stream. */
const NOT_ALLOWED = new Set([
  'AUTH',
  'BLMOVE',
  'BLMPOP',
  'BLPOP',
  'BRPOP',
  'BRPOPLPUSH',
  'BZMPOP',
  'BZPOPMAX',
  'BZPOPMIN',
  'CLIENT',
  'DISCARD',
  'EXEC',
  'HELLO',
  'MONITOR',
  'MULTI',
  'PSUBSCRIBE',
  'PUNSUBSCRIBE',
  'QUIT',
  'RESET',
  'SELECT',
  'SHUTDOWN',
  'SSUBSCRIBE',
  'SUBSCRIBE',
  'SUNSUBSCRIBE',
  'SYNC',
  'PSYNC',
  'UNSUBSCRIBE',
  'UNWATCH',
  'WAIT',
  'WATCH',
]);

/** One command as the client sends it: a name, then strings, numbers or booleans. */
const commandSchema = z
  .array(z.union([z.string(), z.number(), z.boolean()]))
  .min(1, 'a command is a non-empty array')
  .refine((command) => typeof command[0] === 'string' && command[0] !== '', {
    message: 'the first element of a command is its name',
  });
const commandListSchema = z.array(commandSchema).min(1, 'an empty list of commands');

type Command = z.infer<typeof commandSchema>;

/** A JSON reply with its status. */
interface Reply {
  readonly status: number;
  readonly body: unknown;
}

/** A request the bridge refuses before Redis sees it. */
class BridgeRequestError extends Error {}

/** Starts the bridge once Redis answers; rejects when Redis cannot be reached. */
export async function startUpstashBridge(options: UpstashBridgeOptions): Promise<UpstashBridge> {
  if (options.token === '') throw new InvalidParameterError('upstash bridge: token must not be empty');
  const maxBodyBytes = options.maxBodyBytes ?? 16 * 1024 * 1024;
  const expected = Buffer.from(`Bearer ${options.token}`, 'utf8');

  const redis = new IORedis(options.redisUrl, {
    lazyConnect: true,
    enableAutoPipelining: false,
    maxRetriesPerRequest: 1,
    retryStrategy: (times) => Math.min(times * 50, 500),
  });
  // ioredis reports connection trouble as events; requests see it as 503s with the message.
  let lastConnectionError: Error | undefined;
  redis.on('error', (error: Error) => {
    lastConnectionError = error;
  });
  redis.on('ready', () => {
    lastConnectionError = undefined;
  });
  try {
    await redis.connect();
  } catch (error) {
    redis.disconnect();
    throw new UpstashBridgeStartError(
      `upstash bridge: cannot connect to Redis at ${options.redisUrl}: ${(error as Error).message}`,
      { cause: error },
    );
  }

  const handle = async (req: IncomingMessage): Promise<Reply> => {
    const url = new URL(req.url ?? '/', `http://${HOST}`);
    if (!authorized(req.headers.authorization, url.searchParams.get('_token'), expected)) {
      return { status: 401, body: { error: 'Unauthorized: missing or invalid bearer token' } };
    }
    const path = url.pathname.replace(/\/+$/, '') || '/';
    if (path !== '/' && path !== '/pipeline' && path !== '/multi-exec') {
      return { status: 404, body: { error: `ERR unknown endpoint ${url.pathname}` } };
    }
    if (req.method !== 'POST') {
      return { status: 405, body: { error: `ERR method ${req.method} not allowed (use POST)` } };
    }
    const base64 = String(req.headers['upstash-encoding'] ?? '').toLowerCase() === 'base64';
    const body = await readJson(req, maxBodyBytes);
    if (path === '/') return single(redis, parse(commandSchema, body), base64);
    const commands = parse(commandListSchema, body);
    return path === '/pipeline' ? pipeline(redis, commands, base64) : multiExec(redis, commands, base64);
  };

  const server = createServer((req, res) => {
    handle(req)
      .catch((error: unknown): Reply => {
        if (error instanceof BridgeRequestError) return { status: 400, body: { error: error.message } };
        if (isReplyError(error)) return { status: 400, body: { error: error.message } };
        const reason = error instanceof Error ? error.message : String(error);
        const detail = lastConnectionError ? ` (${lastConnectionError.message})` : '';
        return { status: 503, body: { error: `ERR redis unavailable: ${reason}${detail}` } };
      })
      .then((reply) => send(res, reply));
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port ?? 0, HOST, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (error) {
    redis.disconnect();
    throw new UpstashBridgeStartError(
      `upstash bridge: cannot listen on ${HOST}:${options.port ?? 0}: ${(error as Error).message}`,
      { cause: error },
    );
  }
  const { port } = server.address() as AddressInfo;

  let closing: Promise<void> | undefined;
  return {
    url: `http://${HOST}:${port}`,
    token: options.token,
    close(): Promise<void> {
      closing ??= (async () => {
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeIdleConnections();
        });
        await redis.quit().catch(() => redis.disconnect());
      })();
      return closing;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// The three endpoints

async function single(redis: IORedis, command: Command, base64: boolean): Promise<Reply> {
  const [name, args] = prepare(command);
  const result = await redis.callBuffer(name, ...args);
  return { status: 200, body: { result: encode(result, base64) } };
}

async function pipeline(redis: IORedis, commands: Command[], base64: boolean): Promise<Reply> {
  const prepared = commands.map(tryPrepare);
  const batch = redis.pipeline();
  for (const entry of prepared) if (!(entry instanceof Error)) batch.callBuffer(entry[0], ...entry[1]);
  const results = (await batch.exec()) ?? [];
  let next = 0;
  const body = prepared.map((entry) => {
    if (entry instanceof Error) return { error: entry.message };
    const [error, result] = results[next++] ?? [new Error('ERR no reply'), undefined];
    return entryOf(error, result, base64);
  });
  return { status: 200, body };
}

async function multiExec(redis: IORedis, commands: Command[], base64: boolean): Promise<Reply> {
  const prepared = commands.map(prepare);
  const transaction = redis.multi();
  for (const [name, args] of prepared) transaction.callBuffer(name, ...args);
  const results = await transaction.exec(); // rejects with EXECABORT when a command was refused
  if (results === null) return { status: 400, body: { error: 'EXECABORT transaction aborted' } };
  return { status: 200, body: results.map(([error, result]) => entryOf(error, result, base64)) };
}

function entryOf(
  error: Error | null,
  result: unknown,
  base64: boolean,
): { result: unknown } | { error: string } {
  if (error) return { error: error.message };
  try {
    return { result: encode(result, base64) };
  } catch (encodeError) {
    return { error: (encodeError as Error).message };
  }
}

// ---------------------------------------------------------------------------------------------
// Requests and replies

/**
 * The command name in upper case, and its arguments as strings. Upper case also keeps ioredis
 * from reshaping replies: its reply transformers are keyed by lower-case name (`hgetall` would
 * come back as an object; Upstash answers a flat array).
 */
function prepare(command: Command): [string, string[]] {
  const name = String(command[0]).toUpperCase();
  if (NOT_ALLOWED.has(name)) throw new BridgeRequestError(`ERR command is not allowed: ${name}`);
  return [name, command.slice(1).map((arg) => String(arg))];
}

function tryPrepare(command: Command): [string, string[]] | Error {
  try {
    return prepare(command);
  } catch (error) {
    return error as Error;
  }
}

/** A Redis reply as Upstash sends it (see the module comment). */
function encode(value: unknown, base64: boolean): unknown {
  if (value === null || value === undefined) return null;
  if (typeof value === 'number') return value;
  if (Buffer.isBuffer(value)) {
    if (!base64) return value.toString('utf8');
    return value.length === 2 && value[0] === 0x4f && value[1] === 0x4b ? 'OK' : value.toString('base64');
  }
  if (typeof value === 'string') return encode(Buffer.from(value, 'utf8'), base64);
  if (Array.isArray(value)) return value.map((item) => encode(item, base64));
  if (value instanceof Error) throw value; // an error nested in a reply (a Lua table holding one)
  throw new Error(`ERR unsupported reply type ${typeof value}`);
}

function isReplyError(error: unknown): error is Error {
  return error instanceof Error && error.name === 'ReplyError';
}

function parse<T>(schema: z.ZodType<T>, body: unknown): T {
  const parsed = schema.safeParse(body);
  if (!parsed.success) {
    throw new BridgeRequestError(`ERR malformed request body: ${z.prettifyError(parsed.error)}`);
  }
  return parsed.data;
}

/** The bearer token from the header, or from `?_token=`, compared in constant time. */
function authorized(header: string | undefined, queryToken: string | null, expected: Buffer): boolean {
  const given = header ?? (queryToken === null ? undefined : `Bearer ${queryToken}`);
  if (given === undefined) return false;
  const bytes = Buffer.from(given, 'utf8');
  return bytes.length === expected.length && timingSafeEqual(bytes, expected);
}

function readJson(req: IncomingMessage, maxBytes: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) tooLarge = true;
      else chunks.push(chunk);
    });
    req.on('error', reject);
    req.on('end', () => {
      if (tooLarge) {
        reject(new BridgeRequestError(`ERR request body larger than ${maxBytes} bytes`));
        return;
      }
      const text = Buffer.concat(chunks).toString('utf8');
      try {
        resolve(JSON.parse(text));
      } catch (error) {
        reject(new BridgeRequestError(`ERR request body is not JSON: ${(error as Error).message}`));
      }
    });
  });
}

function send(res: ServerResponse, reply: Reply): void {
  const text = JSON.stringify(reply.body);
  res.writeHead(reply.status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}
