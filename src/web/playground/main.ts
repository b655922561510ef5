/**
 * The playground: a person picks or draws an image, picks a model and an
 * attack, and sees the clean image, the perturbation and the adversarial
 * image side by side, with the top-5 classes before and after. Everything
 * runs in the page on the core (`advlab`), on the backend the person picks.
 * The site is built by `npm run build:web` (scripts/build-web.ts).
 */
import { ATTACKS, BROWSER_BACKEND_NAMES, Classifier, decodeImages, encodeImages, generateImages, generatorClasses, generatorSpec, initBackend, isGraphModel, latentCodes, Rng, tf, tfl, backendInfo, type Attack, type BackendName, type ClassifierModel, type ImageSet, type Norm, type ParamSpec } from '../../index.js';
import { fetchImageSet, loadModelFromFiles, loadModelFromUrl } from '../model-store.js';
import { robustAccuracyPlot } from '../../report/plots.js';
import type { EvalMessage, EvalRequest } from './eval-worker.js';
import type { AttackMessage, AttackRequest } from './attack-worker.js';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

const state: {
  model?: ClassifierModel;
  classifier?: Classifier;
  /** The image to attack, in [0, 1], the model's input shape. */
  image?: Float32Array;
  /** Its label: the test set's, else the model's clean prediction. */
  label?: number;
  /** The last adversarial image. */
  adversarial?: Float32Array;
  /** The shipped generator and autoencoder, loaded on first use. */
  generator?: tfl.LayersModel;
  encoder?: tfl.LayersModel;
  decoder?: tfl.LayersModel;
  /** Seeds the samples: each click draws new ones, reproducibly. */
  sampleRound: number;
  /** The shipped mnist test digits, fetched on first use. */
  test?: ImageSet;
  busy: boolean;
} = { busy: false, sampleRound: 0 };

function setStatus(id: string, text: string, error = false): void {
  const el = $(id);
  el.textContent = text;
  el.classList.toggle('error', error);
}

