// Forward pass of one fully connected layer over all T steps.
//
// Shapes (layer l, nIn = N_{l−1}, P = stride(l) = N_l rounded up to 4):
//   fwd[l]:    i32[nIn × P], row i = weights from input i to every neuron, Q.F[l] (in the
//              threaded layout, hidden layers by panels: see panels in layout.ts)
//   words[l−1]: u32[nIn], bit t = input fired in step t (before this layer's delay)
//   keep[l]:   i32[P], −1 kept / 0 dropped
//   words[l]:  u32[P] out, bit t = neuron fired in step t
// Input word of layer l: b_i = words[l−1][i] for l = 1, (words[l−1][i] << 1) & mask for l > 1.
// Current of step t: cur[t][j] = Σ_i fwd[i][j] · b_i(t).
// Membrane, per step t: u ← u − (u >> d) (= ⌈λu⌉); u += cur[t][j] (saturating, counted);
//   fire iff kept and u ≥ θ; on a spike u −= θ.
// The current is a sum of weight rows selected by spike bits: no multiplications.
// |fwd| ≤ 2^(F+8) and nIn · 2^(F+8) < 2^31 (checked by init), so the current cannot overflow.
//
// Loop order: 32 neurons at a time, their current in 8 SIMD registers, step by step: the rows
// of the inputs that fire in step t are added from per-step lists of row offsets, then the
// membranes of those 32 neurons advance one step. The chunk of an active input's row is one
// 128-byte piece that stays in L1 after its first visit, and the current never goes to memory.
// Lists per step t, built once per layer from the input words (a thread area, LAY_OFF_LIST; with
// 2 threads, the first layer's are built by thread 1 and read by both):
//   rise[t]: inputs whose run of spikes starts at t, fall[t]: whose run ended at t − 1,
//   spike[t]: inputs that fire at t (each input goes to rise/fall or to spike, whichever
//   gives fewer entries). A running sum R over rise − fall carries the first kind from step
//   to step: cur[t] = R(t) + Σ_{spike[t]} rows. Integer adds are exact, so the order and the
//   choice change nothing but the work.
// Classes (layer 1 only): inputs with the same word (pixels of the same value, in the input layer)
// have the same entries in every list. Where it saves work (n inputs of a word with e entries each:
// n·e > n + e), groupInputs replaces them by one class whose row, the sum of their n rows, is made
// once per step and panel (classRows, in class rows after layer 1's forward weights: row
// panels(1)·N_0 + c of every panel, so that the same list entries serve every panel); the lists
// then hold the class's e entries once. Integer adds are exact, so the sums do not change.

import {
  CFG_BAR_GEN, CFG_D, CFG_ENC, CFG_L, CLAIM_PANEL_BYTES, LAY_CLASS_CAP, LAY_OFF_CLASS, LAY_OFF_MISC, MISC_CLASSES,
  MISC_CLASS_READY, MISC_LISTED, MISC_LISTED_N, cfgBase, panels, scratch, CFG_T, CFG_THR_EVAL, CFG_THR_TRAIN, LAY_OFF_ACTW, LAY_COUNTS, addSaturations,
  LAY_FWD, LAY_KEEP, LAY_OFF_LIST, LAY_PART, LAY_WORDS, cfg, laneStart, lay, panelBase, panelRowBytes, setCfg, size,
  stepMask, stride,
} from "./layout";

/**
 * Collects the inputs i0 ≤ i < i1 of layer l (all of them by default; i0 a multiple of 4) that
 * spike at least once, and their input words (for l > 1 shifted by the delay, so an input that
 * fires only in the last step is listed with word 0), in scratch area `sc` (its active inputs and
 * words): returns their count. With all inputs (a full range), the list is also tagged with l and
 * its count in `sc`'s misc words (MISC_LISTED), so that the backward pass of layer l, which needs
 * the same inputs (those that fired; a dropped neuron never fires), can take it over (listedInputs).
 */
export function activeInputs(l: i32, sc: usize, i0: i32 = 0, i1: i32 = size(l - 1)): i32 {
  const act = sc, actw = sc + lay(LAY_OFF_ACTW);
  const src = lay(LAY_WORDS + l - 1);
  const sh: u32 = l > 1 ? 1 : 0;
  const mask = stepMask();
  const vmask = i32x4.splat(mask), zero = i32x4.splat(0);
  let na: i32 = 0;
  // 4 inputs at a time (the words are padded to a multiple of 4; lanes from i1 on are masked off).
  for (let i = i0; i < i1; i += 4) {
    const v = v128.and(v128.load(src + (<usize>i << 2)), vmask);
    let bits = i32x4.bitmask(i32x4.ne(v, zero));
    if (i + 4 > i1) bits &= (1 << (i1 - i)) - 1;
    for (; bits != 0; bits &= bits - 1) {
      const k = i + ctz(bits);
      store<u32>(act + (<usize>na << 2), <u32>k);
      store<u32>(actw + (<usize>na << 2), (load<u32>(src + (<usize>k << 2)) << sh) & mask);
      na++;
    }
  }
  const misc = sc + lay(LAY_OFF_MISC);
  store<i32>(misc + MISC_LISTED, i0 == 0 && i1 == size(l - 1) ? l : 0);
  store<i32>(misc + MISC_LISTED_N, na);
  return na;
}

/**
 * The number of inputs of layer l that activeInputs listed in scratch area `sc` for all of them
 * (the inputs of layer l − 1 that fired, ascending), or −1 when that list is not there (another
 * list has been written there since, or none).
 */
