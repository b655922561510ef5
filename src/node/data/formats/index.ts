/**
 * Loading users' own data: detects which standard layout a path holds and hands
 * it to that format's loader.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { FileFormatError } from '../../../errors.js';
import type { Dataset } from '../../../data/types.js';
import { cifarRoot, loadCifarFolder } from './cifar.js';
import { classFolders, IMAGE_FILE, loadImageFolder } from './image-folder.js';
import { loadIdxFile, loadIdxFolder } from './idx.js';
import { loadNpyFile, loadNpyFolder } from './npy.js';

export { readIdx, loadIdxFolder, loadIdxFile, type IdxArray } from './idx.js';
export { readCifarBatch, loadCifarFolder, CIFAR10_CLASSES } from './cifar.js';
export { readNpy, decodeNpy, encodeNpy, writeNpy, loadNpyFolder, loadNpyFile, type NpyArray, type NpyDtype, type NpyData } from './npy.js';
export { loadImageFolder } from './image-folder.js';

/** The layouts {@link detectFormat} recognises. */
export type DatasetFormat = 'npy' | 'idx' | 'cifar10' | 'image-folder' | 'npy-file' | 'idx-file';

/** Shown when nothing matches, so the user can see how to arrange their files. */
export const SUPPORTED_LAYOUTS = [
  'Supported layouts:',
  '  - NumPy folder: x_train.npy + y_train.npy (+ optional x_test.npy + y_test.npy), or images.npy + labels.npy;',
  '    images [N,H,W] or [N,H,W,C] as uint8 (0..255) or float (0..1), labels [N] or one-hot [N,K]',
  '  - IDX folder (MNIST-style, optionally .gz): train-images-idx3-ubyte, train-labels-idx1-ubyte,',
  '    t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, or a single *images*idx3* + *labels*idx1* pair',
  '  - CIFAR-10 binary folder: data_batch_1.bin … data_batch_5.bin and/or test_batch.bin',
  '    (directly or in cifar-10-batches-bin/), optional batches.meta.txt',
  '  - image folder: one sub-folder per class holding PNG/JPEG files of one size',
  '  - a single images file: x_<name>.npy or *images*.npy (labels in y_<name>.npy / *labels*.npy next to it),',
  '    or an IDX *images*idx3* file (labels in the matching *labels*idx1* file)',
].join('\n');

/**
 * Which layout `path` holds. Folders are checked in this order: NumPy, IDX,
 * CIFAR-10, image folder (the first match wins).
 * @throws FileFormatError if the path is missing or matches no supported layout.
 */
export function detectFormat(path: string): DatasetFormat {
  if (!existsSync(path)) throw new FileFormatError(path, 'no such file or folder');
  const stat = statSync(path);
  if (stat.isFile()) {
    const name = basename(path);
    if (/\.npy$/i.test(name)) return 'npy-file';
    if (/idx\d/i.test(name) || /-ubyte(\.gz)?$/i.test(name)) return 'idx-file';
    throw new FileFormatError(path, `is not a dataset file advlab can read.\n${SUPPORTED_LAYOUTS}`);
  }
  const files = readdirSync(path).filter((f) => statSync(join(path, f)).isFile());
  if (files.includes('x_train.npy') || files.includes('images.npy')) return 'npy';
  if (files.some((f) => /idx3/i.test(f))) return 'idx';
  if (cifarRoot(path)) return 'cifar10';
  const hasImageFolders = classFolders(path).some((d) =>
    readdirSync(join(path, d)).some((f) => IMAGE_FILE.test(f) && !f.startsWith('.')),
  );
  if (hasImageFolders) return 'image-folder';
  throw new FileFormatError(path, `no dataset found in this folder.\n${SUPPORTED_LAYOUTS}`);
}

/**
 * Loads a dataset from a folder (or a single .npy / IDX images file) in any of the
 * supported layouts (see {@link SUPPORTED_LAYOUTS}). `Dataset.name` is `path` as
 * given and `Dataset.source` its absolute form.
 * @throws FileFormatError for a missing path, an unrecognised layout, or a malformed file.
 */
export function loadDatasetFromPath(path: string): Dataset {
  switch (detectFormat(path)) {
    case 'npy':
      return loadNpyFolder(path);
    case 'idx':
      return loadIdxFolder(path);
    case 'cifar10':
      return loadCifarFolder(path);
    case 'image-folder':
      return loadImageFolder(path);
    case 'npy-file':
      return loadNpyFile(path);
    case 'idx-file':
      return loadIdxFile(path);
  }
}
