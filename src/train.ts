/**
 * The training schedule: epochs, shuffling, learning-rate decay, evaluation, checkpoints, log,
 * and resuming a run from its checkpoint.
 *
 * A run is deterministic: every random draw depends only on (seed, epoch, position in the
 * epoch's order) and the weights, so a run resumed from a checkpoint continues bit for bit as if
 * it had never stopped. A checkpoint (`<out>/checkpoint.safetensors`, {@link CHECKPOINT_NAME})
 * is a model file whose metadata also holds `kind` = `checkpoint`, `position` (next index in the
 * order of epoch `epoch`, which counts the epochs completed), `train_correct`, `train_samples`,
 * `checkpoint_every`, `out`, `log`, `elapsed_seconds`, `epoch_seconds`, `saturations`,
 * `last_record` (the log line of the last completed epoch) and, in a run with `--validation`
 * once an epoch is done, the epoch chosen on the validation samples (`validation_chosen_epoch`,
 * `best_validation_accuracy`, `validation_chosen_test_accuracy`). It is written atomically every
 * `--checkpoint-every` samples and at the end of every epoch: after `model-last`/`model-best`
 * (and `model-validation-best`), before the epoch's log line, so a resumed run can restore a log
 * line lost to a kill.
 *
 * With `--validation N` the last N samples of the (`--limit`-ed) training set, in file order, are
 * held out: the epochs train on (and shuffle) the others only, and every epoch is evaluated on the
 * held-out samples as on the test set. The epoch with the highest validation accuracy (the
 * earliest on ties) is the run's honest "best epoch": the log reports its test accuracy and
 * {@link VALIDATION_BEST_NAME} holds its weights, while `model-best` stays the epoch of the best
 * test accuracy.
 *
 * @module
 */
import { Network } from "./network.ts";
import type { NetConfig } from "./params.ts";
import { epochRate } from "./params.ts";
import { shuffledOrder } from "./rng.ts";
import { type Dataset, loadDataset, type Split } from "./datasets.ts";
import { checkOutDir, LEFT_TO_TRAIN, type TrainOptions } from "./args.ts";
import {
  assertTrainable,
  decodeModel,
  encodeModel,
  loadModel,
  type Model,
  type ModelInfo,
  saveModel,
  writeFileAtomic,
} from "./model_file.ts";
import { decodeSafetensors } from "./safetensors.ts";
import { DATASET_NAMES, type DatasetName } from "./datasets.ts";
import { peakRssBytes } from "./memory.ts";
import { dirname, isAbsolute, join, relative, resolve } from "node:path";

/** One line of the JSON-lines log: one epoch. */
export interface EpochRecord {
  /** Epoch number, counted from 1. */
  epoch: number;
  /** Learning rate η(e) of the linear layers in this epoch. */
  lr: number;
  /** Fraction of training samples classified correctly while training (with dropout). */
  train_accuracy: number;
  /** Fraction of test samples classified correctly after the epoch. */
  test_accuracy: number;
  /** Training samples in the epoch. */
  train_samples: number;
  /** Test samples evaluated. */
  test_samples: number;
  /** Training samples per second (training only). */
  samples_per_second: number;
  /** Test samples per second (inference). */
  test_samples_per_second: number;
  /** Wall time of the epoch including evaluation and saving. */
  seconds: number;
  /** Wall time since the run started. */
  elapsed_seconds: number;
  /** Best test accuracy so far. */
  best_test_accuracy: number;
  /** Saturation events so far (0 unless a bound was hit). */
  saturations: number;
  /** Peak resident set of the training process so far, bytes (Linux `VmHWM`; absent elsewhere). */
  peak_rss_bytes?: number;
  /** With `--validation`: fraction of the validation samples classified correctly after the epoch. */
  validation_accuracy?: number;
  /** With `--validation`: validation samples evaluated. */
  validation_samples?: number;
  /** With `--validation`: best validation accuracy so far (that of `validation_chosen_epoch`). */
  best_validation_accuracy?: number;
  /** With `--validation`: the epoch of the best validation accuracy so far, the earliest on ties. */
  validation_chosen_epoch?: number;
  /** With `--validation`: the test accuracy of `validation_chosen_epoch`. */
  validation_chosen_test_accuracy?: number;
}

/** Where the schedule reports to. */
export interface Reporter {
  /** A transient progress line (overwritten by the next). */
  progress(text: string): void;
  /** A permanent line. */
  line(text: string): void;
}

export { type EvalResult, evaluate } from "./evaluate.ts";
import { type EvalResult, evaluate } from "./evaluate.ts";

/** The network configuration a set of training options asks for. */
export function configFromOptions(o: TrainOptions): NetConfig {
  return {
    sizes: [784, ...o.hidden, 10],
    tsteps: o.tsteps,
    threshold: o.mempotThres,
    decay: o.mempotDecay,
    margin: o.errorMargin,
    desireHid: o.desireLin,
    desireOut: o.desireOut,
    dropIn: o.dropIn,
    dropHid: o.dropHid,
  };
}

