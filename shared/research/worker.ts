/**
 * Worker-thread entry of the grid evaluator pool: evaluates one chunk of combinations per message.
 */
import { parentPort } from 'node:worker_threads';
import { type EvaluationTask, evaluateCombos } from '../core/research/evaluate.js';

if (parentPort === null) throw new Error('shared/research/worker.ts must run as a worker thread');
const port = parentPort;

port.on('message', (message: { id: number; task: EvaluationTask }) => {
  try {
    port.postMessage({ id: message.id, metrics: evaluateCombos(message.task) });
  } catch (error) {
    const e = error as Error;
    port.postMessage({ id: message.id, error: { name: e.name, message: e.message } });
  }
});
