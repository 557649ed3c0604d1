import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backtestCommand } from '../../shared/cli/backtest.js';
import { renderResearchReport } from '../../shared/report/html.js';
import { TEST_RESULTS, testArtifactDir } from '../helpers/artifacts.js';
import { CHROMIUM, CHROMIUM_ARGS } from '../helpers/chromium.js';
import { buildRealisticReportInput } from './report-input.js';

/** Test artifacts go under the git-ignored test-results/, never into the checkout's reports/. */
const SCREENSHOT = join(TEST_RESULTS, 'report-screenshot.png');
const BACKTEST_SCREENSHOT = join(TEST_RESULTS, 'backtest-report-screenshot.png');

describe('the research report in a real headless Chromium', () => {
  let browser: Browser;
  let reportUrl: string;
  let dir: string;
  let backtestReport: string;

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(
        `${CHROMIUM} is missing: run scripts/ensure-debian-package.sh /usr/bin/chromium chromium`,
      );
    }
    const html = await renderResearchReport(buildRealisticReportInput());
    dir = testArtifactDir('report');
    const file = join(dir, 'report.html');
    writeFileSync(file, html);
    reportUrl = pathToFileURL(file).href;
    // The single-backtest report, as `quantshift backtest --report` writes it.
    backtestReport = join(dir, 'backtest.html');
    const code = await backtestCommand(
      ['--config', 'config/equity-strategy.yaml', '--symbol', 'QQQ,AAPL', '--report', backtestReport],
      {
        stdout: new Writable({ write: (_c, _e, done) => done() }),
        stderr: new Writable({ write: (_c, _e, done) => done() }),
      },
    );
    expect(code).toBe(0);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
  });

  afterAll(async () => {
    await browser?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('draws every chart, loads nothing, logs no error, and saves a full-page screenshot', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const problems: string[] = [];
    const foreignRequests: string[] = [];
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(`console: ${message.text()}`);
    });
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
    page.on('requestfailed', (request) =>
      problems.push(`request failed: ${request.url()} (${request.failure()?.errorText})`),
    );
    page.on('request', (request) => {
      if (request.url() !== reportUrl) foreignRequests.push(request.url());
    });

    await page.goto(reportUrl, { waitUntil: 'load' });

    const charts = await page.$$eval('[data-chart]', (elements) =>
      elements.map((element) => {
        const svg = element.querySelector('svg');
        const box = svg?.getBoundingClientRect();
        return {
          name: element.getAttribute('data-chart'),
          width: box?.width ?? 0,
          height: box?.height ?? 0,
          marks: svg?.querySelectorAll('path, rect, line, text').length ?? 0,
        };
      }),
    );
    expect(charts.map((c) => c.name)).toEqual([
      'equity',
      'drawdown',
      'price-SPY',
      'price-QQQ',
      'monthly-returns',
      'walk-forward-windows',
      'walk-forward-equity',
      'parameter-surface',
      'risk-heat',
    ]);
    for (const chart of charts) {
      expect(chart.width, `${chart.name} width`).toBeGreaterThan(0);
      expect(chart.height, `${chart.name} height`).toBeGreaterThan(0);
      expect(chart.marks, `${chart.name} marks`).toBeGreaterThan(10);
    }

    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    await page.close();

    expect(problems).toEqual([]);
    expect(foreignRequests).toEqual([]);
    expect(existsSync(SCREENSHOT)).toBe(true);
  });

  it('the backtest report (--report): benchmarks, overlays, a trade table that sorts, a CSV download', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const problems: string[] = [];
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(`console: ${message.text()}`);
    });
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
    const url = pathToFileURL(backtestReport).href;
    const foreign: string[] = [];
    page.on('request', (request) => {
      if (request.url() !== url) foreign.push(request.url());
    });
    await page.goto(url, { waitUntil: 'load' });

    const charts = await page.$$eval('[data-chart]', (els) => els.map((e) => e.getAttribute('data-chart')));
    expect(charts).toEqual(['equity', 'drawdown', 'price-QQQ', 'price-AAPL', 'monthly-returns', 'risk-heat']);
    const legend = await page.$eval('[data-chart="equity"]', (e) => e.textContent ?? '');
    expect(legend).toContain('Equal-weight basket (QQQ, AAPL) buy & hold');
    expect(legend).toContain('SPY buy & hold');
    const price = await page.$eval('[data-chart="price-QQQ"]', (e) => e.textContent ?? '');
    expect(price).toContain('SMA 10');
    expect(price).toContain('SMA 30');
    expect(price).toContain('Initial stop');
    const body = await page.$eval('main', (e) => e.textContent ?? '');
    for (const text of [
      'Sortino / Calmar',
      'Exposure (days in the market)',
      'Alpha / beta against SPY buy & hold',
      'Reduced and refused entries, by kind',
      'Correlation cut',
      'Sharpe ratio (annualized)',
    ])
      expect(body).toContain(text);

    // Sorting by P&L (8th column) orders the rows by their P&L, both ways.
    const pnl = () =>
      page.$$eval('#trade-table tbody tr', (rows) =>
        rows.map((r) => Number(r.children[7]?.getAttribute('data-sort'))),
      );
    const before = await pnl();
    expect(before.length).toBeGreaterThan(5);
    await page.click('#trade-table th:nth-child(8)');
    expect(await pnl()).toEqual([...before].sort((a, b) => a - b));
    await page.click('#trade-table th:nth-child(8)');
    expect(await pnl()).toEqual([...before].sort((a, b) => b - a));

    // The CSV link downloads the same rows.
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('a.download')]);
    const csvPath = join(dir, 'downloaded-trades.csv');
    await download.saveAs(csvPath);
    const csv = readFileSync(csvPath, 'utf8').trim().split('\n');
    expect(csv[0]).toBe(
      'symbol,direction,qty,entryTime,entryPrice,exitTime,exitPrice,pnl,returnPct,daysHeld,exitReason,commission',
    );
    expect(csv).toHaveLength(before.length + 1);

    await page.screenshot({ path: BACKTEST_SCREENSHOT, fullPage: true });
    await page.close();
    expect(problems).toEqual([]);
    expect(foreign).toEqual([]);
  });
});
