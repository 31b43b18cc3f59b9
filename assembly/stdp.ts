// STDP weight update with the desire's sign.
//
// For layer l (inputs i < nIn with input words b_i, neurons j with words s_j), after the backward pass:
//   D = { j : desired_j and kept_j and s_j ≠ 0 },  sgn_j = +1 if direction_j else −1.
// The update of the algorithm page, W[j,i] += η·sgn_j·Σ_{t: j fired at t} tr_i(t+1), equals
//   W[j,i] += η·sgn_j·Σ_{s: b_i(s) = 1} g_j(s),  g_j(s) = Σ_{t ≥ s, j fired at t} λ^(t−s)
// (swap the two sums of tr_i(t+1) = Σ_{s ≤ t} λ^(t−s) b_i(s)). So per sample:
//   1. reverse traces, Q.24 in i64: G(T) = 0, G(s) = ⌊(G(s+1)·(2^d − 1) + 2^(d−1)) / 2^d⌋ + 2^24·s_j(s)
//   2. update rows, Q11.20: U[s][j] = sgn_j · ⌊(G(s)·mant + r) / 2^shift⌋, r = draw(key, 64 + l, s·P + j) >> (64 − shift)
//      (stochastic rounding of η·g·2^20, η = mant·2^(4 − shift); U = 0 where G = 0, no draw)
//   3. for each input i with b_i ≠ 0: master[i][j] += Σ_{s ∈ b_i} U[s][j], clamped to ±2^28 (counted),
//      fwd[i][j] = (master[i][j] + 2^(19−F)) >> (20 − F).
// Adds only per weight. Bounds: G ≤ 32·2^24, mant < 2^24, η ≤ 1 ⇒ shift ≥ 27, so
// |Σ_s U| ≤ 2^30 + 32 and |master + Σ U| < 2^31.

import {
  CFG_D, CFG_F, CFG_LR_MANT, CFG_LR_SHIFT, CFG_T, G_FRAC, LAY_OFF_ACTW, LAY_OFF_KVEC, LAY_CUR, LAY_DESIRE, LAY_OFF_GROUPS, LAY_OFF_MISC, addSaturations,
  LAY_FWD, LAY_KEEP, LAY_MASTER, LAY_STAGE, LAY_UPD, LAY_UPD_PART, LAY_UPD_ROW, LAY_WORDS, MASTER_FRAC, WMAX, cfg, inferOnly, laneStart, lay,
  MISC_MINUS, MISC_PLUS, MISC_UPD_NA, MISC_UPD_NG, MISC_UPD_ROWS, panelBase, panelRowBytes, setCfg, size, stride,
  weightAddress,
} from "./layout";
import { STREAM_ROUND, currentKey, draw } from "./rng";
import { activeInputs, listedInputs, sortByWord } from "./forward";

/**
 * The 4-lane groups of neurons [j0, j1) of layer l holding a neuron that updates (desired, kept
 * and fired): their byte offsets (4·j) go to `groups`; returns their number.
 */
function updateGroups(l: i32, j0: i32, j1: i32, groups: usize): i32 {
  const des = lay(LAY_DESIRE + l), keep = lay(LAY_KEEP + l), words = lay(LAY_WORDS + l);
  const jn = min(j1, size(l));
  const zero = i32x4.splat(0), one = i32x4.splat(1);
  let ng: i32 = 0;
  // 4 lanes at a time (j0 is a multiple of 4; lanes from jn on are masked off).
  for (let j = j0; j < jn; j += 4) {
    const o = <usize>j << 2;
    const m = v128.and(
      v128.and(i32x4.ne(v128.and(v128.load(des + o), one), zero), i32x4.ne(v128.load(keep + o), zero)),
      i32x4.ne(v128.load(words + o), zero),
    );
    let bits = i32x4.bitmask(m);
    if (j + 4 > jn) bits &= (1 << (jn - j)) - 1;
    if (bits != 0) {
      store<u32>(groups + (<usize>ng << 2), <u32>o);
      ng++;
    }
  }
  return ng;
}

