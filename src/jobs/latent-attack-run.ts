/**
 * `advlab latent-attack`: unrestricted adversarial examples searched in a
 * generator's latent space (Song et al., NeurIPS 2018; the search is
 * generative/latent-search.ts). Loads the generator (an `advlab gan --arch
 * acgan` run, an `advlab aae` run, or advlab's shipped mnist AAE), the
 * attacked model and an independent classifier that judges validity (the
 * shipped metric classifier of the dataset unless `validator` names another;
 * never the attacked model); draws class-balanced source/target pairs and the
 * starting codes (N(0, I) for the acgan, encoder(x) of real test images of
 * the source class for an AAE); runs the searches; the independent classifier
 * reads the starting and the kept images. Writes `examples.png` (starting and
 * found images side by side, one row per source class), `examples.npy` (the
 * kept images), `report.html` and, last, `result.json`, each atomically.
 */
import { existsSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BackendInfo } from '../engine/backend.js';
import type { tfl } from '../engine/tf.js';
import { Classifier } from '../models/classifier.js';
import { countParameters, type ClassifierModel } from '../models/artifacts.js';
import { loadDataset } from '../node/data/load.js';
import type { Dataset } from '../data/types.js';
import { loadModel } from '../node/model-files.js';
import { loadSavedClassifier } from '../node/resolve.js';
import { shippedMetricClassifier } from '../node/metric-classifier.js';
import { writeFileAtomic, writeJsonAtomic } from '../node/atomic.js';
import { writeNpy } from '../node/data/formats/npy.js';
import { checkOutputFolder, type OutputLayout } from '../node/paths.js';
import { runMeta, type RunMeta } from '../report/meta.js';
import { captionName, gridPng, type GridLabel } from '../report/png-grid.js';
import { gridScale } from '../generative/gan/sample.js';
import { encodeImages } from '../generative/aae/architectures.js';
import {
  aaeLatentGenerator,
  acganLatentGenerator,
  initialCodes,
  latentSearch,
  searchPairs,
  summarizeLatentSearch,
  validatorPredictions,
  type LatentGenerator,
  type LatentSearchEvent,
  type LatentSearchOptions,
  type LatentSearchRecord,
  type LatentSearchResult,
  type LatentSearchSummary,
} from '../generative/latent-search.js';
import { InputError, forArgument, rethrowFor } from '../errors.js';
import { loadGenerator } from './gan-sample.js';
import { savedModelPath } from './job-options.js';
import { packageVersions } from './train-run.js';

/** Options of {@link latentAttackRun}; the search's as in {@link LatentSearchOptions}. */
export interface LatentAttackRunOptions extends Pick<LatentSearchOptions, 'steps' | 'learningRate' | 'lambda1' | 'lambda2' | 'latentEps' | 'batchSize'> {
  /** An `advlab gan --arch acgan` run folder, an `advlab aae` run folder, or the name of a shipped AAE ({@link SHIPPED_AAES}). */
  generator: string;
  /** The attacked model: a saved model folder, model.json, or an `advlab train` run folder. */
  model: string;
  /** Built-in dataset name or a path (default: the generator's, else mnist): its classes, and for an AAE the real images behind z0. */
  dataset?: string;
  /** The independent classifier that judges validity (default: the shipped metric classifier of the dataset). */
  validator?: string;
  out: string;
  /** Searches (default 500). */
  n?: number;
  /** Source classes (default: every class), cycled class-balanced. */
  sources?: number[];
  /** Target classes (default: every class but the source), drawn in balanced random order per source. */
  targets?: number[];
  /** Default 0. */
  seed?: number;
  onProgress?: (event: LatentAttackRunEvent) => void;
}

export type LatentAttackRunEvent =
  | LatentSearchEvent
  | { type: 'generator'; kind: 'acgan' | 'aae'; path: string; latentDim: number; auxiliary: boolean }
  | { type: 'model'; path: string; parameters: number }
  | { type: 'validator'; path: string; shipped: boolean }
  | { type: 'validated'; summary: LatentSearchSummary };

/** Per source class: searches and rates. */
export interface LatentSourceFigures {
  source: number;
  count: number;
  successRate: number;
  validityRate: number;
  validSuccessRate: number;
}

