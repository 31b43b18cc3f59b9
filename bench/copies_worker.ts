// A worker of bench/copies.ts: one 1-thread MNIST network of its own that restores the given
// weights and trains a block of samples when asked, and reports the time the block took.
/// <reference lib="deno.worker" />
import { defaultConfig } from "../src/params.ts";
import { Network } from "../src/network.ts";
import { loadDataset } from "../src/datasets.ts";
import { shuffledOrder } from "../src/rng.ts";

// Loaded while the handler is already set: a message that came before it would be lost.
const loaded = loadDataset("mnist", { verify: false }).then((data) => ({
  data,
  order: shuffledOrder(0, 0, data.train.count),
}));
let net: Network | undefined;
let start: Int32Array[] = [];

self.onmessage = async (e: MessageEvent) => {
  const msg = e.data as
    | { kind: "init"; sizes: number[]; weights: Int32Array[] }
    | { kind: "train"; k0: number; n: number }
    | { kind: "weights" }
    | { kind: "close" };
  if (msg.kind === "init") {
    start = msg.weights;
    net = await Network.create(defaultConfig(msg.sizes), 0, start, { threads: 1 });
    net.setLearningRate(1e-5);
    self.postMessage({ kind: "ready" });
  } else if (msg.kind === "train") {
    const n = net!, { data, order } = await loaded;
    for (let l = 1; l <= start.length; l++) n.setWeights(l, start[l - 1]);
    const t0 = performance.now();
    for (let k = msg.k0; k < msg.k0 + msg.n; k++) {
      const s = order[k];
      n.trainSample(data.train.images.subarray(s * 784, s * 784 + 784), data.train.labels[s], 0, k);
    }
    self.postMessage({ kind: "trained", ms: performance.now() - t0 });
  } else if (msg.kind === "weights") {
    const n = net!;
    self.postMessage({ kind: "weights", weights: start.map((_, l) => n.weights(l + 1)) });
  } else {
    await net?.close();
    self.postMessage({ kind: "closed" });
    self.close();
  }
};
