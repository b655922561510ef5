/**
 * The HTML report of `advlab eval`: one self-contained document (inline CSS,
 * plots as inline SVG, the example grid as a PNG data: URI, no script, no
 * external resource), so it opens offline from the run folder or an archive.
 *
 * Every string from the result is escaped through the {@link html} template;
 * only markup built here (the plots' SVG) is inserted raw.
 */
import { InputError } from '../errors.js';
import { bytesToBase64 } from '../util/base64.js';
import type { RunMeta } from './meta.js';
import type { Norm } from '../attacks/types.js';
import type { EvalRunResult, EpsilonResult, MinimalPerturbations, SanityCheck, StageSummary } from '../robustness/types.js';
import type { CorruptionAccuracyResult } from '../robustness/corruption-accuracy.js';
import { attackRows, captionName, type GridLabel, renderGrid, encodePng } from './png-grid.js';
import { corruptionPlot, formatEps, minimalHistogramPlot, normLabel, PLOT_FONT, robustAccuracyPlot, type PlotOptions } from './plots.js';

/** The evaluated examples at the headline eps, as `advlab eval` keeps them (NHWC float32, one entry per example). */
export interface EvalReportExamples {
  clean: Float32Array;
  adversarial: Float32Array;
  labels: Int32Array;
  cleanPredictions: Int32Array;
  adversarialPredictions: Int32Array;
  /** Index of the stage that broke each example; -1 robust, -2 misclassified clean. */
  brokenBy: Int8Array;
  imageShape: [number, number, number];
}

/** Options of {@link renderEvalReport}. */
export interface EvalReportOptions extends PlotOptions {
  /** Broken examples shown in the grid (default 10). */
  maxExamples?: number;
}

// ---------------------------------------------------------------------------
// Escaping

/** Markup that is already safe to insert (escaped, or built here). */
export class SafeHtml {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

/** Escapes text for HTML element content and quoted attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);
}

/** Trusted markup, inserted as is (only for markup this module builds, e.g. vega's SVG). */
export function raw(markup: string): SafeHtml {
  return new SafeHtml(markup);
}

/**
 * Template tag: interpolated strings and numbers are escaped, {@link SafeHtml}
 * is inserted as is, arrays are concatenated, null/undefined/false vanish. So
 * a value can only become markup by being wrapped on purpose.
 */
export function html(strings: TemplateStringsArray, ...values: unknown[]): SafeHtml {
  let out = strings[0];
  for (let i = 0; i < values.length; i++) out += fragment(values[i]) + strings[i + 1];
  return new SafeHtml(out);
}

function fragment(value: unknown): string {
  if (value instanceof SafeHtml) return value.value;
  if (Array.isArray(value)) return value.map(fragment).join('');
  if (value === null || value === undefined || value === false) return '';
  return escapeHtml(String(value));
}

// ---------------------------------------------------------------------------
// Number formatting (fixed locale, so the report does not depend on the machine)

const INT = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

/** 0.9023 -> "90.2%"; null -> "—". */
export function pct(x: number | null | undefined, digits = 1): string {
  return x === null || x === undefined || !Number.isFinite(x) ? '—' : `${(x * 100).toFixed(digits)}%`;
}

/** 12345 -> "12,345". */
export function int(x: number): string {
  return INT.format(x);
}

/** Up to 4 significant digits, no trailing zeros. */
export function num(x: number | null | undefined): string {
  if (x === null || x === undefined) return '—';
  if (!Number.isFinite(x)) return String(x);
  return Math.abs(x) >= 1e4 ? int(x) : String(Number(x.toPrecision(4)));
}

/** Exactly `digits` significant digits, for columns of norms (0.46 -> "0.460"). */
export function sig(x: number | null | undefined, digits = 3): string {
  return x === null || x === undefined ? '—' : Number.isFinite(x) ? x.toPrecision(digits) : String(x);
}

/** The settings rows every report ends with: backend, seed, versions (a run's {@link RunMeta}). */
export function runMetaRows(r: Pick<RunMeta, 'backend' | 'threads' | 'kernels' | 'seed' | 'advlabVersion' | 'tfjsVersion'>): SafeHtml {
  return html`<tr><th>backend</th><td>${r.backend} (${r.threads} thread${r.threads === 1 ? '' : 's'}, ${r.kernels} kernels)</td></tr>
<tr><th>seed</th><td>${r.seed}</td></tr>
<tr><th>advlab / tfjs</th><td>${r.advlabVersion} / ${r.tfjsVersion}</td></tr>`;
}

/** Seconds as "42.0 s", "3 min 12 s" or "2 h 05 min". */
export function duration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '—';
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const s = Math.round(seconds);
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} min`;
}

function ciText(ci: readonly [number, number]): string {
  return `[${pct(ci[0])}, ${pct(ci[1])}]`;
}

/**
 * eps as given, plus "k/255" when an L∞ budget on [0, 1] images looks like a
 * whole number of gray levels written in decimals (0.0314 -> 8/255); short
 * decimals like 0.2 are left alone even when they happen to be k/255.
 */
function epsText(eps: number, norm: Norm, bounds: readonly [number, number]): string {
  const text = formatEps(eps);
  const levels = eps * 255;
  const decimals = text.split('.')[1]?.length ?? 0;
  const grayLevels = norm === 'linf' && bounds[0] === 0 && bounds[1] === 1 && decimals > 2 && Math.round(levels) > 0 && Math.abs(levels - Math.round(levels)) < 0.02;
  return grayLevels ? `${text} (${Math.round(levels)}/255)` : text;
}

/** Any option or figure value as text: arrays joined, objects as JSON, null as "—". */
function valueText(value: unknown): string {
  if (value === null || value === undefined) return '—';
  if (typeof value === 'number') return num(value);
  if (Array.isArray(value)) return value.length ? value.map(valueText).join(', ') : '(none)';
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

// ---------------------------------------------------------------------------
// The document

/**
 * Renders the report of an `advlab eval` run as one HTML document: headline,
 * robust accuracy against eps, stages, classes, broken examples, minimal
 * perturbations, corruptions, sanity checks and run settings. Sections whose
 * data is null say "not run". Async because vega renders asynchronously.
 * Deterministic: the same inputs give the same bytes.
 */
export async function renderEvalReport(result: EvalRunResult, examples: EvalReportExamples, options: EvalReportOptions = {}): Promise<string> {
  checkExamples(examples);
  const headline = headlineSweep(result);
  const plotOptions: PlotOptions = { onWarning: options.onWarning };
  const epsPlot = result.sweep.length ? await robustAccuracyPlot({ sweep: result.sweep, cleanAccuracy: result.cleanAccuracy, norm: result.norm, minimal: result.minimal }, plotOptions) : null;
  const minimalPlot = result.minimal ? await minimalHistogramPlot(result.minimal, result.eps, plotOptions) : null;
  const corruptionSvg = result.corruptions ? await corruptionPlot(result.corruptions, plotOptions) : null;

  const body = html`<main>
