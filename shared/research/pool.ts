import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { QuantShiftError } from '../core/errors.js';
import type { BarSeries } from '../core/market/types.js';
import type { Metrics } from '../core/metrics/index.js';
import type { EvaluationTask, GridEvaluator } from '../core/research/evaluate.js';
import { unpackMetrics } from './packed-metrics.js';
import { workerScript } from './worker-bundle.js';

/** A worker thread failed, or a task failed inside one. */
export class WorkerPoolError extends QuantShiftError {}

/**
 * One chunk as a worker receives it: the task with its series as keys, and the series this worker
 * has not been sent yet (each series crosses to a worker once, however many tasks use it; the
 * walk-forward sends the same series with a different span per window).
 */
export interface ChunkMessage {
  readonly id: number;
  readonly task: Omit<EvaluationTask, 'series'> & { readonly series: readonly number[] };
  readonly add: readonly { readonly key: number; readonly series: BarSeries }[];
}

/** A worker's reply to a chunk: its metrics packed (`packMetrics`, the buffer transferred), or its error. */
export interface ChunkReply {
  readonly id: number;
  readonly packed?: Float64Array;
  readonly error?: { readonly name: string; readonly message: string };
}

interface Pending {
  resolve: (metrics: Metrics[]) => void;
  reject: (error: Error) => void;
}

/**
 * Chunks sent ahead to each worker: it starts its next chunk from its own message queue, without
 * waiting for the calling thread to see the last reply (which may be busy with other work, as the
 * research job is with the report while the walk-forward runs).
 */
const CHUNKS_IN_FLIGHT = 2;

/** No chunk is cut smaller than this many combinations (a chunk's fixed costs: the message, the series' setup). */
const MIN_CHUNK = 16;

/**
 * The sizes of a task's chunks, in order: each a quarter of what remains per worker, so they shrink
 * as the task drains (guided self-scheduling), down to {@link MIN_CHUNK}. The big first chunks keep
 * the number of messages and of per-chunk setups small; the small last ones keep the workers
 * finishing together (with equal fixed chunks, a worker could sit idle for up to two chunks of an
 * eighth of the task each while the other drained its queue).
 */
export function chunkSizes(combinations: number, workers: number): number[] {
  const sizes: number[] = [];
  for (let left = combinations; left > 0; ) {
    const size = Math.min(left, Math.max(MIN_CHUNK, Math.ceil(left / (workers * 4))));
    sizes.push(size);
    left -= size;
  }
  return sizes;
}

/**
 * Spreads each task's combinations over worker threads in fixed chunks and reassembles the results
 * in combination order, so results are identical whatever the number of workers. The threads start
 * once, with the pool, and keep every series they were sent until `close()`.
 */
export class WorkerPoolEvaluator implements GridEvaluator {
  private readonly workers: Worker[] = [];
  private readonly queue: { id: number; task: EvaluationTask; pending: Pending }[] = [];
  private readonly pending = new Map<number, Pending>();
  private readonly inFlight = new Map<Worker, Set<number>>();
  /** Each series' key, given when a task first uses it. */
  private readonly seriesKeys = new WeakMap<BarSeries, number>();
  /** The series keys each worker holds. */
  private readonly held = new Map<Worker, Set<number>>();
  private nextId = 1;
  private nextSeriesKey = 1;
  private failure: Error | undefined;

  constructor(readonly size: number = availableParallelism()) {
    const script = workerScript();
    for (let i = 0; i < size; i++) {
      const worker = new Worker(
        script.url,
        script.execArgv === undefined ? {} : { execArgv: script.execArgv },
      );
      worker.on('message', (reply: ChunkReply) => this.settle(worker, reply));
      worker.on('error', (error) => this.fail(worker, error));
      worker.unref();
      this.workers.push(worker);
      this.inFlight.set(worker, new Set());
      this.held.set(worker, new Set());
    }
  }

  async evaluate(task: EvaluationTask): Promise<Metrics[]> {
    if (this.failure) throw this.failure;
    const chunks: Promise<Metrics[]>[] = [];
    let from = 0;
    for (const size of chunkSizes(task.combos.length, this.size)) {
      chunks.push(this.submit({ ...task, combos: task.combos.slice(from, from + size) }));
      from += size;
    }
    return (await Promise.all(chunks)).flat();
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }

  private submit(task: EvaluationTask): Promise<Metrics[]> {
    return new Promise((resolve, reject) => {
      if (this.failure) {
        reject(this.failure);
        return;
      }
      this.queue.push({ id: this.nextId++, task, pending: { resolve, reject } });
      this.dispatch();
    });
  }

  /** Sends queued chunks to the least loaded workers, up to {@link CHUNKS_IN_FLIGHT} each. */
  private dispatch(): void {
    while (this.queue.length > 0) {
      let target: Worker | undefined;
      let load = CHUNKS_IN_FLIGHT;
      for (const worker of this.workers) {
        const count = (this.inFlight.get(worker) as Set<number>).size;
        if (count < load) {
          target = worker;
          load = count;
        }
      }
      if (target === undefined) return;
      const { id, task, pending } = this.queue.shift() as (typeof this.queue)[number];
      this.pending.set(id, pending);
      (this.inFlight.get(target) as Set<number>).add(id);
      target.ref();
      target.postMessage(this.message(target, id, task));
    }
  }

  /** The chunk as `worker` receives it, with the series it does not hold yet. */
  private message(worker: Worker, id: number, task: EvaluationTask): ChunkMessage {
    const held = this.held.get(worker) as Set<number>;
    const add: { key: number; series: BarSeries }[] = [];
    const keys = task.series.map((series) => {
      let key = this.seriesKeys.get(series);
      if (key === undefined) {
        key = this.nextSeriesKey++;
        this.seriesKeys.set(series, key);
      }
      if (!held.has(key)) {
        held.add(key);
        add.push({ key, series });
      }
      return key;
    });
    return { id, task: { ...task, series: keys }, add };
  }

  private settle(worker: Worker, reply: ChunkReply) {
    const pending = this.pending.get(reply.id);
    this.pending.delete(reply.id);
    const own = this.inFlight.get(worker) as Set<number>;
    own.delete(reply.id);
    if (own.size === 0) worker.unref();
    // The next chunk goes out before this one's metrics are unpacked, so the worker is not kept waiting.
    this.dispatch();
    if (pending !== undefined) {
      if (reply.error) pending.reject(new WorkerPoolError(`${reply.error.name}: ${reply.error.message}`));
      else pending.resolve(unpackMetrics(reply.packed as Float64Array));
    }
  }

  private fail(worker: Worker, error: Error) {
    this.failure = new WorkerPoolError(`worker thread failed: ${error.message}`, { cause: error });
    const own = this.inFlight.get(worker) as Set<number>;
    for (const id of own) {
      this.pending.get(id)?.reject(this.failure);
      this.pending.delete(id);
    }
    own.clear();
    worker.unref();
    for (const { pending } of this.queue.splice(0)) pending.reject(this.failure);
  }
}
