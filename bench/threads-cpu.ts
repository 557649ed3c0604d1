/**
 * Where the bench's worker-thread entries spend their CPU, per thread (bench/fast.ts: 20,000
 * Bollinger combinations on SPY through `WorkerPoolEvaluator` on one and on two threads, each thread
 * warmed first): `node bench/start.mjs threads-cpu [threads] [passes] [warm]` (docs/engine.md, "Two
 * threads, the third round"), `threads` a list (default `1,2`), `warm` the combinations each thread
 * runs before the clock (default the bench's `WARM_PER_THREAD`). For each timed run: the wall time,
 * the process's CPU time and, from `/proc/self/task/<tid>/stat` (Linux), that of the worker threads
 * (and how often they blocked), of V8's helper threads (GC, the optimizing compiler) and of the main
 * thread, and the metrics' digest. With `MARK=1` the timed run is bracketed by `MARK` lines on
 * stdout, to cut V8's traces (`--trace-opt`, `--trace-gc`) to it. On a shared machine wall time
 * means little; the CPU times give the bound 2 x (one worker's CPU) / (the two-thread run's whole
 * CPU), which is what a quiet 2-core machine can give at best.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { loadDataDir } from '../shared/adapters/fs/bars.js';
import type { BarSeries } from '../shared/core/market/types.js';
import { WorkerPoolEvaluator } from '../shared/research/pool.js';
import { bigGrid, FAST_BASE_PARAMS, FAST_OPTIONS, metricsDigest } from './big-sweep.js';
import { spreadOver, WARM_PER_THREAD } from './fast.js';

const threadCounts = (process.argv[2] ?? '1,2').split(',').map(Number);
const passes = Number(process.argv[3] ?? 1);
const warm = Number(process.argv[4] ?? WARM_PER_THREAD);
const mark = process.env.MARK === '1';
/** Clock ticks per second of /proc's times (USER_HZ, 100 on Linux). */
const TICKS = 100;

/**
 * Each thread's CPU seconds (user + system) and voluntary context switches (the times it blocked:
 * waiting for a message, or for GC helpers to finish their part), by thread id. Every thread of
 * node is called "node".
 */
function threadCpu(): Map<number, { cpu: number; waits: number }> {
  const out = new Map<number, { cpu: number; waits: number }>();
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const status = readFileSync(`/proc/self/task/${tid}/status`, 'utf8');
      const waits = Number(/^voluntary_ctxt_switches:\s*(\d+)/m.exec(status)?.[1] ?? 0);
      out.set(Number(tid), { cpu: (Number(fields[11]) + Number(fields[12])) / TICKS, waits });
    } catch {
      // The thread ended between the listing and the read.
    }
  }
  return out;
}

const spy = loadDataDir('data', ['SPY'])[0] as BarSeries;
const big = bigGrid();
const task = {
  series: [spy],
  strategy: 'bollinger',
  baseParams: FAST_BASE_PARAMS,
  combos: big,
  options: FAST_OPTIONS,
};

for (let p = 0; p < passes; p++) {
  for (const threads of threadCounts) {
    const before = new Set(threadCpu().keys());
    const pool = new WorkerPoolEvaluator(threads);
    await pool.evaluate({ ...task, combos: spreadOver(big, warm * threads) });
    if (mark) process.stdout.write(`MARK start ${threads}\n`);
    const cpu0 = process.cpuUsage();
    const t0 = threadCpu();
    const started = process.hrtime.bigint();
    const metrics = await pool.evaluate(task);
    const wall = Number(process.hrtime.bigint() - started) / 1e9;
    const t1 = threadCpu();
    const cpu = process.cpuUsage(cpu0);
    if (mark) process.stdout.write(`MARK end ${threads}\n`);
    await pool.close();
    // The workers: of the threads the pool started, those that have worked most.
    const workers = new Set(
      [...t1]
        .filter(([tid]) => !before.has(tid))
        .sort((a, b) => b[1].cpu - a[1].cpu)
        .slice(0, threads)
        .map(([tid]) => tid),
    );
    const share = { main: 0, helpers: 0, workers: 0 };
    let waits = 0;
    for (const [tid, now] of t1) {
      const used = now.cpu - (t0.get(tid)?.cpu ?? 0);
      if (tid === process.pid) share.main += used;
      else if (workers.has(tid)) {
        share.workers += used;
        waits += now.waits - (t0.get(tid)?.waits ?? 0);
      } else share.helpers += used;
    }
    console.log(
      `${threads} thread(s): wall ${wall.toFixed(3)} s, process CPU ${((cpu.user + cpu.system) / 1e6).toFixed(3)} s; ` +
        `main ${share.main.toFixed(2)}, helpers ${share.helpers.toFixed(2)}, workers ${share.workers.toFixed(2)} (blocked ${waits} times); digest ${metricsDigest(metrics)}`,
    );
  }
}
