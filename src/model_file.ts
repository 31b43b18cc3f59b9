/**
 * Model files: safetensors with the master weights and the run's metadata.
 *
 * Tensors: `linear.{k}.weight`, I32 [out, in], the master weights of linear layer k (k = 0 is
 * the first hidden layer) in Q11.20 fixed point (value / 2^20 = weight in threshold units).
 * `__metadata__` (string values, JSON-encoded where structured): `format` ("desire-model"),
 * `format_version`, `abi_version`, `config` (the network's hyper-parameters), `hyper` (the
 * training flags), `seed`, `epoch` (epochs completed), `dataset`, `train_accuracy`,
 * `test_accuracy`, `best_test_accuracy`.
 *
 * Saving writes a temporary file in the same directory and renames it over the target, so an
 * interrupted save never leaves a half-written model.
 *
 * Reading also accepts two other kinds of file, detected from their contents:
 * - a **float model** (tensors `layers.{n}.weights`, F32 or F16, as in the authors' PyTorch state
 *   dict; see `float_io.ts`): converted to Q11.20, hyper-parameters from its metadata or defaults;
 * - a **compact model** (`format` = `desire-compact`; see `compact.ts`): `linear.{k}.weight` I16
 *   or I8 with a per-layer scale in the metadata key `scales` (JSON list, threshold units per
 *   step); the master weights are rebuilt as round(q · scale · 2^20). Such a model is inference
 *   only ({@linkcode Model.inferenceOnly}; {@linkcode assertTrainable} refuses it).
 *
 * @module
 */
import {
  decodeSafetensors,
  encodeSafetensors,
  type Safetensors,
  tensorToArray,
  tensorToI32,
} from "./safetensors.ts";
import { MAX_LAYERS, type NetConfig, toMaster } from "./params.ts";
import { ABI_VERSION } from "./wasm.ts";
import { decodeFloatModel, isFloatModel } from "./float_io.ts";

/** Format name in the metadata. */
export const MODEL_FORMAT = "desire-model";
/** Format version written and read. */
export const MODEL_FORMAT_VERSION = 1;
/** Format name of a compact (inference-only, I16/I8 weights) model. */
export const COMPACT_FORMAT = "desire-compact";
/** Compact format version written and read. */
export const COMPACT_FORMAT_VERSION = 1;

/** What a model file holds besides the weights. */
export interface ModelInfo {
  /** Network hyper-parameters. */
  config: NetConfig;
  /** Run seed. */
  seed: number;
  /** Epochs completed. */
  epoch: number;
  /** Dataset the model was trained on. */
  dataset: string;
  /** Training flags (free-form). */
  hyper: Record<string, unknown>;
  /** Train accuracy of the last epoch (fraction), if known. */
  trainAccuracy?: number;
  /** Test accuracy after the last epoch (fraction), if known. */
  testAccuracy?: number;
  /** Best test accuracy so far (fraction), if known. */
  bestTestAccuracy?: number;
}

/** A loaded model: its info and master weights (out × in per linear layer, Q11.20). */
export interface Model extends ModelInfo {
  /** Master weights per linear layer. */
  weights: Int32Array[];
  /**
   * How the file stored the weights: `Q11.20` (a model file), `F32`/`F16` (a float model) or
   * `I16`/`I8` (a compact model). Absent means `Q11.20`.
   */
  weightFormat?: string;
  /** True for a compact model: its weights were quantized, so training from it is refused. */
  inferenceOnly?: boolean;
}

/**
 * Refuses to train from an inference-only (compact) model.
 *
 * @param model A loaded model.
 * @param path Its file, for the message.
 * @throws {TypeError} The model is inference only.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { assertTrainable, type Model } from "./model_file.ts";
 *
 * const m = { inferenceOnly: true, weightFormat: "I8" } as Model;
 * assert.throws(() => assertTrainable(m, "c.safetensors"), /Cannot train from c.safetensors/);
 * ```
 */
export function assertTrainable(model: Model, path: string): void {
  if (model.inferenceOnly) {
    throw new TypeError(
      `Cannot train from ${path}: it is a compact ${
        model.weightFormat ?? ""
      } model for inference only (its weights were quantized); ` +
        `train from the full model it was exported from`,
    );
  }
}

/**
 * The metadata every model file carries (`format`, versions, `config`, `hyper`, run fields).
 *
 * @param info Configuration and run metadata.
 * @param format Format name and version, and the weight format.
 * @returns String metadata.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { modelMetadata } from "./model_file.ts";
 *
 * const config = {
 *   sizes: [4, 2], tsteps: 20, threshold: 1, decay: 2, margin: 4,
 *   desireHid: 0.05, desireOut: 0.3, dropIn: 0, dropHid: 0.3,
 * };
 * const meta = modelMetadata({ config, seed: 1, epoch: 0, dataset: "mnist", hyper: {} });
 * assert.equal(meta.weight_format, "Q11.20");
 * ```
 */
