import type { Attack } from './types.js';
import { gradientAscent } from './gradient-ascent.js';

/**
 * PGD: projected gradient ascent on the cross-entropy from a random start inside
 * the eps-ball, with restarts. Madry et al., "Towards Deep Learning Models
 * Resistant to Adversarial Attacks", ICLR 2018. L1 uses sparse steps (Tramer &
 * Boneh 2019) and the Duchi et al. 2008 projection.
 *
 * Distance: linf, l2, l1. Parameters: steps (40), stepSize (0 = automatic:
 * 2.5 * eps / steps, Madry et al.'s choice, so the default follows the budget;
 * any other value is the step length in the norm of the attack, input scale),
 * randomStart (true), restarts (1: the total number of runs, as torchattacks'
 * and AutoAttack's n_restarts). Usage:
 * `runAttack(pgd, classifier, data, { eps: 0.3, params: { steps: 40 } })`.
 */
export const pgd: Attack<{ steps: number; stepSize: number; randomStart: boolean; restarts: number }> = {
  name: 'pgd',
  title: 'Projected Gradient Descent',
  paper: 'Madry et al., ICLR 2018',
  kind: 'fixed-budget',
  access: 'gradient',
  norms: ['linf', 'l2', 'l1'],
  targeted: 'both',
  params: [
    { name: 'steps', type: 'integer', default: 40, min: 1, description: 'gradient steps per run' },
    { name: 'stepSize', type: 'number', default: 0, min: 0, description: 'step length in the norm of the attack, input scale; 0 = 2.5 * eps / steps (Madry et al.)' },
    { name: 'randomStart', type: 'boolean', default: true, description: 'start from a uniform point in the eps-ball' },
    { name: 'restarts', type: 'integer', default: 1, min: 1, description: "total runs, each from a new random start for the examples not yet broken (torchattacks' n_restarts)" },
  ],
  attackBatch: (ctx, p) =>
    gradientAscent(ctx, { steps: p.steps, stepSize: p.stepSize > 0 ? p.stepSize : (2.5 * ctx.eps) / p.steps, randomStart: p.randomStart, runs: p.restarts, momentum: 0 }),
};
