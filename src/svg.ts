/**
 * A small SVG writer and the SVG → PNG step of the rendering commands (`plot`, `raster`,
 * `fields`).
 *
 * Markup is built as strings: {@linkcode el} writes one element with escaped attributes,
 * {@linkcode text} one text element with escaped content, {@linkcode svgDocument} the root.
 * Numbers are written with at most two decimals; a non-finite number throws, so a layout bug
 * never ends up as `NaN` in a file.
 *
 * {@linkcode svgToPng} rasterizes with resvg (the Rust SVG renderer, as WebAssembly:
 * `npm:@resvg/resvg-wasm`, no native binaries) and the DejaVu Sans font from
 * `npm:dejavu-fonts-ttf` (TrueType files), both pinned, so the PNGs are the same on every
 * machine whatever fonts it has. The SVGs name `DejaVu Sans` first and fall back to other
 * sans-serif fonts in a browser.
 *
 * @example An element with escaped text
 * ```ts
 * import assert from "node:assert/strict";
 * import { el, text } from "./svg.ts";
 *
 * assert.equal(el("rect", { x: 1.005, y: 2, fill: "red" }), '<rect x="1" y="2" fill="red"/>');
 * assert.equal(text(3, 4, "a < b"), '<text x="3" y="4">a &lt; b</text>');
 * ```
 *
 * @module
 */
import { initWasm, Resvg } from "@resvg/resvg-wasm";
// Imported so that the font package is part of the module graph (downloaded, locked); its
// TrueType files are then read from the package's folder.
import fontPackage from "dejavu-fonts-ttf/package.json" with { type: "json" };
import { Buffer } from "node:buffer";

/** Font family the renderer loads; every SVG here names it first. */
export const FONT_FAMILY = "DejaVu Sans";
/** The `font-family` of every SVG written here: DejaVu Sans, then common fallbacks. */
export const FONT_STACK = "DejaVu Sans, Verdana, Arial, sans-serif";
/** Version of the DejaVu fonts used to rasterize. */
export const FONT_VERSION: string = fontPackage.version;

/** An attribute value; `undefined`, `null` and `false` leave the attribute out. */
export type AttrValue = string | number | boolean | undefined | null;
/** Attributes of an element, written in insertion order. */
export type Attrs = Record<string, AttrValue>;

const NAME = /^[A-Za-z_][A-Za-z0-9_.:-]*$/;

/**
 * Escapes text for XML content and attribute values (`&`, `<`, `>`, `"`, `'`).
 *
 * @param s The text.
 * @returns The escaped text.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { escapeXml } from "./svg.ts";
 *
 * assert.equal(escapeXml(`<a href="x">&'`), "&lt;a href=&quot;x&quot;&gt;&amp;&apos;");
 * ```
 */
export function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&${ENTITIES[c]};`);
}

const ENTITIES: Record<string, string> = {
  "&": "amp",
  "<": "lt",
  ">": "gt",
  '"': "quot",
  "'": "apos",
};

/**
 * Writes a number for SVG: at most two decimals, no trailing zeros, no `-0`.
 *
 * @param x A finite number.
 * @returns Its text.
 * @throws {RangeError} `x` is not finite.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { num } from "./svg.ts";
 *
 * assert.deepEqual([num(1.005), num(-0.001), num(2.5), num(1e6)], ["1", "0", "2.5", "1000000"]);
 * assert.throws(() => num(NaN), RangeError);
 * ```
 */
export function num(x: number): string {
  if (!Number.isFinite(x)) throw new RangeError(`Cannot write ${x} as an SVG number`);
  const r = Math.round(x * 100) / 100;
  return r === 0 ? "0" : String(r);
}

/**
 * Writes one element: `<name a="v" …/>`, or with children `<name …>children</name>`.
 *
 * @param name Element name.
 * @param attrs Attributes; numbers go through {@linkcode num}, strings are escaped, `true` is
 *   written as the attribute's own name, and `undefined`/`null`/`false` are left out.
 * @param children Markup already written (by `el`, {@linkcode text}, or escaped by hand);
 *   falsy entries are skipped.
 * @returns The element's markup.
 * @throws {TypeError} A name that is not an XML name.
 *
 * @example Nested elements
 * ```ts
 * import assert from "node:assert/strict";
 * import { el } from "./svg.ts";
 *
 * assert.equal(
 *   el("g", { class: "a&b", hidden: undefined }, el("circle", { r: 2 }), false),
 *   '<g class="a&amp;b"><circle r="2"/></g>',
 * );
 * ```
 */
export function el(
  name: string,
  attrs: Attrs = {},
  ...children: (string | false | null | undefined)[]
): string {
  if (!NAME.test(name)) throw new TypeError(`Invalid SVG element name: ${JSON.stringify(name)}`);
  let s = `<${name}`;
  for (const [key, value] of Object.entries(attrs)) {
    if (!NAME.test(key)) throw new TypeError(`Invalid SVG attribute name: ${JSON.stringify(key)}`);
    if (value === undefined || value === null || value === false) continue;
    const v = value === true ? key : typeof value === "number" ? num(value) : escapeXml(value);
    s += ` ${key}="${v}"`;
  }
  const body = children.filter((c) => typeof c === "string" && c !== "").join("");
  return body === "" ? `${s}/>` : `${s}>${body}</${name}>`;
}

/**
 * Writes a `<text>` element with escaped content.
 *
 * @param x Anchor x.
 * @param y Baseline y.
 * @param content The text (escaped here).
 * @param attrs More attributes (`text-anchor`, `font-size`, …).
 * @returns The element's markup.
 */