/**
 * The configuration of a loaded model, with the hyper-parameters the user gave as flags
 * overriding the model's own. A different `--hidden` is an error.
 */
export function mergeModelConfig(model: Model, o: TrainOptions, path: string): NetConfig {
  const c = { ...model.config };
  const ex = o.explicit;
  if (ex.has("hidden")) {
    const want = [784, ...o.hidden, 10].join("-");
    if (want !== c.sizes.join("-")) {
      throw new RangeError(
        `Invalid --hidden: ${o.hidden.join(",")} (the model ${path} is ${c.sizes.join("-")})`,
      );
    }
  }
  if (ex.has("tsteps")) c.tsteps = o.tsteps;
  if (ex.has("mempot-thres")) c.threshold = o.mempotThres;
  if (ex.has("mempot-decay")) c.decay = o.mempotDecay;
  if (ex.has("error-margin")) c.margin = o.errorMargin;
  if (ex.has("desire-thres")) {
    c.desireHid = o.desireLin;
    c.desireOut = o.desireOut;
  }
  if (ex.has("dropout")) {
    c.dropIn = o.dropIn;
    c.dropHid = o.dropHid;
  }
  if (c.margin >= c.tsteps) {
    throw new RangeError(
      `Invalid --error-margin: ${c.margin} (must be less than --tsteps ${c.tsteps})`,
    );
  }
  return c;
}

function pct(x: number): string {
  return (100 * x).toFixed(2) + " %";
}

function timestamp(): string {
  return new Date().toISOString().replace(/[-:]/g, "").replace("T", "-").slice(0, 15);
}

/** File name of a run's checkpoint inside its run directory. */
export const CHECKPOINT_NAME = "checkpoint.safetensors";
/**
 * File name, inside the run directory, of the model of the epoch chosen on the validation samples
 * (runs with `--validation`). Its metadata adds `chosen_by` = `validation`, `validation_accuracy`
 * and `validation_samples`.
 */
export const VALIDATION_BEST_NAME = "model-validation-best.safetensors";
/**
 * Version of the checkpoint metadata written. Version 3 added `hyper.lr_decay_start`; version 2
 * added `hyper.validation` and the validation-chosen epoch. Versions 1 and 2 are still read (their
 * decay starts at epoch 0).
 */
export const CHECKPOINT_VERSION = 3;
const CHECKPOINT_VERSIONS_READ: readonly string[] = ["1", "2", "3"];

/** Training flags as stored in the model and run.json. */
function hyperOf(o: TrainOptions, dataset: string): Record<string, unknown> {
  return {
    dataset,
    epochs: o.epochs,
    lr: [o.lrConv, o.lrLin],
    lr_decay: o.lrDecay,
    lr_decay_start: o.lrDecayStart,
    desire_thres: [o.desireConv, o.desireLin, o.desireOut],
    shuffle: o.shuffle,
    limit: o.limit ?? null,
    validation: o.validation,
  };
}

/**
 * Holds the last `n` of the first `count` samples of a training split out: the samples to train
 * on are the first `count − n`, the validation samples the `n` after them, in file order. Both are
 * views into `split` (nothing is copied).
 *
 * @param split The training split.
 * @param count Samples in use (`--limit`), at most `split.count`.
 * @param n Samples to hold out, 0 ≤ n < count.
 * @returns The part to train on and the validation part.
 * @throws {RangeError} `count` or `n` out of range.
 *
 * @example The last two of five samples are held out
 * ```ts
 * import { deepEqual, equal } from "node:assert/strict";
 * import { holdOut } from "./train.ts";
 *
 * const split = {
 *   images: new Uint8Array(6 * 784).map((_, i) => Math.floor(i / 784)),
 *   labels: new Uint8Array([0, 1, 2, 3, 4, 5]), count: 6, rows: 28 as const, cols: 28 as const,
 * };
 * const { train, validation } = holdOut(split, 5, 2);
 * equal(train.count, 3);
 * deepEqual([...validation.labels], [3, 4]);
 * equal(validation.images[0], 3);
 * ```
 */
export function holdOut(
  split: Split,
  count: number,
  n: number,
): { train: Split; validation: Split } {
  if (!Number.isInteger(count) || count < 1 || count > split.count) {
    throw new RangeError(`Cannot hold out samples: count ${count} is not in 1..${split.count}`);
  }
  if (!Number.isInteger(n) || n < 0 || n >= count) {
    throw new RangeError(`Cannot hold out ${n} of ${count} samples (expected 0..${count - 1})`);
  }
  const px = split.rows * split.cols;
  const k = count - n;
  const part = (from: number, to: number): Split => ({
    images: split.images.subarray(from * px, to * px),
    labels: split.labels.subarray(from, to),
    count: to - from,
    rows: split.rows,
    cols: split.cols,
  });
  return { train: part(0, k), validation: part(k, count) };
}

