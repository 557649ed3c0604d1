import { Redis } from '@upstash/redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadBarsCsv } from '../../shared/adapters/fs/bars.js';
import { type LocalRedisServer, startRedisServer } from '../../shared/adapters/local/redis-server.js';
import { startUpstashBridge, type UpstashBridge } from '../../shared/adapters/local/upstash-bridge.js';
import {
  UpstashCache,
  type UpstashCacheOptions,
  upstashCacheKey,
} from '../../shared/adapters/upstash/cache.js';
import {
  CacheCorruptError,
  CacheUnavailableError,
  CacheValueError,
  ConfigError,
  InvalidParameterError,
  RedisServerNotFoundError,
} from '../../shared/core/errors.js';
import type { BarSeries } from '../../shared/core/market/types.js';

const TOKEN = 'test-token';

let server: LocalRedisServer;
let bridge: UpstashBridge;
/** The client as the adapters use it (auto-pipelining on, automatic deserialization on). */
let redis: Redis;

beforeAll(async () => {
  server = await startRedisServer();
  bridge = await startUpstashBridge({ redisUrl: server.url, token: TOKEN });
  redis = client();
});

afterAll(async () => {
  await bridge?.close();
  await server?.close();
});

function client(options: { token?: string; url?: string; automaticDeserialization?: boolean } = {}): Redis {
  return new Redis({
    url: options.url ?? bridge.url,
    token: options.token ?? TOKEN,
    enableTelemetry: false,
    retry: false,
    ...(options.automaticDeserialization === undefined
      ? {}
      : { automaticDeserialization: options.automaticDeserialization }),
  });
}

let prefixes = 0;
/** A cache under a prefix of its own, collecting what it reports. */
function cache(options: Partial<UpstashCacheOptions> = {}): {
  cache: UpstashCache;
  corrupt: CacheCorruptError[];
  unavailable: CacheUnavailableError[];
} {
  const corrupt: CacheCorruptError[] = [];
  const unavailable: CacheUnavailableError[] = [];
  const built = new UpstashCache({
    redis,
    prefix: `qs:test${++prefixes}:`,
    onCorrupt: (error) => corrupt.push(error),
    onUnavailable: (error) => unavailable.push(error),
    ...options,
  });
  return { cache: built, corrupt, unavailable };
}

/** A raw request to the bridge, as `@upstash/redis` sends them. */
async function post(
  path: string,
  body: unknown,
  headers: Record<string, string> = { authorization: `Bearer ${TOKEN}`, 'upstash-encoding': 'base64' },
): Promise<{ status: number; body: unknown }> {
  const res = await fetch(`${bridge.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}

const b64 = (text: string): string => Buffer.from(text, 'utf8').toString('base64');

/** The bytes of every column, for a bit-exact comparison (NaN, -0 included). */
function bits(series: BarSeries): Record<string, string> {
  const columns = ['time', 'open', 'high', 'low', 'close', 'volume', 'adjClose'] as const;
  return Object.fromEntries(
    columns
      .filter((name) => series[name] !== undefined)
      .map((name) => {
        const column = series[name] as Float64Array;
        return [name, Buffer.from(column.buffer, column.byteOffset, column.byteLength).toString('hex')];
      }),
  );
}

describe('local redis-server', () => {
  it('names the Debian package when the binary is missing', async () => {
    const started = startRedisServer({ binary: 'redis-server-that-does-not-exist' });
    await expect(started).rejects.toBeInstanceOf(RedisServerNotFoundError);
    await expect(started).rejects.toThrow(/Debian package 'redis-server'/);
  });

  it('answers on 127.0.0.1 at a port of its own', () => {
    expect(server.port).toBeGreaterThan(0);
    expect(server.url).toBe(`redis://127.0.0.1:${server.port}`);
  });
});

