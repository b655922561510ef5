/**
 * The trainable state of a model and its Adam optimizer as bytes and JSON
 * specs, for checkpoints that resume bit-identically (the classifier trainer
 * and the GAN trainer share it).
 */
import { sha256Hex } from '../util/hash.js';
import { tf, tfl } from '../engine/tf.js';
import { packTensors, unpackTensors, type TensorSpec } from '../engine/tensor-io.js';
import { InputError } from '../errors.js';

/** A hash of the model's architecture as tfjs serializes it (names included: the same build gives the same names). */
export function topologyHash(model: tfl.LayersModel): string {
  return sha256Hex(JSON.stringify(model.toJSON(null, false)));
}

/** The model's weights (including batch-norm statistics), packed. */
export function packModelWeights(model: tfl.LayersModel): { specs: TensorSpec[]; data: Uint8Array } {
  return packTensors(model.weights.map((w) => ({ name: w.originalName, tensor: w.read() })));
}

/** Sets the model's weights from {@link packModelWeights}' output; a different model is refused naming `resume`. */
export function restoreModelWeights(model: tfl.LayersModel, specs: TensorSpec[], data: Uint8Array, file: string): void {
  const tensors = unpackTensors(specs, data, file);
  try {
    const weights = model.weights;
    if (weights.length !== tensors.length || weights.some((w, i) => w.shape.join() !== tensors[i].tensor.shape.join())) {
      throw new InputError('resume', `the checkpoint in ${file} was written for a different model (weights do not match); delete it or drop --resume`);
    }
    model.setWeights(tensors.map((t) => t.tensor));
  } finally {
    tf.dispose(tensors.map((t) => t.tensor));
  }
}

/** Adam's state: its moment variables and iteration, packed, and its running beta powers. */
export interface OptimizerState {
  specs: TensorSpec[];
  /** Adam's running beta powers; restoring them exactly keeps a resumed run bit-identical. */
  accBeta: [number, number] | null;
}

/** Packs an Adam optimizer's state. */
export async function packOptimizer(optimizer: tf.AdamOptimizer): Promise<{ state: OptimizerState; data: Uint8Array }> {
  const weights = await optimizer.getWeights();
  const pack = packTensors(weights);
  // getWeights hands out Adam's live moment variables plus a fresh iteration scalar: free only the latter.
  tf.dispose(weights.map((w) => w.tensor).filter((t) => !(t instanceof tf.Variable)));
  return { state: { specs: pack.specs, accBeta: readAccBeta(optimizer) }, data: pack.data };
}

/** Restores {@link packOptimizer}'s output into a fresh Adam optimizer. */
export async function restoreOptimizer(optimizer: tf.AdamOptimizer, state: OptimizerState, data: Uint8Array, file: string): Promise<void> {
  const tensors = unpackTensors(state.specs, data, file);
  // setWeights copies the values into new variables.
  await optimizer.setWeights(tensors);
  tf.dispose(tensors.map((t) => t.tensor));
  if (state.accBeta) {
    const o = optimizer as unknown as { accBeta1?: tf.Variable<tf.Rank.R0>; accBeta2?: tf.Variable<tf.Rank.R0> };
    const [b1, b2] = state.accBeta;
    tf.tidy(() => {
      o.accBeta1?.assign(tf.scalar(b1));
      o.accBeta2?.assign(tf.scalar(b2));
    });
  }
}

/** tfjs's Adam keeps beta^t as running products; setWeights recomputes them with pow, which rounds differently. */
function readAccBeta(optimizer: tf.AdamOptimizer): [number, number] | null {
  const o = optimizer as unknown as { accBeta1?: tf.Variable; accBeta2?: tf.Variable };
  if (!o.accBeta1 || !o.accBeta2) return null;
  return [o.accBeta1.dataSync()[0], o.accBeta2.dataSync()[0]];
}

/** Sets Adam's learning rate (tfjs reads the field on every applyGradients). */
export function setLearningRate(optimizer: tf.AdamOptimizer, rate: number): void {
  (optimizer as unknown as { learningRate: number }).learningRate = rate;
}
