/**
 * `advlab certify`: randomized smoothing (robustness/smoothing.ts) on a
 * class-balanced subset of a test split: CERTIFY per image (or PREDICT with
 * `mode: 'predict'`), spread over worker threads image by image (each image
 * has its own seed, so results do not depend on the workers), checkpointed
 * after every wave of images so a killed run resumes without redoing them.
 * Writes result.json (per-image certificates, the certified-accuracy curve,
 * abstention, samples per second) and report.html.
 *
 * Then, at each of `attackRadii`, the attack on the smoothed classifier
 * (robustness/smoothed-attack.ts) on the first `attackN` images the smoothed
 * classifier gets right, judged by PREDICT: the empirical robust accuracy
 * next to the certified one, and the consistency check between them (an
 * image certified at a radius and broken within it fails the run loudly).
 */
import { join } from 'node:path';
import { existsSync, readFileSync } from 'node:fs';
import { tfl } from '../engine/tf.js';
import type { BackendInfo } from '../engine/backend.js';
import { clearWorkerModels } from '../models/pool-model.js';
import { startJobPool, workerCount } from '../node/workers.js';
import type { WorkerPool } from '../node/worker-pool.js';
import { loadModelJob, type ModelJobOptions } from './job-options.js';
import { Classifier } from '../models/classifier.js';
import { classifierPredictions } from '../models/evaluate.js';
import { packageVersions } from './train-run.js';
import { runMeta, type RunMeta } from '../report/meta.js';
import { writeFileAtomic, writeJsonAtomic } from '../node/atomic.js';
import { checkOutputFolder, type OutputLayout } from '../node/paths.js';
import { InputError } from '../errors.js';
import { ABSTAIN, certifiedAccuracy, certifiedRadius, certifyImages, predictImages, SMOOTHING_DEFAULTS, type Certificate } from '../robustness/smoothing.js';
import { deriveSeed } from '../util/rng.js';
import { SMOOTHED_ATTACK_DEFAULTS, attackAndPredict, smoothingConsistency, type SmoothedAttackOutcome, type SmoothingConsistency } from '../robustness/smoothed-attack.js';
import { SMOOTHING_TASK_URL, type SmoothedAttackPayload } from '../robustness/smoothing-task.js';
import { shareClassifier } from '../models/pool-model.js';
import { countParameters } from '../models/artifacts.js';

/** Options of {@link certifyRun}. */
export interface CertifyRunOptions extends Omit<ModelJobOptions, 'queue'> {
  /** Noise level in the input's scale. */
  sigma: number;
  /** Estimation copies n (default 100,000, the paper's). */
  samples?: number;
  /** Selection copies n0 (default 100). */
  n0?: number;
  /** Failure probability alpha (default 0.001). */
  alpha?: number;
  /** Noisy copies per forward pass (default 400). */
  noiseBatch?: number;
  /** `certify` (default) or `predict`. */
  mode?: 'certify' | 'predict';
  /** Clip each noisy copy to the bounds, as part of the base classifier (default true; see robustness/smoothing.ts). */
  clipNoise?: boolean;
  /** L2 radii of the attack on the smoothed classifier (default 0.5 and 1; [] for none). Certify mode only. */
  attackRadii?: number[];
  /** Images attacked at each radius: the first this many the smoothed classifier gets right (default 100). */
  attackN?: number;
  /** PGD steps and noisy copies per step of the attack (default 20 and 32). */
  attackSteps?: number;
  attackSamples?: number;
  /** PREDICT's copies at the attacked point (default 1,000). */
  attackPredictN?: number;
  resume?: boolean;
  /** Stop after this many images are done (simulates a kill, for tests). */
  stopAfterImages?: number;
  onProgress?: (event: CertifyRunEvent) => void;
}

export type CertifyRunEvent =
  | { type: 'model'; path: string; parameters: number }
  | { type: 'resumed'; done: number }
  | { type: 'progress'; done: number; total: number }
  | { type: 'attack-progress'; done: number; total: number };

