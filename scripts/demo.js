#!/usr/bin/env node
// `npm run demo`: the main job on the shipped data, through the real CLI, in a
// few minutes on the models advlab ships (assets/models, made by
// scripts/web-assets.ts): PGD against the mnist small-cnn (runs/demo-pgd), the
// fast suite with its audit against the standard one on the PGD-trained twin
// (runs/demo-fast/report.html), certified L2 radii of the consistency-trained
// small-cnn smoothed at sigma 0.5, checked against an attack on the smoothed
// classifier (runs/demo-certify/report.html), an AdvGAN generator trained
// for one epoch against the CNN and attacking 200 test images in one forward
// pass each (runs/demo-advgan/report.html), 64 digits from the shipped scgan
// generator (runs/demo-samples.png), and the playground site built into site/
// (then `npm run playground` serves it).
// `npm run demo -- --train` trains everything instead (about 30 minutes):
// the CNN, an scgan and an adversarial autoencoder, the CNN behind the
// autoencoder as a purifier, the standard suite over an eps sweep, and a
// consistency-trained CNN certified by randomized smoothing.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const shipped = [
  ['attack', '--model', 'assets/models/mnist-small-cnn', '--dataset', 'mnist', '--attack', 'pgd', '--norm', 'linf', '--eps', '0.3', '--steps', '40', '--n', '500', '--out', 'runs/demo-pgd'],
  ['eval', '--model', 'assets/models/mnist-small-cnn-pgd-at', '--dataset', 'mnist', '--suite', 'fast', '--norm', 'linf', '--eps', '0.3', '--n', '100', '--audit', '10', '--corruptions', 'none', '--sanity-sample', '50', '--out', 'runs/demo-fast'],
  ['certify', '--model', 'assets/models/mnist-small-cnn-consistency-0.5', '--dataset', 'mnist', '--sigma', '0.5', '--n', '50', '--samples', '2000', '--attack-n', '20', '--out', 'runs/demo-certify'],
  ['advgan', '--model', 'assets/models/mnist-small-cnn', '--dataset', 'mnist', '--eps', '0.3', '--epochs', '1', '--n', '200', '--out', 'runs/demo-advgan'],
  ['gan', 'sample', '--model', 'assets/models/mnist-scgan-generator', '--n', '64', '--out', 'runs/demo-samples.png'],
];
const trained = [
  ['train', '--model', 'small-cnn', '--dataset', 'mnist', '--out', 'runs/demo-cnn', '--resume'],
  ['attack', '--model', 'runs/demo-cnn', '--dataset', 'mnist', '--attack', 'pgd', '--norm', 'linf', '--eps', '0.3', '--steps', '40', '--n', '500', '--out', 'runs/demo-pgd'],
  ['gan', '--dataset', 'mnist', '--arch', 'scgan', '--loss', 'ns', '--epochs', '10', '--out', 'runs/demo-scgan', '--resume'],
  ['aae', '--dataset', 'mnist', '--prior', 'gaussian', '--latent', '8', '--epochs', '10', '--out', 'runs/demo-aae', '--resume'],
  ['eval', '--model', 'runs/demo-cnn', '--dataset', 'mnist', '--defense', 'aae:runs/demo-aae', '--attacks', 'pgd', '--eps', '0.3', '--n', '200', '--corruptions', 'none', '--minimal', 'none', '--out', 'runs/demo-aae-defense'],
  ['eval', '--model', 'runs/demo-cnn', '--dataset', 'mnist', '--suite', 'standard', '--norm', 'linf', '--eps', '0.3,0.15,0.2,0.25', '--n', '500', '--out', 'runs/demo-eval'],
  ['eval', '--model', 'runs/demo-cnn', '--dataset', 'mnist', '--suite', 'fast', '--norm', 'linf', '--eps', '0.1', '--n', '500', '--corruptions', 'none', '--out', 'runs/demo-fast'],
  ['train', '--model', 'small-cnn', '--dataset', 'mnist', '--defense', 'consistency', '--defense-eps', '0.5', '--epochs', '5', '--out', 'runs/demo-consistency', '--resume'],
  ['certify', '--model', 'runs/demo-consistency', '--dataset', 'mnist', '--sigma', '0.5', '--n', '100', '--samples', '10000', '--out', 'runs/demo-certify', '--resume'],
  ['advgan', '--model', 'runs/demo-cnn', '--dataset', 'mnist', '--eps', '0.3', '--epochs', '5', '--n', '500', '--out', 'runs/demo-advgan', '--resume'],
];
for (const args of process.argv.includes('--train') ? trained : shipped) {
  console.log(`$ advlab ${args.join(' ')}`);
  const r = spawnSync(process.execPath, [join(root, 'bin', 'advlab.js'), ...args], { stdio: 'inherit', cwd: root });
  if (r.status !== 0) process.exit(r.status ?? 1);
}
console.log('$ npm run build:web');
const web = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'scripts', 'build-web.ts')], { stdio: 'inherit', cwd: root });
if (web.status !== 0) process.exit(web.status ?? 1);
console.log('the playground is in site/: `npm run playground` serves it on http://127.0.0.1:8080/');
