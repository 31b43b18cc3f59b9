/**
 * The rendering commands of the CLI, `plot`, `raster` and `fields`: their help texts,
 * argument parsing and the commands themselves (read the inputs, render, write the SVG and
 * the PNG atomically).
 *
 * Parsing has no side effects and reports problems by throwing, as `args.ts` does:
 * {@linkcode UsageError} for unknown flags, missing values and a wrong number of arguments,
 * `TypeError` for a malformed value, `RangeError` for a value out of range. Every message names
 * the flag or argument, the value and what is allowed.
 *
 * Every command writes two files, `BASE.svg` and `BASE.png`, from `--out BASE.svg` or
 * `--out BASE.png`. Existing files are replaced (atomically: a temporary file, then a rename),
 * except an input of the command, which is refused before anything is computed.
 *
 * @example Parsing the arguments of `raster`
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseRasterArgs } from "./render_args.ts";
 *
 * const o = parseRasterArgs(["m.safetensors", "17", "--out", "r.png"]);
 * assert.deepEqual([o.model, o.index, o.out], ["m.safetensors", 17, "r.png"]);
 * assert.throws(() => parseRasterArgs(["m.safetensors", "10000"]), RangeError);
 * ```
 *
 * @module
 */
import { dataset as datasetName, positive, UsageError } from "./args.ts";
import { DATASET_NAMES, type DatasetName, findDataset, loadSplit } from "./datasets.ts";
import { loadModel, writeFileAtomic } from "./model_file.ts";
import { readLog, renderCurves } from "./plot.ts";
import { recordSpikes, renderRaster } from "./raster.ts";
import { renderFields } from "./fields.ts";
import { svgToPng } from "./svg.ts";

/** Test images per data set: the range of `raster`'s INDEX. */
export const TEST_IMAGES = 10000;

/** Help text of the `plot` command. */
export const PLOT_HELP =
  `Usage: deno run -A cli.ts plot LOG... [--out FILE.svg] [--title TEXT] [--y-min PCT]

Draw learning curves from training logs: accuracy per epoch (train dashed,
validation dotted when the log has it, test solid; one colour per run) and the
learning rate per epoch on a log scale below. Writes FILE.svg and FILE.png.

Arguments:
  LOG...                  JSON-lines logs written by train (<run>/log.jsonl), or
                          run directories holding one; each is a run, named by
                          its directory (or by its file name without .log.jsonl)

Options:
  --out FILE.svg          output; FILE.svg and FILE.png are written (either
                          extension may be given)                  [curves.svg]
  --title TEXT            title above the chart          [Learning curves]
  --y-min PCT             lower end of the accuracy axis, 0 ≤ PCT < 100 (lower
                          points are cut off)       [the runs' lowest accuracy]
  -h, --help              print this help and exit

Examples:
  deno run -A cli.ts plot runs/mnist-0-*/log.jsonl
  deno run -A cli.ts plot results/mnist-s0.log.jsonl results/mnist-s1.log.jsonl --out mnist.svg
`;

/** Help text of the `raster` command. */
export const RASTER_HELP = `Usage: deno run -A cli.ts raster MODEL INDEX [OPTIONS]

Draw the spikes of every layer (input, hidden, output; x = time step, y = neuron)
while MODEL classifies test image INDEX at evaluation (no dropout), beside the
image, its label, the predicted class and the output spike counts. Writes
FILE.svg and FILE.png.

Arguments:
  MODEL                   a model file (ours, float or compact)
  INDEX                   test image, an integer in 0..${TEST_IMAGES - 1}

Options:
  --dataset NAME          mnist | fashion-mnist              [the model's own]
  --data-dir DIR          directory of the data set files   [search path]
  --out FILE.svg          output; FILE.svg and FILE.png are written
                                                          [raster-INDEX.svg]
  -h, --help              print this help and exit

Example:
  deno run -A cli.ts raster runs/x/model-best.safetensors 0 --out raster0.svg
`;

/** Help text of the `fields` command. */
export const FIELDS_HELP = `Usage: deno run -A cli.ts fields MODEL [OPTIONS]

Draw the first layer's weights of the first N neurons as a grid of 28×28
images, each scaled to its own largest |w| (white 0, red positive, blue
negative; the caption under a tile gives the neuron and its largest |w| in
threshold units). The model's input layer must have 784 neurons. Writes
FILE.png and FILE.svg.

Arguments:
  MODEL                   a model file (ours, float or compact)

Options:
  --out FILE.png          output; FILE.png and FILE.svg are written [fields.png]
  --count N               neurons to draw, from the first (N ≥ 1, at most the
                          layer's size)               [100, or all if fewer]
  --columns C             tiles per row (C ≥ 1)                     [⌈√N⌉]
  -h, --help              print this help and exit

Example:
  deno run -A cli.ts fields runs/x/model-best.safetensors --count 64 --out fields.png
`;

