import * as z from 'zod';
import type { Bar } from '../market/types.js';
import { AtrStop, atrStopParams, decideRule, type RuleReasons, ruleFlags, ruleVector } from './rule.js';
import {
  type DecisionContext,
  DIRECTIONS,
  type Direction,
  HOLD,
  type Intent,
  type StrategyDefinition,
  type StrategyInstance,
} from './types.js';
import { codesArray, type IndicatorCache } from './vector.js';

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

/**
 * Every bar's profile of the previous `lookback` bars over a whole series, with the value area's
 * whole growth path, so any `valueArea` is read back without rebuilding the histogram. Bar i's
 * window is bars i - lookback .. i - 1 (as the instance's ring buffers hold them); `steps[i]` is -1
 * where there is no profile.
 */
interface ProfilePaths {
  readonly lo: Float64Array;
  readonly width: Float64Array;
  readonly total: Float64Array;
  readonly pocBin: Int32Array;
  readonly steps: Int32Array;
  readonly held: Float64Array;
  readonly lowBin: Int32Array;
  readonly highBin: Int32Array;
}

function profilePaths(cache: IndicatorCache, lookback: number, bins: number): ProfilePaths {
  return cache.get(
    `volume-profile:${lookback}:${bins}`,
    () => {
      const { high, low, volume, close } = cache.series;
      const n = close.length;
      const paths: ProfilePaths = {
        lo: new Float64Array(n),
        width: new Float64Array(n),
        total: new Float64Array(n),
        pocBin: new Int32Array(n),
        steps: new Int32Array(n).fill(-1),
        held: new Float64Array(n * bins),
        lowBin: new Int32Array(n * bins),
        highBin: new Int32Array(n * bins),
      };
      const into = new Float64Array(bins);
      const window: ProfileWindow = { lo: 0, width: 0, total: 0, pocBin: 0 };
      const area: ValueArea = { lowBin: 0, highBin: 0 };
      const path = { held: paths.held, lowBin: paths.lowBin, highBin: paths.highBin, offset: 0 };
      for (let i = lookback; i < n; i++) {
        const first = i - lookback;
        if (
          !profileHistogram(high, low, volume, first, lookback, n, close[i - 1] as number, bins, into, window)
        )
          continue;
        paths.lo[i] = window.lo;
        paths.width[i] = window.width;
        paths.total[i] = window.total;
        paths.pocBin[i] = window.pocBin;
        path.offset = i * bins;
        paths.steps[i] = growValueArea(into, bins, window.pocBin, Number.POSITIVE_INFINITY, area, path);
      }
      return paths;
    },
    (p) => p.held.byteLength + p.lowBin.byteLength + p.highBin.byteLength + 5 * 8 * p.lo.length,
  );
}

/** The rule's condition bits at every close for one (lookback, bins, valueArea). */
function volumeProfileFlags(
  params: VolumeProfileParams,
  cache: IndicatorCache,
  out?: Uint8Array,
): Uint8Array {
  const { lookback, bins, valueArea } = params;
  const p = profilePaths(cache, lookback, bins);
  const close = cache.series.close;
  const flags = codesArray(cache, out);
  flags.fill(0, 0, Math.min(lookback, close.length));
  for (let i = lookback; i < close.length; i++) {
    const last = p.steps[i] as number;
    if (last < 0) {
      flags[i] = 0;
      continue;
    }
    const target = valueArea * (p.total[i] as number);
    const offset = i * bins;
    let s = 0;
    while (s < last && (p.held[offset + s] as number) < target) s++;
    const lo = p.lo[i] as number;
    const width = p.width[i] as number;
    const val = lo + (p.lowBin[offset + s] as number) * width;
    const vah = lo + ((p.highBin[offset + s] as number) + 1) * width;
    const poc = lo + ((p.pocBin[i] as number) + 0.5) * width;
    const c = close[i] as number;
    flags[i] = ruleFlags(c < val, c > vah, c >= poc, c <= poc);
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
      volumeProfileFlags(params, cache, out),
      run.direction,
      REASONS,
      params.atrStop,
      params.atrPeriod,
      cache,
    ),
};