/** result.json of `advlab latent-attack`. */
export interface LatentAttackRunResult extends RunMeta {
  options: {
    generator: string;
    model: string;
    dataset: string;
    validator: string;
    n: number;
    sources: number[] | null;
    targets: number[] | null;
    steps: number;
    learningRate: number;
    lambda1: number;
    /** Null when the generator has no auxiliary classifier (an AAE). */
    lambda2: number | null;
    latentEps: number;
    batchSize: number;
    seed: number;
    out: string;
  };
  generator: { kind: 'acgan' | 'aae'; path: string; latentDim: number; numClasses: number | null; auxiliaryClassifier: boolean; parameters: number; start: 'prior' | 'encoder' };
  model: { path: string; parameters: number };
  validator: { path: string; shipped: boolean; parameters: number };
  dataset: { name: string; numClasses: number; imageShape: number[]; classNames: string[] };
  summary: LatentSearchSummary;
  perSource: LatentSourceFigures[];
  /** The search's cost: Adam steps (summed over batches), images differentiated, time. */
  search: { steps: number; gradients: number; seconds: number; searchesPerSecond: number };
  searches: LatentSearchRecord[];
  files: { examples: string; images: string; report: string };
  packages: Record<string, string>;
}

export const LATENT_ATTACK_OUTPUT: OutputLayout = { files: ['examples.png', 'examples.npy', 'report.html', 'result.json'] };
export const LATENT_ATTACK_DEFAULTS = { n: 500, seed: 0 } as const;

/** Where the shipped models live (src/ and dist/ are both two levels below the package). */
const SHIPPED_MODELS_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'assets', 'models');

/** Shipped AAEs `--generator` takes by name: their encoder and decoder folders and dataset. */
export const SHIPPED_AAES: Record<string, { dataset: string; encoder: string; decoder: string }> = {
  'mnist-aae': { dataset: 'mnist', encoder: join(SHIPPED_MODELS_DIR, 'mnist-aae-encoder'), decoder: join(SHIPPED_MODELS_DIR, 'mnist-aae-decoder') },
};

/** A generator loaded for the attack; `dispose` frees its models. */
export interface LoadedLatentGenerator {
  generator: LatentGenerator;
  /** The AAE's encoder, which makes the starting codes; null for the acgan. */
  encoder: tfl.LayersModel | null;
  /** The dataset its run (or the shipped model) was trained on, when recorded. */
  dataset: string | null;
  parameters: number;
  dispose(): void;
}

