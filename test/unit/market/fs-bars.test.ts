import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadBarsCsv, loadDataDir } from '../../../shared/adapters/fs/bars.js';
import { DataFileNotFoundError, InvalidParameterError } from '../../../shared/core/errors.js';

const dataDir = fileURLToPath(new URL('../../../data/', import.meta.url));

describe('loadDataDir', () => {
  it('loads <dir>/<SYMBOL>.csv for each symbol, in order', () => {
    const all = loadDataDir(dataDir, ['SPY', 'qqq', 'AAPL', 'MSFT']);
    expect(all.map((s) => s.symbol)).toEqual(['SPY', 'QQQ', 'AAPL', 'MSFT']);
    for (const s of all) expect(s.time.length).toBe(1255);
  });

  it('names the missing file', () => {
    let caught: unknown;
    try {
      loadDataDir(dataDir, ['SPY', 'NOPE']);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(DataFileNotFoundError);
    const file = join(dataDir, 'NOPE.csv');
    expect((caught as DataFileNotFoundError).file).toBe(file);
    expect((caught as Error).message).toBe(`${file}: data file not found`);
  });

  it('refuses symbols that are not plain file names', () => {
    for (const bad of ['', ' ', '../SPY', 'a/b', 'a\\b', '.hidden']) {
      expect(() => loadDataDir(dataDir, [bad])).toThrow(InvalidParameterError);
    }
  });
});

describe('loadBarsCsv', () => {
  it('names the path exactly as given in errors', () => {
    expect(() => loadBarsCsv('no/such/dir/X.csv')).toThrow(new DataFileNotFoundError('no/such/dir/X.csv'));
    expect(() => loadBarsCsv('test/fixtures/data/bidask.csv')).toThrow(
      /^test\/fixtures\/data\/bidask\.csv: not OHLCV bar data: /,
    );
  });
});

describe('loadDataDir with adjusted', () => {
  it('passes adjusted to every file (a no-op without an Adj Close column)', () => {
    const [spy] = loadDataDir(dataDir, ['SPY'], { adjusted: true });
    expect(spy?.close[0]).toBe(353.4981689453125);
  });
});
