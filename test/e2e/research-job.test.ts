import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { researchCommand } from '../../shared/cli/research-job.js';
import { testArtifactDir } from '../helpers/artifacts.js';
import { capture } from '../helpers/capture.js';

describe('quantshift research on the single-strategy config', () => {
  it('runs the backtest, the walk-forward and the report on the bundled data', async () => {
    const out = mkdtempSync(join(tmpdir(), 'qs-research-'));
    const stdout = capture();
    const stderr = capture();
    const code = await researchCommand(['--config', 'config/equity-strategy.yaml', '--out', out], {
      stdout: stdout.stream,
      stderr: stderr.stream,
    });
    expect(code).toBe(0);
    expect(stdout.text()).toMatch(/Decision: (PROCEED to paper trading|REFINE \(failed: .+\))/);
    expect(stdout.text()).toContain(`Report: `);
    expect(stdout.text()).toMatch(/PORTFOLIO/);
    expect(stderr.text()).toMatch(/research .*100%/);
    const html = readFileSync(join(out, 'research-report.html'), 'utf8');
    // equity, drawdown, four price charts, monthly returns, two walk-forward charts, parameters, heat
    expect(html.match(/data-chart="/g)?.length).toBe(11);
    expect(html).not.toMatch(/(src|href)="https?:/);
    const wf = JSON.parse(readFileSync(join(out, 'walk-forward.json'), 'utf8'));
    const backtest = JSON.parse(readFileSync(join(out, 'backtest.json'), 'utf8'));
    expect(html).toContain(wf.configHash);
    expect(wf.windows.length).toBeGreaterThan(4 * 3);
    expect(backtest.risk.peakHeatPct).toBeGreaterThan(0);
  });

  it('--format json prints exactly one document, with the provenance and the report path', async () => {
    const out = testArtifactDir('research-json');
    const stdout = capture();
    const args = ['--config', 'config/equity-strategy.yaml', '--symbol', 'SPY', '--out', out];
    const grid = ['--grid', 'fast=5:10:5', '--grid', 'slow=20:30:10', '--workers', '0'];
    try {
      const code = await researchCommand([...args, ...grid, '--format', 'json'], {
        stdout: stdout.stream,
        stderr: capture().stream,
      });
      expect(code).toBe(0);
      const lines = stdout.text().trim().split('\n');
      expect(lines).toHaveLength(1);
      const doc = JSON.parse(lines[0] as string);
      expect(doc).toMatchObject({
        command: 'research',
        generatedAt: expect.any(String),
        elapsedMs: expect.any(Number),
        configHash: expect.stringMatching(/^[0-9a-f]{64}$/),
        gitCommit: expect.any(String),
        params: expect.objectContaining({ fast: 10, slow: 30 }),
        decision: { proceed: expect.any(Boolean), failed: expect.any(Array) },
      });
      expect(doc.report).toMatch(/research-report\.html$/);
      expect(doc.backtest.configHash).toBe(doc.configHash);
      expect(doc.walkForward.params).toEqual(doc.params);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
