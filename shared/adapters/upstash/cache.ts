/**
 * The {@link Cache} port on Upstash Redis (`@upstash/redis`, REST). Redis is an accelerator:
 * nothing is kept only here, so a broken cache may cost speed but never correctness.
 *
 * ## Failures: what degrades, what propagates
 * - A stored value that breaks its schema (bars or snapshot) is read as a **miss** and reported
 *   to `onCorrupt` as a {@link CacheCorruptError}; the caller then reads the source of truth and
 *   puts a fresh value, which overwrites the bad one (corrupt entries are not deleted on read, so
 *   a read can never delete a fresh value a concurrent writer just stored).
 * - Redis unreachable or refusing a command ({@link CacheUnavailableError}):
 *   - `getBars` / `getSnapshot` → a miss, `putBars` / `putSnapshot` → skipped, a lock's release →
 *     skipped (the lock then ends at its TTL): each reported to `onUnavailable` **when that
 *     callback is given**; without it they propagate (the cache never fails silently);
 *   - `acquireLock` and `takeRateSlot` **always propagate**: their answer decides whether a
 *     trading step runs or a broker request goes out, and guessing would be wrong both ways
 *     (fail closed: the step fails loudly and alerts).
 * - A value that cannot be stored (a snapshot that is not JSON, bar columns of different
 *   lengths) is a programming error: {@link CacheValueError}, always thrown. Bad arguments (an
 *   empty key, a TTL that is not a whole number of seconds ≥ 1, a limit below 1) throw
 *   {@link InvalidParameterError}.
 *
 * ## Layout (every key starts with `prefix`, e.g. `qs:paper:`, so stages never share keys)
 * - `<prefix>bars:<key>`: a JSON envelope `{ v: 1, symbol, intraday, count, time, open, high, low,
 *   close, volume, adjClose? }` whose columns are base64 of the Float64Array bytes (little endian):
 *   bit-exact (−0, NaN and subnormals included) and about 10.7 characters a value. `SET … EX ttl`.
 * - `<prefix>snapshot:<key>`: `{ v: 1, value }` as JSON, `SET … EX ttl`.
 * - `<prefix>lock:<name>`: a random token, `SET … NX EX ttl`; or, with an owner, the owner's name
 *   set by a Lua script that also lets that same owner in again (reentrant, TTL renewed, see
 *   {@link OWNED_LOCK_SCRIPT}); release runs a Lua script that deletes the key only while it still
 *   holds our token.
 * - `<prefix>rate:<key>`: a sorted set of granted slots scored by their time in ms (a sliding
 *   window log, see {@link RATE_SCRIPT}).
 *
 * Works with either setting of the client's `automaticDeserialization` (values are read whether
 * the client hands back the JSON text or the object it parsed).
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from '@upstash/redis';
import * as z from 'zod';
import {
  CacheCorruptError,
  CacheUnavailableError,
  CacheValueError,
  ConfigError,
  InvalidParameterError,
} from '../../core/errors.js';
import type { BarSeries, MutableBarSeries } from '../../core/market/types.js';
import type { Cache } from '../../core/ports/cache.js';

/** Options of {@link UpstashCache}. */
export interface UpstashCacheOptions {
  /** The client (`new Redis({ url, token })`). */
  readonly redis: Redis;
  /** Starts every key, e.g. `qs:paper:`: segments of letters, digits, `_`, `-` or `.`, each ending in `:`. */
  readonly prefix: string;
  /** Told about every stored value that was read as a miss because it breaks its schema. */
  readonly onCorrupt: (error: CacheCorruptError) => void;
  /**
   * Told about every Redis failure that degraded (a read become a miss, a skipped write or
   * release). Without it those failures propagate.
   */
  readonly onUnavailable?: (error: CacheUnavailableError) => void;
  /**
   * The rate limiter's clock in ms since the epoch. By default the window runs on Redis's own
   * clock (`TIME` inside the script), one clock for every caller whatever their skew.
   */
  readonly now?: () => number;
}

/** The kinds of entry, each under its own key segment. */
export type UpstashCacheEntry = 'bars' | 'snapshot' | 'lock' | 'rate';

/** The full Redis key of an entry (exported for tests and operators). */
export function upstashCacheKey(prefix: string, entry: UpstashCacheEntry, key: string): string {
  return `${prefix}${entry}:${key}`;
}

const PREFIX_PATTERN = /^([A-Za-z0-9_.-]+:)+$/;

