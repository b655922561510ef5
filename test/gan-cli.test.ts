/**
 * The `advlab gan` job end to end, on tiny runs (128 training images, 2 epochs
 * of 4 steps): result.json against its schema, per-epoch grids and
 * history.csv, the self-contained report, metrics from a tiny classifier
 * trained here, a kill-free resume that ends bit-identical, `gan sample` to
 * PNG and NPY (with --class for a conditional run, refused otherwise), tensor
 * hygiene in-process, and bad input (exit 2, one line naming the option).
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { advlab, compileSchema, readJson, type Json, type Run } from './fixtures/cli.js';
import { tf } from '../src/engine/tf.js';
import { initBackend } from '../src/node/backend.js';
import type { BackendInfo } from '../src/engine/backend.js';
import { readNpy } from '../src/node/data/formats/npy.js';
import { buildModel } from '../src/models/zoo.js';
import { saveModel } from '../src/node/model-files.js';
import { FileFormatError, InputError } from '../src/errors.js';
import { ganRun, HISTORY_COLUMNS, type GanRunEvent, type GanRunOptions } from '../src/jobs/gan-run.js';
import { sampleGan } from '../src/jobs/gan-sample.js';
import { evaluateGan } from '../src/jobs/gan-eval.js';

const dir = mkdtempSync(join(tmpdir(), 'advlab-gan-cli-'));
const classifier = join(dir, 'classifier');
const full = join(dir, 'full');
const conditional = join(dir, 'cgan');
const validate = compileSchema('schemas/gan.result.schema.json');
// The tiny run every test builds on: 128 images, batches of 32, 2 epochs, metrics on 100 samples.
const tiny = ['gan', '--dataset', 'mnist', '--train-n', '128', '--batch-size', '32', '--latent', '16', '--classifier', classifier, '--metric-samples', '100', '--no-progress'];
let backend: BackendInfo;

before(async () => {
  const r = advlab(['train', '--model', 'mlp', '--epochs', '1', '--train-n', '500', '--out', classifier, '--no-progress']);
  assert.equal(r.code, 0, r.stderr);
  backend = await initBackend({ backend: 'wasm' });
});

const lastLine = (r: Run) => r.stdout.trim().split('\n').pop();
const png = (file: string) => PNG.sync.read(readFileSync(file));
/** Every figure of a history except the times, which differ between runs. */
const figures = (history: Json[]) => history.map(({ seconds: _s, monitor, ...rest }) => ({ ...rest, monitor: monitor ? { ...monitor, metricSeconds: undefined } : undefined }));

