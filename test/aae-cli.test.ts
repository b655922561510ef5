/**
 * The `advlab aae` job end to end, on tiny runs (200 training images, 2
 * epochs of 4 steps, a 2-D code): result.json against its schema, per-epoch
 * grids, history.csv, test codes, saved models and the self-contained
 * report; a resume that ends bit-identical; tensor hygiene in-process with a
 * supervised-prior run; and bad input (exit 2, one line naming the option,
 * nothing written). The semi-supervised and clustering modes: aae-modes-cli.test.ts.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { advlab, compileSchema, readJson, type Json, type Run } from './fixtures/cli.js';
import { tf } from '../src/engine/tf.js';
import { initBackend } from '../src/node/backend.js';
import type { BackendInfo } from '../src/engine/backend.js';
import { readNpy } from '../src/node/data/formats/npy.js';
import { InputError } from '../src/errors.js';
import { aaeRun, HISTORY_COLUMNS, type AaeRunEvent, type AaeRunOptions } from '../src/jobs/aae-run.js';

const dir = mkdtempSync(join(tmpdir(), 'advlab-aae-cli-'));
const full = join(dir, 'full');
const validate = compileSchema('schemas/aae.result.schema.json');
// The tiny run every test builds on: 200 images, batches of 50, a 2-D code.
const tiny = ['aae', '--dataset', 'mnist', '--train-n', '200', '--batch-size', '50', '--latent', '2', '--no-progress'];
let backend: BackendInfo;

before(async () => {
  backend = await initBackend({ backend: 'wasm' });
});

const lastLine = (r: Run) => r.stdout.trim().split('\n').pop();
const png = (file: string) => PNG.sync.read(readFileSync(file));
/** Every figure of a history except the times, which differ between runs. */
const figures = (history: Json[]) => history.map(({ seconds: _s, monitor, ...rest }) => ({ ...rest, monitor: { ...monitor, metricSeconds: undefined } }));

