/**
 * The training schedule: epochs, shuffling, learning-rate decay, evaluation, checkpoints, log.
 *
 * @module
 */
import { Network } from "./network.ts";
import type { NetConfig } from "./params.ts";
import { epochRate } from "./params.ts";
import { shuffledOrder } from "./rng.ts";
import { type Dataset, loadDataset, type Split } from "./datasets.ts";
import { checkOutDir, type TrainOptions } from "./args.ts";
import { loadModel, type Model, saveModel } from "./model_file.ts";

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
}

/** Where the schedule reports to. */
export interface Reporter {
  /** A transient progress line (overwritten by the next). */
  progress(text: string): void;
  /** A permanent line. */
  line(text: string): void;
}

/** Result of evaluating a split. */
export interface EvalResult {
  /** Fraction correct (a tie for the top count is wrong). */
  accuracy: number;
  /** Samples correct. */
  correct: number;
  /** Samples evaluated. */
  samples: number;
  /** Wall time. */
  seconds: number;
  /** Samples per second. */
  samplesPerSecond: number;
}

/**
 * Evaluates `net` on the first `limit` samples of `split` (all by default), without dropout.
 *
 * @param net The network.
 * @param split Images and labels.
 * @param limit Evaluate only the first `limit` samples.
 * @returns Accuracy (a tie for the top count counts as wrong), counts and speed.
 *
 * @example Accuracy on a tiny synthetic split
 * ```ts
 * import assert from "node:assert/strict";
 * import { Network } from "./network.ts";
 * import { evaluate } from "./train.ts";
 *
 * const net = await Network.create({
 *   sizes: [784, 32, 10], tsteps: 20, threshold: 1, decay: 2, margin: 4,
 *   desireHid: 0.05, desireOut: 0.3, dropIn: 0, dropHid: 0.3,
 * }, 0);
 * const split = {
 *   images: new Uint8Array(2 * 784).fill(128), labels: new Uint8Array([1, 2]),
 *   count: 2, rows: 28 as const, cols: 28 as const,
 * };
 * const r = evaluate(net, split);
 * assert.equal(r.samples, 2);
 * assert.ok(r.accuracy >= 0 && r.accuracy <= 1);
 * ```
 */
export function evaluate(net: Network, split: Split, limit?: number): EvalResult {
  const n = Math.min(split.count, limit ?? split.count);
  const px = split.rows * split.cols;
  const t0 = performance.now();
  let correct = 0;
  for (let s = 0; s < n; s++) {
    if (net.infer(split.images.subarray(s * px, s * px + px)) === split.labels[s]) correct++;
  }
  const seconds = (performance.now() - t0) / 1000;
  return { accuracy: correct / n, correct, samples: n, seconds, samplesPerSecond: n / seconds };
}

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

/** Training flags as stored in the model and run.json. */
function hyperOf(o: TrainOptions, dataset: string): Record<string, unknown> {
  return {
    dataset,
    epochs: o.epochs,
    lr: [o.lrConv, o.lrLin],
    lr_decay: o.lrDecay,
    desire_thres: [o.desireConv, o.desireLin, o.desireOut],
    shuffle: o.shuffle,
    limit: o.limit ?? null,
  };
}

/** Summary of a finished run. */
export interface RunSummary {
  /** Run directory. */
  outDir: string;
  /** Log file. */
  logPath: string;
  /** Per-epoch records. */
  epochs: EpochRecord[];
}

/** Evaluates a loaded model (`train --model-path FILE --eval`). */
export async function evalOnly(o: TrainOptions, r: Reporter): Promise<EvalResult> {
  const model = await loadModel(o.modelPath!);
  const config = mergeModelConfig(model, o, o.modelPath!);
  const dataset = o.explicit.has("dataset") ? o.dataset : model.dataset as TrainOptions["dataset"];
  const data = await loadDataset(dataset, { dataDir: o.dataDir });
  const net = await Network.create(config, model.seed, model.weights);
  const res = evaluate(net, data.test);
  r.line(
    `${o.modelPath}: test accuracy ${
      pct(res.accuracy)
    } (${res.correct}/${res.samples}) on ${dataset}, ` +
      `${res.samplesPerSecond.toFixed(0)} samples/s`,
  );
  return res;
}

