import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvalidParameterError } from '../../../shared/core/errors.js';
import { alignBars, type BarSeries, indexAtOrAfter, sliceSeries } from '../../../shared/core/market/index.js';

const DAY = 86_400_000;
const d = (n: number): number => Date.UTC(2021, 0, n);

function series(symbol: string, days: number[], withAdj = false): BarSeries {
  const n = days.length;
  const values = (k: number) => Float64Array.from(days, (_, i) => 100 + k + i);
  const s: BarSeries = {
    symbol,
    time: Float64Array.from(days, d),
    open: values(0),
    high: values(2),
    low: values(-2),
    close: values(1),
    volume: new Float64Array(n).fill(1000),
    intraday: false,
  };
  return withAdj ? { ...s, adjClose: values(0.5) } : s;
}

describe('alignBars', () => {
  it('puts two series with gaps on the union calendar', () => {
    const a = series('A', [4, 5, 7, 8]); // no bar on the 6th
    const b = series('B', [5, 6, 8, 11]); // none on the 4th, 7th
    const cal = alignBars([a, b]);
    expect(Array.from(cal.time)).toEqual([4, 5, 6, 7, 8, 11].map(d));
    expect(cal.index).toHaveLength(2);
    expect(Array.from(cal.index[0] as Int32Array)).toEqual([0, 1, -1, 2, 3, -1]);
    expect(Array.from(cal.index[1] as Int32Array)).toEqual([-1, 0, 1, -1, 2, 3]);
    // Every slot points at a bar with that very timestamp.
    cal.index.forEach((slots, k) => {
      const s = [a, b][k] as BarSeries;
      slots.forEach((i, slot) => {
        if (i >= 0) expect(s.time[i]).toBe(cal.time[slot]);
      });
    });
  });

  it('handles identical, disjoint, empty and no series', () => {
    const a = series('A', [4, 5]);
    expect(Array.from(alignBars([a, a]).index[1] as Int32Array)).toEqual([0, 1]);
    const cal = alignBars([a, series('C', [10, 12])]);
    expect(Array.from(cal.time)).toEqual([4, 5, 10, 12].map(d));
    expect(Array.from(cal.index[1] as Int32Array)).toEqual([-1, -1, 0, 1]);
    const withEmpty = alignBars([a, series('E', [])]);
    expect(Array.from(withEmpty.index[1] as Int32Array)).toEqual([-1, -1]);
    expect(alignBars([])).toEqual({ time: new Float64Array(0), index: [] });
  });

  it('merges sorted series into the calendar a sort of every timestamp gives', () => {
    // The union by sorting every timestamp and dropping repeats, each slot's bar by search.
    const bySort = (all: readonly BarSeries[]) => {
      const time = Float64Array.from(new Set(all.flatMap((s) => Array.from(s.time)))).sort();
      const index = all.map((s) => Int32Array.from(time, (t) => s.time.indexOf(t)));
      return { time, index };
    };
    const days = fc
      .uniqueArray(fc.integer({ min: -40, max: 40 }), { maxLength: 30 })
      .map((a) => a.sort((x, y) => x - y));
    fc.assert(
      fc.property(fc.array(days, { maxLength: 5 }), (lists) => {
        const all = lists.map((list, k) => series(`S${k}`, list));
        expect(alignBars(all)).toEqual(bySort(all));
        // Every series on the same times (the calendar taken as it is).
        const same = lists.map((_, k) => series(`T${k}`, lists[0] ?? []));
        expect(alignBars(same)).toEqual(bySort(same));
      }),
    );
  });

  it('aligns series holding the times the merge leaves to the sort (0, infinities) as the sort does', () => {
    const at = (symbol: string, times: number[]): BarSeries => ({
      ...series(
        symbol,
        times.map(() => 1),
      ),
      time: Float64Array.from(times),
    });
    const cal = alignBars([at('A', [-5, 0, 7]), at('B', [0, 3, Number.POSITIVE_INFINITY])]);
    expect(Array.from(cal.time)).toEqual([-5, 0, 3, 7, Number.POSITIVE_INFINITY]);
    expect(Array.from(cal.index[0] as Int32Array)).toEqual([0, 1, -1, 2, -1]);
    expect(Array.from(cal.index[1] as Int32Array)).toEqual([-1, 0, 1, -1, 2]);
  });

  it('refuses a series whose times are not strictly increasing', () => {
    expect(() => alignBars([series('A', [4, 4, 5])])).toThrow(InvalidParameterError);
    expect(() => alignBars([series('A', [5, 4])])).toThrow('A: bar times are not strictly increasing');
  });
});

describe('sliceSeries', () => {
  it('returns views of the same buffers, including adjClose', () => {
    const s = series('A', [4, 5, 6, 7, 8], true);
    const part = sliceSeries(s, 1, 4);
    expect(part.symbol).toBe('A');
    expect(part.intraday).toBe(false);
    expect(Array.from(part.time)).toEqual([5, 6, 7].map(d));
    expect(Array.from(part.close)).toEqual([102, 103, 104]);
    expect(Array.from(part.adjClose ?? [])).toEqual([101.5, 102.5, 103.5]);
    expect(part.open.buffer).toBe(s.open.buffer);
    s.close[1] = 999;
    expect(part.close[0]).toBe(999);
    expect(sliceSeries(s, 2, 2).time.length).toBe(0);
    expect(sliceSeries(series('B', [1]), 0, 1).adjClose).toBeUndefined();
  });

  it('refuses bounds outside the series', () => {
    const s = series('A', [4, 5]);
    expect(() => sliceSeries(s, -1, 1)).toThrow(RangeError);
    expect(() => sliceSeries(s, 0, 3)).toThrow(RangeError);
    expect(() => sliceSeries(s, 2, 1)).toThrow(RangeError);
    expect(() => sliceSeries(s, 0.5, 1)).toThrow('sliceSeries(A): [0.5, 1) is not a range within 0..2');
  });
});

describe('indexAtOrAfter', () => {
  const time = Float64Array.from([4, 5, 7, 8], d);
  it('finds the first bar at or after t', () => {
    expect(indexAtOrAfter(time, d(1))).toBe(0);
    expect(indexAtOrAfter(time, d(4))).toBe(0);
    expect(indexAtOrAfter(time, d(4) + 1)).toBe(1);
    expect(indexAtOrAfter(time, d(6))).toBe(2);
    expect(indexAtOrAfter(time, d(8))).toBe(3);
    expect(indexAtOrAfter(time, d(8) + DAY)).toBe(4);
    expect(indexAtOrAfter(new Float64Array(0), 0)).toBe(0);
  });

  it('agrees with a linear scan', () => {
    const times = Float64Array.from({ length: 101 }, (_, i) => i * 3);
    for (let t = -2; t < 310; t++) {
      const linear = times.findIndex((x) => x >= t);
      expect(indexAtOrAfter(times, t)).toBe(linear < 0 ? times.length : linear);
    }
  });
});
