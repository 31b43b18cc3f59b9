// desire.wasm in several hosts and engines, against docs/ABI.md:
// - selftest() returns the documented checksum, and the Deno host reproduces it through the
//   ordinary ABI (its configuration block is exactly what deriveParams gives);
// - every export is harmless with no arguments in any order, and bad layer numbers and labels
//   return error codes without writing anything;
// - Node.js (tests/node_host.mjs, plain WebAssembly written from docs/ABI.md) and Deno
//   (src/network.ts) give identical configuration blocks, predictions, counts and trained weights;
// - wabt's wasm-validate accepts the module and wasm-interp (a non-V8 engine) computes the same
//   selftest() checksum.
// A missing node, wasm-validate or wasm-interp skips its test, or fails it when CI=true.
import assert from "node:assert/strict";
import { configure, type DesireExports, instantiate, setRate } from "../src/wasm.ts";
import { deriveParams, fixedRate, type NetConfig } from "../src/params.ts";
import { kaimingMaster, Network } from "../src/network.ts";
import { decodeModel, encodeModel } from "../src/model_file.ts";
import { drawHi, mix64Big, sampleKey } from "../src/rng.ts";
import { findNode, onPath } from "./tools.ts";

const ROOT = new URL("..", import.meta.url);
const WASM_PATH = new URL("desire.wasm", ROOT).pathname;
const NODE_HOST = new URL("node_host.mjs", import.meta.url).pathname;
const CI = Deno.env.get("CI") === "true";
/** selftest()'s checksum as docs/ABI.md states it (u32). */
const SELFTEST_CHECKSUM = 730046699;

type Exports = DesireExports & { selftest(): number };

const TOOLS: Record<"node" | "wasm-validate" | "wasm-interp", string | undefined> = {
  node: await findNode(),
  "wasm-validate": onPath("wasm-validate")[0],
  "wasm-interp": onPath("wasm-interp")[0],
};

/** Test options for a test that needs `tools`: skipped (with a message) if one is missing, unless CI. */
function needs(name: string, ...tools: (keyof typeof TOOLS)[]): { name: string; ignore: boolean } {
  const missing = tools.filter((t) => !TOOLS[t]);
  if (missing.length && !CI) {
    console.warn(`skipping "${name}": ${missing.join(", ")} not installed (CI=true fails instead)`);
  }
  return {
    name: missing.length && !CI ? `${name} (SKIPPED: no ${missing.join(", ")})` : name,
    ignore: missing.length > 0 && !CI,
  };
}

function assertTools(...tools: (keyof typeof TOOLS)[]): void {
  for (const t of tools) {
    assert.ok(TOOLS[t], `${t} is not installed (CI=true: install wabt and Node.js, see .ci/run)`);
  }
}

/** Runs an installed tool (by its absolute path). */
async function run(
  tool: keyof typeof TOOLS,
  args: string[],
): Promise<{ code: number; out: string }> {
  const r = await new Deno.Command(TOOLS[tool]!, { args, stdout: "piped", stderr: "piped" })
    .output();
  const d = new TextDecoder();
  return { code: r.code, out: d.decode(r.stdout) + d.decode(r.stderr) };
}

/** A fresh instance straight from the desire.wasm file (not through src/wasm.ts). */
async function fileInstance(): Promise<Exports> {
  const module = await WebAssembly.compile(await Deno.readFile(WASM_PATH));
  const env = {
    abort() {
      throw new Error("abort");
    },
  };
  return (await WebAssembly.instantiate(module, { env })).exports as unknown as Exports;
}

// ---- the self-test, rebuilt on the host from docs/ABI.md's description ----

const ST_SEED = 0x5e1f7e57;
const ST_CONFIG: NetConfig = {
  sizes: [16, 12, 8, 4],
  tsteps: 20,
  threshold: 1,
  decay: 2,
  margin: 4,
  desireHid: 0.05,
  desireOut: 0.3,
  dropIn: 0.125,
  dropHid: 0.25,
};
const ST_HALF_WIDTH = [0, 1400000, 1700000, 2000000];
const M64 = (1n << 64n) - 1n;

