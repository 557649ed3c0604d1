import { BrokerRejectedError, BrokerUnavailableError, DuplicateClientOrderIdError } from '../core/errors.js';
import type { IntentRecord } from '../core/ports/state-store.js';
import type { LiveContext } from './context.js';

/**
 * Records an intent and makes sure its order exists at the broker exactly once, whatever happened
 * to an earlier attempt: a stored intent that is not settled is first looked up by its client order
 * id, and only sent when the broker has never seen it. Returns the intent as stored afterwards.
 */
export async function placeIntentOnce(
  ctx: LiveContext,
  intent: IntentRecord,
  now: string,
): Promise<IntentRecord> {
  const { intent: stored } = await ctx.store.createIntent(intent);
  if (!['recorded', 'submitted', 'unknown'].includes(stored.status)) return stored;
  const settle = async (patch: Partial<IntentRecord>) => {
    const result = await ctx.store.transitionIntent(
      stored.date,
      stored.clientOrderId,
      ['recorded', 'submitted', 'unknown'],
      {
        ...patch,
        updatedAt: now,
      },
    );
    return 'conflict' in result
      ? ((await ctx.store.getIntent(stored.date, stored.clientOrderId)) as IntentRecord)
      : result;
  };
  const existing = await ctx.broker.getOrderByClientOrderId(stored.clientOrderId);
  if (existing !== null) return settle({ status: 'accepted', brokerOrderId: existing.id });
  try {
    const order = await ctx.broker.submitOrder({
      clientOrderId: stored.clientOrderId,
      symbol: stored.symbol,
      side: stored.side,
      qty: stored.qty,
      type: stored.type,
      timeInForce: stored.timeInForce,
      ...(stored.limitPrice === undefined ? {} : { limitPrice: stored.limitPrice }),
      ...(stored.stopPrice === undefined ? {} : { stopPrice: stored.stopPrice }),
    });
    return settle({ status: 'accepted', brokerOrderId: order.id });
  } catch (error) {
    if (error instanceof DuplicateClientOrderIdError) {
      const order = await ctx.broker.getOrderByClientOrderId(stored.clientOrderId);
      return order === null
        ? settle({ status: 'unknown', reason: error.message })
        : settle({ status: 'accepted', brokerOrderId: order.id });
    }
    if (error instanceof BrokerUnavailableError) {
      const order = await ctx.broker.getOrderByClientOrderId(stored.clientOrderId).catch(() => null);
      if (order !== null) return settle({ status: 'accepted', brokerOrderId: order.id });
      await ctx.notifier.publish({
        subject: `Order outcome unknown: ${stored.symbol}`,
        severity: 'critical',
        text: `${stored.clientOrderId}: ${error.message}. The next run asks the broker before anything is resent.`,
      });
      return settle({ status: 'unknown', reason: error.message });
    }
    if (error instanceof BrokerRejectedError) {
      await ctx.notifier.publish({
        subject: `Order rejected by the broker: ${stored.symbol}`,
        severity: 'critical',
        text: `${stored.clientOrderId}: ${error.message}`,
      });
      return settle({ status: 'rejected', reason: error.message });
    }
    throw error;
  }
}
