import { describe, expect, it } from 'vitest';
import { runCli } from '../../../shared/cli/main.js';
import { optimizeCommand, walkForwardCommand } from '../../../shared/cli/research.js';
import { capture } from '../../helpers/capture.js';

async function run(command: typeof optimizeCommand, argv: string[]) {
  const stdout = capture();
  const stderr = capture();
  const code = await command(argv, { stdout: stdout.stream, stderr: stderr.stream });
  return { code, stdout: stdout.text(), stderr: stderr.text() };
}

describe('quantshift walk-forward', () => {
  it('prints one JSON document with the documented fields', async () => {
    const { stdout } = await run(walkForwardCommand, [
      '--config',
      'config/equity-strategy.yaml',
      '--symbol',
      'SPY,QQQ',
      '--no-risk',
      '--grid',
      'fast=5:15:5',
      '--grid',
      'slow=20:60:20',
      '--workers',
      '0',
      '--format',
      'json',
    ]);
    const lines = stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const doc = JSON.parse(lines[0] as string);
    expect(doc.windows[0]).toEqual(
      expect.objectContaining({
        symbol: 'SPY',
        inSample: { from: expect.any(String), to: expect.any(String) },
        outOfSample: { from: expect.any(String), to: expect.any(String) },
        params: expect.objectContaining({ fast: expect.any(Number), slow: expect.any(Number) }),
        inSampleMetrics: expect.objectContaining({
          sharpe: expect.anything(),
          returnPct: expect.any(Number),
        }),
        outOfSampleMetrics: expect.objectContaining({
          maxDrawdownPct: expect.any(Number),
          trades: expect.any(Number),
        }),
      }),
    );
    expect(new Set(doc.windows.map((w: { symbol: string }) => w.symbol))).toEqual(
      new Set(['SPY', 'QQQ', 'PORTFOLIO']),
    );
    expect(doc.outOfSample.metrics).toEqual(
      expect.objectContaining({ returnPct: expect.any(Number), cagrPct: expect.anything() }),
    );
    expect(doc.outOfSample.equity[0]).toEqual({ time: expect.any(String), equity: expect.any(Number) });
    expect('efficiency' in doc).toBe(true);
    expect(doc.decision).toEqual({ proceed: expect.any(Boolean), failed: expect.any(Array) });
    expect(doc.trials).toBe(9);
    expect(doc.configHash).toMatch(/^[0-9a-f]{64}$/);
    expect(doc.gitCommit).toMatch(/^([0-9a-f]{40}|unknown)$/);
    expect(doc.engine).toBe('in-process');
    expect(doc.params).toMatchObject({ fast: 10, slow: 30, atrStop: 2 });
    expect(Date.parse(doc.generatedAt)).not.toBeNaN();
    expect(doc.elapsedMs).toBeGreaterThanOrEqual(0);
  });
});

describe('quantshift optimize', () => {
  it('ranks the grid and gives the objective surface', async () => {
    const { stdout } = await run(optimizeCommand, [
      '--data',
      'data/SPY.csv',
      '--grid',
      'fast=5:20:5',
      '--grid',
      'slow=30:90:30',
      '--constraint',
      'fast < slow',
      '--min',
      'trades=2',
      '--workers',
      '0',
      '--format',
      'json',
    ]);
    const doc = JSON.parse(stdout);
    expect(doc.trials).toBe(12);
    expect(doc.ranked).toHaveLength(12);
    const values = doc.ranked
      .map((r: { objective: number | null }) => r.objective)
      .filter((v: number | null) => v !== null);
    expect(values).toEqual([...values].sort((a: number, b: number) => b - a));
    expect(doc.surface.xName).toBe('fast');
    expect(doc.surface.cells).toHaveLength(12);
  });

  it('bad input gives one clear line, no output and exit 2', async () => {
    const stdout = capture();
    const stderr = capture();
    const args = ['optimize', '--data', 'data/SPY.csv', '--grid', 'fast=5:20', '--workers', '0'];
    const code = await runCli(args, { stdout: stdout.stream, stderr: stderr.stream });
    expect(code).toBe(2);
    expect(stdout.text()).toBe('');
    expect(stderr.text().trim().split('\n')).toHaveLength(1);
    expect(stderr.text()).toMatch(/^error: --grid/);
  });
});
