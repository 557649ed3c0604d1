import * as z from 'zod';
import type { Bar, BarSeries } from '../market/types.js';
import {
  AtrStop,
  atrStopParams,
  decideRule,
  ENTER_LONG,
  ENTER_SHORT,
  EXIT_LONG,
  EXIT_SHORT,
  type RuleReasons,
  ruleFlags,
  ruleVector,
} from './rule.js';
import {
  type DecisionContext,
  DIRECTIONS,
  type Direction,
  HOLD,
  type Intent,
  type StrategyDefinition,
  type StrategyInstance,
} from './types.js';
import { codesArray, type IndicatorCache, wordsOf } from './vector.js';

export const volumeProfileParams = z
  .object({
    lookback: z
      .number()
      .int()
      .min(1)
      .default(20)
      .describe('the profile is built from the previous `lookback` bars'),
    bins: z
      .number()
      .int()
      .min(1)
      .default(24)
      .describe('equal-width price bins from the lowest low to the highest high'),
    valueArea: z
      .number()
      .gt(0)
      .max(1)
      .default(0.7)
      .describe("share of the window's volume the value area holds"),
    ...atrStopParams,
  })
  .strict();

export type VolumeProfileParams = z.infer<typeof volumeProfileParams>;

/** A window's volume profile: the point of control and the value area's edges. */
export interface Profile {
  /** Midpoint of the bin with the most volume. */
  readonly poc: number;
  /** Lower edge of the value area's lowest bin. */
  readonly val: number;
  /** Upper edge of the value area's highest bin. */
  readonly vah: number;
  readonly pocBin: number;
  readonly lowBin: number;
  readonly highBin: number;
}

/** Where a window's profile sits: its lowest low, bin width, total volume and POC bin. */
export interface ProfileWindow {
  lo: number;
  width: number;
  total: number;
  pocBin: number;
}

/**
 * The histogram of a window of `count` bars held oldest first from `first` in arrays of `size`
 * slots, wrapping round (ring buffers of the window's length, or a whole series with `size` its
 * length): fills `into[0, bins)` and `window`, and returns false when the window has no price range.
 *
 * `bins` equal-width bins from the window's lowest low to its highest high; bin i spans
 * [low + i × width, low + (i + 1) × width). Each bar's volume is spread over the bins its [low, high]
 * overlaps in proportion to the overlap; a bar with high == low puts it all in bin
 * floor((price - low) / width), capped at bins - 1. POC: the bin with the most volume (ties: the
 * midpoint nearest `previousClose`, then the lower bin).
 */
export function profileHistogram(
  high: ArrayLike<number>,
  low: ArrayLike<number>,
  volume: ArrayLike<number>,
  first: number,
  count: number,
  size: number,
  previousClose: number,
  bins: number,
  into: Float64Array,
  window: ProfileWindow,
): boolean {
  let lo = Number.POSITIVE_INFINITY;
  let hi = Number.NEGATIVE_INFINITY;
  // Slot k walks the window oldest first, wrapping round at `size` (first < size).
  for (let j = 0, k = first; j < count; j++, k = k + 1 === size ? 0 : k + 1) {
    if ((low[k] as number) < lo) lo = low[k] as number;
    if ((high[k] as number) > hi) hi = high[k] as number;
  }
  if (!(hi > lo)) return false;
  const width = (hi - lo) / bins;
  into.fill(0, 0, bins);
  let total = 0;
  for (let j = 0, k = first; j < count; j++, k = k + 1 === size ? 0 : k + 1) {
    const h = high[k] as number;
    const l = low[k] as number;
    const v = volume[k] as number;
    total += v;
    if (h === l) {
      const bin = Math.min(bins - 1, Math.floor((l - lo) / width));
      into[bin] = (into[bin] as number) + v;
      continue;
    }
    const range = h - l;
    // One bin before the computed one, in case rounding put the low just past a bin edge.
    const from = Math.max(0, Math.min(bins - 1, Math.floor((l - lo) / width)) - 1);
    for (let i = from; i < bins; i++) {
      const edge = lo + i * width;
      if (edge >= h) break;
      const overlap = Math.min(h, lo + (i + 1) * width) - Math.max(l, edge);
      if (overlap > 0) into[i] = (into[i] as number) + (v * overlap) / range;
    }
  }
  let poc = 0;
  let best = into[0] as number;
  for (let i = 1; i < bins; i++) {
    const v = into[i] as number;
    if (v > best) {
      poc = i;
      best = v;
    } else if (v === best) {
      const distance = Math.abs(lo + (i + 0.5) * width - previousClose);
      const bestDistance = Math.abs(lo + (poc + 0.5) * width - previousClose);
      if (distance < bestDistance) poc = i;
    }
  }
  window.lo = lo;
  window.width = width;
  window.total = total;
  window.pocBin = poc;
  return true;
}

/** The value area's bins, and (when recorded) each step of its growth. */
export interface ValueArea {
  lowBin: number;
  highBin: number;
}

/**
 * Grows the value area from the POC bin by the neighbour with more volume (ties: the one above; at
 * an edge, the other side) until it holds at least `target` volume or spans every bin; writes its
 * bins to `area` and returns the number of steps. With `path`, step s's held volume and bins are
 * recorded at `offset + s` (step 0: the POC bin alone), so the area for any target can be read back.
 */
export function growValueArea(
  into: Float64Array,
  bins: number,
  pocBin: number,
  target: number,
  area: ValueArea,
  path?: { held: Float64Array; lowBin: Int32Array; highBin: Int32Array; offset: number },
): number {
  let lowBin = pocBin;
  let highBin = pocBin;
  let held = into[pocBin] as number;
  let steps = 0;
  if (path !== undefined) {
    path.held[path.offset] = held;
    path.lowBin[path.offset] = lowBin;
    path.highBin[path.offset] = highBin;
  }
  while (held < target && (lowBin > 0 || highBin < bins - 1)) {
    const below = lowBin > 0 ? (into[lowBin - 1] as number) : Number.NEGATIVE_INFINITY;
    const above = highBin < bins - 1 ? (into[highBin + 1] as number) : Number.NEGATIVE_INFINITY;
    if (above >= below) {
      highBin++;
      held += above;
    } else {
      lowBin--;
      held += below;
    }
    steps++;
    if (path !== undefined) {
      path.held[path.offset + steps] = held;
      path.lowBin[path.offset + steps] = lowBin;
      path.highBin[path.offset + steps] = highBin;
    }
  }
  area.lowBin = lowBin;
  area.highBin = highBin;
  return steps;
}

/**
 * The volume profile of `count` bars held oldest first from `first` in ring buffers of that length
 * (`high`, `low`, `volume`), or null when the window has no price range: the histogram
 * (`profileHistogram`), then the value area grown (`growValueArea`) until it holds at least
 * `valueArea` of the window's volume. `into` is scratch of at least `bins` values.
 */
export function volumeProfile(
  high: ArrayLike<number>,
  low: ArrayLike<number>,
  volume: ArrayLike<number>,
  first: number,
  count: number,
  previousClose: number,
  bins: number,
  valueArea: number,
  into: Float64Array,
): Profile | null {
  const window: ProfileWindow = { lo: 0, width: 0, total: 0, pocBin: 0 };
  if (!profileHistogram(high, low, volume, first, count, count, previousClose, bins, into, window))
    return null;
  const { lo, width, pocBin } = window;
  const area: ValueArea = { lowBin: pocBin, highBin: pocBin };
  growValueArea(into, bins, pocBin, valueArea * window.total, area);
  return {
    poc: lo + (pocBin + 0.5) * width,
    val: lo + area.lowBin * width,
    vah: lo + (area.highBin + 1) * width,
    pocBin,
    lowBin: area.lowBin,
    highBin: area.highBin,
  };
}

