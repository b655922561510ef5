import { Command, InvalidArgumentError, Option } from 'commander';
import { join } from 'node:path';
import { evalRun, EVAL_DEFAULTS } from '../jobs/eval-run.js';
import { SUITE_NAMES } from '../robustness/suites.js';
import { parseCorruptions } from '../robustness/corruptions.js';
import { MINIMAL_ATTACKS } from '../robustness/minimal.js';
import { BUILTIN_DATASETS } from '../node/data/builtin.js';
import { InputError } from '../errors.js';
import { createProgress } from './progress.js';
import { guardRun } from './failure.js';
import { intOption, startBackend, pathTag, workersOption, listOption, boundsOption, backendOption, queueOption, queueLine } from './common.js';

const pct = (x: number) => `${(x * 100).toFixed(2)}%`;

/** `advlab eval`: the standard robustness evaluation, sweeps, corruptions, sanity checks and report.html. */
/** `--audit`: a positive count or `full`. */
function auditOption(value: string): number | 'full' {
  if (value === 'full') return 'full';
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`--audit expects a number of points >= 1 or "full", got "${value}"`);
  return n;
}

export function evalCommand(): Command {
  return new Command('eval')
    .description('evaluate robustness: an AutoAttack-style suite (per-example worst case), epsilon sweep, minimal perturbations, corruptions, sanity checks; writes result.json and report.html')
    .option('--model <path>', 'a trained model: saved model folder, model.json, or an advlab train run folder (required)')
    .option('--dataset <name|path>', `built-in (${BUILTIN_DATASETS.join(', ')}) or a path; the test split is evaluated`, EVAL_DEFAULTS.dataset)
    .addOption(
      new Option('--suite <name>', 'standard: APGD-CE, APGD-T (9 targets), FAB-T (9 targets), Square 5000 (AutoAttack); fast: APGD-CE + APGD-T on 3 MALT targets, audited against standard; quick: APGD-CE + APGD-T (3 targets), 50 steps, unaudited')
        .choices(SUITE_NAMES)
        .default(EVAL_DEFAULTS.suite),
    )
    .option('--audit <n|full>', 'fast suite: points it left robust that the rest of the standard suite re-checks (default 100), or full', auditOption)
    .option('--no-audit-escalation', 'fast suite: after a miss in the audited sample, do not re-check every robust point')
    .option('--attacks <list>', 'a custom suite instead: stages in order, e.g. apgd-ce,apgd-t,square (apgd-ce, apgd-dlr, apgd-t, fab-t, square, or any attack name)')
    .addOption(new Option('--norm <name>', 'perturbation norm').choices(['linf', 'l2']).default(EVAL_DEFAULTS.norm))
    .option('--eps <list>', "budget(s) in the input's scale, comma-separated for a sweep; the first is the headline (e.g. 0.3, or 0.3,0.1,0.2,0.4)", listOption('--eps'))
    .option('--n <count>', `images: a class-balanced prefix of the test split (default ${EVAL_DEFAULTS.n}, or the whole split if smaller)`, intOption('--n', 1))
    .option('--batch-size <n>', 'images per batch: the unit of work, of parallelism and of checkpoints', intOption('--batch-size', 1), EVAL_DEFAULTS.batchSize)
    .option('--seed <n>', 'random seed', intOption('--seed'), EVAL_DEFAULTS.seed)
    .option('--corruptions <list>', 'corruption tests: all, none, or a comma list (gaussian-noise, salt-and-pepper, gaussian-blur, brightness, contrast, rotation, translation)', 'all')
    .option('--minimal <list>', `minimal-perturbation attacks (${MINIMAL_ATTACKS.join(', ')}) or none; default deepfool with a sweep, none otherwise`)
    .option('--sanity-sample <n>', 'images the sanity checks run on', intOption('--sanity-sample'), EVAL_DEFAULTS.sanitySample)
    .option('--all-points', 'run every stage on every point (slow): robust accuracy of each stage alone', false)
    .option('--bounds <min,max>', "valid input range of the model in the images' scale", boundsOption)
    .option('--mean <values>', 'normalization inside the classifier: per-channel mean (comma-separated), applied as (x - mean) / std', listOption('--mean'))
    .option('--std <values>', 'per-channel std for --mean (default 1)', listOption('--std'))
    .option('--workers <n|auto>', 'worker threads evaluating batches in parallel; auto: one per core on wasm/cpu (results do not depend on it)', workersOption, 'auto')
    .option('--out <dir>', 'output folder (default: runs/<model>-eval)')
    .option('--defense <spec>', 'evaluate the model behind an input purifier: aae:<folder of an advlab aae run> (MagNet-style); the suite runs with the purifier as deployed and with BPDA, the headline is the worst case, and the AAE is scored as a detector')
    .addOption(queueOption())
    .option('--resume', 'continue from the checkpoint in <out>/checkpoint: finished batches are not redone (with --queue: also collect the jobs the queue workers finished meanwhile)', false)
    .addOption(backendOption())
    .option('--no-progress', 'plain lines instead of a progress bar')
    .action(async (o) => {
      if (!o.model) throw new InputError('--model', 'required: a trained model (a saved model folder or an advlab train run folder)');
      if (!o.eps) throw new InputError('--eps', "required: the budget in the input's scale (e.g. 0.3 for mnist linf; 0.1,0.2,0.3 for a sweep)");
      if (o.std && !o.mean) throw new InputError('--std', 'needs --mean');
      const corruptions = o.corruptions === 'none' ? [] : parseCorruptions(o.corruptions, '--corruptions');
      const minimal = o.minimal === undefined ? undefined : o.minimal === 'none' ? [] : String(o.minimal).split(',').map((s: string) => s.trim());
      const attacks = o.attacks ? String(o.attacks).split(',').map((s: string) => s.trim()) : undefined;
      const progress = createProgress(process.stdout, o.progress);
      const backend = await startBackend(o.backend, undefined, (l) => progress.log(l));
      const out: string = o.out ?? join('runs', `${pathTag(String(o.model), 'model')}-eval`);
      let result;
      try {
        result = await guardRun(out, 'eval', progress, () => evalRun(
          {
            model: o.model,
            dataset: o.dataset,
            out,
            suite: o.suite,
            audit: o.audit,
            auditEscalate: o.auditEscalation,
            attacks,
            norm: o.norm,
            eps: o.eps,
            n: o.n,
            batchSize: o.batchSize,
            seed: o.seed,
            corruptions,
            minimal,
            sanitySample: o.sanitySample,
            allPoints: o.allPoints,
            bounds: o.bounds,
            preprocess: o.mean ? { mean: o.mean, std: o.std ?? 1 } : undefined,
            workers: o.workers,
            queue: o.queue,
            defense: o.defense,
            resume: o.resume,
            onProgress: (e) => {
              if (e.type === 'dataset') progress.log(`dataset: ${e.dataset.name} (${e.count} of ${e.dataset.test.count} test images, class-balanced)`);
              else if (e.type === 'model') progress.log(`model: ${e.path} (${e.parameters} parameters)`);
              else if (e.type === 'queue') progress.log(queueLine(e.queue));
              else if (e.type === 'resumed') progress.log(`resumed: ${e.points} points already through the suite, loaded from the checkpoint`);
              else if (e.type === 'phase') progress.start(e.total, `${e.phase}${e.workers > 1 ? ` (${e.workers} workers)` : ''}`);
              else if (e.type === 'batch') progress.update(e.done, e.evaluated ? { robust: `${e.robust}/${e.evaluated}` } : {});
              else if (e.type === 'sweep') {
                const r = e.result;
                progress.stop(`eps ${r.eps}: robust accuracy ${pct(r.robustAccuracy)} [${pct(r.confidenceInterval[0])}, ${pct(r.confidenceInterval[1])}] (${r.stages.map((s) => `${s.name} -${s.broken}`).join(', ')})`);
              }
            },
          },
          backend,
        ));
      } catch (e) {
        if (e instanceof InputError && !e.argument.startsWith('--')) {
          const map: Record<string, string> = { 'preprocess.mean': '--mean', 'preprocess.std': '--std', batchSize: '--batch-size', sanitySample: '--sanity-sample', allPoints: '--all-points' };
          throw new InputError(map[e.argument] ?? `--${e.argument}`, e.message.slice(e.argument.length + 2));
        }
        throw e;
      }
      progress.stop(
        `${result.suite.name} suite, ${result.norm} eps ${result.eps}: clean accuracy ${pct(result.cleanAccuracy)}, robust accuracy ${pct(result.robustAccuracy)} ` +
          `(95% CI ${pct(result.confidenceInterval[0])}-${pct(result.confidenceInterval[1])}) on ${result.count} images`,
      );
      if (result.defense) {
        for (const t of result.defense.threatModels) progress.log(`  ${t.name}: robust accuracy ${pct(t.robustAccuracy)} (${t.description})`);
        const d = result.defense.detector;
        progress.log(
          `detector (reconstruction error): ROC AUC ${d.againstPgd.rocAuc?.toFixed(3) ?? 'n/a'} against ${d.againstPgd.adversarial} PGD-${d.attack.steps} examples on the bare model, ` +
            `${d.againstPgd.detectionRate === null ? "n/a" : pct(d.againstPgd.detectionRate)} flagged at ${pct(d.falsePositiveRate)} false positives; purified accuracy on them ${pct(d.purifiedAccuracyUnderPgd)} (bare ${pct(d.bareAccuracyUnderPgd)})`,
        );
      }
      if (result.audit) {
        const a = result.audit;
        progress.log(
          `audit: the rest of the ${a.reference} suite (${a.stages.join(', ')}) on ${a.sampled} of the ${a.robustBefore} points the fast suite left robust: ${a.misses} missed` +
            (a.escalated ? `; escalated to all ${a.robustBefore} (the verdicts are the ${a.reference} suite's)` : a.full ? ' (every robust point: the verdicts are the standard suite\'s)' : `; at most ${a.gapUpperPoints} points (${pct(a.gapUpper)}) lower under the ${a.reference} suite (95%)`),
        );
      }
      if (result.minimal) progress.log(`minimal perturbations (${result.minimal.attack}): median ${result.minimal.median?.toPrecision(3) ?? 'n/a'} (${result.minimal.found}/${result.minimal.attacked} found)`);
      if (result.corruptions) progress.log(`corruptions: mean accuracy ${pct(result.corruptions.overallMeanAccuracy)} (clean ${pct(result.corruptions.clean)})`);
      const warned = result.sanity.checks.filter((c) => c.verdict === 'warn');
      progress.log(`sanity checks: ${result.sanity.verdict}${warned.length ? ` (${warned.map((c) => c.id).join(', ')})` : ''}`);
      for (const c of warned) progress.log(`  warn ${c.id}: ${c.message}`);
      if (result.files) progress.log(`report: ${join(out, result.files.report)}`);
      progress.log(`result: ${join(out, 'result.json')}`);
    });
}