describe('Upstash REST bridge', () => {
  it('runs one command and keeps OK plain while base64-encoding other strings', async () => {
    expect(await post('/', ['SET', 'bridge:plain', 'PONG'])).toEqual({ status: 200, body: { result: 'OK' } });
    expect(await post('/', ['GET', 'bridge:plain'])).toEqual({ status: 200, body: { result: b64('PONG') } });
    expect(await post('/', ['PING'])).toEqual({ status: 200, body: { result: b64('PONG') } });
    expect(await post('/', ['GET', 'bridge:absent'])).toEqual({ status: 200, body: { result: null } });
    expect(await post('/', ['INCR', 'bridge:counter'])).toEqual({ status: 200, body: { result: 1 } });
  });

  it('sends UTF-8 text without the encoding header', async () => {
    await post('/', ['SET', 'bridge:text', 'Zürich — 東京 🚀']);
    const reply = await post('/', ['GET', 'bridge:text'], { authorization: `Bearer ${TOKEN}` });
    expect(reply).toEqual({ status: 200, body: { result: 'Zürich — 東京 🚀' } });
  });

  it('round-trips non-ASCII strings through the client base64 decoding', async () => {
    const text = 'Zürich — 東京 🚀 «ok» \u0000 end';
    await redis.set('bridge:unicode', text);
    expect(await redis.get('bridge:unicode')).toBe(text);
    const raw = await post('/', ['GET', 'bridge:unicode']);
    expect(raw.body).toEqual({ result: b64(text) });
  });

  it('answers HGETALL as a flat array, which the client turns into an object', async () => {
    await redis.hset('bridge:hash', { b: 'two', a: 'one', '10': 'ten' });
    const raw = await post('/', ['HGETALL', 'bridge:hash']);
    const flat = (raw.body as { result: string[] }).result.map((item) =>
      Buffer.from(item, 'base64').toString(),
    );
    expect(flat).toHaveLength(6);
    expect(Object.fromEntries([0, 2, 4].map((i) => [flat[i], flat[i + 1]]))).toEqual({
      b: 'two',
      a: 'one',
      '10': 'ten',
    });
    expect(await redis.hgetall('bridge:hash')).toEqual({ b: 'two', a: 'one', '10': 'ten' });
  });

  it('answers 401 on a bad or missing token', async () => {
    const wrong = await post('/', ['PING'], { authorization: 'Bearer not-the-token' });
    expect(wrong.status).toBe(401);
    expect(wrong.body).toEqual({ error: expect.stringMatching(/unauthorized/i) });
    expect((await post('/', ['PING'], {})).status).toBe(401);
    await expect(client({ token: 'not-the-token' }).get('bridge:plain')).rejects.toThrow(/unauthorized/i);
  });

  it('answers Redis errors as { error } with status 400', async () => {
    expect(await post('/', ['GET'])).toEqual({
      status: 400,
      body: { error: "ERR wrong number of arguments for 'get' command" },
    });
    expect((await post('/', ['SUBSCRIBE', 'news'])).status).toBe(400);
    expect((await post('/', '{not json')).status).toBe(400);
    expect((await post('/', [])).status).toBe(400);
    expect((await post('/nowhere', ['PING'])).status).toBe(404);
    await expect(redis.incr('bridge:unicode')).rejects.toThrow(/not an integer/);
  });

  it('runs a pipeline: in order, each command succeeding or failing on its own', async () => {
    const raw = await post('/pipeline', [
      ['SET', 'pipe:a', 'x'],
      ['INCR', 'pipe:a'],
      ['APPEND', 'pipe:a', 'ü'],
      ['GET', 'pipe:a'],
      ['MULTI'],
    ]);
    expect(raw.status).toBe(200);
    expect(raw.body).toEqual([
      { result: 'OK' },
      { error: 'ERR value is not an integer or out of range' },
      { result: 3 },
      { result: b64('xü') },
      { error: 'ERR command is not allowed: MULTI' },
    ]);
    const results = await redis.pipeline().set('pipe:b', 41).incr('pipe:b').get('pipe:b').exec();
    expect(results).toEqual(['OK', 42, 42]);
    await expect(redis.pipeline().set('pipe:c', 'v').incr('pipe:c').exec()).rejects.toThrow(
      /Command 2 \[ incr \] failed/,
    );
  });

  it('runs multi-exec atomically and aborts it when Redis refuses a queued command', async () => {
    const results = await redis.multi().set('tx:a', 'one').incr('tx:n').incr('tx:n').get('tx:a').exec();
    expect(results).toEqual(['OK', 1, 2, 'one']);
    const raw = await post('/multi-exec', [
      ['SET', 'tx:b', 'two'],
      ['SET', 'tx:b'],
    ]);
    expect(raw.status).toBe(400);
    expect(raw.body).toEqual({ error: expect.stringMatching(/^EXECABORT/) });
    expect(await redis.exists('tx:b')).toBe(0);
    const runtime = await post('/multi-exec', [
      ['SET', 'tx:c', 'text'],
      ['INCR', 'tx:c'],
    ]);
    expect(runtime.body).toEqual([
      { result: 'OK' },
      { error: 'ERR value is not an integer or out of range' },
    ]);
  });

  it('serves EVAL, EVALSHA, SCRIPT LOAD and the NOSCRIPT fallback of createScript', async () => {
    const lua = "return {ARGV[1], tonumber(ARGV[2]) + 1, redis.call('GET', KEYS[1])}";
    await redis.set('lua:key', 'stored');
    expect(await redis.eval(lua, ['lua:key'], ['é', '41'])).toEqual(['é', 42, 'stored']);
    const sha = await redis.scriptLoad(lua);
    expect(sha).toMatch(/^[0-9a-f]{40}$/);
    expect(await redis.evalsha(sha, ['lua:key'], ['x', '1'])).toEqual(['x', 2, 'stored']);
    await expect(redis.evalsha('0'.repeat(40), [], [])).rejects.toThrow(/NOSCRIPT/);
    const fresh = `return 'fresh ' .. ARGV[1] -- ${Math.random()}`;
    const script = redis.createScript<string>(fresh);
    expect(await script.exec([], ['one'])).toBe('fresh one'); // EVALSHA → NOSCRIPT → EVAL
    expect(await script.evalsha([], ['two'])).toBe('fresh two'); // now cached
  });
});

