import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadDataDir } from '../../shared/adapters/fs/bars.js';
import { openReplayState } from '../../shared/cli/paper-state.js';
import { replay } from '../../shared/cli/replay.js';
import { validatePaperCommand } from '../../shared/cli/validate-paper.js';
import { liveSleeveIds, parseConfig } from '../../shared/core/config/schema.js';
import { sleeveHash } from '../../shared/core/config/sleeve-hash.js';
import type { PaperValidation } from '../../shared/core/validation/paper.js';
import type { LiveContext } from '../../shared/live/context.js';
import type { DailyReport } from '../../shared/live/end-of-day.js';
import {
  readPaperLedger,
  shadowBacktest,
  type ValidationStore,
  weeklyPaperValidation,
} from '../../shared/live/paper-validation.js';
import { testArtifactDir } from '../helpers/artifacts.js';
import { capture } from '../helpers/capture.js';
import { startLiveStack } from '../helpers/live-stack.js';

// The shipped multi-strategy config replayed over a short span (see test/e2e/replay-sleeves.test.ts
// for why it starts on 2021-03-15): trend and breakout trade, one QQQ and one AAPL order carry both
// sleeves' legs, trend's SPY position leaves by its own stop. validate-paper re-runs the sleeves
// backtest over exactly the sessions paper traded and matches on (sleeve, symbol, session, side).
const configPath = 'config/multi-strategy.yaml';
const FROM = '2021-03-15';
const TO = '2021-04-09';
const config = parseConfig(readFileSync(configPath, 'utf8'), configPath);

let root: string;
let dir: string;
let replayed: Awaited<ReturnType<typeof replay>>;
/** The end-of-day reports by date. */
const reports = new Map<string, DailyReport>();

beforeAll(async () => {
  root = testArtifactDir('validate-paper-sleeves');
  dir = join(root, 'state');
  replayed = await replay({
    from: FROM,
    to: TO,
    configPath,
    dataDir: 'data',
    withCache: false,
    log: () => {},
    logSink: () => {},
    stateDir: dir,
    onDay: (day) => {
      if (day.report !== undefined) reports.set(day.date, day.report as DailyReport);
    },
  });
}, 300_000);

afterAll(() => {
  if (root !== undefined) rmSync(root, { recursive: true, force: true });
});

async function validate(...argv: string[]): Promise<PaperValidation> {
  const out = capture();
  const err = capture();
  expect(
    await validatePaperCommand([...argv, '--format', 'json'], { stdout: out.stream, stderr: err.stream }),
  ).toBe(0);
  return JSON.parse(out.text()) as PaperValidation;
}

