/**
 * Receptive fields (the `fields` command): the first layer's weights of the first N neurons as
 * a grid of 28×28 images, each scaled to its own largest |w| on a diverging colour map
 * (0 white, positive red, negative blue).
 *
 * @example Colours of the map
 * ```ts
 * import assert from "node:assert/strict";
 * import { divergingColor, NEGATIVE, POSITIVE } from "./fields.ts";
 *
 * assert.deepEqual(divergingColor(0), [255, 255, 255]);
 * assert.deepEqual(divergingColor(1), POSITIVE);
 * assert.deepEqual(divergingColor(-1), NEGATIVE);
 * ```
 *
 * @module
 */
import { MASTER_FRAC } from "./params.ts";
import { encodePng, type RawImage } from "./png_encode.ts";
import { el, pngDataUri, svgDocument, text, textWidth } from "./svg.ts";

/** Side of an input image in pixels (the first layer must have SIDE² = 784 inputs). */
export const SIDE = 28;
/** Colour of +max |w| (ColorBrewer RdBu's dark red). */
export const POSITIVE: readonly [number, number, number] = [178, 24, 43];
/** Colour of −max |w| (ColorBrewer RdBu's dark blue). */
export const NEGATIVE: readonly [number, number, number] = [33, 102, 172];
/** Frame around each tile. */
const FRAME: readonly [number, number, number] = [150, 150, 150];

/**
 * The colour of a weight scaled to [−1, 1]: white at 0, linear to {@linkcode POSITIVE} at +1
 * and to {@linkcode NEGATIVE} at −1 (values beyond are clamped).
 *
 * @param v The scaled weight.
 * @returns `[r, g, b]`, 0..255.
 */
export function divergingColor(v: number): [number, number, number] {
  const a = Math.min(1, Math.abs(v));
  const end = v >= 0 ? POSITIVE : NEGATIVE;
  return [0, 1, 2].map((k) => Math.round(255 + (end[k] - 255) * a)) as [number, number, number];
}

/** Where the tiles are in the grid image (pixels). */
export interface FieldsLayout {
  /** Neurons drawn: 0 .. count − 1. */
  count: number;
  /** Tiles per row. */
  columns: number;
  /** Rows of tiles. */
  rows: number;
  /** Pixels per weight. */
  scale: number;
  /** Distance between the left edges of two tiles. */
  pitchX: number;
  /** Distance between the top edges of two tiles (a tile and its caption). */
  pitchY: number;
  /** Height of the caption under a tile. */
  captionH: number;
}

/** Options of {@linkcode renderFields}. */
export interface FieldsOptions {
  /** Neurons to draw, from the first (default 100, or all if the layer has fewer). */
  count?: number;
  /** Tiles per row (default ⌈√count⌉, at most count). */
  columns?: number;
  /** Pixels per weight (default 3). */
  scale?: number;
  /** Title (default `First-layer weights`). */
  title?: string;
  /** The model, as named in the subtitle (its file). */
  model?: string;
}

/** Default number of neurons drawn. */
export const DEFAULT_COUNT = 100;

const MARGIN = 24;
const SCALE_NOTE = "each tile scaled to its own max |w| (under the tile, in threshold units)";
const HEADER = 100;

/**
 * The layout of the grid for a count and options, checked.
 *
 * @param neurons Neurons in the first layer.
 * @param options Count, columns, scale.
 * @returns The layout.
 * @throws {RangeError} A count, column count or scale that is not an integer ≥ 1, or a count
 *   above the layer's size.
 */
