// Float models in the authors' naming (layers.{n}.weights): the fixtures evaluate the same with
// our integer kernels as with the float32 model, a round trip keeps every weight within one
// fixed-point step, bad files are rejected with exact messages, and the CLI export/import/eval/
// train paths read them.
import assert from "node:assert/strict";
import {
  decodeFloatModel,
  encodeFloatModel,
  FLOAT_DEFAULTS,
  floatTensorName,
  masterToF16,
  masterToF32,
  numberToHalf,
} from "../src/float_io.ts";
import { decodeModel, encodeModel, loadModel } from "../src/model_file.ts";
import {
  decodeSafetensors,
  encodeSafetensors,
  type TensorInput,
  tensorToF32,
} from "../src/safetensors.ts";
import { FloatNet } from "../src/float_model.ts";
import { Network } from "../src/network.ts";
import { evaluate } from "../src/train.ts";
import { type DatasetName, loadDataset } from "../src/datasets.ts";
import type { NetConfig } from "../src/params.ts";
import { parseTrainArgs } from "../src/args.ts";

const CLI = new URL("../cli.ts", import.meta.url).pathname;
const FIXTURES = new URL("./fixtures/", import.meta.url).pathname;
const STEP = 2 ** -20;

/** The fixtures: 784-200-10 trained by our trainer, exported as F16 in the authors' naming. */
const FIXTURE_CASES: { file: string; dataset: DatasetName; bar: number }[] = [
  { file: "mnist-784-200-10.f16.safetensors", dataset: "mnist", bar: 0.95 },
  { file: "fashion-mnist-784-200-10.f16.safetensors", dataset: "fashion-mnist", bar: 0.82 },
];