/** Runs the training schedule of `o`, reporting progress to `r`. */
export async function runTraining(o: TrainOptions, r: Reporter): Promise<RunSummary> {
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
  let initial: Int32Array[] | undefined;
  if (o.modelPath) {
    const model = await loadModel(o.modelPath);
    config = mergeModelConfig(model, o, o.modelPath);
    if (!o.explicit.has("random-seed")) seed = model.seed;
    initial = model.weights;
  }
  const data: Dataset = await loadDataset(o.dataset, { dataDir: o.dataDir });
  const net = await Network.create(config, seed, initial);
  const nTrain = Math.min(data.train.count, o.limit ?? data.train.count);
  const px = data.train.rows * data.train.cols;

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
  r.line(
    `desire: training ${
      config.sizes.join("-")
    } on ${o.dataset} (${nTrain} training, ${data.test.count} test samples), ` +
      `${o.epochs} epochs, seed ${seed}, run directory ${outDir}`,
  );

  const records: EpochRecord[] = [];
  const start = performance.now();
  let best = -1;
  const interactive = Deno.stderr.isTerminal();
  for (let e = 0; e < o.epochs; e++) {
    const t0 = performance.now();
    const lr = epochRate(o.lrLin, o.lrDecay, e);
    net.setLearningRate(lr);
    const order = o.shuffle
      ? shuffledOrder(seed, e, nTrain)
      : Uint32Array.from({ length: nTrain }, (_, i) => i);
    let correct = 0;
    let lastShown = t0;
    for (let k = 0; k < nTrain; k++) {
      const s = order[k];
      const label = data.train.labels[s];
      if (net.trainSample(data.train.images.subarray(s * px, s * px + px), label, e, k) === label) {
        correct++;
      }
      if (interactive && (k & 255) === 255) {
        const now = performance.now();
        if (now - lastShown > 250) {
          lastShown = now;
          const rate = (k + 1) / ((now - t0) / 1000);
          r.progress(
            `epoch ${e + 1}/${o.epochs}  ${k + 1}/${nTrain}  train ${pct(correct / (k + 1))}  ${
              rate.toFixed(0)
            } samples/s  eta ${((nTrain - k - 1) / rate).toFixed(0)} s`,
          );
        }
      }
    }
    const trainSeconds = (performance.now() - t0) / 1000;
    if (interactive) {
      r.progress(`epoch ${e + 1}/${o.epochs}  evaluating ${data.test.count} test samples`);
    }
    const ev = evaluate(net, data.test);
    const improved = ev.accuracy > best;
    if (improved) best = ev.accuracy;
    const weights = Array.from({ length: config.sizes.length - 1 }, (_, k) => net.weights(k + 1));
    const info = {
      config,
      seed,
      epoch: e + 1,
      dataset: o.dataset,
      hyper,
      trainAccuracy: correct / nTrain,
      testAccuracy: ev.accuracy,
      bestTestAccuracy: best,
    };
    await saveModel(`${outDir}/model-last.safetensors`, info, weights);
    if (improved) await saveModel(`${outDir}/model-best.safetensors`, info, weights);
    const rec: EpochRecord = {
      epoch: e + 1,
      lr,
      train_accuracy: correct / nTrain,
      test_accuracy: ev.accuracy,
      train_samples: nTrain,
      test_samples: ev.samples,
      samples_per_second: nTrain / trainSeconds,
      test_samples_per_second: ev.samplesPerSecond,
      seconds: (performance.now() - t0) / 1000,
      elapsed_seconds: (performance.now() - start) / 1000,
      best_test_accuracy: best,
      saturations: net.saturations,
    };
    records.push(rec);
    await Deno.writeTextFile(logPath, JSON.stringify(rec) + "\n", { append: true });
    if (interactive) r.progress("");
    r.line(
      `epoch ${e + 1}/${o.epochs}  lr ${lr.toExponential(3)}  train ${
        pct(rec.train_accuracy)
      }  test ${pct(rec.test_accuracy)}${improved ? " (best)" : ""}  ${
        rec.samples_per_second.toFixed(0)
      } samples/s  ${rec.seconds.toFixed(1)} s  elapsed ${rec.elapsed_seconds.toFixed(0)} s`,
    );
  }
  r.line(
    `done: best test accuracy ${pct(best)}, final ${pct(records.at(-1)?.test_accuracy ?? 0)}; ` +
      `models in ${outDir}/model-best.safetensors and model-last.safetensors, log in ${logPath}`,
  );
  return { outDir, logPath, epochs: records };
}