function selftestWeights(): Int32Array[] {
  const s = ST_CONFIG.sizes, out: Int32Array[] = [];
  for (let l = 1; l < s.length; l++) {
    const key = sampleKey(ST_SEED, 0xffffffff, l), a = ST_HALF_WIDTH[l];
    const w = new Int32Array(s[l - 1] * s[l]);
    for (let k = 0; k < w.length; k++) {
      w[k] = Number((BigInt(drawHi(key, 128, k)) * BigInt(2 * a + 1)) >> 32n) - a;
    }
    out.push(w);
  }
  return out;
}

function selftestImage(s: number): { image: Uint8Array; label: number } {
  const key = sampleKey(ST_SEED, 0xfffffffe, 0), label = s & 3;
  const image = new Uint8Array(16);
  for (let i = 0; i < 16; i++) {
    const r = drawHi(key, 130, 16 * s + i);
    image[i] = (i & 3) === label ? 160 + r % 96 : r % 64;
  }
  return { image, label };
}

/** Runs the self-test through Network; returns the checksum and how alive the run was. */
async function selftestOnHost() {
  const net = await Network.create(ST_CONFIG, ST_SEED, selftestWeights());
  net.setLearningRate(2 ** -8);
  const ex = net.exports, sizes = ST_CONFIG.sizes, L = sizes.length - 1;
  const configBefore = new Int32Array(ex.memory.buffer, ex.configPtr(), 512).slice();
  let h = 0n;
  const fold = (v: number) => {
    h = (mix64Big(h ^ BigInt(v >>> 0)) + 0x9e3779b97f4a7c15n) & M64;
  };
  const fired = new Array(L + 1).fill(0);
  for (let s = 0; s < 16; s++) {
    const { image, label } = selftestImage(s);
    fold(s < 12 ? net.trainSample(image, label, 0, s) : net.infer(image));
    for (const c of net.counts) fold(c);
    for (let l = 0; l <= L; l++) {
      for (const w of new Uint32Array(ex.memory.buffer, ex.wordsPtr(l), sizes[l])) {
        fold(w);
        if (w) fired[l]++;
      }
    }
  }
  const P = net.params.strides;
  for (const ptr of [ex.weightsPtr, ex.forwardWeightsPtr]) {
    for (let l = 1; l <= L; l++) {
      for (const v of new Int32Array(ex.memory.buffer, ptr(l), sizes[l - 1] * P[l])) fold(v);
    }
  }
  fold(net.saturations);
  const start = selftestWeights();
  let changed = 0;
  for (let l = 1; l <= L; l++) {
    const w = net.weights(l);
    for (let k = 0; k < w.length; k++) changed += w[k] !== start[l - 1][k] ? 1 : 0;
  }
  const checksum = (Number(h >> 32n) ^ Number(h & 0xffffffffn)) >>> 0;
  return { checksum, configBefore, fired, changed, saturations: net.saturations };
}

