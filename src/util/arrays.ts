/** Typed arrays that {@link concatArrays} joins. */
type Joinable = Float32Array | Int32Array | Uint8Array;

/** Joins typed arrays of one kind end to end into a new array of that kind. */
export function concatArrays<T extends Joinable>(parts: readonly T[], Kind: { new (length: number): T }): T {
  const out = new Kind(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}
