import { InvalidParameterError } from '../core/errors.js';
import type { OrderStyle } from '../core/live/order-style.js';
import type { Notification } from '../core/ports/notifier.js';
import type { LiveContext } from './context.js';
import { EXECUTE_ORDERS_TIMEOUT_SECONDS } from './steps.js';

/**
 * The time the cutoff is checked at: the later of the scheduled time and the clock port's time
 * (the broker's clock), asked only while the scheduled time is still before the cutoff.
 */
export async function checkedAt(
  ctx: LiveContext,
  scheduledTime: string,
  beforeCutoff: (iso: string) => boolean,
): Promise<string> {
  if (ctx.now === undefined || !beforeCutoff(scheduledTime)) return scheduledTime;
  const clock = await clockInstant(ctx.now);
  return clock > Date.parse(scheduledTime) ? new Date(clock).toISOString() : scheduledTime;
}

/** The clock port's time as an instant (ms), refused when it is not one. */
async function clockInstant(now: () => Promise<string>): Promise<number> {
  const clock = Date.parse(await now());
  if (!Number.isFinite(clock))
    throw new InvalidParameterError('cutoff: the clock port answered a time that is not an instant');
  return clock;
}

/**
 * How close to the cutoff (ms) the run's checked time must be for the clock to be asked again
 * before each send of an order decided at the close: the sends come after reconciliation, netting,
 * rate slots and stop cancels, and a run lasts up to its function's timeout, so a run checked
 * within that timeout of the cutoff (09:26:30 for 09:28) could otherwise send after it.
 */
export const CUTOFF_RECHECK_MARGIN_MS = EXECUTE_ORDERS_TIMEOUT_SECONDS * 1000;

/**
 * Whether an order decided at the close may still be sent, asked before each send: false once the
 * checked time `at` is past the cutoff; within {@link CUTOFF_RECHECK_MARGIN_MS} of it, the clock
 * port is asked again at each call (once past, it stays past); further from it, true. `beforeAsk`
 * runs before each ask of the clock: the broker's clock is a broker request, so execute-orders
 * takes a slot of the shared rate limit for it as for its other requests.
 */
export function cutoffRecheck(
  ctx: LiveContext,
  day: string,
  at: string,
  style: Pick<OrderStyle, 'beforeCutoff'>,
  beforeAsk?: () => Promise<void>,
): () => Promise<boolean> {
  let past = !style.beforeCutoff(at, day);
  const near = !style.beforeCutoff(new Date(Date.parse(at) + CUTOFF_RECHECK_MARGIN_MS).toISOString(), day);
  return async () => {
    if (past || !near || ctx.now === undefined) return !past;
    await beforeAsk?.();
    past = !style.beforeCutoff(new Date(await clockInstant(ctx.now)).toISOString(), day);
    return !past;
  };
}

/** The critical alert for orders decided at the close that the cutoff kept from being sent. */
export function cutoffSkippedAlert(
  style: Pick<OrderStyle, 'assetClass'>,
  day: string,
  text: string,
): Notification {
  return {
    subject: `${style.assetClass === 'crypto' ? 'Daily close orders' : 'Market-on-open orders'} skipped on ${day}`,
    severity: 'critical',
    text,
  };
}