/** The unit roundoff of a double. */
const UNIT_ROUNDOFF = 2 ** -53;
/** x + 2^52 - 2^52 is x rounded to an integer (ties to even) for 0 <= x < 2^52. */
const ROUNDER = 2 ** 52;
/** A price's position in bin widths this close to a bin's edge: its bin is found from the edges. */
const NEAR_EDGE = 2 ** -16;
/** Slots of `ProfileBatch.frame`. */
const LO = 0;
const WIDTH = 1;
const INVERSE = 2;
const TOP = 3;
const PER_QUANTUM = 4;
const DEV = 5;
/** Buckets of valueArea values in `ProfileThresholds.marked` (a power of two). */
const BUCKETS = 65536;
/** How far `ProfileThresholds.marked` widens a threshold's valueAreas on each side. */
const BUCKET_MARGIN = 2 ** -30;
/** Whether a 32-bit word holds its first byte lowest (the codes' word writes assume it). */
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/**
 * Sets bits `from` .. `to` (inclusive, from <= to) of `words`, bit q in word q >> 5 at q & 31: the
 * end words masked, the words between filled whole.
 */
export function setBits(words: Int32Array, from: number, to: number): void {
  const w0 = from >> 5;
  const w1 = to >> 5;
  const head = -1 << (from & 31);
  const tail = -1 >>> (31 - (to & 31));
  if (w0 === w1) {
    words[w0] = (words[w0] as number) | (head & tail);
    return;
  }
  words[w0] = (words[w0] as number) | head;
  if (w1 > w0 + 1) words.fill(-1, w0 + 1, w1);
  words[w1] = (words[w1] as number) | tail;
}

/**
 * Bin b of the window of quantized bins from `s` in `st`: its own sum, or with `pair` (the half as
 * many bins derived from these, `ProfileBatch.estimate`) fine bins 2b and 2b + 1 summed (exact:
 * integers in quanta).
 */
function binAt(st: Float64Array, s: number, b: number, pair: boolean): number {
  return pair ? (st[s + 2 * b] as number) + (st[s + 2 * b + 1] as number) : (st[s + b] as number);
}

/** The least magnitude of a non-zero price the estimate takes (`estimable`). */
const LEAST_PRICE = 2 ** -500;

/**
 * Whether a series' bars let the histograms be estimated (`ProfileThresholds`): every high, low and
 * volume finite, high >= low, volume >= 0, every bar's volume density and the whole volume finite
 * (then a value area's held volume only grows, which the thresholds rely on), every bar's volume
 * times its range finite (profileHistogram's `v × overlap` does not overflow: an infinite bin
 * there would leave its POC to the tie rule), and every non-zero price at least `LEAST_PRICE` in
 * magnitude (a window's bins, wider than 2^-30 of its prices, are then far from subnormal, so
 * their inverse is finite). The bundled and loaded data always are; on any other series the
 * vectorized rule computes every bar's profile for each combination, as the instance does.
 */
function estimable(high: ArrayLike<number>, low: ArrayLike<number>, volume: ArrayLike<number>): boolean {
  let total = 0;
  for (let j = 0; j < high.length; j++) {
    const h = high[j] as number;
    const l = low[j] as number;
    const v = volume[j] as number;
    if (!(Number.isFinite(h) && Number.isFinite(l) && Number.isFinite(v) && h >= l && v >= 0)) return false;
    if (h > l && !(Number.isFinite(v / (h - l)) && Number.isFinite(v * (h - l)))) return false;
    if ((h !== 0 && !(Math.abs(h) >= LEAST_PRICE)) || (l !== 0 && !(Math.abs(l) >= LEAST_PRICE)))
      return false;
    total += v;
  }
  return Number.isFinite(total);
}

/**
 * What the estimate needs of a series' bars, the same for every (lookback, bins): whether they are
 * `estimable` (else nothing else is filled), each bar's volume `density` (volume / range; 0: no
 * range), the volumes' prefix sums (`prefix`; `integral` when every volume is an integer and they
 * sum to at most 2^53, so every window's sum from them is exact and equals profileHistogram's
 * own), the `quantum` (a power of two: the series' whole volume is under 2^50 of them), and the
 * monotone queues' scratch (`minQ`, `maxQ`).
 */
class ProfileBars {
  readonly estimable: boolean;
  readonly density: Float64Array;
  readonly prefix: Float64Array;
  readonly integral: boolean;
  readonly quantum: number;
  readonly minQ: Int32Array;
  readonly maxQ: Int32Array;

  constructor(series: BarSeries) {
    const { high, low, volume } = series;
    const n = high.length;
    this.estimable = estimable(high, low, volume);
    const m = this.estimable ? n : 0;
    this.density = new Float64Array(m);
    this.prefix = new Float64Array(m + 1);
    this.minQ = new Int32Array(m);
    this.maxQ = new Int32Array(m);
    const { density, prefix } = this;
    let integral = true;
    for (let k = 0; k < m; k++) {
      const v = volume[k] as number;
      const range = (high[k] as number) - (low[k] as number);
      if (range > 0) density[k] = v / range;
      if (!Number.isInteger(v)) integral = false;
      prefix[k + 1] = (prefix[k] as number) + v;
    }
    const seriesVolume = prefix[m] as number;
    this.integral = integral && seriesVolume <= Number.MAX_SAFE_INTEGER;
    this.quantum = 2 ** (Math.ceil(Math.log2(seriesVolume + 1)) - 50);
  }

  get bytes(): number {
    return this.density.byteLength + this.prefix.byteLength + 2 * this.minQ.byteLength;
  }
}

/**
 * The most lookbacks one batch estimates together (`ProfileBatch`). A batch's shortest and longest
 * lookbacks sum many of their windows again (they have no shorter or longer neighbour: about a
 * third of each one's on the bench's sweep), and a sweep's last batch builds on average half
 * a batch it never asks for: for a grid of about 50 consecutive lookbacks the two weigh about the
 * same around 10-16 (docs/engine.md, "The volume profile, the fourth round").
 */
const MAX_BATCH = 12;
/**
 * The most bytes a batch's lookbacks may take together (`ProfileBatch`): their thresholds, built
 * before they are asked for, and their running windows (`bins` doubles each); one lookback at
 * least.
 */
const MAX_PENDING_BYTES = 8 * 1024 * 1024;

/**
 * The threshold of a value-area step found at `step` of a growth path whose last step is `last`: the
 * volume held one step before (`held[step - 1]`), -Infinity when the POC bin's step (0) already
 * passes the close, +Infinity when no step does.
 */
function heldBefore(step: number, last: number, held: Float64Array): number {
  if (step > last) return Number.POSITIVE_INFINITY;
  return step === 0 ? Number.NEGATIVE_INFINITY : (held[step - 1] as number);
}

/**
 * What the rule's condition bits need at every bar of a series, for one (lookback, bins) and ANY
 * `valueArea`, equal to what the instance computes (`volumeProfile`) at that bar:
 * - `bits[i]`: `EXIT_LONG` (close >= POC) and `EXIT_SHORT` (close <= POC); 0 when the window has
 *   no price range (no decision; its thresholds are then -Infinity, `none`);
 * - close < VAL exactly when `valueArea × total[i] <= below[i]`, and close > VAH exactly when
 *   `valueArea × total[i] <= above[i]` (±Infinity: always, never). VAL only falls and VAH only rises
 *   as the value area grows, and its held volume only grows, so each is one threshold on the held
 *   volume: the volume held one step before the first step whose VAL is at or under the close.
 *   Without `shorts` (a long-only run, which never enters short) there is no `above` (it is
 *   empty): the value area is not grown for VAH, and the codes have no `ENTER_SHORT`.
 *
 * The thresholds are filled by `ProfileBatch.estimate` from ESTIMATED histograms (no division per
 * bin, exact integer sums slid along the series), whose error is bounded (`slack[i]`, far above
 * the differences between the estimate and `profileHistogram`'s float sums, about 1e-12 of the
 * window's volume). Where every choice (the POC, each step of the value area) wins by more than
 * that bound, it is the choice `profileHistogram` and `growValueArea` make; where one does not (a
 * tie or a near tie), the bar is computed exactly with those two functions (`exact`). A threshold
 * stays an estimate within `slack[i]` of the exact held volume: a combination whose target falls
 * within it gets the bar computed exactly (and stored exact, `slack[i]` 0) before it reads it. So
 * the conditions are the instance's, bit for bit.
 */
