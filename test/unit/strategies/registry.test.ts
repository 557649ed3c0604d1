import { describe, expect, it } from 'vitest';
import { loadBarsCsv } from '../../../shared/adapters/fs/bars.js';
import { runBacktest } from '../../../shared/core/backtest/engine.js';
import { InvalidParameterError, UsageError } from '../../../shared/core/errors.js';
import { atr } from '../../../shared/core/indicators/index.js';
import { barAt } from '../../../shared/core/market/types.js';
import {
  describeStrategy,
  getStrategy,
  parseParamText,
  strategyRegistry,
} from '../../../shared/core/strategies/index.js';
import type { Intent, StrategyDefinition } from '../../../shared/core/strategies/types.js';
import type { ParsedFlags } from '../../../shared/research/flags.js';
import { buildBacktestJob } from '../../../shared/research/job.js';
import { baseOptions, scripted } from '../../helpers/series.js';

const names = ['ma-crossover', 'rsi-reversion', 'breakout', 'bollinger', 'volume-profile'];
const spy = loadBarsCsv('data/SPY.csv');

describe('the strategy registry', () => {
  it('names the five strategies; an unknown name lists them', () => {
    expect([...strategyRegistry.keys()]).toEqual(names);
    expect(() => getStrategy('rsi')).toThrow(InvalidParameterError);
    expect(() => getStrategy('rsi')).toThrow(
      'unknown strategy "rsi" (known: ma-crossover, rsi-reversion, breakout, bollinger, volume-profile)',
    );
  });

  it.each(names)('%s: a strict schema with atrStop and atrPeriod, and both directions', (name) => {
    const strategy = getStrategy(name);
    const bad = strategy.params.safeParse({ bogus: 1 });
    expect(bad.success).toBe(false);
    expect(JSON.stringify(bad.error?.issues)).toContain('bogus');
    expect(strategy.params.safeParse({ direction: 'long-only' }).success).toBe(false);
    const info = describeStrategy(strategy);
    expect(info.directions).toEqual(['long-only', 'long-short']);
    expect(info.params.map((p) => p.name)).toEqual(expect.arrayContaining(['atrStop', 'atrPeriod']));
    expect(info.params.find((p) => p.name === 'atrStop')).toMatchObject({ type: 'number', default: null });
    for (const p of info.params) expect(p.description).not.toBe('');
  });

  it('describes parameters with their type, default and allowed values', () => {
    expect(describeStrategy(getStrategy('ma-crossover')).params.slice(0, 3)).toEqual([
      { name: 'fast', type: 'integer', default: 10, minimum: 1, description: 'fast moving-average period' },
      {
        name: 'slow',
        type: 'integer',
        default: 30,
        minimum: 2,
        description: 'slow moving-average period (above fast)',
      },
      {
        name: 'ma',
        type: 'enum',
        default: 'sma',
        values: ['sma', 'ema'],
        description: 'moving-average kind',
      },
    ]);
    expect(describeStrategy(getStrategy('rsi-reversion')).params[1]).toMatchObject({
      name: 'entry',
      type: 'number',
      default: 30,
      exclusiveMinimum: 0,
      maximum: 50,
    });
  });

  it('types a parameter given as text by the schema and names one it does not have', () => {
    const rsi = getStrategy('rsi-reversion');
    expect(parseParamText(rsi, 'period', '14')).toBe(14);
    expect(parseParamText(getStrategy('ma-crossover'), 'ma', 'ema')).toBe('ema');
    expect(() => parseParamText(rsi, 'period', 'fourteen')).toThrow(
      'period=fourteen: period must be a number',
    );
    expect(() => parseParamText(rsi, 'fast', '3')).toThrow(
      'fast: not a parameter of rsi-reversion (its parameters: period, entry, exit, atrStop, atrPeriod)',
    );
    expect(() => parseParamText(rsi, 'direction', 'long-short')).toThrow(/direction is an option of the run/);
  });

  it('refuses a run in a direction the strategy does not support', () => {
    const longOnly: StrategyDefinition<Record<string, never>> = {
      ...scripted({}),
      directions: ['long-only'],
    };
    expect(() =>
      runBacktest({
        series: [spy],
        strategy: longOnly,
        params: {},
        options: { ...baseOptions, direction: 'long-short' },
      }),
    ).toThrow('direction long-short: strategy scripted supports long-only');
  });
});

