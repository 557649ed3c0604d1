/**
 * The bench's 20,000-combination sweep (bench/fast.ts): 20,000 Bollinger combinations on SPY, one
 * thread, the default risk rules, the settings of the other fast-engine entries. Run in a process of
 * its own (`runBigSweepInChild`), so that its peak RSS is the sweep's, not the bench process's (which
 * holds every earlier entry's data and garbage): the issue asks 20,000 combinations under 300 MB.
 */
import { fork } from 'node:child_process';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import * as z from 'zod';
import { loadDataDir } from '../shared/adapters/fs/bars.js';
import { sweepFast } from '../shared/core/backtest/fast/sweep.js';
import type { BacktestOptions } from '../shared/core/backtest/types.js';
import type { Metrics } from '../shared/core/metrics/index.js';
import { type Combination, expandGrid } from '../shared/core/research/grid.js';
import { defaultRiskRules } from '../shared/core/risk/index.js';
import { strategyRegistry } from '../shared/core/strategies/index.js';
import type { StrategyDefinition } from '../shared/core/strategies/types.js';
import { bigSweepScript } from './entries.js';
import { BENCH_OPTIONS } from './stats.js';

/** The fast-engine entries' settings: the config's costs and sizing, long-only, the default risk rules. */
export const FAST_OPTIONS: BacktestOptions = {
  ...BENCH_OPTIONS,
  direction: 'long-only',
  risk: defaultRiskRules(),
};
export const FAST_BASE_PARAMS = { atrStop: 2 } as const;

/** The 20,000 Bollinger combinations: 50 periods x 400 band widths. */
export function bigGrid(): Combination[] {
  return expandGrid({
    grid: { period: { from: 5, to: 54, step: 1 }, k: { from: 1, to: 2.995, step: 0.005 } },
    constraints: [],
  });
}

/** A digest of a sweep's metrics, to check that two runs of the same work gave the same results. */
export function metricsDigest(metrics: readonly Metrics[]): string {
  const hash = createHash('sha256');
  for (const m of metrics) hash.update(JSON.stringify(m));
  return hash.digest('hex');
}

/** What the child process reports. */
const childReportSchema = z.object({
  bars: z.number().int().positive(),
  combinations: z.number().int().positive(),
  seconds: z.number().positive(),
  peakRssMb: z.number().positive(),
  digest: z.string().length(64),
});
export type BigSweepReport = z.infer<typeof childReportSchema>;

/**
 * Runs the sweep in a child process (bundled as the bench is: bench/entries.ts) after a warm-up of
 * 500 combinations, and returns its time, its peak RSS and its results' digest.
 */
export async function runBigSweepInChild(): Promise<BigSweepReport> {
  const script = await bigSweepScript();
  return new Promise((resolve, reject) => {
    const child = fork(fileURLToPath(script.url), ['--child'], {
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
      ...(script.execArgv === undefined ? {} : { execArgv: script.execArgv }),
    });
    let report: BigSweepReport | undefined;
    child.on('message', (message) => {
      const parsed = childReportSchema.safeParse(message);
      if (parsed.success) report = parsed.data;
      else reject(new Error(`bench: the 20,000-combination child sent ${JSON.stringify(message)}`));
    });
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code === 0 && report !== undefined) resolve(report);
      else reject(new Error(`bench: the 20,000-combination child exited with ${code} and no report`));
    });
  });
}

function runChild(): void {
  const spy = loadDataDir('data', ['SPY'])[0];
  if (spy === undefined) throw new Error('bench: no SPY bars in data/');
  const bollinger = strategyRegistry.get('bollinger') as StrategyDefinition<unknown>;
  const combos = bigGrid();
  sweepFast(spy, bollinger, FAST_BASE_PARAMS, combos.slice(0, 500), FAST_OPTIONS);
  const started = process.hrtime.bigint();
  const metrics = sweepFast(spy, bollinger, FAST_BASE_PARAMS, combos, FAST_OPTIONS);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const report: BigSweepReport = {
    bars: spy.time.length,
    combinations: combos.length,
    seconds,
    peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024),
    digest: metricsDigest(metrics),
  };
  (process.send as (message: unknown, callback: () => void) => boolean)(report, () => process.disconnect());
}

if (process.argv[2] === '--child' && process.send !== undefined) runChild();
