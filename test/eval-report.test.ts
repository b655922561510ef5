import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import { CHROMIUM, CHROMIUM_ARGS } from './fixtures/browser.js';
import { renderEvalReport, escapeHtml } from '../src/report/eval-report.js';
import { robustAccuracyPlot, scopeIds } from '../src/report/plots.js';
import { evalExamplesFixture, evalResultFixture } from './fixtures/eval-result.js';

const HOSTILE = '<script>alert("x")</script>';

function count(haystack: string, needle: string): number {
  return haystack.split(needle).length - 1;
}

test('renderEvalReport: headline numbers, escaping, three plots and the example grid', async () => {
  const classNames = ['0', '1', '2', HOSTILE, '4', '5', '6', '7', '8', '9'];
  const result = evalResultFixture({ classNames });
  const warnings: string[] = [];
  const page = await renderEvalReport(result, evalExamplesFixture(), { onWarning: (m) => warnings.push(m) });

  assert.deepEqual(warnings, [], 'vega-lite and vega raise no warning on the report specs');
  assert.ok(page.startsWith('<!DOCTYPE html>'));
  assert.match(page, /Clean accuracy<\/div><div class="value">98\.5%/);
  assert.match(page, /Robust accuracy at ε = 0\.3<\/div><div class="value">90\.2%/);
  const [lo, hi] = result.confidenceInterval.map((x) => `${(x * 100).toFixed(1)}%`);
  assert.ok(page.includes(`95% CI [${lo}, ${hi}]`), `the CI ${lo}..${hi} is in the headline`);
  assert.ok(page.includes('L∞') && page.includes('standard') && page.includes('badge warn'));
  // The hostile class name is shown as text, never as markup; the page has no script at all.
  assert.ok(page.includes(escapeHtml(HOSTILE)));
  assert.equal(count(page.toLowerCase(), '<script'), 0);
  // Plots: robust accuracy vs eps, minimal-perturbation histogram, corruptions.
  assert.equal(count(page, '<svg'), 3);
  assert.equal(count(page, 'src="data:image/png;base64,'), 1);
  // Sections with data say so; run settings carry the environment.
  assert.equal(count(page, 'Not run'), 0);
  for (const text of ['apgd-ce', 'square', 'gaussian-noise', 'more-steps', 'wasm', 'advlab', '2025-01-15T09:41:12.500Z']) assert.ok(page.includes(text), text);
  // Only links inside the page: no external resource.
  assert.doesNotMatch(page, /(src|href)="(https?:)?\/\//);

  // Deterministic: the same input renders the same bytes.
  assert.equal(await renderEvalReport(result, evalExamplesFixture()), page);
});

test('renderEvalReport: sections without data say "not run"', async () => {
  const result = { ...evalResultFixture(), minimal: null, corruptions: null };
  const page = await renderEvalReport(result, evalExamplesFixture());
  assert.equal(count(page, 'Not run'), 2);
  assert.equal(count(page, '<svg'), 1);
});

test('renderEvalReport: inconsistent example arrays are refused', async () => {
  const examples = evalExamplesFixture();
  await assert.rejects(renderEvalReport(evalResultFixture(), { ...examples, adversarial: examples.adversarial.subarray(1) }), /examples\.adversarial/);
});

test('plots: SVG ids are prefixed per plot, and stage names are escaped in the SVG', async () => {
  assert.equal(scopeIds('<clipPath id="clip1"></clipPath><g clip-path="url(#clip1)">', 'p'), '<clipPath id="p-clip1"></clipPath><g clip-path="url(#p-clip1)">');
  const result = evalResultFixture();
  const sweep = result.sweep.map((e) => ({ ...e, stages: e.stages.map((s, i) => (i === 0 ? { ...s, name: HOSTILE } : s)) }));
  const svg = await robustAccuracyPlot({ sweep, cleanAccuracy: result.cleanAccuracy, norm: 'linf', minimal: result.minimal });
  assert.equal(count(svg.toLowerCase(), '<script'), 0);
  assert.ok(svg.includes(`after ${escapeHtml(HOSTILE).replace(/&quot;/g, '"')}</text>`), 'the legend shows the name as text');
  assert.match(svg, /clip-path="url\(#eps-plot-clip\d+\)"/);
});

test('the report in a real browser (Debian chromium, headless): no errors, plots and images drawn', { timeout: 120_000 }, async () => {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: this test drives Debian's chromium; install it with \`apt-get install chromium\` (CI's .ci/run does)`);
  const dir = mkdtempSync(join(tmpdir(), 'advlab-report-'));
  const context = await chromium.launchPersistentContext(join(dir, 'profile'), {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1280, height: 900 },
    offline: true,
  });
  try {
    const file = join(dir, 'report.html');
    writeFileSync(file, await renderEvalReport(evalResultFixture(), evalExamplesFixture()));
    const page = await context.newPage();
    const errors: string[] = [];
    const requests: string[] = [];
    page.on('console', (m) => m.type() === 'error' && errors.push(`console: ${m.text()}`));
    page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
    page.on('requestfailed', (r) => errors.push(`request failed: ${r.url()} ${r.failure()?.errorText}`));
    page.on('request', (r) => requests.push(r.url()));
    const response = await page.goto(pathToFileURL(file).href, { waitUntil: 'load' });
    assert.ok(response === null || response.ok(), 'the report loads');

    assert.deepEqual(errors, []);
    assert.deepEqual(requests.filter((u) => !u.startsWith('file:') && !u.startsWith('data:')), [], 'no request leaves the file');
    const plots = await page.$$eval('figure.plot > svg', (svgs) =>
      svgs.map((s) => ({ width: s.getBoundingClientRect().width, height: s.getBoundingClientRect().height, marks: s.querySelectorAll('.role-mark path, .role-mark line, .role-mark rect').length })),
    );
    assert.equal(plots.length, 3);
    for (const p of plots) {
      assert.ok(p.width > 100 && p.height > 100, `plot drawn at ${p.width}x${p.height}`);
      assert.ok(p.marks > 0, 'plot has marks');
    }
    const images = await page.$$eval('img', (imgs) => imgs.map((i) => ({ complete: i.complete, width: i.naturalWidth, height: i.naturalHeight })));
    assert.ok(images.length >= 1);
    for (const img of images) assert.ok(img.complete && img.width > 0 && img.height > 0, `image decoded (${img.width}x${img.height})`);

    const shot = join(dir, 'eval-report.png');
    await page.screenshot({ path: shot, fullPage: true });
    const png = readFileSync(shot);
    assert.equal(png.subarray(0, 8).toString('hex'), '89504e470d0a1a0a', 'a PNG');
    const [width, height] = [png.readUInt32BE(16), png.readUInt32BE(20)];
    assert.equal(width, 1280);
    assert.ok(height > 2000 && height < 20000, `page height ${height}`);
    assert.ok(statSync(shot).size > 50_000, 'the screenshot has content');
  } finally {
    await context.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
