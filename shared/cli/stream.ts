import { existsSync } from 'node:fs';
import { type StreamFault, startLocalStream } from '../adapters/local/alpaca-stream-server.js';
import { LOCAL_KEYS, startLocalLiveStack } from '../adapters/local/live-stack.js';
import { loadReplayBars, type ReplayBar } from '../adapters/local/minute-bars.js';
import { UsageError } from '../core/errors.js';
import { newYorkTime, newYorkToUtc } from '../core/live/orders.js';
import { executeOrders } from '../live/execute-orders.js';
import { generateSignals } from '../live/generate-signals.js';
import { marketOpenCheck } from '../live/market-open-check.js';
import { buildLiveContext } from '../runtime/equity-live.js';
import { parseLiveEnv } from '../runtime/live.js';
import { parseStreamEnv, runStreamProcess, startStreamFromEnv } from '../stream/main.js';
import { type FlagSpecs, parseFlags, renderHelp, stringFlag } from './args.js';

type Io = { stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream };

const streamFlags: FlagSpecs = {
  local: {
    type: 'boolean',
    help: 'run against the local stack and a local stream server replaying --replay',
  },
  replay: {
    type: 'string',
    value: '<file>',
    help: 'minute bars to replay (data/intraday/2006-01-02-min.csv), or a daily file with --date (synthesised)',
  },
  symbol: { type: 'string', value: '<SYM>', help: 'the symbol the replayed bars are for (default SPY)' },
  date: { type: 'string', value: '<YYYY-MM-DD>', help: 'the session to synthesise from a daily file' },
  speed: {
    type: 'string',
    value: '<x>',
    help: 'replay speed, simulated minutes per second x 60 (default 600)',
  },
  fault: {
    type: 'string',
    multiple: true,
    value: '<kind>',
    help: 'arm a stream fault: drop, stall, duplicate, out-of-order, skip, auth-failure, connection-limit, slow-client',
  },
  config: { type: 'string', value: '<yaml>', help: 'strategy config (default config/equity-strategy.yaml)' },
  help: { type: 'boolean', help: 'show this help' },
};

/** Parses `--fault` values into the local stream server's faults. */
function parseStreamFaults(values: readonly string[]): StreamFault[] {
  return values.map((value) => {
    switch (value) {
      case 'stall':
        return { kind: 'stall', ms: 2_000 };
      case 'skip':
        return { kind: 'skip', bars: 3 };
      case 'drop':
      case 'duplicate':
      case 'out-of-order':
      case 'auth-failure':
      case 'connection-limit':
      case 'slow-client':
        return { kind: value };
      default:
        throw new UsageError(`--fault ${value}: not a stream fault (${String(streamFlags.fault?.help)})`);
    }
  });
}

/**
 * `quantshift stream`: the stream consumer. With `--local --replay <file>`, against the local
 * stack (paper broker, dynalite, redis) and a local stream server replaying the file: the day's
 * market-open check, signals and orders run first (when the bundled daily data covers the day), the
 * replay drives the broker's clock, and a JSON summary goes to stdout at the end. Without
 * `--local`, it runs the stream task against the exported environment (as the ECS task does).
 */
