/**
 * Reading and writing the safetensors format: an 8-byte little-endian u64 header length N, then N
 * bytes of UTF-8 JSON header, then the raw little-endian tensor data. The header maps each tensor
 * name to `{ dtype, shape, data_offsets: [begin, end] }` (offsets relative to the start of the data
 * area) and may hold `"__metadata__": { [key]: string }`.
 *
 * The reader trusts nothing: every length, offset and type in the header is checked against the
 * file before a tensor is handed out. Errors are `RangeError` (a size or offset out of range),
 * `TypeError` (a field of the wrong kind) or `SyntaxError` (unparsable header), with messages of
 * the form "Cannot load model.safetensors: header length 9000000000 exceeds file size 1024".
 *
 * This module assumes a little-endian host (every platform Deno runs on).
 *
 * @module
 */

/** Element types this module reads and writes (F16 and I64 convert on reading). */
export type Dtype = "F64" | "F32" | "F16" | "I64" | "I32" | "I16" | "I8" | "U32" | "U16" | "U8";

/**
 * Bytes per element of each supported dtype.
 *
 * @example Element sizes
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { DTYPE_SIZE } from "./safetensors.ts";
 *
 * equal(DTYPE_SIZE.F16, 2);
 * ```
 */
export const DTYPE_SIZE: Readonly<Record<Dtype, number>> = Object.freeze({
  F64: 8,
  F32: 4,
  F16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U32: 4,
  U16: 2,
  U8: 1,
});

/**
 * Largest header this reader accepts: 100 MiB.
 *
 * @example The limit
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { MAX_HEADER_LENGTH } from "./safetensors.ts";
 *
 * equal(MAX_HEADER_LENGTH, 104857600);
 * ```
 */
export const MAX_HEADER_LENGTH = 100 * 1024 * 1024;

/** One decoded tensor: its name, dtype, shape and raw little-endian bytes. */
export interface Tensor {
  /** The tensor's name in the file (used in error messages). */
  name: string;
  /** Element type. */
  dtype: Dtype;
  /** Dimensions, outermost first; `[]` is a scalar. */
  shape: number[];
  /** The raw data: a view into the decoded buffer (not necessarily aligned). */
  bytes: Uint8Array;
}

/** A tensor to write: dtype, shape and a typed array (or raw bytes) holding its elements. */
export interface TensorInput {
  /** Element type. */
  dtype: Dtype;
  /** Dimensions, outermost first. */
  shape: number[];
  /** The elements, `product(shape) · sizeof(dtype)` bytes, in host (little-endian) order. */
  data: ArrayBufferView;
}

/** The result of {@linkcode decodeSafetensors}. */
export interface Safetensors {
  /** Tensors by name. */
  tensors: Map<string, Tensor>;
  /** The `__metadata__` map (empty if the file has none). */
  metadata: Record<string, string>;
}

const METADATA_KEY = "__metadata__";

/** Typed-array constructors that match a dtype (raw `Uint8Array` and `DataView` always fit). */
const VIEW_NAMES: Readonly<Record<Dtype, string>> = {
  F64: "Float64Array",
  F32: "Float32Array",
  F16: "Uint16Array",
  I64: "BigInt64Array",
  I32: "Int32Array",
  I16: "Int16Array",
  I8: "Int8Array",
  U32: "Uint32Array",
  U16: "Uint16Array",
  U8: "Uint8Array",
};

function isDtype(value: unknown): value is Dtype {
  return typeof value === "string" && Object.hasOwn(DTYPE_SIZE, value);
}

function shapeText(shape: unknown): string {
  return JSON.stringify(shape) ?? String(shape);
}

/** Product of a shape's dimensions, or -1 if it is not a safe integer. */
function elementCount(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) {
    n *= d;
    if (!Number.isSafeInteger(n)) return -1;
  }
  return n;
}

function isShape(value: unknown): value is number[] {
  return Array.isArray(value) &&
    value.every((d) => typeof d === "number" && Number.isSafeInteger(d) && d >= 0);
}

