import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { parseConfig } from '../../../shared/core/config/schema.js';
import { ConfigError } from '../../../shared/core/errors.js';

const text = readFileSync('config/equity-strategy.yaml', 'utf8');
// biome-ignore lint/suspicious/noExplicitAny: tests edit arbitrary keys of the parsed YAML
const edit = (change: (raw: Record<string, any>) => void) => {
  const raw = parse(text);
  change(raw);
  return stringify(raw);
};
const error = (yaml: string) => {
  try {
    parseConfig(yaml, 'cfg.yaml');
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as Error).message;
  }
  throw new Error('expected a ConfigError');
};

describe('config/equity-strategy.yaml', () => {
  it('holds the documented defaults', () => {
    const config = parseConfig(text, 'config/equity-strategy.yaml');
    expect(config.watchlist).toEqual(['SPY', 'QQQ', 'AAPL', 'MSFT']);
    expect(config.risk).toMatchObject({
      riskPerTrade: 0.02,
      maxPositionFraction: 0.2,
      maxPortfolioHeat: 0.1,
      maxDrawdown: 0.15,
      dailyLossLimit: 0.05,
      kellyFraction: 0.25,
      cashBuffer: 0.02,
    });
    expect(config.criteria).toMatchObject({
      minSharpe: 1.5,
      maxDrawdownPct: 15,
      minWinRatePct: 50,
      minProfitFactor: 1.5,
      minAnnualReturnPct: 15,
    });
  });

  it('names the bad key', () => {
    expect(error(edit((r) => (r.risk.maxDrawdown = 15)))).toMatch(/^cfg\.yaml: risk\.maxDrawdown: /);
    expect(error(edit((r) => (r.costs.slippageBps = -1)))).toMatch(/costs\.slippageBps/);
    expect(error(edit((r) => (r.sizing = { mode: 'kelly' })))).toMatch(/sizing\.mode/);
    expect(error(edit((r) => (r.risk.maxHeat = 0.1)))).toMatch(/risk: .*maxHeat/);
    expect(error(edit((r) => delete r.watchlist))).toMatch(/watchlist/);
  });

  it('validates the strategy parameters with the strategy schema', () => {
    expect(error(edit((r) => (r.strategy.params.fast = 50)))).toMatch(
      /strategy\.params\.fast: fast must be less than slow/,
    );
    expect(error(edit((r) => (r.strategy.params.ma = 'hma')))).toMatch(/strategy\.params\.ma/);
    expect(error(edit((r) => (r.strategy.name = 'magic')))).toMatch(
      /strategy\.name: unknown strategy "magic" \(known: ma-crossover/,
    );
  });

  it('validates any registered strategy with its own schema, naming a key it does not have', () => {
    const rsi = (params: Record<string, unknown>) =>
      edit((r) => {
        r.strategy = { name: 'rsi-reversion', direction: 'long-only', params };
      });
    expect(parseConfig(rsi({ period: 10, atrStop: 2 }), 'cfg.yaml').strategy?.params).toEqual({
      period: 10,
      atrStop: 2,
    });
    expect(error(rsi({ fast: 10 }))).toMatch(/^cfg\.yaml: strategy\.params: .*"fast"/);
    expect(error(rsi({ entry: 70 }))).toMatch(/^cfg\.yaml: strategy\.params\.entry: /);
  });

  it('keeps the direction a run option: strategy.direction, never strategy.params.direction', () => {
    const longShort = parseConfig(
      edit((r) => (r.strategy.direction = 'long-short')),
      'cfg.yaml',
    );
    expect(longShort.strategy?.direction).toBe('long-short');
    expect(longShort.strategy?.params).not.toHaveProperty('direction');
    expect(error(edit((r) => (r.strategy.params.direction = 'long-short')))).toMatch(
      /strategy\.params\.direction: direction is an option of the run.*move it to strategy\.direction/,
    );
    expect(error(edit((r) => (r.strategy.direction = 'short-only')))).toMatch(/strategy\.direction/);
  });

  it('keeps asset classes apart: crypto symbols are refused', () => {
    for (const symbol of ['BTC/USD', 'BTCUSD', 'ETHUSDT']) {
      expect(error(edit((r) => r.watchlist.push(symbol)))).toMatch(
        /watchlist\.4: crypto symbols are not allowed/,
      );
    }
    expect(error(edit((r) => r.watchlist.push('SPY')))).toMatch(/duplicate symbols: SPY/);
  });

  it('reports YAML syntax errors with the line', () => {
    expect(error('name: x\nwatchlist: [SPY\n')).toMatch(/^cfg\.yaml:\d+: not valid YAML/);
  });
});
