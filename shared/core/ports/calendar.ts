import type { MarketClock, TradingDay } from './broker.js';

/**
 * A market's trading calendar: which days are sessions and when they open and close. Two
 * implementations: the NYSE calendar (`shared/adapters/local/nyse-calendar.ts`, New York time,
 * weekends, holidays and early closes) and the 24/7 crypto calendar
 * (`shared/core/market/crypto-calendar.ts`, every UTC day a session, no holidays). The brokers'
 * `getCalendar` / `getClock` answer with the same shapes.
 */
export interface MarketCalendar {
  /** `NYSE` or `24/7 UTC`. */
  readonly name: string;
  /** The IANA zone of the sessions' `open` / `close` times. */
  readonly timeZone: 'America/New_York' | 'UTC';
  /** The session of `date` (`YYYY-MM-DD`), or undefined when the market is closed all day. */
  session(date: string): TradingDay | undefined;
  /** Every session from `from` to `to` (inclusive), in order. */
  sessions(from: string, to: string): TradingDay[];
  /** The market clock at an instant (epoch ms, passed in: the core reads no clock). */
  clock(instant: number): MarketClock;
}