export async function streamCommand(argv: readonly string[], io: Io): Promise<number> {
  const flags = parseFlags('stream', argv, streamFlags);
  if (flags.help) {
    io.stdout.write(
      renderHelp(
        'quantshift stream [--local --replay <file>] [flags]',
        'Runs the market-data stream consumer.',
        streamFlags,
      ),
    );
    return 0;
  }
  if (flags.local !== true) {
    parseStreamEnv();
    return runStreamProcess();
  }
  const replay = stringFlag(flags, 'replay');
  if (replay === undefined) throw new UsageError('stream --local: give --replay <file>');
  if (!existsSync(replay)) throw new UsageError(`--replay ${replay}: no such file`);
  const configPath = stringFlag(flags, 'config') ?? 'config/equity-strategy.yaml';
  if (!existsSync(configPath)) throw new UsageError(`--config ${configPath}: no such file`);
  const symbol = (stringFlag(flags, 'symbol') ?? 'SPY').toUpperCase();
  const date = stringFlag(flags, 'date');
  const speed = Number(stringFlag(flags, 'speed') ?? '600');
  if (!(Number.isFinite(speed) && speed > 0))
    throw new UsageError(`--speed ${stringFlag(flags, 'speed')}: not a positive number`);
  const faults = parseStreamFaults((flags.fault as string[] | undefined) ?? []);
  const bars: ReplayBar[] = loadReplayBars(replay, { symbol, ...(date === undefined ? {} : { date }) });
  const first = bars[0];
  if (first === undefined) throw new UsageError(`--replay ${replay}: no bars`);
  const day = newYorkTime(first.t).date;
  const dayBars = bars.filter((b) => newYorkTime(b.t).date === day);

  // The functions' Powertools logs go to stdout: stderr here, so stdout has the summary only.
  const stdoutWrite = process.stdout.write;
  process.stdout.write = process.stderr.write.bind(process.stderr) as typeof process.stdout.write;
  let summary: string;
  try {
    summary = await replayLocally(day, dayBars, faults, configPath, speed, symbol, io);
  } finally {
    process.stdout.write = stdoutWrite;
  }
  io.stdout.write(summary);
  return 0;
}

async function replayLocally(
  day: string,
  dayBars: readonly ReplayBar[],
  faults: readonly StreamFault[],
  configPath: string,
  speed: number,
  symbol: string,
  io: Io,
): Promise<string> {
  const stack = await startLocalLiveStack({
    dataDir: 'data',
    startTime: newYorkToUtc(day, '08:00'),
    configPath,
  });
  const server = await startLocalStream({ ...LOCAL_KEYS, bars: dayBars, faults });
  Object.assign(process.env, stack.env, { STREAM_URL: server.url });
  let clock = Date.parse(newYorkToUtc(day, '09:20'));
  try {
    const ctx = await buildLiveContext(parseLiveEnv(process.env));
    await marketOpenCheck(ctx, newYorkToUtc(day, '09:00'));
    try {
      await generateSignals(ctx, newYorkToUtc(day, '09:10'));
      await executeOrders(ctx, newYorkToUtc(day, '09:15'));
    } catch (error) {
      io.stderr.write(
        `stream: no signals for ${day} (${(error as Error).message}); replaying without positions\n`,
      );
    }
    // stdout carries the summary only: the EMF lines go to stderr with the logs.
    const run = await startStreamFromEnv(parseStreamEnv(process.env), {
      now: () => clock,
      emit: (line) => io.stderr.write(`${line}\n`),
    });
    let failure: unknown;
    run.consumer.done().catch((error: unknown) => {
      failure = error;
    });
    const step = 60_000 / speed;
    for (const bar of dayBars) {
      if (failure !== undefined) break;
      clock = Date.parse(bar.t) + 60_000;
      stack.alpaca.setTime(new Date(clock).toISOString());
      server.replayBar(bar);
      if (Math.round(clock / 60_000) % 5 === 0) await run.engine.refresh();
      await new Promise((resolve) => setTimeout(resolve, step));
    }
    await run.stop('replay finished');
    if (failure !== undefined) throw failure;
    const latency = run.summary();
    const round = (ms: number) => Math.round(ms * 1000) / 1000;
    return `${JSON.stringify(
      {
        day,
        symbol,
        bars: dayBars.length,
        messages: run.consumer.counts.messages,
        reconnects: run.consumer.counts.reconnects,
        gaps: run.consumer.counts.gaps,
        backfilled: run.consumer.counts.backfilled,
        dropped: run.consumer.counts.dropped,
        exits: run.engine.counts.exits,
        stopsPlaced: run.engine.counts.stopsPlaced,
        ratchets: run.engine.counts.ratchets,
        breakerTrips: run.engine.counts.breakerTrips,
        p50DecideMs: round(latency.decide.p50),
        p99DecideMs: round(latency.decide.p99),
        p50OrderMs: round(latency.order.p50),
        p99OrderMs: round(latency.order.p99),
      },
      null,
      2,
    )}\n`;
  } finally {
    await server.close();
    await stack.close();
  }
}
