import { loadavg } from 'node:os';
import { initBackend } from '../src/node/backend.js';
import { WorkerPool } from '../src/node/worker-pool.js';
import { splitRanges, type TaskRef } from '../src/engine/task-pool.js';
import { buildModel } from '../src/models/zoo.js';
import { clearWorkerModels, shareModel } from '../src/models/pool-model.js';
import { Rng } from '../src/util/rng.js';
import { TASKS_URL, pgdLinf, type PgdPayload } from '../test/fixtures/pool-tasks.js';
import { machine, round } from './measure.js';
import { concatArrays } from '../src/util/arrays.js';

const BATCH = 128;
const STEPS = 40;
const EPS = 0.3;
const STEP = 0.01;
const PIXELS = 28 * 28;

/** Options of {@link benchPool} (defaults are what `npm run bench` records). */
export interface BenchPoolOptions {
  /** Timed runs per configuration (median reported). */
  repeats?: number;
}

/**
 * L-inf PGD-40 (Madry et al., ICLR 2018; eps 0.3, step 0.01, no random start)
 * on small-cnn at batch 128 with random inputs, on the wasm backend:
 * - one worker: the whole batch in a 1-worker pool;
 * - two workers: two halves of the batch in parallel in a 2-worker pool;
 * - in process: the same task function called in the main thread.
 * All three run the same code and must give bit-identical images (checked).
 *
 * The three are timed round-robin (one run of each per round) so that load from
 * other processes drifting over the minutes hits them alike. Each first gets
 * an untimed 1-step run (model build in the worker, wasm warm-up).
 *
 * `cpuPerWall` (process CPU time over wall time) tells whether two workers
 * really got two cores: near 1 means the OS gave this process one core (other
 * busy processes; Linux autogroup shares CPU per session), so `speedup` then
 * says nothing about the pool.
 */
export async function benchPool(log: (s: string) => void, { repeats = 3 }: BenchPoolOptions = {}) {
  const loadBefore = loadavg().map((l) => round(l, 2));
  const backend = await initBackend({ backend: 'wasm' });
  const model = buildModel('small-cnn', { inputShape: [28, 28, 1], numClasses: 10, seed: 0 });
  const shared = await shareModel(model);
  model.dispose();
  const rng = new Rng(0);
  const x = Float32Array.from({ length: BATCH * PIXELS }, () => rng.next());
  const labels = Int32Array.from({ length: BATCH }, () => rng.int(10));
  const pgd: TaskRef = { module: TASKS_URL, name: 'pgdLinf' };
  const payloads = (parts: number, steps = STEPS): PgdPayload[] =>
    splitRanges(BATCH, parts).map(([s, e]) => ({
      model: shared,
      x: x.slice(s * PIXELS, e * PIXELS),
      labels: labels.slice(s, e),
      eps: EPS,
      step: STEP,
      steps,
    }));
  const move = (p: PgdPayload) => [p.x.buffer, p.labels.buffer];

  const startPool = async (size: number) => {
    const t0 = performance.now();
    const pool = await WorkerPool.start({ size, backend: 'wasm', kernels: 'advlab' });
    const startMs = round(performance.now() - t0);
    // One payload per worker (all idle): each builds its model and warms up.
    await pool.run(pgd, payloads(size, 1), move);
    log(`pool.${size}-worker start ${startMs} ms (${pool.workers.map((w) => `${w.name}/${w.threads} thread`).join(', ')})`);
    return { pool, startMs };
  };
  const one = await startPool(1);
  const two = await startPool(2);
  await pgdLinf({ ...payloads(1, 1)[0] });

  const configs = {
    oneWorker: async () => concatArrays(await one.pool.run<Float32Array, PgdPayload>(pgd, payloads(1), move), Float32Array),
    twoWorkers: async () => concatArrays(await two.pool.run<Float32Array, PgdPayload>(pgd, payloads(2), move), Float32Array),
    inProcess: async () => pgdLinf(payloads(1)[0]),
  };
  type Name = keyof typeof configs;
  const runs: Record<Name, number[]> = { oneWorker: [], twoWorkers: [], inProcess: [] };
  // CPU time of the whole process (all threads) per wall time: ~2 when two workers
  // really run in parallel, ~1 when the OS grants this process one core (busy machine).
  const cpuPerWall: Record<Name, number[]> = { oneWorker: [], twoWorkers: [], inProcess: [] };
  const images: Partial<Record<Name, Float32Array>> = {};
  try {
    for (let r = 0; r < repeats; r++) {
      for (const name of Object.keys(configs) as Name[]) {
        const c0 = process.cpuUsage();
        const t0 = performance.now();
        images[name] = await configs[name]();
        const ms = performance.now() - t0;
        const cpu = process.cpuUsage(c0);
        runs[name].push(ms);
        cpuPerWall[name].push((cpu.user + cpu.system) / 1000 / ms);
        log(`pool.${name} run ${r + 1}/${repeats}: ${round(ms)} ms, cpu/wall ${round(cpuPerWall[name].at(-1)!, 2)}`);
      }
    }
  } finally {
    await Promise.all([one.pool.close(), two.pool.close()]);
    await clearWorkerModels();
  }
  const oneWorkerMs = median(runs.oneWorker);
  const twoWorkersMs = median(runs.twoWorkers);
  const inProcessMs = median(runs.inProcess);
  const same = (a?: Float32Array, b?: Float32Array) => a != null && b != null && a.length === b.length && a.every((v, i) => Object.is(v, b[i]));
  const result = {
    machine: machine(),
    loadAverage: { before: loadBefore, after: loadavg().map((l) => round(l, 2)) },
    model: 'small-cnn',
    attack: 'pgd-linf',
    batch: BATCH,
    steps: STEPS,
    eps: EPS,
    step: STEP,
    backend: backend.name,
    kernels: backend.kernels,
    oneWorkerMs,
    twoWorkersMs,
    inProcessMs,
    speedup: round(oneWorkerMs / twoWorkersMs, 2),
    speedupOverInProcess: round(inProcessMs / twoWorkersMs, 2),
    repeats,
    cpuPerWall: Object.fromEntries(Object.entries(cpuPerWall).map(([k, v]) => [k, round(median(v, 2), 2)])),
    runsMs: Object.fromEntries(Object.entries(runs).map(([k, v]) => [k, v.map((t) => round(t))])),
    startupMs: { oneWorkerPool: one.startMs, twoWorkerPool: two.startMs },
    /** Bytes copied to workers per PGD call besides the images: the model topology (weights are shared). */
    modelMessageBytes: JSON.stringify(shared.artifacts.modelTopology).length,
    sharedWeightBytes: (shared.artifacts.weightData as unknown as SharedArrayBuffer).byteLength,
    identicalResults: same(images.oneWorker, images.inProcess) && same(images.twoWorkers, images.inProcess),
  };
  log(
    `pool: PGD-${STEPS} batch ${BATCH}: 1 worker ${oneWorkerMs} ms, 2 workers ${twoWorkersMs} ms (x${result.speedup}), ` +
      `in process ${inProcessMs} ms; identical results: ${result.identicalResults}; ` +
      `cpu/wall of 2 workers ${result.cpuPerWall.twoWorkers}; load ${loadBefore.join(' ')}`,
  );
  return result;
}


function median(xs: number[], digits = 1): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return round(s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2, digits);
}