function describeError(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

// ---------------------------------------------------------------------------
// Backend

async function startBackend(name: BackendName): Promise<void> {
  setStatus('backend-status', `starting ${name}…`);
  const isolated = (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated === true;
  const info = await initBackend({ backend: name, wasmPaths: new URL('wasm/', location.href).href, wasmThreads: isolated });
  // A model's weights live on the backend that made them: reload it on a switch.
  if (state.model) await loadModel();
  setStatus('backend-status', `${info.name} (tfjs ${info.tfjsName}, ${info.threads} thread${info.threads > 1 ? 's' : ''}${isolated ? ', cross-origin isolated' : ''})`);
}

function setupBackends(): void {
  const select = $<HTMLSelectElement>('backend');
  for (const name of BROWSER_BACKEND_NAMES) select.add(new Option(name, name));
  select.value = 'wasm';
  select.addEventListener('change', () => void run(() => startBackend(select.value as BackendName), 'backend-status'));
}

// ---------------------------------------------------------------------------
// Model

async function loadModel(): Promise<void> {
  const choice = (document.querySelector('input[name="model"]:checked') as HTMLInputElement).value;
  setStatus('model-status', 'loading…');
  let model: ClassifierModel;
  if (choice === 'url') model = await loadModelFromUrl($<HTMLInputElement>('model-url').value);
  else if (choice === 'files') model = await loadModelFromFiles(Array.from($<HTMLInputElement>('model-files').files ?? []));
  else model = await loadModelFromUrl(new URL(`models/${choice}/model.json`, location.href).href);
  state.classifier?.dispose();
  state.model?.dispose();
  state.model = model;
  state.classifier = Classifier.fromModel(model);
  const [h, w, c] = state.classifier.inputShape;
  setStatus('model-status', `${isGraphModel(model) ? 'graph' : 'Layers'} model: input ${h}x${w}x${c}, ${state.classifier.numClasses} classes`);
  state.image = undefined;
  clearCanvas();
}

// ---------------------------------------------------------------------------
// Image: draw, a test image, or a file

const draw = () => $<HTMLCanvasElement>('draw');

function clearCanvas(): void {
  const ctx = draw().getContext('2d')!;
  ctx.fillStyle = '#000';
  ctx.fillRect(0, 0, draw().width, draw().height);
}

function setupDrawing(): void {
  const canvas = draw();
  const ctx = canvas.getContext('2d')!;
  clearCanvas();
  let last: [number, number] | null = null;
  const at = (e: PointerEvent): [number, number] => {
    const r = canvas.getBoundingClientRect();
    return [((e.clientX - r.left) * canvas.width) / r.width, ((e.clientY - r.top) * canvas.height) / r.height];
  };
  canvas.addEventListener('pointerdown', (e) => {
    canvas.setPointerCapture(e.pointerId);
    last = at(e);
  });
  canvas.addEventListener('pointermove', (e) => {
    if (!last) return;
    const p = at(e);
    ctx.strokeStyle = '#fff';
    ctx.lineWidth = canvas.width / 12;
    ctx.lineCap = 'round';
    ctx.beginPath();
    ctx.moveTo(...last);
    ctx.lineTo(...p);
    ctx.stroke();
    last = p;
  });
  const end = () => {
    if (!last) return;
    last = null;
    void run(() => useCanvasImage(canvas, null), 'image-status');
  };
  canvas.addEventListener('pointerup', end);
  canvas.addEventListener('pointerleave', end);
}

/** The canvas scaled to the model's input, as values in [0, 1] (gray, or RGB for 3 channels). */
async function useCanvasImage(source: CanvasImageSource, label: number | null): Promise<void> {
  const classifier = requireModel();
  const [h, w, c] = classifier.inputShape;
  const small = new OffscreenCanvas(w, h);
  const ctx = small.getContext('2d')!;
  ctx.drawImage(source, 0, 0, w, h);
  const rgba = ctx.getImageData(0, 0, w, h).data;
  const image = new Float32Array(h * w * c);
  for (let i = 0; i < h * w; i++) {
    if (c === 1) image[i] = (0.299 * rgba[4 * i] + 0.587 * rgba[4 * i + 1] + 0.114 * rgba[4 * i + 2]) / 255;
    else for (let k = 0; k < c; k++) image[i * c + k] = rgba[4 * i + k] / 255;
  }
  await useImage(image, label);
}

/** Shows the image and its top-5; returns the model's probabilities for it. */
async function useImage(image: Float32Array, label: number | null): Promise<Float32Array> {
  const classifier = requireModel();
  state.image = image;
  const probabilities = await predict(classifier, image);
  state.label = label ?? argmax(probabilities);
  showImage('clean', image);
  showTop5('top5-before', probabilities, state.label);
  setStatus('image-status', label === null ? `label: the model's prediction, ${state.label}` : `test image, label ${label}`);
  return probabilities;
}

async function testImage(): Promise<void> {
  const classifier = requireModel();
  const [h, w, c] = classifier.inputShape;
  if (h !== 28 || w !== 28 || c !== 1) throw new Error('the shipped test images are mnist digits (28x28x1); this model takes ' + classifier.inputShape.join('x'));
  if (!state.test) {
    // Stored as thousandths, the precision of the mnist package (scripts/web-assets.ts).
    state.test = await fetchImageSet('data/mnist-test-images.npy', 'data/mnist-test-labels.npy', 1000);
  }
  const i = Math.floor(Math.random() * state.test.count);
  const image = state.test.images.slice(i * 784, (i + 1) * 784);
  drawGray(draw(), image, 28, 28);
  const read = argmax(await useImage(image, state.test.labels[i]));
  setStatus('image-status', `test image ${i}, label ${state.test.labels[i]}, the model reads ${read}`);
}

async function imageFile(file: File): Promise<void> {
  const bitmap = await createImageBitmap(file);
  const ctx = draw().getContext('2d')!;
  ctx.drawImage(bitmap, 0, 0, draw().width, draw().height);
  await useCanvasImage(bitmap, null);
}

// ---------------------------------------------------------------------------
// Attack

function selectedAttack(): Attack {
  const name = $<HTMLSelectElement>('attack').value;
  return ATTACKS.find((a) => a.name === name)!;
}

/** A form field per parameter of the attack, from its metadata. */
function renderParams(attack: Attack): void {
  const box = $('attack-params');
  box.replaceChildren();
  for (const p of attack.params) box.append(paramField(p));
  const norm = $<HTMLSelectElement>('norm');
  norm.replaceChildren(...attack.norms.map((n) => new Option(n, n)));
  $<HTMLInputElement>('eps').disabled = false;
}

function paramField(p: ParamSpec): HTMLElement {
  const label = document.createElement('label');
  label.title = p.description;
  let input: HTMLInputElement | HTMLSelectElement;
  if (p.choices) {
    input = document.createElement('select');
    for (const c of p.choices) input.add(new Option(c, c));
    input.value = String(p.default);
  } else {
    input = document.createElement('input');
    if (p.type === 'boolean') {
      input.type = 'checkbox';
      input.checked = p.default === true;
    } else {
      input.type = p.type === 'string' ? 'text' : 'number';
      if (p.type === 'integer') input.step = '1';
      else if (p.type === 'number') input.step = 'any';
      if (p.min !== undefined) input.min = String(p.min);
      if (p.max !== undefined) input.max = String(p.max);
      input.value = String(p.default);
    }
  }
  input.dataset.param = p.name;
  input.dataset.type = p.type;
  label.append(`${p.name} `, input);
  return label;
}

function paramValues(): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const el of Array.from($('attack-params').querySelectorAll<HTMLInputElement>('[data-param]'))) {
    const type = el.dataset.type;
    out[el.dataset.param!] = type === 'boolean' ? el.checked : type === 'number' || type === 'integer' ? Number(el.value) : el.value;
  }
  return out;
}

