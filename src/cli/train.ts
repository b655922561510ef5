import { Command } from 'commander';
import { join } from 'node:path';
import { trainRun, TRAIN_DEFAULTS } from '../jobs/train-run.js';
import type { TrainRunEvent } from '../models/types.js';
import { describeZoo, ZOO_ACTIVATIONS } from '../models/zoo.js';
import { BUILTIN_DATASETS } from '../node/data/builtin.js';
import { createProgress } from './progress.js';
import { intOption, positiveOption, startBackend, pathTag, workersOption, listOption, finiteOption, optionNamed, backendOption, resumeOption } from './common.js';
import { Option } from 'commander';
import { defenseRun } from '../jobs/defense-run.js';
import type { DefenseRunResult } from '../defenses/types.js';
import { DEFENSE_NAMES } from '../defenses/types.js';
import { IBP_DEFAULTS, CONSISTENCY_DEFAULTS } from '../defenses/defenses.js';
import { InputError } from '../errors.js';
import { guardRun } from './failure.js';

/** Argument names of defenseRun's InputErrors (its own and the evaluation's) → the options that set them. */
const DEFENSE_OPTIONS: Record<string, string> = {
  defense: '--defense',
  defenseNorm: '--defense-norm',
  defenseEps: '--defense-eps',
  defenseSteps: '--defense-steps',
  defenseStepSize: '--defense-step-size',
  tradesBeta: '--trades-beta',
  epsWarmup: '--eps-warmup',
  ibpFlatEpochs: '--ibp-flat-epochs',
  ibpKappa: '--ibp-kappa',
  ibpEpsScale: '--ibp-eps-scale',
  consistencyLambda: '--consistency-lambda',
  consistencyEta: '--consistency-eta',
  noiseCopies: '--noise-copies',
  evalSuite: '--eval-suite',
  evalN: '--eval-n',
  evalEps: '--eval-eps',
  baseline: '--baseline',
  width: '--width',
  activation: '--activation',
  trainSize: '--train-n',
  out: '--out',
  generated: '--generated',
  generatedFraction: '--generated-fraction',
  generatedN: '--generated-n',
  generatedLabeller: '--generated-labeller',
};