class ProfileThresholds {
  readonly total: Float64Array;
  readonly below: Float64Array;
  readonly above: Float64Array;
  readonly slack: Float64Array;
  readonly bits: Uint8Array;
  /** `bits` four bars a word (bar 4w + j in byte j of word w, as `wordsOf` reads the codes). */
  readonly bitWords: Uint32Array;
  /**
   * One bit per bucket of valueArea values, [q / `BUCKETS`, (q + 1) / `BUCKETS`) (the last with
   * 1): set when a target of a valueArea in it may fall within `slack` of some bar's threshold
   * (`marked`, built when the conditions are first read). A valueArea whose bucket is clear needs
   * no bar computed exactly.
   */
  private readonly buckets: Int32Array;
  private bucketsBuilt = false;
  /** `exact`'s scratch, made the first time it is needed. */
  private scratch:
    | { into: Float64Array; held: Float64Array; lowBins: Int32Array; highBins: Int32Array }
    | undefined;
  private readonly window: ProfileWindow = { lo: 0, width: 0, total: 0, pocBin: 0 };
  private readonly area: ValueArea = { lowBin: 0, highBin: 0 };

  constructor(
    private readonly series: BarSeries,
    readonly lookback: number,
    private readonly bins: number,
    /** False when the series' bars are not `estimable`: the arrays are then not filled. */
    readonly estimated: boolean,
    /** Whether `above` is computed (a long-short run's), else empty. */
    readonly shorts: boolean,
  ) {
    // One allocation: the arrays of doubles (`above` only with shorts), the buckets, then the
    // bits padded to whole words.
    const n = series.close.length;
    const doubles = shorts ? 4 : 3;
    const buffer = new ArrayBuffer(ProfileThresholds.bytes(n, shorts));
    this.total = new Float64Array(buffer, 0, n);
    this.below = new Float64Array(buffer, 8 * n, n);
    this.slack = new Float64Array(buffer, 16 * n, n);
    this.above = new Float64Array(buffer, 24 * n, shorts ? n : 0);
    this.buckets = new Int32Array(buffer, 8 * doubles * n, BUCKETS / 32);
    this.bits = new Uint8Array(buffer, 8 * doubles * n + BUCKETS / 8, n);
    this.bitWords = new Uint32Array(buffer, 8 * doubles * n + BUCKETS / 8, Math.ceil(n / 4));
  }

  static bytes(n: number, shorts: boolean): number {
    return (shorts ? 32 : 24) * n + BUCKETS / 8 + 4 * Math.ceil(n / 4);
  }

  get bytes(): number {
    return ProfileThresholds.bytes(this.bits.length, this.shorts);
  }

  /**
   * Whether a target of `valueArea` (0 < valueArea <= 1) may fall within `slack[i]` of bar i's
   * `below[i]` or `above[i]` at some bar i (then `volumeProfileFlags` checks each bar), false when
   * it falls outside at every bar. Each bar's thresholds x mark the buckets of the valueAreas
   * [(x - slack) / total, (x + slack) / total] widened by `BUCKET_MARGIN` (far more than the
   * roundings of those values, taken with 1 / total, and of the target's product, for values near
   * (0, 1]): every
   * valueArea whose target is within slack of x (as `volumeProfileFlags` computes it) is in a bucket
   * marked. A bar computed exactly since (`slack` 0) leaves its marks: more checks, never fewer.
   */
  marked(valueArea: number): boolean {
    if (!this.bucketsBuilt) {
      this.bucketsBuilt = true;
      const { total, below, above, slack } = this;
      for (let i = this.lookback; i < total.length; i++) {
        const s = slack[i] as number;
        if (!(s > 0)) continue;
        const inverse = 1 / (total[i] as number);
        this.mark(below[i] as number, s, inverse);
        if (this.shorts) this.mark(above[i] as number, s, inverse);
      }
    }
    const q = Math.min(BUCKETS - 1, Math.floor(valueArea * BUCKETS));
    return ((this.buckets[q >> 5] as number) & (1 << (q & 31))) !== 0;
  }

  /**
   * Marks the buckets of threshold x's valueAreas (`marked`), `inverse` being 1 / the window's
   * volume. It is Infinity only for a volume under 2^-1024, where slack (at least 144 quanta, a
   * quantum at least 2^-50) exceeds every held volume: x - slack < 0 < x + slack, every bucket.
   */
  private mark(x: number, s: number, inverse: number): void {
    // ±Infinity: always or never, whatever the target.
    if (x === Number.POSITIVE_INFINITY || x === Number.NEGATIVE_INFINITY) return;
    const lo = (x - s) * inverse - BUCKET_MARGIN;
    const hi = (x + s) * inverse + BUCKET_MARGIN;
    if (hi < 0 || lo > 1) return;
    const q0 = lo > 0 ? Math.floor(lo * BUCKETS) : 0;
    const q1 = hi < 1 ? Math.floor(hi * BUCKETS) : BUCKETS - 1;
    setBits(this.buckets, q0, q1);
  }

  /** Bar i's entries from the instance's own functions (`profileHistogram`, `growValueArea`). */
  exact(i: number): void {
    const { high, low, volume, close } = this.series;
    const { lookback, bins, window } = this;
    this.scratch ??= {
      into: new Float64Array(bins),
      held: new Float64Array(bins),
      lowBins: new Int32Array(bins),
      highBins: new Int32Array(bins),
    };
    const { into, held, lowBins, highBins } = this.scratch;
    const n = close.length;
    const ok = profileHistogram(
      high,
      low,
      volume,
      i - lookback,
      lookback,
      n,
      close[i - 1] as number,
      bins,
      into,
      window,
    );
    if (!ok) {
      this.none(i);
      return;
    }
    const path = { held, lowBin: lowBins, highBin: highBins, offset: 0 };
    const last = growValueArea(into, bins, window.pocBin, Number.POSITIVE_INFINITY, this.area, path);
    const lo = window.lo;
    const width = window.width;
    const c = close[i] as number;
    // The first step whose VAL is at or under the close, and whose VAH is at or over it: the
    // thresholds are the volume held one step before (±Infinity: the POC bin's already is, or none).
    let underVal = 0;
    while (underVal <= last && c < lo + (lowBins[underVal] as number) * width) underVal++;
    let overVah = 0;
    while (overVah <= last && c > lo + ((highBins[overVah] as number) + 1) * width) overVah++;
    const below = heldBefore(underVal, last, held);
    const above = heldBefore(overVah, last, held);
    const poc = lo + (window.pocBin + 0.5) * width;
    this.record(i, (c >= poc ? EXIT_LONG : 0) | (c <= poc ? EXIT_SHORT : 0), below, above, window.total, 0);
  }

  /**
   * Bar i's close is under its window's lowest low (`under`) or over its last bin's upper edge
   * (lo + bins × width): under every VAL and the POC, or over every VAH and the POC, whatever the
   * histogram and the target (`exact` finds the same). Its `total` is left 0: a target of any
   * volume compares with the infinite thresholds alike, and with `slack` 0 no target is near them.
   */
  outside(i: number, under: boolean): void {
    this.bits[i] = under ? EXIT_SHORT : EXIT_LONG;
    this.below[i] = under ? Number.POSITIVE_INFINITY : Number.NEGATIVE_INFINITY;
    if (this.shorts) this.above[i] = under ? Number.NEGATIVE_INFINITY : Number.POSITIVE_INFINITY;
    this.total[i] = 0;
    this.slack[i] = 0;
  }

  /**
   * Bar i has no profile (its window has no price range): no condition holds, whatever the target
   * (`volumeProfileFlags` reads the thresholds without a branch: -Infinity is under every target).
   */
  none(i: number): void {
    this.bits[i] = 0;
    this.below[i] = Number.NEGATIVE_INFINITY;
    if (this.shorts) this.above[i] = Number.NEGATIVE_INFINITY;
    this.slack[i] = 0;
  }

  /**
   * Bar i's entries: its exit bits (the close against the POC), its thresholds `below` and `above`
   * (the latter only with shorts), its window's volume and the bound on the estimate (`slack`, 0:
   * exact).
   */
  record(i: number, bits: number, below: number, above: number, total: number, slack: number): void {
    this.below[i] = below;
    if (this.shorts) this.above[i] = above;
    this.bits[i] = bits;
    this.total[i] = total;
    this.slack[i] = slack;
  }
}