/** A worker's messages: progress, then done or error. */
type WorkerMessage<P, D> = ({ type: 'progress' } & P) | ({ type: 'done' } & D) | { type: 'error'; message: string };

/**
 * Runs one request in a fresh module Web Worker (`script`, built next to the
 * page) and resolves with its `done` message; progress messages go to
 * `onProgress`. The `cancel` button is enabled meanwhile: it terminates the
 * worker, which rejects with "cancelled".
 */
function runWorker<P, D>(script: string, request: unknown, cancel: string, onProgress: (m: { type: 'progress' } & P) => void): Promise<{ type: 'done' } & D> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL(script, location.href), { type: 'module' });
    const button = $<HTMLButtonElement>(cancel);
    const finish = () => {
      worker.terminate();
      button.disabled = true;
      button.onclick = null;
    };
    button.disabled = false;
    button.onclick = () => {
      finish();
      reject(new Error('cancelled'));
    };
    worker.onmessage = (e: MessageEvent<WorkerMessage<P, D>>) => {
      const m = e.data;
      if (m.type === 'progress') return onProgress(m);
      finish();
      if (m.type === 'done') resolve(m);
      else reject(new Error(m.message));
    };
    worker.onerror = (e) => {
      finish();
      reject(new Error(e.message || `${script} failed`));
    };
    worker.postMessage(request);
  });
}

