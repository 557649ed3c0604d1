import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Context } from 'aws-lambda';
import type { LocalAlpacaFault } from '../adapters/local/alpaca-server.js';
import type { ExecutionRealism } from '../adapters/local/execution-realism.js';
import { localLambdaContext } from '../adapters/local/lambda-context.js';
import { startLocalCryptoStack, startLocalLiveStack } from '../adapters/local/live-stack.js';
import { isoDate, parseConfig, type StrategyConfig, strategyParams } from '../core/config/schema.js';
import { UsageError } from '../core/errors.js';
import { newYorkToUtc } from '../core/live/orders.js';
import type { BrokerPosition } from '../core/ports/broker.js';
import type { StateStore } from '../core/ports/state-store.js';
import type { ReconciliationResult } from '../live/reconcile.js';
import { buildCryptoLiveContext, parseCryptoLiveEnv } from '../runtime/crypto-live.js';
import { buildLiveContext } from '../runtime/equity-live.js';
import { parseLiveEnv } from '../runtime/live.js';
import { type FlagSpecs, numberFlag, parseFlags, renderHelp, stringFlag } from './args.js';
import { type CapturedAlert, saveReplayState } from './paper-state.js';
import { provenance, startClock, withProvenance } from './provenance.js';

type Io = { stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream };

const replayFlags: FlagSpecs = {
  from: { type: 'string', value: '<YYYY-MM-DD>', help: 'first trading day to replay' },
  to: { type: 'string', value: '<YYYY-MM-DD>', help: 'last trading day to replay' },
  config: { type: 'string', value: '<yaml>', help: 'strategy config (default config/equity-strategy.yaml)' },
  symbols: { type: 'string', value: '<SYM,...>', help: 'override the watchlist' },
  data: {
    type: 'string',
    value: '<dir>',
    help: "bars the local broker serves (default the config's data.dir)",
  },
  format: { type: 'string', choices: ['table', 'json'], help: 'stdout format (default table)' },
  'slippage-bps': {
    type: 'string',
    value: '<N>',
    help: "rehearsal: market-on-open fills exactly N bps worse than the open (in place of the config's slippage)",
  },
  'slippage-jitter-bps': {
    type: 'string',
    value: '<J>',
    help: 'rehearsal: seeded noise, uniform in [-J, +J] bps, added to --slippage-bps',
  },
  'partial-fill': {
    type: 'string',
    value: '<F>',
    help: 'rehearsal: fills at the open take the fraction F of the order first, the rest at the close',
  },
  'reject-rate': {
    type: 'string',
    value: '<R>',
    help: 'rehearsal: the broker refuses a market-on-open order with probability R',
  },
  'late-fill-rate': {
    type: 'string',
    value: '<R>',
    help: "rehearsal: a fill is reported only from the next session's close with probability R",
  },
  seed: { type: 'string', value: '<n>', help: 'rehearsal: the seed of the draws above (default 1)' },
  'state-dir': {
    type: 'string',
    value: '<dir>',
    help: 'keep the local state (DynamoDB items, broker orders and fills, alerts) in this folder, for validate-paper',
  },
  'no-cache': { type: 'boolean', help: 'run without the Redis cache (the functions must work without it)' },
  verbose: {
    type: 'boolean',
    help: "the handlers' own logs (Powertools JSON) on stderr, instead of the progress bar and the day-by-day summary",
  },
  help: { type: 'boolean', help: 'show this help' },
};

/** The schedule of a trading day, New York time, as the EventBridge schedules run it. */
const DAY_SCHEDULE: readonly { readonly step: string; readonly at: string }[] = [
  { step: 'market-open-check', at: '09:00' },
  { step: 'generate-signals', at: '09:10' },
  { step: 'execute-orders', at: '09:15' },
  { step: 'risk-check', at: '09:45' },
  { step: 'risk-check', at: '12:00' },
  { step: 'risk-check', at: '15:45' },
  { step: 'end-of-day', at: '16:15' },
];

/**
 * The crypto bot's day, UTC, every day of the week, as its stack's schedules run it (docs/crypto.md):
 * the risk check runs hourly there; the replay runs it after the entries and at midday.
 */