/**
 * Update rows of layer l for the ng groups listed in `groups`, compacted: row s holds, at byte
 * 16·k + 4·lane, U[s][j] of neuron j = groups[k]/4 + lane (see the top of this file), and rows
 * are `rowBytes` apart from `ub`. Returns the mask of steps s whose row is not all zero.
 */
function updateRows(
  l: i32, groups: usize, ng: i32, ub: usize, rowBytes: usize, mant: u64, shift: i32,
): u32 {
  const T = cfg(CFG_T);
  const d = cfg(CFG_D);
  const P = stride(l);
  const n = size(l);
  const span = <usize>ng << 4;
  for (let t = 0; t < T; t++) memory.fill(ub + <usize>t * rowBytes, 0, span);
  const des = lay(LAY_DESIRE + l), keep = lay(LAY_KEEP + l), words = lay(LAY_WORDS + l);
  const key = currentKey();
  const stream = STREAM_ROUND + <u64>l;
  const lam = (<i64>1 << d) - 1;
  const half: i64 = d > 0 ? <i64>1 << (d - 1) : 0;
  const one: i64 = <i64>1 << G_FRAC;
  const rsh = <u64>(64 - shift);
  let rows: u32 = 0;
  for (let k = 0; k < ng; k++) {
    const jb = <i32>(load<u32>(groups + (<usize>k << 2)) >> 2);
    for (let j = jb; j < min(jb + 4, n); j++) {
      const o = <usize>j << 2;
      const dj = load<i32>(des + o);
      if ((dj & 1) == 0 || load<i32>(keep + o) == 0) continue;
      const s = load<u32>(words + o);
      if (s == 0) continue;
      const neg = (dj & 2) == 0;
      const dst = ub + (<usize>k << 4) + (<usize>(j - jb) << 2);
      let g: i64 = 0;
      for (let t = T - 1; t >= 0; t--) {
        g = ((g * lam + half) >> d) + (((s >> <u32>t) & 1) != 0 ? one : 0);
        if (g == 0) continue;
        const r = draw(key, stream, <u64>t * <u64>P + <u64>j) >> rsh;
        const v = <i32>((<u64>g * mant + r) >> <u64>shift);
        if (v != 0) {
          store<i32>(dst + <usize>t * rowBytes, neg ? -v : v);
          rows |= <u32>1 << <u32>t;
        }
      }
    }
  }
  return rows;
}

/**
 * First half of layer l's update of the neurons of weight panel p of np (see panels in layout.ts;
 * p = 0 of 1: all of them) from the inputs i0 ≤ i < i1: lists the 4-lane groups with a neuron
 * that updates (in `sc`'s groups), builds their compacted update rows and prefix sums in region
 * `region` of the update and prefix rows (layout: net.ts; the calling thread's, p by default;
 * no other panel, of this layer or another, writes there), and lists the active inputs (in `sc`'s
 * active lists; with `listed` and all inputs, the list that the forward pass of layer l left
 * there is taken as it is, if it is still there: listedInputs). Returns the number of active
 * inputs for updateApply, 0 when nothing changes; that number and what updateApply needs besides
 * are left in `sc`'s misc area, so another thread can apply some of the inputs (threads.ts).
 */
