/**
 * The pipeline benchmark (`npm run bench -- --only pipeline`, docs/cost.md): a walk-forward of a
 * 100,000-combination grid run through the local Step Functions path, the way the deployed
 * pipeline runs a sweep of that size: the synthesized state machine (aws-local-stepfunctions, as
 * test/integration/pipeline-local.test.ts runs it), PrepareData above the stack's distributed
 * threshold, so the items go through the Distributed Map branch (its S3 ItemReader read locally,
 * see `LocalRunOptions.readItems`), each Task state on the step code of its Lambda function.
 *
 * The job: the MA crossover with the risk rules on (the multi-strategy config's account, costs and
 * risk rules), one sleeve on SPY, a grid of fast 2..51 × slow 60..259 × ma sma/ema × atrStop
 * 2..6 = 100,000 combinations, rolling windows of 504 bars in sample and 252 out of sample.
 *
 * Every Task invocation is timed alone (one at a time, on one thread: one invocation per Lambda
 * sandbox, and the optimize function's 1769 MB are one vCPU), counted, and priced at the memory the
 * synthesized stack gives its function: Lambda bills the duration times the memory (GB-seconds) plus
 * a price per request. A function below 1769 MB gets that share of a vCPU, so its CPU-bound
 * duration is scaled up by 1769 / memory. This machine's core is taken as one Lambda arm64 vCPU.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { synthesizePipeline } from '../lib/pipeline-definition.js';
import { loadDataDir } from '../shared/adapters/fs/bars.js';
import { FolderMarketData } from '../shared/adapters/fs/market-data.js';
import { FolderObjectStore } from '../shared/adapters/local/folder-store.js';
import { ListNotifier } from '../shared/adapters/local/list-notifier.js';
import { type BarSeries, formatBarTime } from '../shared/core/market/types.js';
import { runPipelineLocally } from '../shared/pipeline/local-runner.js';
import { createPipelineSteps, type PipelineSteps, type PipelineSummary } from '../shared/pipeline/steps.js';

/** us-east-1 list prices of Lambda on arm64 (first tier), as docs/cost.md uses them. */
export const LAMBDA_ARM64_PRICES = {
  perGbSecond: 0.0000133334,
  perRequest: 0.2 / 1_000_000,
} as const;

/** The memory at which Lambda gives a function one full vCPU. */
export const ONE_VCPU_MB = 1769;

/** One Task invocation: its step, the state's function memory, and its measured duration. */
export interface Invocation {
  readonly step: string;
  readonly memoryMb: number;
  readonly localMs: number;
}

/** The estimated Lambda bill of a set of invocations. */
export interface LambdaEstimate {
  readonly invocations: number;
  readonly gbSeconds: number;
  readonly costUsd: number;
  readonly byStep: Record<
    string,
    { invocations: number; memoryMb: number; localSeconds: number; lambdaSeconds: number; gbSeconds: number }
  >;
}

/**
 * Lambda duration of an invocation measured on one local core: the same for a function with a
 * full vCPU or more, longer in proportion below it (CPU-bound work). Billed in whole milliseconds.
 */
export function lambdaMs(invocation: Invocation): number {
  return Math.ceil(invocation.localMs * Math.max(1, ONE_VCPU_MB / invocation.memoryMb));
}

/** Prices invocations: GB-seconds at their memory plus the request price. */
export function estimateLambdaCost(invocations: readonly Invocation[]): LambdaEstimate {
  const byStep: LambdaEstimate['byStep'] = {};
  let gbSeconds = 0;
  for (const invocation of invocations) {
    const seconds = lambdaMs(invocation) / 1000;
    const gbs = seconds * (invocation.memoryMb / 1024);
    gbSeconds += gbs;
    const entry = byStep[invocation.step] ?? {
      invocations: 0,
      memoryMb: invocation.memoryMb,
      localSeconds: 0,
      lambdaSeconds: 0,
      gbSeconds: 0,
    };
    byStep[invocation.step] = entry;
    entry.invocations++;
    entry.localSeconds += invocation.localMs / 1000;
    entry.lambdaSeconds += seconds;
    entry.gbSeconds += gbs;
  }
  const costUsd =
    gbSeconds * LAMBDA_ARM64_PRICES.perGbSecond + invocations.length * LAMBDA_ARM64_PRICES.perRequest;
  return { invocations: invocations.length, gbSeconds, costUsd, byStep };
}

