/**
 * Bounds of the kernels as they are now: micro-benchmarks of the memory and register patterns of
 * the forward pass, the backward pass and the STDP update, on one and on two threads, at the data
 * widths of the MNIST network (784-1600-800-10, T = 20), and what they allow for the speed targets.
 *
 * The kernels are AssemblyScript (`bench/bounds_kernels.ts`), compiled at bench time by the
 * pinned `npm:assemblyscript@0.28.20` with the flags of desire-mt.wasm (in a child process, about
 * 2 s), so that the loops get the compiler and the code generation of the real kernels.
 * All data lives in one shared `WebAssembly.Memory` laid out by the host; every kernel's result is
 * checked against a plain TypeScript loop before anything is timed.
 *
 * Each pattern is a "phase" of one training sample: `f1`, `f2` the list sums of the forward pass
 * of layers 1 and 2 (`forwardChunk32` without the membranes: 8 v128 accumulators, the 128-byte
 * chunk of each listed row per entry), `b2` the gather of the backward pass of layer 2
 * (`backwardLayerSimd`: rows × groups multiply-adds, read only), `u1`, `u2` the updates
 * (`updateLayerSimd`: load + add + clamp + store on the changed 4-lane groups of the rows of the
 * inputs that fired, and the rounded store of the forward copy; `u1n`, `u2n` without that
 * store). The per-sample work (active rows, list entries, update rows, group fraction) is the
 * MNIST network's, measured in training ({@link MNIST_LAYERS}, {@link MNIST_BACKWARD}). Every
 * phase is timed in three
 * cache states:
 *
 * - **cold**: random rows, the other layer's matrices streamed through (read-modify-write)
 *   before each call, so the rows come from L3 or memory;
 * - **warm**: the same rows again, right after (they come from L2): the floor of the pattern;
 * - **in training order**: one sample after another, f1, f2, b2, u1, u2, on consecutive row sets
 *   that share rows as consecutive MNIST samples do (the active rows are drawn from `rowPool`
 *   rows: 47 % of layer 1's and 30 % of layer 2's active rows were active in the sample before).
 *
 * The forward list sum is also timed on a few rows that stay in L1 (the register-bound rate) and,
 * for comparison, the old design's column sum (`dst[k] += row[k]`, bench/limit.ts).
 *
 * Two threads: the same loops in one and in two Web Workers at once (two independent copies on
 * their own matrices, like two training processes): a register-only ALU loop, the L1 list sum,
 * the updates, the forward phases and the whole training order (the memory skeleton of training),
 * and a sequential read-modify-write stream. And the training order on ONE network, both workers
 * on the same matrices and the same samples, each doing its half of every phase (forward: the
 * 32-lane chunks; updates: the lanes; backward: the rows), in lockstep with a spin-then-wait
 * barrier between the phases, against one worker doing the whole step on full-width matrices, in
 * two layouts. The current layout (panels, as assembly/threads.ts runs a step since the weights
 * moved into one panel per thread): each worker's lanes of a layer stored as a row-major
 * sub-matrix of their own, in a memory region of its own, so that no cache line or prefetch
 * stream of the forward and update work is shared; the gather as partial sums over each panel's
 * groups, a barrier, and a pass that adds them (threads.ts does so over the listed rows the update
 * needs only, in units the other thread may take, and splits a layer at lane groups rather than
 * 32-lane chunks, so this is a model of its traffic, not a copy of its code). The former layout (full-width rows
 * shared by both threads, both threads' lanes in every row), kept for comparison. The bound of
 * the 2-thread training targets is the lower of the independent copies' and the panels'
 * speedups; the former layout's figure is printed beside it as context.
 *
 * ```sh
 * deno run -A bench/bounds.ts            # the tables (about 25 s)
 * deno run -A bench/bounds.ts --json     # the result object on one line
 * ```
 *
 * ```ts ignore
 * import { formatBounds, runBounds } from "./bounds.ts";
 * const result = await runBounds({ progress: (s) => console.error(s) });
 * console.log(formatBounds(result, { measured: { train1: 1208, train2: 1151 } }).join("\n"));
 * ```
 *
 * @module
 */
import {
  BOUNDS_KERNELS_SOURCE,
  type BoundsKernels,
  CTL_BYTES,
  CTL_GO,
  CTL_HALT,
  CTL_STOP,
  fillPanels,
  FSH,
  instantiateBoundsKernels,
  IS_WORKER,
  isTeamKind,
  type LayerPlan,
  type ListSet,
  panelImage,
  panelLanes,
  type PanelLayer,
  panelPhaseRunner,
  type PanelPlan,
  type Phase,
  phaseRunner,
  type Plan,
  type ScaleKind,
  sharedPhaseRunner,
  type SlotPlan,
  TRAINING_ORDER,
  type UpdSet,
  warmUpKernels,
  type WorkerDone,
  type WorkerInit,
  type WorkerRun,
} from "./bounds_kernels.ts";
import { columnSum, measureColumnSum } from "./limit.ts";
import { median } from "../src/stats.ts";

export { type BoundsKernels, instantiateBoundsKernels, type Phase, type Plan, type ScaleKind };

// ------------------------------------------------------------------------------ public types

/** The speed targets of the issue (MNIST 784-1600-800-10, T = 20), samples/s. */
export const TARGETS = {
  /** Training, 1 thread. */
  train1: 1500,
  /** Training, 2 threads. */
  train2: 2700,
  /** Training, 2 threads over 1 thread. */
  train2Ratio: 1.8,
  /** Inference. */
  infer: 3000,
} as const;

/**
 * The per-sample work of one hidden layer: a forward pass reads `fwdEntries` list entries per
 * 32-lane chunk (each the 128-byte chunk of one of `fwdRows` active rows); the update (and, for
 * layer 2, the backward gather) visits `updRows` of those rows on `updGroupFraction` of the
 * 4-lane groups. The active rows of a sample are drawn from `rowPool` of the `nIn` rows.
 */
export interface LayerShape {
  /** Rows of the weight matrices (inputs of the layer). */
  nIn: number;
  /** Lanes per row (neurons, a multiple of 32). */
  P: number;
  /** Active rows of a forward pass (inputs that fire at least once). */
  fwdRows: number;
  /** List entries of a forward pass per 32-lane chunk (Σ over steps of the list lengths). */
  fwdEntries: number;
  /** Rows of an update (a subset of the active rows). */
  updRows: number;
  /** Fraction of the row's 4-lane groups that an update changes. */
  updGroupFraction: number;
  /** Rows the active rows are drawn from (fwdRows / rowPool = the share of consecutive samples). */
  rowPool: number;
}

/**
 * The two hidden layers of the MNIST network in training, measured on 1,000 samples of the epoch-0
 * shuffle from Kaiming seed-0 weights (desire.wasm of 2026-11-28; updates: the last 500): layer 1
 * 141.8 active rows, 585.5 entries, 137.3 update rows, 41.5 % of the groups, 46.8 % of the active
 * rows active in the sample before (so rowPool = 142 / 0.468); layer 2 286.1, 1,363.5, 249.4,
 * 25.7 %, 29.7 %. (Inference on the test set: 133.9 rows and 566.9 entries; 343.6 and 1,551.8.)
 * Layer 1's entries are those of the forward pass before its class rows (commit 1d590ca, see
 * assembly/forward.ts), which list inputs that share a word once.
 */
export const MNIST_LAYERS: readonly [LayerShape, LayerShape] = [
  {
    nIn: 784,
    P: 1600,
    fwdRows: 142,
    fwdEntries: 586,
    updRows: 137,
    updGroupFraction: 0.415,
    rowPool: 303,
  },
  {
    nIn: 1600,
    P: 800,
    fwdRows: 286,
    fwdEntries: 1364,
    updRows: 249,
    updGroupFraction: 0.257,
    rowPool: 963,
  },
];

/**
 * The per-sample work of the backward pass of layer 2 (trainSample computes only the sums that
 * the first layer's update reads): `rows` of the layer's active rows (inputs that fired and were
 * kept), on `groupFraction` of the 4-lane groups (those with a non-zero factor).
 */
export interface BackwardShape {
  /** Rows read (at most layer 2's fwdRows). */
  rows: number;
  /** Fraction of the row's 4-lane groups read. */
  groupFraction: number;
}

/**
 * MNIST in training, measured as {@link MNIST_LAYERS}: 258.9 rows, 47.2 % of the groups. (The
 * raw export `backwardLayer(2)`, which the bench's kernel table times, computes all 1,600 rows.)
 */
export const MNIST_BACKWARD: BackwardShape = { rows: 259, groupFraction: 0.472 };

/** Options of {@link runBounds}; every field has a default. */
export interface BoundsOptions {
  /** Time steps (list count per chunk). Default 20. */
  T?: number;
  /** The two hidden layers' shapes. Default {@link MNIST_LAYERS}. */
  layers?: readonly [LayerShape, LayerShape];
  /** The backward gather of layer 2. Default {@link MNIST_BACKWARD}. */
  backward?: BackwardShape;
  /** Rows of the L1 list-sum case. Default 8. */
  hotRows?: number;
  /** Lanes of those rows (a multiple of 32). Default 256 (8 rows × 1 KiB). */
  hotLanes?: number;
  /** Interleaved rounds; every figure is the median over them. Default 7. */
  repeats?: number;
  /** Milliseconds of each in-cache measurement (L1 list sum, column sum) per round. Default 100. */
  ms?: number;
  /** Timed calls (samples) of each cold, warm and training-order case per round. Default 24. */
  calls?: number;
  /** Run the two-thread section (2 Web Workers). Default true. */
  threads?: boolean;
  /** Milliseconds of each 1- or 2-thread measurement per round. Default 200. */
  scaleMs?: number;
  /** Row sets per layer (one per sample, used in turn). Default 16. */
  pool?: number;
  /** Also time the old design's column sum (bench/limit.ts, 16 KiB of rows). Default true. */
  columnSum?: boolean;
  /** Seed of the random rows, steps, groups and data. Default 1. */
  seed?: number;
  /** Receives one line per phase of the run (for stderr). */
  progress?: (line: string) => void;
}

/** The machine and the run. */
export interface BoundsMachine {
  /** CPU model from /proc/cpuinfo ("unknown" elsewhere). */
  cpu: string;
  /** navigator.hardwareConcurrency. */
  cores: number;
  /** Deno version. */
  deno: string;
  /** V8 version. */
  v8: string;
  /** ISO date of the start of the run. */
  date: string;
  /** Load averages at the start of the run (empty where unavailable). */
  loadAverage: number[];
  /** Load averages at the end of the run (empty where unavailable). */
  loadAverageEnd: number[];
  /**
   * CPU time of other processes during the run, in cores (busy time in /proc/stat minus this
   * process's and its children's, over the wall time; null where unavailable): anything above
   * a few hundredths means that something else ran and the figures are disturbed.
   */
  otherCores: number | null;
  /** Steal time during the run, in cores (the hypervisor ran something else; null: unknown). */
  stealCores: number | null;
}

/**
 * Cache state of a case (see the module documentation); "inferOrder" (f1, f2 of consecutive
 * samples and nothing else) only for the list sums.
 */
export type CacheState = "cold" | "warm" | "order" | "inferOrder";

/** A list-sum (forward) case. */
export interface ForwardBound {
  /** "l1" (rows in L1), or phase-state: "f1-cold", "f1-warm", "f1-order", "f1-inferOrder", …. */
  id: string;
  /** 0 for the L1 case, else the layer. */
  layer: 0 | 1 | 2;
  /** null for the L1 case. */
  state: CacheState | null;
  /** Text label. */
  label: string;
  /** Distinct rows per call (for the L1 case: the rows the entries are drawn from). */
  rows: number;
  /** 32-lane chunks per call (lanes / 32). */
  chunks: number;
  /** List entries per chunk (Σ over the T steps). */
  entriesPerChunk: number;
  /** Median µs per call; a call is one sample's list sums of the layer (L1 case: one pass). */
  microsPerCall: number;
  /** ns per (chunk, entry): 8 v128 loads and i32x4 adds. */
  nsPerChunkEntry: number;
  /** i32 lane-adds per second (32 per chunk-entry). */
  laneAddsPerSecond: number;
  /** Bytes of row chunks read per second (128 per chunk-entry). */
  bytesPerSecond: number;
  /** µs per call of each round. */
  runs: number[];
}