Deno.test("selftest(): the documented checksum, reproduced through the ABI", async (t) => {
  await t.step("a fresh instance returns it (src/wasm.ts and the desire.wasm file)", async () => {
    const viaHost = (await instantiate()) as Exports;
    assert.equal(viaHost.selftest() >>> 0, SELFTEST_CHECKSUM);
    assert.equal((await fileInstance()).selftest() >>> 0, SELFTEST_CHECKSUM);
  });

  await t.step("it is repeatable on the same instance and after other calls", async () => {
    const ex = await fileInstance();
    assert.equal(ex.selftest() >>> 0, SELFTEST_CHECKSUM);
    ex.trainSample(1, 5, 5);
    ex.beginSample(9, 9);
    assert.equal(ex.selftest() >>> 0, SELFTEST_CHECKSUM);
  });

  await t.step("its configuration block is what deriveParams gives", async () => {
    const a = await fileInstance();
    a.selftest();
    const b = await instantiate();
    configure(b, deriveParams(ST_CONFIG), ST_SEED);
    const r = fixedRate(2 ** -8);
    setRate(b, r.mant, r.shift);
    const wa = new Int32Array(a.memory.buffer, a.configPtr(), 512);
    const wb = new Int32Array(b.memory.buffer, b.configPtr(), 512);
    for (let k = 0; k < 512; k++) {
      if (k === 104 || k === 105) continue; // the last sample's key (b has run none)
      assert.equal(wa[k], wb[k], `configuration word ${k} (byte ${4 * k})`);
    }
  });

  await t.step("the Deno host's rebuild of the run gives the same checksum", async () => {
    const r = await selftestOnHost();
    assert.equal(r.checksum, SELFTEST_CHECKSUM);
    // The run is alive, so the checksum covers real work.
    for (let l = 1; l <= 3; l++) assert.ok(r.fired[l] >= 8, `layer ${l} fired ${r.fired[l]}`);
    assert.ok(r.changed >= 50, `only ${r.changed} weights changed`);
    assert.equal(r.saturations, 0);
  });

  await t.step("init() after selftest() gives the same network as a fresh instance", async () => {
    const config = { ...ST_CONFIG, sizes: [30, 20, 10] };
    const p = deriveParams(config);
    const weights = kaimingMaster(config.sizes, 3).map((w) => w.map((x) => 2 * x));
    const results: number[][] = [];
    for (const first of [true, false]) {
      const ex = await fileInstance();
      if (first) ex.selftest();
      configure(ex, p, 3);
      for (let l = 1; l <= p.L; l++) {
        const dst = new Int32Array(
          ex.memory.buffer,
          ex.weightsPtr(l),
          p.sizes[l - 1] * p.strides[l],
        );
        const w = weights[l - 1], nIn = p.sizes[l - 1];
        for (let j = 0; j < p.sizes[l]; j++) {
          for (let i = 0; i < nIn; i++) dst[i * p.strides[l] + j] = w[j * nIn + i];
        }
        ex.syncForward(l);
      }
      const r = fixedRate(1e-3);
      setRate(ex, r.mant, r.shift);
      const out: number[] = [];
      const image = new Uint8Array(ex.memory.buffer, ex.imagePtr(), 30);
      for (let s = 0; s < 6; s++) {
        image.set(selftestImage(s).image.subarray(0, 15), 0);
        image.set(selftestImage(s + 1).image.subarray(0, 15), 15);
        out.push(s < 4 ? ex.trainSample(s % 10, 0, s) : ex.inferSample());
        out.push(...new Int32Array(ex.memory.buffer, ex.countsPtr(), 10));
      }
      out.push(...new Int32Array(ex.memory.buffer, ex.weightsPtr(2), 20 * 12));
      results.push(out);
    }
    assert.deepEqual(results[0], results[1]);
  });
});

// ---- every export, with no arguments and with bad ones ----

/** The exported functions of an instance, in export order. */
function exportedFunctions(ex: Exports): [string, (...a: number[]) => number | void][] {
  return Object.entries(ex).filter(([, v]) => typeof v === "function") as [
    string,
    (...a: number[]) => number | void,
  ][];
}

/** A seeded permutation of 0..n−1. */
function permutation(n: number, seed: number): number[] {
  const order = Array.from({ length: n }, (_, i) => i);
  const key = sampleKey(seed, 1, 2);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor((drawHi(key, 5, i) * (i + 1)) / 2 ** 32);
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}

const SMALL: NetConfig = { ...ST_CONFIG, sizes: [20, 9, 6], dropIn: 0.1, dropHid: 0.3 };