export function listedInputs(l: i32, sc: usize): i32 {
  const misc = sc + lay(LAY_OFF_MISC);
  return load<i32>(misc + MISC_LISTED) == l ? load<i32>(misc + MISC_LISTED_N) : -1;
}

/** Marks scratch area `sc`'s active inputs as overwritten (listedInputs then answers −1). */
// @ts-ignore: decorator
@inline export function unlistInputs(sc: usize): void {
  store<i32>(sc + lay(LAY_OFF_MISC) + MISC_LISTED, 0);
}

/** Offsets in the list area: membrane state of a chunk, saved R, list bounds, entries. */
const LS_W: usize = 128; //    v128[8] spike words of the chunk's 32 neurons (membranes at 0)
const LS_R: usize = 256; //    v128[8] the running sum R while the spike rows are added
const LS_BEG: usize = 384; //  u32[3T + 1]: entries of list k = 3t + kind are [beg[k], beg[k + 1])
const LS_POS: usize = 784; //  u32[3T]: write cursors while the lists are filled
const LS_ENT: usize = 1280; // u32[≤ T · nIn]: byte offsets of weight rows (i · 4P)

/** Adds one to the u32 at p. */
// @ts-ignore: decorator
@inline function bump(p: usize): void {
  store<u32>(p, load<u32>(p) + 1);
}

/** Appends `off` to list k (cursor at pos + 4k). */
// @ts-ignore: decorator
@inline function append(pos: usize, ent: usize, k: usize, off: u32): void {
  const c = pos + (k << 2);
  const q = load<u32>(c);
  store<u32>(ent + (<usize>q << 2), off);
  store<u32>(c, q + 1);
}

/** True when an input with word w goes to the rise/fall lists (fewer entries than spikes). */
// @ts-ignore: decorator
@inline function runny(w: u32, mask: u32): bool {
  return popcnt(w & ~(w << 1)) + popcnt(~w & (w << 1) & mask) < popcnt(w);
}

/**
 * Builds the step lists of the active inputs (act, actw from activeInputs) in the list area
 * `ls`: list 3t + 0 rise, 3t + 1 fall, 3t + 2 spike (see the top of this file).
 */
function buildLists(na: i32, act: usize, actw: usize, ls: usize, rowBytes: usize): void {
  const T = cfg(CFG_T);
  const mask = stepMask();
  const beg = ls + LS_BEG, pos = ls + LS_POS, ent = ls + LS_ENT;
  memory.fill(beg, 0, <usize>(3 * T + 1) << 2);
  // Counts, one entry to the right, then prefix sums: beg[k] = entries of the lists before k.
  for (let a = 0; a < na; a++) {
    const w = load<u32>(actw + (<usize>a << 2));
    if (runny(w, mask)) {
      let rise = w & ~(w << 1), fall = ~w & (w << 1) & mask;
      for (; rise != 0; rise &= rise - 1) bump(beg + ((<usize>ctz(rise) * 3 + 1) << 2));
      for (; fall != 0; fall &= fall - 1) bump(beg + ((<usize>ctz(fall) * 3 + 2) << 2));
    } else {
      for (let b = w; b != 0; b &= b - 1) bump(beg + ((<usize>ctz(b) * 3 + 3) << 2));
    }
  }
  for (let k = 1; k <= 3 * T; k++) {
    const o = beg + (<usize>k << 2);
    store<u32>(o, load<u32>(o) + load<u32>(o - 4));
  }
  memory.copy(pos, beg, <usize>(3 * T) << 2);
  for (let a = 0; a < na; a++) {
    const w = load<u32>(actw + (<usize>a << 2));
    const off = <u32>(<usize>load<u32>(act + (<usize>a << 2)) * rowBytes);
    if (runny(w, mask)) {
      let rise = w & ~(w << 1), fall = ~w & (w << 1) & mask;
      for (; rise != 0; rise &= rise - 1) append(pos, ent, <usize>ctz(rise) * 3, off);
      for (; fall != 0; fall &= fall - 1) append(pos, ent, <usize>ctz(fall) * 3 + 1, off);
    } else {
      for (let b = w; b != 0; b &= b - 1) append(pos, ent, <usize>ctz(b) * 3 + 2, off);
    }
  }
}

/**
 * One step of 4 membranes: u at st, spike words at st + LS_W, input current `cin`.
 * Returns the number of saturated adds.
 */
// @ts-ignore: decorator
@inline function membraneStep(
  st: usize, cin: v128, d: i32, vthr: v128, kept: v128, bit: v128,
): i32 {
  let u = v128.load(st);
  u = i32x4.sub(u, i32x4.shr_s(u, d));
  let r = i32x4.add(u, cin);
  // Signed overflow iff u and cin share a sign that r does not.
  const ovf = i32x4.shr_s(v128.and(v128.xor(u, r), v128.xor(cin, r)), 31);
  let sat: i32 = 0;
  if (v128.any_true(ovf)) {
    sat = <i32>popcnt(i32x4.bitmask(ovf));
    r = v128.bitselect(v128.xor(i32x4.shr_s(u, 31), i32x4.splat(0x7fffffff)), r, ovf);
  }
  const fire = v128.and(i32x4.ge_s(r, vthr), kept);
  v128.store(st, i32x4.sub(r, v128.and(fire, vthr)));
  v128.store(st + LS_W, v128.or(v128.load(st + LS_W), v128.and(fire, bit)));
  return sat;
}

/**
 * 32 neurons (main loop): `base` = their column in row 0 of fwd, keep and out at their lane; the
 * step lists in the list area `lists`, the membrane state in the list area `ls` (the calling
 * thread's; `lists` may be another thread's). Returns the number of saturated membrane adds.
 */
