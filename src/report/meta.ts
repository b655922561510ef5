import { createRequire } from 'node:module';
import { tf } from '../engine/tf.js';
import type { BackendInfo } from '../engine/backend.js';

const require = createRequire(import.meta.url);

/** advlab's own version, from its package.json. */
export const ADVLAB_VERSION: string = (require('../../package.json') as { version: string }).version;

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
    nodeVersion: process.versions.node,
    backend: backend.name,
    threads: backend.threads,
    kernels: backend.kernels,
    seed,
    startedAt: startedAt.toISOString(),
    finishedAt: finishedAt.toISOString(),
  };
}
