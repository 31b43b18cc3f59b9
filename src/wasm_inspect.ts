/**
 * A small WebAssembly binary decoder (internal), used by the tests to check what the
 * compiler put into desire.wasm: the imports, the exports and, per function, how many
 * SIMD (0xFD-prefixed) instructions it contains and which functions it calls. Its reader and
 * import-entry decoder also serve src/wasm_limits.ts, which rewrites the threaded build's
 * memory limits.
 *
 * Function bodies are decoded instruction by instruction with every immediate (LEB128
 * integers, block types, memargs, br_table vectors, lane indices, 16-byte v128 constants and
 * shuffle masks), so bytes equal to 0xFD inside immediates are never mistaken for the SIMD
 * prefix. Any opcode the decoder does not know makes it throw a {@linkcode WasmDecodeError}
 * instead of guessing. Covered: the core instruction set with sign extension, saturating
 * truncation, bulk memory, reference types, multi-value, tail calls, exception handling,
 * fixed-width and relaxed SIMD and threads; not covered: GC (0xFB) and type definitions
 * other than function types.
 *
 * @module
 */

/** What an import or export is. */
export type ExternKind = "function" | "table" | "memory" | "global" | "tag";

/** One entry of the import section. */
export interface WasmImport {
  module: string;
  name: string;
  kind: ExternKind;
}

/** One entry of the export section; `index` is in the index space of its kind. */
export interface WasmExport {
  name: string;
  kind: ExternKind;
  index: number;
}

/** A function type of the type section, value types spelled as in the text format. */
export interface WasmFuncType {
  params: string[];
  results: string[];
}

/** One function defined in the module (imported functions have no body and are not listed). */
export interface WasmFunction {
  /** Index in the function index space (imported functions come first). */
  index: number;
  /** Index of its type in {@linkcode WasmInfo.types}. */
  typeIndex: number;
  /** The first name it is exported under, if any. */
  exported?: string;
  /** Instructions in the body, the final `end` included. */
  opCount: number;
  /** 0xFD-prefixed (SIMD) instructions in the body. */
  simdOps: number;
  /** Distinct targets of `call` and `return_call`, ascending. */
  calls: number[];
  /** `call_indirect`, `return_call_indirect`, `call_ref` and `return_call_ref` instructions. */
  indirectCalls: number;
  /** Size of the body in bytes (locals included). */
  bodySize: number;
}

/** A section header: its id, name (custom sections only), and where its contents lie. */
export interface WasmSection {
  id: number;
  name?: string;
  offset: number;
  size: number;
}

/** What {@linkcode inspectWasm} found in a module. */
export interface WasmInfo {
  sections: WasmSection[];
  types: WasmFuncType[];
  imports: WasmImport[];
  exports: WasmExport[];
  /** Number of imported functions, i.e. the index of the first defined function. */
  importedFunctions: number;
  functions: WasmFunction[];
}

/** Thrown on malformed input or an instruction the decoder does not know. */
export class WasmDecodeError extends Error {
  /** Byte offset in the module where decoding failed. */
  readonly offset: number;
  /** Creates the error for byte `offset`. */
  constructor(message: string, offset: number) {
    super(`${message} at byte offset ${offset} (0x${offset.toString(16)})`);
    this.name = "WasmDecodeError";
    this.offset = offset;
  }
}

const KINDS: readonly ExternKind[] = ["function", "table", "memory", "global", "tag"];
const SECTION_ORDER: Record<number, number> = {
  1: 1, // type
  2: 2, // import
  3: 3, // function
  4: 4, // table
  5: 5, // memory
  13: 6, // tag
  6: 7, // global
  7: 8, // export
  8: 9, // start
  9: 10, // element
  12: 11, // data count
  10: 12, // code
  11: 13, // data
};

const VALTYPES: Record<number, string> = {
  0x7f: "i32",
  0x7e: "i64",
  0x7d: "f32",
  0x7c: "f64",
  0x7b: "v128",
  0x70: "funcref",
  0x6f: "externref",
  0x69: "exnref",
};

