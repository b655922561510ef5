/**
 * The one place advlab imports TensorFlow.js from. Everything else imports `tf`
 * from here, so core and layers always share one engine instance.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import * as tfl from '@tensorflow/tfjs-layers';

export { tf, tfl };