/** Options of `plot`. */
export interface PlotOptions {
  /** The logs (or run directories), in legend order. */
  logs: string[];
  /** `--out`: `BASE.svg` or `BASE.png`. */
  out: string;
  /** `--title`. */
  title?: string;
  /** `--y-min`: lower end of the accuracy axis, percent. */
  yMin?: number;
  /** `-h`/`--help` was given; nothing else was checked. */
  help: boolean;
}

/** Options of `raster`. */
export interface RasterOptions {
  /** The model file. */
  model: string;
  /** The test image, 0..9999. */
  index: number;
  /** `--dataset`; undefined means the model's own. */
  dataset?: DatasetName;
  /** `--data-dir`. */
  dataDir?: string;
  /** `--out`: `BASE.svg` or `BASE.png`. */
  out: string;
  /** `-h`/`--help` was given; nothing else was checked. */
  help: boolean;
}

/** Options of `fields`. */
export interface FieldsCommandOptions {
  /** The model file. */
  model: string;
  /** `--out`: `BASE.png` or `BASE.svg`. */
  out: string;
  /** `--count`; undefined means 100 or all if fewer. */
  count?: number;
  /** `--columns`; undefined means ⌈√count⌉. */
  columns?: number;
  /** `-h`/`--help` was given; nothing else was checked. */
  help: boolean;
}

interface Scanned {
  help: boolean;
  flags: Map<string, string>;
  positionals: string[];
}

const NUMBER_LIKE = /^-(\d|\.\d)/;

/** Splits argv into flags (each taking one value) and positional arguments. */
function scan(argv: string[], names: readonly string[]): Scanned {
  if (argv.includes("-h") || argv.includes("--help")) {
    return { help: true, flags: new Map(), positionals: [] };
  }
  const flags = new Map<string, string>();
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i];
    if (word === "--") {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!word.startsWith("-") || word === "-" || NUMBER_LIKE.test(word)) {
      positionals.push(word);
      continue;
    }
    const eq = word.indexOf("=");
    const flag = eq < 0 ? word : word.slice(0, eq);
    const name = flag.replace(/^--/, "");
    if (!flag.startsWith("--") || !names.includes(name)) {
      throw new UsageError(`Unknown flag ${flag} (see --help)`);
    }
    let value: string | undefined;
    if (eq >= 0) value = word.slice(eq + 1);
    else if (i + 1 < argv.length && !argv[i + 1].startsWith("--")) value = argv[++i];
    if (value === undefined || value === "") throw new UsageError(`Missing value for --${name}`);
    if (flags.has(name)) throw new UsageError(`--${name} given twice (see --help)`);
    flags.set(name, value);
  }
  return { help: false, flags, positionals };
}

/** Checks that `--out` names an SVG or PNG file. */
function outFlag(value: string): string {
  if (!/\.(svg|png)$/.test(value) || /(^|\/)\.(svg|png)$/.test(value)) {
    throw new TypeError(
      `Invalid --out: ${value} (must be a file name ending in .svg or .png; both are written)`,
    );
  }
  return value;
}

/**
 * Parses the arguments of `plot`.
 *
 * @param argv The words after `plot`.
 * @returns The options.
 * @throws {UsageError} An unknown flag, a missing value or no LOG.
 * @throws {TypeError} An `--out` not ending in `.svg` or `.png`; a `--y-min` that is not a number.
 * @throws {RangeError} A `--y-min` outside [0, 100).
 */
export function parsePlotArgs(argv: string[]): PlotOptions {
  const s = scan(argv, ["out", "title", "y-min"]);
  if (s.help) return { logs: [], out: "", help: true };
  if (s.positionals.length === 0) {
    throw new UsageError("Missing LOG: give one or more logs (see --help)");
  }
  const y = s.flags.get("y-min");
  let yMin: number | undefined;
  if (y !== undefined) {
    const must = "must be a number of percent, 0 ≤ PCT < 100";
    yMin = /^\s*$/.test(y) ? NaN : Number(y);
    if (!Number.isFinite(yMin)) throw new TypeError(`Invalid --y-min: ${y} (${must})`);
    if (yMin < 0 || yMin >= 100) throw new RangeError(`Invalid --y-min: ${y} (${must})`);
  }
  return {
    logs: s.positionals,
    out: outFlag(s.flags.get("out") ?? "curves.svg"),
    title: s.flags.get("title"),
    yMin,
    help: false,
  };
}

