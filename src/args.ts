/**
 * Command-line arguments of the `train` and `eval` commands: parsing, presets,
 * validation and help texts.
 *
 * The functions here have no side effects: they never print, exit or touch the
 * file system (except {@link checkOutDir}, which only reads a directory listing).
 * Problems are reported by throwing:
 *
 * - {@link UsageError} for unknown flags, positional arguments, missing values
 *   and a wrong number of values for a multi-value flag;
 * - `TypeError` for malformed values (not a number, not an integer);
 * - `RangeError` for values out of range.
 *
 * Every message names the flag, the value given and what is allowed, e.g.
 * `Invalid --epochs: -1 (must be an integer ≥ 1)`.
 *
 * Multi-value flags take their values as separate words, as one comma list, or
 * inline: `--lr 1e-6 1e-5`, `--lr 1e-6,1e-5` and `--lr=1e-6,1e-5` are the same.
 * A word that looks like a negative number (`-1`, `-0.5`, `-1e-3`) is a value,
 * not a flag, so `--epochs -1` is a range error rather than an unknown flag.
 *
 * @module
 */

import { parseArgs } from "node:util";

/**
 * The data sets the CLI can train on; each selects a {@link PRESETS} entry.
 *
 * @example Every data set has a preset
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { type DatasetName, PRESETS } from "./args.ts";
 *
 * const name: DatasetName = "fashion-mnist";
 * equal(PRESETS[name].epochs, 600);
 * ```
 */
export type DatasetName = "mnist" | "fashion-mnist";

/**
 * Options of the `train` command, as returned by {@link parseTrainArgs}.
 *
 * @example Keeping a loaded model's value unless the flag was given
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { parseTrainArgs, type TrainOptions } from "./args.ts";
 *
 * const opts: TrainOptions = parseTrainArgs(["--model-path", "m.safetensors", "--tsteps", "16"]);
 * const fromModel = { tsteps: 20, mempotDecay: 3 };
 * equal(opts.explicit.has("tsteps") ? opts.tsteps : fromModel.tsteps, 16);
 * equal(opts.explicit.has("mempot-decay") ? opts.mempotDecay : fromModel.mempotDecay, 3);
 * ```
 */
export interface TrainOptions {
  /** `--dataset`: the data set, which also selects the preset. */
  dataset: DatasetName;
  /** `--hidden`: hidden layer sizes (input 784 and output 10 excluded). */
  hidden: number[];
  /** `--tsteps`: time steps T per sample, 1..32. */
  tsteps: number;
  /** `--epochs`: number of training epochs, ≥ 1. */
  epochs: number;
  /** `--lr` CONV: learning rate of convolutional layers (accepted, unused until convolution exists). */
  lrConv: number;
  /** `--lr` LIN: learning rate of linear layers. */
  lrLin: number;
  /** `--lr-decay`: learning-rate decay κ, 0..10. */
  lrDecay: number;
  /**
   * `--lr-decay-start`: epochs trained at the full rate before the decay begins, ≥ 0. Epoch e
   * (counted from 0) trains at η·exp(−κ·max(0, e − start)).
   */
  lrDecayStart: number;
  /** `--dropout` IN: dropout probability of the input layer, [0, 1). */
  dropIn: number;
  /** `--dropout` HID: dropout probability of the hidden layers, [0, 1). */
  dropHid: number;
  /** `--mempot-thres`: membrane potential threshold θ, (0, 64]. */
  mempotThres: number;
  /** `--mempot-decay`: decay exponent d, 0..30 (λ = 1 − 2^−d). */
  mempotDecay: number;
  /** `--desire-thres` CONV: desire threshold of convolutional layers, [0, 1]. */
  desireConv: number;
  /** `--desire-thres` LIN: desire threshold of hidden linear layers, [0, 1]. */
  desireLin: number;
  /** `--desire-thres` OUT: desire threshold of the output layer, [0, 1]. */
  desireOut: number;
  /** `--error-margin`: m, 0 ≤ m < T (target spike count n = T − m). */
  errorMargin: number;
  /** `--random-seed`: u32 seed, stored in the model. */
  randomSeed: number;
  /** `--model-path`: a model file to load, if any. */
  modelPath?: string;
  /** `--eval`: evaluate the loaded model and exit. */
  evalOnly: boolean;
  /** `false` when `--no-shuffle-data` was given. */
  shuffle: boolean;
  /** `--out`: run directory; undefined means the caller's default `runs/<dataset>-<seed>-<timestamp>`. */
  out?: string;
  /** `--log`: JSON-lines log file; undefined means the caller's default `<out>/log.jsonl`. */
  log?: string;
  /** `--limit`: train on the first N samples only. */
  limit?: number;
  /**
   * `--validation`: hold the last N training samples (after `--limit`) out of training and
   * evaluate on them every epoch; 0 (the default) holds none out.
   */
  validation: number;
  /** `--data-dir`: directory of the data set files. */
  dataDir?: string;
  /** `--threads`: threads per step (default: all cores); the weights do not depend on it. */
  threads?: number;
  /**
   * `--checkpoint-every`: write `<out>/checkpoint.safetensors` every N training samples within
   * an epoch (0: only at the end of every epoch, which always writes one).
   */
  checkpointEvery: number;
  /**
   * `--resume`: a checkpoint to continue; the run's configuration and flags then come from it
   * (only `--epochs`, `--checkpoint-every`, `--data-dir` and `--threads` may be given too).
   */
  resume?: string;
  /** `--help` or `-h` was given; the other fields then hold defaults and nothing was validated. */
  help: boolean;
  /**
   * Names of the flags the user actually gave, without the leading dashes
   * (`"epochs"`, `"lr"`, `"no-shuffle-data"`, ...), so that a loaded model's
   * hyper-parameters can be kept unless overridden.
   */
  explicit: Set<string>;
}

