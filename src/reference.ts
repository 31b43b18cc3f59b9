/**
 * Scalar integer reference of every kernel and of one whole training step (internal).
 *
 * The plain, readable statement of what desire.wasm computes: one loop per formula, no SIMD,
 * no blocking, BigInt where a value can exceed 2^53. The SIMD kernels must match it bit for bit
 * (tests/kernels_test.ts). Shapes and units are those of the configuration block
 * (assembly/layout.ts): for linear layer l with nIn = N[l−1] inputs and stride P = P[l],
 * `master[l]` and `fwd[l]` are i32[nIn × P] with row i = the weights from input i
 * (Q11.20 and Q.F[l]); `words[l]` u32[P]; `keep[l]` i32[P] (−1 kept); `desire[l]` i32[P]
 * (bit 0 desired, bit 1 direction).
 *
 * @module
 */
import { type IntParams, MASTER_FRAC, WMAX } from "./params.ts";
import { drawBig, sampleKeyBig, STREAM_ROUND } from "./rng.ts";

const I32_MAX = 2 ** 31 - 1;
const I32_MIN = -(2 ** 31);

/** The scalar integer reference network. */
export class ReferenceNet {
  /** Integer parameters. */
  readonly p: IntParams;
  /** Run seed. */
  readonly seed: number;
  /** Master weights per linear layer (index 0 unused). */
  readonly master: Int32Array[] = [new Int32Array(0)];
  /** Forward weights per linear layer (index 0 unused). */
  readonly fwd: Int32Array[] = [new Int32Array(0)];
  /** Spike words per layer 0..L. */
  readonly words: Uint32Array[] = [];
  /** Keep masks per layer 0..L. */
  readonly keep: Int32Array[] = [];
  /** Desire per layer (index 0 unused). */
  readonly desire: Int32Array[] = [new Int32Array(0)];
  /** Output spike counts. */
  readonly counts: Int32Array;
  /** Learning rate mantissa and shift. */
  rate = { mant: 0, shift: 0 };
  /** Saturation events (membrane lanes and clamped weights). */
  saturations = 0;
  #key = 0n;

  constructor(p: IntParams, seed: number) {
    this.p = p;
    this.seed = seed >>> 0;
    for (let l = 0; l <= p.L; l++) {
      this.words.push(new Uint32Array(p.strides[l]));
      this.keep.push(new Int32Array(p.strides[l]));
      if (l >= 1) {
        this.master.push(new Int32Array(p.sizes[l - 1] * p.strides[l]));
        this.fwd.push(new Int32Array(p.sizes[l - 1] * p.strides[l]));
        this.desire.push(new Int32Array(p.strides[l]));
      }
    }
    this.counts = new Int32Array(p.sizes[p.L]);
  }

  /** Sets the per-sample random key. */
  beginSample(epoch: number, index: number): void {
    this.#key = sampleKeyBig(this.seed, epoch, index);
  }

