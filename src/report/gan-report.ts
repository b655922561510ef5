/**
 * report.html of `advlab gan`: the generator's samples over the epochs (the
 * fixed-code grids as PNG data: URIs), the losses and the discriminator's mean
 * outputs on real and generated images, FID over the epochs against the
 * real-vs-real floor, the metrics table and the run's settings. Self-contained
 * like the eval report (same style, inline SVG plots, no script, no external
 * resource) and deterministic: the same result and grids give the same bytes.
 */
import type { TopLevelSpec } from 'vega-lite';
import type { GanRunResult } from '../generative/gan/types.js';
import { duration, html, int, num, pct, raw, kvTable, pngImg, provenanceRows, reportPage, type SafeHtml } from './eval-report.js';
import { PLOT_CONFIG, vegaLiteSvg, type PlotOptions } from './plots.js';

/** One per-epoch sample grid shown in the report. */
export interface GanReportGrid {
  epoch: number;
  /** The PNG file's bytes. */
  png: Uint8Array;
}

const WIDTH = 600;
const HEIGHT = 240;
const FLOOR_COLOR = '#6b7280';

interface Row {
  epoch: number;
  value: number;
  series: string;
}

/** Loss-style curves: one line (with points) per series against the epoch, optionally a labelled horizontal rule. */
async function epochPlot(rows: Row[], series: { name: string; color: string }[], yTitle: string, id: string, options: PlotOptions, extra: { rule?: { value: number; label: string }; yDomain?: [number, number] } = {}): Promise<string> {
  const epochs = rows.map((r) => r.epoch);
  const lo = Math.min(...epochs);
  const hi = Math.max(...epochs);
  const x = { field: 'epoch', type: 'quantitative', title: 'epoch', scale: { domain: [lo, Math.max(hi, lo + 1)], nice: false }, axis: { format: 'd', tickMinStep: 1 } } as const;
  const y = { field: 'value', type: 'quantitative', title: yTitle, ...(extra.yDomain ? { scale: { domain: extra.yDomain } } : {}) } as const;
  const color = { field: 'series', type: 'nominal', title: null, scale: { domain: series.map((s) => s.name), range: series.map((s) => s.color) }, legend: { orient: 'right', symbolType: 'stroke', symbolStrokeWidth: 2.5 } } as const;
  const layers: object[] = [{ data: { values: rows }, mark: { type: 'line', strokeWidth: 2, point: { filled: true, size: 30 } }, encoding: { x, y, color } }];
  if (extra.rule) {
    const ry = { field: 'value', type: 'quantitative' } as const;
    layers.push({
      data: { values: [extra.rule] },
      layer: [
        { mark: { type: 'rule', color: FLOOR_COLOR, strokeDash: [4, 4], strokeWidth: 1.5 }, encoding: { y: ry } },
        { mark: { type: 'text', color: FLOOR_COLOR, align: 'right', baseline: 'bottom', dy: -3, fontSize: 11 }, encoding: { y: ry, x: { value: WIDTH - 4 }, text: { field: 'label' } } },
      ],
    });
  }
  const spec = { width: WIDTH, height: HEIGHT, config: PLOT_CONFIG, layer: layers } as unknown as TopLevelSpec;
  return vegaLiteSvg(spec, id, options);
}


