// The SIMD kernels of desire.wasm against the scalar integer reference (src/reference.ts):
// bit for bit on spike words, counts, desires and updated weights, on random networks and
// inputs, kernel by kernel, failing at the first mismatching index with its inputs.
import assert from "node:assert/strict";
import { configure, type DesireExports, instantiate, setRate } from "../src/wasm.ts";
import { defaultConfig, deriveParams, fixedRate, type IntParams, toMaster } from "../src/params.ts";
import { popcount, ReferenceNet } from "../src/reference.ts";
import { drawNormal, sampleKey } from "../src/rng.ts";

interface Case {
  sizes: number[];
  tsteps: number;
  margin: number;
  decay: number;
  dropIn: number;
  dropHid: number;
  lr: number;
  steps: number;
  seed: number;
  /** Weight scale over Kaiming (larger weights make the deeper layers fire more). */
  gain: number;
}

/** Seeded random MNIST-like images: about a third of the pixels bright, the rest dark. */
export function randomImages(count: number, nIn: number, seed: number): Uint8Array[] {
  const key = sampleKey(seed, 7, 7);
  const out: Uint8Array[] = [];
  for (let s = 0; s < count; s++) {
    const img = new Uint8Array(nIn);
    for (let i = 0; i < nIn; i++) {
      const u = drawNormal(key, 3, s * nIn + i);
      img[i] = u > 0.4 ? Math.min(255, Math.floor(90 + 120 * u)) : 0;
    }
    out.push(img);
  }
  return out;
}

/** A wasm instance and a reference with the same parameters and random weights. */
export async function makePair(
  c: Case,
): Promise<{ ex: DesireExports; ref: ReferenceNet; p: IntParams }> {
  const p = deriveParams({
    sizes: c.sizes,
    tsteps: c.tsteps,
    threshold: 1,
    decay: c.decay,
    margin: c.margin,
    desireHid: 0.05,
    desireOut: 0.3,
    dropIn: c.dropIn,
    dropHid: c.dropHid,
  });
  const ex = await instantiate();
  configure(ex, p, c.seed);
  const ref = new ReferenceNet(p, c.seed);
  const key = sampleKey(c.seed, 99, 99);
  for (let l = 1; l <= p.L; l++) {
    const nIn = p.sizes[l - 1], P = p.strides[l];
    const w = new Int32Array(ex.memory.buffer, ex.weightsPtr(l), nIn * P);
    const std = Math.sqrt(2 / nIn) * c.gain;
    for (let i = 0; i < nIn; i++) {
      for (let j = 0; j < p.sizes[l]; j++) {
        w[i * P + j] = toMaster(std * drawNormal(key, 10 + l, i * P + j));
      }
    }
    ref.master[l].set(w);
    assert.equal(ex.syncForward(l), 0);
    ref.syncForward(l);
  }
  const rate = fixedRate(c.lr);
  setRate(ex, rate.mant, rate.shift);
  ref.rate = rate;
  return { ex, ref, p };
}

function expectSame(what: string, wasm: ArrayLike<number>, ref: ArrayLike<number>, ctx: string) {
  assert.equal(wasm.length, ref.length, `${what}: lengths differ (${ctx})`);
  for (let k = 0; k < ref.length; k++) {
    if (wasm[k] !== ref[k]) {
      assert.fail(
        `${what} differs first at index ${k}: wasm ${wasm[k]}, reference ${ref[k]} (${ctx})`,
      );
    }
  }
}

const i32 = (ex: DesireExports, ptr: number, n: number) => new Int32Array(ex.memory.buffer, ptr, n);
const u32 = (ex: DesireExports, ptr: number, n: number) =>
  new Uint32Array(ex.memory.buffer, ptr, n);

