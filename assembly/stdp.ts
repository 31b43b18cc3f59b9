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
  CFG_D, CFG_F, CFG_LR_MANT, CFG_LR_SHIFT, CFG_T, G_FRAC, LAY_OFF_ACTW, LAY_CUR, LAY_DESIRE, LAY_OFF_GROUPS, LAY_OFF_MISC, addSaturations,
  LAY_FWD, LAY_KEEP, LAY_MASTER, LAY_STAGE, LAY_UPD, LAY_WORDS, MASTER_FRAC, WMAX, cfg, inferOnly, lay, setCfg, size,
  stride,
} from "./layout";
import { STREAM_ROUND, currentKey, draw } from "./rng";
import { activeInputs } from "./forward";

/** Update rows U[s][j] of layer l; returns the mask of steps s whose row is not all zero. */
export function updateRows(l: i32, upd: usize, j0: i32, j1: i32): u32 {
  const T = cfg(CFG_T);
  const d = cfg(CFG_D);
  const P = stride(l);
  const n = size(l);
  const mant = <u64>(<u32>cfg(CFG_LR_MANT) & 0xffffff); // < 2^24 by construction
  const shift = cfg(CFG_LR_SHIFT);
  for (let t = 0; t < T; t++) {
    memory.fill(upd + ((<usize>t * <usize>P + <usize>j0) << 2), 0, <usize>(j1 - j0) << 2);
  }
  if (mant == 0 || shift < 1 || shift > 62) return 0;
  const des = lay(LAY_DESIRE + l);
  const keep = lay(LAY_KEEP + l);
  const words = lay(LAY_WORDS + l);
  const key = currentKey();
  const stream = STREAM_ROUND + <u64>l;
  const lam = (<i64>1 << d) - 1;
  const half: i64 = d > 0 ? <i64>1 << (d - 1) : 0;
  const one: i64 = <i64>1 << G_FRAC;
  const rsh = <u64>(64 - shift);
  let rows: u32 = 0;
  const jn = min(j1, n);
  for (let j = j0; j < jn; j++) {
    const o = <usize>j << 2;
    const dj = load<i32>(des + o);
    if ((dj & 1) == 0 || load<i32>(keep + o) == 0) continue;
    const s = load<u32>(words + o);
    if (s == 0) continue;
    const neg = (dj & 2) == 0;
    let g: i64 = 0;
    for (let t = T - 1; t >= 0; t--) {
      g = ((g * lam + half) >> d) + (((s >> <u32>t) & 1) != 0 ? one : 0);
      if (g == 0) continue;
      const r = draw(key, stream, <u64>t * <u64>P + <u64>j) >> rsh;
      const v = <i32>((<u64>g * mant + r) >> <u64>shift);
      if (v != 0) {
        store<i32>(upd + ((<usize>t * <usize>P + <usize>j) << 2), neg ? -v : v);
        rows |= <u32>1 << <u32>t;
      }
    }
  }
  return rows;
}

/**
 * Applies layer l's update rows to the master weights and rewrites the forward copy (SIMD).
 * An input's change Σ_{s ∈ b_i} U[s] is either summed row by row, or, when its spikes come in
 * fewer runs than rows, from the prefix sums C[t] = Σ_{s ≤ t} U[s]: Σ over runs [a, e] of
 * C[e] − C[a−1]. Exact integer sums either way: the choice only saves work.
 */
