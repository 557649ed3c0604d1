import * as z from 'zod';
import { Rsi } from '../indicators/index.js';
import type { Bar } from '../market/types.js';
import {
  AtrStop,
  atrStopParams,
  decideRule,
  ENTER_LONG,
  ENTER_SHORT,
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
import { codesArray, paddedBytes, wordsOf } from './vector.js';

export const rsiReversionParams = z
  .object({
    period: z.number().int().min(1).default(14).describe("RSI period (Wilder's smoothing)"),
    entry: z
      .number()
      .gt(0)
      .max(50)
      .default(30)
      .describe('flat: RSI below entry goes long, above 100 - entry goes short'),
    exit: z
      .number()
      .gt(0)
      .lt(100)
      .default(50)
      .describe('long: RSI above exit exits; short: RSI below 100 - exit exits'),
    ...atrStopParams,
  })
  .strict();

export type RsiReversionParams = z.infer<typeof rsiReversionParams>;

const REASONS: RuleReasons = {
  enterLong: 'rsi below entry',
  enterShort: 'rsi above 100 - entry',
  exitLong: 'rsi above exit',
  exitShort: 'rsi below 100 - exit',
};

class RsiReversion implements StrategyInstance {
  readonly warmup: number;
  private readonly rsi: Rsi;
  private readonly stop: AtrStop;

  constructor(
    private readonly params: RsiReversionParams,
    private readonly direction: Direction,
  ) {
    this.rsi = new Rsi(params.period);
    this.stop = new AtrStop(params.atrStop, params.atrPeriod);
    this.warmup = Math.max(this.rsi.warmup, this.stop.warmup);
  }

  onBar(bar: Bar, context: DecisionContext): Intent {
    const value = this.rsi.update(bar.close);
    this.stop.update(bar);
    if (Number.isNaN(value)) return HOLD;
    const { entry, exit } = this.params;
    return decideRule(
      context.position,
      this.direction,
      ruleFlags(value < entry, value > 100 - entry, value > exit, value < 100 - exit),
      REASONS,
      this.stop.k,
      this.stop.value,
      bar.close,
    );
  }
}

/** Writes each bar's entry bits (the RSI below `entry`, above `100 - entry`) into `bits`. */
function entryBits(rsi: Float64Array, entry: number, bits: Uint8Array): void {
  const overbought = 100 - entry;
  for (let i = 0; i < rsi.length; i++) {
    const value = rsi[i] as number;
    // A NaN RSI (warming up): both comparisons are false, as `ruleFlags` sets them.
    bits[i] = (value < entry ? ENTER_LONG : 0) | (value > overbought ? ENTER_SHORT : 0);
  }
}

/** RSI mean reversion: long when oversold, short when overbought, out when the RSI recovers. */
export const rsiReversion: StrategyDefinition<RsiReversionParams> = {
  name: 'rsi-reversion',
  description:
    "RSI mean reversion (Wilder's RSI): long below entry, short above 100 - entry, exit past exit; optional k × ATR stop",
  params: rsiReversionParams,
  directions: DIRECTIONS,
  create: (params, run) => new RsiReversion(params, run.direction),
  vectorize(params, run, cache, out) {
    const close = cache.series.close;
    const rsi = cache.array(`rsi:${params.period}`, (out) => {
      const indicator = new Rsi(params.period);
      for (let i = 0; i < out.length; i++) out[i] = indicator.update(close[i] as number);
    });
    const { entry, exit } = params;
    // The exit bits (the RSI past `exit`) are shared by every `entry`, the entry bits (the RSI
    // beyond `entry`) by every `exit`: a combination ORs the two, four codes at a time. The entry
    // bits of a period are kept for the last `entry` asked (a grid's `exit` values in a row reuse them).
    const exits = cache.get(
      `rsi-exit:${params.period}:${exit}`,
      () => {
        const bits = paddedBytes(close.length);
        for (let i = 0; i < close.length; i++) {
          const value = rsi[i] as number;
          if (Number.isNaN(value)) continue;
          bits[i] = ruleFlags(false, false, value > exit, value < 100 - exit);
        }
        return new Uint32Array(bits.buffer);
      },
      (words) => words.byteLength,
    );
    const entries = cache.get(
      `rsi-entry:${params.period}`,
      () => {
        const bits = paddedBytes(close.length);
        return { entry: Number.NaN, bits, words: new Uint32Array(bits.buffer) };
      },
      (held) => held.words.byteLength,
    );
    if (entries.entry !== entry) {
      entryBits(rsi, entry, entries.bits);
      entries.entry = entry;
    }
    const flags = codesArray(cache, out);
    const words = wordsOf(flags);
    if (words === undefined) {
      const entryBytes = entries.bits;
      const exitBytes = new Uint8Array(exits.buffer);
      for (let i = 0; i < flags.length; i++) {
        flags[i] = (exitBytes[i] as number) | (entryBytes[i] as number);
      }
    } else {
      const entryWords = entries.words;
      for (let w = 0; w < words.length; w++) words[w] = (exits[w] as number) | (entryWords[w] as number);
    }
    return ruleVector(flags, run.direction, REASONS, params.atrStop, params.atrPeriod, cache);
  },
};