/** Runs `c.steps` training steps kernel by kernel in both, comparing after every kernel. */
async function runCase(c: Case): Promise<void> {
  const { ex, ref, p } = await makePair(c);
  const { L, sizes, strides } = p;
  const images = randomImages(c.steps + 2, sizes[0], c.seed + 1);
  const start = Array.from(
    { length: L + 1 },
    (_, l) => (l ? ref.master[l].slice() : new Int32Array()),
  );
  const fired = new Array<number>(L + 1).fill(0);
  const neuronSteps = new Array<number>(L + 1).fill(0);
  let desiredUp = 0, desiredDown = 0;
  for (let s = 0; s < c.steps + 2; s++) {
    const train = s < c.steps;
    const label = (s * 7 + c.seed) % sizes[L];
    const ctx = `case ${JSON.stringify(c.sizes)} T=${c.tsteps} m=${c.margin} d=${c.decay} ` +
      `drop=${c.dropIn},${c.dropHid} lr=${c.lr} seed=${c.seed}, ${
        train ? "training" : "eval"
      } step ${s}`;
    new Uint8Array(ex.memory.buffer, ex.imagePtr(), sizes[0]).set(images[s]);
    ex.beginSample(0, s);
    ref.beginSample(0, s);
    ex.encode(train ? 1 : 0);
    ref.dropoutMasks(train);
    ref.encode(images[s]);
    for (let l = 0; l <= L; l++) {
      expectSame(`keep mask of layer ${l}`, i32(ex, ex.keepPtr(l), strides[l]), ref.keep[l], ctx);
    }
    expectSame("input words", u32(ex, ex.wordsPtr(0), strides[0]), ref.words[0], ctx);
    for (let l = 1; l <= L; l++) {
      ex.forwardLayer(l, train ? 1 : 0);
      ref.forwardLayer(l, train);
      expectSame(
        `spike words of layer ${l}`,
        u32(ex, ex.wordsPtr(l), strides[l]),
        ref.words[l],
        ctx,
      );
      for (let j = 0; j < sizes[l]; j++) fired[l] += ref.words[l][j] !== 0 ? 1 : 0;
      neuronSteps[l] += sizes[l];
    }
    assert.equal(ex.predict(), ref.predict(), `prediction (${ctx})`);
    expectSame("output counts", i32(ex, ex.countsPtr(), sizes[L]), ref.counts, ctx);
    if (!train) continue;
    ex.desireOutput(label);
    ref.desireOutput(label);
    for (let l = L; l >= 1; l--) {
      if (l < L) {
        ex.backwardLayer(l + 1);
        ref.backwardLayer(l + 1);
      }
      expectSame(`desire of layer ${l}`, i32(ex, ex.desirePtr(l), strides[l]), ref.desire[l], ctx);
      for (let j = 0; j < sizes[l]; j++) {
        const dj = ref.desire[l][j];
        if (dj & 1) dj & 2 ? desiredUp++ : desiredDown++;
      }
    }
    for (let l = 1; l <= L; l++) {
      ex.updateLayer(l);
      ref.updateLayer(l);
      const n = sizes[l - 1] * strides[l];
      expectSame(`master weights of layer ${l}`, i32(ex, ex.weightsPtr(l), n), ref.master[l], ctx);
      expectSame(
        `forward weights of layer ${l}`,
        i32(ex, ex.forwardWeightsPtr(l), n),
        ref.fwd[l],
        ctx,
      );
    }
  }
  assert.equal(ex.saturations(), 0, "saturation events in wasm");
  assert.equal(ref.saturations, 0, "saturation events in the reference");
  // The case must be alive, or the comparison above proves little.
  for (let l = 1; l <= L; l++) {
    const rate = fired[l] / neuronSteps[l];
    assert.ok(rate >= 0.05, `layer ${l} fired in only ${(100 * rate).toFixed(1)} % of its neurons`);
    let changed = 0;
    for (let k = 0; k < start[l].length; k++) changed += start[l][k] !== ref.master[l][k] ? 1 : 0;
    const frac = changed / (sizes[l - 1] * sizes[l]);
    assert.ok(frac >= 0.01, `only ${(100 * frac).toFixed(2)} % of layer ${l}'s weights changed`);
  }
  assert.ok(desiredUp > 0 && desiredDown > 0, `desired up ${desiredUp}, down ${desiredDown}`);
}

const base: Case = {
  sizes: [784, 37, 13, 10],
  tsteps: 20,
  margin: 4,
  decay: 2,
  dropIn: 0,
  dropHid: 0.3,
  lr: 1e-3,
  steps: 4,
  seed: 1,
  gain: 1.5,
};

