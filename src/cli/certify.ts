import { Command, Option } from 'commander';
import { join } from 'node:path';
import { certifyRun, CERTIFY_DEFAULTS } from '../jobs/certify-run.js';
import { BUILTIN_DATASETS } from '../node/data/builtin.js';
import { InputError } from '../errors.js';
import { createProgress } from './progress.js';
import { guardRun } from './failure.js';
import { intOption, startBackend, pathTag, workersOption, listOption, boundsOption, backendOption, optionNamed, positiveOption, resumeOption } from './common.js';

/** Argument names of certifyRun's InputErrors → the options that set them. */
const OPTIONS: Record<string, string> = { model: '--model', dataset: '--dataset', sigma: '--sigma', samples: '--samples', n0: '--n0', alpha: '--alpha', noiseBatch: '--noise-batch', n: '--n', workers: '--workers', out: '--out', bounds: '--bounds', resume: '--resume', mode: '--predict', attackRadii: '--attack-radii', attackN: '--attack-n', attackSteps: '--attack-steps', attackSamples: '--attack-samples', attackPredictN: '--attack-predict-n' };

const pct = (x: number) => `${(x * 100).toFixed(2)}%`;

/** `--attack-radii`: positive radii, or "none". */
function radiiOption(value: string): number[] {
  if (value.trim() === 'none') return [];
  return listOption('--attack-radii')(value).map((r: number) => {
    if (!(r > 0)) throw new InputError('--attack-radii', `expected positive L2 radii or "none", got ${value}`);
    return r;
  });
}