/**
 * Encodes tensors (and optional string metadata) as safetensors bytes.
 *
 * The output is deterministic: tensors are laid out in sorted name order, `__metadata__` comes
 * first in the header, and the header is padded with spaces to a multiple of 8 bytes.
 *
 * @param tensors Tensors by name; each `data` must hold exactly `product(shape) · sizeof(dtype)`
 * bytes (a typed array of the matching element type, or raw `Uint8Array`/`DataView` bytes).
 * @param metadata Optional string-to-string metadata, stored as `__metadata__`.
 * @returns The file contents.
 * @throws {TypeError} A name is empty or reserved, a dtype is unknown, a shape is invalid, the
 * data's array type does not fit the dtype, or a metadata value is not a string.
 * @throws {RangeError} The data's byte length does not match the shape.
 *
 * @example Round trip of one tensor
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { decodeSafetensors, encodeSafetensors, tensorToF32 } from "./safetensors.ts";
 *
 * const bytes = encodeSafetensors(
 *   { w: { dtype: "F32", shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) } },
 *   { note: "example" },
 * );
 * const { tensors, metadata } = decodeSafetensors(bytes);
 * deepStrictEqual(Array.from(tensorToF32(tensors.get("w")!)), [1, 2, 3, 4]);
 * deepStrictEqual(metadata, { note: "example" });
 * ```
 */
export function encodeSafetensors(
  tensors: Record<string, TensorInput>,
  metadata?: Record<string, string>,
): Uint8Array {
  const names = Object.keys(tensors).sort();
  const entries: string[] = [];
  if (metadata !== undefined) {
    const keys = Object.keys(metadata).sort();
    for (const key of keys) {
      if (typeof metadata[key] !== "string") {
        throw new TypeError(
          `Cannot save safetensors: metadata value ${JSON.stringify(key)} is not a string`,
        );
      }
    }
    const pairs = keys.map((k) => `${JSON.stringify(k)}:${JSON.stringify(metadata[k])}`);
    entries.push(`${JSON.stringify(METADATA_KEY)}:{${pairs.join(",")}}`);
  }
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const name of names) {
    const tensor = tensors[name];
    const label = JSON.stringify(name);
    if (name === "" || name === METADATA_KEY) {
      throw new TypeError(`Cannot save safetensors: tensor name ${label} is reserved`);
    }
    const { dtype, shape, data } = tensor;
    if (!isDtype(dtype)) {
      throw new TypeError(
        `Cannot save safetensors: tensor ${label} has unknown dtype ${JSON.stringify(dtype)}`,
      );
    }
    if (!isShape(shape)) {
      throw new TypeError(
        `Cannot save safetensors: tensor ${label} has invalid shape ${shapeText(shape)}`,
      );
    }
    if (!ArrayBuffer.isView(data)) {
      throw new TypeError(
        `Cannot save safetensors: tensor ${label} data is not an ArrayBufferView`,
      );
    }
    const viewName = data.constructor.name;
    if (viewName !== "Uint8Array" && viewName !== "DataView" && viewName !== VIEW_NAMES[dtype]) {
      throw new TypeError(
        `Cannot save safetensors: tensor ${label} of dtype ${dtype} cannot take a ${viewName}`,
      );
    }
    const count = elementCount(shape);
    const expected = count * DTYPE_SIZE[dtype];
    if (count < 0 || data.byteLength !== expected) {
      throw new RangeError(
        `Cannot save safetensors: tensor ${label} has ${data.byteLength} bytes but shape ${
          shapeText(shape)
        } of ${dtype} needs ${count < 0 ? "more than 2^53" : expected}`,
      );
    }
    const begin = offset;
    offset += data.byteLength;
    entries.push(
      `${label}:{"dtype":"${dtype}","shape":${
        JSON.stringify(shape)
      },"data_offsets":[${begin},${offset}]}`,
    );
    chunks.push(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  }
  const json = new TextEncoder().encode(`{${entries.join(",")}}`);
  const headerLength = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + headerLength + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLength), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + headerLength);
  let at = 8 + headerLength;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}

