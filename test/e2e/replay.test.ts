import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadDataDir } from '../../shared/adapters/fs/bars.js';
import { LOCAL_KEYS, LOCAL_UPSTASH_TOKEN } from '../../shared/adapters/local/live-stack.js';
import { buildBacktestJob } from '../../shared/cli/backtest.js';
import { replay, replayCommand } from '../../shared/cli/replay.js';
import { runBacktest } from '../../shared/core/backtest/engine.js';
import { parseConfig } from '../../shared/core/config/schema.js';
import { capture } from '../helpers/capture.js';

// The config exactly as shipped (5 bps slippage, which the local paper broker applies to its fills
// as the backtest does). Its lookback (730 days) reaches the first bar of the bundled data over the
// replayed span, so the live indicators see exactly the bars the backtest sees.
const configPath = 'config/equity-strategy.yaml';
const configText = readFileSync(configPath, 'utf8');

const logs: string[] = [];
const run = (from: string, to: string, extra: Partial<Parameters<typeof replay>[0]> = {}) =>
  replay({
    from,
    to,
    configPath,
    dataDir: 'data',
    withCache: true,
    log: (line) => logs.push(line),
    // The handlers' own logs (Powertools JSON): kept for the secrets check, not printed.
    logSink: (text) => logs.push(text),
    ...extra,
  });

const fills = (doc: Awaited<ReturnType<typeof replay>>) =>
  doc.fills.map((f) => ({
    symbol: f.symbol,
    side: f.side,
    qty: f.qty,
    date: f.time.slice(0, 10),
    clientOrderId: f.clientOrderId,
  }));

/** The parity run, shared: the duplicate and fault runs compare their first weeks with it. */
let parityRun: ReturnType<typeof run> | undefined;
const parity = () => {
  parityRun ??= run('2021-03-15', '2021-06-30');
  return parityRun;
};

/** The part of a run up to the end of `day`: orders submitted and fills made by then. */
const upTo = (doc: Awaited<ReturnType<typeof replay>>, day: string) => ({
  ...doc,
  orders: doc.orders.filter((o) => o.submittedAt.slice(0, 10) <= day),
  fills: doc.fills.filter((f) => f.time.slice(0, 10) <= day),
});

