/**
 * Inference API: load a trained model and classify 28×28 grayscale images.
 *
 * Images are 784 bytes, row-major, a light digit (or garment) on a dark background: the
 * convention of MNIST and Fashion-MNIST. A `Uint8Array` (or `Uint8ClampedArray`) of 784 bytes
 * is used as is; a plain array must hold 784 integers 0..255. Anything else is rejected with a
 * `TypeError` (wrong type, non-integer pixel) or `RangeError` (wrong length, pixel out of
 * range) that names the problem. PNGs go through {@linkcode Classifier.classifyPng}.
 *
 * The kernels come from the copy of desire.wasm embedded in the module, so loading needs no
 * file system or network: pass the model's bytes and it runs in edge functions too.
 *
 * @module
 */
import { Network } from "./network.ts";
import { decodeModel, type Model, type ModelInfo } from "./model_file.ts";
import type { NetConfig } from "./params.ts";
import { decodePng } from "./png.ts";

// The PNG decoder too, so that edge code can import this module alone (mod.ts also pulls in
// the dataset loader, whose node:crypto import costs ~20 ms at start-up).
export { decodePng, PngError } from "./png.ts";

/** Image width the classifier takes. */
export const IMAGE_WIDTH = 28;
/** Image height the classifier takes. */
export const IMAGE_HEIGHT = 28;
/** Pixels per image (28 × 28). */
export const IMAGE_PIXELS = IMAGE_WIDTH * IMAGE_HEIGHT;

/** An image: 784 gray pixels 0..255, row-major, light on dark. */
export type ImageInput = Uint8Array | Uint8ClampedArray | readonly number[];

/** The outcome of classifying one image. */
export interface Classification {
  /** The predicted class, or `null` when two or more classes tie for the top spike count. */
  class: number | null;
  /** Output spike counts, one per class (0..tsteps). */
  counts: number[];
  /** Milliseconds spent on this image. */
  ms: number;
}

/** The outcome of classifying a batch. */
export interface BatchClassification {
  /** One result per image, in order. */
  results: Classification[];
  /** Milliseconds for the whole batch (validation included). */
  ms: number;
}

/** Where a model comes from: its bytes, a file path, a URL, or an already decoded model. */
export type ModelSource = Uint8Array | ArrayBuffer | string | URL | Model;

function describe(x: unknown): string {
  if (x === null) return "null";
  if (Array.isArray(x)) return `an array of ${x.length}`;
  if (typeof x !== "object") return typeof x === "number" ? `the number ${x}` : typeof x;
  const name = (x as object).constructor?.name ?? "object";
  const length = (x as { length?: unknown }).length;
  return typeof length === "number" ? `a ${name} of length ${length}` : `a ${name}`;
}

/**
 * Checks an image and returns it as a `Uint8Array` of 784 pixels (the input itself when it
 * already is one, a view for a `Uint8ClampedArray`, a copy for a plain array).
 *
 * @param image The candidate.
 * @param what Its name in error messages.
 * @returns The pixels.
 *
 * @example What is accepted and what is not
 * ```ts
 * import assert from "node:assert/strict";
 * import { toImage } from "./classifier.ts";
 *
 * assert.equal(toImage(new Array(784).fill(255)).length, 784);
 * assert.throws(() => toImage(new Uint8Array(100)), RangeError);
 * assert.throws(() => toImage(new Float32Array(784)), TypeError);
 * assert.throws(() => toImage([...new Array(783).fill(0), 1.5]), /image\[783\] is 1.5/);
 * assert.throws(() => toImage([...new Array(783).fill(0), 256]), /image\[783\] is 256/);
 * ```
 */
