// Issue 23: certificates on mnist small-cnn (7,996-image training split).
//
// - Randomized smoothing: small-cnn trained with Gaussian noise augmentation at
//   sigma 0.25, 0.5 and 1.0, certified on 500 class-balanced test images with
//   n = 10,000 copies (n0 100, alpha 0.001), with the attack on the smoothed
//   classifier and the consistency check at L2 0.5 / 1 / 1.5 / 2 on the first
//   100 images; what n = 100,000 would take is extrapolated from the measured
//   throughput (the work is linear in the copies).
// - Samples per second on one thread and on both cores (the same images).
// - IBP: small-cnn trained with --defense ibp for Linf 0.1 and 0.3, verified on
//   1,000 test images next to PGD-40, and on the first 500 of them next to the
//   standard suite (the check: verified never above what the suite leaves).
// - Consistency regularization at sigma 0.5 next to Gaussian augmentation.
//
// Every part trains and certifies into bench/.cache/certify/<part> with resume
// on, so a killed bench continues where it stopped, and each part's figures
// are kept in bench/.cache/certify/parts.json as it ends; BENCH_CERTIFY_PARTS
// (comma-separated part names, in the order to run them) runs some parts and
// keeps the others' previous figures.
import { join } from 'node:path';
import { initBackend } from '../src/node/backend.js';
import { trainRun } from '../src/jobs/train-run.js';
import { defenseRun } from '../src/jobs/defense-run.js';
import { certifyRun, type CertifyRunResult } from '../src/jobs/certify-run.js';
import { existsSync, readFileSync } from 'node:fs';
import { verifyRun } from '../src/jobs/verify-run.js';
import { machine, round } from './measure.js';
import { loadParts, runParts } from './parts.js';

const CACHE = join('bench', '.cache', 'certify');
const SIGMAS = [0.25, 0.5, 1.0];
const RADII = [0.5, 1, 1.5, 2];
const TRAIN_EPOCHS = 15;
const SAMPLES = 10_000;
const IMAGES = 500;
const ATTACK_IMAGES = 100;
/** Gowal et al. train at 0.2 for a 0.1 target and at 0.4 for 0.3; IBP's default eps scale is 1.1. */
const IBP = [
  { eps: 0.1, scale: 2 },
  { eps: 0.3, scale: 4 / 3 },
];
const IBP_EPOCHS = 20;
const SUITE_CHECK_IMAGES = 500;

/** Published certified accuracy of Gaussian augmentation (LeNet, 60k images, n = 100,000; Jeong & Shin 2020's certify logs) at L2 0 / 0.5 / 1 / 1.5 / 2. */
const ANCHORS: Record<string, number[]> = { '0.25': [99.2, 96.7, 0, 0, 0], '0.5': [99.2, 96.9, 89.8, 67.8, 0], '1': [96.3, 91.4, 79.9, 59.5, 32.5] };

/** The certified-accuracy curve as [radius, accuracy] pairs, rounded (a few KB per curve). */
function curvePoints(curve: { radius: number; accuracy: number }[]): [number, number][] {
  return curve.map((p) => [round(p.radius, 4), round(p.accuracy, 4)]);
}