const CRYPTO_DAY_SCHEDULE: readonly { readonly step: string; readonly at: string }[] = [
  { step: 'market-open-check', at: '00:05' },
  { step: 'generate-signals', at: '00:10' },
  { step: 'execute-orders', at: '00:15' },
  { step: 'risk-check', at: '00:30' },
  { step: 'risk-check', at: '12:30' },
  { step: 'end-of-day', at: '23:50' },
];

/** What the replay reports after each weekday: the end-of-day report, or a closed market. */
export interface ReplayDay {
  readonly date: string;
  /** 1-based position of the day among the weekdays replayed, and their number. */
  readonly index: number;
  readonly total: number;
  /** False on a weekday the market was closed (a holiday). */
  readonly open: boolean;
  /** The end-of-day handler's result on an open day. */
  readonly report?: {
    readonly equity?: number;
    readonly dayPnl?: number;
    readonly fills?: readonly { side: string; qty: number; symbol: string; price: number }[];
    readonly positions?: readonly unknown[];
    readonly breakers?: readonly string[];
    readonly halted?: string | null;
    /** Broker vs sleeves after the day's fills (`shared/live/reconcile.ts`). */
    readonly reconciliation?: ReconciliationResult;
  };
}

/** A sleeve's trade in the replay's JSON, shaped as in the sleeves backtest's JSON. */
export interface ReplaySleeveTrade {
  readonly sleeve: string;
  readonly symbol: string;
  readonly direction: 'long' | 'short';
  readonly qty: number;
  readonly entryTime: string | null;
  readonly entryPrice: number;
  readonly exitTime: string | null;
  readonly exitPrice: number | null;
  readonly pnl: number;
  readonly commission: number;
  readonly exitReason: string | null;
}

/**
 * The days from `from` to `to`, inclusive, as YYYY-MM-DD: the weekdays for the equity bot (the
 * market-open check says which are holidays), every day for the crypto bot (24/7, UTC days).
 */
function replayDays(from: string, to: string, everyDay: boolean): string[] {
  const days: string[] = [];
  for (let t = Date.parse(`${from}T00:00:00Z`); t <= Date.parse(`${to}T00:00:00Z`); t += 86_400_000) {
    const weekday = new Date(t).getUTCDay();
    if (everyDay || (weekday !== 0 && weekday !== 6)) days.push(new Date(t).toISOString().slice(0, 10));
  }
  return days;
}

/** The local stack a replay drives: its market clock, the functions' environment, and the end. */
interface ReplayStack {
  readonly env: Readonly<Record<string, string>>;
  readonly time: string;
  setTime(time: string): void;
  close(): Promise<void>;
}

/**
 * One scheduled invocation with the retries an asynchronous Lambda invocation gets (two, so three
 * attempts): a failure the step recovers from on its next run (a broker fault, a dropped answer)
 * does not stop the replay; the third failure does.
 */