describe('replay: the live functions day by day against the local stack', () => {
  it('places the orders the backtest trades, for the shipped config with its slippage (parity)', async () => {
    const doc = await parity();
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
    const dateOf = (t: number) => new Date(t).toISOString().slice(0, 10);
    const expected = backtest.trades
      .flatMap((t) => [
        { symbol: t.symbol, side: 'buy', qty: t.qty, date: dateOf(t.entryTime) },
        ...(t.exitTime === null
          ? []
          : [{ symbol: t.symbol, side: 'sell', qty: t.qty, date: dateOf(t.exitTime) }]),
      ])
      .sort((a, b) => `${a.date}${a.symbol}${a.side}`.localeCompare(`${b.date}${b.symbol}${b.side}`));
    const placed = fills(doc)
      .map(({ clientOrderId: _, ...f }) => f)
      .sort((a, b) => `${a.date}${a.symbol}${a.side}`.localeCompare(`${b.date}${b.symbol}${b.side}`));
    expect(config.costs.slippageBps).toBe(5);
    expect(expected.length).toBeGreaterThan(8);
    expect(placed).toEqual(expected);
    // Sized at the close alike, filled alike: the entries' prices are the backtest's slipped opens.
    const entryPrice = (symbol: string, date: string) =>
      doc.fills.find((f) => f.symbol === symbol && f.side === 'buy' && f.time.startsWith(date))?.price;
    for (const t of backtest.trades)
      expect(entryPrice(t.symbol, dateOf(t.entryTime))).toBeCloseTo(t.entryPrice, 9);
    expect(doc.equity.length).toBeGreaterThan(60);
    // Every end-of-day reconciled the broker with the sleeve: no difference over the span.
    expect(doc.reconciliation.mismatches).toBe(0);
    expect(doc.reconciliation.days).toHaveLength(doc.equity.length);
  }, 180_000);

  it('places no extra order when every handler runs twice and execute-orders runs 10 at once', async () => {
    const once = upTo(await parity(), '2021-04-09');
    const twice = await run('2021-03-15', '2021-04-09', { repeat: 2, executeConcurrency: 10 });
    expect(twice.orders.map((o) => o.clientOrderId)).toEqual(once.orders.map((o) => o.clientOrderId));
    expect(fills(twice)).toEqual(fills(once));
    expect(new Set(twice.orders.map((o) => o.clientOrderId)).size).toBe(twice.orders.length);
  }, 180_000);

  it('places every order exactly once under broker faults (429, 500, dropped connections)', async () => {
    // Without the cache and under faults, the first four weeks place what the parity run placed.
    const clean = upTo(await parity(), '2021-04-09');
    const faulty = await run('2021-03-15', '2021-04-09', {
      withCache: false,
      faults: [
        { kind: 'status', status: 429, retryAfterSeconds: 0, route: 'GET /v2/account', times: 2 },
        { kind: 'status', status: 500, route: 'GET /v2/positions', times: 1 },
        { kind: 'drop', when: 'after-handling', route: 'POST /v2/orders', times: 3 },
      ],
    });
    expect(faulty.orders.map((o) => [o.clientOrderId, o.qty])).toEqual(
      clean.orders.map((o) => [o.clientOrderId, o.qty]),
    );
    expect(fills(faulty)).toEqual(fills(clean));
    expect(faulty.orders.length).toBeGreaterThan(3);
  }, 180_000);

  it("never logs a secret (the handlers' logs included)", () => {
    const all = logs.join('\n');
    expect(all).toContain('"level":"INFO"');
    for (const secret of [LOCAL_KEYS.secret, LOCAL_KEYS.keyId, LOCAL_UPSTASH_TOKEN])
      expect(all).not.toContain(secret);
  });

  it("quantshift replay shows a day-by-day summary by default, the handlers' logs with --verbose", async () => {
    const run = async (...extra: string[]) => {
      const stdout = capture();
      const stderr = capture();
      const args = ['--from', '2021-04-01', '--to', '2021-04-06', '--no-cache', ...extra];
      expect(await replayCommand(args, { stdout: stdout.stream, stderr: stderr.stream })).toBe(0);
      return { stdout: stdout.text(), stderr: stderr.text() };
    };
    const quiet = await run('--format', 'json');
    const lines = quiet.stderr.trim().split('\n');
    expect(lines).toEqual([
      expect.stringMatching(
        /^2021-04-01 {2}\(1\/4\) {2}equity [\d,]+\.\d\d {2}day P&L [-+][\d,]+\.\d\d {2}positions \d/,
      ),
      '2021-04-02  (2/4)  market closed',
      expect.stringMatching(/^2021-04-05 {2}\(3\/4\) {2}equity /),
      expect.stringMatching(/^2021-04-06 {2}\(4\/4\) {2}equity /),
    ]);
    const doc = JSON.parse(quiet.stdout);
    expect(doc).toMatchObject({
      command: 'replay',
      from: '2021-04-01',
      configHash: expect.stringMatching(/^[0-9a-f]{64}$/),
      params: expect.objectContaining({ fast: 10, slow: 30 }),
      generatedAt: expect.any(String),
      elapsedMs: expect.any(Number),
      gitCommit: expect.any(String),
    });
    const verbose = await run('--verbose');
    expect(verbose.stderr).toContain('"level":"INFO"');
    expect(verbose.stderr).not.toContain('(1/4)');
    expect(verbose.stdout).toMatch(/^Orders \(\d+\)/);
  }, 180_000);

  it("quantshift replay --verbose in a child process: the handlers' logs on its own stderr, no loop", () => {
    // On the command line io.stderr IS process.stderr, which the replay captures while the handlers
    // run: the handlers' logs must reach the real stderr once, not loop back into the capture.
    const result = spawnSync(
      process.execPath,
      [
        '--import',
        'tsx',
        'bin/quantshift.ts',
        'replay',
        '--from',
        '2021-04-05',
        '--to',
        '2021-04-06',
        '--verbose',
      ],
      { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } },
    );
    expect(result.stderr).not.toContain('Maximum call stack');
    expect(result.status).toBe(0);
    expect(result.stderr).toContain('"level":"INFO"');
    expect(result.stderr).toContain('replay: 2021-04-06 done');
    expect(result.stdout).toMatch(/^Orders \(\d+\)/);
  }, 120_000);
});
