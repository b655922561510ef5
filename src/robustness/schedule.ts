/**
 * The order of work of an evaluation, without any tensor: each point's plan
 * (the suite's stages, a targeted stage once per target rank), where every
 * point stands in it, and which points go together into the next engine batch.
 *
 * AutoAttack runs each attack on every point still robust, batch after batch,
 * so after the first attack its batches hold a few survivors each. Here a point
 * moves to its next run as soon as its batch comes back, and a batch gathers
 * points at the same stage from anywhere in the set (target ranks mixed, since
 * targets are per point): the engine gets full batches and no core waits for a
 * stage to finish everywhere. A point's own sequence of runs is AutoAttack's,
 * and each run's random choices come from the point's own seeds, so the
 * verdicts do not depend on how points were batched or on the worker count.
 */
import type { Suite } from './types.js';

/** Marks in brokenBy besides a stage index. */
export const ROBUST = -1;
export const MISCLASSIFIED = -2;

/** One attack run of a point: stage index and target rank (0: untargeted; 2..k+1: the class ranked there by the clean logits). */
export interface PlannedRun {
  stage: number;
  rank: number;
}

/** Every point's sequence of runs for a suite. */
export function planRuns(suite: Suite): PlannedRun[] {
  return suite.stages.flatMap((s, stage) => (s.targetClasses ? Array.from({ length: s.targetClasses }, (_, r) => ({ stage, rank: r + 2 })) : [{ stage, rank: 0 }]));
}

/** What a stage spent and did, summed over its batches. */
export interface StageFigures {
  /** Points it broke first. */
  broken: number;
  /** Point-runs it attacked (points times target ranks). */
  attacked: number;
  gradients: number;
  queries: number;
  /** Busy seconds of the threads that ran it. */
  seconds: number;
  /** Engine batches it took. */
  batches: number;
}

/**
 * Where an evaluation stands (plain data: checkpointed as it is). A point is
 * done when `next` equals the plan's length.
 */
export interface PipelineState {
  count: number;
  /** Index into the plan of each point's next run. */
  next: Int32Array;
  /** Stage that broke the point first, {@link ROBUST} or {@link MISCLASSIFIED}. */
  brokenBy: Int8Array;
  /** Prediction on the final image: the adversarial one where broken, else the clean one. */
  finalPredictions: Int32Array;
  /** With allPoints: bit s set when stage s broke the point (also after an earlier stage had). */
  brokenStages: Uint32Array;
  stages: StageFigures[];
}

/** The start: misclassified points are done, the others at their first run. */
export function initialState(suite: Suite, labels: Int32Array, cleanPredictions: Int32Array): PipelineState {
  const n = labels.length;
  const plan = planRuns(suite);
  const state: PipelineState = {
    count: n,
    next: new Int32Array(n),
    brokenBy: new Int8Array(n).fill(ROBUST),
    finalPredictions: cleanPredictions.slice(),
    brokenStages: new Uint32Array(n),
    stages: suite.stages.map(() => ({ broken: 0, attacked: 0, gradients: 0, queries: 0, seconds: 0, batches: 0 })),
  };
  for (let i = 0; i < n; i++) {
    if (cleanPredictions[i] !== labels[i]) {
      state.brokenBy[i] = MISCLASSIFIED;
      state.next[i] = plan.length;
    }
  }
  return state;
}

/** Points of one engine batch, all at the same stage. */
export interface ScheduledBatch {
  stage: number;
  points: number[];
  ranks: number[];
}

/** What one point's run gave. */
export interface RunOutcome {
  broken: boolean;
  prediction: number;
}

/** Options of {@link Scheduler}. */
export interface SchedulerOptions {
  /** Largest batch (the engine's efficient size). */
  batchSize: number;
  /**
   * While other batches are running, a stage that can still grow is not sent
   * below this many points (a small batch runs the engine at a fraction of its
   * speed; waiting for points to arrive costs less). Default batchSize / 4.
   */
  minBatch?: number;
  /** Every stage on every correctly classified point (see EvaluateOptions.allPoints). */
  allPoints?: boolean;
}

/**
 * Hands out batches and takes back their outcomes. Policy, in order, when a
 * worker is free:
 * 1. a stage with a full batch ready: the deepest such stage (it drains the pipeline);
 * 2. a stage no more points can reach: its ready points split evenly over the
 *    free workers (the last stage's tail runs on every core);
 * 3. nothing running: the stage with the most ready points;
 * 4. else the stage with the most ready points, if at least minBatch, or wait.
 */
export class Scheduler {
  readonly plan: PlannedRun[];
  private readonly inFlight: Uint8Array;
  private running = 0;
  private readonly minBatch: number;
  /** Each stage's largest batch. */
  private readonly stageBatch: number[];
  private readonly allPoints: boolean;

  constructor(
    suite: Suite,
    readonly state: PipelineState,
    options: SchedulerOptions,
  ) {
    this.plan = planRuns(suite);
    this.inFlight = new Uint8Array(state.count);
    this.minBatch = Math.max(1, options.minBatch ?? Math.ceil(options.batchSize / 4));
    this.stageBatch = suite.stages.map((s) => Math.max(1, Math.min(options.batchSize, s.maxBatch ?? options.batchSize)));
    this.allPoints = options.allPoints ?? false;
  }