/** An update or backward-gather case. */
export interface RowsBound {
  /** Phase and state: "u1-cold", "u1n-cold", "u1-warm", "u1-order", "b2-cold", …. */
  id: string;
  /** The phase. */
  phase: Phase;
  /** The state. */
  state: CacheState;
  /** Text label. */
  label: string;
  /** The layer. */
  layer: 1 | 2;
  /** Rows per call. */
  rows: number;
  /** Lanes per row. */
  lanes: number;
  /** 4-lane groups per row. */
  groups: number;
  /** groups / (lanes / 4). */
  groupFraction: number;
  /** Fraction of the row's 64-byte lines that hold a listed group (mean over the sets). */
  lineFraction: number;
  /** Matrices touched: 2 for an update with the forward copy, else 1. */
  matrices: 1 | 2;
  /** Median µs per call (one sample's phase). */
  microsPerCall: number;
  /** Bytes of the listed groups per second (16 per group and matrix). */
  groupBytesPerSecond: number;
  /** Bytes of the 64-byte lines holding them per second (64 per line and matrix). */
  lineBytesPerSecond: number;
  /** µs per call of each round. */
  runs: number[];
}

/** The old design's column sum (bench/limit.ts), for comparison. */
export interface ColumnSumBound {
  /** Text label. */
  label: string;
  /** Working set of the rows, bytes. */
  workingSetBytes: number;
  /** i32 lane-adds (one per lane, read-modify-write of dst) per second, median. */
  laneAddsPerSecond: number;
  /** Row bytes read per second. */
  bytesPerSecond: number;
  /** Lane-adds per second of each round. */
  runs: number[];
}

/** The read-modify-write stream that touches the other layer's matrices before cold calls. */
export interface StreamBound {
  /** Bytes per touch (mean; the master and forward matrices of one layer). */
  bytes: number;
  /** Bytes streamed (each read and written once) per second, median. */
  bytesPerSecond: number;
  /** Bytes per second of each round. */
  runs: number[];
}

/** One pattern run by one worker alone and by two workers at once. */
export interface ScalingBound {
  /**
   * "alu", "listL1", "update", "inferSkeleton", "skeleton", "sharedSkeleton", "panelSkeleton",
   * "stream".
   */
  id: ScaleKind;
  /**
   * "copies": each worker on its own matrices (two independent copies, the 2-worker rate the
   * sum of both); "panels": both on one network in panels (the current layout, as
   * assembly/threads.ts runs a step: each worker's lanes of a layer a row-major sub-matrix of
   * its own), each doing its half of every sample in lockstep (the 2-worker rate the samples per
   * second of that one network); "shared": the same on the one network's full-width matrices (the
   * former layout: both threads' lanes in every row, kept for comparison). For both, 1 worker is
   * the whole step on the full-width matrices.
   */
  network: "copies" | "shared" | "panels";
  /** Text label. */
  label: string;
  /** Unit of the rates ("lane-ops", "lane-adds", "samples", "bytes"). */
  unit: string;
  /** Units per second, one worker alone (median). */
  perSecond1: number;
  /** Units per second, both workers together (sum of the two; shared: of the one network; median). */
  perSecond2: number;
  /** perSecond2 / perSecond1. */
  speedup: number;
  /** Per round: the 2-worker sum over the 1-worker rate of the same round. */
  pairedSpeedups: number[];
  /** Rates of each round, 1 worker. */
  runs1: number[];
  /** Rates of each round, 2 workers (sum). */
  runs2: number[];
}

/** The bounded phases of one sample in one cache state, µs. */
export interface SampleFloor {
  /** f1, f2. */
  forward: [number, number];
  /** b2. */
  backward: number;
  /** u1, u2 (with the forward copy). */
  update: [number, number];
  /** Σ forward (inference: in training order, f1 and f2 of consecutive samples without the rest). */
  infer: number;
  /** Σ forward + backward + Σ update. */
  train: number;
}

/** What the bounds allow per sample (only the bounded phases: nothing else of a step). */
export interface BoundsFloors {
  /** Every phase on the same rows again (L2): the floor. */
  warm: SampleFloor;
  /** One sample after another, in training order (inference: forward only). */
  order: SampleFloor;
  /** Every phase after the other layer's matrices were streamed through. */
  cold: SampleFloor;
  /**
   * As warm, each phase from its fastest round (this machine's speed flips by up to 2× for
   * seconds at a time, so the median and the best round can differ much).
   */
  warmBest: SampleFloor;
  /** As order, each phase from its fastest round. */
  orderBest: SampleFloor;
  /** The forward phases at the L1 list-sum rate (the register-bound floor), µs. */
  l1Forward: [number, number];
  /** The same at the best round's L1 rate. */
  l1ForwardBest: [number, number];
  /** The forward phases in training order on one worker, µs per sample (null: no threads). */
  inferSkeletonMicros: number | null;
  /** Their 2-worker speedup (null without the thread section). */
  inferSkeletonSpeedup: number | null;
  /** The training order on one worker, µs per sample (null without the thread section). */
  skeletonMicros: number | null;
  /** Its 2-worker speedup (null without the thread section). */
  skeletonSpeedup: number | null;
  /**
   * The former layout (full-width rows shared by both threads, kept for comparison): the
   * training order on one worker doing the whole step on the one network's full-width matrices,
   * µs per sample (null without the thread section).
   */
  sharedSkeletonMicros: number | null;
  /**
   * The former layout: two workers sharing that network's full-width rows, each doing half of
   * every phase, over one (null: no threads).
   */
  sharedSkeletonSpeedup: number | null;
  /**
   * The bound of 2-thread training in the current layout (panels, as assembly/threads.ts runs a
   * step): the lower of skeletonSpeedup and panelSkeletonSpeedup (the same as
   * trainTwoThreadPanelSpeedup). Before the panels it was the former layout's bound, now
   * trainTwoThreadFormerSpeedup.
   */
  trainTwoThreadSpeedup: number | null;
  /** Which one it is: "copies" (skeleton) or "panels" (panelSkeleton); null without threads. */
  trainTwoThreadFrom: "copies" | "panels" | null;
  /**
   * The bound of 2-thread training in the former layout (full-width rows shared by both
   * threads): the lower of skeletonSpeedup and sharedSkeletonSpeedup (null: no threads).
   */
  trainTwoThreadFormerSpeedup: number | null;
  /** Which one it is: "copies" (skeleton) or "shared" (sharedSkeleton); null without threads. */
  trainTwoThreadFormerFrom: "copies" | "shared" | null;
  /**
   * The current layout (panels): the 1-worker time of the panel variant, the same whole step on
   * the full-width matrices as sharedSkeletonMicros, measured in its own turn, µs per sample
   * (null: no threads).
   */
  panelSkeletonMicros: number | null;
  /**
   * The current layout: two workers on one network in panels (each its lanes' sub-matrices),
   * over one (null: no threads).
   */
  panelSkeletonSpeedup: number | null;
  /** The same as trainTwoThreadSpeedup (the current layout's bound); kept for existing consumers. */
  trainTwoThreadPanelSpeedup: number | null;
  /** The same as trainTwoThreadFrom; kept for existing consumers. */
  trainTwoThreadPanelFrom: "copies" | "panels" | null;
}

/** The result of {@link runBounds}: plain data (JSON-serializable). */
export interface BoundsResult {
  /** Machine and date. */
  machine: BoundsMachine;
  /** The resolved options and facts of the run. */
  settings: {
    T: number;
    layers: LayerShape[];
    backward: BackwardShape;
    hotRows: number;
    hotLanes: number;
    repeats: number;
    ms: number;
    calls: number;
    scaleMs: number;
    pool: number;
    seed: number;
    /** Shift of the forward copy (fwd = (master + 2^(fsh−1)) >> fsh). */
    fsh: number;
    /** Milliseconds to compile the AssemblyScript kernels (0 when cached in this process). */
    compileMs: number;
    /** Bytes of the shared memory. */
    memoryBytes: number;
    /** Every kernel's result matched a plain TypeScript loop before the timing. */
    verified: boolean;
    /** Seconds of the whole run. */
    seconds: number;
  };
  /** List sums: L1, then f1 and f2 cold, warm, in training order. */
  forward: ForwardBound[];
  /** Updates (u1, u1n, u2, u2n) and the backward gather (b2) in their states. */
  rows: RowsBound[];
  /** The old column sum (null when not measured). */
  columnSum: ColumnSumBound | null;
  /** The touch stream. */
  stream: StreamBound;
  /** One vs two workers (empty without the thread section). */
  scaling: ScalingBound[];
  /** Floors per sample. */
  floors: BoundsFloors;
}

// ---------------------------------------------------------------------------- compile, link

/** The compiler, pinned as in deno.json's build tasks (and deno.lock). */
const ASC = "npm:assemblyscript@0.28.20/asc";

/** asc flags: those of the `threads` target of asconfig.json. */
const ASC_ARGS = [
  "--optimizeLevel",
  "3",
  "--shrinkLevel",
  "0",
  "--noAssert",
  "--runtime",
  "stub",
  "--enable",
  "simd,threads",
  "--importMemory",
  "--sharedMemory",
  "--initialMemory",
  "1",
  "--maximumMemory",
  "65536",
  "--use",
  "abort=",
];

let compiled: Promise<{ module: WebAssembly.Module; compileMs: number }> | undefined;

/**
 * Compiles the bound kernels (once per process) with the pinned asc, in a child process (`deno
 * run -A npm:assemblyscript@0.28.20/asc`, as the build tasks run it): the compiler is itself a
 * large WebAssembly module (binaryen), and in this process V8 would go on optimizing it in the
 * background while the kernels are timed, stealing a core and delaying the optimization of the
 * kernels. `compileMs` is the time of the first call.
 */
export function compileBoundsKernels(): Promise<{ module: WebAssembly.Module; compileMs: number }> {
  compiled ??= (async () => {
    const t0 = performance.now();
    const dir = await Deno.makeTempDir({ prefix: "desire-bounds-" });
    try {
      const src = `${dir}/bounds_kernels.ts`, out = `${dir}/bounds_kernels.wasm`;
      await Deno.writeTextFile(src, BOUNDS_KERNELS_SOURCE);
      const r = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", ASC, src, ...ASC_ARGS, "-o", out],
        cwd: new URL("..", import.meta.url),
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).output();
      if (!r.success) {
        const text = new TextDecoder().decode(new Uint8Array([...r.stdout, ...r.stderr]));
        throw new Error(`Cannot compile the bound kernels (asc exit ${r.code}):\n${text}`);
      }
      const module = await WebAssembly.compile(await Deno.readFile(out));
      return { module, compileMs: performance.now() - t0 };
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  })();
  return compiled;
}

/** A shared memory of at least `bytes` bytes (fixed size). */
export function boundsMemory(bytes: number): WebAssembly.Memory {
  const pages = Math.ceil(bytes / 65536);
  return new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
}

// ------------------------------------------------------------------------------------ layout

const WMAX = 1 << 28;