/** Runs the attack (see the module comment). */
export async function latentAttackRun(options: LatentAttackRunOptions, backend: BackendInfo): Promise<LatentAttackRunResult> {
  const startedAt = new Date();
  checkOutputFolder(options.out, 'out', LATENT_ATTACK_OUTPUT);
  const n = options.n ?? LATENT_ATTACK_DEFAULTS.n;
  if (!Number.isSafeInteger(n) || n < 1) throw new InputError('n', `expected a positive number of searches, got ${n}`);
  const seed = options.seed ?? LATENT_ATTACK_DEFAULTS.seed;
  const modelPath = savedModelPath(options.model);
  const loaded = await loadLatentGenerator(options.generator);
  const models: ClassifierModel[] = [];
  const classifiers: Classifier[] = [];
  try {
    const g = loaded.generator;
    options.onProgress?.({ type: 'generator', kind: g.kind, path: options.generator, latentDim: g.latentDim, auxiliary: !!g.auxiliaryLogits });
    const datasetSpec = options.dataset ?? loaded.dataset ?? 'mnist';
    const data = loadDataset(datasetSpec);
    checkGeneratorFitsData(g, data);
    const shape = { imageShape: data.test.imageShape, numClasses: data.numClasses };
    const model = await loadSavedClassifier(modelPath, shape).catch(rethrowFor('model'));
    models.push(model);
    options.onProgress?.({ type: 'model', path: options.model, parameters: countParameters(model) });
    const validatorPath = resolveValidator(options.validator, data, modelPath);
    const validatorModel = await loadSavedClassifier(validatorPath.path, shape, 'validator').catch(rethrowFor('validator'));
    models.push(validatorModel);
    options.onProgress?.({ type: 'validator', path: validatorPath.path, shipped: validatorPath.shipped });
    const attacked = Classifier.fromModel(model);
    const validator = Classifier.fromModel(validatorModel);
    classifiers.push(attacked, validator);

    const pairs = searchPairs(n, data.numClasses, seed, { sources: options.sources, targets: options.targets });
    const z0 = loaded.encoder ? await encoderStarts(loaded.encoder, data, pairs.sources) : initialCodes(n, g.latentDim, seed);
    const search = await latentSearch(g, attacked, { ...pairs, z0 }, {
      steps: options.steps,
      learningRate: options.learningRate,
      lambda1: options.lambda1,
      lambda2: options.lambda2,
      latentEps: options.latentEps,
      batchSize: options.batchSize,
      onProgress: options.onProgress,
    });
    const validity = { images: await validatorPredictions(validator, search.images), initialImages: await validatorPredictions(validator, search.initialImages) };
    const { summary, records } = summarizeLatentSearch(search, validity);
    options.onProgress?.({ type: 'validated', summary });

    const files = { examples: 'examples.png', images: 'examples.npy', report: 'report.html' };
    const grid = examplesGrid(search, records, data.classNames);
    writeFileAtomic(join(options.out, files.examples), grid);
    writeNpy(join(options.out, files.images), search.images, [n, ...search.imageShape]);
    const result: LatentAttackRunResult = {
      ...runMeta('latent-attack', backend, seed, startedAt),
      options: {
        generator: options.generator,
        model: options.model,
        dataset: datasetSpec,
        validator: validatorPath.path,
        n,
        sources: options.sources ?? null,
        targets: options.targets ?? null,
        ...search.options,
        seed,
        out: options.out,
      },
      generator: { kind: g.kind, path: options.generator, latentDim: g.latentDim, numClasses: g.numClasses, auxiliaryClassifier: !!g.auxiliaryLogits, parameters: loaded.parameters, start: loaded.encoder ? 'encoder' : 'prior' },
      model: { path: modelPath, parameters: countParameters(model) },
      validator: { path: validatorPath.path, shipped: validatorPath.shipped, parameters: countParameters(validatorModel) },
      dataset: { name: data.name, numClasses: data.numClasses, imageShape: [...data.test.imageShape], classNames: data.classNames },
      summary,
      perSource: perSource(records, data.numClasses),
      search: { steps: search.steps, gradients: search.gradients, seconds: search.seconds, searchesPerSecond: n / search.seconds },
      searches: records,
      files,
      packages: packageVersions(),
    };
    const { renderLatentAttackReport } = await import('../report/latent-attack-report.js');
    writeFileAtomic(join(options.out, files.report), renderLatentAttackReport(result, grid));
    writeJsonAtomic(join(options.out, 'result.json'), result);
    return result;
  } finally {
    for (const c of classifiers) c.dispose();
    for (const m of models) m.dispose();
    loaded.dispose();
  }
}

/**
 * Loads what `--generator` names: an `advlab gan` run of the acgan (generator/
 * and discriminator/), an `advlab aae` run (encoder/ and decoder/; not a
 * categorical one, whose decoder takes a category beside z), or a shipped AAE
 * by name ({@link SHIPPED_AAES}; a folder of the same name wins).
 * @throws InputError naming `generator`
 */
export async function loadLatentGenerator(spec: string): Promise<LoadedLatentGenerator> {
  if (typeof spec !== 'string' || spec === '') throw new InputError('generator', 'required: an advlab gan --arch acgan run folder, an advlab aae run folder, or a shipped AAE (mnist-aae)');
  const has = (dir: string, part: string) => existsSync(join(dir, part, 'model.json'));
  if (existsSync(spec) && has(spec, 'generator') && has(spec, 'discriminator')) return loadAcgan(spec);
  if (existsSync(spec) && has(spec, 'encoder') && has(spec, 'decoder')) return loadAae(join(spec, 'encoder'), join(spec, 'decoder'), spec, runDataset(join(spec, 'result.json'), 'aae'));
  const shipped = SHIPPED_AAES[spec];
  if (shipped && !existsSync(spec)) return loadAae(shipped.encoder, shipped.decoder, spec, shipped.dataset);
  throw new InputError(
    'generator',
    `${existsSync(spec) ? `"${spec}" holds neither an acgan run (generator/ and discriminator/) nor an aae run (encoder/ and decoder/)` : `"${spec}" does not exist`}; expected an advlab gan --arch acgan run folder, an advlab aae run folder, or a shipped AAE (${Object.keys(SHIPPED_AAES).join(', ')})`,
  );
}

