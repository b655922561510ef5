/**
 * Rearranged copies of a model's weights (a dense kernel transposed, a
 * convolution filter rotated), kept for as long as the weight's data lives.
 *
 * Why: the input gradient of a dense or convolutional layer multiplies by a
 * rearranged weight, and XNNPACK packs an operator's weights once per tensor
 * id. A fresh rearranged copy on every call costs the copy and a repacking
 * (for a 9216x128 dense kernel, tens of milliseconds, whatever the batch);
 * one kept copy per weight makes every attack step after the first reuse both.
 *
 * Only the current data of a registered variable (a model's weights) is kept:
 * tfjs never changes the data behind a data id (assigning a variable gives it
 * new data), so a copy stays valid until that data is freed, and copies whose
 * source is gone are freed at the next lookup. Other operands (activations)
 * change every call and get a throwaway copy.
 */
import { tf } from '../../tf.js';
import { release, type WasmBackend } from './util.js';

/** A rearranged operand, and whether the caller must release it. */
export interface Derived {
  info: tf.TensorInfo;
  owned: boolean;
}

const cache = new Map<string, Map<tf.DataId, tf.TensorInfo>>();

/**
 * The copy of `source` that `make` rearranges, named `kind` (e.g. `transpose`):
 * cached when `source` is a variable's data, else made for this call only.
 */
export function derivedWeight(backend: WasmBackend, source: tf.TensorInfo, kind: string, make: () => tf.TensorInfo): Derived {
  sweep(backend);
  if (!isVariableData(source.dataId)) return { info: make(), owned: true };
  let byKind = cache.get(kind);
  if (!byKind) cache.set(kind, (byKind = new Map()));
  let info = byKind.get(source.dataId);
  if (!info) byKind.set(source.dataId, (info = make()));
  return { info, owned: false };
}

/** Variable data met once per kind, with no copy made yet (see {@link firstSighting}). */
const sightings = new Map<string, Set<tf.DataId>>();

/**
 * True the first time `source` (a variable's current data) is met for `kind`:
 * the caller then computes without a kept copy (one use per weight version,
 * as in training, never pays for one). Later calls return false, so
 * {@link derivedWeight} makes and keeps the copy for the reuses (an attack's
 * steps). Not a variable's data: false.
 */
export function firstSighting(backend: WasmBackend, source: tf.TensorInfo, kind: string): boolean {
  sweep(backend);
  if (!isVariableData(source.dataId) || cache.get(kind)?.has(source.dataId)) return false;
  let seen = sightings.get(kind);
  if (!seen) sightings.set(kind, (seen = new Set()));
  if (seen.has(source.dataId)) return false;
  seen.add(source.dataId);
  return true;
}

/** Frees every kept copy (tests, or a caller that wants the memory back now). */
export function clearDerivedWeights(backend: WasmBackend): void {
  for (const byKind of cache.values()) for (const info of byKind.values()) release(backend, info);
  cache.clear();
  sightings.clear();
}

/** Frees the copies whose source data was disposed, and forgets the sightings of such data. */
function sweep(backend: WasmBackend): void {
  for (const seen of sightings.values()) for (const id of seen) if (!backend.dataIdMap.has(id)) seen.delete(id);
  for (const byKind of cache.values()) {
    for (const [dataId, info] of byKind) {
      if (backend.dataIdMap.has(dataId)) continue;
      release(backend, info);
      byKind.delete(dataId);
    }
  }
}

/** Whether `source` is a model weight whose rearranged copy is kept across calls (so rearranging it costs nothing after the first call). */
export function keepsCopy(source: tf.TensorInfo): boolean {
  return isVariableData(source.dataId);
}

function isVariableData(dataId: tf.DataId): boolean {
  const variables = tf.engine().state.registeredVariables;
  for (const name in variables) if (variables[name].dataId === dataId) return true;
  return false;
}
