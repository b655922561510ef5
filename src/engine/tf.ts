/**
 * The one place advlab imports TensorFlow.js from. Everything else imports `tf`
 * from here, so core, layers and the converter always share one engine instance.
 * `tfc` (tfjs-converter) runs graph models: TensorFlow SavedModels, Keras models
 * and frozen graphs converted with `tensorflowjs_converter`.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import * as tfl from '@tensorflow/tfjs-layers';
import * as tfc from '@tensorflow/tfjs-converter';
import { registerMissingGradients } from './gradients.js';

// Chained ops (x.argMax(1), x.sum()): tfjs-core's Node build registers them, its
// ES module build (what bundlers load for a page) leaves them to @tensorflow/tfjs.
// Registered here where missing, so the core behaves alike on every platform.
if (typeof (tf.Tensor.prototype as { argMax?: unknown }).argMax !== 'function') {
  await import('@tensorflow/tfjs-core/dist/public/chained_ops/register_all_chained_ops.js');
}

registerMissingGradients();

export { tf, tfl, tfc };
