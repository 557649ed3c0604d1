import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SNSClient } from '@aws-sdk/client-sns';
import * as z from 'zod';
import { SnsNotifier } from '../adapters/aws/sns-notifier.js';
import { DynamoStateStore, stateStoreDocumentClient } from '../adapters/dynamodb/state-store.js';
import { sha256Hex } from '../core/canonical-json.js';
import { liveSleeveIds, parseConfig, type StrategyConfig } from '../core/config/schema.js';
import { sleeveHash } from '../core/config/sleeve-hash.js';
import { UsageError } from '../core/errors.js';
import { newYorkTime } from '../core/live/orders.js';
import { utcSessionDate } from '../core/market/crypto-calendar.js';
import type { Notification } from '../core/ports/notifier.js';
import type { AuditRecord, SessionRecord, StateStore, ValidationRecord } from '../core/ports/state-store.js';
import { entryBlock, type Halt, type RiskState } from '../core/risk/index.js';
import { dryRunValidationRefusal, sleeveGateRefusal } from '../live/entry-gate.js';
import {
  haltSleeve,
  haltTrading,
  operatorAlert,
  resetDrawdownHalt,
  resumeSleeve,
  resumeTrading,
  type SleeveScope,
} from '../live/kill-switch.js';
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

const topicFlag: FlagSpecs = {
  topic: {
    type: 'string',
    value: '<arn>',
    help: "also alert the stage's alert topic (the AlertTopicArn output; default: env TOPIC_ARN; none: no alert)",
  },
};

const sleeveFlags: FlagSpecs = {
  sleeve: {
    type: 'string',
    value: '<id>',
    help: "one sleeve only (a sleeves config's id; a single-strategy config's name): the others keep trading",
  },
  config: {
    type: 'string',
    value: '<yaml>',
    help: "the stage's strategy config, which names the sleeves (default: env QUANTSHIFT_CONFIG, else config/equity-strategy.yaml)",
  },
};

const haltFlags: FlagSpecs = {
  reason: { type: 'string', value: '<text>', help: 'why (recorded; default "manual halt")' },
  ...sleeveFlags,
  ...topicFlag,
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
  ...sleeveFlags,
  ...topicFlag,
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
  config: sleeveFlags.config as FlagSpecs[string],
  ...tableFlags,
  help: { type: 'boolean', help: 'show this help' },
};

const NOTES = [
  'The flag lives in the state table (RISK/STATE). It blocks new entries only: exits, protective',
  'stops and reconciliation go on. Every step reads it at its next invocation. See docs/live.md.',
  'With --sleeve, only that sleeve is halted or resumed (sleeveHalts in the same item).',
];

/** The alert topic (`--topic`, else env TOPIC_ARN), checked before anything is written; none: no alert. */
function alertTopic(flags: ParsedFlags, env: Env): string | undefined {
  const topic = stringFlag(flags, 'topic') ?? env.TOPIC_ARN;
  if (topic === undefined || topic === '') return undefined;
  if (!/^arn:aws[\w-]*:sns:/.test(topic)) throw new UsageError(`--topic ${topic}: not an SNS topic ARN`);
  return topic;
}

/**
 * Publishes an operator action's alert to the alert topic, when there is one and something
 * changed; the topic, or null. Region and credentials come from the AWS environment. The change is
 * already recorded: a failed publish is a warning on stderr, not a failed command.
 */
async function alert(
  topic: string | undefined,
  notification: Notification | null,
  io: Io,
): Promise<string | null> {
  if (topic === undefined || notification === null) return null;
  const client = new SNSClient({});
  try {
    await new SnsNotifier(client, topic).publish(notification);
    return topic;
  } catch (error) {
    io.stderr.write(
      `warning: the change is recorded, but its alert to ${topic} was not sent: ${(error as Error).message}\n`,
    );
    return null;
  } finally {
    client.destroy();
  }
}

