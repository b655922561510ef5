import type { Attack } from './types.js';
import { fgsm } from './fgsm.js';
import { pgd } from './pgd.js';
import { square } from './square.js';
import { simba } from './simba.js';
import { hopSkipJump } from './hopskipjump.js';

/** Every attack advlab ships, by CLI name. */
export const ATTACKS: readonly Attack[] = [fgsm, pgd, square, simba, hopSkipJump] as readonly Attack[];

/** The attack called `name`, or undefined. */
export function findAttack(name: string): Attack | undefined {
  return ATTACKS.find((a) => a.name === name);
}

export type { Attack, AttackResult, AttackSummary, BatchContext, CommonAttackOptions, Norm, ParamSpec, PerturbationNorms, TargetSpec } from './types.js';
export { runAttack, summarize, type RunAttackOptions } from './run.js';
export { fgsm, pgd, square, simba, hopSkipJump };
