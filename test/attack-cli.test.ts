import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { Ajv } from 'ajv';
import { PNG } from 'pngjs';
import { readNpy } from '../src/node/data/formats/npy.js';
import { loadDataset } from '../src/node/data/load.js';
import { balancedSubset } from '../src/data/subset.js';
import { renderGrid, gridPng, perturbationImages, textWidth } from '../src/report/png-grid.js';

// ajv-formats is CommonJS; require gives its plugin function directly.
const addFormats = createRequire(import.meta.url)('ajv-formats') as (ajv: Ajv) => Ajv;

const CLI = ['--import', 'tsx', 'src/cli/run.ts'];
const env = { ...process.env, ADVLAB_BACKEND: 'wasm' };

function advlab(args: string[]) {
  const r = spawnSync(process.execPath, [...CLI, ...args], { encoding: 'utf8', env });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const dir = mkdtempSync(join(tmpdir(), 'advlab-attack-'));
const modelDir = join(dir, 'mlp');

before(() => {
  const r = advlab(['train', '--model', 'mlp', '--dataset', 'mnist', '--epochs', '1', '--out', modelDir, '--no-progress']);
  assert.equal(r.code, 0, r.stderr);
});

test('advlab attack (fgsm) writes result.json matching its schema, NPY arrays and grid.png', () => {
  const out = join(dir, 'fgsm');
  const r = advlab(['attack', '--model', modelDir, '--attack', 'fgsm', '--eps', '0.2', '--n', '50', '--out', out, '--no-progress']);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.match(lines[0], /^backend: wasm \(1 thread, advlab kernels\)$/);
  assert.equal(lines[lines.length - 1], `result: ${join(out, 'result.json')}`);

  const result = JSON.parse(readFileSync(join(out, 'result.json'), 'utf8')) as Record<string, any>;
  const ajv = new Ajv({ allErrors: true, strict: true });
  addFormats(ajv);
  const validate = ajv.compile(JSON.parse(readFileSync('schemas/attack.result.schema.json', 'utf8')));
  assert.ok(validate(result), JSON.stringify(validate.errors));
  // The schema is not vacuous.
  assert.equal(validate({ ...result, robustAccuracy: 42 }), false);
  assert.equal(validate({ ...result, norm: 'l3' }), false);
  const { cleanAccuracy: _dropped, ...missing } = result;
  assert.equal(validate(missing), false);

  assert.equal(result.command, 'attack');
  assert.equal(result.count, 50);
  assert.equal(result.norm, 'linf');
  assert.equal(result.eps, 0.2);
  assert.equal(result.targeted, null);
  assert.ok(result.cleanAccuracy > 0.5, `clean accuracy ${result.cleanAccuracy}`);
  assert.ok(result.robustAccuracy <= result.cleanAccuracy);
  assert.ok(result.successes > 0);
  assert.equal(result.correct, Math.round(result.cleanAccuracy * 50));
  assert.ok(Math.abs(result.successRate - result.successes / result.correct) < 1e-12);
  assert.ok(result.perturbation.linf.max <= 0.2 + 1e-6);
  assert.equal(result.gradients, 50); // FGSM: one gradient per image
  assert.equal(result.gradientsPerImage, 1);

  for (const f of ['adversarial.npy', 'labels.npy', 'predictions.npy', 'success.npy', 'grid.png']) assert.ok(existsSync(join(out, f)), f);
  assert.ok(!existsSync(join(out, 'targets.npy')), 'targets.npy only for targeted runs');
  const adv = readNpy(join(out, 'adversarial.npy'));
  assert.deepEqual(adv.shape, [50, 28, 28, 1]);
  assert.equal(adv.dtype, '<f4');
  const labels = readNpy(join(out, 'labels.npy'));
  assert.deepEqual(labels.shape, [50]);
  // --n is the class-balanced prefix: position k*10 + c holds class c.
  assert.deepEqual(Array.from(labels.data), Array.from({ length: 50 }, (_, i) => i % 10));
  const preds = readNpy(join(out, 'predictions.npy'));
  assert.deepEqual([preds.shape, preds.dtype], [[2, 50], '<i4']);
  const success = readNpy(join(out, 'success.npy')).data;
  let correct = 0;
  let robust = 0;
  for (let i = 0; i < 50; i++) {
    if (preds.data[i] === labels.data[i]) correct++;
    if (preds.data[i] === labels.data[i] && !success[i]) robust++;
    if (success[i]) assert.notEqual(preds.data[50 + i], labels.data[i]);
  }
  assert.equal(correct / 50, result.cleanAccuracy);
  assert.equal(robust / 50, result.robustAccuracy);
  // The adversarial images are valid inputs within eps of the clean ones.
  const clean = balancedSubset(loadDataset('mnist').test, 10, 50).images;
  let linf = 0;
  for (let i = 0; i < clean.length; i++) {
    const a = adv.data[i];
    assert.ok(a >= 0 && a <= 1);
    linf = Math.max(linf, Math.abs(a - clean[i]));
  }
  assert.ok(linf <= 0.2 + 1e-6 && linf > 0.1, `linf ${linf}`);

  // grid.png: 3 rows (clean, delta, adv) x 10 examples, 28x28 upscaled x2, spacing 2,
  // a 7-pixel caption band under each image, and a left margin of 2 + width("clean") + 2.
  const png = PNG.sync.read(readFileSync(join(out, 'grid.png')));
  const left = 2 + textWidth('clean') + 2;
  assert.deepEqual([png.width, png.height], [left + 10 * (56 + 2), 2 + 3 * (56 + 7 + 2)]);
  assert.equal(result.grid.examples, 10);
});

test('--workers 2 gives the same files as --workers 1 (batches attacked in worker threads)', () => {
  const run = (workers: string) => {
    const out = join(dir, `pgd-workers-${workers}`);
    const r = advlab(['attack', '--model', modelDir, '--attack', 'pgd', '--eps', '0.1', '--steps', '5', '--targeted', 'random', '--n', '40', '--batch-size', '16', '--workers', workers, '--out', out, '--no-progress']);
    assert.equal(r.code, 0, r.stderr);
    return { out, stdout: r.stdout, result: JSON.parse(readFileSync(join(out, 'result.json'), 'utf8')) as Record<string, any> };
  };
  const one = run('1');
  const two = run('2');
  assert.equal(one.result.workers, 1);
  assert.equal(two.result.workers, 2);
  assert.match(two.stdout, /workers: 2 threads attack batches in parallel/);
  for (const f of ['adversarial.npy', 'predictions.npy', 'success.npy', 'targets.npy']) {
    assert.deepEqual(readFileSync(join(two.out, f)), readFileSync(join(one.out, f)), f);
  }
  for (const k of ['robustAccuracy', 'successes', 'gradients', 'queries']) assert.equal(two.result[k], one.result[k], k);
});

test('--list shows every attack with its norms and parameters', () => {
  const r = advlab(['attack', '--list']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^fgsm: .*\n\s+kind fixed-budget, access gradient, norms linf, l2/m);
  assert.match(r.stdout, /^pgd: Projected Gradient Descent/m);
  assert.match(r.stdout, /paper: Madry et al\., ICLR 2018/);
  for (const p of ['--steps <integer>', '--step-size <number>', '--random-start', '--restarts <integer>']) assert.ok(r.stdout.includes(p), p);
  assert.match(r.stdout, /--steps <integer>\s+gradient steps per run \(default 40; >= 1\)/);
});

test('bad input exits with code 2 and one line naming the option', () => {
  const out = join(dir, 'bad');
  const base = ['attack', '--model', modelDir, '--n', '5', '--out', out, '--no-progress'];
  const cases: [string[], RegExp][] = [
    [[...base, '--attack', 'fgsm', '--eps', '-0.1'], /--eps: must be >= 0, got -0.1/],
    [[...base, '--attack', 'fgsm', '--eps', '5'], /--eps: 5 exceeds the largest linf distance .* is it in the input's scale\?/],
    [[...base, '--attack', 'cw-l9', '--eps', '0.1'], /--attack: unknown attack "cw-l9"; expected one of fgsm, /],
    [[...base, '--attack', 'fgsm', '--eps', '0.1', '--steps', '3'], /--steps: not a parameter of fgsm; it takes no parameters/],
    [[...base, '--attack', 'pgd', '--eps', '0.1', '--steps', '0'], /--steps: must be >= 1, got 0/],
    [[...base, '--attack', 'fgsm', '--eps', '0.1', '--workers', '0'], /--workers expects an integer >= 1, got "0"/],
    [[...base, '--attack', 'fgsm', '--eps', '0.1', '--workers', 'many'], /--workers expects an integer >= 1, got "many"/],
    [['attack', '--model', modelDir, '--attack', 'fgsm', '--eps', '0.1', '--n', '0', '--out', out], /--n expects an integer >= 1, got "0"/],
    [['attack', '--model', join(dir, 'no-such-model'), '--attack', 'fgsm', '--eps', '0.1', '--out', out], /--model: no saved model at ".*no-such-model"/],
    [['attack', '--model', 'mlp', '--attack', 'fgsm', '--eps', '0.1', '--out', out], /--model: "mlp" is a zoo name, which would be an untrained model/],
  ];
  for (const [args, message] of cases) {
    const r = advlab(args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.ok(!existsSync(join(out, 'result.json')));
  }
});

test('png-grid: a 2x2 grid puts known pixels at known positions; captions and row labels draw text', () => {
  // Four 2x2 gray images; image i, pixel j has value (4i + j) / 15, i.e. byte 17 * (4i + j).
  const images = Float32Array.from({ length: 16 }, (_, k) => k / 15);
  const opts = { imageShape: [2, 2, 1] as const, columns: 2, scale: 2, spacing: 1 };
  const img = renderGrid(images, opts);
  // Width = spacing + 2 * (2 * scale + spacing) = 11; same height.
  assert.deepEqual([img.width, img.height], [11, 11]);
  const at = (im: { width: number; data: Uint8Array }, x: number, y: number) => Array.from(im.data.subarray((y * im.width + x) * 4, (y * im.width + x) * 4 + 4));
  for (let i = 0; i < 4; i++) {
    const x0 = 1 + (i % 2) * 5;
    const y0 = 1 + Math.floor(i / 2) * 5;
    for (let y = 0; y < 4; y++) {
      for (let x = 0; x < 4; x++) {
        const v = 17 * (4 * i + 2 * Math.floor(y / 2) + Math.floor(x / 2));
        assert.deepEqual(at(img, x0 + x, y0 + y), [v, v, v, 255], `image ${i} at (${x}, ${y})`);
      }
    }
  }
  for (const [x, y] of [[0, 0], [5, 3], [10, 10], [3, 5]]) assert.deepEqual(at(img, x, y), [255, 255, 255, 255], `spacing at (${x}, ${y})`);
  // The PNG holds the same pixels.
  const decoded = PNG.sync.read(Buffer.from(gridPng(images, opts)));
  assert.deepEqual([decoded.width, decoded.height], [11, 11]);
  assert.deepEqual(Buffer.from(decoded.data), Buffer.from(img.data));

  // RGB images keep their channels; values outside [0, 1] are clipped.
  const rgb = renderGrid(new Float32Array([1, 0, 0.5, 2, -1, 0.2]), { imageShape: [1, 1, 3], spacing: 0 });
  assert.deepEqual([at(rgb, 0, 0), at(rgb, 1, 0)], [[255, 0, 128, 255], [255, 0, 51, 255]]);

  // Captions: a 7-pixel band (5-pixel glyphs, 1 pixel above and below) under each image.
  const labelled = renderGrid(images, { ...opts, labels: ['1->8', 'ab', undefined, '?'] });
  assert.deepEqual([labelled.width, labelled.height], [11, 1 + 2 * (4 + 7 + 1)]);
  // Glyph '1' (rows 010/110/010/010/111) starts at the band's top-left, 1 pixel under image 0.
  const ty = 1 + 4 + 1;
  assert.deepEqual(at(labelled, 1, ty), [255, 255, 255, 255]);
  assert.deepEqual(at(labelled, 2, ty), [0, 0, 0, 255]);
  assert.deepEqual(at(labelled, 1, ty + 1), [0, 0, 0, 255]);
  assert.deepEqual(at(labelled, 3, ty + 4), [0, 0, 0, 255]);
  // The images are where they were (row 0), text does not spill into the next cell.
  assert.deepEqual(at(labelled, 1, 1), [0, 0, 0, 255]);
  const band = (im: typeof labelled, x0: number, y0: number) => {
    let dark = 0;
    for (let y = y0; y < y0 + 7; y++) for (let x = x0; x < x0 + 4; x++) if (at(im, x, y)[0] < 128) dark++;
    return dark;
  };
  assert.ok(band(labelled, 6, 5) > 0, 'caption of image 1');
  assert.equal(band(labelled, 1, 5 + 12), 0, 'image 2 has no caption');
  // Coloured caption.
  const red = renderGrid(images.subarray(0, 4), { imageShape: [2, 2, 1], labels: [{ text: '1', color: [200, 0, 0] }], spacing: 0 });
  assert.deepEqual(at(red, 1, 2 + 1), [200, 0, 0, 255]);
  // Row labels widen the left margin by their width plus the spacing.
  const withRows = renderGrid(images, { ...opts, rowLabels: ['ab', 'c'] });
  assert.equal(withRows.width, 11 + textWidth('ab') + 1);

  // Perturbations: [-m, m] onto [0, 1], 0.5 = unchanged, m = largest |delta|.
  const p = perturbationImages(new Float32Array([0.5, 0.5, 0.5]), new Float32Array([0.3, 0.5, 0.6]));
  assert.ok(Math.abs(p.scale - 0.2) < 1e-6);
  assert.deepEqual(Array.from(p.images, (v) => Math.round(v * 1000) / 1000), [0, 0.5, 0.75]);
  assert.deepEqual(Array.from(perturbationImages(new Float32Array(2), new Float32Array(2)).images), [0.5, 0.5]);
  assert.throws(() => renderGrid(new Float32Array(5), opts), /images: expected a positive multiple of 2 x 2 x 1 = 4 values, got 5/);
  assert.throws(() => renderGrid(new Float32Array(8), { imageShape: [2, 2, 2] }), /imageShape: expected 1 \(gray\) or 3 \(RGB\) channels/);
});
