import { existsSync, readFileSync } from 'node:fs';
import type { Context } from 'aws-lambda';
import { localLambdaContext } from '../adapters/local/lambda-context.js';
import { startLocalLiveStack } from '../adapters/local/live-stack.js';
import { UsageError } from '../core/errors.js';
import { cloudWatchAlarmEventSchema, LIVE_STEPS, type LiveStep, liveEventSchema } from '../runtime/live.js';

/** What `quantshift invoke` runs: the five scheduled steps and the kill switch. */
type InvokableFunction = LiveStep | 'kill-switch';

import { type FlagSpecs, parseFlags, renderHelp, stringFlag } from './args.js';

type Io = { stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream };

export const localUpFlags: FlagSpecs = {
  config: { type: 'string', value: '<yaml>', help: 'strategy config (default config/equity-strategy.yaml)' },
  data: { type: 'string', value: '<dir>', help: 'bars the local broker serves (default data)' },
  time: {
    type: 'string',
    value: '<ISO time>',
    help: "the paper broker's simulated clock to start at (default 2025-06-02T12:00:00Z)",
  },
  'no-cache': { type: 'boolean', help: 'start without redis and the Upstash bridge' },
  help: { type: 'boolean', help: 'show this help' },
};

/**
 * `quantshift local up`: starts the local paper broker, DynamoDB (dynalite) and Redis behind the
 * Upstash bridge, prints the environment to point the functions at (`export` lines), and keeps
 * running until interrupted.
 */
export async function localCommand(argv: readonly string[], io: Io): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub !== 'up')
    throw new UsageError('usage: quantshift local up [--config <yaml>] [--data <dir>] [--time <ISO>]');
  const flags = parseFlags('local up', rest, localUpFlags);
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
  io.stdout.write(
    `${Object.entries(stack.env)
      .map(([k, v]) => `export ${k}=${JSON.stringify(v)}`)
      .join('\n')}\n`,
  );
  io.stderr.write('local stack up (paper broker, dynalite, redis + Upstash bridge); Ctrl-C stops it\n');
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await stack.close();
  return 0;
}

export const invokeFlags: FlagSpecs = {
  event: { type: 'string', value: '<file>', help: 'the event JSON: {"step": "...", "scheduledTime": "..."}' },
  help: { type: 'boolean', help: 'show this help' },
};

/**
 * `quantshift invoke <function> --event <file>`: runs one live handler locally with a Lambda
 * context, against the stack whose environment is exported (see `quantshift local up`), as
 * `sam local invoke` does. The result goes to stdout; the handler's logs to stderr.
 */
export async function invokeCommand(argv: readonly string[], io: Io): Promise<number> {
  const [name, ...rest] = argv;
  const flags = parseFlags('invoke', rest, invokeFlags);
  if (flags.help || name === undefined || name.startsWith('-')) {
    io.stdout.write(
      renderHelp(
        'quantshift invoke <function> --event <file>',
        'Runs one live handler locally.',
        invokeFlags,
      ),
    );
    return name === undefined ? 2 : 0;
  }
  const steps: readonly InvokableFunction[] = [...LIVE_STEPS, 'kill-switch'];
  if (!(steps as readonly string[]).includes(name))
    throw new UsageError(`invoke: unknown function "${name}" (${steps.join(', ')})`);
  const eventPath = stringFlag(flags, 'event');
  if (eventPath === undefined) throw new UsageError('invoke: give --event <file>');
  let event: unknown;
  try {
    event = JSON.parse(readFileSync(eventPath, 'utf8'));
  } catch (error) {
    throw new UsageError(`--event ${eventPath}: not a readable JSON file (${(error as Error).message})`, {
      cause: error,
    });
  }
  // The scheduled steps take the schedule's payload; the kill switch a CloudWatch alarm event.
  const checked = (name === 'kill-switch' ? cloudWatchAlarmEventSchema : liveEventSchema).safeParse(event);
  if (!checked.success) {
    throw new UsageError(
      `--event ${eventPath}: ${checked.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    );
  }
  const loaders: Record<
    InvokableFunction,
    () => Promise<{ handler: (event: unknown, context: Context) => Promise<unknown> }>
  > = {
    'market-open-check': () => import('../../functions/market-open-check/handler.js'),
    'generate-signals': () => import('../../functions/generate-signals/handler.js'),
    'execute-orders': () => import('../../functions/execute-orders/handler.js'),
    'risk-check': () => import('../../functions/risk-check/handler.js'),
    'end-of-day': () => import('../../functions/end-of-day/handler.js'),
    'kill-switch': () => import('../../functions/kill-switch/handler.js'),
  } as never;
  const module = await loaders[name as InvokableFunction]();
  const stdoutWrite = process.stdout.write;
  process.stdout.write = process.stderr.write.bind(process.stderr) as typeof process.stdout.write;
  let result: unknown;
  try {
    result = await module.handler(checked.data, localLambdaContext(name, `invoke-${process.pid}`));
  } finally {
    process.stdout.write = stdoutWrite;
  }
  io.stdout.write(`${JSON.stringify(result)}\n`);
  return 0;
}
