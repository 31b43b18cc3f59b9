/**
 * The bound of the old forward kernel: a WebAssembly SIMD i32x4 column-sum loop, hand-assembled.
 *
 * The forward kernel of desire.wasm used to spend its time in `dst[k] += row[k]` over i32 rows
 * (the weight row of an input that fired, added into the current of one time step, a
 * read-modify-write of the current). It now keeps the current of 32 neurons in registers and adds
 * 128-byte row chunks from lists; the bounds of that design (and of the update and of two
 * threads) are in `bench/bounds.ts`, which shows this loop once as the old design's comparison.
 * This module builds, byte by byte, a wasm module with one function doing only that loop, with
 * the same shape as the old kernel (v128 load + i32x4.add + v128 store, unrolled 4×, 64 bytes
 * per turn):
 *
 * ```
 * colsum(dst, src, rowBytes, rows, reps):
 *   repeat reps times: for r < rows: for k < rowBytes step 16:
 *     v128.store(dst + k, i32x4.add(v128.load(dst + k), v128.load(src + r·rowBytes + k)))
 * ```
 *
 * `dst` is one row (the current of one step, in L1 like the kernel's block); `src` holds `rows`
 * rows back to back, so the working set `rows × rowBytes` chooses the cache level the rows
 * stream from. Every i32 lane is one add reading 4 bytes of row data.
 *
 * @module
 */

/** Unsigned LEB128. */
function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

/** Signed LEB128 of a small i32. */
function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    const done = (n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0);
    out.push(done ? b : b | 0x80);
    if (done) return out;
  }
}

/** A section: id, byte length, contents. */
function section(id: number, body: number[]): number[] {
  return [id, ...uleb(body.length), ...body];
}

/** A vector: count, then the items. */
function vec(items: number[][]): number[] {
  return [...uleb(items.length), ...items.flat()];
}

function name(s: string): number[] {
  const b = [...new TextEncoder().encode(s)];
  return [...uleb(b.length), ...b];
}

// Opcodes used below.
const OP = {
  block: 0x02,
  loop: 0x03,
  end: 0x0b,
  brIf: 0x0d,
  get: 0x20,
  set: 0x21,
  tee: 0x22,
  i32Const: 0x41,
  i32LtU: 0x49,
  i32Add: 0x6a,
  i32Mul: 0x6c,
  simd: 0xfd,
  void: 0x40,
  i32: 0x7f,
} as const;
const V128_LOAD = [OP.simd, ...uleb(0x00)];
const V128_STORE = [OP.simd, ...uleb(0x0b)];
const I32X4_ADD = [OP.simd, ...uleb(0xae)];

/** Pages (64 KiB) of the module's memory: 40 MiB. */
export const LIMIT_PAGES = 640;

/**
 * The bytes of the column-sum module: exports `memory` and
 * `colsum(dst, src, rowBytes, rows, reps)` (rowBytes a multiple of 64, rows and reps ≥ 1).
 */
export function columnSumModule(): Uint8Array<ArrayBuffer> {
  // Parameters 0..4: dst, src, rowBytes, rows, reps. Locals 5..9: rep, r, k, d, s.
  const [DST, SRC, ROWB, ROWS, REPS, REP, R, K, D, S] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
  const get = (i: number) => [OP.get, i];
  const set = (i: number) => [OP.set, i];
  const c = (n: number) => [OP.i32Const, ...sleb(n)];
  // One vector: [d + o] = [d + o] + [s + o] (memarg: align 2^4, offset o).
  const lane = (o: number) => [
    ...get(D),
    ...get(D),
    ...V128_LOAD,
    4,
    ...uleb(o),
    ...get(S),
    ...V128_LOAD,
    4,
    ...uleb(o),
    ...I32X4_ADD,
    ...V128_STORE,
    4,
    ...uleb(o),
  ];
  // i += step; br_if depth (i < limit)
  const next = (i: number, step: number[], limit: number) => [
    ...get(i),
    ...step,
    OP.i32Add,
    OP.tee,
    i,
    ...get(limit),
    OP.i32LtU,
    OP.brIf,
    0,
  ];
  const code = [
    ...c(0),
    ...set(REP),
    OP.loop,
    OP.void, // reps
    ...c(0),
    ...set(R),
    OP.loop,
    OP.void, // rows
    ...get(SRC),
    ...get(R),
    ...get(ROWB),
    OP.i32Mul,
    OP.i32Add,
    ...set(S),
    ...get(DST),
    ...set(D),
    ...c(0),
    ...set(K),
    OP.loop,
    OP.void, // 64 bytes per turn
    ...lane(0),
    ...lane(16),
    ...lane(32),
    ...lane(48),
    ...get(D),
    ...c(64),
    OP.i32Add,
    ...set(D),
    ...get(S),
    ...c(64),
    OP.i32Add,
    ...set(S),
    ...next(K, c(64), ROWB),
    OP.end,
    ...next(R, c(1), ROWS),
    OP.end,
    ...next(REP, c(1), REPS),
    OP.end,
    OP.end,
  ];
  const body = [...vec([[...uleb(5), OP.i32]]), ...code];
  const bytes = [
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
    ...section(1, vec([[0x60, ...vec(Array(5).fill([OP.i32])), ...vec([])]])),
    ...section(3, vec([uleb(0)])),
    ...section(5, vec([[0x00, ...uleb(LIMIT_PAGES)]])),
    ...section(7, vec([[...name("colsum"), 0x00, 0], [...name("memory"), 0x02, 0]])),
    ...section(10, vec([[...uleb(body.length), ...body]])),
  ];
  return new Uint8Array(bytes);
}

