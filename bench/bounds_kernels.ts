/**
 * The bound micro-kernels of `bench/bounds.ts`: their AssemblyScript source, the TypeScript view
 * of their exports and of the memory layout, the units of work of the two-thread section, and the
 * Web Worker entry (this module is the workers' script; it imports nothing, so a worker starts
 * fast and `deno test` type-checks little).
 *
 * The AssemblyScript source is compiled at bench time by `npm:assemblyscript@0.28.20` (in a
 * child process, see `compileBoundsKernels` in bench/bounds.ts) with the flags of the `threads`
 * target in asconfig.json (optimize level 3, no assertions, stub runtime, SIMD and threads,
 * imported shared memory), so that the loops get the same compiler and the same code generation
 * as the kernels of desire.wasm. The kernels allocate nothing and own no memory: the host lays out all the data
 * and passes byte addresses. Each one is the memory pattern of a kernel of `assembly/` with as
 * little else as possible:
 *
 * - `listSum`: `forwardChunk32` of assembly/forward.ts without the membranes: 32 lanes at a time,
 *   the current in 8 v128 accumulators, per step t the 128-byte chunk of every row listed for t
 *   (entries are byte offsets of rows) added; the accumulators carry over from step to step (as
 *   the running sum R does) and are stored after each step (where the kernel runs its membrane
 *   step) and at the end of each chunk (so that a test can check every sum).
 * - `updateRows` / `updateRowsNoFwd`: the inner loop of `updateLayerSimd` of assembly/stdp.ts:
 *   for each listed row, on each listed 4-lane group, master += update, clamped to ±2^28
 *   (saturations counted), stored, and (with the forward copy) the rounded value stored into the
 *   second matrix. The update is one row (the kernel adds one or a few rows from L1).
 * - `gatherRows`: the read pattern of `backwardLayerSimd` (assembly/desire.ts): for each listed
 *   row, Σ over the listed groups of row · factors (i32x4.mul and add), one sum per row.
 * - `stream`: v128 += k over a contiguous range (a read-modify-write stream, 64 bytes a turn),
 *   used to touch the other layers' matrices between measurements, and as a bandwidth figure.
 * - `alu`: 4 independent i32x4 xorshift chains, no memory: the pure register/ALU loop.
 *
 * The units of work run the kernels on one slot's matrices ("two independent copies" when two
 * workers run them), or, as {@link sharedPhaseRunner} and the "sharedSkeleton" unit, as one of
 * the threads of a training step on ONE network in the former layout (full-width rows shared by
 * both threads, kept for comparison): the kernels unchanged, each part given its share of the
 * chunks, groups or rows (the host passes offset pointers and counts), and the parts kept in
 * lockstep by {@link barrier} between the phases, where assembly/threads.ts has its barriers
 * ({@link SHARED_STEP}). {@link panelPhaseRunner} and the "panelSkeleton" unit are the same team
 * in the current layout (panels, as assembly/threads.ts runs a step): each part's lanes of a
 * layer stored as a row-major sub-matrix of their own ({@link PanelLayer}, filled from slot 0's
 * matrices by {@link fillPanels}), so that the two parts' forward and update work share no cache
 * line; the gather becomes partial sums over each panel's groups, a barrier, and a small pass
 * that adds them ({@link PANEL_STEP}; threads.ts instead gives each thread its half of the rows
 * across all panels, without that barrier).
 *
 * @module
 */

