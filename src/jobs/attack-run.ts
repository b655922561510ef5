import { join } from 'node:path';
import type { BackendInfo } from '../engine/backend.js';
import { clearWorkerModels } from '../models/pool-model.js';
import type { WorkersSpec } from '../node/workers.js';
import { startRunPool, type QueueRunInfo, type RunPool } from '../node/distributed/run-pool.js';
import { loadModelJob, type ModelJobOptions } from './job-options.js';
import { writeNpy } from '../node/data/formats/npy.js';
import type { Dataset } from '../data/types.js';
import { Classifier, type Preprocessing } from '../models/classifier.js';
import { packageVersions } from './train-run.js';
import { runMeta, type RunMeta } from '../report/meta.js';
import { attackRows, captionName, gridPng, type GridLabel } from '../report/png-grid.js';
import { writeFileAtomic, writeJsonAtomic } from '../node/atomic.js';
import { checkOutputFolder, type OutputLayout } from '../node/paths.js';
import { InputError, forArgument } from '../errors.js';
import { advganAttack } from '../attacks/advgan.js';
import { loadAdvGanGenerator, type LoadedAdvGan } from '../node/advgan-files.js';
import { ATTACKS, findAttack } from '../attacks/index.js';
import { runAttack } from '../attacks/run.js';
import { validateCommon, resolveParams, checkEpsValue } from '../attacks/validate.js';
import { NORMS, type Attack, type AttackResult, type Norm } from '../attacks/types.js';

/** Options of {@link attackRun} (the `advlab attack` job). */
export interface AttackRunOptions extends ModelJobOptions {
  /** Attack name (see {@link ATTACKS}). */
  attack: string;
  /** Default: the attack's first norm. */
  norm?: Norm;
  /** Budget in the input's scale (required by fixed-budget attacks). */
  eps?: number;
  /** Omit for an untargeted attack (and for `advgan`: a targeted generator attacks toward its own class). */
  targeted?: 'random' | 'least-likely';
  /** With attack `advgan`: an `advlab advgan` run folder or its generator/ folder. */
  generator?: string;
  /** The attack's own parameters; omitted ones take their defaults. */
  params?: Record<string, unknown>;
  /** Examples shown in grid.png (default 10). */
  gridExamples?: number;
  /** With `queue`: reattach to the distributed run recorded in `out` and collect the jobs it finished (see node/distributed/run-id.ts). */
  resume?: boolean;
  onProgress?: (event: AttackRunEvent) => void;
}

export type AttackRunEvent =
  | { type: 'dataset'; dataset: Dataset; count: number }
  | { type: 'model'; path: string; parameters: number }
  | { type: 'queue'; queue: QueueRunInfo }
  | { type: 'start'; attack: string; total: number; batches: number; workers: number }
  | { type: 'batch'; done: number; total: number; batch: number; batches: number };

/** Median, mean and max of a perturbation norm over the successful examples; null when there are none. */
export interface NormStats {
  median: number | null;
  mean: number | null;
  max: number | null;
}

/** The content of `result.json` for `advlab attack`. */
export interface AttackRunResult extends RunMeta {
  options: {
    model: string;
    dataset: string;
    attack: string;
    norm: Norm;
    eps: number | null;
    targeted: 'random' | 'least-likely' | null;
    n: number;
    batchSize: number;
    seed: number;
    params: Record<string, unknown>;
    bounds: [number, number];
    preprocess: Preprocessing | null;
    out: string;
    workers: WorkersSpec;
    /** Redis URL (password hidden) of a distributed run's queue; absent for a local run. */
    queue?: string;
  };
  /** Worker threads that attacked batches (1: all in the main thread), or for a distributed run the queue worker processes that did. */
  workers: number;
  dataset: { name: string; testSize: number; numClasses: number; imageShape: number[] };
  model: string;
  modelPath: string;
  attack: { name: string; title: string; paper: string; kind: Attack['kind']; access: Attack['access'] };
  /** The AdvGAN generator used (attack `advgan` only): its folder, training eps and target class. */
  generator?: { path: string; eps: number; targetClass: number | null };
  norm: Norm;
  eps: number | null;
  targeted: 'random' | 'least-likely' | null;
  /** The attack's parameters, defaults filled in. */
  params: Record<string, unknown>;
  /** Images attacked. */
  count: number;
  /** Correctly classified before the attack. */
  correct: number;
  /** Re-verified adversarial examples among the correctly classified ones. */
  successes: number;
  cleanAccuracy: number;
  robustAccuracy: number;
  successRate: number;
  /** Perturbation sizes of the successful examples, in the input's scale (l0: changed values, pixels x channels). */
  perturbation: { l0: NormStats; l1: NormStats; l2: NormStats; linf: NormStats };
  /** Candidates that reached the goal but failed re-verification (not counted as successes). */
  rejected: { outOfBounds: number; outsideBall: number; nonFinite: number };
  gradients: number;
  queries: number;
  gradientsPerImage: number;
  queriesPerImage: number;
  /** Seconds spent attacking (data and model loading excluded). */
  seconds: number;
  imagesPerSecond: number;
  files: { adversarial: string; labels: string; predictions: string; success: string; targets: string | null; grid: string | null };
  grid: { examples: number; perturbationScale: number };
  packages: Record<string, string>;
}