async function attack(): Promise<void> {
  const classifier = requireModel();
  if (!state.image || state.label === undefined) throw new Error('pick, draw or drop an image first');
  const a = selectedAttack();
  const eps = Number($<HTMLInputElement>('eps').value);
  const norm = $<HTMLSelectElement>('norm').value as Norm;
  const params = paramValues();
  setStatus('attack-status', `running ${a.title}…`);
  // What the attack will spend at most, when its parameters say (steps or queries, times restarts).
  const budget = (Number(params.steps ?? params.iterations ?? params.queries ?? params.maxQueries) || 0) * (Number(params.restarts) || 1);
  const request: AttackRequest = { backend: backendInfo()?.name ?? 'wasm', base: new URL('./', location.href).href, model: modelSource(), image: state.image, label: state.label, attack: a.name, norm, eps: a.kind === 'minimal' ? undefined : eps, params, seed: 0 };
  const done = await runWorker<Extract<AttackMessage, { type: 'progress' }>, Extract<AttackMessage, { type: 'done' }>>('attack-worker.js', request, 'attack-cancel', (p) => {
    const spent = a.access === 'gradient' ? p.gradients : p.queries;
    $<HTMLProgressElement>('attack-progress').value = budget ? Math.min(1, spent / budget) : 0;
    setStatus('attack-status', `running ${a.title}: ${p.gradients} gradients, ${p.queries} queries, ${p.seconds.toFixed(1)} s`);
  });
  $<HTMLProgressElement>('attack-progress').value = 1;
  const r = done.result;
  const seconds = done.seconds;
  const adversarial = r.adversarial;
  state.adversarial = adversarial;
  showImage('adversarial', adversarial);
  const delta = Float32Array.from(adversarial, (v, i) => v - state.image![i]);
  const m = delta.reduce((x, v) => Math.max(x, Math.abs(v)), 0);
  showImage('delta', Float32Array.from(delta, (v) => (m > 0 ? 0.5 + v / (2 * m) : 0.5)));
  $('delta-caption').textContent = m > 0 ? `perturbation (x${(0.5 / m).toFixed(1)})` : 'perturbation (none)';
  showTop5('top5-after', await predict(classifier, adversarial), state.label);
  const flipped = r.adversarialPredictions[0] !== state.label;
  const cost = `${seconds.toFixed(2)} s, ${r.gradients} gradients, ${r.queries} queries`;
  // A misread clean image is no attack's success (the driver counts only images it read right).
  if (r.cleanPredictions[0] !== state.label) setStatus('attack-status', `already misclassified: label ${state.label}, the model reads ${r.cleanPredictions[0]}; nothing to attack (${cost})`);
  else setStatus('attack-status', `${flipped ? 'prediction changed' : 'prediction unchanged'}: ${state.label} → ${r.adversarialPredictions[0]} (${r.success[0] ? 'adversarial, verified' : 'no adversarial example found'}), ${cost}`);
  $('norms').textContent = `L0 ${r.norms.l0[0]}, L2 ${r.norms.l2[0].toFixed(3)}, Linf ${r.norms.linf[0].toFixed(3)}`;
}

function setupAttacks(): void {
  const select = $<HTMLSelectElement>('attack');
  for (const a of ATTACKS) select.add(new Option(`${a.title} (${a.name})`, a.name));
  select.value = 'pgd';
  select.addEventListener('change', () => renderParams(selectedAttack()));
  renderParams(selectedAttack());
  const eps = $<HTMLInputElement>('eps');
  eps.addEventListener('input', () => ($('eps-value').textContent = Number(eps.value).toFixed(2)));
}

// ---------------------------------------------------------------------------
// Evaluate: the quick suite in a Web Worker (Cancel terminates it)

/** Where the worker loads the model from: the chosen site model or URL, or the dropped files themselves. */
function modelSource(): EvalRequest['model'] {
  const choice = (document.querySelector('input[name="model"]:checked') as HTMLInputElement).value;
  if (choice === 'url') return { url: new URL($<HTMLInputElement>('model-url').value, location.href).href };
  if (choice === 'files') return { files: Array.from($<HTMLInputElement>('model-files').files ?? []) };
  return { url: new URL(`models/${choice}/model.json`, location.href).href };
}

function evaluate(): void {
  requireModel();
  const n = Number($<HTMLInputElement>('eval-n').value);
  const eps = $<HTMLInputElement>('eval-eps').value.split(',').map((s) => Number(s.trim()));
  if (!Number.isInteger(n) || n < 1 || n > 2004) return setStatus('eval-status', 'images: expected an integer in [1, 2004]', true);
  if (!eps.length || eps.some((e) => !(e > 0 && e <= 1))) return setStatus('eval-status', 'eps: expected a comma list of numbers in (0, 1]', true);
  const sanity = Number($<HTMLInputElement>('eval-sanity').value);
  if (!Number.isInteger(sanity) || sanity < 0) return setStatus('eval-status', 'sanity sample: expected an integer >= 0', true);
  $('eval-downloads').hidden = true;
  const progress = $<HTMLProgressElement>('eval-progress');
  const stop = () => {
    $<HTMLButtonElement>('eval-run').disabled = false;
    delete document.body.dataset.evaluating;
  };
  $<HTMLButtonElement>('eval-run').disabled = true;
  document.body.dataset.evaluating = 'true';
  setStatus('eval-status', 'starting the worker…');
  progress.value = 0;
  const sanitySample = Math.min(n, sanity);
  const request: EvalRequest = { backend: 'wasm', base: new URL('./', location.href).href, model: modelSource(), n, eps, seed: 0, sanitySample };
  runWorker<Extract<EvalMessage, { type: 'progress' }>, Extract<EvalMessage, { type: 'done' }>>('eval-worker.js', request, 'eval-cancel', (m) => {
    // Phases "eps <e>" in order, then the sanity checks (counted as one more eps's worth).
    const k = m.phase.startsWith('eps ') ? eps.slice().sort((x, y) => x - y).indexOf(Number(m.phase.slice(4))) : eps.length;
    progress.value = (k + m.done / m.total) / (eps.length + 1);
    setStatus('eval-status', `${m.phase}: ${m.done}/${m.total}`);
  }).then(
    (m) => {
      stop();
      progress.value = 1;
      void showEvaluation(m);
    },
    (e) => {
      stop();
      setStatus('eval-status', describeError(e), e instanceof Error && e.message === 'cancelled' ? false : true);
    },
  );
}