const DEFAULT_CONFIG = 'config/equity-strategy.yaml';

/** The stage's config (`--config`, else env QUANTSHIFT_CONFIG, else the default config). */
function loadConfig(flags: ParsedFlags, env: Env): DeployedConfig {
  const path = stringFlag(flags, 'config') ?? env.QUANTSHIFT_CONFIG ?? DEFAULT_CONFIG;
  if (!existsSync(path)) throw new UsageError(`--config ${path}: no such file`);
  const text = readFileSync(path, 'utf8');
  return { path, config: parseConfig(text, path), configHash: sha256Hex(text) };
}

interface DeployedConfig {
  readonly path: string;
  readonly config: StrategyConfig;
  /** SHA-256 of the file's text, as the live functions compute it. */
  readonly configHash: string;
}

/** One sleeve's halt and live validation gate, as `status` shows them. */
interface SleeveStatus {
  readonly id: string;
  readonly halt: Halt | null;
  /** Why the live stage's gate refuses the sleeve's entries, or null when it is open (paper has none). */
  readonly gate: string | null;
}

async function sleeveStatus(
  store: StateStore,
  state: RiskState | undefined,
  deployed: DeployedConfig | undefined,
): Promise<SleeveStatus[]> {
  if (deployed === undefined) {
    // No config to name the sleeves: the halted ones the state holds, their gates unknown.
    return Object.entries(state?.sleeveHalts ?? {}).map(([id, halt]) => ({
      id,
      halt,
      gate: 'unknown (give --config <file>)',
    }));
  }
  const { config, configHash } = deployed;
  return Promise.all(
    liveSleeveIds(config).map(async (id) => ({
      id,
      halt: state?.sleeveHalts?.[id] ?? null,
      // The live gate as an entry meets it: the research record and the paper (or dry-run) validation.
      gate: sleeveGateRefusal(
        'live',
        id,
        config,
        { configHash, sleeveHash: sleeveHash(config, id) },
        ...(await Promise.all([store.getValidation(id), store.getPaperValidation(id)])),
      ),
    })),
  );
}

/** The `--sleeve` flag checked against the config's sleeves (a usage error names the known ids). */
function sleeveScope(flags: ParsedFlags, env: Env, command: string): SleeveScope | undefined {
  const sleeve = stringFlag(flags, 'sleeve');
  if (sleeve === undefined) return undefined;
  const { config } = loadConfig(flags, env);
  const known = liveSleeveIds(config);
  if (!known.includes(sleeve))
    throw new UsageError(
      `${command} --sleeve ${sleeve}: no such sleeve in ${config.name}; its sleeves are ${known.join(', ')}`,
    );
  return { sleeve, unlabelled: config.sleeves === undefined ? config.name : undefined };
}

