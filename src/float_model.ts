/**
 * A float32 model of desire backpropagation (see `docs/algorithm.md`): the readable reference
 * that the integer kernels are held against. It replays the authors' golden vectors exactly on
 * spikes, counts and desires, and to 1e-6 on traces and weight changes.
 *
 * Update equations, per sample, all state starting at 0 (t = 0 … T−1):
 * - input neuron i: u ← u + x_i (x_i = byte/255); spike if u ≥ θ and kept; then u ← u − θ.
 * - linear neuron j: u ← λ·u; u ← u + s·Σ_i W[j,i]·b_i(t); spike if u ≥ θ and kept; then
 *   u ← u − θ. Its spike is read by the next layer in step t+1.
 * - trace of input i of a linear layer: tr(t+1) = λ·tr(t) + b_i(t).
 *
 * Glossary: θ threshold; λ = 1 − 2^−d decay; b_i(t) ∈ {0, 1} what the layer reads from input i in
 * step t; s = 1/(1 − p) the inverted-dropout scale of the input's layer while training (1 at
 * evaluation); n = T − m the target count.
 *
 * Arithmetic is float32 wherever the reference holds float32 (membranes, traces, weights, desire
 * sums), via `Float32Array` storage and `Math.fround`. Two deliberate differences, both far below
 * the 1e-6 tolerance of the golden replay (which is exact on spikes and desires):
 * - input currents are sums of the weight rows of the inputs that spiked (no multiplications),
 *   accumulated in float64 and rounded to float32 once per step, so their summation order
 *   differs from PyTorch's matmul;
 * - the weight update rounds once, `W ← fround(W + η·sgn·fround(Σ_t tr(t+1)))`, like a fused
 *   multiply-add (golden weights agree to ≤ 1.5e-8).
 *
 * Cost: forward work is proportional to the number of input spikes (or spike-train changes, see
 * `#gatherInputs`); silent inputs and steps cost nothing beyond the membrane decay; the update
 * touches only inputs that spiked at least once, for neurons that are desired, kept and fired.
 *
 * @module
 */
import type { NetConfig } from "./params.ts";

/** Network shape and hyper-parameters of a {@linkcode FloatNet}: the same as the integer network's. */
export type FloatConfig = NetConfig;

/** What one {@linkcode FloatNet.trainStep} or {@linkcode FloatNet.evaluate} returns. */
export interface StepResult {
  /** Output spike counts. */
  counts: Int32Array;
  /** Predicted class: the argmax of `counts`, or −1 if the top count is shared. */
  predicted: number;
  /**
   * With `record`: spikes of every layer l = 0 … L, `(T+1) × n_l`, in the golden row layout
   * (input: row t = step t, row T zero; linear: row t+1 = spike computed in step t, row 0 zero).
   */
  spikes?: Uint8Array[];
  /** With `record`, training: traces of each linear layer's inputs, `(T+1) × n_in`. */
  traces?: Float32Array[];
  /** With `record`, training: desires of each linear layer, `n × 2` (desired, direction). */
  desires?: Uint8Array[];
  /** With `record`, training: weight change of each linear layer, `out × in` row-major. */
  dw?: Float64Array[];
}

/**
 * The predicted class of output spike counts: the index of the unique maximum, or −1 if several
 * outputs share the top count.
 *
 * @param counts Output spike counts.
 * @returns The argmax, or −1 on a tie (a sample is correct iff this equals its label).
 *
 * @example A tie predicts nothing
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { classify } from "./float_model.ts";
 *
 * deepStrictEqual(classify([1, 7, 3]), 1);
 * deepStrictEqual(classify([7, 2, 7]), -1);
 * ```
 */
export function classify(counts: ArrayLike<number>): number {
  let best = -1;
  let max = -Infinity;
  let tie = false;
  for (let j = 0; j < counts.length; j++) {
    const c = counts[j];
    if (c > max) {
      max = c;
      best = j;
      tie = false;
    } else if (c === max) {
      tie = true;
    }
  }
  return tie ? -1 : best;
}