describe('UpstashCache bars', () => {
  const spy = loadBarsCsv('data/SPY.csv', { symbol: 'SPY' });

  it('round-trips a real series exactly, every value of every column, with its TTL', async () => {
    const { cache: c, corrupt } = cache();
    await c.putBars('SPY:2021', spy, 3600);
    const back = await c.getBars('SPY:2021');
    expect(back).toBeDefined();
    expect(back?.symbol).toBe('SPY');
    expect(back?.intraday).toBe(spy.intraday);
    expect(back?.time.length).toBe(spy.time.length);
    expect(bits(back as BarSeries)).toEqual(bits(spy));
    for (const name of ['time', 'open', 'high', 'low', 'close', 'volume'] as const) {
      expect(Array.from(back?.[name] ?? [])).toEqual(Array.from(spy[name]));
    }
    const ttl = await redis.ttl(upstashCacheKey(c.prefix, 'bars', 'SPY:2021'));
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(3600);
    expect(corrupt).toEqual([]);
  });

  it('keeps awkward doubles bit for bit, and adjClose when present', async () => {
    const { cache: c } = cache();
    const awkward = Float64Array.of(-0, 0.1 + 0.2, Number.MIN_VALUE, Number.MAX_VALUE, Number.NaN, -Infinity);
    const series: BarSeries = {
      symbol: 'ODD',
      time: Float64Array.of(1, 2, 3, 4, 5, 6),
      open: awkward,
      high: awkward.map((v) => v * 3),
      low: awkward.map((v) => -v),
      close: Float64Array.of(1 / 3, 2 / 3, 1e-300, 123456789.12345679, 5e-324, 2 ** 53 + 2),
      volume: Float64Array.of(0, 1, 2, 3, 4, 5),
      adjClose: Float64Array.of(0.30000000000000004, 1, 2, 3, 4, 5),
      intraday: true,
    };
    await c.putBars('odd', series, 60);
    const back = await c.getBars('odd');
    expect(bits(back as BarSeries)).toEqual(bits(series));
    expect(Object.is(back?.open[0], -0)).toBe(true);
    expect(back?.intraday).toBe(true);

    const empty: BarSeries = { symbol: 'EMPTY', intraday: false, ...emptyColumns() };
    await c.putBars('empty', empty, 60);
    const emptyBack = await c.getBars('empty');
    expect(emptyBack?.time.length).toBe(0);
    expect(emptyBack && 'adjClose' in emptyBack).toBe(false);
  });

  it('reads the same value through a client without automatic deserialization', async () => {
    const { cache: writer } = cache();
    await writer.putBars('SPY', spy, 60);
    const reader = new UpstashCache({
      redis: client({ automaticDeserialization: false }),
      prefix: writer.prefix,
      onCorrupt: (error) => {
        throw error;
      },
    });
    expect(bits((await reader.getBars('SPY')) as BarSeries)).toEqual(bits(spy));
  });

  it('is a miss without report when nothing is stored', async () => {
    const { cache: c, corrupt, unavailable } = cache();
    expect(await c.getBars('absent')).toBeUndefined();
    expect(corrupt).toEqual([]);
    expect(unavailable).toEqual([]);
  });

  it.each([
    ['not JSON', '{"v":1,"symbol":'],
    ['a foreign layout', JSON.stringify({ bars: [1, 2, 3] })],
    ['another version', JSON.stringify({ v: 2, symbol: 'SPY' })],
    [
      'a truncated column',
      JSON.stringify({
        v: 1,
        symbol: 'SPY',
        intraday: false,
        count: 2,
        time: Buffer.alloc(16).toString('base64'),
        open: Buffer.alloc(8).toString('base64'),
        high: Buffer.alloc(16).toString('base64'),
        low: Buffer.alloc(16).toString('base64'),
        close: Buffer.alloc(16).toString('base64'),
        volume: Buffer.alloc(16).toString('base64'),
      }),
    ],
    [
      'a column that is not base64',
      JSON.stringify({ v: 1, symbol: 'SPY', intraday: false, count: 0, time: '%%' }),
    ],
    ['a bare number', '12345'],
  ])('reads %s as a miss and reports it to onCorrupt', async (_label, stored) => {
    const { cache: c, corrupt, unavailable } = cache();
    const key = upstashCacheKey(c.prefix, 'bars', 'SPY');
    await redis.set(key, stored);
    expect(await c.getBars('SPY')).toBeUndefined();
    expect(corrupt).toHaveLength(1);
    expect(corrupt[0]).toBeInstanceOf(CacheCorruptError);
    expect(corrupt[0]?.key).toBe(key);
    expect(corrupt[0]?.message).toContain(key);
    expect(unavailable).toEqual([]);
    // A fresh put repairs it.
    await c.putBars('SPY', spy, 60);
    expect(bits((await c.getBars('SPY')) as BarSeries)).toEqual(bits(spy));
  });

  it('refuses columns of different lengths and bad TTLs', async () => {
    const { cache: c } = cache();
    await expect(c.putBars('bad', { ...spy, close: spy.close.subarray(1) }, 60)).rejects.toBeInstanceOf(
      CacheValueError,
    );
    await expect(c.putBars('bad', spy, 0)).rejects.toBeInstanceOf(InvalidParameterError);
    await expect(c.putBars('bad', spy, 1.5)).rejects.toBeInstanceOf(InvalidParameterError);
    await expect(c.getBars('')).rejects.toBeInstanceOf(InvalidParameterError);
  });
});

