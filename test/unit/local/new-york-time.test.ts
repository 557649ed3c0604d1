import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { newYorkTime, readNewYorkTime } from '../../../shared/adapters/local/nyse-calendar.js';

/** The reading straight through `Intl` (no cached offset), of the instant's whole second. */
const reference = (instant: number) => readNewYorkTime(instant - (((instant % 1000) + 1000) % 1000));

describe('newYorkTime (local broker clock)', () => {
  it('reads every instant as Intl does, across the calendar years', () => {
    const from = Date.parse('2014-12-31T00:00:00Z');
    const to = Date.parse('2028-01-02T00:00:00Z');
    fc.assert(
      fc.property(fc.integer({ min: from, max: to }), (instant) => {
        expect(newYorkTime(instant)).toEqual(reference(instant));
      }),
      { numRuns: 5_000 },
    );
  });

  it('reads each second around the DST changes as Intl does', () => {
    // 2024-03-10 02:00 EST -> 03:00 EDT (07:00 UTC); 2024-11-03 02:00 EDT -> 01:00 EST (06:00 UTC).
    for (const change of ['2024-03-10T07:00:00Z', '2024-11-03T06:00:00Z']) {
      const at = Date.parse(change);
      for (let t = at - 3_700_000; t <= at + 3_700_000; t += 997) {
        expect(newYorkTime(t)).toEqual(reference(t));
      }
    }
    expect(newYorkTime(Date.parse('2024-03-10T06:59:59Z'))).toEqual({
      date: '2024-03-10',
      minutes: 119,
      offsetMinutes: -300,
    });
    expect(newYorkTime(Date.parse('2024-03-10T07:00:00Z'))).toEqual({
      date: '2024-03-10',
      minutes: 180,
      offsetMinutes: -240,
    });
    expect(newYorkTime(Date.parse('2024-11-03T05:59:59.999Z'))).toEqual({
      date: '2024-11-03',
      minutes: 119,
      offsetMinutes: -240,
    });
    expect(newYorkTime(Date.parse('2024-11-03T06:00:00Z'))).toEqual({
      date: '2024-11-03',
      minutes: 60,
      offsetMinutes: -300,
    });
  });
});
