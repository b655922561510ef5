/**
 * `advlab advgan` end to end on a small training subset: result.json matches
 * its schema, the generator is saved with its eps, the attack on the test
 * images stays in the ball, a run stopped after an epoch and resumed ends as
 * the uninterrupted run, and bad input names its option.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { advlab, compileSchema } from './fixtures/cli.js';
import { join } from 'node:path';
import { advganRun } from '../src/jobs/advgan-run.js';
import { initBackend } from '../src/node/backend.js';

const dir = mkdtempSync(join(tmpdir(), 'advlab-advgan-'));
const MODEL = 'assets/models/mnist-small-cnn';

test('advlab advgan: result.json matches its schema; the generator is saved; a stopped and resumed run ends as the uninterrupted one', async () => {
  const backend = await initBackend({ backend: 'wasm' });
  const options = { model: MODEL, eps: 0.3, epochs: 2, trainSize: 100, trainBatchSize: 25, n: 20 };
  const whole = await advganRun({ ...options, out: join(dir, 'whole') }, backend);
  const validate = compileSchema('schemas/advgan.result.schema.json');
  const result = JSON.parse(readFileSync(join(dir, 'whole', 'result.json'), 'utf8')) as Record<string, any>;
  assert.ok(validate(result), JSON.stringify(validate.errors));
  assert.equal(validate({ ...result, attack: { ...result.attack, successRate: 2 } }), false, 'the schema is not vacuous');
  assert.deepEqual(JSON.parse(readFileSync(join(dir, 'whole', 'generator', 'advgan.json'), 'utf8')).eps, 0.3);
  assert.equal(whole.attack.gradientsPerImage, 0);
  assert.ok(whole.attack.medianLinf === null || whole.attack.medianLinf <= 0.3 + 1e-6);
  assert.match(readFileSync(join(dir, 'whole', 'report.html'), 'utf8'), /The generator as an attack/);

  // The saved generator behind the shared attack interface: the same images, the same adversarial examples.
  const attacked = advlab(['attack', '--attack', 'advgan', '--generator', join(dir, 'whole'), '--model', MODEL, '--n', '20', '--out', join(dir, 'attack'), '--no-progress']);
  assert.equal(attacked.code, 0, attacked.stderr);
  const attackResult = JSON.parse(readFileSync(join(dir, 'attack', 'result.json'), 'utf8')) as Record<string, any>;
  const validateAttack = compileSchema('schemas/attack.result.schema.json');
  assert.ok(validateAttack(attackResult), JSON.stringify(validateAttack.errors));
  assert.deepEqual(attackResult.generator, { path: join(dir, 'whole', 'generator'), eps: 0.3, targetClass: null });
  assert.equal(attackResult.eps, 0.3, "the generator's eps is the default");
  assert.equal(attackResult.successRate, whole.attack.successRate);
  assert.equal(attackResult.gradients, 0);
  assert.equal(attackResult.queriesPerImage, whole.attack.queriesPerImage, "only the driver's own predictions (clean, and the re-verification)");
  const wrong = [
    { args: ['--attack', 'advgan'], option: /--generator.*needs a trained generator/ },
    { args: ['--attack', 'pgd', '--eps', '0.3', '--generator', join(dir, 'whole')], option: /--generator.*only attack advgan/ },
    { args: ['--attack', 'advgan', '--generator', join(dir, 'whole'), '--targeted', 'random'], option: /--targeted.*untargeted/ },
    { args: ['--attack', 'advgan', '--generator', dir], option: /--generator.*advgan\.json: not found/ },
  ];
  for (const { args, option } of wrong) {
    const r = advlab(['attack', ...args, '--model', MODEL, '--n', '10', '--out', join(dir, 'bad'), '--no-progress']);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, option);
  }

  await advganRun({ ...options, out: join(dir, 'resumed'), stopAfterEpochs: 1 }, backend);
  const resumed = await advganRun({ ...options, out: join(dir, 'resumed'), resume: true }, backend);
  assert.equal(resumed.resumedFromEpoch, 1);
  assert.deepEqual(resumed.history.map((h) => ({ ...h, seconds: 0 })), whole.history.map((h) => ({ ...h, seconds: 0 })));
  assert.ok(readFileSync(join(dir, 'resumed', 'generator', 'weights.bin')).equals(readFileSync(join(dir, 'whole', 'generator', 'weights.bin'))), 'the same generator');
  assert.deepEqual({ ...resumed.attack, seconds: 0, imagesPerSecond: 0 }, { ...whole.attack, seconds: 0, imagesPerSecond: 0 });
});

test('advlab advgan --black-box: trained through labels only, queries recorded, result.json matches its schema', async () => {
  const backend = await initBackend({ backend: 'wasm' });
  const r = await advganRun({ model: MODEL, eps: 0.3, epochs: 1, trainSize: 100, trainBatchSize: 25, n: 20, out: join(dir, 'black-box'), blackBox: { staticEpochs: 1 } }, backend);
  const validate = compileSchema('schemas/advgan.result.schema.json');
  const result = JSON.parse(readFileSync(join(dir, 'black-box', 'result.json'), 'utf8')) as Record<string, any>;
  assert.ok(validate(result), JSON.stringify(validate.errors));
  assert.equal(r.blackBox?.surrogate, 'lenet');
  assert.equal(r.blackBox?.queries, 100 * 2, 'the static phase and one epoch: one query per training image each');
  assert.equal(r.history[0].blackBox?.queries, 200);
  assert.match(readFileSync(join(dir, 'black-box', 'report.html'), 'utf8'), /Black-box mode/);
});

test('advlab advgan names the bad option', () => {
  const surrogateAlone = advlab(['advgan', '--model', MODEL, '--eps', '0.3', '--surrogate', 'mlp', '--out', join(dir, 'w'), '--no-progress']);
  assert.equal(surrogateAlone.code, 2);
  assert.match(surrogateAlone.stderr, /--surrogate.*only with --black-box/);
  const noEps = advlab(['advgan', '--model', MODEL, '--out', join(dir, 'x'), '--no-progress']);
  assert.equal(noEps.code, 2);
  assert.match(noEps.stderr, /--eps/);
  const badTarget = advlab(['advgan', '--model', MODEL, '--eps', '0.3', '--target', '12', '--out', join(dir, 'y'), '--no-progress']);
  assert.equal(badTarget.code, 2, badTarget.stderr);
  assert.match(badTarget.stderr, /--target/);
  const zoo = advlab(['advgan', '--model', 'small-cnn', '--eps', '0.3', '--out', join(dir, 'z'), '--no-progress']);
  assert.equal(zoo.code, 2);
  assert.match(zoo.stderr, /--model/);
});