/** What `advlab attack` writes in its output folder (checked before any work, see node/paths.ts). */
export const ATTACK_OUTPUT: OutputLayout = {
  files: ['result.json', 'adversarial.npy', 'labels.npy', 'predictions.npy', 'success.npy', 'targets.npy', 'grid.png', 'queue-run.json'],
};

export const ATTACK_DEFAULTS = { dataset: 'mnist', n: 1000, batchSize: 128, seed: 0, gridExamples: 10 } as const;

const TARGET_MODES = ['random', 'least-likely'] as const;

/** The attack that needs a trained generator (`--generator`); it is not in the registry since it cannot be built from parameters alone. */
export const GENERATOR_ATTACK = 'advgan';

/**
 * Attacks a trained model on a class-balanced subset of a dataset's test split
 * and writes into `out`: `adversarial.npy` (float32 [n, h, w, c]), `labels.npy`
 * (int32 [n]), `predictions.npy` (int32 [2, n]: clean, then adversarial),
 * `success.npy` (uint8 [n]), `targets.npy` (int32 [n], targeted runs only),
 * `grid.png` (clean / perturbation / adversarial rows), then `result.json`.
 * Every file is written atomically; result.json comes last.
 */
export async function attackRun(options: AttackRunOptions, backend: BackendInfo): Promise<AttackRunResult> {
  const startedAt = new Date();
  // Cheap checks first, before any data or model is loaded.
  checkOutputFolder(options.out, 'out', ATTACK_OUTPUT);
  const usesGenerator = options.attack === GENERATOR_ATTACK;
  if (usesGenerator && options.generator === undefined) throw new InputError('generator', 'attack advgan needs a trained generator: an advlab advgan run folder');
  if (!usesGenerator && options.generator !== undefined) throw new InputError('generator', `only attack ${GENERATOR_ATTACK} takes a generator, not ${options.attack}`);
  if (usesGenerator && options.queue !== undefined) throw new InputError('queue', 'attack advgan is one forward pass per batch: it runs locally, not through a queue');
  const attack = usesGenerator ? undefined : findAttack(options.attack);
  if (!usesGenerator && !attack) throw new InputError('attack', `unknown attack "${options.attack}"; expected one of ${[...ATTACKS.map((a) => a.name), GENERATOR_ATTACK].join(', ')}`);
  // Read the generator before any data: a wrong folder fails in milliseconds.
  const advgan = usesGenerator ? await loadGenerator(options.generator!) : undefined;
  try {
    return await attackWith(advgan ? advganAttack(advgan.generator, advgan.info) : attack!, advgan, options, backend, startedAt);
  } finally {
    advgan?.generator.dispose();
  }
}

async function loadGenerator(path: string): Promise<LoadedAdvGan> {
  try {
    return await loadAdvGanGenerator(path);
  } catch (e) {
    throw forArgument('generator', e);
  }
}