async function invokeWithRetries(
  run: () => Promise<unknown>,
  onFailure: (error: unknown, attempt: number) => void,
): Promise<unknown> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await run();
    } catch (error) {
      onFailure(error instanceof Error ? error.message : error, attempt);
      if (attempt >= 3) throw error;
    }
  }
}

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
  /** A sleeves config: each sleeve's trades (positions open at the end without an exit). */
  readonly sleeves?: readonly { readonly id: string; readonly trades: readonly ReplaySleeveTrade[] }[];
  /** Each end-of-day's reconciliation, and the new differences over the span (0 on a clean replay). */
  readonly reconciliation: { readonly mismatches: number; readonly days: readonly ReconciliationResult[] };
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
  /** Called after each weekday, with its end-of-day report. */
  readonly onDay?: (day: ReplayDay) => void;
  /** Rehearsal realism of the paper broker (off by default). */
  readonly realism?: ExecutionRealism;
  /** Partial fills at the open (off by default). */
  readonly partialFill?: number;
  /** Keep the local stack's state in this folder at the end (see `paper-state.ts`). */
  readonly stateDir?: string;
}): Promise<ReplayDocument> {
  let configPath = options.configPath;
  let tempDir: string | undefined;
  if (options.symbols !== undefined) {
    const dir = mkdtempSync(join(tmpdir(), 'qs-replay-'));
    tempDir = dir;
    configPath = join(dir, 'config.yaml');
    writeFileSync(
      configPath,
      readFileSync(options.configPath, 'utf8').replace(
        /^watchlist:.*$/m,
        `watchlist: [${options.symbols.join(', ')}]`,
      ),
    );
  }
  const config = parseConfig(readFileSync(configPath, 'utf8'), configPath);
  // The calendar, the stack and the handlers follow the config's asset class.
  const crypto = config.assetClass === 'crypto';
  if (crypto) {
    const equityOnly = [
      ['broker faults', options.faults !== undefined && options.faults.length > 0],
      [
        '--slippage-bps, --slippage-jitter-bps, --reject-rate, --late-fill-rate, --seed',
        options.realism !== undefined && Object.keys(options.realism).length > 0,
      ],
      ['--partial-fill', options.partialFill !== undefined],
      ['--state-dir', options.stateDir !== undefined],
    ].filter(([, given]) => given);
    if (equityOnly.length > 0)
      throw new UsageError(
        `replay of a crypto config: ${equityOnly.map(([name]) => name).join('; ')} rehearse the equity paper broker only, not the local Coinbase server`,
      );
  }
  const equityStack = crypto
    ? undefined
    : await startLocalLiveStack({
        dataDir: options.dataDir,
        startTime: newYorkToUtc(options.from, '08:00'),
        configPath,
        withCache: options.withCache,
        ...(options.realism === undefined ? {} : { realism: options.realism }),
        ...(options.partialFill === undefined ? {} : { partialFill: options.partialFill }),
      });
  const stack: ReplayStack =
    equityStack === undefined
      ? await startLocalCryptoStack({
          dataDir: options.dataDir,
          startTime: `${options.from}T00:00:00.000Z`,
          configPath,
          withCache: options.withCache,
        })
      : {
          env: equityStack.env,
          get time() {
            return equityStack.alpaca.time;
          },
          setTime: (time) => equityStack.alpaca.setTime(time),
          close: () => equityStack.close(),
        };
  // The functions' notifications (the local notifier logs `[severity] subject`), kept for the state.
  const alerts: CapturedAlert[] = [];
  const noteAlerts = (text: string) => {
    if (options.stateDir === undefined || !text.includes('] ')) return;
    for (const line of text.split('\n')) {
      const match = /"message":"\[(critical|warning|info)\] ((?:[^"\\]|\\.)*)"/.exec(line);
      if (match !== null)
        alerts.push({
          time: stack.time,
          severity: match[1] as string,
          subject: JSON.parse(`"${match[2]}"`) as string,
        });
    }
  };
  const saved = { ...process.env };
  Object.assign(process.env, stack.env);
  const stdoutWrite = process.stdout.write;
  const stderrWrite = process.stderr.write;
  const toStderr = stderrWrite.bind(process.stderr);
  const sink = options.logSink ?? ((text: string) => toStderr(text));
  // A sink that itself writes to process.stderr (`replay --verbose` passes io.stderr, which is
  // process.stderr on the command line) re-enters the capture: that write goes to the real stderr.
  let sinking = false;
  const capture = ((chunk: unknown) => {
    const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk as Uint8Array).toString('utf8');
    if (sinking) return toStderr(text);
    noteAlerts(text);
    sinking = true;
    try {
      sink(text);
    } finally {
      sinking = false;
    }
    return true;
  }) as typeof process.stdout.write;
  process.stdout.write = capture;
  process.stderr.write = capture;
  try {
    const handlers = (
      crypto
        ? {
            'market-open-check': (await import('../../functions/crypto-market-open-check/handler.js'))
              .handler,
            'generate-signals': (await import('../../functions/crypto-generate-signals/handler.js')).handler,
            'execute-orders': (await import('../../functions/crypto-execute-orders/handler.js')).handler,
            'risk-check': (await import('../../functions/crypto-risk-check/handler.js')).handler,
            'end-of-day': (await import('../../functions/crypto-end-of-day/handler.js')).handler,
          }
        : {
            'market-open-check': (await import('../../functions/market-open-check/handler.js')).handler,
            'generate-signals': (await import('../../functions/generate-signals/handler.js')).handler,
            'execute-orders': (await import('../../functions/execute-orders/handler.js')).handler,
            'risk-check': (await import('../../functions/risk-check/handler.js')).handler,
            'end-of-day': (await import('../../functions/end-of-day/handler.js')).handler,
          }
    ) as Record<string, (event: unknown, context: Context) => Promise<unknown>>;
    const schedule = crypto ? CRYPTO_DAY_SCHEDULE : DAY_SCHEDULE;
    const at = (day: string, time: string) =>
      crypto ? new Date(`${day}T${time}:00Z`).toISOString() : newYorkToUtc(day, time);
    let sequence = 0;
    const days = replayDays(options.from, options.to, crypto);
    const reconciliations: ReconciliationResult[] = [];
    for (const [d, day] of days.entries()) {
      let open = true;
      let report: ReplayDay['report'];
      if (options.faults !== undefined && options.faults.length > 0)
        equityStack?.alpaca.injectFaults(...options.faults);
      for (const { step, at: time } of schedule) {
        const scheduledTime = at(day, time);
        if (scheduledTime > stack.time) stack.setTime(scheduledTime);
        const handler = handlers[step] as (event: unknown, context: Context) => Promise<unknown>;
        const invoke = () =>
          invokeWithRetries(
            () => handler({ step, scheduledTime }, localLambdaContext(step, `replay-${++sequence}`)),
            (error, attempt) => options.log(`replay: ${day} ${step} failed (attempt ${attempt}): ${error}`),
          );
        // A duplicated delivery runs the step again; execute-orders may also run several at once,
        // where a duplicate may fail (its lock is taken) as long as one of them succeeds.
        const concurrent = step === 'execute-orders' ? (options.executeConcurrency ?? 1) : 1;
        let result: { isOpen?: boolean } = {};
        for (let r = 0; r < (options.repeat ?? 1); r++) {
          const settled = await Promise.allSettled(Array.from({ length: concurrent }, invoke));
          const done = settled.find((s) => s.status === 'fulfilled');
          if (done === undefined) throw (settled[0] as PromiseRejectedResult).reason;
          result = done.value as { isOpen?: boolean };
        }
        if (step === 'market-open-check' && result.isOpen === false) {
          options.log(`replay: ${day} closed`);
          open = false;
          break;
        }
        if (step === 'end-of-day') {
          report = result as ReplayDay['report'];
          if (report?.reconciliation !== undefined) reconciliations.push(report.reconciliation);
        }
      }
      options.log(`replay: ${day} done`);
      options.onDay?.({
        date: day,
        index: d + 1,
        total: days.length,
        open,
        ...(report === undefined ? {} : { report }),
      });
    }
    // The results are read through the same adapters the handlers use.
    const { broker, store } = crypto
      ? await buildCryptoLiveContext(parseCryptoLiveEnv(process.env))
      : await buildLiveContext(parseLiveEnv(process.env));
    const orders = await broker.listOrders({ status: 'all' });
    const activities = await broker.getActivities({});
    const snapshots = await store.listEquitySnapshots(options.from, options.to);
    const byId = new Map(orders.map((o) => [o.id, o.clientOrderId]));
    const sleeves =
      config.sleeves === undefined
        ? undefined
        : await sleeveTrades(config, store, await broker.getPositions());
    if (options.stateDir !== undefined && equityStack !== undefined) {
      await saveReplayState(options.stateDir, equityStack, {
        orders,
        activities,
        alerts,
        meta: {
          from: options.from,
          to: options.to,
          configPath: options.configPath,
          configText: readFileSync(configPath, 'utf8'),
          options: {
            dataDir: options.dataDir,
            ...(options.realism?.openSlippageBps === undefined
              ? {}
              : { slippageBps: options.realism.openSlippageBps }),
            ...(options.realism?.slippageJitterBps === undefined
              ? {}
              : { slippageJitterBps: options.realism.slippageJitterBps }),
            ...(options.realism?.rejectRate === undefined ? {} : { rejectRate: options.realism.rejectRate }),
            ...(options.realism?.lateFillRate === undefined
              ? {}
              : { lateFillRate: options.realism.lateFillRate }),
            ...(options.realism?.seed === undefined ? {} : { seed: options.realism.seed }),
            ...(options.partialFill === undefined ? {} : { partialFill: options.partialFill }),
          },
        },
      });
    }
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
      ...(sleeves === undefined ? {} : { sleeves }),
      reconciliation: {
        mismatches: reconciliations.reduce((sum, r) => sum + r.mismatches, 0),
        days: reconciliations,
      },
    };
  } finally {
    process.stdout.write = stdoutWrite;
    process.stderr.write = stderrWrite;
    for (const key of Object.keys(stack.env)) {
      if (saved[key] === undefined) delete process.env[key];
      else process.env[key] = saved[key];
    }
    await stack.close();
    if (tempDir !== undefined) rmSync(tempDir, { recursive: true, force: true });
  }
}

