/**
 * A network on the WebAssembly kernels: configuration, weights, training and inference steps.
 *
 * @module
 */
import { CFG, configure, type DesireExports, instantiate, matrixRows, setRate } from "./wasm.ts";
import {
  deriveParams,
  fixedRate,
  type IntParams,
  MASTER_FRAC,
  type NetConfig,
  toMaster,
} from "./params.ts";
import { drawNormal, sampleKey, STREAM_INIT } from "./rng.ts";
import { ThreadPool } from "./threads.ts";

/** Epoch number reserved for the initialisation key. */
const INIT_EPOCH = 0xffffffff;

/**
 * Kaiming-normal initial weights (std √(2/fan_in)), seeded, as master fixed point.
 *
 * @param sizes Layer sizes, inputs first.
 * @param seed Run seed; the same seed gives the same weights, bit for bit.
 * @returns One Int32Array per linear layer, out × in row-major (Q11.20: value / 2^20).
 *
 * @example Deterministic initialisation
 * ```ts
 * import assert from "node:assert/strict";
 * import { kaimingMaster } from "./network.ts";
 *
 * const a = kaimingMaster([784, 16, 10], 5), b = kaimingMaster([784, 16, 10], 5);
 * assert.equal(a[0].length, 16 * 784);
 * assert.deepEqual(a[1], b[1]);
 * ```
 */
export function kaimingMaster(sizes: number[], seed: number): Int32Array[] {
  const out: Int32Array[] = [];
  for (let l = 1; l < sizes.length; l++) {
    const nIn = sizes[l - 1], nOut = sizes[l];
    const key = sampleKey(seed, INIT_EPOCH, l);
    const std = Math.sqrt(2 / nIn);
    const w = new Int32Array(nIn * nOut);
    for (let k = 0; k < w.length; k++) w[k] = toMaster(std * drawNormal(key, STREAM_INIT, k));
    out.push(w);
  }
  return out;
}

/** Master fixed point → float (threshold units). */
export function masterToFloat(w: Int32Array): Float32Array {
  const f = new Float32Array(w.length);
  for (let k = 0; k < w.length; k++) f[k] = w[k] / 2 ** MASTER_FRAC;
  return f;
}

/**
 * A network held in one instance of desire.wasm.
 *
 * @example Build, train one step, classify
 * ```ts
 * import assert from "node:assert/strict";
 * import { Network } from "./network.ts";
 *
 * const net = await Network.create({
 *   sizes: [784, 64, 10], tsteps: 20, threshold: 1, decay: 2, margin: 4,
 *   desireHid: 0.05, desireOut: 0.3, dropIn: 0, dropHid: 0.3,
 * }, 1);
 * net.setLearningRate(1e-5);
 * const image = new Uint8Array(784).fill(200, 200, 500);
 * net.trainSample(image, 7, 0, 0);
 * const cls = net.infer(image);
 * assert.ok(cls >= -1 && cls <= 9);
 * assert.equal(net.saturations, 0);
 * ```
 */
export class Network {
  /** Hyper-parameters. */
  readonly config: NetConfig;
  /** Their integer form. */
  readonly params: IntParams;
  /** Seed of every random draw (dropout, rounding). */
  readonly seed: number;
  #ex: DesireExports;
  #image: Uint8Array;
  #counts: Int32Array;
  #pool?: ThreadPool;
  #inferenceOnly: boolean;

  private constructor(
    config: NetConfig,
    params: IntParams,
    seed: number,
    ex: DesireExports,
    pool?: ThreadPool,
  ) {
    this.config = config;
    this.params = params;
    this.seed = seed;
    this.#ex = ex;
    this.#pool = pool;
    this.#inferenceOnly =
      new Int32Array(ex.memory.buffer, ex.configPtr(), 128)[CFG.INFER_ONLY] !== 0;
    this.#image = new Uint8Array(ex.memory.buffer, ex.imagePtr(), params.sizes[0]);
    this.#counts = new Int32Array(ex.memory.buffer, ex.countsPtr(), params.sizes[params.L]);
  }

