/**
 * Learning curves from training logs (the `plot` command): accuracy per epoch of one or more
 * runs (train dashed, validation dotted, test solid, one colour per run) above a smaller panel
 * with the learning rate per epoch on a log scale.
 *
 * A log is JSON lines as written by `train` (`<run>/log.jsonl`): every object with an `epoch`
 * field is an epoch record and must hold `epoch` (integer ≥ 1), `lr` (≥ 0), `train_accuracy`
 * and `test_accuracy` (fractions in [0, 1]) and may hold `validation_accuracy`; other lines
 * that are JSON are skipped, a line that is not JSON is an error naming the file and line.
 *
 * @example Parse a log and draw it
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseLog, renderCurves } from "./plot.ts";
 *
 * const points = parseLog(
 *   '{"epoch":1,"lr":1e-5,"train_accuracy":0.8,"test_accuracy":0.9}\n{"note":"done"}\n',
 *   "log.jsonl",
 * );
 * const { svg } = renderCurves([{ name: "run", path: "log.jsonl", points }]);
 * assert.ok(svg.includes('data-run="run"'));
 * ```
 *
 * @module
 */
import { el, fitText, num, svgDocument, text, textWidth } from "./svg.ts";

/** One epoch record of a log. */
export interface EpochPoint {
  /** Epoch, counted from 1. */
  epoch: number;
  /** Learning rate of the linear layers in this epoch. */
  lr: number;
  /** Train accuracy (fraction, measured during training with dropout). */
  train: number;
  /** Test accuracy after the epoch (fraction). */
  test: number;
  /** Validation accuracy after the epoch (fraction), when the run held samples out. */
  validation?: number;
  /** Seconds since the run started, at the end of this epoch, when logged. */
  elapsedSeconds?: number;
  /**
   * The epoch chosen on the validation samples so far and its test accuracy (fraction), when the
   * run held samples out.
   */
  validationChosen?: { epoch: number; test: number };
}

/** A run to plot: its legend name, where it came from, its epochs in order. */
export interface Run {
  /** Name in the legend. */
  name: string;
  /** The log file read. */
  path: string;
  /** Epoch records, ascending, one per epoch. */
  points: EpochPoint[];
}

/** Colours of the runs, in order (Okabe–Ito, colour-blind safe; yellow left out on white). */
export const RUN_COLORS: readonly string[] = [
  "#0072B2",
  "#D55E00",
  "#009E73",
  "#CC79A7",
  "#E69F00",
  "#56B4E9",
  "#000000",
];

/** Dash patterns of the three accuracy series (test is solid). */
export const DASH = { train: "7 4", validation: "1.5 3", test: undefined } as const;

function excerpt(line: string): string {
  const s = line.trim();
  return JSON.stringify(s.length > 40 ? `${s.slice(0, 40)}…` : s);
}

/**
 * Reads the epoch records of a JSON-lines log.
 *
 * @param content The log's text.
 * @param source The file name, for messages.
 * @returns The epoch records, ascending by epoch; when an epoch appears twice the later line
 *   wins.
 * @throws {SyntaxError} A line that is not JSON (blank lines are skipped).
 * @throws {TypeError} An epoch record with a field missing or out of range, or a log with no
 *   epoch record.
 *
 * @example A line that is not JSON
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseLog } from "./plot.ts";
 *
 * assert.throws(
 *   () => parseLog('{"run":"a"}\n{"epo', "x.jsonl"),
 *   { name: "SyntaxError", message: 'Cannot read log x.jsonl: line 2 is not JSON: "{\\"epo"' },
 * );
 * ```
 */
