// `npm run bench`: the benchmarks as production runs the code, from a cached esbuild bundle of
// bench/run.ts (shared/research/bundle-cache.mjs, as `npm start` runs the CLI and CDK bundles the
// Lambda code; rebuilt when any source file changed, the build's time reported), not through tsx,
// whose `keepNames` wraps every named function and closure in a `__name(...)` call and whose on-the-
// fly compiled modules left V8's on-stack compilation of the MA kernel on a slow path in some
// processes (docs/engine.md, "Speed"). The processes and threads the bench starts run bundled too
// (bench/entries.ts). `QUANTSHIFT_BENCH_BUNDLE=0` runs the sources through tsx instead (debugging:
// source lines in stack traces), with the same JSON.
// `node bench/start.mjs threads-cpu [threads] [passes] [warm]` runs bench/threads-cpu.ts the same way
// (the CPU time per thread of the bench's worker-thread entries: docs/engine.md, "Two threads, the
// third round").
import { bundledUrl, sourceBundle } from '../shared/research/bundle-cache.mjs';

const tool = process.argv[2] === 'threads-cpu' ? process.argv.splice(2, 1)[0] : undefined;
const entry = tool ?? 'run';
const bundle = await bundledUrl(
  sourceBundle(`bench-${entry}`, `bench/${entry}.ts`),
  'QUANTSHIFT_BENCH_BUNDLE',
  (line) => process.stderr.write(`bench: ${line}\n`),
);
if (bundle !== undefined) {
  await import(bundle.href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import(`./${entry}.ts`);
}
