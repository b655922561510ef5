/**
 * Sanity checks that catch false robustness, above all gradient masking
 * (Athalye, Carlini & Wagner, "Obfuscated gradients give a false sense of
 * security", ICML 2018; Carlini et al., "On evaluating adversarial
 * robustness", 2019): robust accuracy that rises with eps, an attack that
 * fails with an unbounded budget, a black-box attack beating the white-box
 * ones, an attack that had not converged, zero or non-finite input gradients,
 * and randomized logits. Each check gives a verdict, a one-sentence message
 * and the figures behind it; none of them proves robustness, each can only
 * show that an evaluation is not to be trusted.
 */
import { tf } from '../engine/tf.js';
import { readOne } from '../engine/read.js';
import type { Classifier } from '../models/classifier.js';
import type { TaskPool } from '../engine/task-pool.js';
import { findAttack } from '../attacks/index.js';
import { runAttack } from '../attacks/run.js';
import { validateInput, validateEps, resolveParams, type AttackInput } from '../attacks/validate.js';
import { crossEntropy, margin } from '../attacks/losses.js';
import type { Attack, AttackResult, Norm } from '../attacks/types.js';
import { deriveSeed } from '../util/rng.js';
import { InputError } from '../errors.js';
import type { SanityCheck } from './types.js';

/** What {@link runSanityChecks} needs: the classifier, a sample of the evaluated images, and what the evaluation found. */
export interface SanityInput {
  classifier: Classifier;
  /** A sample of the evaluated images (e.g. the first 100). */
  sample: AttackInput;
  norm: Norm;
  /** The headline eps. */
  eps: number;
  seed: number;
  /** Robust accuracy per eps of the evaluation (ascending eps), if a sweep ran. */
  sweep?: { eps: number[]; robustAccuracy: number[]; count: number };
  /** If the suite had black-box stages: how many images they broke after the white-box stages, out of `count` evaluated. */
  blackBox?: { broken: number; count: number; whiteBoxRobust: number };
  /** Indices into `sample` of images still robust after the suite's white-box stages (to run a Square probe on when the suite had no black-box stage). */
  whiteBoxSurvivors?: Int32Array;
  /** The suite's first white-box attack and its params, e.g. `{ attack: 'apgd', params: { steps: 100, loss: 'ce' } }`. */
  reference: { attack: string; params: Record<string, unknown> };
  /** Passed through to runAttack (used only with a classifier made from a LayersModel). */
  pool?: TaskPool;
  /** Called as each check starts; the library never prints. */
  onProgress?: (e: { check: string }) => void;
}

// ---- Thresholds (each with the reason for its value) ----

/**
 * monotone-in-eps: a larger ball contains the smaller one, so robust accuracy
 * can only rise with eps through attack noise; one example, or 0.5% of large
 * samples, is the noise a random start or restart can give.
 */
const MONOTONE_SLACK_EXAMPLES = 1;
const MONOTONE_SLACK_FRACTION = 0.005;
/**
 * unbounded-attack: with the whole input range as budget every image can be
 * turned into any other, so a working attack succeeds on all of them (Carlini
 * et al. 2019, sec. 5.2); 99% leaves room for one stray image in a hundred.
 */
const UNBOUNDED_MIN_SUCCESS = 0.99;
/**
 * black-box-vs-white-box: on an honest model AutoAttack's Square finds about
 * 0.1% more than the APGDs (Croce & Hein 2020); more than 1% (and at least 2
 * images, so one lucky image never warns) means the gradients mislead.
 */
const BLACK_BOX_MAX_FRACTION = 0.01;
const BLACK_BOX_MIN_EXAMPLES = 2;
/** The Square probe: 1000 queries break most of what Square can break at MNIST/CIFAR sizes, at a tenth of AutoAttack's cost. */
const SQUARE_QUERIES = 1000;
const SQUARE_MAX_IMAGES = 100;
/**
 * more-steps: 4x the steps and 2 extra restarts should change little once the
 * attack has converged; a drop of more than 3 points (and 2 examples, beyond
 * one-image noise) says the headline overestimates robustness.
 */