/** Deletes the lock only while it still holds the caller's token; 1 when deleted, else 0. */
const RELEASE_SCRIPT = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`;

/**
 * A lock held in an owner's name. KEYS[1]: the lock; ARGV: the owner, the TTL (s). Free: set to
 * the owner (1). Held by the same owner: its TTL renewed (2), so a retry of the same run, or the
 * client's retry of a SET whose answer was lost, gets it. Held by another: 0.
 */
const OWNED_LOCK_SCRIPT = `
local held = redis.call('GET', KEYS[1])
if not held then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', tonumber(ARGV[2]))
  return 1
end
if held == ARGV[1] then
  redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]))
  return 2
end
return 0
`;

/**
 * Sliding window log, atomic in one script. KEYS[1]: the sorted set; ARGV: limit, window (ms), a
 * unique member, now (ms; empty → Redis `TIME`). Slots granted within the last `window` ms (the
 * half-open interval (now − window, now]) are kept; when fewer than `limit`, one more is granted
 * (0 returned), else the script returns the ms until the oldest slot leaves the window (≥ 1).
 *
 * Accuracy: exact, never more than `limit` grants in any window of that length (refused calls
 * take no slot), at the cost of one set member per granted slot (200 for Alpaca's 200 a minute).
 * Resolution 1 ms.
 */
export const RATE_SCRIPT = `
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local now
if ARGV[4] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
else
  now = tonumber(ARGV[4])
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], window)
  return 0
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local wait = tonumber(oldest[2]) + window - now
if wait < 1 then
  wait = 1
