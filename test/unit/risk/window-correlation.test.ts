import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RollingCorrelation, windowCorrelation } from '../../../shared/core/risk/index.js';

/** ρ over a ring of rows as the rolling window summed it before `windowCorrelation` (its positions in order). */
function ringCorrelation(
  ring: Float64Array,
  symbols: number,
  window: number,
  count: number,
  a: number,
  b: number,
) {
  const n = Math.min(count, window);
  let k = 0;
  let sa = 0;
  let sb = 0;
  let saa = 0;
  let sbb = 0;
  let sab = 0;
  for (let r = 0; r < n; r++) {
    const x = ring[r * symbols + a] as number;
    const y = ring[r * symbols + b] as number;
    if (Number.isNaN(x) || Number.isNaN(y)) continue;
    k++;
    sa += x;
    sb += y;
    saa += x * x;
    sbb += y * y;
    sab += x * y;
  }
  if (k < Math.max(3, window / 2)) return Number.NaN;
  const cov = sab - (sa * sb) / k;
  const va = saa - (sa * sa) / k;
  const vb = sbb - (sb * sb) / k;
  if (!(va > 0 && vb > 0)) return Number.NaN;
  return Math.max(-1, Math.min(1, cov / Math.sqrt(va * vb)));
}

describe('windowCorrelation', () => {
  it("equals the rolling window's ρ to the bit after every push, from the session rows (the window its former loop's)", () => {
    const value = fc.oneof(
      { weight: 8, arbitrary: fc.double({ min: -0.2, max: 0.2, noNaN: true }) },
      { weight: 1, arbitrary: fc.constant(Number.NaN) },
      // A previous close of 0 makes an infinite return.
      { weight: 1, arbitrary: fc.constantFrom(Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY) },
    );
    fc.assert(
      fc.property(
        fc.integer({ min: 2, max: 4 }),
        fc.integer({ min: 1, max: 12 }),
        fc.integer({ min: 1, max: 40 }),
        fc.infiniteStream(value),
        (symbols, window, sessions, values) => {
          const rows = new Float64Array(symbols * sessions);
          for (let i = 0; i < rows.length; i++) rows[i] = values.next().value as number;
          const rolling = new RollingCorrelation(symbols, window);
          const ring = new Float64Array(symbols * window);
          for (let s = 0; s < sessions; s++) {
            rolling.push(rows.subarray(s * symbols, (s + 1) * symbols));
            ring.set(rows.subarray(s * symbols, (s + 1) * symbols), (s % window) * symbols);
            for (let a = 0; a < symbols; a++) {
              for (let b = 0; b < symbols; b++) {
                // The rolling window against the loop it had before (an independent copy here).
                expect(
                  Object.is(rolling.correlation(a, b), ringCorrelation(ring, symbols, window, s + 1, a, b)),
                ).toBe(true);
                expect(
                  Object.is(windowCorrelation(rows, symbols, window, s + 1, a, b), rolling.correlation(a, b)),
                ).toBe(true);
              }
            }
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it('sums in the ring order, not the sessions order (the figures differ in the last bits otherwise)', () => {
    // Window 3 after 4 sessions: the ring holds session 3 at position 0, then sessions 1 and 2.
    const rows = Float64Array.from([0.1, 0.3, 0.7, -0.1, 0.2, 0.05, -0.3, 0.11, 1e-3, 0.9]);
    const rolling = new RollingCorrelation(2, 3);
    for (let s = 0; s < 5; s++) rolling.push(rows.subarray(2 * s, 2 * s + 2));
    expect(windowCorrelation(rows, 2, 3, 5, 0, 1)).toBe(rolling.correlation(0, 1));
  });
});
