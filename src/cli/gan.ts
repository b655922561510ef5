import { Command, Option } from 'commander';
import { join } from 'node:path';
import { ganRun, DEFAULT_CLUSTERS, GAN_RUN_DEFAULTS, type GanRunEvent } from '../jobs/gan-run.js';
import { sampleGan } from '../jobs/gan-sample.js';
import { evaluateGan, type GanEvalResult } from '../jobs/gan-eval.js';
import { GAN_ARCHS } from '../generative/gan/architectures.js';
import { GAN_LOSSES } from '../generative/losses.js';
import { BUILTIN_DATASETS } from '../node/data/builtin.js';
import { createProgress } from './progress.js';
import { finiteOption, intOption, optionNamed, pathTag, positiveOption, startBackend, backendOption, resumeOption, workersOption } from './common.js';
import { InputError } from '../errors.js';
import { guardRun } from './failure.js';

/** Argument names of ganRun's and sampleGan's InputErrors → the options that set them. */
const TRAIN_OPTIONS: Record<string, string> = {
  workers: '--workers',
  dataset: '--dataset',
  train: '--dataset',
  imageShape: '--dataset',
  out: '--out',
  arch: '--arch',
  loss: '--loss',
  latentDim: '--latent',
  width: '--width',
  clusters: '--clusters',
  epochs: '--epochs',
  batchSize: '--batch-size',
  learningRate: '--lr',
  beta1: '--beta1',
  beta2: '--beta2',
  criticSteps: '--critic-steps',
  labelSmoothing: '--label-smoothing',
  gpLambda: '--gp-lambda',
  emaDecay: '--ema',
  trainSize: '--train-n',
  seed: '--seed',
  resume: '--resume',
  classifier: '--classifier',
  metricSamples: '--metric-samples',
};
const SAMPLE_OPTIONS: Record<string, string> = { model: '--model', n: '--n', class: '--class', seed: '--seed', out: '--out' };
const EVAL_OPTIONS: Record<string, string> = { ...SAMPLE_OPTIONS, dataset: '--dataset', classifier: '--classifier', realSamples: '--real-n' };

/** `advlab gan`: train (the default subcommand) and sample. */
export function ganCommand(): Command {
  return new Command('gan')
    .description('train a GAN (mlp, dcgan, cgan, acgan, infogan, scgan) with per-epoch sample grids and quality metrics; draw images from a trained one; measure it')
    .addHelpText('after', '\nWithout a subcommand, "advlab gan [options]" runs "advlab gan train [options]": see advlab gan train --help.')
    .addCommand(ganTrainCommand(), { isDefault: true })
    .addCommand(ganSampleCommand())
    .addCommand(ganEvalCommand());
}

