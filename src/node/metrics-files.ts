/** The GAN metrics' Node parts: the metric classifier read from a folder, the FID floor cached in a file. */
import { existsSync, readFileSync } from 'node:fs';
import type { Dataset } from '../data/types.js';
import { openMetrics, type FidFloorCache, type MetricsContext } from '../generative/gan/gan-metrics.js';
import { loadClassifierModel } from './model-files.js';
import { writeJsonAtomic } from './atomic.js';

/** {@link openMetrics} on the classifier saved at `path`. */
export async function openMetricsAt(path: string, data: Dataset, realSamples: number, argument = 'realSamples'): Promise<MetricsContext> {
  return openMetrics(await loadClassifierModel(path), path, data, realSamples, argument);
}

/** A {@link FidFloorCache} in a JSON file (a corrupt or stale file is recomputed and replaced). */
export function fidFloorFile(file: string): FidFloorCache {
  return {
    get(key) {
      if (!existsSync(file)) return undefined;
      try {
        const cached = JSON.parse(readFileSync(file, 'utf8')) as { key: unknown; fidFloor: unknown };
        return cached.key === key && typeof cached.fidFloor === 'number' ? cached.fidFloor : undefined;
      } catch {
        return undefined;
      }
    },
    set(key, fid) {
      writeJsonAtomic(file, { key, fidFloor: fid });
    },
  };
}
