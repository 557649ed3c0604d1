import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import * as z from 'zod';
import { DynamoStateStore, stateStoreDocumentClient } from '../adapters/dynamodb/state-store.js';
import { liveSleeveIds, parseConfig } from '../core/config/schema.js';
import { UsageError } from '../core/errors.js';
import { newYorkTime } from '../core/live/orders.js';
import type { AuditRecord, StateStore } from '../core/ports/state-store.js';
import { entryBlock, type RiskState } from '../core/risk/index.js';
import { haltTrading, resetDrawdownHalt, resumeTrading } from '../live/kill-switch.js';
import { choiceFlag, type FlagSpecs, type ParsedFlags, parseFlags, renderHelp, stringFlag } from './args.js';
import { provenance, startClock, withProvenance } from './provenance.js';

type Io = { stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream };
type Env = Readonly<Record<string, string | undefined>>;

export const tableFlags: FlagSpecs = {
  table: {
    type: 'string',
    value: '<name>',
    help: 'the state table (default: env STATE_TABLE); region and credentials from the AWS environment',
  },
  endpoint: {
    type: 'string',
    value: '<url>',
    help: 'a local DynamoDB, as `quantshift local up` prints it (default: env DYNAMODB_ENDPOINT)',
  },
  format: { type: 'string', choices: ['text', 'json'], help: 'stdout format (default text)' },
};

const haltFlags: FlagSpecs = {
  reason: { type: 'string', value: '<text>', help: 'why (recorded; default "manual halt")' },
  by: { type: 'string', value: '<name>', help: 'who (recorded; default: the OS user)' },
  ...tableFlags,
  time: {
    type: 'string',
    value: '<ISO time>',
    help: "local rehearsal only (with --endpoint): act at the paper broker's simulated time",
  },
  help: { type: 'boolean', help: 'show this help' },
};

const resumeFlags: FlagSpecs = {
  reason: { type: 'string', value: '<text>', help: 'why trading may go on (required, recorded)' },
  'reset-drawdown': {
    type: 'boolean',
    help: 'also reset a tripped drawdown breaker: the high-water mark becomes the last observed equity',
  },
  by: { type: 'string', value: '<name>', help: 'who (recorded; default: the OS user)' },
  ...tableFlags,
  time: haltFlags.time as FlagSpecs[string],
  help: { type: 'boolean', help: 'show this help' },
};

const statusFlags: FlagSpecs = {
  ...tableFlags,
  config: {
    type: 'string',
    value: '<yaml>',
    help: "the deployed config, for the live gate's records (default config/equity-strategy.yaml)",
  },
  help: { type: 'boolean', help: 'show this help' },
};

const NOTES = [
  'The flag lives in the state table (RISK/STATE). It blocks new entries only: exits, protective',
  'stops and reconciliation go on. Every step reads it at its next invocation. See docs/live.md.',
];

/** The OS user, or `unknown` where the platform cannot say. */
function osUser(env: Env): string {
  try {
    return userInfo().username;
  } catch {
    return env.USER ?? env.USERNAME ?? 'unknown';
  }
}

const LOCAL_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);

/** The state store the flags and the environment name: deployed (`--table`) or local (`--endpoint`). */
export function openStore(flags: ParsedFlags, env: Env) {
  const table = stringFlag(flags, 'table') ?? env.STATE_TABLE;
  if (table === undefined || table === '')
    throw new UsageError('give --table <name> or set STATE_TABLE (the live functions’ state table)');
  const endpoint = stringFlag(flags, 'endpoint') ?? env.DYNAMODB_ENDPOINT;
  if (endpoint !== undefined && !z.url().safeParse(endpoint).success)
    throw new UsageError(`--endpoint ${endpoint}: not a URL`);
  const local = endpoint !== undefined && LOCAL_HOSTS.has(new URL(endpoint).hostname);
  const client = new DynamoDBClient(
    endpoint === undefined
      ? {}
      : {
          endpoint,
          // A local DynamoDB wants a region and some credentials, never real ones.
          region: env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? 'us-east-1',
          ...(local && env.AWS_ACCESS_KEY_ID === undefined
            ? { credentials: { accessKeyId: 'local', secretAccessKey: 'local' } }
            : {}),
        },
  );
  const store = new DynamoStateStore(stateStoreDocumentClient(client), table);
  const where = endpoint === undefined ? `table ${table}` : `table ${table} at ${endpoint}`;
  return { store, where, local, close: () => client.destroy() };
}

function actionTime(flags: ParsedFlags, local: boolean): string {
  const time = stringFlag(flags, 'time');
  if (time === undefined) return new Date().toISOString();
  if (!local)
    throw new UsageError('--time is for local rehearsals only (with a local --endpoint): a real halt is now');
  const parsed = z.iso.datetime({ offset: true }).safeParse(time);
  if (!parsed.success) throw new UsageError(`--time ${time}: not an ISO time`);
  return time;
}

