import { copyFileSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend, wasmDir } from '../src/node/backend.js';
import { buildModel } from '../src/models/zoo.js';
import { Classifier } from '../src/models/classifier.js';
import { serveFolder } from '../src/node/serve.js';
import { bundleForBrowser, launchChromium } from '../test/fixtures/browser.js';
import { machine, round } from './measure.js';
import { attackStepTiming } from './attack-step.js';

const BATCH = 128;

/**
 * Issue 21: the small-cnn attack step (forward, cross-entropy, input gradient)
 * and forward pass at batch 128 in headless chromium (Debian's, driven by
 * playwright-core) on wasm with one thread, on wasm with threads in a
 * cross-origin-isolated page, and on webgl (SwiftShader: a software GPU, so a
 * floor, not what a real GPU gives), next to Node's wasm figure on the same
 * model in the same run. The page bundles the core with esbuild, as a site would.
 */
export async function benchBrowser(log: (s: string) => void) {
  const out: Record<string, unknown> = { machine: machine(), batch: BATCH, model: 'small-cnn (seed 0), 28x28x1, 10 classes' };
  const backend = await initBackend({ backend: 'wasm' });
  const node = nodeFigures();
  out.node = { backend: backend.name, threads: backend.threads, ...node };
  log(`node wasm (1 thread): attack step ${node.stepMs} ms = ${node.gradientImagesPerSecond} gradient-images/s, forward ${node.forwardMs} ms`);

  const dir = mkdtempSync(join(tmpdir(), 'advlab-bench-browser-'));
  try {
    await bundleForBrowser('bench/browser-page.ts', join(dir, 'bench.js'));
    for (const f of readdirSync(wasmDir()).filter((f) => f.endsWith('.wasm'))) copyFileSync(join(wasmDir(), f), join(dir, f));
    writeFileSync(join(dir, 'index.html'), '<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,"><script type="module" src="bench.js"></script>');
    const runs: { name: string; backend: string; isolated: boolean; wasmThreads?: boolean; gpu?: boolean; repeats: number }[] = [
      { name: 'wasm, 1 thread', backend: 'wasm', isolated: false, repeats: 9 },
      { name: 'wasm, threads (cross-origin isolated)', backend: 'wasm', isolated: true, wasmThreads: true, repeats: 9 },
      { name: 'webgl (SwiftShader)', backend: 'webgl', isolated: false, gpu: true, repeats: 5 },
    ];
    const browser: Record<string, unknown>[] = [];
    for (const run of runs) {
      const server = await serveFolder(dir, { isolated: run.isolated });
      const context = await launchChromium(join(dir, `profile-${browser.length}`), { gpu: run.gpu });
      try {
        const page = await context.newPage();
        const errors: string[] = [];
        page.on('pageerror', (e) => errors.push(e.message));
        await page.goto(server.url, { waitUntil: 'load' });
        await page.waitForFunction(() => (globalThis as { advlabBenchReady?: boolean }).advlabBenchReady === true, undefined, { timeout: 60_000 });
        const r = (await page.evaluate((c) => (globalThis as unknown as { advlabBench: (c: unknown) => Promise<unknown> }).advlabBench(c), { backend: run.backend, wasmThreads: run.wasmThreads, batch: BATCH, warmup: 3, repeats: run.repeats })) as { stepMs: number; forwardMs: number; threads: number; crossOriginIsolated: boolean; tfjsBackend: string };
        const entry = { name: run.name, ...r, stepMs: round(r.stepMs), forwardMs: round(r.forwardMs), gradientImagesPerSecond: round((BATCH / r.stepMs) * 1000), stepToNode: round(r.stepMs / node.stepMs, 2), errors };
        browser.push(entry);
        log(`chromium ${run.name}: attack step ${entry.stepMs} ms (${entry.stepToNode}x node), forward ${entry.forwardMs} ms, threads ${r.threads}, isolated ${r.crossOriginIsolated}`);
      } catch (e) {
        browser.push({ name: run.name, error: e instanceof Error ? e.message.split('\n')[0] : String(e) });
        log(`chromium ${run.name}: failed: ${e instanceof Error ? e.message.split('\n')[0] : e}`);
      } finally {
        await context.close();
        await server.close();
      }
    }
    out.chromium = browser;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return out;
}

/** The same step and forward pass in this process (Node, wasm, one thread). */
function nodeFigures() {
  const model = buildModel('small-cnn', { inputShape: [28, 28, 1], numClasses: 10, seed: 0 });
  const classifier = Classifier.fromModel(model);
  try {
    const { stepMs, forwardMs } = attackStepTiming(classifier, BATCH);
    return { stepMs, forwardMs, gradientImagesPerSecond: round((BATCH / stepMs) * 1000) };
  } finally {
    classifier.dispose();
    model.dispose();
  }
}