/** One image's outcome in result.json. */
export interface ImageCertificate {
  index: number;
  label: number;
  /** The smoothed classifier's class, or -1 (abstain). */
  prediction: number;
  /** Certified L2 radius (0 when abstaining; 0 in predict mode). */
  radius: number;
  /** certify: the lower bound of the top class's probability; predict: the binomial test's p-value. */
  pALower: number | null;
  pValue: number | null;
}

/** result.json of `advlab certify`. */
export interface CertifyRunResult extends RunMeta {
  options: { model: string; dataset: string; n: number; sigma: number; samples: number; n0: number; alpha: number; noiseBatch: number; mode: 'certify' | 'predict'; clipNoise: boolean; seed: number; bounds: [number, number]; out: string };
  mode: 'certify' | 'predict';
  dataset: { name: string; testSize: number; numClasses: number; imageShape: number[] };
  model: { path: string; parameters: number };
  count: number;
  /** The base classifier on the clean images. */
  cleanAccuracy: number;
  /** The smoothed classifier correct (not abstaining). */
  smoothedAccuracy: number;
  abstentionRate: number;
  /** The largest radius `samples` copies can certify (all copies on one class). */
  maxRadius: number;
  /** Certified accuracy on a fine radius grid (the plot); empty in predict mode. */
  curve: { radius: number; accuracy: number }[];
  /** Certified accuracy at 0, 0.5, 1, 1.5, 2 and 2.5 (the papers' table); empty in predict mode. */
  table: { radius: number; accuracy: number }[];
  certificates: ImageCertificate[];
  /** The attack on the smoothed classifier and the consistency check per radius; null without one. */
  attack: SmoothedAttackResult | null;
  /** Seconds of certification (this call's and any resumed part's), and noisy copies classified per second. */
  seconds: number;
  samplesPerSecond: number;
  workers: number;
  files: { report: string; checkpoint: string };
  packages: Record<string, string>;
}

/** The attack part of result.json. */
export interface SmoothedAttackResult {
  radii: number[];
  /** Images attacked at each radius (those the smoothed classifier got right among the first attackN), out of attackN. */
  attacked: number;
  images: number;
  steps: number;
  samples: number;
  predictN: number;
  /** Per radius: certified and empirical robust accuracy on the same images, abstentions, violations (image indices). */
  consistency: SmoothingConsistency[];
  /** Per radius, per attacked image: PREDICT at the attacked point and its L2 distance. */
  outcomes: { radius: number; index: number; prediction: number; distance: number }[];
  seconds: number;
}

export const CERTIFY_OUTPUT: OutputLayout = { files: ['result.json', 'report.html'], folders: ['checkpoint'] };
export const CERTIFY_DEFAULTS = {
  dataset: 'mnist',
  n: 500,
  batchSize: 128,
  seed: 0,
  mode: 'certify' as const,
  samples: SMOOTHING_DEFAULTS.n,
  n0: SMOOTHING_DEFAULTS.n0,
  alpha: SMOOTHING_DEFAULTS.alpha,
  noiseBatch: SMOOTHING_DEFAULTS.batchSize,
  attackRadii: [0.5, 1],
  attackN: 100,
  attackSteps: SMOOTHED_ATTACK_DEFAULTS.steps,
  attackSamples: SMOOTHED_ATTACK_DEFAULTS.samples,
  attackPredictN: 1000,
};

/** Radii of the result's table, as the papers report them. */
export const TABLE_RADII = [0, 0.5, 1, 1.5, 2, 2.5];

interface CertifyCheckpoint {
  key: string;
  done: number;
  seconds: number;
  certificates: ImageCertificate[];
  /** Outcomes of the attack jobs (radius-major) finished so far, and their seconds. */
  attackOutcomes?: SmoothedAttackResult['outcomes'];
  attackSeconds?: number;
}

