// Forward pass of one fully connected layer over all T steps.
//
// Shapes (layer l, nIn = N_{l−1}, P = stride(l) = N_l rounded up to 4):
//   fwd[l]:    i32[nIn × P], row i = weights from input i to every neuron, Q.F[l]
//   words[l−1]: u32[nIn], bit t = input fired in step t (before this layer's delay)
//   keep[l]:   i32[P], −1 kept / 0 dropped
//   cur:       i32[T × P] scratch: cur[t][j] = Σ_i fwd[i][j] · b_i(t)
//   words[l]:  u32[P] out, bit t = neuron fired in step t
// Input word of layer l: b_i = words[l−1][i] for l = 1, (words[l−1][i] << 1) & mask for l > 1.
// Membrane, per step t: u ← u − (u >> d) (= ⌈λu⌉); u += cur[t][j] (saturating, counted);
//   fire iff kept and u ≥ θ; on a spike u −= θ.
// The current is a sum of weight rows selected by spike bits: no multiplications.
// |fwd| ≤ 2^(F+8) and nIn · 2^(F+8) < 2^31 (checked by init), so the current cannot overflow.

import {
  CFG_D, CFG_L, CFG_T, CFG_THR_EVAL, CFG_THR_TRAIN, LAY_OFF_ACTW, LAY_COUNTS, addSaturations,
  LAY_CUR, LAY_FWD, LAY_KEEP, LAY_UPD, LAY_WORDS, cfg, lay, setCfg, size, stepMask, stride,
} from "./layout";

/** Neurons per block of the current buffer: T × BLOCK i32 stay in L1. */
const BLOCK: i32 = 256;

/** Collects the inputs of layer l that spike at least once: returns their count. */
// @ts-ignore: decorator
@inline export function activeInputs(l: i32, act: usize, actw: usize): i32 {
  const nIn = size(l - 1);
  const src = lay(LAY_WORDS + l - 1);
  const sh: u32 = l > 1 ? 1 : 0;
  const mask = stepMask();
  let na: i32 = 0;
  for (let i = 0; i < nIn; i++) {
    const w = (load<u32>(src + (<usize>i << 2)) << sh) & mask;
    if (w != 0) {
      store<u32>(act + (<usize>na << 2), <u32>i);
      store<u32>(actw + (<usize>na << 2), w);
      na++;
    }
  }
  return na;
}

/** Adds (sign > 0) or subtracts row `row` into row `dst`, lanes [0, len): SIMD main loop + tail. */
// @ts-ignore: decorator
@inline function rowAcc(dst: usize, row: usize, len: i32, add: bool): void {
  const len16 = len & ~15;
  let k: i32 = 0;
  if (add) {
    for (; k < len16; k += 16) {
      const o = <usize>k << 2;
      v128.store(dst + o, i32x4.add(v128.load(dst + o), v128.load(row + o)));
      v128.store(dst + o, i32x4.add(v128.load(dst + o, 16), v128.load(row + o, 16)), 16);
      v128.store(dst + o, i32x4.add(v128.load(dst + o, 32), v128.load(row + o, 32)), 32);
      v128.store(dst + o, i32x4.add(v128.load(dst + o, 48), v128.load(row + o, 48)), 48);
    }
    for (; k < len; k += 4) {
      const o = <usize>k << 2;
      v128.store(dst + o, i32x4.add(v128.load(dst + o), v128.load(row + o)));
    }
  } else {
    for (; k < len16; k += 16) {
      const o = <usize>k << 2;
      v128.store(dst + o, i32x4.sub(v128.load(dst + o), v128.load(row + o)));
      v128.store(dst + o, i32x4.sub(v128.load(dst + o, 16), v128.load(row + o, 16)), 16);
      v128.store(dst + o, i32x4.sub(v128.load(dst + o, 32), v128.load(row + o, 32)), 32);
      v128.store(dst + o, i32x4.sub(v128.load(dst + o, 48), v128.load(row + o, 48)), 48);
    }
    for (; k < len; k += 4) {
      const o = <usize>k << 2;
      v128.store(dst + o, i32x4.sub(v128.load(dst + o), v128.load(row + o)));
    }
  }
}

/**
 * Layer l's input current of every step (SIMD column sums), as two buffers whose combination
 * the membrane pass forms: cur[t][j] + Σ_{s ≤ t} del[s][j] = Σ_i fwd[i][j] · b_i(t).
 * An input whose word has fewer run boundaries than spikes (a pixel that fires every step)
 * adds its row at the start of each run of spikes and subtracts it after the end (del);
 * any other input adds its row at every spike (cur). Integer adds are exact, so both give the
 * same current bit for bit; the choice only saves work.
 */
