/**
 * Attack suites of `advlab eval`.
 *
 * `standard` follows AutoAttack (Croce & Hein, "Reliable evaluation of
 * adversarial robustness with an ensemble of diverse parameter-free attacks",
 * ICML 2020): APGD-CE, APGD-T (targeted DLR loss, top 9 target classes), FAB-T
 * (top 9 target classes), Square (1 + 5,000 queries), each on the points still
 * robust after the previous ones. `fast` reaches the standard suite's verdicts
 * with far fewer gradients (APGD-CE, then APGD-T on the 3 targets MALT ranks
 * nearest) and audits itself against the standard suite (audit.ts). `quick`
 * keeps the two APGDs with fewer steps and target classes, unaudited.
 */
import { findAttack } from '../attacks/index.js';
import type { Norm } from '../attacks/types.js';
import { InputError } from '../errors.js';
import type { Suite, SuiteStage } from './types.js';

/** Stages known by name (each with AutoAttack's standard settings); any registry attack name also works, untargeted with its defaults. */
const NAMED_STAGES: Record<string, SuiteStage> = {
  'apgd-ce': { name: 'apgd-ce', attack: 'apgd', params: { steps: 100, loss: 'ce' }, whiteBox: true },
  'apgd-dlr': { name: 'apgd-dlr', attack: 'apgd', params: { steps: 100, loss: 'dlr' }, whiteBox: true },
  'apgd-t': { name: 'apgd-t', attack: 'apgd', params: { steps: 100, loss: 'dlr' }, targetClasses: 9, whiteBox: true },
  'fab-t': { name: 'fab-t', attack: 'fab', params: { steps: 100 }, targetClasses: 9, whiteBox: true },
  // APGD-T on the targets MALT ranks first (Melamed et al. 2024): the nearest linearized boundaries.
  'apgd-t-malt': { name: 'apgd-t-malt', attack: 'apgd', params: { steps: 100, loss: 'dlr' }, targetClasses: 3, targetOrder: 'malt', whiteBox: true },
  // AutoAttack builds Square with resc_schedule=False: p halves at raw iteration counts.
  square: { name: 'square', attack: 'square', params: { queries: 5000, rescaleSchedule: false }, maxBatch: 32, whiteBox: false },
};

/** Suite names `advlab eval --suite` takes. */
export const SUITE_NAMES = ['standard', 'fast', 'quick'] as const;
export type SuiteName = (typeof SUITE_NAMES)[number];

/** Stage names of a built-in suite. */
const SUITES: Record<SuiteName, (string | SuiteStage)[]> = {
  standard: ['apgd-ce', 'apgd-t', 'fab-t', 'square'],
  fast: ['apgd-ce', 'apgd-t-malt'],
  quick: [
    { ...NAMED_STAGES['apgd-ce'], params: { steps: 50, loss: 'ce' } },
    { ...NAMED_STAGES['apgd-t'], params: { steps: 50, loss: 'dlr' }, targetClasses: 3 },
  ],
};

/**
 * A built-in suite for `norm`, or a custom one from a list of stage names
 * (`apgd-ce`, `apgd-dlr`, `apgd-t`, `apgd-t-malt`, `fab-t`, `square`, or any attack of the
 * registry that supports `norm`). Target classes are capped at numClasses - 1.
 *
 * @throws InputError naming `suite` or `attacks` for unknown names or norms.
 */
export function buildSuite(spec: { suite?: string; attacks?: readonly string[]; norm: Norm; numClasses: number }): Suite {
  const { norm, numClasses } = spec;
  if (norm !== 'linf' && norm !== 'l2') throw new InputError('norm', `evaluation suites run in linf or l2, not ${norm}`);
  let entries: (string | SuiteStage)[];
  let name: string;
  let argument: string;
  if (spec.attacks && spec.attacks.length) {
    entries = [...spec.attacks];
    name = 'custom';
    argument = 'attacks';
  } else {
    const suite = (spec.suite ?? 'standard') as SuiteName;
    if (!SUITE_NAMES.includes(suite)) throw new InputError('suite', `unknown suite "${spec.suite}"; expected ${SUITE_NAMES.join(', ')} (or a list of attacks)`);
    entries = SUITES[suite];
    name = suite;
    argument = 'suite';
  }
  const seen = new Set<string>();
  const stages = entries.map((e) => {
    const stage = typeof e === 'string' ? stageByName(e, argument) : e;
    if (seen.has(stage.name)) throw new InputError(argument, `stage "${stage.name}" is listed twice`);
    seen.add(stage.name);
    const attack = findAttack(stage.attack)!;
    if (!attack.norms.includes(norm)) throw new InputError(argument, `${stage.name} (${attack.name}) does not support ${norm}; it supports ${attack.norms.join(', ')}`);
    const copy: SuiteStage = { ...stage, params: { ...stage.params } };
    if (copy.targetClasses !== undefined) copy.targetClasses = Math.min(copy.targetClasses, numClasses - 1);
    return copy;
  });
  return { name, norm, stages };
}

function stageByName(name: string, argument: string): SuiteStage {
  const named = NAMED_STAGES[name];
  if (named) return { ...named, params: { ...named.params } };
  const attack = findAttack(name);
  if (!attack) throw new InputError(argument, `unknown attack "${name}"; expected ${[...Object.keys(NAMED_STAGES), 'or an attack name (advlab attack --list)'].join(', ')}`);
  if (attack.targeted === 'targeted') throw new InputError(argument, `${name} is targeted only; use a named targeted stage (apgd-t, fab-t)`);
  return { name, attack: name, params: {}, whiteBox: attack.access === 'gradient' };
}

/**
 * The stages of `reference` that `suite` does not run itself: those whose
 * attack, parameters and targets differ from every stage of `suite` of the same
 * name. Running them on a point `suite` left robust gives what `reference`
 * would have added there (same stage names, so the same seeds).
 */
export function remainderOf(reference: Suite, suite: Suite): Suite {
  const key = (s: SuiteStage) => JSON.stringify([s.name, s.attack, s.params, s.targetClasses ?? 0, s.targetOrder ?? 'logits']);
  const ran = new Set(suite.stages.map(key));
  return { name: `${reference.name} remainder`, norm: reference.norm, stages: reference.stages.filter((s) => !ran.has(key(s))) };
}
