/**
 * The paths the browser uses read tensors asynchronously only (issue 21): on
 * WebGPU dataSync/arraySync are not supported (they return zeros) and on
 * WebGL they stall the page. A CPU backend whose synchronous read throws
 * ('cpu-nosync') runs every attack of the registry through runAttack, the
 * evaluation suite (quick and fast suites, the audit, MALT targets, minimal
 * perturbations, sanity checks, corruptions, the AAE detector) and GAN/AAE
 * sampling and metrics; each call must complete there, give bit for bit what
 * the same call gives on the plain cpu backend, and leave
 * tf.memory().numTensors as it found it.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import { tf, type tfl } from '../src/engine/tf.js';
import { buildModel } from '../src/models/zoo.js';
import { Classifier } from '../src/models/classifier.js';
import { accuracy, predictLabels } from '../src/models/evaluate.js';
import { ATTACKS } from '../src/attacks/index.js';
import { runAttack } from '../src/attacks/run.js';
import type { AttackInput } from '../src/attacks/validate.js';
import type { Norm } from '../src/attacks/types.js';
import { buildSuite } from '../src/robustness/suites.js';
import { evaluateRobustness } from '../src/robustness/evaluate.js';
import { auditEvaluation } from '../src/robustness/audit.js';
import { rankByMalt } from '../src/robustness/targets.js';
import { minimalNorms } from '../src/robustness/minimal.js';
import { runSanityChecks } from '../src/robustness/sanity.js';
import { corruptionAccuracy } from '../src/robustness/corruption-accuracy.js';
import { evaluateDetector } from '../src/robustness/defense-eval.js';
import type { Suite } from '../src/robustness/types.js';
import { aaePurifier, purifiedModel, reconstructionErrors } from '../src/defenses/aae-purifier.js';
import { buildGan } from '../src/generative/gan/architectures.js';
import { generateImages, latentCodes, type GeneratorSpec } from '../src/generative/gan/sample.js';
import { buildAae, decodeImages, encodeCategorical, encodeImages, reconstructImages } from '../src/generative/aae/architectures.js';
import { closeMetrics, generatorMetrics, openMetrics, realFidFloor } from '../src/generative/gan/gan-metrics.js';
import { Rng } from '../src/util/rng.js';

const NO_SYNC = 'cpu-nosync';
const REFUSED = /synchronous read/;

/**
 * The cpu backend with synchronous reads refused. The CPU kernels read their
 * inputs through readSync too, so kernels (and the asynchronous read) run
 * with `inside` raised; a readSync from anywhere else is a dataSync, arraySync
 * or bufferSync of the caller's, and throws.
 */
class NoSyncBackend extends MathBackendCPU {
  private inside = 0;
  /** Lowered only while the plain cpu backend is active (moving a tensor back from here reads it synchronously). */
  refuse = false;

  override readSync(dataId: tf.DataId): tf.BackendValues {
    if (this.refuse && this.inside === 0) throw new Error(`${NO_SYNC}: synchronous read (dataSync, arraySync or bufferSync); read with await tensor.data()`);
    return super.readSync(dataId);
  }

  /** As on a GPU backend: a copy of the values, delivered in a later task. */
  override async read(dataId: tf.DataId): Promise<tf.BackendValues> {
    const values = this.internally(() => super.readSync(dataId));
    const copy = Array.isArray(values) ? values.slice() : (values as tf.TypedArray).slice();
    await new Promise((resolve) => setImmediate(resolve));
    return copy;
  }

  internally<T>(f: () => T): T {
    this.inside++;
    try {
      return f();
    } finally {
      this.inside--;
    }
  }
}

let previousBackend: string;
let backend: NoSyncBackend;
let copiedKernels: string[] = [];

before(async () => {
  await tf.ready();
  previousBackend = tf.getBackend();
  await tf.setBackend('cpu');
  tf.registerBackend(NO_SYNC, () => (backend = new NoSyncBackend()), -1);
  for (const k of tf.getKernelsForBackend('cpu')) {
    tf.registerKernel({ ...k, backendName: NO_SYNC, kernelFunc: (args) => backend.internally(() => k.kernelFunc(args)) });
    copiedKernels.push(k.kernelName);
  }
  await tf.setBackend(NO_SYNC);
  await tf.setBackend('cpu');
});

