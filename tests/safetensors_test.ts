import { deepStrictEqual, equal, ok, throws } from "node:assert/strict";
import {
  decodeSafetensors,
  type Dtype,
  DTYPE_SIZE,
  encodeSafetensors,
  MAX_HEADER_LENGTH,
  type TensorInput,
  tensorToArray,
  tensorToF32,
  tensorToF64,
  tensorToI32,
  tensorToU8,
} from "../src/safetensors.ts";
import { GOLDEN_URL } from "../src/golden.ts";

/** Builds a file from a raw header text and data bytes (header length as given, or its size). */
function rawFile(
  header: string | Uint8Array,
  data = new Uint8Array(0),
  length?: bigint,
): Uint8Array {
  const h = typeof header === "string" ? new TextEncoder().encode(header) : header;
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, length ?? BigInt(h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

const SRC = "model.safetensors";

Deno.test("encodeSafetensors() and decodeSafetensors() round-trip every dtype", async (t) => {
  const cases: [Dtype, ArrayBufferView, number[]][] = [
    ["F64", new Float64Array([0.1, -2.5e300, Infinity, -0, 5e-324, 42]), [2, 3]],
    ["F32", new Float32Array([1.5, -3.25, 1e-40, 3.4e38, -Infinity, 0]), [3, 2]],
    ["F16", new Uint16Array([0x3c00, 0xc000, 0x7bff, 0x0001]), [4]],
    ["I64", new BigInt64Array([-(2n ** 63n), 2n ** 63n - 1n, 0n]), [3]],
    ["I32", new Int32Array([-2147483648, 2147483647, 0, -1]), [2, 2]],
    ["I16", new Int16Array([-32768, 32767, 5]), [3, 1]],
    ["I8", new Int8Array([-128, 127, 0]), [3]],
    ["U32", new Uint32Array([0, 4294967295, 7]), [1, 3]],
    ["U16", new Uint16Array([0, 65535, 9]), [3]],
    ["U8", new Uint8Array([0, 255, 1, 2, 3]), [5]],
  ];
  for (const [dtype, data, shape] of cases) {
    await t.step(dtype, () => {
      const file = encodeSafetensors({ x: { dtype, shape, data } });
      const { tensors, metadata } = decodeSafetensors(file);
      const x = tensors.get("x")!;
      equal(x.dtype, dtype);
      deepStrictEqual(x.shape, shape);
      equal(x.bytes.length, data.byteLength);
      deepStrictEqual(metadata, {});
      const back = tensorToArray(x);
      if (dtype === "F16") {
        deepStrictEqual(back, new Float32Array([1, -2, 65504, 2 ** -24]));
      } else {
        deepStrictEqual(back, data);
      }
    });
  }
  await t.step("several tensors, metadata, scalar and empty shapes", () => {
    const tensors: Record<string, TensorInput> = {
      "b": { dtype: "F32", shape: [], data: new Float32Array([7]) },
      "10": { dtype: "U8", shape: [0, 3], data: new Uint8Array(0) },
      "a": { dtype: "I32", shape: [2], data: new Int32Array([1, 2]) },
      "2": { dtype: "F64", shape: [1], data: new Float64Array([3]) },
    };
    const file = encodeSafetensors(tensors, { hyper: '{"x":1}', "": "" });
    const { tensors: got, metadata } = decodeSafetensors(file);
    deepStrictEqual([...got.keys()].sort(), ["10", "2", "a", "b"]);
    deepStrictEqual(metadata, { hyper: '{"x":1}', "": "" });
    deepStrictEqual(tensorToF32(got.get("b")!), new Float32Array([7]));
    deepStrictEqual(tensorToI32(got.get("a")!), new Int32Array([1, 2]));
    deepStrictEqual(tensorToF64(got.get("2")!), new Float64Array([3]));
    deepStrictEqual(tensorToU8(got.get("10")!), new Uint8Array(0));
  });
});

Deno.test("encodeSafetensors() output is deterministic and padded", () => {
  const a = { dtype: "U8" as const, shape: [3], data: new Uint8Array([1, 2, 3]) };
  const b = { dtype: "F32" as const, shape: [1], data: new Float32Array([2]) };
  const one = encodeSafetensors({ a, b }, { y: "1", x: "2" });
  const two = encodeSafetensors({ b, a }, { x: "2", y: "1" });
  deepStrictEqual(one, two);
  const n = Number(new DataView(one.buffer).getBigUint64(0, true));
  equal(n % 8, 0);
  const header = new TextDecoder().decode(one.subarray(8, 8 + n));
  equal(
    header.trimEnd(),
    '{"__metadata__":{"x":"2","y":"1"},' +
      '"a":{"dtype":"U8","shape":[3],"data_offsets":[0,3]},' +
      '"b":{"dtype":"F32","shape":[1],"data_offsets":[3,7]}}',
  );
  ok(/^ *$/.test(header.slice(header.trimEnd().length)));
  deepStrictEqual(one.subarray(8 + n, 8 + n + 3), new Uint8Array([1, 2, 3]));
});

Deno.test("encodeSafetensors() rejects inconsistent tensors", async (t) => {
  const cases: [string, () => unknown, string, string][] = [
    [
      "byte length ≠ shape",
      () => encodeSafetensors({ w: { dtype: "F32", shape: [3], data: new Float32Array(2) } }),
      "RangeError",
      'Cannot save safetensors: tensor "w" has 8 bytes but shape [3] of F32 needs 12',
    ],
    [
      "array type ≠ dtype",
      () => encodeSafetensors({ w: { dtype: "F32", shape: [2], data: new Float64Array(1) } }),
      "TypeError",
      'Cannot save safetensors: tensor "w" of dtype F32 cannot take a Float64Array',
    ],
    [
      "unknown dtype",
      () =>
        encodeSafetensors({
          w: { dtype: "BF16" as Dtype, shape: [1], data: new Uint8Array(2) },
        }),
      "TypeError",
      'Cannot save safetensors: tensor "w" has unknown dtype "BF16"',
    ],
    [
      "negative dimension",
      () => encodeSafetensors({ w: { dtype: "U8", shape: [-1], data: new Uint8Array(0) } }),
      "TypeError",
      'Cannot save safetensors: tensor "w" has invalid shape [-1]',
    ],
    [
      "reserved name",
      () =>
        encodeSafetensors({ __metadata__: { dtype: "U8", shape: [0], data: new Uint8Array(0) } }),
      "TypeError",
      'Cannot save safetensors: tensor name "__metadata__" is reserved',
    ],
    [
      "non-string metadata",
      () => encodeSafetensors({}, { n: 3 as unknown as string }),
      "TypeError",
      'Cannot save safetensors: metadata value "n" is not a string',
    ],
  ];
  for (const [name, fn, errName, message] of cases) {
    await t.step(name, () => throws(fn, { name: errName, message }));
  }
  // Raw bytes are accepted for any dtype.
  const file = encodeSafetensors({ w: { dtype: "F32", shape: [1], data: new Uint8Array(4) } });
  equal(decodeSafetensors(file).tensors.get("w")!.dtype, "F32");
});

Deno.test("decodeSafetensors() rejects malformed files with exact messages", async (t) => {
  const entry = (dtype: string, shape: unknown, offsets: unknown) =>
    JSON.stringify({ dtype, shape, data_offsets: offsets });
  const data8 = new Uint8Array(8);
  const cases: [string, () => Uint8Array, string, string][] = [
    [
      "truncated before the header length",
      () => new Uint8Array(4),
      "RangeError",
      "file has 4 bytes, fewer than the 8-byte header length",
    ],
    [
      "header length beyond the file",
      () => rawFile("", new Uint8Array(1016), 9000000000n),
      "RangeError",
      "header length 9000000000 exceeds file size 1024",
    ],
    [
      "header length beyond the file by one byte",
      () => rawFile("{}", new Uint8Array(0), 3n),
      "RangeError",
      "header length 3 exceeds file size 10",
    ],
    [
      "header length near 2^64",
      () => rawFile("{}", new Uint8Array(0), 2n ** 64n - 1n),
      "RangeError",
      "header length 18446744073709551615 exceeds file size 10",
    ],
    [
      "header length above the 100 MiB limit",
      () => {
        const file = new Uint8Array(8 + MAX_HEADER_LENGTH + 8);
        new DataView(file.buffer).setBigUint64(0, BigInt(MAX_HEADER_LENGTH + 1), true);
        return file;
      },
      "RangeError",
      "header length 104857601 exceeds the limit of 104857600 bytes",
    ],
    [
      "header not UTF-8",
      () => rawFile(new Uint8Array([0x7b, 0xff, 0x7d])),
      "SyntaxError",
      "header is not valid UTF-8",
    ],
    ["header not JSON", () => rawFile("{not json"), "SyntaxError", "header is not valid JSON"],
    ["header a JSON array", () => rawFile("[1, 2]"), "TypeError", "header is not a JSON object"],
    ["header JSON null", () => rawFile("null"), "TypeError", "header is not a JSON object"],
    [
      "entry not an object",
      () => rawFile('{"a": 3}'),
      "TypeError",
      'tensor "a" entry is not a JSON object',
    ],
    [
      "unknown dtype",
      () => rawFile(`{"a": ${entry("F8", [1], [0, 1])}}`, data8),
      "TypeError",
      'tensor "a" has unknown dtype "F8"',
    ],
    [
      "missing dtype",
      () => rawFile(`{"a": {"shape": [1], "data_offsets": [0, 1]}}`, data8),
      "TypeError",
      'tensor "a" has unknown dtype undefined',
    ],
    [
      "negative dimension",
      () => rawFile(`{"a": ${entry("U8", [-1], [0, 1])}}`, data8),
      "TypeError",
      'tensor "a" has invalid shape [-1]',
    ],
    [
      "fractional dimension",
      () => rawFile(`{"a": ${entry("U8", [1.5], [0, 1])}}`, data8),
      "TypeError",
      'tensor "a" has invalid shape [1.5]',
    ],
    [
      "shape not an array",
      () => rawFile(`{"a": ${entry("U8", "2", [0, 2])}}`, data8),
      "TypeError",
      'tensor "a" has invalid shape "2"',
    ],
    [
      "offsets not a pair",
      () => rawFile(`{"a": ${entry("U8", [1], [0])}}`, data8),
      "TypeError",
      'tensor "a" has invalid data_offsets [0]',
    ],
    [
      "shape and offsets disagree",
      () => rawFile(`{"a": ${entry("F32", [2], [0, 4])}}`, data8),
      "RangeError",
      'tensor "a" has 4 bytes but shape [2] of F32 needs 8',
    ],
    [
      "shape product beyond 2^53",
      () => rawFile(`{"a": ${entry("U8", [2 ** 30, 2 ** 30, 2 ** 30], [0, 8])}}`, data8),
      "RangeError",
      'tensor "a" has 8 bytes but shape [1073741824,1073741824,1073741824] of U8 needs more than 2^53',
    ],
    [
      "offsets past the data area",
      () => rawFile(`{"a": ${entry("F64", [2], [0, 16])}}`, data8),
      "RangeError",
      'tensor "a" data_offsets [0, 16] lie outside the data area of 8 bytes',
    ],
    [
      "offsets reversed",
      () => rawFile(`{"a": ${entry("U8", [0], [6, 4])}}`, data8),
      "RangeError",
      'tensor "a" data_offsets [6, 4] lie outside the data area of 8 bytes',
    ],
    [
      "overlapping offsets",
      () =>
        rawFile(
          `{"b": ${entry("U8", [4], [4, 8])}, "a": ${entry("I32", [1], [0, 4])}, ` +
            `"c": ${entry("U16", [2], [2, 6])}}`,
          data8,
        ),
      "RangeError",
      'tensors "a" [0, 4] and "c" [2, 6] overlap',
    ],
    [
      "metadata not an object",
      () => rawFile('{"__metadata__": ["x"]}'),
      "TypeError",
      "__metadata__ is not a JSON object",
    ],
    [
      "non-string metadata",
      () => rawFile('{"__metadata__": {"ok": "1", "n": 2}}'),
      "TypeError",
      '__metadata__ value "n" is not a string',
    ],
  ];
  for (const [name, make, errName, message] of cases) {
    await t.step(name, () => {
      const file = make();
      throws(() => decodeSafetensors(file, SRC), {
        name: errName,
        message: `Cannot load ${SRC}: ${message}`,
      });
    });
  }
  await t.step("the default source name", () => {
    throws(() => decodeSafetensors(new Uint8Array(0)), {
      message:
        "Cannot load safetensors data: file has 0 bytes, fewer than the 8-byte header length",
    });
  });
  await t.step("zero-size tensors overlap nothing; gaps are allowed", () => {
    const file = rawFile(
      `{"a": ${entry("U8", [0], [2, 2])}, "b": ${entry("U8", [4], [0, 4])}, ` +
        `"c": ${entry("U8", [2], [6, 8])}}`,
      new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]),
    );
    const { tensors } = decodeSafetensors(file);
    deepStrictEqual(tensorToU8(tensors.get("c")!), new Uint8Array([7, 8]));
    equal(tensors.get("a")!.bytes.length, 0);
  });
  await t.step("a metadata key named __proto__ stays an own key", () => {
    const { metadata } = decodeSafetensors(rawFile('{"__metadata__": {"__proto__": "x"}}'));
    equal(Object.getPrototypeOf(metadata), Object.prototype);
    deepStrictEqual(Object.keys(metadata), ["__proto__"]);
  });
});

