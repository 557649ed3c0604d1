import * as z from 'zod';
import { Highest, Lowest } from '../indicators/index.js';
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
import { codesArray, type IndicatorCache, paddedBytes, wordsOf } from './vector.js';

export const breakoutParams = z
  .object({
    entry: z.number().int().min(1).default(20).describe('entry channel: the previous `entry` bars'),
    exit: z.number().int().min(1).default(10).describe('exit channel: the previous `exit` bars'),
    ...atrStopParams,
  })
  .strict();

export type BreakoutParams = z.infer<typeof breakoutParams>;

const REASONS: RuleReasons = {
  enterLong: 'close above the entry channel',
  enterShort: 'close below the entry channel',
  exitLong: 'close below the exit channel',
  exitShort: 'close above the exit channel',
};

/**
 * The Donchian channels of the previous bars: the extremes are read before bar t is added, so
 * upper(n) = max(high[t-n .. t-1]) and lower(n) = min(low[t-n .. t-1]).
 */
class Breakout implements StrategyInstance {
  readonly warmup: number;
  private readonly upperEntry: Highest;
  private readonly lowerEntry: Lowest;
  private readonly upperExit: Highest;
  private readonly lowerExit: Lowest;
  private readonly stop: AtrStop;

  constructor(
    params: BreakoutParams,
    private readonly direction: Direction,
  ) {
    this.upperEntry = new Highest(params.entry);
    this.lowerEntry = new Lowest(params.entry);
    this.upperExit = new Highest(params.exit);
    this.lowerExit = new Lowest(params.exit);
    this.stop = new AtrStop(params.atrStop, params.atrPeriod);
    this.warmup = Math.max(params.entry, params.exit, this.stop.warmup);
  }

  onBar(bar: Bar, context: DecisionContext): Intent {
    // Channels over t-n .. t-1: read before this bar goes in.
    const upperEntry = this.upperEntry.value;
    const lowerEntry = this.lowerEntry.value;
    const upperExit = this.upperExit.value;
    const lowerExit = this.lowerExit.value;
    this.upperEntry.update(bar.high);
    this.lowerEntry.update(bar.low);
    this.upperExit.update(bar.high);
    this.lowerExit.update(bar.low);
    this.stop.update(bar);
    // NaN while either channel is warming up: no decision before both exist.
    if (Number.isNaN(upperEntry + upperExit)) return HOLD;
    const close = bar.close;
    return decideRule(
      context.position,
      this.direction,
      ruleFlags(close > upperEntry, close < lowerEntry, close < lowerExit, close > upperExit),
      REASONS,
      this.stop.k,
      this.stop.value,
      close,
    );
  }
}

/** Donchian breakout: long above the previous `entry` bars' high, out below the previous `exit` bars' low. */
export const breakout: StrategyDefinition<BreakoutParams> = {
  name: 'breakout',
  description:
    "Donchian breakout over the previous bars: long above the entry channel's high, short below its low, exit on the exit channel; optional k × ATR stop",
  params: breakoutParams,
  directions: DIRECTIONS,
  create: (params, run) => new Breakout(params, run.direction),
  vectorize(params, run, cache, out) {
    // The entry bits depend on the entry period alone and the exit bits on the exit period alone:
    // each is computed once per period and a combination ORs the two (no bit while either
    // channel is warming up, as `onBar` holds until both exist).
    const entry = channelBits(cache, 'entry', params.entry);
    const exit = channelBits(cache, 'exit', params.exit);
    const flags = codesArray(cache, out);
    const flagWords = wordsOf(flags);
    const entryWords = wordsOf(entry);
    const exitWords = wordsOf(exit);
    if (flagWords !== undefined && entryWords !== undefined && exitWords !== undefined) {
      // The same per byte, four bytes a step: a byte whose two channels are ready keeps its bits
      // but the ready bit; any other byte (and the padding) is 0.
      for (let w = 0; w < flagWords.length; w++) {
        const e = entryWords[w] as number;
        const x = exitWords[w] as number;
        const ready = ((e & x & READY_WORD) >>> 4) * 0xff;
        flagWords[w] = (e | x) & ~READY_WORD & ready;
      }
    } else {
      for (let i = 0; i < flags.length; i++) {
        const e = entry[i] as number;
        const x = exit[i] as number;
        flags[i] = e & x & CHANNEL_READY ? (e | x) & ~CHANNEL_READY : 0;
      }
    }
    return ruleVector(flags, run.direction, REASONS, params.atrStop, params.atrPeriod, cache);
  },
};

/** The bit of `channelBits` set where the channel exists (its upper side is not NaN). */
const CHANNEL_READY = 16;
/** `CHANNEL_READY` in each byte of a word. */
const READY_WORD = CHANNEL_READY * 0x01010101;

/**
 * The rule's bits of one channel at each close: the entry channel's (close above its high: enter
 * long; below its low: enter short) or the exit channel's (close below its low: exit long; above
 * its high: exit short), with `CHANNEL_READY` where the channel exists.
 */
function channelBits(cache: IndicatorCache, role: 'entry' | 'exit', period: number): Uint8Array {
  return cache.get(
    `breakout-${role}:${period}`,
    () => {
      const close = cache.series.close;
      const upper = channel(cache, 'high', period);
      const lower = channel(cache, 'low', period);
      const bits = paddedBytes(close.length);
      for (let i = 0; i < close.length; i++) {
        const high = upper[i] as number;
        if (Number.isNaN(high)) continue;
        const c = close[i] as number;
        const low = lower[i] as number;
        bits[i] =
          CHANNEL_READY |
          (role === 'entry'
            ? ruleFlags(c > high, c < low, false, false)
            : ruleFlags(false, false, c < low, c > high));
      }
      return bits;
    },
    (bits) => bits.byteLength,
  );
}

/** The channel over the previous `period` bars at each bar (read before the bar goes in, as `onBar` does). */
function channel(cache: IndicatorCache, side: 'high' | 'low', period: number): Float64Array {
  return cache.array(`channel:${side}:${period}`, (out) => {
    const values = cache.series[side];
    const extreme = side === 'high' ? new Highest(period) : new Lowest(period);
    for (let i = 0; i < out.length; i++) {
      out[i] = extreme.value;
      extreme.update(values[i] as number);
    }
  });
}
