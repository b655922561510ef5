import { existsSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BackendInfo } from '../src/engine/backend.js';
import { trainRun } from '../src/jobs/train-run.js';
import { loadModel } from '../src/node/model-files.js';
import { Classifier } from '../src/models/classifier.js';
import { loadBuiltinDataset } from '../src/node/data/builtin.js';
import { balancedSubset } from '../src/data/subset.js';

/** The default-trained reference model; trained once (advlab train's defaults) and cached here. */
export const REFERENCE_MODEL_DIR = join(dirname(fileURLToPath(import.meta.url)), '.cache', 'small-cnn-mnist');

/**
 * The reference small-cnn (training it first if the cache is empty) as a
 * classifier, and the first `n` images of mnist's balanced test split. The
 * caller disposes both the classifier and the model.
 */
export async function referenceSetup(backend: BackendInfo, n: number, log: (s: string) => void) {
  if (!existsSync(join(REFERENCE_MODEL_DIR, 'model', 'model.json'))) {
    log(`training the reference small-cnn (advlab train defaults) into ${REFERENCE_MODEL_DIR}`);
    await trainRun({ model: 'small-cnn', dataset: 'mnist', out: REFERENCE_MODEL_DIR, resume: true }, backend);
  }
  const model = await loadModel(REFERENCE_MODEL_DIR);
  return { model, classifier: Classifier.fromModel(model), images: balancedSubset(loadBuiltinDataset('mnist').test, 10, n) };
}