/** Summary of a finished run. */
export interface RunSummary {
  /** Run directory. */
  outDir: string;
  /** Log file. */
  logPath: string;
  /** Per-epoch records (all of the run's, including those before a resume). */
  epochs: EpochRecord[];
  /** True when `--resume` found the run already finished and trained nothing. */
  alreadyFinished?: boolean;
}

/**
 * Threads to use: the `--threads` flag, else every core the runtime reports. The weights do not
 * depend on it (bit-identical for any thread count).
 */
export function threadCount(flag?: number): number {
  return flag ?? Math.max(1, Math.min(64, navigator.hardwareConcurrency || 1));
}

/** Evaluates a loaded model (`train --model-path FILE --eval`). */
export async function evalOnly(o: TrainOptions, r: Reporter): Promise<EvalResult> {
  const model = await loadModel(o.modelPath!);
  const config = mergeModelConfig(model, o, o.modelPath!);
  const dataset = o.explicit.has("dataset") ? o.dataset : model.dataset as TrainOptions["dataset"];
  const res = await evaluateModel({ ...model, config }, dataset, o);
  r.line(
    `${o.modelPath}: test accuracy ${
      pct(res.accuracy)
    } (${res.correct}/${res.samples}) on ${dataset}, ` +
      `${res.samplesPerSecond.toFixed(0)} samples/s`,
  );
  return res;
}

/**
 * Evaluates a loaded model on a dataset's test split (`eval`, `train --eval`): an
 * inference-only network (no master weights), `threads` threads, the first `limit` samples.
 */
export async function evaluateModel(
  model: Model,
  dataset: DatasetName,
  options: { dataDir?: string; threads?: number; limit?: number } = {},
): Promise<EvalResult> {
  const data = await loadDataset(dataset, { dataDir: options.dataDir });
  const net = await Network.create(model.config, model.seed, model.weights, {
    threads: threadCount(options.threads),
    inferenceOnly: true,
  });
  try {
    return evaluate(net, data.test, options.limit);
  } finally {
    await net.close();
  }
}

// ---------------------------------------------------------------- checkpoints

/** The epoch chosen on the validation samples: the best validation accuracy, the earliest on ties. */
export interface ValidationChoice {
  /** The epoch, counted from 1. */
  epoch: number;
  /** Its validation accuracy: the best so far. */
  validationAccuracy: number;
  /** Its test accuracy. */
  testAccuracy: number;
}

/** The state of a run at a sample boundary, besides the weights. */
export interface CheckpointState {
  /** Epochs completed = the 0-based epoch in progress. */
  epoch: number;
  /** Next index into the order of epoch `epoch` (0 at an epoch boundary). */
  position: number;
  /** Samples of epoch `epoch` classified correctly while training, before `position`. */
  trainCorrect: number;
  /** Training samples per epoch. */
  trainSamples: number;
  /** Best test accuracy so far, −1 before the first evaluation. */
  best: number;
  /** `--checkpoint-every` of the run. */
  checkpointEvery: number;
  /** Run directory (absolute) when the checkpoint was written. */
  out: string;
  /** Log file (absolute) when the checkpoint was written. */
  log: string;
  /** Wall time of the run up to the checkpoint (work lost to a kill is not counted). */
  elapsedSeconds: number;
  /** Wall time of epoch `epoch` up to `position`. */
  epochSeconds: number;
  /** Saturation events of the run so far. */
  saturations: number;
  /** Log line of the last completed epoch, if any. */
  lastRecord?: EpochRecord;
  /** With `--validation`, the epoch chosen so far; undefined before the first epoch ends. */
  validation?: ValidationChoice;
}

/** A loaded checkpoint: the model and the run state. */
export interface Checkpoint extends Model {
  /** Where the run stands. */
  state: CheckpointState;
}

/**
 * Encodes a checkpoint: the model file of `encodeModel` with the run state added to its
 * metadata, so it stays a valid model file (`eval --model-path` reads it).
 */
export function encodeCheckpoint(
  info: ModelInfo,
  weights: Int32Array[],
  state: CheckpointState,
): Uint8Array {
  const meta: Record<string, string> = {
    kind: "checkpoint",
    checkpoint_version: String(CHECKPOINT_VERSION),
    position: String(state.position),
    train_correct: String(state.trainCorrect),
    train_samples: String(state.trainSamples),
    checkpoint_every: String(state.checkpointEvery),
    out: state.out,
    log: state.log,
    elapsed_seconds: String(state.elapsedSeconds),
    epoch_seconds: String(state.epochSeconds),
    saturations: String(state.saturations),
  };
  if (state.best >= 0) meta.best_test_accuracy = String(state.best);
  if (state.lastRecord) meta.last_record = JSON.stringify(state.lastRecord);
  if (state.validation) {
    meta.validation_chosen_epoch = String(state.validation.epoch);
    meta.best_validation_accuracy = String(state.validation.validationAccuracy);
    meta.validation_chosen_test_accuracy = String(state.validation.testAccuracy);
  }
  return encodeModel(info, weights, meta);
}