/** Bounds-checked reader of bytes and LEB128 integers. */
/** A bounded cursor over module bytes (also used by src/wasm_limits.ts). */
export class Reader {
  pos: number;
  constructor(readonly bytes: Uint8Array, pos: number, readonly end: number) {
    this.pos = pos;
  }
  fail(message: string, at = this.pos): never {
    throw new WasmDecodeError(message, at);
  }
  u8(): number {
    if (this.pos >= this.end) this.fail("unexpected end of data");
    return this.bytes[this.pos++];
  }
  skip(n: number): void {
    if (n > this.end - this.pos) this.fail(`unexpected end of data (need ${n} bytes)`);
    this.pos += n;
  }
  /** Unsigned LEB128 of at most `bits` bits (up to 53, or 64 when only skipped). */
  uleb(bits: number): number {
    const start = this.pos;
    const maxBytes = Math.ceil(bits / 7);
    let result = 0;
    let scale = 1;
    for (let i = 0;; i++) {
      const b = this.u8();
      if (i === maxBytes - 1) {
        const used = bits - 7 * i; // payload bits allowed in the last byte
        if (b & 0x80 || (b & 0x7f) >> used) this.fail(`malformed u${bits} LEB128`, start);
      }
      result += (b & 0x7f) * scale;
      scale *= 128;
      if (!(b & 0x80)) return result;
    }
  }
  u32(): number {
    return this.uleb(32);
  }
  /** Signed LEB128 of at most `bits` bits; the value is returned exactly up to 53 bits. */
  sleb(bits: number): number {
    const start = this.pos;
    const maxBytes = Math.ceil(bits / 7);
    let result = 0;
    let scale = 1;
    for (let i = 0;; i++) {
      const b = this.u8();
      if (i === maxBytes - 1) {
        // The unused bits of the last byte must all equal the sign bit.
        const used = bits - 7 * i;
        const rest = (b & 0x7f) >> (used - 1);
        if (b & 0x80 || (rest !== 0 && rest !== (0x7f >> (used - 1)))) {
          this.fail(`malformed s${bits} LEB128`, start);
        }
      }
      result += (b & 0x7f) * scale;
      scale *= 128;
      if (!(b & 0x80)) return b & 0x40 ? result - scale : result;
    }
  }
  name(): string {
    const n = this.u32();
    const at = this.pos;
    this.skip(n);
    try {
      return new TextDecoder("utf-8", { fatal: true }).decode(this.bytes.subarray(at, at + n));
    } catch {
      return this.fail("malformed UTF-8 name", at);
    }
  }
  /** A heap type: an abstract type (negative, one byte) or a type index. */
  heapType(): void {
    const at = this.pos;
    const v = this.sleb(33);
    if (v < 0 && (v < -0x17 || v > -0x0c)) this.fail("unknown heap type", at);
  }
  valType(): string {
    const at = this.pos;
    const b = this.u8();
    const t = VALTYPES[b];
    if (t) return t;
    if (b === 0x63 || b === 0x64) {
      this.heapType();
      return b === 0x63 ? "(ref null)" : "(ref)";
    }
    return this.fail(`unknown value type 0x${b.toString(16)}`, at);
  }
  limits(): void {
    const at = this.pos;
    const flags = this.u8();
    if (flags > 7) this.fail("malformed limits", at);
    const bits = flags & 4 ? 64 : 32;
    this.uleb(bits);
    if (flags & 1) this.uleb(bits);
  }
}

// Immediate kinds of the one-byte opcodes (0 = unknown opcode).
const NONE = 1,
  BLOCK = 2,
  IDX = 3,
  IDX2 = 4,
  MEMARG = 5,
  BR_TABLE = 6,
  I32 = 7,
  I64 = 8,
  F32 = 9,
  F64 = 10,
  SELECT_T = 11,
  HEAPTYPE = 12,
  TRY_TABLE = 13,
  END = 14,
  DELEGATE = 15,
  PREFIX = 16;

