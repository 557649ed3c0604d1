import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderResearchReport } from '../../shared/report/html.js';
import { buildRealisticReportInput } from './report-input.js';

const CHROMIUM = '/usr/bin/chromium';
/** The machine has no network: these keep Chromium from trying to reach its services. */
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const SCREENSHOT = 'reports/report-screenshot.png';

describe('the research report in a real headless Chromium', () => {
  let browser: Browser;
  let reportUrl: string;

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(
        `${CHROMIUM} is missing: run scripts/ensure-debian-package.sh /usr/bin/chromium chromium`,
      );
    }
    const html = await renderResearchReport(buildRealisticReportInput());
    const file = join(mkdtempSync(join(tmpdir(), 'quantshift-report-')), 'report.html');
    writeFileSync(file, html);
    reportUrl = pathToFileURL(file).href;
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
  });

  afterAll(async () => {
    await browser?.close();
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

    mkdirSync('reports', { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    await page.close();

    expect(problems).toEqual([]);
    expect(foreignRequests).toEqual([]);
    expect(existsSync(SCREENSHOT)).toBe(true);
  });
});
