import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { backtestCommand, backtestFlags, parseCommission } from '../../../shared/cli/backtest.js';
import { runCli } from '../../../shared/cli/main.js';
import { capture } from '../../helpers/capture.js';

async function run(argv: string[]) {
  const stdout = capture();
  const stderr = capture();
  const code = await backtestCommand(argv, { stdout: stdout.stream, stderr: stderr.stream });
  return { code, stdout: stdout.text(), stderr: stderr.text() };
}

/** Runs the CLI's entry (what bin/quantshift.ts runs) in-process: exit code, stdout and stderr. */
async function cli(args: string[]) {
  const stdout = capture();
  const stderr = capture();
  const code = await runCli(args, { stdout: stdout.stream, stderr: stderr.stream });
  return { code, stdout: stdout.text(), stderr: stderr.text() };
}

describe('quantshift backtest', () => {
  it('--help documents every flag', async () => {
    const { code, stdout } = await run(['--help']);
    expect(code).toBe(0);
    for (const name of Object.keys(backtestFlags)) expect(stdout).toContain(`--${name}`);
  });

  it('--format json prints exactly one document with the documented fields', async () => {
    const { stdout, stderr } = await run([
      '--data',
      'data/SPY.csv',
      '--param',
      'fast=10',
      '--param',
      'slow=30',
      '--sizing',
      'all-in',
      '--format',
      'json',
    ]);
    const lines = stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const doc = JSON.parse(lines[0] as string);
    expect(doc).toMatchObject({
      command: 'backtest',
      generatedAt: expect.stringMatching(/^\d{4}-\d{2}-\d{2}T.*Z$/),
      elapsedMs: expect.any(Number),
      configHash: expect.stringMatching(/^[0-9a-f]{64}$/),
      gitCommit: expect.any(String),
      params: { fast: 10, slow: 30, ma: 'sma' },
    });
    expect(Object.keys(doc.metrics)).toEqual(
      expect.arrayContaining([
        'trades',
        'returnPct',
        'cagrPct',
        'equityFinal',
        'equityPeak',
        'maxDrawdownPct',
        'maxDrawdownDays',
        'winRatePct',
        'profitFactor',
        'sharpe',
        'sortino',
        'calmar',
        'exposurePct',
        'buyHoldReturnPct',
        'kelly',
      ]),
    );
    expect(doc.trades[0]).toEqual({
      symbol: 'SPY',
      direction: 'long',
      qty: expect.any(Number),
      entryTime: expect.stringMatching(/^\d{4}-\d{2}-\d{2}$/),
      entryPrice: expect.any(Number),
      exitTime: expect.stringMatching(/^\d{4}-\d{2}-\d{2}$/),
      exitPrice: expect.any(Number),
      pnl: expect.any(Number),
      commission: 0,
      exitReason: 'exit',
    });
    expect(doc.equity[0]).toEqual({ time: '2021-01-11', equity: 100000 });
    expect(doc.criteria.map((c: { name: string }) => c.name)).toEqual([
      'sharpe',
      'maxDrawdownPct',
      'winRatePct',
      'profitFactor',
      'annualReturnPct',
    ]);
    expect(doc.metrics.trades).toBe(
      doc.trades.filter((t: { exitTime: string | null }) => t.exitTime !== null).length,
    );
    expect(stderr).toContain('backtest:');
  });

  it('an open position at the end (hold) is listed last with null exit', async () => {
    const { stdout } = await run([
      '--data',
      'data/AAPL.csv',
      '--param',
      'fast=1',
      '--param',
      'slow=2',
      '--to',
      '2021-03-01',
      '--end-of-data',
      'hold',
      '--format',
      'json',
    ]);
    const doc = JSON.parse(stdout);
    const open = doc.trades.filter((t: { exitTime: string | null }) => t.exitTime === null);
    if (open.length > 0) expect(doc.trades.at(-1).exitTime).toBeNull();
    expect(doc.to).toBe('2021-03-01');
  });

  it('ad hoc flags override the config, and --from keeps earlier bars for warm-up', async () => {
    const { stdout } = await run([
      '--config',
      'config/equity-strategy.yaml',
      '--symbol',
      'SPY',
      '--from',
      '2022-01-03',
      '--slippage-bps',
      '0',
      '--format',
      'json',
    ]);
    const doc = JSON.parse(stdout);
    expect(doc.symbols).toEqual(['SPY']);
    expect(doc.from).toBe('2022-01-03');
    // warm-up bars from 2021 let the 30-bar average decide on the first traded day already
    expect(doc.equity[0].time).toBe('2022-01-03');
  });

  it('--config applies the risk rules and reports them; --no-risk turns them off', async () => {
    const doc = JSON.parse(
      (await run(['--config', 'config/equity-strategy.yaml', '--format', 'json'])).stdout,
    );
    expect(Object.keys(doc.risk)).toEqual(
      expect.arrayContaining(['peakHeatPct', 'breakerTrips', 'refusedEntries', 'reducedEntries']),
    );
    expect(doc.risk.peakHeatPct).toBeGreaterThan(0);
    expect(doc.risk.peakHeatPct).toBeLessThanOrEqual(10);
    expect(doc.risk.reducedEntries.length).toBeGreaterThan(0);
    expect(doc.risk.heat).toHaveLength(doc.equity.length);
    const off = JSON.parse(
      (await run(['--config', 'config/equity-strategy.yaml', '--no-risk', '--format', 'json'])).stdout,
    );
    expect(off.risk).toBeUndefined();
    expect(off.metrics.equityFinal).not.toBe(doc.metrics.equityFinal);
    const adHoc = JSON.parse((await run(['--data', 'data/SPY.csv', '--format', 'json'])).stdout);
    expect(adHoc.risk).toBeUndefined();
    const adHocRisk = JSON.parse(
      (await run(['--data', 'data/SPY.csv', '--risk', '--format', 'json'])).stdout,
    );
    expect(adHocRisk.risk.peakHeatPct).toBeGreaterThan(0);
  });

  it('--out writes backtest.json', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'qs-'));
    await run(['--data', 'data/QQQ.csv', '--out', dir, '--format', 'json']);
    expect(JSON.parse(readFileSync(join(dir, 'backtest.json'), 'utf8')).symbols).toEqual(['QQQ']);
  });

  it('the table shows PASS/FAIL per criterion and the decision', async () => {
    const { stdout } = await run(['--config', 'config/equity-strategy.yaml']);
    expect(stdout).toMatch(/sharpe\s+> 1.5\s+[-\d.]+\s+(PASS|FAIL)/);
    expect(stdout).toMatch(/Decision: (PROCEED|REFINE)/);
  });
});

