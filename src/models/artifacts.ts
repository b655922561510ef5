/**
 * TF.js models as artifacts, on any platform: building Layers and graph models
 * from a `model.json` and its weight files (wherever they come from: a folder
 * in Node, dropped files or a URL in a page), checked so that a broken file
 * fails with its name and the problem; and models to and from memory.
 *
 * The format is the standard one — `model.json` + binary weight files — so
 * models written by `tensorflowjs_converter --input_format keras` (several
 * weight groups, each split into shard files) load here, and models saved by
 * advlab load in the browser with `tf.loadLayersModel(url)`. Graph models
 * (`"format": "graph-model"`: converted SavedModels, Keras models and frozen
 * graphs) can be attacked and evaluated, not trained.
 */
import { tf, tfl, tfc } from '../engine/tf.js';
import { AdvlabError, FileFormatError, InputError } from '../errors.js';
import { concatArrays } from '../util/arrays.js';
// Registers the custom layer of purified models, so they load wherever models do (worker threads included).
import './gradient-gate.js';

/** The file names advlab saves a model under. */
export const MODEL_JSON = 'model.json';
/** The weights file advlab saves (one shard: the models here are small). */
export const WEIGHTS_BIN = 'weights.bin';

/** A model advlab can attack and evaluate: a Layers model or a converted TensorFlow graph. */
export type ClassifierModel = tfl.LayersModel | tfc.GraphModel;

/** True for a graph model (which can be attacked and evaluated, but not trained). */
export function isGraphModel(model: ClassifierModel): model is tfc.GraphModel {
  return model instanceof tfc.GraphModel;
}

/** Bytes per stored value, by weight dtype or quantization dtype. */
const BYTES_PER_VALUE: Record<string, number> = { float32: 4, int32: 4, bool: 1, uint8: 1, uint16: 2, float16: 2 };

/** The two `format`s of a TF.js model.json. */
type ModelFormat = 'layers-model' | 'graph-model';
const LAYERS_ONLY: readonly ModelFormat[] = ['layers-model'];
const ANY_FORMAT: readonly ModelFormat[] = ['layers-model', 'graph-model'];

/** Weight dtypes each format may store (graph models also keep boolean constants). */
const WEIGHT_DTYPES: Record<ModelFormat, readonly string[]> = { 'layers-model': ['float32', 'int32'], 'graph-model': ['float32', 'int32', 'bool'] };

/** Where {@link artifactsFromModelJson} gets a model's weight files from: a folder, a set of dropped files, a server. */
export interface ShardReader {
  /** What errors call the file at manifest path `path` (a file path, a URL). */
  name(path: string): string;
  /** Its bytes, or null when there is no such file. */
  read(path: string): Uint8Array | null;
}

/**
 * Builds a model's artifacts from the text of its `model.json` and its weight
 * files, checking everything a loader would otherwise trip over later with an
 * obscure message (JSON, format, manifest, dtypes, each weight group's byte
 * count). Layers and graph models are both read unless `layersOnly`;
 * `format` in the result says which one it is.
 *
 * @param file what errors call the model.json.
 * @throws FileFormatError naming the file at fault.
 */