/**
 * Options of the `eval` command, as returned by {@link parseEvalArgs}.
 *
 * @example The data set defaults to the model's own
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { type EvalOptions, parseEvalArgs } from "./args.ts";
 *
 * const opts: EvalOptions = parseEvalArgs(["--model-path", "m.safetensors"]);
 * equal(opts.dataset ?? "the model's own", "the model's own");
 * ```
 */
export interface EvalOptions {
  /** `--model-path`: the model file to evaluate (empty only when `help` is true). */
  modelPath: string;
  /** `--dataset`: the data set to evaluate on; undefined means the model's own. */
  dataset?: DatasetName;
  /** `--data-dir`: directory of the data set files. */
  dataDir?: string;
  /** `--json`: print one JSON object instead of text. */
  json: boolean;
  /** `--limit`: evaluate the first N test samples only. */
  limit?: number;
  /** `--threads`: threads per step (default: all cores); the weights do not depend on it. */
  threads?: number;
  /** `--help` or `-h` was given; the other fields then hold defaults and nothing was validated. */
  help: boolean;
}

/**
 * Thrown for a malformed command line: an unknown flag, a positional argument,
 * a missing value, or a wrong number of values for a multi-value flag.
 *
 * @example Telling usage errors apart
 * ```ts
 * import { ok as assert } from "node:assert/strict";
 * import { parseTrainArgs, UsageError } from "./args.ts";
 *
 * let error: unknown;
 * try {
 *   parseTrainArgs(["--foo"]);
 * } catch (e) {
 *   error = e;
 * }
 * assert(error instanceof UsageError && error.name === "UsageError");
 * ```
 */
