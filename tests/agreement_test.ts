// The integer kernels against the float32 model (src/float_model.ts) on MNIST, 784-200-10,
// default hyper-parameters, 3 epochs over the first 10,000 training samples:
// (a) the integer net's trained weights, evaluated by both models on the 10,000 test images:
//     the same predicted class on ≥ 99 % of them;
// (b) a float model trained from the same initial weights on the same samples in the same order
//     with the same dropout masks (read from wasm memory) and learning-rate schedule: final test
//     accuracies within 1.5 percentage points; no saturation in the integer net.
import assert from "node:assert/strict";
import { loadDataset } from "../src/datasets.ts";
import { classify, FloatNet } from "../src/float_model.ts";
import { masterToFloat, Network } from "../src/network.ts";
import { defaultConfig, epochRate, type NetConfig } from "../src/params.ts";
import { shuffledOrder } from "../src/rng.ts";

const CONFIG: NetConfig = defaultConfig([784, 200, 10]);
const SEED = 0;
const EPOCHS = 3;
const SAMPLES = 10_000;
const LR = 1e-5;
const KAPPA = 0.04;

Deno.test("integer kernels agree with the float32 model on MNIST (784-200-10)", async (t) => {
  const started = performance.now();
  const data = await loadDataset("mnist");
  const { sizes } = CONFIG;
  const L = sizes.length - 1;
  const nIn = sizes[0];
  const image = (split: typeof data.train, k: number) =>
    split.images.subarray(k * nIn, (k + 1) * nIn);

  const net = await Network.create(CONFIG, SEED);
  const init = Array.from({ length: L }, (_, l) => masterToFloat(net.weights(l + 1)));
  const float = new FloatNet(CONFIG, init);
  const ex = net.exports;
  const keeps = Array.from({ length: L }, (_, l) => new Uint8Array(sizes[l]));
  let intMs = 0, floatMs = 0;

  await t.step(`train both: ${EPOCHS} epochs × ${SAMPLES} samples, same order and masks`, () => {
    for (let e = 0; e < EPOCHS; e++) {
      const order = shuffledOrder(SEED, e, SAMPLES);
      const lr = epochRate(LR, KAPPA, e);
      net.setLearningRate(lr);
      for (let k = 0; k < SAMPLES; k++) {
        const idx = order[k];
        const x = image(data.train, idx), y = data.train.labels[idx];
        let t0 = performance.now();
        net.trainSample(x, y, e, k);
        intMs += performance.now() - t0;
        // The integer net's dropout masks of this sample (−1 kept) for the float model.
        for (let l = 0; l < L; l++) {
          const m = new Int32Array(ex.memory.buffer, ex.keepPtr(l), sizes[l]);
          for (let j = 0; j < sizes[l]; j++) keeps[l][j] = m[j] === -1 ? 1 : 0;
        }
        t0 = performance.now();
        float.trainStep(x, y, lr, keeps);
        floatMs += performance.now() - t0;
      }
    }
    console.log(
      `  training: integer ${(intMs / 1000).toFixed(1)} s, float ${(floatMs / 1000).toFixed(1)} s`,
    );
    assert.equal(net.saturations, 0, "saturation events in the integer net");
  });

  // Test-set evaluation of the integer net, of the float model on its weights, and of the
  // float-trained model.
  const n = data.test.count;
  const intPred = new Int32Array(n), mirrorPred = new Int32Array(n), floatPred = new Int32Array(n);
  let sumAbsDelta = 0, evalMs = 0;
  await t.step("(a) integer and float evaluation of the integer net's weights", () => {
    const t0 = performance.now();
    const mirror = new FloatNet(
      CONFIG,
      Array.from({ length: L }, (_, l) => masterToFloat(net.weights(l + 1))),
    );
    for (let k = 0; k < n; k++) {
      const x = image(data.test, k);
      intPred[k] = net.infer(x);
      const r = mirror.evaluate(x);
      mirrorPred[k] = r.predicted;
      const c = net.counts;
      assert.equal(classify(c), intPred[k]);
      for (let j = 0; j < c.length; j++) sumAbsDelta += Math.abs(c[j] - r.counts[j]);
      floatPred[k] = float.evaluate(x).predicted;
    }
    evalMs = performance.now() - t0;
    let agree = 0, intOk = 0, mirrorOk = 0;
    for (let k = 0; k < n; k++) {
      agree += intPred[k] === mirrorPred[k] ? 1 : 0;
      intOk += intPred[k] === data.test.labels[k] ? 1 : 0;
      mirrorOk += mirrorPred[k] === data.test.labels[k] ? 1 : 0;
    }
    const meanDelta = sumAbsDelta / (n * sizes[L]);
    console.log(
      `  (a) same class on ${(100 * agree / n).toFixed(2)} % of ${n} test images; mean |Δcount| ` +
        `${meanDelta.toFixed(4)}; accuracy integer ${(100 * intOk / n).toFixed(2)} %, float on ` +
        `the same weights ${(100 * mirrorOk / n).toFixed(2)} %`,
    );
    assert.ok(agree / n >= 0.99, `classes agree on only ${(100 * agree / n).toFixed(2)} %`);
  });

  await t.step("(b) integer-trained and float-trained accuracies within 1.5 points", () => {
    let intOk = 0, floatOk = 0;
    for (let k = 0; k < n; k++) {
      intOk += intPred[k] === data.test.labels[k] ? 1 : 0;
      floatOk += floatPred[k] === data.test.labels[k] ? 1 : 0;
    }
    const gap = 100 * (intOk - floatOk) / n;
    console.log(
      `  (b) accuracy integer-trained ${(100 * intOk / n).toFixed(2)} %, float-trained ` +
        `${(100 * floatOk / n).toFixed(2)} % (gap ${gap.toFixed(2)} points); saturations ` +
        `${net.saturations}; evaluation ${(evalMs / 1000).toFixed(1)} s, total ` +
        `${((performance.now() - started) / 1000).toFixed(1)} s`,
    );
    // Informational: how far apart the two training runs drifted.
    const drift = Array.from({ length: L }, (_, l) => {
      const a = masterToFloat(net.weights(l + 1)), b = float.weights(l);
      let d2 = 0, b2 = 0;
      for (let k = 0; k < a.length; k++) {
        d2 += (a[k] - b[k]) ** 2;
        b2 += b[k] ** 2;
      }
      return Math.sqrt(d2 / b2).toExponential(2);
    });
    let same = 0;
    for (let k = 0; k < n; k++) same += intPred[k] === floatPred[k] ? 1 : 0;
    console.log(
      `  (b) relative RMS weight difference per layer ${drift.join(", ")}; same class on ` +
        `${(100 * same / n).toFixed(2)} % of the test images`,
    );
    assert.ok(Math.abs(gap) <= 1.5, `accuracies differ by ${gap.toFixed(2)} points`);
    assert.equal(net.saturations, 0, "saturation events in the integer net");
  });
});
