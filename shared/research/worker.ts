/**
 * Worker-thread entry of the grid evaluator pool: evaluates one chunk of combinations per message.
 * The series come once (a message's `add`) and are kept for the thread's life; tasks name them by key.
 */
import { parentPort } from 'node:worker_threads';
import { QuantShiftError } from '../core/errors.js';
import type { BarSeries } from '../core/market/types.js';
import { evaluateCombos } from '../core/research/evaluate.js';
import { packMetrics } from './packed-metrics.js';
import type { ChunkMessage, ChunkReply } from './pool.js';

if (parentPort === null) throw new Error('shared/research/worker.ts must run as a worker thread');
const port = parentPort;

/** A task named a series this worker was never sent (a bug in the pool). */
class UnknownSeriesError extends QuantShiftError {}

const held = new Map<number, BarSeries>();
/** One array per list of keys, so every chunk of a portfolio passes the same array (its calendar is shared). */
const lists = new Map<string, readonly BarSeries[]>();

function seriesOf(keys: readonly number[]): readonly BarSeries[] {
  const id = keys.join(',');
  let list = lists.get(id);
  if (list === undefined) {
    list = keys.map((key) => {
      const found = held.get(key);
      if (found === undefined) throw new UnknownSeriesError(`series ${key} was never sent to this worker`);
      return found;
    });
    lists.set(id, list);
  }
  return list;
}

port.on('message', (message: ChunkMessage) => {
  try {
    for (const { key, series } of message.add) held.set(key, series);
    const series = seriesOf(message.task.series);
    // The metrics go back as one transferred buffer, not objects to serialize (see packed-metrics.ts).
    const packed = packMetrics(evaluateCombos({ ...message.task, series }));
    port.postMessage({ id: message.id, packed } satisfies ChunkReply, [packed.buffer as ArrayBuffer]);
  } catch (error) {
    const e = error as Error;
    port.postMessage({ id: message.id, error: { name: e.name, message: e.message } } satisfies ChunkReply);
  }
});
