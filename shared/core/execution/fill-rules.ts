/**
 * The fill rules, once: where an order fills against a bar (at the open, at its stop or limit, or
 * not at all), the adverse slippage on market and stop fills, the gap rules, and the order of the
 * protective checks (stop before take-profit, the open before the range). The reference engine
 * (`backtest/engine.ts`), the sleeves engine, the fast engine, the MA sweep kernel and the local
 * paper broker all price their fills here; docs/backtest.md states the rules in prose. Commissions
 * and notionals are the ledger's (`ledger/money.ts`). Prices are before slippage unless a function
 * says otherwise; `buy` is the order's side (a long position's exit is a sell).
 */
import type { EntryOrder } from '../strategies/types.js';

/** Slippage in basis points as the fraction every fill function takes. */
export function slippageFraction(bps: number): number {
  return bps / 10_000;
}

/** A price moved against the order by `slip` (a fraction): buys pay more, sells receive less. */
export function adversePrice(price: number, buy: boolean, slip: number): number {
  return buy ? price * (1 + slip) : price * (1 - slip);
}

/**
 * The order types whose fills slip: market, stop and trailing stop (the engine's `trailing-stop` or
 * Alpaca's `trailing_stop`). Limit-priced fills (limit, stop-limit, take-profit) get their price or better.
 */
export function slips(type: string): boolean {
  return type === 'market' || type === 'stop' || type === 'trailing-stop' || type === 'trailing_stop';
}

/** A limit order is marketable at `price` (at or better than the limit). */
export function limitMarketable(buy: boolean, price: number, limit: number): boolean {
  return buy ? price <= limit : price >= limit;
}

/** A stop is triggered at `price` (at or through the stop). */
export function stopTriggered(buy: boolean, price: number, stop: number): boolean {
  return buy ? price >= stop : price <= stop;
}

/** A bar's range reaches the limit (the low for a buy, the high for a sell). */
export function limitReached(buy: boolean, high: number, low: number, limit: number): boolean {
  return buy ? low <= limit : high >= limit;
}

/** A bar's range reaches the stop (the high for a buy, the low for a sell). */
export function stopReached(buy: boolean, high: number, low: number, stop: number): boolean {
  return buy ? high >= stop : low <= stop;
}

/** Where an entry filled: its price after slippage (NaN: no fill in this session) and whether at the open. */
export interface EntryFill {
  price: number;
  atOpen: boolean;
}

/**
 * Fills an entry order of the next session against its bar (docs/backtest.md, "Orders and intrabar
 * rules"): market at the open; limit at the open when marketable there, else at the limit when the
 * range reaches it; stop at the open on a gap through it, else at the stop; stop-limit triggered at
 * the open or intrabar, then limited. Market and stop fills slip. Writes into `out` and returns it.
 */
export function fillEntry(
  order: EntryOrder,
  buy: boolean,
  open: number,
  high: number,
  low: number,
  slip: number,
  out: EntryFill,
): EntryFill {
  out.price = Number.NaN;
  out.atOpen = false;
  switch (order.type) {
    case 'market':
      out.price = adversePrice(open, buy, slip);
      out.atOpen = true;
      break;
    case 'limit': {
      const limit = order.limitPrice;
      if (limitMarketable(buy, open, limit)) {
        out.price = open;
        out.atOpen = true;
      } else if (limitReached(buy, high, low, limit)) {
        out.price = limit;
      }
      break;
    }
    case 'stop': {
      const stop = order.stopPrice;
      if (stopTriggered(buy, open, stop)) {
        out.price = adversePrice(open, buy, slip);
        out.atOpen = true;
      } else if (stopReached(buy, high, low, stop)) {
        out.price = adversePrice(stop, buy, slip);
      }
      break;
    }
    case 'stop-limit': {
      const { stopPrice: stop, limitPrice: limit } = order;
      if (stopTriggered(buy, open, stop)) {
        if (limitMarketable(buy, open, limit)) {
          out.price = open;
          out.atOpen = true;
        } else if (limitReached(buy, high, low, limit)) {
          out.price = limit;
        }
      } else if (stopReached(buy, high, low, stop)) {
        // Triggered intrabar: the bar is assumed to come back after the trigger.
        if (limitMarketable(buy, stop, limit)) out.price = stop;
        else if (limitReached(buy, high, low, limit)) out.price = limit;
      }
      break;
    }
  }
  return out;
}

