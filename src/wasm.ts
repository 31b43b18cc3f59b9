/**
 * Loads desire.wasm and writes a network's configuration block into it (internal).
 *
 * The block's layout is fixed by assembly/layout.ts; this file is its only other writer.
 *
 * @module
 */
import type { IntParams } from "./params.ts";

/** The exports of desire.wasm (see assembly/index.ts for one line on each). */
export interface DesireExports {
  memory: WebAssembly.Memory;
  abiVersion(): number;
  configPtr(): number;
  init(): number;
  imagePtr(): number;
  wordsPtr(l: number): number;
  keepPtr(l: number): number;
  weightsPtr(l: number): number;
  forwardWeightsPtr(l: number): number;
  desirePtr(l: number): number;
  countsPtr(): number;
  memoryEnd(): number;
  syncForward(l: number): number;
  saturations(): number;
  resetSaturations(): void;
  beginSample(epoch: number, index: number): void;
  encode(train: number): number;
  forwardLayer(l: number, train: number): number;
  predict(): number;
  desireOutput(label: number): number;
  backwardLayer(l: number): number;
  updateLayer(l: number): number;
  trainSample(label: number, epoch: number, index: number): number;
  inferSample(): number;
}

/** ABI version this module expects. */
export const ABI_VERSION = 1;

/** Configuration block word indices (assembly/layout.ts). */
export const CFG = {
  T: 0,
  D: 1,
  N: 2,
  L: 3,
  SEED: 4,
  LR_MANT: 5,
  LR_SHIFT: 6,
  SAT: 7,
  SIZES: 8,
  F: 24,
  THR_TRAIN: 40,
  THR_EVAL: 56,
  THR_HID: 72,
  DROP: 88,
  OUT_DN_BYTE: 512,
  OUT_DT_BYTE: 576,
  ENC_BYTE: 1024,
} as const;

let cachedModule: WebAssembly.Module | undefined;

/** URL of the committed module. */
export const WASM_URL: URL = new URL("../desire.wasm", import.meta.url);

/** Compiles desire.wasm once per process. */
export async function wasmModule(): Promise<WebAssembly.Module> {
  if (!cachedModule) {
    const bytes = WASM_URL.protocol === "file:"
      ? await Deno.readFile(WASM_URL)
      : new Uint8Array(await (await fetch(WASM_URL)).arrayBuffer());
    cachedModule = await WebAssembly.compile(bytes);
  }
  return cachedModule;
}

/** A fresh instance of desire.wasm (its own memory). */
export async function instantiate(): Promise<DesireExports> {
  const instance = await WebAssembly.instantiate(await wasmModule(), {
    env: {
      abort(_msg: number, _file: number, line: number, col: number): never {
        throw new Error(`desire.wasm aborted at ${line}:${col}`);
      },
    },
  });
  const ex = instance.exports as unknown as DesireExports;
  if (ex.abiVersion() !== ABI_VERSION) {
    throw new TypeError(
      `Cannot load desire.wasm: ABI version ${ex.abiVersion()} (expected ${ABI_VERSION})`,
    );
  }
  return ex;
}

/** Writes the configuration block of `p` (seed included) and calls init(). */
export function configure(ex: DesireExports, p: IntParams, seed: number): void {
  const base = ex.configPtr();
  const mem = new Uint8Array(ex.memory.buffer);
  mem.fill(0, base, base + 2048);
  const w = new Int32Array(ex.memory.buffer, base, 512);
  w[CFG.T] = p.T;
  w[CFG.D] = p.d;
  w[CFG.N] = p.n;
  w[CFG.L] = p.L;
  w[CFG.SEED] = seed | 0;
  for (let l = 0; l <= p.L; l++) {
    w[CFG.SIZES + l] = p.sizes[l];
    w[CFG.DROP + l] = p.drop[l] | 0;
    if (l >= 1) {
      w[CFG.F + l] = p.frac[l];
      w[CFG.THR_TRAIN + l] = p.thrTrain[l];
      w[CFG.THR_EVAL + l] = p.thrEval[l];
      w[CFG.THR_HID + l] = p.thrHid[l];
    }
  }
  mem.set(p.outDN, base + CFG.OUT_DN_BYTE);
  mem.set(p.outDT, base + CFG.OUT_DT_BYTE);
  new Uint32Array(ex.memory.buffer, base + CFG.ENC_BYTE, 256).set(p.enc);
  const rc = ex.init();
  if (rc !== 0) {
    const what = [
      "",
      "tsteps",
      "decay",
      "target count",
      "layer count",
      "layer size",
      "fraction bits",
      "threshold",
      "memory (the network needs more than 4 GiB)",
    ][-rc] ?? "unknown";
    throw new RangeError(`Cannot build network: init() failed with code ${rc} (${what})`);
  }
}

/** Sets the learning rate (mantissa and shift, see params.ts fixedRate). */
export function setRate(ex: DesireExports, mant: number, shift: number): void {
  const w = new Int32Array(ex.memory.buffer, ex.configPtr(), 16);
  w[CFG.LR_MANT] = mant;
  w[CFG.LR_SHIFT] = shift;
}
