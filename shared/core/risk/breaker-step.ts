/**
 * The breakers' rules, written once: what one observation of the account's equity does to the
 * daily-loss breaker, the drawdown halt, its cool-off count and the backtest's automatic reset.
 * `observeEquity` and `resetDrawdown` (breakers.ts: the immutable `RiskState` of the reference
 * engine, the sleeves engine and the live functions) are built on it, and the fast engines run it
 * on their own scalar state at every close.
 *
 * The state is mutable and holds numbers only, so that the hot loop of a sweep sees one object
 * shape and compares numbers: the caller gives each trading day a numeric key (the fast engines
 * their day number; `observeEquity` numbers its two days relatively) and an opaque position `at`
 * (a bar, a calendar slot, a time) recorded beside each day, which lets it name the day later.
 */

import type { RiskRules } from './rules.js';

/** The day key of "no day yet" (no trading day's key: those are day numbers or small counts). */
export const NO_DAY = -(2 ** 30);

/** `breakerStep`'s result bits: the daily-loss breaker tripped at this observation. */
export const DAILY_LOSS_TRIP = 1;
/** The drawdown breaker tripped at this observation. */
export const DRAWDOWN_TRIP = 2;
/** The drawdown halt was reset at this observation, its cool-off served (`coolOffSessions`). */
export const DRAWDOWN_RESET = 4;

/** The breakers' state and limits on scalars; update it only through the functions below. */
export interface BreakerScalars {
  /** Trip the daily-loss breaker at a loss from the day's start of this fraction or more. */
  dailyLossLimit: number;
  /** Halt at a drawdown from the high-water mark of this fraction or more. */
  maxDrawdown: number;
  /** Sessions after a drawdown trip at which the halt resets by itself (Infinity: never). */
  coolOffSessions: number;
  highWaterMark: number;
  /** Equity at the start of `day` (the previous day's last observation). */
  dayStartEquity: number;
  lastEquity: number;
  /** Key of the last observation's day (`NO_DAY`: none), and the caller's position recorded there. */
  day: number;
  dayAt: number;
  /** Key of the day the daily-loss breaker tripped on (`NO_DAY`: none), and its position. */
  lossDay: number;
  lossAt: number;
  /** Sessions since the drawdown trip (-1: no halt holds), and the position of the trip. */
  haltSessions: number;
  haltAt: number;
  /** At the last automatic reset: the high-water mark it replaced and the sessions it waited. */
  resetFromHighWaterMark: number;
  resetAfterSessions: number;
}

/** A fresh scalar state (every caller creates its state here, so that all share one shape). */
export function breakerScalars(
  limits: Pick<RiskRules, 'dailyLossLimit' | 'maxDrawdown'>,
  coolOffSessions: number,
  equity: number,
): BreakerScalars {
  return {
    dailyLossLimit: limits.dailyLossLimit,
    maxDrawdown: limits.maxDrawdown,
    coolOffSessions,
    highWaterMark: equity,
    dayStartEquity: equity,
    lastEquity: equity,
    day: NO_DAY,
    dayAt: 0,
    lossDay: NO_DAY,
    lossAt: 0,
    haltSessions: -1,
    haltAt: 0,
    resetFromHighWaterMark: 0,
    resetAfterSessions: 0,
  };
}

/**
 * One observation of `equity` on the day keyed `day` (at the caller's position `at`): a new day
 * starts from the previous observation's equity and counts a session of a holding drawdown halt;
 * the daily-loss breaker trips once a day at a loss of `dailyLossLimit` or more from the day's
 * start; the drawdown breaker trips (when no halt holds) at a fall of `maxDrawdown` or more from
 * the high-water mark; a halt held `coolOffSessions` sessions resets (the high-water mark becomes
 * the equity). Returns the bits of what tripped and reset (0: nothing).
 */
export function breakerStep(s: BreakerScalars, day: number, at: number, equity: number): number {
  let result = 0;
  if (s.day !== day) {
    if (s.day !== NO_DAY) s.dayStartEquity = s.lastEquity;
    s.day = day;
    s.dayAt = at;
    if (s.haltSessions >= 0) s.haltSessions++;
  }
  if (s.lossDay !== day && (s.dayStartEquity - equity) / s.dayStartEquity >= s.dailyLossLimit) {
    s.lossDay = day;
    s.lossAt = at;
    result = DAILY_LOSS_TRIP;
  }
  s.highWaterMark = Math.max(s.highWaterMark, equity);
  s.lastEquity = equity;
  if (s.haltSessions < 0 && (s.highWaterMark - equity) / s.highWaterMark >= s.maxDrawdown) {
    s.haltSessions = 0;
    s.haltAt = at;
    result |= DRAWDOWN_TRIP;
  }
  if (s.haltSessions >= 0 && s.haltSessions >= s.coolOffSessions) {
    s.resetFromHighWaterMark = s.highWaterMark;
    s.resetAfterSessions = s.haltSessions;
    resetHalt(s, equity);
    result |= DRAWDOWN_RESET;
  }
  return result;
}

/** The drawdown halt's reset, automatic or explicit: the high-water mark becomes the equity. */
export function resetHalt(s: BreakerScalars, equity: number): void {
  s.haltSessions = -1;
  s.highWaterMark = equity;
  s.lastEquity = equity;
}

/**
 * Observations at a constant equity up to the day keyed `day`, with no drawdown halt holding and
 * that equity observed already: the only change is a new day's start equity (no loss from the
 * day's start, no fall from the high-water mark beyond the one observed, both limits positive).
 * What `breakerStep` would do at each of them, in one step (the fast engines' flat stretches).
 */
export function breakerSkipTo(s: BreakerScalars, day: number, at: number): void {
  if (s.day === day) return;
  if (s.day !== NO_DAY) s.dayStartEquity = s.lastEquity;
  s.day = day;
  s.dayAt = at;
}

/**
 * The factor of a pre-test that tells without a division that `breakerStep`'s test of a limit
 * (`(reference − equity) / reference >= limit`, the daily-loss breaker's from the day's start, the
 * drawdown's from the high-water mark) cannot pass: for a reference R normal (>= 2^-1022) and finite, an equity at or
 * above `R × safeLimitFactor(limit)` never reaches the limit. NaN (no pre-test passes) unless
 * 0 < limit < 1.
 *
 * EXACT: the factor is 1 − limit + 1e-9. Its rounding, the product's and the test's own (the
 * subtraction, the division: each half an ulp, about 1.1e-16 relative) are below 1e-15, so an
 * equity at or above the product is at least R × (1 − limit + 1e-9 − 1e-15): the quotient, even as
 * computed, stays under limit − 1e-10. The pre-test only ever says "does not trip"; an equity under
 * the product (or NaN) runs the exact test.
 */
export function safeLimitFactor(limit: number): number {
  return limit > 0 && limit < 1 ? 1 - limit + 1e-9 : Number.NaN;
}

/** The least normal double: below it a product's relative rounding is no longer bounded by an ulp. */
export const MIN_NORMAL = 2 ** -1022;

/**
 * The bound of {@link safeLimitFactor}'s pre-test for a reference R: R × factor for a normal,
 * finite R > 0, else NaN (every comparison with it is false: the exact test runs). A subnormal R
 * would round the product (to 0 for R = 5e-324) below what the proof allows.
 */
export function breakerBound(reference: number, factor: number): number {
  return reference >= MIN_NORMAL && reference < Number.POSITIVE_INFINITY ? reference * factor : Number.NaN;
}