/** The bench's `pipeline` document. */
export interface PipelineBenchResult {
  readonly name: string;
  readonly strategy: string;
  readonly risk: true;
  readonly symbols: readonly string[];
  readonly combinations: number;
  readonly windows: number;
  /** In-sample backtests: combinations × windows. */
  readonly backtests: number;
  readonly distributed: boolean;
  /** Wall time of the local run (invocations one at a time). */
  readonly seconds: number;
  /** Critical path on AWS: the steps before and after the Map, plus its slowest item (items run in parallel). */
  readonly estimatedAwsSeconds: number;
  readonly lambda: LambdaEstimate & {
    readonly architecture: string;
    readonly pricePerGbSecond: number;
    readonly pricePerRequest: number;
    readonly costPerMillionCombinations: number;
    readonly costPerMillionBacktests: number;
  };
  readonly peakRssMb: number;
}

/** The bench job's grid: `combinations` of them, 100,000 by default (fast × slow × ma × atrStop). */
export function benchGrid(combinations: number) {
  const atrStop = [2, 3, 4, 5, 6];
  const ma = ['sma', 'ema'];
  const fastValues = 50;
  const slowCount = combinations / (fastValues * ma.length * atrStop.length);
  if (!Number.isInteger(slowCount) || slowCount < 1) {
    throw new Error(
      `bench pipeline: --combinations must be a multiple of ${fastValues * ma.length * atrStop.length}`,
    );
  }
  return {
    fast: { from: 2, to: 1 + fastValues, step: 1 },
    slow: { from: 60, to: 59 + slowCount, step: 1 },
    ma,
    atrStop,
  };
}

/** The job's config: the multi-strategy account with one MA-crossover sleeve on SPY and the bench grid. */
export function benchConfigYaml(combinations: number): string {
  const config = parse(readFileSync('config/multi-strategy.yaml', 'utf8')) as Record<string, unknown>;
  config.name = 'bench-pipeline';
  config.watchlist = ['SPY'];
  config.sleeves = [
    {
      id: 'trend',
      strategy: 'ma-crossover',
      direction: 'long-only',
      symbols: ['SPY'],
      params: { fast: 10, slow: 100, ma: 'sma', atrPeriod: 14, atrStop: 2 },
      optimize: { space: { grid: benchGrid(combinations) } },
    },
  ];
  config.walkForward = { mode: 'rolling', unit: 'bars', inSample: 504, outOfSample: 252, step: 252 };
  return stringify(config);
}

/** Serializes async calls: each runs alone, as each Lambda invocation has its own sandbox. */
function serializer() {
  let tail: Promise<unknown> = Promise.resolve();
  return <T>(run: () => Promise<T>): Promise<T> => {
    const next = tail.then(run);
    tail = next.catch(() => undefined);
    return next;
  };
}

/** The step each Task state runs (the local runner's table), and the Lambda function behind it. */
const STEP_FUNCTION_PREFIX: Record<keyof PipelineSteps, string> = {
  validate: 'WalkForwardValidateFunction',
  checkCache: 'WalkForwardCheckCacheFunction',
  prepare: 'WalkForwardPrepareFunction',
  optimizeWindow: 'WalkForwardOptimizeWindowFunction',
  evaluateWindow: 'WalkForwardEvaluateWindowFunction',
  aggregate: 'WalkForwardAggregateFunction',
  notify: 'WalkForwardNotifyFunction',
};

