// desire.wasm as committed: (1) it is exactly what the pinned compiler builds from assembly/,
// and (2) its kernels really are SIMD code, checked by decoding every function body with
// src/wasm_inspect.ts (a decoder, not a byte scan), with exports that must have no SIMD code
// as a control. Also a unit test of the decoder on a hand-assembled module.
import assert from "node:assert/strict";
import {
  inspectWasm,
  reachableFunctions,
  reachableSimdOps,
  WasmDecodeError,
} from "../src/wasm_inspect.ts";

const ROOT = new URL("..", import.meta.url);
const ASC = "npm:assemblyscript@0.28.20/asc";
const KERNELS = [
  "trainSample",
  "inferSample",
  "forwardLayer",
  "backwardLayer",
  "updateLayer",
  "syncForward",
];
const SCALAR_CONTROLS = ["abiVersion", "configPtr"];

/** A module from its sections, each given as [id, contents]. */
function module(...sections: [number, number[]][]): Uint8Array<ArrayBuffer> {
  const out = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
  for (const [id, contents] of sections) out.push(id, ...uleb(contents.length), ...contents);
  return new Uint8Array(out);
}

function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    const b = n & 0x7f;
    n >>>= 7;
    out.push(n ? b | 0x80 : b);
  } while (n);
  return out;
}

/** A code section holding the given bodies (instructions without locals or the final end). */
function code(...bodies: number[][]): number[] {
  const out = uleb(bodies.length);
  for (const b of bodies) {
    const body = [0x00, ...b, 0x0b];
    out.push(...uleb(body.length), ...body);
  }
  return out;
}

Deno.test("wasm_inspect decodes immediates instead of scanning for 0xFD", async (t) => {
  // type 0: () -> i32; functions 0 and 1 have type 0 and are exported as "simd" and "scalar".
  const types: [number, number[]] = [1, [0x01, 0x60, 0x00, 0x01, 0x7f]];
  const funcs: [number, number[]] = [3, [0x02, 0x00, 0x00]];
  const exports: [number, number[]] = [7, [
    0x02,
    ...[0x04, ...new TextEncoder().encode("simd"), 0x00, 0x00],
    ...[0x06, ...new TextEncoder().encode("scalar"), 0x00, 0x01],
  ]];
  const simdBody = [
    [0x41, 0xfd, 0x0c], // i32.const 1661: its LEB128 is FD 0C, like a v128.const prefix
    [0x1a], // drop
    [0x42, 0xfd, 0xfd, 0x03], // i64.const 65277: LEB128 FD FD 03
    [0x1a], // drop
    [0x43, 0xfd, 0xfd, 0xfd, 0x00], // f32.const with 0xFD bytes
    [0x1a], // drop
    [0xfd, 0x0c], // v128.const (SIMD instruction 1), whose 16 bytes look like SIMD opcodes:
    [0xfd, 0x0c, 0xfd, 0x0d, 0xfd, 0x00, 0xfd, 0xfd], // (bytes 0-7)
    [0xfd, 0x0c, 0xfd, 0x1b, 0xfd, 0xfd, 0xfd, 0x0c], // (bytes 8-15)
    [0xfd, 0x1b, 0x03], // i32x4.extract_lane 3 (SIMD instruction 2)
  ].flat();
  const scalarBody = [
    [0x41, 0xfd, 0x01], // i32.const 253: LEB128 FD 01
    [0x41, 0xfd, 0x0c], // i32.const 1661: LEB128 FD 0C
    [0x6a], // i32.add
    [0x02, 0x7f, 0x41, 0xfd, 0x0c, 0x0b], // block (result i32) i32.const 1661 end
    [0x6a], // i32.add
  ].flat();
  const bytes = module(types, funcs, exports, [10, code(simdBody, scalarBody)]);

  await t.step("the hand-assembled module is valid", () => {
    assert.ok(WebAssembly.validate(bytes));
  });

  await t.step("only real 0xFD-prefixed instructions count as SIMD", () => {
    const info = inspectWasm(bytes);
    assert.deepEqual(info.types, [{ params: [], results: ["i32"] }]);
    assert.deepEqual(info.imports, []);
    assert.deepEqual(info.exports, [
      { name: "simd", kind: "function", index: 0 },
      { name: "scalar", kind: "function", index: 1 },
    ]);
    assert.deepEqual(info.sections.map((s) => s.id), [1, 3, 7, 10]);
    const [simd, scalar] = info.functions;
    assert.equal(simd.exported, "simd");
    assert.equal(simd.simdOps, 2); // v128.const and i32x4.extract_lane
    assert.equal(simd.opCount, 9); // 3 consts, 3 drops, 2 SIMD, end
    assert.equal(scalar.exported, "scalar");
    assert.equal(scalar.simdOps, 0);
    assert.equal(scalar.opCount, 8);
    // A byte scan would have counted many more.
    const fdBytes = bytes.filter((b) => b === 0xfd).length;
    assert.ok(fdBytes >= 20, `only ${fdBytes} 0xFD bytes`);
  });

  await t.step("calls are collected and followed transitively", () => {
    // f0 calls f1, f1 calls f2 (which has one SIMD op) and itself; f3 is unreachable.
    const m = module(
      [1, [0x01, 0x60, 0x00, 0x00]],
      [3, [0x04, 0x00, 0x00, 0x00, 0x00]],
      [
        10,
        code(
          [0x10, 0x01],
          [0x10, 0x02, 0x10, 0x01],
          [0xfd, 0x0c, ...new Array(16).fill(0), 0x1a],
          [],
        ),
      ],
    );
    assert.ok(WebAssembly.validate(m));
    const info = inspectWasm(m);
    assert.deepEqual(info.functions.map((f) => f.calls), [[1], [1, 2], [], []]);
    assert.deepEqual(reachableFunctions(info, 0), [0, 1, 2]);
    assert.equal(reachableSimdOps(info, 0), 1);
    assert.equal(reachableSimdOps(info, 3), 0);
  });

  await t.step("unknown opcodes and truncated input fail loudly", () => {
    const withBody = (b: number[]) => module(types, [3, [0x01, 0x00]], [10, code(b)]);
    assert.throws(() => inspectWasm(withBody([0x41, 0x00, 0xff])), WasmDecodeError);
    assert.throws(() => inspectWasm(withBody([0xfd, 0x9a, 0x01])), /unknown opcode 0xfd 154/);
    assert.throws(() => inspectWasm(withBody([0xfb, 0x00])), /unknown opcode 0xfb/);
    assert.throws(() => inspectWasm(withBody([0xfd, 0x1b, 0x04])), /lane index out of range/);
    assert.throws(() => inspectWasm(withBody([0x41, 0xfd])), WasmDecodeError);
    assert.throws(() => inspectWasm(bytes.subarray(0, bytes.length - 1)), WasmDecodeError);
    assert.throws(
      () => inspectWasm(new Uint8Array([0, 0x61, 0x73, 0x6d, 2, 0, 0, 0])),
      /version 1/,
    );
  });
});

