/**
 * Test helpers (internal): compare the integer kernels with the float model and the golden file.
 *
 * Spike words: u32, bit t = fired in step t (the kernels' layout). Golden spike tensors are
 * `(T+1) × n` u8 rows: the input layer's row t = step t, a linear layer's row t+1 = the spike it
 * computed in step t. Weights are `out × in` row-major floats unless said otherwise.
 *
 * @module
 */

/** A `(T+1) × n` golden spike tensor as words; `rowShift` 0 for the input layer, 1 otherwise. */
export function wordsFromRows(
  rows: Uint8Array,
  n: number,
  T: number,
  rowShift: 0 | 1,
): Uint32Array {
  const out = new Uint32Array(n);
  for (let t = 0; t < T; t++) {
    const r = (t + rowShift) * n;
    for (let i = 0; i < n; i++) if (rows[r + i]) out[i] |= 1 << t;
  }
  return out;
}

/** What linear layer l reads: the predecessor's word, delayed one step for l > 1. */
export function readWords(words: ArrayLike<number>, n: number, l: number, T: number): Uint32Array {
  const mask = T === 32 ? 0xffffffff : 2 ** T - 1;
  const out = new Uint32Array(n);
  for (let i = 0; i < n; i++) out[i] = (l === 1 ? words[i] : (words[i] << 1) & mask) >>> 0;
  return out;
}

/** One differing spike bit. */
export interface BitDiff {
  /** Neuron index. */
  index: number;
  /** Step t (bit t of the word). */
  step: number;
  /** Our bit. */
  ours: number;
  /** The other side's bit. */
  theirs: number;
}

/** Every differing bit between two word arrays over the first `n` neurons and `T` steps. */
export function bitDiffs(
  ours: ArrayLike<number>,
  theirs: ArrayLike<number>,
  n: number,
  T: number,
): BitDiff[] {
  const out: BitDiff[] = [];
  for (let i = 0; i < n; i++) {
    const x = (ours[i] ^ theirs[i]) >>> 0;
    for (let t = 0; t < T; t++) {
      if ((x >>> t) & 1) {
        out.push({ index: i, step: t, ours: (ours[i] >>> t) & 1, theirs: (theirs[i] >>> t) & 1 });
      }
    }
  }
  return out;
}

/** Number of set bits of a u32. */
export function popcount32(x: number): number {
  x = x - ((x >>> 1) & 0x55555555);
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  x = (x + (x >>> 4)) & 0x0f0f0f0f;
  return Math.imul(x, 0x01010101) >>> 24;
}

/**
 * The real-valued (float64) membrane of a linear layer just before each threshold test, minus θ,
 * `T × nOut`, replayed along a given trajectory: the layer reads `inWords` and resets wherever
 * `outWords` says it fired. With the golden file's spikes as both, this is the reference's own
 * membrane (up to float32 rounding): a small |margin| is a rounding borderline. `w` is
 * `out × in` row-major (the golden weights, or the kernels' forward copy / 2^F).
 */
export function floatMargins(
  w: ArrayLike<number>,
  nIn: number,
  nOut: number,
  inWords: Uint32Array,
  outWords: Uint32Array,
  scale: number,
  lambda: number,
  theta: number,
  T: number,
): Float64Array {
  const margins = new Float64Array(T * nOut);
  for (let j = 0; j < nOut; j++) {
    let u = 0;
    for (let t = 0; t < T; t++) {
      let cur = 0;
      for (let i = 0; i < nIn; i++) if ((inWords[i] >>> t) & 1) cur += w[j * nIn + i];
      u = lambda * u + scale * cur;
      margins[t * nOut + j] = u - theta;
      if ((outWords[j] >>> t) & 1) u -= theta;
    }
  }
  return margins;
}

/** The kernels' forward copy (i32[nIn × P], Q.F) as real weights, `out × in` row-major. */
export function forwardAsFloat(
  fwd: Int32Array,
  P: number,
  nIn: number,
  nOut: number,
  F: number,
): Float64Array {
  const w = new Float64Array(nIn * nOut);
  for (let j = 0; j < nOut; j++) {
    for (let i = 0; i < nIn; i++) w[j * nIn + i] = fwd[i * P + j] / 2 ** F;
  }
  return w;
}

