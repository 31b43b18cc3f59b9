// init(): checks the configuration block and lays the network out in memory.

import {
  CFG_BYTES, CFG_D, CFG_F, CFG_L, CFG_N, CFG_STATUS, CFG_T, CFG_THR_EVAL, CFG_THR_TRAIN,
  LAY_BASE, LAY_COUNTS, LAY_CUR, LAY_OFF_ACTW, LAY_OFF_GROUPS, LAY_OFF_KVEC, LAY_OFF_MISC, LAY_OFF_LIST,
  LAY_THREAD_BASE, LAY_THREAD_BYTES, CFG_THREADS, CFG_INFER_ONLY, LAY_STAGE, LAY_DESIRE, LAY_END, LAY_FWD, LAY_IMAGE,
  LAY_KEEP, LAY_MASTER, LAY_PART, LAY_UPD, LAY_UPD_PART, LAY_UPD_ROW, LAY_WORDS, LAY_WORDS_N, MAX_LAYERS, cfg, cfgBase, updateAreas,
  CFG_SHAPE_HASH, shapeHash, LAY_CLASS_CAP, LAY_OFF_CLASS, panels, panelRowBytes,
  setCfg, setLay, size, stride,
} from "./layout";
import { classBlockBytes, classCapacity } from "./forward";

/** Error codes of init(). */
export const ERR_TSTEPS: i32 = -1;
export const ERR_DECAY: i32 = -2;
export const ERR_TARGET: i32 = -3;
export const ERR_LAYERS: i32 = -4;
export const ERR_SIZE: i32 = -5;
export const ERR_FRAC: i32 = -6;
export const ERR_THRESHOLD: i32 = -7;
export const ERR_MEMORY: i32 = -8;
export const ERR_THREADS: i32 = -9;

// @ts-ignore: decorator
@inline function align64(p: u64): u64 {
  return (p + 63) & ~(<u64>63);
}