export async function benchCertify(log: (s: string) => void, previous?: unknown) {
  const backend = await initBackend({ backend: 'wasm' });
  // Parts finished by an earlier (possibly killed) run of this section, then the ones in results.json.
  const parts = loadParts(CACHE, previous);
  const quiet = { onProgress: () => {} };
  const PARTS: Record<string, () => Promise<void>> = {};

  PARTS.throughput = async () => {
    // The same 8 images, n = 2,000, on one thread and on two workers: the default-trained model (throughput does not depend on the weights).
    const one = { model: 'assets/models/mnist-small-cnn', sigma: 0.5, samples: 2000, n: 8, attackRadii: [], ...quiet };
    const single = await certifyRun({ ...one, workers: 1, out: join(CACHE, 'throughput-1') }, backend);
    const both = await certifyRun({ ...one, workers: 2, out: join(CACHE, 'throughput-2') }, backend);
    parts.throughput = { images: 8, samples: 2000, oneThread: round(single.samplesPerSecond, 0), twoWorkers: round(both.samplesPerSecond, 0), speedup: round(both.samplesPerSecond / single.samplesPerSecond, 2) };
  };

  /** Certifies a trained run folder at sigma (500 images, n 10,000, the attack check on 100) and returns its figures. */
  const certified = async (dir: string, sigma: number) => {
    const cert = await certifyRun(
      { model: dir, dataset: 'mnist', sigma, samples: SAMPLES, n: IMAGES, attackRadii: RADII.filter((r) => r <= 3.2 * sigma), attackN: ATTACK_IMAGES, out: join(dir, 'certify'), resume: true, workers: 2, ...quiet },
      backend,
    );
    const at = (r: number) => round(100 * (cert.table.find((t) => t.radius === r)?.accuracy ?? 0), 1);
    return {
      images: cert.count,
      samples: SAMPLES,
      baseCleanAccuracy: round(cert.cleanAccuracy, 4),
      certifiedAccuracy: { r0: at(0), r05: at(0.5), r1: at(1), r15: at(1.5), r2: at(2) },
      abstentionRate: round(cert.abstentionRate, 4),
      maxRadius: round(cert.maxRadius, 3),
      seconds: round(cert.seconds, 0),
      samplesPerSecond: round(cert.samplesPerSecond, 0),
      secondsAtN100k: round((cert.seconds * (100_000 + 100)) / (SAMPLES + 100), 0),
      consistency: cert.attack?.consistency.map((c) => ({ radius: c.radius, images: c.images, certified: round(c.certifiedAccuracy, 3), attackedNotBroken: round(c.empiricalRobustAccuracy, 3), abstainedUnderAttack: c.abstainedUnderAttack, violations: c.violations.length })) ?? [],
      attackSeconds: round(cert.attack?.seconds ?? 0, 0),
      curve: curvePoints(cert.curve),
    };
  };

  for (const sigma of SIGMAS) PARTS[`smoothing-${sigma}`] = async () => {
    const name = `smoothing-${sigma}`;
    const dir = join(CACHE, `noise-${sigma}`);
    const trained = await trainRun({ model: 'small-cnn', dataset: 'mnist', epochs: TRAIN_EPOCHS, augment: `shift:1,noise:${sigma}`, out: dir, resume: true, workers: 2, ...quiet }, backend);
    log(`${name}: trained (${trained.cleanAccuracy.toFixed(4)} clean)`);
    parts[name] = {
      sigma,
      training: { epochs: TRAIN_EPOCHS, augment: `shift:1,noise:${sigma}`, trainImages: trained.dataset.trainSize, seconds: round(trained.history.reduce((a, h) => a + h.seconds, 0), 0), cleanAccuracy: round(trained.cleanAccuracy, 4) },
      anchor: ANCHORS[String(sigma)],
      ...(await certified(dir, sigma)),
    };
  };

  // Consistency regularization (Jeong & Shin 2020) at sigma 0.5, next to Gaussian augmentation at the same sigma and epochs.
  PARTS['consistency-0.5'] = async () => {
    const sigma = 0.5;
    const dir = join(CACHE, 'consistency-0.5');
    const trained = await defenseRun({ model: 'small-cnn', dataset: 'mnist', defense: 'consistency', defenseEps: sigma, epochs: TRAIN_EPOCHS, evidence: false, out: dir, resume: true, workers: 2, ...quiet }, backend);
    parts['consistency-0.5'] = {
      sigma,
      training: { defense: 'consistency', lambda: trained.defense.consistency?.lambda, eta: trained.defense.consistency?.eta, copies: trained.defense.consistency?.copies, epochs: TRAIN_EPOCHS, minutes: round(trained.defense.trainingSeconds / 60, 1), cleanAccuracy: round(trained.cleanAccuracy, 4) },
      ...(await certified(dir, sigma)),
    };
  };

  for (const { eps, scale } of IBP) PARTS[`ibp-${eps}`] = async () => {
    const name = `ibp-${eps}`;
    const dir = join(CACHE, `ibp-${eps}`);
    const trained = await defenseRun(
      {
        model: 'small-cnn',
        dataset: 'mnist',
        defense: 'ibp',
        defenseEps: eps,
        ibpEpsScale: scale,
        epsWarmup: 8,
        ibpFlatEpochs: 1,
        epochs: IBP_EPOCHS,
        batchSize: 100,
        evidence: false,
        out: dir,
        resume: true,
        workers: 2,
        ...quiet,
      },
      backend,
    );
    const verified = await verifyRun({ model: dir, dataset: 'mnist', eps: [eps], n: 1000, out: join(dir, 'verify'), workers: 2, onProgress: () => {} }, backend);
    const p = verified.points[0];
    parts[name] = {
      eps,
      trainEps: round(eps * scale, 3),
      epochs: IBP_EPOCHS,
      trainingMinutes: round(trained.defense.trainingSeconds / 60, 1),
      images: verified.count,
      cleanAccuracy: round(verified.cleanAccuracy, 4),
      verifiedAccuracy: round(p.verifiedAccuracy, 4),
      verifiedError: round(1 - p.verifiedAccuracy, 4),
      pgdRobustAccuracy: p.pgdRobustAccuracy === null ? null : round(p.pgdRobustAccuracy, 4),
      violations: p.violations,
      anchorVerifiedError: eps === 0.1 ? 0.0223 : 0.0805,
    };
    // The check proper: verified never above what the standard suite (AutoAttack-grade) leaves, on the first 500 of those images (the suite costs minutes per hundred robust images).
    const t0 = performance.now();
    const checked = await verifyRun({ model: dir, dataset: 'mnist', eps: [eps], n: SUITE_CHECK_IMAGES, pgdSteps: 0, suite: 'standard', out: join(dir, 'verify-suite'), workers: 2, onProgress: () => {} }, backend);
    const c = checked.points[0];
    (parts[name] as Record<string, unknown>).suiteCheck = {
      images: checked.count,
      suite: 'standard',
      cleanAccuracy: round(checked.cleanAccuracy, 4),
      verifiedAccuracy: round(c.verifiedAccuracy, 4),
      suiteRobustAccuracy: c.suiteRobustAccuracy === null ? null : round(c.suiteRobustAccuracy, 4),
      violations: c.violations,
      minutes: round((performance.now() - t0) / 60000, 1),
    };
  };

  await runParts(CACHE, 'BENCH_CERTIFY_PARTS', PARTS, parts, log);
  // Parts measured before their curve was recorded take it from their run's result.json while the cache still has it (the README's figure is drawn from these).
  for (const [name, dir] of [...SIGMAS.map((s) => [`smoothing-${s}`, join(CACHE, `noise-${s}`)]), ['consistency-0.5', join(CACHE, 'consistency-0.5')]]) {
    const p = parts[name] as { curve?: unknown } | undefined;
    const file = join(dir, 'certify', 'result.json');
    if (p && !p.curve && existsSync(file)) p.curve = curvePoints((JSON.parse(readFileSync(file, 'utf8')) as CertifyRunResult).curve);
  }
  // What n = 100,000 would take on two workers, from the quiet throughput figure (the runs above may have shared the machine).
  const quietRate = (parts.throughput as { twoWorkers?: number } | undefined)?.twoWorkers;
  for (const sigma of SIGMAS) {
    const p = parts[`smoothing-${sigma}`] as { images: number; quietHoursAtN100k?: number } | undefined;
    if (p && quietRate) p.quietHoursAtN100k = round((p.images * (100_000 + 100)) / quietRate / 3600, 2);
  }
  return { machine: machine(), backend: backend.name, threads: backend.threads, kernels: backend.kernels, model: 'small-cnn', dataset: 'mnist', parts };
}
