// Makes the metric classifiers advlab ships (src/node/metric-classifier.ts):
// `node --import tsx scripts/metric-classifiers.ts [dataset ...]` trains the zoo's
// lenet with `advlab train`'s defaults and seed 0 on each built-in dataset and
// writes assets/metric-classifiers/<dataset>/{model/, provenance.json}.
import { createHash } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend } from '../src/node/backend.js';
import { trainRun } from '../src/jobs/train-run.js';
import { BUILTIN_DATASETS } from '../src/node/data/builtin.js';
import { METRIC_CLASSIFIERS_DIR, type MetricClassifierProvenance } from '../src/node/metric-classifier.js';
import { writeJsonAtomic } from '../src/node/atomic.js';

const backend = await initBackend({ backend: 'wasm' });
const datasets = process.argv.slice(2).length ? process.argv.slice(2) : [...BUILTIN_DATASETS];
for (const dataset of datasets) {
  const work = mkdtempSync(join(tmpdir(), 'advlab-metric-classifier-'));
  const r = await trainRun({ model: 'lenet', dataset, out: work, seed: 0 }, backend);
  const dir = join(METRIC_CLASSIFIERS_DIR, dataset);
  rmSync(dir, { recursive: true, force: true });
  cpSync(join(work, 'model'), join(dir, 'model'), { recursive: true });
  const provenance: MetricClassifierProvenance = {
    dataset,
    model: 'lenet',
    seed: 0,
    epochs: r.epochs,
    trainSize: r.dataset.trainSize,
    testSize: r.dataset.testSize,
    testAccuracy: r.cleanAccuracy,
    weightsSha256: createHash('sha256').update(readFileSync(join(dir, 'model', 'weights.bin'))).digest('hex'),
    advlabVersion: r.advlabVersion,
    tfjsVersion: r.tfjsVersion,
    backend: `${r.backend} (${r.threads} thread, ${r.kernels} kernels)`,
  };
  writeJsonAtomic(join(dir, 'provenance.json'), provenance);
  rmSync(work, { recursive: true, force: true });
  console.log(`${dataset}: lenet, ${r.epochs} epochs on ${r.dataset.trainSize} images, test accuracy ${(r.cleanAccuracy * 100).toFixed(2)}%, ${r.secondsPerEpoch.toFixed(1)} s/epoch`);
}
