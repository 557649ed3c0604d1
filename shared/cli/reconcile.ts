import * as z from 'zod';
import { UsageError } from '../core/errors.js';
import { newYorkTime } from '../core/live/orders.js';
import type { LiveContext } from '../live/context.js';
import { assignBucket, flattenBucket, type ReconciliationResult, reconcile } from '../live/reconcile.js';
import { buildLiveContext } from '../runtime/equity-live.js';
import { parseLiveEnv } from '../runtime/live.js';
import { choiceFlag, type FlagSpecs, numberFlag, parseFlags, renderHelp, stringFlag } from './args.js';
import { actionTime, osUser, tableFlags } from './operate.js';
import { provenance, startClock, withProvenance } from './provenance.js';

type Io = { stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream };
type Env = Readonly<Record<string, string | undefined>>;

const reconcileFlags: FlagSpecs = {
  assign: {
    type: 'string',
    value: '<sleeve>',
    help: "move the symbol's UNASSIGNED shares into this sleeve's position (a sleeve of the config)",
  },
  flatten: {
    type: 'boolean',
    help: "sell the symbol's UNASSIGNED shares at market (exactly once, client order id ...-flatten)",
  },
  symbol: { type: 'string', value: '<SYM>', help: 'the symbol (with --assign or --flatten)' },
  reason: { type: 'string', value: '<text>', help: 'why (required with --assign or --flatten, recorded)' },
  by: { type: 'string', value: '<name>', help: 'who (recorded; default: the OS user)' },
  qty: {
    type: 'string',
    value: '<n>',
    help: '--assign: only these shares (signed like the bucket; default all of it)',
  },
  stop: {
    type: 'string',
    value: '<price>',
    help: "--assign: the protective stop of the assigned shares (required when the sleeve holds no stop for the symbol; otherwise they keep the sleeve's)",
  },
  ...tableFlags,
  time: {
    type: 'string',
    value: '<ISO time>',
    help: "local rehearsal only (with --endpoint): act at the paper broker's simulated time",
  },
  help: { type: 'boolean', help: 'show this help' },
};

const NOTES = [
  'Without --assign or --flatten it prints the reconciliation (read-only): for each symbol the broker',
  "quantity, the sleeves' sum and the UNASSIGNED bucket (shares no sleeve owns). A non-zero bucket",
  'blocks new entries in its symbol (exits and stops go on) until it is assigned or flattened.',
  'Nothing is ever assigned automatically. It needs the live functions\u2019 environment (STAGE, the',
  'broker keys or ALPACA_SECRET_ARN, QUANTSHIFT_CONFIG; `quantshift local up` prints a local one).',
  'See docs/live.md (Reconciliation) and docs/operations.md (a reconciliation alert).',
];

/** Builds the live context the command acts through (the handlers' own, from the environment). */
export type ContextBuilder = (env: Env) => Promise<LiveContext>;

const LOCAL_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);

/** The live functions' context, with its log and local notices on stderr (stdout is the result). */
function fromEnvironment(io: Io): ContextBuilder {
  return async (env) => {
    const ctx = await buildLiveContext(
      parseLiveEnv({ ...env, IDEMPOTENCY_TABLE: env.IDEMPOTENCY_TABLE ?? 'unused-by-the-cli' }),
    );
    const line = (level: string) => (message: string, fields?: Record<string, unknown>) => {
      io.stderr.write(`${level} ${message}${fields === undefined ? '' : ` ${JSON.stringify(fields)}`}\n`);
    };
    return {
      ...ctx,
      log: { info: line('info'), warn: line('warn'), error: line('error') },
      ...(env.TOPIC_ARN === undefined
        ? {
            notifier: {
              publish: async (n) => {
                io.stderr.write(`notice (${n.severity}): ${n.subject}\n`);
              },
            },
          }
        : {}),
    };
  };
}

/**
 * `quantshift reconcile [--assign <sleeve> | --flatten] --symbol <SYM> --reason <text> [--by <name>]
 * [--qty <n>] [--stop <price>] [--table <name> | --endpoint <url>] [--format json]`: shows the
 * reconciliation of the broker with the sleeves, or resolves a symbol's UNASSIGNED bucket, with who
 * and why (audited).
 */