export function modelMetadata(
  info: ModelInfo,
  format: { name: string; version: number; weightFormat: string } = {
    name: MODEL_FORMAT,
    version: MODEL_FORMAT_VERSION,
    weightFormat: "Q11.20",
  },
): Record<string, string> {
  const meta: Record<string, string> = {
    format: format.name,
    format_version: String(format.version),
    abi_version: String(ABI_VERSION),
    weight_format: format.weightFormat,
    config: JSON.stringify(info.config),
    hyper: JSON.stringify(info.hyper),
    seed: String(info.seed),
    epoch: String(info.epoch),
    dataset: info.dataset,
  };
  if (info.trainAccuracy !== undefined) meta.train_accuracy = String(info.trainAccuracy);
  if (info.testAccuracy !== undefined) meta.test_accuracy = String(info.testAccuracy);
  if (info.bestTestAccuracy !== undefined) meta.best_test_accuracy = String(info.bestTestAccuracy);
  return meta;
}

/**
 * Encodes a model as safetensors bytes.
 *
 * @param info Configuration and run metadata.
 * @param weights Master weights per linear layer (out × in, Q11.20).
 * @param extra More string metadata (e.g. a checkpoint's run state); it may override keys.
 * @returns The file's bytes.
 *
 * @example Round trip
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeModel, encodeModel } from "./model_file.ts";
 *
 * const config = {
 *   sizes: [4, 3, 2], tsteps: 20, threshold: 1, decay: 2, margin: 4,
 *   desireHid: 0.05, desireOut: 0.3, dropIn: 0, dropHid: 0.3,
 * };
 * const weights = [new Int32Array(12).fill(1 << 19), new Int32Array(6).fill(-3)];
 * const bytes = encodeModel({ config, seed: 7, epoch: 2, dataset: "mnist", hyper: {} }, weights);
 * const m = decodeModel(bytes, "x.safetensors");
 * assert.equal(m.seed, 7);
 * assert.deepEqual(m.weights[1], weights[1]);
 * ```
 */
export function encodeModel(
  info: ModelInfo,
  weights: Int32Array[],
  extra: Record<string, string> = {},
): Uint8Array {
  const tensors: Record<string, { dtype: "I32"; shape: number[]; data: Int32Array }> = {};
  const s = info.config.sizes;
  for (let k = 0; k < weights.length; k++) {
    tensors[`linear.${k}.weight`] = { dtype: "I32", shape: [s[k + 1], s[k]], data: weights[k] };
  }
  return encodeSafetensors(tensors, { ...modelMetadata(info), ...extra });
}

