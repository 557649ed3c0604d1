import * as z from 'zod';
import type { StrategyConfig } from '../config/schema.js';
import { ConfigError } from '../errors.js';
import type { BrokerOrderType } from '../ports/broker.js';

/**
 * The purpose of an order within a trading day. With the strategy, the symbol and the day it makes
 * the intent, and the intent makes the client order id: one intent, one order, ever.
 */
export type OrderPurpose = 'entry' | 'exit' | 'stop' | 'flatten';

/** The broker order types that are a resting stop (cancelled before an exit sells the same shares). */
export const STOP_ORDER_TYPES: ReadonlySet<BrokerOrderType> = new Set([
  'stop',
  'trailing_stop',
  'stop_limit',
]);

/** FNV-1a, 32 bits, as 8 hex digits: a short, stable tag (not a security hash). */
function fnv1a(text: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, '0');
}

/**
 * The short stable tag of a stage and the sleeve set of an order (8 hex digits): the sleeves' ids
 * sorted and joined. A single-strategy config is one sleeve named after the config, so its tag is
 * the one its orders always had (`stage|name`). The tag-to-sleeves map is stored with the orders
 * (`putOrderTag`), so an operator can tell which sleeves an order in the broker's list belongs to.
 */
export function sleeveSetTag(stage: string, sleeves: readonly string[]): string {
  if (sleeves.length === 0) throw new ConfigError('client order id: an order of no sleeve');
  return fnv1a(`${stage}|${[...new Set(sleeves)].sort().join('+')}`);
}

/**
 * The deterministic client order id of an intent:
 * `qs-<tag of stage and sleeve set>-<SYMBOL>-<YYYYMMDD>-<purpose>[-<n>]`, at most 64 characters
 * (Alpaca allows 128). The sleeve set defaults to `[strategy]` (a single-strategy config's one
 * sleeve). The same intent always gets the same id, so the broker refuses a second submission (422)
 * and a lost response is resolved by asking for the order by this id.
 */
export function clientOrderId(intent: {
  readonly stage: string;
  readonly strategy: string;
  readonly symbol: string;
  readonly date: string;
  readonly purpose: OrderPurpose;
  /** The sleeves whose legs the order carries (netted); absent: the strategy's one sleeve. */
  readonly sleeves?: readonly string[];
  /** For a second order of the same purpose on the same day (a stop replaced after a split, say). */
  readonly sequence?: number;
}): string {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(intent.date))
    throw new ConfigError(`client order id: bad date "${intent.date}"`);
  const tag = sleeveSetTag(intent.stage, intent.sleeves ?? [intent.strategy]);
  const base = `qs-${tag}-${intent.symbol}-${intent.date.replaceAll('-', '')}-${intent.purpose}`;
  const id = intent.sequence === undefined || intent.sequence === 0 ? base : `${base}-${intent.sequence}`;
  if (id.length > 64) throw new ConfigError(`client order id: "${id}" is longer than 64 characters`);
  return id;
}

/** The sleeve-set tag inside a client order id of {@link clientOrderId}'s shape, or null. */
export function orderTagOf(clientOrderId: string): string | null {
  return /^qs-([0-9a-f]{8})-/.exec(clientOrderId)?.[1] ?? null;
}

/** The trading day (`YYYY-MM-DD`) inside a client order id of {@link clientOrderId}'s shape, or null. */
export function orderDateOf(clientOrderId: string): string | null {
  const m = /^qs-[0-9a-f]{8}-.+-(\d{4})(\d{2})(\d{2})-(?:entry|exit|stop|flatten)(?:-\d+)?$/.exec(
    clientOrderId,
  );
  return m === null ? null : `${m[1]}-${m[2]}-${m[3]}`;
}

/** Pre-trade hard limits: applied to every order whatever the strategy says. */
export const hardLimitsSchema = z
  .object({
    /** Largest order value in dollars (quantity × reference price). */
    maxOrderNotional: z.number().positive().default(50_000),
    /** Largest order quantity in shares. */
    maxOrderQty: z.number().positive().default(5_000),
    /** Limit and stop prices must lie within this fraction of the last close. */
    priceCollarPct: z.number().positive().max(1).default(0.1),
    /** Orders a strategy may send in one trading day, all purposes together. */
    maxOrdersPerDay: z.number().int().positive().default(40),
  })
  .strict();

export type HardLimits = z.infer<typeof hardLimitsSchema>;

/** The order as the limits see it. */
export interface LimitCheckOrder {
  readonly symbol: string;
  readonly qty: number;
  /** The last close (raw dollars) the order is checked against. */
  readonly referencePrice: number;
  readonly limitPrice?: number;
  readonly stopPrice?: number;
}

/**
 * Every hard limit the order breaks (empty when none). A violation refuses the order and alerts;
 * nothing here adjusts an order to fit.
 */
