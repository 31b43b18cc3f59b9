/**
 * The desire command line: `train`, `eval`, `export`, `import`, and the renderings `plot`,
 * `raster` and `fields`.
 *
 * ```sh
 * deno run -A cli.ts train --dataset mnist --epochs 3
 * deno run -A cli.ts eval --model-path runs/x/model-best.safetensors --json
 * deno run -A cli.ts export --model-path runs/x/model-best.safetensors --out float.safetensors
 * deno run -A cli.ts import --float float.safetensors --out model.safetensors
 * deno run -A cli.ts plot runs/x/log.jsonl --out curves.svg
 * deno run -A cli.ts raster runs/x/model-best.safetensors 0
 * deno run -A cli.ts fields runs/x/model-best.safetensors --out fields.png
 * ```
 *
 * @module
 */
import {
  EVAL_HELP,
  MAIN_HELP,
  parseEvalArgs,
  parseTrainArgs,
  TRAIN_HELP,
  UsageError,
} from "./src/args.ts";
import { evalOnly, evaluateModel, type Reporter, runTraining } from "./src/train.ts";
import { loadModel, saveModel, writeFileAtomic } from "./src/model_file.ts";
import { parseArgs } from "node:util";
import { encodeFloatModel, FIRST_LINEAR_INDEX, type FloatDtype } from "./src/float_io.ts";
import {
  type CompactDtype,
  DEFAULT_SCALE_METHOD,
  encodeCompactModel,
  parseScaleMethod,
} from "./src/compact.ts";
import type { DatasetName } from "./src/datasets.ts";

const encoder = new TextEncoder();

const reporter: Reporter = {
  progress(text: string) {
    Deno.stderr.writeSync(encoder.encode(`\r\x1b[2K${text}`));
  },
  line(text: string) {
    console.log(text);
  },
};

async function evalCommand(argv: string[]): Promise<void> {
  const o = parseEvalArgs(argv);
  if (o.help) {
    console.log(EVAL_HELP);
    return;
  }
  const model = await loadModel(o.modelPath);
  const dataset = (o.dataset ?? model.dataset) as DatasetName;
  const res = await evaluateModel(model, dataset, o);
  if (o.json) {
    console.log(JSON.stringify({
      accuracy: res.accuracy,
      correct: res.correct,
      samples: res.samples,
      samples_per_second: res.samplesPerSecond,
      seconds: res.seconds,
      dataset,
      model: o.modelPath,
      network: model.config.sizes.join("-"),
      epoch: model.epoch,
    }));
  } else {
    console.log(
      `${o.modelPath}: test accuracy ${
        (100 * res.accuracy).toFixed(2)
      } % (${res.correct}/${res.samples}) ` +
        `on ${dataset}, network ${model.config.sizes.join("-")}, epoch ${model.epoch}, ` +
        `${res.samplesPerSecond.toFixed(0)} samples/s`,
    );
  }
}

async function trainCommand(argv: string[]): Promise<void> {
  const o = parseTrainArgs(argv);
  if (o.help) {
    console.log(TRAIN_HELP);
    return;
  }
  if (o.evalOnly) {
    await evalOnly(o, reporter);
    return;
  }
  await runTraining(o, reporter);
}

/** Help text of the `export` command. */
export const EXPORT_HELP = `Usage: deno run -A cli.ts export --model-path FILE --out FILE [OPTIONS]

Write a model's weights for other tools: float weights named as in the authors'
PyTorch state dict (layers.{k}.weights, out × in, k = ${FIRST_LINEAR_INDEX} for the first hidden layer),
or a compact inference-only model with I16/I8 weights and a scale per layer.

Options:
  --model-path FILE       the model to export (ours, float or compact)  (required)
  --out FILE              the file to write (must not exist)            (required)
  --dtype f32|f16         float dtype                                   [f32]
  --compact int16|int8    write a compact inference model instead
  --scale METHOD          compact scale per layer: max | mse | pNN (e.g. p99.99) [${DEFAULT_SCALE_METHOD}]
  -h, --help              print this help and exit

Examples:
  deno run -A cli.ts export --model-path runs/x/model-best.safetensors --out x-float.safetensors
  deno run -A cli.ts export --model-path runs/x/model-best.safetensors --compact int8 --out x-int8.safetensors
`;

/** Help text of the `import` command. */
export const IMPORT_HELP = `Usage: deno run -A cli.ts import --float FILE --out FILE

Convert float weights (layers.{k}.weights, F32 or F16, out × in, as in the authors'
PyTorch state dict) to a model file with Q11.20 master weights. (eval and train
--model-path also read float files directly.)

Options:
  --float FILE            the float safetensors file                    (required)
  --out FILE              the model file to write (must not exist)      (required)
  -h, --help              print this help and exit
`;