/**
 * The thresholds of one series for one number of bins, estimated a batch of consecutive lookbacks
 * at a time (one per cache, `volume-profile-batch:<bins>`). A lookback asked for is built alone
 * (the last batch's state left as it was: its lookbacks not asked for yet still wait), unless it
 * follows the last batch (the next longer lookback, or the next shorter one): then a batch twice
 * as large as the last, up to `MAX_BATCH` lookbacks and `MAX_PENDING_BYTES` of thresholds and
 * running windows, is built in one pass, and the lookbacks not asked for yet wait (`pending`) until
 * they are; or unless it follows the last lookback built alone: then a batch of two. A sweep asks
 * for its lookbacks in grid order, so it builds them in batches; a single request costs what it
 * did; any order gives the same thresholds (only the work differs).
 * Two batches of the same kind whose bins are B and 2B (both asked of the cache: the bench's 12
 * and 24) build their batches together: the one asked first builds the lookbacks of both in one
 * pass of the 2B batch, bins B's windows derived from bins 2B's (`estimate`), and the other's
 * thresholds wait in its own `pending`.
 *
 * The estimate (`estimate`) walks the bars once for the whole batch and keeps one running window
 * per lookback, in whole quanta of the series' quantum (`ProfileBars.quantum`): each bin's
 * estimate, the shares of the bars that cover it in part (a bar's lowest and highest bins, its
 * overlap as profileHistogram computes it; a bar with no range) and of those that cover it wholly
 * (density × the bins' width, the same for each such bin, though each bin's own width differs by
 * its rounded edges: the bound takes that difference, `DEV`). Integer sums in quanta are exact,
 * so a window's numbers are the same whatever path built it, and the bins are compared in quanta.
 * At bar i, the window of lookback L (bars i - L .. i - 1), with its lowest low and highest high, is, by the
 * first that has the same lowest low and highest high (the same bins, so the same quanta per bar):
 * - its own window at bar i - 1, the bar that left taken away and the one that joined added;
 * - lookback L + 1's window at bar i (built just before: the lookbacks go longest first), copied,
 *   its oldest bar taken away;
 * - lookback L - 1's window at bar i - 1 (not yet moved on), copied, bar i - 1 added;
 * - else summed again.
 * A window whose close is under its lowest low or over its bins needs none of it (`outside`: 14 %
 * of the bench sweep's windows).
 * The POC bin of the last window is kept
 * if its estimate (read again: it may be among them) still exceeds by more than the bound the last
 * window's bound on its other bins (at least its second largest) raised by the bins the added bars
 * changed; or the largest changed bin is taken when it exceeds by more than the bound that bound
 * raised by the last POC bin's estimate: the choice the full scan would make. Else the bins are
 * scanned.
 */
class ProfileBatch {
  private readonly pending = new Map<number, ProfileThresholds>();
  /** The last batch's lookbacks (`first` .. `last`) and their number. */
  private first = 0;
  private last = -1;
  private size = 0;
  /** The last lookback built alone (-2: none). */
  private lone = -2;
  private readonly most: number;
  /**
   * Each lookback's running window, its bins' estimates in quanta, `bins` numbers from k × bins
   * for the batch's k-th.
   */
  private readonly windows: Float64Array;
  /** The current bins' numbers (`LO`, `WIDTH`, ...): doubles kept in a typed array, not boxed. */
  private readonly frame = new Float64Array(6);
  /**
   * Each lookback's running window: its lowest low and highest high (NaN: none kept), its POC bin
   * and a bound on its other bins (at least the second largest); and at the current bar, each
   * lookback's window's lowest low and highest high (`los`, `his`).
   */
  private readonly stateLo: Float64Array;
  private readonly stateHi: Float64Array;
  private readonly pocs: Int32Array;
  private readonly seconds: Float64Array;
  private readonly los: Float64Array;
  private readonly his: Float64Array;
  /** The lowest and highest bins the last `addBars` calls changed. */
  private readonly changed = new Int32Array(2);
  /**
   * With an even number of bins, the most lookbacks a batch estimates together with the half as
   * many bins derived from these (`estimate`'s `coarse`): both thresholds and the running windows
   * within `MAX_PENDING_BYTES`; and the derived windows' scratch: their POC bins and bounds on
   * their other bins (their bins are read from the fine windows, `binAt`).
   */
  private readonly pairMost: number;
  private readonly coarsePocs: Int32Array;
  private readonly coarseSeconds: Float64Array;

  constructor(
    private readonly series: BarSeries,
    private readonly bins: number,
    private readonly bars: ProfileBars,
    /** Whether the thresholds' `above` is computed (`ProfileThresholds.shorts`). */
    private readonly shorts: boolean,
  ) {
    const n = series.close.length;
    // A series the estimate cannot use builds each lookback alone (its thresholds are not filled).
    this.most = bars.estimable
      ? Math.max(
          1,
          Math.min(
            MAX_BATCH,
            Math.floor(MAX_PENDING_BYTES / (ProfileThresholds.bytes(n, shorts) + 8 * bins)),
          ),
        )
      : 1;
    const half = bins % 2 === 0 && bars.estimable ? bins / 2 : 0;
    this.pairMost =
      half > 0
        ? Math.max(
            1,
            Math.min(
              MAX_BATCH,
              Math.floor(MAX_PENDING_BYTES / (2 * ProfileThresholds.bytes(n, shorts) + 8 * bins)),
            ),
          )
        : 0;
    // A pair's lookbacks are at most `most` (`pairMost` counts twice the thresholds).
    this.windows = new Float64Array(bars.estimable ? this.most * bins : 0);
    this.stateLo = new Float64Array(this.most);
    this.stateHi = new Float64Array(this.most);
    this.pocs = new Int32Array(this.most);
    this.seconds = new Float64Array(this.most);
    this.los = new Float64Array(this.most);
    this.his = new Float64Array(this.most);
    this.coarsePocs = new Int32Array(this.pairMost);
    this.coarseSeconds = new Float64Array(this.pairMost);
  }

  /**
   * The scratch, and the most the pending thresholds may take (one more with an even number of
   * bins: a batch of the half as many bins' partner leaves a whole batch of these pending).
   */
  get bytes(): number {
    const n = this.series.close.length;
    const pending = this.pairMost > 0 ? Math.max(this.most - 1, this.pairMost) : this.most - 1;
    return (
      8 * this.windows.length +
      24 * this.bins +
      12 * this.pairMost +
      pending * ProfileThresholds.bytes(n, this.shorts)
    );
  }

  /**
   * The thresholds of `lookback`: built before in its batch (or its partner's), or now with the
   * next batch. `group` holds the cache's batches of the same kind by bins: when it holds this
   * one's partner, the batch of twice as many bins (this one's derived from it) or of half as many
   * (derived from this one), both are built in one pass, and the partner's wait in its `pending`.
   */
  take(lookback: number, group?: ReadonlyMap<number, ProfileBatch>): ProfileThresholds {
    const found = this.pending.get(lookback);
    if (found !== undefined) {
      this.pending.delete(lookback);
      return found;
    }
    // The batch estimated (`fine`) and the one derived from it (`coarse`), one of them this one.
    let fine: ProfileBatch = this;
    let coarse: ProfileBatch | undefined;
    if (group !== undefined && this.bars.estimable) {
      const twice = group.get(2 * this.bins);
      const half = this.bins % 2 === 0 ? group.get(this.bins / 2) : undefined;
      if (twice !== undefined && twice !== this && twice.bars === this.bars) {
        fine = twice;
        coarse = this;
      } else if (half !== undefined && half !== this && half.bars === this.bars) coarse = half;
    }
    const most = coarse === undefined ? this.most : fine.pairMost;
    let first = lookback;
    let size: number;
    if (lookback === this.last + 1) size = Math.min(2 * this.size, most);
    else if (lookback === this.first - 1) {
      size = Math.min(2 * this.size, most, lookback);
      first = lookback - size + 1;
    } else if (lookback === this.lone + 1) size = Math.min(2, most);
    else if (lookback === this.lone - 1) {
      size = Math.min(2, most, lookback);
      first = lookback - size + 1;
    } else {
      // Alone, the batch's state untouched.
      const alone = new ProfileThresholds(this.series, lookback, this.bins, this.bars.estimable, this.shorts);
      if (this.bars.estimable) this.estimate([alone]);
      this.lone = lookback;
      return alone;
    }
    const batch = this.thresholds(first, size);
    if (coarse === undefined) {
      if (this.bars.estimable) this.estimate(batch);
    } else {
      const partner = coarse === this ? fine : coarse;
      const theirs = partner.thresholds(first, size);
      if (coarse === this) fine.estimate(theirs, batch);
      else this.estimate(batch, theirs);
      partner.adopt(theirs);
    }
    this.adopt(batch);
    this.pending.delete(lookback);
    return batch[lookback - first] as ProfileThresholds;
  }

