// The ABI of desire.wasm: every export in one place.
//
// A host (1) writes the configuration block at configPtr() (layout in layout.ts; the Deno
// module's src/params.ts derives it), (2) calls init(), (3) writes master weights (Q11.20 i32,
// row i = input i, stride P_l) at weightsPtr(l) and calls syncForward(l) (or writes them out × in
// at importPtr(l) and calls importWeights(l): the only way for the threaded build with more than
// one thread, whose hidden layers' matrices are in panels, see layout.ts), then (4) per sample
// writes the image (u8[N0]) at imagePtr() and calls trainSample() or inferSample().
// Exports take and return only i32/u32 scalars and offsets into this module's memory.
// Imports: none but env.abort (unused in the release build).

import {
  CFG_L, CFG_SAT, CFG_SHAPE_HASH, CFG_STATUS, CFG_THREADS, panels, shapeHash, scratch, size, stride,
  totalSaturations, clearSaturations, inferOnly, LAY_STAGE, LAY_COUNTS, LAY_DESIRE, LAY_END, LAY_FWD, LAY_IMAGE, LAY_KEEP,
  LAY_MASTER, LAY_WORDS, cfg, cfgBase, lay, setCfg,
} from "./layout";
import { initLayout } from "./net";
import { dropoutMasks, encodeInput } from "./encode";
import { forwardLayerSimd, outputCounts } from "./forward";
import { backwardLayerSimd, outputDesire } from "./desire";
import { importWeightsLayer, syncForwardLayer, updateLayerSimd } from "./stdp";
import { runStep, sampleStep, workerMain } from "./threads";
import { setSampleKey } from "./rng";

/** Version of this ABI; changes whenever an export or the configuration layout changes. */
export function abiVersion(): i32 {
  return 1;
}

/** Offset of the configuration block the host fills before init(). */
export function configPtr(): usize {
  return cfgBase();
}

/** Lays the network out from the configuration block; 0 on success or a negative error code. */
export function init(): i32 {
  return initLayout();
}

// @ts-ignore: decorator
@inline function ready(): bool {
  return cfg(CFG_STATUS) == 1 && cfg(CFG_SHAPE_HASH) == shapeHash();
}
// @ts-ignore: decorator
@inline function layerOk(l: i32, first: i32): bool {
  return ready() && l >= first && l <= cfg(CFG_L);
}

/** Offset of the input image, u8[N0]; 0 before init(). */
export function imagePtr(): usize {
  return ready() ? lay(LAY_IMAGE) : 0;
}
/** Offset of layer l's spike words, u32[P_l] (l = 0 is the input layer); 0 if l is out of range. */
export function wordsPtr(l: i32): usize {
  return layerOk(l, 0) ? lay(LAY_WORDS + l) : 0;
}
/** Offset of layer l's keep mask, i32[P_l] (−1 kept, 0 dropped); 0 if l is out of range. */
export function keepPtr(l: i32): usize {
  return layerOk(l, 0) ? lay(LAY_KEEP + l) : 0;
}
/** Offset of linear layer l's master weights, i32[N_{l−1} × P_l] Q11.20; 0 if l is out of range. */
export function weightsPtr(l: i32): usize {
  return layerOk(l, 1) ? lay(LAY_MASTER + l) : 0;
}
/** Offset of linear layer l's forward weights, i32[N_{l−1} × P_l] Q.F_l; 0 if l is out of range. */
export function forwardWeightsPtr(l: i32): usize {
  return layerOk(l, 1) ? lay(LAY_FWD + l) : 0;
}
/** Offset of layer l's desire, i32[P_l] (bit 0 desired, bit 1 direction); 0 if out of range. */
export function desirePtr(l: i32): usize {
  return layerOk(l, 1) ? lay(LAY_DESIRE + l) : 0;
}
/** Offset of the output spike counts, i32[N_L]; 0 before init(). */
export function countsPtr(): usize {
  return ready() ? lay(LAY_COUNTS) : 0;
}
/** Bytes of memory in use after init() (end of the layout). */
export function memoryEnd(): usize {
  return ready() ? lay(LAY_END) : 0;
}

/** Clamps linear layer l's master weights and rewrites its forward copy; 0, or −1 if l is bad. */
export function syncForward(l: i32): i32 {
  if (!layerOk(l, 1) || inferOnly()) return -1;
  syncForwardLayer(l);
  return 0;
}

/**
 * Where the host writes linear layer l's weights for importWeights(l), in model-file order
 * (out × in, dense, Q11.20): fwd[l] normally, one staging buffer (reused for every layer) in an
 * inference-only layout. 0 if l is out of range or before init.
 */
export function importPtr(l: i32): usize {
  if (!layerOk(l, 1)) return 0;
  return inferOnly() ? lay(LAY_STAGE) : lay(LAY_FWD + l);
}

/**
 * Loads linear layer l's master weights written by the host at importPtr(l) in the
 * model-file order (out × in, dense, Q11.20): moves them into the kernel layout, clamps to ±2^28,
 * rewrites the forward copy. Returns how many weights were clamped, or −1 if l is bad.
 */