/**
 * Kaiming-normal initial weights: normal, mean 0, standard deviation √(2/fan_in), no biases.
 *
 * @param sizes `[inputs, h1, …, outputs]`.
 * @param random Uniform generator on [0, 1) (default `Math.random`); pass a seeded one for
 * reproducible weights.
 * @returns `weights[k]`: layer k+1's W, `out × in` row-major.
 *
 * @example Shapes of the initial weights
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { kaimingInit } from "./float_model.ts";
 *
 * const w = kaimingInit([784, 32, 10]);
 * deepStrictEqual(w.map((a) => a.length), [32 * 784, 10 * 32]);
 * ```
 */
export function kaimingInit(
  sizes: readonly number[],
  random: () => number = Math.random,
): Float32Array[] {
  const out: Float32Array[] = [];
  for (let k = 0; k + 1 < sizes.length; k++) {
    const fanIn = sizes[k];
    const w = new Float32Array(sizes[k + 1] * fanIn);
    const std = Math.sqrt(2 / fanIn);
    for (let i = 0; i < w.length; i += 2) {
      // Box–Muller: two independent normals from two uniforms.
      const r = Math.sqrt(-2 * Math.log(1 - random()));
      const a = 2 * Math.PI * random();
      w[i] = std * r * Math.cos(a);
      if (i + 1 < w.length) w[i + 1] = std * r * Math.sin(a);
    }
    out.push(w);
  }
  return out;
}

function checkConfig(c: FloatConfig): void {
  const bad = (what: string) => {
    throw new RangeError(`Cannot create FloatNet: ${what}`);
  };
  if (!Array.isArray(c.sizes) || c.sizes.length < 2) bad("sizes needs at least 2 layers");
  for (const n of c.sizes) {
    if (!Number.isSafeInteger(n) || n < 1) bad(`layer size ${n} is not a positive integer`);
  }
  if (!Number.isInteger(c.tsteps) || c.tsteps < 1 || c.tsteps > 32) {
    bad(`tsteps ${c.tsteps} is outside 1 … 32`);
  }
  if (!(c.threshold > 0) || !Number.isFinite(c.threshold)) bad(`threshold ${c.threshold} ≤ 0`);
  if (!(c.decay >= 0) || !Number.isFinite(c.decay)) bad(`decay ${c.decay} is negative`);
  if (!Number.isInteger(c.margin) || c.margin < 0 || c.margin >= c.tsteps) {
    bad(`margin ${c.margin} is outside 0 … tsteps − 1`);
  }
  for (const [name, p] of [["dropIn", c.dropIn], ["dropHid", c.dropHid]] as const) {
    if (!(p >= 0 && p < 1)) bad(`${name} ${p} is outside [0, 1)`);
  }
  for (const [name, d] of [["desireHid", c.desireHid], ["desireOut", c.desireOut]] as const) {
    if (!Number.isFinite(d)) bad(`${name} ${d} is not finite`);
  }
}

/**
 * A float32 spiking network trained online (batch 1) by desire backpropagation.
 *
 * Layers are numbered l = 0 (input) … L (output); linear layer k = 0 … L−1 maps layer k to layer
 * k+1 and has weights W_k (`sizes[k+1] × sizes[k]`).
 *
 * @example Train one step and evaluate
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { FloatNet, kaimingInit } from "./float_model.ts";
 *
 * const sizes = [4, 3, 2];
 * const config = {
 *   sizes, tsteps: 20, threshold: 1, decay: 2, margin: 4,
 *   desireHid: 0.05, desireOut: 0.3, dropIn: 0, dropHid: 0,
 * };
 * const net = new FloatNet(config, kaimingInit(sizes));
 * const image = new Uint8Array([255, 128, 0, 64]);
 * const keeps = [new Uint8Array(4).fill(1), new Uint8Array(3).fill(1)];
 * const step = net.trainStep(image, 1, 1e-3, keeps);
 * deepStrictEqual(step.counts.length, 2);
 * deepStrictEqual(net.evaluate(image).counts.length, 2);
 * ```
 */
