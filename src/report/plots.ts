/**
 * The plots of the `advlab eval` report as SVG strings: Vega-Lite specs
 * compiled with `vega-lite` and rendered headless by `vega` (no canvas, no
 * browser). Inlined in HTML they need no script and no network.
 *
 * Output is deterministic: the same input gives the same bytes (no dates, no
 * random ids; vega's clip and gradient ids are reset and prefixed per plot).
 */
import { View, parse, logger, resetSVGDefIds, Warn, type LoggerInterface } from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import type { Norm } from '../attacks/types.js';
import type { EpsilonResult, MinimalPerturbations } from '../robustness/types.js';
import type { CorruptionAccuracyResult } from '../robustness/corruption-accuracy.js';

/** Options shared by the plot functions. */
export interface PlotOptions {
  /** Receives Vega-Lite and Vega warnings; by default they are dropped (the library never prints). */
  onWarning?: (message: string) => void;
}

/** Font stack of the plots, the same as the report's text. */
export const PLOT_FONT = 'Helvetica Neue, Helvetica, Arial, Liberation Sans, DejaVu Sans, sans-serif';

/** Colour of the worst case (the headline) in the eps plot; stages take the Tableau palette. */
const WORST_COLOR = '#1f2937';
const MINIMAL_COLOR = '#9d4edd';
const CLEAN_COLOR = '#6b7280';
const EPS_COLOR = '#dc2626';
const STAGE_COLORS = ['#4c78a8', '#f58518', '#54a24b', '#e45756', '#72b7b2', '#eeca3b', '#ff9da6', '#9d755d', '#bab0ac'];

/** Plot area size in pixels (axes and legend come on top). */
const WIDTH = 600;
const HEIGHT = 280;

/** Shared look of every plot: readable labels, light grid, no frame around the plot area. */
export const PLOT_CONFIG = {
  font: PLOT_FONT,
  background: 'white',
  padding: 8,
  view: { stroke: null },
  axis: { labelFontSize: 11, titleFontSize: 12, titleFontWeight: 'bold', titleColor: '#111827', labelColor: '#374151', gridColor: '#e5e7eb', domainColor: '#9ca3af', tickColor: '#9ca3af' },
  legend: { labelFontSize: 11, titleFontSize: 12, titleColor: '#111827', labelColor: '#374151', labelLimit: 300 },
} as const;

/** "L∞", "L2", "L1": how norms are written in axis titles. */
export function normLabel(norm: Norm): string {
  return norm === 'linf' ? 'L∞' : norm.toUpperCase();
}

/**
 * Compiles a Vega-Lite spec and renders it to an SVG string. Every `id` (and
 * reference to one) is prefixed with `idPrefix`, because inline SVGs share the
 * page's id space: two plots with vega's default `clip1` would clip each other.
 */
export async function vegaLiteSvg(spec: TopLevelSpec, idPrefix: string, options: PlotOptions = {}): Promise<string> {
  const log = warningLogger(options.onWarning);
  const { spec: vegaSpec } = compile(spec, { logger: log });
  // Vega numbers clip paths and gradients with module-wide counters; reset them so output does not depend on earlier plots.
  resetSVGDefIds();
  const view = new View(parse(vegaSpec), { renderer: 'none', logger: log });
  try {
    return scopeIds(await view.toSVG(), idPrefix);
  } finally {
    view.finalize();
  }
}

/** A logger that hands warnings (and errors, which vega also reports by throwing) to `onWarning`. */
function warningLogger(onWarning?: (message: string) => void): LoggerInterface {
  return logger(Warn, undefined, (_method, level, args) => onWarning?.(`${level} ${args.map(String).join(' ')}`));
}

/** Prefixes every id defined or referenced in `svg`. */
export function scopeIds(svg: string, prefix: string): string {
  return svg
    .replace(/\bid="([^"]+)"/g, `id="${prefix}-$1"`)
    .replace(/url\(#([^)]+)\)/g, `url(#${prefix}-$1)`)
    .replace(/href="#([^"]+)"/g, `href="#${prefix}-$1"`);
}

