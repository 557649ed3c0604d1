import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadDataDir } from '../../shared/adapters/fs/bars.js';
import { replay, replayCommand } from '../../shared/cli/replay.js';
import { runSleevesBacktest } from '../../shared/core/backtest/sleeves.js';
import { parseConfig } from '../../shared/core/config/schema.js';
import { floorToIncrement } from '../../shared/core/sizing/increments.js';
import { buildSleevesJob } from '../../shared/research/sleeves.js';
import { capture } from '../helpers/capture.js';

// The crypto config as shipped: three sleeves (trend, breakout, bollinger), risk-parity, 10 bps
// slippage, 60 bps taker fee, the volatility cap. The replay starts the session a day after the
// backtest's first day, so its first signal step decides at the backtest's first close, where both
// start the sleeves' allocation and return history (as test/e2e/replay-sleeves.test.ts). The span
// holds a Saturday entry (trend's BTC-USD on 2025-09-13), a Sunday entry (trend's ETH-USD on
// 2025-10-05), trend's BTC-USD exit netted against bollinger's BTC-USD entry on 2025-09-26, exits
// by the strategies, a monthly rebalance and the stops of the 2025-10-10 crash.
const configPath = 'config/crypto-strategy.yaml';
const FROM = '2025-09-01';
const TO = '2025-10-31';
const BACKTEST_FROM = '2025-08-31';

interface Trade {
  symbol: string;
  qty: number;
  entryTime: string | null;
  entryPrice: number;
  exitTime: string | null;
  exitPrice: number | null;
  exitReason: string | null;
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
  fills: {
    clientOrderId: string | null;
    symbol: string;
    side: string;
    qty: number;
    price: number;
    time: string;
  }[];
  equity: { date: string; equity: number }[];
  sleeves: { id: string; trades: Trade[] }[];
  reconciliation: { mismatches: number; days: unknown[] };
}