export function artifactsFromModelJson(file: string, text: string, shards: ShardReader, layersOnly = false): tf.io.ModelArtifacts {
  const json = checkModelJson(file, text, layersOnly ? LAYERS_ONLY : ANY_FORMAT);
  const specs: tf.io.WeightsManifestEntry[] = [];
  const buffers: Uint8Array[] = [];
  json.weightsManifest.forEach((group, g) => {
    specs.push(...group.weights);
    // The converter splits a group's byte stream into fixed-size shards, so only
    // the group total can be checked, not each shard.
    const expected = group.weights.reduce((n, s) => n + specByteLength(s), 0);
    let found = 0;
    let lastShard = file;
    for (const p of group.paths) {
      checkShardPath(p, file);
      const shard = shards.name(p);
      lastShard = shard;
      const bytes = shards.read(p);
      if (bytes == null) throw new FileFormatError(shard, `weights file not found (listed in ${file})`);
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
    modelTopology: json.format === 'graph-model' ? withVersions(json.modelTopology) : json.modelTopology,
    weightSpecs: specs,
    weightData: weightData.buffer as ArrayBuffer,
    format: json.format,
    generatedBy: json.generatedBy,
    convertedBy: json.convertedBy,
  };
  if (json.trainingConfig != null) artifacts.trainingConfig = json.trainingConfig;
  if (json.userDefinedMetadata != null) artifacts.userDefinedMetadata = json.userDefinedMetadata;
  // A converted SavedModel names its inputs and outputs in the signature (without
  // it every leaf node would be an output) and may need an initializer graph.
  if (json.signature != null) artifacts.signature = json.signature;
  if (json.modelInitializer != null) artifacts.modelInitializer = json.modelInitializer;
  if (json.initializerSignature != null) artifacts.initializerSignature = json.initializerSignature;
  return artifacts;
}

/**
 * The model to attack or evaluate from artifacts of {@link artifactsFromModelJson}:
 * a Layers model, or a graph model (run with `execute`, so graphs with control
 * flow are not supported). Wrap it with `Classifier.fromModel`; dispose it when done.
 *
 * @param source what errors call the model (its model.json).
 * @throws FileFormatError when the topology and weights do not fit together.
 */
export async function classifierModelFromArtifacts(artifacts: tf.io.ModelArtifacts, source: string): Promise<ClassifierModel> {
  if (artifacts.format === 'graph-model') return graphModelFromArtifacts(artifacts, source);
  return layersModelFromArtifacts(artifacts, source);
}

/** tfjs reads `versions.producer` of every GraphDef; hand-written ones often have no `versions`. */
function withVersions(topology: {}): {} {
  return 'versions' in topology ? topology : { ...topology, versions: {} };
}

/**
 * The parameter count shown in reports: a Layers model's `countParams()`, or
 * the number of float32 weight values of a graph model (its int32 and bool
 * constants are shapes, axes and flags, not parameters).
 */
export function countParameters(model: ClassifierModel): number {
  if (!isGraphModel(model)) return model.countParams();
  let n = 0;
  for (const tensors of Object.values(model.weights)) {
    for (const t of tensors) if (t.dtype === 'float32') n += t.size;
  }
  return n;
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
  return layersModelFromArtifacts(artifacts, 'model artifacts');
}

/**
 * Throws InputError(argument) unless the model takes a single image input of
 * shape `imageShape` (`[h, w, c]`, batch dimension ignored; a `null` model
 * dimension, or `-1` in a graph model, matches any size). A graph model whose
 * input has no known rank passes: only running it can tell.
 */
export function checkInputShape(
  model: ClassifierModel,
  imageShape: readonly [number, number, number] | readonly number[],
  argument = 'dataset',
): void {
  if (model.inputs.length !== 1) {
    throw new InputError(argument, `the model has ${model.inputs.length} inputs; expected one image input`);
  }
  const shape = model.inputs[0].shape;
  if (shape == null) return;
  const modelShape = shape.slice(1).map((d) => (d == null || d < 0 ? null : d));
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

export function joinWeightData(data: tf.io.WeightData | undefined): ArrayBuffer {
  if (data == null) return new ArrayBuffer(0);
  return tf.io.CompositeArrayBuffer.join(data);
}

export function artifactsInfo(artifacts: tf.io.ModelArtifacts): tf.io.ModelArtifactsInfo {
  return tf.io.getModelArtifactsInfoForJSON(artifacts);
}

/**
 * Builds a Layers model from artifacts (read from files, or made by
 * {@link modelToArtifacts}): the topology first and only then sets its weights, so
 * that when the weights do not fit the topology the half-built model can be
 * disposed instead of leaking its variables.
 */
export async function layersModelFromArtifacts(artifacts: tf.io.ModelArtifacts, source: string): Promise<tfl.LayersModel> {
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

/**
 * Builds a GraphModel from artifacts of {@link artifactsFromModelJson}. The graph is
 * parsed once without weights first, so that a GraphDef tfjs cannot use is
 * reported before any weight tensor exists that could leak.
 */
async function graphModelFromArtifacts(artifacts: tf.io.ModelArtifacts, source: string): Promise<tfc.GraphModel> {
  try {
    const topologyOnly: tf.io.ModelArtifacts = { ...artifacts, weightSpecs: [], weightData: new ArrayBuffer(0) };
    (await tfc.loadGraphModel({ load: async () => topologyOnly })).dispose();
  } catch (e) {
    throw new FileFormatError(source, `not a TF.js graph model: ${errorMessage(e)}`);
  }
  checkConstWeights(artifacts, source);
  try {
    return await tfc.loadGraphModel({ load: async () => artifacts });
  } catch (e) {
    throw new FileFormatError(source, `weights do not fit the model: ${errorMessage(e)}`);
  }
}

interface GraphNodeJson {
  name: string;
  op: string;
  attr?: { value?: { tensor?: { tensorShape?: { dim?: { size?: string | number }[] } } } };
}

/**
 * Every Const node of a graph model takes its value from the weight of the same
 * name. tfjs looks it up only when the graph runs, and a missing one fails
 * there with an obscure message, so the names (and shapes, where the node
 * states one) are checked here.
 */
function checkConstWeights(artifacts: tf.io.ModelArtifacts, source: string): void {
  const specs = new Map((artifacts.weightSpecs ?? []).map((s) => [s.name, s]));
  const nodes = (artifacts.modelTopology as { node: GraphNodeJson[] }).node;
  const problems: string[] = [];
  for (const node of nodes) {
    if (node.op !== 'Const') continue;
    const spec = specs.get(node.name);
    if (!spec) {
      problems.push(`no weight for Const node "${node.name}"`);
      continue;
    }
    const stated = node.attr?.value?.tensor?.tensorShape;
    if (stated == null) continue;
    const shape = (stated.dim ?? []).map((d) => Number(d.size ?? 0));
    if (shape.length !== spec.shape.length || shape.some((d, i) => d !== spec.shape[i])) {
      problems.push(`Const node "${node.name}" has shape ${fmtShape(shape)} but its weight has shape ${fmtShape(spec.shape)}`);
    }
  }
  if (problems.length) {
    const more = problems.length > 3 ? ` (and ${problems.length - 3} more)` : '';
    throw new FileFormatError(source, `weights do not fit the model: ${problems.slice(0, 3).join('; ')}${more}`);
  }
}

function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

interface CheckedModelJson extends tf.io.ModelJSON {
  modelTopology: {};
  format: ModelFormat;
}

function checkModelJson(file: string, text: string, accept: readonly ModelFormat[]): CheckedModelJson {
  const layersOnly = !accept.includes('graph-model');
  let bad = (problem: string) => new FileFormatError(file, `not a TF.js ${layersOnly ? 'Layers ' : ''}model: ${problem}`);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw bad(`invalid JSON (${errorMessage(e)})`);
  }
  if (!isObject(json)) throw bad('expected a JSON object');
  const format = modelFormat(json, accept, bad);
  if (!accept.includes(format)) throw notTrainable(file, json.format != null);
  if (format === 'graph-model') {
    bad = (problem: string) => new FileFormatError(file, `not a TF.js graph model: ${problem}`);
  }
  if (!isObject(json.modelTopology)) throw bad('missing modelTopology');
  if (format === 'graph-model') checkGraphNodes(json.modelTopology, bad);
  const manifest = json.weightsManifest;
  if (!Array.isArray(manifest)) throw bad('missing weightsManifest');
  manifest.forEach((group: unknown, g) => {
    const where = `weightsManifest[${g}]`;
    if (!isObject(group)) throw bad(`${where} is not an object`);
    if (!Array.isArray(group.paths) || !group.paths.every((p) => typeof p === 'string' && p.length > 0)) {
      throw bad(`${where}.paths must be a list of file names`);
    }
    if (!Array.isArray(group.weights)) throw bad(`${where}.weights must be a list`);
    group.weights.forEach((w: unknown, i) => checkSpec(w, `${where}.weights[${i}]`, bad, WEIGHT_DTYPES[format]));
  });
  return { ...json, format } as unknown as CheckedModelJson;
}

/**
 * The model's format: its `format` field, or, for files of older converters that
 * wrote none, a graph model when the topology is a GraphDef (a list of nodes).
 */
function modelFormat(json: Record<string, any>, accept: readonly ModelFormat[], bad: (p: string) => FileFormatError): ModelFormat {
  if (json.format === 'layers-model' || json.format === 'graph-model') return json.format;
  if (json.format != null) {
    throw bad(`format is "${String(json.format)}", expected ${accept.map((f) => `"${f}"`).join(' or ')}`);
  }
  return isObject(json.modelTopology) && Array.isArray(json.modelTopology.node) ? 'graph-model' : 'layers-model';
}

/** A graph model handed to a Layers-only loader: say what it is and what it can still be used for. */
function notTrainable(file: string, hasFormat: boolean): FileFormatError {
  const why = hasFormat ? 'format is "graph-model"' : 'its modelTopology is a TensorFlow GraphDef';
  return new FileFormatError(
    file,
    `this is a TF.js graph model (${why}): it can be attacked and evaluated (advlab attack, loadClassifierModel) but not trained, which needs a Layers model`,
  );
}

/** Nodes and their inputs, checked because tfjs's graph parser fails on a dangling input with a TypeError. */
function checkGraphNodes(topology: Record<string, any>, bad: (p: string) => FileFormatError): void {
  if (!Array.isArray(topology.node)) throw bad('modelTopology has no node list (expected a TensorFlow GraphDef)');
  const nodes: unknown[] = topology.node;
  nodes.forEach((n, i) => {
    if (!isObject(n) || typeof n.name !== 'string' || typeof n.op !== 'string') throw bad(`modelTopology.node[${i}] needs a name and an op`);
  });
  const names = new Set(nodes.map((n) => (n as { name: string }).name));
  nodes.forEach((n, i) => {
    const { name, input } = n as { name: string; input?: unknown };
    if (input == null) return;
    if (!Array.isArray(input) || !input.every((s) => typeof s === 'string')) throw bad(`modelTopology.node[${i}] ("${name}") has an input that is not a node name`);
    // "^name" is a control input, "name:1" the second output of a node.
    const missing = input.find((s: string) => !names.has(s.replace(/^\^/, '').split(':')[0]));
    if (missing !== undefined) throw bad(`modelTopology.node[${i}] ("${name}") has input "${missing}", which is no node of the graph`);
  });
}

function checkSpec(w: unknown, where: string, bad: (p: string) => FileFormatError, dtypes: readonly string[]): void {
  if (!isObject(w) || typeof w.name !== 'string') throw bad(`${where} has no name`);
  const name = `${where} ("${w.name}")`;
  if (!Array.isArray(w.shape) || !w.shape.every((d) => Number.isInteger(d) && d >= 0)) {
    throw bad(`${name} has an invalid shape`);
  }
  if (!dtypes.includes(w.dtype)) {
    throw bad(`${name} has unsupported dtype "${String(w.dtype)}" (supported: ${dtypes.join(', ')})`);
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
function checkShardPath(p: string, file: string): void {
  const parts = p.split(/[\\/]/);
  if (p.startsWith('/') || p.startsWith('\\') || /^[a-zA-Z][a-zA-Z0-9+.-]*:/.test(p) || parts.includes('..') || parts.every((s) => s === '' || s === '.')) {
    throw new FileFormatError(file, `weights path "${p}" points outside the model folder`);
  }
}

function isObject(v: unknown): v is Record<string, any> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
