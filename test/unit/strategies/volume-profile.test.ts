import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { loadBarsCsv } from '../../../shared/adapters/fs/bars.js';
import { type BarSeries, barAt } from '../../../shared/core/market/types.js';
import { ENTER_LONG, ENTER_SHORT, ruleFlags } from '../../../shared/core/strategies/rule.js';
import type { PositionSide } from '../../../shared/core/strategies/types.js';
import { IndicatorCache } from '../../../shared/core/strategies/vector.js';
import {
  setBits,
  volumeProfile,
  volumeProfileStrategy,
} from '../../../shared/core/strategies/volume-profile.js';
import {
  engineRun,
  instanceDecisions,
  itMatchesTheReference,
  type RuleDecision,
  seriesWithVolume,
} from '../../helpers/strategy-sim.js';

/** The profile of bars given oldest first as [high, low, volume]. */
function profileOf(bars: [number, number, number][], previousClose: number, bins: number, valueArea: number) {
  return volumeProfile(
    bars.map((b) => b[0]),
    bars.map((b) => b[1]),
    bars.map((b) => b[2]),
    0,
    bars.length,
    previousClose,
    bins,
    valueArea,
    new Float64Array(bins),
  );
}

describe('volume profile: POC, VAL and VAH of hand-computed windows', () => {
  it('spreads each bar over the bins its range overlaps, in proportion', () => {
    // low 10, high 14, 4 bins of width 1: [10,11) [11,12) [12,13) [13,14)
    // [10,12] × 100 → 50 + 50; [10,11] × 200 → 200 in bin 0 (it only touches bin 1's edge);
    // [12,14] × 100 → 50 + 50.  Bins: 250 50 50 50, total 400.
    // POC bin 0 (midpoint 10.5). Value area ≥ 280: 250, then at the lower edge the bin above, 300.
    expect(
      profileOf(
        [
          [12, 10, 100],
          [11, 10, 200],
          [14, 12, 100],
        ],
        13,
        4,
        0.7,
      ),
    ).toEqual({ poc: 10.5, val: 10, vah: 12, pocBin: 0, lowBin: 0, highBin: 1 });
  });

  it('breaks a POC tie by the midpoint nearest the previous close, then by the lower bin', () => {
    // [10,11] × 100 → bin 0, [13,14] × 100 → bin 3: bins 100 0 0 100, midpoints 10.5 and 13.5
    const bars: [number, number, number][] = [
      [11, 10, 100],
      [14, 13, 100],
    ];
    // the value area then grows over the empty bins to the other 100 (≥ 140 of 200)
    expect(profileOf(bars, 13.2, 4, 0.7)).toEqual({
      poc: 13.5,
      val: 10,
      vah: 14,
      pocBin: 3,
      lowBin: 0,
      highBin: 3,
    });
    expect(profileOf(bars, 12, 4, 0.7)).toMatchObject({ poc: 10.5, pocBin: 0 }); // 1.5 from both: the lower
  });

  it('grows the value area by the larger neighbour, the bin above on a tie', () => {
    // [10,13] × 30 → 10 10 10; [11,12] × 40 → bin 1: bins 10 50 10, total 70
    const bars: [number, number, number][] = [
      [13, 10, 30],
      [12, 11, 40],
    ];
    expect(profileOf(bars, 11, 3, 0.7)).toEqual({
      poc: 11.5,
      val: 11,
      vah: 12,
      pocBin: 1,
      lowBin: 1,
      highBin: 1,
    });
    // 0.8 of 70 = 56 > 50: the neighbours tie at 10, the bin above is added
    expect(profileOf(bars, 11, 3, 0.8)).toEqual({
      poc: 11.5,
      val: 11,
      vah: 13,
      pocBin: 1,
      lowBin: 1,
      highBin: 2,
    });
    // a heavier bin below wins over the bin above
    const heavierBelow: [number, number, number][] = [...bars, [11, 10, 5]];
    expect(profileOf(heavierBelow, 11, 3, 0.8)).toMatchObject({ val: 10, vah: 12 });
  });

  it('puts a bar with high == low in bin floor((price - low) / width), the top price in the last bin', () => {
    // low 10, high 13, width 1: 12.5 → bin 2; 13 → floor(3) capped at bin 2; 10 → bin 0
    expect(
      profileOf(
        [
          [12.5, 12.5, 20],
          [13, 13, 20],
          [10, 10, 30],
        ],
        11,
        3,
        0.5,
      ),
    ).toEqual({ poc: 12.5, val: 12, vah: 13, pocBin: 2, lowBin: 2, highBin: 2 });
  });

  it('has no profile for a window with no price range', () => {
    expect(
      profileOf(
        [
          [10, 10, 100],
          [10, 10, 50],
        ],
        10,
        4,
        0.7,
      ),
    ).toBeNull();
  });
});

// [high, low, close, volume]; the open is the bar's midpoint.
const bars: [number, number, number, number][] = [
  [12, 10, 11, 100], // 0
  [14, 12, 13, 100], // 1
  [10, 9, 9.5, 200], // 2
  [10.5, 9.5, 10, 100], // 3
  [11, 10, 10.75, 100], // 4
  [12, 11, 11.5, 100], // 5
  [11.75, 11.25, 11.5, 100], // 6
  [10.75, 10.25, 10.5, 100], // 7
];
const hand = seriesWithVolume(
  'X',
  bars.map(([h, l, c, v], i) => [`2024-06-${String(i + 3).padStart(2, '0')}`, (h + l) / 2, h, l, c, v]),
);
const date = (t: number) => `2024-06-${String(t + 3).padStart(2, '0')}`;