export function updateLayerSimd(l: i32, j0: i32, j1: i32, sc: usize): void {
  const upd = lay(LAY_UPD);
  const rows = updateRows(l, upd, j0, j1);
  if (rows == 0) return;
  const T = cfg(CFG_T);
  const P = stride(l);
  const act = sc, actw = sc + lay(LAY_OFF_ACTW);
  const na = activeInputs(l, act, actw);
  const master = lay(LAY_MASTER + l), fwd = lay(LAY_FWD + l);
  const f = cfg(CFG_F + l);
  const fsh = MASTER_FRAC - f;
  const vhalf = i32x4.splat(1 << (fsh - 1));
  const vmax = i32x4.splat(WMAX), vmin = i32x4.splat(-WMAX);
  const rowBytes = <usize>P << 2;
  // The 4-lane groups with a non-zero update in some step: only they change.
  const groups = sc + lay(LAY_OFF_GROUPS);
  const b0 = <usize>j0 << 2, b1 = <usize>j1 << 2;
  let ng: i32 = 0;
  for (let o = b0; o < b1; o += 16) {
    let any = v128.load(upd + o);
    for (let t = 1; t < T; t++) any = v128.or(any, v128.load(upd + <usize>t * rowBytes + o));
    if (v128.any_true(any)) {
      store<u32>(groups + (<usize>ng << 2), <u32>o);
      ng++;
    }
  }
  // Prefix sums of the update rows, in the (now free) current buffer.
  const pre = lay(LAY_CUR);
  memory.copy(pre + b0, upd + b0, b1 - b0);
  for (let t = 1; t < T; t++) {
    const prev = pre + <usize>(t - 1) * rowBytes, dst = pre + <usize>t * rowBytes;
    const src = upd + <usize>t * rowBytes;
    for (let o = b0; o < b1; o += 16) {
      v128.store(dst + o, i32x4.add(v128.load(prev + o), v128.load(src + o)));
    }
  }
  let sat: i32 = 0;
  // Addresses of the rows to add (plus) and subtract (minus) for one input: at most 32 each.
  const plus = sc + lay(LAY_OFF_MISC), minus = plus + 128;
  for (let a = 0; a < na; a++) {
    const b = load<u32>(actw + (<usize>a << 2));
    const direct = b & rows;
    if (direct == 0) continue;
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
    const rm = master + i * rowBytes, rf = fwd + i * rowBytes;
    const p0 = <usize>load<u32>(plus);
    for (let g = 0; g < ng; g++) {
      const o = <usize>load<u32>(groups + (<usize>g << 2));
      let acc = v128.load(p0 + o);
      for (let q = 1; q < np; q++) {
        acc = i32x4.add(acc, v128.load(<usize>load<u32>(plus + (<usize>q << 2)) + o));
      }
      for (let q = 0; q < nm; q++) {
        acc = i32x4.sub(acc, v128.load(<usize>load<u32>(minus + (<usize>q << 2)) + o));
      }
      const w = i32x4.add(v128.load(rm + o), acc);
      const c = i32x4.max_s(i32x4.min_s(w, vmax), vmin);
      if (v128.any_true(v128.xor(c, w))) sat += <i32>popcnt(i32x4.bitmask(i32x4.ne(c, w)));
      v128.store(rm + o, c);
      v128.store(rf + o, i32x4.shr_s(i32x4.add(c, vhalf), fsh));
    }
  }
  if (sat != 0) addSaturations(sc, sat);
}

/** fwd[l] = round(master[l] / 2^(20 − F)) for every weight (after the host writes weights). */
export function syncForwardLayer(l: i32): void {
  const P = stride(l);
  const nIn = size(l - 1);
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
 * stride P), clamped to ±2^28; then rewrites the forward copy. Returns the number of weights
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
    for (let i = 0; i < nIn; i++) {
      memory.fill(master + <usize>i * drow + (<usize>nOut << 2), 0, <usize>(P - nOut) << 2);
    }
  }
  let clamped: i32 = 0;
  // Main loop: 4 × 4 tiles transposed in registers (4 loads, 8 shuffles, 4 stores).
  const n4 = nOut & ~3, i4 = nIn & ~3;
  for (let j = 0; j < n4; j += 4) {
    const s0 = src + <usize>j * srow;
    for (let i = 0; i < i4; i += 4) {
      const o = <usize>i << 2;
      const r0 = v128.load(s0 + o), r1 = v128.load(s0 + srow + o);
      const r2 = v128.load(s0 + 2 * srow + o), r3 = v128.load(s0 + 3 * srow + o);
      const t0 = v128.shuffle<i32>(r0, r1, 0, 4, 1, 5), t1 = v128.shuffle<i32>(r0, r1, 2, 6, 3, 7);
      const t2 = v128.shuffle<i32>(r2, r3, 0, 4, 1, 5), t3 = v128.shuffle<i32>(r2, r3, 2, 6, 3, 7);
      const c0 = v128.shuffle<i32>(t0, t2, 0, 1, 4, 5), c1 = v128.shuffle<i32>(t0, t2, 2, 3, 6, 7);
      const c2 = v128.shuffle<i32>(t1, t3, 0, 1, 4, 5), c3 = v128.shuffle<i32>(t1, t3, 2, 3, 6, 7);
      const d = master + <usize>i * drow + (<usize>j << 2);
      clamped += storeClamped(d, c0, vmax, vmin) + storeClamped(d + drow, c1, vmax, vmin) +
        storeClamped(d + 2 * drow, c2, vmax, vmin) + storeClamped(d + 3 * drow, c3, vmax, vmin);
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
      store<i32>(master + <usize>i * drow + (<usize>j << 2), v);
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
