/**
 * `advlab aae` in its two categorical modes (Makhzani et al. 2015): the
 * semi-supervised one (--labels, section 5) and clustering (--clusters,
 * section 6). Tiny runs (200 training images, batches of 50, a 2-D style
 * code): their options and figures in result.json against the schema,
 * history.csv, the sample grid with one row per category, the report; a
 * semi-supervised resume that ends bit-identical and refuses other settings;
 * and bad values of the new options (exit 2, one line naming the option,
 * nothing written; the library names its arguments).
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { advlab, compileSchema, readJson, type Json } from './fixtures/cli.js';
import { tf } from '../src/engine/tf.js';
import { initBackend } from '../src/node/backend.js';
import type { BackendInfo } from '../src/engine/backend.js';
import { readNpy } from '../src/node/data/formats/npy.js';
import { InputError } from '../src/errors.js';
import { aaeRun, HISTORY_COLUMNS, type AaeRunOptions, DEFAULT_CLUSTER_BALANCE } from '../src/jobs/aae-run.js';

const dir = mkdtempSync(join(tmpdir(), 'advlab-aae-modes-'));
const validate = compileSchema('schemas/aae.result.schema.json');
const tiny = ['aae', '--dataset', 'mnist', '--train-n', '200', '--batch-size', '50', '--latent', '2', '--no-progress'];
let backend: BackendInfo;

before(async () => {
  backend = await initBackend({ backend: 'wasm' });
});

const png = (file: string) => PNG.sync.read(readFileSync(file));
/** Every figure of a history except the times, which differ between runs. */
const figures = (history: Json[]) => history.map(({ seconds: _s, monitor, ...rest }) => ({ ...rest, monitor: { ...monitor, metricSeconds: undefined } }));

test('advlab aae --labels: the semi-supervised mode\'s options and test error in result.json (schema-valid), history.csv and the report; a resume ends bit-identical', () => {
  const semi = join(dir, 'semi');
  // The step decay from epoch 2: the resumed run must cut the rates again (it starts at epoch 2).
  const args = [...tiny, '--labels', '100', '--augment', 'shift:1', '--decay-epoch', '2'];
  const r = advlab([...args, '--epochs', '2', '--out', semi]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^dataset: mnist \(.*training on 200, 100 of them labelled\)$/m);
  assert.match(r.stdout, /^epoch 2\/2: .* C loss [\d.]+ .* classification [\d.]+ .* test error [\d.]+%$/m);
  assert.match(r.stdout, /^test classification error \(argmax q\(y\|x\)\): [\d.]+% \(\d+ of 2004\)$/m);
  const result = readJson(join(semi, 'result.json'));
  assert.ok(validate(result), JSON.stringify(validate.errors));
  const o = result.options;
  assert.deepEqual([o.labels, o.clusters, o.classificationLearningRate, o.augment, o.prior, o.decayEpoch, o.categoryBalance, o.categoryNoise], [100, null, 0.001, 'shift:1', 'gaussian', 2, 0, 0]);
  assert.deepEqual([result.models.categories, result.models.labelClasses, result.test.clustering], [10, 0, null]);
  assert.ok(result.models.categoryDiscriminator.parameters > 0 && existsSync(join(semi, 'category-discriminator', 'model.json')));
  const c = result.test.classification;
  assert.ok(c.images === 2004 && c.error === c.errors / 2004 && c.error < 0.9, JSON.stringify(c));
  assert.equal(c.error, result.history[1].monitor.testError);
  assert.equal(validate({ ...result, options: { ...o, clusters: 1 } }), false, 'the schema is not vacuous');
  const csv = readFileSync(join(semi, 'history.csv'), 'utf8').trim().split('\n');
  assert.equal(Number(csv[2].split(',')[HISTORY_COLUMNS.indexOf('testError')]), c.error);
  assert.equal(Number(csv[2].split(',')[HISTORY_COLUMNS.indexOf('classification')]), result.history[1].classification);
  const categories = readNpy(join(semi, 'test-categories.npy'));
  assert.deepEqual([categories.shape, result.files.testCategories], [[2004, 10], 'test-categories.npy']);
  // A 10-row sample grid: one row per class (one-hot y), the same 8 styles in every row.
  const grid = png(join(semi, 'samples.png'));
  assert.equal(grid.height, 2 + 10 * 58);
  const html = readFileSync(join(semi, 'report.html'), 'utf8');
  assert.ok(html.includes('Semi-supervised classification') && html.includes('Test classification error'));
  assert.equal((html.match(/<svg/g) ?? []).length, 5, 'latent scatter, error, reconstruction, adversarial and MMD plots');

  const part = join(dir, 'semi-part');
  assert.equal(advlab([...args, '--epochs', '1', '--out', part]).code, 0);
  const resumed = advlab([...args, '--epochs', '2', '--out', part, '--resume']);
  assert.equal(resumed.code, 0, resumed.stderr);
  const b = readJson(join(part, 'result.json'));
  assert.deepEqual(figures(b.history), figures(result.history));
  assert.deepEqual(b.test, result.test);
  for (const model of ['encoder', 'decoder', 'discriminator', 'category-discriminator']) assert.deepEqual(readFileSync(join(part, model, 'weights.bin')), readFileSync(join(semi, model, 'weights.bin')), model);
  const other = advlab([...tiny, '--labels', '50', '--epochs', '3', '--out', part, '--resume']);
  assert.equal(other.code, 2);
  assert.match(other.stderr.trim(), /^advlab: --resume: .* labels 100 \(now 50\), augment "shift:1" \(now null\)/);
});