describe('volume-profile on a hand-worked series (lookback 2, bins 2, value area 0.7)', () => {
  // t  window (bars)  low..high   bins (volume)   POC      VAL .. VAH   close
  // 2  0, 1           10..14      100 | 100       13 (the midpoint nearest 13)  10..14   9.5 < VAL
  // 3  1, 2           9..14       200 | 100       10.25    9..14        10 < POC: the long holds
  // 4  2, 3           9..10.5     175 | 125       9.375    9..10.5      10.75 >= POC
  // 5  3, 4           9.5..11     100 | 100       10.625   9.5..11      11.5 > VAH
  // 6  4, 5           10..12      100 | 100       11.5     10..12       11.5 <= POC
  // 7  5, 6           11..12      100 | 100       11.25 (equidistant: the lower)  11..12   10.5 < VAL
  const params = { lookback: 2, bins: 2, valueArea: 0.7 };

  it('long-only', () => {
    expect(instanceDecisions(volumeProfileStrategy, params, hand, 'long-only')).toEqual([
      [2, 'enter', 'long'], // the first bar with a full window
      [4, 'exit'],
      [7, 'enter', 'long'], // t=5 above the value area is the short side: ignored; t=7 is the last bar
    ]);
    const run = engineRun(volumeProfileStrategy, params, hand, 'long-only');
    expect(run.decisions).toEqual([
      [date(2), 'entry', 'buy'],
      [date(4), 'exit', 'sell'],
    ]);
    expect(run.trades).toEqual([['long', date(3), 10, date(5), 11.5]]);
  });

  it('long-short', () => {
    expect(instanceDecisions(volumeProfileStrategy, params, hand, 'long-short')).toEqual([
      [2, 'enter', 'long'],
      [4, 'exit'],
      [5, 'enter', 'short'],
      [6, 'exit'],
      [7, 'enter', 'long'],
    ]);
    const run = engineRun(volumeProfileStrategy, params, hand, 'long-short');
    expect(run.trades).toEqual([
      ['long', date(3), 10, date(5), 11.5],
      ['short', date(6), 11.5, date(7), 10.5],
    ]);
  });

  it('makes no decision, neither entry nor exit, on a window with no price range', () => {
    const flatWindow = seriesWithVolume('F', [
      ['2024-01-02', 10, 10, 10, 10, 100],
      ['2024-01-03', 10, 10, 10, 10, 100],
      ['2024-01-04', 5, 5, 5, 5, 100],
      ['2024-01-05', 20, 20, 20, 20, 100],
    ]);
    const instance = volumeProfileStrategy.create(volumeProfileStrategy.params.parse(params), {
      direction: 'long-short',
    });
    const intents = (['flat', 'flat', 'flat', 'long'] as const).map((position, t) =>
      instance.onBar(barAt(flatWindow, t), { position }),
    );
    // t=2: the window 10..10 has no range: no entry, though 5 is below all of it;
    // t=3: the window 5..10 has one, and the long exits at 20 >= POC
    expect(intents.map((i) => i.action)).toEqual(['hold', 'hold', 'hold', 'exit']);
  });

  it('has the documented defaults and a strict schema', () => {
    expect(volumeProfileStrategy.params.parse({})).toEqual({
      lookback: 20,
      bins: 24,
      valueArea: 0.7,
      atrPeriod: 14,
    });
    expect(volumeProfileStrategy.params.safeParse({ valueArea: 1.5 }).error?.issues[0]?.path).toEqual([
      'valueArea',
    ]);
    expect(volumeProfileStrategy.params.safeParse({ window: 20 }).success).toBe(false);
  });
});

/**
 * The rule written out again: every bin checked against every bar of the window t-lookback .. t-1,
 * oldest first.
 */
function referenceRule(series: BarSeries, lookback: number, bins: number, valueArea: number) {
  const profileAt = (t: number) => {
    const from = t - lookback;
    let lo = Number.POSITIVE_INFINITY;
    let hi = Number.NEGATIVE_INFINITY;
    for (let j = from; j < t; j++) {
      lo = Math.min(lo, series.low[j] as number);
      hi = Math.max(hi, series.high[j] as number);
    }
    if (hi === lo) return null;
    const width = (hi - lo) / bins;
    const volume = new Float64Array(bins);
    let total = 0;
    for (let j = from; j < t; j++) {
      const h = series.high[j] as number;
      const l = series.low[j] as number;
      const v = series.volume[j] as number;
      total += v;
      if (h === l) {
        const bin = Math.min(bins - 1, Math.floor((l - lo) / width));
        volume[bin] = (volume[bin] as number) + v;
        continue;
      }
      for (let i = 0; i < bins; i++) {
        const overlap = Math.min(h, lo + (i + 1) * width) - Math.max(l, lo + i * width);
        if (overlap > 0) volume[i] = (volume[i] as number) + (v * overlap) / (h - l);
      }
    }
    const mid = (i: number) => lo + (i + 0.5) * width;
    const previousClose = series.close[t - 1] as number;
    const most = Math.max(...volume);
    const candidates = Array.from(volume).flatMap((v, i) => (v === most ? [i] : []));
    candidates.sort((a, b) => Math.abs(mid(a) - previousClose) - Math.abs(mid(b) - previousClose) || a - b);
    const poc = candidates[0] as number;
    let low = poc;
    let high = poc;
    let held = volume[poc] as number;
    while (held < valueArea * total && (low > 0 || high < bins - 1)) {
      const canUp = high < bins - 1;
      const canDown = low > 0;
      if (canUp && (!canDown || (volume[high + 1] as number) >= (volume[low - 1] as number))) {
        high++;
        held += volume[high] as number;
      } else {
        low--;
        held += volume[low] as number;
      }
    }
    return { poc: mid(poc), val: lo + low * width, vah: lo + (high + 1) * width };
  };
  return (t: number, position: PositionSide): RuleDecision => {
    if (t < lookback) return null;
    const p = profileAt(t);
    if (p === null) return null;
    const c = series.close[t] as number;
    if (position === 'long') return c >= p.poc ? 'exit' : null;
    if (position === 'short') return c <= p.poc ? 'exit' : null;
    if (c < p.val) return 'long';
    if (c > p.vah) return 'short';
    return null;
  };
}

