// selftest(): a tiny built-in network, configured, initialised, trained and run entirely inside
// the module, folded into one 32-bit checksum. Every engine must return the same value
// (docs/ABI.md gives it); the host-side tests rebuild the same run through the ordinary ABI.
//
// Network: 16-12-8-4, T = 20, θ = 1, d = 2, m = 4 (n = 16), δ_hid = 0.05, δ_out = 0.3,
// dropout 1/8 on the inputs and 1/4 on the hidden layers, seed SELFTEST_SEED, η = 2^−8.
// The configuration block is derived here with the formulas of docs/ABI.md (those of
// src/params.ts): integers, f64 only where the formula has a real factor (exact here), and the
// input table in f32 exactly as the reference computes it. IEEE f32/f64 add, multiply, divide,
// compare, floor and ceil are deterministic in every WebAssembly engine.
//
// Weights (integers only): layer l's weight from input i to neuron j is
//   r = draw(sampleKey(seed, 0xffffffff, l), 128, j·N_{l−1} + i) >> 32  (a u32),
//   w = ((r · (2A_l + 1)) >> 32) − A_l   (uniform on [−A_l, A_l], Q11.20).
// Images (integers only): image s has label s mod 4; with r = draw(sampleKey(seed, 0xfffffffe, 0),
//   130, 16·s + i) >> 32, pixel i is 160 + (r mod 96) if i mod 4 = label, else r mod 64.
// Run: images 0..SELFTEST_TRAIN−1 through trainSample(label, 0, s), then the next SELFTEST_INFER
// images through inferSample(). Checksum: see selftestFold() and selftestFinish().

import {
  CFG_BYTES, CFG_D, CFG_DROP, CFG_ENC, CFG_F, CFG_L, CFG_LR_MANT, CFG_LR_SHIFT, CFG_N,
  CFG_OUT_DN, CFG_OUT_DT, CFG_SEED, CFG_SIZES, CFG_T, CFG_THR_EVAL, CFG_THR_HID, CFG_THR_TRAIN,
  LAY_COUNTS, LAY_FWD, LAY_IMAGE, LAY_MASTER, LAY_WORDS, totalSaturations, cfg, cfgBase, lay, setCfg, size,
  stride,
} from "./layout";
import { initLayout } from "./net";
import { syncForwardLayer } from "./stdp";
import { draw, mix64, sampleKey } from "./rng";

/** Training steps, then inference passes, of the self-test. */
export const SELFTEST_TRAIN: i32 = 12;
export const SELFTEST_INFER: i32 = 4;
/** Seed of the self-test network. */
export const SELFTEST_SEED: u32 = 0x5e1f7e57;
/** Random streams of the self-test's weights and images. */
const STREAM_INIT: u64 = 128;
const STREAM_IMAGE: u64 = 130;

// @ts-ignore: decorator
@inline function stSize(l: i32): i32 {
  return l == 0 ? 16 : l == 1 ? 12 : l == 2 ? 8 : 4;
}
/** Half-width A_l of layer l's uniform initial weights, Q11.20 (≈ 2.2·√(6/N_{l−1}) threshold units). */
// @ts-ignore: decorator
@inline function stHalfWidth(l: i32): i32 {
  return l == 1 ? 1400000 : l == 2 ? 1700000 : 2000000;
}