/** Renders the report of an `advlab gan` run (async: vega renders asynchronously). */
export async function renderGanReport(result: GanRunResult, grids: readonly GanReportGrid[], options: PlotOptions = {}): Promise<string> {
  const o = result.options;
  const h = result.history;
  const probabilities = o.loss === 'ns' || o.loss === 'minimax';
  const lossPlot = h.length
    ? await epochPlot(
        h.flatMap((r) => [
          { epoch: r.epoch, value: r.dLoss, series: 'discriminator' },
          { epoch: r.epoch, value: r.gLoss, series: 'generator' },
        ]),
        [
          { name: 'discriminator', color: '#4c78a8' },
          { name: 'generator', color: '#f58518' },
        ],
        `${o.loss} loss (epoch mean)`,
        'gan-loss',
        options,
      )
    : null;
  const dPlot = h.length
    ? await epochPlot(
        h.flatMap((r) => [
          { epoch: r.epoch, value: r.dReal, series: 'D(x), real' },
          { epoch: r.epoch, value: r.dFake, series: 'D(G(z)), generated' },
        ]),
        [
          { name: 'D(x), real', color: '#54a24b' },
          { name: 'D(G(z)), generated', color: '#e45756' },
        ],
        probabilities ? 'mean D output (probability)' : 'mean D output (raw score)',
        'gan-d',
        options,
        probabilities ? { yDomain: [0, 1] } : {},
      )
    : null;
  const fidRows = h.filter((r) => r.monitor?.fid !== undefined).map((r) => ({ epoch: r.epoch, value: r.monitor!.fid, series: 'FID, generated vs real test' }));
  const fidPlot = fidRows.length
    ? await epochPlot(fidRows, [{ name: 'FID, generated vs real test', color: '#1f2937' }], 'FID (classifier features)', 'gan-fid', options, result.fidFloor !== null ? { rule: { value: result.fidFloor, label: `real vs real floor ${num(result.fidFloor)}` } } : {})
    : null;

  const body = html`<main>
<header><p class="kicker">ADVLAB GAN</p><h1>${o.arch} GAN <span class="on">on</span> ${result.dataset.name}</h1>
<p class="subtitle">${o.loss} loss · ${result.epochs} epoch${result.epochs === 1 ? '' : 's'} on ${int(result.dataset.trainSize)} training images · latent size ${o.latentDim}${result.clustering ? ` · self-conditioned on ${result.clustering.k} k-means clusters` : result.generator.conditional ? ' · class-conditional' : ''}</p></header>
${cards(result)}
${samplesSection(result, grids)}
<section id="training"><h2>Training</h2>
${lossPlot ? html`<figure class="plot">${raw(lossPlot)}<figcaption>Mean discriminator and generator losses of each epoch (the ${o.loss} loss, as each player minimises it).</figcaption></figure>` : html`<p class="not-run">No epoch trained.</p>`}
${dPlot ? html`<figure class="plot">${raw(dPlot)}<figcaption>The discriminator's mean output on real images and on generated ones (${probabilities ? 'sigmoid probabilities: 0.5 on both when D cannot tell them apart' : `raw ${o.loss} scores`}), from the last critic step of each batch.</figcaption></figure>` : ''}
</section>
${metricsSection(result, fidPlot)}
${settingsSection(result)}
<footer>Generated by advlab ${result.advlabVersion} from result.json of <code>advlab gan</code>. Self-contained: no script, no external resources.</footer>
</main>`;
  return reportPage(`advlab gan: ${o.arch} on ${result.dataset.name}`, result.advlabVersion, body.value, GAN_CSS);
}

const GAN_CSS = `
.grids { display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; }
.grids figure { margin: 0; }
.cards.gan { grid-template-columns: repeat(4, 1fr); }
`;

function cards(r: GanRunResult): SafeHtml {
  const m = r.metrics;
  if (!m) return html`<p class="note">Metrics skipped: ${r.metricsSkipped ?? 'no classifier'}.</p>`;
  const c = m.coverage;
  return html`<div class="cards gan">
<div class="card headline"><div class="label">FID (epoch ${m.epoch})</div><div class="value">${num(m.fid)}</div><div class="sub">real-vs-real floor ${num(r.fidFloor)}; ${int(m.samples)} samples each</div></div>
<div class="card"><div class="label">Inception Score</div><div class="value">${num(m.inceptionScore)}</div><div class="sub">from 1 to ${r.dataset.numClasses} (classes)</div></div>
<div class="card"><div class="label">Precision / recall</div><div class="value small">${pct(m.precision)} / ${pct(m.recall)}</div><div class="sub">k = ${m.k} nearest neighbours</div></div>
<div class="card"><div class="label">Class coverage</div><div class="value small">${c.modeCollapse ? html`<span class="badge warn">mode collapse</span>` : html`<span class="badge pass">all classes</span>`}</div><div class="sub">smallest class ${pct(c.minFraction)} (class ${c.minClass}), KL from uniform ${num(c.klFromUniform)}</div></div>
</div>`;
}

function samplesSection(r: GanRunResult, grids: readonly GanReportGrid[]): SafeHtml {
  if (!grids.length) return html`<section id="samples"><h2>Samples</h2><p class="not-run">No sample grid.</p></section>`;
  const what = r.generator.conditional
    ? `${8} fixed latent codes, one per column, in every class row`
    : r.clustering
      ? `the same ${64} latent codes at every epoch, each with a cluster drawn once in proportion to the cluster sizes`
      : `the same ${64} latent codes at every epoch`;
  const figures = grids.map((g) => html`<figure class="grid">${pngImg(g.png, `generated images after epoch ${g.epoch}`)}<figcaption>epoch ${g.epoch}</figcaption></figure>`);
  return html`<section id="samples"><h2>Samples over the epochs</h2>
<p>The generator (in inference mode) on ${what}, so the grids show how the same codes change as training goes on${grids.length < r.files.grids.length ? html`; ${grids.length} of the ${r.files.grids.length} grids in <code>grids/</code>` : ''}.${r.generator.arch !== 'mlp' ? ' In inference mode batch norm uses its moving statistics, which take a few hundred steps to settle: the first grids of a short run can look flat.' : ''}</p>
<div class="grids">${figures}</div></section>`;
}

function metricsSection(r: GanRunResult, fidPlot: string | null): SafeHtml {
  const m = r.metrics;
  const c = r.metricsClassifier;
  const head = !m || !c
    ? html`<p class="not-run">Not measured: ${r.metricsSkipped ?? 'no classifier'}.</p>`
    : html`<p>Measured after every epoch on ${int(m.samples)} generated images (the same seeded codes each time${r.generator.conditional ? ', classes in turn' : ''}) against ${int(m.samples)} class-balanced real test images, with the classifier <code>${c.path}</code>: FID and precision/recall on its penultimate features (the ${c.featureDim} inputs of its last Dense layer, <code>${c.featureLayer}</code>), Inception Score and class coverage from its ${c.outputs === 'logits' ? 'softmax over logits' : 'probabilities'}. These figures compare runs that use the same classifier and sample count only; the floor is the FID of ${int(m.samples)} real train images against the test images (what a perfect generator would get).</p>`;
  const cell = (x: number | undefined, f: (v: number) => string = num) => (x === undefined ? '—' : f(x));
  const rows = r.history.map(
    (e) =>
      html`<tr${e.monitor?.modeCollapse === 1 ? raw(' class="warn"') : ''}><td class="num">${e.epoch}</td><td class="num">${num(e.dLoss)}</td><td class="num">${num(e.gLoss)}</td><td class="num">${num(e.dReal)}</td><td class="num">${num(e.dFake)}</td><td class="num">${cell(e.monitor?.fid)}</td><td class="num">${cell(e.monitor?.inceptionScore)}</td><td class="num">${cell(e.monitor?.klFromUniform)}</td><td class="num">${cell(e.monitor?.minClassFraction, (v) => pct(v))}</td><td class="num">${cell(e.monitor?.precision, (v) => pct(v))}</td><td class="num">${cell(e.monitor?.recall, (v) => pct(v))}</td><td class="num">${duration(e.seconds)}</td></tr>`,
  );
  const classes = m
    ? html`<h3>Classes of the last epoch's samples</h3><table class="data compact"><thead><tr><th class="num">class</th><th>name</th><th class="num">samples</th><th class="num">share</th><th></th></tr></thead><tbody>${m.coverage.counts.map(
        (n, y) => html`<tr${m.coverage.fractions[y] < 0.25 / r.dataset.numClasses ? raw(' class="warn"') : ''}><td class="num">${y}</td><td>${r.dataset.classNames[y] ?? String(y)}</td><td class="num">${int(n)}</td><td class="num">${pct(m.coverage.fractions[y])}</td><td class="bars"><span class="bar robust"><span style="width: ${Math.min(100, (m.coverage.fractions[y] * r.dataset.numClasses * 100) / 2).toFixed(1)}%"></span></span></td></tr>`,
      )}</tbody></table><p class="note">A class with less than a quarter of its uniform share (${pct(0.25 / r.dataset.numClasses)}) is flagged as mode collapse. Bars: full width at twice the uniform share.</p>`
    : '';
  return html`<section id="metrics"><h2>Metrics</h2>${head}
