import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../shared/core/config/schema.js';
import { SleeveLedgerError } from '../../../shared/core/errors.js';
import {
  assignToSleeve,
  type SleevesState,
  sleevesPositionsBySymbol,
} from '../../../shared/core/trading/sleeves-close.js';
import { initialSleevesState, liveSleeves } from '../../../shared/live/sleeves.js';

const config = parseConfig(readFileSync('config/multi-strategy.yaml', 'utf8'), 'config/multi-strategy.yaml');
const fresh = (): SleevesState => initialSleevesState(config, liveSleeves(config), 10_000_000);

/** The sleeves add up to the account: cash to the cent, shares per symbol. */
function assertAddsUp(state: SleevesState) {
  expect(state.books.reduce((sum, b) => sum + b.cash, 0)).toBe(state.account.cash);
  const bySymbol = sleevesPositionsBySymbol(state);
  const account = new Map(state.account.positions.map((p) => [p.symbol, p.qty]));
  expect(new Map([...bySymbol].filter(([, q]) => q !== 0))).toEqual(account);
}

describe('assignToSleeve: UNASSIGNED shares booked to a sleeve (reconcile --assign on a sleeves config)', () => {
  it('adds the shares to the sleeve, charges its cash their notional, and keeps the ledger adding up', () => {
    const state = assignToSleeve(fresh(), {
      sleeve: 'rsi',
      symbol: 'SPY',
      qty: 10,
      price: 401.25,
      stop: 390,
      time: Date.parse('2024-03-04T15:00:00Z'),
    });
    const rsi = state.books.find((b) => b.id === 'rsi');
    expect(rsi?.positions).toMatchObject([
      { symbol: 'SPY', side: 1, qty: 10, entryPrice: 401.25, stop: 390 },
    ]);
    expect(rsi?.cash).toBe((fresh().books.find((b) => b.id === 'rsi')?.cash ?? 0) - 401_250);
    assertAddsUp(state);
  });

  it('refuses an unknown sleeve, a bad price, and a take larger than the position', () => {
    const base = { symbol: 'SPY', qty: 5, price: 100, stop: null, time: 0 };
    expect(() => assignToSleeve(fresh(), { ...base, sleeve: 'nope' })).toThrow(SleeveLedgerError);
    expect(() => assignToSleeve(fresh(), { ...base, sleeve: 'rsi', price: Number.NaN })).toThrow(/price/);
    expect(() => assignToSleeve(fresh(), { ...base, sleeve: 'rsi', qty: -5 })).toThrow(/holds none/);
    const held = assignToSleeve(fresh(), { ...base, sleeve: 'rsi' });
    expect(() => assignToSleeve(held, { ...base, sleeve: 'rsi', qty: -6 })).toThrow(/turn/);
  });

  it('any sequence of assignments keeps the sleeves adding up to the account', () => {
    const ids = config.sleeves?.map((s) => s.id) ?? [];
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            sleeve: fc.constantFrom(...ids),
            symbol: fc.constantFrom('SPY', 'QQQ'),
            qty: fc.integer({ min: -20, max: 20 }).filter((q) => q !== 0),
            price: fc.integer({ min: 100, max: 100_000 }).map((c) => c / 100),
          }),
          { maxLength: 12 },
        ),
        (steps) => {
          let state = fresh();
          for (const step of steps) {
            try {
              state = assignToSleeve(state, { ...step, stop: null, time: 0 });
            } catch (error) {
              if (!(error instanceof SleeveLedgerError)) throw error;
            }
          }
          assertAddsUp(state);
        },
      ),
    );
  });
});
