/**
 * Loader for the common "one sub-folder per class" layout (as used by Keras
 * `image_dataset_from_directory` and torchvision `ImageFolder`):
 *
 *     dir/cat/001.png
 *     dir/cat/002.jpg
 *     dir/dog/001.png
 *
 * Class names are the sorted sub-folder names and labels their indices.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { FileFormatError } from '../../../errors.js';
import { splitByClass } from '../../../data/split.js';
import type { Dataset, ImageSet } from '../../../data/types.js';
import { datasetFromPath } from '../from-path.js';
import { decodeImage, type Rgba } from '../../../data/decode-image.js';

/** File names the loader picks up (others, e.g. .DS_Store or README, are ignored). */
export const IMAGE_FILE = /\.(png|jpe?g)$/i;

/**
 * Loads a folder with one sub-folder per class holding PNG and JPEG files.
 * Files are read in name order within each class; all images must have the same
 * size; the result has 1 channel if every image is grayscale (R = G = B at every
 * pixel), else 3 (alpha is dropped). Split with {@link splitByClass}.
 * @throws FileFormatError naming the folder or file at fault.
 */
export function loadImageFolder(dir: string): Dataset {
  const classes = classFolders(dir);
  if (classes.length === 0) throw new FileFormatError(dir, 'no class sub-folders (expected one sub-folder of PNG/JPEG images per class)');
  const decoded: Rgba[] = [];
  const labelList: number[] = [];
  let first: { file: string; width: number; height: number } | undefined;
  let gray = true;
  for (let label = 0; label < classes.length; label++) {
    const folder = join(dir, classes[label]);
    const files = readdirSync(folder)
      .filter((f) => IMAGE_FILE.test(f) && !f.startsWith('.') && statSync(join(folder, f)).isFile())
      .sort();
    if (files.length === 0) throw new FileFormatError(folder, 'class folder has no PNG or JPEG images');
    for (const f of files) {
      const file = join(folder, f);
      const img = decodeImage(readFileSync(file), file);
      if (!first) first = { file, width: img.width, height: img.height };
      else if (img.width !== first.width || img.height !== first.height) {
        throw new FileFormatError(
          file,
          `is ${img.width}x${img.height} but ${first.file} is ${first.width}x${first.height}; all images must have the same size`,
        );
      }
      if (gray) gray = isGray(img.data);
      decoded.push(img);
      labelList.push(label);
    }
  }
  const { width, height } = first!;
  const channels = gray ? 1 : 3;
  const size = width * height * channels;
  const images = new Float32Array(decoded.length * size);
  decoded.forEach((img, i) => {
    const out = i * size;
    for (let p = 0; p < width * height; p++) {
      for (let c = 0; c < channels; c++) images[out + p * channels + c] = img.data[4 * p + c] / 255;
    }
  });
  const all: ImageSet = { images, labels: Int32Array.from(labelList), count: decoded.length, imageShape: [height, width, channels] };
  // Same "at least 2" rule as the other loaders, so a one-class folder still gives a valid model head.
  const numClasses = Math.max(2, classes.length);
  const { train, test } = splitByClass(all, numClasses);
  return datasetFromPath(dir, train, test, numClasses, 0, classes);
}

/** Sorted names of the visible sub-folders of `dir`. Sorted by code unit, so the order does not depend on the locale. */
export function classFolders(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (e) {
    throw new FileFormatError(dir, (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such folder' : `cannot list folder (${(e as Error).message})`);
  }
  return names.filter((n) => !n.startsWith('.') && statSync(join(dir, n)).isDirectory()).sort();
}

/** True if R = G = B at every pixel. */
function isGray(rgba: Uint8Array): boolean {
  for (let i = 0; i < rgba.length; i += 4) {
    if (rgba[i] !== rgba[i + 1] || rgba[i] !== rgba[i + 2]) return false;
  }
  return true;
}
