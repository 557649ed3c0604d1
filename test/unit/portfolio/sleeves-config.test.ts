import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadDataDir } from '../../../shared/adapters/fs/bars.js';
import { runBacktest } from '../../../shared/core/backtest/engine.js';
import { runSleevesBacktest } from '../../../shared/core/backtest/sleeves.js';
import { parseConfig } from '../../../shared/core/config/schema.js';
import {
  AllocationWeightError,
  ConfigError,
  DuplicateSleeveIdError,
  SleeveSymbolsError,
  StrategyParamError,
  UnknownStrategyError,
} from '../../../shared/core/errors.js';
import { getStrategy } from '../../../shared/core/strategies/index.js';
import { buildSleevesJob, configSleeves } from '../../../shared/research/sleeves.js';

const base = readFileSync('config/equity-strategy.yaml', 'utf8');
/** The single-strategy config with its strategy: block replaced by the given YAML. */
function withSleeves(yaml: string): string {
  const start = base.indexOf('strategy:\n');
  const end = base.indexOf('sizing:\n');
  return `${base.slice(0, start)}${yaml}\n${base.slice(end)}`;
}
const two = (a: string, b: string) => `sleeves:\n${a}\n${b}`;
const trend = `  - id: trend\n    strategy: ma-crossover\n    symbols: [SPY, QQQ]\n    params: { fast: 10, slow: 30 }`;
const slow = `  - id: slow\n    strategy: ma-crossover\n    symbols: [SPY]\n    params: { fast: 20, slow: 50 }`;