/** Points a download link at `text` (the previous object URL is released). */
function offerDownload(id: string, text: string, type: string): void {
  const a = $<HTMLAnchorElement>(id);
  if (a.href.startsWith('blob:')) URL.revokeObjectURL(a.href);
  a.href = URL.createObjectURL(new Blob([text], { type }));
}

async function showEvaluation(m: Extract<EvalMessage, { type: 'done' }>): Promise<void> {
  const r = m.result;
  const sweep = [...r.sweep].sort((a, b) => a.eps - b.eps);
  const headline = sweep.find((s) => s.eps === r.eps)!;
  const warned = r.sanity.checks.filter((c) => c.verdict === 'warn').map((c) => c.id);
  setStatus(
    'eval-status',
    `${r.count} images, clean accuracy ${(r.cleanAccuracy * 100).toFixed(1)}%; robust accuracy at eps ${headline.eps}: ${(headline.robustAccuracy * 100).toFixed(1)}% (95% CI ${(headline.confidenceInterval[0] * 100).toFixed(1)}–${(headline.confidenceInterval[1] * 100).toFixed(1)}%), sanity checks: ${r.sanity.verdict}${warned.length ? ` (${warned.join(', ')})` : ''}; ${r.seconds.toFixed(1)} s on ${r.backend}`,
  );
  offerDownload('eval-result', JSON.stringify(r, null, 2) + '\n', 'application/json');
  offerDownload('eval-report', m.report, 'text/html');
  $('eval-downloads').hidden = false;
  const table = $<HTMLTableElement>('eval-table');
  table.replaceChildren();
  table.createTHead().insertRow().append(...['eps', 'robust', '95% CI', 'gradients/image'].map((t) => Object.assign(document.createElement('th'), { textContent: t })));
  const rows = table.createTBody();
  for (const s of sweep) {
    const row = rows.insertRow();
    for (const t of [String(s.eps), `${(s.robustAccuracy * 100).toFixed(1)}%`, `${(s.confidenceInterval[0] * 100).toFixed(1)}–${(s.confidenceInterval[1] * 100).toFixed(1)}%`, s.gradientsPerImage.toFixed(0)]) row.insertCell().textContent = t;
  }
  const classes = $<HTMLTableElement>('eval-classes');
  classes.replaceChildren();
  classes.createCaption().textContent = `per class at eps ${headline.eps}`;
  classes.createTHead().insertRow().append(...['class', 'images', 'clean', 'robust'].map((t) => Object.assign(document.createElement('th'), { textContent: t })));
  const classRows = classes.createTBody();
  for (const c of headline.perClass) {
    const row = classRows.insertRow();
    for (const t of [c.name, String(c.count), `${(c.cleanAccuracy * 100).toFixed(0)}%`, `${(c.robustAccuracy * 100).toFixed(0)}%`]) row.insertCell().textContent = t;
  }
  // The report's plot (Vega-Lite rendered to SVG from advlab's own figures).
  $('eval-plot').innerHTML = await robustAccuracyPlot({ sweep, cleanAccuracy: r.cleanAccuracy, norm: 'linf' });
}