/** One measurement of the column-sum loop. */
export interface LimitResult {
  /** Working set of the rows, bytes. */
  workingSetBytes: number;
  /** i32 adds per second (median of the repetitions). */
  addsPerSecond: number;
  /** Row bytes read per second (4 per add). */
  bytesPerSecond: number;
}

/** The column-sum function, ready to call. */
export interface ColumnSum {
  /** Runs `reps` passes over `rows` rows of `rowBytes` bytes. */
  colsum(dst: number, src: number, rowBytes: number, rows: number, reps: number): void;
  /** Its memory. */
  memory: WebAssembly.Memory;
}

/** Instantiates the column-sum module. */
export async function columnSum(): Promise<ColumnSum> {
  const module = await WebAssembly.compile(columnSumModule());
  const instance = await WebAssembly.instantiate(module);
  return instance.exports as unknown as ColumnSum;
}

/**
 * Times the column sum over `workingSetBytes` of rows of `rowBytes` bytes (1 KiB: one
 * 256-neuron block of the kernel), `repeats` times for about `ms` milliseconds each; median.
 */
export function measureColumnSum(
  cs: ColumnSum,
  workingSetBytes: number,
  opts: { rowBytes?: number; ms?: number; repeats?: number } = {},
): LimitResult {
  const rowBytes = opts.rowBytes ?? 1024;
  const ms = opts.ms ?? 150;
  const repeats = opts.repeats ?? 5;
  const rows = Math.max(1, Math.floor(workingSetBytes / rowBytes));
  const dst = 64, src = 4096;
  if (src + rows * rowBytes > cs.memory.buffer.byteLength) {
    throw new RangeError(`Cannot measure column sum: ${rows} rows exceed the module's memory`);
  }
  const mem = new Int32Array(cs.memory.buffer);
  for (let k = src >> 2; k < (src + rows * rowBytes) >> 2; k++) mem[k] = (k * 2654435761) | 0;
  // Calibrate passes per call to about 10 ms.
  let reps = 1;
  for (;;) {
    const t0 = performance.now();
    cs.colsum(dst, src, rowBytes, rows, reps);
    const dt = performance.now() - t0;
    if (dt > 10 || reps > 1 << 24) break;
    reps *= dt < 1 ? 8 : 2;
  }
  const rates: number[] = [];
  const addsPerCall = reps * rows * (rowBytes / 4);
  for (let r = 0; r < repeats; r++) {
    let adds = 0;
    const t0 = performance.now();
    let t = t0;
    while (t - t0 < ms) {
      cs.colsum(dst, src, rowBytes, rows, reps);
      adds += addsPerCall;
      t = performance.now();
    }
    rates.push(adds / ((t - t0) / 1000));
  }
  rates.sort((a, b) => a - b);
  const addsPerSecond = rates[rates.length >> 1];
  return { workingSetBytes: rows * rowBytes, addsPerSecond, bytesPerSecond: 4 * addsPerSecond };
}