  /** Empty thresholds of lookbacks `first` .. `first + size - 1` for this batch's bins. */
  private thresholds(first: number, size: number): ProfileThresholds[] {
    const batch: ProfileThresholds[] = [];
    for (let k = 0; k < size; k++) {
      batch.push(new ProfileThresholds(this.series, first + k, this.bins, this.bars.estimable, this.shorts));
    }
    return batch;
  }

  /** A batch's thresholds (consecutive lookbacks, shortest first) made the pending ones. */
  private adopt(batch: ProfileThresholds[]): void {
    this.pending.clear();
    for (const t of batch) this.pending.set(t.lookback, t);
    this.first = (batch[0] as ProfileThresholds).lookback;
    this.size = batch.length;
    this.last = this.first + this.size - 1;
  }

  /**
   * Every bar's entries of the batch's lookbacks (consecutive, shortest first) from estimated
   * histograms, a bar computed exactly where a choice is close.
   *
   * Each bin is within (lookback + 10) roundings of each of its bars' shares plus 0.51 quantum per
   * bar, plus `DEV` (how far a bin's own width, its edges rounded, may be from the bins' width,
   * relative to it) times the shares of the bars that cover it wholly, of the exact sum
   * (with the overlaps profileHistogram computes), and `profileHistogram`'s is within
   * (lookback + 3) roundings: `slack`, 16 × (lookback + 2) × (bins + 2) × (u × the window's volume
   * + a quantum) + 2 × DEV × the window's volume, bounds, with room to spare, the difference of two
   * bins and of two held volumes (exact sums of quanta here, at most `bins` bins summed in floating
   * point there) between the two.
   *
   * With `coarse` (the same lookbacks' thresholds for half as many bins, `bins` even), those are
   * derived from these windows: for the same window (lowest low lo, highest high hi), the coarse
   * width (hi - lo) / (bins / 2) is exactly twice the fine width (hi - lo) / bins (halving commutes
   * with rounding; the widths estimated are normal), so the fine edge lo + 2j × width is the coarse
   * edge lo + j × (2 × width) bit for bit (the same real product, rounded once), the last fine
   * edge the last coarse one, and a price's fine bin f (with no range: floor((price - lo) / width),
   * capped) the coarse bin f >> 1 (the quotient is exactly twice the coarse one). So coarse bin j
   * is fine bins 2j and 2j + 1 (`outside` and `none` the same for both), and its estimate is theirs
   * summed (exact: integers in quanta) where it is read (`binAt`: no coarse window is kept).
   * Against profileHistogram's coarse bin (one overlap per bar where the pair computes two, whose
   * inner edge cancels): each fine bin is within its (lookback +
   * 10) roundings of each bar's share and 0.51 quantum per bar, so the pair within twice that, and
   * a fine bin covered wholly is off by at most DEV (the fine frame's) times its whole shares, so a
   * coarse bin by at most DEV times the whole shares of its halves and a held volume by DEV × the
   * window's volume: the same `slack` with bins / 2 bins and the fine frame's DEV (2 × (2 lookback +
   * 20) roundings and 1.02 quanta per bar per bin are within 16 × (lookback + 2) × (bins / 2 + 2)
   * of them; the DEV term as before). Their POC bins and bounds follow the fine windows' moves (a
   * coarse bin changed by an added bar is among the halved fine bins it changed; a bar taken away
   * only lowers bins).
   */
  private estimate(batch: ProfileThresholds[], coarse?: ProfileThresholds[]): void {
    const { high, low, close } = this.series;
    const { bins, windows: st, frame, changed, shorts } = this;
    const { coarsePocs: cpocs, coarseSeconds: cseconds } = this;
    const half = bins >> 1;
    const { quantum, minQ, maxQ } = this.bars;
    const n = high.length;
    const size = batch.length;
    const first = (batch[0] as ProfileThresholds).lookback;
    frame[PER_QUANTUM] = 1 / quantum;
    // Each lookback's running window: its lowest low and highest high (NaN: none kept), its POC
    // bin and a bound on its second largest bin (at least it).
    const { stateLo, stateHi, pocs, seconds, los, his } = this;
    stateLo.fill(Number.NaN);
    stateHi.fill(Number.NaN);
    // At the current bar, each lookback's window's lowest low and highest high.
    let minHead = 0;
    let minTail = 0;
    let maxHead = 0;
    let maxTail = 0;
    let edgesLo = Number.NaN;
    let edgesHi = Number.NaN;
    for (let j = 0; j + 1 < n; j++) {
      // Bar j joins; the shortest lookback's window is bars i - first .. i - 1 with i = j + 1.
      const l = low[j] as number;
      while (minTail > minHead && (low[minQ[minTail - 1] as number] as number) >= l) minTail--;
      minQ[minTail++] = j;
      const h = high[j] as number;
      while (maxTail > maxHead && (high[maxQ[maxTail - 1] as number] as number) <= h) maxTail--;
      maxQ[maxTail++] = j;
      const i = j + 1;
      if (i < first) continue;
      while ((minQ[minHead] as number) < i - first) minHead++;
      while ((maxQ[maxHead] as number) < i - first) maxHead++;
      let lo = low[minQ[minHead] as number] as number;
      let hi = high[maxQ[maxHead] as number] as number;
      los[0] = lo;
      his[0] = hi;
      // The longer lookbacks' windows, each one bar further back (those with a whole window).
      let top = 0;
      for (let k = 1; k < size && first + k <= i; k++) {
        const m = i - first - k;
        const ml = low[m] as number;
        const mh = high[m] as number;
        if (ml < lo) lo = ml;
        if (mh > hi) hi = mh;
        los[k] = lo;
        his[k] = hi;
        top = k;
      }
      // Longest first: lookback L + 1's window is at bar i already, L - 1's still at bar i - 1.
      for (let k = top; k >= 0; k--) {
        const t = batch[k] as ProfileThresholds;
        const lookback = first + k;
        const wlo = los[k] as number;
        const whi = his[k] as number;
        const ct = coarse?.[k];
        if (!(whi > wlo)) {
          t.none(i);
          ct?.none(i);
          stateLo[k] = Number.NaN;
          continue;
        }
        const width = (whi - wlo) / bins;
        // Bins far wider than a price's rounding: every estimate below is then within its bound.
        if (!(width > Math.max(Math.abs(wlo), Math.abs(whi)) * 2 ** -30)) {
          t.exact(i);
          ct?.exact(i);
          stateLo[k] = Number.NaN;
          continue;
        }
        // A close under the lowest low or over the last bin's upper edge needs no histogram
        // (`outside`). Its window is not kept: the next bar's holds bar i, a new extreme (or, when
        // rounding put that edge under the highest high, it is summed again: the same result).
        const c = close[i] as number;
        if (c < wlo || c > wlo + bins * width) {
          t.outside(i, c < wlo);
          ct?.outside(i, c < wlo);
          stateLo[k] = Number.NaN;
          continue;
        }
        if (wlo !== edgesLo || whi !== edgesHi) {
          frame[LO] = wlo;
          frame[WIDTH] = width;
          const inverse = 1 / width;
          frame[INVERSE] = inverse;
          // How far a bin's own width (its edges rounded) may be from the bins' width, relative to
          // it (the estimate's whole shares take the bins' width): each edge lo + b × width is
          // within 5u × M of its exact value (M = max(|lo|, |hi|); b × width <= 2M), so a width
          // within 10u × M; 11u × M × inverse covers that and the roundings of this product.
          frame[DEV] = 11 * UNIT_ROUNDOFF * Math.max(-wlo, whi) * inverse;
          frame[TOP] = wlo + bins * width;
          edgesLo = wlo;
          edgesHi = whi;
        }
        // This window's bins (in quanta) from s.
        const s = k * bins;
        // The bins the bars added changed (`r0` .. `r1`; empty when r0 > r1).
        changed[0] = bins;
        changed[1] = -1;
        let full = false;
        if (stateLo[k] === wlo && stateHi[k] === whi) {
          // The bar that left taken away, then the one that joined added (its bins counted).
          this.addBars(i - 1, i, 1, s, i - 1 - lookback);
        } else if (k + 1 < size && stateLo[k + 1] === wlo && stateHi[k + 1] === whi) {
          this.copy(k + 1, k);
          pocs[k] = pocs[k + 1] as number;
          seconds[k] = seconds[k + 1] as number;
          cpocs[k] = cpocs[k + 1] as number;
          cseconds[k] = cseconds[k + 1] as number;
          this.addBars(i - 1 - lookback, i - lookback, -1, s, -1);
          changed[0] = bins;
          changed[1] = -1;
        } else if (k > 0 && stateLo[k - 1] === wlo && stateHi[k - 1] === whi) {
          this.copy(k - 1, k);
          pocs[k] = pocs[k - 1] as number;
          seconds[k] = seconds[k - 1] as number;
          cpocs[k] = cpocs[k - 1] as number;
          cseconds[k] = cseconds[k - 1] as number;
          this.addBars(i - 1, i, 1, s, -1);
        } else {
          st.fill(0, s, s + bins);
          this.addBars(i - lookback, i, 1, s, -1);
          full = true;
          changed[0] = 0;
          changed[1] = bins - 1;
        }
        stateLo[k] = wlo;
        stateHi[k] = whi;
        const total = this.windowTotal(i, lookback);
        const roundings = 16 * (lookback + 2) * (UNIT_ROUNDOFF * total + quantum);
        const spread = 2 * (frame[DEV] as number) * total;
        const fineS = s;
        const fineWidth = width;
        // The derived coarse window first (its bins this one's pairs, summed where read), then
        // this one.
        for (let level = ct === undefined ? 1 : 0; level < 2; level++) {
          const coarseLevel = level === 0;
          const t = coarseLevel ? (ct as ProfileThresholds) : (batch[k] as ProfileThresholds);
          const bins = coarseLevel ? half : this.bins;
          // Either level reads the fine window (a coarse bin is two fine ones summed: `binAt`).
          const st = this.windows;
          const s = fineS;
          const pocs = coarseLevel ? cpocs : this.pocs;
          const seconds = coarseLevel ? cseconds : this.seconds;
          // profileHistogram's width for these bins (for the coarse ones, twice the fine width).
          const width = coarseLevel ? (whi - wlo) / half : fineWidth;
          // The bins the added bars changed (a coarse bin's halves' halved).
          const r0 = coarseLevel ? (changed[0] as number) >> 1 : (changed[0] as number);
          const r1 = coarseLevel ? (changed[1] as number) >> 1 : (changed[1] as number);
          const slack = roundings * (bins + 2) + spread;
          // The same bound in quanta (a power of two: exact), as the bins are compared.
          const slackQ = slack * (frame[PER_QUANTUM] as number);
          // The POC: the bin with the most volume, by more than the bound. The last window's POC bin
          // is kept when it still wins by more than the bound against a bound on every other bin:
          // the last window's bound on them (`seconds`), raised by the bins the added bars changed
          // (the bars taken away only lower the bins they touch). Or, when a changed bin now exceeds
          // it, that bin is the POC if it wins by more than the bound against the same bound raised
          // by the old POC bin. Either way the full scan would choose it.
          let pocBin = pocs[k] as number;
          let best = Number.NEGATIVE_INFINITY;
          let second = Number.NEGATIVE_INFINITY;
          let scan = full;
          if (!scan) {
            best = binAt(st, s, pocBin, coarseLevel);
            // The largest changed bin other than the POC bin (`top`, at `topBin`), and a bound on
            // every bin but those two (`next`): the last bound, raised by the other changed bins.
            let next = seconds[k] as number;
            let top = Number.NEGATIVE_INFINITY;
            let topBin = pocBin;
            for (let b = r0; b <= r1; b++) {
              if (b === pocBin) continue;
              const x = binAt(st, s, b, coarseLevel);
              if (x > top) {
                if (top > next) next = top;
                top = x;
                topBin = b;
              } else if (x > next) next = x;
            }
            if (top > best) {
              // The POC moved to a changed bin: the old POC bin is now among the others.
              second = next > best ? next : best;
              best = top;
              pocBin = topBin;
            } else second = top > next ? top : next;
            scan = !(best - second > slackQ);
          }
          if (scan) {
            pocBin = 0;
            best = Number.NEGATIVE_INFINITY;
            second = Number.NEGATIVE_INFINITY;
            for (let b = 0; b < bins; b++) {
              const x = binAt(st, s, b, coarseLevel);
              if (x > best) {
                second = best;
                best = x;
                pocBin = b;
              } else if (x > second) second = x;
            }
          }
          pocs[k] = pocBin;
          seconds[k] = second;
          // (A POC bin no bar reached, 0, wins by the bound over none: every bin is at least 0.)
          if (!(best - second > slackQ)) {
            t.exact(i);
            continue;
          }
          // The value area grown, each step decided by more than the bound (two neighbours both at 0
          // are within it: computed exactly), until its VAL and its VAH have passed the close: the
          // steps after do not change the thresholds. The close is within the bins (a close outside them was
          // `outside`): some step's VAL and VAH pass it.
          let lowBin = pocBin;
          let highBin = pocBin;
          let sum = binAt(st, s, pocBin, coarseLevel);
          // The thresholds (`ProfileThresholds.record`): the volume held one step before the first
          // step whose VAL is at or under the close (`below`) and whose VAH is at or over it
          // (`above`); -Infinity when the POC bin's already is, +Infinity until a step's is.
          // Without shorts VAH is not needed: it is not sought.
          let seekVal = c < wlo + lowBin * width;
          let seekVah = shorts && c > wlo + (highBin + 1) * width;
          let below = seekVal ? Number.POSITIVE_INFINITY : Number.NEGATIVE_INFINITY;
          let above = seekVah ? Number.POSITIVE_INFINITY : Number.NEGATIVE_INFINITY;
          let near = false;
          while ((seekVal || seekVah) && (lowBin > 0 || highBin < bins - 1)) {
            let up: boolean;
            if (lowBin === 0) up = true;
            else if (highBin === bins - 1) up = false;
            else {
              // Within the bound (two bins no bar reached as well: a bar's share can round to 0
              // quanta, so an estimate of 0 does not say its bin is empty), computed exactly.
              const a = binAt(st, s, highBin + 1, coarseLevel);
              const z = binAt(st, s, lowBin - 1, coarseLevel);
              if (!(Math.abs(a - z) > slackQ)) {
                near = true;
                break;
              }
              up = a > z;
            }
            const before = sum * quantum;
            if (up) {
              highBin++;
              sum += binAt(st, s, highBin, coarseLevel);
            } else {
              lowBin--;
              sum += binAt(st, s, lowBin, coarseLevel);
            }
            if (seekVal && !(c < wlo + lowBin * width)) {
              seekVal = false;
              below = before;
            }
            if (seekVah && !(c > wlo + (highBin + 1) * width)) {
              seekVah = false;
              above = before;
            }
          }
          if (near) t.exact(i);
          else {
            const poc = wlo + (pocBin + 0.5) * width;
            t.record(i, (c >= poc ? EXIT_LONG : 0) | (c <= poc ? EXIT_SHORT : 0), below, above, total, slack);
          }
        }
      }
    }
  }

