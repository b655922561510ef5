/**
 * Models and data in a page: a TF.js model from a URL or from dropped files
 * (`model.json` and its weight files), read through the core's checked
 * artifacts (models/artifacts.ts), so a broken file fails with its name and
 * the problem, as in Node; and NPY arrays fetched from the site.
 */
import { artifactsFromModelJson, classifierModelFromArtifacts, MODEL_JSON, type ClassifierModel } from '../models/artifacts.js';
import { decodeNpy, type NpyArray } from '../data/npy.js';
import type { ImageSet } from '../data/types.js';
import { FileFormatError } from '../errors.js';

/** The weight file names a `model.json` lists (before any is fetched). */
function manifestPaths(text: string): string[] {
  try {
    const json = JSON.parse(text) as { weightsManifest?: { paths?: unknown }[] };
    return (json.weightsManifest ?? []).flatMap((g) => (Array.isArray(g.paths) ? g.paths.filter((p): p is string => typeof p === 'string') : []));
  } catch {
    return []; // artifactsFromModelJson reports the invalid JSON with its file name
  }
}

/** Fetches a URL's bytes; a failed response is an error naming the URL. */
async function fetchBytes(url: string): Promise<Uint8Array> {
  const response = await fetch(url);
  if (!response.ok) throw new FileFormatError(url, `could not be fetched (HTTP ${response.status})`);
  return new Uint8Array(await response.arrayBuffer());
}

/** Loads the model at `url` (its `model.json`), weight files relative to it. Dispose it when done. */
export async function loadModelFromUrl(url: string): Promise<ClassifierModel> {
  const jsonUrl = new URL(url, globalThis.location?.href).href;
  const text = new TextDecoder().decode(await fetchBytes(jsonUrl));
  const shards = new Map<string, Uint8Array>();
  for (const p of manifestPaths(text)) {
    const shardUrl = new URL(p, jsonUrl).href;
    // Only files beside model.json: artifactsFromModelJson refuses other paths before reading.
    if (!shardUrl.startsWith(new URL('.', jsonUrl).href)) continue;
    const bytes = await fetchBytes(shardUrl).catch(() => null); // a missing shard is reported below, by name
    if (bytes) shards.set(p, bytes);
  }
  const artifacts = artifactsFromModelJson(jsonUrl, text, { name: (p) => new URL(p, jsonUrl).href, read: (p) => shards.get(p) ?? null });
  return classifierModelFromArtifacts(artifacts, jsonUrl);
}

/** Loads a model from dropped or chosen files: one `model.json` and the weight files it lists, by name. */
export async function loadModelFromFiles(files: readonly File[]): Promise<ClassifierModel> {
  const json = files.find((f) => f.name === MODEL_JSON) ?? files.find((f) => f.name.endsWith('.json'));
  if (!json) throw new FileFormatError('(dropped files)', `no ${MODEL_JSON} among ${files.map((f) => f.name).join(', ') || 'no files'}`);
  const text = await json.text();
  const byName = new Map(files.map((f) => [f.name, f]));
  const shards = new Map<string, Uint8Array>();
  for (const p of manifestPaths(text)) {
    const file = byName.get(p.split('/').pop() ?? p);
    if (file) shards.set(p, new Uint8Array(await file.arrayBuffer()));
  }
  const artifacts = artifactsFromModelJson(json.name, text, { name: (p) => p, read: (p) => shards.get(p) ?? null });
  return classifierModelFromArtifacts(artifacts, json.name);
}

/** Fetches and decodes a `.npy` file of the site. */
export async function fetchNpy(url: string): Promise<NpyArray> {
  return decodeNpy(await fetchBytes(url), url);
}

/**
 * Fetches an image set stored as two `.npy` files: the images as integers
 * (`|u1` or `<u2`) that `scale` divides into [0, 1] (255 for 8-bit pixels;
 * the shipped mnist digits are thousandths, 1000), and the labels.
 */
export async function fetchImageSet(imagesUrl: string, labelsUrl: string, scale: number): Promise<ImageSet> {
  const [x, y] = await Promise.all([fetchNpy(imagesUrl), fetchNpy(labelsUrl)]);
  if (x.dtype !== '|u1' && x.dtype !== '<u2') throw new FileFormatError(imagesUrl, `expected integer pixels (|u1 or <u2), got ${x.dtype}`);
  if (x.shape.length !== 4) throw new FileFormatError(imagesUrl, `expected shape [n, h, w, c], got [${x.shape.join(', ')}]`);
  if (y.shape.length !== 1 || y.shape[0] !== x.shape[0]) throw new FileFormatError(labelsUrl, `expected ${x.shape[0]} labels, got shape [${y.shape.join(', ')}]`);
  return {
    images: Float32Array.from(x.data as Uint8Array | Uint16Array, (k) => k / scale),
    labels: Int32Array.from(y.data as ArrayLike<number>),
    count: x.shape[0],
    imageShape: [x.shape[1], x.shape[2], x.shape[3]],
  };
}
