/**
 * Loader for the CIFAR-10 "binary version" (A. Krizhevsky, "The CIFAR-10 dataset",
 * https://www.cs.toronto.edu/~kriz/cifar.html, section "Binary version"):
 * each batch file is a sequence of 3073-byte records, 1 label byte (0..9) then
 * 3072 pixel bytes: the 1024 red, then 1024 green, then 1024 blue values of a
 * 32x32 image, each plane row-major (i.e. CHW). advlab stores HWC, so planes are
 * interleaved on load.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { FileFormatError } from '../../../errors.js';
import { splitByClass } from '../../../data/split.js';
import type { Dataset, ImageSet } from '../../../data/types.js';
import { datasetFromPath } from '../from-path.js';

/** The standard CIFAR-10 class names, index = label (as in batches.meta.txt). */
export const CIFAR10_CLASSES: readonly string[] = [
  'airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck',
];

const SIDE = 32;
const PLANE = SIDE * SIDE;
const PIXELS = 3 * PLANE;
/** Bytes per record: 1 label + 3072 pixels. */
export const CIFAR10_RECORD_BYTES = 1 + PIXELS;
const NUM_CLASSES = 10;

/** Name of the folder inside the official `cifar-10-binary.tar.gz`. */
const SUBFOLDER = 'cifar-10-batches-bin';
const TRAIN_FILES = [1, 2, 3, 4, 5].map((i) => `data_batch_${i}.bin`);
const TEST_FILE = 'test_batch.bin';

/**
 * Reads one CIFAR-10 binary batch into HWC images [32, 32, 3] in [0, 1].
 * @throws FileFormatError if the length is not a multiple of 3073 or a label is not 0..9.
 */
export function readCifarBatch(path: string): ImageSet {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new FileFormatError(path, (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : `cannot be read (${(e as Error).message})`);
  }
  if (bytes.length === 0 || bytes.length % CIFAR10_RECORD_BYTES !== 0) {
    throw new FileFormatError(
      path,
      `length ${bytes.length} is not a positive multiple of ${CIFAR10_RECORD_BYTES} (1 label byte + 3072 pixel bytes per CIFAR-10 record); the file is truncated or not CIFAR-10`,
    );
  }
  const count = bytes.length / CIFAR10_RECORD_BYTES;
  const images = new Float32Array(count * PIXELS);
  const labels = new Int32Array(count);
  for (let r = 0; r < count; r++) {
    const off = r * CIFAR10_RECORD_BYTES;
    const label = bytes[off];
    if (label >= NUM_CLASSES) {
      throw new FileFormatError(path, `record ${r} has label ${label}, outside 0..9; not a CIFAR-10 batch (CIFAR-100 is not supported)`);
    }
    labels[r] = label;
    const out = r * PIXELS;
    for (let p = 0; p < PLANE; p++) {
      for (let c = 0; c < 3; c++) images[out + p * 3 + c] = bytes[off + 1 + c * PLANE + p] / 255;
    }
  }
  return { images, labels, count, imageShape: [SIDE, SIDE, 3] };
}

/**
 * Loads a CIFAR-10 binary folder: `data_batch_1.bin` … `data_batch_5.bin` (train,
 * whichever are present) and `test_batch.bin` (test), directly in `dir` or in
 * `dir/cifar-10-batches-bin`. If only train batches or only the test batch exist,
 * they are split with {@link splitByClass}. Class names come from
 * `batches.meta.txt` if present, else {@link CIFAR10_CLASSES}.
 */
export function loadCifarFolder(dir: string): Dataset {
  const root = cifarRoot(dir);
  if (!root) {
    throw new FileFormatError(dir, `no CIFAR-10 binary batches (${TRAIN_FILES.join(', ')}, ${TEST_FILE}) here or in ${SUBFOLDER}/`);
  }
  const trainFiles = TRAIN_FILES.filter((f) => isFile(join(root, f)));
  const hasTest = isFile(join(root, TEST_FILE));
  let train: ImageSet;
  let test: ImageSet;
  if (trainFiles.length > 0 && hasTest) {
    train = concat(trainFiles.map((f) => readCifarBatch(join(root, f))));
    test = readCifarBatch(join(root, TEST_FILE));
  } else {
    const files = hasTest ? [TEST_FILE] : trainFiles;
    ({ train, test } = splitByClass(concat(files.map((f) => readCifarBatch(join(root, f)))), NUM_CLASSES));
  }
  return datasetFromPath(dir, train, test, NUM_CLASSES, 0, readClassNames(root));
}

/** The folder holding the batches (`dir` or its cifar-10-batches-bin), or undefined. */
export function cifarRoot(dir: string): string | undefined {
  const hasBatches = (d: string): boolean => [...TRAIN_FILES, TEST_FILE].some((f) => isFile(join(d, f)));
  if (hasBatches(dir)) return dir;
  const sub = join(dir, SUBFOLDER);
  return hasBatches(sub) ? sub : undefined;
}

/** Class names from batches.meta.txt (one per line, blank lines ignored). */
function readClassNames(root: string): string[] {
  const meta = join(root, 'batches.meta.txt');
  if (!existsSync(meta)) return [...CIFAR10_CLASSES];
  const names = readFileSync(meta, 'utf8')
    .split(/\r?\n/)
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  if (names.length !== NUM_CLASSES) {
    throw new FileFormatError(meta, `expected ${NUM_CLASSES} class names (one per line), found ${names.length}`);
  }
  return names;
}

/** Concatenates batches (all 32x32x3), without copying a lone batch. */
function concat(sets: ImageSet[]): ImageSet {
  if (sets.length === 1) return sets[0];
  const count = sets.reduce((a, s) => a + s.count, 0);
  const images = new Float32Array(count * PIXELS);
  const labels = new Int32Array(count);
  let k = 0;
  for (const s of sets) {
    images.set(s.images, k * PIXELS);
    labels.set(s.labels, k);
    k += s.count;
  }
  return { images, labels, count, imageShape: [SIDE, SIDE, 3] };
}

function isFile(path: string): boolean {
  return existsSync(path) && statSync(path).isFile();
}