function resumeError(path: string, what: string): never {
  throw new TypeError(`Cannot resume from ${path}: ${what}`);
}

/**
 * Decodes and checks a checkpoint's bytes. A corrupt file, a model file that is not a
 * checkpoint, or inconsistent run state is refused with a message naming `source`.
 */
export function decodeCheckpoint(bytes: Uint8Array, source: string): Checkpoint {
  const model = decodeModel(bytes, source);
  const meta = decodeSafetensors(bytes, source).metadata;
  if (meta.kind !== "checkpoint") {
    resumeError(
      source,
      `it is not a checkpoint (metadata 'kind' is ${
        meta.kind === undefined ? "missing" : JSON.stringify(meta.kind)
      }, expected ` +
        `"checkpoint"; to continue training from a model file, use --model-path)`,
    );
  }
  if (!CHECKPOINT_VERSIONS_READ.includes(meta.checkpoint_version)) {
    resumeError(
      source,
      `checkpoint version ${meta.checkpoint_version} is not supported (this version reads ` +
        `${CHECKPOINT_VERSIONS_READ.slice(0, -1).join(", ")} and ${
          CHECKPOINT_VERSIONS_READ.at(-1)
        })`,
    );
  }
  const int = (key: string, min: number, max: number): number => {
    const v = Number(meta[key]);
    if (meta[key] === undefined || !Number.isInteger(v) || v < min || v > max) {
      resumeError(
        source,
        `metadata '${key}' is ${JSON.stringify(meta[key])} (expected an integer in ${min}..${max})`,
      );
    }
    return v;
  };
  const num = (key: string, fallback?: number): number => {
    if (meta[key] === undefined && fallback !== undefined) return fallback;
    const v = Number(meta[key]);
    if (meta[key] === undefined || !Number.isFinite(v)) {
      resumeError(source, `metadata '${key}' is ${JSON.stringify(meta[key])} (expected a number)`);
    }
    return v;
  };
  const str = (key: string): string => {
    if (typeof meta[key] !== "string" || meta[key] === "") {
      resumeError(source, `metadata '${key}' is missing`);
    }
    return meta[key];
  };
  const h = model.hyper;
  const isNum = (x: unknown) => typeof x === "number" && Number.isFinite(x);
  const hyperOk = (DATASET_NAMES as readonly unknown[]).includes(h.dataset) &&
    Number.isInteger(h.epochs) && (h.epochs as number) >= 1 &&
    Array.isArray(h.lr) && h.lr.length === 2 && h.lr.every(isNum) &&
    isNum(h.lr_decay) && typeof h.shuffle === "boolean" &&
    (h.lr_decay_start === undefined ||
      (Number.isInteger(h.lr_decay_start) && (h.lr_decay_start as number) >= 0)) &&
    (h.limit === null || (Number.isInteger(h.limit) && (h.limit as number) >= 1)) &&
    (h.validation === undefined ||
      (Number.isInteger(h.validation) && (h.validation as number) >= 0));
  if (!hyperOk) {
    resumeError(
      source,
      `metadata 'hyper' does not hold the run's training flags: ${JSON.stringify(h)}`,
    );
  }
  if (model.dataset !== h.dataset) {
    resumeError(
      source,
      `metadata 'dataset' ${model.dataset} differs from 'hyper.dataset' ${h.dataset}`,
    );
  }
  if (!Number.isInteger(model.epoch) || model.epoch < 0 || model.epoch > (h.epochs as number)) {
    resumeError(source, `metadata 'epoch' is ${model.epoch} (expected 0..${h.epochs})`);
  }
  const trainSamples = int("train_samples", 1, 2 ** 32 - 1);
  const position = int("position", 0, trainSamples - 1);
  const trainCorrect = int("train_correct", 0, position);
  let lastRecord: EpochRecord | undefined;
  if (meta.last_record !== undefined) {
    try {
      lastRecord = JSON.parse(meta.last_record);
    } catch {
      resumeError(source, "metadata 'last_record' is not valid JSON");
    }
    if (typeof lastRecord !== "object" || lastRecord === null || lastRecord.epoch !== model.epoch) {
      resumeError(source, `metadata 'last_record' is not the log line of epoch ${model.epoch}`);
    }
  }
  const best = num("best_test_accuracy", -1);
  // The validation-chosen epoch: absent in version 1 and in runs without --validation.
  const held = (h.validation as number | undefined) ?? 0;
  let validation: ValidationChoice | undefined;
  if (meta.validation_chosen_epoch !== undefined) {
    validation = {
      epoch: int("validation_chosen_epoch", 1, model.epoch),
      validationAccuracy: num("best_validation_accuracy"),
      testAccuracy: num("validation_chosen_test_accuracy"),
    };
  } else if (held > 0 && model.epoch > 0) {
    resumeError(
      source,
      `metadata 'validation_chosen_epoch' is missing (the run holds out ${held} validation ` +
        `samples and completed ${model.epoch} epochs)`,
    );
  }
  return {
    ...model,
    state: {
      epoch: model.epoch,
      position,
      trainCorrect,
      trainSamples,
      best,
      checkpointEvery: int("checkpoint_every", 0, Number.MAX_SAFE_INTEGER),
      out: str("out"),
      log: str("log"),
      elapsedSeconds: num("elapsed_seconds", 0),
      epochSeconds: num("epoch_seconds", 0),
      saturations: int("saturations", 0, Number.MAX_SAFE_INTEGER),
      lastRecord,
      validation,
    },
  };
}