export class UsageError extends Error {
  /**
   * Creates a usage error.
   *
   * @param message What is wrong with the command line.
   * @param options Standard error options (`cause`).
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "UsageError";
  }
}

/**
 * Per-data-set defaults of the network, dropout and epochs, selected by
 * `--dataset` and overridden by explicit `--hidden`, `--dropout`, `--epochs`.
 * The objects are frozen; {@link parseTrainArgs} returns copies.
 *
 * @example Reading a preset
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { PRESETS } from "./args.ts";
 *
 * deepEqual(PRESETS["fashion-mnist"], { hidden: [1000, 100], epochs: 600, dropIn: 0.05, dropHid: 0.4 });
 * ```
 */
export const PRESETS: Record<DatasetName, {
  hidden: number[];
  epochs: number;
  dropIn: number;
  dropHid: number;
}> = {
  "mnist": { hidden: [1600, 800], epochs: 150, dropIn: 0.0, dropHid: 0.3 },
  "fashion-mnist": { hidden: [1000, 100], epochs: 600, dropIn: 0.05, dropHid: 0.4 },
};
for (const preset of Object.values(PRESETS)) {
  Object.freeze(preset.hidden);
  Object.freeze(preset);
}
Object.freeze(PRESETS);

const DATASETS: readonly DatasetName[] = ["mnist", "fashion-mnist"];

/** Defaults that do not depend on the data set. */
const DEFAULTS = {
  dataset: "mnist" as DatasetName,
  tsteps: 20,
  lrConv: 1e-6,
  lrLin: 1e-5,
  lrDecay: 0.04,
  lrDecayStart: 0,
  mempotThres: 1.0,
  mempotDecay: 2,
  desireConv: 0.2,
  desireLin: 0.05,
  desireOut: 0.3,
  errorMargin: 4,
  randomSeed: 0,
  checkpointEvery: 10_000,
};

/**
 * Flags that may accompany `--resume`: they do not change what the run computes. Every other
 * flag would (or names files the checkpoint already fixes) and is refused.
 */
const RESUME_ALLOWED: ReadonlySet<string> = new Set([
  "resume",
  "epochs",
  "checkpoint-every",
  "data-dir",
  "threads",
  "help",
]);

/** Neurons of the input layer (28 × 28 pixels) and of the output layer (10 classes). */
const INPUTS = 784;
const CLASSES = 10;
/** At most 14 hidden layers (15 linear layers in the WebAssembly layout). */
const MAX_HIDDEN = 14;
/** A spike word is a u32: at most 32 time steps. */
const MAX_TSTEPS = 32;
/** 32-bit WebAssembly memory: 65536 pages of 64 KiB, less one page of headroom. */
const WASM_MEMORY_LIMIT = 4 * 1024 ** 3 - 64 * 1024;
const MIB = 1024 * 1024;

// ---------------------------------------------------------------- help texts

const fmtList = (xs: readonly number[]) => xs.join(",");
const M = PRESETS.mnist;
const F = PRESETS["fashion-mnist"];
const DESIRE_DEFAULT = [DEFAULTS.desireConv, DEFAULTS.desireLin, DEFAULTS.desireOut]
  .map((x) => x.toFixed(2)).join(" ");

/**
 * Help text of the `train` command: usage, every flag with its values and default.
 *
 * @example Every flag is documented
 * ```ts
 * import { ok as assert } from "node:assert/strict";
 * import { TRAIN_HELP } from "./args.ts";
 *
 * assert(TRAIN_HELP.startsWith("Usage: deno task train"));
 * assert(TRAIN_HELP.includes("--mempot-decay D"));
 * ```
 */
export const TRAIN_HELP: string = `Usage: deno task train [OPTIONS]
       deno run -A cli.ts train [OPTIONS]

Train a spiking neural network with desire backpropagation on MNIST or
Fashion-MNIST, writing checkpoints and a JSON-lines log to the run directory.
Multi-value flags take separate words or a comma list: --lr 1e-6 1e-5,
--lr 1e-6,1e-5 and --lr=1e-6,1e-5 are the same.

Data:
  --dataset NAME          mnist | fashion-mnist; also selects the preset for
                          --hidden, --dropout and --epochs          [${DEFAULTS.dataset}]
  --data-dir DIR          directory holding the data set files
  --limit N               train on the first N samples only (N ≥ 1) [all]
  --validation N          hold the last N training samples (after --limit) out
                          of training and evaluate them every epoch; the epoch
                          of best validation accuracy (the earliest on ties) is
                          reported with its test accuracy and saved as
                          model-validation-best.safetensors; N ≥ 0 and less
                          than the training samples                 [0: none]
  --no-shuffle-data       keep the data order instead of shuffling every epoch

Network:
  --hidden N1,N2,...      hidden layer sizes, 1 to ${MAX_HIDDEN} layers, each ≥ 1
                          [${fmtList(M.hidden)} for mnist, ${fmtList(F.hidden)} for fashion-mnist]
  --tsteps T              time steps per sample, 1..${MAX_TSTEPS}                [${DEFAULTS.tsteps}]
  --mempot-thres THETA    membrane potential threshold, 0 < θ ≤ 64   [${
  DEFAULTS.mempotThres.toFixed(1)
}]
  --mempot-decay D        membrane decay λ = 1 − 2^−D, D in 0..30   [${DEFAULTS.mempotDecay}]

Training:
  --epochs N              training epochs, N ≥ 1        [${M.epochs} for mnist, ${F.epochs} for fashion-mnist]
  --lr CONV LIN           learning rates, each in [0, 1]; CONV is accepted
                          but unused until convolution exists       [${DEFAULTS.lrConv.toExponential()} ${DEFAULTS.lrLin.toExponential()}]
  --lr-decay KAPPA        learning-rate decay κ, 0 ≤ κ ≤ 10          [${DEFAULTS.lrDecay}]
  --lr-decay-start E      train E epochs at the full rate, then decay:
                          epoch e (from 0) at η·exp(−κ·max(0, e − E)), E ≥ 0
                                                                    [${DEFAULTS.lrDecayStart}]
  --dropout IN HID        dropout probabilities of the input and hidden layers,
                          each in [0, 1)     [${M.dropIn.toFixed(2)} ${
  M.dropHid.toFixed(2)
} for mnist,
                                              ${F.dropIn.toFixed(2)} ${
  F.dropHid.toFixed(2)
} for fashion-mnist]
  --desire-thres CONV LIN OUT
                          desire thresholds, each in [0, 1]         [${DESIRE_DEFAULT}]
  --error-margin M        target spike count is T − M, 0 ≤ M < T    [${DEFAULTS.errorMargin}]
  --random-seed S         random seed, 0..4294967295, stored in the model [${DEFAULTS.randomSeed}]
  --threads N             threads, N ≥ 1; same weights for any N   [all cores]

Checkpoints and resuming:
  --checkpoint-every N    write <out>/checkpoint.safetensors every N training
                          samples (N ≥ 0; 0: only at the end of every epoch,
                          which always writes one)                  [${DEFAULTS.checkpointEvery}]
  --resume FILE           continue the run of this checkpoint where it stopped,
                          bit for bit, in the checkpoint's directory and log;
                          its configuration and flags apply, and only --epochs
                          (to raise the total), --checkpoint-every, --data-dir
                          and --threads may be given with it. A finished run
                          prints so and exits 0.

Model and output:
  --model-path FILE       load this model and continue training it (its
                          hyper-parameters apply unless given as flags)
  --eval                  evaluate the loaded model and exit (needs --model-path)
  --out DIR               run directory for checkpoints, the log and the models
                          (model-best: best test accuracy; model-last; with
                          --validation, model-validation-best); must not
                          already hold a run     [runs/<dataset>-<seed>-<timestamp>]
  --log FILE              JSON-lines log                            [<out>/log.jsonl]
  -h, --help              print this help and exit

Examples:
  deno task train --dataset fashion-mnist --epochs 10
  deno task train --hidden 400 --tsteps 16 --limit 1000 --out runs/quick
  deno task train --epochs 30 --validation 5000
  deno run -A cli.ts train --model-path runs/quick/model-best.safetensors --eval
  deno task train --resume runs/quick/checkpoint.safetensors --epochs 20
`;

/**
 * Help text of the `eval` command: usage, every flag with its values and default.
 *
 * @example Every flag is documented
 * ```ts
 * import { ok as assert } from "node:assert/strict";
 * import { EVAL_HELP } from "./args.ts";
 *
 * assert(EVAL_HELP.startsWith("Usage: deno task eval --model-path FILE"));
 * assert(EVAL_HELP.includes("--json"));
 * ```
 */
export const EVAL_HELP: string = `Usage: deno task eval --model-path FILE [OPTIONS]
       deno run -A cli.ts eval --model-path FILE [OPTIONS]

Evaluate a saved spiking neural network on the test set of its data set and
print its accuracy.

Options:
  --model-path FILE       the model to evaluate (required)
  --dataset NAME          mnist | fashion-mnist                     [the model's own]
  --data-dir DIR          directory holding the data set files
  --limit N               evaluate the first N test samples only (N ≥ 1) [all]
  --json                  print one JSON object instead of text
  --threads N             threads, N ≥ 1; same weights for any N   [all cores]
  -h, --help              print this help and exit

Examples:
  deno task eval --model-path runs/mnist-0-20261128-170000/model-best.safetensors
  deno run -A cli.ts eval --model-path runs/quick/model-best.safetensors --json --limit 1000
`;

/**
 * Top-level help text of the CLI: the commands and how to get their help.
 *
 * @example Both commands are listed
 * ```ts
 * import { ok as assert } from "node:assert/strict";
 * import { MAIN_HELP } from "./args.ts";
 *
 * assert(MAIN_HELP.includes("deno task train") && MAIN_HELP.includes("deno task eval"));
 * ```
 */
export const MAIN_HELP: string = `desire: train spiking neural networks with desire backpropagation
(Deno + WebAssembly).

Usage: deno task train [OPTIONS]               (= deno run -A cli.ts train [OPTIONS])
       deno task eval --model-path FILE [OPTIONS]  (= deno run -A cli.ts eval ...)
       deno run -A cli.ts COMMAND --help      options of COMMAND

Commands:
  train     train a network on MNIST or Fashion-MNIST, writing checkpoints and a log
  eval      evaluate a saved model on the test set
  export    write a model's weights as float32/float16 (PyTorch names) or a compact int16/int8 model
  import    convert float weights named as in the authors' PyTorch code into a model
  plot      draw learning curves (accuracy, learning rate per epoch) of training logs, SVG + PNG
  raster    draw every layer's spikes while a model classifies one test image, SVG + PNG
  fields    draw the first layer's weights as a grid of 28×28 images, PNG + SVG

Options:
  -h, --help  print this help and exit
`;

// ------------------------------------------------------------------ scanning

/** How a flag takes its value(s). */
interface FlagSpec {
  /** `boolean`: no value; `string`: one word; `list`: several words or a comma list. */
  kind: "boolean" | "string" | "list";
  /** Required number of values of a `list` flag; undefined means any number ≥ 1. */
  count?: number;
  /** Usage shown in messages, e.g. `--lr CONV LIN`. */
  usage: string;
}

const bool = (usage: string): FlagSpec => ({ kind: "boolean", usage });
const str = (usage: string): FlagSpec => ({ kind: "string", usage });
const list = (usage: string, count?: number): FlagSpec => ({ kind: "list", count, usage });

const TRAIN_FLAGS = new Map<string, FlagSpec>([
  ["dataset", str("--dataset mnist|fashion-mnist")],
  ["hidden", list("--hidden N1,N2,...")],
  ["tsteps", str("--tsteps T")],
  ["epochs", str("--epochs N")],
  ["lr", list("--lr CONV LIN", 2)],
  ["lr-decay", str("--lr-decay KAPPA")],
  ["lr-decay-start", str("--lr-decay-start E")],
  ["dropout", list("--dropout IN HID", 2)],
  ["mempot-thres", str("--mempot-thres THETA")],
  ["mempot-decay", str("--mempot-decay D")],
  ["desire-thres", list("--desire-thres CONV LIN OUT", 3)],
  ["error-margin", str("--error-margin M")],
  ["random-seed", str("--random-seed S")],
  ["model-path", str("--model-path FILE")],
  ["eval", bool("--eval")],
  ["no-shuffle-data", bool("--no-shuffle-data")],
  ["out", str("--out DIR")],
  ["log", str("--log FILE")],
  ["limit", str("--limit N")],
  ["validation", str("--validation N")],
  ["data-dir", str("--data-dir DIR")],
  ["threads", str("--threads N")],
  ["checkpoint-every", str("--checkpoint-every N")],
  ["resume", str("--resume FILE")],
  ["help", bool("--help")],
]);

const EVAL_FLAGS = new Map<string, FlagSpec>([
  ["model-path", str("--model-path FILE")],
  ["dataset", str("--dataset mnist|fashion-mnist")],
  ["data-dir", str("--data-dir DIR")],
  ["json", bool("--json")],
  ["limit", str("--limit N")],
  ["threads", str("--threads N")],
  ["help", bool("--help")],
]);

/** The flags given: `true` for a boolean flag, the word for a string flag, the values for a list flag. */
type Given = Map<string, true | string | string[]>;

/** A flag-like word: starts with `-`, but is not `-` alone nor a negative number such as `-1` or `-.5`. */
function isFlagWord(word: string): boolean {
  return word.startsWith("-") && word !== "-" && !/^-\.?\d/.test(word);
}

function hasHelp(argv: readonly string[]): boolean {
  return argv.some((word) => word === "--help" || word === "-h");
}

function positionalError(word: string): UsageError {
  return new UsageError(
    `Unexpected argument ${word} (positional arguments are not accepted; see --help)`,
  );
}

/**
 * Splits argv into flags and their values, then lets node:util parseArgs
 * (strict) check and collect the normalized `--name=value` words.
 */
function scan(argv: readonly string[], flags: Map<string, FlagSpec>): Given {
  const normalized: string[] = [];
  let i = 0;
  while (i < argv.length) {
    const word = argv[i++];
    if (word === "--") {
      if (i < argv.length) throw positionalError(argv[i]);
      break;
    }
    if (!isFlagWord(word)) throw positionalError(word);
    const eq = word.indexOf("=");
    const name = word.startsWith("--") ? word.slice(2, eq < 0 ? undefined : eq) : "";
    const spec = flags.get(name);
    if (spec === undefined) {
      throw new UsageError(`Unknown flag ${eq < 0 ? word : word.slice(0, eq)} (see --help)`);
    }
    const inline = eq < 0 ? undefined : word.slice(eq + 1);
    if (spec.kind === "boolean") {
      if (inline !== undefined) {
        throw new UsageError(
          `Invalid --${name}: ${word} (the flag takes no value; usage: ${spec.usage})`,
        );
      }
      normalized.push(`--${name}`);
      continue;
    }
    const words: string[] = [];
    if (inline !== undefined) {
      if (inline !== "") words.push(inline);
    } else if (i < argv.length && !isFlagWord(argv[i])) {
      words.push(argv[i++]);
    }
    if (spec.kind === "list") {
      while (i < argv.length && !isFlagWord(argv[i])) words.push(argv[i++]);
    }
    if (words.length === 0 || (spec.kind === "string" && words[0] === "")) {
      throw new UsageError(`Missing value for --${name} (usage: ${spec.usage})`);
    }
    if (spec.kind === "list") {
      normalized.push(`--${name}=${words.flatMap((w) => w.split(",")).join(",")}`);
    } else {
      normalized.push(`--${name}=${words[0]}`);
    }
  }

  const options: Record<string, { type: "boolean" | "string" }> = {};
  for (const [name, spec] of flags) {
    options[name] = { type: spec.kind === "boolean" ? "boolean" : "string" };
  }
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({ args: normalized, options, strict: true, allowPositionals: false }));
  } catch (e) {
    throw new UsageError(e instanceof Error ? e.message : String(e), { cause: e });
  }
  const given: Given = new Map();
  for (const [name, spec] of flags) {
    const v = values[name];
    if (v === undefined) continue;
    if (spec.kind === "boolean") given.set(name, true);
    else if (spec.kind === "list") given.set(name, String(v).split(","));
    else given.set(name, String(v));
  }
  return given;
}