describe('parseCommission', () => {
  it('adds up the parts', async () => {
    expect(parseCommission('0.005/share,min=1')).toEqual({
      perShare: 0.005,
      perOrder: 0,
      percent: 0,
      minimum: 1,
    });
    expect(parseCommission('1/order')).toEqual({ perShare: 0, perOrder: 1, percent: 0, minimum: 0 });
    expect(parseCommission('0.1%')).toEqual({ perShare: 0, perOrder: 0, percent: 0.001, minimum: 0 });
  });
  it('refuses what it cannot read', async () => {
    expect(() => parseCommission('five')).toThrow(/--commission five/);
  });
});

describe('errors are one clear line and a non-zero exit, never a stack trace', () => {
  const dir = mkdtempSync(join(tmpdir(), 'qs-bad-'));
  const badCsv = join(dir, 'BAD.csv');
  writeFileSync(
    badCsv,
    'Date,Open,High,Low,Close,Volume\n2024-01-02,10,11,9,10,100\n2024-01-03,10,9,11,10,100\n',
  );
  const badConfig = join(dir, 'bad.yaml');
  writeFileSync(
    badConfig,
    readFileSync('config/equity-strategy.yaml', 'utf8').replace('maxDrawdown: 0.15', 'maxDrawdown: 15'),
  );
  const cryptoConfig = join(dir, 'crypto.yaml');
  writeFileSync(
    cryptoConfig,
    readFileSync('config/equity-strategy.yaml', 'utf8').replace('[SPY, QQQ, AAPL, MSFT]', '[SPY, BTC/USD]'),
  );

  const cases: [string, string[], RegExp][] = [
    ['a bad CSV row', ['backtest', '--data', badCsv], /BAD\.csv:3: .*high/],
    ['a bad config key', ['backtest', '--config', badConfig], /bad\.yaml: risk\.maxDrawdown: /],
    [
      'a crypto symbol',
      ['backtest', '--config', cryptoConfig],
      /watchlist\.1: crypto symbols are not allowed/,
    ],
    ['an unknown flag', ['backtest', '--bogus'], /backtest: unknown flag --bogus \(see quantshift/],
    ['a bad sizing', ['backtest', '--data', 'data/SPY.csv', '--sizing', 'half'], /--sizing half/],
    [
      'a bad number',
      ['backtest', '--data', 'data/SPY.csv', '--cash', 'lots'],
      /--cash lots: expected a number/,
    ],
    [
      'a bad param',
      ['backtest', '--data', 'data/SPY.csv', '--param', 'fast=50', '--param', 'slow=20'],
      /fast must be less than slow/,
    ],
    ['a missing file', ['backtest', '--data', 'data/NOPE.csv'], /--data data\/NOPE\.csv: no such file/],
    ['an unknown command', ['backtset'], /unknown command "backtset"/],
  ];
  it.each(cases)('%s', async (_name, args, message) => {
    const { code, stdout, stderr } = await cli(args);
    expect(code).not.toBe(0);
    expect(stdout).toBe('');
    const lines = stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^error: /);
    expect(lines[0]).toMatch(message);
  });

  it('the bin shim runs the CLI: one error line on stderr and exit 2 for a usage error', async () => {
    const result = spawnSync(process.execPath, ['bin/quantshift.js', 'backtest', '--bogus'], {
      encoding: 'utf8',
    });
    expect(result.status).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toBe('error: backtest: unknown flag --bogus (see quantshift backtest --help)\n');
  });
});