${headerSection(result)}
${tocNav(result)}
${defenseSection(result)}
${auditSection(result)}
${epsSection(result, epsPlot)}
${stagesSection(result, headline)}
${classesSection(result, headline)}
${examplesSection(result, headline, examples, options.maxExamples ?? 10)}
${minimalSection(result, minimalPlot)}
${corruptionSection(result.corruptions, corruptionSvg)}
${sanitySection(result.sanity)}
${settingsSection(result)}
<footer>Generated by advlab ${result.advlabVersion} from result.json of <code>advlab eval</code>. Self-contained: no script, no external resources.</footer>
</main>`;
  return reportPage(`advlab eval: ${result.model} on ${result.dataset.name}`, result.advlabVersion, body.value);
}

/**
 * The page around a report's body: one self-contained HTML document (inline
 * CSS, no script, no external resource, so it opens offline). Every report
 * (eval, defense, gan) shares it.
 */
export function reportPage(title: string, advlabVersion: string, body: string, extraCss = ''): string {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light">
<meta name="generator" content="advlab ${escapeHtml(advlabVersion)}">
<link rel="icon" href="data:,">
<title>${escapeHtml(title)}</title>
<style>${REPORT_CSS}${extraCss}</style>
</head>
<body>
${body}
</body>
</html>
`;
}

/** The sweep entry of the headline eps (the first --eps), else the first entry; null for an empty sweep. */
function headlineSweep(result: EvalRunResult): EpsilonResult | null {
  return result.sweep.find((e) => e.eps === result.eps) ?? result.sweep[0] ?? null;
}

function checkExamples(x: EvalReportExamples): void {
  const [h, w, c] = x.imageShape ?? [];
  if (![h, w, c].every((d) => Number.isInteger(d) && d > 0)) throw new InputError('examples.imageShape', `expected [height, width, channels] of positive integers, got ${JSON.stringify(x.imageShape)}`);
  const n = x.labels.length;
  const size = h * w * c;
  if (x.clean.length !== n * size) throw new InputError('examples.clean', `expected ${n} images of ${size} values (${n * size}), got ${x.clean.length}`);
  if (x.adversarial.length !== n * size) throw new InputError('examples.adversarial', `expected ${n * size} values like the clean images, got ${x.adversarial.length}`);
  for (const key of ['cleanPredictions', 'adversarialPredictions', 'brokenBy'] as const) {
    if (x[key].length !== n) throw new InputError(`examples.${key}`, `expected ${n} entries (one per label), got ${x[key].length}`);
  }
}

function verdictBadge(verdict: string): SafeHtml {
  return html`<span class="badge ${verdict}">${verdict}</span>`;
}

function notRun(what: string): SafeHtml {
  return html`<p class="not-run">Not run: ${what}</p>`;
}

// ---------------------------------------------------------------------------
// Sections