/**
 * Decodes safetensors bytes, checking the header against the file before trusting it.
 *
 * Checks: at least 8 bytes; header length within the file and at most 100 MiB; a UTF-8 JSON
 * object; every entry with a known dtype, a shape of non-negative safe integers and
 * `data_offsets` `[begin, end]` inside the data area with `end − begin = product(shape) ·
 * sizeof(dtype)`; no two tensors sharing bytes; `__metadata__` values all strings.
 *
 * @param bytes The file contents.
 * @param source What to call the data in error messages (e.g. the file name).
 * @returns Tensors by name (their `bytes` view `bytes`, no copy) and the metadata.
 * @throws {RangeError} Truncated file, header too long, offsets out of range, overlapping or of
 * the wrong size.
 * @throws {TypeError} A header field of the wrong kind, an unknown dtype, a non-string metadata
 * value.
 * @throws {SyntaxError} The header is not valid UTF-8 JSON.
 *
 * @example Rejecting a truncated file
 * ```ts
 * import { throws } from "node:assert/strict";
 * import { decodeSafetensors } from "./safetensors.ts";
 *
 * throws(() => decodeSafetensors(new Uint8Array(4), "model.safetensors"), {
 *   name: "RangeError",
 *   message: "Cannot load model.safetensors: file has 4 bytes, fewer than the 8-byte header length",
 * });
 * ```
 */
export function decodeSafetensors(bytes: Uint8Array, source = "safetensors data"): Safetensors {
  const fail = (msg: string) => `Cannot load ${source}: ${msg}`;
  if (bytes.length < 8) {
    throw new RangeError(
      fail(`file has ${bytes.length} bytes, fewer than the 8-byte header length`),
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = view.getBigUint64(0, true);
  if (headerLength > BigInt(bytes.length - 8)) {
    throw new RangeError(fail(`header length ${headerLength} exceeds file size ${bytes.length}`));
  }
  if (headerLength > BigInt(MAX_HEADER_LENGTH)) {
    throw new RangeError(
      fail(`header length ${headerLength} exceeds the limit of ${MAX_HEADER_LENGTH} bytes`),
    );
  }
  const n = Number(headerLength);
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(
      bytes.subarray(8, 8 + n),
    );
  } catch (cause) {
    throw new SyntaxError(fail("header is not valid UTF-8"), { cause });
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (cause) {
    throw new SyntaxError(fail("header is not valid JSON"), { cause });
  }
  if (typeof header !== "object" || header === null || Array.isArray(header)) {
    throw new TypeError(fail("header is not a JSON object"));
  }
  const dataStart = 8 + n;
  const dataLength = bytes.length - dataStart;
  const tensors = new Map<string, Tensor>();
  const metadata: Record<string, string> = {};
  const spans: { name: string; begin: number; end: number }[] = [];
  for (const [name, entry] of Object.entries(header as Record<string, unknown>)) {
    if (name === METADATA_KEY) {
      if (typeof entry !== "object" || entry === null || Array.isArray(entry)) {
        throw new TypeError(fail(`${METADATA_KEY} is not a JSON object`));
      }
      for (const [key, value] of Object.entries(entry as Record<string, unknown>)) {
        if (typeof value !== "string") {
          throw new TypeError(fail(`${METADATA_KEY} value ${JSON.stringify(key)} is not a string`));
        }
        // defineProperty: a key such as "__proto__" must not reach the prototype.
        Object.defineProperty(metadata, key, {
          value,
          enumerable: true,
          writable: true,
          configurable: true,
        });
      }
      continue;
    }
    const label = `tensor ${JSON.stringify(name)}`;
    if (typeof entry !== "object" || entry === null || Array.isArray(entry)) {
      throw new TypeError(fail(`${label} entry is not a JSON object`));
    }
    const { dtype, shape, data_offsets: offsets } = entry as Record<string, unknown>;
    if (!isDtype(dtype)) {
      throw new TypeError(
        fail(`${label} has unknown dtype ${JSON.stringify(dtype) ?? "undefined"}`),
      );
    }
    if (!isShape(shape)) {
      throw new TypeError(fail(`${label} has invalid shape ${shapeText(shape)}`));
    }
    if (
      !Array.isArray(offsets) || offsets.length !== 2 ||
      !offsets.every((o) => typeof o === "number" && Number.isSafeInteger(o) && o >= 0)
    ) {
      throw new TypeError(fail(`${label} has invalid data_offsets ${shapeText(offsets)}`));
    }
    const [begin, end] = offsets as number[];
    if (begin > end || end > dataLength) {
      throw new RangeError(
        fail(
          `${label} data_offsets [${begin}, ${end}] lie outside the data area of ${dataLength} bytes`,
        ),
      );
    }
    const count = elementCount(shape);
    const expected = count * DTYPE_SIZE[dtype];
    if (count < 0 || end - begin !== expected) {
      throw new RangeError(
        fail(
          `${label} has ${end - begin} bytes but shape ${shapeText(shape)} of ${dtype} needs ${
            count < 0 ? "more than 2^53" : expected
          }`,
        ),
      );
    }
    if (end > begin) spans.push({ name, begin, end });
    tensors.set(name, {
      name,
      dtype,
      shape: shape.slice(),
      bytes: bytes.subarray(dataStart + begin, dataStart + end),
    });
  }
  spans.sort((a, b) => a.begin - b.begin || a.end - b.end);
  for (let k = 1; k < spans.length; k++) {
    const prev = spans[k - 1], cur = spans[k];
    if (cur.begin < prev.end) {
      throw new RangeError(
        fail(
          `tensors ${JSON.stringify(prev.name)} [${prev.begin}, ${prev.end}] and ${
            JSON.stringify(cur.name)
          } [${cur.begin}, ${cur.end}] overlap`,
        ),
      );
    }
  }
  return { tensors, metadata };
}

function expectDtype(t: Tensor, wanted: string, ...allowed: Dtype[]): void {
  if (!allowed.includes(t.dtype)) {
    throw new TypeError(
      `Cannot read tensor ${JSON.stringify(t.name)} as ${wanted}: its dtype is ${t.dtype}`,
    );
  }
}

/** Copies a tensor's bytes into a fresh, aligned buffer. */
function alignedCopy(t: Tensor): ArrayBuffer {
  return t.bytes.slice().buffer;
}

/** Converts IEEE binary16 bits to the number they encode (exact in float32). */
function halfToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 0x1f) return frac === 0 ? sign * Infinity : NaN;
  return sign * (1024 + frac) * 2 ** (exp - 25);
}

