/**
 * A/B timing of two source trees of this project on N threads, interleaved in one process: each
 * tree's own `Network` (and so its own desire.wasm / desire-mt.wasm) trains from the same Kaiming
 * weights on the same samples in alternating blocks, then evaluates test images in alternating
 * blocks, so that the machine's drifting speed hits both alike. `bench/ab.ts` does this for two
 * builds of the portable desire.wasm on one thread; this one also covers the threaded build.
 *
 *   deno run -A bench/ab_trees.ts OLD_TREE NEW_TREE [--threads N] [--blocks B] [--dataset D]
 *
 * e.g. `git worktree add /tmp/old HEAD~1 && deno run -A bench/ab_trees.ts /tmp/old .`. Prints the
 * median samples/s of each tree, the median of the blocks' NEW / OLD ratios, and whether both end
 * with the same weights (they must, for a change that keeps the numbers bit for bit).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { resolve } from "node:path";

const { values, positionals } = parseArgs({
  args: Deno.args,
  allowPositionals: true,
  options: {
    threads: { type: "string", default: "2" },
    blocks: { type: "string", default: "10" },
    dataset: { type: "string", default: "mnist" },
  },
});
if (positionals.length !== 2) {
  console.error(
    "usage: deno run -A bench/ab_trees.ts OLD_TREE NEW_TREE [--threads N] [--blocks B] [--dataset D]",
  );
  Deno.exit(2);
}
const threads = Number(values.threads), blocks = Number(values.blocks);
const ds = values.dataset;
if (!Number.isInteger(threads) || threads < 1 || threads > 64) {
  console.error(`Invalid --threads: ${values.threads} (must be an integer in 1..64)`);
  Deno.exit(2);
}
if (!Number.isInteger(blocks) || blocks < 2 || blocks > 200) {
  console.error(`Invalid --blocks: ${values.blocks} (must be an integer in 2..200)`);
  Deno.exit(2);
}
if (ds !== "mnist" && ds !== "fashion-mnist") {
  console.error(`Invalid --dataset: ${ds} (mnist or fashion-mnist)`);
  Deno.exit(2);
}
const roots = positionals.map((p) => resolve(p));
for (const r of roots) {
  try {
    Deno.statSync(`${r}/src/network.ts`);
  } catch {
    console.error(`Cannot use ${r}: it has no src/network.ts (not a tree of this project)`);
    Deno.exit(2);
  }
}

const trees = await Promise.all(roots.map(async (r) => ({
  Network: (await import(`${r}/src/network.ts`)).Network,
  defaultConfig: (await import(`${r}/src/params.ts`)).defaultConfig,
})));
const { loadDataset } = await import(`${roots[1]}/src/datasets.ts`);
const { shuffledOrder } = await import(`${roots[1]}/src/rng.ts`);
const data = await loadDataset(ds, { verify: false });
const sizes = ds === "mnist" ? [784, 1600, 800, 10] : [784, 1000, 100, 10];
const nets = await Promise.all(trees.map((t) => {
  const c = t.defaultConfig(sizes);
  if (ds === "fashion-mnist") {
    c.dropIn = 0.05;
    c.dropHid = 0.4;
  }
  return t.Network.create(c, 0, undefined, { threads });
}));
for (const n of nets) n.setLearningRate(1e-5);
const order: Uint32Array = shuffledOrder(0, 0, data.train.count);
const B = 250, E = 500;
const train: number[][] = [[], []], infer: number[][] = [[], []];
try {
  for (let b = 0; b < blocks; b++) {
    for (const x of b % 2 ? [1, 0] : [0, 1]) {
      const t0 = performance.now();
      for (let k = b * B; k < (b + 1) * B; k++) {
        const s = order[k % order.length];
        nets[x].trainSample(
          data.train.images.subarray(s * 784, s * 784 + 784),
          data.train.labels[s],
          0,
          k,
        );
      }
      train[x].push(B / ((performance.now() - t0) / 1000));
    }
  }
  for (let b = 0; b < blocks; b++) {
    for (const x of b % 2 ? [1, 0] : [0, 1]) {
      const t0 = performance.now();
      for (let k = b * E; k < (b + 1) * E; k++) {
        const s = k % data.test.count;
        nets[x].infer(data.test.images.subarray(s * 784, s * 784 + 784));
      }
      infer[x].push(E / ((performance.now() - t0) / 1000));
    }
  }
  const med = (a: number[]) => [...a].sort((p, q) => p - q)[a.length >> 1];
  const ratio = (a: number[], b: number[]) => med(a.map((v, i) => b[i] / v));
  let same = true;
  for (let l = 1; l < sizes.length; l++) {
    const a: Int32Array = nets[0].weights(l), b: Int32Array = nets[1].weights(l);
    if (a.some((v, i) => v !== b[i])) same = false;
  }
  console.log(
    `${ds}, ${threads} thread(s), ${blocks} blocks of ${B} training samples and ${E} test images:\n` +
      `  training  samples/s OLD ${med(train[0]).toFixed(0)}, NEW ${med(train[1]).toFixed(0)}, ` +
      `NEW / OLD ${ratio(train[0], train[1]).toFixed(3)} (median of the blocks' ratios)\n` +
      `  inference samples/s OLD ${med(infer[0]).toFixed(0)}, NEW ${med(infer[1]).toFixed(0)}, ` +
      `NEW / OLD ${ratio(infer[0], infer[1]).toFixed(3)}\n` +
      `  same weights after training: ${same ? "yes" : "NO"}`,
  );
  if (!same) Deno.exitCode = 1;
} finally {
  for (const n of nets) await n.close();
}
