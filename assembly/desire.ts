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

import {
  CFG_F, CFG_L, CFG_N, CFG_OUT_DN, CFG_OUT_DT, CFG_THR_HID, LAY_COUNTS, LAY_DESIRE, LAY_FWD, LAY_OFF_GROUPS,
  LAY_KEEP, LAY_OFF_KVEC, LAY_OFF_LIST, LAY_OFF_MISC, LAY_WORDS, MISC_BWD_NG, cfg, cfgBase, laneStart, lay, panelBase,
  panelRowBytes, panels, scratch, size, stride,
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
  const n = cfg(CFG_N);
  const des = lay(LAY_DESIRE + l);
  const keep = lay(LAY_KEEP + l);
  const words = lay(LAY_WORDS + l);
  let ng: i32 = 0;
  for (let j = j0; j < j1; j++) {
    const o = <usize>j << 2;
    const dj = load<i32>(des + o);
    let k: i32 = 0;
    if ((dj & 1) != 0 && load<i32>(keep + o) != 0) {
      const c = <i32>popcnt(load<u32>(words + o));
      k = (dj & 2) != 0 ? abs(n - c) : -c;
    }
    store<i32>(kvec + o, k);
    if ((j & 3) == 3 && v128.any_true(v128.load(kvec + o - 12))) {
      store<u32>(groups + (<usize>ng << 2), <u32>(o - 12));
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
 * With `needed`: true when input i of layer l − 1 did not fire or was dropped, so that its
 * update never reads its desire (see backwardLayerSimd).
 */
// @ts-ignore: decorator
@inline function notNeeded(needed: bool, inWords: usize, inKeep: usize, i: i32): bool {
  return needed && (load<u32>(inWords + (<usize>i << 2)) == 0 || load<i32>(inKeep + (<usize>i << 2)) == 0);
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
  const inWords = lay(LAY_WORDS + l - 1), inKeep = lay(LAY_KEEP + l - 1);
  for (let i = i0; i < i1; i++) {
    if (notNeeded(needed, inWords, inKeep, i)) {
      store<i32>(out + (<usize>i << 2), 0);
      continue;
    }
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
 * The threaded form of backwardLayerSimd for a layer in np weight panels (l < L, 2 ≤ np ≤ 64):
 * the desire of the inputs i0 ≤ i < i1 of layer l − 1 (0 for inputs the update does not read,
 * with `needed`) from the factors of every panel, panel q's as backwardFactors left them in
 * thread q's scratch area (kvec, the groups listed, their number in its misc word MISC_BWD_NG)
 * for its lanes. S_i is the sum over the panels of each panel's products: the same exact i64 sum
 * as backwardLayerSimd's, so the same desires, whichever thread computes which inputs. `sc` is the
 * calling thread's scratch area (its list area holds the panels' table meanwhile).
 */
export function backwardRows(l: i32, np: i32, i0: i32, i1: i32, sc: usize, needed: bool): void {
  const nIn = size(l - 1);
  const out = lay(LAY_DESIRE + l - 1);
  const thr = <i64>cfg(CFG_THR_HID + l);
  const f = cfg(CFG_F + l);
  const chunk: i32 = min(256, 1 << (17 - f)); // as in backwardLayerSimd
  const fwd = lay(LAY_FWD + l);
  // The panels' table, 16 bytes a panel: its row 0, bytes per row, group list, groups listed;
  // panels without a factor are left out.
  const tab = sc + lay(LAY_OFF_LIST);
  let nq: i32 = 0;
  for (let q = 0; q < np; q++) {
    const sq = scratch(q);
    const g = load<i32>(sq + lay(LAY_OFF_MISC) + MISC_BWD_NG);
    if (g == 0) continue;
    const e = tab + (<usize>nq << 4);
    store<u32>(e, <u32>panelBase(fwd, l, q, np));
    store<u32>(e, <u32>panelRowBytes(l, q, np), 4);
    store<u32>(e, <u32>(sq + lay(LAY_OFF_GROUPS)), 8);
    store<u32>(e, <u32>g, 12);
    nq++;
  }
  const inWords = lay(LAY_WORDS + l - 1), inKeep = lay(LAY_KEEP + l - 1);
  const kvecOff = lay(LAY_OFF_KVEC) - lay(LAY_OFF_GROUPS); // the factors follow the groups
  for (let i = i0; i < i1; i++) {
    if (notNeeded(needed, inWords, inKeep, i)) {
      store<i32>(out + (<usize>i << 2), 0);
      continue;
    }
    let total: i64 = 0;
    for (let k = 0; k < nq; k++) {
      const e = tab + (<usize>k << 4);
      // Weight (i, j) of the panel is at row + 4j.
      const row = <usize>load<u32>(e) + <usize>i * <usize>load<u32>(e, 4);
      const groups = <usize>load<u32>(e, 8);
      total += groupSum(row, groups + kvecOff, groups, 0, load<i32>(e, 12), chunk);
    }
    const mag = total < 0 ? -total : total;
    const v: i32 = (mag >= thr ? 1 : 0) | (total > 0 ? 2 : 0);
    store<i32>(out + (<usize>i << 2), v);
  }
  if (i1 == nIn) for (let i = nIn; i < stride(l - 1); i++) store<i32>(out + (<usize>i << 2), 0);
}