/** mulberry32. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) | 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** k distinct integers of [0, n), ascending. */
function pick(n: number, k: number, rnd: () => number): number[] {
  const a = Array.from({ length: n }, (_, i) => i);
  for (let i = 0; i < k; i++) {
    const j = i + Math.floor(rnd() * (n - i));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a.slice(0, k).sort((x, y) => x - y);
}

/** Resolved options. */
type Resolved = Required<Omit<BoundsOptions, "progress" | "layers">> & {
  layers: [LayerShape, LayerShape];
};

function resolve(o: BoundsOptions): Resolved {
  const r: Resolved = {
    T: o.T ?? 20,
    layers: [{ ...(o.layers ?? MNIST_LAYERS)[0] }, { ...(o.layers ?? MNIST_LAYERS)[1] }],
    backward: { ...(o.backward ?? MNIST_BACKWARD) },
    hotRows: o.hotRows ?? 8,
    hotLanes: o.hotLanes ?? 256,
    repeats: o.repeats ?? 7,
    ms: o.ms ?? 100,
    calls: o.calls ?? 24,
    threads: o.threads ?? true,
    scaleMs: o.scaleMs ?? 200,
    pool: o.pool ?? 16,
    columnSum: o.columnSum ?? true,
    seed: o.seed ?? 1,
  };
  const int = (v: number, lo: number, what: string) => {
    if (!Number.isInteger(v) || v < lo) throw new RangeError(`${what} must be an integer ≥ ${lo}`);
  };
  int(r.T, 1, "T");
  if (r.T > 32) throw new RangeError("T must be at most 32");
  int(r.hotRows, 1, "hotRows");
  int(r.hotLanes, 32, "hotLanes");
  if (r.hotLanes % 32) throw new RangeError("hotLanes must be a multiple of 32");
  int(r.repeats, 1, "repeats");
  int(r.calls, 1, "calls");
  int(r.pool, 1, "pool");
  if (!(r.ms > 0) || !(r.scaleMs > 0)) throw new RangeError("ms and scaleMs must be > 0");
  for (const [i, l] of r.layers.entries()) {
    const w = `layer ${i + 1}`;
    int(l.nIn, 1, `${w} nIn`);
    int(l.P, 32, `${w} P`);
    if (l.P % 32) throw new RangeError(`${w} P must be a multiple of 32`);
    int(l.fwdRows, 1, `${w} fwdRows`);
    int(l.updRows, 1, `${w} updRows`);
    int(l.rowPool, 1, `${w} rowPool`);
    int(l.fwdEntries, l.fwdRows, `${w} fwdEntries`);
    if (l.updRows > l.fwdRows || l.fwdRows > l.rowPool || l.rowPool > l.nIn) {
      throw new RangeError(`${w}: need updRows ≤ fwdRows ≤ rowPool ≤ nIn`);
    }
    if (l.fwdEntries > l.fwdRows * r.T) throw new RangeError(`${w}: fwdEntries > fwdRows × T`);
    if (!(l.updGroupFraction > 0 && l.updGroupFraction <= 1)) {
      throw new RangeError(`${w}: updGroupFraction must be in (0, 1]`);
    }
  }
  int(r.backward.rows, 1, "backward rows");
  if (r.backward.rows > r.layers[1].fwdRows) {
    throw new RangeError("backward rows must be at most layer 2's fwdRows");
  }
  if (!(r.backward.groupFraction > 0 && r.backward.groupFraction <= 1)) {
    throw new RangeError("backward groupFraction must be in (0, 1]");
  }
  return r;
}

/**
 * The memory layout of {@link runBounds} for `options` with `slots` slots (2 with the thread
 * section, which adds the panel variant's regions), and the function that fills a memory of at
 * least plan.bytes bytes. Throws a RangeError on bad options.
 */
export function boundsLayout(
  options: BoundsOptions,
  slots: number,
): { plan: Plan; fill: (mem: ArrayBufferLike) => void } {
  return layout(resolve(options), slots);
}

/** Lays out the memory (plan) and returns the function that fills it. */
function layout(o: Resolved, slots: number): { plan: Plan; fill: (mem: ArrayBufferLike) => void } {
  let next = 65536;
  const alloc = (bytes: number) => {
    const p = next;
    next += Math.ceil(bytes / 64) * 64;
    return p;
  };
  const T = o.T;
  const rnd = random(o.seed);
  const fills: ((m: Int32Array) => void)[] = [];
  const u32 = (values: number[]) => {
    const p = alloc(4 * values.length);
    fills.push((m) => m.set(values, p >> 2));
    return p;
  };
  const vector = (lanes: number, lo: number, hi: number) => {
    const p = alloc(4 * lanes);
    const values = Array.from({ length: lanes }, () => lo + Math.floor(rnd() * (hi - lo)));
    fills.push((m) => m.set(values, p >> 2));
    return p;
  };
  /** Per-step lists from (row, step) pairs: the bounds, and the rows in list order. */
  const stepLists = (pairs: [number, number][]) => {
    const per: number[][] = Array.from({ length: T }, () => []);
    for (const [row, t] of pairs) per[t].push(row);
    const beg = [0];
    for (const l of per) beg.push(beg[beg.length - 1] + l.length);
    return { beg, rows: per.flat() };
  };
  /** Rows (indices, a subset of `rows`) and 4-lane groups (indices) of an update or gather. */
  const draw = (rows: number[], n: number, P: number, fraction: number) => {
    const nGroups = Math.max(1, Math.round(fraction * (P / 4)));
    const picked = pick(rows.length, n, rnd).map((a) => rows[a]);
    return { rows: picked, groups: pick(P / 4, nGroups, rnd) };
  };
  /** The u32 lists of a drawn set: row offsets, and the groups in [g0, g1) as offsets from g0. */
  const rowSet = (
    d: { rows: number[]; groups: number[] },
    rowBytes: number,
    g0: number,
    g1: number,
  ): UpdSet => {
    const groups = d.groups.filter((g) => g >= g0 && g < g1).map((g) => 16 * (g - g0));
    return {
      rows: u32(d.rows.map((r) => r * rowBytes)),
      nRows: d.rows.length,
      groups: u32(groups),
      nGroups: groups.length,
      lines: new Set(groups.map((g) => g >> 6)).size,
    };
  };
  type Drawn = ReturnType<typeof draw>;
  const drawn: { steps: ReturnType<typeof stepLists>[]; upd: Drawn[]; bwd: Drawn[] }[] = [];
  const layers = o.layers.map((s, l): LayerPlan => {
    const rowBytes = 4 * s.P;
    const sets: ListSet[] = [], upd: UpdSet[] = [], bwd: UpdSet[] = [];
    const d: (typeof drawn)[number] = { steps: [], upd: [], bwd: [] };
    drawn.push(d);
    const poolRows = pick(s.nIn, s.rowPool, rnd);
    for (let k = 0; k < o.pool; k++) {
      const rows = pick(s.rowPool, s.fwdRows, rnd).map((a) => poolRows[a]);
      // Entries per row: ⌊E/R⌋ or one more, on distinct random steps (rows in ascending order
      // within each step, as buildLists appends them).
      const extra = new Set(pick(s.fwdRows, s.fwdEntries % s.fwdRows, rnd));
      const pairs: [number, number][] = [];
      rows.forEach((row, a) => {
        const n = Math.floor(s.fwdEntries / s.fwdRows) + (extra.has(a) ? 1 : 0);
        for (const t of pick(T, n, rnd)) pairs.push([row, t]);
      });
      const steps = stepLists(pairs);
      d.steps.push(steps);
      sets.push({
        beg: u32(steps.beg),
        ent: u32(steps.rows.map((r) => r * rowBytes)),
        entries: pairs.length,
      });
      d.upd.push(draw(rows, s.updRows, s.P, s.updGroupFraction));
      upd.push(rowSet(d.upd[k], rowBytes, 0, s.P / 4));
      if (l === 1) {
        d.bwd.push(draw(rows, o.backward.rows, s.P, o.backward.groupFraction));
        bwd.push(rowSet(d.bwd[k], rowBytes, 0, s.P / 4));
      }
    }
    const updRow = vector(s.P, -1024, 1024);
    const kvec = vector(s.P, -20, 21);
    return { nIn: s.nIn, P: s.P, rowBytes, lists: sets, upd, bwd, updRow, kvec };
  }) as [LayerPlan, LayerPlan];
  // The L1 case: entries per step as in layer 1, drawn from hotRows rows.
  const hotBytes = 4 * o.hotLanes;
  const hotPairs: [number, number][] = [];
  for (let q = 0; q < o.layers[0].fwdEntries; q++) {
    hotPairs.push([Math.floor(rnd() * o.hotRows), q % T]);
  }
  hotPairs.sort((a, b) => a[1] - b[1] || a[0] - b[0]);
  const hotSteps = stepLists(hotPairs);
  const hotList: ListSet = {
    beg: u32(hotSteps.beg),
    ent: u32(hotSteps.rows.map((r) => r * hotBytes)),
    entries: hotPairs.length,
  };
  const maxChunks = Math.max(o.hotLanes, ...o.layers.map((l) => l.P)) / 32;
  const maxRows = Math.max(o.backward.rows, ...o.layers.map((l) => l.updRows));
  const slotPlans: SlotPlan[] = [];
  for (let s = 0; s < slots; s++) {
    const master: number[] = [], fwd: number[] = [], pairBytes: number[] = [];
    for (const l of layers) {
      const bytes = l.nIn * l.rowBytes;
      master.push(alloc(bytes));
      fwd.push(alloc(bytes));
      pairBytes.push(2 * bytes);
    }
    slotPlans.push({
      master: master as [number, number],
      fwd: fwd as [number, number],
      pairBytes: pairBytes as [number, number],
      hot: alloc(o.hotRows * hotBytes),
      out: alloc(128 * T),
      res: alloc(128 * maxChunks),
      sums: alloc(4 * maxRows),
    });
  }
  // The panel variant (with two slots: the thread section): part p's panels of both layers,
  // its lists and outputs, in a region of its own after the slots.
  const nPanels = slots >= 2 ? 2 : 0;
  const panels: PanelPlan[] = [];
  for (let p = 0; p < nPanels; p++) {
    const pl = layers.map((L, l): PanelLayer => {
      const lane0 = panelLanes(L.P, p, nPanels), lanes = panelLanes(L.P, p + 1, nPanels) - lane0;
      const rowBytes = 4 * lanes, g0 = lane0 / 4, g1 = g0 + lanes / 4;
      const master = alloc(L.nIn * rowBytes), fwd = alloc(L.nIn * rowBytes);
      return {
        lane0,
        lanes,
        rowBytes,
        master,
        fwd,
        lists: drawn[l].steps.map((st, k) => ({
          beg: L.lists[k].beg,
          ent: u32(st.rows.map((r) => r * rowBytes)),
          entries: st.rows.length,
        })),
        upd: drawn[l].upd.map((d) => rowSet(d, rowBytes, g0, g1)),
        bwd: drawn[l].bwd.map((d) => rowSet(d, rowBytes, g0, g1)),
      };
    }) as [PanelLayer, PanelLayer];
    panels.push({ layers: pl, res: alloc(128 * maxChunks), sums: alloc(4 * maxRows) });
  }
  const plan: Plan = {
    T,
    fsh: FSH,
    layers,
    hotList,
    hotChunks: o.hotLanes / 32,
    slots: slotPlans,
    panels,
    bytes: next,
  };
  const seed = o.seed;
  const fill = (buf: ArrayBufferLike) => {
    const m = new Int32Array(buf);
    for (const f of fills) f(m);
    const r2 = random(seed ^ 0x5bd1e995);
    for (const sp of slotPlans) {
      for (let l = 0; l < 2; l++) {
        const a = sp.master[l] >> 2, b = sp.fwd[l] >> 2, n = layers[l].nIn * layers[l].P;
        for (let k = 0; k < n; k++) {
          const v = Math.floor(r2() * (1 << 23)) - (1 << 22);
          m[a + k] = v;
          m[b + k] = (v + (1 << (FSH - 1))) >> FSH;
        }
      }
      for (let k = 0; k < (o.hotRows * hotBytes) >> 2; k++) {
        m[(sp.hot >> 2) + k] = Math.floor(r2() * 65536) - 32768;
      }
    }
    fillPanels(buf, plan);
  };
  return { plan, fill };
}

// ---------------------------------------------------------------------- TypeScript references

/** The plain-loop result of listSum: per chunk the 32 sums (res), and the last chunk per step. */
export function listSumReference(
  mem: Int32Array,
  base: number,
  beg: ArrayLike<number>,
  ent: ArrayLike<number>,
  T: number,
  chunks: number,
): { res: Int32Array; out: Int32Array } {
  const res = new Int32Array(32 * chunks), out = new Int32Array(32 * T);
  for (let c = 0; c < chunks; c++) {
    const acc = new Int32Array(32);
    for (let t = 0; t < T; t++) {
      for (let q = beg[t]; q < beg[t + 1]; q++) {
        const p = (base + 128 * c + ent[q]) >> 2;
        for (let j = 0; j < 32; j++) acc[j] = (acc[j] + mem[p + j]) | 0;
      }
      if (c === chunks - 1) out.set(acc, 32 * t);
    }
    res.set(acc, 32 * c);
  }
  return { res, out };
}

/** The plain-loop xorshift32 of the `alu` kernel. */
export function aluReference(n: number, seed: number): number {
  let r = 0;
  for (let k = 0; k < 16; k++) {
    let x = (seed + k) | 0;
    for (let i = 0; i < n; i++) {
      x = (x ^ (x << 13)) | 0;
      x = (x ^ (x >>> 17)) | 0;
      x = (x ^ (x << 5)) | 0;
    }
    r ^= x;
  }
  return r | 0;
}

/**
 * The plain-loop update of rows `rows` (byte offsets) on groups `groups` (byte offsets in the
 * row): returns the expected master and fwd contents of each row and the clamped-lane count.
 */
export function updateReference(
  mem: Int32Array,
  master: number,
  fwd: number,
  rows: ArrayLike<number>,
  groups: ArrayLike<number>,
  upd: number,
  rowBytes: number,
  fsh: number,
): { master: Int32Array[]; fwd: Int32Array[]; saturated: number } {
  const outM: Int32Array[] = [], outF: Int32Array[] = [];
  let saturated = 0;
  for (let a = 0; a < rows.length; a++) {
    const m = mem.slice((master + rows[a]) >> 2, (master + rows[a] + rowBytes) >> 2);
    const f = mem.slice((fwd + rows[a]) >> 2, (fwd + rows[a] + rowBytes) >> 2);
    for (let g = 0; g < groups.length; g++) {
      for (let j = 0; j < 4; j++) {
        const i = (groups[g] >> 2) + j;
        const w = (m[i] + mem[(upd >> 2) + i]) | 0;
        const c = Math.max(-WMAX, Math.min(WMAX, w));
        if (c !== w) saturated++;
        m[i] = c;
        f[i] = (c + (1 << (fsh - 1))) >> fsh;
      }
    }
    outM.push(m);
    outF.push(f);
  }
  return { master: outM, fwd: outF, saturated };
}

/** The plain-loop result of gatherRows: per row, Σ over the groups' lanes of row · kvec. */
export function gatherReference(
  mem: Int32Array,
  mat: number,
  rows: ArrayLike<number>,
  groups: ArrayLike<number>,
  kvec: number,
): Int32Array {
  const out = new Int32Array(rows.length);
  for (let a = 0; a < rows.length; a++) {
    let s = 0;
    for (let g = 0; g < groups.length; g++) {
      for (let j = 0; j < 4; j++) {
        const i = (groups[g] >> 2) + j;
        s = (s + Math.imul(mem[((mat + rows[a]) >> 2) + i], mem[(kvec >> 2) + i])) | 0;
      }
    }
    out[a] = s;
  }
  return out;
}

function sameArray(a: Int32Array, b: Int32Array, what: string): void {
  if (a.length !== b.length) throw new Error(`${what}: length ${a.length} ≠ ${b.length}`);
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== b[i]) throw new Error(`${what}: element ${i} is ${a[i]}, expected ${b[i]}`);
  }
}

