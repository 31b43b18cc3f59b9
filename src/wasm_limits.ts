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

/** Reads an unsigned LEB128 integer at `at`: its value and the offset after it. */
function readU32(b: Uint8Array, at: number, what: string): [number, number] {
  let value = 0, shift = 0;
  for (let k = 0; k < 5; k++) {
    if (at >= b.length) throw new RangeError(`Cannot read ${what}: the module ends inside it`);
    const byte = b[at++];
    value += (byte & 0x7f) * 2 ** shift;
    if ((byte & 0x80) === 0) {
      if (value > 0xffffffff) throw new RangeError(`Cannot read ${what}: over 32 bits`);
      return [value, at];
    }
    shift += 7;
  }
  throw new RangeError(`Cannot read ${what}: a LEB128 integer of over 5 bytes`);
}

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

/** Skips a name (a length and that many bytes). */
function skipName(b: Uint8Array, at: number, what: string): number {
  const [n, p] = readU32(b, at, what);
  if (p + n > b.length) throw new RangeError(`Cannot read ${what}: the module ends inside it`);
  return p + n;
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
    !Number.isInteger(initial) || !Number.isInteger(maximum) || initial < 0 || maximum < initial ||
    maximum > 65536
  ) {
    throw new RangeError(`Cannot set memory limits ${initial}..${maximum} (pages, at most 65536)`);
  }
  if (
    bytes.length < 8 || bytes[0] !== 0 || bytes[1] !== 0x61 || bytes[2] !== 0x73 ||
    bytes[3] !== 0x6d
  ) {
    throw new RangeError("Cannot set memory limits: not a WebAssembly module");
  }
  let at = 8;
  while (at < bytes.length) {
    const id = bytes[at];
    const [size, body] = readU32(bytes, at + 1, "a section size");
    const end = body + size;
    if (end > bytes.length) {
      throw new RangeError("Cannot set memory limits: a section passes the end");
    }
    if (id === 2) {
      let [count, p] = readU32(bytes, body, "the import count");
      for (; count > 0; count--) {
        p = skipName(bytes, p, "an import's module name");
        p = skipName(bytes, p, "an import's name");
        const kind = bytes[p++];
        if (kind === 0) {
          p = readU32(bytes, p, "a function import's type")[1];
        } else if (kind === 1) {
          p++; // reference type
          const flags = bytes[p++];
          p = readU32(bytes, p, "a table's limits")[1];
          if (flags & 1) p = readU32(bytes, p, "a table's limits")[1];
        } else if (kind === 3) {
          p += 2; // value type, mutability
        } else if (kind === 4) {
          p++;
          p = readU32(bytes, p, "a tag's type")[1];
        } else if (kind === 2) {
          const flags = bytes[p];
          if (flags & 4) throw new RangeError("Cannot set memory limits: a 64-bit memory");
          let q = readU32(bytes, p + 1, "a memory's limits")[1];
          if (flags & 1) q = readU32(bytes, q, "a memory's limits")[1];
          const limits = [(flags & 2) | 1, ...u32Bytes(initial), ...u32Bytes(maximum)];
          const section = [
            ...bytes.subarray(body, p),
            ...limits,
            ...bytes.subarray(q, end),
          ];
          const head = [2, ...u32Bytes(section.length)];
          const out = new Uint8Array(at + head.length + section.length + bytes.length - end);
          out.set(bytes.subarray(0, at));
          out.set(head, at);
          out.set(section, at + head.length);
          out.set(bytes.subarray(end), at + head.length + section.length);
          return out;
        } else {
          throw new RangeError(`Cannot set memory limits: an import of unknown kind ${kind}`);
        }
      }
    }
    at = end;
  }
  throw new RangeError("Cannot set memory limits: the module imports no memory");
}
