import * as z from 'zod';
import { InvalidParameterError } from '../errors.js';
import { Ema, Sma } from '../indicators/index.js';
import type { Bar } from '../market/types.js';
import { AtrStop, atrStopParams } from './rule.js';
import {
  type DecisionContext,
  DIRECTIONS,
  type Direction,
  HOLD,
  type Intent,
  type StrategyDefinition,
  type StrategyInstance,
} from './types.js';

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

  constructor(params: MaCrossoverParams, direction: Direction) {
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

    const { position } = context;
    const longShort = this.longShort;
    if (cross === 1) {
      if (position === 'long') return HOLD;
      if (position === 'short' && !longShort) return { action: 'exit', reason: 'cross up' };
      return this.stop.enter('long', bar.close, 'cross up');
    }
    if (position === 'short') return HOLD;
    if (!longShort) return position === 'long' ? { action: 'exit', reason: 'cross down' } : HOLD;
    return this.stop.enter('short', bar.close, 'cross down');
  }
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
};
