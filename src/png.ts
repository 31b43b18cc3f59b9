/**
 * A small, strict PNG decoder to 8-bit grayscale, for feeding images to a classifier.
 *
 * Reads non-interlaced PNGs with bit depth 8 in colour types 0 (gray), 2 (RGB), 4 (gray +
 * alpha) and 6 (RGBA); colour is converted to gray with the Rec. 601 luma weights
 * (0.299 R + 0.587 G + 0.114 B, rounded) and alpha is composited over a background (default
 * 0, black: the MNIST convention of a light digit on a dark background). All five row filters
 * are supported. The zlib stream is inflated with the platform's
 * `DecompressionStream("deflate")`, so the module has no dependencies and runs in Deno,
 * browsers and edge runtimes.
 *
 * Everything is checked: the signature, every chunk's length and CRC-32, chunk order, the
 * IHDR fields, the zlib header and Adler-32 checksum (some runtimes accept truncated streams),
 * the exact decompressed size and each row's filter type. Malformed input throws a
 * {@linkcode PngError} (a `TypeError`) that says what is wrong; nothing hangs and memory is
 * bounded: dimensions are capped before anything is inflated, the compressed data is capped at
 * twice the raw size (plus 4 KiB), and inflation stops as soon as the output exceeds the exact
 * size the header implies, feeding the decompressor 1 KiB at a time so that even a
 * decompression bomb cannot produce more than about 1 MiB in one step.
 *
 * Not supported (rejected with a message): interlacing, palettes (colour type 3) and bit
 * depths other than 8. Ancillary chunks (gAMA, tRNS, tEXt, …) are checked and ignored.
 *
 * @example Decode a PNG
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodePng, PngError } from "./png.ts";
 *
 * // A 1×1 gray PNG with pixel value 200.
 * const png = Uint8Array.from(atob(
 *   "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR42mM4AQAAygDJNEIn8wAAAABJRU5ErkJggg==",
 * ), (c) => c.charCodeAt(0));
 * const image = await decodePng(png);
 * assert.deepEqual(image, { width: 1, height: 1, data: new Uint8Array([200]) });
 * await assert.rejects(decodePng(png.subarray(0, 40)), PngError);
 * ```
 *
 * @module
 */

/** The eight bytes every PNG file starts with. */
export const PNG_SIGNATURE: Uint8Array = new Uint8Array([137, 80, 78, 71, 13, 10, 26, 10]);

/** Default cap on width and on height. */
export const DEFAULT_MAX_DIMENSION = 8192;
/** Default cap on width × height (4 Mi pixels: at most 16 MiB of inflated RGBA data). */
export const DEFAULT_MAX_PIXELS = 4 * 1024 * 1024;

/** Bytes handed to the decompressor per write (bounds its output per step to ~1 MiB). */
const INFLATE_SLICE = 1024;

/** Malformed or unsupported PNG data. */
export class PngError extends TypeError {
  /**
   * Creates the error.
   *
   * @param message What is wrong with the PNG.
   */
  constructor(message: string) {
    super(message);
    this.name = "PngError";
  }
}

/** A decoded image: `width × height` 8-bit gray pixels, row-major. */
export interface GrayImage {
  /** Width in pixels. */
  width: number;
  /** Height in pixels. */
  height: number;
  /** The pixels, row-major, 0 = black. */
  data: Uint8Array;
}

/** The fields of a PNG's IHDR chunk. */
export interface PngHeader {
  /** Width in pixels. */
  width: number;
  /** Height in pixels. */
  height: number;
  /** Bits per sample. */
  bitDepth: number;
  /** 0 gray, 2 RGB, 3 palette, 4 gray + alpha, 6 RGBA. */
  colorType: number;
  /** 0 = none, 1 = Adam7. */
  interlace: number;
}

/** Options of {@linkcode decodePng}. */
export interface PngDecodeOptions {
  /** Largest accepted width and height (default 8192). */
  maxDimension?: number;
  /** Largest accepted width × height (default 4 Mi). */
  maxPixels?: number;
  /**
   * Require exactly this size; checked right after the header, before inflating, so that a
   * wrong-sized image costs nothing. `label` names the consumer in the message.
   */
  requireSize?: { width: number; height: number; label?: string };
  /** Gray level that transparent pixels are composited over, 0..255 (default 0, black). */
  background?: number;
}

