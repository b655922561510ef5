import { existsSync, readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initBackend } from '../src/node/backend.js';
import type { BackendInfo } from '../src/engine/backend.js';
import { loadModel } from '../src/node/model-files.js';
import { defenseRun, type DefenseRunOptions } from '../src/jobs/defense-run.js';
import { evalRun } from '../src/jobs/eval-run.js';
import type { EvalRunResult } from '../src/robustness/types.js';
import { Classifier } from '../src/models/classifier.js';
import { readNpy } from '../src/node/data/formats/npy.js';
import { machine, round } from './measure.js';
import { attackStepTiming } from './attack-step.js';

const CACHE = join(dirname(fileURLToPath(import.meta.url)), '.cache');
const N = 500;
const BATCH = 128;

/** The adversarially trained models of issue 7, trained into bench/.cache when absent. */
export const ADVERSARIAL_MODELS = {
  // `advlab train --defense pgd-at --defense-eps 0.3 --defense-steps 10 --eps-warmup 3 --epochs 12 --batch-size 128`
  'mnist-pgd-at': { dataset: 'mnist', eps: 0.3, training: { model: 'small-cnn', dataset: 'mnist', defense: 'pgd-at', defenseEps: 0.3, defenseSteps: 10, epsWarmup: 3, epochs: 12, batchSize: 128 } },
  // 8,000 training images, 5 epochs, 10 steps of 0.025
  'fashion-pgd-at': { dataset: 'fashion-mnist', eps: 0.1, training: { model: 'small-cnn', dataset: 'fashion-mnist', trainSize: 8000, defense: 'pgd-at', defenseEps: 0.1, defenseSteps: 10, epochs: 5, batchSize: 128 } },
  'fashion-trades': { dataset: 'fashion-mnist', eps: 0.1, training: { model: 'small-cnn', dataset: 'fashion-mnist', trainSize: 8000, defense: 'trades', defenseEps: 0.1, defenseSteps: 10, epochs: 5, batchSize: 128 } },
} as const satisfies Record<string, { dataset: string; eps: number; training: Omit<DefenseRunOptions, 'out'> }>;
type ModelName = keyof typeof ADVERSARIAL_MODELS;

/** Where a model of {@link ADVERSARIAL_MODELS} is cached. */
export const modelDir = (name: ModelName) => join(CACHE, name);

/**
 * Issue 19: `advlab eval` as a user runs it (500 class-balanced test images,
 * 2 workers, corruptions and sanity checks included) with the standard suite
 * and with the fast one, on the adversarially trained small-cnns of issue 7:
 * mnist PGD-AT at L-inf 0.3, fashion-mnist PGD-AT and TRADES at 0.1. For each:
 * whole wall time, gradients and forward passes per image, robust accuracy,
 * what each stage broke, the white-box stages' gradient-images per
 * thread-second next to the engine's batch-128 attack step measured in the
 * same run, and the fast suite's audit; then fast against standard.
 * Each run writes `bench/.cache/eval-<model>-<suite>`; a finished one is read
 * back (its figures are those of the session that made it). Environment:
 * ADVLAB_BENCH_ONLY=mnist-pgd-at,... picks models; ADVLAB_BENCH_FRESH=1 reruns.
 */