// ---------------------------------------------------------------------------
// Generate and purify: the shipped scgan generator and adversarial autoencoder

async function layersModel(name: string): Promise<tfl.LayersModel> {
  const model = await loadModelFromUrl(new URL(`models/${name}/model.json`, location.href).href);
  if (isGraphModel(model)) throw new Error(`models/${name} is not a Layers model`);
  return model;
}

async function samples(): Promise<void> {
  state.generator ??= await layersModel('mnist-scgan-generator');
  const spec = generatorSpec(state.generator, 'models/mnist-scgan-generator', null);
  const rng = new Rng(1000 + state.sampleRound++);
  const n = 16;
  const classes = generatorClasses(spec, n, rng);
  const images = await generateImages(state.generator, spec, latentCodes(rng, n, spec.latentDim), classes);
  drawTiles($<HTMLCanvasElement>('gen-grid'), images, 4, 4);
  setStatus('gen-status', `16 samples (seed ${999 + state.sampleRound}), clusters ${Array.from(classes ?? []).join(', ')}`);
}

async function walk(): Promise<void> {
  state.generator ??= await layersModel('mnist-scgan-generator');
  const spec = generatorSpec(state.generator, 'models/mnist-scgan-generator', null);
  const rng = new Rng(2000 + state.sampleRound++);
  const steps = 10;
  const cluster = generatorClasses(spec, 1, rng);
  const [a, b] = [latentCodes(rng, 1, spec.latentDim), latentCodes(rng, 1, spec.latentDim)];
  const z = new Float32Array(steps * spec.latentDim);
  for (let s = 0; s < steps; s++) for (let j = 0; j < spec.latentDim; j++) z[s * spec.latentDim + j] = a[j] + ((b[j] - a[j]) * s) / (steps - 1);
  const images = await generateImages(state.generator, spec, z, cluster ? new Int32Array(steps).fill(cluster[0]) : undefined);
  drawTiles($<HTMLCanvasElement>('gen-line'), images, 1, steps);
  setStatus('gen-status', `from one sample to another of cluster ${cluster?.[0]}, in ${steps} steps of the latent code`);
}

async function purify(adversarial: boolean): Promise<void> {
  const classifier = requireModel();
  const image = adversarial ? state.adversarial : state.image;
  if (!image) throw new Error(adversarial ? 'run an attack first' : 'pick, draw or drop an image first');
  if (classifier.inputShape.join() !== '28,28,1') throw new Error('the shipped autoencoder takes mnist digits (28x28x1)');
  state.encoder ??= await layersModel('mnist-aae-encoder');
  state.decoder ??= await layersModel('mnist-aae-decoder');
  const latentDim = state.encoder.outputs[0].shape[1] as number;
  const reconstructed = await decodeImages(state.decoder, await encodeImages(state.encoder, image, [28, 28, 1]), latentDim);
  const error = reconstructed.reduce((s, v, i) => s + (v - image[i]) ** 2, 0) / reconstructed.length;
  showImage('purified', reconstructed);
  const probabilities = await predict(classifier, reconstructed);
  $('purified-caption').textContent = `reconstruction of the ${adversarial ? 'adversarial' : 'clean'} image`;
  setStatus('purify-status', `reconstruction error (MSE) ${error.toFixed(4)}; the model reads the reconstruction as ${argmax(probabilities)} (${(Math.max(...probabilities) * 100).toFixed(1)}%)${state.label !== undefined ? `, label ${state.label}` : ''}`);
}

/** Images (28x28 gray) as a rows x columns grid on a canvas. */
function drawTiles(canvas: HTMLCanvasElement, images: Float32Array, rows: number, columns: number): void {
  const ctx = canvas.getContext('2d')!;
  ctx.imageSmoothingEnabled = false;
  const w = canvas.width / columns;
  const h = canvas.height / rows;
  for (let k = 0; k < rows * columns; k++) {
    const tile = new OffscreenCanvas(28, 28);
    const data = new ImageData(28, 28);
    for (let i = 0; i < 784; i++) {
      const v = Math.round(Math.min(1, Math.max(0, images[k * 784 + i])) * 255);
      data.data.set([v, v, v, 255], 4 * i);
    }
    tile.getContext('2d')!.putImageData(data, 0, 0);
    ctx.drawImage(tile, (k % columns) * w, Math.floor(k / columns) * h, w, h);
  }
}