// ---------------------------------------------------------------- validation

const NUMBER_RE = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?$/i;

function show(text: string): string {
  return text === "" || /\s/.test(text) ? JSON.stringify(text) : text;
}

function message(flag: string, text: string, must: string): string {
  return `Invalid --${flag}: ${show(text)} (${must})`;
}

/** Parses a decimal number; TypeError if malformed, RangeError if not finite. */
function toNumber(flag: string, text: string, must: string): number {
  if (!NUMBER_RE.test(text.trim())) throw new TypeError(message(flag, text, must));
  const x = Number(text);
  if (!Number.isFinite(x)) throw new RangeError(message(flag, text, must));
  return x + 0; // -0 → 0
}

/** An integer in [min, max]. */
function integer(flag: string, text: string, min: number, max: number, must: string): number {
  const x = toNumber(flag, text, must);
  if (!Number.isInteger(x)) throw new TypeError(message(flag, text, must));
  if (x < min || x > max) throw new RangeError(message(flag, text, must));
  return x;
}

/**
 * The values of a multi-value flag of fixed count, each a finite number in
 * [lo, hi]: malformed words first (TypeError), then the count (UsageError),
 * then the ranges (RangeError).
 */
function reals(
  flag: string,
  values: string[],
  lo: number,
  hi: number,
  must: string,
  open: { lo?: boolean; hi?: boolean } = {},
): number[] {
  for (const text of values) toNumber(flag, text, must);
  const spec = TRAIN_FLAGS.get(flag)!;
  if (values.length !== spec.count) {
    const given = values.map(show).join(" ");
    throw new UsageError(
      `Invalid --${flag}: ${given} (expected ${spec.count} values, got ${values.length}; ` +
        `usage: ${spec.usage})`,
    );
  }
  return values.map((text) => real(flag, text, lo, hi, must, open));
}

