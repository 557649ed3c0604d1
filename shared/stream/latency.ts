/**
 * Per-event latency of the stream path: exchange timestamp -> received (the network and Alpaca),
 * received -> decided (the pure risk decision), received -> order sent (the exit or stop POST is
 * issued). Samples are kept per flush window; {@link LatencyRecorder.flush} returns their p50 and
 * p99 (nearest rank) and starts a new window.
 */
export type LatencyStage = 'exchangeToReceived' | 'decide' | 'order';

export interface LatencySummary {
  readonly count: number;
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
  /** Every sample of the window (orders are few: all of them go to CloudWatch). */
  readonly samples: readonly number[];
}

/** The nearest-rank percentile `p` (0..100) of sorted values. */
function rank(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.max(1, Math.ceil((p / 100) * sorted.length)) - 1] as number;
}

export class LatencyRecorder {
  private windows: Record<LatencyStage, number[]> = { exchangeToReceived: [], decide: [], order: [] };

  /** Adds a sample in milliseconds (negative or non-finite samples, a skewed clock, are ignored). */
  record(stage: LatencyStage, ms: number): void {
    if (Number.isFinite(ms) && ms >= 0) this.windows[stage].push(ms);
  }

  /** The window's summary per stage; the next window starts empty. */
  flush(): Record<LatencyStage, LatencySummary> {
    const out = {} as Record<LatencyStage, LatencySummary>;
    for (const stage of Object.keys(this.windows) as LatencyStage[]) {
      const samples = this.windows[stage];
      const sorted = Float64Array.from(samples).sort();
      const values = Array.from(sorted);
      out[stage] = {
        count: samples.length,
        p50: rank(values, 50),
        p99: rank(values, 99),
        max: values[values.length - 1] ?? 0,
        samples,
      };
    }
    this.windows = { exchangeToReceived: [], decide: [], order: [] };
    return out;
  }
}
