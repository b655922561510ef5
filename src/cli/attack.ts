import { Command, Option } from 'commander';
import { join } from 'node:path';
import { attackRun, ATTACK_DEFAULTS, GENERATOR_ATTACK } from '../jobs/attack-run.js';
import { ATTACKS, findAttack } from '../attacks/index.js';
import { NORMS, type Attack, type ParamSpec } from '../attacks/types.js';
import { BUILTIN_DATASETS } from '../node/data/builtin.js';
import { InputError } from '../errors.js';
import { createProgress } from './progress.js';
import { guardRun } from './failure.js';
import { intOption, startBackend, pathTag, workersOption, finiteOption, listOption, boundsOption, backendOption, queueOption, queueLine } from './common.js';

/** `stepSize` → `step-size`. */
function kebab(name: string): string {
  return name.replace(/[A-Z]/g, (m) => `-${m.toLowerCase()}`);
}

/** Attribute names of the command's own options; an attack parameter of the same name gets no option of its own. */
const COMMON_OPTIONS = ['model', 'dataset', 'attack', 'list', 'norm', 'eps', 'targeted', 'n', 'batchSize', 'seed', 'backend', 'bounds', 'mean', 'std', 'out', 'queue', 'resume', 'progress', 'help', 'generator'];

/** Every attack parameter by name, with the attacks that take it (the CLI accepts the union). */
function paramUnion(): Map<string, { attack: Attack; spec: ParamSpec }[]> {
  const byName = new Map<string, { attack: Attack; spec: ParamSpec }[]>();
  for (const attack of ATTACKS) {
    for (const spec of attack.params) {
      if (COMMON_OPTIONS.includes(spec.name)) continue;
      const list = byName.get(spec.name) ?? [];
      list.push({ attack, spec });
      byName.set(spec.name, list);
    }
  }
  return byName;
}

/** Parses the text of a parameter option by the chosen attack's spec (range checks are the attack's). */
function parseParam(spec: ParamSpec, raw: string | boolean, option: string): unknown {
  if (spec.type === 'boolean') {
    if (raw === true) return true;
    const v = String(raw).toLowerCase();
    if (['true', 'yes', '1'].includes(v)) return true;
    if (['false', 'no', '0'].includes(v)) return false;
    throw new InputError(option, `expected true or false, got "${raw}"`);
  }
  if (spec.type === 'string') return String(raw);
  const n = Number(raw);
  if (String(raw).trim() === '' || !Number.isFinite(n)) throw new InputError(option, `expected a number, got "${raw}"`);
  return n;
}

/** Library argument names → the options that set them, for error messages. */
function optionName(argument: string, params: Set<string>): string | undefined {
  const map: Record<string, string> = { 'preprocess.mean': '--mean', 'preprocess.std': '--std' };
  if (map[argument]) return map[argument];
  if (COMMON_OPTIONS.includes(argument) || params.has(argument)) return `--${kebab(argument)}`;
  return undefined;
}

/** `advlab attack --list`: every attack with its kind, access, norms, targeting, paper and parameters. */
export function describeAttacks(): string {
  const lines: string[] = [];
  for (const a of ATTACKS) {
    lines.push(`${a.name}: ${a.title}`);
    lines.push(`  kind ${a.kind}, access ${a.access}, norms ${a.norms.join(', ')}, targeted ${a.targeted === 'both' ? 'yes (untargeted by default)' : a.targeted === 'targeted' ? 'only' : 'no'}`);
    lines.push(`  paper: ${a.paper}`);
    if (!a.params.length) lines.push('  parameters: none');
    else {
      lines.push('  parameters:');
      for (const p of a.params) {
        const range = [p.min !== undefined ? `>= ${p.min}` : '', p.max !== undefined ? `<= ${p.max}` : '', p.choices ? `one of ${p.choices.join(', ')}` : ''].filter(Boolean).join(', ');
        const flag = `--${kebab(p.name)} ${p.type === 'boolean' ? '[true|false]' : `<${p.type}>`}`;
        lines.push(`    ${flag.padEnd(28)} ${p.description} (default ${JSON.stringify(p.default)}${range ? `; ${range}` : ''})`);
      }
    }
  }
  lines.push(`${GENERATOR_ATTACK}: AdvGAN, a perturbation generator trained by advlab advgan (one forward pass per image)`);
  lines.push('  kind fixed-budget, access none (the generator never queries the model), norms linf, targeted: toward the class the generator was trained for');
  lines.push('  paper: Xiao et al., IJCAI 2018');
  lines.push(`  parameters: --generator <dir> (required: an advlab advgan run folder); --eps defaults to the generator's own`);
  return lines.join('\n') + '\n';
}

