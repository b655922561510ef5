import { Command, InvalidArgumentError } from 'commander';
import { join } from 'node:path';
import { latentAttackRun, LATENT_ATTACK_DEFAULTS, SHIPPED_AAES, type LatentAttackRunEvent } from '../jobs/latent-attack-run.js';
import { LATENT_SEARCH_DEFAULTS } from '../generative/latent-search.js';
import { BUILTIN_DATASETS } from '../node/data/builtin.js';
import { InputError } from '../errors.js';
import { createProgress } from './progress.js';
import { guardRun } from './failure.js';
import { backendOption, finiteOption, intOption, listOption, optionNamed, pathTag, positiveOption, startBackend } from './common.js';

/** Argument names of latentAttackRun's InputErrors → the options that set them. */
const OPTIONS: Record<string, string> = {
  generator: '--generator', model: '--model', dataset: '--dataset', validator: '--validator', n: '--n', out: '--out', sources: '--source', targets: '--target',
  steps: '--steps', learningRate: '--lr', lambda1: '--lambda1', lambda2: '--lambda2', latentEps: '--latent-eps', batchSize: '--batch-size', seed: '--seed',
};

const pct = (x: number | null) => (x === null ? '-' : `${(x * 100).toFixed(1)}%`);

/** Parses a comma-separated list of class indices. */
function classesOption(name: string) {
  return (value: string): number[] => {
    const classes = listOption(name)(value);
    if (classes.some((c) => !Number.isInteger(c) || c < 0)) throw new InvalidArgumentError(`${name} expects class indices (integers >= 0), got "${value}"`);
    return classes;
  };
}

/** `advlab latent-attack`: unrestricted adversarial examples from a generator's latent space (Song et al. 2018). */
export function latentAttackCommand(): Command {
  const D = LATENT_SEARCH_DEFAULTS;
  return new Command('latent-attack')
    .description(
      "unrestricted adversarial examples (Song et al. 2018): search a generator's latent space near a starting code for images the attacked model reads as a target class while an independent classifier still reads the source class; writes examples.png, examples.npy, report.html and result.json",
    )
    .option('--generator <path|name>', `an advlab gan --arch acgan run folder, an advlab aae run folder, or a shipped AAE (${Object.keys(SHIPPED_AAES).join(', ')}) (required)`)
    .option('--model <path>', 'the attacked model: a saved model folder, model.json, or an advlab train run folder (required)')
    .option('--dataset <name|path>', `built-in (${BUILTIN_DATASETS.join(', ')}) or a path; its classes, and an AAE's real starting images (default: the generator's dataset)`)
    .option('--validator <path>', "the independent classifier that judges validity (default: advlab's shipped metric classifier of the dataset; never the attacked model)")
    .option('--n <count>', `searches (default ${LATENT_ATTACK_DEFAULTS.n})`, intOption('--n', 1))
    .option('--source <classes>', 'source classes, comma-separated (default: every class, class-balanced)', classesOption('--source'))
    .option('--target <classes>', 'target classes, comma-separated (default: every class but the source, in balanced random order)', classesOption('--target'))
    .option('--steps <n>', `Adam steps per search at most (default ${D.steps})`, intOption('--steps', 0))
    .option('--lr <x>', `Adam's rate on z (default ${D.learningRate})`, positiveOption('--lr'))
    .option('--lambda1 <x>', `weight of the distance from z0 (default ${D.lambda1})`, finiteOption('--lambda1'))
    .option('--lambda2 <x>', `weight of the auxiliary classifier's cross-entropy toward the source; acgan only (default ${D.lambda2})`, finiteOption('--lambda2'))
    .option('--latent-eps <x>', `how far each latent coordinate may move for free (default ${D.latentEps})`, finiteOption('--latent-eps'))
    .option('--batch-size <n>', `searches run at once (default ${D.batchSize})`, intOption('--batch-size', 1))
    .option('--seed <n>', 'random seed: pairs and starting codes', intOption('--seed'), LATENT_ATTACK_DEFAULTS.seed)
    .option('--out <dir>', 'output folder (default: runs/<model>-latent-attack)')
    .addOption(backendOption())
    .option('--no-progress', 'plain lines instead of a progress bar')
    .action(async (o) => {
      if (!o.generator) throw new InputError('--generator', `required: an advlab gan --arch acgan run folder, an advlab aae run folder, or a shipped AAE (${Object.keys(SHIPPED_AAES).join(', ')})`);
      if (!o.model) throw new InputError('--model', 'required: the attacked model (a saved model folder or an advlab train run folder)');
      const progress = createProgress(process.stdout, o.progress);
      const backend = await startBackend(o.backend, undefined, (l) => progress.log(l));
      const out: string = o.out ?? join('runs', `${pathTag(String(o.model), 'model')}-latent-attack`);
      const onProgress = (e: LatentAttackRunEvent) => {
        if (e.type === 'generator') progress.log(`generator: ${e.path} (${e.kind}, ${e.latentDim}-D latent, ${e.auxiliary ? 'auxiliary classifier' : 'no auxiliary classifier'})`);
        else if (e.type === 'model') progress.log(`model: ${e.path} (${e.parameters} parameters)`);
        else if (e.type === 'validator') progress.log(`independent classifier: ${e.path}${e.shipped ? ' (shipped)' : ''}`);
        else if (e.type === 'search-batch') progress.start(o.steps ?? D.steps, `searches ${e.batch}/${e.batches}`);
        else if (e.type === 'search-step') progress.update(e.step, { target: `${e.succeeded}/${e.searches}` });
        else if (e.type === 'search-batch-end') progress.stop(`searches ${e.batch}/${e.batches}: ${e.succeeded}/${e.searches} read as the target after ${e.steps} steps`);
      };
      const result = await guardRun(out, 'none', progress, () =>
        latentAttackRun(
          {
            generator: o.generator,
            model: o.model,
            dataset: o.dataset,
            validator: o.validator,
            out,
            n: o.n,
            sources: o.source,
            targets: o.target,
            steps: o.steps,
            learningRate: o.lr,
            lambda1: o.lambda1,
            lambda2: o.lambda2,
            latentEps: o.latentEps,
            batchSize: o.batchSize,
            seed: o.seed,
            onProgress,
          },
          backend,
        ).catch(optionNamed(OPTIONS)),
      );
      const s = result.summary;
      progress.log(`${s.count} searches: target read ${pct(s.successRate)}, source still read by the independent classifier ${pct(s.validityRate)}, both ${pct(s.validSuccessRate)} (${(result.search.seconds).toFixed(1)}s)`);
      progress.log(`examples: ${join(out, result.files.examples)}`);
      progress.log(`report: ${join(out, result.files.report)}`);
      progress.log(`result: ${join(out, 'result.json')}`);
    });
}
