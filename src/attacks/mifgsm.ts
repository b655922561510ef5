import type { Attack } from './types.js';
import { gradientAscent } from './gradient-ascent.js';

/** Parameters of {@link mifgsm}. */
export interface MifgsmParams {
  steps: number;
  stepSize: number;
  decay: number;
  [key: string]: unknown;
}

/**
 * MI-FGSM: iterative FGSM with momentum. Each step accumulates the L1-normalized
 * gradient into a velocity, g <- mu * g + grad / ||grad||_1, and moves along the
 * steepest direction of g (sign for linf, g / ||g||_2 for l2), then projects onto
 * the eps-ball and clips to the bounds; no random start. Dong et al., "Boosting
 * Adversarial Attacks with Momentum", CVPR 2018.
 *
 * Distance: linf, l2. Targeted: steps toward the target's cross-entropy.
 *
 * Parameters: steps (10, the paper's T), stepSize (0 = automatic: eps / steps, the
 * paper's alpha = eps / T; any other value is the step length in the norm of the
 * attack, input scale), decay (1.0, the paper's mu; 0 gives BIM). Each example
 * keeps its first iterate that reaches the goal.
 *
 * Usage: `runAttack(mifgsm, classifier, data, { eps: 0.1, params: { decay: 1 } })`.
 */
export const mifgsm: Attack<MifgsmParams> = {
  name: 'mifgsm',
  title: 'Momentum Iterative FGSM',
  paper: 'Dong et al., CVPR 2018',
  kind: 'fixed-budget',
  access: 'gradient',
  norms: ['linf', 'l2'],
  targeted: 'both',
  params: [
    { name: 'steps', type: 'integer', default: 10, min: 1, description: 'gradient steps (T)' },
    { name: 'stepSize', type: 'number', default: 0, min: 0, description: 'step length in the norm of the attack, input scale; 0 = eps / steps' },
    { name: 'decay', type: 'number', default: 1, min: 0, description: 'momentum decay factor mu' },
  ],
  attackBatch: (ctx, p) =>
    gradientAscent(ctx, { steps: p.steps, stepSize: p.stepSize > 0 ? p.stepSize : ctx.eps / p.steps, randomStart: false, runs: 1, momentum: p.decay }),
};
