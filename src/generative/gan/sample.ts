/**
 * Drawing images from a trained GAN generator (`advlab gan sample`), and the
 * generation helpers the GAN job shares: seeded latent codes, the generator
 * run in inference mode (batch norm with its moving statistics) batch by
 * batch, images back as a plain Float32Array in [0, 1].
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { tf, tfl } from '../../engine/tf.js';
import { loadModel } from '../../models/io.js';
import { writeFileAtomic } from '../../util/atomic.js';
import { checkOutputFile } from '../../util/paths.js';
import { writeNpy } from '../../data/formats/npy.js';
import { captionName, gridPng } from '../../report/png-grid.js';
import { Rng, cumulativeProbabilities, deriveSeed, isDistribution } from '../../util/rng.js';
import { FileFormatError, InputError, rethrowFor } from '../../errors.js';

/** What a generator takes and makes. */
export interface GeneratorSpec {
  latentDim: number;
  /** Classes of the one-hot class input (conditional) or of the dataset (unconditional). */
  numClasses: number;
  conditional: boolean;
  imageShape: [number, number, number];
  /**
   * A self-conditioned generator (scgan): the probabilities of the k-means
   * clusters its one-hot input takes. Such a generator is unconditional: it
   * draws its clusters from these, it is never asked for a class.
   */
  clusterPrior?: number[];
}

/** The key of a generator's model.json `userDefinedMetadata` under which advlab stores what the model file alone cannot say. */
export const GENERATOR_METADATA_KEY = 'advlabGenerator';

/** What advlab stores in a generator's model.json. */
export interface GeneratorMetadata {
  /** See {@link GeneratorSpec.clusterPrior}. */
  clusterPrior?: number[];
}

/** `n` clusters drawn from `prior`, in order from `rng`. */
export function clusterDraws(prior: readonly number[], n: number, rng: Rng): Int32Array {
  const c = cumulativeProbabilities(prior);
  return Int32Array.from({ length: n }, () => rng.categorical(c));
}

/**
 * The one-hot inputs of `n` samples: for a self-conditioned generator,
 * clusters drawn from its prior with `rng`; for a conditional one, `fixedClass`
 * or the classes in turn (0, 1, ..., K-1, 0, ...); none for an unconditional one.
 */
export function generatorClasses(spec: GeneratorSpec, n: number, rng: Rng, fixedClass?: number): Int32Array | undefined {
  if (spec.clusterPrior) return clusterDraws(spec.clusterPrior, n, rng);
  if (spec.conditional) return Int32Array.from({ length: n }, (_, i) => fixedClass ?? i % spec.numClasses);
  return undefined;
}

/** `n` latent codes z ~ N(0, I), row-major [n, latentDim], drawn from `rng` in order. */
export function latentCodes(rng: Rng, n: number, latentDim: number): Float32Array {
  const z = new Float32Array(n * latentDim);
  for (let i = 0; i < z.length; i++) z[i] = rng.normal();
  return z;
}

/**
 * Runs the generator in inference mode on the codes `z` ([n, latentDim]) and,
 * when conditional, the classes `classes` (n labels), in batches; returns the
 * images, NHWC float32 in [0, 1]. No tensor outlives the call.
 */
export function generateImages(generator: tfl.LayersModel, spec: GeneratorSpec, z: Float32Array, classes?: Int32Array, batchSize = 256): Float32Array {
  const n = z.length / spec.latentDim;
  if (spec.conditional && (!classes || classes.length !== n)) throw new InputError('classes', `a conditional generator needs one class per code (${n})`);
  const size = spec.imageShape[0] * spec.imageShape[1] * spec.imageShape[2];
  const out = new Float32Array(n * size);
  for (let start = 0; start < n; start += batchSize) {
    const m = Math.min(batchSize, n - start);
    const images = tf.tidy(() => {
      const zt = tf.tensor2d(z.subarray(start * spec.latentDim, (start + m) * spec.latentDim), [m, spec.latentDim]);
      const inputs = spec.conditional ? [zt, tf.cast(tf.oneHot(tf.tensor1d(classes!.subarray(start, start + m), 'int32'), spec.numClasses), 'float32')] : zt;
      return generator.apply(inputs, { training: false }) as tf.Tensor;
    });
    out.set(images.dataSync() as Float32Array, start * size);
    images.dispose();
  }
  return out;
}

/** Pixel scale of grids: small images (mnist's 28x28) are drawn twice their size. */
export function gridScale(imageShape: readonly number[]): number {
  return Math.max(1, Math.floor(64 / Math.max(imageShape[0], imageShape[1])));
}

/** Options of {@link sampleGan} (`advlab gan sample`). */
export interface SampleGanOptions {
  /** An `advlab gan` run folder (with `generator/` and `result.json`) or a generator folder (`model.json`). */
  model: string;
  /** Number of images. */
  n: number;
  /** Conditional generators only: draw every image from this class (default: classes in turn, 0, 1, ..., K-1, 0, ...). */
  class?: number;
  /** Seed of the latent codes (default 0). */
  seed?: number;
  /** Output file: `.png` (a grid) or `.npy` (the raw images, float32 [n, h, w, c] in [0, 1]). */
  out: string;
}

