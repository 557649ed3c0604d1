import type { StopRules } from './rules.js';
import { type ManagedPosition, manageStop, stopCrossed } from './stops.js';

/** What a live price means for a position's stop. */
export type IntradayStopDecision =
  | { readonly action: 'exit'; readonly stop: number }
  | { readonly action: 'ratchet'; readonly stop: number }
  | { readonly action: 'hold'; readonly stop: number };

/**
 * The stream's decision on one live price, with the same rules as the daily path: the price at or
 * through the stop in force is an exit (the risk check's test, {@link stopCrossed}); otherwise the
 * trailing stop and the break-even move of {@link manageStop}, applied to the live price, give the
 * stop that price allows, and it ratchets when it tightens by at least `minStep` (raw dollars; a
 * stop is not replaced at the broker for every cent). The time stop is the daily path's, not this one's.
 */
export function intradayStop(
  position: ManagedPosition,
  price: number,
  atr: number,
  rules: StopRules,
  minStep: number,
): IntradayStopDecision {
  if (stopCrossed(position.side, price, position.stop)) return { action: 'exit', stop: position.stop };
  const { stop } = manageStop(position, price, atr, rules);
  const gain = position.side * (stop - position.stop);
  return gain >= minStep && gain > 0 ? { action: 'ratchet', stop } : { action: 'hold', stop: position.stop };
}
