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
import { codesArray } from './vector.js';

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
    // The exit bits (the RSI past `exit`, which flips often) are shared by every `entry`; a
    // combination adds only its entry bits (the RSI beyond `entry`, rare).
    const exits = cache.get(
      `rsi-exit:${params.period}:${exit}`,
      () => {
        const bits = new Uint8Array(close.length);
        for (let i = 0; i < close.length; i++) {
          const value = rsi[i] as number;
          if (Number.isNaN(value)) continue;
          bits[i] = ruleFlags(false, false, value > exit, value < 100 - exit);
        }
        return bits;
      },
      (bits) => bits.byteLength,
    );
    const flags = codesArray(cache, out);
    const overbought = 100 - entry;
    const n = flags.length;
    for (let i = 0; i < n; i++) {
      const value = rsi[i] as number;
      // A NaN RSI (warming up): every comparison is false and the exit bits are 0. The entry bits
      // as `ruleFlags` sets them, written out (this loop runs once per combination).
      flags[i] =
        (exits[i] as number) | (value < entry ? ENTER_LONG : 0) | (value > overbought ? ENTER_SHORT : 0);
    }
    return ruleVector(flags, run.direction, REASONS, params.atrStop, params.atrPeriod, cache);
  },
};