export async function runPipelineBenchmark(
  log: (line: string) => void,
  combinations = 100_000,
): Promise<PipelineBenchResult> {
  log('bench: pipeline: synthesizing the research stack');
  const { definition, functions } = await synthesizePipeline();
  const fn = (step: keyof PipelineSteps) => {
    const prefix = STEP_FUNCTION_PREFIX[step];
    const ids = Object.keys(functions).filter(
      (id) => id.startsWith(prefix) && /^[0-9A-F]{8}$/.test(id.slice(prefix.length)),
    );
    if (ids.length !== 1)
      throw new Error(`bench pipeline: expected one function ${prefix}*, found ${ids.join(', ') || 'none'}`);
    return functions[ids[0] as string] as (typeof functions)[string];
  };
  const prepareFn = fn('prepare');
  const threshold = Number(prepareFn.environment.PIPELINE_DISTRIBUTED_THRESHOLD);
  if (!Number.isFinite(threshold))
    throw new Error('bench pipeline: the prepare function has no PIPELINE_DISTRIBUTED_THRESHOLD');
  const architectures = new Set(Object.values(functions).flatMap((f) => f.architectures));

  const stateDir = mkdtempSync(join(tmpdir(), 'qs-bench-pipeline-'));
  try {
    const store = new FolderObjectStore(stateDir);
    const steps = createPipelineSteps({
      store,
      notifier: new ListNotifier(),
      now: () => new Date(),
      gitCommit: 'bench',
      distributedThreshold: threshold,
      marketData: async () => new FolderMarketData('data'),
    });
    const invocations: (Invocation & { item?: string })[] = [];
    const alone = serializer();
    const timed = {} as Record<keyof PipelineSteps, (input: never) => Promise<unknown>>;
    let distributed = false;
    for (const step of Object.keys(steps) as (keyof PipelineSteps)[]) {
      const memoryMb = fn(step).memorySize;
      const run = steps[step] as (input: never) => Promise<unknown>;
      timed[step] = (input: never) =>
        alone(async () => {
          const started = process.hrtime.bigint();
          const output = await run(input);
          const localMs = Number(process.hrtime.bigint() - started) / 1e6;
          const item = input as { unit?: number; window?: number };
          invocations.push({
            step,
            memoryMb,
            localMs,
            ...(item.window === undefined ? {} : { item: `${item.unit}-${item.window}` }),
          });
          if (step === 'prepare') {
            const out = output as { distributed: boolean; itemCount: number };
            distributed = out.distributed;
            log(`bench: pipeline: ${out.itemCount} window items, distributed: ${out.distributed}`);
          }
          if (step === 'optimizeWindow')
            log(
              `bench: pipeline: window ${item.unit}-${item.window} optimized in ${(localMs / 1000).toFixed(1)} s`,
            );
          return output;
        });
    }
    const [spy] = loadDataDir('data', ['SPY']) as [BarSeries];
    const input = {
      configYaml: benchConfigYaml(combinations),
      symbols: ['SPY'],
      from: formatBarTime(spy.time[0] as number, false),
      to: formatBarTime(spy.time[spy.time.length - 1] as number, false),
    };
    log(`bench: pipeline: ${combinations} combinations, walk-forward through the local state machine`);
    const started = process.hrtime.bigint();
    const { output } = await runPipelineLocally(definition, input, timed as unknown as PipelineSteps, {
      readItems: async (key) => JSON.parse((await store.getText(key)) ?? 'null') as unknown[],
    });
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const summary = output as PipelineSummary;
    const document = JSON.parse((await store.getText(summary.documentKey)) ?? '{}') as {
      sleeves?: { windows: unknown[] }[];
    };
    const windows = document.sleeves?.[0]?.windows.length ?? 0;

    const estimate = estimateLambdaCost(invocations);
    const perItem = new Map<string, number>();
    for (const i of invocations)
      if (i.item !== undefined) perItem.set(i.item, (perItem.get(i.item) ?? 0) + lambdaMs(i));
    const outside = invocations.filter((i) => i.item === undefined).reduce((ms, i) => ms + lambdaMs(i), 0);
    const backtests = combinations * windows;
    const result: PipelineBenchResult = {
      name: `pipeline: walk-forward of ${combinations} combinations x ${windows} windows, ma-crossover with risk rules on SPY, local Step Functions (Distributed Map)`,
      strategy: 'ma-crossover',
      risk: true,
      symbols: ['SPY'],
      combinations,
      windows,
      backtests,
      distributed,
      seconds,
      estimatedAwsSeconds: (outside + Math.max(0, ...perItem.values())) / 1000,
      lambda: {
        ...estimate,
        architecture: [...architectures].join(', '),
        pricePerGbSecond: LAMBDA_ARM64_PRICES.perGbSecond,
        pricePerRequest: LAMBDA_ARM64_PRICES.perRequest,
        costPerMillionCombinations: (estimate.costUsd * 1e6) / combinations,
        costPerMillionBacktests: backtests === 0 ? 0 : (estimate.costUsd * 1e6) / backtests,
      },
      peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024),
    };
    log(
      `bench: pipeline: ${seconds.toFixed(1)} s locally, ${estimate.invocations} Lambda invocations, ${estimate.gbSeconds.toFixed(0)} GB-s, $${estimate.costUsd.toFixed(4)}; $${result.lambda.costPerMillionCombinations.toFixed(4)} per million combinations`,
    );
    return result;
  } finally {
    rmSync(stateDir, { recursive: true, force: true });
  }
}
