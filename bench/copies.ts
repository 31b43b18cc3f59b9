/**
 * The machine's own two-core bound for this workload: how much faster two cores train MNIST
 * than one when nothing is shared, next to what the threaded step makes of the two cores.
 *
 *   deno run -A bench/copies.ts [--rounds R] [--block B] [--warm W]
 *
 * First a 2-thread network trains the first W samples of the epoch-0 shuffle (784-1600-800-10,
 * Kaiming seed 0, lr 1e-5, as bench/ab.ts and bench/phases.ts), and its weights are the start of
 * every measurement below: each one restores them, then trains the next B samples (W..W+B), so all
 * of them do the same work, bit for bit (checked: the copies end with the threaded network's
 * weights). Then R rounds, each in a rotating order of:
 *
 * - **one**: one Web Worker with a 1-thread network of its own trains the block, the other idle;
 * - **copies**: two such workers train the block at once, each on its own network and memory
 *   (two independent training processes: nothing shared, no barrier): the sum of their rates;
 * - **threads**: the 2-thread network (`--threads 2`: one sample split across both cores).
 *
 * It prints the medians of the rates and of the rounds' ratios copies / one and threads / one. The
 * first is the bound: no way of splitting a sample across the two cores can beat two copies that
 * share nothing (short of a working set that fits the two cores' caches and not one's), so where
 * copies / one stays below a target ratio, the machine rules the target out for that time.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { defaultConfig } from "../src/params.ts";
import { Network } from "../src/network.ts";
import { loadDataset } from "../src/datasets.ts";
import { shuffledOrder } from "../src/rng.ts";
import { median } from "../src/stats.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    rounds: { type: "string", default: "15" },
    block: { type: "string", default: "2000" },
    warm: { type: "string", default: "10000" },
  },
});
const R = Number(values.rounds), B = Number(values.block), W = Number(values.warm);
for (const [flag, v, lo] of [["--rounds", R, 3], ["--block", B, 100], ["--warm", W, 0]] as const) {
  if (!Number.isInteger(v) || v < lo) {
    console.error(
      `Invalid ${flag}: ${values[flag.slice(2) as "rounds"]} (must be an integer ≥ ${lo})`,
    );
    Deno.exit(2);
  }
}
if (W + B > 60000) {
  console.error(`Invalid --warm + --block: ${W + B} (the epoch has 60000 samples)`);
  Deno.exit(2);
}

const sizes = [784, 1600, 800, 10];
const data = await loadDataset("mnist", { verify: false });
const order = shuffledOrder(0, 0, data.train.count);
const threaded = await Network.create(defaultConfig(sizes), 0, undefined, { threads: 2 });
threaded.setLearningRate(1e-5);
const trainBlock = (net: Network, k0: number, n: number) => {
  for (let k = k0; k < k0 + n; k++) {
    const s = order[k];
    net.trainSample(data.train.images.subarray(s * 784, s * 784 + 784), data.train.labels[s], 0, k);
  }
};
trainBlock(threaded, 0, W);
const start = sizes.slice(1).map((_, l) => threaded.weights(l + 1));

type Reply = { kind: string; ms?: number; weights?: Int32Array[] };
class Copy {
  #w = new Worker(new URL("./copies_worker.ts", import.meta.url), { type: "module" });
  #next: ((r: Reply) => void)[] = [];
  constructor() {
    this.#w.onmessage = (e: MessageEvent) => this.#next.shift()!(e.data as Reply);
  }
  ask(msg: unknown): Promise<Reply> {
    return new Promise((res) => {
      this.#next.push(res);
      this.#w.postMessage(msg);
    });
  }
}
const copies = [new Copy(), new Copy()];
await Promise.all(copies.map((c) => c.ask({ kind: "init", sizes, weights: start })));

const train = (c: Copy) => c.ask({ kind: "train", k0: W, n: B }).then((r) => r.ms!);
const rate = (ms: number) => B / (ms / 1000);
const runs: Record<string, () => Promise<number>> = {
  one: async () => rate(await train(copies[0])),
  copies: async () => {
    const [a, b] = await Promise.all(copies.map(train));
    return rate(a) + rate(b);
  },
  threads: () => {
    for (let l = 1; l < sizes.length; l++) threaded.setWeights(l, start[l - 1]);
    const t0 = performance.now();
    trainBlock(threaded, W, B);
    return Promise.resolve(rate(performance.now() - t0));
  },
};
const kinds = Object.keys(runs);
const got: Record<string, number[]> = { one: [], copies: [], threads: [] };
await runs.one(); // warm-up, not counted
for (let r = 0; r < R; r++) {
  for (let k = 0; k < kinds.length; k++) {
    const kind = kinds[(r + k) % kinds.length];
    got[kind].push(await runs[kind]());
  }
}

// The same work: both copies and the threaded network end the block with the same weights.
const same = (await Promise.all(copies.map((c) => c.ask({ kind: "weights" })))).every((r) =>
  r.weights!.every((w, l) => {
    const t = threaded.weights(l + 1);
    return w.length === t.length && w.every((v, i) => v === t[i]);
  })
);
await Promise.all(copies.map((c) => c.ask({ kind: "close" })));
await threaded.close();

const ratios = (kind: string) => got[kind].map((v, r) => v / got.one[r]);
const fmt = (x: number) => Math.round(x).toLocaleString("en-US");
const range = (a: number[]) => `${Math.min(...a).toFixed(2)}–${Math.max(...a).toFixed(2)}`;
console.log(
  `bench/copies.ts: MNIST 784-1600-800-10 training, ${R} rounds of ${B} samples (${W}..${
    W + B
  } of the epoch-0 shuffle, from the weights after ${W}), ${new Date().toISOString()}`,
);
console.log(`  one worker, 1 thread:            ${fmt(median(got.one))} samples/s`);
console.log(
  `  two workers, independent copies: ${fmt(median(got.copies))} samples/s, ${
    median(ratios("copies")).toFixed(2)
  } × one (rounds ${range(ratios("copies"))})`,
);
console.log(
  `  one network, 2 threads:          ${fmt(median(got.threads))} samples/s, ${
    median(ratios("threads")).toFixed(2)
  } × one (rounds ${range(ratios("threads"))})`,
);
const share = got.threads.map((v, r) => v / got.copies[r]);
console.log(
  `  threads / copies: ${median(share).toFixed(2)} (rounds ${range(share)}); same weights: ${
    same ? "yes" : "NO"
  }`,
);
if (!same) Deno.exit(1);
