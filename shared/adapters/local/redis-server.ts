/**
 * A throwaway `redis-server` for tests and offline runs: bound to 127.0.0.1 on a free port, no
 * persistence (`--save '' --appendonly no`, working directory in a fresh temporary folder that
 * `close()` removes). `startRedisServer` resolves once the server answers PING.
 *
 * The binary comes from the Debian package `redis-server` (`bash scripts/ensure-debian-package.sh redis-server redis-server`
 * installs it); when it is missing the promise rejects with {@link RedisServerNotFoundError}.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RedisServerNotFoundError, RedisServerStartError } from '../../core/errors.js';

/** Options of {@link startRedisServer}. */
export interface RedisServerOptions {
  /** The binary to run; `redis-server` (looked up on PATH) by default. */
  readonly binary?: string;
  /** A fixed port; by default a free one is picked. */
  readonly port?: number;
  /** How long to wait for the first PONG before giving up (default 10 s). */
  readonly startTimeoutMs?: number;
}

/** A running local Redis. */
export interface LocalRedisServer {
  readonly port: number;
  /** `redis://127.0.0.1:<port>`, for ioredis. */
  readonly url: string;
  /** Stops the server (no save) and removes its working folder; safe to call twice. */
  close(): Promise<void>;
}

const HOST = '127.0.0.1';
/** Attempts when a picked free port is taken by someone else before the server binds it. */
const PORT_ATTEMPTS = 5;
/** Characters of the server's output kept for error messages. */
const OUTPUT_TAIL = 4_000;
const PING_INTERVAL_MS = 25;

/** Starts `redis-server` and waits until it answers PING. */
export async function startRedisServer(options: RedisServerOptions = {}): Promise<LocalRedisServer> {
  const binary = options.binary ?? 'redis-server';
  const timeoutMs = options.startTimeoutMs ?? 10_000;
  for (let attempt = 1; ; attempt++) {
    const port = options.port ?? (await freePort());
    try {
      return await launch(binary, port, timeoutMs);
    } catch (error) {
      const portTaken =
        error instanceof RedisServerStartError && /address already in use/i.test(error.message);
      if (!portTaken || options.port !== undefined || attempt >= PORT_ATTEMPTS) throw error;
    }
  }
}

async function launch(binary: string, port: number, timeoutMs: number): Promise<LocalRedisServer> {
  const dir = mkdtempSync(join(tmpdir(), 'quantshift-redis-'));
  const args = [
    '--port',
    String(port),
    '--bind',
    HOST,
    '--save',
    '',
    '--appendonly',
    'no',
    '--dir',
    dir,
    '--daemonize',
    'no',
    '--loglevel',
    'warning',
  ];
  const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const keep = (chunk: Buffer): void => {
    output = (output + chunk.toString('utf8')).slice(-OUTPUT_TAIL);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);

  // A server must not outlive the process that started it (a crashed test run, a forgotten close).
  const killOnExit = (): void => {
    child.kill('SIGKILL');
  };
  process.once('exit', killOnExit);
  const cleanup = (): void => {
    process.removeListener('exit', killOnExit);
    rmSync(dir, { recursive: true, force: true });
  };

  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  const spawnFailed = new Promise<Error>((resolve) => child.once('error', resolve));

  try {
    await waitUntilReady(port, timeoutMs, exited, spawnFailed, () => output, binary);
  } catch (error) {
    child.kill('SIGKILL');
    await Promise.race([exited, spawnFailed]);
    cleanup();
    throw error;
  }

  let closing: Promise<void> | undefined;
  return {
    port,
    url: `redis://${HOST}:${port}`,
    close(): Promise<void> {
      closing ??= stop(child, exited).finally(cleanup);
      return closing;
    },
  };
}

async function waitUntilReady(
  port: number,
  timeoutMs: number,
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>,
  spawnFailed: Promise<Error>,
  output: () => string,
  binary: string,
): Promise<void> {
  let settled: Error | undefined;
  void exited.then(({ code, signal }) => {
    settled ??= new RedisServerStartError(
      `${binary} exited while starting on ${HOST}:${port} (${signal ?? `code ${code}`}): ${output().trim() || 'no output'}`,
    );
  });
  void spawnFailed.then((error) => {
    const code = (error as NodeJS.ErrnoException).code;
    settled ??=
      code === 'ENOENT'
        ? new RedisServerNotFoundError(binary, { cause: error })
        : new RedisServerStartError(`${binary}: cannot start: ${error.message}`, { cause: error });
  });
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (settled !== undefined) throw settled;
    if (await answersPing(port)) return;
    if (settled !== undefined) throw settled;
    if (performance.now() > deadline) {
      throw new RedisServerStartError(
        `${binary} did not answer PING on ${HOST}:${port} within ${timeoutMs} ms: ${output().trim() || 'no output'}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, PING_INTERVAL_MS));
  }
}

/** True when a RESP `PING` on a fresh connection is answered with `+PONG`. */
function answersPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: HOST, port });
    let reply = '';
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1_000, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      reply += chunk.toString('latin1');
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
    });
    socket.once('end', () => done(false));
  });
}

/** A port that was free a moment ago (the OS picks it; the probe socket is closed again). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.unref();
    probe.once('error', reject);
    probe.listen(0, HOST, () => {
      const address = probe.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      probe.close(() => (port > 0 ? resolve(port) : reject(new Error('no free port found'))));
    });
  });
}

/** SIGTERM (redis-server shuts down without saving, as `--save ''` asks), SIGKILL after 5 s. */
async function stop(
  child: ChildProcess,
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>,
): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  try {
    await exited;
  } finally {
    clearTimeout(timer);
  }
}
