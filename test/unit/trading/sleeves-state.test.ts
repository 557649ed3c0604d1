import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadDataDir } from '../../../shared/adapters/fs/bars.js';
import { runSleevesBacktest } from '../../../shared/core/backtest/sleeves.js';
import { parseConfig } from '../../../shared/core/config/schema.js';
import { TradingSession } from '../../../shared/core/trading/session.js';
import {
  restoreSleevesState,
  SleeveAllocation,
  type SleevesState,
  sleevesPositionsBySymbol,
  sleevesState,
} from '../../../shared/core/trading/sleeves-close.js';
import { buildSleevesJob } from '../../../shared/research/sleeves.js';

const config = parseConfig(readFileSync('config/multi-strategy.yaml', 'utf8'), 'config/multi-strategy.yaml');
const series = loadDataDir('data', config.watchlist);
const job = buildSleevesJob({}, config, series);
const input = {
  series: job.series,
  sleeves: job.sleeves,
  options: job.options,
  ...(job.allocation === undefined ? {} : { allocation: job.allocation }),
  ...(job.correlation === undefined ? {} : { correlation: job.correlation }),
};

/** A fresh session and allocation with a state restored into them (what a live step does). */
function restored(state: SleevesState) {
  const session = new TradingSession(
    job.sleeves,
    config.watchlist,
    job.options,
    state.books.map((b) => b.initialCash),
    job.options.initialCash,
  );
  const allocation = new SleeveAllocation(
    job.sleeves,
    input.allocation ?? { method: 'fixed', lookback: 63, rebalance: 'never' },
    input.correlation,
    state.books.map((b) => b.initialCash),
  );
  restoreSleevesState(session, allocation, state);
  return { session, allocation };
}

describe('the sleeves state (plain JSON) a live step persists and restores', () => {
  it('survives JSON and restores the books, the account and the allocation exactly', () => {
    let checked = 0;
    let withPositions = 0;
    runSleevesBacktest(input, (session, _time, allocation) => {
      const state = sleevesState(session, allocation);
      const json = JSON.parse(JSON.stringify(state)) as SleevesState;
      const copy = restored(json);
      expect(sleevesState(copy.session, copy.allocation)).toEqual(state);
      // The sleeves add up to the account, per symbol, from the state alone.
      const sums = sleevesPositionsBySymbol(json);
      for (const { symbol, qty } of json.account.positions) expect(sums.get(symbol)).toBe(qty);
      if (json.books.some((b) => b.positions.length > 0)) withPositions++;
      checked++;
    });
    expect(checked).toBeGreaterThan(1000);
    expect(withPositions).toBeGreaterThan(100);
  });

  it('a restored allocation reallocates as the uninterrupted one does at the next close', () => {
    // At each close, a copy restored from the state (returns cut to what is read) settles the same
    // close; the original settles it right after the observer: weights and transfers must agree.
    let copy: ReturnType<typeof restored> | undefined;
    let compared = 0;
    let reallocations = 0;
    runSleevesBacktest(input, (session, time, allocation) => {
      if (copy !== undefined) {
        expect(copy.allocation.weights).toEqual(allocation.weights);
        expect(copy.allocation.closes).toBe(allocation.closes);
        expect(copy.allocation.lastRebalanceTime).toBe(allocation.lastRebalanceTime);
        const theirs = copy.allocation.events.at(-1);
        if (theirs !== undefined) {
          expect(theirs).toEqual(allocation.events.at(-1));
          reallocations++;
        }
        compared++;
      }
      const state = JSON.parse(JSON.stringify(sleevesState(session, allocation))) as SleevesState;
      copy = restored(state);
      // The copy settles this close with the original's marks (it has no bars of its own).
      const equity = session.books.map((b) => b.equity(session.mark));
      copy.allocation.settle(copy.session, time, {
        equity,
        returns: equity.map((e, s) => {
          const base = state.allocation.prevEquity[s] as number;
          return base > 0 ? e / base - 1 : 0;
        }),
      });
    });
    expect(compared).toBeGreaterThan(1000);
    expect(reallocations).toBeGreaterThan(10);
  });
});
