import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvalidParameterError } from '../../../shared/core/errors.js';
import { attributePnl, attributionLines, fillCosts } from '../../../shared/core/validation/attribution.js';

const sum = (r: Readonly<Record<string, number>>) => Object.values(r).reduce((a, b) => a + b, 0);

const key = {
  sleeve: fc.constantFrom('trend', 'breakout', 'rsi'),
  symbol: fc.constantFrom('SPY', 'QQQ', 'AAPL', 'MSFT'),
  side: fc.constantFrom('long' as const, 'short' as const),
};
const cents = fc.integer({ min: -5_000_000, max: 5_000_000 });

describe('attributePnl', () => {
  it('the parts add up to the total: each breakdown sums to the P&L before costs, less the costs the total', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ ...key, pnlCents: cents })),
        fc.array(
          fc.record({
            ...key,
            commissionCents: fc.integer({ min: 0, max: 10_000 }),
            slippageCents: fc.integer({ min: -50_000, max: 50_000 }),
          }),
        ),
        (trades, costs) => {
          const a = attributePnl(trades, costs);
          expect(a.totalCents).toBe(trades.reduce((s, t) => s + t.pnlCents, 0));
          expect(sum(a.bySleeve)).toBe(a.beforeCostsCents);
          expect(sum(a.bySymbol)).toBe(a.beforeCostsCents);
          expect(sum(a.bySide)).toBe(a.beforeCostsCents);
          expect(a.beforeCostsCents - a.costs.commissionCents - a.costs.slippageCents).toBe(a.totalCents);
          for (const v of [...Object.values(a.bySleeve), a.totalCents, a.costs.slippageCents])
            expect(Number.isSafeInteger(v)).toBe(true);
        },
      ),
    );
  });

  it('a key earns its realized P&L plus the costs its fills paid', () => {
    const a = attributePnl(
      [
        { sleeve: 'trend', symbol: 'SPY', side: 'long', pnlCents: 10_000 },
        { sleeve: 'breakout', symbol: 'SPY', side: 'long', pnlCents: -2_500 },
      ],
      [
        { sleeve: 'trend', symbol: 'SPY', side: 'long', commissionCents: 100, slippageCents: 450 },
        { sleeve: 'breakout', symbol: 'AAPL', side: 'short', commissionCents: 0, slippageCents: 300 },
      ],
    );
    expect(a).toEqual({
      totalCents: 7_500,
      beforeCostsCents: 8_350,
      bySleeve: { trend: 10_550, breakout: -2_200 },
      bySymbol: { SPY: 8_050, AAPL: 300 },
      bySide: { long: 8_050, short: 300 },
      costs: { commissionCents: 100, slippageCents: 750 },
    });
    expect(attributionLines(a)[0]).toBe(
      '*Attribution* (realized $75.00 = $83.50 before costs − commission $1.00 − slippage $7.50)',
    );
  });

  it('refuses a figure that is not whole cents, naming it', () => {
    expect(() => attributePnl([{ sleeve: 's', symbol: 'SPY', side: 'long', pnlCents: 1.5 }], [])).toThrow(
      InvalidParameterError,
    );
    expect(() =>
      attributePnl(
        [],
        [{ sleeve: 's', symbol: 'QQQ', side: 'long', commissionCents: 0, slippageCents: Number.NaN }],
      ),
    ).toThrow(/s QQQ costs/);
  });
});

describe('fillCosts', () => {
  const opens = {
    open: (symbol: string, date: string) => (symbol === 'SPY' && date === '2021-03-18' ? 100 : undefined),
  };
  it('costs a market-on-open fill against the open, worse = positive, and nothing else', () => {
    const fill = { sleeve: 's', symbol: 'SPY', qty: 10, date: '2021-03-18', marketOnOpen: true, opens: true };
    expect(fillCosts([{ ...fill, side: 'buy', price: 100.05 }], opens)).toEqual([
      { sleeve: 's', symbol: 'SPY', side: 'long', commissionCents: 0, slippageCents: 50 },
    ]);
    // A sell closing a long 5 cents under the open: 50 cents of slippage, on the long book.
    expect(fillCosts([{ ...fill, side: 'sell', price: 99.95, opens: false }], opens)[0]).toMatchObject({
      side: 'long',
      slippageCents: 50,
    });
    // A sell opening a short, filled better than the open: negative slippage.
    expect(fillCosts([{ ...fill, side: 'sell', price: 100.1 }], opens)[0]).toMatchObject({
      side: 'short',
      slippageCents: -100,
    });
    // A stop fill, or an unknown open: no slippage line.
    expect(
      fillCosts([{ ...fill, side: 'buy', price: 101, marketOnOpen: false }], opens)[0]?.slippageCents,
    ).toBe(0);
    expect(
      fillCosts([{ ...fill, side: 'buy', price: 101, date: '2021-03-19' }], opens)[0]?.slippageCents,
    ).toBe(0);
  });
});
