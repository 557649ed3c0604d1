/** Reads bar files from disk (synchronously: the files are small) and parses them with the core. */
import { readFileSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import { DataFileNotFoundError, InvalidParameterError } from '../../core/errors.js';
import { parseBarsCsv } from '../../core/market/csv.js';
import type { BarSeries } from '../../core/market/types.js';

export interface LoadBarsOptions {
  /** The series' symbol; defaults to the file name without extension, upper-cased. */
  readonly symbol?: string;
  /** Scale OHLC by `Adj Close / Close` when the file has an `Adj Close` column. */
  readonly adjusted?: boolean;
}

/**
 * Loads one bar file. Errors name `path` exactly as given: {@link DataFileNotFoundError} when it
 * does not exist, `NotBarDataError` / `BadBarRowError` from the parser otherwise.
 */
export function loadBarsCsv(path: string, options: LoadBarsOptions = {}): BarSeries {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new DataFileNotFoundError(path, { cause: error });
    throw error;
  }
  const symbol = options.symbol ?? basename(path, extname(path)).toUpperCase();
  return parseBarsCsv(text, { file: path, symbol }, { adjusted: options.adjusted === true });
}

/**
 * Loads `<dir>/<SYMBOL>.csv` for each symbol (upper-cased), in the order given. Throws
 * {@link DataFileNotFoundError} naming the first missing file, and {@link InvalidParameterError}
 * for a symbol that is not a plain file name (empty, a path separator, a leading dot).
 * `adjusted` is passed to {@link loadBarsCsv} for every file.
 */
export function loadDataDir(
  dir: string,
  symbols: readonly string[],
  options: { readonly adjusted?: boolean } = {},
): BarSeries[] {
  return symbols.map((raw) => {
    const symbol = raw.trim().toUpperCase();
    if (symbol === '' || symbol.startsWith('.') || symbol.includes('/') || symbol.includes('\\')) {
      throw new InvalidParameterError(`invalid symbol "${raw}": expected a ticker such as SPY`);
    }
    return loadBarsCsv(join(dir, `${symbol}.csv`), { symbol, adjusted: options.adjusted === true });
  });
}
