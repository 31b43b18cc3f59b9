/**
 * Float weights in the naming of the authors' PyTorch code, in and out of our Q11.20 models.
 *
 * The authors' `SnnModel` (`desire_pytorch.py`) keeps its layers in the `nn.ModuleList`
 * `layers`, built from the configuration `("I", 1, 28), ("F",), ("L", h1), …, ("L", 10)`: index 0
 * is the input layer, 1 the flatten layer, and the linear layers follow at 2, 3, 4, … Each linear
 * layer holds the parameter `weights`, `[out, in]` float32, no bias; the other layers have no
 * parameters. Its state dict is therefore `{"layers.2.weights", "layers.3.weights", …}`.
 *
 * A float model file is safetensors with exactly those tensors (F32 or F16). Reading sorts them
 * by index (which need not start at 2, but must be consecutive), infers the network from the
 * shapes (784 inputs, each layer's `in` = the previous `out`, 10 outputs), checks every weight is
 * finite and within ±256 (the clamp of our master weights, 2^28 / 2^20), and rounds each to the
 * nearest Q11.20 step. Hyper-parameters come from the metadata when present (keys below), else
 * the CLI defaults of the dataset's preset.
 *
 * Metadata written by {@linkcode encodeFloatModel} (all strings): `format` = `desire-float`,
 * `format_version` = `1`, `neurons` (e.g. `784-100-10`), `tsteps`, `mempot_thres`,
 * `mempot_decay`, `error_margin`, `desire_thres_lin`, `desire_thres_out`, `dropout_in`,
 * `dropout_hid`, `dataset`, `random_seed`, `epoch`, `hyper` (JSON of the training flags) and, when
 * known, `train_accuracy`, `test_accuracy`, `best_test_accuracy` (fractions).
 *
 * @module
 */
import type { ModelInfo } from "./model_file.ts";
import { encodeSafetensors, type Safetensors, type Tensor, tensorToF32 } from "./safetensors.ts";
import { MASTER_FRAC, MAX_LAYERS, type NetConfig, toMaster, WMAX } from "./params.ts";

/** `format` in the metadata of a float model written by {@linkcode encodeFloatModel}. */
export const FLOAT_FORMAT = "desire-float";
/** Version of the float model metadata. */
export const FLOAT_FORMAT_VERSION = 1;
/**
 * Index of the first linear layer in the authors' layer list (0 = input, 1 = flatten), the index
 * {@linkcode encodeFloatModel} writes first.
 */
export const FIRST_LINEAR_INDEX = 2;
/** Largest |w| a float model may hold: 2^28 / 2^20 = 256 threshold units. */
export const MAX_ABS_WEIGHT = WMAX / 2 ** MASTER_FRAC;
/** The datasets a float model may name in its metadata. */
export type FloatDataset = "mnist" | "fashion-mnist";

/**
 * The hyper-parameters a float model takes when its metadata lacks them: the CLI defaults of
 * `train` with the dataset's preset (tests hold them equal to `args.ts`; kept here so that
 * loading a model needs neither the CLI nor the file system).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { FLOAT_DEFAULTS } from "./float_io.ts";
 *
 * assert.equal(FLOAT_DEFAULTS["fashion-mnist"].dropHid, 0.4);
 * ```
 */
export const FLOAT_DEFAULTS: Readonly<Record<FloatDataset, Readonly<Omit<NetConfig, "sizes">>>> =
  Object.freeze({
    "mnist": Object.freeze({
      tsteps: 20,
      threshold: 1,
      decay: 2,
      margin: 4,
      desireHid: 0.05,
      desireOut: 0.3,
      dropIn: 0,
      dropHid: 0.3,
    }),
    "fashion-mnist": Object.freeze({
      tsteps: 20,
      threshold: 1,
      decay: 2,
      margin: 4,
      desireHid: 0.05,
      desireOut: 0.3,
      dropIn: 0.05,
      dropHid: 0.4,
    }),
  });

/** Inputs of the first layer (28 × 28 pixels) and outputs of the last (10 classes). */
const INPUTS = 784;
const CLASSES = 10;

const NAME = /^layers\.(0|[1-9]\d*)\.weights$/;

/**
 * The tensor name of linear layer k (k = 0 is the first hidden layer) in a float model.
 *
 * @param k Linear layer index, from 0.
 * @returns `layers.{k + 2}.weights`.
 *
 * @example The authors' naming
 * ```ts
 * import assert from "node:assert/strict";
 * import { floatTensorName } from "./float_io.ts";
 *
 * assert.equal(floatTensorName(0), "layers.2.weights");
 * ```
 */