  /** The volume of bars i - lookback .. i - 1, as profileHistogram sums it. */
  private windowTotal(i: number, lookback: number): number {
    const { prefix, integral } = this.bars;
    if (integral) return (prefix[i] as number) - (prefix[i - lookback] as number);
    const volume = this.series.volume;
    let total = 0;
    for (let m = i - lookback; m < i; m++) total += volume[m] as number;
    return total;
  }

  /** Lookback `from`'s running window copied to lookback `to`'s (the same bins). */
  private copy(from: number, to: number): void {
    const size = this.bins;
    this.windows.copyWithin(to * size, from * size, (from + 1) * size);
  }

  /**
   * Adds (`sign` 1) or takes away (-1) the volume of bars `from` .. `to` - 1 in the quantized sums
   * of the window at `s` for the bins in `frame`, in whole quanta: a bar's share of its lowest and
   * highest bins (its density times its overlap with [edge b, edge b + 1), edge x being
   * lo + x × width as profileHistogram computes it, computed where it is needed), its share of
   * each bin between (density × the bins' width, the same for each); a bar with no range puts its
   * volume in profileHistogram's bin for its price. One loop for adding and taking away, so a bar
   * taken away takes exactly the quanta it added. The lowest and highest bins changed widen
   * `changed`. With `out` >= 0 (a slid window, one call instead of two), bar `out` is taken away
   * first, by the same loop, and its bins are not counted in `changed` (they only fall).
   */
  private addBars(from: number, to: number, sign: number, s: number, out: number): void {
    const { high, low, volume } = this.series;
    const { bins, frame, windows: st, changed } = this;
    const density = this.bars.density;
    const lo = frame[LO] as number;
    const width = frame[WIDTH] as number;
    const perQuantum = frame[PER_QUANTUM] as number;
    // The part above the last bin's upper edge (when rounding puts it under the high) is in no bin.
    const top = frame[TOP] as number;
    const inverse = frame[INVERSE] as number;
    let r0 = changed[0] as number;
    let r1 = changed[1] as number;
    for (let j = out >= 0 ? from - 1 : from; j < to; j++) {
      // Bar `out` first (taken away), then the bars from `from`, whose changes alone are counted.
      const leaving = j < from;
      const k = leaving ? out : j;
      const sg = leaving ? -1 : sign;
      if (j === from && out >= 0) {
        r0 = bins;
        r1 = -1;
      }
      const v = volume[k] as number;
      if (v === 0) continue;
      const bh = high[k] as number;
      const bl = low[k] as number;
      if (bh === bl) {
        const bin = Math.min(bins - 1, Math.floor((bl - lo) / width));
        st[s + bin] = (st[s + bin] as number) + sg * (v * perQuantum + ROUNDER - ROUNDER);
        if (bin < r0) r0 = bin;
        if (bin > r1) r1 = bin;
        continue;
      }
      const hc = bh < top ? bh : top;
      if (!(hc > bl)) continue;
      const d = density[k] as number;
      // The bin holding the low (edge b <= low < edge b + 1) and the one holding the high's
      // part (edge c < high <= edge c + 1): every bin the bar overlaps, as profileHistogram
      // finds them.
      // Bins from the prices' positions in bin widths, (price - lo) × inverse: an edge is within
      // 2^-21 of a width of its place there (the widths estimated are over 2^-30 of the prices),
      // a position within 3u × bins; a position more than 2^-16 from an integer is in the bin
      // below it, else the edges decide.
      const tl = (bl - lo) * inverse;
      let b = tl | 0;
      if (b > bins - 1) b = bins - 1;
      const fl = tl - b;
      if (!(fl > NEAR_EDGE && fl < 1 - NEAR_EDGE)) {
        while (b > 0 && lo + b * width > bl) b--;
        while (b < bins - 1 && lo + (b + 1) * width <= bl) b++;
      }
      const th = (hc - lo) * inverse;
      let c = th | 0;
      if (c > bins - 1) c = bins - 1;
      const fh = th - c;
      if (!(fh > NEAR_EDGE && fh < 1 - NEAR_EDGE)) {
        while (c > 0 && lo + c * width >= hc) c--;
        while (c < bins - 1 && lo + (c + 1) * width < hc) c++;
      }
      if (b === c) {
        st[s + b] = (st[s + b] as number) + sg * (d * (hc - bl) * perQuantum + ROUNDER - ROUNDER);
      } else {
        // Overlaps [low, edge b + 1) and [edge c, high), and each bin between wholly (its
        // whole share at s + x).
        const first = d * (lo + (b + 1) * width - bl) * perQuantum + ROUNDER - ROUNDER;
        const last = d * (hc - (lo + c * width)) * perQuantum + ROUNDER - ROUNDER;
        st[s + b] = (st[s + b] as number) + sg * first;
        st[s + c] = (st[s + c] as number) + sg * last;
        if (c > b + 1) {
          const share = sg * (d * width * perQuantum + ROUNDER - ROUNDER);
          for (let x = s + b + 1; x < s + c; x++) {
            st[x] = (st[x] as number) + share;
          }
        }
      }
      if (b < r0) r0 = b;
      if (c > r1) r1 = c;
    }
    changed[0] = r0;
    changed[1] = r1;
  }
}

