import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openReplayState } from '../../shared/cli/paper-state.js';
import { replayCommand } from '../../shared/cli/replay.js';
import { validatePaperCommand } from '../../shared/cli/validate-paper.js';
import { liveSleeveIds, parseConfig } from '../../shared/core/config/schema.js';
import { sleeveHash } from '../../shared/core/config/sleeve-hash.js';
import type { PaperValidation } from '../../shared/core/validation/paper.js';
import { testArtifactDir } from '../helpers/artifacts.js';
import { capture } from '../helpers/capture.js';

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
let replayed: { sleeves: { id: string; trades: { symbol: string; exitTime: string | null }[] }[] };

beforeAll(async () => {
  root = testArtifactDir('validate-paper-sleeves');
  dir = join(root, 'state');
  const out = capture();
  const err = capture();
  const args = ['--config', configPath, '--from', FROM, '--to', TO, '--no-cache', '--state-dir', dir];
  expect(await replayCommand([...args, '--format', 'json'], { stdout: out.stream, stderr: err.stream })).toBe(
    0,
  );
  replayed = JSON.parse(out.text());
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
    const expected = replayed.sleeves.reduce(
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
        expect(record?.failed).toEqual(['minSessions']);
      }
    } finally {
      await state.close();
    }
  });
});
