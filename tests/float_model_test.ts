import { deepStrictEqual, equal, fail, notStrictEqual, throws } from "node:assert/strict";
import {
  classify,
  type FloatConfig,
  FloatNet,
  kaimingInit,
  type StepResult,
} from "../src/float_model.ts";
import { goldenFloatConfig, loadGolden } from "../src/golden.ts";

/** Seeded uniform generator on [0, 1) (mulberry32), one per test. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Fails on the first element of `actual` that differs from `expected` by more than `tol`,
 * naming the tensor and the index as (layer, row, column) of a `rows × cols` matrix.
 */
function expectClose(
  name: string,
  layer: number,
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  cols: number,
  rowName: string,
  colName: string,
  tol = 0,
): void {
  if (actual.length !== expected.length) {
    fail(`${name}: length ${actual.length}, expected ${expected.length}`);
  }
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i], e = expected[i];
    if (!(Math.abs(a - e) <= tol) && !(Number.isNaN(a) && Number.isNaN(e))) {
      fail(
        `${name}: first mismatch at layer ${layer}, ${rowName} ${Math.floor(i / cols)}, ` +
          `${colName} ${i % cols}: got ${a}, expected ${e} (tolerance ${tol})`,
      );
    }
  }
}

Deno.test("FloatNet replays the golden reference steps", async (t) => {
  const g = await loadGolden();
  const config = goldenFloatConfig(g.hyper);
  const sizes = config.sizes;
  const L = sizes.length - 1;
  const T = config.tsteps;
  const lr = g.hyper.lr_lin * Math.exp(-0.04 * g.hyper.epoch);
  const net = new FloatNet(config, Array.from({ length: L }, (_, k) => g.f32(`init.w${k}`)));

  const checkSpikes = (p: string, r: StepResult) => {
    for (let l = 0; l <= L; l++) {
      expectClose(
        `${p}.l${l}.spikes`,
        l,
        r.spikes![l],
        g.u8(`${p}.l${l}.spikes`),
        sizes[l],
        "row (step)",
        "neuron",
      );
    }
    expectClose(`${p}.out.counts`, L, r.counts, g.i32(`${p}.out.counts`), sizes[L], "-", "neuron");
  };

  for (const s of g.hyper.train_samples.keys()) {
    const p = `train${s}`;
    await t.step(`${p}: spikes, counts, desires exact; traces, dw, weights to 1e-6`, () => {
      const keeps = Array.from({ length: L }, (_, l) => g.u8(`${p}.l${l}.keep`));
      deepStrictEqual(g.u8(`${p}.l${L}.keep`), new Uint8Array(sizes[L]).fill(1));
      const r = net.trainStep(g.u8(`${p}.image`), g.u8(`${p}.label`)[0], lr, keeps, true);
      checkSpikes(p, r);
      equal(r.traces!.length, L);
      for (let k = 0; k < L; k++) {
        const nIn = sizes[k], nOut = sizes[k + 1];
        equal(r.traces![k].length, (T + 1) * nIn);
        expectClose(
          `${p}.l${k + 1}.traces`,
          k + 1,
          r.traces![k],
          g.f32(`${p}.l${k + 1}.traces`),
          nIn,
          "row (step)",
          "input",
          1e-6,
        );
        expectClose(
          `${p}.l${k + 1}.desire`,
          k + 1,
          r.desires![k],
          g.u8(`${p}.l${k + 1}.desire`),
          2,
          "neuron",
          "column",
        );
        expectClose(`${p}.dw${k}`, k + 1, r.dw![k], g.f64(`${p}.dw${k}`), nIn, "out", "in", 1e-6);
        expectClose(
          `${p}.w${k}`,
          k + 1,
          net.weights(k),
          g.f32(`${p}.w${k}`),
          nIn,
          "out",
          "in",
          1e-6,
        );
        equal(r.dw![k].length, nOut * nIn);
      }
    });
  }
  for (const s of g.hyper.eval_samples.keys()) {
    const p = `eval${s}`;
    await t.step(`${p}: spikes and counts exact`, () => {
      checkSpikes(p, net.evaluate(g.u8(`${p}.image`), true));
    });
  }
});

// ---------------------------------------------------------------------------------------------
// A dense, step-by-step model written from docs/algorithm.md alone: slow and obvious. FloatNet
// must agree with it exactly when all current sums are exact (weights on a coarse grid).

interface NaiveResult {
  spikes: Uint8Array[];
  counts: Int32Array;
  traces: Float32Array[];
  desires: Uint8Array[];
  weights: Float32Array[];
}

