import type { BarSeries } from '../market/types.js';

/**
 * Redis (Upstash) as an accelerator: losing it costs speed, never correctness. Nothing is kept
 * only here.
 */
export interface Cache {
  /** Cached daily bars for a symbol and span, or undefined. */
  getBars(key: string): Promise<BarSeries | undefined>;
  putBars(key: string, series: BarSeries, ttlSeconds: number): Promise<void>;
  /**
   * Takes the lock `name` for `ttlSeconds` (a lock per trading step and day). Returns a release
   * function, or null when someone else holds it. Releasing only deletes the lock if it is still ours.
   * With `owner` (e.g. the step and its scheduled time), the lock is held in that owner's name and is
   * reentrant for it: the same owner finds it taken by itself and gets it again (its TTL renewed), so
   * a retry of the same run, or an answer lost after the lock was set, never locks the run out.
   */
  acquireLock(name: string, ttlSeconds: number, owner?: string): Promise<(() => Promise<void>) | null>;
  /**
   * Rate limiter in front of the broker (Alpaca allows 200 requests a minute): takes one slot of
   * `limit` per `windowSeconds` for `key`; returns 0 when allowed, else the milliseconds to wait.
   */
  takeRateSlot(key: string, limit: number, windowSeconds: number): Promise<number>;
  /** The latest signal snapshot, for the dashboard and for humans. */
  putSnapshot(key: string, value: unknown, ttlSeconds: number): Promise<void>;
  getSnapshot<T>(key: string): Promise<T | undefined>;
}