function headerSection(r: EvalRunResult): SafeHtml {
  const counts = { pass: 0, warn: 0, skipped: 0 };
  for (const c of r.sanity.checks) counts[c.verdict]++;
  const correct = Math.round(r.cleanAccuracy * r.count);
  const robust = Math.round(r.robustAccuracy * r.count);
  const finished = /^\d{4}-\d\d-\d\dT\d\d:\d\d/.test(r.finishedAt) ? `${r.finishedAt.slice(0, 10)} ${r.finishedAt.slice(11, 16)} UTC` : r.finishedAt;
  return html`<header class="page">
<p class="kicker">advlab eval · robustness report</p>
<h1>${r.model} <span class="on">on</span> ${r.dataset.name}</h1>
<p class="subtitle">${int(r.count)} test images · norm ${normLabel(r.norm)} · suite ${r.suite.name} · seed ${r.seed} · ${finished}</p>
<div class="cards">
<div class="card"><div class="label">Clean accuracy</div><div class="value">${pct(r.cleanAccuracy)}</div><div class="sub">${int(correct)} / ${int(r.count)} correct</div></div>
<div class="card headline"><div class="label">Robust accuracy at ε = ${epsText(r.eps, r.norm, r.options.bounds)}</div><div class="value">${pct(r.robustAccuracy)}</div><div class="sub">95% CI ${ciText(r.confidenceInterval)} · ${int(robust)} / ${int(r.count)} · ${normLabel(r.norm)}</div></div>
<div class="card"><div class="label">Suite</div><div class="value small">${r.suite.name}</div><div class="sub">${r.suite.stages.map((s) => s.name).join(' → ')}</div></div>
<div class="card"><div class="label">Sanity checks</div><div class="value small">${verdictBadge(r.sanity.verdict)}</div><div class="sub">${counts.pass} pass · ${counts.warn} warn · ${counts.skipped} skipped</div></div>
</div>
</header>`;
}

function tocNav(r: EvalRunResult): SafeHtml {
  const items: [string, string][] = [
    ...(r.defense ? [['defense', 'Defense'] as [string, string]] : []),
    ...(r.audit ? [['audit', `Audit (${r.audit.misses} missed)`] as [string, string]] : []),
    ['eps', 'Robust accuracy vs ε'],
    ['stages', 'Stages'],
    ['classes', 'Per class'],
    ['examples', 'Broken examples'],
    ['minimal', 'Minimal perturbations'],
    ['corruptions', 'Corruptions'],
    ['sanity', `Sanity checks (${r.sanity.verdict})`],
    ['settings', 'Run settings'],
  ];
  return html`<nav class="toc">${items.map(([id, text]) => html`<a href="#${id}">${text}</a>`)}</nav>`;
}

function epsSection(r: EvalRunResult, svg: string | null): SafeHtml {
  if (!svg) return html`<section id="eps"><h2>Robust accuracy vs ε</h2>${notRun('the sweep is empty.')}</section>`;
  const caption = r.minimal
    ? `Dashed purple: the accuracy implied by the minimal perturbations ${r.minimal.attack} found (the fraction of all images correctly classified with a minimal norm above ε; a single attack's upper bound).`
    : '';
  const rows = r.sweep.map(
    (e) => html`<tr class="${e.eps === r.eps ? 'headline' : ''}"><td class="num">${epsText(e.eps, r.norm, r.options.bounds)}</td><td class="num">${pct(e.robustAccuracy)}</td><td class="num">${ciText(e.confidenceInterval)}</td><td class="num">${int(e.robustCount)}</td><td class="num">${num(e.gradientsPerImage)}</td><td class="num">${num(e.queriesPerImage)}</td><td class="num">${duration(e.seconds)}</td><td class="num">${num(e.imagesPerSecond)}</td></tr>`,
  );
  return html`<section id="eps">
<h2>Robust accuracy vs ε</h2>
<figure class="plot">${raw(svg)}
<figcaption>Each thin line "after X" is the accuracy left once stage X and every earlier stage have run. The bold line is the per-example worst case over all stages, with its 95% Wilson interval shaded; the gray dashed line is clean accuracy. ${caption}</figcaption></figure>
<table class="data">
<thead><tr><th class="num">ε (${normLabel(r.norm)})</th><th class="num">robust accuracy</th><th class="num">95% CI</th><th class="num">robust</th><th class="num">gradients / image</th><th class="num">queries / image</th><th class="num">time</th><th class="num">images / s</th></tr></thead>
<tbody>${rows}</tbody>
</table>
<p class="note">Highlighted: the headline ε (the first value of <code>--eps</code>).</p>
</section>`;
}

function stagesSection(r: EvalRunResult, e: EpsilonResult | null): SafeHtml {
  const title = html`<h2>Stages at ε = ${e ? epsText(e.eps, r.norm, r.options.bounds) : '—'}</h2>`;
  if (!e) return html`<section id="stages">${title}${notRun('the sweep is empty.')}</section>`;
  const suiteStage = (s: StageSummary) => r.suite.stages.find((x) => x.name === s.name);
  const rows = e.stages.map((s, i) => {
    const def = suiteStage(s);
    const access = def ? (def.whiteBox ? 'white-box' : 'black-box') : '—';
    const targets = def?.targetClasses ? `top ${def.targetClasses}` : 'untargeted';
    return html`<tr><td class="num">${i + 1}</td><td><strong>${s.name}</strong></td><td>${s.attack}</td><td>${access}</td><td>${targets}</td><td class="num">${int(s.attacked)}</td><td class="num">${int(s.broken)}</td><td class="num">${pct(s.robustAccuracyAfter)}</td><td class="num">${int(s.gradients)}</td><td class="num">${int(s.queries)}</td><td class="num">${duration(s.seconds)}</td></tr>`;
  });
  const broken = e.stages.reduce((a, s) => a + s.broken, 0);
  const byEntries = Object.entries(r.brokenBy).map(([k, v]) => html`<span class="pill">${k}: <strong>${int(v)}</strong></span>`);
  return html`<section id="stages">
${title}
<table class="data">
<thead><tr><th class="num">#</th><th>stage</th><th>attack</th><th>access</th><th>targets</th><th class="num">attacked</th><th class="num">broken</th><th class="num">robust after</th><th class="num">gradients</th><th class="num">queries</th><th class="num">time</th></tr></thead>
<tbody>${rows}</tbody>
<tfoot><tr><td></td><td>all stages</td><td></td><td></td><td></td><td></td><td class="num">${int(broken)}</td><td class="num">${pct(e.robustAccuracy)}</td><td class="num">${int(e.gradients)}</td><td class="num">${int(e.queries)}</td><td class="num">${duration(e.seconds)}</td></tr></tfoot>
</table>
<p class="note">Each stage attacks only the examples still robust when its turn comes ("attacked" counts each target class of a targeted stage). Outcome of every example at the headline ε: ${byEntries}</p>
</section>`;
}

