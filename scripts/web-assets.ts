// Makes what the playground and the demo ship (assets/web, assets/models):
// `node --import tsx scripts/web-assets.ts [--plain <run>] [--pgd-at <run>] [--consistency <run>] [--scgan <run>] [--aae <run>] [--only data,plain,pgd-at,consistency,scgan,aae]`
// (a run: an `advlab train` folder to ship instead of training here)
// - assets/web/mnist-test-images.npy, -labels.npy: the whole mnist test split of
//   advlab's shared split (2,004 digits), so a page needs no dataset package. The
//   `mnist` package stores pixels with three decimals (0.255, not 65/255), so they
//   are kept as uint16 thousandths: k / 1000 gives back the very float32 Node reads;
// - assets/models/mnist-small-cnn: the zoo's small-cnn trained with `advlab train`'s
//   defaults and seed 0;
// - assets/models/mnist-small-cnn-pgd-at: its adversarially trained twin (issue 7's
//   recipe: `advlab train --defense pgd-at --defense-eps 0.3 --defense-steps 10
//   --eps-warmup 3 --epochs 12`), copied from the run given, else trained here (about 40 min).
// - assets/models/mnist-small-cnn-consistency-0.5: small-cnn trained for randomized
//   smoothing at sigma 0.5 with consistency regularization (`advlab train --defense
//   consistency --defense-eps 0.5 --epochs 15`, as `npm run bench -- certify`), copied
//   from the run given, else trained here (about 20 min).
// - assets/models/mnist-scgan-generator: the default `advlab gan` (scgan) generator, and
//   assets/models/mnist-aae-encoder, -decoder: the default `advlab aae` (gaussian prior), from
//   the runs given (--scgan <run>, --aae <run>) or trained here (about 25 and 3 minutes).
// Weights are stored as float16 (tfjs dequantizes them to float32 on load), half
// the bytes of float32; provenance.json records the recipe, the accuracy of the
// stored weights on the test split, and their hash.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend } from '../src/node/backend.js';
import { trainRun } from '../src/jobs/train-run.js';
import { defenseRun } from '../src/jobs/defense-run.js';
import { ganRun } from '../src/jobs/gan-run.js';
import { aaeRun } from '../src/jobs/aae-run.js';
import { loadBuiltinDataset } from '../src/node/data/builtin.js';
import { loadModel, saveArtifacts } from '../src/node/model-files.js';
import { modelToArtifacts, modelFromArtifacts } from '../src/models/artifacts.js';
import { accuracy } from '../src/models/evaluate.js';
import { writeJsonAtomic } from '../src/node/atomic.js';
import { writeNpy } from '../src/node/data/formats/npy.js';
import { sha256Hex } from '../src/util/hash.js';
import { tf } from '../src/engine/tf.js';

const root = join(import.meta.dirname, '..');
const argv = process.argv.slice(2);
const option = (name: string) => (argv.includes(name) ? argv[argv.indexOf(name) + 1] : undefined);
const only = new Set((option('--only') ?? 'data,plain,pgd-at,consistency,scgan,aae').split(','));
const plainRun = option('--plain');
const pgdAtRun = option('--pgd-at');
const backend = await initBackend({ backend: 'wasm' });
const data = loadBuiltinDataset('mnist');

if (only.has('data')) {
  const test = data.test;
  const thousandths = Uint16Array.from(test.images, (v) => Math.round(v * 1000));
  const lossy = thousandths.findIndex((k, i) => Math.fround(k / 1000) !== test.images[i]);
  if (lossy >= 0) throw new Error(`pixel ${lossy} (${test.images[lossy]}) is not a number of thousandths`);
  mkdirSync(join(root, 'assets', 'web'), { recursive: true });
  writeNpy(join(root, 'assets', 'web', 'mnist-test-images.npy'), thousandths, [test.count, ...test.imageShape]);
  writeNpy(join(root, 'assets', 'web', 'mnist-test-labels.npy'), Uint8Array.from(test.labels), [test.count]);
  console.log(`assets/web: ${test.count} mnist test digits`);
}

