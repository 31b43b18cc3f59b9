// Model files (src/model_file.ts): the reader checks everything before it trusts it and names the
// problem; saving is atomic.
import assert from "node:assert/strict";
import {
  decodeModel,
  encodeModel,
  loadModel,
  type ModelInfo,
  saveModel,
} from "../src/model_file.ts";
import { encodeSafetensors } from "../src/safetensors.ts";

const config = {
  sizes: [6, 4, 3],
  tsteps: 20,
  threshold: 1,
  decay: 2,
  margin: 4,
  desireHid: 0.05,
  desireOut: 0.3,
  dropIn: 0,
  dropHid: 0.3,
};
const info: ModelInfo = { config, seed: 3, epoch: 2, dataset: "mnist", hyper: { lr: [0, 1e-5] } };
const weights = [Int32Array.from({ length: 24 }, (_, k) => (k - 12) << 16), new Int32Array(12)];

/** A model file with its metadata and tensors edited. */
function edited(
  meta: Record<string, string | undefined>,
  tensors?: Record<string, { dtype: "I32" | "F32"; shape: number[]; data: ArrayBufferView }>,
): Uint8Array {
  const base = {
    format: "desire-model",
    format_version: "1",
    abi_version: "1",
    weight_format: "Q11.20",
    config: JSON.stringify(config),
    hyper: "{}",
    seed: "3",
    epoch: "2",
    dataset: "mnist",
  };
  const m: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...base, ...meta })) if (v !== undefined) m[k] = v;
  return encodeSafetensors(
    tensors ?? {
      "linear.0.weight": { dtype: "I32", shape: [4, 6], data: weights[0] },
      "linear.1.weight": { dtype: "I32", shape: [3, 4], data: weights[1] },
    },
    m,
  );
}

Deno.test("decodeModel() round-trips what encodeModel() writes", () => {
  const m = decodeModel(encodeModel(info, weights), "m.safetensors");
  assert.deepEqual(m.config, config);
  assert.equal(m.seed, 3);
  assert.equal(m.epoch, 2);
  assert.deepEqual(m.weights, weights);
  assert.deepEqual(m.hyper, { lr: [0, 1e-5] });
});

Deno.test("decodeModel() rejects bad model files, naming the file and the problem", async (t) => {
  const cfg = (c: object) => JSON.stringify({ ...config, ...c });
  const cases: [string, Uint8Array, RegExp][] = [
    ["not safetensors", new Uint8Array(5), /^Cannot load m\.safetensors: /],
    [
      "a format version from the future",
      edited({ format_version: "9" }),
      /^Cannot load model m\.safetensors: format version 9 is not supported \(this version reads 1\)$/,
    ],
    [
      "config that is not JSON",
      edited({ config: "{oops" }),
      /^Cannot load model m\.safetensors: metadata 'config' or 'hyper' is not valid JSON$/,
    ],
    [
      "tsteps out of range",
      edited({ config: cfg({ tsteps: 40 }) }),
      /^Cannot load model m\.safetensors: config\.tsteps 40 is not in 1\.\.32$/,
    ],
    [
      "dropout out of range",
      edited({ config: cfg({ dropHid: 1 }) }),
      /^Cannot load model m\.safetensors: config\.dropHid 1 is not in \[0, 1\)$/,
    ],
    [
      "a missing tensor",
      edited({}, { "linear.0.weight": { dtype: "I32", shape: [4, 6], data: weights[0] } }),
      /^Cannot load model m\.safetensors: tensor linear\.1\.weight is missing$/,
    ],
    [
      "a shape that does not fit the network",
      edited({}, {
        "linear.0.weight": { dtype: "I32", shape: [6, 4], data: weights[0] },
        "linear.1.weight": { dtype: "I32", shape: [3, 4], data: weights[1] },
      }),
      /^Cannot load model m\.safetensors: tensor linear\.0\.weight is I32 \[6,4\] \(expected I32 \[4,6\] for the network 6-4-3\)$/,
    ],
    [
      "a float tensor where Q11.20 integers belong",
      edited({}, {
        "linear.0.weight": { dtype: "F32", shape: [4, 6], data: new Float32Array(24) },
        "linear.1.weight": { dtype: "I32", shape: [3, 4], data: weights[1] },
      }),
      /tensor linear\.0\.weight is F32 \[4,6\] \(expected I32 \[4,6\]/,
    ],
    [
      "a weight beyond ±2^28",
      edited({}, {
        "linear.0.weight": { dtype: "I32", shape: [4, 6], data: weights[0] },
        "linear.1.weight": {
          dtype: "I32",
          shape: [3, 4],
          data: Int32Array.from({ length: 12 }, (_, k) => (k === 7 ? 2 ** 29 : 0)),
        },
      }),
      /^Cannot load model m\.safetensors: tensor linear\.1\.weight has weight 536870912 at index 7 \(\|w\| must be ≤ 2\^28 in Q11\.20\)$/,
    ],
    [
      "an unexpected tensor",
      edited({}, {
        "linear.0.weight": { dtype: "I32", shape: [4, 6], data: weights[0] },
        "linear.1.weight": { dtype: "I32", shape: [3, 4], data: weights[1] },
        "linear.2.weight": { dtype: "I32", shape: [1, 1], data: new Int32Array(1) },
      }),
      /^Cannot load model m\.safetensors: unexpected tensor linear\.2\.weight$/,
    ],
  ];
  for (const [name, bytes, re] of cases) {
    await t.step(name, () => {
      assert.throws(() => decodeModel(bytes, "m.safetensors"), (e: Error) => {
        assert.match(e.message, re);
        return e instanceof TypeError || e instanceof RangeError || e instanceof SyntaxError;
      });
    });
  }
});

Deno.test("saveModel() replaces a model atomically and leaves no temporary file", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/model.safetensors`;
  await saveModel(path, info, weights);
  const second = [weights[0].map((v) => v + 1), weights[1]];
  await saveModel(path, { ...info, epoch: 3 }, second);
  const m = await loadModel(path);
  assert.equal(m.epoch, 3);
  assert.deepEqual(m.weights[0], second[0]);
  const names = [];
  for await (const e of Deno.readDir(dir)) names.push(e.name);
  assert.deepEqual(names, ["model.safetensors"]);
  // A save that fails (the target is a directory) leaves the old file as it was.
  await Deno.mkdir(`${dir}/taken.safetensors`);
  await assert.rejects(saveModel(`${dir}/taken.safetensors`, info, weights));
  names.length = 0;
  for await (const e of Deno.readDir(dir)) names.push(e.name);
  assert.deepEqual(names.sort(), ["model.safetensors", "taken.safetensors"]);
  await Deno.remove(dir, { recursive: true });
});
