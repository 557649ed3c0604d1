/**
 * The core sizes every entry on the product's base increment and minimums (a crypto config's
 * `products:`): `orderableQty` / `productQuantity`, applied by `decideAtClose` (the backtests and the
 * live signal step) and at a fill sized there (all-in). Stops of a product are whole cents, rounded
 * away from the market, as the live stop-limit is sent (`productStop`).
 */
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { configProducts, parseConfig } from '../../../shared/core/config/schema.js';
import { ConfigError } from '../../../shared/core/errors.js';
import { initialRiskState } from '../../../shared/core/risk/index.js';
import { floorToIncrement, type ProductIncrements } from '../../../shared/core/sizing/increments.js';
import { orderableQty } from '../../../shared/core/sizing/index.js';
import { decideAtClose, productStop } from '../../../shared/core/trading/decide.js';
import { closeInputArb } from '../../helpers/close-decisions.js';

const SOL: ProductIncrements = {
  productId: 'SOL-USD',
  baseIncrement: 0.001,
  baseMinSize: 0.01,
  quoteMinSize: 1,
};
const cryptoYaml = readFileSync('config/crypto-strategy.yaml', 'utf8');

describe('entries sized on the product (increment and minimums), one function for backtest and live', () => {
  it('orderableQty rounds down to the increment and gives 0 under the minimums; no product: as sized', () => {
    expect(orderableQty(10.5369999, 224.2, SOL)).toBe(10.536);
    expect(orderableQty(0.0099, 224.2, SOL)).toBe(0); // under minSize
    expect(orderableQty(0.011, 50, SOL)).toBe(0); // $0.55 under quoteMinSize
    expect(orderableQty(10.5369999, 224.2, undefined)).toBe(10.5369999);
    expect(orderableQty(Number.NaN, 224.2, SOL)).toBeNaN(); // all-in: sized at the fill
  });

  it('decideAtClose: every entry on the product grid, at least its minimums; the first one is the plain one rounded down (property)', () => {
    let entries = 0;
    let refusedUnderMin = 0;
    fc.assert(
      fc.property(closeInputArb, fc.constantFrom(0.001, 0.01, 1), (input, increment) => {
        const products = Object.fromEntries(
          input.symbols.map((s) => [
            s.symbol,
            { productId: s.symbol, baseIncrement: increment, baseMinSize: increment * 5, quoteMinSize: 1 },
          ]),
        );
        const options = { ...input.options, fractional: true };
        const plain = decideAtClose({ ...input, options });
        const sized = decideAtClose({ ...input, options: { ...options, products } });
        for (const e of sized.entries) {
          if (Number.isNaN(e.qty)) continue;
          entries++;
          const product = products[input.symbols[e.index]?.symbol as string] as ProductIncrements;
          expect(floorToIncrement(e.qty, increment)).toBe(e.qty);
          expect(e.qty).toBeGreaterThanOrEqual(product.baseMinSize);
          expect(e.qty * e.entryRef).toBeGreaterThanOrEqual(1);
          if (e.stopLoss !== undefined && input.options.risk !== undefined)
            expect(Math.round(e.stopLoss * 100) / 100).toBeCloseTo(e.stopLoss, 9);
        }
        for (const s of sized.skipped)
          if (/^below-min-size|^zero-after-rounding|^below-min-notional/.test(s.reason)) refusedUnderMin++;
        // The first entry decided sees the same budget in both: the product's is the plain one rounded.
        const first = plain.entries[0];
        const firstSized = sized.entries.find((e) => e.index === first?.index);
        if (
          first !== undefined &&
          !Number.isNaN(first.qty) &&
          input.options.risk === undefined &&
          firstSized !== undefined &&
          sized.entries[0] === firstSized
        ) {
          expect(firstSized.qty).toBe(floorToIncrement(first.qty, increment));
        }
      }),
      // A refusal under the minimums comes about once in 600 random closes: 1,500 runs saw none in
      // about one run of ten (a flaky check of the paths exercised); 5,000, about one in 5,000.
      { numRuns: 5000 },
    );
    expect(entries).toBeGreaterThan(100);
    expect(refusedUnderMin).toBeGreaterThan(0);
  });

  it('an entry under the minimum is refused with a named reason (skipped, never rounded up)', () => {
    const input = {
      time: Date.UTC(2025, 8, 11),
      day: '2025-09-11',
      equity: 100,
      buyingPower: 100,
      symbols: [
        {
          symbol: 'SOL-USD',
          hasBar: true,
          close: 200,
          atr: 10,
          intent: { action: 'enter' as const, side: 'long' as const, reason: 'rule' },
          position: undefined,
        },
      ],
      closedPnls: [],
      riskState: { ...initialRiskState(100), day: '2025-09-11' },
      options: {
        sizing: { mode: 'fraction' as const, fraction: 0.00004 },
        fractional: true,
        cashBuffer: 0,
        products: { 'SOL-USD': SOL },
      },
    };
    // 0.00004 x $100 / $200 = 0.00002 SOL: under 0.01.
    const out = decideAtClose(input as Parameters<typeof decideAtClose>[0]);
    expect(out.entries).toEqual([]);
    expect(out.skipped[0]?.reason).toMatch(/^zero-after-rounding: SOL-USD/);
    const bigger = decideAtClose({
      ...input,
      options: { ...input.options, sizing: { mode: 'fraction', fraction: 0.01 } },
    } as Parameters<typeof decideAtClose>[0]);
    // 0.005 SOL: on the grid but under the 0.01 minimum size.
    expect(bigger.entries).toEqual([]);
    expect(bigger.skipped.at(-1)?.reason).toMatch(
      /^below-min-size: SOL-USD: quantity 0.005 is under the minimum size 0.01/,
    );
  });

  it("productStop: whole cents away from the market (a long's stop down, a short's up), idempotent", () => {
    expect(productStop(204.8596, 1)).toBe(204.85);
    expect(productStop(204.8516, -1)).toBe(204.86);
    expect(productStop(204.85, 1)).toBe(204.85);
    fc.assert(
      fc.property(
        fc.double({ min: 0.01, max: 200_000, noNaN: true }),
        fc.constantFrom(1 as const, -1 as const),
        (x, side) => {
          const s = productStop(x, side);
          expect(productStop(s, side)).toBe(s);
          expect(side === 1 ? s <= x + 1e-9 : s >= x - 1e-9).toBe(true);
          expect(Math.abs(s - x)).toBeLessThan(0.01 + 1e-9);
        },
      ),
    );
  });
});