/** The thresholds' cache keys by (lookback, bins, shorts) (`thresholdsKey`). */
const THRESHOLDS_KEYS = new Map<number, string>();
/** The most keys `THRESHOLDS_KEYS` keeps (any further key is built each time). */
const MOST_KEYS = 1 << 16;

/**
 * The cache key of the thresholds of (`lookback`, `bins`, `shorts`): built once and kept (for
 * integer lookbacks under 2^14 and bins under 2^15, numbered by a small integer), so that a
 * combination's lookup allocates nothing and hashes a string whose hash V8 has kept, where a key
 * built for every combination was a new string to concatenate, flatten and hash each time.
 */
function thresholdsKey(lookback: number, bins: number, shorts: boolean): string {
  const small =
    Number.isInteger(lookback) &&
    Number.isInteger(bins) &&
    lookback >= 0 &&
    bins >= 0 &&
    lookback < 2 ** 14 &&
    bins < 2 ** 15;
  const id = small ? (lookback << 16) | (bins << 1) | (shorts ? 1 : 0) : -1;
  const kept = small ? THRESHOLDS_KEYS.get(id) : undefined;
  if (kept !== undefined) return kept;
  const key = `volume-profile:${lookback}:${bins}${shorts ? '' : ':long-only'}`;
  if (small && THRESHOLDS_KEYS.size < MOST_KEYS) THRESHOLDS_KEYS.set(id, key);
  return key;
}

const thresholdsBytes = (p: ProfileThresholds): number => p.bytes;

/**
 * The thresholds of (`lookback`, `bins`) on the cache's series, with `above` when `shorts` (a
 * long-only run's are apart: `ProfileThresholds.shorts`). A cached one is found without making the
 * functions that would build it (`IndicatorCache.find`).
 */
function profileThresholds(
  cache: IndicatorCache,
  lookback: number,
  bins: number,
  shorts: boolean,
): ProfileThresholds {
  const key = thresholdsKey(lookback, bins, shorts);
  const found = cache.find<ProfileThresholds>(key);
  if (found !== undefined) return found;
  const sides = shorts ? '' : ':long-only';
  return cache.get(
    key,
    () => {
      const bars = cache.get(
        'volume-profile-bars',
        () => new ProfileBars(cache.series),
        (b) => b.bytes,
      );
      const batch = cache.get(
        `volume-profile-batch:${bins}${sides}`,
        () => new ProfileBatch(cache.series, bins, bars, shorts),
        (b) => b.bytes,
      );
      // The cache's batches of this kind by bins, so that a batch finds its partner (twice or half
      // as many bins). Emptied with the cache; each batch registers again when asked. Asked after
      // the batch: a batch whose insertion emptied the cache then registers in the group that
      // lives on, not in one emptied with it.
      const group = cache.get(
        `volume-profile-batches${sides}`,
        () => new Map<number, ProfileBatch>(),
        (g) => 64 * (g.size + 1),
      );
      group.set(bins, batch);
      return batch.take(lookback, group);
    },
    thresholdsBytes,
  );
}

