/**
 * report.html of `advlab aae`: reconstructions and prior samples over the
 * epochs (the per-epoch grids as PNG data: URIs), the test codes' first two
 * coordinates over the prior's density, coloured by class, the losses, the
 * test reconstruction error and the aggregate posterior against the prior
 * over the epochs, the per-epoch table and the run's settings; in the
 * semi-supervised and clustering modes (Makhzani et al. 2015, sections 5 and
 * 6) also the test classification or clustering error over the epochs, the
 * category discriminator's game and the clusters' labels and sizes. Self-contained
 * like the other reports (reportPage's style, inline SVG plots, no script,
 * no external resource) and deterministic: the same inputs give the same bytes.
 */
import type { TopLevelSpec } from 'vega-lite';
import type { AaeRunResult } from '../generative/aae/types.js';
import { duration, html, int, num, pct, raw, kvTable, pngImg, provenanceRows, reportPage, type SafeHtml } from './eval-report.js';
import { PLOT_CONFIG, vegaLiteSvg, type PlotOptions } from './plots.js';

/** One per-epoch grid shown in the report. */
export interface AaeReportGrid {
  epoch: number;
  /** The PNG file's bytes. */
  png: Uint8Array;
}

/** What the report shows besides result.json. */
export interface AaeReportInputs {
  /** Reconstruction grids (inputs above outputs) of some epochs. */
  reconstructions: readonly AaeReportGrid[];
  /** Prior-sample grids of some epochs. */
  samples: readonly AaeReportGrid[];
  /** The final test codes, row-major [test images, latentDim]. */
  codes: Float32Array;
  /** The test images' classes, one per code. */
  labels: Int32Array;
  /**
   * The prior's density in the first two coordinates on a `cells` x `cells`
   * grid over [-extent, extent]^2, row-major from the bottom-left cell (x
   * varies fastest), relative to its largest value (in [0, 1]).
   */
  density: { extent: number; cells: number; values: ArrayLike<number> };
}

const WIDTH = 600;
const HEIGHT = 220;
/** Side of the latent scatter's square plot area. */
const SCATTER = 420;
/** Codes drawn in the scatter at most (evenly spaced through the test split). */
const SCATTER_POINTS = 1000;

interface Row {
  epoch: number;
  value: number;
  series: string;
}

/** One line (with points) per series against the epoch. */
async function epochPlot(rows: Row[], series: { name: string; color: string }[], yTitle: string, id: string, options: PlotOptions): Promise<string> {
  const epochs = rows.map((r) => r.epoch);
  const lo = Math.min(...epochs);
  const hi = Math.max(...epochs);
  const x = { field: 'epoch', type: 'quantitative', title: 'epoch', scale: { domain: [lo, Math.max(hi, lo + 1)], nice: false }, axis: { format: 'd', tickMinStep: 1 } } as const;
  const y = { field: 'value', type: 'quantitative', title: yTitle } as const;
  const color = { field: 'series', type: 'nominal', title: null, scale: { domain: series.map((s) => s.name), range: series.map((s) => s.color) }, legend: { orient: 'right', symbolType: 'stroke', symbolStrokeWidth: 2.5 } } as const;
  const spec = { width: WIDTH, height: HEIGHT, config: PLOT_CONFIG, data: { values: rows }, mark: { type: 'line', strokeWidth: 2, point: { filled: true, size: 30 } }, encoding: { x, y, color } } as unknown as TopLevelSpec;
  return vegaLiteSvg(spec, id, options);
}

/**
 * The test codes' first two coordinates over the prior's density (computed by
 * the job: {@link AaeReportInputs.density}), one colour per class.
 */