/** Lays out every buffer after the configuration block; grows memory. Returns 0 or an ERR_ code. */
export function initLayout(): i32 {
  setCfg(CFG_STATUS, 0);
  const T = cfg(CFG_T);
  if (T < 1 || T > 32) return ERR_TSTEPS;
  const d = cfg(CFG_D);
  if (d < 0 || d > 30) return ERR_DECAY;
  const n = cfg(CFG_N);
  if (n < 1 || n > T) return ERR_TARGET;
  const L = cfg(CFG_L);
  if (L < 1 || L > MAX_LAYERS) return ERR_LAYERS;
  let pmax: i32 = 4;
  for (let l = 0; l <= L; l++) {
    const s = size(l);
    if (s < 1 || s > (1 << 28)) return ERR_SIZE;
    const p = stride(l);
    if (p > pmax) pmax = p;
  }
  for (let l = 1; l <= L; l++) {
    const f = cfg(CFG_F + l);
    if (f < 1 || f > 16) return ERR_FRAC;
    // |w| ≤ 2^(F+8) in forward units; a current sums N_{l−1} of them.
    if (<u64>size(l - 1) << <u64>(f + 8) > <u64>0x7fffffff) return ERR_FRAC;
    const tt = cfg(CFG_THR_TRAIN + l), te = cfg(CFG_THR_EVAL + l);
    if (tt < 1 || te < 1 || tt > (1 << 30) || te > (1 << 30)) return ERR_THRESHOLD;
  }
  let p: u64 = <u64>cfgBase() + <u64>LAY_BASE + <u64>(LAY_WORDS_N << 2);
  p = align64(p);
  setLay(LAY_IMAGE, <usize>p);
  p = align64(p + <u64>stride(0));
  // One scratch area per thread: active inputs and words, groups, backward factors, misc.
  const nt = max(1, cfg(CFG_THREADS));
  if (nt > 64) return ERR_THREADS;
  // Update and prefix rows: one region per thread, wide enough for its lanes of any hidden layer
  // (laneStart gives a part at most ⌈(P/4)/nt⌉ groups) and for all of the output layer's (each
  // thread updates the output weights of its own inputs), so that a thread's update of one layer
  // never writes where another thread still updates the layer before (no barrier between them).
  // With 2 threads, each thread has two regions (and two scratch areas): the second for the
  // updates it makes while the first holds the update it shares (threads.ts, prepareShared).
  const areas = <u64>updateAreas(nt);
  const part = <u64>max(((pmax >> 2) + nt - 1) / nt, stride(L) >> 2) << 4;
  const row = part * areas;
  setLay(LAY_UPD_PART, <usize>part);
  setLay(LAY_UPD_ROW, <usize>row);
  setLay(LAY_CUR, <usize>p);
  p = align64(p + <u64>T * row);
  setLay(LAY_UPD, <usize>p);
  p = align64(p + <u64>T * row);
  const a4 = <u64>(pmax * 4 + 63) & ~(<u64>63);
  setLay(LAY_OFF_ACTW, <usize>a4);
  setLay(LAY_OFF_GROUPS, <usize>(2 * a4));
  setLay(LAY_OFF_KVEC, <usize>(3 * a4));
  setLay(LAY_OFF_MISC, <usize>(4 * a4));
  // The forward pass's step lists: 1280 bytes of state and bounds, then ≤ T·N_{l−1} entries.
  setLay(LAY_OFF_LIST, <usize>(4 * a4 + 320));
  const lb = 4 * a4 + 320 + 1280 + ((<u64>T * <u64>pmax * 4 + 63) & ~(<u64>63));
  // The class block (forward.ts: layer 1's inputs grouped by word).
  setLay(LAY_OFF_CLASS, <usize>lb);
  const tb = lb + <u64>classBlockBytes(<usize>a4);
  setLay(LAY_THREAD_BYTES, <usize>tb);
  setLay(LAY_THREAD_BASE, <usize>p);
  p = align64(p + tb * areas);
  setLay(LAY_PART, <usize>p);
  p = align64(p + <u64>nt * <u64>pmax * 8);
  setLay(LAY_COUNTS, <usize>p);
  p = align64(p + <u64>stride(L) * 4);
  let stage: u64 = 0;
  for (let l = 0; l <= L; l++) {
    setLay(LAY_WORDS + l, <usize>p);
    p = align64(p + <u64>stride(l) * 4);
    setLay(LAY_KEEP + l, <usize>p);
    p = align64(p + <u64>stride(l) * 4);
    if (l >= 1) {
      const w = <u64>size(l - 1) * <u64>stride(l) * 4;
      // Layer 1: the class rows follow its forward weights (forward.ts, classRows).
      let classes: u64 = 0;
      if (l == 1) {
        const cap = classCapacity();
        setLay(LAY_CLASS_CAP, <usize>cap);
        if (cap > 0) {
          const np = panels(1);
          classes = (<u64>(np - 1) * <u64>size(0) + <u64>cap) * <u64>panelRowBytes(1, 0, np);
        }
      }
      if (cfg(CFG_INFER_ONLY) == 0) {
        setLay(LAY_MASTER + l, <usize>p);
        p = align64(p + w);
      } else {
        setLay(LAY_MASTER + l, 0);
        const dense = <u64>size(l - 1) * <u64>size(l) * 4;
        if (dense > stage) stage = dense;
      }
      setLay(LAY_FWD + l, <usize>p);
      p = align64(p + w + classes);
      setLay(LAY_DESIRE + l, <usize>p);
      p = align64(p + <u64>stride(l) * 4);
    }
    if (p > <u64>0xffff0000) return ERR_MEMORY;
  }
  // Inference only: one staging buffer, as large as the largest layer's dense weights.
  setLay(LAY_STAGE, 0);
  if (stage > 0) {
    setLay(LAY_STAGE, <usize>p);
    p = align64(p + stage);
  }
  if (p > <u64>0xffff0000) return ERR_MEMORY;
  setLay(LAY_END, <usize>p);
  const need = <i32>((p + 0xffff) >> 16);
  const have = memory.size();
  if (need > have) {
    if (memory.grow(need - have) < 0) return ERR_MEMORY;
  }
  // Zero everything after the configuration block (weights, words, buffers). Pages that grow
  // just added are zero already: touching them would only cost time on a cold start.
  const start = <usize>cfgBase() + <usize>LAY_BASE + <usize>(LAY_WORDS_N << 2);
  const old = min(<u64>p, <u64>have << 16);
  if (old > <u64>start) memory.fill(start, 0, <usize>old - start);
  setCfg(CFG_SHAPE_HASH, shapeHash());
  setCfg(CFG_STATUS, 1);
  return 0;
}

/** Bytes of configuration block, for the host. */
export function configBytes(): i32 {
  return CFG_BYTES;
}