/**
 * The rule's condition bits at every close for one (lookback, bins, valueArea) and a run's
 * `direction`: a long-only run's have no `ENTER_SHORT` (it never enters short).
 */
function volumeProfileFlags(
  params: VolumeProfileParams,
  direction: Direction,
  cache: IndicatorCache,
  out?: Uint8Array,
): Uint8Array {
  const { lookback, bins, valueArea } = params;
  const shorts = direction === 'long-short';
  const p = profileThresholds(cache, lookback, bins, shorts);
  const { total, below, above, slack, bits } = p;
  const n = cache.series.close.length;
  const flags = codesArray(cache, out);
  flags.fill(0, 0, Math.min(lookback, n));
  if (!p.estimated) {
    const { high, low, volume, close } = cache.series;
    const into = new Float64Array(bins);
    for (let i = lookback; i < n; i++) {
      const profile = volumeProfile(
        high.subarray(i - lookback, i),
        low.subarray(i - lookback, i),
        volume.subarray(i - lookback, i),
        0,
        lookback,
        close[i - 1] as number,
        bins,
        valueArea,
        into,
      );
      const c = close[i] as number;
      flags[i] =
        profile === null
          ? 0
          : ruleFlags(c < profile.val, shorts && c > profile.vah, c >= profile.poc, c <= profile.poc);
    }
    return flags;
  }
  // No branch on the conditions (they flip at random from bar to bar): a bar with no profile has
  // both thresholds at -Infinity and no exit bits, so it reads 0 as well.
  if (p.marked(valueArea)) {
    for (let i = lookback; i < n; i++) {
      const target = valueArea * (total[i] as number);
      const s = slack[i] as number;
      if (
        s > 0 &&
        (Math.abs(target - (below[i] as number)) <= s ||
          (shorts && Math.abs(target - (above[i] as number)) <= s))
      ) {
        p.exact(i);
      }
      flags[i] =
        (ENTER_LONG * +(target <= (below[i] as number))) |
        (shorts ? ENTER_SHORT * +(target <= (above[i] as number)) : 0) |
        ((bits[i] as number) & (EXIT_LONG | EXIT_SHORT));
    }
    return flags;
  }
  // No target within slack of a threshold: the estimated thresholds decide every bar, four bars a
  // word where the codes array has words (`wordsOf`; bar 4w + j in byte j, the lowest first).
  const words = LITTLE_ENDIAN ? wordsOf(flags) : undefined;
  let i = lookback;
  if (words !== undefined) {
    const exits = p.bitWords;
    const mask = (EXIT_LONG | EXIT_SHORT) * 0x01010101;
    for (; i < n && (i & 3) !== 0; i++) {
      const target = valueArea * (total[i] as number);
      flags[i] =
        (ENTER_LONG * +(target <= (below[i] as number))) |
        (shorts ? ENTER_SHORT * +(target <= (above[i] as number)) : 0) |
        ((bits[i] as number) & (EXIT_LONG | EXIT_SHORT));
    }
    // A long-only run's codes: no ENTER_SHORT (no `above`).
    if (!shorts) {
      for (; i + 3 < n; i += 4) {
        words[i >> 2] =
          ((exits[i >> 2] as number) & mask) |
          (ENTER_LONG * +(valueArea * (total[i] as number) <= (below[i] as number))) |
          ((ENTER_LONG * +(valueArea * (total[i + 1] as number) <= (below[i + 1] as number))) << 8) |
          ((ENTER_LONG * +(valueArea * (total[i + 2] as number) <= (below[i + 2] as number))) << 16) |
          ((ENTER_LONG * +(valueArea * (total[i + 3] as number) <= (below[i + 3] as number))) << 24);
      }
    }
    for (; i + 3 < n; i += 4) {
      const t0 = valueArea * (total[i] as number);
      const t1 = valueArea * (total[i + 1] as number);
      const t2 = valueArea * (total[i + 2] as number);
      const t3 = valueArea * (total[i + 3] as number);
      words[i >> 2] =
        ((exits[i >> 2] as number) & mask) |
        (ENTER_LONG * +(t0 <= (below[i] as number))) |
        (ENTER_SHORT * +(t0 <= (above[i] as number))) |
        ((ENTER_LONG * +(t1 <= (below[i + 1] as number))) << 8) |
        ((ENTER_SHORT * +(t1 <= (above[i + 1] as number))) << 8) |
        ((ENTER_LONG * +(t2 <= (below[i + 2] as number))) << 16) |
        ((ENTER_SHORT * +(t2 <= (above[i + 2] as number))) << 16) |
        ((ENTER_LONG * +(t3 <= (below[i + 3] as number))) << 24) |
        ((ENTER_SHORT * +(t3 <= (above[i + 3] as number))) << 24);
    }
  }
  for (; i < n; i++) {
    const target = valueArea * (total[i] as number);
    flags[i] =
      (ENTER_LONG * +(target <= (below[i] as number))) |
      (shorts ? ENTER_SHORT * +(target <= (above[i] as number)) : 0) |
      ((bits[i] as number) & (EXIT_LONG | EXIT_SHORT));
  }
  return flags;
}

const REASONS: RuleReasons = {
  enterLong: 'close below the value area',
  enterShort: 'close above the value area',
  exitLong: 'close back at the point of control',
  exitShort: 'close back at the point of control',
};

class VolumeProfileReversion implements StrategyInstance {
  readonly warmup: number;
  private readonly high: Float64Array;
  private readonly low: Float64Array;
  private readonly volume: Float64Array;
  private readonly scratch: Float64Array;
  private readonly stop: AtrStop;
  /** Ring slot of the oldest bar once the window is full (the next one written). */
  private next = 0;
  private seen = 0;
  private previousClose = Number.NaN;

  constructor(
    private readonly params: VolumeProfileParams,
    private readonly direction: Direction,
  ) {
    this.high = new Float64Array(params.lookback);
    this.low = new Float64Array(params.lookback);
    this.volume = new Float64Array(params.lookback);
    this.scratch = new Float64Array(params.bins);
    this.stop = new AtrStop(params.atrStop, params.atrPeriod);
    this.warmup = Math.max(params.lookback, this.stop.warmup);
  }

  onBar(bar: Bar, context: DecisionContext): Intent {
    const { lookback, bins, valueArea } = this.params;
    // The profile of bars t-lookback .. t-1, built before this bar goes in.
    const profile =
      this.seen >= lookback
        ? volumeProfile(
            this.high,
            this.low,
            this.volume,
            this.next,
            lookback,
            this.previousClose,
            bins,
            valueArea,
            this.scratch,
          )
        : null;
    const slot = this.next;
    this.high[slot] = bar.high;
    this.low[slot] = bar.low;
    this.volume[slot] = bar.volume;
    this.next = slot + 1 === lookback ? 0 : slot + 1;
    this.seen++;
    this.previousClose = bar.close;
    this.stop.update(bar);
    // Warming up, or a window with no price range: no decision.
    if (profile === null) return HOLD;
    const close = bar.close;
    return decideRule(
      context.position,
      this.direction,
      ruleFlags(close < profile.val, close > profile.vah, close >= profile.poc, close <= profile.poc),
      REASONS,
      this.stop.k,
      this.stop.value,
      close,
    );
  }
}

/** Volume-profile reversion: long below the value area, short above it, out at the point of control. */
export const volumeProfileStrategy: StrategyDefinition<VolumeProfileParams> = {
  name: 'volume-profile',
  description:
    'Volume-profile reversion over the previous bars: long below the value area low, short above its high, exit at the point of control; optional k × ATR stop',
  params: volumeProfileParams,
  directions: DIRECTIONS,
  create: (params, run) => new VolumeProfileReversion(params, run.direction),
  vectorize: (params, run, cache, out) =>
    ruleVector(
      volumeProfileFlags(params, run.direction, cache, out),
      run.direction,
      REASONS,
      params.atrStop,
      params.atrPeriod,
      cache,
    ),
};
