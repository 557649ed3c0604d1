import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { walkForwardCommand } from '../../shared/cli/research.js';
import { capture } from '../helpers/capture.js';

const dir = mkdtempSync(join(tmpdir(), 'qs-pipeline-sleeves-'));
const configPath = join(dir, 'sleeves.yaml');
const base = readFileSync('config/multi-strategy.yaml', 'utf8');
const sleeves = `sleeves:
  - id: trend
    strategy: ma-crossover
    symbols: [SPY, QQQ]
    params: { fast: 10, slow: 30, atrStop: 2 }
    optimize:
      space:
        grid:
          fast: [5, 10]
          slow: [30, 60]
  - id: rsi
    strategy: rsi-reversion
    symbols: [SPY]
    params: { period: 14, entry: 30, exit: 50 }
    optimize:
      space:
        grid:
          entry: [25, 30]
          exit: [50, 60]

`;
writeFileSync(
  configPath,
  base
    .replace('dir: data ', `dir: ${resolve('data')} `)
    .replace(base.slice(base.indexOf('sleeves:\n'), base.indexOf('# How the capital is split')), sleeves),
);

async function walkForwardJson(extra: string[]) {
  const stdout = capture();
  const stderr = capture();
  await walkForwardCommand(['--config', configPath, '--format', 'json', ...extra], {
    stdout: stdout.stream,
    stderr: stderr.stream,
  });
  return JSON.parse(stdout.text());
}

describe('the walk-forward pipeline on a sleeves config, run locally on the synthesized state machine', () => {
  it('gives exactly the in-process result: the documents differ only in engine, generatedAt and elapsedMs', async () => {
    const inProcess = await walkForwardJson(['--workers', '0']);
    const local = await walkForwardJson(['--engine', 'stepfunctions', '--state-dir', join(dir, 'state')]);
    expect(local.engine).toBe('stepfunctions');
    expect(inProcess.engine).toBe('in-process');
    const strip = ({ engine, generatedAt, elapsedMs, ...rest }: Record<string, unknown>) => rest;
    expect(strip(local)).toEqual(strip(inProcess));
    expect(local.sleeves.map((s: { id: string }) => s.id)).toEqual(['trend', 'rsi']);
    expect(local.sleeves[0].windows.length).toBeGreaterThan(4);
    expect(local.account.outOfSample.equity.length).toBeGreaterThan(500);
  }, 240_000);
});
