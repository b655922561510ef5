/**
 * Exact (Clopper-Pearson) confidence bounds of a binomial proportion, by
 * bisection on the binomial distribution function computed in log space: no
 * normal approximation, so they hold at 0 or all successes and for small n.
 * Clopper & Pearson, "The use of confidence or fiducial limits illustrated in
 * the case of the binomial", Biometrika 1934.
 */

/** P(X <= k) for X ~ Binomial(n, p). */
export function binomialCdf(k: number, n: number, p: number): number {
  if (k < 0) return 0;
  if (k >= n) return 1;
  if (p <= 0) return 1;
  if (p >= 1) return 0;
  let logTerm = n * Math.log1p(-p); // log P(X = 0)
  let sum = Math.exp(logTerm);
  for (let i = 1; i <= k; i++) {
    logTerm += Math.log((n - i + 1) / i) + Math.log(p) - Math.log1p(-p);
    sum += Math.exp(logTerm);
  }
  return Math.min(1, sum);
}

/**
 * One-sided upper bound of p at confidence 1 - alpha after k successes in n
 * trials: the p at which seeing k or fewer has probability alpha (1 when k = n).
 */
export function clopperPearsonUpper(k: number, n: number, alpha = 0.05): number {
  check(k, n, alpha);
  if (k >= n) return 1;
  let lo = k / n;
  let hi = 1;
  for (let i = 0; i < 100; i++) {
    const mid = (lo + hi) / 2;
    if (binomialCdf(k, n, mid) > alpha) lo = mid;
    else hi = mid;
  }
  return hi;
}

/** One-sided lower bound of p at confidence 1 - alpha after k successes in n trials (0 when k = 0). */
export function clopperPearsonLower(k: number, n: number, alpha = 0.05): number {
  check(k, n, alpha);
  if (k <= 0) return 0;
  return 1 - clopperPearsonUpper(n - k, n, alpha);
}

function check(k: number, n: number, alpha: number): void {
  if (!Number.isSafeInteger(n) || n < 1 || !Number.isSafeInteger(k) || k < 0 || k > n) throw new RangeError(`expected integers 0 <= k <= n, n >= 1, got k = ${k}, n = ${n}`);
  if (!(alpha > 0 && alpha < 1)) throw new RangeError(`expected 0 < alpha < 1, got ${alpha}`);
}