export function updatePrepare(
  l: i32, p: i32, np: i32, sc: usize, region: i32 = p, i0: i32 = 0, i1: i32 = size(l - 1),
  listed: bool = false,
): i32 {
  const misc = sc + lay(LAY_OFF_MISC);
  store<i32>(misc + MISC_UPD_NA, 0);
  const j0 = laneStart(stride(l), p, np), j1 = laneStart(stride(l), p + 1, np);
  if (j0 == j1) return 0;
  const mant = <u64>(<u32>cfg(CFG_LR_MANT) & 0xffffff); // < 2^24 by construction
  const shift = cfg(CFG_LR_SHIFT);
  if (mant == 0 || shift < 1 || shift > 62) return 0;
  const groups = sc + lay(LAY_OFF_GROUPS);
  const ng = updateGroups(l, j0, j1, groups);
  if (ng == 0) return 0;
  const T = cfg(CFG_T);
  const rowBytes = lay(LAY_UPD_ROW);
  const at = <usize>region * lay(LAY_UPD_PART);
  const upd = lay(LAY_UPD) + at, pre = lay(LAY_CUR) + at;
  const rows = updateRows(l, groups, ng, upd, rowBytes, mant, shift);
  if (rows == 0) return 0;
  const have = listed && i0 == 0 && i1 == size(l - 1) ? listedInputs(l, sc) : -1;
  const na = have >= 0 ? have : activeInputs(l, sc, i0, i1);
  // Layer 1's inputs of one word (pixels of one value) next to each other, so that updateApply
  // sums their change once (the order of the inputs changes nothing else).
  if (l == 1) sortByWord(na, sc);
  // Prefix sums of the compacted update rows.
  const span = <usize>ng << 4;
  memory.copy(pre, upd, span);
  for (let t = 1; t < T; t++) {
    const prev = pre + <usize>(t - 1) * rowBytes, dst = pre + <usize>t * rowBytes;
    const src = upd + <usize>t * rowBytes;
    for (let c: usize = 0; c < span; c += 16) {
      v128.store(dst + c, i32x4.add(v128.load(prev + c), v128.load(src + c)));
    }
  }
  store<i32>(misc + MISC_UPD_NG, ng);
  store<u32>(misc + MISC_UPD_ROWS, rows);
  store<i32>(misc + MISC_UPD_NA, na);
  return na;
}

/** The number of active inputs that updatePrepare left in scratch area `sc` (0: nothing to apply). */
// @ts-ignore: decorator
@inline export function preparedInputs(sc: usize): i32 {
  return load<i32>(sc + lay(LAY_OFF_MISC) + MISC_UPD_NA);
}

/**
 * Second half of the update: applies it to the master weights of panel p of np for the active
 * inputs a0 ≤ a < a1 of the lists that updatePrepare left in scratch area `owner` (from its
 * rows in region `region`), and rewrites their forward copy (SIMD); `sc` is the calling thread's
 * scratch area (its work space, its backward factors' area for a kept change, and saturation
 * counter). Only the listed 4-lane groups are visited. An input's change Σ_{s ∈ b_i} U[s] is
 * either summed row by row, or, when its spikes come in fewer runs than rows, from the prefix sums
 * C[t] = Σ_{s ≤ t} U[s]: Σ over runs [a, e] of C[e] − C[a−1]; when the next input has the same
 * word (layer 1, sorted by word), the change is kept and added to it as it is. Exact integer sums
 * every way: the choice only saves work, and every weight gets the same number whichever thread
 * applies its input.
 */