function ganTrainCommand(): Command {
  return new Command('train')
    .description('train a GAN on a dataset (seeded, checkpointed every epoch, resumable), writing sample grids, history.csv, metrics, report.html and result.json')
    .option('--dataset <name|path>', `built-in (${BUILTIN_DATASETS.join(', ')}) or a path (IDX, CIFAR-10 binary, NPY, image folder)`, 'mnist')
    .addOption(new Option('--arch <name>', 'architecture: mlp (Goodfellow et al. 2014), dcgan (Radford et al. 2016), cgan (class-conditional dcgan, projection discriminator), acgan (class-conditional dcgan, auxiliary-classifier discriminator, Odena et al. 2017), infogan (unsupervised categorical code, Chen et al. 2016), scgan (self-conditioned on k-means clusters of the training images, Liu et al. 2020; unsupervised)').choices(GAN_ARCHS).default(GAN_RUN_DEFAULTS.arch))
    .addOption(new Option('--loss <name>', 'loss: minimax, ns (non-saturating), lsgan, hinge, wgan-gp').choices(GAN_LOSSES).default(GAN_RUN_DEFAULTS.loss))
    .option('--out <dir>', 'output folder (default: runs/gan-<arch>-<dataset>)')
    .option('--epochs <n>', 'epochs', intOption('--epochs', 1), GAN_RUN_DEFAULTS.epochs)
    .option('--batch-size <n>', 'batch size', intOption('--batch-size', 1), GAN_RUN_DEFAULTS.batchSize)
    .option('--lr <x>', 'Adam learning rate (default 2e-4; wgan-gp 1e-4)', positiveOption('--lr'))
    .option('--beta1 <x>', "Adam's beta1 (default 0.5; wgan-gp 0)", finiteOption('--beta1'))
    .option('--beta2 <x>', "Adam's beta2 (default 0.999; wgan-gp 0.9)", finiteOption('--beta2'))
    .option('--critic-steps <n>', 'discriminator steps per generator step (default 1; wgan-gp 5)', intOption('--critic-steps', 1))
    .option('--label-smoothing <x>', 'one-sided label smoothing: target of real images, e.g. 0.9 (minimax and ns only; default none)', finiteOption('--label-smoothing'))
    .option('--gp-lambda <x>', 'gradient-penalty weight (wgan-gp only; default 10)', finiteOption('--gp-lambda'))
    .option('--ema <decay>', "exponential moving average of the generator's weights (Yazici et al. 2019) with this decay (default 0.999); 0: none; samples, metrics and the saved generator use the average", finiteOption('--ema'))
    .option('--latent <n>', 'latent size', intOption('--latent', 1), 64)
    .option('--width <n>', 'width multiplier of every hidden layer', intOption('--width', 1), 1)
    .option('--clusters <k>', `scgan only: k-means clusters of the training images (default ${DEFAULT_CLUSTERS})`, intOption('--clusters', 2))
    .option('--train-n <count>', 'train on a class-balanced subset of this many train-split images (default: all)', intOption('--train-n', 1))
    .option('--classifier <path>', 'a saved advlab classifier (model folder or advlab train run folder) for FID, Inception Score, class coverage and precision/recall; default: the LeNet advlab ships for mnist and fashion-mnist; none: no metrics')
    .option('--metric-samples <n>', 'generated and real images per metric evaluation', intOption('--metric-samples'), GAN_RUN_DEFAULTS.metricSamples)
    .option('--seed <n>', 'random seed', intOption('--seed'), GAN_RUN_DEFAULTS.seed)
    .option('--workers <n|auto>', "worker threads: each step's batch in shards (data-parallel); auto: one per core", workersOption, 'auto')
    .addOption(backendOption())
    .addOption(resumeOption())
    .option('--no-progress', 'plain lines instead of a progress bar')
    .action(async (o) => {
      const progress = createProgress(process.stdout, o.progress);
      const backend = await startBackend(o.backend, undefined, (l) => progress.log(l));
      const out: string = o.out ?? join('runs', `gan-${o.arch}-${pathTag(String(o.dataset), 'data')}`);
      const onProgress = (e: GanRunEvent) => {
        if (e.type === 'dataset') {
          const d = e.dataset;
          progress.log(`dataset: ${d.name} (${d.train.count} train, ${d.test.count} test, ${d.skipped} malformed records skipped; training on ${e.trainSize})`);
        } else if (e.type === 'classifier') progress.log(`metrics: classifier ${e.path}, features = input of its last Dense layer "${e.featureLayer}" (${e.featureDim} values), ${e.outputs}`);
        else if (e.type === 'clustering') {
          const c = e.clustering;
          progress.log(`clusters: k-means on pixels, k = ${c.k}, sizes ${Math.min(...c.sizes)}-${Math.max(...c.sizes)}, ${c.iterations} iterations${c.converged ? '' : ' (not converged)'}, ${c.seconds.toFixed(1)}s; label purity ${(c.labelPurity * 100).toFixed(1)}% (labels not used)`);
        } else if (e.type === 'fid-floor') progress.log(`FID floor (real train vs real test, ${e.samples} each): ${e.fid.toFixed(3)}${e.cached ? ' (cached)' : ''}`);
        else if (e.type === 'resumed') progress.log(`resumed after epoch ${e.epoch}`);
        else if (e.type === 'epoch-start') progress.start(e.batches, `epoch ${e.epoch}/${e.epochs}`);
        else if (e.type === 'batch') progress.update(e.batch, { D: e.dLoss.toFixed(4), G: e.gLoss.toFixed(4) });
        else if (e.type === 'epoch-end') {
          const m = e.monitor ?? {};
          const metrics =
            m.fid === undefined
              ? ''
              : ` | FID ${m.fid.toFixed(2)} IS ${m.inceptionScore.toFixed(3)} KL ${m.klFromUniform.toFixed(3)} min class ${(m.minClassFraction * 100).toFixed(1)}%${m.modeCollapse ? ' (mode collapse)' : ''} precision ${m.precision.toFixed(3)} recall ${m.recall.toFixed(3)} (${m.metricSeconds.toFixed(1)}s)`;
          progress.stop(`epoch ${e.epoch}/${e.epochs}: D loss ${e.dLoss.toFixed(4)} G loss ${e.gLoss.toFixed(4)} D(x) ${e.dReal.toFixed(3)} D(G(z)) ${e.dFake.toFixed(3)} (${e.seconds.toFixed(1)}s)${metrics}`);
        }
      };
      const result = await guardRun(out, 'epochs', progress, () => ganRun(
        {
          dataset: o.dataset,
          out,
          arch: o.arch,
          loss: o.loss,
          latentDim: o.latent,
          width: o.width,
          clusters: o.clusters,
          epochs: o.epochs,
          batchSize: o.batchSize,
          learningRate: o.lr,
          beta1: o.beta1,
          beta2: o.beta2,
          criticSteps: o.criticSteps,
          labelSmoothing: o.labelSmoothing,
          gpLambda: o.gpLambda,
          emaDecay: o.ema,
          trainSize: o.trainN,
          classifier: o.classifier,
          metricSamples: o.metricSamples,
          seed: o.seed,
          workers: o.workers,
          resume: o.resume,
          onProgress,
        },
        backend,
      ).catch(optionNamed(TRAIN_OPTIONS)));
      if (result.metrics) {
        const m = result.metrics;
        progress.log(`final (epoch ${m.epoch}, ${m.samples} samples): FID ${m.fid.toFixed(2)} (floor ${result.fidFloor!.toFixed(2)}), Inception Score ${m.inceptionScore.toFixed(3)}, precision ${m.precision.toFixed(3)}, recall ${m.recall.toFixed(3)}${m.coverage.modeCollapse ? `, mode collapse (class ${m.coverage.minClass} at ${(m.coverage.minFraction * 100).toFixed(1)}%)` : ''}`);
      } else progress.log(`metrics skipped: ${result.metricsSkipped}`);
      progress.log(`samples: ${join(out, 'samples.png')}`);
      progress.log(`report: ${join(out, 'report.html')}`);
      progress.log(`result: ${join(out, 'result.json')}`);
    });
}