/** The AssemblyScript source (one file). */
export const BOUNDS_KERNELS_SOURCE: string = `
// Bound micro-kernels (see bench/bounds_kernels.ts). Addresses are byte addresses.

/** The clamp of the master weights (WMAX of assembly/layout.ts). */
const WMAX: i32 = 1 << 28;

/**
 * Register-blocked list sum. chunks × 32 lanes from base (chunk c at base + 128c); per step
 * t < T the entries [beg[t], beg[t + 1]) of ent (u32 byte offsets of rows from base) are added;
 * after step t the 8 accumulators go to out + 128t, after each chunk to res + 128c. reps passes.
 */
export function listSum(
  base: usize, beg: usize, ent: usize, T: i32, chunks: i32, out: usize, res: usize, reps: i32,
): void {
  for (let r = 0; r < reps; r++) {
    for (let c = 0; c < chunks; c++) {
      const b = base + (<usize>c << 7);
      let a0 = i32x4.splat(0), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
      for (let t = 0; t < T; t++) {
        const bt = beg + (<usize>t << 2);
        let q = load<u32>(bt);
        const e = load<u32>(bt, 4);
        for (; q < e; q++) {
          const p = b + <usize>load<u32>(ent + (<usize>q << 2));
          a0 = i32x4.add(a0, v128.load(p));
          a1 = i32x4.add(a1, v128.load(p, 16));
          a2 = i32x4.add(a2, v128.load(p, 32));
          a3 = i32x4.add(a3, v128.load(p, 48));
          a4 = i32x4.add(a4, v128.load(p, 64));
          a5 = i32x4.add(a5, v128.load(p, 80));
          a6 = i32x4.add(a6, v128.load(p, 96));
          a7 = i32x4.add(a7, v128.load(p, 112));
        }
        const o = out + (<usize>t << 7);
        v128.store(o, a0);
        v128.store(o, a1, 16);
        v128.store(o, a2, 32);
        v128.store(o, a3, 48);
        v128.store(o, a4, 64);
        v128.store(o, a5, 80);
        v128.store(o, a6, 96);
        v128.store(o, a7, 112);
      }
      const o = res + (<usize>c << 7);
      v128.store(o, a0);
      v128.store(o, a1, 16);
      v128.store(o, a2, 32);
      v128.store(o, a3, 48);
      v128.store(o, a4, 64);
      v128.store(o, a5, 80);
      v128.store(o, a6, 96);
      v128.store(o, a7, 112);
    }
  }
}

// @ts-ignore: decorator
@inline function updateImpl(
  master: usize, fwd: usize, rows: usize, R: i32, groups: usize, ng: i32, upd: usize, fsh: i32,
  withFwd: bool,
): i32 {
  const vmax = i32x4.splat(WMAX), vmin = i32x4.splat(-WMAX);
  const vhalf = i32x4.splat(1 << (fsh - 1));
  let sat: i32 = 0;
  for (let a = 0; a < R; a++) {
    const off = <usize>load<u32>(rows + (<usize>a << 2));
    const rm = master + off, rf = fwd + off;
    for (let g = 0; g < ng; g++) {
      const o = <usize>load<u32>(groups + (<usize>g << 2));
      const w = i32x4.add(v128.load(rm + o), v128.load(upd + o));
      const c = i32x4.max_s(i32x4.min_s(w, vmax), vmin);
      if (v128.any_true(v128.xor(c, w))) sat += <i32>popcnt(i32x4.bitmask(i32x4.ne(c, w)));
      v128.store(rm + o, c);
      if (withFwd) v128.store(rf + o, i32x4.shr_s(i32x4.add(c, vhalf), fsh));
    }
  }
  return sat;
}

/**
 * For each of the R rows (u32 byte offsets at rows, from master and from fwd), on each of the
 * ng groups (u32 byte offsets within a row at groups): master = clamp(master + upd),
 * fwd = (master + 2^(fsh − 1)) >> fsh. Returns the number of clamped lanes.
 */
export function updateRows(
  master: usize, fwd: usize, rows: usize, R: i32, groups: usize, ng: i32, upd: usize, fsh: i32,
): i32 {
  return updateImpl(master, fwd, rows, R, groups, ng, upd, fsh, true);
}

/** updateRows without the forward copy (fwd is not written). */
export function updateRowsNoFwd(
  master: usize, fwd: usize, rows: usize, R: i32, groups: usize, ng: i32, upd: usize, fsh: i32,
): i32 {
  return updateImpl(master, fwd, rows, R, groups, ng, upd, fsh, false);
}

/**
 * The read pattern of backwardLayerSimd (assembly/desire.ts): for each of the R rows (u32 byte
 * offsets from mat at rows), Σ over the ng groups of row · kvec (i32x4.mul + add, wrapping); the
 * row's sum of the 4 lanes goes to out + 4a.
 */
export function gatherRows(
  mat: usize, rows: usize, R: i32, groups: usize, ng: i32, kvec: usize, out: usize,
): void {
  for (let a = 0; a < R; a++) {
    const row = mat + <usize>load<u32>(rows + (<usize>a << 2));
    let acc = i32x4.splat(0);
    for (let g = 0; g < ng; g++) {
      const o = <usize>load<u32>(groups + (<usize>g << 2));
      acc = i32x4.add(acc, i32x4.mul(v128.load(row + o), v128.load(kvec + o)));
    }
    store<i32>(out + (<usize>a << 2), i32x4.extract_lane(acc, 0) + i32x4.extract_lane(acc, 1) +
      i32x4.extract_lane(acc, 2) + i32x4.extract_lane(acc, 3));
  }
}

/** i32 lanes of [p, p + bytes) += k (bytes a multiple of 64). */
export function stream(p: usize, bytes: usize, k: i32): void {
  const v = i32x4.splat(k);
  const e = p + bytes;
  for (; p < e; p += 64) {
    v128.store(p, i32x4.add(v128.load(p), v));
    v128.store(p, i32x4.add(v128.load(p, 16), v), 16);
    v128.store(p, i32x4.add(v128.load(p, 32), v), 32);
    v128.store(p, i32x4.add(v128.load(p, 48), v), 48);
  }
}

// @ts-ignore: decorator
@inline function xorshift(x: v128): v128 {
  x = v128.xor(x, i32x4.shl(x, 13));
  x = v128.xor(x, i32x4.shr_u(x, 17));
  return v128.xor(x, i32x4.shl(x, 5));
}

/**
 * n rounds of xorshift32 on 16 lanes (4 independent i32x4 chains) starting at seed + k for lane
 * k; returns the xor of the 16 results.
 */
export function alu(n: i32, seed: i32): i32 {
  const s = i32x4.splat(seed);
  let x0 = i32x4.add(s, i32x4(0, 1, 2, 3)), x1 = i32x4.add(s, i32x4(4, 5, 6, 7));
  let x2 = i32x4.add(s, i32x4(8, 9, 10, 11)), x3 = i32x4.add(s, i32x4(12, 13, 14, 15));
  for (let i = 0; i < n; i++) {
    x0 = xorshift(x0);
    x1 = xorshift(x1);
    x2 = xorshift(x2);
    x3 = xorshift(x3);
  }
  const x = v128.xor(v128.xor(x0, x1), v128.xor(x2, x3));
  return i32x4.extract_lane(x, 0) ^ i32x4.extract_lane(x, 1) ^ i32x4.extract_lane(x, 2) ^
    i32x4.extract_lane(x, 3);
}
`;