/** `advlab train`: a thin shell over {@link trainRun}. */
export function trainCommand(): Command {
  return new Command('train')
    .description('train a zoo model on a dataset (Adam, seeded, checkpointed every epoch)')
    .option('--model <name|path>', `zoo model (${describeZoo().map((m) => m.name).join(', ')}) or a saved model folder to train further`, 'small-cnn')
    .option('--dataset <name|path>', `built-in (${BUILTIN_DATASETS.join(', ')}) or a path (IDX, CIFAR-10 binary, NPY, image folder)`, 'mnist')
    .option('--out <dir>', 'output folder (default: runs/<model>-<dataset>)')
    .option('--epochs <n>', 'epochs (default: 10 below 20,000 training images, else 5)', intOption('--epochs', 1))
    .option('--batch-size <n>', 'batch size', intOption('--batch-size', 1), TRAIN_DEFAULTS.batchSize)
    .option('--lr <x>', 'Adam learning rate', positiveOption('--lr'), TRAIN_DEFAULTS.learningRate)
    .option('--schedule <name>', 'learning-rate schedule: cosine or constant', TRAIN_DEFAULTS.schedule)
    .option('--augment <spec>', 'training augmentation: none, or a comma list of shift[:N] (random translation by up to N pixels), noise:SIGMA (Gaussian noise), cutout:N (an N x N square zeroed)', TRAIN_DEFAULTS.augment)
    .addOption(new Option('--activation <name>', 'hidden activation of a zoo model (smooth ones help adversarial training, Xie et al. 2020)').choices(ZOO_ACTIVATIONS))
    .option('--train-n <count>', 'train on a class-balanced subset of this many train-split images (default: all)', intOption('--train-n', 1))
    .option('--width <n>', 'width multiplier of a zoo model (every hidden layer; wider nets are more robust, Madry et al. 2018)', intOption('--width', 1))
    .option('--seed <n>', 'random seed', intOption('--seed'), TRAIN_DEFAULTS.seed)
    .addOption(new Option('--defense <name>', 'adversarial training: pgd-at (Madry et al. 2018), fgsm-rs (Wong et al. 2020), trades (Zhang et al. 2019), ibp (interval bound propagation, Gowal et al. 2018: verifiably robust, see advlab verify), consistency (consistency regularization for randomized smoothing, Jeong & Shin 2020: --defense-eps is the noise sigma, see advlab certify)').choices(DEFENSE_NAMES).default('none'))
    .option('--defense-eps <x>', "training budget in the input's scale (default 0.3; consistency: the noise's sigma, default 0.5)", positiveOption('--defense-eps'))
    .addOption(new Option('--defense-norm <name>', 'norm of the training budget (default linf; consistency: l2, the noise is Gaussian)').choices(['linf', 'l2']))
    .option('--defense-steps <n>', 'steps of the inner attack (pgd-at, trades; default 10)', intOption('--defense-steps', 1))
    .option('--defense-step-size <x>', 'step size of the inner attack (default: 2.5 eps / steps; fgsm-rs 1.25 eps)', positiveOption('--defense-step-size'))
    .option('--trades-beta <x>', 'TRADES: weight of the robustness term (0: plain training on clean images)', finiteOption('--trades-beta'), 6)
    .option('--no-random-start', 'start the inner attack at the clean image (plain FGSM/BIM training; fgsm-rs without it is prone to catastrophic overfitting)')
    .option('--eps-warmup <epochs>', `grow eps linearly from 0 over this many epochs (default 0; ibp: ${IBP_DEFAULTS.rampEpochs}, after --ibp-flat-epochs)`, intOption('--eps-warmup'))
    .option('--ibp-flat-epochs <n>', `ibp: epochs at eps 0 before the ramp (default ${IBP_DEFAULTS.flatEpochs})`, intOption('--ibp-flat-epochs'))
    .option('--ibp-kappa <x>', `ibp: the clean loss's final weight; it falls from 1 over the ramp (default ${IBP_DEFAULTS.kappa})`, finiteOption('--ibp-kappa'))
    .option('--consistency-lambda <x>', `consistency: weight of the KL from the copies' average prediction to each copy's (default ${CONSISTENCY_DEFAULTS.lambda})`, finiteOption('--consistency-lambda'))
    .option('--consistency-eta <x>', `consistency: weight of the average prediction's entropy (default ${CONSISTENCY_DEFAULTS.eta})`, finiteOption('--consistency-eta'))
    .option('--noise-copies <m>', `consistency: noisy copies of each image per step (default ${CONSISTENCY_DEFAULTS.copies})`, intOption('--noise-copies'))
    .option('--ibp-eps-scale <x>', `ibp: train at this multiple of --defense-eps (default ${IBP_DEFAULTS.epsScale}, as Gowal et al.)`, finiteOption('--ibp-eps-scale'))
    .option('--generated <dir>', 'mix generated images into every training batch (Gowal et al. 2021): an advlab gan run folder or a generator folder; cgan/acgan images carry the class asked for, others are labelled by --generated-labeller. An epoch keeps the steps of a pass over the real data, so the same --epochs trains as many steps without it')
    .option('--generated-fraction <f>', 'share of every batch that is generated, in [0, 1) (default 0.7)', finiteOption('--generated-fraction'))
    .option('--generated-n <count>', 'generated images drawn (seeded) before training (default: 10x the real training set, at most 256 MiB of images)', intOption('--generated-n', 1))
    .option('--generated-labeller <path>', 'a classifier trained on the real data (run folder or saved model) whose prediction labels each generated image; required unless the generator is class-conditional')
    .option('--baseline <path>', 'an undefended model (run folder) evaluated next to the defended one')
    .option('--eval-suite <name>', 'suite of the evaluation after defended training (quick or standard)', 'quick')
    .option('--eval-n <count>', 'test images of that evaluation (default 1000)', intOption('--eval-n', 1))
    .option('--eval-eps <list>', 'eps values of that evaluation, headline first (default: eps, eps/4, eps/2, 3eps/4)', listOption('--eval-eps'))
    .option('--no-eval', 'skip the evaluation after defended training')
    .option('--workers <n|auto>', "worker threads: each batch's gradients in shards (data-parallel), the inner attack, the evaluation", workersOption, 'auto')
    .addOption(backendOption())
    .addOption(resumeOption())
    .option('--no-progress', 'plain lines instead of a progress bar')
    .action(async (o) => {
      const progress = createProgress(process.stdout, o.progress);
      const backend = await startBackend(o.backend, undefined, (l) => progress.log(l));
      const datasetTag = pathTag(String(o.dataset), 'data');
      const modelTag = pathTag(String(o.model), 'model');
      const out: string = o.out ?? join('runs', `${modelTag}-${datasetTag}`);
      const common = {
          model: o.model,
          dataset: o.dataset,
          out,
          epochs: o.epochs,
          batchSize: o.batchSize,
          learningRate: o.lr,
          schedule: o.schedule,
          augment: o.augment,
          activation: o.activation,
          width: o.width,
          trainSize: o.trainN,
          seed: o.seed,
          resume: o.resume,
          generated: o.generated,
          generatedFraction: o.generatedFraction,
          generatedN: o.generatedN,
          generatedLabeller: o.generatedLabeller,
          onProgress: (e: TrainRunEvent) => {
            if (e.type === 'generating') {
              if (e.done === 0) progress.start(e.total, 'generating');
              else progress.update(e.done, {});
            } else if (e.type === 'generated') {
              const g = e.generated;
              progress.stop(`generated: ${g.n} images from ${g.generatorPath}${g.arch ? ` (${g.arch})` : ''}, labelled by ${g.labels === 'generator' ? 'the class asked for' : g.labeller}${g.classAgreement === null ? '' : ` (agreeing with the class asked for on ${(g.classAgreement * 100).toFixed(1)}%)`}; ${g.perBatch} of every ${o.batchSize} in a batch (${g.seconds.toFixed(1)}s)`);
              // Gowal et al.'s generators saw only the real training set; one that saw more smuggles that data in.
              if (g.generatorTrainSize !== null && g.generatorTrainSize > g.realTrainSize) progress.log(`warning: the generator was trained on ${g.generatorTrainSize} real images, this run on ${g.realTrainSize}: its images bring in data from beyond this run's training set (train it with advlab gan --train-n ${g.realTrainSize} for a fair comparison)`);
            } else if (e.type === 'dataset') {
              const d = e.dataset;
              progress.log(`dataset: ${d.name} (${d.train.count} train, ${d.test.count} test, ${d.skipped} malformed records skipped)`);
            } else if (e.type === 'resumed') progress.log(`resumed after epoch ${e.epoch}`);
            else if (e.type === 'epoch-start') progress.start(e.batches, `epoch ${e.epoch}/${e.epochs}`);
            else if (e.type === 'batch') progress.update(e.batch, { loss: e.loss.toFixed(4), acc: e.accuracy.toFixed(4) });
            else if (e.type === 'epoch-end') {
              const test = e.testAccuracy === undefined ? '' : ` test acc ${e.testAccuracy.toFixed(4)}`;
              const m = e.monitor;
              const watch = m ? ` held-out PGD-10 acc ${m.pgdAccuracy.toFixed(4)} FGSM acc ${m.fgsmAccuracy.toFixed(4)}` : '';
              progress.stop(`epoch ${e.epoch}/${e.epochs}: loss ${e.loss.toFixed(4)} train acc ${e.trainAccuracy.toFixed(4)}${test}${watch} (${e.seconds.toFixed(1)}s)`);
              if (m?.catastrophicOverfitting === 1) {
                progress.log('warning: catastrophic overfitting: PGD breaks what FGSM cannot (the model defeats the single step instead of resisting); the best epoch by held-out PGD accuracy is kept in best-model/ and restored if the last epoch still shows it. Use a random start (fgsm-rs default), a smaller step, or pgd-at.');
              }
            }
          },
      };
      if (o.defense === 'none') {
        for (const flag of ['baseline', 'evalEps', 'evalN'] as const) if (o[flag] !== undefined) throw new InputError(`--${flag.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`, 'only applies with --defense');
      }
      // A failure mid-run (a full disk, a bug) says where the last checkpoint is.
      const result = await guardRun(out, 'epochs', progress, () =>
        o.defense === 'none'
          ? trainRun({ ...common, workers: o.workers }, backend).catch(optionNamed(DEFENSE_OPTIONS))
          : defenseRun(
              {
                ...common,
                defense: o.defense,
                defenseEps: o.defenseEps,
                defenseNorm: o.defenseNorm,
                defenseSteps: o.defenseSteps,
                defenseStepSize: o.defenseStepSize,
                tradesBeta: o.tradesBeta,
                epsWarmup: o.epsWarmup,
                ibpFlatEpochs: o.ibpFlatEpochs,
                ibpKappa: o.ibpKappa,
                ibpEpsScale: o.ibpEpsScale,
                consistencyLambda: o.consistencyLambda,
                consistencyEta: o.consistencyEta,
                noiseCopies: o.noiseCopies,
                randomStart: o.randomStart,
                workers: o.workers,
                baseline: o.baseline,
                evidence: o.eval === false ? false : { suite: o.evalSuite, n: o.evalN, eps: o.evalEps },
              },
              backend,
            ).catch(optionNamed(DEFENSE_OPTIONS)),
      );
      const evidence = 'evidence' in result ? (result as DefenseRunResult).evidence : null;
      if (evidence) {
        const e = evidence;
        const line = (name: string, x: { cleanAccuracy: number; robustAccuracy: number }) => `${name}: clean ${(x.cleanAccuracy * 100).toFixed(2)}%, robust ${(x.robustAccuracy * 100).toFixed(2)}%`;
        progress.log(`evidence (${e.suite} suite, eps ${e.eps[0]}, ${e.n} test images): ${line('defended', e.defended)}${e.baseline ? `; ${line('baseline', e.baseline)}` : ''}`);
        progress.log(`report: ${join(out, 'report.html')}`);
      }
      progress.log(`clean accuracy: ${(result.cleanAccuracy * 100).toFixed(2)}% on ${result.dataset.testSize} test images`);
      progress.log(`result: ${join(out, 'result.json')}`);
    });
}
