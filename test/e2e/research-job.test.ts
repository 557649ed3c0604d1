import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { researchCommand } from '../../shared/cli/research-job.js';

function capture() {
  let text = '';
  const stream = new Writable({
    write(chunk, _encoding, done) {
      text += String(chunk);
      done();
    },
  });
  return { stream, text: () => text };
}

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
});
