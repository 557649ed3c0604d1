/**
 * Worker-thread entry of the grid evaluator pool: evaluates one chunk of combinations per message.
 * The series come once (a message's `add`) and are kept for the thread's life; tasks name them by key.
 */
import { parentPort } from 'node:worker_threads';
import { QuantShiftError } from '../core/errors.js';
import type { BarSeries } from '../core/market/types.js';
import { evaluateCombos } from '../core/research/evaluate.js';
import type { ChunkMessage } from './pool.js';

if (parentPort === null) throw new Error('shared/research/worker.ts must run as a worker thread');
const port = parentPort;

/** A task named a series this worker was never sent (a bug in the pool). */
class UnknownSeriesError extends QuantShiftError {}

const held = new Map<number, BarSeries>();

port.on('message', (message: ChunkMessage) => {
  try {
    for (const { key, series } of message.add) held.set(key, series);
    const series = message.task.series.map((key) => {
      const found = held.get(key);
      if (found === undefined) throw new UnknownSeriesError(`series ${key} was never sent to this worker`);
      return found;
    });
    port.postMessage({ id: message.id, metrics: evaluateCombos({ ...message.task, series }) });
  } catch (error) {
    const e = error as Error;
    port.postMessage({ id: message.id, error: { name: e.name, message: e.message } });
  }
});