test('advlab aae: result.json matches its schema; grids, history.csv, test codes, models and a self-contained report', () => {
  const r = advlab([...tiny, '--epochs', '2', '--out', full]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^epoch 2\/2: reconstruction [\d.]+ D loss [\d.]+ E loss [\d.]+ D\(prior\) [\d.]+ D\(code\) [\d.]+ \([\d.]+s\) \| test MSE [\d.]+ MMD² -?[\d.]+ /m);
  assert.match(r.stdout, /^test \(2004 images\): reconstruction MSE [\d.]+; codes vs prior: MMD² /m);
  assert.equal(lastLine(r), `result: ${join(full, 'result.json')}`);

  const result = readJson(join(full, 'result.json'));
  assert.ok(validate(result), JSON.stringify(validate.errors));
  assert.deepEqual(
    [result.command, result.backend, result.options.arch, result.options.prior, result.options.components, result.options.latentDim, result.options.reconstructionLoss, result.dataset.trainSize, result.epochs],
    ['aae', 'wasm', 'mlp', 'gaussian', null, 2, 'bce', 200, 2],
  );
  assert.deepEqual(result.history.map((h: Json) => h.epoch), [1, 2]);
  const t = result.test;
  assert.ok(t.reconstructionMse > 0 && t.reconstructionMse < 0.2, `test MSE ${t.reconstructionMse}`);
  assert.equal(t.reconstructionMse, result.history[1].monitor.testMse, 'the final figures are the last epoch\'s');
  assert.equal(t.posterior.mmd, result.history[1].monitor.mmd);
  assert.deepEqual([t.posterior.n, t.posterior.d, t.posterior.priorMean, t.posterior.priorVariance], [2004, 2, [0, 0], [1, 1]]);
  // The schema is not vacuous.
  assert.equal(validate({ ...result, options: { ...result.options, prior: 'uniform' } }), false);
  assert.equal(validate({ ...result, test: { ...t, reconstructionMse: 2 } }), false);

  // Grids: 16 inputs and reconstructions in 4 rows of 8 (labelled IN/OUT at the left), 64 samples in 8 x 8; 28 x 28 drawn at scale 2.
  assert.deepEqual(result.files.reconstructionGrids, ['grids/reconstruction-001.png', 'grids/reconstruction-002.png']);
  assert.deepEqual(result.files.sampleGrids, ['grids/samples-001.png', 'grids/samples-002.png']);
  // "OUT" at font scale 2: 3 glyphs 4 pixels apart less the trailing gap, doubled.
  const rowLabel = (3 * 4 - 1) * 2;
  assert.deepEqual([png(join(full, 'reconstruction.png')).width, png(join(full, 'reconstruction.png')).height], [2 + rowLabel + 2 + 8 * 58, 2 + 4 * 58]);
  assert.deepEqual([png(join(full, 'samples.png')).width, png(join(full, 'samples.png')).height], [2 + 8 * 58, 2 + 8 * 58]);
  assert.deepEqual(readFileSync(join(full, 'reconstruction.png')), readFileSync(join(full, 'grids', 'reconstruction-002.png')));
  assert.deepEqual(readFileSync(join(full, 'samples.png')), readFileSync(join(full, 'grids', 'samples-002.png')));
  assert.notDeepEqual(readFileSync(join(full, 'grids', 'samples-001.png')), readFileSync(join(full, 'grids', 'samples-002.png')), 'the decoder moved');

  const csv = readFileSync(join(full, 'history.csv'), 'utf8').trim().split('\n');
  assert.equal(csv.length, 3);
  assert.equal(csv[0], HISTORY_COLUMNS.join(','));
  const row = csv[2].split(',');
  assert.equal(row.length, HISTORY_COLUMNS.length);
  assert.equal(Number(row[HISTORY_COLUMNS.indexOf('testMse')]), result.history[1].monitor.testMse);
  assert.equal(Number(row[HISTORY_COLUMNS.indexOf('dLoss')]), result.history[1].dLoss);

  const codes = readNpy(join(full, 'test-codes.npy'));
  assert.deepEqual([codes.dtype, codes.shape], ['<f4', [2004, 2]]);
  for (const model of ['encoder', 'decoder', 'discriminator']) assert.ok(existsSync(join(full, model, 'model.json')) && existsSync(join(full, model, 'weights.bin')), model);

  const html = readFileSync(join(full, 'report.html'), 'utf8');
  assert.ok(!/<script/i.test(html), 'no script');
  assert.ok(!/(?:src|href)\s*=\s*["']?\s*(?:https?:)?\/\//i.test(html) && !/url\(\s*["']?\s*(?:https?:)?\/\//i.test(html) && !/@import/i.test(html), 'no external resource');
  assert.equal((html.match(/<svg/g) ?? []).length, 4, 'latent scatter, reconstruction, adversarial and MMD plots');
  assert.equal((html.match(/<img src="data:image\/png;base64,/g) ?? []).length, 4, 'two reconstruction and two sample grids');
  assert.ok(html.includes('Test codes over the prior'));
});

test('a run stopped after epoch 1 and resumed ends with the same history and weights as the uninterrupted run; other settings are refused', () => {
  const part = join(dir, 'part');
  const first = advlab([...tiny, '--epochs', '1', '--out', part]);
  assert.equal(first.code, 0, first.stderr);
  const second = advlab([...tiny, '--epochs', '2', '--out', part, '--resume']);
  assert.equal(second.code, 0, second.stderr);
  assert.match(second.stdout, /^resumed after epoch 1$/m);
  const a = readJson(join(full, 'result.json'));
  const b = readJson(join(part, 'result.json'));
  assert.ok(validate(b), JSON.stringify(validate.errors));
  assert.equal(b.resumedFromEpoch, 1);
  assert.deepEqual(figures(b.history), figures(a.history));
  assert.deepEqual(b.test, a.test);
  for (const model of ['encoder', 'decoder', 'discriminator']) assert.deepEqual(readFileSync(join(part, model, 'weights.bin')), readFileSync(join(full, model, 'weights.bin')), model);
  assert.deepEqual(readFileSync(join(part, 'test-codes.npy')), readFileSync(join(full, 'test-codes.npy')));
  assert.equal(readFileSync(join(part, 'history.csv'), 'utf8').trim().split('\n').length, 3);

  const other = advlab([...tiny, '--epochs', '3', '--out', part, '--resume', '--prior', 'mixture']);
  assert.equal(other.code, 2);
  assert.match(other.stderr.trim(), /^advlab: --resume: the checkpoint in .* was trained with other settings: prior "gaussian" \(now "mixture"\).*$/);
});

test('in-process: a supervised-prior run keeps the tensor count, reports its events, draws one component per grid row', async () => {
  const out = join(dir, 'supervised');
  const events: AaeRunEvent['type'][] = [];
  const before = tf.memory().numTensors;
  const r = await aaeRun({ dataset: 'mnist', out, prior: 'mixture', supervisedPrior: true, latentDim: 2, trainSize: 100, epochs: 1, batchSize: 50, onProgress: (e) => events.push(e.type) }, backend);
  assert.equal(tf.memory().numTensors, before, 'tensors');
  for (const type of ['dataset', 'epoch-start', 'batch', 'epoch-end'] as const) assert.ok(events.includes(type), type);
  assert.ok(validate(readJson(join(out, 'result.json'))), JSON.stringify(validate.errors));
  assert.deepEqual([r.options.components, r.models.labelClasses], [10, 10]);
  // 10 component rows (labelled with the class at the left: a 6-pixel digit at font scale 2, and a gap) of 8 columns.
  const grid = png(join(out, 'samples.png'));
  assert.deepEqual([grid.width, grid.height], [2 + 6 + 2 + 8 * 58, 2 + 10 * 58]);
});

test('bad input: exit 2 and one line naming the option, nothing written; the library names its arguments', async () => {
  const out = join(dir, 'bad');
  const cases: [string[], RegExp][] = [
    [['aae', '--prior', 'uniform', '--out', out], /^advlab: --prior: unknown prior "uniform"; expected one of gaussian, mixture, swiss-roll$/],
    [['aae', '--latent', '0', '--out', out], /^error: option '--latent <n>' argument '0' is invalid\. --latent expects an integer >= 1, got "0"$/],
    [['aae', '--latent', 'two', '--out', out], /^error: option '--latent <n>' argument 'two' is invalid\./],
    [['aae', '--prior', 'swiss-roll', '--latent', '8', '--out', out], /^advlab: --latent: the swiss-roll prior is 2-D: expected a latent size of 2, got 8$/],
    [['aae', '--prior', 'mixture', '--latent', '1', '--out', out], /^advlab: --latent: the mixture prior lives in the first two coordinates: expected a latent size >= 2, got 1$/],
    [['aae', '--supervised-prior', '--out', out], /^advlab: --supervised-prior: the gaussian prior has no components/],
    [['aae', '--arch', 'vae', '--out', out], /^error: option '--arch <name>' argument 'vae' is invalid\. Allowed choices are mlp, conv\.$/],
    [['aae', '--train-n', '100000', '--out', out], /^advlab: --train-n: asked for 100000 images but the train split has only 7996$/],
  ];
  for (const [args, pattern] of cases) {
    const r = advlab(args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr.split('\n')[0], pattern);
    if (r.stderr.startsWith('advlab:')) assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.ok(!existsSync(out), `${args.join(' ')} wrote ${out}`);
  }

  const base: AaeRunOptions = { dataset: 'mnist', out, epochs: 1, trainSize: 50, batchSize: 50 };
  const bad: [Partial<AaeRunOptions>, string][] = [
    [{ prior: 'laplace' }, 'prior'],
    [{ latentDim: 0 }, 'latentDim'],
    [{ arch: 'vae' }, 'arch'],
    [{ reconstructionLoss: 'l1' }, 'reconstructionLoss'],
    [{ learningRate: 0 }, 'learningRate'],
    [{ prior: 'mixture', supervisedPrior: true, regularization: false }, 'supervisedPrior'],
    [{ dataset: join(dir, 'no-such-data') }, 'dataset'],
  ];
  const tensors = tf.memory().numTensors;
  for (const [options, argument] of bad) {
    await assert.rejects(aaeRun({ ...base, ...options }, backend), (e: unknown) => e instanceof InputError && e.argument === argument, `${argument}: ${JSON.stringify(options)}`);
  }
  assert.equal(tf.memory().numTensors, tensors, 'failed runs free what they built');
  assert.ok(!existsSync(out), 'nothing written');
});