/** Runs every kernel once on the plan's data and compares with the TypeScript loops; throws. */
function verify(k: BoundsKernels, buf: ArrayBufferLike, plan: Plan): void {
  const mem = new Int32Array(buf);
  const u = new Uint32Array(buf);
  const sp = plan.slots[0];
  const T = plan.T;
  const check = (base: number, list: ListSet, chunks: number, what: string) => {
    k.listSum(base, list.beg, list.ent, T, chunks, sp.out, sp.res, 1);
    const beg = u.slice(list.beg >> 2, (list.beg >> 2) + T + 1);
    const ent = u.slice(list.ent >> 2, (list.ent >> 2) + list.entries);
    const want = listSumReference(mem, base, beg, ent, T, chunks);
    sameArray(mem.slice(sp.res >> 2, (sp.res >> 2) + 32 * chunks), want.res, `${what} sums`);
    sameArray(mem.slice(sp.out >> 2, (sp.out >> 2) + 32 * T), want.out, `${what} step sums`);
  };
  check(sp.hot, plan.hotList, plan.hotChunks, "listSum (L1 rows)");
  for (let l = 0; l < 2; l++) {
    const L = plan.layers[l];
    check(sp.fwd[l], L.lists[0], L.P / 32, `listSum (layer ${l + 1})`);
    const s = L.upd[0];
    const rows = u.slice(s.rows >> 2, (s.rows >> 2) + s.nRows);
    const groups = u.slice(s.groups >> 2, (s.groups >> 2) + s.nGroups);
    for (const withFwd of [true, false]) {
      const want = updateReference(
        mem,
        sp.master[l],
        sp.fwd[l],
        rows,
        groups,
        L.updRow,
        L.rowBytes,
        plan.fsh,
      );
      const fwdRow = (a: number) => {
        const p = (sp.fwd[l] + rows[a]) >> 2;
        return mem.slice(p, p + L.P);
      };
      const fwdBefore = Array.from(rows, (_, a) => fwdRow(a));
      const f = withFwd ? k.updateRows : k.updateRowsNoFwd;
      const sat = f(sp.master[l], sp.fwd[l], s.rows, s.nRows, s.groups, s.nGroups, L.updRow, FSH);
      const what = `update${withFwd ? "Rows" : "RowsNoFwd"} (layer ${l + 1})`;
      if (sat !== want.saturated) {
        throw new Error(`${what}: ${sat} clamps, expected ${want.saturated}`);
      }
      for (let a = 0; a < rows.length; a++) {
        const pm = (sp.master[l] + rows[a]) >> 2, pf = (sp.fwd[l] + rows[a]) >> 2;
        sameArray(mem.slice(pm, pm + L.P), want.master[a], `${what} master row ${a}`);
        // updateRowsNoFwd leaves the forward copy alone.
        sameArray(
          mem.slice(pf, pf + L.P),
          withFwd ? want.fwd[a] : fwdBefore[a],
          `${what} fwd ${a}`,
        );
      }
    }
  }
  {
    const L = plan.layers[1], s = L.bwd[0];
    const rows = u.slice(s.rows >> 2, (s.rows >> 2) + s.nRows);
    const groups = u.slice(s.groups >> 2, (s.groups >> 2) + s.nGroups);
    k.gatherRows(sp.fwd[1], s.rows, s.nRows, s.groups, s.nGroups, L.kvec, sp.sums);
    sameArray(
      mem.slice(sp.sums >> 2, (sp.sums >> 2) + s.nRows),
      gatherReference(mem, sp.fwd[1], rows, groups, L.kvec),
      "gatherRows (layer 2)",
    );
  }
  const a = k.alu(1000, 12345), b = aluReference(1000, 12345);
  if (a !== b) throw new Error(`alu: ${a}, expected ${b}`);
  const before = mem.slice(sp.hot >> 2, (sp.hot >> 2) + 256);
  k.stream(sp.hot, 1024, 7);
  sameArray(
    mem.slice(sp.hot >> 2, (sp.hot >> 2) + 256),
    before.map((v) => (v + 7) | 0),
    "stream",
  );
  k.stream(sp.hot, 1024, -7);
  sameArray(mem.slice(sp.hot >> 2, (sp.hot >> 2) + 256), before, "stream back");
}

/**
 * Checks that the parts of every phase of the shared network (sharedPhaseRunner, 2 parts run
 * one after the other) together compute what the whole phase computes (1 part: phaseRunner's
 * calls on slot 0, which verify checks against the TypeScript loops): the list sums of every
 * chunk and the last chunk's per-step sums, the gather's sums, and the updated master and
 * forward matrices and clamp counts. On sets 0 and 1 (of the pool); throws.
 */
function verifyShared(k: BoundsKernels, buf: ArrayBufferLike, plan: Plan): void {
  const mem = new Int32Array(buf);
  const sp = plan.slots[0];
  const whole = sharedPhaseRunner(k, plan, buf, 0, 1, 0);
  const parts = [0, 1].map((p) => sharedPhaseRunner(k, plan, buf, p, 2, 0));
  const region = (at: number, bytes: number) => mem.subarray(at >> 2, (at + bytes) >> 2);
  const spoil = (at: number, bytes: number) => region(at, bytes).fill(0x55555555);
  for (const i of [0, 1]) {
    for (const ph of ["f1", "f2", "b2"] as const) {
      // Outputs: the list sums of every chunk and the last chunk's per-step sums, or the gather's.
      const outs: [number, number][] = ph === "b2"
        ? [[sp.sums, 4 * plan.layers[1].bwd[i % plan.layers[1].bwd.length].nRows]]
        : [[sp.res, 4 * plan.layers[ph === "f1" ? 0 : 1].P], [sp.out, 128 * plan.T]];
      for (const [at, bytes] of outs) spoil(at, bytes);
      whole(ph, i);
      const want = outs.map(([at, bytes]) => region(at, bytes).slice());
      for (const [at, bytes] of outs) spoil(at, bytes);
      for (const run of parts) run(ph, i); // part 1 has the last chunk (its steps in `out`)
      outs.forEach(([at, bytes], j) =>
        sameArray(region(at, bytes).slice(), want[j], `${ph} in 2 parts (set ${i}), output ${j}`)
      );
    }
    for (const ph of ["u1", "u2", "u1n", "u2n"] as const) {
      const l = ph === "u1" || ph === "u1n" ? 0 : 1;
      const at = sp.master[l], bytes = sp.pairBytes[l]; // the master matrix, then its forward copy
      const before = region(at, bytes).slice();
      const sat = whole(ph, i);
      const want = region(at, bytes).slice();
      region(at, bytes).set(before);
      const satParts = parts.reduce((a, run) => a + run(ph, i), 0);
      if (satParts !== sat) {
        throw new Error(`${ph} in 2 parts: ${satParts} clamps, expected ${sat}`);
      }
      sameArray(region(at, bytes).slice(), want, `${ph} in 2 parts (set ${i}), matrices`);
    }
  }
}

/**
 * Checks that the panel parts of every phase (panelPhaseRunner on plan.panels, the parts run one
 * after the other) together compute what the whole phase computes on slot 0's full-width
 * matrices (sharedPhaseRunner with one part, which verifyShared checks): the list sums of every
 * chunk (the panels' `res` side by side) and the last chunk's per-step sums, the gather's sums
 * after the partials are added, and the updated master and forward matrices (the panels mapped
 * back to full-width lanes) and clamp counts. Copies slot 0's matrices into the panels first;
 * they stay equal. On sets 0 and 1 (of the pool); throws. Nothing to check without panels.
 */
