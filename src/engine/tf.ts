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

registerMissingGradients();

export { tf, tfl, tfc };