/**
 * Copies an F32 (or F16, converted) tensor into a new `Float32Array`.
 *
 * @param t The tensor.
 * @returns Its elements, row-major.
 * @throws {TypeError} The dtype is neither F32 nor F16.
 *
 * @example Reading F16 data as F32
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { decodeSafetensors, encodeSafetensors, tensorToF32 } from "./safetensors.ts";
 *
 * const half = new Uint16Array([0x3c00, 0xc000]); // 1, -2 in binary16
 * const file = encodeSafetensors({ h: { dtype: "F16", shape: [2], data: half } });
 * deepStrictEqual(Array.from(tensorToF32(decodeSafetensors(file).tensors.get("h")!)), [1, -2]);
 * ```
 */
export function tensorToF32(t: Tensor): Float32Array {
  expectDtype(t, "F32", "F32", "F16");
  if (t.dtype === "F32") return new Float32Array(alignedCopy(t));
  const bits = new Uint16Array(alignedCopy(t));
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = halfToNumber(bits[i]);
  return out;
}

/**
 * Copies an F64 tensor into a new `Float64Array`.
 *
 * @param t The tensor.
 * @returns Its elements, row-major.
 * @throws {TypeError} The dtype is not F64.
 *
 * @example Reading F64 data
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { decodeSafetensors, encodeSafetensors, tensorToF64 } from "./safetensors.ts";
 *
 * const file = encodeSafetensors({ d: { dtype: "F64", shape: [1], data: new Float64Array([0.1]) } });
 * deepStrictEqual(tensorToF64(decodeSafetensors(file).tensors.get("d")!)[0], 0.1);
 * ```
 */