/** The OS user, or `unknown` where the platform cannot say. */
export function osUser(env: Env): string {
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

export function actionTime(flags: ParsedFlags, local: boolean): string {
  const time = stringFlag(flags, 'time');
  if (time === undefined) return new Date().toISOString();
  if (!local)
    throw new UsageError('--time is for local rehearsals only (with a local --endpoint): a real halt is now');
  const parsed = z.iso.datetime({ offset: true }).safeParse(time);
  if (!parsed.success) throw new UsageError(`--time ${time}: not an ISO time`);
  return time;
}

/** Whether a stored session record is the crypto bot's: the 24/7 UTC session (00:00 UTC to 24:00 UTC). */
const isUtcSession = (s: SessionRecord) =>
  s.openAt !== null && Date.parse(s.openAt) === Date.parse(`${s.date}T00:00:00Z`);

/**
 * The session date of an operator action at `time` on the bot whose state table this is: the UTC
 * day for the crypto bot, New York's date for the equity bot. The table's own session records say
 * which bot it is (the crypto bot's market-open check writes 00:00-24:00 UTC sessions, the equity
 * bot's open at 09:30 New York; the latest of the action's UTC day and the day before); a table with
 * neither takes the named config's (`--config` or QUANTSHIFT_CONFIG; one that cannot be read counts
 * as equity, so a halt never fails on it).
 */
export async function actionDay(
  flags: ParsedFlags,
  env: Env,
  store: Pick<StateStore, 'getSession'>,
  time: string,
): Promise<string> {
  const instant = Date.parse(time);
  const utc = utcSessionDate(instant);
  // The table's own session records first: they are the bot's whose table this is, whatever
  // config the operator's shell names.
  for (const date of [utc, utcSessionDate(instant - 86_400_000)]) {
    const session = await store.getSession(date);
    if (session !== undefined) return isUtcSession(session) ? utc : newYorkTime(time).date;
  }
  const named = stringFlag(flags, 'config') ?? env.QUANTSHIFT_CONFIG;
  let crypto = false;
  if (named !== undefined) {
    // A halt must never fail on a config it does not need: an unreadable one leaves New York's date.
    try {
      crypto = loadConfig(flags, env).config.assetClass === 'crypto';
    } catch {
      crypto = false;
    }
  }
  return crypto ? utc : newYorkTime(time).date;
}

const since = (k: Halt) => `since ${new Date(k.since).toISOString()} by ${k.by} (${k.reason})`;

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
      'quantshift halt [--sleeve <id>] [--reason <text>] [--by <name>] [flags]',
      'Halts new entries (of one sleeve with --sleeve).',
      haltFlags,
    );
  const clock = startClock();
  const format = choiceFlag(flags, 'format', ['text', 'json'] as const) ?? 'text';
  const reason = stringFlag(flags, 'reason') ?? 'manual halt';
  if (reason.trim() === '') throw new UsageError('halt: --reason must not be empty');
  const by = stringFlag(flags, 'by') ?? osUser(env);
  const scope = sleeveScope(flags, env, 'halt');
  const topic = alertTopic(flags, env);
  const { store, where, local, close } = openStore(flags, env);
  try {
    const time = actionTime(flags, local);
    const action = { reason, by, time, details: { via: 'cli' } };
    const day = await actionDay(flags, env, store, time);
    const result =
      scope === undefined
        ? await haltTrading(store, { ...action, day })
        : await haltSleeve(store, scope, { ...action, day });
    const alerted = await alert(topic, operatorAlert('halt', action, result, scope?.sleeve), io);
    if (format === 'json') {
      const document = {
        command: 'halt',
        time,
        ...(scope === undefined ? {} : { sleeve: scope.sleeve }),
        ...result,
        ...(alerted === null ? {} : { alerted }),
      };
      io.stdout.write(`${JSON.stringify(withProvenance(provenance(clock), document))}\n`);
      return 0;
    }
    const k = result.previous;
    const what = scope === undefined ? '' : `sleeve ${scope.sleeve} `;
    io.stdout.write(
      result.changed
        ? [
            scope === undefined
              ? `halted (${where}): new entries are blocked from the next run of every step; exits, stops and reconciliation go on`
              : `sleeve ${scope.sleeve} halted (${where}): its new entries are blocked from the next run of every step; the other sleeves keep trading; its exits and stops go on`,
            `  by: ${by}`,
            `  reason: ${reason}`,
            `  at: ${time}`,
            ...(result.entriesSkipped.length > 0
              ? [`  entry intents not sent: ${result.entriesSkipped.join(', ')}`]
              : []),
            ...(alerted === null ? [] : [`  alerted: ${alerted}`]),
            'Open entry orders at the broker are cancelled by the next risk check (the kill-switch function cancels them at once).',
            '',
          ].join('\n')
        : `${what}already halted (${where}) ${k ? since(k) : ''}; nothing changed\n`,
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
      'quantshift resume [--sleeve <id>] --reason <text> [--by <name>] [flags]',
      'Clears the kill switch: new entries are allowed again (unless a breaker still holds).',
      resumeFlags,
    );
  const clock = startClock();
  const format = choiceFlag(flags, 'format', ['text', 'json'] as const) ?? 'text';
  const reason = stringFlag(flags, 'reason');
  if (reason === undefined || reason.trim() === '')
    throw new UsageError('resume: --reason <text> is required (say why trading may go on)');
  const by = stringFlag(flags, 'by') ?? osUser(env);
  const scope = sleeveScope(flags, env, 'resume');
  const topic = alertTopic(flags, env);
  if (scope !== undefined && flags['reset-drawdown'] === true)
    throw new UsageError('resume: --reset-drawdown resets the account’s breaker: give it without --sleeve');
  const { store, where, local, close } = openStore(flags, env);
  try {
    const time = actionTime(flags, local);
    const action = { reason, by, time, details: { via: 'cli' } };
    const day = await actionDay(flags, env, store, time);
    const resumed =
      scope === undefined
        ? await resumeTrading(store, { ...action, day })
        : await resumeSleeve(store, scope, { ...action, day });
    const drawdown =
      flags['reset-drawdown'] === true
        ? await resetDrawdownHalt(store, { reason, by, time, day, details: { via: 'cli' } })
        : undefined;
    const result = drawdown === undefined ? resumed : { ...resumed, stillBlocked: drawdown.stillBlocked };
    const alerted = await alert(topic, operatorAlert('resume', action, result, scope?.sleeve), io);
    if (format === 'json') {
      const document = {
        command: 'resume',
        time,
        ...(scope === undefined ? {} : { sleeve: scope.sleeve }),
        ...result,
        ...(alerted === null ? {} : { alerted }),
        ...(drawdown === undefined ? {} : { drawdownReset: drawdown }),
      };
      io.stdout.write(`${JSON.stringify(withProvenance(provenance(clock), document))}\n`);
      return 0;
    }
    const what = scope === undefined ? 'the kill switch' : `the halt of sleeve ${scope.sleeve}`;
    const lines = result.changed
      ? [
          `resumed (${where}): ${what} set ${result.previous ? since(result.previous) : ''} is cleared`,
          `  by: ${by}`,
          `  reason: ${reason}`,
          `  at: ${time}`,
          ...(alerted === null ? [] : [`  alerted: ${alerted}`]),
        ]
      : [`${scope === undefined ? '' : `sleeve ${scope.sleeve} `}not halted (${where}); nothing changed`];
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
    // The crypto bot's paper stage is a dry run: its record is the dry run's validation (docs/crypto.md).
    dryRun: config.assetClass === 'crypto' ? config.validation : null,
    // A single-strategy config: the strategy's research record (its one sleeve is its name).
    research: config.sleeves === undefined ? ((await store.getValidation(config.name)) ?? null) : null,
    paper: await Promise.all(
      liveSleeveIds(config).map(async (sleeve) => ({
        sleeve,
        hash: sleeveHash(config, sleeve),
        record: (await store.getPaperValidation(sleeve)) ?? null,
        // A sleeves config: each sleeve's own research record (`VALIDATION/<sleeve>`), as the gate reads it.
        ...(config.sleeves === undefined ? {} : { research: (await store.getValidation(sleeve)) ?? null }),
      })),
    ),
  };
}