function forwardChunk32(
  base: usize, ls: usize, lists: usize, T: i32, d: i32, vthr: v128, keep: usize, out: usize,
): i32 {
  const beg = lists + LS_BEG, ent = lists + LS_ENT, rs = ls + LS_R;
  let a0 = i32x4.splat(0), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
  memory.fill(ls, 0, 256);
  let sat: i32 = 0;
  for (let t = 0; t < T; t++) {
    const bt = beg + <usize>t * 12;
    let q = load<u32>(bt);
    const e0 = load<u32>(bt, 4), e1 = load<u32>(bt, 8), e2 = load<u32>(bt, 12);
    for (; q < e0; q++) {
      const p = base + <usize>load<u32>(ent + (<usize>q << 2));
      a0 = i32x4.add(a0, v128.load(p));
      a1 = i32x4.add(a1, v128.load(p, 16));
      a2 = i32x4.add(a2, v128.load(p, 32));
      a3 = i32x4.add(a3, v128.load(p, 48));
      a4 = i32x4.add(a4, v128.load(p, 64));
      a5 = i32x4.add(a5, v128.load(p, 80));
      a6 = i32x4.add(a6, v128.load(p, 96));
      a7 = i32x4.add(a7, v128.load(p, 112));
    }
    for (; q < e1; q++) {
      const p = base + <usize>load<u32>(ent + (<usize>q << 2));
      a0 = i32x4.sub(a0, v128.load(p));
      a1 = i32x4.sub(a1, v128.load(p, 16));
      a2 = i32x4.sub(a2, v128.load(p, 32));
      a3 = i32x4.sub(a3, v128.load(p, 48));
      a4 = i32x4.sub(a4, v128.load(p, 64));
      a5 = i32x4.sub(a5, v128.load(p, 80));
      a6 = i32x4.sub(a6, v128.load(p, 96));
      a7 = i32x4.sub(a7, v128.load(p, 112));
    }
    const spikes = q < e2;
    if (spikes) {
      v128.store(rs, a0);
      v128.store(rs, a1, 16);
      v128.store(rs, a2, 32);
      v128.store(rs, a3, 48);
      v128.store(rs, a4, 64);
      v128.store(rs, a5, 80);
      v128.store(rs, a6, 96);
      v128.store(rs, a7, 112);
      for (; q < e2; q++) {
        const p = base + <usize>load<u32>(ent + (<usize>q << 2));
        a0 = i32x4.add(a0, v128.load(p));
        a1 = i32x4.add(a1, v128.load(p, 16));
        a2 = i32x4.add(a2, v128.load(p, 32));
        a3 = i32x4.add(a3, v128.load(p, 48));
        a4 = i32x4.add(a4, v128.load(p, 64));
        a5 = i32x4.add(a5, v128.load(p, 80));
        a6 = i32x4.add(a6, v128.load(p, 96));
        a7 = i32x4.add(a7, v128.load(p, 112));
      }
    }
    const bit = i32x4.splat(1 << t);
    sat += membraneStep(ls, a0, d, vthr, v128.load(keep), bit);
    sat += membraneStep(ls + 16, a1, d, vthr, v128.load(keep, 16), bit);
    sat += membraneStep(ls + 32, a2, d, vthr, v128.load(keep, 32), bit);
    sat += membraneStep(ls + 48, a3, d, vthr, v128.load(keep, 48), bit);
    sat += membraneStep(ls + 64, a4, d, vthr, v128.load(keep, 64), bit);
    sat += membraneStep(ls + 80, a5, d, vthr, v128.load(keep, 80), bit);
    sat += membraneStep(ls + 96, a6, d, vthr, v128.load(keep, 96), bit);
    sat += membraneStep(ls + 112, a7, d, vthr, v128.load(keep, 112), bit);
    if (spikes) {
      a0 = v128.load(rs);
      a1 = v128.load(rs, 16);
      a2 = v128.load(rs, 32);
      a3 = v128.load(rs, 48);
      a4 = v128.load(rs, 64);
      a5 = v128.load(rs, 80);
      a6 = v128.load(rs, 96);
      a7 = v128.load(rs, 112);
    }
  }
  memory.copy(out, ls + LS_W, 128);
  return sat;
}

/**
 * g 4-lane groups, 1 ≤ g ≤ 4 (the tail after the 32-neuron chunks), in one pass over the lists;
 * arguments as forwardChunk32. Inlined with a constant g, so the loops keep only its groups.
 * With `cur` ≠ 0 the membranes are left alone: the currents go to T rows of 16·g bytes at `cur`.
 */