// ------------------------------------------------------------------ kernel interface, plan

/** The exports of the compiled kernels (see BOUNDS_KERNELS_SOURCE). */
export interface BoundsKernels {
  /** Register-blocked list sums of `chunks` 32-lane chunks over T step lists (see the source). */
  listSum(
    base: number,
    beg: number,
    ent: number,
    T: number,
    chunks: number,
    out: number,
    res: number,
    reps: number,
  ): void;
  /** The update pattern with the forward copy; returns the clamped lanes. */
  updateRows(
    master: number,
    fwd: number,
    rows: number,
    R: number,
    groups: number,
    ng: number,
    upd: number,
    fsh: number,
  ): number;
  /** The update pattern without the forward copy; returns the clamped lanes. */
  updateRowsNoFwd(
    master: number,
    fwd: number,
    rows: number,
    R: number,
    groups: number,
    ng: number,
    upd: number,
    fsh: number,
  ): number;
  /** The backward gather: per listed row, Σ over the listed groups of row · kvec. */
  gatherRows(
    mat: number,
    rows: number,
    R: number,
    groups: number,
    ng: number,
    kvec: number,
    out: number,
  ): void;
  /** i32 lanes of [p, p + bytes) += k, 64 bytes a turn. */
  stream(p: number, bytes: number, k: number): void;
  /** n xorshift32 rounds on 16 lanes from seed + lane; the xor of the results. */
  alu(n: number, seed: number): number;
}

/** Instantiates the bound kernels over a shared memory. */
export async function instantiateBoundsKernels(
  module: WebAssembly.Module,
  memory: WebAssembly.Memory,
): Promise<BoundsKernels> {
  const instance = await WebAssembly.instantiate(module, { env: { memory } });
  return instance.exports as unknown as BoundsKernels;
}

/** A list set: T + 1 u32 bounds at beg, then u32 byte offsets of rows at ent. */
export interface ListSet {
  beg: number;
  ent: number;
  entries: number;
}

/** A row set (u32 byte offsets) and a group set (u32 byte offsets in a row) of an update. */
export interface UpdSet {
  rows: number;
  nRows: number;
  groups: number;
  nGroups: number;
  lines: number;
}

export interface LayerPlan {
  nIn: number;
  P: number;
  rowBytes: number;
  lists: ListSet[];
  upd: UpdSet[];
  /** Row and group sets of the backward gather (layer 2 only; empty for layer 1). */
  bwd: UpdSet[];
  /** One update row (P lanes). */
  updRow: number;
  /** The backward factors (P lanes). */
  kvec: number;
}

export interface SlotPlan {
  /** Per layer: master matrix, its forward copy right after it. */
  master: [number, number];
  fwd: [number, number];
  pairBytes: [number, number];
  hot: number;
  out: number;
  res: number;
  /** Per-row sums of gatherRows. */
  sums: number;
}

/**
 * One part's panel of a layer (the "panelSkeleton" variant, the current layout): the lanes [lane0, lane0 + lanes) of
 * every row of slot 0's matrices, stored as a row-major sub-matrix of their own (row stride
 * rowBytes = 4 · lanes), with the layer's sets rewritten for it: the same rows and steps as panel
 * row offsets, and of the groups only those in its lanes, as offsets within a panel row. The
 * panels split a layer at the forward pass's chunk split ({@link panelLanes}).
 */
export interface PanelLayer {
  /** First lane in the full-width layer (32 × its first chunk). */
  lane0: number;
  /** Lanes (32 × its chunks; 0 when it has none). */
  lanes: number;
  /** Bytes of a panel row (4 × lanes). */
  rowBytes: number;
  /** The panel's master matrix and its forward copy (right after it). */
  master: number;
  fwd: number;
  /** The layer's forward lists (beg shared with the layer's; ent: panel row offsets). */
  lists: ListSet[];
  /** The layer's update sets: the same rows (panel row offsets), the groups in the panel. */
  upd: UpdSet[];
  /** The gather's sets (layer 2 only): every listed row, the groups in the panel. */
  bwd: UpdSet[];
}

/** The memory region of one part of the panel variant: its panels of both layers, its outputs. */
export interface PanelPlan {
  layers: [PanelLayer, PanelLayer];
  /** Per-chunk sums of its forward passes (its chunks from 0). */
  res: number;
  /** Its partial sums of the gather, one per listed row. */
  sums: number;
}