/** Writes `bytes` to `path` atomically: a temporary file in the same directory, then a rename. */
export async function writeFileAtomic(path: string, bytes: Uint8Array): Promise<void> {
  const tmp = `${path}.tmp-${Deno.pid}`;
  try {
    await Deno.writeFile(tmp, bytes);
    await Deno.rename(tmp, path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
}

/**
 * Saves a model atomically (temporary file, then rename).
 *
 * @param path Target file.
 * @param info Configuration and run metadata.
 * @param weights Master weights per linear layer (out × in, Q11.20).
 *
 * @example Save and load
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadModel, saveModel } from "./model_file.ts";
 *
 * const config = {
 *   sizes: [4, 2], tsteps: 20, threshold: 1, decay: 2, margin: 4,
 *   desireHid: 0.05, desireOut: 0.3, dropIn: 0, dropHid: 0.3,
 * };
 * const path = await Deno.makeTempFile({ suffix: ".safetensors" });
 * await saveModel(path, { config, seed: 1, epoch: 1, dataset: "mnist", hyper: {} }, [new Int32Array(8)]);
 * assert.equal((await loadModel(path)).config.sizes.join("-"), "4-2");
 * await Deno.remove(path);
 * ```
 */
export async function saveModel(path: string, info: ModelInfo, weights: Int32Array[]) {
  await writeFileAtomic(path, encodeModel(info, weights));
}

function fail(source: string, what: string): never {
  throw new TypeError(`Cannot load model ${source}: ${what}`);
}

function checkConfig(source: string, c: unknown): NetConfig {
  if (typeof c !== "object" || c === null) fail(source, "metadata 'config' is not an object");
  const o = c as Record<string, unknown>;
  const num = (k: string) => {
    const v = o[k];
    if (typeof v !== "number" || !Number.isFinite(v)) {
      fail(source, `metadata 'config.${k}' is not a finite number`);
    }
    return v;
  };
  const sizes = o.sizes;
  if (
    !Array.isArray(sizes) || sizes.length < 2 || sizes.length > MAX_LAYERS + 1 ||
    !sizes.every((x) => Number.isInteger(x) && x >= 1 && x <= 2 ** 28)
  ) {
    fail(source, "metadata 'config.sizes' is not a list of 2 to 16 positive layer sizes");
  }
  const cfg: NetConfig = {
    sizes: sizes as number[],
    tsteps: num("tsteps"),
    threshold: num("threshold"),
    decay: num("decay"),
    margin: num("margin"),
    desireHid: num("desireHid"),
    desireOut: num("desireOut"),
    dropIn: num("dropIn"),
    dropHid: num("dropHid"),
  };
  if (!Number.isInteger(cfg.tsteps) || cfg.tsteps < 1 || cfg.tsteps > 32) {
    fail(source, `config.tsteps ${cfg.tsteps} is not in 1..32`);
  }
  if (!Number.isInteger(cfg.decay) || cfg.decay < 0 || cfg.decay > 30) {
    fail(source, `config.decay ${cfg.decay} is not in 0..30`);
  }
  if (!Number.isInteger(cfg.margin) || cfg.margin < 0 || cfg.margin >= cfg.tsteps) {
    fail(source, `config.margin ${cfg.margin} is not in 0..tsteps−1`);
  }
  if (!(cfg.threshold > 0 && cfg.threshold <= 64)) {
    fail(source, `config.threshold ${cfg.threshold} is not in (0, 64]`);
  }
  for (const k of ["dropIn", "dropHid"] as const) {
    if (!(cfg[k] >= 0 && cfg[k] < 1)) fail(source, `config.${k} ${cfg[k]} is not in [0, 1)`);
  }
  return cfg;
}

function optNumber(source: string, meta: Record<string, string>, key: string): number | undefined {
  if (meta[key] === undefined) return undefined;
  const v = Number(meta[key]);
  if (!Number.isFinite(v)) fail(source, `metadata '${key}' is not a number: ${meta[key]}`);
  return v;
}

/**
 * Decodes and checks a model file's bytes.
 *
 * @param bytes The file's bytes.
 * @param source The file's name, for error messages.
 * @param options `checkRange: false` skips the ±2^28 check of I32 weights (for callers that build a
 *   Network from them: the module counts such weights and Network.create refuses them).
 * @returns The model.
 *
 * @example A file that is not a model
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeModel } from "./model_file.ts";
 *
 * assert.throws(() => decodeModel(new Uint8Array(4), "m.safetensors"), /Cannot load m.safetensors/);
 * ```
 */
export function decodeModel(
  bytes: Uint8Array,
  source: string,
  options: { checkRange?: boolean } = {},
): Model {
  const st = decodeSafetensors(bytes, source);
  const meta = st.metadata;
  if (meta.format !== MODEL_FORMAT && meta.format !== COMPACT_FORMAT && isFloatModel(st)) {
    return decodeFloat(st, source);
  }
  if (meta.format === COMPACT_FORMAT) return decodeCompact(st, source);
  if (meta.format !== MODEL_FORMAT) {
    fail(
      source,
      `metadata 'format' is ${JSON.stringify(meta.format)} (expected "${MODEL_FORMAT}", ` +
        `"${COMPACT_FORMAT}", or float weights named layers.{n}.weights)`,
    );
  }
  const info = decodeInfo(source, meta, MODEL_FORMAT_VERSION);
  const config = info.config;
  const L = config.sizes.length - 1;
  const weights: Int32Array[] = [];
  for (let k = 0; k < L; k++) {
    const name = `linear.${k}.weight`;
    const t = st.tensors.get(name);
    if (!t) fail(source, `tensor ${name} is missing`);
    const want = [config.sizes[k + 1], config.sizes[k]];
    if (
      t.dtype !== "I32" || t.shape.length !== 2 || t.shape[0] !== want[0] || t.shape[1] !== want[1]
    ) {
      fail(
        source,
        `tensor ${name} is ${t.dtype} [${t.shape}] (expected I32 [${want}] for the network ${
          config.sizes.join("-")
        })`,
      );
    }
    // A view of the file's bytes when they are aligned (no copy: faster cold starts).
    const w = t.bytes.byteOffset % 4 === 0
      ? new Int32Array(t.bytes.buffer, t.bytes.byteOffset, t.bytes.byteLength / 4)
      : tensorToI32(t);
    // The range check is a long loop on a cold start; a caller that hands the weights to the
    // module (importWeights counts out-of-range weights and Network refuses them) may skip it.
    const lim = 268435456; // 2^28
    for (let q = 0; options.checkRange !== false && q < w.length; q++) {
      if ((w[q] + lim) >>> 0 > 2 * lim) {
        fail(
          source,
          `tensor ${name} has weight ${w[q]} at index ${q} (|w| must be ≤ 2^28 in Q11.20)`,
        );
      }
    }
    weights.push(w);
  }
  checkNoExtraTensors(source, st, L);
  return { ...info, weights };
}

/** The metadata shared by model and compact files: format version, config, run fields. */
function decodeInfo(source: string, meta: Record<string, string>, version: number): ModelInfo {
  if (meta.format_version !== String(version)) {
    fail(
      source,
      `format version ${meta.format_version} is not supported (this version reads ${version})`,
    );
  }
  let config: NetConfig, hyper: Record<string, unknown>;
  try {
    config = JSON.parse(meta.config ?? "null");
    hyper = JSON.parse(meta.hyper ?? "{}");
  } catch {
    fail(source, "metadata 'config' or 'hyper' is not valid JSON");
  }
  config = checkConfig(source, config);
  return {
    config,
    seed: optNumber(source, meta, "seed") ?? 0,
    epoch: optNumber(source, meta, "epoch") ?? 0,
    hyper,
    dataset: meta.dataset ?? "mnist",
    trainAccuracy: optNumber(source, meta, "train_accuracy"),
    testAccuracy: optNumber(source, meta, "test_accuracy"),
    bestTestAccuracy: optNumber(source, meta, "best_test_accuracy"),
  };
}

function checkNoExtraTensors(source: string, st: Safetensors, L: number): void {
  for (const name of st.tensors.keys()) {
    const m = /^linear\.(\d+)\.weight$/.exec(name);
    if (!m || Number(m[1]) >= L) fail(source, `unexpected tensor ${name}`);
  }
}

/** A float model (authors' naming): see `float_io.ts`. */
function decodeFloat(st: Safetensors, source: string): Model {
  const f = decodeFloatModel(st, source);
  return {
    config: checkConfig(source, f.config),
    seed: f.seed,
    epoch: f.epoch,
    dataset: f.dataset,
    hyper: f.hyper,
    trainAccuracy: f.trainAccuracy,
    testAccuracy: f.testAccuracy,
    bestTestAccuracy: f.bestTestAccuracy,
    weights: f.weights,
    weightFormat: f.dtype,
  };
}

/** A compact model: I16/I8 weights and per-layer scales, rebuilt as master weights. */
function decodeCompact(st: Safetensors, source: string): Model {
  const meta = st.metadata;
  const info = decodeInfo(source, meta, COMPACT_FORMAT_VERSION);
  const dtype = meta.weight_format;
  if (dtype !== "I16" && dtype !== "I8") {
    fail(source, `metadata 'weight_format' is ${JSON.stringify(dtype)} (expected "I16" or "I8")`);
  }
  const L = info.config.sizes.length - 1;
  let scales: unknown;
  try {
    scales = JSON.parse(meta.scales ?? "null");
  } catch {
    fail(source, "metadata 'scales' is not valid JSON");
  }
  if (
    !Array.isArray(scales) || scales.length !== L ||
    !scales.every((x) => typeof x === "number" && Number.isFinite(x) && x > 0)
  ) {
    fail(source, `metadata 'scales' is not a list of ${L} positive numbers`);
  }
  const qmax = dtype === "I16" ? 32767 : 127;
  const weights: Int32Array[] = [];
  for (let k = 0; k < L; k++) {
    const name = `linear.${k}.weight`;
    const t = st.tensors.get(name);
    if (!t) fail(source, `tensor ${name} is missing`);
    const want = [info.config.sizes[k + 1], info.config.sizes[k]];
    if (
      t.dtype !== dtype || t.shape.length !== 2 || t.shape[0] !== want[0] ||
      t.shape[1] !== want[1]
    ) {
      fail(
        source,
        `tensor ${name} is ${t.dtype} [${t.shape}] (expected ${dtype} [${want}] for the network ${
          info.config.sizes.join("-")
        })`,
      );
    }
    const scale = scales[k] as number;
    if (scale * qmax > 256 * (1 + 1e-9)) {
      fail(source, `metadata 'scales' entry ${k} = ${scale} exceeds 256 / ${qmax}`);
    }
    const q = tensorToArray(t) as Int16Array | Int8Array;
    const w = new Int32Array(q.length);
    for (let i = 0; i < q.length; i++) w[i] = toMaster(q[i] * scale);
    weights.push(w);
  }
  checkNoExtraTensors(source, st, L);
  return { ...info, weights, weightFormat: dtype, inferenceOnly: true };
}

/**
 * Reads and checks a model file.
 *
 * @param path The file.
 * @returns The model; throws `Deno.errors.NotFound` or `TypeError`/`RangeError` naming the file.
 *
 * @example A missing file
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadModel } from "./model_file.ts";
 *
 * await assert.rejects(loadModel("no-such.safetensors"), /Cannot load model no-such.safetensors: no such file/);
 * ```
 */
export async function loadModel(path: string): Promise<Model> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new Deno.errors.NotFound(`Cannot load model ${path}: no such file`);
    }
    throw e;
  }
  return decodeModel(bytes, path);
}