/** Inputs of {@link robustAccuracyPlot}. */
export interface RobustAccuracyPlotInput {
  /** One entry per eps, ascending. */
  sweep: readonly EpsilonResult[];
  cleanAccuracy: number;
  norm: Norm;
  /** Overlaid as the accuracy implied by minimal perturbations, when present. */
  minimal?: MinimalPerturbations | null;
}

/** The series name of the worst case in {@link robustAccuracyPlot}. */
export const WORST_CASE = 'worst case (all stages)';

/**
 * Robust accuracy against eps: one line per stage, cumulative ("after X": the
 * accuracy left once X and every earlier stage have run), the per-example worst
 * case in bold over its 95% Wilson interval (band), the accuracy implied by
 * minimal perturbations (dashed, when given) and clean accuracy (gray rule).
 */
export async function robustAccuracyPlot(input: RobustAccuracyPlotInput, options: PlotOptions = {}): Promise<string> {
  const { sweep, minimal } = input;
  const stageSeries = uniqueStageNames(sweep).map((name) => `after ${name}`);
  const minimalSeries = minimal ? `minimal norms (${minimal.attack})` : null;
  const rows = epsPlotRows(input, stageSeries, minimalSeries);

  const domain = [...stageSeries, WORST_CASE, ...(minimalSeries ? [minimalSeries] : [])];
  const range = [...stageSeries.map((_, i) => STAGE_COLORS[i % STAGE_COLORS.length]), WORST_COLOR, ...(minimalSeries ? [MINIMAL_COLOR] : [])];
  const x = { field: 'eps', type: 'quantitative', title: `ε (${normLabel(input.norm)})`, scale: { domain: [0, epsAxisMax(sweep, minimal ?? null)], nice: false }, axis: { tickCount: 8 } } as const;
  const y = { field: 'accuracy', type: 'quantitative', title: 'accuracy', scale: { domain: [0, 1] }, axis: { format: '.0%', tickCount: 5 } } as const;
  const color = { field: 'series', type: 'nominal', title: null, scale: { domain, range }, legend: { orient: 'right', symbolType: 'stroke', symbolStrokeWidth: 2.5 } } as const;
  // Field predicates, not expression strings: stage names come from the result and must never be parsed as code.
  const only = (name: string, measured?: boolean) => ({ filter: measured ? { and: [{ field: 'series', equal: name }, { field: 'measured', equal: true }] } : { field: 'series', equal: name } });

  const layers: object[] = [
    { transform: [only(WORST_CASE, true)], mark: { type: 'area', color: WORST_COLOR, opacity: 0.12, clip: true }, encoding: { x, y: { ...y, field: 'lo' }, y2: { field: 'hi' } } },
    { data: { values: [{ accuracy: input.cleanAccuracy, label: `clean ${pctLabel(input.cleanAccuracy)}` }] }, layer: cleanRule(y) },
  ];
  for (const name of stageSeries) {
    layers.push({ transform: [only(name)], mark: { type: 'line', strokeWidth: 1.5, clip: true }, encoding: { x, y, color } });
    layers.push({ transform: [only(name, true)], mark: { type: 'point', filled: true, size: 24, clip: true }, encoding: { x, y, color } });
  }
  if (minimalSeries) layers.push({ transform: [only(minimalSeries)], mark: { type: 'line', strokeDash: [6, 3], strokeWidth: 2, clip: true }, encoding: { x, y, color } });
  layers.push({ transform: [only(WORST_CASE)], mark: { type: 'line', strokeWidth: 2.75, clip: true }, encoding: { x, y, color } });
  layers.push({ transform: [only(WORST_CASE, true)], mark: { type: 'point', filled: true, size: 48, opacity: 1, clip: true }, encoding: { x, y, color } });

  const spec = { width: WIDTH, height: HEIGHT, config: PLOT_CONFIG, data: { values: rows }, layer: layers } as unknown as TopLevelSpec;
  return vegaLiteSvg(spec, 'eps-plot', options);
}

