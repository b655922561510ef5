import { InvalidArgumentError, Option } from 'commander';
import { InputError } from '../errors.js';
import { initBackend } from '../node/backend.js';
import { parseBackendName, type BackendInfo } from '../engine/backend.js';
import type { KernelMode } from '../engine/kernels/index.js';

/** Parses a non-negative integer option. */
export function intOption(name: string, min = 0) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`${name} expects an integer >= ${min}, got "${value}"`);
    return n;
  };
}

/** Parses a positive finite number option. */
export function positiveOption(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${name} expects a positive number, got "${value}"`);
    return n;
  };
}

/** Parses a finite number option. */
export function finiteOption(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError(`${name} expects a number, got "${value}"`);
    return n;
  };
}

/** Parses comma-separated numbers. */
export function listOption(name: string) {
  return (value: string): number[] => {
    const parts = value.split(',').map((s) => s.trim());
    const numbers = parts.map(Number);
    if (parts.some((s) => s === '') || numbers.some((v) => !Number.isFinite(v))) throw new InvalidArgumentError(`${name} expects comma-separated numbers, got "${value}"`);
    return numbers;
  };
}

/** Parses `--bounds min,max`. */
export function boundsOption(value: string): [number, number] {
  const b = listOption('--bounds')(value);
  if (b.length !== 2 || !(b[0] < b[1])) throw new InvalidArgumentError(`--bounds expects min,max with min < max, got "${value}"`);
  return [b[0], b[1]];
}

/** Parses `--workers`: a positive integer or `auto`. */
export function workersOption(value: string): number | 'auto' {
  if (value === 'auto') return 'auto';
  return intOption('--workers', 1)(value);
}

/** Starts the backend named by --backend (or ADVLAB_BACKEND) and says which one runs. */
export async function startBackend(backend: string | undefined, kernels: KernelMode | undefined, log: (line: string) => void): Promise<BackendInfo> {
  const info = await initBackend({ backend: parseBackendName(backend ?? 'auto', '--backend'), kernels });
  const kernelNote = info.name === 'wasm' ? `, ${info.kernels} kernels` : '';
  log(`backend: ${info.name} (${info.threads} thread${info.threads === 1 ? '' : 's'}${kernelNote})`);
  return info;
}

/** The last part of a name or path (`runs/cnn/` -> `cnn`), for default output folder names. */
export function pathTag(value: string, fallback: string): string {
  return value.split(/[\\/]/).filter(Boolean).pop() ?? fallback;
}

/**
 * A catch handler that rethrows a library InputError under the command-line
 * option that set the argument (`map`: argument name → option), so the user
 * reads `--lr: ...` rather than `learningRate: ...`; other errors pass through.
 */
export function optionNamed(map: Record<string, string>) {
  return (e: unknown): never => {
    if (e instanceof InputError && map[e.argument]) throw new InputError(map[e.argument], e.message.slice(e.argument.length + 2));
    throw e;
  };
}

/** `--backend <name>`, shared by every command that computes. */
export function backendOption(): Option {
  return new Option('--backend <name>', 'auto, node, wasm or cpu; auto honours env ADVLAB_BACKEND').default('auto');
}

/** `--queue <url>`, shared by the commands whose batches can run on queue workers (`advlab attack`, `advlab eval`). */
export function queueOption(): Option {
  return new Option('--queue <url>', 'distribute batches as jobs on a BullMQ queue in Redis (redis://host:6379) to `advlab worker` processes on any machine; results are identical to a local run');
}

/** The line saying where a distributed run's jobs go. */
export function queueLine(q: { url: string; runId: string; reattached: boolean }): string {
  return `queue: ${q.url}, run ${q.runId}${q.reattached ? ' (reattached: finished jobs are collected, not redone)' : ''}`;
}

/** `--resume`, shared by the commands that checkpoint every epoch. */
export function resumeOption(): Option {
  return new Option('--resume', 'continue from the last checkpoint in <out>/checkpoint').default(false);
}
