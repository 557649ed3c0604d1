import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { loadDataDir } from '../../../shared/adapters/fs/bars.js';
import {
  decideRule,
  ENTER_LONG,
  ENTER_SHORT,
  EXIT_LONG,
  EXIT_SHORT,
  ruleVector,
} from '../../../shared/core/strategies/rule.js';
import type { Intent, PositionSide } from '../../../shared/core/strategies/types.js';
import { IndicatorCache } from '../../../shared/core/strategies/vector.js';

const [series] = loadDataDir('data', ['SPY']);
const REASONS = { enterLong: 'el', enterShort: 'es', exitLong: 'xl', exitShort: 'xs' };
const POSITIONS: readonly PositionSide[] = ['flat', 'long', 'short'];

/**
 * A vectorized rule's decisions reuse its intents (`ruleIntents`: constant exits, one entry object
 * rewritten per call): each, read before the next call, equals the fresh intent `decideRule` builds.
 */
describe('ruleVector: reused intents', () => {
  it('equal the fresh ones at every call, and an entry is one object per rule', () => {
    if (series === undefined) throw new Error('no SPY data');
    const n = series.close.length;
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: n, maxLength: n, max: ENTER_LONG | ENTER_SHORT | EXIT_LONG | EXIT_SHORT }),
        fc.array(fc.nat(2), { minLength: n, maxLength: n }),
        fc.option(fc.constantFrom(0.5, 2, 40), { nil: undefined }),
        fc.constantFrom('long-only' as const, 'long-short' as const),
        (flags, positions, k, direction) => {
          const cache = new IndicatorCache(series);
          const vector = ruleVector(flags, direction, REASONS, k, 14, cache);
          const atr = cache.atr(14);
          let entry: Intent | undefined;
          for (let bar = 0; bar < n; bar++) {
            const position = POSITIONS[positions[bar] as number] as PositionSide;
            const got = vector.decide(bar, position);
            const fresh = decideRule(
              position,
              direction,
              flags[bar] as number,
              REASONS,
              k,
              k === undefined ? Number.NaN : (atr[bar] as number),
              series.close[bar] as number,
            );
            expect(got, `bar ${bar}`).toEqual(fresh);
            if (got.action === 'enter') {
              if (entry !== undefined) expect(got).toBe(entry);
              entry = got;
            }
          }
        },
      ),
      { numRuns: 20 },
    );
  });
});
