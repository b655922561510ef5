/**
 * Window geometry shared by advlab's wasm convolution and pooling kernels:
 * tfjs's conv/pool info computed from a kernel's attrs, reduced to the spatial
 * sizes, strides, dilations and leading padding the kernels index with (NHWC).
 */
import { tf } from '../../tf.js';
import { explicitPad } from './util.js';

/** A kernel's attrs, as the kernel functions read them. */
export type Attrs = Record<string, unknown>;

/** Where a 2-D convolution's or pool's windows lie on its input (NHWC). */
interface WindowGeometry {
  /** Input height and width. */
  H: number;
  W: number;
  /** Output height and width (for a convolution's gradient, dy's). */
  OH: number;
  OW: number;
  /** Window height and width: a convolution's filter size (undilated), a pool's window size. */
  KH: number;
  KW: number;
  /** Strides. */
  sh: number;
  sw: number;
  /** Padding on top and on the left. */
  pt: number;
  pl: number;
}

/** Spatial geometry of a 2-D convolution's gradient (channels and batch are the kernel's own). */
export interface ConvGeometry extends WindowGeometry {
  /** Dilations. */
  dh: number;
  dw: number;
}

/**
 * The geometry of a (depthwise if `depthwise`) convolution from its gradient
 * kernel's attrs (`strides`, `dilations`, `pad`, `dimRoundingMode`). Sizes are
 * read from the given shapes: OHxOW is dy's, not recomputed from the attrs.
 */
export function convGeometry(
  shapes: { input: number[]; filter: number[]; dy: number[] },
  attrs: Attrs,
  depthwise: boolean,
): ConvGeometry {
  const info = tf.backend_util.computeConv2DInfo(
    shapes.input as [number, number, number, number],
    shapes.filter as [number, number, number, number],
    attrs.strides as [number, number] | number,
    // Absent from tfjs's own Conv2D gradient, which never passes dilations; direct callers may.
    (attrs.dilations as [number, number] | number | undefined) ?? 1,
    attrs.pad as 'valid' | 'same' | number | tf.backend_util.ExplicitPadding,
    attrs.dimRoundingMode as 'floor' | 'round' | 'ceil' | undefined,
    depthwise,
    'channelsLast',
  );
  return {
    H: shapes.input[1],
    W: shapes.input[2],
    OH: shapes.dy[1],
    OW: shapes.dy[2],
    KH: shapes.filter[0],
    KW: shapes.filter[1],
    sh: info.strideHeight,
    sw: info.strideWidth,
    dh: info.dilationHeight,
    dw: info.dilationWidth,
    pt: info.padInfo.top,
    pl: info.padInfo.left,
  };
}

/** Shapes and window of a 2-D pool. */
export interface PoolGeometry extends WindowGeometry {
  /** Batch size and channels. */
  N: number;
  C: number;
}

/** The geometry of a pool from its gradient kernel's attrs (`filterSize`, `strides`, `pad`, `dimRoundingMode`). */
export function poolGeometry(inShape: number[], attrs: Attrs): PoolGeometry {
  const info = tf.backend_util.computePool2DInfo(
    inShape as [number, number, number, number],
    attrs.filterSize as [number, number] | number,
    attrs.strides as [number, number] | number,
    1,
    attrs.pad as 'valid' | 'same' | number | tf.backend_util.ExplicitPadding,
    attrs.dimRoundingMode as 'floor' | 'round' | 'ceil' | undefined,
  );
  const [N, H, W, C] = inShape;
  return {
    N,
    H,
    W,
    C,
    OH: info.outHeight,
    OW: info.outWidth,
    KH: info.effectiveFilterHeight,
    KW: info.effectiveFilterWidth,
    sh: info.strideHeight,
    sw: info.strideWidth,
    pt: info.padInfo.top,
    pl: info.padInfo.left,
  };
}

/**
 * Padding for computing an input gradient as a unit-stride correlation of dy
 * (LHxLW, after any zero insertion for stride > 1) with the filter rotated 180
 * degrees: (k-1)*d - p before, and after whatever makes the output HxW
 * (Dumoulin & Visin 2016, "A guide to convolution arithmetic for deep
 * learning", sec. 4.3-4.7). XNNPACK pads virtually and only by non-negative
 * amounts, so a negative padding (explicit padding wider than the dilated
 * filter) is padded as 0 and cropped from the output instead: `cropTop` and
 * `cropLeft` rows/columns before, and whatever exceeds HxW after.
 */
export function fullCorrelationPadding(
  g: ConvGeometry,
  LH: number,
  LW: number,
): { pad: tf.backend_util.ExplicitPadding; cropTop: number; cropLeft: number } {
  const { H, W, KH, KW, dh, dw, pt, pl } = g;
  const padTop = (KH - 1) * dh - pt;
  const padLeft = (KW - 1) * dw - pl;
  const padBottom = H + pt - LH;
  const padRight = W + pl - LW;
  return {
    pad: explicitPad(Math.max(padTop, 0), Math.max(padBottom, 0), Math.max(padLeft, 0), Math.max(padRight, 0)),
    cropTop: Math.max(-padTop, 0),
    cropLeft: Math.max(-padLeft, 0),
  };
}
