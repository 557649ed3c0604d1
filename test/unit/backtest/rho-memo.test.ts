import { describe, expect, it } from 'vitest';
import { rhoSlotsFor } from '../../../shared/core/backtest/fast/portfolio.js';

describe("the portfolio mode's correlation memo", () => {
  it('is bounded in bytes, not slots: about 32 MB of memos whatever the number of symbols', () => {
    expect(rhoSlotsFor(4)).toBe(65_536);
    for (let symbols = 1; symbols <= 500; symbols++) {
      const slots = rhoSlotsFor(symbols);
      expect(slots).toBeGreaterThanOrEqual(256);
      // 256 slots at the least: only past ~180 symbols may that floor exceed the budget.
      if (slots > 256) expect(slots * (8 * symbols * symbols + 128)).toBeLessThanOrEqual(32 * 1024 * 1024);
    }
    expect(rhoSlotsFor(50)).toBeLessThan(2_000);
  });
});