const work = mkdtempSync(join(tmpdir(), 'advlab-web-assets-'));
try {
  if (only.has('plain')) {
    const dir = plainRun ?? join(work, 'plain');
    if (!plainRun) await trainRun({ model: 'small-cnn', dataset: 'mnist', out: dir, seed: 0 }, backend);
    const run = JSON.parse(readFileSync(join(dir, 'result.json'), 'utf8')) as { epochs: number };
    await shipModel(join(dir, 'model'), 'mnist-small-cnn', { recipe: 'advlab train --model small-cnn --dataset mnist --seed 0', epochs: run.epochs });
  }
  if (only.has('pgd-at')) await shipPgdAt();
  if (only.has('consistency')) {
    const dir = option('--consistency') ?? join(work, 'consistency');
    if (!option('--consistency')) await defenseRun({ model: 'small-cnn', dataset: 'mnist', out: dir, seed: 0, defense: 'consistency', defenseEps: 0.5, epochs: 15, evidence: false }, backend);
    const run = JSON.parse(readFileSync(join(dir, 'result.json'), 'utf8')) as { epochs: number; defense?: { name: string; eps: number } & Record<string, unknown> };
    if (run.defense?.name !== 'consistency' || run.defense.eps !== 0.5) throw new Error(`${dir} is not a consistency run at sigma 0.5`);
    await shipModel(join(dir, 'model'), 'mnist-small-cnn-consistency-0.5', { recipe: 'advlab train --model small-cnn --dataset mnist --defense consistency --defense-eps 0.5 --epochs 15 --seed 0', epochs: run.epochs, defense: run.defense, sigma: 0.5 });
  }
  if (only.has('scgan')) {
    const dir = option('--scgan') ?? join(work, 'scgan');
    if (!option('--scgan')) await ganRun({ dataset: 'mnist', out: dir }, backend);
    const run = JSON.parse(readFileSync(join(dir, 'result.json'), 'utf8')) as { epochs: number; metrics: Record<string, unknown> | null; options: Record<string, unknown> };
    await shipWeights(join(dir, 'generator'), 'mnist-scgan-generator', { recipe: 'advlab gan --dataset mnist (defaults: scgan, 100 k-means clusters, ns loss, weight average)', epochs: run.epochs, metrics: run.metrics });
  }
  if (only.has('aae')) {
    const dir = option('--aae') ?? join(work, 'aae');
    if (!option('--aae')) await aaeRun({ dataset: 'mnist', out: dir }, backend);
    const run = JSON.parse(readFileSync(join(dir, 'result.json'), 'utf8')) as { epochs: number; test: { reconstructionMse: number } };
    const recipe = { recipe: 'advlab aae --dataset mnist (defaults: mlp, gaussian prior)', epochs: run.epochs, testReconstructionMse: run.test.reconstructionMse };
    await shipWeights(join(dir, 'encoder'), 'mnist-aae-encoder', recipe);
    await shipWeights(join(dir, 'decoder'), 'mnist-aae-decoder', recipe);
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}

async function shipPgdAt() {
  let runDir = pgdAtRun;
  if (!runDir) {
    runDir = join(work, 'pgd-at');
    await defenseRun({ model: 'small-cnn', dataset: 'mnist', out: runDir, seed: 0, defense: 'pgd-at', defenseEps: 0.3, defenseSteps: 10, epsWarmup: 3, epochs: 12, batchSize: 128, evidence: false }, backend);
  }
  if (!existsSync(join(runDir, 'model', 'model.json'))) throw new Error(`${runDir} holds no model/`);
  const run = JSON.parse(readFileSync(join(runDir, 'result.json'), 'utf8')) as { epochs: number; options: Record<string, unknown>; defense?: Record<string, unknown> };
  await shipModel(join(runDir, 'model'), 'mnist-small-cnn-pgd-at', { recipe: 'advlab train --model small-cnn --dataset mnist --defense pgd-at --defense-eps 0.3 --defense-steps 10 --eps-warmup 3 --epochs 12 --batch-size 128', epochs: run.epochs, defense: run.defense ?? null });
}

/** Stores a model with float16 weights and its provenance; returns the stored artifacts. */
async function shipWeights(from: string, name: string, provenance: Record<string, unknown>): Promise<tf.io.ModelArtifacts> {
  const model = await loadModel(from);
  const artifacts = await modelToArtifacts(model);
  model.dispose();
  const half = toFloat16(artifacts);
  const dir = join(root, 'assets', 'models', name);
  rmSync(dir, { recursive: true, force: true });
  saveArtifacts(half, dir);
  writeJsonAtomic(join(dir, 'provenance.json'), {
    ...provenance,
    weights: 'float16 (dequantized to float32 on load)',
    weightsSha256: sha256Hex(readFileSync(join(dir, 'weights.bin'))),
    tfjsVersion: tf.version_core,
    backend: `${backend.name} (${backend.threads} thread, ${backend.kernels} kernels)`,
  });
  console.log(`assets/models/${name}`);
  return half;
}

/** A classifier with float16 weights, scored as a page loads it on the test split. */
async function shipModel(from: string, name: string, recipe: Record<string, unknown>) {
  const half = await shipWeights(from, name, recipe);
  const dir = join(root, 'assets', 'models', name);
  const stored = await modelFromArtifacts(half);
  const testAccuracy = await accuracy(stored, data.test);
  stored.dispose();
  const provenance = JSON.parse(readFileSync(join(dir, 'provenance.json'), 'utf8')) as Record<string, unknown>;
  writeJsonAtomic(join(dir, 'provenance.json'), { ...recipe, model: 'small-cnn', dataset: 'mnist', trainSize: data.train.count, testSize: data.test.count, testAccuracy, ...provenance });
  console.log(`assets/models/${name}: test accuracy ${(testAccuracy * 100).toFixed(2)}% (float16 weights)`);
}

/** The artifacts with every float32 weight stored as float16 (tfjs's `quantization: { dtype: 'float16' }`). */
function toFloat16(a: tf.io.ModelArtifacts): tf.io.ModelArtifacts {
  const specs = a.weightSpecs ?? [];
  const source = new Float32Array(a.weightData as ArrayBuffer);
  const parts: Uint8Array[] = [];
  let offset = 0;
  const out = specs.map((s) => {
    const n = s.shape.reduce((x, y) => x * y, 1);
    if (s.dtype !== 'float32') throw new Error(`${s.name}: only float32 weights are expected, got ${s.dtype}`);
    const half = new Uint16Array(n);
    for (let i = 0; i < n; i++) half[i] = float16Bits(source[offset + i]);
    offset += n;
    parts.push(new Uint8Array(half.buffer));
    return { ...s, quantization: { dtype: 'float16' as const } };
  });
  const bytes = new Uint8Array(parts.reduce((x, p) => x + p.length, 0));
  let at = 0;
  for (const p of parts) {
    bytes.set(p, at);
    at += p.length;
  }
  return { ...a, weightSpecs: out, weightData: bytes.buffer };
}

/** IEEE 754 binary16 bits of a float32, rounded to nearest even (subnormals kept, overflow to infinity). */
function float16Bits(v: number): number {
  const f32 = new Float32Array([v]);
  const x = new Uint32Array(f32.buffer)[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >> shift;
    const rest = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    if (rest > mid || (rest === mid && (half & 1))) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (half & 1))) half++;
  return sign | half;
}