function classesSection(r: EvalRunResult, e: EpsilonResult | null): SafeHtml {
  if (!e || e.perClass.length === 0) return html`<section id="classes"><h2>Per class</h2>${notRun('no per-class figures.')}</section>`;
  const bar = (x: number, cls: string) => html`<span class="bar ${cls}"><span style="width: ${(Math.max(0, Math.min(1, x)) * 100).toFixed(1)}%"></span></span>`;
  const rows = e.perClass.map(
    (c) => html`<tr><td class="num">${c.class}</td><td>${c.name}</td><td class="num">${int(c.count)}</td><td class="num">${pct(c.cleanAccuracy)}</td><td class="num">${pct(c.robustAccuracy)}</td><td class="bars">${bar(c.cleanAccuracy, 'clean')}${bar(c.robustAccuracy, 'robust')}</td></tr>`,
  );
  return html`<section id="classes">
<h2>Per class at ε = ${epsText(e.eps, r.norm, r.options.bounds)}</h2>
<table class="data compact">
<thead><tr><th class="num">class</th><th>name</th><th class="num">images</th><th class="num">clean</th><th class="num">robust</th><th><span class="key clean"></span>clean <span class="key robust"></span>robust</th></tr></thead>
<tbody>${rows}</tbody>
</table>
</section>`;
}

function examplesSection(r: EvalRunResult, e: EpsilonResult | null, x: EvalReportExamples, maxExamples: number): SafeHtml {
  const title = html`<h2>Broken examples at ε = ${epsText(r.eps, r.norm, r.options.bounds)}</h2>`;
  const [h, w, c] = x.imageShape;
  if (c !== 1 && c !== 3) return html`<section id="examples">${title}${notRun(`images with ${c} channels cannot be drawn (1 or 3 expected).`)}</section>`;
  const picked: number[] = [];
  for (let i = 0; i < x.brokenBy.length && picked.length < maxExamples; i++) if (x.brokenBy[i] >= 0) picked.push(i);
  if (picked.length === 0) return html`<section id="examples">${title}<p class="not-run">No example was broken at this ε.</p></section>`;
  const stageName = (k: number) => e?.stages[k]?.name ?? r.suite.stages[k]?.name ?? `stage ${k + 1}`;
  const grid = exampleGrid(x, picked, stageName, r.dataset.classNames);
  const className = (k: number) => r.dataset.classNames[k] ?? String(k);
  const size = h * w * c;
  const rows = picked.map((i) => {
    const norm = perturbationNorm(x.clean.subarray(i * size, (i + 1) * size), x.adversarial.subarray(i * size, (i + 1) * size), r.norm);
    return html`<tr><td class="num">${i}</td><td>${className(x.labels[i])}</td><td>${className(x.cleanPredictions[i])}</td><td class="bad">${className(x.adversarialPredictions[i])}</td><td>${stageName(x.brokenBy[i])}</td><td class="num">${sig(norm)}</td></tr>`;
  });
  return html`<section id="examples">
${title}
<figure class="grid"><img src="data:image/png;base64,${bytesToBase64(grid.png)}" width="${grid.width}" height="${grid.height}" alt="clean images, perturbations and adversarial images of ${picked.length} broken examples">
<figcaption>The first ${picked.length} broken examples. Top: clean image, captioned true→predicted. Middle: the perturbation (gray: unchanged; black and white: ∓${num(grid.scale)}), captioned with the stage that broke it. Bottom: the adversarial image, captioned true→predicted.</figcaption></figure>
<table class="data compact">
<thead><tr><th class="num">example</th><th>true class</th><th>clean prediction</th><th>adversarial prediction</th><th>broken by</th><th class="num">‖δ‖ (${normLabel(r.norm)})</th></tr></thead>
<tbody>${rows}</tbody>
</table>
</section>`;
}