test('advlab gan: result.json matches its schema; grids, history.csv, samples, models and a self-contained report; finite metrics above the floor', () => {
  const r = advlab([...tiny, '--epochs', '2', '--out', full]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^metrics: classifier .* features = input of its last Dense layer "logits" \(128 values\), logits$/m);
  assert.match(r.stdout, /^FID floor \(real train vs real test, 100 each\): [\d.]+$/m);
  assert.match(r.stdout, /^epoch 2\/2: D loss [\d.]+ G loss [\d.]+ D\(x\) [\d.]+ D\(G\(z\)\) [\d.]+ \([\d.]+s\) \| FID [\d.]+ IS [\d.]+ /m);
  assert.equal(lastLine(r), `result: ${join(full, 'result.json')}`);

  const result = readJson(join(full, 'result.json'));
  assert.ok(validate(result), JSON.stringify(validate.errors));
  assert.deepEqual([result.command, result.backend, result.options.arch, result.options.loss, result.options.trainSize, result.dataset.trainSize, result.epochs], ['gan', 'wasm', 'scgan', 'ns', 128, 128, 2]);
  // The default scgan: 100 k-means clusters of the 128 images.
  assert.deepEqual([result.options.clusters, result.clustering.k, result.clustering.sizes.reduce((a: number, b: number) => a + b, 0), result.generator.conditional], [100, 100, 128, false]);
  assert.match(r.stdout, /^clusters: k-means on pixels, k = 100, sizes \d+-\d+, \d+ iterations.*label purity [\d.]+% \(labels not used\)$/m);
  assert.deepEqual(result.history.map((h: Json) => h.epoch), [1, 2]);
  for (const h of result.history) {
    for (const key of ['dLoss', 'gLoss', 'dReal', 'dFake', 'fid', 'inceptionScore', 'klFromUniform', 'precision', 'recall']) {
      const v = key in h ? h[key] : h.monitor[key];
      assert.ok(Number.isFinite(v), `epoch ${h.epoch} ${key} = ${v}`);
    }
  }
  const m = result.metrics;
  assert.equal(m.epoch, 2);
  assert.equal(m.samples, 100);
  assert.ok(Number.isFinite(m.fid) && m.fid >= 0 && Number.isFinite(m.inceptionScore) && m.inceptionScore >= 1 - 1e-6, JSON.stringify(m));
  assert.equal(m.coverage.counts.reduce((a: number, b: number) => a + b, 0), 100);
  assert.ok(Number.isFinite(result.fidFloor) && result.fidFloor >= 0, `floor ${result.fidFloor}`);
  // Two epochs of 4 steps make no digits: the generator is still far from the data, far above the real-vs-real floor.
  assert.ok(m.fid > result.fidFloor, `FID ${m.fid} vs floor ${result.fidFloor}`);
  assert.equal(m.fid, result.history[1].monitor.fid);
  assert.deepEqual(result.metricsClassifier, { path: classifier, featureLayer: 'logits', featureDim: 128, outputs: 'logits' });
  assert.equal(result.metricsSkipped, null);
  // The schema is not vacuous: metrics without their classifier, or a fraction above 1, are rejected.
  assert.equal(validate({ ...result, metricsClassifier: null }), false);
  assert.equal(validate({ ...result, metrics: { ...m, precision: 1.5 } }), false);

  // One grid per epoch: 8 x 8 images of 28 x 28 drawn at scale 2 with 2-pixel gaps; samples.png is the last one.
  assert.deepEqual(result.files.grids, ['grids/epoch-001.png', 'grids/epoch-002.png']);
  for (const f of result.files.grids) {
    const image = png(join(full, f));
    assert.deepEqual([image.width, image.height], [2 + 8 * 58, 2 + 8 * 58], f);
  }
  assert.deepEqual(readFileSync(join(full, 'samples.png')), readFileSync(join(full, 'grids', 'epoch-002.png')));
  assert.notDeepEqual(readFileSync(join(full, 'grids', 'epoch-001.png')), readFileSync(join(full, 'grids', 'epoch-002.png')), 'the generator moved');

  const csv = readFileSync(join(full, 'history.csv'), 'utf8').trim().split('\n');
  assert.equal(csv.length, 3);
  assert.equal(csv[0], HISTORY_COLUMNS.join(','));
  const row = csv[2].split(',');
  assert.equal(row.length, HISTORY_COLUMNS.length);
  assert.equal(Number(row[HISTORY_COLUMNS.indexOf('fid')]), result.history[1].monitor.fid);
  assert.equal(Number(row[HISTORY_COLUMNS.indexOf('dLoss')]), result.history[1].dLoss);

  for (const model of ['generator', 'discriminator']) assert.ok(existsSync(join(full, model, 'model.json')) && existsSync(join(full, model, 'weights.bin')), model);

  const html = readFileSync(join(full, 'report.html'), 'utf8');
  assert.ok(!/<script/i.test(html), 'no script');
  assert.ok(!/(?:src|href)\s*=\s*["']?\s*(?:https?:)?\/\//i.test(html) && !/url\(\s*["']?\s*(?:https?:)?\/\//i.test(html) && !/@import/i.test(html), 'no external resource');
  assert.equal((html.match(/<svg/g) ?? []).length, 3, 'loss, D output and FID plots');
  assert.equal((html.match(/<img src="data:image\/png;base64,/g) ?? []).length, 2, 'both grids inlined');
  assert.ok(html.includes('real vs real floor'), 'the floor in the FID plot');
});

test('a run stopped after epoch 1 and resumed ends with the same history, metrics and weights as the uninterrupted run', () => {
  const part = join(dir, 'part');
  const first = advlab([...tiny, '--epochs', '1', '--out', part]);
  assert.equal(first.code, 0, first.stderr);
  const second = advlab([...tiny, '--epochs', '2', '--out', part, '--resume']);
  assert.equal(second.code, 0, second.stderr);
  assert.match(second.stdout, /^resumed after epoch 1$/m);
  assert.match(second.stdout, /^FID floor .*\(cached\)$/m, 'the floor is not recomputed');
  const a = readJson(join(full, 'result.json'));
  const b = readJson(join(part, 'result.json'));
  assert.ok(validate(b), JSON.stringify(validate.errors));
  assert.equal(b.resumedFromEpoch, 1);
  assert.deepEqual(figures(b.history), figures(a.history));
  assert.deepEqual(b.metrics, a.metrics);
  assert.equal(b.fidFloor, a.fidFloor);
  for (const model of ['generator', 'discriminator']) assert.deepEqual(readFileSync(join(part, model, 'weights.bin')), readFileSync(join(full, model, 'weights.bin')), model);
  assert.equal(readFileSync(join(part, 'history.csv'), 'utf8').trim().split('\n').length, 3);
  assert.ok(existsSync(join(part, 'grids', 'epoch-001.png')) && existsSync(join(part, 'grids', 'epoch-002.png')));

  // Resuming with other training settings is refused, naming --resume and the setting.
  const other = advlab([...tiny, '--epochs', '3', '--out', part, '--resume', '--loss', 'hinge']);
  assert.equal(other.code, 2);
  assert.match(other.stderr.trim(), /^advlab: --resume: the checkpoint in .* was trained with other settings: loss "ns" \(now "hinge"\).*$/);
});

test('in-process: a conditional run keeps the tensor count, reports its events, draws one class per grid row', async () => {
  const events: GanRunEvent['type'][] = [];
  const before = tf.memory().numTensors;
  const r = await ganRun({ dataset: 'mnist', out: conditional, arch: 'cgan', trainSize: 64, epochs: 1, batchSize: 32, latentDim: 8, classifier, metricSamples: 20, onProgress: (e) => events.push(e.type) }, backend);
  assert.equal(tf.memory().numTensors, before, 'tensors');
  for (const type of ['dataset', 'classifier', 'fid-floor', 'epoch-start', 'batch', 'epoch-end'] as const) assert.ok(events.includes(type), type);
  assert.ok(validate(JSON.parse(readFileSync(join(conditional, 'result.json'), 'utf8'))), JSON.stringify(validate.errors));
  assert.equal(r.generator.conditional, true);
  // Classes in turn: 20 samples, 2 per class to classify.
  assert.equal(r.metrics!.samples, 20);
  // 10 class rows (labelled at the left: a 6-pixel digit at font scale 2, and a gap) of 8 columns.
  const grid = png(join(conditional, 'samples.png'));
  assert.deepEqual([grid.width, grid.height], [2 + 6 + 2 + 8 * 58, 2 + 10 * 58]);

  // Sampling is seeded, also in-process: the same seed gives the same images, another seed others.
  const s = (seed: number, out: string) => sampleGan({ model: conditional, n: 6, class: 7, seed, out: join(dir, out) });
  await s(1, 'a.npy');
  await s(1, 'b.npy');
  await s(2, 'c.npy');
  assert.equal(tf.memory().numTensors, before, 'tensors after sampling');
  const read = (f: string) => Array.from(readNpy(join(dir, f)).data);
  assert.deepEqual(read('a.npy'), read('b.npy'));
  assert.notDeepEqual(read('a.npy'), read('c.npy'));
});

test('in-process: a self-conditioned (scgan) run clusters its images, keeps the cluster prior in the generator, and samples like an unconditional one', async () => {
  const out = join(dir, 'scgan');
  const events: GanRunEvent[] = [];
  const before = tf.memory().numTensors;
  const r = await ganRun({ dataset: 'mnist', out, arch: 'scgan', clusters: 4, trainSize: 64, epochs: 1, batchSize: 32, latentDim: 8, classifier, metricSamples: 20, onProgress: (e) => events.push(e) }, backend);
  assert.equal(tf.memory().numTensors, before, 'tensors');
  assert.ok(validate(JSON.parse(readFileSync(join(out, 'result.json'), 'utf8'))), JSON.stringify(validate.errors));
  const c = r.clustering!;
  assert.deepEqual([c.k, c.sizes.length, c.sizes.reduce((a, b) => a + b, 0), r.options.clusters, r.generator.numClasses, r.generator.conditional], [4, 4, 64, 4, 4, false]);
  assert.ok(c.sizes.every((n, i) => n > 0 && Math.abs(c.prior[i] - n / 64) < 1e-12));
  assert.ok(c.labelPurity >= 0.1 && c.labelPurity <= 1);
  assert.ok(events.some((e) => e.type === 'clustering' && e.clustering.k === 4));
  // The prior travels with the generator, so its folder alone samples right.
  const meta = JSON.parse(readFileSync(join(out, 'generator', 'model.json'), 'utf8')).userDefinedMetadata;
  assert.deepEqual(meta.advlabGenerator.clusterPrior, c.prior);
  // An unconditional grid: 8 x 8, no row labels.
  const grid = png(join(out, 'samples.png'));
  assert.deepEqual([grid.width, grid.height], [2 + 8 * 58, 2 + 8 * 58]);
  assert.equal(r.metrics!.classAccuracy, null);

  const s = await sampleGan({ model: join(out, 'generator'), n: 5, out: join(dir, 'sc.npy') });
  assert.deepEqual([s.conditional, s.classes, s.shape], [false, null, [5, 28, 28, 1]]);
  await assert.rejects(sampleGan({ model: out, n: 2, class: 1, out: join(dir, 'sc.png') }), (e: unknown) => e instanceof InputError && e.argument === 'class' && /self-conditioned/.test(e.message));
  // A prior that is not a distribution over the one-hot input is a corrupt file: named, as the fault of the option that gave it.
  const corrupt = join(dir, 'scgan-corrupt');
  cpSync(join(out, 'generator'), corrupt, { recursive: true });
  const json = JSON.parse(readFileSync(join(corrupt, 'model.json'), 'utf8'));
  json.userDefinedMetadata.advlabGenerator.clusterPrior = c.prior.slice(1);
  writeFileSync(join(corrupt, 'model.json'), JSON.stringify(json));
  await assert.rejects(sampleGan({ model: corrupt, n: 2, out: join(dir, 'bad.npy') }), (err: unknown) => err instanceof InputError && err.argument === 'model' && err.cause instanceof FileFormatError && err.message.includes(join(corrupt, 'model.json')) && /clusterPrior must be 4 non-negative probabilities summing to 1/.test(err.message));
  const e = await evaluateGan({ model: out, n: 20 }, backend);
  assert.deepEqual([e.generator.conditional, e.generator.numClasses, e.metrics.classAccuracy], [false, 10, null]);
  assert.equal(tf.memory().numTensors, before, 'tensors after sampling');
  await assert.rejects(ganRun({ dataset: 'mnist', out: join(dir, 'no'), arch: 'dcgan', clusters: 4, epochs: 1 }, backend), (err: unknown) => err instanceof InputError && err.argument === 'clusters' && /scgan/.test(err.message));
});

test('advlab gan sample writes a PNG grid and an NPY of shape [n, h, w, c] in [0, 1]; --class only for conditional runs', () => {
  const grid = join(dir, 'samples.png');
  const r = advlab(['gan', 'sample', '--model', full, '--n', '12', '--out', grid]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(lastLine(r), `samples: ${grid}`);
  const image = png(grid);
  // 12 images in 4 columns (ceil(sqrt(12))) and 3 rows.
  assert.deepEqual([image.width, image.height], [2 + 4 * 58, 2 + 3 * 58]);

  const npy = join(dir, 'samples.npy');
  const n = advlab(['gan', 'sample', '--model', join(full, 'generator'), '--n', '5', '--seed', '4', '--out', npy]);
  assert.equal(n.code, 0, n.stderr);
  const array = readNpy(npy);
  assert.deepEqual([array.dtype, array.shape], ['<f4', [5, 28, 28, 1]]);
  assert.ok(Array.from(array.data).every((v) => v >= 0 && v <= 1));

  const c = advlab(['gan', 'sample', '--model', conditional, '--n', '4', '--class', '3', '--out', join(dir, 'three.npy')]);
  assert.equal(c.code, 0, c.stderr);
  assert.match(c.stdout, /generated 4 images of 28x28x1 of class 3/);
  assert.deepEqual(readNpy(join(dir, 'three.npy')).shape, [4, 28, 28, 1]);

  const refused = advlab(['gan', 'sample', '--model', full, '--n', '4', '--class', '3', '--out', join(dir, 'nope.png')]);
  assert.equal(refused.code, 2);
  assert.match(refused.stderr.trim(), /^advlab: --class: the generator in .* is self-conditioned \(scgan\).*not a class.*--arch cgan or acgan.*$/);
  assert.ok(!existsSync(join(dir, 'nope.png')));
});

test('advlab gan eval: the figures of a run (its dataset and classifier by default) to a JSON file that matches its schema; in-process, class accuracy of a conditional run', async () => {
  const out = join(dir, 'eval.json');
  const r = advlab(['gan', 'eval', '--model', full, '--n', '60', '--out', out]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^FID [\d.]+ \(floor, real train vs real test: [\d.]+\)$/m);
  assert.match(r.stdout, /^class coverage: KL from uniform [\d.]+, smallest class \d+ at [\d.]+%/m);
  assert.equal(lastLine(r), `result: ${out}`);
  const e = readJson(out);
  assert.ok(compileSchema('schemas/gan-eval.result.schema.json')(e));
  assert.deepEqual([e.command, e.options.dataset, e.options.classifier, e.options.n, e.options.realSamples, e.generator.epochs, e.metrics.samples], ['gan eval', 'mnist', classifier, 60, 60, 2, 60]);
  assert.equal(e.metrics.coverage.counts.reduce((a: number, b: number) => a + b, 0), 60);
  assert.equal(e.metrics.classAccuracy, null);
  // Seeded: the same seed gives the same figures.
  const again = advlab(['gan', 'eval', '--model', full, '--n', '60']);
  assert.equal(again.code, 0, again.stderr);
  assert.equal(again.stdout.match(/^FID .*$/m)![0], r.stdout.match(/^FID .*$/m)![0]);

  const before = tf.memory().numTensors;
  const c = await evaluateGan({ model: conditional, n: 40 }, backend);
  assert.equal(tf.memory().numTensors, before, 'tensors');
  const acc = c.metrics.classAccuracy!;
  assert.equal(acc.perClass.length, 10);
  // Classes in turn: 4 samples per class, so the overall accuracy is the mean of the per-class ones.
  assert.ok(Math.abs(acc.overall - acc.perClass.reduce((a, b) => a + b, 0) / 10) < 1e-12);
  assert.ok(acc.perClass.every((a) => a * 4 === Math.round(a * 4)));
  await assert.rejects(evaluateGan({ model: full, n: 2 }, backend), (err: unknown) => err instanceof InputError && err.argument === 'n');
});

test('bad input: exit 2 and one line naming the option, nothing written; the library names its arguments', async () => {
  const out = join(dir, 'bad');
  const cases: [string[], RegExp][] = [
    [['gan', '--arch', 'vae', '--out', out], /^error: option '--arch <name>' argument 'vae' is invalid\. Allowed choices are mlp, dcgan, cgan, acgan, infogan, scgan\.$/],
    [[...tiny, '--metric-samples', '1', '--out', out], /^advlab: --metric-samples: expected an integer >= 4 .*got 1$/],
    [[...tiny, '--loss', 'hinge', '--label-smoothing', '0.9', '--out', out], /^advlab: --label-smoothing: applies to the minimax and ns losses only, not hinge$/],
    [['gan', '--classifier', join(dir, 'no-such-model'), '--out', out], /^advlab: --classifier: ".*no-such-model" does not exist/],
    [['gan', 'sample', '--model', full, '--out', join(dir, 'x.jpg')], /^advlab: --out: expected a file name ending in \.png .* or \.npy/],
  ];
  for (const [args, pattern] of cases) {
    const r = advlab(args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr.split('\n')[0], pattern);
    if (r.stderr.startsWith('advlab:')) assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.ok(!existsSync(out), `${args.join(' ')} wrote ${out}`);
  }

  // In-process, where no process start is paid: each bad option named by its argument.
  const small = buildModel('mlp', { inputShape: [8, 8, 1], numClasses: 10, seed: 0 });
  await saveModel(small, join(dir, 'small-classifier'));
  small.dispose();
  const base: GanRunOptions = { dataset: 'mnist', out, epochs: 1, trainSize: 32, batchSize: 32 };
  const bad: [Partial<GanRunOptions>, string, RegExp][] = [
    [{ arch: 'vae' }, 'arch', /unknown GAN architecture "vae"/],
    [{ loss: 'wgan' }, 'loss', /unknown GAN loss "wgan"/],
    [{ metricSamples: 3 }, 'metricSamples', /integer >= 4/],
    [{ gpLambda: 5 }, 'gpLambda', /wgan-gp loss only/],
    [{ loss: 'wgan-gp', gpLambda: -1 }, 'gpLambda', />= 0/],
    [{ beta1: 1 }, 'beta1', /\[0, 1\)/],
    [{ latentDim: 0 }, 'latentDim', /integer in \[1, 4096\]/],
    [{ trainSize: 1e6 }, 'trainSize', /train split has only 7996/],
    [{ clusters: 33 }, 'clusters', /at most the number of training images \(32\), got 33/],
    [{ clusters: 1 }, 'clusters', /integer in \[2, 1000\]/],
    [{ classifier: join(dir, 'small-classifier') }, 'classifier', /expects inputs of shape \[8, 8, 1\] but got images of shape \[28, 28, 1\]/],
    [{ classifier, metricSamples: 5000 }, 'metricSamples', /test split has only 2004/],
  ];
  const tensors = tf.memory().numTensors;
  for (const [options, argument, message] of bad) {
    await assert.rejects(ganRun({ ...base, ...options }, backend), (e: unknown) => e instanceof InputError && e.argument === argument && message.test(e.message), `${argument}: ${JSON.stringify(options)}`);
  }
  assert.equal(tf.memory().numTensors, tensors, 'failed runs free what they loaded');
  assert.ok(!existsSync(out), 'nothing written');
  await assert.rejects(sampleGan({ model: full, n: 0, out: join(dir, 'x.png') }), (e: unknown) => e instanceof InputError && e.argument === 'n');
  await assert.rejects(sampleGan({ model: conditional, n: 2, class: 10, out: join(dir, 'x.png') }), (e: unknown) => e instanceof InputError && e.argument === 'class' && /\[0, 9\]/.test(e.message));
  await assert.rejects(sampleGan({ model: dir, n: 2, out: join(dir, 'x.png') }), (e: unknown) => e instanceof InputError && e.argument === 'model');
});