/** A finite number in the interval [lo, hi], with open ends as asked. */
function real(
  flag: string,
  text: string,
  lo: number,
  hi: number,
  must: string,
  open: { lo?: boolean; hi?: boolean } = {},
): number {
  const x = toNumber(flag, text, must);
  if (open.lo ? x <= lo : x < lo) throw new RangeError(message(flag, text, must));
  if (open.hi ? x >= hi : x > hi) throw new RangeError(message(flag, text, must));
  return x;
}

/**
 * A `--dataset` value, checked.
 *
 * @throws {RangeError} Not one of the data set names.
 */
export function dataset(text: string): DatasetName {
  if (!(DATASETS as readonly string[]).includes(text)) {
    throw new RangeError(message("dataset", text, `must be one of: ${DATASETS.join(", ")}`));
  }
  return text as DatasetName;
}

const MUST_COUNT = "must be an integer ≥ 1";
const MUST_UNIT = "must be a finite number in [0, 1]";
const MUST_VALIDATION = "must be an integer ≥ 0 and less than the number of training samples";
/** The end of the messages that refuse a `--validation` leaving no sample to train on. */
export const LEFT_TO_TRAIN = "so that at least one sample is left to train on";

/**
 * An integer flag value ≥ 1, checked.
 *
 * @throws {TypeError} Not an integer.
 * @throws {RangeError} Below 1 or not finite.
 */