export function verifyPanels(k: BoundsKernels, buf: ArrayBufferLike, plan: Plan): void {
  const n = plan.panels.length;
  if (!n) return;
  const mem = new Int32Array(buf);
  const sp = plan.slots[0];
  fillPanels(buf, plan);
  const whole = panelPhaseRunner(k, plan, buf, 0, 1, 0);
  const parts = plan.panels.map((_, p) => panelPhaseRunner(k, plan, buf, p, n, 0));
  const region = (at: number, bytes: number) => mem.subarray(at >> 2, (at + bytes) >> 2);
  const spoil = (at: number, bytes: number) => region(at, bytes).fill(0x55555555);
  for (const i of [0, 1]) {
    for (const l of [0, 1] as const) {
      const ph = l === 0 ? "f1" : "f2", P = plan.layers[l].P;
      spoil(sp.res, 4 * P);
      spoil(sp.out, 128 * plan.T);
      whole(ph, i);
      const want = region(sp.res, 4 * P).slice(), wantOut = region(sp.out, 128 * plan.T).slice();
      spoil(sp.out, 128 * plan.T);
      for (const pp of plan.panels) spoil(pp.res, 4 * pp.layers[l].lanes);
      for (const run of parts) run(ph, i); // the last part has the last chunk (steps in `out`)
      const got = new Int32Array(P);
      for (const pp of plan.panels) {
        got.set(region(pp.res, 4 * pp.layers[l].lanes), pp.layers[l].lane0);
      }
      sameArray(got, want, `${ph} in ${n} panels (set ${i}), chunk sums`);
      sameArray(region(sp.out, 128 * plan.T).slice(), wantOut, `${ph} in panels, step sums`);
    }
    {
      const bytes = 4 * plan.layers[1].bwd[i % plan.layers[1].bwd.length].nRows;
      spoil(sp.sums, bytes);
      whole("b2", i);
      const want = region(sp.sums, bytes).slice();
      spoil(sp.sums, bytes);
      for (const pp of plan.panels) spoil(pp.sums, bytes);
      for (const run of parts) run("b2", i);
      for (const run of parts) run("b2sum", i);
      sameArray(region(sp.sums, bytes).slice(), want, `b2 in ${n} panels (set ${i}), added`);
    }
    for (const ph of ["u1", "u2", "u1n", "u2n"] as const) {
      const l = ph === "u1" || ph === "u1n" ? 0 : 1;
      const at = sp.master[l], bytes = sp.pairBytes[l]; // the master matrix, then its forward copy
      sameArray(panelImage(buf, plan, l), region(at, bytes).slice(), `panels of layer ${l + 1}`);
      const sat = whole(ph, i);
      const satParts = parts.reduce((a, run) => a + run(ph, i), 0);
      if (satParts !== sat) {
        throw new Error(`${ph} in ${n} panels: ${satParts} clamps, expected ${sat}`);
      }
      sameArray(
        panelImage(buf, plan, l),
        region(at, bytes).slice(),
        `${ph} in ${n} panels (set ${i}), matrices`,
      );
    }
  }
}

/** Two workers with message queues. */
class Pool {
  #workers: Worker[] = [];
  #queues: unknown[][] = [];
  #waiting: ((m: unknown) => void)[][] = [];
  #ctl = new Int32Array(new SharedArrayBuffer(CTL_BYTES));

  static async start(
    n: number,
    module: WebAssembly.Module,
    memory: WebAssembly.Memory,
    plan: Plan,
  ) {
    const p = new Pool();
    for (let i = 0; i < n; i++) {
      const w = new Worker(new URL("./bounds_kernels.ts", import.meta.url).href, {
        type: "module",
      });
      p.#queues.push([]);
      p.#waiting.push([]);
      w.onmessage = (e: MessageEvent) => p.#deliver(i, e.data);
      w.onerror = (e: ErrorEvent) => {
        e.preventDefault();
        p.#deliver(i, { error: e.message });
      };
      p.#workers.push(w);
    }
    p.#workers.forEach((w, slot) => {
      const init: WorkerInit = { cmd: "init", slot, module, memory, ctl: p.#ctl.buffer, plan };
      w.postMessage(init);
    });
    try {
      await Promise.all(p.#workers.map((_, i) => p.#next(i)));
    } catch (e) {
      p.close();
      throw e;
    }
    return p;
  }

  #deliver(i: number, m: unknown) {
    const w = this.#waiting[i].shift();
    if (w) w(m);
    else this.#queues[i].push(m);
  }

  async #next(i: number): Promise<unknown> {
    const m = this.#queues[i].length
      ? this.#queues[i].shift()
      : await new Promise((res) => this.#waiting[i].push(res));
    const err = (m as { error?: string }).error;
    if (err) throw new Error(`bounds worker ${i}: ${err}`);
    return m;
  }

  /**
   * Runs `kind` on the given workers at once (worker i on slot i) for about ms; returns the sum
   * of their units/s. For "sharedSkeleton" and "panelSkeleton" the workers are one team (the
   * j-th listed worker its part j), which must end with the same number of steps.
   */
  async run(kind: ScaleKind, workers: number[], param: number, ms: number): Promise<number> {
    const ctl = this.#ctl;
    const team = isTeamKind(kind);
    Atomics.store(ctl, CTL_STOP, 0);
    Atomics.store(ctl, CTL_HALT, 0);
    const gen = Atomics.load(ctl, CTL_GO);
    workers.forEach((i, j) => {
      const msg: WorkerRun = {
        cmd: "run",
        kind,
        slot: i,
        param,
        gen,
        part: team ? j : 0,
        parts: team ? workers.length : 1,
      };
      this.#workers[i].postMessage(msg);
    });
    for (const i of workers) await this.#next(i); // armed
    Atomics.add(ctl, CTL_GO, 1);
    Atomics.notify(ctl, CTL_GO);
    await new Promise((res) => setTimeout(res, ms));
    Atomics.store(ctl, CTL_STOP, 1);
    let rate = 0;
    const calls = new Set<number>();
    for (const i of workers) {
      const d = (await this.#next(i)) as WorkerDone;
      rate += d.work / (d.ms / 1000);
      calls.add(d.calls);
    }
    if (team && calls.size > 1) {
      throw new Error(`the team's workers ran ${[...calls].join(" and ")} steps (not in lockstep)`);
    }
    return rate;
  }

  close() {
    for (const w of this.#workers) w.terminate();
    this.#workers = [];
  }
}

// ---------------------------------------------------------------------------- measurement

/** Calls fn(reps) with reps doubled until one call takes ≥ targetMs; returns reps. */
function calibrate(fn: (reps: number) => void, targetMs: number): number {
  let reps = 1;
  for (;;) {
    const t0 = performance.now();
    fn(reps);
    const dt = performance.now() - t0;
    if (dt >= targetMs || reps >= 1 << 24) return reps;
    reps *= dt < targetMs / 16 ? 8 : 2;
  }
}

function readText(path: string): string | undefined {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return undefined;
  }
}

function loadAverage(): number[] {
  try {
    return Deno.loadavg().map((x) => Number(x.toFixed(2)));
  } catch {
    return [];
  }
}

/** Busy and steal ticks of the machine, and this process's ticks (/proc; null elsewhere). */
function ticks(): { busy: number; steal: number; own: number; t: number } | null {
  const cpu = readText("/proc/stat")?.match(/^cpu\s+(.+)$/m)?.[1]?.trim().split(/\s+/).map(Number);
  const self = readText("/proc/self/stat");
  if (!cpu || cpu.length < 8 || !self) return null;
  // Fields after the command name: state is field 3, utime and stime fields 14 and 15, the
  // reaped children's (the compiler) cutime and cstime 16 and 17.
  const f = self.slice(self.lastIndexOf(")") + 2).split(" ").map(Number);
  const [user, nice, system, , , irq, softirq, steal] = cpu;
  return {
    busy: user + nice + system + irq + softirq,
    steal,
    own: f[11] + f[12] + f[13] + f[14],
    t: performance.now(),
  };
}

function machine(): BoundsMachine {
  const cpu = readText("/proc/cpuinfo")?.match(/^model name\s*:\s*(.+)$/m)?.[1]?.trim();
  return {
    cpu: cpu ?? "unknown",
    cores: navigator.hardwareConcurrency,
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    date: new Date().toISOString(),
    loadAverage: loadAverage(),
    loadAverageEnd: [],
    otherCores: null,
    stealCores: null,
  };
}

/** The layer (0 or 1) whose matrices a phase works on. */
function ownLayer(ph: Phase): 0 | 1 {
  return ph === "f1" || ph === "u1" || ph === "u1n" ? 0 : 1;
}

const PHASE_NAMES: Record<Phase, string> = {
  f1: "list sums, layer 1",
  f2: "list sums, layer 2",
  b2: "backward gather, layer 2",
  u1: "update, layer 1",
  u2: "update, layer 2",
  u1n: "update, layer 1, no forward copy",
  u2n: "update, layer 2, no forward copy",
};

const STATE_NAMES: Record<CacheState, string> = {
  cold: "cold",
  warm: "warm (the same rows again)",
  order: "in training order",
  inferOrder: "in inference order",
};

/**
 * Runs the bound micro-benchmarks: compiles the kernels, lays out and fills one shared memory,
 * checks every kernel against a TypeScript loop, warms up, then times `repeats` interleaved
 * rounds (the order of the cases reversed every other round; 1 and 2 workers alternate first)
 * and returns the medians. About 25 s with the defaults (another 1–3 s to compile).
 */
