/**
 * The NYSE trading calendar as data, 2015..2027: full-day closures (holidays and the national days
 * of mourning of 2018-12-05 and 2025-01-09) and early closes at 13:00 New York. Every weekday that
 * is not listed is a regular session, 09:30..16:00 New York. The tables follow the exchange's
 * published holiday schedules; the paper-broker tests check them against the holiday rules
 * (observance shifts, Good Friday from Easter) and against the bundled daily bars.
 *
 * Also the New York wall-clock helpers the local broker needs (a time zone with DST, through Intl).
 */
import { InvalidParameterError } from '../../core/errors.js';
import { newYorkTime as newYorkWallClock } from '../../core/live/orders.js';
import type { MarketClock, TradingDay } from '../../core/ports/broker.js';
import type { MarketCalendar } from '../../core/ports/calendar.js';

/** The first and last year the tables cover. */
export const CALENDAR_FIRST_YEAR = 2015;
export const CALENDAR_LAST_YEAR = 2027;

export const SESSION_OPEN = '09:30';
export const REGULAR_CLOSE = '16:00';
export const EARLY_CLOSE = '13:00';

/** Weekdays the exchange is closed, `MM-DD` per year. */
const CLOSED: Readonly<Record<number, readonly string[]>> = {
  2015: ['01-01', '01-19', '02-16', '04-03', '05-25', '07-03', '09-07', '11-26', '12-25'],
  2016: ['01-01', '01-18', '02-15', '03-25', '05-30', '07-04', '09-05', '11-24', '12-26'],
  2017: ['01-02', '01-16', '02-20', '04-14', '05-29', '07-04', '09-04', '11-23', '12-25'],
  // 12-05: national day of mourning (President George H. W. Bush).
  2018: ['01-01', '01-15', '02-19', '03-30', '05-28', '07-04', '09-03', '11-22', '12-05', '12-25'],
  2019: ['01-01', '01-21', '02-18', '04-19', '05-27', '07-04', '09-02', '11-28', '12-25'],
  2020: ['01-01', '01-20', '02-17', '04-10', '05-25', '07-03', '09-07', '11-26', '12-25'],
  2021: ['01-01', '01-18', '02-15', '04-02', '05-31', '07-05', '09-06', '11-25', '12-24'],
  // New Year's Day 2022 fell on a Saturday: not observed on Friday 2021-12-31. Juneteenth from 2022.
  2022: ['01-17', '02-21', '04-15', '05-30', '06-20', '07-04', '09-05', '11-24', '12-26'],
  2023: ['01-02', '01-16', '02-20', '04-07', '05-29', '06-19', '07-04', '09-04', '11-23', '12-25'],
  2024: ['01-01', '01-15', '02-19', '03-29', '05-27', '06-19', '07-04', '09-02', '11-28', '12-25'],
  // 01-09: national day of mourning (President Jimmy Carter).
  2025: ['01-01', '01-09', '01-20', '02-17', '04-18', '05-26', '06-19', '07-04', '09-01', '11-27', '12-25'],
  2026: ['01-01', '01-19', '02-16', '04-03', '05-25', '06-19', '07-03', '09-07', '11-26', '12-25'],
  2027: ['01-01', '01-18', '02-15', '03-26', '05-31', '06-18', '07-05', '09-06', '11-25', '12-24'],
};

/** Sessions that close at 13:00 New York, `MM-DD` per year. */
const EARLY: Readonly<Record<number, readonly string[]>> = {
  2015: ['11-27', '12-24'],
  2016: ['11-25'],
  2017: ['07-03', '11-24'],
  2018: ['07-03', '11-23', '12-24'],
  2019: ['07-03', '11-29', '12-24'],
  2020: ['11-27', '12-24'],
  2021: ['11-26'],
  2022: ['11-25'],
  2023: ['07-03', '11-24'],
  2024: ['07-03', '11-29', '12-24'],
  2025: ['07-03', '11-28', '12-24'],
  2026: ['11-27', '12-24'],
  2027: ['11-26'],
};

const closedDays = new Set<string>();
const earlyDays = new Set<string>();
for (let year = CALENDAR_FIRST_YEAR; year <= CALENDAR_LAST_YEAR; year++) {
  for (const day of CLOSED[year] ?? []) closedDays.add(`${year}-${day}`);
  for (const day of EARLY[year] ?? []) earlyDays.add(`${year}-${day}`);
}

/** The full-day closures on weekdays, `YYYY-MM-DD`, in order. */
export function nyseClosures(): string[] {
  return [...closedDays].sort();
}

/** The early-close sessions, `YYYY-MM-DD`, in order. */
export function nyseEarlyCloses(): string[] {
  return [...earlyDays].sort();
}

const MS_PER_DAY = 86_400_000;

/** Strict `YYYY-MM-DD` to 00:00 UTC of that date; NaN when it is not a calendar date. */
export function parseDate(text: string): number {
  const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text);
  if (!match) return Number.NaN;
  const time = Date.UTC(Number(match[1]), Number(match[2]) - 1, Number(match[3]));
  return new Date(time).toISOString().slice(0, 10) === text ? time : Number.NaN;
}