/** `advlab certify`: randomized smoothing's certified L2 radii (Cohen et al. 2019). */
export function certifyCommand(): Command {
  return new Command('certify')
    .description('randomized smoothing (Cohen et al. 2019): certified L2 radius per test image (CERTIFY) or the smoothed prediction (--predict), the certified-accuracy curve, abstention and throughput; writes result.json and report.html; resumable')
    .option('--model <path>', 'a trained model: saved model folder, model.json, or an advlab train run folder (required; train it with --augment noise:<sigma>)')
    .option('--dataset <name|path>', `built-in (${BUILTIN_DATASETS.join(', ')}) or a path; the test split is certified`, CERTIFY_DEFAULTS.dataset)
    .option('--sigma <x>', "noise level in the input's scale (required; e.g. 0.25, 0.5, 1.0 for mnist in [0, 1])", positiveOption('--sigma'))
    .option('--samples <n>', `estimation copies n (default ${CERTIFY_DEFAULTS.samples}, the paper's; 10,000 certifies up to 3.2 sigma)`, intOption('--samples', 1))
    .option('--n0 <n>', `selection copies (default ${CERTIFY_DEFAULTS.n0})`, intOption('--n0', 1))
    .option('--alpha <x>', `failure probability of each certificate (default ${CERTIFY_DEFAULTS.alpha})`, positiveOption('--alpha'))
    .option('--noise-batch <n>', `noisy copies per forward pass (default ${CERTIFY_DEFAULTS.noiseBatch})`, intOption('--noise-batch', 1))
    .option('--no-clip-noise', "feed the base classifier x + noise unclipped (the paper's code); by default each copy is clipped to --bounds, as --augment noise:<sigma> trains")
    .option('--attack-radii <list>', `L2 radii of the attack on the smoothed classifier (Salman et al. 2019), checked against the certificates; "none" for no attack (default ${CERTIFY_DEFAULTS.attackRadii.join(',')})`, radiiOption)
    .option('--attack-n <count>', `images attacked per radius: those the smoothed classifier gets right among the first <count> (default ${CERTIFY_DEFAULTS.attackN})`, intOption('--attack-n', 1))
    .option('--attack-steps <n>', `PGD steps of the attack (default ${CERTIFY_DEFAULTS.attackSteps})`, intOption('--attack-steps', 1))
    .option('--attack-samples <n>', `noisy copies per attack step, the expectation over the noise (default ${CERTIFY_DEFAULTS.attackSamples})`, intOption('--attack-samples', 1))
    .option('--attack-predict-n <n>', `PREDICT's copies at each attacked point (default ${CERTIFY_DEFAULTS.attackPredictN})`, intOption('--attack-predict-n', 1))
    .addOption(new Option('--predict', 'PREDICT instead of CERTIFY: the smoothed class or an abstention by a binomial test at --alpha'))
    .option('--n <count>', `images: a class-balanced prefix of the test split (default ${CERTIFY_DEFAULTS.n})`, intOption('--n', 1))
    .option('--seed <n>', 'random seed of the noise', intOption('--seed'), CERTIFY_DEFAULTS.seed)
    .option('--bounds <min,max>', "valid input range of the model in the images' scale", boundsOption)
    .option('--mean <values>', 'normalization inside the classifier: per-channel mean (comma-separated)', listOption('--mean'))
    .option('--std <values>', 'per-channel std for --mean (default 1)', listOption('--std'))
    .option('--workers <n|auto>', 'worker threads, one image at a time each; auto: one per core on wasm/cpu (results do not depend on it)', workersOption, 'auto')
    .option('--out <dir>', 'output folder (default: runs/<model>-certify)')
    .addOption(resumeOption())
    .addOption(backendOption())
    .option('--no-progress', 'plain lines instead of a progress bar')
    .action(async (o) => {
      if (!o.model) throw new InputError('--model', 'required: a trained model (a saved model folder or an advlab train run folder)');
      if (o.sigma === undefined) throw new InputError('--sigma', "required: the noise level in the input's scale (e.g. 0.5)");
      if (o.std && !o.mean) throw new InputError('--std', 'needs --mean');
      const progress = createProgress(process.stdout, o.progress);
      const backend = await startBackend(o.backend, undefined, (l) => progress.log(l));
      const out: string = o.out ?? join('runs', `${pathTag(String(o.model), 'model')}-certify`);
      let started = false;
      let attacking = false;
      const result = await guardRun(out, 'none', progress, () =>
        certifyRun(
          {
            model: o.model,
            dataset: o.dataset,
            out,
            sigma: o.sigma,
            samples: o.samples,
            n0: o.n0,
            alpha: o.alpha,
            noiseBatch: o.noiseBatch,
            mode: o.predict ? 'predict' : 'certify',
            clipNoise: o.clipNoise,
            attackRadii: o.attackRadii,
            attackN: o.attackN,
            attackSteps: o.attackSteps,
            attackSamples: o.attackSamples,
            attackPredictN: o.attackPredictN,
            n: o.n,
            seed: o.seed,
            bounds: o.bounds,
            ...(o.mean ? { preprocess: { mean: o.mean, std: o.std ?? o.mean.map(() => 1) } } : {}),
            workers: o.workers,
            resume: o.resume,
            onProgress: (e) => {
              if (e.type === 'model') progress.log(`model: ${e.path} (${e.parameters} parameters)`);
              else if (e.type === 'resumed') progress.log(`resumed: ${e.done} images already done`);
              else if (e.type === 'attack-progress') {
                if (!attacking) progress.start(e.total, 'attack');
                attacking = true;
                progress.update(e.done, { images: `${e.done}/${e.total}` });
              } else {
                if (!started) progress.start(e.total, o.predict ? 'predict' : 'certify');
                started = true;
                progress.update(e.done, { images: `${e.done}/${e.total}` });
              }
            },
          },
          backend,
        ).catch(optionNamed(OPTIONS)),
      );
      progress.stop(`${result.mode}: ${result.count} images, smoothed accuracy ${pct(result.smoothedAccuracy)}, abstained ${pct(result.abstentionRate)}, ${result.samplesPerSecond.toFixed(0)} samples/s`);
      for (const t of result.table) progress.log(`certified accuracy at L2 radius ${t.radius}: ${pct(t.accuracy)}`);
      for (const c of result.attack?.consistency ?? []) {
        progress.log(`L2 ${c.radius} on ${c.images} images: certified ${pct(c.certifiedAccuracy)} <= attacked ${pct(c.empiricalRobustAccuracy)} (${c.abstainedUnderAttack} abstained under attack), ${c.violations.length} violations`);
      }
      progress.log(`report: ${join(out, 'report.html')}`);
      progress.log(`result: ${join(out, 'result.json')}`);
    });
}