/** What {@link sampleGan} wrote. */
export interface SampleGanResult {
  out: string;
  format: 'png' | 'npy';
  /** Shape of the images written: [n, h, w, c]. */
  shape: [number, number, number, number];
  /** The GAN architecture from the run's result.json, or null when only a generator folder was given. */
  arch: string | null;
  conditional: boolean;
  /** The class of each image (conditional generators), else null. */
  classes: number[] | null;
  seed: number;
  generatorPath: string;
}

/** Largest `n`: a grid or array beyond this is surely a typo. */
export const MAX_SAMPLES = 100_000;

/**
 * Loads a trained generator and writes `n` of its images, seeded, as a PNG
 * grid or an NPY array (by the extension of `out`).
 * @throws InputError naming `model` (also for its malformed files), `n`, `class`, `seed` or `out` (also a folder that does not exist or takes no files).
 */
export async function sampleGan(options: SampleGanOptions): Promise<SampleGanResult> {
  const { n, out } = options;
  const seed = options.seed ?? 0;
  if (!Number.isSafeInteger(n) || n < 1 || n > MAX_SAMPLES) throw new InputError('n', `expected an integer in [1, ${MAX_SAMPLES}], got ${n}`);
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new InputError('seed', `expected an integer in [0, 2^32), got ${seed}`);
  if (typeof out !== 'string' || !/\.(png|npy)$/i.test(out)) throw new InputError('out', `expected a file name ending in .png (a grid) or .npy (the raw images), got "${out}"`);
  checkOutputFile(out, 'out');
  const format = out.toLowerCase().endsWith('.png') ? 'png' : 'npy';
  const { generator, spec, generatorPath, runResult } = await loadGenerator(options.model).catch(rethrowFor('model'));
  try {
    const cls = options.class;
    if (cls !== undefined && spec.clusterPrior) throw new InputError('class', `the generator in ${generatorPath} is self-conditioned (scgan): its one-hot input is a k-means cluster it draws itself, not a class; train a conditional GAN (--arch cgan or acgan) to ask for a class`);
    if (cls !== undefined) {
      if (!spec.conditional) throw new InputError('class', `the generator in ${generatorPath} is unconditional${runResult?.arch ? ` (arch ${runResult.arch})` : ''}: it cannot be asked for a class; train a conditional GAN (--arch cgan or acgan) for that`);
      if (!Number.isInteger(cls) || cls < 0 || cls >= spec.numClasses) throw new InputError('class', `expected a class in [0, ${spec.numClasses - 1}], got ${cls}`);
    }
    const classes = generatorClasses(spec, n, new Rng(deriveSeed(seed, 'gan-sample-clusters')), cls);
    const z = latentCodes(new Rng(deriveSeed(seed, 'gan-sample')), n, spec.latentDim);
    const images = generateImages(generator, spec, z, classes);
    const [h, w, c] = spec.imageShape;
    if (format === 'npy') {
      writeNpy(out, images, [n, h, w, c]);
    } else {
      if (c !== 1 && c !== 3) throw new InputError('out', `images with ${c} channels cannot be drawn as PNG (1 or 3 expected); write .npy instead`);
      // InfoGAN's one-hot input is a code, not a class: label it as one.
      const names = runResult?.arch === 'infogan' ? (k: number) => `code ${k}` : captionName(runResult?.classNames ?? Array.from({ length: spec.numClasses }, (_, i) => String(i)));
      // Classes in turn: one column per class, so each column holds one class.
      const byClass = spec.conditional && !spec.clusterPrior;
      const columns = byClass && cls === undefined ? Math.min(n, spec.numClasses) : Math.ceil(Math.sqrt(n));
      const labels = byClass ? Array.from(classes!, (y) => names(y)) : undefined;
      const scale = gridScale(spec.imageShape);
      writeFileAtomic(out, gridPng(images, { imageShape: [h, w, c], columns, scale, fontScale: scale, spacing: 2, labels }));
    }
    return { out, format, shape: [n, h, w, c], arch: runResult?.arch ?? null, conditional: spec.conditional && !spec.clusterPrior, classes: classes && !spec.clusterPrior ? Array.from(classes) : null, seed, generatorPath };
  } finally {
    generator.dispose();
  }
}

/** The parts of an `advlab gan` result.json that {@link loadGenerator} reads. */
export interface GanRunInfo {
  arch?: string;
  latentDim?: number;
  numClasses?: number;
  conditional?: boolean;
  classNames?: string[];
  /** The run's dataset and metric classifier options, and its last epoch. */
  dataset?: string;
  classifier?: string | null;
  epochs?: number;
  file: string;
}