export function positive(flag: string, text: string): number {
  return integer(flag, text, 1, Infinity, MUST_COUNT);
}

function hiddenSizes(values: string[]): number[] {
  const sizes = values.map((v) =>
    integer("hidden", v, 1, Infinity, "each layer size must be an integer ≥ 1")
  );
  if (sizes.length > MAX_HIDDEN) {
    throw new RangeError(
      message("hidden", values.join(","), `at most ${MAX_HIDDEN} hidden layers`),
    );
  }
  return sizes;
}

function ceil4(n: number): number {
  return Math.ceil(n / 4) * 4;
}

/**
 * Estimates the WebAssembly memory a network needs, in bytes, so that an
 * oversized `--hidden` is refused before anything is allocated:
 *
 * Σ over linear layers l ≥ 1 of sizes[l−1] · ceil4(sizes[l]) · 8 (master and
 * forward weights, i32 each) + Σ over all layers l ≥ 0 of
 * (tsteps · ceil4(sizes[l]) · 4 · 3 + ceil4(sizes[l]) · 64) + 1 MiB,
 * where ceil4 rounds up to a multiple of 4 (the SIMD row stride).
 *
 * @param sizes Layer sizes including input and output, e.g. `[784, 1600, 800, 10]`.
 * @param tsteps Time steps T per sample.
 * @returns The estimated number of bytes.
 *
 * @example The default MNIST network needs about 22 MB
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { estimateWasmBytes } from "./args.ts";
 *
 * equal(estimateWasmBytes([784, 1600, 800, 10], 20), 22_372_160);
 * ```
 */
export function estimateWasmBytes(sizes: number[], tsteps: number): number {
  let bytes = MIB;
  for (let l = 0; l < sizes.length; l++) {
    const stride = ceil4(sizes[l]);
    if (l > 0) bytes += sizes[l - 1] * stride * 8;
    bytes += tsteps * stride * 4 * 3 + stride * 64;
  }
  return bytes;
}

/** Bytes in GB (10^9) with one decimal, e.g. `80.7`, or `6.3e+294` when huge. */
function gigabytes(bytes: number): string {
  const gb = bytes / 1e9;
  return gb < 1e6 ? gb.toFixed(1) : gb.toExponential(1);
}

function checkMemory(hidden: number[], tsteps: number): void {
  const bytes = estimateWasmBytes([INPUTS, ...hidden, CLASSES], tsteps);
  if (!(bytes <= WASM_MEMORY_LIMIT)) {
    throw new RangeError(
      `Invalid --hidden: ${hidden.join(",")} needs about ${gigabytes(bytes)} GB ` +
        `of WebAssembly memory (at most 4 GiB: 32-bit memory)`,
    );
  }
}

function trainDefaults(name: DatasetName): TrainOptions {
  const preset = PRESETS[name];
  return {
    ...DEFAULTS,
    dataset: name,
    hidden: [...preset.hidden],
    epochs: preset.epochs,
    dropIn: preset.dropIn,
    dropHid: preset.dropHid,
    modelPath: undefined,
    evalOnly: false,
    shuffle: true,
    out: undefined,
    log: undefined,
    limit: undefined,
    validation: 0,
    dataDir: undefined,
    threads: undefined,
    checkpointEvery: DEFAULTS.checkpointEvery,
    resume: undefined,
    help: false,
    explicit: new Set(),
  };
}

