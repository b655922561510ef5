/**
 * SHA-256 of plain data by its value, not by its serialized bytes.
 *
 * Job ids and model blob names must be the same for the same content in
 * every process: a resumed coordinator finds its jobs by them. `v8.serialize`
 * cannot give that: it writes a number as an int32 or as a double depending
 * on how V8 happens to hold it (`1` and `0.5 * 2` serialize differently), and
 * that depends on JIT timing. Here every number is hashed as its float64
 * bytes, object keys in sorted order, typed arrays as their type and bytes.
 */
import { createHash, type Hash } from 'node:crypto';

const TEXT = new TextEncoder();

function updateTagged(h: Hash, tag: string, bytes: Uint8Array): void {
  const len = new Uint8Array(new Float64Array([bytes.byteLength]).buffer);
  h.update(tag).update(len).update(bytes);
}

function walk(h: Hash, value: unknown, path: string): void {
  if (value === null) return void h.update('n');
  if (value === undefined) return void h.update('u');
  switch (typeof value) {
    case 'boolean':
      return void h.update(value ? 'T' : 'F');
    case 'number':
      // NaN has many bit patterns; every one is the same value.
      return void h.update('d').update(new Uint8Array(new Float64Array([Number.isNaN(value) ? NaN : value]).buffer));
    case 'bigint':
      return updateTagged(h, 'b', TEXT.encode(value.toString()));
    case 'string':
      return updateTagged(h, 's', TEXT.encode(value));
  }
  if (ArrayBuffer.isView(value)) {
    // By element type (a Node Buffer is a Uint8Array, and comes back as one).
    updateTagged(h, `v${Object.prototype.toString.call(value)}`, new Uint8Array(value.buffer, value.byteOffset, value.byteLength));
    return;
  }
  if (value instanceof ArrayBuffer || (typeof SharedArrayBuffer !== 'undefined' && value instanceof SharedArrayBuffer)) {
    updateTagged(h, 'B', new Uint8Array(value));
    return;
  }
  if (Array.isArray(value)) {
    updateTagged(h, 'a', new Uint8Array(0));
    h.update(new Uint8Array(new Float64Array([value.length]).buffer));
    value.forEach((v, i) => walk(h, v, `${path}[${i}]`));
    return;
  }
  if (typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    const keys = Object.keys(value).sort();
    h.update('o').update(new Uint8Array(new Float64Array([keys.length]).buffer));
    for (const k of keys) {
      updateTagged(h, 'k', TEXT.encode(k));
      walk(h, (value as Record<string, unknown>)[k], `${path}.${k}`);
    }
    return;
  }
  throw new TypeError(`cannot hash ${path || 'the value'}: ${Object.prototype.toString.call(value)} is not plain data`);
}

/**
 * The hex SHA-256 of `parts` (plain data: null, undefined, booleans, numbers,
 * bigints, strings, typed arrays, array buffers, arrays, plain objects), equal
 * for equal values whatever their in-memory representation.
 *
 * @throws TypeError naming the path of a value that is not plain data.
 */
export function canonicalHash(...parts: unknown[]): string {
  const h = createHash('sha256');
  walk(h, parts, '');
  return h.digest('hex');
}