/** One row per point of {@link robustAccuracyPlot}'s series; `measured` marks the points the sweep measured (drawn with a dot). */
function epsPlotRows(input: RobustAccuracyPlotInput, stageSeries: string[], minimalSeries: string | null): { eps: number; accuracy: number; series: string; measured: boolean; lo?: number; hi?: number }[] {
  const { sweep, minimal } = input;
  const rows: ReturnType<typeof epsPlotRows> = [];
  // At eps = 0 the ball holds only the clean image, so every line starts at clean accuracy.
  if (!sweep.some((e) => e.eps === 0)) for (const series of [...stageSeries, WORST_CASE]) rows.push({ eps: 0, accuracy: input.cleanAccuracy, series, measured: false });
  for (const e of sweep) {
    for (const s of e.stages) rows.push({ eps: e.eps, accuracy: s.robustAccuracyAfter, series: `after ${s.name}`, measured: true });
    rows.push({ eps: e.eps, accuracy: e.robustAccuracy, series: WORST_CASE, measured: true, lo: e.confidenceInterval[0], hi: e.confidenceInterval[1] });
  }
  if (minimal && minimalSeries) for (const p of minimal.curve) rows.push({ eps: p.eps, accuracy: p.accuracy, series: minimalSeries, measured: false });
  return rows;
}

/** A dashed gray rule at clean accuracy, labelled at its right end. */
function cleanRule(y: object): object[] {
  return [
    { mark: { type: 'rule', color: CLEAN_COLOR, strokeDash: [4, 4], strokeWidth: 1.5 }, encoding: { y } },
    { mark: { type: 'text', color: CLEAN_COLOR, align: 'right', baseline: 'bottom', dy: -3, fontSize: 11 }, encoding: { y, x: { value: WIDTH - 4 }, text: { field: 'label' } } },
  ];
}

function pctLabel(x: number): string {
  return `${(x * 100).toFixed(1)}%`;
}

/** Stage names in suite order (first appearance over the sweep). */
function uniqueStageNames(sweep: readonly EpsilonResult[]): string[] {
  const names: string[] = [];
  for (const e of sweep) for (const s of e.stages) if (!names.includes(s.name)) names.push(s.name);
  return names;
}

/**
 * Right end of the eps axis: a margin past the largest swept eps, so a minimal
 * curve reaching far beyond it does not squash the sweep (the curve is clipped).
 */
function epsAxisMax(sweep: readonly EpsilonResult[], minimal: MinimalPerturbations | null): number {
  const largest = Math.max(0, ...sweep.map((e) => e.eps));
  if (largest > 0) return largest * 1.25;
  const curveMax = Math.max(0, ...(minimal?.curve.map((p) => p.eps) ?? []));
  return curveMax > 0 ? curveMax : 1;
}

/**
 * Histogram of the minimal perturbation norms of the broken examples (bins as
 * computed by the evaluation), with the headline eps as a red rule. Returns
 * null when the histogram is empty.
 */