/** The memory layout (plain data, posted to the workers). */
export interface Plan {
  T: number;
  fsh: number;
  layers: [LayerPlan, LayerPlan];
  hotList: ListSet;
  hotChunks: number;
  slots: SlotPlan[];
  /** The panel variant's parts (2 with the thread section, else none). */
  panels: PanelPlan[];
  bytes: number;
}

/** Shift of the forward copy used by the benchmarks: fwd = (master + 2^(FSH−1)) >> FSH. */
export const FSH = 12;

// ------------------------------------------------------------------------------- work units

/**
 * The memory patterns of one training sample's big kernels, on set i of a layer: "f1", "f2" the
 * list sums of the forward pass, "b2" the backward gather of layer 2 (rows of the inputs that
 * fired and were kept, groups with a non-zero factor, read from the forward matrix), "u1", "u2"
 * the updates with the forward copy, "u1n", "u2n" without it.
 */
export type Phase = "f1" | "f2" | "b2" | "u1" | "u2" | "u1n" | "u2n";

/** Runs phase `ph` on set i (mod the pool) of slot `slot`. */
export function phaseRunner(
  k: BoundsKernels,
  plan: Plan,
  slot: number,
): (ph: Phase, i: number) => void {
  const sp = plan.slots[slot];
  const [L1, L2] = plan.layers;
  const fwd = (l: 0 | 1, L: LayerPlan, i: number) => {
    const s = L.lists[i % L.lists.length];
    k.listSum(sp.fwd[l], s.beg, s.ent, plan.T, L.P / 32, sp.out, sp.res, 1);
  };
  const upd = (l: 0 | 1, L: LayerPlan, i: number, withFwd: boolean) => {
    const s = L.upd[i % L.upd.length];
    (withFwd ? k.updateRows : k.updateRowsNoFwd)(
      sp.master[l],
      sp.fwd[l],
      s.rows,
      s.nRows,
      s.groups,
      s.nGroups,
      L.updRow,
      plan.fsh,
    );
  };
  return (ph, i) => {
    switch (ph) {
      case "f1":
        return fwd(0, L1, i);
      case "f2":
        return fwd(1, L2, i);
      case "b2": {
        const s = L2.bwd[i % L2.bwd.length];
        return k.gatherRows(sp.fwd[1], s.rows, s.nRows, s.groups, s.nGroups, L2.kvec, sp.sums);
      }
      case "u1":
        return upd(0, L1, i, true);
      case "u2":
        return upd(1, L2, i, true);
      case "u1n":
        return upd(0, L1, i, false);
      case "u2n":
        return upd(1, L2, i, false);
    }
  };
}

/**
 * Thousands of short calls of every kernel on slot `slot`, so that V8 tiers them all up to its
 * optimizing compiler before anything is timed: it counts calls, and a few long calls can run
 * the baseline code for a second and more (measured here: 2× slower list sums).
 */
export function warmUpKernels(k: BoundsKernels, plan: Plan, slot: number): void {
  const sp = plan.slots[slot], L = plan.layers[0], s = L.upd[0], h = plan.hotList;
  for (let i = 0; i < 5000; i++) {
    k.listSum(sp.hot, h.beg, h.ent, 1, 1, sp.out, sp.res, 1);
    k.updateRows(sp.master[0], sp.fwd[0], s.rows, 1, s.groups, 1, L.updRow, plan.fsh);
    k.updateRowsNoFwd(sp.master[0], sp.fwd[0], s.rows, 1, s.groups, 1, L.updRow, plan.fsh);
    k.gatherRows(sp.fwd[0], s.rows, 1, s.groups, 1, L.kvec, sp.sums);
    k.stream(sp.hot, 64, 0);
    k.alu(4, i);
  }
}

/** The phases of one sample in the order of sampleStep (assembly/threads.ts). */
export const TRAINING_ORDER: readonly Phase[] = ["f1", "f2", "b2", "u1", "u2"];

// ------------------------------------------------------------------ one shared network

/** First item of part `part` of `parts` of n items (itemStart of assembly/layout.ts). */
export function itemStart(n: number, part: number, parts: number): number {
  return Math.floor((n * part) / parts);
}

/**
 * First lane of part `part` of `parts` of P lanes, a multiple of 4 (laneStart of assembly/layout.ts
 * and of src/wasm.ts; a copy, since this module is the workers' script and imports nothing).
 */
export function laneStart(P: number, part: number, parts: number): number {
  return Math.floor(((P >> 2) * part) / parts) << 2;
}

/**
 * The share [lo, hi) of the `n` ascending u32 values at byte address `at` that lie in
 * [from, to). Throws when the values do not ascend (the split needs them sorted).
 */
function share(u: Uint32Array, at: number, n: number, from: number, to: number): [number, number] {
  let lo = n, hi = n;
  for (let a = 0; a < n; a++) {
    const v = u[(at >> 2) + a];
    if (a > 0 && v < u[(at >> 2) + a - 1]) throw new Error("the listed offsets must ascend");
    if (lo === n && v >= from) lo = a;
    if (hi === n && v >= to) hi = a;
  }
  return [Math.min(lo, hi), hi];
}

