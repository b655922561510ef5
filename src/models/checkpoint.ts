/**
 * Where the trainers (classifier, GAN, AAE) keep the checkpoint that lets a
 * killed run resume bit for bit. The platform supplies it: Node's
 * `CheckpointFolder` (src/node) writes a folder, a page could keep it in
 * IndexedDB. A store keeps the latest checkpoint and replaces it atomically:
 * a kill at any moment leaves the previous one readable.
 */
export interface CheckpointStore {
  /** What messages call the store (e.g. its folder). */
  readonly location: string;
  /** Writes checkpoint `tag` with the given files and JSON-able state, then makes it the latest. */
  save(tag: string, state: unknown, files: Record<string, Uint8Array | string>): Promise<void>;
  /** The latest checkpoint, or undefined when there is none. */
  load<S>(): Promise<LoadedCheckpoint<S> | undefined>;
}

/** A checkpoint read back from a {@link CheckpointStore}. */
export interface LoadedCheckpoint<S> {
  tag: string;
  state: S;
  /** A file of the checkpoint; throws FileFormatError when it is missing. */
  read(name: string): Uint8Array;
  /** What messages call that file (e.g. its path). */
  name(file: string): string;
}
