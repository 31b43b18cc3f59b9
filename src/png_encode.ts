/**
 * A small PNG encoder (8-bit gray, RGB or RGBA; non-interlaced; filter type 0 on every row;
 * zlib by `node:zlib`), the counterpart of the decoder in `png.ts`, and nearest-neighbour
 * upscaling, for the pixel images of the rendering commands.
 *
 * @example Encode and decode a 2×1 gray image
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodePng } from "./png_encode.ts";
 * import { decodePng } from "./png.ts";
 *
 * const png = encodePng({ width: 2, height: 1, channels: 1, data: new Uint8Array([0, 255]) });
 * assert.deepEqual((await decodePng(png)).data, new Uint8Array([0, 255]));
 * ```
 *
 * @module
 */
import { deflateSync } from "node:zlib";
import { crc32, PNG_SIGNATURE } from "./png.ts";

/** An image to encode: `width × height` pixels of `channels` bytes each, row-major. */
export interface RawImage {
  /** Width in pixels, ≥ 1. */
  width: number;
  /** Height in pixels, ≥ 1. */
  height: number;
  /** Bytes per pixel: 1 gray, 3 RGB, 4 RGBA. */
  channels: 1 | 3 | 4;
  /** The pixels, `width × height × channels` bytes. */
  data: Uint8Array;
}

const COLOR_TYPE: Record<number, number> = { 1: 0, 3: 2, 4: 6 };
/** Largest width or height written (PNG allows 2^31 − 1; this keeps buffers sane). */
const MAX_SIDE = 1 << 15;

function checkImage(image: RawImage, what: string): void {
  const { width, height, channels, data } = image;
  for (const [name, v] of [["width", width], ["height", height]] as const) {
    if (!Number.isInteger(v) || v < 1 || v > MAX_SIDE) {
      throw new RangeError(`Cannot ${what}: ${name} ${v} is not an integer in 1..${MAX_SIDE}`);
    }
  }
  if (!(channels in COLOR_TYPE)) {
    throw new RangeError(`Cannot ${what}: ${channels} channels (expected 1, 3 or 4)`);
  }
  if (!(data instanceof Uint8Array) || data.length !== width * height * channels) {
    throw new RangeError(
      `Cannot ${what}: ${data?.length} bytes of pixels (expected ${width} × ${height} × ` +
        `${channels} = ${width * height * channels})`,
    );
  }
}

function chunk(type: string, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + body.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, body.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(body, 8);
  view.setUint32(8 + body.length, crc32(out.subarray(4, 8 + body.length)));
  return out;
}

/**
 * Encodes an image as a PNG file.
 *
 * @param image Pixels and their shape.
 * @returns The PNG file's bytes: signature, IHDR, one IDAT, IEND.
 * @throws {RangeError} A size that is not an integer in 1..32768, a channel count other than
 *   1, 3 or 4, or a pixel buffer of the wrong length.
 *
 * @example An RGB pixel decodes to its luma
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodePng } from "./png_encode.ts";
 * import { decodePng, luma } from "./png.ts";
 *
 * const png = encodePng({ width: 1, height: 1, channels: 3, data: new Uint8Array([200, 40, 10]) });
 * assert.equal((await decodePng(png)).data[0], luma(200, 40, 10));
 * assert.throws(() => encodePng({ width: 2, height: 1, channels: 1, data: new Uint8Array(1) }), RangeError);
 * ```
 */
export function encodePng(image: RawImage): Uint8Array {
  checkImage(image, "encode PNG");
  const { width, height, channels, data } = image;
  const rowBytes = width * channels;
  const raw = new Uint8Array(height * (rowBytes + 1)); // each row: filter byte 0, then pixels
  for (let y = 0; y < height; y++) {
    raw.set(data.subarray(y * rowBytes, (y + 1) * rowBytes), y * (rowBytes + 1) + 1);
  }
  const ihdr = new Uint8Array(13);
  const view = new DataView(ihdr.buffer);
  view.setUint32(0, width);
  view.setUint32(4, height);
  ihdr[8] = 8; // bit depth
  ihdr[9] = COLOR_TYPE[channels];
  // compression 0, filter method 0, interlace 0
  const parts = [
    PNG_SIGNATURE,
    chunk("IHDR", ihdr),
    chunk("IDAT", new Uint8Array(deflateSync(raw))),
    chunk("IEND", new Uint8Array(0)),
  ];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/**
 * Scales an image up by an integer factor, each pixel becoming a `factor × factor` block
 * (so that an embedded image stays sharp in any viewer, which need not honour
 * `image-rendering`).
 *
 * @param image The image.
 * @param factor Integer ≥ 1.
 * @returns A new image `factor` times as wide and as high.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { upscale } from "./png_encode.ts";
 *
 * const big = upscale({ width: 2, height: 1, channels: 1, data: new Uint8Array([1, 2]) }, 2);
 * assert.deepEqual([...big.data], [1, 1, 2, 2, 1, 1, 2, 2]);
 * ```
 */
export function upscale(image: RawImage, factor: number): RawImage {
  checkImage(image, "upscale image");
  if (!Number.isInteger(factor) || factor < 1) {
    throw new RangeError(`Cannot upscale image: factor ${factor} is not an integer ≥ 1`);
  }
  const { width, height, channels, data } = image;
  const W = width * factor, H = height * factor;
  const out = new Uint8Array(W * H * channels);
  const rowBytes = W * channels;
  for (let y = 0; y < height; y++) {
    const row = out.subarray(y * factor * rowBytes, (y * factor + 1) * rowBytes);
    for (let x = 0; x < width; x++) {
      const src = data.subarray((y * width + x) * channels, (y * width + x + 1) * channels);
      for (let k = 0; k < factor; k++) row.set(src, (x * factor + k) * channels);
    }
    for (let k = 1; k < factor; k++) {
      out.copyWithin(
        (y * factor + k) * rowBytes,
        y * factor * rowBytes,
        (y * factor + 1) * rowBytes,
      );
    }
  }
  return { width: W, height: H, channels, data: out };
}