export function importWeights(l: i32): i32 {
  if (!layerOk(l, 1)) return -1;
  return importWeightsLayer(l);
}

/** Saturation events since init (membrane adds and weight clamps); tests assert it stays 0. */
export function saturations(): i32 {
  return ready() ? totalSaturations() : cfg(CFG_SAT);
}

/** Seeds the per-sample random key: sample `index` of epoch `epoch`. */
export function beginSample(epoch: u32, index: u32): void {
  setSampleKey(epoch, index);
}

/** Dropout masks (train ≠ 0) or all-kept masks, then the input spike words. −1 before init(). */
export function encode(train: i32): i32 {
  if (!ready()) return -1;
  dropoutMasks(train != 0);
  encodeInput();
  return 0;
}

/** Forward pass of linear layer l over all T steps; −1 if l is out of range. */
export function forwardLayer(l: i32, train: i32): i32 {
  if (!layerOk(l, 1)) return -1;
  const np = panels(l); // all of the layer's weight panels, on this thread
  for (let p = 0; p < np; p++) forwardLayerSimd(l, train != 0, p, np, scratch(0));
  return 0;
}

/** Output counts and prediction (class, or −1 on a tie); −2 before init(). */
export function predict(): i32 {
  if (!ready()) return -2;
  return outputCounts();
}

/** Output desire for `label`; −1 if the label is out of range. */
export function desireOutput(label: i32): i32 {
  if (!ready() || label < 0 || label >= cfg(8 + cfg(CFG_L))) return -1;
  outputDesire(label);
  return 0;
}

/** Backward pass of layer l ≥ 2: the desire of layer l − 1; −1 if l is out of range. */
export function backwardLayer(l: i32): i32 {
  if (!layerOk(l, 2) || inferOnly()) return -1;
  backwardLayerSimd(l, 0, size(l - 1), scratch(0));
  return 0;
}

/** STDP update of linear layer l (uses its desire, words and the current learning rate). */
export function updateLayer(l: i32): i32 {
  if (!layerOk(l, 1) || inferOnly()) return -1;
  const np = panels(l);
  for (let p = 0; p < np; p++) updateLayerSimd(l, p, np, scratch(0));
  return 0;
}

/**
 * One whole training step on the image at imagePtr(): dropout, forward, desire, backward, update.
 * Returns the prediction made during the step (class or −1 on a tie), −2 before init(), or
 * −3 if the label is out of range.
 */
export function trainSample(label: i32, epoch: u32, index: u32): i32 {
  if (!ready()) return -2;
  const L = cfg(CFG_L);
  if (label < 0 || label >= cfg(8 + L)) return -3;
  if (inferOnly()) return -4;
  return sampleStep(0, 1, true, label, epoch, index);
}

/** Evaluation forward pass (no dropout) of the image at imagePtr(); class, −1 on a tie, −2 before init(). */
export function inferSample(): i32 {
  if (!ready()) return -2;
  return sampleStep(0, 1, false, 0, 0, 0);
}

/**
 * Threaded build: thread 0's part of the step described by the argument words (CFG_ARG_MODE,
 * _LABEL, _EPOCH, _INDEX), after the host has bumped CFG_GO to start the workers. Returns the
 * prediction, −2 before init(), −3 for a bad label.
 */
export function runSample(): i32 {
  if (!ready()) return -2;
  return runStep(0);
}

/** Threaded build: a worker's loop as thread tid (1 ≤ tid < threads); returns when CFG_STOP is set. */
export function workerLoop(tid: i32): i32 {
  if (!ready() || tid < 1 || tid >= max(1, cfg(CFG_THREADS))) return -1;
  return workerMain(tid);
}

/** Resets the saturation counter. */
export function resetSaturations(): void {
  if (ready()) clearSaturations();
  else setCfg(CFG_SAT, 0);
}

// ---- Built-in self-test (assembly/selftest.ts; docs/ABI.md gives the expected checksum) ----

import {
  SELFTEST_INFER, SELFTEST_TRAIN, selftestFinish, selftestFold, selftestImage, selftestSetup,
} from "./selftest";

/**
 * Configures a tiny built-in network (16-12-8-4, T = 20), initialises its weights from the
 * module's RNG, runs SELFTEST_TRAIN training steps and SELFTEST_INFER inference passes on
 * synthetic images, and returns a 32-bit checksum of weights, spike words and counts, the same
 * in every engine. Overwrites the configuration block and every buffer: call it on a fresh
 * instance, or write the configuration and call init() again afterwards.
 */
export function selftest(): i32 {
  const rc = selftestSetup();
  if (rc != 0) return rc;
  let h: u64 = 0;
  for (let s = 0; s < SELFTEST_TRAIN + SELFTEST_INFER; s++) {
    const label = selftestImage(s);
    h = selftestFold(h, s < SELFTEST_TRAIN ? trainSample(label, 0, <u32>s) : inferSample());
  }
  return selftestFinish(h);
}
