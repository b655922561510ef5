import { Command, Option } from 'commander';
import { join } from 'node:path';
import { aaeRun, AAE_RUN_DEFAULTS, DEFAULT_CLUSTER_BALANCE, type AaeRunEvent } from '../jobs/aae-run.js';
import { AAE_ARCHS } from '../generative/aae/architectures.js';
import { AAE_OPTIMIZER_DEFAULTS } from '../generative/aae/train-aae.js';
import { PRIORS } from '../generative/aae/priors.js';
import { RECONSTRUCTION_LOSSES } from '../generative/aae/losses.js';
import { BUILTIN_DATASETS } from '../node/data/builtin.js';
import { createProgress } from './progress.js';
import { guardRun } from './failure.js';
import { finiteOption, intOption, pathTag, optionNamed, positiveOption, startBackend, backendOption, resumeOption, workersOption } from './common.js';

/** Argument names of aaeRun's InputErrors → the options that set them. */
const OPTIONS: Record<string, string> = {
  workers: '--workers',
  dataset: '--dataset',
  train: '--dataset',
  imageShape: '--dataset',
  out: '--out',
  arch: '--arch',
  prior: '--prior',
  latentDim: '--latent',
  width: '--width',
  epochs: '--epochs',
  batchSize: '--batch-size',
  learningRate: '--lr',
  adversarialLearningRate: '--adversarial-lr',
  reconstructionLoss: '--recon-loss',
  supervisedPrior: '--supervised-prior',
  trainSize: '--train-n',
  labels: '--labels',
  labelled: '--labels',
  clusters: '--clusters',
  classificationLearningRate: '--classification-lr',
  categoryBalance: '--category-balance',
  categoryNoise: '--category-noise',
  decayEpoch: '--decay-epoch',
  augment: '--augment',
  labelledAugment: '--augment',
  seed: '--seed',
  resume: '--resume',
};

const fixed = (x: number | null, digits = 4) => (x === null ? '—' : x.toFixed(digits));
const percent = (x: number) => `${(100 * x).toFixed(2)}%`;

/**
 * `advlab aae`: trains an adversarial autoencoder (Makhzani et al. 2015), a
 * thin layer over aaeRun. --prior is checked by the library (not by
 * commander's choices) so that a bad prior and a latent size the prior cannot
 * take both come back as one clear line naming the option.
 */