/** Parses the flags of a small command: every flag takes one value, except --help. */
function parseFlags(argv: string[], names: string[]): Record<string, string> | "help" {
  if (argv.includes("--help") || argv.includes("-h")) return "help";
  const options = Object.fromEntries(names.map((n) => [n, { type: "string" as const }]));
  const { tokens } = parseArgs({
    args: argv,
    options,
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  const out: Record<string, string> = {};
  for (const tok of tokens) {
    if (tok.kind === "positional") {
      throw new UsageError(`Unexpected argument ${tok.value} (see --help)`);
    }
    if (tok.kind !== "option") continue;
    if (!names.includes(tok.name)) throw new UsageError(`Unknown flag ${tok.rawName} (see --help)`);
    if (typeof tok.value !== "string" || tok.value === "" || tok.value.startsWith("--")) {
      throw new UsageError(`Missing value for --${tok.name}`);
    }
    out[tok.name] = tok.value;
  }
  return out;
}

async function refuseExisting(path: string): Promise<void> {
  try {
    await Deno.lstat(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return;
    throw e;
  }
  throw new Error(`Refusing to overwrite --out ${path}: the file exists`);
}

function kb(bytes: number): string {
  return `${(bytes / 1024).toFixed(0)} KiB`;
}

async function exportCommand(argv: string[]): Promise<void> {
  const f = parseFlags(argv, ["model-path", "out", "dtype", "compact", "scale"]);
  if (f === "help") {
    console.log(EXPORT_HELP);
    return;
  }
  if (f["model-path"] === undefined) throw new UsageError("Missing --model-path (see --help)");
  if (f.out === undefined) throw new UsageError("Missing --out (see --help)");
  const dtypes: Record<string, FloatDtype> = { f32: "F32", f16: "F16" };
  const compacts: Record<string, CompactDtype> = { int16: "I16", int8: "I8" };
  if (f.dtype !== undefined && !(f.dtype in dtypes)) {
    throw new RangeError(`Invalid --dtype: ${f.dtype} (expected f32 or f16)`);
  }
  if (f.compact !== undefined && !(f.compact in compacts)) {
    throw new RangeError(`Invalid --compact: ${f.compact} (expected int16 or int8)`);
  }
  if (f.compact !== undefined && f.dtype !== undefined) {
    throw new UsageError("--dtype and --compact exclude each other (see --help)");
  }
  if (f.scale !== undefined && f.compact === undefined) {
    throw new UsageError("--scale needs --compact (see --help)");
  }
  let method = DEFAULT_SCALE_METHOD;
  if (f.scale !== undefined) {
    try {
      method = parseScaleMethod(f.scale);
    } catch {
      throw new RangeError(
        `Invalid --scale: ${f.scale} (expected max, mse or pNN with 0 < NN ≤ 100, e.g. p99.99)`,
      );
    }
  }
  await refuseExisting(f.out);
  const model = await loadModel(f["model-path"]);
  const net = model.config.sizes.join("-");
  if (f.compact !== undefined) {
    const dtype = compacts[f.compact];
    const r = encodeCompactModel(model, model.weights, {
      dtype,
      method,
      sourceWeightFormat: model.weightFormat ?? "Q11.20",
    });
    await writeFileAtomic(f.out, r.bytes);
    const full = model.weights.reduce((n, w) => n + 4 * w.length, 0);
    console.log(
      `${f.out}: compact ${dtype} model of ${net}, ${kb(r.bytes.length)} ` +
        `(weights ${kb(full)} as Q11.20), scales [${
          r.scales.map((x) => x.toPrecision(4)).join(", ")
        }] (${method}); inference only`,
    );
    return;
  }
  const dtype = dtypes[f.dtype ?? "f32"];
  const bytes = encodeFloatModel(model, model.weights, dtype);
  await writeFileAtomic(f.out, bytes);
  const L = model.weights.length;
  console.log(
    `${f.out}: ${dtype} float model of ${net}, ${kb(bytes.length)}, tensors ` +
      `layers.${FIRST_LINEAR_INDEX}.weights … layers.${FIRST_LINEAR_INDEX + L - 1}.weights`,
  );
}

async function importCommand(argv: string[]): Promise<void> {
  const f = parseFlags(argv, ["float", "out"]);
  if (f === "help") {
    console.log(IMPORT_HELP);
    return;
  }
  if (f.float === undefined) throw new UsageError("Missing --float (see --help)");
  if (f.out === undefined) throw new UsageError("Missing --out (see --help)");
  await refuseExisting(f.out);
  const model = await loadModel(f.float);
  if (
    model.weightFormat !== "F32" && model.weightFormat !== "F16" && model.weightFormat !== "F16+F32"
  ) {
    throw new TypeError(
      `Cannot import ${f.float}: it is not a float model (no tensors layers.{n}.weights)`,
    );
  }
  const { weights, weightFormat: _w, inferenceOnly: _i, ...info } = model;
  await saveModel(f.out, info, weights);
  console.log(
    `${f.out}: model ${model.config.sizes.join("-")} from ${model.weightFormat} weights ` +
      `(Q11.20), dataset ${model.dataset}, T ${model.config.tsteps}, θ ${model.config.threshold}`,
  );
}

/** Runs the CLI on `args`; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  const [command, ...rest] = args;
  try {
    switch (command) {
      case "train":
        await trainCommand(rest);
        return 0;
      case "eval":
        await evalCommand(rest);
        return 0;
      case "export":
        await exportCommand(rest);
        return 0;
      case "import":
        await importCommand(rest);
        return 0;
      case "plot":
      case "raster":
      case "fields": {
        // Loaded on demand: only the renderings need the SVG rasterizer and its font (npm).
        const render = await import("./src/render_args.ts");
        const run = {
          plot: render.plotCommand,
          raster: render.rasterCommand,
          fields: render.fieldsCommand,
        };
        console.log(await run[command](rest));
        return 0;
      }
      case undefined:
      case "help":
      case "--help":
      case "-h":
        console.log(MAIN_HELP);
        return command === undefined ? 2 : 0;
      default:
        throw new UsageError(
          `Unknown command ${command} (expected train, eval, export or import, or one of the ` +
            `renderings plot, raster, fields; see --help)`,
        );
    }
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    console.error(`error: ${msg}`);
    if (Deno.env.get("DESIRE_DEBUG") && e instanceof Error) console.error(e.stack);
    return e instanceof UsageError ? 2 : 1;
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