export function hardLimitViolations(
  order: LimitCheckOrder,
  ordersToday: number,
  limits: HardLimits,
): string[] {
  const violations: string[] = [];
  const { qty, referencePrice } = order;
  if (!(Number.isFinite(qty) && qty > 0)) violations.push(`quantity ${qty} is not a positive number`);
  if (!(Number.isFinite(referencePrice) && referencePrice > 0)) {
    violations.push(`reference price ${referencePrice} is not a positive number`);
  }
  if (qty > limits.maxOrderQty)
    violations.push(`quantity ${qty} exceeds the ${limits.maxOrderQty}-share limit`);
  const notional = qty * referencePrice;
  if (notional > limits.maxOrderNotional) {
    violations.push(`notional $${notional.toFixed(2)} exceeds the $${limits.maxOrderNotional} limit`);
  }
  for (const [name, price] of [
    ['limit', order.limitPrice],
    ['stop', order.stopPrice],
  ] as const) {
    if (price === undefined) continue;
    const distance = Math.abs(price / referencePrice - 1);
    if (!(Number.isFinite(price) && price > 0) || distance > limits.priceCollarPct) {
      violations.push(
        `${name} price ${price} is outside the ${limits.priceCollarPct * 100}% collar around the last close ${referencePrice}`,
      );
    }
  }
  if (ordersToday >= limits.maxOrdersPerDay) {
    violations.push(`${ordersToday} orders today already: the limit is ${limits.maxOrdersPerDay}`);
  }
  return violations;
}

/** The hard limits an intent's order breaks (see {@link hardLimitViolations}). */
export function intentLimitViolations(
  intent: LimitCheckOrder,
  ordersToday: number,
  limits: HardLimits,
): string[] {
  return hardLimitViolations(
    {
      symbol: intent.symbol,
      qty: intent.qty,
      referencePrice: intent.referencePrice,
      ...(intent.limitPrice === undefined ? {} : { limitPrice: intent.limitPrice }),
      ...(intent.stopPrice === undefined ? {} : { stopPrice: intent.stopPrice }),
    },
    ordersToday,
    limits,
  );
}

/** Live trading is long-only for now: shorting needs borrow checks that are not built. */
export function assertLiveConfig(config: StrategyConfig, stage: 'paper' | 'live'): void {
  const directions = [
    ...(config.strategy === undefined
      ? []
      : [{ key: 'strategy.direction', direction: config.strategy.direction }]),
    ...(config.sleeves ?? []).map((s, i) => ({ key: `sleeves.${i}.direction`, direction: s.direction })),
  ];
  for (const { key, direction } of directions) {
    if (direction !== 'long-only') {
      throw new ConfigError(
        `${key}: ${direction} is refused for the ${stage} stage (live trading is long-only: shorting needs borrow checks)`,
      );
    }
  }
}

const NEW_YORK = new Intl.DateTimeFormat('en-US', {
  timeZone: 'America/New_York',
  year: 'numeric',
  month: '2-digit',
  day: '2-digit',
  hour: '2-digit',
  minute: '2-digit',
  second: '2-digit',
  hourCycle: 'h23',
});

/** New York date (`YYYY-MM-DD`) and wall-clock time (`HH:MM:SS`) of an instant. */
export function newYorkTime(iso: string): { readonly date: string; readonly time: string } {
  const parts = Object.fromEntries(NEW_YORK.formatToParts(new Date(iso)).map((p) => [p.type, p.value]));
  return {
    date: `${parts.year}-${parts.month}-${parts.day}`,
    time: `${parts.hour}:${parts.minute}:${parts.second}`,
  };
}

/** Alpaca accepts market-on-open (`opg`) orders only before 09:28 New York on the trading day. */
export const OPG_CUTOFF = '09:28:00';

/**
 * Whether a market-on-open order for trading day `date` may still be sent at `nowIso`. After the
 * cutoff the documented rule is: skip the order and alert (never send it as a plain market order).
 */
export function beforeOpgCutoff(nowIso: string, date: string): boolean {
  const now = newYorkTime(nowIso);
  return now.date < date || (now.date === date && now.time < OPG_CUTOFF);
}

/** The UTC instant (ISO) of a New York wall-clock time on a date, daylight saving time included. */
export function newYorkToUtc(date: string, time: string): string {
  const wall = Date.parse(`${date}T${time.length === 5 ? `${time}:00` : time}Z`);
  // New York is UTC-5 or UTC-4: start from -5 h and correct by what the guess reads as in New York.
  let guess = wall + 5 * 3_600_000;
  for (let i = 0; i < 2; i++) {
    const seen = newYorkTime(new Date(guess).toISOString());
    const seenMs = Date.parse(`${seen.date}T${seen.time}Z`);
    guess += wall - seenMs;
  }
  return new Date(guess).toISOString();
}
