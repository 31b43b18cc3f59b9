/**
 * Spike rasters (the `raster` command): every layer's spikes for one image at evaluation (no
 * dropout), read from the WebAssembly kernels, drawn as one panel per layer (x = time step,
 * y = neuron) beside the image, its label, the predicted class and the output spike counts.
 *
 * The spikes are the module's spike words after `inferSample()`: `wordsPtr(l)` holds one u32
 * per neuron of layer l (l = 0 is the input layer), bit t set when the neuron fired in step t
 * (docs/ABI.md). Layer l ≥ 2 reads layer l − 1's word shifted by one step, so a spike in step t
 * of layer l − 1 reaches layer l in step t + 1; the panels show each layer in its own steps.
 *
 * @example Record and draw the spikes of a small random network
 * ```ts
 * import assert from "node:assert/strict";
 * import { recordSpikes, renderRaster } from "./raster.ts";
 * import { kaimingMaster } from "./network.ts";
 *
 * const config = {
 *   sizes: [784, 16, 10], tsteps: 8, threshold: 1, decay: 2, margin: 4,
 *   desireHid: 0.05, desireOut: 0.3, dropIn: 0, dropHid: 0.3,
 * };
 * const model = { config, seed: 1, epoch: 0, dataset: "mnist", hyper: {}, weights: kaimingMaster(config.sizes, 1) };
 * const image = new Uint8Array(784).fill(255, 300, 400);
 * const spikes = await recordSpikes(model, image);
 * assert.equal(spikes.words.length, 3);
 * const { svg } = renderRaster(spikes, { image, label: 3, index: 0, dataset: "mnist", model: "m" });
 * assert.ok(svg.includes('data-layer="2"'));
 * ```
 *
 * @module
 */
import type { Model } from "./model_file.ts";
import { Network } from "./network.ts";
import { el, num, pngDataUri, svgDocument, text, textWidth } from "./svg.ts";
import { encodePng, upscale } from "./png_encode.ts";

/** The spikes of every layer for one image. */
export interface SpikeRecord {
  /** Layer sizes, inputs first. */
  sizes: number[];
  /** Time steps T. */
  tsteps: number;
  /** Per layer l = 0..L, N_l spike words (bit t: fired in step t). */
  words: Uint32Array[];
  /** Output spike counts, one per class. */
  counts: number[];
  /** The predicted class, or −1 when two classes tie for the top count. */
  predicted: number;
}

/** Class names of Fashion-MNIST, by label. */
export const FASHION_CLASSES: readonly string[] = [
  "T-shirt/top",
  "Trouser",
  "Pullover",
  "Dress",
  "Coat",
  "Sandal",
  "Shirt",
  "Sneaker",
  "Bag",
  "Ankle boot",
];

