import { atr } from '../indicators/index.js';
import type { BarSeries } from '../market/types.js';
import type { Intent, PositionSide } from './types.js';

/** The ATR arrays' cache keys by period (`atrKey`), built once each. */
const ATR_KEYS: string[] = [];
/** Periods under this have their key kept in `ATR_KEYS`. */
const KEPT_ATR_KEYS = 1024;

/** The cache key of the ATR of `period`: the same string each time for a small integer period. */
function atrKey(period: number): string {
  if (!(Number.isInteger(period) && period >= 0 && period < KEPT_ATR_KEYS)) return `atr:${period}`;
  let key = ATR_KEYS[period];
  if (key === undefined) {
    key = `atr:${period}`;
    ATR_KEYS[period] = key;
  }
  return key;
}

/**
 * Indicator arrays of one bar series, computed once per distinct parameter value and shared by
 * every parameter combination of a sweep (the fast engine's per-symbol data). Each array comes from
 * the same streaming indicator the strategy instance feeds bar by bar, or from its batch function
 * (`atr`, `bollingerMeanDeviation`: one loop, the indicator's arithmetic), so its values are the
 * instance's, bit for bit. When the arrays held pass a byte budget the cache is emptied (they are
 * recomputed on demand), so memory stays flat in the number of combinations.
 */
export class IndicatorCache {
  private readonly entries = new Map<string, { readonly value: unknown; readonly bytes: number }>();
  private bytes = 0;

  constructor(
    readonly series: BarSeries,
    /** The budget, bytes. */
    private readonly maxBytes = 64 * 1024 * 1024,
  ) {}

  /** The value stored under `key`, computed by `compute` the first time (`bytes`: its size). */
  get<T>(key: string, compute: () => T, bytes: (value: T) => number): T {
    const found = this.entries.get(key);
    if (found !== undefined) return found.value as T;
    const value = compute();
    const size = bytes(value);
    if (this.bytes + size > this.maxBytes) {
      this.entries.clear();
      this.bytes = 0;
    }
    this.entries.set(key, { value, bytes: size });
    this.bytes += size;
    return value;
  }

  /**
   * The value stored under `key`, or undefined: `get` without its two functions, for a caller that
   * asks for a cached value once per combination and would otherwise make them every time.
   */
  find<T>(key: string): T | undefined {
    return this.entries.get(key)?.value as T | undefined;
  }

  /** One value per bar under `key`, written by `fill` (a streaming indicator fed every bar in order). */
  array(key: string, fill: (out: Float64Array) => void): Float64Array {
    return this.get(
      key,
      () => {
        const out = new Float64Array(this.series.time.length);
        fill(out);
        return out;
      },
      (a) => a.byteLength,
    );
  }

  /**
   * The average true range at each bar (`Atr`, as `AtrStop` and the risk rules feed it). Asked
   * for by every run (its stop and its risk rules): a cached array is found by a key kept per
   * period (`atrKey`) without making the functions that would compute it.
   */
  atr(period: number): Float64Array {
    const key = atrKey(period);
    const found = this.find<Float64Array>(key);
    if (found !== undefined) return found;
    const { high, low, close } = this.series;
    return this.get(
      key,
      () => atr(high, low, close, period),
      (a) => a.byteLength,
    );
  }
}

/**
 * A byte per bar whose buffer is padded to whole 32-bit words (the padding stays 0: nothing writes
 * past the bars), so that `wordsOf` can read and write it four bytes at a time.
 */
export function paddedBytes(bars: number): Uint8Array {
  return new Uint8Array(new ArrayBuffer(Math.ceil(bars / 4) * 4), 0, bars);
}

/** The 32-bit word views of byte arrays (`wordsOf`), kept while their buffers live. */
const wordViews = new WeakMap<ArrayBufferLike, Uint32Array>();

/**
 * The bytes of `bytes` four at a time (word `w` holds bytes `4w`..`4w + 3`; the same on either
 * byte order for the byte-wise operations the callers do), when its buffer starts at it and is
 * padded to whole words (`paddedBytes`, the fast engine's codes array); else undefined. Every
 * word past the last whole one holds only 0 padding after the bytes.
 */
export function wordsOf(bytes: Uint8Array): Uint32Array | undefined {
  const buffer = bytes.buffer;
  if (bytes.byteOffset !== 0 || buffer.byteLength !== Math.ceil(bytes.length / 4) * 4) return undefined;
  let words = wordViews.get(buffer);
  if (words === undefined) {
    words = new Uint32Array(buffer);
    wordViews.set(buffer, words);
  }
  return words;
}

/** `out` when given (it must have one element per bar), else a new array: where `vectorize` writes its codes. */
export function codesArray(cache: IndicatorCache, out: Uint8Array | undefined): Uint8Array {
  const n = cache.series.time.length;
  if (out === undefined) return paddedBytes(n);
  if (out.length !== n) {
    throw new RangeError(`codes array of ${out.length} elements for a series of ${n} bars`);
  }
  return out;
}

/**
 * A strategy's rule over a whole series, for the fast engine: `codes[bar]` says which of the rule's
 * conditions hold at that close (0: none, so the rule cannot act there whatever the position), and
 * `decide` gives the intent the strategy instance's `onBar` returns at that bar for that position.
 * The masks say which codes can act for each position, so the engine calls `decide` only where the
 * rule can fire (a code `c` with `c & mask === 0` means hold). The intent is valid until the
 * rule's next `decide` (an entry may be one object rewritten at each call: `ruleIntents`).
 */
export interface VectorRule {
  readonly codes: Uint8Array;
  readonly flatMask: number;
  readonly longMask: number;
  readonly shortMask: number;
  decide(bar: number, position: PositionSide): Intent;
}
