// `npm run build:web`: the playground as a static site in site/ (plain files,
// deployable anywhere): the page bundled by esbuild (the core and the page
// code; no Node module), tfjs's .wasm files, the shipped models and test digits.
import { cpSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';
import { wasmDir } from '../src/node/backend.js';

export const SITE = join(import.meta.dirname, '..', 'site');

/** Builds the site into `out` (default site/) and returns its folder. */
export async function buildWeb(out = SITE): Promise<string> {
  const root = join(import.meta.dirname, '..');
  rmSync(out, { recursive: true, force: true });
  mkdirSync(join(out, 'wasm'), { recursive: true });
  await build({
    entryPoints: { playground: join(root, 'src', 'web', 'playground', 'main.ts'), 'eval-worker': join(root, 'src', 'web', 'playground', 'eval-worker.ts'), 'attack-worker': join(root, 'src', 'web', 'playground', 'attack-worker.ts') },
    bundle: true,
    platform: 'browser',
    format: 'esm',
    target: 'es2022',
    minify: true,
    sourcemap: true,
    outdir: out,
    logLevel: 'warning',
  });
  for (const f of ['index.html', 'style.css']) cpSync(join(root, 'src', 'web', 'playground', f), join(out, f));
  for (const f of readdirSync(wasmDir()).filter((f) => f.endsWith('.wasm'))) cpSync(join(wasmDir(), f), join(out, 'wasm', f));
  cpSync(join(root, 'assets', 'models'), join(out, 'models'), { recursive: true });
  cpSync(join(root, 'assets', 'web'), join(out, 'data'), { recursive: true });
  return out;
}

if (process.argv[1] === import.meta.filename) {
  const out = await buildWeb();
  console.log(`built the playground into ${out}`);
}
