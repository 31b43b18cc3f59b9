/**
 * Compact inference models: the master weights of each linear layer quantized to I16 or I8 with
 * one scale per layer, q = round(w / scale), clamped to ±(2^(b−1) − 1).
 *
 * File: safetensors, tensors `linear.{k}.weight` (I16 or I8, [out, in]) and the metadata of a
 * model file (`config`, `hyper`, `seed`, `epoch`, `dataset`, accuracies) with `format` =
 * `desire-compact`, `format_version` = `1`, `weight_format` = `I16` | `I8`, `scales` (JSON list,
 * one per layer: threshold units per integer step), `scale_method` (how the scales were chosen)
 * and `source_weight_format`. `loadModel` rebuilds master weights round(q · scale · 2^20) and marks
 * the model inference only.
 *
 * Scale methods: `max` (scale = max |w| / qmax: nothing clips), `pNN` (the NN-th percentile of
 * |w| / qmax: the largest weights clip) and `mse` (the clip level among 64 candidates between
 * 25 % and 100 % of max |w| with the least squared error). See `docs/pytorch.md` and the tests for
 * the measured accuracies; the default is {@linkcode DEFAULT_SCALE_METHOD}.
 *
 * @module
 */
import { encodeSafetensors } from "./safetensors.ts";
import { MASTER_FRAC, toMaster } from "./params.ts";
import {
  COMPACT_FORMAT,
  COMPACT_FORMAT_VERSION,
  type ModelInfo,
  modelMetadata,
} from "./model_file.ts";

/** Integer dtypes of a compact model. */
export type CompactDtype = "I16" | "I8";
/** How a layer's scale is chosen: `max`, `mse` or a percentile such as `p99.99`. */
export type ScaleMethod = string;
/** The scale method used unless another is asked for. */
export const DEFAULT_SCALE_METHOD: ScaleMethod = "max";

/**
 * Largest integer of a compact dtype (the range is symmetric).
 *
 * @param dtype `I16` or `I8`.
 * @returns 32767 or 127.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { qmaxOf } from "./compact.ts";
 *
 * assert.equal(qmaxOf("I8"), 127);
 * ```
 */
export function qmaxOf(dtype: CompactDtype): number {
  return dtype === "I16" ? 32767 : 127;
}

/**
 * Checks a scale method's spelling.
 *
 * @param text `max`, `mse` or `p` followed by a percentile in (0, 100].
 * @returns The method.
 * @throws {RangeError} Anything else.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseScaleMethod } from "./compact.ts";
 *
 * assert.equal(parseScaleMethod("p99.9"), "p99.9");
 * assert.throws(() => parseScaleMethod("p0"), RangeError);
 * ```
 */
export function parseScaleMethod(text: string): ScaleMethod {
  if (text === "max" || text === "mse") return text;
  const m = /^p(\d+(?:\.\d+)?)$/.exec(text);
  if (m && Number(m[1]) > 0 && Number(m[1]) <= 100) return text;
  throw new RangeError(
    `Invalid scale method ${JSON.stringify(text)} (expected max, mse or pNN with 0 < NN ≤ 100, ` +
      `e.g. p99.99)`,
  );
}

function sortedAbs(w: Int32Array): Float64Array {
  const a = new Float64Array(w.length);
  for (let i = 0; i < w.length; i++) a[i] = Math.abs(w[i]);
  return a.sort();
}

function clipError(abs: Float64Array, clip: number, qmax: number): number {
  const s = clip / qmax;
  let e = 0;
  for (let i = 0; i < abs.length; i++) {
    const v = abs[i];
    const q = Math.min(qmax, Math.round(v / s));
    const d = v - q * s;
    e += d * d;
  }
  return e;
}

/**
 * The scale of one layer: threshold units per integer step.
 *
 * @param w Master weights of the layer (Q11.20).
 * @param dtype Target dtype.
 * @param method `max`, `mse` or `pNN`.
 * @returns The scale (> 0).
 *
 * @example The max method never clips
 * ```ts
 * import assert from "node:assert/strict";
 * import { chooseScale } from "./compact.ts";
 *
 * const w = new Int32Array([2 ** 20 * 127, -(2 ** 19)]);
 * assert.equal(chooseScale(w, "I8", "max"), 1);
 * ```
 */
export function chooseScale(w: Int32Array, dtype: CompactDtype, method: ScaleMethod): number {
  parseScaleMethod(method);
  const qmax = qmaxOf(dtype);
  let maxAbs = 0;
  for (let i = 0; i < w.length; i++) maxAbs = Math.max(maxAbs, Math.abs(w[i]));
  let clip = maxAbs;
  if (method === "mse" && maxAbs > 0) {
    const abs = sortedAbs(w);
    let best = Infinity;
    for (let c = 0; c < 64; c++) {
      const level = maxAbs * (1 - 0.75 * c / 63);
      const e = clipError(abs, level, qmax);
      if (e < best) {
        best = e;
        clip = level;
      }
    }
  } else if (method.startsWith("p") && maxAbs > 0) {
    const abs = sortedAbs(w);
    const p = Number(method.slice(1)) / 100;
    clip = abs[Math.min(abs.length - 1, Math.max(0, Math.ceil(p * abs.length) - 1))];
  }
  if (!(clip > 0)) clip = qmax; // all-zero layer: any scale
  return clip / qmax / 2 ** MASTER_FRAC;
}