/** What a position's protective orders did on a bar. */
export const PROTECTIVE_NONE = 0;
/** The open gapped through the stop: the stop fills at the open (slipped). */
export const STOP_AT_OPEN = 1;
/** The open went through the take-profit: it fills at the open (a better price, no slippage). */
export const TARGET_AT_OPEN = 2;
/** The range reached the stop: it fills at the stop (slipped). */
export const STOP_INTRABAR = 3;
/** The range reached the take-profit (and not the stop): it fills at the target. */
export const TARGET_INTRABAR = 4;
export type ProtectiveHit =
  | typeof PROTECTIVE_NONE
  | typeof STOP_AT_OPEN
  | typeof TARGET_AT_OPEN
  | typeof STOP_INTRABAR
  | typeof TARGET_INTRABAR;

/**
 * A position's stop-loss and take-profit (one cancels the other) against one bar, in the order of
 * the rules: a gap through the stop at the open, then a gap through the target, then (unless
 * `gapOnly`, the check before the session's entries fill) the stop in the range, then the target in
 * the range. When one bar reaches both, the stop wins. `stop` or `target` NaN: that order is absent.
 */
export function protectiveHit(
  long: boolean,
  open: number,
  high: number,
  low: number,
  stop: number,
  target: number,
  gapOnly: boolean,
): ProtectiveHit {
  if (long ? open <= stop : open >= stop) return STOP_AT_OPEN;
  if (long ? open >= target : open <= target) return TARGET_AT_OPEN;
  if (gapOnly) return PROTECTIVE_NONE;
  if (long ? low <= stop : high >= stop) return STOP_INTRABAR;
  if (long ? high >= target : low <= target) return TARGET_INTRABAR;
  return PROTECTIVE_NONE;
}

/** The fill price of a protective hit (not `PROTECTIVE_NONE`) of a position (`long`: its exit sells). */
export function protectiveFillPrice(
  hit: ProtectiveHit,
  long: boolean,
  open: number,
  stop: number,
  target: number,
  slip: number,
): number {
  switch (hit) {
    case STOP_AT_OPEN:
      return adversePrice(open, !long, slip);
    case TARGET_AT_OPEN:
      return open;
    case STOP_INTRABAR:
      return adversePrice(stop, !long, slip);
    case TARGET_INTRABAR:
      return target;
    default:
      return Number.NaN;
  }
}

/**
 * A trailing stop's level for a best price (`long`: the position is long, its stop sells below the
 * high-water mark; short: it buys above the low-water mark).
 */
export function trailingLevel(
  long: boolean,
  best: number,
  amount: number | null,
  percent: number | null,
): number {
  const distance = amount ?? (best * (percent as number)) / 100;
  return long ? best - distance : best + distance;
}

/** A trailing stop ratchets with the best price and never loosens. */
export function tighterStop(long: boolean, current: number, level: number): number {
  return long ? Math.max(current, level) : Math.min(current, level);
}

/**
 * A resting protective stop-limit (the crypto bot's stop: Coinbase has no stop-market) against one
 * day's bar, `long`: it protects a long position (it sells). The one rule of the local Coinbase
 * server and the dry run's virtual account:
 * - not yet triggered: triggered as the backtest's protective stop (`protectiveHit`: a gap through
 *   the stop at the open, else the stop in the range), it fills at the backtest's stop price (the
 *   open or the stop, slipped: `protectiveFillPrice`) when that is within its limit;
 * - a gap beyond its limit: no fill at the open (true to the exchange); at the limit when the range
 *   comes back to it, else it rests, triggered, as a limit order (`triggered: true`, and on the
 *   next days the limit rule). The position is then still open below its stop: the live risk
 *   check's next run finds the price through the stop, cancels the stop-limit and exits at market
 *   (IOC), alerting; the backtest models that exit at the gap day's open, slipped (`STOP_AT_OPEN`),
 *   the first price of the day (docs/crypto.md, "A stop-limit gapped through its limit").
 * Returns the fill price (NaN: no fill) and whether the order is triggered after the bar.
 */
export function stopLimitFill(
  long: boolean,
  triggered: boolean,
  open: number,
  high: number,
  low: number,
  stop: number,
  limit: number,
  slip: number,
): { readonly price: number; readonly triggered: boolean } {
  const buy = !long;
  if (triggered) {
    if (limitMarketable(buy, open, limit)) return { price: open, triggered };
    return { price: limitReached(buy, high, low, limit) ? limit : Number.NaN, triggered };
  }
  const hit = protectiveHit(long, open, high, low, stop, Number.NaN, false);
  if (hit === PROTECTIVE_NONE) return { price: Number.NaN, triggered: false };
  const stopFill = protectiveFillPrice(hit, long, open, stop, Number.NaN, slip);
  if (limitMarketable(buy, stopFill, limit)) return { price: stopFill, triggered: true };
  return { price: limitReached(buy, high, low, limit) ? limit : Number.NaN, triggered: true };
}
