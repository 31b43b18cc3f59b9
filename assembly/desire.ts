// Desire: the output error, and its ternarised propagation back through the layers.
//
// desire[l]: i32[P_l], bit 0 = desired (takes part in learning), bit 1 = direction (should fire).
// Output layer, label y, counts c_j: desired_j = (j == y ? outDT : outDN)[c_j], direction_j = (j == y).
//   (outDT/outDN are host tables holding the reference's float32 comparisons e_j > δ_out.)
// Backward of layer l ≥ 2 (own neurons j, inputs i of layer l − 1), n = T − m:
//   k_j = 0 unless desired_j and kept_j; then k_j = |n − c_j| if direction_j else −c_j
//   S_i = Σ_j fwd[l][i][j] · k_j     (= n · S_i of the algorithm page, in layer l's units; exact, i64)
//   desired_i = |S_i| ≥ thrHid[l];  direction_i = S_i > 0.
// The SIMD sum visits only the 4-lane groups with a non-zero factor; it runs in i32 over
// chunks short enough that no lane can overflow (chunk · 2^(F+8) · 32 < 2^31), then in i64.

import { listedInputs, unlistInputs } from "./forward";
import {
  CFG_F, CFG_L, CFG_N, CFG_OUT_DN, CFG_OUT_DT, CFG_THR_HID, LAY_COUNTS, LAY_DESIRE, LAY_FWD, LAY_OFF_GROUPS,
  LAY_KEEP, LAY_OFF_KVEC, LAY_OFF_LIST, LAY_PART, LAY_WORDS, cfg, cfgBase, laneStart, lay, panelBase,
  panelRowBytes, panels, size, stride,
} from "./layout";

/** Output desire from the counts and the label. */
export function outputDesire(label: i32): void {
  const L = cfg(CFG_L);
  const n = size(L);
  const counts = lay(LAY_COUNTS);
  const des = lay(LAY_DESIRE + L);
  const base = cfgBase();
  for (let j = 0; j < n; j++) {
    const c = <usize>min(<u32>load<i32>(counts + (<usize>j << 2)), 32); // the host may write counts
    const v: i32 = j == label
      ? <i32>load<u8>(base + <usize>CFG_OUT_DT + c) | 2
      : <i32>load<u8>(base + <usize>CFG_OUT_DN + c);
    store<i32>(des + (<usize>j << 2), v);
  }
  for (let j = n; j < stride(L); j++) store<i32>(des + (<usize>j << 2), 0);
}

/**
 * Backward factors k_j of layer l (see above) for the lanes j0 ≤ j < j1 (multiples of 4; all
 * lanes by default); padding lanes 0. Writes the byte offsets of the 4-lane groups holding a
 * non-zero factor to `groups`; returns their number. Reads only those lanes' desires.
 */
export function backwardFactors(
  l: i32, kvec: usize, groups: usize, j0: i32 = 0, j1: i32 = stride(l),
): i32 {
  const vn = i32x4.splat(cfg(CFG_N));
  const des = lay(LAY_DESIRE + l);
  const keep = lay(LAY_KEEP + l);
  const words = lay(LAY_WORDS + l);
  const zero = i32x4.splat(0), one = i32x4.splat(1), two = i32x4.splat(2);
  let ng: i32 = 0;
  for (let j = j0; j < j1; j += 4) {
    const o = <usize>j << 2;
    const d = v128.load(des + o);
    // The spike counts c_j: popcounts of the bytes, summed pairwise into each lane.
    const c = i32x4.extadd_pairwise_i16x8_u(i16x8.extadd_pairwise_i8x16_u(i8x16.popcnt(v128.load(words + o))));
    const desired = v128.and(i32x4.ne(v128.and(d, one), zero), i32x4.ne(v128.load(keep + o), zero));
    const up = i32x4.ne(v128.and(d, two), zero);
    const k = v128.and(v128.bitselect(i32x4.abs(i32x4.sub(vn, c)), i32x4.neg(c), up), desired);
    v128.store(kvec + o, k);
    if (v128.any_true(k)) {
      store<u32>(groups + (<usize>ng << 2), <u32>o);
      ng++;
    }
  }
  return ng;
}

/** The first of the ng ascending group offsets at `groups` that is ≥ `from` (bytes), or ng. */
// @ts-ignore: decorator
@inline function firstGroupAt(groups: usize, ng: i32, g: i32, from: u32): i32 {
  while (g < ng && load<u32>(groups + (<usize>g << 2)) < from) g++;
  return g;
}