// @ts-ignore: decorator
@inline function forwardGroups(
  base: usize, ls: usize, lists: usize, T: i32, d: i32, vthr: v128, keep: usize, out: usize, g: i32,
  cur: usize = 0,
): i32 {
  const beg = lists + LS_BEG, ent = lists + LS_ENT;
  let a0 = i32x4.splat(0), a1 = a0, a2 = a0, a3 = a0;
  memory.fill(ls, 0, 64);
  memory.fill(ls + LS_W, 0, 64);
  let sat: i32 = 0;
  for (let t = 0; t < T; t++) {
    const bt = beg + <usize>t * 12;
    let q = load<u32>(bt);
    const e0 = load<u32>(bt, 4), e1 = load<u32>(bt, 8), e2 = load<u32>(bt, 12);
    for (; q < e0; q++) {
      const p = base + <usize>load<u32>(ent + (<usize>q << 2));
      a0 = i32x4.add(a0, v128.load(p));
      if (g > 1) a1 = i32x4.add(a1, v128.load(p, 16));
      if (g > 2) a2 = i32x4.add(a2, v128.load(p, 32));
      if (g > 3) a3 = i32x4.add(a3, v128.load(p, 48));
    }
    for (; q < e1; q++) {
      const p = base + <usize>load<u32>(ent + (<usize>q << 2));
      a0 = i32x4.sub(a0, v128.load(p));
      if (g > 1) a1 = i32x4.sub(a1, v128.load(p, 16));
      if (g > 2) a2 = i32x4.sub(a2, v128.load(p, 32));
      if (g > 3) a3 = i32x4.sub(a3, v128.load(p, 48));
    }
    let c0 = a0, c1 = a1, c2 = a2, c3 = a3;
    for (; q < e2; q++) {
      const p = base + <usize>load<u32>(ent + (<usize>q << 2));
      c0 = i32x4.add(c0, v128.load(p));
      if (g > 1) c1 = i32x4.add(c1, v128.load(p, 16));
      if (g > 2) c2 = i32x4.add(c2, v128.load(p, 32));
      if (g > 3) c3 = i32x4.add(c3, v128.load(p, 48));
    }
    if (cur != 0) {
      const row = cur + <usize>t * (<usize>g << 4);
      v128.store(row, c0);
      if (g > 1) v128.store(row, c1, 16);
      if (g > 2) v128.store(row, c2, 32);
      if (g > 3) v128.store(row, c3, 48);
      continue;
    }
    const bit = i32x4.splat(1 << t);
    sat += membraneStep(ls, c0, d, vthr, v128.load(keep), bit);
    if (g > 1) sat += membraneStep(ls + 16, c1, d, vthr, v128.load(keep, 16), bit);
    if (g > 2) sat += membraneStep(ls + 32, c2, d, vthr, v128.load(keep, 32), bit);
    if (g > 3) sat += membraneStep(ls + 48, c3, d, vthr, v128.load(keep, 48), bit);
  }
  if (cur == 0) memory.copy(out, ls + LS_W, <usize>g << 4);
  return sat;
}

/**
 * The g 4-lane groups of forwardGroups, 1 ≤ g ≤ 4, each count with its own loops (`cur` as
 * there: 0 runs the membranes, otherwise the currents go there).
 */
function forwardTail(
  base: usize, ls: usize, lists: usize, T: i32, d: i32, vthr: v128, keep: usize, out: usize, g: i32,
  cur: usize = 0,
): i32 {
  if (g == 4) return forwardGroups(base, ls, lists, T, d, vthr, keep, out, 4, cur);
  if (g == 3) return forwardGroups(base, ls, lists, T, d, vthr, keep, out, 3, cur);
  if (g == 2) return forwardGroups(base, ls, lists, T, d, vthr, keep, out, 2, cur);
  return forwardGroups(base, ls, lists, T, d, vthr, keep, out, 1, cur);
}

/**
 * Unit u of the lanes [j0, j1) of a panel whose weight (i, j) is at fwd + i·rowBytes + 4j: the
 * 32 neurons from j0 + 32u, or, when fewer than 32 are left there, the 4-lane groups left.
 */
// @ts-ignore: decorator
@inline function forwardUnit(
  fwd: usize, ls: usize, lists: usize, T: i32, d: i32, vthr: v128, keep: usize, out: usize, j0: i32,
  j1: i32, u: i32, acc: usize,
): i32 {
  const j = j0 + (u << 5);
  let sat: i32 = 0;
  if (j + 32 <= j1) {
    const o = <usize>j << 2;
    sat = forwardChunk32(fwd + o, ls, lists, T, d, vthr, keep + o, out + o);
  } else {
    // The tail: up to 28 lanes, 16 at a time.
    for (let k = j; k < j1; k += 16) {
      const o = <usize>k << 2;
      sat += forwardTail(fwd + o, ls, lists, T, d, vthr, keep + o, out + o, min(j1 - k, 16) >> 2);
    }
  }
  if (acc != 0) outputAccumulate(out, j, min(j + 32, j1), acc);
  return sat;
}

/**
 * Adds the output layer's input currents from the neurons j0 ≤ j < j1 of layer L − 1 (their spike
 * words at `words`, done) to the T rows of P_L i32 at `acc`: cur[t] += fwd[L][j] for every step t
 * in which input j of the output layer fires, (words[j] << 1) & mask. Exact integer adds, so the
 * sums do not depend on which neurons went to which rows.
 */
function outputAccumulate(words: usize, j0: i32, j1: i32, acc: usize): void {
  const L = cfg(CFG_L), P = stride(L);
  const mask = stepMask();
  const rowBytes = <usize>P << 2;
  const base = lay(LAY_FWD + L); // the output layer is one panel: rows of P lanes
  const g = P >> 2;
  for (let j = j0; j < j1; j++) {
    let b = (load<u32>(words + (<usize>j << 2)) << 1) & mask;
    if (b == 0) continue; // padding lanes never fire
    const row = base + <usize>j * rowBytes;
    const r0 = v128.load(row);
    // 3 groups (10–12 outputs, both presets) with the row in registers: the general loop alone
    // trained and inferred 0.988× and 0.989× as fast on 2 threads (bench/ab_trees.ts, 120 blocks).
    if (g == 3) {
      const r1 = v128.load(row, 16), r2 = v128.load(row, 32);
      for (; b != 0; b &= b - 1) {
        const c = acc + <usize>ctz(b) * rowBytes;
        v128.store(c, i32x4.add(v128.load(c), r0));
        v128.store(c, i32x4.add(v128.load(c, 16), r1), 16);
        v128.store(c, i32x4.add(v128.load(c, 32), r2), 32);
      }
    } else {
      for (; b != 0; b &= b - 1) {
        const c = acc + <usize>ctz(b) * rowBytes;
        v128.store(c, i32x4.add(v128.load(c), r0));
        for (let k = 1; k < g; k++) {
          const o = <usize>k << 4;
          v128.store(c + o, i32x4.add(v128.load(c + o), v128.load(row + o)));
        }
      }
    }
  }
}

