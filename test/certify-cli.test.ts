/**
 * `advlab certify` end to end on the shipped small-cnn (few copies, few
 * images): result.json matches its schema, the curve falls with the radius
 * and starts at the smoothed accuracy, a run stopped half-way and resumed
 * gives the uninterrupted run's certificates, and bad input fails early.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { advlab, compileSchema } from './fixtures/cli.js';
import { join } from 'node:path';
import { certifyRun } from '../src/jobs/certify-run.js';
import { initBackend } from '../src/node/backend.js';

const dir = mkdtempSync(join(tmpdir(), 'advlab-certify-'));
const MODEL = 'assets/models/mnist-small-cnn';
const ARGS = ['--model', MODEL, '--sigma', '0.25', '--samples', '400', '--n0', '20', '--alpha', '0.01', '--noise-batch', '200', '--n', '10', '--no-progress'];

test('advlab certify writes result.json matching its schema; a stopped and resumed run gives the same certificates', async () => {
  const out = join(dir, 'c');
  const r = advlab(['certify', ...ARGS, '--out', out]);
  assert.equal(r.code, 0, r.stderr);
  const result = JSON.parse(readFileSync(join(out, 'result.json'), 'utf8')) as Record<string, any>;
  const validate = compileSchema('schemas/certify.result.schema.json');
  assert.ok(validate(result), JSON.stringify(validate.errors));
  assert.equal(validate({ ...result, abstentionRate: -1 }), false, 'the schema is not vacuous');
  assert.equal(result.count, 10);
  assert.equal(result.curve[0].accuracy, result.smoothedAccuracy, 'at radius 0: every correct, non-abstaining image');
  for (let i = 1; i < result.curve.length; i++) assert.ok(result.curve[i].accuracy <= result.curve[i - 1].accuracy, 'the curve never rises');
  for (const c of result.certificates) assert.ok(c.radius <= result.maxRadius + 1e-9);
  assert.ok(result.smoothedAccuracy > 0.5, `smoothed accuracy ${result.smoothedAccuracy}`);
  assert.match(readFileSync(join(out, 'report.html'), 'utf8'), /certified accuracy/i);
  // The attack on the smoothed classifier at the default radii, and the check against the certificates.
  assert.deepEqual(result.attack.radii, [0.5, 1]);
  assert.equal(result.options.clipNoise, true);
  for (const c of result.attack.consistency) {
    assert.deepEqual(c.violations, []);
    assert.ok(c.certifiedAccuracy <= c.empiricalRobustAccuracy, `L2 ${c.radius}: certified ${c.certifiedAccuracy} above attacked ${c.empiricalRobustAccuracy}`);
    assert.equal(c.certifiedAccuracy, result.certificates.filter((x: any) => x.prediction === x.label && x.radius >= c.radius).length / 10);
  }
  for (const o of result.attack.outcomes) assert.ok(o.distance <= o.radius * (1 + 1e-5), 'inside the ball');
  assert.equal(result.attack.outcomes.length, 2 * result.attack.attacked);
  assert.match(r.stdout, /L2 0\.5 on 10 images: certified .* <= attacked .*, 0 violations/);
  assert.match(readFileSync(join(out, 'report.html'), 'utf8'), /Certificates against an attack/);

  // Stopped after 4 images, then resumed (in process, with the job's own hook).
  const backend = await initBackend({ backend: 'wasm' });
  const options = { model: MODEL, sigma: 0.25, samples: 400, n0: 20, alpha: 0.01, noiseBatch: 200, n: 10, out: join(dir, 'resumed') };
  const part = await certifyRun({ ...options, stopAfterImages: 4 }, backend);
  assert.equal(part.count, 4);
  const whole = await certifyRun({ ...options, resume: true }, backend);
  assert.deepEqual(whole.certificates, result.certificates);
  assert.deepEqual(whole.attack!.outcomes, result.attack.outcomes, 'the attack, on workers here as in the CLI run, gives the same points');
  // No attack on request.
  const none = advlab(['certify', ...ARGS, '--attack-radii', 'none', '--out', join(dir, 'no-attack')]);
  assert.equal(none.code, 0, none.stderr);
  assert.equal(JSON.parse(readFileSync(join(dir, 'no-attack', 'result.json'), 'utf8')).attack, null);
});

test('advlab certify names the bad option', () => {
  const noSigma = advlab(['certify', '--model', MODEL, '--out', join(dir, 'x'), '--no-progress']);
  assert.equal(noSigma.code, 2);
  assert.match(noSigma.stderr, /--sigma/);
  const badAlpha = advlab(['certify', ...ARGS.filter((a, i, all) => a !== '--alpha' && all[i - 1] !== '--alpha'), '--alpha', '1.5', '--out', join(dir, 'y')]);
  assert.equal(badAlpha.code, 2, badAlpha.stderr);
  assert.match(badAlpha.stderr, /--alpha/);
  const resume = advlab(['certify', ...ARGS.filter((a, i, all) => a !== '--sigma' && all[i - 1] !== '--sigma'), '--sigma', '0.5', '--out', join(dir, 'c'), '--resume']);
  assert.equal(resume.code, 2, 'a checkpoint written with another sigma is not resumed');
  assert.match(resume.stderr, /--resume/);
});
