import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadDataDir } from '../../shared/adapters/fs/bars.js';
import { replayCommand } from '../../shared/cli/replay.js';
import { runSleevesBacktest } from '../../shared/core/backtest/sleeves.js';
import { parseConfig } from '../../shared/core/config/schema.js';
import { buildSleevesJob } from '../../shared/research/sleeves.js';
import { capture } from '../helpers/capture.js';

// The multi-strategy config as shipped (five sleeves, risk-parity, monthly rebalance, 5 bps slippage).
// Its lookback (730 calendar days) reaches the first bundled bar (2021-01-11) over this span, so the
// live indicators and the symbols' rolling correlation see the bars the backtest sees. The replay
// starts the session after the backtest's first day: its first signal step decides at the
// backtest's first close (2021-03-12), which is also where both start the sleeves' allocation and
// their return history. 2021-03-15 to 2021-06-30 holds 25 sleeve trades (every sleeve but rsi
// trades), a scheduled rebalance at each month's first close, and on 2021-05-05 breakout's AAPL exit
// netted against bollinger's AAPL entry into one order.
const configPath = 'config/multi-strategy.yaml';
const FROM = '2021-03-15';
const TO = '2021-06-30';
const BACKTEST_FROM = '2021-03-12';

interface Trade {
  symbol: string;
  entryTime: string | null;
  qty: number;
  exitTime: string | null;
  exitReason: string | null;
  entryPrice: number;
}

describe('quantshift replay on a sleeves config', () => {
  it("the replay's trades per sleeve equal the multi-strategy backtest's over the same span; JSON with orders, fills, sleeves and a clean reconciliation", async () => {
    const stdout = capture();
    const stderr = capture();
    const args = ['--config', configPath, '--from', FROM, '--to', TO, '--format', 'json', '--no-cache'];
    expect(await replayCommand(args, { stdout: stdout.stream, stderr: stderr.stream })).toBe(0);
    const doc = JSON.parse(stdout.text()) as {
      orders: { clientOrderId: string; submittedAt: string; side: string; qty: number }[];
      fills: { clientOrderId: string | null }[];
      sleeves: { id: string; trades: Trade[] }[];
      reconciliation: { mismatches: number; days: { date: string; mismatches: unknown[] }[] };
      params: Record<string, unknown>;
    };
    expect(doc.reconciliation.mismatches).toBe(0);
    expect(doc.reconciliation.days.length).toBeGreaterThan(70);
    expect(
      doc.orders.every((o) =>
        /^qs-[0-9a-f]{8}-[A-Z]+-\d{8}-(entry|exit|stop|flatten)(-\d+)?$/.test(o.clientOrderId),
      ),
    ).toBe(true);
    expect(doc.fills.length).toBeGreaterThan(0);
    expect(doc.fills.every((f) => doc.orders.some((o) => o.clientOrderId === f.clientOrderId))).toBe(true);
    expect(Object.keys(doc.params)).toEqual(['trend', 'rsi', 'breakout', 'bollinger', 'volume']);

    const config = parseConfig(readFileSync(configPath, 'utf8'), configPath);
    const job = buildSleevesJob(
      { from: BACKTEST_FROM, to: TO, 'end-of-data': 'hold' },
      config,
      loadDataDir('data', config.watchlist),
    );
    const backtest = runSleevesBacktest({
      series: job.series,
      sleeves: job.sleeves,
      options: job.options,
      ...(job.allocation === undefined ? {} : { allocation: job.allocation }),
      ...(job.correlation === undefined ? {} : { correlation: job.correlation }),
    });
    const day = (t: number | null) => (t === null ? null : new Date(t).toISOString().slice(0, 10));
    const key = (t: Omit<Trade, 'entryPrice'>) =>
      `${t.symbol} ${t.entryTime} ${t.qty} ${t.exitTime} ${t.exitReason}`;
    let trades = 0;
    for (const sleeve of backtest.sleeves) {
      const expected = sleeve.trades
        .map((t) => key({ ...t, entryTime: day(t.entryTime), exitTime: day(t.exitTime) }))
        .sort();
      const replayed = (doc.sleeves.find((s) => s.id === sleeve.id)?.trades ?? []).map(key).sort();
      expect(replayed, sleeve.id).toEqual(expected);
      // Every leg at its net order's fill price: the backtest's slipped open.
      for (const t of sleeve.trades) {
        const live = doc.sleeves
          .find((s) => s.id === sleeve.id)
          ?.trades.find((x) => x.symbol === t.symbol && x.entryTime === day(t.entryTime));
        expect(live?.entryPrice).toBeCloseTo(t.entryPrice, 6);
      }
      trades += expected.length;
    }
    expect(trades).toBeGreaterThan(20);
    // 2021-05-05: one AAPL order, bollinger's entry less breakout's exit (crossed internally).
    const aapl = (id: string, when: 'entryTime' | 'exitTime') =>
      backtest.sleeves
        .find((s) => s.id === id)
        ?.trades.find((t) => t.symbol === 'AAPL' && day(t[when]) === '2021-05-05')?.qty as number;
    const net = doc.orders.filter((o) => /-AAPL-20210505-(entry|exit)$/.test(o.clientOrderId));
    expect(net).toHaveLength(1);
    expect(net[0]).toMatchObject({
      side: 'buy',
      qty: aapl('bollinger', 'entryTime') - aapl('breakout', 'exitTime'),
    });
  }, 400_000);
});