export function aaeCommand(): Command {
  return new Command('aae')
    .description('train an adversarial autoencoder (Makhzani et al. 2015): codes pushed toward a prior by a latent discriminator; per-epoch reconstruction and sample grids, test MSE, codes vs prior, report.html and result.json')
    .option('--dataset <name|path>', `built-in (${BUILTIN_DATASETS.join(', ')}) or a path (IDX, CIFAR-10 binary, NPY, image folder)`, 'mnist')
    .option('--prior <name>', `prior of the codes: ${PRIORS.join(', ')} (mixture: 10 2-D Gaussians on a circle; swiss-roll: 2-D only)`, AAE_RUN_DEFAULTS.prior)
    .option('--latent <n>', 'code size (mixture: >= 2; swiss-roll: 2)', intOption('--latent', 1), AAE_RUN_DEFAULTS.latentDim)
    .addOption(new Option('--arch <name>', 'architecture: mlp (2 hidden layers of 256 units x width), conv (2 strided convolutions each way)').choices(AAE_ARCHS).default(AAE_RUN_DEFAULTS.arch))
    .option('--width <n>', 'width multiplier of every hidden layer (mlp width 4 = the paper\'s 1000-unit layers, roughly)', intOption('--width', 1), 1)
    .option('--out <dir>', 'output folder (default: runs/aae-<prior>-<dataset>)')
    .option('--epochs <n>', 'epochs', intOption('--epochs', 1), AAE_RUN_DEFAULTS.epochs)
    .option('--batch-size <n>', 'batch size', intOption('--batch-size', 1), AAE_RUN_DEFAULTS.batchSize)
    .option('--lr <x>', `Adam learning rate of the reconstruction phase (default ${AAE_OPTIMIZER_DEFAULTS.learningRate})`, positiveOption('--lr'))
    .option('--adversarial-lr <x>', `Adam learning rate of the discriminator and of the encoder's adversarial step (default ${AAE_OPTIMIZER_DEFAULTS.adversarialLearningRate})`, positiveOption('--adversarial-lr'))
    .addOption(new Option('--recon-loss <name>', 'reconstruction loss: bce (on the decoder\'s logits) or mse (on its images)').choices(RECONSTRUCTION_LOSSES).default(AAE_RUN_DEFAULTS.reconstructionLoss))
    .option('--supervised-prior', 'labels choose the prior\'s component (mixture, swiss-roll) and are shown to the discriminator one-hot (the paper\'s Figure 4)', false)
    .option('--no-regularization', 'turn the adversarial regularization off: a plain autoencoder on the same nets (the baseline)')
    .option('--train-n <count>', 'train on a class-balanced subset of this many train-split images (default: all)', intOption('--train-n', 1))
    .option('--labels <count>', 'semi-supervised classification (the paper\'s section 5): label a seeded class-balanced subset of this many training images; the encoder gets a class head q(y|x) with a categorical prior and a gaussian style code; reports the test error', intOption('--labels', 1))
    .option('--clusters <k>', 'unsupervised clustering (the paper\'s section 6): a class head of k >= 2 categories trained without labels; reports the clustering error (majority training label per cluster) and the cluster sizes', intOption('--clusters', 1))
    .option('--augment <spec>', 'with --labels: augmentation of the labelled batches only, as for advlab train: a comma list of shift[:N], noise:SIGMA, cutout:N (default none, the paper\'s setting)')
    .option('--classification-lr <x>', `Adam learning rate of the semi-supervised classification phase (default ${AAE_OPTIMIZER_DEFAULTS.classificationLearningRate}; with --labels)`, positiveOption('--classification-lr'))
    .option('--category-balance <w>', `with --clusters or --labels: weight of the batch-level term KL(mean q(y|x) || uniform) in the encoder's adversarial step, against the collapse onto a few categories (default ${DEFAULT_CLUSTER_BALANCE} with --clusters, 0 with --labels)`, finiteOption('--category-balance'))
    .option('--category-noise <sd>', 'with --clusters or --labels: sd of Gaussian noise on the category discriminator\'s inputs (default 0)', finiteOption('--category-noise'))
    .option('--decay-epoch <n>', 'from this epoch on, cut every Adam rate tenfold (the paper\'s step decay; default: no decay)', intOption('--decay-epoch', 1))
    .option('--seed <n>', 'random seed', intOption('--seed'), AAE_RUN_DEFAULTS.seed)
    .option('--workers <n|auto>', "worker threads: each phase's batch in shards (data-parallel); auto: one per core when the nets are wide enough to pay (--width 4), else one", workersOption, 'auto')
    .addOption(backendOption())
    .addOption(resumeOption())
    .option('--no-progress', 'plain lines instead of a progress bar')
    .action(async (o) => {
      const progress = createProgress(process.stdout, o.progress);
      const backend = await startBackend(o.backend, undefined, (l) => progress.log(l));
      const out: string = o.out ?? join('runs', `aae-${pathTag(String(o.prior), 'prior')}-${pathTag(String(o.dataset), 'data')}`);
      const onProgress = (e: AaeRunEvent) => {
        if (e.type === 'dataset') {
          const d = e.dataset;
          progress.log(`dataset: ${d.name} (${d.train.count} train, ${d.test.count} test, ${d.skipped} malformed records skipped; training on ${e.trainSize}${e.labelled === null ? '' : `, ${e.labelled} of them labelled`})`);
        } else if (e.type === 'resumed') progress.log(`resumed after epoch ${e.epoch}`);
        else if (e.type === 'epoch-start') progress.start(e.batches, `epoch ${e.epoch}/${e.epochs}`);
        else if (e.type === 'batch') progress.update(e.batch, { rec: e.reconstruction.toFixed(4), ...(e.dLoss !== null ? { D: e.dLoss.toFixed(4), E: e.gLoss!.toFixed(4) } : {}), ...(e.classification !== null ? { cls: e.classification.toFixed(4) } : {}) });
        else if (e.type === 'epoch-end') {
          const m = e.monitor ?? {};
          const adversarial = e.dLoss === null ? '' : ` D loss ${fixed(e.dLoss)} E loss ${fixed(e.gLoss)} D(prior) ${fixed(e.dPrior, 3)} D(code) ${fixed(e.dCode, 3)}`;
          const category = e.catDLoss === null ? '' : ` C loss ${fixed(e.catDLoss)} E/C loss ${fixed(e.catGLoss)} C(prior) ${fixed(e.catDPrior, 3)} C(code) ${fixed(e.catDCode, 3)}`;
          const cls = e.classification === null ? '' : ` classification ${fixed(e.classification)}`;
          const test = m.testMse === undefined ? '' : ` | test MSE ${m.testMse.toFixed(4)} MMD² ${m.mmd.toFixed(4)} mean offset ${m.meanError.toFixed(2)} sd |ln var ratio| ${m.logVarianceRatio.toFixed(2)}`;
          const error = m.testError !== undefined ? ` test error ${percent(m.testError)}` : m.clusteringError !== undefined ? ` clustering error ${percent(m.clusteringError)}` : '';
          progress.stop(`epoch ${e.epoch}/${e.epochs}: reconstruction ${e.reconstruction.toFixed(4)}${adversarial}${category}${cls} (${e.seconds.toFixed(1)}s)${test}${error}`);
        }
      };
      const result = await guardRun(out, 'epochs', progress, () => aaeRun(
        {
          dataset: o.dataset,
          out,
          arch: o.arch,
          prior: o.prior,
          latentDim: o.latent,
          width: o.width,
          epochs: o.epochs,
          batchSize: o.batchSize,
          learningRate: o.lr,
          adversarialLearningRate: o.adversarialLr,
          reconstructionLoss: o.reconLoss,
          supervisedPrior: o.supervisedPrior,
          regularization: o.regularization,
          trainSize: o.trainN,
          labels: o.labels,
          clusters: o.clusters,
          classificationLearningRate: o.classificationLr,
          augment: o.augment,
          categoryBalance: o.categoryBalance,
          categoryNoise: o.categoryNoise,
          decayEpoch: o.decayEpoch,
          seed: o.seed,
          workers: o.workers,
          resume: o.resume,
          onProgress,
        },
        backend,
      ).catch(optionNamed(OPTIONS)));
      const t = result.test;
      progress.log(`test (${t.images} images): reconstruction MSE ${t.reconstructionMse.toFixed(4)}; codes vs prior: MMD² ${t.posterior.mmd.toFixed(4)}, worst mean offset ${t.posterior.meanError.toFixed(2)} sd, worst variance factor ${Math.exp(t.posterior.logVarianceRatio).toFixed(2)}`);
      if (t.classification) progress.log(`test classification error (argmax q(y|x)): ${percent(t.classification.error)} (${t.classification.errors} of ${t.classification.images})`);
      if (t.clustering) {
        const c = t.clustering;
        progress.log(`clustering error (${c.clusters} clusters, majority training label each): ${percent(c.error)} (${c.errors} of ${c.images})${c.emptyClusters ? `; ${c.emptyClusters} cluster${c.emptyClusters === 1 ? '' : 's'} without training images` : ''}`);
        progress.log(`cluster sizes (training images): ${c.trainSizes.map((n, k) => `${k}:${n}${c.clusterLabels[k] === null ? '' : `→${result.dataset.classNames[c.clusterLabels[k]!] ?? c.clusterLabels[k]}`}`).join(' ')}`);
      }
      progress.log(`reconstructions: ${join(out, 'reconstruction.png')}`);
      progress.log(`samples: ${join(out, 'samples.png')}`);
      progress.log(`report: ${join(out, 'report.html')}`);
      progress.log(`result: ${join(out, 'result.json')}`);
    });
}