/**
 * Part `part` of `parts` of phase `ph` on set i (mod the pool), on slot 0's matrices (the one
 * shared network), split as assembly/threads.ts splits a training step:
 *
 * - "f1", "f2" (forwardLayerSimd): the 32-lane chunks, part p taking chunks [itemStart(chunks,
 *   p), itemStart(chunks, p + 1)) (the real step hands them out one at a time from a shared
 *   counter; a static split of equal halves is its even case), its sums into its chunks of slot
 *   0's `res`, its per-step sums into the `out` of slot `scratch` (a thread's own scratch);
 * - "u1", "u2", "u1n", "u2n" (updateLayerSimd): the lanes [laneStart(P, p), laneStart(P, p + 1)):
 *   every listed row, on the listed 4-lane groups within those lanes;
 * - "b2" (backwardLayerSimd): the rows (inputs) [itemStart(nIn, p), itemStart(nIn, p + 1)) of
 *   the listed rows, their sums at their places in slot 0's `sums`.
 *
 * With parts = 1 it is the whole phase (phaseRunner on slot 0, with the scratch of slot
 * `scratch`). Returns the clamped lanes of an update, else 0. `buf` is the shared memory (the
 * split points are read from the listed offsets, once).
 */
export function sharedPhaseRunner(
  k: BoundsKernels,
  plan: Plan,
  buf: ArrayBufferLike,
  part: number,
  parts: number,
  scratch: number,
): (ph: Phase, i: number) => number {
  if (
    !Number.isInteger(parts) || parts < 1 || !Number.isInteger(part) || part < 0 || part >= parts
  ) {
    throw new RangeError("part must be an integer in [0, parts), parts an integer ≥ 1");
  }
  const u = new Uint32Array(buf);
  const sp = plan.slots[0], own = plan.slots[scratch];
  const split = plan.layers.map((L) => {
    const chunks = L.P / 32;
    const c0 = itemStart(chunks, part, parts), c1 = itemStart(chunks, part + 1, parts);
    const g0 = 4 * laneStart(L.P, part, parts), g1 = 4 * laneStart(L.P, part + 1, parts);
    const r0 = L.rowBytes * itemStart(L.nIn, part, parts);
    const r1 = L.rowBytes * itemStart(L.nIn, part + 1, parts);
    return {
      c0,
      n: c1 - c0,
      groups: L.upd.map((s) => share(u, s.groups, s.nGroups, g0, g1)),
      rows: L.bwd.map((s) => share(u, s.rows, s.nRows, r0, r1)),
    };
  });
  const fwd = (l: 0 | 1, i: number) => {
    const L = plan.layers[l], s = L.lists[i % L.lists.length], c0 = split[l].c0;
    k.listSum(
      sp.fwd[l] + 128 * c0,
      s.beg,
      s.ent,
      plan.T,
      split[l].n,
      own.out,
      sp.res + 128 * c0,
      1,
    );
    return 0;
  };
  const upd = (l: 0 | 1, i: number, withFwd: boolean) => {
    const L = plan.layers[l], j = i % L.upd.length, s = L.upd[j];
    const [a, b] = split[l].groups[j];
    return (withFwd ? k.updateRows : k.updateRowsNoFwd)(
      sp.master[l],
      sp.fwd[l],
      s.rows,
      s.nRows,
      s.groups + 4 * a,
      b - a,
      L.updRow,
      plan.fsh,
    );
  };
  return (ph, i) => {
    switch (ph) {
      case "f1":
        return fwd(0, i);
      case "f2":
        return fwd(1, i);
      case "b2": {
        const L = plan.layers[1], j = i % L.bwd.length, s = L.bwd[j];
        const [a, b] = split[1].rows[j];
        k.gatherRows(
          sp.fwd[1],
          s.rows + 4 * a,
          b - a,
          s.groups,
          s.nGroups,
          L.kvec,
          sp.sums + 4 * a,
        );
        return 0;
      }
      case "u1":
        return upd(0, i, true);
      case "u2":
        return upd(1, i, true);
      case "u1n":
        return upd(0, i, false);
      case "u2n":
        return upd(1, i, false);
    }
  };
}

/**
 * One training step of one network on the threads of assembly/threads.ts (784-1600-800-10,
 * L = 3), as its phases and barriers ("|"): the step's start (thread 0 has encoded the input
 * and bumped the go word), the forward passes of layers 1 and 2, the output layer (thread 0
 * alone: nothing here), the backward gather of layer 2, the updates of layers 1 and 2; seven
 * barriers a sample.
 */
export const SHARED_STEP: readonly (Phase | "|")[] = [
  "|",
  "f1",
  "|",
  "f2",
  "|",
  "|",
  "b2",
  "|",
  "u1",
  "|",
  "u2",
  "|",
];

/**
 * First lane of panel `part` of `parts` of a P-lane layer: 32 × the first of its 32-lane chunks
 * as the forward pass splits them (itemStart), so that a part's forward chunks and its update
 * lanes are the same lanes, in its panel. With an even number of chunks the same as laneStart;
 * layer 2's 25 chunks of MNIST split 384 | 416 lanes (laneStart: 400 | 400).
 */
export function panelLanes(P: number, part: number, parts: number): number {
  return 32 * itemStart(P / 32, part, parts);
}