export async function reconcileCommand(
  argv: readonly string[],
  io: Io,
  env: Env = process.env,
  build: ContextBuilder = fromEnvironment(io),
): Promise<number> {
  const flags = parseFlags('reconcile', argv, reconcileFlags);
  if (flags.help) {
    io.stdout.write(
      renderHelp(
        'quantshift reconcile [--assign <sleeve> | --flatten] [--symbol <SYM> --reason <text>] [flags]',
        'Reconciles the broker with the sleeves; assigns or flattens the UNASSIGNED bucket.',
        reconcileFlags,
        NOTES,
      ),
    );
    return 0;
  }
  const clock = startClock();
  const format = choiceFlag(flags, 'format', ['text', 'json'] as const) ?? 'text';
  const sleeve = stringFlag(flags, 'assign');
  const flatten = flags.flatten === true;
  if (sleeve !== undefined && flatten)
    throw new UsageError('reconcile: give --assign or --flatten, not both');
  const acting = sleeve !== undefined || flatten;
  const symbol = stringFlag(flags, 'symbol')?.trim().toUpperCase();
  const reason = stringFlag(flags, 'reason');
  for (const name of ['symbol', 'reason', 'by', 'qty', 'stop'] as const) {
    if (!acting && flags[name] !== undefined)
      throw new UsageError(`reconcile: --${name} goes with --assign or --flatten`);
  }
  if (flatten && (flags.qty !== undefined || flags.stop !== undefined))
    throw new UsageError('reconcile --flatten sells the whole bucket: --qty and --stop go with --assign');
  if (acting && (symbol === undefined || !/^[A-Z0-9][A-Z0-9.]*$/.test(symbol)))
    throw new UsageError('reconcile: --symbol <SYM> is required with --assign or --flatten');
  if (acting && (reason === undefined || reason.trim() === ''))
    throw new UsageError('reconcile: --reason <text> is required (say why; it is recorded)');
  if (sleeve !== undefined && sleeve.trim() === '')
    throw new UsageError('reconcile: --assign <sleeve> is empty');
  const qty = numberFlag(flags, 'qty');
  if (qty === 0) throw new UsageError('--qty 0: nothing to assign');
  const stop = numberFlag(flags, 'stop', { min: 0.01 });
  const by = stringFlag(flags, 'by') ?? osUser(env);

  const table = stringFlag(flags, 'table') ?? env.STATE_TABLE;
  if (table === undefined || table === '')
    throw new UsageError('give --table <name> or set STATE_TABLE (the live functions’ state table)');
  const endpoint = stringFlag(flags, 'endpoint') ?? env.DYNAMODB_ENDPOINT;
  if (endpoint !== undefined && !z.url().safeParse(endpoint).success)
    throw new UsageError(`--endpoint ${endpoint}: not a URL`);
  const local = endpoint !== undefined && LOCAL_HOSTS.has(new URL(endpoint).hostname);
  const time = actionTime(flags, local);
  const ctx = await build({
    ...env,
    STATE_TABLE: table,
    ...(endpoint === undefined ? {} : { DYNAMODB_ENDPOINT: endpoint }),
  });
  const day = newYorkTime(time).date;
  const write = (document: Record<string, unknown>, lines: readonly string[]) => {
    io.stdout.write(
      format === 'json'
        ? `${JSON.stringify(withProvenance(provenance(clock), { command: 'reconcile', time, ...document }))}\n`
        : `${lines.join('\n')}\n`,
    );
  };
  if (sleeve !== undefined) {
    const result = await assignBucket(ctx, {
      by,
      reason: reason as string,
      time,
      sleeve: sleeve.trim(),
      symbol: symbol as string,
      ...(qty === undefined ? {} : { qty }),
      ...(stop === undefined ? {} : { stop }),
    });
    write({ action: 'assign', sleeve, symbol, by, reason, ...result }, [
      `assigned ${result.qty} ${symbol} from UNASSIGNED to sleeve ${sleeve} (now ${result.sleeveQty}), by ${by}: ${reason}`,
      ...reconciliationLines(result.reconciliation),
    ]);
    return 0;
  }
  if (flatten) {
    const result = await flattenBucket(ctx, { by, reason: reason as string, time, symbol: symbol as string });
    write({ action: 'flatten', symbol, by, reason, ...result }, [
      result.status === 'empty'
        ? `${symbol}: the UNASSIGNED bucket is empty; nothing sent`
        : result.status === 'already-sent'
          ? `${symbol}: a flatten is already on its way (${result.clientOrderId}, ${result.intentStatus}${result.cleared ? ', filled: bucket cleared' : ''}); nothing sent again`
          : result.status === 'already-flattened'
            ? `${symbol}: flattened today already (${result.clientOrderId}, ${result.intentStatus}); nothing sent again (one flatten a symbol and day)`
            : `${symbol}: sell ${result.qty} at market sent as ${result.clientOrderId} (${result.intentStatus}${result.cleared ? ', filled: bucket cleared' : ''}), by ${by}: ${reason}`,
      ...reconciliationLines(result.reconciliation),
    ]);
    return 0;
  }
  // Read-only: the steps (end-of-day, execute-orders) move the bucket and alert; this shows it.
  const result = await reconcile(ctx, day, time, { readOnly: true });
  write({ action: 'show', ...result }, reconciliationLines(result));
  return 0;
}

/** The reconciliation as text lines. */
function reconciliationLines(result: ReconciliationResult): string[] {
  const rows = result.symbols.map(
    (l) =>
      `  ${l.symbol.padEnd(8)}${String(l.brokerQty).padStart(10)}${String(l.sleevesQty).padStart(10)}${String(l.unassignedAfter).padStart(12)}${l.unassignedAfter === 0 ? '' : '   entries blocked'}`,
  );
  return [
    `reconciliation ${result.date} at ${result.at}: ${result.mismatches === 0 ? 'no new difference' : `${result.mismatches} new difference(s), alerted`}`,
    `  ${'symbol'.padEnd(8)}${'broker'.padStart(10)}${'sleeves'.padStart(10)}${'UNASSIGNED'.padStart(12)}`,
    ...(rows.length === 0 ? ['  (no positions)'] : rows),
  ];
}