export function toImage(image: unknown, what = "image"): Uint8Array {
  const shape = `${IMAGE_PIXELS} pixels (${IMAGE_WIDTH}×${IMAGE_HEIGHT} grayscale, row-major)`;
  let pixels: Uint8Array;
  if (image instanceof Uint8Array) {
    pixels = image;
  } else if (image instanceof Uint8ClampedArray) {
    pixels = new Uint8Array(image.buffer, image.byteOffset, image.length);
  } else if (Array.isArray(image)) {
    if (image.length !== IMAGE_PIXELS) {
      throw new RangeError(`${what} has ${image.length} values; expected ${shape}`);
    }
    pixels = new Uint8Array(IMAGE_PIXELS);
    for (let i = 0; i < IMAGE_PIXELS; i++) {
      const v: unknown = image[i];
      if (typeof v !== "number" || !Number.isInteger(v)) {
        throw new TypeError(
          `${what}[${i}] is ${
            typeof v === "number" ? v : describe(v)
          }; pixels must be integers 0..255`,
        );
      }
      if (v < 0 || v > 255) {
        throw new RangeError(`${what}[${i}] is ${v}; pixels must be in 0..255`);
      }
      pixels[i] = v;
    }
    return pixels;
  } else {
    throw new TypeError(
      `${what} must be a Uint8Array or an array of integers 0..255 with ${shape}; got ${
        describe(image)
      }`,
    );
  }
  if (pixels.length !== IMAGE_PIXELS) {
    throw new RangeError(`${what} has ${pixels.length} bytes; expected ${shape}`);
  }
  return pixels;
}

function isModel(x: unknown): x is Model {
  return typeof x === "object" && x !== null && !(x instanceof Uint8Array) &&
    !(x instanceof ArrayBuffer) && !(x instanceof URL) && Array.isArray((x as Model).weights) &&
    typeof (x as Model).config === "object";
}

/** Reads a file into one buffer of its size (about twice as fast as `Deno.readFile`). */
async function readWholeFile(path: string | URL): Promise<Uint8Array> {
  using file = await Deno.open(path);
  const { size } = await file.stat();
  const buf = new Uint8Array(size);
  let n = 0;
  while (n < size) {
    const got = await file.read(buf.subarray(n));
    if (got === null) return buf.subarray(0, n); // truncated while reading
    n += got;
  }
  return buf;
}

async function readSource(source: string | URL): Promise<Uint8Array> {
  const name = String(source);
  if (typeof source === "string" || source.protocol === "file:") {
    try {
      return await readWholeFile(source);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) {
        throw new Deno.errors.NotFound(`Cannot load model ${name}: no such file`);
      }
      throw e;
    }
  }
  const res = await fetch(source);
  if (!res.ok) {
    await res.body?.cancel();
    throw new TypeError(`Cannot load model ${name}: HTTP ${res.status} ${res.statusText}`);
  }
  return new Uint8Array(await res.arrayBuffer());
}

/**
 * A trained network ready to classify images. Build one with {@linkcode loadClassifier}.
 *
 * One classifier holds one WebAssembly instance and classifies one image at a time
 * (synchronously); create several for parallel workers.
 */
export class Classifier {
  /** Layer sizes, inputs first (e.g. `[784, 1600, 800, 10]`). */
  readonly shape: readonly number[];
  /** Dataset the model was trained on (from the model's metadata, e.g. `"mnist"`). */
  readonly dataset: string;
  /** Number of classes (the output layer's size). */
  readonly classes: number;
  /** The model's metadata: hyper-parameters, seed, epochs, accuracies. */
  readonly info: Readonly<ModelInfo>;
  #net: Network;

  private constructor(net: Network, info: ModelInfo) {
    this.#net = net;
    this.info = Object.freeze({ ...info, config: Object.freeze({ ...info.config }) });
    this.shape = Object.freeze([...info.config.sizes]);
    this.dataset = info.dataset;
    this.classes = this.shape[this.shape.length - 1];
  }

