/**
 * Rewrites the limits of a WebAssembly module's imported memory (internal).
 *
 * The threaded build `desire-mt.wasm` imports a shared memory of 1 to 65536 pages. V8, as Deno runs
 * it, checks every memory access against the memory's size (explicit bounds checks); a shared
 * memory that may grow, whose size another thread may change, costs it more than one whose initial
 * and maximum sizes the module declares equal (the size is then fixed when the code is compiled;
 * that this is the reason is our reading, the cost is measured). `bench/memory_limits.ts`, MNIST
 * training on one thread, two runs on 2026-11-29: the same kernels took 1.078× and 1.109× the
 * portable build's time over the growable shared memory, 1.028× and 1.015× over a shared memory of
 * exactly the network's size. So the Deno host (src/threads.ts) learns how many pages a network
 * needs, rewrites the limits to exactly that and compiles the result.
 *
 * @module
 */

import { Reader, readImport, WasmDecodeError } from "./wasm_inspect.ts";

/** The unsigned LEB128 encoding of `v`. */
function u32Bytes(v: number): number[] {
  const out: number[] = [];
  do {
    let byte = v & 0x7f;
    v = Math.floor(v / 128);
    if (v !== 0) byte |= 0x80;
    out.push(byte);
  } while (v !== 0);
  return out;
}

/**
 * A copy of the module `bytes` whose one imported memory declares `initial` and `maximum` pages
 * (its shared flag kept). Throws a RangeError when the module has no imported memory, has a
 * 64-bit one, or is malformed.
 *
 * @example
 * ```ts ignore
 * const fixed = withMemoryLimits(await Deno.readFile("desire-mt.wasm"), 300, 300);
 * ```
 */
export function withMemoryLimits(
  bytes: Uint8Array,
  initial: number,
  maximum: number,
): Uint8Array<ArrayBuffer> {
  if (
    !Number.isInteger(initial) || !Number.isInteger(maximum) || initial < 0 ||
    maximum < initial || maximum > 65536
  ) {
    throw new RangeError(`Cannot set memory limits ${initial}..${maximum} (pages, at most 65536)`);
  }
  if (
    bytes.length < 8 || bytes[0] !== 0 || bytes[1] !== 0x61 || bytes[2] !== 0x73 ||
    bytes[3] !== 0x6d
  ) {
    throw new RangeError("Cannot set memory limits: not a WebAssembly module");
  }
  try {
    const r = new Reader(bytes, 8, bytes.length);
    while (r.pos < r.end) {
      const at = r.pos;
      const id = r.u8();
      const size = r.u32();
      const body = r.pos;
      r.skip(size);
      if (id !== 2) continue;
      const s = new Reader(bytes, body, body + size);
      for (let n = s.u32(); n > 0; n--) {
        const entry = readImport(s);
        if (entry.kind !== "memory") continue;
        const flags = bytes[entry.descStart];
        if (flags & 4) throw new RangeError("Cannot set memory limits: a 64-bit memory");
        // The section again, with the new limits in place of the old ones.
        const section = [
          ...bytes.subarray(body, entry.descStart),
          (flags & 2) | 1,
          ...u32Bytes(initial),
          ...u32Bytes(maximum),
          ...bytes.subarray(entry.descEnd, body + size),
        ];
        const head = [2, ...u32Bytes(section.length)];
        const out = new Uint8Array(
          bytes.length - (body + size - at) + head.length + section.length,
        );
        out.set(bytes.subarray(0, at));
        out.set(head, at);
        out.set(section, at + head.length);
        out.set(bytes.subarray(body + size), at + head.length + section.length);
        return out;
      }
    }
  } catch (e) {
    if (e instanceof WasmDecodeError) {
      throw new RangeError(`Cannot set memory limits: ${e.message}`);
    }
    throw e;
  }
  throw new RangeError("Cannot set memory limits: the module imports no memory");
}