  /** True when every point has finished its plan. */
  get finished(): boolean {
    return this.running === 0 && this.state.next.every((k) => k >= this.plan.length);
  }

  /** Batches handed out and not yet completed. */
  get pending(): number {
    return this.running;
  }

  /** Points done with their plan. */
  get done(): number {
    let d = 0;
    for (const k of this.state.next) if (k >= this.plan.length) d++;
    return d;
  }

  /** The next batch for one of `idle` free workers, or null to wait for a running batch. */
  take(idle: number): ScheduledBatch | null {
    const stages = this.state.stages.length;
    const ready: number[][] = Array.from({ length: stages }, () => []);
    // Earliest stage a point not in flight, or in flight, can still reach.
    let reachFrom = Infinity;
    for (let i = 0; i < this.state.count; i++) {
      const k = this.state.next[i];
      if (k >= this.plan.length) continue;
      const stage = this.plan[k].stage;
      if (this.inFlight[i]) {
        reachFrom = Math.min(reachFrom, stage);
        continue;
      }
      ready[stage].push(i);
      reachFrom = Math.min(reachFrom, stage + 1);
    }
    const counts = ready.map((r) => r.length);
    if (counts.every((c) => c === 0)) return null;
    const deepest = (ok: (s: number) => boolean) => {
      for (let s = stages - 1; s >= 0; s--) if (ok(s)) return s;
      return -1;
    };
    const largest = () => counts.indexOf(Math.max(...counts));
    const full = (s: number) => this.stageBatch[s];
    let stage = deepest((s) => counts[s] >= full(s));
    let size = stage >= 0 ? full(stage) : 0;
    if (stage < 0) {
      // Stages below reachFrom can still receive points; the others are complete.
      stage = deepest((s) => counts[s] > 0 && s < reachFrom);
      if (stage >= 0) size = Math.min(full(stage), Math.ceil(counts[stage] / Math.max(1, idle)));
    }
    if (stage < 0) {
      stage = largest();
      if (this.running > 0 && counts[stage] < Math.min(this.minBatch, full(stage))) return null;
      size = full(stage);
    }
    const points = ready[stage].slice(0, size);
    for (const i of points) this.inFlight[i] = 1;
    this.running++;
    return { stage, points, ranks: points.map((i) => this.plan[this.state.next[i]].rank) };
  }

  /**
   * Every ready point at once, by stage, in point order, in batches of at most
   * batchSize of equal size: the batches depend only on where the points
   * stand, not on which batch came back first. A caller that completes a whole
   * round before taking the next gets the same batches on every run, and on a
   * resume from a round's start (what a queue needs to find the jobs its
   * workers already did).
   */
  takeRound(): ScheduledBatch[] {
    const stages = this.state.stages.length;
    const ready: number[][] = Array.from({ length: stages }, () => []);
    for (let i = 0; i < this.state.count; i++) {
      const k = this.state.next[i];
      if (k < this.plan.length && !this.inFlight[i]) ready[this.plan[k].stage].push(i);
    }
    const out: ScheduledBatch[] = [];
    ready.forEach((points, stage) => {
      const parts = Math.ceil(points.length / this.stageBatch[stage]);
      const size = Math.ceil(points.length / Math.max(1, parts));
      for (let p = 0; p < points.length; p += size) {
        const chunk = points.slice(p, p + size);
        for (const i of chunk) this.inFlight[i] = 1;
        this.running++;
        out.push({ stage, points: chunk, ranks: chunk.map((i) => this.plan[this.state.next[i]].rank) });
      }
    });
    return out;
  }

  /** Records a batch's outcomes and its cost, and moves its points on. */
  complete(batch: ScheduledBatch, outcomes: readonly RunOutcome[], cost: { gradients: number; queries: number; seconds: number }): void {
    const { state, plan } = this;
    const figures = state.stages[batch.stage];
    figures.attacked += batch.points.length;
    figures.gradients += cost.gradients;
    figures.queries += cost.queries;
    figures.seconds += cost.seconds;
    figures.batches++;
    batch.points.forEach((i, j) => {
      this.inFlight[i] = 0;
      const o = outcomes[j];
      if (!o.broken) {
        state.next[i]++;
        return;
      }
      state.brokenStages[i] |= 1 << batch.stage;
      if (state.brokenBy[i] === ROBUST) {
        state.brokenBy[i] = batch.stage;
        state.finalPredictions[i] = o.prediction;
        figures.broken++;
      }
      // Broken: done, or with allPoints on to the next stage's first run.
      let k = state.next[i] + 1;
      if (this.allPoints) while (k < plan.length && plan[k].stage === batch.stage) k++;
      else k = plan.length;
      state.next[i] = k;
    });
    this.running--;
  }

  /** Frees the points of a batch that will not complete (its task failed), so they can be handed out again. */
  abandon(batch: ScheduledBatch): void {
    for (const i of batch.points) this.inFlight[i] = 0;
    this.running--;
  }
}
