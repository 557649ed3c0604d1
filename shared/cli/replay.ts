import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Context } from 'aws-lambda';
import type { LocalAlpacaFault } from '../adapters/local/alpaca-server.js';
import { localLambdaContext } from '../adapters/local/lambda-context.js';
import { startLocalLiveStack } from '../adapters/local/live-stack.js';
import { isoDate } from '../core/config/schema.js';
import { UsageError } from '../core/errors.js';
import { newYorkToUtc } from '../core/live/orders.js';
import { buildLiveContext, parseLiveEnv } from '../runtime/live.js';
import { type FlagSpecs, parseFlags, renderHelp, stringFlag } from './args.js';

type Io = { stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream };

export const replayFlags: FlagSpecs = {
  from: { type: 'string', value: '<YYYY-MM-DD>', help: 'first trading day to replay' },
  to: { type: 'string', value: '<YYYY-MM-DD>', help: 'last trading day to replay' },
  config: { type: 'string', value: '<yaml>', help: 'strategy config (default config/equity-strategy.yaml)' },
  symbols: { type: 'string', value: '<SYM,...>', help: 'override the watchlist' },
  data: { type: 'string', value: '<dir>', help: 'bars the local broker serves (default data)' },
  format: { type: 'string', choices: ['table', 'json'], help: 'stdout format (default table)' },
  'no-cache': { type: 'boolean', help: 'run without the Redis cache (the functions must work without it)' },
  help: { type: 'boolean', help: 'show this help' },
};

/** The schedule of a trading day, New York time, as the EventBridge schedules run it. */
export const DAY_SCHEDULE: readonly { readonly step: string; readonly at: string }[] = [
  { step: 'market-open-check', at: '09:00' },
  { step: 'generate-signals', at: '09:10' },
  { step: 'execute-orders', at: '09:15' },
  { step: 'risk-check', at: '09:45' },
  { step: 'risk-check', at: '12:00' },
  { step: 'risk-check', at: '15:45' },
  { step: 'end-of-day', at: '16:15' },
];

/** The replay's machine-readable result. */
export interface ReplayDocument {
  readonly orders: readonly {
    clientOrderId: string;
    symbol: string;
    side: string;
    qty: number;
    type: string;
    status: string;
    submittedAt: string;
  }[];
  readonly fills: readonly {
    clientOrderId: string | null;
    symbol: string;
    side: string;
    qty: number;
    price: number;
    time: string;
  }[];
  readonly equity: readonly { date: string; equity: number }[];
}

/**
 * Replays the live functions day by day: starts the local stack, moves the paper broker's clock
 * through each weekday's schedule, invokes the real handlers (with a Lambda context) at each
 * scheduled time, and stops the stack at the end. Handler logs go to stderr.
 */