  /** A classifier for a decoded model (see {@linkcode loadClassifier} for the other sources). */
  static async fromModel(model: Model, source = "model"): Promise<Classifier> {
    const sizes = model.config.sizes;
    if (sizes[0] !== IMAGE_PIXELS) {
      throw new RangeError(
        `Cannot load model ${source}: its input layer has ${sizes[0]} neurons; the classifier ` +
          `takes ${IMAGE_WIDTH}×${IMAGE_HEIGHT} images (${IMAGE_PIXELS} inputs)`,
      );
    }
    const config: NetConfig = { ...model.config, sizes: [...sizes] };
    let net: Network;
    try {
      net = await Network.create(config, model.seed, model.weights, { inferenceOnly: true });
    } catch (e) {
      if (e instanceof RangeError) {
        throw new RangeError(`Cannot load model ${source}: ${e.message}`);
      }
      throw e;
    }
    const { weights: _, ...info } = model;
    return new Classifier(net, { ...info, config });
  }

  #run(pixels: Uint8Array, t0: number): Classification {
    const c = this.#net.infer(pixels);
    const counts = Array.from(this.#net.counts);
    return { class: c < 0 ? null : c, counts, ms: performance.now() - t0 };
  }

  /**
   * Classifies one image.
   *
   * @param image 784 pixels 0..255, row-major, light on dark (see {@linkcode toImage}).
   * @returns The class (`null` on a tie for the top count), the counts and the time taken.
   *
   * @example Classify an image
   * ```ts
   * import assert from "node:assert/strict";
   * import { loadClassifier } from "./classifier.ts";
   * import { encodeModel } from "./model_file.ts";
   * import { kaimingMaster } from "./network.ts";
   *
   * const config = {
   *   sizes: [784, 64, 10], tsteps: 20, threshold: 1, decay: 2, margin: 4,
   *   desireHid: 0.05, desireOut: 0.3, dropIn: 0, dropHid: 0.3,
   * };
   * const weights = kaimingMaster(config.sizes, 3);
   * const classifier = await loadClassifier(
   *   encodeModel({ config, seed: 3, epoch: 0, dataset: "mnist", hyper: {} }, weights),
   * );
   * const image = new Uint8Array(784).fill(255, 28 * 10, 28 * 14); // a bar
   * const { class: cls, counts } = classifier.classify(image);
   * assert.equal(counts.length, 10);
   * assert.ok(cls === null || (cls >= 0 && cls < 10));
   * assert.throws(() => classifier.classify(new Uint8Array(28 * 27)), RangeError);
   * ```
   */
  classify(image: ImageInput): Classification {
    const t0 = performance.now();
    return this.#run(toImage(image), t0);
  }