function naiveStep(
  c: FloatConfig,
  w0: readonly Float32Array[],
  image: Uint8Array,
  label: number,
  lr: number,
  keeps: readonly Uint8Array[],
): NaiveResult {
  const f = Math.fround;
  const sizes = c.sizes, L = sizes.length - 1, T = c.tsteps;
  const lam = f(1 - 2 ** -c.decay), theta = f(c.threshold), n = T - c.margin;
  const w = w0.map((x) => x.slice());
  const keep = (l: number, i: number) => (l < L ? keeps[l][i] === 1 : true);
  const spikes = sizes.map((s) => new Uint8Array((T + 1) * s));
  const traces = sizes.slice(0, L).map((s) => new Float32Array((T + 1) * s));
  const u = sizes.map((s) => new Float32Array(s));
  for (let t = 0; t < T; t++) {
    for (let i = 0; i < sizes[0]; i++) {
      u[0][i] = f(u[0][i] + f(image[i] / 255));
      if (u[0][i] >= theta && keep(0, i)) {
        spikes[0][t * sizes[0] + i] = 1;
        u[0][i] = f(u[0][i] - theta);
      }
    }
    for (let k = 0; k < L; k++) {
      const nIn = sizes[k], nOut = sizes[k + 1];
      const read = spikes[k].subarray(t * nIn, (t + 1) * nIn); // row t, both for k = 0 and k > 0
      const scale = f(1 / (1 - (k === 0 ? c.dropIn : c.dropHid)));
      for (let i = 0; i < nIn; i++) {
        traces[k][(t + 1) * nIn + i] = f(f(lam * traces[k][t * nIn + i]) + read[i]);
      }
      for (let j = 0; j < nOut; j++) {
        let s = 0;
        for (let i = 0; i < nIn; i++) if (read[i]) s += w[k][j * nIn + i];
        let v = f(f(lam * u[k + 1][j]) + f(scale * s));
        if (v >= theta && keep(k + 1, j)) {
          spikes[k + 1][(t + 1) * nOut + j] = 1;
          v = f(v - theta);
        }
        u[k + 1][j] = v;
      }
    }
  }
  const count = (l: number, j: number) => {
    let s = 0;
    for (let t = 0; t <= T; t++) s += spikes[l][t * sizes[l] + j];
    return s;
  };
  const counts = Int32Array.from({ length: sizes[L] }, (_, j) => count(L, j));
  const desires = sizes.slice(1).map((s) => new Uint8Array(2 * s));
  for (let j = 0; j < sizes[L]; j++) {
    const e = j === label ? f(1 - f(counts[j] / n)) : f(counts[j] / n);
    desires[L - 1][2 * j] = e > f(c.desireOut) ? 1 : 0;
    desires[L - 1][2 * j + 1] = j === label ? 1 : 0;
  }
  const sgn = (k: number, j: number) => {
    const d = desires[k];
    if (!d[2 * j] || !keep(k + 1, j)) return 0;
    return d[2 * j + 1] ? 1 : -1;
  };
  for (let k = L - 1; k >= 1; k--) {
    const nIn = sizes[k], nOut = sizes[k + 1];
    for (let i = 0; i < nIn; i++) {
      let s = 0;
      for (let j = 0; j < nOut; j++) {
        const dir = desires[k][2 * j + 1];
        const err = f(Math.abs(dir - f(count(k + 1, j) / n)));
        s += f(w[k][j * nIn + i] * f(err * sgn(k, j)));
      }
      s = f(s);
      desires[k - 1][2 * i] = Math.abs(s) >= f(c.desireHid) ? 1 : 0;
      desires[k - 1][2 * i + 1] = s > 0 ? 1 : 0;
    }
  }
  for (let k = 0; k < L; k++) {
    const nIn = sizes[k], nOut = sizes[k + 1];
    for (let j = 0; j < nOut; j++) {
      const sg = sgn(k, j);
      if (sg === 0) continue;
      for (let i = 0; i < nIn; i++) {
        let s = 0;
        for (let t = 0; t < T; t++) {
          if (spikes[k + 1][(t + 1) * nOut + j]) s += traces[k][(t + 1) * nIn + i];
        }
        if (s !== 0) w[k][j * nIn + i] = f(w[k][j * nIn + i] + sg * f(lr) * f(s));
      }
    }
  }
  return { spikes, counts, traces, desires, weights: w };
}