export async function runBounds(options: BoundsOptions = {}): Promise<BoundsResult> {
  const t00 = performance.now();
  const o = resolve(options);
  const say = options.progress ?? (() => {});
  const info = machine();
  const ticks0 = ticks();
  const wasCached = compiled !== undefined;
  say("  bounds: compiling the AssemblyScript kernels");
  const { module, compileMs } = await compileBoundsKernels();
  const slots = o.threads ? 2 : 1;
  const { plan, fill } = layout(o, slots);
  const memory = boundsMemory(plan.bytes);
  fill(memory.buffer);
  const k = await instantiateBoundsKernels(module, memory);
  say("  bounds: checking the kernels against TypeScript loops");
  verify(k, memory.buffer, plan);
  verifyShared(k, memory.buffer, plan);
  verifyPanels(k, memory.buffer, plan);
  warmUpKernels(k, plan, 0);
  await new Promise((res) => setTimeout(res, 50)); // the optimizing compiles run in the background
  const sp = plan.slots[0];
  const T = plan.T;
  const now = () => performance.now();
  const run = phaseRunner(k, plan, 0);

  // Touches the other layer's matrices (a read-modify-write stream); records the stream's time.
  let streamBytes = 0, streamMs = 0;
  const touch = (own: 0 | 1) => {
    const t0 = now();
    k.stream(sp.master[1 - own], sp.pairBytes[1 - own], 0);
    streamMs += now() - t0;
    streamBytes += sp.pairBytes[1 - own];
  };

  // Cases: each returns its values of the round by id (µs per call, or a rate).
  type Case = () => Record<string, number>;
  const cases: Case[] = [];
  const h = plan.hotList;
  const hotPass = (reps: number) =>
    k.listSum(sp.hot, h.beg, h.ent, T, plan.hotChunks, sp.out, sp.res, reps);
  const hotReps = calibrate(hotPass, 2);
  cases.push(() => {
    let calls = 0;
    const t0 = now();
    let t = t0;
    while (t - t0 < o.ms) {
      hotPass(hotReps);
      calls++;
      t = now();
    }
    return { l1: (1000 * (t - t0)) / (calls * hotReps) };
  });
  let turn = 0;
  const coldPhases: Phase[] = ["f1", "f2", "b2", "u1", "u2", "u1n", "u2n"];
  const warmPhases: Phase[] = ["f1", "f2", "b2", "u1", "u2"];
  for (const ph of coldPhases) {
    cases.push(() => {
      let ms = 0;
      for (let c = 0; c < o.calls; c++) {
        const i = turn++;
        touch(ownLayer(ph));
        const t0 = now();
        run(ph, i);
        ms += now() - t0;
      }
      return { [`${ph}-cold`]: (1000 * ms) / o.calls };
    });
  }
  for (const ph of warmPhases) {
    cases.push(() => {
      const i = turn++;
      run(ph, i);
      let ms = 0;
      for (let c = 0; c < o.calls; c++) {
        const t0 = now();
        run(ph, i);
        ms += now() - t0;
      }
      return { [`${ph}-warm`]: (1000 * ms) / o.calls };
    });
  }
  for (
    const [state, phases] of [["order", TRAINING_ORDER], ["inferOrder", ["f1", "f2"]]] as const
  ) {
    cases.push(() => {
      const ms = new Map<Phase, number>(phases.map((ph) => [ph, 0]));
      for (const ph of phases) run(ph, turn); // one sample untimed: the state of the order
      for (let c = 0; c < o.calls; c++) {
        const i = ++turn;
        for (const ph of phases) {
          const t0 = now();
          run(ph, i);
          ms.set(ph, ms.get(ph)! + now() - t0);
        }
      }
      turn++;
      return Object.fromEntries(
        phases.map((ph) => [`${ph}-${state}`, (1000 * ms.get(ph)!) / o.calls]),
      );
    });
  }
  const cs = o.columnSum ? await columnSum() : undefined;
  if (cs) {
    cases.push(() => ({
      colsum: measureColumnSum(cs, 16 * 1024, { ms: o.ms, repeats: 1 }).addsPerSecond,
    }));
  }

  // Two workers.
  let pool: Pool | undefined;
  const scaleKinds: ScaleKind[] = [
    "alu",
    "listL1",
    "update",
    "inferSkeleton",
    "skeleton",
    "sharedSkeleton",
    "panelSkeleton",
    "stream",
  ];
  const params = new Map<ScaleKind, number>();
  try {
    if (o.threads) {
      say("  bounds: starting 2 workers");
      pool = await Pool.start(2, module, memory, plan);
      params.set("alu", calibrate((r) => k.alu(r, 1), 0.5));
      params.set("listL1", calibrate(hotPass, 0.5));
      for (const kind of scaleKinds.slice(2)) params.set(kind, 1);
    }
    const values = new Map<string, number[]>();
    const add = (id: string, v: number) => values.set(id, [...(values.get(id) ?? []), v]);
    const streamRuns: number[] = [];
    for (let round = -1; round < o.repeats; round++) {
      say(round < 0 ? "  bounds: warm-up round" : `  bounds: round ${round + 1}/${o.repeats}`);
      streamBytes = streamMs = 0;
      for (const c of round % 2 === 0 ? cases : [...cases].reverse()) {
        const v = c();
        if (round >= 0) { for (const [id, x] of Object.entries(v)) add(id, x); }
      }
      if (round >= 0) streamRuns.push(streamBytes / (streamMs / 1000));
      if (pool) {
        for (const kind of round % 2 === 0 ? scaleKinds : [...scaleKinds].reverse()) {
          const ms = round < 0 ? Math.min(50, o.scaleMs) : o.scaleMs;
          // One thread: worker 0 and worker 1 in turn (a vCPU may be slower for a while).
          const alone = [Math.max(0, round) % 2];
          for (const ws of round % 2 === 0 ? [alone, [0, 1]] : [[0, 1], alone]) {
            const v = await pool.run(kind, ws, params.get(kind)!, ms);
            if (round >= 0) add(`scale-${kind}-${ws.length}`, v);
          }
        }
      }
    }
    const med = (id: string) => median(values.get(id)!);

    // -------------------------------------------------------------------------- results
    const fwdCase = (
      id: string,
      layer: 0 | 1 | 2,
      state: CacheState | null,
      label: string,
      rows: number,
      chunks: number,
      entries: number,
    ): ForwardBound => {
      const runs = values.get(id)!, us = median(runs), ce = chunks * entries;
      return {
        id,
        layer,
        state,
        label,
        rows,
        chunks,
        entriesPerChunk: entries,
        microsPerCall: us,
        nsPerChunkEntry: (1000 * us) / ce,
        laneAddsPerSecond: (32 * ce) / (us / 1e6),
        bytesPerSecond: (128 * ce) / (us / 1e6),
        runs,
      };
    };
    const forward: ForwardBound[] = [
      fwdCase(
        "l1",
        0,
        null,
        `rows in L1: ${o.hotRows} rows of ${o.hotLanes} lanes (${
          (o.hotRows * o.hotLanes) / 256
        } KiB), one pass`,
        o.hotRows,
        plan.hotChunks,
        h.entries,
      ),
    ];
    for (const l of [0, 1] as const) {
      const S = o.layers[l];
      for (const state of ["cold", "warm", "order", "inferOrder"] as const) {
        const id = `f${l + 1}-${state}`;
        forward.push(
          fwdCase(
            id,
            (l + 1) as 1 | 2,
            state,
            `layer ${l + 1}, ${STATE_NAMES[state]}`,
            S.fwdRows,
            S.P / 32,
            S.fwdEntries,
          ),
        );
      }
    }
    const rowsCases: [Phase, CacheState][] = [
      ["u1", "cold"],
      ["u1n", "cold"],
      ["u1", "warm"],
      ["u1", "order"],
      ["u2", "cold"],
      ["u2n", "cold"],
      ["u2", "warm"],
      ["u2", "order"],
      ["b2", "cold"],
      ["b2", "warm"],
      ["b2", "order"],
    ];
    const rows: RowsBound[] = rowsCases.map(([phase, state]) => {
      const l = ownLayer(phase), L = plan.layers[l], S = o.layers[l];
      const id = `${phase}-${state}`;
      const runs = values.get(id)!, us = median(runs);
      const sets = phase === "b2" ? L.bwd : L.upd;
      const nRows = sets[0].nRows, groups = sets[0].nGroups;
      const lines = sets.reduce((a, s) => a + s.lines, 0) / sets.length;
      const m = phase === "u1" || phase === "u2" ? 2 : 1;
      return {
        id,
        phase,
        state,
        label: `${PHASE_NAMES[phase]}, ${STATE_NAMES[state]}`,
        layer: (l + 1) as 1 | 2,
        rows: nRows,
        lanes: S.P,
        groups,
        groupFraction: groups / (S.P / 4),
        lineFraction: lines / (L.rowBytes / 64),
        matrices: m,
        microsPerCall: us,
        groupBytesPerSecond: (nRows * groups * 16 * m) / (us / 1e6),
        lineBytesPerSecond: (nRows * lines * 64 * m) / (us / 1e6),
        runs,
      };
    });
    const colRuns = values.get("colsum");
    const colsum: ColumnSumBound | null = colRuns
      ? {
        label: "old design: column sum dst[k] += row[k], 16 KiB of 1 KiB rows (bench/limit.ts)",
        workingSetBytes: 16 * 1024,
        laneAddsPerSecond: median(colRuns),
        bytesPerSecond: 4 * median(colRuns),
        runs: colRuns,
      }
      : null;
    const scaleLabels: Record<ScaleKind, [string, string]> = {
      alu: ["ALU: 4 i32x4 xorshift chains, registers only", "lane-ops"],
      listL1: ["list sums, rows in L1", "lane-adds"],
      update: ["updates 1, 2 (with the forward copy), in training order", "samples"],
      inferSkeleton: ["list sums 1, 2, in inference order", "samples"],
      skeleton: ["training order: list sums 1, 2, gather 2, updates 1, 2", "samples"],
      sharedSkeleton: [
        "the same on ONE shared network, rows shared (the former layout: full-width rows " +
        "shared by both threads): halves of every phase, barriers between",
        "samples",
      ],
      panelSkeleton: [
        "the same on ONE network in panels (the current layout, as threads.ts runs a step): " +
        "each half's lanes a sub-matrix of its own",
        "samples",
      ],
      stream: [
        `read-modify-write stream over one layer's matrices (${mb(sp.pairBytes[1])})`,
        "bytes",
      ],
    };
    const scaling: ScalingBound[] = pool
      ? scaleKinds.map((id) => {
        const runs1 = values.get(`scale-${id}-1`)!, runs2 = values.get(`scale-${id}-2`)!;
        const perSecond1 = median(runs1), perSecond2 = median(runs2);
        return {
          id,
          network: id === "sharedSkeleton"
            ? "shared" as const
            : id === "panelSkeleton"
            ? "panels" as const
            : "copies" as const,
          label: scaleLabels[id][0],
          unit: scaleLabels[id][1],
          perSecond1,
          perSecond2,
          speedup: perSecond2 / perSecond1,
          pairedSpeedups: runs1.map((r, i) => runs2[i] / r),
          runs1,
          runs2,
        };
      })
      : [];
    const best = (id: string) => Math.min(...values.get(id)!);
    const floor = (state: CacheState, agg = med): SampleFloor => {
      const f = (ph: Phase) => agg(`${ph}-${state}`);
      const forwardUs: [number, number] = [f("f1"), f("f2")];
      const update: [number, number] = [f("u1"), f("u2")];
      const infer = state === "order"
        ? agg("f1-inferOrder") + agg("f2-inferOrder")
        : forwardUs[0] + forwardUs[1];
      return {
        forward: forwardUs,
        backward: f("b2"),
        update,
        infer,
        train: forwardUs[0] + forwardUs[1] + f("b2") + update[0] + update[1],
      };
    };
    const l1ns = forward[0].nsPerChunkEntry;
    const l1nsBest = (1000 * best("l1")) / (plan.hotChunks * h.entries);
    const skel = scaling.find((s) => s.id === "skeleton");
    const shared = scaling.find((s) => s.id === "sharedSkeleton");
    const panel = scaling.find((s) => s.id === "panelSkeleton");
    const iskel = scaling.find((s) => s.id === "inferSkeleton");
    // The current layout's 2-thread training bound (panels; the lower with the copies').
    const panelBound = skel && panel ? Math.min(skel.speedup, panel.speedup) : null;
    const panelFrom = skel && panel
      ? (panel.speedup < skel.speedup ? "panels" as const : "copies" as const)
      : null;
    const ticks1 = ticks();
    info.loadAverageEnd = loadAverage();
    if (ticks0 && ticks1) {
      // USER_HZ is 100 on Linux.
      const s = (ticks1.t - ticks0.t) / 1000 * 100;
      info.otherCores = Math.max(0, (ticks1.busy - ticks0.busy - (ticks1.own - ticks0.own)) / s);
      info.stealCores = (ticks1.steal - ticks0.steal) / s;
    }
    const touched = streamRuns.length ? sp.pairBytes.reduce((a, b) => a + b) / 2 : 0;
    return {
      machine: info,
      settings: {
        T: o.T,
        layers: o.layers,
        backward: o.backward,
        hotRows: o.hotRows,
        hotLanes: o.hotLanes,
        repeats: o.repeats,
        ms: o.ms,
        calls: o.calls,
        scaleMs: o.scaleMs,
        pool: o.pool,
        seed: o.seed,
        fsh: FSH,
        compileMs: wasCached ? 0 : compileMs,
        memoryBytes: memory.buffer.byteLength,
        verified: true,
        seconds: (performance.now() - t00) / 1000,
      },
      forward,
      rows,
      columnSum: colsum,
      stream: { bytes: touched, bytesPerSecond: median(streamRuns), runs: streamRuns },
      scaling,
      floors: {
        warm: floor("warm"),
        order: floor("order"),
        cold: floor("cold"),
        warmBest: floor("warm", best),
        orderBest: floor("order", best),
        l1Forward: [0, 1].map((l) =>
          (l1ns * (o.layers[l].P / 32) * o.layers[l].fwdEntries) / 1000
        ) as [number, number],
        l1ForwardBest: [0, 1].map((l) =>
          (l1nsBest * (o.layers[l].P / 32) * o.layers[l].fwdEntries) / 1000
        ) as [number, number],
        inferSkeletonMicros: iskel ? 1e6 / iskel.perSecond1 : null,
        inferSkeletonSpeedup: iskel ? iskel.speedup : null,
        skeletonMicros: skel ? 1e6 / skel.perSecond1 : null,
        skeletonSpeedup: skel ? skel.speedup : null,
        sharedSkeletonMicros: shared ? 1e6 / shared.perSecond1 : null,
        sharedSkeletonSpeedup: shared ? shared.speedup : null,
        trainTwoThreadSpeedup: panelBound,
        trainTwoThreadFrom: panelFrom,
        trainTwoThreadFormerSpeedup: skel && shared ? Math.min(skel.speedup, shared.speedup) : null,
        trainTwoThreadFormerFrom: skel && shared
          ? (shared.speedup < skel.speedup ? "shared" : "copies")
          : null,
        panelSkeletonMicros: panel ? 1e6 / panel.perSecond1 : null,
        panelSkeletonSpeedup: panel ? panel.speedup : null,
        trainTwoThreadPanelSpeedup: panelBound,
        trainTwoThreadPanelFrom: panelFrom,
      },
    };
  } finally {
    pool?.close();
  }
}

// ---------------------------------------------------------------------------------- output

/**
 * What the two-thread verdicts rest on. The panels skeleton runs every phase in halves with 8
 * barriers a sample, as threads.ts ran a step when it was written; the step now shares out more
 * of its work and measures above that model (bench/RESULTS.md, 2026-11-29 06:34 UTC).
 */