describe('volume-profile against an independent reimplementation', () => {
  const cases = [
    { lookback: 20, bins: 24, valueArea: 0.7 },
    { lookback: 10, bins: 12, valueArea: 0.5 },
    { lookback: 40, bins: 30, valueArea: 0.85 },
  ];
  itMatchesTheReference(volumeProfileStrategy, cases, (series, p) =>
    referenceRule(series, p.lookback, p.bins, p.valueArea),
  );
});

/**
 * The vectorized conditions (the fast engine's form: estimated histograms, exact ones where a choice
 * is close) against `volumeProfile` (the instance's) at every bar: the four condition bits equal.
 */
function exactCodes(series: BarSeries, lookback: number, bins: number, valueArea: number): Uint8Array {
  const n = series.close.length;
  const codes = new Uint8Array(n);
  const scratch = new Float64Array(bins);
  for (let i = lookback; i < n; i++) {
    const from = i - lookback;
    const p = volumeProfile(
      series.high.subarray(from, i),
      series.low.subarray(from, i),
      series.volume.subarray(from, i),
      0,
      lookback,
      series.close[i - 1] as number,
      bins,
      valueArea,
      scratch,
    );
    const c = series.close[i] as number;
    codes[i] = p === null ? 0 : ruleFlags(c < p.val, c > p.vah, c >= p.poc, c <= p.poc);
  }
  return codes;
}

/** Bars `from` .. `to` - 1 of a series. */
function sliceOf(series: BarSeries, from: number, to: number): BarSeries {
  return {
    ...series,
    time: series.time.slice(from, to),
    open: series.open.slice(from, to),
    high: series.high.slice(from, to),
    low: series.low.slice(from, to),
    close: series.close.slice(from, to),
    volume: series.volume.slice(from, to),
  };
}

/** The cache's batch of thresholds for `bins` (built by `vectorCodes` before). */
function batchOf(cache: IndicatorCache, bins: number) {
  return cache.get(
    `volume-profile-batch:${bins}`,
    () => {
      throw new Error(`no batch for ${bins} bins`);
    },
    () => 0,
  ) as unknown as { readonly bytes: number; readonly pending: Map<number, unknown> };
}

function vectorCodes(cache: IndicatorCache, lookback: number, bins: number, valueArea: number) {
  const params = volumeProfileStrategy.params.parse({ lookback, bins, valueArea });
  return volumeProfileStrategy.vectorize?.(params, { direction: 'long-short' }, cache).codes;
}

/** Bars on a coarse price grid (ties in the bins), some with no range, some with no volume. */
const tieBars = fc.array(
  fc.record({
    low: fc.integer({ min: 0, max: 6 }),
    span: fc.constantFrom(0, 0, 1, 1, 2, 3, 6),
    close: fc.integer({ min: -1, max: 13 }),
    volume: fc.constantFrom(0, 100, 100, 100, 200, 300, 0.1, 1e-3, 1e15),
  }),
  { minLength: 12, maxLength: 60 },
);

function tieSeries(
  bars: { low: number; span: number; close: number; volume: number }[],
  scale: number,
  base = 100,
) {
  return seriesWithVolume(
    'TIE',
    bars.map((b, i) => {
      const low = base + b.low * scale;
      const high = low + b.span * scale;
      const day = new Date(Date.UTC(2024, 0, 1 + i)).toISOString().slice(0, 10);
      return [day, low, high, low, base + (b.close * scale) / 2, b.volume] as const;
    }),
  );
}

describe('setBits (the marks of valueArea buckets)', () => {
  it('sets exactly the bits of a range, whole words at a time, as setting each bit would', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer(), { minLength: 8, maxLength: 8 }),
        fc.nat(255),
        fc.nat(255),
        (initial, a, b) => {
          const from = Math.min(a, b);
          const to = Math.max(a, b);
          const words = Int32Array.from(initial);
          const expected = Int32Array.from(initial);
          for (let q = from; q <= to; q++) expected[q >> 5] = (expected[q >> 5] as number) | (1 << (q & 31));
          setBits(words, from, to);
          expect(words).toEqual(expected);
        },
      ),
      { numRuns: 500 },
    );
    const all = new Int32Array(2048);
    setBits(all, 0, 65_535);
    expect(all.every((w) => w === -1)).toBe(true);
  });
});

