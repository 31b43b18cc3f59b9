/**
 * desire: train and run spiking neural networks with desire backpropagation
 * (Gerlinghoff et al., Neurocomputing 2023) on integer SIMD WebAssembly kernels.
 *
 * A {@linkcode Network} lives in one instance of `desire.wasm`: bit-packed spike trains,
 * fixed-point membranes and weights, integer STDP updates. This module adds datasets
 * ({@linkcode loadDataset}), evaluation ({@linkcode evaluate}) and model files
 * ({@linkcode saveModel}, {@linkcode loadModel}); `cli.ts` is the command line over it.
 *
 * @example Train a small network for a few steps and classify
 * ```ts
 * import assert from "node:assert/strict";
 * import { Network } from "./mod.ts";
 *
 * const net = await Network.create({
 *   sizes: [784, 100, 10], tsteps: 20, threshold: 1, decay: 2, margin: 4,
 *   desireHid: 0.05, desireOut: 0.3, dropIn: 0, dropHid: 0.3,
 * }, 0);
 * net.setLearningRate(1e-5);
 * const image = new Uint8Array(784).fill(0);
 * image.fill(255, 300, 420); // a bright bar
 * for (let k = 0; k < 20; k++) net.trainSample(image, 3, 0, k);
 * const predicted = net.infer(image);
 * assert.ok(predicted >= -1 && predicted < 10);
 * assert.equal(net.counts.length, 10);
 * ```
 *
 * @module
 */
export { kaimingMaster, Network } from "./src/network.ts";
export type { NetConfig } from "./src/params.ts";
export { findDataset, loadDataset } from "./src/datasets.ts";
export type { Dataset, DatasetName, Split } from "./src/datasets.ts";
export { decodeModel, encodeModel, loadModel, saveModel } from "./src/model_file.ts";
export type { Model, ModelInfo } from "./src/model_file.ts";
export { evaluate } from "./src/train.ts";
export type { EvalResult } from "./src/train.ts";
