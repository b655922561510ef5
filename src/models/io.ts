/**
 * Saving and loading TF.js Layers models on the local file system, without
 * tfjs-node (whose `file://` handlers are the only built-in ones for files).
 *
 * The format is the standard one — `model.json` + binary weight files — so
 * models written by `tensorflowjs_converter --input_format keras` (several
 * weight groups, each split into shard files) load here, and models saved here
 * load in the browser with `tf.loadLayersModel(url)`.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { tf, tfl } from '../engine/tf.js';
import { AdvlabError, FileFormatError, InputError } from '../errors.js';
import { writeFileAtomic } from '../util/atomic.js';
import { concatArrays } from '../util/arrays.js';

/** File names written by {@link saveModel}. */
export const MODEL_JSON = 'model.json';
/** Weights file written by {@link saveModel} (one shard: the models here are small). */
export const WEIGHTS_BIN = 'weights.bin';

/** What {@link saveModel} wrote. */
export interface SavedModelInfo {
  /** Path of `model.json`. */
  modelJsonPath: string;
  /** Path of the weights file. */
  weightsPath: string;
  /** Size of the weights file in bytes. */
  weightBytes: number;
}

/** Bytes per stored value, by weight dtype or quantization dtype. */
const BYTES_PER_VALUE: Record<string, number> = { float32: 4, int32: 4, uint8: 1, uint16: 2, float16: 2 };

/**
 * Saves `model` to the folder `dir` (created if needed) as `model.json` +
 * `weights.bin`. Each file is written atomically, weights first and
 * `model.json` last, so a reader never finds a `model.json` whose weights file
 * is missing or half written.
 */
export async function saveModel(model: tfl.LayersModel, dir: string): Promise<SavedModelInfo> {
  let info: SavedModelInfo | undefined;
  await model.save({
    save: async (artifacts) => {
      info = saveArtifacts(artifacts, dir);
      return { modelArtifactsInfo: artifactsInfo(artifacts) };
    },
  });
  return info!;
}

/**
 * Writes in-memory model artifacts (from {@link modelToArtifacts}) to `dir`,
 * in the same layout as {@link saveModel}.
 */
export function saveArtifacts(artifacts: tf.io.ModelArtifacts, dir: string): SavedModelInfo {
  if (artifacts.modelTopology == null || artifacts.modelTopology instanceof ArrayBuffer) {
    throw new InputError('model', 'only Layers models with a JSON topology can be saved');
  }
  const weightSpecs = artifacts.weightSpecs ?? [];
  const weights = new Uint8Array(joinWeightData(artifacts.weightData));
  const modelJson: tf.io.ModelJSON = {
    modelTopology: artifacts.modelTopology,
    format: artifacts.format ?? 'layers-model',
    generatedBy: artifacts.generatedBy ?? `TensorFlow.js tfjs-layers v${tfl.version_layers}`,
    convertedBy: artifacts.convertedBy ?? null,
    weightsManifest: [{ paths: [WEIGHTS_BIN], weights: weightSpecs }],
  };
  if (artifacts.trainingConfig != null) modelJson.trainingConfig = artifacts.trainingConfig;
  if (artifacts.userDefinedMetadata != null) modelJson.userDefinedMetadata = artifacts.userDefinedMetadata;
  const modelJsonPath = join(dir, MODEL_JSON);
  const weightsPath = join(dir, WEIGHTS_BIN);
  // Order matters: see saveModel.
  writeFileAtomic(weightsPath, weights);
  writeFileAtomic(modelJsonPath, JSON.stringify(modelJson) + '\n');
  return { modelJsonPath, weightsPath, weightBytes: weights.byteLength };
}

/**
 * Reads `model.json` and all its weight files, checking everything a loader
 * would otherwise trip over later with an obscure message.
 *
 * @param path a model folder or the path of its `model.json`.
 * @throws FileFormatError naming the file at fault.
 */
export function loadArtifacts(path: string): tf.io.ModelArtifacts {
  return readArtifacts(resolveModelJson(path));
}

function readArtifacts(modelJsonPath: string): tf.io.ModelArtifacts {
  const json = readModelJson(modelJsonPath);
  const baseDir = dirname(modelJsonPath);
  const specs: tf.io.WeightsManifestEntry[] = [];
  const buffers: Uint8Array[] = [];
  json.weightsManifest.forEach((group, g) => {
    specs.push(...group.weights);
    // The converter splits a group's byte stream into fixed-size shards, so only
    // the group total can be checked, not each shard.
    const expected = group.weights.reduce((n, s) => n + specByteLength(s), 0);
    let found = 0;
    let lastShard = modelJsonPath;
    for (const p of group.paths) {
      const shard = weightPath(baseDir, p, modelJsonPath);
      lastShard = shard;
      if (!existsSync(shard) || !statSync(shard).isFile()) {
        throw new FileFormatError(shard, `weights file not found (listed in ${modelJsonPath})`);
      }
      const bytes = readFileSync(shard);
      buffers.push(bytes);
      found += bytes.byteLength;
    }
    if (found !== expected) {
      const where = group.paths.length > 1 ? ` in the ${group.paths.length} shards of weights group ${g + 1}` : '';
      const problem = found < expected ? 'truncated' : 'too long';
      throw new FileFormatError(lastShard, `${problem}: expected ${expected} bytes, found ${found}${where}`);
    }
  });
  const weightData = concatArrays(buffers, Uint8Array);
  const artifacts: tf.io.ModelArtifacts = {
    modelTopology: json.modelTopology,
    weightSpecs: specs,
    weightData: weightData.buffer as ArrayBuffer,
    format: json.format,
    generatedBy: json.generatedBy,
    convertedBy: json.convertedBy,
  };
  if (json.trainingConfig != null) artifacts.trainingConfig = json.trainingConfig;
  if (json.userDefinedMetadata != null) artifacts.userDefinedMetadata = json.userDefinedMetadata;
  return artifacts;
}