export function parseLog(content: string, source: string): EpochPoint[] {
  const byEpoch = new Map<number, EpochPoint>();
  const lines = content.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (line.trim() === "") continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      throw new SyntaxError(
        `Cannot read log ${source}: line ${i + 1} is not JSON: ${excerpt(line)}`,
      );
    }
    if (typeof value !== "object" || value === null || Array.isArray(value)) continue;
    const o = value as Record<string, unknown>;
    if (!("epoch" in o)) continue;
    const bad = (field: string, must: string): never => {
      const v = o[field];
      throw new TypeError(
        `Cannot read log ${source}: line ${i + 1}: ${field} ` +
          (v === undefined ? "is missing" : `is ${JSON.stringify(v)} (${must})`),
      );
    };
    const isNum = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);
    const fraction = (field: string): number => {
      const v = o[field];
      if (!isNum(v) || v < 0 || v > 1) bad(field, "must be a fraction in [0, 1]");
      return v as number;
    };
    if (!isNum(o.epoch) || !Number.isInteger(o.epoch) || o.epoch < 1) {
      bad("epoch", "must be an integer ≥ 1");
    }
    if (!isNum(o.lr) || o.lr < 0) bad("lr", "must be a finite number ≥ 0");
    const point: EpochPoint = {
      epoch: o.epoch as number,
      lr: o.lr as number,
      train: fraction("train_accuracy"),
      test: fraction("test_accuracy"),
    };
    if (o.validation_accuracy !== undefined && o.validation_accuracy !== null) {
      point.validation = fraction("validation_accuracy");
    }
    if (o.elapsed_seconds !== undefined) {
      if (!isNum(o.elapsed_seconds) || o.elapsed_seconds < 0) {
        bad("elapsed_seconds", "must be a finite number ≥ 0");
      }
      point.elapsedSeconds = o.elapsed_seconds as number;
    }
    if (o.validation_chosen_epoch !== undefined && o.validation_chosen_epoch !== null) {
      const e = o.validation_chosen_epoch;
      if (!isNum(e) || !Number.isInteger(e) || e < 1 || e > point.epoch) {
        bad("validation_chosen_epoch", `must be an integer in 1..${point.epoch}`);
      }
      point.validationChosen = {
        epoch: e as number,
        test: fraction("validation_chosen_test_accuracy"),
      };
    }
    byEpoch.set(point.epoch, point);
  }
  if (byEpoch.size === 0) {
    throw new TypeError(
      `Cannot read log ${source}: no epoch records (JSON lines with an "epoch" field)`,
    );
  }
  return [...byEpoch.values()].sort((a, b) => a.epoch - b.epoch);
}

function basename(path: string): string {
  const parts = path.replace(/\/+$/, "").split("/");
  return parts[parts.length - 1] || path;
}

function dirname(path: string): string {
  const p = path.replace(/\/+$/, "");
  const k = p.lastIndexOf("/");
  return k < 0 ? "." : k === 0 ? "/" : p.slice(0, k);
}

/**
 * The legend name of a log: its directory's name for a run's `log.jsonl`, otherwise the file
 * name without `.jsonl` and `.log`.
 *
 * @param path The log's path.
 * @param cwd Directory that relative paths are resolved against (for `log.jsonl` in `.`).
 * @returns The name.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { runName } from "./plot.ts";
 *
 * assert.equal(runName("runs/mnist-s0/log.jsonl"), "mnist-s0");
 * assert.equal(runName("results/fashion-s1.log.jsonl"), "fashion-s1");
 * assert.equal(runName("log.jsonl", "/home/me/run7"), "run7");
 * ```
 */
export function runName(path: string, cwd = Deno.cwd()): string {
  const file = basename(path);
  if (file === "log.jsonl") {
    let dir = dirname(path);
    if (dir === "." || dir === "..") dir = dir === "." ? cwd : dirname(cwd);
    const name = basename(dir);
    if (name !== "" && name !== "." && name !== "/") return name;
  }
  const stem = file.replace(/\.jsonl$/, "").replace(/\.log$/, "");
  return stem === "" ? file : stem;
}

/**
 * Reads a log file (or a run directory's `log.jsonl`) into a {@linkcode Run}.
 *
 * @param path A JSON-lines log, or a directory holding `log.jsonl`.
 * @returns The run, named by {@linkcode runName}.
 * @throws {Deno.errors.NotFound} The file (or the directory's `log.jsonl`) does not exist.
 * @throws {SyntaxError|TypeError} See {@linkcode parseLog}.
 */
export async function readLog(path: string): Promise<Run> {
  let file = path;
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
    if (info.isDirectory) {
      file = `${path.replace(/\/+$/, "")}/log.jsonl`;
      info = await Deno.stat(file);
    }
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new Deno.errors.NotFound(`Cannot read log ${file}: no such file`);
    }
    throw e;
  }
  if (!info.isFile) throw new TypeError(`Cannot read log ${file}: not a file`);
  let content: string;
  try {
    content = new TextDecoder("utf-8", { fatal: true }).decode(await Deno.readFile(file));
  } catch (e) {
    if (e instanceof TypeError) throw new SyntaxError(`Cannot read log ${file}: not UTF-8 text`);
    throw e;
  }
  return { name: runName(file), path: file, points: parseLog(content, file) };
}

