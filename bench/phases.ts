/**
 * Where a training step's time goes, phase by phase and thread by thread: 1 thread against N.
 *
 *   deno run -A bench/phases.ts [--threads N] [--rounds R] [--block B] [--infer]
 *
 * Builds an instrumented copy of the kernels in a temporary directory: the same sources, plus
 * a clock import (`env.now`, the host's `performance.now()`) read at every phase boundary of
 * `sampleStep` (assembly/threads.ts); each thread adds the time since its last mark to its own
 * word in the configuration block (words 192 + 16·tid + phase, unused otherwise, in 0.1 µs).
 * The repository's own build is not touched. Then one process trains a 1-thread and an
 * N-thread MNIST network (784-1600-800-10, Kaiming seed 0, lr 1e-5, epoch-0 shuffle) in
 * alternating blocks of B samples, so that the machine's drifting speed hits both alike, and
 * prints µs per sample of every phase (the first block of each is a warm-up and not counted).
 * Work phases are the kernels: enc (dropout, encoding; with 2 threads, thread 1 encodes and
 * builds the first layer's step lists), fwd (hidden layers; with threads, the last one's units
 * also add up their output currents), out (the output layer: on thread 0 alone the sum of those
 * parts, the membranes, counts and desire; all of it on thread 0 for an output layer over 16
 * lanes), outB (the output layer's backward pass, each thread for its lanes of the layer below),
 * bwd (the hidden backward passes), uPrep (with 2 threads: the preparation of the largest hidden
 * layer's update, which the threads share), upd (the updates a thread makes alone: the output
 * layer's for its lanes of the layer below, and its panels of the other hidden layers; with 1
 * thread, every update), uShare (the shared update: a thread's own units, waiting for the other's
 * preparation, and the units it takes from the other). "wait" phases are
 * barriers (the time a thread waits for the slowest); "between" is the time from the end of one
 * step to the start of the next (host work on thread 0, waiting for the next step on the
 * others). With threads, the hidden backward pass is split further: bwdP is its partial sums,
 * bwdW the barrier after them, and bwd what follows (the sums of the partials). "lists" is the part of fwd that a thread spends listing the
 * active inputs and building the step lists (each thread builds the whole layer's lists; with 2
 * threads, thread 1 builds the first layer's in enc, while thread 0 draws the dropout masks).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { join } from "node:path";

const { values } = parseArgs({
  options: {
    threads: { type: "string", default: "2" },
    rounds: { type: "string", default: "8" },
    block: { type: "string", default: "200" },
    infer: { type: "boolean", default: false },
  },
});
const nt = Number(values.threads), rounds = Number(values.rounds), B = Number(values.block);
if (!Number.isInteger(nt) || nt < 2 || nt > 4) throw new RangeError("--threads must be 2, 3 or 4");
if (!Number.isInteger(rounds) || rounds < 2) throw new RangeError("--rounds must be ≥ 2");
if (!Number.isInteger(B) || B < 2 || B * rounds > 60000) {
  throw new RangeError("--block must be ≥ 2 and block × rounds ≤ 60000");
}

const root = new URL("..", import.meta.url).pathname;
const tmp = await Deno.makeTempDir({ prefix: "desire-phases-" });

async function copyTree(from: string, to: string): Promise<void> {
  await Deno.mkdir(to, { recursive: true });
  for await (const e of Deno.readDir(from)) {
    if (e.isDirectory) await copyTree(join(from, e.name), join(to, e.name));
    else if (e.isFile) await Deno.copyFile(join(from, e.name), join(to, e.name));
  }
}

/** Replaces `find` in file `path` (relative to tmp) by `repl`; `find` must occur exactly once. */
async function patch(path: string, find: string, repl: string): Promise<void> {
  const file = join(tmp, path);
  const text = await Deno.readTextFile(file);
  const n = text.split(find).length - 1;
  if (n !== 1) {
    throw new Error(`bench/phases.ts: ${path} has ${n} copies of ${JSON.stringify(find)}`);
  }
  await Deno.writeTextFile(file, text.replace(find, repl));
}

for (const d of ["assembly", "src", "scripts"]) await copyTree(join(root, d), join(tmp, d));
for (const f of ["asconfig.json", "deno.json", "deno.lock"]) {
  await Deno.copyFile(join(root, f), join(tmp, f));
}