/** Number of set bits of a u32. */
export function popcount(x: number): number {
  x = x - ((x >>> 1) & 0x55555555);
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  return (((x + (x >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
}

/**
 * Runs one evaluation pass (no dropout) of `model` on `image` and reads every layer's spike
 * words from the module.
 *
 * @param model A loaded model (any weight format; only inference is run).
 * @param image The input, one byte per input neuron (784 for a 28×28 image).
 * @param source The model's file, for messages.
 * @returns The spikes, the output counts and the prediction.
 * @throws {RangeError} The image's size is not the model's input size, or the weights are out
 *   of range.
 */
export async function recordSpikes(
  model: Pick<Model, "config" | "seed" | "weights">,
  image: Uint8Array,
  source = "model",
): Promise<SpikeRecord> {
  const sizes = model.config.sizes;
  if (image.length !== sizes[0]) {
    throw new RangeError(
      `Cannot run model ${source}: its input layer has ${sizes[0]} neurons, the image ` +
        `${image.length} pixels`,
    );
  }
  let net: Network;
  try {
    net = await Network.create({ ...model.config, sizes: [...sizes] }, model.seed, model.weights, {
      inferenceOnly: true,
    });
  } catch (e) {
    if (e instanceof RangeError) throw new RangeError(`Cannot load model ${source}: ${e.message}`);
    throw e;
  }
  try {
    const predicted = net.infer(image);
    const ex = net.exports;
    const T = model.config.tsteps;
    const mask = T >= 32 ? 0xffffffff : (2 ** T) - 1;
    const words = sizes.map((n, l) =>
      new Uint32Array(ex.memory.buffer, ex.wordsPtr(l), n).map((w) => (w & mask) >>> 0)
    );
    return { sizes: [...sizes], tsteps: T, words, counts: Array.from(net.counts), predicted };
  } finally {
    await net.close();
  }
}

/** What {@linkcode renderRaster} shows besides the spikes. */
export interface RasterInfo {
  /** The input image, 28×28 bytes (drawn beside the panels when it has 784 pixels). */
  image: Uint8Array;
  /** Its label. */
  label: number;
  /** Its index in the test set. */
  index: number;
  /** Data set name (`mnist` or `fashion-mnist`), for the title and class names. */
  dataset: string;
  /** The model, as named in the subtitle (its file). */
  model: string;
  /** More facts for the subtitle (e.g. `epoch 3`). */
  details?: string[];
}

const DATASET_TITLES: Record<string, string> = {
  mnist: "MNIST",
  "fashion-mnist": "Fashion-MNIST",
};

/** A label as shown: the digit, or for Fashion-MNIST the digit and the class name. */
export function className(dataset: string, c: number): string {
  return dataset === "fashion-mnist" && c >= 0 && c < FASHION_CLASSES.length
    ? `${c} ${FASHION_CLASSES[c]}`
    : String(c);
}

function layerName(l: number, L: number): string {
  return l === 0 ? "input" : l === L ? "output" : L === 2 ? "hidden" : `hidden ${l}`;
}

/** Ticks 0, s, 2s, … below n with a 1-2-5 step giving at most `most` ticks. */
function indexTicks(n: number, most: number): number[] {
  let step = 0;
  for (let p = 1; step === 0; p *= 10) {
    step = [p, 2 * p, 5 * p].find((s) => Math.ceil(n / s) <= most) ?? 0;
  }
  const ticks: number[] = [];
  for (let t = 0; t < n; t += step) ticks.push(t);
  return ticks;
}

const TOP = 78;
const PANEL_H = 560;
const IMAGE_SCALE = 6;
const SIDE_W = 230;
const LEFT = 24;
const AXIS_W = 46;
const PANEL_GAP = 26;
const INK = "#1a1a1a";

/** Where {@linkcode renderRaster} draws the input image: top-left corner and pixels per pixel. */
export const IMAGE_PLACE = { x: LEFT, y: TOP, scale: IMAGE_SCALE } as const;

/**
 * Draws a spike raster as an SVG document.
 *
 * Each layer is a `<g class="layer">` with `data-layer`, `data-neurons` and `data-spikes`;
 * its spikes are one `<path class="spikes">` with one `M…z` rectangle per spike.
 *
 * @param rec The spikes (from {@linkcode recordSpikes}).
 * @param info The image, label, index, data set and model name.
 * @returns The document and its size in pixels.
 */
export function renderRaster(
  rec: SpikeRecord,
  info: RasterInfo,
): { svg: string; width: number; height: number } {
  const { sizes, tsteps: T, words, counts, predicted } = rec;
  const L = sizes.length - 1;
  const stepW = Math.min(24, Math.max(6, Math.round(220 / T)));
  const plotW = stepW * T;
  const datasetTitle = DATASET_TITLES[info.dataset] ?? info.dataset;
  const parts: string[] = [];
  const title = `Spike raster: ${datasetTitle} test image ${info.index}`;
  parts.push(text(LEFT, 32, title, { "font-size": 18, "font-weight": "bold" }));
  const sub = [
    info.model,
    `network ${sizes.join("-")}`,
    `T = ${T}`,
    ...(info.details ?? []),
    "evaluation (no dropout)",
  ].join(" · ");
  parts.push(text(LEFT, 54, sub, { "font-size": 12, fill: "#444444" }));

  // The image, the label, the prediction, the output counts.
  const side: string[] = [];
  let y = TOP;
  if (info.image.length === 784) {
    const big = upscale({ width: 28, height: 28, channels: 1, data: info.image }, IMAGE_SCALE);
    const size = 28 * IMAGE_SCALE;
    side.push(
      el("image", {
        class: "input-image",
        x: LEFT,
        y,
        width: size,
        height: size,
        "image-rendering": "optimizeSpeed",
        href: pngDataUri(encodePng(big)),
      }),
      el("rect", {
        x: LEFT - 0.5,
        y: y - 0.5,
        width: size + 1,
        height: size + 1,
        fill: "none",
        stroke: "#888888",
      }),
    );
    y += size + 26;
  }
  const correct = predicted === info.label;
  side.push(
    text(LEFT, y, `label: ${className(info.dataset, info.label)}`, {
      "font-size": 14,
      class: "label",
    }),
  );
  y += 20;
  let predictedText: string;
  if (predicted < 0) {
    const top = Math.max(...counts);
    const tied = counts.flatMap((c, k) => (c === top ? [k] : []));
    predictedText = tied.length === counts.length
      ? `predicted: none (all tie at ${top})`
      : `predicted: none (${tied.join(", ")} tie at ${top})`;
  } else {
    predictedText = `predicted: ${className(info.dataset, predicted)} ${correct ? "✓" : "✗"}`;
  }
  side.push(text(LEFT, y, predictedText, {
    "font-size": 14,
    "font-weight": "bold",
    fill: correct ? "#1b7f1b" : "#b01c1c",
    class: "predicted",
  }));
  y += 28;
  side.push(text(LEFT, y, "output spike counts", { "font-size": 12, fill: "#444444" }));
  y += 8;
  const nameW = Math.max(...counts.map((_, k) => textWidth(className(info.dataset, k), 11)));
  const barX = LEFT + Math.ceil(nameW) + 8;
  const barMax = Math.max(40, SIDE_W - (barX - LEFT) - 40);
  counts.forEach((c, k) => {
    const rowY = y + k * 17;
    const fill = k === info.label ? "#2f9e44" : k === predicted ? "#d9480f" : "#8a8a8a";
    side.push(
      text(barX - 6, rowY + 12, className(info.dataset, k), {
        "font-size": 11,
        "text-anchor": "end",
      }),
      el("rect", { x: barX, y: rowY + 3, width: barMax * c / T, height: 11, fill }),
      text(barX + barMax * c / T + 4, rowY + 12, String(c), { "font-size": 11, class: "count" }),
    );
  });
  y += counts.length * 17 + 6;
  side.push(
    text(LEFT, y + 10, `green: label; orange: predicted`, { "font-size": 10, fill: "#666666" }),
  );
  parts.push(el("g", { class: "side" }, ...side));
  const sideBottom = y + 24;

  // One panel per layer.
  let x0 = LEFT + SIDE_W + AXIS_W;
  const plotTop = TOP + 40;
  const timeTicks = indexTicks(T, 6);
  for (let l = 0; l <= L; l++) {
    const n = sizes[l];
    const rowH = PANEL_H / n;
    const w = words[l];
    let spikes = 0;
    let d = "";
    const markW = stepW >= 6 ? stepW - 2 : stepW;
    const markH = rowH >= 3 ? rowH * 0.8 : rowH;
    for (let j = 0; j < n; j++) {
      let bits = w[j];
      if (bits === 0) continue;
      const yj = plotTop + j * rowH + (rowH - markH) / 2;
      for (let t = 0; bits !== 0; t++, bits >>>= 1) {
        if ((bits & 1) === 0) continue;
        spikes++;
        d += `M${num(x0 + t * stepW + (stepW - markW) / 2)},${num(yj)}h${num(markW)}v${
          num(markH)
        }h${num(-markW)}z`;
      }
    }
    const panel: string[] = [];
    // Output layer: the label's and the prediction's rows behind the spikes.
    if (l === L) {
      const band = (k: number, fill: string) =>
        el("rect", { x: x0, y: plotTop + k * rowH, width: plotW, height: rowH, fill });
      if (info.label >= 0 && info.label < n) panel.push(band(info.label, "#d3f0d3"));
      if (predicted >= 0 && predicted !== info.label) panel.push(band(predicted, "#fbd5c5"));
    }
    for (const t of timeTicks) {
      const tx = x0 + (t + 0.5) * stepW;
      panel.push(
        el("line", {
          x1: tx,
          x2: tx,
          y1: plotTop + PANEL_H,
          y2: plotTop + PANEL_H + 4,
          stroke: "#555555",
        }),
        text(tx, plotTop + PANEL_H + 17, String(t), { "text-anchor": "middle", "font-size": 11 }),
      );
    }
    const yTicks = l === L && n <= 20 ? [...Array(n).keys()] : indexTicks(n, 8);
    for (const k of yTicks) {
      const ty = plotTop + (k + 0.5) * rowH;
      panel.push(
        el("line", { x1: x0 - 4, x2: x0, y1: ty, y2: ty, stroke: "#555555" }),
        text(x0 - 6, ty + 4, String(k), { "text-anchor": "end", "font-size": 11 }),
      );
    }
    if (l === L) {
      counts.forEach((c, k) =>
        panel.push(
          text(x0 + plotW + 6, plotTop + (k + 0.5) * rowH + 4, String(c), {
            "font-size": 11,
            fill: "#444444",
          }),
        )
      );
    }
    panel.push(
      el("path", { class: "spikes", d: d === "" ? undefined : d, fill: INK }),
      el("rect", {
        x: x0,
        y: plotTop,
        width: plotW,
        height: PANEL_H,
        fill: "none",
        stroke: "#555555",
      }),
      text(x0, plotTop - 22, `${layerName(l, L)} · ${n.toLocaleString("en-US")}`, {
        "font-size": 13,
        "font-weight": "bold",
      }),
      text(
        x0,
        plotTop - 7,
        `${spikes.toLocaleString("en-US")} spikes, ${(100 * spikes / (n * T)).toFixed(1)} %`,
        { "font-size": 11, fill: "#444444" },
      ),
      text(x0 + plotW / 2, plotTop + PANEL_H + 34, "time step", {
        "text-anchor": "middle",
        "font-size": 11,
        fill: "#444444",
      }),
    );
    parts.push(el(
      "g",
      { class: "layer", "data-layer": l, "data-neurons": n, "data-spikes": spikes },
      ...panel,
    ));
    x0 += plotW + PANEL_GAP + AXIS_W;
  }
  parts.push(text(LEFT + SIDE_W, plotTop + PANEL_H / 2, "neuron", {
    transform: `rotate(-90 ${num(LEFT + SIDE_W)} ${num(plotTop + PANEL_H / 2)})`,
    "text-anchor": "middle",
    "font-size": 12,
    fill: "#444444",
  }));
  const width = Math.ceil(
    Math.max(x0 - AXIS_W + 10, LEFT + textWidth(title, 18) + 16, LEFT + textWidth(sub, 12) + 16),
  );
  const height = Math.ceil(Math.max(plotTop + PANEL_H + 48, sideBottom));
  return {
    svg: svgDocument({ width, height, title: `${title} (${sub})` }, ...parts),
    width,
    height,
  };
}