/**
 * Worst-case bounds, in threshold units, on how far the integer membrane (scaled back by
 * 2^F·(1 − p)) can be from the real-valued one at step `t`, along a given trajectory:
 * - `weights`: weight rounding, master Q.20 then forward Q.F (≤ 2^−21 + 2^−(F+1) per weight),
 *   over every input read in steps k ≤ t, decayed by λ^(t−k) and scaled by s;
 * - `dynamics`: the ceiling decay u − (u >> d) = ⌈λu⌉ (< 1 unit = s·2^−F per step) and the
 *   rounding of the threshold θ·(1 − p)·2^F to an integer (at every reset and at the test).
 * `thrUnits` is the kernels' integer threshold, `outWord` the trajectory's spikes of the neuron.
 */
export function membraneBounds(
  inWords: Uint32Array,
  nIn: number,
  outWord: number,
  t: number,
  F: number,
  scale: number,
  lambda: number,
  theta: number,
  thrUnits: number,
): { weights: number; dynamics: number } {
  const thrErr = Math.abs(thrUnits * scale / 2 ** F - theta);
  let weights = 0, dynamics = thrErr;
  for (let k = 0; k <= t; k++) {
    let n = 0;
    for (let i = 0; i < nIn; i++) n += (inWords[i] >>> k) & 1;
    const decay = lambda ** (t - k);
    weights += decay * scale * n * (2 ** -21 + 2 ** -(F + 1));
    dynamics += decay * scale * 2 ** -F;
    if (k < t && (outWord >>> k) & 1) dynamics += decay * thrErr;
  }
  return { weights, dynamics };
}

/**
 * The integer membrane of a linear layer (the kernels' arithmetic: u ← u − (u >> d), u += Σ fwd)
 * minus its threshold, `T × nOut`, along a given trajectory as in {@linkcode floatMargins}.
 * `fwd` is the kernels' forward copy, i32[nIn × P] with row i = input i.
 */
export function intMargins(
  fwd: Int32Array,
  P: number,
  nIn: number,
  nOut: number,
  inWords: Uint32Array,
  outWords: Uint32Array,
  thr: number,
  d: number,
  T: number,
): Float64Array {
  const margins = new Float64Array(T * nOut);
  for (let j = 0; j < nOut; j++) {
    let u = 0;
    for (let t = 0; t < T; t++) {
      let cur = 0;
      for (let i = 0; i < nIn; i++) if ((inWords[i] >>> t) & 1) cur += fwd[i * P + j];
      u = u - (u >> d) + cur;
      margins[t * nOut + j] = u - thr;
      if ((outWords[j] >>> t) & 1) u -= thr;
    }
  }
  return margins;
}

/**
 * The algorithm page's backward sum S_i = Σ_j W[j,i]·err_j·sgn_j of a linear layer (float64),
 * from its neurons' words, desires (bit 0 desired, bit 1 direction) and keep masks (nonzero kept).
 */
export function desireSums(
  w: Float32Array,
  nIn: number,
  nOut: number,
  words: ArrayLike<number>,
  desire: ArrayLike<number>,
  keep: ArrayLike<number>,
  n: number,
): Float64Array {
  const s = new Float64Array(nIn);
  for (let j = 0; j < nOut; j++) {
    if (!(desire[j] & 1) || !keep[j]) continue;
    const dir = (desire[j] >> 1) & 1;
    const err = Math.abs(dir - popcount32(words[j]) / n);
    const g = dir ? err : -err;
    for (let i = 0; i < nIn; i++) s[i] += w[j * nIn + i] * g;
  }
  return s;
}

/** Golden `[n, 2]` desire rows as the kernels' i32 form (bit 0 desired, bit 1 direction). */
export function desireFromRows(rows: Uint8Array, n: number): Int32Array {
  const out = new Int32Array(n);
  for (let j = 0; j < n; j++) out[j] = (rows[2 * j] ? 1 : 0) | (rows[2 * j + 1] ? 2 : 0);
  return out;
}
