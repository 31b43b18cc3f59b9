// Network layout in linear memory: the configuration block the host writes, the
// layout table that init() derives from it, and small addressing helpers.
//
// Everything lives at fixed offsets from the start of the heap (no allocator,
// no globals holding state), so a threaded build can share one memory.

/** Most linear layers a network may have (14 hidden layers + output). */
export const MAX_LAYERS: i32 = 15;

/** Fixed-point fraction bits of the master weights (Q11.20 in an i32). */
export const MASTER_FRAC: i32 = 20;
/** Master weights are clamped to ±WMAX (|w| ≤ 256 in threshold units). */
export const WMAX: i32 = 1 << 28;
/** Fraction bits of the reverse traces G used by the update (Q.24). */
export const G_FRAC: i32 = 24;

// ---- configuration block (i32 words unless noted), written by the host ----
export const CFG_T: i32 = 0; //          time steps T, 1..32
export const CFG_D: i32 = 1; //          decay exponent d, 0..30 (λ = 1 − 2^−d)
export const CFG_N: i32 = 2; //          target count n = T − m, 1..T
export const CFG_L: i32 = 3; //          number of linear layers L, 1..15
export const CFG_SEED: i32 = 4; //       random seed (u32)
export const CFG_LR_MANT: i32 = 5; //    learning rate η = mant · 2^−(shift − 4), mant < 2^24
export const CFG_LR_SHIFT: i32 = 6; //   see above; 0 with mant 0 = no learning
export const CFG_SAT: i32 = 7; //        saturation counter (membrane adds and weight clamps)
export const CFG_SIZES: i32 = 8; //      N[0..L] at words 8..23 (N[0] = inputs)
export const CFG_F: i32 = 24; //         F[l] at word 24 + l: forward fraction bits of layer l
export const CFG_THR_TRAIN: i32 = 40; // θ of layer l while training (× (1 − p_prev)), Q.F[l]
export const CFG_THR_EVAL: i32 = 56; //  θ of layer l at evaluation, Q.F[l]
export const CFG_THR_HID: i32 = 72; //   ⌈δ_hid · n · 2^F[l]⌉: desire threshold on n·S in layer l's units
export const CFG_DROP: i32 = 88; //      dropout threshold of layer l's neurons (u32): drop iff rand32 < it
export const CFG_KEY_LO: i32 = 104; //   current sample's random key (u64, two words)
export const CFG_KEY_HI: i32 = 105;
export const CFG_STATUS: i32 = 106; //   1 after a successful init()
export const CFG_SHAPE_HASH: i32 = 107; // hash of the words init() laid memory out by (see shapeHash)
export const CFG_THREADS: i32 = 108; //  threads sharing the memory (threaded build), 0 or 1 otherwise
export const CFG_GO: i32 = 109; //       sample generation: the host bumps it to start the workers
export const CFG_STOP: i32 = 110; //     non-zero: workers return from workerLoop
export const CFG_READY: i32 = 111; //    workers waiting in workerLoop
export const CFG_BAR_COUNT: i32 = 112; // barrier: threads arrived
export const CFG_SLEEPERS: i32 = 113; // threads asleep in atomic.wait (threads.ts): while 0, no notify is needed
export const CFG_BAR_GEN: i32 = 116; //  barrier: generation
export const CFG_ARG_MODE: i32 = 120; // runSample arguments: 1 train, 0 infer
export const CFG_ARG_LABEL: i32 = 121;
export const CFG_ARG_EPOCH: i32 = 122;
export const CFG_ARG_INDEX: i32 = 123;
export const CFG_RESULT: i32 = 124; //   runSample result (prediction)
export const CFG_INFER_ONLY: i32 = 125; // non-zero: inference only (no master weights, no training)
export const CFG_SPINS: i32 = 126; //    threaded build: polls before a waiting thread sleeps (0: the default)
export const CFG_CLAIM: i32 = 160; //   + l + 16p (l 1..15, p 0..1): threaded build, 2 threads: claims of panel p's forward units in layer l, then of its backward units; l = 0: of its update units of the largest hidden layer (module-written; each panel's in a cache line of its own: see claimWord)
/** Byte offsets inside the block. */
export const CFG_OUT_DN: i32 = 512; //   u8[33]: desired[c] for a non-target output neuron with count c
export const CFG_OUT_DT: i32 = 576; //   u8[33]: desired[c] for the target output neuron with count c
export const CFG_ENC: i32 = 1024; //     u32[256]: input spike word of each pixel value
export const CFG_BYTES: i32 = 2048;