Deno.test("every export is harmless with no arguments, in any order", async (t) => {
  await t.step("before init(): documented error codes, nothing written", async () => {
    const ex = await fileInstance();
    const before = new Uint8Array(ex.memory.buffer).slice();
    const got: Record<string, unknown> = {};
    for (const [name, f] of exportedFunctions(ex)) {
      if (name !== "selftest" && name !== "init") got[name] = f();
    }
    got.init = ex.init(); // an all-zero configuration: T = 0
    assert.deepEqual(got, {
      abiVersion: 1,
      configPtr: ex.configPtr(),
      init: -1,
      imagePtr: 0,
      wordsPtr: 0,
      keepPtr: 0,
      weightsPtr: 0,
      forwardWeightsPtr: 0,
      desirePtr: 0,
      countsPtr: 0,
      memoryEnd: 0,
      syncForward: -1,
      importWeights: -1,
      importPtr: 0,
      saturations: 0,
      beginSample: undefined,
      encode: -1,
      forwardLayer: -1,
      predict: -2,
      desireOutput: -1,
      backwardLayer: -1,
      updateLayer: -1,
      trainSample: -2,
      inferSample: -2,
      runSample: -2,
      workerLoop: -1,
      resetSaturations: undefined,
    });
    const after = new Uint8Array(ex.memory.buffer);
    assert.equal(after.length, before.length, "memory grew");
    const base = ex.configPtr();
    for (let k = 0; k < after.length; k++) {
      // beginSample() writes the key (words 104, 105): the only change allowed.
      if (k >= base + 416 && k < base + 424) continue;
      if (after[k] !== before[k]) assert.fail(`byte ${k} changed (config block at ${base})`);
    }
  });

  await t.step("any order, on fresh, configured and self-tested instances", async () => {
    for (let round = 0; round < 24; round++) {
      const ex = await fileInstance();
      if (round % 3 === 1) configure(ex, deriveParams(SMALL), 1);
      if (round % 3 === 2) ex.selftest();
      const fns = exportedFunctions(ex);
      const order = round < 3
        ? fns.map((_, i) => i)
        : round < 6
        ? fns.map((_, i) => fns.length - 1 - i)
        : permutation(fns.length, round);
      for (const i of order) {
        const [name, f] = fns[i];
        try {
          f();
        } catch (e) {
          assert.fail(`${name}() trapped in round ${round}: ${e}`);
        }
      }
    }
  });

  await t.step(
    "wasm-interp's order (export order, parameterless only) ends in the checksum",
    async () => {
      const ex = await fileInstance();
      let last: number | void = undefined;
      for (const [, f] of exportedFunctions(ex)) if (f.length === 0) last = f();
      assert.equal((last as number) >>> 0, SELFTEST_CHECKSUM);
    },
  );
});

Deno.test("bad layer numbers and labels return error codes and write nothing", async () => {
  const ex = await fileInstance();
  const p = deriveParams(SMALL);
  configure(ex, p, 1);
  const L = p.L, nOut = p.sizes[L];
  const bad = (lo: number, hi: number) =>
    [lo - 1, hi + 1, 16, -1, 2 ** 31 - 1, -(2 ** 31), 0x40000000].filter(
      (l) => l < lo || l > hi,
    );
  const snapshot = () => new Uint8Array(ex.memory.buffer).slice();
  const before = snapshot();
  const cases: [string, number[], () => void][] = [];
  const pointer = ["wordsPtr", "keepPtr"] as const;
  for (const name of pointer) {
    for (const l of bad(0, L)) cases.push([name, [l], () => assert.equal(ex[name](l), 0)]);
  }
  for (const name of ["weightsPtr", "forwardWeightsPtr", "desirePtr"] as const) {
    for (const l of bad(1, L)) cases.push([name, [l], () => assert.equal(ex[name](l), 0)]);
  }
  for (const l of bad(1, L)) {
    cases.push(["syncForward", [l], () => assert.equal(ex.syncForward(l), -1)]);
    cases.push(["forwardLayer", [l, 1], () => assert.equal(ex.forwardLayer(l, 1), -1)]);
    cases.push(["updateLayer", [l], () => assert.equal(ex.updateLayer(l), -1)]);
  }
  for (const l of bad(2, L)) {
    cases.push(["backwardLayer", [l], () => assert.equal(ex.backwardLayer(l), -1)]);
  }
  for (const y of [-1, nOut, nOut + 1, 2 ** 31 - 1, -(2 ** 31)]) {
    cases.push(["desireOutput", [y], () => assert.equal(ex.desireOutput(y), -1)]);
    cases.push(["trainSample", [y, 0, 0], () => assert.equal(ex.trainSample(y, 0, 0), -3)]);
  }
  for (const [name, args, check] of cases) {
    check();
    const now = new Uint8Array(ex.memory.buffer);
    for (let k = 0; k < now.length; k++) {
      if (now[k] !== before[k]) assert.fail(`${name}(${args}) changed byte ${k}`);
    }
  }
  // And the valid ranges work.
  for (let l = 0; l <= L; l++) assert.notEqual(ex.wordsPtr(l), 0);
  for (let l = 1; l <= L; l++) assert.equal(ex.syncForward(l), 0);
  assert.equal(ex.desireOutput(nOut - 1), 0);
  assert.ok(ex.trainSample(nOut - 1, 0, 0) >= -1);
});