/** Three rows (clean, perturbation, adversarial) of the picked examples as a PNG, with its pixel size. */
function exampleGrid(x: EvalReportExamples, picked: number[], stageName: (k: number) => string, classNames: string[]): { png: Uint8Array; width: number; height: number; scale: number } {
  const [h, w, c] = x.imageShape;
  const size = h * w * c;
  const k = picked.length;
  const clean = new Float32Array(k * size);
  const adversarial = new Float32Array(k * size);
  picked.forEach((i, j) => {
    clean.set(x.clean.subarray(i * size, (i + 1) * size), j * size);
    adversarial.set(x.adversarial.subarray(i * size, (i + 1) * size), j * size);
  });
  const { images, scale: deltaScale } = attackRows(clean, adversarial, k);
  // Long class names become indices in the captions, spelled out in the table.
  const name = captionName(classNames);
  const labels: GridLabel[] = [
    ...picked.map((i) => `${name(x.labels[i])}->${name(x.cleanPredictions[i])}`),
    ...picked.map((i) => stageName(x.brokenBy[i])),
    ...picked.map((i): GridLabel => ({ text: `${name(x.labels[i])}->${name(x.adversarialPredictions[i])}`, color: [200, 0, 0] })),
  ];
  // About 90 px per cell: large enough to see the perturbation, 10 cells fit the page.
  const scale = Math.max(1, Math.min(8, Math.floor(90 / Math.max(h, w))));
  const img = renderGrid(images, { imageShape: [h, w, c], columns: k, scale, spacing: 4, labels, rowLabels: ['clean', 'delta', 'adv'], fontScale: 2 });
  return { png: encodePng(img), width: img.width, height: img.height, scale: deltaScale };
}

function perturbationNorm(clean: Float32Array, adversarial: Float32Array, norm: Norm): number {
  let acc = 0;
  for (let i = 0; i < clean.length; i++) {
    const d = Math.abs(adversarial[i] - clean[i]);
    if (norm === 'linf') acc = Math.max(acc, d);
    else acc += norm === 'l2' ? d * d : d;
  }
  return norm === 'l2' ? Math.sqrt(acc) : acc;
}

function minimalSection(r: EvalRunResult, svg: string | null): SafeHtml {
  const m: MinimalPerturbations | null = r.minimal;
  if (!m) return html`<section id="minimal"><h2>Minimal perturbations</h2>${notRun('no minimal-perturbation attack was given (--minimal).')}</section>`;
  const facts: [string, string][] = [
    ['attack', m.attack],
    ['norm', normLabel(m.norm)],
    ['attacked', `${int(m.attacked)} correctly classified`],
    ['broken', `${int(m.found)} (${pct(m.attacked ? m.found / m.attacked : null)})`],
    ['median (all attacked)', m.median === null ? '— (fewer than half broken)' : sig(m.median)],
    ['median (broken)', sig(m.medianFound)],
    ['gradients / image', num(m.gradientsPerImage)],
    ['time', duration(m.seconds)],
  ];
  const quantiles = html`<table class="data compact quantiles"><thead><tr><th>quantile</th>${m.quantiles.map((q) => html`<th class="num">${pct(q.q, 0)}</th>`)}</tr></thead><tbody><tr><td>‖δ‖ (${normLabel(m.norm)})</td>${m.quantiles.map((q) => html`<td class="num">${sig(q.value)}</td>`)}</tr></tbody></table>`;
  return html`<section id="minimal">
<h2>Minimal perturbations</h2>
<div class="split">
<div>${kvTable(facts)}
<h3>Quantiles over all attacked</h3>
${quantiles}</div>
<figure class="plot">${svg ? raw(svg) : html`<p class="not-run">No histogram: no example was broken.</p>`}
<figcaption>The smallest ${normLabel(m.norm)} perturbation ${m.attack} found for each broken example; the ${int(m.attacked - m.found)} unbroken examples are not shown. Red: the headline ε.</figcaption></figure>
</div>
</section>`;
}

function corruptionSection(cr: CorruptionAccuracyResult | null, svg: string | null): SafeHtml {
  if (!cr) return html`<section id="corruptions"><h2>Common corruptions</h2>${notRun('no corruptions were asked for (--corruptions).')}</section>`;
  const names: string[] = [];
  for (const x of cr.results) if (!names.includes(x.corruption)) names.push(x.corruption);
  const cell = (name: string, severity: number) => cr.results.find((x) => x.corruption === name && x.severity === severity)?.accuracy ?? null;
  const rows = names.map(
    (name) => html`<tr><td>${name}</td>${cr.severities.map((s) => html`<td class="num">${pct(cell(name, s))}</td>`)}<td class="num strong">${pct(cr.meanAccuracy[name as keyof typeof cr.meanAccuracy])}</td></tr>`,
  );
  return html`<section id="corruptions">
<h2>Common corruptions</h2>
<p>Clean accuracy <strong>${pct(cr.clean)}</strong>; mean accuracy over all corruptions and severities <strong>${pct(cr.overallMeanAccuracy)}</strong> (${int(cr.count)} images, seed ${cr.seed}).</p>
<table class="data">
<thead><tr><th>corruption</th>${cr.severities.map((s) => html`<th class="num">severity ${s}</th>`)}<th class="num">mean</th></tr></thead>
<tbody>${rows}</tbody>
</table>
${svg ? html`<figure class="plot">${raw(svg)}<figcaption>Accuracy under each corruption by severity; gray dashed: clean accuracy.</figcaption></figure>` : ''}
</section>`;
}

