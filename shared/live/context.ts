import type { StrategyConfig } from '../core/config/schema.js';
import { QuantShiftError } from '../core/errors.js';
import { newYorkTime, newYorkToUtc } from '../core/live/orders.js';
import { utcSessionDate } from '../core/market/crypto-calendar.js';
import type { Broker } from '../core/ports/broker.js';
import type { Cache } from '../core/ports/cache.js';
import type { MarketCalendar } from '../core/ports/calendar.js';
import type { CryptoStore, FundingSource } from '../core/ports/crypto-store.js';
import type { BestBidAskSource, MarketData } from '../core/ports/market-data.js';
import type { Notifier } from '../core/ports/notifier.js';
import type { StateStore } from '../core/ports/state-store.js';
import type { ProductIncrements } from '../core/sizing/increments.js';

/** Structured logging, as the handlers' Powertools Logger provides it (secrets are redacted there). */
export interface LiveLogger {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/** Everything a live step needs: the config and the adapters, built once per cold start. */
export interface LiveContext {
  readonly stage: 'paper' | 'live';
  /** Broker requests a minute (Alpaca allows 200); the local stack, whose clock is simulated, lifts it. */
  readonly brokerRateLimit?: number;
  readonly config: StrategyConfig;
  readonly configHash: string;
  readonly gitCommit: string;
  readonly broker: Broker;
  readonly marketData: MarketData;
  readonly store: StateStore;
  /** An accelerator only: every step works without it. */
  readonly cache?: Cache;
  readonly notifier: Notifier;
  readonly log: LiveLogger;
  /**
   * The bot's session calendar: absent, the NYSE's (sessions are New York dates); the crypto bot's
   * is the 24/7 UTC calendar (sessions are UTC days, every day open).
   */
  readonly calendar?: MarketCalendar;
  /** The crypto bot's own parts (absent for the equity bot). */
  readonly crypto?: CryptoLiveParts;
  /**
   * The clock port: the current time (ISO), the broker's clock for the equity bot (simulated on the
   * local stack), the exchange's (`GET /time`) for the crypto bot. execute-orders checks the cutoff
   * at the later of this and the scheduled time. Absent: the scheduled time only.
   */
  readonly now?: () => Promise<string>;
}

/** What only the crypto bot has: its dry run, the top of the book, funding rates and their records. */
export interface CryptoLiveParts {
  /**
   * The dry run (the paper stage: Coinbase has no paper trading): execute-orders records every
   * intent with the best bid/ask at the decision and sends no order.
   */
  readonly dryRun: boolean;
  /** The best bid/ask at a decision (the dry run's report). */
  readonly quotes: BestBidAskSource;
  /** Funding rates of the perpetual-style futures. */
  readonly funding: FundingSource;
  /** Funding readings and dry-run decisions (the bot's own table). */
  readonly records: CryptoStore;
  /** The exchange's products (increments, minimums): checked against the config's `products:`. */
  readonly products?: ProductSource;
}

/** The products' increments and minimums as the exchange publishes them (Coinbase's `getProduct`). */
export interface ProductSource {
  getProduct(productId: string): Promise<ProductIncrements>;
}

/**
 * The broker's asset class of the bot's positions: `crypto` for the crypto bot (Coinbase), else
 * `us_equity` (Alpaca). A position of another class is outside the bot's watchlist.
 */
export function botAssetClass(ctx: Pick<LiveContext, 'config'>): 'crypto' | 'us_equity' {
  return ctx.config.assetClass === 'crypto' ? 'crypto' : 'us_equity';
}

/** Whether the context's calendar counts sessions in UTC days (the 24/7 crypto calendar). */
const utcSessions = (ctx: Pick<LiveContext, 'calendar'>) => ctx.calendar?.timeZone === 'UTC';

/** The session date (`YYYY-MM-DD`) an instant belongs to: its New York date, or its UTC date for the 24/7 bot. */
export function sessionDate(ctx: Pick<LiveContext, 'calendar'>, iso: string): string {
  return utcSessions(ctx) ? utcSessionDate(Date.parse(iso)) : newYorkTime(iso).date;
}

/** The UTC instant (ISO) of a session-local wall-clock time `HH:MM` (`24:00`: the next midnight) on a date. */
export function sessionTimeToUtc(ctx: Pick<LiveContext, 'calendar'>, date: string, time: string): string {
  if (!utcSessions(ctx)) return newYorkToUtc(date, time);
  const [hours, minutes] = time.split(':').map(Number) as [number, number];
  return new Date(Date.parse(`${date}T00:00:00Z`) + (hours * 60 + minutes) * 60_000).toISOString();
}

/** No session record for the day: the market-open check did not run, so nothing trades. */
export class NoSessionError extends QuantShiftError {}

/** Bars that do not end at the previous session's close, or an intent for another day. */
export class StaleDataError extends QuantShiftError {}

/** The broker and the durable record disagree in a way the step cannot settle alone. */
export class UnknownStateError extends QuantShiftError {}

/**
 * The broker's position shows a split its activities do not list yet (its quantity the booked one
 * times a ratio, the same cost basis, no fill of the day): no stop or exit is derived from the
 * booked stops in the old shares and no entry goes in until the split is listed.
 */
export class UnlistedSplitError extends QuantShiftError {}
