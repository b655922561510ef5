/**
 * Fail before the work, not after it (issue 20). Every command checks the
 * paths it will write, and opens the inputs it reads only late, before it
 * loads data, builds a model or runs an epoch or a batch; the error names the
 * option and the path, exit code 2, on one line. Other failures are one line
 * too (exit 1), the stack trace only with ADVLAB_DEBUG=1.
 *
 * How the failures are made real: these tests run as root in CI and in the
 * sandbox, and root ignores permission bits, so a chmod'ed folder would still
 * take files. Instead: a regular file where a folder is needed (ENOTDIR, or
 * the check's own "is a file"), and /proc, which takes no new files for
 * anyone (ENOENT), as the folder that is not writable.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { advlabAsync, type Run } from './fixtures/cli.js';
import { TASKS_URL } from './fixtures/pool-tasks.js';
import { initBackend } from '../src/node/backend.js';
import { WorkerPool } from '../src/node/worker-pool.js';
import { buildModel } from '../src/models/zoo.js';
import { saveModel } from '../src/node/model-files.js';
import { buildGan } from '../src/generative/gan/architectures.js';
import { buildAae } from '../src/generative/aae/architectures.js';
import { checkOutputFile, checkOutputFolder } from '../src/node/paths.js';
import { describeError, errorReport, guardRun, RunFailure } from '../src/cli/failure.js';
import { CheckpointFolder } from '../src/node/checkpoint.js';
import { FileFormatError, InputError } from '../src/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'advlab-fail-early-'));
/** An existing regular file: the typo of the issue (`--out notes.txt`). */
const notes = join(dir, 'notes.txt');
/** An existing folder in which nobody, root included, can create a file. */
const unwritable = '/proc/self';
/** A folder that does not exist and cannot be created: its parent is /proc. */
const uncreatable = '/proc/advlab-no-such-folder/run';
const classifier = join(dir, 'classifier');
/** A Layers model for 8x8 images: valid files, the wrong data for mnist. */
const small = join(dir, 'small-classifier');
/** model.json that is not JSON. */
const corruptJson = join(dir, 'corrupt-json');
/** A classifier whose weights file lost its last bytes. */
const truncated = join(dir, 'truncated');
const generator = join(dir, 'generator');
const truncatedGenerator = join(dir, 'truncated-generator');
const aae = join(dir, 'aae');
const truncatedAae = join(dir, 'truncated-aae');

/**
 * A refusal must come fast: a process start (tsx, the wasm backend) plus at
 * most the dataset's loading. A few seconds on an idle machine; the bound is
 * generous because the test machine is shared with other heavy jobs.
 */
const REFUSAL_SECONDS = 30;

before(async () => {
  await initBackend({ backend: 'wasm' });
  writeFileSync(notes, 'my notes\n');
  const mnist = buildModel('mlp', { inputShape: [28, 28, 1], numClasses: 10, seed: 0 });
  await saveModel(mnist, classifier);
  mnist.dispose();
  const tiny = buildModel('mlp', { inputShape: [8, 8, 1], numClasses: 10, seed: 0 });
  await saveModel(tiny, small);
  tiny.dispose();
  mkdirSync(corruptJson);
  writeFileSync(join(corruptJson, 'model.json'), '{"modelTopology": ');
  cpSync(classifier, truncated, { recursive: true });
  truncateSync(join(truncated, 'weights.bin'), statSync(join(truncated, 'weights.bin')).size - 8);
  const gan = buildGan('mlp', { imageShape: [28, 28, 1], numClasses: 10, seed: 0, latentDim: 8 });
  await saveModel(gan.generator, generator);
  gan.generator.dispose();
  gan.discriminator.dispose();
  cpSync(generator, truncatedGenerator, { recursive: true });
  truncateSync(join(truncatedGenerator, 'weights.bin'), 100);
  const ae = buildAae('mlp', { imageShape: [28, 28, 1], latentDim: 8, seed: 0 });
  await saveModel(ae.encoder, join(aae, 'encoder'));
  await saveModel(ae.decoder, join(aae, 'decoder'));
  for (const m of [ae.encoder, ae.decoder, ae.discriminator]) m.dispose();
  cpSync(aae, truncatedAae, { recursive: true });
  truncateSync(join(truncatedAae, 'decoder', 'weights.bin'), 100);
});