  /** Keep masks: seeded dropout of layers 0..L−1 while training; all kept otherwise. */
  dropoutMasks(train: boolean): void {
    const { L, sizes, drop } = this.p;
    for (let l = 0; l <= L; l++) {
      const keep = this.keep[l];
      keep.fill(0);
      for (let j = 0; j < sizes[l]; j++) {
        let kept = true;
        if (train && l < L && drop[l] !== 0) {
          const r = Number(drawBig(this.#key, l, j) >> 32n);
          kept = r >= drop[l];
        }
        keep[j] = kept ? -1 : 0;
      }
    }
  }

  /** Input spike words from the image. */
  encode(image: Uint8Array): void {
    const w = this.words[0];
    w.fill(0);
    for (let i = 0; i < this.p.sizes[0]; i++) {
      w[i] = this.keep[0][i] !== 0 ? this.p.enc[image[i]] : 0;
    }
  }

  /** The word layer l reads from input i (with the one-step delay after the first layer). */
  inputWord(l: number, i: number): number {
    const mask = this.p.T === 32 ? 0xffffffff : 2 ** this.p.T - 1;
    const w = this.words[l - 1][i];
    return (l === 1 ? w : (w << 1) & mask) >>> 0;
  }

  /** Forward pass of linear layer l over all T steps. */
  forwardLayer(l: number, train: boolean): void {
    const { T, d, sizes, strides } = this.p;
    const nIn = sizes[l - 1], P = strides[l];
    const thr = train ? this.p.thrTrain[l] : this.p.thrEval[l];
    const fwd = this.fwd[l];
    const out = this.words[l];
    const b = Array.from({ length: nIn }, (_, i) => this.inputWord(l, i));
    for (let j = 0; j < P; j++) {
      let u = 0;
      let word = 0;
      for (let t = 0; t < T; t++) {
        let current = 0;
        for (let i = 0; i < nIn; i++) {
          if ((b[i] >>> t) & 1) current += fwd[i * P + j];
        }
        u = u - (u >> d);
        let r = u + current;
        if (r > I32_MAX || r < I32_MIN) {
          this.saturations++;
          r = u >= 0 ? I32_MAX : I32_MIN;
        }
        if (this.keep[l][j] !== 0 && r >= thr) {
          word |= 1 << t;
          r -= thr;
        }
        u = r;
      }
      out[j] = word >>> 0;
    }
  }

  /** Output counts; returns the predicted class or −1 on a tie for the top count. */
  predict(): number {
    const { L } = this.p;
    let best = -1, bestCount = -1, tie = false;
    for (let j = 0; j < this.counts.length; j++) {
      const c = popcount(this.words[L][j]);
      this.counts[j] = c;
      if (c > bestCount) {
        bestCount = c;
        best = j;
        tie = false;
      } else if (c === bestCount) tie = true;
    }
    return tie ? -1 : best;
  }

  /** Output desire from the counts and the label. */
  desireOutput(label: number): void {
    const { L } = this.p;
    const des = this.desire[L];
    des.fill(0);
    for (let j = 0; j < this.counts.length; j++) {
      const c = this.counts[j];
      des[j] = j === label ? this.p.outDT[c] | 2 : this.p.outDN[c];
    }
  }

  /**
   * Backward pass of layer l ≥ 2: the desire of layer l − 1. With `needed`, only where an update
   * reads it: a training step computes the first hidden layer's desire (l = 2) only for neurons
   * that fired and were kept, the only ones its update touches; 0 elsewhere.
   */
  backwardLayer(l: number, needed = false): void {
    const { n, sizes, strides } = this.p;
    const nIn = sizes[l - 1], P = strides[l];
    const k = new Array<number>(P).fill(0);
    for (let j = 0; j < P; j++) {
      const dj = this.desire[l][j];
      if ((dj & 1) && this.keep[l][j] !== 0) {
        const c = popcount(this.words[l][j]);
        k[j] = dj & 2 ? Math.abs(n - c) : -c;
      }
    }
    const out = this.desire[l - 1];
    out.fill(0);
    for (let i = 0; i < nIn; i++) {
      if (needed && (this.words[l - 1][i] === 0 || this.keep[l - 1][i] === 0)) continue;
      let s = 0; // exact: |s| < 2^53
      for (let j = 0; j < P; j++) s += this.fwd[l][i * P + j] * k[j];
      out[i] = (Math.abs(s) >= this.p.thrHid[l] ? 1 : 0) | (s > 0 ? 2 : 0);
    }
  }

  /** Update rows U[t][j] of layer l (Q11.20), BigInt reverse traces, stochastic rounding. */
  updateRows(l: number): Int32Array[] {
    const { T, d, sizes, strides } = this.p;
    const P = strides[l];
    const rows = Array.from({ length: T }, () => new Int32Array(P));
    const { mant, shift } = this.rate;
    if (mant === 0 || shift < 1 || shift > 62) return rows;
    const lam = (1n << BigInt(d)) - 1n;
    const half = d > 0 ? 1n << BigInt(d - 1) : 0n;
    const one = 1n << 24n;
    for (let j = 0; j < sizes[l]; j++) {
      const dj = this.desire[l][j];
      const s = this.words[l][j];
      if (!(dj & 1) || this.keep[l][j] === 0 || s === 0) continue;
      const sign = dj & 2 ? 1 : -1;
      let g = 0n;
      for (let t = T - 1; t >= 0; t--) {
        g = ((g * lam + half) >> BigInt(d)) + ((s >>> t) & 1 ? one : 0n);
        if (g === 0n) continue;
        const r = drawBig(this.#key, STREAM_ROUND + l, BigInt(t * P + j)) >> BigInt(64 - shift);
        const v = Number((g * BigInt(mant) + r) >> BigInt(shift));
        rows[t][j] = sign * v;
      }
    }
    return rows;
  }

  /** STDP update of layer l: master += Σ_{s ∈ b_i} U[s], clamped; forward copy rewritten. */
  updateLayer(l: number): void {
    const { T, sizes, strides, frac } = this.p;
    const nIn = sizes[l - 1], P = strides[l];
    const rows = this.updateRows(l);
    const fsh = MASTER_FRAC - frac[l];
    for (let i = 0; i < nIn; i++) {
      const b = this.inputWord(l, i);
      if (b === 0) continue;
      for (let j = 0; j < P; j++) {
        let sum = 0;
        for (let t = 0; t < T; t++) if ((b >>> t) & 1) sum += rows[t][j];
        if (sum === 0) continue;
        let w = this.master[l][i * P + j] + sum;
        if (w > WMAX || w < -WMAX) {
          this.saturations++;
          w = w > WMAX ? WMAX : -WMAX;
        }
        this.master[l][i * P + j] = w;
        this.fwd[l][i * P + j] = (w + (1 << (fsh - 1))) >> fsh;
      }
    }
  }

  /** Clamps the master weights of layer l and rewrites its forward copy. */
  syncForward(l: number): void {
    const fsh = MASTER_FRAC - this.p.frac[l];
    const m = this.master[l];
    for (let k = 0; k < m.length; k++) {
      const w = Math.max(-WMAX, Math.min(WMAX, m[k]));
      m[k] = w;
      this.fwd[l][k] = (w + (1 << (fsh - 1))) >> fsh;
    }
  }

  /** One whole training step; returns the prediction made during it. */
  trainSample(image: Uint8Array, label: number, epoch: number, index: number): number {
    const { L } = this.p;
    this.beginSample(epoch, index);
    this.dropoutMasks(true);
    this.encode(image);
    for (let l = 1; l <= L; l++) this.forwardLayer(l, true);
    const predicted = this.predict();
    this.desireOutput(label);
    for (let l = L; l >= 2; l--) this.backwardLayer(l, l === 2);
    for (let l = 1; l <= L; l++) this.updateLayer(l);
    return predicted;
  }

  /** Evaluation forward pass; returns the class or −1 on a tie. */
  inferSample(image: Uint8Array): number {
    this.dropoutMasks(false);
    this.encode(image);
    for (let l = 1; l <= this.p.L; l++) this.forwardLayer(l, false);
    return this.predict();
  }
}

/** Number of set bits of a u32. */
export function popcount(x: number): number {
  let c = 0;
  for (x >>>= 0; x !== 0; x = (x & (x - 1)) >>> 0) c++;
  return c;
}