/** The purifier under each threat model beside the worst case, and the AAE as a detector. */
function defenseSection(r: EvalRunResult): SafeHtml {
  const d = r.defense;
  if (!d) return html``;
  const rows = d.threatModels.map((t) => html`<tr><td><code>${t.name}</code></td><td>${t.description}</td><td class="num">${pct(t.robustAccuracy)}</td></tr>`);
  const det = d.detector;
  return html`<section id="defense">
<h2>Defense: AAE purifier <code>${d.path}</code></h2>
<p class="note">The model classifies sigmoid(decoder(encoder(x))) of an adversarial autoencoder trained on clean data (MagNet-style, Meng &amp; Chen 2017). The suite ran under each threat model; an image counts as robust only if it survived all of them, so the headline is the per-example worst case. A purifier that only blocks gradients looks robust under <code>plain</code> and falls under BPDA (Athalye et al. 2018).</p>
<table class="data">
<thead><tr><th>threat model</th><th>what the attacker's gradients see</th><th class="num">robust accuracy at ε = ${epsText(r.eps, r.norm, r.options.bounds)}</th></tr></thead>
<tbody>${rows}<tr><td><strong>worst case</strong></td><td>per example over the threat models</td><td class="num"><strong>${pct(r.robustAccuracy)}</strong></td></tr></tbody>
</table>
<h3>As a detector</h3>
${kvTable([
  ['adversarial examples', `${det.attack.name.toUpperCase()}-${det.attack.steps}, ε = ${epsText(det.attack.eps, det.attack.norm, r.options.bounds)}, on ${det.attack.on}: ${int(det.againstPgd.adversarial)} fooled it`],
  ['ROC AUC (reconstruction error)', det.againstPgd.rocAuc === null ? '—' : det.againstPgd.rocAuc.toFixed(3)],
  [`flagged at ${pct(det.falsePositiveRate)} false positives`, det.againstPgd.detectionRate === null ? '—' : pct(det.againstPgd.detectionRate)],
  ['median reconstruction MSE, clean / adversarial', `${sig(det.cleanMedianError)} / ${sig(det.againstPgd.medianError)}`],
  ['accuracy on those examples, bare / purified', `${pct(det.bareAccuracyUnderPgd)} / ${pct(det.purifiedAccuracyUnderPgd)} (an attacker who ignores the purifier)`],
])}
</section>`;
}

/** The fast suite's self-audit against the standard suite. */
function auditSection(r: EvalRunResult): SafeHtml {
  const a = r.audit;
  if (!a) return html``;
  const verdict = a.misses === 0 ? 'pass' : 'warn';
  const outcome =
    a.misses === 0
      ? a.full
        ? `No miss among all ${int(a.robustBefore)} robust points: the verdicts are the ${a.reference} suite's.`
        : `No miss in the sample: with 95% confidence the ${a.reference} suite would break at most ${int(a.gapUpperPoints)} more of the ${int(a.robustBefore)} robust points (${pct(a.gapUpper)} of robust accuracy).`
      : a.escalated
        ? `${int(a.misses)} of ${int(a.sampled)} audited points were missed, so the remainder ran on all ${int(a.robustBefore)} robust points: the headline above is the ${a.reference} suite's verdict, every point it breaks counted.`
        : `${int(a.misses)} of ${int(a.sampled)} audited points were missed (counted as broken above); with 95% confidence the ${a.reference} suite would break at most ${int(a.gapUpperPoints)} more of the ${int(a.robustBefore)} (${pct(a.gapUpper)}). Run with <code>--audit full</code> for the ${a.reference} suite's verdicts.`;
  return html`<section id="audit">
<h2>Audit against the ${a.reference} suite ${verdictBadge(verdict)}</h2>
<p class="note">The fast suite reaches the ${a.reference} suite's verdicts with far fewer gradients. To show it did here, the stages of the ${a.reference} suite it did not run (${a.stages.join(', ')}) ran, with the ${a.reference} suite's own seeds, on a random sample of the points it left robust: a point they break is a miss.</p>
<p>${raw(outcome)}</p>
${kvTable([
  ['robust after the fast stages', int(a.robustBefore)],
  ['audited', `${int(a.sampled)}${a.full ? ' (all)' : ''}${a.escalated ? ` + ${int(a.escalatedPoints)} after the miss` : ''}`],
  ['missed', int(a.misses)],
  ['95% upper bound on the gap', a.full || a.escalated ? 'none left' : `${int(a.gapUpperPoints)} points (${pct(a.gapUpper)})`],
  ['cost of the audit', `${int(a.gradients)} gradients, ${int(a.queries)} queries, ${duration(a.seconds)} of worker time`],
])}
</section>`;
}

function sanitySection(s: EvalRunResult['sanity']): SafeHtml {
  const figures = (c: SanityCheck) => {
    const entries = Object.entries(c.figures);
    return entries.length ? html`<ul class="figures">${entries.map(([k, v]) => html`<li><span class="k">${k}</span> ${valueText(v)}</li>`)}</ul>` : '—';
  };
  const rows = s.checks.map((c) => html`<tr class="${c.verdict}"><td>${verdictBadge(c.verdict)}</td><td><strong>${c.title}</strong><br><code>${c.id}</code></td><td>${c.message}</td><td>${figures(c)}</td></tr>`);
  return html`<section id="sanity">
<h2>Sanity checks ${verdictBadge(s.verdict)}</h2>
<p class="note">Checks against evaluation pitfalls (Athalye et al. 2018; Carlini et al. 2019). A warning does not invalidate the numbers above but says where they may overstate robustness.</p>
${s.checks.length ? html`<table class="data">
<thead><tr><th>verdict</th><th>check</th><th>finding</th><th>figures</th></tr></thead>
<tbody>${rows}</tbody>
</table>` : notRun('no sanity check ran.')}
</section>`;
}

