/**
 * The stream benchmark's local servers in worker threads (bench/stream.ts): one thread runs the
 * paper broker (`role: 'broker'`), another dynalite (`role: 'state'`), each answering from its own
 * event loop, so their work is not counted in the consumer's latency and the two do not queue
 * behind each other, as Alpaca and DynamoDB do not in production. Messages:
 * `{ kind: 'setTime', time }` moves the paper broker's clock, `{ kind: 'close' }` stops the
 * servers; the worker answers `{ kind: 'ready', env }` once they listen, `{ kind: 'done' }` after
 * each command, and `{ kind: 'failed', message }` when one fails.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { startLocalBroker, startLocalStateAndCache } from '../shared/adapters/local/live-stack.js';

const port = parentPort;
if (port === null) throw new Error('bench/stream-servers.ts runs as a worker thread');
const options = workerData as {
  role: 'broker' | 'state';
  dataDir: string;
  startTime: string;
  configPath: string;
};
try {
  const broker = options.role === 'broker' ? await startLocalBroker(options) : undefined;
  const state = options.role === 'state' ? await startLocalStateAndCache({ withCache: false }) : undefined;
  port.on('message', (message: { kind: 'setTime'; time: string } | { kind: 'close' }) => {
    const run = async () => {
      if (message.kind === 'setTime') broker?.alpaca.setTime(message.time);
      else {
        await broker?.alpaca.close();
        await state?.close();
      }
    };
    run().then(
      () => port.postMessage({ kind: 'done' }),
      (error: unknown) => port.postMessage({ kind: 'failed', message: (error as Error).message }),
    );
  });
  port.postMessage({ kind: 'ready', env: { ...state?.env, ...broker?.env } });
} catch (error) {
  port.postMessage({ kind: 'failed', message: (error as Error).message });
}
