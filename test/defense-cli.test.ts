/**
 * `advlab train --defense`: adversarial training, then the evidence (the eval
 * job on the defended model and on a --baseline), in result.json (checked
 * against its schema) and report.html; bad input exits 2 naming the option.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { advlab, advlabAsync, compileSchema, readJson, type Json, type Run } from './fixtures/cli.js';

function validator() {
  return compileSchema('schemas/train.result.schema.json');
}

const dir = mkdtempSync(join(tmpdir(), 'advlab-defense-cli-'));
const baselineDir = join(dir, 'plain');

before(() => {
  const r = advlab(['train', '--model', 'mlp', '--dataset', 'mnist', '--epochs', '1', '--out', baselineDir, '--no-progress']);
  assert.equal(r.code, 0, r.stderr);
});

test('advlab train --defense pgd-at trains, evaluates defended and baseline models, writes result.json (schema) and report.html', () => {
  const out = join(dir, 'pgd-at');
  const r = advlab([
    'train', '--model', 'mlp', '--epochs', '1', '--defense', 'pgd-at', '--defense-steps', '2', '--defense-eps', '0.2',
    '--eval-n', '30', '--eval-suite', 'quick', '--baseline', baselineDir, '--out', out, '--no-progress',
  ]);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.match(lines[0], /^backend: wasm \(1 thread, advlab kernels\)$/);
  assert.equal(lines[lines.length - 1], `result: ${join(out, 'result.json')}`);
  assert.ok(lines.includes(`report: ${join(out, 'report.html')}`), r.stdout);
  assert.match(r.stdout, /^evidence \(quick suite, eps 0\.2, 30 test images\): defended: clean \d+\.\d\d%, robust \d+\.\d\d%; baseline: clean \d+\.\d\d%, robust \d+\.\d\d%$/m);

  const result = readJson(join(out, 'result.json'));
  const validate = validator();
  assert.ok(validate(result), JSON.stringify(validate.errors));
  // The schema is not vacuous.
  const ev = result.evidence;
  assert.equal(validate({ ...result, defense: { ...result.defense, name: 'pgd' } }), false, 'unknown defense');
  assert.equal(validate({ ...result, defense: { ...result.defense, eps: 0 } }), false, 'eps 0');
  assert.equal(validate({ ...result, defense: { ...result.defense, workers: 0 } }), false, 'workers 0');
  assert.equal(validate({ ...result, evidence: { ...ev, defended: { ...ev.defended, robustAccuracy: 42 } } }), false, 'accuracy scale');
  assert.equal(validate({ ...result, evidence: { ...ev, baseline: { ...ev.baseline, sanity: 'fail' } } }), false, 'sanity verdict');
  assert.equal(validate({ ...result, evidence: { ...ev, defended: { ...ev.defended, curve: [{ eps: 0.2 }] } } }), false, 'curve item');
  const { defended: _dropped, ...noDefended } = ev;
  assert.equal(validate({ ...result, evidence: noDefended }), false, 'missing defended entry');
  const { evidence: _e, ...noEvidence } = result;
  assert.equal(validate(noEvidence), false, 'defense without evidence');
  assert.ok(validate({ ...result, evidence: null }), 'evidence null (--no-eval)');
  assert.ok(validate({ ...result, evidence: { ...ev, baseline: null } }), 'no baseline');
  // Plain training results stay valid, and carry no defense.
  const plain = readJson(join(baselineDir, 'result.json'));
  assert.ok(validate(plain), JSON.stringify(validate.errors));
  assert.equal(plain.defense, undefined);

  // The defense as asked: step size 2.5 eps / steps by default.
  const d = result.defense;
  assert.deepEqual(
    { name: d.name, norm: d.norm, eps: d.eps, steps: d.steps, beta: d.beta, epsWarmupEpochs: d.epsWarmupEpochs, bounds: d.bounds, workers: d.workers },
    { name: 'pgd-at', norm: 'linf', eps: 0.2, steps: 2, beta: 6, epsWarmupEpochs: 0, bounds: [0, 1], workers: Math.min(availableParallelism(), 2) },
  );
  assert.ok(Math.abs(d.stepSize - 0.25) < 1e-12, `step size ${d.stepSize}`);
  assert.ok(d.trainingSeconds > 0);
  const epoch = result.history[0];
  assert.ok(epoch.wallSeconds >= epoch.seconds, 'the whole epoch includes its steps');
  // Resumed after its last epoch, the run reports the training's time, not the (empty) resumed run's.
  const again = advlab(['train', '--model', 'mlp', '--epochs', '1', '--defense', 'pgd-at', '--defense-steps', '2', '--defense-eps', '0.2', '--no-eval', '--resume', '--out', out, '--no-progress']);
  assert.equal(again.code, 0, again.stderr);
  const resumed = readJson(join(out, 'result.json'));
  assert.equal(resumed.resumedFromEpoch, 1);
  assert.ok(resumed.defense.trainingSeconds >= epoch.wallSeconds, `${resumed.defense.trainingSeconds} s after the resume, the epoch took ${epoch.wallSeconds} s`);
  assert.equal(result.command, 'train');
  assert.equal(result.epochs, 1);
  assert.ok(existsSync(join(out, 'model', 'model.json')));

  // The evidence: the training eps headline first, then its fractions; both models on the same 30 images.
  assert.equal(ev.suite, 'quick');
  assert.equal(ev.n, 30);
  assert.deepEqual(ev.eps, [0.2, 0.05, 0.1, 0.15]);
  assert.equal(ev.defended.model, out);
  assert.equal(ev.defended.evalDir, join(out, 'eval'));
  assert.equal(ev.baseline.model, baselineDir);
  assert.equal(ev.baseline.evalDir, join(out, 'baseline-eval'));
  for (const [name, e] of [['defended', ev.defended], ['baseline', ev.baseline]] as [string, Json][]) {
    assert.equal(e.count, 30, name);
    assert.deepEqual(e.curve.map((c: Json) => c.eps).sort((a: number, b: number) => a - b), [0.05, 0.1, 0.15, 0.2], name);
    // The curve's point at the training eps is the headline robust accuracy, which the full evaluation reports too.
    assert.equal(e.curve.find((c: Json) => c.eps === 0.2).robustAccuracy, e.robustAccuracy, name);
    assert.ok(e.robustAccuracy <= e.cleanAccuracy, name);
    const full = readJson(join(e.evalDir, 'result.json'));
    assert.equal(full.command, 'eval');
    assert.deepEqual([full.count, full.eps, full.robustAccuracy, full.cleanAccuracy], [30, 0.2, e.robustAccuracy, e.cleanAccuracy], name);
    assert.ok(existsSync(join(e.evalDir, 'report.html')), `${name} eval report`);
  }
  assert.ok(ev.baseline.cleanAccuracy > 0.7, `baseline clean ${ev.baseline.cleanAccuracy}`);
  // One epoch of PGD-AT at eps 0.2 with 2 steps does not hold eps 0.2 itself (both models are at or near 0 there),
  // but it already lifts the curve below it: mean robust accuracy over the four budgets.
  const mean = (e: Json) => e.curve.reduce((a: number, c: Json) => a + c.robustAccuracy, 0) / e.curve.length;
  assert.ok(mean(ev.defended) > mean(ev.baseline), `mean robust accuracy over the curve: defended ${mean(ev.defended)}, baseline ${mean(ev.baseline)}`);

  const html = readFileSync(join(out, 'report.html'), 'utf8');
  assert.ok(html.includes('<svg'), 'the eps curve plot');
  assert.ok(html.includes('pgd-at (this run)') && html.includes(`<code>${out}</code>`), 'defended row');
  assert.ok(html.includes('<td>baseline</td>') && html.includes(`<code>${baselineDir}</code>`), 'baseline row');
  assert.ok(html.includes('href="eval/report.html"') && html.includes('href="baseline-eval/report.html"'), 'links to the full evaluations');
  assert.ok(!/<script/i.test(html), 'self-contained, no script');
});

test('bad input exits with code 2 and one line naming the option; nothing is written', async () => {
  const out = join(dir, 'bad');
  const base = ['train', '--model', 'mlp', '--epochs', '1', '--out', out, '--no-progress'];
  // advlab's own checks print one line; commander's (choices, option parsers) print one error line, then the usage.
  const cases: [string[], RegExp][] = [
    [[...base, '--defense', 'foo'], /^error: option '--defense <name>' argument 'foo' is invalid\. Allowed choices are none, pgd-at, fgsm-rs, trades, ibp, consistency\.$/],
    [[...base, '--defense', 'pgd-at', '--defense-eps', '2'], /^advlab: --defense-eps: 2 exceeds the input range 1: is it in the input's scale\?$/],
    [[...base, '--baseline', baselineDir], /^advlab: --baseline: only applies with --defense$/],
    [[...base, '--defense', 'pgd-at', '--consistency-lambda', '3'], /^advlab: --consistency-lambda: only applies with --defense consistency$/],
    [[...base, '--defense', 'consistency', '--noise-copies', '0'], /^advlab: --noise-copies: expected an integer in \[1, 16\], got 0$/],
    [[...base, '--defense', 'pgd-at', '--eval-n', '0'], /^error: option '--eval-n <count>' argument '0' is invalid\. --eval-n expects an integer >= 1, got "0"$/],
  ];
  // Two at a time: each is a fresh node process.
  const runs: Run[] = [];
  for (let i = 0; i < cases.length; i += 2) runs.push(...(await Promise.all(cases.slice(i, i + 2).map(([args]) => advlabAsync(args)))));
  cases.forEach(([args, message], i) => {
    const r = runs[i];
    const what = `${args.slice(base.length).join(' ')}: ${r.stderr}`;
    assert.equal(r.code, 2, what);
    const errLines = r.stderr.split('\n');
    assert.match(errLines[0], message, what);
    if (errLines[0].startsWith('advlab: ')) assert.equal(errLines.length, 2, `one line: ${what}`);
    else assert.match(r.stderr, /\n\nUsage: advlab train \[options\]/, what);
  });
  assert.ok(!existsSync(out), 'bad input writes nothing');
});