end
return wait
`;

const COLUMNS = ['time', 'open', 'high', 'low', 'close', 'volume'] as const;

const base64Column = z
  .string()
  .regex(/^[A-Za-z0-9+/]*={0,2}$/, 'not base64')
  .refine((text) => text.length % 4 === 0, 'base64 length is not a multiple of 4');

/** The stored shape of a bar series (version 1). */
const storedBarsSchema = z.strictObject({
  v: z.literal(1),
  symbol: z.string().min(1),
  intraday: z.boolean(),
  count: z.number().int().nonnegative(),
  time: base64Column,
  open: base64Column,
  high: base64Column,
  low: base64Column,
  close: base64Column,
  volume: base64Column,
  adjClose: base64Column.optional(),
});
type StoredBars = z.infer<typeof storedBarsSchema>;

/** The stored shape of a snapshot (version 1). */
const storedSnapshotSchema = z.strictObject({ v: z.literal(1), value: z.json() });

const ttlSchema = z.number().int().min(1);

/** {@link Cache} on Upstash Redis; see the module comment for layout and failure handling. */
export class UpstashCache implements Cache {
  readonly #redis: Redis;
  readonly #prefix: string;
  readonly #onCorrupt: (error: CacheCorruptError) => void;
  readonly #onUnavailable: ((error: CacheUnavailableError) => void) | undefined;
  readonly #now: (() => number) | undefined;
  readonly #release;
  readonly #ownedLock;
  readonly #rate;

  constructor(options: UpstashCacheOptions) {
    if (!PREFIX_PATTERN.test(options.prefix)) {
      throw new ConfigError(
        `cache prefix "${options.prefix}": expected segments of letters, digits, _, - or ., each ending in ':' (e.g. qs:paper:)`,
      );
    }
    this.#redis = options.redis;
    this.#prefix = options.prefix;
    this.#onCorrupt = options.onCorrupt;
    this.#onUnavailable = options.onUnavailable;
    this.#now = options.now;
    // EVALSHA first, EVAL when Redis answers NOSCRIPT (then the script stays cached there).
    this.#release = options.redis.createScript<number>(RELEASE_SCRIPT);
    this.#ownedLock = options.redis.createScript<number>(OWNED_LOCK_SCRIPT);
    this.#rate = options.redis.createScript<number>(RATE_SCRIPT);
  }

  /** The prefix every key of this cache starts with. */
  get prefix(): string {
    return this.#prefix;
  }

  async getBars(key: string): Promise<BarSeries | undefined> {
    const fullKey = this.#key('bars', key);
    let raw: unknown;
    try {
      raw = await this.#redis.get<unknown>(fullKey);
    } catch (error) {
      this.#degrade(new CacheUnavailableError('getBars', fullKey, { cause: error }));
      return undefined;
    }
    if (raw === null || raw === undefined) return undefined;
    const decoded = decodeBars(fullKey, raw);
    if (decoded instanceof CacheCorruptError) {
      this.#onCorrupt(decoded);
      return undefined;
    }
    return decoded;
  }

  async putBars(key: string, series: BarSeries, ttlSeconds: number): Promise<void> {
    const fullKey = this.#key('bars', key);
    checkTtl(ttlSeconds, 'putBars');
    const text = JSON.stringify(encodeBars(fullKey, series));
    try {
      await this.#redis.set(fullKey, text, { ex: ttlSeconds });
    } catch (error) {
      this.#degrade(new CacheUnavailableError('putBars', fullKey, { cause: error }));
    }
  }

  async acquireLock(name: string, ttlSeconds: number, owner?: string): Promise<(() => Promise<void>) | null> {
    const fullKey = this.#key('lock', name);
    checkTtl(ttlSeconds, 'acquireLock');
    if (owner !== undefined && (typeof owner !== 'string' || owner === '')) {
      throw new InvalidParameterError(`acquireLock ${fullKey}: owner must be a non-empty string`);
    }
    const token = owner ?? randomUUID();
    let acquired: boolean;
    try {
      if (owner === undefined) {
        acquired = (await this.#redis.set(fullKey, token, { nx: true, ex: ttlSeconds })) === 'OK';
      } else {
        const answer = await this.#ownedLock.exec([fullKey], [token, String(ttlSeconds)]);
        const parsed = z.union([z.literal(0), z.literal(1), z.literal(2)]).safeParse(answer);
        if (!parsed.success)
          throw new Error(`unexpected reply from the lock script: ${JSON.stringify(answer)}`);
        acquired = parsed.data !== 0;
      }
    } catch (error) {
      throw new CacheUnavailableError('acquireLock', fullKey, { cause: error });
    }
    if (!acquired) return null;
    let released: Promise<void> | undefined;
    return () => {
      released ??= this.#releaseLock(fullKey, token);
      return released;
    };
  }

  async takeRateSlot(key: string, limit: number, windowSeconds: number): Promise<number> {
    const fullKey = this.#key('rate', key);
    if (!Number.isInteger(limit) || limit < 1) {
      throw new InvalidParameterError(
        `takeRateSlot ${fullKey}: limit must be a whole number ≥ 1, got ${limit}`,
      );
    }
    const windowMs = Math.round(windowSeconds * 1000);
    if (!Number.isFinite(windowSeconds) || windowMs < 1) {
      throw new InvalidParameterError(
        `takeRateSlot ${fullKey}: windowSeconds must be a finite number ≥ 0.001, got ${windowSeconds}`,
      );
    }
    const now = this.#now === undefined ? '' : String(Math.floor(this.#now()));
    let answer: unknown;
    try {
      answer = await this.#rate.exec([fullKey], [String(limit), String(windowMs), randomUUID(), now]);
    } catch (error) {
      throw new CacheUnavailableError('takeRateSlot', fullKey, { cause: error });
    }
    const wait = z.number().int().nonnegative().safeParse(answer);
    if (!wait.success) {
      throw new CacheUnavailableError('takeRateSlot', fullKey, {
        cause: new Error(`unexpected reply from the rate script: ${JSON.stringify(answer)}`),
      });
    }
    return wait.data;
  }

  async putSnapshot(key: string, value: unknown, ttlSeconds: number): Promise<void> {
    const fullKey = this.#key('snapshot', key);
    checkTtl(ttlSeconds, 'putSnapshot');
    if (value === undefined || typeof value === 'function' || typeof value === 'symbol') {
      throw new CacheValueError(fullKey, `not JSON: a snapshot cannot be ${typeof value}`);
    }
    let text: string;
    try {
      text = JSON.stringify({ v: 1, value });
    } catch (error) {
      throw new CacheValueError(fullKey, `not JSON: ${(error as Error).message}`, { cause: error });
    }
    try {
      await this.#redis.set(fullKey, text, { ex: ttlSeconds });
    } catch (error) {
      this.#degrade(new CacheUnavailableError('putSnapshot', fullKey, { cause: error }));
    }
  }

  async getSnapshot<T>(key: string): Promise<T | undefined> {
    const fullKey = this.#key('snapshot', key);
    let raw: unknown;
    try {
      raw = await this.#redis.get<unknown>(fullKey);
    } catch (error) {
      this.#degrade(new CacheUnavailableError('getSnapshot', fullKey, { cause: error }));
      return undefined;
    }
    if (raw === null || raw === undefined) return undefined;
    const parsed = parseStored(fullKey, raw, storedSnapshotSchema);
    if (parsed instanceof CacheCorruptError) {
      this.#onCorrupt(parsed);
      return undefined;
    }
    return parsed.value as T;
  }

  async #releaseLock(fullKey: string, token: string): Promise<void> {
    try {
      await this.#release.exec([fullKey], [token]);
    } catch (error) {
      this.#degrade(new CacheUnavailableError('releaseLock', fullKey, { cause: error }));
    }
  }

  #key(entry: UpstashCacheEntry, key: string): string {
    if (typeof key !== 'string' || key === '') {
      throw new InvalidParameterError(`cache ${entry} key must be a non-empty string`);
    }
    return upstashCacheKey(this.#prefix, entry, key);
  }

  /** Reports a failure that only costs speed, or throws it when nobody listens. */
  #degrade(error: CacheUnavailableError): void {
    if (this.#onUnavailable === undefined) throw error;
    this.#onUnavailable(error);
  }
}

function checkTtl(ttlSeconds: number, operation: string): void {
  if (!ttlSchema.safeParse(ttlSeconds).success) {
    throw new InvalidParameterError(`${operation}: ttlSeconds must be a whole number ≥ 1, got ${ttlSeconds}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Encoding