const since = (k: NonNullable<RiskState['killSwitch']>) =>
  `since ${new Date(k.since).toISOString()} by ${k.by} (${k.reason})`;

function help(io: Io, usage: string, summary: string, specs: FlagSpecs): number {
  io.stdout.write(renderHelp(usage, summary, specs, NOTES));
  return 0;
}

/**
 * `quantshift halt [--reason <text>] [--by <name>] [--table <name> | --endpoint <url>]`: sets the
 * kill switch in the state table, with who and why (audited), and skips today's entry intents not
 * yet sent. Already halted: says so and exits 0.
 */
export async function haltCommand(argv: readonly string[], io: Io, env: Env = process.env): Promise<number> {
  const flags = parseFlags('halt', argv, haltFlags);
  if (flags.help)
    return help(
      io,
      'quantshift halt [--reason <text>] [--by <name>] [flags]',
      'Halts new entries.',
      haltFlags,
    );
  const clock = startClock();
  const format = choiceFlag(flags, 'format', ['text', 'json'] as const) ?? 'text';
  const reason = stringFlag(flags, 'reason') ?? 'manual halt';
  if (reason.trim() === '') throw new UsageError('halt: --reason must not be empty');
  const by = stringFlag(flags, 'by') ?? osUser(env);
  const { store, where, local, close } = openStore(flags, env);
  try {
    const time = actionTime(flags, local);
    const result = await haltTrading(store, { reason, by, time, details: { via: 'cli' } });
    if (format === 'json') {
      io.stdout.write(
        `${JSON.stringify(withProvenance(provenance(clock), { command: 'halt', time, ...result }))}\n`,
      );
      return 0;
    }
    const k = result.state?.killSwitch;
    io.stdout.write(
      result.changed
        ? [
            `halted (${where}): new entries are blocked from the next run of every step; exits, stops and reconciliation go on`,
            `  by: ${by}`,
            `  reason: ${reason}`,
            `  at: ${time}`,
            ...(result.entriesSkipped.length > 0
              ? [`  entry intents not sent: ${result.entriesSkipped.join(', ')}`]
              : []),
            'Open entry orders at the broker are cancelled by the next risk check (the kill-switch function cancels them at once).',
            '',
          ].join('\n')
        : `already halted (${where}) ${k ? since(k) : ''}; nothing changed\n`,
    );
    return 0;
  } finally {
    close();
  }
}

/**
 * `quantshift resume --reason <text> [--by <name>] [--table <name> | --endpoint <url>]`: clears the
 * kill switch, recording who and why. A reason is required. Not halted: says so and exits 0.
 */
export async function resumeCommand(
  argv: readonly string[],
  io: Io,
  env: Env = process.env,
): Promise<number> {
  const flags = parseFlags('resume', argv, resumeFlags);
  if (flags.help)
    return help(
      io,
      'quantshift resume --reason <text> [--by <name>] [flags]',
      'Clears the kill switch: new entries are allowed again (unless a breaker still holds).',
      resumeFlags,
    );
  const clock = startClock();
  const format = choiceFlag(flags, 'format', ['text', 'json'] as const) ?? 'text';
  const reason = stringFlag(flags, 'reason');
  if (reason === undefined || reason.trim() === '')
    throw new UsageError('resume: --reason <text> is required (say why trading may go on)');
  const by = stringFlag(flags, 'by') ?? osUser(env);
  const { store, where, local, close } = openStore(flags, env);
  try {
    const time = actionTime(flags, local);
    const resumed = await resumeTrading(store, { reason, by, time, details: { via: 'cli' } });
    const drawdown =
      flags['reset-drawdown'] === true
        ? await resetDrawdownHalt(store, { reason, by, time, details: { via: 'cli' } })
        : undefined;
    const result = drawdown === undefined ? resumed : { ...resumed, stillBlocked: drawdown.stillBlocked };
    if (format === 'json') {
      const document = {
        command: 'resume',
        time,
        ...result,
        ...(drawdown === undefined ? {} : { drawdownReset: drawdown }),
      };
      io.stdout.write(`${JSON.stringify(withProvenance(provenance(clock), document))}\n`);
      return 0;
    }
    const lines = result.changed
      ? [
          `resumed (${where}): the kill switch set ${result.previous ? since(result.previous) : ''} is cleared`,
          `  by: ${by}`,
          `  reason: ${reason}`,
          `  at: ${time}`,
        ]
      : [`not halted (${where}); nothing changed`];
    if (drawdown !== undefined) {
      lines.push(
        drawdown.changed && drawdown.highWaterMark !== null
          ? `drawdown breaker reset (tripped on ${drawdown.previous?.day}): high-water mark ${drawdown.highWaterMark.before.toFixed(2)} -> ${drawdown.highWaterMark.after.toFixed(2)}`
          : 'the drawdown breaker was not holding; nothing to reset',
      );
    }
    if (result.stillBlocked !== null)
      lines.push(
        `note: new entries are still blocked: ${result.stillBlocked}${result.stillBlocked.startsWith('drawdown') ? ' (add --reset-drawdown to reset it)' : ''}`,
      );
    io.stdout.write(`${lines.join('\n')}\n`);
    return 0;
  } finally {
    close();
  }
}