export class FloatNet {
  readonly #config: FloatConfig;
  readonly #sizes: number[];
  readonly #L: number;
  readonly #T: number;
  readonly #mask: number;
  readonly #lam: number;
  readonly #theta: number;
  readonly #target: number;
  readonly #scaleIn: number;
  readonly #scaleHid: number;
  readonly #deltaHid: number;
  readonly #deltaOut: number;
  /** Input words by pixel byte: bit t = the input neuron fires in step t (if kept). */
  readonly #inputWord: Uint32Array;
  /** #wt[k]: W_k transposed, `in × out` row-major (row i = weights out of input i). */
  readonly #wt: Float32Array[];
  /** #words[l]: bit t = neuron fired in step t. */
  readonly #words: Uint32Array[];
  /** #inWords[k]: bit t = what linear layer k reads from input i in step t. */
  readonly #inWords: Uint32Array[];
  /**
   * #addList[k]: row t (`T × in`) lists the input rows to add to the current in step t: every
   * input read as 1 (direct mode), or only those that start firing in step t (delta mode).
   */
  readonly #addList: Int32Array[];
  readonly #addLen: Int32Array[];
  /** #subList[k]: delta mode only: row t lists the inputs that stop firing in step t. */
  readonly #subList: Int32Array[];
  readonly #subLen: Int32Array[];
  /** #fireCount[k][t]: number of inputs linear layer k reads as 1 in step t. */
  readonly #fireCount: Int32Array[];
  /** #delta[k]: 1 if linear layer k updates its current by changes (delta mode). */
  readonly #delta: Uint8Array;
  /** #active[k]: inputs of linear layer k that are read as 1 at least once. */
  readonly #active: Int32Array[];
  readonly #activeLen: Int32Array;
  /** #traces[k]: `(T+1) × activeLen[k]` traces of the active inputs, compact. */
  readonly #traces: Float32Array[];
  /** #desires[k]: `out × 2` desire of linear layer k's neurons. */
  readonly #desires: Uint8Array[];
  readonly #ones: Uint8Array;
  readonly #u: Float32Array;
  readonly #acc: Float64Array;
  readonly #g: Float64Array;
  readonly #gIdx: Int32Array;

