import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  escapeHtml,
  InvalidReportInputError,
  type ResearchReportInput,
  renderResearchReport,
} from '../../../shared/report/html.js';
import { entryAdjustments, metricLabel } from '../../../shared/report/labels.js';
import { ChartCache, namespaceIds } from '../../../shared/report/svg.js';
import { equityCsv, tradeRows, tradesCsv } from '../../../shared/report/trades.js';

const days = (count: number, from = '2024-01-01') =>
  Array.from({ length: count }, (_, i) =>
    new Date(Date.parse(`${from}T00:00:00Z`) + i * 86_400_000).toISOString().slice(0, 10),
  );

/** A small report with every section filled in: 40 days, two symbols, a short and an open trade. */
function syntheticInput(overrides: Partial<ResearchReportInput> = {}): ResearchReportInput {
  const time = days(40);
  const strategy = time.map((_, i) => 100_000 + 400 * i - (i % 7 === 3 ? 1500 : 0));
  let peak = 100_000;
  const drawdownPct = strategy.map((e) => {
    peak = Math.max(peak, e);
    return ((peak - e) / peak) * 100;
  });
  return {
    title: 'Synthetic report',
    generatedAt: '2026-01-09T12:00:00Z',
    configHash: 'ab'.repeat(32),
    gitCommit: '0123456789abcdef',
    decision: { proceed: false, failed: ['sharpe'] },
    criteria: [
      { name: 'sharpe', op: '>', threshold: 1.5, value: 0.8, pass: false },
      { name: 'maxDrawdownPct', op: '<', threshold: 15, value: 4.2, pass: true },
      { name: 'profitFactor', op: '>', threshold: 1.5, value: null, pass: false },
      { name: 'symbolsPositivePct', op: '>=', threshold: 75, value: 100, pass: true },
    ],
    summary: [
      { label: 'Return', value: '15.6%' },
      { label: 'Trades', value: '3' },
    ],
    equity: { time, strategy, buyHold: time.map((_, i) => 100_000 + 250 * i) },
    drawdownPct,
    symbols: [
      {
        symbol: 'SPY',
        time,
        close: time.map((_, i) => 400 + Math.sin(i / 4) * 10),
        trades: [
          {
            direction: 'long',
            entryTime: time[3] as string,
            entryPrice: 402,
            exitTime: time[12] as string,
            exitPrice: 409,
            pnl: 700,
          },
          {
            direction: 'short',
            entryTime: time[20] as string,
            entryPrice: 395,
            exitTime: time[28] as string,
            exitPrice: 391,
            pnl: 400,
          },
        ],
      },
      {
        symbol: 'QQQ',
        time,
        close: time.map((_, i) => 350 + i),
        trades: [
          {
            direction: 'long',
            entryTime: time[30] as string,
            entryPrice: 380,
            exitTime: null,
            exitPrice: null,
            pnl: 90,
          },
        ],
      },
    ],
    monthlyReturns: [
      { year: 2024, month: 1, returnPct: 2.5 },
      { year: 2024, month: 2, returnPct: -1.25 },
    ],
    walkForward: {
      windows: [
        {
          symbol: 'SPY',
          inSample: { from: '2024-01-01', to: '2024-01-20' },
          outOfSample: { from: '2024-01-21', to: '2024-01-30' },
          params: { fast: 10, slow: 30, ma: 'sma' },
          outOfSampleReturnPct: 1.5,
        },
        {
          symbol: 'SPY',
          inSample: { from: '2024-01-11', to: '2024-01-30' },
          outOfSample: { from: '2024-01-31', to: '2024-02-09' },
          params: { fast: 5, slow: 20, ma: 'ema' },
          outOfSampleReturnPct: null,
        },
      ],
      efficiency: 0.62,
      efficiencyNote: 'OOS / IS annualized return',
      oosEquity: { time: time.slice(20), equity: strategy.slice(20) },
    },
    parameterSurface: {
      objective: 'sharpe',
      xName: 'fast',
      yName: 'slow',
      cells: [
        { x: 5, y: 20, value: 0.5 },
        { x: 10, y: 20, value: 0.9 },
        { x: 5, y: 30, value: null },
        { x: 10, y: 30, value: 1.2 },
      ],
    },
    perSymbol: [
      { symbol: 'SPY', metrics: { trades: 2, sharpe: 1.1, profitFactor: null } },
      { symbol: 'QQQ', metrics: { trades: 1, sharpe: 0.4, profitFactor: 2 } },
    ],
    risk: {
      peakHeatPct: 4.5,
      breakerTrips: [{ time: time[7] as string, breaker: 'dailyLoss', reason: 'loss 5.2% > 5%' }],
      refusedEntries: 2,
      reducedEntries: 5,
      heat: { time, heatPct: time.map((_, i) => (i % 10) * 0.4) },
    },
    ...overrides,
  };
}