function settingsSection(r: EvalRunResult): SafeHtml {
  const options = Object.entries(r.options).map(([k, v]): [string, string] => [k, valueText(v)]);
  const run: [string, string][] = [
    ['command', r.command],
    ['model path', r.modelPath],
    ['dataset', `${r.dataset.name} (test split ${int(r.dataset.testSize)}, ${r.dataset.numClasses} classes, ${r.dataset.imageShape.join('×')})`],
    ['images evaluated', int(r.count)],
    ['seed', String(r.seed)],
    ['started', r.startedAt],
    ['finished', r.finishedAt],
    ['duration', duration(r.seconds)],
    ['resumed', r.resumed ? 'yes' : 'no'],
    ['gradients / image', num(r.gradientsPerImage)],
    ['queries / image', num(r.queriesPerImage)],
    ['images / s', num(r.imagesPerSecond)],
  ];
  const environment: [string, string][] = [
    ['advlab', r.advlabVersion],
    ['tfjs', r.tfjsVersion],
    ['node', r.nodeVersion],
    ['backend', r.backend],
    ['threads', String(r.threads)],
    ['kernels', r.kernels],
    ['worker threads', String(r.workers)],
    ...Object.entries(r.packages),
  ];
  const files = Object.entries(r.files ?? {}).map(([k, v]): [string, string] => [k, v]);
  return html`<section id="settings">
<h2>Run settings</h2>
<h3>Suite “${r.suite.name}” (${normLabel(r.suite.norm)})</h3>
${suiteTable(r)}
<div class="settings">
<div><h3>Options</h3>${kvTable(options)}${files.length ? html`<h3>Files</h3>${kvTable(files)}` : ''}</div>
<div><h3>Run</h3>${kvTable(run)}<h3>Environment</h3>${kvTable(environment)}</div>
</div>
</section>`;
}

function suiteTable(r: EvalRunResult): SafeHtml {
  const rows = r.suite.stages.map(
    (s) => html`<tr><td>${s.name}</td><td>${s.attack}</td><td>${s.whiteBox ? 'white-box' : 'black-box'}</td><td>${s.targetClasses ? `top ${s.targetClasses}` : 'untargeted'}</td><td><code>${paramsText(s.params)}</code></td></tr>`,
  );
  return html`<table class="data suite"><thead><tr><th>stage</th><th>attack</th><th>access</th><th>targets</th><th>parameters</th></tr></thead><tbody>${rows}</tbody></table>`;
}

/** An attack's parameters as `name=value` pairs. */
function paramsText(params: Record<string, unknown>): string {
  const entries = Object.entries(params);
  return entries.length ? entries.map(([k, v]) => `${k}=${valueText(v)}`).join(', ') : '(defaults)';
}

/** Width and height of a PNG from its IHDR chunk. */
function pngSize(png: Uint8Array): { width: number; height: number } {
  const v = new DataView(png.buffer, png.byteOffset, png.byteLength);
  return png.byteLength >= 24 ? { width: v.getUint32(16), height: v.getUint32(20) } : { width: 0, height: 0 };
}

/** A PNG inlined as an <img> of its own size (the report stays one self-contained file). */
export function pngImg(png: Uint8Array, alt: string): SafeHtml {
  const { width, height } = pngSize(png);
  return html`<img src="data:image/png;base64,${bytesToBase64(png)}" width="${width}" height="${height}" alt="${alt}">`;
}

/** A two-column table of settings: name, value. */
export function kvTable(rows: [string, string][]): SafeHtml {
  return html`<table class="kv"><tbody>${rows.map(([k, v]) => html`<tr><th>${k}</th><td>${v}</td></tr>`)}</tbody></table>`;
}

/** The settings rows every training report ends with: time per epoch, backend, seed, versions and packages. */
export function provenanceRows(r: RunMeta & { secondsPerEpoch: number; packages: Record<string, string> }): [string, string][] {
  return [
    ['training time per epoch', duration(r.secondsPerEpoch)],
    ['backend', `${r.backend} (${r.threads} thread${r.threads === 1 ? '' : 's'}, ${r.kernels} kernels)`],
    ['seed', String(r.seed)],
    ['advlab', r.advlabVersion],
    ['tfjs', r.tfjsVersion],
    ['node', r.nodeVersion],
    ...Object.entries(r.packages),
  ];
}

// ---------------------------------------------------------------------------
// Style: system-independent fonts, tabular numbers, cards on a light gray page.