function encodeBars(fullKey: string, series: BarSeries): StoredBars {
  const count = series.time.length;
  const columns: [string, Float64Array | undefined][] = [
    ...COLUMNS.map((name): [string, Float64Array] => [name, series[name]]),
    ['adjClose', series.adjClose],
  ];
  for (const [name, column] of columns) {
    if (column !== undefined && column.length !== count) {
      throw new CacheValueError(fullKey, `bar column ${name} has ${column.length} values, time has ${count}`);
    }
  }
  const stored: StoredBars = {
    v: 1,
    symbol: series.symbol,
    intraday: series.intraday,
    count,
    time: encodeColumn(series.time),
    open: encodeColumn(series.open),
    high: encodeColumn(series.high),
    low: encodeColumn(series.low),
    close: encodeColumn(series.close),
    volume: encodeColumn(series.volume),
  };
  if (series.adjClose !== undefined) stored.adjClose = encodeColumn(series.adjClose);
  return stored;
}

/** Base64 of the values as little-endian IEEE 754 doubles (bit-exact, whatever the host's byte order). */
function encodeColumn(values: Float64Array): string {
  const bytes = new ArrayBuffer(values.length * 8);
  const view = new DataView(bytes);
  for (let i = 0; i < values.length; i++) view.setFloat64(i * 8, values[i] as number, true);
  return Buffer.from(bytes).toString('base64');
}

function decodeColumn(text: string, count: number): Float64Array | undefined {
  const bytes = Buffer.from(text, 'base64');
  if (bytes.length !== count * 8) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const values = new Float64Array(count);
  for (let i = 0; i < count; i++) values[i] = view.getFloat64(i * 8, true);
  return values;
}

function decodeBars(fullKey: string, raw: unknown): BarSeries | CacheCorruptError {
  const stored = parseStored(fullKey, raw, storedBarsSchema);
  if (stored instanceof CacheCorruptError) return stored;
  const series: Partial<MutableBarSeries> = { symbol: stored.symbol, intraday: stored.intraday };
  for (const name of [...COLUMNS, 'adjClose'] as const) {
    const text = stored[name];
    if (text === undefined) continue;
    const column = decodeColumn(text, stored.count);
    if (column === undefined) {
      return new CacheCorruptError(fullKey, `bar column ${name} does not hold ${stored.count} doubles`);
    }
    series[name] = column;
  }
  return series as MutableBarSeries;
}

/** The stored JSON (text, or already parsed by the client) checked against `schema`. */
function parseStored<T>(fullKey: string, raw: unknown, schema: z.ZodType<T>): T | CacheCorruptError {
  let value = raw;
  if (typeof raw === 'string') {
    try {
      value = JSON.parse(raw);
    } catch (error) {
      return new CacheCorruptError(fullKey, 'not JSON', { cause: error });
    }
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    return new CacheCorruptError(fullKey, z.prettifyError(parsed.error).replaceAll('\n', '; '), {
      cause: parsed.error,
    });
  }
  return parsed.data;
}