export async function minimalHistogramPlot(minimal: MinimalPerturbations, eps: number, options: PlotOptions = {}): Promise<string | null> {
  const { edges, counts } = minimal.histogram;
  if (counts.length === 0 || edges.length !== counts.length + 1) return null;
  const bins = counts.map((count, i) => ({ x0: edges[i], x1: edges[i + 1], count }));
  const xTitle = `minimal ${normLabel(minimal.norm)} perturbation`;
  const spec = {
    width: 440,
    height: 240,
    config: PLOT_CONFIG,
    layer: [
      {
        data: { values: bins },
        mark: { type: 'bar', color: '#4c78a8', stroke: 'white', strokeWidth: 0.5 },
        encoding: {
          x: { field: 'x0', type: 'quantitative', bin: { binned: true }, title: xTitle, scale: { zero: true }, axis: { tickCount: 8 } },
          x2: { field: 'x1' },
          y: { field: 'count', type: 'quantitative', title: 'examples', axis: { tickMinStep: 1, format: 'd', tickCount: 5 } },
        },
      },
      {
        data: { values: [{ eps, label: `ε = ${formatEps(eps)}` }] },
        layer: [
          { mark: { type: 'rule', color: EPS_COLOR, strokeDash: [4, 3], strokeWidth: 1.5 }, encoding: { x: { field: 'eps', type: 'quantitative' } } },
          { mark: { type: 'text', color: EPS_COLOR, align: 'left', baseline: 'top', dx: 4, dy: 2, fontSize: 11 }, encoding: { x: { field: 'eps', type: 'quantitative' }, y: { value: 0 }, text: { field: 'label' } } },
        ],
      },
    ],
  } as unknown as TopLevelSpec;
  return vegaLiteSvg(spec, 'minimal-plot', options);
}

/** Accuracy under each corruption against severity, one line per corruption, clean accuracy as a gray rule. */
export async function corruptionPlot(corruptions: CorruptionAccuracyResult, options: PlotOptions = {}): Promise<string> {
  const rows = corruptions.results.map((r) => ({ corruption: r.corruption, severity: r.severity, accuracy: r.accuracy }));
  const y = { field: 'accuracy', type: 'quantitative', title: 'accuracy', scale: { domain: [0, 1] }, axis: { format: '.0%', tickCount: 5 } } as const;
  const spec = {
    width: WIDTH,
    height: HEIGHT,
    config: PLOT_CONFIG,
    layer: [
      {
        data: { values: [{ accuracy: corruptions.clean, label: `clean ${pctLabel(corruptions.clean)}` }] },
        layer: cleanRule(y),
      },
      {
        data: { values: rows },
        mark: { type: 'line', point: { size: 30, filled: true }, strokeWidth: 2 },
        encoding: {
          x: { field: 'severity', type: 'ordinal', title: 'severity', sort: 'ascending', axis: { labelAngle: 0 }, scale: { domain: corruptions.severities } },
          y,
          color: { field: 'corruption', type: 'nominal', title: 'corruption', sort: null, scale: { range: STAGE_COLORS }, legend: { orient: 'right', symbolType: 'stroke' } },
        },
      },
    ],
  } as unknown as TopLevelSpec;
  return vegaLiteSvg(spec, 'corruption-plot', options);
}

/** eps as written in captions: up to 4 significant digits, no trailing zeros. */
export function formatEps(eps: number): string {
  return Number(eps.toPrecision(4)).toString();
}

/** One model's robust accuracy against eps, for {@link comparisonPlot}. */
export interface ComparisonSeries {
  name: string;
  cleanAccuracy: number;
  curve: { eps: number; robustAccuracy: number }[];
}

/**
 * Robust accuracy against eps of several models (a defended one and its
 * baseline), each line starting at its clean accuracy at eps 0.
 */
export async function comparisonPlot(series: ComparisonSeries[], norm: Norm, options: PlotOptions = {}): Promise<string> {
  const rows = series.flatMap((s) => [
    ...(s.curve.some((p) => p.eps === 0) ? [] : [{ eps: 0, accuracy: s.cleanAccuracy, series: s.name }]),
    ...s.curve.map((p) => ({ eps: p.eps, accuracy: p.robustAccuracy, series: s.name })),
  ]);
  const largest = Math.max(0, ...rows.map((r) => r.eps));
  const x = { field: 'eps', type: 'quantitative', title: `ε (${normLabel(norm)})`, scale: { domain: [0, largest > 0 ? largest * 1.1 : 1], nice: false } } as const;
  const y = { field: 'accuracy', type: 'quantitative', title: 'robust accuracy', scale: { domain: [0, 1] }, axis: { format: '.0%', tickCount: 5 } } as const;
  const color = { field: 'series', type: 'nominal', title: null, scale: { domain: series.map((s) => s.name), range: STAGE_COLORS }, legend: { orient: 'right', symbolType: 'stroke' } } as const;
  const spec = {
    width: WIDTH,
    height: HEIGHT,
    config: PLOT_CONFIG,
    data: { values: rows },
    layer: [
      { mark: { type: 'line', strokeWidth: 2.5 }, encoding: { x, y, color } },
      { mark: { type: 'point', filled: true, size: 40 }, encoding: { x, y, color } },
    ],
  } as unknown as TopLevelSpec;
  return vegaLiteSvg(spec, 'comparison-plot', options);
}