export function updateApply(
  l: i32, p: i32, np: i32, owner: usize, region: i32, a0: i32, a1: i32, sc: usize,
): void {
  const om = owner + lay(LAY_OFF_MISC);
  const ng = load<i32>(om + MISC_UPD_NG);
  const rows = load<u32>(om + MISC_UPD_ROWS);
  const groups = owner + lay(LAY_OFF_GROUPS);
  const act = owner, actw = owner + lay(LAY_OFF_ACTW);
  const rowBytes = lay(LAY_UPD_ROW);
  const at = <usize>region * lay(LAY_UPD_PART);
  const upd = lay(LAY_UPD) + at, pre = lay(LAY_CUR) + at;
  // Weight (i, j) of this panel is at master + i·wrow + 4j (and fwd + i·wrow + 4j).
  const master = panelBase(lay(LAY_MASTER + l), l, p, np), fwd = panelBase(lay(LAY_FWD + l), l, p, np);
  const wrow = panelRowBytes(l, p, np);
  const f = cfg(CFG_F + l);
  const fsh = MASTER_FRAC - f;
  const vhalf = i32x4.splat(1 << (fsh - 1));
  const vmax = i32x4.splat(WMAX), vmin = i32x4.splat(-WMAX);
  let sat: i32 = 0;
  // Addresses of the rows to add (plus) and subtract (minus) for one input: at most 32 each.
  const plus = sc + lay(LAY_OFF_MISC) + MISC_PLUS, minus = sc + lay(LAY_OFF_MISC) + MISC_MINUS;
  // The change of inputs with the same word, kept for the next ones: ng v128 (the calling
  // thread's backward factors' area, free while it updates), for the word `kept` (0: none).
  const delta = sc + lay(LAY_OFF_KVEC);
  let kept: u32 = 0;
  for (let a = a0; a < a1; a++) {
    const b = load<u32>(actw + (<usize>a << 2));
    const direct = b & rows;
    if (direct == 0) continue;
    if (b == kept) {
      const i = <usize>load<u32>(act + (<usize>a << 2));
      sat += applyDelta(master + i * wrow, fwd + i * wrow, groups, ng, delta, fsh, vhalf, vmax, vmin);
      continue;
    }
    const ends = b & ~(b >> 1);
    const starts = (b & ~(b << 1)) >> 1; // a − 1 for every run start a > 0
    let np: i32 = 0, nm: i32 = 0;
    if (popcnt(ends) + popcnt(starts) < popcnt(direct)) {
      let x = ends;
      while (x != 0) {
        store<u32>(plus + (<usize>(np++) << 2), <u32>(pre + <usize>ctz(x) * rowBytes));
        x &= x - 1;
      }
      x = starts;
      while (x != 0) {
        store<u32>(minus + (<usize>(nm++) << 2), <u32>(pre + <usize>ctz(x) * rowBytes));
        x &= x - 1;
      }
    } else {
      let x = direct;
      while (x != 0) {
        store<u32>(plus + (<usize>(np++) << 2), <u32>(upd + <usize>ctz(x) * rowBytes));
        x &= x - 1;
      }
    }
    const i = <usize>load<u32>(act + (<usize>a << 2));
    const rm = master + i * wrow, rf = fwd + i * wrow;
    const p0 = <usize>load<u32>(plus);
    if (a + 1 < a1 && load<u32>(actw + (<usize>(a + 1) << 2)) == b) {
      // The next input has the same word (sortByWord): the change goes to `delta` first.
      for (let k = 0; k < ng; k++) {
        const c = <usize>k << 4;
        v128.store(delta + c, groupChange(p0, plus, np, minus, nm, c));
      }
      kept = b;
      sat += applyDelta(rm, rf, groups, ng, delta, fsh, vhalf, vmax, vmin);
      continue;
    }
    for (let k = 0; k < ng; k++) {
      const c = <usize>k << 4;
      const o = <usize>load<u32>(groups + (<usize>k << 2));
      sat += addClamped(rm + o, rf + o, groupChange(p0, plus, np, minus, nm, c), fsh, vhalf, vmax, vmin);
    }
  }
  if (sat != 0) addSaturations(sc, sat);
}

/**
 * One input's change of the listed group at byte c of the compacted rows: the rows at the np
 * addresses at `plus` (the first is p0) added, the nm at `minus` subtracted.
 */
// @ts-ignore: decorator
@inline function groupChange(p0: usize, plus: usize, np: i32, minus: usize, nm: i32, c: usize): v128 {
  let acc = v128.load(p0 + c);
  for (let q = 1; q < np; q++) {
    acc = i32x4.add(acc, v128.load(<usize>load<u32>(plus + (<usize>q << 2)) + c));
  }
  for (let q = 0; q < nm; q++) {
    acc = i32x4.sub(acc, v128.load(<usize>load<u32>(minus + (<usize>q << 2)) + c));
  }
  return acc;
}