function gateLines(gate: Awaited<ReturnType<typeof gateRecords>>): string[] {
  if (gate === null) return ['live gate: no config to read (give --config)'];
  const same = (hash: string) =>
    hash === gate.configHash ? 'this config' : `another config (${hash.slice(0, 12)})`;
  const researchLine = (label: string, r: ValidationRecord | null, hash?: string) => {
    if (r === null) return `  ${label}: none recorded`;
    // A record made on a sleeve carries the sleeve's hash; one made before sleeves, the file's.
    const on =
      r.sleeveHash !== undefined && hash !== undefined
        ? r.sleeveHash === hash
          ? 'this sleeve'
          : `another version (${r.sleeveHash.slice(0, 12)})`
        : same(r.configHash);
    return `  ${label}: ${r.proceed ? 'PASS' : `FAIL (${r.failed.join(', ')})`} on ${on}, job ${r.jobId.slice(0, 12)}, ${r.decidedAt}`;
  };
  return [
    `live gate (${gate.config}, ${gate.configHash.slice(0, 12)}):`,
    // A sleeves config: one research line per sleeve (each sleeve's gate reads its own record).
    ...(gate.paper.some((p) => p.research !== undefined)
      ? gate.paper.map((p) => researchLine(`research ${p.sleeve}`, p.research ?? null, p.hash))
      : [researchLine('research', gate.research)]),
    // A paper record is made on the sleeve's own hash (`paperGateHash`: `sleeveHash`).
    ...gate.paper.map(({ sleeve, hash, record: p }) => {
      const kind = gate.dryRun === null ? 'paper' : 'dry run';
      if (p === null) return `  ${kind} ${sleeve}: none recorded`;
      const line = `  ${kind} ${sleeve}: ${p.decision.toUpperCase()}${p.failed.length > 0 ? ` (${p.failed.join(', ')})` : ''} on ${p.configHash === hash ? 'this sleeve' : `another version (${p.configHash.slice(0, 12)})`}, ${p.sessions} ${gate.dryRun === null ? 'sessions' : 'UTC days'} ${p.from}..${p.to}, ${p.decidedAt}`;
      // The crypto gate checks the record's figures against the config's criteria too.
      const closed =
        gate.dryRun === null || p.decision !== 'go' || p.configHash !== hash
          ? null
          : dryRunValidationRefusal('live', sleeve, hash, p, gate.dryRun);
      return closed === null ? line : `${line}; gate closed: ${closed}`;
    }),
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
      'Shows the halt flag, the breakers, each sleeve’s halt and live gate, and recent operator actions.',
      statusFlags,
    );
  const clock = startClock();
  const format = choiceFlag(flags, 'format', ['text', 'json'] as const) ?? 'text';
  // The sleeves come from the stage's config; without one (no --config, no QUANTSHIFT_CONFIG and
  // no default file here), status still shows the account and the halted sleeves.
  const named = stringFlag(flags, 'config') ?? env.QUANTSHIFT_CONFIG;
  const deployed = named !== undefined || existsSync(DEFAULT_CONFIG) ? loadConfig(flags, env) : undefined;
  const { store, where, close } = openStore(flags, env);
  try {
    const now = new Date();
    const day = await actionDay(flags, env, store, now.toISOString());
    const [stored, audit] = await Promise.all([
      store.getRiskState(),
      store.listAudit(new Date(now.getTime() - 30 * 86_400_000).toISOString(), now.toISOString()),
    ]);
    const recent: AuditRecord[] = audit.slice(-10);
    const gate = await gateRecords(store, stringFlag(flags, 'config'));
    const state = stored?.state;
    const blocked = state === undefined ? null : entryBlock(state, day);
    const sleeves = await sleeveStatus(store, state, deployed);
    if (format === 'json') {
      const document = {
        command: 'status',
        state: state ?? null,
        version: stored?.version ?? 0,
        entriesBlocked: blocked,
        sleeves,
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
      deployed === undefined
        ? 'sleeves halted (no config here: give --config <file> for every sleeve and its live gate):'
        : `sleeves of ${deployed.config.name} (${deployed.path}):`,
      ...(deployed === undefined && sleeves.length === 0 ? ['  none'] : []),
      ...sleeves.map(
        (sl) =>
          `  ${sl.id}: ${sl.halt === null ? 'not halted' : `HALTED ${since(sl.halt)}`}; live gate: ${sl.gate ?? 'open'}`,
      ),
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