const OPS = new Uint8Array(256);
function setOps(kind: number, from: number, to = from): void {
  for (let op = from; op <= to; op++) OPS[op] = kind;
}
setOps(NONE, 0x00, 0x01); // unreachable nop
setOps(BLOCK, 0x02, 0x04); // block loop if
setOps(NONE, 0x05); // else
setOps(BLOCK, 0x06); // try (legacy exceptions)
setOps(IDX, 0x07, 0x09); // catch throw rethrow
setOps(NONE, 0x0a); // throw_ref
setOps(END, 0x0b);
setOps(IDX, 0x0c, 0x0d); // br br_if
setOps(BR_TABLE, 0x0e);
setOps(NONE, 0x0f); // return
setOps(IDX, 0x10); // call
setOps(IDX2, 0x11); // call_indirect
setOps(IDX, 0x12); // return_call
setOps(IDX2, 0x13); // return_call_indirect
setOps(IDX, 0x14, 0x15); // call_ref return_call_ref
setOps(DELEGATE, 0x18);
setOps(NONE, 0x19); // catch_all
setOps(NONE, 0x1a, 0x1b); // drop select
setOps(SELECT_T, 0x1c);
setOps(TRY_TABLE, 0x1f);
setOps(IDX, 0x20, 0x26); // local.* global.* table.get table.set
setOps(MEMARG, 0x28, 0x3e); // loads and stores
setOps(IDX, 0x3f, 0x40); // memory.size memory.grow
setOps(I32, 0x41);
setOps(I64, 0x42);
setOps(F32, 0x43);
setOps(F64, 0x44);
setOps(NONE, 0x45, 0xc4); // numeric operators and sign extension
setOps(HEAPTYPE, 0xd0); // ref.null
setOps(NONE, 0xd1); // ref.is_null
setOps(IDX, 0xd2); // ref.func
setOps(NONE, 0xd3, 0xd4); // ref.eq ref.as_non_null
setOps(IDX, 0xd5, 0xd6); // br_on_null br_on_non_null
setOps(PREFIX, 0xfc);
setOps(PREFIX, 0xfd);
setOps(PREFIX, 0xfe);

// Immediate kinds of the 0xFD (SIMD) opcodes, 0x00..0x113 (0 = unknown).
const LANE = 17, MEMARG_LANE = 18, BYTES16 = 19, SHUFFLE = 20;
const SIMD = new Uint8Array(0x114);
for (let op = 0; op < SIMD.length; op++) SIMD[op] = NONE;
for (const op of [0x9a, 0xa2, 0xa5, 0xa6, 0xaf, 0xb0, 0xb2, 0xb3, 0xb4, 0xbb, 0xc2, 0xc5, 0xc6]) {
  SIMD[op] = 0;
}
for (const op of [0xcf, 0xd0, 0xd2, 0xd3, 0xd4, 0xe2, 0xee]) SIMD[op] = 0;
SIMD.fill(MEMARG, 0x00, 0x0c); // v128.load* and v128.store
SIMD[0x0c] = BYTES16; // v128.const
SIMD[0x0d] = SHUFFLE; // i8x16.shuffle
SIMD.fill(LANE, 0x15, 0x23); // extract_lane and replace_lane
SIMD.fill(MEMARG_LANE, 0x54, 0x5c); // v128.load*_lane and v128.store*_lane
SIMD.fill(MEMARG, 0x5c, 0x5e); // v128.load32_zero v128.load64_zero

/** Lane count of the extract/replace_lane (0x15..0x22) and load/store_lane (0x54..0x5b) ops. */
function laneCount(op: number): number {
  if (op >= 0x54) return 16 >> (op & 3);
  if (op <= 0x17) return 16;
  if (op <= 0x1a) return 8;
  if (op <= 0x1c || (op >= 0x1f && op <= 0x20)) return 4;
  return 2;
}

// 0xFC opcodes: immediates by sub-opcode (-1 = unknown); value = number of u32 indices.
const FC_IDX = [0, 0, 0, 0, 0, 0, 0, 0, 2, 1, 2, 1, 2, 1, 2, 1, 1, 1];

function memarg(r: Reader): void {
  const at = r.pos;
  const align = r.u32();
  if (align >= 128) r.fail("malformed memarg alignment", at);
  if (align & 0x40) r.u32(); // memory index (multi-memory)
  r.uleb(64); // offset (u64 for memory64)
}

interface Body {
  opCount: number;
  simdOps: number;
  calls: Set<number>;
  indirectCalls: number;
}

