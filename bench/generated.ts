// Issue 24: robust training with generated data where real data is scarce
// (Gowal et al., NeurIPS 2021; Wang et al., ICML 2023).
//
// For each setting (mnist --train-n 1000 and 2000, fashion-mnist --train-n
// 2000): an acgan trained on the same real images only (no information from
// beyond the run's data), then PGD-AT (10 steps, eps warm-up over the first
// quarter) without and with 70% generated images per batch, at the same
// number of steps (an epoch is a pass over the real data either way); the
// standard suite on the same class-balanced test images for both.
//
// Every part trains into bench/.cache/generated/<part> with resume on; each
// part's figures are kept in bench/.cache/generated/parts.json as it ends;
// BENCH_GENERATED_PARTS (comma-separated, in order) runs some parts and keeps
// the others' previous figures.
import { join } from 'node:path';
import { initBackend } from '../src/node/backend.js';
import { ganRun } from '../src/jobs/gan-run.js';
import { defenseRun } from '../src/jobs/defense-run.js';
import { machine, round } from './measure.js';
import { loadParts, runParts } from './parts.js';

const CACHE = join('bench', '.cache', 'generated');
const FRACTION = 0.7;
const EVAL_IMAGES = 200;
const BATCH = 128;
/** Optimizer steps of PGD-AT: an epoch is a pass over the real images, with or without generated ones. */
const stepsOf = (epochs: number, realImages: number): number => epochs * Math.ceil(realImages / BATCH);
/** About 2,000 generator steps (batch 64) for every acgan: its samples need steps, not epochs. */
const GAN_STEPS = 2000;
const SETTINGS = [
  { name: 'mnist-1000', dataset: 'mnist', trainSize: 1000, eps: 0.3, epochs: 48 },
  { name: 'mnist-2000', dataset: 'mnist', trainSize: 2000, eps: 0.3, epochs: 24 },
  { name: 'fashion-2000', dataset: 'fashion-mnist', trainSize: 2000, eps: 0.1, epochs: 24 },
] as const;

export async function benchGenerated(log: (s: string) => void, previous?: unknown) {
  const backend = await initBackend({ backend: 'wasm' });
  const parts = loadParts(CACHE, previous);
  const PARTS: Record<string, () => Promise<void>> = {};

  for (const s of SETTINGS) {
    const ganDir = join(CACHE, `acgan-${s.name}`);
    PARTS[`acgan-${s.name}`] = async () => {
      const epochs = Math.ceil(GAN_STEPS / Math.ceil(s.trainSize / 64));
      const r = await ganRun({ dataset: s.dataset, arch: 'acgan', trainSize: s.trainSize, epochs, batchSize: 64, workers: 2, out: ganDir, resume: true, seed: 0 }, backend);
      const m = r.metrics;
      parts[`acgan-${s.name}`] = { epochs, trainSize: s.trainSize, seconds: round(r.history.reduce((t, h) => t + h.seconds, 0), 0), fid: m ? round(m.fid, 2) : null, classAccuracy: m?.classAccuracy ? round(m.classAccuracy.overall, 4) : null };
    };
    for (const withGenerated of [false, true]) {
      const name = `${withGenerated ? 'at-gen' : 'at'}-${s.name}`;
      PARTS[name] = async () => {
        const r = await defenseRun(
          {
            model: 'small-cnn',
            dataset: s.dataset,
            trainSize: s.trainSize,
            defense: 'pgd-at',
            defenseEps: s.eps,
            epsWarmup: Math.round(s.epochs / 4),
            epochs: s.epochs,
            batchSize: BATCH,
            augment: 'shift:1',
            seed: 0,
            workers: 2,
            evidence: { suite: 'standard', n: EVAL_IMAGES, eps: [s.eps] },
            out: join(CACHE, name),
            resume: true,
            ...(withGenerated ? { generated: ganDir, generatedFraction: FRACTION } : {}),
            onProgress: () => {},
          },
          backend,
        );
        const d = r.evidence!.defended;
        parts[name] = {
          setting: s.name,
          generated: withGenerated ? { fraction: FRACTION, n: r.generated?.n ?? null, seconds: round(r.generated?.seconds ?? 0, 0) } : null,
          epochs: r.history.length,
          // dataset.trainSize is what trains: --train-n less the 256 images the defense holds out for its watch.
          steps: stepsOf(r.history.length, r.dataset.trainSize),
          realTrainImages: r.dataset.trainSize,
          trainingMinutes: round((r.defense.trainingSeconds + (r.generated?.seconds ?? 0)) / 60, 1),
          cleanAccuracy: round(d.cleanAccuracy, 4),
          robustAccuracy: round(d.robustAccuracy, 4),
          confidenceInterval: d.confidenceInterval.map((x) => round(x, 4)),
          evalImages: d.count,
          eps: s.eps,
          suite: 'standard',
          sanity: d.sanity,
        };
      };
    }
  }

  await runParts(CACHE, 'BENCH_GENERATED_PARTS', PARTS, parts, log);
  // Steps from each part's epochs and real images (parts measured before this formula was fixed kept a wrong count).
  for (const p of Object.values(parts) as { epochs?: number; realTrainImages?: number; steps?: number }[]) {
    if (p.realTrainImages !== undefined && p.epochs !== undefined) p.steps = stepsOf(p.epochs, p.realTrainImages);
  }
  // The gain in robust accuracy (percentage points) per setting, from the same run's figures.
  const gains: Record<string, unknown> = {};
  for (const s of SETTINGS) {
    const a = parts[`at-${s.name}`] as { robustAccuracy: number; cleanAccuracy: number } | undefined;
    const g = parts[`at-gen-${s.name}`] as { robustAccuracy: number; cleanAccuracy: number } | undefined;
    if (a && g) gains[s.name] = { robust: round(100 * (g.robustAccuracy - a.robustAccuracy), 1), clean: round(100 * (g.cleanAccuracy - a.cleanAccuracy), 1) };
  }
  return { machine: machine(), backend: backend.name, threads: backend.threads, kernels: backend.kernels, fraction: FRACTION, evalImages: EVAL_IMAGES, parts, gains };
}