/**
 * A `tf.io.IOHandler` for a local model folder (or `model.json` path): `save`
 * writes like {@link saveModel}, `load` reads like {@link loadArtifacts}. Use
 * it where tfjs wants a handler, e.g. `tfl.loadLayersModel(fileIOHandler(dir))`.
 */
export function fileIOHandler(path: string): tf.io.IOHandler {
  return {
    save: async (artifacts) => {
      saveArtifacts(artifacts, path);
      return { modelArtifactsInfo: artifactsInfo(artifacts) };
    },
    load: async () => loadArtifacts(path),
  };
}

/**
 * Loads a TF.js Layers model from a folder or a `model.json` path (as saved by
 * {@link saveModel} or converted from Keras by `tensorflowjs_converter`).
 * Weight dtypes float32 and int32 are supported, as are uint8/uint16/float16
 * quantized weights (dequantized to float32 by tfjs).
 *
 * @throws FileFormatError naming the file that is missing, malformed or truncated,
 *   or whose topology and weights do not fit together.
 */
export async function loadModel(path: string): Promise<tfl.LayersModel> {
  const modelJsonPath = resolveModelJson(path);
  return modelFromArtifactsChecked(readArtifacts(modelJsonPath), modelJsonPath);
}

/** Saves a model to memory: topology, weight specs and one weight buffer. */
export async function modelToArtifacts(model: tfl.LayersModel): Promise<tf.io.ModelArtifacts> {
  let out: tf.io.ModelArtifacts | undefined;
  await model.save({
    save: async (artifacts) => {
      out = { ...artifacts, weightData: joinWeightData(artifacts.weightData) };
      return { modelArtifactsInfo: artifactsInfo(artifacts) };
    },
  });
  return out!;
}

/**
 * Rebuilds a model from {@link modelToArtifacts} output (e.g. a checkpoint).
 * The artifacts are not modified and can be used again.
 */
export async function modelFromArtifacts(artifacts: tf.io.ModelArtifacts): Promise<tfl.LayersModel> {
  return modelFromArtifactsChecked(artifacts, 'model artifacts');
}

/**
 * Throws InputError(argument) unless the model takes a single image input of
 * shape `imageShape` (`[h, w, c]`, batch dimension ignored; a `null` model
 * dimension matches any size).
 */
export function checkInputShape(
  model: tfl.LayersModel,
  imageShape: readonly [number, number, number] | readonly number[],
  argument = 'dataset',
): void {
  if (model.inputs.length !== 1) {
    throw new InputError(argument, `the model has ${model.inputs.length} inputs; expected one image input`);
  }
  const modelShape = model.inputs[0].shape.slice(1);
  const ok =
    modelShape.length === imageShape.length && modelShape.every((d, i) => d == null || d === imageShape[i]);
  if (!ok) {
    throw new InputError(
      argument,
      `the model expects inputs of shape ${fmtShape(modelShape)} but got images of shape ${fmtShape(imageShape)}`,
    );
  }
}

// ---------------------------------------------------------------------------

function fmtShape(shape: readonly (number | null)[]): string {
  return `[${shape.map((d) => (d == null ? '?' : d)).join(', ')}]`;
}

function joinWeightData(data: tf.io.WeightData | undefined): ArrayBuffer {
  if (data == null) return new ArrayBuffer(0);
  return tf.io.CompositeArrayBuffer.join(data);
}

function artifactsInfo(artifacts: tf.io.ModelArtifacts): tf.io.ModelArtifactsInfo {
  return tf.io.getModelArtifactsInfoForJSON(artifacts);
}

/**
 * Builds the model from the topology first and only then sets its weights, so
 * that when the weights do not fit the topology the half-built model can be
 * disposed instead of leaking its variables.
 */