/** Each sleeve's closed trades (as end-of-day recorded them) and its positions still open, marked at the broker. */
async function sleeveTrades(
  config: StrategyConfig,
  store: StateStore,
  positions: readonly BrokerPosition[],
): Promise<NonNullable<ReplayDocument['sleeves']>> {
  const state = (await store.getSleevesState())?.record.booked;
  const ids = (config.sleeves ?? []).map((s) => s.id);
  return Promise.all(
    ids.map(async (id) => {
      const closed = (await store.listClosedTrades(id, 10_000)).map(
        (t): ReplaySleeveTrade => ({
          sleeve: id,
          symbol: t.symbol,
          direction: t.side,
          qty: t.qty,
          entryTime: t.entryDate,
          entryPrice: t.entryPrice,
          exitTime: t.exitDate,
          exitPrice: t.exitPrice,
          pnl: t.pnlCents / 100,
          commission: 0,
          exitReason: t.exitReason ?? null,
        }),
      );
      const book = state?.books.find((b) => b.id === id);
      const open = (book?.positions ?? []).map((p): ReplaySleeveTrade => {
        const mark = positions.find((x) => x.symbol === p.symbol)?.currentPrice ?? p.entryPrice;
        return {
          sleeve: id,
          symbol: p.symbol,
          direction: p.side === 1 ? 'long' : 'short',
          qty: p.qty,
          entryTime: new Date(p.entryTime).toISOString().slice(0, 10),
          entryPrice: p.entryPrice,
          exitTime: null,
          exitPrice: null,
          pnl: Math.round(p.side * (p.qty * mark * 100 - p.entryNotional) - p.entryCommission) / 100,
          commission: p.entryCommission / 100,
          exitReason: null,
        };
      });
      return { id, trades: [...closed, ...open] };
    }),
  );
}