const PANELS_MODEL = "for the panels model of the step (halves of every phase, 8 barriers a " +
  "sample; assembly/threads.ts now shares out the updates, the backward partial sums and the " +
  "output currents and has fewer barriers, so this models its memory pattern and does not bound it)";

function mb(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

function num(x: number, digits = 0): string {
  return x.toLocaleString("en-US", {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
}

function giga(x: number): string {
  return (x / 1e9).toFixed(2);
}

function table(rows: string[][], align: string): string[] {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => (r[c] ?? "").length)));
  return rows.map((r) =>
    "  " +
    r.map((cell, c) => (align[c] === "l" ? cell.padEnd(widths[c]) : cell.padStart(widths[c])))
      .join("  ").trimEnd()
  );
}

/** Measured throughputs to hold against the targets (samples/s; any may be left out). */
export interface MeasuredRates {
  /** Training, 1 thread. */
  train1?: number;
  /** Training, 2 threads. */
  train2?: number;
  /** Inference, 1 thread. */
  infer1?: number;
  /** Inference, 2 threads. */
  infer2?: number;
}

/** Figures from the bench to print next to the bounds (all optional). */
export interface FormatOptions {
  /** Measured throughputs, held against the targets. */
  measured?: MeasuredRates;
  /**
   * µs per training sample of the real kernels (the bench's kernel table): f1 = forward 1,
   * f2 = forward 2, b2 = backward 2, u1 = update 1, u2 = update 2. Printed next to their bounds.
   */
  kernelMicros?: Partial<Record<"f1" | "f2" | "b2" | "u1" | "u2", number>>;
  /**
   * µs per training sample of the work thread 0 runs alone in the threaded step
   * (assembly/threads.ts: dropout and encoding, counts and desire; the output layer's forward
   * pass is split by inputs), from the bench's kernel table, and `trainSampleMicros`, µs per
   * sample of trainSample() on the same samples. With both, the two-thread bounds count that
   * work as serial: it gains nothing from a second thread.
   */
  serialMicros?: number;
  /** µs per sample of trainSample() on the samples of `serialMicros`. */
  trainSampleMicros?: number;
}

/** "min–max" of a list, with the given digits. */
function range(xs: number[], digits: number): string {
  if (!xs.length) return "";
  return `${num(Math.min(...xs), digits)}–${num(Math.max(...xs), digits)}`;
}

/**
 * The text of the bound section, one string per line: the tables, then for each target what the
 * bounds allow and, with `measured` (samples/s from the bench), whether it is met and which share
 * of its time the bounded phases take; with `kernelMicros`, the real kernels next to their bounds.
 */
export function formatBounds(r: BoundsResult, opts: FormatOptions = {}): string[] {
  const s = r.settings;
  const out: string[] = [];
  out.push(
    `bounds of the kernels as they are now (bench/bounds.ts: AssemblyScript kernels compiled at ` +
      `bench time${s.compileMs ? ` in ${(s.compileMs / 1000).toFixed(1)} s` : ""}, ` +
      `${s.verified ? "each checked against a TypeScript loop" : "NOT CHECKED"}; medians of ` +
      `${s.repeats} interleaved rounds, ${s.calls} samples per case and round; T = ${s.T})`,
  );
  out.push(
    `machine: ${r.machine.cpu}, ${r.machine.cores} cores, Deno ${r.machine.deno}, V8 ` +
      `${r.machine.v8}, ${r.machine.date}${
        r.machine.loadAverage.length
          ? `, load ${r.machine.loadAverage.join(" ")} at start, ${
            r.machine.loadAverageEnd.join(" ")
          } at end`
          : ""
      }${
        r.machine.otherCores !== null
          ? `; other processes used ${r.machine.otherCores.toFixed(2)} cores during the run` +
            `${r.machine.otherCores > 0.05 ? " (THE FIGURES ARE DISTURBED)" : ""}, steal ${
              (r.machine.stealCores ?? 0).toFixed(2)
            }`
          : ""
      }`,
  );
  const [a, b] = s.layers;
  out.push(
    `per sample (MNIST in training): layer 1 ${a.fwdRows} of ${a.nIn} rows active (from ${a.rowPool}), ` +
      `${num(a.fwdEntries)} list entries per 32-lane chunk × ${
        a.P / 32
      } chunks, update ${a.updRows} ` +
      `rows on ${(100 * a.updGroupFraction).toFixed(1)} % of the groups; layer 2 ${b.fwdRows} of ` +
      `${b.nIn} (from ${b.rowPool}), ${num(b.fwdEntries)} × ${b.P / 32}, ${b.updRows} rows on ` +
      `${(100 * b.updGroupFraction).toFixed(1)} %, backward gather ${s.backward.rows} rows on ` +
      `${(100 * s.backward.groupFraction).toFixed(1)} %`,
  );
  out.push(
    "layer 1's forward is modelled as it was before its class rows (commit 1d590ca): the kernel " +
      "now sums the rows of inputs that share a spike word into one row per step and lists that " +
      `row once, so its list sums add fewer entries than the ${num(a.fwdEntries)} modelled here ` +
      "(and make one more pass over those inputs' rows); the f1 figures below are that earlier " +
      "pattern's, not this kernel's",
  );
  out.push(
    "cold: random rows after the other layer's matrices were streamed through; warm: the same " +
      "rows again; in training order: f1, f2, gather, u1, u2 of consecutive samples whose rows " +
      "overlap as MNIST's do (inference order: f1, f2 only)",
  );
  out.push("");
  out.push(
    "forward bound: the list sums of forwardChunk32 (8 v128 accumulators, the 128-byte chunk of " +
      "a listed row per entry, accumulators carried from step to step; no membranes)",
  );
  const f = [[
    "case",
    "µs/sample",
    "rounds",
    "ns/chunk-entry",
    "Glane-add/s",
    "GB/s of chunks",
  ]];
  for (const x of r.forward) {
    f.push([
      x.label,
      num(x.microsPerCall, 1),
      range(x.runs, 0),
      num(x.nsPerChunkEntry, 2),
      giga(x.laneAddsPerSecond),
      giga(x.bytesPerSecond),
    ]);
  }
  if (r.columnSum) {
    f.push([
      r.columnSum.label,
      "",
      "",
      num(32e9 / r.columnSum.laneAddsPerSecond, 2),
      giga(r.columnSum.laneAddsPerSecond),
      giga(r.columnSum.bytesPerSecond),
    ]);
  }
  out.push(...table(f, "lrrrrr"));
  out.push(
    "  lane-adds are vector lanes actually added, 32 per chunk-entry (the kernel table's " +
      "effective adds count every spike of a run). The L1 row is one pass over its lists (µs per " +
      "pass). The column sum (the old design: a read-modify-write of the current in L1 per 16 " +
      "bytes of row) is kept for comparison; its ns are per 32 lanes.",
  );
  out.push("");
  out.push(
    "update and backward bound: updateLayerSimd's pattern (per row and changed 4-lane group: " +
      "load, add one update row, clamp, store; with the forward copy the rounded store into the " +
      "second matrix too) and backwardLayerSimd's (per row and group: load, multiply-add)",
  );
  const u = [[
    "case",
    "rows × lanes",
    "groups",
    "lines",
    "µs/sample",
    "rounds",
    "GB/s groups",
    "GB/s lines",
  ]];
  for (const x of r.rows) {
    u.push([
      x.label,
      `${x.rows} × ${x.lanes}`,
      `${(100 * x.groupFraction).toFixed(1)} %`,
      `${(100 * x.lineFraction).toFixed(0)} %`,
      num(x.microsPerCall, 1),
      range(x.runs, 0),
      giga(x.groupBytesPerSecond),
      giga(x.lineBytesPerSecond),
    ]);
  }
  u.push([
    `read-modify-write stream over one layer's matrices (${mb(r.stream.bytes)}), the cold touch`,
    "",
    "",
    "",
    "",
    "",
    "",
    giga(r.stream.bytesPerSecond),
  ]);
  out.push(...table(u, "lrrrrrrr"));
  out.push(
    "  GB/s count 16 (groups) or 64 (lines) bytes per listed group or line and matrix (updates " +
      "with the forward copy touch two matrices); lines: the share of a row's 64-byte lines " +
      "holding a listed group.",
  );
  if (r.scaling.length) {
    out.push("");
    out.push(
      "two threads: the same loop in one Web Worker alone, then in two at once (one shared " +
        "memory, each worker on its own matrices: two independent copies, as two training " +
        "processes; except the two one-network rows: both workers on one network and the same " +
        "samples, each doing half of every phase, in lockstep, as the real 2-thread step: with each " +
        "worker's lanes in panels of its own (the current layout), or on full-width rows shared " +
        "by both (the former layout, for comparison))",
    );
    const sc = [["pattern", "unit/s", "1 thread", "2 threads", "2 / 1", "rounds' 2 / 1"]];
    for (const x of r.scaling) {
      const perSample = x.unit === "samples";
      const rate = (v: number) => (perSample ? num(v) : (v / 1e9).toFixed(2));
      const ps = [...x.pairedSpeedups].sort((p, q) => p - q);
      sc.push([
        x.label,
        perSample ? "samples/s" : `G${x.unit}/s`,
        rate(x.perSecond1),
        rate(x.perSecond2),
        `${x.speedup.toFixed(2)} ×`,
        ps.length ? `${ps[0].toFixed(2)}–${ps[ps.length - 1].toFixed(2)}` : "",
      ]);
    }
    out.push(...table(sc, "lrrrrr"));
    out.push(
      "  2 threads: the sum of both workers' rates while both run; 1 thread: one worker alone " +
        "(each worker in turn); the order of 1 and 2 alternates round by round. Shared network: " +
        "1 thread is one worker doing the whole step on those matrices, 2 threads the samples " +
        "per second of the one network (forward: halves of the 32-lane chunks; updates: halves " +
        "of the lanes; gather: halves of the rows; 7 barriers a sample, each 2,000 polls, then " +
        "Atomics.wait). Panels (the current layout): the same samples, halves and barriers, but " +
        "each worker's lanes of a layer stored as a row-major sub-matrix of their own (split at " +
        "the forward's chunks: layer 2's 25 chunks give 384 | 416 lanes; threads.ts: 400 | 400), " +
        "so no cache line is touched by both; the gather: each worker its panel's groups of all " +
        "the rows (partial sums), a barrier, then each adds the two partials for its half of the " +
        "rows (8 barriers a sample; threads.ts: the same over the rows the update needs, 7); " +
        "1 thread: the same full-width whole step as the shared row's, measured in " +
        "its own turn.",
    );
  }
  const km = opts.kernelMicros ?? {};
  const phases = (["f1", "f2", "b2", "u1", "u2"] as const).filter((p) => km[p] !== undefined);
  if (phases.length) {
    const of = (ph: Phase, st: CacheState) =>
      r.forward.find((x) => x.id === `${ph}-${st}`)?.microsPerCall ??
        r.rows.find((x) => x.id === `${ph}-${st}`)?.microsPerCall ?? NaN;
    const k = [[
      "kernel (bench, µs/sample)",
      "kernel",
      "warm",
      "in order",
      "cold",
      "kernel / in order",
    ]];
    for (const ph of phases) {
      k.push([
        PHASE_NAMES[ph],
        num(km[ph]!, 1),
        num(of(ph, "warm"), 1),
        num(of(ph, "order"), 1),
        num(of(ph, "cold"), 1),
        `${(km[ph]! / of(ph, "order")).toFixed(2)} ×`,
      ]);
    }
    out.push("");
    out.push("the kernels of the bench next to the bounds of their patterns (µs per sample)");
    out.push(...table(k, "lrrrrr"));
  }
  out.push("");
  out.push(...verdicts(r, opts.measured, opts));
  return out;
}

/**
 * The floors per sample and what they allow for each target (`opts`: the serial part of the
 * threaded step, see FormatOptions).
 */
