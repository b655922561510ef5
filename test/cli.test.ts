import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { writeNpy } from '../src/node/data/formats/npy.js';
import { createRequire } from 'node:module';

// ajv-formats is CommonJS; require gives its plugin function directly.
const addFormats = createRequire(import.meta.url)('ajv-formats') as (ajv: Ajv) => Ajv;

const CLI = ['--import', 'tsx', 'src/cli/run.ts'];
const env = { ...process.env, ADVLAB_BACKEND: 'wasm' };

function advlab(args: string[]) {
  const r = spawnSync(process.execPath, [...CLI, ...args], { encoding: 'utf8', env });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function validator(schemaFile: string) {
  const ajv = new Ajv({ allErrors: true, strict: true });
  addFormats(ajv);
  return ajv.compile(JSON.parse(readFileSync(schemaFile, 'utf8')));
}

test('advlab train writes a model and a result.json that matches its schema; prints backend and the result path', () => {
  const out = mkdtempSync(join(tmpdir(), 'advlab-cli-'));
  const r = advlab(['train', '--model', 'mlp', '--dataset', 'mnist', '--epochs', '1', '--out', out, '--seed', '3']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^backend: wasm \(1 thread, advlab kernels\)$/m);
  assert.match(r.stdout, /dataset: mnist \(7996 train, 2004 test, 0 malformed records skipped\)/);
  const lines = r.stdout.trim().split('\n');
  assert.equal(lines[lines.length - 1], `result: ${join(out, 'result.json')}`);
  const result = JSON.parse(readFileSync(join(out, 'result.json'), 'utf8')) as Record<string, any>;
  const validate = validator('schemas/train.result.schema.json');
  assert.ok(validate(result), JSON.stringify(validate.errors));
  assert.equal(result.backend, 'wasm');
  assert.equal(result.seed, 3);
  assert.equal(result.dataset.trainSize, 7996);
  assert.ok(result.cleanAccuracy > 0.85, `accuracy ${result.cleanAccuracy}`);
  assert.ok(existsSync(join(out, 'model', 'model.json')) && existsSync(join(out, 'model', 'weights.bin')));
  // The schema is not vacuous: a wrong accuracy scale is rejected.
  assert.equal(validate({ ...result, cleanAccuracy: 97.5 }), false);
});

test('--dataset takes a path (NPY folder); --model takes a saved model, checked against the data', () => {
  const dir = mkdtempSync(join(tmpdir(), 'advlab-cli-'));
  const data = join(dir, 'tiny');
  // 3 classes of 8x8 images: class c is a bright row at height 2c, plus seeded noise.
  const n = 60;
  const x = new Float32Array(n * 64);
  const y = new Int32Array(n);
  let s = 1;
  for (let i = 0; i < n; i++) {
    y[i] = i % 3;
    for (let p = 0; p < 64; p++) {
      s = (s * 1103515245 + 12345) % 2147483648;
      x[i * 64 + p] = 0.2 * (s / 2147483648) + (Math.floor(p / 8) === 2 * y[i] ? 0.8 : 0);
    }
  }
  writeNpy(join(data, 'images.npy'), x, [n, 8, 8, 1]);
  writeNpy(join(data, 'labels.npy'), y, [n]);
  const first = advlab(['train', '--model', 'mlp', '--dataset', data, '--epochs', '2', '--out', join(dir, 'run1')]);
  assert.equal(first.code, 0, first.stderr);
  const r1 = JSON.parse(readFileSync(join(dir, 'run1', 'result.json'), 'utf8')) as Record<string, any>;
  assert.deepEqual([r1.dataset.trainSize, r1.dataset.testSize, r1.dataset.numClasses], [48, 12, 3]);
  // Train the saved model further (a run folder is accepted as --model), on a class-balanced 30 of the 48.
  const second = advlab(['train', '--model', join(dir, 'run1'), '--dataset', data, '--epochs', '1', '--train-n', '30', '--out', join(dir, 'run2')]);
  assert.equal(second.code, 0, second.stderr);
  const r2 = JSON.parse(readFileSync(join(dir, 'run2', 'result.json'), 'utf8')) as Record<string, any>;
  assert.deepEqual([r2.dataset.trainSize, r2.options.trainSize], [30, 30]);
  // A saved model whose input shape does not match the data is refused, naming both shapes.
  const tinyModel = join(dir, 'run1', 'model');
  const wrong = advlab(['train', '--model', tinyModel, '--dataset', 'mnist', '--epochs', '1', '--out', join(dir, 'run3')]);
  assert.equal(wrong.code, 2);
  assert.match(wrong.stderr, /dataset: the model expects inputs of shape \[8, 8, 1\] but got images of shape \[28, 28, 1\]/);
  const missing = advlab(['train', '--model', join(dir, 'nothing-here'), '--out', join(dir, 'run4')]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /model: unknown model ".*nothing-here"; expected a zoo name/);
});

test('bad input exits with code 2 and one line naming the option', () => {
  const out = mkdtempSync(join(tmpdir(), 'advlab-cli-'));
  const cases: [string[], RegExp][] = [
    [['train', '--model', 'vgg99', '--out', out], /model: unknown model "vgg99"/],
    [['train', '--dataset', 'no/such/data', '--out', out], /dataset: "no\/such\/data" is neither a built-in dataset/],
    [['train', '--epochs', '0', '--out', out], /--epochs expects an integer >= 1, got "0"/],
    [['train', '--lr', '-1', '--out', out], /--lr expects a positive number/],
    [['train', '--backend', 'gpu', '--out', out], /--backend: unknown backend "gpu"/],
    [['train', '--train-n', '9000', '--out', out], /--train-n: asked for 9000 images but the train split has only 7996/],
  ];
  for (const [args, message] of cases) {
    const r = advlab(args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message);
  }
});

test('--help lists every option with its default', () => {
  const r = advlab(['train', '--help']);
  assert.equal(r.code, 0);
  for (const opt of ['--model', '--dataset', '--out', '--epochs', '--batch-size', '--lr', '--seed', '--backend', '--resume']) assert.match(r.stdout, new RegExp(opt));
  assert.match(r.stdout, /default:\s+"small-cnn"/);
});

test('a training process killed after its first epoch resumes to the same weights as an uninterrupted run', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'advlab-kill-'));
  const args = (out: string) => ['train', '--model', 'mlp', '--dataset', 'mnist', '--epochs', '3', '--batch-size', '128', '--out', out, '--no-progress'];
  const a = advlab(args(join(dir, 'a')));
  assert.equal(a.code, 0, a.stderr);

  const child = spawn(process.execPath, [...CLI, ...args(join(dir, 'b'))], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
      // Kill hard as soon as the first epoch has been reported (its checkpoint is written before).
      if (/epoch 1\/3: loss/.test(stdout)) child.kill('SIGKILL');
    });
    child.on('exit', (code, signal) => (signal === 'SIGKILL' ? resolve() : reject(new Error(`exited ${code}: ${stdout}`))));
  });
  assert.ok(!existsSync(join(dir, 'b', 'result.json')));
  const resumed = advlab([...args(join(dir, 'b')), '--resume']);
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.match(resumed.stdout, /resumed after epoch [12]/);
  const wa = readFileSync(join(dir, 'a', 'model', 'weights.bin'));
  const wb = readFileSync(join(dir, 'b', 'model', 'weights.bin'));
  assert.ok(wa.equals(wb), 'weights differ');
  const ra = JSON.parse(readFileSync(join(dir, 'a', 'result.json'), 'utf8'));
  const rb = JSON.parse(readFileSync(join(dir, 'b', 'result.json'), 'utf8'));
  assert.equal(rb.cleanAccuracy, ra.cleanAccuracy);
  assert.ok(rb.resumedFromEpoch >= 1);
});