async function modelFromArtifactsChecked(artifacts: tf.io.ModelArtifacts, source: string): Promise<tfl.LayersModel> {
  let model: tfl.LayersModel;
  try {
    const topologyOnly: tf.io.ModelArtifacts = { ...artifacts, weightData: undefined, weightSpecs: undefined };
    model = await tfl.loadLayersModel({ load: async () => topologyOnly });
  } catch (e) {
    if (e instanceof AdvlabError) throw e;
    throw new FileFormatError(source, `not a TF.js Layers model: ${errorMessage(e)}`);
  }
  const specs = artifacts.weightSpecs ?? [];
  let decoded: tf.NamedTensorMap = {};
  try {
    decoded = tf.io.decodeWeights(artifacts.weightData ?? new ArrayBuffer(0), specs);
    const modelWeights: tf.NamedTensorMap = {};
    const optimizerWeights: { name: string; tensor: tf.Tensor }[] = [];
    for (const s of specs) {
      if (s.group === 'optimizer') optimizerWeights.push({ name: s.name, tensor: decoded[s.name] });
      else modelWeights[s.name] = decoded[s.name];
    }
    model.loadWeights(modelWeights, true);
    if (model.optimizer != null && optimizerWeights.length > 0) {
      await model.optimizer.setWeights(optimizerWeights);
    }
  } catch (e) {
    model.dispose();
    throw new FileFormatError(source, `weights do not fit the model: ${errorMessage(e)}`);
  } finally {
    tf.dispose(decoded);
  }
  return model;
}

function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** `path` may be a folder holding model.json or the JSON file itself. */
function resolveModelJson(path: string): string {
  if (!existsSync(path)) throw new FileFormatError(path, 'not found');
  if (statSync(path).isDirectory()) {
    const p = join(path, MODEL_JSON);
    // An advlab run folder (e.g. runs/cnn) keeps its model in model/.
    const inRun = join(path, 'model', MODEL_JSON);
    if (!existsSync(p) && existsSync(inRun)) return inRun;
    if (!existsSync(p)) throw new FileFormatError(p, 'not found');
    return p;
  }
  return path;
}

interface CheckedModelJson extends tf.io.ModelJSON {
  modelTopology: {};
}

function readModelJson(file: string): CheckedModelJson {
  const bad = (problem: string) => new FileFormatError(file, `not a TF.js Layers model: ${problem}`);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new FileFormatError(file, `cannot read: ${errorMessage(e)}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw bad(`invalid JSON (${errorMessage(e)})`);
  }
  if (!isObject(json)) throw bad('expected a JSON object');
  if (json.format != null && json.format !== 'layers-model') {
    // 'graph-model' files hold a TF graph, which tfjs-layers cannot run or differentiate through.
    throw bad(`format is "${String(json.format)}", expected "layers-model"`);
  }
  if (!isObject(json.modelTopology)) throw bad('missing modelTopology');
  const manifest = json.weightsManifest;
  if (!Array.isArray(manifest)) throw bad('missing weightsManifest');
  manifest.forEach((group: unknown, g) => {
    const where = `weightsManifest[${g}]`;
    if (!isObject(group)) throw bad(`${where} is not an object`);
    if (!Array.isArray(group.paths) || !group.paths.every((p) => typeof p === 'string' && p.length > 0)) {
      throw bad(`${where}.paths must be a list of file names`);
    }
    if (!Array.isArray(group.weights)) throw bad(`${where}.weights must be a list`);
    group.weights.forEach((w: unknown, i) => checkSpec(w, `${where}.weights[${i}]`, bad));
  });
  return json as unknown as CheckedModelJson;
}

function checkSpec(w: unknown, where: string, bad: (p: string) => FileFormatError): void {
  if (!isObject(w) || typeof w.name !== 'string') throw bad(`${where} has no name`);
  const name = `${where} ("${w.name}")`;
  if (!Array.isArray(w.shape) || !w.shape.every((d) => Number.isInteger(d) && d >= 0)) {
    throw bad(`${name} has an invalid shape`);
  }
  if (w.dtype !== 'float32' && w.dtype !== 'int32') {
    throw bad(`${name} has unsupported dtype "${String(w.dtype)}" (supported: float32, int32)`);
  }
  if (w.quantization != null) {
    const q = w.quantization;
    if (!isObject(q) || !(q.dtype === 'uint8' || q.dtype === 'uint16' || q.dtype === 'float16')) {
      throw bad(`${name} has an unsupported quantization (supported: uint8, uint16, float16)`);
    }
    if (q.dtype === 'float16') {
      if (w.dtype !== 'float32') throw bad(`${name}: float16 quantization needs dtype float32`);
    } else if (!Number.isFinite(q.scale) || !Number.isFinite(q.min)) {
      throw bad(`${name}: ${q.dtype} quantization needs numeric scale and min`);
    }
  }
}

function specByteLength(s: tf.io.WeightsManifestEntry): number {
  const size = s.shape.reduce((a, b) => a * b, 1);
  return size * BYTES_PER_VALUE[s.quantization?.dtype ?? s.dtype];
}

/** Manifest paths are relative to model.json and must stay inside its folder. */
function weightPath(baseDir: string, p: string, modelJsonPath: string): string {
  const full = resolve(baseDir, p);
  const rel = relative(resolve(baseDir), full);
  if (isAbsolute(p) || rel === '' || rel === '..' || rel.startsWith('..' + sep) || isAbsolute(rel)) {
    throw new FileFormatError(modelJsonPath, `not a TF.js Layers model: weights path "${p}" points outside the model folder`);
  }
  return join(baseDir, p);
}

function isObject(v: unknown): v is Record<string, any> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
