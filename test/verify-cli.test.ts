/**
 * `advlab verify` end to end on the shipped PGD-trained small-cnn: result.json
 * matches its schema, verified accuracy never exceeds the robust accuracy PGD
 * or the quick suite leaves (no violations), and bad input fails early naming
 * the option.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { advlab, compileSchema } from './fixtures/cli.js';
import { join } from 'node:path';

const dir = mkdtempSync(join(tmpdir(), 'advlab-verify-'));
const MODEL = 'assets/models/mnist-small-cnn-pgd-at';

test('advlab verify writes result.json matching its schema; verified <= PGD robust and the suite robust <= clean at every eps', () => {
  const out = join(dir, 'v');
  const r = advlab(['verify', '--model', MODEL, '--eps', '0.003,0.05', '--n', '40', '--pgd-steps', '10', '--suite', 'quick', '--out', out, '--no-progress']);
  assert.equal(r.code, 0, r.stderr);
  const result = JSON.parse(readFileSync(join(out, 'result.json'), 'utf8')) as Record<string, any>;
  const validate = compileSchema('schemas/verify.result.schema.json');
  assert.ok(validate(result), JSON.stringify(validate.errors));
  assert.equal(validate({ ...result, cleanAccuracy: 2 }), false, 'the schema is not vacuous');
  assert.equal(result.count, 40);
  for (const p of result.points) {
    assert.equal(p.violations, 0);
    assert.ok(p.verified <= p.pgdRobust && p.pgdRobust <= result.correct, JSON.stringify(p));
    assert.ok(p.verified <= p.suiteRobust && p.suiteRobust <= result.correct, JSON.stringify(p));
    assert.equal(p.suiteRobustAccuracy, p.suiteRobust / 40);
  }
  assert.equal(result.options.suite, 'quick');
  assert.ok(result.points[0].verified > 0, 'a tiny ball verifies some images');
  assert.ok(result.points[1].verified <= result.points[0].verified, 'a larger ball verifies no more');
  assert.ok(existsSync(join(out, 'report.html')));
  assert.match(readFileSync(join(out, 'report.html'), 'utf8'), /verified/);
  assert.match(readFileSync(join(out, 'report.html'), 'utf8'), /quick suite robust/);
});

test('advlab verify names the bad option', () => {
  const noEps = advlab(['verify', '--model', MODEL, '--out', join(dir, 'x'), '--no-progress']);
  assert.equal(noEps.code, 2);
  assert.match(noEps.stderr, /--eps/);
  const tooBig = advlab(['verify', '--model', MODEL, '--eps', '3', '--out', join(dir, 'y'), '--no-progress']);
  assert.equal(tooBig.code, 2);
  assert.match(tooBig.stderr, /--eps/);
  const steps = advlab(['verify', '--model', MODEL, '--eps', '0.1', '--pgd-restarts', '0', '--out', join(dir, 'z'), '--no-progress']);
  assert.equal(steps.code, 2, steps.stderr);
  assert.match(steps.stderr, /--pgd-restarts/);
  const suite = advlab(['verify', '--model', MODEL, '--eps', '0.1', '--suite', 'strongest', '--out', join(dir, 's'), '--no-progress']);
  assert.equal(suite.code, 2, suite.stderr);
  assert.match(suite.stderr, /--suite/);
});
