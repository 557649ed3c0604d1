import { parseArgs } from 'node:util';
import { UsageError } from '../core/errors.js';
import type { ParsedFlags } from '../research/flags.js';

// The typed reads of parsed values live with the job builders (no CLI code in the functions' bundles).
export {
  choiceFlag,
  dateFlag,
  numberFlag,
  type ParsedFlags,
  parseIsoDate,
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
}

export type FlagSpecs = Readonly<Record<string, FlagSpec>>;

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