/** A case: the arguments, the one line expected on stderr, and files that must not exist afterwards (no work done). */
type Case = { args: string[]; line: RegExp; absent?: string[] };
const out = (name: string) => join(dir, 'runs', name);
const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const p = (path: string) => escape(path);

/** Runs the cases two at a time (each is a fresh node process) and checks each refusal. */
async function refuses(cases: Case[]): Promise<void> {
  const runs: { run: Run; seconds: number }[] = [];
  for (let i = 0; i < cases.length; i += 2) {
    runs.push(
      ...(await Promise.all(
        cases.slice(i, i + 2).map(async (c) => {
          const t0 = performance.now();
          const run = await advlabAsync(c.args);
          return { run, seconds: (performance.now() - t0) / 1000 };
        }),
      )),
    );
  }
  cases.forEach((c, i) => {
    const { run, seconds } = runs[i];
    const what = `advlab ${c.args.join(' ')}\n${run.stderr}`;
    assert.equal(run.code, 2, what);
    // One line naming the option and the path; no stack trace.
    assert.equal(run.stderr.split('\n').length, 2, `one line: ${what}`);
    assert.match(run.stderr.trimEnd(), c.line, what);
    assert.doesNotMatch(run.stderr, /^\s+at /m, what);
    // Before any work: no epoch, batch or attack was started, nothing of the run written.
    assert.doesNotMatch(run.stdout, /epoch \d|\(batches\)|^eps |workers:/m, what);
    for (const f of c.absent ?? []) assert.ok(!existsSync(f), `${f} exists after: ${what}`);
    assert.ok(seconds < REFUSAL_SECONDS, `refused after ${seconds.toFixed(1)} s: ${what}`);
  });
}