/**
 * Quantizes master weights: q = round(w / scale) (halves away from zero), clamped to ±qmax.
 *
 * @param w Master weights (Q11.20).
 * @param dtype `I16` or `I8`.
 * @param scale Threshold units per step.
 * @returns The integers.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { quantize } from "./compact.ts";
 *
 * assert.deepEqual(quantize(new Int32Array([3 << 20, -(3 << 19), 200 << 20]), "I8", 1),
 *   new Int8Array([3, -2, 127]));
 * ```
 */
export function quantize(
  w: Int32Array,
  dtype: CompactDtype,
  scale: number,
): Int16Array | Int8Array {
  const qmax = qmaxOf(dtype);
  const q = dtype === "I16" ? new Int16Array(w.length) : new Int8Array(w.length);
  const inv = 1 / (scale * 2 ** MASTER_FRAC);
  for (let i = 0; i < w.length; i++) {
    const x = w[i] * inv;
    const v = x < 0 ? -Math.round(-x) : Math.round(x);
    q[i] = v > qmax ? qmax : v < -qmax ? -qmax : v;
  }
  return q;
}

/**
 * Master weights rebuilt from a quantized layer, as `loadModel` does: round(q · scale · 2^20).
 *
 * @param q The integers.
 * @param scale Threshold units per step.
 * @returns Master weights (Q11.20).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { dequantize } from "./compact.ts";
 *
 * assert.deepEqual(dequantize(new Int8Array([2, -1]), 0.5), new Int32Array([1 << 20, -(1 << 19)]));
 * ```
 */
export function dequantize(q: Int16Array | Int8Array, scale: number): Int32Array {
  const w = new Int32Array(q.length);
  for (let i = 0; i < q.length; i++) w[i] = toMaster(q[i] * scale);
  return w;
}

/** Options of {@linkcode encodeCompactModel}. */
export interface CompactOptions {
  /** `I16` or `I8`. */
  dtype: CompactDtype;
  /** Scale method (default {@linkcode DEFAULT_SCALE_METHOD}). */
  method?: ScaleMethod;
  /** Weight format of the model the weights came from (metadata `source_weight_format`). */
  sourceWeightFormat?: string;
}

/** What {@linkcode encodeCompactModel} returns. */
export interface CompactResult {
  /** The file's bytes. */
  bytes: Uint8Array;
  /** The scale of each layer (threshold units per step). */
  scales: number[];
  /** The quantized weights per layer. */
  quantized: (Int16Array | Int8Array)[];
}

/**
 * Encodes a compact, inference-only model.
 *
 * @param info Configuration and run metadata.
 * @param weights Master weights per linear layer (out × in, Q11.20).
 * @param options Dtype and scale method.
 * @returns Bytes, scales and quantized weights.
 *
 * @example Save compact, load as master weights
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeCompactModel } from "./compact.ts";
 * import { decodeModel } from "./model_file.ts";
 *
 * const config = {
 *   sizes: [784, 10], tsteps: 20, threshold: 1, decay: 2, margin: 4,
 *   desireHid: 0.05, desireOut: 0.3, dropIn: 0, dropHid: 0.3,
 * };
 * const w = new Int32Array(7840).map((_, i) => (i % 255 - 127) << 16);
 * const { bytes } = encodeCompactModel({ config, seed: 0, epoch: 1, dataset: "mnist", hyper: {} },
 *   [w], { dtype: "I8" });
 * const m = decodeModel(bytes, "c.safetensors");
 * assert.equal(m.inferenceOnly, true);
 * assert.deepEqual(m.weights[0], w);
 * ```
 */
export function encodeCompactModel(
  info: ModelInfo,
  weights: Int32Array[],
  options: CompactOptions,
): CompactResult {
  const { dtype } = options;
  const method = parseScaleMethod(options.method ?? DEFAULT_SCALE_METHOD);
  const s = info.config.sizes;
  const tensors: Record<string, { dtype: CompactDtype; shape: number[]; data: ArrayBufferView }> =
    {};
  const scales: number[] = [];
  const quantized: (Int16Array | Int8Array)[] = [];
  for (let k = 0; k < weights.length; k++) {
    const scale = chooseScale(weights[k], dtype, method);
    const q = quantize(weights[k], dtype, scale);
    scales.push(scale);
    quantized.push(q);
    tensors[`linear.${k}.weight`] = { dtype, shape: [s[k + 1], s[k]], data: q };
  }
  const meta = modelMetadata(info, {
    name: COMPACT_FORMAT,
    version: COMPACT_FORMAT_VERSION,
    weightFormat: dtype,
  });
  meta.scales = JSON.stringify(scales);
  meta.scale_method = method;
  meta.source_weight_format = options.sourceWeightFormat ?? "Q11.20";
  return { bytes: encodeSafetensors(tensors, meta), scales, quantized };
}