/** The phases of the panel variant: those of a sample, and "b2sum", the adding of the partials. */
export type PanelPhase = Phase | "b2sum";

/**
 * Part `part` of `parts` of phase `ph` on set i (mod the pool), on the panel layout of the one
 * network ({@link PanelPlan}: part p works on plan.panels[p] only; parts must be the number of
 * panels, or 1). Same samples, same halves of the work as {@link sharedPhaseRunner}, but:
 *
 * - "f1", "f2": the part's chunks are its panel's, its sums into its panel's `res`, its per-step
 *   sums into the `out` of slot `scratch`;
 * - "u1", "u2", "u1n", "u2n": every listed row, on the listed groups of its panel;
 * - "b2": every listed row, on the listed groups of its panel: partial sums into its panel's
 *   `sums` (a barrier must follow before "b2sum");
 * - "b2sum": for its half of the listed rows (the rows sharedPhaseRunner's part gathers), the
 *   panels' partial sums added into slot 0's `sums` (a JS loop over a few hundred words).
 *
 * With parts = 1 it is the whole phase on slot 0's full-width matrices (sharedPhaseRunner with
 * one part; "b2sum" does nothing): the 1-worker baseline. Returns the clamped lanes of an update,
 * else 0.
 */
export function panelPhaseRunner(
  k: BoundsKernels,
  plan: Plan,
  buf: ArrayBufferLike,
  part: number,
  parts: number,
  scratch: number,
): (ph: PanelPhase, i: number) => number {
  if (parts === 1) {
    const whole = sharedPhaseRunner(k, plan, buf, part, parts, scratch);
    return (ph, i) => (ph === "b2sum" ? 0 : whole(ph, i));
  }
  if (
    parts !== plan.panels.length || !Number.isInteger(part) || part < 0 || part >= parts
  ) {
    throw new RangeError(
      `part must be an integer in [0, parts), parts 1 or the plan's ${plan.panels.length} panels`,
    );
  }
  const mem = new Int32Array(buf), u = new Uint32Array(buf);
  const sp = plan.slots[0], own = plan.slots[scratch], pp = plan.panels[part];
  const L2 = plan.layers[1];
  const r0 = L2.rowBytes * itemStart(L2.nIn, part, parts);
  const r1 = L2.rowBytes * itemStart(L2.nIn, part + 1, parts);
  const mine = L2.bwd.map((s) => share(u, s.rows, s.nRows, r0, r1));
  const partials = plan.panels.map((q) => q.sums >> 2);
  const fwd = (l: 0 | 1, i: number) => {
    const Q = pp.layers[l], s = Q.lists[i % Q.lists.length];
    k.listSum(Q.fwd, s.beg, s.ent, plan.T, Q.lanes / 32, own.out, pp.res, 1);
    return 0;
  };
  const upd = (l: 0 | 1, i: number, withFwd: boolean) => {
    const Q = pp.layers[l], s = Q.upd[i % Q.upd.length];
    return (withFwd ? k.updateRows : k.updateRowsNoFwd)(
      Q.master,
      Q.fwd,
      s.rows,
      s.nRows,
      s.groups,
      s.nGroups,
      plan.layers[l].updRow + 4 * Q.lane0,
      plan.fsh,
    );
  };
  return (ph, i) => {
    switch (ph) {
      case "f1":
        return fwd(0, i);
      case "f2":
        return fwd(1, i);
      case "b2": {
        const Q = pp.layers[1], s = Q.bwd[i % Q.bwd.length];
        k.gatherRows(Q.fwd, s.rows, s.nRows, s.groups, s.nGroups, L2.kvec + 4 * Q.lane0, pp.sums);
        return 0;
      }
      case "b2sum": {
        const [a, b] = mine[i % mine.length], at = sp.sums >> 2;
        for (let r = a; r < b; r++) {
          let v = 0;
          for (const q of partials) v = (v + mem[q + r]) | 0;
          mem[at + r] = v;
        }
        return 0;
      }
      case "u1":
        return upd(0, i, true);
      case "u2":
        return upd(1, i, true);
      case "u1n":
        return upd(0, i, false);
      case "u2n":
        return upd(1, i, false);
    }
  };
}

/**
 * Copies slot 0's matrices (master and forward copy of both layers) into the panels, each row's
 * lanes of a panel to that panel's row.
 */
export function fillPanels(buf: ArrayBufferLike, plan: Plan): void {
  const m = new Int32Array(buf), sp = plan.slots[0];
  for (const pp of plan.panels) {
    pp.layers.forEach((Q, l) => {
      const L = plan.layers[l];
      for (const [from, to] of [[sp.master[l], Q.master], [sp.fwd[l], Q.fwd]]) {
        for (let r = 0; r < L.nIn; r++) {
          const a = (from + r * L.rowBytes + 4 * Q.lane0) >> 2;
          m.copyWithin((to + r * Q.rowBytes) >> 2, a, a + Q.lanes);
        }
      }
    });
  }
}

/**
 * Layer l of the panels mapped back to full-width lanes: the master matrix, then the forward
 * copy (nIn × P lanes each, as slot 0 lays out its pair: compare with its pairBytes[l] bytes).
 */