/**
 * The step lists of layer l's active inputs (activeInputs, buildLists) in scratch area `sc`'s list
 * area, as byte offsets of rows `rowBytes` apart: what forwardLayerSimd reads.
 */
export function inputLists(l: i32, rowBytes: usize, sc: usize): void {
  const act = sc, actw = sc + lay(LAY_OFF_ACTW);
  let na = activeInputs(l, sc);
  store<i32>(sc + lay(LAY_OFF_MISC) + MISC_CLASSES, 0);
  if (l == 1 && lay(LAY_CLASS_CAP) > 0) na = groupInputs(na, sc);
  // Row offsets in the panel; weight (i, j) is at fwd + i·rowBytes + 4j.
  buildLists(na, act, actw, sc + lay(LAY_OFF_LIST), rowBytes);
}

/** Slots of the hash table that groups layer 1's active inputs by word (a power of 2). */
const CLASS_SLOTS: i32 = 512;
/** Most distinct words a sample's inputs are grouped by (the others stay single inputs). */
const CLASS_WORDS: i32 = 256;
// A thread area's class block (at LAY_OFF_CLASS), for the step lists built in that area:
const CB_KEY: usize = 0; //      u32[CLASS_SLOTS]: hash table, a word (0: empty slot)
const CB_VAL: usize = 2048; //   u32[CLASS_SLOTS]: its distinct word's number d
const CB_WORD: usize = 4096; //  u32[CLASS_WORDS]: word d
const CB_COUNT: usize = 5120; // u32[CLASS_WORDS]: inputs with word d
const CB_NEXT: usize = 6144; //  i32[CLASS_WORDS]: next member's place of word d's class, −1: no class
const CB_CLASS: usize = 7168; // i32[CLASS_WORDS]: word d's class
const CB_START: usize = 8192; // u32[CLASS_WORDS + 1]: class c's members are [start[c], start[c + 1])
const CB_SLOT: usize = 9280; //  i32[N_0]: each active input's distinct word (−1: none)
// then u32[N_0] members (input numbers), by class (CB_SLOT + the area's a4 bytes), and u32[N_0]
// words (sortByWord; at CB_SLOT + 2·a4)

/** Bytes of a thread area's class block, for a4 ≥ 4·N_0 bytes per list of inputs. */
export function classBlockBytes(a4: usize): usize {
  return CB_SLOT + 3 * a4;
}

/**
 * Classes of layer 1's inputs that may get a row of their own after its forward weights: at most
 * CLASS_WORDS, half of N_0 (a class has 2 inputs or more), and the distinct non-zero words of the
 * input table (CFG_ENC; a host that writes other input words gets no more classes than that, the
 * other inputs stay single); 0 when layer 1's weight panels differ in width (then one set of list
 * entries cannot serve them all).
 */
export function classCapacity(): i32 {
  const np = panels(1);
  const rb = panelRowBytes(1, 0, np);
  for (let p = 1; p < np; p++) if (panelRowBytes(1, p, np) != rb) return 0;
  const enc = cfgBase() + <usize>CFG_ENC;
  let words: i32 = 0;
  for (let v = 0; v < 256; v++) {
    const w = load<u32>(enc + (<usize>v << 2)) & stepMask();
    if (w == 0) continue;
    let seen = false;
    for (let u = 0; u < v && !seen; u++) seen = (load<u32>(enc + (<usize>u << 2)) & stepMask()) == w;
    if (!seen) words++;
  }
  return min(min(CLASS_WORDS, size(0) >> 1), words);
}

/** Entries an input with word w adds to the step lists (as buildLists chooses). */
// @ts-ignore: decorator
@inline function listEntries(w: u32, mask: u32): i32 {
  const runs = <i32>(popcnt(w & ~(w << 1)) + popcnt(~w & (w << 1) & mask));
  const spikes = <i32>popcnt(w);
  return runs < spikes ? runs : spikes;
}

/**
 * Numbers the distinct words of the na active inputs of scratch area `sc` (act, actw) in its class
 * block: each input's number d (or −1 once CLASS_WORDS words are numbered and its word is not one
 * of them) at CB_SLOT, word d and its count of inputs at CB_WORD and CB_COUNT, in the order of
 * their first input. Returns the number of distinct words numbered.
 */
function wordIds(na: i32, sc: usize): i32 {
  const actw = sc + lay(LAY_OFF_ACTW);
  const cb = sc + lay(LAY_OFF_CLASS);
  const key = cb + CB_KEY, val = cb + CB_VAL, dword = cb + CB_WORD, dcount = cb + CB_COUNT;
  const slot = cb + CB_SLOT;
  memory.fill(key, 0, <usize>CLASS_SLOTS << 2);
  // A word is never 0 here (the input fired), so 0 marks an empty slot.
  let nd: i32 = 0;
  for (let a = 0; a < na; a++) {
    const w = load<u32>(actw + (<usize>a << 2));
    let h = (w * 0x9e3779b1) >> 23; // 9 bits: CLASS_SLOTS
    let d: i32 = -1;
    while (true) {
      const k = load<u32>(key + (<usize>h << 2));
      if (k == w) {
        d = load<i32>(val + (<usize>h << 2));
        break;
      }
      if (k == 0) {
        if (nd < CLASS_WORDS) {
          d = nd++;
          store<u32>(key + (<usize>h << 2), w);
          store<i32>(val + (<usize>h << 2), d);
          store<u32>(dword + (<usize>d << 2), w);
          store<u32>(dcount + (<usize>d << 2), 0);
        }
        break;
      }
      h = (h + 1) & <u32>(CLASS_SLOTS - 1);
    }
    store<i32>(slot + (<usize>a << 2), d);
    if (d >= 0) store<u32>(dcount + (<usize>d << 2), load<u32>(dcount + (<usize>d << 2)) + 1);
  }
  return nd;
}

