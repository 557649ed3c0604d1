import { existsSync, readFileSync } from 'node:fs';
import type { Context } from 'aws-lambda';
import { startLocalStream } from '../adapters/local/alpaca-stream-server.js';
import { localLambdaContext } from '../adapters/local/lambda-context.js';
import { LOCAL_KEYS, startLocalLiveStack } from '../adapters/local/live-stack.js';
import { loadReplayBars } from '../adapters/local/minute-bars.js';
import { UsageError } from '../core/errors.js';
import { NoSessionError } from '../live/context.js';
import { cloudWatchAlarmEventSchema, type LiveStep, liveEventSchema } from '../runtime/live.js';

import { type FlagSpecs, parseFlags, renderHelp, stringFlag, wantsHelp } from './args.js';

type Io = { stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream };

const localUpFlags: FlagSpecs = {
  config: { type: 'string', value: '<yaml>', help: 'strategy config (default config/equity-strategy.yaml)' },
  data: { type: 'string', value: '<dir>', help: 'bars the local broker serves (default data)' },
  time: {
    type: 'string',
    value: '<ISO time>',
    help: "the paper broker's simulated clock to start at (default 2025-06-02T12:00:00Z)",
  },
  'no-cache': { type: 'boolean', help: 'start without redis and the Upstash bridge' },
  stream: {
    type: 'string',
    value: '<file>',
    help: 'also start the local market-data stream replaying these minute bars (see quantshift stream --help)',
  },
  'stream-symbol': { type: 'string', value: '<SYM>', help: 'the symbol of the --stream bars (default SPY)' },
  'stream-date': {
    type: 'string',
    value: '<YYYY-MM-DD>',
    help: 'the session to synthesise from a daily --stream file',
  },
  help: { type: 'boolean', help: 'show this help' },
};

/**
 * `quantshift local up`: starts the local paper broker, DynamoDB (dynalite) and Redis behind the
 * Upstash bridge, prints the environment to point the functions at (`export` lines), and keeps
 * running until interrupted.
 */
export async function localCommand(argv: readonly string[], io: Io): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub !== 'up' && !wantsHelp(argv))
    throw new UsageError('usage: quantshift local up [--config <yaml>] [--data <dir>] [--time <ISO>]');
  const flags = parseFlags('local up', sub === 'up' ? rest : argv, localUpFlags);
  if (flags.help) {
    io.stdout.write(
      renderHelp(
        'quantshift local up [flags]',
        'Starts the local stack and prints its environment.',
        localUpFlags,
      ),
    );
    return 0;
  }
  const configPath = stringFlag(flags, 'config') ?? 'config/equity-strategy.yaml';
  if (!existsSync(configPath)) throw new UsageError(`--config ${configPath}: no such file`);
  const stack = await startLocalLiveStack({
    dataDir: stringFlag(flags, 'data') ?? 'data',
    startTime: stringFlag(flags, 'time') ?? '2025-06-02T12:00:00Z',
    configPath,
    withCache: flags['no-cache'] !== true,
  });
  const replay = stringFlag(flags, 'stream');
  const stream = replay === undefined ? undefined : await startReplayStream(replay, flags);
  const env = stream === undefined ? stack.env : { ...stack.env, STREAM_URL: stream.url };
  io.stdout.write(
    `${Object.entries(env)
      .map(([k, v]) => `export ${k}=${JSON.stringify(v)}`)
      .join('\n')}\n`,
  );
  io.stderr.write('local stack up (paper broker, dynalite, redis + Upstash bridge); Ctrl-C stops it\n');
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await stream?.close();
  await stack.close();
  return 0;
}

/** The local stream server of `local up --stream`: it replays the bars, a minute a second, once a consumer subscribes. */
async function startReplayStream(file: string, flags: ReturnType<typeof parseFlags>) {
  if (!existsSync(file)) throw new UsageError(`--stream ${file}: no such file`);
  const date = stringFlag(flags, 'stream-date');
  const bars = loadReplayBars(file, {
    symbol: (stringFlag(flags, 'stream-symbol') ?? 'SPY').toUpperCase(),
    ...(date === undefined ? {} : { date }),
  });
  const server = await startLocalStream({ ...LOCAL_KEYS, bars });
  const stop = new AbortController();
  void server.waitForSubscriber().then(() => server.play({ speed: 60, signal: stop.signal }));
  return {
    url: server.url,
    close: async () => {
      stop.abort();
      await server.close();
    },
  };
}

type Handler = (event: unknown, context: Context) => Promise<unknown>;

/**
 * What `quantshift invoke` runs, by name: the five scheduled steps (the schedule's payload) and
 * the kill switch (a CloudWatch alarm event). Help and errors list these names.
 */
