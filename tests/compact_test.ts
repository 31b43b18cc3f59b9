// Compact inference models (I16/I8 weights, one scale per layer): export and load round trip,
// file sizes, the scale methods, rejection of corrupt files, refusal to train, and the accuracy
// loss on the trained fixtures (at most 0.5 percentage points).
import assert from "node:assert/strict";
import {
  chooseScale,
  type CompactDtype,
  dequantize,
  encodeCompactModel,
  parseScaleMethod,
  quantize,
} from "../src/compact.ts";
import {
  assertTrainable,
  decodeModel,
  encodeModel,
  loadModel,
  type ModelInfo,
} from "../src/model_file.ts";
import { decodeSafetensors, encodeSafetensors } from "../src/safetensors.ts";
import { kaimingMaster, Network } from "../src/network.ts";
import { evaluate } from "../src/train.ts";
import { type DatasetName, loadDataset } from "../src/datasets.ts";

const CLI = new URL("../cli.ts", import.meta.url).pathname;
const FIXTURES = new URL("./fixtures/", import.meta.url).pathname;

const INFO: ModelInfo = {
  config: {
    sizes: [784, 30, 10],
    tsteps: 20,
    threshold: 1,
    decay: 2,
    margin: 4,
    desireHid: 0.05,
    desireOut: 0.3,
    dropIn: 0,
    dropHid: 0.3,
  },
  seed: 3,
  epoch: 5,
  dataset: "mnist",
  hyper: { lr: [1e-6, 1e-5] },
  testAccuracy: 0.9,
};

async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("encodeCompactModel() and decodeModel(): I16/I8 round trip, sizes, inference only", async (t) => {
  const weights = kaimingMaster(INFO.config.sizes, 11);
  weights[1][7] = 3 << 20; // an outlier
  const full = encodeModel(INFO, weights);
  const n = weights.reduce((a, w) => a + w.length, 0);
  for (const [dtype, bytesPer] of [["I16", 2], ["I8", 1]] as [CompactDtype, number][]) {
    await t.step(dtype, () => {
      const r = encodeCompactModel(INFO, weights, { dtype });
      const st = decodeSafetensors(r.bytes);
      assert.deepEqual([...st.tensors.keys()], ["linear.0.weight", "linear.1.weight"]);
      assert.equal(st.tensors.get("linear.0.weight")!.dtype, dtype);
      assert.deepEqual(st.tensors.get("linear.1.weight")!.shape, [10, 30]);
      assert.deepEqual(JSON.parse(st.metadata.scales), r.scales);
      assert.equal(st.metadata.format, "desire-compact");
      assert.equal(st.metadata.weight_format, dtype);
      assert.equal(st.metadata.scale_method, "max");
      // Weight data is exactly n · bytesPer; the header is what remains.
      const header = Number(new DataView(r.bytes.buffer).getBigUint64(0, true));
      assert.equal(r.bytes.length - 8 - header, n * bytesPer);
      assert.ok(r.bytes.length < full.length * (bytesPer / 4) + 2048);

      const m = decodeModel(r.bytes, "c.safetensors");
      assert.equal(m.inferenceOnly, true);
      assert.equal(m.weightFormat, dtype);
      assert.deepEqual(m.config, INFO.config);
      assert.deepEqual([m.seed, m.epoch, m.testAccuracy], [3, 5, 0.9]);
      for (let k = 0; k < weights.length; k++) {
        assert.deepEqual(m.weights[k], dequantize(r.quantized[k], r.scales[k]));
        const half = r.scales[k] * 2 ** 20 / 2 + 0.5;
        for (let i = 0; i < weights[k].length; i++) {
          assert.ok(Math.abs(m.weights[k][i] - weights[k][i]) <= half, `layer ${k} index ${i}`);
        }
      }
      assert.throws(() => assertTrainable(m, "c.safetensors"), {
        name: "TypeError",
        message: `Cannot train from c.safetensors: it is a compact ${dtype} model for inference ` +
          "only (its weights were quantized); train from the full model it was exported from",
      });
      assertTrainable(decodeModel(full, "f"), "f");
    });
  }
});

Deno.test("chooseScale(), quantize(), parseScaleMethod(): the scale methods", async (t) => {
  const w = new Int32Array(10000).map((_, i) => ((i % 201) - 100) << 12); // |w| ≤ 100·2^-8
  w[0] = 40 << 20; // one large outlier
  await t.step("max: the largest |w| maps to qmax, nothing clips", () => {
    assert.equal(chooseScale(w, "I8", "max"), 40 / 127);
    const q = quantize(w, "I8", chooseScale(w, "I8", "max"));
    assert.equal(q[0], 127);
  });
  await t.step("pNN clips the outlier; mse never does worse than max", () => {
    const p = chooseScale(w, "I8", "p99.9");
    assert.equal(p, 100 / 256 / 127);
    assert.equal(quantize(w, "I8", p)[0], 127);
    const err = (s: number) => {
      const d = dequantize(quantize(w, "I8", s), s);
      return d.reduce((a, v, i) => a + (v - w[i]) ** 2, 0);
    };
    assert.ok(err(chooseScale(w, "I8", "mse")) <= err(chooseScale(w, "I8", "max")));
  });
  await t.step("an all-zero layer gets a positive scale", () => {
    const s = chooseScale(new Int32Array(5), "I16", "max");
    assert.ok(s > 0);
    assert.deepEqual(quantize(new Int32Array(5), "I16", s), new Int16Array(5));
  });
  await t.step("bad methods", () => {
    for (const bad of ["p0", "p101", "median", "p", "P99"]) {
      assert.throws(() => parseScaleMethod(bad), {
        name: "RangeError",
        message: `Invalid scale method ${
          JSON.stringify(bad)
        } (expected max, mse or pNN with 0 < NN ≤ 100, e.g. p99.99)`,
      });
    }
    assert.equal(parseScaleMethod("p100"), "p100");
  });
});