test('checkOutputFolder and checkOutputFile: what is refused, named by the argument; a good folder passes and nothing is created', () => {
  const refused = (f: () => void, pattern: RegExp) => assert.throws(f, (e: unknown) => e instanceof InputError && e.argument === 'out' && pattern.test(e.message));
  refused(() => checkOutputFolder(notes, 'out'), new RegExp(`^out: ${p(notes)} is a file, not a folder`));
  refused(() => checkOutputFolder(join(notes, 'run'), 'out'), new RegExp(`${p(join(notes, 'run'))} cannot be created as a folder: ${p(notes)} is a file`));
  refused(() => checkOutputFolder(unwritable, 'out'), /^out: \/proc\/self is not writable: a test file could not be created in it \(E[A-Z]+: /);
  refused(() => checkOutputFolder(uncreatable, 'out'), /^out: \/proc\/advlab-no-such-folder\/run cannot be created: \/proc is not writable/);
  refused(() => checkOutputFolder('', 'out'), /an output folder is required/);
  // Inside the folder: a file where a sub-folder goes, a folder where a file goes.
  const run = join(dir, 'layout');
  mkdirSync(join(run, 'result.json'), { recursive: true });
  writeFileSync(join(run, 'checkpoint'), '');
  refused(() => checkOutputFolder(run, 'out', { folders: ['checkpoint'] }), new RegExp(`${p(join(run, 'checkpoint'))} is a file, but the run writes a folder of that name`));
  refused(() => checkOutputFolder(run, 'out', { files: ['result.json'] }), new RegExp(`${p(join(run, 'result.json'))} is a folder, but the run writes a file of that name`));
  refused(() => checkOutputFile(join(dir, 'no-such-folder', 'x.png'), 'out'), new RegExp(`the folder of .*x\\.png does not exist: ${p(join(dir, 'no-such-folder'))}`));
  refused(() => checkOutputFile(join(notes, 'x.png'), 'out'), new RegExp(`${p(notes)} is a file, so .*x\\.png cannot be written under it`));
  refused(() => checkOutputFile(join(unwritable, 'x.png'), 'out'), /\/proc\/self\/x\.png cannot be created: \/proc\/self is not writable/);
  refused(() => checkOutputFile(dir, 'out'), /is a folder; expected a file name/);

  const fresh = join(dir, 'fresh', 'deeper', 'run');
  checkOutputFolder(fresh, 'out', { folders: ['checkpoint'], files: ['result.json'] });
  assert.ok(!existsSync(join(dir, 'fresh')), 'a check creates nothing');
  const existing = join(dir, 'existing');
  mkdirSync(join(existing, 'checkpoint'), { recursive: true });
  checkOutputFolder(existing, 'out', { folders: ['checkpoint'], files: ['result.json'] });
  checkOutputFile(join(existing, 'samples.png'), 'out');
  assert.deepEqual(readdirSync(existing), ['checkpoint'], 'the probe file is removed');
  assert.deepEqual(readdirSync(join(existing, 'checkpoint')), []);
});

test('failure messages: one line saying what failed and where the last checkpoint is; the stack only with ADVLAB_DEBUG=1', async () => {
  // A system error reads as the operation and the path.
  let system: unknown;
  try {
    writeFileSync(join(notes, 'x'), '');
  } catch (e) {
    system = e;
  }
  assert.equal(describeError(system), `cannot open ${join(notes, 'x')}: not a directory (ENOTDIR)`);
  // A bug keeps its class name, folded onto one line.
  assert.equal(describeError(new TypeError('x is undefined\n  in y')), 'TypeError: x is undefined in y');

  // A run folder with a checkpoint: the message says where it is and how to continue.
  const run = join(dir, 'failed-run');
  new CheckpointFolder(join(run, 'checkpoint')).saveSync('epoch-2', { epoch: 2 }, { 'model.bin': new Uint8Array(4) });
  const failure = await guardRun(run, 'epochs', { abort: () => {} }, async () => {
    throw system;
  }).catch((e: unknown) => e);
  assert.ok(failure instanceof RunFailure);
  const report = errorReport(failure, false);
  assert.equal(
    report,
    `advlab: cannot open ${join(notes, 'x')}: not a directory (ENOTDIR); the last checkpoint (epoch 2) is intact in ${join(run, 'checkpoint', 'epoch-2')}: ` +
      'run the same command with --resume to continue from it (set ADVLAB_DEBUG=1 for the stack trace)\n',
  );
  const debug = errorReport(failure, true).split('\n');
  assert.match(debug[0], /^advlab: cannot open .*; the last checkpoint \(epoch 2\) is intact in .*--resume to continue from it$/);
  assert.match(debug[1], /^Error: ENOTDIR: not a directory, open /);
  assert.match(debug[2], /^\s+at /, 'the stack follows');
  // Bad input is not wrapped: it stays one line naming the option (exit code 2 in the CLI).
  const bad = await guardRun(run, 'epochs', { abort: () => {} }, async () => {
    throw new InputError('--out', 'nope');
  }).catch((e: unknown) => e);
  assert.ok(bad instanceof InputError);
  assert.equal(errorReport(bad, false), 'advlab: --out: nope\n');
  // A file the caller named is the caller's fault, as the option that named it.
  assert.equal(errorReport(new InputError('--model', `${join(truncated, 'weights.bin')}: truncated`, { cause: new FileFormatError(truncated, 'x') }), false), `advlab: --model: ${join(truncated, 'weights.bin')}: truncated\n`);
});

test('an error thrown in a pool worker ends as one line naming the worker', async () => {
  const pool = await WorkerPool.start({ size: 1, backend: 'wasm' });
  try {
    const target = join(notes, 'from-worker.bin');
    const error = await pool.run({ module: TASKS_URL, name: 'writeFile' }, [{ path: target }]).catch((e: unknown) => e);
    const report = errorReport(error, false);
    assert.equal(report, `advlab: cannot open ${target}: not a directory (ENOTDIR) (in pool worker 0) (set ADVLAB_DEBUG=1 for the stack trace)\n`);
    assert.match(errorReport(error, true), /\n\s+in pool worker 0 \(.*pool-tasks\.ts#writeFile/, 'with ADVLAB_DEBUG=1, the worker stack');
  } finally {
    await pool.close();
  }
});

test('advlab train: --out an existing file, a folder that takes no files, a file in the way inside it; a missing, corrupt or mismatched --baseline: refused before the first epoch', async () => {
  const base = ['train', '--model', 'mlp', '--dataset', 'mnist', '--epochs', '1', '--no-progress'];
  const inside = out('train-file-in-the-way');
  mkdirSync(inside, { recursive: true });
  writeFileSync(join(inside, 'checkpoint'), '');
  const defended = [...base, '--defense', 'fgsm-rs', '--defense-eps', '0.1', '--workers', '1'];
  await refuses([
    // The example, verbatim apart from the folder.
    { args: [...base, '--out', notes], line: new RegExp(`^advlab: --out: ${p(notes)} is a file, not a folder`) },
    { args: [...base, '--out', unwritable], line: /^advlab: --out: \/proc\/self is not writable: a test file could not be created in it/ },
    { args: [...base, '--out', uncreatable], line: /^advlab: --out: \/proc\/advlab-no-such-folder\/run cannot be created: \/proc is not writable/ },
    { args: [...base, '--out', inside], line: new RegExp(`^advlab: --out: ${p(join(inside, 'checkpoint'))} is a file, but the run writes a folder of that name`) },
    { args: [...defended, '--baseline', join(dir, 'no-such-baseline'), '--out', out('b1')], line: /^advlab: --baseline: no saved model at ".*no-such-baseline"/, absent: [out('b1')] },
    { args: [...defended, '--baseline', corruptJson, '--out', out('b2')], line: new RegExp(`^advlab: --baseline: ${p(join(corruptJson, 'model.json'))}: not a TF.js model: invalid JSON`), absent: [out('b2')] },
    { args: [...defended, '--baseline', truncated, '--out', out('b3')], line: new RegExp(`^advlab: --baseline: ${p(join(truncated, 'weights.bin'))}: truncated`), absent: [out('b3')] },
    // Read against the data: after the dataset is loaded, still before the first epoch.
    { args: [...defended, '--baseline', small, '--out', out('b4')], line: /^advlab: --baseline: .*small-classifier: the model expects inputs of shape \[8, 8, 1\] but got images of shape \[28, 28, 1\]$/, absent: [join(out('b4'), 'checkpoint')] },
  ]);
});

test('advlab attack: --out an existing file or a folder that takes no files; a corrupt --model: refused before the attack', async () => {
  const base = ['attack', '--attack', 'fgsm', '--eps', '0.1', '--n', '10', '--no-progress'];
  await refuses([
    { args: [...base, '--model', classifier, '--out', notes], line: new RegExp(`^advlab: --out: ${p(notes)} is a file, not a folder`) },
    { args: [...base, '--model', classifier, '--out', unwritable], line: /^advlab: --out: \/proc\/self is not writable/ },
    { args: [...base, '--model', truncated, '--out', out('a1')], line: new RegExp(`^advlab: --model: ${p(join(truncated, 'weights.bin'))}: truncated`), absent: [out('a1')] },
  ]);
});

test('advlab eval: --out an existing file or a folder that takes no files; a missing or corrupt --defense aae:<folder>: refused before the first batch', async () => {
  const base = ['eval', '--model', classifier, '--eps', '0.1', '--n', '10', '--corruptions', 'none', '--no-progress'];
  await refuses([
    { args: [...base, '--out', notes], line: new RegExp(`^advlab: --out: ${p(notes)} is a file, not a folder`) },
    { args: [...base, '--out', uncreatable], line: /^advlab: --out: \/proc\/advlab-no-such-folder\/run cannot be created: \/proc is not writable/ },
    { args: [...base, '--defense', `aae:${join(dir, 'no-such-aae')}`, '--out', out('e1')], line: /^advlab: --defense: .*no-such-aae is not an advlab aae run folder/, absent: [out('e1')] },
    { args: [...base, '--defense', `aae:${truncatedAae}`, '--out', out('e2')], line: new RegExp(`^advlab: --defense: ${p(join(truncatedAae, 'decoder', 'weights.bin'))}: truncated`), absent: [out('e2')] },
  ]);
});

test('advlab gan, gan sample, gan eval: output paths and late-read inputs (--classifier, the generator) refused before any work', async () => {
  const train = ['gan', '--arch', 'mlp', '--epochs', '1', '--train-n', '64', '--no-progress'];
  await refuses([
    { args: [...train, '--out', notes], line: new RegExp(`^advlab: --out: ${p(notes)} is a file, not a folder`) },
    { args: [...train, '--out', unwritable], line: /^advlab: --out: \/proc\/self is not writable/ },
    { args: [...train, '--classifier', truncated, '--out', out('g1')], line: new RegExp(`^advlab: --classifier: ${p(join(truncated, 'weights.bin'))}: truncated`), absent: [out('g1')] },
    { args: [...train, '--classifier', corruptJson, '--out', out('g2')], line: /^advlab: --classifier: .*model\.json: not a TF\.js model: invalid JSON/, absent: [out('g2')] },
    // gan sample: the file's folder must exist and take files; the generator is opened first.
    { args: ['gan', 'sample', '--model', generator, '--out', join(notes, 'x.png')], line: new RegExp(`^advlab: --out: ${p(notes)} is a file, so .*x\\.png cannot be written under it`) },
    { args: ['gan', 'sample', '--model', generator, '--out', join(unwritable, 'x.png')], line: /^advlab: --out: \/proc\/self\/x\.png cannot be created: \/proc\/self is not writable/ },
    { args: ['gan', 'sample', '--model', generator, '--out', join(dir, 'no-such-folder', 'x.npy')], line: /^advlab: --out: the folder of .*x\.npy does not exist/, absent: [join(dir, 'no-such-folder')] },
    { args: ['gan', 'sample', '--model', truncatedGenerator, '--out', join(dir, 's.png')], line: new RegExp(`^advlab: --model: ${p(join(truncatedGenerator, 'weights.bin'))}: truncated`), absent: [join(dir, 's.png')] },
    // gan eval: its JSON file, the generator and the classifier, all before the dataset and the samples.
    { args: ['gan', 'eval', '--model', generator, '--dataset', 'mnist', '--n', '20', '--out', notes + '/e.json'], line: new RegExp(`^advlab: --out: ${p(notes)} is a file`) },
    { args: ['gan', 'eval', '--model', generator, '--dataset', 'mnist', '--n', '20', '--out', join(unwritable, 'e.json')], line: /^advlab: --out: .*e\.json cannot be created: \/proc\/self is not writable/ },
    { args: ['gan', 'eval', '--model', corruptJson, '--dataset', 'mnist', '--n', '20'], line: /^advlab: --model: .*model\.json: not a TF\.js Layers model: invalid JSON/ },
    { args: ['gan', 'eval', '--model', generator, '--dataset', 'mnist', '--n', '20', '--classifier', truncated, '--out', join(dir, 'e.json')], line: /^advlab: --classifier: .*weights\.bin: truncated/, absent: [join(dir, 'e.json')] },
  ]);
});

test('advlab aae: --out an existing file, a folder that takes no files, a file in the way inside it: refused before the first epoch', async () => {
  const base = ['aae', '--epochs', '1', '--train-n', '100', '--no-progress'];
  const inside = out('aae-file-in-the-way');
  mkdirSync(inside, { recursive: true });
  writeFileSync(join(inside, 'grids'), '');
  await refuses([
    { args: [...base, '--out', notes], line: new RegExp(`^advlab: --out: ${p(notes)} is a file, not a folder`) },
    { args: [...base, '--out', unwritable], line: /^advlab: --out: \/proc\/self is not writable/ },
    { args: [...base, '--out', inside], line: new RegExp(`^advlab: --out: ${p(join(inside, 'grids'))} is a file, but the run writes a folder of that name`), absent: [join(inside, 'checkpoint')] },
  ]);
  assert.equal(readFileSync(notes, 'utf8'), 'my notes\n', 'the file given as --out is untouched');
});