/**
 * Adds `change` to the 4 master weights at `m`, clamped to ±WMAX, and writes their rounded forward
 * copy at `f`. Returns the number of clamped weights.
 */
// @ts-ignore: decorator
@inline function addClamped(
  m: usize, f: usize, change: v128, fsh: i32, vhalf: v128, vmax: v128, vmin: v128,
): i32 {
  const w = i32x4.add(v128.load(m), change);
  const cl = i32x4.max_s(i32x4.min_s(w, vmax), vmin);
  v128.store(m, cl);
  v128.store(f, i32x4.shr_s(i32x4.add(cl, vhalf), fsh));
  return v128.any_true(v128.xor(cl, w)) ? <i32>popcnt(i32x4.bitmask(i32x4.ne(cl, w))) : 0;
}

/**
 * Adds the change at `delta` (ng v128, one per listed group) to the master weights of one input's
 * row at `rm`, clamped, and rewrites its forward copy at `rf`. Returns the number of clamped weights.
 */
// @ts-ignore: decorator
@inline function applyDelta(
  rm: usize, rf: usize, groups: usize, ng: i32, delta: usize, fsh: i32, vhalf: v128, vmax: v128,
  vmin: v128,
): i32 {
  let sat: i32 = 0;
  for (let k = 0; k < ng; k++) {
    const o = <usize>load<u32>(groups + (<usize>k << 2));
    sat += addClamped(rm + o, rf + o, v128.load(delta + (<usize>k << 4)), fsh, vhalf, vmax, vmin);
  }
  return sat;
}

/**
 * Layer l's update of the neurons of weight panel p of np from the inputs i0 ≤ i < i1 (all by
 * default), by one thread: updatePrepare (in scratch area `sc` and region `region`), then
 * updateApply on every active input, with `work` as the calling thread's scratch area (`sc` by
 * default; the thread's own when `sc` is its second one).
 */
export function updateLayerSimd(
  l: i32, p: i32, np: i32, sc: usize, region: i32 = p, i0: i32 = 0, i1: i32 = size(l - 1),
  work: usize = sc,
): void {
  const na = updatePrepare(l, p, np, sc, region, i0, i1);
  if (na > 0) updateApply(l, p, np, sc, region, 0, na, work);
}

/** fwd[l] = round(master[l] / 2^(20 − F)) for every weight (after the host writes weights). */
export function syncForwardLayer(l: i32): void {
  const P = stride(l);
  const nIn = size(l - 1);
  // Element by element: the same for any panel layout (the panels tile nIn × P words).
  const master = lay(LAY_MASTER + l), fwd = lay(LAY_FWD + l);
  const fsh = MASTER_FRAC - cfg(CFG_F + l);
  const vhalf = i32x4.splat(1 << (fsh - 1));
  const vmax = i32x4.splat(WMAX), vmin = i32x4.splat(-WMAX);
  const total = <usize>nIn * <usize>P;
  for (let k: usize = 0; k < total; k += 4) {
    const o = k << 2;
    const c = i32x4.max_s(i32x4.min_s(v128.load(master + o), vmax), vmin);
    v128.store(master + o, c);
    v128.store(fwd + o, i32x4.shr_s(i32x4.add(c, vhalf), fsh));
  }
}

/**
 * Takes linear layer l's master weights as the host wrote them at fwd[l] in the model-file order
 * (out × in, row j = neuron j, dense, Q11.20) and moves them into master[l] (row i = input i,
 * by panels in the threaded layout: see panels in layout.ts), clamped to ±2^28; then rewrites the forward copy. Returns the number of weights
 * that were out of range (clamped). Faster than a transposition in the host, and bounded: it
 * reads N_l × N_{l−1} ≤ N_{l−1} × P_l values of the fwd buffer and writes only master and fwd.
 */
