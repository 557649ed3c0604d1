import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../../../shared/cli/main.js';
import { strategyRegistry } from '../../../shared/core/strategies/index.js';
import { testArtifactDir } from '../../helpers/artifacts.js';
import { capture } from '../../helpers/capture.js';

/** The CLI's entry in-process, as bin/quantshift.ts runs it: exit code, stdout, stderr. */
async function cli(...args: string[]) {
  const stdout = capture();
  const stderr = capture();
  const code = await runCli(args, { stdout: stdout.stream, stderr: stderr.stream });
  return { code, stdout: stdout.text(), stderr: stderr.text() };
}

const dir = testArtifactDir('cli-usage');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('every command rejects a value it does not take, with exit 2 and one line', () => {
  const cases: [string, string[], RegExp][] = [
    [
      'research --format yaml',
      ['research', '--config', 'config/equity-strategy.yaml', '--format', 'yaml'],
      /--format yaml: expected one of table, json/,
    ],
    [
      'research --engine',
      ['research', '--config', 'config/equity-strategy.yaml', '--engine', 'foo'],
      /unknown flag --engine/,
    ],
    [
      'walk-forward --engine foo',
      ['walk-forward', '--config', 'config/equity-strategy.yaml', '--engine', 'foo'],
      /--engine foo: expected one of in-process, stepfunctions/,
    ],
    [
      'walk-forward --mode',
      ['walk-forward', '--config', 'config/equity-strategy.yaml', '--mode', 'sliding'],
      /--mode sliding: expected one of rolling, anchored/,
    ],
    [
      'backtest --direction',
      ['backtest', '--data', 'data/SPY.csv', '--direction', 'short'],
      /--direction short: expected one of long-only, long-short/,
    ],
    [
      'backtest --strategy',
      ['backtest', '--data', 'data/SPY.csv', '--strategy', 'nope'],
      /--strategy nope: expected one of ma-crossover/,
    ],
    [
      'replay --format',
      ['replay', '--from', '2021-03-15', '--to', '2021-03-16', '--format', 'csv'],
      /--format csv: expected one of table, json/,
    ],
    [
      'status --format',
      ['status', '--table', 't', '--format', 'table'],
      /--format table: expected one of text, json/,
    ],
    [
      'data fetch --feed',
      ['data', 'fetch', '--symbols', 'SPY', '--from', '2024-01-01', '--feed', 'otc'],
      /--feed otc: expected one of iex, sip/,
    ],
    [
      '--sizing half',
      ['backtest', '--data', 'data/SPY.csv', '--sizing', 'half'],
      /--sizing half: the value must be a positive number/,
    ],
    [
      'a negative number gets a range error',
      ['backtest', '--data', 'data/SPY.csv', '--slippage-bps', '-5'],
      /^error: --slippage-bps -5: expected a number >= 0 and <= 1000$/,
    ],
    [
      '--grid names the bad value',
      ['optimize', '--data', 'data/SPY.csv', '--grid', 'fast=5:x:5', '--grid', 'slow=20:40:10'],
      /--grid fast=5:x:5: to "x" is not a number/,
    ],
    [
      'an unknown flag, whole, with a suggestion',
      ['backtest', '--slipage-bps', '5'],
      /^error: backtest: unknown flag --slipage-bps; did you mean --slippage-bps\? \(see quantshift backtest --help\)$/,
    ],
    [
      'a flag without its value',
      ['backtest', '--data'],
      /^error: backtest: --data needs a value \(see quantshift backtest --help\)$/,
    ],
    [
      'walk-forward without a grid',
      ['walk-forward', '--data', 'data/SPY.csv'],
      /walk-forward needs a search grid/,
    ],
    [
      'reconcile --assign with --flatten',
      ['reconcile', '--assign', 'a', '--flatten', '--symbol', 'SPY', '--reason', 'r', '--table', 't'],
      /^error: reconcile: give --assign or --flatten, not both$/,
    ],
    [
      'reconcile --assign without a reason',
      ['reconcile', '--assign', 'a', '--symbol', 'SPY', '--table', 't'],
      /reconcile: --reason <text> is required/,
    ],
    [
      'reconcile --flatten without a symbol',
      ['reconcile', '--flatten', '--reason', 'r', '--table', 't'],
      /reconcile: --symbol <SYM> is required with --assign or --flatten/,
    ],
    [
      'reconcile --symbol without an action',
      ['reconcile', '--symbol', 'SPY', '--table', 't'],
      /reconcile: --symbol goes with --assign or --flatten/,
    ],
    [
      'reconcile --flatten --qty',
      ['reconcile', '--flatten', '--symbol', 'SPY', '--reason', 'r', '--qty', '3', '--table', 't'],
      /--qty and --stop go with --assign/,
    ],
    [
      'reconcile --stop -1',
      ['reconcile', '--assign', 'a', '--symbol', 'SPY', '--reason', 'r', '--stop', '-1', '--table', 't'],
      /^error: --stop -1: expected a number >= 0.01$/,
    ],
    [
      'reconcile without a table',
      ['reconcile', '--assign', 'a', '--symbol', 'SPY', '--reason', 'r'],
      /give --table <name> or set STATE_TABLE/,
    ],
    [
      'invoke an unknown function',
      ['invoke', 'nope', '--event', 'x.json'],
      /invoke: unknown function "nope" \(market-open-check, generate-signals/,
    ],
  ];
  it.each(cases)('%s', async (_name, args, message) => {
    const { code, stdout, stderr } = await cli(...args);
    expect(code).toBe(2);
    expect(stdout).toBe('');
    const lines = stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(message);
  });
});

describe('help', () => {
  it('the top-level help aligns every command name with a space before its summary', async () => {
    const { code, stdout } = await cli('--help');
    expect(code).toBe(0);
    expect(stdout).toMatch(/^ {2}walk-forward +walk-forward analysis/m);
    expect(stdout).not.toContain('walk-forwardwalk-forward');
    expect(stdout).toContain('--version');
  });

  it('--version prints the package version and the commit', async () => {
    const { code, stdout } = await cli('--version');
    expect(code).toBe(0);
    expect(stdout).toMatch(/^quantshift 0\.\d+\.\d+ \(commit ([0-9a-f]{12}|unknown)\)\n$/);
  });

  it('--out names the file each command writes', async () => {
    expect((await cli('backtest', '--help')).stdout).toMatch(/--out <dir> +also write backtest\.json/);
    expect((await cli('optimize', '--help')).stdout).toMatch(/--out <dir> +also write optimize\.json/);
    expect((await cli('walk-forward', '--help')).stdout).toMatch(
      /--out <dir> +also write walk-forward\.json/,
    );
  });

  it('local --help and pipeline --help show their help with exit 0', async () => {
    for (const command of ['local', 'pipeline']) {
      const { code, stdout } = await cli(command, '--help');
      expect(code).toBe(0);
      expect(stdout).toMatch(/^Usage: quantshift (local up|pipeline start)/);
    }
  });

  it('--strategy lists the registry and invoke lists its functions', async () => {
    const backtest = (await cli('backtest', '--help')).stdout;
    expect(backtest).toContain(`--strategy <${[...strategyRegistry.keys()].join('|')}>`);
    const invoke = await cli('invoke', '--help');
    expect(invoke.code).toBe(0);
    expect(invoke.stdout).toContain(
      'Functions: market-open-check, generate-signals, execute-orders, risk-check, end-of-day, kill-switch',
    );
    expect(invoke.stdout).toContain('--with-open-check');
  });
});

describe('data', () => {
  it('--from past the data names the data range', async () => {
    const { code, stderr } = await cli('backtest', '--data', 'data/SPY.csv', '--from', '2030-01-01');
    expect(code).toBe(1);
    expect(stderr).toMatch(
      /^error: no bars between --from 2030-01-01: the data \(SPY\) spans 2021-01-\d\d\.\.2026-01-\d\d\n$/,
    );
  });

  it('warns when the file name and --symbol disagree', async () => {
    const { code, stderr } = await cli(
      'backtest',
      '--data',
      'data/SPY.csv',
      '--symbol',
      'QQQ',
      '--format',
      'json',
    );
    expect(code).toBe(0);
    expect(stderr).toContain(
      'warning: --data data/SPY.csv is loaded as QQQ (--symbol), but its file name says SPY',
    );
    const same = await cli('backtest', '--data', 'data/SPY.csv', '--symbol', 'SPY', '--format', 'json');
    expect(same.stderr).not.toContain('warning');
  });

  it('--adjusted scales by Adj Close as the config data.adjusted does; --no-adjusted keeps the raw prices', async () => {
    mkdirSync(dir, { recursive: true });
    const file = join(dir, 'ADJ.csv');
    const rows = ['Date,Open,High,Low,Close,Adj Close,Volume'];
    for (let i = 0; i < 60; i++) {
      const day = new Date(Date.UTC(2024, 0, 1) + i * 86_400_000).toISOString().slice(0, 10);
      const close = 100 + 10 * Math.sin(i / 5);
      rows.push(`${day},${close},${close + 1},${close - 1},${close},${close / 2},1000`);
    }
    writeFileSync(file, `${rows.join('\n')}\n`);
    const run = async (...flags: string[]) =>
      JSON.parse((await cli('backtest', '--data', file, '--format', 'json', ...flags)).stdout);
    const raw = await run();
    const adjusted = await run('--adjusted');
    expect(adjusted.metrics.buyHoldReturnPct).toBeCloseTo(raw.metrics.buyHoldReturnPct, 6);
    expect(adjusted.trades[0].entryPrice).toBeCloseTo(raw.trades[0].entryPrice / 2, 6);
    expect((await run('--no-adjusted')).trades[0].entryPrice).toBe(raw.trades[0].entryPrice);
  });
});
