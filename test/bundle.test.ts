/**
 * The platform-neutral core (`advlab`, src/index.ts) bundles for the browser
 * with no Node built-in and no Node-only module of advlab, and loads and runs
 * in a real page (no top-level Node call); `advlab/node` does not bundle so,
 * which shows the check can fail.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { builtinModules } from 'node:module';
import { bundleForBrowser, collectErrors, launchChromium, serveDir } from './fixtures/browser.js';
import { ADVLAB_VERSION } from '../src/version.js';

const NODE_BUILTINS = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));
/** Folders of advlab that only Node may load. */
const NODE_ONLY = /^src\/(node|jobs|cli)\/|^src\/node\.ts$/;

test('the core bundles for the browser: no Node built-in, no Node-only package, nothing of src/node, src/jobs or src/cli', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'advlab-bundle-'));
  try {
    const meta = await bundleForBrowser('src/index.ts', join(dir, 'advlab.js'));
    const inputs = Object.keys(meta.inputs);
    assert.ok(inputs.includes('src/attacks/run.ts') && inputs.includes('src/robustness/evaluate.ts'), 'the bundle holds the attacks and the evaluation');
    assert.deepEqual(inputs.filter((f) => NODE_ONLY.test(f)), [], 'Node-only modules of advlab in the core bundle');
    assert.deepEqual(inputs.filter((f) => /node_modules\/(bullmq|ioredis|pngjs|commander|cli-progress)\//.test(f)), [], 'Node-only packages in the core bundle');
    const fromAdvlab = Object.entries(meta.inputs).filter(([f]) => f.startsWith('src/')).flatMap(([f, i]) => i.imports.filter((imp) => NODE_BUILTINS.has(imp.path) || imp.path.startsWith('(disabled)')).map((imp) => `${f} imports ${imp.path}`));
    assert.deepEqual(fromAdvlab, [], 'advlab source importing Node built-ins');
    // The playground's page: the core plus the web platform, nothing of Node.
    const page = await bundleForBrowser('src/web/playground/main.ts', join(dir, 'playground.js'));
    assert.deepEqual(Object.keys(page.inputs).filter((f) => NODE_ONLY.test(f)), [], 'Node-only modules of advlab in the playground bundle');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the Node entry does not bundle for the browser (the check above can fail)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'advlab-bundle-'));
  try {
    await assert.rejects(bundleForBrowser('src/node.ts', join(dir, 'node.js')), (e: { errors?: { text: string }[] }) => {
      assert.ok(e.errors?.some((x) => /node:(fs|path|worker_threads|os)/.test(x.text)), `esbuild names a Node built-in: ${e.errors?.map((x) => x.text).slice(0, 3).join('; ')}`);
      return true;
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('ADVLAB_VERSION is package.json\'s version', () => {
  assert.equal(ADVLAB_VERSION, (JSON.parse(readFileSync('package.json', 'utf8')) as { version: string }).version);
});

test('the core bundle loads in headless chromium and attacks there: FGSM moves each image by eps and re-verifies, numTensors unchanged', { timeout: 180_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'advlab-page-'));
  await bundleForBrowser('src/index.ts', join(dir, 'advlab.js'));
  writeFileSync(
    join(dir, 'index.html'),
    `<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,"><script type="module">
import * as advlab from './advlab.js';
window.run = async () => {
  const { tf } = advlab;
  const info = await advlab.initBackend({ backend: 'cpu' });
  const model = advlab.buildModel('mlp', { inputShape: [8, 8, 1], numClasses: 3, seed: 1 });
  const classifier = advlab.Classifier.fromModel(model);
  const rng = new advlab.Rng(3);
  const count = 6;
  const images = Float32Array.from({ length: count * 64 }, () => rng.next());
  const logits = classifier.logits(tf.tensor4d(images, [count, 8, 8, 1]));
  const predicted = tf.argMax(logits, 1);
  const labels = Int32Array.from(await predicted.data());
  tf.dispose([logits, predicted]);
  const before = tf.memory().numTensors;
  const r = await advlab.runAttack(advlab.fgsm, classifier, { images, labels, count, imageShape: [8, 8, 1] }, { eps: 0.25, seed: 0 });
  return { backend: info.name, version: advlab.ADVLAB_VERSION, count: r.count, linf: Array.from(r.norms.linf), success: Array.from(r.success), rejected: r.rejected, leaked: tf.memory().numTensors - before };
};
window.ready = true;
</script>`,
  );
  // Chromium first: if it is missing, nothing is left running to keep the test process alive.
  const context = await launchChromium(join(dir, 'profile'));
  const server = await serveDir(dir);
  try {
    const page = await context.newPage();
    const errors = collectErrors(page);
    await page.goto(server.url, { waitUntil: 'load' });
    await page.waitForFunction(() => (window as unknown as { ready?: boolean }).ready === true, undefined, { timeout: 60_000 });
    const r = await page.evaluate(() => (window as unknown as { run: () => Promise<any> }).run());
    assert.deepEqual(errors, []);
    assert.equal(r.backend, 'cpu');
    assert.equal(r.version, ADVLAB_VERSION);
    assert.equal(r.count, 6);
    assert.deepEqual(r.rejected, { outOfBounds: 0, outsideBall: 0, nonFinite: 0 });
    // FGSM takes a full step of eps; clipping to [0, 1] can only shorten it, and a pixel at a bound can stay.
    for (const v of r.linf) assert.ok(v <= 0.25 + 1e-6 && v > 0.2, `L-inf ${v}`);
    assert.equal(r.leaked, 0);
  } finally {
    await context.close();
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