export function importWeightsLayer(l: i32): i32 {
  const P = stride(l);
  const nIn = size(l - 1), nOut = size(l);
  // Training layout: from fwd into master, then the forward copy. Inference only: from the
  // staging buffer straight into fwd, then rounded in place (there are no master weights).
  const io = inferOnly();
  const master = io ? lay(LAY_FWD + l) : lay(LAY_MASTER + l);
  const src = io ? lay(LAY_STAGE) : lay(LAY_FWD + l);
  const vmax = i32x4.splat(WMAX), vmin = i32x4.splat(-WMAX);
  const srow = <usize>nIn << 2, drow = <usize>P << 2;
  if (P > nOut) {
    // The padding lanes [nOut, P) are one 4-lane group, so in one panel.
    for (let i = 0; i < nIn; i++) {
      memory.fill(weightAddress(master, l, i, nOut), 0, <usize>(P - nOut) << 2);
    }
  }
  let clamped: i32 = 0;
  // Main loop: 4 × 4 tiles transposed in registers (4 loads, 8 shuffles, 4 stores).
  const n4 = nOut & ~3, i4 = nIn & ~3;
  for (let j = 0; j < n4; j += 4) {
    const s0 = src + <usize>j * srow;
    // Lanes j..j+3 are in one panel: row i of it at dj + i·prow.
    const dj = weightAddress(master, l, 0, j);
    const prow = i4 > 0 ? weightAddress(master, l, 1, j) - dj : 0;
    for (let i = 0; i < i4; i += 4) {
      const o = <usize>i << 2;
      const r0 = v128.load(s0 + o), r1 = v128.load(s0 + srow + o);
      const r2 = v128.load(s0 + 2 * srow + o), r3 = v128.load(s0 + 3 * srow + o);
      const t0 = v128.shuffle<i32>(r0, r1, 0, 4, 1, 5), t1 = v128.shuffle<i32>(r0, r1, 2, 6, 3, 7);
      const t2 = v128.shuffle<i32>(r2, r3, 0, 4, 1, 5), t3 = v128.shuffle<i32>(r2, r3, 2, 6, 3, 7);
      const c0 = v128.shuffle<i32>(t0, t2, 0, 1, 4, 5), c1 = v128.shuffle<i32>(t0, t2, 2, 3, 6, 7);
      const c2 = v128.shuffle<i32>(t1, t3, 0, 1, 4, 5), c3 = v128.shuffle<i32>(t1, t3, 2, 3, 6, 7);
      const d = dj + <usize>i * prow;
      clamped += storeClamped(d, c0, vmax, vmin) + storeClamped(d + prow, c1, vmax, vmin) +
        storeClamped(d + 2 * prow, c2, vmax, vmin) + storeClamped(d + 3 * prow, c3, vmax, vmin);
    }
  }
  // Tails: the inputs past the last multiple of 4, then the neurons past it.
  for (let j = 0; j < nOut; j++) {
    for (let i = j < n4 ? i4 : 0; i < nIn; i++) {
      let v = load<i32>(src + <usize>j * srow + (<usize>i << 2));
      if (v > WMAX || v < -WMAX) {
        clamped++;
        v = v > WMAX ? WMAX : -WMAX;
      }
      store<i32>(weightAddress(master, l, i, j), v);
    }
  }
  if (!io) {
    syncForwardLayer(l);
  } else {
    const fsh = MASTER_FRAC - cfg(CFG_F + l);
    const vhalf = i32x4.splat(1 << (fsh - 1));
    const end = master + <usize>nIn * drow;
    for (let p = master; p < end; p += 16) {
      v128.store(p, i32x4.shr_s(i32x4.add(v128.load(p), vhalf), fsh));
    }
  }
  return clamped;
}

// @ts-ignore: decorator
@inline function storeClamped(p: usize, v: v128, vmax: v128, vmin: v128): i32 {
  const c = i32x4.max_s(i32x4.min_s(v, vmax), vmin);
  v128.store(p, c);
  return v128.any_true(v128.xor(c, v)) ? <i32>popcnt(i32x4.bitmask(i32x4.ne(c, v))) : 0;
}
