import type { StopRules } from './rules.js';

/** A position as stop management sees it at a close. */
export interface ManagedPosition {
  readonly side: 1 | -1;
  /** Fill price of the entry. */
  readonly entryPrice: number;
  /** Distance from the entry reference price to the initial stop: one R. */
  readonly initialRisk: number;
  readonly stop: number;
  /** Sessions since the entry filled, this one included. */
  readonly sessionsHeld: number;
}

/** The stop for the next session, and an exit when the time stop is reached. */
export interface StopUpdate {
  readonly stop: number;
  readonly exit: string | null;
}

/**
 * Stop management from a daily close (so live and backtest agree): the ATR trailing stop, the
 * break-even move and the time stop. The stop only ever moves in the trade's favour.
 */
export function manageStop(
  position: ManagedPosition,
  close: number,
  atr: number,
  rules: StopRules,
): StopUpdate {
  const { side } = position;
  const tighter = (a: number, b: number) => (side === 1 ? Math.max(a, b) : Math.min(a, b));
  let stop = position.stop;
  if (rules.trailAtr !== undefined && atr > 0) {
    const trail = close - side * rules.trailAtr * atr;
    if (trail > 0) stop = tighter(stop, trail);
  }
  if (
    rules.breakEvenAtR !== undefined &&
    side * (close - position.entryPrice) >= rules.breakEvenAtR * position.initialRisk
  ) {
    stop = tighter(stop, position.entryPrice);
  }
  const exit =
    rules.timeStopDays !== undefined && position.sessionsHeld >= rules.timeStopDays
      ? `time stop: ${position.sessionsHeld} sessions held`
      : null;
  return { stop, exit };
}

/** Whether `price` is at or through `stop`: at or below it for a long, at or above it for a short. */
export function stopCrossed(side: 1 | -1, price: number, stop: number): boolean {
  return side === 1 ? price <= stop : price >= stop;
}