const MORE_STEPS_FACTOR = 4;
const MORE_RESTARTS = 2;
const MORE_STEPS_MAX_DROP = 0.03;
const MORE_STEPS_MIN_EXAMPLES = 2;
/** Attack parameters that count effort (multiplied by MORE_STEPS_FACTOR). */
const EFFORT_PARAMS = ['steps', 'iterations', 'queries', 'maxQueries'];
/**
 * gradients: the margin z_y - max z_j is linear in the logits, so its input
 * gradient is zero only where the network's is (ReLU networks: a dead input
 * region, or a non-differentiable step such as rounding). A few such images
 * happen (5%); more mean shattered gradients. Softmax cross-entropy can also
 * saturate in float32 on very confident images (p_y rounds to 1), so its zero
 * fraction warns only past half the sample; the trained small-cnn on MNIST
 * gives 0 of 100 (its smallest CE gradient is ~1e-8, not 0).
 */
const MARGIN_ZERO_MAX = 0.05;
const CE_ZERO_MAX = 0.5;
/** Images per forward or backward pass of the checks' own computations; also the attacks' batch, so a pool gets several batches of a 100-image sample. */
const BATCH = 32;

const TITLES = {
  'monotone-in-eps': 'Robust accuracy does not rise with eps',
  'unbounded-attack': 'An unbounded attack breaks every image',
  'black-box-vs-white-box': 'A black-box attack finds no more than the white-box ones',
  'more-steps': 'More steps and restarts do not lower robust accuracy',
  gradients: 'Input gradients are non-zero and finite',
  randomized: 'Logits are deterministic',
} as const;

/** Identifier of a sanity check. */
export type SanityCheckId = keyof typeof TITLES;

/** The check identifiers, in the order {@link runSanityChecks} runs them. */
export const SANITY_CHECK_IDS = Object.keys(TITLES) as SanityCheckId[];

/**
 * Runs every sanity check, in {@link SANITY_CHECK_IDS} order. Checks that do
 * not apply are returned as `skipped` with the reason. The gradients and
 * queries they spend are counted on the classifier.
 *
 * @throws InputError on a bad sample, eps, seed, sweep, survivor index or reference attack.
 */
export async function runSanityChecks(input: SanityInput): Promise<SanityCheck[]> {
  validateSanityInput(input);
  const steps: [SanityCheckId, () => SanityCheck | Promise<SanityCheck>][] = [
    ['monotone-in-eps', () => checkMonotoneInEps(input.sweep)],
    ['unbounded-attack', () => checkUnboundedAttack(input)],
    ['black-box-vs-white-box', () => checkBlackBoxVsWhiteBox(input)],
    ['more-steps', () => checkMoreSteps(input)],
    ['gradients', () => checkGradients(input)],
    ['randomized', () => checkRandomized(input)],
  ];
  const checks: SanityCheck[] = [];
  for (const [id, run] of steps) {
    input.onProgress?.({ check: id });
    checks.push(await run());
  }
  return checks;
}

/** `warn` if any check warns, else `pass` (skipped checks do not count). */
export function overallVerdict(checks: SanityCheck[]): 'pass' | 'warn' {
  return checks.some((c) => c.verdict === 'warn') ? 'warn' : 'pass';
}

/**
 * `monotone-in-eps`: robust accuracy must not rise with eps by more than
 * max(1 example, 0.5%) over its minimum at any smaller eps. Skipped without a
 * sweep of at least 2 eps.
 */