async function attackWith(attack: Attack, advgan: LoadedAdvGan | undefined, options: AttackRunOptions, backend: BackendInfo, startedAt: Date): Promise<AttackRunResult> {
  if (options.norm !== undefined) {
    if (!NORMS.includes(options.norm)) throw new InputError('norm', `unknown norm "${options.norm}"; expected one of ${NORMS.join(', ')}`);
    if (!attack.norms.includes(options.norm)) throw new InputError('norm', `${attack.name} supports ${attack.norms.join(', ')}, not ${options.norm}`);
  }
  const norm = options.norm ?? attack.norms[0];
  if (options.eps !== undefined) checkEpsValue(options.eps);
  // A generator's own budget is its default: it was trained for it (a larger eps does not enlarge its perturbations).
  const eps = options.eps ?? advgan?.info.eps;
  if (eps === undefined && attack.kind === 'fixed-budget') throw new InputError('eps', `${attack.name} needs a budget eps (in the input's scale, e.g. 0.3 for mnist in [0, 1] with linf)`);
  if (options.targeted !== undefined && !TARGET_MODES.includes(options.targeted)) {
    throw new InputError('targeted', `expected ${TARGET_MODES.join(' or ')}, got "${options.targeted}"`);
  }
  if (advgan && options.targeted !== undefined) {
    const own = advgan.info.targetClass === null ? 'this generator is untargeted' : `this generator attacks toward class ${advgan.info.targetClass}, the one it was trained for`;
    throw new InputError('targeted', `${own}; omit targeted with attack advgan`);
  }
  const params = resolveParams(attack, options.params ?? {});
  if (options.n !== undefined && (!Number.isInteger(options.n) || options.n < 1)) throw new InputError('n', `expected a positive integer, got ${options.n}`);
  const seed = options.seed ?? ATTACK_DEFAULTS.seed;
  const batchSize = options.batchSize ?? ATTACK_DEFAULTS.batchSize;
  validateCommon({ seed, batchSize });
  const gridExamples = options.gridExamples ?? ATTACK_DEFAULTS.gridExamples;
  if (!Number.isInteger(gridExamples) || gridExamples < 0) throw new InputError('gridExamples', `expected an integer >= 0, got ${gridExamples}`);
  if (options.resume && options.queue === undefined) throw new InputError('resume', 'an attack run resumes only as a distributed run (with queue): a local one has no checkpoint');
  // A wrong or unreachable Redis fails here, in seconds, before any data is loaded.
  if (options.queue !== undefined) await (await import('../node/distributed/connection.js')).checkRedis(options.queue);
  const { modelPath, datasetSpec, data, n, subset, bounds, model } = await loadModelJob(options, ATTACK_DEFAULTS, options.onProgress);
  if (advgan) {
    const shape = advgan.generator.inputs[0].shape.slice(1).join(', ');
    if (shape !== subset.imageShape.join(', ')) {
      model.dispose();
      throw new InputError('generator', `the generator takes images of shape [${shape}], the dataset's are [${subset.imageShape.join(', ')}]`);
    }
  }
  let classifier: Classifier | undefined;
  let runPool: RunPool | undefined;
  try {
    classifier = Classifier.fromModel(model, { bounds, preprocess: options.preprocess });
    const batches = Math.ceil(n / batchSize);
    // A generator attack is one forward pass per batch, in this thread (workers rebuild attacks from the registry by name).
    runPool = await startRunPool({ queue: options.queue, workers: advgan ? 1 : options.workers, out: options.out, resume: options.resume }, backend, classifier, batches);
    if (runPool.queue) options.onProgress?.({ type: 'queue', queue: runPool.queue });
    options.onProgress?.({ type: 'start', attack: attack.name, total: n, batches, workers: runPool.workers() });
    const result = await runAttack(attack, classifier, subset, {
      pool: runPool.pool,
      norm,
      eps,
      targeted: advgan && advgan.info.targetClass !== null ? new Int32Array(n).fill(advgan.info.targetClass) : options.targeted,
      seed,
      batchSize,
      params,
      onProgress: ({ done, total }) => options.onProgress?.({ type: 'batch', done, total, batch: Math.ceil(done / batchSize), batches }),
    });

    const out = options.out;
    const [h, w, c] = result.imageShape;
    const files = {
      adversarial: 'adversarial.npy',
      labels: 'labels.npy',
      predictions: 'predictions.npy',
      success: 'success.npy',
      targets: result.targets ? 'targets.npy' : null,
      grid: 'grid.png',
    };
    writeNpy(join(out, files.adversarial), result.adversarial, [n, h, w, c]);
    writeNpy(join(out, files.labels), result.labels, [n]);
    const predictions = new Int32Array(2 * n);
    predictions.set(result.cleanPredictions, 0);
    predictions.set(result.adversarialPredictions, n);
    writeNpy(join(out, files.predictions), predictions, [2, n]);
    writeNpy(join(out, files.success), result.success, [n]);
    if (result.targets && files.targets) writeNpy(join(out, files.targets), result.targets, [n]);
    const grid = attackGrid(subset.images, result, Math.min(gridExamples, n), data.classNames);
    if (grid) writeFileAtomic(join(out, files.grid), grid.png);

    const s = result.summary;
    const correct = countCorrect(result.labels, result.cleanPredictions);
    const successes = result.success.reduce((a, b) => a + b, 0);
    const runResult: AttackRunResult = {
      ...runMeta('attack', backend, seed, startedAt),
      options: {
        model: options.model,
        dataset: datasetSpec,
        attack: attack.name,
        norm,
        eps: eps ?? null,
        targeted: options.targeted ?? null,
        n,
        batchSize,
        seed,
        params: { ...(options.params ?? {}) },
        bounds,
        preprocess: options.preprocess ?? null,
        out,
        workers: options.workers ?? 'auto',
        ...(runPool.queue ? { queue: runPool.queue.url } : {}),
      },
      workers: runPool.workers(),
      dataset: { name: data.name, testSize: data.test.count, numClasses: data.numClasses, imageShape: [...data.test.imageShape] },
      model: options.model,
      modelPath,
      attack: { name: attack.name, title: attack.title, paper: attack.paper, kind: attack.kind, access: attack.access },
      ...(advgan ? { generator: { path: advgan.path, ...advgan.info } } : {}),
      norm: result.norm,
      eps: result.eps,
      targeted: options.targeted ?? null,
      params: result.params,
      count: n,
      correct,
      successes,
      cleanAccuracy: s.cleanAccuracy,
      robustAccuracy: s.robustAccuracy,
      successRate: s.successRate,
      perturbation: {
        l0: normStats(result.norms.l0, result.success),
        l1: normStats(result.norms.l1, result.success),
        l2: normStats(result.norms.l2, result.success),
        linf: normStats(result.norms.linf, result.success),
      },
      rejected: { ...result.rejected },
      gradients: result.gradients,
      queries: result.queries,
      gradientsPerImage: s.gradientsPerImage,
      queriesPerImage: s.queriesPerImage,
      seconds: result.seconds,
      imagesPerSecond: s.imagesPerSecond,
      files: { ...files, grid: grid ? files.grid : null },
      grid: { examples: grid ? grid.examples : 0, perturbationScale: grid ? grid.scale : 0 },
      packages: packageVersions(),
    };
    writeJsonAtomic(join(out, 'result.json'), runResult);
    return runResult;
  } finally {
    await runPool?.close();
    await clearWorkerModels();
    classifier?.dispose();
    model.dispose();
  }
}

