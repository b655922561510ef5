import type { Attack } from './types.js';
import { gradientAscent } from './gradient-ascent.js';

/**
 * PGD: projected gradient ascent on the cross-entropy from a random start inside
 * the eps-ball, with restarts. Madry et al., "Towards Deep Learning Models
 * Resistant to Adversarial Attacks", ICLR 2018. L1 uses sparse steps (Tramer &
 * Boneh 2019) and the Duchi et al. 2008 projection.
 *
 * Distance: linf, l2, l1. Parameters: steps (40), stepSize (0.01, input scale),
 * randomStart (true), restarts (0). Usage:
 * `runAttack(pgd, classifier, data, { eps: 0.3, params: { steps: 40, stepSize: 0.01 } })`.
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
    { name: 'stepSize', type: 'number', default: 0.01, min: 0, description: 'step length in the norm of the attack, input scale' },
    { name: 'randomStart', type: 'boolean', default: true, description: 'start from a uniform point in the eps-ball' },
    { name: 'restarts', type: 'integer', default: 0, min: 0, description: 'extra runs from new random starts for examples not yet broken' },
  ],
  attackBatch: (ctx, p) => gradientAscent(ctx, { ...p, momentum: 0 }),
};