/** `YYYY-MM-DD` of a 00:00 UTC date value. */
export function formatDate(day: number): string {
  return new Date(day).toISOString().slice(0, 10);
}

function checkRange(date: string): void {
  const year = Number(date.slice(0, 4));
  if (!(year >= CALENDAR_FIRST_YEAR && year <= CALENDAR_LAST_YEAR)) {
    throw new InvalidParameterError(
      `NYSE calendar: ${date} is outside the years the local calendar covers (${CALENDAR_FIRST_YEAR}..${CALENDAR_LAST_YEAR})`,
    );
  }
}

/** The session of `date` (`YYYY-MM-DD`), or undefined on a weekend or a closure. */
export function tradingDay(date: string): TradingDay | undefined {
  const day = parseDate(date);
  if (Number.isNaN(day)) throw new InvalidParameterError(`NYSE calendar: "${date}" is not YYYY-MM-DD`);
  checkRange(date);
  const weekday = new Date(day).getUTCDay();
  if (weekday === 0 || weekday === 6 || closedDays.has(date)) return undefined;
  return { date, open: SESSION_OPEN, close: earlyDays.has(date) ? EARLY_CLOSE : REGULAR_CLOSE };
}

/** Every session from `from` to `to` (both `YYYY-MM-DD`, inclusive), in order. */
export function tradingDays(from: string, to: string): TradingDay[] {
  const start = parseDate(from);
  const end = parseDate(to);
  if (Number.isNaN(start)) throw new InvalidParameterError(`NYSE calendar: "${from}" is not YYYY-MM-DD`);
  if (Number.isNaN(end)) throw new InvalidParameterError(`NYSE calendar: "${to}" is not YYYY-MM-DD`);
  checkRange(from);
  checkRange(to);
  const days: TradingDay[] = [];
  for (let day = start; day <= end; day += MS_PER_DAY) {
    const session = tradingDay(formatDate(day));
    if (session !== undefined) days.push(session);
  }
  return days;
}

/** The date `n` calendar days after `date` (negative: before). */
export function addDays(date: string, n: number): string {
  return formatDate(parseDate(date) + n * MS_PER_DAY);
}

// ---------------------------------------------------------------------------------------------
// New York wall clock

/** New York wall-clock reading of an instant. */
export interface NewYorkTime {
  /** `YYYY-MM-DD`. */
  readonly date: string;
  /** Minutes since midnight New York (09:30 is 570). */
  readonly minutes: number;
  /** The offset from UTC in minutes (-300 under EST, -240 under EDT). */
  readonly offsetMinutes: number;
}

/** Reads an instant (epoch ms) on the New York wall clock. */
export function newYorkTime(instant: number): NewYorkTime {
  const whole = instant - (((instant % 1000) + 1000) % 1000);
  const offsetMinutes = hourOffset(whole);
  if (offsetMinutes === undefined) return readNewYorkTime(whole);
  const wall = new Date(whole + offsetMinutes * 60_000).toISOString();
  return {
    date: wall.slice(0, 10),
    minutes: Number(wall.slice(11, 13)) * 60 + Number(wall.slice(14, 16)),
    offsetMinutes,
  };
}

/**
 * The reading through `Intl` (a time-zone conversion: the costly part of {@link newYorkTime}),
 * uncached: the tests' reference for the cached offsets.
 */
export function readNewYorkTime(whole: number): NewYorkTime {
  const { date, time } = newYorkWallClock(new Date(whole).toISOString());
  const wall = Date.parse(`${date}T${time}Z`);
  return {
    date,
    minutes: Number(time.slice(0, 2)) * 60 + Number(time.slice(3, 5)),
    offsetMinutes: Math.round((wall - whole) / 60_000),
  };
}

/**
 * New York's offset from UTC for each UTC hour already read (undefined: it changes within that
 * hour). The local broker reads its clock on New York time several times a request (the order
 * POST, the list, each price): one `Intl` conversion each cost its thread more than the rest of a
 * cancel. The offset is read at both ends of the hour through `Intl`, so a change inside it (New
 * York's DST changes fall on whole UTC hours, but this does not rely on it) is never cached.
 */
const offsets = new Map<number, number | undefined>();
const OFFSETS_KEPT = 100_000;
const MS_PER_HOUR = 3_600_000;

function hourOffset(whole: number): number | undefined {
  const hour = whole - (((whole % MS_PER_HOUR) + MS_PER_HOUR) % MS_PER_HOUR);
  if (offsets.has(hour)) return offsets.get(hour);
  const first = readNewYorkTime(hour).offsetMinutes;
  const last = readNewYorkTime(hour + MS_PER_HOUR - 1000).offsetMinutes;
  const offset = first === last ? first : undefined;
  if (offsets.size >= OFFSETS_KEPT) offsets.clear();
  offsets.set(hour, offset);
  return offset;
}

