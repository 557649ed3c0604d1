/**
 * The crypto dry run's virtual account (pure): what the paper stage would hold had its orders been
 * sent. The dry-run broker (`shared/live/dry-run.ts`) keeps it in the bot's table and answers the
 * Broker port from it, so every live step books its virtual fills with the real booking code
 * (end-of-day's ledger, closed trades, positions, equity snapshot; the risk check's stops).
 *
 * Money is integer cents: cash moves by each fill's notional rounded to the cent plus (buys) or less
 * (sells) the taker fee (`commissionCents` of the config's costs, where `fees.takerBps` is the
 * commission's percent). A position's cost is the cents its open quantity cost (fees apart), so its
 * average entry price is cost / qty. Spot only: a sell never exceeds what is held, a buy never
 * spends more than the cash (Coinbase refuses both).
 */
import { VirtualOrderRefusedError } from '../errors.js';
import {
  adversePrice,
  limitMarketable,
  limitReached,
  slippageFraction,
  slips,
  stopLimitFill,
  stopReached,
  stopTriggered,
} from '../execution/fill-rules.js';
import { type CommissionModel, commissionCents, notionalCents, toCents } from '../ledger/money.js';
import type { BrokerOrder, BrokerOrderSide } from '../ports/broker.js';

/** Quantities closer than this are equal (fractional coins are whole to 1e-9). */
const EPSILON = 1e-9;

/** An order of the dry run (never sent): resting (`accepted`) until a bar reaches it, or done. */
export type VirtualOrder = Omit<BrokerOrder, 'status' | 'legs'> & {
  readonly status: 'accepted' | 'filled' | 'canceled';
};

/** A virtual fill: at the recorded ask (buy) / bid (sell), or a stop's price on the day's bar. */
export interface VirtualFill {
  /** Execution id (the fill ledger's key): `dryrun-` + the order's client order id. */
  readonly id: string;
  readonly orderId: string;
  readonly symbol: string;
  readonly side: BrokerOrderSide;
  readonly qty: number;
  readonly price: number;
  readonly time: string;
  /** The taker fee, in cents. */
  readonly feeCents: number;
}

export interface VirtualPosition {
  readonly symbol: string;
  /** Coins held (> 0: spot, long only). */
  readonly qty: number;
  /** What the open quantity cost, in cents (fees apart). */
  readonly costCents: number;
}

export interface DryRunAccount {
  readonly schemaVersion: 1;
  /** The cash the dry run started with (the exchange account's equity at its first read). */
  readonly startingCashCents: number;
  readonly cashCents: number;
  readonly positions: readonly VirtualPosition[];
  /** Open orders, and done ones for `RETENTION_DAYS` (the steps look them up by client order id). */
  readonly orders: readonly VirtualOrder[];
  /** Fills of the last `RETENTION_DAYS` (end-of-day reads them from its watermark). */
  readonly fills: readonly VirtualFill[];
  /** The equity at the first read of the current UTC day: the broker's `lastEquity`. */
  readonly dayStart: { readonly date: string; readonly equity: number } | null;
}

/** Days done orders and fills are kept in the account (the ledger keeps the fills for good). */
export const RETENTION_DAYS = 14;

/** A new dry-run account holding only cash. */
export function openDryRunAccount(cash: number): DryRunAccount {
  const cents = toCents(cash);
  return {
    schemaVersion: 1,
    startingCashCents: cents,
    cashCents: cents,
    positions: [],
    orders: [],
    fills: [],
    dayStart: null,
  };
}

/** The virtual order id of a client order id (marked as the dry run's). */
export const virtualOrderId = (clientOrderId: string) => `dryrun-${clientOrderId}`;

/** The account's order as the Broker port reports it. */
export function brokerOrderOf(order: VirtualOrder): BrokerOrder {
  return { ...order, legs: [] };
}

/**
 * Books a fill of `qty` at `price` on an order of the account: cash (notional and taker fee, in
 * cents), the position (its cost), the order's filled quantity and average price, the fill.
 * Refuses a buy the cash cannot pay and a sell of more than is held.
 */
