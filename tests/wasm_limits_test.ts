// src/wasm_limits.ts: the threaded build's memory limits rewritten, and nothing else; and the
// threaded Deno host runs over a memory of fixed size.
import assert from "node:assert/strict";
import { withMemoryLimits } from "../src/wasm_limits.ts";
import { Network } from "../src/network.ts";
import { defaultConfig } from "../src/params.ts";

const MT = await Deno.readFile(new URL("../desire-mt.wasm", import.meta.url));
const PORTABLE = await Deno.readFile(new URL("../desire.wasm", import.meta.url));

function noop(): void {}

Deno.test("withMemoryLimits rewrites the imported memory's limits", async (t) => {
  await t.step("the build's own limits (1..65536) give back the same bytes", () => {
    const same = withMemoryLimits(MT, 1, 65536);
    assert.equal(same.length, MT.length);
    const k = same.findIndex((b, i) => b !== MT[i]);
    assert.equal(k, -1, `first differing byte at ${k}`);
  });

  await t.step("a fixed size links only a memory of that size, and keeps it shared", async () => {
    const bytes = withMemoryLimits(MT, 300, 300);
    const module = await WebAssembly.compile(bytes);
    const env = { abort: noop };
    const fits = new WebAssembly.Memory({ initial: 300, maximum: 300, shared: true });
    const ex = (await WebAssembly.instantiate(module, { env: { ...env, memory: fits } }))
      .exports as { abiVersion(): number };
    assert.equal(ex.abiVersion(), 1);
    for (
      const [what, memory] of [
        ["growable", new WebAssembly.Memory({ initial: 1, maximum: 65536, shared: true })],
        ["too small", new WebAssembly.Memory({ initial: 299, maximum: 299, shared: true })],
        ["not shared", new WebAssembly.Memory({ initial: 300, maximum: 300 })],
      ] as const
    ) {
      await assert.rejects(
        WebAssembly.instantiate(module, { env: { ...env, memory } }),
        WebAssembly.LinkError,
        what,
      );
    }
  });

  await t.step("bad input is refused with a RangeError that says why", () => {
    assert.throws(() => withMemoryLimits(PORTABLE, 2, 2), {
      name: "RangeError",
      message: "Cannot set memory limits: the module imports no memory",
    });
    assert.throws(() => withMemoryLimits(new TextEncoder().encode("not a module"), 2, 2), {
      name: "RangeError",
      message: "Cannot set memory limits: not a WebAssembly module",
    });
    assert.throws(() => withMemoryLimits(MT, 5, 4), {
      name: "RangeError",
      message: "Cannot set memory limits 5..4 (pages, at most 65536)",
    });
    assert.throws(() => withMemoryLimits(MT.subarray(0, 40), 2, 2), RangeError);
  });
});

Deno.test("a threaded network runs over a memory of fixed size", async () => {
  const net = await Network.create(defaultConfig([784, 40, 10]), 0, undefined, { threads: 2 });
  try {
    const memory = net.exports.memory;
    const bytes = memory.buffer.byteLength;
    assert.ok(
      bytes >= net.exports.memoryEnd(),
      `${bytes} bytes < memoryEnd ${net.exports.memoryEnd()}`,
    );
    assert.ok(bytes - net.exports.memoryEnd() < 65536, "more pages than the layout needs");
    assert.throws(() => memory.grow(1), RangeError);
    net.trainSample(new Uint8Array(784).fill(200), 3, 0, 0);
  } finally {
    await net.close();
  }
});
