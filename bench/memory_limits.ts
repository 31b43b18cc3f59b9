/**
 * What the threaded build's memory costs on one thread: MNIST training (784-1600-800-10, Kaiming
 * seed 0, lr 1e-5, epoch-0 shuffle) with the same kernels three ways, in turns block by block:
 *
 * - `desire.wasm`, the portable build, over its own growable memory;
 * - `desire-mt.wasm` as built, over a shared memory of 1 to 65536 pages;
 * - `desire-mt.wasm` with its memory's limits rewritten to the network's size
 *   (src/wasm_limits.ts), over a shared memory of exactly that size: what src/threads.ts runs.
 *
 *   deno run -A bench/memory_limits.ts [--rounds R] [--block B]
 *
 * Prints each build's median block time and the median of its blocks' time ratios to the
 * portable build (the first round is a warm-up), and checks that all three end with the same
 * weights.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { configure, type DesireExports, setRate, WASM_URL } from "../src/wasm.ts";
import { WASM_MT_URL } from "../src/threads.ts";
import { withMemoryLimits } from "../src/wasm_limits.ts";
import { defaultConfig, deriveParams, fixedRate } from "../src/params.ts";
import { kaimingMaster } from "../src/network.ts";
import { loadDataset } from "../src/datasets.ts";
import { shuffledOrder } from "../src/rng.ts";
import { median } from "../src/stats.ts";

const { values } = parseArgs({
  options: {
    rounds: { type: "string", default: "12" },
    block: { type: "string", default: "1500" },
  },
});
const R = Number(values.rounds), B = Number(values.block);
if (!Number.isInteger(R) || R < 2) throw new RangeError("--rounds must be an integer ≥ 2");
if (!Number.isInteger(B) || B < 1 || B * R > 60000) {
  throw new RangeError("--block must be ≥ 1 and block × rounds ≤ 60000");
}

const data = await loadDataset("mnist", { verify: false });
const config = defaultConfig([784, 1600, 800, 10]);
const p = deriveParams(config);
const order = shuffledOrder(0, 0, data.train.count);
const master = kaimingMaster(config.sizes, 0);
const rate = fixedRate(1e-5);
const abort = () => {
  throw new Error("aborted");
};

async function build(
  bytes: Uint8Array<ArrayBuffer>,
  memory?: WebAssembly.Memory,
): Promise<DesireExports> {
  const env: WebAssembly.ModuleImports = { abort };
  if (memory) env.memory = memory;
  const inst = await WebAssembly.instantiate(await WebAssembly.compile(bytes), { env });
  const ex = inst.exports as unknown as DesireExports;
  if (memory) Object.defineProperty(ex, "memory", { value: memory });
  configure(ex, p, 0, 1);
  for (let l = 1; l <= p.L; l++) {
    new Int32Array(ex.memory.buffer, ex.importPtr(l), master[l - 1].length).set(master[l - 1]);
    if (ex.importWeights(l) !== 0) throw new Error("bench/memory_limits.ts: weights clamped");
  }
  setRate(ex, rate.mant, rate.shift);
  return ex;
}

const portable = await Deno.readFile(WASM_URL);
const mt = await Deno.readFile(WASM_MT_URL);
const growable = await build(
  mt,
  new WebAssembly.Memory({ initial: 1, maximum: 65536, shared: true }),
);
const pages = growable.memory.buffer.byteLength / 65536;
const builds: [string, DesireExports][] = [
  ["desire.wasm (own memory)", await build(portable)],
  ["desire-mt.wasm, shared 1..65536 pages", growable],
  [
    `desire-mt.wasm, shared ${pages}..${pages} pages`,
    await build(
      withMemoryLimits(mt, pages, pages),
      new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true }),
    ),
  ],
];

const times = builds.map(() => [] as number[]);
for (let r = 0; r < R; r++) {
  for (let v = 0; v < builds.length; v++) {
    const b = (v + r) % builds.length; // a different build first in each round
    const ex = builds[b][1];
    const img = new Uint8Array(ex.memory.buffer, ex.imagePtr(), 784);
    const t0 = performance.now();
    for (let k = r * B; k < (r + 1) * B; k++) {
      const s = order[k];
      img.set(data.train.images.subarray(s * 784, s * 784 + 784));
      ex.trainSample(data.train.labels[s], 0, k);
    }
    if (r > 0) times[b].push(performance.now() - t0);
  }
}

const weights = (ex: DesireExports) =>
  new Int32Array(ex.memory.buffer, ex.weightsPtr(1), p.sizes[0] * p.strides[1]);
const ref = weights(builds[0][1]);
const same = builds.every(([, ex]) => weights(ex).every((w, i) => w === ref[i]));
console.log(
  `bench/memory_limits.ts: MNIST 784-1600-800-10 training on 1 thread, ${R - 1} × ${B} samples ` +
    `per build (in turns), ${new Date().toISOString()}`,
);
for (let b = 0; b < builds.length; b++) {
  const ratio = median(times[b].map((t, i) => t / times[0][i]));
  console.log(
    `  ${builds[b][0].padEnd(40)} ${(B / median(times[b]) * 1000).toFixed(0).padStart(6)} ` +
      `samples/s   time / portable ${ratio.toFixed(3)}`,
  );
}
console.log(`  same first-layer weights after training: ${same ? "yes" : "NO"}`);
if (!same) Deno.exit(1);