${fidPlot ? html`<figure class="plot">${raw(fidPlot)}<figcaption>FID after each epoch (lower is better); the dashed line is the real-vs-real floor.</figcaption></figure>` : ''}
<table class="data"><thead><tr><th class="num">epoch</th><th class="num">D loss</th><th class="num">G loss</th><th class="num">D(x)</th><th class="num">D(G(z))</th><th class="num">FID</th><th class="num">IS</th><th class="num">KL from uniform</th><th class="num">smallest class</th><th class="num">precision</th><th class="num">recall</th><th class="num">time</th></tr></thead><tbody>${rows}</tbody></table>
${classes}</section>`;
}

function settingsSection(r: GanRunResult): SafeHtml {
  const o = r.options;
  const rows: [string, string][] = [
    ['dataset', `${r.dataset.name} (${int(r.dataset.trainSize)} training images${o.trainSize !== null ? ', class-balanced subset' : ''}, ${int(r.dataset.testSize)} test, ${r.dataset.numClasses} classes, ${r.dataset.imageShape.join('x')})`],
    ['architecture', `${o.arch}${r.generator.conditional ? ' (conditional)' : ''}, width x${o.width}, latent size ${o.latentDim}`],
    ...(r.clustering
      ? ([['clusters', `k-means on the pixels, k = ${r.clustering.k}, ${int(Math.min(...r.clustering.sizes))} to ${int(Math.max(...r.clustering.sizes))} images each, ${r.clustering.iterations} iterations${r.clustering.converged ? '' : ' (not converged)'}; ${pct(r.clustering.labelPurity)} of the images carry their cluster's most common label (the labels are not used in training)`]] as [string, string][])
      : []),
    ['parameters', `generator ${int(r.generator.parameters)}, discriminator ${int(r.discriminator.parameters)}`],
    ['loss', o.loss],
    ['epochs', `${r.epochs}${r.resumedFromEpoch ? ` (resumed after epoch ${r.resumedFromEpoch})` : ''}`],
    ['batch size', String(o.batchSize)],
    ['Adam', `learning rate ${num(o.learningRate)}, beta1 ${num(o.beta1)}, beta2 ${num(o.beta2)}`],
    ['critic steps per G step', String(o.criticSteps)],
    ['label smoothing', o.labelSmoothing === null ? 'none' : num(o.labelSmoothing)],
    ['gradient penalty', o.gpLambda === null ? '—' : `lambda ${num(o.gpLambda)}`],
    ['metrics', r.metricsClassifier ? `${o.classifier}, ${int(o.metricSamples)} samples` : 'skipped'],
    ...provenanceRows(r),
  ];
  return html`<section id="settings"><h2>Settings</h2>${kvTable(rows)}</section>`;
}
