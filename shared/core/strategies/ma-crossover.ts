import * as z from 'zod';
import { InvalidParameterError } from '../errors.js';
import { Ema, Sma } from '../indicators/index.js';
import type { Bar } from '../market/types.js';
import { AtrStop, atrStopParams, enterWithStop } from './rule.js';
import {
  type DecisionContext,
  DIRECTIONS,
  type Direction,
  HOLD,
  type Intent,
  type PositionSide,
  type StrategyDefinition,
  type StrategyInstance,
} from './types.js';
import { codesArray, type IndicatorCache } from './vector.js';

/**
 * The crossover rule, shared by the strategy and the sweep kernel: +1 when the fast average crosses
 * above the slow one on this bar (fast[t-1] < slow[t-1] and fast[t] > slow[t]), -1 for the mirror,
 * 0 otherwise (including while either average is still warming up: NaN compares false).
 */
export function crossDirection(fastPrev: number, slowPrev: number, fast: number, slow: number): -1 | 0 | 1 {
  if (fastPrev < slowPrev && fast > slow) return 1;
  if (fastPrev > slowPrev && fast < slow) return -1;
  return 0;
}

export const maCrossoverParams = z
  .object({
    fast: z.number().int().min(1).default(10).describe('fast moving-average period'),
    slow: z.number().int().min(2).default(30).describe('slow moving-average period (above fast)'),
    ma: z.enum(['sma', 'ema']).default('sma').describe('moving-average kind'),
    ...atrStopParams,
  })
  .strict()
  .refine((p) => p.fast < p.slow, { message: 'fast must be less than slow', path: ['fast'] });

export type MaCrossoverParams = z.infer<typeof maCrossoverParams>;

interface MovingAverage {
  update(value: number): number;
}

function movingAverage(kind: 'sma' | 'ema', period: number): MovingAverage {
  return kind === 'sma' ? new Sma(period) : new Ema(period);
}

class MaCrossover implements StrategyInstance {
  readonly warmup: number;
  private readonly fastMa: MovingAverage;
  private readonly slowMa: MovingAverage;
  private readonly stop: AtrStop;
  private readonly longShort: boolean;
  private fastPrev = Number.NaN;
  private slowPrev = Number.NaN;

  constructor(
    private readonly params: MaCrossoverParams,
    direction: Direction,
  ) {
    this.fastMa = movingAverage(params.ma, params.fast);
    this.slowMa = movingAverage(params.ma, params.slow);
    this.stop = new AtrStop(params.atrStop, params.atrPeriod);
    this.longShort = direction === 'long-short';
    this.warmup = Math.max(params.slow, params.atrStop === undefined ? 0 : params.atrPeriod + 1);
  }

  onBar(bar: Bar, context: DecisionContext): Intent {
    const fast = this.fastMa.update(bar.close);
    const slow = this.slowMa.update(bar.close);
    this.stop.update(bar);
    const cross = crossDirection(this.fastPrev, this.slowPrev, fast, slow);
    this.fastPrev = fast;
    this.slowPrev = slow;
    if (cross === 0) return HOLD;
    return crossIntent(cross, context.position, this.longShort, this.stop.k, this.stop.value, bar.close);
  }

  indicators(): Readonly<Record<string, number>> {
    const ma = this.params.ma.toUpperCase();
    return { [`${ma} ${this.params.fast}`]: this.fastPrev, [`${ma} ${this.params.slow}`]: this.slowPrev };
  }
}

/**
 * The decision at a cross (+1 up, -1 down) for a position: a cross up enters long (or, long-only,
 * exits a short); a cross down exits a long (long-only) or enters short (long-short, a reversal from
 * a long). The entry's stop is k × `atr` from the close.
 */
export function crossIntent(
  cross: -1 | 1,
  position: PositionSide,
  longShort: boolean,
  k: number | undefined,
  atr: number,
  close: number,
): Intent {
  if (cross === 1) {
    if (position === 'long') return HOLD;
    if (position === 'short' && !longShort) return { action: 'exit', reason: 'cross up' };
    return enterWithStop(k, atr, 'long', close, 'cross up');
  }
  if (position === 'short') return HOLD;
  if (!longShort) return position === 'long' ? { action: 'exit', reason: 'cross down' } : HOLD;
  return enterWithStop(k, atr, 'short', close, 'cross down');
}

const CROSS_UP = 1;
const CROSS_DOWN = 2;

/** A moving average at each bar, shared by every pair that uses its period. */
function averageArray(cache: IndicatorCache, kind: 'sma' | 'ema', period: number): Float64Array {
  return cache.array(`${kind}:${period}`, (out) => {
    const average = movingAverage(kind, period);
    const close = cache.series.close;
    for (let i = 0; i < out.length; i++) out[i] = average.update(close[i] as number);
  });
}

/** Moving-average crossover: long on a cross up; exit (long-only) or reverse (long-short) on a cross down. */
export const maCrossover: StrategyDefinition<MaCrossoverParams> = {
  name: 'ma-crossover',
  description: 'Fast/slow moving-average crossover (SMA or EMA) with an optional k × ATR protective stop',
  params: maCrossoverParams,
  directions: DIRECTIONS,
  create(params, run) {
    if (params.fast >= params.slow) throw new InvalidParameterError('fast must be less than slow');
    return new MaCrossover(params, run.direction);
  },
  vectorize(params, run, cache, out) {
    if (params.fast >= params.slow) throw new InvalidParameterError('fast must be less than slow');
    const fast = averageArray(cache, params.ma, params.fast);
    const slow = averageArray(cache, params.ma, params.slow);
    const n = fast.length;
    const codes = codesArray(cache, out);
    // `crossDirection` at every bar, its comparisons written out without branches (this loop runs
    // once per pair): each bar's two comparisons are kept for the next, and a comparison with a NaN
    // (an average warming up, or before the first bar) is false, as there.
    let below = 0;
    let above = 0;
    for (let i = 0; i < n; i++) {
      const f = fast[i] as number;
      const s = slow[i] as number;
      const nowBelow = Number(f < s);
      const nowAbove = Number(f > s);
      codes[i] = (below & nowAbove) * CROSS_UP + (above & nowBelow) * CROSS_DOWN;
      below = nowBelow;
      above = nowAbove;
    }
    const longShort = run.direction === 'long-short';
    const atr = params.atrStop === undefined ? undefined : cache.atr(params.atrPeriod);
    const close = cache.series.close;
    return {
      codes,
      flatMask: CROSS_UP | (longShort ? CROSS_DOWN : 0),
      longMask: CROSS_DOWN,
      shortMask: CROSS_UP,
      decide: (bar, position) =>
        crossIntent(
          codes[bar] === CROSS_UP ? 1 : -1,
          position,
          longShort,
          params.atrStop,
          atr === undefined ? Number.NaN : (atr[bar] as number),
          close[bar] as number,
        ),
    };
  },
};
