/**
 * PNG and JPEG bytes to 8-bit RGBA, on any platform (pure JavaScript:
 * fast-png and jpeg-js), for image folders in Node and dropped files in a page.
 */
import { decode as decodePngFile, type DecodedPng } from 'fast-png';
import { decode as decodeJpeg } from 'jpeg-js';
import { FileFormatError } from '../errors.js';

/** A decoded image as 8-bit RGBA. */
export interface Rgba {
  width: number;
  height: number;
  data: Uint8Array;
}

/**
 * Decodes a PNG or JPEG file, chosen by its magic bytes (not its name), to
 * 8-bit RGBA: gray, gray+alpha, palette, RGB and RGBA PNGs of any bit depth.
 *
 * @param file what errors call the image.
 * @throws FileFormatError when the bytes are neither, or do not decode.
 */
export function decodeImage(bytes: Uint8Array, file: string): Rgba {
  const isPng = bytes.length >= 8 && bytes[0] === 0x89 && bytes[1] === 0x50 && bytes[2] === 0x4e && bytes[3] === 0x47;
  const isJpeg = bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff;
  try {
    if (isPng) return pngToRgba(decodePngFile(bytes));
    if (isJpeg) {
      const jpg = decodeJpeg(bytes, { useTArray: true, formatAsRGBA: true });
      return { width: jpg.width, height: jpg.height, data: jpg.data };
    }
  } catch (e) {
    throw new FileFormatError(file, `could not be decoded as ${isPng ? 'PNG' : 'JPEG'} (${(e as Error).message})`);
  }
  throw new FileFormatError(file, 'is not a PNG or JPEG file (unrecognised magic bytes)');
}

/** fast-png keeps the file's layout (bit depth, channels, palette indices); expand it to 8-bit RGBA. */
function pngToRgba(png: DecodedPng): Rgba {
  const { width, height, depth, channels, palette } = png;
  const samples = sampleReader(png);
  const out = new Uint8Array(width * height * 4);
  const max = 2 ** depth - 1;
  const to8 = (v: number) => (depth === 8 ? v : Math.round((v * 255) / max));
  for (let y = 0, o = 0; y < height; y++) {
    for (let x = 0; x < width; x++, o += 4) {
      const s = (c: number) => samples(y, x * channels + c);
      if (palette) {
        const entry = palette[s(0)] ?? [0, 0, 0];
        out[o] = entry[0];
        out[o + 1] = entry[1];
        out[o + 2] = entry[2];
        out[o + 3] = entry.length > 3 ? (entry as number[])[3] : 255;
      } else if (channels <= 2) {
        out[o] = out[o + 1] = out[o + 2] = to8(s(0));
        out[o + 3] = channels === 2 ? to8(s(1)) : 255;
      } else {
        out[o] = to8(s(0));
        out[o + 1] = to8(s(1));
        out[o + 2] = to8(s(2));
        out[o + 3] = channels === 4 ? to8(s(3)) : 255;
      }
    }
  }
  return { width, height, data: out };
}

/** Sample `i` of row `y`: rows below 8 bits are packed, each starting on a byte. */
function sampleReader(png: DecodedPng): (y: number, i: number) => number {
  const { width, depth, channels, data } = png;
  if (depth >= 8) {
    const rowLength = width * channels;
    return (y, i) => data[y * rowLength + i];
  }
  const rowBytes = Math.ceil((width * channels * depth) / 8);
  const perByte = 8 / depth;
  const mask = 2 ** depth - 1;
  return (y, i) => (data[y * rowBytes + Math.floor(i / perByte)] >> (8 - depth * (1 + (i % perByte)))) & mask;
}
