import type { Attack } from './types.js';
import { gradientAscent } from './gradient-ascent.js';

/**
 * FGSM / FGM: one step of size eps along the sign of the loss gradient (L-inf),
 * or the normalized gradient (L2: the "fast gradient method").
 * Goodfellow, Shlens & Szegedy, "Explaining and Harnessing Adversarial Examples", ICLR 2015.
 *
 * Distance: linf, l2. Targeted: steps toward the target's cross-entropy.
 * Usage: `runAttack(fgsm, classifier, data, { eps: 0.3 })`.
 */
export const fgsm: Attack = {
  name: 'fgsm',
  title: 'Fast Gradient Sign Method (L2: Fast Gradient Method)',
  paper: 'Goodfellow et al., ICLR 2015',
  kind: 'fixed-budget',
  access: 'gradient',
  norms: ['linf', 'l2'],
  targeted: 'both',
  params: [],
  attackBatch: (ctx) => gradientAscent(ctx, { steps: 1, stepSize: ctx.eps, randomStart: false, runs: 1, momentum: 0 }),
};
