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

const small = ['--grid', 'fast=10,20', '--grid', 'slow=30,60', '--workers', '0', '--format', 'json'];

describe('optimize and walk-forward on config/crypto-strategy.yaml', () => {
  it('optimize ranks the grid on the three crypto products', async () => {
    const { code, doc } = await run(optimizeCommand, ['--config', 'config/crypto-strategy.yaml', ...small]);
    expect(code).toBe(0);
    expect(doc.symbols).toEqual(['BTC-USD', 'ETH-USD', 'SOL-USD']);
    expect(doc.trials).toBe(4);
    expect(doc.ranked[0].metrics.trades).toBeGreaterThanOrEqual(10);
  });

  it('walk-forward runs windows of UTC days for each product and the portfolio', async () => {
    const { code, doc } = await run(walkForwardCommand, [
      '--config',
      'config/crypto-strategy.yaml',
      ...small,
    ]);
    expect(code).toBe(0);
    expect(doc.perSymbol.map((u: { symbol: string }) => u.symbol)).toEqual(['BTC-USD', 'ETH-USD', 'SOL-USD']);
    const equity = doc.portfolio.outOfSample.equity as { time: string }[];
    const weekend = equity.filter((p) => [0, 6].includes(new Date(`${p.time}T00:00:00Z`).getUTCDay()));
    expect(weekend.length).toBeGreaterThan(equity.length / 4); // 2 days in 7 are weekend sessions
    expect(doc.trials).toBe(4);
  });
});