Deno.test("tensorTo*() check the dtype and convert F16 and I64", async (t) => {
  const file = encodeSafetensors({
    f: { dtype: "F64", shape: [1], data: new Float64Array([1]) },
    big: { dtype: "I64", shape: [2], data: new BigInt64Array([-5n, 2n ** 31n]) },
    small: { dtype: "I64", shape: [2], data: new BigInt64Array([-5n, 2n ** 31n - 1n]) },
    h: {
      dtype: "F16",
      shape: [9],
      data: new Uint16Array([0, 0x8000, 0x3c00, 0x7bff, 0x0001, 0x7c00, 0xfc00, 0x7e00, 0x3555]),
    },
  });
  const { tensors } = decodeSafetensors(file);
  await t.step("wrong dtype is a TypeError naming the tensor", () => {
    throws(() => tensorToF32(tensors.get("f")!), {
      name: "TypeError",
      message: 'Cannot read tensor "f" as F32: its dtype is F64',
    });
    throws(() => tensorToU8(tensors.get("f")!), {
      name: "TypeError",
      message: 'Cannot read tensor "f" as U8: its dtype is F64',
    });
    throws(() => tensorToI32(tensors.get("h")!), {
      name: "TypeError",
      message: 'Cannot read tensor "h" as I32: its dtype is F16',
    });
    throws(() => tensorToF64(tensors.get("h")!), {
      name: "TypeError",
      message: 'Cannot read tensor "h" as F64: its dtype is F16',
    });
  });
  await t.step("I64 → I32 with a range check", () => {
    deepStrictEqual(tensorToI32(tensors.get("small")!), new Int32Array([-5, 2147483647]));
    throws(() => tensorToI32(tensors.get("big")!), {
      name: "RangeError",
      message: 'Cannot read tensor "big" as I32: element 1 = 2147483648 is out of range',
    });
  });
  await t.step("F16 → F32, including subnormals, infinities and NaN", () => {
    const h = tensorToF32(tensors.get("h")!);
    deepStrictEqual(Array.from(h.subarray(0, 7)), [0, -0, 1, 65504, 2 ** -24, Infinity, -Infinity]);
    ok(Number.isNaN(h[7]));
    equal(h[8], 0.333251953125);
  });
  await t.step("copies are aligned even when the data is not", () => {
    // F64 data at an odd offset: the golden file has such tensors.
    const odd = encodeSafetensors({
      a: { dtype: "U8", shape: [1], data: new Uint8Array([9]) },
      b: { dtype: "F64", shape: [1], data: new Float64Array([2.5]) },
    });
    const b = decodeSafetensors(odd).tensors.get("b")!;
    ok(b.bytes.byteOffset % 8 !== 0);
    deepStrictEqual(tensorToF64(b), new Float64Array([2.5]));
  });
  equal(DTYPE_SIZE.F16, 2);
});

