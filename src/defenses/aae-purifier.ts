/**
 * An adversarial autoencoder trained on clean data as a defense (MagNet, Meng
 * & Chen 2017): as a detector, flag inputs it reconstructs badly; as a
 * purifier, classify its reconstruction instead of the input.
 *
 * The purified classifier is built as one Layers model,
 * classifier(gate(x, sigmoid(decoder(encoder(x))))), so the evaluation engine
 * treats it like any model (worker threads included). The gate (see
 * gradient-gate.ts) decides what a gradient attack sees:
 * - `plain`: the purifier as a non-differentiable preprocessing step: white-box
 *   attacks get zero gradients, the number a naive evaluation reports;
 * - `bpda`: the purifier's backward pass replaced by the identity (Athalye,
 *   Carlini & Wagner 2018);
 * - `full`: gradients through the autoencoder itself (it is differentiable).
 */
import { tfl } from '../engine/tf.js';
import { InputError } from '../errors.js';
import { isGraphModel, type ClassifierModel } from '../models/artifacts.js';
import { GradientGate } from '../models/gradient-gate.js';
import { decodeImages, encodeImages } from '../generative/aae/architectures.js';

/** How a purified classifier's gradients flow (see the module comment). */
export const PURIFIER_GRADIENTS = ['plain', 'bpda', 'full'] as const;
export type PurifierGradients = (typeof PURIFIER_GRADIENTS)[number];

/** What a gradient attack sees of the purifier, for reports. */
export const PURIFIER_GRADIENT_DESCRIPTIONS: Record<PurifierGradients, string> = {
  plain: 'the purifier as deployed: a preprocessing step gradients do not pass (white-box attacks see zero gradients)',
  bpda: "BPDA: the purifier's backward pass replaced by the identity (Athalye et al. 2018)",
  full: 'gradients through the autoencoder itself',
};

/** An AAE's encoder and decoder, loaded from an `advlab aae` run folder. */
export interface AaePurifier {
  /** The run folder. */
  path: string;
  encoder: tfl.LayersModel;
  /** Outputs logits; images are their sigmoid. */
  decoder: tfl.LayersModel;
  imageShape: [number, number, number];
  dispose(): void;
}

/** A parsed `--defense` value. */
export interface DefenseSpec {
  kind: 'aae';
  path: string;
}

/**
 * Parses `aae:<run folder>`.
 * @throws InputError('defense') for anything else.
 */
export function parseDefenseSpec(spec: string): DefenseSpec {
  const m = /^aae:(.+)$/.exec(spec ?? '');
  if (!m) throw new InputError('defense', `expected aae:<folder of an advlab aae run>, got "${spec}"`);
  return { kind: 'aae', path: m[1] };
}

/**
 * The purifier of an `advlab aae` run's encoder and decoder (loaded from
 * `path`), which it takes over: its `dispose` frees them.
 * @throws InputError('defense') for a categorical AAE (whose code is not encoder(x) alone) or models that do not fit together; both are disposed then.
 */
export function aaePurifier(path: string, encoder: tfl.LayersModel, decoder: tfl.LayersModel): AaePurifier {
  const dispose = () => {
    encoder.dispose();
    decoder.dispose();
  };
  if (encoder.outputs.length !== 1) {
    dispose();
    throw new InputError('defense', `${path} holds a categorical AAE (--labels or --clusters); a purifier needs one trained with a gaussian, mixture or swiss-roll prior`);
  }
  const [, h, w, c] = encoder.inputs[0].shape;
  const codeSize = encoder.outputs[0].shape[1];
  if (decoder.inputs[0].shape[1] !== codeSize) {
    dispose();
    throw new InputError('defense', `${path}: the decoder takes codes of ${decoder.inputs[0].shape[1]} values, the encoder makes ${codeSize}`);
  }
  return { path, encoder, decoder, imageShape: [h!, w!, c!], dispose };
}

/**
 * classifier(purify(x)) as one Layers model (new layers around the given
 * models, which it shares: dispose those, not this).
 * @throws InputError('model') for a graph model or an input shape other than the AAE's.
 */
export function purifiedModel(classifier: ClassifierModel, purifier: AaePurifier, gradients: PurifierGradients): tfl.LayersModel {
  if (isGraphModel(classifier)) throw new InputError('model', 'an AAE purifier can only be put in front of a Layers model (a graph model cannot be composed)');
  const shape = classifier.inputs[0].shape.slice(1);
  if (shape.join() !== purifier.imageShape.join()) throw new InputError('model', `the classifier takes images of [${shape.join(', ')}], the AAE of [${purifier.imageShape.join(', ')}]`);
  const x = tfl.input({ shape: purifier.imageShape, name: 'purifier_input' });
  const code = purifier.encoder.apply(x) as tfl.SymbolicTensor;
  const logits = purifier.decoder.apply(code) as tfl.SymbolicTensor;
  const purified = tfl.layers.activation({ activation: 'sigmoid', name: 'purified' }).apply(logits) as tfl.SymbolicTensor;
  const gated = gradients === 'full' ? purified : (new GradientGate({ mode: gradients === 'bpda' ? 'identity' : 'block', name: 'purifier_gradients' }).apply([x, purified]) as tfl.SymbolicTensor);
  return tfl.model({ inputs: x, outputs: classifier.apply(gated) as tfl.SymbolicTensor, name: `purified_${gradients}` });
}

/**
 * The detector's score: mean squared error per pixel between each image and
 * its reconstruction sigmoid(decoder(encoder(x))). No tensor outlives the call.
 */
export async function reconstructionErrors(purifier: AaePurifier, images: Float32Array): Promise<Float32Array> {
  const shape = purifier.imageShape;
  const size = shape[0] * shape[1] * shape[2];
  // encodeImages checks that `images` holds whole images.
  const codes = await encodeImages(purifier.encoder, images, shape);
  const reconstructed = await decodeImages(purifier.decoder, codes, purifier.encoder.outputs[0].shape[1] as number);
  const out = new Float32Array(images.length / size);
  for (let i = 0; i < out.length; i++) {
    let sum = 0;
    for (let j = i * size; j < (i + 1) * size; j++) sum += (reconstructed[j] - images[j]) ** 2;
    out[i] = sum / size;
  }
  return out;
}
