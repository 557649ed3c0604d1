/**
 * The 24/7 calendar of the crypto market: every UTC calendar day is a session, from 00:00 to
 * 24:00 UTC, with no weekends and no holidays. A daily bar is one UTC day (the bundled
 * `data/crypto` files and Coinbase's `ONE_DAY` candles alike). Pure: instants are passed in.
 */
import { InvalidParameterError } from '../errors.js';
import type { MarketClock, TradingDay } from '../ports/broker.js';
import type { MarketCalendar } from '../ports/calendar.js';
import { utcDay as utcDateOf } from './utc-day.js';

const MS_PER_DAY = 86_400_000;
/** A session opens at the start of its UTC day and closes at the end of it. */
export const CRYPTO_SESSION_OPEN = '00:00';
export const CRYPTO_SESSION_CLOSE = '24:00';

/** Strict `YYYY-MM-DD` to 00:00 UTC; throws naming the argument when it is not a calendar date. */
function utcDay(date: string, what: string): number {
  const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(date);
  const time = match ? Date.UTC(Number(match[1]), Number(match[2]) - 1, Number(match[3])) : Number.NaN;
  if (Number.isNaN(time) || new Date(time).toISOString().slice(0, 10) !== date) {
    throw new InvalidParameterError(`24/7 calendar: ${what} "${date}" is not YYYY-MM-DD`);
  }
  return time;
}

function session(date: string): TradingDay {
  return { date, open: CRYPTO_SESSION_OPEN, close: CRYPTO_SESSION_CLOSE };
}

/** The 24/7 UTC calendar. */
export const cryptoCalendar: MarketCalendar = {
  name: '24/7 UTC',
  timeZone: 'UTC',
  session(date: string): TradingDay {
    utcDay(date, 'date');
    return session(date);
  },
  sessions(from: string, to: string): TradingDay[] {
    const start = utcDay(from, 'from');
    const end = utcDay(to, 'to');
    const days: TradingDay[] = [];
    for (let day = start; day <= end; day += MS_PER_DAY) {
      days.push(session(new Date(day).toISOString().slice(0, 10)));
    }
    return days;
  },
  clock(instant: number): MarketClock {
    if (!Number.isFinite(instant)) {
      throw new InvalidParameterError(`24/7 calendar: clock: instant ${instant} is not finite`);
    }
    const nextMidnight = new Date((Math.floor(instant / MS_PER_DAY) + 1) * MS_PER_DAY).toISOString();
    return {
      timestamp: new Date(instant).toISOString(),
      isOpen: true,
      // Always open: the next session opens, and today's closes, at the next UTC midnight.
      nextOpen: nextMidnight,
      nextClose: nextMidnight,
    };
  },
};

/** The UTC session date (`YYYY-MM-DD`) an instant falls in. */
export function utcSessionDate(instant: number): string {
  return utcDateOf(instant);
}
