/**
 * The order types of the live steps, chosen by the config's asset class in ONE place (pure):
 *
 * - **equity** (Alpaca): entries and exits decided at the close are market-on-open orders
 *   (`market` + `opg`, accepted until 09:28 New York), so they fill at the opening auction the
 *   backtest models; protective stops are stop-market GTC orders; an exit in session (a stop
 *   through, a flatten) is a market `day` order.
 * - **crypto** (Coinbase spot, 24/7, sessions are UTC days): Coinbase has no market-on-open and no
 *   stop-market order. Entries and exits are market immediate-or-cancel orders (`market` + `ioc`),
 *   sent right after the UTC daily close decision, until {@link IOC_CUTOFF_UTC} of the session
 *   (after it the day's open, which the backtest fills at, is too far: the order is skipped and
 *   alerted, never sent late); protective stops are `stop_limit` GTC orders whose limit lies the
 *   configured `live.stopLimitDistance` beyond the stop (below it for a sell), so a triggered stop
 *   still fills in a fast market; an exit in session is market IOC too.
 *
 * Quantities are the broker adapter's business: the Coinbase broker rounds each order down to the
 * product's base increment and refuses it under the product's minimum (`sizing/increments.ts`).
 */
import type { StrategyConfig } from '../config/schema.js';
import { beforeOpgCutoff, OPG_CUTOFF } from './orders.js';

/** Crypto orders decided at the UTC daily close are sent until this UTC time of the session day. */
export const IOC_CUTOFF_UTC = '01:00:00';

/** The default distance of a crypto stop-limit's limit beyond its stop (a fraction of the stop). */
export const DEFAULT_STOP_LIMIT_DISTANCE = 0.02;

/** An order's type and time in force. */
export interface OrderKind {
  readonly type: 'market' | 'stop' | 'stop_limit';
  readonly timeInForce: 'opg' | 'ioc' | 'day' | 'gtc';
}

/** A protective stop's order fields. */
export interface StopOrder extends OrderKind {
  readonly stopPrice: number;
  readonly limitPrice?: number;
}

/** How the live steps of one bot place their orders. */
export interface OrderStyle {
  readonly assetClass: 'equity' | 'crypto';
  /** Entries and exits decided at the close, sent before the session's cutoff. */
  readonly atOpen: OrderKind & { readonly type: 'market'; readonly timeInForce: 'opg' | 'ioc' };
  /** A market exit during the session (a stop already through, a flatten, the kill switch). */
  readonly immediate: OrderKind & { readonly type: 'market'; readonly timeInForce: 'day' | 'ioc' };
  /** The cutoff of the orders decided at the close, as said in alerts ("after the ..."). */
  readonly cutoffLabel: string;
  /** Whether an order decided at the close for session `date` may still be sent at `nowIso`. */
  beforeCutoff(nowIso: string, date: string): boolean;
  /** The protective stop order at `stopPrice` (already in whole cents) for an exit on `side`. */
  stop(stopPrice: number, side: 'buy' | 'sell'): StopOrder;
}

/**
 * Whether an order is one of those decided at the close: the style's `atOpen` kind (equity: market
 * on open; crypto: market IOC), which go out before the session's cutoff only (execute-orders and
 * the crypto dry run skip them after it, alerted, never sent late).
 */
export function isAtOpenOrder(
  style: Pick<OrderStyle, 'atOpen'>,
  order: { readonly type: string; readonly timeInForce: string },
): boolean {
  return order.timeInForce === style.atOpen.timeInForce && order.type === 'market';
}

/** Cents, rounded away from the market (a sell's limit down, a buy's up), so rounding never tightens it. */
export const awayFromMarket = (price: number, side: 'buy' | 'sell'): number =>
  side === 'sell' ? Math.floor(price * 100 + 1e-9) / 100 : Math.ceil(price * 100 - 1e-9) / 100;

/** The crypto stop-limit's limit: `distance` beyond the stop, in whole cents away from the market. */
export function stopLimitPrice(stopPrice: number, side: 'buy' | 'sell', distance: number): number {
  return awayFromMarket(side === 'sell' ? stopPrice * (1 - distance) : stopPrice * (1 + distance), side);
}

/** Whether a crypto order decided at the close for UTC session `date` may still be sent at `nowIso`. */
export function beforeIocCutoff(nowIso: string, date: string): boolean {
  const now = new Date(nowIso).toISOString();
  const day = now.slice(0, 10);
  return day < date || (day === date && now.slice(11, 19) < IOC_CUTOFF_UTC);
}

const EQUITY: OrderStyle = {
  assetClass: 'equity',
  atOpen: { type: 'market', timeInForce: 'opg' },
  immediate: { type: 'market', timeInForce: 'day' },
  cutoffLabel: `the ${OPG_CUTOFF.slice(0, 5)} market-on-open cutoff`,
  beforeCutoff: beforeOpgCutoff,
  stop: (stopPrice) => ({ type: 'stop', timeInForce: 'gtc', stopPrice }),
};

/** The order style of a config: by its asset class (and, for crypto, its stop-limit distance). */
export function orderStyle(config: Pick<StrategyConfig, 'assetClass' | 'live'>): OrderStyle {
  if (config.assetClass !== 'crypto') return EQUITY;
  const distance = config.live.stopLimitDistance ?? DEFAULT_STOP_LIMIT_DISTANCE;
  return {
    assetClass: 'crypto',
    atOpen: { type: 'market', timeInForce: 'ioc' },
    immediate: { type: 'market', timeInForce: 'ioc' },
    cutoffLabel: `the ${IOC_CUTOFF_UTC.slice(0, 5)} UTC cutoff of the daily close orders`,
    beforeCutoff: beforeIocCutoff,
    stop: (stopPrice, side) => ({
      type: 'stop_limit',
      timeInForce: 'gtc',
      stopPrice,
      limitPrice: stopLimitPrice(stopPrice, side, distance),
    }),
  };
}