// ---------------------------------------------------------------------------
// Drawing results

async function predict(classifier: Classifier, image: Float32Array): Promise<Float32Array> {
  const p = tf.tidy(() => tf.softmax(classifier.logits(tf.tensor4d(image, [1, ...classifier.inputShape]))));
  try {
    return (await p.data()) as Float32Array;
  } finally {
    p.dispose();
  }
}

function argmax(a: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < a.length; i++) if (a[i] > a[best]) best = i;
  return best;
}

function showTop5(id: string, probabilities: Float32Array, label: number): void {
  const order = Array.from(probabilities.keys()).sort((a, b) => probabilities[b] - probabilities[a]).slice(0, 5);
  const table = $<HTMLTableElement>(id);
  for (const row of Array.from(table.rows)) row.remove();
  for (const k of order) {
    const row = table.insertRow();
    row.insertCell().textContent = k === label ? `${k} (label)` : String(k);
    row.insertCell().textContent = `${(probabilities[k] * 100).toFixed(1)}%`;
    const bar = row.insertCell();
    bar.className = 'bar';
    const span = document.createElement('span');
    span.style.width = `${Math.round(probabilities[k] * 100)}px`;
    bar.append(span);
  }
}

function showImage(id: string, image: Float32Array): void {
  const classifier = requireModel();
  const [h, w, c] = classifier.inputShape;
  drawGray($<HTMLCanvasElement>(id), image, h, w, c);
}

function drawGray(canvas: HTMLCanvasElement, image: Float32Array, h: number, w: number, c = 1): void {
  const small = new OffscreenCanvas(w, h);
  const data = new ImageData(w, h);
  for (let i = 0; i < h * w; i++) {
    for (let k = 0; k < 3; k++) data.data[4 * i + k] = Math.round(Math.min(1, Math.max(0, image[i * c + (c === 1 ? 0 : k)])) * 255);
    data.data[4 * i + 3] = 255;
  }
  small.getContext('2d')!.putImageData(data, 0, 0);
  const ctx = canvas.getContext('2d')!;
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(small, 0, 0, canvas.width, canvas.height);
}

// ---------------------------------------------------------------------------

function requireModel(): Classifier {
  if (!state.classifier) throw new Error('load a model first');
  return state.classifier;
}

/** Runs one action at a time; its error goes to the given status line. */
async function run(action: () => Promise<void>, statusId: string): Promise<void> {
  if (state.busy) return;
  state.busy = true;
  document.body.dataset.busy = 'true';
  try {
    await action();
  } catch (e) {
    setStatus(statusId, describeError(e), true);
  } finally {
    state.busy = false;
    delete document.body.dataset.busy;
  }
}

async function main(): Promise<void> {
  setupBackends();
  setupDrawing();
  setupAttacks();
  $('model-load').addEventListener('click', () => void run(loadModel, 'model-status'));
  $('clear').addEventListener('click', () => clearCanvas());
  $('test-image').addEventListener('click', () => void run(testImage, 'image-status'));
  $<HTMLInputElement>('image-file').addEventListener('change', (e) => {
    const file = (e.target as HTMLInputElement).files?.[0];
    if (file) void run(() => imageFile(file), 'image-status');
  });
  $('run').addEventListener('click', () => void run(attack, 'attack-status'));
  $('gen-sample').addEventListener('click', () => void run(samples, 'gen-status'));
  $('gen-walk').addEventListener('click', () => void run(walk, 'gen-status'));
  $('purify').addEventListener('click', () => void run(() => purify(false), 'purify-status'));
  $('purify-adv').addEventListener('click', () => void run(() => purify(true), 'purify-status'));
  $('eval-run').addEventListener('click', () => {
    try {
      evaluate();
    } catch (e) {
      setStatus('eval-status', describeError(e), true);
    }
  });
  await run(async () => {
    await startBackend('wasm');
    await loadModel();
  }, 'backend-status');
  document.body.dataset.ready = 'true';
}

void main();
