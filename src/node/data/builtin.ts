import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { Dataset, ImageSet } from '../../data/types.js';
import { splitByClass } from '../../data/split.js';
import { FileFormatError } from '../../errors.js';

const require = createRequire(import.meta.url);

/** The datasets that ship inside npm packages. */
export const BUILTIN_DATASETS = ['mnist', 'fashion-mnist'] as const;
export type BuiltinDatasetName = (typeof BUILTIN_DATASETS)[number];

interface BuiltinSpec {
  pkg: string;
  folder: string;
  /** Largest raw pixel value: the packages store [0,1] (mnist) and 0..255 (fashion-mnist). */
  maxValue: number;
  classNames: string[];
}

const SPECS: Record<BuiltinDatasetName, BuiltinSpec> = {
  mnist: { pkg: 'mnist', folder: 'src/digits', maxValue: 1, classNames: ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'] },
  'fashion-mnist': {
    pkg: 'fashion-mnist',
    folder: 'src/clothes',
    maxValue: 255,
    classNames: ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'],
  },
};

const SIDE = 28;
const PIXELS = SIDE * SIDE;

/** True if `name` is a built-in dataset. */
export function isBuiltinDataset(name: string): name is BuiltinDatasetName {
  return (BUILTIN_DATASETS as readonly string[]).includes(name);
}

/**
 * Loads a built-in dataset from its installed npm package (no network), validates
 * every record (784 finite values in the package's range; malformed ones are
 * skipped and counted) and applies advlab's deterministic per-class split.
 */
export function loadBuiltinDataset(name: BuiltinDatasetName): Dataset {
  const spec = SPECS[name];
  const root = join(dirname(require.resolve(`${spec.pkg}/package.json`)), spec.folder);
  const perClass: Float32Array[] = [];
  let skipped = 0;
  for (let c = 0; c < 10; c++) {
    const file = join(root, `${c}.json`);
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(file, 'utf8'));
    } catch (e) {
      throw new FileFormatError(file, `cannot read the ${name} package's class file (${(e as Error).message}); reinstall with npm ci`);
    }
    const { images, skipped: bad } = parseRecords((parsed as { data?: unknown }).data, spec.maxValue, file);
    perClass.push(images);
    skipped += bad;
  }
  const count = perClass.reduce((s, a) => s + a.length / PIXELS, 0);
  const all: ImageSet = { images: new Float32Array(count * PIXELS), labels: new Int32Array(count), count, imageShape: [SIDE, SIDE, 1] };
  let offset = 0;
  perClass.forEach((imgs, c) => {
    all.images.set(imgs, offset * PIXELS);
    all.labels.fill(c, offset, offset + imgs.length / PIXELS);
    offset += imgs.length / PIXELS;
  });
  const { train, test } = splitByClass(all, 10);
  return { name, source: root, train, test, numClasses: 10, classNames: spec.classNames, skipped };
}

/**
 * The packages store either one flat array of n*784 values (mnist) or an array of
 * 784-value records (fashion-mnist). Returns the valid records scaled to [0,1].
 */
function parseRecords(data: unknown, maxValue: number, file: string): { images: Float32Array; skipped: number } {
  if (!Array.isArray(data)) throw new FileFormatError(file, 'expected a "data" array');
  const records: ArrayLike<unknown>[] = [];
  let skipped = 0;
  if (data.length > 0 && typeof data[0] === 'number') {
    const whole = Math.floor(data.length / PIXELS);
    for (let r = 0; r < whole; r++) records.push(data.slice(r * PIXELS, (r + 1) * PIXELS));
    if (data.length % PIXELS !== 0) skipped++;
  } else {
    for (const r of data) records.push(Array.isArray(r) ? r : []);
  }
  const out = new Float32Array(records.length * PIXELS);
  let n = 0;
  for (const rec of records) {
    if (!isValidRecord(rec, maxValue)) {
      skipped++;
      continue;
    }
    const base = n * PIXELS;
    for (let i = 0; i < PIXELS; i++) out[base + i] = (rec[i] as number) / maxValue;
    n++;
  }
  return { images: out.slice(0, n * PIXELS), skipped };
}

function isValidRecord(rec: ArrayLike<unknown>, maxValue: number): boolean {
  if (rec.length !== PIXELS) return false;
  for (let i = 0; i < PIXELS; i++) {
    const v = rec[i];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > maxValue) return false;
  }
  return true;
}

/** Exposed for tests: record validation on synthetic data. */
export const _parseRecordsForTest = parseRecords;