// The clock and the marks.
await patch(
  "assembly/threads.ts",
  "// @ts-ignore: decorator\n@inline function word(",
  `@external("env", "now") declare function now(): f64;
let lastMark: f64 = 0;
function mark(tid: i32, phase: i32): void {
  const t = now();
  const p = cfgBase() + (<usize>(192 + tid * 16 + phase) << 2);
  store<i32>(p, load<i32>(p) + <i32>((t - lastMark) * 10000));
  lastMark = t;
}
// @ts-ignore: decorator
@inline function word(`,
);
const marks: [string, string][] = [
  ["  const sc = scratch(tid);\n", "  const sc = scratch(tid);\n  mark(tid, 15);\n"],
  [
    "  barrier(nt);\n  for (let l = 1; l < L; l++) {\n    // A hidden",
    "  mark(tid, 0);\n  barrier(nt);\n  mark(tid, 1);\n  for (let l = 1; l < L; l++) {\n    // A hidden",
  ],
  [
    "forwardLayerSimd(l, train, tid, nt, sc, steal ? word(claimWord(l, 0)) : 0, lists, acc);\n    barrier(nt);\n",
    "forwardLayerSimd(l, train, tid, nt, sc, steal ? word(claimWord(l, 0)) : 0, lists, acc);\n    mark(tid, 2);\n    barrier(nt);\n    mark(tid, 3);\n",
  ],
  [
    "  if (!train) return cfg(CFG_RESULT); // only thread 0's result counts; workers wait for GO\n  barrier(nt);\n",
    "  mark(tid, 4);\n  if (!train) return cfg(CFG_RESULT); // only thread 0's result counts; workers wait for GO\n  barrier(nt);\n  mark(tid, 5);\n",
  ],
  [
    "  if (L >= 2) backwardLayerSimd(L, i0, i1, sc, L == 2);\n",
    "  if (L >= 2) backwardLayerSimd(L, i0, i1, sc, L == 2);\n  mark(tid, 14);\n",
  ],
  [
    "      backwardLayerSimd(l, 0, n, sc, l == 2);\n    }\n  }\n",
    "      backwardLayerSimd(l, 0, n, sc, l == 2);\n    }\n    mark(tid, 6);\n  }\n",
  ],
  [
    "  if (shared != 0) na = prepareShared(shared, tid, sc);\n",
    "  if (shared != 0) na = prepareShared(shared, tid, sc);\n  mark(tid, 9);\n",
  ],
  [
    "  if (shared != 0) applyShared(shared, tid, sc, na);\n  barrier(nt);\n",
    "  mark(tid, 8);\n  if (shared != 0) applyShared(shared, tid, sc, na);\n  mark(tid, 10);\n  barrier(nt);\n  mark(tid, 11);\n",
  ],
];
marks.push([
  "      const listed = backwardShared(l, tid, nt, sc, l == 2);\n      barrier(nt);\n",
  "      const listed = backwardShared(l, tid, nt, sc, l == 2);\n      mark(tid, 12);\n      barrier(nt);\n      mark(tid, 13);\n",
]);
for (const [find, repl] of marks) await patch("assembly/threads.ts", find, repl);
// Inside the forward pass: the time a thread spends listing the active inputs and building the
// step lists (word 7, "lists", a part of fwd).
await patch(
  "assembly/forward.ts",
  "export function forwardLayerSimd(",
  `@external("env", "now") declare function nowF(): f64;
export function forwardLayerSimd(`,
);
await patch(
  "assembly/forward.ts",
  "    inputLists(l, panelRowBytes(l, p, np), sc);\n",
  `    const tl0 = nowF();
    inputLists(l, panelRowBytes(l, p, np), sc);
    const lw = cfgBase() + (<usize>(192 + p * 16 + 7) << 2);
    store<i32>(lw, load<i32>(lw) + <i32>((nowF() - tl0) * 10000));
`,
);
// The hosts provide the clock.
await patch(
  "src/wasm.ts",
  "    env: {\n      abort(",
  "    env: {\n      now: () => performance.now(),\n      abort(",
);
await patch(
  "src/threads.ts",
  "{ env: { memory, abort } }",
  "{ env: { memory, abort, now: () => performance.now() } }",
);
await patch(
  "src/thread_worker.ts",
  "      memory,\n      abort(",
  "      memory,\n      now: () => performance.now(),\n      abort(",
);