/** Decodes one expression up to and including its final `end`. */
function decodeExpr(r: Reader, body: Body): void {
  let depth = 0;
  for (;;) {
    const at = r.pos;
    const op = r.u8();
    body.opCount++;
    switch (OPS[op]) {
      case NONE:
        break;
      case END:
        if (depth-- === 0) return;
        break;
      case BLOCK: {
        const bt = r.pos;
        const v = r.sleb(33);
        // Negative: 0x40 (empty) or a one-byte value type; otherwise a type index.
        if (v < 0) {
          const b = r.bytes[bt];
          if (b !== 0x40) {
            r.pos = bt;
            r.valType();
          }
        }
        depth++;
        break;
      }
      case IDX: {
        const idx = r.u32();
        if (op === 0x10 || op === 0x12) body.calls.add(idx);
        if (op === 0x14 || op === 0x15) body.indirectCalls++;
        break;
      }
      case IDX2:
        r.u32();
        r.u32();
        body.indirectCalls++;
        break;
      case DELEGATE:
        r.u32();
        if (depth-- === 0) r.fail("delegate outside a block", at);
        break;
      case MEMARG:
        memarg(r);
        break;
      case BR_TABLE: {
        const n = r.u32();
        for (let i = 0; i <= n; i++) r.u32(); // n targets and the default
        break;
      }
      case I32:
        r.sleb(32);
        break;
      case I64:
        r.sleb(64);
        break;
      case F32:
        r.skip(4);
        break;
      case F64:
        r.skip(8);
        break;
      case SELECT_T: {
        const n = r.u32();
        for (let i = 0; i < n; i++) r.valType();
        break;
      }
      case HEAPTYPE:
        r.heapType();
        break;
      case TRY_TABLE: {
        const bt = r.pos;
        if (r.sleb(33) < 0 && r.bytes[bt] !== 0x40) {
          r.pos = bt;
          r.valType();
        }
        const n = r.u32();
        for (let i = 0; i < n; i++) {
          const c = r.pos;
          const kind = r.u8();
          if (kind > 3) r.fail("unknown catch clause kind", c);
          if (kind < 2) r.u32(); // tag
          r.u32(); // label
        }
        depth++;
        break;
      }
      case PREFIX: {
        const sub = r.u32();
        if (op === 0xfd) {
          decodeSimd(r, sub, at);
          body.simdOps++;
        } else if (op === 0xfc) {
          const n = sub < FC_IDX.length ? FC_IDX[sub] : -1;
          if (n < 0) r.fail(`unknown opcode 0xfc ${sub}`, at);
          for (let i = 0; i < n; i++) r.u32();
        } else { // 0xfe: threads
          if (sub === 0x03) {
            if (r.u8() !== 0) r.fail("malformed atomic.fence", at);
          } else if (sub <= 0x02 || (sub >= 0x10 && sub <= 0x4e)) memarg(r);
          else r.fail(`unknown opcode 0xfe ${sub}`, at);
        }
        break;
      }
      default:
        r.fail(`unknown opcode 0x${op.toString(16)}`, at);
    }
  }
}

function decodeSimd(r: Reader, sub: number, at: number): void {
  const kind = sub < SIMD.length ? SIMD[sub] : 0;
  switch (kind) {
    case NONE:
      return;
    case MEMARG:
      memarg(r);
      return;
    case BYTES16:
      r.skip(16);
      return;
    case SHUFFLE:
      for (let i = 0; i < 16; i++) {
        if (r.u8() >= 32) r.fail("i8x16.shuffle lane index out of range", r.pos - 1);
      }
      return;
    case MEMARG_LANE:
      memarg(r);
      // falls through
    case LANE:
      if (r.u8() >= laneCount(sub)) r.fail("lane index out of range", r.pos - 1);
      return;
    default:
      r.fail(`unknown opcode 0xfd ${sub} (0x${sub.toString(16)})`, at);
  }
}

/** One entry of an import section, and where its description (type, limits) lies. */
export interface ImportEntry extends WasmImport {
  /** Byte offset of the description, after the kind byte. */
  descStart: number;
  /** Byte offset after it. */
  descEnd: number;
}

