/**
 * `advlab gan sample`: a trained generator loaded from its folder, and `n` of
 * its images written, seeded, as a PNG grid or an NPY array.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { tfl } from '../engine/tf.js';
import { loadModel } from '../node/model-files.js';
import { writeFileAtomic } from '../node/atomic.js';
import { checkOutputFile } from '../node/paths.js';
import { writeNpy } from '../node/data/formats/npy.js';
import { captionName, gridPng } from '../report/png-grid.js';
import { Rng, deriveSeed } from '../util/rng.js';
import { FileFormatError, InputError, rethrowFor } from '../errors.js';
import { generateImages, generatorClasses, generatorSpec, gridScale, latentCodes, type GanRunInfo, type GeneratorSpec } from '../generative/gan/sample.js';

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
    const images = await generateImages(generator, spec, z, classes);
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
  return { arch: m.arch, latentDim: m.latentDim, numClasses: m.numClasses, conditional: m.conditional, classNames: json.dataset?.classNames, dataset: json.options?.dataset, classifier: json.options?.classifier, epochs: json.epochs, trainSize: json.dataset?.trainSize, file };
}
