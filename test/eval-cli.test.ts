import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { readNpy } from '../src/node/data/formats/npy.js';
import { loadDataset } from '../src/node/data/load.js';
import { balancedSubset } from '../src/data/subset.js';
import { SANITY_CHECK_IDS } from '../src/robustness/sanity.js';
import { advlab, advlabAsync, advlabSpawnArgs, compileSchema, readJson, type Json, type Run } from './fixtures/cli.js';

/** Keys whose values are wall-clock times or say how the run went, not what it found. */
const TIME_KEYS = ['seconds', 'imagesPerSecond', 'startedAt', 'finishedAt', 'resumed'];

/**
 * A result.json without its times (at any depth: stage, sweep and minimal
 * `seconds` too), without options.out, and without any `extra` keys.
 */
function stripTimes(result: Json, extra: string[] = []): Json {
  const drop = new Set([...TIME_KEYS, ...extra]);
  const walk = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(walk);
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).filter(([k]) => !drop.has(k)).map(([k, x]) => [k, walk(x)]));
    return v;
  };
  const out = walk(result) as Json;
  delete out.options.out;
  return out;
}

const NPY_FILES = ['adversarial.npy', 'labels.npy', 'predictions.npy', 'broken-by.npy'];
/** The checks of sanity.ts, then eval-run's comparison of the minimal perturbations with the suite. */
const SANITY_IDS: string[] = [...SANITY_CHECK_IDS, 'minimal-vs-suite'];

const dir = mkdtempSync(join(tmpdir(), 'advlab-eval-'));
const modelDir = join(dir, 'mlp');

function schemaValidator() {
  // The schema knows exactly the checks the code runs.
  assert.deepEqual(readJson('schemas/eval.result.schema.json').definitions.sanityCheck.properties.id.enum, SANITY_IDS);
  return compileSchema('schemas/eval.result.schema.json');
}

before(() => {
  const r = advlab(['train', '--model', 'mlp', '--dataset', 'mnist', '--epochs', '1', '--out', modelDir, '--no-progress']);
  assert.equal(r.code, 0, r.stderr);
});

