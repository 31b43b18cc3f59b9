/**
 * desire: train and run spiking neural networks with desire backpropagation
 * (Gerlinghoff et al., Neurocomputing 2023) on integer SIMD WebAssembly kernels.
 *
 * A {@linkcode Network} lives in one instance of `desire.wasm`: bit-packed spike trains,
 * fixed-point membranes and weights, integer STDP updates. This module adds datasets
 * ({@linkcode loadDataset}), evaluation ({@linkcode evaluate}) and model files
 * ({@linkcode saveModel}, {@linkcode loadModel}); `cli.ts` is the command line over it.
 *
 * For inference, {@linkcode loadClassifier} turns a model file (its bytes, a path or a URL)
 * into a {@linkcode Classifier} for 28×28 grayscale images (light on dark, as in the
 * datasets), raw or PNG ({@linkcode decodePng}). desire.wasm is embedded in the module, so
 * nothing but the model's bytes is needed at run time: it works in edge functions too.
 *
 * @example Classify with a saved model
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeModel, kaimingMaster, loadClassifier } from "./mod.ts";
 *
 * // A model file's bytes (here an untrained 784-64-10 network, built in memory).
 * const config = {
 *   sizes: [784, 64, 10], tsteps: 20, threshold: 1, decay: 2, margin: 4,
 *   desireHid: 0.05, desireOut: 0.3, dropIn: 0, dropHid: 0.3,
 * };
 * const bytes = encodeModel(
 *   { config, seed: 0, epoch: 0, dataset: "mnist", hyper: {} },
 *   kaimingMaster(config.sizes, 0),
 * );
 *
 * const classifier = await loadClassifier(bytes); // or a path: "runs/x/model-best.safetensors"
 * assert.deepEqual(classifier.shape, [784, 64, 10]);
 * assert.equal(classifier.dataset, "mnist");
 *
 * const image = new Uint8Array(784); // 28×28, row-major, 0 = background
 * image.fill(255, 28 * 12 + 6, 28 * 12 + 22); // a horizontal stroke
 * const result = classifier.classify(image);
 * assert.equal(result.counts.length, 10); // output spike counts, 0..20 each
 * assert.ok(result.class === null || (result.class >= 0 && result.class <= 9)); // null: a tie
 *
 * const batch = classifier.classifyBatch([image, new Array(784).fill(0)]);
 * assert.equal(batch.results.length, 2);
 * assert.throws(() => classifier.classify(new Uint8Array(100)), RangeError);
 * assert.throws(() => classifier.classify([...new Array(783).fill(0), 300]), RangeError);
 * ```
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
export type { IntParams, NetConfig } from "./src/params.ts";
export type { DesireExports } from "./src/wasm.ts";
export { findDataset, loadDataset } from "./src/datasets.ts";
export type { Dataset, DatasetName, FindOptions, LoadOptions, Split } from "./src/datasets.ts";
export { decodeModel, encodeModel, loadModel, saveModel } from "./src/model_file.ts";
export type { Model, ModelInfo } from "./src/model_file.ts";
export { evaluate } from "./src/evaluate.ts";
export type { EvalResult } from "./src/evaluate.ts";
export {
  Classifier,
  IMAGE_HEIGHT,
  IMAGE_PIXELS,
  IMAGE_WIDTH,
  loadClassifier,
  toImage,
} from "./src/classifier.ts";
export type {
  BatchClassification,
  Classification,
  ImageInput,
  ModelSource,
} from "./src/classifier.ts";
export { decodePng, PngError, readPngHeader } from "./src/png.ts";
export type { GrayImage, PngDecodeOptions, PngHeader } from "./src/png.ts";