describe('volume-profile: the vectorized conditions equal volumeProfile at every bar', () => {
  it('on bars full of ties (equal bins, empty bins, flat windows), for many windows, bins and value areas', () => {
    fc.assert(
      fc.property(tieBars, fc.constantFrom(1, 0.5, 0.1, 1 / 3), (bars, scale) => {
        const series = tieSeries(bars, scale);
        const cache = new IndicatorCache(series);
        for (const lookback of [1, 2, 3, 5, 8]) {
          for (const bins of [1, 2, 3, 4, 7]) {
            for (const valueArea of [0.05, 0.25, 0.5, 0.6, 0.75, 0.9, 1]) {
              expect(
                vectorCodes(cache, lookback, bins, valueArea),
                `${lookback} ${bins} ${valueArea}`,
              ).toEqual(exactCodes(series, lookback, bins, valueArea));
            }
          }
        }
      }),
      { numRuns: 60 },
    );
  });

  it("on high prices with narrow bins, where the bins' edges round (bins of unequal width)", () => {
    // Around 2^20, a price rounds by about 1e-10 and a bin is a few thousandths wide: the bins'
    // widths (as profileHistogram's overlaps compute them) differ by about 1e-7 of a bin,
    // far more than the estimate's bound, so a bin covered wholly must be weighed by its own width.
    fc.assert(
      fc.property(tieBars, fc.constantFrom(0.0043, 0.0071, 0.013), (bars, scale) => {
        const series = tieSeries(bars, scale, 2 ** 20 + 0.37);
        const cache = new IndicatorCache(series);
        for (const lookback of [3, 5, 8]) {
          for (const bins of [3, 4, 7]) {
            for (const valueArea of [0.25, 0.5, 0.75, 0.9]) {
              expect(
                vectorCodes(cache, lookback, bins, valueArea),
                `${lookback} ${bins} ${valueArea}`,
              ).toEqual(exactCodes(series, lookback, bins, valueArea));
            }
          }
        }
      }),
      { numRuns: 60 },
    );
  });

  it('on negative prices near -2^20 with narrow bins (the bound from the larger magnitude, the low)', () => {
    // The edges' rounding grows with the prices' magnitude: here the window's lowest low's, which
    // is larger than its highest high's.
    fc.assert(
      fc.property(tieBars, fc.constantFrom(0.0043, 0.0071, 0.013), (bars, scale) => {
        const series = tieSeries(bars, scale, -(2 ** 20) - 0.37);
        const cache = new IndicatorCache(series);
        for (const lookback of [3, 5, 8]) {
          for (const bins of [3, 4, 7]) {
            for (const valueArea of [0.25, 0.5, 0.75, 0.9]) {
              expect(
                vectorCodes(cache, lookback, bins, valueArea),
                `${lookback} ${bins} ${valueArea}`,
              ).toEqual(exactCodes(series, lookback, bins, valueArea));
            }
          }
        }
      }),
      { numRuns: 60 },
    );
  });

  it('after a near-flat window (computed exactly), a window with the bins of an earlier one', () => {
    // Lookback 3: the windows before bars 3 and 6 span 90..110, the one before bar 4 to 5 only
    // 100..100 + 1e-9 (bins far narrower than a price's rounding: built exactly), and the window
    // before bar 5 spans 90..110 again: its bins are the first window's, but the exact build in
    // between left its own numbers where the estimate reads the bins' (it must set them again).
    const flat = 100 + 1e-9;
    const rows: [number, number, number, number][] = [
      [90, 110, 100, 100],
      [100, flat, 100, 300],
      [100, flat, 100, 200],
      [100, flat, 100, 100],
      [90, 110, 92, 300],
      [90, 110, 108, 100],
      [95, 105, 93, 100],
      [91, 109, 107, 100],
      [99, 101, 100, 100],
    ];
    const series = seriesWithVolume(
      'FLAT',
      rows.map(([low, high, close, volume], i) => {
        const day = new Date(Date.UTC(2024, 0, 1 + i)).toISOString().slice(0, 10);
        return [day, low, high, low, close, volume] as const;
      }),
    );
    const cache = new IndicatorCache(series);
    for (const bins of [2, 3, 4, 7]) {
      for (const valueArea of [0.25, 0.5, 0.7, 0.9]) {
        expect(vectorCodes(cache, 3, bins, valueArea), `${bins} ${valueArea}`).toEqual(
          exactCodes(series, 3, bins, valueArea),
        );
      }
    }
  });

  it("whatever order the lookbacks come in (a window starts from a shorter lookback's with its bins)", () => {
    fc.assert(
      fc.property(
        tieBars,
        fc.shuffledSubarray([1, 2, 3, 4, 5, 6, 8, 11], { minLength: 3 }),
        (bars, lookbacks) => {
          const series = tieSeries(bars, 0.5);
          const cache = new IndicatorCache(series);
          for (const lookback of [...lookbacks, ...lookbacks]) {
            for (const bins of [2, 5]) {
              expect(vectorCodes(cache, lookback, bins, 0.6), `${lookbacks} ${lookback} ${bins}`).toEqual(
                exactCodes(series, lookback, bins, 0.6),
              );
            }
          }
        },
      ),
      { numRuns: 40 },
    );
  });

  it('on consecutive lookbacks, longer or shorter each time (built in batches), for each bins', () => {
    // A lookback asked for right after the last batch's longest (or shortest) starts a batch twice
    // as large: the windows then start from the next longer or shorter lookback's.
    fc.assert(
      fc.property(tieBars, fc.constantFrom(1, 0.5, 1 / 3), fc.boolean(), (bars, scale, descending) => {
        const series = tieSeries(bars, scale);
        const cache = new IndicatorCache(series);
        const lookbacks = Array.from({ length: 14 }, (_, k) => (descending ? 14 - k : k + 1));
        for (const lookback of lookbacks) {
          for (const bins of [2, 3, 7]) {
            for (const valueArea of [0.25, 0.6, 0.9]) {
              expect(
                vectorCodes(cache, lookback, bins, valueArea),
                `${lookbacks} ${lookback} ${bins} ${valueArea}`,
              ).toEqual(exactCodes(series, lookback, bins, valueArea));
            }
          }
        }
      }),
      { numRuns: 60 },
    );
  });

  it('for a long-only run: the long-short codes without ENTER_SHORT, both asked of one cache in turn', () => {
    // A long-only run's thresholds are built apart, the value area not grown for VAH: its codes
    // must be the conditions of every other kind, in batches and alone, whichever was asked first.
    const longOnly = (cache: IndicatorCache, lookback: number, bins: number, valueArea: number) => {
      const params = volumeProfileStrategy.params.parse({ lookback, bins, valueArea });
      return volumeProfileStrategy.vectorize?.(params, { direction: 'long-only' }, cache).codes;
    };
    fc.assert(
      fc.property(
        tieBars,
        fc.constantFrom(1, 0.5, 1 / 3),
        fc.boolean(),
        fc.boolean(),
        (bars, scale, descending, longFirst) => {
          const series = tieSeries(bars, scale);
          const cache = new IndicatorCache(series);
          const lookbacks = Array.from({ length: 10 }, (_, k) => (descending ? 10 - k : k + 1));
          for (const lookback of [...lookbacks, 3, 7]) {
            for (const bins of [1, 3, 7]) {
              for (const valueArea of [0.25, 0.6, 0.9, 1]) {
                const exact = exactCodes(series, lookback, bins, valueArea);
                const expected = exact.map((code) => code & ~ENTER_SHORT);
                const at = `${lookbacks} ${lookback} ${bins} ${valueArea}`;
                if (longFirst) expect(longOnly(cache, lookback, bins, valueArea), at).toEqual(expected);
                expect(vectorCodes(cache, lookback, bins, valueArea), at).toEqual(exact);
                expect(longOnly(cache, lookback, bins, valueArea), at).toEqual(expected);
              }
            }
          }
        },
      ),
      { numRuns: 40 },
    );
  });

  it('when the cache is emptied between requests (the batch and its lookbacks not asked for yet dropped)', () => {
    fc.assert(
      fc.property(tieBars, fc.integer({ min: 2_000, max: 40_000 }), (bars, budget) => {
        const series = tieSeries(bars, 0.5);
        const cache = new IndicatorCache(series, budget);
        for (let lookback = 1; lookback <= 12; lookback++) {
          for (const bins of [3, 5]) {
            expect(vectorCodes(cache, lookback, bins, 0.7), `${budget} ${lookback} ${bins}`).toEqual(
              exactCodes(series, lookback, bins, 0.7),
            );
          }
        }
      }),
      { numRuns: 30 },
    );
  });

  it('on a series so long that a batch holds fewer lookbacks (its thresholds bounded in bytes)', () => {
    // 28 copies of SPY's bars, one after the other (35,000 bars): a batch's 8 MB of thresholds
    // hold 7 lookbacks, not 12 (lookbacks 7 | 8-9 | 10-13 | 14-20 | 21-27).
    const spy = loadBarsCsv('data/SPY.csv');
    const n = spy.close.length * 28;
    const tile = (a: Float64Array) => Float64Array.from({ length: n }, (_, k) => a[k % a.length] as number);
    const long: BarSeries = {
      symbol: 'LONG',
      time: Float64Array.from({ length: n }, (_, k) => Date.UTC(2000, 0, 1) + k * 86_400_000),
      open: tile(spy.open),
      high: tile(spy.high),
      low: tile(spy.low),
      close: tile(spy.close),
      volume: tile(spy.volume),
      intraday: false,
    };
    const cache = new IndicatorCache(long);
    for (let lookback = 7; lookback <= 22; lookback++) {
      expect(vectorCodes(cache, lookback, 24, 0.7)).toEqual(exactCodes(long, lookback, 24, 0.7));
    }
  });

  it('with many bins on a short series (a batch holds fewer lookbacks: their running windows bounded in bytes)', () => {
    // 200,000 bins: a lookback's running window (its bins' sums) is 1.6 MB, so a batch of 8 MB holds
    // five lookbacks (lookbacks 3 | 4-5 | 6-9 | 10-14: the cap binds at the fourth batch, which
    // would hold eight), not twelve (19 MB of windows).
    const spy = loadBarsCsv('data/SPY.csv');
    const series = sliceOf(spy, 0, 40);
    const cache = new IndicatorCache(series, 256 * 1024 * 1024);
    for (let lookback = 3; lookback <= 14; lookback++) {
      expect(vectorCodes(cache, lookback, 200_000, 0.7)).toEqual(exactCodes(series, lookback, 200_000, 0.7));
    }
    const batch = batchOf(cache, 200_000);
    expect(batch.bytes).toBeLessThanOrEqual(8 * 1024 * 1024 + 24 * 200_000);
    expect(batch.pending.size).toBe(0);
  });

  it('builds a lookback asked for out of order alone, the batch it interrupts still waiting', () => {
    const series = sliceOf(loadBarsCsv('data/SPY.csv'), 0, 120);
    const cache = new IndicatorCache(series);
    // 10 alone, 11-12 together, 13-16 together: 14, 15 and 16 wait.
    for (const lookback of [10, 11, 12, 13]) {
      expect(vectorCodes(cache, lookback, 24, 0.7)).toEqual(exactCodes(series, lookback, 24, 0.7));
    }
    const batch = batchOf(cache, 24);
    expect([...batch.pending.keys()]).toEqual([14, 15, 16]);
    // 40 alone: the three still wait; 41, after it, with 42.
    expect(vectorCodes(cache, 40, 24, 0.7)).toEqual(exactCodes(series, 40, 24, 0.7));
    expect([...batch.pending.keys()]).toEqual([14, 15, 16]);
    expect(vectorCodes(cache, 41, 24, 0.7)).toEqual(exactCodes(series, 41, 24, 0.7));
    expect([...batch.pending.keys()]).toEqual([42]);
    for (const lookback of [42, 14, 15, 16, 17]) {
      expect(vectorCodes(cache, lookback, 24, 0.7)).toEqual(exactCodes(series, lookback, 24, 0.7));
    }
  });

  it('on bars the estimate does not take: each lookback built alone (no batch of empty thresholds)', () => {
    const series = sliceOf(loadBarsCsv('data/SPY.csv'), 0, 60);
    series.volume[7] = -150;
    const cache = new IndicatorCache(series);
    for (let lookback = 3; lookback <= 9; lookback++) {
      expect(vectorCodes(cache, lookback, 24, 0.7)).toEqual(exactCodes(series, lookback, 24, 0.7));
      expect(batchOf(cache, 24).pending.size).toBe(0);
    }
    expect(batchOf(cache, 24).bytes).toBe(24 * 24);
  });

  it('on bars the estimate does not take (a negative volume): every profile as the instance builds it', () => {
    fc.assert(
      fc.property(tieBars, fc.nat(11), (bars, at) => {
        const series = tieSeries(bars, 0.5);
        series.volume[at] = -150;
        const cache = new IndicatorCache(series);
        for (const lookback of [1, 3, 5]) {
          for (const bins of [1, 3, 4]) {
            for (const valueArea of [0.25, 0.7, 1]) {
              expect(vectorCodes(cache, lookback, bins, valueArea)).toEqual(
                exactCodes(series, lookback, bins, valueArea),
              );
            }
          }
        }
      }),
      { numRuns: 20 },
    );
  });

  it('with a neighbour whose volume rounds to 0 in the histogram (counted in the estimate, not there)', () => {
    // Window 0..3 in 6 bins of width 1: 50 in bin 0, 100 in bin 2 (the POC), and in bin 1 a bar of
    // 5e-324 whose share 5e-324 × 0.3 / 0.3 rounds to 0 in profileHistogram: bins 1 and 3 both
    // hold exactly 0 there, so the value area grows up (ties: the one above), VAH passes 3.5 and
    // the close 3.5 is inside it. The estimate counts the tiny bar in bin 1: it must not take bin 3
    // for empty and bin 1 for not, grow down and see the close over VAH (a false ENTER_SHORT).
    const series = seriesWithVolume('UNDERFLOW', [
      ['2024-01-01', 3, 6, 0, 3, 0],
      ['2024-01-02', 0.5, 0.5, 0.5, 0.5, 50],
      ['2024-01-03', 2.5, 2.5, 2.5, 2.5, 100],
      ['2024-01-04', 1.1, 1.3, 1, 1.2, 5e-324],
      ['2024-01-05', 3.5, 3.6, 3.4, 3.5, 100],
    ]);
    for (const valueArea of [0.7, 0.9]) {
      const codes = vectorCodes(new IndicatorCache(series), 4, 6, valueArea);
      expect(codes).toEqual(exactCodes(series, 4, 6, valueArea));
      expect((codes?.[4] as number) & ENTER_SHORT).toBe(0);
    }
  });

  it("on prices near the double's limits (a bin that overflows, bins of subnormal width): as the instance", () => {
    // 1e300 prices: profileHistogram's volume × overlap overflows to Infinity in both bins, so its
    // POC is the tie rule's (the midpoint nearest the previous close); the estimate's finite bins
    // chose the other one. 1e-310 prices: bins of subnormal width, whose inverse is Infinity.
    // Neither series is estimated: every profile as the instance builds it.
    const huge = seriesWithVolume('HUGE', [
      ['2024-01-01', 2e300, 3e300, 1e300, 2e300, 1e9],
      ['2024-01-02', 2.2e300, 2.2e300, 1e300, 2.2e300, 1],
      ['2024-01-03', 2e300, 2.2e300, 1.8e300, 2e300, 1],
    ]);
    const tiny = seriesWithVolume('TINY', [
      ['2024-01-01', 2e-310, 4e-310, 1e-310, 2e-310, 1e-12],
      ['2024-01-02', 1.2e-310, 1.5e-310, 1e-310, 1.2e-310, 1e-11],
      ['2024-01-03', 2.5e-310, 3e-310, 2e-310, 2.5e-310, 1e-12],
    ]);
    expect(vectorCodes(new IndicatorCache(huge), 2, 2, 0.7)).toEqual(exactCodes(huge, 2, 2, 0.7));
    expect(exactCodes(huge, 2, 2, 0.7)[2]).toBe(8);
    expect(vectorCodes(new IndicatorCache(tiny), 2, 3, 0.7)).toEqual(exactCodes(tiny, 2, 3, 0.7));
    expect(exactCodes(tiny, 2, 3, 0.7)[2]).toBe(6);
  });

  it('tells a bin with a little volume (less than a quantum of the estimate) from an empty one', () => {
    // Window 10..14 in 4 bins: 100 in bin 0, 1e15 in bin 1 (the POC), nothing in bin 2, 5e14 in
    // bin 3 (the bar at 10 has no volume). The value area grows down first (bin 2's 0 >= bin 0's
    // 100 is false), then up twice: it holds 0.9 of the volume only with all four bins, so VAL is
    // 10 and the close 10.8 is inside it (grown up first, it would hold 0.9 with bins 1..3 and
    // VAL 11). The first bar's 1e18 makes the estimate's quantum 1,024: bin 0's 100 is 0 quanta.
    const series = seriesWithVolume('TINY', [
      ['2024-01-01', 100, 100, 100, 100, 1e18],
      ['2024-01-02', 10, 10, 10, 10, 0],
      ['2024-01-03', 13.5, 14, 13.5, 13.8, 5e14],
      ['2024-01-04', 11, 12, 11, 11.5, 1e15],
      ['2024-01-05', 10.5, 11, 10.5, 10.7, 100],
      ['2024-01-06', 10.8, 10.8, 10.8, 10.8, 100],
    ]);
    const codes = vectorCodes(new IndicatorCache(series), 4, 4, 0.9);
    expect(codes).toEqual(exactCodes(series, 4, 4, 0.9));
    expect((codes?.[5] as number) & ENTER_LONG).toBe(0);
  });

  it('with a close one ulp either side of a bin edge (the value area reaching it or not)', () => {
    // A close just under or over an edge lo + k × width, where its position in bin widths,
    // (close - lo) / width, rounds to k: whether VAL or VAH has passed it is decided by the edges.
    const near = (x: number, ulps: number) => {
      const words = new BigInt64Array(new Float64Array([x]).buffer);
      words[0] = (words[0] as bigint) + BigInt(ulps);
      return new Float64Array(words.buffer)[0] as number;
    };
    // Prices near 0 (lo 0.01, hi 3.3): there the position of a close one ulp under an edge rounds
    // to the edge's k for some edges (k 9 of 12 bins, 9, 13 and 18 of 24), and the POC is above
    // them (the last bar's volume), so the value area's VAL reaches the close only below it.
    const window: [number, number, number][] = [
      [0.01, 1.2, 300],
      [0.9, 3.3, 500],
      [0.4, 2.1, 200],
      [1.5, 3.0, 700],
      [2.6, 3.2, 5000],
    ];
    const lo = Math.min(...window.map((b) => b[0]));
    const hi = Math.max(...window.map((b) => b[1]));
    for (const bins of [3, 7, 12, 24]) {
      const width = (hi - lo) / bins;
      for (let k = 1; k < bins; k++) {
        for (const ulps of [-2, -1, 0, 1, 2]) {
          const close = near(lo + k * width, ulps);
          const series = seriesWithVolume('EDGE', [
            ...window.map(([l, h, v], i) => [`2024-01-0${i + 1}`, l, h, l, (l + h) / 2, v] as const),
            ['2024-01-06', close, close, close, close, 100] as const,
          ]);
          const cache = new IndicatorCache(series);
          for (let valueArea = 0.05; valueArea <= 1; valueArea += 0.05) {
            expect(vectorCodes(cache, 5, bins, valueArea), `${bins} ${k} ${ulps} ${valueArea}`).toEqual(
              exactCodes(series, 5, bins, valueArea),
            );
          }
        }
      }
    }
  });

  it('into a codes array not padded to words (written a byte at a time) as into a padded one', () => {
    // SPY's 1,255 bars: the padded array (no `out`) is written four bars a word after the first
    // whole word past the lookback, an array of exactly 1,255 bytes (or one at an offset) a byte at a time.
    const spy = loadBarsCsv('data/SPY.csv');
    const n = spy.close.length;
    expect(n % 4).not.toBe(0);
    const cache = new IndicatorCache(spy);
    for (const lookback of [10, 13, 31]) {
      for (const valueArea of [0.55, 0.7, 0.9]) {
        const params = volumeProfileStrategy.params.parse({ lookback, bins: 24, valueArea });
        const run = { direction: 'long-short' } as const;
        const padded = volumeProfileStrategy.vectorize?.(params, run, cache).codes;
        const plain = volumeProfileStrategy.vectorize?.(params, run, cache, new Uint8Array(n)).codes;
        const offset = new Uint8Array(n + 4).subarray(4);
        const shifted = volumeProfileStrategy.vectorize?.(params, run, cache, offset).codes;
        expect(plain).toEqual(padded);
        expect(shifted).toEqual(padded);
        expect(padded).toEqual(exactCodes(spy, lookback, 24, valueArea));
      }
    }
  });

  it('on the bundled SPY bars, for every (lookback, bins) of the bench grid', () => {
    const spy = loadBarsCsv('data/SPY.csv');
    const cache = new IndicatorCache(spy);
    for (let lookback = 10; lookback < 60; lookback += 7) {
      for (const bins of [12, 24]) {
        for (const valueArea of [0.5, 0.7, 0.95]) {
          expect(vectorCodes(cache, lookback, bins, valueArea)).toEqual(
            exactCodes(spy, lookback, bins, valueArea),
          );
        }
      }
    }
  });
});