function countCorrect(labels: Int32Array, predictions: Int32Array): number {
  let k = 0;
  for (let i = 0; i < labels.length; i++) if (labels[i] === predictions[i]) k++;
  return k;
}

/** Median, mean and max of `values` where `mask` is set. */
export function normStats(values: Float32Array, mask: Uint8Array): NormStats {
  const v: number[] = [];
  for (let i = 0; i < values.length; i++) if (mask[i]) v.push(values[i]);
  if (!v.length) return { median: null, mean: null, max: null };
  v.sort((a, b) => a - b);
  const m = v.length >> 1;
  return {
    median: v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2,
    mean: v.reduce((a, b) => a + b, 0) / v.length,
    max: v[v.length - 1],
  };
}

/**
 * The first `k` examples as three rows: clean images captioned true->clean
 * prediction, perturbations (0.5 gray = no change, scaled to the largest change
 * shown) captioned with the attack norm's size, and adversarial images captioned
 * true->adversarial prediction (red where the attack succeeded). Also the AdvGAN job's grid.
 */
export function attackGrid(clean: Float32Array, r: AttackResult, k: number, classNames: string[]): { png: Uint8Array; examples: number; scale: number } | null {
  if (k < 1) return null;
  const [h, w, c] = r.imageShape;
  const size = h * w * c;
  const cleanPart = clean.subarray(0, k * size);
  const advPart = r.adversarial.subarray(0, k * size);
  const { images, scale: deltaScale } = attackRows(cleanPart, advPart, k);
  const name = captionName(classNames);
  const labels: GridLabel[] = [];
  for (let i = 0; i < k; i++) labels.push(`${name(r.labels[i])}->${name(r.cleanPredictions[i])}`);
  const normName = r.norm === 'linf' ? 'inf' : r.norm;
  const normValues = r.norms[r.norm];
  for (let i = 0; i < k; i++) labels.push(`${normName} ${formatSize(normValues[i])}`);
  for (let i = 0; i < k; i++) labels.push({ text: `${name(r.labels[i])}->${name(r.adversarialPredictions[i])}`, color: r.success[i] ? [200, 0, 0] : [0, 0, 0] });
  const scale = Math.max(1, Math.min(8, Math.floor(64 / Math.max(h, w))));
  const png = gridPng(images, { imageShape: [h, w, c], columns: k, scale, spacing: 2, labels, rowLabels: ['clean', 'delta', 'adv'] });
  return { png, examples: k, scale: deltaScale };
}

function formatSize(v: number): string {
  if (v === 0) return '0';
  if (v >= 100) return v.toFixed(0);
  if (v >= 10) return v.toFixed(1);
  return v.toFixed(2);
}