/** Makes run names unique by appending ` (2)`, ` (3)`, … to repeats. */
export function uniqueNames(runs: Run[]): Run[] {
  const seen = new Map<string, number>();
  return runs.map((r) => {
    const n = (seen.get(r.name) ?? 0) + 1;
    seen.set(r.name, n);
    return n === 1 ? r : { ...r, name: `${r.name} (${n})` };
  });
}

/** A linear axis: its range and tick values. */
export interface Axis {
  /** Lowest value shown. */
  min: number;
  /** Highest value shown. */
  max: number;
  /** Tick values, ascending, from `min` to `max`. */
  ticks: number[];
}

/**
 * The epoch axis, readable from 1 to thousands of epochs: ticks at multiples of 1, 2 or
 * 5 × 10^k, at most 11 of them. With a tick every epoch (up to 10 epochs) the axis runs from
 * half an epoch before the first to half an epoch after the last; otherwise from 0 to the last
 * epoch rounded up to a tick.
 *
 * @param lastEpoch The highest epoch plotted (≥ 1).
 * @param firstEpoch The lowest epoch plotted (default 1).
 * @returns The axis.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { epochAxis } from "./plot.ts";
 *
 * assert.deepEqual(epochAxis(3), { min: 0.5, max: 3.5, ticks: [1, 2, 3] });
 * assert.deepEqual(epochAxis(600).ticks, [0, 100, 200, 300, 400, 500, 600]);
 * assert.deepEqual(epochAxis(13).ticks, [0, 2, 4, 6, 8, 10, 12, 14]);
 * ```
 */
export function epochAxis(lastEpoch: number, firstEpoch = 1): Axis {
  const last = Math.max(1, Math.ceil(lastEpoch));
  let step = 0;
  for (let p = 1; step === 0; p *= 10) {
    step = [p, 2 * p, 5 * p].find((s) => Math.ceil(last / s) <= 10) ?? 0;
  }
  const ticks: number[] = [];
  if (step === 1) {
    const first = Math.min(Math.max(1, Math.floor(firstEpoch)), last);
    for (let t = first; t <= last; t++) ticks.push(t);
    return { min: first - 0.5, max: last + 0.5, ticks };
  }
  const max = Math.ceil(last / step) * step;
  for (let t = 0; t <= max; t += step) ticks.push(t);
  return { min: 0, max, ticks };
}

/**
 * The accuracy axis in percent: from the lowest value rounded down to 1 % (and then to a tick)
 * up to 100 %, ticks every 1, 2, 5, 10 or 20 points, at most 11 of them.
 *
 * @param lowest The lowest accuracy plotted, as a fraction.
 * @returns The axis, in percent.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { accuracyAxis } from "./plot.ts";
 *
 * assert.deepEqual(accuracyAxis(0.9346).ticks, [93, 94, 95, 96, 97, 98, 99, 100]);
 * assert.deepEqual(accuracyAxis(0.815).ticks, [80, 82, 84, 86, 88, 90, 92, 94, 96, 98, 100]);
 * assert.equal(accuracyAxis(0.05).min, 0);
 * assert.deepEqual(accuracyAxis(0.05, 84).ticks, [84, 86, 88, 90, 92, 94, 96, 98, 100]);
 * ```
 *
 * @param lowest The lowest accuracy to show (a fraction).
 * @param minPercent The axis's lower end in percent (0..99), chosen by the caller instead of
 *   `lowest`; lower points are clipped.
 */
export function accuracyAxis(lowest: number, minPercent?: number): Axis {
  let lo = minPercent !== undefined
    ? Math.floor(minPercent)
    : Math.floor(Math.min(Math.max(lowest, 0), 1) * 100 + 1e-9);
  if (lo >= 100) lo = 99;
  if (lo < 0) lo = 0;
  let step = 1, min = lo;
  for (const s of [1, 2, 5, 10, 20]) {
    step = s;
    min = Math.floor(lo / s) * s;
    if ((100 - min) / s <= 10) break;
  }
  const ticks: number[] = [];
  for (let t = min; t <= 100; t += step) ticks.push(t);
  return { min, max: 100, ticks };
}

/** A log-scale axis: decades `10^lo … 10^hi`, labelled ticks and unlabelled decade lines. */
export interface LogAxis {
  /** Exponent of the lowest value shown. */
  lo: number;
  /** Exponent of the highest value shown. */
  hi: number;
  /** Labelled tick values, ascending. */
  ticks: number[];
  /** Other decades, drawn as faint lines. */
  minor: number[];
}

