/**
 * Reader for IDX files, the format of the MNIST and Fashion-MNIST data sets.
 *
 * An IDX file is a big-endian header followed by raw data: a magic number
 * `0x0000TTNN` (two zero bytes, a type code `TT`, here always `0x08` for
 * unsigned bytes, and the number of dimensions `NN`), one u32 per dimension,
 * then the product of the dimensions in bytes. Files may be gzip-compressed;
 * compression is detected from the gzip magic bytes `1f 8b`.
 *
 * This module is generic: it checks that a file is well formed, not that its
 * shape suits a particular data set (see `datasets.ts` for that).
 *
 * @module
 */

/**
 * Magic number of an IDX file of u8 images: 3 dimensions (count, rows, cols).
 *
 * @example The first four bytes of an images file
 * ```ts
 * import assert from "node:assert/strict";
 * import { IDX_IMAGES_MAGIC } from "./idx.ts";
 *
 * assert.equal(new DataView(new Uint8Array([0, 0, 8, 3]).buffer).getUint32(0), IDX_IMAGES_MAGIC);
 * ```
 */
export const IDX_IMAGES_MAGIC = 0x00000803;
/**
 * Magic number of an IDX file of u8 labels: 1 dimension (count).
 *
 * @example The first four bytes of a labels file
 * ```ts
 * import assert from "node:assert/strict";
 * import { IDX_LABELS_MAGIC } from "./idx.ts";
 *
 * assert.equal(new DataView(new Uint8Array([0, 0, 8, 1]).buffer).getUint32(0), IDX_LABELS_MAGIC);
 * ```
 */
export const IDX_LABELS_MAGIC = 0x00000801;

/** What an IDX file holds: `"images"` (3 dimensions) or `"labels"` (1 dimension). */
export type IdxKind = "images" | "labels";

/** A decoded IDX file. */
export interface Idx {
  /** `"images"` for magic 0x00000803, `"labels"` for magic 0x00000801. */
  kind: IdxKind;
  /** The dimensions from the header: `[count, rows, cols]` for images, `[count]` for labels. */
  dims: number[];
  /** The data bytes, row-major; a view into the decoded buffer, not a copy. */
  data: Uint8Array;
}

/** A decoded IDX file together with where it came from. */
export interface IdxFile {
  /** The path the file was read from. */
  path: string;
  /** Whether the file on disk was gzip-compressed. */
  gzipped: boolean;
  /** The decompressed bytes of the file, header included. */
  bytes: Uint8Array;
  /** The decoded header and data; `idx.data` is a view into `bytes`. */
  idx: Idx;
}

/**
 * Tells whether bytes start with the gzip magic bytes `1f 8b`.
 *
 * @param bytes The file contents.
 * @returns `true` if `bytes` look gzip-compressed.
 *
 * @example Telling gzip from raw IDX
 * ```ts
 * import assert from "node:assert/strict";
 * import { isGzip } from "./idx.ts";
 *
 * assert(isGzip(new Uint8Array([0x1f, 0x8b, 8, 0])));
 * assert(!isGzip(new Uint8Array([0, 0, 8, 1])));
 * ```
 */
export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/**
 * Decompresses gzip bytes with the built-in `DecompressionStream`.
 *
 * @param bytes The gzip-compressed contents.
 * @param fileName The name of the file the bytes came from, used in error messages.
 * @returns The decompressed bytes.
 * @throws {SyntaxError} If `bytes` are not a valid gzip stream (corrupt, truncated,
 *   or followed by junk): "file NAME is not a valid gzip stream (DETAIL)".
 *
 * @example Round trip through CompressionStream
 * ```ts
 * import assert from "node:assert/strict";
 * import { gunzip } from "./idx.ts";
 *
 * const raw = new Uint8Array([0, 0, 8, 1, 0, 0, 0, 1, 7]);
 * const stream = new Blob([raw]).stream().pipeThrough(new CompressionStream("gzip"));
 * const gz = new Uint8Array(await new Response(stream).arrayBuffer());
 * assert.deepEqual(await gunzip(gz, "labels.gz"), raw);
 * ```
 */
export async function gunzip(bytes: Uint8Array, fileName: string): Promise<Uint8Array> {
  try {
    const stream = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream()
      .pipeThrough(new DecompressionStream("gzip"));
    return new Uint8Array(await new Response(stream).arrayBuffer());
  } catch (err) {
    const detail = err instanceof Error ? err.message : String(err);
    throw new SyntaxError(`file ${fileName} is not a valid gzip stream (${detail})`, {
      cause: err,
    });
  }
}

function hex32(n: number): string {
  return "0x" + n.toString(16).padStart(8, "0");
}