export async function benchEval(log: (s: string) => void, previous?: unknown) {
  const only = process.env.ADVLAB_BENCH_ONLY?.split(',').filter(Boolean);
  const kept = only && previous && typeof previous === 'object' ? ((previous as Record<string, unknown>).models as Record<string, unknown> | undefined) ?? {} : {};
  const backend = await initBackend({ backend: 'wasm' });
  const out: Record<string, unknown> = { machine: machine(), backend: backend.name, threads: backend.threads, kernels: backend.kernels, workers: 2, images: N, batch: BATCH };
  const mnistDir = await ensureModel('mnist-pgd-at', backend, log);
  const engine = await engineFigures(mnistDir);
  out.engine = engine;
  log(`engine (small-cnn, batch ${BATCH}, one thread): attack step ${engine.attackStepMs} ms = ${engine.gradientImagesPerThreadSecond} gradient-images/s, forward ${engine.forwardMs} ms = ${engine.forwardImagesPerThreadSecond} images/s`);
  const models: Record<string, unknown> = { ...kept };
  for (const name of Object.keys(ADVERSARIAL_MODELS) as ModelName[]) {
    if (only && !only.includes(name)) continue;
    const spec = ADVERSARIAL_MODELS[name];
    const dir = await ensureModel(name, backend, log);
    const entry: Record<string, unknown> = { model: describeModel(dir), dataset: spec.dataset, eps: spec.eps };
    for (const suite of ['standard', 'fast'] as const) entry[suite] = await runSuite(name, dir, spec.dataset, spec.eps, suite, engine.gradientImagesPerThreadSecond, backend, log);
    const s = entry.standard as SuiteFigures;
    const f = entry.fast as SuiteFigures;
    entry.fastAgainstStandard = {
      wallRatio: s.wallSeconds && f.wallSeconds ? round(f.wallSeconds / s.wallSeconds, 3) : null,
      robustDifferenceImages: f.robustCount - s.robustCount,
      auditMisses: f.audit?.misses ?? null,
      // Points the standard suite broke that the fast run (audit included) left robust, and the reverse.
      missedByFast: f.brokenSet.filter((_, i) => s.brokenSet[i] && !f.brokenSet[i]).length,
      missedByStandard: f.brokenSet.filter((b, i) => b && !s.brokenSet[i]).length,
    };
    log(`${name}: fast/standard wall ${JSON.stringify(entry.fastAgainstStandard)}`);
    for (const suite of ['standard', 'fast'] as const) delete (entry[suite] as Partial<SuiteFigures>).brokenSet;
    models[name] = entry;
  }
  out.models = models;
  return out;
}

/** The trained model's folder, training it first (issue 7's recipe, resumable) if absent. */
async function ensureModel(name: ModelName, backend: BackendInfo, log: (s: string) => void): Promise<string> {
  const dir = modelDir(name);
  if (!existsSync(join(dir, 'model', 'model.json'))) {
    const spec = ADVERSARIAL_MODELS[name];
    log(`adversarially training ${name} (${JSON.stringify(spec.training)}) into ${dir}`);
    await defenseRun({ ...spec.training, out: dir, resume: true, evidence: false }, backend);
  }
  return dir;
}

function describeModel(dir: string) {
  const run = JSON.parse(readFileSync(join(dir, 'result.json'), 'utf8')) as { options: object; dataset: { trainSize: number }; cleanAccuracy: number; secondsPerEpoch: number; epochs: number };
  return { options: run.options, trainSize: run.dataset.trainSize, epochs: run.epochs, secondsPerEpoch: round(run.secondsPerEpoch, 1), cleanAccuracyFullTestSplit: round(run.cleanAccuracy, 4) };
}

/**
 * The engine's own speed on the evaluated model: one attack step (logits,
 * cross-entropy, input gradient) and one forward pass on a batch of 128, on
 * one thread, as the suite's workers run them.
 */
async function engineFigures(dir: string) {
  const model = await loadModel(dir);
  const classifier = Classifier.fromModel(model);
  try {
    const { stepMs, forwardMs } = attackStepTiming(classifier, BATCH);
    return {
      model: 'small-cnn (mnist-pgd-at)',
      batch: BATCH,
      attackStepMs: stepMs,
      gradientImagesPerThreadSecond: round((BATCH / stepMs) * 1000, 1),
      forwardMs,
      forwardImagesPerThreadSecond: round((BATCH / forwardMs) * 1000, 1),
    };
  } finally {
    classifier.dispose();
    model.dispose();
  }
}

interface SuiteFigures {
  wallSeconds: number | null;
  robustCount: number;
  brokenSet: boolean[];
  audit?: { misses: number } | null;
}

