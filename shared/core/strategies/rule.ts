import * as z from 'zod';
import { Atr } from '../indicators/index.js';
import type { Bar } from '../market/types.js';
import { type Direction, HOLD, type Intent, type PositionSide } from './types.js';

/**
 * The optional protective stop every strategy accepts: `atrStop` k puts the stop k × ATR(`atrPeriod`)
 * from the decision close. Spread into a strategy's (strict) params object.
 */
export const atrStopParams = {
  atrStop: z
    .number()
    .positive()
    .optional()
    .describe('protective stop at k x ATR from the decision close (absent: no strategy stop)'),
  atrPeriod: z.number().int().min(1).default(14).describe('ATR period of the protective stop'),
};

/** The protective stop of an entry: k × ATR from the decision close, or none when `k` is absent. */
export class AtrStop {
  /** Index of the first bar whose ATR exists (0 without a stop). */
  readonly warmup: number;
  private readonly atr: Atr | undefined;
  private current = Number.NaN;

  constructor(
    private readonly k: number | undefined,
    period: number,
  ) {
    this.atr = k === undefined ? undefined : new Atr(period);
    this.warmup = k === undefined ? 0 : period;
  }

  /** Feeds the bar (every bar, in order). */
  update(bar: Bar): void {
    if (this.atr !== undefined) this.current = this.atr.update(bar.high, bar.low, bar.close);
  }

  /**
   * An entry at the next open, with its stop when the strategy has one. No stop can be set while the
   * ATR is warming up (or when it would not be a positive price): such an entry is not taken.
   */
  enter(side: 'long' | 'short', close: number, reason: string): Intent {
    const k = this.k;
    if (k === undefined) return { action: 'enter', side, reason };
    const atr = this.current;
    if (!(atr > 0)) return HOLD;
    const stopLoss = side === 'long' ? close - k * atr : close + k * atr;
    if (!(stopLoss > 0)) return HOLD;
    return { action: 'enter', side, reason, stopLoss, atr };
  }
}

/** What a position rule says at a close; each flag is false while a value it reads is missing. */
export interface RuleSignals {
  readonly enterLong: boolean;
  readonly enterShort: boolean;
  readonly exitLong: boolean;
  readonly exitShort: boolean;
}

/** The reason each decision of a rule carries. */
export interface RuleReasons {
  readonly enterLong: string;
  readonly enterShort: string;
  readonly exitLong: string;
  readonly exitShort: string;
}

/**
 * The decision of a position rule (flat → enter, long/short → exit): a held position only ever
 * exits (an exit and an entry never fall on the same bar); a flat one enters long, or short when the
 * run is long-short (a long-only run ignores the short side). A long entry wins when both fire.
 */
export function decideRule(
  position: PositionSide,
  direction: Direction,
  signals: RuleSignals,
  reasons: RuleReasons,
  stop: AtrStop,
  close: number,
): Intent {
  if (position === 'long') return signals.exitLong ? { action: 'exit', reason: reasons.exitLong } : HOLD;
  if (position === 'short') return signals.exitShort ? { action: 'exit', reason: reasons.exitShort } : HOLD;
  if (signals.enterLong) return stop.enter('long', close, reasons.enterLong);
  if (signals.enterShort && direction === 'long-short') return stop.enter('short', close, reasons.enterShort);
  return HOLD;
}
