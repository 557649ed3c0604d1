import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadDataDir } from '../../shared/adapters/fs/bars.js';
import { DEFAULT_PRODUCTS } from '../../shared/adapters/local/coinbase-server.js';
import { buildBacktestJob } from '../../shared/cli/backtest.js';
import { replayCommand } from '../../shared/cli/replay.js';
import { runBacktest } from '../../shared/core/backtest/engine.js';
import { parseConfig } from '../../shared/core/config/schema.js';
import { floorToIncrement } from '../../shared/core/sizing/increments.js';
import { capture } from '../helpers/capture.js';

// The crypto config as shipped (10 bps slippage, 60 bps taker fee). The span holds a Saturday
// entry (BTC-USD on 2025-09-13), a Sunday entry (ETH-USD on 2025-10-05), an exit by the strategy
// and the three stops of the 2025-10-10 crash; its lookback (730 days) reaches back far enough
// that the live EMAs equal the backtest's.
const configPath = 'config/crypto-strategy.yaml';
const FROM = '2025-09-01';
const TO = '2025-10-31';

interface Fill {
  clientOrderId: string | null;
  symbol: string;
  side: string;
  qty: number;
  price: number;
  time: string;
}
interface ReplayJson {
  command: string;
  orders: {
    clientOrderId: string;
    symbol: string;
    side: string;
    qty: number;
    type: string;
    status: string;
  }[];
  fills: Fill[];
  equity: { date: string; equity: number }[];
  reconciliation: { mismatches: number; days: unknown[] };
}

describe('quantshift replay on the crypto config (24/7, against the local Coinbase server)', () => {
  it("trades what the crypto backtest trades over the same span, weekends included: entries, exits, quantities to the product's increment, prices to the cent", async () => {
    const stdout = capture();
    const stderr = capture();
    const args = ['--config', configPath, '--from', FROM, '--to', TO, '--format', 'json', '--no-cache'];
    expect(await replayCommand(args, { stdout: stdout.stream, stderr: stderr.stream })).toBe(0);
    const doc = JSON.parse(stdout.text()) as ReplayJson;
    expect(doc.command).toBe('replay');

    const config = parseConfig(readFileSync(configPath, 'utf8'), configPath);
    const job = buildBacktestJob(
      { from: FROM, to: TO, 'end-of-data': 'hold' },
      config,
      loadDataDir(config.data.dir, config.watchlist),
    );
    const backtest = runBacktest({
      series: job.series,
      strategy: job.strategy,
      params: job.params,
      options: job.options,
    });
    const dateOf = (t: number) => new Date(t).toISOString().slice(0, 10);
    // The exchange takes quantities on the product's base increment (the broker adapter rounds
    // down); the backtest sizes in 1e-6 steps: the replay's is the backtest's rounded down.
    const increment = (symbol: string) =>
      Number(DEFAULT_PRODUCTS.find((p) => p.productId === symbol)?.baseIncrement);
    const expected = backtest.trades
      .flatMap((t) => {
        const qty = floorToIncrement(t.qty, increment(t.symbol));
        return [
          { symbol: t.symbol, side: 'buy', qty, date: dateOf(t.entryTime), price: t.entryPrice },
          ...(t.exitTime === null
            ? []
            : [
                {
                  symbol: t.symbol,
                  side: 'sell',
                  qty,
                  date: dateOf(t.exitTime),
                  price: t.exitPrice as number,
                  reason: t.exitReason,
                },
              ]),
        ];
      })
      .sort((a, b) => `${a.date}${a.symbol}${a.side}`.localeCompare(`${b.date}${b.symbol}${b.side}`));
    const placed = doc.fills
      .map((f) => ({ symbol: f.symbol, side: f.side, qty: f.qty, date: f.time.slice(0, 10), price: f.price }))
      .sort((a, b) => `${a.date}${a.symbol}${a.side}`.localeCompare(`${b.date}${b.symbol}${b.side}`));

    expect(expected.length).toBeGreaterThanOrEqual(8);
    expect(placed.map(({ price: _, ...f }) => f)).toEqual(
      expected.map(({ price: _, reason: __, ...f }) => f),
    );
    // Weekends trade like any day: a Saturday and a Sunday entry.
    const weekdays = placed.map((f) => new Date(`${f.date}T00:00:00Z`).getUTCDay());
    expect(weekdays).toContain(6);
    expect(weekdays).toContain(0);
    for (const [k, want] of expected.entries()) {
      const got = placed[k]?.price as number;
      if (want.reason === 'stop-loss') {
        // A stop-limit is sent in whole cents (rounded away from the market), the backtest's stop is
        // not: the triggered fill (the stop, slipped) is within a cent of the backtest's.
        expect(Math.abs(got - want.price)).toBeLessThan(0.01);
      } else {
        // Market IOC entries and exits: the day's open, slipped, exactly as the backtest fills.
        expect(got).toBeCloseTo(want.price, 9);
      }
    }
    expect(expected.filter((t) => t.reason === 'stop-loss')).toHaveLength(3);
    expect(expected.filter((t) => t.reason === 'exit')).toHaveLength(1);

    // The shapes of the equity replay's JSON.
    for (const fill of doc.fills) {
      expect(config.watchlist).toContain(fill.symbol);
      expect(['buy', 'sell']).toContain(fill.side);
      expect(typeof fill.qty).toBe('number');
      expect(new Date(fill.time).toISOString()).toBe(fill.time);
      expect(doc.orders.map((o) => o.clientOrderId)).toContain(fill.clientOrderId);
    }
    // Entries and exits are market IOC orders; protective stops are stop-limit GTC orders.
    expect(
      new Set(doc.orders.filter((o) => /-(entry|exit)$/.test(o.clientOrderId)).map((o) => o.type)),
    ).toEqual(new Set(['market']));
    expect(new Set(doc.orders.filter((o) => /-stop-\d+$/.test(o.clientOrderId)).map((o) => o.type))).toEqual(
      new Set(['stop_limit']),
    );
    // Every UTC day of the span was a session, weekends included, reconciled with no difference.
    expect(doc.equity).toHaveLength(61);
    expect(doc.reconciliation.mismatches).toBe(0);
  }, 300_000);

  it('refuses the equity paper broker rehearsals on a crypto config', async () => {
    const stdout = capture();
    const stderr = capture();
    await expect(
      replayCommand(['--config', configPath, '--from', FROM, '--to', FROM, '--slippage-bps', '5'], {
        stdout: stdout.stream,
        stderr: stderr.stream,
      }),
    ).rejects.toThrow(/crypto config: .*--slippage-bps.* rehearse the equity paper broker only/);
  });
});