// ---- layout table (i32 words after the configuration), written by init() ----
export const LAY_BASE: i32 = CFG_BYTES;
export const LAY_IMAGE: i32 = 0; //      u8[N0]
export const LAY_CUR: i32 = 1; //        T rows of LAY_UPD_ROW bytes: prefix sums of the update rows (stdp.ts)
export const LAY_UPD: i32 = 2; //        T rows of LAY_UPD_ROW bytes: per-step update rows U
export const LAY_OFF_KVEC: i32 = 3; //   offset in a thread area of i32[Pmax]: backward factors
export const LAY_THREAD_BASE: i32 = 4; // per-thread scratch areas, updateAreas(THREADS) of them; offset 0: u32[Pmax] active inputs
export const LAY_OFF_ACTW: i32 = 5; //   offset in a thread area of u32[Pmax]: active input words
export const LAY_COUNTS: i32 = 6; //     i32[P_L]: output spike counts
export const LAY_END: i32 = 7; //        first byte after the layout
export const LAY_OFF_GROUPS: i32 = 8; // offset in a thread area of u32[Pmax/4]: 4-lane groups a kernel visits
export const LAY_THREAD_BYTES: i32 = 9; // bytes of one thread area
export const LAY_STAGE: i32 = 11; //     inference-only layout: i32[max N_{l−1}·N_l] where the host writes weights to import
export const LAY_OFF_MISC: i32 = 10; //  offset in a thread area of the misc words (MISC_*)
export const LAY_OFF_LIST: i32 = 12; //  offset in a thread area of the forward pass's step lists (see forward.ts)
export const LAY_PART: i32 = 13; //     8·Pmax bytes per thread: the backward pass's partial sums of its panel (desire.ts), its part of the output layer's currents (forward.ts)
export const LAY_UPD_ROW: i32 = 14; //  bytes of a row of LAY_UPD and LAY_CUR: updateAreas(THREADS) regions of LAY_UPD_PART bytes
export const LAY_UPD_PART: i32 = 15; // bytes of thread p's region of those rows (at p × it): its lanes of any layer
// Byte offsets in a thread area's misc words (at LAY_OFF_MISC, 320 bytes):
export const MISC_PLUS: usize = 0; //     u32[32]: rows an update adds for one input (stdp.ts)
export const MISC_MINUS: usize = 128; //  u32[32]: rows it subtracts
export const MISC_SAT: usize = 256; //    i32: the thread's saturation counter
export const MISC_UPD_NG: usize = 260; // i32: groups listed by updatePrepare (stdp.ts)
export const MISC_UPD_ROWS: usize = 264; // u32: its mask of non-zero update rows
export const MISC_UPD_NA: usize = 268; // i32: its active inputs (0: nothing to apply)
export const MISC_UPD_READY: usize = 272; // i32: 1 once its update is prepared (threads.ts, 2 threads)
export const MISC_BWD_NG: usize = 276; // i32: the thread's backward factor groups (threads.ts)
export const MISC_BWD_READY: usize = 280; // i32: the layer they are ready for (0: none)
export const MISC_LISTED: usize = 284; // i32: l when the active inputs hold all of layer l's (forward.ts), else 0
export const MISC_LISTED_N: usize = 288; // i32: their number
export const MISC_CLASSES: usize = 292; // i32: classes of the first layer's inputs in the step lists built here (forward.ts)
export const MISC_CLASS_READY: usize = 296; // i32: with 2 threads, the barrier generation whose class rows of this thread's panel are done
export const LAY_WORDS: i32 = 16; //     + l (0..L): u32[P_l] spike words
export const LAY_KEEP: i32 = 32; //      + l (0..L): i32[P_l] keep masks (−1 kept, 0 dropped or padding)
export const LAY_MASTER: i32 = 48; //    + l (1..L): i32[N_{l−1} × P_l] master weights, Q11.20, row i = input i
export const LAY_FWD: i32 = 64; //       + l (1..L): i32[N_{l−1} × P_l] forward weights, Q.F[l]
export const LAY_DESIRE: i32 = 80; //    + l (1..L): i32[P_l] desire: bit 0 desired, bit 1 direction (fire)
export const LAY_CLASS_CAP: i32 = 96; // classes of layer 1's inputs with a row of their own after its forward weights (forward.ts; 0: none)
export const LAY_OFF_CLASS: i32 = 97; // offset in a thread area of its class block (forward.ts)
export const LAY_WORDS_N: i32 = 98;