function ganSampleCommand(): Command {
  return new Command('sample')
    .description('draw images from a trained GAN generator into a PNG grid or an NPY array')
    .option('--model <path>', 'an advlab gan run folder (or its generator/ folder)')
    .option('--n <count>', 'number of images', intOption('--n', 1), 64)
    .option('--class <k>', 'conditional (cgan, acgan) generators only: every image of this class (infogan: of this code) (default: classes in turn; scgan draws its clusters itself)', intOption('--class'))
    .option('--seed <n>', 'seed of the latent codes', intOption('--seed'), 0)
    .option('--out <file>', 'output file: .png (a grid) or .npy (float32 [n, h, w, c] in [0, 1])')
    .addOption(backendOption())
    .action(async (o) => {
      if (!o.model) throw new InputError('--model', 'required: an advlab gan run folder (or its generator/ folder)');
      if (!o.out) throw new InputError('--out', 'required: a .png or .npy file');
      const log = (line: string) => process.stdout.write(line + '\n');
      await startBackend(o.backend, undefined, log);
      const r = await sampleGan({ model: o.model, n: o.n, class: o.class, seed: o.seed, out: o.out }).catch(optionNamed(SAMPLE_OPTIONS));
      const [n, h, w, c] = r.shape;
      log(`generated ${n} images of ${h}x${w}x${c}${o.class !== undefined ? ` of class ${o.class}` : r.conditional ? ', classes in turn' : ''} with seed ${r.seed} from ${r.generatorPath}`);
      log(`samples: ${r.out}`);
    });
}