/** Reads the import entry at `s` (names, kind, description), leaving `s` after it. */
export function readImport(s: Reader): ImportEntry {
  const module = s.name();
  const name = s.name();
  const at = s.pos;
  const k = s.u8();
  const kind = KINDS[k];
  if (kind === undefined) s.fail(`unknown import kind ${k}`, at);
  const descStart = s.pos;
  if (k === 0) {
    s.u32();
  } else if (k === 1) {
    s.valType();
    s.limits();
  } else if (k === 2) {
    s.limits();
  } else if (k === 3) {
    s.valType();
    if (s.u8() > 1) s.fail("malformed global mutability", s.pos - 1);
  } else {
    if (s.u8() !== 0) s.fail("malformed tag attribute", s.pos - 1);
    s.u32();
  }
  return { module, name, kind, descStart, descEnd: s.pos };
}

/**
 * Decodes a WebAssembly module: its sections, types, imports, exports, and every function
 * body instruction by instruction, counting SIMD instructions and collecting direct calls.
 * Throws a {@linkcode WasmDecodeError} on malformed input or an unknown instruction.
 *
 * @example A one-function module: `f` returns lane 0 of a v128.const (two SIMD instructions)
 * ```ts
 * import assert from "node:assert/strict";
 * import { inspectWasm } from "./wasm_inspect.ts";
 *
 * const bytes = new Uint8Array([
 *   0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version 1
 *   0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7f, // type 0: () -> i32
 *   0x03, 0x02, 0x01, 0x00, // function 0 has type 0
 *   0x07, 0x05, 0x01, 0x01, 0x66, 0x00, 0x00, // export "f" = function 0
 *   0x0a, 0x19, 0x01, 0x17, 0x00, // code: one body of 23 bytes, no locals
 *   0xfd, 0x0c, 7, 0, 0, 0, 0xfd, 0xfd, 0xfd, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, // v128.const
 *   0xfd, 0x1b, 0x00, // i32x4.extract_lane 0
 *   0x0b, // end
 * ]);
 * const info = inspectWasm(bytes);
 * assert.deepEqual(info.exports, [{ name: "f", kind: "function", index: 0 }]);
 * assert.deepEqual(info.types, [{ params: [], results: ["i32"] }]);
 * assert.equal(info.functions[0].simdOps, 2);
 * assert.equal(info.functions[0].opCount, 3);
 * ```
 */
export function inspectWasm(bytes: Uint8Array): WasmInfo {
  const r = new Reader(bytes, 0, bytes.length);
  const magic = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
  for (const b of magic) if (r.u8() !== b) r.fail("not a WebAssembly version 1 module", 0);

  const info: WasmInfo = {
    sections: [],
    types: [],
    imports: [],
    exports: [],
    importedFunctions: 0,
    functions: [],
  };
  let funcTypes: number[] | undefined;
  let lastOrder = 0;
  while (r.pos < r.end) {
    const header = r.pos;
    const id = r.u8();
    const size = r.u32();
    const offset = r.pos;
    if (size > r.end - offset) r.fail("section extends past the end of the module", header);
    const s = new Reader(bytes, offset, offset + size);
    const section: WasmSection = { id, offset, size };
    info.sections.push(section);
    if (id !== 0) {
      const order = SECTION_ORDER[id];
      if (order === undefined) r.fail(`unknown section id ${id}`, header);
      if (order <= lastOrder) r.fail(`section ${id} out of order or repeated`, header);
      lastOrder = order;
    }
    switch (id) {
      case 0:
        section.name = s.name();
        s.pos = s.end; // contents are opaque
        break;
      case 1:
        for (let n = s.u32(); n > 0; n--) {
          const form = s.u8();
          if (form !== 0x60) s.fail(`unsupported type form 0x${form.toString(16)}`, s.pos - 1);
          const params: string[] = [];
          for (let k = s.u32(); k > 0; k--) params.push(s.valType());
          const results: string[] = [];
          for (let k = s.u32(); k > 0; k--) results.push(s.valType());
          info.types.push({ params, results });
        }
        break;
      case 2:
        for (let n = s.u32(); n > 0; n--) {
          const { module, name, kind } = readImport(s);
          if (kind === "function") info.importedFunctions++;
          info.imports.push({ module, name, kind });
        }
        break;
      case 3:
        funcTypes = [];
        for (let n = s.u32(); n > 0; n--) funcTypes.push(s.u32());
        break;
      case 7:
        for (let n = s.u32(); n > 0; n--) {
          const name = s.name();
          const at = s.pos;
          const kind = KINDS[s.u8()];
          if (kind === undefined) s.fail("unknown export kind", at);
          info.exports.push({ name, kind, index: s.u32() });
        }
        break;
      case 10: {
        const count = s.u32();
        if (count !== (funcTypes?.length ?? 0)) {
          s.fail("function and code section counts differ", offset);
        }
        for (let i = 0; i < count; i++) {
          const bodySize = s.u32();
          const start = s.pos;
          if (bodySize > s.end - start) s.fail("function body extends past its section");
          const b = new Reader(bytes, start, start + bodySize);
          for (let n = b.u32(); n > 0; n--) {
            b.u32();
            b.valType();
          }
          const body: Body = { opCount: 0, simdOps: 0, calls: new Set(), indirectCalls: 0 };
          decodeExpr(b, body);
          if (b.pos !== b.end) b.fail("function body continues after its final end");
          s.pos = b.end;
          const index = info.importedFunctions + i;
          info.functions.push({
            index,
            typeIndex: funcTypes![i],
            opCount: body.opCount,
            simdOps: body.simdOps,
            calls: [...body.calls].sort((x, y) => x - y),
            indirectCalls: body.indirectCalls,
            bodySize,
          });
        }
        break;
      }
      default:
        s.pos = s.end; // table, memory, global, start, element, data, data count, tag
    }
    if (s.pos !== s.end) s.fail(`section ${id} has trailing bytes`);
    r.pos = s.end;
  }
  if ((funcTypes?.length ?? 0) !== info.functions.length) {
    r.fail("function section without a code section", r.pos);
  }
  for (const e of info.exports) {
    if (e.kind !== "function") continue;
    const f = info.functions[e.index - info.importedFunctions];
    if (f && f.exported === undefined) f.exported = e.name;
  }
  return info;
}