async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** A seeded uniform generator (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

function f32(shape: number[], fill: (i: number) => number = () => 0.01): TensorInput {
  const n = shape.reduce((a, b) => a * b, 1);
  return { dtype: "F32", shape, data: Float32Array.from({ length: n }, (_, i) => fill(i)) };
}

function floatFile(
  tensors: Record<string, TensorInput>,
  metadata?: Record<string, string>,
): Uint8Array {
  return encodeSafetensors(tensors, metadata);
}

const CONFIG: NetConfig = {
  sizes: [784, 20, 10],
  tsteps: 20,
  threshold: 1,
  decay: 2,
  margin: 4,
  desireHid: 0.05,
  desireOut: 0.3,
  dropIn: 0,
  dropHid: 0.3,
};

Deno.test("float fixtures: integer kernels match FloatNet within 0.3 pp on all 10,000 test images", async (t) => {
  for (const { file, dataset, bar } of FIXTURE_CASES) {
    await t.step(file, async () => {
      const path = FIXTURES + file;
      const st = decodeSafetensors(await Deno.readFile(path), path);
      assert.deepEqual([...st.tensors.keys()].sort(), ["layers.2.weights", "layers.3.weights"]);
      const model = await loadModel(path);
      assert.equal(model.weightFormat, "F16");
      assert.equal(model.dataset, dataset);
      const floats = decodeFloatModel(st, path).floats;
      const data = await loadDataset(dataset);
      assert.equal(data.test.count, 10000);
      const net = await Network.create(model.config, model.seed, model.weights);
      const intAcc = evaluate(net, data.test).accuracy;
      const fnet = new FloatNet(model.config, floats);
      let correct = 0;
      for (let s = 0; s < data.test.count; s++) {
        const image = data.test.images.subarray(784 * s, 784 * s + 784);
        if (fnet.evaluate(image).predicted === data.test.labels[s]) correct++;
      }
      const floatAcc = correct / data.test.count;
      const msg = `${file}: integer ${intAcc}, float ${floatAcc}`;
      assert.ok(Math.abs(intAcc - floatAcc) <= 0.003, msg);
      assert.ok(intAcc >= bar && floatAcc >= bar, msg);
      assert.equal(net.saturations, 0);
    });
  }
});

Deno.test("float round trip: float → Q11.20 → float keeps every weight within 2^-20", async (t) => {
  const rand = rng(42);
  const n = 784 * 20 + 20 * 10;
  const values = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const mag = 2 ** (-30 + 38 * rand()) * (1 + rand()); // 2^-30 … 2^9, clipped below
    values[i] = Math.min(256, mag) * (rand() < 0.5 ? -1 : 1);
  }
  values.set([256, -256, 0, -0, 2 ** -21, 3 * 2 ** -21, -5 * 2 ** -21, 1e-45, 255.99999], 0);
  const w0 = values.subarray(0, 784 * 20), w1 = values.subarray(784 * 20);
  const file = floatFile({
    "layers.2.weights": { dtype: "F32", shape: [20, 784], data: w0.slice() },
    "layers.3.weights": { dtype: "F32", shape: [10, 20], data: w1.slice() },
  }, { dataset: "mnist", tsteps: "16", error_margin: "3" });
  const model = decodeModel(file, "rt.safetensors");
  assert.deepEqual(model.config.sizes, [784, 20, 10]);
  assert.equal(model.config.tsteps, 16);
  assert.equal(model.config.margin, 3);

  await t.step("F32 → Q11.20 → F32", () => {
    const back = decodeFloatModel(
      decodeSafetensors(encodeFloatModel(model, model.weights, "F32")),
      "back",
    );
    let worst = 0;
    for (const [k, orig] of [w0, w1].entries()) {
      for (let i = 0; i < orig.length; i++) {
        worst = Math.max(worst, Math.abs(back.floats[k][i] - orig[i]));
      }
    }
    assert.ok(worst <= STEP / 2, `worst error ${worst}`);
    assert.equal(back.config.tsteps, 16);
    assert.equal(back.config.margin, 3);
  });

  await t.step(
    "Q11.20 → F32 → Q11.20 is exact below |w| = 16, within float32 rounding above",
    () => {
      const q = new Int32Array(4000).map(() =>
        Math.round((rand() * 2 - 1) * 2 ** (4 + 25 * rand()))
      );
      q.set([2 ** 28, -(2 ** 28), 2 ** 24 - 1, 2 ** 24 + 1, 0], 0);
      const back = masterToF32(q);
      for (let i = 0; i < q.length; i++) {
        const again = Math.round(back[i] * 2 ** 20);
        if (Math.abs(q[i]) < 2 ** 24) assert.equal(again, q[i], `q = ${q[i]}`);
        else assert.ok(Math.abs(again - q[i]) <= Math.abs(q[i]) * 2 ** -24, `q = ${q[i]}`);
      }
    },
  );

  await t.step("F16 export rounds to the nearest half (ties to even)", () => {
    const xs: number[] = [0, -0, 1, -1, 65504, 65519.99, 65520, 2 ** -24, 2 ** -25, 3 * 2 ** -25];
    xs.push(2 ** -14, 2 ** -14 - 2 ** -25, 1 + 2 ** -11, 1 + 3 * 2 ** -11, 2049, 2051, NaN);
    for (let i = 0; i < 20000; i++) {
      xs.push((rand() * 2 - 1) * 2 ** (-26 + 44 * rand()));
    }
    const decoded = tensorToF32(
      decodeSafetensors(
        encodeSafetensors({
          h: { dtype: "F16", shape: [xs.length], data: Uint16Array.from(xs, numberToHalf) },
        }),
      ).tensors.get("h")!,
    );
    for (let i = 0; i < xs.length; i++) {
      const want = Math.f16round(xs[i]);
      assert.ok(Object.is(decoded[i], want), `x = ${xs[i]}: ${decoded[i]} ≠ ${want}`);
    }
    const halves = masterToF16(new Int32Array([1 << 20, -(3 << 19)]));
    assert.deepEqual(halves, new Uint16Array([0x3c00, 0xbe00]));
  });
});

