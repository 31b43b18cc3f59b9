/**
 * Counter-based randomness shared by the kernels, the references and the host.
 *
 * Every random number is a hash of (seed, epoch, sample, stream, index), never a state that
 * advances, so scalar, SIMD, threaded and resumed runs draw the same numbers:
 *
 * - `mix64(z)`: the splitmix64 finaliser;
 * - `sampleKey(seed, epoch, index) = mix64(mix64(seed << 32 | epoch) + index)`;
 * - `draw(key, stream, index) = mix64(key ^ (stream << 48) ^ index)`.
 *
 * Streams: `0..L−1` dropout of layer l, `64 + l` stochastic rounding of layer l's update,
 * `STREAM_INIT` weight initialisation, `STREAM_SHUFFLE` the epoch's sample order.
 *
 * Two implementations: {@linkcode mix64Big} (BigInt, the readable reference) and
 * {@linkcode draw32}/{@linkcode drawHi} (two u32 halves, fast; a test holds them together).
 *
 * @module
 */

const M64 = (1n << 64n) - 1n;

/** Stream of the weight initialisation draws. */
export const STREAM_INIT = 128;
/** Stream of the per-epoch shuffle draws. */
export const STREAM_SHUFFLE = 129;
/** Stream base of the stochastic rounding of layer l's update (64 + l). */
export const STREAM_ROUND = 64;
/** Sample index reserved for per-epoch (not per-sample) draws such as the shuffle. */
export const EPOCH_INDEX = 0xffffffff;

/** splitmix64 finaliser on BigInt (the readable reference). */
export function mix64Big(z: bigint): bigint {
  z &= M64;
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & M64;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & M64;
  return z ^ (z >> 31n);
}

/** Key of sample `index` of epoch `epoch` (BigInt reference). */
export function sampleKeyBig(seed: number, epoch: number, index: number): bigint {
  const k = mix64Big((BigInt(seed >>> 0) << 32n) | BigInt(epoch >>> 0));
  return mix64Big((k + BigInt(index >>> 0)) & M64);
}

/** One draw of `stream` at `index` under `key` (BigInt reference). */
export function drawBig(key: bigint, stream: number, index: number | bigint): bigint {
  return mix64Big(key ^ (BigInt(stream) << 48n) ^ BigInt(index));
}

// ---- fast path: 64-bit values as (hi, lo) u32 pairs ----

let rHi = 0;
let rLo = 0;

/** (hi, lo) · (bh, bl) mod 2^64 into rHi/rLo. */
function mul64(ah: number, al: number, bh: number, bl: number): void {
  const a0 = al & 0xffff, a1 = al >>> 16, b0 = bl & 0xffff, b1 = bl >>> 16;
  const mid = a0 * b1 + a1 * b0; // < 2^33
  const low = a0 * b0 + (mid % 65536) * 65536; // < 2^33
  const carry = Math.floor(low / 4294967296);
  rLo = low >>> 0;
  rHi = (a1 * b1 + Math.floor(mid / 65536) + carry + Math.imul(ah, bl) + Math.imul(al, bh)) >>> 0;
}

/** splitmix64 finaliser on (hi, lo) into rHi/rLo. */
function mix(hi: number, lo: number): void {
  // z ^= z >> 30
  lo = (lo ^ ((lo >>> 30) | (hi << 2))) >>> 0;
  hi = (hi ^ (hi >>> 30)) >>> 0;
  mul64(hi, lo, 0xbf58476d, 0x1ce4e5b9);
  hi = rHi;
  lo = rLo;
  // z ^= z >> 27
  lo = (lo ^ ((lo >>> 27) | (hi << 5))) >>> 0;
  hi = (hi ^ (hi >>> 27)) >>> 0;
  mul64(hi, lo, 0x94d049bb, 0x133111eb);
  hi = rHi;
  lo = rLo;
  // z ^= z >> 31
  rLo = (lo ^ ((lo >>> 31) | (hi << 1))) >>> 0;
  rHi = (hi ^ (hi >>> 31)) >>> 0;
}

/** A 64-bit key as two u32 halves. */
export interface Key {
  /** High 32 bits. */
  hi: number;
  /** Low 32 bits. */
  lo: number;
}

/** Key of sample `index` of epoch `epoch` for run `seed` (fast path). */
export function sampleKey(seed: number, epoch: number, index: number): Key {
  mix(seed >>> 0, epoch >>> 0);
  let lo = rLo + (index >>> 0);
  let hi = rHi;
  if (lo >= 4294967296) {
    lo -= 4294967296;
    hi = (hi + 1) >>> 0;
  }
  mix(hi, lo);
  return { hi: rHi, lo: rLo };
}

/** Draw of `stream` at `index` (index < 2^48) under `key`: returns the high 32 bits; low in {@linkcode lastLo}. */
export function drawHi(key: Key, stream: number, index: number): number {
  const idxHi = Math.floor(index / 4294967296);
  mix((key.hi ^ (stream << 16) ^ idxHi) >>> 0, (key.lo ^ index) >>> 0);
  return rHi;
}

/** Low 32 bits of the last {@linkcode drawHi}. */
export function lastLo(): number {
  return rLo;
}

/** A uniform number in (0, 1] with 53 random bits, from one draw. */
export function drawUnit(key: Key, stream: number, index: number): number {
  const hi = drawHi(key, stream, index);
  return (hi * 2097152 + (rLo >>> 11) + 1) / 9007199254740992;
}

/** A standard normal number (Box–Muller over two draws 2·index and 2·index + 1). */
export function drawNormal(key: Key, stream: number, index: number): number {
  const u1 = drawUnit(key, stream, 2 * index);
  const u2 = drawUnit(key, stream, 2 * index + 1);
  return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
}

/** The sample order of one epoch: a seeded Fisher–Yates shuffle of 0..n−1. */
export function shuffledOrder(seed: number, epoch: number, n: number): Uint32Array {
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  const key = sampleKey(seed, epoch, EPOCH_INDEX);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor((drawHi(key, STREAM_SHUFFLE, i) * (i + 1)) / 4294967296);
    const t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
  return order;
}
