import * as z from 'zod';
import type { Bar } from '../market/types.js';
import { AtrStop, atrStopParams, decideRule, type RuleReasons } from './rule.js';
import {
  type DecisionContext,
  DIRECTIONS,
  type Direction,
  HOLD,
  type Intent,
  type StrategyDefinition,
  type StrategyInstance,
} from './types.js';

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

/**
 * The volume profile of `count` bars held oldest first from `first` in ring buffers of that length
 * (`high`, `low`, `volume`), or null when the window has no price range.
 *
 * `bins` equal-width bins from the window's lowest low to its highest high; bin i spans
 * [low + i × width, low + (i + 1) × width). Each bar's volume is spread over the bins its [low, high]
 * overlaps in proportion to the overlap; a bar with high == low puts it all in bin
 * floor((price - low) / width), capped at bins - 1. POC: the bin with the most volume (ties: the
 * midpoint nearest `previousClose`, then the lower bin). The value area grows from the POC bin by
 * the neighbour with more volume (ties: the one above; at an edge, the other side) until it holds at
 * least `valueArea` of the window's volume. `into` is scratch of at least `bins` values.
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
  let lo = Number.POSITIVE_INFINITY;
  let hi = Number.NEGATIVE_INFINITY;
  for (let j = 0; j < count; j++) {
    const k = (first + j) % count;
    if ((low[k] as number) < lo) lo = low[k] as number;
    if ((high[k] as number) > hi) hi = high[k] as number;
  }
  if (!(hi > lo)) return null;
  const width = (hi - lo) / bins;
  into.fill(0, 0, bins);
  let total = 0;
  for (let j = 0; j < count; j++) {
    const k = (first + j) % count;
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
  let lowBin = poc;
  let highBin = poc;
  let held = best;
  const target = valueArea * total;
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
  }
  return {
    poc: lo + (poc + 0.5) * width,
    val: lo + lowBin * width,
    vah: lo + (highBin + 1) * width,
    pocBin: poc,
    lowBin,
    highBin,
  };
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
      {
        enterLong: close < profile.val,
        enterShort: close > profile.vah,
        exitLong: close >= profile.poc,
        exitShort: close <= profile.poc,
      },
      REASONS,
      this.stop,
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
};
