/**
 * advlab: adversarial machine learning for TensorFlow.js — the platform-neutral
 * core, which runs wherever TensorFlow.js runs (Node, a page, a Web Worker).
 * Node's parts (files, worker threads, the npm datasets, Redis, the jobs behind
 * the CLI) are in `advlab/node`, which also re-exports all of this.
 *
 * The library never prints and knows nothing of the CLI.
 */
export { tf, tfl } from './engine/tf.js';
export { initBackend, backendInfo, BACKEND_NAMES, BROWSER_BACKEND_NAMES, type BackendName, type BackendInfo, type InitBackendOptions } from './engine/backend.js';
export { setAdvlabKernels, kernelMode, type KernelMode } from './engine/kernels/index.js';
export { splitRanges, poolFor, serializeError, deserializeError, type TaskPool, type TaskRef, type Transfer, type PoolOptions, type PoolBackend, type PoolWorkerInfo, type PoolWorkerData, type RunMessage, type WorkerMessage, type SerializedError } from './engine/task-pool.js';
export { runTaskMessage, unsendableResult } from './engine/task-runner.js';

export type { Dataset, ImageSet } from './data/types.js';
export { splitByClass, TRAIN_FRACTION } from './data/split.js';
export { balancedSubset, balancedOrder } from './data/subset.js';
export { batches, batchOrder, makeBatch, type Batch } from './data/batches.js';
export { mixedBatchOrder, makeMixedBatch, generatedInBatch, generatedSlots, checkGeneratedFraction, checkGeneratedMix, poolFingerprint, GeneratedStream, type GeneratedMix, type MixedBatchPlan } from './data/mix.js';

export { buildModel, describeZoo, ZOO_NAMES, ZOO_ACTIVATIONS, type ZooName, type ZooActivation, type BuildModelOptions } from './models/zoo.js';
export { countParameters, isGraphModel, checkInputShape, artifactsFromModelJson, classifierModelFromArtifacts, layersModelFromArtifacts, modelToArtifacts, modelFromArtifacts, MODEL_JSON, WEIGHTS_BIN, type ClassifierModel, type ShardReader } from './models/artifacts.js';
export type { CheckpointStore, LoadedCheckpoint } from './models/checkpoint.js';
export { decodeImage, type Rgba } from './data/decode-image.js';
export { shareModel, modelInWorker, shareClassifier, classifierInWorker, type SharedModel, type SharedClassifier } from './models/pool-model.js';
export { trainClassifier, type TrainOptions, type TrainEvent, type TrainResult, type EpochRecord } from './models/train.js';
export type { TrainRunOptions, TrainRunResult, TrainRunEvent, GeneratedDataRecord } from './models/types.js';
export { accuracy, predictLabels } from './models/evaluate.js';
export { Classifier, type ClassifierOptions, type LogitsFunction, type Preprocessing } from './models/classifier.js';

export * from './attacks/index.js';
export { parseAugmentations, randomShift, gaussianNoise, cutout, type Augmentation } from './data/augment.js';

export { Rng, deriveSeed } from './util/rng.js';
export { AdvlabError, InputError, FileFormatError } from './errors.js';
export { ADVLAB_VERSION } from './version.js';
export { runMeta, type RunMeta } from './report/meta.js';

// Robustness evaluation.
export { buildSuite, SUITE_NAMES, type SuiteName } from './robustness/suites.js';
export { evaluateRobustness, summarizeEvaluation, wilsonInterval, type EvaluateOptions, type Evaluation, type EvaluationProgress } from './robustness/evaluate.js';
export { ROBUST, MISCLASSIFIED, planRuns, type PipelineState, type PlannedRun, type StageFigures } from './robustness/schedule.js';
export { minimalNorms, summarizeMinimal, MINIMAL_ATTACKS, type MinimalNorms, type MinimalOptions } from './robustness/minimal.js';
export { CORRUPTIONS, CORRUPTION_NAMES, parseCorruptions, type CorruptionName } from './robustness/corruptions.js';
export { corruptionAccuracy, type CorruptionAccuracyResult } from './robustness/corruption-accuracy.js';
export { runSanityChecks, overallVerdict, type SanityInput } from './robustness/sanity.js';
export type { Suite, SuiteStage, EpsilonResult, StageSummary, ClassSummary, MinimalPerturbations, SanityCheck, Verdict, EvalRunResult } from './robustness/types.js';
export { ABSTAIN, SMOOTHING_DEFAULTS, certify, certifyImages, predictImages, certifiedAccuracy, certifiedRadius, predictSmoothed, noisyCounts, binomialTestTwoSided, type Certificate, type SmoothedPrediction, type SmoothingOptions, type CertifyImagesOptions } from './robustness/smoothing.js';
export { attackSmoothed, attackAndPredict, smoothingConsistency, SMOOTHED_ATTACK_DEFAULTS, type SmoothedAttackOptions, type SmoothedAttackOutcome, type SmoothingConsistency, type ConsistencyPoint } from './robustness/smoothed-attack.js';
export { INTERVAL_LAYERS, intervalChain, logitBounds, worstCaseMargins, verifiedAt, type LogitBounds } from './robustness/interval-bounds.js';
export { normalQuantile } from './util/normal.js';

