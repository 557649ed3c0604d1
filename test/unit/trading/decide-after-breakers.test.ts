import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { entryBlock, KellySums, observeEquity } from '../../../shared/core/risk/index.js';
import type { EnterIntent, Intent } from '../../../shared/core/strategies/types.js';
import {
  CloseDecider,
  decideAtClose,
  flatEntry,
  flatEntryOut,
  type PlannedEntry,
} from '../../../shared/core/trading/decide.js';
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

describe('flatEntry (the single-symbol fast engine, flat, on scalars)', () => {
  it('plans the entry decideAfterBreakers plans at a close of one symbol without a position', () => {
    // One reusing decider for every close (as a fast engine's lane keeps one), and one output.
    const decider = new CloseDecider(true);
    const out = flatEntryOut();
    let planned = 0;
    let none = 0;
    fc.assert(
      fc.property(
        closeInputArb,
        fc.integer({ min: 0, max: 3 }),
        fc.boolean(),
        fc.boolean(),
        fc.boolean(),
        (drawn, block, enter, long, rich) => {
          const rules = drawn.options.risk;
          // The fast engine runs no volatility cap (it throws before deciding).
          fc.pre(rules !== undefined && rules.volatilityCap === undefined);
          const row = drawn.symbols[0] as (typeof drawn.symbols)[number];
          // Mostly entering rows (the drawn intents enter at a few closes only), with a stop 5 % away.
          const intent: Intent =
            enter && row.intent.action !== 'enter'
              ? {
                  action: 'enter',
                  side: long ? 'long' : 'short',
                  reason: 'rule',
                  stopLoss: row.close * (long ? 0.95 : 1.05),
                }
              : row.intent;
          fc.pre(intent.action === 'enter');
          // Its case: one symbol, flat, no sleeve, no product, no volatility, no explanation.
          const pnlSums = new KellySums();
          for (const pnl of drawn.closedPnls) pnlSums.add(pnl);
          const { books: _books, correlation: _correlation, volatility: _volatility, ...rest } = drawn;
          const input = {
            ...rest,
            explain: false,
            closedPnlSums: pnlSums,
            // The drawn buying power is often about 0 (a drawn double): half the closes have the equity's.
            buyingPower: rich ? drawn.equity : drawn.buyingPower,
            symbols: [
              {
                symbol: row.symbol,
                hasBar: row.hasBar,
                close: row.close,
                atr: row.atr,
                intent,
                position: undefined,
              },
            ],
          };
          const blocked = block === 0 ? 'blocked' : null;
          const entries = decider.decideAfterBreakers(input, blocked, false).entries;
          const options = { ...input.options, risk: rules as NonNullable<typeof rules> };
          const found = flatEntry(
            intent as EnterIntent,
            blocked !== null,
            row.close,
            row.atr,
            input.equity,
            input.buyingPower,
            input.closedPnls,
            pnlSums,
            options,
            out,
          );
          if (!found) {
            expect(entries).toEqual([]);
            none++;
            return;
          }
          const entry = entries[0] as PlannedEntry;
          expect(entries.length).toBe(1);
          expect(out.qty).toBe(entry.qty);
          expect(out.stopLoss).toBe(entry.stopLoss);
          expect(out.hasTakeProfit ? out.takeProfit : undefined).toBe(entry.takeProfit);
          expect(entry.entryRef).toBe(row.close);
          planned++;
        },
      ),
      { numRuns: 2000 },
    );
    // Not vacuous: entries planned and not.
    expect(planned).toBeGreaterThan(100);
    expect(none).toBeGreaterThan(100);
  });
});
