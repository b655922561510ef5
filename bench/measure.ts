import { cpus } from 'node:os';

/** Result of timing one operation. */
export interface Timing {
  medianMs: number;
  repeats: number;
  warmup: number;
}

/**
 * Median wall time of `fn` after `warmup` calls; stops repeating once `budgetMs`
 * is spent (at least one timed run), so very slow backends still finish.
 */
export function time(fn: () => void, { warmup = 2, repeats = 7, budgetMs = 20000 } = {}): Timing {
  let spent = 0;
  let w = 0;
  for (; w < warmup && spent < budgetMs / 2; w++) {
    const t0 = performance.now();
    fn();
    spent += performance.now() - t0;
  }
  const runs: number[] = [];
  for (let i = 0; i < repeats && (runs.length === 0 || spent < budgetMs); i++) {
    const t0 = performance.now();
    fn();
    const dt = performance.now() - t0;
    runs.push(dt);
    spent += dt;
  }
  runs.sort((a, b) => a - b);
  const mid = runs.length >> 1;
  const medianMs = runs.length % 2 ? runs[mid] : (runs[mid - 1] + runs[mid]) / 2;
  return { medianMs: round(medianMs), repeats: runs.length, warmup: w };
}

export function round(x: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** What every section records about the machine. */
export function machine() {
  return { cores: cpus().length, cpu: cpus()[0]?.model ?? 'unknown', node: process.versions.node, date: new Date().toISOString() };
}

/**
 * Times the steps of a training loop from its per-batch progress events:
 * call `batch()` on each; `meanSeconds()` is the mean interval, the first
 * (warm-up) step left out.
 */
export function stepTimer(): { batch(): void; meanSeconds(): number } {
  const times: number[] = [];
  let last = performance.now();
  return {
    batch() {
      const now = performance.now();
      times.push(now - last);
      last = now;
    },
    meanSeconds() {
      const timed = times.slice(1);
      return timed.reduce((a, b) => a + b, 0) / timed.length / 1000;
    },
  };
}