function emptyColumns(): Pick<BarSeries, 'time' | 'open' | 'high' | 'low' | 'close' | 'volume'> {
  const none = () => new Float64Array(0);
  return { time: none(), open: none(), high: none(), low: none(), close: none(), volume: none() };
}

describe('UpstashCache locks', () => {
  it('lets exactly one of 10 concurrent callers (separate clients) take the lock', async () => {
    const prefix = cache().cache.prefix;
    const callers = Array.from(
      { length: 10 },
      () => new UpstashCache({ redis: client(), prefix, onCorrupt: () => undefined }),
    );
    const releases = await Promise.all(callers.map((c) => c.acquireLock('signal:2024-01-02', 60)));
    const winners = releases.filter((release) => release !== null);
    expect(winners).toHaveLength(1);
    await winners[0]?.();
    const again = await (callers[3] as UpstashCache).acquireLock('signal:2024-01-02', 60);
    expect(again).not.toBeNull();
  });

  it('lets exactly one of 10 concurrent acquires on one client win', async () => {
    const { cache: c } = cache();
    const releases = await Promise.all(Array.from({ length: 10 }, () => c.acquireLock('execute', 60)));
    expect(releases.filter((release) => release !== null)).toHaveLength(1);
  });

  it('expires after its TTL, and the former owner cannot release the new owner’s lock', async () => {
    const { cache: c } = cache();
    const key = upstashCacheKey(c.prefix, 'lock', 'risk');
    const first = await c.acquireLock('risk', 1);
    expect(first).not.toBeNull();
    expect(await c.acquireLock('risk', 1)).toBeNull();
    const ttl = await redis.pttl(key);
    expect(ttl).toBeGreaterThan(0);
    await new Promise((resolve) => setTimeout(resolve, ttl + 50));
    const second = await c.acquireLock('risk', 60);
    expect(second).not.toBeNull();
    const secondToken = await redis.get(key);

    await first?.(); // no longer the owner: must not delete the new lock
    expect(await redis.get(key)).toBe(secondToken);
    expect(await c.acquireLock('risk', 60)).toBeNull();

    await second?.();
    expect(await redis.exists(key)).toBe(0);
    await second?.(); // releasing twice is harmless
  });

  it('refuses a TTL that is not a whole number of seconds', async () => {
    const { cache: c } = cache();
    await expect(c.acquireLock('x', 0.5)).rejects.toBeInstanceOf(InvalidParameterError);
  });

  it('held in an owner’s name: reentrant for that owner (TTL renewed), refused to others and to token callers', async () => {
    const { cache: c } = cache();
    const key = upstashCacheKey(c.prefix, 'lock', 'execute-orders:2024-01-02');
    const owner = 'execute-orders@2024-01-02T14:15:00.000Z';
    const first = await c.acquireLock('execute-orders:2024-01-02', 5, owner);
    expect(first).not.toBeNull();
    expect(await redis.get(key)).toBe(owner);
    const again = await c.acquireLock('execute-orders:2024-01-02', 300, owner);
    expect(again).not.toBeNull();
    expect(await redis.ttl(key)).toBeGreaterThan(5);
    expect(await c.acquireLock('execute-orders:2024-01-02', 300, 'execute-orders@another')).toBeNull();
    expect(await c.acquireLock('execute-orders:2024-01-02', 300)).toBeNull();
    // Ten concurrent callers of another owner: none gets it; the owner's own release frees it.
    const others = await Promise.all(
      Array.from({ length: 10 }, (_, i) => c.acquireLock('execute-orders:2024-01-02', 60, `other-${i}`)),
    );
    expect(others.every((release) => release === null)).toBe(true);
    await again?.();
    expect(await redis.exists(key)).toBe(0);
    await expect(c.acquireLock('x', 60, '')).rejects.toBeInstanceOf(InvalidParameterError);
  });
});

