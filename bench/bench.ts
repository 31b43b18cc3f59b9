/**
 * `deno task bench`: validate the kernels, then time them.
 *
 * 1. Correctness gate: a few training steps (and evaluation steps) of small random networks and
 *    of both preset networks, through desire.wasm and the scalar reference (src/reference.ts),
 *    compared bit for bit on keep masks, spike words, counts, desires and weights, on one thread
 *    and on every other thread count of `--threads` (desire-mt.wasm, Web Workers); the
 *    multi-threaded networks must also end with the same weights as the 1-thread one. Any
 *    difference aborts the run (exit 1) before anything is timed.
 * 2. Training throughput for each thread count: samples/s from Kaiming (seed 0) weights on the
 *    first `--samples` of the shuffled training set (epoch 0), `--runs` fresh networks, median.
 *    The thread counts are interleaved run by run (order reversed every other run), so that load
 *    drift hits them alike; the ratios are against 1 thread.
 * 3. Inference throughput over all 10,000 test images on the network of the last run, for each
 *    thread count (interleaved likewise); the networks must agree on every prediction. Then the
 *    same training and inference through desire.wasm in Node.js (tests/node_host.mjs, if a
 *    Node.js is on PATH), which must end with the same weights and predictions.
 * 4. MNIST only, 1 thread: per-kernel time and rates through the raw exports (effective operation
 *    counts), and the bound they are held against: a hand-assembled i32x4 column-sum loop
 *    (bench/limit.ts) and forwardLayer on synthetic layers whose every input fires.
 * 5. Epoch 1 (MNIST by default, `--epoch`): the whole epoch as `deno task train --epochs 1` runs
 *    it, on every thread count at once (one network each, taking turns every 2,000 samples), then
 *    the test set; the networks must end with the same weights. Inference on the epoch-1 model.
 *    Memory: the peak RSS of `deno task train` in a child process (5,000 samples), the sampled
 *    high-water mark of this process and the wasm memory of each network. Then the targets, each
 *    judged as defined (training from initial weights on ≥ 5,000 shuffled samples: the first
 *    5,000 and the whole epoch 1; inference on a model trained one epoch).
 * 6. The float32 TypeScript model (src/float_model.ts) on the same samples and weights (compared
 *    with 1 thread).
 *
 * ```sh
 * deno task bench                       # full run, tables on stdout
 * deno task bench --samples 1000 --runs 1 --json
 * deno task bench --threads 1,2,4       # other thread counts (1 is always measured)
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";
import { createHash } from "node:crypto";
import { type DatasetName, loadDataset, type Split } from "../src/datasets.ts";
import { kaimingMaster, masterToFloat, Network } from "../src/network.ts";
import { deriveParams, fixedRate, type IntParams, type NetConfig } from "../src/params.ts";
import { popcount, ReferenceNet } from "../src/reference.ts";
import { drawHi, sampleKey, shuffledOrder } from "../src/rng.ts";
import { matrixRows } from "../src/wasm.ts";
import { FloatNet } from "../src/float_model.ts";
import { parseTrainArgs } from "../src/args.ts";
import { configFromOptions } from "../src/train.ts";
import { columnSum, type LimitResult, measureColumnSum } from "./limit.ts";
import { type BoundsResult, formatBounds, runBounds } from "./bounds.ts";
import { encodeModel } from "../src/model_file.ts";
import { peakRssBytes } from "../src/memory.ts";
import { median } from "../src/stats.ts";
import { findNode } from "../tests/tools.ts";

// ------------------------------------------------------------------------------------ options

const HELP = `Usage: deno task bench [OPTIONS]

Validates desire.wasm (and desire-mt.wasm on each thread count) against the scalar
reference, then times training and inference on MNIST 784-1600-800-10 and Fashion-MNIST
784-1000-100-10 for each thread count, interleaved.

Options:
  --threads LIST      thread counts (comma list; 1 is always added)   [1,CORES]
  --samples N         training samples per timing run                 [5000]
  --runs R            timing runs, each on a fresh network (median)   [5]
  --infer-runs R      passes over the 10,000 test images (median)     [3]
  --float-samples N   training samples of the float32 model           [500]
  --float-test N      test images of the float32 model                [1000]
  --kernel-samples N  samples of the per-kernel timing (MNIST)        [1000]
  --dataset NAMES     mnist, fashion-mnist or both (comma list)       [both]
  --epoch NAMES       data sets that also train one whole epoch on every
                      thread count (taking turns every 2,000 samples),
                      evaluate, then time inference on that model
                      (comma list, or none)                           [mnist]
  --data-dir DIR      folder of the data sets (as for train)
  --json              print one line of JSON instead of the tables
  -h, --help          this text`;

interface Options {
  /** Thread counts, ascending, starting with 1. */
  threads: number[];
  samples: number;
  runs: number;
  inferRuns: number;
  floatSamples: number;
  floatTest: number;
  kernelSamples: number;
  datasets: DatasetName[];
  /** Data sets (of `datasets`) that get the epoch-1 row. */
  epoch: DatasetName[];
  dataDir?: string;
  json: boolean;
}