export function checkMonotoneInEps(sweep: SanityInput['sweep']): SanityCheck {
  const id = 'monotone-in-eps';
  if (!sweep || sweep.eps.length < 2) return skipped(id, `needs a sweep over at least 2 eps, got ${sweep?.eps.length ?? 0}`);
  validateSweep(sweep);
  const order = sweep.eps.map((_, i) => i).sort((a, b) => sweep.eps[a] - sweep.eps[b]);
  const slack = Math.max(MONOTONE_SLACK_EXAMPLES, MONOTONE_SLACK_FRACTION * sweep.count);
  let lowest = sweep.robustAccuracy[order[0]];
  let worst = { rise: 0, from: sweep.eps[order[0]], to: sweep.eps[order[0]] };
  let lowestAt = sweep.eps[order[0]];
  for (const i of order.slice(1)) {
    const rise = sweep.robustAccuracy[i] - lowest;
    if (rise > worst.rise) worst = { rise, from: lowestAt, to: sweep.eps[i] };
    if (sweep.robustAccuracy[i] < lowest) {
      lowest = sweep.robustAccuracy[i];
      lowestAt = sweep.eps[i];
    }
  }
  // Compared in examples, so a rise of exactly one example is not lost to float rounding of the fractions.
  const riseExamples = worst.rise * sweep.count;
  const warn = riseExamples > slack + 1e-6;
  const figures = { eps: order.map((i) => sweep.eps[i]), robustAccuracy: order.map((i) => sweep.robustAccuracy[i]), count: sweep.count, largestRise: worst.rise, largestRiseExamples: Math.round(riseExamples), toleranceExamples: slack };
  const message = warn
    ? `Robust accuracy rises by ${pct(worst.rise)} (${Math.round(riseExamples)} examples) from eps ${worst.from} to eps ${worst.to}, which a working attack cannot give: the attack is failing at the larger eps (masked gradients or a bad step size).`
    : `Robust accuracy does not rise with eps beyond ${fmt(slack)} example(s) of attack noise.`;
  return { id, title: TITLES[id], verdict: warn ? 'warn' : 'pass', message, figures };
}

/**
 * `unbounded-attack`: the reference attack with an eps covering the whole
 * input range (linf: the range; l2: range * sqrt(h*w*c)) on the correctly
 * classified sample images must break at least 99% of them.
 */
export async function checkUnboundedAttack(input: SanityInput): Promise<SanityCheck> {
  const id = 'unbounded-attack';
  validateSample(input);
  const { attack, params } = reference(input);
  const cannot = cannotRun(attack, input);
  if (cannot) return skipped(id, cannot);
  const correct = await correctIndices(input.classifier, input.sample);
  if (!correct.length) return skipped(id, 'no sample image is classified correctly');
  const eps = inputDiameter(input.norm, input.classifier);
  const r = await attackOn(input, attack, subset(input.sample, correct), { eps, params, seed: deriveSeed(input.seed, 'sanity:unbounded-attack') });
  const broken = count(r.success);
  // The attack's own clean pass decides what it attacked (it may differ from ours on a randomized model).
  const attacked = correctCount(r);
  const successRate = attacked ? broken / attacked : 0;
  const warn = successRate < UNBOUNDED_MIN_SUCCESS;
  const figures = { eps, attacked, broken, successRate, threshold: UNBOUNDED_MIN_SUCCESS, attack: attack.name };
  const message = warn
    ? `${attack.name} with eps ${fmt(eps)} (the whole input range) broke only ${broken} of ${attacked} images (${pct(successRate)}): the attack is not working on this model (masked gradients?), so its robust accuracy means little.`
    : `${attack.name} with eps ${fmt(eps)} (the whole input range) broke ${broken} of ${attacked} images (${pct(successRate)}).`;
  return { id, title: TITLES[id], verdict: warn ? 'warn' : 'pass', message, figures };
}

/**
 * `black-box-vs-white-box`: the suite's black-box stages (or, without them, a
 * 1000-query Square probe on up to 100 white-box survivors) must break no more
 * than 1% of the images, or fewer than 2.
 */
export async function checkBlackBoxVsWhiteBox(input: SanityInput): Promise<SanityCheck> {
  const id = 'black-box-vs-white-box';
  if (input.blackBox) {
    const { broken, count: n, whiteBoxRobust } = input.blackBox;
    if (!Number.isInteger(broken) || !Number.isInteger(n) || broken < 0 || n < 1 || broken > n) throw new InputError('blackBox', `expected 0 <= broken <= count with count >= 1, got broken ${broken}, count ${n}`);
    return blackBoxVerdict(broken, n, { source: 'suite', count: n, broken, whiteBoxRobust });
  }
  const survivors = input.whiteBoxSurvivors;
  if (!survivors || survivors.length === 0) return skipped(id, survivors ? 'no image survived the white-box stages' : 'the suite had no black-box stage and no white-box survivors were given');
  validateSample(input);
  validateSurvivors(survivors, input.sample.count);
  const square = findAttack('square')!;
  if (!square.norms.includes(input.norm)) return skipped(id, `the Square probe does not support ${input.norm}`);
  const probed = Array.from(survivors.subarray(0, SQUARE_MAX_IMAGES));
  // The paper's initial square sizes: 0.8 of the pixels for linf, 0.1 for l2.
  const params = { queries: SQUARE_QUERIES, pInit: input.norm === 'l2' ? 0.1 : 0.8 };
  const r = await attackOn(input, square, subset(input.sample, probed), { eps: input.eps, params, seed: deriveSeed(input.seed, 'sanity:square') });
  const broken = count(r.success);
  return blackBoxVerdict(broken, input.sample.count, { source: 'square', count: input.sample.count, broken, whiteBoxRobust: survivors.length, probed: probed.length, queries: SQUARE_QUERIES });
}