  /**
   * Creates a network from a configuration and initial weights.
   *
   * @param config Shape and hyper-parameters.
   * @param weights `weights[k]`: linear layer k's W, `sizes[k+1] × sizes[k]` row-major (like the
   * golden `init.w{k}`); copied.
   * @throws {RangeError} An invalid configuration or a weight array of the wrong length.
   */
  constructor(config: FloatConfig, weights: readonly Float32Array[]) {
    checkConfig(config);
    this.#config = { ...config, sizes: config.sizes.slice() };
    const sizes = this.#sizes = config.sizes.slice();
    const L = this.#L = sizes.length - 1;
    const T = this.#T = config.tsteps;
    this.#mask = T === 32 ? 0xffffffff : (1 << T) - 1;
    // The reference holds λ, θ, the dropout scales and thresholds as float32 scalars.
    this.#lam = Math.fround(1 - 2 ** -config.decay);
    this.#theta = Math.fround(config.threshold);
    this.#target = T - config.margin;
    this.#scaleIn = Math.fround(1 / (1 - config.dropIn));
    this.#scaleHid = Math.fround(1 / (1 - config.dropHid));
    this.#deltaHid = Math.fround(config.desireHid);
    this.#deltaOut = Math.fround(config.desireOut);
    if (weights.length !== L) {
      throw new RangeError(
        `Cannot create FloatNet: expected ${L} weight arrays, got ${weights.length}`,
      );
    }
    this.#wt = [];
    for (let k = 0; k < L; k++) {
      const nIn = sizes[k], nOut = sizes[k + 1];
      const w = weights[k];
      if (w.length !== nIn * nOut) {
        throw new RangeError(
          `Cannot create FloatNet: weights[${k}] has ${w.length} elements, expected ${nOut} × ${nIn}`,
        );
      }
      const wt = new Float32Array(nIn * nOut);
      for (let j = 0; j < nOut; j++) {
        for (let i = 0; i < nIn; i++) wt[i * nOut + j] = w[j * nIn + i];
      }
      this.#wt.push(wt);
    }
    // Input encoding depends only on the byte: x = fround(b/255) accumulated in float32.
    this.#inputWord = new Uint32Array(256);
    for (let b = 0; b < 256; b++) {
      const x = Math.fround(b / 255);
      let u = 0, word = 0;
      for (let t = 0; t < T; t++) {
        u = Math.fround(u + x);
        if (u >= this.#theta) {
          u = Math.fround(u - this.#theta);
          word |= 1 << t;
        }
      }
      this.#inputWord[b] = word;
    }
    const maxN = Math.max(...sizes);
    this.#words = sizes.map((n) => new Uint32Array(n));
    this.#inWords = sizes.slice(0, L).map((n) => new Uint32Array(n));
    this.#addList = sizes.slice(0, L).map((n) => new Int32Array(T * n));
    this.#addLen = sizes.slice(0, L).map(() => new Int32Array(T));
    this.#subList = sizes.slice(0, L).map((n) => new Int32Array(T * n));
    this.#subLen = sizes.slice(0, L).map(() => new Int32Array(T));
    this.#fireCount = sizes.slice(0, L).map(() => new Int32Array(T));
    this.#delta = new Uint8Array(L);
    this.#active = sizes.slice(0, L).map((n) => new Int32Array(n));
    this.#activeLen = new Int32Array(L);
    this.#traces = sizes.slice(0, L).map((n) => new Float32Array((T + 1) * n));
    this.#desires = sizes.slice(1).map((n) => new Uint8Array(2 * n));
    this.#ones = new Uint8Array(maxN).fill(1);
    this.#u = new Float32Array(maxN);
    this.#acc = new Float64Array(maxN);
    this.#g = new Float64Array(maxN);
    this.#gIdx = new Int32Array(maxN);
  }

  /** A copy of the configuration. */
  get config(): FloatConfig {
    return { ...this.#config, sizes: this.#config.sizes.slice() };
  }

  /**
   * A copy of linear layer k's weights.
   *
   * @param k Linear layer index, 0 … L−1.
   * @returns W_k, `sizes[k+1] × sizes[k]` row-major.
   */
  weights(k: number): Float32Array {
    if (!Number.isInteger(k) || k < 0 || k >= this.#L) {
      throw new RangeError(`Cannot read weights: layer ${k} is outside 0 … ${this.#L - 1}`);
    }
    const nIn = this.#sizes[k], nOut = this.#sizes[k + 1];
    const wt = this.#wt[k];
    const w = new Float32Array(nIn * nOut);
    for (let i = 0; i < nIn; i++) {
      for (let j = 0; j < nOut; j++) w[j * nIn + i] = wt[i * nOut + j];
    }
    return w;
  }

  /**
   * One training step (online, batch 1): forward with dropout, desire, backward, STDP update.
   *
   * @param image Pixel bytes, `sizes[0]` long.
   * @param label Class index, 0 … `sizes[L]` − 1.
   * @param lr η for this epoch.
   * @param keeps Dropout masks (1 = kept) of layers l = 0 … L−1 (input and hidden layers; the
   * output layer has none).
   * @param record Also return spikes, traces, desires and weight changes.
   * @returns Output counts, prediction (before the update) and, with `record`, the details.
   */
  trainStep(
    image: Uint8Array,
    label: number,
    lr: number,
    keeps: readonly Uint8Array[],
    record = false,
  ): StepResult {
    const L = this.#L, sizes = this.#sizes;
    this.#checkImage(image);
    if (!Number.isInteger(label) || label < 0 || label >= sizes[L]) {
      throw new RangeError(`Cannot train: label ${label} is outside 0 … ${sizes[L] - 1}`);
    }
    if (!Number.isFinite(lr)) {
      throw new RangeError(`Cannot train: learning rate ${lr} is not finite`);
    }
    if (keeps.length !== L) {
      throw new RangeError(`Cannot train: expected ${L} dropout masks, got ${keeps.length}`);
    }
    for (let l = 0; l < L; l++) {
      if (keeps[l].length !== sizes[l]) {
        throw new RangeError(
          `Cannot train: dropout mask ${l} has ${keeps[l].length} entries, expected ${sizes[l]}`,
        );
      }
    }
    this.#forward(image, keeps, true);
    const result = this.#result(record);
    this.#backward(label, keeps);
    let old: Float32Array[] = [];
    if (record) {
      old = this.#wt.map((w) => w.slice());
      result.traces = [];
      for (let k = 0; k < L; k++) result.traces.push(this.#fullTraces(k));
      result.desires = this.#desires.map((d) => d.slice());
    }
    const lrf = Math.fround(lr);
    for (let k = 0; k < L; k++) this.#update(k, k + 1 < L ? keeps[k + 1] : this.#ones, lrf);
    if (record) {
      result.dw = [];
      for (let k = 0; k < L; k++) {
        const nIn = sizes[k], nOut = sizes[k + 1];
        const before = old[k], after = this.#wt[k];
        const dw = new Float64Array(nIn * nOut);
        for (let i = 0; i < nIn; i++) {
          for (let j = 0; j < nOut; j++) {
            dw[j * nIn + i] = after[i * nOut + j] - before[i * nOut + j];
          }
        }
        result.dw.push(dw);
      }
    }
    return result;
  }

  /**
   * Evaluation forward: no dropout, every spike carries 1, no learning.
   *
   * @param image Pixel bytes, `sizes[0]` long.
   * @param record Also return the spikes of every layer.
   * @returns Output counts and prediction.
   */
  evaluate(image: Uint8Array, record = false): StepResult {
    this.#checkImage(image);
    this.#forward(image, null, false);
    return this.#result(record);
  }

  #checkImage(image: Uint8Array): void {
    if (image.length !== this.#sizes[0]) {
      throw new RangeError(
        `Cannot run FloatNet: image has ${image.length} pixels, expected ${this.#sizes[0]}`,
      );
    }
  }

  #result(record: boolean): StepResult {
    const L = this.#L, T = this.#T;
    const out = this.#words[L];
    const counts = new Int32Array(out.length);
    for (let j = 0; j < out.length; j++) counts[j] = popcount(out[j]);
    const result: StepResult = { counts, predicted: classify(counts) };
    if (record) {
      result.spikes = [];
      for (let l = 0; l <= L; l++) {
        const n = this.#sizes[l], words = this.#words[l];
        const rows = new Uint8Array((T + 1) * n);
        const shift = l === 0 ? 0 : 1;
        for (let i = 0; i < n; i++) {
          const w = words[i];
          for (let t = 0; t < T; t++) if ((w >>> t) & 1) rows[(t + shift) * n + i] = 1;
        }
        result.spikes.push(rows);
      }
    }
    return result;
  }

  /** Runs all layers over all T steps; with `training`, also computes the traces. */
  #forward(image: Uint8Array, keeps: readonly Uint8Array[] | null, training: boolean): void {
    const L = this.#L, sizes = this.#sizes;
    const words0 = this.#words[0];
    const keep0 = keeps ? keeps[0] : this.#ones;
    const table = this.#inputWord;
    for (let i = 0; i < sizes[0]; i++) words0[i] = keep0[i] ? table[image[i]] : 0;
    for (let k = 0; k < L; k++) {
      this.#gatherInputs(k);
      if (training) this.#computeTraces(k);
      const keep = keeps && k + 1 < L ? keeps[k + 1] : this.#ones;
      const scale = training ? (k === 0 ? this.#scaleIn : this.#scaleHid) : 1;
      this.#layerForward(k, keep, scale);
    }
  }

  /**
   * From layer k's spike words: what linear layer k reads in each step (input words), which
   * inputs are active at all, and the row lists that build its input current.
   *
   * The current of step t is Σ_i W[·,i]·b_i(t). Direct mode sums the rows of all inputs read as
   * 1 in step t. Delta mode keeps the previous step's sum and adds the rows of inputs that start
   * firing and subtracts those that stop: cheaper for rate-coded pixels that fire in most steps
   * (MNIST: about 820 changes against 1950 spikes per sample). The mode with fewer row
   * operations is chosen per sample and layer.
   */
  #gatherInputs(k: number): void {
    const n = this.#sizes[k];
    const words = this.#words[k], inWords = this.#inWords[k], active = this.#active[k];
    const addList = this.#addList[k], addLen = this.#addLen[k];
    const subList = this.#subList[k], subLen = this.#subLen[k];
    const fire = this.#fireCount[k];
    const mask = this.#mask;
    // The input layer's spike is read in the same step; a linear layer's one step later.
    const shift = k === 0 ? 0 : 1;
    let a = 0, spikes = 0, changes = 0;
    for (let i = 0; i < n; i++) {
      const w = ((words[i] << shift) & mask) >>> 0;
      inWords[i] = w;
      if (w === 0) continue;
      active[a++] = i;
      spikes += popcount(w);
      changes += popcount((w ^ (w << 1)) & mask);
    }
    this.#activeLen[k] = a;
    const delta = changes < spikes;
    this.#delta[k] = delta ? 1 : 0;
    addLen.fill(0);
    subLen.fill(0);
    fire.fill(0);
    for (let m = 0; m < a; m++) {
      const i = active[m], w = inWords[i];
      let rest = w | 0;
      while (rest !== 0) {
        const t = 31 - Math.clz32(rest & -rest);
        rest &= rest - 1;
        fire[t]++;
      }
      // Bits of the steps in which this input's row is added (and, in delta mode, removed).
      rest = delta ? (w & ~(w << 1)) | 0 : w | 0;
      while (rest !== 0) {
        const t = 31 - Math.clz32(rest & -rest);
        rest &= rest - 1;
        addList[t * n + addLen[t]++] = i;
      }
      if (!delta) continue;
      rest = (~w & (w << 1) & mask) | 0;
      while (rest !== 0) {
        const t = 31 - Math.clz32(rest & -rest);
        rest &= rest - 1;
        subList[t * n + subLen[t]++] = i;
      }
    }
  }

