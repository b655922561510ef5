import { Command, Option } from 'commander';
import { join } from 'node:path';
import { verifyRun, VERIFY_DEFAULTS } from '../jobs/verify-run.js';
import { SUITE_NAMES } from '../robustness/suites.js';
import { BUILTIN_DATASETS } from '../node/data/builtin.js';
import { InputError } from '../errors.js';
import { createProgress } from './progress.js';
import { guardRun } from './failure.js';
import { intOption, startBackend, pathTag, workersOption, listOption, boundsOption, backendOption, optionNamed } from './common.js';

/** Argument names of verifyRun's InputErrors → the options that set them. */
const OPTIONS: Record<string, string> = { model: '--model', dataset: '--dataset', eps: '--eps', n: '--n', pgdSteps: '--pgd-steps', pgdRestarts: '--pgd-restarts', suite: '--suite', workers: '--workers', out: '--out', bounds: '--bounds' };

const pct = (x: number) => `${(x * 100).toFixed(2)}%`;

/** `advlab verify`: verified accuracy by interval bound propagation, next to PGD's robust accuracy. */
export function verifyCommand(): Command {
  return new Command('verify')
    .description('verified accuracy under interval bound propagation at each Linf budget, next to clean accuracy and PGD robust accuracy on the same images; writes result.json and report.html')
    .option('--model <path>', 'a trained Layers model: saved model folder, model.json, or an advlab train run folder (required)')
    .option('--dataset <name|path>', `built-in (${BUILTIN_DATASETS.join(', ')}) or a path; the test split is verified`, VERIFY_DEFAULTS.dataset)
    .option('--eps <list>', "Linf budget(s) in the input's scale, comma-separated (e.g. 0.1,0.3)", listOption('--eps'))
    .option('--n <count>', `images: a class-balanced prefix of the test split (default ${VERIFY_DEFAULTS.n})`, intOption('--n', 1))
    .option('--batch-size <n>', 'images per batch', intOption('--batch-size', 1), VERIFY_DEFAULTS.batchSize)
    .option('--pgd-steps <n>', 'steps of the PGD run next to each budget (0: no PGD)', intOption('--pgd-steps', 0), VERIFY_DEFAULTS.pgdSteps)
    .option('--pgd-restarts <n>', 'random restarts of that PGD', intOption('--pgd-restarts', 1), VERIFY_DEFAULTS.pgdRestarts)
    .addOption(new Option('--suite <name>', 'a robustness suite beside PGD on the same images, a second upper bound checked the same way (none: PGD only)').choices(['none', ...SUITE_NAMES]).default(VERIFY_DEFAULTS.suite))
    .option('--seed <n>', 'random seed (PGD\'s starts)', intOption('--seed'), VERIFY_DEFAULTS.seed)
    .option('--bounds <min,max>', "valid input range of the model in the images' scale", boundsOption)
    .option('--workers <n|auto>', 'worker threads for PGD; auto: one per core on wasm/cpu (results do not depend on it)', workersOption, 'auto')
    .option('--out <dir>', 'output folder (default: runs/<model>-verify)')
    .addOption(backendOption())
    .option('--no-progress', 'plain lines instead of a progress bar')
    .action(async (o) => {
      if (!o.model) throw new InputError('--model', 'required: a trained model (a saved model folder or an advlab train run folder)');
      if (!o.eps) throw new InputError('--eps', "required: the Linf budget(s) in the input's scale (e.g. 0.1,0.3 for mnist)");
      const progress = createProgress(process.stdout, o.progress);
      const backend = await startBackend(o.backend, undefined, (l) => progress.log(l));
      const out: string = o.out ?? join('runs', `${pathTag(String(o.model), 'model')}-verify`);
      const result = await guardRun(out, 'none', progress, () =>
        verifyRun(
          {
            model: o.model,
            dataset: o.dataset,
            out,
            eps: o.eps,
            n: o.n,
            batchSize: o.batchSize,
            pgdSteps: o.pgdSteps,
            pgdRestarts: o.pgdRestarts,
            suite: o.suite,
            seed: o.seed,
            bounds: o.bounds,
            workers: o.workers,
            onProgress: (e) => {
              if (e.type === 'model') progress.log(`model: ${e.path} (${e.parameters} parameters)`);
              else progress.log(`eps ${e.eps}: verified ${pct(e.verified / e.count)}${e.robust === null ? '' : `, PGD robust ${pct(e.robust / e.count)}`}${e.suiteRobust === null ? '' : `, suite robust ${pct(e.suiteRobust / e.count)}`}`);
            },
          },
          backend,
        ).catch(optionNamed(OPTIONS)),
      );
      progress.log(`clean ${pct(result.cleanAccuracy)} on ${result.count} images`);
      progress.log(`report: ${join(out, 'report.html')}`);
      progress.log(`result: ${join(out, 'result.json')}`);
    });
}
