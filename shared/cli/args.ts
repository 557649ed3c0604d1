import { parseArgs } from 'node:util';
import { UsageError } from '../core/errors.js';
import type { ParsedFlags } from '../research/flags.js';

// The typed reads of parsed values live with the job builders (no CLI code in the functions' bundles).
export {
  choiceFlag,
  dateFlag,
  numberFlag,
  type ParsedFlags,
  stringFlag,
} from '../research/flags.js';

/** One command-line flag: how it parses and how `--help` documents it. */
export interface FlagSpec {
  readonly type: 'string' | 'boolean';
  readonly multiple?: boolean;
  /** Shown after the flag in help, e.g. `<csv|dir>`. */
  readonly value?: string;
  readonly help: string;
  /** A boolean flag that also takes the `--no-<name>` form; help shows both. */
  readonly negatable?: string;
  /** The only values a string flag takes; anything else is a usage error (exit 2). Help lists them. */
  readonly choices?: readonly string[];
}

export type FlagSpecs = Readonly<Record<string, FlagSpec>>;

/** A token that is a negative number (`-5`, `-0.5`, `-1e3`), not a flag. */
const NEGATIVE_NUMBER = /^-(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i;

/**
 * Joins `--flag -5` into `--flag=-5` for string flags, so that a negative number parses as the
 * flag's value (and then meets the flag's range check) instead of being read as a flag.
 */
function joinNegativeValues(argv: readonly string[], specs: FlagSpecs): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const token = argv[i] as string;
    const next = argv[i + 1];
    const spec = token.startsWith('--') ? specs[token.slice(2)] : undefined;
    if (spec?.type === 'string' && next !== undefined && NEGATIVE_NUMBER.test(next)) {
      out.push(`${token}=${next}`);
      i++;
    } else out.push(token);
  }
  return out;
}

/** The number of single-character edits between two words (for "did you mean"). */
function editDistance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) {
      next[j] = Math.min(
        (row[j] as number) + 1,
        (next[j - 1] as number) + 1,
        (row[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    row = next;
  }
  return row[b.length] as number;
}

/** The usage error for a parse failure of node's `parseArgs`, as one whole sentence. */
function parseFailure(command: string, error: unknown, specs: FlagSpecs): UsageError {
  const see = `(see quantshift ${command} --help)`;
  const e = error as { code?: string; message?: string };
  const quoted = /'(-{1,2}[^' ]+)/.exec(e.message ?? '')?.[1];
  if (e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && quoted !== undefined) {
    const name = quoted.replace(/^-+/, '').split('=')[0] as string;
    const close = Object.keys(specs).filter((known) => editDistance(name, known) <= 2);
    const hint = close.length > 0 ? `; did you mean ${close.map((c) => `--${c}`).join(' or ')}?` : '';
    return new UsageError(`${command}: unknown flag ${quoted}${hint} ${see}`, { cause: error });
  }
  if (e.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' && quoted !== undefined) {
    const flag = quoted.split(' ')[0] as string;
    const detail = /ambiguous/.test(e.message ?? '')
      ? `a value starting with "-" must be joined: ${flag}=-...`
      : (specs[flag.replace(/^-+/, '')]?.type ?? 'string') === 'boolean'
        ? 'takes no value'
        : 'needs a value';
    return new UsageError(`${command}: ${flag} ${detail} ${see}`, { cause: error });
  }
  const message = (e.message ?? String(error)).split('\n')[0];
  return new UsageError(`${command}: ${message} ${see}`, { cause: error });
}

/**
 * Parses argv against the specs. Unknown flags, missing values, stray arguments and a value
 * outside a flag's `choices` are `UsageError`s (exit 2). A negative number after a string flag
 * is its value (`--slippage-bps -5`), so the flag's own range check names the problem.
 */
export function parseFlags(command: string, argv: readonly string[], specs: FlagSpecs): ParsedFlags {
  const options = Object.fromEntries(
    Object.entries(specs).map(([name, spec]) => [
      name,
      { type: spec.type, multiple: spec.multiple ?? false },
    ]),
  );
  let parsed: { values: Record<string, unknown>; positionals: string[] };
  try {
    parsed = parseArgs({
      args: joinNegativeValues(argv, specs),
      options,
      strict: true,
      allowNegative: true,
      allowPositionals: true,
    });
  } catch (error) {
    throw parseFailure(command, error, specs);
  }
  if (parsed.positionals.length > 0) {
    throw new UsageError(
      `${command}: unexpected argument "${parsed.positionals[0]}" (see quantshift ${command} --help)`,
    );
  }
  const values = parsed.values as ParsedFlags;
  // `allowNegative` reads `--no-record` as `record: false`: a flag declared as `no-<name>` is itself.
  for (const [name, spec] of Object.entries(specs)) {
    const base = name.slice(3);
    if (spec.type !== 'boolean' || !name.startsWith('no-') || specs[base] !== undefined) continue;
    if (values[base] === false) {
      delete values[base];
      values[name] = true;
    }
  }
  for (const [name, spec] of Object.entries(specs)) {
    const value = values[name];
    if (spec.choices === undefined || value === undefined) continue;
    for (const v of Array.isArray(value) ? value : [value]) {
      if (typeof v === 'string' && !spec.choices.includes(v))
        throw new UsageError(`--${name} ${v}: expected one of ${spec.choices.join(', ')}`);
    }
  }
  return values;
}

/** A `--help` request anywhere in argv (for commands with a subcommand, checked before it). */
export function wantsHelp(argv: readonly string[]): boolean {
  return argv.includes('--help') || argv.includes('-h');
}

/** Renders `--help` for a command from its flag specs. */
export function renderHelp(
  usage: string,
  summary: string,
  specs: FlagSpecs,
  notes: readonly string[] = [],
): string {
  const rows = Object.entries(specs).map(([name, spec]) => {
    const value = spec.value ?? (spec.choices ? `<${spec.choices.join('|')}>` : undefined);
    const left = `  --${name}${value ? ` ${value}` : ''}`;
    return [left, spec.negatable ? `${spec.help}; --no-${name}: ${spec.negatable}` : spec.help] as const;
  });
  const width = Math.max(...rows.map(([left]) => left.length)) + 2;
  const lines = rows.map(([left, help]) => `${left.padEnd(width)}${help}`);
  return [
    `Usage: ${usage}`,
    '',
    summary,
    '',
    'Flags:',
    ...lines,
    ...(notes.length ? ['', ...notes] : []),
    '',
  ].join('\n');
}
