import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseBarsCsv } from '../../../shared/core/market/index.js';

const MS_PER_MINUTE = 60_000;
const START = Date.UTC(1990, 0, 1);

/** A positive finite double (the whole range, so round-trips are tested at the extremes too). */
const price = fc.double({ min: Number.MIN_VALUE, max: Number.MAX_VALUE, noNaN: true });
const volume = fc.oneof(
  fc.integer({ min: 0, max: 1e12 }),
  fc.double({ min: 0, max: 1e15, noNaN: true }).map((v) => Math.abs(v)),
);

/** One valid bar: four prices sorted into low <= {open, close} <= high. */
const bar = fc.tuple(price, price, price, price, fc.boolean(), volume).map(([a, b, c, d, swap, v]) => {
  const [low, x, y, high] = [a, b, c, d].sort((p, q) => p - q) as [number, number, number, number];
  return { open: swap ? y : x, high, low, close: swap ? x : y, volume: v };
});

const series = fc
  .record({
    intraday: fc.boolean(),
    // Strictly increasing offsets: days for daily bars, minutes for intraday ones.
    steps: fc.array(fc.integer({ min: 1, max: 2000 }), { minLength: 1, maxLength: 60 }),
    columns: fc.shuffledSubarray(['Date', 'Open', 'High', 'Low', 'Close', 'Volume'], {
      minLength: 6,
      maxLength: 6,
    }),
    crlf: fc.boolean(),
    trailingBlankLines: fc.integer({ min: 0, max: 3 }),
    separator: fc.constantFrom('T', ' '),
  })
  .chain((shape) =>
    fc
      .array(bar, { minLength: shape.steps.length, maxLength: shape.steps.length })
      .map((bars) => ({ ...shape, bars })),
  );

describe('parseBarsCsv round-trip (property)', () => {
  it('parses a generated valid series back to exactly its values', () => {
    fc.assert(
      fc.property(series, (g) => {
        const unit = g.intraday ? MS_PER_MINUTE : 86_400_000;
        let t = START;
        const times = g.steps.map((s) => {
          t += s * unit;
          return t;
        });
        // An intraday series keeps at least one non-midnight time, so `intraday` is well defined.
        const intraday = g.intraday && times.some((x) => x % 86_400_000 !== 0);
        const stamp = (x: number): string => {
          const iso = new Date(x).toISOString();
          return g.intraday ? `${iso.slice(0, 10)}${g.separator}${iso.slice(11, 19)}` : iso.slice(0, 10);
        };
        const value = (i: number, col: string): string => {
          const b = g.bars[i] as (typeof g.bars)[number];
          switch (col) {
            case 'Date':
              return stamp(times[i] as number);
            case 'Open':
              return String(b.open);
            case 'High':
              return String(b.high);
            case 'Low':
              return String(b.low);
            case 'Close':
              return String(b.close);
            default:
              return String(b.volume);
          }
        };
        const eol = g.crlf ? '\r\n' : '\n';
        const lines = [
          g.columns.join(','),
          ...times.map((_, i) => g.columns.map((c) => value(i, c)).join(',')),
        ];
        const text = lines.join(eol) + eol.repeat(g.trailingBlankLines);

        const s = parseBarsCsv(text, { file: 'gen.csv', symbol: 'gen' });
        expect(s.symbol).toBe('GEN');
        expect(s.intraday).toBe(intraday);
        expect(Array.from(s.time)).toEqual(times);
        expect(Array.from(s.open)).toEqual(g.bars.map((b) => b.open));
        expect(Array.from(s.high)).toEqual(g.bars.map((b) => b.high));
        expect(Array.from(s.low)).toEqual(g.bars.map((b) => b.low));
        expect(Array.from(s.close)).toEqual(g.bars.map((b) => b.close));
        expect(Array.from(s.volume)).toEqual(g.bars.map((b) => b.volume));
        expect(s.adjClose).toBeUndefined();
      }),
      { numRuns: 300 },
    );
  });
});
