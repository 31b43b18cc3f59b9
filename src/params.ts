/**
 * Hyper-parameters of a network and their integer form for the kernels.
 *
 * {@linkcode deriveParams} turns the float hyper-parameters of the algorithm into the integers
 * the WebAssembly kernels and the scalar reference use (see the README's design section):
 * forward fraction bits per layer, thresholds in weight units, dropout thresholds, the output
 * desire tables and the input spike table.
 *
 * @module
 */

/** Hyper-parameters of one network, as in the algorithm page. */
export interface NetConfig {
  /** Layer sizes: inputs, each hidden layer, outputs (e.g. [784, 1600, 800, 10]). */
  sizes: number[];
  /** Time steps T (1..32). */
  tsteps: number;
  /** Membrane threshold θ. */
  threshold: number;
  /** Decay exponent d: λ = 1 − 2^−d. */
  decay: number;
  /** Error margin m: target count n = T − m. */
  margin: number;
  /** Desire threshold of hidden (linear) layers δ_hid. */
  desireHid: number;
  /** Desire threshold of the output layer δ_out. */
  desireOut: number;
  /** Dropout probability of the input layer. */
  dropIn: number;
  /** Dropout probability of hidden layers. */
  dropHid: number;
}

/**
 * The algorithm's default hyper-parameters (T 20, θ 1, d 2, m 4, δ 0.05/0.30) for a network of
 * `sizes`, with MNIST's dropout unless given.
 */
export function defaultConfig(sizes: number[], dropIn = 0, dropHid = 0.3): NetConfig {
  return {
    sizes: [...sizes],
    tsteps: 20,
    threshold: 1,
    decay: 2,
    margin: 4,
    desireHid: 0.05,
    desireOut: 0.3,
    dropIn,
    dropHid,
  };
}

/** Fraction bits of the master weights (Q11.20). */
export const MASTER_FRAC = 20;
/** Master weights are clamped to ±2^28 (|w| ≤ 256 threshold units). */
export const WMAX = 2 ** 28;
/** Most linear layers. */
export const MAX_LAYERS = 15;

/** The integer parameters of a network (what the configuration block holds). */
export interface IntParams {
  /** Time steps. */
  T: number;
  /** Decay exponent. */
  d: number;
  /** Target count n = T − m. */
  n: number;
  /** Number of linear layers L. */
  L: number;
  /** Sizes N[0..L]. */
  sizes: number[];
  /** Strides P[0..L]: sizes rounded up to 4. */
  strides: number[];
  /** Forward fraction bits F[l] (index 0 unused). */
  frac: number[];
  /** Training threshold θ·(1 − p_{l−1})·2^F[l] (index 0 unused). */
  thrTrain: number[];
  /** Evaluation threshold θ·2^F[l] (index 0 unused). */
  thrEval: number[];
  /** Hidden desire threshold ⌈δ_hid·n·2^F[l]⌉ on n·S in layer l's units (index 0, 1 unused). */
  thrHid: number[];
  /** Dropout threshold of layer l's neurons (u32): drop iff the high 32 bits of the draw < it. */
  drop: number[];
  /** desired[c] of a non-target output neuron with count c (0..32). */
  outDN: Uint8Array;
  /** desired[c] of the target output neuron with count c (0..32). */
  outDT: Uint8Array;
  /** Input spike word of each pixel value (0..255). */
  enc: Uint32Array;
}

/** Rounds up to a multiple of 4. */
export function ceil4(x: number): number {
  return (x + 3) & ~3;
}

/**
 * Forward fraction bits of a layer with `nIn` inputs: the largest F ≤ 16 with
 * nIn · 2^(F+8) < 2^31 (so a step's current cannot overflow an i32), or 0 if none.
 */
export function forwardFrac(nIn: number): number {
  let f = 16;
  while (f >= 1 && nIn * 2 ** (f + 8) > 0x7fffffff) f--;
  return f < 1 ? 0 : f;
}

/**
 * The input neuron's spike word for each pixel value, computed exactly as the reference does in
 * float32: x = byte/255, u += x, spike if u ≥ θ (then u −= θ).
 */
export function inputTable(tsteps: number, threshold: number): Uint32Array {
  const f = Math.fround;
  const theta = f(threshold);
  const table = new Uint32Array(256);
  for (let b = 0; b < 256; b++) {
    const x = f(b / 255);
    let u = 0;
    let w = 0;
    for (let t = 0; t < tsteps; t++) {
      u = f(u + x);
      if (u >= theta) {
        w |= 1 << t;
        u = f(u - theta);
      }
    }
    table[b] = w >>> 0;
  }
  return table;
}