Deno.test("decodeModel() reads a float model: names, index offset, metadata and defaults", async (t) => {
  await t.step("FLOAT_DEFAULTS are the CLI defaults of each preset", () => {
    for (const dataset of ["mnist", "fashion-mnist"] as const) {
      const o = parseTrainArgs(["--dataset", dataset]);
      assert.deepEqual(FLOAT_DEFAULTS[dataset], {
        tsteps: o.tsteps,
        threshold: o.mempotThres,
        decay: o.mempotDecay,
        margin: o.errorMargin,
        desireHid: o.desireLin,
        desireOut: o.desireOut,
        dropIn: o.dropIn,
        dropHid: o.dropHid,
      });
    }
  });
  await t.step("indices need not start at 2; defaults from the dataset's preset", () => {
    const m = decodeModel(
      floatFile({
        "layers.5.weights": f32([20, 784]),
        "layers.6.weights": f32([10, 20], () => -0.5),
      }, { dataset: "fashion-mnist" }),
      "f.safetensors",
    );
    assert.deepEqual(m.config, {
      ...CONFIG,
      dropIn: 0.05,
      dropHid: 0.4,
    });
    assert.equal(m.dataset, "fashion-mnist");
    assert.equal(m.weights[1][0], -(2 ** 19));
    assert.equal(m.weights[0][0], Math.round(Math.fround(0.01) * 2 ** 20));
    assert.equal(m.inferenceOnly, undefined);
  });
  await t.step("no metadata: mnist defaults, seed 0, epoch 0", () => {
    const m = decodeModel(
      floatFile({ "layers.0.weights": f32([10, 784]) }),
      "f.safetensors",
    );
    assert.deepEqual(m.config, { ...CONFIG, sizes: [784, 10] });
    assert.deepEqual([m.seed, m.epoch, m.dataset, m.weightFormat], [0, 0, "mnist", "F32"]);
  });
  await t.step("our export's metadata comes back", () => {
    const info = {
      config: { ...CONFIG, tsteps: 24, threshold: 1.5, decay: 3, desireOut: 0.25, dropIn: 0.1 },
      seed: 9,
      epoch: 4,
      dataset: "fashion-mnist",
      hyper: { lr: [1e-6, 1e-5] },
      testAccuracy: 0.8,
    };
    const w = [new Int32Array(20 * 784).fill(12345), new Int32Array(200).fill(-7)];
    const m = decodeModel(encodeFloatModel(info, w, "F32"), "f.safetensors");
    assert.deepEqual(m.config, info.config);
    assert.deepEqual([m.seed, m.epoch, m.dataset, m.testAccuracy], [9, 4, "fashion-mnist", 0.8]);
    assert.deepEqual(m.hyper, info.hyper);
    assert.deepEqual(m.weights, w);
    const st = decodeSafetensors(encodeFloatModel(info, w, "F16"));
    assert.deepEqual([...st.tensors.keys()], ["layers.2.weights", "layers.3.weights"]);
    assert.deepEqual(st.tensors.get("layers.2.weights")!.shape, [20, 784]);
    assert.equal(st.tensors.get("layers.3.weights")!.dtype, "F16");
    assert.equal(st.metadata.format, "desire-float");
    assert.equal(st.metadata.mempot_thres, "1.5");
    assert.equal(floatTensorName(1), "layers.3.weights");
  });
  await t.step("±256 is accepted and maps to ±2^28", () => {
    const m = decodeModel(
      floatFile({ "layers.2.weights": f32([10, 784], (i) => (i === 0 ? 256 : -256)) }),
      "f.safetensors",
    );
    assert.equal(m.weights[0][0], 2 ** 28);
    assert.equal(m.weights[0][1], -(2 ** 28));
  });
});

