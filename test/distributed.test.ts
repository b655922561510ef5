// Distributed runs against a real redis-server (Debian's; .ci/run installs it),
// started here on a free loopback port and stopped after. Workers are real
// `advlab worker` processes; the coordinator is the CLI as users run it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { advlabAsync, advlabSpawnArgs, compileSchema, readJson, type Json, type Run } from './fixtures/cli.js';
import { QUEUE_TASKS_URL } from './fixtures/queue-tasks.js';
import { freePort, startRedisServer } from './fixtures/redis.js';
import { QueuePool } from '../src/node/distributed/queue-pool.js';
import { startQueueWorker, type QueueWorker } from '../src/node/distributed/queue-worker.js';
import { ModelFetcher, ModelPublisher, modelKey } from '../src/node/distributed/wire.js';
import { initBackend } from '../src/node/backend.js';
import { buildModel } from '../src/models/zoo.js';
import { shareModel } from '../src/models/pool-model.js';
import { tf } from '../src/engine/tf.js';

const dir = mkdtempSync(join(tmpdir(), 'advlab-dist-'));
const modelDir = join(dir, 'mlp');
let redis: { url: string; stop(): void } | undefined;
let url = '';
const children = new Set<ChildProcess>();

/** A quick-suite eval with a small eps (most images survive, so batches take seconds: long enough to kill a worker mid-job). */
const EVAL = (out: string) => [
  'eval', '--model', modelDir, '--suite', 'quick', '--eps', '0.03', '--n', '24', '--batch-size', '6',
  '--corruptions', 'none', '--minimal', 'none', '--sanity-sample', '8', '--out', out, '--no-progress',
];
/** Jobs of EVAL's first round: APGD-CE on its correctly classified points, in batches of at most 6 (4 batches of 5). */
const EVAL_BATCHES = 4;
/** Jobs of one distributed run of EVAL: the eval batches and the sanity checks' attack batches (counted by the first test). */
let jobsPerRun = 0;

/** Keys that say how or where a run went (times, workers, queue, output folder), not what it found. */
const RUN_KEYS = new Set(['seconds', 'imagesPerSecond', 'startedAt', 'finishedAt', 'resumed', 'workers', 'threads', 'queue', 'out']);
function findings(result: Json): Json {
  const walk = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(walk);
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).filter(([k]) => !RUN_KEYS.has(k)).map(([k, x]) => [k, walk(x)]));
    return v;
  };
  return walk(result) as Json;
}

function sameAsLocal(out: string, reference: string, files: string[]): void {
  const local = readJson(join(reference, 'result.json'));
  const dist = readJson(join(out, 'result.json'));
  assert.equal(dist.options.queue, url);
  assert.equal(local.options.queue, undefined);
  // Every robust flag, accuracy, interval, per-class and per-stage figure.
  assert.deepEqual(findings(dist), findings(local));
  for (const f of files) assert.ok(readFileSync(join(out, f)).equals(readFileSync(join(reference, f))), `${f} differs from the local run's`);
}

/** An `advlab worker` process whose output lines the test can wait for. */
class WorkerProcess {
  readonly child: ChildProcess;
  lines: string[] = [];
  private waiters: (() => void)[] = [];
  constructor(extra: string[] = []) {
    const { command, args, env } = advlabSpawnArgs(['worker', '--queue', url, '--threads', '1', '--lock-seconds', '2', '--stalled-seconds', '1', ...extra]);
    this.child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(this.child);
    this.child.on('exit', () => children.delete(this.child));
    let buf = '';
    this.child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      buf += d;
      const parts = buf.split('\n');
      buf = parts.pop()!;
      this.lines.push(...parts);
      for (const w of this.waiters.splice(0)) w();
    });
    this.child.stderr!.setEncoding('utf8').on('data', (d: string) => this.lines.push(`stderr: ${d}`));
  }
  /** Resolves with the first line matching `re` (waiting for it up to `ms`). */
  async waitFor(re: RegExp, ms = 60_000): Promise<string> {
    const deadline = Date.now() + ms;
    for (;;) {
      const hit = this.lines.find((l) => re.test(l));
      if (hit) return hit;
      if (Date.now() > deadline) throw new Error(`no line matching ${re} within ${ms} ms; got:\n${this.lines.join('\n')}`);
      await Promise.race([new Promise<void>((r) => this.waiters.push(r)), sleep(200)]);
    }
  }
  /** Ids of the jobs this worker finished. */
  done(): string[] {
    return this.lines.flatMap((l) => /^job (\S+) done:/.exec(l)?.[1] ?? []);
  }
  started(): string[] {
    return this.lines.flatMap((l) => /^job (\S+) start:/.exec(l)?.[1] ?? []);
  }
  /** SIGTERM, then waits for the exit code. */
  async stop(): Promise<number | null> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return this.child.exitCode;
    const exited = new Promise<number | null>((r) => this.child.once('exit', (code) => r(code)));
    this.child.kill('SIGTERM');
    return exited;
  }
}