/**
 * Parses the arguments of `raster`.
 *
 * @param argv The words after `raster`.
 * @returns The options.
 * @throws {UsageError} An unknown flag, a missing value, or not exactly MODEL and INDEX.
 * @throws {TypeError} An INDEX that is not an integer, an `--out` not ending in `.svg`/`.png`.
 * @throws {RangeError} An INDEX out of 0..9999, an unknown `--dataset`.
 */
export function parseRasterArgs(argv: string[]): RasterOptions {
  const s = scan(argv, ["dataset", "data-dir", "out"]);
  if (s.help) return { model: "", index: 0, out: "", help: true };
  const [model, index, ...extra] = s.positionals;
  if (model === undefined) throw new UsageError("Missing MODEL and INDEX (see --help)");
  if (index === undefined) {
    throw new UsageError("Missing INDEX: the test image, 0..9999 (see --help)");
  }
  if (extra.length > 0) throw new UsageError(`Unexpected argument ${extra[0]} (see --help)`);
  const must = `must be an integer in 0..${TEST_IMAGES - 1}: a test image`;
  if (!/^[+-]?\d+$/.test(index)) throw new TypeError(`Invalid INDEX: ${index} (${must})`);
  const i = Number(index);
  if (i < 0 || i >= TEST_IMAGES) throw new RangeError(`Invalid INDEX: ${index} (${must})`);
  const dataset = s.flags.get("dataset");
  return {
    model,
    index: i === 0 ? 0 : i, // not -0
    dataset: dataset === undefined ? undefined : datasetName(dataset),
    dataDir: s.flags.get("data-dir"),
    out: outFlag(s.flags.get("out") ?? `raster-${i}.svg`),
    help: false,
  };
}

/**
 * Parses the arguments of `fields`.
 *
 * @param argv The words after `fields`.
 * @returns The options.
 * @throws {UsageError} An unknown flag, a missing value, or not exactly one MODEL.
 * @throws {TypeError} A `--count`/`--columns` that is not an integer, a bad `--out`.
 * @throws {RangeError} A `--count`/`--columns` below 1.
 */
export function parseFieldsArgs(argv: string[]): FieldsCommandOptions {
  const s = scan(argv, ["out", "count", "columns"]);
  if (s.help) return { model: "", out: "", help: true };
  const [model, ...extra] = s.positionals;
  if (model === undefined) throw new UsageError("Missing MODEL (see --help)");
  if (extra.length > 0) throw new UsageError(`Unexpected argument ${extra[0]} (see --help)`);
  const count = s.flags.get("count"), columns = s.flags.get("columns");
  return {
    model,
    out: outFlag(s.flags.get("out") ?? "fields.png"),
    count: count === undefined ? undefined : positive("count", count),
    columns: columns === undefined ? undefined : positive("columns", columns),
    help: false,
  };
}

/**
 * The two files an `--out` value stands for.
 *
 * @param out `BASE.svg` or `BASE.png`.
 * @returns `{ svg: "BASE.svg", png: "BASE.png" }`.
 */
export function outputPaths(out: string): { svg: string; png: string } {
  const base = out.replace(/\.(svg|png)$/, "");
  return { svg: `${base}.svg`, png: `${base}.png` };
}