Deno.test("decodeModel() rejects bad float models with the tensor, the shapes or the index", async (t) => {
  const bf16 = () => {
    const header = new TextEncoder().encode(
      JSON.stringify({
        "layers.2.weights": { dtype: "BF16", shape: [10, 784], data_offsets: [0, 15680] },
      }),
    );
    const bytes = new Uint8Array(8 + header.length + 15680);
    new DataView(bytes.buffer).setBigUint64(0, BigInt(header.length), true);
    bytes.set(header, 8);
    return bytes;
  };
  const P = "Cannot load model f.safetensors: ";
  const cases: [string, () => Uint8Array, string, string][] = [
    [
      "first layer not 784 inputs",
      () => floatFile({ "layers.2.weights": f32([10, 785]) }),
      "TypeError",
      P + "tensor layers.2.weights has shape [10, 785]: its input size 785 must be 784 " +
      "(28 × 28 pixels)",
    ],
    [
      "shapes do not chain",
      () => floatFile({ "layers.2.weights": f32([20, 784]), "layers.3.weights": f32([10, 21]) }),
      "TypeError",
      P + "tensor layers.3.weights has shape [10, 21]: its input size 21 must equal the output " +
      "size 20 of layers.2.weights [20, 784]",
    ],
    [
      "output layer not 10",
      () => floatFile({ "layers.2.weights": f32([20, 784]), "layers.3.weights": f32([9, 20]) }),
      "TypeError",
      P + "tensor layers.3.weights has shape [9, 20]: the output layer must have 10 neurons " +
      "(one per class)",
    ],
    [
      "not two-dimensional",
      () => floatFile({ "layers.2.weights": f32([7840]) }),
      "TypeError",
      P + "tensor layers.2.weights has shape [7840] (expected [out, in])",
    ],
    [
      "missing layer",
      () => floatFile({ "layers.2.weights": f32([20, 784]), "layers.4.weights": f32([10, 20]) }),
      "TypeError",
      P + "tensor layers.3.weights is missing (found layers.2.weights and layers.4.weights; " +
      "linear layers need consecutive indices)",
    ],
    [
      "dtype I32",
      () =>
        floatFile({
          "layers.2.weights": { dtype: "I32", shape: [10, 784], data: new Int32Array(7840) },
        }),
      "TypeError",
      P + "tensor layers.2.weights is I32 (expected F32 or F16)",
    ],
    [
      "dtype F64",
      () =>
        floatFile({
          "layers.2.weights": { dtype: "F64", shape: [10, 784], data: new Float64Array(7840) },
        }),
      "TypeError",
      P + "tensor layers.2.weights is F64 (expected F32 or F16)",
    ],
    [
      "dtype BF16 (unknown to the reader)",
      bf16,
      "TypeError",
      'Cannot load f.safetensors: tensor "layers.2.weights" has unknown dtype "BF16"',
    ],
    [
      "NaN",
      () => floatFile({ "layers.2.weights": f32([10, 784], (i) => (i === 5 ? NaN : 0)) }),
      "TypeError",
      P + "tensor layers.2.weights has a non-finite weight NaN at index 5 (row 0, column 5)",
    ],
    [
      "−Infinity",
      () =>
        floatFile({
          "layers.2.weights": f32([10, 784], (i) => (i === 784 * 3 + 2 ? -Infinity : 0)),
        }),
      "TypeError",
      P + "tensor layers.2.weights has a non-finite weight -Infinity at index 2354 " +
      "(row 3, column 2)",
    ],
    [
      "beyond ±256",
      () =>
        floatFile({
          "layers.2.weights": f32([20, 784]),
          "layers.3.weights": f32([10, 20], (i) => (i === 17 ? -256.5 : 0)),
        }),
      "RangeError",
      P + "tensor layers.3.weights has weight -256.5 at index 17 (row 0, column 17): |w| must " +
      "be ≤ 256 (master weights are Q11.20, clamped at ±2^28)",
    ],
    [
      "an unexpected tensor",
      () => floatFile({ "layers.2.weights": f32([10, 784]), "layers.2.bias": f32([10]) }),
      "TypeError",
      P + "unexpected tensor layers.2.bias (a float model holds only layers.{n}.weights, " +
      "one per linear layer)",
    ],
    [
      "metadata: unknown dataset",
      () => floatFile({ "layers.2.weights": f32([10, 784]) }, { dataset: "cifar" }),
      "TypeError",
      P + `metadata 'dataset' is "cifar" (expected mnist or fashion-mnist)`,
    ],
    [
      "metadata: not a number",
      () => floatFile({ "layers.2.weights": f32([10, 784]) }, { tsteps: "twenty" }),
      "TypeError",
      P + `metadata 'tsteps' is not a number: "twenty"`,
    ],
    [
      "metadata: out of range",
      () => floatFile({ "layers.2.weights": f32([10, 784]) }, { tsteps: "40" }),
      "TypeError",
      P + "config.tsteps 40 is not in 1..32",
    ],
    [
      "format tag without tensors",
      () => floatFile({}, { format: "desire-float" }),
      "TypeError",
      P + "no tensor layers.{n}.weights (a float model holds one per linear layer)",
    ],
  ];
  for (const [name, make, errName, message] of cases) {
    await t.step(name, () => {
      assert.throws(() => decodeModel(make(), "f.safetensors"), { name: errName, message });
    });
  }
});