test('advlab eval writes result.json matching its schema, consistent NPY arrays and report.html', () => {
  const out = join(dir, 'basic');
  const n = 40;
  const r = advlab([
    'eval', '--model', modelDir, '--attacks', 'fgsm,bim', '--eps', '0.1,0.05', '--n', String(n), '--batch-size', '8',
    '--corruptions', 'brightness,contrast', '--sanity-sample', '20', '--out', out, '--no-progress',
  ]);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.match(lines[0], /^backend: wasm /);
  assert.equal(lines[lines.length - 1], `result: ${join(out, 'result.json')}`);
  assert.ok(lines.includes(`report: ${join(out, 'report.html')}`));

  const result = readJson(join(out, 'result.json'));
  const validate = schemaValidator();
  assert.ok(validate(result), JSON.stringify(validate.errors));
  // The schema is not vacuous.
  assert.equal(validate({ ...result, robustAccuracy: 42 }), false);
  assert.equal(validate({ ...result, norm: 'l3' }), false);
  assert.equal(validate({ ...result, norm: 'l1' }), false);
  const { cleanAccuracy: _dropped, ...missing } = result;
  assert.equal(validate(missing), false);
  assert.equal(validate({ ...result, unexpected: 1 }), false);
  assert.equal(validate({ ...result, confidenceInterval: [0.1] }), false);
  assert.equal(validate({ ...result, minimal: 'deepfool' }), false);
  assert.equal(validate({ ...result, sweep: [{ ...result.sweep[0], robustAccuracy: -0.5 }] }), false);
  assert.equal(validate({ ...result, sanity: { ...result.sanity, checks: [{ ...result.sanity.checks[0], verdict: 'fail' }] } }), false);
  assert.equal(validate({ ...result, minimal: null, corruptions: null }), true);

  assert.equal(result.command, 'eval');
  assert.equal(result.count, n);
  assert.equal(result.norm, 'linf');
  assert.deepEqual(result.options.eps, [0.1, 0.05]);
  assert.equal(result.eps, 0.1, 'the headline is the first --eps value');
  assert.deepEqual(result.options.attacks, ['fgsm', 'bim']);
  assert.equal(result.suite.name, 'custom');
  assert.deepEqual(result.suite.stages.map((s: Json) => s.name), ['fgsm', 'bim']);
  assert.equal(result.resumed, false);
  assert.ok(result.cleanAccuracy > 0.5, `clean accuracy ${result.cleanAccuracy}`);
  assert.ok(result.robustAccuracy <= result.cleanAccuracy);

  // The sweep: ascending eps, the headline entry is the headline.
  assert.deepEqual(result.sweep.map((s: Json) => s.eps), [0.05, 0.1]);
  const head = result.sweep.find((s: Json) => s.eps === result.eps);
  assert.equal(result.robustAccuracy, head.robustAccuracy);
  assert.deepEqual(result.confidenceInterval, head.confidenceInterval);
  const [lo, hi] = result.confidenceInterval;
  assert.ok(lo <= result.robustAccuracy && result.robustAccuracy <= hi, `${lo} <= ${result.robustAccuracy} <= ${hi}`);
  const misclassified = Math.round((1 - result.cleanAccuracy) * n);
  for (const s of result.sweep) {
    assert.equal(s.robustAccuracy, s.robustCount / n);
    const broken = s.stages.reduce((a: number, st: Json) => a + st.broken, 0);
    assert.equal(misclassified + broken + s.robustCount, n, `eps ${s.eps}: every image is misclassified, broken by one stage, or robust`);
    assert.equal(s.stages[s.stages.length - 1].robustAccuracyAfter, s.robustAccuracy);
    assert.equal(s.perClass.reduce((a: number, c: Json) => a + c.count, 0), n);
    assert.equal(s.perClass.reduce((a: number, c: Json) => a + c.robustAccuracy * c.count, 0), s.robustCount);
  }

  // brokenBy counts: every image once; the stage counts are the headline's.
  const counts = result.brokenBy as Record<string, number>;
  assert.deepEqual(Object.keys(counts).sort(), ['bim', 'fgsm', 'misclassified', 'robust']);
  assert.equal(Object.values(counts).reduce((a, b) => a + b, 0), n);
  assert.equal(counts.misclassified, misclassified);
  assert.equal(counts.robust, head.robustCount);
  for (const st of head.stages) assert.equal(counts[st.name], st.broken, st.name);

  // Minimal perturbations run by default with a sweep; the two corruptions at five severities.
  assert.equal(result.minimal.attack, 'deepfool');
  assert.equal(result.minimal.attacked, n - misclassified);
  assert.deepEqual(result.options.corruptions, ['brightness', 'contrast']);
  assert.equal(result.corruptions.results.length, 10);
  assert.deepEqual(Object.keys(result.corruptions.meanAccuracy).sort(), ['brightness', 'contrast']);
  assert.equal(result.corruptions.clean, result.cleanAccuracy, 'corruptions see the same images');
  assert.deepEqual(result.sanity.checks.map((c: Json) => c.id), SANITY_IDS);

  // report.html
  const html = readFileSync(join(out, 'report.html'), 'utf8');
  assert.ok(html.length > 1000);
  assert.ok(html.includes('<svg'));

  // The arrays.
  const adv = readNpy(join(out, 'adversarial.npy'));
  assert.deepEqual([adv.shape, adv.dtype], [[n, 28, 28, 1], '<f4']);
  const labels = readNpy(join(out, 'labels.npy'));
  assert.deepEqual(labels.shape, [n]);
  assert.deepEqual(Array.from(labels.data), Array.from({ length: n }, (_, i) => i % 10));
  const preds = readNpy(join(out, 'predictions.npy'));
  assert.deepEqual([preds.shape, preds.dtype], [[2, n], '<i4']);
  const brokenBy = readNpy(join(out, 'broken-by.npy'));
  assert.deepEqual(brokenBy.shape, [n]);
  let correct = 0;
  let robust = 0;
  const byStage = [0, 0];
  for (let i = 0; i < n; i++) {
    const b = brokenBy.data[i];
    const label = labels.data[i];
    if (preds.data[i] === label) correct++;
    assert.equal(b === -2, preds.data[i] !== label, `image ${i}: misclassified iff its clean prediction is wrong`);
    if (b === -1) {
      robust++;
      assert.equal(preds.data[n + i], label, `image ${i}: robust, the final prediction is the label`);
    } else if (b >= 0) {
      byStage[b]++;
      assert.notEqual(preds.data[n + i], label, `image ${i}: broken, the final prediction is wrong`);
    } else assert.equal(b, -2);
  }
  assert.equal(correct / n, result.cleanAccuracy);
  assert.equal(robust / n, result.robustAccuracy);
  assert.deepEqual(byStage, [counts.fgsm, counts.bim]);

  // The adversarial images are valid inputs within eps (headline, linf) of the clean ones; unbroken images are the clean ones.
  const clean = balancedSubset(loadDataset('mnist').test, 10, n).images;
  const size = 28 * 28;
  let linf = 0;
  for (let i = 0; i < n; i++) {
    let d = 0;
    for (let j = i * size; j < (i + 1) * size; j++) {
      const a = adv.data[j];
      assert.ok(a >= 0 && a <= 1, `pixel ${j} = ${a}`);
      d = Math.max(d, Math.abs(a - clean[j]));
    }
    if (brokenBy.data[i] < 0) assert.equal(d, 0, `image ${i} is not broken: its adversarial image is the clean one`);
    linf = Math.max(linf, d);
  }
  assert.ok(linf <= 0.1 + 1e-6 && linf > 0.05, `linf ${linf}`);
});

