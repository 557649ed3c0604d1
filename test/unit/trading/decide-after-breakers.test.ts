import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { entryBlock, observeEquity } from '../../../shared/core/risk/index.js';
import type { Intent } from '../../../shared/core/strategies/types.js';
import { CloseDecider, decideAtClose } from '../../../shared/core/trading/decide.js';
import { closeInputArb } from '../../helpers/close-decisions.js';

describe('CloseDecider.decideAfterBreakers (the fast engines: the breakers run on their scalars)', () => {
  it('decides as decideAtClose given the same breakers, with one reused decider across closes', () => {
    // One reusing decider for every run (as a fast engine keeps one per backtest), so a record, a
    // mark or a list left from an earlier close would show.
    const reused = new CloseDecider(true);
    let entries = 0;
    let exits = 0;
    let blockedRuns = 0;
    fc.assert(
      fc.property(closeInputArb, fc.boolean(), (drawn, explain) => {
        const input = { ...drawn, explain };
        const full = decideAtClose(input);
        const rules = input.options.risk;
        let blocked: string | null = null;
        let tripped = false;
        if (rules !== undefined) {
          const observed = observeEquity(
            input.riskState,
            rules,
            input.time,
            input.day,
            input.equity,
            input.drawdownAutoReset,
          );
          blocked = entryBlock(observed.state, input.day);
          tripped = observed.events.some((e) => e.breaker === 'daily-loss');
        }
        if (blocked !== null) blockedRuns++;
        const after = reused.decideAfterBreakers(input, blocked, tripped);
        expect([...after.stops]).toEqual(full.stops);
        expect([...after.exits]).toEqual(full.exits);
        expect([...after.entries]).toEqual(full.entries);
        expect([...after.refused]).toEqual(full.refused);
        expect([...after.reduced]).toEqual(full.reduced);
        expect([...after.skipped]).toEqual(full.skipped);
        expect([...after.entryDecisions]).toEqual(full.entryDecisions);
        expect(after.heatPct).toBe(full.heatPct);
        // A fresh decider's decisions are the same.
        expect(new CloseDecider(false).decideAfterBreakers(input, blocked, tripped)).toEqual({
          ...full,
          riskState: undefined,
          events: undefined,
        });
        entries += full.entries.length;
        exits += full.exits.length;
      }),
      { numRuns: 2000 },
    );
    // Not vacuous: entries and exits were decided, and entries blocked.
    expect(entries).toBeGreaterThan(100);
    expect(exits).toBeGreaterThan(100);
    expect(blockedRuns).toBeGreaterThan(50);
  });
});

describe('CloseDecider(false) (not reusing)', () => {
  it("keeps each call's decisions its own: a second call leaves the first result unchanged", () => {
    const decider = new CloseDecider(false);
    let compared = 0;
    fc.assert(
      fc.property(closeInputArb, closeInputArb, (first, second) => {
        const a = decider.decide(first);
        const before = structuredClone(a);
        const b = decider.decideAfterBreakers(second, null, false);
        expect(a).toEqual(before);
        // Not vacuous: both calls decided something of a kind the lists hold.
        const listed = (d: typeof b) => d.stops.length + d.exits.length + d.entries.length;
        if (listed(a) > 0 && listed(b) > 0) compared++;
      }),
      { numRuns: 500 },
    );
    expect(compared).toBeGreaterThan(50);
  });
});

describe('CloseDecider.decideFlatEntry (the single-symbol fast engine, flat)', () => {
  it('plans the entry decideAfterBreakers plans at a close of one symbol without a position', () => {
    // Two reusing deciders, each used for every close (as a fast engine's lane keeps one), so a
    // record or a list left from an earlier close would show; one decides the whole close, the
    // other the entry alone.
    const whole = new CloseDecider(true);
    const alone = new CloseDecider(true);
    let planned = 0;
    let none = 0;
    fc.assert(
      fc.property(
        closeInputArb,
        fc.boolean(),
        fc.boolean(),
        fc.boolean(),
        (drawn, explain, blockedNow, enter) => {
          const row = drawn.symbols[0] as (typeof drawn.symbols)[number];
          // Mostly entering rows (the drawn intents enter at a few closes only), long without a stop.
          const intent: Intent =
            enter && row.intent.action !== 'enter'
              ? { action: 'enter', side: 'long', reason: 'rule' }
              : row.intent;
          const input = { ...drawn, explain, symbols: [{ ...row, intent, position: undefined }] };
          const blocked = blockedNow && input.options.risk !== undefined ? 'blocked' : null;
          const entries = [...whole.decideAfterBreakers(input, blocked, false).entries];
          const entry = alone.decideFlatEntry(input, blocked);
          expect(entry === undefined ? [] : [{ ...entry }]).toEqual(entries.map((e) => ({ ...e })));
          if (entry === undefined) none++;
          else planned++;
        },
      ),
      { numRuns: 2000 },
    );
    // Not vacuous: entries planned and not.
    expect(planned).toBeGreaterThan(50);
    expect(none).toBeGreaterThan(200);
  });
});