describe('quantshift replay on the crypto config (24/7, against the local Coinbase server)', () => {
  it('trades per sleeve what the crypto sleeves backtest trades over the same span, weekends included: the same trades and prices to the cent', async () => {
    const stdout = capture();
    const stderr = capture();
    const args = ['--config', configPath, '--from', FROM, '--to', TO, '--format', 'json', '--no-cache'];
    expect(await replayCommand(args, { stdout: stdout.stream, stderr: stderr.stream })).toBe(0);
    const doc = JSON.parse(stdout.text()) as ReplayJson;
    expect(doc.command).toBe('replay');

    const config = parseConfig(readFileSync(configPath, 'utf8'), configPath);
    const job = buildSleevesJob(
      { from: BACKTEST_FROM, to: TO, 'end-of-data': 'hold' },
      config,
      loadDataDir(config.data.dir, config.watchlist),
    );
    const backtest = runSleevesBacktest({
      series: job.series,
      sleeves: job.sleeves,
      options: job.options,
      ...(job.allocation === undefined ? {} : { allocation: job.allocation }),
      ...(job.correlation === undefined ? {} : { correlation: job.correlation }),
    });
    const day = (t: number | null) => (t === null ? null : new Date(t).toISOString().slice(0, 10));
    // The backtest sizes every entry on the config's products (rounded down to the base increment,
    // the server enforces the same table): the replay's quantities are the backtest's, exactly.
    const increment = (symbol: string) => config.products?.[symbol]?.baseIncrement as number;
    const key = (t: Pick<Trade, 'symbol' | 'entryTime' | 'exitTime' | 'exitReason'>) =>
      `${t.symbol} ${t.entryTime} ${t.exitTime} ${t.exitReason}`;
    let trades = 0;
    const entryDays: string[] = [];
    for (const sleeve of backtest.sleeves) {
      const expected = sleeve.trades.map((t) => ({
        ...t,
        qty: t.qty,
        entryTime: day(t.entryTime),
        exitTime: day(t.exitTime),
      }));
      const replayed = doc.sleeves.find((s) => s.id === sleeve.id)?.trades ?? [];
      // The same trades: product, entry and exit days, exit reason.
      expect(replayed.map(key).sort(), sleeve.id).toEqual(expected.map(key).sort());
      for (const want of expected) {
        const got = replayed.find((x) => x.symbol === want.symbol && x.entryTime === want.entryTime) as Trade;
        // The quantity: the backtest's, exactly, and on the product's increment.
        expect(got.qty, `${sleeve.id} ${key(want)}`).toBe(want.qty);
        expect(floorToIncrement(want.qty, increment(want.symbol)), `${sleeve.id} ${key(want)}`).toBe(
          want.qty,
        );
        // Market IOC entries and exits: the day's open, slipped, as the backtest fills them.
        expect(got.entryPrice).toBeCloseTo(want.entryPrice, 6);
        // Stop-loss exits too: the backtest's stop of a product is in whole cents, rounded away from
        // the market, as the stop-limit is sent (`productStop`), so the triggered fill is the same.
        if (want.exitPrice !== null) {
          expect(got.exitPrice).toBeCloseTo(want.exitPrice, 6);
        }
        entryDays.push(want.entryTime as string);
      }
      trades += expected.length;
    }
    // SOL-USD trades on its 0.001 increment in both.
    const first = (id: string, symbol: string) =>
      doc.sleeves.find((s) => s.id === id)?.trades.find((t) => t.symbol === symbol)?.qty;
    const firstBacktest = (id: string, symbol: string) =>
      backtest.sleeves.find((s) => s.id === id)?.trades.find((t) => t.symbol === symbol)?.qty as number;
    expect(first('breakout', 'SOL-USD')).toBe(firstBacktest('breakout', 'SOL-USD'));
    expect(first('trend', 'BTC-USD')).toBe(firstBacktest('trend', 'BTC-USD'));
    expect(first('bollinger', 'ETH-USD')).toBe(firstBacktest('bollinger', 'ETH-USD'));
    expect(trades).toBeGreaterThanOrEqual(8);
    for (const id of ['trend', 'breakout', 'bollinger'])
      expect(doc.sleeves.find((s) => s.id === id)?.trades.length, id).toBeGreaterThan(0);
    // Weekends trade like any day: a Saturday and a Sunday entry.
    const weekdays = entryDays.map((d) => new Date(`${d}T00:00:00Z`).getUTCDay());
    expect(weekdays).toContain(6);
    expect(weekdays).toContain(0);
    expect(
      backtest.sleeves.flatMap((s) => s.trades).filter((t) => t.exitReason === 'stop-loss').length,
    ).toBeGreaterThanOrEqual(3);
    // 2025-09-26: one BTC-USD order, bollinger's entry less trend's exit (crossed internally).
    const net = doc.orders.filter((o) => /-BTC-USD-20250926-(entry|exit)$/.test(o.clientOrderId));
    expect(net).toHaveLength(1);
    expect(net[0]?.side).toBe('buy');

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
    expect(
      new Set(doc.orders.filter((o) => /-stop(-\d+)?$/.test(o.clientOrderId)).map((o) => o.type)),
    ).toEqual(new Set(['stop_limit']));
    // Every UTC day of the span was a session, weekends included, reconciled with no difference.
    expect(doc.equity).toHaveLength(61);
    expect(doc.reconciliation.mismatches).toBe(0);
  }, 600_000);

  it('places no extra order when every crypto handler runs twice and execute-orders runs 5 at once', async () => {
    // 2025-09-24..2025-10-03: breakout's SOL-USD stop (09-25), the netted BTC-USD order (09-26),
    // bollinger's exits and trend's BTC-USD entry (10-02), weekends included.
    const run = (extra: Partial<Parameters<typeof replay>[0]>) =>
      replay({
        from: '2025-09-24',
        to: '2025-10-03',
        configPath,
        dataDir: 'data/crypto',
        withCache: true,
        log: () => {},
        logSink: () => {},
        ...extra,
      });
    const once = await run({});
    const again = await run({ repeat: 2, executeConcurrency: 5 });
    const ids = (doc: Awaited<ReturnType<typeof replay>>) => doc.orders.map((o) => o.clientOrderId).sort();
    expect(once.orders.length).toBeGreaterThan(3);
    expect(ids(again)).toEqual(ids(once));
    expect(new Set(ids(again)).size).toBe(again.orders.length);
    const fills = (doc: Awaited<ReturnType<typeof replay>>) =>
      doc.fills.map((f) => [f.clientOrderId, f.qty, f.price, f.time]).sort();
    expect(fills(again)).toEqual(fills(once));
    expect(again.reconciliation.mismatches).toBe(0);
  }, 600_000);

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