Deno.test("decodeModel() rejects corrupt compact models", async (t) => {
  const weights = kaimingMaster(INFO.config.sizes, 1);
  const good = encodeCompactModel(INFO, weights, { dtype: "I8" });
  const st = decodeSafetensors(good.bytes);
  const rebuild = (meta: Record<string, string>, swap?: "I16") => {
    const tensors: Record<string, { dtype: "I8" | "I16"; shape: number[]; data: ArrayBufferView }> =
      {};
    for (const [name, t] of st.tensors) {
      tensors[name] = swap
        ? { dtype: swap, shape: t.shape, data: new Int16Array(t.bytes.length) }
        : { dtype: "I8", shape: t.shape, data: t.bytes.slice() };
    }
    return encodeSafetensors(tensors, { ...st.metadata, ...meta });
  };
  const P = "Cannot load model c.safetensors: ";
  const cases: [string, Uint8Array, string][] = [
    [
      "scales of the wrong length",
      rebuild({ scales: "[0.1]" }),
      P +
      "metadata 'scales' is not a list of 2 positive numbers",
    ],
    [
      "a zero scale",
      rebuild({ scales: "[0.1, 0]" }),
      P +
      "metadata 'scales' is not a list of 2 positive numbers",
    ],
    [
      "scales too large",
      rebuild({ scales: "[0.1, 3]" }),
      P +
      "metadata 'scales' entry 1 = 3 exceeds 256 / 127",
    ],
    [
      "unknown weight format",
      rebuild({ weight_format: "I4" }),
      P +
      `metadata 'weight_format' is "I4" (expected "I16" or "I8")`,
    ],
    [
      "tensor dtype differs from weight_format",
      rebuild({}, "I16"),
      P +
      "tensor linear.0.weight is I16 [30,784] (expected I8 [30,784] for the network 784-30-10)",
    ],
  ];
  for (const [name, bytes, message] of cases) {
    await t.step(name, () => {
      assert.throws(() => decodeModel(bytes, "c.safetensors"), { name: "TypeError", message });
    });
  }
});

Deno.test("compact fixtures lose at most 0.5 pp test accuracy (I16 and I8)", async (t) => {
  const cases: [string, DatasetName][] = [
    ["mnist-784-200-10.f16.safetensors", "mnist"],
    ["fashion-mnist-784-200-10.f16.safetensors", "fashion-mnist"],
  ];
  for (const [file, dataset] of cases) {
    const model = await loadModel(FIXTURES + file);
    const data = await loadDataset(dataset);
    const full = evaluate(
      await Network.create(model.config, model.seed, model.weights),
      data.test,
    ).accuracy;
    for (const dtype of ["I16", "I8"] as CompactDtype[]) {
      await t.step(`${file} ${dtype}`, async () => {
        const r = encodeCompactModel(model, model.weights, { dtype });
        const m = decodeModel(r.bytes, file);
        const acc = evaluate(await Network.create(m.config, m.seed, m.weights), data.test)
          .accuracy;
        assert.ok(full - acc <= 0.005, `${file} ${dtype}: full ${full}, compact ${acc}`);
      });
    }
  }
});

Deno.test("cli export --compact writes a compact model that eval reads", async () => {
  const dir = await Deno.makeTempDir();
  const fixture = FIXTURES + "mnist-784-200-10.f16.safetensors";
  const out = `${dir}/c8.safetensors`;
  let r = await cli("export", "--model-path", fixture, "--compact", "int8", "--out", out);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(r.stdout.includes("compact I8 model of 784-200-10"), r.stdout);
  const st = decodeSafetensors(await Deno.readFile(out));
  assert.equal(st.metadata.source_weight_format, "F16");
  assert.ok((await Deno.stat(out)).size < 160 * 1024);
  r = await cli("eval", "--model-path", out, "--limit", "500", "--json");
  assert.equal(r.code, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout).network, "784-200-10");
  r = await cli(
    "export",
    "--model-path",
    fixture,
    "--compact",
    "int16",
    "--scale",
    "p99.99",
    "--out",
    `${dir}/c16.safetensors`,
  );
  assert.equal(r.code, 0, r.stderr);
  assert.equal(
    decodeSafetensors(await Deno.readFile(`${dir}/c16.safetensors`)).metadata.scale_method,
    "p99.99",
  );
  const bad: [string[], number, string][] = [
    [["--compact", "int4"], 1, "Invalid --compact: int4 (expected int16 or int8)"],
    [["--compact", "int8", "--dtype", "f16"], 2, "--dtype and --compact exclude each other"],
    [["--scale", "max"], 2, "--scale needs --compact (see --help)"],
    [["--compact", "int8", "--scale", "p0"], 1, "Invalid --scale: p0 (expected max, mse or pNN"],
  ];
  for (const [args, code, msg] of bad) {
    r = await cli("export", "--model-path", fixture, "--out", `${dir}/bad`, ...args);
    assert.equal(r.code, code, r.stderr);
    assert.ok(r.stderr.includes(msg), r.stderr);
  }
  await assert.rejects(Deno.stat(`${dir}/bad`), Deno.errors.NotFound);
  await Deno.remove(dir, { recursive: true });
});