after(async () => {
  backend.refuse = false;
  await tf.setBackend(previousBackend);
  tf.removeBackend(NO_SYNC);
  for (const name of copiedKernels) tf.unregisterKernel(name, NO_SYNC);
  copiedKernels = [];
});

/** Runs `f` with `name` as the backend (back to cpu afterwards) and checks it left no tensor behind. */
async function on<T>(name: string, what: string, f: () => Promise<T>): Promise<T> {
  await tf.setBackend(name);
  backend.refuse = name === NO_SYNC;
  try {
    const tensors = tf.memory().numTensors;
    const out = await f();
    assert.equal(tf.memory().numTensors, tensors, `${what} on ${name} leaves tf.memory().numTensors as it found it`);
    return out;
  } finally {
    backend.refuse = false;
    await tf.setBackend('cpu');
  }
}

/** Wall-clock figures differ from run to run; everything else must not. */
function withoutTimes(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(withoutTimes);
  if (v && typeof v === 'object' && !ArrayBuffer.isView(v)) {
    return Object.fromEntries(Object.entries(v).filter(([k]) => k !== 'seconds' && k !== 'imagesPerSecond').map(([k, x]) => [k, withoutTimes(x)]));
  }
  return v;
}

/** `f` on cpu, then on the no-sync backend: the same result bit for bit (typed arrays compared byte by byte), no tensor left behind. */
async function same<T>(what: string, f: () => Promise<T>): Promise<T> {
  const expected = await on('cpu', what, f);
  const got = await on(NO_SYNC, what, f);
  assert.deepStrictEqual(withoutTimes(got), withoutTimes(expected), `${what}: the no-sync backend gives what cpu gives`);
  return got;
}

const SHAPE: [number, number, number] = [8, 8, 1];
const N = 6;

function randomImages(n: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: n * SHAPE[0] * SHAPE[1] * SHAPE[2] }, () => rng.next());
}

/** A few random images labelled with the classifier's own predictions (so every attack has correct points to break). */
async function inputFor(classifier: Classifier, seed: number): Promise<AttackInput> {
  const images = randomImages(N, seed);
  const t = tf.tidy(() => classifier.predict(tf.tensor4d(images, [N, ...SHAPE])));
  const labels = ((await t.data()) as Int32Array).slice();
  t.dispose();
  return { images, labels, count: N, imageShape: SHAPE };
}

test('the no-sync backend refuses dataSync, arraySync and bufferSync, and serves await data()', async () => {
  await on(NO_SYNC, 'reads', async () => {
    assert.equal(tf.getBackend(), NO_SYNC);
    const t = tf.tensor1d([1, 2, 3]);
    const s = tf.sum(t);
    try {
      assert.throws(() => t.dataSync(), REFUSED);
      assert.throws(() => t.arraySync(), REFUSED);
      assert.throws(() => t.bufferSync(), REFUSED);
      assert.throws(() => s.dataSync(), REFUSED);
      // Kernels still read their inputs (tf.sum ran), and an asynchronous read gives the values.
      assert.deepEqual(Array.from(await t.data()), [1, 2, 3]);
      assert.deepEqual(await s.array(), 6);
    } finally {
      tf.dispose([t, s]);
    }
  });
});

/** Small budgets per attack; every attack of the registry must have one here. */
const PARAMS: Record<string, Record<string, unknown>[]> = {
  fgsm: [{}],
  bim: [{ steps: 3 }],
  pgd: [{ steps: 3, restarts: 2 }],
  mifgsm: [{ steps: 3 }],
  apgd: [
    { steps: 6, restarts: 2, loss: 'ce' },
    { steps: 6, restarts: 2, loss: 'dlr' },
  ],
  deepfool: [{ steps: 4 }],
  cw: [{ binarySteps: 2, steps: 5 }],
  fab: [{ steps: 3, restarts: 2 }],
  square: [{ queries: 25 }],
  simba: [{ maxQueries: 25 }, { maxQueries: 25, basis: 'dct' }],
  hopskipjump: [{ maxQueries: 80, iterations: 2, initNumEvals: 10, maxNumEvals: 20 }],
};
const EPS: Record<Norm, number> = { linf: 0.1, l2: 1, l1: 4 };