function ganEvalCommand(): Command {
  return new Command('eval')
    .description('measure a trained GAN: FID with its real-vs-real floor, Inception Score, class coverage and mode collapse, precision/recall, and class accuracy of a conditional one')
    .option('--model <path>', 'an advlab gan run folder (or its generator/ folder)')
    .option('--n <count>', 'generated images', intOption('--n', 4), 10_000)
    .option('--real-n <count>', 'class-balanced real images (test split for the metrics, train split for the floor; default: min(n, test split))', intOption('--real-n', 4))
    .option('--dataset <name|path>', "dataset of the real images (default: the run's)")
    .option('--classifier <path>', "a saved advlab classifier (default: the run's, else the LeNet advlab ships for the dataset)")
    .option('--seed <n>', 'seed of the latent codes', intOption('--seed'), 0)
    .option('--out <file>', 'also write the figures to this JSON file')
    .addOption(backendOption())
    .action(async (o) => {
      if (!o.model) throw new InputError('--model', 'required: an advlab gan run folder (or its generator/ folder)');
      const log = (line: string) => process.stdout.write(line + '\n');
      const backend = await startBackend(o.backend, undefined, log);
      const r = await evaluateGan({ model: o.model, n: o.n, realSamples: o.realN, dataset: o.dataset, classifier: o.classifier, seed: o.seed, out: o.out }, backend).catch(optionNamed(EVAL_OPTIONS));
      for (const line of ganEvalLines(r)) log(line);
      if (o.out) log(`result: ${o.out}`);
    });
}

/** The figures of `advlab gan eval`, one per line. */
function ganEvalLines(r: GanEvalResult): string[] {
  const m = r.metrics;
  const c = m.coverage;
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
  const lines = [
    `generator: ${r.generator.path}${r.generator.arch ? ` (${r.generator.arch}${r.generator.epochs ? `, ${r.generator.epochs} epochs` : ''})` : ''}; ${m.samples} samples vs ${m.realSamples} real ${r.options.dataset} test images; classifier ${r.metricsClassifier.path}`,
    `FID ${m.fid.toFixed(2)} (floor, real train vs real test: ${r.fidFloor.toFixed(2)})`,
    `Inception Score ${m.inceptionScore.toFixed(3)} (at most ${c.counts.length})`,
    `class coverage: KL from uniform ${c.klFromUniform.toFixed(4)}, smallest class ${c.minClass} at ${pct(c.minFraction)}${c.missing.length ? `, missing ${c.missing.join(' ')}` : ''}${c.modeCollapse ? ' (mode collapse)' : ''}`,
    `class shares: ${c.fractions.map((f, k) => `${k}:${pct(f)}`).join(' ')}`,
    `precision ${m.precision.toFixed(3)}, recall ${m.recall.toFixed(3)} (k = ${m.k})`,
  ];
  if (m.classAccuracy) lines.push(`class accuracy (samples of class c classified as c): ${pct(m.classAccuracy.overall)}; per class ${m.classAccuracy.perClass.map((a, k) => `${k}:${Number.isNaN(a) ? '-' : pct(a)}`).join(' ')}`);
  return lines;
}
