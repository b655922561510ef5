import type { Attack } from './types.js';
import { gradientAscent } from './gradient-ascent.js';

/** Parameters of {@link bim}. */
export interface BimParams {
  steps: number;
  stepSize: number;
  [key: string]: unknown;
}

/**
 * BIM / I-FGSM: FGSM applied `steps` times with a small step, each iterate
 * projected onto the eps-ball and clipped to the bounds; no random start (this is
 * what separates it from PGD). Kurakin, Goodfellow & Bengio, "Adversarial examples
 * in the physical world", ICLR 2017 workshop.
 *
 * Distance: linf (sign steps, as in the paper), l2 (normalized-gradient steps).
 * Targeted: steps toward the target's cross-entropy (the paper's "iterative
 * least-likely class" method is `targeted: 'least-likely'`).
 *
 * Parameters: steps (10), stepSize (0 = automatic: 1.25 * eps / steps; any other
 * value is the step length in the norm of the attack, input scale). The automatic
 * step follows the paper, which takes steps of alpha = 1 (of 255) for
 * min(eps + 4, 1.25 * eps) iterations, i.e. a total path of 1.25 * eps for the
 * budgets it studies; here the number of steps is fixed and the step derived.
 * Each example keeps its first iterate that reaches the goal.
 *
 * Usage: `runAttack(bim, classifier, data, { eps: 0.1, params: { steps: 10 } })`.
 */
export const bim: Attack<BimParams> = {
  name: 'bim',
  title: 'Basic Iterative Method (I-FGSM)',
  paper: 'Kurakin et al., ICLR 2017 workshop',
  kind: 'fixed-budget',
  access: 'gradient',
  norms: ['linf', 'l2'],
  targeted: 'both',
  params: [
    { name: 'steps', type: 'integer', default: 10, min: 1, description: 'gradient steps' },
    { name: 'stepSize', type: 'number', default: 0, min: 0, description: 'step length in the norm of the attack, input scale; 0 = 1.25 * eps / steps (Kurakin et al.)' },
  ],
  attackBatch: (ctx, p) =>
    gradientAscent(ctx, { steps: p.steps, stepSize: p.stepSize > 0 ? p.stepSize : (1.25 * ctx.eps) / p.steps, randomStart: false, runs: 1, momentum: 0 }),
};
