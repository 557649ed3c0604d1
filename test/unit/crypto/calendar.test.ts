import { describe, expect, it } from 'vitest';
import { nyseCalendar } from '../../../shared/adapters/local/nyse-calendar.js';
import { InvalidParameterError } from '../../../shared/core/errors.js';
import { cryptoCalendar, utcSessionDate } from '../../../shared/core/market/crypto-calendar.js';
import type { MarketCalendar } from '../../../shared/core/ports/calendar.js';

describe('the 24/7 crypto calendar', () => {
  it('has a session on every UTC day: weekends and NYSE holidays included', () => {
    // 2024-12-21 (Sat) .. 2025-01-01 (Wed, New Year's Day): 12 days, 12 sessions.
    const days = cryptoCalendar.sessions('2024-12-21', '2025-01-01');
    expect(days).toHaveLength(12);
    expect(days[0]).toEqual({ date: '2024-12-21', open: '00:00', close: '24:00' });
    expect(days.map((d) => d.date)).toContain('2024-12-25');
    expect(cryptoCalendar.session('2024-02-29')).toEqual({
      date: '2024-02-29',
      open: '00:00',
      close: '24:00',
    });
    // A leap year has 366 sessions, a common year 365.
    expect(cryptoCalendar.sessions('2024-01-01', '2024-12-31')).toHaveLength(366);
    expect(cryptoCalendar.sessions('2025-01-01', '2025-12-31')).toHaveLength(365);
    expect(cryptoCalendar.sessions('2025-01-02', '2025-01-01')).toEqual([]);
  });

  it('is always open; the next open and close are the next UTC midnight', () => {
    const saturdayNoon = Date.parse('2025-03-08T12:34:56.000Z');
    expect(cryptoCalendar.clock(saturdayNoon)).toEqual({
      timestamp: '2025-03-08T12:34:56.000Z',
      isOpen: true,
      nextOpen: '2025-03-09T00:00:00.000Z',
      nextClose: '2025-03-09T00:00:00.000Z',
    });
    expect(cryptoCalendar.clock(Date.parse('2025-03-09T00:00:00.000Z')).nextClose).toBe(
      '2025-03-10T00:00:00.000Z',
    );
    expect(utcSessionDate(Date.parse('2025-03-08T23:59:59.999Z'))).toBe('2025-03-08');
    expect(utcSessionDate(Date.parse('2025-03-09T00:00:00.000Z'))).toBe('2025-03-09');
  });

  it('refuses a date that does not exist, naming it', () => {
    expect(() => cryptoCalendar.sessions('2025-02-30', '2025-03-01')).toThrow(InvalidParameterError);
    expect(() => cryptoCalendar.session('2025-13-01')).toThrow(/24\/7 calendar: date "2025-13-01"/);
    expect(() => cryptoCalendar.clock(Number.NaN)).toThrow(InvalidParameterError);
  });

  it('sits behind the same port as the NYSE calendar, which keeps its weekends and holidays', () => {
    const calendars: MarketCalendar[] = [nyseCalendar, cryptoCalendar];
    const week = calendars.map((c) => c.sessions('2025-12-22', '2025-12-28').map((d) => d.date));
    // NYSE: Mon..Wed (Christmas Thursday closed), Friday; crypto: all seven days.
    expect(week[0]).toEqual(['2025-12-22', '2025-12-23', '2025-12-24', '2025-12-26']);
    expect(week[1]).toHaveLength(7);
    expect(nyseCalendar.session('2025-12-24')).toEqual({ date: '2025-12-24', open: '09:30', close: '13:00' });
    expect(nyseCalendar.clock(Date.parse('2025-12-27T15:00:00Z')).isOpen).toBe(false);
    expect(nyseCalendar.clock(Date.parse('2025-12-26T15:00:00Z')).isOpen).toBe(true);
    expect(nyseCalendar.timeZone).toBe('America/New_York');
    expect(cryptoCalendar.timeZone).toBe('UTC');
  });
});