  /** Traces of linear layer k's active inputs: tr(0) = 0, tr(t+1) = fround(λ·tr(t)) + b(t). */
  #computeTraces(k: number): void {
    const T = this.#T, lam = this.#lam;
    const a = this.#activeLen[k], active = this.#active[k];
    const inWords = this.#inWords[k], tr = this.#traces[k];
    tr.fill(0, 0, a);
    for (let m = 0; m < a; m++) {
      const w = inWords[active[m]];
      let v = 0;
      for (let t = 0; t < T; t++) {
        v = Math.fround(Math.fround(lam * v) + ((w >>> t) & 1));
        tr[(t + 1) * a + m] = v;
      }
    }
  }

  /** Membrane dynamics of linear layer k over T steps → spike words of layer k+1. */
  #layerForward(k: number, keep: Uint8Array, scale: number): void {
    const T = this.#T, lam = this.#lam, theta = this.#theta;
    const nIn = this.#sizes[k], nOut = this.#sizes[k + 1];
    const wt = this.#wt[k], fire = this.#fireCount[k], delta = this.#delta[k] === 1;
    const addList = this.#addList[k], addLen = this.#addLen[k];
    const subList = this.#subList[k], subLen = this.#subLen[k];
    const u = this.#u, acc = this.#acc, out = this.#words[k + 1];
    u.fill(0, 0, nOut);
    out.fill(0);
    acc.fill(0, 0, nOut);
    for (let t = 0; t < T; t++) {
      const base = t * nIn;
      if (fire[t] === 0) {
        // No input: the membrane only decays (and may still be above threshold).
        if (delta) acc.fill(0, 0, nOut);
        for (let j = 0; j < nOut; j++) {
          let v = Math.fround(lam * u[j]);
          if (v >= theta && keep[j]) {
            v = Math.fround(v - theta);
            out[j] |= 1 << t;
          }
          u[j] = v;
        }
        continue;
      }
      if (!delta) acc.fill(0, 0, nOut);
      const na = addLen[t];
      let p = 0;
      for (; p + 4 <= na; p += 4) {
        const r0 = addList[base + p] * nOut, r1 = addList[base + p + 1] * nOut;
        const r2 = addList[base + p + 2] * nOut, r3 = addList[base + p + 3] * nOut;
        for (let j = 0; j < nOut; j++) {
          acc[j] += wt[r0 + j] + wt[r1 + j] + wt[r2 + j] + wt[r3 + j];
        }
      }
      for (; p < na; p++) {
        const r = addList[base + p] * nOut;
        for (let j = 0; j < nOut; j++) acc[j] += wt[r + j];
      }
      const ns = subLen[t];
      for (p = 0; p < ns; p++) {
        const r = subList[base + p] * nOut;
        for (let j = 0; j < nOut; j++) acc[j] -= wt[r + j];
      }
      for (let j = 0; j < nOut; j++) {
        let v = Math.fround(Math.fround(lam * u[j]) + Math.fround(scale * acc[j]));
        if (v >= theta && keep[j]) {
          v = Math.fround(v - theta);
          out[j] |= 1 << t;
        }
        u[j] = v;
      }
    }
  }

  /** Output desire from the label, then desire of every hidden layer (weights before update). */
  #backward(label: number, keeps: readonly Uint8Array[]): void {
    const L = this.#L, sizes = this.#sizes, n = this.#target;
    const nOutL = sizes[L], outWords = this.#words[L], dOut = this.#desires[L - 1];
    for (let j = 0; j < nOutL; j++) {
      const c = Math.fround(popcount(outWords[j]) / n);
      const e = j === label ? Math.fround(1 - c) : c;
      dOut[2 * j] = e > this.#deltaOut ? 1 : 0;
      dOut[2 * j + 1] = j === label ? 1 : 0;
    }
    const g = this.#g, gIdx = this.#gIdx;
    for (let k = L - 1; k >= 1; k--) {
      const nIn = sizes[k], nOut = sizes[k + 1];
      const words = this.#words[k + 1],
        des = this.#desires[k],
        keep = k + 1 < L ? keeps[k + 1] : this.#ones;
      let ng = 0;
      for (let j = 0; j < nOut; j++) {
        if (!des[2 * j] || !keep[j]) continue;
        const dir = des[2 * j + 1];
        const err = Math.fround(Math.abs(dir - Math.fround(popcount(words[j]) / n)));
        if (err === 0) continue;
        g[ng] = dir ? err : -err;
        gIdx[ng++] = j;
      }
      const wt = this.#wt[k], dIn = this.#desires[k - 1];
      for (let i = 0; i < nIn; i++) {
        const r = i * nOut;
        let s = 0;
        for (let q = 0; q < ng; q++) s += Math.fround(wt[r + gIdx[q]] * g[q]);
        s = Math.fround(s);
        dIn[2 * i] = Math.abs(s) >= this.#deltaHid ? 1 : 0;
        dIn[2 * i + 1] = s > 0 ? 1 : 0;
      }
    }
  }

  /** STDP: W[j,i] += η·sgn_j·Σ_{t: j fired in t} tr_i(t+1) for desired, kept neurons j. */
  #update(k: number, keep: Uint8Array, lrf: number): void {
    const nOut = this.#sizes[k + 1];
    const a = this.#activeLen[k];
    if (a === 0) return;
    const active = this.#active[k], tr = this.#traces[k], wt = this.#wt[k];
    const words = this.#words[k + 1], des = this.#desires[k], acc = this.#acc;
    const sums = acc;
    for (let j = 0; j < nOut; j++) {
      const w = words[j];
      if (w === 0 || !des[2 * j] || !keep[j]) continue;
      const step = des[2 * j + 1] ? lrf : -lrf;
      let rest = w | 0;
      let first = true;
      while (rest !== 0) {
        const t = 31 - Math.clz32(rest & -rest);
        rest &= rest - 1;
        const row = (t + 1) * a;
        if (first) {
          for (let m = 0; m < a; m++) sums[m] = tr[row + m];
          first = false;
        } else {
          for (let m = 0; m < a; m++) sums[m] += tr[row + m];
        }
      }
      for (let m = 0; m < a; m++) {
        const idx = active[m] * nOut + j;
        wt[idx] = Math.fround(wt[idx] + step * Math.fround(sums[m]));
      }
    }
  }

  /** Linear layer k's traces expanded to `(T+1) × n_in`. */
  #fullTraces(k: number): Float32Array {
    const T = this.#T, nIn = this.#sizes[k];
    const a = this.#activeLen[k], active = this.#active[k], tr = this.#traces[k];
    const full = new Float32Array((T + 1) * nIn);
    for (let t = 1; t <= T; t++) {
      for (let m = 0; m < a; m++) full[t * nIn + active[m]] = tr[t * a + m];
    }
    return full;
  }
}

function popcount(x: number): number {
  x = x - ((x >>> 1) & 0x55555555);
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  x = (x + (x >>> 4)) & 0x0f0f0f0f;
  return Math.imul(x, 0x01010101) >>> 24;
}
