// The rendering commands (plot, raster, fields): the SVG writer, the PNG encoder, the three
// drawings checked element by element and pixel by pixel, every bad input with its exact
// message, and the CLI end to end on tiny models.
import assert from "node:assert/strict";
import { el, escapeXml, num, svgDocument, svgToPng, text, textWidth } from "../src/svg.ts";
import { encodePng, upscale } from "../src/png_encode.ts";
import { decodePng, luma, readPngHeader } from "../src/png.ts";
import {
  accuracyAxis,
  CURVE_LAYOUT,
  DASH,
  epochAxis,
  logAxis,
  parseLog,
  readLog,
  renderCurves,
  RUN_COLORS,
  runName,
} from "../src/plot.ts";
import { IMAGE_PLACE, popcount, recordSpikes, renderRaster } from "../src/raster.ts";
import {
  divergingColor,
  fieldsLayout,
  GRID_ORIGIN,
  NEGATIVE,
  POSITIVE,
  renderFields,
  tileOrigin,
} from "../src/fields.ts";
import {
  fieldsCommand,
  parseFieldsArgs,
  parsePlotArgs,
  parseRasterArgs,
  plotCommand,
  rasterCommand,
} from "../src/render_args.ts";
import { UsageError } from "../src/args.ts";
import { findDataset, loadSplit } from "../src/datasets.ts";
import { type ModelInfo, saveModel } from "../src/model_file.ts";
import { kaimingMaster } from "../src/network.ts";
import type { NetConfig } from "../src/params.ts";

const CLI = new URL("../cli.ts", import.meta.url).pathname;

async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/**
 * Checks that `svg` is well-formed XML of the kind we write: an XML declaration, one root,
 * balanced tags, quoted attributes without duplicates, only the five named entities, no stray
 * `<` or `&`. Returns the element names in document order.
 */