function blackBoxVerdict(broken: number, n: number, figures: SanityCheck['figures']): SanityCheck {
  const id = 'black-box-vs-white-box';
  const fraction = broken / n;
  const warn = fraction > BLACK_BOX_MAX_FRACTION && broken >= BLACK_BOX_MIN_EXAMPLES;
  const who = figures.source === 'suite' ? "The suite's black-box stages" : `Square (${SQUARE_QUERIES} queries)`;
  const message = warn
    ? `${who} broke ${broken} of ${n} images (${pct(fraction)}) that survived the white-box attacks: the gradients mislead the white-box attacks (gradient masking), so trust the black-box figure, not the white-box one.`
    : `${who} broke ${broken} of ${n} images (${pct(fraction)}) beyond the white-box attacks.`;
  return { id, title: TITLES[id], verdict: warn ? 'warn' : 'pass', message, figures: { ...figures, fraction, threshold: BLACK_BOX_MAX_FRACTION } };
}

/**
 * `more-steps`: the reference attack at eps on the sample, then the same
 * attack with 4x its steps (or iterations, queries) and 2 extra restarts on
 * the images it left robust; what the longer one breaks there (the drop in
 * robust accuracy) must stay within 3 points and 2 examples.
 */
export async function checkMoreSteps(input: SanityInput): Promise<SanityCheck> {
  const id = 'more-steps';
  validateSample(input);
  const { attack, params } = reference(input);
  const cannot = cannotRun(attack, input);
  if (cannot) return skipped(id, cannot);
  const longer = moreEffort(attack, params);
  if (!longer) return skipped(id, `${attack.name} has no steps, iterations, queries or restarts to raise`);
  // The same seed for both: the longer run differs by its effort only.
  const seed = deriveSeed(input.seed, 'sanity:more-steps');
  const base = await attackOn(input, attack, input.sample, { eps: input.eps, params, seed });
  // The longer run only where the reference effort left the image robust: what it breaks there is what more effort adds.
  const open: number[] = [];
  for (let i = 0; i < base.count; i++) if (base.cleanPredictions[i] === base.labels[i] && !base.success[i]) open.push(i);
  const more = open.length ? await attackOn(input, attack, subset(input.sample, open), { eps: input.eps, params: longer, seed }) : null;
  const n = input.sample.count;
  const robustBase = open.length;
  const dropExamples = more ? count(more.success) : 0;
  const robustMore = robustBase - dropExamples;
  const drop = dropExamples / n;
  const warn = drop > MORE_STEPS_MAX_DROP && dropExamples >= MORE_STEPS_MIN_EXAMPLES;
  const figures = { count: n, robustAccuracy: robustBase / n, robustAccuracyLonger: robustMore / n, drop, dropExamples, threshold: MORE_STEPS_MAX_DROP, params: JSON.stringify(base.params), paramsLonger: JSON.stringify(longer) };
  const message = warn
    ? `With ${MORE_STEPS_FACTOR}x the steps and ${MORE_RESTARTS} more restarts ${attack.name} lowers robust accuracy by ${pct(drop)} (${dropExamples} examples, ${pct(robustBase / n)} to ${pct(robustMore / n)}): the attack had not converged, so the evaluation overestimates robustness.`
    : `With ${MORE_STEPS_FACTOR}x the steps and ${MORE_RESTARTS} more restarts ${attack.name} gives robust accuracy ${pct(robustMore / n)}, against ${pct(robustBase / n)} with the reference effort.`;
  return { id, title: TITLES[id], verdict: warn ? 'warn' : 'pass', message, figures };
}