export function fieldsLayout(neurons: number, options: FieldsOptions = {}): FieldsLayout {
  const count = options.count ?? Math.min(DEFAULT_COUNT, neurons);
  if (!Number.isInteger(count) || count < 1 || count > neurons) {
    throw new RangeError(
      `Invalid --count: ${count} (must be an integer in 1..${neurons}: the first layer has ` +
        `${neurons} neurons)`,
    );
  }
  const columns = Math.min(count, options.columns ?? Math.ceil(Math.sqrt(count)));
  if (!Number.isInteger(columns) || columns < 1) {
    throw new RangeError(`Invalid --columns: ${options.columns} (must be an integer ≥ 1)`);
  }
  const scale = options.scale ?? 3;
  if (!Number.isInteger(scale) || scale < 1 || scale > 16) {
    throw new RangeError(`Invalid scale: ${scale} (must be an integer in 1..16)`);
  }
  const tile = SIDE * scale + 2; // with a 1-pixel frame
  const captionH = 14;
  return {
    count,
    columns,
    rows: Math.ceil(count / columns),
    scale,
    pitchX: tile + 8,
    pitchY: tile + captionH + 6,
    captionH,
  };
}

/** Top-left pixel of the inside of neuron j's tile (below and right of its frame). */
export function tileOrigin(layout: FieldsLayout, j: number): { x: number; y: number } {
  return {
    x: (j % layout.columns) * layout.pitchX + 1,
    y: Math.floor(j / layout.columns) * layout.pitchY + 1,
  };
}

/**
 * Draws the tiles of the first `layout.count` neurons into one RGB image: neuron j's 784
 * weights (row j of `weights`, input i = row · 28 + column) scaled by their largest |w| (an
 * all-zero neuron is white), each weight a `scale × scale` block inside a grey frame.
 *
 * @param weights The first layer's weights, out × in row-major (any numeric scale).
 * @param layout From {@linkcode fieldsLayout}.
 * @returns The image and each drawn neuron's largest |w| (in the weights' units).
 */
export function fieldsImage(
  weights: ArrayLike<number>,
  layout: FieldsLayout,
): { image: RawImage; maxAbs: number[] } {
  const { count, columns, rows, scale, pitchX, pitchY, captionH } = layout;
  const width = columns * pitchX - 8, height = rows * pitchY - 6 - captionH;
  const data = new Uint8Array(width * height * 3).fill(255);
  const put = (x: number, y: number, c: readonly number[]) => data.set(c, (y * width + x) * 3);
  const maxAbs: number[] = [];
  const n = SIDE * SIDE;
  for (let j = 0; j < count; j++) {
    let m = 0;
    for (let i = 0; i < n; i++) m = Math.max(m, Math.abs(weights[j * n + i]));
    maxAbs.push(m);
    const { x: ox, y: oy } = tileOrigin(layout, j);
    const inner = SIDE * scale;
    for (let k = -1; k <= inner; k++) {
      put(ox + k, oy - 1, FRAME);
      put(ox + k, oy + inner, FRAME);
      put(ox - 1, oy + k, FRAME);
      put(ox + inner, oy + k, FRAME);
    }
    for (let i = 0; i < n; i++) {
      const c = divergingColor(m === 0 ? 0 : weights[j * n + i] / m);
      const px = ox + (i % SIDE) * scale, py = oy + Math.floor(i / SIDE) * scale;
      for (let dy = 0; dy < scale; dy++) {
        for (let dx = 0; dx < scale; dx++) put(px + dx, py + dy, c);
      }
    }
  }
  return { image: { width, height, channels: 3, data }, maxAbs };
}

/** Where {@linkcode renderFields} puts the grid image in the document. */
export const GRID_ORIGIN = { x: MARGIN, y: HEADER } as const;

/**
 * Draws the receptive fields of a model's first layer as an SVG document: a title, a colour
 * bar, and the grid image (embedded as a PNG at its natural size, so its pixels are exact)
 * with a caption under each tile: the neuron's index and its largest |w| in threshold units.
 *
 * @param model The model's layer sizes and master weights (Q11.20).
 * @param options Count, columns, scale, title, model name.
 * @returns The document, its size and the layout.
 * @throws {RangeError} The first layer does not have 784 inputs, or a bad count or columns.
 */