/** Runs randomized smoothing over the subset (see the module comment). */
export async function certifyRun(options: CertifyRunOptions, backend: BackendInfo): Promise<CertifyRunResult> {
  const startedAt = new Date();
  checkOutputFolder(options.out, 'out', CERTIFY_OUTPUT);
  const mode = options.mode ?? CERTIFY_DEFAULTS.mode;
  if (mode !== 'certify' && mode !== 'predict') throw new InputError('mode', `expected certify or predict, got ${String(mode)}`);
  const settings = {
    sigma: options.sigma,
    n: options.samples ?? CERTIFY_DEFAULTS.samples,
    n0: options.n0 ?? CERTIFY_DEFAULTS.n0,
    alpha: options.alpha ?? CERTIFY_DEFAULTS.alpha,
    batchSize: options.noiseBatch ?? CERTIFY_DEFAULTS.noiseBatch,
    clipNoise: options.clipNoise ?? true,
  };
  const attack = {
    radii: mode === 'certify' ? (options.attackRadii ?? CERTIFY_DEFAULTS.attackRadii) : [],
    n: options.attackN ?? CERTIFY_DEFAULTS.attackN,
    steps: options.attackSteps ?? CERTIFY_DEFAULTS.attackSteps,
    samples: options.attackSamples ?? CERTIFY_DEFAULTS.attackSamples,
    predictN: options.attackPredictN ?? CERTIFY_DEFAULTS.attackPredictN,
  };
  for (const r of attack.radii) if (!(r > 0 && Number.isFinite(r))) throw new InputError('attackRadii', `expected positive L2 radii, got ${r}`);
  for (const [name, v] of [['attackN', attack.n], ['attackSteps', attack.steps], ['attackSamples', attack.samples], ['attackPredictN', attack.predictN]] as const) {
    if (!Number.isSafeInteger(v) || v < 1) throw new InputError(name, `expected an integer >= 1, got ${v}`);
  }
  if (!(settings.sigma > 0 && Number.isFinite(settings.sigma))) throw new InputError('sigma', `expected a positive noise level in the input's scale, got ${settings.sigma}`);
  for (const [name, v] of [['samples', settings.n], ['n0', settings.n0], ['noiseBatch', settings.batchSize]] as const) if (!Number.isSafeInteger(v) || v < 1) throw new InputError(name, `expected an integer >= 1, got ${v}`);
  if (!(settings.alpha > 0 && settings.alpha < 1)) throw new InputError('alpha', `expected a level in (0, 1), got ${settings.alpha}`);
  const seed = options.seed ?? CERTIFY_DEFAULTS.seed;
  const job = await loadModelJob(options, CERTIFY_DEFAULTS, (e) => e.type === 'model' && options.onProgress?.(e));
  const { subset } = job;
  const [h, w, c] = subset.imageShape;
  const size = h * w * c;
  const key = JSON.stringify({ model: job.modelPath, dataset: job.datasetSpec, images: job.n, mode, seed, ...settings, bounds: job.bounds, preprocess: options.preprocess ?? null, attack });
  const checkpointPath = join(options.out, 'checkpoint', 'certificates.json');
  let state: CertifyCheckpoint = { key, done: 0, seconds: 0, certificates: [] };
  if (options.resume && existsSync(checkpointPath)) {
    const saved = JSON.parse(readFileSync(checkpointPath, 'utf8')) as CertifyCheckpoint;
    if (saved.key !== key) throw new InputError('resume', `the checkpoint in ${checkpointPath} was written with other settings (model, data, sigma, samples, seed...); delete it or drop --resume`);
    state = saved;
    options.onProgress?.({ type: 'resumed', done: state.done });
  }
  let pool: WorkerPool | undefined;
  try {
    const classifier = Classifier.fromModel(job.model, { bounds: job.bounds, ...(options.preprocess ? { preprocess: options.preprocess } : {}) });
    // The base classifier on the clean images.
    const clean = await classifierPredictions(classifier, subset, options.batchSize ?? CERTIFY_DEFAULTS.batchSize);
    const correct = clean.filter((p, i) => p === subset.labels[i]).length;
    // Workers build the model from its Layers topology; a graph model runs in this thread.
    if (job.model instanceof tfl.LayersModel) pool = await startJobPool(workerCount(options.workers, backend, subset.count - state.done), backend);
    const workers = pool?.size ?? 1;
    const wave = 2 * workers;
    const stopAt = Math.min(subset.count, options.stopAfterImages ?? Infinity);
    while (state.done < stopAt) {
      const t0 = performance.now();
      const from = state.done;
      const to = Math.min(stopAt, from + wave);
      const images = subset.images.slice(from * size, to * size);
      const outcomes: ImageCertificate[] = [];
      if (mode === 'certify') {
        const certs: Certificate[] = await certifyImages(classifier, images, to - from, { ...settings, seed, firstIndex: from, ...(pool ? { pool } : {}) });
        certs.forEach((cert, i) => outcomes.push({ index: from + i, label: subset.labels[from + i], prediction: cert.prediction, radius: cert.radius, pALower: cert.pALower, pValue: null }));
      } else {
        const predictions = await predictImages(classifier, images, to - from, { ...settings, seed, firstIndex: from, ...(pool ? { pool } : {}) });
        predictions.forEach((p, i) => outcomes.push({ index: from + i, label: subset.labels[from + i], prediction: p.prediction, radius: 0, pALower: null, pValue: p.pValue }));
      }
      state = { ...state, key, done: to, seconds: state.seconds + (performance.now() - t0) / 1000, certificates: [...state.certificates, ...outcomes] };
      writeJsonAtomic(checkpointPath, state);
      options.onProgress?.({ type: 'progress', done: state.done, total: subset.count });
    }
    const certificates = state.certificates;
    const labels = certificates.map((x) => x.label);
    const finished = certificates.length;
    let attackResult: SmoothedAttackResult | null = null;
    if (attack.radii.length && finished === subset.count) {
      // The first attackN images, attacked where the smoothed classifier is right (elsewhere there is nothing to break).
      const chosen = certificates.slice(0, attack.n).filter((x) => x.prediction === x.label);
      const jobs = attack.radii.flatMap((radius) => chosen.map((x) => ({ radius, index: x.index, label: x.label })));
      const outcomes = state.attackOutcomes ?? [];
      let attackSeconds = state.attackSeconds ?? 0;
      const shared = pool ? await shareClassifier(classifier) : undefined;
      const wave = 2 * workers;
      while (outcomes.length < jobs.length) {
        const t0 = performance.now();
        const part = jobs.slice(outcomes.length, outcomes.length + wave);
        const payloads: Omit<SmoothedAttackPayload, 'classifier'>[] = part.map((j) => ({
          image: subset.images.slice(j.index * size, (j.index + 1) * size),
          label: j.label,
          options: {
            sigma: settings.sigma,
            radius: j.radius,
            steps: attack.steps,
            samples: attack.samples,
            clipNoise: settings.clipNoise,
            seed: deriveSeed(seed, `smoothed-attack:${j.radius}:${j.index}`),
            predictSeed: deriveSeed(seed, `smoothed-attack-predict:${j.radius}:${j.index}`),
            n: attack.predictN,
            alpha: settings.alpha,
            batchSize: settings.batchSize,
          },
        }));
        const results: SmoothedAttackOutcome[] = shared
          ? await pool!.run<SmoothedAttackOutcome, SmoothedAttackPayload>({ module: SMOOTHING_TASK_URL, name: 'smoothedAttackTask' }, payloads.map((p) => ({ ...p, classifier: shared })))
          : await sequential(payloads, (p) => attackAndPredict(classifier, p.image, p.label, p.options));
        results.forEach((o, k) => {
          const j = part[k];
          // Re-verify the ball (float64 distance; float32 rounding allowed).
          if (!(o.distance <= j.radius * (1 + 1e-5) + 1e-6)) throw new Error(`advlab bug: the attack on image ${j.index} left the L2 ball of ${j.radius} (distance ${o.distance})`);
          outcomes.push({ radius: j.radius, index: j.index, prediction: o.prediction, distance: o.distance });
        });
        attackSeconds += (performance.now() - t0) / 1000;
        state = { ...state, attackOutcomes: outcomes, attackSeconds };
        writeJsonAtomic(checkpointPath, state);
        options.onProgress?.({ type: 'attack-progress', done: outcomes.length, total: jobs.length });
      }
      const n = Math.min(attack.n, certificates.length);
      const consistency = attack.radii.map((radius) => {
        const attacked = new Map(outcomes.filter((o) => o.radius === radius).map((o) => [o.index, o.prediction]));
        return smoothingConsistency(
          certificates.slice(0, n).map((x) => ({ index: x.index, label: x.label, certified: x.prediction, radius: x.radius, attacked: attacked.get(x.index) ?? ABSTAIN })),
          radius,
        );
      });
      attackResult = { radii: attack.radii, attacked: chosen.length, images: n, steps: attack.steps, samples: attack.samples, predictN: attack.predictN, consistency, outcomes, seconds: attackSeconds };
    }
    const maxRadius = certifiedRadius(settings.n, settings.n, settings.alpha, settings.sigma).radius ?? 0;
    const grid = Array.from({ length: 201 }, (_, i) => (maxRadius * 1.05 * i) / 200);
    const copies = mode === 'certify' ? settings.n + settings.n0 : settings.n;
    const result: CertifyRunResult = {
      ...runMeta('certify', backend, seed, startedAt),
      options: { model: options.model, dataset: job.datasetSpec, n: job.n, sigma: settings.sigma, samples: settings.n, n0: settings.n0, alpha: settings.alpha, noiseBatch: settings.batchSize, mode, clipNoise: settings.clipNoise, seed, bounds: job.bounds, out: options.out },
      mode,
      dataset: { name: job.data.name, testSize: job.data.test.count, numClasses: job.data.numClasses, imageShape: [...job.data.test.imageShape] },
      model: { path: job.modelPath, parameters: countParameters(job.model) },
      count: finished,
      cleanAccuracy: correct / subset.count,
      smoothedAccuracy: finished ? certificates.filter((x) => x.prediction !== ABSTAIN && x.prediction === x.label).length / finished : 0,
      abstentionRate: finished ? certificates.filter((x) => x.prediction === ABSTAIN).length / finished : 0,
      maxRadius,
      curve: mode === 'certify' ? certifiedAccuracy(certificates, labels, grid) : [],
      table: mode === 'certify' ? certifiedAccuracy(certificates, labels, TABLE_RADII) : [],
      certificates,
      attack: attackResult,
      seconds: state.seconds,
      samplesPerSecond: state.seconds > 0 ? (finished * copies) / state.seconds : 0,
      workers,
      files: { report: 'report.html', checkpoint: 'checkpoint/certificates.json' },
      packages: packageVersions(),
    };
    const { renderCertifyReport } = await import('../report/certify-report.js');
    writeFileAtomic(join(options.out, 'report.html'), await renderCertifyReport(result));
    writeJsonAtomic(join(options.out, 'result.json'), result);
    const bad = attackResult?.consistency.filter((c) => c.violations.length > 0) ?? [];
    if (bad.length) {
      throw new Error(
        `certificates contradicted by the attack: ${bad.map((c) => `image(s) ${c.violations.join(', ')} certified at L2 ${c.radius} and broken within it`).join('; ')}. ` +
          `Each certificate and each PREDICT errs with probability at most alpha (${settings.alpha}); more than that is a bug in advlab (results kept in ${options.out} for the bug report)`,
      );
    }
    return result;
  } finally {
    await pool?.close();
    if (pool) await clearWorkerModels();
    job.model.dispose();
  }
}

/** `run` on each item in turn (one classifier in this thread). */
async function sequential<T, R>(items: readonly T[], run: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (const item of items) out.push(await run(item));
  return out;
}