test('advlab aae --clusters 16: the clustering error, each cluster\'s majority label and sizes in result.json (schema-valid) and the report', () => {
  const out = join(dir, 'clusters');
  const r = advlab([...tiny, '--clusters', '16', '--epochs', '1', '--out', out]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^clustering error \(16 clusters, majority training label each\): [\d.]+% \(\d+ of 2004\)/m);
  assert.match(r.stdout, /^cluster sizes \(training images\): 0:\d+/m);
  const result = readJson(join(out, 'result.json'));
  assert.ok(validate(result), JSON.stringify(validate.errors));
  assert.deepEqual([result.options.clusters, result.options.labels, result.options.classificationLearningRate, result.models.categories, result.test.classification], [16, null, null, 16, null]);
  // The clustering mode's balance term is on by default (aae-run.ts DEFAULT_CLUSTER_BALANCE: without it the class head collapses).
  assert.deepEqual([result.options.categoryBalance, result.options.categoryNoise], [DEFAULT_CLUSTER_BALANCE, 0]);
  const c = result.test.clustering;
  assert.equal(c.clusters, 16);
  assert.equal(c.trainSizes.reduce((a: number, b: number) => a + b, 0), 200);
  assert.equal(c.testSizes.reduce((a: number, b: number) => a + b, 0), 2004);
  assert.equal(c.emptyClusters, c.trainSizes.filter((n: number) => n === 0).length);
  assert.deepEqual(c.clusterLabels.map((l: number | null, k: number) => l === null), c.trainSizes.map((n: number) => n === 0));
  assert.equal(c.error, result.history[0].monitor.clusteringError);
  assert.equal(result.history[0].classification, null);
  assert.equal(png(join(out, 'samples.png')).height, 2 + 16 * 58, 'one row per cluster');
  const html = readFileSync(join(out, 'report.html'), 'utf8');
  assert.ok(html.includes('Clustering error') && html.includes('majority of its training images'));
});

test('bad values of --labels, --clusters and their companions: exit 2 and one line naming the option, nothing written; the library names its arguments', async () => {
  const out = join(dir, 'bad');
  const cases: [string[], RegExp][] = [
    [['aae', '--labels', '5', '--out', out], /^advlab: --labels: the semi-supervised mode needs at least one labelled image per class: expected an integer >= 10, got 5$/],
    [['aae', '--labels', '100000', '--out', out], /^advlab: --labels: asked for 100000 labelled images but the training set has only 7996$/],
    [['aae', '--clusters', '1', '--out', out], /^advlab: --clusters: expected an integer >= 2, got 1$/],
    [['aae', '--train-n', '20', '--clusters', '30', '--out', out], /^advlab: --clusters: expected at most one cluster per training image \(20\), got 30$/],
    [['aae', '--labels', '100', '--clusters', '16', '--out', out], /^advlab: --clusters: semi-supervised classification \(labels\) and clustering \(clusters\) are two modes/],
    [['aae', '--labels', '100', '--prior', 'mixture', '--out', out], /^advlab: --prior: semi-supervised classification puts a gaussian prior on the style code/],
    [['aae', '--classification-lr', '0.01', '--out', out], /^advlab: --classification-lr: only the semi-supervised mode \(labels\) has a classification phase$/],
    [['aae', '--augment', 'shift:2', '--out', out], /^advlab: --augment: augments the labelled batches of the semi-supervised mode/],
    [['aae', '--category-balance', '1', '--out', out], /^advlab: --category-balance: acts on the class head: only with labels or clusters$/],
    [['aae', '--clusters', '16', '--category-noise=-0.5', '--out', out], /^advlab: --category-noise: expected a number >= 0, got -0.5$/],
    [['aae', '--labels', '100', '--augment', 'warp', '--out', out], /^advlab: --augment: unknown augmentation "warp"/],
  ];
  for (const [args, pattern] of cases) {
    const r = advlab(args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr.split('\n')[0], pattern);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.ok(!existsSync(out), `${args.join(' ')} wrote ${out}`);
  }

  const base: AaeRunOptions = { dataset: 'mnist', out, epochs: 1, trainSize: 50, batchSize: 50 };
  const bad: [Partial<AaeRunOptions>, string][] = [
    [{ labels: 5 }, 'labels'],
    [{ labels: 51 }, 'labels'],
    [{ clusters: 1 }, 'clusters'],
    [{ labels: 20, clusters: 16 }, 'clusters'],
    [{ clusters: 16, prior: 'mixture' }, 'prior'],
    [{ classificationLearningRate: 1e-3 }, 'classificationLearningRate'],
    [{ augment: 'shift:1' }, 'augment'],
    [{ categoryBalance: 1 }, 'categoryBalance'],
    [{ categoryNoise: 0.3 }, 'categoryNoise'],
    [{ clusters: 16, categoryBalance: -1 }, 'categoryBalance'],
    [{ decayEpoch: 0 }, 'decayEpoch'],
  ];
  const tensors = tf.memory().numTensors;
  for (const [options, argument] of bad) {
    await assert.rejects(aaeRun({ ...base, ...options }, backend), (e: unknown) => e instanceof InputError && e.argument === argument, `${argument}: ${JSON.stringify(options)}`);
  }
  assert.equal(tf.memory().numTensors, tensors, 'failed runs free what they built');
  assert.ok(!existsSync(out), 'nothing written');
});
