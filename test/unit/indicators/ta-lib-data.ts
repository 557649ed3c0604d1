import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The 252-bar series of TA-Lib's regression tests (TA-Lib/ta-lib: src/tools/ta_regtest/test_data.c). */
export interface TaLibSeries {
  readonly open: Float64Array;
  readonly high: Float64Array;
  readonly low: Float64Array;
  readonly close: Float64Array;
}

const file = fileURLToPath(new URL('../../fixtures/data/TA-Lib_test_data_252.csv', import.meta.url));

/** Reads `test/fixtures/data/TA-Lib_test_data_252.csv` (columns Index,Open,High,Low,Close,Volume). */
export function loadTaLibSeries(): TaLibSeries {
  const rows = readFileSync(file, 'utf8').trim().split('\n').slice(1);
  const open = new Float64Array(rows.length);
  const high = new Float64Array(rows.length);
  const low = new Float64Array(rows.length);
  const close = new Float64Array(rows.length);
  rows.forEach((row, i) => {
    const [index, o, h, l, c] = row.split(',').map(Number);
    if (index !== i) throw new Error(`${file}: row ${i + 2} has index ${String(index)}`);
    open[i] = o as number;
    high[i] = h as number;
    low[i] = l as number;
    close[i] = c as number;
  });
  return { open, high, low, close };
}

/** A deterministic pseudo-random generator (mulberry32) so oracle tests are reproducible. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A random-walk OHLC series (prices around 100) for oracle and property tests. */
export function randomBars(length: number, seed: number): TaLibSeries {
  const random = seededRandom(seed);
  const open = new Float64Array(length);
  const high = new Float64Array(length);
  const low = new Float64Array(length);
  const close = new Float64Array(length);
  let price = 100;
  for (let i = 0; i < length; i++) {
    const o = price;
    const c = o * (1 + (random() - 0.5) * 0.04);
    open[i] = o;
    close[i] = c;
    high[i] = Math.max(o, c) * (1 + random() * 0.01);
    low[i] = Math.min(o, c) * (1 - random() * 0.01);
    price = c;
  }
  return { open, high, low, close };
}
