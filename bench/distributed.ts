import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { initBackend } from '../src/node/backend.js';
import { WorkerPool } from '../src/node/worker-pool.js';
import { clearWorkerModels } from '../src/models/pool-model.js';
import { buildSuite } from '../src/robustness/suites.js';
import { evaluateRobustness } from '../src/robustness/evaluate.js';
import { ROBUST } from '../src/robustness/schedule.js';
import { startRedisServer } from '../test/fixtures/redis.js';
import { QueuePool } from '../src/node/distributed/queue-pool.js';
import { referenceSetup } from './reference-model.js';
import { machine, round } from './measure.js';

const N = 128;
const BATCH = 16;
const EPS = 0.1;
const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * Issue 10: the quick suite (Linf eps 0.1, 128 mnist test images, batches of
 * 16: 8 jobs) on the reference small-cnn through a local redis-server and 1
 * or 2 `advlab worker` processes of one thread each, next to the same
 * evaluation on a local 2-thread pool; images per second, the speedup of the
 * second worker, and the coordinator's overhead per job: its own time spent
 * encoding, queueing and decoding, and, with one worker (jobs back to back),
 * the wall time per job not spent computing (the hand-off through Redis).
 * Needs /usr/bin/redis-server (Debian's redis-server package); skipped without.
 */
export async function benchDistributed(log: (s: string) => void) {
  if (spawnSync('redis-server', ['--version']).status !== 0) {
    log('skipped: redis-server is not installed (apt-get install redis-server)');
    return { skipped: 'redis-server not installed' };
  }
  const backend = await initBackend({ backend: 'wasm' });
  // Other processes on the machine change the figures (a second worker cannot help when the cores are busy elsewhere): record the load.
  const loadBefore = loadavg()[0];
  const redis = await startRedisServer();
  const url = redis.url;
  const workers: ChildProcess[] = [];
  const { model, classifier, images } = await referenceSetup(backend, N, log);
  const suite = buildSuite({ suite: 'quick', norm: 'linf', numClasses: 10 });
  // Warm-up (wasm compilation, each worker building the model) on the first batches only.
  const warmUp = (pool: QueuePool | WorkerPool, batches: number) =>
    evaluateRobustness(classifier, { ...images, images: images.images.slice(0, batches * BATCH * 784), labels: images.labels.slice(0, batches * BATCH), count: batches * BATCH }, { suite, eps: EPS, seed: 1, batchSize: BATCH, keepImages: false, pool });
  const evaluate = async (pool?: QueuePool | WorkerPool) => {
    const t0 = performance.now();
    const e = await evaluateRobustness(classifier, images, { suite, eps: EPS, seed: 0, batchSize: BATCH, keepImages: false, ...(pool ? { pool } : {}) });
    return { seconds: (performance.now() - t0) / 1000, robust: Array.from(e.brokenBy).filter((b) => b === ROBUST).length, brokenBy: e.brokenBy };
  };
  try {
    const local = await WorkerPool.start({ size: 2, backend: 'wasm' });
    let reference;
    try {
      await warmUp(local, 2);
      reference = await evaluate(local);
    } finally {
      await local.close();
      await clearWorkerModels();
    }
    log(`local 2-thread pool: ${round(N / reference.seconds, 2)} images/s, robust ${reference.robust}/${N}`);
    const runs: Record<string, unknown> = {};
    for (const k of [1, 2]) {
      while (workers.length < k) workers.push(await startWorker(url));
      const pool = await QueuePool.connect({ url, runId: `bench-${k}-${Date.now()}` });
      try {
        await warmUp(pool, k);
        const before = pool.stats();
        const r = await evaluate(pool);
        const s = pool.stats();
        const jobs = s.jobs - before.jobs;
        const workerSeconds = (s.workerMs - before.workerMs) / 1000;
        const identical = r.brokenBy.every((b, i) => b === reference.brokenBy[i]);
        runs[`workers${k}`] = {
          workers: k,
          wallSeconds: round(r.seconds, 2),
          imagesPerSecond: round(N / r.seconds, 2),
          jobs,
          workerSecondsPerJob: round(workerSeconds / jobs, 3),
          coordinatorMsPerJob: round((s.coordinatorMs - before.coordinatorMs) / jobs, 2),
          ...(k === 1 ? { handoffMsPerJob: round(((r.seconds - workerSeconds) * 1000) / jobs, 1) } : {}),
          identicalToLocal: identical,
        };
        log(`${k} worker${k > 1 ? 's' : ''}: ${round(N / r.seconds, 2)} images/s over ${jobs} jobs, coordinator ${round((s.coordinatorMs - before.coordinatorMs) / jobs, 2)} ms/job, identical to local: ${identical}`);
      } finally {
        await pool.close();
      }
    }
    const one = runs.workers1 as { imagesPerSecond: number };
    const two = runs.workers2 as { imagesPerSecond: number };
    return {
      machine: machine(),
      backend: backend.name,
      workload: { model: 'small-cnn (advlab train defaults)', suite: 'quick', norm: 'linf', eps: EPS, images: N, batch: BATCH, robustAccuracy: reference.robust / N },
      local2Threads: { wallSeconds: round(reference.seconds, 2), imagesPerSecond: round(N / reference.seconds, 2) },
      ...runs,
      speedup2Workers: round(two.imagesPerSecond / one.imagesPerSecond, 2),
      loadAverage1m: { before: round(loadBefore, 2), after: round(loadavg()[0], 2) },
      note: 'worker processes of 1 thread each on the same 2-core machine as the coordinator and Redis; a load average above the core count means other processes took CPU time',
    };
  } finally {
    await Promise.all(workers.map(stopWorker));
    classifier.dispose();
    model.dispose();
    redis.stop();
  }
}

/** An `advlab worker` process (through tsx, from the source), resolved once it takes jobs. */
function startWorker(url: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/run.ts', 'worker', '--queue', url, '--threads', '1', '--backend', 'wasm'], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      if (/ready: /.test(out)) resolve(child);
    });
    child.once('exit', (code) => reject(new Error(`advlab worker exited with code ${code}: ${out}`)));
  });
}

function stopWorker(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}
