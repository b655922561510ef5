#!/usr/bin/env node
// `npm run demo`: the main job on the shipped data, through the real CLI.
// Trains the reference CNN on mnist with its defaults and reports clean accuracy.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const steps = [['train', '--model', 'small-cnn', '--dataset', 'mnist', '--out', 'runs/demo-cnn', ...process.argv.slice(2)]];
for (const args of steps) {
  console.log(`$ advlab ${args.join(' ')}`);
  const r = spawnSync(process.execPath, [join(root, 'bin', 'advlab.js'), ...args], { stdio: 'inherit', cwd: root });
  if (r.status !== 0) process.exit(r.status ?? 1);
}
