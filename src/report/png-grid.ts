/**
 * Image grids as PNG: a batch of NHWC float32 images in [0, 1] (1 or 3
 * channels) laid out in rows and columns, upscaled by an integer factor
 * (nearest neighbour), with a caption under each cell and an optional label at
 * the left of each row, written with a tiny built-in 3x5 bitmap font.
 */
import { encode } from 'fast-png';
import { InputError } from '../errors.js';

/** An RGB colour, 0..255 per channel. */
export type Rgb = readonly [number, number, number];

/** A caption: plain text, or text with its own colour. */
export type GridLabel = string | { text: string; color?: Rgb };

/** Layout of {@link renderGrid}. */
export interface GridOptions {
  /** [height, width, channels] of one image; channels 1 (gray) or 3 (RGB). */
  imageShape: readonly [number, number, number];
  /** Images per row (default: all images in one row). */
  columns?: number;
  /** Integer upscaling factor, nearest neighbour (default 1). */
  scale?: number;
  /** Pixels between cells and around the grid (default 2). */
  spacing?: number;
  /** One caption per image, drawn under it (omit, or leave entries undefined, for none). */
  labels?: readonly (GridLabel | undefined)[];
  /** One label per row, drawn in a margin at the left. */
  rowLabels?: readonly (string | undefined)[];
  /** Integer size of the font's pixels (default 1: glyphs are 3x5). */
  fontScale?: number;
  /** Background colour (default white). */
  background?: Rgb;
  /** Text colour (default black). */
  textColor?: Rgb;
}

/** An 8-bit RGBA raster, row-major. */
export interface RgbaImage {
  width: number;
  height: number;
  data: Uint8Array;
}

// ---------------------------------------------------------------------------
// The font: 3 pixels wide, 5 high. Each glyph is 5 octal digits, one per row
// from the top; in a digit, 4 is the left pixel, 2 the middle, 1 the right.

const GLYPHS: Record<string, string> = {
  '0': '75557', '1': '26227', '2': '71747', '3': '71717', '4': '55711',
  '5': '74717', '6': '74757', '7': '71111', '8': '75757', '9': '75717',
  A: '25755', B: '65656', C: '34443', D: '65556', E: '74647',
  F: '74644', G: '34553', H: '55755', I: '72227', J: '11152',
  K: '55655', L: '44447', M: '57755', N: '75555', O: '25552',
  P: '65644', Q: '25563', R: '65655', S: '34216', T: '72222',
  U: '55557', V: '55552', W: '55775', X: '55255', Y: '55222',
  Z: '71247',
  ' ': '00000', '-': '00700', '+': '02720', '=': '07070', '>': '42124',
  '<': '12421', '.': '00002', ',': '00024', ':': '02020', '/': '11244',
  '%': '51245', '(': '12221', ')': '42224', '[': '64446', ']': '31113',
  _: '00007', '?': '71202', '!': '22202', '*': '52725', '#': '57575',
  "'": '22000', '|': '22222',
};

/** Glyph size in font pixels, and the advance from one character to the next. */
export const FONT = { width: 3, height: 5, advance: 4 } as const;

/** Width in pixels of `text` at `fontScale` (no trailing gap). */
export function textWidth(text: string, fontScale = 1): number {
  return text.length ? (text.length * FONT.advance - 1) * fontScale : 0;
}

/**
 * Draws `text` with its top-left corner at (x, y), clipped to the image and to
 * `maxWidth` pixels. Lower-case letters are drawn as capitals; characters the
 * font lacks are drawn as '?'.
 */
export function drawText(img: RgbaImage, text: string, x: number, y: number, color: Rgb = [0, 0, 0], fontScale = 1, maxWidth = Infinity): void {
  const right = Math.min(img.width, x + maxWidth);
  let cx = x;
  for (const ch of text.toUpperCase()) {
    const glyph = GLYPHS[ch] ?? GLYPHS['?'];
    for (let row = 0; row < FONT.height; row++) {
      const bits = glyph.charCodeAt(row) - 48;
      for (let col = 0; col < FONT.width; col++) {
        if (!(bits & (4 >> col))) continue;
        fillRect(img, cx + col * fontScale, y + row * fontScale, fontScale, fontScale, color, right);
      }
    }
    cx += FONT.advance * fontScale;
    if (cx >= right) break;
  }
}

