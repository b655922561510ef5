import { resolve as resolvePath } from 'node:path';
import type { Dataset, ImageSet } from '../../data/types.js';

/**
 * A Dataset read from a user path: `name` is the path as given, `source` its
 * absolute form; classes without names are called "0".."K-1".
 */
export function datasetFromPath(
  path: string,
  train: ImageSet,
  test: ImageSet,
  numClasses: number,
  skipped = 0,
  classNames: readonly string[] = [],
): Dataset {
  return {
    name: path,
    source: resolvePath(path),
    train,
    test,
    numClasses,
    classNames: Array.from({ length: numClasses }, (_, i) => classNames[i] ?? String(i)),
    skipped,
  };
}
