/**
 * The WorkerPool task of an evaluation: one batch through the whole suite, in
 * a worker, on a rebuilt copy of the caller's classifier. Same seed, images and
 * backend as in the main thread, so the verdicts are identical.
 */
import { classifierInWorker, type SharedClassifier } from '../models/pool-model.js';
import type { AttackInput } from '../attacks/validate.js';
import { evaluateBatch, type EnsembleBatchResult, type EnsembleOptions } from './ensemble.js';

/** URL of this module, for the pool's TaskRef. */
export const EVAL_TASK_URL = import.meta.url;

/** One evaluation batch as plain data. */
export interface EvalBatchPayload {
  classifier: SharedClassifier;
  input: AttackInput;
  options: EnsembleOptions;
}

/** Runs {@link evaluateBatch} on a worker's copy of the classifier. */
export async function evalBatchTask(p: EvalBatchPayload): Promise<EnsembleBatchResult> {
  const classifier = await classifierInWorker(p.classifier);
  try {
    return await evaluateBatch(classifier, p.input, p.options);
  } finally {
    classifier.dispose();
  }
}