/**
 * The defined functions reachable from function `index` by direct calls (`call`,
 * `return_call`), itself included, ascending. Indirect calls are not followed.
 *
 * @example Function 0 calls 1, which calls 0 back; 2 is unreachable
 * ```ts
 * import assert from "node:assert/strict";
 * import { reachableFunctions, type WasmInfo } from "./wasm_inspect.ts";
 *
 * const fn = (index: number, calls: number[]) => ({
 *   index, typeIndex: 0, opCount: 1, simdOps: index, calls, indirectCalls: 0, bodySize: 2,
 * });
 * const info: WasmInfo = {
 *   sections: [], types: [], imports: [], exports: [], importedFunctions: 0,
 *   functions: [fn(0, [1]), fn(1, [0]), fn(2, [])],
 * };
 * assert.deepEqual(reachableFunctions(info, 0), [0, 1]);
 * ```
 */
export function reachableFunctions(info: WasmInfo, index: number): number[] {
  const seen = new Set<number>();
  const stack = [index];
  while (stack.length > 0) {
    const i = stack.pop()!;
    const f = info.functions[i - info.importedFunctions];
    if (f === undefined || seen.has(i)) continue; // imported or already visited
    seen.add(i);
    stack.push(...f.calls);
  }
  return [...seen].sort((x, y) => x - y);
}

/**
 * SIMD instructions in function `index` and every function it reaches by direct calls,
 * each function counted once.
 *
 * @example A caller without SIMD code of its own still counts its callee's
 * ```ts
 * import assert from "node:assert/strict";
 * import { reachableSimdOps, type WasmInfo } from "./wasm_inspect.ts";
 *
 * const fn = (index: number, simdOps: number, calls: number[]) => ({
 *   index, typeIndex: 0, opCount: 1, simdOps, calls, indirectCalls: 0, bodySize: 2,
 * });
 * const info: WasmInfo = {
 *   sections: [], types: [], imports: [], exports: [], importedFunctions: 0,
 *   functions: [fn(0, 0, [1]), fn(1, 5, [])],
 * };
 * assert.equal(reachableSimdOps(info, 0), 5);
 * ```
 */
export function reachableSimdOps(info: WasmInfo, index: number): number {
  let total = 0;
  for (const i of reachableFunctions(info, index)) {
    total += info.functions[i - info.importedFunctions].simdOps;
  }
  return total;
}