/**
 * Σ over the factor groups [g0, g1) (byte offsets of 4-lane groups at `groups`) of row · kvec,
 * exact: i32 lanes over runs of at most `chunk` groups (short enough not to overflow), then i64.
 */
// @ts-ignore: decorator
@inline function groupSum(row: usize, kvec: usize, groups: usize, g0: i32, g1: i32, chunk: i32): i64 {
  let total: i64 = 0;
  for (let gb = g0; gb < g1; gb += chunk) {
    const end = min(g1, gb + chunk);
    let acc = i32x4.splat(0);
    for (let g = gb; g < end; g++) {
      const o = <usize>load<u32>(groups + (<usize>g << 2));
      acc = i32x4.add(acc, i32x4.mul(v128.load(row + o), v128.load(kvec + o)));
    }
    const wide = i64x2.add(i64x2.extend_low_i32x4_s(acc), i64x2.extend_high_i32x4_s(acc));
    total += i64x2.extract_lane(wide, 0) + i64x2.extract_lane(wide, 1);
  }
  return total;
}

/**
 * Desire of layer l − 1 from layer l's desire (l ≥ 2), with layer l's forward weights, for the
 * inputs i0 ≤ i < i1. With `needed`, only where the update reads it: the first hidden layer's
 * desire is used by its own update alone, which skips neurons that did not fire or were dropped,
 * so a training step (l = 2) computes it only for neurons that fired and were kept (0 elsewhere).
 */
export function backwardLayerSimd(l: i32, i0: i32, i1: i32, sc: usize, needed: bool = false): void {
  const P = stride(l);
  const nIn = size(l - 1);
  const kvec = sc + lay(LAY_OFF_KVEC);
  const groups = sc + lay(LAY_OFF_GROUPS);
  const ng = backwardFactors(l, kvec, groups);
  const fwd = lay(LAY_FWD + l);
  // The groups of each weight panel (see panels in layout.ts; the groups ascend): panel q has
  // groups [gq[q], gq[q + 1]), in the thread's list area (the forward pass is done with it).
  const np = panels(l);
  const gq = sc + lay(LAY_OFF_LIST);
  store<u32>(gq, 0);
  for (let q = 0; q < np; q++) {
    const g = <i32>load<u32>(gq + (<usize>q << 2));
    store<u32>(gq + (<usize>(q + 1) << 2), <u32>firstGroupAt(groups, ng, g, <u32>laneStart(P, q + 1, np) << 2));
  }
  const out = lay(LAY_DESIRE + l - 1);
  const thr = <i64>cfg(CFG_THR_HID + l);
  const f = cfg(CFG_F + l);
  // Groups per chunk: 4·chunk products of ≤ 2^(F+8)·32 per lane must stay below 2^31:
  // chunk ≤ 2^(18 − F); keep a factor 2.
  const chunk: i32 = min(256, 1 << (17 - f));
  // With `needed`: the listed inputs (in the thread's active-input list, free here), 0 elsewhere.
  const list = sc;
  let n = i1 - i0;
  if (needed) {
    if (i1 > i0) memory.fill(out + (<usize>i0 << 2), 0, <usize>(i1 - i0) << 2);
    n = backwardInputs(l, sc, true, i0, i1);
  }
  for (let a = 0; a < n; a++) {
    const i = needed ? <i32>load<u32>(list + (<usize>a << 2)) : i0 + a;
    let total: i64 = 0;
    for (let q = 0; q < np; q++) {
      const g0 = <i32>load<u32>(gq + (<usize>q << 2)), g1 = <i32>load<u32>(gq + (<usize>(q + 1) << 2));
      if (g0 == g1) continue;
      // Weight (i, j) of panel q is at row + 4j.
      const row = panelBase(fwd, l, q, np) + <usize>i * panelRowBytes(l, q, np);
      total += groupSum(row, kvec, groups, g0, g1, chunk);
    }
    const mag = total < 0 ? -total : total;
    const v: i32 = (mag >= thr ? 1 : 0) | (total > 0 ? 2 : 0);
    store<i32>(out + (<usize>i << 2), v);
  }
  if (i1 == nIn) for (let i = nIn; i < stride(l - 1); i++) store<i32>(out + (<usize>i << 2), 0);
}

/**
 * The inputs i0 ≤ i < i1 of layer l − 1 (all by default; i0 a multiple of 4) whose desire the
 * backward pass of layer l computes, ascending, to scratch area `sc`'s active inputs (u32[N_{l−1}]
 * at sc): with `needed` those that fired and were kept (see backwardLayerSimd), otherwise all.
 * Returns their number. With `needed` and all inputs, a list of them that the forward pass left
 * there (listedInputs: the same inputs, as a neuron fires only if kept) is taken as it is.
 */