export function renderFields(
  model: { config: { sizes: number[] }; weights: Int32Array[] },
  options: FieldsOptions = {},
): { svg: string; width: number; height: number; layout: FieldsLayout } {
  const sizes = model.config.sizes;
  if (sizes[0] !== SIDE * SIDE) {
    throw new RangeError(
      `Cannot draw receptive fields of ${options.model ?? "the model"}: its input layer has ` +
        `${sizes[0]} neurons, not ${SIDE * SIDE} (${SIDE}×${SIDE} images)`,
    );
  }
  const layout = fieldsLayout(sizes[1], options);
  const { image, maxAbs } = fieldsImage(model.weights[0], layout);
  const unit = 2 ** MASTER_FRAC;
  const parts: string[] = [];
  const title = options.title ?? "First-layer weights";
  const last = layout.count - 1;
  parts.push(text(MARGIN, 32, title, { "font-size": 18, "font-weight": "bold" }));
  const sub = [
    ...(options.model === undefined ? [] : [options.model]),
    `neurons 0–${last} of ${sizes[1]} (network ${sizes.join("-")})`,
  ].join(" · ");
  parts.push(text(MARGIN, 54, sub, { "font-size": 12, fill: "#444444" }));
  // Colour bar.
  const barX = MARGIN, barY = 66, barW = 160;
  parts.push(
    el(
      "defs",
      {},
      el(
        "linearGradient",
        { id: "diverging", x1: 0, x2: 1, y1: 0, y2: 0 },
        el("stop", { offset: 0, "stop-color": `rgb(${NEGATIVE.join(",")})` }),
        el("stop", { offset: 0.5, "stop-color": "#ffffff" }),
        el("stop", { offset: 1, "stop-color": `rgb(${POSITIVE.join(",")})` }),
      ),
    ),
    el("rect", {
      x: barX,
      y: barY,
      width: barW,
      height: 10,
      fill: "url(#diverging)",
      stroke: "#999999",
    }),
    text(barX, barY + 22, "−max |w|", { "font-size": 10, fill: "#444444" }),
    text(barX + barW / 2, barY + 22, "0", {
      "font-size": 10,
      fill: "#444444",
      "text-anchor": "middle",
    }),
    text(barX + barW, barY + 22, "+max |w|", {
      "font-size": 10,
      fill: "#444444",
      "text-anchor": "end",
    }),
    text(
      barX + barW + 12,
      barY + 9,
      SCALE_NOTE,
      { "font-size": 11, fill: "#444444" },
    ),
  );
  parts.push(el("image", {
    class: "fields",
    x: GRID_ORIGIN.x,
    y: GRID_ORIGIN.y,
    width: image.width,
    height: image.height,
    "image-rendering": "optimizeSpeed",
    href: pngDataUri(encodePng(image)),
  }));
  const captions: string[] = [];
  for (let j = 0; j < layout.count; j++) {
    const { x, y } = tileOrigin(layout, j);
    captions.push(
      text(
        GRID_ORIGIN.x + x - 1,
        GRID_ORIGIN.y + y + SIDE * layout.scale + 12,
        `${j} · ±${(maxAbs[j] / unit).toPrecision(2)}`,
        { "font-size": 9, fill: "#333333" },
      ),
    );
  }
  parts.push(el("g", { class: "captions", "data-count": layout.count }, ...captions));
  const width = Math.ceil(
    Math.max(
      GRID_ORIGIN.x + image.width,
      MARGIN + textWidth(title, 18),
      MARGIN + textWidth(sub, 12),
      MARGIN + 172 + textWidth(SCALE_NOTE, 11),
    ) + MARGIN,
  );
  const height = GRID_ORIGIN.y + image.height + layout.captionH + MARGIN;
  return {
    svg: svgDocument({ width, height, title: `${title}: ${sub}` }, ...parts),
    width,
    height,
    layout,
  };
}