/**
 * Reorders the na active inputs of scratch area `sc` (act, actw, as activeInputs left them) so that
 * inputs with the same word follow one another: the words in the order of their first input, each
 * word's inputs ascending, and last the inputs whose word wordIds did not number (more than
 * CLASS_WORDS words). Marks the list as no longer the one activeInputs tagged (listedInputs).
 */
export function sortByWord(na: i32, sc: usize): void {
  unlistInputs(sc);
  if (na < 2) return;
  const act = sc, actw = sc + lay(LAY_OFF_ACTW);
  const cb = sc + lay(LAY_OFF_CLASS);
  const dcount = cb + CB_COUNT, dnext = cb + CB_NEXT, slot = cb + CB_SLOT;
  const a4 = <usize>lay(LAY_OFF_ACTW);
  const members = slot + a4, words = slot + 2 * a4;
  const nd = wordIds(na, sc);
  if (nd == na) return; // every word once: nothing to gather
  let m: i32 = 0;
  for (let d = 0; d < nd; d++) {
    store<i32>(dnext + (<usize>d << 2), m);
    m += <i32>load<u32>(dcount + (<usize>d << 2));
  }
  for (let a = 0; a < na; a++) {
    const d = load<i32>(slot + (<usize>a << 2));
    let at = m;
    if (d >= 0) {
      at = load<i32>(dnext + (<usize>d << 2));
      store<i32>(dnext + (<usize>d << 2), at + 1);
    } else {
      m++;
    }
    store<u32>(members + (<usize>at << 2), load<u32>(act + (<usize>a << 2)));
    store<u32>(words + (<usize>at << 2), load<u32>(actw + (<usize>a << 2)));
  }
  memory.copy(act, members, <usize>na << 2);
  memory.copy(actw, words, <usize>na << 2);
}

/**
 * Groups layer 1's na active inputs (act, actw of scratch area `sc`) by word: each word whose n
 * inputs would add n·e list entries, more than the n rows its class row sums plus its e entries,
 * becomes a class c (at most LAY_CLASS_CAP of them), listed as input panels(1)·N_0 + c with that
 * word; the class's members go to `sc`'s class block, and the inputs that stay single are kept in
 * act, actw. Returns the new number of listed inputs; the number of classes goes to MISC_CLASSES.
 */
function groupInputs(na: i32, sc: usize): i32 {
  const act = sc, actw = sc + lay(LAY_OFF_ACTW);
  const cb = sc + lay(LAY_OFF_CLASS);
  const dword = cb + CB_WORD, dcount = cb + CB_COUNT;
  const dnext = cb + CB_NEXT, dclass = cb + CB_CLASS, start = cb + CB_START, slot = cb + CB_SLOT;
  const members = slot + <usize>lay(LAY_OFF_ACTW);
  const mask = stepMask();
  const nd = wordIds(na, sc);
  // The words worth a class, and their members' places.
  const cap = <i32>lay(LAY_CLASS_CAP);
  let nc: i32 = 0, m: i32 = 0;
  for (let d = 0; d < nd; d++) {
    const n = <i32>load<u32>(dcount + (<usize>d << 2));
    const e = listEntries(load<u32>(dword + (<usize>d << 2)), mask);
    if (n >= 2 && n * e > n + e && nc < cap) {
      store<i32>(dnext + (<usize>d << 2), m);
      store<i32>(dclass + (<usize>d << 2), nc);
      store<u32>(start + (<usize>nc << 2), <u32>m);
      m += n;
      nc++;
    } else {
      store<i32>(dnext + (<usize>d << 2), -1);
    }
  }
  if (nc == 0) return na;
  store<u32>(start + (<usize>nc << 2), <u32>m);
  // Members out, single inputs compacted in place, then one listed input per class.
  let j: i32 = 0;
  for (let a = 0; a < na; a++) {
    const d = load<i32>(slot + (<usize>a << 2));
    const at = d >= 0 ? load<i32>(dnext + (<usize>d << 2)) : -1;
    if (at >= 0) {
      store<u32>(members + (<usize>at << 2), load<u32>(act + (<usize>a << 2)));
      store<i32>(dnext + (<usize>d << 2), at + 1);
    } else {
      store<u32>(act + (<usize>j << 2), load<u32>(act + (<usize>a << 2)));
      store<u32>(actw + (<usize>j << 2), load<u32>(actw + (<usize>a << 2)));
      j++;
    }
  }
  const first = <u32>(panels(1) * size(0));
  for (let d = 0; d < nd; d++) {
    if (load<i32>(dnext + (<usize>d << 2)) < 0) continue;
    store<u32>(act + (<usize>j << 2), first + <u32>load<i32>(dclass + (<usize>d << 2)));
    store<u32>(actw + (<usize>j << 2), load<u32>(dword + (<usize>d << 2)));
    j++;
  }
  // act no longer lists layer 1's active inputs (listedInputs).
  unlistInputs(sc);
  store<i32>(sc + lay(LAY_OFF_MISC) + MISC_CLASSES, nc);
  return j;
}