const INVOKABLE: Readonly<
  Record<
    LiveStep | 'kill-switch',
    { readonly load: () => Promise<{ handler: Handler }>; readonly alarm: boolean }
  >
> = {
  'market-open-check': { load: () => import('../../functions/market-open-check/handler.js'), alarm: false },
  'generate-signals': { load: () => import('../../functions/generate-signals/handler.js'), alarm: false },
  'execute-orders': { load: () => import('../../functions/execute-orders/handler.js'), alarm: false },
  'risk-check': { load: () => import('../../functions/risk-check/handler.js'), alarm: false },
  'end-of-day': { load: () => import('../../functions/end-of-day/handler.js'), alarm: false },
  'kill-switch': { load: () => import('../../functions/kill-switch/handler.js'), alarm: true },
};

/** The names `invoke` takes, from its registry. */
const invokableFunctions: readonly string[] = Object.keys(INVOKABLE);

const invokeFlags: FlagSpecs = {
  event: {
    type: 'string',
    value: '<file>',
    help: 'the event JSON: {"step": "...", "scheduledTime": "..."} (examples in docs/examples/)',
  },
  'with-open-check': {
    type: 'boolean',
    help: "run market-open-check first at the event's scheduled time (writes the day's session record)",
  },
  help: { type: 'boolean', help: 'show this help' },
};

const invokeHelp = () =>
  renderHelp(
    'quantshift invoke <function> --event <file> [flags]',
    `Runs one live handler locally.\nFunctions: ${invokableFunctions.join(', ')}`,
    invokeFlags,
    [
      'Example:',
      '  quantshift invoke generate-signals --event docs/examples/generate-signals.json --with-open-check',
    ],
  );

/** Runs a handler with a local Lambda context, its stdout (Powertools logs) sent to stderr. */
async function runHandler(name: string, handler: Handler, event: unknown): Promise<unknown> {
  const stdoutWrite = process.stdout.write;
  process.stdout.write = process.stderr.write.bind(process.stderr) as typeof process.stdout.write;
  try {
    return await handler(event, localLambdaContext(name, `invoke-${process.pid}`));
  } finally {
    process.stdout.write = stdoutWrite;
  }
}

/**
 * `quantshift invoke <function> --event <file>`: runs one live handler locally with a Lambda
 * context, against the stack whose environment is exported (see `quantshift local up`), as
 * `sam local invoke` does. The result goes to stdout; the handler's logs to stderr.
 * `--with-open-check` runs market-open-check first, for the event's scheduled time.
 */
export async function invokeCommand(argv: readonly string[], io: Io): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name.startsWith('-')) {
    const flags = parseFlags('invoke', argv, invokeFlags);
    io.stdout.write(invokeHelp());
    return flags.help ? 0 : 2;
  }
  const flags = parseFlags('invoke', rest, invokeFlags);
  if (flags.help) {
    io.stdout.write(invokeHelp());
    return 0;
  }
  const target = Object.hasOwn(INVOKABLE, name) ? INVOKABLE[name as keyof typeof INVOKABLE] : undefined;
  if (target === undefined)
    throw new UsageError(`invoke: unknown function "${name}" (${invokableFunctions.join(', ')})`);
  const eventPath = stringFlag(flags, 'event');
  if (eventPath === undefined)
    throw new UsageError('invoke: give --event <file> (examples in docs/examples/)');
  let event: unknown;
  try {
    event = JSON.parse(readFileSync(eventPath, 'utf8'));
  } catch (error) {
    throw new UsageError(`--event ${eventPath}: not a readable JSON file (${(error as Error).message})`, {
      cause: error,
    });
  }
  // The scheduled steps take the schedule's payload; the kill switch a CloudWatch alarm event.
  const checked = (target.alarm ? cloudWatchAlarmEventSchema : liveEventSchema).safeParse(event);
  if (!checked.success) {
    throw new UsageError(
      `--event ${eventPath}: ${checked.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    );
  }
  if (flags['with-open-check'] === true) {
    if (target.alarm)
      throw new UsageError('--with-open-check: the kill switch takes an alarm event, not a day');
    const { scheduledTime } = checked.data as { scheduledTime: string };
    const open = INVOKABLE['market-open-check'];
    const session = await runHandler('market-open-check', (await open.load()).handler, {
      step: 'market-open-check',
      scheduledTime,
    });
    io.stderr.write(`invoke: market-open-check first: ${JSON.stringify(session)}\n`);
  }
  let result: unknown;
  try {
    result = await runHandler(name, (await target.load()).handler, checked.data);
  } catch (error) {
    if (!(error instanceof NoSessionError)) throw error;
    throw new NoSessionError(
      `${error.message}: run \`quantshift invoke market-open-check\` for that day first, or add --with-open-check`,
      { cause: error },
    );
  }
  io.stdout.write(`${JSON.stringify(result)}\n`);
  return 0;
}