/** Weights on a grid of 2^-10 within ±2: every current sum is exact in any order. */
function gridWeights(sizes: number[], random: () => number, gain: number): Float32Array[] {
  return kaimingInit(sizes, random).map((w) =>
    w.map((x) => Math.max(-2, Math.min(2, Math.round(x * gain * 1024) / 1024)))
  );
}

Deno.test("FloatNet agrees exactly with a dense step-by-step model", async (t) => {
  const random = seeded(20240601);
  const cases: { name: string; sizes: number[]; tsteps: number; pixels: () => number }[] = [
    // Mostly saturated pixels (few changes: current kept across steps).
    {
      name: "saturated",
      sizes: [64, 24, 12, 5],
      tsteps: 20,
      pixels: () => random() < 0.5 ? 0 : 255,
    },
    // Mid-grey pixels (many changes: current rebuilt every step).
    {
      name: "mid-grey",
      sizes: [64, 24, 12, 5],
      tsteps: 20,
      pixels: () => 60 + (random() * 120 | 0),
    },
    { name: "mixed, T = 32", sizes: [50, 17, 7], tsteps: 32, pixels: () => (random() * 256) | 0 },
    {
      name: "one linear layer, T = 8",
      sizes: [33, 4],
      tsteps: 8,
      pixels: () => (random() * 256) | 0,
    },
  ];
  for (const { name, sizes, tsteps, pixels } of cases) {
    await t.step(name, () => {
      const L = sizes.length - 1;
      const config: FloatConfig = {
        sizes,
        tsteps,
        threshold: 1,
        decay: 2,
        margin: Math.floor(tsteps / 5),
        desireHid: 0.05,
        desireOut: 0.3,
        dropIn: 0.1,
        dropHid: 0.3,
      };
      for (let sample = 0; sample < 6; sample++) {
        const w = gridWeights(sizes, random, sample % 2 ? 1 : 2.5);
        const net = new FloatNet(config, w);
        const image = Uint8Array.from({ length: sizes[0] }, pixels);
        const keeps = sizes.slice(0, L).map((s, l) =>
          Uint8Array.from({ length: s }, () => (random() < (l === 0 ? 0.9 : 0.7) ? 1 : 0))
        );
        const label = sample % sizes[L];
        const r = net.trainStep(image, label, 1e-3, keeps, true);
        const want = naiveStep(config, w, image, label, 1e-3, keeps);
        const at = `sample ${sample}`;
        for (let l = 0; l <= L; l++) {
          expectClose(`${at} spikes`, l, r.spikes![l], want.spikes[l], sizes[l], "row", "neuron");
        }
        expectClose(`${at} counts`, L, r.counts, want.counts, sizes[L], "-", "neuron");
        for (let k = 0; k < L; k++) {
          const nIn = sizes[k];
          expectClose(`${at} traces`, k + 1, r.traces![k], want.traces[k], nIn, "row", "input");
          expectClose(`${at} desires`, k + 1, r.desires![k], want.desires[k], 2, "neuron", "col");
          expectClose(`${at} weights`, k + 1, net.weights(k), want.weights[k], nIn, "out", "in");
        }
        // Evaluation: the same model without dropout.
        const evalNet = new FloatNet(config, w);
        const ones = sizes.slice(0, L).map((s) => new Uint8Array(s).fill(1));
        const noDrop = { ...config, dropIn: 0, dropHid: 0 };
        const e = evalNet.evaluate(image, true);
        const we = naiveStep(noDrop, w, image, label, 0, ones);
        for (let l = 0; l <= L; l++) {
          expectClose(
            `${at} eval spikes`,
            l,
            e.spikes![l],
            we.spikes[l],
            sizes[l],
            "row",
            "neuron",
          );
        }
        equal(e.predicted, classify(we.counts));
      }
    });
  }
});

