import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { QuantShiftError } from '../core/errors.js';
import type { BarSeries } from '../core/market/types.js';
import type { Metrics } from '../core/metrics/index.js';
import type { EvaluationTask, GridEvaluator } from '../core/research/evaluate.js';
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
      worker.on(
        'message',
        (reply: { id: number; metrics?: Metrics[]; error?: { name: string; message: string } }) =>
          this.settle(worker, reply),
      );
      worker.on('error', (error) => this.fail(worker, error));
      worker.unref();
      this.workers.push(worker);
      this.inFlight.set(worker, new Set());
      this.held.set(worker, new Set());
    }
  }

  async evaluate(task: EvaluationTask): Promise<Metrics[]> {
    if (this.failure) throw this.failure;
    const chunkSize = Math.max(1, Math.ceil(task.combos.length / (this.size * 4)));
    const chunks: Promise<Metrics[]>[] = [];
    for (let from = 0; from < task.combos.length; from += chunkSize) {
      chunks.push(this.submit({ ...task, combos: task.combos.slice(from, from + chunkSize) }));
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

  private settle(
    worker: Worker,
    reply: { id: number; metrics?: Metrics[]; error?: { name: string; message: string } },
  ) {
    const pending = this.pending.get(reply.id);
    this.pending.delete(reply.id);
    const own = this.inFlight.get(worker) as Set<number>;
    own.delete(reply.id);
    if (own.size === 0) worker.unref();
    if (pending !== undefined) {
      if (reply.error) pending.reject(new WorkerPoolError(`${reply.error.name}: ${reply.error.message}`));
      else pending.resolve(reply.metrics as Metrics[]);
    }
    this.dispatch();
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
