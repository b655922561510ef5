/**
 * The classifiers behind advlab's generative-model metrics (FID, Inception
 * Score, class coverage, precision/recall), shipped in the package so every
 * user measures with the same features: one per built-in dataset, a LeNet-5
 * (the zoo's `lenet`) trained by `advlab train` with its defaults and seed 0
 * (scripts/metric-classifiers.ts makes them; `provenance.json` records how,
 * with the test accuracy and the weights' sha256). The features are the input
 * of its last Dense layer (84 values), the probabilities its softmax: the
 * roles Inception-v3's pool3 features and softmax play for natural images
 * (Heusel et al. 2017; Salimans et al. 2016).
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FileFormatError } from '../errors.js';

/** Where the shipped classifiers live: `<package>/assets/metric-classifiers/<dataset>/` (src/ and dist/ are both two levels below). */
export const METRIC_CLASSIFIERS_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'assets', 'metric-classifiers');

/** How a shipped classifier was made (its folder's provenance.json). */
export interface MetricClassifierProvenance {
  dataset: string;
  model: string;
  seed: number;
  epochs: number;
  trainSize: number;
  testSize: number;
  testAccuracy: number;
  /** sha256 of model/weights.bin. */
  weightsSha256: string;
  advlabVersion: string;
  tfjsVersion: string;
  backend: string;
}

/** The shipped metric classifier's model folder for a built-in dataset, or null if none ships; its weights are checked against the provenance hash. */
export function shippedMetricClassifier(dataset: string, root = METRIC_CLASSIFIERS_DIR): { path: string; provenance: MetricClassifierProvenance } | null {
  const dir = join(root, dataset);
  const provenanceFile = join(dir, 'provenance.json');
  if (!/^[a-z0-9-]+$/.test(dataset) || !existsSync(provenanceFile)) return null;
  const provenance = JSON.parse(readFileSync(provenanceFile, 'utf8')) as MetricClassifierProvenance;
  const path = join(dir, 'model');
  const weights = join(path, 'weights.bin');
  if (!existsSync(weights)) throw new FileFormatError(weights, 'the shipped metric classifier has no weights; reinstall advlab');
  const hash = createHash('sha256').update(readFileSync(weights)).digest('hex');
  if (hash !== provenance.weightsSha256) throw new FileFormatError(weights, `corrupt shipped metric classifier: sha256 ${hash}, expected ${provenance.weightsSha256}; reinstall advlab`);
  return { path, provenance };
}