function fillRect(img: RgbaImage, x: number, y: number, w: number, h: number, color: Rgb, right = img.width): void {
  const x1 = Math.min(right, img.width, x + w);
  const y1 = Math.min(img.height, y + h);
  for (let yy = Math.max(0, y); yy < y1; yy++) {
    for (let xx = Math.max(0, x); xx < x1; xx++) {
      const o = (yy * img.width + xx) * 4;
      img.data[o] = color[0];
      img.data[o + 1] = color[1];
      img.data[o + 2] = color[2];
      img.data[o + 3] = 255;
    }
  }
}

// ---------------------------------------------------------------------------
// Grids

function positiveInt(value: number, argument: string): number {
  if (!Number.isInteger(value) || value < 1) throw new InputError(argument, `expected a positive integer, got ${value}`);
  return value;
}

/**
 * Lays out `images` (NHWC float32, values in [0, 1]; outside values are clipped,
 * NaN is drawn black) in a grid and returns the RGBA raster.
 *
 * Geometry (all in pixels, s = scale, p = spacing, F = 5 * fontScale):
 * the left margin is p, plus the widest row label and p when there are row
 * labels; cell (r, c) has its image's top-left corner at
 * (margin + c * (w*s + p), p + r * (h*s + band + p)), where band is F + 2 when
 * any caption is given (the caption starts 1 pixel below the image), else 0.
 */
export function renderGrid(images: Float32Array, options: GridOptions): RgbaImage {
  const [h, w, c] = options.imageShape;
  if (![h, w].every((d) => Number.isInteger(d) && d > 0)) throw new InputError('imageShape', `expected positive height and width, got [${options.imageShape.join(', ')}]`);
  if (c !== 1 && c !== 3) throw new InputError('imageShape', `expected 1 (gray) or 3 (RGB) channels, got ${c}`);
  const size = h * w * c;
  if (images.length === 0 || images.length % size !== 0) {
    throw new InputError('images', `expected a positive multiple of ${h} x ${w} x ${c} = ${size} values, got ${images.length}`);
  }
  const n = images.length / size;
  const columns = positiveInt(options.columns ?? n, 'columns');
  const s = positiveInt(options.scale ?? 1, 'scale');
  const fontScale = positiveInt(options.fontScale ?? 1, 'fontScale');
  const p = options.spacing ?? 2;
  if (!Number.isInteger(p) || p < 0) throw new InputError('spacing', `expected an integer >= 0, got ${p}`);
  const background = options.background ?? [255, 255, 255];
  const textColor = options.textColor ?? [0, 0, 0];
  const labels = options.labels ?? [];
  const rowLabels = options.rowLabels ?? [];
  const rows = Math.ceil(n / columns);

  const band = labels.some((l) => l !== undefined) ? FONT.height * fontScale + 2 : 0;
  const rowLabelWidth = Math.max(0, ...rowLabels.map((l) => textWidth(l ?? '', fontScale)));
  const left = p + (rowLabelWidth > 0 ? rowLabelWidth + p : 0);
  const cellW = w * s;
  const cellH = h * s + band;
  const width = left + columns * (cellW + p);
  const height = p + rows * (cellH + p);
  const img: RgbaImage = { width, height, data: new Uint8Array(width * height * 4) };
  fillRect(img, 0, 0, width, height, background);

  for (let i = 0; i < n; i++) {
    const x0 = left + (i % columns) * (cellW + p);
    const y0 = p + Math.floor(i / columns) * (cellH + p);
    const base = i * size;
    for (let y = 0; y < h * s; y++) {
      const sy = Math.floor(y / s);
      for (let x = 0; x < cellW; x++) {
        const k = base + (sy * w + Math.floor(x / s)) * c;
        const o = ((y0 + y) * width + x0 + x) * 4;
        img.data[o] = toByte(images[k]);
        img.data[o + 1] = toByte(images[k + (c === 3 ? 1 : 0)]);
        img.data[o + 2] = toByte(images[k + (c === 3 ? 2 : 0)]);
        img.data[o + 3] = 255;
      }
    }
    const label = labels[i];
    if (label !== undefined) {
      const text = typeof label === 'string' ? label : label.text;
      const color = typeof label === 'string' ? textColor : (label.color ?? textColor);
      drawText(img, text, x0, y0 + h * s + 1, color, fontScale, cellW);
    }
  }
  for (let r = 0; r < rows; r++) {
    const text = rowLabels[r];
    if (text) drawText(img, text, p, p + r * (cellH + p) + Math.max(0, Math.floor((h * s - FONT.height * fontScale) / 2)), textColor, fontScale, rowLabelWidth);
  }
  return img;
}