describe('products: in the crypto config', () => {
  it('the shipped config names every watchlist product with its increment and minimums', () => {
    const config = parseConfig(cryptoYaml, 'crypto-strategy.yaml');
    expect(configProducts(config)).toEqual({
      'BTC-USD': { productId: 'BTC-USD', baseIncrement: 1e-8, baseMinSize: 1e-8, quoteMinSize: 1 },
      'ETH-USD': { productId: 'ETH-USD', baseIncrement: 1e-8, baseMinSize: 1e-8, quoteMinSize: 1 },
      'SOL-USD': { productId: 'SOL-USD', baseIncrement: 0.001, baseMinSize: 0.001, quoteMinSize: 1 },
    });
    const equity = parseConfig(readFileSync('config/equity-strategy.yaml', 'utf8'), 'equity-strategy.yaml');
    expect(configProducts(equity)).toBeUndefined();
  });

  it('refuses a missing product, a product outside the watchlist, a bad increment, and products on an equity config', () => {
    const bad = (text: string) => {
      try {
        parseConfig(text, 'c.yaml');
      } catch (error) {
        expect(error).toBeInstanceOf(ConfigError);
        return (error as Error).message;
      }
      throw new Error('accepted');
    };
    expect(bad(cryptoYaml.replace(/\n {2}SOL-USD: \{[^}]*\}/, ''))).toMatch(/products\.SOL-USD: missing/);
    expect(
      bad(cryptoYaml.replace('SOL-USD: { baseIncrement: 0.001', 'DOGE-USD: { baseIncrement: 0.001')),
    ).toMatch(/products\.DOGE-USD: not in the watchlist/);
    expect(bad(cryptoYaml.replace('baseIncrement: 0.001', 'baseIncrement: 0.003'))).toMatch(
      /products\.SOL-USD\.baseIncrement: must be a power of ten/,
    );
    expect(bad(cryptoYaml.replace('minSize: 0.001,', 'minSize: -1,'))).toMatch(/products\.SOL-USD\.minSize/);
    const equity = readFileSync('config/equity-strategy.yaml', 'utf8');
    expect(bad(`${equity}\nproducts:\n  SPY: { baseIncrement: 1, minSize: 1 }\n`)).toMatch(
      /products: products' increments are the crypto bot's/,
    );
  });
});
