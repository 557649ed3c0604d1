import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  entryBlock,
  initialRiskState,
  setKillSwitch,
  setSleeveHalt,
  sleeveEntryBlock,
} from '../../../shared/core/risk/index.js';

describe('per-sleeve halts in the risk state', () => {
  it('halts one sleeve, leaves the others and the account alone, and resumes it', () => {
    const base = initialRiskState(100_000);
    const on = setSleeveHalt(base, 'rsi', true, 1000, 'alice', 'review');
    expect(on.state.sleeveHalts).toEqual({ rsi: { since: 1000, reason: 'review', by: 'alice' } });
    expect(on.events).toEqual([
      {
        time: 1000,
        breaker: 'kill-switch',
        action: 'trip',
        reason: 'review',
        by: 'alice',
        figures: {},
        sleeve: 'rsi',
      },
    ]);
    expect(sleeveEntryBlock(on.state, 'rsi')).toBe('sleeve rsi halted (review)');
    expect(sleeveEntryBlock(on.state, 'trend')).toBeNull();
    expect(entryBlock(on.state, '2021-04-05')).toBeNull();
    expect(on.state.killSwitch).toBeNull();

    expect(setSleeveHalt(on.state, 'rsi', true, 2000, 'bob', 'again')).toEqual({
      state: on.state,
      events: [],
    });
    const off = setSleeveHalt(on.state, 'rsi', false, 3000, 'bob', 'done');
    expect(off.state.sleeveHalts).toEqual({});
    expect(off.events[0]).toMatchObject({ action: 'reset', sleeve: 'rsi', by: 'bob' });
    expect(setSleeveHalt(base, 'rsi', false, 3000, 'bob', 'x')).toEqual({ state: base, events: [] });
  });

  it('the kill switch and the sleeve halts are independent (any order of changes)', () => {
    const ops = fc.array(fc.record({ target: fc.constantFrom('account', 'a', 'b', 'c'), on: fc.boolean() }), {
      maxLength: 30,
    });
    fc.assert(
      fc.property(ops, (list) => {
        let state = initialRiskState(1);
        const expected = new Map<string, boolean>();
        list.forEach(({ target, on }, i) => {
          state =
            target === 'account'
              ? setKillSwitch(state, on, i, 'x', 'y').state
              : setSleeveHalt(state, target, on, i, 'x', 'y').state;
          expected.set(target, on);
        });
        expect(state.killSwitch !== null).toBe(expected.get('account') ?? false);
        for (const sleeve of ['a', 'b', 'c'])
          expect(sleeveEntryBlock(state, sleeve) !== null).toBe(expected.get(sleeve) ?? false);
      }),
    );
  });
});