function toByte(v: number): number {
  return Number.isNaN(v) ? 0 : Math.round(Math.min(1, Math.max(0, v)) * 255);
}

/** Encodes an RGBA raster as an 8-bit RGB PNG (alpha dropped). */
export function encodePng(img: RgbaImage): Uint8Array {
  const n = img.width * img.height;
  const rgb = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    rgb[3 * i] = img.data[4 * i];
    rgb[3 * i + 1] = img.data[4 * i + 1];
    rgb[3 * i + 2] = img.data[4 * i + 2];
  }
  return encode({ width: img.width, height: img.height, data: rgb, channels: 3, depth: 8 });
}

/** {@link renderGrid} then {@link encodePng}: the PNG file's bytes. */
export function gridPng(images: Float32Array, options: GridOptions): Uint8Array {
  return encodePng(renderGrid(images, options));
}

/**
 * Perturbations as viewable images: delta = adversarial - clean mapped from
 * [-m, m] to [0, 1], so 0.5 (mid gray) means no change. `m` defaults to the
 * largest |delta| over all the images given (then the strongest change is
 * black or white); with no change at all every pixel is 0.5.
 */
export function perturbationImages(clean: Float32Array, adversarial: Float32Array, m?: number): { images: Float32Array; scale: number } {
  if (clean.length !== adversarial.length) throw new InputError('adversarial', `expected ${clean.length} values (as many as the clean images), got ${adversarial.length}`);
  let scale = m ?? 0;
  if (m === undefined) {
    for (let i = 0; i < clean.length; i++) {
      const d = Math.abs(adversarial[i] - clean[i]);
      if (d > scale) scale = d;
    }
  } else if (!(m > 0) || !Number.isFinite(m)) {
    throw new InputError('m', `expected a positive finite number, got ${m}`);
  }
  const images = new Float32Array(clean.length);
  for (let i = 0; i < clean.length; i++) images[i] = scale > 0 ? 0.5 + (adversarial[i] - clean[i]) / (2 * scale) : 0.5;
  return { images, scale };
}

/**
 * The three rows of an attack grid, stacked: `k` clean images, their
 * perturbations (see {@link perturbationImages}) and the adversarial images.
 * `scale` is the perturbation scale.
 */
export function attackRows(clean: Float32Array, adversarial: Float32Array, k: number): { images: Float32Array; scale: number } {
  const size = clean.length / k;
  const delta = perturbationImages(clean, adversarial);
  const images = new Float32Array(3 * k * size);
  images.set(clean, 0);
  images.set(delta.images, k * size);
  images.set(adversarial, 2 * k * size);
  return { images, scale: delta.scale };
}

/** Caption text of a class: its name when every name fits the bitmap font's captions (mnist's digits), else its index. */
export function captionName(classNames: readonly string[]): (label: number) => string {
  const short = classNames.every((n) => n.length <= 3);
  return (label) => (short && classNames[label] ? classNames[label] : String(label));
}