export function floatTensorName(k: number): string {
  return `layers.${k + FIRST_LINEAR_INDEX}.weights`;
}

/**
 * Whether decoded safetensors hold a float model: a tensor named `layers.{n}.weights`, or the
 * metadata `format` = `desire-float`.
 *
 * @param st Decoded safetensors.
 * @returns True for a float model.
 *
 * @example Detection by tensor name
 * ```ts
 * import assert from "node:assert/strict";
 * import { isFloatModel } from "./float_io.ts";
 * import { decodeSafetensors, encodeSafetensors } from "./safetensors.ts";
 *
 * const w = { dtype: "F32" as const, shape: [1, 1], data: new Float32Array(1) };
 * assert.ok(isFloatModel(decodeSafetensors(encodeSafetensors({ "layers.7.weights": w }))));
 * assert.ok(!isFloatModel(decodeSafetensors(encodeSafetensors({ "linear.0.weight": w }))));
 * ```
 */
export function isFloatModel(st: Safetensors): boolean {
  if (st.metadata.format === FLOAT_FORMAT) return true;
  for (const name of st.tensors.keys()) if (NAME.test(name)) return true;
  return false;
}

/** A float model as read from its file, before the configuration is checked. */
export interface FloatModelParts {
  /** Network configuration: sizes from the shapes, the rest from metadata or defaults. */
  config: NetConfig;
  /** Run seed (`random_seed`, default 0). */
  seed: number;
  /** Epochs completed (`epoch`, default 0). */
  epoch: number;
  /** Dataset (`dataset`, default mnist). */
  dataset: FloatDataset;
  /** Training flags (`hyper`, default {}). */
  hyper: Record<string, unknown>;
  /** Accuracies from the metadata, if present. */
  trainAccuracy?: number;
  /** Test accuracy from the metadata, if present. */
  testAccuracy?: number;
  /** Best test accuracy from the metadata, if present. */
  bestTestAccuracy?: number;
  /** The float weights as stored (F16 widened to float32), out × in per linear layer. */
  floats: Float32Array[];
  /** The master weights (Q11.20), out × in per linear layer. */
  weights: Int32Array[];
  /** Dtypes of the tensors, e.g. `F32` (or `F16`, or `F16+F32` if mixed). */
  dtype: string;
  /** Tensor names in layer order. */
  names: string[];
}

function fail(source: string, what: string, kind: "type" | "range" = "type"): never {
  const msg = `Cannot load model ${source}: ${what}`;
  throw kind === "range" ? new RangeError(msg) : new TypeError(msg);
}

function shapeText(shape: readonly number[]): string {
  return `[${shape.join(", ")}]`;
}

/**
 * Converts float weights to master fixed point (Q11.20, round to nearest), rejecting any weight
 * that is not finite or beyond ±256.
 *
 * @param values Weights, out × in row-major.
 * @param cols Inputs per row (for the row/column in error messages).
 * @param name Tensor name for error messages.
 * @param source File name for error messages.
 * @returns Master weights.
 * @throws {RangeError} A weight is NaN, infinite or |w| > 256.
 *
 * @example Rounding to the nearest step
 * ```ts
 * import assert from "node:assert/strict";
 * import { floatToMaster } from "./float_io.ts";
 *
 * assert.deepEqual(floatToMaster(new Float32Array([0.5, -1, 2 ** -21 * 3]), 3, "w", "f"),
 *   new Int32Array([2 ** 19, -(2 ** 20), 2]));
 * assert.throws(() => floatToMaster(new Float32Array([0, 300]), 2, "w", "f"),
 *   /tensor w has weight 300 at index 1 \(row 0, column 1\)/);
 * ```
 */
export function floatToMaster(
  values: Float32Array,
  cols: number,
  name: string,
  source: string,
): Int32Array {
  const out = new Int32Array(values.length);
  for (let q = 0; q < values.length; q++) {
    const v = values[q];
    if (!(Math.abs(v) <= MAX_ABS_WEIGHT)) {
      const where = `at index ${q} (row ${Math.floor(q / cols)}, column ${q % cols})`;
      if (!Number.isFinite(v)) fail(source, `tensor ${name} has a non-finite weight ${v} ${where}`);
      fail(
        source,
        `tensor ${name} has weight ${v} ${where}: |w| must be ≤ ${MAX_ABS_WEIGHT} ` +
          `(master weights are Q11.20, clamped at ±2^28)`,
        "range",
      );
    }
    out[q] = toMaster(v);
  }
  return out;
}