async function statOrNull(path: string): Promise<Deno.FileInfo | null> {
  try {
    return await Deno.stat(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

/**
 * Checks, before any work, that the outputs can be written and are none of the inputs: the
 * directory exists, an output is not a directory and not the same file as an input (by device
 * and inode, so links and other spellings of a path are caught).
 *
 * @param out The `--out` value.
 * @param inputs The command's input files.
 * @returns The two output paths.
 */
export async function checkOutputs(
  out: string,
  inputs: string[],
): Promise<{ svg: string; png: string }> {
  const paths = outputPaths(out);
  const k = out.lastIndexOf("/");
  const dir = k < 0 ? "." : k === 0 ? "/" : out.slice(0, k);
  const d = await statOrNull(dir);
  if (!d?.isDirectory) {
    throw new Deno.errors.NotFound(`Cannot write --out ${out}: no directory ${dir}`);
  }
  const ins = await Promise.all(inputs.map(async (p) => ({ path: p, info: await statOrNull(p) })));
  for (const p of [paths.svg, paths.png]) {
    const info = await statOrNull(p);
    if (info === null) continue;
    if (info.isDirectory) throw new TypeError(`Cannot write --out ${out}: ${p} is a directory`);
    const same = ins.find((i) =>
      i.info !== null && i.info.ino === info.ino && i.info.dev === info.dev
    );
    if (same) {
      throw new TypeError(`Refusing to write ${p} (--out ${out}): it is the input ${same.path}`);
    }
  }
  return paths;
}

/** Renders `svg` to PNG, then writes both files atomically (nothing is written if rendering fails). */
async function writeBoth(
  paths: { svg: string; png: string },
  svg: string,
): Promise<void> {
  const png = await svgToPng(svg);
  await writeFileAtomic(paths.svg, new TextEncoder().encode(svg));
  await writeFileAtomic(paths.png, png);
}

/**
 * The `plot` command.
 *
 * @param argv The words after `plot`.
 * @returns The line to print.
 */
export async function plotCommand(argv: string[]): Promise<string> {
  const o = parsePlotArgs(argv);
  if (o.help) return PLOT_HELP;
  const runs = [];
  for (const log of o.logs) runs.push(await readLog(log));
  const paths = await checkOutputs(o.out, runs.map((r) => r.path));
  const { svg, width, height } = renderCurves(runs, { title: o.title, yMin: o.yMin });
  await writeBoth(paths, svg);
  const epochs = runs.flatMap((r) => r.points.map((p) => p.epoch));
  return `${paths.svg}, ${paths.png}: learning curves of ${runs.length} run${
    runs.length === 1 ? "" : "s"
  }, epochs ${Math.min(...epochs)}–${Math.max(...epochs)}, ${width}×${height} px`;
}

/**
 * The `raster` command.
 *
 * @param argv The words after `raster`.
 * @returns The line to print.
 */
export async function rasterCommand(argv: string[]): Promise<string> {
  const o = parseRasterArgs(argv);
  if (o.help) return RASTER_HELP;
  const model = await loadModel(o.model);
  const paths = await checkOutputs(o.out, [o.model]);
  const name = o.dataset ?? model.dataset;
  if (!(DATASET_NAMES as readonly string[]).includes(name)) {
    throw new RangeError(
      `Cannot tell the data set of ${o.model} (its metadata says ${JSON.stringify(name)}); ` +
        `give --dataset ${DATASET_NAMES.join(" or ")}`,
    );
  }
  const dataset = name as DatasetName;
  if (model.config.sizes[0] !== 784) {
    throw new RangeError(
      `Cannot run ${o.model} on ${dataset}: its input layer has ${
        model.config.sizes[0]
      } neurons, the images 784 pixels`,
    );
  }
  const test = await loadSplit(dataset, await findDataset(dataset, { dataDir: o.dataDir }), "test");
  if (o.index >= test.count) {
    throw new RangeError(
      `Invalid INDEX: ${o.index} (the ${dataset} test set has ${test.count} images)`,
    );
  }
  const px = test.rows * test.cols;
  const image = test.images.slice(o.index * px, (o.index + 1) * px);
  const label = test.labels[o.index];
  const rec = await recordSpikes(model, image, o.model);
  const { svg, width, height } = renderRaster(rec, {
    image,
    label,
    index: o.index,
    dataset,
    model: o.model,
    details: [`epoch ${model.epoch}`],
  });
  await writeBoth(paths, svg);
  const predicted = rec.predicted < 0 ? "none (tie)" : String(rec.predicted);
  return `${paths.svg}, ${paths.png}: spike raster of ${dataset} test image ${o.index} ` +
    `(label ${label}, predicted ${predicted}; output counts ${rec.counts.join(" ")}), ` +
    `${width}×${height} px`;
}

/**
 * The `fields` command.
 *
 * @param argv The words after `fields`.
 * @returns The line to print.
 */
export async function fieldsCommand(argv: string[]): Promise<string> {
  const o = parseFieldsArgs(argv);
  if (o.help) return FIELDS_HELP;
  const model = await loadModel(o.model);
  const paths = await checkOutputs(o.out, [o.model]);
  const { svg, width, height, layout } = renderFields(model, {
    count: o.count,
    columns: o.columns,
    model: o.model,
  });
  await writeBoth(paths, svg);
  return `${paths.png}, ${paths.svg}: first-layer weights of neurons 0–${layout.count - 1} ` +
    `of ${model.config.sizes[1]}, ${layout.columns} columns, ${width}×${height} px`;
}
