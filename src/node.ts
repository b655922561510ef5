/**
 * advlab in Node (`advlab/node`): everything of the platform-neutral core
 * (`advlab`), plus Node's platform — the backend started with tfjs-node or the
 * installed .wasm files, the worker-thread pool, files and checkpoints, the
 * datasets of the npm packages and the user's data formats, Redis queues — and
 * the jobs behind each CLI command (train, attack, eval, gan, aae), which
 * read and write run folders.
 */
export * from './index.js';
// Node's backend start (tfjs-node, the installed .wasm files, ADVLAB_BACKEND) in place of the core's.
export { initBackend, wasmDir } from './node/backend.js';
export { CheckpointFolder } from './node/checkpoint.js';
export { writeFileAtomic, writeJsonAtomic } from './node/atomic.js';
export { openMetricsAt, fidFloorFile } from './node/metrics-files.js';
export { loadAaePurifier } from './node/aae-purifier-files.js';
export { shippedMetricClassifier, METRIC_CLASSIFIERS_DIR } from './node/metric-classifier.js';
export { WorkerPool } from './node/worker-pool.js';
export { loadDataset } from './node/data/load.js';
export { loadBuiltinDataset, BUILTIN_DATASETS, type BuiltinDatasetName } from './node/data/builtin.js';
export { loadDatasetFromPath } from './node/data/formats/index.js';
export { saveModel, loadModel, loadClassifierModel } from './node/model-files.js';
export { resolveModel, loadSavedClassifier, type ResolvedModel, type ModelDataSpec } from './node/resolve.js';
export { workerCount, startJobPool, type WorkersSpec } from './node/workers.js';
export { trainRun, defaultEpochs } from './jobs/train-run.js';
export { attackRun, type AttackRunOptions, type AttackRunResult } from './jobs/attack-run.js';
export { evalRun, EVAL_DEFAULTS, type EvalRunOptions, type EvalRunEvent } from './jobs/eval-run.js';
export { defenseRun, type DefenseRunOptions } from './jobs/defense-run.js';
export { ganRun, GAN_RUN_DEFAULTS, DEFAULT_CLUSTERS, HISTORY_COLUMNS as GAN_HISTORY_COLUMNS, type GanRunOptions, type GanRunEvent } from './jobs/gan-run.js';
export { evaluateGan, type EvaluateGanOptions, type GanEvalResult } from './jobs/gan-eval.js';
export { loadGenerator, sampleGan, MAX_SAMPLES, type LoadedGenerator, type SampleGanOptions, type SampleGanResult } from './jobs/gan-sample.js';
export { loadGeneratedData, checkGeneratedOptions, DEFAULT_GENERATED_FRACTION } from './jobs/generated-data.js';
export { aaeRun, labelledSubset, AAE_RUN_DEFAULTS, HISTORY_COLUMNS as AAE_HISTORY_COLUMNS, type AaeRunOptions, type AaeRunEvent } from './jobs/aae-run.js';
export { advganRun, ADVGAN_RUN_DEFAULTS, type AdvGanRunOptions, type AdvGanRunResult, type AdvGanRunEvent } from './jobs/advgan-run.js';
export { loadAdvGanGenerator, type LoadedAdvGan } from './node/advgan-files.js';
export { latentAttackRun, loadLatentGenerator, LATENT_ATTACK_DEFAULTS, SHIPPED_AAES, type LatentAttackRunOptions, type LatentAttackRunResult, type LatentAttackRunEvent } from './jobs/latent-attack-run.js';
export * from './node/distributed/index.js';