export function tensorToF64(t: Tensor): Float64Array {
  expectDtype(t, "F64", "F64");
  return new Float64Array(alignedCopy(t));
}

/**
 * Copies an I32 (or I64, range-checked) tensor into a new `Int32Array`.
 *
 * @param t The tensor.
 * @returns Its elements, row-major.
 * @throws {TypeError} The dtype is neither I32 nor I64.
 * @throws {RangeError} An I64 element does not fit in an i32.
 *
 * @example Reading I32 data
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { decodeSafetensors, encodeSafetensors, tensorToI32 } from "./safetensors.ts";
 *
 * const file = encodeSafetensors({ c: { dtype: "I32", shape: [2], data: new Int32Array([7, -1]) } });
 * deepStrictEqual(Array.from(tensorToI32(decodeSafetensors(file).tensors.get("c")!)), [7, -1]);
 * ```
 */
export function tensorToI32(t: Tensor): Int32Array {
  expectDtype(t, "I32", "I32", "I64");
  if (t.dtype === "I32") return new Int32Array(alignedCopy(t));
  const wide = new BigInt64Array(alignedCopy(t));
  const out = new Int32Array(wide.length);
  for (let i = 0; i < wide.length; i++) {
    const v = wide[i];
    if (v < -2147483648n || v > 2147483647n) {
      throw new RangeError(
        `Cannot read tensor ${JSON.stringify(t.name)} as I32: element ${i} = ${v} is out of range`,
      );
    }
    out[i] = Number(v);
  }
  return out;
}

/**
 * Copies a U8 tensor into a new `Uint8Array`.
 *
 * @param t The tensor.
 * @returns Its elements, row-major.
 * @throws {TypeError} The dtype is not U8.
 *
 * @example Reading U8 data
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { decodeSafetensors, encodeSafetensors, tensorToU8 } from "./safetensors.ts";
 *
 * const file = encodeSafetensors({ m: { dtype: "U8", shape: [3], data: new Uint8Array([1, 0, 1]) } });
 * deepStrictEqual(Array.from(tensorToU8(decodeSafetensors(file).tensors.get("m")!)), [1, 0, 1]);
 * ```
 */
export function tensorToU8(t: Tensor): Uint8Array {
  expectDtype(t, "U8", "U8");
  return t.bytes.slice();
}

/** The typed array {@linkcode tensorToArray} returns for each dtype. */
export type TensorArray =
  | Float64Array
  | Float32Array
  | BigInt64Array
  | Int32Array
  | Int16Array
  | Int8Array
  | Uint32Array
  | Uint16Array
  | Uint8Array;

/**
 * Copies any tensor into the typed array natural for its dtype (F16 converts to `Float32Array`,
 * I64 gives a `BigInt64Array`).
 *
 * @param t The tensor.
 * @returns Its elements, row-major, in a fresh aligned array.
 *
 * @example Reading I16 data
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { decodeSafetensors, encodeSafetensors, tensorToArray } from "./safetensors.ts";
 *
 * const file = encodeSafetensors({ s: { dtype: "I16", shape: [2], data: new Int16Array([-3, 9]) } });
 * const s = tensorToArray(decodeSafetensors(file).tensors.get("s")!);
 * deepStrictEqual(s, new Int16Array([-3, 9]));
 * ```
 */
export function tensorToArray(t: Tensor): TensorArray {
  switch (t.dtype) {
    case "F64":
      return tensorToF64(t);
    case "F32":
    case "F16":
      return tensorToF32(t);
    case "I64":
      return new BigInt64Array(alignedCopy(t));
    case "I32":
      return new Int32Array(alignedCopy(t));
    case "I16":
      return new Int16Array(alignedCopy(t));
    case "I8":
      return new Int8Array(alignedCopy(t));
    case "U32":
      return new Uint32Array(alignedCopy(t));
    case "U16":
      return new Uint16Array(alignedCopy(t));
    case "U8":
      return tensorToU8(t);
  }
}