  /**
   * Classifies a batch: an array of images, or one `Uint8Array` of `n × 784` pixels. Every
   * image is checked before any is classified.
   *
   * @param images The images.
   * @returns One result per image and the total time.
   *
   * @example Two images back to back in one buffer
   * ```ts
   * import assert from "node:assert/strict";
   * import { loadClassifier } from "./classifier.ts";
   * import { encodeModel } from "./model_file.ts";
   *
   * const config = {
   *   sizes: [784, 10], tsteps: 20, threshold: 1, decay: 2, margin: 4,
   *   desireHid: 0.05, desireOut: 0.3, dropIn: 0, dropHid: 0.3,
   * };
   * // All-zero weights: no output neuron fires, all ten tie, so no class.
   * const bytes = encodeModel(
   *   { config, seed: 0, epoch: 0, dataset: "mnist", hyper: {} }, [new Int32Array(7840)],
   * );
   * const classifier = await loadClassifier(bytes);
   * const { results, ms } = classifier.classifyBatch(new Uint8Array(2 * 784));
   * assert.equal(results.length, 2);
   * assert.equal(results[0].class, null);
   * assert.deepEqual(results[1].counts, new Array(10).fill(0));
   * assert.ok(ms >= 0);
   * ```
   */
  classifyBatch(images: Uint8Array | readonly ImageInput[]): BatchClassification {
    const t0 = performance.now();
    let list: Uint8Array[];
    if (images instanceof Uint8Array) {
      if (images.length % IMAGE_PIXELS !== 0) {
        throw new RangeError(
          `batch has ${images.length} bytes, not a multiple of ${IMAGE_PIXELS} ` +
            `(${IMAGE_WIDTH}×${IMAGE_HEIGHT} images back to back)`,
        );
      }
      list = [];
      for (let o = 0; o < images.length; o += IMAGE_PIXELS) {
        list.push(images.subarray(o, o + IMAGE_PIXELS));
      }
    } else if (Array.isArray(images)) {
      list = images.map((img, i) => toImage(img, `images[${i}]`));
    } else {
      throw new TypeError(
        `batch must be an array of images or a Uint8Array of n × ${IMAGE_PIXELS} bytes; got ${
          describe(images)
        }`,
      );
    }
    const results = list.map((pixels) => this.#run(pixels, performance.now()));
    return { results, ms: performance.now() - t0 };
  }

  /**
   * Decodes a 28×28 PNG (8-bit gray, gray + alpha, RGB or RGBA; transparency over black) and
   * classifies it. Malformed PNGs and other sizes are rejected with a `PngError`.
   *
   * @param png The PNG file's bytes.
   * @returns The classification; `ms` includes decoding.
   */
  async classifyPng(png: Uint8Array): Promise<Classification> {
    const t0 = performance.now();
    const image = await decodePng(png, {
      requireSize: { width: IMAGE_WIDTH, height: IMAGE_HEIGHT, label: "the classifier" },
    });
    return this.#run(image.data, t0);
  }
}

/**
 * Loads a model and returns a {@linkcode Classifier}.
 *
 * @param model The model file's bytes (`Uint8Array` or `ArrayBuffer`: works without a file
 *   system), a file path, a `file:`/`http(s):` URL, or a model from `decodeModel`/`loadModel`.
 * @returns The classifier; throws `TypeError`/`RangeError` naming the model for a corrupt
 *   model or one whose input is not 28×28, `Deno.errors.NotFound` for a missing file.
 *
 * @example Load from bytes and read the metadata
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadClassifier } from "./classifier.ts";
 * import { encodeModel } from "./model_file.ts";
 * import { kaimingMaster } from "./network.ts";
 *
 * const config = {
 *   sizes: [784, 32, 10], tsteps: 20, threshold: 1, decay: 2, margin: 4,
 *   desireHid: 0.05, desireOut: 0.3, dropIn: 0, dropHid: 0.3,
 * };
 * const bytes = encodeModel(
 *   { config, seed: 1, epoch: 3, dataset: "fashion-mnist", hyper: {}, testAccuracy: 0.8 },
 *   kaimingMaster(config.sizes, 1),
 * );
 * const classifier = await loadClassifier(bytes);
 * assert.deepEqual(classifier.shape, [784, 32, 10]);
 * assert.equal(classifier.dataset, "fashion-mnist");
 * assert.equal(classifier.info.testAccuracy, 0.8);
 * await assert.rejects(loadClassifier(new Uint8Array(3)), /Cannot load <bytes>: file has 3 bytes/);
 * ```
 */
export async function loadClassifier(model: ModelSource): Promise<Classifier> {
  if (isModel(model)) return Classifier.fromModel(model);
  let bytes: Uint8Array, source: string;
  if (model instanceof Uint8Array) {
    bytes = model;
    source = "<bytes>";
  } else if (model instanceof ArrayBuffer) {
    bytes = new Uint8Array(model);
    source = "<bytes>";
  } else if (typeof model === "string" || model instanceof URL) {
    bytes = await readSource(model);
    source = String(model);
  } else {
    throw new TypeError(
      `loadClassifier: expected model bytes, a path, a URL or a decoded model; got ${
        describe(model)
      }`,
    );
  }
  return Classifier.fromModel(decodeModel(bytes, source, { checkRange: false }), source);
}