export const REPORT_CSS = `
:root { --fg: #111827; --muted: #6b7280; --border: #e5e7eb; --page: #f3f4f6; --accent: #1d4ed8; --head: #f9fafb; }
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body { margin: 0; background: var(--page); color: var(--fg); font: 14px/1.5 ${PLOT_FONT}; }
main { max-width: 1120px; margin: 0 auto; padding: 28px 32px 40px; }
h1 { font-size: 26px; line-height: 1.25; margin: 0 0 4px; font-weight: 700; letter-spacing: -0.01em; }
h1 .on { color: var(--muted); font-weight: 400; }
h2 { font-size: 18px; margin: 0 0 14px; font-weight: 700; }
h3 { font-size: 14px; margin: 20px 0 6px; font-weight: 700; color: #374151; }
p { margin: 8px 0; }
code { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 12px; color: #374151; }
.kicker { margin: 0 0 4px; font-size: 12px; text-transform: uppercase; letter-spacing: 0.08em; color: var(--accent); font-weight: 700; }
.subtitle { color: var(--muted); margin: 0; }
.cards { display: grid; grid-template-columns: 1fr 1.35fr 1fr 1fr; gap: 12px; margin: 20px 0 12px; }
.card { background: #fff; border: 1px solid var(--border); border-radius: 10px; padding: 14px 16px; }
.card.headline { border-color: #93c5fd; box-shadow: inset 4px 0 0 var(--accent); }
.card .label { font-size: 12.5px; color: var(--muted); font-weight: 700; }
.card .value { font-size: 30px; font-weight: 700; line-height: 1.25; margin: 4px 0 2px; font-variant-numeric: tabular-nums; }
.card .value.small { font-size: 20px; line-height: 1.9; }
.card .sub { font-size: 12.5px; color: var(--muted); }
nav.toc { display: flex; flex-wrap: wrap; gap: 6px 16px; margin: 4px 0 8px; font-size: 13px; }
nav.toc a { color: var(--accent); text-decoration: none; }
section { background: #fff; border: 1px solid var(--border); border-radius: 10px; padding: 20px 24px; margin: 16px 0; }
table { border-collapse: collapse; font-size: 13px; font-variant-numeric: tabular-nums; }
table.data { width: 100%; }
table.data.compact { width: auto; min-width: 50%; }
th, td { padding: 6px 10px; text-align: left; vertical-align: top; border-bottom: 1px solid var(--border); }
thead th { background: var(--head); color: #374151; font-weight: 700; font-size: 12px; border-bottom: 1px solid #d1d5db; white-space: nowrap; }
.num { text-align: right; white-space: nowrap; }
td.strong { font-weight: 700; }
td.bad { color: #b91c1c; font-weight: 700; }
tr.headline td { background: #eff6ff; font-weight: 700; }
tfoot td { font-weight: 700; border-top: 2px solid #d1d5db; border-bottom: none; }
table.kv { width: 100%; }
table.kv th { width: 1%; white-space: nowrap; font-weight: 400; color: var(--muted); background: none; padding-right: 24px; }
table.suite td:not(:last-child) { white-space: nowrap; }
table.kv th, table.kv td { padding: 4px 10px; }
table.kv td { word-break: break-word; }
.badge { display: inline-block; padding: 1px 9px; border-radius: 999px; font-size: 11.5px; font-weight: 700; text-transform: uppercase; letter-spacing: 0.04em; vertical-align: middle; }
.badge.pass { background: #dcfce7; color: #166534; }
.badge.warn { background: #fef3c7; color: #92400e; }
.badge.skipped { background: #f3f4f6; color: #4b5563; }
tr.warn td { background: #fffbeb; }
p.verdict.warn { background: #fef3c7; color: #92400e; padding: 8px 12px; border-radius: 6px; }
.pill { display: inline-block; margin: 2px 6px 2px 0; padding: 0 8px; border: 1px solid var(--border); border-radius: 999px; font-size: 12px; white-space: nowrap; }
figure { margin: 0 0 16px; }
figure.plot svg { display: block; max-width: 100%; height: auto; }
figure.grid { overflow-x: auto; }
figure.grid img { display: block; max-width: 100%; height: auto; image-rendering: pixelated; border: 1px solid var(--border); border-radius: 4px; }
table.quantiles { min-width: 0; }
figcaption { font-size: 12.5px; color: var(--muted); margin-top: 6px; max-width: 820px; }
.note { font-size: 12.5px; color: var(--muted); }
.not-run { color: var(--muted); font-style: italic; }
.bars { min-width: 190px; }
.bar { display: block; width: 180px; height: 6px; background: #eef2f7; border-radius: 3px; overflow: hidden; margin: 3px 0; }
.bar > span { display: block; height: 100%; }
.bar.clean > span, .key.clean { background: #9ca3af; }
.bar.robust > span, .key.robust { background: #4c78a8; }
.key { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin: 0 4px 0 8px; vertical-align: -1px; }
.split { display: grid; grid-template-columns: minmax(280px, 1fr) auto; gap: 32px; align-items: start; }
.split figcaption { max-width: 520px; }
table.quantiles td, table.quantiles th { white-space: nowrap; }
.settings { display: grid; grid-template-columns: 1fr 1fr; gap: 8px 32px; align-items: start; }
ul.figures { margin: 0; padding: 0; list-style: none; font-size: 12px; }
ul.figures .k { color: var(--muted); }
footer { color: var(--muted); font-size: 12px; text-align: center; margin-top: 24px; }
@media (max-width: 900px) { .cards, .split, .settings { grid-template-columns: 1fr; } }
@media print { body { background: #fff; } section { break-inside: avoid; border: none; padding: 0; } }
`;