/**
 * A log axis covering [min, max] (both > 0): whole decades; within one or two decades ticks at
 * 1, 2 and 5 × 10^k, over more decades a label every n-th decade (at most 7 labels). A single
 * value gets a decade either side.
 *
 * @param min Smallest value.
 * @param max Largest value.
 * @returns The axis.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { logAxis } from "./plot.ts";
 *
 * assert.deepEqual(logAxis(9.23e-6, 1e-5).ticks, [1e-6, 2e-6, 5e-6, 1e-5]);
 * assert.deepEqual(logAxis(1e-5, 1e-5), { lo: -6, hi: -4, ticks: [1e-6, 2e-6, 5e-6, 1e-5, 2e-5, 5e-5, 1e-4], minor: [] });
 * assert.equal(logAxis(3.9e-16, 1e-5).ticks.length, 6);
 * ```
 */
export function logAxis(min: number, max: number): LogAxis {
  const e = (x: number) => Math.log10(x);
  let lo = Math.floor(e(min) + 1e-9), hi = Math.ceil(e(max) - 1e-9);
  if (min === max) {
    lo = Math.round(e(min)) - 1;
    hi = lo + 2;
  }
  if (hi <= lo) hi = lo + 1;
  const ticks: number[] = [], minor: number[] = [];
  const pow = (k: number) => Number(`1e${k}`);
  if (hi - lo <= 2) {
    for (let k = lo; k <= hi; k++) {
      for (const m of [1, 2, 5]) if (k < hi || m === 1) ticks.push(m * pow(k));
    }
    return { lo, hi, ticks: ticks.map((t) => Number(t.toPrecision(1))), minor };
  }
  const every = Math.ceil((hi - lo) / 6);
  for (let k = lo; k <= hi; k++) ((hi - k) % every === 0 ? ticks : minor).push(pow(k));
  return { lo, hi, ticks, minor };
}

/** `1e-5`, `2e-6`, `0.1`, `1`: a learning rate tick's label. */
export function formatRate(x: number): string {
  if (x >= 0.01 && x <= 100) return String(Number(x.toPrecision(2)));
  const [m, k] = x.toExponential(0).split("e");
  return `${m}e${Number(k)}`;
}

function pct(x: number): string {
  return `${(100 * x).toFixed(2)} %`;
}

/** Options of {@linkcode renderCurves}. */
export interface CurveOptions {
  /** Title above the chart (default `Learning curves`). */
  title?: string;
  /**
   * Lower end of the accuracy axis in percent (0..99); points below it are clipped. Default: the
   * lowest accuracy of the runs.
   */
  yMin?: number;
}

const PLOT_W = 680;
const ACC_H = 380;
const LR_H = 130;
const LEFT = 72;
const TOP = 58;
const GAP = 52;
const MARKER_LIMIT = 40;

/** Geometry of the two panels drawn by {@linkcode renderCurves} (pixels). */
export const CURVE_LAYOUT = {
  left: LEFT,
  width: PLOT_W,
  accuracyTop: TOP,
  accuracyHeight: ACC_H,
  lrTop: TOP + ACC_H + GAP,
  lrHeight: LR_H,
} as const;
const LEGEND_MAX = 420;

/**
 * Draws the learning curves of `runs` as an SVG document.
 *
 * Each accuracy series is a `<g class="series">` with `data-run`, `data-kind` (`train`,
 * `validation`, `test` or `lr`) and `data-points` attributes holding one `<polyline>`, plus
 * markers when it has at most 40 points (so a single epoch is visible).
 *
 * @param runs The runs, each with at least one epoch.
 * @param options Title.
 * @returns The document and its size in pixels.
 * @throws {RangeError} No runs, or a run without epochs.
 */