/**
 * Instants already found by {@link newYorkInstant} (a pure function of its arguments): the local
 * broker asks for the same few (a session's midnight, open, close) on every request and for every
 * bar of a symbol it loads, and each answer otherwise costs two time-zone conversions.
 */
const instants = new Map<string, number>();
const INSTANTS_KEPT = 100_000;

/** The instant of a New York wall-clock time (`HH:MM`) on `date`; DST is found, not assumed. */
export function newYorkInstant(date: string, hhmm: string): number {
  const key = `${date} ${hhmm}`;
  const known = instants.get(key);
  if (known !== undefined) return known;
  const instant = findNewYorkInstant(date, hhmm);
  if (instants.size >= INSTANTS_KEPT) instants.clear();
  instants.set(key, instant);
  return instant;
}

function findNewYorkInstant(date: string, hhmm: string): number {
  const day = parseDate(date);
  const match = /^(\d{2}):(\d{2})$/.exec(hhmm);
  if (Number.isNaN(day) || !match) {
    throw new InvalidParameterError(`New York time: "${date} ${hhmm}" is not YYYY-MM-DD HH:MM`);
  }
  const minutes = Number(match[1]) * 60 + Number(match[2]);
  const wall = day + minutes * 60_000;
  for (const offsetHours of [5, 4]) {
    const candidate = wall + offsetHours * 3_600_000;
    const reading = newYorkTime(candidate);
    if (reading.date === date && reading.minutes === minutes) return candidate;
  }
  throw new InvalidParameterError(`New York time: ${date} ${hhmm} does not exist (a DST gap)`);
}

/** RFC 3339 with the New York offset, as Alpaca's clock writes times: `2024-01-02T09:30:00.000-05:00`. */
export function formatNewYork(instant: number): string {
  const { offsetMinutes } = newYorkTime(instant);
  const local = new Date(instant + offsetMinutes * 60_000).toISOString().slice(0, 23);
  const sign = offsetMinutes < 0 ? '-' : '+';
  const abs = Math.abs(offsetMinutes);
  return `${local}${sign}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
}

/** A session with its open and close as instants. */
export interface Session extends TradingDay {
  readonly openAt: number;
  readonly closeAt: number;
}

const sessionCache = new Map<string, Session | null>();

/** {@link tradingDay} with instants, cached. */
export function sessionOn(date: string): Session | undefined {
  const cached = sessionCache.get(date);
  if (cached !== undefined) return cached ?? undefined;
  const day = tradingDay(date);
  const session =
    day === undefined
      ? null
      : { ...day, openAt: newYorkInstant(date, day.open), closeAt: newYorkInstant(date, day.close) };
  sessionCache.set(date, session);
  return session ?? undefined;
}

/** The first session whose open is strictly after `instant`. */
export function nextSessionOpeningAfter(instant: number): Session {
  let date = newYorkTime(instant).date;
  for (let i = 0; i < 30; i++) {
    const session = sessionOn(date);
    if (session !== undefined && session.openAt > instant) return session;
    date = addDays(date, 1);
  }
  throw new InvalidParameterError(`NYSE calendar: no session within 30 days after ${formatNewYork(instant)}`);
}

/** The first session whose close is strictly after `instant` (today's while it is open). */
export function nextSessionClosingAfter(instant: number): Session {
  let date = newYorkTime(instant).date;
  for (let i = 0; i < 30; i++) {
    const session = sessionOn(date);
    if (session !== undefined && session.closeAt > instant) return session;
    date = addDays(date, 1);
  }
  throw new InvalidParameterError(`NYSE calendar: no session within 30 days after ${formatNewYork(instant)}`);
}

/** The settlement date of a trade on `date`: T+2 sessions, T+1 from 2024-05-28 (the SEC's move). */
export function settlementDate(date: string): string {
  const lag = date >= '2024-05-28' ? 1 : 2;
  let day = date;
  for (let n = 0; n < lag; ) {
    day = addDays(day, 1);
    const weekday = new Date(parseDate(day)).getUTCDay();
    const open =
      Number(day.slice(0, 4)) > CALENDAR_LAST_YEAR
        ? weekday !== 0 && weekday !== 6
        : tradingDay(day) !== undefined;
    if (open) n++;
  }
  return day;
}

/** The NYSE calendar behind the {@link MarketCalendar} port (the 24/7 one is `core/market/crypto-calendar.ts`). */
export const nyseCalendar: MarketCalendar = {
  name: 'NYSE',
  timeZone: 'America/New_York',
  session: tradingDay,
  sessions: tradingDays,
  clock(instant: number): MarketClock {
    const open = sessionOn(newYorkTime(instant).date);
    const isOpen = open !== undefined && instant >= open.openAt && instant < open.closeAt;
    return {
      timestamp: formatNewYork(instant),
      isOpen,
      nextOpen: formatNewYork(nextSessionOpeningAfter(instant).openAt),
      nextClose: formatNewYork(nextSessionClosingAfter(instant).closeAt),
    };
  },
};
