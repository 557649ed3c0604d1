import { parseArgs } from 'node:util';
import { UsageError } from '../core/errors.js';

/** One command-line flag: how it parses and how `--help` documents it. */
export interface FlagSpec {
  readonly type: 'string' | 'boolean';
  readonly multiple?: boolean;
  /** Shown after the flag in help, e.g. `<csv|dir>`. */
  readonly value?: string;
  readonly help: string;
  /** A boolean flag that also takes the `--no-<name>` form; help shows both. */
  readonly negatable?: string;
}

export type FlagSpecs = Readonly<Record<string, FlagSpec>>;

export type ParsedFlags = Record<string, string | boolean | string[] | undefined>;

/** Parses argv against the specs; unknown flags and missing values are `UsageError`s. */
export function parseFlags(command: string, argv: readonly string[], specs: FlagSpecs): ParsedFlags {
  const options = Object.fromEntries(
    Object.entries(specs).map(([name, spec]) => [
      name,
      { type: spec.type, multiple: spec.multiple ?? false },
    ]),
  );
  try {
    const { values, positionals } = parseArgs({
      args: [...argv],
      options,
      strict: true,
      allowNegative: true,
      allowPositionals: true,
    });
    if (positionals.length > 0) {
      throw new UsageError(
        `${command}: unexpected argument "${positionals[0]}" (see quantshift ${command} --help)`,
      );
    }
    return values as ParsedFlags;
  } catch (error) {
    if (error instanceof UsageError) throw error;
    const message = (error as Error).message.split('\n')[0] ?? String(error);
    throw new UsageError(`${command}: ${message} (see quantshift ${command} --help)`, { cause: error });
  }
}

/** Renders `--help` for a command from its flag specs. */
export function renderHelp(
  usage: string,
  summary: string,
  specs: FlagSpecs,
  notes: readonly string[] = [],
): string {
  const rows = Object.entries(specs).map(([name, spec]) => {
    const left = `  --${name}${spec.value ? ` ${spec.value}` : ''}`;
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

/** A string flag's value, if given. */
export function stringFlag(flags: ParsedFlags, name: string): string | undefined {
  const value = flags[name];
  return typeof value === 'string' ? value : undefined;
}

/** A numeric flag: finite, and within the bounds given; the error names the flag. */
export function numberFlag(
  flags: ParsedFlags,
  name: string,
  bounds: { min?: number; max?: number; integer?: boolean } = {},
): number | undefined {
  const text = stringFlag(flags, name);
  if (text === undefined) return undefined;
  const value = Number(text);
  const { min, max, integer } = bounds;
  const ok =
    text.trim() !== '' &&
    Number.isFinite(value) &&
    (min === undefined || value >= min) &&
    (max === undefined || value <= max) &&
    (!integer || Number.isInteger(value));
  if (!ok) {
    const range = [min === undefined ? '' : `>= ${min}`, max === undefined ? '' : `<= ${max}`]
      .filter(Boolean)
      .join(' and ');
    throw new UsageError(
      `--${name} ${text}: expected ${integer ? 'an integer' : 'a number'}${range ? ` ${range}` : ''}`,
    );
  }
  return value;
}

/** A flag restricted to a set of words. */
export function choiceFlag<T extends string>(
  flags: ParsedFlags,
  name: string,
  choices: readonly T[],
): T | undefined {
  const text = stringFlag(flags, name);
  if (text === undefined) return undefined;
  if (!(choices as readonly string[]).includes(text)) {
    throw new UsageError(`--${name} ${text}: expected one of ${choices.join(', ')}`);
  }
  return text as T;
}

/** A `YYYY-MM-DD` flag as a UTC midnight timestamp. */
export function dateFlag(flags: ParsedFlags, name: string): number | undefined {
  const text = stringFlag(flags, name);
  if (text === undefined) return undefined;
  return parseIsoDate(text, `--${name}`);
}

/** Parses `YYYY-MM-DD` strictly (no rollover of 2021-02-30). */
export function parseIsoDate(text: string, what: string): number {
  const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text);
  const time = match ? Date.UTC(Number(match[1]), Number(match[2]) - 1, Number(match[3])) : Number.NaN;
  if (!match || Number.isNaN(time) || new Date(time).toISOString().slice(0, 10) !== text) {
    throw new UsageError(`${what} ${text}: expected a date as YYYY-MM-DD`);
  }
  return time;
}
