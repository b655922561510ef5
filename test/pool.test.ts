/**
 * WorkerPool: splitting attack batches across worker threads, each with its
 * own wasm backend.
 *
 * Pooled results are compared with the in-process ones for EXACT equality: the
 * tasks sum the per-example losses (so an example's gradient does not depend on
 * its batch), every op on the path is per-example, and the wasm kernels reduce
 * over an example in an order that does not depend on the batch size. So the
 * same example gives the same float32 bits in a batch of 16 or in a half of it,
 * on the same backend in another thread.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { tf } from '../src/engine/tf.js';
import { initBackend } from '../src/node/backend.js';
import { WorkerPool } from '../src/node/worker-pool.js';
import { splitRanges, type TaskRef } from '../src/engine/task-pool.js';
import { buildModel } from '../src/models/zoo.js';
import { clearWorkerModels, shareModel, workerModelCount, type SharedModel } from '../src/models/pool-model.js';
import { InputError, isInputError } from '../src/errors.js';
import { Rng } from '../src/util/rng.js';
import { TASKS_URL, inputGradient, pgdLinf, type BatchPayload } from './fixtures/pool-tasks.js';
import { concatArrays } from '../src/util/arrays.js';

const PIXELS = 28 * 28;
const task = (name: string): TaskRef => ({ module: TASKS_URL, name });

let pool: WorkerPool;
let model: ReturnType<typeof buildModel>;
let shared: SharedModel;
let tensorsAtStart: number;

before(async () => {
  await initBackend({ backend: 'wasm' });
  model = buildModel('small-cnn', { inputShape: [28, 28, 1], numClasses: 10, seed: 3 });
  shared = await shareModel(model);
  tensorsAtStart = tf.memory().numTensors;
  pool = await WorkerPool.start({ size: 2, backend: 'wasm' });
});

after(async () => {
  await pool?.close();
  model?.dispose();
});

function randomBatch(n: number, seed: number): { x: Float32Array; labels: Int32Array } {
  const rng = new Rng(seed);
  return {
    x: Float32Array.from({ length: n * PIXELS }, () => rng.next()),
    labels: Int32Array.from({ length: n }, () => rng.int(10)),
  };
}

/** The batch cut into `parts` contiguous payloads (copies: slice). */
function split(x: Float32Array, labels: Int32Array, parts: number): BatchPayload[] {
  return splitRanges(labels.length, parts).map(([s, e]) => ({
    model: shared,
    x: x.slice(s * PIXELS, e * PIXELS),
    labels: labels.slice(s, e),
  }));
}


/** Index and values of the first difference, for a readable failure. */
function firstDifference(a: Float32Array, b: Float32Array): string {
  const i = a.findIndex((v, k) => !Object.is(v, b[k]));
  return i < 0 ? 'none' : `index ${i}: ${a[i]} vs ${b[i]}`;
}

test('workers start the requested backend and report it', () => {
  assert.equal(pool.size, 2);
  const workers = pool.workers;
  assert.equal(workers.length, 2);
  assert.notEqual(workers[0].threadId, workers[1].threadId);
  for (const w of workers) {
    assert.equal(w.name, 'wasm');
    assert.equal(w.tfjsName, 'wasm');
    assert.equal(w.threads, 1);
    assert.equal(w.kernels, 'advlab');
    assert.ok(w.startupMs > 0);
  }
});

test('bad pool options are InputErrors naming the option', async () => {
  await assert.rejects(WorkerPool.start({ size: 0 }), { name: 'InputError', message: 'size: must be a positive integer, got 0' });
  await assert.rejects(WorkerPool.start({ size: 1.5 }), { name: 'InputError', message: /^size:/ });
  await assert.rejects(WorkerPool.start({ backend: 'node' as 'wasm' }), { name: 'InputError', message: /^backend: unknown pool backend "node"/ });
  await assert.rejects(WorkerPool.start({ kernels: 'fast' as 'advlab' }), { name: 'InputError', message: /^kernels:/ });
});

test('splitRanges: contiguous, near-equal, in order, no empty range', () => {
  assert.deepEqual(splitRanges(10, 2), [[0, 5], [5, 10]]);
  assert.deepEqual(splitRanges(5, 2), [[0, 3], [3, 5]]);
  assert.deepEqual(splitRanges(7, 3), [[0, 3], [3, 5], [5, 7]]);
  assert.deepEqual(splitRanges(128, 2), [[0, 64], [64, 128]]);
  assert.deepEqual(splitRanges(2, 5), [[0, 1], [1, 2]]);
  assert.deepEqual(splitRanges(3, 1), [[0, 3]]);
  assert.deepEqual(splitRanges(0, 4), []);
  for (let n = 0; n <= 20; n++) {
    for (let parts = 1; parts <= 6; parts++) {
      const r = splitRanges(n, parts);
      assert.equal(r.length, Math.min(n, parts));
      r.forEach(([s, e], i) => {
        assert.equal(s, i === 0 ? 0 : r[i - 1][1]);
        assert.ok(e > s);
      });
      if (n > 0) assert.equal(r[r.length - 1][1], n);
      const sizes = r.map(([s, e]) => e - s);
      if (n > 0) assert.ok(Math.max(...sizes) - Math.min(...sizes) <= 1, `n=${n} parts=${parts}: sizes ${sizes}`);
    }
  }
  assert.throws(() => splitRanges(-1, 2), InputError);
  assert.throws(() => splitRanges(2.5, 2), /n: must be a non-negative integer/);
  assert.throws(() => splitRanges(4, 0), /parts: must be a positive integer/);
});