Deno.test("cli export, import, eval and train read and write float models", async (t) => {
  const dir = await Deno.makeTempDir();
  const fixture = FIXTURES + FIXTURE_CASES[0].file;
  const ours = `${dir}/ours.safetensors`;

  await t.step("import --float writes our format with the same master weights", async () => {
    const r = await cli("import", "--float", fixture, "--out", ours);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.stdout.includes("model 784-200-10 from F16 weights"), r.stdout);
    const a = await loadModel(ours), b = await loadModel(fixture);
    assert.deepEqual(a.weights, b.weights);
    assert.deepEqual(a.config, b.config);
    assert.equal(a.weightFormat, undefined);
  });

  await t.step("export --dtype f32 round-trips the imported model exactly", async () => {
    const out = `${dir}/f32.safetensors`;
    const r = await cli("export", "--model-path", ours, "--out", out);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.stdout.includes("layers.2.weights … layers.3.weights"), r.stdout);
    const back = await loadModel(out);
    assert.deepEqual(back.weights, (await loadModel(ours)).weights);
    assert.equal(back.weightFormat, "F32");
  });

  await t.step("eval --model-path reads the float file directly", async () => {
    const r = await cli("eval", "--model-path", fixture, "--json", "--limit", "1000");
    assert.equal(r.code, 0, r.stderr);
    const res = JSON.parse(r.stdout);
    const m = await loadModel(fixture);
    const data = await loadDataset("mnist");
    const want = evaluate(await Network.create(m.config, m.seed, m.weights), data.test, 1000);
    assert.equal(res.correct, want.correct);
    assert.equal(res.network, "784-200-10");
  });

  await t.step("train --model-path starts from the float weights", async () => {
    const out = `${dir}/run`;
    const r = await cli(
      "train",
      "--model-path",
      fixture,
      "--epochs",
      "1",
      "--limit",
      "300",
      "--out",
      out,
    );
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.stdout.includes("training 784-200-10"), r.stdout);
    const m = await loadModel(`${out}/model-last.safetensors`);
    assert.deepEqual(m.config.sizes, [784, 200, 10]);
  });

  await t.step("bad flags and files", async () => {
    const cases: [string[], number, string][] = [
      [["export", "--out", `${dir}/x`], 2, "Missing --model-path (see --help)"],
      [["export", "--model-path", ours], 2, "Missing --out (see --help)"],
      [
        ["export", "--model-path", ours, "--out", `${dir}/x`, "--dtype", "f64"],
        1,
        "Invalid --dtype: f64 (expected f32 or f16)",
      ],
      [
        ["export", "--model-path", ours, "--out", ours],
        1,
        `Refusing to overwrite --out ${ours}: the file exists`,
      ],
      [["export", "--frob", "1"], 2, "Unknown flag --frob (see --help)"],
      [["import", "--float", fixture], 2, "Missing --out (see --help)"],
      [
        ["import", "--float", ours, "--out", `${dir}/y`],
        1,
        `Cannot import ${ours}: it is not a float model (no tensors layers.{n}.weights)`,
      ],
      [["frobnicate"], 2, "Unknown command frobnicate (expected train, eval, export or import"],
    ];
    for (const [args, code, msg] of cases) {
      const r = await cli(...args);
      assert.equal(r.code, code, `${args.join(" ")}: ${r.stderr}`);
      assert.ok(r.stderr.startsWith("error: "), r.stderr);
      assert.ok(r.stderr.includes(msg), `${args.join(" ")}: ${r.stderr}`);
    }
    await assert.rejects(Deno.stat(`${dir}/x`), Deno.errors.NotFound);
    await assert.rejects(Deno.stat(`${dir}/y`), Deno.errors.NotFound);
    for (const cmd of ["export", "import"]) {
      const r = await cli(cmd, "--help");
      assert.equal(r.code, 0);
      assert.ok(r.stdout.startsWith(`Usage: deno run -A cli.ts ${cmd}`), r.stdout);
    }
  });

  await t.step("a model in our format still loads as before", () => {
    const w = [new Int32Array(7840).fill(3)];
    const m = decodeModel(
      encodeModel({
        config: { ...CONFIG, sizes: [784, 10] },
        seed: 1,
        epoch: 1,
        dataset: "mnist",
        hyper: {},
      }, w),
      "o",
    );
    assert.deepEqual(m.weights, w);
    assert.equal(m.weightFormat, undefined);
  });
  await Deno.remove(dir, { recursive: true });
});
