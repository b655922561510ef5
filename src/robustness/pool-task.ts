/**
 * The pool task of an evaluation: one stage batch (see stage-batch.ts), in a
 * worker, on a rebuilt copy of the caller's classifier. Same images, targets,
 * seeds and backend as in the main thread, so the verdicts are identical.
 */
import { classifierInWorker, type SharedClassifier } from '../models/pool-model.js';
import { runStageBatch, type StageBatchInput, type StageBatchOutput } from './stage-batch.js';
import { rankByMalt } from './targets.js';
import type { Norm } from '../attacks/types.js';

/** URL of this module, for the pool's TaskRef. */
export const EVAL_TASK_URL = import.meta.url;

/** One stage batch and the classifier it attacks, as plain data. */
export interface StageBatchPayload {
  classifier: SharedClassifier;
  batch: StageBatchInput;
}

/** Runs {@link runStageBatch} on a worker's copy of the classifier. */
export async function stageBatchTask(p: StageBatchPayload): Promise<StageBatchOutput> {
  const classifier = await classifierInWorker(p.classifier);
  try {
    return await runStageBatch(classifier, p.batch);
  } finally {
    classifier.dispose();
  }
}

/** Points whose targets MALT ranks, and the classifier, as plain data. */
export interface MaltRankPayload {
  classifier: SharedClassifier;
  images: Float32Array;
  labels: Int32Array;
  norm: Norm;
}

/** Runs {@link rankByMalt} on a worker's copy of the classifier. */
export async function maltRankTask(p: MaltRankPayload): Promise<Int32Array> {
  const classifier = await classifierInWorker(p.classifier);
  try {
    return await rankByMalt(classifier, p.images, p.labels, p.norm);
  } finally {
    classifier.dispose();
  }
}
