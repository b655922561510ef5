/**
 * The AAE's per-phase objectives (Makhzani et al. 2015; see train-aae.ts for
 * the phases), shared by the single-thread trainer and the pool task of
 * data-parallel steps (aae-task.ts), so both compute the same thing.
 */
import { tf, type tfl } from '../../engine/tf.js';
import { classificationLoss, encoderAdversarialLoss, latentDiscriminatorLoss, reconstructionLoss, type AaeAdversarialLoss, type ReconstructionLoss } from './losses.js';
import type { AaeModels } from './architectures.js';

/** The encoder's outputs: the code z, and the class logits of a categorical AAE. */
export interface Encoded {
  z: tf.Tensor2D;
  logits?: tf.Tensor2D;
}

/** The encoder in training mode. */
export function encode(E: tfl.LayersModel, x: tf.Tensor): Encoded {
  const out = E.apply(x, { training: true }) as tf.Tensor2D | tf.Tensor2D[];
  return Array.isArray(out) ? { z: out[0], logits: out[1] } : { z: out };
}

/** The decoder's input: z, or [softmax(logits), z] (the paper's Figure 8: the decoder sees y and z). */
export function decoderInput(c: Encoded): tf.Tensor2D {
  return c.logits ? (tf.concat([tf.softmax(c.logits), c.z], 1) as tf.Tensor2D) : c.z;
}

/** A discriminator's input: the code, with the one-hot label in the supervised-prior mode. */
export function discriminatorInputs(z: tf.Tensor, label?: tf.Tensor2D): tf.Tensor | tf.Tensor[] {
  return label ? [z, label] : z;
}

/** Phase 1: the reconstruction loss of decoder(encoder(x)) (mean over pixels). */
export function reconstructionObjective(E: tfl.LayersModel, G: tfl.LayersModel, x: tf.Tensor, kind: ReconstructionLoss): tf.Scalar {
  const logits = G.apply(decoderInput(encode(E, x)), { training: true }) as tf.Tensor;
  return reconstructionLoss(x, kind === 'bce' ? logits : tf.sigmoid(logits), kind);
}

/** Phase 2a: a latent discriminator on prior samples (label 1) against codes (label 0), with its mean outputs. */
export function discriminatorObjective(net: tfl.LayersModel, prior: tf.Tensor | tf.Tensor[], code: tf.Tensor | tf.Tensor[]): { loss: tf.Scalar; priorMean: tf.Scalar; codeMean: tf.Scalar } {
  const r = net.apply(prior, { training: true }) as tf.Tensor;
  const f = net.apply(code, { training: true }) as tf.Tensor;
  return { loss: latentDiscriminatorLoss(r, f), priorMean: tf.mean(tf.sigmoid(r)) as tf.Scalar, codeMean: tf.mean(tf.sigmoid(f)) as tf.Scalar };
}

/**
 * Phase 2b: the encoder's adversarial losses against the style discriminator
 * and (categorical mode) the category discriminator, whose input is
 * `noisy(q)`; q = softmax of the class logits, returned for the balance term.
 */
export function encoderObjective(E: tfl.LayersModel, D: tfl.LayersModel, C: tfl.LayersModel | undefined, x: tf.Tensor, label: tf.Tensor2D | undefined, loss: AaeAdversarialLoss, noisy: (q: tf.Tensor2D) => tf.Tensor2D): { style: tf.Scalar; category?: tf.Scalar; q?: tf.Tensor2D } {
  const c = encode(E, x);
  const style = encoderAdversarialLoss(D.apply(discriminatorInputs(c.z, label), { training: true }) as tf.Tensor, loss);
  if (!C || !c.logits) return { style };
  const q = tf.softmax(c.logits) as tf.Tensor2D;
  return { style, category: encoderAdversarialLoss(C.apply(noisy(q), { training: true }) as tf.Tensor, loss), q };
}

/** Phase 3: the class head's cross-entropy on a labelled batch. */
export function classificationObjective(E: tfl.LayersModel, x: tf.Tensor, y: tf.Tensor): tf.Scalar {
  return classificationLoss(encode(E, x).logits!, y);
}

/** The variables each phase trains, in a fixed order (the trainer's and every worker's). */
export interface AaeVariables {
  /** Phase 1: encoder then decoder. */
  autoencoder: tf.Variable[];
  encoder: tf.Variable[];
  discriminator: tf.Variable[];
  category: tf.Variable[];
  /** Phase 3: the encoder's trunk and class head, not the style head. */
  classifier: tf.Variable[];
}

/** The trained variables of an AAE's nets, by phase. */
export function aaeVariables(models: Pick<AaeModels, 'encoder' | 'categoryDiscriminator' | 'categories'> & Partial<Pick<AaeModels, 'decoder' | 'discriminator'>>): AaeVariables {
  const vars = (net: { trainableWeights: tfl.LayerVariable[] } | null | undefined) => (net ? net.trainableWeights.map((w) => w.read() as tf.Variable) : []);
  const encoder = vars(models.encoder);
  const styleHead = new Set(models.categories > 0 ? vars(models.encoder.getLayer('e_code')) : []);
  return {
    autoencoder: [...encoder, ...vars(models.decoder)],
    encoder,
    discriminator: vars(models.discriminator),
    category: vars(models.categoryDiscriminator),
    classifier: models.categories > 0 ? encoder.filter((v) => !styleHead.has(v)) : [],
  };
}
