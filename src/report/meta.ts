import { tf } from '../engine/tf.js';
import type { BackendInfo } from '../engine/backend.js';
import { ADVLAB_VERSION } from '../version.js';

export { ADVLAB_VERSION };

/** The fields every result.json starts with (see CONVENTIONS: command, versions, backend, seed, times). */
export interface RunMeta {
  command: string;
  advlabVersion: string;
  tfjsVersion: string;
  nodeVersion: string;
  backend: string;
  threads: number;
  kernels: string;
  seed: number;
  startedAt: string;
  finishedAt: string;
}

/** Builds the common header of a result file. */
export function runMeta(command: string, backend: BackendInfo, seed: number, startedAt: Date, finishedAt = new Date()): RunMeta {
  return {
    command,
    advlabVersion: ADVLAB_VERSION,
    tfjsVersion: tf.version_core,
    nodeVersion: nodeVersion(),
    backend: backend.name,
    threads: backend.threads,
    kernels: backend.kernels,
    seed,
    startedAt: startedAt.toISOString(),
    finishedAt: finishedAt.toISOString(),
  };
}

/** Node's version, or `none` where the run is not in Node (a page). */
function nodeVersion(): string {
  return (globalThis as { process?: { versions?: { node?: string } } }).process?.versions?.node ?? 'none';
}
