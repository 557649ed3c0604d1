import { type ChildProcess, spawn } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { LOCAL_KEYS } from '../../shared/adapters/local/live-stack.js';

let child: ChildProcess | undefined;
afterEach(async () => {
  if (child !== undefined && child.exitCode === null) {
    const exited = new Promise((resolve) => child?.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  }
  child = undefined;
});

/** The `export NAME="value"` lines `local up` prints, once the line naming `last` is there. */
function environment(process: ChildProcess, last: string): Promise<Record<string, string>> {
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    process.stderr?.on('data', (chunk) => {
      err += String(chunk);
    });
    process.stdout?.on('data', (chunk) => {
      out += String(chunk);
      if (!new RegExp(`^export ${last}=.*\\n`, 'm').test(out)) return;
      const env: Record<string, string> = {};
      for (const [, name, value] of out.matchAll(/^export (\w+)=(.*)$/gm)) {
        env[name as string] = JSON.parse(value as string) as string;
      }
      resolve(env);
    });
    process.once('exit', (code) => reject(new Error(`local up exited (${code}) early: ${err}`)));
  });
}

/** The next frame of the socket, parsed. */
const frame = (socket: WebSocket) =>
  new Promise<{ T: string; [key: string]: unknown }[]>((resolve) =>
    socket.once('message', (data) => resolve(JSON.parse(String(data)))),
  );

describe('quantshift local up --stream', () => {
  it('starts the local stream server beside the stack, prints STREAM_URL, and replays the bars to a subscriber', async () => {
    child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        'bin/quantshift.ts',
        'local',
        'up',
        '--no-cache',
        '--stream',
        'data/SPY.csv',
        '--stream-date',
        '2021-03-18',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const env = await environment(child, 'STREAM_URL');
    expect(env).toMatchObject({ STREAM_URL: expect.stringMatching(/^ws:\/\/127\.0\.0\.1:\d+/) });
    expect(env.ALPACA_BASE_URL).toBeDefined();

    const socket = new WebSocket(env.STREAM_URL as string);
    try {
      expect(await frame(socket)).toEqual([{ T: 'success', msg: 'connected' }]);
      const authenticated = frame(socket);
      socket.send(JSON.stringify({ action: 'auth', key: LOCAL_KEYS.keyId, secret: LOCAL_KEYS.secret }));
      expect(await authenticated).toEqual([{ T: 'success', msg: 'authenticated' }]);
      // Every frame from here on, queued: the first bar can arrive in the same read as the
      // subscription's answer (a listener added after awaiting that answer would miss it).
      const queue: unknown[][] = [];
      socket.on('message', (data) => queue.push(JSON.parse(String(data))));
      const next = async (): Promise<unknown[]> => {
        while (queue.length === 0) await new Promise((r) => setTimeout(r, 10));
        return queue.shift() as unknown[];
      };
      socket.send(JSON.stringify({ action: 'subscribe', bars: ['SPY'] }));
      expect((await next())[0]).toMatchObject({ T: 'subscription', bars: ['SPY'] });
      // The replay starts once a consumer subscribes: the session's first minute bar of SPY.
      const [bar] = await next();
      expect(bar).toMatchObject({ T: 'b', S: 'SPY', t: '2021-03-18T13:30:00.000Z' });
    } finally {
      socket.close();
    }
    // A child process that compiles the CLI first: slower than an in-process test on a busy machine.
  }, 90_000);
});
