import * as z from 'zod';
import { Bollinger as BollingerBands, bollingerMeanDeviation } from '../indicators/index.js';
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
import { codesArray, type IndicatorCache } from './vector.js';

export const bollingerParams = z
  .object({
    period: z
      .number()
      .int()
      .min(2)
      .default(20)
      .describe('bands over the last `period` closes, bar t included'),
    k: z.number().positive().default(2).describe('band width in population standard deviations'),
    ...atrStopParams,
  })
  .strict();

export type BollingerParams = z.infer<typeof bollingerParams>;

const REASONS: RuleReasons = {
  enterLong: 'close below the lower band',
  enterShort: 'close above the upper band',
  exitLong: 'close above the middle band',
  exitShort: 'close below the middle band',
};

class BollingerReversion implements StrategyInstance {
  readonly warmup: number;
  private readonly bands: BollingerBands;
  private readonly stop: AtrStop;

  constructor(
    params: BollingerParams,
    private readonly direction: Direction,
  ) {
    this.bands = new BollingerBands(params.period, params.k);
    this.stop = new AtrStop(params.atrStop, params.atrPeriod);
    this.warmup = Math.max(this.bands.warmup, this.stop.warmup);
  }

  onBar(bar: Bar, context: DecisionContext): Intent {
    const bands = this.bands;
    const middle = bands.update(bar.close);
    this.stop.update(bar);
    if (Number.isNaN(middle)) return HOLD;
    const close = bar.close;
    return decideRule(
      context.position,
      this.direction,
      ruleFlags(close < bands.lower, close > bands.upper, close > middle, close < middle),
      REASONS,
      this.stop.k,
      this.stop.value,
      close,
    );
  }
}

/** Bollinger band reversion: long below the lower band, short above the upper, out at the middle. */
export const bollinger: StrategyDefinition<BollingerParams> = {
  name: 'bollinger',
  description:
    'Bollinger band reversion (SMA ± k population sd): long below the lower band, short above the upper, exit past the middle; optional k × ATR stop',
  params: bollingerParams,
  directions: DIRECTIONS,
  create: (params, run) => new BollingerReversion(params, run.direction),
  vectorize: (params, run, cache, out) =>
    ruleVector(
      bollingerFlags(params, cache, out),
      run.direction,
      REASONS,
      params.atrStop,
      params.atrPeriod,
      cache,
    ),
};

/**
 * The rule's condition bits at every close. The mean, the deviation and the exit bits (the close
 * against the middle band, which flips often) depend on the period alone and are shared across
 * every `k`; a combination adds only its entry bits (the close beyond a band, rare).
 */
function bollingerFlags(params: BollingerParams, cache: IndicatorCache, out?: Uint8Array): Uint8Array {
  const close = cache.series.close;
  const k = params.k;
  const flags = codesArray(cache, out);
  // Whether this call computed the period's arrays: then their loop also wrote the flags.
  let written = false;
  const [mean, deviation, exits] = cache.get(
    `bollinger:${params.period}`,
    () => {
      // The deviation does not depend on k; the bands are mean ± k × deviation, as the indicator computes them.
      // One buffer for the three (one allocation, not three).
      const length = close.length;
      const buffer = new ArrayBuffer(length * 17);
      const m = new Float64Array(buffer, 0, length);
      const d = new Float64Array(buffer, length * 8, length);
      const x = new Uint8Array(buffer, length * 16, length);
      bollingerMeanDeviation(close, params.period, m, d);
      for (let i = 0; i < close.length; i++) {
        const middle = m[i] as number;
        const c = close[i] as number;
        // A NaN middle (warming up): every comparison is false and the bits are 0.
        const exit = ruleFlags(false, false, c > middle, c < middle);
        x[i] = exit;
        const width = k * (d[i] as number);
        flags[i] = exit | (c < middle - width ? ENTER_LONG : 0) | (c > middle + width ? ENTER_SHORT : 0);
      }
      written = true;
      return [m, d, x] as const;
    },
    ([m, d, x]) => m.byteLength + d.byteLength + x.byteLength,
  );
  if (written) return flags;
  const n = flags.length;
  for (let i = 0; i < n; i++) {
    const middle = mean[i] as number;
    const c = close[i] as number;
    // A NaN middle (warming up): every comparison is false and the exit bits are 0.
    const width = k * (deviation[i] as number);
    // The entry bits as `ruleFlags` sets them, written out (this loop runs once per combination).
    flags[i] =
      (exits[i] as number) | (c < middle - width ? ENTER_LONG : 0) | (c > middle + width ? ENTER_SHORT : 0);
  }
  return flags;
}
