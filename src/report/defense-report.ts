/**
 * report.html of `advlab train --defense`: the before/after evidence (clean and
 * robust accuracy, the eps curve of the defended model and of its baseline,
 * training time) and the defense's settings. Self-contained like the eval
 * report (same style); links to the full evaluation reports.
 */
import type { DefenseRunResult, EvidenceEntry } from '../defenses/types.js';
import { duration, html, pct, raw, reportPage } from './eval-report.js';
import { comparisonPlot, formatEps } from './plots.js';

/** Renders the defended run's report (async: vega renders asynchronously). */
export async function renderDefenseReport(result: DefenseRunResult): Promise<string> {
  const ev = result.evidence;
  const d = result.defense;
  const entries: [string, EvidenceEntry][] = ev ? [[`${d.name} (this run)`, ev.defended], ...(ev.baseline ? ([['baseline', ev.baseline]] as [string, EvidenceEntry][]) : [])] : [];
  const plot = ev ? await comparisonPlot(entries.map(([name, e]) => ({ name, cleanAccuracy: e.cleanAccuracy, curve: e.curve })), d.norm) : null;
  const rows = entries.map(
    ([name, e]) => html`<tr><td>${name}</td><td><code>${e.model}</code></td><td class="num">${pct(e.cleanAccuracy)}</td><td class="num">${pct(e.robustAccuracy)}</td><td class="num">[${pct(e.confidenceInterval[0])}, ${pct(e.confidenceInterval[1])}]</td><td>${e.sanity}</td><td><a href="${relative(result.options.out, e.evalDir)}/report.html">full evaluation</a></td></tr>`,
  );
  const settings = Object.entries({
    defense: d.name,
    norm: d.norm,
    eps: formatEps(d.eps),
    ...(d.name === 'ibp' && d.ibp
      ? { 'eps 0 (epochs)': d.ibp.flatEpochs, 'eps ramp (epochs)': d.epsWarmupEpochs, 'training eps': formatEps(d.eps * d.ibp.epsScale), 'final κ (clean loss weight)': d.ibp.kappa }
      : { 'attack steps': d.name === 'fgsm-rs' ? 1 : d.steps, 'step size': d.stepSize, ...(d.name === 'trades' ? { beta: d.beta } : {}), 'eps warm-up (epochs)': d.epsWarmupEpochs }),
    epochs: result.epochs,
    'batch size': result.options.batchSize,
    'learning rate': result.options.learningRate,
    augmentation: result.options.augment,
    ...(result.generated
      ? { 'generated data': `${result.generated.n} images from ${result.generated.generator}${result.generated.arch ? ` (${result.generated.arch})` : ''}, ${result.generated.perBatch} of every ${result.options.batchSize} in a batch, labelled by ${result.generated.labels === 'generator' ? 'the class asked for' : result.generated.labeller}` }
      : {}),
    workers: d.workers,
    'training time': duration(d.trainingSeconds),
    backend: `${result.backend} (${result.threads} thread${result.threads === 1 ? '' : 's'}, ${result.kernels} kernels)`,
    seed: result.seed,
    advlab: result.advlabVersion,
    tfjs: result.tfjsVersion,
  }).map(([k, v]) => html`<tr><th>${k}</th><td>${String(v)}</td></tr>`);
  const watch = (h: (typeof result.history)[number], key: string) => (h.monitor?.[key] === undefined ? '—' : pct(h.monitor[key]));
  const history = result.history.map(
    (h) =>
      html`<tr${h.monitor?.catastrophicOverfitting === 1 ? raw(' class="warn"') : ''}><td class="num">${h.epoch}</td><td class="num">${h.loss.toFixed(4)}</td><td class="num">${pct(h.trainAccuracy)}</td><td class="num">${h.testAccuracy === undefined ? '—' : pct(h.testAccuracy)}</td><td class="num">${watch(h, 'pgdAccuracy')}</td><td class="num">${watch(h, 'fgsmAccuracy')}</td><td class="num">${duration(h.seconds)}</td></tr>`,
  );
  const o = d.overfitting;
  const overfitting = !o
    ? html`<p>No held-out watch ran.</p>`
    : o.detected
      ? html`<p class="verdict warn"><b>Catastrophic overfitting</b> at the last epoch (epochs ${o.epochs.join(', ')}): held-out PGD-10 accuracy ${pct(o.finalPgdAccuracy)}, FGSM ${pct(o.finalFgsmAccuracy)}; best PGD-10 accuracy ${pct(o.bestPgdAccuracy)} at epoch ${o.bestEpoch}${o.restored ? ', whose weights the saved model holds' : ''}.</p>`
      : html`<p>No catastrophic overfitting at the last epoch${o.epochs.length ? html` (seen at epochs ${o.epochs.join(', ')})` : ''}: held-out PGD-10 accuracy ${pct(o.finalPgdAccuracy)}, FGSM ${pct(o.finalFgsmAccuracy)} (best PGD-10 ${pct(o.bestPgdAccuracy)}, epoch ${o.bestEpoch}).</p>`;
  const body = html`<main>
<header><p class="kicker">ADVLAB TRAIN · DEFENSE</p><h1>${result.model} on ${result.dataset.name}, ${d.name}</h1></header>
<section><h2>Before and after</h2>
${ev ? html`<p>Evaluated with the <b>${ev.suite}</b> suite of <code>advlab eval</code> on ${ev.n} test images, ${d.norm} ε ${formatEps(ev.eps[0])} (the headline), per-example worst case.</p>
<table><thead><tr><th>model</th><th>path</th><th>clean</th><th>robust</th><th>95% CI</th><th>sanity</th><th></th></tr></thead><tbody>${rows}</tbody></table>
<figure>${raw(plot ?? '')}<figcaption>Robust accuracy against ε; each line starts at the model's clean accuracy.</figcaption></figure>` : html`<p>Not run.</p>`}
</section>
<section><h2>Training</h2>${overfitting}<table><thead><tr><th>epoch</th><th>loss</th><th>train acc. (on what the loss saw)</th><th>clean test acc.</th><th>held-out PGD-10 acc.</th><th>held-out FGSM acc.</th><th>time</th></tr></thead><tbody>${history}</tbody></table></section>
<section><h2>Settings</h2><table>${settings}</table></section>
<footer>Generated by advlab ${result.advlabVersion}. Self-contained: no script, no external resources.</footer>
</main>`;
  return reportPage(`advlab defense: ${result.model} ${d.name}`, result.advlabVersion, body.value);
}

/** `dir` relative to the report's folder (both are paths under the run folder or elsewhere). */
function relative(from: string, dir: string): string {
  const norm = (p: string) => p.replace(/\\/g, '/').replace(/\/+$/, '');
  const f = norm(from);
  const d = norm(dir);
  return d.startsWith(`${f}/`) ? d.slice(f.length + 1) : d;
}