// ---- Deno and Node.js ----

/** Seeded synthetic images: a bright bar per class on a noisy background. */
function images(count: number, nIn: number, seed: number): Uint8Array {
  const key = sampleKey(seed, 3, 3), out = new Uint8Array(count * nIn);
  for (let s = 0; s < count; s++) {
    for (let i = 0; i < nIn; i++) {
      const r = drawHi(key, 6, s * nIn + i);
      out[s * nIn + i] = (i * 10 / nIn | 0) === s % 10
        ? 120 + r % 136
        : (r & 3) === 0
        ? r % 200
        : 0;
    }
  }
  return out;
}

interface Job {
  name: string;
  config: NetConfig;
  seed: number;
  gain: number;
  lr: number;
  images: number;
  train: number;
}

const JOBS: Job[] = [
  {
    name: "784-48-24-10, T=20, dropout 0.1/0.3",
    config: {
      sizes: [784, 48, 24, 10],
      tsteps: 20,
      threshold: 1,
      decay: 2,
      margin: 4,
      desireHid: 0.05,
      desireOut: 0.3,
      dropIn: 0.1,
      dropHid: 0.3,
    },
    seed: 7,
    gain: 2,
    lr: 1e-3,
    images: 16,
    train: 10,
  },
  {
    name: "100-30-10, T=25, θ=0.8, d=3, m=5, dropout 0.05/0.4",
    config: {
      sizes: [100, 30, 10],
      tsteps: 25,
      threshold: 0.8,
      decay: 3,
      margin: 5,
      desireHid: 0.07,
      desireOut: 0.25,
      dropIn: 0.05,
      dropHid: 0.4,
    },
    seed: 0xdeadbeef,
    gain: 1.5,
    lr: 3e-3,
    images: 12,
    train: 8,
  },
];

const fromB64 = (s: string) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));