describe('UpstashCache rate limiter', () => {
  it('allows exactly `limit` slots in a window, then returns a positive wait (Redis clock)', async () => {
    const { cache: c } = cache();
    const answers: number[] = [];
    for (let i = 0; i < 5; i++) answers.push(await c.takeRateSlot('alpaca', 5, 60));
    expect(answers).toEqual([0, 0, 0, 0, 0]);
    const wait = await c.takeRateSlot('alpaca', 5, 60);
    expect(wait).toBeGreaterThan(0);
    expect(wait).toBeLessThanOrEqual(60_000);
    expect(await c.takeRateSlot('other-key', 5, 60)).toBe(0);
    const set = upstashCacheKey(c.prefix, 'rate', 'alpaca');
    expect(await redis.zcard(set)).toBe(5); // refused calls take no slot
    expect(await redis.pttl(set)).toBeGreaterThan(0);
  });

  it('grants exactly `limit` of many concurrent callers', async () => {
    const { cache: c } = cache();
    const answers = await Promise.all(Array.from({ length: 25 }, () => c.takeRateSlot('burst', 10, 60)));
    expect(answers.filter((wait) => wait === 0)).toHaveLength(10);
    expect(answers.filter((wait) => wait > 0)).toHaveLength(15);
  });

  it('slides: the wait is exact, and a slot frees when the oldest grant leaves the window', async () => {
    let now = 1_700_000_000_000;
    const { cache: c } = cache({ now: () => now });
    expect(await c.takeRateSlot('slide', 2, 60)).toBe(0);
    now += 10_000;
    expect(await c.takeRateSlot('slide', 2, 60)).toBe(0);
    now += 5_000;
    expect(await c.takeRateSlot('slide', 2, 60)).toBe(45_000);
    now += 44_999;
    expect(await c.takeRateSlot('slide', 2, 60)).toBe(1);
    now += 1;
    expect(await c.takeRateSlot('slide', 2, 60)).toBe(0); // the first grant has left the window
    expect(await c.takeRateSlot('slide', 2, 60)).toBe(10_000); // the second leaves 10 s later
  });

  it('refuses a limit below 1 or an empty window', async () => {
    const { cache: c } = cache();
    await expect(c.takeRateSlot('x', 0, 60)).rejects.toBeInstanceOf(InvalidParameterError);
    await expect(c.takeRateSlot('x', 1.5, 60)).rejects.toBeInstanceOf(InvalidParameterError);
    await expect(c.takeRateSlot('x', 1, 0)).rejects.toBeInstanceOf(InvalidParameterError);
  });
});