for (const [file, target] of [["desire.wasm", "release"], ["desire-mt.wasm", "threads"]]) {
  Deno.test(`${file} is reproducible from assembly/ with the pinned compiler`, async () => {
    // asc must write only the -o file into the temp dir: refuse to run if asconfig.json's
    // release target or shared options ask for any other output file.
    const asconfig = JSON.parse(await Deno.readTextFile(new URL("asconfig.json", ROOT)));
    const settings = { ...asconfig.options, ...asconfig.targets?.[target] };
    for (const key of ["extends", "textFile", "bindings", "sourceMap", "tsdFile", "jsFile"]) {
      assert.ok(
        !settings[key],
        `asconfig.json's ${target} target sets "${key}", which would make this test write ` +
          "outside its temp dir; update tests/wasm_build_test.ts",
      );
    }
    const committed = await Deno.readFile(new URL(file, ROOT));
    const dir = await Deno.makeTempDir({ prefix: "desire_wasm_build_" });
    try {
      const out = `${dir}/${file}`;
      const result = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", ASC, "assembly/index.ts", "--target", target, "-o", out],
        cwd: ROOT,
        stdout: "piped",
        stderr: "piped",
      }).output();
      const decode = (b: Uint8Array) => new TextDecoder().decode(b);
      assert.equal(
        result.code,
        0,
        `asc failed:\n${decode(result.stdout)}\n${decode(result.stderr)}`,
      );
      const written = [];
      for await (const e of Deno.readDir(dir)) written.push(e.name);
      assert.deepEqual(written, [file], "asc wrote files other than the -o file");
      const rebuilt = await Deno.readFile(out);
      let first = 0;
      const n = Math.min(rebuilt.length, committed.length);
      while (first < n && rebuilt[first] === committed[first]) first++;
      if (first < n || rebuilt.length !== committed.length) {
        assert.fail(
          `${file} is stale: it differs from what assembly/ compiles to ` +
            `(first differing byte at offset ${first}; committed ${committed.length} bytes, ` +
            `rebuilt ${rebuilt.length} bytes). Run \`deno task build\` and commit ${file}.`,
        );
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}

Deno.test("desire.wasm: the kernels are SIMD code", async (t) => {
  const bytes = await Deno.readFile(new URL("desire.wasm", ROOT));
  const info = inspectWasm(bytes);
  const fn = (name: string) => {
    const e = info.exports.find((x) => x.name === name);
    assert.ok(e, `desire.wasm does not export ${name}`);
    assert.equal(e.kind, "function", `${name} is not a function export`);
    return e.index;
  };

  await t.step("it validates", () => {
    assert.ok(WebAssembly.validate(bytes));
  });

  await t.step("it imports nothing but env.abort", () => {
    for (const i of info.imports) {
      assert.deepEqual(
        i,
        { module: "env", name: "abort", kind: "function" },
        `unexpected import ${i.module}.${i.name}`,
      );
    }
  });

  await t.step("every kernel reaches SIMD instructions", () => {
    for (const name of KERNELS) {
      const index = fn(name);
      const ops = reachableSimdOps(info, index);
      assert.ok(
        ops > 0,
        `${name} (function ${index}, reaching ${reachableFunctions(info, index)}) has no SIMD ` +
          "instructions: the SIMD kernels were compiled to scalar code",
      );
    }
  });

  await t.step("scalar exports have none (control)", () => {
    for (const name of SCALAR_CONTROLS) {
      assert.equal(reachableSimdOps(info, fn(name)), 0, `${name} counts SIMD instructions`);
    }
  });
});