test('a killed eval resumes from its checkpoint and gives the uninterrupted result', async () => {
  const args = (out: string) => [
    'eval', '--model', modelDir, '--attacks', 'fgsm,bim', '--eps', '0.1,0.05', '--n', '64', '--batch-size', '8',
    '--corruptions', 'brightness', '--sanity-sample', '20', '--out', out, '--no-progress',
  ];
  const out = join(dir, 'resume');
  const marker = join(out, 'checkpoint', 'eval-0.json');
  /** Points through both stages in the saved state of eps 0.05 (a point's next run is 2 when done). */
  const savedDone = () => {
    try {
      const next = new Int32Array(new Uint8Array(Buffer.from(readJson(marker).next.base64, 'base64')).buffer);
      return next.filter((k) => k >= 2).length;
    } catch {
      return 0;
    }
  };

  // Start a run, kill it (SIGKILL: no chance to clean up) once 16 points of the first eps are checkpointed.
  const cmd = advlabSpawnArgs(args(out));
  const child = spawn(cmd.command, cmd.args, { env: cmd.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stdout.resume();
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const exited = new Promise<void>((resolve) =>
    child.on('exit', (code, signal) => {
      exit = { code, signal };
      resolve();
    }),
  );
  const deadline = Date.now() + 90_000;
  while (savedDone() < 16) {
    if (exit) assert.fail(`the run ended (${JSON.stringify(exit)}) before ${marker} held 16 finished points: ${stderr}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      assert.fail(`${marker} did not appear within 90 s`);
    }
    await sleep(20);
  }
  child.kill('SIGKILL');
  await exited;
  assert.deepEqual(exit, { code: null, signal: 'SIGKILL' });
  assert.ok(!existsSync(join(out, 'result.json')), 'a killed run leaves no result.json');
  assert.ok(!existsSync(join(out, 'checkpoint', 'sanity.json')), 'the run was killed before its end');
  const finished = savedDone();
  assert.ok(finished >= 16 && finished < 64, `${finished} finished points at eps 0.05`);

  // Resume: the finished points are loaded, not redone.
  const resumed = advlab([...args(out), '--resume']);
  assert.equal(resumed.code, 0, resumed.stderr);
  const m = /^resumed: (\d+) points already through the suite, loaded from the checkpoint$/m.exec(resumed.stdout);
  assert.ok(m, resumed.stdout);
  assert.equal(Number(m[1]), finished, `${m[1]} points loaded, ${finished} were on disk`);
  const result = readJson(join(out, 'result.json'));
  assert.equal(result.resumed, true);

  // The same command, uninterrupted, in another folder.
  const freshOut = join(dir, 'resume-fresh');
  const fresh = advlab(args(freshOut));
  assert.equal(fresh.code, 0, fresh.stderr);
  assert.doesNotMatch(fresh.stdout, /resumed:/);
  const freshResult = readJson(join(freshOut, 'result.json'));
  assert.equal(freshResult.resumed, false);

  const a = stripTimes(result);
  const b = stripTimes(freshResult);
  assert.equal(a.sweep[0].stages[0].seconds, undefined, 'stage seconds are stripped');
  assert.equal(typeof a.sweep[0].stages[0].broken, 'number', 'the numbers are kept');
  assert.deepEqual(a, b);
  for (const f of NPY_FILES) assert.deepEqual(readFileSync(join(out, f)), readFileSync(join(freshOut, f)), f);

  // --resume with other settings is refused, and nothing is touched.
  const before = readFileSync(join(out, 'result.json'));
  for (const other of [['--seed', '1'], ['--eps', '0.05,0.1']]) {
    const r = advlab([...args(out), ...other, '--resume']);
    assert.equal(r.code, 2, `${other.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /^advlab: --resume: the checkpoint in .* was made with other settings or another model; run without --resume to start over\n$/);
    assert.deepEqual(readFileSync(join(out, 'result.json')), before);
  }
});

test('bad input exits with code 2 and one line naming the option', async () => {
  const out = join(dir, 'bad');
  const base = ['eval', '--model', modelDir, '--n', '5', '--corruptions', 'none', '--out', out, '--no-progress'];
  // advlab's own checks print one line; commander's (choices, option parsers) print one error line, then the usage.
  const cases: [string[], RegExp][] = [
    [base, /^advlab: --eps: required: the budget in the input's scale/],
    [[...base, '--eps', '-0.1'], /^advlab: --eps: must be >= 0, got -0.1$/],
    [[...base, '--eps', '0'], /^advlab: --eps: must be > 0$/],
    [[...base, '--eps', '0.1', '--suite', 'foo'], /^error: option '--suite <name>' argument 'foo' is invalid\. Allowed choices are standard, fast, quick\.$/],
    [[...base, '--eps', '0.1', '--suite', 'fast', '--audit', '0'], /^error: option '--audit <n\|full>' argument '0' is invalid\. --audit expects a number of points >= 1 or "full", got "0"$/],
    [[...base, '--eps', '0.1', '--audit', '10'], /^advlab: --audit: only the fast suite is audited \(--suite fast\)$/],
    [[...base, '--eps', '0.1', '--attacks', 'nosuch'], /^advlab: --attacks: unknown attack "nosuch"; expected apgd-ce, /],
    [[...base, '--eps', '0.1', '--corruptions', 'fog'], /^advlab: --corruptions: unknown corruption "fog"; expected "all" or /],
    [[...base, '--eps', '0.1', '--minimal', 'pgd'], /^advlab: --minimal: unknown minimal-perturbation attack "pgd"; expected deepfool, fab, cw$/],
    [[...base, '--eps', '0.1', '--workers', '0'], /^error: option '--workers <n\|auto>' argument '0' is invalid\. --workers expects an integer >= 1, got "0"$/],
    [[...base, '--eps', '0.1', '--norm', 'l1'], /^error: option '--norm <name>' argument 'l1' is invalid\. Allowed choices are linf, l2\.$/],
    [['eval', '--model', join(dir, 'no-such-model'), '--eps', '0.1', '--out', out], /^advlab: --model: no saved model at ".*no-such-model"/],
  ];
  // Two at a time: each is a fresh node process.
  const runs: Run[] = [];
  for (let i = 0; i < cases.length; i += 2) runs.push(...(await Promise.all(cases.slice(i, i + 2).map(([args]) => advlabAsync(args)))));
  cases.forEach(([args, message], i) => {
    const r = runs[i];
    const what = `${args.slice(7).join(' ') || args.join(' ')}: ${r.stderr}`;
    assert.equal(r.code, 2, what);
    const errLines = r.stderr.split('\n');
    assert.match(errLines[0], message, what);
    if (errLines[0].startsWith('advlab: ')) assert.equal(errLines.length, 2, `one line: ${what}`);
    else assert.match(r.stderr, /\n\nUsage: advlab eval \[options\]/, what);
  });
  assert.ok(!existsSync(out), 'bad input writes nothing');
});

test('--suite fast audits itself: the rest of the standard suite on a sample of its robust points, in result.json (schema) and the report', async () => {
  const out = join(dir, 'fast');
  const r = await advlabAsync(['eval', '--model', modelDir, '--suite', 'fast', '--audit', '4', '--eps', '0.05', '--n', '24', '--corruptions', 'none', '--sanity-sample', '8', '--out', out, '--no-progress']);
  assert.equal(r.code, 0, r.stderr);
  const result = readJson(join(out, 'result.json'));
  const validate = compileSchema('schemas/eval.result.schema.json');
  assert.ok(validate(result), JSON.stringify(validate.errors));
  const a = result.audit;
  assert.equal(a.reference, 'standard');
  assert.deepEqual(a.stages, ['apgd-t', 'fab-t', 'square']);
  assert.equal(a.sampled, Math.min(4, a.robustBefore));
  assert.ok(a.robustBefore > 4, `${a.robustBefore} robust after the fast stages`);
  assert.deepEqual(result.suite.stages.map((s: Json) => s.name), ['apgd-ce', 'apgd-t-malt', 'audit/apgd-t', 'audit/fab-t', 'audit/square']);
  // Every point the audit broke counts as broken: the misses, and with an escalation the rest it found.
  const auditBroken = result.brokenBy['audit/apgd-t'] + result.brokenBy['audit/fab-t'] + result.brokenBy['audit/square'];
  assert.equal(auditBroken >= a.misses && (a.escalated || auditBroken === a.misses), true);
  assert.equal(Math.round(result.robustAccuracy * 24), a.robustBefore - auditBroken);
  assert.match(r.stdout, /^audit: the rest of the standard suite \(apgd-t, fab-t, square\) on \d+ of the \d+ points the fast suite left robust: \d+ missed/m);
  assert.match(readFileSync(join(out, 'report.html'), 'utf8'), /<section id="audit">/);
});

test('--workers 2 gives the same result.json and arrays as --workers 1', async () => {
  const run = async (workers: string) => {
    const out = join(dir, `workers-${workers}`);
    const r = await advlabAsync([
      'eval', '--model', modelDir, '--attacks', 'fgsm,bim', '--eps', '0.1,0.05', '--n', '40', '--batch-size', '8',
      '--corruptions', 'none', '--sanity-sample', '20', '--workers', workers, '--out', out, '--no-progress',
    ]);
    assert.equal(r.code, 0, r.stderr);
    return { out, stdout: r.stdout, result: readJson(join(out, 'result.json')) };
  };
  const one = await run('1');
  const two = await run('2');
  assert.equal(one.result.workers, 1);
  assert.equal(two.result.workers, 2);
  assert.match(two.stdout, /^eps 0\.05 \(2 workers\) \d+\/40 \| robust \d+\/\d+ /m);
  assert.match(one.stdout, /^eps 0\.05 \d+\/40 \| robust \d+\/\d+ /m);
  assert.equal(one.result.corruptions, null);
  assert.equal(two.result.minimal.attack, 'deepfool');
  assert.deepEqual(stripTimes(two.result, ['workers']), stripTimes(one.result, ['workers']));
  for (const f of NPY_FILES) assert.deepEqual(readFileSync(join(two.out, f)), readFileSync(join(one.out, f)), f);
});