for (const args of [["--target", "release"], ["--target", "threads"]]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "npm:assemblyscript@0.28.20/asc", "assembly/index.ts", ...args],
    cwd: tmp,
  }).output();
  if (!out.success) {
    throw new Error(`bench/phases.ts: asc failed:\n${new TextDecoder().decode(out.stderr)}`);
  }
}
{
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "scripts/embed_wasm.ts"],
    cwd: tmp,
  }).output();
  if (!out.success) throw new Error("bench/phases.ts: scripts/embed_wasm.ts failed");
}

const { Network } = await import(join(tmp, "src/network.ts"));
const { defaultConfig } = await import(join(tmp, "src/params.ts"));
const { loadDataset } = await import(join(tmp, "src/datasets.ts"));
const { shuffledOrder } = await import(join(tmp, "src/rng.ts"));

const data = await loadDataset("mnist", { verify: false });
const config = defaultConfig([784, 1600, 800, 10]);
const order: Uint32Array = shuffledOrder(0, 0, data.train.count);
const nets = [
  await Network.create(config, 0, undefined, { threads: 1 }),
  await Network.create(config, 0, undefined, { threads: nt }),
];
for (const net of nets) net.setLearningRate(1e-5);
const acc = [new Float64Array(64), new Float64Array(64)], ms = [0, 0];
for (let r = 0; r < rounds; r++) {
  for (let n = 0; n < 2; n++) {
    const net = nets[n];
    const w = new Int32Array(net.exports.memory.buffer, net.exports.configPtr(), 256);
    const step = (k: number) => {
      if (values.infer) {
        const s = k % data.test.count;
        net.infer(data.test.images.subarray(s * 784, s * 784 + 784));
      } else {
        const s = order[k];
        net.trainSample(
          data.train.images.subarray(s * 784, s * 784 + 784),
          data.train.labels[s],
          0,
          k,
        );
      }
    };
    // The block's first step is not counted: its "between" holds the other network's block.
    step(r * B);
    w.fill(0, 192, 256);
    const t0 = performance.now();
    for (let k = r * B + 1; k < (r + 1) * B; k++) step(k);
    if (r === 0) continue;
    ms[n] += performance.now() - t0;
    for (let i = 0; i < 64; i++) acc[n][i] += w[192 + i] / 10;
  }
}
for (const net of nets) await net.close();
await Deno.remove(tmp, { recursive: true });

const N = (B - 1) * (rounds - 1);
// Phase words in step order (word: name); word 7 is marked in forward.ts.
const phases: [number, string][] = [
  [0, "enc"],
  [1, "wait"],
  [2, "fwd"],
  [7, "lists"],
  [3, "wait"],
  [4, "out"],
  [5, "wait"],
  [14, "outB"],
  [12, "bwdP"],
  [13, "bwdW"],
  [6, "bwd"],
  [9, "uPrep"],
  [8, "upd"],
  [10, "uShare"],
  [11, "wait"],
  [15, "between"],
];
const cols = phases.map(([k]) => k);
const head = ["", "µs/sample", ...phases.map(([, name]) => name)];
const rows: string[][] = [];
for (let n = 0; n < 2; n++) {
  const threads = n === 0 ? 1 : nt;
  for (let tid = 0; tid < threads; tid++) {
    rows.push([
      `${threads} thread${threads > 1 ? "s" : ""}, tid ${tid}`,
      tid === 0 ? (ms[n] * 1000 / N).toFixed(0) : "",
      ...cols.map((c) => (acc[n][tid * 16 + c] / N).toFixed(0)),
    ]);
  }
}
const width = head.map((h, k) => Math.max(h.length, ...rows.map((r) => r[k].length)));
const line = (r: string[]) =>
  r.map((c, k) => k === 0 ? c.padEnd(width[k]) : c.padStart(width[k])).join("  ");
console.log(
  `bench/phases.ts: MNIST 784-1600-800-10, ${values.infer ? "inference" : "training"}, ` +
    `${rounds - 1} × ${B} samples per thread count (1 and ${nt}, alternating), ${
      new Date().toISOString()
    }`,
);
console.log(line(head));
for (const r of rows) console.log(line(r));
console.log(
  "phases in µs per sample ('wait' is the barrier after the phase before it; with 1 thread, bwd holds the whole hidden backward pass and upd every update)",
);