test('pooled input gradients of a batch split in 2 equal the single-process result exactly', async () => {
  // 7 = 4 + 3 also checks an uneven split.
  for (const [n, seed] of [[16, 1], [7, 2]]) {
    const { x, labels } = randomBatch(n, seed);
    const whole = await inputGradient({ model: shared, x, labels });
    const parts = await pool.run<Float32Array, BatchPayload>(task('inputGradient'), split(x, labels, 2), (p) => [p.x.buffer, p.labels.buffer]);
    assert.equal(parts.length, 2);
    assert.ok(parts.every((p) => p instanceof Float32Array));
    const pooled = concatArrays(parts, Float32Array);
    assert.equal(pooled.length, n * PIXELS);
    assert.ok(whole.some((v) => v !== 0), 'the gradient is not all zero');
    assert.deepEqual(pooled, whole, `n=${n}: first difference at ${firstDifference(pooled, whole)}`);
  }
});

test('pooled PGD equals in-process PGD on the same batch', async () => {
  const n = 8;
  const { x, labels } = randomBatch(n, 4);
  const params = { eps: 0.3, step: 0.01, steps: 10 };
  const whole = await pgdLinf({ model: shared, x, labels, ...params });
  const pooled = concatArrays(await pool.run<Float32Array>(task('pgdLinf'), split(x, labels, 2).map((p) => ({ ...p, ...params }))), Float32Array);
  assert.deepEqual(pooled, whole, `first difference at ${firstDifference(pooled, whole)}`);
  // It is an attack within the box: moved, at most eps (float32 rounding of x +- eps aside), in [0, 1].
  let maxMove = 0;
  for (let i = 0; i < x.length; i++) maxMove = Math.max(maxMove, Math.abs(pooled[i] - x[i]));
  assert.ok(maxMove > 0.05 && maxMove <= params.eps + 1e-6, `max |adv - x| = ${maxMove}`);
  assert.ok(pooled.every((v) => v >= 0 && v <= 1));
});

test('each worker builds the shared model once and leaks no tensors across calls', async () => {
  const { x, labels } = randomBatch(4, 5);
  const payloads = () => split(x, labels, 2);
  await pool.run(task('inputGradient'), payloads());
  const first = pool.workers.map((w) => w.numTensors);
  for (let i = 0; i < 3; i++) await pool.run(task('inputGradient'), payloads());
  assert.deepEqual(pool.workers.map((w) => w.numTensors), first, 'live tensors in the workers after each call');
  // Two payloads per run land on different workers (both idle), so both hold the model.
  const described = await pool.run<{ models: number; numTensors: number }>(task('describe'), [{}, {}]);
  for (const d of described) {
    assert.equal(d.models, 1);
    assert.ok(d.numTensors > 0, 'the cached model keeps its weights');
  }
});

test('results come back in payload order with more payloads than workers', async () => {
  // Later payloads finish first, so completion order is the reverse of payload order.
  const payloads = [0, 1, 2, 3, 4].map((value) => ({ value, delayMs: 250 - 50 * value }));
  const out = await pool.run<{ value: number; threadId: number }>(task('slowEcho'), payloads);
  assert.deepEqual(out.map((r) => r.value), [0, 1, 2, 3, 4]);
  assert.equal(new Set(out.map((r) => r.threadId)).size, 2, 'both workers took part');
  assert.deepEqual(await pool.run(task('slowEcho'), []), []);
});

