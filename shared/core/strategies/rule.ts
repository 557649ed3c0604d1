import * as z from 'zod';
import { Atr } from '../indicators/index.js';
import type { Bar } from '../market/types.js';
import type { Writable } from '../writable.js';
import { type Direction, type EnterIntent, HOLD, type Intent, type PositionSide } from './types.js';
import type { IndicatorCache, VectorRule } from './vector.js';

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
    readonly k: number | undefined,
    period: number,
  ) {
    this.atr = k === undefined ? undefined : new Atr(period);
    this.warmup = k === undefined ? 0 : period;
  }

  /** Feeds the bar (every bar, in order). */
  update(bar: Bar): void {
    if (this.atr !== undefined) this.current = this.atr.update(bar.high, bar.low, bar.close);
  }

  /** The ATR after the last bar (NaN while warming up or without a stop). */
  get value(): number {
    return this.current;
  }

  /**
   * An entry at the next open, with its stop when the strategy has one. No stop can be set while the
   * ATR is warming up (or when it would not be a positive price): such an entry is not taken.
   */
  enter(side: 'long' | 'short', close: number, reason: string): Intent {
    return enterWithStop(this.k, this.current, side, close, reason);
  }
}

/**
 * An entry with its k × ATR stop (`k` undefined: none); HOLD when the stop cannot be set. With
 * `into` (`ruleIntents`), the entry is that object rewritten, valid until the next call with it.
 */
export function enterWithStop(
  k: number | undefined,
  atr: number,
  side: 'long' | 'short',
  close: number,
  reason: string,
  into?: RuleIntents,
): Intent {
  if (k === undefined) {
    if (into === undefined) return { action: 'enter', side, reason };
    const entry = into.entry as Writable<EnterIntent>;
    entry.side = side;
    entry.reason = reason;
    return entry;
  }
  if (!(atr > 0)) return HOLD;
  const stopLoss = side === 'long' ? close - k * atr : close + k * atr;
  if (!(stopLoss > 0)) return HOLD;
  if (into === undefined) return { action: 'enter', side, reason, stopLoss, atr };
  const entry = into.entry as Writable<EnterIntent>;
  entry.side = side;
  entry.reason = reason;
  entry.stopLoss = stopLoss;
  entry.atr = atr;
  return entry;
}

/**
 * A vectorized rule's intents, made once per rule so that its decisions allocate nothing: the
 * exits are constants, the entry one object that each entering decision rewrites (its `stopLoss`
 * and `atr` doubles from the start when the rule has a stop, so they stay unboxed fields).
 */
interface RuleIntents {
  readonly exitLong: Intent;
  readonly exitShort: Intent;
  readonly entry: EnterIntent;
}

/** The reused intents of a rule with these reasons and stop multiple (`k` undefined: no stop). */
function ruleIntents(reasons: RuleReasons, k: number | undefined): RuleIntents {
  return {
    exitLong: Object.freeze({ action: 'exit', reason: reasons.exitLong }),
    exitShort: Object.freeze({ action: 'exit', reason: reasons.exitShort }),
    entry:
      k === undefined
        ? { action: 'enter', side: 'long', reason: reasons.enterLong }
        : { action: 'enter', side: 'long', reason: reasons.enterLong, stopLoss: 0.5, atr: 0.5 },
  };
}

/** The conditions of a position rule at a close, as bits (each false while a value it reads is missing). */
export const ENTER_LONG = 1;
export const ENTER_SHORT = 2;
export const EXIT_LONG = 4;
export const EXIT_SHORT = 8;

/** The bits of a rule's four conditions. */
export function ruleFlags(
  enterLong: boolean,
  enterShort: boolean,
  exitLong: boolean,
  exitShort: boolean,
): number {
  return (
    (enterLong ? ENTER_LONG : 0) |
    (enterShort ? ENTER_SHORT : 0) |
    (exitLong ? EXIT_LONG : 0) |
    (exitShort ? EXIT_SHORT : 0)
  );
}

/** The reason each decision of a rule carries. */
export interface RuleReasons {
  readonly enterLong: string;
  readonly enterShort: string;
  readonly exitLong: string;
  readonly exitShort: string;
}

/**
 * The decision of a position rule (flat → enter, long/short → exit) from its condition bits
 * (`ruleFlags`): a held position only ever exits (an exit and an entry never fall on the same bar);
 * a flat one enters long, or short when the run is long-short (a long-only run ignores the short
 * side). A long entry wins when both fire. The entry's stop is k × `atr` from the close.
 */
export function decideRule(
  position: PositionSide,
  direction: Direction,
  flags: number,
  reasons: RuleReasons,
  k: number | undefined,
  atr: number,
  close: number,
  reuse?: RuleIntents,
): Intent {
  if (position === 'long') {
    if (!(flags & EXIT_LONG)) return HOLD;
    return reuse?.exitLong ?? { action: 'exit', reason: reasons.exitLong };
  }
  if (position === 'short') {
    if (!(flags & EXIT_SHORT)) return HOLD;
    return reuse?.exitShort ?? { action: 'exit', reason: reasons.exitShort };
  }
  if (flags & ENTER_LONG) return enterWithStop(k, atr, 'long', close, reasons.enterLong, reuse);
  if (flags & ENTER_SHORT && direction === 'long-short')
    return enterWithStop(k, atr, 'short', close, reasons.enterShort, reuse);
  return HOLD;
}

/**
 * A position rule over a whole series (the strategy's `vectorize`): `flags[bar]` the condition bits
 * at each close, the entry stop k × ATR(`atrPeriod`) from the cache's ATR array (the same values as
 * the instance's `AtrStop`), and `decideRule` for the decision, so the fast engine decides exactly as
 * `onBar` does.
 */
export function ruleVector(
  flags: Uint8Array,
  direction: Direction,
  reasons: RuleReasons,
  k: number | undefined,
  atrPeriod: number,
  cache: IndicatorCache,
): VectorRule {
  const atr = k === undefined ? undefined : cache.atr(atrPeriod);
  const close = cache.series.close;
  const reuse = ruleIntents(reasons, k);
  return {
    codes: flags,
    flatMask: ENTER_LONG | (direction === 'long-short' ? ENTER_SHORT : 0),
    longMask: EXIT_LONG,
    shortMask: EXIT_SHORT,
    decide: (bar, position) =>
      decideRule(
        position,
        direction,
        flags[bar] as number,
        reasons,
        k,
        atr === undefined ? Number.NaN : (atr[bar] as number),
        close[bar] as number,
        reuse,
      ),
  };
}