/** Keeps the last 50 log chunks (what is shown when a replay fails without --verbose). */
function keepRecent(recent: string[], text: string): void {
  recent.push(text.endsWith('\n') ? text : `${text}\n`);
  if (recent.length > 50) recent.shift();
}

/** One line per replayed day: equity, the day's P&L, its fills, and the breakers that tripped. */
function formatReplayDay(day: ReplayDay): string {
  const head = `${day.date}  (${String(day.index).padStart(String(day.total).length)}/${day.total})`;
  if (!day.open) return `${head}  market closed`;
  const r = day.report ?? {};
  const money = (x: number | undefined) =>
    x === undefined
      ? 'n/a'
      : x.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  const fills = (r.fills ?? []).map((f) => `${f.side} ${f.qty} ${f.symbol} @ ${f.price.toFixed(2)}`);
  return [
    head,
    `equity ${money(r.equity)}`,
    `day P&L ${r.dayPnl !== undefined && r.dayPnl >= 0 ? '+' : ''}${money(r.dayPnl)}`,
    `positions ${(r.positions ?? []).length}`,
    fills.length > 0 ? `fills: ${fills.join(', ')}` : 'no fills',
    ...((r.breakers ?? []).length > 0 ? [`breakers: ${(r.breakers ?? []).join(', ')}`] : []),
    ...(r.halted ? [`halted: ${r.halted}`] : []),
  ].join('  ');
}

/**
 * The default replay display on stderr: a day-by-day summary, with a progress bar under it on a
 * terminal (redrawn in place), or the summary lines alone when stderr is not a terminal.
 */