async function latentPlot(result: AaeRunResult, codes: Float32Array, labels: Int32Array, density: AaeReportInputs['density'], options: PlotOptions): Promise<string> {
  const d = result.models.latentDim;
  const n = codes.length / d;
  const { extent: L, cells: k, values } = density;
  const step = (2 * L) / k;
  const cells = Array.from(values, (v, i) => {
    const x = -L + ((i % k) + 0.5) * step;
    const y = -L + (Math.floor(i / k) + 0.5) * step;
    return { x0: x - step / 2, x1: x + step / 2, y0: y - step / 2, y1: y + step / 2, density: v };
  });
  const m = Math.min(n, SCATTER_POINTS);
  const names = result.dataset.classNames;
  const points = Array.from({ length: m }, (_, i) => {
    const r = Math.floor((i * n) / m);
    return { x: codes[r * d], y: codes[r * d + 1], class: names[labels[r]] ?? String(labels[r]) };
  });
  const axis = (field: string, title: string) => ({ field, type: 'quantitative', title, scale: { domain: [-L, L], nice: false } });
  const spec = {
    width: SCATTER,
    height: SCATTER,
    config: PLOT_CONFIG,
    layer: [
      {
        data: { values: cells },
        mark: { type: 'rect' },
        encoding: { x: axis('x0', 'z₁'), x2: { field: 'x1' }, y: axis('y0', 'z₂'), y2: { field: 'y1' }, color: { field: 'density', type: 'quantitative', scale: { domain: [0, 1], range: ['#ffffff', '#9ca3af'], interpolate: 'rgb' }, legend: null } },
      },
      {
        data: { values: points },
        mark: { type: 'circle', size: 12, opacity: 0.75, clip: true },
        encoding: { x: axis('x', 'z₁'), y: axis('y', 'z₂'), color: { field: 'class', type: 'nominal', title: 'class', sort: names, scale: { scheme: 'category10' } } },
      },
    ],
    resolve: { scale: { color: 'independent' } },
  } as unknown as TopLevelSpec;
  return vegaLiteSvg(spec, 'aae-latent', options);
}


/**
 * Renders the report of an `advlab aae` run (async: vega renders
 * asynchronously).
 *
 * @param result the run's result.json content
 * @param inputs the grids to show and the final test codes with their classes
 * @param options receives plot warnings
 */