/** A trained generator, loaded; dispose `generator` when done. */
export interface LoadedGenerator {
  generator: tfl.LayersModel;
  spec: GeneratorSpec;
  generatorPath: string;
  /** The run's result.json, when `model` is (or sits in) an advlab gan run folder. */
  runResult: GanRunInfo | null;
}

/**
 * Loads the generator of an `advlab gan` run folder (or a generator folder)
 * and reads what it takes and makes off its inputs, checked against the
 * run's result.json.
 * @throws InputError naming `model`; FileFormatError for a file that is not a GAN generator.
 */
export async function loadGenerator(model: string): Promise<LoadedGenerator> {
  const { generatorPath, runResult } = locateGenerator(model);
  const generator = await loadModel(generatorPath);
  try {
    return { generator, spec: generatorSpec(generator, generatorPath, runResult), generatorPath, runResult };
  } catch (e) {
    generator.dispose();
    throw e;
  }
}

/** The generator folder, and the run's result.json when there is one. */
function locateGenerator(model: string): { generatorPath: string; runResult: GanRunInfo | null } {
  if (typeof model !== 'string' || model === '') throw new InputError('model', 'required: an advlab gan run folder or a generator folder');
  if (!existsSync(model)) throw new InputError('model', `"${model}" does not exist; expected an advlab gan run folder or a generator folder`);
  let generatorPath: string;
  let runDir: string;
  if (existsSync(join(model, 'generator', 'model.json'))) {
    generatorPath = join(model, 'generator');
    runDir = model;
  } else if (existsSync(join(model, 'model.json'))) {
    generatorPath = model;
    runDir = dirname(model);
  } else {
    throw new InputError('model', `no generator in "${model}": expected an advlab gan run folder (with generator/model.json) or a generator folder (with model.json)`);
  }
  return { generatorPath, runResult: readRunInfo(join(runDir, 'result.json')) };
}

function readRunInfo(file: string): GanRunInfo | null {
  if (!existsSync(file)) return null;
  let json: Record<string, any>;
  try {
    json = JSON.parse(readFileSync(file, 'utf8')) as Record<string, any>;
  } catch (e) {
    throw new FileFormatError(file, `not valid JSON (${(e as Error).message})`);
  }
  if (json?.command !== 'gan') return null;
  const m = json.generator ?? {};
  return { arch: m.arch, latentDim: m.latentDim, numClasses: m.numClasses, conditional: m.conditional, classNames: json.dataset?.classNames, dataset: json.options?.dataset, classifier: json.options?.classifier, epochs: json.epochs, file };
}

/** Reads latent size and conditioning off the model's inputs, checked against the run's result.json. */
function generatorSpec(generator: tfl.LayersModel, path: string, run: GanRunInfo | null): GeneratorSpec {
  const inputs = generator.inputs;
  const zShape = inputs[0]?.shape;
  const outShape = generator.outputs[0]?.shape;
  if (inputs.length < 1 || inputs.length > 2 || !zShape || zShape.length !== 2 || !outShape || outShape.length !== 4) {
    throw new FileFormatError(path, 'not a GAN generator: expected inputs [z] or [z, class] and images [n, h, w, c] out');
  }
  const latentDim = zShape[1] as number;
  const conditional = inputs.length === 2;
  const numClasses = conditional ? (inputs[1].shape[1] as number) : (run?.numClasses ?? 0);
  const imageShape = outShape.slice(1) as [number, number, number];
  const clusterPrior = readClusterPrior(generator, path, conditional ? numClasses : 0);
  if (run) {
    // A self-conditioned generator's result.json calls it unconditional: it draws its one-hot input itself.
    const mismatch =
      (run.latentDim !== undefined && run.latentDim !== latentDim) ||
      (run.conditional !== undefined && run.conditional !== (conditional && !clusterPrior)) ||
      (conditional && !clusterPrior && run.numClasses !== undefined && run.numClasses !== numClasses);
    if (mismatch) throw new FileFormatError(run.file, `describes a different generator than ${path} (latent size, classes or conditioning differ)`);
  }
  return { latentDim, numClasses, conditional, imageShape, ...(clusterPrior ? { clusterPrior } : {}) };
}

/** The cluster prior in the generator's model.json, checked; undefined when there is none. */
function readClusterPrior(generator: tfl.LayersModel, path: string, numClasses: number): number[] | undefined {
  const meta = (generator.getUserDefinedMetadata() as Record<string, GeneratorMetadata | undefined> | undefined)?.[GENERATOR_METADATA_KEY];
  const prior = meta?.clusterPrior;
  if (prior === undefined) return undefined;
  if (!isDistribution(prior, numClasses)) {
    throw new FileFormatError(join(path, 'model.json'), `its ${GENERATOR_METADATA_KEY}.clusterPrior must be ${numClasses} non-negative probabilities summing to 1 (one per value of the one-hot input)`);
  }
  return prior;
}