  /**
   * Builds a network; `weights` (master, out × in per layer) default to Kaiming init from
   * `seed`. With `threads` > 1 the steps run on that many threads (the threaded build over a
   * shared memory, Web Workers): the same weights bit for bit, faster; call {@linkcode close}.
   * With `inferenceOnly` the module keeps only the forward weights (half the memory, a faster
   * start); such a network evaluates exactly like a full one but cannot train.
   */
  static async create(
    config: NetConfig,
    seed: number,
    weights?: Int32Array[],
    options: { threads?: number; inferenceOnly?: boolean } = {},
  ): Promise<Network> {
    const params = deriveParams(config);
    const threads = options.threads ?? 1;
    if (!Number.isInteger(threads) || threads < 1 || threads > 64) {
      throw new RangeError(
        `Cannot build network: ${threads} threads (must be an integer in 1..64)`,
      );
    }
    let ex: DesireExports, pool: ThreadPool | undefined;
    if (threads > 1) {
      pool = await ThreadPool.start(params, seed, threads, options.inferenceOnly);
      ex = pool.exports;
    } else {
      ex = await instantiate();
      configure(ex, params, seed, 1, options.inferenceOnly);
    }
    const net = new Network(config, params, seed, ex, pool);
    const w = weights ?? kaimingMaster(config.sizes, seed);
    for (let l = 1; l <= params.L; l++) net.setWeights(l, w[l - 1]);
    return net;
  }

  /** The raw exports (tests and benchmarks). */
  get exports(): DesireExports {
    return this.#ex;
  }

  /** Writes linear layer l's master weights (out × in row-major, Q11.20). */
  setWeights(l: number, w: Int32Array): void {
    const { sizes } = this.params;
    const nIn = sizes[l - 1], nOut = sizes[l];
    if (w.length !== nIn * nOut) {
      throw new TypeError(
        `Cannot set weights of layer ${l}: ${w.length} values (expected ${nOut} × ${nIn})`,
      );
    }
    // The module transposes into its layout (much faster than a JS loop on a cold start).
    new Int32Array(this.#ex.memory.buffer, this.#ex.importPtr(l), nIn * nOut).set(w);
    const clamped = this.#ex.importWeights(l);
    if (clamped !== 0) {
      throw new RangeError(
        `Cannot set weights of layer ${l}: ${clamped} weights beyond ±2^28 (|w| > 256 in Q11.20)`,
      );
    }
  }

  /** Linear layer l's master weights (out × in row-major, Q11.20), a copy. */
  weights(l: number): Int32Array {
    if (this.inferenceOnly) {
      throw new TypeError("Cannot read weights: the network was built for inference only");
    }
    const { sizes, strides } = this.params;
    const nIn = sizes[l - 1], nOut = sizes[l], P = strides[l];
    const src = matrixRows(
      this.params,
      this.threads,
      l,
      new Int32Array(this.#ex.memory.buffer, this.#ex.weightsPtr(l), nIn * P),
    );
    const w = new Int32Array(nIn * nOut);
    for (let j = 0; j < nOut; j++) {
      for (let i = 0; i < nIn; i++) w[j * nIn + i] = src[i * P + j];
    }
    return w;
  }

  /** Sets the learning rate η of the linear layers for the following steps. */
  setLearningRate(eta: number): void {
    const r = fixedRate(eta);
    setRate(this.#ex, r.mant, r.shift);
  }

  /** One training step on `image` (u8[N0]); returns the prediction made during it (−1: tie). */
  trainSample(image: Uint8Array, label: number, epoch: number, index: number): number {
    if (this.inferenceOnly) {
      throw new TypeError("Cannot train: the network was built for inference only");
    }
    this.#image.set(image);
    if (this.#pool) return this.#pool.step(1, label, epoch, index);
    return this.#ex.trainSample(label, epoch, index);
  }

  /** Evaluation forward pass; returns the class, or −1 on a tie for the top count. */
  infer(image: Uint8Array): number {
    this.#image.set(image);
    if (this.#pool) return this.#pool.step(0, 0, 0, 0);
    return this.#ex.inferSample();
  }

  /** True when built with `inferenceOnly` (forward weights only: less memory, faster start). */
  get inferenceOnly(): boolean {
    return this.#inferenceOnly;
  }

  /** Threads the steps run on. */
  get threads(): number {
    return this.#pool?.threads ?? 1;
  }

  /** Stops the worker threads (a no-op for one thread); the network is unusable afterwards. */
  async close(): Promise<void> {
    await this.#pool?.close();
  }

  /** Output spike counts of the last step (a view; copy it to keep it). */
  get counts(): Int32Array {
    return this.#counts;
  }

  /** Saturation events since creation (must stay 0). */
  get saturations(): number {
    return this.#ex.saturations();
  }
}