/** Writes the self-test's configuration block, calls init(), writes and syncs the weights. */
export function selftestSetup(): i32 {
  const base = cfgBase();
  memory.fill(base, 0, <usize>CFG_BYTES);
  const T: i32 = 20, m: i32 = 4, L: i32 = 3;
  const n = T - m;
  const theta: f64 = 1.0, dropIn: f64 = 0.125, dropHid: f64 = 0.25, desireHid: f64 = 0.05;
  setCfg(CFG_T, T);
  setCfg(CFG_D, 2);
  setCfg(CFG_N, n);
  setCfg(CFG_L, L);
  setCfg(CFG_SEED, <i32>SELFTEST_SEED);
  // η = 2^−8: mant = 2^23, shift = 35 (η = mant · 2^(4 − shift)).
  setCfg(CFG_LR_MANT, 1 << 23);
  setCfg(CFG_LR_SHIFT, 35);
  for (let l = 0; l <= L; l++) {
    setCfg(CFG_SIZES + l, stSize(l));
    const p = l == L ? 0.0 : l == 0 ? dropIn : dropHid;
    setCfg(CFG_DROP + l, <i32><u32>Math.min(4294967295.0, Math.round(p * 4294967296.0)));
  }
  for (let l = 1; l <= L; l++) {
    // F: the largest F ≤ 16 with N_{l−1} · 2^(F+8) < 2^31.
    let f: i32 = 16;
    while (f >= 1 && (<u64>stSize(l - 1) << <u64>(f + 8)) > <u64>0x7fffffff) f--;
    setCfg(CFG_F + l, f);
    const scale = <f64>(1 << f);
    const pPrev = l == 1 ? dropIn : dropHid;
    setCfg(CFG_THR_TRAIN + l, <i32>Math.max(1.0, Math.round(theta * (1.0 - pPrev) * scale)));
    setCfg(CFG_THR_EVAL + l, <i32>Math.max(1.0, Math.round(theta * scale)));
    setCfg(CFG_THR_HID + l, l >= 2 ? <i32>Math.ceil(desireHid * <f64>n * scale) : 0);
  }
  // Output desire tables: the reference's float32 comparisons e > δ_out and 1 − e > δ_out.
  const dOut: f32 = <f32>0.3;
  for (let k = 0; k <= 32; k++) {
    const e = <f32>(<f64>k / <f64>n);
    store<u8>(base + <usize>CFG_OUT_DN + <usize>k, e > dOut ? 1 : 0);
    store<u8>(base + <usize>CFG_OUT_DT + <usize>k, <f32>1.0 - e > dOut ? 1 : 0);
  }
  // Input table: u += byte/255 in float32, spike if u ≥ θ (then u −= θ).
  const th = <f32>theta;
  for (let b = 0; b < 256; b++) {
    const x = <f32>(<f64>b / 255.0);
    let u: f32 = 0;
    let w: u32 = 0;
    for (let t = 0; t < T; t++) {
      u = u + x;
      if (u >= th) {
        w |= <u32>1 << <u32>t;
        u = u - th;
      }
    }
    store<u32>(base + <usize>CFG_ENC + (<usize>b << 2), w);
  }
  const rc = initLayout();
  if (rc != 0) return rc;
  for (let l = 1; l <= L; l++) {
    const nIn = size(l - 1), nOut = size(l), P = stride(l);
    const key = sampleKey(SELFTEST_SEED, 0xffffffff, <u32>l);
    const a = <u64>stHalfWidth(l);
    const master = lay(LAY_MASTER + l);
    for (let j = 0; j < nOut; j++) {
      for (let i = 0; i < nIn; i++) {
        const r = draw(key, STREAM_INIT, <u64>(j * nIn + i)) >> 32;
        const w = <i32>((r * (2 * a + 1)) >> 32) - <i32>a;
        store<i32>(master + ((<usize>i * <usize>P + <usize>j) << 2), w);
      }
    }
    syncForwardLayer(l);
  }
  return 0;
}

/** Writes self-test image s at imagePtr(); returns its label. */
export function selftestImage(s: i32): i32 {
  const key = sampleKey(SELFTEST_SEED, 0xfffffffe, 0);
  const img = lay(LAY_IMAGE);
  const label = s & 3;
  for (let i = 0; i < 16; i++) {
    const r = <u32>(draw(key, STREAM_IMAGE, <u64>(16 * s + i)) >> 32);
    store<u8>(img + <usize>i, (i & 3) == label ? 160 + r % 96 : r % 64);
  }
  return label;
}

/** h' = mix64(h ^ v) + 0x9e3779b97f4a7c15, v a u32 (zero-extended). */
// Values from memory are loaded as u32, never as `<u64><u32>load<i32>`: binaryen 131's -O3
// turns that zero extension of a load into a sign-extending i64.load32_s (see the README's
// toolchain note); tests/hosts_test.ts recomputes this checksum on the host.
// @ts-ignore: decorator
@inline function fold(h: u64, v: u32): u64 {
  return mix64(h ^ <u64>v) + 0x9e3779b97f4a7c15;
}

/** Folds one step: its return value, the output counts, then the spike words of layers 0..L. */
export function selftestFold(h: u64, ret: i32): u64 {
  h = fold(h, <u32>ret);
  const L = cfg(CFG_L);
  const counts = lay(LAY_COUNTS);
  for (let j = 0; j < size(L); j++) h = fold(h, load<u32>(counts + (<usize>j << 2)));
  for (let l = 0; l <= L; l++) {
    const words = lay(LAY_WORDS + l);
    for (let j = 0; j < size(l); j++) h = fold(h, load<u32>(words + (<usize>j << 2)));
  }
  return h;
}

/**
 * Folds the master weights, then the forward weights, of layers 1..L (memory order, padding
 * included: N_{l−1} × P_l words each), then the saturation count; returns hi32 ^ lo32.
 */
export function selftestFinish(h: u64): i32 {
  const L = cfg(CFG_L);
  for (let k = 0; k < 2; k++) {
    for (let l = 1; l <= L; l++) {
      const w = lay((k == 0 ? LAY_MASTER : LAY_FWD) + l);
      const total = size(l - 1) * stride(l);
      for (let q = 0; q < total; q++) h = fold(h, load<u32>(w + (<usize>q << 2)));
    }
  }
  h = fold(h, <u32>totalSaturations());
  return <i32>(<u32>(h >> 32) ^ <u32>h);
}
