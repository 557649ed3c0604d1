import { UsageError } from '../core/errors.js';

/**
 * Option values already parsed from a command line (`shared/cli/args.ts` parses argv into them).
 * The job builders read their overrides from it; the pipeline passes `{}` (the config as it is).
 */
export type ParsedFlags = Record<string, string | boolean | string[] | undefined>;

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
