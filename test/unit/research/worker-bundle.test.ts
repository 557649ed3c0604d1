import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadDataDir } from '../../../shared/adapters/fs/bars.js';
import { evaluateCombos } from '../../../shared/core/research/evaluate.js';
import { WorkerPoolEvaluator } from '../../../shared/research/pool.js';
import { bundleExecArgv, withoutTsxLoader, workerScript } from '../../../shared/research/worker-bundle.js';

describe('the grid workers’ bundle', () => {
  it('drops only tsx’s loader flags from the inherited node flags', () => {
    expect(
      withoutTsxLoader([
        '--require',
        '/repo/node_modules/tsx/dist/preflight.cjs',
        '--import',
        'file:///repo/node_modules/tsx/dist/loader.mjs',
        '--max-old-space-size=512',
        '--import=tsx',
        '--require',
        './other-hook.cjs',
        '--enable-source-maps',
      ]),
    ).toEqual(['--max-old-space-size=512', '--require', './other-hook.cjs', '--enable-source-maps']);
    expect(withoutTsxLoader([])).toEqual([]);
  });

  it('lets a bundled thread inherit the node flags unless tsx’s loader must be dropped', () => {
    expect(bundleExecArgv([])).toBeUndefined();
    expect(bundleExecArgv(['--max-old-space-size=4096', '--single-threaded-gc'])).toBeUndefined();
    // Under tsx, given explicitly: only the flags a thread accepts (a V8 flag would fail it).
    expect(bundleExecArgv(['--import', 'tsx', '--max-old-space-size=512'])).toEqual([]);
    expect(
      bundleExecArgv([
        '--single-threaded-gc',
        '--import',
        'tsx',
        '--enable-source-maps',
        '--require',
        './hook.cjs',
        '--stack-size=2000',
        '--conditions=dev',
      ]),
    ).toEqual(['--enable-source-maps', '--require', './hook.cjs', '--conditions=dev']);
  });

  it('starts its threads when the process runs with a V8 flag (npm start’s launcher, bundled)', () => {
    const out = execFileSync(
      process.execPath,
      [
        '--max-old-space-size=1024',
        'bin/start.mjs',
        'optimize',
        '--data',
        'data',
        '--symbol',
        'SPY',
        '--strategy',
        'rsi-reversion',
        '--grid',
        'period=5:8:1',
        '--workers',
        '2',
        '--format',
        'json',
      ],
      { cwd: fileURLToPath(new URL('../../../', import.meta.url)), encoding: 'utf8' },
    );
    expect(JSON.parse(out)).toBeTypeOf('object');
  });

  it('is built from the current sources, with a manifest of every input’s hash', () => {
    const script = workerScript();
    expect(script.bundled).toBe(true);
    const file = fileURLToPath(script.url);
    expect(existsSync(file)).toBe(true);
    const manifest = JSON.parse(readFileSync(new URL('../research-worker.json', script.url), 'utf8')) as {
      bundle: string;
      inputs: Record<string, string>;
    };
    expect(file.endsWith(manifest.bundle)).toBe(true);
    const root = new URL('../../../', import.meta.url);
    for (const input of ['shared/research/worker.ts', 'shared/core/research/evaluate.ts']) {
      const bytes = readFileSync(new URL(input, root));
      expect(manifest.inputs[input]).toBe(createHash('sha256').update(bytes).digest('hex'));
    }
  });

  it('runs a one-symbol and a portfolio grid with the in-process evaluator’s results', async () => {
    const series = loadDataDir('data', ['SPY', 'QQQ']);
    const options = {
      initialCash: 100_000,
      sizing: { mode: 'all-in' as const },
      cashBuffer: 0.02,
      commission: { perShare: 0.005, perOrder: 0, percent: 0, minimum: 1 },
      slippageBps: 5,
      fractional: false,
      endOfData: 'close' as const,
      startIndex: 600,
      endIndex: 900,
      riskFreeRate: 0,
      periodsPerYear: 252,
    };
    const tasks = [
      {
        series: [series[0]],
        strategy: 'rsi-reversion',
        baseParams: {},
        combos: [{ period: 7 }, { period: 14 }],
      },
      {
        series,
        strategy: 'breakout',
        baseParams: {},
        combos: [
          { entry: 20, exit: 10 },
          { entry: 40, exit: 5 },
        ],
      },
    ];
    const pool = new WorkerPoolEvaluator(2);
    try {
      for (const t of tasks) {
        const task = { ...t, series: t.series as typeof series, options };
        expect(await pool.evaluate(task)).toEqual(evaluateCombos(task));
      }
    } finally {
      await pool.close();
    }
  });
});