/** The live gate's two records: the research decision of the strategy and the paper validation of each sleeve. */
async function gateRecords(store: StateStore, configFlag: string | undefined) {
  const path = configFlag ?? 'config/equity-strategy.yaml';
  if (!existsSync(path)) {
    if (configFlag !== undefined) throw new UsageError(`--config ${path}: no such file`);
    return null;
  }
  const text = readFileSync(path, 'utf8');
  const config = parseConfig(text, path);
  const hash = createHash('sha256').update(text).digest('hex');
  return {
    config: path,
    configHash: hash,
    research: (await store.getValidation(config.name)) ?? null,
    paper: await Promise.all(
      liveSleeveIds(config).map(async (sleeve) => ({
        sleeve,
        record: (await store.getPaperValidation(sleeve)) ?? null,
      })),
    ),
  };
}

function gateLines(gate: Awaited<ReturnType<typeof gateRecords>>): string[] {
  if (gate === null) return ['live gate: no config to read (give --config)'];
  const same = (hash: string) =>
    hash === gate.configHash ? 'this config' : `another config (${hash.slice(0, 12)})`;
  const r = gate.research;
  return [
    `live gate (${gate.config}, ${gate.configHash.slice(0, 12)}):`,
    r === null
      ? '  research: none recorded'
      : `  research: ${r.proceed ? 'PASS' : `FAIL (${r.failed.join(', ')})`} on ${same(r.configHash)}, job ${r.jobId.slice(0, 12)}, ${r.decidedAt}`,
    ...gate.paper.map(({ sleeve, record: p }) =>
      p === null
        ? `  paper ${sleeve}: none recorded`
        : `  paper ${sleeve}: ${p.decision.toUpperCase()}${p.failed.length > 0 ? ` (${p.failed.join(', ')})` : ''} on ${same(p.configHash)}, ${p.sessions} sessions ${p.from}..${p.to}, ${p.decidedAt}`,
    ),
  ];
}

/** `quantshift status`: the kill switch, the breakers and the recent operator actions. */
export async function statusCommand(
  argv: readonly string[],
  io: Io,
  env: Env = process.env,
): Promise<number> {
  const flags = parseFlags('status', argv, statusFlags);
  if (flags.help)
    return help(
      io,
      'quantshift status [flags]',
      'Shows the halt flag, the breakers and recent operator actions.',
      statusFlags,
    );
  const clock = startClock();
  const format = choiceFlag(flags, 'format', ['text', 'json'] as const) ?? 'text';
  const { store, where, close } = openStore(flags, env);
  try {
    const now = new Date();
    const day = newYorkTime(now.toISOString()).date;
    const [stored, audit] = await Promise.all([
      store.getRiskState(),
      store.listAudit(new Date(now.getTime() - 30 * 86_400_000).toISOString(), now.toISOString()),
    ]);
    const recent: AuditRecord[] = audit.slice(-10);
    const gate = await gateRecords(store, stringFlag(flags, 'config'));
    const state = stored?.state;
    const blocked = state === undefined ? null : entryBlock(state, day);
    if (format === 'json') {
      const document = {
        command: 'status',
        state: state ?? null,
        version: stored?.version ?? 0,
        entriesBlocked: blocked,
        audit: recent,
        gate,
      };
      io.stdout.write(`${JSON.stringify(withProvenance(provenance(clock), document))}\n`);
      return 0;
    }
    const lines = [
      `${where}`,
      state === undefined
        ? 'no risk state stored yet (no step has run): nothing is halted'
        : [
            `kill switch: ${state.killSwitch ? `ON ${since(state.killSwitch)}` : 'off'}`,
            `drawdown breaker: ${state.drawdownHalt ? `tripped on ${state.drawdownHalt.day}, awaiting reset` : 'off'}`,
            `daily loss breaker: ${state.dailyLossTrippedOn ? `tripped on ${state.dailyLossTrippedOn}` : 'off'}`,
            `new entries today (${day}): ${blocked === null ? 'allowed' : `blocked: ${blocked}`}`,
          ].join('\n'),
      ...gateLines(gate),
      'recent operator actions (30 days):',
      ...(recent.length === 0
        ? ['  none']
        : recent.map((a) => `  ${a.time} ${a.action} by ${a.by}: ${a.reason}`)),
    ];
    io.stdout.write(`${lines.join('\n')}\n`);
    return 0;
  } finally {
    close();
  }
}
