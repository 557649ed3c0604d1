import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import {
  benchConfigYaml,
  benchGrid,
  estimateLambdaCost,
  LAMBDA_ARM64_PRICES,
  lambdaMs,
} from '../../../bench/pipeline.js';
import { expandGrid } from '../../../shared/core/research/grid.js';

describe('the pipeline bench’s Lambda estimate', () => {
  it('bills the duration at the function’s memory, scaled up below one vCPU, plus the requests', () => {
    expect(lambdaMs({ step: 'optimizeWindow', memoryMb: 1769, localMs: 1000.2 })).toBe(1001);
    expect(lambdaMs({ step: 'aggregate', memoryMb: 2048, localMs: 500 })).toBe(500);
    // 1024 MB is 1024/1769 of a vCPU: CPU-bound work takes 1769/1024 as long
    expect(lambdaMs({ step: 'evaluateWindow', memoryMb: 1024, localMs: 1024 })).toBe(1769);
    const estimate = estimateLambdaCost([
      { step: 'optimizeWindow', memoryMb: 1769, localMs: 60_000 },
      { step: 'optimizeWindow', memoryMb: 1769, localMs: 30_000 },
      { step: 'evaluateWindow', memoryMb: 1024, localMs: 1024 },
    ]);
    const gbSeconds = 90 * (1769 / 1024) + 1.769 * 1;
    expect(estimate.invocations).toBe(3);
    expect(estimate.gbSeconds).toBeCloseTo(gbSeconds, 9);
    expect(estimate.costUsd).toBeCloseTo(
      gbSeconds * LAMBDA_ARM64_PRICES.perGbSecond + 3 * LAMBDA_ARM64_PRICES.perRequest,
      12,
    );
    expect(estimate.byStep.optimizeWindow).toMatchObject({
      invocations: 2,
      memoryMb: 1769,
      lambdaSeconds: 90,
    });
    expect(estimate.byStep.evaluateWindow?.lambdaSeconds).toBeCloseTo(1.769, 9);
  });

  it('builds a grid of exactly the asked number of combinations, and refuses a number it cannot make', () => {
    expect(expandGrid({ grid: benchGrid(100_000), constraints: [] })).toHaveLength(100_000);
    expect(expandGrid({ grid: benchGrid(1_000), constraints: [] })).toHaveLength(1_000);
    expect(() => benchGrid(1_234)).toThrow(/multiple of 500/);
    const config = parse(benchConfigYaml(1_000)) as { sleeves: { symbols: string[] }[]; watchlist: string[] };
    expect(config.watchlist).toEqual(['SPY']);
    expect(config.sleeves).toHaveLength(1);
  });
});
