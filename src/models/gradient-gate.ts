/**
 * A layer that passes a preprocessed image forward and chooses what flows
 * back: how an input-purifying defense looks to a gradient attack.
 *
 * `GradientGate` takes `[x, purified]` and outputs `purified`. Its backward pass:
 * - `block`: no gradient to either input, as when the purifier runs outside
 *   the attacker's autodiff graph (a separate step, a non-differentiable op).
 *   White-box attacks then see zero gradients: gradient masking.
 * - `identity`: the gradient reaching `purified` goes to `x` unchanged, the
 *   Backward Pass Differentiable Approximation with g(x) ≈ x (Athalye,
 *   Carlini & Wagner 2018, sec. 4.1): attack the classifier at the purified
 *   point, step in the input.
 *
 * Registered for serialization so a model holding it rebuilds in worker threads.
 */
import { tf, tfl } from '../engine/tf.js';
import { InputError } from '../errors.js';

/** What the gate sends back: nothing (`block`) or the purified image's gradient to the input (`identity`, BPDA). */
export const GATE_MODES = ['block', 'identity'] as const;
export type GateMode = (typeof GATE_MODES)[number];

/** See the module comment. */
export class GradientGate extends tfl.layers.Layer {
  static readonly className = 'AdvlabGradientGate';
  readonly mode: GateMode;

  constructor(config: { mode: GateMode; name?: string }) {
    super({ name: config.name });
    if (!(GATE_MODES as readonly string[]).includes(config.mode)) throw new InputError('mode', `expected ${GATE_MODES.join(' or ')}, got ${String(config.mode)}`);
    this.mode = config.mode;
  }

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape | tfl.Shape[] {
    return (inputShape as tfl.Shape[])[1];
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    const [x, purified] = inputs as tf.Tensor[];
    const identity = this.mode === 'identity';
    const gate = tf.customGrad(((a: tf.Tensor, b: tf.Tensor) => ({
      // A copy: customGrad's output must be a new tensor.
      value: tf.clone(b),
      gradFunc: (dy: tf.Tensor) => [identity ? tf.clone(dy) : tf.zerosLike(a), tf.zerosLike(b)],
    })) as unknown as Parameters<typeof tf.customGrad>[0]);
    return gate(x, purified);
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), mode: this.mode };
  }
}
tf.serialization.registerClass(GradientGate);