test('every attack of the registry, in every norm, untargeted and targeted: same images, verdicts and costs as on cpu', async () => {
  const models: [string, tfl.LayersModel][] = [
    ['mlp', buildModel('mlp', { inputShape: SHAPE, numClasses: 3, seed: 1 })],
    // A conv net: Square's L-inf queries go through IncrementalForward.
    ['small-cnn', buildModel('small-cnn', { inputShape: SHAPE, numClasses: 4, seed: 2 })],
  ];
  try {
    for (const [name, model] of models) {
      const classifier = Classifier.fromModel(model);
      const input = await inputFor(classifier, 7);
      let successes = 0;
      for (const attack of ATTACKS) {
        assert.ok(PARAMS[attack.name], `no small budget for ${attack.name} in this test`);
        if (name !== 'mlp' && attack.name !== 'square') continue;
        for (const norm of attack.norms) {
          for (const targeted of [false, true]) {
            if ((targeted && attack.targeted === 'untargeted') || (!targeted && attack.targeted === 'targeted')) continue;
            for (const params of PARAMS[attack.name]) {
              for (const eps of attack.kind === 'minimal' ? [undefined, EPS[norm]] : [EPS[norm]]) {
                const what = `${name} ${attack.name} ${norm} ${targeted ? 'targeted' : 'untargeted'} ${JSON.stringify(params)} eps ${eps}`;
                const r = await same(what, () => runAttack(attack, classifier, input, { norm, eps, params, seed: 3, batchSize: 4, ...(targeted ? { targeted: 'random' as const } : {}) }));
                successes += r.success.reduce((a, b) => a + b, 0);
              }
            }
          }
        }
      }
      assert.ok(successes > 0, 'the attacks break some points (the comparison is not of clean images only)');
      // Least-likely targets come from the clean logits' arg-min, read with the predictions.
      await same(`${name} pgd least-likely`, () => runAttack(ATTACKS.find((a) => a.name === 'pgd')!, classifier, input, { eps: 0.1, params: { steps: 2 }, targeted: 'least-likely', batchSize: 4 }));
      classifier.dispose();
    }
  } finally {
    for (const [, model] of models) model.dispose();
  }
});

test('the evaluation suite: quick and fast suites, the audit, MALT, minimal perturbations, sanity checks, corruptions, accuracy', async () => {
  const model = buildModel('mlp', { inputShape: SHAPE, numClasses: 3, seed: 1 });
  const classifier = Classifier.fromModel(model);
  try {
    const input = await inputFor(classifier, 8);
    for (const norm of ['linf', 'l2'] as const) {
      const quick = buildSuite({ suite: 'quick', norm, numClasses: 3 });
      for (const s of quick.stages) s.params.steps = 5;
      await same(`quick suite ${norm}`, () => evaluateRobustness(classifier, input, { suite: quick, eps: EPS[norm], seed: 2, batchSize: 4 }));
      const fast = buildSuite({ suite: 'fast', norm, numClasses: 3 });
      for (const s of fast.stages) s.params.steps = 4;
      const eps = EPS[norm] / 3;
      const reference: Suite = { name: 'reference', norm, stages: [...fast.stages, { name: 'pgd', attack: 'pgd', params: { steps: 5 }, whiteBox: true }, { name: 'square', attack: 'square', params: { queries: 20 }, whiteBox: false }] };
      await same(`fast suite ${norm} and its audit`, async () => {
        const evaluation = await evaluateRobustness(classifier, input, { suite: fast, eps, seed: 2, batchSize: 4 });
        return { evaluation, audited: await auditEvaluation(classifier, input, fast, evaluation, { reference, eps, seed: 2, batchSize: 4, sample: 2 }) };
      });
      await same(`MALT targets ${norm}`, () => rankByMalt(classifier, input.images, input.labels, norm));
    }
    await same('minimal perturbations', () => minimalNorms(classifier, input, { attacks: ['deepfool', 'fab', 'cw'], norm: 'l2', seed: 1, batchSize: 4 }));
    const checks = await same('sanity checks', () =>
      runSanityChecks({
        classifier,
        sample: input,
        norm: 'linf',
        eps: 0.1,
        seed: 4,
        reference: { attack: 'apgd', params: { steps: 4 } },
        sweep: { eps: [0.05, 0.1], robustAccuracy: [0.5, 0.4], count: N },
        whiteBoxSurvivors: Int32Array.of(0, 1),
      }),
    );
    assert.ok(checks.every((c) => c.verdict !== 'skipped' || c.id === 'monotone-in-eps'), 'the checks that read tensors ran');
    await same('corruption accuracy', () => corruptionAccuracy(classifier, input.images, input.labels, SHAPE, { corruptions: ['gaussian-noise', 'rotation'], severities: [1, 3], batchSize: 4 }));
    const set = { ...input, imageShape: SHAPE };
    await same('accuracy and predicted labels', async () => [await accuracy(model, set, 4), await predictLabels(model, set, 4)]);
  } finally {
    classifier.dispose();
    model.dispose();
  }
});