/** `advlab attack`: a thin shell over {@link attackRun}. */
export function attackCommand(): Command {
  const cmd = new Command('attack')
    .description('attack a trained model on a class-balanced subset of a test split; writes result.json, adversarial examples (NPY) and grid.png')
    .option('--model <path>', 'a trained model: saved model folder, model.json, or an advlab train run folder (required; zoo names are refused: they are untrained)')
    .option('--dataset <name|path>', `built-in (${BUILTIN_DATASETS.join(', ')}) or a path; the test split is attacked`, ATTACK_DEFAULTS.dataset)
    .option('--attack <name>', `attack to run: ${ATTACKS.map((a) => a.name).join(', ')}, ${GENERATOR_ATTACK} (required; see --list)`)
    .option('--generator <dir>', `with --attack ${GENERATOR_ATTACK}: a trained generator (an advlab advgan run folder)`)
    .option('--list', 'list every attack with its norms and parameters, then exit')
    .addOption(new Option('--norm <name>', "perturbation norm (default: the attack's first, linf for fgsm and pgd)").choices(NORMS))
    .option('--eps <x>', "perturbation budget in the input's scale (images in [0, 1]: e.g. 0.3 linf for mnist, not 76)", finiteOption('--eps'))
    .addOption(new Option('--targeted <mode>', 'targeted attack toward a random wrong class or the least likely class (default: untargeted)').choices(['random', 'least-likely']))
    .option('--n <count>', `images: a class-balanced prefix of the test split (default: ${ATTACK_DEFAULTS.n}, or the whole split if smaller)`, intOption('--n', 1))
    .option('--batch-size <n>', 'images per batch', intOption('--batch-size', 1), ATTACK_DEFAULTS.batchSize)
    .option('--seed <n>', 'random seed (random starts, targets)', intOption('--seed'), ATTACK_DEFAULTS.seed)
    .option('--workers <n|auto>', 'worker threads attacking batches in parallel; auto: one per core on wasm/cpu (results do not depend on it)', workersOption, 'auto')
    .addOption(new Option('--bounds <min,max>', "the model's valid input range, in the images' scale").argParser(boundsOption).default([0, 1], '0,1'))
    .option('--mean <values>', 'normalization inside the classifier: per-channel mean (comma-separated), applied as (x - mean) / std', listOption('--mean'))
    .option('--std <values>', 'per-channel std for --mean (default 1)', listOption('--std'))
    .option('--out <dir>', 'output folder (default: runs/<model>-<attack>)')
    .addOption(queueOption())
    .option('--resume', 'with --queue: reattach to the distributed run in <out> and collect the jobs its workers finished', false)
    .addOption(backendOption())
    .option('--no-progress', 'plain lines instead of a progress bar');

  const union = paramUnion();
  for (const [name, entries] of union) {
    const types = [...new Set(entries.map((e) => e.spec.type))];
    const value = types.length === 1 && types[0] === 'boolean' ? '[bool]' : `<${types.join('|')}>`;
    const help =
      entries.length === 1
        ? `${entries[0].attack.name}: ${entries[0].spec.description} (default ${JSON.stringify(entries[0].spec.default)})`
        : `parameter of ${entries.map((e) => `${e.attack.name} (default ${JSON.stringify(e.spec.default)})`).join(', ')}; see --list`;
    cmd.option(`--${kebab(name)} ${value}`, `attack parameter, ${help}`);
  }

  cmd.action(async (o) => {
    if (o.list) {
      process.stdout.write(describeAttacks());
      return;
    }
    const names = [...ATTACKS.map((a) => a.name), GENERATOR_ATTACK].join(', ');
    if (!o.attack) throw new InputError('--attack', `required: one of ${names} (see advlab attack --list)`);
    if (!o.model) throw new InputError('--model', 'required: a trained model (a saved model folder or an advlab train run folder)');
    const attack = o.attack === GENERATOR_ATTACK ? { name: GENERATOR_ATTACK, params: [] as ParamSpec[] } : findAttack(o.attack);
    if (!attack) throw new InputError('--attack', `unknown attack "${o.attack}"; expected one of ${names} (see advlab attack --list)`);
    const params: Record<string, unknown> = {};
    for (const name of union.keys()) {
      const raw = o[name] as string | boolean | undefined;
      if (raw === undefined) continue;
      const option = `--${kebab(name)}`;
      const spec = attack.params.find((p) => p.name === name);
      if (!spec) throw new InputError(option, `not a parameter of ${attack.name}; it takes ${attack.params.map((p) => `--${kebab(p.name)}`).join(', ') || 'no parameters'}`);
      params[name] = parseParam(spec, raw, option);
    }
    if (o.std && !o.mean) throw new InputError('--std', 'needs --mean');

    const progress = createProgress(process.stdout, o.progress);
    const backend = await startBackend(o.backend, undefined, (l) => progress.log(l));
    const modelTag = pathTag(String(o.model), 'model');
    const out: string = o.out ?? join('runs', `${modelTag}-${attack.name}`);
    const paramNames = new Set(union.keys());
    let result;
    try {
      result = await guardRun(out, 'none', progress, () => attackRun(
        {
          model: o.model,
          dataset: o.dataset,
          attack: attack.name,
          generator: o.generator,
          out,
          norm: o.norm,
          eps: o.eps,
          targeted: o.targeted,
          n: o.n,
          batchSize: o.batchSize,
          seed: o.seed,
          workers: o.workers,
          queue: o.queue,
          resume: o.resume,
          params,
          bounds: o.bounds,
          preprocess: o.mean ? { mean: o.mean, std: o.std ?? 1 } : undefined,
          onProgress: (e) => {
            if (e.type === 'dataset') {
              const d = e.dataset;
              progress.log(`dataset: ${d.name} (${e.count} of ${d.test.count} test images, class-balanced)`);
            } else if (e.type === 'model') progress.log(`model: ${e.path} (${e.parameters} parameters)`);
            else if (e.type === 'queue') progress.log(queueLine(e.queue));
            else if (e.type === 'start') {
              if (e.workers > 1 && !o.queue) progress.log(`workers: ${e.workers} threads attack batches in parallel`);
              progress.start(e.batches, `${e.attack} (batches)`);
            }
            else if (e.type === 'batch') progress.update(e.batch, { images: `${e.done}/${e.total}` });
          },
        },
        backend,
      ));
    } catch (e) {
      // Name the command-line option, not the library argument, in the message.
      if (e instanceof InputError) {
        const option = optionName(e.argument, paramNames);
        if (option) throw new InputError(option, e.message.slice(e.argument.length + 2));
      }
      throw e;
    }
    const pct = (x: number) => `${(x * 100).toFixed(2)}%`;
    const fmt = (x: number | null) => (x === null ? 'n/a' : x.toPrecision(3));
    progress.stop(
      `${result.attack.name} ${result.norm} eps ${result.eps ?? 'none'}: clean accuracy ${pct(result.cleanAccuracy)}, robust accuracy ${pct(result.robustAccuracy)}, ` +
        `success rate ${pct(result.successRate)} (${result.successes}/${result.correct}) in ${result.seconds.toFixed(1)}s`,
    );
    progress.log(
      `perturbation of successes: median l2 ${fmt(result.perturbation.l2.median)}, median linf ${fmt(result.perturbation.linf.median)}, median l0 ${fmt(result.perturbation.l0.median)}; ` +
        `${result.gradientsPerImage.toFixed(1)} gradients and ${result.queriesPerImage.toFixed(1)} queries per image`,
    );
    const r = result.rejected;
    if (r.outOfBounds + r.outsideBall + r.nonFinite > 0) {
      progress.log(`rejected candidates: ${r.outOfBounds} out of bounds, ${r.outsideBall} outside the eps-ball, ${r.nonFinite} non-finite`);
    }
    progress.log(`result: ${join(out, 'result.json')}`);
  });
  return cmd;
}