/**
 * Parses and validates the arguments of the `train` command (argv without the
 * command name). `--dataset` selects a {@link PRESETS} entry; explicit flags
 * override it. With `--help`/`-h` anywhere, returns the defaults with
 * `help: true` without validating anything else.
 *
 * @param argv The words after `train`, e.g. `["--epochs", "10"]`.
 * @returns The validated options; `explicit` names the flags given.
 * @throws {UsageError} Unknown flag, positional argument, missing value, wrong
 *   number of values, `--eval` without `--model-path`, or `--resume` with a flag
 *   that would change the resumed run (anything but `--epochs`,
 *   `--checkpoint-every`, `--data-dir`, `--threads`).
 * @throws {TypeError} A value that is not a number or not an integer.
 * @throws {RangeError} A value out of range, `--error-margin` ≥ `--tsteps`,
 *   `--validation` ≥ `--limit`, or a network too large for 32-bit WebAssembly memory.
 *
 * @example Preset defaults with an override
 * ```ts
 * import { deepEqual, equal, throws } from "node:assert/strict";
 * import { parseTrainArgs } from "./args.ts";
 *
 * const opts = parseTrainArgs(["--dataset", "fashion-mnist", "--lr", "1e-6", "2e-5", "--epochs=10"]);
 * deepEqual([opts.hidden, opts.epochs, opts.lrLin, opts.dropHid], [[1000, 100], 10, 2e-5, 0.4]);
 * equal(opts.explicit.has("epochs") && !opts.explicit.has("hidden"), true);
 * throws(() => parseTrainArgs(["--epochs", "-1"]), {
 *   name: "RangeError",
 *   message: "Invalid --epochs: -1 (must be an integer ≥ 1)",
 * });
 * ```
 */
export function parseTrainArgs(argv: string[]): TrainOptions {
  if (hasHelp(argv)) {
    const opts = trainDefaults(DEFAULTS.dataset);
    opts.help = true;
    opts.explicit.add("help");
    return opts;
  }
  const given = scan(argv, TRAIN_FLAGS);
  const one = (name: string) => given.get(name) as string | undefined;
  const many = (name: string) => given.get(name) as string[] | undefined;

  if (given.has("resume")) {
    const conflicting = [...given.keys()].filter((name) => !RESUME_ALLOWED.has(name));
    if (conflicting.length > 0) {
      const names = conflicting.map((name) => `--${name}`).join(", ");
      throw new UsageError(
        `Cannot use ${names} with --resume: a resumed run keeps the configuration and flags ` +
          `of its checkpoint (allowed with --resume: --epochs, --checkpoint-every, --data-dir, ` +
          `--threads)`,
      );
    }
  }
  const opts = trainDefaults(given.has("dataset") ? dataset(one("dataset")!) : DEFAULTS.dataset);
  opts.explicit = new Set(given.keys());

  let v: string | undefined;
  let vs: string[] | undefined;
  if ((vs = many("hidden"))) opts.hidden = hiddenSizes(vs);
  if ((v = one("tsteps"))) {
    opts.tsteps = integer(
      "tsteps",
      v,
      1,
      MAX_TSTEPS,
      `must be an integer in 1..${MAX_TSTEPS}: a spike word holds ${MAX_TSTEPS} steps`,
    );
  }
  if ((v = one("epochs"))) opts.epochs = positive("epochs", v);
  if ((vs = many("lr"))) [opts.lrConv, opts.lrLin] = reals("lr", vs, 0, 1, MUST_UNIT);
  if ((v = one("lr-decay"))) {
    opts.lrDecay = real("lr-decay", v, 0, 10, "must be a finite number in [0, 10]");
  }
  if ((v = one("lr-decay-start"))) {
    opts.lrDecayStart = integer(
      "lr-decay-start",
      v,
      0,
      1_000_000,
      "must be a whole number of epochs in 0..1000000",
    );
  }
  if ((vs = many("dropout"))) {
    [opts.dropIn, opts.dropHid] = reals("dropout", vs, 0, 1, "each probability must be in [0, 1)", {
      hi: true,
    });
  }
  if ((v = one("mempot-thres"))) {
    opts.mempotThres = real("mempot-thres", v, 0, 64, "must be a finite number in (0, 64]", {
      lo: true,
    });
  }
  if ((v = one("mempot-decay"))) {
    opts.mempotDecay = integer("mempot-decay", v, 0, 30, "must be an integer in 0..30");
  }
  if ((vs = many("desire-thres"))) {
    [opts.desireConv, opts.desireLin, opts.desireOut] = reals("desire-thres", vs, 0, 1, MUST_UNIT);
  }
  if ((v = one("error-margin"))) {
    const must = `must be an integer ≥ 0 and less than --tsteps ${opts.tsteps}`;
    opts.errorMargin = integer("error-margin", v, 0, Infinity, must);
  }
  if (opts.errorMargin >= opts.tsteps) {
    throw new RangeError(
      message(
        "error-margin",
        String(opts.errorMargin),
        `${
          given.has("error-margin") ? "" : "the default; "
        }must be less than --tsteps ${opts.tsteps}, so that the target count T − m is at least 1`,
      ),
    );
  }
  if ((v = one("random-seed"))) {
    opts.randomSeed = integer(
      "random-seed",
      v,
      0,
      2 ** 32 - 1,
      "must be an integer in 0..4294967295",
    );
  }
  if ((v = one("limit"))) opts.limit = positive("limit", v);
  if ((v = one("validation"))) {
    opts.validation = integer("validation", v, 0, Infinity, MUST_VALIDATION);
    if (opts.limit !== undefined && opts.validation >= opts.limit) {
      throw new RangeError(
        message("validation", v, `must be less than --limit ${opts.limit}, ${LEFT_TO_TRAIN}`),
      );
    }
  }
  if ((v = one("threads"))) opts.threads = positive("threads", v);
  if ((v = one("checkpoint-every"))) {
    opts.checkpointEvery = integer(
      "checkpoint-every",
      v,
      0,
      Infinity,
      "must be an integer ≥ 0; 0 checkpoints only at the end of every epoch",
    );
  }
  opts.resume = one("resume");
  opts.modelPath = one("model-path");
  opts.out = one("out");
  opts.log = one("log");
  opts.dataDir = one("data-dir");
  opts.evalOnly = given.has("eval");
  opts.shuffle = !given.has("no-shuffle-data");
  if (opts.evalOnly && opts.modelPath === undefined) {
    throw new UsageError("Missing --model-path: --eval evaluates a loaded model (see --help)");
  }
  checkMemory(opts.hidden, opts.tsteps);
  return opts;
}