export function panelImage(buf: ArrayBufferLike, plan: Plan, l: 0 | 1): Int32Array {
  const m = new Int32Array(buf), L = plan.layers[l], n = L.nIn * L.P;
  const out = new Int32Array(2 * n);
  for (const pp of plan.panels) {
    const Q = pp.layers[l];
    [Q.master, Q.fwd].forEach((base, j) => {
      for (let r = 0; r < L.nIn; r++) {
        const a = (base + r * Q.rowBytes) >> 2;
        out.set(m.subarray(a, a + Q.lanes), j * n + r * L.P + Q.lane0);
      }
    });
  }
  return out;
}

/**
 * One training step of the panel variant: {@link SHARED_STEP} with the gather as partial sums, a
 * barrier, and the adding of the partials ("b2sum") before the barrier that ends the backward
 * phase; eight barriers a sample.
 */
export const PANEL_STEP: readonly (PanelPhase | "|")[] = [
  "|",
  "f1",
  "|",
  "f2",
  "|",
  "|",
  "b2",
  "|",
  "b2sum",
  "|",
  "u1",
  "|",
  "u2",
  "|",
];

/**
 * Polls of {@link barrier} before it sleeps (SPINS of assembly/threads.ts). A poll of JS's
 * Atomics.load is slower than the module's atomic load: 2000 polls took about 28 µs on the
 * 2-core machine (the module's: about 10 µs); 200, 700 and 2000 polls gave alike speedups.
 */
export const BARRIER_SPINS = 2000;

/**
 * Waits until all `parts` workers have arrived (the barrier of assembly/threads.ts on the
 * CTL_BAR_* words of `ctl`): the last to arrive resets the count, bumps the generation and
 * wakes the others; the others poll the generation BARRIER_SPINS times, then sleep on it.
 */
export function barrier(ctl: Int32Array, parts: number): void {
  if (parts <= 1) return;
  const gen = Atomics.load(ctl, CTL_BAR_GEN);
  if (Atomics.add(ctl, CTL_BAR_COUNT, 1) === parts - 1) {
    Atomics.store(ctl, CTL_BAR_COUNT, 0);
    Atomics.add(ctl, CTL_BAR_GEN, 1);
    Atomics.notify(ctl, CTL_BAR_GEN);
  } else {
    let spins = 0;
    while (Atomics.load(ctl, CTL_BAR_GEN) === gen) {
      if (++spins > BARRIER_SPINS) Atomics.wait(ctl, CTL_BAR_GEN, gen);
    }
  }
}

/**
 * The patterns of the two-thread section; "sharedSkeleton" and "panelSkeleton" are the training
 * order on one network (a team of workers, see {@link Team}; full-width rows shared by the
 * parts, the former layout, or a panel per part, the current one), the others run on the worker's
 * own slot.
 */
export type ScaleKind =
  | "alu"
  | "listL1"
  | "update"
  | "inferSkeleton"
  | "skeleton"
  | "sharedSkeleton"
  | "panelSkeleton"
  | "stream";

/** Whether the workers of `kind` run as one team on one network. */
export function isTeamKind(kind: ScaleKind): boolean {
  return kind === "sharedSkeleton" || kind === "panelSkeleton";
}

/** A worker's place in a team that runs one network ("sharedSkeleton", "panelSkeleton"). */
export interface Team {
  /** The control words (CTL_*). */
  ctl: Int32Array;
  /** The shared memory. */
  buf: ArrayBufferLike;
  /** This worker's part. */
  part: number;
  /** Workers of the team (1: one worker does the whole step, without barriers). */
  parts: number;
}

/** A repeatable unit of work of one kind on one slot, and its size in the kind's unit. */
export interface Unit {
  run(): void;
  work: number;
  /**
   * A team's unit: whether the team agreed to stop after the call that just ended (every
   * member gets the same answer, so none is left waiting at a barrier). Absent: the worker
   * reads the stop word itself.
   */
  halted?(): boolean;
}

/**
 * A unit of `kind` on slot `slot`; `param`: alu rounds or list-sum passes per call. "update",
 * "inferSkeleton" and "skeleton" are one sample each (updates 1, 2; forward 1, 2; the whole
 * TRAINING_ORDER), on consecutive sets. "sharedSkeleton" (needs `team`) is this worker's part
 * of one step of {@link SHARED_STEP} on slot 0's matrices, with slot `slot` as its scratch; every
 * member starts at set 0 and counts 1 / parts of a sample per call, so the team's sum is its
 * samples per second. "panelSkeleton" is the same on the panels ({@link panelPhaseRunner},
 * {@link PANEL_STEP}); with one part, both are the whole step on slot 0's full-width matrices.
 */