/**
 * The class rows of layer 1's panel p of np (see the top of this file) for the classes that
 * groupInputs left in scratch area `owner`: row panels(1)·N_0 + c of the panel is the sum of the
 * rows of class c's members, 4 lanes at a time (exact: any partial sum of a layer's rows fits an
 * i32, as a step's current does).
 */
export function classRows(p: i32, np: i32, owner: usize): void {
  const nc = load<i32>(owner + lay(LAY_OFF_MISC) + MISC_CLASSES);
  if (nc == 0) return;
  const cb = owner + lay(LAY_OFF_CLASS);
  const start = cb + CB_START, members = cb + CB_SLOT + <usize>lay(LAY_OFF_ACTW);
  // Row i of the panel (its lanes [a, a + rb / 4)) starts at panelBase + i·rb + 4a.
  const rb = panelRowBytes(1, p, np);
  const base = panelBase(lay(LAY_FWD + 1), 1, p, np) + (<usize>laneStart(stride(1), p, np) << 2);
  const first = <usize>(panels(1) * size(0));
  for (let c = 0; c < nc; c++) {
    const m0 = <i32>load<u32>(start + (<usize>c << 2)), m1 = <i32>load<u32>(start + (<usize>(c + 1) << 2));
    const dst = base + (first + <usize>c) * rb;
    const r0 = base + <usize>load<u32>(members + (<usize>m0 << 2)) * rb;
    let o: usize = 0;
    // 128 bytes at a time in 8 registers, then the 16-byte tail.
    for (; o + 128 <= rb; o += 128) {
      const q = r0 + o;
      let a0 = v128.load(q), a1 = v128.load(q, 16), a2 = v128.load(q, 32), a3 = v128.load(q, 48);
      let a4 = v128.load(q, 64), a5 = v128.load(q, 80), a6 = v128.load(q, 96), a7 = v128.load(q, 112);
      for (let m = m0 + 1; m < m1; m++) {
        const r = base + <usize>load<u32>(members + (<usize>m << 2)) * rb + o;
        a0 = i32x4.add(a0, v128.load(r));
        a1 = i32x4.add(a1, v128.load(r, 16));
        a2 = i32x4.add(a2, v128.load(r, 32));
        a3 = i32x4.add(a3, v128.load(r, 48));
        a4 = i32x4.add(a4, v128.load(r, 64));
        a5 = i32x4.add(a5, v128.load(r, 80));
        a6 = i32x4.add(a6, v128.load(r, 96));
        a7 = i32x4.add(a7, v128.load(r, 112));
      }
      const z = dst + o;
      v128.store(z, a0);
      v128.store(z, a1, 16);
      v128.store(z, a2, 32);
      v128.store(z, a3, 48);
      v128.store(z, a4, 64);
      v128.store(z, a5, 80);
      v128.store(z, a6, 96);
      v128.store(z, a7, 112);
    }
    for (; o < rb; o += 16) {
      let a = v128.load(r0 + o);
      for (let m = m0 + 1; m < m1; m++) {
        a = i32x4.add(a, v128.load(base + <usize>load<u32>(members + (<usize>m << 2)) * rb + o));
      }
      v128.store(dst + o, a);
    }
  }
}

/**
 * Takes the next unit of a panel from a claim word that packs (units taken from the front, units
 * taken from the back): from the front (its owner) or the back (the other thread). Returns the
 * unit, or −1 when all `units` are taken.
 */
// @ts-ignore: decorator
@inline export function takeUnit(claim: usize, units: i32, back: bool): i32 {
  while (true) {
    const v = atomic.load<i32>(claim);
    const lo = v & 0xffff, hi = v >>> 16;
    if (lo + hi >= units) return -1;
    if (atomic.cmpxchg<i32>(claim, v, back ? v + 0x10000 : v + 1) == v) return back ? units - 1 - hi : lo;
  }
}

/**
 * Layer l's forward pass over all T steps for the neurons of weight panel p of np (see panels
 * in layout.ts; p = 0 of 1: all of them): words[l] from words[l−1] and fwd[l]. `sc` is the
 * calling thread's scratch area. The panel's lanes go in units of 32 neurons (the last unit: the
 * 4-lane groups left). With `claim` ≠ 0 (threaded build, np = 2, panels of equal width, so that
 * their rows have the same offsets and one set of lists serves both): the two claim words at
 * `claim` (panel 0, panel 1) hand out the units; a thread takes its own panel's from the front,
 * then the other panel's from the back, so a thread on a faster core does more of them. Every
 * unit is computed the same way whoever takes it, so the words are the same. With `lists` ≠ 0,
 * the step lists are not built but read from the list area there (inputLists of this panel, or of
 * one with rows of the same width, by any thread). With `acc` ≠ 0 (l = L − 1, the output layer
 * by accumulation: outputAccumulates), each unit's words add their output currents to the rows at `acc`
 * (outputAccumulate), zeroed here first: the calling thread's part of outputFinish's sums.
 */