Deno.test("classify() and FloatNet predict −1 when the top count is shared", () => {
  equal(classify([0, 3, 1, 3]), -1);
  equal(classify([0, 0]), -1);
  equal(classify([2, 5, 1]), 1);
  equal(classify(new Int32Array([9])), 0);
  const sizes = [16, 8, 3];
  const config: FloatConfig = {
    sizes,
    tsteps: 20,
    threshold: 1,
    decay: 2,
    margin: 4,
    desireHid: 0.05,
    desireOut: 0.3,
    dropIn: 0,
    dropHid: 0,
  };
  // Outputs 0 and 2 have identical weights: identical counts.
  const w1 = new Float32Array(8 * 16).fill(0.25);
  const w2 = new Float32Array(3 * 8);
  for (let i = 0; i < 8; i++) {
    w2[0 * 8 + i] = 0.5;
    w2[2 * 8 + i] = 0.5;
  }
  const net = new FloatNet(config, [w1, w2]);
  const r = net.evaluate(new Uint8Array(16).fill(200));
  equal(r.counts[0], r.counts[2]);
  notStrictEqual(r.counts[0], 0);
  equal(r.predicted, -1);
  // All-silent outputs are a tie too.
  const silent = new FloatNet(config, [w1, new Float32Array(3 * 8)]);
  deepStrictEqual(silent.evaluate(new Uint8Array(16).fill(200)).counts, new Int32Array(3));
  equal(silent.evaluate(new Uint8Array(16)).predicted, -1);
});

Deno.test("FloatNet copies its weights in and out", () => {
  const sizes = [3, 2];
  const config: FloatConfig = {
    sizes,
    tsteps: 4,
    threshold: 1,
    decay: 1,
    margin: 1,
    desireHid: 0.05,
    desireOut: 0.3,
    dropIn: 0,
    dropHid: 0,
  };
  const w = new Float32Array([1, 2, 3, 4, 5, 6]);
  const net = new FloatNet(config, [w]);
  w[0] = 99;
  deepStrictEqual(net.weights(0), new Float32Array([1, 2, 3, 4, 5, 6]));
  net.weights(0)[1] = 99;
  deepStrictEqual(net.weights(0), new Float32Array([1, 2, 3, 4, 5, 6]));
  deepStrictEqual(net.config.sizes, [3, 2]);
});

Deno.test("FloatNet rejects invalid configurations and inputs", async (t) => {
  const config: FloatConfig = {
    sizes: [4, 3, 2],
    tsteps: 20,
    threshold: 1,
    decay: 2,
    margin: 4,
    desireHid: 0.05,
    desireOut: 0.3,
    dropIn: 0,
    dropHid: 0.3,
  };
  const w = [new Float32Array(12), new Float32Array(6)];
  const cases: [string, () => unknown, string][] = [
    [
      "too few layers",
      () => new FloatNet({ ...config, sizes: [4] }, []),
      "Cannot create FloatNet: sizes needs at least 2 layers",
    ],
    [
      "T above 32",
      () => new FloatNet({ ...config, tsteps: 33 }, w),
      "Cannot create FloatNet: tsteps 33 is outside 1 … 32",
    ],
    [
      "margin ≥ T",
      () => new FloatNet({ ...config, margin: 20 }, w),
      "Cannot create FloatNet: margin 20 is outside 0 … tsteps − 1",
    ],
    [
      "dropout 1",
      () => new FloatNet({ ...config, dropHid: 1 }, w),
      "Cannot create FloatNet: dropHid 1 is outside [0, 1)",
    ],
    [
      "wrong weight count",
      () => new FloatNet(config, [w[0]]),
      "Cannot create FloatNet: expected 2 weight arrays, got 1",
    ],
    [
      "wrong weight size",
      () => new FloatNet(config, [w[0], new Float32Array(5)]),
      "Cannot create FloatNet: weights[1] has 5 elements, expected 2 × 3",
    ],
  ];
  for (const [name, fn, message] of cases) {
    await t.step(name, () => throws(fn, { name: "RangeError", message }));
  }
  const net = new FloatNet(config, w);
  const keeps = [new Uint8Array(4).fill(1), new Uint8Array(3).fill(1)];
  const img = new Uint8Array(4);
  const calls: [string, () => unknown, string][] = [
    [
      "short image",
      () => net.evaluate(new Uint8Array(3)),
      "Cannot run FloatNet: image has 3 pixels, expected 4",
    ],
    [
      "label out of range",
      () => net.trainStep(img, 2, 1e-3, keeps),
      "Cannot train: label 2 is outside 0 … 1",
    ],
    [
      "missing mask",
      () => net.trainStep(img, 0, 1e-3, keeps.slice(0, 1)),
      "Cannot train: expected 2 dropout masks, got 1",
    ],
    [
      "short mask",
      () => net.trainStep(img, 0, 1e-3, [keeps[0], new Uint8Array(2)]),
      "Cannot train: dropout mask 1 has 2 entries, expected 3",
    ],
    ["bad layer index", () => net.weights(2), "Cannot read weights: layer 2 is outside 0 … 1"],
  ];
  for (const [name, fn, message] of calls) {
    await t.step(name, () => throws(fn, { name: "RangeError", message }));
  }
});
