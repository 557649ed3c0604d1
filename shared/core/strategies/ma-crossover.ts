import * as z from 'zod';
import { InvalidParameterError } from '../errors.js';
import { Atr, Ema, Sma } from '../indicators/index.js';
import type { Bar } from '../market/types.js';
import {
  type DecisionContext,
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
    fast: z.number().int().min(1).default(10),
    slow: z.number().int().min(2).default(30),
    ma: z.enum(['sma', 'ema']).default('sma'),
    direction: z.enum(['long-only', 'long-short']).default('long-only'),
    /** Protective stop at k × ATR from the decision close; absent means no strategy stop. */
    atrStop: z.number().positive().optional(),
    atrPeriod: z.number().int().min(1).default(14),
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
  private readonly atr: Atr | undefined;
  private fastPrev = Number.NaN;
  private slowPrev = Number.NaN;

  constructor(private readonly params: MaCrossoverParams) {
    this.fastMa = movingAverage(params.ma, params.fast);
    this.slowMa = movingAverage(params.ma, params.slow);
    this.atr = params.atrStop === undefined ? undefined : new Atr(params.atrPeriod);
    this.warmup = Math.max(params.slow, params.atrStop === undefined ? 0 : params.atrPeriod + 1);
  }

  onBar(bar: Bar, context: DecisionContext): Intent {
    const fast = this.fastMa.update(bar.close);
    const slow = this.slowMa.update(bar.close);
    const atr = this.atr === undefined ? Number.NaN : this.atr.update(bar.high, bar.low, bar.close);
    const cross = crossDirection(this.fastPrev, this.slowPrev, fast, slow);
    this.fastPrev = fast;
    this.slowPrev = slow;
    if (cross === 0) return HOLD;

    const { position } = context;
    const longShort = this.params.direction === 'long-short';
    if (cross === 1) {
      if (position === 'long') return HOLD;
      if (position === 'short' && !longShort) return { action: 'exit', reason: 'cross up' };
      return this.enter('long', bar.close, atr);
    }
    if (position === 'short') return HOLD;
    if (!longShort) return position === 'long' ? { action: 'exit', reason: 'cross down' } : HOLD;
    return this.enter('short', bar.close, atr);
  }

  indicators(): Readonly<Record<string, number>> {
    const ma = this.params.ma.toUpperCase();
    return { [`${ma} ${this.params.fast}`]: this.fastPrev, [`${ma} ${this.params.slow}`]: this.slowPrev };
  }

  private enter(side: 'long' | 'short', close: number, atr: number): Intent {
    const reason = side === 'long' ? 'cross up' : 'cross down';
    const k = this.params.atrStop;
    if (k === undefined) return { action: 'enter', side, reason };
    // No stop can be set while the ATR is warming up; an entry without its stop is not taken.
    if (!(atr > 0)) return HOLD;
    const stopLoss = side === 'long' ? close - k * atr : close + k * atr;
    if (!(stopLoss > 0)) return HOLD;
    return { action: 'enter', side, reason, stopLoss, atr };
  }
}

/** Moving-average crossover: long on a cross up; exit (long-only) or reverse (long-short) on a cross down. */
export const maCrossover: StrategyDefinition<MaCrossoverParams> = {
  name: 'ma-crossover',
  description: 'Fast/slow moving-average crossover (SMA or EMA) with an optional k × ATR protective stop',
  params: maCrossoverParams,
  create(params) {
    if (params.fast >= params.slow) throw new InvalidParameterError('fast must be less than slow');
    return new MaCrossover(params);
  },
};
