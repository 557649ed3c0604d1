/**
 * The stream benchmark's local servers in a worker thread (bench/stream.ts): the paper broker and
 * dynalite answer from their own event loop, so their work is not counted in the consumer's
 * latency, as Alpaca's and DynamoDB's are not in production. Messages: `{ kind: 'setTime', time }`
 * moves the paper broker's clock, `{ kind: 'close' }` stops the servers; the worker answers
 * `{ kind: 'ready', env }` once they listen, `{ kind: 'done' }` after each command, and
 * `{ kind: 'failed', message }` when one fails.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { startLocalLiveStack } from '../shared/adapters/local/live-stack.js';

const port = parentPort;
if (port === null) throw new Error('bench/stream-servers.ts runs as a worker thread');
const options = workerData as { dataDir: string; startTime: string; configPath: string };
try {
  const stack = await startLocalLiveStack({ ...options, withCache: false });
  port.on('message', (message: { kind: 'setTime'; time: string } | { kind: 'close' }) => {
    const run = async () => {
      if (message.kind === 'setTime') stack.alpaca.setTime(message.time);
      else await stack.close();
    };
    run().then(
      () => port.postMessage({ kind: 'done' }),
      (error: unknown) => port.postMessage({ kind: 'failed', message: (error as Error).message }),
    );
  });
  port.postMessage({ kind: 'ready', env: stack.env });
} catch (error) {
  port.postMessage({ kind: 'failed', message: (error as Error).message });
}