const COLOR_NAMES: Record<number, string> = {
  0: "grayscale",
  2: "RGB",
  3: "palette",
  4: "grayscale + alpha",
  6: "RGBA",
};
const CHANNELS: Record<number, number> = { 0: 1, 2: 3, 4: 2, 6: 4 };
const VALID_DEPTHS: Record<number, number[]> = {
  0: [1, 2, 4, 8, 16],
  2: [8, 16],
  3: [1, 2, 4, 8],
  4: [8, 16],
  6: [8, 16],
};

let crcTable: Uint32Array | undefined;

/** CRC-32 (ISO-HDLC, as in PNG and zlib's crc32) of `bytes`. */
export function crc32(bytes: Uint8Array): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = crcTable[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** Adler-32 (zlib's trailer checksum) of `bytes`. */
export function adler32(bytes: Uint8Array): number {
  let a = 1, b = 0;
  for (let i = 0; i < bytes.length;) {
    const end = Math.min(i + 3800, bytes.length); // no overflow of b before the modulo
    for (; i < end; i++) {
      a += bytes[i];
      b += a;
    }
    a %= 65521;
    b %= 65521;
  }
  return ((b << 16) | a) >>> 0;
}

function u32(b: Uint8Array, p: number): number {
  return ((b[p] << 24) | (b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3]) >>> 0;
}

function chunkName(b: Uint8Array, p: number): string {
  let s = "";
  for (let i = 0; i < 4; i++) {
    const c = b[p + i];
    s += (c >= 65 && c <= 90) || (c >= 97 && c <= 122)
      ? String.fromCharCode(c)
      : `\\x${c.toString(16).padStart(2, "0")}`;
  }
  return s;
}

function checkLimit(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 1) {
    throw new RangeError(`decodePng: option ${name} must be a positive integer, got ${value}`);
  }
  return value;
}

function parseHeader(data: Uint8Array, p: number): PngHeader {
  const width = u32(data, p), height = u32(data, p + 4);
  const bitDepth = data[p + 8], colorType = data[p + 9];
  const compression = data[p + 10], filter = data[p + 11], interlace = data[p + 12];
  if (width === 0 || height === 0) {
    throw new PngError(`PNG header: zero width or height (${width}×${height})`);
  }
  if (width > 0x7fffffff || height > 0x7fffffff) {
    throw new PngError(`PNG header: width or height exceeds 2^31 − 1 (${width}×${height})`);
  }
  const depths = VALID_DEPTHS[colorType];
  if (!depths) throw new PngError(`PNG header: invalid colour type ${colorType}`);
  if (!depths.includes(bitDepth)) {
    throw new PngError(
      `PNG header: invalid bit depth ${bitDepth} for colour type ${colorType} (${
        COLOR_NAMES[colorType]
      })`,
    );
  }
  if (compression !== 0) {
    throw new PngError(`PNG header: unknown compression method ${compression} (must be 0)`);
  }
  if (filter !== 0) throw new PngError(`PNG header: unknown filter method ${filter} (must be 0)`);
  if (interlace > 1) {
    throw new PngError(`PNG header: unknown interlace method ${interlace} (must be 0 or 1)`);
  }
  return { width, height, bitDepth, colorType, interlace };
}

/**
 * Reads a PNG's signature and IHDR chunk (with its CRC) without decoding the image.
 *
 * @param data The file's bytes.
 * @returns The header fields, including ones {@linkcode decodePng} does not support.
 *
 * @example Read the size of a PNG
 * ```ts
 * import assert from "node:assert/strict";
 * import { readPngHeader } from "./png.ts";
 *
 * const png = Uint8Array.from(atob(
 *   "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR42mM4AQAAygDJNEIn8wAAAABJRU5ErkJggg==",
 * ), (c) => c.charCodeAt(0));
 * assert.deepEqual(readPngHeader(png), {
 *   width: 1, height: 1, bitDepth: 8, colorType: 0, interlace: 0,
 * });
 * ```
 */
export function readPngHeader(data: Uint8Array): PngHeader {
  if (!(data instanceof Uint8Array)) {
    throw new TypeError(`PNG data must be a Uint8Array, got ${describe(data)}`);
  }
  if (data.length < 8 || PNG_SIGNATURE.some((b, i) => data[i] !== b)) {
    throw new PngError(
      data.length === 0 ? "not a PNG: the data is empty" : "not a PNG: bad signature",
    );
  }
  if (data.length < 8 + 12 + 13) {
    throw new PngError(`PNG is truncated: ${data.length} bytes, too short for a header`);
  }
  const length = u32(data, 8), type = chunkName(data, 12);
  if (type !== "IHDR") throw new PngError(`PNG: first chunk is ${type}, not IHDR`);
  if (length !== 13) throw new PngError(`PNG: IHDR chunk has length ${length} (must be 13)`);
  if (crc32(data.subarray(12, 12 + 4 + 13)) !== u32(data, 12 + 4 + 13)) {
    throw new PngError("PNG: CRC mismatch in chunk IHDR at offset 8");
  }
  return parseHeader(data, 16);
}

function describe(x: unknown): string {
  if (x === null) return "null";
  if (typeof x !== "object") return typeof x;
  return (x as object).constructor?.name ?? "object";
}

/**
 * Decodes a PNG into 8-bit grayscale.
 *
 * @param data The file's bytes.
 * @param options Size limits, a required size, the background for transparency.
 * @returns The image; throws a {@linkcode PngError} naming the problem for malformed or
 *   unsupported data, and a `RangeError` for invalid options.
 *
 * @example Limits are checked before anything is inflated
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodePng } from "./png.ts";
 *
 * const png = Uint8Array.from(atob(
 *   "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR42mM4AQAAygDJNEIn8wAAAABJRU5ErkJggg==",
 * ), (c) => c.charCodeAt(0));
 * await assert.rejects(
 *   decodePng(png, { requireSize: { width: 28, height: 28, label: "the classifier" } }),
 *   /PNG is 1×1 pixels; the classifier takes 28×28/,
 * );
 * ```
 */
export async function decodePng(
  data: Uint8Array,
  options: PngDecodeOptions = {},
): Promise<GrayImage> {
  const maxDimension = checkLimit("maxDimension", options.maxDimension, DEFAULT_MAX_DIMENSION);
  const maxPixels = checkLimit("maxPixels", options.maxPixels, DEFAULT_MAX_PIXELS);
  const background = options.background ?? 0;
  if (!Number.isInteger(background) || background < 0 || background > 255) {
    throw new RangeError(`decodePng: option background must be an integer 0..255`);
  }
  const header = readPngHeader(data);
  const { width, height, bitDepth, colorType, interlace } = header;
  const req = options.requireSize;
  if (req && (width !== req.width || height !== req.height)) {
    throw new PngError(
      `PNG is ${width}×${height} pixels; ${
        req.label ?? "the consumer"
      } takes ${req.width}×${req.height}`,
    );
  }
  if (width > maxDimension || height > maxDimension || width * height > maxPixels) {
    throw new PngError(
      `PNG is ${width}×${height} pixels, over the limit (at most ${maxDimension} per side and ` +
        `${maxPixels} pixels)`,
    );
  }
  if (interlace !== 0) throw new PngError("interlaced (Adam7) PNGs are not supported");
  if (colorType === 3) throw new PngError("palette PNGs (colour type 3) are not supported");
  if (bitDepth !== 8) {
    throw new PngError(
      `${bitDepth}-bit PNGs are not supported (only bit depth 8; this one is ${
        COLOR_NAMES[colorType]
      })`,
    );
  }
  const channels = CHANNELS[colorType];
  const stride = width * channels;
  const rawSize = height * (1 + stride);
  const maxCompressed = 2 * rawSize + 4096;

  // Walk the chunks after IHDR.
  const idat: Uint8Array[] = [];
  let idatBytes = 0, idatDone = false, sawPlte = false, sawIend = false;
  let p = 8 + 25;
  while (p < data.length) {
    if (data.length - p < 12) {
      throw new PngError(`PNG is truncated: ${data.length - p} stray bytes at offset ${p}`);
    }
    const length = u32(data, p);
    const type = chunkName(data, p + 4);
    if (length > 0x7fffffff) {
      throw new PngError(`PNG: chunk ${type} at offset ${p} has invalid length ${length}`);
    }
    if (length > data.length - p - 12) {
      throw new PngError(
        `PNG is truncated: chunk ${type} at offset ${p} has length ${length} but only ` +
          `${Math.max(0, data.length - p - 12)} bytes follow`,
      );
    }
    if (!/^[A-Za-z]{4}$/.test(type)) {
      throw new PngError(`PNG: invalid chunk type ${type} at offset ${p}`);
    }
    const body = data.subarray(p + 8, p + 8 + length);
    if (crc32(data.subarray(p + 4, p + 8 + length)) !== u32(data, p + 8 + length)) {
      throw new PngError(`PNG: CRC mismatch in chunk ${type} at offset ${p}`);
    }
    if (type !== "IDAT" && idat.length > 0) idatDone = true;
    switch (type) {
      case "IHDR":
        throw new PngError(`PNG: second IHDR chunk at offset ${p}`);
      case "PLTE":
        if (sawPlte) throw new PngError(`PNG: second PLTE chunk at offset ${p}`);
        if (idat.length) throw new PngError("PNG: PLTE chunk after the image data");
        if (length === 0 || length % 3 !== 0 || length > 768) {
          throw new PngError(`PNG: PLTE chunk has invalid length ${length}`);
        }
        sawPlte = true; // only a suggested palette for the colour types supported here
        break;
      case "IDAT":
        if (idatDone) throw new PngError(`PNG: IDAT chunks are not consecutive (offset ${p})`);
        idatBytes += length;
        if (idatBytes > maxCompressed) {
          throw new PngError(
            `PNG: compressed image data exceeds ${maxCompressed} bytes, more than a ` +
              `${width}×${height} ${COLOR_NAMES[colorType]} image can need`,
          );
        }
        idat.push(body);
        break;
      case "IEND":
        if (length !== 0) throw new PngError(`PNG: IEND chunk has length ${length} (must be 0)`);
        sawIend = true;
        break;
      default:
        if (!(data[p + 4] & 0x20)) {
          throw new PngError(`PNG: unsupported critical chunk ${type} at offset ${p}`);
        }
    }
    p += 12 + length;
    if (sawIend) break;
  }
  if (idat.length === 0) throw new PngError("PNG has no image data (IDAT chunk)");
  if (!sawIend) throw new PngError("PNG is truncated: no IEND chunk");
  if (p !== data.length) {
    throw new PngError(`PNG: ${data.length - p} bytes of unexpected data after IEND`);
  }

  const raw = await inflateImageData(idat, idatBytes, rawSize);
  return { width, height, data: unfilterToGray(raw, width, height, channels, background) };
}

/** Byte `k` of the concatenated parts. */
function byteAt(parts: Uint8Array[], k: number): number {
  for (const part of parts) {
    if (k < part.length) return part[k];
    k -= part.length;
  }
  return 0;
}

/** Inflates the zlib stream split over `parts` into exactly `size` bytes. */
async function inflateImageData(
  parts: Uint8Array[],
  total: number,
  size: number,
): Promise<Uint8Array> {
  if (total < 6) throw new PngError(`PNG image data is truncated: ${total} bytes of zlib data`);
  const cmf = byteAt(parts, 0), flg = byteAt(parts, 1);
  if ((cmf & 0x0f) !== 8 || cmf >> 4 > 7 || ((cmf << 8) | flg) % 31 !== 0) {
    throw new PngError("PNG image data is not a zlib deflate stream (bad zlib header)");
  }
  if (flg & 0x20) throw new PngError("PNG image data uses a zlib preset dictionary");
  const expectedAdler = ((byteAt(parts, total - 4) << 24) | (byteAt(parts, total - 3) << 16) |
    (byteAt(parts, total - 2) << 8) | byteAt(parts, total - 1)) >>> 0;

  const out = new Uint8Array(size);
  let n = 0;
  const ds = new DecompressionStream("deflate");
  const writer = ds.writable.getWriter();
  const reader = ds.readable.getReader();
  let stopped = false;
  const feeding = (async () => {
    for (const part of parts) {
      for (let o = 0; o < part.length; o += INFLATE_SLICE) {
        if (stopped) return;
        await writer.write(part.slice(o, o + INFLATE_SLICE)); // a copy: the input may be shared
      }
    }
    await writer.close();
  })();
  feeding.catch(() => {}); // a failure also errors the readable side, handled below
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (value.length > size - n) {
        throw new PngError(
          `PNG image data inflates to more than the ${size} bytes its header implies`,
        );
      }
      out.set(value, n);
      n += value.length;
    }
  } catch (e) {
    stopped = true;
    await reader.cancel().catch(() => {});
    if (e instanceof PngError) throw e;
    throw new PngError(
      `PNG image data is corrupt (zlib: ${e instanceof Error ? e.message : String(e)})`,
    );
  }
  await feeding.catch(() => {});
  if (n < size) {
    throw new PngError(
      `PNG image data is truncated: inflates to ${n} bytes, the header implies ${size}`,
    );
  }
  if (adler32(out) !== expectedAdler) {
    throw new PngError("PNG image data is corrupt or truncated (zlib Adler-32 mismatch)");
  }
  return out;
}

