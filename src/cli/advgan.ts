import { Command, Option } from 'commander';
import { join } from 'node:path';
import { advganRun, ADVGAN_RUN_DEFAULTS, type AdvGanRunEvent } from '../jobs/advgan-run.js';
import { ADVGAN_DEFAULTS } from '../generative/advgan/train-advgan.js';
import { GAN_LOSSES } from '../generative/losses.js';
import { DISTILLATION_DEFAULTS } from '../generative/advgan/distillation.js';
import { ZOO_NAMES } from '../models/zoo.js';
import { BUILTIN_DATASETS } from '../node/data/builtin.js';
import { InputError } from '../errors.js';
import { createProgress } from './progress.js';
import { guardRun } from './failure.js';
import { backendOption, boundsOption, finiteOption, intOption, optionNamed, pathTag, positiveOption, resumeOption, startBackend } from './common.js';

/** Argument names of advganRun's InputErrors → the options that set them. */
const OPTIONS: Record<string, string> = {
  model: '--model', dataset: '--dataset', eps: '--eps', epochs: '--epochs', batchSize: '--batch-size', learningRate: '--lr', ganLoss: '--gan-loss', alpha: '--alpha',
  beta: '--beta', hingeBound: '--hinge-bound', kappa: '--kappa', targetClass: '--target', n: '--n', out: '--out', bounds: '--bounds', resume: '--resume',
  surrogate: '--surrogate', staticEpochs: '--static-epochs',
};

const pct = (x: number) => `${(x * 100).toFixed(2)}%`;