Deno.test("trainSample kernels match the scalar reference bit for bit on random nets", async (t) => {
  const cases: Case[] = [
    base,
    { ...base, sizes: [784, 32, 16, 10], dropIn: 0.1, seed: 2 },
    { ...base, sizes: [100, 5, 3], tsteps: 5, margin: 4, seed: 3, gain: 2.5 },
    { ...base, sizes: [61, 300, 10], tsteps: 32, margin: 4, seed: 4, gain: 1.2 },
    { ...base, sizes: [200, 64, 40, 24, 10], tsteps: 17, margin: 3, seed: 5, gain: 2 },
    { ...base, sizes: [784, 257, 10], tsteps: 20, decay: 0, dropHid: 0.5, seed: 6, gain: 3 },
    { ...base, sizes: [150, 33, 10], tsteps: 25, decay: 5, margin: 7, seed: 7, gain: 1 },
    { ...base, sizes: [784, 50, 10], lr: 1e-6, steps: 6, seed: 8, gain: 1.5 },
    { ...base, sizes: [128, 19, 10], tsteps: 11, margin: 10, lr: 0.05, seed: 9, gain: 2 },
  ];
  for (const c of cases) {
    const name = `${c.sizes.join("-")} T=${c.tsteps} m=${c.margin} d=${c.decay} lr=${c.lr}`;
    await t.step(name, () => runCase(c));
  }
});

Deno.test("inputs of layer 1 that share a word go through one class row, bit for bit", async () => {
  // 12 pixels of 128 (a spike every other step: many list entries each) and 3 of 60 make two
  // classes; 6 saturated pixels (one run: one entry each) stay single inputs.
  const c: Case = { ...base, sizes: [64, 40, 10], seed: 11 };
  const { ex, ref, p } = await makePair(c);
  const img = new Uint8Array(64);
  const groups = [Array.from({ length: 12 }, (_, k) => 2 * k), [41, 47, 53]];
  for (const i of groups[0]) img[i] = 128;
  for (const i of groups[1]) img[i] = 60;
  for (const i of [30, 31, 32, 33, 34, 35]) img[i] = 255;
  new Uint8Array(ex.memory.buffer, ex.imagePtr(), 64).set(img);
  assert.equal(ex.encode(0), 0);
  ref.dropoutMasks(false);
  ref.encode(img);
  assert.equal(ex.forwardLayer(1, 0), 0);
  ref.forwardLayer(1, false);
  expectSame("spike words of layer 1", u32(ex, ex.wordsPtr(1), 40), ref.words[1], "class rows");
  // One panel: class c's row is row N_0 + c of layer 1's forward weights (docs/ABI.md).
  const P = p.strides[1];
  const rows = i32(ex, ex.forwardWeightsPtr(1), (64 + groups.length) * P);
  for (let cl = 0; cl < groups.length; cl++) {
    const sum = new Int32Array(P);
    for (const i of groups[cl]) for (let j = 0; j < P; j++) sum[j] += ref.fwd[1][i * P + j];
    expectSame(`class row ${cl}`, rows.subarray((64 + cl) * P, (65 + cl) * P), sum, "class rows");
  }
  assert.ok(ref.words[1].some((w) => w !== 0), "layer 1 fired");
});

Deno.test("trainSample() equals the kernel-by-kernel sequence", async () => {
  const c = { ...base, sizes: [784, 40, 10], seed: 11 };
  const a = await makePair(c);
  const b = await makePair(c);
  const images = randomImages(5, 784, 12);
  for (let s = 0; s < 5; s++) {
    for (const x of [a, b]) new Uint8Array(x.ex.memory.buffer, x.ex.imagePtr(), 784).set(images[s]);
    const label = s % 10;
    const pa = a.ex.trainSample(label, 3, s);
    b.ex.beginSample(3, s);
    b.ex.encode(1);
    for (let l = 1; l <= 2; l++) b.ex.forwardLayer(l, 1);
    const pb = b.ex.predict();
    b.ex.desireOutput(label);
    b.ex.backwardLayer(2);
    for (let l = 1; l <= 2; l++) b.ex.updateLayer(l);
    assert.equal(pa, pb);
    for (let l = 1; l <= 2; l++) {
      const n = a.p.sizes[l - 1] * a.p.strides[l];
      expectSame(
        `weights of layer ${l}`,
        i32(a.ex, a.ex.weightsPtr(l), n),
        i32(b.ex, b.ex.weightsPtr(l), n),
        `step ${s}`,
      );
    }
  }
});

Deno.test("popcount() counts bits", () => {
  assert.equal(popcount(0), 0);
  assert.equal(popcount(0xffffffff), 32);
  assert.equal(popcount(0x80000001), 2);
});