/**
 * The configuration word of panel p's claims in layer l (2 threads; l = 0: the shared update's).
 * Each panel's words are in a 64-byte line of their own: a thread claims its own panel's units
 * without taking the line from the other core (only a thread that takes the other's units does).
 */
// @ts-ignore: decorator
@inline export function claimWord(l: i32, p: i32): i32 {
  return CFG_CLAIM + l + (p << 4);
}
/** Bytes from panel 0's claim word of a layer to panel 1's (see claimWord). */
export const CLAIM_PANEL_BYTES: usize = 64;

// @ts-ignore: decorator
@inline export function cfgBase(): usize {
  return (__heap_base + 63) & ~(<usize>63);
}
// @ts-ignore: decorator
@inline export function cfg(k: i32): i32 {
  return load<i32>(cfgBase() + (<usize>k << 2));
}
// @ts-ignore: decorator
@inline export function setCfg(k: i32, v: i32): void {
  store<i32>(cfgBase() + (<usize>k << 2), v);
}
// @ts-ignore: decorator
@inline export function lay(k: i32): usize {
  return <usize>load<u32>(cfgBase() + <usize>LAY_BASE + (<usize>k << 2));
}
// @ts-ignore: decorator
@inline export function setLay(k: i32, v: usize): void {
  store<u32>(cfgBase() + <usize>LAY_BASE + (<usize>k << 2), <u32>v);
}
/**
 * Hash of the configuration words the memory layout depends on (T, d, n, L, sizes, F).
 * init() stores it; every export checks it, so a host that changes them without calling
 * init() again gets an error code instead of kernels writing outside their buffers.
 */
export function shapeHash(): i32 {
  let h: u32 = 0x811c9dc5;
  for (let k = 0; k < CFG_THR_TRAIN; k++) {
    if (k >= 4 && k < CFG_SIZES) continue; // seed, learning rate, saturations may change
    h = (h ^ <u32>cfg(k)) * 0x01000193;
  }
  h = (h ^ <u32>max(1, cfg(CFG_THREADS))) * 0x01000193;
  h = (h ^ <u32>(cfg(CFG_INFER_ONLY) != 0)) * 0x01000193;
  return <i32>h;
}

/** Neurons of layer l (l = 0 is the input layer). */
// @ts-ignore: decorator
@inline export function size(l: i32): i32 {
  return cfg(CFG_SIZES + l);
}
/** Row stride of layer l: its size rounded up to the SIMD width (4 lanes). */
// @ts-ignore: decorator
@inline export function stride(l: i32): i32 {
  return (size(l) + 3) & ~3;
}
/** Mask of the T valid bits of a spike word. */
// @ts-ignore: decorator
@inline export function stepMask(): u32 {
  const t = cfg(CFG_T);
  return t >= 32 ? 0xffffffff : (<u32>1 << <u32>t) - 1;
}

/** Threads the layout was made for (at least 1). */
// @ts-ignore: decorator
@inline export function threads(): i32 {
  return max(1, cfg(CFG_THREADS));
}
/**
 * Scratch areas, and regions of the update rows, of a layout for nt threads: one per thread, and
 * with 2 threads (which share an update: threads.ts) a second one for each (thread tid's is
 * number nt + tid).
 */