/**
 * `gradients`: input gradients at the clean sample images of softmax
 * cross-entropy and of the logit margin z_y - max_{j!=y} z_j. Warns when more
 * than 5% of the margin gradients are all zero, any gradient is non-finite, or
 * more than 50% of the cross-entropy gradients are all zero.
 */
export async function checkGradients(input: SanityInput): Promise<SanityCheck> {
  const id = 'gradients';
  validateSample(input);
  if (!input.classifier.hasGradients) return skipped(id, 'the classifier gives no gradients');
  const { sample } = input;
  const n = sample.count;
  const ce = await gradientStats(input.classifier, sample, (z, y) => crossEntropy(z, y));
  const mg = await gradientStats(input.classifier, sample, (z, y) => margin(z, y));
  const nonFinite = ce.nonFinite + mg.nonFinite;
  const ceZeroFraction = ce.zero / n;
  const marginZeroFraction = mg.zero / n;
  const warn = nonFinite > 0 || marginZeroFraction > MARGIN_ZERO_MAX || ceZeroFraction > CE_ZERO_MAX;
  const figures = {
    count: n,
    marginZeroFraction,
    ceZeroFraction,
    nonFinite: nonFinite > 0,
    nonFiniteExamples: Math.max(ce.nonFinite, mg.nonFinite),
    marginMedianMaxAbs: medianOf(mg.maxAbs),
    ceMedianMaxAbs: medianOf(ce.maxAbs),
    marginThreshold: MARGIN_ZERO_MAX,
    ceThreshold: CE_ZERO_MAX,
  };
  let message: string;
  if (nonFinite > 0) message = `The input gradient is non-finite (NaN or infinite) for ${figures.nonFiniteExamples} of ${n} images: gradient attacks get no direction there (exploding gradients), so their robust accuracy is not to be trusted.`;
  else if (marginZeroFraction > MARGIN_ZERO_MAX) message = `The logit-margin gradient is exactly zero for ${mg.zero} of ${n} images (${pct(marginZeroFraction)}): shattered gradients (e.g. quantization or a non-differentiable step), so attack through a differentiable approximation (BPDA) or use black-box attacks.`;
  else if (ceZeroFraction > CE_ZERO_MAX) message = `The cross-entropy gradient is exactly zero for ${ce.zero} of ${n} images (${pct(ceZeroFraction)}; the margin's is not): the softmax saturates, so attack with a margin or DLR loss instead of cross-entropy.`;
  else message = `Input gradients are finite; the margin gradient is zero for ${pct(marginZeroFraction)} of ${n} images, the cross-entropy gradient for ${pct(ceZeroFraction)}.`;
  return { id, title: TITLES[id], verdict: warn ? 'warn' : 'pass', message, figures };
}

/** `randomized`: the sample's logits computed twice must be identical; otherwise the defense is randomized and needs Expectation over Transformation (Athalye et al. 2018). */
export async function checkRandomized(input: SanityInput): Promise<SanityCheck> {
  const id = 'randomized';
  validateSample(input);
  const first = await allLogits(input.classifier, input.sample);
  const second = await allLogits(input.classifier, input.sample);
  const k = input.classifier.numClasses;
  const n = input.sample.count;
  let differing = 0;
  let maxAbsDifference = 0;
  for (let i = 0; i < n; i++) {
    let differs = false;
    for (let j = i * k; j < (i + 1) * k; j++) {
      const a = first[j];
      const b = second[j];
      if (a === b || (Number.isNaN(a) && Number.isNaN(b))) continue;
      differs = true;
      const d = Math.abs(a - b);
      if (d > maxAbsDifference || Number.isNaN(d)) maxAbsDifference = d;
    }
    if (differs) differing++;
  }
  const warn = differing > 0;
  const figures = { count: n, differingExamples: differing, maxAbsDifference: Number.isFinite(maxAbsDifference) ? maxAbsDifference : null };
  const message = warn
    ? `The logits of ${differing} of ${n} images changed between two identical forward passes (by up to ${fmt(maxAbsDifference)}): the model is randomized, so evaluate it with Expectation over Transformation (EOT), averaging gradients over its randomness.`
    : `Two forward passes over ${n} images gave identical logits.`;
  return { id, title: TITLES[id], verdict: warn ? 'warn' : 'pass', message, figures };
}

// ---- Helpers ----