export async function replay(options: {
  readonly from: string;
  readonly to: string;
  readonly configPath: string;
  readonly dataDir: string;
  readonly symbols?: readonly string[];
  readonly withCache: boolean;
  readonly log: (line: string) => void;
  /** Invocations of every scheduled step (2: a duplicated delivery of each schedule). */
  readonly repeat?: number;
  /** Concurrent invocations of execute-orders at its scheduled time. */
  readonly executeConcurrency?: number;
  /** Broker faults armed before each trading day's steps. */
  readonly faults?: readonly LocalAlpacaFault[];
  /**
   * Where the handlers' own output (Powertools logs and EMF metrics, written to stdout and stderr)
   * goes while they run. Default: stderr.
   */
  readonly logSink?: (text: string) => void;
}): Promise<ReplayDocument> {
  let configPath = options.configPath;
  if (options.symbols !== undefined) {
    const dir = mkdtempSync(join(tmpdir(), 'qs-replay-'));
    configPath = join(dir, 'config.yaml');
    writeFileSync(
      configPath,
      readFileSync(options.configPath, 'utf8').replace(
        /^watchlist:.*$/m,
        `watchlist: [${options.symbols.join(', ')}]`,
      ),
    );
  }
  const stack = await startLocalLiveStack({
    dataDir: options.dataDir,
    startTime: newYorkToUtc(options.from, '08:00'),
    configPath,
    withCache: options.withCache,
  });
  const saved = { ...process.env };
  Object.assign(process.env, stack.env);
  const stdoutWrite = process.stdout.write;
  const stderrWrite = process.stderr.write;
  const toStderr = stderrWrite.bind(process.stderr);
  const sink = options.logSink ?? ((text: string) => toStderr(text));
  const capture = ((chunk: unknown) => {
    sink(typeof chunk === 'string' ? chunk : Buffer.from(chunk as Uint8Array).toString('utf8'));
    return true;
  }) as typeof process.stdout.write;
  process.stdout.write = capture;
  process.stderr.write = capture;
  try {
    const handlers = {
      'market-open-check': (await import('../../functions/market-open-check/handler.js')).handler,
      'generate-signals': (await import('../../functions/generate-signals/handler.js')).handler,
      'execute-orders': (await import('../../functions/execute-orders/handler.js')).handler,
      'risk-check': (await import('../../functions/risk-check/handler.js')).handler,
      'end-of-day': (await import('../../functions/end-of-day/handler.js')).handler,
    } as Record<string, (event: unknown, context: Context) => Promise<unknown>>;
    let sequence = 0;
    for (
      let t = Date.parse(`${options.from}T00:00:00Z`);
      t <= Date.parse(`${options.to}T00:00:00Z`);
      t += 86_400_000
    ) {
      const day = new Date(t).toISOString().slice(0, 10);
      const weekday = new Date(t).getUTCDay();
      if (weekday === 0 || weekday === 6) continue;
      for (const { step, at } of DAY_SCHEDULE) {
        const scheduledTime = newYorkToUtc(day, at);
        if (scheduledTime > stack.alpaca.time) stack.alpaca.setTime(scheduledTime);
        const handler = handlers[step] as (event: unknown, context: Context) => Promise<unknown>;
        const result = (await handler(
          { step, scheduledTime },
          localLambdaContext(step, `replay-${++sequence}`),
        )) as {
          isOpen?: boolean;
        };
        if (step === 'market-open-check' && result.isOpen === false) {
          options.log(`replay: ${day} closed`);
          break;
        }
      }
      options.log(`replay: ${day} done`);
    }
    // The results are read through the same adapters the handlers use.
    const { broker, store } = await buildLiveContext(parseLiveEnv(process.env));
    const orders = await broker.listOrders({ status: 'all' });
    const activities = await broker.getActivities({});
    const snapshots = await store.listEquitySnapshots(options.from, options.to);
    const byId = new Map(orders.map((o) => [o.id, o.clientOrderId]));
    return {
      orders: orders
        .map((o) => ({
          clientOrderId: o.clientOrderId,
          symbol: o.symbol,
          side: o.side,
          qty: o.qty,
          type: o.type,
          status: o.status,
          submittedAt: o.submittedAt,
        }))
        .sort((a, b) => (a.submittedAt < b.submittedAt ? -1 : a.submittedAt > b.submittedAt ? 1 : 0)),
      fills: activities.flatMap((a) =>
        a.kind === 'fill'
          ? [
              {
                clientOrderId: byId.get(a.orderId) ?? null,
                symbol: a.symbol,
                side: a.side,
                qty: a.qty,
                price: a.price,
                time: a.time,
              },
            ]
          : [],
      ),
      equity: snapshots.map((s) => ({ date: s.date, equity: s.equity })),
    };
  } finally {
    process.stdout.write = stdoutWrite;
    process.stderr.write = stderrWrite;
    for (const key of Object.keys(stack.env)) {
      if (saved[key] === undefined) delete process.env[key];
      else process.env[key] = saved[key];
    }
    await stack.close();
  }
}

/** `quantshift replay --from --to [--symbols]`. */
export async function replayCommand(argv: readonly string[], io: Io): Promise<number> {
  const flags = parseFlags('replay', argv, replayFlags);
  if (flags.help) {
    io.stdout.write(
      renderHelp(
        'quantshift replay --from <YYYY-MM-DD> --to <YYYY-MM-DD> [flags]',
        'Runs the live functions day by day against a local paper broker, local DynamoDB and local Redis.',
        replayFlags,
      ),
    );
    return 0;
  }
  const from = stringFlag(flags, 'from');
  const to = stringFlag(flags, 'to');
  for (const [name, value] of [
    ['from', from],
    ['to', to],
  ] as const) {
    if (value === undefined || !isoDate.safeParse(value).success)
      throw new UsageError(`--${name}: give a date as YYYY-MM-DD`);
  }
  if ((from as string) > (to as string)) throw new UsageError('--from is after --to');
  const format = stringFlag(flags, 'format') ?? 'table';
  // Handler logs (Powertools writes to stdout) go to stderr; stdout carries only the result.
  const document = await replay({
    from: from as string,
    to: to as string,
    configPath: stringFlag(flags, 'config') ?? 'config/equity-strategy.yaml',
    dataDir: stringFlag(flags, 'data') ?? 'data',
    ...(stringFlag(flags, 'symbols')
      ? { symbols: (stringFlag(flags, 'symbols') as string).split(',').map((s) => s.trim().toUpperCase()) }
      : {}),
    withCache: flags['no-cache'] !== true,
    log: (line) => io.stderr.write(`${line}\n`),
  });
  if (format === 'json') {
    io.stdout.write(`${JSON.stringify(document)}\n`);
    return 0;
  }
  const lines = [
    `Orders (${document.orders.length})`,
    ...document.orders.map(
      (o) =>
        `  ${o.submittedAt.slice(0, 10)}  ${o.side.padEnd(4)} ${String(o.qty).padStart(6)} ${o.symbol.padEnd(5)} ${o.type.padEnd(6)} ${o.status}`,
    ),
    '',
    `Fills (${document.fills.length})`,
    ...document.fills.map(
      (f) =>
        `  ${f.time.slice(0, 10)}  ${f.side.padEnd(4)} ${String(f.qty).padStart(6)} ${f.symbol.padEnd(5)} @ ${f.price.toFixed(2)}`,
    ),
    '',
    'Equity',
    ...document.equity.map((e) => `  ${e.date}  ${e.equity.toFixed(2)}`),
  ];
  io.stdout.write(`${lines.join('\n')}\n`);
  return 0;
}
