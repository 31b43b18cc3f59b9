// Multi-threaded steps (src/threads.ts, desire-mt.wasm): the weights after any number of samples
// are bit-identical to one thread for any thread count, and so are predictions and counts.
import assert from "node:assert/strict";
import { Network } from "../src/network.ts";
import { loadDataset } from "../src/datasets.ts";
import { shuffledOrder } from "../src/rng.ts";
import { defaultConfig } from "../src/params.ts";
import { CFG } from "../src/wasm.ts";
import { SPIN_CANDIDATES } from "../src/spin_tuner.ts";

const config = defaultConfig([784, 300, 100, 10], 0.05, 0.3);

Deno.test("Network with 1, 2 and 3 threads trains bit-identical weights", async (t) => {
  const data = await loadDataset("mnist");
  const order = shuffledOrder(5, 0, 60000);
  const N = 150, M = 100;
  // spins 1: a waiting thread sleeps in atomic.wait at once, at every barrier (config word SPINS).
  const cases = [{ threads: 1 }, { threads: 2 }, { threads: 3 }, { threads: 2, spins: 1 }, {
    threads: 3,
    spins: 1,
  }];
  // One hidden layer, two, and three (whose backward passes follow one another), with sizes that
  // split unevenly into panels; and an output layer wider than a thread's share of the widest
  // layer (each thread updates all its lanes for its own inputs). With 2 threads, the update of
  // the hidden layer with the most weights is shared out (threads.ts): the first layer in most,
  // the second in 784-100-900-10. A hidden layer in panels of equal width (a multiple of 8 lanes)
  // lets a thread take the other's forward units; when it is the first, thread 1 builds its step
  // lists for both (784-24-400, 784-96-52-36-10, 784-64-48-10). 784-64-48-10 and 784-68-48-40-10
  // have later layers of equal panels, after a first of equal and of unequal ones.
  const secondLargest = [784, 100, 900, 10];
  const shapes = [
    config.sizes,
    [784, 68, 10],
    [784, 96, 52, 36, 10],
    [784, 24, 400],
    secondLargest,
    [784, 64, 48, 10],
    [784, 68, 48, 40, 10],
  ];
  for (const sizes of shapes) {
    let reference: { weights: Int32Array[]; predictions: number[]; counts: number[] } | undefined;
    const L = sizes.length - 1;
    for (const { threads, spins } of cases) {
      await t.step(
        `${sizes.join("-")}, ${threads} thread(s)${spins ? ", sleeping at every barrier" : ""}`,
        async () => {
          const net = await Network.create({ ...config, sizes }, 5, undefined, { threads });
          try {
            assert.equal(net.threads, threads);
            if (spins) {
              new Int32Array(net.exports.memory.buffer, net.exports.configPtr())[CFG.SPINS] = spins;
            }
            net.setLearningRate(1e-4);
            const start = net.weights(1);
            const predictions: number[] = [];
            for (let k = 0; k < N; k++) {
              const s = order[k];
              const img = data.train.images.subarray(784 * s, 784 * s + 784);
              predictions.push(net.trainSample(img, data.train.labels[s], 0, k));
            }
            const counts: number[] = [];
            for (let s = 0; s < M; s++) {
              predictions.push(net.infer(data.test.images.subarray(784 * s, 784 * s + 784)));
              counts.push(...net.counts);
            }
            const weights = Array.from({ length: L }, (_, k) => net.weights(k + 1));
            assert.equal(net.saturations, 0);
            if (threads > 1) {
              // The host's poll-count tuner (src/spin_tuner.ts) writes the word, unless something
              // else set it.
              const word =
                new Int32Array(net.exports.memory.buffer, net.exports.configPtr())[CFG.SPINS];
              if (spins) assert.equal(word, spins);
              else assert.ok(SPIN_CANDIDATES.includes(word), `SPINS word ${word}`);
            }
            const now = { weights, predictions, counts };
            if (!reference) {
              reference = now;
              // Alive: the weights moved and the network predicts.
              let changed = 0;
              for (let k = 0; k < start.length; k++) changed += start[k] !== weights[0][k] ? 1 : 0;
              assert.ok(
                changed > start.length * 0.01,
                `only ${changed} weights of layer 1 changed`,
              );
              assert.ok(new Set(predictions).size > 3, "predictions are all alike");
              return;
            }
            const ref: { weights: Int32Array[]; predictions: number[]; counts: number[] } =
              reference;
            for (let l = 0; l < L; l++) {
              const a: Int32Array = ref.weights[l], b: Int32Array = weights[l];
              const k = a.findIndex((v, i) => v !== b[i]);
              assert.equal(
                k,
                -1,
                `layer ${l + 1} weight ${k}: 1 thread ${a[k]}, ${threads} threads ${b[k]}`,
              );
            }
            assert.deepEqual(predictions, ref.predictions);
            assert.deepEqual(counts, ref.counts);
          } finally {
            await net.close();
          }
          // Every thread that slept in atomic.wait counted itself out again (the module and the
          // host skip a notify while SLEEPERS is 0).
          const sleepers =
            new Int32Array(net.exports.memory.buffer, net.exports.configPtr())[CFG.SLEEPERS];
          assert.equal(sleepers, 0, `SLEEPERS is ${sleepers} after close`);
        },
      );
    }
  }
});

Deno.test("Network with threads rejects a bad label without hanging, and closes twice", async () => {
  const net = await Network.create({ ...config, sizes: [784, 40, 10] }, 1, undefined, {
    threads: 2,
  });
  const img = new Uint8Array(784).fill(100);
  // A refused step returns at once; a worker must still have read its arguments by then, or it
  // runs the next step twice and waits at a barrier forever (close() then hangs too).
  for (let k = 0; k < 200; k++) {
    assert.equal(net.trainSample(img, 12, 0, 2 * k), -3);
    assert.ok(net.trainSample(img, 3, 0, 2 * k + 1) >= -1);
  }
  await net.close();
  await net.close();
  await assert.rejects(
    Network.create(config, 1, undefined, { threads: 0 }),
    /Cannot build network: 0 threads \(must be an integer in 1\.\.64\)/,
  );
});

Deno.test("desire-mt.wasm validates with wasm-validate --enable-threads", async (t) => {
  const ci = Deno.env.get("CI") === "true";
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command("wasm-validate", {
      args: ["--enable-threads", new URL("../desire-mt.wasm", import.meta.url).pathname],
      stderr: "piped",
    }).output();
  } catch (e) {
    if (ci) throw new Error("wasm-validate (Debian package wabt) is required under CI=true");
    await t.step({ name: `SKIPPED: no wasm-validate (${(e as Error).message})`, fn: () => {} });
    return;
  }
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  const imports = WebAssembly.Module.imports(
    new WebAssembly.Module(await Deno.readFile(new URL("../desire-mt.wasm", import.meta.url))),
  );
  assert.deepEqual(imports.map((i) => `${i.module}.${i.name}`).sort(), ["env.memory"]);
});