// @ts-ignore: decorator
@inline export function updateAreas(nt: i32): i32 {
  return nt == 2 ? 4 : max(1, nt);
}
/** Scratch area of thread `tid` (or, from tid = threads() on, a thread's second area). */
// @ts-ignore: decorator
@inline export function scratch(tid: i32): usize {
  return lay(LAY_THREAD_BASE) + <usize>tid * lay(LAY_THREAD_BYTES);
}
/** First lane of thread `tid`'s share of P lanes (a multiple of 4). */
// @ts-ignore: decorator
@inline export function laneStart(P: i32, tid: i32, nt: i32): i32 {
  return <i32>(<i64>(P >> 2) * tid / nt) << 2;
}
/**
 * Weight panels. In the threaded layout (threads() > 1) every hidden layer's matrices (master
 * and forward weights, N_{l−1} rows of P_l lanes) are split by lanes into one panel per thread:
 * panel p holds the lanes [laneStart(P, p, n), laneStart(P, p + 1, n)) of every row, as a
 * row-major sub-matrix of its own, the panels one after the other. Thread p's forward pass and
 * update touch only its panel, so no cache line of the weights is shared between the cores.
 * Weight (i, j), j in panel p of width W_p from lane a_p, is at
 *   base + 4·(N_{l−1}·a_p + i·W_p + j − a_p) = panelBase(base, l, p, n) + i·4W_p + 4j.
 * With one panel (the portable build, 1 thread, and the output layer, which thread 0 runs
 * alone) that is base + 4·(i·P + j): rows of P lanes.
 */
// @ts-ignore: decorator
@inline export function panels(l: i32): i32 {
  return l < cfg(CFG_L) ? threads() : 1;
}
/** Panel p of n of layer l's matrix at `base`: the address of its weight (0, 0) (see panels). */
// @ts-ignore: decorator
@inline export function panelBase(base: usize, l: i32, p: i32, n: i32): usize {
  return base + ((<usize>(size(l - 1) - 1) * <usize>laneStart(stride(l), p, n)) << 2);
}
/** Bytes of a row of panel p of n of layer l (4 × its lanes). */
// @ts-ignore: decorator
@inline export function panelRowBytes(l: i32, p: i32, n: i32): usize {
  const P = stride(l);
  return <usize>(laneStart(P, p + 1, n) - laneStart(P, p, n)) << 2;
}
/** Address of weight (i, j) of layer l's matrix at `base` (any panel; see panels). */
export function weightAddress(base: usize, l: i32, i: i32, j: i32): usize {
  const n = panels(l), P = stride(l);
  let p = 0;
  while (p < n - 1 && laneStart(P, p + 1, n) <= j) p++;
  return panelBase(base, l, p, n) + <usize>i * panelRowBytes(l, p, n) + (<usize>j << 2);
}
/** First item of thread `tid`'s share of n items. */
// @ts-ignore: decorator
@inline export function itemStart(n: i32, tid: i32, nt: i32): i32 {
  return <i32>(<i64>n * tid / nt);
}
/** Adds to thread `tid`'s saturation counter. */
// @ts-ignore: decorator
@inline export function addSaturations(sc: usize, n: i32): void {
  const p = sc + lay(LAY_OFF_MISC) + MISC_SAT;
  store<i32>(p, load<i32>(p) + n);
}
/** Saturation events: the configuration word plus every thread's counter. */
export function totalSaturations(): i32 {
  let s = cfg(CFG_SAT);
  for (let t = 0; t < threads(); t++) s += load<i32>(scratch(t) + lay(LAY_OFF_MISC) + MISC_SAT);
  return s;
}
/** Resets every saturation counter. */
export function clearSaturations(): void {
  setCfg(CFG_SAT, 0);
  for (let t = 0; t < threads(); t++) store<i32>(scratch(t) + lay(LAY_OFF_MISC) + MISC_SAT, 0);
}

/** True when the layout is for inference only (no master weights). */
// @ts-ignore: decorator
@inline export function inferOnly(): bool {
  return cfg(CFG_INFER_ONLY) != 0;
}