test('GAN and AAE sampling, the AAE purifier and detector, the GAN metrics', async () => {
  for (const arch of ['mlp', 'cgan']) {
    const g = buildGan(arch, { imageShape: SHAPE, numClasses: 3, latentDim: 4, seed: 5 });
    try {
      const spec: GeneratorSpec = { latentDim: g.latentDim, numClasses: 3, conditional: g.conditional, imageShape: SHAPE };
      const z = latentCodes(new Rng(1), 5, g.latentDim);
      await same(`${arch} generateImages`, () => generateImages(g.generator, spec, z, g.conditional ? Int32Array.of(0, 1, 2, 0, 1) : undefined, 2));
    } finally {
      g.generator.dispose();
      g.discriminator.dispose();
    }
  }
  const images = randomImages(5, 9);
  const aae = buildAae('mlp', { imageShape: SHAPE, latentDim: 3, seed: 6 });
  const categorical = buildAae('mlp', { imageShape: SHAPE, latentDim: 3, seed: 6, categories: 4 });
  const bareModel = buildModel('mlp', { inputShape: SHAPE, numClasses: 3, seed: 1 });
  const bare = Classifier.fromModel(bareModel);
  const purifier = aaePurifier('memory', aae.encoder, aae.decoder);
  try {
    const codes = await same('encodeImages', () => encodeImages(aae.encoder, images, SHAPE, 2));
    await same('decodeImages', () => decodeImages(aae.decoder, codes, 3, 2));
    await same('reconstructImages', () => reconstructImages(aae, images));
    await same('encodeCategorical', () => encodeCategorical(categorical.encoder, images, SHAPE, 2));
    await same('reconstructImages (categorical)', () => reconstructImages(categorical, images));
    await same('reconstructionErrors', () => reconstructionErrors(purifier, images));
    const purified = purifiedModel(bareModel, purifier, 'bpda');
    const input = await inputFor(bare, 10);
    await same('evaluateDetector', () => evaluateDetector(bare, purified, purifier, input, { eps: 0.1, norm: 'linf', seed: 1 }));
  } finally {
    bare.dispose();
    bareModel.dispose();
    purifier.dispose();
    aae.discriminator.dispose();
    for (const m of [categorical.encoder, categorical.decoder, categorical.discriminator, categorical.categoryDiscriminator]) m?.dispose();
  }
  const set = (count: number, seed: number) => ({ images: randomImages(count, seed), labels: Int32Array.from({ length: count }, (_, i) => i % 3), count, imageShape: SHAPE });
  const data = { name: 'random', source: 'memory', train: set(12, 10), test: set(9, 11), numClasses: 3, classNames: ['a', 'b', 'c'], skipped: 0 };
  await same('GAN metrics', async () => {
    // openMetrics takes the classifier over (closeMetrics disposes it).
    const ctx = await openMetrics(buildModel('mlp', { inputShape: SHAPE, numClasses: 3, seed: 8 }), 'memory', data, 9);
    try {
      return {
        real: ctx.real,
        metrics: await generatorMetrics(ctx, randomImages(6, 12), 6, 1, Int32Array.of(0, 1, 2, 0, 1, 2)),
        floor: await realFidFloor(ctx, data, 9),
      };
    } finally {
      closeMetrics(ctx);
    }
  });
});