export function currentSimd(l: i32, j0: i32, j1: i32, sc: usize): void {
  const T = cfg(CFG_T);
  const P = stride(l);
  const act = sc, actw = sc + lay(LAY_OFF_ACTW);
  const cur = lay(LAY_CUR), del = lay(LAY_UPD);
  const fwd = lay(LAY_FWD + l);
  const na = activeInputs(l, act, actw);
  const mask = stepMask();
  const rowBytes = <usize>P << 2;
  for (let t = 0; t < T; t++) {
    memory.fill(cur + <usize>t * rowBytes + (<usize>j0 << 2), 0, <usize>(j1 - j0) << 2);
    memory.fill(del + <usize>t * rowBytes + (<usize>j0 << 2), 0, <usize>(j1 - j0) << 2);
  }
  for (let jb = j0; jb < j1; jb += BLOCK) {
    const len = min(BLOCK, j1 - jb);
    const off = <usize>jb << 2;
    for (let a = 0; a < na; a++) {
      const i = <usize>load<u32>(act + (<usize>a << 2));
      const w = load<u32>(actw + (<usize>a << 2));
      const row = fwd + i * rowBytes + off;
      let rise = w & ~(w << 1);
      let fall = ~w & (w << 1) & mask;
      if (popcnt(rise) + popcnt(fall) < popcnt(w)) {
        while (rise != 0) {
          rowAcc(del + <usize>ctz(rise) * rowBytes + off, row, len, true);
          rise &= rise - 1;
        }
        while (fall != 0) {
          rowAcc(del + <usize>ctz(fall) * rowBytes + off, row, len, false);
          fall &= fall - 1;
        }
      } else {
        let b = w;
        while (b != 0) {
          rowAcc(cur + <usize>ctz(b) * rowBytes + off, row, len, true);
          b &= b - 1;
        }
      }
    }
  }
}

/** Membrane dynamics of layer l over T steps from cur: writes words[l] (SIMD over neurons). */
export function membraneSimd(l: i32, train: bool, j0: i32, j1: i32, sc: usize): void {
  const T = cfg(CFG_T);
  const d = cfg(CFG_D);
  const P = stride(l);
  const thr = cfg(train ? CFG_THR_TRAIN + l : CFG_THR_EVAL + l);
  const cur = lay(LAY_CUR), del = lay(LAY_UPD);
  const keep = lay(LAY_KEEP + l);
  const out = lay(LAY_WORDS + l);
  const vthr = i32x4.splat(thr);
  const vmax = i32x4.splat(0x7fffffff);
  const rowBytes = <usize>P << 2;
  let sat: i32 = 0;
  for (let j = j0; j < j1; j += 4) {
    const o = <usize>j << 2;
    const kept = v128.load(keep + o);
    let u = i32x4.splat(0);
    let word = i32x4.splat(0);
    let run = i32x4.splat(0);
    for (let t = 0; t < T; t++) {
      u = i32x4.sub(u, i32x4.shr_s(u, d));
      run = i32x4.add(run, v128.load(del + <usize>t * rowBytes + o));
      const cin = i32x4.add(v128.load(cur + <usize>t * rowBytes + o), run);
      let r = i32x4.add(u, cin);
      // Signed overflow iff u and cin share a sign that r does not.
      const ovf = i32x4.shr_s(v128.and(v128.xor(u, r), v128.xor(cin, r)), 31);
      if (v128.any_true(ovf)) {
        sat += <i32>popcnt(i32x4.bitmask(ovf));
        r = v128.bitselect(v128.xor(i32x4.shr_s(u, 31), vmax), r, ovf);
      }
      const fire = v128.and(i32x4.ge_s(r, vthr), kept);
      u = i32x4.sub(r, v128.and(fire, vthr));
      word = v128.or(word, v128.and(fire, i32x4.splat(1 << t)));
    }
    v128.store(out + o, word);
  }
  if (sat != 0) addSaturations(sc, sat);
}

/** Layer l's forward pass over all T steps: words[l] from words[l−1] and fwd[l]. */
export function forwardLayerSimd(l: i32, train: bool, j0: i32, j1: i32, sc: usize): void {
  currentSimd(l, j0, j1, sc);
  membraneSimd(l, train, j0, j1, sc);
}

/** counts[j] = popcount(words[L][j]); returns the predicted class, or −1 on a tie for the top. */
export function outputCounts(): i32 {
  const L = cfg(CFG_L);
  const n = size(L);
  const words = lay(LAY_WORDS + L);
  const counts = lay(LAY_COUNTS);
  let best: i32 = -1, bestCount: i32 = -1, tie = false;
  for (let j = 0; j < n; j++) {
    const c = <i32>popcnt(load<u32>(words + (<usize>j << 2)));
    store<i32>(counts + (<usize>j << 2), c);
    if (c > bestCount) {
      bestCount = c;
      best = j;
      tie = false;
    } else if (c == bestCount) tie = true;
  }
  return tie ? -1 : best;
}