/** One `advlab eval` run (or its finished result), and its figures. */
async function runSuite(name: ModelName, dir: string, dataset: string, eps: number, suite: 'standard' | 'fast', engineRate: number, backend: BackendInfo, log: (s: string) => void) {
  const outDir = join(CACHE, `eval-${name}-${suite}-${N}`);
  const file = join(outDir, 'result.json');
  const fresh = process.env.ADVLAB_BENCH_FRESH === '1' || !existsSync(file);
  const t0 = performance.now();
  // The same options as `advlab eval --model <dir> --dataset <d> --eps <eps> --n 500 --suite <suite> --workers 2 [--resume]`.
  const r: EvalRunResult = fresh
    ? await evalRun({ model: dir, dataset, suite, eps: [eps], n: N, batchSize: BATCH, out: outDir, resume: true, workers: 2 }, backend)
    : (JSON.parse(readFileSync(file, 'utf8')) as EvalRunResult);
  const wall = fresh && !r.resumed ? round((performance.now() - t0) / 1000, 1) : null;
  const s = r.sweep[0];
  const whiteBox = s.stages.filter((st) => r.suite.stages.find((d) => d.name === st.name)?.whiteBox);
  const whiteGradients = whiteBox.reduce((a, st) => a + st.gradients, 0);
  const whiteSeconds = whiteBox.reduce((a, st) => a + st.seconds, 0);
  const rate = whiteSeconds > 0 ? whiteGradients / whiteSeconds : 0;
  const brokenBy = readNpy(join(outDir, r.files?.brokenBy ?? 'broken-by.npy')).data as Int32Array;
  const figures = {
    wallSeconds: wall,
    // With the run's own clock when this session did not make it (read back, or resumed).
    runSeconds: round(r.seconds, 1),
    finishedAt: r.finishedAt,
    cleanAccuracy: r.cleanAccuracy,
    robustAccuracy: r.robustAccuracy,
    robustCount: Math.round(r.robustAccuracy * r.count),
    confidenceInterval: r.confidenceInterval.map((v) => round(v, 4)),
    gradientsPerImage: round(s.gradientsPerImage, 1),
    queriesPerImage: round(s.queriesPerImage, 1),
    forwardsPerImage: round(s.queriesPerImage - s.gradientsPerImage, 1),
    suiteThreadSeconds: round(s.seconds, 1),
    whiteBoxGradientImagesPerThreadSecond: round(rate, 1),
    whiteBoxRateToEngine: engineRate > 0 ? round(rate / engineRate, 3) : null,
    stages: s.stages.map((st) => ({ name: st.name, broken: st.broken, attacked: st.attacked, gradients: st.gradients, queries: st.queries, threadSeconds: round(st.seconds, 1), gradientImagesPerThreadSecond: st.seconds > 0 ? round(st.gradients / st.seconds, 1) : 0 })),
    sanity: r.sanity.verdict,
    sanityWarnings: r.sanity.checks.filter((c) => c.verdict === 'warn').map((c) => c.id),
    audit: r.audit ? { sampled: r.audit.sampled, robustBefore: r.audit.robustBefore, misses: r.audit.misses, escalated: r.audit.escalated, gapUpperPoints: r.audit.gapUpperPoints, gradients: r.audit.gradients, queries: r.audit.queries, threadSeconds: round(r.audit.seconds, 1) } : null,
    report: `bench/.cache/eval-${name}-${suite}-${N}/report.html`,
    brokenSet: Array.from(brokenBy, (b) => b >= 0),
  };
  log(`${name} ${suite} eps ${eps}: robust ${figures.robustAccuracy} (${figures.robustCount}/${r.count}), wall ${wall ?? `read back (${figures.runSeconds} s)`}, ${figures.gradientsPerImage} grads + ${figures.forwardsPerImage} forwards per image, white-box ${figures.whiteBoxGradientImagesPerThreadSecond} grad-img/thread-s (${figures.whiteBoxRateToEngine} of the engine), sanity ${figures.sanity}${figures.audit ? `, audit ${figures.audit.misses} misses of ${figures.audit.sampled}` : ''}`);
  return figures;
}