describe('UpstashCache snapshots', () => {
  it('round-trips JSON with its TTL', async () => {
    const { cache: c } = cache();
    const snapshot = {
      day: '2024-01-02',
      targets: [{ symbol: 'SPY', qty: 10, stop: 470.25 }],
      note: 'Zürich — 東京 🚀',
      empty: null,
    };
    await c.putSnapshot('signals', snapshot, 300);
    expect(await c.getSnapshot<typeof snapshot>('signals')).toEqual(snapshot);
    const ttl = await redis.ttl(upstashCacheKey(c.prefix, 'snapshot', 'signals'));
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(300);
    await c.putSnapshot('text', 'just a string', 300);
    expect(await c.getSnapshot('text')).toBe('just a string');
    expect(await c.getSnapshot('absent')).toBeUndefined();
  });

  it('reads a corrupt snapshot as a miss and reports it', async () => {
    const { cache: c, corrupt } = cache();
    await redis.set(upstashCacheKey(c.prefix, 'snapshot', 'signals'), 'not json at all');
    expect(await c.getSnapshot('signals')).toBeUndefined();
    expect(corrupt).toHaveLength(1);
    expect(corrupt[0]).toBeInstanceOf(CacheCorruptError);
  });

  it('refuses values that are not JSON', async () => {
    const { cache: c } = cache();
    await expect(c.putSnapshot('x', undefined, 60)).rejects.toBeInstanceOf(CacheValueError);
    await expect(c.putSnapshot('x', { n: 1n }, 60)).rejects.toBeInstanceOf(CacheValueError);
    const loop: Record<string, unknown> = {};
    loop.self = loop;
    await expect(c.putSnapshot('x', loop, 60)).rejects.toBeInstanceOf(CacheValueError);
  });
});