Deno.test("decodeSafetensors() reads the golden reference file", async () => {
  const bytes = await Deno.readFile(GOLDEN_URL);
  const { tensors, metadata } = decodeSafetensors(bytes, "reference-steps.safetensors");
  const hyper = JSON.parse(metadata.hyper);
  deepStrictEqual(hyper.layers, [784, 32, 16, 10]);
  const expect: [string, Dtype, number[]][] = [
    ["init.w0", "F32", [32, 784]],
    ["init.w1", "F32", [16, 32]],
    ["init.w2", "F32", [10, 16]],
    ["train0.image", "U8", [784]],
    ["train0.label", "U8", [1]],
    ["train0.l0.spikes", "U8", [21, 784]],
    ["train0.l1.traces", "F32", [21, 784]],
    ["train0.l2.desire", "U8", [16, 2]],
    ["train0.out.counts", "I32", [10]],
    ["train2.dw0", "F64", [32, 784]],
    ["eval1.l3.spikes", "U8", [21, 10]],
  ];
  for (const [name, dtype, shape] of expect) {
    const tensor = tensors.get(name);
    ok(tensor, name);
    equal(tensor.dtype, dtype, name);
    deepStrictEqual(tensor.shape, shape, name);
  }
  const w0 = tensorToF32(tensors.get("init.w0")!);
  ok(w0.every(Number.isFinite));
  const label = tensorToU8(tensors.get("train0.label")!)[0];
  ok(label >= 0 && label < 10);
});
