import { existsSync } from 'node:fs';
import type { Dataset } from '../../data/types.js';
import { BUILTIN_DATASETS, isBuiltinDataset, loadBuiltinDataset } from './builtin.js';
import { loadDatasetFromPath } from './formats/index.js';
import { InputError } from '../../errors.js';

/**
 * Loads a dataset by built-in name (`mnist`, `fashion-mnist`) or from a path in
 * one of the supported file formats (IDX, CIFAR-10 binary, NPY, image folder).
 */
export function loadDataset(nameOrPath: string, argument = 'dataset'): Dataset {
  if (isBuiltinDataset(nameOrPath)) return loadBuiltinDataset(nameOrPath);
  if (!existsSync(nameOrPath)) {
    throw new InputError(
      argument,
      `"${nameOrPath}" is neither a built-in dataset (${BUILTIN_DATASETS.join(', ')}) nor an existing file or folder`,
    );
  }
  return loadDatasetFromPath(nameOrPath);
}