describe('UpstashCache prefixes and failures', () => {
  it('keeps stages apart by prefix', async () => {
    const paper = new UpstashCache({ redis, prefix: 'qs:paper:', onCorrupt: () => undefined });
    const live = new UpstashCache({ redis, prefix: 'qs:live:', onCorrupt: () => undefined });
    await paper.putSnapshot('latest', { stage: 'paper' }, 60);
    expect(await live.getSnapshot('latest')).toBeUndefined();
    expect(await paper.getSnapshot('latest')).toEqual({ stage: 'paper' });
    expect(() => new UpstashCache({ redis, prefix: 'qs paper', onCorrupt: () => undefined })).toThrow(
      ConfigError,
    );
    expect(() => new UpstashCache({ redis, prefix: '', onCorrupt: () => undefined })).toThrow(ConfigError);
  });

  it('degrades reads, writes and releases to misses and skips when Redis refuses, and reports them', async () => {
    const { cache: good } = cache();
    const release = await good.acquireLock('step', 60);
    const unavailable: CacheUnavailableError[] = [];
    const broken = new UpstashCache({
      redis: client({ token: 'wrong-token' }),
      prefix: good.prefix,
      onCorrupt: () => undefined,
      onUnavailable: (error) => unavailable.push(error),
    });
    expect(await broken.getBars('SPY')).toBeUndefined();
    await broken.putBars('SPY', loadBarsCsv('data/SPY.csv', { symbol: 'SPY' }), 60);
    expect(await broken.getSnapshot('s')).toBeUndefined();
    await broken.putSnapshot('s', { a: 1 }, 60);
    expect(unavailable.map((error) => error.operation)).toEqual([
      'getBars',
      'putBars',
      'getSnapshot',
      'putSnapshot',
    ]);
    expect(unavailable.every((error) => error instanceof CacheUnavailableError)).toBe(true);
    expect(unavailable[0]?.message).toMatch(/unauthorized/i);
    expect(unavailable[1]?.message.length).toBeLessThan(600); // not the 300 KB command it failed on
    // Locks and the rate limiter decide what happens next: they always propagate.
    await expect(broken.acquireLock('step', 60)).rejects.toBeInstanceOf(CacheUnavailableError);
    await expect(broken.acquireLock('step', 60, 'execute-orders@x')).rejects.toBeInstanceOf(
      CacheUnavailableError,
    );
    await expect(broken.takeRateSlot('alpaca', 5, 60)).rejects.toBeInstanceOf(CacheUnavailableError);
    await release?.();
  });

  it('propagates failures when no onUnavailable is given, and when the server is gone', async () => {
    const strict = new UpstashCache({
      redis: client({ token: 'wrong-token' }),
      prefix: 'qs:strict:',
      onCorrupt: () => undefined,
    });
    await expect(strict.getBars('SPY')).rejects.toBeInstanceOf(CacheUnavailableError);
    await expect(strict.putSnapshot('s', 1, 60)).rejects.toBeInstanceOf(CacheUnavailableError);

    const gone = await startUpstashBridge({ redisUrl: server.url, token: TOKEN });
    await gone.close();
    const unavailable: CacheUnavailableError[] = [];
    const offline = new UpstashCache({
      redis: client({ url: gone.url }),
      prefix: 'qs:offline:',
      onCorrupt: () => undefined,
      onUnavailable: (error) => unavailable.push(error),
    });
    expect(await offline.getSnapshot('s')).toBeUndefined();
    expect(unavailable).toHaveLength(1);
    await expect(offline.acquireLock('step', 60)).rejects.toBeInstanceOf(CacheUnavailableError);
    await expect(offline.acquireLock('step', 60, 'execute-orders@x')).rejects.toBeInstanceOf(
      CacheUnavailableError,
    );
  });
});
