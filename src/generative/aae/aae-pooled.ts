/**
 * Data-parallel AAE phases: each phase's batch split over the pool's workers
 * (aae-task.ts), the shards' gradients summed in shard order and applied by
 * the phase's optimizer here, so a run is bit-identical for the same seed and
 * worker count. The nets have no batch norm, so there are no statistics to
 * merge. Each net's weights are published again only after a phase moved
 * them.
 */
import { tf, type tfl } from '../../engine/tf.js';
import { splitRanges, type TaskPool } from '../../engine/task-pool.js';
import { applyGradientSum, worthSharding } from '../../models/data-parallel.js';
import { WeightsChannel, type WeightsRef } from '../../models/published-weights.js';
import type { ShardGradients } from '../../models/train-task.js';
import { AAE_TASK_URL, type AaeShardPhase, type AaeStepPayload } from './aae-task.js';
import type { AaeVariables } from './aae-objectives.js';
import type { AaeModels } from './architectures.js';
import { categoryBalanceLoss, type AaeAdversarialLoss, type ReconstructionLoss } from './losses.js';

/** The optimizer of each phase (those of modes not in use absent). */
export interface AaePhaseOptimizers {
  reconstruction: tf.Optimizer;
  discriminator: tf.Optimizer;
  encoder: tf.Optimizer;
  category?: tf.Optimizer;
  classification?: tf.Optimizer;
}

/** The images of a phase: the batch's (with their classes in the supervised-prior mode) or the labelled batch's. */
export interface PhaseImages {
  x: Float32Array;
  shape: [number, number, number, number];
  labels?: Int32Array;
}

/** Per-image arrays of a payload, each with its values per image; sliced per shard. */
export type PhaseRows = Partial<Record<'zPrior' | 'yPrior' | 'priorNoise' | 'codeNoise' | 'qNoise', [Float32Array, number]> & Record<'classes', [Int32Array, number]>>;

/** Runs AAE phases on a pool. */
export interface PooledPhases {
  /**
   * One phase on the pool, applied: returns the summed figures of each
   * gradient set (one; two for `latent` in the categorical mode: style, then
   * category).
   */
  step(phase: AaeShardPhase, images: PhaseImages, rows: PhaseRows, common?: Pick<AaeStepPayload, 'balance' | 'balanceGradient'>): Promise<{ loss: number; extras: number[] }[]>;
}

/** The phases of `models` on `pool`, stepping the optimizers `opt` on `variables`. */
export function pooledPhases(pool: TaskPool, models: AaeModels, opt: AaePhaseOptimizers, variables: AaeVariables, settings: { reconstructionLoss: ReconstructionLoss; adversarialLoss: AaeAdversarialLoss; components?: number }): PooledPhases {
  const { encoder: E, decoder: G, discriminator: D } = models;
  const C = models.categoryDiscriminator ?? undefined;
  const channels = new Map<tfl.LayersModel, WeightsChannel>();
  const published = new Map<tfl.LayersModel, WeightsRef>();
  const ref = async (net: tfl.LayersModel): Promise<WeightsRef> => {
    let r = published.get(net);
    if (!r) {
      let channel = channels.get(net);
      if (!channel) channels.set(net, (channel = new WeightsChannel()));
      r = await channel.publish(net);
      published.set(net, r);
    }
    return r;
  };
  // What each phase reads, trains (variables with their optimizer) and so moves.
  type Plan = { reads: tfl.LayersModel[]; sets: [tf.Variable[], tf.Optimizer][]; moves: tfl.LayersModel[] };
  const withC = (nets: tfl.LayersModel[]) => (C ? [...nets, C] : nets);
  const plan: Record<AaeShardPhase, () => Plan> = {
    reconstruction: () => ({ reads: [E, G], sets: [[variables.autoencoder, opt.reconstruction]], moves: [E, G] }),
    latent: () => ({ reads: withC([E, D]), sets: [[variables.discriminator, opt.discriminator], ...(C ? [[variables.category, opt.category!] as [tf.Variable[], tf.Optimizer]] : [])], moves: withC([D]) }),
    encoder: () => ({ reads: withC([E, D]), sets: [[variables.encoder, opt.encoder]], moves: [E] }),
    classification: () => ({ reads: [E], sets: [[variables.classifier, opt.classification!]], moves: [E] }),
  };
  return {
    async step(phase, images, rows, common = {}) {
      const { reads, sets, moves } = plan[phase]();
      const refs = new Map<tfl.LayersModel, WeightsRef>();
      for (const net of reads) refs.set(net, await ref(net));
      const [n, h, w, c] = images.shape;
      const size = h * w * c;
      const ranges = splitRanges(n, Math.min(pool.size, n));
      const payloads = ranges.map(([from, to]): AaeStepPayload => {
        const slices: Record<string, Float32Array | Int32Array> = {};
        for (const [name, [values, width]] of Object.entries(rows) as [string, [Float32Array | Int32Array, number]][]) slices[name] = values.slice(from * width, to * width);
        return {
          phase,
          encoder: refs.get(E)!,
          ...(refs.has(G) ? { decoder: refs.get(G)! } : {}),
          ...(refs.has(D) ? { discriminator: refs.get(D)! } : {}),
          ...(C && refs.has(C) ? { category: refs.get(C)! } : {}),
          categories: models.categories,
          x: images.x.slice(from * size, to * size),
          shape: [to - from, h, w, c],
          batchSize: n,
          reconstructionLoss: settings.reconstructionLoss,
          adversarialLoss: settings.adversarialLoss,
          latentDim: models.latentDim,
          ...(images.labels && phase !== 'classification' ? { labels: images.labels.slice(from, to), components: settings.components } : {}),
          ...slices,
          ...common,
        };
      });
      const parts = await pool.run<ShardGradients[], AaeStepPayload>({ module: AAE_TASK_URL, name: 'aaeStepTask' }, payloads, (p) => [p.x.buffer]);
      const figures = sets.map(([vars, optimizer], k) => applyGradientSum(vars, optimizer, parts.map((p) => p[k])));
      for (const net of moves) published.delete(net);
      return figures;
    },
  };
}

/**
 * Whether splitting an AAE's phases over workers pays (`--workers auto`):
 * only for the conv nets. The mlp nets' phases are dense products at batch
 * 50 per worker, which the two workers run no faster side by side than one
 * runs them whole, and each of a batch's four phases exchanges weights and
 * gradients (measured, mnist semi-supervised, batch 100: 0.587 s per batch on
 * one thread against 0.746 s split at width 4; 0.081 against 0.162 at width 1).
 */
export function worthShardingAae(models: AaeModels): boolean {
  return worthSharding([models.encoder, models.decoder]);
}

/**
 * The gradient of {@link categoryBalanceLoss} with respect to the batch's mean
 * q(y | x), at `mean` (K values): what each shard needs to add its exact
 * share of the balance term's gradient (aae-task.ts).
 */
export function balanceGradientAt(mean: number[]): Float32Array {
  return tf.tidy(() => {
    const g = tf.grad((m: tf.Tensor) => categoryBalanceLoss(tf.reshape(m, [1, mean.length])))(tf.tensor1d(mean));
    return g.dataSync() as Float32Array;
  });
}
