import type { Classifier } from '../models/classifier.js';
import type { Attack, CommonAttackOptions, Norm, ParamSpec } from './types.js';
import { NORMS } from './types.js';
import { InputError } from '../errors.js';

/** The images an attack runs on: NHWC float32 plus int32 labels. */
export interface AttackInput {
  images: Float32Array;
  labels: Int32Array;
  count: number;
  imageShape: readonly [number, number, number];
}

/**
 * Checks the input at the door (Foolbox's verify_input_bounds, and more): shape
 * against the classifier, labels in range, finite values inside the bounds.
 */
export function validateInput(classifier: Classifier, input: AttackInput): void {
  const [h, w, c] = classifier.inputShape;
  const shape = input.imageShape;
  if (shape.length !== 3 || shape[0] !== h || shape[1] !== w || shape[2] !== c) {
    throw new InputError('images', `expected images of shape [${h}, ${w}, ${c}] (the classifier's input), got [${shape.join(', ')}]`);
  }
  const size = h * w * c;
  if (!Number.isInteger(input.count) || input.count < 1) throw new InputError('images', `expected at least one image, got ${input.count}`);
  if (input.images.length !== input.count * size) {
    throw new InputError('images', `expected ${input.count} x ${size} = ${input.count * size} values, got ${input.images.length}`);
  }
  if (input.labels.length !== input.count) throw new InputError('labels', `expected ${input.count} labels (one per image), got ${input.labels.length}`);
  for (let i = 0; i < input.count; i++) {
    const l = input.labels[i];
    if (!Number.isInteger(l) || l < 0 || l >= classifier.numClasses) {
      throw new InputError('labels', `label ${l} at index ${i} is outside [0, ${classifier.numClasses - 1}]`);
    }
  }
  const [lo, hi] = classifier.bounds;
  for (let i = 0; i < input.images.length; i++) {
    const v = input.images[i];
    if (Number.isNaN(v) || !Number.isFinite(v)) throw new InputError('images', `non-finite value ${v} in image ${Math.floor(i / size)}`);
    if (v < lo || v > hi) {
      throw new InputError('images', `value ${v} in image ${Math.floor(i / size)} is outside the classifier's bounds [${lo}, ${hi}]; normalization belongs inside the classifier (see ClassifierOptions.preprocess)`);
    }
  }
}

/**
 * Checks eps against the norm and the bounds: negative, NaN, or larger than the
 * whole input range in that norm is an error (such a budget makes no sense and
 * usually means the wrong scale, e.g. 8 instead of 8/255).
 */
export function validateEps(eps: number, norm: Norm, classifier: Classifier, required: boolean): void {
  if (!NORMS.includes(norm)) throw new InputError('norm', `unknown norm "${norm}"; expected one of ${NORMS.join(', ')}`);
  if (eps === undefined || eps === null) {
    if (required) throw new InputError('eps', 'this attack needs a budget eps');
    return;
  }
  const range = classifier.bounds[1] - classifier.bounds[0];
  const d = classifier.inputShape.reduce((a, b) => a * b, 1);
  const max = norm === 'linf' ? range : norm === 'l2' ? range * Math.sqrt(d) : range * d;
  checkEpsValue(eps);
  if (eps > max) throw new InputError('eps', `${eps} exceeds the largest ${norm} distance between two inputs in bounds [${classifier.bounds.join(', ')}] (${max}); is it in the input's scale?`);
}

/** The checks on eps that need no classifier: a number, not NaN, not negative. */
export function checkEpsValue(eps: number): void {
  if (typeof eps !== 'number' || Number.isNaN(eps)) throw new InputError('eps', `expected a number, got ${eps}`);
  if (eps < 0) throw new InputError('eps', `must be >= 0, got ${eps}`);
}

/** Fills defaults from the attack's parameter specs and checks each value's type and range. */
export function resolveParams(attack: Attack, given: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const known = new Set(attack.params.map((p) => p.name));
  for (const key of Object.keys(given)) {
    if (!known.has(key) && given[key] !== undefined) {
      throw new InputError(key, `not a parameter of ${attack.name}; it takes ${attack.params.map((p) => p.name).join(', ') || 'no parameters'}`);
    }
  }
  for (const p of attack.params) out[p.name] = checkParam(p, given[p.name] ?? p.default);
  return out;
}

function checkParam(p: ParamSpec, v: unknown): unknown {
  const bad = (what: string) => new InputError(p.name, `${what}, got ${JSON.stringify(v)}`);
  if (p.type === 'boolean') {
    if (typeof v !== 'boolean') throw bad('expected true or false');
    return v;
  }
  if (p.type === 'string') {
    if (typeof v !== 'string' || (p.choices && !p.choices.includes(v))) throw bad(`expected one of ${p.choices?.join(', ') ?? 'a string'}`);
    return v;
  }
  if (typeof v !== 'number' || !Number.isFinite(v)) throw bad('expected a finite number');
  if (p.type === 'integer' && !Number.isInteger(v)) throw bad('expected an integer');
  // restarts counts runs, as n_restarts does in AutoAttack and torchattacks: 0 is a port of the old "extra runs" meaning.
  if (p.min !== undefined && v < p.min) throw bad(`must be >= ${p.min}${p.name === 'restarts' ? ' (restarts is the total number of runs, as n_restarts in AutoAttack and torchattacks)' : ''}`);
  if (p.max !== undefined && v > p.max) throw bad(`must be <= ${p.max}`);
  return v;
}

/** Common options checks. */
export function validateCommon(o: CommonAttackOptions): void {
  if (o.batchSize !== undefined && (!Number.isInteger(o.batchSize) || o.batchSize < 1)) throw new InputError('batchSize', `expected a positive integer, got ${o.batchSize}`);
  if (o.seed !== undefined && (!Number.isInteger(o.seed) || o.seed < 0)) throw new InputError('seed', `expected a non-negative integer, got ${o.seed}`);
}
