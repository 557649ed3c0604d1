import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { parseConfig, singleStrategy } from '../../../shared/core/config/schema.js';
import {
  ConfigError,
  CryptoSymbolRefusedError,
  EquitySymbolRefusedError,
} from '../../../shared/core/errors.js';
import { assertAssetClass, periodsPerYear } from '../../../shared/core/market/asset-class.js';

const equityText = readFileSync('config/equity-strategy.yaml', 'utf8');
const cryptoText = readFileSync('config/crypto-strategy.yaml', 'utf8');
// biome-ignore lint/suspicious/noExplicitAny: tests edit arbitrary keys of the parsed YAML
const edit = (text: string, change: (raw: Record<string, any>) => void) => {
  const raw = parse(text);
  change(raw);
  return stringify(raw);
};
const thrown = (yaml: string): unknown => {
  try {
    parseConfig(yaml, 'cfg.yaml');
  } catch (error) {
    return error;
  }
  throw new Error('expected the config to be refused');
};

describe('asset classes', () => {
  it('reads the shipped crypto config: products, 365-day annualisation, fees as the taker commission', () => {
    const config = parseConfig(cryptoText, 'config/crypto-strategy.yaml');
    expect(config.assetClass).toBe('crypto');
    expect(config.watchlist).toEqual(['BTC-USD', 'ETH-USD', 'SOL-USD']);
    expect(config.data.dir).toBe('data/crypto');
    expect(config.costs.fees).toEqual({ makerBps: 40, takerBps: 60 });
    expect(config.costs.commission).toEqual({ perShare: 0, perOrder: 0, percent: 0.006, minimum: 0 });
    expect(config.backtest.fractional).toBe(true);
    // Crypto defaults: lower risk per trade and wider ATR stops than the equity bot.
    const equity = parseConfig(equityText, 'config/equity-strategy.yaml');
    expect(config.risk.riskPerTrade).toBeLessThan(equity.risk.riskPerTrade);
    expect(config.risk.stops.initialAtr).toBeGreaterThan(equity.risk.stops.initialAtr);
    // Sleeves of the project's strategies, long-only (spot), the trend sleeve's ATR stop wider.
    expect(config.sleeves?.map((sleeve) => [sleeve.id, sleeve.strategy, sleeve.direction])).toEqual([
      ['trend', 'ma-crossover', 'long-only'],
      ['breakout', 'breakout', 'long-only'],
      ['bollinger', 'bollinger', 'long-only'],
    ]);
    const trend = config.sleeves?.find((sleeve) => sleeve.strategy === 'ma-crossover');
    expect(trend?.params.atrStop as number).toBeGreaterThan(singleStrategy(equity).params.atrStop as number);
    expect(config.risk.volatilityCap).toEqual({ targetVolatility: 0.08, window: 30 });
    expect(periodsPerYear(config.assetClass)).toBe(365);
  });

  it('reads the equity config as before: us_equity is the equity class, 252 periods a year', () => {
    const config = parseConfig(equityText, 'config/equity-strategy.yaml');
    expect(config.assetClass).toBe('equity');
    expect(periodsPerYear(config.assetClass)).toBe(252);
    const defaulted = parseConfig(
      edit(equityText, (r) => delete r.assetClass),
      'cfg.yaml',
    );
    expect(defaulted.assetClass).toBe('equity');
    expect(
      parseConfig(
        edit(equityText, (r) => (r.assetClass = 'equity')),
        'cfg.yaml',
      ).assetClass,
    ).toBe('equity');
  });

  it('the equity bot refuses a crypto symbol with CryptoSymbolRefusedError', () => {
    for (const symbol of ['BTC-USD', 'BTC/USD', 'BTCUSD', 'ETHUSDT']) {
      const error = thrown(edit(equityText, (r) => r.watchlist.push(symbol)));
      expect(error).toBeInstanceOf(CryptoSymbolRefusedError);
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as CryptoSymbolRefusedError).symbol).toBe(symbol);
      expect((error as Error).message).toMatch(/^cfg\.yaml: watchlist\.4: crypto symbols are not allowed/);
    }
    expect(() => assertAssetClass('equity', 'btc-usd', 'alpaca submit')).toThrow(CryptoSymbolRefusedError);
    expect(() => assertAssetClass('equity', 'SPY', 'alpaca submit')).not.toThrow();
  });

  it('the crypto bot refuses an equity ticker with EquitySymbolRefusedError', () => {
    const error = thrown(edit(cryptoText, (r) => r.watchlist.push('SPY')));
    expect(error).toBeInstanceOf(EquitySymbolRefusedError);
    expect((error as EquitySymbolRefusedError).symbol).toBe('SPY');
    expect((error as Error).message).toMatch(
      /^cfg\.yaml: watchlist\.3: equity tickers are not allowed in the crypto watchlist/,
    );
    expect(() => assertAssetClass('crypto', 'SPY', 'coinbase submit')).toThrow(EquitySymbolRefusedError);
    expect(() => assertAssetClass('crypto', 'ETH-USD', 'coinbase submit')).not.toThrow();
  });

  it('names other bad crypto keys: a malformed product, fees next to a commission', () => {
    const bad = thrown(edit(cryptoText, (r) => r.watchlist.push('BTC_USD')));
    expect(bad).toBeInstanceOf(ConfigError);
    expect(bad).not.toBeInstanceOf(EquitySymbolRefusedError);
    expect((bad as Error).message).toMatch(/watchlist\.3: not a crypto product id/);
    const both = thrown(edit(cryptoText, (r) => (r.costs.commission = { percent: 0.001 })));
    expect((both as Error).message).toMatch(/costs\.fees: give either fees .* or a commission, not both/);
    const negative = thrown(edit(cryptoText, (r) => (r.costs.fees.takerBps = -1)));
    expect((negative as Error).message).toMatch(/costs\.fees\.takerBps/);
    const unknown = thrown(edit(cryptoText, (r) => (r.assetClass = 'forex')));
    expect((unknown as Error).message).toMatch(/assetClass/);
  });
});