/**
 * Certified accuracy against the L2 radius (randomized smoothing; Cohen et
 * al. 2019's curve): a step line through the measured radii, with the base
 * classifier's clean accuracy as the gray rule.
 */
export async function certifiedAccuracyPlot(curve: readonly { radius: number; accuracy: number }[], cleanAccuracy: number, sigma: number, options: PlotOptions = {}): Promise<string> {
  const x = { field: 'radius', type: 'quantitative', title: 'L2 radius', scale: { domain: [0, Math.max(...curve.map((p) => p.radius), 1e-9)], nice: false }, axis: { tickCount: 8 } } as const;
  const y = { field: 'accuracy', type: 'quantitative', title: 'certified accuracy', scale: { domain: [0, 1] }, axis: { format: '.0%', tickCount: 5 } } as const;
  const spec = {
    width: WIDTH,
    height: HEIGHT,
    config: PLOT_CONFIG,
    layer: [
      { data: { values: [{ accuracy: cleanAccuracy, label: `base classifier, clean ${pctLabel(cleanAccuracy)}` }] }, layer: cleanRule(y) },
      { data: { values: curve.map((p) => ({ ...p, series: `σ = ${sigma}` })) }, mark: { type: 'line', interpolate: 'step-after', strokeWidth: 2.5, color: WORST_COLOR, clip: true }, encoding: { x, y } },
    ],
  } as unknown as TopLevelSpec;
  return vegaLiteSvg(spec, 'certified-plot', options);
}

/**
 * Several certified-accuracy curves on one radius axis (one per noise level
 * or model, as the papers compare them), each a step line, with published
 * anchors as points when given.
 */
export async function certifiedCurvesPlot(
  series: readonly { name: string; curve: readonly { radius: number; accuracy: number }[] }[],
  anchors: readonly { name: string; radius: number; accuracy: number }[] = [],
  options: PlotOptions = {},
): Promise<string> {
  const top = Math.max(...series.flatMap((s) => s.curve.map((p) => p.radius)), 1e-9);
  const x = { field: 'radius', type: 'quantitative', title: 'L2 radius', scale: { domain: [0, top], nice: false }, axis: { tickCount: 8 } } as const;
  const y = { field: 'accuracy', type: 'quantitative', title: 'certified accuracy', scale: { domain: [0, 1] }, axis: { format: '.0%', tickCount: 5 } } as const;
  const names = [...series.map((s) => s.name), ...new Set(anchors.map((a) => a.name))];
  const color = { field: 'series', type: 'nominal', title: null, scale: { domain: names, range: STAGE_COLORS }, legend: { orient: 'right', symbolType: 'stroke' } } as const;
  const spec = {
    width: WIDTH,
    height: HEIGHT,
    config: PLOT_CONFIG,
    layer: [
      { data: { values: series.flatMap((s) => s.curve.map((p) => ({ ...p, series: s.name }))) }, mark: { type: 'line', interpolate: 'step-after', strokeWidth: 2.5, clip: true }, encoding: { x, y, color } },
      ...(anchors.length ? [{ data: { values: anchors.map((a) => ({ radius: a.radius, accuracy: a.accuracy, series: a.name })) }, mark: { type: 'point', shape: 'diamond', filled: true, size: 60 }, encoding: { x, y, color } }] : []),
    ],
  } as unknown as TopLevelSpec;
  return vegaLiteSvg(spec, 'certified-curves', options);
}
