import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isoDate } from '../../../shared/core/market/types.js';

const viaDate = (time: number) => new Date(time).toISOString().slice(0, 10);
const DAY = 86_400_000;

describe('isoDate', () => {
  it('equals Date’s ISO date at the first and last millisecond of every day from 1970 to 2199, then every 97th to 9999', () => {
    for (let day = 0; day < 2_932_897; day += day < 83_600 ? 1 : 97) {
      const start = day * DAY;
      if (isoDate(start) !== viaDate(start) || isoDate(start + DAY - 1) !== viaDate(start + DAY - 1)) {
        expect(isoDate(start)).toBe(viaDate(start));
        expect(isoDate(start + DAY - 1)).toBe(viaDate(start + DAY - 1));
      }
    }
  });

  it('equals Date’s ISO date for any time, fractional, before 1970 or after 9999', () => {
    fc.assert(
      fc.property(fc.double({ min: -8.64e15, max: 8.64e15, noNaN: true }), (time) => {
        expect(isoDate(time)).toBe(viaDate(time));
      }),
      { numRuns: 20_000 },
    );
    expect(() => isoDate(Number.NaN)).toThrow(RangeError);
  });
});