/** The codes of a long-only run (no ENTER_SHORT), from the vectorized rule. */
function longOnlyCodes(cache: IndicatorCache, lookback: number, bins: number, valueArea: number) {
  const params = volumeProfileStrategy.params.parse({ lookback, bins, valueArea });
  return volumeProfileStrategy.vectorize?.(params, { direction: 'long-only' }, cache).codes;
}

describe('volume-profile: bins B derived from bins 2B (both asked of one cache, in batches)', () => {
  /**
   * Consecutive lookbacks, each asked for with both bins in turn (the coarse or the fine first), in
   * both directions: every code equal to `volumeProfile`'s.
   */
  const checkPairs = (
    series: BarSeries,
    pairs: readonly (readonly [number, number])[],
    lookbacks: readonly number[],
    valueAreas: readonly number[],
    coarseFirst: boolean,
  ) => {
    const cache = new IndicatorCache(series);
    for (const lookback of lookbacks) {
      for (const [coarse, fine] of pairs) {
        for (const bins of coarseFirst ? [coarse, fine] : [fine, coarse]) {
          for (const valueArea of valueAreas) {
            const exact = exactCodes(series, lookback, bins, valueArea);
            const at = `${lookbacks} ${lookback} ${bins} ${valueArea}`;
            expect(vectorCodes(cache, lookback, bins, valueArea), at).toEqual(exact);
            expect(longOnlyCodes(cache, lookback, bins, valueArea), at).toEqual(
              exact.map((code) => code & ~ENTER_SHORT),
            );
          }
        }
      }
    }
  };

  it('on bars full of ties (equal bins, empty bins, flat windows, volumes under a quantum)', () => {
    fc.assert(
      fc.property(
        tieBars,
        fc.constantFrom(1, 0.5, 1 / 3),
        fc.constantFrom(
          [[1, 2]] as const,
          [[2, 4]] as const,
          [[3, 6]] as const,
          [[7, 14]] as const,
          [
            [1, 2],
            [2, 4],
          ] as const,
        ),
        fc.boolean(),
        fc.boolean(),
        (bars, scale, pairs, descending, coarseFirst) => {
          const lookbacks = Array.from({ length: 12 }, (_, k) => (descending ? 12 - k : k + 1));
          checkPairs(tieSeries(bars, scale), pairs, lookbacks, [0.25, 0.6, 0.9, 1], coarseFirst);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('on narrow bins straddling a power of two (the pair sums and the coarse float sums differ most)', () => {
    // Prices around ±2^20 with bins a few thousandths wide: a price rounds by about 1e-10 (1.2e-10
    // above 2^20, half that under it), so the bins' own widths differ by about 1e-7 of a bin, and
    // each coarse bin's two overlaps and whole shares round apart from profileHistogram's one;
    // volumes from 2^40 down to under a quantum (2^-9 here).
    const quantumBars = fc.array(
      fc.record({
        low: fc.integer({ min: 0, max: 6 }),
        span: fc.constantFrom(0, 1, 1, 2, 3, 6),
        close: fc.integer({ min: -1, max: 13 }),
        volume: fc.constantFrom(2 ** 40, 2 ** 40 + 1, 3, 1, 2 ** -9, 2 ** -12, 0),
      }),
      { minLength: 12, maxLength: 40 },
    );
    fc.assert(
      fc.property(
        quantumBars,
        fc.constantFrom(0.0043, 0.0071, 0.013, 0.031),
        fc.constantFrom(1, -1),
        fc.constantFrom([[3, 6]] as const, [[4, 8]] as const, [[7, 14]] as const),
        fc.boolean(),
        (bars, scale, sign, pairs, coarseFirst) => {
          // The window's prices from 2^20 - 3 × scale up (or their negatives' mirror): 2^20 within.
          const series = tieSeries(bars, scale, sign * 2 ** 20 - 3 * scale);
          const lookbacks = Array.from({ length: 9 }, (_, k) => k + 2);
          checkPairs(series, pairs, lookbacks, [0.25, 0.5, 0.75, 0.9], coarseFirst);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('on the bundled SPY bars in the bench order: bins 12 from 24, the fine thresholds waiting in their batch', () => {
    const spy = sliceOf(loadBarsCsv('data/SPY.csv'), 0, 400);
    const cache = new IndicatorCache(spy);
    // 10 alone with each bins; 11-12 and 13-16 in pairs: bins 12's request builds 24's too.
    for (let lookback = 10; lookback <= 17; lookback++) {
      for (const bins of [12, 24]) {
        for (const valueArea of [0.5, 0.7, 0.95]) {
          expect(vectorCodes(cache, lookback, bins, valueArea), `${lookback} ${bins} ${valueArea}`).toEqual(
            exactCodes(spy, lookback, bins, valueArea),
          );
        }
        if (lookback === 13 && bins === 12) {
          expect([...batchOf(cache, 24).pending.keys()]).toEqual([13, 14, 15, 16]);
          expect([...batchOf(cache, 12).pending.keys()]).toEqual([14, 15, 16]);
        }
      }
    }
  });

  it('when the cache is emptied between requests (a partner dropped, or its pending thresholds)', () => {
    fc.assert(
      fc.property(tieBars, fc.integer({ min: 2_000, max: 40_000 }), (bars, budget) => {
        const series = tieSeries(bars, 0.5);
        const cache = new IndicatorCache(series, budget);
        for (let lookback = 1; lookback <= 12; lookback++) {
          for (const bins of [3, 6]) {
            expect(vectorCodes(cache, lookback, bins, 0.7), `${budget} ${lookback} ${bins}`).toEqual(
              exactCodes(series, lookback, bins, 0.7),
            );
          }
        }
      }),
      { numRuns: 30 },
    );
  });
});