async function loadAcgan(dir: string): Promise<LoadedLatentGenerator> {
  const { generator, runResult } = await loadGenerator(dir).catch(rethrowAsGenerator(dir));
  let discriminator: tfl.LayersModel | undefined;
  try {
    // Only the acgan's discriminator reads the class the generator was asked for (infogan's head reads an unsupervised code).
    if (runResult?.arch !== undefined && runResult.arch !== 'acgan') throw new InputError('generator', `${dir} is an advlab gan run of the ${runResult.arch} architecture; the latent attack needs a class-conditional generator with an auxiliary classifier: train one with advlab gan --arch acgan`);
    discriminator = await loadModel(join(dir, 'discriminator')).catch(rethrowAsGenerator(dir));
    const d = discriminator;
    const latent = asGenerator(dir, () => acganLatentGenerator(generator, d));
    return { generator: latent, encoder: null, dataset: runResult?.dataset ?? null, parameters: generator.countParams() + d.countParams(), dispose: () => (generator.dispose(), d.dispose()) };
  } catch (e) {
    generator.dispose();
    discriminator?.dispose();
    throw e;
  }
}

async function loadAae(encoderDir: string, decoderDir: string, spec: string, dataset: string | null): Promise<LoadedLatentGenerator> {
  const encoder = await loadModel(encoderDir).catch(rethrowAsGenerator(spec));
  let decoder: tfl.LayersModel | undefined;
  try {
    if (encoder.outputs.length !== 1) throw new InputError('generator', `${spec} holds a categorical AAE (--labels or --clusters), whose decoder takes a category beside z; the latent attack takes an AAE with a gaussian, mixture or swiss-roll prior (no class head, so no auxiliary term)`);
    decoder = await loadModel(decoderDir).catch(rethrowAsGenerator(spec));
    const latent = asGenerator(spec, () => aaeLatentGenerator(decoder!));
    if (encoder.outputs[0].shape[1] !== latent.latentDim) throw new InputError('generator', `${spec}: the encoder makes codes of ${encoder.outputs[0].shape[1]} values, the decoder takes ${latent.latentDim}`);
    const d = decoder;
    return { generator: latent, encoder, dataset, parameters: encoder.countParams() + d.countParams(), dispose: () => (encoder.dispose(), d.dispose()) };
  } catch (e) {
    encoder.dispose();
    decoder?.dispose();
    throw e;
  }
}

/** A `.catch` handler: errors about the generator's files or models, whatever argument they named, become errors of `generator` (naming `spec`). */
function rethrowAsGenerator(spec: string): (e: unknown) => never {
  return (e) => {
    if (e instanceof InputError && e.argument !== 'generator') throw new InputError('generator', `${spec}: ${e.message.slice(e.argument.length + 2)}`, { cause: e });
    throw forArgument('generator', e);
  };
}

/** `make()`, its errors rethrown as {@link rethrowAsGenerator} does. */
function asGenerator<T>(spec: string, make: () => T): T {
  try {
    return make();
  } catch (e) {
    return rethrowAsGenerator(spec)(e);
  }
}

/** The dataset option of an advlab run's result.json of `command`, or null. */
function runDataset(file: string, command: string): string | null {
  if (!existsSync(file)) return null;
  try {
    const json = JSON.parse(readFileSync(file, 'utf8')) as { command?: string; options?: { dataset?: unknown } };
    return json.command === command && typeof json.options?.dataset === 'string' ? json.options.dataset : null;
  } catch {
    return null;
  }
}

function checkGeneratorFitsData(g: LatentGenerator, data: Dataset): void {
  const shape = data.test.imageShape;
  if (g.imageShape.some((v, i) => v !== shape[i])) throw new InputError('dataset', `${data.name} has images of [${shape.join(', ')}], the generator makes [${g.imageShape.join(', ')}]`);
  if (g.numClasses !== null && g.numClasses !== data.numClasses) throw new InputError('dataset', `${data.name} has ${data.numClasses} classes, the generator ${g.numClasses}`);
}

/**
 * The independent classifier: `validator` if given, else the shipped metric
 * classifier of the dataset. Never the attacked model, whose reading is wrong
 * on the examples by construction.
 * @throws InputError naming `validator` (none ships for the dataset, or it is the attacked model)
 */
function resolveValidator(validator: string | undefined, data: Dataset, modelPath: string): { path: string; shipped: boolean } {
  let found: { path: string; shipped: boolean };
  if (validator !== undefined) {
    if (!existsSync(validator)) throw new InputError('validator', `"${validator}" does not exist; expected a saved classifier of ${data.name}`);
    found = { path: validator, shipped: false };
  } else {
    const shipped = shippedMetricClassifier(data.name);
    if (!shipped) throw new InputError('validator', `advlab ships no independent classifier for ${data.name}; give one trained on it (a saved model folder other than --model)`);
    found = { path: shipped.path, shipped: true };
  }
  if (modelFolder(found.path) === modelFolder(modelPath)) {
    throw new InputError(found.shipped ? 'model' : 'validator', `the attacked model and the independent classifier are the same model (${found.path}); validity must be judged by a classifier the search did not attack`);
  }
  return found;
}