/** Reads and checks a checkpoint file (see {@link decodeCheckpoint}). */
export async function loadCheckpoint(path: string): Promise<Checkpoint> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new Deno.errors.NotFound(`Cannot resume from ${path}: no such file`);
    }
    throw e;
  }
  return decodeCheckpoint(bytes, path);
}

/**
 * Makes the log agree with a checkpoint after a kill: keeps the first complete, valid line of
 * each epoch up to the checkpoint's completed epochs (dropping a torn last line, duplicates and
 * lines of later epochs), and restores the line of the last completed epoch from the checkpoint
 * when the kill came between the end-of-epoch checkpoint and the log line. Rewrites the log
 * (atomically) only when something changed.
 *
 * @returns The log's records after the repair.
 */
async function reconcileLog(
  logPath: string,
  completed: number,
  lastRecord: EpochRecord | undefined,
): Promise<EpochRecord[]> {
  let text = "";
  try {
    text = await Deno.readTextFile(logPath);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  const lines = text.split("\n");
  lines.pop(); // the text after the last newline: empty, or a line torn by the kill
  const keep: string[] = [];
  const records: EpochRecord[] = [];
  const seen = new Set<number>();
  for (const line of lines) {
    let rec: EpochRecord;
    try {
      rec = JSON.parse(line);
    } catch {
      continue;
    }
    if (
      typeof rec !== "object" || rec === null || !Number.isInteger(rec.epoch) ||
      rec.epoch < 1 || rec.epoch > completed || seen.has(rec.epoch)
    ) continue;
    seen.add(rec.epoch);
    keep.push(line);
    records.push(rec);
  }
  if (lastRecord && !seen.has(lastRecord.epoch)) {
    keep.push(JSON.stringify(lastRecord));
    records.push(lastRecord);
  }
  const repaired = keep.map((l) => l + "\n").join("");
  if (repaired !== text) {
    await writeFileAtomic(logPath, new TextEncoder().encode(repaired));
  }
  return records;
}

/** Removes temporary files a killed save left in the run directory. */
async function removeStaleTemporaries(dir: string): Promise<void> {
  for await (const e of Deno.readDir(dir)) {
    if (e.isFile && /\.safetensors\.tmp-\d+$/.test(e.name)) {
      await Deno.remove(join(dir, e.name)).catch(() => {});
    }
  }
}

// ------------------------------------------------------------------- schedule

/** Everything the epoch loop needs: a fresh run or one restored from a checkpoint. */
interface Plan {
  outDir: string;
  logPath: string;
  config: NetConfig;
  seed: number;
  dataset: DatasetName;
  hyper: Record<string, unknown>;
  epochs: number;
  lrLin: number;
  lrDecay: number;
  /** Epochs at the full rate before the decay begins. */
  lrDecayStart: number;
  shuffle: boolean;
  checkpointEvery: number;
  data: Dataset;
  /** The samples trained on: the first `nTrain` of the (`--limit`-ed) training set. */
  train: Split;
  nTrain: number;
  /** The held-out validation samples (`--validation`), if any. */
  validation?: Split;
  weights?: Int32Array[];
  /** Where to start: epoch, position, the epoch's counters so far. */
  start: CheckpointState;
  /** Records of the epochs completed before this process. */
  records: EpochRecord[];
}

/** Prepares a new run: checks, loads, creates the run directory, run.json and an empty log. */
async function planFresh(o: TrainOptions): Promise<Plan> {
  const outDir = o.out ?? `runs/${o.dataset}-${o.randomSeed}-${timestamp()}`;
  checkOutDir(outDir);
  const logPath = o.log ?? `${outDir}/log.jsonl`;
  try {
    const st = await Deno.stat(logPath);
    if (st.size > 0) {
      throw new Error(`Refusing to use --log ${logPath}: the file already exists and is not empty`);
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  let config = configFromOptions(o);
  let seed = o.randomSeed;
  let weights: Int32Array[] | undefined;
  if (o.modelPath) {
    const model = await loadModel(o.modelPath);
    assertTrainable(model, o.modelPath);
    config = mergeModelConfig(model, o, o.modelPath);
    if (!o.explicit.has("random-seed")) seed = model.seed;
    weights = model.weights;
  }
  const data: Dataset = await loadDataset(o.dataset, { dataDir: o.dataDir });
  const nSamples = Math.min(data.train.count, o.limit ?? data.train.count);
  if (o.validation >= nSamples) {
    throw new RangeError(
      `Invalid --validation: ${o.validation} (must be less than the ${nSamples} training ` +
        `samples of ${o.dataset}, ${LEFT_TO_TRAIN})`,
    );
  }
  const { train, validation } = holdOut(data.train, nSamples, o.validation);
  const nTrain = train.count;

  await Deno.mkdir(outDir, { recursive: true });
  const hyper = hyperOf(o, o.dataset);
  await Deno.writeTextFile(
    `${outDir}/run.json`,
    JSON.stringify(
      { config, seed, hyper, train_samples: nTrain, started: new Date().toISOString() },
      null,
      2,
    ) +
      "\n",
  );
  await Deno.writeTextFile(logPath, "");
  return {
    outDir,
    logPath,
    config,
    seed,
    dataset: o.dataset,
    hyper,
    epochs: o.epochs,
    lrLin: o.lrLin,
    lrDecay: o.lrDecay,
    lrDecayStart: o.lrDecayStart,
    shuffle: o.shuffle,
    checkpointEvery: o.checkpointEvery,
    data,
    train,
    nTrain,
    validation: validation.count > 0 ? validation : undefined,
    weights,
    start: {
      epoch: 0,
      position: 0,
      trainCorrect: 0,
      trainSamples: nTrain,
      best: -1,
      checkpointEvery: o.checkpointEvery,
      out: resolve(outDir),
      log: resolve(logPath),
      elapsedSeconds: 0,
      epochSeconds: 0,
      saturations: 0,
    },
    records: [],
  };
}

/**
 * Prepares a resumed run from `o.resume`: the run directory is the checkpoint's; the log is the
 * checkpoint's (moved along when it lay inside the run directory). When the run is already
 * finished, repairs the log, reports so and returns the run's summary instead of a plan.
 */
async function planResume(o: TrainOptions, r: Reporter): Promise<Plan | RunSummary> {
  const path = o.resume!;
  const ck = await loadCheckpoint(path);
  const st = ck.state;
  const h = ck.hyper;
  const storedEpochs = h.epochs as number;
  let epochs = storedEpochs;
  if (o.explicit.has("epochs")) {
    if (o.epochs < storedEpochs) {
      throw new RangeError(
        `Invalid --epochs: ${o.epochs} (with --resume it can only raise the run's total of ` +
          `${storedEpochs} epochs)`,
      );
    }
    epochs = o.epochs;
  }
  const outDir = dirname(path);
  const rel = relative(st.out, st.log);
  const logPath = !rel.startsWith("..") && !isAbsolute(rel) ? join(outDir, rel) : st.log;
  const hyper = { ...h, epochs };
  if (st.epoch >= epochs) {
    const records = await reconcileLog(logPath, st.epoch, st.lastRecord);
    const v = st.validation;
    r.line(
      `desire: the run of ${path} is already finished (${st.epoch}/${epochs} epochs, best test ` +
        `accuracy ${pct(st.best)}${
          v ? `; chosen on validation: epoch ${v.epoch}, test accuracy ${pct(v.testAccuracy)}` : ""
        }); nothing to do (raise --epochs to continue it)`,
    );
    return { outDir, logPath, epochs: records, alreadyFinished: true };
  }
  const dataset = h.dataset as DatasetName;
  const limit = h.limit as number | null;
  const held = (h.validation as number | undefined) ?? 0;
  const data: Dataset = await loadDataset(dataset, { dataDir: o.dataDir });
  const nSamples = Math.min(data.train.count, limit ?? data.train.count);
  const nTrain = Math.max(0, nSamples - held);
  if (nTrain !== st.trainSamples) {
    throw new RangeError(
      `Cannot resume from ${path}: the run trained on ${st.trainSamples} samples per epoch, ` +
        `the data set now gives ${nTrain}`,
    );
  }
  const { train, validation } = holdOut(data.train, nSamples, held);
  const records = await reconcileLog(logPath, st.epoch, st.lastRecord);
  await removeStaleTemporaries(outDir);
  let run: Record<string, unknown> = {};
  try {
    run = JSON.parse(await Deno.readTextFile(join(outDir, "run.json")));
  } catch {
    run = { config: ck.config, seed: ck.seed, train_samples: nTrain };
  }
  const resumed = Array.isArray(run.resumed) ? run.resumed : [];
  resumed.push({ at: new Date().toISOString(), epoch: st.epoch, position: st.position, epochs });
  run = { ...run, hyper, resumed };
  await writeFileAtomic(
    join(outDir, "run.json"),
    new TextEncoder().encode(JSON.stringify(run, null, 2) + "\n"),
  );
  return {
    outDir,
    logPath,
    config: ck.config,
    seed: ck.seed,
    dataset,
    hyper,
    epochs,
    lrLin: (h.lr as number[])[1],
    lrDecay: h.lr_decay as number,
    lrDecayStart: (h.lr_decay_start as number | undefined) ?? 0,
    shuffle: h.shuffle as boolean,
    checkpointEvery: o.explicit.has("checkpoint-every") ? o.checkpointEvery : st.checkpointEvery,
    data,
    train,
    nTrain,
    validation: validation.count > 0 ? validation : undefined,
    weights: ck.weights,
    start: st,
    records,
  };
}

/**
 * Runs the training schedule of `o`, reporting progress to `r`: a new run, or with `o.resume`
 * the continuation of a checkpoint's run, bit for bit.
 */
export async function runTraining(o: TrainOptions, r: Reporter): Promise<RunSummary> {
  const planned = o.resume ? await planResume(o, r) : await planFresh(o);
  if (!("config" in planned)) return planned;
  const p = planned;
  const { outDir, logPath, config, seed, data, train, nTrain, validation, epochs, start } = p;
  const net = await Network.create(config, seed, p.weights, { threads: threadCount(o.threads) });
  try {
    const px = train.rows * train.cols;
    const ckPath = join(outDir, CHECKPOINT_NAME);
    const out = resolve(outDir), log = resolve(logPath);
    const resuming = o.resume !== undefined;

    r.line(
      `desire: ${resuming ? "resuming" : "training"} ${
        config.sizes.join("-")
      } on ${p.dataset} (${nTrain} training, ${
        validation ? `${validation.count} validation, ` : ""
      }${data.test.count} test samples), ` +
        `${epochs} epochs, seed ${seed}, run directory ${outDir}` +
        (resuming
          ? ` at epoch ${start.epoch + 1}, sample ${start.position}/${nTrain} (${o.resume})`
          : ""),
    );

    const records = [...p.records];
    let lastRecord = start.lastRecord ?? records.at(-1);
    const startTime = performance.now();
    const elapsed = () => start.elapsedSeconds + (performance.now() - startTime) / 1000;
    let best = start.best;
    let chosen = start.validation;
    const interactive = Deno.stderr.isTerminal();
    const info = (e: number): ModelInfo => ({
      config,
      seed,
      epoch: e,
      dataset: p.dataset,
      hyper: p.hyper,
      trainAccuracy: lastRecord?.train_accuracy,
      testAccuracy: lastRecord?.test_accuracy,
      bestTestAccuracy: best >= 0 ? best : undefined,
    });
    const allWeights = () =>
      Array.from({ length: config.sizes.length - 1 }, (_, k) => net.weights(k + 1));
    const checkpoint = async (
      epoch: number,
      position: number,
      trainCorrect: number,
      epochSeconds: number,
      weights = allWeights(),
    ) => {
      const state: CheckpointState = {
        epoch,
        position,
        trainCorrect,
        trainSamples: nTrain,
        best,
        checkpointEvery: p.checkpointEvery,
        out,
        log,
        elapsedSeconds: elapsed(),
        epochSeconds,
        saturations: start.saturations + net.saturations,
        lastRecord,
        validation: chosen,
      };
      await writeFileAtomic(ckPath, encodeCheckpoint(info(epoch), weights, state));
    };

    // A fresh run is resumable from its first sample on (and its directory, which now holds a
    // run, need not be removed to start it again).
    if (!resuming) await checkpoint(0, 0, 0, 0);

    for (let e = start.epoch; e < epochs; e++) {
      const first = e === start.epoch;
      const k0 = first ? start.position : 0;
      const secondsBefore = first ? start.epochSeconds : 0;
      const t0 = performance.now();
      const lr = epochRate(p.lrLin, p.lrDecay, e, p.lrDecayStart);
      net.setLearningRate(lr);
      const order = p.shuffle
        ? shuffledOrder(seed, e, nTrain)
        : Uint32Array.from({ length: nTrain }, (_, i) => i);
      let correct = first ? start.trainCorrect : 0;
      let lastShown = t0;
      const every = p.checkpointEvery;
      for (let k = k0; k < nTrain; k++) {
        const s = order[k];
        const label = train.labels[s];
        if (net.trainSample(train.images.subarray(s * px, s * px + px), label, e, k) === label) {
          correct++;
        }
        if (every > 0 && (k + 1) % every === 0 && k + 1 < nTrain) {
          await checkpoint(e, k + 1, correct, secondsBefore + (performance.now() - t0) / 1000);
        }
        if (interactive && (k & 255) === 255) {
          const now = performance.now();
          if (now - lastShown > 250) {
            lastShown = now;
            const rate = (k + 1 - k0) / ((now - t0) / 1000);
            r.progress(
              `epoch ${e + 1}/${epochs}  ${k + 1}/${nTrain}  train ${pct(correct / (k + 1))}  ${
                rate.toFixed(0)
              } samples/s  eta ${((nTrain - k - 1) / rate).toFixed(0)} s`,
            );
          }
        }
      }
      const trainSeconds = secondsBefore + (performance.now() - t0) / 1000;
      if (interactive) {
        r.progress(
          `epoch ${e + 1}/${epochs}  evaluating ${
            validation ? `${validation.count} validation and ` : ""
          }${data.test.count} test samples`,
        );
      }
      const vev = validation ? evaluate(net, validation) : undefined;
      const ev = evaluate(net, data.test);
      const improved = ev.accuracy > best;
      if (improved) best = ev.accuracy;
      // The validation-chosen epoch moves only on a strictly higher accuracy: ties keep the earliest.
      const chosenNow = vev !== undefined &&
        (chosen === undefined || vev.accuracy > chosen.validationAccuracy);
      if (chosenNow) {
        chosen = { epoch: e + 1, validationAccuracy: vev.accuracy, testAccuracy: ev.accuracy };
      }
      const rec: EpochRecord = {
        epoch: e + 1,
        lr,
        train_accuracy: correct / nTrain,
        test_accuracy: ev.accuracy,
        train_samples: nTrain,
        test_samples: ev.samples,
        samples_per_second: nTrain / trainSeconds,
        test_samples_per_second: ev.samplesPerSecond,
        seconds: secondsBefore + (performance.now() - t0) / 1000,
        elapsed_seconds: elapsed(),
        best_test_accuracy: best,
        saturations: start.saturations + net.saturations,
      };
      const peak = peakRssBytes();
      if (peak !== undefined) rec.peak_rss_bytes = peak;
      if (vev && chosen) {
        rec.validation_accuracy = vev.accuracy;
        rec.validation_samples = vev.samples;
        rec.best_validation_accuracy = chosen.validationAccuracy;
        rec.validation_chosen_epoch = chosen.epoch;
        rec.validation_chosen_test_accuracy = chosen.testAccuracy;
      }
      lastRecord = rec;
      const weights = allWeights();
      // Order matters for a kill at any point: the models, then the end-of-epoch checkpoint
      // (holding this epoch's log line), then the log line. A resume from the checkpoint restores
      // a missing line; one from an earlier checkpoint redoes the epoch and rewrites the models
      // identically.
      await saveModel(`${outDir}/model-last.safetensors`, info(e + 1), weights);
      if (improved) await saveModel(`${outDir}/model-best.safetensors`, info(e + 1), weights);
      if (chosenNow) {
        await writeFileAtomic(
          join(outDir, VALIDATION_BEST_NAME),
          encodeModel(info(e + 1), weights, {
            chosen_by: "validation",
            validation_accuracy: String(vev!.accuracy),
            validation_samples: String(vev!.samples),
          }),
        );
      }
      await checkpoint(e + 1, 0, 0, 0, weights);
      records.push(rec);
      await Deno.writeTextFile(logPath, JSON.stringify(rec) + "\n", { append: true });
      if (interactive) r.progress("");
      r.line(
        `epoch ${e + 1}/${epochs}  lr ${lr.toExponential(3)}  train ${pct(rec.train_accuracy)}  ${
          vev && chosen ? `validation ${pct(vev.accuracy)}${chosenNow ? " (best)" : ""}  ` : ""
        }test ${pct(rec.test_accuracy)}${improved ? " (best)" : ""}  ${
          vev && chosen ? `chosen epoch ${chosen.epoch} (test ${pct(chosen.testAccuracy)})  ` : ""
        }${rec.samples_per_second.toFixed(0)} samples/s  ${rec.seconds.toFixed(1)} s  elapsed ${
          rec.elapsed_seconds.toFixed(0)
        } s`,
      );
    }
    const final = pct(records.at(-1)?.test_accuracy ?? 0);
    r.line(
      chosen
        ? `done: best test accuracy ${pct(best)}, final ${final}; chosen on validation: epoch ` +
          `${chosen.epoch} (validation ${pct(chosen.validationAccuracy)}), test accuracy ` +
          `${pct(chosen.testAccuracy)}; models in ${outDir}/model-best.safetensors (best test ` +
          `accuracy), ${VALIDATION_BEST_NAME} (chosen on validation) and ` +
          `model-last.safetensors, checkpoint ${ckPath}, log in ${logPath}`
        : `done: best test accuracy ${pct(best)}, final ${final}; models in ` +
          `${outDir}/model-best.safetensors and model-last.safetensors, checkpoint ${ckPath}, ` +
          `log in ${logPath}`,
    );
    return { outDir, logPath, epochs: records };
  } finally {
    await net.close();
  }
}
