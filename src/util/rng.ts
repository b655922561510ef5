import { InputError } from '../errors.js';

/**
 * A small seeded pseudo-random generator (xoshiro128**, Blackman & Vigna 2018)
 * whose whole state is four 32-bit words, so it can be saved in a checkpoint
 * and restored exactly. Every random choice in advlab goes through one of these.
 */
export class Rng {
  private s: Uint32Array;

  /** Seeds from a non-negative integer with splitmix32, so nearby seeds give unrelated streams. */
  constructor(seed: number) {
    if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
      throw new InputError('seed', `expected an integer in [0, 2^32), got ${seed}`);
    }
    this.s = new Uint32Array(4);
    let x = seed >>> 0;
    for (let i = 0; i < 4; i++) {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      this.s[i] = (z ^ (z >>> 16)) >>> 0;
    }
    if (this.s.every((v) => v === 0)) this.s[0] = 1;
  }

  /** Restores a generator from {@link Rng.getState}. */
  static fromState(state: readonly number[]): Rng {
    if (state.length !== 4 || state.some((v) => !Number.isInteger(v) || v < 0 || v > 0xffffffff)) {
      throw new InputError('rngState', 'expected four unsigned 32-bit integers');
    }
    const r = new Rng(0);
    r.s = Uint32Array.from(state);
    return r;
  }

  /** The full state, for checkpoints. */
  getState(): number[] {
    return Array.from(this.s);
  }

  /** A uniformly distributed unsigned 32-bit integer. */
  nextUint32(): number {
    const s = this.s;
    const result = Math.imul(rotl(Math.imul(s[1], 5) >>> 0, 7), 9) >>> 0;
    const t = (s[1] << 9) >>> 0;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result;
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.nextUint32() / 4294967296;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** Standard normal sample (Box-Muller). */
  normal(): number {
    let u = 0;
    while (u === 0) u = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.next());
  }

  /**
   * Fills `out` with normal samples of standard deviation `sd`, two per pair
   * of uniforms (Box-Muller's cosine and sine), about twice as fast as
   * {@link normal} per value; a sequence of its own, not normal()'s.
   */
  fillNormal(out: Float32Array, sd = 1): Float32Array {
    for (let i = 0; i < out.length; i += 2) {
      let u = 0;
      while (u === 0) u = this.next();
      const r = sd * Math.sqrt(-2 * Math.log(u));
      const t = 2 * Math.PI * this.next();
      out[i] = r * Math.cos(t);
      if (i + 1 < out.length) out[i + 1] = r * Math.sin(t);
    }
    return out;
  }

  /** A seed for a derived generator or a tfjs initializer. */
  seed(): number {
    return this.nextUint32();
  }

  /** Shuffles `a` in place (Fisher-Yates) and returns it. */
  shuffle<T extends { length: number; [i: number]: any }>(a: T): T {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const tmp = a[i];
      a[i] = a[j];
      a[j] = tmp;
    }
    return a;
  }

  /** An index drawn with the probabilities whose running sums are `cumulative` (from {@link cumulativeProbabilities}). */
  categorical(cumulative: Float64Array): number {
    const u = this.next();
    let i = 0;
    while (i < cumulative.length - 1 && u >= cumulative[i]) i++;
    return i;
  }

  /** A random permutation of 0..n-1. */
  permutation(n: number): Int32Array {
    const p = new Int32Array(n);
    for (let i = 0; i < n; i++) p[i] = i;
    return this.shuffle(p);
  }
}

/** True when `p` holds `n` finite non-negative numbers summing to 1 (within 1e-6): a distribution {@link cumulativeProbabilities} can take. */
export function isDistribution(p: unknown, n: number): p is number[] {
  if (!Array.isArray(p) || p.length !== n || n === 0) return false;
  let sum = 0;
  for (const v of p) {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) return false;
    sum += v;
  }
  return Math.abs(sum - 1) < 1e-6;
}

/** Running sums of the probabilities `p`, the last set to 1 so rounding cannot leave a gap (for {@link Rng.categorical}). */
export function cumulativeProbabilities(p: readonly number[]): Float64Array {
  const c = new Float64Array(p.length);
  let s = 0;
  for (let i = 0; i < p.length; i++) c[i] = s += p[i];
  c[p.length - 1] = 1;
  return c;
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/**
 * A seed for an independent stream named `purpose` (e.g. "shuffle", "init"),
 * derived from the run's seed with FNV-1a, so adding a new random choice never
 * shifts the streams of the existing ones.
 */
export function deriveSeed(seed: number, purpose: string): number {
  let h = 0x811c9dc5 ^ (seed >>> 0);
  for (const ch of `:${purpose}`) {
    h ^= ch.charCodeAt(0);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  h ^= seed >>> 16;
  return Math.imul(h, 0x01000193) >>> 0;
}