test('a throwing task rejects with its message and name, and the pool still works after', async () => {
  await assert.rejects(pool.run(task('fail'), [{}]), (error) => {
    const e = error as InputError & { payloadIndex: number; stack: string };
    assert.equal(e.name, 'InputError');
    assert.ok(e instanceof InputError, 'rebuilt as an InputError');
    assert.ok(isInputError(e));
    assert.equal(e.message, 'eps: must be positive (thrown on purpose by the fail task)');
    assert.equal(e.argument, 'eps');
    assert.equal(e.payloadIndex, 0);
    assert.match(e.stack, /in pool worker \d \(.*pool-tasks\.ts#fail/);
    return true;
  });
  // One failing payload among good ones fails the run.
  const mixed = pool.run(task('fail'), [{ argument: 'steps' }, { argument: 'step' }, { argument: 'eps' }]);
  await assert.rejects(mixed, { name: 'InputError', message: /^steps: must be positive|^step: must be positive|^eps: must be positive/ });
  await assert.rejects(pool.run(task('noSuchTask'), [{}]), { name: 'InputError', message: /has no exported function "noSuchTask"/ });
  await assert.rejects(pool.run({ module: 'pool-tasks.ts', name: 'fail' }, [{}]), { name: 'InputError', message: /^task: .*absolute URL/ });
  // Bad input to a real task: the task's own check, from the worker.
  await assert.rejects(pool.run(task('pgdLinf'), [{ model: shared, x: new Float32Array(3), labels: new Int32Array(1), eps: 0.1, step: 0.01, steps: 1 }]), {
    name: 'InputError',
    message: /^x: 3 values do not fill shape \[1, 28, 28, 1\]/,
  });
  // A payload that cannot be sent (a function) fails its own run only, not one running alongside.
  const [unsendable, alongside] = await Promise.allSettled([
    pool.run(task('slowEcho'), [{ value: 0, delayMs: 0 }, { value: () => 0, delayMs: 0 }]),
    pool.run<{ value: number }>(task('slowEcho'), [1, 2, 3].map((value) => ({ value, delayMs: 10 }))),
  ]);
  assert.equal(unsendable.status, 'rejected');
  assert.equal((unsendable as PromiseRejectedResult).reason.name, 'DataCloneError');
  assert.equal(alongside.status, 'fulfilled');
  assert.deepEqual((alongside as PromiseFulfilledResult<{ value: number }[]>).value.map((r) => r.value), [1, 2, 3]);
  const out = await pool.run<{ value: number }>(task('slowEcho'), [1, 2, 3].map((value) => ({ value, delayMs: 0 })));
  assert.deepEqual(out.map((r) => r.value), [1, 2, 3]);
});

test('a worker that dies is replaced, and the run it was doing rejects', async () => {
  const before = pool.workers.map((w) => w.threadId);
  await assert.rejects(pool.run(task('crash'), [{}]), /pool worker \d exited with code 1: worker crashed on purpose/);
  const out = await pool.run<{ value: number }>(task('slowEcho'), [0, 1, 2, 3].map((value) => ({ value, delayMs: 20 })));
  assert.deepEqual(out.map((r) => r.value), [0, 1, 2, 3]);
  // The replacement starts its backend in the background (seconds); the run above may finish first.
  const deadline = Date.now() + 30000;
  while (pool.workers.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  const workers = pool.workers;
  assert.equal(workers.length, 2, 'the replacement worker started');
  assert.equal(workers.filter((w) => !before.includes(w.threadId)).length, 1, 'exactly one new thread');
  assert.ok(workers.every((w) => w.name === 'wasm'));
});

test('the main thread holds no more tensors than before', async () => {
  // The in-process reference runs above cached a model here too (the tasks' modelInWorker).
  assert.ok(workerModelCount() >= 1);
  await clearWorkerModels();
  assert.equal(tf.memory().numTensors, tensorsAtStart);
});

test('close() lets the process exit; so does a forgotten pool (idle workers are unref-ed)', async () => {
  const script = (close: boolean) => `
    import { WorkerPool } from ${JSON.stringify(new URL('../src/node/worker-pool.ts', import.meta.url).href)};
    const pool = await WorkerPool.start({ size: 2, backend: 'cpu' });
    const out = await pool.run({ module: ${JSON.stringify(TASKS_URL)}, name: 'slowEcho' }, [{ value: 1, delayMs: 0 }, { value: 2, delayMs: 0 }]);
    if (out.map((r) => r.value).join() !== '1,2') process.exit(3);
    ${close ? 'await pool.close(); await pool.run({ module: "file:///x.js", name: "f" }, [1]).catch(() => console.log("closed"));' : ''}
  `;
  const runChild = (close: boolean) =>
    new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
      const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script(close)], {
        cwd: fileURLToPath(new URL('..', import.meta.url)),
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => (stdout += d));
      child.stderr.on('data', (d) => (stderr += d));
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`child (close=${close}) still running after 30 s: workers keep it alive`));
      }, 30000);
      child.on('exit', (code) => {
        clearTimeout(timer);
        resolve({ code, stdout, stderr });
      });
    });
  const [closed, forgotten] = await Promise.all([runChild(true), runChild(false)]);
  assert.equal(closed.code, 0, closed.stderr);
  assert.match(closed.stdout, /closed/);
  assert.equal(forgotten.code, 0, forgotten.stderr);
  await assert.rejects(
    (async () => {
      const p = await WorkerPool.start({ size: 1, backend: 'cpu' });
      await p.close();
      await p.run(task('slowEcho'), [{ value: 1, delayMs: 0 }]);
    })(),
    { name: 'AdvlabError', message: /closed/ },
  );
});
