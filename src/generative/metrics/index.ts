/**
 * Quality metrics for generative models, on plain typed arrays: Fréchet
 * distance (FID), Inception Score, class coverage, improved precision and recall.
 */
export {
  meanAndCovariance,
  symmetricEigen,
  symmetricEigenvalues,
  sqrtPsd,
  traceSqrtProduct,
  type SampleMatrix,
  type GaussianMoments,
  type SymmetricEigen,
} from './linalg.js';
export { frechetDistance, frechetDistanceFromMoments } from './fid.js';
export { inceptionScore, inceptionScoreFromLogits, softmaxRows, type InceptionScore, type InceptionScoreOptions } from './inception-score.js';
export { classCoverage, argmaxRows, rareClasses, modeCollapse, type ClassCoverage } from './coverage.js';
export { precisionRecall, manifoldFraction, type PrecisionRecall, type PrecisionRecallOptions } from './precision-recall.js';
