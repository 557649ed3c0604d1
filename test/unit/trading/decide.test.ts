import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decideAtClose } from '../../../shared/core/trading/decide.js';
import { closeInputArb } from '../../helpers/close-decisions.js';

describe('decideAtClose without the explanations (explain: false, what a sweep asks for)', () => {
  it('decides exactly as with them, and leaves only the explanations empty', () => {
    let entries = 0;
    let refusedOrReduced = 0;
    fc.assert(
      fc.property(closeInputArb, (input) => {
        const full = decideAtClose(input);
        const lean = decideAtClose({ ...input, explain: false });
        expect(lean.riskState).toEqual(full.riskState);
        expect(lean.events).toEqual(full.events);
        expect(lean.stops).toEqual(full.stops);
        expect(lean.exits).toEqual(full.exits);
        expect(lean.entries).toEqual(full.entries);
        expect(lean.heatPct).toBe(full.heatPct);
        expect([lean.refused, lean.reduced, lean.skipped, lean.entryDecisions]).toEqual([[], [], [], []]);
        entries += full.entries.length;
        refusedOrReduced += full.refused.length + full.reduced.length;
      }),
      { numRuns: 2000 },
    );
    // Not vacuous: entries were placed, refused and reduced.
    expect(entries).toBeGreaterThan(100);
    expect(refusedOrReduced).toBeGreaterThan(200);
  });
});