function parseOptions(argv: string[]): Options | undefined {
  const { values } = parseArgs({
    args: argv,
    options: {
      threads: { type: "string" },
      samples: { type: "string" },
      runs: { type: "string" },
      "infer-runs": { type: "string" },
      "float-samples": { type: "string" },
      "float-test": { type: "string" },
      "kernel-samples": { type: "string" },
      dataset: { type: "string" },
      epoch: { type: "string" },
      "data-dir": { type: "string" },
      json: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) return undefined;
  const int = (name: string, v: string | undefined, def: number, max: number): number => {
    if (v === undefined) return def;
    const n = Number(v);
    if (!/^\d+$/.test(v) || n < 1 || n > max) {
      throw new RangeError(`Invalid --${name}: ${v} (must be an integer in 1..${max})`);
    }
    return n;
  };
  const names = (flag: string, v: string) => {
    const list = v.split(",").map((s) => s.trim());
    for (const d of list) {
      if (d !== "mnist" && d !== "fashion-mnist") {
        throw new RangeError(`Invalid --${flag}: ${d} (expected mnist or fashion-mnist)`);
      }
    }
    return [...new Set(list)] as DatasetName[];
  };
  const datasets = names("dataset", values.dataset ?? "mnist,fashion-mnist");
  const epoch = values.epoch === "none" ? [] : names("epoch", values.epoch ?? "mnist");
  const cores = navigator.hardwareConcurrency ?? 1;
  const threads = values.threads === undefined
    ? [cores]
    : values.threads.split(",").map((s) => int("threads", s.trim(), 1, 64));
  return {
    threads: [...new Set([1, ...threads])].sort((a, b) => a - b),
    samples: int("samples", values.samples, 5000, 60000),
    runs: int("runs", values.runs, 5, 100),
    inferRuns: int("infer-runs", values["infer-runs"], 3, 100),
    floatSamples: int("float-samples", values["float-samples"], 500, 60000),
    floatTest: int("float-test", values["float-test"], 1000, 10000),
    kernelSamples: int("kernel-samples", values["kernel-samples"], 1000, 60000),
    datasets,
    epoch: epoch.filter((d) => datasets.includes(d)),
    dataDir: values["data-dir"],
    json: values.json ?? false,
  };
}

// --------------------------------------------------------------------------------- utilities

/** What `deno task train` uses by default: learning rate of the linear layers and seed. */
const TRAIN_DEFAULTS = parseTrainArgs([]);
const LR = TRAIN_DEFAULTS.lrLin;
const SEED = TRAIN_DEFAULTS.randomSeed;

/** The preset network of a data set with the default flags (`deno task train --dataset NAME`). */
function presetConfig(name: DatasetName): NetConfig {
  return configFromOptions(parseTrainArgs(["--dataset", name]));
}

const now = () => performance.now();

let peakRss = 0;
/** Samples the resident set size into the high-water mark. */
function sampleRss(): void {
  const r = Deno.memoryUsage().rss;
  if (r > peakRss) peakRss = r;
}

/** Progress lines go to stderr, so that stdout holds only the report. */
function progress(text: string): void {
  console.error(text);
}

function image(split: Split, s: number): Uint8Array {
  const px = split.rows * split.cols;
  return split.images.subarray(s * px, s * px + px);
}

const MiB = 1024 * 1024;
const fmt = (x: number, digits = 0) =>
  x.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
const giga = (x: number) => (x / 1e9).toFixed(2);

// ---------------------------------------------------------------------------------- machine

interface Machine {
  cpu: string;
  cores: number;
  caches: string;
  simd: string;
  deno: string;
  v8: string;
  typescript: string;
  os: string;
  date: string;
  load_average_start: number[];
  load_average_end?: number[];
}

function readText(path: string): string | undefined {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return undefined;
  }
}

/** CPU flags worth naming next to a SIMD benchmark. */
const SIMD_FLAGS = ["sse4_2", "avx2", "avx512f", "avx512bw", "avx512vl"];

function machineInfo(): Machine {
  const cpuinfo = readText("/proc/cpuinfo") ?? "";
  const cpu = cpuinfo.match(/^model name\s*:\s*(.+)$/m)?.[1]?.trim() ?? "unknown";
  const flags = cpuinfo.match(/^flags\s*:\s*(.+)$/m)?.[1]?.split(/\s+/) ?? [];
  const simd = SIMD_FLAGS.filter((f) => flags.includes(f)).join(" ");
  const caches: string[] = [];
  for (let k = 0; k < 8; k++) {
    const dir = `/sys/devices/system/cpu/cpu0/cache/index${k}`;
    const level = readText(`${dir}/level`)?.trim();
    const type = readText(`${dir}/type`)?.trim();
    const size = readText(`${dir}/size`)?.trim();
    if (!level || !type || !size) continue;
    const t = type === "Data" ? "d" : type === "Instruction" ? "i" : "";
    caches.push(`L${level}${t} ${size}`);
  }
  let load: number[] = [];
  try {
    load = Deno.loadavg().map((x) => Number(x.toFixed(2)));
  } catch { /* not available */ }
  return {
    cpu,
    cores: navigator.hardwareConcurrency,
    caches: caches.join(", "),
    simd,
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    typescript: Deno.version.typescript,
    os: `${Deno.build.os} ${Deno.build.arch}`,
    date: new Date().toISOString(),
    load_average_start: load,
  };
}

// ------------------------------------------------------------------------- correctness gate

interface GateCase {
  name: string;
  config: NetConfig;
  /** Training steps, then evaluation steps. */
  steps: number;
  evalSteps: number;
  /** Scale of the Kaiming weights (larger weights make the deeper layers fire more). */
  gain: number;
  lr: number;
  seed: number;
  /** Images and labels: a split and the sample indices to use. */
  split: Split;
  order: ArrayLike<number>;
  /** Require every layer to fire and every layer's weights to change (small nets). */
  requireLive: boolean;
}

class GateError extends Error {}

function compare(what: string, wasm: ArrayLike<number>, ref: ArrayLike<number>, ctx: string) {
  if (wasm.length !== ref.length) {
    throw new GateError(
      `${what}: ${wasm.length} values in wasm, ${ref.length} in the reference (${ctx})`,
    );
  }
  for (let k = 0; k < ref.length; k++) {
    if (wasm[k] !== ref[k]) {
      throw new GateError(
        `${what} differs first at index ${k}: wasm ${wasm[k]}, reference ${ref[k]} (${ctx})`,
      );
    }
  }
}

/**
 * Runs one gate case on each thread count of `threads` (the first is 1) against the scalar
 * reference, step by step; returns a one-line summary or throws GateError.
 */
async function gateCase(c: GateCase, threads: number[]): Promise<string> {
  const p = deriveParams(c.config);
  const init = kaimingMaster(c.config.sizes, c.seed).map((w) =>
    w.map((x) => Math.max(-(2 ** 28), Math.min(2 ** 28, Math.round(x * c.gain))))
  );
  const nets: Network[] = [];
  try {
    for (const t of threads) {
      const net = await Network.create(c.config, c.seed, init, { threads: t });
      nets.push(net);
      if (net.threads !== t) {
        throw new GateError(`${c.name}: asked for ${t} threads, the network has ${net.threads}`);
      }
      net.setLearningRate(c.lr);
    }
    return gateSteps(c, p, init, nets);
  } finally {
    for (const net of nets) await net.close();
  }
}

function gateSteps(c: GateCase, p: IntParams, init: Int32Array[], nets: Network[]): string {
  const { L, sizes, strides } = p;
  const ref = new ReferenceNet(p, c.seed);
  for (let l = 1; l <= L; l++) {
    const nIn = sizes[l - 1], P = strides[l];
    for (let j = 0; j < sizes[l]; j++) {
      for (let i = 0; i < nIn; i++) ref.master[l][i * P + j] = init[l - 1][j * nIn + i];
    }
    ref.syncForward(l);
  }
  ref.rate = fixedRate(c.lr);
  const views = (net: Network) => {
    const ex = net.exports;
    const i32 = (ptr: number, n: number) => new Int32Array(ex.memory.buffer, ptr, n);
    const u32 = (ptr: number, n: number) => new Uint32Array(ex.memory.buffer, ptr, n);
    return { ex, i32, u32 };
  };
  const weightsSame = (net: Network, ctx: string) => {
    const { ex, i32 } = views(net);
    for (let l = 1; l <= L; l++) {
      const n = sizes[l - 1] * strides[l];
      const rows = (ptr: number) => matrixRows(p, net.threads, l, i32(ptr, n));
      compare(`master weights of layer ${l}`, rows(ex.weightsPtr(l)), ref.master[l], ctx);
      compare(`forward weights of layer ${l}`, rows(ex.forwardWeightsPtr(l)), ref.fwd[l], ctx);
    }
  };
  const threadsOf = (net: Network) => `${net.threads} thread${net.threads > 1 ? "s" : ""}`;
  for (const net of nets) weightsSame(net, `${c.name}, ${threadsOf(net)}, initial weights`);
  const fired = new Array<number>(L + 1).fill(0);
  let desired = 0;
  for (let s = 0; s < c.steps + c.evalSteps; s++) {
    const train = s < c.steps;
    const idx = c.order[s];
    const img = image(c.split, idx);
    const label = c.split.labels[idx];
    const pr = train ? ref.trainSample(img, label, 0, s) : ref.inferSample(img);
    for (let l = 0; l <= L; l++) {
      for (let j = 0; j < sizes[l]; j++) fired[l] += ref.words[l][j] !== 0 ? 1 : 0;
    }
    if (train) {
      for (let l = 1; l <= L; l++) {
        for (let j = 0; j < sizes[l]; j++) desired += ref.desire[l][j] & 1;
      }
    }
    for (const net of nets) {
      const { ex, i32, u32 } = views(net);
      const ctx = `${c.name}, ${threadsOf(net)}, ${train ? "training" : "evaluation"} step ${s}`;
      const pw = train ? net.trainSample(img, label, 0, s) : net.infer(img);
      if (pw !== pr) throw new GateError(`prediction: wasm ${pw}, reference ${pr} (${ctx})`);
      for (let l = 0; l <= L; l++) {
        compare(`keep mask of layer ${l}`, i32(ex.keepPtr(l), strides[l]), ref.keep[l], ctx);
        compare(`spike words of layer ${l}`, u32(ex.wordsPtr(l), strides[l]), ref.words[l], ctx);
      }
      compare("output counts", net.counts, ref.counts, ctx);
      if (!train) continue;
      for (let l = 1; l <= L; l++) {
        compare(`desire of layer ${l}`, i32(ex.desirePtr(l), strides[l]), ref.desire[l], ctx);
      }
      weightsSame(net, ctx);
    }
  }
  for (const net of nets) {
    if (net.saturations !== 0 || ref.saturations !== 0) {
      throw new GateError(
        `saturation events: wasm ${net.saturations}, reference ${ref.saturations} ` +
          `(${c.name}, ${threadsOf(net)})`,
      );
    }
  }
  // The multi-threaded networks end with the 1-thread network's weights (out × in copies).
  const one = nets[0];
  for (const net of nets.slice(1)) {
    for (let l = 1; l <= L; l++) {
      compare(
        `final weights of layer ${l}`,
        net.weights(l),
        one.weights(l),
        `${c.name}, ${threadsOf(net)} vs 1 thread`,
      );
    }
  }
  const firedPct: string[] = [];
  const changedPct: string[] = [];
  for (let l = 1; l <= L; l++) {
    const rate = fired[l] / (sizes[l] * (c.steps + c.evalSteps));
    const start = init[l - 1], now = one.weights(l);
    let changed = 0;
    for (let k = 0; k < start.length; k++) changed += start[k] !== now[k] ? 1 : 0;
    const frac = changed / start.length;
    firedPct.push((100 * rate).toFixed(0));
    changedPct.push((100 * frac).toFixed(1));
    if (c.requireLive && (rate < 0.05 || frac < 0.005)) {
      throw new GateError(
        `${c.name} is not a meaningful check: layer ${l} fired in ${(100 * rate).toFixed(1)} % ` +
          `of its neurons, ${(100 * frac).toFixed(2)} % of its weights changed`,
      );
    }
  }
  if (c.requireLive && desired === 0) throw new GateError(`${c.name}: no neuron was desired`);
  const counts = nets.map((n) => n.threads);
  const on = counts.length > 1
    ? `${counts.slice(0, -1).join(", ")} and ${counts.at(-1)} threads`
    : "1 thread";
  return `${c.name.padEnd(38)} ${c.steps} train + ${c.evalSteps} eval steps: identical on ${on} ` +
    `(neurons firing ${firedPct.join("/")} %, weights changed ${changedPct.join("/")} %)`;
}

function gateCases(data: Map<DatasetName, { split: Split; order: Uint32Array }>): GateCase[] {
  const first = data.values().next().value!;
  const small = (sizes: number[], dropIn: number, dropHid: number, seed: number, gain: number) => ({
    name: `${sizes.join("-")} drop ${dropIn}/${dropHid} lr 1e-3`,
    config: { ...presetConfig("mnist"), sizes, dropIn, dropHid },
    steps: 4,
    evalSteps: 2,
    gain,
    lr: 1e-3,
    seed,
    split: first.split,
    order: first.order,
    requireLive: true,
  });
  const cases: GateCase[] = [
    small([784, 37, 13, 10], 0, 0.3, 1, 1.5),
    small([784, 53, 22, 10], 0.05, 0.4, 2, 1.5),
    // Several 32-neuron chunks of the forward kernel and a 4-lane tail (301 → 304 = 9·32 + 16).
    small([784, 301, 10], 0, 0.3, 3, 1.5),
  ];
  for (const [name, d] of data) {
    const config = presetConfig(name);
    cases.push({
      name: `${name} ${config.sizes.join("-")} lr 1e-5`,
      config,
      steps: 2,
      evalSteps: 1,
      gain: 1,
      lr: LR,
      seed: SEED,
      split: d.split,
      order: d.order,
      requireLive: false,
    });
  }
  return cases;
}

// --------------------------------------------------------------------------- training runs

interface TrainResult {
  rates: number[];
  /** Per run: seconds to reach `mark` samples. */
  markSeconds: number[];
  trainAccuracy: number;
  /** The network of the last run (closed at the end of the data set). */
  net: Network;
}

interface InferResult {
  rates: number[];
  accuracy: number;
  /** Median samples/s over the first `floatTest` images. */
  firstRate: number;
  predictions: Int8Array;
}

/** Training and inference on one thread count. */
interface ThreadRun {
  threads: number;
  train: TrainResult;
  infer: InferResult;
  wasmMemoryBytes: number;
  memoryEndBytes: number;
  saturations: number;
  /** Same final weights and predictions as 1 thread (true for 1 thread itself). */
  sameAsOneThread: boolean;
}

const threadWord = (t: number) => `${t} thread${t > 1 ? "s" : ""}`;

/** The thread counts in run r's order: ascending in even runs, descending in odd ones. */
const interleaved = (threads: number[], r: number) =>
  r % 2 === 0 ? threads : [...threads].reverse();

/** One timing run: a fresh Kaiming network trained on the first `o.samples` of `order`. */
async function trainOnce(
  config: NetConfig,
  train: Split,
  order: Uint32Array,
  o: Options,
  threads: number,
  mark: number,
): Promise<{ net: Network; rate: number; markSeconds: number; accuracy: number }> {
  const net = await Network.create(config, SEED, undefined, { threads });
  net.setLearningRate(LR);
  sampleRss();
  let correct = 0;
  let markSeconds = NaN;
  const t0 = now();
  for (let k = 0; k < o.samples; k++) {
    const s = order[k];
    if (net.trainSample(image(train, s), train.labels[s], 0, k) === train.labels[s]) correct++;
    if ((k & 255) === 255) sampleRss();
    if (k + 1 === mark) markSeconds = (now() - t0) / 1000;
  }
  const seconds = (now() - t0) / 1000;
  sampleRss();
  return { net, rate: o.samples / seconds, markSeconds, accuracy: correct / o.samples };
}

/** One pass over the test set; the predictions go to `predictions`. */
function inferOnce(
  net: Network,
  test: Split,
  nFirst: number,
  predictions: Int8Array,
): { rate: number; firstRate: number; accuracy: number } {
  let correct = 0;
  let firstRate = NaN;
  const t0 = now();
  for (let s = 0; s < test.count; s++) {
    const p = net.infer(image(test, s));
    predictions[s] = p;
    if (p === test.labels[s]) correct++;
    if (s + 1 === nFirst) firstRate = nFirst / ((now() - t0) / 1000);
    if ((s & 255) === 255) sampleRss();
  }
  const rate = test.count / ((now() - t0) / 1000);
  return { rate, firstRate, accuracy: correct / test.count };
}

/** Where network b's weights first differ from a's ("layer l, weight i: b vs a"), or "". */
function weightMismatch(a: Network, b: Network): string {
  for (let l = 1; l <= a.params.L; l++) {
    const x = a.weights(l), y = b.weights(l);
    if (x.length !== y.length) return `layer ${l}: ${y.length} weights, not ${x.length}`;
    const i = x.findIndex((v, k) => v !== y[k]);
    if (i >= 0) return `layer ${l}, weight ${i}: ${y[i]}, not ${x[i]}`;
  }
  return "";
}

function sameWeights(a: Network, b: Network): boolean {
  return weightMismatch(a, b) === "";
}

/**
 * Training runs and inference passes for every thread count of `o.threads`, interleaved: run r
 * trains a fresh network on each thread count in turn (ascending, descending every other run),
 * then the last runs' networks make the inference passes in the same alternating order.
 */
async function threadRuns(
  config: NetConfig,
  train: Split,
  test: Split,
  order: Uint32Array,
  o: Options,
  mark: number,
  label: string,
): Promise<ThreadRun[]> {
  const acc = new Map(o.threads.map((t) => [t, {
    rates: [] as number[],
    markSeconds: [] as number[],
    trainAccuracy: 0,
    net: undefined as Network | undefined,
    inferRates: [] as number[],
    firstRates: [] as number[],
    accuracy: 0,
    predictions: new Int8Array(test.count),
  }]));
  for (let r = 0; r < o.runs; r++) {
    for (const t of interleaved(o.threads, r)) {
      const a = acc.get(t)!;
      const run = await trainOnce(config, train, order, o, t, mark);
      a.rates.push(run.rate);
      a.markSeconds.push(run.markSeconds);
      a.trainAccuracy = run.accuracy;
      const previous = a.net;
      a.net = run.net;
      await previous?.close();
      progress(
        `  ${label} training run ${r + 1}/${o.runs}, ${threadWord(t)}: ` +
          `${fmt(run.rate)} samples/s`,
      );
    }
  }
  const nFirst = Math.min(o.floatTest, test.count);
  for (let r = 0; r < o.inferRuns; r++) {
    for (const t of interleaved(o.threads, r)) {
      const a = acc.get(t)!;
      const pass = inferOnce(a.net!, test, nFirst, a.predictions);
      a.inferRates.push(pass.rate);
      a.firstRates.push(pass.firstRate);
      a.accuracy = pass.accuracy;
      progress(
        `  ${label} inference pass ${r + 1}/${o.inferRuns}, ${threadWord(t)}: ` +
          `${fmt(pass.rate)} samples/s`,
      );
    }
  }
  const one = acc.get(1)!;
  return o.threads.map((t) => {
    const a = acc.get(t)!;
    const net = a.net!;
    return {
      threads: t,
      train: {
        rates: a.rates,
        markSeconds: a.markSeconds,
        trainAccuracy: a.trainAccuracy,
        net,
      },
      infer: {
        rates: a.inferRates,
        accuracy: a.accuracy,
        firstRate: median(a.firstRates),
        predictions: a.predictions,
      },
      wasmMemoryBytes: net.exports.memory.buffer.byteLength,
      memoryEndBytes: net.exports.memoryEnd(),
      saturations: net.saturations,
      sameAsOneThread: t === 1 ||
        (sameWeights(net, one.net!) && a.predictions.every((p, i) => p === one.predictions[i])),
    };
  });
}

// ---------------------------------------------------------------------------- Node.js host
/** The same training and inference through desire.wasm in Node.js (tests/node_host.mjs). */
interface NodeResult {
  /** `node vX.Y.Z`, or why the run was skipped. */
  runtime: string;
  trainRate?: number;
  inferRate?: number;
  sameWeights?: boolean;
  samePredictions?: boolean;
}

const NODE_HOST = new URL("../tests/node_host.mjs", import.meta.url).pathname;
const WASM_PATH = new URL("../desire.wasm", import.meta.url).pathname;

/**
 * Trains desire.wasm in Node.js on the same samples as the 1-thread runs (from the same Kaiming
 * weights, same (epoch, index) draws) and infers the test set, through tests/node_host.mjs (a
 * host written from docs/ABI.md alone). Node.js has WebAssembly trap handlers: memory accesses
 * carry no explicit bounds checks, which Deno emits (it does not enable the trap handler). The
 * weights and predictions must equal the Deno network's.
 */
async function nodeRun(
  config: NetConfig,
  train: Split,
  test: Split,
  order: Uint32Array,
  o: Options,
  net: Network,
  predictions: Int8Array,
): Promise<NodeResult> {
  const node = await findNode();
  if (!node) return { runtime: "Node.js not found on PATH: skipped" };
  const dir = await Deno.makeTempDir({ prefix: "desire_bench_node_" });
  try {
    const nIn = config.sizes[0], n = o.samples;
    const images = new Uint8Array((n + test.count) * nIn);
    for (let k = 0; k < n; k++) images.set(image(train, order[k]), k * nIn);
    images.set(test.images.subarray(0, test.count * nIn), n * nIn);
    await Deno.writeFile(`${dir}/images.u8`, images);
    const info = { config, seed: SEED, epoch: 0, dataset: "bench", hyper: {} };
    await Deno.writeFile(
      `${dir}/model.safetensors`,
      encodeModel(info, kaimingMaster(config.sizes, SEED)),
    );
    const job = {
      wasm: WASM_PATH,
      model: `${dir}/model.safetensors`,
      images: `${dir}/images.u8`,
      lr: LR,
      train: Array.from({ length: n }, (_, k) => [k, train.labels[order[k]], 0, k]),
      infer: Array.from({ length: test.count }, (_, s) => n + s),
      noCounts: true,
      digest: true,
    };
    await Deno.writeTextFile(`${dir}/job.json`, JSON.stringify(job));
    const r = await new Deno.Command(node, {
      args: [NODE_HOST, `${dir}/job.json`],
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (r.code !== 0) {
      return { runtime: `node_host.mjs failed: ${new TextDecoder().decode(r.stderr).trim()}` };
    }
    const out = JSON.parse(new TextDecoder().decode(r.stdout));
    const hash = createHash("sha256");
    for (let l = 1; l <= net.params.L; l++) {
      const w = net.weights(l);
      hash.update(new Uint8Array(w.buffer, w.byteOffset, w.byteLength));
    }
    const sameWeights = out.weightsSha256 === hash.digest("hex");
    return {
      runtime: out.runtime,
      trainRate: n / out.trainSeconds,
      inferRate: test.count / out.inferSeconds,
      sameWeights,
      samePredictions: out.predictions.length === predictions.length &&
        out.predictions.every((p: number, i: number) => p === predictions[i]),
    };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

// ------------------------------------------------------------------------------ epoch 1

/** Epoch 1 on one thread count. */
interface EpochRun {
  threads: number;
  trainSeconds: number;
  evalSeconds: number;
  trainAccuracy: number;
  testAccuracy: number;
  /** Samples/s of each block of the epoch. */
  blockRates: number[];
}

interface EpochResult {
  /** Samples of the epoch (the whole training set). */
  samples: number;
  /** Samples per block: the thread counts take turns block by block. */
  block: number;
  /** Epoch 1 per thread count, ascending (1 first). */
  runs: EpochRun[];
  /** Epoch 1 of seed 0 as `deno task train` logged it in results/, if there. */
  recorded?: { file: string; trainAccuracy: number; testAccuracy: number };
  /** Inference passes over the test set on the epoch-1 weights, per thread count. */
  inferRates: Map<number, number[]>;
  /** Every thread count ended the epoch with the same weights as 1 thread. */
  sameWeights: boolean;
  /** Every thread count made the same predictions with the epoch-1 weights. */
  samePredictions: boolean;
}

/** Samples per block of the interleaved epoch 1. */
const EPOCH_BLOCK = 2000;

/** Epoch 1 of `deno task train --dataset NAME` (seed 0) as logged in results/, if there. */
function recordedEpoch(name: DatasetName): EpochResult["recorded"] {
  const file = `results/${name === "mnist" ? "mnist" : "fashion"}-s0.log.jsonl`;
  const text = readText(new URL(`../${file}`, import.meta.url).pathname);
  const first = text?.split("\n").find((l) => l.trim());
  if (!first) return undefined;
  try {
    const r = JSON.parse(first);
    if (r.epoch !== 1 || r.lr !== LR || r.train_samples === undefined) return undefined;
    return { file, trainAccuracy: r.train_accuracy, testAccuracy: r.test_accuracy };
  } catch {
    return undefined;
  }
}

/**
 * Epoch 1 as `deno task train` runs it (Kaiming seed-0 weights, the whole epoch-0 shuffle, lr
 * 1e-5, then the test set), on every thread count at once: one network per thread count, taking
 * turns block by block (EPOCH_BLOCK samples; the order of the thread counts alternates), so that
 * the machine's speed swings hit them alike. Then each evaluates the test set, and all must hold
 * the same weights; then `--infer-runs` inference passes over the test set on the trained weights
 * for each thread count, interleaved.
 */
async function epochRun(
  config: NetConfig,
  train: Split,
  test: Split,
  order: Uint32Array,
  o: Options,
  name: DatasetName,
): Promise<EpochResult> {
  const nets = new Map<number, Network>();
  try {
    for (const t of o.threads) {
      const net = await Network.create(config, SEED, undefined, { threads: t });
      net.setLearningRate(LR);
      nets.set(t, net);
    }
    const runs = new Map<number, EpochRun>(o.threads.map((t) => [t, {
      threads: t,
      trainSeconds: 0,
      evalSeconds: 0,
      trainAccuracy: 0,
      testAccuracy: 0,
      blockRates: [],
    }]));
    progress(
      `  ${name} epoch 1 on ${o.threads.map(threadWord).join(" and ")}, taking turns every ` +
        `${fmt(EPOCH_BLOCK)} samples: ${fmt(train.count)} samples`,
    );
    for (let b = 0, k0 = 0; k0 < train.count; b++, k0 += EPOCH_BLOCK) {
      const k1 = Math.min(k0 + EPOCH_BLOCK, train.count);
      for (const t of interleaved(o.threads, b)) {
        const net = nets.get(t)!;
        let c = 0;
        const t0 = now();
        for (let k = k0; k < k1; k++) {
          const s = order[k];
          if (net.trainSample(image(train, s), train.labels[s], 0, k) === train.labels[s]) c++;
        }
        const seconds = (now() - t0) / 1000;
        sampleRss();
        const run = runs.get(t)!;
        run.trainSeconds += seconds;
        run.blockRates.push((k1 - k0) / seconds);
        run.trainAccuracy += c; // a count until the epoch ends
      }
    }
    const predictions = new Map(o.threads.map((t) => [t, new Int8Array(test.count)]));
    for (const t of o.threads) {
      const run = runs.get(t)!;
      run.trainAccuracy /= train.count;
      const { rate, accuracy } = inferOnce(nets.get(t)!, test, 0, predictions.get(t)!);
      run.evalSeconds = test.count / rate;
      run.testAccuracy = accuracy;
      progress(
        `  ${name} epoch 1, ${threadWord(t)}: ${run.trainSeconds.toFixed(1)} s training ` +
          `(${fmt(train.count / run.trainSeconds)} samples/s), ${run.evalSeconds.toFixed(1)} s ` +
          `evaluation, test accuracy ${(100 * run.testAccuracy).toFixed(2)} %`,
      );
    }
    let sameWeights = true;
    for (const t of o.threads.slice(1)) {
      const where = weightMismatch(nets.get(1)!, nets.get(t)!);
      if (where) {
        sameWeights = false;
        progress(`  MISMATCH: epoch 1 on ${threadWord(t)} against 1 thread: ${where}`);
      }
    }
    const r: EpochResult = {
      samples: train.count,
      block: EPOCH_BLOCK,
      runs: o.threads.map((t) => runs.get(t)!),
      recorded: recordedEpoch(name),
      inferRates: new Map(o.threads.map((t) => [t, []])),
      sameWeights,
      samePredictions: true,
    };
    for (let pass = 0; pass < o.inferRuns; pass++) {
      for (const t of interleaved(o.threads, pass)) {
        const { rate } = inferOnce(nets.get(t)!, test, 0, predictions.get(t)!);
        r.inferRates.get(t)!.push(rate);
        progress(
          `  ${name} epoch-1 model, inference pass ${pass + 1}/${o.inferRuns}, ` +
            `${threadWord(t)}: ${fmt(rate)} samples/s`,
        );
      }
    }
    const one = predictions.get(1)!;
    r.samePredictions = o.threads.every((t) => predictions.get(t)!.every((p, i) => p === one[i]));
    return r;
  } finally {
    for (const n of nets.values()) await n.close();
  }
}

// ---------------------------------------------------------------------- training-run memory

/** Samples of the training run whose memory is measured. */
const MEMORY_RUN_SAMPLES = 5000;

/** The peak memory of `deno task train` as a user runs it (a separate process). */
interface MemoryRun {
  threads: number;
  /** The log's `peak_rss_bytes` (Linux VmHWM of the training process), or null elsewhere. */
  peakRssBytes: number | null;
  seconds: number;
}

/**
 * Runs `cli.ts train --dataset NAME --epochs 1 --limit 5000 --threads N` in a child process (the
 * whole data set is loaded, as in a full run; the network, its threads and the evaluation of the
 * test set are those of a full run) and reads the peak resident set from its log.
 */
async function trainingRunMemory(name: DatasetName, o: Options): Promise<MemoryRun> {
  const threads = o.threads.at(-1)!;
  const dir = await Deno.makeTempDir({ prefix: "desire-bench-" });
  try {
    const cli = new URL("../cli.ts", import.meta.url).pathname;
    const args = ["run", "-A", cli, "train", "--dataset", name, "--epochs", "1", "--limit"];
    args.push(String(MEMORY_RUN_SAMPLES), "--threads", String(threads), "--out", `${dir}/run`);
    if (o.dataDir) args.push("--data-dir", o.dataDir);
    const t0 = now();
    const r = await new Deno.Command(Deno.execPath(), { args, stdout: "piped", stderr: "piped" })
      .output();
    const seconds = (now() - t0) / 1000;
    if (r.code !== 0) {
      throw new Error(
        `deno ${args.join(" ")} failed (exit ${r.code}): ${new TextDecoder().decode(r.stderr)}`,
      );
    }
    const rec = JSON.parse((await Deno.readTextFile(`${dir}/run/log.jsonl`)).trim().split("\n")[0]);
    return { threads, peakRssBytes: rec.peak_rss_bytes ?? null, seconds };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

// ------------------------------------------------------------------------------ float model

/** The keep masks the kernels draw for sample `index` of epoch 0 (1 = kept), layers 0..L−1. */
function keepMasks(p: IntParams, seed: number, index: number): Uint8Array[] {
  const key = sampleKey(seed, 0, index);
  const out: Uint8Array[] = [];
  for (let l = 0; l < p.L; l++) {
    const m = new Uint8Array(p.sizes[l]).fill(1);
    if (p.drop[l] !== 0) {
      for (let j = 0; j < m.length; j++) m[j] = drawHi(key, l, j) >>> 0 >= p.drop[l] ? 1 : 0;
    }
    out.push(m);
  }
  return out;
}

interface FloatResult {
  trainRate: number;
  inferRate: number;
  agreement: number;
}

function floatRuns(
  config: NetConfig,
  train: Split,
  test: Split,
  order: Uint32Array,
  trained: Network,
  wasmPredictions: Int8Array,
  o: Options,
): FloatResult {
  const p = deriveParams(config);
  const n = Math.min(o.floatSamples, o.samples);
  const fnet = new FloatNet(config, kaimingMaster(config.sizes, SEED).map(masterToFloat));
  let busy = 0;
  for (let k = 0; k < n; k++) {
    const s = order[k];
    const keeps = keepMasks(p, SEED, k); // the kernels' dropout draws, outside the timing
    const t0 = now();
    fnet.trainStep(image(train, s), train.labels[s], LR, keeps);
    busy += now() - t0;
    if ((k & 63) === 63) sampleRss();
  }
  const trainRate = n / (busy / 1000);
  const weights = Array.from({ length: p.L }, (_, l) => masterToFloat(trained.weights(l + 1)));
  const enet = new FloatNet(config, weights);
  const nt = Math.min(o.floatTest, test.count);
  let same = 0;
  const t0 = now();
  for (let s = 0; s < nt; s++) {
    if (enet.evaluate(image(test, s)).predicted === wasmPredictions[s]) same++;
  }
  const inferRate = nt / ((now() - t0) / 1000);
  sampleRss();
  return { trainRate, inferRate, agreement: same / nt };
}

// --------------------------------------------------------------------------- kernel rates

interface KernelRow {
  kernel: string;
  /** Operation counted: "add", "mul-add" or "". */
  op: string;
  seconds: number;
  ops: number;
}

interface KernelResult {
  samples: number;
  rows: KernelRow[];
  /** trainSample over the same samples (median of the runs), seconds. */
  trainSampleSeconds?: number;
  /** Kernel sequence ended with the same weights as trainSample. */
  sameAsTrainSample?: boolean;
  bound: LimitResult[];
  /** forwardLayer with every input firing every other step, and in every step. */
  synthetic: SyntheticForward[];
  /** The bounds of the current kernels (bench/bounds.ts). */
  bounds?: BoundsResult;
}

/** Times every kernel of a training step separately, counting the vector operations. */
async function kernelRates(
  config: NetConfig,
  train: Split,
  order: Uint32Array,
  n: number,
): Promise<{ rows: KernelRow[]; trainSampleSeconds: number; same: boolean }> {
  const net = await Network.create(config, SEED);
  net.setLearningRate(LR);
  // A second network trained by trainSample() on the same samples, interleaved sample by sample
  // so that both see the same machine load; the two must end with the same weights.
  const twin = await Network.create(config, SEED);
  twin.setLearningRate(LR);
  let twinSeconds = 0;
  const ex = net.exports;
  const { L, T, sizes, strides } = net.params;
  const buf = ex.memory.buffer;
  const img = new Uint8Array(buf, ex.imagePtr(), sizes[0]);
  const words = Array.from(
    { length: L + 1 },
    (_, l) => new Uint32Array(buf, ex.wordsPtr(l), strides[l]),
  );
  const desire = Array.from(
    { length: L + 1 },
    (_, l) => (l ? new Int32Array(buf, ex.desirePtr(l), strides[l]) : new Int32Array()),
  );
  const keep = Array.from(
    { length: L + 1 },
    (_, l) => new Int32Array(buf, ex.keepPtr(l), strides[l]),
  );
  const mask = T === 32 ? 0xffffffff : 2 ** T - 1;
  const inputWord = (l: number, i: number) =>
    (l === 1 ? words[0][i] : (words[l - 1][i] << 1) & mask) >>> 0;

  const rows: KernelRow[] = [];
  const row = (kernel: string, op: string) => {
    const r = { kernel, op, seconds: 0, ops: 0 };
    rows.push(r);
    return r;
  };
  const enc = row("dropout + encode", "");
  const fwd = [enc, ...Array.from({ length: L }, (_, k) => row(`forward ${k + 1}`, "add"))];
  const out = row("counts + output desire", "");
  const bwd = [
    enc,
    enc,
    ...Array.from({ length: L - 1 }, (_, k) => row(`backward ${k + 2}`, "mul-add")),
  ];
  const upRows = [enc, ...Array.from({ length: L }, (_, k) => row(`update ${k + 1}`, "add"))];

  // Timestamps between the kernel calls; the operations are counted after the whole step (the
  // state they read is not changed by later kernels), so the counting does not disturb the caches
  // between kernels.
  const stamps = new Float64Array(3 * L + 4);
  for (let k = 0; k < n; k++) {
    const s = order[k];
    const label = train.labels[s];
    const t0 = now();
    twin.trainSample(image(train, s), label, 0, k);
    twinSeconds += now() - t0;
    img.set(image(train, s));
    let q = 0;
    stamps[q++] = now();
    ex.beginSample(0, k);
    ex.encode(1);
    stamps[q++] = now();
    for (let l = 1; l <= L; l++) {
      ex.forwardLayer(l, 1);
      stamps[q++] = now();
    }
    ex.predict();
    ex.desireOutput(label);
    stamps[q++] = now();
    for (let l = L; l >= 2; l--) {
      ex.backwardLayer(l);
      stamps[q++] = now();
    }
    for (let l = 1; l <= L; l++) {
      ex.updateLayer(l);
      stamps[q++] = now();
    }
    q = 1;
    enc.seconds += stamps[q] - stamps[q - 1];
    for (let l = 1; l <= L; l++, q++) fwd[l].seconds += stamps[q + 1] - stamps[q];
    out.seconds += stamps[q + 1] - stamps[q++];
    for (let l = L; l >= 2; l--, q++) bwd[l].seconds += stamps[q + 1] - stamps[q];
    for (let l = 1; l <= L; l++, q++) upRows[l].seconds += stamps[q + 1] - stamps[q];
    for (let l = 1; l <= L; l++) {
      let bits = 0;
      for (let i = 0; i < sizes[l - 1]; i++) bits += popcount(inputWord(l, i));
      fwd[l].ops += bits * strides[l];
      if (l >= 2) bwd[l].ops += sizes[l - 1] * strides[l];
      // Update: the rows U[s] that can be non-zero are the steps up to the last spike of a
      // desired, kept neuron; each input adds those of its spike steps, P lanes each.
      let fired = 0;
      for (let j = 0; j < sizes[l]; j++) {
        if ((desire[l][j] & 1) !== 0 && keep[l][j] !== 0) fired |= words[l][j];
      }
      if (fired === 0) continue;
      const rowMask = 2 ** (32 - Math.clz32(fired)) - 1;
      bits = 0;
      for (let i = 0; i < sizes[l - 1]; i++) bits += popcount((inputWord(l, i) & rowMask) >>> 0);
      upRows[l].ops += bits * strides[l];
    }
    if ((k & 255) === 255) sampleRss();
  }
  for (const r of rows) r.seconds /= 1000;
  let same = true;
  for (let l = 1; l <= L; l++) {
    const a = net.weights(l), b = twin.weights(l);
    for (let i = 0; i < a.length && same; i++) same = a[i] === b[i];
  }
  return { rows, trainSampleSeconds: twinSeconds / 1000, same };
}

/** forwardLayer on a synthetic layer: what it measured. */
export interface SyntheticForward {
  /** Pixel value of every input. */
  pixel: number;
  /** Spikes per input word. */
  spikes: number;
  /** Effective adds per call: 784 × spikes × P. */
  adds: number;
  /** Effective adds per second (median). */
  addsPerSecond: number;
}

/**
 * forwardLayer(1) of a 784-1600-10 network with every pixel set to `pixel` (evaluation mode, no
 * dropout): 255 fires in every step, 128 in every other step.
 */
async function syntheticForward(pixel: number): Promise<SyntheticForward> {
  const config = { ...presetConfig("mnist"), sizes: [784, 1600, 10] };
  const net = await Network.create(config, SEED);
  const ex = net.exports;
  const { strides } = net.params;
  new Uint8Array(ex.memory.buffer, ex.imagePtr(), 784).fill(pixel);
  ex.beginSample(0, 0);
  ex.encode(0);
  const w0 = new Uint32Array(ex.memory.buffer, ex.wordsPtr(0), 784);
  const spikes = popcount(w0[0]);
  if (!w0.every((w) => w === w0[0])) throw new Error("Cannot build the synthetic layer");
  const adds = 784 * spikes * strides[1];
  const rates: number[] = [];
  for (let r = 0; r < 5; r++) {
    let calls = 0;
    const t0 = now();
    let t = t0;
    while (t - t0 < 100) {
      ex.forwardLayer(1, 0);
      calls++;
      t = now();
    }
    rates.push((calls * adds) / ((t - t0) / 1000));
  }
  return { pixel, spikes, adds, addsPerSecond: median(rates) };
}

// ------------------------------------------------------------------------------------ report

interface DatasetReport {
  name: DatasetName;
  config: NetConfig;
  samples: number;
  /** Every thread count of `--threads`, the first being 1. */
  threadRuns: ThreadRun[];
  /** The 1-thread figures (as threadRuns[0]). */
  train: TrainResult;
  infer: InferResult;
  float: FloatResult;
  wasmTrainFirstRate: number;
  floatSamples: number;
  wasmMemoryBytes: number;
  memoryEndBytes: number;
  peakRss: number;
  saturations: number;
  kernels?: KernelResult;
  epoch?: EpochResult;
  node?: NodeResult;
  memoryRun?: MemoryRun;
}

/** Median samples/s of thread run x over that of 1 thread: training and inference. */
function speedups(r: DatasetReport, x: ThreadRun): { train: number; infer: number } {
  return {
    train: median(x.train.rates) / median(r.train.rates),
    infer: median(x.infer.rates) / median(r.infer.rates),
  };
}

/** The figures every thread count has. */
function threadJson(r: DatasetReport, x: ThreadRun): Record<string, unknown> {
  const up = speedups(r, x);
  const round = (v: number, d: number) => Number(v.toFixed(d));
  return {
    threads: x.threads,
    train_samples_per_second: round(median(x.train.rates), 1),
    infer_samples_per_second: round(median(x.infer.rates), 1),
    train_speedup_vs_1_thread: round(up.train, 3),
    infer_speedup_vs_1_thread: round(up.infer, 3),
    train_runs_samples_per_second: x.train.rates.map((v) => round(v, 1)),
    infer_runs_samples_per_second: x.infer.rates.map((v) => round(v, 1)),
    train_runs_speedup_vs_1_thread: x.train.rates.map((v, i) => round(v / r.train.rates[i], 3)),
    infer_runs_speedup_vs_1_thread: x.infer.rates.map((v, i) => round(v / r.infer.rates[i], 3)),
    train_accuracy_last_run: x.train.trainAccuracy,
    test_accuracy_after_training: x.infer.accuracy,
    same_weights_and_predictions_as_1_thread: x.sameAsOneThread,
    wasm_memory_bytes: x.wasmMemoryBytes,
    wasm_layout_bytes: x.memoryEndBytes,
    saturations: x.saturations,
    ...epochJson(r.epoch, x.threads),
  };
}

/** The epoch-1 figures of a thread count: the epoch itself, inference on the trained model. */
function epochJson(e: EpochResult | undefined, threads: number): Record<string, unknown> {
  if (!e) return {};
  const round = (v: number, d: number) => Number(v.toFixed(d));
  const rates = e.inferRates.get(threads)!, base = e.inferRates.get(1)!;
  const run = e.runs.find((x) => x.threads === threads)!, one = e.runs[0];
  return {
    epoch1_seconds: round(run.trainSeconds + run.evalSeconds, 2),
    epoch1_train_seconds: round(run.trainSeconds, 2),
    epoch1_eval_seconds: round(run.evalSeconds, 2),
    epoch1_train_samples: e.samples,
    epoch1_train_samples_per_second: round(e.samples / run.trainSeconds, 1),
    epoch1_train_speedup_vs_1_thread: round(one.trainSeconds / run.trainSeconds, 3),
    epoch1_block_samples: e.block,
    epoch1_blocks_samples_per_second: run.blockRates.map((v) => round(v, 1)),
    epoch1_train_accuracy: run.trainAccuracy,
    epoch1_test_accuracy: run.testAccuracy,
    epoch1_recorded_test_accuracy: e.recorded?.testAccuracy ?? null,
    epoch1_recorded_file: e.recorded?.file ?? null,
    epoch1_same_weights_all_threads: e.sameWeights,
    epoch1_model_infer_samples_per_second: round(median(rates), 1),
    epoch1_model_infer_speedup_vs_1_thread: round(median(rates) / median(base), 3),
    epoch1_model_infer_runs_samples_per_second: rates.map((v) => round(v, 1)),
    epoch1_model_same_predictions_all_threads: e.samePredictions,
  };
}

/** The 1-thread entry: threadJson plus the float32 comparison, memory and kernels. */
function datasetJson(r: DatasetReport): Record<string, unknown> {
  const j: Record<string, unknown> = {
    ...threadJson(r, r.threadRuns[0]),
    network: r.config.sizes.join("-"),
    dropout: [r.config.dropIn, r.config.dropHid],
    tsteps: r.config.tsteps,
    lr: LR,
    validated: true,
    train_samples_per_run: r.samples,
    test_samples: r.infer.predictions.length,
    float_train_samples: r.floatSamples,
    float_train_samples_per_second: Number(r.float.trainRate.toFixed(2)),
    wasm_train_samples_per_second_same_samples: Number(r.wasmTrainFirstRate.toFixed(1)),
    train_speedup_vs_float: Number((r.wasmTrainFirstRate / r.float.trainRate).toFixed(2)),
    float_infer_samples_per_second: Number(r.float.inferRate.toFixed(2)),
    wasm_infer_samples_per_second_same_samples: Number(r.infer.firstRate.toFixed(1)),
    infer_speedup_vs_float: Number((r.infer.firstRate / r.float.inferRate).toFixed(2)),
    float_wasm_prediction_agreement: r.float.agreement,
    peak_rss_bytes: r.peakRss,
    training_run_peak_rss_bytes: r.memoryRun?.peakRssBytes ?? null,
    training_run_threads: r.memoryRun?.threads ?? null,
  };
  if (r.node) {
    const n = r.node;
    j.node_host = n.trainRate === undefined ? { runtime: n.runtime } : {
      runtime: n.runtime,
      train_samples_per_second: Number(n.trainRate.toFixed(1)),
      infer_samples_per_second: Number(n.inferRate!.toFixed(1)),
      train_ratio_vs_deno_last_run: Number((n.trainRate / r.train.rates.at(-1)!).toFixed(3)),
      infer_ratio_vs_deno_last_pass: Number((n.inferRate! / r.infer.rates.at(-1)!).toFixed(3)),
      same_weights_and_predictions_as_deno: !!(n.sameWeights && n.samePredictions),
    };
  }
  if (r.kernels) {
    const k = r.kernels;
    j.kernels = {
      samples: k.samples,
      same_weights_as_train_sample: k.sameAsTrainSample ?? null,
      train_sample_seconds_same_samples: k.trainSampleSeconds ?? null,
      rows: k.rows.map((x) => ({
        kernel: x.kernel,
        op: x.op || null,
        microseconds_per_sample: Number(((1e6 * x.seconds) / k.samples).toFixed(2)),
        ops_per_sample: x.op ? Math.round(x.ops / k.samples) : null,
        ops_per_second: x.op && x.seconds > 0 ? Math.round(x.ops / x.seconds) : null,
      })),
      forward_adds_per_second: Math.round(sumOps(k, "forward") / sumSeconds(k, "forward")),
      bounds: k.bounds ?? null,
      bound_column_sum: k.bound.map((b) => ({
        working_set_bytes: b.workingSetBytes,
        adds_per_second: Math.round(b.addsPerSecond),
        gigabytes_per_second: Number((b.bytesPerSecond / 1e9).toFixed(2)),
      })),
      synthetic_forward: k.synthetic.map((x) => ({
        pixel: x.pixel,
        spikes_per_input: x.spikes,
        effective_adds_per_call: x.adds,
        adds_per_second: Math.round(x.addsPerSecond),
      })),
    };
  }
  return j;
}

function sumOps(k: KernelResult, prefix: string): number {
  return k.rows.filter((r) => r.kernel.startsWith(prefix)).reduce((a, r) => a + r.ops, 0);
}
function sumSeconds(k: KernelResult, prefix: string): number {
  return k.rows.filter((r) => r.kernel.startsWith(prefix)).reduce((a, r) => a + r.seconds, 0);
}

/**
 * Rows of cells in aligned columns, two spaces apart. `groups` (optional) puts a title line above
 * the table, each title starting over the column given with it.
 */
function table(
  rows: string[][],
  align: ("l" | "r")[],
  groups: { column: number; title: string }[] = [],
): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => (r[c] ?? "").length)));
  const lines = rows.map((r) =>
    "  " +
    r.map((cell, c) => (align[c] === "l" ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join(
      "  ",
    )
      .trimEnd()
  );
  if (groups.length) {
    let title = "";
    for (const g of groups) {
      const at = 2 + widths.slice(0, g.column).reduce((a, w) => a + w + 2, 0);
      title = title.padEnd(Math.max(at, title.length + (title ? 2 : 0))) + g.title;
    }
    lines.unshift(title);
  }
  return lines.join("\n");
}

function humanReport(
  m: Machine,
  o: Options,
  gate: string[],
  reports: DatasetReport[],
  seconds: number,
): string {
  const out: string[] = [];
  out.push(`desire bench, ${m.date}`);
  out.push(
    `machine: ${m.cpu}, ${m.cores} cores (${m.caches}; ${m.simd}), ${m.os}`,
  );
  out.push(`         Deno ${m.deno}, V8 ${m.v8}, TypeScript ${m.typescript}`);
  out.push(
    `         load average ${m.load_average_start.join(" ")} at start, ` +
      `${(m.load_average_end ?? []).join(" ")} at end (other jobs make the figures noisy)`,
  );
  out.push(
    `settings: threads ${o.threads.join(", ")}; T 20, lr ${LR.toExponential()}, seed ${SEED}, ` +
      `presets' dropout; training ${o.runs} run(s) × ` +
      `${o.samples} shuffled samples (epoch 0) from Kaiming weights, fresh network per run; ` +
      `inference ${o.inferRuns} pass(es) over the test set with the network of the last run ` +
      `(trained on those ${o.samples} samples only)`,
  );
  out.push("");
  out.push(
    `correctness gate: desire.wasm${
      o.threads.length > 1 ? ` and desire-mt.wasm (${o.threads.slice(1).join(", ")} threads)` : ""
    } vs the scalar reference, bit for bit after every step`,
  );
  for (const g of gate) out.push(`  ${g}`);
  out.push("");
  out.push(
    `throughput (median), ` +
      (o.threads.length > 1
        ? `${o.threads.slice(1).map(threadWord).join(", ")} vs 1: thread counts interleaved run ` +
          `by run (${o.threads.join(", ")}, then ${[...o.threads].reverse().join(", ")}, ...); `
        : "1 thread; ") +
      `${o.runs} training runs of ${o.samples} samples, ${o.inferRuns} inference passes over ` +
      `the ${fmt(reports[0]?.infer.predictions.length ?? 10000)} test images`,
  );
  {
    // Columns: per data set, each thread count, then each count's ratio to 1 thread.
    type Col = { r: DatasetReport; x: ThreadRun; ratio: boolean };
    const cols: Col[] = [];
    const groups: { column: number; title: string }[] = [];
    for (const r of reports) {
      groups.push({ column: 1 + cols.length, title: `${r.name} ${r.config.sizes.join("-")}` });
      for (const x of r.threadRuns) cols.push({ r, x, ratio: false });
      for (const x of r.threadRuns.slice(1)) cols.push({ r, x, ratio: true });
    }
    const line = (
      label: string,
      f: (r: DatasetReport, x: ThreadRun) => string,
      g: (r: DatasetReport, x: ThreadRun) => string = () => "",
    ) => [label, ...cols.map((c) => (c.ratio ? g(c.r, c.x) : f(c.r, c.x)))];
    const ratio = (v: number) => `${v.toFixed(2)} ×`;
    const pct = (v: number) => `${(100 * v).toFixed(2)} %`;
    const rows: string[][] = [
      ["", ...cols.map((c) => (c.ratio ? `${c.x.threads} / 1` : threadWord(c.x.threads)))],
      line(
        "train samples/s",
        (_, x) => fmt(median(x.train.rates)),
        (r, x) => ratio(speedups(r, x).train),
      ),
      line(
        "infer samples/s",
        (_, x) => fmt(median(x.infer.rates)),
        (r, x) => ratio(speedups(r, x).infer),
      ),
      line("train accuracy (last run)", (_, x) => pct(x.train.trainAccuracy)),
      line(`test accuracy after ${o.samples} samples`, (_, x) => pct(x.infer.accuracy)),
      line(
        "same weights, predictions as 1 thread",
        (_, x) => (x.threads === 1 ? "" : x.sameAsOneThread ? "yes" : "NO"),
      ),
      line("wasm memory", (_, x) => `${(x.wasmMemoryBytes / MiB).toFixed(1)} MiB`),
      line("saturation events", (_, x) => String(x.saturations)),
    ];
    out.push(table(rows, ["l", ...cols.map(() => "r" as const)], groups));
    for (const r of reports) {
      for (const x of r.threadRuns) {
        const runs = (rates: number[], base: number[]) =>
          rates.map((v, i) => fmt(v) + (x.threads === 1 ? "" : ` (${(v / base[i]).toFixed(2)})`))
            .join(", ");
        out.push(
          `  ${r.name}, ${threadWord(x.threads)}: training runs ` +
            `${runs(x.train.rates, r.train.rates)}; inference passes ` +
            `${runs(x.infer.rates, r.infer.rates)}`,
        );
      }
    }
    if (o.threads.length > 1) {
      out.push("  (in brackets: the ratio to the 1-thread run or pass next to it)");
    }
    for (const r of reports.filter((r) => r.node)) {
      const n = r.node!;
      if (n.trainRate === undefined) {
        out.push(`  ${r.name}, the same desire.wasm in Node.js: ${n.runtime}`);
        continue;
      }
      const last = r.train.rates.at(-1)!, lastInfer = r.infer.rates.at(-1)!;
      out.push(
        `  ${r.name}, the same desire.wasm in ${n.runtime} (1 thread, tests/node_host.mjs): ` +
          `training ${fmt(n.trainRate)} samples/s (${(n.trainRate / last).toFixed(2)} × ` +
          `Deno's last run), inference ${fmt(n.inferRate!)} samples/s ` +
          `(${(n.inferRate! / lastInfer).toFixed(2)} ×); same weights and predictions as Deno: ` +
          `${n.sameWeights && n.samePredictions ? "yes" : "NO"}`,
      );
    }
    if (reports.some((r) => r.node?.trainRate !== undefined)) {
      out.push(
        "  (Node.js enables V8's WebAssembly trap handler, so memory accesses need no bounds " +
          "checks; Deno does not, and V8 emits a compare and branch before each of them)",
      );
    }
  }
  for (const r of reports.filter((r) => r.epoch)) {
    const e = r.epoch!;
    const same = (a: number, b?: number) =>
      b === undefined
        ? ""
        : a === b
        ? " (the same as logged)"
        : ` (LOGGED ${(100 * b).toFixed(2)} %)`;
    out.push("");
    out.push(
      `epoch 1 of ${r.name} ${r.config.sizes.join("-")}: Kaiming seed-0 weights, all ` +
        `${fmt(e.samples)} samples of the epoch-0 shuffle, lr ${LR.toExponential()}, then the ` +
        `${fmt(r.infer.predictions.length)} test images (as deno task train --epochs 1), on ` +
        `${o.threads.map(threadWord).join(" and ")} taking turns every ${fmt(e.block)} samples`,
    );
    const one = e.runs[0];
    const pct = (v: number) => (100 * v).toFixed(2);
    for (const x of e.runs) {
      const ratio = x === one
        ? ""
        : `, ${(one.trainSeconds / x.trainSeconds).toFixed(2)} × 1 thread`;
      const blocks = x.blockRates.map((v, i) => v / one.blockRates[i]).sort((a, b) => a - b);
      const spread = x === one
        ? ""
        : ` (blocks ${blocks[0].toFixed(2)}–${blocks.at(-1)!.toFixed(2)} ×, median ${
          median(blocks).toFixed(2)
        } ×)`;
      out.push(
        `  ${threadWord(x.threads).padEnd(10)} ${(x.trainSeconds + x.evalSeconds).toFixed(1)} s: ` +
          `training ${x.trainSeconds.toFixed(1)} s (${fmt(e.samples / x.trainSeconds)} samples/s` +
          `${ratio})${spread}, evaluation ${x.evalSeconds.toFixed(1)} s`,
      );
    }
    out.push(
      `  train accuracy ${pct(one.trainAccuracy)} %` +
        same(one.trainAccuracy, e.recorded?.trainAccuracy) +
        `, test accuracy ${pct(one.testAccuracy)} %` +
        same(one.testAccuracy, e.recorded?.testAccuracy) +
        (e.recorded ? `; logged: ${e.recorded.file}` : "") +
        `; ${e.sameWeights ? "the same weights" : "WEIGHTS DIFFER"} on every thread count`,
    );
    const base = median(e.inferRates.get(1)!);
    out.push(
      `  inference on the epoch-1 weights (median of ${o.inferRuns}, interleaved): ` +
        o.threads.map((t) => {
          const v = median(e.inferRates.get(t)!);
          return `${threadWord(t)} ${fmt(v)}` + (t === 1 ? "" : ` (${(v / base).toFixed(2)} ×)`);
        }).join(", ") +
        ` samples/s; ${
          e.samePredictions ? "the same predictions" : "PREDICTIONS DIFFER"
        } on every thread count`,
    );
  }
  out.push("");
  out.push("1 thread: float32 model and memory");
  const head = ["", ...reports.map((r) => `${r.name} ${r.config.sizes.join("-")}`)];
  const line = (label: string, f: (r: DatasetReport) => string) => [label, ...reports.map(f)];
  const rows: string[][] = [
    head,
    line("dropout (input/hidden)", (r) => `${r.config.dropIn}/${r.config.dropHid}`),
    line("float32 TS model: train samples/s", (r) => fmt(r.float.trainRate, 1)),
    line("  wasm on the same samples", (r) => fmt(r.wasmTrainFirstRate)),
    line(
      "  wasm / float32, training",
      (r) => `${(r.wasmTrainFirstRate / r.float.trainRate).toFixed(1)} ×`,
    ),
    line("float32 TS model: infer samples/s", (r) => fmt(r.float.inferRate, 1)),
    line("  wasm on the same images", (r) => fmt(r.infer.firstRate)),
    line(
      "  wasm / float32, inference",
      (r) => `${(r.infer.firstRate / r.float.inferRate).toFixed(1)} ×`,
    ),
    line("  same prediction, float vs wasm", (r) => (100 * r.float.agreement).toFixed(1) + " %"),
    line(
      "wasm memory (layout)",
      (r) => `${(r.wasmMemoryBytes / MiB).toFixed(1)} MiB (${(r.memoryEndBytes / MiB).toFixed(1)})`,
    ),
    line("peak RSS of the process so far", (r) => `${(r.peakRss / MiB).toFixed(0)} MiB`),
  ];
  out.push(table(rows, ["l", ...reports.map(() => "r" as const)]));
  out.push(
    `  (float32 model: first ${
      reports[0]?.floatSamples
    } training samples from the same Kaiming weights and ` +
      `dropout draws, mask drawing not timed; inference on the first ${o.floatTest} test images ` +
      `with the trained wasm network's weights)`,
  );
  const mn = reports.find((r) => r.kernels);
  if (mn?.kernels) {
    const k = mn.kernels;
    out.push("");
    out.push(
      `kernels of ${mn.name} ${mn.config.sizes.join("-")}, through the raw exports, ` +
        `${k.samples} training samples (the runs' first)`,
    );
    const total = k.rows.reduce((a, r) => a + r.seconds, 0);
    const krows: string[][] = [[
      "kernel",
      "µs/sample",
      "share",
      "ops/sample",
      "ops/s",
      "GB/s (4 B/op)",
    ]];
    for (const r of k.rows) {
      krows.push([
        r.kernel,
        fmt((1e6 * r.seconds) / k.samples, 1),
        `${((100 * r.seconds) / total).toFixed(1)} %`,
        r.op ? `${fmt(r.ops / k.samples)} ${r.op}s` : "",
        r.op && r.seconds > 0 ? `${giga(r.ops / r.seconds)} G` : "",
        r.op && r.seconds > 0 ? giga((4 * r.ops) / r.seconds) : "",
      ]);
    }
    krows.push(["all kernels", fmt((1e6 * total) / k.samples, 1), "100 %", "", "", ""]);
    out.push(table(krows, ["l", "r", "r", "r", "r", "r"]));
    if (k.trainSampleSeconds !== undefined) {
      out.push(
        `  trainSample() on the same samples (a second network, interleaved): ` +
          `${fmt((1e6 * k.trainSampleSeconds) / k.samples, 1)} µs/sample; the kernel sequence ` +
          (k.sameAsTrainSample ? "ends with the same weights" : "ENDS WITH DIFFERENT WEIGHTS"),
      );
    }
    out.push(
      "  ops are effective (column-sum) i32 lane operations: forward Σ over active inputs of " +
        "popcount(word) × P; backward nIn × P multiply-adds; update Σ over active inputs of " +
        "popcount(word & steps up to the last spike of a desired kept neuron) × P",
    );
    out.push(
      "  backward 2 through the raw export computes the desire of every first-layer neuron; " +
        "trainSample() computes only the ones its update reads (neurons that fired and were kept, " +
        "about a sixth of them), so the sum of the kernels exceeds trainSample()",
    );
    out.push("");
    out.push(
      "bound: i32x4 column sum dst[k] += row[k] (hand-assembled wasm, bench/limit.ts, 1 KiB rows)",
    );
    const brows: string[][] = [["rows' working set", "Gadd/s", "GB/s of rows"]];
    for (const b of k.bound) {
      brows.push([
        b.workingSetBytes >= MiB
          ? `${b.workingSetBytes / MiB} MiB`
          : `${b.workingSetBytes / 1024} KiB`,
        giga(b.addsPerSecond),
        giga(b.bytesPerSecond),
      ]);
    }
    for (const x of k.synthetic) {
      brows.push([
        `forwardLayer 784-1600, every input fires ${
          x.spikes === 20 ? "in every step" : `in ${x.spikes} of 20 steps`
        }`,
        giga(x.addsPerSecond),
        giga(4 * x.addsPerSecond),
      ]);
    }
    const fwdRate = sumOps(k, "forward") / sumSeconds(k, "forward");
    brows.push(["forward kernels while training (above)", giga(fwdRate), giga(4 * fwdRate)]);
    out.push(table(brows, ["l", "r", "r"]));
    const l1 = Math.max(...k.bound.map((b) => b.addsPerSecond));
    out.push(
      `  forward while training: ${((100 * fwdRate) / l1).toFixed(0)} % of the best column-sum ` +
        `rate. Adds are effective (column-sum) adds; an input that fires in a run of steps costs ` +
        `the kernel one add at the run's start and one subtract after its end, so the ` +
        `every-step case exceeds the loop's rate.`,
    );
  }
  if (mn?.kernels?.bounds) {
    const k = mn.kernels;
    const us = (name: string) => {
      const row = k.rows.find((x) => x.kernel === name);
      return row ? (1e6 * row.seconds) / k.samples : undefined;
    };
    const two = mn.threadRuns.find((x) => x.threads === 2);
    out.push("");
    out.push(
      ...formatBounds(k.bounds!, {
        measured: {
          train1: median(mn.train.rates),
          infer1: median(mn.infer.rates),
          train2: two ? median(two.train.rates) : undefined,
          infer2: two ? median(two.infer.rates) : undefined,
        },
        kernelMicros: {
          f1: us("forward 1"),
          f2: us("forward 2"),
          u1: us("update 1"),
          u2: us("update 2"),
        },
        // What assembly/threads.ts runs on thread 0 alone: dropout and encoding, counts and
        // desire (undefined if a row is missing). The output layer's forward pass is split by
        // inputs; only the sum of the threads' currents and its 10 membranes stay on thread 0.
        serialMicros: [
          "dropout + encode",
          "counts + output desire",
        ]
          .map(us).reduce((a, b) => (a === undefined || b === undefined ? undefined : a + b), 0),
        trainSampleMicros: k.trainSampleSeconds === undefined
          ? undefined
          : (1e6 * k.trainSampleSeconds) / k.samples,
      }),
    );
  }
  out.push(...targetLines(reports));
  const hwm = peakRssBytes();
  out.push("");
  out.push(
    `peak RSS of this bench process: ${(peakRss / MiB).toFixed(0)} MiB sampled from ` +
      `Deno.memoryUsage()` + (hwm ? `, ${(hwm / MiB).toFixed(0)} MiB VmHWM` : "") +
      ` (it holds both data sets, several networks and the bounds' matrices); wall time ` +
      `${seconds.toFixed(0)} s`,
  );
  return out.join("\n");
}

/**
 * The speed targets of the MNIST network, judged as defined for them: training timed from
 * initial weights on ≥ 5,000 shuffled samples (here both the first 5,000 and the whole epoch 1),
 * inference on a model trained ≥ 1 epoch over the 10,000 test images, epoch 1 plus the test set,
 * and the peak memory of a training run.
 */
function targetLines(reports: DatasetReport[]): string[] {
  const out: string[] = [];
  for (const r of reports) {
    const e = r.epoch, mem = r.memoryRun;
    const two = r.threadRuns.find((x) => x.threads === 2);
    // The targets are set for the MNIST network; other networks get the same rows, unjudged.
    const judged = r.name === "mnist";
    const verdict = (ok: boolean) => (judged ? (ok ? "met" : "NOT MET") : "—");
    const rate = (v: number) => `${fmt(v)}/s`;
    out.push("");
    out.push(
      judged
        ? `targets, ${r.name} ${r.config.sizes.join("-")}`
        : `the same rows for ${r.name} ${r.config.sizes.join("-")} (the targets are MNIST's)`,
    );
    const first = `first ${fmt(r.samples)} samples`;
    if (e) {
      const one = e.runs[0], e2 = e.runs.find((x) => x.threads === 2);
      const t1 = e.samples / one.trainSeconds;
      out.push(
        `  training, 1 thread ≥ 1,500/s: epoch 1 (${fmt(e.samples)} samples) ${rate(t1)}, ` +
          `${verdict(t1 >= 1500)}; ${first} ${rate(median(r.train.rates))}`,
      );
      if (e2 && two) {
        const t2 = e.samples / e2.trainSeconds, ratio = one.trainSeconds / e2.trainSeconds;
        out.push(
          `  training, 2 threads ≥ 2,700/s and ≥ 1.8 × 1 thread: epoch 1 ${rate(t2)}, ` +
            `${ratio.toFixed(2)} ×, ${verdict(t2 >= 2700 && ratio >= 1.8)}; ${first} ` +
            `${rate(median(two.train.rates))}, ${speedups(r, two).train.toFixed(2)} ×`,
        );
      }
      const i1 = median(e.inferRates.get(1)!);
      out.push(
        `  inference, 1 thread ≥ 3,000/s (model trained 1 epoch, 10,000 test images): ` +
          `${rate(i1)}, ${verdict(i1 >= 3000)}`,
      );
      if (e.inferRates.has(2)) {
        const i2 = median(e.inferRates.get(2)!);
        out.push(`  inference, 2 threads (no target of its own): ${rate(i2)}`);
      }
      const most = e.runs.at(-1)!;
      const sec = most.trainSeconds + most.evalSeconds;
      out.push(
        `  epoch 1 + test, ${threadWord(most.threads)}, ≤ 30 s: ${sec.toFixed(1)} s, ` +
          `${verdict(sec <= 30)}`,
      );
    }
    if (mem) {
      out.push(
        `  peak memory of a training run (deno task train, ${threadWord(mem.threads)}, ` +
          `${fmt(MEMORY_RUN_SAMPLES)} samples, child process) ≤ 400 MB: ` +
          (mem.peakRssBytes === null
            ? "not measured here (no /proc)"
            : `${(mem.peakRssBytes / 1e6).toFixed(0)} MB (${
              (mem.peakRssBytes / MiB).toFixed(0)
            } MiB), ${verdict(mem.peakRssBytes <= 400e6)}`),
      );
    }
  }
  return out;
}

// -------------------------------------------------------------------------------------- main

async function main(argv: string[]): Promise<number> {
  let o: Options | undefined;
  try {
    o = parseOptions(argv);
  } catch (e) {
    console.error(e instanceof Error ? e.message : String(e));
    console.error("Try: deno task bench --help");
    return 2;
  }
  if (!o) {
    console.log(HELP);
    return 0;
  }
  const tStart = now();
  const machine = machineInfo();
  sampleRss();
  progress(
    `desire bench: ${machine.cpu}, Deno ${machine.deno}, load ${
      machine.load_average_start.join(" ")
    }`,
  );

  const data = new Map<DatasetName, { train: Split; test: Split; order: Uint32Array }>();
  for (const name of o.datasets) {
    try {
      const d = await loadDataset(name, { dataDir: o.dataDir });
      data.set(name, {
        train: d.train,
        test: d.test,
        order: shuffledOrder(SEED, 0, d.train.count),
      });
    } catch (e) {
      console.error(e instanceof Error ? e.message : String(e));
      return 1;
    }
  }
  sampleRss();

  // 1. Validate.
  progress(
    `correctness gate: desire.wasm${
      o.threads.length > 1 ? ` and desire-mt.wasm (${o.threads.slice(1).join(", ")} threads)` : ""
    } vs the scalar reference`,
  );
  const gate: string[] = [];
  const gateData = new Map([...data].map(([k, v]) => [k, { split: v.train, order: v.order }]));
  for (const c of gateCases(gateData)) {
    try {
      gate.push(await gateCase(c, o.threads));
    } catch (e) {
      if (!(e instanceof GateError)) throw e;
      console.error(`Correctness gate FAILED, nothing timed: ${e.message}`);
      return 1;
    }
    progress(`  ${gate.at(-1)}`);
  }
  sampleRss();

  // 2–6. Time.
  const reports: DatasetReport[] = [];
  for (const [name, d] of data) {
    const config = presetConfig(name);
    progress(`${name} ${config.sizes.join("-")}`);
    const nFloat = Math.min(o.floatSamples, o.samples);
    const nKernel = o.kernelSamples;
    const kernelsToo = name === "mnist";
    const runs = await threadRuns(config, d.train, d.test, d.order, o, nFloat, name);
    const { train, infer } = runs[0];
    progress(`  ${name} float32 model: ${nFloat} training samples, ${o.floatTest} test images`);
    const float = floatRuns(config, d.train, d.test, d.order, train.net, infer.predictions, o);
    const report: DatasetReport = {
      name,
      config,
      samples: o.samples,
      threadRuns: runs,
      train,
      infer,
      float,
      wasmTrainFirstRate: median(train.markSeconds.map((sec) => nFloat / sec)),
      floatSamples: nFloat,
      wasmMemoryBytes: runs[0].wasmMemoryBytes,
      memoryEndBytes: runs[0].memoryEndBytes,
      peakRss: 0,
      saturations: runs[0].saturations,
    };
    progress(`  ${name}: the same training and inference in Node.js`);
    report.node = await nodeRun(config, d.train, d.test, d.order, o, train.net, infer.predictions);
    for (const x of runs) await x.train.net.close();
    if (kernelsToo) {
      progress(`  ${name} kernels: ${nKernel} samples`);
      const { rows, trainSampleSeconds, same } = await kernelRates(
        config,
        d.train,
        d.order,
        nKernel,
      );
      progress("  bound: column-sum loop and synthetic forwardLayer");
      const cs = await columnSum();
      const bound = [16 * 1024, MiB, 16 * MiB].map((ws) => measureColumnSum(cs, ws));
      const synthetic = [await syntheticForward(128), await syntheticForward(255)];
      progress("  bounds: list sums, gather, updates, two workers (bench/bounds.ts)");
      const bounds = await runBounds({ progress, columnSum: false });
      report.kernels = {
        bounds,
        samples: nKernel,
        rows,
        trainSampleSeconds,
        sameAsTrainSample: same,
        bound,
        synthetic,
      };
    }
    if (o.epoch.includes(name)) {
      report.epoch = await epochRun(config, d.train, d.test, d.order, o, name);
    }
    progress(`  ${name}: peak memory of deno task train (a child process)`);
    report.memoryRun = await trainingRunMemory(name, o);
    sampleRss();
    report.peakRss = peakRss;
    reports.push(report);
  }
  try {
    machine.load_average_end = Deno.loadavg().map((x) => Number(x.toFixed(2)));
  } catch { /* not available */ }
  const seconds = (now() - tStart) / 1000;
  if (o.json) {
    const j: Record<string, unknown> = {};
    for (const r of reports) {
      j[r.name] = Object.fromEntries(
        r.threadRuns.map((x) => [
          String(x.threads),
          x.threads === 1 ? datasetJson(r) : threadJson(r, x),
        ]),
      );
    }
    j.machine = {
      ...machine,
      peak_rss_bytes: peakRss,
      vm_hwm_bytes: peakRssBytes() ?? null,
      wall_seconds: Number(seconds.toFixed(1)),
      threads: o.threads,
      train_samples_per_run: o.samples,
      runs: o.runs,
      infer_runs: o.inferRuns,
      gate_cases: gate.length,
    };
    console.log(JSON.stringify(j));
  } else {
    console.log(humanReport(machine, o, gate, reports, seconds));
  }
  if (reports.some((r) => r.kernels && !r.kernels.sameAsTrainSample)) {
    console.error("The kernel-by-kernel sequence ended with other weights than trainSample()");
    return 1;
  }
  if (
    reports.some((r) =>
      r.node?.trainRate !== undefined && !(r.node.sameWeights && r.node.samePredictions)
    )
  ) {
    console.error("desire.wasm in Node.js ended with other weights or predictions than in Deno");
    return 1;
  }
  if (
    reports.some((r) =>
      r.threadRuns.some((x) => !x.sameAsOneThread) ||
      (r.epoch && !(r.epoch.samePredictions && r.epoch.sameWeights))
    )
  ) {
    console.error("A multi-threaded network ended with other weights or predictions than 1 thread");
    return 1;
  }
  return 0;
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
