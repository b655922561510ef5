/**
 * Same numbers in a page as in Node: the CLI attacks and evaluates the shipped
 * small-cnn on the first class-balanced test digits (wasm, one worker); a page
 * in headless chromium runs the same attack and quick suite with the same
 * options and seeds on its own wasm backend, the model and digits fetched from
 * the site. The adversarial images are equal bit for bit, and so are the
 * per-image verdicts of the suite.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { advlabAsync } from './fixtures/cli.js';
import { bundleForBrowser, collectErrors, launchChromium } from './fixtures/browser.js';
import { serveFolder } from '../src/node/serve.js';
import { wasmDir } from '../src/node/backend.js';
import { readNpy } from '../src/node/data/formats/npy.js';

const N = 20;
const EPS = 0.3;
const STEPS = 10;

test('the browser (wasm) reproduces the CLI: PGD adversarial images and quick-suite verdicts equal bit for bit', { timeout: 600_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'advlab-parity-'));
  try {
    const common = ['--model', 'assets/models/mnist-small-cnn', '--dataset', 'mnist', '--eps', String(EPS), '--n', String(N), '--backend', 'wasm', '--workers', '1', '--no-progress'];
    const [attack, evaluation] = await Promise.all([
      advlabAsync(['attack', ...common, '--attack', 'pgd', '--norm', 'linf', '--steps', String(STEPS), '--out', join(dir, 'attack')]),
      advlabAsync(['eval', ...common, '--suite', 'quick', '--norm', 'linf', '--corruptions', 'none', '--minimal', 'none', '--sanity-sample', '10', '--out', join(dir, 'eval')]),
    ]);
    assert.equal(attack.code, 0, attack.stderr);
    assert.equal(evaluation.code, 0, evaluation.stderr);
    const cliAdversarial = readNpy(join(dir, 'attack', 'adversarial.npy')).data as Float32Array;
    const cliBrokenBy = readNpy(join(dir, 'eval', 'broken-by.npy')).data as Int32Array;
    const cliEval = JSON.parse(readFileSync(join(dir, 'eval', 'result.json'), 'utf8')) as { robustAccuracy: number };

    const site = join(dir, 'site');
    await bundleForBrowser('test/fixtures/parity-page.ts', join(site, 'parity.js'));
    writeFileSync(join(site, 'index.html'), '<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,"><script type="module" src="parity.js"></script>');
    cpSync('assets/models', join(site, 'models'), { recursive: true });
    cpSync('assets/web', join(site, 'data'), { recursive: true });
    mkdirSync(join(site, 'wasm'));
    for (const f of readdirSync(wasmDir()).filter((f) => f.endsWith('.wasm'))) copyFileSync(join(wasmDir(), f), join(site, 'wasm', f));
    // Chromium first: if it is missing, nothing is left running to keep the test process alive.
    const context = await launchChromium(join(dir, 'profile'));
    const server = await serveFolder(site);
    try {
      const page = await context.newPage();
      const errors = collectErrors(page);
      await page.goto(server.url, { waitUntil: 'load' });
      await page.waitForFunction(() => (globalThis as { parityReady?: boolean }).parityReady === true, undefined, { timeout: 60_000 });
      const r = (await page.evaluate(([n, eps, steps]) => (globalThis as unknown as { parity: (n: number, eps: number, steps: number) => Promise<unknown> }).parity(n, eps, steps), [N, EPS, STEPS] as const)) as { adversarial: number[]; brokenBy: number[]; robustAccuracy: number };
      assert.deepEqual(errors, []);
      assert.equal(r.adversarial.length, cliAdversarial.length);
      const differing = r.adversarial.filter((v, i) => !Object.is(Math.fround(v), cliAdversarial[i])).length;
      const perImage = Array.from({ length: N }, (_, k) => { let c = 0, m = 0; for (let i = k * 784; i < (k + 1) * 784; i++) { const d = Math.abs(Math.fround(r.adversarial[i]) - cliAdversarial[i]); if (d > 0) { c++; m = Math.max(m, d); } } return `${c}/${m.toExponential(1)}`; });
      assert.equal(differing, 0, `${differing} of ${r.adversarial.length} adversarial pixels differ between the page and the CLI: ${perImage.join(' ')}; brokenBy page ${r.brokenBy.join(',')} cli ${Array.from(cliBrokenBy).join(',')}`);
      assert.deepEqual(r.brokenBy, Array.from(cliBrokenBy));
      assert.equal(r.robustAccuracy, cliEval.robustAccuracy);
    } finally {
      await context.close();
      await server.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