describe('validate-paper on a sleeves config', () => {
  it("matches 100 % of the replay's trades per sleeve against the sleeves backtest over the same sessions", async () => {
    const v = await validate('--state-dir', dir);
    expect(v.sleeve).toBe(config.name);
    expect(v.sessions).toBe(19);
    expect(v.trades.missed).toEqual([]);
    expect(v.trades.extra).toEqual([]);
    expect(v.trades.matchedPct).toBe(100);
    // Every entry and exit of every sleeve's replayed trades, each on its own sleeve.
    const expected = (replayed.sleeves ?? []).reduce(
      (n, s) => n + s.trades.reduce((m, t) => m + (t.exitTime === null ? 1 : 2), 0),
      0,
    );
    expect(expected).toBeGreaterThan(8);
    expect(v.trades.matched).toHaveLength(expected);
    expect(new Set(v.trades.matched.map((m) => m.sleeve))).toEqual(new Set(['trend', 'breakout']));
    // The netted QQQ order of 2021-04-05: one trade per sleeve, at each sleeve's quantity.
    const qqq = v.trades.matched.filter((m) => m.symbol === 'QQQ' && m.session === '2021-04-05');
    expect(qqq.map((m) => m.sleeve).sort()).toEqual(['breakout', 'trend']);
    for (const m of qqq) expect(m.paperQty).toBe(m.backtestQty);
    // trend's SPY exit by its own stop.
    expect(v.trades.matched).toContainEqual(
      expect.objectContaining({ sleeve: 'trend', symbol: 'SPY', session: '2021-03-25', side: 'sell' }),
    );
    expect(v.tracking.correlation).toBeGreaterThan(0.99);
    expect(v.slippageBps.median).toBeCloseTo(5, 6);
    expect(v.failed).toEqual(['minSessions']);
    expect(v.caveats).toContainEqual(expect.stringMatching(/trades are matched per sleeve/));
    expect(v.caveats.some((c) => c.includes('estimated'))).toBe(false);
  });

  it('--from in the middle of a held position: the sleeves backtest starts from each sleeve’s positions and stops, and matches the exit', async () => {
    // trend bought SPY on 2021-03-18 and its stop sold it on 2021-03-25.
    const v = await validate('--state-dir', dir, '--from', '2021-03-22', '--no-record');
    expect(v.from).toBe('2021-03-22');
    expect(v.trades.matched).toContainEqual(
      expect.objectContaining({ sleeve: 'trend', symbol: 'SPY', session: '2021-03-25', side: 'sell' }),
    );
    expect(v.trades.missed).toEqual([]);
    expect(v.trades.extra).toEqual([]);
    expect(v.trades.matchedPct).toBe(100);
    expect(v.caveats.some((c) => c.includes('starts flat'))).toBe(false);
  });

  it('--from after a closed trade: each sleeve starts from the dated snapshot of the session before (exact cash), and the overlapping trades equal the validation from the start', async () => {
    // trend's SPY round trip closed on 2021-03-25 at a profit or a loss: from then on its cash is no
    // longer its configured share of the equity less what its positions cost.
    const MID = '2021-03-29';
    const full = await validate('--state-dir', dir, '--no-record');
    const mid = await validate('--state-dir', dir, '--from', MID, '--no-record');
    expect(mid.from).toBe(MID);
    const overlap = full.trades.matched.filter((m) => m.session >= MID);
    expect(overlap.length).toBeGreaterThan(2);
    // Same trades, same quantities on both sides (each sleeve's sizing reads its exact equity).
    expect(mid.trades.matched).toEqual(overlap);
    expect(mid.trades.missed).toEqual([]);
    expect(mid.trades.extra).toEqual([]);
    expect(mid.caveats.some((c) => c.includes('estimated'))).toBe(false);

    // The snapshot is what makes it exact: the estimate (no snapshot) sizes differently.
    const state = await openReplayState(dir);
    try {
      const ids = liveSleeveIds(config);
      const ledger = await readPaperLedger({
        store: state.store as ValidationStore,
        config,
        sleeve: config.name,
        sleeves: ids,
        from: MID,
      });
      expect(ledger.startSession).toBe('2021-03-26');
      const snapshot = ledger.startState;
      if (snapshot === undefined) throw new Error('no sleeves snapshot of 2021-03-26');
      const series = loadDataDir('data', config.watchlist, { adjusted: config.data.adjusted });
      const last = ledger.equity.at(-1)?.date as string;
      const run = (exact: boolean) =>
        shadowBacktest(
          config,
          series,
          MID,
          last,
          ledger.initialEquity,
          ids,
          ledger.startPositions,
          exact ? snapshot : undefined,
        )?.fills.map((f) => `${f.sleeve} ${f.date} ${f.side} ${f.qty} ${f.symbol}`);
      const exact = [...(run(true) ?? [])].sort();
      expect(exact).toEqual(
        overlap.flatMap((m) => [`${m.sleeve} ${m.session} ${m.side} ${m.backtestQty} ${m.symbol}`]).sort(),
      );
      expect([...(run(false) ?? [])].sort()).not.toEqual(exact);
    } finally {
      await state.close();
    }
  });

  it("each sleeve's record and go/no-go use its own curve: its Sharpe, drawdown and tracking against the backtest's sleeve, not the account's", async () => {
    const v = (await validate('--state-dir', dir)) as PaperValidation & {
      sleeves: readonly {
        sleeve: string;
        paper: PaperValidation['paper'];
        backtest: PaperValidation['backtest'];
        tracking: PaperValidation['tracking'];
        caveats: readonly string[];
        failed: readonly string[];
      }[];
    };
    expect(v.sleeves.map((s) => s.sleeve)).toEqual(liveSleeveIds(config));
    const state = await openReplayState(dir);
    try {
      for (const id of ['trend', 'breakout']) {
        const own = v.sleeves.find((s) => s.sleeve === id);
        if (own === undefined || own.paper === null) throw new Error(`no figures for ${id}`);
        // Its own curve, not the account's.
        expect(own.paper.returnPct).not.toBeCloseTo(v.paper?.returnPct as number, 6);
        expect(own.paper.maxDrawdownPct).not.toBeCloseTo(v.paper?.maxDrawdownPct as number, 6);
        // Against the backtest's curve of the same sleeve: they track.
        expect(own.tracking.correlation).toBeGreaterThan(0.99);
        expect(own.paper.returnPct).toBeCloseTo(own.backtest?.returnPct as number, 1);
        expect(own.caveats.some((c) => c.includes("account's"))).toBe(false);
        // The record carries the sleeve's own figures.
        const record = await state.store.getPaperValidation(id);
        expect(record?.figures.sharpe ?? null).toBe(own.paper.sharpe);
        expect(record?.figures.maxDrawdown).toBe(own.paper.maxDrawdownPct);
        expect(record?.failed).toEqual(own.failed);
      }
    } finally {
      await state.close();
    }
  });

  it("the weekly run validates each sleeve on its own curve: each record carries the sleeve's own figures", async () => {
    const v = (await validate('--state-dir', dir, '--no-record')) as PaperValidation & {
      sleeves: readonly { sleeve: string; paper: PaperValidation['paper'] }[];
    };
    const stack = await startLiveStack({ startTime: '2021-04-09T21:30:00.000Z', withCache: false });
    const kept = await openReplayState(dir);
    try {
      const ctx: LiveContext = { ...stack.ctx, store: kept.store, config };
      const result = await weeklyPaperValidation(ctx, '2021-04-09T21:30:00.000Z');
      expect(result.sleeves.map((s) => s.sleeve)).toEqual(liveSleeveIds(config));
      for (const id of ['trend', 'breakout']) {
        const own = v.sleeves.find((s) => s.sleeve === id)?.paper;
        const record = await kept.store.getPaperValidation(id);
        expect(record?.decidedAt).toBe('2021-04-09T21:30:00.000Z');
        // The paper side is the sleeve's own curve from the snapshots, whatever bars the backtest reads.
        expect(record?.figures.sharpe ?? null).toBe(own?.sharpe ?? null);
        expect(record?.figures.maxDrawdown).toBe(own?.maxDrawdownPct);
        expect(record?.figures.maxDrawdown).not.toBeCloseTo(v.paper?.maxDrawdownPct as number, 6);
      }
      const sent = stack.notifier.sent.filter((n) => n.subject.startsWith('Paper validation of'));
      expect(sent).toHaveLength(liveSleeveIds(config).length);
      for (const n of sent) expect(n.text).not.toContain("the account's");
    } finally {
      await kept.close();
      await stack.close();
    }
  });

  it('--sleeve narrows the match to one sleeve; the records are per sleeve, on each sleeve’s hash', async () => {
    const v = await validate('--state-dir', dir, '--sleeve', 'breakout', '--no-record');
    expect(v.sleeve).toBe('breakout');
    expect(v.trades.matched.length).toBeGreaterThan(2);
    expect(v.trades.matched.every((m) => m.sleeve === 'breakout')).toBe(true);
    expect(v.trades.missed).toEqual([]);
    expect(v.trades.extra).toEqual([]);
    const state = await openReplayState(dir);
    try {
      for (const id of liveSleeveIds(config)) {
        const record = await state.store.getPaperValidation(id);
        expect(record, id).toMatchObject({ sleeve: id, configHash: sleeveHash(config, id), sessions: 19 });
        // Each on its own figures (a sleeve that did not trade has no Sharpe): at least minSessions.
        expect(record?.failed).toContain('minSessions');
      }
    } finally {
      await state.close();
    }
  });

  it('the daily and weekly reports attribute P&L by sleeve, symbol and side, with slippage on its own line; the parts add up', () => {
    const sum = (r: Readonly<Record<string, number>>) => Object.values(r).reduce((a, b) => a + b, 0);
    const attributions = [...reports.values()].flatMap((r) =>
      r.weekly == null ? [r.attribution] : [r.attribution, r.weekly.attribution],
    );
    // 19 daily reports and 4 weekly ones.
    expect(attributions).toHaveLength(23);
    for (const a of attributions) {
      if (a === undefined || a === null) throw new Error('a report without its attribution');
      expect(sum(a.bySleeve)).toBe(a.beforeCostsCents);
      expect(sum(a.bySymbol)).toBe(a.beforeCostsCents);
      expect(sum(a.bySide)).toBe(a.beforeCostsCents);
      expect(a.beforeCostsCents - a.costs.commissionCents - a.costs.slippageCents).toBe(a.totalCents);
    }
    // 2021-04-05: trend's and breakout's QQQ legs of one net order, filled 5 bps above the open.
    const day = reports.get('2021-04-05')?.attribution;
    expect(day?.totalCents).toBe(0);
    expect(day?.costs.slippageCents).toBeGreaterThan(0);
    expect(Object.keys(day?.bySleeve ?? {}).sort()).toEqual(['breakout', 'trend']);
    expect(day?.bySide).toEqual({ long: day?.costs.slippageCents });
    // 2021-03-25: trend's SPY round trip closed by its own stop (a stop fill: no slippage line).
    const stopDay = reports.get('2021-03-25')?.attribution;
    const closed = reports.get('2021-03-25')?.closedTrades ?? [];
    expect(closed).toHaveLength(1);
    expect(stopDay).toMatchObject({
      totalCents: closed[0]?.pnlCents,
      bySleeve: { trend: closed[0]?.pnlCents },
      bySymbol: { SPY: closed[0]?.pnlCents },
      costs: { commissionCents: 0, slippageCents: 0 },
    });
    // The week of 2021-03-29 ends on Thursday 2021-04-01 (Good Friday): its weekly report's.
    const week = reports.get('2021-04-01')?.weekly?.attribution;
    expect(week?.bySleeve.trend).toBeDefined();
    expect(week?.totalCents).toBe(
      (reports.get('2021-03-31')?.attribution?.totalCents ?? 0) +
        (reports.get('2021-03-29')?.attribution?.totalCents ?? 0) +
        (reports.get('2021-03-30')?.attribution?.totalCents ?? 0) +
        (reports.get('2021-04-01')?.attribution?.totalCents ?? 0),
    );
  });
});
