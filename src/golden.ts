/**
 * Test helper (internal): loads the golden vectors produced by the authors' PyTorch code,
 * `/work/shared/golden/reference-steps.safetensors` (see its README for every tensor).
 *
 * @module
 */

import type { FloatConfig } from "./float_model.ts";
import {
  decodeSafetensors,
  type Tensor,
  tensorToF32,
  tensorToF64,
  tensorToI32,
  tensorToU8,
} from "./safetensors.ts";

/** Default location of the golden file: `../../shared/golden/` relative to `src/`. */
export const GOLDEN_URL: URL = new URL(
  "../../shared/golden/reference-steps.safetensors",
  import.meta.url,
);

/** The settings stored as JSON in the golden file's `__metadata__.hyper`. */
export interface GoldenHyper {
  tsteps: number;
  mempot_thres: number;
  mempot_decay: number;
  error_margin: number;
  desire_thres: { lin: number; out: number };
  dropout: { in: number; hid: number };
  lr_lin: number;
  epoch: number;
  layers: number[];
  train_samples: number[];
  eval_samples: number[];
  dataset: string;
}

/** The decoded golden file: settings and typed accessors by tensor name. */
export interface Golden {
  /** Settings from `__metadata__.hyper`. */
  hyper: GoldenHyper;
  /** Every tensor by name. */
  tensors: Map<string, Tensor>;
  /** Shape of a tensor. */
  shape(name: string): number[];
  /** A U8 tensor as a fresh `Uint8Array`. */
  u8(name: string): Uint8Array;
  /** An I32 tensor as a fresh `Int32Array`. */
  i32(name: string): Int32Array;
  /** An F32 tensor as a fresh `Float32Array`. */
  f32(name: string): Float32Array;
  /** An F64 tensor as a fresh `Float64Array`. */
  f64(name: string): Float64Array;
}

/**
 * Reads and decodes the golden file.
 *
 * @param path The file (default {@linkcode GOLDEN_URL}).
 * @returns The settings and typed accessors; accessors throw `RangeError` for a missing name.
 *
 * @example Loading the golden file
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { loadGolden } from "./golden.ts";
 *
 * const golden = await loadGolden();
 * deepStrictEqual(golden.hyper.layers, [784, 32, 16, 10]);
 * deepStrictEqual(golden.shape("init.w0"), [32, 784]);
 * ```
 */
export async function loadGolden(path: string | URL = GOLDEN_URL): Promise<Golden> {
  const source = path instanceof URL ? path.pathname : path;
  const { tensors, metadata } = decodeSafetensors(await Deno.readFile(path), source);
  if (typeof metadata.hyper !== "string") {
    throw new TypeError(`Cannot load ${source}: __metadata__ has no "hyper" entry`);
  }
  const hyper = JSON.parse(metadata.hyper) as GoldenHyper;
  const get = (name: string): Tensor => {
    const t = tensors.get(name);
    if (t === undefined) {
      throw new RangeError(`Cannot read golden tensor ${JSON.stringify(name)}: not in ${source}`);
    }
    return t;
  };
  return {
    hyper,
    tensors,
    shape: (name) => get(name).shape.slice(),
    u8: (name) => tensorToU8(get(name)),
    i32: (name) => tensorToI32(get(name)),
    f32: (name) => tensorToF32(get(name)),
    f64: (name) => tensorToF64(get(name)),
  };
}

/**
 * The {@linkcode FloatConfig} that the golden file's settings describe.
 *
 * @param hyper Settings from {@linkcode loadGolden}.
 * @returns The float model configuration.
 *
 * @example Golden configuration
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { goldenFloatConfig, loadGolden } from "./golden.ts";
 *
 * const config = goldenFloatConfig((await loadGolden()).hyper);
 * deepStrictEqual(config.tsteps, 20);
 * ```
 */
export function goldenFloatConfig(hyper: GoldenHyper): FloatConfig {
  return {
    sizes: hyper.layers.slice(),
    tsteps: hyper.tsteps,
    threshold: hyper.mempot_thres,
    decay: hyper.mempot_decay,
    margin: hyper.error_margin,
    desireHid: hyper.desire_thres.lin,
    desireOut: hyper.desire_thres.out,
    dropIn: hyper.dropout.in,
    dropHid: hyper.dropout.hid,
  };
}