export function backwardInputs(
  l: i32, sc: usize, needed: bool, i0: i32 = 0, i1: i32 = size(l - 1),
): i32 {
  if (needed && i0 == 0 && i1 == size(l - 1)) {
    const listed = listedInputs(l, sc);
    if (listed >= 0) return listed;
  }
  unlistInputs(sc);
  const list = sc;
  if (!needed) {
    for (let i = i0; i < i1; i++) store<u32>(list + (<usize>(i - i0) << 2), <u32>i);
    return max(0, i1 - i0);
  }
  const inWords = lay(LAY_WORDS + l - 1), inKeep = lay(LAY_KEEP + l - 1);
  const zero = i32x4.splat(0);
  let n: i32 = 0;
  // 4 inputs at a time (i0 is a multiple of 4 and the rows are padded to one; lanes from i1 on are
  // masked off).
  for (let i = i0; i < i1; i += 4) {
    const o = <usize>i << 2;
    const m = v128.and(i32x4.ne(v128.load(inWords + o), zero), i32x4.ne(v128.load(inKeep + o), zero));
    let bits = i32x4.bitmask(m);
    if (i + 4 > i1) bits &= (1 << (i1 - i)) - 1;
    for (; bits != 0; bits &= bits - 1) {
      store<u32>(list + (<usize>n << 2), <u32>(i + ctz(bits)));
      n++;
    }
  }
  return n;
}

/**
 * The threaded form of backwardLayerSimd for a layer in np weight panels (l < L), first half:
 * for the inputs list[a], a0 ≤ a < a1 (backwardInputs), the products of panel p's weights with
 * its factors (kvec, and the g1 groups listed at `groups`, as backwardFactors left them), S_i^p,
 * into row p of the partial sums (LAY_PART, i64[P_{l−1}] a row). Any thread may run it for any
 * panel once those factors are written; the thread that owns the panel reads only its own weights.
 * After a barrier backwardFinish adds the np rows: the same exact i64 sums as backwardLayerSimd's,
 * so the same desires.
 */
export function backwardPartial(
  l: i32, p: i32, np: i32, kvec: usize, groups: usize, g1: i32, list: usize, a0: i32, a1: i32,
): void {
  const fwd = panelBase(lay(LAY_FWD + l), l, p, np);
  const wrow = <usize>panelRowBytes(l, p, np);
  const part = lay(LAY_PART) + <usize>p * <usize>stride(l - 1) * 8;
  const f = cfg(CFG_F + l);
  const chunk: i32 = min(256, 1 << (17 - f)); // as in backwardLayerSimd
  for (let a = a0; a < a1; a++) {
    const i = <usize>load<u32>(list + (<usize>a << 2));
    store<i64>(part + (i << 3), groupSum(fwd + i * wrow, kvec, groups, 0, g1, chunk));
  }
}

/**
 * Second half of the threaded backward pass of layer l (after backwardPartial of every panel for
 * the n inputs at `list`, and a barrier): the desire of the inputs [i0, i1) of layer l − 1, from
 * the sums of the np partial rows for those in the list, 0 for the others.
 */
export function backwardFinish(l: i32, np: i32, i0: i32, i1: i32, list: usize, n: i32): void {
  const nIn = size(l - 1);
  const out = lay(LAY_DESIRE + l - 1);
  const thr = <i64>cfg(CFG_THR_HID + l);
  const part = lay(LAY_PART), rowBytes = <usize>stride(l - 1) * 8;
  if (i1 > i0) memory.fill(out + (<usize>i0 << 2), 0, <usize>(i1 - i0) << 2);
  let a = 0;
  while (a < n && <i32>load<u32>(list + (<usize>a << 2)) < i0) a++;
  for (; a < n; a++) {
    const i = <usize>load<u32>(list + (<usize>a << 2));
    if (<i32>i >= i1) break;
    let total: i64 = 0;
    for (let q = 0; q < np; q++) total += load<i64>(part + <usize>q * rowBytes + (i << 3));
    const mag = total < 0 ? -total : total;
    const v: i32 = (mag >= thr ? 1 : 0) | (total > 0 ? 2 : 0);
    store<i32>(out + (i << 2), v);
  }
  if (i1 == nIn) for (let i = nIn; i < stride(l - 1); i++) store<i32>(out + (<usize>i << 2), 0);
}
