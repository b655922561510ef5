/**
 * The playground in a real browser (Debian's headless chromium): the site
 * built by `npm run build:web` loads with no console error, cross-origin
 * isolated; a test image attacked with PGD changes the prediction of the
 * shipped small-cnn and the page shows it; a model loaded from files works.
 * Screenshots go to runs/screenshots/.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildWeb } from '../scripts/build-web.js';
import { serveFolder } from '../src/node/serve.js';
import { collectErrors, launchChromium } from './fixtures/browser.js';
import { compileSchema } from './fixtures/cli.js';

const SCREENSHOTS = join('runs', 'screenshots');

test('the playground: loads without errors, PGD flips a test digit of the shipped small-cnn, a model from files loads', { timeout: 300_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'advlab-playground-'));
  const site = await buildWeb(join(dir, 'site'));
  // Chromium first: if it is missing, nothing is left running to keep the test process alive.
  const context = await launchChromium(join(dir, 'profile'));
  const server = await serveFolder(site, { isolated: true });
  try {
    const page = await context.newPage();
    const errors = collectErrors(page);
    await page.goto(server.url, { waitUntil: 'load' });
    await page.waitForSelector('body[data-ready="true"]', { timeout: 120_000 });
    const idle = () => page.waitForFunction(() => !document.body.dataset.busy, undefined, { timeout: 120_000 });
    assert.match((await page.textContent('#backend-status')) ?? '', /^wasm .*cross-origin isolated/);
    // Isolated, wasm runs one thread per logical core (tfjs alone would give half of them, one on 2 cores).
    const cores = await page.evaluate(() => navigator.hardwareConcurrency);
    assert.match((await page.textContent('#backend-status')) ?? '', new RegExp(`, ${Math.min(8, cores)} threads?, `));
    assert.match((await page.textContent('#model-status')) ?? '', /Layers model: input 28x28x1, 10 classes/);

    // The page picks test images at random; one the model already misreads has nothing to attack.
    let label = NaN;
    for (let tries = 0; tries < 20 && Number.isNaN(label); tries++) {
      await page.click('#test-image');
      await idle();
      const image = (await page.textContent('#image-status')) ?? '';
      const read = /label (\d), the model reads (\d)/.exec(image);
      assert.ok(read, image);
      if (read[1] === read[2]) label = Number(read[1]);
    }
    assert.ok(Number.isInteger(label), 'twenty test images, all misread');
    await page.selectOption('#attack', 'pgd');
    await page.fill('#eps', '0.3');
    await page.click('#run');
    await idle();
    const status = (await page.textContent('#attack-status')) ?? '';
    const flip = /prediction changed: (\d) → (\d) \(adversarial, verified\)/.exec(status);
    assert.ok(flip, status);
    assert.equal(Number(flip[1]), label);
    assert.notEqual(Number(flip[2]), label);
    const linf = Number(/Linf ([\d.]+)/.exec((await page.textContent('#norms')) ?? '')?.[1]);
    assert.ok(linf > 0 && linf <= 0.3 + 1e-6, `Linf ${linf}`);
    // The top-5 after the attack leads with the new class.
    assert.match((await page.textContent('#top5-after tr:first-child td:first-child')) ?? '', new RegExp(`^${flip[2]}`));

    // The quick suite in the Web Worker: progress, then the figures, the plot and the per-class table.
    await page.fill('#eval-n', '20');
    await page.fill('#eval-eps', '0.3,0.1');
    await page.click('#eval-run');
    await page.waitForFunction(() => !document.body.dataset.evaluating, undefined, { timeout: 240_000 });
    const evalStatus = (await page.textContent('#eval-status')) ?? '';
    const robust = /20 images, clean accuracy ([\d.]+)%; robust accuracy at eps 0\.3: ([\d.]+)%/.exec(evalStatus);
    assert.ok(robust, evalStatus);
    assert.ok(Number(robust[2]) <= Number(robust[1]));
    assert.equal(await page.locator('#eval-table tbody tr').count(), 2);
    assert.equal(await page.locator('#eval-classes tbody tr').count(), 10);
    assert.ok((await page.locator('#eval-plot svg').count()) === 1, 'the robust-accuracy plot is drawn');
    // result.json in the CLI's schema, and the CLI's report, as downloads.
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#eval-result')]);
    const resultFile = join(dir, 'result.json');
    await download.saveAs(resultFile);
    const result = JSON.parse(readFileSync(resultFile, 'utf8')) as { robustAccuracy: number; eps: number; count: number; files: unknown; sanity: { checks: { id: string; verdict: string }[] }; sweep: unknown[] };
    const validate = compileSchema('schemas/eval.result.schema.json');
    assert.ok(validate(result), JSON.stringify(validate.errors));
    assert.equal(result.eps, 0.3);
    assert.equal(result.count, 20);
    assert.equal(result.sweep.length, 2);
    assert.equal(result.files, null);
    assert.equal((result.robustAccuracy * 100).toFixed(1), robust[2]);
    assert.ok(result.sanity.checks.some((c) => c.id === 'more-steps' && c.verdict !== 'skipped'), 'the sanity checks ran');
    const [reportDownload] = await Promise.all([page.waitForEvent('download'), page.click('#eval-report')]);
    const reportFile = join(dir, 'report.html');
    await reportDownload.saveAs(reportFile);
    assert.match(readFileSync(reportFile, 'utf8'), /^<!doctype html>/i);
    // Generate: samples and a latent walk of the shipped scgan; the AAE's reconstruction of the clean and the adversarial digit.
    await page.click('#gen-sample');
    await idle();
    assert.match((await page.textContent('#gen-status')) ?? '', /^16 samples \(seed \d+\), clusters (\d+, ){15}\d+$/);
    await page.click('#gen-walk');
    await idle();
    assert.match((await page.textContent('#gen-status')) ?? '', /in 10 steps of the latent code/);
    // The generated tiles are digits, not blank: bright pixels in the middle of the grid.
    const lit = await page.evaluate(() => {
      const c = document.getElementById('gen-grid') as HTMLCanvasElement;
      const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
      let n = 0;
      for (let i = 0; i < d.length; i += 4) if (d[i] > 128) n++;
      return n / (d.length / 4);
    });
    assert.ok(lit > 0.05 && lit < 0.5, `share of bright pixels in the sample grid: ${lit}`);
    for (const button of ['#purify', '#purify-adv']) {
      await page.click(button);
      await idle();
      const purified = (await page.textContent('#purify-status')) ?? '';
      const mse = Number(/reconstruction error \(MSE\) ([\d.]+)/.exec(purified)?.[1]);
      assert.ok(mse > 0 && mse < 0.2, purified);
    }
    mkdirSync(SCREENSHOTS, { recursive: true });
    await page.screenshot({ path: join(SCREENSHOTS, 'playground.png'), fullPage: true });
    // A long attack runs in its worker with progress, and Cancel stops it.
    await page.fill('#eps', '0.01');
    await page.fill('[data-param="steps"]', '100000');
    await page.click('#run');
    await page.waitForFunction(() => /: [1-9]\d* gradients, \d+ queries/.test(document.getElementById('attack-status')!.textContent ?? ''), undefined, { timeout: 60_000 });
    const fraction = await page.evaluate(() => (document.getElementById('attack-progress') as HTMLProgressElement).value);
    assert.ok(fraction > 0 && fraction < 1, `progress ${fraction}`);
    await page.click('#attack-cancel');
    await idle();
    assert.equal(await page.textContent('#attack-status'), 'cancelled');
    assert.equal(await page.isEnabled('#run'), true);
    await page.fill('[data-param="steps"]', '40');

    // Cancel stops the worker.
    await page.fill('#eval-n', '500');
    await page.click('#eval-run');
    await page.waitForFunction(() => /^eps [\d.]+: \d+\/\d+$/.test(document.getElementById('eval-status')!.textContent ?? ''), undefined, { timeout: 120_000 });
    await page.click('#eval-cancel');
    assert.equal(await page.textContent('#eval-status'), 'cancelled');
    assert.equal(await page.isEnabled('#eval-run'), true);

    // The user's own model, as files: the shipped PGD-AT twin.
    await page.check('input[name="model"][value="files"]');
    await page.setInputFiles('#model-files', [join('assets', 'models', 'mnist-small-cnn-pgd-at', 'model.json'), join('assets', 'models', 'mnist-small-cnn-pgd-at', 'weights.bin')]);
    await page.click('#model-load');
    await idle();
    assert.match((await page.textContent('#model-status')) ?? '', /Layers model: input 28x28x1, 10 classes/);
    // A broken file set is refused by name.
    await page.setInputFiles('#model-files', [join('assets', 'models', 'mnist-small-cnn-pgd-at', 'model.json')]);
    await page.click('#model-load');
    await idle();
    assert.match((await page.textContent('#model-status')) ?? '', /weights\.bin: weights file not found/);
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