export function bookVirtualFill(
  account: DryRunAccount,
  order: VirtualOrder,
  qty: number,
  price: number,
  time: string,
  fees: CommissionModel,
): { readonly account: DryRunAccount; readonly fill: VirtualFill } {
  if (!(qty > 0 && Number.isFinite(qty)) || !(price > 0 && Number.isFinite(price))) {
    throw new VirtualOrderRefusedError(`${order.clientOrderId}: a fill needs a positive quantity and price`);
  }
  const notional = notionalCents(qty, price);
  const feeCents = commissionCents(fees, qty, notional);
  const held = account.positions.find((p) => p.symbol === order.symbol);
  let positions: VirtualPosition[];
  let cashCents: number;
  if (order.side === 'buy') {
    cashCents = account.cashCents - notional - feeCents;
    if (cashCents < 0) {
      throw new VirtualOrderRefusedError(
        `${order.clientOrderId}: insufficient funds (${(notional + feeCents) / 100} USD needed, ${account.cashCents / 100} available)`,
      );
    }
    const next = {
      symbol: order.symbol,
      qty: (held?.qty ?? 0) + qty,
      costCents: (held?.costCents ?? 0) + notional,
    };
    positions = [...account.positions.filter((p) => p.symbol !== order.symbol), next];
  } else {
    const have = held?.qty ?? 0;
    if (qty > have + EPSILON) {
      throw new VirtualOrderRefusedError(
        `${order.clientOrderId}: insufficient balance (sell ${qty} ${order.symbol}, ${have} held)`,
      );
    }
    cashCents = account.cashCents + notional - feeCents;
    const left = have - qty;
    const rest = account.positions.filter((p) => p.symbol !== order.symbol);
    positions =
      left <= EPSILON || held === undefined
        ? rest
        : [
            ...rest,
            { symbol: order.symbol, qty: left, costCents: Math.round((held.costCents * left) / have) },
          ];
  }
  const filledQty = order.filledQty + qty;
  const filled: VirtualOrder = {
    ...order,
    filledQty,
    filledAvgPrice: ((order.filledAvgPrice ?? 0) * order.filledQty + price * qty) / filledQty,
    status: filledQty >= order.qty - EPSILON ? 'filled' : order.status,
    filledAt: time,
  };
  const fill: VirtualFill = {
    id: `${order.id}${order.filledQty > 0 ? `-${account.fills.filter((f) => f.orderId === order.id).length}` : ''}`,
    orderId: order.id,
    symbol: order.symbol,
    side: order.side,
    qty,
    price,
    time,
    feeCents,
  };
  return {
    account: {
      ...account,
      cashCents,
      positions: positions.sort((a, b) => (a.symbol < b.symbol ? -1 : 1)),
      orders: account.orders.map((o) => (o.id === order.id ? filled : o)),
      fills: [...account.fills, fill],
    },
    fill,
  };
}

/** One day's bar as the stop check reads it. */
export interface DayRange {
  readonly date: string;
  readonly open: number;
  readonly high: number;
  readonly low: number;
}

/**
 * Where a resting order fills on a day's bar, or null, by the fill rules
 * (`execution/fill-rules.ts`): a stop at the open when the open gapped through it, else at the stop
 * when the range reaches it, slipped by `slippageBps` against the order; a stop-limit by the local
 * Coinbase server's rule (`stopLimitFill`: the stop's fill within its limit; a gap beyond its limit
 * fills at the limit only when the range comes back to it, else the order rests triggered, as a
 * limit, on the days after: `triggered` carries that from the day before); a limit at the open when
 * the open is at or better than it, else at the limit when the range reaches it.
 */
export function restingFill(
  order: VirtualOrder,
  bar: DayRange,
  slippageBps: number,
  triggered = false,
): { readonly price: number | null; readonly triggered: boolean } {
  const buy = order.side === 'buy';
  if (order.type === 'stop_limit' && order.stopPrice !== null && order.limitPrice !== null) {
    const fill = stopLimitFill(
      !buy,
      triggered,
      bar.open,
      bar.high,
      bar.low,
      order.stopPrice,
      order.limitPrice,
      slippageFraction(slippageBps),
    );
    return { price: Number.isNaN(fill.price) ? null : fill.price, triggered: fill.triggered };
  }
  return { price: plainRestingFill(order, bar, slippageBps), triggered: false };
}

function plainRestingFill(order: VirtualOrder, bar: DayRange, slippageBps: number): number | null {
  const buy = order.side === 'buy';
  if (order.type === 'limit' && order.limitPrice !== null) {
    if (limitMarketable(buy, bar.open, order.limitPrice)) return bar.open;
    return limitReached(buy, bar.high, bar.low, order.limitPrice) ? order.limitPrice : null;
  }
  if (order.stopPrice === null || (order.type !== 'stop' && order.type !== 'stop_limit')) return null;
  const stop = order.stopPrice;
  const slip = slips(order.type) ? slippageFraction(slippageBps) : 0;
  if (stopTriggered(buy, bar.open, stop)) {
    return adversePrice(bar.open, buy, slip);
  }
  if (!stopReached(buy, bar.high, bar.low, stop)) return null;
  return adversePrice(stop, buy, slip);
}

/** The account without the done orders and the fills older than `RETENTION_DAYS` before `date`. */
export function pruneDryRunAccount(account: DryRunAccount, date: string): DryRunAccount {
  const cutoff = new Date(Date.parse(`${date}T00:00:00Z`) - RETENTION_DAYS * 86_400_000).toISOString();
  return {
    ...account,
    orders: account.orders.filter((o) => o.status === 'accepted' || (o.filledAt ?? o.submittedAt) >= cutoff),
    fills: account.fills.filter((f) => f.time >= cutoff),
  };
}

/** The account's equity in dollars with each position marked at `price(symbol)` (its cost when unknown). */
export function dryRunEquity(account: DryRunAccount, price: (symbol: string) => number | undefined): number {
  let cents = account.cashCents;
  for (const p of account.positions) {
    const mark = price(p.symbol);
    cents += mark === undefined ? p.costCents : notionalCents(p.qty, mark);
  }
  return cents / 100;
}
