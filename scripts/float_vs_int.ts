/**
 * The integer kernels and the float32 model (src/float_model.ts) trained side by side for many
 * epochs: the same initial weights, samples, order, dropout masks (read from the wasm memory) and
 * learning-rate schedule; both evaluated on the MNIST test set after every epoch. It measures
 * whether the integer design learns like the float algorithm late in training, when η·trace falls
 * to a few units of the master weights' resolution (2^−20) and below, where only stochastic
 * rounding carries the updates.
 *
 * ```sh
 * deno run -A scripts/float_vs_int.ts --hidden 200 --samples 10000 --epochs 40 --kappa 0.1
 * ```
 *
 * Prints one JSON object per epoch: the learning rate, both test accuracies, the share of test
 * images both classify alike, and the relative RMS difference of the weights per layer.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { loadDataset } from "../src/datasets.ts";
import { FloatNet } from "../src/float_model.ts";
import { masterToFloat, Network } from "../src/network.ts";
import { defaultConfig, epochRate } from "../src/params.ts";
import { shuffledOrder } from "../src/rng.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    hidden: { type: "string", default: "200" },
    samples: { type: "string", default: "10000" },
    epochs: { type: "string", default: "40" },
    lr: { type: "string", default: "1e-5" },
    kappa: { type: "string", default: "0.1" },
    seed: { type: "string", default: "0" },
    "data-dir": { type: "string" },
  },
});
const num = (name: string, text: string, min: number): number => {
  const v = Number(text);
  if (!Number.isFinite(v) || v < min) {
    console.error(`Invalid --${name}: ${text} (must be a number ≥ ${min})`);
    Deno.exit(2);
  }
  return v;
};
const hidden = values.hidden.split(",").map((h) => num("hidden", h, 1));
const samples = num("samples", values.samples, 1);
const epochs = num("epochs", values.epochs, 1);
const lr = num("lr", values.lr, 0);
const kappa = num("kappa", values.kappa, 0);
const seed = num("seed", values.seed, 0);

const data = await loadDataset("mnist", { dataDir: values["data-dir"] });
const config = defaultConfig([784, ...hidden, 10]);
const { sizes } = config;
const L = sizes.length - 1;
const n = Math.min(samples, data.train.count);
const image = (split: typeof data.train, k: number) =>
  split.images.subarray(k * 784, (k + 1) * 784);

const net = await Network.create(config, seed, undefined, { threads: 1 });
const float = new FloatNet(
  config,
  Array.from({ length: L }, (_, l) => masterToFloat(net.weights(l + 1))),
);
const ex = net.exports;
const keeps = Array.from({ length: L }, (_, l) => new Uint8Array(sizes[l]));
console.error(
  `float_vs_int: ${sizes.join("-")}, ${n} samples × ${epochs} epochs, lr ${lr}, kappa ${kappa}`,
);
for (let e = 0; e < epochs; e++) {
  const t0 = performance.now();
  const order = shuffledOrder(seed, e, n);
  const rate = epochRate(lr, kappa, e);
  net.setLearningRate(rate);
  for (let k = 0; k < n; k++) {
    const idx = order[k];
    const x = image(data.train, idx), y = data.train.labels[idx];
    net.trainSample(x, y, e, k);
    for (let l = 0; l < L; l++) {
      const m = new Int32Array(ex.memory.buffer, ex.keepPtr(l), sizes[l]);
      for (let j = 0; j < sizes[l]; j++) keeps[l][j] = m[j] === -1 ? 1 : 0;
    }
    float.trainStep(x, y, rate, keeps);
  }
  let intOk = 0, floatOk = 0, same = 0;
  for (let k = 0; k < data.test.count; k++) {
    const x = image(data.test, k), y = data.test.labels[k];
    const a = net.infer(x), b = float.evaluate(x).predicted;
    intOk += a === y ? 1 : 0;
    floatOk += b === y ? 1 : 0;
    same += a === b ? 1 : 0;
  }
  const drift = Array.from({ length: L }, (_, l) => {
    const a = masterToFloat(net.weights(l + 1)), b = float.weights(l);
    let d2 = 0, b2 = 0;
    for (let k = 0; k < a.length; k++) {
      d2 += (a[k] - b[k]) ** 2;
      b2 += b[k] ** 2;
    }
    return Number(Math.sqrt(d2 / b2).toExponential(3));
  });
  console.log(JSON.stringify({
    epoch: e + 1,
    lr: rate,
    integer_test_accuracy: intOk / data.test.count,
    float_test_accuracy: floatOk / data.test.count,
    same_class: same / data.test.count,
    relative_rms_weight_difference: drift,
    saturations: net.saturations,
    seconds: Number(((performance.now() - t0) / 1000).toFixed(1)),
  }));
}
await net.close();
