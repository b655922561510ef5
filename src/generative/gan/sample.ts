/**
 * Drawing images from a trained GAN generator, the helpers the GAN jobs share: seeded latent codes, the generator
 * run in inference mode (batch norm with its moving statistics) batch by
 * batch, images back as a plain Float32Array in [0, 1].
 */
import { tf, tfl } from '../../engine/tf.js';
import { readOne } from '../../engine/read.js';
import { Rng, cumulativeProbabilities, isDistribution } from '../../util/rng.js';
import { FileFormatError, InputError } from '../../errors.js';

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
 * images, NHWC float32 in [0, 1]. No tensor outlives the call; each batch is
 * read with `await` (no synchronous read, which WebGPU cannot do).
 */
export async function generateImages(generator: tfl.LayersModel, spec: GeneratorSpec, z: Float32Array, classes?: Int32Array, batchSize = 256): Promise<Float32Array> {
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
    out.set((await readOne(images)) as Float32Array, start * size);
  }
  return out;
}

/** Pixel scale of grids: small images (mnist's 28x28) are drawn twice their size. */
export function gridScale(imageShape: readonly number[]): number {
  return Math.max(1, Math.floor(64 / Math.max(imageShape[0], imageShape[1])));
}

/** The parts of an `advlab gan` result.json that describe its generator (read by `advlab gan sample`). */
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
  /** Real images the generator was trained on (its run's dataset.trainSize). */
  trainSize?: number;
  file: string;
}

/** Reads latent size and conditioning off the model's inputs, checked against the run's result.json. */
export function generatorSpec(generator: tfl.LayersModel, path: string, run: GanRunInfo | null): GeneratorSpec {
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
    throw new FileFormatError(`${path}/model.json`, `its ${GENERATOR_METADATA_KEY}.clusterPrior must be ${numClasses} non-negative probabilities summing to 1 (one per value of the one-hot input)`);
  }
  return prior;
}