export async function renderAaeReport(result: AaeRunResult, inputs: AaeReportInputs, options: PlotOptions = {}): Promise<string> {
  const o = result.options;
  const h = result.history;
  const d = result.models.latentDim;
  if (inputs.codes.length !== inputs.labels.length * d) throw new Error(`renderAaeReport: ${inputs.codes.length} code values for ${inputs.labels.length} labels of latent size ${d}`);
  const latent = d >= 2 && inputs.labels.length > 0 ? await latentPlot(result, inputs.codes, inputs.labels, inputs.density, options) : null;
  const recPlot = h.length
    ? await epochPlot(
        h.flatMap((r) => [{ epoch: r.epoch, value: r.reconstruction, series: `train ${o.reconstructionLoss} loss` }, ...(r.monitor?.testMse !== undefined ? [{ epoch: r.epoch, value: r.monitor.testMse, series: 'test MSE' }] : [])]),
        [
          { name: `train ${o.reconstructionLoss} loss`, color: '#4c78a8' },
          { name: 'test MSE', color: '#1f2937' },
        ],
        'reconstruction (per pixel)',
        'aae-rec',
        options,
      )
    : null;
  const adversarial = h.filter((r) => r.dLoss !== null && r.gLoss !== null);
  const categorical = result.models.categories > 0;
  const styleName = categorical ? ' (style z)' : '';
  const advPlot = adversarial.length
    ? await epochPlot(
        adversarial.flatMap((r) => [
          { epoch: r.epoch, value: r.dLoss!, series: `discriminator${styleName}` },
          { epoch: r.epoch, value: r.gLoss!, series: `encoder (adversarial)${styleName}` },
          ...(r.catDLoss !== null && r.catGLoss !== null
            ? [
                { epoch: r.epoch, value: r.catDLoss, series: 'discriminator (category y)' },
                { epoch: r.epoch, value: r.catGLoss, series: 'encoder (adversarial, category y)' },
              ]
            : []),
        ]),
        [
          { name: `discriminator${styleName}`, color: '#e45756' },
          { name: `encoder (adversarial)${styleName}`, color: '#f58518' },
          ...(categorical
            ? [
                { name: 'discriminator (category y)', color: '#b279a2' },
                { name: 'encoder (adversarial, category y)', color: '#9d755d' },
              ]
            : []),
        ],
        'loss (epoch mean)',
        'aae-adv',
        options,
      )
    : null;
  const errorName = o.labels !== null ? 'test classification error' : 'clustering error';
  const errorRows = h.flatMap((r) => {
    const v = r.monitor?.testError ?? r.monitor?.clusteringError;
    return v === undefined ? [] : [{ epoch: r.epoch, value: v, series: errorName }];
  });
  const errorPlot = errorRows.length ? await epochPlot(errorRows, [{ name: errorName, color: '#1f2937' }], 'error (fraction of the test split)', 'aae-error', options) : null;
  const mmdRows = h.filter((r) => r.monitor?.mmd !== undefined).map((r) => ({ epoch: r.epoch, value: r.monitor!.mmd, series: 'MMD², test codes vs prior' }));
  const mmdPlot = mmdRows.length ? await epochPlot(mmdRows, [{ name: 'MMD², test codes vs prior', color: '#54a24b' }], 'MMD² (lower: closer to the prior)', 'aae-mmd', options) : null;

  const kind = o.regularization ? 'Adversarial autoencoder' : 'Plain autoencoder (no regularization)';
  const body = html`<main>
<header><p class="kicker">ADVLAB AAE</p><h1>${kind} <span class="on">on</span> ${result.dataset.name}</h1>
<p class="subtitle">${o.arch} · ${modeText(result)} · ${o.prior} prior${o.supervisedPrior ? ' chosen by the labels' : ''}${categorical ? ' on the style' : ''} · latent size ${d} · ${result.epochs} epoch${result.epochs === 1 ? '' : 's'} on ${int(result.dataset.trainSize)} training images</p></header>
${cards(result)}
${categorical ? categoricalSection(result, errorPlot) : ''}
${gridSection('reconstructions', 'Reconstructions over the epochs', `The same ${Math.min(16, result.dataset.testSize)} test images each epoch: a row of inputs (IN) above their reconstructions (OUT).`, inputs.reconstructions)}
${gridSection('samples', 'Samples from the prior', categorical ? `The decoder on the same codes each epoch: one row per ${o.labels !== null ? 'class' : 'cluster'} (a one-hot y), the same 8 style codes z from N(0, I) in every row, one per column (content in the rows, style in the columns: the paper's Figure 9).` : o.prior === 'gaussian' ? 'The decoder on the same 64 prior samples each epoch.' : `The decoder on the same prior samples each epoch, 8 per ${o.prior === 'mixture' ? 'component' : 'segment'}, one ${o.prior === 'mixture' ? 'component' : 'segment'} per row${o.supervisedPrior ? ' (the row is the class whose component it is)' : ''}.`, inputs.samples)}
<section id="latent"><h2>Test codes over the prior</h2>
${latent ? html`<figure class="plot">${raw(latent)}<figcaption>${d === 2 ? `The test images' ${categorical ? 'style ' : ''}codes` : `The first two of the ${d} coordinates of the test images' ${categorical ? 'style ' : ''}codes`} (${int(Math.min(SCATTER_POINTS, result.test.images))} of ${int(result.test.images)}), coloured by class, over the prior's density${d > 2 ? ' in those coordinates' : ''} (gray, darker is denser). With the regularization working the codes fill the prior${o.supervisedPrior ? ", each class in its own component" : ''}.</figcaption></figure>` : html`<p class="not-run">A 1-D code has no 2-D scatter.</p>`}
</section>
<section id="training"><h2>Training</h2>
${recPlot ? html`<figure class="plot">${raw(recPlot)}<figcaption>Reconstruction: the training loss (the epoch's mean of each batch before its step) and the MSE of the test images' reconstructions after the epoch.</figcaption></figure>` : html`<p class="not-run">No epoch trained.</p>`}
${advPlot ? html`<figure class="plot">${raw(advPlot)}<figcaption>The regularization phase: the discriminator's loss (prior samples against codes; 2 ln 2 = 1.386 when it cannot tell them apart) and the encoder's adversarial loss${categorical ? '; for the style code against N(0, I) and for q(y|x) against one-hot samples of the categorical prior' : ''}.</figcaption></figure>` : ''}
${mmdPlot ? html`<figure class="plot">${raw(mmdPlot)}<figcaption>The kernel MMD² between the test codes and fresh prior samples (${int(result.test.posterior.mmdSamples)} each), after each epoch.</figcaption></figure>` : ''}
${historyTable(result)}
</section>
${settingsSection(result)}
<footer>Generated by advlab ${result.advlabVersion} from result.json of <code>advlab aae</code>. Self-contained: no script, no external resources.</footer>
</main>`;
  return reportPage(`advlab aae: ${o.prior} prior on ${result.dataset.name}`, result.advlabVersion, body.value, AAE_CSS);
}

const AAE_CSS = `
.grids { display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; }
.grids figure { margin: 0; }
.cards.aae { grid-template-columns: repeat(4, 1fr); }
.cards.aae.categorical { grid-template-columns: repeat(5, 1fr); }
`;

/** The mode in words: semi-supervised, clustering, or the plain code. */
function modeText(r: AaeRunResult): string {
  const o = r.options;
  if (o.labels !== null) return `semi-supervised, ${int(o.labels)} labels`;
  if (o.clusters !== null) return `clustering into ${o.clusters}`;
  return 'unsupervised code';
}

/** The semi-supervised or clustering figures: the error over the epochs and, for clustering, each cluster's label and sizes. */
function categoricalSection(r: AaeRunResult, errorPlot: string | null): SafeHtml {
  const o = r.options;
  const plot = errorPlot
    ? html`<figure class="plot">${raw(errorPlot)}<figcaption>${o.labels !== null ? `The error of argmax q(y|x) on the ${int(r.test.images)} test images after each epoch.` : `The clustering error after each epoch: each cluster takes the majority label of its training images, and the test images are scored by their cluster's label.`}</figcaption></figure>`
    : '';
  const c = r.test.clustering;
  const names = r.dataset.classNames;
  const table = c
    ? html`<table class="data"><thead><tr><th class="num">cluster</th><th>label (majority of its training images)</th><th class="num">training images</th><th class="num">test images</th></tr></thead><tbody>${c.trainSizes.map(
        (n, k) => html`<tr><td class="num">${k}</td><td>${c.clusterLabels[k] === null ? '— (no training image: its test images count as errors)' : (names[c.clusterLabels[k]!] ?? String(c.clusterLabels[k]))}</td><td class="num">${int(n)}</td><td class="num">${int(c.testSizes[k])}</td></tr>`,
      )}</tbody></table>`
    : '';
  const title = o.labels !== null ? 'Semi-supervised classification' : 'Clustering';
  const text =
    o.labels !== null
      ? `The encoder's class head q(y|x), pushed toward one-hot vectors by its own discriminator and trained on ${int(o.labels)} labelled images (a seeded class-balanced subset) beside the unlabelled ones (Makhzani et al. 2015, section 5).`
      : `The encoder's class head q(y|x) over ${o.clusters} categories, pushed toward one-hot vectors of a uniform categorical prior, trained without labels (Makhzani et al. 2015, section 6).`;
  return html`<section id="categories"><h2>${title}</h2><p>${text}</p>${plot}${table}</section>`;
}

function cards(r: AaeRunResult): SafeHtml {
  const p = r.test.posterior;
  const cls = r.test.classification;
  const clu = r.test.clustering;
  const errorCard = cls
    ? html`<div class="card headline"><div class="label">Test classification error</div><div class="value">${pct(cls.error, 2)}</div><div class="sub">${int(cls.errors)} of ${int(cls.images)} test images, ${int(r.options.labels ?? 0)} labels</div></div>`
    : clu
      ? html`<div class="card headline"><div class="label">Clustering error</div><div class="value">${pct(clu.error, 2)}</div><div class="sub">${clu.clusters} clusters${clu.emptyClusters ? `, ${clu.emptyClusters} empty` : ''}, ${int(clu.images)} test images</div></div>`
      : '';
  return html`<div class="cards aae${cls || clu ? ' categorical' : ''}">
${errorCard}
<div class="card${cls || clu ? '' : ' headline'}"><div class="label">Test reconstruction MSE</div><div class="value">${num(r.test.reconstructionMse)}</div><div class="sub">per pixel, ${int(r.test.images)} test images</div></div>
<div class="card"><div class="label">MMD², codes vs prior</div><div class="value">${num(p.mmd)}</div><div class="sub">${int(p.mmdSamples)} test codes and prior samples</div></div>
<div class="card"><div class="label">Moments vs prior</div><div class="value small">${num(p.meanError)} sd · ×${num(Math.exp(p.logVarianceRatio))}</div><div class="sub">worst mean offset · worst variance factor, over ${p.d} dimensions</div></div>
<div class="card"><div class="label">Training time</div><div class="value small">${duration(r.secondsPerEpoch)}</div><div class="sub">per epoch, ${int(r.dataset.trainSize)} images</div></div>
</div>`;
}

function gridSection(id: string, title: string, text: string, grids: readonly { epoch: number; png: Uint8Array }[]): SafeHtml {
  if (!grids.length) return html`<section id="${id}"><h2>${title}</h2><p class="not-run">No grid.</p></section>`;
  const figures = grids.map((g) => html`<figure class="grid">${pngImg(g.png, `${id} after epoch ${g.epoch}`)}<figcaption>epoch ${g.epoch}</figcaption></figure>`);
  return html`<section id="${id}"><h2>${title}</h2><p>${text}</p><div class="grids">${figures}</div></section>`;
}

function historyTable(r: AaeRunResult): SafeHtml {
  const cell = (x: number | null | undefined) => (x === undefined || x === null ? '—' : num(x));
  const categorical = r.models.categories > 0;
  const semi = r.options.labels !== null;
  const extraHead = categorical
    ? html`<th class="num">C loss</th><th class="num">C(prior)</th><th class="num">C(code)</th>${semi ? html`<th class="num">classification loss</th><th class="num">test error</th>` : html`<th class="num">clustering error</th>`}`
    : '';
  const extra = (e: AaeRunResult['history'][number]) =>
    categorical
      ? html`<td class="num">${cell(e.catDLoss)}</td><td class="num">${cell(e.catDPrior)}</td><td class="num">${cell(e.catDCode)}</td>${semi ? html`<td class="num">${cell(e.classification)}</td><td class="num">${e.monitor?.testError === undefined ? '—' : pct(e.monitor.testError, 2)}</td>` : html`<td class="num">${e.monitor?.clusteringError === undefined ? '—' : pct(e.monitor.clusteringError, 2)}</td>`}`
      : '';
  const rows = r.history.map(
    (e) =>
      html`<tr><td class="num">${e.epoch}</td><td class="num">${num(e.reconstruction)}</td><td class="num">${cell(e.dLoss)}</td><td class="num">${cell(e.gLoss)}</td><td class="num">${cell(e.dPrior)}</td><td class="num">${cell(e.dCode)}</td>${extra(e)}<td class="num">${cell(e.monitor?.testMse)}</td><td class="num">${cell(e.monitor?.meanError)}</td><td class="num">${cell(e.monitor?.logVarianceRatio)}</td><td class="num">${cell(e.monitor?.mmd)}</td><td class="num">${duration(e.seconds)}</td></tr>`,
  );
  return html`<table class="data"><thead><tr><th class="num">epoch</th><th class="num">reconstruction</th><th class="num">D loss</th><th class="num">encoder loss</th><th class="num">D(prior)</th><th class="num">D(code)</th>${extraHead}<th class="num">test MSE</th><th class="num">mean offset (sd)</th><th class="num">|ln var ratio|</th><th class="num">MMD²</th><th class="num">time</th></tr></thead><tbody>${rows}</tbody></table>`;
}

/** The balance weight and discriminator noise of the categorical modes, for the settings table (older results lack them). */
function categoryTerms(o: AaeRunResult['options']): string {
  const balance = o.categoryBalance ?? 0;
  const noise = o.categoryNoise ?? 0;
  return `, balance term weight ${balance}${noise > 0 ? `, category discriminator input noise sd ${noise}` : ''}`;
}

function settingsSection(r: AaeRunResult): SafeHtml {
  const o = r.options;
  const m = r.models;
  const rows: [string, string][] = [
    ['dataset', `${r.dataset.name} (${int(r.dataset.trainSize)} training images${o.trainSize !== null ? ', class-balanced subset' : ''}, ${int(r.dataset.testSize)} test, ${r.dataset.numClasses} classes, ${r.dataset.imageShape.join('x')})`],
    ['architecture', `${o.arch}, width x${o.width}, latent size ${o.latentDim}, deterministic encoder`],
    ['parameters', `encoder ${int(m.encoder.parameters)}, decoder ${int(m.decoder.parameters)}, discriminator ${int(m.discriminator.parameters)}${m.categoryDiscriminator ? `, category discriminator ${int(m.categoryDiscriminator.parameters)}` : ''}`],
    ['mode', o.labels !== null ? `semi-supervised: class head over ${m.categories} classes, ${int(o.labels)} labelled training images, classification Adam rate ${num(o.classificationLearningRate)}, labelled batches augmented: ${o.augment ?? 'no'}${categoryTerms(o)}` : o.clusters !== null ? `clustering: class head over ${o.clusters} categories, no labels${categoryTerms(o)}` : 'a single code z'],
    ['prior', `${o.prior}${o.components !== null ? `, ${o.components} ${o.prior === 'mixture' ? 'components' : 'segments'}` : ''}${o.supervisedPrior ? ', chosen by the labels (the discriminator sees them one-hot)' : ''}`],
    ['regularization', o.regularization ? 'on (discriminator step, then encoder step, per batch)' : 'off: a plain autoencoder'],
    ['reconstruction loss', o.reconstructionLoss],
    ['epochs', `${r.epochs}${r.resumedFromEpoch ? ` (resumed after epoch ${r.resumedFromEpoch})` : ''}`],
    ['batch size', String(o.batchSize)],
    ['Adam', `reconstruction: rate ${num(o.learningRate)}, beta1 ${num(o.beta1)}; discriminator and encoder (adversarial): rate ${num(o.adversarialLearningRate)}, beta1 ${num(o.adversarialBeta1)}${o.decayEpoch ? `; every rate cut tenfold from epoch ${o.decayEpoch}` : ''}`],
    ...provenanceRows(r),
  ];
  return html`<section id="settings"><h2>Settings</h2>${kvTable(rows)}</section>`;
}