const SECTIONS = [
  'header',
  'summary',
  'equity',
  'drawdown',
  'symbols',
  'monthly-returns',
  'walk-forward',
  'parameter-surface',
  'per-symbol',
  'risk',
];

const chartNames = (html: string) => [...html.matchAll(/data-chart="([^"]*)"/g)].map((m) => m[1]);

describe('renderResearchReport', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('renders every section, in order, with one inline SVG per chart', async () => {
    const html = await renderResearchReport(syntheticInput());
    expect(html.startsWith('<!DOCTYPE html>')).toBe(true);
    const positions = SECTIONS.map((id) => html.indexOf(` id="${id}"`));
    expect(positions.every((p) => p >= 0)).toBe(true);
    expect(positions).toEqual([...positions].sort((a, b) => a - b));
    expect(chartNames(html)).toEqual([
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
    const figures = html.split('<figure class="chart"').slice(1);
    for (const figure of figures) expect(figure.split('</figure>')[0]).toMatch(/^[^>]*><svg [^>]*viewBox=/);
  });

  it('shows the criteria with PASS/FAIL and the decision with what failed', async () => {
    const html = await renderResearchReport(syntheticInput());
    expect(html.match(/>PASS</g)).toHaveLength(2);
    expect(html.match(/>FAIL</g)).toHaveLength(2);
    expect(html).toContain(
      '<td>Profit factor [gross win / gross loss]</td><td>&gt; 1.5</td><td class="num">—</td>',
    );
    expect(html).toContain('<td>symbolsPositivePct</td><td>&gt;= 75</td><td class="num">100</td>');
    expect(html).toContain('<strong>Refine</strong> (failed: sharpe)');
    const proceed = await renderResearchReport(syntheticInput({ decision: { proceed: true, failed: [] } }));
    expect(proceed).toContain('Proceed to paper trading');
    expect(proceed).not.toContain('<strong>Refine</strong>');
  });

  it('loads nothing from the network: one inline script allowed by its hash only, no external src, href, @import or url()', async () => {
    const html = await renderResearchReport(syntheticInput());
    const scripts = [...html.matchAll(/<script([^>]*)>([\s\S]*?)<\/script>/gi)];
    expect(scripts).toHaveLength(1);
    expect(scripts[0]?.[1]).toBe('');
    const hash = createHash('sha256')
      .update(scripts[0]?.[2] as string)
      .digest('base64');
    expect(html).toContain(`script-src 'sha256-${hash}'`);
    expect(html).toContain("default-src 'none'");
    expect(html).not.toMatch(/\b(?:src|href)\s*=\s*["']?\s*(?:https?:)?\/\//i);
    expect(html).not.toMatch(/@import/i);
    expect(html).not.toMatch(/url\(\s*["']?\s*(?:https?:)?\/\//i);
    expect(html).not.toMatch(/<(?:link|img|iframe|object|embed)\b/i);
    // The only http(s) URLs left are SVG namespace declarations.
    const urls = [...html.matchAll(/https?:\/\/[^\s"'<>)]+/g)].map((m) => m[0]);
    expect(new Set(urls)).toEqual(new Set(['http://www.w3.org/2000/svg', 'http://www.w3.org/1999/xlink']));
  });

  it('escapes every piece of text it is given', async () => {
    const evil = '<script>alert("x")</script>';
    const html = await renderResearchReport(
      syntheticInput({
        title: evil,
        gitCommit: evil,
        summary: [{ label: evil, value: evil }],
        decision: { proceed: false, failed: [evil] },
        risk: {
          ...(syntheticInput().risk as NonNullable<ResearchReportInput['risk']>),
          breakerTrips: [{ time: '2024-01-05', breaker: evil, reason: evil }],
        },
        symbols: [
          { ...(syntheticInput().symbols[0] as ResearchReportInput['symbols'][number]), symbol: evil },
        ],
        walkForward: {
          ...(syntheticInput().walkForward as NonNullable<ResearchReportInput['walkForward']>),
          windows: [
            {
              symbol: evil,
              inSample: { from: '2024-01-01', to: '2024-01-20' },
              outOfSample: { from: '2024-01-21', to: '2024-01-30' },
              params: { [evil]: evil },
              outOfSampleReturnPct: 1,
            },
          ],
          efficiencyNote: evil,
        },
        parameterSurface: { objective: evil, xName: evil, yName: evil, cells: [{ x: 1, y: 2, value: 3 }] },
        perSymbol: [{ symbol: evil, metrics: { [evil]: 1 } }],
      }),
    );
    expect(html.match(/<script/g)).toHaveLength(1); // the sort script, not the input's
    expect(html).toContain('<title>&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;</title>');
    expect(html).toContain('<h1>&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;</h1>');
    expect(escapeHtml(`a&b<c>"d'`)).toBe('a&amp;b&lt;c&gt;&quot;d&#39;');
  });

  it('says "not run" for the sections whose input is null, and draws no chart there', async () => {
    const html = await renderResearchReport(
      syntheticInput({ walkForward: null, parameterSurface: null, risk: null }),
    );
    expect(html).toContain('Walk-forward analysis: not run.');
    expect(html).toContain('Parameter sweep: not run.');
    expect(html).toContain('Risk rules: not run.');
    expect(chartNames(html)).toEqual(['equity', 'drawdown', 'price-SPY', 'price-QQQ', 'monthly-returns']);
  });

  it('is deterministic, and no two elements of the page share an id', async () => {
    const first = await renderResearchReport(syntheticInput());
    const second = await renderResearchReport(syntheticInput());
    expect(second).toBe(first);
    const ids = [...first.matchAll(/\sid="([^"]+)"/g)].map((m) => m[1]);
    expect(ids.length).toBeGreaterThan(SECTIONS.length);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it("does not depend on the machine's time zone", async () => {
    const zone = process.env.TZ;
    try {
      process.env.TZ = 'Pacific/Auckland';
      const auckland = await renderResearchReport(syntheticInput());
      process.env.TZ = 'America/Los_Angeles';
      const losAngeles = await renderResearchReport(syntheticInput());
      expect(losAngeles).toBe(auckland);
    } finally {
      if (zone === undefined) delete process.env.TZ;
      else process.env.TZ = zone;
    }
  });

  it('lists the per-symbol metrics one row per metric, one column per symbol', async () => {
    const html = await renderResearchReport(syntheticInput());
    const perSymbol = html.split('<section id="per-symbol">')[1]?.split('</section>')[0] ?? '';
    expect(perSymbol).toContain('<th>Metric</th><th class="num">SPY</th><th class="num">QQQ</th>');
    expect(perSymbol).toContain(
      '<td>Profit factor [gross win / gross loss] <code>profitFactor</code></td><td class="num">—</td><td class="num">2</td>',
    );
  });

  it('leaves cells without a value blank in the parameter surface', async () => {
    const html = await renderResearchReport(syntheticInput());
    expect(html).toContain('1 blank cell had no value');
    const surface = html.split('data-chart="parameter-surface"')[1]?.split('</figure>')[0] ?? '';
    expect(surface.match(/aria-roledescription="rect mark"/g)).toHaveLength(3);
    expect(surface).toContain('aria-label="fast: 10; slow: 30; value: 1.2"');
    expect(surface).not.toContain('fast: 5; slow: 30');
  });

  it('lets Vega-Lite and Vega compile and render every chart without a warning', async () => {
    const warn = vi.spyOn(console, 'warn');
    const error = vi.spyOn(console, 'error');
    await renderResearchReport(syntheticInput());
    expect(warn).not.toHaveBeenCalled();
    expect(error).not.toHaveBeenCalled();
  });

  it('rejects series of the wrong length and times that are not ISO dates, naming the field', async () => {
    const input = syntheticInput();
    await expect(renderResearchReport({ ...input, drawdownPct: input.drawdownPct.slice(1) })).rejects.toThrow(
      new InvalidReportInputError('drawdownPct', 'has 39 points, its time axis has 40'),
    );
    const badTime = {
      ...input,
      equity: { ...input.equity, time: ['01/02/2024', ...input.equity.time.slice(1)] },
    };
    await expect(renderResearchReport(badTime)).rejects.toThrow(/equity\.time\[0\]: not an ISO date/);
    await expect(
      renderResearchReport({ ...input, monthlyReturns: [{ year: 2024, month: 13, returnPct: 1 }] }),
    ).rejects.toBeInstanceOf(InvalidReportInputError);
  });
});

describe('ChartCache', () => {
  it('gives the report a fresh render gives, and renders only the charts whose spec changed', async () => {
    const input = syntheticInput();
    const cache = new ChartCache();
    // What the research job draws ahead: the same report without its walk-forward.
    await renderResearchReport({ ...input, walkForward: null }, { cache });
    const ahead = cache.size;
    expect(ahead).toBeGreaterThan(3);
    const cached = await renderResearchReport(input, { cache });
    expect(cached).toBe(await renderResearchReport(input));
    // the walk-forward's charts are the only new ones
    const walkForwardCharts = cached
      .split('id="walk-forward"')[1]
      ?.split('</section>')[0]
      ?.match(/<figure/g);
    expect(cache.size - ahead).toBe(walkForwardCharts?.length);
    expect(cache.size - ahead).toBeGreaterThan(0);
  });

  it('keeps specs apart that differ only in values JSON would write as null', async () => {
    const cache = new ChartCache();
    const calls: string[] = [];
    const spec = (value: number) => ({ data: { values: [{ v: value }] }, mark: 'point' as const });
    for (const value of [Number.NaN, Number.POSITIVE_INFINITY, Number.NaN]) {
      await cache.get(spec(value), async () => {
        calls.push(String(value));
        return '<svg/>';
      });
    }
    expect(calls).toEqual(['NaN', 'Infinity']);
  });
});

describe('namespaceIds', () => {
  it('renames the ids an SVG defines and the references to them, and nothing else', () => {
    const svg =
      '<svg><defs><clipPath id="clip7"><rect/></clipPath></defs><g clip-path="url(#clip7)"><use href="#clip7"/><a href="#elsewhere"/></g></svg>';
    expect(namespaceIds(svg, 'c1')).toBe(
      '<svg><defs><clipPath id="c1-1"><rect/></clipPath></defs><g clip-path="url(#c1-1)"><use href="#c1-1"/><a href="#elsewhere"/></g></svg>',
    );
  });

  it('adds a yearly column to the monthly returns and marks the parameter surface in-sample', async () => {
    const html = await renderResearchReport(syntheticInput());
    // (1.025 × 0.9875 − 1) = 1.22 % for 2024
    expect(html).toMatch(/<th class="num">Year<\/th><\/tr>/);
    expect(html).toContain('<td class="num"><strong><span class="up">1.2</span></strong></td>');
    expect(html).toContain('<h2>Parameter surface (in-sample): sharpe</h2>');
    expect(html).toContain('<strong>In-sample:</strong>');
  });
});

describe('report labels, entry adjustments and CSV', () => {
  it('groups reduced, refused and skipped entries by kind, counting an entry once per kind', () => {
    const kinds = entryAdjustments({
      refused: [{ reason: 'portfolio heat 10% leaves no room under the 10% cap' }],
      reduced: [
        { reasons: ['Kelly cap: 0.25 × Kelly 0.02 → risk 0.5%', 'position cap 20% of equity'] },
        { reasons: ['Kelly cap: 0.25 × Kelly 0.04 → risk 1%'] },
      ],
      skipped: [{ reason: 'reduced by the position cap or buying power', placedQty: 3 }],
    });
    expect(kinds.map((k) => [k.kind, k.effect, k.count])).toEqual([
      ['Kelly cap', 'reduced', 2],
      ['Position cap', 'reduced', 2], // one by the risk rules, one by the cash left
      ['No heat room', 'refused', 1],
    ]);
    expect(kinds[0]?.explanation).toMatch(/Kelly/);
    expect(kinds[0]?.example).toBe('Kelly cap: 0.25 × Kelly 0.02 → risk 0.5%');
    expect(metricLabel('maxDrawdownPct')).toBe('Max drawdown [%]');
    expect(metricLabel('somethingNew')).toBe('somethingNew');
  });

  it('writes trades and equity as CSV, with return, days held and drawdown', () => {
    const doc = {
      to: '2024-01-10',
      trades: [
        {
          symbol: 'SPY',
          direction: 'long' as const,
          qty: 10,
          entryTime: '2024-01-02',
          entryPrice: 100,
          exitTime: '2024-01-05',
          exitPrice: 110,
          pnl: 99,
          commission: 1,
          exitReason: 'stop-loss',
        },
        {
          symbol: 'A,B',
          direction: 'short' as const,
          qty: 5,
          entryTime: '2024-01-08',
          entryPrice: 50,
          exitTime: null,
          exitPrice: null,
          pnl: -5,
          commission: 0,
          exitReason: null,
        },
      ],
      equity: [
        { time: '2024-01-02', equity: 1000 },
        { time: '2024-01-03', equity: 1100 },
        { time: '2024-01-04', equity: 990 },
      ],
    };
    expect(tradesCsv(tradeRows(doc)).split('\n')).toEqual([
      'symbol,direction,qty,entryTime,entryPrice,exitTime,exitPrice,pnl,returnPct,daysHeld,exitReason,commission',
      'SPY,long,10,2024-01-02,100,2024-01-05,110,99,9.9,3,stop-loss,1',
      '"A,B",short,5,2024-01-08,50,,,-5,-2,2,,0',
      '',
    ]);
    expect(equityCsv(doc)).toBe(
      'time,equity,drawdownPct\n2024-01-02,1000,0\n2024-01-03,1100,0\n2024-01-04,990,10\n',
    );
  });
});
