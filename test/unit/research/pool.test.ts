import { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { loadDataDir } from '../../../shared/adapters/fs/bars.js';
import type { BacktestOptions } from '../../../shared/core/backtest/types.js';
import { evaluateCombos } from '../../../shared/core/research/evaluate.js';
import { type ChunkMessage, chunkSizes, WorkerPoolEvaluator } from '../../../shared/research/pool.js';
import { COSTED_OPTIONS } from '../../helpers/backtest-options.js';

const options: BacktestOptions = { ...COSTED_OPTIONS, sizing: { mode: 'fraction', fraction: 0.9 } };

afterEach(() => {
  vi.restoreAllMocks();
});

describe('the worker pool', () => {
  it('sends each series to each worker once, whatever the spans and tasks, with the in-process results', async () => {
    const series = loadDataDir('data', ['SPY', 'QQQ']);
    const sent = vi.spyOn(Worker.prototype, 'postMessage');
    const pool = new WorkerPoolEvaluator(2);
    try {
      const combos = [];
      for (let fast = 5; fast <= 68; fast += 1) combos.push({ fast, slow: 2 * fast + 10 });
      // Walk-forward style: the same series objects, a different span per window, one symbol at a time.
      for (const [from, to] of [
        [0, 600],
        [300, 900],
        [600, 1200],
      ] as const) {
        for (const s of series) {
          const task = {
            series: [s],
            strategy: 'ma-crossover',
            baseParams: {},
            combos,
            options: { ...options, startIndex: from, endIndex: to },
          };
          expect(await pool.evaluate(task)).toEqual(evaluateCombos(task));
        }
      }
    } finally {
      await pool.close();
    }
    // The pool's messages (esbuild, rebuilding the workers' bundle, talks to a worker thread too).
    const messages = sent.mock.calls
      .map(([message]) => message as ChunkMessage)
      .filter((m) => typeof m === 'object' && m !== null && 'add' in m && 'task' in m);
    // Every chunk of every task went out: 3 windows x 2 symbols x the chunks of 64 combinations.
    expect(chunkSizes(64, 2)).toEqual([16, 16, 16, 16]);
    expect(messages).toHaveLength(24);
    const added = messages.flatMap((m) => m.add.map((a) => a.series.symbol));
    // Each of the two workers got SPY and QQQ once.
    expect(added.sort()).toEqual(['QQQ', 'QQQ', 'SPY', 'SPY']);
    for (const m of messages) expect(m.task.series).toHaveLength(1);
  });
});

describe('chunkSizes', () => {
  it('covers the task in order, shrinking to the minimum chunk as the task drains', () => {
    for (const [combinations, workers] of [
      [0, 2],
      [1, 2],
      [15, 1],
      [1_000, 2],
      [20_000, 2],
      [20_000, 1],
      [100_000, 8],
    ] as const) {
      const sizes = chunkSizes(combinations, workers);
      expect(sizes.reduce((a, b) => a + b, 0)).toBe(combinations);
      for (let i = 1; i < sizes.length; i++) {
        expect(sizes[i]).toBeLessThanOrEqual(sizes[i - 1] as number);
        expect(sizes[i]).toBeGreaterThan(0);
      }
      // Only the last chunk may be under the minimum of 16, and the first is a quarter per worker.
      for (const size of sizes.slice(0, -1)) expect(size).toBeGreaterThanOrEqual(16);
      if (combinations >= 16 * workers * 4) expect(sizes[0]).toBe(Math.ceil(combinations / (workers * 4)));
    }
    // 20,000 on two workers: 2,500 first (as the fixed eighths were), a tail of small chunks.
    const sizes = chunkSizes(20_000, 2);
    expect(sizes[0]).toBe(2_500);
    expect(sizes.slice(-3)).toEqual([16, 16, 10]);
    expect(sizes).toHaveLength(46);
  });
});