/**
 * Decodes the decompressed bytes of an IDX file of u8 images or labels.
 *
 * Checks the magic number and that the data is exactly as long as the header
 * says. Does not check the dimensions themselves (any non-negative values are
 * accepted). The returned `data` is a view into `bytes`, not a copy.
 *
 * @param bytes The decompressed file contents (use {@link gunzip} first if gzipped).
 * @param fileName The name of the file the bytes came from, used in error messages.
 * @returns The kind, dimensions and data of the file.
 * @throws {TypeError} If the file is shorter than its header, has an unknown
 *   magic number, or has fewer or more data bytes than its header declares.
 *
 * @example Decoding a tiny images file
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeIdx } from "./idx.ts";
 *
 * // magic 0x00000803, 1 image of 2x2 pixels, then the 4 pixels
 * const bytes = new Uint8Array([0, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 2, 0, 64, 128, 255]);
 * const idx = decodeIdx(bytes, "tiny-images-idx3-ubyte");
 * assert.equal(idx.kind, "images");
 * assert.deepEqual(idx.dims, [1, 2, 2]);
 * assert.deepEqual([...idx.data], [0, 64, 128, 255]);
 * ```
 */
export function decodeIdx(bytes: Uint8Array, fileName: string): Idx {
  if (bytes.length < 4) {
    throw new TypeError(
      `file ${fileName} is too short to be an IDX file: ${bytes.length} bytes (an IDX header has at least 8)`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = view.getUint32(0, false);
  let kind: IdxKind;
  if (magic === IDX_IMAGES_MAGIC) kind = "images";
  else if (magic === IDX_LABELS_MAGIC) kind = "labels";
  else {
    throw new TypeError(
      `file ${fileName} has magic number ${hex32(magic)} (expected ${
        hex32(IDX_LABELS_MAGIC)
      } for u8 labels or ${hex32(IDX_IMAGES_MAGIC)} for u8 images)`,
    );
  }
  const rank = magic & 0xff;
  const headerLength = 4 + 4 * rank;
  if (bytes.length < headerLength) {
    throw new TypeError(
      `file ${fileName} is truncated: ${bytes.length} bytes, but an IDX ${kind} header has ${headerLength}`,
    );
  }
  const dims: number[] = [];
  for (let i = 0; i < rank; i++) dims.push(view.getUint32(4 + 4 * i, false));
  const expected = dims.reduce((a, b) => a * b, 1);
  const actual = bytes.length - headerLength;
  if (actual !== expected) {
    const shape = `${dims.join("x")} = ${expected} data bytes`;
    throw new TypeError(
      actual < expected
        ? `file ${fileName} is truncated: its header declares ${shape}, but only ${actual} follow`
        : `file ${fileName} has ${
          actual - expected
        } trailing bytes: its header declares ${shape}, but ${actual} follow`,
    );
  }
  return { kind, dims, data: bytes.subarray(headerLength) };
}

/**
 * Reads an IDX file from disk, decompressing it if it is gzipped, and decodes it.
 *
 * @param path The file to read, gzipped (detected from its first bytes, not its
 *   name) or raw.
 * @returns The path, whether it was gzipped, the decompressed bytes and the decoded file.
 * @throws {Deno.errors.NotFound} If the file does not exist.
 * @throws {SyntaxError} If the file looks gzipped but is not a valid gzip stream.
 * @throws {TypeError} If the contents are not a well-formed IDX file (see {@link decodeIdx}).
 *
 * @example Reading a gzipped labels file
 * ```ts
 * import assert from "node:assert/strict";
 * import { readIdxFile } from "./idx.ts";
 *
 * const raw = new Uint8Array([0, 0, 8, 1, 0, 0, 0, 3, 5, 0, 4]);
 * const stream = new Blob([raw]).stream().pipeThrough(new CompressionStream("gzip"));
 * const dir = await Deno.makeTempDir();
 * const path = `${dir}/labels-idx1-ubyte.gz`;
 * await Deno.writeFile(path, new Uint8Array(await new Response(stream).arrayBuffer()));
 * const file = await readIdxFile(path);
 * await Deno.remove(dir, { recursive: true });
 * assert.deepEqual([file.gzipped, file.idx.kind, file.idx.dims, [...file.idx.data]], [
 *   true,
 *   "labels",
 *   [3],
 *   [5, 0, 4],
 * ]);
 * ```
 */
export async function readIdxFile(path: string): Promise<IdxFile> {
  const stored = await Deno.readFile(path);
  const gzipped = isGzip(stored);
  const bytes = gzipped ? await gunzip(stored, path) : stored;
  return { path, gzipped, bytes, idx: decodeIdx(bytes, path) };
}