// Defenses (adversarial training).
export { createDefense, defaultDefenseConfig, validateDefense, attackStart, attackFrom, klFromLogits, epsAt, consistencyLoss, noisyCopies, ibpKappaAt, IBP_DEFAULTS, CONSISTENCY_DEFAULTS } from './defenses/defenses.js';
export { pooledDefense } from './defenses/pooled.js';
export type { DefenseRunResult, EvidenceEntry, OverfittingVerdict } from './defenses/types.js';
export { DEFENSE_NAMES, type Defense, type DefenseConfig, type DefenseName, type IbpSchedule, type ConsistencyWeights } from './defenses/types.js';
export type { TrainingDefense } from './models/train.js';

// Generative models: GANs.
export { GAN_LOSSES, DEFAULT_GAN_LOSS, DEFAULT_GP_LAMBDA, discriminatorLoss, generatorLoss, gradientPenalty, randomInterpolates, parseGanLoss, type GanLoss, type Critic, type DiscriminatorLossOptions } from './generative/losses.js';
export * from './generative/metrics/index.js';
export { buildGan, GAN_ARCHS, DEFAULT_LATENT_DIM, type GanArch, type GanArchOptions, type GanModels, type DiscriminatorNorm } from './generative/gan/architectures.js';
export { trainGan, ganOptimizerDefaults, type GanTrainOptions, type GanTrainEvent, type GanTrainResult, type GanEpochRecord } from './generative/gan/train-gan.js';
export type { GanRunResult } from './generative/gan/types.js';
export { generateImages, latentCodes, clusterDraws, generatorClasses, generatorSpec, GENERATOR_METADATA_KEY, type GeneratorMetadata, type GanRunInfo, type GeneratorSpec } from './generative/gan/sample.js';
export { generatePool, checkGeneratedSource, defaultGeneratedCount, CLASS_CONDITIONAL_ARCHS, GENERATED_PER_REAL, DEFAULT_POOL_BYTES, MAX_POOL_BYTES, type GeneratedPool, type GeneratedPoolOptions } from './generative/gan/generated-data.js';
export { clusterTrainingSet, type ClusteringSummary } from './generative/gan/clustering.js';
export { kMeans, type KMeansOptions, type KMeansResult } from './generative/kmeans.js';
export { openMetrics, closeMetrics, generatorMetrics, conditionalAccuracy, realFidFloor, PRECISION_RECALL_K, type GanMetrics, type MetricsClassifier, type MetricsContext } from './generative/gan/gan-metrics.js';

// Generative models: adversarial autoencoders.
export { PRIORS, DEFAULT_COMPONENTS, parsePrior, samplePrior, sampleCategorical, priorMoments, priorLogDensity, mixtureMeans, posteriorMatch, type PriorName, type PriorSample, type SamplePriorOptions, type CategoricalSample, type PosteriorMatch, type PosteriorMatchOptions } from './generative/aae/priors.js';
export { RECONSTRUCTION_LOSSES, AAE_ADVERSARIAL_LOSSES, parseReconstructionLoss, reconstructionLoss, latentDiscriminatorLoss, encoderAdversarialLoss, classificationLoss, type ReconstructionLoss, type AaeAdversarialLoss } from './generative/aae/losses.js';
export { buildAae, encodeImages, decodeImages, encodeCategorical, categoricalCodes, reconstructImages, AAE_ARCHS, DEFAULT_AAE_LATENT_DIM, MLP_HIDDEN_UNITS, CLASS_HEAD, type AaeArch, type AaeArchOptions, type AaeModels, type CategoricalCodes } from './generative/aae/architectures.js';
export { predictedCategories, classificationError, clusteringError, type ClassificationFigures, type ClusteringFigures } from './generative/aae/clustering.js';
export { trainAae, AAE_OPTIMIZER_DEFAULTS, type AaeTrainOptions, type AaeTrainEvent, type AaeTrainResult, type AaeEpochRecord } from './generative/aae/train-aae.js';
export type { AaeRunResult, AaeTestFigures } from './generative/aae/types.js';

// AdvGAN (Xiao et al. 2018): a generator of adversarial examples, white-box or through dynamic distillation, and the trained generator as an attack.
export { buildAdvGan } from './generative/advgan/architectures.js';
export { marginLoss, perturbationHinge, perturbedImages } from './generative/advgan/losses.js';
export { trainAdvGan, ADVGAN_DEFAULTS, type AdvGanTrainOptions, type AdvGanEpochRecord, type AdvGanTrainEvent, type AdvGanTrainResult } from './generative/advgan/train-advgan.js';
export { DynamicDistillation, DISTILLATION_DEFAULTS, type BlackBox, type DistillationOptions } from './generative/advgan/distillation.js';
export { advganAttack, type AdvGanGeneratorInfo } from './attacks/advgan.js';
// Unrestricted adversarial examples from a generator's latent space (Song et al. 2018).
export { latentSearch, acganLatentGenerator, aaeLatentGenerator, latentDistancePenalty, crossEntropyToward, latentObjective, initialCodes, searchPairs, validatorPredictions, summarizeLatentSearch, LATENT_SEARCH_DEFAULTS, type LatentGenerator, type LatentSearchInput, type LatentSearchOptions, type LatentSearchEvent, type LatentSearchResult, type LatentSearchRecord, type LatentSearchSummary, type LatentObjectiveTerms } from './generative/latent-search.js';

// Distributed runs on Redis (BullMQ).