/** The real path of the folder holding a model's model.json (a run folder keeps it in model/). */
function modelFolder(path: string): string {
  const real = realpathSync(path);
  if (!statSync(real).isDirectory()) return dirname(real);
  return !existsSync(join(real, 'model.json')) && existsSync(join(real, 'model', 'model.json')) ? join(real, 'model') : real;
}

/**
 * An AAE's starting codes: encoder(x) of real test images of each search's
 * source class, taken in the split's order (class-balanced as `--n` is
 * elsewhere), round again when a class has fewer images than searches.
 */
async function encoderStarts(encoder: tfl.LayersModel, data: Dataset, sources: Int32Array): Promise<Float32Array> {
  const test = data.test;
  const size = test.imageShape[0] * test.imageShape[1] * test.imageShape[2];
  const byClass: number[][] = Array.from({ length: data.numClasses }, () => []);
  for (let i = 0; i < test.count; i++) byClass[test.labels[i]].push(i);
  const used = new Array<number>(data.numClasses).fill(0);
  const images = new Float32Array(sources.length * size);
  for (let i = 0; i < sources.length; i++) {
    const pool = byClass[sources[i]];
    if (pool.length === 0) throw new InputError('sources', `the test split of ${data.name} has no image of class ${sources[i]} to start from`);
    const k = pool[used[sources[i]]++ % pool.length];
    images.set(test.images.subarray(k * size, (k + 1) * size), i * size);
  }
  return encodeImages(encoder, images, test.imageShape);
}

function perSource(records: LatentSearchRecord[], numClasses: number): LatentSourceFigures[] {
  const out: LatentSourceFigures[] = [];
  for (let s = 0; s < numClasses; s++) {
    const mine = records.filter((r) => r.source === s);
    if (mine.length === 0) continue;
    const rate = (keep: (r: LatentSearchRecord) => boolean) => mine.filter(keep).length / mine.length;
    out.push({ source: s, count: mine.length, successRate: rate((r) => r.success), validityRate: rate((r) => r.valid), validSuccessRate: rate((r) => r.success && r.valid) });
  }
  return out;
}

/** Pairs (start, found) per row of a source class in examples.png. */
export const GRID_PAIRS_PER_ROW = 5;

/**
 * examples.png: one row per source class, up to {@link GRID_PAIRS_PER_ROW}
 * searches each (successes first, in search order), each as its starting image
 * (caption source->target) beside the image found (caption: the attacked
 * model's reading, then the independent classifier's; red when the attacked
 * model reads the target and the independent one still reads the source).
 */
function examplesGrid(search: LatentSearchResult, records: LatentSearchRecord[], classNames: string[]): Uint8Array {
  const size = search.imageShape.reduce((a, b) => a * b, 1);
  const name = captionName(classNames);
  const rows: number[][] = [];
  for (let s = 0; s < classNames.length; s++) {
    const mine = records.map((r, i) => ({ r, i })).filter(({ r }) => r.source === s);
    if (mine.length === 0) continue;
    rows.push([...mine.filter(({ r }) => r.success), ...mine.filter(({ r }) => !r.success)].slice(0, GRID_PAIRS_PER_ROW).map(({ i }) => i));
  }
  const columns = 2 * Math.max(...rows.map((r) => r.length));
  const cells = rows.length * columns;
  const images = new Float32Array(cells * size).fill(1);
  const labels: (GridLabel | undefined)[] = new Array(cells).fill(undefined);
  rows.forEach((row, y) =>
    row.forEach((i, k) => {
      const at = y * columns + 2 * k;
      const r = records[i];
      images.set(search.initialImages.subarray(i * size, (i + 1) * size), at * size);
      images.set(search.images.subarray(i * size, (i + 1) * size), (at + 1) * size);
      labels[at] = `${name(r.source)}->${name(r.target)}`;
      labels[at + 1] = { text: `${name(r.prediction)} ${name(r.validatorPrediction)}`, color: r.success && r.valid ? [200, 0, 0] : [0, 0, 0] };
    }),
  );
  const scale = gridScale(search.imageShape);
  return gridPng(images, { imageShape: search.imageShape, columns, scale, spacing: 2, labels, rowLabels: rows.map((row) => name(records[row[0]].source)) });
}
