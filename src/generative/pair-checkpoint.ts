/**
 * Checkpoints of two networks trained against each other (a GAN's or
 * AdvGAN's generator and discriminator): both networks' weights, both Adam
 * states, the run's Rng and history and the topology they were written for.
 * The trainer adds what is its own (a weight average) as extra state and files.
 */
import type { tf, tfl } from '../engine/tf.js';
import type { CheckpointStore, LoadedCheckpoint } from '../models/checkpoint.js';
import type { TensorSpec } from '../engine/tensor-io.js';
import { packModelWeights, packOptimizer, restoreModelWeights, restoreOptimizer, type OptimizerState } from '../models/train-state.js';
import { InputError } from '../errors.js';
import { Rng } from '../util/rng.js';

/** The two networks and their optimizers. */
export interface NetworkPair {
  generator: tfl.LayersModel;
  discriminator: tfl.LayersModel;
  generatorOptimizer: tf.Optimizer;
  discriminatorOptimizer: tf.Optimizer;
}

/** The state every pair checkpoint holds; `H` is the trainer's epoch record. */
export interface PairCheckpointState<H> {
  epoch: number;
  rngState: number[];
  history: H[];
  generatorSpecs: TensorSpec[];
  discriminatorSpecs: TensorSpec[];
  generatorOptimizer: OptimizerState;
  discriminatorOptimizer: OptimizerState;
  topology: string;
}

/** Saves checkpoint `epoch-<epoch>` of the pair, with the trainer's extra state and files. */
export async function savePairCheckpoint<H, X extends object>(
  store: CheckpointStore,
  pair: NetworkPair,
  common: { rng: Rng; history: H[]; epoch: number; topology: string },
  extra: { state?: X; files?: Record<string, Uint8Array> } = {},
): Promise<void> {
  const g = packModelWeights(pair.generator);
  const d = packModelWeights(pair.discriminator);
  const go = await packOptimizer(pair.generatorOptimizer as tf.AdamOptimizer);
  const dO = await packOptimizer(pair.discriminatorOptimizer as tf.AdamOptimizer);
  const state: PairCheckpointState<H> & X = {
    ...(extra.state as X),
    epoch: common.epoch,
    rngState: common.rng.getState(),
    history: common.history,
    generatorSpecs: g.specs,
    discriminatorSpecs: d.specs,
    generatorOptimizer: go.state,
    discriminatorOptimizer: dO.state,
    topology: common.topology,
  };
  await store.save(`epoch-${common.epoch}`, state, {
    'generator.bin': g.data,
    'discriminator.bin': d.data,
    'generator-optimizer.bin': go.data,
    'discriminator-optimizer.bin': dO.data,
    ...(extra.files ?? {}),
  });
}

/**
 * Restores the pair from a loaded checkpoint (weights and optimizers) and
 * returns the run's Rng, history and epoch.
 *
 * @throws InputError(resume) when the checkpoint was written for other networks.
 */
export async function restorePairCheckpoint<H>(ck: LoadedCheckpoint<PairCheckpointState<H>>, pair: NetworkPair, topology: string, location: string, what: string): Promise<{ rng: Rng; history: H[]; epoch: number }> {
  if (ck.state.topology !== topology) throw new InputError('resume', `the checkpoint in ${location} was written for ${what}; delete it or drop --resume`);
  restoreModelWeights(pair.generator, ck.state.generatorSpecs, ck.read('generator.bin'), ck.name('generator.bin'));
  restoreModelWeights(pair.discriminator, ck.state.discriminatorSpecs, ck.read('discriminator.bin'), ck.name('discriminator.bin'));
  await restoreOptimizer(pair.generatorOptimizer as tf.AdamOptimizer, ck.state.generatorOptimizer, ck.read('generator-optimizer.bin'), ck.name('generator-optimizer.bin'));
  await restoreOptimizer(pair.discriminatorOptimizer as tf.AdamOptimizer, ck.state.discriminatorOptimizer, ck.read('discriminator-optimizer.bin'), ck.name('discriminator-optimizer.bin'));
  return { rng: Rng.fromState(ck.state.rngState), history: ck.state.history, epoch: ck.state.epoch };
}