/** Reverses the row filters in place and converts to gray. */
function unfilterToGray(
  raw: Uint8Array,
  width: number,
  height: number,
  channels: number,
  background: number,
): Uint8Array {
  const stride = width * channels, bpp = channels;
  const gray = new Uint8Array(width * height);
  for (let y = 0; y < height; y++) {
    const at = y * (stride + 1), row = at + 1, prev = row - (stride + 1); // prev valid if y > 0
    const filter = raw[at];
    switch (filter) {
      case 0:
        break;
      case 1:
        for (let i = bpp; i < stride; i++) raw[row + i] = (raw[row + i] + raw[row + i - bpp]) & 255;
        break;
      case 2:
        if (y > 0) {
          for (let i = 0; i < stride; i++) raw[row + i] = (raw[row + i] + raw[prev + i]) & 255;
        }
        break;
      case 3:
        for (let i = 0; i < stride; i++) {
          const a = i >= bpp ? raw[row + i - bpp] : 0, b = y > 0 ? raw[prev + i] : 0;
          raw[row + i] = (raw[row + i] + ((a + b) >> 1)) & 255;
        }
        break;
      case 4:
        for (let i = 0; i < stride; i++) {
          const a = i >= bpp ? raw[row + i - bpp] : 0;
          const b = y > 0 ? raw[prev + i] : 0;
          const c = i >= bpp && y > 0 ? raw[prev + i - bpp] : 0;
          const pa = Math.abs(b - c), pb = Math.abs(a - c), pc = Math.abs(a + b - 2 * c);
          const pred = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
          raw[row + i] = (raw[row + i] + pred) & 255;
        }
        break;
      default:
        throw new PngError(`PNG row ${y} has invalid filter type ${filter} (must be 0..4)`);
    }
    const o = y * width;
    switch (channels) {
      case 1:
        gray.set(raw.subarray(row, row + stride), o);
        break;
      case 2:
        for (let x = 0; x < width; x++) {
          gray[o + x] = over(raw[row + 2 * x], raw[row + 2 * x + 1], background);
        }
        break;
      case 3:
        for (let x = 0; x < width; x++) {
          const q = row + 3 * x;
          gray[o + x] = luma(raw[q], raw[q + 1], raw[q + 2]);
        }
        break;
      default:
        for (let x = 0; x < width; x++) {
          const q = row + 4 * x;
          gray[o + x] = over(luma(raw[q], raw[q + 1], raw[q + 2]), raw[q + 3], background);
        }
    }
  }
  return gray;
}

/** Rec. 601 luma, rounded: (299 R + 587 G + 114 B) / 1000. */
export function luma(r: number, g: number, b: number): number {
  return Math.floor((299 * r + 587 * g + 114 * b + 500) / 1000);
}

/** `value` with opacity `alpha` (0..255) over `background`, rounded. */
function over(value: number, alpha: number, background: number): number {
  return Math.floor((value * alpha + background * (255 - alpha) + 127) / 255);
}