function replayProgress(stderr: NodeJS.WritableStream & { isTTY?: boolean }) {
  const tty = stderr.isTTY === true;
  let drawn = false;
  const bar = (done: number, total: number) => {
    const width = 30;
    const filled = Math.round((done / Math.max(total, 1)) * width);
    return `replay [${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${done}/${total} days`;
  };
  return {
    day(day: ReplayDay) {
      const line = formatReplayDay(day);
      if (tty) stderr.write(`${drawn ? '\r\x1b[2K' : ''}${line}\n${bar(day.index, day.total)}`);
      else stderr.write(`${line}\n`);
      drawn = tty;
    },
    end() {
      if (drawn) stderr.write('\n');
      drawn = false;
    },
  };
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
  const clock = startClock();
  const format = stringFlag(flags, 'format') ?? 'table';
  const configPath = stringFlag(flags, 'config') ?? 'config/equity-strategy.yaml';
  if (!existsSync(configPath)) throw new UsageError(`--config ${configPath}: no such file`);
  const config = parseConfig(readFileSync(configPath, 'utf8'), configPath);
  const verbose = flags.verbose === true;
  const openSlippageBps = numberFlag(flags, 'slippage-bps', { min: 0, max: 1000 });
  const slippageJitterBps = numberFlag(flags, 'slippage-jitter-bps', { min: 0, max: 1000 });
  if (slippageJitterBps !== undefined && openSlippageBps === undefined)
    throw new UsageError('--slippage-jitter-bps needs --slippage-bps');
  const rejectRate = numberFlag(flags, 'reject-rate', { min: 0, max: 1 });
  const lateFillRate = numberFlag(flags, 'late-fill-rate', { min: 0, max: 1 });
  const seed = numberFlag(flags, 'seed', { integer: true });
  const partialFill = numberFlag(flags, 'partial-fill', { min: 0.01, max: 0.99 });
  const realism: ExecutionRealism = {
    ...(openSlippageBps === undefined ? {} : { openSlippageBps }),
    ...(slippageJitterBps === undefined ? {} : { slippageJitterBps }),
    ...(rejectRate === undefined ? {} : { rejectRate }),
    ...(lateFillRate === undefined ? {} : { lateFillRate }),
    ...(seed === undefined ? {} : { seed }),
  };
  const stateDir = stringFlag(flags, 'state-dir');
  // Handler logs (Powertools writes to stdout) go to stderr with --verbose; otherwise the last of
  // them are kept and shown only if the replay fails. stdout carries only the result.
  const recent: string[] = [];
  const progress = replayProgress(io.stderr);
  let document: ReplayDocument;
  try {
    document = await replay({
      from: from as string,
      to: to as string,
      configPath,
      dataDir: stringFlag(flags, 'data') ?? config.data.dir,
      ...(stringFlag(flags, 'symbols')
        ? { symbols: (stringFlag(flags, 'symbols') as string).split(',').map((s) => s.trim().toUpperCase()) }
        : {}),
      withCache: flags['no-cache'] !== true,
      realism,
      ...(partialFill === undefined ? {} : { partialFill }),
      ...(stateDir === undefined ? {} : { stateDir }),
      log: (line) => (verbose ? io.stderr.write(`${line}\n`) : keepRecent(recent, line)),
      logSink: (text) => (verbose ? io.stderr.write(text) : keepRecent(recent, text)),
      ...(verbose ? {} : { onDay: (day: ReplayDay) => progress.day(day) }),
    });
  } catch (error) {
    progress.end();
    if (!verbose && recent.length > 0)
      io.stderr.write(`replay: the handlers' last log lines:\n${recent.join('').trimEnd()}\n`);
    throw error;
  }
  progress.end();
  if (format === 'json') {
    const params =
      config.sleeves === undefined
        ? strategyParams(config)
        : Object.fromEntries(config.sleeves.map((s) => [s.id, s.params]));
    const meta = provenance(clock, { configPath, params });
    io.stdout.write(
      `${JSON.stringify(withProvenance(meta, { command: 'replay', from, to, ...document }))}\n`,
    );
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
    '',
    `Reconciliation: ${document.reconciliation.mismatches} new difference(s) over ${document.reconciliation.days.length} end-of-day runs`,
    ...document.reconciliation.days
      .filter((d) => d.mismatches > 0 || d.blocked.length > 0)
      .map((d) => `  ${d.date}  ${d.mismatches} new, UNASSIGNED in ${d.blocked.join(', ') || 'none'}`),
  ];
  io.stdout.write(`${lines.join('\n')}\n`);
  return 0;
}