describe('sleeves config', () => {
  it('parses a sleeves list and keeps a single strategy: block as one sleeve', () => {
    const config = parseConfig(withSleeves(two(trend, slow)), 'ms.yaml');
    expect(config.sleeves?.map((s) => s.id)).toEqual(['trend', 'slow']);
    const single = parseConfig(base, 'eq.yaml');
    expect(configSleeves(single)).toMatchObject([
      { id: 'ma-crossover', strategy: 'ma-crossover', symbols: ['SPY', 'QQQ', 'AAPL', 'MSFT'], weight: 1 },
    ]);
  });

  it('takes the volatility cap (the sleeves session computes it from the same daily returns)', () => {
    const text = withSleeves(two(trend, slow)).replace(
      /^risk:\n/m,
      'risk:\n  volatilityCap: { targetVolatility: 0.1, window: 30 }\n',
    );
    expect(parseConfig(text, 'ms.yaml').risk.volatilityCap).toEqual({ targetVolatility: 0.1, window: 30 });
  });

  it('names each bad input with its own error', () => {
    const fails = (yaml: string, type: new (...args: never[]) => Error, message: RegExp) => {
      let caught: unknown;
      try {
        parseConfig(withSleeves(yaml), 'ms.yaml');
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(type);
      expect(caught).toBeInstanceOf(ConfigError);
      expect((caught as Error).message).toMatch(message);
    };
    fails(
      two(trend, slow.replace('ma-crossover', 'nope')),
      UnknownStrategyError,
      /sleeves\.1 \(slow\)\.strategy: unknown strategy "nope" \(known: ma-crossover/,
    );
    fails(two(trend, trend), DuplicateSleeveIdError, /id "trend" is used by another sleeve/);
    fails(
      two(trend, slow.replace('symbols: [SPY]', 'symbols: []')),
      SleeveSymbolsError,
      /sleeves\.1 \(slow\)\.symbols: a sleeve needs at least one symbol/,
    );
    fails(
      two(trend, slow.replace('symbols: [SPY]', 'symbols: [TSLA]')),
      SleeveSymbolsError,
      /not in the watchlist: TSLA/,
    );
    fails(
      two(trend, slow.replace('slow: 50 }', 'slow: 50, bogus: 1 }')),
      StrategyParamError,
      /sleeves\.1\.params/,
    );
    fails(
      two(`${trend}\n    weight: 0\n`, `${slow}\n    weight: 0`),
      AllocationWeightError,
      /the weights sum to zero/,
    );
    fails(
      two(`${trend}\n    weight: 0.9\n    maxWeight: 0.6`, `${slow}\n    weight: 0.1`),
      AllocationWeightError,
      /weight: 0\.9 \(normalized\) is outside its bounds \[0, 0\.6\]/,
    );
    fails(
      two(`${trend}\n    minWeight: 0.7`, `${slow}\n    minWeight: 0.5`),
      AllocationWeightError,
      /cannot sum to 1/,
    );
    expect(() =>
      parseConfig(`${withSleeves(two(trend, slow))}\nstrategy:\n  name: ma-crossover\n`, 'x.yaml'),
    ).toThrow(/either one strategy: block or a sleeves: list/);
  });
});

describe('one sleeve equals the single-strategy engine', () => {
  const series = loadDataDir('data', ['SPY', 'QQQ', 'AAPL', 'MSFT']);
  const config = parseConfig(base, 'config/equity-strategy.yaml');
  for (const variant of [
    'no risk rules, fixed size',
    'the config: ATR-risk sizing, stops and risk rules',
  ] as const) {
    it(variant, () => {
      const job = buildSleevesJob({}, config, series);
      const options =
        variant === 'no risk rules, fixed size'
          ? {
              ...job.options,
              sizing: { mode: 'fixed' as const, qty: 20 },
              risk: undefined,
              maxPositionFraction: undefined,
            }
          : job.options;
      const single = runBacktest({
        series,
        strategy: getStrategy('ma-crossover'),
        params: job.sleeves[0]?.params,
        options,
      });
      const sleeves = runSleevesBacktest({ series, sleeves: job.sleeves, options });
      const strip = (t: (typeof single.trades)[number]) => ({ ...t, sleeve: undefined });
      expect(sleeves.trades.length).toBeGreaterThan(10);
      expect(sleeves.trades.map(strip)).toEqual(single.trades.map(strip));
      expect(Array.from(sleeves.equity.equity)).toEqual(Array.from(single.equity.equity));
      expect(sleeves.metrics).toEqual(single.metrics);
    });
  }
});

describe('one sleeve equals the single-strategy engine under the volatility cap (crypto, 365 days a year)', () => {
  it('the crypto config as one sleeve, its cap tightened to bind: the same trades, equity and metrics', () => {
    // The shipped crypto config with its sleeves replaced by the trend sleeve's strategy alone.
    const text = readFileSync('config/crypto-strategy.yaml', 'utf8');
    const oneStrategy = `${text.slice(0, text.indexOf('sleeves:\n'))}strategy:
  name: ma-crossover
  direction: long-only
  params: { fast: 10, slow: 30, ma: ema, atrPeriod: 14, atrStop: 3 }

${text.slice(text.indexOf('sizing:\n'))}`;
    const crypto = parseConfig(oneStrategy, 'crypto-single.yaml');
    expect(crypto.sleeves).toBeUndefined();
    expect(crypto.risk.volatilityCap).toBeDefined();
    const series = loadDataDir('data/crypto', crypto.watchlist);
    const job = buildSleevesJob({}, crypto, series);
    const rules = job.options.risk as NonNullable<typeof job.options.risk>;
    // 3% target: about 4% of equity at 70% volatility, under the ATR-risk size, so the cap binds.
    const capped = {
      ...job.options,
      risk: { ...rules, volatilityCap: { targetVolatility: 0.03, window: 30 } },
    };
    const single = runBacktest({
      series,
      strategy: getStrategy('ma-crossover'),
      params: job.sleeves[0]?.params,
      options: capped,
    });
    const sleeves = runSleevesBacktest({ series, sleeves: job.sleeves, options: capped });
    const strip = (t: (typeof single.trades)[number]) => ({ ...t, sleeve: undefined });
    expect(sleeves.trades.length).toBeGreaterThan(10);
    expect(sleeves.trades.map(strip)).toEqual(single.trades.map(strip));
    expect(Array.from(sleeves.equity.equity)).toEqual(Array.from(single.equity.equity));
    expect(sleeves.metrics).toEqual(single.metrics);
    const uncapped = runSleevesBacktest({
      series,
      sleeves: job.sleeves,
      options: { ...job.options, risk: { ...rules, volatilityCap: undefined } },
    });
    expect(uncapped.trades.map((t) => t.qty)).not.toEqual(sleeves.trades.map((t) => t.qty));
  });
});