export function renderCurves(
  runs: Run[],
  options: CurveOptions = {},
): { svg: string; width: number; height: number } {
  if (runs.length === 0) throw new RangeError("Cannot plot: no runs");
  for (const r of runs) {
    if (r.points.length === 0) throw new RangeError(`Cannot plot ${r.path}: no epochs`);
  }
  runs = uniqueNames(runs);
  const title = options.title ?? "Learning curves";
  const hasValidation = runs.some((r) => r.points.some((p) => p.validation !== undefined));

  // Axes.
  const epochs = runs.flatMap((r) => r.points.map((p) => p.epoch));
  const xAxis = epochAxis(Math.max(...epochs), Math.min(...epochs));
  const accValues = runs.flatMap((r) =>
    r.points.flatMap((
      p,
    ) => [p.train, p.test, ...(p.validation === undefined ? [] : [p.validation])])
  );
  const yAxis = accuracyAxis(Math.min(...accValues), options.yMin);
  const rates = runs.flatMap((r) => r.points.map((p) => p.lr)).filter((x) => x > 0);
  const lrAxis = rates.length > 0 ? logAxis(Math.min(...rates), Math.max(...rates)) : undefined;

  // Legend.
  const legendLines = runs.map((r, i) => {
    const last = r.points[r.points.length - 1];
    const best = Math.max(...r.points.map((p) => p.test));
    let detail = `epoch ${last.epoch}: test ${pct(last.test)}, best ${pct(best)}`;
    if (last.validation !== undefined) detail += `, validation ${pct(last.validation)}`;
    return {
      name: fitText(r.name, 13, LEGEND_MAX),
      detail,
      color: RUN_COLORS[i % RUN_COLORS.length],
    };
  });
  const styleKey: [keyof typeof DASH, string][] = [
    ["train", "train (during training, with dropout)"],
    ...(hasValidation ? [["validation", "validation"] as [keyof typeof DASH, string]] : []),
    ["test", "test"],
  ];
  const legendTextW = Math.max(
    ...legendLines.map((l) => Math.max(textWidth(l.name, 13), textWidth(l.detail, 11))),
    ...styleKey.map(([, label]) => textWidth(label, 12)),
  );
  const legendX = LEFT + PLOT_W + 28;
  const width = Math.ceil(
    Math.max(legendX + 36 + Math.min(legendTextW, LEGEND_MAX), LEFT + textWidth(title, 18)) + 16,
  );
  const accTop = TOP, lrTop = TOP + ACC_H + GAP;
  const height = lrTop + LR_H + 56;

  const x = (epoch: number) => LEFT + (epoch - xAxis.min) / (xAxis.max - xAxis.min) * PLOT_W;
  const yAcc = (frac: number) =>
    accTop + (yAxis.max - 100 * frac) / (yAxis.max - yAxis.min) * ACC_H;
  const yLr = (lr: number) =>
    lrTop + (lrAxis!.hi - Math.log10(lr)) / (lrAxis!.hi - lrAxis!.lo) * LR_H;

  const parts: string[] = [];
  parts.push(text(LEFT, 32, title, { "font-size": 18, "font-weight": "bold", class: "title" }));

  // Panels: grid, frame, ticks.
  const grid = "#e4e4e4", axisColor = "#555555";
  const xGrid = (top: number, h: number, labels: boolean) =>
    xAxis.ticks.map((t) =>
      el("line", { x1: x(t), x2: x(t), y1: top, y2: top + h, stroke: grid }) +
      (labels
        ? text(x(t), top + h + 17, String(t), { "text-anchor": "middle", class: "xtick" })
        : "")
    ).join("");
  parts.push(el(
    "g",
    { class: "panel", "data-panel": "accuracy" },
    xGrid(accTop, ACC_H, true),
    ...yAxis.ticks.map((t) => {
      const y = yAcc(t / 100);
      return el("line", { x1: LEFT, x2: LEFT + PLOT_W, y1: y, y2: y, stroke: grid }) +
        text(LEFT - 8, y + 4, `${t} %`, { "text-anchor": "end", class: "ytick" });
    }),
    el("rect", {
      x: LEFT,
      y: accTop,
      width: PLOT_W,
      height: ACC_H,
      fill: "none",
      stroke: axisColor,
    }),
    text(18, accTop + ACC_H / 2, "accuracy", {
      transform: `rotate(-90 18 ${num(accTop + ACC_H / 2)})`,
      "text-anchor": "middle",
      "font-size": 13,
    }),
  ));
  const lrParts: string[] = [xGrid(lrTop, LR_H, true)];
  if (lrAxis) {
    for (const v of lrAxis.minor) {
      lrParts.push(el("line", {
        x1: LEFT,
        x2: LEFT + PLOT_W,
        y1: yLr(v),
        y2: yLr(v),
        stroke: "#f0f0f0",
      }));
    }
    for (const v of lrAxis.ticks) {
      lrParts.push(
        el("line", { x1: LEFT, x2: LEFT + PLOT_W, y1: yLr(v), y2: yLr(v), stroke: grid }) +
          text(LEFT - 8, yLr(v) + 4, formatRate(v), { "text-anchor": "end", class: "ytick" }),
      );
    }
  } else {
    lrParts.push(text(LEFT + PLOT_W / 2, lrTop + LR_H / 2, "learning rate 0 in every epoch", {
      "text-anchor": "middle",
      fill: "#777777",
    }));
  }
  lrParts.push(
    el("rect", { x: LEFT, y: lrTop, width: PLOT_W, height: LR_H, fill: "none", stroke: axisColor }),
    text(18, lrTop + LR_H / 2, "learning rate", {
      transform: `rotate(-90 18 ${num(lrTop + LR_H / 2)})`,
      "text-anchor": "middle",
      "font-size": 13,
    }),
    text(LEFT + PLOT_W / 2, lrTop + LR_H + 42, "epoch", {
      "text-anchor": "middle",
      "font-size": 13,
    }),
  );
  parts.push(el("g", { class: "panel", "data-panel": "lr" }, ...lrParts));

  // Series.
  const marker = (kind: string, cx: number, cy: number, color: string) =>
    kind === "validation"
      ? el("rect", {
        x: cx - 2.5,
        y: cy - 2.5,
        width: 5,
        height: 5,
        fill: "#ffffff",
        stroke: color,
      })
      : el("circle", {
        cx,
        cy,
        r: 3,
        fill: kind === "train" ? "#ffffff" : color,
        stroke: color,
      });
  // Accuracy series are clipped to their panel (an axis from --y-min cuts lower points off).
  parts.push(el(
    "defs",
    {},
    el(
      "clipPath",
      { id: "accuracy-panel" },
      el("rect", { x: LEFT, y: accTop, width: PLOT_W, height: ACC_H }),
    ),
  ));
  const series = (
    run: Run,
    kind: string,
    pts: [number, number][],
    color: string,
    dash?: string,
  ) =>
    el(
      "g",
      {
        class: "series",
        "data-run": run.name,
        "data-kind": kind,
        "data-points": pts.length,
        "clip-path": kind === "lr" ? undefined : "url(#accuracy-panel)",
      },
      el("polyline", {
        points: pts.map(([a, b]) => `${num(a)},${num(b)}`).join(" "),
        fill: "none",
        stroke: color,
        "stroke-width": kind === "test" ? 2.2 : 1.8,
        "stroke-dasharray": dash,
        "stroke-linejoin": "round",
        "stroke-linecap": kind === "validation" ? "round" : undefined,
      }),
      ...(pts.length <= MARKER_LIMIT ? pts.map(([a, b]) => marker(kind, a, b, color)) : []),
    );
  runs.forEach((run, i) => {
    const color = RUN_COLORS[i % RUN_COLORS.length];
    const p = run.points;
    parts.push(series(run, "train", p.map((q) => [x(q.epoch), yAcc(q.train)]), color, DASH.train));
    const val = p.filter((q) => q.validation !== undefined);
    if (val.length > 0) {
      parts.push(series(
        run,
        "validation",
        val.map((q) => [x(q.epoch), yAcc(q.validation!)]),
        color,
        DASH.validation,
      ));
    }
    parts.push(series(run, "test", p.map((q) => [x(q.epoch), yAcc(q.test)]), color));
    const lr = p.filter((q) => q.lr > 0);
    if (lrAxis && lr.length > 0) {
      parts.push(series(run, "lr", lr.map((q) => [x(q.epoch), yLr(q.lr)]), color));
    }
  });

  // Legend.
  const legend: string[] = [];
  let ly = accTop + 8;
  for (const l of legendLines) {
    legend.push(
      el("line", {
        x1: legendX,
        x2: legendX + 26,
        y1: ly + 6,
        y2: ly + 6,
        stroke: l.color,
        "stroke-width": 3,
      }),
      text(legendX + 34, ly + 10, l.name, { "font-size": 13, "font-weight": "bold" }),
      text(legendX + 34, ly + 26, l.detail, { "font-size": 11, fill: "#444444" }),
    );
    ly += 40;
  }
  ly += 8;
  for (const [kind, label] of styleKey) {
    legend.push(
      el("line", {
        x1: legendX,
        x2: legendX + 26,
        y1: ly + 6,
        y2: ly + 6,
        stroke: "#333333",
        "stroke-width": 1.8,
        "stroke-dasharray": DASH[kind],
        "stroke-linecap": kind === "validation" ? "round" : undefined,
      }),
      text(legendX + 34, ly + 10, label, { "font-size": 12, fill: "#333333" }),
    );
    ly += 20;
  }
  parts.push(el("g", { class: "legend" }, ...legend));

  const names = runs.map((r) => r.name).join(", ");
  return {
    svg: svgDocument({ width, height, title: `${title}: ${names}` }, ...parts),
    width,
    height,
  };
}
