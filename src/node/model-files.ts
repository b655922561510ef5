/**
 * Saving and loading TF.js models on the local file system, without
 * tfjs-node (whose `file://` handlers are the only built-in ones for files).
 * The checks and model building are the core's (models/artifacts.ts); this
 * file reads and writes the files.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { tf, tfl } from '../engine/tf.js';
import { FileFormatError, InputError } from '../errors.js';
import { writeFileAtomic } from './atomic.js';
import { artifactsFromModelJson, artifactsInfo, classifierModelFromArtifacts, joinWeightData, layersModelFromArtifacts, MODEL_JSON, WEIGHTS_BIN, type ClassifierModel } from '../models/artifacts.js';

/** What {@link saveModel} wrote. */
export interface SavedModelInfo {
  /** Path of `model.json`. */
  modelJsonPath: string;
  /** Path of the weights file. */
  weightsPath: string;
  /** Size of the weights file in bytes. */
  weightBytes: number;
}

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
 * would otherwise trip over later with an obscure message. Layers and graph
 * models are both read; `format` in the result says which one it is.
 *
 * @param path a model folder or the path of its `model.json`.
 * @throws FileFormatError naming the file at fault.
 */
export function loadArtifacts(path: string): tf.io.ModelArtifacts {
  return readArtifacts(resolveModelJson(path), false);
}

function readArtifacts(modelJsonPath: string, layersOnly: boolean): tf.io.ModelArtifacts {
  let text: string;
  try {
    text = readFileSync(modelJsonPath, 'utf8');
  } catch (e) {
    throw new FileFormatError(modelJsonPath, `cannot read: ${e instanceof Error ? e.message : String(e)}`);
  }
  const baseDir = dirname(modelJsonPath);
  return artifactsFromModelJson(modelJsonPath, text, {
    name: (p) => join(baseDir, p),
    read: (p) => {
      const shard = join(baseDir, p);
      return existsSync(shard) && statSync(shard).isFile() ? readFileSync(shard) : null;
    },
  }, layersOnly);
}

/**
 * A `tf.io.IOHandler` for a local model folder (or `model.json` path): `save`
 * writes like {@link saveModel}, `load` reads like {@link loadArtifacts}. Use
 * it where tfjs wants a handler, e.g. `tfl.loadLayersModel(fileIOHandler(dir))`
 * or `tfc.loadGraphModel(fileIOHandler(dir))` ({@link loadClassifierModel} adds
 * checks that the topology and weights fit together).
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
 * quantized weights (dequantized to float32 by tfjs). Use this where the model
 * will be trained; to attack or evaluate, {@link loadClassifierModel} also
 * takes graph models.
 *
 * @throws FileFormatError naming the file that is missing, malformed or truncated,
 *   or whose topology and weights do not fit together, or that holds a graph
 *   model (which cannot be trained).
 */
export async function loadModel(path: string): Promise<tfl.LayersModel> {
  const modelJsonPath = resolveModelJson(path);
  return layersModelFromArtifacts(readArtifacts(modelJsonPath, true), modelJsonPath);
}

/**
 * Loads a model to attack or evaluate from a folder, a `model.json` path or an
 * advlab run folder: a Layers model (as {@link loadModel}) or a graph model
 * (`tensorflowjs_converter` output of a SavedModel, Keras model or frozen
 * graph, with float32/int32/bool weights, quantized or not). Both are read with
 * the same checks, without tfjs-node. A graph model runs with `execute`, so
 * graphs with control flow (which need `executeAsync`) are not supported.
 * Wrap the result with `Classifier.fromModel`; dispose it when done.
 *
 * @throws FileFormatError naming the file that is missing, malformed or truncated,
 *   or whose topology and weights do not fit together.
 */
export async function loadClassifierModel(path: string): Promise<ClassifierModel> {
  const modelJsonPath = resolveModelJson(path);
  return classifierModelFromArtifacts(readArtifacts(modelJsonPath, false), modelJsonPath);
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
