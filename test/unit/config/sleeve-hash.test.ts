import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { canonicalJson } from '../../../shared/core/canonical-json.js';
import { liveSleeveIds, parseConfig } from '../../../shared/core/config/schema.js';
import { sleeveHash, UnknownSleeveError } from '../../../shared/core/config/sleeve-hash.js';

const multi = readFileSync('config/multi-strategy.yaml', 'utf8');
const single = readFileSync('config/equity-strategy.yaml', 'utf8');
// biome-ignore lint/suspicious/noExplicitAny: tests edit arbitrary keys of the parsed YAML
type Raw = Record<string, any>;
const edit = (text: string, change: (raw: Raw) => void) => {
  const raw = parse(text);
  change(raw);
  return stringify(raw);
};
const hashes = (text: string) => {
  const config = parseConfig(text, 'cfg.yaml');
  return Object.fromEntries(liveSleeveIds(config).map((id) => [id, sleeveHash(config, id)]));
};

describe('sleeveHash', () => {
  const base = hashes(multi);

  it('is a SHA-256 hex digest per sleeve, different for each sleeve', () => {
    const values = Object.values(base);
    expect(Object.keys(base)).toEqual(['trend', 'rsi', 'breakout', 'bollinger', 'volume']);
    for (const h of values) expect(h).toMatch(/^[0-9a-f]{64}$/);
    expect(new Set(values).size).toBe(values.length);
  });

  it('editing one sleeve changes only that sleeve’s hash', () => {
    const edited = hashes(
      edit(multi, (raw) => {
        raw.sleeves[1].params.entry = 25;
      }),
    );
    for (const [id, h] of Object.entries(base)) {
      if (id === 'rsi') expect(edited[id]).not.toBe(h);
      else expect(edited[id]).toBe(h);
    }
    const symbols = hashes(
      edit(multi, (raw) => {
        raw.sleeves[2].symbols = ['QQQ', 'AAPL'];
      }),
    );
    expect(
      Object.entries(symbols)
        .filter(([id, h]) => base[id] !== h)
        .map(([id]) => id),
    ).toEqual(['breakout']);
  });

  it('any edit of one sleeve’s symbols changes that sleeve’s hash and no other (property)', () => {
    const raw = parse(multi) as Raw;
    const sleeves = raw.sleeves as { symbols: string[] }[];
    fc.assert(
      fc.property(
        fc
          .integer({ min: 0, max: sleeves.length - 1 })
          .chain((i) => fc.tuple(fc.constant(i), fc.subarray(sleeves[i]?.symbols ?? [], { minLength: 1 }))),
        ([i, symbols]) => {
          const edited = hashes(
            edit(multi, (r) => {
              r.sleeves[i].symbols = symbols;
            }),
          );
          const same = symbols.length === sleeves[i]?.symbols.length;
          for (const [k, id] of Object.keys(base).entries())
            expect(edited[id] === base[id], id).toBe(k !== i || same);
        },
      ),
      { numRuns: 25 },
    );
  });

  it('reformatting the YAML (comments, blank lines, key order, flow style) changes none', () => {
    const reformatted = edit(multi, (raw) => {
      // Key order reversed at the top level and inside every sleeve.
      for (const key of Object.keys(raw).reverse()) {
        const value = raw[key];
        delete raw[key];
        raw[key] = value;
      }
      raw.sleeves = raw.sleeves.map((s: Record<string, unknown>) =>
        Object.fromEntries(Object.entries(s).reverse()),
      );
    });
    expect(reformatted).not.toBe(multi);
    expect(reformatted).not.toContain('#');
    expect(hashes(reformatted)).toEqual(base);
    expect(hashes(`# a new comment\n\n${multi.replaceAll('\n', '   \n')}`)).toEqual(base);
  });

  it('editing an account setting changes every sleeve’s hash', () => {
    for (const change of [
      (raw: Raw) => {
        raw.costs.slippageBps = 7;
      },
      (raw: Raw) => {
        raw.risk.maxPortfolioHeat = 0.12;
      },
      (raw: Raw) => {
        raw.allocation.method = 'fixed';
      },
      (raw: Raw) => {
        raw.sleeveCorrelation.threshold = 0.85;
      },
      (raw: Raw) => {
        raw.backtest.initialCash = 50_000;
      },
    ]) {
      const edited = hashes(edit(multi, change));
      for (const [id, h] of Object.entries(base)) expect(edited[id], id).not.toBe(h);
    }
  });

  it('ignores what a sleeve’s validation does not cover: live limits, criteria', () => {
    expect(
      hashes(
        edit(multi, (raw) => {
          raw.live.limits.maxOrdersPerDay = 10;
          raw.criteria.minSharpe = 1;
        }),
      ),
    ).toEqual(base);
  });

  it('a single-strategy config is one sleeve named after the config: its strategy block and watchlist', () => {
    const config = parseConfig(single, 'cfg.yaml');
    const h = sleeveHash(config, config.name);
    expect(h).toMatch(/^[0-9a-f]{64}$/);
    const hashOf = (text: string) => {
      const c = parseConfig(text, 'cfg.yaml');
      return sleeveHash(c, c.name);
    };
    expect(hashOf(`${single}\n# trailing comment\n`)).toBe(h);
    expect(
      hashOf(
        edit(single, (raw) => {
          raw.strategy.params.fast = raw.strategy.params.fast + 1;
        }),
      ),
    ).not.toBe(h);
    expect(
      hashOf(
        edit(single, (raw) => {
          raw.watchlist = ['SPY'];
        }),
      ),
    ).not.toBe(h);
  });

  it('refuses a sleeve id the config does not have, naming the known ones', () => {
    const config = parseConfig(multi, 'cfg.yaml');
    expect(() => sleeveHash(config, 'rsi-9')).toThrow(UnknownSleeveError);
    expect(() => sleeveHash(config, 'rsi-9')).toThrow(/trend, rsi, breakout, bollinger, volume/);
  });
});

describe('canonicalJson', () => {
  it('gives equal text for equal values whatever the key order', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.jsonValue()), (value) => {
        const shuffled = Object.fromEntries(Object.entries(value).reverse());
        expect(canonicalJson(shuffled)).toBe(canonicalJson(value));
        expect(JSON.parse(canonicalJson(value))).toEqual(JSON.parse(JSON.stringify(value)));
      }),
    );
  });
});
