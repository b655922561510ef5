import type { Attack } from './types.js';
import { fgsm } from './fgsm.js';
import { pgd } from './pgd.js';
import { bim } from './bim.js';
import { mifgsm } from './mifgsm.js';
import { apgd } from './apgd.js';
import { deepfool } from './deepfool.js';
import { cw } from './cw.js';
import { fab } from './fab.js';
import { square } from './square.js';
import { simba } from './simba.js';
import { hopSkipJump } from './hopskipjump.js';

/** Every attack advlab ships, by CLI name. */
export const ATTACKS: readonly Attack[] = [fgsm, bim, pgd, mifgsm, apgd, deepfool, cw, fab, square, simba, hopSkipJump] as readonly Attack[];

/** The attack called `name`, or undefined. */
export function findAttack(name: string): Attack | undefined {
  return ATTACKS.find((a) => a.name === name);
}

export type { Attack, AttackResult, AttackSummary, BatchContext, CommonAttackOptions, Norm, ParamSpec, PerturbationNorms, TargetSpec } from './types.js';
export { runAttack, summarize, type RunAttackOptions } from './run.js';
export { fgsm, bim, pgd, mifgsm, apgd, deepfool, cw, fab, square, simba, hopSkipJump };