async function startWorkers(k: number): Promise<WorkerProcess[]> {
  const workers = Array.from({ length: k }, () => new WorkerProcess());
  await Promise.all(workers.map((w) => w.waitFor(/ready: 1 thread/)));
  return workers;
}

/** Every job finished once over all workers, and how many there were. */
function assertEachJobOnce(workers: WorkerProcess[]): number {
  const done = workers.flatMap((w) => w.done());
  assert.equal(new Set(done).size, done.length, `a job was computed twice:\n${done.join('\n')}`);
  return done.length;
}

before(async () => {
  redis = await startRedisServer();
  url = redis.url;
  const trained = await advlabAsync(['train', '--model', 'mlp', '--dataset', 'mnist', '--epochs', '1', '--out', modelDir, '--no-progress']);
  assert.equal(trained.code, 0, trained.stderr);
  const local = await advlabAsync(EVAL(join(dir, 'local')));
  assert.equal(local.code, 0, local.stderr);
});

after(async () => {
  for (const c of children) c.kill('SIGKILL');
  redis?.stop();
});

const NPY = ['adversarial.npy', 'labels.npy', 'predictions.npy', 'broken-by.npy'];

test('a distributed eval and attack on two worker processes give exactly the local results', async () => {
  const workers = await startWorkers(2);
  try {
    const out = join(dir, 'dist');
    const r = await advlabAsync([...EVAL(out), '--queue', url]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`queue: ${url}, run [0-9a-f]+\\n`));
    sameAsLocal(out, join(dir, 'local'), NPY);
    const result = readJson(join(out, 'result.json'));
    const validate = compileSchema('schemas/eval.result.schema.json');
    assert.ok(validate(result), JSON.stringify(validate.errors));
    // The eval batches and the sanity checks' attack batches, each computed once, by both workers.
    jobsPerRun = assertEachJobOnce(workers);
    assert.ok(jobsPerRun > EVAL_BATCHES, `${jobsPerRun} jobs`);
    assert.equal(result.workers, 2);
    assert.ok(workers.every((w) => w.done().length > 0));

    const attack = (o: string, extra: string[]) => advlabAsync(['attack', '--model', modelDir, '--attack', 'pgd', '--eps', '0.1', '--steps', '5', '--n', '16', '--batch-size', '4', '--out', o, '--no-progress', ...extra]);
    const [la, da] = [await attack(join(dir, 'attack-local'), []), await attack(join(dir, 'attack-dist'), ['--queue', url])];
    assert.equal(la.code, 0, la.stderr);
    assert.equal(da.code, 0, da.stderr);
    sameAsLocal(join(dir, 'attack-dist'), join(dir, 'attack-local'), ['adversarial.npy', 'predictions.npy', 'success.npy']);
    // The coordinator removed the jobs it collected: Redis keeps no result of a finished run.
    const client = new Redis(url);
    try {
      assert.deepEqual(await client.zrange('advlab:advlab:completed', '0', '-1'), []);
    } finally {
      client.disconnect();
    }
    // SIGTERM stops an idle worker cleanly.
    for (const w of workers) assert.equal(await w.stop(), 0);
    assert.ok(workers.every((w) => w.lines.includes('worker stopped')));
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
  }
});

test('a worker killed mid-job (kill -9): another worker redoes the job once, and the numbers are identical', async () => {
  const workers = await startWorkers(2);
  try {
    const out = join(dir, 'killed-worker');
    const run = advlabAsync([...EVAL(out), '--queue', url]);
    const [victim, survivor] = workers;
    const line = await victim.waitFor(/^job \S+ start:/);
    const killedJob = /^job (\S+) start:/.exec(line)![1];
    victim.child.kill('SIGKILL');
    const r: Run = await run;
    assert.equal(r.code, 0, r.stderr);
    assert.ok(!victim.done().includes(killedJob), 'the job was killed before it finished');
    assert.ok(survivor.done().includes(killedJob), `the survivor did not redo ${killedJob}:\n${survivor.lines.join('\n')}`);
    assert.equal(assertEachJobOnce(workers), jobsPerRun || EVAL_BATCHES + 4);
    sameAsLocal(out, join(dir, 'local'), NPY);
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
  }
});

test('a coordinator killed mid-run: --resume collects the jobs the workers finished meanwhile, recomputing none', async () => {
  const workers = await startWorkers(2);
  try {
    const out = join(dir, 'killed-coordinator');
    const { command, args, env } = advlabSpawnArgs([...EVAL(out), '--queue', url]);
    const coordinator = spawn(command, args, { env, stdio: 'ignore' });
    children.add(coordinator);
    // Once the workers have some batches, kill the coordinator; the others are queued and go on without it.
    const deadline = Date.now() + 60_000;
    while (workers.flatMap((w) => w.started()).length < 3 && Date.now() < deadline) await sleep(100);
    const exited = new Promise((r) => coordinator.once('exit', r));
    coordinator.kill('SIGKILL');
    await exited;
    while (workers.flatMap((w) => w.done()).length < EVAL_BATCHES && Date.now() < deadline) await sleep(100);
    assert.equal(workers.flatMap((w) => w.done()).length, EVAL_BATCHES, 'the workers finished the queued batches without the coordinator');

    const r = await advlabAsync([...EVAL(out), '--queue', url, '--resume']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /\(reattached: finished jobs are collected, not redone\)/);
    // Only the sanity checks' batch was new; no eval batch was computed again.
    assert.equal(assertEachJobOnce(workers), jobsPerRun || EVAL_BATCHES + 4);
    sameAsLocal(out, join(dir, 'local'), NPY);
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
  }
});

