#!/usr/bin/env node
// `npm run demo`: the main job on the shipped data, through the real CLI.
// Trains the reference CNN on mnist with its defaults, attacks it with PGD
// (L-inf, eps 0.3) on 500 balanced test images (result.json, NPY, a PNG grid),
// trains the default unconditional GAN (scgan: self-conditioned on 100
// k-means clusters of the digits, no labels; non-saturating loss, generator
// weight average) and an adversarial autoencoder (Gaussian prior) on the same
// digits, each with its report, evaluates the CNN behind the AAE as an input
// purifier (plain and BPDA gradients, and the AAE as a detector):
// runs/demo-aae-defense, then evaluates the bare CNN's robustness with the
// standard suite over an eps sweep (runs/demo-eval/report.html) and, at eps
// 0.1 where part of it holds, with the fast suite, which audits itself
// against the standard one: runs/demo-fast/report.html.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const steps = [
  ['train', '--model', 'small-cnn', '--dataset', 'mnist', '--out', 'runs/demo-cnn', '--resume'],
  ['attack', '--model', 'runs/demo-cnn', '--dataset', 'mnist', '--attack', 'pgd', '--norm', 'linf', '--eps', '0.3', '--steps', '40', '--step-size', '0.01', '--n', '500', '--out', 'runs/demo-pgd'],
  ['gan', '--dataset', 'mnist', '--arch', 'scgan', '--loss', 'ns', '--epochs', '10', '--out', 'runs/demo-scgan', '--resume'],
  ['aae', '--dataset', 'mnist', '--prior', 'gaussian', '--latent', '8', '--epochs', '10', '--out', 'runs/demo-aae', '--resume'],
  ['eval', '--model', 'runs/demo-cnn', '--dataset', 'mnist', '--defense', 'aae:runs/demo-aae', '--attacks', 'pgd', '--eps', '0.3', '--n', '200', '--corruptions', 'none', '--minimal', 'none', '--out', 'runs/demo-aae-defense'],
  ['eval', '--model', 'runs/demo-cnn', '--dataset', 'mnist', '--suite', 'standard', '--norm', 'linf', '--eps', '0.3,0.15,0.2,0.25', '--n', '500', '--out', 'runs/demo-eval'],
  ['eval', '--model', 'runs/demo-cnn', '--dataset', 'mnist', '--suite', 'fast', '--norm', 'linf', '--eps', '0.1', '--n', '500', '--corruptions', 'none', '--out', 'runs/demo-fast'],
];
for (const args of steps) {
  console.log(`$ advlab ${args.join(' ')}`);
  const r = spawnSync(process.execPath, [join(root, 'bin', 'advlab.js'), ...args], { stdio: 'inherit', cwd: root });
  if (r.status !== 0) process.exit(r.status ?? 1);
}