function assertWellFormed(svg: string): string[] {
  assert.ok(svg.startsWith('<?xml version="1.0" encoding="UTF-8"?>\n'), "XML declaration");
  const body = svg.slice(svg.indexOf("\n") + 1);
  const token =
    /<(\/?)([A-Za-z_][\w.:-]*)((?:\s+[A-Za-z_][\w.:-]*="[^"<]*")*)\s*(\/?)>|([^<]+)|(<)/g;
  const badEntity = /&(?!(amp|lt|gt|quot|apos);)/;
  const stack: string[] = [];
  const names: string[] = [];
  let roots = 0;
  for (const m of body.matchAll(token)) {
    const [, close, name, attrs, selfClose, chars, stray] = m;
    if (stray) assert.fail(`stray "<" at ${m.index}: ${body.slice(m.index!, m.index! + 40)}`);
    if (chars !== undefined) {
      assert.ok(!badEntity.test(chars), `bad entity in text ${chars.slice(0, 40)}`);
      assert.ok(stack.length > 0 || chars.trim() === "", "text outside the root");
      continue;
    }
    assert.ok(!badEntity.test(attrs), `bad entity in <${name}${attrs.slice(0, 60)}`);
    const keys = [...attrs.matchAll(/([A-Za-z_][\w.:-]*)=/g)].map((a) => a[1]);
    assert.equal(new Set(keys).size, keys.length, `duplicate attribute in <${name}>`);
    if (close) {
      assert.equal(stack.pop(), name, `</${name}> closes the wrong element`);
      continue;
    }
    names.push(name);
    if (stack.length === 0) roots++;
    if (!selfClose) stack.push(name);
  }
  assert.deepEqual(stack, [], "unclosed elements");
  assert.equal(roots, 1, "exactly one root element");
  assert.equal(names[0], "svg");
  return names;
}

/** The attributes of every `<tag …>` whose attributes include `where` (e.g. `class="series"`). */
function elements(svg: string, tag: string, where = ""): Record<string, string>[] {
  const out: Record<string, string>[] = [];
  for (const m of svg.matchAll(new RegExp(`<${tag}((?:\\s+[\\w.:-]+="[^"]*")*)\\s*/?>`, "g"))) {
    if (!m[1].includes(where)) continue;
    out.push(
      Object.fromEntries([...m[1].matchAll(/([\w.:-]+)="([^"]*)"/g)].map((a) => [a[1], a[2]])),
    );
  }
  return out;
}

/** Asserts that two points agree to the 0.01 px the SVG writer keeps. */
function near(actual: number[], expected: number[]): void {
  assert.equal(actual.length, expected.length);
  actual.forEach((a, k) =>
    assert.ok(Math.abs(a - expected[k]) <= 0.006, `${actual} vs ${expected}`)
  );
}

async function decodeSvg(svg: string) {
  const png = await svgToPng(svg);
  return await decodePng(png, { maxPixels: 8 * 1024 * 1024 });
}

const CONFIG: NetConfig = {
  sizes: [784, 12, 10],
  tsteps: 20,
  threshold: 1,
  decay: 2,
  margin: 4,
  desireHid: 0.05,
  desireOut: 0.3,
  dropIn: 0,
  dropHid: 0.3,
};
const INFO: ModelInfo = { config: CONFIG, seed: 5, epoch: 2, dataset: "mnist", hyper: {} };

/**
 * A 784-4-10 model that predicts 3 for any image with enough bright pixels: every hidden
 * neuron sums all inputs at weight 0.05, output 3 sums the hidden layer at +1, the others at −1.
 */
function threeModel() {
  const config = { ...CONFIG, sizes: [784, 4, 10] };
  const w1 = new Int32Array(4 * 784).fill(Math.round(0.05 * 2 ** 20));
  const w2 = new Int32Array(10 * 4).fill(-(2 ** 20));
  w2.fill(2 ** 20, 3 * 4, 4 * 4);
  return { ...INFO, config, weights: [w1, w2] };
}

Deno.test("svg: el() and text() escape, num() rounds, bad names and numbers throw", () => {
  assert.equal(escapeXml(`a<b>&"c'`), "a&lt;b&gt;&amp;&quot;c&apos;");
  assert.equal(el("g", { "data-x": `"q"&` }), '<g data-x="&quot;q&quot;&amp;"/>');
  assert.equal(text(1, 2, "</text>"), '<text x="1" y="2">&lt;/text&gt;</text>');
  assert.equal(el("a", { on: true, off: false, none: null }), '<a on="on"/>');
  assert.deepEqual([num(0.004), num(-0.004), num(1.239), num(-2.5)], ["0", "0", "1.24", "-2.5"]);
  assert.throws(() => el("a b"), { name: "TypeError", message: 'Invalid SVG element name: "a b"' });
  assert.throws(() => el("a", { "x y": 1 }), TypeError);
  assert.throws(() => el("rect", { x: NaN }), {
    name: "RangeError",
    message: "Cannot write NaN as an SVG number",
  });
  assertWellFormed(svgDocument({ width: 3, height: 2, title: "<&>" }, text(0, 1, "x & y")));
  assert.ok(textWidth("100 %", 12) > textWidth("1", 12));
});

Deno.test("svgToPng() renders at the document's size, with text in the bundled font", async () => {
  const svg = svgDocument(
    { width: 120, height: 40 },
    el("rect", { x: 0, y: 0, width: 10, height: 10, fill: "#D55E00" }),
    text(20, 30, "Hello 95 %", { "font-size": 20, fill: "#000000" }),
  );
  const img = await decodeSvg(svg);
  assert.deepEqual([img.width, img.height], [120, 40]);
  assert.equal(img.data[5 * 120 + 5], luma(0xd5, 0x5e, 0x00));
  assert.equal(img.data[35 * 120 + 5], 255); // background
  // The text is drawn: dark pixels in its box (none if the font had not loaded).
  let dark = 0;
  for (let y = 10; y < 34; y++) {
    for (let x = 20; x < 118; x++) {
      dark += img.data[y * 120 + x] < 100 ? 1 : 0;
    }
  }
  assert.ok(dark > 100, `${dark} dark pixels in the text's box`);
  const big = await svgToPng(svg, 2);
  assert.deepEqual([readPngHeader(big).width, readPngHeader(big).height], [240, 80]);
});

Deno.test("encodePng() round-trips through decodePng() in gray, RGB and RGBA", async (t) => {
  const w = 37, h = 13;
  const gray = Uint8Array.from({ length: w * h }, (_, i) => (i * 97 + 13) & 255);
  await t.step("gray", async () => {
    const d = await decodePng(encodePng({ width: w, height: h, channels: 1, data: gray }));
    assert.deepEqual([d.width, d.height], [w, h]);
    assert.deepEqual(d.data, gray);
  });
  await t.step("RGB decodes to luma", async () => {
    const rgb = Uint8Array.from({ length: w * h * 3 }, (_, i) => (i * 31 + 7) & 255);
    const d = await decodePng(encodePng({ width: w, height: h, channels: 3, data: rgb }));
    for (let p = 0; p < w * h; p++) {
      assert.equal(d.data[p], luma(rgb[3 * p], rgb[3 * p + 1], rgb[3 * p + 2]));
    }
  });
  await t.step(
    "RGBA: opaque pixels keep their luma, transparent ones become the background",
    async () => {
      const rgba = new Uint8Array([10, 20, 30, 255, 200, 100, 50, 0]);
      const d = await decodePng(encodePng({ width: 2, height: 1, channels: 4, data: rgba }));
      assert.deepEqual([...d.data], [luma(10, 20, 30), 0]);
    },
  );
  await t.step("bad shapes are refused", () => {
    const cases: [Parameters<typeof encodePng>[0], string][] = [
      [
        { width: 0, height: 1, channels: 1, data: new Uint8Array(0) },
        "width 0 is not an integer in 1..32768",
      ],
      [
        { width: 2, height: 1.5, channels: 1, data: new Uint8Array(3) },
        "height 1.5 is not an integer in 1..32768",
      ],
      [
        { width: 1, height: 1, channels: 2 as 1, data: new Uint8Array(2) },
        "2 channels (expected 1, 3 or 4)",
      ],
      [
        { width: 2, height: 2, channels: 3, data: new Uint8Array(11) },
        "11 bytes of pixels (expected 2 × 2 × 3 = 12)",
      ],
    ];
    for (const [image, msg] of cases) {
      assert.throws(() => encodePng(image), {
        name: "RangeError",
        message: `Cannot encode PNG: ${msg}`,
      });
    }
  });
  await t.step("upscale() repeats every pixel into a block", () => {
    const img = {
      width: 2,
      height: 2,
      channels: 3 as const,
      data: Uint8Array.from({ length: 12 }, (_, i) => i),
    };
    const big = upscale(img, 3);
    assert.deepEqual([big.width, big.height], [6, 6]);
    for (let y = 0; y < 6; y++) {
      for (let x = 0; x < 6; x++) {
        const src = (Math.floor(y / 3) * 2 + Math.floor(x / 3)) * 3;
        assert.deepEqual([...big.data.subarray((y * 6 + x) * 3, (y * 6 + x) * 3 + 3)], [
          ...img.data.subarray(src, src + 3),
        ]);
      }
    }
    assert.throws(() => upscale(img, 0), RangeError);
  });
});

function logLine(epoch: number, lr: number, train: number, test: number, extra = {}): string {
  return JSON.stringify({ epoch, lr, train_accuracy: train, test_accuracy: test, ...extra });
}

Deno.test("parseLog() reads epoch records, skips other JSON lines, names bad lines", async (t) => {
  await t.step("records, skipped lines, duplicates, validation", () => {
    const text = [
      logLine(2, 9e-6, 0.9, 0.95, { validation_accuracy: 0.94, seconds: 3 }),
      "",
      '{"event":"resumed"}',
      "[1, 2]",
      logLine(1, 1e-5, 0.8, 0.93, { validation_accuracy: null }),
      logLine(2, 9e-6, 0.91, 0.96, { validation_accuracy: 0.95 }),
      "",
    ].join("\n");
    assert.deepEqual(parseLog(text, "a.jsonl"), [
      { epoch: 1, lr: 1e-5, train: 0.8, test: 0.93 },
      { epoch: 2, lr: 9e-6, train: 0.91, test: 0.96, validation: 0.95 },
    ]);
  });
  await t.step("wall time and the validation-chosen epoch, when logged", () => {
    const text = logLine(3, 1e-5, 0.9, 0.95, {
      elapsed_seconds: 90.5,
      validation_accuracy: 0.94,
      validation_chosen_epoch: 2,
      validation_chosen_test_accuracy: 0.96,
    });
    assert.deepEqual(parseLog(text, "a.jsonl"), [{
      epoch: 3,
      lr: 1e-5,
      train: 0.9,
      test: 0.95,
      validation: 0.94,
      elapsedSeconds: 90.5,
      validationChosen: { epoch: 2, test: 0.96 },
    }]);
  });
  await t.step("bad input, with the file, the line and the problem", () => {
    const ok = logLine(1, 1e-5, 0.8, 0.9);
    const cases: [string, string, string][] = [
      [`${ok}\n{"epoch":2,"lr`, "SyntaxError", 'line 2 is not JSON: "{\\"epoch\\":2,\\"lr"'],
      [
        `${ok}\nnot json at all, and quite a long line of text here`,
        "SyntaxError",
        'line 2 is not JSON: "not json at all, and quite a long line o…"',
      ],
      [
        '{"epoch":1,"lr":1e-5,"train_accuracy":0.8}',
        "TypeError",
        "line 1: test_accuracy is missing",
      ],
      [
        logLine(1, 1e-5, 0.8, 1.5),
        "TypeError",
        "line 1: test_accuracy is 1.5 (must be a fraction in [0, 1])",
      ],
      [logLine(0, 1e-5, 0.8, 0.9), "TypeError", "line 1: epoch is 0 (must be an integer ≥ 1)"],
      [logLine(1.5, 1e-5, 0.8, 0.9), "TypeError", "line 1: epoch is 1.5 (must be an integer ≥ 1)"],
      [logLine(1, -1, 0.8, 0.9), "TypeError", "line 1: lr is -1 (must be a finite number ≥ 0)"],
      [
        logLine(1, 1e-5, 0.8, 0.9, { validation_accuracy: "x" }),
        "TypeError",
        'line 1: validation_accuracy is "x" (must be a fraction in [0, 1])',
      ],
      [
        logLine(1, 1e-5, 0.8, 0.9, { elapsed_seconds: -2 }),
        "TypeError",
        "line 1: elapsed_seconds is -2 (must be a finite number ≥ 0)",
      ],
      [
        logLine(2, 1e-5, 0.8, 0.9, { validation_chosen_epoch: 3 }),
        "TypeError",
        "line 1: validation_chosen_epoch is 3 (must be an integer in 1..2)",
      ],
      [
        logLine(2, 1e-5, 0.8, 0.9, { validation_chosen_epoch: 1 }),
        "TypeError",
        "line 1: validation_chosen_test_accuracy is missing",
      ],
      ['{"note":1}\n\n', "TypeError", 'no epoch records (JSON lines with an "epoch" field)'],
      ["", "TypeError", 'no epoch records (JSON lines with an "epoch" field)'],
    ];
    for (const [text, name, msg] of cases) {
      assert.throws(() => parseLog(text, "runs/r/log.jsonl"), {
        name,
        message: `Cannot read log runs/r/log.jsonl: ${msg}`,
      });
    }
  });
  await t.step("runName(): the run directory, or the file name", () => {
    assert.equal(runName("runs/mnist-0-x/log.jsonl"), "mnist-0-x");
    assert.equal(runName("/abs/run/log.jsonl"), "run");
    assert.equal(runName("results/mnist-s0.log.jsonl"), "mnist-s0");
    assert.equal(runName("curves.jsonl"), "curves");
    assert.equal(runName("log.jsonl", "/tmp/abc"), "abc");
    assert.equal(runName("./log.jsonl", "/tmp/abc"), "abc");
  });
  await t.step("readLog() takes a run directory and names missing files", async () => {
    const dir = await Deno.makeTempDir();
    await Deno.mkdir(`${dir}/run-a`);
    await Deno.writeTextFile(`${dir}/run-a/log.jsonl`, logLine(1, 1e-5, 0.8, 0.9) + "\n");
    const run = await readLog(`${dir}/run-a`);
    assert.deepEqual([run.name, run.path, run.points.length], [
      "run-a",
      `${dir}/run-a/log.jsonl`,
      1,
    ]);
    await assert.rejects(readLog(`${dir}/nope.jsonl`), {
      name: "NotFound",
      message: `Cannot read log ${dir}/nope.jsonl: no such file`,
    });
    await assert.rejects(readLog(dir), {
      message: `Cannot read log ${dir}/log.jsonl: no such file`,
    });
    await Deno.remove(dir, { recursive: true });
  });
});

Deno.test("plot axes: readable epoch ticks for 1 to 600 epochs, accuracy and log ranges", () => {
  for (let last = 1; last <= 600; last++) {
    const a = epochAxis(last);
    assert.ok(a.ticks.length >= 1 && a.ticks.length <= 11, `${last}: ${a.ticks.length} ticks`);
    assert.ok(a.ticks.every(Number.isInteger), `${last}: integer ticks`);
    const steps = new Set(a.ticks.slice(1).map((t, i) => t - a.ticks[i]));
    assert.ok(steps.size <= 1, `${last}: one step`);
    assert.ok(a.min <= 1 && a.max >= last && a.ticks[a.ticks.length - 1] >= last - 0, `${last}`);
    assert.ok(a.ticks[0] >= a.min && a.ticks[a.ticks.length - 1] <= a.max);
  }
  assert.deepEqual(epochAxis(1), { min: 0.5, max: 1.5, ticks: [1] });
  assert.deepEqual(epochAxis(10, 4).ticks, [4, 5, 6, 7, 8, 9, 10]);
  assert.deepEqual(epochAxis(150).ticks, [0, 20, 40, 60, 80, 100, 120, 140, 160]);
  assert.deepEqual(accuracyAxis(0.7677).ticks, [75, 80, 85, 90, 95, 100]);
  assert.deepEqual(accuracyAxis(0.9346).min, 93);
  assert.deepEqual(accuracyAxis(1).ticks, [99, 100]);
  assert.deepEqual(accuracyAxis(0).ticks, [0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100]);
  assert.deepEqual(logAxis(9.2e-6, 1e-5), {
    lo: -6,
    hi: -5,
    ticks: [1e-6, 2e-6, 5e-6, 1e-5],
    minor: [],
  });
  const wide = logAxis(1e-5 * Math.exp(-0.04 * 599), 1e-5);
  assert.deepEqual([wide.lo, wide.hi], [-16, -5]);
  assert.deepEqual(wide.ticks, [1e-15, 1e-13, 1e-11, 1e-9, 1e-7, 1e-5]);
});

Deno.test("renderCurves() draws every series with its style, point count and position", async () => {
  const a = {
    name: "run-a",
    path: "a/log.jsonl",
    points: [
      { epoch: 1, lr: 1e-5, train: 0.8, test: 0.9, validation: 0.88 },
      { epoch: 2, lr: 9.6e-6, train: 0.9, test: 1, validation: 0.9 },
      { epoch: 3, lr: 9.2e-6, train: 0.92, test: 0.95, validation: 0.93 },
    ],
  };
  const b = {
    name: "run-b",
    path: "b.log.jsonl",
    points: [{ epoch: 1, lr: 1e-5, train: 0.61, test: 0.77 }],
  };
  const { svg, width, height } = renderCurves([a, b], { title: "Two <runs>" });
  assertWellFormed(svg);
  assert.ok(svg.includes(">Two &lt;runs&gt;</text>"));
  const series = elements(svg, "g", 'class="series"');
  assert.deepEqual(
    series.map((s) => `${s["data-run"]}/${s["data-kind"]}/${s["data-points"]}`),
    [
      "run-a/train/3",
      "run-a/validation/3",
      "run-a/test/3",
      "run-a/lr/3",
      "run-b/train/1",
      "run-b/test/1",
      "run-b/lr/1",
    ],
  );
  const lines = elements(svg, "polyline");
  assert.equal(lines.length, 7);
  assert.deepEqual(lines.map((l) => l.points.split(" ").length), [3, 3, 3, 3, 1, 1, 1]);
  assert.deepEqual(lines.map((l) => l["stroke-dasharray"]), [
    DASH.train,
    DASH.validation,
    undefined,
    undefined,
    DASH.train,
    undefined,
    undefined,
  ]);
  assert.deepEqual(lines.map((l) => l.stroke), [
    ...Array(4).fill(RUN_COLORS[0]),
    ...Array(3).fill(RUN_COLORS[1]),
  ]);
  // Positions: epochs 1..3 on [0.5, 3.5]; run-a's test 100 % at epoch 2 on the panel's top edge;
  // the lowest value (61 %) rounds down to the axis' bottom (60 %).
  const L = CURVE_LAYOUT;
  const testPts = lines[2].points.split(" ").map((p) => p.split(",").map(Number));
  near(testPts[1], [L.left + (2 - 0.5) / 3 * L.width, L.accuracyTop]);
  const bTrain = lines[4].points.split(",").map(Number);
  near(bTrain, [L.left + 0.5 / 3 * L.width, L.accuracyTop + L.accuracyHeight * (1 - 1 / 40)]);
  // Ticks and labels.
  for (
    const label of [
      "60 %",
      "100 %",
      ">1<",
      ">3<",
      "1e-5",
      "5e-6",
      "run-a",
      "run-b",
      "epoch",
      "accuracy",
      "learning rate",
      "validation",
      "epoch 3: test 95.00 %, best 100.00 %, validation 93.00 %",
    ]
  ) {
    assert.ok(svg.includes(label), label);
  }
  // Markers: few points, so every point has one (a single epoch is visible).
  assert.equal(
    elements(svg, "circle").length + elements(svg, "rect", 'fill="#ffffff" stroke=').length,
    3 * 4 + 3,
  );
  // The PNG: the SVG's size; run-a's test marker at epoch 1 in its colour, the background white.
  const img = await decodeSvg(svg);
  assert.deepEqual([img.width, img.height], [width, height]);
  const [x1, y1] = testPts[0];
  assert.ok(
    Math.abs(img.data[Math.round(y1) * width + Math.round(x1)] - luma(0x00, 0x72, 0xb2)) <= 3,
  );
  assert.equal(img.data[5 * width + 5], 255);
});

Deno.test("renderCurves() handles 600 epochs without markers, and lr 0", () => {
  const points = Array.from({ length: 600 }, (_, k) => ({
    epoch: k + 1,
    lr: 1e-5 * Math.exp(-0.04 * k),
    train: 0.8,
    test: 0.85,
  }));
  const { svg } = renderCurves([{ name: "long", path: "l", points }]);
  assertWellFormed(svg);
  assert.deepEqual(elements(svg, "polyline").map((l) => l.points.split(" ").length), [
    600,
    600,
    600,
  ]);
  assert.equal(elements(svg, "circle").length, 0);
  for (const t of [">0<", ">300<", ">600<", "1e-15", "1e-5"]) assert.ok(svg.includes(t), t);
  const flat = renderCurves([{
    name: "z",
    path: "z",
    points: [{ epoch: 1, lr: 0, train: 0.5, test: 0.5 }],
  }]);
  assert.ok(flat.svg.includes("learning rate 0 in every epoch"));
  assert.equal(elements(flat.svg, "g", 'data-kind="lr"').length, 0);
});

Deno.test("renderCurves() with yMin starts the accuracy axis there and clips lower points", () => {
  const points = [0.6, 0.85, 0.87].map((acc, k) => ({
    epoch: k + 1,
    lr: 1e-5,
    train: acc,
    test: acc,
  }));
  const run = { name: "r", path: "r", points };
  const auto = renderCurves([run]).svg, cut = renderCurves([run], { yMin: 84 }).svg;
  assertWellFormed(cut);
  const ticks = (svg: string) =>
    [...svg.matchAll(/<text[^>]*class="ytick"[^>]*>([^<]*)</g)].map((m) => m[1]);
  assert.equal(ticks(auto)[0], "60 %");
  assert.equal(ticks(cut)[0], "84 %");
  // The accuracy series (train, test) are clipped to the panel, the learning rate is not.
  const clipped = elements(cut, "g", 'clip-path="url(#accuracy-panel)"');
  assert.deepEqual(clipped.map((g) => g["data-kind"]), ["train", "test"]);
  assert.equal(elements(cut, "clipPath").length, 1);
});

Deno.test("recordSpikes() reads every layer's words; renderRaster() draws them all", async () => {
  const image = new Uint8Array(784);
  for (let r = 6; r < 22; r++) image.fill(255, r * 28 + 10, r * 28 + 18);
  const model = threeModel();
  const rec = await recordSpikes(model, image, "three.safetensors");
  assert.deepEqual(rec.words.map((w) => w.length), [784, 4, 10]);
  assert.ok(rec.words.every((w) => w.every((x) => x < 2 ** 20)), "only T = 20 bits");
  assert.deepEqual(rec.counts, Array.from(rec.words[2], popcount));
  assert.equal(rec.predicted, 3);
  assert.ok(rec.counts[3] > 0 && rec.counts.every((c, k) => k === 3 || c === 0));
  // Blank pixels never spike, bright ones do.
  assert.equal(rec.words[0][0], 0);
  assert.notEqual(rec.words[0][6 * 28 + 10], 0);

  const { svg, width, height } = renderRaster(rec, {
    image,
    label: 7,
    index: 42,
    dataset: "mnist",
    model: "three.safetensors",
  });
  assertWellFormed(svg);
  const layers = elements(svg, "g", 'class="layer"');
  const total = rec.words.map((w) => w.reduce((n, x) => n + popcount(x), 0));
  assert.deepEqual(layers.map((l) => [Number(l["data-neurons"]), Number(l["data-spikes"])]), [
    [784, total[0]],
    [4, total[1]],
    [10, total[2]],
  ]);
  const paths = elements(svg, "path", 'class="spikes"');
  assert.deepEqual(paths.map((p) => (p.d ?? "").split("M").length - 1), total);
  for (
    const t of [
      "Spike raster: MNIST test image 42",
      "label: 7",
      "predicted: 3 ✗",
      "network 784-4-10",
      "T = 20",
      "input · 784",
      "hidden · 4",
      "output · 10",
      "time step",
    ]
  ) {
    assert.ok(svg.includes(t), t);
  }
  // The input image is drawn pixel for pixel at 6× beside the panels.
  const img = await decodeSvg(svg);
  assert.deepEqual([img.width, img.height], [width, height]);
  const { x, y, scale } = IMAGE_PLACE;
  for (const [r, c] of [[0, 0], [6, 10], [21, 17], [21, 18], [14, 9]]) {
    const at = (y + r * scale + 3) * width + x + c * scale + 3;
    assert.equal(img.data[at], image[r * 28 + c], `pixel (${r}, ${c})`);
  }
  await assert.rejects(recordSpikes(model, new Uint8Array(100), "m"), {
    name: "RangeError",
    message: "Cannot run model m: its input layer has 784 neurons, the image 100 pixels",
  });
});

Deno.test("renderRaster() shows Fashion-MNIST names and a tie", () => {
  const words = [new Uint32Array(784), new Uint32Array(4), new Uint32Array(10)];
  const rec = {
    sizes: [784, 4, 10],
    tsteps: 20,
    words,
    counts: new Array(10).fill(0),
    predicted: -1,
  };
  const { svg } = renderRaster(rec, {
    image: new Uint8Array(784),
    label: 9,
    index: 0,
    dataset: "fashion-mnist",
    model: "m",
  });
  assertWellFormed(svg);
  for (
    const t of [
      "Fashion-MNIST test image 0",
      "label: 9 Ankle boot",
      "predicted: none (all tie at 0)",
      "0 T-shirt/top",
    ]
  ) {
    assert.ok(svg.includes(t), t);
  }
  assert.ok(!svg.includes('class="spikes" d='));
});

Deno.test("renderFields() draws each neuron scaled to its own max |w|, pixel exact", async () => {
  const unit = 2 ** 20;
  const w = new Int32Array(5 * 784);
  w[0] = unit; // neuron 0: +1 at (0, 0), −1 at (27, 27), 0 elsewhere
  w[783] = -unit;
  // neuron 1: all zero (white)
  w[2 * 784 + 14 * 28 + 14] = unit / 2; // neuron 2: +0.5 at (14, 14) → full red; −0.25 at (0, 27)
  w[2 * 784 + 27] = -unit / 4;
  w.fill(-3 * unit, 3 * 784, 4 * 784); // neuron 3: all −3 → all full blue
  const model = { config: { sizes: [784, 5, 10] }, weights: [w] };
  const { svg, width, height, layout } = renderFields(model, {
    count: 4,
    columns: 3,
    model: "f.safetensors",
  });
  assertWellFormed(svg);
  assert.deepEqual([layout.count, layout.columns, layout.rows, layout.scale], [4, 3, 2, 3]);
  for (
    const t of [
      "0 · ±1.0",
      "1 · ±0.0",
      "2 · ±0.50",
      "3 · ±3.0",
      "neurons 0–3 of 5",
      "f.safetensors",
    ]
  ) {
    assert.ok(svg.includes(t), t);
  }
  const img = await decodeSvg(svg);
  assert.deepEqual([img.width, img.height], [width, height]);
  const at = (j: number, row: number, col: number) => {
    const o = tileOrigin(layout, j);
    const x = GRID_ORIGIN.x + o.x + col * layout.scale + 1,
      y = GRID_ORIGIN.y + o.y + row * layout.scale + 1;
    return img.data[y * width + x];
  };
  const [red, blue, white] = [luma(...POSITIVE), luma(...NEGATIVE), 255];
  assert.deepEqual([at(0, 0, 0), at(0, 27, 27), at(0, 5, 5)], [red, blue, white]);
  assert.deepEqual([at(1, 0, 0), at(1, 27, 27)], [white, white]);
  assert.deepEqual([at(2, 14, 14), at(2, 0, 27), at(2, 1, 1)], [
    red,
    luma(...divergingColor(-0.5)),
    white,
  ]);
  assert.deepEqual([at(3, 0, 0), at(3, 20, 3)], [blue, blue]);
  // Tile 3 starts a second row; the frame around a tile is grey, not a weight colour.
  assert.deepEqual(tileOrigin(layout, 3), { x: 1, y: layout.pitchY + 1 });
  const o = tileOrigin(layout, 0);
  assert.equal(img.data[(GRID_ORIGIN.y + o.y - 1) * width + GRID_ORIGIN.x + o.x + 10], 150);
});

Deno.test("renderFields() refuses a non-784 input layer and a bad count", () => {
  const model = { config: { sizes: [100, 5, 10] }, weights: [new Int32Array(500)] };
  assert.throws(() => renderFields(model, { model: "small.safetensors" }), {
    name: "RangeError",
    message:
      "Cannot draw receptive fields of small.safetensors: its input layer has 100 neurons, not 784 (28×28 images)",
  });
  assert.equal(fieldsLayout(1600).count, 100);
  assert.equal(fieldsLayout(1600).columns, 10);
  assert.equal(fieldsLayout(12).count, 12);
  assert.equal(fieldsLayout(12).columns, 4);
  assert.equal(fieldsLayout(12, { count: 5, columns: 9 }).columns, 5);
  assert.throws(() => fieldsLayout(12, { count: 13 }), {
    name: "RangeError",
    message: "Invalid --count: 13 (must be an integer in 1..12: the first layer has 12 neurons)",
  });
});

Deno.test("render arguments: every bad input names the flag or argument", async (t) => {
  await t.step("parse errors", () => {
    const cases: [() => unknown, string, string][] = [
      [() => parsePlotArgs([]), "UsageError", "Missing LOG: give one or more logs (see --help)"],
      [() => parsePlotArgs(["a", "--frob"]), "UsageError", "Unknown flag --frob (see --help)"],
      [() => parsePlotArgs(["a", "-x"]), "UsageError", "Unknown flag -x (see --help)"],
      [() => parsePlotArgs(["a", "--out"]), "UsageError", "Missing value for --out"],
      [
        () => parsePlotArgs(["a", "--y-min", "abc"]),
        "TypeError",
        "Invalid --y-min: abc (must be a number of percent, 0 ≤ PCT < 100)",
      ],
      [
        () => parsePlotArgs(["a", "--y-min", "100"]),
        "RangeError",
        "Invalid --y-min: 100 (must be a number of percent, 0 ≤ PCT < 100)",
      ],
      [
        () => parsePlotArgs(["a", "--out", "--title", "t"]),
        "UsageError",
        "Missing value for --out",
      ],
      [
        () => parsePlotArgs(["a", "--out=x.svg", "--out", "y.svg"]),
        "UsageError",
        "--out given twice (see --help)",
      ],
      [
        () => parsePlotArgs(["a", "--out", "x.pdf"]),
        "TypeError",
        "Invalid --out: x.pdf (must be a file name ending in .svg or .png; both are written)",
      ],
      [
        () => parsePlotArgs(["a", "--out", "dir/.svg"]),
        "TypeError",
        "Invalid --out: dir/.svg (must be a file name ending in .svg or .png; both are written)",
      ],
      [() => parseRasterArgs([]), "UsageError", "Missing MODEL and INDEX (see --help)"],
      [
        () => parseRasterArgs(["m"]),
        "UsageError",
        "Missing INDEX: the test image, 0..9999 (see --help)",
      ],
      [() => parseRasterArgs(["m", "1", "2"]), "UsageError", "Unexpected argument 2 (see --help)"],
      [
        () => parseRasterArgs(["m", "abc"]),
        "TypeError",
        "Invalid INDEX: abc (must be an integer in 0..9999: a test image)",
      ],
      [
        () => parseRasterArgs(["m", "1.5"]),
        "TypeError",
        "Invalid INDEX: 1.5 (must be an integer in 0..9999: a test image)",
      ],
      [
        () => parseRasterArgs(["m", "1e3"]),
        "TypeError",
        "Invalid INDEX: 1e3 (must be an integer in 0..9999: a test image)",
      ],
      [
        () => parseRasterArgs(["m", "-1"]),
        "RangeError",
        "Invalid INDEX: -1 (must be an integer in 0..9999: a test image)",
      ],
      [
        () => parseRasterArgs(["m", "10000"]),
        "RangeError",
        "Invalid INDEX: 10000 (must be an integer in 0..9999: a test image)",
      ],
      [
        () => parseRasterArgs(["m", "3", "--dataset", "cifar"]),
        "RangeError",
        "Invalid --dataset: cifar (must be one of: mnist, fashion-mnist)",
      ],
      [() => parseFieldsArgs([]), "UsageError", "Missing MODEL (see --help)"],
      [() => parseFieldsArgs(["m", "n"]), "UsageError", "Unexpected argument n (see --help)"],
      [
        () => parseFieldsArgs(["m", "--count", "0"]),
        "RangeError",
        "Invalid --count: 0 (must be an integer ≥ 1)",
      ],
      [
        () => parseFieldsArgs(["m", "--count", "-3"]),
        "RangeError",
        "Invalid --count: -3 (must be an integer ≥ 1)",
      ],
      [
        () => parseFieldsArgs(["m", "--count", "ten"]),
        "TypeError",
        "Invalid --count: ten (must be an integer ≥ 1)",
      ],
      [
        () => parseFieldsArgs(["m", "--columns", "2.5"]),
        "TypeError",
        "Invalid --columns: 2.5 (must be an integer ≥ 1)",
      ],
    ];
    for (const [f, name, message] of cases) {
      assert.throws(f, (e: unknown) => {
        assert.ok(e instanceof Error);
        assert.deepEqual([e.name, e.message], [name, message]);
        if (name === "UsageError") assert.ok(e instanceof UsageError);
        return true;
      });
    }
  });
  await t.step("defaults and accepted forms", () => {
    assert.deepEqual(parsePlotArgs(["a", "b"]), {
      logs: ["a", "b"],
      out: "curves.svg",
      title: undefined,
      yMin: undefined,
      help: false,
    });
    assert.equal(parsePlotArgs(["a", "--title=My runs"]).title, "My runs");
    assert.equal(parsePlotArgs(["a", "--y-min", "84.5"]).yMin, 84.5);
    assert.equal(parsePlotArgs(["a", "--y-min=0"]).yMin, 0);
    assert.equal(parseRasterArgs(["m", "0"]).out, "raster-0.svg");
    assert.equal(
      parseRasterArgs(["m", "9999", "--dataset", "fashion-mnist"]).dataset,
      "fashion-mnist",
    );
    assert.deepEqual(parseFieldsArgs(["m"]), {
      model: "m",
      out: "fields.png",
      count: undefined,
      columns: undefined,
      help: false,
    });
    assert.equal(parseRasterArgs(["--help"]).help, true);
    assert.equal(parseFieldsArgs(["m", "-h"]).help, true);
  });
  await t.step("files: inputs, outputs and what is refused", async () => {
    const dir = await Deno.makeTempDir();
    const log = `${dir}/run.svg`; // a log that happens to be named like an output
    await Deno.writeTextFile(log, logLine(1, 1e-5, 0.8, 0.9) + "\n");
    await assert.rejects(plotCommand([log, "--out", log]), {
      name: "TypeError",
      message: `Refusing to write ${log} (--out ${log}): it is the input ${log}`,
    });
    await Deno.link(log, `${dir}/other.png`);
    await assert.rejects(plotCommand([log, "--out", `${dir}/other.svg`]), {
      message:
        `Refusing to write ${dir}/other.png (--out ${dir}/other.svg): it is the input ${log}`,
    });
    await assert.rejects(plotCommand([log, "--out", `${dir}/no/x.svg`]), {
      name: "NotFound",
      message: `Cannot write --out ${dir}/no/x.svg: no directory ${dir}/no`,
    });
    await Deno.mkdir(`${dir}/d.png`);
    await assert.rejects(plotCommand([log, "--out", `${dir}/d.svg`]), {
      message: `Cannot write --out ${dir}/d.svg: ${dir}/d.png is a directory`,
    });
    await assert.rejects(fieldsCommand([`${dir}/none.safetensors`]), {
      message: `Cannot load model ${dir}/none.safetensors: no such file`,
    });
    const small = `${dir}/small.safetensors`;
    await saveModel(
      small,
      { ...INFO, config: { ...CONFIG, sizes: [100, 12, 10] } },
      kaimingMaster([100, 12, 10], 1),
    );
    await assert.rejects(fieldsCommand([small, "--out", `${dir}/f.png`]), {
      message:
        `Cannot draw receptive fields of ${small}: its input layer has 100 neurons, not 784 (28×28 images)`,
    });
    await assert.rejects(rasterCommand([small, "0", "--out", `${dir}/r.png`]), {
      message:
        `Cannot run ${small} on mnist: its input layer has 100 neurons, the images 784 pixels`,
    });
    const odd = `${dir}/odd.safetensors`;
    await saveModel(odd, { ...INFO, dataset: "cifar" }, kaimingMaster(CONFIG.sizes, 1));
    await assert.rejects(rasterCommand([odd, "0", "--out", `${dir}/r.png`]), {
      message:
        `Cannot tell the data set of ${odd} (its metadata says "cifar"); give --dataset mnist or fashion-mnist`,
    });
    const names = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
    assert.deepEqual(names, [
      "d.png",
      "odd.safetensors",
      "other.png",
      "run.svg",
      "small.safetensors",
    ]);
    await Deno.remove(dir, { recursive: true });
  });
});

Deno.test("cli plot, raster and fields end to end on a tiny model", async (t) => {
  const dir = await Deno.makeTempDir();
  const model = `${dir}/tiny.safetensors`;
  await saveModel(model, INFO, kaimingMaster(CONFIG.sizes, 5));
  const three = `${dir}/three.safetensors`;
  const m3 = threeModel();
  await saveModel(three, m3, m3.weights);
  await Deno.mkdir(`${dir}/run-a`);
  await Deno.writeTextFile(
    `${dir}/run-a/log.jsonl`,
    [logLine(1, 1e-5, 0.8, 0.9), logLine(2, 9.6e-6, 0.85, 0.92, { validation_accuracy: 0.91 })]
      .join("\n") + "\n",
  );

  await t.step("plot writes the SVG and the PNG", async () => {
    const r = await cli(
      "plot",
      `${dir}/run-a/log.jsonl`,
      "--out",
      `${dir}/c.png`,
      "--title",
      "Tiny",
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stdout,
      new RegExp(
        `^${dir}/c.svg, ${dir}/c.png: learning curves of 1 run, epochs 1–2, (\\d+)×(\\d+) px\\n$`,
      ),
    );
    const [, w, h] = /(\d+)×(\d+) px/.exec(r.stdout)!;
    const svg = await Deno.readTextFile(`${dir}/c.svg`);
    assertWellFormed(svg);
    assert.equal(elements(svg, "g", 'data-run="run-a"').length, 4);
    const png = await Deno.readFile(`${dir}/c.png`);
    assert.deepEqual([readPngHeader(png).width, readPngHeader(png).height], [Number(w), Number(h)]);
  });

  await t.step("raster of MNIST test image 0 with a model that says 3", async () => {
    const r = await cli("raster", three, "0", "--out", `${dir}/r.svg`);
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stdout,
      /: spike raster of mnist test image 0 \(label 7, predicted 3; output counts 0 0 0 \d+ 0 0 0 0 0 0\), \d+×\d+ px\n$/,
    );
    const svg = await Deno.readTextFile(`${dir}/r.svg`);
    assertWellFormed(svg);
    assert.ok(svg.includes("label: 7") && svg.includes("predicted: 3 ✗"));
    const img = await decodePng(await Deno.readFile(`${dir}/r.png`));
    // MNIST test image 0, pixel for pixel.
    const test = await loadSplit("mnist", await findDataset("mnist"), "test");
    const { x, y, scale } = IMAGE_PLACE;
    for (let p = 0; p < 784; p++) {
      const at = (y + Math.floor(p / 28) * scale + 3) * img.width + x + (p % 28) * scale + 3;
      assert.equal(img.data[at], test.images[p], `pixel ${p}`);
    }
  });

  await t.step("fields writes the PNG and the SVG", async () => {
    const r = await cli("fields", model, "--out", `${dir}/f.png`);
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stdout,
      new RegExp(
        `^${dir}/f.png, ${dir}/f.svg: first-layer weights of neurons 0–11 of 12, 4 columns, \\d+×\\d+ px\\n$`,
      ),
    );
    assertWellFormed(await Deno.readTextFile(`${dir}/f.svg`));
    const header = readPngHeader(await Deno.readFile(`${dir}/f.png`));
    assert.ok(header.width > 4 * 84 && header.height > 3 * 84);
  });

  await t.step("bad input: message, exit code, no stack trace, nothing written", async () => {
    await Deno.writeTextFile(`${dir}/bad.jsonl`, logLine(1, 1e-5, 0.8, 0.9) + "\n{oops\n");
    const cases: [string[], number, string][] = [
      [
        ["plot", `${dir}/bad.jsonl`, "--out", `${dir}/x.svg`],
        1,
        `Cannot read log ${dir}/bad.jsonl: line 2 is not JSON: "{oops"`,
      ],
      [["plot", "--out", `${dir}/x.svg`], 2, "Missing LOG: give one or more logs (see --help)"],
      [
        ["raster", model, "10000", "--out", `${dir}/x.svg`],
        1,
        "Invalid INDEX: 10000 (must be an integer in 0..9999: a test image)",
      ],
      [
        ["raster", model, "-1", "--out", `${dir}/x.svg`],
        1,
        "Invalid INDEX: -1 (must be an integer in 0..9999: a test image)",
      ],
      [
        ["raster", model, "--out", `${dir}/x.svg`],
        2,
        "Missing INDEX: the test image, 0..9999 (see --help)",
      ],
      [
        ["fields", model, "--count", "13", "--out", `${dir}/x.svg`],
        1,
        "Invalid --count: 13 (must be an integer in 1..12: the first layer has 12 neurons)",
      ],
      [
        ["fields", model, "--columns", "0", "--out", `${dir}/x.svg`],
        1,
        "Invalid --columns: 0 (must be an integer ≥ 1)",
      ],
      [["fields", model, "--bogus", "1"], 2, "Unknown flag --bogus (see --help)"],
    ];
    for (const [args, code, msg] of cases) {
      const r = await cli(...args);
      assert.equal(r.code, code, `${args.join(" ")}: ${r.stderr}`);
      assert.equal(r.stderr, `error: ${msg}\n`, args.join(" "));
    }
    await assert.rejects(Deno.stat(`${dir}/x.svg`), Deno.errors.NotFound);
    await assert.rejects(Deno.stat(`${dir}/x.png`), Deno.errors.NotFound);
  });

  await t.step("--help of each command", async () => {
    for (const cmd of ["plot", "raster", "fields"]) {
      const r = await cli(cmd, "--help");
      assert.equal(r.code, 0);
      assert.ok(r.stdout.startsWith(`Usage: deno run -A cli.ts ${cmd}`), r.stdout);
    }
  });
  await Deno.remove(dir, { recursive: true });
});
