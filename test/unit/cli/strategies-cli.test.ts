import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { backtestCommand } from '../../../shared/cli/backtest.js';
import { strategiesCommand } from '../../../shared/cli/strategies.js';
import { capture } from '../../helpers/capture.js';

type Command = (
  argv: readonly string[],
  io: { stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream },
) => number | Promise<number>;

async function run(command: Command, argv: string[]) {
  const stdout = capture();
  const stderr = capture();
  const code = await command(argv, { stdout: stdout.stream, stderr: stderr.stream });
  return { code, stdout: stdout.text(), stderr: stderr.text() };
}

const names = ['ma-crossover', 'rsi-reversion', 'breakout', 'bollinger', 'volume-profile'];

describe('quantshift strategies', () => {
  it('--format json prints one array of { name, description, params, directions }', async () => {
    const { code, stdout } = await run(strategiesCommand, ['--format', 'json']);
    expect(code).toBe(0);
    const list = JSON.parse(stdout) as { name: string; params: { name: string }[]; directions: string[] }[];
    expect(list.map((s) => s.name)).toEqual(names);
    for (const s of list) {
      expect(Object.keys(s)).toEqual(['name', 'description', 'params', 'directions']);
      expect(s.directions).toEqual(['long-only', 'long-short']);
    }
    expect(list[4]?.params.map((p) => p.name)).toEqual([
      'lookback',
      'bins',
      'valueArea',
      'atrStop',
      'atrPeriod',
    ]);
  });

  it('prints a table per strategy with every parameter, its default and allowed values', async () => {
    const { code, stdout } = await run(strategiesCommand, []);
    expect(code).toBe(0);
    for (const name of names) expect(stdout).toContain(`${name}: `);
    expect(stdout).toMatch(/^entry +number +30 +> 0, <= 50 /m);
    expect(stdout).toMatch(/^ma +enum +sma +sma \| ema /m);
    expect(stdout).not.toMatch(/ $/m);
  });

  it('refuses a bad format', async () => {
    await expect(run(strategiesCommand, ['--format', 'yaml'])).rejects.toThrow(/--format yaml/);
  });
});

describe('quantshift backtest runs every strategy ad hoc, like the crossover', () => {
  const adHoc = (strategy: string, params: string[]) => [
    '--data',
    'test/fixtures/data/GOOG.csv',
    '--symbol',
    'GOOG',
    '--strategy',
    strategy,
    ...params.flatMap((p) => ['--param', p]),
    '--direction',
    'long-only',
    '--sizing',
    'all-in',
    '--cash',
    '10000',
    '--commission',
    '0',
    '--slippage-bps',
    '0',
    '--end-of-data',
    'close',
    '--format',
    'json',
  ];
  const cases: [string, string[]][] = [
    ['rsi-reversion', ['period=14', 'entry=30', 'exit=50']],
    ['breakout', ['entry=20', 'exit=10']],
    ['bollinger', ['period=20', 'k=2']],
    ['volume-profile', ['lookback=20', 'bins=24', 'valueArea=0.7']],
  ];
  it.each(cases)('%s', async (strategy, params) => {
    const explicit = await run(backtestCommand, adHoc(strategy, params));
    expect(explicit.code).toBe(0);
    expect(explicit.stderr).toContain(`backtest: ${strategy} on GOOG`);
    const doc = JSON.parse(explicit.stdout);
    expect(doc.metrics.trades).toBeGreaterThan(5);
    expect(doc.trades.every((t: { direction: string }) => t.direction === 'long')).toBe(true);
    // the defaults are the documented ones
    const {
      generatedAt: _g,
      elapsedMs: _e,
      ...withDefaults
    } = JSON.parse((await run(backtestCommand, adHoc(strategy, []))).stdout);
    const { generatedAt: _g2, elapsedMs: _e2, ...explicitDoc } = doc;
    expect(withDefaults).toEqual(explicitDoc);
  });

  it('the command of the issue, in a child process, prints exactly one document', async () => {
    const result = spawnSync(
      process.execPath,
      ['--import', 'tsx', 'bin/quantshift.ts', 'backtest', ...adHoc('rsi-reversion', cases[0]?.[1] ?? [])],
      { encoding: 'utf8' },
    );
    expect(result.status).toBe(0);
    const doc = JSON.parse(result.stdout);
    expect(doc.symbols).toEqual(['GOOG']);
    expect(doc.metrics.trades).toBe(12);
    const bad = spawnSync(
      process.execPath,
      ['--import', 'tsx', 'bin/quantshift.ts', 'backtest', ...adHoc('rsi-reversion', ['fast=3'])],
      { encoding: 'utf8' },
    );
    expect(bad.status).not.toBe(0);
    expect(bad.stdout).toBe('');
    expect(bad.stderr).toBe(
      'error: --param fast: not a parameter of rsi-reversion (its parameters: period, entry, exit, atrStop, atrPeriod)\n',
    );
  });
});
