/**
 * The pool tasks of randomized smoothing, on the worker's copy of the
 * classifier: CERTIFY (or PREDICT) for a few images, and the attack on the
 * smoothed classifier judged by PREDICT. Each image has its own seeds, so
 * results do not depend on which worker takes it.
 */
import { classifierInWorker, type SharedClassifier } from '../models/pool-model.js';
import { certify, predictSmoothed, type Certificate, type SmoothedPrediction } from './smoothing.js';
import { attackAndPredict, type SmoothedAttackOptions, type SmoothedAttackOutcome } from './smoothed-attack.js';

/** URL of this module, for the pool's TaskRef. */
export const SMOOTHING_TASK_URL = import.meta.url;

/** Images to certify, as plain data. */
export interface SmoothingPayload {
  classifier: SharedClassifier;
  mode: 'certify' | 'predict';
  /** The images, [k, h, w, c] flattened. */
  images: Float32Array;
  /** One seed per image. */
  seeds: number[];
  sigma: number;
  n0: number;
  n: number;
  alpha: number;
  batchSize: number;
  clipNoise: boolean;
}

/** CERTIFY or PREDICT for each image of the payload, in order. */
export async function smoothingTask(p: SmoothingPayload): Promise<(Certificate | SmoothedPrediction)[]> {
  const classifier = await classifierInWorker(p.classifier);
  const size = p.images.length / p.seeds.length;
  const out: (Certificate | SmoothedPrediction)[] = [];
  for (let i = 0; i < p.seeds.length; i++) {
    const image = p.images.slice(i * size, (i + 1) * size);
    const options = { sigma: p.sigma, seed: p.seeds[i], n0: p.n0, n: p.n, alpha: p.alpha, batchSize: p.batchSize, clipNoise: p.clipNoise };
    out.push(p.mode === 'certify' ? await certify(classifier, image, options) : await predictSmoothed(classifier, image, options));
  }
  return out;
}

/** One image to attack at one radius, as plain data: the image, its label, and the settings of {@link attackAndPredict}. */
export interface SmoothedAttackPayload {
  classifier: SharedClassifier;
  image: Float32Array;
  label: number;
  options: SmoothedAttackOptions & { n: number; alpha: number; batchSize: number; predictSeed: number };
}

/** The attack on the smoothed classifier and PREDICT at the attacked point, for the payload's image. */
export async function smoothedAttackTask(p: SmoothedAttackPayload): Promise<SmoothedAttackOutcome> {
  return attackAndPredict(await classifierInWorker(p.classifier), p.image, p.label, p.options);
}