function skipped(id: SanityCheckId, reason: string): SanityCheck {
  return { id, title: TITLES[id], verdict: 'skipped', message: `Skipped: ${reason}.`, figures: {} };
}

/** Everything checked before any work, so a bad argument fails fast rather than after minutes of attacks. */
function validateSanityInput(input: SanityInput): void {
  validateSample(input);
  validateEps(input.eps, input.norm, input.classifier, true);
  if (!Number.isInteger(input.seed) || input.seed < 0) throw new InputError('seed', `expected a non-negative integer, got ${input.seed}`);
  if (input.sweep) validateSweep(input.sweep);
  if (input.whiteBoxSurvivors) validateSurvivors(input.whiteBoxSurvivors, input.sample.count);
  reference(input);
}

function validateSample(input: SanityInput): void {
  validateInput(input.classifier, input.sample);
}

function validateSweep(sweep: NonNullable<SanityInput['sweep']>): void {
  if (sweep.eps.length !== sweep.robustAccuracy.length) throw new InputError('sweep', `expected one robust accuracy per eps, got ${sweep.robustAccuracy.length} for ${sweep.eps.length} eps`);
  if (!Number.isInteger(sweep.count) || sweep.count < 1) throw new InputError('sweep', `expected a positive integer count, got ${sweep.count}`);
  if ([...sweep.eps, ...sweep.robustAccuracy].some((v) => !Number.isFinite(v))) throw new InputError('sweep', 'expected finite eps and robust accuracies');
}

function validateSurvivors(survivors: Int32Array, n: number): void {
  for (const i of survivors) if (i < 0 || i >= n) throw new InputError('whiteBoxSurvivors', `index ${i} is outside the sample [0, ${n - 1}]`);
}

/** The reference attack and its full parameters (defaults filled in and checked). */
function reference(input: SanityInput): { attack: Attack; params: Record<string, unknown> } {
  const attack = findAttack(input.reference.attack);
  if (!attack) throw new InputError('reference', `unknown attack "${input.reference.attack}"`);
  return { attack, params: resolveParams(attack, input.reference.params) };
}

/** Why the reference attack cannot run on this input, or null. */
function cannotRun(attack: Attack, input: SanityInput): string | null {
  if (attack.access === 'gradient' && !input.classifier.hasGradients) return `${attack.name} needs gradients and the classifier gives none`;
  if (!attack.norms.includes(input.norm)) return `${attack.name} does not support ${input.norm}`;
  if (attack.targeted === 'targeted') return `${attack.name} is targeted only`;
  return null;
}

/** The reference parameters with MORE_STEPS_FACTOR times the effort and MORE_RESTARTS more restarts, or null if the attack has neither. */
function moreEffort(attack: Attack, params: Record<string, unknown>): Record<string, unknown> | null {
  const names = new Set(attack.params.map((p) => p.name));
  const out = { ...params };
  let changed = false;
  for (const name of EFFORT_PARAMS) {
    if (names.has(name) && typeof params[name] === 'number') {
      out[name] = (params[name] as number) * MORE_STEPS_FACTOR;
      changed = true;
    }
  }
  if (names.has('restarts') && typeof params.restarts === 'number') {
    out.restarts = params.restarts + MORE_RESTARTS;
    changed = true;
  }
  return changed ? out : null;
}

/** The largest distance between two inputs in the classifier's bounds: an eps that covers the whole input range. */
function inputDiameter(norm: Norm, classifier: Classifier): number {
  const range = classifier.bounds[1] - classifier.bounds[0];
  const d = classifier.inputShape.reduce((a, b) => a * b, 1);
  // The same expressions as validateEps, so the budget is exactly its maximum.
  return norm === 'linf' ? range : norm === 'l2' ? range * Math.sqrt(d) : range * d;
}

async function attackOn(input: SanityInput, attack: Attack, images: AttackInput, options: { eps: number; params: Record<string, unknown>; seed: number }): Promise<AttackResult> {
  // The eval may hand over its pool whatever the classifier; runAttack can only use it with a LayersModel.
  const pool = input.pool && input.classifier.rebuildSpec ? input.pool : undefined;
  return runAttack(attack, input.classifier, images, { norm: input.norm, eps: options.eps, params: options.params, seed: options.seed, batchSize: BATCH, ...(pool ? { pool } : {}) });
}

