import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadDataDir } from '../../shared/adapters/fs/bars.js';
import { buildBacktestJob } from '../../shared/cli/backtest.js';
import { replay } from '../../shared/cli/replay.js';
import { runBacktest } from '../../shared/core/backtest/engine.js';
import { parseConfig } from '../../shared/core/config/schema.js';

// The replay's parity config (paper broker costs, fixed history start) with a Kelly cap that
// engages after 2 closed trades, so the live Kelly sample (the closed trades end-of-day records)
// decides quantities within the replay's window. The shipped config needs 20 trades; this window
// has 5.
const dir = mkdtempSync(join(tmpdir(), 'qs-replay-kelly-'));
const configPath = join(dir, 'config.yaml');
const configText = readFileSync('config/equity-strategy.yaml', 'utf8')
  .replace(/^ {2}slippageBps: 5/m, '  slippageBps: 0')
  .replace(/^ {2}# historyFrom: 2021-01-11.*$/m, '  historyFrom: 2021-01-11')
  .replace(/^ {2}kellyWindow: 50/m, '  kellyWindow: 5')
  .replace(/^ {2}kellyMinTrades: 20/m, '  kellyMinTrades: 2');
writeFileSync(configPath, configText);

describe('replay with the Kelly cap engaged', () => {
  it('places the backtest’s Kelly-capped quantities: live reads the same closed-trade P&L', async () => {
    expect(configText).toContain('kellyMinTrades: 2');
    const doc = await replay({
      from: '2021-03-15',
      to: '2021-06-30',
      configPath,
      dataDir: 'data',
      withCache: false,
      log: () => {},
      // The handlers' own logs (thousands of JSON lines) are not this test's subject.
      logSink: () => {},
    });
    const config = parseConfig(configText, configPath);
    const job = buildBacktestJob(
      { from: '2021-03-15', to: '2021-06-30', 'end-of-data': 'hold' },
      config,
      loadDataDir('data', config.watchlist),
    );
    const backtest = runBacktest({
      series: job.series,
      strategy: job.strategy,
      params: job.params,
      options: job.options,
    });
    const kellyCapped = (backtest.risk?.reducedEntries ?? []).filter((r) =>
      r.reasons.some((reason) => reason.startsWith('Kelly cap')),
    );
    expect(kellyCapped.length).toBeGreaterThan(2);

    const dateOf = (t: number) => new Date(t).toISOString().slice(0, 10);
    const order = (a: { date: string; symbol: string; side: string }) => `${a.date}${a.symbol}${a.side}`;
    const expected = backtest.trades
      .flatMap((t) => [
        { symbol: t.symbol, side: 'buy', qty: t.qty, date: dateOf(t.entryTime) },
        ...(t.exitTime === null
          ? []
          : [{ symbol: t.symbol, side: 'sell', qty: t.qty, date: dateOf(t.exitTime) }]),
      ])
      .sort((a, b) => order(a).localeCompare(order(b)));
    const placed = doc.fills
      .map((f) => ({ symbol: f.symbol, side: f.side, qty: f.qty, date: f.time.slice(0, 10) }))
      .sort((a, b) => order(a).localeCompare(order(b)));
    // Each Kelly-capped entry of the backtest is a live fill of the same (reduced) quantity.
    for (const capped of kellyCapped) {
      expect(placed).toContainEqual(
        expect.objectContaining({ symbol: capped.symbol, side: 'buy', qty: capped.qty }),
      );
    }
    expect(placed).toEqual(expected);
  }, 180_000);
});