export function forwardLayerSimd(
  l: i32, train: bool, p: i32, np: i32, sc: usize, claim: usize = 0, lists: usize = 0,
  acc: usize = 0,
): void {
  const T = cfg(CFG_T);
  const d = cfg(CFG_D);
  if (acc != 0) memory.fill(acc, 0, <usize>T * (<usize>stride(l + 1) << 2));
  const P = stride(l);
  const j0 = laneStart(P, p, np), j1 = laneStart(P, p + 1, np);
  if (j0 == j1) return;
  const ls = sc + lay(LAY_OFF_LIST);
  if (lists == 0) {
    inputLists(l, panelRowBytes(l, p, np), sc);
    lists = ls;
  }
  // Layer 1's class rows of this panel, from the classes of the area that built the lists.
  const owner = lists - lay(LAY_OFF_LIST);
  const classes = l == 1 && load<i32>(owner + lay(LAY_OFF_MISC) + MISC_CLASSES) > 0;
  if (classes) classRows(p, np, owner);
  const vthr = i32x4.splat(cfg(train ? CFG_THR_TRAIN + l : CFG_THR_EVAL + l));
  const fwd = panelBase(lay(LAY_FWD + l), l, p, np), keep = lay(LAY_KEEP + l), out = lay(LAY_WORDS + l);
  const units = (j1 - j0 + 31) >> 5;
  let sat: i32 = 0;
  if (ASC_FEATURE_THREADS && claim != 0) {
    const q = 1 - p;
    const own = claim + <usize>p * CLAIM_PANEL_BYTES, other = claim + <usize>q * CLAIM_PANEL_BYTES;
    // The other thread takes this panel's units only once its class rows are done: it waits for
    // this word to hold the barrier generation of this phase (the same for both threads here, and
    // new in every step).
    const gen = atomic.load<i32>(cfgBase() + (<usize>CFG_BAR_GEN << 2));
    if (classes) atomic.store<i32>(sc + lay(LAY_OFF_MISC) + MISC_CLASS_READY, gen);
    for (let u = takeUnit(own, units, false); u >= 0; u = takeUnit(own, units, false)) {
      sat += forwardUnit(fwd, ls, lists, T, d, vthr, keep, out, j0, j1, u, acc);
    }
    if (classes) {
      // Set before the other thread's first unit, so this hardly ever waits: it polls, and sleeps
      // 20 µs at a time should the other thread have lost its core.
      const ready = scratch(q) + lay(LAY_OFF_MISC) + MISC_CLASS_READY;
      let polls = 0;
      for (let v = atomic.load<i32>(ready); v != gen; v = atomic.load<i32>(ready)) {
        if (++polls > 1000) atomic.wait<i32>(ready, v, 20000);
      }
    }
    const fq = panelBase(lay(LAY_FWD + l), l, q, np);
    const k0 = laneStart(P, q, np), k1 = laneStart(P, q + 1, np);
    for (let u = takeUnit(other, units, true); u >= 0; u = takeUnit(other, units, true)) {
      sat += forwardUnit(fq, ls, lists, T, d, vthr, keep, out, k0, k1, u, acc);
    }
  } else {
    for (let u = 0; u < units; u++) sat += forwardUnit(fwd, ls, lists, T, d, vthr, keep, out, j0, j1, u, acc);
  }
  if (sat != 0) addSaturations(sc, sat);
}

/**
 * Whether the output layer's forward pass goes by accumulation, on any number nt ≥ 1 of threads
 * (its currents added up by each thread's units of the layer below, outputAccumulate; then
 * outputFinish): a hidden layer below it, at most 16 lanes, and T rows of them fit in a thread's
 * row of the partial sums (LAY_PART: 8·P_max bytes). Otherwise thread 0 runs forwardLayerSimd.
 */
export function outputAccumulates(nt: i32): bool {
  const L = cfg(CFG_L), P = stride(L);
  if (nt < 1 || L < 2 || P > 16) return false;
  return cfg(CFG_T) * P * 4 <= partRowBytes();
}

/** Thread tid's row of LAY_PART, where its part of the output currents goes (outputAccumulates). */
export function outputPart(tid: i32): usize {
  return lay(LAY_PART) + <usize>tid * <usize>partRowBytes();
}

/** Bytes of a thread's row of LAY_PART: 8·P_max. */
// @ts-ignore: decorator
@inline function partRowBytes(): i32 {
  let pmax = 0;
  for (let l = 0; l <= cfg(CFG_L); l++) pmax = max(pmax, stride(l));
  return pmax * 8;
}

/**
 * After the last hidden layer's forward pass with its output currents (outputAccumulate) on
 * threads 0..nt−1 and a barrier: the output layer's membranes and spike
 * words from the sums of their currents (the same integer sums as forwardLayerSimd's, so the same
 * words). `sc` is the calling thread's scratch area.
 */
export function outputFinish(train: bool, nt: i32, sc: usize): void {
  const L = cfg(CFG_L), T = cfg(CFG_T), d = cfg(CFG_D), P = stride(L);
  const vthr = i32x4.splat(cfg(train ? CFG_THR_TRAIN + L : CFG_THR_EVAL + L));
  const keep = lay(LAY_KEEP + L), out = lay(LAY_WORDS + L), ls = sc + lay(LAY_OFF_LIST);
  const part = lay(LAY_PART), rowBytes = <usize>partRowBytes();
  const bytes = <usize>P << 2;
  memory.fill(ls, 0, bytes);
  memory.fill(ls + LS_W, 0, bytes);
  let sat: i32 = 0;
  for (let t = 0; t < T; t++) {
    const bit = i32x4.splat(1 << t);
    for (let o: usize = 0; o < bytes; o += 16) {
      const at = part + <usize>t * bytes + o;
      let c = v128.load(at);
      for (let q = 1; q < nt; q++) c = i32x4.add(c, v128.load(at + <usize>q * rowBytes));
      sat += membraneStep(ls + o, c, d, vthr, v128.load(keep + o), bit);
    }
  }
  memory.copy(out, ls + LS_W, bytes);
  if (sat != 0) addSaturations(sc, sat);
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
