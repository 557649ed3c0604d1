import { mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { researchCommand } from '../../shared/cli/research-job.js';
import { capture } from '../helpers/capture.js';
import { CHROMIUM, CHROMIUM_ARGS } from '../helpers/chromium.js';

describe('quantshift research on config/multi-strategy.yaml (npm start)', () => {
  it('walks each sleeve forward, backtests the account and draws the sleeves in a real headless Chromium', async () => {
    const out = mkdtempSync(join(tmpdir(), 'qs-sleeves-'));
    const stdout = capture();
    const stderr = capture();
    const code = await researchCommand(['--config', 'config/multi-strategy.yaml', '--out', out], {
      stdout: stdout.stream,
      stderr: stderr.stream,
    });
    expect(code).toBe(0);
    for (const id of ['trend', 'rsi', 'breakout', 'bollinger', 'volume', 'ACCOUNT']) {
      expect(stdout.text()).toContain(id);
    }
    expect(stdout.text()).toMatch(/Decision: (PROCEED to paper trading|REFINE \(failed: .+\))/);

    const backtest = JSON.parse(readFileSync(join(out, 'backtest.json'), 'utf8'));
    const wf = JSON.parse(readFileSync(join(out, 'walk-forward.json'), 'utf8'));
    // five long-only sleeves, every one trades, two or more share a symbol
    expect(backtest.sleeves.map((s: { strategy: string }) => s.strategy).sort()).toEqual([
      'bollinger',
      'breakout',
      'ma-crossover',
      'rsi-reversion',
      'volume-profile',
    ]);
    for (const s of backtest.sleeves) {
      expect(s.metrics.trades, s.id).toBeGreaterThan(0);
      expect(s.trades.every((t: { direction: string }) => t.direction === 'long')).toBe(true);
    }
    const bySymbol = new Map<string, Set<string>>();
    for (const t of backtest.trades)
      bySymbol.set(t.symbol, (bySymbol.get(t.symbol) ?? new Set()).add(t.sleeve));
    expect(Math.max(...[...bySymbol.values()].map((s) => s.size))).toBeGreaterThanOrEqual(2);
    // the sleeves' net P&L adds up to the account's, to the cent
    const sleevesCents = backtest.sleeves.reduce(
      (a: number, s: { netPnl: number }) => a + Math.round(s.netPnl * 100),
      0,
    );
    expect(sleevesCents).toBe(Math.round(backtest.metrics.equityFinal * 100) - 100_000_00);
    expect(backtest.allocation.events.length).toBeGreaterThan(10);
    expect(backtest.correlation.matrix.length).toBe(5);
    // each sleeve's grid has at least 40 combinations, searched on 504/126-bar rolling windows
    expect(wf.settings).toMatchObject({ mode: 'rolling', inSample: 504, outOfSample: 126 });
    for (const s of wf.sleeves) {
      expect(s.trials, s.id).toBeGreaterThanOrEqual(40);
      expect(s.windows.length).toBeGreaterThanOrEqual(5);
      expect(s.decision).toHaveProperty('proceed');
    }
    expect(wf.account.outOfSample.equity.length).toBeGreaterThan(500);
    expect(wf.decision).toHaveProperty('proceed');

    const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
    try {
      const url = pathToFileURL(join(out, 'research-report.html')).href;
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      const problems: string[] = [];
      const foreign: string[] = [];
      page.on('console', (m) => {
        if (m.type() === 'error') problems.push(m.text());
      });
      page.on('pageerror', (e) => problems.push(e.message));
      page.on('request', (r) => {
        if (r.url() !== url) foreign.push(r.url());
      });
      await page.goto(url, { waitUntil: 'load' });
      const charts = await page.$$eval('[data-chart]', (elements) =>
        elements.map((element) => {
          const box = element.querySelector('svg')?.getBoundingClientRect();
          return {
            name: element.getAttribute('data-chart'),
            width: box?.width ?? 0,
            marks: element.querySelectorAll('path, rect, line, text').length,
          };
        }),
      );
      const names = charts.map((c) => c.name);
      for (const name of [
        'equity',
        'sleeve-equity',
        'sleeve-drawdown',
        'sleeve-weights',
        'sleeve-correlation',
      ]) {
        expect(names).toContain(name);
      }
      for (const chart of charts) {
        expect(chart.width, `${chart.name} width`).toBeGreaterThan(0);
        expect(chart.marks, `${chart.name} marks`).toBeGreaterThan(10);
      }
      // the buy-and-hold benchmark line and the attribution table
      expect(await page.textContent('[data-chart="equity"]')).toContain('Buy & hold');
      const attribution = await page.$$eval('#sleeves table tbody tr', (rows) =>
        rows.map((r) => r.textContent ?? ''),
      );
      expect(attribution).toHaveLength(5);
      mkdirSync('reports', { recursive: true });
      await page.screenshot({ path: 'reports/report-sleeves-screenshot.png', fullPage: true });
      expect(problems).toEqual([]);
      expect(foreign).toEqual([]);
    } finally {
      await browser.close();
    }
  }, 180_000);
});
