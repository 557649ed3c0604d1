import { singleStrategy } from '../core/config/schema.js';
import type { BrokerPosition } from '../core/ports/broker.js';
import type { PositionRecord } from '../core/ports/state-store.js';
import { type LiveContext, UnknownStateError } from './context.js';

/**
 * Why the broker's position in a symbol contradicts what this system holds, or null when it does
 * not: any short in a long-only stage (it never opens one), or a side opposite to the ledger's
 * record. Such a position is an unknown state: no order is derived from it (a "stop" or a flatten
 * of a short would BUY, increasing exposure when the answer is wrong), the symbol halts and alerts.
 */
export function positionConflict(
  ctx: Pick<LiveContext, 'config'>,
  position: Pick<BrokerPosition, 'symbol' | 'qty'>,
  record: Pick<PositionRecord, 'qty'> | undefined,
): UnknownStateError | null {
  const { symbol, qty } = position;
  // Live stages are long-only (assertLiveConfig): a sleeves config's sleeves all are.
  const direction = ctx.config.strategy === undefined ? 'long-only' : singleStrategy(ctx.config).direction;
  if (direction === 'long-only' && qty < 0) {
    return new UnknownStateError(
      `${symbol}: the broker reports a short of ${-qty} shares (ledger ${record?.qty ?? 0}); this long-only stage never opens a short`,
    );
  }
  if (record !== undefined && record.qty !== 0 && Math.sign(record.qty) !== Math.sign(qty)) {
    return new UnknownStateError(
      `${symbol}: the broker reports ${qty} shares, the ledger ${record.qty}: the sides disagree`,
    );
  }
  return null;
}

/**
 * Halts one symbol on an unknown state: alerts (critical) unless its record already carries the
 * same reason (alerted once), and returns the record to keep: the ledger's figures, flagged.
 */
export async function haltSymbol(
  ctx: LiveContext,
  position: BrokerPosition,
  record: PositionRecord | undefined,
  conflict: UnknownStateError,
): Promise<PositionRecord> {
  if (record?.unknownState !== conflict.message) {
    ctx.log.error('unknown position state: symbol halted', {
      error: conflict.name,
      message: conflict.message,
      symbol: position.symbol,
    });
    await ctx.notifier.publish({
      subject: `Unknown state: ${position.symbol} halted`,
      severity: 'critical',
      text: `${conflict.name}: ${conflict.message}. No stop, exit or entry is sent for ${position.symbol} until the broker and the ledger agree again; every other symbol goes on. Check the account.`,
    });
  }
  return {
    sleeve: record?.sleeve ?? ctx.config.name,
    ...(record ?? {
      symbol: position.symbol,
      qty: 0,
      avgEntryPrice: position.avgEntryPrice,
      stop: null,
      entryRef: null,
      initialRisk: null,
      sessionsHeld: 0,
    }),
    unknownState: conflict.message,
  };
}