export function text(x: number, y: number, content: string, attrs: Attrs = {}): string {
  return el("text", { x, y, ...attrs }, escapeXml(content));
}

/** Options of {@linkcode svgDocument}. */
export interface DocumentOptions {
  /** Width in pixels. */
  width: number;
  /** Height in pixels. */
  height: number;
  /** `<title>` of the document (shown by viewers as its name). */
  title?: string;
  /** Background colour of the whole canvas (default white). */
  background?: string;
}

/**
 * Writes a complete SVG document: XML declaration, root with `viewBox`, title, background.
 *
 * @param options Size, title and background.
 * @param children The content.
 * @returns The document, ending in a newline.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { el, svgDocument } from "./svg.ts";
 *
 * const svg = svgDocument({ width: 10, height: 5, title: "t" }, el("circle", { r: 1 }));
 * assert.ok(svg.startsWith("<?xml"));
 * assert.ok(svg.includes('viewBox="0 0 10 5"') && svg.includes("<title>t</title>"));
 * ```
 */
export function svgDocument(options: DocumentOptions, ...children: string[]): string {
  const { width, height } = options;
  const root = el(
    "svg",
    {
      xmlns: "http://www.w3.org/2000/svg",
      width,
      height,
      viewBox: `0 0 ${num(width)} ${num(height)}`,
      "font-family": FONT_STACK,
      "font-size": 12,
    },
    options.title === undefined ? undefined : el("title", {}, escapeXml(options.title)),
    el("rect", { width, height, fill: options.background ?? "#ffffff" }),
    ...children,
  );
  return `<?xml version="1.0" encoding="UTF-8"?>\n${root}\n`;
}

/**
 * Estimates the width of `s` in DejaVu Sans at `size` pixels (for layout: legends, margins).
 * Within about 10 % for Latin text and digits.
 *
 * @param s The text.
 * @param size Font size in pixels.
 * @returns The estimated width in pixels.
 */
export function textWidth(s: string, size: number): number {
  let em = 0;
  for (const c of s) {
    if (" .,:;'|!ijlI()[]{}".includes(c)) em += 0.32;
    else if ("ft".includes(c)) em += 0.4;
    else if ("mwMW%@".includes(c)) em += 0.95;
    else if (c >= "A" && c <= "Z") em += 0.7;
    else em += 0.62;
  }
  return em * size;
}

/**
 * Shortens `s` with a trailing `…` until {@linkcode textWidth} says it fits in `maxWidth`.
 *
 * @param s The text.
 * @param size Font size in pixels.
 * @param maxWidth Room in pixels.
 * @returns `s`, or its longest prefix that fits followed by `…`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { fitText } from "./svg.ts";
 *
 * assert.equal(fitText("short", 12, 100), "short");
 * assert.equal(fitText("a much longer legend entry", 12, 60), "a much …");
 * ```
 */
export function fitText(s: string, size: number, maxWidth: number): string {
  if (textWidth(s, size) <= maxWidth) return s;
  const chars = [...s];
  while (chars.length > 0 && textWidth(chars.join("") + "…", size) > maxWidth) chars.pop();
  return chars.join("") + "…";
}

/**
 * A `data:` URI of a PNG, for an `<image>` element that needs no other file.
 *
 * @param png The PNG file's bytes.
 * @returns `data:image/png;base64,…`.
 */
export function pngDataUri(png: Uint8Array): string {
  return `data:image/png;base64,${Buffer.from(png).toString("base64")}`;
}

const RESVG_WASM = "@resvg/resvg-wasm/index_bg.wasm";
const FONT_FILES = ["DejaVuSans.ttf", "DejaVuSans-Bold.ttf"];

let engine: Promise<Uint8Array[]> | undefined;

/** Instantiates resvg once and reads the fonts; returns the font files' bytes. */
function loadEngine(): Promise<Uint8Array[]> {
  engine ??= (async () => {
    const file = (specifier: string) => Deno.readFile(new URL(import.meta.resolve(specifier)));
    const [wasm, ...fonts] = await Promise.all([
      file(RESVG_WASM),
      ...FONT_FILES.map((f) => file(`dejavu-fonts-ttf/ttf/${f}`)),
    ]);
    await initWasm(wasm);
    return fonts;
  })();
  return engine;
}

/**
 * Rasterizes an SVG document to PNG with resvg and the DejaVu Sans font.
 *
 * @param svg The SVG document.
 * @param scale Pixels per SVG unit (default 1: the PNG has the SVG's width and height).
 * @returns The PNG file's bytes (RGBA, 8 bits).
 *
 * @example A 20×10 document becomes a 20×10 PNG
 * ```ts
 * import assert from "node:assert/strict";
 * import { svgDocument, svgToPng, text } from "./svg.ts";
 * import { readPngHeader } from "./png.ts";
 *
 * const png = await svgToPng(svgDocument({ width: 20, height: 10 }, text(1, 8, "hi")));
 * const { width, height } = readPngHeader(png);
 * assert.deepEqual([width, height], [20, 10]);
 * ```
 */
export async function svgToPng(svg: string, scale = 1): Promise<Uint8Array> {
  if (!(scale > 0 && scale <= 16)) throw new RangeError(`svgToPng: scale ${scale} not in (0, 16]`);
  const fontBuffers = await loadEngine();
  const resvg = new Resvg(svg, {
    font: {
      fontBuffers,
      defaultFontFamily: FONT_FAMILY,
      sansSerifFamily: FONT_FAMILY,
    },
    fitTo: scale === 1 ? { mode: "original" } : { mode: "zoom", value: scale },
  });
  try {
    const image = resvg.render();
    try {
      return image.asPng();
    } finally {
      image.free();
    }
  } finally {
    resvg.free();
  }
}