export function makeUnit(
  k: BoundsKernels,
  plan: Plan,
  slot: number,
  kind: ScaleKind,
  param: number,
  team?: Team,
): Unit {
  const sp = plan.slots[slot];
  let turn = slot * 7;
  switch (kind) {
    case "sharedSkeleton":
    case "panelSkeleton": {
      if (!team) throw new RangeError(`${kind} needs a team`);
      const { ctl, parts } = team;
      const panels = kind === "panelSkeleton";
      // SHARED_STEP has no "b2sum", so the shared runner never sees one.
      const run = panels
        ? panelPhaseRunner(k, plan, team.buf, team.part, parts, slot)
        : sharedPhaseRunner(k, plan, team.buf, team.part, parts, slot) as (
          ph: PanelPhase,
          i: number,
        ) => number;
      const step = panels ? PANEL_STEP : SHARED_STEP;
      const last = step.length - 1;
      let i = 0;
      return {
        run: () => {
          for (let s = 0; s < last; s++) {
            const ph = step[s];
            if (ph === "|") barrier(ctl, parts);
            else run(ph, i);
          }
          // Part 0 decides for the team before the step's last barrier; the others read the
          // decision after it (part 0 writes the next one only after the next step's barriers).
          if (team.part === 0) Atomics.store(ctl, CTL_HALT, Atomics.load(ctl, CTL_STOP));
          barrier(ctl, parts);
          i++;
        },
        work: 1 / parts,
        halted: () => Atomics.load(ctl, CTL_HALT) !== 0,
      };
    }
    case "alu":
      return { run: () => void k.alu(param, turn++), work: 96 * param };
    case "listL1": {
      const h = plan.hotList;
      return {
        run: () => k.listSum(sp.hot, h.beg, h.ent, plan.T, plan.hotChunks, sp.out, sp.res, param),
        work: 32 * h.entries * plan.hotChunks * param,
      };
    }
    case "stream":
      return { run: () => k.stream(sp.master[1], sp.pairBytes[1], 0), work: sp.pairBytes[1] };
    default: {
      const run = phaseRunner(k, plan, slot);
      const phases: readonly Phase[] = kind === "update"
        ? ["u1", "u2"]
        : kind === "inferSkeleton"
        ? ["f1", "f2"]
        : TRAINING_ORDER;
      return {
        run: () => {
          const i = turn++;
          for (const ph of phases) run(ph, i);
        },
        work: 1,
      };
    }
  }
}

// ------------------------------------------------------------------------------------ workers

/**
 * Words of the control array shared with the workers: the start generation, the stop flag, a
 * team's agreed stop (see makeUnit), and, on their own cache line, the barrier's count and
 * generation.
 */
export const CTL_GO = 0, CTL_STOP = 1, CTL_HALT = 2, CTL_BAR_COUNT = 16, CTL_BAR_GEN = 17;

/** Bytes of the control array. */
export const CTL_BYTES = 128;

export interface WorkerInit {
  cmd: "init";
  slot: number;
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  ctl: SharedArrayBuffer;
  plan: Plan;
}
export interface WorkerRun {
  cmd: "run";
  kind: ScaleKind;
  slot: number;
  param: number;
  gen: number;
  /** The worker's part of a team (kinds "sharedSkeleton", "panelSkeleton"; else 0). */
  part: number;
  /** Workers of the team (kinds "sharedSkeleton", "panelSkeleton"; else 1). */
  parts: number;
}
export interface WorkerDone {
  done: true;
  calls: number;
  work: number;
  ms: number;
}

/**
 * The worker side: on `init` instantiates the kernels over the posted shared memory; on `run`
 * posts `armed`, sleeps until the GO word changes, runs units of the asked kind until the STOP
 * word is set, and posts its count, work and time.
 */
function workerMain(): void {
  const g = globalThis as unknown as {
    onmessage: ((e: MessageEvent) => void) | null;
    postMessage(m: unknown): void;
  };
  let k: BoundsKernels | undefined, plan: Plan | undefined, ctl: Int32Array | undefined;
  let buf: ArrayBufferLike | undefined;
  g.onmessage = async (e: MessageEvent) => {
    const d = e.data as WorkerInit | WorkerRun;
    try {
      if (d.cmd === "init") {
        k = await instantiateBoundsKernels(d.module, d.memory);
        plan = d.plan;
        ctl = new Int32Array(d.ctl);
        buf = d.memory.buffer;
        warmUpKernels(k, plan, d.slot);
        g.postMessage({ ready: true });
      } else if (k && plan && ctl && buf) {
        const unit = makeUnit(k, plan, d.slot, d.kind, d.param, {
          ctl,
          buf,
          part: d.part,
          parts: d.parts,
        });
        g.postMessage({ armed: true });
        Atomics.wait(ctl, CTL_GO, d.gen);
        const t0 = performance.now();
        let calls = 0;
        const stop = unit.halted ?? (() => Atomics.load(ctl!, CTL_STOP) !== 0);
        do {
          unit.run();
          calls++;
        } while (!stop());
        const ms = performance.now() - t0;
        g.postMessage({ done: true, calls, work: calls * unit.work, ms } satisfies WorkerDone);
      }
    } catch (err) {
      g.postMessage({ error: String(err instanceof Error ? err.stack : err) });
    }
  };
}

// ------------------------------------------------------------------------------------ main

/** True in a Web Worker (where this module is the worker's entry: see workerMain). */
export const IS_WORKER =
  typeof (globalThis as { WorkerGlobalScope?: unknown }).WorkerGlobalScope !==
    "undefined";

if (IS_WORKER) workerMain();
