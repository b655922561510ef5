/**
 * `advlab latent-attack` end to end, tiny: on an acgan trained for one epoch
 * on 40 images and on the shipped mnist AAE, a few searches of a few steps;
 * result.json matches its schema, the files are written, a seed reproduces
 * the searches, and bad input names its option.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { advlab, compileSchema, readJson } from './fixtures/cli.js';
import { initBackend } from '../src/node/backend.js';
import type { BackendInfo } from '../src/engine/backend.js';
import { tf } from '../src/engine/tf.js';
import { InputError } from '../src/errors.js';
import { ganRun } from '../src/jobs/gan-run.js';
import { latentAttackRun, type LatentAttackRunResult } from '../src/jobs/latent-attack-run.js';
import { buildGan } from '../src/generative/gan/architectures.js';
import { saveModel } from '../src/node/model-files.js';

const dir = mkdtempSync(join(tmpdir(), 'advlab-latent-'));
const MODEL = 'assets/models/mnist-small-cnn';
const acgan = join(dir, 'acgan');
let backend: BackendInfo;

before(async () => {
  backend = await initBackend({ backend: 'wasm' });
  await ganRun({ dataset: 'mnist', out: acgan, arch: 'acgan', trainSize: 40, epochs: 1, batchSize: 20, latentDim: 8, classifier: 'none', workers: 1 }, backend);
});

test('advlab latent-attack on an acgan run: result.json matches its schema, files written, the seed reproduces the searches, tensors flat', async () => {
  const options = { generator: acgan, model: MODEL, n: 12, steps: 3, batchSize: 5, seed: 3 };
  const tensors = tf.memory().numTensors;
  const r = await latentAttackRun({ ...options, out: join(dir, 'a') }, backend);
  assert.equal(tf.memory().numTensors, tensors, 'tensors');
  const validate = compileSchema('schemas/latent-attack.result.schema.json');
  const json = readJson(join(dir, 'a', 'result.json'));
  assert.ok(validate(json), JSON.stringify(validate.errors));
  assert.equal(validate({ ...json, summary: { ...json.summary, validityRate: 1.5 } }), false, 'the schema is not vacuous');
  for (const f of ['examples.png', 'examples.npy', 'report.html']) assert.ok(existsSync(join(dir, 'a', f)), f);
  assert.match(readFileSync(join(dir, 'a', 'report.html'), 'utf8'), /What the search found/);
  assert.deepEqual([r.generator.kind, r.generator.start, r.generator.auxiliaryClassifier, r.options.lambda2], ['acgan', 'prior', true, 100]);
  assert.equal(r.options.dataset, 'mnist', "the generator's dataset by default");
  assert.equal(r.searches.length, 12);
  assert.deepEqual(
    r.searches.slice(0, 10).map((s) => s.source),
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    'sources class-balanced',
  );
  assert.ok(r.searches.every((s) => s.target !== s.source && s.auxiliaryPrediction !== null));
  assert.ok(r.validator.shipped && r.validator.path.includes('metric-classifiers'));
  assert.equal(r.summary.successRate, r.searches.filter((s) => s.success).length / 12);
  const again = await latentAttackRun({ ...options, out: join(dir, 'b') }, backend);
  const strip = (x: LatentAttackRunResult) => x.searches;
  assert.deepEqual(strip(again), strip(r), 'the same seed, the same searches');
  assert.ok(readFileSync(join(dir, 'a', 'examples.npy')).equals(readFileSync(join(dir, 'b', 'examples.npy'))));
});

test('advlab latent-attack on the shipped mnist AAE (CLI): starts at encoder(x), no auxiliary term; schema', () => {
  const out = join(dir, 'aae');
  const run = advlab(['latent-attack', '--generator', 'mnist-aae', '--model', MODEL, '--n', '6', '--steps', '2', '--source', '3,4', '--out', out, '--no-progress']);
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /6 searches: target read/);
  assert.match(run.stdout, /result: /);
  const json = readJson(join(out, 'result.json'));
  const validate = compileSchema('schemas/latent-attack.result.schema.json');
  assert.ok(validate(json), JSON.stringify(validate.errors));
  assert.deepEqual([json.generator.kind, json.generator.start, json.generator.auxiliaryClassifier, json.options.lambda2, json.generator.latentDim], ['aae', 'encoder', false, null, 8]);
  assert.deepEqual(json.searches.map((s: { source: number }) => s.source), [3, 4, 3, 4, 3, 4]);
  assert.ok(json.searches.every((s: { auxiliaryPrediction: number | null }) => s.auxiliaryPrediction === null));
});

test('advlab latent-attack names the bad option', async () => {
  const none = advlab(['latent-attack', '--model', MODEL, '--out', join(dir, 'x'), '--no-progress']);
  assert.equal(none.code, 2);
  assert.match(none.stderr, /--generator/);
  const lambda2 = advlab(['latent-attack', '--generator', 'mnist-aae', '--model', MODEL, '--n', '2', '--steps', '1', '--lambda2', '5', '--out', join(dir, 'y'), '--no-progress']);
  assert.equal(lambda2.code, 2, lambda2.stderr);
  assert.match(lambda2.stderr, /--lambda2: .*no auxiliary classifier/);

  const reject = (options: Record<string, unknown>, argument: string, message: RegExp) =>
    assert.rejects(latentAttackRun({ generator: acgan, model: MODEL, n: 2, steps: 1, out: join(dir, 'z'), ...options }, backend), (e: unknown) => e instanceof InputError && e.argument === argument && message.test(e.message), argument);
  // The independent classifier must not be the attacked model.
  await reject({ model: 'assets/metric-classifiers/mnist/model' }, 'model', /same model/);
  await reject({ validator: MODEL }, 'validator', /same model/);
  await reject({ generator: join(dir, 'missing') }, 'generator', /does not exist/);
  await reject({ generator: 'assets/models/mnist-scgan-generator' }, 'generator', /neither an acgan run/);
  await reject({ sources: [10] }, 'sources', /classes in \[0, 9\]/);
  // A gan run folder whose generator is not class-conditional (a dcgan's, saved without result.json).
  const dcganDir = join(dir, 'dcgan');
  mkdirSync(dcganDir);
  const dcgan = buildGan('dcgan', { imageShape: [28, 28, 1], numClasses: 10, latentDim: 8, seed: 0 });
  await saveModel(dcgan.generator, join(dcganDir, 'generator'));
  await saveModel(dcgan.discriminator, join(dcganDir, 'discriminator'));
  dcgan.generator.dispose();
  dcgan.discriminator.dispose();
  await reject({ generator: dcganDir }, 'generator', /class-conditional/);
});