function subset(sample: AttackInput, indices: ArrayLike<number>): AttackInput {
  const size = sample.imageShape[0] * sample.imageShape[1] * sample.imageShape[2];
  const images = new Float32Array(indices.length * size);
  const labels = new Int32Array(indices.length);
  for (let k = 0; k < indices.length; k++) {
    const i = indices[k];
    images.set(sample.images.subarray(i * size, (i + 1) * size), k * size);
    labels[k] = sample.labels[i];
  }
  return { images, labels, count: indices.length, imageShape: sample.imageShape };
}

/**
 * For each batch of the sample: `compute` makes a tensor of the batch's images
 * and labels inside tf.tidy (which frees the rest); its values are read after
 * the tidy (awaited) and handed to `use` with the batch's offset and size.
 */
async function forBatches(
  sample: AttackInput,
  compute: (x: tf.Tensor4D, labels: tf.Tensor1D) => tf.Tensor,
  use: (values: tf.TypedArray, start: number, count: number) => void,
): Promise<void> {
  const size = sample.imageShape[0] * sample.imageShape[1] * sample.imageShape[2];
  for (let start = 0; start < sample.count; start += BATCH) {
    const end = Math.min(sample.count, start + BATCH);
    const result = tf.tidy(() => {
      const x = tf.tensor4d(sample.images.subarray(start * size, end * size), [end - start, ...sample.imageShape]);
      const labels = tf.tensor1d(sample.labels.subarray(start, end), 'int32');
      return compute(x, labels);
    });
    use(await readOne(result), start, end - start);
  }
}

/** Logits of every sample image, row-major [count, classes]. */
async function allLogits(classifier: Classifier, sample: AttackInput): Promise<Float32Array> {
  const out = new Float32Array(sample.count * classifier.numClasses);
  await forBatches(
    sample,
    (x) => classifier.logits(x),
    (values, start) => out.set(values as Float32Array, start * classifier.numClasses),
  );
  return out;
}

async function correctIndices(classifier: Classifier, sample: AttackInput): Promise<number[]> {
  const logits = await allLogits(classifier, sample);
  const k = classifier.numClasses;
  const out: number[] = [];
  for (let i = 0; i < sample.count; i++) {
    let best = 0;
    for (let j = 1; j < k; j++) if (logits[i * k + j] > logits[i * k + best]) best = j;
    if (best === sample.labels[i]) out.push(i);
  }
  return out;
}

/** Per-example facts about the input gradient of `loss`: how many are all zero, how many hold a non-finite value, and each one's largest magnitude. */
async function gradientStats(classifier: Classifier, sample: AttackInput, loss: (logits: tf.Tensor2D, labels: tf.Tensor1D) => tf.Tensor1D): Promise<{ zero: number; nonFinite: number; maxAbs: number[] }> {
  const size = sample.imageShape[0] * sample.imageShape[1] * sample.imageShape[2];
  let zero = 0;
  let nonFinite = 0;
  const maxAbs: number[] = [];
  await forBatches(
    sample,
    (x, labels) => classifier.valueAndGradient(x, (z) => loss(z, labels)).grad,
    (values, _start, count) => {
      const g = values as Float32Array;
      for (let i = 0; i < count; i++) {
        let largest = 0;
        let finite = true;
        for (let j = i * size; j < (i + 1) * size; j++) {
          const v = g[j];
          if (!Number.isFinite(v)) finite = false;
          else if (Math.abs(v) > largest) largest = Math.abs(v);
        }
        if (!finite) nonFinite++;
        else if (largest === 0) zero++;
        maxAbs.push(largest);
      }
    },
  );
  return { zero, nonFinite, maxAbs };
}

function correctCount(r: AttackResult): number {
  let c = 0;
  for (let i = 0; i < r.count; i++) if (r.cleanPredictions[i] === r.labels[i]) c++;
  return c;
}

function count(flags: Uint8Array): number {
  let c = 0;
  for (const f of flags) c += f;
  return c;
}

function medianOf(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function pct(fraction: number): string {
  return `${(100 * fraction).toFixed(1)}%`;
}

function fmt(v: number): string {
  return Number.isInteger(v) ? String(v) : v.toPrecision(3);
}