/** `advlab advgan`: trains AdvGAN's perturbation generator against a model (Xiao et al. 2018). */
export function advganCommand(): Command {
  return new Command('advgan')
    .description('AdvGAN (Xiao et al. 2018): train a generator that perturbs any image of the data against a trained model within an Linf ball, then attack the test images with it in one forward pass; writes the generator, samples.png, report.html and result.json; resumable')
    .option('--model <path>', 'the attacked model: a saved model folder, model.json, or an advlab train run folder (required)')
    .option('--dataset <name|path>', `built-in (${BUILTIN_DATASETS.join(', ')}) or a path; trains on its train split, attacks its test split`, ADVGAN_RUN_DEFAULTS.dataset)
    .option('--eps <x>', "Linf budget in the input's scale (required; 0.3 for mnist)", positiveOption('--eps'))
    .option('--target <class>', 'train a targeted generator toward this class (default: untargeted)', intOption('--target', 0))
    .option('--epochs <n>', `epochs (default ${ADVGAN_RUN_DEFAULTS.epochs})`, intOption('--epochs', 1))
    .option('--batch-size <n>', `training batch size (default ${ADVGAN_RUN_DEFAULTS.trainBatchSize})`, intOption('--batch-size', 1))
    .option('--lr <x>', `Adam rate of both networks (default ${ADVGAN_DEFAULTS.learningRate})`, positiveOption('--lr'))
    .addOption(new Option('--gan-loss <name>', `the discriminator game (default ${ADVGAN_DEFAULTS.ganLoss})`).choices(GAN_LOSSES.filter((l) => l !== 'wgan-gp')))
    .option('--alpha <x>', `weight of the GAN loss (default ${ADVGAN_DEFAULTS.alpha})`, finiteOption('--alpha'))
    .option('--beta <x>', `weight of the hinge on the perturbation's L2 norm (default ${ADVGAN_DEFAULTS.beta})`, finiteOption('--beta'))
    .option('--hinge-bound <c>', `L2 norm the hinge lets through (default ${ADVGAN_DEFAULTS.hingeBound})`, finiteOption('--hinge-bound'))
    .option('--kappa <x>', `C&W confidence (default ${ADVGAN_DEFAULTS.kappa})`, finiteOption('--kappa'))
    .option('--black-box', 'black-box mode (dynamic distillation): train against a surrogate that learns from the model\'s predicted labels only; queries are counted', false)
    .addOption(new Option('--surrogate <arch>', 'with --black-box: the surrogate\'s zoo architecture (default lenet)').choices(ZOO_NAMES))
    .option('--static-epochs <n>', `with --black-box: epochs of static distillation before the generator trains (default ${DISTILLATION_DEFAULTS.staticEpochs})`, intOption('--static-epochs', 0))
    .option('--n <count>', `test images attacked at the end: a class-balanced prefix (default ${ADVGAN_RUN_DEFAULTS.n})`, intOption('--n', 1))
    .option('--seed <n>', 'random seed', intOption('--seed'), ADVGAN_RUN_DEFAULTS.seed)
    .option('--bounds <min,max>', "valid input range of the model in the images' scale", boundsOption)
    .option('--out <dir>', 'output folder (default: runs/<model>-advgan)')
    .addOption(resumeOption())
    .addOption(backendOption())
    .option('--no-progress', 'plain lines instead of a progress bar')
    .action(async (o) => {
      if (!o.model) throw new InputError('--model', 'required: the attacked model (a saved model folder or an advlab train run folder)');
      if (o.eps === undefined) throw new InputError('--eps', "required: the Linf budget in the input's scale (e.g. 0.3 for mnist)");
      for (const [flag, value] of [['--surrogate', o.surrogate], ['--static-epochs', o.staticEpochs]] as const) {
        if (value !== undefined && !o.blackBox) throw new InputError(flag, 'only with --black-box');
      }
      const progress = createProgress(process.stdout, o.progress);
      const backend = await startBackend(o.backend, undefined, (l) => progress.log(l));
      const out: string = o.out ?? join('runs', `${pathTag(String(o.model), 'model')}-advgan`);
      const onProgress = (e: AdvGanRunEvent) => {
        if (e.type === 'model') progress.log(`model: ${e.path} (${e.parameters} parameters)`);
        else if (e.type === 'resumed') progress.log(`resumed after epoch ${e.epoch}`);
        else if (e.type === 'epoch-start') progress.start(e.batches, `epoch ${e.epoch}/${e.epochs}`);
        else if (e.type === 'batch') progress.update(e.batch, { D: e.dLoss.toFixed(4), G: e.gLoss.toFixed(4), fooled: pct(e.trainSuccess) });
        else if (e.type === 'epoch-end') progress.stop(`epoch ${e.epoch}/${e.epochs}: D loss ${e.dLoss.toFixed(4)} G loss ${e.gLoss.toFixed(4)} L_adv ${e.advLoss.toFixed(4)} fooled ${pct(e.trainSuccess)} mean L2 ${e.meanL2.toFixed(3)} (${e.seconds.toFixed(1)}s)`);
      };
      const result = await guardRun(out, 'epochs', progress, () =>
        advganRun(
          {
            model: o.model,
            dataset: o.dataset,
            out,
            eps: o.eps,
            ...(o.target !== undefined ? { targetClass: o.target } : {}),
            epochs: o.epochs,
            trainBatchSize: o.batchSize,
            learningRate: o.lr,
            ganLoss: o.ganLoss,
            alpha: o.alpha,
            beta: o.beta,
            hingeBound: o.hingeBound,
            kappa: o.kappa,
            n: o.n,
            seed: o.seed,
            bounds: o.bounds,
            resume: o.resume,
            ...(o.blackBox ? { blackBox: { surrogate: o.surrogate, staticEpochs: o.staticEpochs } } : {}),
            onProgress,
          },
          backend,
        ).catch(optionNamed(OPTIONS)),
      );
      const a = result.attack;
      progress.log(`attack on ${a.count} test images: success ${pct(a.successRate)}, median L2 ${a.medianL2?.toFixed(3) ?? '-'}, ${a.imagesPerSecond.toFixed(0)} images/s`);
      if (result.blackBox) progress.log(`black box: ${result.blackBox.queries} queries (${result.blackBox.queriesPerTrainingImage.toFixed(1)} per training image); the ${result.blackBox.surrogate} surrogate agreed with the model on ${pct(result.blackBox.finalAgreement)} of the last epoch's examples`);
      progress.log(`generator: ${join(out, 'generator')}`);
      progress.log(`report: ${join(out, 'report.html')}`);
      progress.log(`result: ${join(out, 'result.json')}`);
    });
}
