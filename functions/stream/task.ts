/**
 * The entry of the stream task (ECS Fargate, bundled with esbuild as the functions are): not a
 * Lambda handler, a long-running process. See docs/streaming.md.
 */
import { runStreamProcess } from '../../shared/stream/main.js';

process.exitCode = await runStreamProcess().catch((error: unknown) => {
  process.stderr.write(`stream: ${(error as Error).message}\n`);
  return 1;
});