Deno.test(needs("Deno and Node.js give identical results", "node"), async (t) => {
  assertTools("node");
  const dir = await Deno.makeTempDir({ prefix: "desire_hosts_" });
  try {
    for (const job of JOBS) {
      await t.step(job.name, async () => {
        const { config, seed } = job;
        const weights = kaimingMaster(config.sizes, seed).map((w) =>
          w.map((x) => Math.round(x * job.gain))
        );
        const modelPath = `${dir}/model-${seed}.safetensors`;
        const info = { config, seed, epoch: 0, dataset: "synthetic", hyper: {} };
        await Deno.writeFile(modelPath, encodeModel(info, weights));
        const nIn = config.sizes[0], L = config.sizes.length - 1;
        const imgs = images(job.images, nIn, seed);
        const imagesPath = `${dir}/images-${seed}.u8`;
        await Deno.writeFile(imagesPath, imgs);
        const train = Array.from({ length: job.train }, (_, k) => [k, k % 10, k >> 2, k]);
        const infer = Array.from({ length: job.images }, (_, k) => k);
        const jobPath = `${dir}/job-${seed}.json`;
        await Deno.writeTextFile(
          jobPath,
          JSON.stringify({
            wasm: WASM_PATH,
            model: modelPath,
            images: imagesPath,
            lr: job.lr,
            train,
            infer,
          }),
        );
        const r = await run("node", [NODE_HOST, jobPath]);
        assert.equal(r.code, 0, `node_host.mjs failed:\n${r.out}`);
        const node = JSON.parse(r.out);

        // The same run in Deno, from the same model file, through src/network.ts.
        const model = decodeModel(await Deno.readFile(modelPath), modelPath);
        const net = await Network.create(model.config, model.seed, model.weights);
        net.setLearningRate(job.lr);
        const ex = net.exports;
        const config0 = new Int32Array(ex.memory.buffer, ex.configPtr(), 512).slice();
        const img = (k: number) => imgs.subarray(k * nIn, (k + 1) * nIn);
        const trainPredictions = train.map(([k, y, e, i]) => net.trainSample(img(k), y, e, i));
        const predictions: number[] = [], counts: number[][] = [];
        for (const k of infer) {
          predictions.push(net.infer(img(k)));
          counts.push(Array.from(net.counts));
        }
        const trained = Array.from({ length: L }, (_, l) => net.weights(l + 1));

        assert.match(node.runtime, /^node v\d+/, "node_host.mjs ran outside Node.js");
        assert.equal(node.abiVersion, 1);
        assert.ok(node.imports.every((i: string) => i === "env.abort"), `imports ${node.imports}`);
        assert.equal(node.selftest, SELFTEST_CHECKSUM, "selftest() in Node.js");
        const nodeConfig = new Int32Array(fromB64(node.config).buffer);
        const k = nodeConfig.findIndex((v, i) => v !== config0[i]);
        if (k >= 0) {
          assert.fail(
            `configuration blocks differ first at word ${k}: Node ${nodeConfig[k]}, ` +
              `Deno ${config0[k]}`,
          );
        }
        assert.deepEqual(node.trainPredictions, trainPredictions, "predictions while training");
        assert.deepEqual(node.counts, counts, "output counts");
        assert.deepEqual(node.predictions, predictions, "predictions");
        for (let l = 0; l < L; l++) {
          const w = new Int32Array(fromB64(node.weights[l]).buffer);
          assert.deepEqual(w, trained[l], `trained weights of layer ${l + 1}`);
        }
        assert.equal(node.saturations, 0);
        assert.equal(net.saturations, 0);
        // The comparison covers real work: the outputs spike and training changed weights.
        const spikes = counts.flat().reduce((a, b) => a + b, 0);
        assert.ok(spikes >= job.images * 5, `only ${spikes} output spikes`);
        assert.ok(new Set(predictions).size >= 2, `predictions ${predictions}`);
        const changed = trained.reduce(
          (a, w, l) => a + w.filter((v, k) => v !== weights[l][k]).length,
          0,
        );
        assert.ok(changed >= 100, `only ${changed} weights changed`);
      });
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// ---- wabt ----

Deno.test(
  needs("wasm-validate accepts desire.wasm; it imports at most env.abort", "wasm-validate"),
  async () => {
    const module = await WebAssembly.compile(await Deno.readFile(WASM_PATH));
    for (const i of WebAssembly.Module.imports(module)) {
      assert.deepEqual([i.module, i.name, i.kind], ["env", "abort", "function"]);
    }
    assertTools("wasm-validate");
    const r = await run("wasm-validate", [WASM_PATH]);
    assert.equal(r.code, 0, `wasm-validate rejected desire.wasm:\n${r.out}`);
  },
);

Deno.test(
  needs("wasm-interp (not V8) runs every export and computes the same selftest()", "wasm-interp"),
  async () => {
    assertTools("wasm-interp");
    const r = await run("wasm-interp", ["--dummy-import-func", "--run-all-exports", WASM_PATH]);
    assert.equal(r.code, 0, `wasm-interp failed:\n${r.out}`);
    assert.match(r.out, /^init\(\) => i32:4294967295$/m, r.out); // −1: empty configuration
    assert.match(r.out, /^inferSample\(\) => i32:4294967294$/m, r.out); // −2: before init
    const m = r.out.match(/^selftest\(\) => i32:(\d+)$/m);
    assert.ok(m, `no selftest() line in:\n${r.out}`);
    assert.equal(Number(m[1]), SELFTEST_CHECKSUM, `wasm-interp's checksum:\n${r.out}`);
    assert.doesNotMatch(r.out, /error|trap/i, r.out);
  },
);
