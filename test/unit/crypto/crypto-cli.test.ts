import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { optimizeCommand, walkForwardCommand } from '../../../shared/cli/research.js';

async function run(command: typeof optimizeCommand, argv: string[]) {
  let out = '';
  const stdout = new Writable({
    write(chunk, _e, done) {
      out += String(chunk);
      done();
    },
  });
  const stderr = new Writable({ write: (_c, _e, done) => done() });
  const code = await command(argv, { stdout, stderr });
  return { code, doc: JSON.parse(out) };
}

// The shipped sleeves config with each sleeve's grid cut to a few points (the full grids are the
// research's): trend 2 x 2, breakout 2 x 1, bollinger 1.
const shipped = readFileSync('config/crypto-strategy.yaml', 'utf8');
const small = shipped
  .replace('dir: data/crypto', `dir: ${resolve('data/crypto')}`)
  .replace(
    /fast: \{ from: 5, to: 30, step: 5 \}\n(\s+)slow: \{ from: 20, to: 120, step: 10 \}/,
    'fast: [10, 20]\n$1slow: [30, 60]',
  )
  .replace(
    /entry: \{ from: 10, to: 60, step: 10 \}\n(\s+)exit: \{ from: 5, to: 30, step: 5 \}/,
    'entry: [20, 30]\n$1exit: [10]',
  )
  .replace(
    /period: \{ from: 10, to: 40, step: 10 \}\n(\s+)k: \[1\.5, 2, 2\.5, 3\]/,
    'period: [20]\n$1k: [2]',
  );
const configPath = join(mkdtempSync(join(tmpdir(), 'qs-crypto-cli-')), 'crypto.yaml');
writeFileSync(configPath, small);
const flags = ['--workers', '0', '--format', 'json'];

describe('optimize and walk-forward on config/crypto-strategy.yaml (sleeves)', () => {
  it('optimize ranks each sleeve over its own grid on the crypto products', async () => {
    expect(small).not.toBe(shipped);
    const { code, doc } = await run(optimizeCommand, ['--config', configPath, ...flags]);
    expect(code).toBe(0);
    expect(doc.symbols).toEqual(['BTC-USD', 'ETH-USD', 'SOL-USD']);
    expect(doc.sleeves.map((s: { id: string; trials: number }) => [s.id, s.trials])).toEqual([
      ['trend', 4],
      ['breakout', 2],
      ['bollinger', 1],
    ]);
    expect(doc.sleeves[0].ranked[0].metrics.trades).toBeGreaterThanOrEqual(10);
  });

  it('walk-forward runs windows of UTC days for each sleeve and the account, weekends included', async () => {
    const { code, doc } = await run(walkForwardCommand, ['--config', configPath, ...flags]);
    expect(code).toBe(0);
    expect(doc.sleeves.map((s: { id: string }) => s.id)).toEqual(['trend', 'breakout', 'bollinger']);
    expect(doc.sleeves.map((s: { trials: number }) => s.trials)).toEqual([4, 2, 1]);
    const equity = doc.account.outOfSample.equity as { time: string }[];
    const weekend = equity.filter((p) => [0, 6].includes(new Date(`${p.time}T00:00:00Z`).getUTCDay()));
    expect(weekend.length).toBeGreaterThan(equity.length / 4); // 2 days in 7 are weekend sessions
  });
});