test('a wrong or unreachable Redis URL fails within seconds with exit code 2', async () => {
  const closed = `redis://127.0.0.1:${await freePort()}`;
  for (const [queue, message] of [
    [closed, /--queue: cannot reach Redis at redis:\/\/127\.0\.0\.1:\d+: .*ECONNREFUSED/],
    ['http://localhost:6379', /--queue: "http:\/\/localhost:6379" is not a Redis URL/],
    ['redis://127.0.0.1:6379/not-a-db', /--queue: .*the path must be a database number/],
  ] as const) {
    const t0 = Date.now();
    const r = await advlabAsync([...EVAL(join(dir, 'unreachable')), '--queue', queue]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, message);
    assert.ok(Date.now() - t0 < 15_000, `took ${Date.now() - t0} ms`);
  }
  const t0 = Date.now();
  const w = await advlabAsync(['worker', '--queue', closed]);
  assert.equal(w.code, 2);
  assert.match(w.stderr, /--queue: cannot reach Redis/);
  assert.ok(Date.now() - t0 < 15_000);
  // A local attack has nothing to resume from.
  const a = await advlabAsync(['attack', '--model', modelDir, '--attack', 'fgsm', '--eps', '0.1', '--resume', '--out', join(dir, 'attack-resume')]);
  assert.equal(a.code, 2);
  assert.match(a.stderr, /--resume: an attack run resumes only as a distributed run/);
});

test('a batch that fails on every attempt stops the run with that batch named', async () => {
  const backend = await initBackend({ backend: 'wasm' });
  const tasks = { 'queue-test-tasks': QUEUE_TASKS_URL };
  const failures: string[] = [];
  const worker: QueueWorker = await startQueueWorker({ url, backend, threads: 1, queue: 'poison', tasks, onEvent: (e) => e.type === 'failed' && failures.push(e.id) });
  const pool = await QueuePool.connect({ url, runId: 'poison-test', queue: 'poison', tasks, attempts: 3 });
  try {
    // Payloads survive the trip whole (typed arrays, Infinity).
    const ok = await pool.run<{ values: Float32Array; eps: number }>({ module: QUEUE_TASKS_URL, name: 'doubleTask' }, [{ values: Float32Array.of(1, 2.5), eps: Infinity }]);
    assert.deepEqual(ok, [{ values: Float32Array.of(2, 5), eps: Infinity }]);
    await assert.rejects(
      pool.run({ module: QUEUE_TASKS_URL, name: 'failingTask', label: 'eps 0.3 batch 7 (images 56-63)' }, [{ batch: 7 }]),
      (e: Error) => {
        assert.equal(e.name, 'QueueError');
        assert.match(e.message, /^eps 0\.3 batch 7 \(images 56-63\) failed on the queue workers after 3 attempts: cannot compute batch 7/);
        return true;
      },
    );
    assert.equal(failures.length, 3);
    // A task module the workers were not given is refused before anything is queued.
    await assert.rejects(pool.run({ module: 'file:///elsewhere/evil.js', name: 'x' }, [{}]), /not a task module queue workers run/);
  } finally {
    await pool.close();
    await worker.close();
  }
});

test('a worker refuses a model blob whose bytes do not match its hash', async () => {
  const client = new Redis(url);
  const model = buildModel('mlp', { inputShape: [4, 4, 1], numClasses: 3, seed: 0 });
  try {
    const before = tf.memory().numTensors;
    const shared = await shareModel(model);
    const hash = await new ModelPublisher(client, 'blobs').publish(shared);
    assert.equal(tf.memory().numTensors, before);
    const fetched = await new ModelFetcher(client, 'blobs').get(hash);
    assert.equal(fetched.key, hash);
    assert.deepEqual(new Uint8Array(fetched.artifacts.weightData as ArrayBuffer), new Uint8Array(shared.artifacts.weightData as ArrayBuffer));
    // Tamper with one byte of the stored blob: a fresh worker must refuse it.
    const blob = (await client.getBuffer(modelKey('blobs', hash)))!;
    blob[blob.length - 1] ^= 1;
    await client.set(modelKey('blobs', hash), blob);
    await assert.rejects(new ModelFetcher(client, 'blobs').get(hash), /refusing to use it/);
    await client.del(modelKey('blobs', hash));
    await assert.rejects(new ModelFetcher(client, 'blobs').get(hash), /no such model in Redis/);
  } finally {
    model.dispose();
    client.disconnect();
  }
});
