#!/usr/bin/env node
// `npm run demo`: the main job on the shipped data, through the real CLI.
// Trains the reference CNN on mnist with its defaults, then attacks it with PGD
// (L-inf, eps 0.3) on 500 balanced test images: result.json, NPY and a PNG grid.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const steps = [
  ['train', '--model', 'small-cnn', '--dataset', 'mnist', '--out', 'runs/demo-cnn', '--resume'],
  ['attack', '--model', 'runs/demo-cnn', '--dataset', 'mnist', '--attack', 'pgd', '--norm', 'linf', '--eps', '0.3', '--steps', '40', '--step-size', '0.01', '--n', '500', '--out', 'runs/demo-pgd'],
];
for (const args of steps) {
  console.log(`$ advlab ${args.join(' ')}`);
  const r = spawnSync(process.execPath, [join(root, 'bin', 'advlab.js'), ...args], { stdio: 'inherit', cwd: root });
  if (r.status !== 0) process.exit(r.status ?? 1);
}