function metaNumber(source: string, meta: Record<string, string>, key: string) {
  const text = meta[key];
  if (text === undefined) return undefined;
  const v = Number(text);
  if (text.trim() === "" || !Number.isFinite(v)) {
    fail(source, `metadata '${key}' is not a number: ${JSON.stringify(text)}`);
  }
  return v;
}

/**
 * Reads a float model from decoded safetensors: tensors, shapes, values, metadata.
 *
 * @param st Decoded safetensors holding `layers.{n}.weights` tensors.
 * @param source File name for error messages.
 * @returns The parts of the model; the caller checks the configuration's ranges.
 * @throws {TypeError} A missing or unexpected tensor, a wrong dtype or shape, bad metadata.
 * @throws {RangeError} A weight beyond ±256.
 *
 * @example A one-layer model without metadata takes the defaults
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeFloatModel } from "./float_io.ts";
 * import { decodeSafetensors, encodeSafetensors } from "./safetensors.ts";
 *
 * const w = new Float32Array(10 * 784).fill(0.25);
 * const st = decodeSafetensors(encodeSafetensors({
 *   "layers.2.weights": { dtype: "F32", shape: [10, 784], data: w },
 * }));
 * const m = decodeFloatModel(st, "f.safetensors");
 * assert.deepEqual(m.config.sizes, [784, 10]);
 * assert.equal(m.config.tsteps, 20);
 * assert.equal(m.weights[0][0], 2 ** 18);
 * ```
 */
export function decodeFloatModel(st: Safetensors, source: string): FloatModelParts {
  const meta = st.metadata;
  const found: { index: number; tensor: Tensor }[] = [];
  for (const [name, tensor] of st.tensors) {
    const m = NAME.exec(name);
    if (!m) {
      fail(
        source,
        `unexpected tensor ${name} (a float model holds only layers.{n}.weights, ` +
          `one per linear layer)`,
      );
    }
    found.push({ index: Number(m[1]), tensor });
  }
  if (found.length === 0) {
    fail(source, "no tensor layers.{n}.weights (a float model holds one per linear layer)");
  }
  found.sort((a, b) => a.index - b.index);
  if (found.length > MAX_LAYERS) {
    fail(source, `${found.length} linear layers (at most ${MAX_LAYERS})`);
  }
  for (let k = 1; k < found.length; k++) {
    if (found[k].index !== found[k - 1].index + 1) {
      fail(
        source,
        `tensor layers.${found[k - 1].index + 1}.weights is missing (found ${
          found[k - 1].tensor.name
        } and ${found[k].tensor.name}; linear layers need consecutive indices)`,
      );
    }
  }
  const sizes = [INPUTS];
  const dtypes = new Set<string>();
  for (let k = 0; k < found.length; k++) {
    const t = found[k].tensor;
    if (t.dtype !== "F32" && t.dtype !== "F16") {
      fail(source, `tensor ${t.name} is ${t.dtype} (expected F32 or F16)`);
    }
    dtypes.add(t.dtype);
    if (t.shape.length !== 2) {
      fail(source, `tensor ${t.name} has shape ${shapeText(t.shape)} (expected [out, in])`);
    }
    const [nOut, nIn] = t.shape;
    if (k === 0 && nIn !== INPUTS) {
      fail(
        source,
        `tensor ${t.name} has shape ${shapeText(t.shape)}: its input size ${nIn} must be ` +
          `${INPUTS} (28 × 28 pixels)`,
      );
    }
    if (k > 0 && nIn !== sizes[k]) {
      const prev = found[k - 1].tensor;
      fail(
        source,
        `tensor ${t.name} has shape ${shapeText(t.shape)}: its input size ${nIn} must equal ` +
          `the output size ${sizes[k]} of ${prev.name} ${shapeText(prev.shape)}`,
      );
    }
    if (nOut < 1) fail(source, `tensor ${t.name} has shape ${shapeText(t.shape)}: no neurons`);
    sizes.push(nOut);
  }
  const last = found[found.length - 1].tensor;
  if (sizes[sizes.length - 1] !== CLASSES) {
    fail(
      source,
      `tensor ${last.name} has shape ${shapeText(last.shape)}: the output layer must have ` +
        `${CLASSES} neurons (one per class)`,
    );
  }
  const floats: Float32Array[] = [];
  const weights: Int32Array[] = [];
  for (let k = 0; k < found.length; k++) {
    const t = found[k].tensor;
    const f = tensorToF32(t);
    floats.push(f);
    weights.push(floatToMaster(f, t.shape[1], t.name, source));
  }

  let dataset: FloatDataset = "mnist";
  if (meta.dataset !== undefined) {
    if (!Object.hasOwn(FLOAT_DEFAULTS, meta.dataset)) {
      fail(
        source,
        `metadata 'dataset' is ${JSON.stringify(meta.dataset)} (expected ${
          Object.keys(FLOAT_DEFAULTS).join(" or ")
        })`,
      );
    }
    dataset = meta.dataset as FloatDataset;
  }
  const d = FLOAT_DEFAULTS[dataset];
  const num = (key: string, fallback: number) => metaNumber(source, meta, key) ?? fallback;
  const config: NetConfig = {
    sizes,
    tsteps: num("tsteps", d.tsteps),
    threshold: num("mempot_thres", d.threshold),
    decay: num("mempot_decay", d.decay),
    margin: num("error_margin", d.margin),
    desireHid: num("desire_thres_lin", d.desireHid),
    desireOut: num("desire_thres_out", d.desireOut),
    dropIn: num("dropout_in", d.dropIn),
    dropHid: num("dropout_hid", d.dropHid),
  };
  let hyper: Record<string, unknown> = {};
  if (meta.hyper !== undefined) {
    try {
      hyper = JSON.parse(meta.hyper);
    } catch {
      fail(source, "metadata 'hyper' is not valid JSON");
    }
    if (typeof hyper !== "object" || hyper === null || Array.isArray(hyper)) {
      fail(source, "metadata 'hyper' is not a JSON object");
    }
  }
  return {
    config,
    seed: num("random_seed", 0),
    epoch: num("epoch", 0),
    dataset,
    hyper,
    trainAccuracy: metaNumber(source, meta, "train_accuracy"),
    testAccuracy: metaNumber(source, meta, "test_accuracy"),
    bestTestAccuracy: metaNumber(source, meta, "best_test_accuracy"),
    floats,
    weights,
    dtype: [...dtypes].sort().join("+"),
    names: found.map((f) => f.tensor.name),
  };
}

