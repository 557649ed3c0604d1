import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { backtestCommand } from '../../../shared/cli/backtest.js';
import { optimizeCommand } from '../../../shared/cli/research.js';
import { capture } from '../../helpers/capture.js';

const base = readFileSync('config/multi-strategy.yaml', 'utf8');
const sleeves = `sleeves:
  - id: trend
    strategy: ma-crossover
    symbols: [SPY, QQQ]
    params: { fast: 10, slow: 30, atrStop: 2 }
    optimize: { space: { grid: { fast: [5, 10], slow: [30, 60] } } }
  - id: boll
    strategy: bollinger
    symbols: [SPY]
    params: { period: 20, k: 2 }
    weight: 1
`;
const dir = mkdtempSync(join(tmpdir(), 'qs-sleeves-cli-'));
function write(name: string, block: string): string {
  const path = join(dir, name);
  writeFileSync(
    path,
    base
      .replace('dir: data ', `dir: ${resolve('data')} `)
      .replace(
        base.slice(base.indexOf('sleeves:\n'), base.indexOf('# How the capital is split')),
        `${block}\n`,
      ),
  );
  return path;
}

async function run(command: typeof backtestCommand | typeof optimizeCommand, argv: string[]) {
  const stdout = capture();
  const stderr = capture();
  const code = await command(argv, { stdout: stdout.stream, stderr: stderr.stream });
  return { code, stdout: stdout.text(), stderr: stderr.text() };
}

describe('the CLI on a sleeves config', () => {
  it('backtest: the table has one row per sleeve and the account; the JSON has sleeves, allocation and correlation', async () => {
    const path = write('ok.yaml', sleeves.replace('    weight: 1\n', ''));
    const table = await run(backtestCommand, ['--config', path]);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^trend\s+ma-crossover\s+SPY,QQQ/m);
    expect(table.stdout).toMatch(/^boll\s+bollinger\s+SPY/m);
    expect(table.stdout).toMatch(/^ACCOUNT\s+SPY,QQQ,AAPL,MSFT/m);
    const doc = JSON.parse((await run(backtestCommand, ['--config', path, '--format', 'json'])).stdout);
    expect(doc.sleeves.map((s: { id: string; strategy: string }) => [s.id, s.strategy])).toEqual([
      ['trend', 'ma-crossover'],
      ['boll', 'bollinger'],
    ]);
    for (const s of doc.sleeves)
      expect(Object.keys(s)).toEqual(expect.arrayContaining(['metrics', 'trades', 'equity']));
    expect(doc.trades.every((t: { sleeve: string }) => ['trend', 'boll'].includes(t.sleeve))).toBe(true);
    expect(doc.allocation.weights.length).toBe(doc.equity.length);
    expect(doc.allocation.events[0]).toMatchObject({ reason: 'initial' });
    expect(doc.correlation.sleeves).toEqual(['trend', 'boll']);
    const cents = doc.sleeves.reduce((a: number, s: { netPnl: number }) => a + Math.round(s.netPnl * 100), 0);
    expect(cents).toBe(Math.round(doc.metrics.equityFinal * 100) - 100_000_00);
  });

  it('optimize: each sleeve ranked over its own grid (a sleeve without one: its parameters alone)', async () => {
    const path = write('opt.yaml', sleeves.replace('    weight: 1\n', ''));
    const doc = JSON.parse(
      (await run(optimizeCommand, ['--config', path, '--format', 'json', '--workers', '0'])).stdout,
    );
    expect(doc.sleeves.map((s: { id: string; trials: number }) => [s.id, s.trials])).toEqual([
      ['trend', 4],
      ['boll', 1],
    ]);
    expect(doc.sleeves[0].ranked).toHaveLength(4);
  });

  it('a bad sleeves config is one error line naming the sleeve', async () => {
    const path = write('bad.yaml', sleeves);
    await expect(run(backtestCommand, ['--config', path])).rejects.toThrow(
      /bad\.yaml: sleeves: give a weight to every sleeve or to none/,
    );
  });
});