/**
 * Parses and validates the arguments of the `eval` command (argv without the
 * command name). `--model-path` is required unless `--help`/`-h` is given, in
 * which case nothing else is validated.
 *
 * @param argv The words after `eval`, e.g. `["--model-path", "model.safetensors", "--json"]`.
 * @returns The validated options; `dataset` is undefined unless given (the model's own applies).
 * @throws {UsageError} Unknown flag, positional argument, missing value or missing `--model-path`.
 * @throws {TypeError} A value that is not a number or not an integer.
 * @throws {RangeError} A value out of range or an unknown data set.
 *
 * @example Evaluating a model as JSON
 * ```ts
 * import { deepEqual, throws } from "node:assert/strict";
 * import { parseEvalArgs } from "./args.ts";
 *
 * deepEqual(parseEvalArgs(["--model-path", "m.safetensors", "--json"]), {
 *   modelPath: "m.safetensors",
 *   dataset: undefined,
 *   dataDir: undefined,
 *   json: true,
 *   limit: undefined,
 *   threads: undefined,
 *   help: false,
 * });
 * throws(() => parseEvalArgs(["--json"]), { name: "UsageError" });
 * ```
 */
export function parseEvalArgs(argv: string[]): EvalOptions {
  if (hasHelp(argv)) return { modelPath: "", json: false, help: true };
  const given = scan(argv, EVAL_FLAGS);
  const one = (name: string) => given.get(name) as string | undefined;
  const modelPath = one("model-path");
  if (modelPath === undefined) {
    throw new UsageError("Missing --model-path: eval needs a model file to evaluate (see --help)");
  }
  const datasetText = one("dataset");
  const limitText = one("limit");
  const threadsText = one("threads");
  return {
    modelPath,
    dataset: datasetText === undefined ? undefined : dataset(datasetText),
    dataDir: one("data-dir"),
    json: given.has("json"),
    limit: limitText === undefined ? undefined : positive("limit", limitText),
    threads: threadsText === undefined ? undefined : positive("threads", threadsText),
    help: false,
  };
}

// ------------------------------------------------------------------- out dir

/** Files that mark a directory as holding a run. */
function isRunFile(name: string): boolean {
  return name === "log.jsonl" || name === "run.json" || name.endsWith(".safetensors");
}

/**
 * Refuses an `--out` directory that already holds a run: a `log.jsonl`,
 * `run.json` or any `*.safetensors` file directly inside it. A missing or empty
 * directory (or one holding only other files) is fine. Reads the directory
 * listing only; creates nothing.
 *
 * @param dir The run directory given with `--out` (or the caller's default).
 * @returns Nothing; throws if the directory cannot be used.
 * @throws {Error} `Refusing to use --out DIR: it already holds a run (log.jsonl); choose
 *   another directory or remove it`, or `Refusing to use --out DIR: it is not a directory`.
 *
 * @example A fresh directory is accepted, a used one refused
 * ```ts
 * import { doesNotThrow, throws } from "node:assert/strict";
 * import { checkOutDir } from "./args.ts";
 *
 * const dir = Deno.makeTempDirSync();
 * doesNotThrow(() => checkOutDir(dir));
 * doesNotThrow(() => checkOutDir(`${dir}/missing`));
 * Deno.writeTextFileSync(`${dir}/run.json`, "{}");
 * throws(() => checkOutDir(dir), /it already holds a run \(run\.json\)/);
 * Deno.removeSync(dir, { recursive: true });
 * ```
 */
export function checkOutDir(dir: string): void {
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(dir)];
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return;
    if (e instanceof Deno.errors.NotADirectory) {
      throw new Error(`Refusing to use --out ${dir}: it is not a directory`, { cause: e });
    }
    throw e;
  }
  const found = entries.filter((e) => !e.isDirectory && isRunFile(e.name)).map((e) => e.name)
    .sort();
  if (found.length > 0) {
    throw new Error(
      `Refusing to use --out ${dir}: it already holds a run (${found.join(", ")}); ` +
        `choose another directory or remove it`,
    );
  }
}