/**
 * Master weights (Q11.20) → float32 threshold units. Exact for |w| < 16 (|q| < 2^24); beyond,
 * float32 keeps 24 significant bits (an error of at most 2^-18 at |w| ≤ 256).
 *
 * @param w Master weights.
 * @returns `fround(w / 2^20)` per element.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { masterToF32 } from "./float_io.ts";
 *
 * assert.deepEqual(masterToF32(new Int32Array([2 ** 19, -3])), new Float32Array([0.5, -3 / 2 ** 20]));
 * ```
 */
export function masterToF32(w: Int32Array): Float32Array {
  const f = new Float32Array(w.length);
  for (let k = 0; k < w.length; k++) f[k] = w[k] / 2 ** MASTER_FRAC;
  return f;
}

function roundHalfEven(y: number): number {
  const r = Math.round(y);
  return r - y === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * The IEEE binary16 bits nearest to `x` (round half to even; overflow to ±∞; NaN → 0x7e00).
 *
 * @param x Any number.
 * @returns The half-precision bit pattern.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { numberToHalf } from "./float_io.ts";
 *
 * assert.equal(numberToHalf(1), 0x3c00);
 * assert.equal(numberToHalf(-2), 0xc000);
 * assert.equal(numberToHalf(65520), 0x7c00);
 * assert.equal(numberToHalf(2 ** -24), 0x0001);
 * ```
 */
export function numberToHalf(x: number): number {
  if (Number.isNaN(x)) return 0x7e00;
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const a = Math.abs(x);
  if (a >= 65520) return sign | 0x7c00;
  if (a < 2 ** -14) return sign | roundHalfEven(a * 2 ** 24); // subnormal (1024 = smallest normal)
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e--;
  if (2 ** (e + 1) <= a) e++;
  let m = roundHalfEven(a * 2 ** (10 - e));
  if (m === 2048) {
    m = 1024;
    e++;
  }
  if (e > 15) return sign | 0x7c00;
  return sign | ((e + 15) << 10) | (m - 1024);
}

/**
 * Master weights (Q11.20) → binary16 bits of w / 2^20 (about 3 significant digits).
 *
 * @param w Master weights.
 * @returns Half-precision bit patterns.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { masterToF16 } from "./float_io.ts";
 *
 * assert.deepEqual(masterToF16(new Int32Array([2 ** 20, -(2 ** 21)])), new Uint16Array([0x3c00, 0xc000]));
 * ```
 */
export function masterToF16(w: Int32Array): Uint16Array {
  const h = new Uint16Array(w.length);
  for (let k = 0; k < w.length; k++) h[k] = numberToHalf(w[k] / 2 ** MASTER_FRAC);
  return h;
}

/** Float dtypes {@linkcode encodeFloatModel} writes. */
export type FloatDtype = "F32" | "F16";

/**
 * The metadata of a float model: the hyper-parameters under the authors' argument names.
 *
 * @param info Configuration and run metadata.
 * @returns String metadata (see the module documentation for the keys).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { floatMetadata } from "./float_io.ts";
 *
 * const config = {
 *   sizes: [784, 10], tsteps: 20, threshold: 1, decay: 2, margin: 4,
 *   desireHid: 0.05, desireOut: 0.3, dropIn: 0, dropHid: 0.3,
 * };
 * const meta = floatMetadata({ config, seed: 3, epoch: 1, dataset: "mnist", hyper: {} });
 * assert.equal(meta.mempot_thres, "1");
 * assert.equal(meta.neurons, "784-10");
 * ```
 */
export function floatMetadata(info: ModelInfo): Record<string, string> {
  const c = info.config;
  const meta: Record<string, string> = {
    format: FLOAT_FORMAT,
    format_version: String(FLOAT_FORMAT_VERSION),
    neurons: c.sizes.join("-"),
    tsteps: String(c.tsteps),
    mempot_thres: String(c.threshold),
    mempot_decay: String(c.decay),
    error_margin: String(c.margin),
    desire_thres_lin: String(c.desireHid),
    desire_thres_out: String(c.desireOut),
    dropout_in: String(c.dropIn),
    dropout_hid: String(c.dropHid),
    dataset: info.dataset,
    random_seed: String(info.seed),
    epoch: String(info.epoch),
    hyper: JSON.stringify(info.hyper),
  };
  if (info.trainAccuracy !== undefined) meta.train_accuracy = String(info.trainAccuracy);
  if (info.testAccuracy !== undefined) meta.test_accuracy = String(info.testAccuracy);
  if (info.bestTestAccuracy !== undefined) meta.best_test_accuracy = String(info.bestTestAccuracy);
  return meta;
}

/**
 * Encodes master weights as a float model: `layers.{k + 2}.weights`, [out, in], F32 or F16,
 * plus the metadata of {@linkcode floatMetadata}.
 *
 * @param info Configuration and run metadata.
 * @param weights Master weights per linear layer (out × in, Q11.20).
 * @param dtype `F32` (default; exact for |w| < 16) or `F16` (half the size, ~3 digits).
 * @returns The file's bytes.
 *
 * @example Round trip through a float file
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeFloatModel, encodeFloatModel } from "./float_io.ts";
 * import { decodeSafetensors } from "./safetensors.ts";
 *
 * const config = {
 *   sizes: [784, 10], tsteps: 20, threshold: 1, decay: 2, margin: 4,
 *   desireHid: 0.05, desireOut: 0.3, dropIn: 0, dropHid: 0.3,
 * };
 * const w = new Int32Array(7840).map((_, i) => i * 97 - 300000);
 * const bytes = encodeFloatModel({ config, seed: 0, epoch: 2, dataset: "mnist", hyper: {} }, [w]);
 * const back = decodeFloatModel(decodeSafetensors(bytes), "x");
 * assert.deepEqual(back.weights[0], w);
 * assert.equal(back.epoch, 2);
 * ```
 */
export function encodeFloatModel(
  info: ModelInfo,
  weights: Int32Array[],
  dtype: FloatDtype = "F32",
): Uint8Array {
  const s = info.config.sizes;
  const tensors: Record<string, { dtype: FloatDtype; shape: number[]; data: ArrayBufferView }> = {};
  for (let k = 0; k < weights.length; k++) {
    tensors[floatTensorName(k)] = {
      dtype,
      shape: [s[k + 1], s[k]],
      data: dtype === "F32" ? masterToF32(weights[k]) : masterToF16(weights[k]),
    };
  }
  return encodeSafetensors(tensors, floatMetadata(info));
}