function verdicts(
  r: BoundsResult,
  m: MeasuredRates = {},
  opts: Pick<FormatOptions, "serialMicros" | "trainSampleMicros"> = {},
): string[] {
  const fl = r.floors;
  const out: string[] = [];
  const us = (x: number) => `${num(x, 0)} µs`;
  out.push(
    "what the bounds allow: µs per sample of the bounded phases only (membranes, list building, " +
      "desire, encoding, the output layer and the backward factors come on top)",
  );
  const rows = [[
    "",
    "list sums 1 + 2",
    "gather 2",
    "updates 1 + 2",
    "inference",
    "training",
  ]];
  const sum = (x: [number, number]) => `${num(x[0], 0)} + ${num(x[1], 0)}`;
  const floors = [
    ["warm (the floor), median", fl.warm],
    ["warm, best round", fl.warmBest],
    ["in training order, median", fl.order],
    ["in training order, best round", fl.orderBest],
    ["cold, median", fl.cold],
  ] as const;
  for (const [name, x] of floors) {
    rows.push([
      name,
      sum(x.forward),
      num(x.backward, 0),
      sum(x.update),
      num(x.infer, 0),
      num(x.train, 0),
    ]);
  }
  for (const [name, x] of [["median", fl.l1Forward], ["best round", fl.l1ForwardBest]] as const) {
    rows.push([`rows in L1 (L1 list-sum rate), ${name}`, sum(x), "", "", num(x[0] + x[1], 0), ""]);
  }
  out.push(...table(rows, "lrrrrr"));
  out.push(
    "  inference in order: the list sums in inference order (f1, f2 of consecutive samples and " +
      "nothing else). Best round: each phase's fastest round (the machine's speed flips).",
  );
  const verdict = (
    name: string,
    target: number,
    x: "infer" | "train",
    measured?: number,
  ) => {
    const budget = 1e6 / target;
    const [w, wb, o, ob, c] = [fl.warm, fl.warmBest, fl.order, fl.orderBest, fl.cold].map((f) =>
      f[x]
    );
    let s = `  ${name} ≥ ${num(target)}/s (${us(budget)}/sample): the bounded phases take ` +
      `${num(w, 0)} µs warm (best round ${num(wb, 0)}), ${num(o, 0)} in order (best ` +
      `${num(ob, 0)}), ${num(c, 0)} cold, i.e. ≤ ${num(1e6 / o)}/s in order → `;
    if (wb > budget) s += "RULED OUT: even the best round on warm rows exceeds the budget";
    else if (w > budget) {
      s += "ruled out at the median speed even on warm rows; only the machine's fast phases fit";
    } else if (ob > budget) {
      s += "RULED OUT in order (even its best round): needs rows warmer than consecutive " +
        "samples leave them, or less traffic";
    } else if (o > budget) {
      s += "ruled out in order at the median speed; only the machine's fast phases fit";
    } else s += `allowed: ${us(budget - o)} per sample remain for everything else`;
    if (measured !== undefined) {
      s += `; measured ${num(measured)}/s (${us(1e6 / measured)}), ${
        measured >= target ? "met" : "not met"
      }, of which these phases in order are ${((100 * o * measured) / 1e6).toFixed(0)} %`;
    }
    out.push(s);
  };
  verdict("inference, 1 thread", TARGETS.infer, "infer", m.infer1);
  verdict("training, 1 thread", TARGETS.train1, "train", m.train1);
  // Serial work of the threaded training step (thread 0 alone), when the bench measured it: it
  // comes on top of the bounded phases' time on two workers.
  let serial = 0;
  const bound = (micros: number, speedup: number) => 1e6 / (micros / speedup + serial);
  const two = (
    name: string,
    target: number,
    micros: number | null,
    speedup: number | null,
    measured?: number,
    source?: string,
    more?: (s: string) => string,
  ) => {
    if (micros === null || speedup === null) return;
    const max = bound(micros, speedup);
    let s = `  ${name} ≥ ${num(target)}/s (${us(1e6 / target)}/sample): ${us(micros)} per sample ` +
      `on one worker, ${speedup.toFixed(2)} × on two${source ? ` (${source})` : ""}${
        serial > 0 ? `, plus ${us(serial)} thread 0 runs alone` : ""
      } → bound ≤ ${num(max)}/s → ${max >= target ? "allowed" : "RULED OUT in this order"}`;
    if (more) s = more(s);
    if (measured !== undefined) {
      s += `; measured ${num(measured)}/s, ${measured >= target ? "met" : "not met"}`;
    }
    out.push(s);
  };
  two(
    "inference, 2 threads",
    TARGETS.infer,
    fl.inferSkeletonMicros,
    fl.inferSkeletonSpeedup,
    m.infer2,
  );
  // Training on 2 threads. The current layout (panels, as assembly/threads.ts runs a step: each
  // thread's lanes of a layer a sub-matrix of its own): the lower of the two speedups of the
  // training order (two independent copies; one network in panels, split as the real step
  // splits it), with its own 1-worker time. The former layout (full-width rows shared by both
  // threads), the lower of the copies' and the shared rows' speedups, only as context.
  const sharedUs = fl.sharedSkeletonMicros ?? null, sharedX = fl.sharedSkeletonSpeedup ?? null;
  const panelUs = fl.panelSkeletonMicros ?? null, panelX = fl.panelSkeletonSpeedup ?? null;
  const copiesX = fl.skeletonSpeedup;
  // From the speedups (as trainTwoThreadFrom and trainTwoThreadFormerFrom), so that a result
  // written before the panels became the layout reads the same.
  const fromPanels = panelX !== null && copiesX !== null && panelX < copiesX;
  serial = opts.serialMicros ?? 0;
  two(
    "training, 2 threads",
    TARGETS.train2,
    fromPanels ? panelUs : fl.skeletonMicros,
    fromPanels ? panelX : copiesX,
    m.train2,
    panelX === null || copiesX === null
      ? undefined
      : `current layout, panels as assembly/threads.ts runs a step: the lower of ${
        copiesX.toFixed(2)
      } × on two independent copies and ${panelX.toFixed(2)} × on one network in panels: ${
        fromPanels ? "the panels'" : "the independent copies'"
      }`,
    (s) => {
      s = s.replace(/ → (allowed|RULED OUT in this order)$/, ` → $1 ${PANELS_MODEL}`);
      if (sharedUs === null || sharedX === null || copiesX === null || fl.skeletonMicros === null) {
        return s;
      }
      const fromShared = sharedX < copiesX;
      const max = bound(
        fromShared ? sharedUs : fl.skeletonMicros,
        fromShared ? sharedX : copiesX,
      );
      return s + ` (the former full-width layout: ${sharedX.toFixed(2)} × on one shared ` +
        `network, bound ≤ ${num(max)}/s from ${
          fromShared ? "the shared network's" : "the independent copies'"
        })`;
    },
  );
  const skel = r.scaling.find((x) => x.id === "skeleton");
  if (skel) {
    const sp = (id: string) => r.scaling.find((x) => x.id === id)?.speedup ?? NaN;
    // The verdict rests on the training order (the whole memory pattern of a sample), paired
    // round by round: the machine's speed drifts, and a pair shares a drift. The current layout
    // (panels): the lower of two independent copies and one network in panels; the former
    // layout (full-width rows shared): the lower of the copies and the shared rows, as context.
    const shared = r.scaling.find((x) => x.id === "sharedSkeleton");
    const panels = r.scaling.find((x) => x.id === "panelSkeleton");
    const pairs = (x: ScalingBound) => ({
      paired: median(x.pairedSpeedups),
      lo: Math.min(...x.pairedSpeedups),
      hi: Math.max(...x.pairedSpeedups),
    });
    const copies = pairs(skel), inPanels = panels ? pairs(panels) : null;
    const one = shared ? pairs(shared) : null;
    const usePanels = inPanels !== null && inPanels.paired < copies.paired;
    const paired = usePanels ? inPanels.paired : copies.paired;
    const useShared = one !== null && one.paired < copies.paired;
    const pairedFormer = one === null ? null : useShared ? one.paired : copies.paired;
    const variant = (name: string, x: { paired: number; lo: number; hi: number }) =>
      `${x.paired.toFixed(2)} × ${name} (median of the rounds' pairs, ${x.lo.toFixed(2)}–` +
      `${x.hi.toFixed(2)})`;
    let s = `  training, 2 / 1 threads ≥ ${TARGETS.train2Ratio} ×: two workers gain ` +
      variant("in training order on two independent copies", copies) +
      (inPanels ? `, ${variant("on one network in panels (the current layout)", inPanels)}` : "") +
      (one
        ? `, ${variant("on one shared network (full-width rows, the former layout)", one)}`
        : "") +
      (inPanels
        ? `; the bound is the lower, ${usePanels ? "the panels'" : "the independent copies'"}, ${
          paired.toFixed(2)
        } × for the current layout`
        : "") +
      (pairedFormer !== null
        ? ` (the former full-width layout: ${pairedFormer.toFixed(2)} ×, ${
          useShared ? "the shared network's" : "the independent copies'"
        })`
        : "") +
      `; ${sp("update").toFixed(2)} × on the updates, ${sp("stream").toFixed(2)} × on the ` +
      `stream, ${sp("alu").toFixed(2)} × on the ALU loop`;
    if (m.train1 !== undefined) {
      // Amdahl: the share sh of the step that thread 0 runs alone gains nothing on two threads,
      // the share u of the measured 1-thread time spent in these phases at most `paired`, the
      // rest at most 2.
      const sh = opts.serialMicros !== undefined && opts.trainSampleMicros
        ? Math.min(1, opts.serialMicros / opts.trainSampleMicros)
        : 0;
      const u = Math.min(1 - sh, (fl.order.train * m.train1) / 1e6);
      const capOf = (x: number) => 1 / (sh + (1 - sh - u) / 2 + u / x);
      const cap = capOf(paired);
      s += `; these phases are ${(100 * u).toFixed(0)} % of the measured 1-thread time` +
        (sh > 0
          ? ` (at most ${(100 * (1 - sh)).toFixed(0)} %: thread 0 alone runs ${
            (100 * sh).toFixed(1)
          } % of trainSample(): dropout, encoding, counts and desire)`
          : "") +
        `, so 2 / 1 ≤ ${cap.toFixed(2)} × → ${
          cap >= TARGETS.train2Ratio ? "allowed" : "RULED OUT in this order"
        } ${PANELS_MODEL}`;
      if (pairedFormer !== null) {
        s += ` (the former full-width layout: ≤ ${capOf(pairedFormer).toFixed(2)} ×)`;
      }
      if (m.train2 !== undefined) s += `; measured ${(m.train2 / m.train1).toFixed(2)} ×`;
    } else {
      s += ` → ${
        paired >= TARGETS.train2Ratio ? "allowed" : "RULED OUT in this order"
      } ${PANELS_MODEL}`;
      if (pairedFormer !== null) {
        s += ` (the former full-width layout: ${pairedFormer.toFixed(2)} ×)`;
      }
    }
    out.push(s);
  }
  return out;
}

// ------------------------------------------------------------------------------------ main

if (import.meta.main && !IS_WORKER) {
  const args = Deno.args;
  if (args.includes("--help") || args.includes("-h")) {
    console.log(
      "Usage: deno run -A bench/bounds.ts [--json] [--repeats N] [--no-threads] [--quick]\n" +
        "Bound micro-benchmarks of the forward list sums, the backward gather, the STDP update " +
        "and two threads\n(tables on stdout, progress on stderr; --json: the result object).",
    );
  } else {
    const ri = args.indexOf("--repeats");
    const quick = args.includes("--quick");
    const result = await runBounds({
      repeats: ri >= 0 ? Number(args[ri + 1]) : quick ? 3 : undefined,
      threads: !args.includes("--no-threads"),
      ms: quick ? 50 : undefined,
      scaleMs: quick ? 100 : undefined,
      calls: quick ? 12 : undefined,
      progress: (line) => console.error(line),
    });
    if (args.includes("--json")) console.log(JSON.stringify(result));
    else console.log(formatBounds(result).join("\n"));
  }
}