Deno.test("exports refuse to run after the network's shape changed without init()", async () => {
  const { ex } = await makePair({ ...base, sizes: [784, 20, 10], seed: 12 });
  new Uint8Array(ex.memory.buffer, ex.imagePtr(), 784).fill(200);
  assert.ok(ex.trainSample(3, 0, 0) >= -1, "a configured network trains");
  const cfg = new Int32Array(ex.memory.buffer, ex.configPtr(), 128);
  cfg[8 + 1] = 5000; // layer 1's size, without init()
  assert.equal(ex.trainSample(3, 0, 1), -2);
  assert.equal(ex.inferSample(), -2);
  assert.equal(ex.weightsPtr(1), 0);
  cfg[8 + 1] = 20; // restored: the layout matches again
  assert.ok(ex.inferSample() >= -1);
});

Deno.test("desireOutput() clamps counts written by the host", async () => {
  const { ex } = await makePair({ ...base, sizes: [784, 20, 10], seed: 13 });
  new Int32Array(ex.memory.buffer, ex.countsPtr(), 10).set([2 ** 30, -5, 0, 3, 0, 0, 0, 0, 0, 99]);
  assert.equal(ex.desireOutput(1), 0);
  const des = new Int32Array(ex.memory.buffer, ex.desirePtr(2), 10);
  assert.equal(des[0] & 1, 1, "a huge count on a non-target neuron is desired (to fall silent)");
});

Deno.test("an inference-only network evaluates exactly like a full one and refuses to train", async () => {
  const { Network, kaimingMaster } = await import("../src/network.ts");
  const config = defaultConfig([784, 45, 22, 10]);
  const w = kaimingMaster(config.sizes, 21).map((x) => x.map((v) => v * 3));
  const full = await Network.create(config, 21, w);
  const lean = await Network.create(config, 21, w, { inferenceOnly: true });
  assert.equal(lean.inferenceOnly, true);
  assert.ok(lean.exports.memoryEnd() < full.exports.memoryEnd(), "no master weights allocated");
  let spikes = 0;
  for (const img of randomImages(20, 784, 22)) {
    assert.equal(lean.infer(img), full.infer(img));
    assert.deepEqual([...lean.counts], [...full.counts]);
    spikes += full.counts.reduce((a, b) => a + b, 0);
  }
  assert.ok(spikes > 0, "the outputs fired");
  for (let l = 1; l <= 3; l++) {
    const n = config.sizes[l - 1] * ((config.sizes[l] + 3) & ~3);
    expectSame(
      `forward weights of layer ${l}`,
      i32(lean.exports, lean.exports.forwardWeightsPtr(l), n),
      i32(full.exports, full.exports.forwardWeightsPtr(l), n),
      "inference only",
    );
  }
  assert.throws(() => lean.trainSample(new Uint8Array(784), 1, 0, 0), /built for inference only/);
  assert.equal(lean.exports.trainSample(1, 0, 0), -4);
  assert.equal(lean.exports.updateLayer(1), -1);
  assert.equal(lean.exports.weightsPtr(1), 0);
  // importWeights counts (and clamps) weights beyond ±2^28.
  const bad = w.map((x) => x.slice());
  bad[1][5] = 2 ** 29;
  await assert.rejects(
    Network.create(config, 21, bad, { inferenceOnly: true }),
    /1 weights beyond ±2\^28/,
  );
});

Deno.test("trainSample() matches ReferenceNet.trainSample(), desires included", async () => {
  const c = { ...base, sizes: [784, 61, 30, 10], dropIn: 0.1, seed: 31, gain: 1.6 };
  const { ex, ref, p } = await makePair(c);
  const images = randomImages(6, 784, 32);
  let skipped = 0;
  for (let s = 0; s < images.length; s++) {
    new Uint8Array(ex.memory.buffer, ex.imagePtr(), 784).set(images[s]);
    const label = (3 * s) % 10;
    assert.equal(ex.trainSample(label, 1, s), ref.trainSample(images[s], label, 1, s));
    for (let l = 1; l <= p.L; l++) {
      const ctx = `step ${s}`;
      expectSame(
        `desire of layer ${l}`,
        i32(ex, ex.desirePtr(l), p.strides[l]),
        ref.desire[l],
        ctx,
      );
      const n = p.sizes[l - 1] * p.strides[l];
      expectSame(`master weights of layer ${l}`, i32(ex, ex.weightsPtr(l), n), ref.master[l], ctx);
    }
    for (let i = 0; i < p.sizes[1]; i++) skipped += ref.words[1][i] === 0 ? 1 : 0;
  }
  assert.ok(
    skipped > 0,
    "some first-layer neurons were silent, so the skipped desires were tested",
  );
});