/** Derives the integer parameters; throws RangeError if the network cannot be represented. */
export function deriveParams(c: NetConfig): IntParams {
  const L = c.sizes.length - 1;
  if (L < 1 || L > MAX_LAYERS) {
    throw new RangeError(`Cannot build network: ${L} linear layers (must be 1..${MAX_LAYERS})`);
  }
  const n = c.tsteps - c.margin;
  const f = Math.fround;
  const frac = [0], thrTrain = [0], thrEval = [0], thrHid = [0];
  for (let l = 1; l <= L; l++) {
    const F = forwardFrac(c.sizes[l - 1]);
    if (F < 1) {
      throw new RangeError(
        `Cannot build network: layer ${l} has ${c.sizes[l - 1]} inputs (at most 4194303)`,
      );
    }
    const pPrev = l === 1 ? c.dropIn : c.dropHid;
    frac.push(F);
    thrTrain.push(Math.max(1, Math.round(c.threshold * (1 - pPrev) * 2 ** F)));
    thrEval.push(Math.max(1, Math.round(c.threshold * 2 ** F)));
    thrHid.push(l >= 2 ? Math.ceil(c.desireHid * n * 2 ** F) : 0);
  }
  const drop: number[] = [];
  for (let l = 0; l <= L; l++) {
    const p = l === L ? 0 : l === 0 ? c.dropIn : c.dropHid;
    drop.push(Math.min(0xffffffff, Math.round(p * 2 ** 32)));
  }
  const outDN = new Uint8Array(33), outDT = new Uint8Array(33);
  const dOut = f(c.desireOut);
  for (let k = 0; k <= 32; k++) {
    const e = f(k / n);
    outDN[k] = e > dOut ? 1 : 0;
    outDT[k] = f(1 - e) > dOut ? 1 : 0;
  }
  return {
    T: c.tsteps,
    d: c.decay,
    n,
    L,
    sizes: [...c.sizes],
    strides: c.sizes.map(ceil4),
    frac,
    thrTrain,
    thrEval,
    thrHid,
    drop,
    outDN,
    outDT,
    enc: inputTable(c.tsteps, c.threshold),
  };
}

/** A learning rate as the kernels take it: η = mant · 2^(4 − shift), mant < 2^24. */
export interface FixedRate {
  /** Mantissa, 2^23 ≤ mant < 2^24 (0 for η = 0). */
  mant: number;
  /** Shift (η · 2^20 · G/2^24 = G · mant / 2^shift). */
  shift: number;
}

/** Converts a learning rate η ∈ [0, 1] into mantissa and shift. */
export function fixedRate(eta: number): FixedRate {
  if (!(eta >= 0 && eta <= 1)) {
    throw new RangeError(`Cannot set learning rate ${eta}: must be in [0, 1]`);
  }
  if (eta === 0) return { mant: 0, shift: 0 };
  let e = 23 - Math.floor(Math.log2(eta));
  let mant = Math.round(eta * 2 ** e);
  while (mant >= 2 ** 24) {
    e--;
    mant = Math.round(eta * 2 ** e);
  }
  while (mant < 2 ** 23) {
    e++;
    mant = Math.round(eta * 2 ** e);
  }
  const shift = e + 4;
  if (shift > 62) return { mant: 0, shift: 0 };
  return { mant, shift };
}

/**
 * Learning rate of epoch e (counted from 0): η·exp(−κ·max(0, e − start)), the full rate for the
 * first `start` epochs (`--lr-decay-start`, default 0: the reference's η·exp(−κ·e)).
 *
 * @example The decay begins after two epochs
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { epochRate } from "./params.ts";
 *
 * equal(epochRate(1e-5, 0.04, 2, 2), 1e-5);
 * equal(epochRate(1e-5, 0.04, 3, 2), 1e-5 * Math.exp(-0.04));
 * equal(epochRate(1e-5, 0.04, 3), 1e-5 * Math.exp(-0.12));
 * ```
 */
export function epochRate(eta: number, kappa: number, epoch: number, start = 0): number {
  return eta * Math.exp(-kappa * Math.max(0, epoch - start));
}

/** A float weight in threshold units → master fixed point (Q11.20, clamped to ±2^28). */
export function toMaster(w: number): number {
  const q = Math.round(w * 2 ** MASTER_FRAC);
  return q > WMAX ? WMAX : q < -WMAX ? -WMAX : q;
}