describe('the ad hoc job', () => {
  it('takes the direction as a run option and the params typed by the schema', () => {
    const job = buildBacktestJob(
      { strategy: 'rsi-reversion', param: ['period=10', 'entry=25', 'atrStop=2'], direction: 'long-short' },
      undefined,
      [spy],
    );
    expect(job.strategy.name).toBe('rsi-reversion');
    expect(job.params).toEqual({ period: 10, entry: 25, exit: 50, atrStop: 2, atrPeriod: 14 });
    expect(job.options.direction).toBe('long-short');
    expect(buildBacktestJob({}, undefined, [spy]).options.direction).toBe('long-only');
  });

  it('names an unknown strategy, an unknown parameter and a bad value', () => {
    const error = (flags: ParsedFlags) => {
      try {
        buildBacktestJob(flags, undefined, [spy]);
      } catch (e) {
        expect(e).toBeInstanceOf(UsageError);
        return (e as Error).message;
      }
      throw new Error('expected a UsageError');
    };
    expect(error({ strategy: 'macd' })).toMatch(
      /--strategy: unknown strategy "macd" \(known: ma-crossover, rsi-reversion/,
    );
    expect(error({ strategy: 'breakout', param: ['period=20'] })).toBe(
      '--param period: not a parameter of breakout (its parameters: entry, exit, atrStop, atrPeriod)',
    );
    expect(error({ strategy: 'bollinger', param: ['k=wide'] })).toBe('--param k=wide: k must be a number');
    expect(error({ strategy: 'volume-profile', param: ['bins=0'] })).toMatch(/--param: bins: /);
    expect(error({ param: ['direction=long-short'] })).toMatch(
      /^--param direction: not a parameter of ma-crossover .*; direction is an option of the run \(--direction, strategy\.direction\)$/,
    );
  });
});

describe('the optional k × ATR stop of every strategy', () => {
  const closes = spy.close;
  const atr14 = atr(spy.high, spy.low, spy.close, 14);
  const run = (strategy: StrategyDefinition<unknown>, params: Record<string, unknown>) => {
    const instance = strategy.create(strategy.params.parse(params), { direction: 'long-short' });
    return Array.from(closes, (_, t): Intent => instance.onBar(barAt(spy, t), { position: 'flat' }));
  };
  const cases: [string, Record<string, unknown>][] = [
    ['ma-crossover', { fast: 5, slow: 20 }],
    ['rsi-reversion', { period: 5 }],
    ['breakout', { entry: 10, exit: 5 }],
    ['bollinger', { period: 10, k: 1.5 }],
    ['volume-profile', { lookback: 10, bins: 12 }],
  ];
  it.each(cases)('%s: the same entries, each with its stop at 2 × ATR(14) from the close', (name, params) => {
    const strategy = getStrategy(name);
    const plain = run(strategy, params);
    const stopped = run(strategy, { ...params, atrStop: 2, atrPeriod: 14 });
    let entries = 0;
    plain.forEach((intent, t) => {
      const a = atr14[t] as number;
      if (intent.action !== 'enter' || !(a > 0)) {
        // no entry, or one before the ATR exists: not taken without its stop
        expect(stopped[t]).toEqual(intent.action === 'enter' ? { action: 'hold' } : intent);
        return;
      }
      entries++;
      const sign = intent.side === 'long' ? -1 : 1;
      expect(stopped[t]).toEqual({ ...intent, stopLoss: (closes[t] as number) + sign * 2 * a, atr: a });
    });
    expect(entries).toBeGreaterThan(10);
  });
});
