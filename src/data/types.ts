/** A set of images with integer labels, kept in plain typed arrays (tensors are made per batch). */
export interface ImageSet {
  /** float32, NHWC, row-major, values in [0, 1]. Length = count * H * W * C. */
  images: Float32Array;
  /** int32 class indices in [0, numClasses). */
  labels: Int32Array;
  /** Number of images. */
  count: number;
  /** [height, width, channels]. */
  imageShape: [number, number, number];
}

/** A dataset with its deterministic train/test split. */
export interface Dataset {
  /** `mnist`, `fashion-mnist`, or the path the user gave. */
  name: string;
  /** Where the data was read from (package folder or user path). */
  source: string;
  train: ImageSet;
  test: ImageSet;
  numClasses: number;
  /** Human-readable class names, index = label. */
  classNames: string[];
  /** Malformed records that were skipped (wrong length, non-finite or out-of-range values). */
  skipped: number;
}

/** Number of values in one image. */
export function imageSize(shape: readonly [number, number, number]): number {
  return shape[0] * shape[1] * shape[2];
}
