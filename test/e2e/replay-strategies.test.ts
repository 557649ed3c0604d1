import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadDataDir } from '../../shared/adapters/fs/bars.js';
import { replay } from '../../shared/cli/replay.js';
import { runBacktest } from '../../shared/core/backtest/engine.js';
import { parseConfig } from '../../shared/core/config/schema.js';
import { buildBacktestJob } from '../../shared/research/job.js';

/**
 * The shipped config with another strategy in its `strategy:` block, the paper broker's costs and a
 * fixed history start: the live functions must place exactly the backtest's trades (one code path).
 */
function configFor(strategy: string, params: string): { path: string; text: string } {
  const dir = mkdtempSync(join(tmpdir(), `qs-replay-${strategy}-`));
  const path = join(dir, 'config.yaml');
  const text = readFileSync('config/equity-strategy.yaml', 'utf8')
    .replace(
      /^strategy:\n(?: {2}.*\n)+/m,
      `strategy:\n  name: ${strategy}\n  direction: long-only\n  params: ${params}\n`,
    )
    .replace(/^ {2}slippageBps: 5/m, '  slippageBps: 0')
    .replace(/^ {2}# historyFrom: 2021-01-11.*$/m, '  historyFrom: 2021-01-11')
    .replace(/^optimize:\n(?:(?: {2}.*)?\n)+/m, '');
  writeFileSync(path, text);
  return { path, text };
}

const cases: [string, string][] = [
  ['volume-profile', '{ lookback: 10, bins: 12, valueArea: 0.7, atrStop: 2 }'],
  ['rsi-reversion', '{ period: 5, entry: 35, exit: 55, atrStop: 2 }'],
];

describe('replay: the live functions trade every strategy as the backtest does', () => {
  it.each(cases)(
    '%s',
    async (strategy, params) => {
      const { path, text } = configFor(strategy, params);
      const config = parseConfig(text, path);
      expect(config.strategy?.name).toBe(strategy);
      const doc = await replay({
        from: '2021-03-15',
        to: '2021-05-28',
        configPath: path,
        dataDir: 'data',
        withCache: true,
        log: () => {},
        logSink: () => {},
      });
      const job = buildBacktestJob(
        { from: '2021-03-15', to: '2021-05-28', 'end-of-data': 'hold' },
        config,
        loadDataDir('data', config.watchlist),
      );
      const backtest = runBacktest(job);
      const dateOf = (t: number) => new Date(t).toISOString().slice(0, 10);
      const order = (a: { date: string; symbol: string; side: string }, b: typeof a) =>
        `${a.date}${a.symbol}${a.side}`.localeCompare(`${b.date}${b.symbol}${b.side}`);
      const expected = backtest.trades
        .flatMap((t) => [
          { symbol: t.symbol, side: 'buy', qty: t.qty, date: dateOf(t.entryTime) },
          ...(t.exitTime === null
            ? []
            : [{ symbol: t.symbol, side: 'sell', qty: t.qty, date: dateOf(t.exitTime) }]),
        ])
        .sort(order);
      const placed = doc.fills
        .map((f) => ({ symbol: f.symbol, side: f.side, qty: f.qty, date: f.time.slice(0, 10) }))
        .sort(order);
      expect(expected.length).toBeGreaterThan(3);
      expect(placed).toEqual(expected);
    },
    240_000,
  );
});
